// Engines: the programs people already run a plan in. dmem plans for its own runtime by default;
// an engine profile restricts the plans to what that engine can express and predicts the memory
// the engine itself will use (docs/engines.md).
#pragma once

#include <cstdint>
#include <string_view>

#include "dmem/status.hpp"

namespace dmem {
inline namespace v1 {

enum class Engine : std::uint8_t {
  dmem,       ///< dmem's own runtime (Session)
  diffusers,  ///< Hugging Face diffusers >= 0.35 (Python)
  comfyui,    ///< ComfyUI (launch flags and loader nodes)
  sdcpp,      ///< stable-diffusion.cpp (command line)
};

/// "dmem", "diffusers", "comfyui", "sdcpp".
[[nodiscard]] std::string_view engine_name(Engine engine) noexcept;

/// The engine with this name (the names above); an error listing them otherwise.
[[nodiscard]] Result<Engine> engine_from_name(std::string_view name) noexcept;

}  // namespace v1
}  // namespace dmem
