// Rendering of `dmem plan` results: text table, --explain arithmetic, SVG bars and JSON.
#include "cli/plan_render.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "cli/machine_flags.hpp"
#include "cli/table.hpp"
#include "dmem/catalog.hpp"
#include "dmem/module_tree.hpp"
#include "dmem/quantizer.hpp"
#include "dmem/units.hpp"
#include "plan/estimator.hpp"
#include "plan/ranking.hpp"

namespace dmem::cli {

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string gib(std::uint64_t b) {
  return fmt("%.1f", static_cast<double>(b) / (1024.0 * 1024 * 1024));
}

std::string duration(double s) {
  if (s < 60) return fmt("%.0f s", s);
  const auto total = static_cast<long long>(std::llround(s));
  char buf[48];
  if (total < 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld", total / 60, total % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", total / 3600, (total / 60) % 60,
                  total % 60);
  return buf;
}

std::string title_of(const Model& m) {
  for (const auto& e : catalog_entries())
    if (e.name == m.name) return e.title;
  return m.name;
}

std::string native_dtype(const Component& c) {
  std::uint64_t best = 0;
  DType d = DType::bf16;
  for (const auto& t : c.tensors)
    if (t.nbytes > best) {
      best = t.nbytes;
      d = t.dtype;
    }
  return std::string(dtype_name(d));
}

std::string phase_of(const Component& c) {
  switch (c.role) {
    case Role::denoiser:
      return "denoise";
    case Role::vae:
      return "decode";
    default:
      return "encode";
  }
}

std::string park_text(Tier t) {
  return t == Tier::pinned ? "pinned RAM" : t == Tier::pageable ? "pageable RAM" : "disk";
}

std::uint64_t usable(std::uint64_t b, double margin) {
  return static_cast<std::uint64_t>(std::floor(static_cast<double>(b) * (1.0 - margin)));
}

std::uint64_t vram_budget(const Hardware& hw) {
  if (hw.gpus.empty()) return 0;
  std::uint64_t v = hw.gpus.front().vram_free;
  for (const auto& g : hw.gpus) v = std::min(v, g.vram_free);
  return v;
}

std::string header(const Model& model, const PlanReport& r) {
  const Workload& w = r.workload;
  std::string s = title_of(model) + " · " + hardware_line(r.hardware) + " · " +
                  std::to_string(w.width) + "×" + std::to_string(w.height);
  if (w.frames > 1) s += "×" + std::to_string(w.frames) + " frames";
  if (w.batch > 1) s += ", batch " + std::to_string(w.batch);
  s += ", " + std::to_string(w.steps) + " steps · prefer " + preference_name(r.options.prefer);
  return s;
}

std::string strategy_line(const Model& model, const Strategy& s, bool first_only, bool rest_only) {
  std::string out;
  bool first = true;
  // The denoiser leads; the others follow on the continuation line.
  std::vector<const ComponentStrategy*> order;
  for (const auto& cs : s.components) {
    const Component* c = model.find(cs.component);
    if (c != nullptr && c->role == Role::denoiser)
      order.insert(order.begin(), &cs);
    else
      order.push_back(&cs);
  }
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (first_only && i > 0) break;
    if (rest_only && i == 0) continue;
    if (!first) out += " · ";
    out += describe_component(model, *order[i]);
    first = false;
  }
  if (!first_only && s.vae_tiling) out += " · vae tiling";
  if (!first_only && s.vae_slicing) out += " · vae slicing";
  return out;
}

}  // namespace

