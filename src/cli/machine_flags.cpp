// Shared machine/workload flags: every value is read as text and parsed here so a bad value gets
// one line naming the flag (Boost's own messages do not say which unit was expected).
#include "cli/machine_flags.hpp"

#include <iostream>

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

#include "dmem/units.hpp"

namespace dmem::cli {

namespace {

Status flag_error(std::string_view flag, std::string_view value, std::string_view expected) {
  return Status(Errc::invalid_argument, "--" + std::string(flag) + ": '" + std::string(value) +
                                            "' is not " + std::string(expected))
      .with_rule("cli.flag");
}

std::optional<std::string> text(const po::variables_map& vm, const char* name) {
  if (vm.count(name) == 0 || vm[name].defaulted()) return std::nullopt;
  return vm[name].as<std::string>();
}

Result<std::optional<std::uint64_t>> bytes_flag(const po::variables_map& vm, const char* name) {
  auto t = text(vm, name);
  if (!t) return std::optional<std::uint64_t>{};
  auto b = parse_bytes(*t);
  if (!b)
    return Status(Errc::invalid_argument, "--" + std::string(name) + ": " + b.status().message())
        .with_rule("cli.flag")
        .with_hint(b.status().hint());
  return std::optional<std::uint64_t>{*b};
}

Result<std::optional<std::uint32_t>> count_flag(const po::variables_map& vm, const char* name,
                                                std::uint32_t min, std::uint32_t max) {
  auto t = text(vm, name);
  if (!t) return std::optional<std::uint32_t>{};
  std::uint32_t v = 0;
  const char* first = t->data();
  const char* last = first + t->size();
  auto [p, ec] = std::from_chars(first, last, v);
  if (ec != std::errc() || p != last || v < min || v > max)
    return flag_error(name, *t,
                      "a whole number from " + std::to_string(min) + " to " + std::to_string(max));
  return std::optional<std::uint32_t>{v};
}

Result<std::optional<double>> real_flag(const po::variables_map& vm, const char* name, double min,
                                        double max, bool percent_ok) {
  auto t = text(vm, name);
  if (!t) return std::optional<double>{};
  std::string_view s = *t;
  bool percent = false;
  if (percent_ok && !s.empty() && s.back() == '%') {
    percent = true;
    s.remove_suffix(1);
  }
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (percent) v /= 100.0;
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || !std::isfinite(v) || v < min ||
      v > max) {
    char range[96];
    std::snprintf(range, sizeof range, "a number from %g to %g%s", min, max,
                  percent_ok ? " (or a percentage such as 10%)" : "");
    return flag_error(name, *t, range);
  }
  return std::optional<double>{v};
}

}  // namespace

std::uint64_t effective_pinned_limit(const Hardware& hw) {
  return hw.pinned_limit != 0 ? hw.pinned_limit : hw.ram_available / 2;
}

nlohmann::json hardware_json(const Hardware& hw) {
  nlohmann::json j;
  j["source"] = hw.source;
  j["probed"] = hw.probed;
  j["gpus"] = nlohmann::json::array();
  for (const auto& g : hw.gpus) {
    j["gpus"].push_back(
        {{"name", g.name},
         {"compute_capability", std::to_string(g.cc_major) + "." + std::to_string(g.cc_minor)},
         {"vram_total_bytes", g.vram_total},
         {"vram_free_bytes", g.vram_free},
         {"pcie_gen", g.pcie_gen},
         {"pcie_lanes", g.pcie_lanes},
         {"bf16_tflops", g.bf16_tflops},
         {"fp8_tflops", g.fp8_tflops},
         {"mem_gbps", g.mem_gbps},
         {"h2d_pinned_gbps", g.h2d_pinned_gbps},
         {"h2d_pageable_gbps", g.h2d_pageable_gbps},
         {"d2h_pinned_gbps", g.d2h_pinned_gbps}});
  }
  j["ram_total_bytes"] = hw.ram_total;
  j["ram_available_bytes"] = hw.ram_available;
  j["pinned_limit_bytes"] = effective_pinned_limit(hw);
  j["disk_free_bytes"] = hw.disk_free;
  j["cache_dir"] = hw.cache_dir;
  j["disk_read_gbps"] = hw.disk_read_gbps;
  j["cpu_cores"] = hw.cpu_cores;
  j["cpu_gflops"] = hw.cpu_gflops;
  return j;
}

std::string hardware_line(const Hardware& hw) {
  std::string out;
  if (hw.gpus.empty()) {
    out = "CPU only (" + std::to_string(hw.cpu_cores) + " cores)";
  } else {
    const auto& g = hw.gpus.front();
    if (hw.gpus.size() > 1) out = std::to_string(hw.gpus.size()) + " x ";
    out += g.name + " " + format_bytes(g.vram_free) + " (sm_" + std::to_string(g.sm()) + ", PCIe " +
           std::to_string(g.pcie_gen) + ".0 x" + std::to_string(g.pcie_lanes) + ")";
  }
  return out + " · RAM " + format_bytes(hw.ram_available);
}

