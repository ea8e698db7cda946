#include "dmem/model.hpp"

namespace dmem {
inline namespace v1 {

std::string_view role_name(Role role) noexcept {
  switch (role) {
    case Role::denoiser:
      return "denoiser";
    case Role::text_encoder:
      return "text encoder";
    case Role::vae:
      return "vae";
    case Role::other:
      return "other";
  }
  return "other";
}

const Component* Model::find(std::string_view component) const noexcept {
  for (const auto& c : components)
    if (c.name == component) return &c;
  return nullptr;
}

}  // namespace v1
}  // namespace dmem
