// `dmem report`: what a trace (dmem run --trace) says about a run; the analysis itself is
// detail::summarize_trace_file (src/runtime/trace_summary.cpp).
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>

#include "cli/commands.hpp"
#include "cli/machine_flags.hpp"
#include "cli/output.hpp"
#include "cli/table.hpp"
#include "core/text_escape.hpp"
#include "dmem/units.hpp"
#include "runtime/trace_summary.hpp"

namespace dmem::cli {

namespace {

constexpr const char* kHelp = R"(usage: dmem report <trace.json> [--json]

Summarises a Chrome trace written by `dmem run --trace` (or by Session tracing): the peak of each
memory store beside its budget and the plan's estimate, load time and throughput, per phase
(encode, denoise, decode) its seconds and store peaks beside the plan's estimate of each, and per
denoising step the bytes copied host->device, device->host copies, stall time and how much of the
copy time overlapped compute; then evictions. Other Chrome traces are read too: events dmem does
not know are ignored. docs/runtime.md ("Traces") defines every figure.

  --json      machine-readable output
Exit status: 0 success, 2 bad input (missing, unreadable, over 1 GiB, not JSON, not a trace).)";

std::string num(double v, int decimals) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// Built by appending: GCC 12 -O3 reports -Wrestrict false positives on "lit" + std::string.
std::string pct(const std::optional<double>& v) {
  if (!v) return "-";
  std::string out = num(*v * 100.0, 1);
  out += " %";
  return out;
}

std::string signed_pct(const std::optional<double>& v) {
  if (!v) return "-";
  std::string out = *v >= 0 ? "+" : "";
  out += num(*v, 1);
  out += " %";
  return out;
}

std::string bytes_of(const std::optional<double>& v) {
  if (!v || !std::isfinite(*v) || *v < 0) return "-";
  return format_bytes(static_cast<std::uint64_t>(*v));
}

nlohmann::json opt(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json to_json(const std::string& path, const detail::TraceSummary& s) {
  nlohmann::json j;
  j["file"] = path;
  j["device"] = s.device.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.device);
  j["events"] = s.events;
  j["dropped_events"] = s.dropped_events;
  j["stores"] = nlohmann::json::array();
  for (const auto& st : s.stores) {
    j["stores"].push_back(
        {{"store", st.store},
         {"peak_bytes", st.peak_bytes ? nlohmann::json(*st.peak_bytes) : nlohmann::json(nullptr)},
         {"budget_bytes", opt(st.budget_bytes)},
         {"estimate_bytes", opt(st.estimate_bytes)},
         {"estimate_error_pct", opt(st.estimate_error_pct)}});
  }
  j["load"] = {{"spans", s.load_spans},
               {"seconds", s.load_seconds},
               {"bytes", s.load_bytes},
               {"gb_per_s", opt(s.load_gbps)}};
  j["phases"] = nlohmann::json::array();
  for (const auto& p : s.phases) {
    nlohmann::json stores = nlohmann::json::array();
    for (const auto& st : p.stores)
      stores.push_back(
          {{"store", st.store},
           {"peak_bytes", st.peak_bytes ? nlohmann::json(*st.peak_bytes) : nlohmann::json(nullptr)},
           {"estimate_bytes", opt(st.estimate_bytes)},
           {"estimate_error_pct", opt(st.estimate_error_pct)}});
    j["phases"].push_back({{"name", p.name},
                           {"start_seconds", p.start_s},
                           {"seconds", p.seconds},
                           {"estimate_seconds", opt(p.estimate_seconds)},
                           {"seconds_estimate_error_pct", opt(p.seconds_estimate_error_pct)},
                           {"estimate_weights_bytes", opt(p.estimate_weights_bytes)},
                           {"estimate_activation_bytes", opt(p.estimate_activation_bytes)},
                           {"stores", std::move(stores)}});
  }
  j["scale_down"] = opt(s.scale_down);
  j["steps"] = nlohmann::json::array();
  for (const auto& st : s.steps) {
    j["steps"].push_back({{"index", st.index},
                          {"name", st.name},
                          {"start_seconds", st.start_s},
                          {"seconds", st.seconds},
                          {"h2d_bytes", st.h2d_bytes},
                          {"h2d_copies", st.h2d_copies},
                          {"d2h_bytes", st.d2h_bytes},
                          {"d2h_copies", st.d2h_copies},
                          {"stall_seconds", st.stall_seconds},
                          {"copy_seconds", st.copy_seconds},
                          {"overlapped_copy_seconds", st.overlapped_copy_seconds},
                          {"overlap", opt(st.overlap)}});
  }
  const double n = static_cast<double>(s.steps.size());
  j["totals"] = {{"steps", s.steps.size()},
                 {"seconds", s.steps_seconds},
                 {"mean_step_seconds", opt(s.mean_step_seconds)},
                 {"h2d_bytes", s.h2d_bytes},
                 {"mean_h2d_bytes", s.steps.empty() ? nlohmann::json(nullptr)
                                                    : nlohmann::json(double(s.h2d_bytes) / n)},
                 {"d2h_copies", s.d2h_copies},
                 {"d2h_bytes", s.d2h_bytes},
                 {"stall_seconds", s.stall_seconds},
                 {"overlap", opt(s.overlap)},
                 {"estimate_step_seconds", opt(s.estimate_step_seconds)},
                 {"step_estimate_error_pct", opt(s.step_estimate_error_pct)}};
  j["evictions"] = {{"count", s.evictions}, {"bytes", s.evicted_bytes}};
  return j;
}

std::string to_text(const std::string& path, const detail::TraceSummary& s) {
  std::string out = "trace ";
  out += detail::escape_text(path);
  if (!s.device.empty()) {
    out += " · device ";
    out += detail::escape_text(s.device);
  }
  out += " · ";
  out += std::to_string(s.events);
  out += " events\n";
  if (s.dropped_events > 0) {
    out += "warning: ";
    out += std::to_string(s.dropped_events);
    out += " events were not recorded (the recorder's cap): figures below undercount\n";
  }

  out += "\nmemory\n";
  if (s.stores.empty()) {
    out += "  no memory counters in this trace\n";
  } else {
    Table t({"store", "peak", "budget", "estimate", "estimate error"},
            {false, true, true, true, true});
    for (const auto& st : s.stores) {
      t.add({detail::escape_text(st.store), st.peak_bytes ? format_bytes(*st.peak_bytes) : "-",
             bytes_of(st.budget_bytes), bytes_of(st.estimate_bytes),
             signed_pct(st.estimate_error_pct)});
    }
    out += t.render("  ");
  }

  out += "\nload\n  ";
  if (s.load_spans == 0) {
    out += "no load spans\n";
  } else {
    out += num(s.load_seconds, 3);
    out += " s, ";
    out += format_bytes(s.load_bytes, false);
    out += " in ";
    out += std::to_string(s.load_spans);
    out += s.load_spans == 1 ? " read" : " reads";
    if (s.load_gbps) {
      out += ", ";
      out += num(*s.load_gbps, 2);
      out += " GB/s";
    }
    out += '\n';
  }
  if (!s.phases.empty()) {
    // One row for the phase's seconds, one per store: measured beside the plan's estimate.
    out += "\nphases (measured vs the plan's estimate)\n";
    Table t({"phase", "figure", "measured", "estimate", "estimate error"},
            {false, false, true, true, true});
    for (const auto& p : s.phases) {
      const std::string name = detail::escape_text(p.name);
      t.add({name, "seconds", num(p.seconds, 3),
             p.estimate_seconds ? num(*p.estimate_seconds, 3) : "-",
             signed_pct(p.seconds_estimate_error_pct)});
      for (const auto& st : p.stores) {
        std::string figure = detail::escape_text(st.store);
        figure += " peak";
        t.add({name, figure, st.peak_bytes ? format_bytes(*st.peak_bytes) : "-",
               bytes_of(st.estimate_bytes), signed_pct(st.estimate_error_pct)});
      }
    }
    out += t.render("  ");
    if (s.scale_down && *s.scale_down > 1) {
      out += "  the run was scaled down x";
      out += num(*s.scale_down, 0);
      out += ": the estimates are for the full model and workload\n";
    }
  }

  out += "\nsteps\n";
  if (s.steps.empty()) {
    out += "  no step spans\n";
  } else {
    Table t(
        {"step", "seconds", "H2D", "H2D copies", "D2H copies", "stall s", "copy/compute overlap"},
        {true, true, true, true, true, true, true});
    for (const auto& st : s.steps) {
      t.add({std::to_string(st.index), num(st.seconds, 3), format_bytes(st.h2d_bytes, false),
             std::to_string(st.h2d_copies), std::to_string(st.d2h_copies), num(st.stall_seconds, 3),
             pct(st.overlap)});
    }
    out += t.render("  ");
    const double n = static_cast<double>(s.steps.size());
    out += "  ";
    out += std::to_string(s.steps.size());
    out += s.steps.size() == 1 ? " step: " : " steps: ";
    out += num(s.steps_seconds, 3);
    out += " s, mean ";
    out += num(*s.mean_step_seconds, 3);
    out += " s/step · H2D ";
    out += format_bytes(s.h2d_bytes, false);
    out += " (";
    out += format_bytes(static_cast<std::uint64_t>(double(s.h2d_bytes) / n), false);
    out += "/step) · ";
    out += std::to_string(s.d2h_copies);
    out += s.d2h_copies == 1 ? " D2H copy · stall " : " D2H copies · stall ";
    out += num(s.stall_seconds, 3);
    out += " s · overlap ";
    out += pct(s.overlap);
    out += '\n';
    if (s.estimate_step_seconds) {
      out += "  estimated ";
      out += num(*s.estimate_step_seconds, 3);
      out += " s/step, measured ";
      out += num(*s.mean_step_seconds, 3);
      out += " s/step (estimate error ";
      out += signed_pct(s.step_estimate_error_pct);
      out += ")\n";
    }
  }

  out += "\nevictions\n  ";
  out += std::to_string(s.evictions);
  out += ", ";
  out += format_bytes(s.evicted_bytes, false);
  out += '\n';
  return out;
}

}  // namespace

int run_report(const Args& args) {
  po::options_description desc("flags");
  desc.add_options()("help,h", "this text")("json", po::bool_switch(), "JSON output")(
      "trace", po::value<std::string>(), "trace JSON file");
  po::variables_map vm;
  bool help_shown = false;
  if (Status s = parse_command(args, desc, "trace", kHelp, vm, help_shown); !s)
    return fail("report", s.to_string());
  if (help_shown) return kExitOk;
  if (!vm.count("trace"))
    return fail("report", Status(Errc::invalid_argument, "no trace file given")
                              .with_rule("cli.flag")
                              .with_hint("dmem report <trace.json> [--json]")
                              .to_string());
  const std::string path = vm["trace"].as<std::string>();
  auto summary = detail::summarize_trace_file(path);
  if (!summary) return fail("report", summary.status().to_string());
  if (vm["json"].as<bool>())
    print_json(to_json(path, *summary));
  else
    print_text(to_text(path, *summary));
  return kExitOk;
}

}  // namespace dmem::cli
