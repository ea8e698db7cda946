// The gguf quantizer plugin (plugins/gguf), loaded by path as a host loads it and driven
// through its C table: capabilities as the planner's table, exact stored bytes, quantization
// bit-identical to ggml's reference quantizers and dequantization bit-identical to gguf-py
// (goldens), linear within its documented bound, tensors read from a written .gguf, clear
// errors, and only the two entry symbols exported.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "dmem/block_quant.hpp"
#include "dmem/checkpoint.hpp"
#include "dmem/model.hpp"
#include "dmem/plugin_registry.hpp"
#include "dmem/quantizer.hpp"
#include "dmem/tensor_source.hpp"
#include "dmem/writer.hpp"
#include "support/plugin_quantizer.hpp"
#include "support/test_support.hpp"

#if DMEM_TEST_HAVE_GGUF_PLUGIN

using dmem::test::LoadedQuantizerPlugin;
using dmem::test::plugin_tensor;
using dmem::test::PluginError;
using dmem::test::PluginQuantizer;

namespace {

const LoadedQuantizerPlugin& gguf_plugin() {
  static const LoadedQuantizerPlugin p(DMEM_TEST_PLUGIN_GGUF);
  return p;
}

std::unique_ptr<PluginQuantizer> make(const std::string& type) {
  std::string err;
  auto q = gguf_plugin().create({{"type", type}}, nullptr, &err);
  INFO(err);
  REQUIRE(q);
  return q;
}

std::vector<std::uint8_t> slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f);
  return {std::istreambuf_iterator<char>(f), {}};
}

std::uint32_t u32_at(const std::vector<std::uint8_t>& b, std::size_t off) {
  std::uint32_t v;
  std::memcpy(&v, b.data() + off, 4);
  return v;
}

struct Tensors {
  dmem_plugin_tensor src{}, packed{};
  std::uint64_t bytes = 0;
  std::int32_t rc = 0;
  std::string error;
};

// stored_bytes and quantize of f32 `x` [rows, cols] into `out`.
Tensors quantize(const PluginQuantizer& q, std::vector<float>& x, std::uint64_t rows,
                 std::uint64_t cols, std::vector<std::uint8_t>& out) {
  Tensors t;
  t.src = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {rows, cols}, x.data(), x.size() * 4);
  PluginError e;
  t.rc = q.table().stored_bytes(q.instance(), &t.src, &t.bytes, &e.err);
  if (t.rc != DMEM_PLUGIN_OK) {
    t.error = e.message();
    return t;
  }
  out.assign(t.bytes, 0);
  t.packed = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {rows, cols}, out.data(), out.size());
  t.rc = q.table().quantize(q.instance(), &t.src, &t.packed, nullptr, &e.err);
  t.error = e.message();
  return t;
}

std::int32_t dequantize(const PluginQuantizer& q, const dmem_plugin_tensor& packed,
                        std::vector<float>& y, std::string* error = nullptr) {
  dmem_plugin_tensor dst = packed;
  std::uint64_t n = 1;
  for (std::uint32_t i = 0; i < packed.rank; ++i) n *= packed.shape[i];
  y.assign(n, 0.0f);
  dst.dtype = DMEM_PLUGIN_DTYPE_F32;
  dst.data = y.data();
  dst.nbytes = n * 4;
  PluginError e;
  const std::int32_t rc = q.table().dequantize(q.instance(), &packed, &dst, nullptr, &e.err);
  if (error) *error = e.message();
  return rc;
}

bool same_bits(const void* a, const void* b, std::size_t n) {
  return std::memcmp(a, b, n) == 0;
}

constexpr const char* kAllTypes[] = {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1",   "q2_k",
                                     "q3_k", "q4_k", "q5_k", "q6_k", "iq4_nl", "mxfp4"};

}  // namespace

