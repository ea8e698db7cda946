// dmem calibrate: the file it writes is the planner's calibration (and changes plans as it
// should), bad input is refused with one line, a trace folds back into the compute figure, and on
// a GPU its pinned bandwidth agrees with a plain cudaMemcpyAsync loop. No CPU timing is asserted.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "backend/cuda/cuda_calibrate.hpp"
#include "backend/cuda/cuda_probe.hpp"
#include "dmem/hardware.hpp"
#include "dmem/model.hpp"
#include "dmem/plan.hpp"
#include "dmem/synthetic.hpp"
#include "hw/calibrate.hpp"
#include "hw/hw_detail.hpp"
#include "runtime/compute_device.hpp"
#include "support/test_support.hpp"

#if DMEM_TEST_HAVE_CUDART
#include <cuda_runtime.h>
#endif

using dmem::test::cli_path;
using dmem::test::run_command;
using dmem::test::TempDir;
using namespace dmem;

namespace {

nlohmann::json parse(const std::string& text) {
  return nlohmann::json::parse(text, nullptr, false);
}

std::string slurp(const std::string& path) {
  auto bytes = test::read_file(path);
  return std::string(bytes.begin(), bytes.end());
}

// The denoiser's step time of plan 1 for a CPU-only machine, with a calibration file.
double cpu_step_seconds(const std::string& calibration) {
  std::string out;
  const int rc = run_command(cli_path() +
                                 " plan sdxl --no-probe --gpu none --ram 64GiB --disk 100GiB "
                                 "--json --calibration " +
                                 calibration,
                             &out, false);
  REQUIRE(rc == 0);
  auto j = parse(out);
  REQUIRE(j.is_object());
  REQUIRE_FALSE(j["plans"].empty());
  return j["plans"][0]["estimate"]["step_seconds"].get<double>();
}

}  // namespace

TEST_CASE("calibration files written by calibrate are read by the planner", "[calibrate]") {
  TempDir dir;
  detail::CalibrationFigures f;
  f.device = "test \"machine\"";
  f.h2d_pinned_gbps = 24.125;
  f.d2h_pinned_gbps = 26.5;
  f.bf16_tflops = 151.0;
  f.cpu_gflops = 850.25;
  const std::string path = dir.file("cal.json");
  REQUIRE(detail::write_calibration(path, f).is_ok());

  Hardware hw;
  hw.gpus.emplace_back();
  REQUIRE(apply_calibration(hw, path).is_ok());
  CHECK(hw.gpus[0].h2d_pinned_gbps == Approx(24.12).epsilon(1e-3));
  CHECK(hw.gpus[0].d2h_pinned_gbps == Approx(26.5));
  CHECK(hw.gpus[0].bf16_tflops == Approx(151.0));
  CHECK(hw.cpu_gflops == Approx(850.2).epsilon(1e-3));
  CHECK(hw.gpus[0].h2d_pageable_gbps == 0);  // not measured: left out, the default stays

  // Read back as figures, and merged: measured keys replace, others stay.
  auto back = detail::read_calibration_figures(path);
  REQUIRE(back.has_value());
  CHECK(back->device == f.device);
  CHECK_FALSE(back->fp8_tflops.has_value());
  detail::CalibrationFigures measured;
  measured.cpu_gflops = 100;
  detail::merge_figures(*back, measured);
  CHECK(*back->cpu_gflops == 100);
  CHECK(*back->bf16_tflops == Approx(151.0));

  // A figure that is not positive is never written, and the old file stays.
  detail::CalibrationFigures bad;
  bad.cpu_gflops = 0.0;
  CHECK_FALSE(detail::write_calibration(path, bad).is_ok());
  CHECK(detail::read_calibration_figures(path).has_value());
  CHECK(slurp(path).find("850.2") != std::string::npos);
}

