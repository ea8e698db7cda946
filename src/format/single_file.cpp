// Single-file checkpoints: components found by the name prefixes ComfyUI and the original
// LDM / SGM code write (docs/inputs.md lists them). Tensor names keep their original spelling.
#include "format/single_file.hpp"

#include <map>
#include <set>
#include <string_view>
#include <utility>

#include "model/arch_from_config.hpp"

namespace dmem::detail {

namespace {

bool starts_with(std::string_view s, std::string_view p) noexcept {
  return s.substr(0, p.size()) == p;
}

// Stands for T5-XXL until we know whether the file is SD3 (text_encoder_3) or FLUX (_2).
constexpr std::string_view kT5 = "\x01t5xxl";

struct Prefix {
  std::string_view prefix;
  std::string_view component;
};

constexpr Prefix kPrefixes[] = {
    {"model.diffusion_model.", "transformer"},  // "unet" for LDM UNet layouts, decided later
    {"first_stage_model.", "vae"},
    {"vae.", "vae"},
    {"text_encoders.clip_l.transformer.", "text_encoder"},
    {"text_encoders.clip_g.transformer.", "text_encoder_2"},
    {"text_encoders.t5xxl.transformer.", kT5},
    {"conditioner.embedders.0.transformer.", "text_encoder"},  // SDXL CLIP-L
    {"conditioner.embedders.1.model.", "text_encoder_2"},      // SDXL OpenCLIP-bigG
    {"cond_stage_model.transformer.", "text_encoder"},         // SD 1.x CLIP-L
    {"cond_stage_model.model.", "text_encoder"},               // SD 2.x OpenCLIP-H
};

const Prefix* match(std::string_view name) noexcept {
  for (const auto& p : kPrefixes)
    if (starts_with(name, p.prefix) && name.size() > p.prefix.size()) return &p;
  return nullptr;
}

Role role_of(std::string_view component) noexcept {
  if (component == "transformer" || component == "unet") return Role::denoiser;
  if (component == "vae") return Role::vae;
  if (starts_with(component, "text_encoder")) return Role::text_encoder;
  return Role::other;
}

}  // namespace

bool has_single_file_prefixes(const std::vector<TensorInfo>& tensors) noexcept {
  for (const auto& t : tensors)
    if (match(t.name) != nullptr) return true;
  return false;
}

std::vector<Component> split_single_file(const std::vector<std::string>& files,
                                         const std::vector<TensorInfo>& tensors) {
  // Group in file order; a stripped name that collides with one already in its component
  // (two prefixes for the same part) stays whole in `other` rather than shadowing it.
  std::map<std::string, std::vector<TensorInfo>, std::less<>> groups;
  std::map<std::string, std::set<std::string, std::less<>>, std::less<>> seen;
  std::vector<std::string> order;
  for (const auto& t : tensors) {
    const Prefix* p = match(t.name);
    std::string component = p != nullptr ? std::string(p->component) : std::string("other");
    TensorInfo stripped = t;
    if (p != nullptr) {
      stripped.name = t.name.substr(p->prefix.size());
      if (seen[component].count(stripped.name) != 0) {
        component = "other";
        stripped.name = t.name;
      }
    }
    seen[component].insert(stripped.name);
    if (groups.find(component) == groups.end()) order.push_back(component);
    groups[component].push_back(std::move(stripped));
  }

  const bool has_clip_g = groups.count("text_encoder_2") != 0;
  std::vector<Component> out;
  for (const std::string& key : order) {
    std::vector<TensorInfo>& group = groups[key];
    Component c;
    c.name = key;
    if (key == kT5) c.name = has_clip_g ? "text_encoder_3" : "text_encoder_2";
    if (key == "transformer") {
      for (const auto& t : group) {
        if (starts_with(t.name, "input_blocks.") || starts_with(t.name, "middle_block.")) {
          c.name = "unet";
          break;
        }
      }
    }
    c.role = role_of(c.name);
    // Keep only the files this component's tensors live in, renumbered in first-use order.
    std::map<std::uint32_t, std::uint32_t> remap;
    for (auto& t : group) {
      if (t.file == kNoFile || t.file >= files.size()) continue;
      auto [it, added] = remap.emplace(t.file, static_cast<std::uint32_t>(c.files.size()));
      if (added) c.files.push_back(files[t.file]);
      t.file = it->second;
    }
    c.tensors = std::move(group);
    complete_component(c, nullptr, false);
    out.push_back(std::move(c));
  }
  return out;
}

}  // namespace dmem::detail
