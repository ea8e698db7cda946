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

}  // namespace

std::string format_duration(double s) {
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

std::string plan_header(const Model& model, const PlanReport& r) {
  const Workload& w = r.workload;
  std::string s = title_of(model) + " · " + hardware_line(r.hardware) + " · " +
                  std::to_string(w.width) + "×" + std::to_string(w.height);
  if (w.frames > 1) s += "×" + std::to_string(w.frames) + " frames";
  if (w.batch > 1) s += ", batch " + std::to_string(w.batch);
  s += ", " + std::to_string(w.steps) + " steps";
  if (w.cfg != Guidance::model_default) {
    s += ", cfg ";
    s += guidance_name(w.cfg);
  }
  if (w.images > 1) s.append(", ").append(std::to_string(w.images)).append(" images");
  s += " · prefer ";
  s += preference_name(r.options.prefer);
  return s;
}

namespace {

std::string header(const Model& model, const PlanReport& r) {
  std::string s = plan_header(model, r) + "\n";
  for (const auto& w : r.warnings) s += "warning: " + w + "\n";
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

// "RAM at load" for "budget.ram_load".
std::string budget_label(const std::string& rule) {
  if (rule == "budget.vram") return "VRAM";
  if (rule == "budget.ram_load") return "RAM at load";
  if (rule == "budget.ram_steady") return "RAM during inference";
  if (rule == "budget.pinned") return "pinned RAM";
  if (rule == "budget.disk") return "disk";
  return rule;
}

// The machine figure that makes `b` fit with the margin held back, as the flag that says so,
// rounded up to a hundredth of a GiB.
std::string budget_fix(const BudgetNeed& b, double margin) {
  const double gib_needed =
      static_cast<double>(b.need) / (1.0 - margin) / (1024.0 * 1024.0 * 1024.0);
  const std::string v = fmt("%.2fGiB", std::ceil(gib_needed * 100.0) / 100.0);
  if (b.rule == "budget.vram") return "a GPU with " + v + " free (--vram " + v + ")";
  if (b.rule == "budget.pinned") return "--pinned-limit " + v;
  if (b.rule == "budget.disk") return v + " free at the cache dir (--disk " + v + ")";
  return v + " of available RAM (--ram " + v + ")";
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

std::string plan_title(const Model& model, const Strategy& s) {
  return strategy_line(model, s, false, false);
}

std::string render_plan_table(const Model& model, const PlanReport& r, const RenderOptions& o) {
  std::string out = header(model, r);
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
             fmt(e.step_seconds < 10 ? "%.2f" : "%.1f", e.step_seconds),
             format_duration(e.total_seconds), p.quality_tier});
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

namespace {

// One line per budget that `keep` selects; RAM at load and during inference share one budget,
// so they share a line ("1.12 GiB at load and 1.10 GiB during inference").
struct NeedLine {
  BudgetNeed budget;  ///< the larger need of the merged ones
  std::string label;
  std::string need;
};

template <class Keep>
std::vector<NeedLine> need_lines(const std::vector<BudgetNeed>& v, Keep keep) {
  std::vector<NeedLine> out;
  for (const BudgetNeed& b : v) {
    if (!keep(b)) continue;
    const bool ram = b.rule == "budget.ram_load" || b.rule == "budget.ram_steady";
    const std::string when = b.rule == "budget.ram_load" ? " at load" : " during inference";
    if (ram && !out.empty() && out.back().label == "RAM") {
      out.back().need += " and " + format_bytes(b.need) + when;
      if (b.need > out.back().budget.need) out.back().budget = b;
      continue;
    }
    out.push_back({b, ram ? std::string("RAM") : budget_label(b.rule),
                   format_bytes(b.need) + (ram ? when : std::string())});
  }
  return out;
}

}  // namespace

std::string render_no_plan(const Model& model, const PlanReport& r) {
  std::string out = header(model, r) + "no viable plan: every one of " +
                    std::to_string(r.candidates) + " candidates breaks a rule or a budget.\n";
  const double m = r.options.margin;
  // The real blocker: a budget that even its least demanding candidate overruns.
  const auto blockers =
      need_lines(r.least_needs, [](const BudgetNeed& b) { return b.need > b.usable; });
  for (const NeedLine& l : blockers)
    out += "blocked by " + l.label + ": every candidate needs at least " + l.need + "; " +
           format_bytes(l.budget.usable) + " is usable (" + format_bytes(l.budget.budget) +
           " less a " + fmt("%.0f%%", m * 100) + " margin)\n";
  if (r.closest) {
    if (blockers.empty())
      out += "blocked by the budgets together: each fits some candidate, no candidate fits all\n";
    out += "closest plan: " + strategy_line(model, r.closest->strategy, false, false) + "\n";
    for (const NeedLine& l :
         need_lines(r.closest->budgets, [](const BudgetNeed& b) { return b.need > b.usable; }))
      out += "  " + l.label + " needs " + l.need + ", " + format_bytes(l.budget.usable) +
             " usable: runs with " + budget_fix(l.budget, m) + "\n";
    std::string fits;
    for (const NeedLine& l : need_lines(r.closest->budgets, [](const BudgetNeed& b) {
           return b.need > 0 && b.need <= b.usable;
         }))
      fits += (fits.empty() ? "" : ", ") + l.label + " " + l.need + " of " +
              format_bytes(l.budget.usable);
    if (!fits.empty()) out += "  fits: " + fits + "\n";
  } else if (!r.rejected.empty()) {
    out += "blocked by a composition rule: every candidate breaks one, e.g.\n";
    for (const auto& v : r.rejected.front().violations)
      out += "  " + v.rule + ": " + v.message + (v.fix.empty() ? "" : "\n    fix: " + v.fix) + "\n";
  }
  return out;
}

std::string render_explain(const Model& model, const PlanReport& r, const std::string& id) {
  const Plan* plan = nullptr;
  for (const auto& p : r.plans)
    if (p.id == id) plan = &p;
  if (plan == nullptr) return {};
  std::string out = header(model, r) + "plan " + plan->id + " (" + plan->group + ", quality " +
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
      out += "VRAM peak / usable + RAM (load or steady) / usable, then quality\n";
      break;
    case Preference::balanced:
      out +=
          "ln(total seconds) + 0.35 x denoiser tier + 0.10 x encoder tier + 2 x (VRAM use above "
          "85%)\n";
      break;
  }
  for (const auto& n : plan->notes) out += "  note: " + n + "\n";
  return out;
}

nlohmann::json estimate_json(const Estimate& e) {
  nlohmann::json j = {{"vram_peak_bytes", e.vram_peak_bytes},
                      {"ram_peak_bytes", e.ram_peak_bytes},
                      {"load_ram_peak_bytes", e.load_ram_peak_bytes},
                      {"pinned_bytes", e.pinned_bytes},
                      {"disk_bytes", e.disk_bytes},
                      {"load_seconds", e.load_seconds},
                      {"step_seconds", e.step_seconds},
                      {"image_seconds", e.image_seconds},
                      {"reload_seconds", e.reload_seconds},
                      {"total_seconds", e.total_seconds}};
  return j;
}

nlohmann::json estimate_phases_json(const Estimate& e) {
  nlohmann::json a = nlohmann::json::array();
  for (const PhaseEstimate& ph : e.phases)
    a.push_back({{"phase", detail::phase_name(ph.phase)},
                 {"vram_peak_bytes", ph.vram_peak},
                 {"vram_weights_bytes", ph.vram_weights},
                 {"vram_activations_bytes", ph.vram_activations},
                 {"vram_workspace_bytes", ph.vram_workspace},
                 {"vram_reserve_bytes", ph.vram_reserve},
                 {"ram_pinned_bytes", ph.ram_pinned},
                 {"ram_pageable_bytes", ph.ram_pageable},
                 {"ram_peak_bytes", ph.ram_peak},
                 {"seconds", ph.seconds}});
  return a;
}

std::string render_estimate(const Estimate& e, const Workload& w, bool gpu) {
  Table t({"phase", "VRAM peak", "weights", "activations", "RAM peak", "pinned", "seconds"},
          {false, true, true, true, true, true, true});
  for (const PhaseEstimate& ph : e.phases) {
    auto v = [&](std::uint64_t b) { return gpu ? gib(b) + " GiB" : std::string("—"); };
    std::string secs = fmt("%.1f s", ph.seconds);
    if (ph.phase == Phase::denoise && w.steps > 0)
      secs = format_duration(ph.seconds) + " (" + std::to_string(w.steps) + " x " +
             fmt(e.step_seconds < 10 ? "%.2f" : "%.1f", e.step_seconds) + " s)";
    t.add({detail::phase_name(ph.phase), v(ph.vram_peak), v(ph.vram_weights),
           v(ph.vram_activations), gib(ph.ram_peak) + " GiB", gib(ph.ram_pinned) + " GiB", secs});
  }
  std::string out = t.render("  ");
  out += "  VRAM peak " + (gpu ? gib(e.vram_peak_bytes) + " GiB" : std::string("— (CPU only)"));
  out += " · RAM load / steady " + gib(e.load_ram_peak_bytes) + " / " + gib(e.ram_peak_bytes) +
         " GiB · pinned " + gib(e.pinned_bytes) + " GiB · disk written " + gib(e.disk_bytes) +
         " GiB\n";
  out += "  load " + fmt("%.0f s", e.load_seconds) + " · " +
         fmt(e.step_seconds < 10 ? "%.2f" : "%.1f", e.step_seconds) + " s/step · total " +
         format_duration(e.total_seconds) + "\n";
  return out;
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
  w["cfg"] = guidance_name(r.workload.cfg);
  w["images"] = r.workload.images;
  w["activation_gib"] =
      r.workload.activation_gib ? json(*r.workload.activation_gib) : json(nullptr);
  j["workload"] = w;
  j["warnings"] = r.warnings;
  j["plans"] = json::array();
  for (const auto& p : r.plans) {
    const Estimate& e = p.estimate;
    json pj;
    pj["id"] = p.id;
    pj["strategy"] = json::parse(strategy_to_json(p.strategy, -1), nullptr, false);
    pj["estimate"] = estimate_json(e);
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
  if (r.plans.empty()) {
    auto needs = [&](const std::vector<BudgetNeed>& v, bool only_over) {
      json a = json::array();
      for (const auto& b : v)
        if (!only_over || b.need > b.usable)
          a.push_back({{"rule", b.rule},
                       {"need_bytes", b.need},
                       {"usable_bytes", b.usable},
                       {"budget_bytes", b.budget}});
      return a;
    };
    // Budgets that every candidate overruns, and the candidate that came closest.
    j["blockers"] = needs(r.least_needs, true);
    if (r.closest) {
      json c;
      c["strategy"] = json::parse(strategy_to_json(r.closest->strategy, -1), nullptr, false);
      c["estimate"] = estimate_json(r.closest->estimate);
      c["budgets"] = needs(r.closest->budgets, false);
      j["closest"] = std::move(c);
    } else {
      j["closest"] = nullptr;
    }
  }
  return j;
}

}  // namespace dmem::cli