TEST_CASE("calibrate's host measurements give figures", "[calibrate]") {
  auto mc = detail::measure_memcpy_gbps(4u << 20, 2);
  REQUIRE(mc.has_value());
  CHECK(*mc > 0);
  auto gf = detail::measure_sgemm_gflops(64, 48, 32, 1);
  REQUIRE(gf.has_value());
  CHECK(*gf > 0);
  CHECK_FALSE(detail::measure_sgemm_gflops(0, 4, 4, 1).has_value());

  TempDir dir;
  std::string bytes(3u << 20, 'x');
  test::write_file(dir.file("a.bin"), bytes);
  test::write_file(dir.file("b.bin"), bytes);
  auto cold = detail::measure_disk_read({dir.file("a.bin"), dir.file("b.bin")}, 1ull << 30, true);
  REQUIRE(cold.has_value());
  CHECK(cold->bytes == 6u << 20);
  CHECK(cold->cold);
  auto capped = detail::measure_disk_read({dir.file("a.bin"), dir.file("b.bin")}, 4u << 20, false);
  REQUIRE(capped.has_value());
  CHECK(capped->bytes == 4u << 20);
  auto missing = detail::measure_disk_read({dir.file("none.bin")}, 1u << 20, true);
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.status().to_string().find("none.bin") != std::string::npos);

  // Through the CPU device's own linear, and refused for a dtype it cannot take.
  auto cpu = detail::make_cpu_device();
  auto tf = detail::measure_device_linear_tflops(*cpu, DType::bf16, 16, 64, 32, 1);
  REQUIRE(tf.has_value());
  CHECK(*tf > 0);
  CHECK_FALSE(detail::measure_device_linear_tflops(*cpu, DType::q4_k, 16, 100, 32, 1).has_value());
}

TEST_CASE("dmem calibrate --quick writes a file dmem plan uses", "[calibrate][cli]") {
  TempDir dir;
  const std::string out_path = dir.file("cal.json");
  std::string out;
  REQUIRE(run_command(cli_path() + " calibrate --quick --device cpu --json " + out_path, &out) ==
          0);
  CHECK(out.find("host sgemm") != std::string::npos);
  CHECK(out.find("host memcpy") != std::string::npos);
  Hardware hw;
  REQUIRE(apply_calibration(hw, out_path).is_ok());
  auto j = parse(slurp(out_path));
  REQUIRE(j.is_object());
  CHECK(j["version"] == 1);
  if (detail::have_openblas()) {
    REQUIRE(j["cpu_gflops"].is_number());
    CHECK(hw.cpu_gflops == Approx(j["cpu_gflops"].get<double>()));
  }
  CHECK_FALSE(j.contains("h2d_pinned_gbps"));  // no GPU measured with --device cpu

  // The planner's CPU step time follows cpu_gflops: twice the throughput, half the time.
  detail::CalibrationFigures slow, fast;
  slow.cpu_gflops = 200;
  fast.cpu_gflops = 400;
  REQUIRE(detail::write_calibration(dir.file("slow.json"), slow).is_ok());
  REQUIRE(detail::write_calibration(dir.file("fast.json"), fast).is_ok());
  const double s_slow = cpu_step_seconds(dir.file("slow.json"));
  const double s_fast = cpu_step_seconds(dir.file("fast.json"));
  CHECK(s_slow / s_fast == Approx(2.0).epsilon(0.01));
  // And the measured file is accepted too.
  (void)cpu_step_seconds(out_path);
}

TEST_CASE("dmem calibrate --model reads the model's files cold and warm", "[calibrate][cli]") {
  TempDir dir;
  auto catalog = open_model("sdxl");
  REQUIRE(catalog.has_value());
  ScaleDown sd;
  sd.factor = 32;
  auto scaled = scale_down(*catalog, sd);
  REQUIRE(scaled.has_value());
  auto model = write_synthetic_model(*scaled, dir.file("m"));
  REQUIRE(model.has_value());
  std::string out;
  const int rc = run_command(cli_path() + " calibrate --quick --device cpu --model " + *model +
                                 " --json " + dir.file("cal.json"),
                             &out);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(out.find("model read, cold") != std::string::npos);
  CHECK(out.find("model read, warm") != std::string::npos);
  auto j = parse(slurp(dir.file("cal.json")));
  REQUIRE(j["disk_read_gbps"].is_number());
  CHECK(j["disk_read_gbps"].get<double>() > 0);
}

