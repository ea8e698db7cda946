// Hardware: presets, make_hardware's order of overrides, the /proc and cgroup readers (against
// fixture files), calibration files and `dmem hardware`.
#include <catch2/catch.hpp>

#include <algorithm>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "dmem/hardware.hpp"
#include "hw/hw_detail.hpp"
#include "support/test_support.hpp"

using namespace dmem;
using dmem::test::TempDir;
using dmem::test::write_file;

namespace {
constexpr std::uint64_t kGiB = 1024ull * 1024ull * 1024ull;

const GpuPreset& preset(const std::string& id) {
  for (const auto& p : gpu_presets())
    if (p.id == id) return p;
  FAIL("no preset " << id);
  return gpu_presets().front();
}
}  // namespace

TEST_CASE("GPU presets cover the documented table with consistent figures", "[hardware]") {
  // From 4 GB up: GTX 16xx, RTX 20xx-50xx with laptop variants, datacenter and workstation.
  const std::set<std::string> want = {"gtx1650",        "gtx1660-super",
                                      "rtx2060",        "rtx2080ti",
                                      "rtx3050-laptop", "rtx3060-laptop",
                                      "rtx3060-12",     "rtx3090",
                                      "rtx4050-laptop", "rtx4060",
                                      "rtx4060ti-16",   "rtx4070",
                                      "rtx4080",        "rtx4090",
                                      "rtx4090-laptop", "rtx5060",
                                      "rtx5080",        "rtx5090",
                                      "rtx5090-laptop", "a10",
                                      "a100-40",        "a100-80",
                                      "h100",           "h200",
                                      "b200",           "l4",
                                      "l40s",           "t4",
                                      "rtx-a6000",      "rtx6000-ada",
                                      "rtx-pro-6000"};
  std::set<std::string> got;
  for (const auto& p : gpu_presets()) {
    got.insert(p.id);
    INFO(p.id);
    CHECK(p.spec.vram_total > 0);
    CHECK(p.spec.vram_free == p.spec.vram_total);
    CHECK(p.spec.bf16_tflops > 0);
    CHECK(p.spec.mem_gbps > 0);
    CHECK(p.spec.h2d_pinned_gbps > 0);
    CHECK(p.spec.h2d_pageable_gbps == Approx(std::min(p.spec.h2d_pinned_gbps / 2, 11.0)));
    // fp8 tensor cores exist exactly from SM 8.9 on.
    CHECK((p.spec.fp8_tflops > 0) == (p.spec.sm() >= 89));
    CHECK(p.spec.vram_total >= 4 * kGiB);
    // The compute dtype follows the features: bf16 from SM 8.0, fp16 on Turing's tensor cores,
    // fp32 on the GTX 16xx.
    if (p.spec.sm() >= 80)
      CHECK(p.spec.compute_dtype() == DType::bf16);
    else
      CHECK(p.spec.compute_dtype() == (p.spec.tensor_cores ? DType::f16 : DType::f32));
    // Every preset is found again from its own device name.
    const GpuPreset* back = detail::match_preset(p.spec.name, p.spec.vram_total);
    REQUIRE(back != nullptr);
    CHECK(back->id == p.id);
  }
  for (const auto& w : want) CHECK(got.count(w) == 1);
  CHECK_FALSE(preset("gtx1650").spec.has_int8_tensor_cores());
  CHECK(preset("t4").spec.has_int8_tensor_cores());
  CHECK_FALSE(preset("t4").spec.has_bf16());
  CHECK(preset("a100-80").spec.has_bf16());
  CHECK_FALSE(preset("a100-80").spec.has_fp8());
  CHECK(preset("l4").spec.has_fp8());
  CHECK(preset("rtx4090").spec.vram_total == 24 * kGiB);
  CHECK(preset("rtx4090").spec.sm() == 89);
  CHECK(preset("rtx5090").spec.sm() == 120);
  CHECK(preset("rtx3090").spec.sm() == 86);
  CHECK(preset("rtx5090").spec.h2d_pinned_gbps == Approx(50));
  CHECK(preset("rtx4090").spec.h2d_pinned_gbps == Approx(25));
  CHECK(preset("t4").spec.h2d_pinned_gbps == Approx(12));
  CHECK(preset("rtx4060ti-16").spec.h2d_pinned_gbps == Approx(12.5));  // PCIe 4.0 x8
}

