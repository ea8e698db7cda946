// The planner's quantizer descriptions come from the loaded plugins (docs/planner.md, "Quantizer
// descriptions"): the sample plugin of samples/custom_quantizer, whose capabilities no stock
// quantizer has, changes what the planner offers and what the validator accepts; without a
// registry the built-in table stays. Also checks the sample's arithmetic.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dmem/catalog.hpp"
#include "dmem/log.hpp"
#include "dmem/plan.hpp"
#include "dmem/plugin_registry.hpp"
#include "dmem/quantizer.hpp"
#include "dmem/quantizer_instance.hpp"

namespace {

using namespace dmem;

constexpr const char* kSampleId = "example.quantizer.int4_g32";
constexpr std::uint64_t kGiB = 1024ull * 1024ull * 1024ull;

Hardware machine(const char* gpu, std::uint64_t ram) {
  HardwareOptions o;
  o.probe = false;
  o.gpu = gpu;
  o.ram = ram;
  o.disk = 500 * kGiB;
  auto hw = make_hardware(o);
  REQUIRE(hw);
  return *hw;
}

const QuantizerCaps* find(const std::vector<QuantizerCaps>& table, const std::string& id) {
  for (const auto& c : table)
    if (c.id == id) return &c;
  return nullptr;
}

bool uses(const Strategy& s, const std::string& id) {
  for (const auto& c : s.components)
    if (c.storage.kind == StorageKind::quantized && c.storage.quantizer == id) return true;
  return false;
}

Strategy sample_on_cpu(const Model& m) {
  Strategy s;
  for (const auto& c : m.components) {
    ComponentStrategy cs;
    cs.component = c.name;
    cs.placement.kind = PlacementKind::cpu;
    if (c.role == Role::denoiser) {
      cs.storage.kind = StorageKind::quantized;
      cs.storage.quantizer = kSampleId;
    }
    s.components.push_back(cs);
  }
  return s;
}

}  // namespace

TEST_CASE("plan plugins: the sample's capabilities reach the planner's table", "[plan][plugins]") {
  PluginRegistry r;
  REQUIRE(r.load(DMEM_TEST_PLUGIN_INT4_G32));
  const std::vector<QuantizerCaps> table = plugin_quantizers(r);
  const QuantizerCaps* c = find(table, kSampleId);
  REQUIRE(c != nullptr);
  CHECK(c->exec_devices == kDeviceCpu);
  CHECK(c->storage_tiers == (kTierVram | kTierPinned | kTierPageable | kTierDisk));
  CHECK(c->quality == QualityTier::q4);
  CHECK(c->speed_factor == Approx(1.4));
  CHECK(c->block_size == 32);
  CHECK(c->input_dtypes == std::vector<DType>{DType::f32});
  CHECK(c->display == "int4 g32 (example)");
  CHECK(c->stored_bytes);
  // Only what is registered, plus the transforms the core does itself: no stock quantizer.
  CHECK(find(table, "dmem.quantizer.nf4") == nullptr);
  CHECK(find(table, "dmem.quantizer.cast16") != nullptr);

  // Exact bytes are the plugin's: a bf16 weight is widened to f32 first (as the loader does),
  // 32 weights take one f32 scale and 16 bytes of codes; rows that are not whole groups stay.
  TensorInfo w;
  w.name = "blocks.0.attn.to_q.weight";
  w.dtype = DType::bf16;
  w.shape = {3072, 3072};
  w.nbytes = 3072ull * 3072ull * 2;
  CHECK(quantized_bytes(*c, w, true) == 3072ull * 96ull * 20ull);
  CHECK(quantized_bytes(*c, w, false) == w.nbytes);
  TensorInfo odd = w;
  odd.shape = {64, 100};
  odd.nbytes = 64ull * 100ull * 2;
  CHECK(quantized_bytes(*c, odd, true) == odd.nbytes);
  TensorInfo ints = w;
  ints.dtype = DType::i32;
  ints.nbytes = 3072ull * 3072ull * 4;
  CHECK(quantized_bytes(*c, ints, true) == ints.nbytes);
}