TEST_CASE("dmem calibrate refuses bad flags and paths with one line", "[calibrate][cli]") {
  TempDir dir;
  std::string out;
  CHECK(run_command(cli_path() + " calibrate --device tpu --quick", &out) == 2);
  CHECK(out.find("cli.flag") != std::string::npos);
  CHECK(run_command(cli_path() + " calibrate --quick --json " + dir.file("no/such/dir/c.json"),
                    &out) == 2);
  CHECK(out.find("no/such/dir") != std::string::npos);
  CHECK(run_command(cli_path() + " calibrate --quick --model " + dir.file("missing.safetensors"),
                    &out) == 2);
  CHECK(out.find("missing.safetensors") != std::string::npos);
  CHECK(run_command(cli_path() + " calibrate --quick --model flux1-dev", &out) == 2);
  CHECK(out.find("calibrate.model") != std::string::npos);
  test::write_file(dir.file("bad.json"), R"({"version":1,"h2d_gbps":3})");
  CHECK(run_command(
            cli_path() + " calibrate --quick --device cpu --calibration " + dir.file("bad.json"),
            &out) == 2);
  CHECK(out.find("calibration.key") != std::string::npos);
  CHECK(run_command(cli_path() + " calibrate --from-trace " + dir.file("t.json"), &out) == 2);
  CHECK(out.find("--json") != std::string::npos);
  CHECK(run_command(cli_path() + " calibrate --from-trace " + dir.file("t.json") +
                        " --quick --json " + dir.file("o.json"),
                    &out) == 2);
  CHECK(run_command(cli_path() + " calibrate --from-trace " + dir.file("t.json") + " --json " +
                        dir.file("o.json"),
                    &out) == 2);
  CHECK(out.find("t.json") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("o.json")));
  if (!detail::cuda_compiled() || detail::cuda_devices().empty()) {
    CHECK(run_command(cli_path() + " calibrate --quick --device cuda", &out) == 2);
    CHECK(out.find("no CUDA device") != std::string::npos);
    // Without --device, a machine without a GPU is measured on the host and says why.
    REQUIRE(run_command(cli_path() + " calibrate --quick", &out) == 0);
    CHECK(out.find("no CUDA device") != std::string::npos);
  }
}

TEST_CASE("dmem calibrate --from-trace folds a run's step time into cpu_gflops",
          "[calibrate][cli]") {
  TempDir dir;
  const std::string trace = dir.file("t.json");
  std::string out;
  int rc = run_command(cli_path() +
                           " run sdxl --scale-down 16 --no-probe --gpu none --ram 16GiB "
                           "--disk 10GiB --steps 3 --trace " +
                           trace,
                       &out);
  INFO(out);
  REQUIRE(rc == 0);
  REQUIRE(run_command(cli_path() + " report " + trace + " --json", &out, false) == 0);
  auto report = parse(out);
  REQUIRE(report.is_object());
  const double measured = report["totals"]["mean_step_seconds"].get<double>();
  const double estimated = report["totals"]["estimate_step_seconds"].get<double>();

  detail::CalibrationFigures base;
  base.cpu_gflops = 300;
  base.h2d_pinned_gbps = 20;
  REQUIRE(detail::write_calibration(dir.file("in.json"), base).is_ok());
  rc = run_command(cli_path() + " calibrate --from-trace " + trace + " --calibration " +
                       dir.file("in.json") + " --json " + dir.file("out.json"),
                   &out);
  INFO(out);
  REQUIRE(rc == 0);
  CHECK(out.find("cpu_gflops") != std::string::npos);
  auto folded = detail::read_calibration_figures(dir.file("out.json"));
  REQUIRE(folded.has_value());
  // The run was planned with --no-probe's 8 cores x 50 GFLOPS (the trace says so, whatever
  // in.json holds), and computed 16 times fewer tokens than its estimate describes.
  REQUIRE(folded->cpu_gflops.has_value());
  CHECK(*folded->cpu_gflops == Approx(400.0 * estimated / 16.0 / measured).epsilon(1e-3));
  CHECK(*folded->h2d_pinned_gbps == 20);  // untouched keys are kept
  // The next plan reads it.
  (void)cpu_step_seconds(dir.file("out.json"));

  // A GPU plan played by the CPU device measures neither: refused.
  rc = run_command(cli_path() +
                       " run sdxl --scale-down 16 --no-probe --gpu rtx4090 --ram 16GiB "
                       "--disk 10GiB --steps 2 --trace " +
                       dir.file("g.json"),
                   &out);
  REQUIRE(rc == 0);
  CHECK(run_command(cli_path() + " calibrate --from-trace " + dir.file("g.json") + " --json " +
                        dir.file("out2.json"),
                    &out) == 2);
  CHECK(out.find("calibrate.trace") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("out2.json")));
}

