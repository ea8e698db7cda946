// Engine names and the dispatch to each engine's profile.
#include "dmem/engine.hpp"

#include <algorithm>

#include "engine/engine_profile.hpp"

namespace dmem {
inline namespace v1 {

std::string_view engine_name(Engine engine) noexcept {
  switch (engine) {
    case Engine::dmem:
      return "dmem";
    case Engine::diffusers:
      return "diffusers";
    case Engine::comfyui:
      return "comfyui";
    case Engine::sdcpp:
      return "sdcpp";
  }
  return "?";
}

Result<Engine> engine_from_name(std::string_view name) noexcept {
  for (Engine e : {Engine::dmem, Engine::diffusers, Engine::comfyui, Engine::sdcpp})
    if (engine_name(e) == name) return e;
  std::string what = "no engine named '";
  what += name;
  what += "'";
  return Status(Errc::invalid_argument, std::move(what))
      .with_rule("engine.unknown")
      .with_hint("use one of: dmem, diffusers, comfyui, sdcpp");
}

}  // namespace v1
}  // namespace dmem

namespace dmem::detail {

bool list_all_components(const Model& model, Strategy& s, std::string& unknown) {
  for (const auto& cs : s.components)
    if (model.find(cs.component) == nullptr) {
      unknown = cs.component;
      return false;
    }
  std::vector<ComponentStrategy> all;
  for (const auto& c : model.components) {
    const ComponentStrategy* cs = s.find(c.name);
    ComponentStrategy x = cs != nullptr ? *cs : ComponentStrategy{};
    x.component = c.name;
    all.push_back(std::move(x));
  }
  s.components = std::move(all);
  return true;
}

void refresh_totals(Estimate& e) {
  e.vram_peak_bytes = e.ram_peak_bytes = e.pinned_bytes = 0;
  for (const auto& ph : e.phases) {
    e.vram_peak_bytes = std::max(e.vram_peak_bytes, ph.vram_peak);
    e.pinned_bytes = std::max(e.pinned_bytes, ph.ram_pinned);
    if (ph.phase == Phase::load)
      e.load_ram_peak_bytes = ph.ram_peak;
    else
      e.ram_peak_bytes = std::max(e.ram_peak_bytes, ph.ram_peak);
  }
}

Expressed express(Engine engine, const Model& model, const Strategy& strategy) {
  switch (engine) {
    case Engine::dmem:
      break;
    case Engine::diffusers:
      return express_diffusers(model, strategy);
    case Engine::comfyui:
      return express_comfyui(model, strategy);
    case Engine::sdcpp:
      return express_sdcpp(model, strategy);
  }
  Expressed e;
  e.ok = true;
  e.strategy = strategy;
  return e;
}

void adjust_estimate(Engine engine, ModelProfile& profile, const Strategy& strategy,
                     const Hardware& hardware, Estimate& estimate,
                     std::vector<std::string>* notes) {
  switch (engine) {
    case Engine::dmem:
      break;
    case Engine::diffusers:
      adjust_diffusers(profile, strategy, hardware, estimate, notes);
      break;
    case Engine::comfyui:
      adjust_comfyui(profile, strategy, hardware, estimate, notes);
      break;
    case Engine::sdcpp:
      adjust_sdcpp(profile, strategy, hardware, estimate, notes);
      break;
  }
}

}  // namespace dmem::detail
