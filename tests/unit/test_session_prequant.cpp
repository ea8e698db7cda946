// Sessions on pre-quantized checkpoints: the keys `dmem convert` (and bitsandbytes) write are
// loaded as they are and decoded by their plugin, so a session on the converted file holds the
// same packed bytes, and gives the same outputs bit for bit, as a session that quantized the
// original weights itself. fp8 scales are applied as f32 multiplications; damaged state is a
// clear error; injected faults stay clean.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cuda/cuda_probe.hpp"
#include "dmem/catalog.hpp"
#include "dmem/convert.hpp"
#include "dmem/model.hpp"
#include "dmem/module_tree.hpp"
#include "dmem/plugin_registry.hpp"
#include "dmem/session.hpp"
#include "dmem/synthetic.hpp"
#include "dmem/tensor_source.hpp"
#include "dmem/writer.hpp"
#include "runtime/fault_injection.hpp"
#include "runtime/prequant.hpp"
#include "support/runtime_fixture.hpp"
#include "support/stock_plugins.hpp"
#include "support/test_support.hpp"

using namespace dmem;

namespace {

using test::stock_plugins;

bool have(const std::string& id) {
  return stock_plugins().find(id) != nullptr;
}

struct Disarm {
  ~Disarm() { detail::fault_reset(); }
};

// Converts the model's "transformer" with `quantizer` to `out` and opens the result.
Model converted(const Model& model, const std::string& out, const std::string& quantizer) {
  ConvertOptions o;
  auto q = resolve_quantizer(quantizer);
  REQUIRE(q.has_value());
  q->component = "transformer";
  o.quantize.push_back(*q);
  o.components = {"transformer"};
  o.plugins = &stock_plugins();
  if (q->plugin == "dmem.quantizer.gguf") o.format = ConvertFormat::gguf;
  auto r = convert_model(model, out, o);
  INFO(r.status().to_string());
  REQUIRE(r.has_value());
  auto back = open_model(out);
  INFO(back.status().to_string());
  REQUIRE(back.has_value());
  return std::move(back.value());
}

Strategy strategy_for(const std::string& component, const Placement& p, const Storage& s = {}) {
  Strategy st = test::one_component(p, s);
  st.components.front().component = component;
  return st;
}

Storage quantized_as(const std::string& quantizer) {
  auto q = resolve_quantizer(quantizer);
  REQUIRE(q.has_value());
  Storage s;
  s.kind = StorageKind::quantized;
  s.quantizer = q->plugin;
  s.params = q->params;
  return s;
}

SessionOptions plugin_options() {
  SessionOptions o;
  o.plugins = &stock_plugins();
  return o;
}

// Every 2-D weight of every unit of `a` against the same in `b`: the stored bytes and the
// linear outputs bit for bit. Returns how many packed weights were compared.
std::size_t compare(Session& a, const std::string& ca, Session& b, const std::string& cb) {
  std::size_t packed = 0;
  for (const std::string& unit : a.modules(ca)) {
    auto ha = a.acquire(ca, unit);
    auto hb = b.acquire(cb, unit);
    REQUIRE(ha.has_value());
    INFO(unit << ": " << hb.status().to_string());
    REQUIRE(hb.has_value());
    for (const TensorView& va : ha->tensors()) {
      const std::string& name = *va.name;
      if (va.shape->size() != 2 || name.size() < 7 || name.substr(name.size() - 7) != ".weight")
        continue;
      INFO(name);
      const TensorView* vb = hb->find(name);
      REQUIRE(vb != nullptr);
      REQUIRE(*vb->shape == *va.shape);
      REQUIRE(vb->packed == va.packed);
      REQUIRE(vb->nbytes == va.nbytes);
      CHECK(std::memcmp(vb->data, va.data, va.nbytes) == 0);
      packed += va.packed ? 1 : 0;
      const std::size_t tokens = 3, out = (*va.shape)[0], in = (*va.shape)[1];
      std::vector<float> x(tokens * in), ya(tokens * out), yb(tokens * out, 1.0f);
      for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37f * static_cast<float>(i));
      const std::string leaf = name.substr(0, name.size() - 7);
      REQUIRE(a.linear(*ha, leaf, x.data(), tokens, ya.data()).is_ok());
      Status s = b.linear(*hb, leaf, x.data(), tokens, yb.data());
      INFO(s.to_string());
      REQUIRE(s.is_ok());
      CHECK(std::memcmp(ya.data(), yb.data(), ya.size() * 4) == 0);
    }
  }
  return packed;
}

