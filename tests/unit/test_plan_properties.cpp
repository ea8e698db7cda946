// Planner properties over the catalog × a grid of machines (issue 9): pruning never hides the
// best plan of a family (denoiser storage × placement kind), and more VRAM or more RAM never
// gives a worse first plan for the same preference.
#include <catch2/catch.hpp>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "dmem/catalog.hpp"
#include "dmem/plan.hpp"
#include "plan/ranking.hpp"

using namespace dmem;

namespace {

constexpr std::uint64_t kGiB = 1024ull * 1024ull * 1024ull;
const std::uint64_t kVram[] = {6, 8, 12, 16, 24, 32, 48, 80};
const std::uint64_t kRam[] = {16, 32, 64};

// A generic GPU (the same throughput and link everywhere) so only the memory changes.
Hardware machine(std::uint64_t vram_gib, std::uint64_t ram_gib) {
  HardwareOptions o;
  o.probe = false;
  o.vram = vram_gib * kGiB;
  o.ram = ram_gib * kGiB;
  o.disk = 500 * kGiB;
  auto hw = make_hardware(o);
  REQUIRE(hw);
  return *hw;
}

std::set<std::string> families(const Model& m, const Hardware& hw, const PlanReport& r) {
  std::set<std::string> out;
  for (const auto& p : r.plans)
    out.insert(detail::plan_facts(m, p.strategy, hw, r.options.margin).family);
  return out;
}

// a <= b lexicographically, equal within a relative 1e-9 (the same plan costed twice).
bool not_worse(const detail::RankKey& a, const detail::RankKey& b) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double tol = 1e-9 * std::max({1.0, std::abs(a[i]), std::abs(b[i])});
    if (a[i] < b[i] - tol) return true;
    if (a[i] > b[i] + tol) return false;
  }
  return true;
}

// The first plan on `big` is at least as good, by big's own objective, as the first plan on
// `small` (which big can run as well: its budgets are larger).
void check_monotone(const Model& m, const Workload& wl, Preference pref, const Hardware& small,
                    const PlanReport& rs, const Hardware& big, const PlanReport& rb) {
  if (rs.plans.empty()) return;
  INFO("small " << small.gpus.front().vram_free / kGiB << " GiB VRAM, "
                << small.ram_available / kGiB << " GiB RAM; big "
                << big.gpus.front().vram_free / kGiB << " GiB, " << big.ram_available / kGiB
                << " GiB; top on small: " << strategy_summary(rs.plans.front().strategy));
  REQUIRE_FALSE(rb.plans.empty());
  INFO("top on big: " << strategy_summary(rb.plans.front().strategy));
  const Plan& ps = rs.plans.front();
  auto v = validate(m, ps.strategy, big, wl, rb.options);
  REQUIRE(v);
  CHECK(v->empty());
  const detail::Ranked top_big{rb.plans.front(),
                               detail::plan_facts(m, rb.plans.front().strategy, big, 0.10)};
  const detail::Ranked top_small{ps, detail::plan_facts(m, ps.strategy, big, 0.10)};
  CHECK(not_worse(detail::rank_key(top_big, pref), detail::rank_key(top_small, pref)));
}

}  // namespace

TEST_CASE("pruning keeps the best plan of every storage x placement family", "[plan][property]") {
  for (const auto& entry : catalog_entries()) {
    auto m = catalog_model(entry.name);
    REQUIRE(m);
    const Workload wl = default_workload(*m);
    for (std::uint64_t vram : kVram)
      for (std::uint64_t ram : kRam) {
        INFO(entry.name << " on " << vram << " GiB VRAM, " << ram << " GiB RAM");
        const Hardware hw = machine(vram, ram);
        PlanOptions all;
        all.prune = false;
        auto everything = make_plans(*m, hw, wl, all);
        auto listed = make_plans(*m, hw, wl);
        REQUIRE(everything);
        REQUIRE(listed);
        CHECK(listed->plans.size() <= everything->plans.size());
        const auto want = families(*m, hw, *everything);
        const auto have = families(*m, hw, *listed);
        for (const auto& f : want) {
          INFO("family " << f);
          CHECK(have.count(f) == 1);
        }
      }
  }
}

TEST_CASE("more VRAM or more RAM never gives a worse first plan", "[plan][property]") {
  for (const auto& entry : catalog_entries()) {
    auto m = catalog_model(entry.name);
    REQUIRE(m);
    const Workload wl = default_workload(*m);
    for (Preference pref :
         {Preference::balanced, Preference::speed, Preference::quality, Preference::memory}) {
      INFO(entry.name << ", preference " << static_cast<int>(pref));
      PlanOptions opt;
      opt.prefer = pref;
      std::vector<std::vector<PlanReport>> grid;
      std::vector<std::vector<Hardware>> hws;
      for (std::uint64_t vram : kVram) {
        grid.emplace_back();
        hws.emplace_back();
        for (std::uint64_t ram : kRam) {
          hws.back().push_back(machine(vram, ram));
          auto r = make_plans(*m, hws.back().back(), wl, opt);
          REQUIRE(r);
          grid.back().push_back(std::move(*r));
        }
      }
      for (std::size_t i = 0; i < grid.size(); ++i)
        for (std::size_t j = 0; j < grid[i].size(); ++j) {
          if (i + 1 < grid.size())
            check_monotone(*m, wl, pref, hws[i][j], grid[i][j], hws[i + 1][j], grid[i + 1][j]);
          if (j + 1 < grid[i].size())
            check_monotone(*m, wl, pref, hws[i][j], grid[i][j], hws[i][j + 1], grid[i][j + 1]);
        }
    }
  }
}