std::string describe_component(const Model& model, const ComponentStrategy& cs) {
  const Component* c = model.find(cs.component);
  std::string sto;
  const QuantizerCaps* q = storage_caps(cs.storage);
  if (cs.storage.kind == StorageKind::native)
    sto = c != nullptr ? native_dtype(*c) : "native";
  else if (q != nullptr)
    sto = q->is_cast && q->id != "dmem.quantizer.cast16" ? "fp8 storage" : q->display;
  else
    sto = cs.storage.quantizer;
  const Placement& p = cs.placement;
  std::string pl;
  switch (p.kind) {
    case PlacementKind::resident:
      pl = "resident";
      break;
    case PlacementKind::dropped:
      pl = "on GPU for " + (c != nullptr ? phase_of(*c) : std::string("its phase")) +
           ", then dropped";
      break;
    case PlacementKind::model_offload:
      pl = "swapped in for its phase (model offload, " + park_text(p.park) + ")";
      break;
    case PlacementKind::group_offload:
      pl = p.level == OffloadLevel::leaf ? "streamed leaf by leaf" : "streamed block by block";
      pl += p.use_stream
                ? " (prefetch " + std::to_string(p.prefetch) + ", " + park_text(p.park) + ")"
                : " (no stream, " + park_text(p.park) + ")";
      break;
    case PlacementKind::sequential:
      pl = "sequential offload (" + park_text(p.park) + ")";
      break;
    case PlacementKind::partial: {
      const std::uint32_t n =
          c != nullptr ? static_cast<std::uint32_t>(summarize(*c).blocks.size()) : 0;
      pl = std::to_string(p.resident_blocks) + "/" + std::to_string(n) + " blocks resident, " +
           std::to_string(n > p.resident_blocks ? n - p.resident_blocks : 0) + " streamed from " +
           park_text(p.park);
      break;
    }
    case PlacementKind::cpu:
      pl = "on CPU";
      break;
    case PlacementKind::disk:
      pl = "streamed from disk";
      break;
  }
  if (p.gpu != 0 && p.kind != PlacementKind::cpu) pl += " on GPU " + std::to_string(p.gpu);
  return cs.component + " " + sto + ": " + pl;
}

std::string render_plan_table(const Model& model, const PlanReport& r, const RenderOptions& o) {
  std::string out = header(model, r) + "\n";
  Table t({"#", "plan", "VRAM peak", "RAM load / steady", "load", "s/step", "total", "quality"},
          {true, false, true, true, true, true, true, false});
  const bool gpu = !r.hardware.gpus.empty();
  for (const char* group : {"offloading / casting", "quantization"}) {
    std::size_t shown = 0, total = 0;
    for (const auto& p : r.plans) total += p.group == group ? 1 : 0;
    if (total == 0) continue;
    t.add_line(group);
    for (const auto& p : r.plans) {
      if (p.group != group) continue;
      if (shown == o.top) break;
      ++shown;
      const Estimate& e = p.estimate;
      t.add({p.id, strategy_line(model, p.strategy, true, false),
             gpu ? gib(e.vram_peak_bytes) + " GiB" : "—",
             gib(e.load_ram_peak_bytes) + " / " + gib(e.ram_peak_bytes) + " GiB",
             fmt("%.0f s", e.load_seconds),
             fmt(e.step_seconds < 10 ? "%.2f" : "%.1f", e.step_seconds), duration(e.total_seconds),
             p.quality_tier});
      const std::string rest = strategy_line(model, p.strategy, false, true);
      if (!rest.empty()) t.add_line("   " + rest);
    }
    if (total > shown)
      t.add_line("   … " + std::to_string(total - shown) +
                 " more in this group (--top N, --json lists all)");
  }
  out += t.render("  ");
  const std::size_t nrej = r.rejected.size() + r.rejected_similar;
  out += "  rejected (" + std::to_string(nrej) + " candidates";
  if (r.rejected_similar > 0) out += ", " + std::to_string(r.rejected.size()) + " distinct";
  out += o.show_rejected ? ")\n" : "; --show-rejected lists all)\n";
  const std::size_t limit =
      o.show_rejected ? r.rejected.size() : std::min(o.rejected_shown, r.rejected.size());
  for (std::size_t i = 0; i < limit; ++i) {
    const auto& rj = r.rejected[i];
    out += "  -  " + strategy_line(model, rj.strategy, false, false) + "\n";
    for (const auto& v : rj.violations) {
      out += "       " + v.rule + (v.component.empty() ? "" : " (" + v.component + ")") + ": " +
             v.message + "\n";
      if (!o.show_rejected) break;
    }
  }
  if (!o.show_rejected && r.rejected.size() > limit)
    out += "  -  … " + std::to_string(r.rejected.size() - limit) + " more\n";
  return out;
}

