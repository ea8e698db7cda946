#include "support/published_rows.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "dmem/catalog.hpp"

namespace dmem::test {

nlohmann::json published_measurements() {
  const std::string path = std::string(DMEM_SOURCE_DIR) + "/tests/data/published_measurements.json";
  std::ifstream in(path);
  REQUIRE(in.good());
  std::stringstream text;
  text << in.rdbuf();
  auto doc = nlohmann::json::parse(text.str(), nullptr, false);
  REQUIRE(!doc.is_discarded());
  return doc;
}

PublishedCase published_case(const nlohmann::json& row) {
  auto m = catalog_model(row.at("model").get<std::string>());
  REQUIRE(m);
  PublishedCase c;
  c.model = *m;
  if (row.contains("only")) {
    const auto keep = row.at("only").get<std::vector<std::string>>();
    std::vector<Component> kept;
    for (auto& comp : c.model.components)
      if (std::find(keep.begin(), keep.end(), comp.name) != keep.end())
        kept.push_back(std::move(comp));
    c.model.components = std::move(kept);
  }
  HardwareOptions o;
  o.probe = false;
  o.gpu = row.at("gpu").get<std::string>();
  o.ram = 256ull << 30;
  o.disk = 2048ull << 30;
  auto hw = make_hardware(o);
  REQUIRE(hw);
  c.hardware = *hw;

  c.workload = default_workload(c.model);
  const auto& w = row.at("workload");
  c.workload.width = w.value("width", c.workload.width);
  c.workload.height = w.value("height", c.workload.height);
  c.workload.steps = w.value("steps", c.workload.steps);
  c.workload.frames = w.value("frames", c.workload.frames);
  c.workload.batch = w.value("batch", c.workload.batch);

  auto strategy = strategy_from_json(row.at("strategy").dump());
  INFO((strategy ? std::string() : strategy.status().message()));
  REQUIRE(strategy);
  c.strategy = *strategy;
  return c;
}

}  // namespace dmem::test
