// Calibration figures as a file: read (through apply_calibration's checks), written atomically.
#include <cstdio>
#include <string>

#include "format/file_io.hpp"
#include "format/json_util.hpp"
#include "hw/calibrate.hpp"
#include "hw/hw_detail.hpp"

namespace dmem::detail {

namespace {

struct FigureKey {
  const char* name;
  std::optional<double> CalibrationFigures::*field;
};

// The file's key order: transfers, compute, host, the activation model.
constexpr FigureKey kFigureKeys[] = {
    {"h2d_pinned_gbps", &CalibrationFigures::h2d_pinned_gbps},
    {"h2d_pageable_gbps", &CalibrationFigures::h2d_pageable_gbps},
    {"d2h_pinned_gbps", &CalibrationFigures::d2h_pinned_gbps},
    {"bf16_tflops", &CalibrationFigures::bf16_tflops},
    {"fp8_tflops", &CalibrationFigures::fp8_tflops},
    {"mem_gbps", &CalibrationFigures::mem_gbps},
    {"disk_read_gbps", &CalibrationFigures::disk_read_gbps},
    {"cpu_gflops", &CalibrationFigures::cpu_gflops},
    {"activation_scale", &CalibrationFigures::activation_scale},
};

constexpr std::uint64_t kMaxCalibrationBytes = 1u << 20;

}  // namespace

Result<CalibrationFigures> read_calibration_figures(std::string_view path) noexcept {
  auto text = read_small_file(path, kMaxCalibrationBytes);
  if (!text) return text.status();
  // The planner's reader decides what a valid file is: a machine with one GPU takes every key.
  Hardware probe;
  probe.gpus.emplace_back();
  DMEM_TRY(apply_calibration_text(probe, *text, path));
  nlohmann::json j;
  JsonError err;
  if (!parse_json_strict(*text, j, err))  // cannot fail after the check above
    return Status(Errc::invalid_argument, "calibration is not valid JSON")
        .with_file(std::string(path));
  CalibrationFigures f;
  if (auto it = j.find("device"); it != j.end() && it->is_string()) f.device = *it;
  for (const auto& k : kFigureKeys)
    if (auto it = j.find(k.name); it != j.end() && it->is_number()) f.*k.field = it->get<double>();
  return f;
}

std::string calibration_json_text(const CalibrationFigures& figures) {
  // Written by hand so the key order is the documented one (nlohmann sorts keys).
  std::string out = "{\n  \"version\": 1";
  if (!figures.device.empty()) {
    out += ",\n  \"device\": ";
    append_json_string(out, figures.device);
  }
  for (const auto& k : kFigureKeys) {
    const auto& v = figures.*k.field;
    if (!v) continue;
    char buf[64];
    // Four significant digits are more than any of these measurements can claim.
    std::snprintf(buf, sizeof buf, "%.4g", *v);
    out += ",\n  \"";
    out += k.name;
    out += "\": ";
    out += buf;
  }
  out += "\n}\n";
  return out;
}

Status write_calibration(std::string_view path, const CalibrationFigures& figures) noexcept {
  for (const auto& k : kFigureKeys) {
    const auto& v = figures.*k.field;
    if (v && !(*v > 0 && *v < 1e12))
      return Status(Errc::internal, std::string("calibration figure ") + k.name +
                                        " is not a positive number; nothing written")
          .with_file(std::string(path))
          .with_rule("calibrate.value");
  }
  return write_file_atomic(path, calibration_json_text(figures));
}

void merge_figures(CalibrationFigures& base, const CalibrationFigures& measured) {
  if (!measured.device.empty()) base.device = measured.device;
  for (const auto& k : kFigureKeys)
    if (measured.*k.field) base.*k.field = measured.*k.field;
}

}  // namespace dmem::detail