// A small FLUX transformer with generated weights (rows of whole q4_k blocks).
Model synthetic_flux(const test::TempDir& dir) {
  auto catalog = open_model("flux1-dev");
  REQUIRE(catalog.has_value());
  ScaleDown sd;
  sd.factor = 12;
  auto scaled = scale_down(*catalog, sd);
  REQUIRE(scaled.has_value());
  auto path = write_synthetic_model(*scaled, dir.file("flux"));
  REQUIRE(path.has_value());
  auto model = open_model(*path);
  REQUIRE(model.has_value());
  return std::move(model.value());
}

// Every tensor of a component, in memory, to write a modified copy.
struct Copy {
  std::vector<TensorData> tensors;
  std::vector<std::vector<unsigned char>> bytes;
};

Copy copy_of(const Component& c) {
  Copy copy;
  auto src = TensorSource::open(c);
  REQUIRE(src.has_value());
  copy.bytes.reserve(c.tensors.size());
  for (const TensorInfo& t : c.tensors) {
    copy.bytes.emplace_back(t.nbytes);
    REQUIRE(src->read(t, copy.bytes.back().data()).is_ok());
    copy.tensors.push_back(
        TensorData{t.name, t.dtype, t.shape, copy.bytes.back().data(), t.nbytes});
  }
  return copy;
}

void write_copy(const std::string& path, const std::vector<TensorData>& tensors) {
  const std::pair<std::string, std::string> meta[] = {{"format", "pt"}};
  REQUIRE(write_safetensors(path, tensors, meta).is_ok());
}

Status open_status(const std::string& path) {
  auto model = open_model(path);
  if (!model) return model.status();
  auto s =
      Session::open(*model, strategy_for(model->components.front().name, {}), plugin_options());
  return s ? Status::ok() : s.status();
}

}  // namespace

TEST_CASE("prequant: bitsandbytes and fp8 checkpoints from dmem convert run as quantized in place",
          "[prequant][runtime]") {
  test::TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 3, 64);
  for (const char* name : {"nf4", "nf4-dq", "fp4", "fp8", "fp8-e5m2"}) {
    INFO(name);
    const std::string plugin = resolve_quantizer(name)->plugin;
    if (!have(plugin)) {
      WARN(plugin + " not built; skipped");
      continue;
    }
    const Model pre = converted(model, dir.file(std::string(name) + ".safetensors"), name);
    const std::string comp = pre.components.front().name;
    for (PlacementKind kind :
         {PlacementKind::resident, PlacementKind::group_offload, PlacementKind::disk}) {
      INFO("placement " << static_cast<int>(kind));
      Placement p;
      p.kind = kind;
      auto self =
          Session::open(model, test::one_component(p, quantized_as(name)), plugin_options());
      INFO(self.status().to_string());
      REQUIRE(self.has_value());
      auto loaded = Session::open(pre, strategy_for(comp, p), plugin_options());
      INFO(loaded.status().to_string());
      REQUIRE(loaded.has_value());
      CHECK(compare(*self, "transformer", *loaded, comp) > 0);
      CHECK(loaded->stats().copies_to_host == 0);
    }
  }
}

TEST_CASE("prequant: GGUF q8_0 and q4_k files go through the gguf plugin, bit for bit",
          "[prequant][runtime][slow]") {
  if (!have("dmem.quantizer.gguf")) {
    WARN("gguf plugin not built; skipped");
    return;
  }
  test::TempDir dir;
  const Model model = synthetic_flux(dir);
  for (const char* name : {"q8_0", "q4_k"}) {
    INFO(name);
    const Model pre = converted(model, dir.file(std::string(name) + ".gguf"), name);
    const std::string comp = pre.components.front().name;
    auto self = Session::open(model, test::one_component({}, quantized_as(name)), plugin_options());
    INFO(self.status().to_string());
    REQUIRE(self.has_value());
    auto loaded = Session::open(pre, strategy_for(comp, {}), plugin_options());
    INFO(loaded.status().to_string());
    REQUIRE(loaded.has_value());
    CHECK(compare(*self, "transformer", *loaded, comp) > 0);
  }
}

