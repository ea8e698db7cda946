// The composition validator: every rule triggered by a crafted strategy and reported by id,
// every violation reported (not the first), budgets with the margin, and `dmem validate`.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>

#include "dmem/catalog.hpp"
#include "dmem/plan.hpp"
#include "dmem/quantizer.hpp"
#include "plan/rules.hpp"
#include "support/test_support.hpp"

using namespace dmem;
using dmem::test::TempDir;

namespace {

constexpr std::uint64_t kGiB = 1024ull * 1024ull * 1024ull;

TensorInfo tensor(const std::string& name, std::vector<std::uint64_t> shape,
                  DType dt = DType::bf16) {
  TensorInfo t;
  t.name = name;
  t.dtype = dt;
  t.shape = std::move(shape);
  t.nbytes = t.elements() * 2;
  return t;
}

// A tiny pipeline: a 4-block denoiser, a 2-layer text encoder and a block-less VAE.
Model tiny_model() {
  Model m;
  m.name = "tiny";
  m.source = "test";
  Component tr;
  tr.name = "transformer";
  tr.role = Role::denoiser;
  for (int b = 0; b < 4; ++b) {
    const std::string p = "transformer_blocks." + std::to_string(b) + ".";
    tr.tensors.push_back(tensor(p + "attn.to_q.weight", {256, 256}));
    tr.tensors.push_back(tensor(p + "ff.net.0.proj.weight", {1024, 256}));
  }
  tr.tensors.push_back(tensor("proj_out.weight", {64, 256}));
  Component te;
  te.name = "text_encoder";
  te.role = Role::text_encoder;
  for (int b = 0; b < 2; ++b)
    te.tensors.push_back(tensor("layers." + std::to_string(b) + ".mlp.weight", {512, 256}));
  Component vae;
  vae.name = "vae";
  vae.role = Role::vae;
  vae.tensors.push_back(tensor("decoder.conv_in.weight", {64, 16, 3, 3}));
  m.components = {tr, te, vae};
  return m;
}

GpuSpec gpu(const char* id) {
  for (const auto& p : gpu_presets())
    if (p.id == id) return p.spec;
  return {};
}

Hardware machine(const char* preset, const std::string& cache_dir) {
  Hardware hw;
  if (preset != nullptr) hw.gpus.push_back(gpu(preset));
  hw.ram_total = hw.ram_available = 64 * kGiB;
  hw.disk_free = 100 * kGiB;
  hw.cache_dir = cache_dir;
  hw.cpu_cores = 8;
  return hw;
}

ComponentStrategy comp(const std::string& name, PlacementKind kind) {
  ComponentStrategy c;
  c.component = name;
  c.placement.kind = kind;
  return c;
}

void quantize(ComponentStrategy& c, const char* id,
              std::vector<std::pair<std::string, std::string>> params = {}) {
  c.storage.kind = StorageKind::quantized;
  c.storage.quantizer = id;
  c.storage.params = std::move(params);
}

std::vector<Violation> check(const Model& m, const Strategy& s, const Hardware& hw,
                             const std::vector<QuantizerCaps>& caps = builtin_quantizers(),
                             detail::EstimateFn est = nullptr, double margin = 0.10) {
  PlanOptions o;
  o.margin = margin;
  auto r = detail::validate_with(m, s, hw, Workload{}, o, caps, est);
  REQUIRE(r);
  return *r;
}

std::set<std::string> ids(const std::vector<Violation>& v) {
  std::set<std::string> out;
  for (const auto& x : v) out.insert(x.rule);
  return out;
}

bool has(const std::vector<Violation>& v, const std::string& rule,
         const std::string& component = "*") {
  return std::any_of(v.begin(), v.end(), [&](const Violation& x) {
    return x.rule == rule && (component == "*" || x.component == component);
  });
}

std::string dump(const std::vector<Violation>& v) {
  std::string out;
  for (const auto& x : v)
    out += x.rule + " [" + x.component + "] " + x.message + " / " + x.fix + "\n";
  return out;
}

}  // namespace

