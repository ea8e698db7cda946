// Engine profiles (docs/engines.md): what diffusers can express, the memory it adds to dmem's
// estimate, the engine rules, and the emitted scripts for the seed machines (goldens).
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "dmem/catalog.hpp"
#include "dmem/engine.hpp"
#include "dmem/hardware.hpp"
#include "dmem/plan.hpp"
#include "dmem/quantizer.hpp"
#include "engine/emit.hpp"
#include "engine/engine_profile.hpp"
#include "plan/estimator.hpp"

using namespace dmem;

namespace {

constexpr std::uint64_t kGiB = 1024ull * 1024ull * 1024ull;

Hardware machine(const char* gpu, std::uint64_t vram, std::uint64_t ram) {
  HardwareOptions o;
  o.probe = false;
  o.gpu = gpu;
  if (vram != 0) o.vram = vram;
  o.ram = ram;
  o.disk = 500 * kGiB;
  o.cache_dir = std::filesystem::temp_directory_path().string();
  auto hw = make_hardware(o);
  REQUIRE(hw);
  return *hw;
}

// Seed 000: Qwen-Image on an RTX 5090 (32 GB) with 60 GB of RAM.
Hardware seed_000() {
  return machine("rtx5090", 0, 60 * kGiB);
}
// Seed 003: 29 GB of VRAM usable, 12 GB of RAM free.
Hardware seed_003() {
  return machine("rtx5090", 29 * kGiB, 12 * kGiB);
}

Model model(const char* name) {
  auto m = catalog_model(name);
  REQUIRE(m);
  return *m;
}

ComponentStrategy comp(const char* name, PlacementKind kind, Storage st = {}) {
  ComponentStrategy cs;
  cs.component = name;
  cs.placement.kind = kind;
  cs.storage = st;
  return cs;
}

Storage quant(const char* id) {
  Storage s;
  s.kind = StorageKind::quantized;
  s.quantizer = id;
  return s;
}

bool has_rule(const std::vector<Violation>& v, const std::string& id) {
  for (const auto& x : v)
    if (x.rule == id) return true;
  return false;
}

std::string read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("engine names round-trip; unknown engines are errors", "[engine]") {
  for (Engine e : {Engine::dmem, Engine::diffusers, Engine::comfyui, Engine::sdcpp}) {
    auto back = engine_from_name(engine_name(e));
    REQUIRE(back);
    CHECK(*back == e);
  }
  auto none = engine_from_name("automatic1111");
  REQUIRE_FALSE(none);
  CHECK(none.status().code() == Errc::invalid_argument);
  CHECK(none.status().rule() == "engine.unknown");
}

TEST_CASE("diffusers expresses what its API has and rewrites what it does differently",
          "[engine]") {
  const Model m = model("qwen-image");
  SECTION("partial residency has no diffusers form") {
    Strategy s;
    s.components.push_back(comp("transformer", PlacementKind::partial));
    s.components.back().placement.resident_blocks = 30;
    const auto x = detail::express(Engine::diffusers, m, s);
    CHECK_FALSE(x.ok);
    CHECK(x.component == "transformer");
  }
  SECTION("model offload hooks every component: the resident VAE is offloaded too") {
    Strategy s;
    s.components.push_back(comp("transformer", PlacementKind::model_offload));
    s.components.push_back(comp("vae", PlacementKind::resident));
    const auto x = detail::express(Engine::diffusers, m, s);
    REQUIRE(x.ok);
    REQUIRE(x.strategy.components.size() == m.components.size());
    for (const auto& cs : x.strategy.components) {
      CHECK(cs.placement.kind == PlacementKind::model_offload);
      CHECK(cs.placement.park == Tier::pageable);  // accelerate moves it with .to()
    }
  }
  SECTION("dmem's disk streaming becomes group offload to offload_to_disk_path") {
    Strategy s;
    s.components.push_back(comp("transformer", PlacementKind::disk));
    const auto x = detail::express(Engine::diffusers, m, s);
    REQUIRE(x.ok);
    const auto* t = x.strategy.find("transformer");
    CHECK(t->placement.kind == PlacementKind::group_offload);
    CHECK(t->placement.park == Tier::disk);
  }
  SECTION("a transformers text encoder is group-offloaded at leaf level") {
    Strategy s;
    s.components.push_back(comp("text_encoder", PlacementKind::group_offload));
    const auto x = detail::express(Engine::diffusers, m, s);
    REQUIRE(x.ok);
    CHECK(x.strategy.find("text_encoder")->placement.level == OffloadLevel::leaf);
  }
  SECTION("GGUF only for diffusers' own models; no fp8 GEMM storage") {
    Storage g = quant("dmem.quantizer.gguf");
    g.params = {{"type", "q8_0"}};
    Strategy s;
    s.components.push_back(comp("text_encoder", PlacementKind::resident, g));
    CHECK_FALSE(detail::express(Engine::diffusers, m, s).ok);
    s.components.back().component = "transformer";
    CHECK(detail::express(Engine::diffusers, m, s).ok);
    Strategy f;
    f.components.push_back(
        comp("transformer", PlacementKind::resident, quant("dmem.quantizer.fp8")));
    CHECK_FALSE(detail::express(Engine::diffusers, m, f).ok);
  }
  SECTION("the encode phase runs its encoders on one device") {
    const Model flux = model("flux1-dev");
    Strategy s;
    s.components.push_back(comp("text_encoder", PlacementKind::dropped));
    s.components.push_back(comp("text_encoder_2", PlacementKind::cpu));
    CHECK_FALSE(detail::express(Engine::diffusers, flux, s).ok);
    s.components.back().placement.kind = PlacementKind::dropped;
    CHECK(detail::express(Engine::diffusers, flux, s).ok);
  }
}

TEST_CASE("engine rules: engine.express and engine.disk_copy, silent for dmem", "[engine][rules]") {
  const Model m = model("qwen-image");
  const Workload wl = default_workload(m);
  Strategy s;
  s.components.push_back(comp("transformer", PlacementKind::partial));
  s.components.back().placement.resident_blocks = 30;
  PlanOptions diffusers;
  diffusers.engine = Engine::diffusers;
  auto v = validate(m, s, seed_000(), wl, diffusers);
  REQUIRE(v);
  CHECK(has_rule(*v, "engine.express"));
  auto own = validate(m, s, seed_000(), wl);
  REQUIRE(own);
  CHECK_FALSE(has_rule(*own, "engine.express"));

  Hardware ro = seed_000();
  ro.cache_dir = "/dev/null/dmem-cache";  // a file on the way: never a directory
  Strategy d;
  d.components.push_back(comp("transformer", PlacementKind::group_offload));
  d.components.back().placement.park = Tier::disk;
  auto dv = validate(m, d, ro, wl, diffusers);
  REQUIRE(dv);
  CHECK(has_rule(*dv, "engine.disk_copy"));
  auto dd = validate(m, d, ro, wl);
  REQUIRE(dd);
  CHECK_FALSE(has_rule(*dd, "engine.disk_copy"));  // dmem streams the checkpoint itself
}

TEST_CASE("diffusers estimates: pinned stream copies, bnb fp32 modules, load-time RAM",
          "[engine]") {
  const Model m = model("qwen-image");
  const Hardware hw = seed_000();
  detail::ModelProfile mp = detail::profile_model(m, default_workload(m));
  const std::uint64_t transformer =
      m.find("transformer") != nullptr ? mp.find("transformer")->summary.bytes : 0;
  REQUIRE(transformer > 30 * kGiB);

  Strategy pinned;
  pinned.components.push_back(comp("transformer", PlacementKind::group_offload));
  pinned.components.back().placement.park = Tier::pinned;  // use_stream, low_cpu_mem_usage=False
  pinned.components.push_back(comp("text_encoder", PlacementKind::dropped));
  Strategy lazy = pinned;
  lazy.components.front().placement.park = Tier::pageable;  // low_cpu_mem_usage=True

  auto estimate_for = [&](const Strategy& s) {
    const auto x = detail::express(Engine::diffusers, m, s);
    REQUIRE(x.ok);
    auto e = detail::estimate_profiled(mp, x.strategy, hw);
    REQUIRE(e);
    Estimate own = *e;
    detail::adjust_estimate(Engine::diffusers, mp, x.strategy, hw, *e);
    return std::make_pair(own, *e);
  };
  const auto [own_p, diff_p] = estimate_for(pinned);
  const auto [own_l, diff_l] = estimate_for(lazy);
  // use_stream=True pins a second copy: about twice the offloaded weights in RAM.
  CHECK(diff_p.ram_peak_bytes >= own_p.ram_peak_bytes + transformer);
  CHECK(diff_p.ram_peak_bytes >= 2 * transformer);
  // low_cpu_mem_usage=True avoids the copy.
  CHECK(diff_l.ram_peak_bytes < transformer + 4 * kGiB);
  CHECK(diff_p.load_ram_peak_bytes > diff_l.load_ram_peak_bytes + transformer / 2);

  // bitsandbytes keeps T5's wo in fp32 and never converts Qwen2.5-VL's lm_head.
  const Model flux = model("flux1-dev");
  detail::ModelProfile fp = detail::profile_model(flux, default_workload(flux));
  const auto t5 = comp("text_encoder_2", PlacementKind::resident, quant("dmem.quantizer.nf4"));
  // 24 layers x 4096 x 10240 weights in fp32 (4 bytes) instead of ~0.53 bytes packed: dmem's
  // stored size counts them already, so the profile adds nothing (it once added them twice, 3.3
  // GiB too many on the published nf4 and LLM.int8 rows: [published][engine]).
  CHECK(detail::bnb_unquantized_extra(fp, t5) == 0);
  auto* t5p = fp.find("text_encoder_2");
  REQUIRE(t5p != nullptr);
  const std::uint64_t t5_nf4 = detail::stored_sizes(*t5p, storage_caps(t5.storage)).total;
  CHECK(t5_nf4 > 3 * kGiB + t5p->summary.bytes / 8);
  const auto te = comp("text_encoder", PlacementKind::resident, quant("dmem.quantizer.nf4"));
  const std::uint64_t head = detail::bnb_unquantized_extra(mp, te);
  CHECK(head > kGiB / 2);
  CHECK(head < 2 * kGiB);
  CHECK(detail::bnb_unquantized_extra(mp, comp("text_encoder", PlacementKind::resident)) == 0);

  // from_pretrained without low_cpu_mem_usage and device_map holds far more while loading.
  Strategy resident;
  resident.components.push_back(comp("transformer", PlacementKind::resident));
  const auto x = detail::express(Engine::diffusers, m, resident);
  REQUIRE(x.ok);
  const std::uint64_t best = detail::diffusers_load_ram(mp, x.strategy);
  detail::DiffusersLoad naive;
  naive.device_map = false;
  naive.low_cpu_mem_usage = false;
  const std::uint64_t worst = detail::diffusers_load_ram(mp, x.strategy, naive);
  CHECK(best < 4 * kGiB);
  CHECK(worst > 2 * transformer);
}

TEST_CASE("plans for diffusers are all expressible and pass the validator with the engine",
          "[engine][plan]") {
  PlanOptions o;
  o.engine = Engine::diffusers;
  for (const char* name : {"qwen-image", "flux1-dev", "sdxl"}) {
    INFO(name);
    const Model m = model(name);
    const Workload wl = default_workload(m);
    for (const Hardware& hw : {seed_000(), seed_003()}) {
      auto r = make_plans(m, hw, wl, o);
      REQUIRE(r);
      for (const auto& p : r->plans) {
        INFO(strategy_summary(p.strategy));
        const auto x = detail::express(Engine::diffusers, m, p.strategy);
        REQUIRE(x.ok);
        CHECK(strategy_to_json(x.strategy) == strategy_to_json(p.strategy));
        for (const auto& cs : p.strategy.components) {
          CHECK(cs.placement.kind != PlacementKind::partial);
          CHECK(cs.placement.kind != PlacementKind::disk);
        }
        auto v = validate(m, p.strategy, hw, wl, o);
        REQUIRE(v);
        CHECK(v->empty());
      }
    }
  }
  // The seed machine with 60 GB of RAM has diffusers plans for Qwen-Image.
  const Model q = model("qwen-image");
  auto r = make_plans(q, seed_000(), default_workload(q), o);
  REQUIRE(r);
  CHECK_FALSE(r->plans.empty());
}

TEST_CASE("emitted diffusers scripts match the goldens and parse", "[engine][golden]") {
  const std::string dir = std::string(DMEM_GOLDEN_DIR) + "/engines";
  const bool update = std::getenv("DMEM_UPDATE_GOLDEN") != nullptr;
  PlanOptions o;
  o.engine = Engine::diffusers;
  struct Case {
    const char* file;
    const char* model;
    Hardware hw;
    const char* command;
  };
  const Case cases[] = {
      {"qwen-image-rtx5090-60gib.py", "qwen-image", seed_000(),
       "dmem plan qwen-image --gpu rtx5090 --ram 60GiB --engine diffusers --emit 1"},
      {"qwen-image-29gib-12gib.py", "qwen-image", seed_003(),
       "dmem plan qwen-image --gpu rtx5090 --vram 29GiB --ram 12GiB --engine diffusers --emit 1"},
  };
  const std::filesystem::path tmp =
      std::filesystem::temp_directory_path() / ("dmem-emit-" + std::to_string(::getpid()));
  std::filesystem::create_directories(tmp);
  std::vector<std::string> emitted;
  for (const auto& c : cases) {
    INFO(c.file);
    const Model m = model(c.model);
    auto r = make_plans(m, c.hw, default_workload(m), o);
    REQUIRE(r);
    REQUIRE_FALSE(r->plans.empty());
    auto text = detail::emit_plan(m, *r, "1", c.command);
    REQUIRE(text);
    const std::string path = dir + "/" + c.file;
    if (update) std::ofstream(path, std::ios::binary) << *text;
    CHECK(*text == read(path));
    // Every plan of the list is emitted and must parse.
    for (const auto& p : r->plans) {
      auto t = detail::emit_plan(m, *r, p.id, c.command);
      REQUIRE(t);
      // Quantization goes through the pipeline-level config, never a bare BitsAndBytesConfig.
      CHECK((t->find("bitsandbytes_") == std::string::npos ||
             t->find("quantization_config=PipelineQuantizationConfig(") != std::string::npos));
      CHECK(t->find("quantization_config=BitsAndBytesConfig") == std::string::npos);
      const std::string f = (tmp / (std::string(c.model) + "-" + p.id + ".py")).string();
      std::ofstream(f, std::ios::binary) << *t;
      emitted.push_back(f);
    }
  }
  auto missing = detail::emit_plan(
      model("qwen-image"),
      *make_plans(model("qwen-image"), seed_000(), default_workload(model("qwen-image")), o), "999",
      "x");
  CHECK_FALSE(missing);
  if (std::system("python3 -c pass >/dev/null 2>&1") != 0) {
    WARN("python3 not found: the emitted scripts were not compiled");
  } else {
    for (const auto& f : emitted) {
      INFO(f);
      const std::string cmd = "python3 -m py_compile '" + f + "'";
      CHECK(std::system(cmd.c_str()) == 0);
    }
  }
  std::filesystem::remove_all(tmp);
}