std::string render_no_plan(const Model& model, const PlanReport& r) {
  std::string out = header(model, r) + "\nno viable plan: every one of " +
                    std::to_string(r.candidates) + " candidates breaks a rule or a budget.\n";
  // The closest candidate: only budget violations, with the smallest worst overrun.
  const Rejected* best = nullptr;
  double best_ratio = 0;
  for (const auto& rj : r.rejected) {
    bool budgets_only = !rj.violations.empty();
    for (const auto& v : rj.violations)
      budgets_only = budgets_only && v.rule.rfind("budget.", 0) == 0;
    if (!budgets_only) continue;
    auto est = estimate(model, rj.strategy, r.hardware, r.workload);
    if (!est) continue;
    const std::uint64_t vram = usable(vram_budget(r.hardware), r.options.margin);
    const std::uint64_t ram = usable(r.hardware.ram_available, r.options.margin);
    double ratio = 0;
    if (vram > 0)
      ratio =
          std::max(ratio, static_cast<double>(est->vram_peak_bytes) / static_cast<double>(vram));
    if (ram > 0)
      ratio = std::max(
          ratio, static_cast<double>(std::max(est->ram_peak_bytes, est->load_ram_peak_bytes)) /
                     static_cast<double>(ram));
    if (best == nullptr || ratio < best_ratio) {
      best = &rj;
      best_ratio = ratio;
    }
  }
  if (best != nullptr) {
    out +=
        "the smallest requirement is " + strategy_line(model, best->strategy, false, false) + ":\n";
    for (const auto& v : best->violations)
      out += "  " + v.rule + ": " + v.message + "\n    fix: " + v.fix + "\n";
  } else if (!r.rejected.empty()) {
    out += "every candidate breaks a composition rule, e.g.:\n";
    for (const auto& v : r.rejected.front().violations)
      out += "  " + v.rule + ": " + v.message + "\n";
  }
  return out;
}

std::string render_explain(const Model& model, const PlanReport& r, const std::string& id) {
  const Plan* plan = nullptr;
  for (const auto& p : r.plans)
    if (p.id == id) plan = &p;
  if (plan == nullptr) return {};
  std::string out = header(model, r) + "\nplan " + plan->id + " (" + plan->group + ", quality " +
                    plan->quality_tier + ")\n  " +
                    strategy_line(model, plan->strategy, false, false) + "\n\n";
  detail::ModelProfile mp = detail::profile_model(model, r.workload);
  detail::Explain ex;
  auto est = detail::estimate_profiled(mp, plan->strategy, r.hardware, &ex);
  if (!est) return out + "cannot estimate: " + est.status().to_string() + "\n";
  for (const auto& l : ex.lines) out += "  " + l + "\n";
  const double m = r.options.margin;
  out += "\nbudgets (margin " + fmt("%.0f%%", m * 100) + "):\n";
  if (!r.hardware.gpus.empty())
    out += "  VRAM peak " + format_bytes(est->vram_peak_bytes) + " of " +
           format_bytes(usable(vram_budget(r.hardware), m)) + " usable\n";
  out += "  RAM at load " + format_bytes(est->load_ram_peak_bytes) + ", steady " +
         format_bytes(est->ram_peak_bytes) + " of " +
         format_bytes(usable(r.hardware.ram_available, m)) + " usable\n";
  const std::uint64_t pinned = effective_pinned_limit(r.hardware);
  out += "  pinned " + format_bytes(est->pinned_bytes) + " of " + format_bytes(usable(pinned, m)) +
         " usable\n";
  out += "  disk written " + format_bytes(est->disk_bytes) + "\n";
  out += "\nranking (prefer " + preference_name(r.options.prefer) + "): ";
  switch (r.options.prefer) {
    case Preference::quality:
      out += "quality tier, then total seconds\n";
      break;
    case Preference::speed:
      out += "total seconds, then bytes moved per step, then quality\n";
      break;
    case Preference::memory:
      out += "VRAM peak, then RAM, then quality\n";
      break;
    case Preference::balanced:
      out +=
          "total / fastest + 0.35 x denoiser tier + 0.10 x encoder tier + 2 x (VRAM use above "
          "85%)\n";
      break;
  }
  for (const auto& n : plan->notes) out += "  note: " + n + "\n";
  return out;
}

