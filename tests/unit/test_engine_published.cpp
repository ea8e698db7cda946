// The engine profiles against published measurements taken in that engine
// (tests/data/published_measurements.json, rows with an "engine" field). Each row's strategy is
// expressed the way the engine runs it (detail::express), costed, and adjusted by the engine's
// profile (detail::adjust_estimate), exactly as `dmem plan --engine E` does; the figures must be
// within the row's tolerance ("engine_tolerance" where the profile's differs from dmem's, with
// the reason in the row). DMEM_PRINT_PUBLISHED=1 prints the per-row table that docs/engines.md
// quotes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "dmem/engine.hpp"
#include "dmem/hardware.hpp"
#include "dmem/plan.hpp"
#include "dmem/quantizer.hpp"
#include "engine/engine_profile.hpp"
#include "plan/estimator.hpp"
#include "support/published_rows.hpp"

using namespace dmem;

namespace {

constexpr double kGiBd = 1024.0 * 1024.0 * 1024.0;
constexpr double kMiBd = 1024.0 * 1024.0;

struct EngineFigures {
  bool expressed = false;
  std::string why;                           ///< the engine's reason when it cannot express the row
  double vram_gib = 0;                       ///< comparable to the row's vram_metric
  double ram_gib = 0;                        ///< steady host RAM (the run, not the load)
  double seconds = 0;                        ///< encode + denoise + decode
  std::map<std::string, double> loaded_mib;  ///< per component: the weights the engine moves
};

EngineFigures engine_estimate(Engine engine, const nlohmann::json& row) {
  const test::PublishedCase pc = test::published_case(row);
  const Model& model = pc.model;
  const Hardware* hw = &pc.hardware;
  const Workload& wl = pc.workload;
  const Strategy* strategy = &pc.strategy;

  EngineFigures f;
  const detail::Expressed x = detail::express(engine, model, *strategy);
  if (!x.ok) {
    f.why = x.why;
    return f;
  }
  f.expressed = true;
  auto e = estimate(model, x.strategy, *hw, wl);
  INFO((e ? std::string() : e.status().message()));
  REQUIRE(e);
  detail::ModelProfile mp = detail::profile_model(model, wl);
  detail::adjust_estimate(engine, mp, x.strategy, *hw, *e);

  const PhaseEstimate* peak = nullptr;
  std::uint64_t ram = 0;
  for (const auto& ph : e->phases) {
    if (ph.phase == Phase::load) continue;
    if (peak == nullptr || ph.vram_peak > peak->vram_peak) peak = &ph;
    ram = std::max(ram, ph.ram_peak);
  }
  REQUIRE(peak != nullptr);
  const std::string metric = row.at("measured").value("vram_metric", std::string("device"));
  // As in [plan][published]: PyTorch's counters leave the CUDA context out, "allocated" also the
  // cached blocks (the profiles add their allocator and library figure to the reserve).
  std::uint64_t vram = peak->vram_peak - detail::kCudaContextBytes;
  if (metric == "torch_allocated") vram = peak->vram_peak - peak->vram_reserve;
  if (metric == "device") vram = peak->vram_peak;
  f.vram_gib = static_cast<double>(vram) / kGiBd;
  f.ram_gib = static_cast<double>(ram) / kGiBd;
  f.seconds = e->total_seconds - e->load_seconds;
  for (const auto& cs : x.strategy.components) {
    detail::ComponentProfile* p = mp.find(cs.component);
    if (p == nullptr) continue;
    const std::uint64_t bytes = detail::stored_sizes(*p, storage_caps(cs.storage)).total +
                                detail::bnb_unquantized_extra(mp, cs);
    f.loaded_mib[cs.component] = static_cast<double>(bytes) / kMiBd;
  }
  return f;
}

double rel_error(double estimated, double measured) {
  return estimated / measured - 1.0;
}

}  // namespace

