// The ComfyUI and stable-diffusion.cpp profiles (docs/engines.md): what each expresses and how it
// rewrites a strategy, the engine rule, their estimates against a published figure, and the
// emitted scripts (goldens, `sh -n`, the workflow JSON well-formed), plus `dmem validate --engine`.
#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
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
#include "support/test_support.hpp"

using namespace dmem;

namespace {

constexpr std::uint64_t kGiB = 1024ull * 1024ull * 1024ull;
constexpr std::uint64_t kMiB = 1024ull * 1024ull;

Hardware machine(std::uint64_t vram, std::uint64_t ram) {
  HardwareOptions o;
  o.probe = false;
  o.gpu = "rtx5090";
  if (vram != 0) o.vram = vram;
  o.ram = ram;
  o.disk = 500 * kGiB;
  o.cache_dir = std::filesystem::temp_directory_path().string();
  auto hw = make_hardware(o);
  REQUIRE(hw);
  return *hw;
}

// The seed machines: an RTX 5090 with 60 GB of RAM; 29 GB of VRAM usable and 12 GB of RAM.
Hardware seed_000() {
  return machine(0, 60 * kGiB);
}
Hardware seed_003() {
  return machine(29 * kGiB, 12 * kGiB);
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

Storage quant(const char* id, const char* type = nullptr) {
  Storage s;
  s.kind = StorageKind::quantized;
  s.quantizer = id;
  if (type != nullptr) s.params = {{"type", type}};
  return s;
}

Storage fp8_cast() {
  Storage s;
  s.kind = StorageKind::layerwise_cast;
  s.cast_dtype = DType::f8_e4m3;
  return s;
}

std::string read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The workflow a ComfyUI script writes: the text between its heredoc markers.
std::string workflow_of(const std::string& script) {
  const std::string open = "<<'DMEM_JSON'\n", close = "\nDMEM_JSON\n";
  const auto a = script.find(open);
  if (a == std::string::npos) return {};
  const auto b = script.find(close, a);
  if (b == std::string::npos) return {};
  return script.substr(a + open.size(), b - a - open.size());
}

// Every node has a class and inputs, and every link names a node that exists.
void check_workflow(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  REQUIRE(j.contains("prompt"));
  const auto& g = j["prompt"];
  REQUIRE(g.is_object());
  CHECK(g.size() >= 8);
  for (const auto& [id, node] : g.items()) {
    INFO(id);
    REQUIRE(node["class_type"].is_string());
    REQUIRE(node["inputs"].is_object());
    for (const auto& [k, v] : node["inputs"].items())
      if (v.is_array()) {
        REQUIRE(v.size() == 2);
        CHECK(g.contains(v[0].get<std::string>()));
      }
  }
}

}  // namespace

TEST_CASE(
    "ComfyUI expresses its loaders and launch modes, and rewrites what its model manager "
    "does",
    "[engine][comfyui]") {
  const Model q = model("qwen-image");
  const Model flux = model("flux1-dev");
  SECTION("partial residency is ComfyUI's lowvram partial load; the encoder rests in RAM") {
    Strategy s;
    s.components.push_back(comp("transformer", PlacementKind::partial));
    s.components.back().placement.resident_blocks = 30;
    s.components.push_back(comp("text_encoder", PlacementKind::dropped));
    const auto x = detail::express(Engine::comfyui, q, s);
    REQUIRE(x.ok);
    const auto* t = x.strategy.find("transformer");
    CHECK(t->placement.kind == PlacementKind::partial);
    CHECK(t->placement.resident_blocks == 30);
    CHECK(t->placement.park == Tier::pageable);
    // Its model cache keeps the text encoder in RAM: not freed as dmem would.
    CHECK(x.strategy.find("text_encoder")->placement.kind == PlacementKind::model_offload);
    CHECK(x.strategy.find("vae")->placement.kind == PlacementKind::model_offload);
    CHECK(detail::comfy_mode(q, x.strategy) == detail::ComfyMode::lowvram);
  }
  SECTION("everything resident is --gpu-only") {
    Strategy s;
    s.components.push_back(comp("transformer", PlacementKind::resident));
    const auto x = detail::express(Engine::comfyui, q, s);
    REQUIRE(x.ok);
    for (const auto& cs : x.strategy.components)
      CHECK(cs.placement.kind == PlacementKind::resident);
    CHECK(detail::comfy_mode(q, x.strategy) == detail::ComfyMode::gpu_only);
  }
  SECTION("streaming every layer is --novram, which encodes on the CPU") {
    Strategy s;
    s.components.push_back(comp("transformer", PlacementKind::sequential));
    s.components.push_back(comp("text_encoder", PlacementKind::dropped));
    const auto refused = detail::express(Engine::comfyui, q, s);
    CHECK_FALSE(refused.ok);
    CHECK(refused.component == "text_encoder");
    s.components.back().placement.kind = PlacementKind::cpu;
    const auto x = detail::express(Engine::comfyui, q, s);
    REQUIRE(x.ok);
    CHECK(x.strategy.find("transformer")->placement.kind == PlacementKind::group_offload);
    CHECK(detail::comfy_mode(q, x.strategy) == detail::ComfyMode::novram);
  }
  SECTION("no bitsandbytes, no disk tier, no GGUF VAE; fp8 compute for the denoiser only") {
    Strategy nf4;
    nf4.components.push_back(
        comp("transformer", PlacementKind::resident, quant("dmem.quantizer.nf4")));
    const auto a = detail::express(Engine::comfyui, q, nf4);
    CHECK_FALSE(a.ok);
    CHECK(a.why.find("bitsandbytes") != std::string::npos);
    Strategy disk;
    disk.components.push_back(comp("transformer", PlacementKind::disk));
    CHECK_FALSE(detail::express(Engine::comfyui, q, disk).ok);
    Strategy gv;
    gv.components.push_back(
        comp("vae", PlacementKind::resident, quant("dmem.quantizer.gguf", "q8_0")));
    CHECK_FALSE(detail::express(Engine::comfyui, q, gv).ok);
    Strategy fp8;
    fp8.components.push_back(
        comp("transformer", PlacementKind::resident, quant("dmem.quantizer.fp8")));
    CHECK(detail::express(Engine::comfyui, q, fp8).ok);
    fp8.components.back().component = "text_encoder";
    CHECK_FALSE(detail::express(Engine::comfyui, q, fp8).ok);
  }
  SECTION("--fp8_e4m3fn-text-enc stores every text encoder in fp8") {
    Strategy s;
    s.components.push_back(comp("text_encoder_2", PlacementKind::dropped, fp8_cast()));
    const auto x = detail::express(Engine::comfyui, flux, s);
    REQUIRE(x.ok);
    CHECK(x.strategy.find("text_encoder")->storage.kind == StorageKind::layerwise_cast);
  }
  SECTION("the GGUF CLIP loaders have no device input") {
    Strategy s;
    s.components.push_back(
        comp("text_encoder", PlacementKind::cpu, quant("dmem.quantizer.gguf", "q8_0")));
    CHECK_FALSE(detail::express(Engine::comfyui, q, s).ok);
    s.components.back().placement.kind = PlacementKind::dropped;
    CHECK(detail::express(Engine::comfyui, q, s).ok);
  }
}

TEST_CASE("stable-diffusion.cpp expresses its flags and rewrites what sd-cli does",
          "[engine][sdcpp]") {
  const Model q = model("qwen-image");
  const Model flux = model("flux1-dev");
  SECTION("the text encoder is freed after conditioning") {
    Strategy s;
    s.components.push_back(
        comp("transformer", PlacementKind::resident, quant("dmem.quantizer.gguf", "q8_0")));
    s.components.push_back(comp("text_encoder", PlacementKind::resident));
    const auto x = detail::express(Engine::sdcpp, q, s);
    REQUIRE(x.ok);
    CHECK(x.strategy.find("text_encoder")->placement.kind == PlacementKind::dropped);
    CHECK(x.strategy.find("vae")->placement.kind == PlacementKind::resident);
  }
  SECTION("--offload-to-cpu is one switch for every model on the GPU") {
    Strategy s;
    s.components.push_back(comp("transformer", PlacementKind::model_offload));
    s.components.push_back(comp("vae", PlacementKind::cpu));
    const auto x = detail::express(Engine::sdcpp, q, s);
    REQUIRE(x.ok);
    CHECK(x.strategy.find("text_encoder")->placement.kind == PlacementKind::model_offload);
    CHECK(x.strategy.find("vae")->placement.kind == PlacementKind::cpu);
  }
  SECTION("no streaming, no fp8 or bitsandbytes storage, encoders on one device") {
    Strategy p;
    p.components.push_back(comp("transformer", PlacementKind::partial));
    CHECK_FALSE(detail::express(Engine::sdcpp, q, p).ok);
    Strategy g;
    g.components.push_back(comp("transformer", PlacementKind::group_offload));
    CHECK_FALSE(detail::express(Engine::sdcpp, q, g).ok);
    Strategy c;
    c.components.push_back(comp("transformer", PlacementKind::resident, fp8_cast()));
    CHECK_FALSE(detail::express(Engine::sdcpp, q, c).ok);
    Strategy n;
    n.components.push_back(
        comp("transformer", PlacementKind::resident, quant("dmem.quantizer.nf4")));
    CHECK_FALSE(detail::express(Engine::sdcpp, q, n).ok);
    Strategy mixed;
    mixed.components.push_back(comp("text_encoder", PlacementKind::dropped));
    mixed.components.push_back(comp("text_encoder_2", PlacementKind::cpu));
    CHECK_FALSE(detail::express(Engine::sdcpp, flux, mixed).ok);
  }
}

TEST_CASE("engine.express names the engine and its reason in validate", "[engine][rules]") {
  const Model m = model("qwen-image");
  Strategy s;
  s.components.push_back(comp("transformer", PlacementKind::partial));
  s.components.back().placement.resident_blocks = 30;
  PlanOptions o;
  o.engine = Engine::sdcpp;
  auto v = validate(m, s, seed_000(), default_workload(m), o);
  REQUIRE(v);
  bool found = false;
  for (const auto& x : *v)
    if (x.rule == "engine.express") {
      found = true;
      CHECK(x.component == "transformer");
      CHECK(x.message.find("sdcpp cannot express this") != std::string::npos);
      CHECK(x.fix.find("--engine sdcpp") != std::string::npos);
    }
  CHECK(found);
  o.engine = Engine::comfyui;  // ComfyUI's partial load expresses it
  auto c = validate(m, s, seed_000(), default_workload(m), o);
  REQUIRE(c);
  for (const auto& x : *c) CHECK(x.rule != "engine.express");
}

TEST_CASE("sd.cpp's published FLUX.1-dev GGUF sizes match dmem's stored sizes", "[engine][sdcpp]") {
  // stable-diffusion.cpp docs/flux.md: the diffusion model's memory by type, in MB (MiB).
  const Model flux = model("flux1-dev");
  detail::ModelProfile mp = detail::profile_model(flux, default_workload(flux));
  detail::ComponentProfile* t = mp.find("transformer");
  REQUIRE(t != nullptr);
  const struct {
    const char* type;
    double mib;
  } published[] = {{"q8_0", 12068.09}, {"q4_0", 6394.53}, {"q4_k", 6395.17}};
  for (const auto& p : published) {
    INFO(p.type);
    const QuantizerCaps* caps = nullptr;
    for (const auto& c : builtin_quantizers())
      if (c.id == "dmem.quantizer.gguf" && c.variant == p.type) caps = &c;
    REQUIRE(caps != nullptr);
    const double ours =
        static_cast<double>(detail::stored_sizes(*t, caps).total) / static_cast<double>(kMiB);
    CHECK(ours > p.mib * 0.97);
    CHECK(ours < p.mib * 1.03);
  }
}

TEST_CASE("ComfyUI and sd.cpp plans are expressible as listed and valid under the engine",
          "[engine][plan]") {
  for (Engine engine : {Engine::comfyui, Engine::sdcpp}) {
    PlanOptions o;
    o.engine = engine;
    for (const char* name : {"qwen-image", "flux1-dev"}) {
      const Model m = model(name);
      const Workload wl = default_workload(m);
      for (const Hardware& hw : {seed_000(), seed_003()}) {
        INFO(engine_name(engine) << " " << name);
        auto r = make_plans(m, hw, wl, o);
        REQUIRE(r);
        for (const auto& p : r->plans) {
          INFO(strategy_summary(p.strategy));
          const auto x = detail::express(engine, m, p.strategy);
          REQUIRE(x.ok);
          CHECK(strategy_to_json(x.strategy) == strategy_to_json(p.strategy));
          auto v = validate(m, p.strategy, hw, wl, o);
          REQUIRE(v);
          CHECK(v->empty());
        }
      }
    }
  }
  // The seed machine with 60 GB of RAM has plans for Qwen-Image in both.
  const Model q = model("qwen-image");
  for (Engine engine : {Engine::comfyui, Engine::sdcpp}) {
    PlanOptions o;
    o.engine = engine;
    auto r = make_plans(q, seed_000(), default_workload(q), o);
    REQUIRE(r);
    CHECK_FALSE(r->plans.empty());
  }
}

TEST_CASE("emitted ComfyUI and sd.cpp scripts match the goldens and are well-formed",
          "[engine][golden]") {
  const std::string dir = std::string(DMEM_GOLDEN_DIR) + "/engines";
  const bool update = std::getenv("DMEM_UPDATE_GOLDEN") != nullptr;
  struct Case {
    const char* file;
    Engine engine;
    const char* model;
    Hardware hw;
    const char* hw_flags;
    bool gguf;  // emit the first plan that needs a GGUF file instead of plan 1
  };
  const Case cases[] = {
      {"flux1-dev-comfyui-rtx5090-60gib.sh", Engine::comfyui, "flux1-dev", seed_000(),
       "--gpu rtx5090 --ram 60GiB", false},
      {"qwen-image-comfyui-rtx5090-60gib.sh", Engine::comfyui, "qwen-image", seed_000(),
       "--gpu rtx5090 --ram 60GiB", false},
      {"flux1-dev-comfyui-gguf-rtx5090-60gib.sh", Engine::comfyui, "flux1-dev", seed_000(),
       "--gpu rtx5090 --ram 60GiB", true},
      {"flux1-dev-sdcpp-rtx5090-60gib.sh", Engine::sdcpp, "flux1-dev", seed_000(),
       "--gpu rtx5090 --ram 60GiB", false},
      {"qwen-image-sdcpp-rtx5090-60gib.sh", Engine::sdcpp, "qwen-image", seed_000(),
       "--gpu rtx5090 --ram 60GiB", false},
      {"qwen-image-sdcpp-gguf-29gib-12gib.sh", Engine::sdcpp, "qwen-image", seed_003(),
       "--gpu rtx5090 --vram 29GiB --ram 12GiB", true},
  };
  const bool have_sh = std::system("sh -c : >/dev/null 2>&1") == 0;
  test::TempDir tmp;
  for (const auto& c : cases) {
    INFO(c.file);
    PlanOptions o;
    o.engine = c.engine;
    const Model m = model(c.model);
    auto r = make_plans(m, c.hw, default_workload(m), o);
    REQUIRE(r);
    REQUIRE_FALSE(r->plans.empty());
    std::string id = "1";
    if (c.gguf) {
      id.clear();
      for (const auto& p : r->plans)
        for (const auto& cs : p.strategy.components)
          if (id.empty() && !detail::gguf_type(cs.storage).empty()) id = p.id;
      REQUIRE_FALSE(id.empty());
    }
    std::string command = "dmem plan ";
    command += c.model;
    command += " ";
    command += c.hw_flags;
    command += " --engine ";
    command += engine_name(c.engine);
    command += " --emit " + id;
    auto text = detail::emit_plan(m, *r, id, command);
    REQUIRE(text);
    if (c.gguf) CHECK(text->find("dmem convert") != std::string::npos);
    const std::string path = dir + "/" + c.file;
    if (update) std::ofstream(path, std::ios::binary) << *text;
    CHECK(*text == read(path));
    // Every plan of the list is emitted, parses as sh, and a workflow is well-formed JSON.
    for (const auto& p : r->plans) {
      INFO(p.id);
      auto t = detail::emit_plan(m, *r, p.id, command);
      REQUIRE(t);
      CHECK(t->rfind("#!/bin/sh\n", 0) == 0);
      if (c.engine == Engine::comfyui) {
        const std::string w = workflow_of(*t);
        REQUIRE_FALSE(w.empty());
        check_workflow(w);
        CHECK(t->find("exec python \"$COMFY/main.py\"") != std::string::npos);
        // The launch flags follow the mode the plan's placements pick.
        const detail::ComfyMode mode = detail::comfy_mode(m, p.strategy);
        if (mode == detail::ComfyMode::lowvram)
          CHECK(t->find(" --reserve-vram ") != std::string::npos);
        if (mode == detail::ComfyMode::novram)
          CHECK(t->find(" --novram --async-offload") != std::string::npos);
        if (mode == detail::ComfyMode::gpu_only) CHECK(t->find(" --gpu-only") != std::string::npos);
      } else {
        CHECK(t->find("exec \"$SD\"") != std::string::npos);
        CHECK(t->find("--diffusion-model") != std::string::npos);
        bool offload = false;
        for (const auto& cs : p.strategy.components)
          offload = offload || cs.placement.kind == PlacementKind::model_offload;
        CHECK((t->find("--offload-to-cpu") != std::string::npos) == offload);
      }
      if (have_sh) {
        const std::string f = tmp.file(std::string(c.file) + "-" + p.id + ".sh");
        std::ofstream(f, std::ios::binary) << *t;
        const std::string cmd = "sh -n '" + f + "'";
        CHECK(std::system(cmd.c_str()) == 0);
      }
    }
  }
}

TEST_CASE("dmem validate --engine says whether the engine can express a strategy",
          "[engine][cli]") {
  test::TempDir tmp;
  const std::string f = tmp.file("partial.json");
  test::write_file(f, R"({"components": [{"component": "transformer",
      "placement": {"kind": "partial", "resident_blocks": 30}}]})");
  const std::string base = test::cli_path() + " validate '" + f +
                           "' --model qwen-image --gpu rtx5090 --ram 60GiB --engine ";
  std::string out;
  CHECK(test::run_command(base + "sdcpp", &out) == 1);
  CHECK(out.find("sdcpp cannot express it") != std::string::npos);
  CHECK(out.find("engine.express") != std::string::npos);
  CHECK(test::run_command(base + "comfyui", &out) != 2);
  CHECK(out.find("comfyui can express it") != std::string::npos);
  CHECK(test::run_command(base + "automatic1111", &out) == 2);
  CHECK(out.find("engine.unknown") != std::string::npos);
}