TEST_CASE("plan plugins: a registry's quantizers change what the planner offers",
          "[plan][plugins]") {
  auto m = catalog_model("flux1-schnell");
  REQUIRE(m);
  const Hardware cpu = machine("none", 256 * kGiB);
  const Workload wl = default_workload(*m);

  // No registry: the built-in table (nf4 among others), and no sample.
  auto builtin = make_plans(*m, cpu, wl);
  REQUIRE(builtin);
  bool builtin_nf4 = false;
  for (const auto& p : builtin->plans) {
    CHECK_FALSE(uses(p.strategy, kSampleId));
    builtin_nf4 = builtin_nf4 || uses(p.strategy, "dmem.quantizer.nf4");
  }
  CHECK(builtin_nf4);

  // With the sample registered: it is offered and fits a CPU machine; nf4 is not registered,
  // so it is not offered.
  PluginRegistry r;
  REQUIRE(r.load(DMEM_TEST_PLUGIN_INT4_G32));
  PlanOptions opt;
  opt.plugins = &r;
  auto with = make_plans(*m, cpu, wl, opt);
  REQUIRE(with);
  const Plan* sample = nullptr;
  for (const auto& p : with->plans) {
    CHECK_FALSE(uses(p.strategy, "dmem.quantizer.nf4"));
    if (sample == nullptr && uses(p.strategy, kSampleId)) sample = &p;
  }
  REQUIRE(sample != nullptr);
  CHECK(sample->quality_tier == "q4");
  // Its exact bytes, a quarter of bf16 and a little more: the plan needs less RAM than the
  // all-native one.
  const Plan* native = nullptr;
  for (const auto& p : with->plans)
    if (std::all_of(
            p.strategy.components.begin(), p.strategy.components.end(),
            [](const ComponentStrategy& c) { return c.storage.kind == StorageKind::native; }))
      native = native == nullptr ? &p : native;
  REQUIRE(native != nullptr);
  CHECK(sample->estimate.ram_peak_bytes < native->estimate.ram_peak_bytes);

  // The validator agrees with the planner: the sample's strategy is valid with the registry,
  // unknown without it.
  const Strategy s = sample_on_cpu(*m);
  auto ok = validate(*m, s, cpu, wl, opt);
  REQUIRE(ok);
  CHECK(ok->empty());
  auto unknown = validate(*m, s, cpu, wl);
  REQUIRE(unknown);
  CHECK(std::any_of(unknown->begin(), unknown->end(),
                    [](const Violation& v) { return v.rule == "quantizer.unknown"; }));
}

TEST_CASE("plan plugins: a CPU-only plugin is not placed on a GPU", "[plan][plugins]") {
  auto m = catalog_model("flux1-schnell");
  REQUIRE(m);
  const Hardware gpu = machine("rtx4090", 64 * kGiB);
  PluginRegistry r;
  REQUIRE(r.load(DMEM_TEST_PLUGIN_INT4_G32));
  PlanOptions opt;
  opt.plugins = &r;
  opt.prune = false;
  auto report = make_plans(*m, gpu, default_workload(*m), opt);
  REQUIRE(report);
  for (const auto& p : report->plans)
    for (const auto& c : p.strategy.components)
      if (c.storage.quantizer == kSampleId) CHECK(c.placement.kind == PlacementKind::cpu);
  bool exec_rejected = false;
  for (const auto& rej : report->rejected)
    if (uses(rej.strategy, kSampleId))
      for (const auto& v : rej.violations) exec_rejected |= v.rule == "quantizer.exec_device";
  CHECK(exec_rejected);
}

