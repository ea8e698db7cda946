// The bnb_int8 quantizer plugin (plugins/bnb_int8), loaded by path and driven through its C
// table: CUDA-only capabilities as the planner's table, exact stored bytes, row quantization and
// dequantization bit-identical to bitsandbytes (goldens), a bitsandbytes-serialised checkpoint
// read as packed weights, clear errors. `dmem plugins` lists both stock plugins.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "../../plugins/bnb_int8/checkpoint_layout.hpp"
#include "dmem/model.hpp"
#include "dmem/plugin_registry.hpp"
#include "dmem/quantizer.hpp"
#include "dmem/tensor_source.hpp"
#include "support/plugin_quantizer.hpp"
#include "support/test_support.hpp"

#if DMEM_TEST_HAVE_BNB_INT8_PLUGIN

using dmem::test::LoadedQuantizerPlugin;
using dmem::test::plugin_tensor;
using dmem::test::PluginError;
using dmem::test::PluginQuantizer;

namespace {

const LoadedQuantizerPlugin& bnb_plugin() {
  static const LoadedQuantizerPlugin p(DMEM_TEST_PLUGIN_BNB_INT8);
  return p;
}

std::unique_ptr<PluginQuantizer> make(
    std::vector<std::pair<std::string, std::string>> params = {}) {
  std::string err;
  auto q = bnb_plugin().create(params, nullptr, &err);
  INFO(err);
  REQUIRE(q);
  return q;
}

std::vector<std::uint8_t> slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f);
  return {std::istreambuf_iterator<char>(f), {}};
}

// tests/golden/bnb_int8/rows.bin (scripts/golden/bnb_int8.py).
struct Golden {
  std::uint32_t rows = 0, cols = 0;
  std::vector<float> w, deq, scb;
  std::vector<std::int8_t> cb;
};
Golden golden() {
  const auto b = slurp(std::string(DMEM_GOLDEN_DIR) + "/bnb_int8/rows.bin");
  Golden g;
  std::memcpy(&g.rows, b.data(), 4);
  std::memcpy(&g.cols, b.data() + 4, 4);
  const std::size_t n = std::size_t{g.rows} * g.cols;
  REQUIRE(b.size() == 8 + 4 * n + n + 4 * g.rows + 4 * n);
  g.w.resize(n);
  g.cb.resize(n);
  g.scb.resize(g.rows);
  g.deq.resize(n);
  std::size_t off = 8;
  std::memcpy(g.w.data(), b.data() + off, 4 * n);
  std::memcpy(g.cb.data(), b.data() + (off += 4 * n), n);
  std::memcpy(g.scb.data(), b.data() + (off += n), 4 * g.rows);
  std::memcpy(g.deq.data(), b.data() + (off += 4 * g.rows), 4 * n);
  return g;
}

}  // namespace

TEST_CASE("bnb_int8 plugin: loaded by path; runs on CUDA only, as the planner's table says",
          "[bnb_int8]") {
  dmem::PluginRegistry r;
  const dmem::Status s = r.load(DMEM_TEST_PLUGIN_BNB_INT8);
  INFO(s.to_string());
  REQUIRE(s.is_ok());
  const dmem::PluginInfo* info = r.find("dmem.quantizer.bnb_int8");
  REQUIRE(info != nullptr);
  const dmem::QuantizerCaps* b = dmem::find_quantizer("dmem.quantizer.bnb_int8");
  REQUIRE(b != nullptr);
  CHECK(info->caps.exec_devices == dmem::kDeviceCuda);  // the validator refuses CPU placements
  CHECK(info->caps.exec_devices == b->exec_devices);
  CHECK(info->caps.storage_tiers == b->storage_tiers);
  CHECK(info->caps.variant == b->variant);
  CHECK(info->caps.quality == b->quality);
  CHECK(info->caps.speed_factor == b->speed_factor);
  CHECK((info->flags & DMEM_PLUGIN_QFLAG_NEEDS_CUBLASLT) != 0);
}

TEST_CASE("bnb_int8 plugin: stored bytes are the planner's", "[bnb_int8]") {
  auto q = make();
  for (std::vector<std::uint64_t> shape :
       {std::vector<std::uint64_t>{3072, 3072}, {7, 5}, {4, 3, 2}}) {
    dmem_plugin_tensor t = plugin_tensor(DMEM_PLUGIN_DTYPE_BF16, shape, nullptr, 0);
    std::uint64_t bytes = 0;
    REQUIRE(q->table().stored_bytes(q->instance(), &t, &bytes, nullptr) == DMEM_PLUGIN_OK);
    dmem::TensorInfo ti{"w", dmem::DType::bf16, shape, 0};
    ti.nbytes = ti.elements() * 2;
    CHECK(bytes ==
          dmem::quantized_bytes(*dmem::find_quantizer("dmem.quantizer.bnb_int8"), ti, true));
    CHECK(bytes == 4 * shape[0] + ti.elements() + 1);
  }
}