TEST_CASE("probed device names map to presets", "[hardware]") {
  auto id = [](const char* name, std::uint64_t bytes) {
    const GpuPreset* p = detail::match_preset(name, bytes);
    return p ? p->id : std::string("-");
  };
  CHECK(id("NVIDIA GeForce RTX 4090", 24 * kGiB) == "rtx4090");
  CHECK(id("NVIDIA A100-SXM4-80GB", 80 * kGiB) == "a100-80");
  CHECK(id("NVIDIA A100-PCIE-40GB", 40 * kGiB) == "a100-40");
  CHECK(id("NVIDIA H100 80GB HBM3", 80 * kGiB) == "h100");
  CHECK(id("NVIDIA L4", 23 * kGiB) == "l4");
  CHECK(id("NVIDIA L40S", 46 * kGiB) == "l40s");
  CHECK(id("Tesla T4", 15 * kGiB) == "t4");
  CHECK(id("NVIDIA T4", 15 * kGiB) == "t4");
  CHECK(id("NVIDIA A10", 22 * kGiB) == "a10");
  CHECK(id("NVIDIA GeForce RTX 4070 Ti", 12 * kGiB) == "rtx4070ti");
  CHECK(id("NVIDIA GeForce RTX 4070 Ti SUPER", 16 * kGiB) == "rtx4070ti-super");
  CHECK(id("NVIDIA GeForce RTX 4060 Ti", 8 * kGiB) == "rtx4060ti");
  CHECK(id("NVIDIA GeForce RTX 4060 Ti", 16 * kGiB) == "rtx4060ti-16");
  CHECK(id("NVIDIA GeForce RTX 4060 Laptop GPU", 8 * kGiB) == "rtx4060-laptop");
  CHECK(id("NVIDIA GeForce RTX 3060", 12 * kGiB) == "rtx3060-12");
  CHECK(id("NVIDIA GeForce GTX 1660 SUPER", 6 * kGiB) == "gtx1660-super");
  CHECK(id("Some Future GPU", 12 * kGiB) == "-");
}

TEST_CASE("make_hardware applies preset, then flags, without probing", "[hardware]") {
  HardwareOptions o;
  o.probe = false;
  o.gpu = "rtx4090";
  o.gpus = 2;
  o.ram = 32 * kGiB;
  auto hw = make_hardware(o);
  REQUIRE(hw);
  REQUIRE(hw->gpus.size() == 2);
  CHECK(hw->gpus[1].name == "NVIDIA GeForce RTX 4090");
  CHECK(hw->gpus[0].vram_free == 24 * kGiB);
  CHECK(hw->ram_available == 32 * kGiB);
  CHECK(!hw->probed);

  o.vram = 20 * kGiB;
  o.pinned_limit = 8 * kGiB;
  o.disk = 100 * kGiB;
  o.cache_dir = "/somewhere/cache";
  hw = make_hardware(o);
  REQUIRE(hw);
  CHECK(hw->gpus[0].vram_total == 20 * kGiB);
  CHECK(hw->gpus[1].vram_free == 20 * kGiB);
  CHECK(hw->pinned_limit == 8 * kGiB);
  CHECK(hw->disk_free == 100 * kGiB);
  CHECK(hw->cache_dir == "/somewhere/cache");
  CHECK(hw->gpus[0].sm() == 89);  // the preset's, not overwritten by --vram
}

TEST_CASE("make_hardware: CPU-only, generic GPU and bad combinations", "[hardware]") {
  HardwareOptions o;
  o.probe = false;
  o.gpu = "none";
  o.ram = 64 * kGiB;
  auto hw = make_hardware(o);
  REQUIRE(hw);
  CHECK(hw->gpus.empty());
  CHECK(hw->cpu_cores > 0);
  CHECK(hw->cpu_gflops > 0);

  HardwareOptions v;
  v.probe = false;
  v.vram = 29 * kGiB;
  hw = make_hardware(v);
  REQUIRE(hw);
  REQUIRE(hw->gpus.size() == 1);
  CHECK(hw->gpus[0].vram_free == 29 * kGiB);
  CHECK(hw->gpus[0].sm() == 86);  // generic: assumes no fp8 tensor cores

  HardwareOptions u;
  u.probe = false;
  u.gpu = "rtx9999";
  auto bad = make_hardware(u);
  REQUIRE(!bad);
  CHECK(bad.status().code() == Errc::not_found);
  CHECK(bad.status().message().find("rtx9999") != std::string::npos);
  CHECK(bad.status().hint().find("rtx4090") != std::string::npos);

  HardwareOptions n;
  n.probe = false;
  n.gpu = "none";
  n.gpus = 2;
  CHECK(!make_hardware(n));
  n.gpus.reset();
  n.vram = 8 * kGiB;
  CHECK(!make_hardware(n));

  HardwareOptions g;
  g.probe = false;
  g.gpus = 2;
  auto nogpu = make_hardware(g);
  REQUIRE(!nogpu);
  CHECK(nogpu.status().code() == Errc::invalid_argument);

  // Preset ids are matched without regard to case or punctuation.
  HardwareOptions c;
  c.probe = false;
  c.gpu = "RTX5090";
  REQUIRE(make_hardware(c));
}

