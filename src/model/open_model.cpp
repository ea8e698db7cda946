// open_model: one entry point for every input dmem reads (docs/inputs.md). Dispatches on what
// the path is; reads headers only.
#include <sys/stat.h>
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "dmem/catalog.hpp"
#include "dmem/checkpoint.hpp"
#include "dmem/model.hpp"
#include "format/diffusers.hpp"
#include "format/file_io.hpp"
#include "format/single_file.hpp"
#include "model/arch_from_config.hpp"

namespace dmem {
inline namespace v1 {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kAccepted =
    "dmem opens a built-in model name (dmem models), a diffusers folder with model_index.json, "
    "a component folder with config.json and weights, a .safetensors file, a sharded "
    "*.safetensors.index.json or a .gguf file";

bool ends_with(std::string_view s, std::string_view p) noexcept {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

std::string catalog_names() {
  std::string names;
  for (const auto& e : catalog_entries()) names += (names.empty() ? "" : ", ") + e.name;
  return names;
}

// Denoiser, text encoders, VAE, the rest; by name within a role (text_encoder < text_encoder_2).
void sort_components(std::vector<Component>& components) {
  std::stable_sort(components.begin(), components.end(),
                   [](const Component& a, const Component& b) {
                     if (a.role != b.role) return a.role < b.role;
                     return a.name < b.name;
                   });
}

// Prompt length is a pipeline fact: the T5 encoder reads what the denoiser is given (FLUX: all
// of it; SD3: the 256 tokens after CLIP's 77).
void align_prompt_lengths(std::vector<Component>& components) {
  std::uint32_t t5_tokens = 0;
  for (const auto& c : components) {
    if (c.role != Role::denoiser || c.arch.max_text_tokens == 0) continue;
    if (c.arch.family == "flux-dit") t5_tokens = c.arch.max_text_tokens;
    if (c.arch.family == "sd3-dit" && c.arch.max_text_tokens > 77)
      t5_tokens = c.arch.max_text_tokens - 77;
  }
  if (t5_tokens == 0) return;
  for (auto& c : components)
    if (c.arch.family == "t5") c.arch.max_text_tokens = t5_tokens;
}

// The last element of a path, even when given as "folder/" or ".".
std::string folder_name(const std::string& path) {
  fs::path p = fs::path(path).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();
  std::string name = p.filename().string();
  if (name.empty() || name == "." || name == "..") {
    std::error_code ec;
    fs::path abs = fs::absolute(p, ec);
    if (!ec) name = abs.lexically_normal().filename().string();
  }
  return name.empty() ? std::string("model") : name;
}

// "flux1-dev.safetensors" -> "flux1-dev"; "x.safetensors.index.json" -> "x".
std::string file_stem(const std::string& path) {
  std::string name = fs::path(path).filename().string();
  for (std::string_view ext : {".safetensors.index.json", ".safetensors", ".gguf"}) {
    if (ends_with(name, ext)) {
      name.resize(name.size() - ext.size());
      break;
    }
  }
  return name.empty() ? std::string("model") : name;
}

// A checkpoint that is several components under prefixes, or one component.
Model from_tensors(const std::string& path, std::string source, std::vector<std::string> files,
                   std::vector<TensorInfo> tensors) {
  Model m;
  m.name = path;
  if (detail::has_single_file_prefixes(tensors)) {
    m.source = "single-file";
    m.components = detail::split_single_file(files, tensors);
    sort_components(m.components);
    align_prompt_lengths(m.components);
    return m;
  }
  m.source = std::move(source);
  Component c;
  c.name = file_stem(path);
  c.files = std::move(files);
  c.tensors = std::move(tensors);
  detail::complete_component(c, nullptr, true);
  m.components.push_back(std::move(c));
  return m;
}

// The config.json next to a file with a standard weights name (model.safetensors,
// diffusion_pytorch_model.fp16.safetensors ...); empty when there is none.
std::string sibling_config(const std::string& path) {
  detail::WeightName w;
  if (!detail::parse_weight_name(fs::path(path).filename().string(), w)) return {};
  const std::string config_path = (fs::path(path).parent_path() / "config.json").string();
  // Present in any form: a folder or FIFO named config.json is then reported, not skipped.
  return detail::path_present(config_path) ? config_path : std::string();
}

// A standard weights file opened directly: the component is its folder, described by the
// config.json next to it.
Result<Model> open_standard_weights(const std::string& path, const std::string& config_path,
                                    std::string source) {
  const fs::path folder = fs::path(path).parent_path();
  detail::WeightName w;
  if (!detail::parse_weight_name(fs::path(path).filename().string(), w))
    return Status(Errc::internal, "not a standard weights name").with_file(path);
  auto config = detail::read_json_object(config_path);
  if (!config) return config.status();
  auto c = detail::component_from_weights(detail::WeightsChoice{path, w},
                                          folder_name(folder.empty() ? "." : folder.string()), "",
                                          &config.value());
  if (!c) return c.status();
  Model m;
  m.name = path;
  m.source = std::move(source);
  m.components.push_back(std::move(c.value()));
  return m;
}

Result<Model> open_safetensors(const std::string& path) {
  if (std::string config = sibling_config(path); !config.empty())
    return open_standard_weights(path, config, "safetensors");
  auto file = read_safetensors(path);
  if (!file) return file.status();
  std::vector<TensorInfo> tensors = std::move(file->tensors);
  for (auto& t : tensors) t.file = 0;
  return from_tensors(path, "safetensors", {path}, std::move(tensors));
}

Result<Model> open_sharded(const std::string& path) {
  if (std::string config = sibling_config(path); !config.empty())
    return open_standard_weights(path, config, "sharded");
  auto index = read_sharded(path);
  if (!index) return index.status();
  return from_tensors(path, "sharded", std::move(index->files), std::move(index->tensors));
}

// general.architecture as ComfyUI-GGUF and llama.cpp write it -> role and catalog family.
void gguf_architecture(std::string_view arch, Component& c) {
  struct Known {
    std::string_view arch;
    Role role;
    std::string_view family;
  };
  static constexpr Known kKnown[] = {
      {"flux", Role::denoiser, "flux-dit"}, {"sd3", Role::denoiser, "sd3-dit"},
      {"wan", Role::denoiser, "wan-dit"},   {"sdxl", Role::denoiser, "sdxl-unet"},
      {"sd1", Role::denoiser, ""},          {"qwen_image", Role::denoiser, "qwen-image-dit"},
      {"t5", Role::text_encoder, "t5"},     {"t5encoder", Role::text_encoder, "t5"},
      {"umt5", Role::text_encoder, "umt5"}, {"qwen2vl", Role::text_encoder, "qwen2.5-vl"},
      {"llama", Role::text_encoder, ""},    {"qwen2", Role::text_encoder, ""},
      {"qwen3", Role::text_encoder, ""},    {"gemma2", Role::text_encoder, ""},
      {"gemma3", Role::text_encoder, ""},   {"clip", Role::text_encoder, "clip"},
  };
  for (const auto& k : kKnown) {
    if (k.arch != arch) continue;
    c.role = k.role;
    c.arch.family = std::string(k.family);
    return;
  }
}

Result<Model> open_gguf(const std::string& path) {
  auto file = read_gguf(path);
  if (!file) return file.status();
  std::vector<TensorInfo> tensors = std::move(file->tensors);
  for (auto& t : tensors) t.file = 0;
  if (detail::has_single_file_prefixes(tensors)) {
    Model m = from_tensors(path, "gguf", {path}, std::move(tensors));
    m.source = "gguf";
    return m;
  }
  Model m;
  m.name = path;
  m.source = "gguf";
  Component c;
  c.name = file_stem(path);
  c.files = {path};
  c.tensors = std::move(tensors);
  if (const GgufValue* v = file->find("general.architecture"); v != nullptr) {
    if (const auto* s = std::get_if<std::string>(&v->value)) gguf_architecture(*s, c);
  }
  detail::complete_component(c, nullptr, true);
  // ComfyUI-GGUF's files are UNet / DiT weights: a file nothing identifies is taken as one.
  if (c.role == Role::other) c.role = Role::denoiser;
  m.components.push_back(std::move(c));
  return m;
}

Result<Model> open_folder(const std::string& path) {
  if (detail::path_present((fs::path(path) / "model_index.json").string())) {
    auto m = detail::read_diffusers_pipeline(path);
    if (!m) return m.status();
    m->name = path;
    sort_components(m->components);
    align_prompt_lengths(m->components);
    return m;
  }
  // A component folder: config.json and weights (config.json alone explains a missing-weights
  // error better than "unsupported").
  const bool has_config = detail::path_present((fs::path(path) / "config.json").string());
  auto weights = detail::find_component_weights(path);
  if (!weights && (has_config || weights.status().code() != Errc::not_found))
    return weights.status();
  if (!weights) {
    return Status(Errc::unsupported,
                  "the folder has no model_index.json, config.json or weights dmem reads")
        .with_file(path)
        .with_rule("open.unsupported")
        .with_hint(std::string(kAccepted));
  }
  auto c = detail::read_component_folder(path, folder_name(path), "");
  if (!c) return c.status();
  Model m;
  m.name = path;
  m.source = "diffusers";
  m.components.push_back(std::move(c.value()));
  return m;
}

}  // namespace

Result<Model> open_model(std::string_view path_or_name) noexcept {
  const std::string path(path_or_name);
  if (path.empty()) {
    return Status(Errc::invalid_argument, "no model given")
        .with_rule("open.empty")
        .with_hint(std::string(kAccepted));
  }
  if (path.find('\0') != std::string::npos) {
    return Status(Errc::invalid_argument, "the path contains a NUL byte")
        .with_file(path)
        .with_rule("file.path")
        .with_hint("pass a path without NUL bytes");
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    for (const auto& e : catalog_entries())
      if (e.name == path) return catalog_model(path);
    // Only a missing path is "not found"; ELOOP, ENAMETOOLONG, EACCES … keep the OS's reason.
    if (err != ENOENT) return detail::os_error("cannot open", path, err);
    // to_string() prints the path first: "NAME: not an existing file or folder, nor ...".
    return Status(Errc::not_found, "not an existing file or folder, nor a built-in model name")
        .with_file(path)
        .with_rule("open.not_found")
        .with_hint("built-in models: " + catalog_names() + " (see dmem models)");
  }
  if (S_ISDIR(st.st_mode)) return open_folder(path);
  if (!S_ISREG(st.st_mode)) return detail::not_regular_error(path, st.st_mode);

  const std::string name = fs::path(path).filename().string();
  detail::WeightName w;
  if (ends_with(name, ".safetensors.index.json") || (detail::parse_weight_name(name, w) && w.index))
    return open_sharded(path);
  if (ends_with(name, ".safetensors")) return open_safetensors(path);
  if (ends_with(name, ".gguf")) return open_gguf(path);
  for (std::string_view ext : {".bin", ".ckpt", ".pt", ".pth"}) {
    if (ends_with(name, ext)) {
      return Status(Errc::unsupported, "pickle checkpoints are not read; convert to safetensors")
          .with_file(path)
          .with_rule("open.pickle")
          .with_hint(
              "convert with safetensors' convert script, or save_pretrained(..., "
              "safe_serialization=True)");
    }
  }
  return Status(Errc::unsupported, "not a checkpoint format dmem reads")
      .with_file(path)
      .with_rule("open.unsupported")
      .with_hint(std::string(kAccepted));
}

}  // namespace v1
}  // namespace dmem