std::string render_svg(const Model& model, const PlanReport& r, std::size_t count) {
  const std::size_t n = std::min(count, r.plans.size());
  const double vram_b = static_cast<double>(vram_budget(r.hardware));
  const double ram_b = static_cast<double>(r.hardware.ram_available);
  double scale_max = std::max(vram_b, ram_b);
  for (std::size_t i = 0; i < n; ++i)
    for (const auto& ph : r.plans[i].estimate.phases)
      scale_max = std::max(
          {scale_max, static_cast<double>(ph.vram_peak), static_cast<double>(ph.ram_peak)});
  if (scale_max <= 0) scale_max = 1;
  const int panel_h = 190, bar_h = 140, left = 70, bar_w = 22, gap = 8,
            phase_w = 2 * bar_w + gap + 24;
  const int width = left + 4 * phase_w + 260;
  const int height = 60 + static_cast<int>(n) * panel_h + 40;
  auto esc = [](std::string s) {
    std::string o;
    for (char ch : s) {
      if (ch == '&')
        o += "&amp;";
      else if (ch == '<')
        o += "&lt;";
      else if (ch == '>')
        o += "&gt;";
      else if (ch == '"')
        o += "&quot;";
      else
        o += ch;
    }
    return o;
  };
  auto y_of = [&](double bytes, int base) {
    return base - static_cast<int>(std::lround(bytes / scale_max * bar_h));
  };
  std::string s;
  s += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) +
       "\" height=\"" + std::to_string(height) +
       "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  s += "<title>" + esc(header(model, r)) + "</title>\n";
  s += "<text x=\"10\" y=\"20\" font-size=\"13\">" + esc(header(model, r)) + "</text>\n";
  const char* colors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#bab0ac"};
  const char* names[] = {"weights", "activations", "workspace", "reserve"};
  for (int k = 0; k < 4; ++k)
    s += "<rect x=\"" + std::to_string(10 + k * 110) +
         "\" y=\"30\" width=\"10\" height=\"10\" fill=\"" + colors[k] + "\"/><text x=\"" +
         std::to_string(24 + k * 110) + "\" y=\"39\">VRAM " + names[k] + "</text>\n";
  s += "<rect x=\"450\" y=\"30\" width=\"10\" height=\"10\" fill=\"#76b7b2\"/><text x=\"464\" "
       "y=\"39\">RAM pinned</text>\n";
  s += "<rect x=\"550\" y=\"30\" width=\"10\" height=\"10\" fill=\"#edc948\"/><text x=\"564\" "
       "y=\"39\">RAM pageable</text>\n";
  for (std::size_t i = 0; i < n; ++i) {
    const Plan& p = r.plans[i];
    const int top = 60 + static_cast<int>(i) * panel_h;
    const int base = top + 20 + bar_h;
    s += "<g class=\"plan\" id=\"plan-" + esc(p.id) + "\">\n";
    s += "<text x=\"10\" y=\"" + std::to_string(top + 12) + "\">#" + esc(p.id) + " " +
         esc(strategy_line(model, p.strategy, false, false)) + "</text>\n";
    for (std::size_t k = 0; k < p.estimate.phases.size(); ++k) {
      const PhaseEstimate& ph = p.estimate.phases[k];
      const int x = left + static_cast<int>(k) * phase_w;
      const double parts[] = {
          static_cast<double>(ph.vram_weights), static_cast<double>(ph.vram_activations),
          static_cast<double>(ph.vram_workspace), static_cast<double>(ph.vram_reserve)};
      double acc = 0;
      for (int q = 0; q < 4; ++q) {
        const int y0 = y_of(acc, base);
        acc += parts[q];
        const int y1 = y_of(acc, base);
        s += "<rect class=\"bar vram " + std::string(names[q]) + "\" x=\"" + std::to_string(x) +
             "\" y=\"" + std::to_string(y1) + "\" width=\"" + std::to_string(bar_w) +
             "\" height=\"" + std::to_string(y0 - y1) + "\" fill=\"" + colors[q] + "\"><title>" +
             detail::phase_name(ph.phase) + " VRAM " + names[q] + " " +
             format_bytes(static_cast<std::uint64_t>(parts[q])) + "</title></rect>\n";
      }
      const double rparts[] = {static_cast<double>(ph.ram_pinned),
                               static_cast<double>(ph.ram_pageable)};
      const char* rcol[] = {"#76b7b2", "#edc948"};
      const char* rname[] = {"pinned", "pageable"};
      acc = 0;
      for (int q = 0; q < 2; ++q) {
        const int y0 = y_of(acc, base);
        acc += rparts[q];
        const int y1 = y_of(acc, base);
        s += "<rect class=\"bar ram " + std::string(rname[q]) + "\" x=\"" +
             std::to_string(x + bar_w + 2) + "\" y=\"" + std::to_string(y1) + "\" width=\"" +
             std::to_string(bar_w) + "\" height=\"" + std::to_string(y0 - y1) + "\" fill=\"" +
             rcol[q] + "\"><title>" + detail::phase_name(ph.phase) + " RAM " + rname[q] + " " +
             format_bytes(static_cast<std::uint64_t>(rparts[q])) + "</title></rect>\n";
      }
      s += "<text x=\"" + std::to_string(x) + "\" y=\"" + std::to_string(base + 14) + "\">" +
           detail::phase_name(ph.phase) + "</text>\n";
    }
    const int x_end = left + 4 * phase_w;
    if (vram_b > 0) {
      const int y = y_of(vram_b, base);
      s += "<line class=\"budget vram\" x1=\"" + std::to_string(left - 4) + "\" x2=\"" +
           std::to_string(x_end) + "\" y1=\"" + std::to_string(y) + "\" y2=\"" + std::to_string(y) +
           "\" stroke=\"#e15759\" stroke-dasharray=\"4 3\"/>\n<text x=\"" +
           std::to_string(x_end + 4) + "\" y=\"" + std::to_string(y + 4) + "\">VRAM " +
           format_bytes(static_cast<std::uint64_t>(vram_b)) + "</text>\n";
    }
    if (ram_b > 0) {
      const int y = y_of(ram_b, base);
      s += "<line class=\"budget ram\" x1=\"" + std::to_string(left - 4) + "\" x2=\"" +
           std::to_string(x_end) + "\" y1=\"" + std::to_string(y) + "\" y2=\"" + std::to_string(y) +
           "\" stroke=\"#b07aa1\" stroke-dasharray=\"2 2\"/>\n<text x=\"" +
           std::to_string(x_end + 4) + "\" y=\"" + std::to_string(y + 14) + "\">RAM " +
           format_bytes(static_cast<std::uint64_t>(ram_b)) + "</text>\n";
    }
    s += "</g>\n";
  }
  s += "</svg>\n";
  return s;
}

