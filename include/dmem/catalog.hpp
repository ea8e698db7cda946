// The built-in catalog: real pipelines described without any file.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "dmem/model.hpp"
#include "dmem/status.hpp"

namespace dmem {
inline namespace v1 {

struct CatalogEntry {
  std::string name;         ///< "qwen-image"
  std::string title;        ///< "Qwen-Image"
  std::string pipeline;     ///< "QwenImagePipeline"
  std::string description;  ///< one line
};

/// Every built-in model, in a stable order.
[[nodiscard]] std::vector<CatalogEntry> catalog_entries();

/// Generates the model's components with real tensor names, shapes and published dtypes.
/// Errc::not_found (with the list of names in the hint) for an unknown name.
[[nodiscard]] Result<Model> catalog_model(std::string_view name) noexcept;

}  // namespace v1
}  // namespace dmem