TEST_CASE("prequant: bitsandbytes int8 is gathered as the plugin packs it, and refused on the CPU",
          "[prequant][runtime]") {
  if (!have("dmem.quantizer.bnb_int8")) {
    WARN("bnb_int8 plugin not built; skipped");
    return;
  }
  test::TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 2, 64);
  const Model pre = converted(model, dir.file("int8.safetensors"), "int8");
  const std::string comp = pre.components.front().name;
  // LLM.int8 executes on CUDA only: its caps say so, and a CPU session names the weight.
  auto refused = Session::open(pre, strategy_for(comp, {}), plugin_options());
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.status().rule() == "runtime.quantizer.device");
  CHECK(refused.status().tensor().find(".weight") != std::string::npos);
  CHECK(refused.status().message().find("bnb int8") != std::string::npos);
}

TEST_CASE("prequant: fp8 scales per tensor and per channel are f32 multiplications",
          "[prequant][runtime]") {
  if (!have("dmem.quantizer.fp8_cast")) {
    WARN("fp8_cast plugin not built; skipped");
    return;
  }
  test::TempDir dir;
  const std::uint64_t out = 24, in = 40;
  std::vector<unsigned char> codes(out * in);
  for (std::size_t i = 0; i < codes.size(); ++i) {
    codes[i] = static_cast<unsigned char>((i * 37 + 11) & 0xff);
    if ((codes[i] & 0x7f) == 0x7f) codes[i] = 0x3c;  // no NaN codes: a NaN weight proves nothing
  }
  std::vector<float> channel(out);
  for (std::size_t r = 0; r < out; ++r) channel[r] = 0.01f * static_cast<float>(r + 1) + 0.003f;
  const float tensor_scale = 0.0173f;
  std::vector<std::uint16_t> bf16_scales(out);
  REQUIRE(convert(DType::f32, channel.data(), DType::bf16, bf16_scales.data(), out).is_ok());
  std::vector<float> bf16_as_f32(out);
  REQUIRE(convert(DType::bf16, bf16_scales.data(), DType::f32, bf16_as_f32.data(), out).is_ok());

  struct Case {
    const char* scale_name;  // beside "layers.N.proj"
    DType dtype;
    std::vector<std::uint64_t> shape;
    const void* data;
    std::vector<float> per_row;  // the scale of each row, in f32
  };
  const std::vector<Case> cases = {
      {"weight_scale", DType::f32, {}, &tensor_scale, std::vector<float>(out, tensor_scale)},
      {"scale_weight", DType::f32, {1}, &tensor_scale, std::vector<float>(out, tensor_scale)},
      {"weight_scale", DType::f32, {out, 1}, channel.data(), channel},
      {"weight_scale", DType::bf16, {out}, bf16_scales.data(), bf16_as_f32},
  };
  std::vector<float> decoded(out * in);
  REQUIRE(convert(DType::f8_e4m3, codes.data(), DType::f32, decoded.data(), codes.size()).is_ok());
  for (std::size_t k = 0; k < cases.size(); ++k) {
    const Case& c = cases[k];
    INFO(c.scale_name << " case " << k);
    // The reference: the same weights dequantized with the scale in f32, stored as f32.
    std::vector<float> reference(out * in);
    for (std::size_t i = 0; i < reference.size(); ++i)
      reference[i] = decoded[i] * c.per_row[i / in];
    std::uint64_t scale_bytes = c.dtype == DType::f32 ? 4 : 2;
    for (std::uint64_t d : c.shape) scale_bytes *= d;
    const std::string scaled = dir.file(std::string("scaled") + std::to_string(k) + ".safetensors");
    const std::string plain = dir.file(std::string("plain") + std::to_string(k) + ".safetensors");
    write_copy(
        scaled,
        {TensorData{"blocks.0.proj.weight", DType::f8_e4m3, {out, in}, codes.data(), codes.size()},
         TensorData{std::string("blocks.0.proj.") + c.scale_name, c.dtype, c.shape, c.data,
                    scale_bytes},
         TensorData{"blocks.1.proj.weight",
                    DType::f32,
                    {out, in},
                    reference.data(),
                    reference.size() * 4}});
    write_copy(
        plain,
        {TensorData{
             "blocks.0.proj.weight", DType::f32, {out, in}, reference.data(), reference.size() * 4},
         TensorData{"blocks.1.proj.weight",
                    DType::f32,
                    {out, in},
                    reference.data(),
                    reference.size() * 4}});
    auto ms = open_model(scaled);
    auto mp = open_model(plain);
    REQUIRE(ms.has_value());
    REQUIRE(mp.has_value());
    const std::string cs = ms->components.front().name, cp = mp->components.front().name;
    // The planner sees the pair as one pre-quantized Linear: no cast or quantizer applies again.
    CHECK(summarize(ms->components.front()).prequantized == "fp8 scaled");
    auto a = Session::open(*ms, strategy_for(cs, {}), plugin_options());
    INFO(a.status().to_string());
    REQUIRE(a.has_value());
    auto b = Session::open(*mp, strategy_for(cp, {}), plugin_options());
    REQUIRE(b.has_value());
    auto ha = a->acquire(cs, "blocks.0");
    auto hb = b->acquire(cp, "blocks.0");
    REQUIRE(ha.has_value());
    REQUIRE(hb.has_value());
    const TensorView* w = ha->find("blocks.0.proj.weight");
    REQUIRE(w != nullptr);
    CHECK(w->packed);
    CHECK(ha->find(std::string("blocks.0.proj.") + c.scale_name) == nullptr);  // folded in
    const std::size_t tokens = 4;
    std::vector<float> x(tokens * in), ya(tokens * out), yb(tokens * out);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.21f * static_cast<float>(i));
    REQUIRE(a->linear(*ha, "blocks.0.proj", x.data(), tokens, ya.data()).is_ok());
    REQUIRE(b->linear(*hb, "blocks.0.proj", x.data(), tokens, yb.data()).is_ok());
    CHECK(std::memcmp(ya.data(), yb.data(), ya.size() * 4) == 0);
  }
}