TEST_CASE("plan plugins: the sample quantizes, dequantizes and runs linear within int4 bounds",
          "[plugins]") {
  PluginRegistry r;
  REQUIRE(r.load(DMEM_TEST_PLUGIN_INT4_G32));
  auto q = r.create_quantizer(kSampleId);
  REQUIRE(q);
  const std::vector<std::uint64_t> shape{4, 64};
  std::vector<float> w(256);
  for (std::size_t i = 0; i < w.size(); ++i)
    w[i] = std::sin(0.37f * static_cast<float>(i)) * (1.0f + static_cast<float>(i % 7));
  auto bytes = q->stored_bytes(DType::f32, shape);
  REQUIRE(bytes);
  CHECK(*bytes == 8 * 20);
  std::vector<std::uint8_t> packed(*bytes);
  HostTensor src{DType::f32, shape, w.data(), w.size() * 4};
  REQUIRE(q->quantize(src, packed.data(), packed.size()));
  HostTensor pk{DType::f32, shape, packed.data(), packed.size()};
  std::vector<float> back(w.size());
  REQUIRE(q->dequantize(pk, DType::f32, back.data(), back.size() * 4));
  for (std::size_t g = 0; g < 8; ++g) {
    float absmax = 0;
    for (std::size_t i = 0; i < 32; ++i) absmax = std::max(absmax, std::fabs(w[g * 32 + i]));
    for (std::size_t i = 0; i < 32; ++i)  // round to nearest: half a step of absmax / 7
      CHECK(std::fabs(back[g * 32 + i] - w[g * 32 + i]) <= absmax / 14.0f * 1.0001f);
  }
  // linear equals x · dequantized(W)ᵀ + bias.
  std::vector<float> x(2 * 64), y(2 * 4), bias{0.5f, -1.0f, 2.0f, 0.0f};
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::cos(0.11f * static_cast<float>(i));
  const std::vector<std::uint64_t> bshape{4};
  HostTensor b{DType::f32, bshape, bias.data(), bias.size() * 4};
  REQUIRE(q->linear(pk, &b, x.data(), 2, y.data()));
  for (std::size_t n = 0; n < 2; ++n)
    for (std::size_t o = 0; o < 4; ++o) {
      double ref = bias[o];
      for (std::size_t k = 0; k < 64; ++k) ref += double(x[n * 64 + k]) * back[o * 64 + k];
      CHECK(y[n * 4 + o] == Approx(ref).margin(1e-4));
    }
  // A row that is not whole groups is refused (the planner keeps such a tensor native).
  const std::vector<std::uint64_t> odd{4, 40};
  CHECK_FALSE(q->stored_bytes(DType::f32, odd));
}

TEST_CASE("plan plugins: a plugin logs through the host table, tagged with its id", "[plugins]") {
  std::mutex mu;
  std::vector<std::pair<LogLevel, std::string>> got;
  LogConfig config;
  config.level = LogLevel::debug;
  config.callback = [&](LogLevel level, std::string_view message) {
    const std::lock_guard<std::mutex> lock(mu);
    got.emplace_back(level, std::string(message));
  };
  struct Reset {  // the callback refers to this test's locals: never leave it installed
    ~Reset() { PluginRegistry::set_plugin_log({}); }
  } reset;
  PluginRegistry::set_plugin_log(config);
  PluginRegistry r;
  REQUIRE(r.load(DMEM_TEST_PLUGIN_INT4_G32));
  auto q = r.create_quantizer(kSampleId);
  REQUIRE(q);
  const std::vector<std::uint64_t> shape{2, 64};
  std::vector<float> w(128, 0.25f);
  std::vector<std::uint8_t> packed(2 * 2 * 20);
  HostTensor src{DType::f32, shape, w.data(), w.size() * 4};
  REQUIRE(q->quantize(src, packed.data(), packed.size()));
  {
    const std::lock_guard<std::mutex> lock(mu);
    REQUIRE(got.size() == 1);
    CHECK(got[0].first == LogLevel::debug);
    CHECK(got[0].second == "[example.quantizer.int4_g32] quantized 2 x 64 into 4 groups");
  }
  // Below the level: dropped before any formatting reaches the callback.
  config.level = LogLevel::warn;
  PluginRegistry::set_plugin_log(config);
  REQUIRE(q->quantize(src, packed.data(), packed.size()));
  {
    const std::lock_guard<std::mutex> lock(mu);
    CHECK(got.size() == 1);
  }
  PluginRegistry::set_plugin_log({});  // back to dropping
  REQUIRE(q->quantize(src, packed.data(), packed.size()));
  const std::lock_guard<std::mutex> lock(mu);
  CHECK(got.size() == 1);
}