TEST_CASE("gguf plugin: the registry loads it by path; default caps are q8_0's", "[gguf_plugin]") {
  dmem::PluginRegistry r;
  const dmem::Status s = r.load(DMEM_TEST_PLUGIN_GGUF);
  INFO(s.to_string());
  REQUIRE(s.is_ok());
  const dmem::PluginInfo* info = r.find("dmem.quantizer.gguf");
  REQUIRE(info != nullptr);
  CHECK(info->caps.variant == "q8_0");
  CHECK(info->block_size == 32);
  CHECK(info->caps.quality == dmem::QualityTier::int8);
  CHECK((info->caps.exec_devices & dmem::kDeviceCpu) != 0);
  REQUIRE(gguf_plugin().status().is_ok());
}

TEST_CASE("gguf plugin: caps agree with the planner's built-in table", "[gguf_plugin]") {
  for (const auto& b : dmem::builtin_quantizers()) {
    if (b.id != "dmem.quantizer.gguf") continue;
    INFO(b.variant);
    auto q = make(b.variant);
    const dmem_quantizer_caps& c = q->caps();
    CHECK(std::string(c.variant) == b.variant);
    CHECK(std::string(c.display) == b.display);
    CHECK(c.quality_tier == static_cast<std::uint32_t>(b.quality));
    CHECK(c.speed_factor == b.speed_factor);
    CHECK(c.storage_tiers == b.storage_tiers);
    CHECK((c.exec_devices & DMEM_PLUGIN_DEVICE_CPU) != 0);
    CHECK((c.flags & DMEM_PLUGIN_QFLAG_MOVES_PACKED) != 0);
    CHECK(c.block_size == dmem::dtype_info(*dmem::dtype_from_name(b.variant)).block_elems);
  }
}

TEST_CASE("gguf plugin: stored bytes are whole blocks, as the planner computes", "[gguf_plugin]") {
  for (const char* name : kAllTypes) {
    INFO(name);
    auto q = make(name);
    const auto type = *dmem::dtype_from_name(name);
    const auto& info = dmem::dtype_info(type);
    for (std::uint64_t rows : {1u, 3u, 7u}) {
      const std::uint64_t cols = 2 * 256;
      dmem_plugin_tensor t = plugin_tensor(DMEM_PLUGIN_DTYPE_BF16, {rows, cols}, nullptr, 0);
      std::uint64_t bytes = 0;
      REQUIRE(q->table().stored_bytes(q->instance(), &t, &bytes, nullptr) == DMEM_PLUGIN_OK);
      CHECK(bytes == rows * cols / info.block_elems * info.block_bytes);
      CHECK(bytes == *dmem::dtype_bytes(type, rows * cols));
      if (const auto* b = dmem::find_quantizer("dmem.quantizer.gguf", name)) {
        dmem::TensorInfo ti{"w", dmem::DType::bf16, {rows, cols}, rows * cols * 2};
        CHECK(bytes == dmem::quantized_bytes(*b, ti, true));
      }
    }
  }
}