TEST_CASE("prequant: damaged bitsandbytes state is an error naming the tensor and the fix",
          "[prequant][runtime]") {
  test::TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 2, 64);
  const std::string victim = "transformer_blocks.0.attn.to_q.weight";
  const auto without = [](Copy& c, const std::string& name) {
    std::vector<TensorData> out;
    for (const TensorData& t : c.tensors)
      if (t.name != name) out.push_back(t);
    return out;
  };
  if (have("dmem.quantizer.nf4")) {
    const Model pre = converted(model, dir.file("nf4.safetensors"), "nf4");
    Copy c = copy_of(pre.components.front());
    write_copy(dir.file("no-absmax.safetensors"), without(c, victim + ".absmax"));
    Status s = open_status(dir.file("no-absmax.safetensors"));
    CHECK(s.rule() == "prequant.state");
    CHECK(s.tensor() == victim);
    CHECK(s.message().find("absmax") != std::string::npos);
    CHECK_FALSE(s.hint().empty());

    // absmax one block short
    std::vector<TensorData> shorter = c.tensors;
    for (TensorData& t : shorter) {
      if (t.name != victim + ".absmax") continue;
      t.shape = {t.shape[0] - 1};
      t.nbytes -= 4;
    }
    write_copy(dir.file("short-absmax.safetensors"), shorter);
    s = open_status(dir.file("short-absmax.safetensors"));
    CHECK(s.rule() == "prequant.state");
    CHECK(s.tensor() == victim + ".absmax");

    write_copy(dir.file("no-state.safetensors"),
               without(c, victim + ".quant_state.bitsandbytes__nf4"));
    s = open_status(dir.file("no-state.safetensors"));
    CHECK(s.rule() == "prequant.state");
    CHECK(s.message().find("quant_state") != std::string::npos);

    // A plugin missing: a registry without nf4.
    PluginRegistry empty;
    SessionOptions o;
    o.plugins = &empty;
    auto missing = Session::open(pre, strategy_for(pre.components.front().name, {}), o);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.status().rule() == "plugin.missing");
    CHECK(missing.status().message().find("bnb nf4") != std::string::npos);
    CHECK(missing.status().tensor().find(".weight") != std::string::npos);
  }
  if (have("dmem.quantizer.bnb_int8")) {
    const Model pre = converted(model, dir.file("int8.safetensors"), "int8");
    Copy c = copy_of(pre.components.front());
    write_copy(dir.file("no-scb.safetensors"), without(c, "transformer_blocks.0.attn.to_q.SCB"));
    Status s = open_status(dir.file("no-scb.safetensors"));
    CHECK(s.rule() == "prequant.state");
    CHECK(s.tensor() == victim);
    CHECK(s.message().find("SCB") != std::string::npos);
    // The weight gone, its SCB left behind.
    write_copy(dir.file("orphan.safetensors"), without(c, victim));
    s = open_status(dir.file("orphan.safetensors"));
    CHECK(s.rule() == "prequant.state");
    CHECK(s.tensor() == "transformer_blocks.0.attn.to_q.SCB");
  }
}

