// `dmem run` end to end on scaled-down catalog models: every runnable plan loads, runs within its
// budgets and never copies weights back; bad flags and catalog models without weights are clear.
#include <catch2/catch.hpp>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "support/test_support.hpp"

using dmem::test::cli_path;
using dmem::test::run_command;

namespace {

nlohmann::json run_json(const std::string& flags, int* status = nullptr) {
  std::string out;
  const int rc = run_command(cli_path() + " run " + flags + " --json", &out, false);
  if (status != nullptr) *status = rc;
  if (rc != 0) return {};
  return nlohmann::json::parse(out, nullptr, false);
}

}  // namespace

TEST_CASE("dmem run executes the first plans of scaled-down models within their budgets",
          "[runtime][cli]") {
  for (const char* model : {"qwen-image", "flux1-dev", "sdxl"}) {
    for (const char* plan : {"1", "2", "3", "4"}) {
      INFO(model << " plan " << plan);
      int rc = 0;
      const auto j = run_json(
          std::string(model) + " --scale-down 16 --vram 2GiB --ram 8GiB --steps 2 --plan " + plan,
          &rc);
      // A plan that needs a quantizer plugin is refused with exit 2 (unsupported), not run.
      if (rc != 0) {
        std::string err;
        run_command(
            cli_path() + " run " + model + " --scale-down 16 --vram 2GiB --ram 8GiB --plan " + plan,
            &err);
        CHECK(err.find("run.plan") != std::string::npos);
        continue;
      }
      REQUIRE(j.is_object());
      CHECK(j["moves"]["copies_to_host"] == 0);
      const auto& device = j["stores"]["device"];
      CHECK(device["peak"].get<std::uint64_t>() <= device["budget"].get<std::uint64_t>());
      CHECK(device["peak"].get<std::uint64_t>() > 0);
      CHECK(j["phases"].size() >= 2);
      CHECK(j["step_seconds"]["measured"].get<double>() > 0);
    }
  }
}

TEST_CASE("dmem run refuses catalog models without --scale-down and bad flags", "[runtime][cli]") {
  std::string out;
  CHECK(run_command(cli_path() + " run flux1-dev --vram 2GiB --ram 8GiB", &out) == 2);
  CHECK(out.find("runtime.no_files") != std::string::npos);
  CHECK(out.find("--scale-down") != std::string::npos);
  CHECK(run_command(cli_path() + " run flux1-dev --scale-down 0", &out) == 2);
  CHECK(out.find("cli.flag") != std::string::npos);
  CHECK(run_command(cli_path() + " run flux1-dev --scale-down 16 --vram 2GiB --plan 9999", &out) ==
        2);
  CHECK(out.find("--plan") != std::string::npos);
  CHECK(run_command(cli_path() + " run flux1-dev --scale-down 16 --device tpu", &out) == 2);
  CHECK(run_command(cli_path() + " run flux1-dev --scale-down 16 --plan 1 --strategy x.json",
                    &out) == 2);
  CHECK(run_command(cli_path() + " run flux1-dev --scale-down 16 --headroom lots", &out) == 2);
  CHECK(out.find("--headroom") != std::string::npos);
}

TEST_CASE("dmem run --headroom runs and reports what headroom mode did",
          "[runtime][cli][pressure]") {
  int rc = 0;
  // On the CPU device the headroom counts the system's available RAM: 1 MiB is always free.
  const auto j =
      run_json("flux1-dev --scale-down 64 --vram 2GiB --ram 8GiB --steps 2 --headroom 1MiB", &rc);
  REQUIRE(rc == 0);
  CHECK(j["pressure"]["headroom"] == 1048576);
  CHECK(j["pressure"]["headroom_overruns"] == 0);
  CHECK(j["moves"]["copies_to_host"] == 0);
}

TEST_CASE("dmem run executes a hand-written group-offload strategy", "[runtime][cli]") {
  dmem::test::TempDir dir;
  const std::string strategy = dir.file("s.json");
  dmem::test::write_file(strategy, R"({
  "components": [
    {"component": "transformer", "placement": {"kind": "group_offload", "blocks_per_group": 1,
     "use_stream": true, "prefetch": 1, "park": "pinned"}},
    {"component": "text_encoder", "placement": {"kind": "cpu"}},
    {"component": "text_encoder_2", "placement": {"kind": "dropped"}},
    {"component": "vae", "placement": {"kind": "resident"}}
  ]
})");
  int rc = 0;
  const auto j = run_json(
      "flux1-dev --scale-down 16 --vram 8GiB --ram 16GiB --steps 3 --strategy " + strategy, &rc);
  REQUIRE(rc == 0);
  CHECK(j["moves"]["copies_to_host"] == 0);
  CHECK(j["moves"]["bytes_to_device_per_step"].get<std::uint64_t>() > 0);
  CHECK(j["moves"]["prefetch_hits"].get<std::uint64_t>() > 0);
  CHECK(j["moves"]["pin_calls"] == 1);
  CHECK(j["stores"]["pinned"]["peak"].get<std::uint64_t>() > 0);
  CHECK(j["stores"]["pageable"]["peak"].get<std::uint64_t>() > 0);  // the CPU text encoder
}

#ifdef DMEM_TEST_NVTX_COUNTER
TEST_CASE("dmem run names its loads, copies, acquires, linears and steps as NVTX ranges",
          "[cli][runtime]") {
  // NVTX is host-side: a counting injection library sees the ranges without a GPU.
  dmem::test::TempDir dir;
  const std::string out = dir.file("nvtx.txt");
  std::string cmd = "NVTX_INJECTION64_PATH='";
  cmd += DMEM_TEST_NVTX_COUNTER;
  cmd += "' DMEM_TEST_NVTX_OUT='" + out + "' '" + dmem::test::cli_path() +
         "' run flux1-dev --scale-down 16 --gpu rtx4090 --ram 32GiB --steps 2";
  std::string output;
  REQUIRE(dmem::test::run_command(cmd, &output) == 0);
  const auto bytes = dmem::test::read_file(out);
  const std::string counts(bytes.begin(), bytes.end());
  INFO(counts);
  int domain = 0, push = 0, pop = 0, start = 0, end = 0;
  REQUIRE(std::sscanf(counts.c_str(), "domain %d push %d pop %d start %d end %d", &domain, &push,
                      &pop, &start, &end) == 5);
  CHECK(domain == 1);
  CHECK(push > 100);  // every tensor loaded, every acquire and every linear layer
  CHECK(push == pop);
  CHECK(start >= 2);  // one per denoising step at least
  CHECK(start == end);
}
#endif