nlohmann::json plan_json(const Model& model, const PlanReport& r) {
  using nlohmann::json;
  json j;
  (void)model;
  j["hardware"] = hardware_json(r.hardware);
  json w = {{"width", r.workload.width},   {"height", r.workload.height},
            {"frames", r.workload.frames}, {"batch", r.workload.batch},
            {"steps", r.workload.steps},   {"prefer", preference_name(r.options.prefer)},
            {"margin", r.options.margin}};
  w["activation_gib"] =
      r.workload.activation_gib ? json(*r.workload.activation_gib) : json(nullptr);
  j["workload"] = w;
  j["plans"] = json::array();
  for (const auto& p : r.plans) {
    const Estimate& e = p.estimate;
    json pj;
    pj["id"] = p.id;
    pj["strategy"] = json::parse(strategy_to_json(p.strategy, -1), nullptr, false);
    pj["estimate"] = {{"vram_peak_bytes", e.vram_peak_bytes},
                      {"ram_peak_bytes", e.ram_peak_bytes},
                      {"load_ram_peak_bytes", e.load_ram_peak_bytes},
                      {"pinned_bytes", e.pinned_bytes},
                      {"disk_bytes", e.disk_bytes},
                      {"load_seconds", e.load_seconds},
                      {"step_seconds", e.step_seconds},
                      {"total_seconds", e.total_seconds}};
    pj["quality_tier"] = p.quality_tier;
    pj["notes"] = p.notes;
    j["plans"].push_back(std::move(pj));
  }
  j["rejected"] = json::array();
  for (const auto& rj : r.rejected) {
    json x;
    x["strategy"] = json::parse(strategy_to_json(rj.strategy, -1), nullptr, false);
    x["violations"] = json::array();
    for (const auto& v : rj.violations)
      x["violations"].push_back({{"rule", v.rule}, {"message", v.message}});
    j["rejected"].push_back(std::move(x));
  }
  return j;
}

}  // namespace dmem::cli
