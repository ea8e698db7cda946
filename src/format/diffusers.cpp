// diffusers pipeline and component folders: which components carry weights, which weights file
// each one uses, and what its config.json says (FORMATS.md §1.5, §1.6; docs/inputs.md).
#include "format/diffusers.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <system_error>
#include <utility>

#include "dmem/checkpoint.hpp"
#include "format/file_io.hpp"
#include "format/json_util.hpp"
#include "model/arch_from_config.hpp"

namespace dmem::detail {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr std::uint64_t kMaxConfigBytes = 16ull << 20;  // configs are a few KB

constexpr std::string_view kLookedFor =
    "diffusion_pytorch_model[.VARIANT].safetensors, "
    "diffusion_pytorch_model[.VARIANT].safetensors.index.json, model[.VARIANT].safetensors, "
    "model[.VARIANT].safetensors.index.json";

bool starts_with(std::string_view s, std::string_view p) noexcept {
  return s.substr(0, p.size()) == p;
}
bool ends_with(std::string_view s, std::string_view p) noexcept {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

std::string join(const fs::path& folder, std::string_view name) {
  return (folder / fs::path(name)).string();
}

// "-00001-of-00003" at the end: a shard, listed by its index rather than opened on its own.
bool ends_with_shard_suffix(std::string_view s) noexcept {
  constexpr std::string_view kDigits = "0123456789";
  if (s.size() < 15) return false;
  std::string_view t = s.substr(s.size() - 15);  // "-NNNNN-of-NNNNN"
  return t[0] == '-' && t.substr(1, 5).find_first_not_of(kDigits) == std::string_view::npos &&
         t.substr(6, 4) == "-of-" &&
         t.substr(10).find_first_not_of(kDigits) == std::string_view::npos;
}

bool valid_variant(std::string_view v) noexcept {
  return !v.empty() && v.find('.') == std::string_view::npos &&
         v.find('/') == std::string_view::npos && !ends_with_shard_suffix(v);
}

// Files whose presence explains "no safetensors weights here".
bool is_pickle_name(std::string_view name) noexcept {
  return ends_with(name, ".bin") || ends_with(name, ".ckpt") || ends_with(name, ".pt") ||
         ends_with(name, ".pth");
}

// Entries of model_index.json that never have weights.
bool is_weightless(std::string_view name, std::string_view cls) noexcept {
  for (std::string_view p :
       {"scheduler", "tokenizer", "processor", "feature_extractor", "image_processor"})
    if (starts_with(name, p)) return true;
  for (std::string_view s :
       {"Scheduler", "Tokenizer", "TokenizerFast", "Processor", "FeatureExtractor"})
    if (ends_with(cls, s)) return true;
  return false;
}

Status json_file_error(std::string message, const std::string& path) {
  return Status(Errc::format_error, std::move(message))
      .with_file(path)
      .with_rule("diffusers.json")
      .with_hint("re-download the file; it must be one JSON object");
}

}  // namespace

bool parse_weight_name(std::string_view file_name, WeightName& out) {
  std::string_view stem;
  std::string_view index_variant;
  WeightName w;
  constexpr std::string_view kIndex = ".safetensors.index.json";
  constexpr std::string_view kIndexMid = ".safetensors.index.";
  constexpr std::string_view kSingle = ".safetensors";
  if (ends_with(file_name, kIndex)) {
    stem = file_name.substr(0, file_name.size() - kIndex.size());
    w.index = true;
  } else if (const auto mid = file_name.find(kIndexMid);
             mid != std::string_view::npos && ends_with(file_name, ".json")) {
    // diffusers' _add_variant puts the variant before the last extension of the index name.
    stem = file_name.substr(0, mid);
    const std::size_t begin = mid + kIndexMid.size();
    const std::size_t end = file_name.size() - 5;
    if (end <= begin) return false;
    index_variant = file_name.substr(begin, end - begin);
    if (!valid_variant(index_variant)) return false;
    w.index = true;
  } else if (ends_with(file_name, kSingle)) {
    stem = file_name.substr(0, file_name.size() - kSingle.size());
  } else {
    return false;
  }
  for (std::string_view base :
       {std::string_view("diffusion_pytorch_model"), std::string_view("model")}) {
    std::string_view variant;
    if (stem == base) {
      variant = {};
    } else if (starts_with(stem, base) && stem.size() > base.size() && stem[base.size()] == '.') {
      variant = stem.substr(base.size() + 1);
      if (!valid_variant(variant)) return false;
    } else {
      continue;
    }
    if (!variant.empty() && !index_variant.empty()) return false;
    w.diffusers = base == "diffusion_pytorch_model";
    w.variant = std::string(variant.empty() ? index_variant : variant);
    out = std::move(w);
    return true;
  }
  return false;
}

Result<WeightsChoice> find_component_weights(const std::string& folder) noexcept {
  std::error_code ec;
  fs::directory_iterator it(folder, ec);
  if (ec) return os_error("cannot list folder", folder, ec.value());

  // Best candidate per variant: index before single file, diffusers before transformers names.
  std::map<std::string, WeightsChoice> best;
  std::vector<std::string> pickles;
  std::vector<std::string> other_safetensors;
  const auto rank = [](const WeightName& w) { return (w.index ? 2 : 0) + (w.diffusers ? 1 : 0); };
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    if (ec) return os_error("cannot list folder", folder, ec.value());
    std::error_code fec;
    const std::string name = it->path().filename().string();
    WeightName w;
    const bool weights_name = parse_weight_name(name, w);
    if (!it->is_regular_file(fec)) {
      // A weights name on a folder, FIFO or device is reported, not skipped for another file.
      struct stat st {};
      if (weights_name && ::stat(it->path().c_str(), &st) == 0)
        return not_regular_error(it->path().string(), st.st_mode);
      continue;
    }
    if (weights_name) {
      auto found = best.find(w.variant);
      if (found == best.end() || rank(w) > rank(found->second.name))
        best[w.variant] = WeightsChoice{join(folder, name), w};
    } else if (is_pickle_name(name)) {
      pickles.push_back(name);
    } else if (ends_with(name, ".safetensors") &&
               !ends_with_shard_suffix(name.substr(0, name.size() - 12))) {
      other_safetensors.push_back(name);
    }
  }
  if (ec) return os_error("cannot list folder", folder, ec.value());

