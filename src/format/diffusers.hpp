// Internal: diffusers pipeline folders (model_index.json) and component folders (config.json +
// weights), FORMATS.md §1.5 and §1.6. How variants and components are chosen: docs/inputs.md.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "dmem/model.hpp"
#include "dmem/status.hpp"

namespace dmem::detail {

/// A standard weights file name split into its parts: `diffusion_pytorch_model` (diffusers) or
/// `model` (transformers), an optional variant, and whether it is a sharded index. Accepts
/// `BASE[.VARIANT].safetensors`, `BASE[.VARIANT].safetensors.index.json` and the spelling
/// diffusers' own `_add_variant` gives an index, `BASE.safetensors.index.VARIANT.json`.
struct WeightName {
  bool diffusers = false;  ///< diffusion_pytorch_model* rather than model*
  bool index = false;      ///< a *.safetensors.index.json
  std::string variant;     ///< "fp16"; empty for the default weights
};
[[nodiscard]] bool parse_weight_name(std::string_view file_name, WeightName& out);

/// The weights chosen in a component folder.
struct WeightsChoice {
  std::string path;  ///< folder / file name
  WeightName name;
};

/// Picks the weights of a component folder: the default (non-variant) weights when present,
/// else the only variant present; an index wins over a single file of the same variant and
/// diffusers names over transformers names. Errors name the folder: no weights
/// (Errc::not_found, listing the names looked for), pickle weights only (Errc::unsupported),
/// several variants and no default (Errc::unsupported, listing them).
[[nodiscard]] Result<WeightsChoice> find_component_weights(const std::string& folder) noexcept;

/// A config.json: its text and parsed value (an object).
struct ConfigFile {
  std::string path;
  std::string text;
  nlohmann::json value;
};

/// Reads and parses a JSON object file (config.json, model_index.json); Errc::format_error
/// naming the file when it is not a JSON object.
[[nodiscard]] Result<ConfigFile> read_json_object(const std::string& path) noexcept;
/// The parsing half of read_json_object, on text already read (`path` names it in errors).
[[nodiscard]] Result<ConfigFile> parse_json_object(std::string text,
                                                   const std::string& path) noexcept;

/// Builds a component from one weights file (single or index) and, when `config` is given,
/// its config.json. `listed_class` is the class model_index.json names ("" when none); the
/// config's own class wins.
[[nodiscard]] Result<Component> component_from_weights(const WeightsChoice& weights,
                                                       std::string name,
                                                       std::string_view listed_class,
                                                       const ConfigFile* config) noexcept;

/// Reads a component folder: optional config.json plus the weights find_component_weights picks.
[[nodiscard]] Result<Component> read_component_folder(const std::string& folder, std::string name,
                                                      std::string_view listed_class) noexcept;

/// Reads a pipeline folder: model_index.json and every listed component that has weights
/// (schedulers, tokenizers, processors, feature extractors and [null, null] entries are
/// skipped). Components come in key order; open_model sorts them by role.
[[nodiscard]] Result<Model> read_diffusers_pipeline(const std::string& folder) noexcept;

}  // namespace dmem::detail