std::string preference_name(Preference p) {
  switch (p) {
    case Preference::quality:
      return "quality";
    case Preference::speed:
      return "speed";
    case Preference::memory:
      return "memory";
    case Preference::balanced:
      return "balanced";
  }
  return "balanced";
}

void add_hardware_options(po::options_description& desc) {
  desc.add_options()("gpu", po::value<std::string>(),
                     "GPU preset (rtx4090, h100, ... see dmem hardware --presets) or 'none' for a "
                     "CPU-only machine")("gpus", po::value<std::string>(),
                                         "number of identical GPUs")(
      "vram", po::value<std::string>(), "usable VRAM per GPU (24GiB)")(
      "ram", po::value<std::string>(), "available RAM (32GiB)")(
      "pinned-limit", po::value<std::string>(),
      "page-locked RAM allowed (default: half the available RAM)")(
      "disk", po::value<std::string>(), "free disk at the cache directory")(
      "cache-dir", po::value<std::string>(),
      "where a disk tier may write (default $DMEM_CACHE_DIR, $XDG_CACHE_HOME/dmem, ~/.cache/dmem)")(
      "calibration", po::value<std::string>(),
      "calibration JSON with measured bandwidth and throughput (docs/hardware.md)")(
      "no-probe", po::bool_switch(), "describe the machine from flags only; do not probe this one");
}

void add_workload_options(po::options_description& desc) {
  desc.add_options()("width", po::value<std::string>(),
                     "output width in pixels (default: the model's usual size)")(
      "height", po::value<std::string>(),
      "output height in pixels (default: the model's usual size)")(
      "frames", po::value<std::string>(), "frames (video models; Wan2.1 default 81)")(
      "batch", po::value<std::string>(), "images per prompt (default 1)")(
      "steps", po::value<std::string>(),
      "denoising steps (default: the pipeline's, e.g. 50; FLUX.1-dev 28)")(
      "cfg", po::value<std::string>(),
      "guidance passes: on (cond and uncond, two passes) | off (one) | batched (one pass at "
      "batch x 2) (default: the pipeline's)")(
      "images", po::value<std::string>(),
      "generations in one session: the load is paid once (default 1)")(
      "activation-gib", po::value<std::string>(),
      "override the activation model: peak activations per phase, GiB")(
      "prefer", po::value<std::string>(), "quality | speed | memory | balanced (default balanced)")(
      "margin", po::value<std::string>(),
      "fraction of every budget held back (default 0.10; 10% also accepted)");
}

void add_machine_options(po::options_description& desc) {
  add_hardware_options(desc);
  add_workload_options(desc);
}

Result<HardwareOptions> read_hardware_options(const po::variables_map& vm) {
  HardwareOptions o;
  if (vm.count("no-probe") != 0) o.probe = !vm["no-probe"].as<bool>();
  o.gpu = text(vm, "gpu");
  auto gpus = count_flag(vm, "gpus", 0, 64);
  if (!gpus) return gpus.status();
  o.gpus = *gpus;
  const std::pair<const char*, std::optional<std::uint64_t>*> byte_flags[] = {
      {"vram", &o.vram}, {"ram", &o.ram}, {"pinned-limit", &o.pinned_limit}, {"disk", &o.disk}};
  for (const auto& [name, slot] : byte_flags) {
    auto b = bytes_flag(vm, name);
    if (!b) return b.status();
    *slot = *b;
  }
  o.cache_dir = text(vm, "cache-dir");
  o.calibration = text(vm, "calibration");
  return o;
}

Result<MachineArgs> read_machine_options(const po::variables_map& vm, const Workload& defaults) {
  MachineArgs m;
  m.workload = defaults;
  auto ho = read_hardware_options(vm);
  if (!ho) return ho.status();
  m.hardware_options = std::move(*ho);

  const std::pair<const char*, std::uint32_t*> counts[] = {
      {"width", &m.workload.width}, {"height", &m.workload.height}, {"frames", &m.workload.frames},
      {"batch", &m.workload.batch}, {"steps", &m.workload.steps},   {"images", &m.workload.images}};
  for (const auto& [name, slot] : counts) {
    const std::string_view n(name);
    const std::uint32_t max = n == "steps" || n == "images" ? 10000u : 65536u;
    auto v = count_flag(vm, name, 1, max);
    if (!v) return v.status();
    if (*v) *slot = **v;
  }
  if (auto c = text(vm, "cfg")) {
    if (*c == "on")
      m.workload.cfg = Guidance::on;
    else if (*c == "off")
      m.workload.cfg = Guidance::off;
    else if (*c == "batched")
      m.workload.cfg = Guidance::batched;
    else
      return flag_error("cfg", *c, "one of on, off, batched");
  }
  auto act = real_flag(vm, "activation-gib", 0.0, 4096.0, false);
  if (!act) return act.status();
  m.workload.activation_gib = *act;

  if (auto p = text(vm, "prefer")) {
    if (*p == "quality")
      m.options.prefer = Preference::quality;
    else if (*p == "speed")
      m.options.prefer = Preference::speed;
    else if (*p == "memory")
      m.options.prefer = Preference::memory;
    else if (*p == "balanced")
      m.options.prefer = Preference::balanced;
    else
      return flag_error("prefer", *p, "one of quality, speed, memory, balanced");
  }
  auto margin = real_flag(vm, "margin", 0.0, 0.9, true);
  if (!margin) return margin.status();
  if (*margin) m.options.margin = **margin;

  auto hw = make_hardware(m.hardware_options);
  if (!hw) return hw.status();
  m.hardware = std::move(*hw);
  return m;
}