  if (auto d = best.find(""); d != best.end()) return d->second;
  if (best.size() == 1) return best.begin()->second;
  if (best.size() > 1) {
    std::string variants;
    for (const auto& [v, choice] : best) variants += (variants.empty() ? "" : ", ") + v;
    const WeightsChoice& first = best.begin()->second;
    return Status(Errc::unsupported, "the folder has weights in several variants (" + variants +
                                         ") and no default weights, so which to read is ambiguous")
        .with_file(folder)
        .with_rule("diffusers.variant")
        .with_hint("keep one variant in the folder, or open one file directly, e.g. dmem inspect " +
                   first.path);
  }
  std::sort(pickles.begin(), pickles.end());
  if (!pickles.empty()) {
    return Status(Errc::unsupported,
                  "the folder holds only pickle weights (" + pickles.front() +
                      "); pickle checkpoints are not read; convert to safetensors")
        .with_file(folder)
        .with_rule("diffusers.pickle")
        .with_hint("convert to safetensors (e.g. save_pretrained(..., safe_serialization=True))");
  }
  Status status(Errc::not_found, "no weights in the folder; looked for " + std::string(kLookedFor));
  status.with_file(folder).with_rule("diffusers.weights");
  std::sort(other_safetensors.begin(), other_safetensors.end());
  if (!other_safetensors.empty()) {
    status.with_hint("it has " + other_safetensors.front() +
                     ", which is not a diffusers or transformers weights name: open that file "
                     "directly");
  } else {
    status.with_hint("re-download the component's weights");
  }
  return status;
}

Result<ConfigFile> read_json_object(const std::string& path) noexcept {
  auto text = read_small_file(path, kMaxConfigBytes);
  if (!text) return text.status();
  return parse_json_object(std::move(text.value()), path);
}