TEST_CASE("gguf plugin: bad parameters, shapes and dtypes are refused clearly", "[gguf_plugin]") {
  std::int32_t rc = 0;
  std::string err;
  CHECK_FALSE(gguf_plugin().create({{"type", "q9_9"}}, &rc, &err));
  CHECK(rc == DMEM_PLUGIN_INVALID_ARGUMENT);
  CHECK(err.find("unknown gguf type 'q9_9'") != std::string::npos);
  CHECK(err.find("q4_k") != std::string::npos);  // lists the choices
  CHECK_FALSE(gguf_plugin().create({{"bits", "4"}}, &rc, &err));
  CHECK(err.find("unknown parameter 'bits'") != std::string::npos);

  auto q = make("q4_k");
  PluginError e;
  std::uint64_t bytes = 0;
  dmem_plugin_tensor t = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {64, 100}, nullptr, 0);
  CHECK(q->table().stored_bytes(q->instance(), &t, &bytes, &e.err) == DMEM_PLUGIN_INVALID_ARGUMENT);
  CHECK(e.message().find("f32 [64, 100]") != std::string::npos);
  CHECK(e.message().find("not a whole number of gguf q4_k blocks of 256") != std::string::npos);
  t = plugin_tensor(DMEM_PLUGIN_DTYPE_I8, {4, 256}, nullptr, 0);
  CHECK(q->table().stored_bytes(q->instance(), &t, &bytes, &e.err) == DMEM_PLUGIN_UNSUPPORTED);
  CHECK(e.message().find("i8 [4, 256]") != std::string::npos);
  t = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {}, nullptr, 0);
  CHECK(q->table().stored_bytes(q->instance(), &t, &bytes, &e.err) == DMEM_PLUGIN_INVALID_ARGUMENT);

  // A type dmem does not quantize to is still loaded and dequantized, and says so.
  auto q2 = make("q2_k");
  std::vector<float> x(256, 1.0f);
  std::vector<std::uint8_t> packed;
  const Tensors r = quantize(*q2, x, 1, 256, packed);
  CHECK(r.rc == DMEM_PLUGIN_UNSUPPORTED);
  CHECK(r.error.find("dequantize-only") != std::string::npos);

  // Non-finite input, and a packed buffer that is too small.
  x[17] = NAN;
  const Tensors nan = quantize(*q, x, 1, 256, packed);
  CHECK(nan.rc == DMEM_PLUGIN_INVALID_ARGUMENT);
  CHECK(nan.error.find("element [0, 17] is not finite") != std::string::npos);
  x[17] = 0.0f;
  REQUIRE(quantize(*q, x, 1, 256, packed).rc == DMEM_PLUGIN_OK);
  dmem_plugin_tensor small = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {1, 256}, packed.data(), 100);
  std::vector<float> y;
  std::string msg;
  CHECK(dequantize(*q, small, y, &msg) == DMEM_PLUGIN_INVALID_ARGUMENT);
  CHECK(msg.find("100 bytes given, gguf q4_k needs 144") != std::string::npos);
}

TEST_CASE("gguf plugin: quantization is bit-identical to ggml's reference quantizers",
          "[gguf_plugin]") {
  for (const char* name : {"q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k"}) {
    INFO(name);
    const auto g = slurp(std::string(DMEM_GOLDEN_DIR) + "/gguf_plugin/" + name + ".q");
    const std::uint32_t rows = u32_at(g, 0), cols = u32_at(g, 4);
    std::vector<float> x(std::size_t{rows} * cols);
    std::memcpy(x.data(), g.data() + 8, x.size() * 4);
    const std::uint8_t* want = g.data() + 8 + x.size() * 4;
    const std::size_t want_bytes = g.size() - 8 - x.size() * 4;
    auto q = make(name);
    std::vector<std::uint8_t> packed;
    const Tensors t = quantize(*q, x, rows, cols, packed);
    INFO(t.error);
    REQUIRE(t.rc == DMEM_PLUGIN_OK);
    REQUIRE(packed.size() == want_bytes);
    const std::size_t row_bytes = want_bytes / rows;
    for (std::uint32_t r = 0; r < rows; ++r) {
      INFO("row " << r);
      CHECK(same_bits(packed.data() + r * row_bytes, want + r * row_bytes, row_bytes));
    }
  }
}

TEST_CASE("gguf plugin: dequantization is bit-identical to gguf-py, NaN scales included",
          "[gguf_plugin]") {
  std::vector<std::string> files;
  for (const char* name : kAllTypes) files.emplace_back(name);
  for (const char* name : {"q8_0_nan", "q4_0_nan", "q4_k_nan", "q5_k_nan", "q6_k_nan"})
    files.emplace_back(name);
  for (const auto& file : files) {
    INFO(file);
    const auto g = slurp(std::string(DMEM_GOLDEN_DIR) + "/block_quant/" + file + ".dq");
    const std::uint32_t n = u32_at(g, 0);
    const std::string type = file.substr(0, file.find("_nan"));
    const auto& info = dmem::dtype_info(*dmem::dtype_from_name(type));
    const std::size_t packed_bytes = std::size_t{n} / info.block_elems * info.block_bytes;
    REQUIRE(g.size() == 4 + packed_bytes + std::size_t{n} * 4);
    std::vector<std::uint8_t> blocks(g.begin() + 4,
                                     g.begin() + 4 + static_cast<long>(packed_bytes));
    auto q = make(type);
    // As rows of 256 values where they divide the count, else of 32 (every type's block).
    const std::uint64_t cols = n % 256 == 0 ? 256 : 32;
    const dmem_plugin_tensor packed =
        plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {n / cols, cols}, blocks.data(), blocks.size());
    std::vector<float> y;
    std::string err;
    REQUIRE(dequantize(*q, packed, y, &err) == DMEM_PLUGIN_OK);
    CHECK(same_bits(y.data(), g.data() + 4 + packed_bytes, std::size_t{n} * 4));
  }
}