TEST_CASE("a sound strategy has no violations", "[validate]") {
  TempDir dir;
  const Model m = tiny_model();
  Strategy s;
  auto t = comp("transformer", PlacementKind::partial);
  t.placement.resident_blocks = 2;
  quantize(t, "dmem.quantizer.nf4");
  auto te = comp("text_encoder", PlacementKind::group_offload);
  te.storage.kind = StorageKind::layerwise_cast;
  auto vae = comp("vae", PlacementKind::resident);
  s.components = {t, te, vae};
  const auto v = check(m, s, machine("rtx3090", dir.path().string()));
  INFO(dump(v));
  CHECK(v.empty());
}

TEST_CASE("model offload + group offload breaks placement.exclusive", "[validate]") {
  TempDir dir;
  Strategy s;
  s.components = {comp("transformer", PlacementKind::group_offload),
                  comp("text_encoder", PlacementKind::model_offload)};
  auto v = check(tiny_model(), s, machine("rtx4090", dir.path().string()));
  INFO(dump(v));
  REQUIRE(has(v, "placement.exclusive"));
  const auto& x = *std::find_if(v.begin(), v.end(),
                                [](const Violation& y) { return y.rule == "placement.exclusive"; });
  CHECK(x.message.find("transformer (group_offload)") != std::string::npos);
  CHECK(x.message.find("text_encoder (model_offload)") != std::string::npos);
  CHECK(!x.fix.empty());
  // Sequential + model offload too; one kind on several components is fine, and dmem's own
  // partial residency combines with model offload.
  s.components = {comp("transformer", PlacementKind::sequential),
                  comp("text_encoder", PlacementKind::model_offload)};
  CHECK(
      has(check(tiny_model(), s, machine("rtx4090", dir.path().string())), "placement.exclusive"));
  s.components = {comp("transformer", PlacementKind::model_offload),
                  comp("text_encoder", PlacementKind::model_offload)};
  CHECK(
      !has(check(tiny_model(), s, machine("rtx4090", dir.path().string())), "placement.exclusive"));
  auto part = comp("transformer", PlacementKind::partial);
  part.placement.resident_blocks = 3;
  s.components = {part, comp("text_encoder", PlacementKind::model_offload)};
  CHECK(check(tiny_model(), s, machine("rtx4090", dir.path().string())).empty());
}

TEST_CASE("a streamed group of two blocks breaks offload.streams", "[validate]") {
  TempDir dir;
  Strategy s;
  auto t = comp("transformer", PlacementKind::group_offload);
  t.placement.blocks_per_group = 2;
  t.placement.use_stream = true;
  s.components = {t};
  auto v = check(tiny_model(), s, machine("rtx4090", dir.path().string()));
  CHECK(has(v, "offload.streams", "transformer"));
  s.components[0].placement.use_stream = false;
  CHECK(check(tiny_model(), s, machine("rtx4090", dir.path().string())).empty());
  s.components[0].placement.record_stream = true;  // record_stream without streams
  CHECK(has(check(tiny_model(), s, machine("rtx4090", dir.path().string())), "offload.streams"));
  // Leaf level has no group size to respect.
  s.components[0].placement = Placement{};
  s.components[0].placement.kind = PlacementKind::group_offload;
  s.components[0].placement.level = OffloadLevel::leaf;
  s.components[0].placement.blocks_per_group = 4;
  CHECK(check(tiny_model(), s, machine("rtx4090", dir.path().string())).empty());
}

TEST_CASE("int8 computing on the CPU breaks quantizer.exec_device", "[validate]") {
  TempDir dir;
  Strategy s;
  auto t = comp("transformer", PlacementKind::cpu);
  quantize(t, "dmem.quantizer.bnb_int8");
  s.components = {t};
  auto v = check(tiny_model(), s, machine("rtx4090", dir.path().string()));
  INFO(dump(v));
  REQUIRE(has(v, "quantizer.exec_device", "transformer"));
  // The same placement with a quantizer that has CPU kernels is fine.
  s.components[0].storage.quantizer = "dmem.quantizer.gguf";
  s.components[0].storage.params = {{"type", "q8_0"}};
  CHECK(check(tiny_model(), s, machine("rtx4090", dir.path().string())).empty());
}

