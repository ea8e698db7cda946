// `dmem plugins`: what the plugin registry finds, with every capability decoded, and every
// candidate file it skipped with why.
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/machine_flags.hpp"
#include "cli/output.hpp"
#include "dmem/hardware.hpp"
#include "dmem/plugin_registry.hpp"

namespace dmem::cli {

namespace {

constexpr const char* kHelp = R"(usage: dmem plugins [--json] [--path DIR|FILE]... [--sm N]

Lists the plugins dmem finds and every candidate file it skipped, with why. Search order (the
first plugin with an id wins): --path entries, DMEM_PLUGIN_PATH (':'-separated directories or
files), the installed plugin directory, plugins/ beside the dmem executable. In a directory only
dmem_plugin_*.so files are loaded; other .so files are listed as skipped without being opened.
Skipped candidates do not change the exit status.

  --path DIR|FILE  search here first (repeatable)
  --sm N           check CUDA kernels against this compute capability (89 = 8.9); default: the
                   first GPU found, none without one; 0 turns the check off
  --json           machine-readable output)";

struct Bit {
  std::uint64_t bit;
  const char* name;
};

std::vector<std::string> decode(std::uint64_t mask, std::initializer_list<Bit> bits) {
  std::vector<std::string> out;
  for (const Bit& b : bits)
    if (mask & b.bit) {
      out.emplace_back(b.name);
      mask &= ~b.bit;
    }
  if (mask)
    out.push_back("0x" + [&] {
      char buf[24];
      std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(mask));
      return std::string(buf);
    }());
  return out;
}

std::vector<std::string> devices(std::uint32_t m) {
  return decode(m, {{DMEM_PLUGIN_DEVICE_CPU, "cpu"}, {DMEM_PLUGIN_DEVICE_CUDA, "cuda"}});
}
std::vector<std::string> tiers(std::uint32_t m) {
  return decode(m, {{DMEM_PLUGIN_TIER_VRAM, "vram"},
                    {DMEM_PLUGIN_TIER_PINNED, "pinned"},
                    {DMEM_PLUGIN_TIER_PAGEABLE, "pageable"},
                    {DMEM_PLUGIN_TIER_DISK, "disk"}});
}
std::vector<std::string> flags(std::uint32_t m) {
  return decode(m, {{DMEM_PLUGIN_QFLAG_MOVES_PACKED, "moves-packed"},
                    {DMEM_PLUGIN_QFLAG_IS_CAST, "cast"},
                    {DMEM_PLUGIN_QFLAG_NEEDS_CUBLASLT, "needs-cublaslt"}});
}
std::vector<std::string> dtypes(std::uint64_t m) {
  return decode(m, {{DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_F32), "f32"},
                    {DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_F16), "f16"},
                    {DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_BF16), "bf16"},
                    {DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_F64), "f64"},
                    {DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_F8_E4M3), "f8_e4m3"},
                    {DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_F8_E5M2), "f8_e5m2"},
                    {DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_I8), "i8"},
                    {DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_U8), "u8"},
                    {DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_I16), "i16"},
                    {DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_I32), "i32"},
                    {DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_I64), "i64"}});
}

std::string join(const std::vector<std::string>& v, const char* empty = "none") {
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += ", ";
    out += s;
  }
  return out.empty() ? empty : out;
}

std::string archs(const std::vector<std::uint32_t>& a) {
  std::vector<std::string> names;
  for (auto x : a) names.push_back("sm_" + std::to_string(x));
  return join(names, "none (no CUDA kernels of its own)");
}

std::string abi_text(const PluginInfo& p) {
  return std::to_string(p.abi_major) + "." + std::to_string(p.abi_minor);
}

std::string where(const PluginInfo& p) {
  if (p.source == PluginSource::file) return p.path;
  std::string out(plugin_source_name(p.source));
  out += " (";
  out += p.path;
  out += ')';
  return out;
}

