#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "core/logger.hpp"

using namespace dmem;

TEST_CASE("the logger forwards to the host callback above the level, privately", "[log]") {
  std::vector<std::pair<LogLevel, std::string>> got;
  LogConfig cfg;
  cfg.level = LogLevel::info;
  cfg.callback = [&](LogLevel l, std::string_view m) { got.emplace_back(l, std::string(m)); };
  detail::Logger log(cfg);
  log.log(LogLevel::debug, "hidden");
  log.logf(LogLevel::warn, "{} tensors", 3);
  REQUIRE(got.size() == 1);
  CHECK(got[0].first == LogLevel::warn);
  CHECK(got[0].second == "3 tensors");
  log.set_level(LogLevel::debug);
  log.log(LogLevel::debug, "now shown");
  CHECK(got.size() == 2);
  // Never registered globally: a host's own spdlog setup is untouched.
  CHECK(spdlog::get("dmem") == nullptr);
}