TEST_CASE("engine profiles hold against published measurements in that engine",
          "[published][engine]") {
  const nlohmann::json doc = test::published_measurements();
  const bool print = std::getenv("DMEM_PRINT_PUBLISHED") != nullptr;
  std::map<std::string, int> checked;
  std::map<std::string, EngineFigures> figures;
  std::map<std::string, double> measured_seconds;
  for (const auto& row : doc.at("rows")) {
    if (!row.contains("engine")) continue;
    const std::string name = row.at("engine").get<std::string>();
    auto engine = engine_from_name(name);
    if (!engine) continue;  // measured in an engine dmem has no profile for (DiffSynth-Studio)
    const std::string id = row.at("id").get<std::string>();
    INFO("row " << id << " through the " << name << " profile");
    REQUIRE(row.contains("source"));
    EngineFigures f = engine_estimate(*engine, row);
    // A row the engine cannot express must say so, with the profile's reason.
    if (row.contains("engine_refuses")) {
      CHECK_FALSE(f.expressed);
      CHECK(f.why.find(row.at("engine_refuses").get<std::string>()) != std::string::npos);
      if (print)
        std::printf("%s | %s: not expressed (%s)\n", id.c_str(), name.c_str(), f.why.c_str());
      continue;
    }
    INFO("why not expressed: " << f.why);
    REQUIRE(f.expressed);
    const auto& ms = row.at("measured");
    if (ms.contains("seconds")) measured_seconds[id] = ms.at("seconds").get<double>();
    figures[id] = f;
    const auto& tol =
        row.contains("engine_tolerance") ? row.at("engine_tolerance") : row.at("tolerance");
    std::string line = id;
    line += " | ";
    line += name;
    auto check = [&](const std::string& what, double est, double meas, double t) {
      const double err = rel_error(est, meas);
      char buf[200];
      std::snprintf(buf, sizeof buf, " | %s %.5g vs %.5g (%+.1f %%, tol %.0f %%)", what.c_str(),
                    est, meas, err * 100.0, t * 100.0);
      line += buf;
      INFO(what << ": " << name << " profile " << est << ", measured " << meas << ", error "
                << err * 100.0 << " %, tolerance " << t * 100.0 << " %");
      CHECK(std::fabs(err) <= t);
      ++checked[name];
    };
    if (ms.contains("vram_gib"))
      check("vram GiB", f.vram_gib, ms.at("vram_gib").get<double>(), tol.at("vram").get<double>());
    if (ms.contains("ram_gib") && tol.contains("ram"))
      check("ram GiB", f.ram_gib, ms.at("ram_gib").get<double>(), tol.at("ram").get<double>());
    if (ms.contains("seconds") && tol.contains("seconds"))
      check("seconds", f.seconds, ms.at("seconds").get<double>(), tol.at("seconds").get<double>());
    if (ms.contains("loaded_mib"))
      for (const auto& [key, mib] : ms.at("loaded_mib").items()) {
        // "a+b": one model of the engine holding several components (ComfyUI's FluxClipModel_).
        double sum = 0;
        std::stringstream names(key);
        for (std::string component; std::getline(names, component, '+');) {
          INFO("component " << component);
          REQUIRE(f.loaded_mib.count(component) == 1);
          sum += f.loaded_mib.at(component);
        }
        // One tolerance for every component, or one per component.
        const auto& t = tol.at("loaded");
        check(key + " MiB", sum, mib.get<double>(),
              t.is_object() ? t.at(key).get<double>() : t.get<double>());
      }
    if (row.contains("ratio_to") && tol.contains("ratio")) {
      const std::string base = row.at("ratio_to").get<std::string>();
      REQUIRE(figures.count(base) == 1);
      REQUIRE(measured_seconds.count(base) == 1);
      check("seconds ratio", f.seconds / figures.at(base).seconds,
            ms.at("seconds").get<double>() / measured_seconds.at(base),
            tol.at("ratio").get<double>());
    }
    if (print) std::printf("%s\n", line.c_str());
  }
  // Every profile with published measurements is held to them.
  CHECK(checked["diffusers"] >= 10);
  CHECK(checked["comfyui"] >= 4);
}
