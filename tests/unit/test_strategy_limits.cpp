// Quadratic work and limits in strategies (issue 6, class 4): a 100k-component strategy used to
// take 32 s. Reading now refuses it by a limit before any per-component work; duplicate checks
// are hash lookups; the validator refuses oversized strategies built in code.
#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "dmem/catalog.hpp"
#include "dmem/plan.hpp"
#include "dmem/strategy.hpp"
#include "plan/strategy_limits.hpp"

using dmem::Errc;
using dmem::detail::kMaxStrategyComponents;

namespace {

// {"components": [{"component": "c0"}, ...]} with `n` entries, the last `dups` repeating c0.
std::string strategy_text(std::size_t n, std::size_t dups = 0) {
  std::string s = "{\"version\": 1, \"components\": [";
  for (std::size_t i = 0; i < n; ++i) {
    if (i) s += ", ";
    const std::size_t id = i + dups >= n ? 0 : i;
    s += "{\"component\": \"c" + std::to_string(id) + "\"}";
  }
  return s + "]}";
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("a 100k-component strategy is refused by a limit, quickly",
          "[hostile][strategy-limits]") {
  const std::string text = strategy_text(100000);
  REQUIRE(text.size() > 2'000'000);  // the size of the reported 2.3 MB file
  REQUIRE(text.size() < dmem::detail::kMaxStrategyBytes);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = dmem::strategy_from_json(text);
  const double s = seconds_since(t0);
  REQUIRE_FALSE(r);
  CHECK(r.status().code() == Errc::limit_exceeded);
  CHECK(r.status().rule() == "strategy.limit.components");
  CHECK(r.status().message().find("100000") != std::string::npos);
  CHECK_FALSE(r.status().hint().empty());
  CHECK(s < 5.0);  // a sanity cap (ASan included); the work is one linear parse
}

TEST_CASE("a strategy at the component limit reads; a duplicate is found by name",
          "[hostile][strategy-limits]") {
  auto ok = dmem::strategy_from_json(strategy_text(kMaxStrategyComponents));
  REQUIRE(ok);
  CHECK(ok->components.size() == kMaxStrategyComponents);

  auto dup = dmem::strategy_from_json(strategy_text(kMaxStrategyComponents, 1));
  REQUIRE_FALSE(dup);
  CHECK(dup.status().rule() == "strategy.json");
  CHECK(dup.status().message().find("components[255].component: 'c0' appears more than once") !=
        std::string::npos);

  auto over = dmem::strategy_from_json(strategy_text(kMaxStrategyComponents + 1));
  REQUIRE_FALSE(over);
  CHECK(over.status().rule() == "strategy.limit.components");
}

TEST_CASE("strategy text and string limits", "[hostile][strategy-limits]") {
  SECTION("text size") {
    std::string big = "{\"comment\": \"" + std::string(dmem::detail::kMaxStrategyBytes, 'x') +
                      "\", \"components\": []}";
    auto r = dmem::strategy_from_json(big);
    REQUIRE_FALSE(r);
    CHECK(r.status().rule() == "strategy.limit.size");
    CHECK(r.status().code() == Errc::limit_exceeded);
  }
  SECTION("component name") {
    const std::string name(dmem::detail::kMaxStrategyString + 1, 'n');
    auto r = dmem::strategy_from_json("{\"components\": [{\"component\": \"" + name + "\"}]}");
    REQUIRE_FALSE(r);
    CHECK(r.status().rule() == "strategy.limit.string");
    CHECK(r.status().to_string().size() < 400);  // the name itself is not echoed
  }
  SECTION("comment") {
    const std::string c(dmem::detail::kMaxStrategyComment + 1, 'c');
    auto r = dmem::strategy_from_json("{\"comment\": \"" + c + "\", \"components\": []}");
    REQUIRE_FALSE(r);
    CHECK(r.status().rule() == "strategy.limit.string");
  }
  SECTION("an unknown key is shown clipped") {
    const std::string key(100000, 'k');
    auto r = dmem::strategy_from_json("{\"" + key + "\": 1, \"components\": []}");
    REQUIRE_FALSE(r);
    CHECK(r.status().rule() == "strategy.json");
    CHECK(r.status().to_string().size() < 600);
  }
}

TEST_CASE("validate refuses an oversized strategy built in code", "[hostile][strategy-limits]") {
  auto model = dmem::catalog_model("flux1-dev");
  REQUIRE(model);
  dmem::Strategy st;
  st.components.resize(100000);
  for (std::size_t i = 0; i < st.components.size(); ++i)
    st.components[i].component = std::string("c").append(std::to_string(i));
  dmem::Hardware hw;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = dmem::validate(*model, st, hw, dmem::Workload{}, dmem::PlanOptions{});
  CHECK(seconds_since(t0) < 5.0);
  REQUIRE_FALSE(r);
  CHECK(r.status().rule() == "strategy.limit.components");

  // At the limit, every unknown name is one violation: linear in the components.
  st.components.resize(kMaxStrategyComponents);
  auto at = dmem::validate(*model, st, hw, dmem::Workload{}, dmem::PlanOptions{});
  REQUIRE(at);
  std::size_t unknown = 0;
  for (const auto& v : *at) unknown += v.rule == "component.unknown" ? 1 : 0;
  CHECK(unknown == kMaxStrategyComponents);
}

TEST_CASE("the same component twice with two transforms is one violation per repeat",
          "[hostile][strategy-limits]") {
  auto model = dmem::catalog_model("flux1-dev");
  REQUIRE(model);
  dmem::Strategy st;
  for (int i = 0; i < 3; ++i) {
    dmem::ComponentStrategy cs;
    cs.component = "transformer";
    cs.storage.kind = dmem::StorageKind::layerwise_cast;
    st.components.push_back(cs);
  }
  auto r = dmem::validate(*model, st, dmem::Hardware{}, dmem::Workload{}, dmem::PlanOptions{});
  REQUIRE(r);
  std::size_t twice = 0;
  for (const auto& v : *r) twice += v.message.find("listed twice") != std::string::npos ? 1 : 0;
  CHECK(twice == 2);
}
