// Calibration files: measured bandwidth and throughput that replace preset figures
// (schema in docs/hardware.md). Strict: unknown keys and non-positive numbers are errors.
#include <array>
#include <cmath>
#include <string>

#include "format/file_io.hpp"
#include "format/json_util.hpp"
#include "hw/hw_detail.hpp"

namespace dmem {
inline namespace v1 {

namespace {

constexpr std::uint64_t kMaxCalibrationBytes = 1u << 20;

enum class Target {
  none,
  all_gpus_h2d,
  all_gpus_h2d_pageable,
  all_gpus_d2h,
  all_gpus_bf16,
  all_gpus_fp8,
  all_gpus_mem,
  disk,
  cpu,
  activation
};

struct Key {
  const char* name;
  Target target;
};

// activation_scale multiplies the activation model: outside [0.1, 10] it is not a correction of
// the model but a wrong file (or a trace that was not a run of the model). Keep the message in
// step with these.
constexpr double kMinActivationScale = 0.1;
constexpr double kMaxActivationScale = 10.0;

constexpr std::array<Key, 11> kKeys{{
    {"version", Target::none},
    {"device", Target::none},
    {"h2d_pinned_gbps", Target::all_gpus_h2d},
    {"h2d_pageable_gbps", Target::all_gpus_h2d_pageable},
    {"d2h_pinned_gbps", Target::all_gpus_d2h},
    {"bf16_tflops", Target::all_gpus_bf16},
    {"fp8_tflops", Target::all_gpus_fp8},
    {"mem_gbps", Target::all_gpus_mem},
    {"disk_read_gbps", Target::disk},
    {"cpu_gflops", Target::cpu},
    {"activation_scale", Target::activation},
}};

// A key as shown in a message: long ones cut, so the line stays short.
std::string clip(const std::string& key) {
  return key.size() <= 64 ? key
                          : key.substr(0, 64) + "... (" + std::to_string(key.size()) + " bytes)";
}

std::string allowed_keys() {
  std::string out;
  for (const auto& k : kKeys) out += (out.empty() ? "" : ", ") + std::string(k.name);
  return out;
}

Status calibration_from_text(Hardware& hardware, std::string_view text,
                             std::string_view path) noexcept {
  if (text.size() > kMaxCalibrationBytes)
    return Status(Errc::limit_exceeded, "calibration is larger than 1 MiB")
        .with_file(std::string(path))
        .with_rule("calibration.size")
        .with_hint("a calibration file holds about ten numbers; check that this is the right file");
  nlohmann::json j;
  detail::JsonError err;
  if (!detail::parse_json_strict(text, j, err))
    return Status(Errc::invalid_argument, "calibration is not valid JSON: " + err.message)
        .with_file(std::string(path))
        .with_offset(err.offset)
        .with_rule("calibration.json");
  if (!j.is_object())
    return Status(Errc::invalid_argument, "calibration must be a JSON object")
        .with_file(std::string(path))
        .with_rule("calibration.json");

  // Validate everything first so a bad file leaves `hardware` untouched.
  Hardware out = hardware;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const Key* key = nullptr;
    for (const auto& k : kKeys)
      if (it.key() == k.name) key = &k;
    if (key == nullptr)
      return Status(Errc::invalid_argument, "unknown calibration key '" + clip(it.key()) + "'")
          .with_file(std::string(path))
          .with_rule("calibration.key")
          .with_hint("allowed keys: " + allowed_keys());
    if (key->target == Target::none) {
      const bool ok = std::string_view(key->name) == "version"
                          ? (it->is_number_unsigned() && it->get<std::uint64_t>() == 1)
                          : it->is_string();
      if (!ok)
        return Status(Errc::invalid_argument,
                      std::string("calibration key '") + key->name + "' must be " +
                          (std::string_view(key->name) == "version" ? "1" : "a string"))
            .with_file(std::string(path))
            .with_rule("calibration.value");
      continue;
    }
    if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() <= 0)
      return Status(Errc::invalid_argument,
                    "calibration key '" + it.key() + "' must be a positive number")
          .with_file(std::string(path))
          .with_rule("calibration.value");
    const double v = it->get<double>();
    if (key->target == Target::activation && (v < kMinActivationScale || v > kMaxActivationScale))
      return Status(Errc::invalid_argument,
                    "calibration key 'activation_scale' must be between 0.1 and 10")
          .with_file(std::string(path))
          .with_rule("calibration.value")
          .with_hint("a factor on the planner's activation model; 1 = the model as documented");
    switch (key->target) {
      case Target::all_gpus_h2d:
        for (auto& g : out.gpus) g.h2d_pinned_gbps = v;
        break;
      case Target::all_gpus_h2d_pageable:
        for (auto& g : out.gpus) g.h2d_pageable_gbps = v;
        break;
      case Target::all_gpus_d2h:
        for (auto& g : out.gpus) g.d2h_pinned_gbps = v;
        break;
      case Target::all_gpus_bf16:
        for (auto& g : out.gpus) g.bf16_tflops = v;
        break;
      case Target::all_gpus_fp8:
        for (auto& g : out.gpus) g.fp8_tflops = v;
        break;
      case Target::all_gpus_mem:
        for (auto& g : out.gpus) g.mem_gbps = v;
        break;
      case Target::disk:
        out.disk_read_gbps = v;
        break;
      case Target::cpu:
        out.cpu_gflops = v;
        break;
      case Target::activation:
        out.activation_scale = v;
        break;
      case Target::none:
        break;
    }
  }
  hardware = std::move(out);
  return Status::ok();
}

}  // namespace

Status apply_calibration(Hardware& hardware, std::string_view path) noexcept {
  auto text = detail::read_small_file(path, kMaxCalibrationBytes);
  if (!text) return text.status();
  return calibration_from_text(hardware, *text, path);
}

}  // namespace v1
}  // namespace dmem

namespace dmem::detail {

Status apply_calibration_text(Hardware& hardware, std::string_view text,
                              std::string_view path) noexcept {
  return dmem::calibration_from_text(hardware, text, path);
}

}  // namespace dmem::detail