TEST_CASE("prequant: every injected failure while gathering is a clean Status",
          "[prequant][runtime][faults]") {
  if (!have("dmem.quantizer.nf4")) {
    WARN("nf4 plugin not built; skipped");
    return;
  }
  test::TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 2, 32);
  const Model pre = converted(model, dir.file("nf4-dq.safetensors"), "nf4-dq");
  const std::string comp = pre.components.front().name;
  Disarm disarm;
  std::uint64_t walked = 0;
  for (PlacementKind kind : {PlacementKind::resident, PlacementKind::disk}) {
    Placement p;
    p.kind = kind;
    SessionOptions options = plugin_options();
    std::uint64_t expected = 0;
    {
      auto s = Session::open(pre, strategy_for(comp, p), options);
      REQUIRE(s.has_value());
      auto sum = test::run_workload(*s, 1, 3, comp);
      REQUIRE(sum.has_value());
      expected = *sum;
    }
    for (auto site :
         {detail::FaultSite::read, detail::FaultSite::short_read, detail::FaultSite::host_alloc}) {
      detail::fault_reset();
      detail::fault_arm(site, 1000000);
      {
        auto s = Session::open(pre, strategy_for(comp, p), options);
        REQUIRE(s.has_value());
        REQUIRE(test::run_workload(*s, 1, 3, comp).has_value());
      }
      const std::uint64_t calls = detail::fault_calls(site);
      walked += calls;
      for (std::uint64_t n = 1; n <= calls; ++n) {
        INFO("site " << static_cast<int>(site) << " call " << n);
        detail::fault_arm(site, n);
        auto s = Session::open(pre, strategy_for(comp, p), options);
        if (!s) {
          CHECK_FALSE(s.status().is_ok());
          continue;
        }
        auto sum = test::run_workload(*s, 1, 3, comp);
        if (!sum) continue;  // a read while acquiring failed, reported as a Status
        CHECK(*sum == expected);
      }
      detail::fault_reset();
    }
  }
  CHECK(walked > 0);
}

TEST_CASE("prequant: the files bitsandbytes itself saved run as a session that quantized the input",
          "[prequant][runtime]") {
  // tests/golden/convert/: Linear4bit / Linear8bitLt state dicts saved by bitsandbytes 0.50.2
  // (scripts/golden/convert.py) from input.safetensors.
  const std::string golden = std::string(DMEM_GOLDEN_DIR) + "/convert/";
  auto input = open_model(golden + "input.safetensors");
  REQUIRE(input.has_value());
  const std::string ci = input->components.front().name;
  for (const char* name : {"nf4-dq", "fp4"}) {
    INFO(name);
    if (!have("dmem.quantizer.nf4")) {
      WARN("nf4 plugin not built; skipped");
      return;
    }
    const std::string file = std::string(name) == "nf4-dq" ? "nf4_dq" : name;
    auto saved = open_model(golden + file + ".safetensors");
    REQUIRE(saved.has_value());
    const std::string cs = saved->components.front().name;
    auto self = Session::open(*input, strategy_for(ci, {}, quantized_as(name)), plugin_options());
    INFO(self.status().to_string());
    REQUIRE(self.has_value());
    auto loaded = Session::open(*saved, strategy_for(cs, {}), plugin_options());
    INFO(loaded.status().to_string());
    REQUIRE(loaded.has_value());
    CHECK(compare(*self, ci, *loaded, cs) > 0);
  }
}