TEST_CASE("int8 parked in pinned RAM breaks quantizer.storage_tier", "[validate]") {
  TempDir dir;
  Strategy s;
  auto t = comp("transformer", PlacementKind::model_offload);
  quantize(t, "dmem.quantizer.bnb_int8");
  s.components = {t};
  auto v = check(tiny_model(), s, machine("rtx4090", dir.path().string()));
  INFO(dump(v));
  CHECK(has(v, "quantizer.storage_tier", "transformer"));
  CHECK(!has(v, "quantizer.exec_device"));  // it computes on CUDA; it just may not rest off it
  // Resident int8 is fine; nf4 may move.
  s.components[0].placement.kind = PlacementKind::resident;
  CHECK(check(tiny_model(), s, machine("rtx4090", dir.path().string())).empty());
  s.components[0].placement.kind = PlacementKind::model_offload;
  quantize(s.components[0], "dmem.quantizer.nf4");
  CHECK(check(tiny_model(), s, machine("rtx4090", dir.path().string())).empty());
}

TEST_CASE("fp8 compute on sm_86 breaks device.features", "[validate]") {
  TempDir dir;
  Strategy s;
  auto t = comp("transformer", PlacementKind::resident);
  quantize(t, "dmem.quantizer.fp8");
  s.components = {t};
  auto v = check(tiny_model(), s, machine("rtx3090", dir.path().string()));
  INFO(dump(v));
  REQUIRE(has(v, "device.features", "transformer"));
  CHECK(v[0].message.find("8.9") != std::string::npos);
  CHECK(check(tiny_model(), s, machine("rtx4090", dir.path().string())).empty());
  // The fp8 *cast* upcasts per layer and runs on sm_86.
  s.components[0].storage = Storage{};
  s.components[0].storage.kind = StorageKind::layerwise_cast;
  CHECK(check(tiny_model(), s, machine("rtx3090", dir.path().string())).empty());
}

TEST_CASE("a quantizer built for other architectures asks for a rebuild", "[validate]") {
  TempDir dir;
  std::vector<QuantizerCaps> caps = builtin_quantizers();
  QuantizerCaps hopper_only;
  hopper_only.id = "test.quantizer.sm90";
  hopper_only.display = "sm90-only";
  hopper_only.exec_devices = kDeviceCuda;
  hopper_only.storage_tiers = kTierVram;
  hopper_only.cuda_archs = {90};
  caps.push_back(hopper_only);
  Strategy s;
  auto t = comp("transformer", PlacementKind::resident);
  quantize(t, "test.quantizer.sm90");
  s.components = {t};
  auto v = check(tiny_model(), s, machine("rtx3090", dir.path().string()), caps);
  INFO(dump(v));
  REQUIRE(has(v, "device.features"));
  CHECK(v[0].fix.find("CMAKE_CUDA_ARCHITECTURES=86") != std::string::npos);
  CHECK(check(tiny_model(), s, machine("h100", dir.path().string()), caps).empty());
  // sm_80 SASS runs on sm_86 (same major).
  caps.back().cuda_archs = {75, 80};
  CHECK(check(tiny_model(), s, machine("rtx3090", dir.path().string()), caps).empty());
}

TEST_CASE("GPU placements on a CPU-only machine break device.none", "[validate]") {
  TempDir dir;
  Strategy s;
  s.components = {comp("transformer", PlacementKind::resident),
                  comp("text_encoder", PlacementKind::cpu)};
  auto v = check(tiny_model(), s, machine(nullptr, dir.path().string()));
  CHECK(has(v, "device.none", "transformer"));
  CHECK(!has(v, "device.none", "text_encoder"));
  s.components[0].placement.kind = PlacementKind::cpu;
  CHECK(check(tiny_model(), s, machine(nullptr, dir.path().string())).empty());
  // A GPU index the machine lacks.
  auto g = comp("transformer", PlacementKind::resident);
  g.placement.gpu = 1;
  s.components = {g};
  CHECK(has(check(tiny_model(), s, machine("rtx4090", dir.path().string())), "device.index"));
}