TEST_CASE("probe_hardware describes this machine without failing", "[hardware]") {
  TempDir dir;
  auto hw = probe_hardware(dir.path().string());
  REQUIRE(hw);
  CHECK(hw->probed);
  CHECK(hw->cache_dir == dir.path().string());
  CHECK(hw->ram_total > 0);
  CHECK(hw->ram_available > 0);
  CHECK(hw->ram_available <= hw->ram_total);
  CHECK(hw->disk_free > 0);
  CHECK(hw->cpu_cores > 0);
  for (const auto& g : hw->gpus) {
    CHECK(g.vram_total > 0);
    CHECK(g.h2d_pinned_gbps > 0);
  }
}

TEST_CASE("meminfo and cgroup text parse", "[hardware]") {
  const auto mi = detail::parse_meminfo(
      "MemTotal:       65536000 kB\nMemFree:         1000 kB\nMemAvailable:   32768000 kB\n");
  REQUIRE(mi);
  CHECK(mi->total == 65536000ull * 1024);
  CHECK(mi->available == 32768000ull * 1024);
  CHECK(!detail::parse_meminfo("MemTotal: 10 kB\n"));
  CHECK(!detail::parse_meminfo(""));

  auto v2 = detail::parse_cgroup_memory("8589934592\n", "6442450944\n");
  REQUIRE(v2);
  REQUIRE(v2->room());
  CHECK(*v2->room() == 2 * kGiB);
  auto unlimited = detail::parse_cgroup_memory("max\n", "123\n");
  REQUIRE(unlimited);
  CHECK(!unlimited->room());
  auto v1_unlimited = detail::parse_cgroup_memory("9223372036854771712\n", "5\n");
  REQUIRE(v1_unlimited);
  CHECK(!v1_unlimited->limit);
  auto over = detail::parse_cgroup_memory("100", "200");
  REQUIRE(over);
  CHECK(*over->room() == 0);
  CHECK(!detail::parse_cgroup_memory("lots", "1"));
  CHECK(!detail::parse_cgroup_memory("1", ""));

  bool is_v2 = false;
  auto p = detail::parse_proc_cgroup("0::/user.slice/app.scope\n", is_v2);
  REQUIRE(p);
  CHECK(*p == "/user.slice/app.scope");
  CHECK(is_v2);
  p = detail::parse_proc_cgroup("12:cpu,cpuacct:/x\n11:memory:/docker/abc\n0::/\n", is_v2);
  REQUIRE(p);
  CHECK(*p == "/docker/abc");
  CHECK(!is_v2);
  CHECK(!detail::parse_proc_cgroup("garbage\n", is_v2));
}

TEST_CASE("read_ram caps MemAvailable by cgroup v2 and v1 limits", "[hardware]") {
  TempDir dir;
  const auto root = dir.path();
  std::filesystem::create_directories(root / "cg/app");
  write_file((root / "meminfo").string(), "MemTotal: 67108864 kB\nMemAvailable: 50331648 kB\n");
  write_file((root / "self").string(), "0::/app\n");
  // The leaf allows 8 GiB with 6 GiB used; the root has no limit file at all.
  write_file((root / "cg/app/memory.max").string(), "8589934592\n");
  write_file((root / "cg/app/memory.current").string(), "6442450944\n");
  detail::SystemPaths paths{(root / "meminfo").string(), (root / "self").string(),
                            (root / "cg").string()};
  auto r = detail::read_ram(paths);
  REQUIRE(r);
  CHECK(r->available == 2 * kGiB);
  CHECK(r->total == 8 * kGiB);
  CHECK(r->limited_by == "cgroup v2 /app");

  // Unlimited leaf: MemAvailable stands.
  write_file((root / "cg/app/memory.max").string(), "max\n");
  r = detail::read_ram(paths);
  REQUIRE(r);
  CHECK(r->available == 48 * kGiB);
  CHECK(r->limited_by.empty());

  // cgroup v1, the path from /proc/self/cgroup absent below the mount (a container): the root
  // of the hierarchy is checked.
  std::filesystem::create_directories(root / "cg1/memory");
  write_file((root / "self1").string(), "4:memory:/docker/abcdef\n");
  write_file((root / "cg1/memory/memory.limit_in_bytes").string(), "17179869184\n");
  write_file((root / "cg1/memory/memory.usage_in_bytes").string(), "4294967296\n");
  detail::SystemPaths p1{(root / "meminfo").string(), (root / "self1").string(),
                         (root / "cg1").string()};
  r = detail::read_ram(p1);
  REQUIRE(r);
  CHECK(r->available == 12 * kGiB);
  CHECK(r->limited_by == "cgroup v1 /");

  detail::SystemPaths missing{(root / "nope").string(), (root / "self").string(),
                              (root / "cg").string()};
  CHECK(!detail::read_ram(missing));
}