TEST_CASE("bnb_int8 plugin: rows quantize and dequantize bit for bit as bitsandbytes",
          "[bnb_int8]") {
  const Golden g = golden();
  auto q = make();
  dmem_plugin_tensor src = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {g.rows, g.cols},
                                         const_cast<float*>(g.w.data()), g.w.size() * 4);
  std::uint64_t bytes = 0;
  REQUIRE(q->table().stored_bytes(q->instance(), &src, &bytes, nullptr) == DMEM_PLUGIN_OK);
  std::vector<std::uint8_t> packed(bytes, 0xAB);
  dmem_plugin_tensor pt =
      plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {g.rows, g.cols}, packed.data(), bytes);
  PluginError e;
  REQUIRE(q->table().quantize(q->instance(), &src, &pt, nullptr, &e.err) == DMEM_PLUGIN_OK);
  CHECK(std::memcmp(packed.data(), g.scb.data(), 4 * g.rows) == 0);
  CHECK(std::memcmp(packed.data() + 4 * g.rows, g.cb.data(), g.cb.size()) == 0);
  CHECK(packed.back() == 0);  // weight_format "row"

  std::vector<float> y(g.w.size());
  dmem_plugin_tensor dst =
      plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {g.rows, g.cols}, y.data(), y.size() * 4);
  REQUIRE(q->table().dequantize(q->instance(), &pt, &dst, nullptr, &e.err) == DMEM_PLUGIN_OK);
  CHECK(std::memcmp(y.data(), g.deq.data(), y.size() * 4) == 0);
}

TEST_CASE("bnb_int8 plugin: a bitsandbytes-serialised Linear8bitLt is read as packed weights",
          "[bnb_int8]") {
  const Golden g = golden();
  auto model = dmem::open_model(std::string(DMEM_GOLDEN_DIR) + "/bnb_int8/linear8bit.safetensors");
  INFO(model.status().to_string());
  REQUIRE(model.has_value());
  const dmem::Component& c = model->components.front();
  auto src = dmem::TensorSource::open(c);
  REQUIRE(src.has_value());
  auto read = [&](const std::string& name) {
    for (const auto& t : c.tensors)
      if (t.name == name) {
        std::vector<std::uint8_t> b(t.nbytes);
        REQUIRE(src->read(t, b.data()).is_ok());
        return std::make_pair(t, b);
      }
    FAIL("no tensor " << name);
    return std::make_pair(dmem::TensorInfo{}, std::vector<std::uint8_t>{});
  };
  const auto [wi, w] = read("proj.weight");
  const auto [si, scb] = read("proj.SCB");
  const auto [fi, fmt] = read("proj.weight_format");
  CHECK(wi.dtype == dmem::DType::i8);
  CHECK(si.dtype == dmem::DType::f32);
  CHECK(fi.dtype == dmem::DType::u8);
  CHECK(fi.shape.empty());
  REQUIRE(wi.shape == std::vector<std::uint64_t>{g.rows, g.cols});

  std::vector<std::uint8_t> packed(dmem_bnb::packed_bytes(g.rows, g.cols));
  REQUIRE(dmem_bnb::pack_checkpoint(w.data(), scb.data(), fmt[0], g.rows, g.cols, packed.data())
              .empty());
  CHECK(dmem_bnb::pack_checkpoint(w.data(), scb.data(), 2, g.rows, g.cols, packed.data())
            .find("weight_format 2") == 0);
  auto q = make();
  dmem_plugin_tensor pt =
      plugin_tensor(DMEM_PLUGIN_DTYPE_BF16, {g.rows, g.cols}, packed.data(), packed.size());
  std::vector<float> y(std::size_t{g.rows} * g.cols);
  dmem_plugin_tensor dst =
      plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {g.rows, g.cols}, y.data(), y.size() * 4);
  REQUIRE(q->table().dequantize(q->instance(), &pt, &dst, nullptr, nullptr) == DMEM_PLUGIN_OK);
  CHECK(std::memcmp(y.data(), g.deq.data(), y.size() * 4) == 0);
}