TEST_CASE(
    "cast plus quantizer, or a transform of pre-quantized weights, break storage.single_transform",
    "[validate]") {
  TempDir dir;
  Strategy s;
  auto t = comp("transformer", PlacementKind::resident);
  t.storage.kind = StorageKind::layerwise_cast;
  t.storage.quantizer = "dmem.quantizer.nf4";
  s.components = {t};
  CHECK(has(check(tiny_model(), s, machine("rtx4090", dir.path().string())),
            "storage.single_transform"));
  // Through JSON the same request reaches the validator rather than failing to parse.
  auto parsed = strategy_from_json(R"({"components": [{"component": "transformer",
      "storage": {"kind": "layerwise_cast", "dtype": "f8_e4m3", "quantizer": "nf4"}}]})");
  REQUIRE(parsed);
  CHECK(has(check(tiny_model(), *parsed, machine("rtx4090", dir.path().string())),
            "storage.single_transform"));

  Model gguf = tiny_model();
  gguf.components[0].tensors[0].dtype = DType::q4_k;
  Strategy c;
  auto cast = comp("transformer", PlacementKind::resident);
  cast.storage.kind = StorageKind::layerwise_cast;
  c.components = {cast};
  CHECK(has(check(gguf, c, machine("rtx4090", dir.path().string())), "storage.single_transform"));
  c.components[0].storage = Storage{};
  CHECK(check(gguf, c, machine("rtx4090", dir.path().string())).empty());

  // A 16-bit downcast is stored in the compute dtype: f16 storage computed in bf16 would round
  // twice.
  Strategy d;
  auto down = comp("transformer", PlacementKind::resident);
  down.storage.kind = StorageKind::layerwise_cast;
  down.storage.cast_dtype = DType::f16;
  d.components = {down};
  const auto v = check(tiny_model(), d, machine("rtx4090", dir.path().string()));
  REQUIRE(has(v, "storage.single_transform"));
  CHECK(v.front().fix.find("f16") != std::string::npos);
  d.components[0].storage.compute_dtype = DType::f16;
  CHECK_FALSE(has(check(tiny_model(), d, machine("rtx4090", dir.path().string())),
                  "storage.single_transform"));
}

TEST_CASE("a disk tier of transformed weights needs a writable cache dir", "[validate]") {
  TempDir dir;
  test::write_file(dir.file("a_file"), "x");
  const std::string unwritable = dir.file("a_file") + "/cache";  // below a regular file
  Strategy s;
  auto t = comp("transformer", PlacementKind::disk);
  quantize(t, "dmem.quantizer.gguf", {{"type", "q4_k"}});
  s.components = {t};
  CHECK(
      has(check(tiny_model(), s, machine("rtx4090", unwritable)), "disk.writable", "transformer"));
  CHECK(check(tiny_model(), s, machine("rtx4090", dir.file("new/cache"))).empty());
  Hardware full = machine("rtx4090", dir.path().string());
  full.disk_free = 0;
  CHECK(has(check(tiny_model(), s, full), "disk.writable"));
  // Unchanged weights: the checkpoint itself is the disk tier.
  s.components[0].storage = Storage{};
  CHECK(check(tiny_model(), s, machine("rtx4090", unwritable)).empty());
  // Offloaded weights parked on disk count too.
  auto parked = comp("transformer", PlacementKind::group_offload);
  parked.placement.park = Tier::disk;
  parked.storage.kind = StorageKind::layerwise_cast;
  s.components = {parked};
  CHECK(has(check(tiny_model(), s, machine("rtx4090", unwritable)), "disk.writable"));
}

TEST_CASE("partial residency keeps 0 < k < blocks", "[validate]") {
  TempDir dir;
  Strategy s;
  auto t = comp("transformer", PlacementKind::partial);
  s.components = {t};
  for (std::uint32_t k : {0u, 4u, 9u}) {
    s.components[0].placement.resident_blocks = k;
    INFO(k);
    CHECK(has(check(tiny_model(), s, machine("rtx4090", dir.path().string())), "partial.range"));
  }
  s.components[0].placement.resident_blocks = 3;
  CHECK(check(tiny_model(), s, machine("rtx4090", dir.path().string())).empty());
  // The VAE has no blocks at all.
  auto vae = comp("vae", PlacementKind::partial);
  vae.placement.resident_blocks = 1;
  s.components = {vae};
  CHECK(has(check(tiny_model(), s, machine("rtx4090", dir.path().string())), "offload.blocks"));
}