TEST_CASE("gguf plugin: f16 and bf16 in and out go through dmem's exact casts", "[gguf_plugin]") {
  auto q = make("q8_0");
  std::vector<std::uint16_t> h(2 * 64);
  std::vector<float> x(h.size());
  for (std::size_t i = 0; i < h.size(); ++i) {
    h[i] = dmem::f32_to_bf16(std::sin(static_cast<float>(i)) * 3.0f);
    x[i] = dmem::bf16_to_f32(h[i]);
  }
  dmem_plugin_tensor src = plugin_tensor(DMEM_PLUGIN_DTYPE_BF16, {2, 64}, h.data(), h.size() * 2);
  std::vector<std::uint8_t> a(2 * 2 * 34), b;
  dmem_plugin_tensor packed = plugin_tensor(DMEM_PLUGIN_DTYPE_BF16, {2, 64}, a.data(), a.size());
  REQUIRE(q->table().quantize(q->instance(), &src, &packed, nullptr, nullptr) == DMEM_PLUGIN_OK);
  REQUIRE(quantize(*q, x, 2, 64, b).rc == DMEM_PLUGIN_OK);
  CHECK(a == b);  // bf16 input quantizes as its exact f32 value
  std::vector<std::uint16_t> out(h.size());
  dmem_plugin_tensor dst =
      plugin_tensor(DMEM_PLUGIN_DTYPE_F16, {2, 64}, out.data(), out.size() * 2);
  REQUIRE(q->table().dequantize(q->instance(), &packed, &dst, nullptr, nullptr) == DMEM_PLUGIN_OK);
  std::vector<float> f;
  REQUIRE(dequantize(*q, packed, f) == DMEM_PLUGIN_OK);
  for (std::size_t i = 0; i < f.size(); ++i) CHECK(out[i] == dmem::f32_to_f16(f[i]));
}

TEST_CASE("gguf plugin: CPU linear is within its documented bound of the f64 product",
          "[gguf_plugin]") {
  const std::uint64_t tokens = 5, in = 512, out = 37;
  std::vector<float> w(out * in), x(tokens * in), bias(out);
  for (std::size_t i = 0; i < w.size(); ++i) w[i] = std::sin(0.37f * static_cast<float>(i));
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.11f * static_cast<float>(i)) * 2;
  for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = 0.5f - static_cast<float>(i % 3);
  for (const char* name : {"q8_0", "q4_0", "q4_k", "q5_k", "q6_k"}) {
    INFO(name);
    auto q = make(name);
    std::vector<std::uint8_t> packed;
    Tensors t = quantize(*q, w, out, in, packed);
    REQUIRE(t.rc == DMEM_PLUGIN_OK);
    std::vector<float> wd;
    REQUIRE(dequantize(*q, t.packed, wd) == DMEM_PLUGIN_OK);
    std::vector<float> y(tokens * out);
    dmem_plugin_tensor xt =
        plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {tokens, in}, x.data(), x.size() * 4);
    dmem_plugin_tensor yt =
        plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {tokens, out}, y.data(), y.size() * 4);
    dmem_plugin_tensor bt =
        plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {out}, bias.data(), bias.size() * 4);
    PluginError e;
    REQUIRE(q->table().linear(q->instance(), &xt, &t.packed, &bt, &yt, nullptr, &e.err) ==
            DMEM_PLUGIN_OK);
    const double u = std::ldexp(1.0, -24), k = static_cast<double>(in + 1);
    const double gamma = k * u / (1 - k * u);
    for (std::uint64_t n = 0; n < tokens; ++n)
      for (std::uint64_t o = 0; o < out; ++o) {
        double exact = bias[o], mag = std::fabs(bias[o]);
        for (std::uint64_t i = 0; i < in; ++i) {
          exact += static_cast<double>(x[n * in + i]) * wd[o * in + i];
          mag += std::fabs(static_cast<double>(x[n * in + i]) * wd[o * in + i]);
        }
        CHECK(std::fabs(y[n * out + o] - exact) <= gamma * mag);
      }
    // Shapes that do not agree are refused.
    dmem_plugin_tensor bad =
        plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {tokens, out + 1}, y.data(), y.size() * 4);
    CHECK(q->table().linear(q->instance(), &xt, &t.packed, nullptr, &bad, nullptr, &e.err) ==
          DMEM_PLUGIN_INVALID_ARGUMENT);
    CHECK(e.message().find("do not agree") != std::string::npos);
  }
}