namespace {

// Every flag of `desc` as it is written: "--gpu VALUE", "--json".
std::string flag_forms(const po::options_description& desc) {
  std::string out;
  for (const auto& opt : desc.options()) {
    if (opt->long_name().empty()) continue;
    out += (out.empty() ? "--" : ", --") + opt->long_name();
    if (opt->semantic()->max_tokens() > 0) out += " VALUE";
  }
  return out;
}

// Our own wording: Boost's what() substitutes the option name into a template
// ("%canonical_option%") in a loop that never ends when the name itself holds the placeholder
// (found by fuzz_cli_flags), so it is never called here.
std::string option_message(const po::error& e, const std::string& name) {
  const std::string quoted = "'" + name + "'";
  if (dynamic_cast<const po::unknown_option*>(&e) != nullptr)
    return "unrecognised option " + quoted;
  if (dynamic_cast<const po::too_many_positional_options_error*>(&e) != nullptr)
    return "too many positional arguments";
  if (dynamic_cast<const po::multiple_occurrences*>(&e) != nullptr)
    return "option " + quoted + " is given more than once";
  if (dynamic_cast<const po::ambiguous_option*>(&e) != nullptr)
    return "option " + quoted + " is ambiguous";
  if (const auto* syntax = dynamic_cast<const po::invalid_command_line_syntax*>(&e)) {
    switch (syntax->kind()) {
      case po::invalid_syntax::missing_parameter:
        return "the required argument for option " + quoted + " is missing";
      case po::invalid_syntax::extra_parameter:
        return "option " + quoted + " does not take a value";
      default:
        return "invalid syntax for option " + quoted;
    }
  }
  if (!name.empty()) return "invalid use of option " + quoted;
  return "invalid command line";
}

Status option_error(const po::error& e, const po::options_description& desc,
                    const char* positional) {
  std::string name;
  if (const auto* named = dynamic_cast<const po::error_with_option_name*>(&e))
    name = named->get_option_name();
  if (name.size() > 64) name = name.substr(0, 64) + "...";
  Status s(Errc::invalid_argument, option_message(e, name));
  s.with_rule("cli.flag");
  if (dynamic_cast<const po::unknown_option*>(&e) != nullptr ||
      dynamic_cast<const po::ambiguous_option*>(&e) != nullptr) {
    s.with_hint("valid flags: " + flag_forms(desc));
  } else if (dynamic_cast<const po::too_many_positional_options_error*>(&e) != nullptr) {
    s.with_hint(positional ? std::string("give one <") + positional + "> only; flags start with --"
                           : std::string("this command takes no positional argument"));
  } else if (dynamic_cast<const po::multiple_occurrences*>(&e) != nullptr && !name.empty()) {
    s.with_hint("give " + name + " once");
  } else if (const auto* syntax = dynamic_cast<const po::invalid_command_line_syntax*>(&e);
             syntax != nullptr && syntax->kind() == po::invalid_syntax::extra_parameter) {
    s.with_hint("write " + name + " alone");
  } else if (!name.empty()) {
    s.with_hint("write " + name + " VALUE or " + name + "=VALUE");
  } else {
    s.with_hint("valid flags: " + flag_forms(desc));
  }
  return s;
}

}  // namespace

Status parse_command(const std::vector<std::string>& args, const po::options_description& desc,
                     const char* positional, const char* help, po::variables_map& vm,
                     bool& help_shown) {
  help_shown = false;
  po::positional_options_description pos;
  if (positional) pos.add(positional, 1);
  try {
    po::store(po::command_line_parser(args).options(desc).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    return option_error(e, desc, positional);
  }
  if (!vm.count("help")) return Status::ok();
  help_shown = true;
  std::printf("%s\n\n", help);
  std::cout << desc << "\n";
  return Status::ok();
}

}  // namespace dmem::cli