nlohmann::json plugin_json(const PluginInfo& p) {
  const QuantizerCaps& c = p.caps;
  return {{"id", p.id},
          {"display", p.display},
          {"version", p.version},
          {"abi", abi_text(p)},
          {"kind", p.kind},
          {"source", std::string(plugin_source_name(p.source))},
          {"path", p.path},
          {"caps",
           {{"variant", c.variant},
            {"display", c.display},
            {"exec_devices", devices(c.exec_devices)},
            {"storage_tiers", tiers(c.storage_tiers)},
            {"input_dtypes", dtypes(p.input_dtypes)},
            {"flags", flags(p.flags)},
            {"min_sm", c.min_sm},
            {"block_size", p.block_size},
            {"quality", std::string(quality_name(c.quality))},
            {"speed_factor", c.speed_factor},
            {"cuda_archs", c.cuda_archs}}},
          {"notes", p.notes}};
}

nlohmann::json skipped_json(const SkippedPlugin& s) {
  return {{"path", s.path},
          {"code", std::string(errc_name(s.why.code()))},
          {"rule", s.why.rule()},
          {"message", s.why.message()},
          {"hint", s.why.hint()}};
}

std::string plugin_text(const PluginInfo& p) {
  const QuantizerCaps& c = p.caps;
  std::string out = p.id + " " + p.version + " · " + p.kind + " · plugin ABI " + abi_text(p);
  out += " · " + where(p) + "\n";
  auto line = [&](const char* label, const std::string& value) {
    char head[32];
    std::snprintf(head, sizeof head, "    %-12s ", label);
    out += head;
    out += value;
    out += '\n';
  };
  line("display", c.display.empty() ? p.display : c.display);
  line("runs on", join(devices(c.exec_devices)));
  line("rests in", join(tiers(c.storage_tiers)));
  line("accepts", join(dtypes(p.input_dtypes)));
  char speed[32];
  std::snprintf(speed, sizeof speed, "%.2f", c.speed_factor);
  line("quality", std::string(quality_name(c.quality)) + " · step time x" + speed + " of bf16");
  line("block size", p.block_size ? std::to_string(p.block_size) : "-");
  line("flags", join(flags(p.flags)));
  line("min SM",
       c.min_sm ? std::to_string(c.min_sm / 10) + "." + std::to_string(c.min_sm % 10) : "any");
  line("CUDA archs", archs(c.cuda_archs));
  for (const auto& n : p.notes) line("note", n);
  return out;
}

}  // namespace

int run_plugins(const Args& args) {
  po::options_description desc("flags");
  desc.add_options()("help,h", "this text")("json", po::bool_switch(), "JSON output")(
      "path", po::value<std::vector<std::string>>()->composing(), "search here first")(
      "sm", po::value<unsigned>(), "compute capability to check CUDA kernels against");
  po::variables_map vm;
  bool help_shown = false;
  if (Status s = parse_command(args, desc, nullptr, kHelp, vm, help_shown); !s)
    return fail("plugins", s.to_string());
  if (help_shown) return kExitOk;

  PluginSearch search;
  if (vm.count("path")) search.paths = vm["path"].as<std::vector<std::string>>();
  std::uint32_t sm = 0;
  if (vm.count("sm")) {
    sm = vm["sm"].as<unsigned>();
  } else if (auto hw = probe_hardware(); hw && !hw->gpus.empty()) {
    sm = hw->gpus[0].sm();
  }
  PluginRegistry registry;
  registry.set_device_sm(sm);
  registry.discover(search);
  const std::vector<std::string> searched = PluginRegistry::search_directories(search);

  if (vm["json"].as<bool>()) {
    nlohmann::json j = {{"plugins", nlohmann::json::array()},
                        {"skipped", nlohmann::json::array()},
                        {"searched", searched},
                        {"device_sm", sm}};
    for (const auto& p : registry.plugins()) j["plugins"].push_back(plugin_json(p));
    for (const auto& s : registry.skipped()) j["skipped"].push_back(skipped_json(s));
    print_json(j);
    return kExitOk;
  }
  std::string out = "plugins (" + std::to_string(registry.plugins().size()) + ")\n";
  if (registry.plugins().empty()) out += "  none found\n";
  for (const auto& p : registry.plugins()) out += "  " + plugin_text(p);
  if (!registry.skipped().empty()) {
    out += "skipped (" + std::to_string(registry.skipped().size()) + ")\n";
    for (const auto& s : registry.skipped()) out += "  " + s.why.to_string() + "\n";
  }
  out += "searched";
  if (sm) out += " (GPU sm_" + std::to_string(sm) + ")";
  out += ": static table";
  for (const auto& d : searched) out += ", " + d;
  out += '\n';
  print_text(out);
  return kExitOk;
}

}  // namespace dmem::cli