TEST_CASE("unknown components and quantizers are reported", "[validate]") {
  TempDir dir;
  Strategy s;
  auto u = comp("unet", PlacementKind::resident);
  auto q = comp("transformer", PlacementKind::resident);
  quantize(q, "dmem.quantizer.awq");
  s.components = {u, q};
  auto v = check(tiny_model(), s, machine("rtx4090", dir.path().string()));
  CHECK(has(v, "component.unknown", "unet"));
  CHECK(has(v, "quantizer.unknown", "transformer"));
}

TEST_CASE("every violation is reported, not the first", "[validate]") {
  TempDir dir;
  Strategy s;
  auto t = comp("transformer", PlacementKind::group_offload);
  t.placement.blocks_per_group = 2;                              // offload.streams
  auto te = comp("text_encoder", PlacementKind::model_offload);  // placement.exclusive
  quantize(te, "dmem.quantizer.bnb_int8");                       // storage tier (pinned)
  auto vae = comp("vae", PlacementKind::cpu);
  quantize(vae, "dmem.quantizer.bnb_int8");  // exec device + storage tier
  s.components = {t, te, vae, comp("unet", PlacementKind::resident)};
  const auto v = check(tiny_model(), s, machine("rtx4090", dir.path().string()));
  INFO(dump(v));
  CHECK(ids(v) == std::set<std::string>{"component.unknown", "placement.exclusive",
                                        "offload.streams", "quantizer.exec_device",
                                        "quantizer.storage_tier"});
  CHECK(has(v, "quantizer.storage_tier", "text_encoder"));
  CHECK(has(v, "quantizer.storage_tier", "vae"));
}

namespace {
Estimate g_estimate;
Result<Estimate> fake_estimate(const Model&, const Strategy&, const Hardware&,
                               const Workload&) noexcept {
  return g_estimate;
}
Result<Estimate> failing_estimate(const Model&, const Strategy&, const Hardware&,
                                  const Workload&) noexcept {
  return Status(Errc::unsupported, "cannot cost this");
}
}  // namespace

TEST_CASE("budgets are checked with the margin held back", "[validate]") {
  TempDir dir;
  Strategy s;
  s.components = {comp("transformer", PlacementKind::resident)};
  Hardware hw = machine("rtx4090", dir.path().string());  // 24 GiB VRAM, 64 GiB RAM, 100 GiB disk
  hw.pinned_limit = 0;                                    // half the RAM: 32 GiB
  g_estimate = Estimate{};
  g_estimate.vram_peak_bytes = 23 * kGiB;
  g_estimate.load_ram_peak_bytes = 60 * kGiB;
  g_estimate.ram_peak_bytes = 10 * kGiB;
  g_estimate.pinned_bytes = 30 * kGiB;
  g_estimate.disk_bytes = 95 * kGiB;
  auto v = check(tiny_model(), s, hw, builtin_quantizers(), fake_estimate, 0.10);
  INFO(dump(v));
  CHECK(ids(v) ==
        std::set<std::string>{"budget.vram", "budget.ram_load", "budget.pinned", "budget.disk"});
  const auto vram =
      std::find_if(v.begin(), v.end(), [](const Violation& x) { return x.rule == "budget.vram"; });
  CHECK(vram->message.find("23.00 GiB") != std::string::npos);
  CHECK(vram->message.find("10%") != std::string::npos);
  // Without a margin everything fits.
  CHECK(check(tiny_model(), s, hw, builtin_quantizers(), fake_estimate, 0.0).empty());
  g_estimate.ram_peak_bytes = 70 * kGiB;
  CHECK(has(check(tiny_model(), s, hw, builtin_quantizers(), fake_estimate, 0.0),
            "budget.ram_steady"));
  // A strategy the estimator cannot cost: rule violations still come back; alone, the error does.
  PlanOptions o;
  auto r = detail::validate_with(tiny_model(), s, hw, Workload{}, o, builtin_quantizers(),
                                 failing_estimate);
  REQUIRE(!r);
  CHECK(r.status().code() == Errc::unsupported);
  s.components.push_back(comp("unet", PlacementKind::resident));
  r = detail::validate_with(tiny_model(), s, hw, Workload{}, o, builtin_quantizers(),
                            failing_estimate);
  REQUIRE(r);
  CHECK(has(*r, "component.unknown"));
  o.margin = 1.5;
  CHECK(!detail::validate_with(tiny_model(), s, hw, Workload{}, o, builtin_quantizers(), nullptr));
}