TEST_CASE("calibrate's pinned H2D bandwidth agrees with a plain cudaMemcpyAsync loop",
          "[calibrate][cuda]") {
  if (!detail::cuda_compiled() || detail::cuda_devices().empty()) {
    std::printf("DMEM_SKIP: no CUDA device\n");
    auto r = detail::cuda_measure_copies(0, 1u << 20, 1);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.status().message().find("no CUDA device") != std::string::npos);
    return;
  }
#if DMEM_TEST_HAVE_CUDART
  constexpr std::uint64_t kBytes = 256ull << 20;
  constexpr int kReps = 10;
  auto measured = detail::cuda_measure_copies(0, kBytes, kReps);
  REQUIRE(measured.has_value());
  CHECK(measured->h2d_pinned > 0);
  CHECK(measured->h2d_pageable > 0);
  CHECK(measured->d2h_pinned > 0);

  // The reference: the plainest loop, timed the same way, in the same process.
  REQUIRE(cudaSetDevice(0) == cudaSuccess);
  void* host = nullptr;
  void* dev = nullptr;
  REQUIRE(cudaMallocHost(&host, kBytes) == cudaSuccess);
  REQUIRE(cudaMalloc(&dev, kBytes) == cudaSuccess);
  cudaStream_t stream = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  REQUIRE(cudaStreamCreate(&stream) == cudaSuccess);
  REQUIRE(cudaEventCreate(&start) == cudaSuccess);
  REQUIRE(cudaEventCreate(&stop) == cudaSuccess);
  REQUIRE(cudaMemcpyAsync(dev, host, kBytes, cudaMemcpyHostToDevice, stream) == cudaSuccess);
  REQUIRE(cudaEventRecord(start, stream) == cudaSuccess);
  for (int i = 0; i < kReps; ++i)
    REQUIRE(cudaMemcpyAsync(dev, host, kBytes, cudaMemcpyHostToDevice, stream) == cudaSuccess);
  REQUIRE(cudaEventRecord(stop, stream) == cudaSuccess);
  REQUIRE(cudaEventSynchronize(stop) == cudaSuccess);
  float ms = 0;
  REQUIRE(cudaEventElapsedTime(&ms, start, stop) == cudaSuccess);
  const double plain = static_cast<double>(kBytes) * kReps / (ms * 1e-3) / 1e9;
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(stream);
  cudaFree(dev);
  cudaFreeHost(host);
  std::printf("H2D pinned: calibrate %.2f GB/s, plain loop %.2f GB/s\n", measured->h2d_pinned,
              plain);
  CHECK(std::abs(measured->h2d_pinned - plain) / plain < 0.10);
#endif
}

namespace {

// A trace with one denoise phase from 1 ms to 3 ms: the device held 1000 bytes when it began and
// peaked at `peak` inside it; the plan put 400 bytes of weights and 300 of activations there.
std::string activation_trace(std::uint64_t peak, bool synthetic) {
  nlohmann::json t;
  t["traceEvents"] = nlohmann::json::array(
      {{{"ph", "C"}, {"name", "memory device"}, {"ts", 500.0}, {"args", {{"bytes", 1000}}}},
       {{"ph", "C"}, {"name", "memory device"}, {"ts", 2000.0}, {"args", {{"bytes", peak}}}},
       {{"ph", "C"}, {"name", "memory device"}, {"ts", 3500.0}, {"args", {{"bytes", 90000}}}},
       {{"ph", "X"}, {"cat", "phase"}, {"name", "denoise"}, {"ts", 1000.0}, {"dur", 2000.0}}});
  t["dmem"] = {{"device", "cpu"},
               {"estimate.phase.denoise.weights", 400.0},
               {"estimate.phase.denoise.activations", 300.0},
               {"plan.activation_scale", 1.5}};
  if (synthetic) t["dmem"]["run.synthetic_activations"] = 1.0;
  return t.dump();
}

}  // namespace