TEST_CASE("bnb_int8 plugin: bad parameters, shapes, dtypes and CPU linear are refused clearly",
          "[bnb_int8]") {
  std::int32_t rc = 0;
  std::string err;
  for (const char* bad : {"abc", "-1", "nan", "6.0x"}) {
    CHECK_FALSE(bnb_plugin().create({{"threshold", bad}}, &rc, &err));
    CHECK(rc == DMEM_PLUGIN_INVALID_ARGUMENT);
    CHECK(err.find("is not a finite number >= 0") != std::string::npos);
  }
  CHECK_FALSE(bnb_plugin().create({{"blocksize", "64"}}, &rc, &err));
  CHECK(err.find("unknown parameter 'blocksize'") != std::string::npos);
  CHECK(make({{"threshold", "0"}}));

  auto q = make();
  PluginError e;
  std::uint64_t bytes = 0;
  dmem_plugin_tensor t = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {64}, nullptr, 0);
  CHECK(q->table().stored_bytes(q->instance(), &t, &bytes, &e.err) == DMEM_PLUGIN_INVALID_ARGUMENT);
  CHECK(e.message().find("f32 [64]") != std::string::npos);
  t = plugin_tensor(DMEM_PLUGIN_DTYPE_I8, {4, 4}, nullptr, 0);
  CHECK(q->table().stored_bytes(q->instance(), &t, &bytes, &e.err) == DMEM_PLUGIN_UNSUPPORTED);

  // A weight beyond f16's range cannot take bitsandbytes' f16 path.
  std::vector<float> w = {1.0f, 70000.0f, 0.0f, 2.0f};
  dmem_plugin_tensor src = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {2, 2}, w.data(), 16);
  std::vector<std::uint8_t> packed(4 * 2 + 4 + 1);
  dmem_plugin_tensor pt =
      plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {2, 2}, packed.data(), packed.size());
  CHECK(q->table().quantize(q->instance(), &src, &pt, nullptr, &e.err) ==
        DMEM_PLUGIN_INVALID_ARGUMENT);
  CHECK(e.message().find("element [0, 1] is not finite in f16") != std::string::npos);

  // linear on the CPU: bnb_int8 executes on CUDA only.
  w[1] = 3.0f;
  REQUIRE(q->table().quantize(q->instance(), &src, &pt, nullptr, &e.err) == DMEM_PLUGIN_OK);
  std::vector<float> x(2), y(2);
  dmem_plugin_tensor xt = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {1, 2}, x.data(), 8);
  dmem_plugin_tensor yt = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {1, 2}, y.data(), 8);
  CHECK(q->table().linear(q->instance(), &xt, &pt, nullptr, &yt, nullptr, &e.err) ==
        DMEM_PLUGIN_UNSUPPORTED);
  CHECK(e.message().find("runs on CUDA only") != std::string::npos);

  // A packed weight in a tiled format is refused on dequantization.
  packed.back() = 1;
  std::vector<float> d(4);
  dmem_plugin_tensor dst = plugin_tensor(DMEM_PLUGIN_DTYPE_F32, {2, 2}, d.data(), 16);
  CHECK(q->table().dequantize(q->instance(), &pt, &dst, nullptr, &e.err) ==
        DMEM_PLUGIN_FORMAT_ERROR);
}

TEST_CASE("bnb_int8 plugin: exports only the two entry symbols", "[bnb_int8]") {
  std::string out;
  if (dmem::test::run_command(
          "nm -D --defined-only '" + std::string(DMEM_TEST_PLUGIN_BNB_INT8) + "'", &out) != 0) {
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

TEST_CASE("dmem plugins lists the stock gguf and bnb_int8 plugins",
          "[bnb_int8][gguf_plugin][cli]") {
  const std::string dir = std::filesystem::path(DMEM_TEST_PLUGIN_BNB_INT8).parent_path().string();
  std::string out;
  REQUIRE(dmem::test::run_command(
              dmem::test::cli_path() + " plugins --json --sm 0 --path '" + dir + "'", &out,
              false) == 0);
  INFO(out);
  const auto j = nlohmann::json::parse(out);
  bool gguf = false, bnb = false;
  for (const auto& p : j["plugins"]) {
    if (p["id"] == "dmem.quantizer.gguf") {
      gguf = true;
      CHECK(p["caps"]["variant"] == "q8_0");
      CHECK(p["path"].get<std::string>().find("dmem_plugin_gguf.so") != std::string::npos);
    }
    if (p["id"] == "dmem.quantizer.bnb_int8") {
      bnb = true;
      CHECK(p["caps"]["exec_devices"] == nlohmann::json::array({"cuda"}));
    }
  }
  CHECK(gguf);
  CHECK(bnb);
}

#endif  // DMEM_TEST_HAVE_BNB_INT8_PLUGIN