TEST_CASE("the rules table has stable ids and names no plugin", "[validate]") {
  std::set<std::string> seen;
  for (const auto& r : detail::rules_table()) {
    INFO(r.id);
    CHECK(seen.insert(r.id).second);
    const std::string text = std::string(r.id) + " " + r.description;
    for (const char* plugin : {"nf4", "int8", "bnb", "gguf", "fp8_cast", "bitsandbytes"})
      CHECK(text.find(plugin) == std::string::npos);
  }
  for (const char* id :
       {"placement.exclusive", "quantizer.exec_device", "quantizer.storage_tier", "device.features",
        "device.none", "offload.streams", "storage.single_transform", "disk.writable",
        "partial.range", "component.unknown", "budget"})
    CHECK(seen.count(id) == 1);
}

TEST_CASE("rules hold on catalog models", "[validate]") {
  auto m = catalog_model("flux1-dev");
  REQUIRE(m);
  TempDir dir;
  Strategy s;
  auto t = comp("transformer", PlacementKind::group_offload);
  t.placement.blocks_per_group = 2;
  auto te = comp("text_encoder_2", PlacementKind::model_offload);
  s.components = {t, te};
  auto v = check(*m, s, machine("rtx4090", dir.path().string()));
  INFO(dump(v));
  CHECK(ids(v) == std::set<std::string>{"placement.exclusive", "offload.streams"});
  auto p = comp("transformer", PlacementKind::partial);
  p.placement.resident_blocks = 30;
  s.components = {p};
  CHECK(check(*m, s, machine("rtx4090", dir.path().string())).empty());
}

TEST_CASE("dmem validate reports violations by rule id", "[validate][cli]") {
  TempDir dir;
  const std::string flags =
      " --model flux1-dev --no-probe --gpu rtx4090 --ram 64GiB --disk 500GiB --cache-dir " +
      dir.path().string();
  const std::string bad = dir.file("bad.json");
  test::write_file(bad, R"({"components": [
      {"component": "transformer", "placement": {"kind": "group_offload", "blocks_per_group": 2, "use_stream": true}},
      {"component": "text_encoder_2", "placement": "model_offload"}]})");
  std::string out;
  int rc = test::run_command(test::cli_path() + " validate " + bad + flags, &out);
  INFO(out);
  CHECK(rc == 1);
  CHECK(out.find("placement.exclusive") != std::string::npos);
  CHECK(out.find("offload.streams") != std::string::npos);
  CHECK(out.find("fix:") != std::string::npos);

  rc = test::run_command(test::cli_path() + " validate " + bad + flags + " --json", &out, false);
  CHECK(rc == 1);
  CHECK(out.find("\"rule\": \"placement.exclusive\"") != std::string::npos);

  const std::string int8 = dir.file("int8.json");
  test::write_file(int8, R"({"components": [{"component": "transformer", "placement": "cpu",
      "storage": {"kind": "quantized", "quantizer": "bnb_int8"}}]})");
  rc = test::run_command(test::cli_path() + " validate " + int8 + flags, &out);
  CHECK(rc == 1);
  CHECK(out.find("quantizer.exec_device") != std::string::npos);

  const std::string typo = dir.file("typo.json");
  test::write_file(
      typo,
      R"({"components": [{"component": "transformer", "placement": {"kind": "resident", "prefetchh": 2}}]})");
  rc = test::run_command(test::cli_path() + " validate " + typo + flags, &out);
  CHECK(rc == 2);
  CHECK(out.find("typo.json") != std::string::npos);
  CHECK(out.find("prefetchh") != std::string::npos);

  rc = test::run_command(test::cli_path() + " validate " + bad +
                             " --model flux1-dev --no-probe --gpu rtx4090 --ram 64GiB --margin 2",
                         &out);
  CHECK(rc == 2);
  CHECK(out.find("--margin") != std::string::npos);
  rc = test::run_command(test::cli_path() + " validate " + bad + " --model no-such-model", &out);
  CHECK(rc == 2);
  rc = test::run_command(test::cli_path() + " validate " + dir.file("missing.json") + flags, &out);
  CHECK(rc == 2);
}
