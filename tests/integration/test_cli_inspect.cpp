#include <catch2/catch.hpp>

#include <cstring>
#include <string>

#include <nlohmann/json.hpp>

#include "support/test_support.hpp"

using dmem::test::run_command;

namespace {
std::string cli() {
  return dmem::test::cli_path();
}
}  // namespace

TEST_CASE("dmem models lists the catalog", "[cli]") {
  std::string out;
  REQUIRE(run_command(cli() + " models", &out) == 0);
  for (const char* name : {"qwen-image", "qwen-image-edit", "flux1-dev", "flux1-schnell",
                           "sd35-large", "sdxl", "wan21-t2v-14b"})
    CHECK(out.find(name) != std::string::npos);
}

TEST_CASE("dmem inspect qwen-image prints exact sizes per component", "[cli]") {
  std::string out;
  REQUIRE(run_command(cli() + " inspect qwen-image", &out) == 0);
  INFO(out);
  CHECK(out.find("qwen-image (built-in catalog)") != std::string::npos);
  CHECK(out.find("transformer") != std::string::npos);
  CHECK(out.find("text_encoder") != std::string::npos);
  CHECK(out.find("1933") != std::string::npos);
  CHECK(out.find("20.43 B") != std::string::npos);
  CHECK(out.find("40.86 GB") != std::string::npos);
}

TEST_CASE("dmem inspect --json has the documented keys and exact numbers", "[cli]") {
  std::string out;
  REQUIRE(run_command(cli() + " inspect qwen-image --json", &out, false) == 0);
  auto j = nlohmann::json::parse(out);
  CHECK(j["model"] == "qwen-image");
  REQUIRE(j["components"].is_array());
  std::uint64_t total = 0;
  bool saw_transformer = false;
  for (const auto& c : j["components"]) {
    for (const char* key : {"name", "role", "params", "bytes", "tensors", "blocks",
                            "max_leaf_bytes", "castable_bytes", "linear_bytes", "dtypes"})
      CHECK(c.contains(key));
    CHECK(c["blocks"].contains("count"));
    CHECK(c["blocks"].contains("max_bytes"));
    total += c["bytes"].get<std::uint64_t>();
    if (c["name"] == "transformer") {
      saw_transformer = true;
      CHECK(c["params"] == 20430401088ull);
      CHECK(c["tensors"] == 1933);
      CHECK(c["bytes"] == 2 * 20430401088ull);
      CHECK(c["blocks"]["count"] == 60);
      CHECK(c["role"] == "denoiser");
      CHECK(c["dtypes"]["bf16"] == 2 * 20430401088ull);
      CHECK(c["linear_bytes"].get<std::uint64_t>() < c["bytes"].get<std::uint64_t>());
      CHECK(c["castable_bytes"].get<std::uint64_t>() > 0);
    }
  }
  CHECK(saw_transformer);
  CHECK(j["total_bytes"] == total);
}

TEST_CASE("dmem inspect --tensors lists every tensor", "[cli]") {
  std::string out;
  REQUIRE(run_command(cli() + " inspect qwen-image --tensors", &out) == 0);
  CHECK(out.find("transformer_blocks.59.txt_mlp.net.2.weight") != std::string::npos);
  CHECK(out.find("[3072, 12288]") != std::string::npos);
}

TEST_CASE("dmem inspect: bad input is one line naming the file, exit status 2", "[cli]") {
  dmem::test::TempDir dir;
  // A header whose offsets leave a gap: a reader rule, not a crash.
  const std::string header = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[16,24]}})";
  std::string bytes(8, '\0');
  const std::uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  bytes += header + std::string(24, '\0');
  const auto path = dir.file("gap.safetensors");
  dmem::test::write_file(path, bytes);
  std::string out;
  CHECK(run_command(cli() + " inspect " + path, &out) == 2);
  INFO(out);
  CHECK(out.find("gap.safetensors") != std::string::npos);
  CHECK(out.find("rule") != std::string::npos);
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);

  CHECK(run_command(cli() + " inspect no-such-model", &out) == 2);
  CHECK(out.find("no-such-model") != std::string::npos);
  CHECK(run_command(cli() + " inspect qwen-image --frobnicate", &out) == 2);
  CHECK(run_command(cli() + " frobnicate", &out) == 2);
}
