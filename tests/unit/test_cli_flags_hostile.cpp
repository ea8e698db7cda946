// Flags that were silently accepted or reported without a rule (issue 6, classes 7 and 8):
// fractional bare byte counts, a GPU preset with zero GPUs, Boost.Program_options errors, and
// the exit status of --explain when nothing fits.
#include <catch2/catch.hpp>

#include <string>

#include "dmem/hardware.hpp"
#include "dmem/units.hpp"
#include "support/test_support.hpp"

using dmem::test::cli_path;
using dmem::test::run_command;

namespace {

// Runs the CLI; returns the exit status, with stdout and stderr in `out`.
int dmem_cli(const std::string& args, std::string& out) {
  return run_command(cli_path() + " " + args, &out);
}

}  // namespace

TEST_CASE("a bare byte count must be whole bytes", "[hostile][cli-flags]") {
  auto frac = dmem::parse_bytes("0.4");
  REQUIRE_FALSE(frac);
  CHECK(frac.status().rule() == "units.bytes");
  CHECK(frac.status().message().find("whole bytes") != std::string::npos);
  CHECK_FALSE(dmem::parse_bytes("1.5B"));
  CHECK_FALSE(dmem::parse_bytes("2.0 bytes"));
  CHECK(dmem::parse_bytes("4096").value() == 4096);
  CHECK(dmem::parse_bytes("0.5KiB").value() == 512);
  CHECK(dmem::parse_bytes("0.4GiB").value() == 429496730);  // rounded to the nearest byte
  // What format_bytes prints reads back, petabytes included.
  CHECK(dmem::parse_bytes(dmem::format_bytes(8448446706740737ull)));

  std::string out;
  CHECK(dmem_cli("hardware --no-probe --vram 0.4", out) == 2);
  INFO(out);
  CHECK(out.find("--vram: cannot read '0.4' as a byte quantity") != std::string::npos);
  CHECK(out.find("whole bytes") != std::string::npos);
  CHECK(out.find("[rule cli.flag]") != std::string::npos);
  CHECK(dmem_cli("hardware --no-probe --vram 0.4GiB --json", out) == 0);
}

TEST_CASE("a GPU preset with --gpus 0 is a contradiction", "[hostile][cli-flags]") {
  dmem::HardwareOptions o;
  o.probe = false;
  o.gpu = "rtx4090";
  o.gpus = 0;
  auto hw = dmem::make_hardware(o);
  REQUIRE_FALSE(hw);
  CHECK(hw.status().rule() == "hardware.gpus");

  o.gpu.reset();
  o.vram = 24ull << 30;
  auto hw2 = dmem::make_hardware(o);
  REQUIRE_FALSE(hw2);
  CHECK(hw2.status().rule() == "hardware.gpus");

  std::string out;
  CHECK(dmem_cli("plan qwen-image --no-probe --gpu rtx4090 --gpus 0 --ram 64GiB", out) == 2);
  INFO(out);
  CHECK(out.find("--gpus is 0") != std::string::npos);
  CHECK(out.find("[rule hardware.gpus]") != std::string::npos);
  // Zero GPUs on their own still describe a CPU-only machine.
  CHECK(dmem_cli("hardware --no-probe --gpus 0 --json", out) == 0);
}

TEST_CASE("option parser errors carry rule cli.flag and the valid forms", "[hostile][cli-flags]") {
  std::string out;
  CHECK(dmem_cli("plan qwen-image --no-probe --bogus", out) == 2);
  INFO(out);
  CHECK(out.find("dmem plan: unrecognised option '--bogus' [rule cli.flag]") == 0);
  CHECK(out.find("valid flags: --help, --model VALUE") != std::string::npos);
  CHECK(out.find('\n') == out.size() - 1);  // one line

  CHECK(dmem_cli("plan qwen-image --vram", out) == 2);
  CHECK(out.find("[rule cli.flag]") != std::string::npos);
  CHECK(out.find("write --vram VALUE or --vram=VALUE") != std::string::npos);

  CHECK(dmem_cli("validate a.json b.json --model qwen-image", out) == 2);
  CHECK(out.find("[rule cli.flag]") != std::string::npos);
  CHECK(out.find("give one <strategy> only") != std::string::npos);

  CHECK(dmem_cli("hardware --ram 1GiB --ram 2GiB", out) == 2);
  CHECK(out.find("give --ram once") != std::string::npos);

  CHECK(dmem_cli("inspect qwen-image --bogus", out) == 2);
  CHECK(out.find("[rule cli.flag]") != std::string::npos);

  // Boost's own what() loops forever on a name holding its placeholder (found by fuzzing);
  // `timeout` turns a regression into a failure (124) instead of a hung test run.
  CHECK(run_command("timeout 20 " + cli_path() +
                        " plan m '--gpu%canonical_option%' '--x%canonical_option%=1'",
                    &out) == 2);
  CHECK(out.find("unrecognised option '--gpu%canonical_option%' [rule cli.flag]") !=
        std::string::npos);

  CHECK(dmem_cli("frobnicate", out) == 2);
  CHECK(out.find("[rule cli.command]") != std::string::npos);
}

TEST_CASE("no viable plan exits 1 with or without --explain", "[hostile][cli-flags]") {
  std::string out;
  const std::string tiny = "plan qwen-image --no-probe --gpu none --ram 8GiB";
  CHECK(dmem_cli(tiny, out) == 1);
  CHECK(dmem_cli(tiny + " --explain 1", out) == 1);
  CHECK(out.find("no viable plan") != std::string::npos);
  // A plan id that does not exist where plans do is still bad input.
  CHECK(dmem_cli("plan qwen-image --no-probe --gpu rtx5090 --ram 60GiB --explain 999", out) == 2);
  CHECK(out.find("[rule cli.flag]") != std::string::npos);

  CHECK(dmem_cli("--help", out) == 0);
  CHECK(out.find("exit status:") != std::string::npos);
  CHECK(out.find("3  internal error") != std::string::npos);
}