TEST_CASE("gguf plugin: a tensor read from a written .gguf dequantizes as the reference",
          "[gguf_plugin]") {
  // A city96-style diffusion GGUF: a flux architecture key and diffusers-style tensor names.
  const auto g = slurp(std::string(DMEM_GOLDEN_DIR) + "/block_quant/q4_k.dq");
  const std::uint32_t n = u32_at(g, 0);
  const std::size_t packed_bytes = std::size_t{n} / 256 * 144;
  dmem::test::TempDir dir;
  const std::string path = dir.file("flux-q4_k.gguf");
  std::vector<dmem::GgufKv> meta;
  meta.push_back(
      {"general.architecture", {dmem::GgufType::string, dmem::GgufType::u8, std::string("flux")}});
  std::vector<float> bias(n / 512, 0.25f);
  std::vector<dmem::TensorData> tensors;
  tensors.push_back({"double_blocks.0.img_attn.qkv.weight",
                     dmem::DType::q4_k,
                     {n / 512, 512},
                     g.data() + 4,
                     packed_bytes});
  tensors.push_back({"double_blocks.0.img_attn.qkv.bias",
                     dmem::DType::f32,
                     {n / 512},
                     bias.data(),
                     bias.size() * 4});
  REQUIRE(dmem::write_gguf(path, tensors, meta).is_ok());

  auto model = dmem::open_model(path);
  INFO(model.status().to_string());
  REQUIRE(model.has_value());
  const dmem::Component& c = model->components.front();
  const dmem::TensorInfo* w = nullptr;
  for (const auto& t : c.tensors)
    if (t.name.find("img_attn.qkv.weight") != std::string::npos) w = &t;
  REQUIRE(w != nullptr);
  CHECK(w->dtype == dmem::DType::q4_k);
  auto src = dmem::TensorSource::open(c);
  REQUIRE(src.has_value());
  std::vector<std::uint8_t> bytes(w->nbytes);
  REQUIRE(src->read(*w, bytes.data()).is_ok());

  auto q = make("q4_k");
  const dmem_plugin_tensor packed =
      plugin_tensor(DMEM_PLUGIN_DTYPE_BF16, {w->shape[0], w->shape[1]}, bytes.data(), bytes.size());
  std::uint64_t need = 0;
  REQUIRE(q->table().stored_bytes(q->instance(), &packed, &need, nullptr) == DMEM_PLUGIN_OK);
  CHECK(need == w->nbytes);
  std::vector<float> y;
  REQUIRE(dequantize(*q, packed, y) == DMEM_PLUGIN_OK);
  CHECK(same_bits(y.data(), g.data() + 4 + packed_bytes, std::size_t{n} * 4));
}

TEST_CASE("gguf plugin: exports only the two entry symbols", "[gguf_plugin]") {
  std::string out;
  if (dmem::test::run_command("nm -D --defined-only '" + std::string(DMEM_TEST_PLUGIN_GGUF) + "'",
                              &out) != 0) {
    WARN("nm not available: " << out);
    return;
  }
  INFO(out);
  std::size_t lines = 0;
  for (char ch : out) lines += ch == '\n';
  CHECK(lines == 2);
  CHECK(out.find(" T dmem_plugin_probe\n") != std::string::npos);
  CHECK(out.find(" T dmem_plugin_entry\n") != std::string::npos);
}

#endif  // DMEM_TEST_HAVE_GGUF_PLUGIN
