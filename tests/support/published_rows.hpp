// The rows of tests/data/published_measurements.json as the planner sees them: the row's catalog
// model (with "only" its listed components), its GPU preset, its workload and its strategy. The
// planner's [published] test and the engine profiles' one cost the same inputs.
#pragma once

#include <nlohmann/json.hpp>

#include "dmem/hardware.hpp"
#include "dmem/model.hpp"
#include "dmem/plan.hpp"
#include "dmem/strategy.hpp"

namespace dmem::test {

/// The whole file, parsed (fails the test when it cannot be read).
nlohmann::json published_measurements();

struct PublishedCase {
  Model model;
  Hardware hardware;
  Workload workload;
  Strategy strategy;
};

/// One row's inputs (fails the test when the row names something unknown).
PublishedCase published_case(const nlohmann::json& row);

}  // namespace dmem::test
