// make_plans: enumerate placement x storage per component, cost every candidate with the
// profiled estimator, validate it with the rules table (the same rules validate() runs), prune
// dominated plans and rank the rest (docs/planner.md, "Search").
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "dmem/units.hpp"
#include "engine/engine_profile.hpp"
#include "plan/estimator.hpp"
#include "plan/quantizer_table.hpp"
#include "plan/ranking.hpp"
#include "plan/rules.hpp"
#include "plan/workload_limits.hpp"

namespace dmem {
inline namespace v1 {

namespace {

using detail::ComponentProfile;
using detail::ModelProfile;

constexpr std::uint64_t kLargeEncoder = 1ull << 30;  // text encoders worth transforming
constexpr std::size_t kMaxRejected = 400;

Storage native() {
  return Storage{};
}

Storage from_caps(const QuantizerCaps& c) {
  Storage s;
  if (c.is_cast) {
    s.kind = StorageKind::layerwise_cast;
    s.cast_dtype = c.variant == "e5m2" ? DType::f8_e5m2 : DType::f8_e4m3;
    if (c.variant == "bf16" || c.variant == "f16")
      s.cast_dtype = s.compute_dtype = c.variant == "bf16" ? DType::bf16 : DType::f16;
  } else {
    s.kind = StorageKind::quantized;
    s.quantizer = c.id;
    s.params = c.params;
  }
  return s;
}

Placement place(PlacementKind k) {
  Placement p;
  p.kind = k;
  return p;
}

Placement offload(PlacementKind k, OffloadLevel level, bool stream, Tier park) {
  Placement p;
  p.kind = k;
  p.level = level;
  p.use_stream = stream;
  p.park = park;
  p.blocks_per_group = 1;
  p.prefetch = 1;
  return p;
}

struct Option {
  Placement placement;
  Storage storage;
};

QualityTier tier_of(const Storage& s) {
  const QuantizerCaps* c = storage_caps(s);
  return c == nullptr ? QualityTier::native : c->quality;
}

std::uint64_t usable(std::uint64_t budget, double margin) {
  return static_cast<std::uint64_t>(std::floor(static_cast<double>(budget) * (1.0 - margin)));
}

struct Search {
  const Model& model;
  const Hardware& hw;
  const Workload& wl;
  const PlanOptions& opt;
  ModelProfile mp;
  detail::PlatformFacts platform;
  std::vector<detail::Ranked> viable;
  std::vector<Rejected> rejected;
  std::set<std::string> rejected_keys;
  std::set<std::string> engine_seen;  ///< strategies as the engine runs them (rewrites collide)
  std::size_t rejected_total = 0;
  std::size_t candidates = 0;

  std::vector<const Component*> denoisers, encoders, vaes;
  std::map<std::string, const TensorInfo*, std::less<>> prequantized;  ///< found once per model

  Search(const Model& m, const Hardware& h, const Workload& w, const PlanOptions& o)
      : model(m), hw(h), wl(w), opt(o), mp(detail::profile_model(m, w)) {
    for (const auto& c : m.components)
      if (const TensorInfo* t = detail::first_block_quant(c)) prequantized.emplace(c.name, t);
  }

  std::uint64_t vram_usable() const {
    if (hw.gpus.empty()) return 0;
    std::uint64_t v = hw.gpus.front().vram_free;
    for (const auto& g : hw.gpus) v = std::min(v, g.vram_free);
    return usable(v, opt.margin);
  }

  // The budget rules' arithmetic without their messages (the k search asks it many times).
  bool fits(const Estimate& e) const {
    const std::uint64_t pinned = hw.pinned_limit != 0 ? hw.pinned_limit : hw.ram_available / 2;
    const std::uint64_t ram = usable(hw.ram_available, opt.margin);
    return (hw.gpus.empty() || e.vram_peak_bytes <= vram_usable()) && e.ram_peak_bytes <= ram &&
           e.load_ram_peak_bytes <= ram && e.pinned_bytes <= usable(pinned, opt.margin) &&
           e.disk_bytes <= usable(hw.disk_free, opt.margin);
  }

  // The rules table over one candidate, with its estimate for the budget rules.
  std::vector<Violation> check(const Strategy& s, const Estimate* est,
                               std::vector<BudgetNeed>* needs = nullptr) {
    detail::RuleContext ctx{model, s, hw, wl, opt, quantizer_table(), platform, {}, est};
    for (const auto& cs : s.components) {
      detail::ComponentView v;
      v.strategy = &cs;
      v.component = model.find(cs.component);
      v.caps = storage_caps(cs.storage);
      if (auto it = prequantized.find(cs.component); it != prequantized.end())
        v.prequantized = it->second;
      if (auto* p = mp.find(cs.component))
        v.blocks = static_cast<std::uint32_t>(p->summary.blocks.size());
      ctx.views.push_back(v);
    }
    std::vector<Violation> out;
    for (const auto& rule : detail::rules_table()) rule.check(ctx, out);
    if (needs != nullptr && !out.empty()) *needs = detail::budget_needs(ctx);
    return out;
  }

  std::string reject_key(const Strategy& s, const std::vector<Violation>& v) {
    std::string k;
    // The denoiser's placement and storage, the others' placement kinds and the first rule.
    for (const auto& c : s.components) {
      const Component* comp = model.find(c.component);
      const bool den = comp != nullptr && comp->role == Role::denoiser;
      const QuantizerCaps* q = storage_caps(c.storage);
      k += c.component + ":" + detail::placement_kind_name(c.placement.kind) + ":" +
           (den ? (q ? q->display : "native") + std::to_string(static_cast<int>(c.placement.park))
                : "") +
           ";";
    }
    k += v.empty() ? "" : v.front().rule;
    return k;
  }

  // The closest miss: among candidates that break budgets only, the smallest worst need / usable
  // ratio, then the fewest budgets broken, then the smallest sum of ratios. A budget of 0 counts
  // its need in bytes, so "0 usable" still prefers the smaller candidate.
  std::optional<NearMiss> closest;
  std::vector<double> closest_key;
  std::vector<BudgetNeed> least_needs;

  void note_miss(const Strategy& s, const Estimate& e, std::vector<BudgetNeed> needs) {
    double worst = 0, sum = 0, broken = 0;
    for (const auto& b : needs) {
      const double ratio =
          static_cast<double>(b.need) / static_cast<double>(std::max<std::uint64_t>(b.usable, 1));
      worst = std::max(worst, ratio);
      if (b.need > b.usable) {
        sum += ratio;
        broken += 1;
      }
    }
    for (const auto& b : needs) {
      auto it = std::find_if(least_needs.begin(), least_needs.end(),
                             [&](const BudgetNeed& l) { return l.rule == b.rule; });
      if (it == least_needs.end())
        least_needs.push_back(b);
      else if (b.need < it->need)
        *it = b;
    }
    std::vector<double> key{worst, broken, sum};
    if (closest && !(key < closest_key)) return;
    closest_key = std::move(key);
    closest = NearMiss{s, e, std::move(needs)};
  }

  // The engine's form of a candidate; false when the engine cannot express it (docs/engines.md).
  bool expressible(Strategy& s) const {
    if (opt.engine == Engine::dmem) return true;
    detail::Expressed x = detail::express(opt.engine, model, s);
    if (x.ok) s = std::move(x.strategy);
    return x.ok;
  }

  void consider(Strategy s) {
    if (opt.engine != Engine::dmem &&
        (!expressible(s) || !engine_seen.insert(strategy_to_json(s, -1)).second))
      return;
    ++candidates;
    auto est = detail::estimate_profiled(mp, s, hw);
    if (est) detail::adjust_estimate(opt.engine, mp, s, hw, *est);
    std::vector<BudgetNeed> needs;
    std::vector<Violation> v = check(s, est ? &*est : nullptr, &needs);
    if (est && !v.empty() && std::all_of(v.begin(), v.end(), [](const Violation& x) {
          return x.rule.rfind("budget.", 0) == 0;
        }))
      note_miss(s, *est, std::move(needs));
    if (!est && v.empty())
      v.push_back({"estimate", "", est.status().message(), "report this strategy as a dmem bug"});
    if (!v.empty()) {
      ++rejected_total;
      // One entry per shape of failure keeps the list readable; the count says how many.
      if (rejected.size() < kMaxRejected && rejected_keys.insert(reject_key(s, v)).second)
        rejected.push_back({std::move(s), std::move(v)});
      return;
    }
    detail::Ranked r;
    r.plan.strategy = std::move(s);
    r.plan.estimate = std::move(*est);
    viable.push_back(std::move(r));
  }

  std::optional<Estimate> estimate_k(Strategy& s, std::size_t index, std::uint32_t k) {
    s.components[index].placement.resident_blocks = k;
    auto est = detail::estimate_profiled(mp, s, hw);
    if (!est) return std::nullopt;
    return std::move(*est);
  }

  // Largest k in [1, nblocks - 1] with pred(estimate of k) true, for a pred that holds up to some
  // k and not beyond; 0 when it holds for none. `hint` (the answer for a similar candidate, 0 for
  // none) is checked first: candidates that differ only in their encoders or VAE mostly share
  // it, which makes the search two estimates instead of log2(blocks).
  template <class Pred>
  std::uint32_t largest_k_where(Strategy& s, std::size_t index, std::uint32_t nblocks, Pred pred,
                                std::uint32_t hint = 0) {
    auto holds = [&](std::uint32_t k) {
      auto est = estimate_k(s, index, k);
      return est && pred(*est);
    };
    std::uint32_t lo = 1, hi = nblocks - 1, best = 0;
    if (hint >= 1 && hint <= hi) {
      if (holds(hint)) {
        if (hint == hi || !holds(hint + 1)) return hint;
        best = hint + 1;
        lo = hint + 2;
      } else {
        hi = hint - 1;
      }
    }
    while (lo <= hi) {
      const std::uint32_t mid = lo + (hi - lo) / 2;
      if (holds(mid)) {
        best = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return best;
  }

  struct KHints {
    std::uint32_t kmax = 0, comfy = 0, slower = 0, kmin = 0;
  };
  KHints hints;

  // Partial residency's k is chosen by the preference's own objective over the k that pass every
  // rule (docs/planner.md, "Search"). More resident blocks cost VRAM and load time (read before
  // the first step, not hidden behind compute) and save streaming until the copies hide behind
  // compute. Total seconds are therefore linear in k up to that kink and rising after it, and
  // every objective is concave or linear between these points: the smallest valid k, the largest
  // k under 85 % of the usable VRAM, the kink and the largest k that fits. The best of those four
  // is the best k.
  std::uint32_t choose_k(Strategy s, std::size_t index, std::uint32_t nblocks) {
    const std::uint64_t limit = vram_usable();
    const std::uint32_t kmax = largest_k_where(
        s, index, nblocks, [&](const Estimate& e) { return e.vram_peak_bytes <= limit; },
        hints.kmax);
    hints.kmax = kmax;
    if (kmax == 0) return 1;
    auto at_max = estimate_k(s, index, kmax);
    if (!at_max) return kmax;
    const double flat = at_max->step_seconds * (1.0 + 1e-9);
    const std::uint64_t comfy = static_cast<std::uint64_t>(static_cast<double>(limit) * 0.85);
    hints.comfy = largest_k_where(
        s, index, kmax + 1, [&](const Estimate& e) { return e.vram_peak_bytes <= comfy; },
        hints.comfy);
    // The kink: the smallest k whose step is as fast as kmax's (one past the last slower one).
    hints.slower = largest_k_where(
        s, index, kmax + 1, [&](const Estimate& e) { return e.step_seconds > flat; }, hints.slower);
    // The other rules do not depend on k; a candidate that breaks one is rejected whatever k is.
    if (!check(s, nullptr).empty()) return kmax;
    // Fewer resident blocks park more in RAM: the smallest k within every budget.
    std::uint32_t kmin = 1;
    if (auto e1 = estimate_k(s, index, 1); !e1 || !fits(*e1))
      kmin = largest_k_where(
                 s, index, kmax + 1, [&](const Estimate& e) { return !fits(e); }, hints.kmin) +
             1;
    hints.kmin = kmin - 1;
    if (kmin > kmax) return kmax;
    const std::uint32_t ks[] = {kmax, kmin, std::max(kmin, hints.comfy),
                                std::max(kmin, hints.slower + 1)};
    const detail::PlanFacts facts = detail::plan_facts(model, s, hw, opt.margin);
    std::uint32_t chosen = kmax;
    detail::RankKey best{};
    bool have = false;
    for (std::uint32_t k : ks) {
      if (k < 1 || k > kmax) continue;
      detail::Ranked r;
      auto est = estimate_k(s, index, k);
      if (!est) continue;
      r.plan.estimate = std::move(*est);
      if (!fits(r.plan.estimate)) continue;
      r.facts = facts;
      const detail::RankKey key = detail::rank_key(r, opt.prefer);
      if (!have || key < best || (key == best && k > chosen)) {
        best = key;
        chosen = k;
        have = true;
      }
    }
    return chosen;
  }
};

// Components reported to overflow in fp16 (inf/NaN activations): T5/UMT5 encoders (transformers
// keeps their `wo` in fp32 for that reason) and Qwen-Image's DiT (ComfyUI runs it in bf16 or
// fp32 only).
bool overflows_in_f16(const Component& c) {
  const std::string& k = c.class_name;
  return k == "T5EncoderModel" || k == "UMT5EncoderModel" || k == "QwenImageTransformer2DModel";
}

// The storages worth trying for a component: native, the fp8 cast, every quantizer, and a
// 16-bit downcast in the compute dtype when the checkpoint holds wider (fp32) weights.
std::vector<Storage> storages_for(ComponentProfile& p, bool large, DType compute) {
  std::vector<Storage> out{native()};
  if (!large) return out;
  for (const auto& c : quantizer_table()) {
    if (c.is_cast && c.variant == "e5m2") continue;  // same size as e4m3, lower precision
    if (c.id == "dmem.quantizer.cast16") {
      if (c.variant != (compute == DType::f16 ? "f16" : "bf16")) continue;
      if (detail::stored_sizes(p, &c).total >= p.summary.bytes) continue;  // nothing wider
    }
    out.push_back(from_caps(c));
  }
  return out;
}

}  // namespace

Result<PlanReport> make_plans(const Model& model, const Hardware& hardware,
                              const Workload& workload, const PlanOptions& options) noexcept {
  if (!(options.margin >= 0.0 && options.margin < 1.0))
    return Status(Errc::invalid_argument, "margin must be in [0, 1)").with_rule("plan.margin");
  if (model.components.empty())
    return Status(Errc::invalid_argument, "model '" + model.name + "' has no components");
  if (Status ws = detail::check_workload(model, workload); !ws.is_ok()) return ws;
  // With plugins, their descriptions are the ones every lookup below sees.
  const detail::PluginQuantizers from_plugins(options.plugins);
  Search S(model, hardware, workload, options);
  {
    Strategy probe;
    ComponentStrategy cs;
    cs.component = model.components.front().name;
    cs.placement.kind = PlacementKind::disk;
    probe.components.push_back(cs);
    S.platform =
        detail::make_rule_context(model, probe, hardware, workload, options, quantizer_table())
            .platform;
  }
  for (const auto& c : model.components) {
    if (c.role == Role::denoiser)
      S.denoisers.push_back(&c);
    else if (c.role == Role::vae)
      S.vaes.push_back(&c);
    else
      S.encoders.push_back(&c);
  }
  const bool gpu = !hardware.gpus.empty();
  // The compute dtype of the weakest GPU (docs/hardware.md): bf16 from SM 8.0, fp16 on Turing's
  // tensor cores, fp32 on the GTX 16xx. The CPU computes in bf16.
  DType compute = DType::bf16;
  for (const auto& g : hardware.gpus)
    if (g.compute_dtype() == DType::f32 ||
        (g.compute_dtype() == DType::f16 && compute == DType::bf16))
      compute = g.compute_dtype();

  // ---- denoiser options: placement x storage ---------------------------------------------
  std::vector<Option> den_opts;
  if (!S.denoisers.empty()) {
    ComponentProfile& dp = *S.mp.find(S.denoisers.front()->name);
    const bool has_blocks = dp.summary.blocks.size() >= 2;
    for (const Storage& sto : storages_for(dp, true, compute)) {
      if (!gpu) {
        den_opts.push_back({place(PlacementKind::cpu), sto});
        continue;
      }
      den_opts.push_back({place(PlacementKind::resident), sto});
      den_opts.push_back(
          {offload(PlacementKind::model_offload, OffloadLevel::block, false, Tier::pinned), sto});
      if (has_blocks) {
        den_opts.push_back(
            {offload(PlacementKind::group_offload, OffloadLevel::block, true, Tier::pinned), sto});
        den_opts.push_back(
            {offload(PlacementKind::group_offload, OffloadLevel::block, true, Tier::pageable),
             sto});
        for (Tier t : {Tier::pinned, Tier::pageable, Tier::disk})
          den_opts.push_back({offload(PlacementKind::partial, OffloadLevel::block, true, t), sto});
      }
      den_opts.push_back(
          {offload(PlacementKind::group_offload, OffloadLevel::leaf, true, Tier::pinned), sto});
      den_opts.push_back(
          {offload(PlacementKind::sequential, OffloadLevel::leaf, false, Tier::pageable), sto});
      den_opts.push_back(
          {offload(PlacementKind::disk, OffloadLevel::block, true, Tier::disk), sto});
    }
  }

  // ---- text encoder options (applied to every encoder; transforms only to large ones) ------
  struct EncOption {
    Placement placement;
    Storage storage;
    bool with_resident_denoiser_only = false;
  };
  std::vector<EncOption> enc_opts;
  if (!S.encoders.empty()) {
    std::vector<Storage> small_set{native()};
    for (const auto& c : quantizer_table())
      if ((c.is_cast && c.variant == "e4m3") || c.variant == "q8_0" || c.variant == "nf4")
        small_set.push_back(from_caps(c));
    if (gpu) {
      for (const auto& s : small_set) enc_opts.push_back({place(PlacementKind::dropped), s, false});
      for (const auto& s : small_set) enc_opts.push_back({place(PlacementKind::resident), s, true});
      enc_opts.push_back(
          {offload(PlacementKind::model_offload, OffloadLevel::block, false, Tier::pinned),
           native(), false});
      enc_opts.push_back(
          {offload(PlacementKind::group_offload, OffloadLevel::block, true, Tier::pinned), native(),
           false});
      if (hardware.gpus.size() >= 2) {
        Placement p = place(PlacementKind::resident);
        p.gpu = 1;
        enc_opts.push_back({p, native(), false});
      }
    }
    enc_opts.push_back({place(PlacementKind::cpu), native(), false});
    for (const auto& c : quantizer_table())
      if (c.variant == "q8_0") enc_opts.push_back({place(PlacementKind::cpu), from_caps(c), false});
  }

  // ---- VAE options ------------------------------------------------------------------------
  std::vector<std::pair<Placement, bool>> vae_opts;  // placement, tiling
  if (gpu) {
    vae_opts.push_back({place(PlacementKind::resident), false});
    vae_opts.push_back({place(PlacementKind::resident), true});
  } else {
    vae_opts.push_back({place(PlacementKind::cpu), false});
    vae_opts.push_back({place(PlacementKind::cpu), true});
  }

  auto build = [&](const Option* d, const EncOption* e, const std::pair<Placement, bool>& v) {
    Strategy s;
    s.vae_tiling = v.second && !S.vaes.empty();
    for (const auto& c : model.components) {
      ComponentStrategy cs;
      cs.component = c.name;
      if (c.role == Role::denoiser && d != nullptr) {
        cs.placement = d->placement;
        cs.storage = d->storage;
      } else if (c.role == Role::vae) {
        cs.placement = v.first;
      } else if (e != nullptr) {
        cs.placement = e->placement;
        ComponentProfile* p = S.mp.find(c.name);
        const bool large = p != nullptr && p->summary.bytes >= kLargeEncoder;
        cs.storage = large ? e->storage : native();
      }
      cs.storage.compute_dtype = compute;
      s.components.push_back(std::move(cs));
    }
    return s;
  };

  const std::size_t den_index = [&] {
    for (std::size_t i = 0; i < model.components.size(); ++i)
      if (model.components[i].role == Role::denoiser) return i;
    return std::size_t{0};
  }();
  const std::uint32_t den_blocks =
      S.denoisers.empty()
          ? 0
          : static_cast<std::uint32_t>(S.mp.find(S.denoisers.front()->name)->summary.blocks.size());

  auto run = [&](const Option* d) {
    S.hints = {};
    for (const auto& e : enc_opts) {
      if (e.with_resident_denoiser_only &&
          (d == nullptr || d->placement.kind != PlacementKind::resident))
        continue;
      // An encoder storage that duplicates the native option on small encoders is skipped.
      bool any_large = false;
      for (const auto* c : S.encoders)
        any_large = any_large || S.mp.find(c->name)->summary.bytes >= kLargeEncoder;
      if (!any_large && e.storage.kind != StorageKind::native) continue;
      for (const auto& v : vae_opts) {
        Strategy s = build(d, S.encoders.empty() ? nullptr : &e, v);
        if (options.engine != Engine::dmem && !S.expressible(s)) continue;
        if (d != nullptr && d->placement.kind == PlacementKind::partial && den_blocks >= 2)
          s.components[den_index].placement.resident_blocks = S.choose_k(s, den_index, den_blocks);
        S.consider(std::move(s));
      }
      if (S.encoders.empty()) break;
    }
  };
  if (S.encoders.empty()) enc_opts.push_back({place(PlacementKind::resident), native(), false});
  if (den_opts.empty()) run(nullptr);
  for (const auto& d : den_opts) run(&d);

  // ---- facts, notes, pruning, ranking -----------------------------------------------------
  std::uint64_t largest_native = 0;
  std::string largest_name;
  for (const auto& p : S.mp.components)
    if (p.summary.bytes > largest_native) {
      largest_native = p.summary.bytes;
      largest_name = p.component->name;
    }
  for (auto& r : S.viable) {
    const Strategy& s = r.plan.strategy;
    r.facts = detail::plan_facts(model, s, hardware, options.margin);
    QualityTier worst = QualityTier::native;
    bool quantized = false;
    for (const auto& cs : s.components) {
      const QualityTier tier = tier_of(cs.storage);
      if (quality_rank(tier) > quality_rank(worst)) worst = tier;
      quantized = quantized || cs.storage.kind == StorageKind::quantized;
    }
    r.plan.quality_tier = std::string(quality_name(worst));
    r.plan.group = quantized ? "quantization" : "offloading / casting";
  }
  if (options.prune) detail::prune_dominated(S.viable, options.prefer);
  detail::rank_plans(S.viable, options.prefer);

  const char* prefer_name = options.prefer == Preference::speed     ? "speed"
                            : options.prefer == Preference::quality ? "quality"
                            : options.prefer == Preference::memory  ? "memory"
                                                                    : "balanced";
  PlanReport report;
  report.hardware = hardware;
  report.workload = workload;
  report.options = options;
  for (auto& r : S.viable) {
    Plan& p = r.plan;
    const Estimate& e = p.estimate;
    for (const auto& cs : p.strategy.components) {
      const Component* c = model.find(cs.component);
      if (c == nullptr) continue;
      if (cs.placement.kind == PlacementKind::dropped)
        p.notes.push_back(cs.component +
                          " runs on the GPU for its phase and is freed, so it never "
                          "shares VRAM with the denoiser");
      if (cs.placement.kind == PlacementKind::partial)
        p.notes.push_back(cs.component + ": k = " + std::to_string(cs.placement.resident_blocks) +
                          " resident blocks, chosen by the " + prefer_name + " objective");
      if (cs.placement.kind == PlacementKind::disk ||
          (cs.placement.park == Tier::disk && cs.placement.kind == PlacementKind::partial))
        p.notes.push_back(cs.component + " streams from " +
                          (cs.storage.kind == StorageKind::native
                               ? std::string("the checkpoint file (no copy)")
                               : std::string("a transformed copy in the cache dir")));
      if (cs.placement.kind == PlacementKind::cpu)
        p.notes.push_back(cs.component + " computes on the CPU");
    }
    if (p.strategy.vae_tiling)
      p.notes.push_back("VAE tiling bounds the decode activations by the tile size");
    if (compute == DType::f16)
      for (const auto& cs : p.strategy.components)
        if (const Component* c = model.find(cs.component); c != nullptr && overflows_in_f16(*c))
          p.notes.push_back(cs.component + " (" + c->class_name +
                            ") is known to overflow in fp16 on this GPU (no bf16): expect NaNs or "
                            "black images; compute it in fp32 or use a GPU with bf16");
    if (options.engine == Engine::dmem) {
      p.notes.push_back("load RAM " + format_bytes(e.load_ram_peak_bytes) +
                        " with dmem's streaming loader; diffusers' from_pretrained would hold " +
                        largest_name + " whole in RAM (" + format_bytes(largest_native) + ")");
    } else if (auto again = detail::estimate_profiled(S.mp, p.strategy, hardware)) {
      detail::adjust_estimate(options.engine, S.mp, p.strategy, hardware, *again, &p.notes);
    }
    report.plans.push_back(std::move(p));
    if (options.max_plans != 0 && report.plans.size() >= options.max_plans) break;
  }
  report.candidates = S.candidates;
  report.rejected_similar = S.rejected_total - S.rejected.size();
  report.rejected = std::move(S.rejected);
  report.warnings = detail::workload_warnings(model, workload);
  if (report.plans.empty()) {
    report.closest = std::move(S.closest);
    report.least_needs = std::move(S.least_needs);
  }
  return report;
}

}  // namespace v1
}  // namespace dmem