TEST_CASE("dmem calibrate --from-trace folds measured activations into activation_scale",
          "[calibrate][cli]") {
  TempDir dir;
  std::string out;
  const auto fold = [&](const std::string& trace_text, const std::string& to) {
    test::write_file(dir.file("t.json"), trace_text);
    return run_command(
        cli_path() + " calibrate --from-trace " + dir.file("t.json") + " --json " + dir.file(to),
        &out);
  };
  // A real run: (peak 1300 - weights 400) / 300 estimated = 3 times the plan's 1.5.
  REQUIRE(fold(activation_trace(1300, false), "real.json") == 0);
  INFO(out);
  CHECK(out.find("activation_scale: 1.5 -> 4.5") != std::string::npos);
  CHECK(out.find("step time not folded") != std::string::npos);  // the trace has no steps
  auto real = detail::read_calibration_figures(dir.file("real.json"));
  REQUIRE(real.has_value());
  REQUIRE(real->activation_scale.has_value());
  CHECK(*real->activation_scale == Approx(4.5));
  CHECK_FALSE(real->cpu_gflops.has_value());

  // A real run that needed less lowers it: the phase began at 1000 bytes, above the 550 inside
  // it, so (1000 - 400) / 300 = 2 times the plan's 1.5.
  REQUIRE(fold(activation_trace(550, false), "low.json") == 0);
  CHECK(*detail::read_calibration_figures(dir.file("low.json"))->activation_scale ==
        Approx(1.5 * 600.0 / 300.0));

  // Synthetic activations (dmem run) only raise it: the same figures fold, ...
  REQUIRE(fold(activation_trace(1300, true), "syn.json") == 0);
  CHECK(*detail::read_calibration_figures(dir.file("syn.json"))->activation_scale == Approx(4.5));
  // ... a synthetic run whose device held less than planned does not (and with no steps to
  // fold either, nothing is written).
  nlohmann::json low = nlohmann::json::parse(activation_trace(500, true));
  low["dmem"]["estimate.phase.denoise.weights"] = 900.0;  // (1000 - 900) / 300 = 1/3
  CHECK(fold(low.dump(), "none.json") == 2);
  CHECK(out.find("calibrate.trace") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir.file("none.json")));

  // Out of the accepted range: kept within 0.1 to 10.
  nlohmann::json big = nlohmann::json::parse(activation_trace(1300, false));
  big["dmem"]["estimate.phase.denoise.activations"] = 10.0;  // 90 x 1.5
  REQUIRE(fold(big.dump(), "big.json") == 0);
  CHECK(*detail::read_calibration_figures(dir.file("big.json"))->activation_scale == 10.0);

  // The planner reads the key: the same plan's activations scale by it.
  auto model = open_model("sdxl");
  REQUIRE(model.has_value());
  HardwareOptions ho;
  ho.probe = false;
  ho.gpu = "rtx4090";
  ho.ram = 64ull << 30;
  ho.disk = 100ull << 30;
  auto plain = make_hardware(ho);
  REQUIRE(plain.has_value());
  CHECK(plain->activation_scale == 1.0);
  ho.calibration = dir.file("real.json");
  auto calibrated = make_hardware(ho);
  REQUIRE(calibrated.has_value());
  CHECK(calibrated->activation_scale == Approx(4.5));
  const Workload wl = default_workload(*model);
  auto plans = make_plans(*model, *plain, wl);
  REQUIRE(plans.has_value());
  REQUIRE_FALSE(plans->plans.empty());
  const Strategy& strategy = plans->plans.front().strategy;
  auto before = estimate(*model, strategy, *plain, wl);
  auto after = estimate(*model, strategy, *calibrated, wl);
  REQUIRE(before.has_value());
  REQUIRE(after.has_value());
  REQUIRE(before->phases.size() == after->phases.size());
  bool compared = false;
  for (std::size_t i = 0; i < before->phases.size(); ++i) {
    const double b = static_cast<double>(before->phases[i].vram_activations);
    if (b == 0) continue;
    CHECK(static_cast<double>(after->phases[i].vram_activations) == Approx(4.5 * b).margin(4));
    compared = true;
  }
  CHECK(compared);
  // dmem plan --explain says so.
  REQUIRE(run_command(cli_path() +
                          " plan sdxl --no-probe --gpu rtx4090 --ram 64GiB --disk 100GiB "
                          "--explain 1 --calibration " +
                          dir.file("real.json"),
                      &out) == 0);
  CHECK(out.find("activation model x calibrated 4.5") != std::string::npos);

  // The key is validated like the others.
  test::write_file(dir.file("bad.json"), "{\"version\": 1, \"activation_scale\": 11}");
  Hardware hw;
  const Status s = apply_calibration(hw, dir.file("bad.json"));
  CHECK(s.rule() == "calibration.value");
  CHECK(s.message().find("between 0.1 and 10") != std::string::npos);
}
