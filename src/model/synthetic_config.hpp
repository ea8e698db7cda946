// Internal: config.json text for a component that has none (a bare checkpoint), written so that
// the diffusers reader (arch_from_config) gives back the component's ArchInfo.
#pragma once

#include <string>

#include "dmem/model.hpp"

namespace dmem::detail {

/// A config.json object from `component.class_name` and `component.arch`.
[[nodiscard]] std::string synthesize_config(const Component& component);

}  // namespace dmem::detail