TEST_CASE("prequant: dmem run on a converted diffusers folder", "[prequant][cli][slow]") {
  if (!have("dmem.quantizer.nf4")) {
    WARN("nf4 plugin not built; skipped");
    return;
  }
  test::TempDir dir;
  const Model model = synthetic_flux(dir);
  ConvertOptions o;
  auto q = resolve_quantizer("nf4");
  REQUIRE(q.has_value());
  q->component = "transformer";
  o.quantize.push_back(*q);
  o.plugins = &stock_plugins();
  const std::string out = dir.file("flux-nf4");
  auto r = convert_model(model, out, o);
  INFO(r.status().to_string());
  REQUIRE(r.has_value());
  std::string text;
  const int rc =
      test::run_command(test::cli_path() + " run " + out + " --steps 1 --json", &text, false);
  INFO(text);
  REQUIRE(rc == 0);
  CHECK(text.find("\"denoise\"") != std::string::npos);
}

TEST_CASE("prequant: gathered int8 pieces are the bytes the plugin packs from the original",
          "[prequant][runtime]") {
  // LLM.int8 cannot run on the CPU device, so its layout is checked without a session: the
  // pieces found in the converted file, read in order, against the plugin's own quantize().
  if (!have("dmem.quantizer.bnb_int8")) {
    WARN("bnb_int8 plugin not built; skipped");
    return;
  }
  test::TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 2, 64);
  const Model pre = converted(model, dir.file("int8.safetensors"), "int8");
  const Component& src = model.components.front();
  const Component& dst = pre.components.front();
  auto source = TensorSource::open(dst);
  auto original = TensorSource::open(src);
  REQUIRE(source.has_value());
  REQUIRE(original.has_value());
  auto found = detail::find_prequantized(dst, *source);
  INFO(found.status().to_string());
  REQUIRE(found.has_value());
  REQUIRE_FALSE(found->empty());
  auto q = stock_plugins().create_quantizer("dmem.quantizer.bnb_int8", {});
  REQUIRE(q.has_value());
  for (detail::PrequantWeight& w : *found) {
    INFO(w.weight->name);
    CHECK(w.format == "bnb int8");
    REQUIRE(detail::plan_pieces(w, *q, *source).is_ok());
    std::vector<unsigned char> gathered(w.logical.nbytes);
    for (const detail::PackedPiece& p : w.pieces) {
      if (p.tensor == nullptr) {
        std::memcpy(gathered.data() + p.at, p.bytes.data(), p.nbytes);
      } else {
        REQUIRE(source->read(*p.tensor, gathered.data() + p.at).is_ok());
      }
    }
    const TensorInfo* t = nullptr;
    for (const TensorInfo& s : src.tensors)
      if (s.name == w.weight->name) t = &s;
    REQUIRE(t != nullptr);
    std::vector<unsigned char> raw(t->nbytes), packed(w.logical.nbytes);
    REQUIRE(original->read(*t, raw.data()).is_ok());
    REQUIRE(q->quantize(HostTensor{t->dtype, t->shape, raw.data(), t->nbytes}, packed.data(),
                        packed.size())
                .is_ok());
    CHECK(gathered == packed);
  }
}

