#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "dmem/catalog.hpp"
#include "dmem/plan.hpp"
#include "dmem/strategy.hpp"

using namespace dmem;

// The strategies shipped in samples/strategies/ (and quoted in docs/strategy.md) stay readable and
// name only components Qwen-Image has.
TEST_CASE("sample strategies parse and name real components", "[strategy]") {
  const std::filesystem::path dir = std::string(DMEM_SOURCE_DIR) + "/samples/strategies";
  auto model = catalog_model("qwen-image");
  REQUIRE(model.has_value());
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".json") continue;
    ++files;
    INFO(entry.path().string());
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    auto strategy = strategy_from_json(text.str());
    REQUIRE(strategy.has_value());
    for (const auto& c : strategy->components) CHECK(model->find(c.component) != nullptr);
  }
  CHECK(files >= 3);
}
