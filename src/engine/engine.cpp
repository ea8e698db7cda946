// Engine names and the dispatch to each engine's profile.
#include "dmem/engine.hpp"

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
  for (Engine e : {Engine::dmem, Engine::diffusers})
    if (engine_name(e) == name) return e;
  if (name == "comfyui" || name == "sdcpp")
    return Status(Errc::unsupported,
                  "the " + std::string(name) + " profile is not written yet (issue 10)")
        .with_rule("engine.unknown")
        .with_hint("plan for --engine diffusers or dmem meanwhile");
  return Status(Errc::invalid_argument, "no engine named '" + std::string(name) + "'")
      .with_rule("engine.unknown")
      .with_hint("use one of: dmem, diffusers");
}

}  // namespace v1
}  // namespace dmem

namespace dmem::detail {

Expressed express(Engine engine, const Model& model, const Strategy& strategy) {
  switch (engine) {
    case Engine::dmem:
      break;
    case Engine::diffusers:
      return express_diffusers(model, strategy);
    case Engine::comfyui:
    case Engine::sdcpp: {
      Expressed e;
      e.why = "the " + std::string(engine_name(engine)) + " profile is not written yet";
      return e;
    }
  }
  Expressed e;
  e.ok = true;
  e.strategy = strategy;
  return e;
}

void adjust_estimate(Engine engine, ModelProfile& profile, const Strategy& strategy,
                     const Hardware& hardware, Estimate& estimate,
                     std::vector<std::string>* notes) {
  if (engine == Engine::diffusers) adjust_diffusers(profile, strategy, hardware, estimate, notes);
}

}  // namespace dmem::detail