Result<ConfigFile> parse_json_object(std::string text, const std::string& path) noexcept {
  ConfigFile cfg;
  cfg.path = path;
  JsonError jerr;
  if (!parse_json_strict(text, cfg.value, jerr, 64)) {
    Status status = json_file_error("not valid JSON: " + jerr.message, path);
    if (jerr.kind == JsonError::Kind::syntax) status.with_offset(jerr.offset);
    return status;
  }
  if (!cfg.value.is_object()) return json_file_error("the file must hold a JSON object", path);
  cfg.text = std::move(text);
  return cfg;
}

Result<Component> component_from_weights(const WeightsChoice& weights, std::string name,
                                         std::string_view listed_class,
                                         const ConfigFile* config) noexcept {
  Component c;
  c.name = std::move(name);
  if (weights.name.index) {
    auto sharded = read_sharded(weights.path);
    if (!sharded) return sharded.status();
    c.files = std::move(sharded->files);
    c.tensors = std::move(sharded->tensors);
  } else {
    auto file = read_safetensors(weights.path);
    if (!file) return file.status();
    c.files.push_back(weights.path);
    c.tensors = std::move(file->tensors);
    for (auto& t : c.tensors) t.file = 0;
  }
  if (config != nullptr) {
    c.class_name = class_from_config(config->value);
    c.config_json = config->text;
  }
  if (c.class_name.empty()) c.class_name = std::string(listed_class);
  complete_component(c, config != nullptr ? &config->value : nullptr, true);
  return c;
}

Result<Component> read_component_folder(const std::string& folder, std::string name,
                                        std::string_view listed_class) noexcept {
  auto weights = find_component_weights(folder);
  if (!weights) return weights.status();
  const std::string config_path = join(folder, "config.json");
  // Absent is fine; a config.json that is a folder, FIFO or unreadable is an error, not ignored.
  if (!path_present(config_path))
    return component_from_weights(*weights, std::move(name), listed_class, nullptr);
  auto config = read_json_object(config_path);
  if (!config) return config.status();
  return component_from_weights(*weights, std::move(name), listed_class, &config.value());
}

Result<Model> read_diffusers_pipeline(const std::string& folder) noexcept {
  const std::string index_path = join(folder, "model_index.json");
  auto index = read_json_object(index_path);
  if (!index) return index.status();

  Model m;
  m.source = "diffusers";
  m.pipeline_class = class_from_config(index->value);
  for (const auto& [key, value] : index->value.items()) {
    const std::string& name = key;
    if (name.empty() || name.front() == '_') continue;  // _class_name, _diffusers_version
    // Components are ["library", "Class"]; anything else (flags such as
    // force_zeros_for_empty_prompt, or [null, null] for an absent optional part) is not one.
    if (!value.is_array() || value.size() != 2 || !value[0].is_string() || !value[1].is_string())
      continue;
    const std::string& cls = value[1].get_ref<const std::string&>();
    if (is_weightless(name, cls)) continue;
    if (name.find('/') != std::string::npos || name == "." || name == "..") {
      return Status(Errc::format_error, "model_index.json names a component '" + name +
                                            "' that is not a plain folder name")
          .with_file(index_path)
          .with_rule("diffusers.component");
    }
    const std::string sub = join(folder, name);
    std::error_code ec;
    if (!fs::is_directory(sub, ec)) {
      return Status(Errc::not_found, "model_index.json lists component '" + name + "' (" + cls +
                                         ") but its folder does not exist")
          .with_file(sub)
          .with_rule("diffusers.component")
          .with_hint("download the '" + name +
                     "' folder, or remove its entry from model_index.json");
    }
    auto component = read_component_folder(sub, name, cls);
    if (!component) return component.status();
    m.components.push_back(std::move(component.value()));
  }
  if (m.components.empty()) {
    return Status(Errc::format_error, "model_index.json lists no component with weights")
        .with_file(index_path)
        .with_rule("diffusers.component")
        .with_hint("a pipeline needs entries such as \"transformer\": [\"diffusers\", \"...\"]");
  }
  return m;
}

}  // namespace dmem::detail