TEST_CASE("prequant: variants no plugin decodes are refused by name", "[prequant][runtime]") {
  test::TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 2, 64);
  const std::string victim = "transformer_blocks.0.attn.to_q.weight";
  if (have("dmem.quantizer.nf4")) {
    const Model pre = converted(model, dir.file("nf4.safetensors"), "nf4");
    Copy c = copy_of(pre.components.front());
    for (std::size_t i = 0; i < c.tensors.size(); ++i) {
      if (c.tensors[i].name != victim + ".quant_map") continue;
      float v = 0;
      std::memcpy(&v, c.bytes[i].data() + 4, 4);
      v *= 1.5f;  // another code table
      std::memcpy(c.bytes[i].data() + 4, &v, 4);
    }
    write_copy(dir.file("map.safetensors"), c.tensors);
    Status s = open_status(dir.file("map.safetensors"));
    CHECK(s.rule() == "prequant.format");
    CHECK(s.tensor() == victim + ".quant_map");
  }
  // fp8 with three scales for 64 rows (block-wise scales are not read).
  std::vector<unsigned char> codes(64 * 64, 0x38);
  const float scales[3] = {1, 2, 3};
  write_copy(
      dir.file("fp8.safetensors"),
      {TensorData{"blocks.0.proj.weight", DType::f8_e4m3, {64, 64}, codes.data(), codes.size()},
       TensorData{"blocks.0.proj.weight_scale", DType::f32, {3}, scales, 12},
       TensorData{"blocks.1.proj.weight", DType::f8_e4m3, {64, 64}, codes.data(), codes.size()}});
  Status s = open_status(dir.file("fp8.safetensors"));
  CHECK(s.rule() == "prequant.format");
  CHECK(s.tensor() == "blocks.0.proj.weight_scale");
  CHECK_FALSE(s.hint().empty());
}

// On a GPU: a bitsandbytes nf4 checkpoint runs through the plugin's CUDA kernel, and its layers
// give exactly the outputs of a GPU session that quantized the same weights itself (the packed
// bytes are the same, so are the kernel and the GEMM).
TEST_CASE("prequant: a bitsandbytes nf4 checkpoint runs on the GPU as stored", "[prequant][cuda]") {
  if (!detail::cuda_compiled() || detail::cuda_devices().empty()) {
    std::printf("DMEM_SKIP: no CUDA device\n");
    return;
  }
  if (!have("dmem.quantizer.nf4")) {
    WARN("nf4 plugin not built; skipped");
    return;
  }
  test::TempDir dir;
  const Model model = test::make_block_model(dir.file("m.safetensors"), 3, 64);
  const Model pre = converted(model, dir.file("nf4.safetensors"), "nf4");
  const std::string comp = pre.components.front().name;
  SessionOptions o = plugin_options();
  o.device = DeviceKind::cuda;
  auto self = Session::open(model, test::one_component({}, quantized_as("nf4")), o);
  INFO(self.status().to_string());
  REQUIRE(self.has_value());
  auto loaded = Session::open(pre, strategy_for(comp, {}), o);
  INFO(loaded.status().to_string());
  REQUIRE(loaded.has_value());
  const std::size_t tokens = 3;
  std::size_t layers = 0;
  for (const std::string& unit : self->modules("transformer")) {
    auto a = self->acquire("transformer", unit);
    auto b = loaded->acquire(comp, unit);
    REQUIRE(a.has_value());
    REQUIRE(b.has_value());
    for (const TensorView& t : a->tensors()) {
      const std::string& name = *t.name;
      if (!t.packed || !name.ends_with(".weight")) continue;
      const std::uint64_t out = (*t.shape)[0], in = (*t.shape)[1];
      const std::string leaf = name.substr(0, name.size() - 7);
      std::vector<float> x(tokens * in), ya(tokens * out), yb(tokens * out);
      for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(static_cast<float>(i) * 0.11f);
      for (Session* s : {&*self, &*loaded}) {
        auto dx = s->allocate_buffer(x.size() * 4);
        auto dy = s->allocate_buffer(ya.size() * 4);
        REQUIRE(dx.has_value());
        REQUIRE(dy.has_value());
        REQUIRE(s->upload(*dx, x.data(), x.size() * 4).is_ok());
        const Status ran = s->linear(s == &*self ? *a : *b, leaf, static_cast<const float*>(*dx),
                                     tokens, static_cast<float*>(*dy));
        INFO(ran.to_string());
        REQUIRE(ran.is_ok());
        REQUIRE(s->download(s == &*self ? ya.data() : yb.data(), *dy, ya.size() * 4).is_ok());
        s->release_buffer(*dx, x.size() * 4);
        s->release_buffer(*dy, ya.size() * 4);
      }
      ++layers;
      CHECK(std::memcmp(ya.data(), yb.data(), ya.size() * 4) == 0);
    }
  }
  CHECK(layers > 0);
}