TEST_CASE("disk_free_at measures the nearest existing parent", "[hardware]") {
  TempDir dir;
  auto f = detail::disk_free_at((dir.path() / "not/yet/created").string());
  REQUIRE(f);
  CHECK(*f > 0);
}

TEST_CASE("calibration files override preset figures", "[hardware]") {
  TempDir dir;
  HardwareOptions o;
  o.probe = false;
  o.gpu = "rtx4090";
  auto hw = make_hardware(o);
  REQUIRE(hw);
  const auto path = dir.file("cal.json");
  write_file(path, R"({"version": 1, "device": "my 4090", "h2d_pinned_gbps": 22.5,
    "h2d_pageable_gbps": 9.5, "d2h_pinned_gbps": 21, "disk_read_gbps": 3.1, "bf16_tflops": 150,
    "cpu_gflops": 900})");
  REQUIRE(apply_calibration(*hw, path));
  CHECK(hw->gpus[0].h2d_pinned_gbps == Approx(22.5));
  CHECK(hw->gpus[0].h2d_pageable_gbps == Approx(9.5));
  CHECK(hw->gpus[0].d2h_pinned_gbps == Approx(21));
  CHECK(hw->gpus[0].bf16_tflops == Approx(150));
  CHECK(hw->disk_read_gbps == Approx(3.1));
  CHECK(hw->cpu_gflops == Approx(900));

  // Through make_hardware too.
  o.calibration = path;
  auto cal = make_hardware(o);
  REQUIRE(cal);
  CHECK(cal->gpus[0].bf16_tflops == Approx(150));
}

TEST_CASE("calibration errors name the file and the key", "[hardware]") {
  TempDir dir;
  Hardware hw;
  hw.gpus.push_back(gpu_presets().front().spec);
  const Hardware before = hw;
  auto check = [&](const std::string& text, const std::string& needle) {
    const auto path = dir.file("c.json");
    write_file(path, text);
    Status s = apply_calibration(hw, path);
    INFO(text);
    REQUIRE(!s.is_ok());
    CHECK(s.file() == path);
    CHECK(s.message().find(needle) != std::string::npos);
    CHECK(hw.gpus[0].h2d_pinned_gbps == before.gpus[0].h2d_pinned_gbps);  // untouched
  };
  check(R"({"h2d_pinned_gbps": 30, "h2d_pinnned_gbps": 20})", "h2d_pinnned_gbps");
  check(R"({"h2d_pinned_gbps": "fast"})", "h2d_pinned_gbps");
  check(R"({"h2d_pinned_gbps": -3})", "positive");
  check(R"({"h2d_pinned_gbps": 0})", "positive");
  check(R"({"version": 2})", "version");
  check(R"([1, 2])", "object");
  check(R"({"h2d_pinned_gbps": )", "JSON");
  check(R"({"a": 1, "a": 2})", "JSON");
  Status hint = apply_calibration(hw, [&] {
    const auto p = dir.file("k.json");
    write_file(p, R"({"gemm": 1})");
    return p;
  }());
  CHECK(hint.hint().find("bf16_tflops") != std::string::npos);
  Status missing = apply_calibration(hw, dir.file("absent.json"));
  CHECK(missing.code() == Errc::not_found);
}

TEST_CASE("dmem hardware prints what the flags describe", "[hardware][cli]") {
  std::string out;
  int rc = test::run_command(
      test::cli_path() + " hardware --no-probe --gpu rtx4090 --gpus 2 --ram 32GiB --json", &out,
      false);
  REQUIRE(rc == 0);
  auto j = nlohmann::json::parse(out, nullptr, false);
  REQUIRE(!j.is_discarded());
  REQUIRE(j["gpus"].size() == 2);
  CHECK(j["gpus"][0]["compute_capability"] == "8.9");
  CHECK(j["ram_available_bytes"] == 32 * kGiB);
  CHECK(j["pinned_limit_bytes"] == 16 * kGiB);

  rc = test::run_command(test::cli_path() + " hardware --no-probe --gpu none --ram 64GiB", &out);
  CHECK(rc == 0);
  CHECK(out.find("CPU-only") != std::string::npos);

  rc = test::run_command(test::cli_path() + " hardware --no-probe --ram lots", &out);
  CHECK(rc == 2);
  CHECK(out.find("--ram") != std::string::npos);
  rc = test::run_command(test::cli_path() + " hardware --gpu rtx9999", &out);
  CHECK(rc == 2);
  CHECK(out.find("rtx9999") != std::string::npos);
  rc = test::run_command(test::cli_path() + " hardware --presets", &out);
  CHECK(rc == 0);
  CHECK(out.find("l40s") != std::string::npos);
}
