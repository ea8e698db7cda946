// `dmem convert` end to end: write, read back with inspect and plan, and the errors a user meets.
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "support/test_support.hpp"

using dmem::test::run_command;

namespace {

std::string cli() {
  return dmem::test::cli_path();
}

const std::string kInput = std::string(DMEM_GOLDEN_DIR) + "/convert/input.safetensors";

// The stock plugins sit beside the dmem binary (bin/plugins) unless linked in statically.
bool have_plugins() {
  std::string out;
  return run_command(cli() + " plugins", &out) == 0 &&
         out.find("dmem.quantizer.nf4") != std::string::npos &&
         out.find("dmem.quantizer.gguf") != std::string::npos;
}

}  // namespace

TEST_CASE("dmem convert writes nf4 / GGUF checkpoints that inspect and plan read back",
          "[cli][convert]") {
  if (!have_plugins()) {
    WARN("stock plugins not found beside dmem; skipped");
    return;
  }
  dmem::test::TempDir dir;
  const std::string out = dir.file("out.safetensors");
  std::string text;
  REQUIRE(
      run_command(cli() + " convert " + kInput + " --quantize input=nf4-dq -o " + out + " --json",
                  &text, false) == 0);
  INFO(text);
  const auto j = nlohmann::json::parse(text);
  CHECK(j["format"] == "safetensors");
  CHECK(j["components"][0]["quantizer"] == "nf4-dq");
  CHECK(j["components"][0]["tensors_quantized"] == 5);
  CHECK(j["bytes_out"].get<std::uint64_t>() == std::filesystem::file_size(out));

  REQUIRE(run_command(cli() + " inspect " + out + " --json", &text, false) == 0);
  const auto ij = nlohmann::json::parse(text);
  CHECK(ij["components"][0]["prequantized"] == "bnb nf4");
  CHECK(ij["components"][0]["linear_bytes"] == 0);
  REQUIRE(run_command(cli() + " plan " + out + " --vram 8GiB --ram 16GiB --no-probe", &text) != 2);

  const std::string gguf = dir.file("out.gguf");
  REQUIRE(run_command(cli() + " convert " + kInput + " -q '*=q8_0' -o " + gguf, &text) == 0);
  INFO(text);
  CHECK(text.find("q8_0") != std::string::npos);
  REQUIRE(run_command(cli() + " inspect " + gguf, &text) == 0);
  CHECK(text.find("q8_0") != std::string::npos);

  // Errors: one line, exit 2, nothing written.
  CHECK(run_command(cli() + " convert " + kInput + " -q input=nf4 -o " + out, &text) == 2);
  CHECK(text.find("convert.exists") != std::string::npos);
  CHECK(text.find("--force") != std::string::npos);
  CHECK(run_command(cli() + " convert " + kInput + " -q input=nf4 -o " + out + " --force", &text) ==
        0);
  CHECK(run_command(cli() + " convert " + kInput + " -q vae=nf4 -o " + dir.file("v.safetensors"),
                    &text) == 2);
  CHECK(text.find("convert.component") != std::string::npos);
  CHECK(run_command(cli() + " convert " + kInput + " -q input=nf3 -o " + dir.file("w.safetensors"),
                    &text) == 2);
  CHECK(text.find("convert.quantizer") != std::string::npos);
  CHECK(run_command(cli() + " convert " + gguf + " -q '*=int8' -o " + dir.file("x.safetensors"),
                    &text) == 2);
  CHECK(text.find("convert.dtype") != std::string::npos);
  CHECK(run_command(cli() + " convert " + kInput + " -q input=q4_k --format safetensors -o " +
                        dir.file("y.safetensors"),
                    &text) == 2);
  CHECK(text.find("convert.format") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("v.safetensors")));
  CHECK_FALSE(std::filesystem::exists(dir.file("y.safetensors")));
}
