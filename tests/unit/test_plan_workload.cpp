// Workload choices that change the cost: guidance passes (--cfg on|off|batched) and generations
// per session (--images N: what stays loaded is read once; what a plan drops is read again).
#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "dmem/catalog.hpp"
#include "dmem/hardware.hpp"
#include "dmem/plan.hpp"
#include "support/test_support.hpp"

using namespace dmem;
using dmem::test::cli_path;
using dmem::test::run_command;

namespace {

constexpr std::uint64_t kGiB = 1024ull * 1024ull * 1024ull;

Hardware machine(const char* gpu) {
  HardwareOptions o;
  o.probe = false;
  o.gpu = gpu;
  o.ram = 128 * kGiB;
  o.disk = 1000 * kGiB;
  auto hw = make_hardware(o);
  REQUIRE(hw);
  return *hw;
}

Model model(const char* name) {
  auto m = catalog_model(name);
  REQUIRE(m);
  return *m;
}

const PhaseEstimate& phase(const Estimate& e, Phase p) {
  for (const auto& ph : e.phases)
    if (ph.phase == p) return ph;
  FAIL("no such phase");
  return e.phases.front();
}

Estimate estimate_with(const Model& m, const Strategy& s, const Hardware& hw, Workload wl,
                       Guidance cfg, std::uint32_t images = 1) {
  wl.cfg = cfg;
  wl.images = images;
  auto e = estimate(m, s, hw, wl);
  INFO((e ? std::string() : e.status().message()));
  REQUIRE(e);
  return *e;
}

}  // namespace

TEST_CASE("workload --cfg: two passes double the step, batched doubles the activations",
          "[plan][workload]") {
  const Hardware hw = machine("h100");
  for (const char* name : {"flux1-dev", "qwen-image", "sd35-large"}) {
    INFO(name);
    const Model m = model(name);
    const Workload wl = default_workload(m);
    const Strategy resident;  // everything resident, native
    const Estimate off = estimate_with(m, resident, hw, wl, Guidance::off);
    const Estimate on = estimate_with(m, resident, hw, wl, Guidance::on);
    const Estimate batched = estimate_with(m, resident, hw, wl, Guidance::batched);
    // Two sequential passes: the same peak, twice the compute per step.
    CHECK(on.step_seconds == Approx(2 * off.step_seconds).epsilon(1e-9));
    CHECK(phase(on, Phase::denoise).vram_activations ==
          phase(off, Phase::denoise).vram_activations);
    // One pass at batch 2: twice the FLOPs, twice the activations (less the fixed 64 MiB).
    CHECK(batched.step_seconds == Approx(2 * off.step_seconds).epsilon(1e-9));
    const double act_off = static_cast<double>(phase(off, Phase::denoise).vram_activations);
    const double act_batched = static_cast<double>(phase(batched, Phase::denoise).vram_activations);
    CHECK(act_batched > 1.8 * act_off);
    CHECK(batched.vram_peak_bytes >= on.vram_peak_bytes);
    // The negative prompt is encoded only when guidance is on.
    CHECK(phase(on, Phase::encode).seconds > phase(off, Phase::encode).seconds);
  }
  // The default is the pipeline's: FLUX.1-dev is guidance-distilled (off), Qwen-Image runs true
  // CFG as two passes, SD3.5 batches.
  const Hardware h = machine("h100");
  const Strategy resident;
  const Model flux = model("flux1-dev");
  const Model qwen = model("qwen-image");
  const Model sd3 = model("sd35-large");
  CHECK(estimate_with(flux, resident, h, default_workload(flux), Guidance::model_default)
            .step_seconds ==
        estimate_with(flux, resident, h, default_workload(flux), Guidance::off).step_seconds);
  CHECK(estimate_with(qwen, resident, h, default_workload(qwen), Guidance::model_default)
            .step_seconds ==
        estimate_with(qwen, resident, h, default_workload(qwen), Guidance::on).step_seconds);
  CHECK(estimate_with(sd3, resident, h, default_workload(sd3), Guidance::model_default)
            .vram_peak_bytes ==
        estimate_with(sd3, resident, h, default_workload(sd3), Guidance::batched).vram_peak_bytes);
}

TEST_CASE("workload --images: the load is paid once, a dropped component is read again",
          "[plan][workload]") {
  const Hardware hw = machine("rtx4090");
  const Model m = model("flux1-dev");
  const Workload wl = default_workload(m);
  Strategy kept;  // nf4 transformer and T5, everything stays loaded
  for (const char* c : {"transformer", "text_encoder_2"}) {
    ComponentStrategy cs;
    cs.component = c;
    cs.storage.kind = StorageKind::quantized;
    cs.storage.quantizer = "dmem.quantizer.nf4";
    kept.components.push_back(cs);
  }
  Strategy dropping = kept;
  dropping.components[1].placement.kind = PlacementKind::dropped;

  const Estimate k1 = estimate_with(m, kept, hw, wl, Guidance::model_default, 1);
  const Estimate k8 = estimate_with(m, kept, hw, wl, Guidance::model_default, 8);
  CHECK(k1.reload_seconds == 0);
  CHECK(k1.total_seconds == Approx(k1.load_seconds + k1.image_seconds));
  CHECK(k8.total_seconds == Approx(k8.load_seconds + 8 * k8.image_seconds));
  CHECK(k8.vram_peak_bytes == k1.vram_peak_bytes);  // memory does not depend on the count

  const Estimate d1 = estimate_with(m, dropping, hw, wl, Guidance::model_default, 1);
  const Estimate d8 = estimate_with(m, dropping, hw, wl, Guidance::model_default, 8);
  CHECK(d8.reload_seconds > 0);
  CHECK(d1.total_seconds == Approx(d1.load_seconds + d1.image_seconds));
  CHECK(d8.total_seconds == Approx(d8.load_seconds + 8 * d8.image_seconds + 7 * d8.reload_seconds));
  // Dropping the encoder costs a re-read per image: over a session it falls behind keeping it.
  CHECK(d8.total_seconds - k8.total_seconds > d1.total_seconds - k1.total_seconds);

  // Plans: every total follows the same sum, so the ranking sees the session's cost.
  Workload many = wl;
  many.images = 20;
  auto report = make_plans(m, hw, many);
  REQUIRE(report);
  REQUIRE_FALSE(report->plans.empty());
  for (const auto& p : report->plans) {
    const Estimate& e = p.estimate;
    CHECK(e.total_seconds == Approx(e.load_seconds + 20 * e.image_seconds + 19 * e.reload_seconds));
  }
}

TEST_CASE("dmem plan --cfg and --images", "[plan][workload][cli]") {
  const std::string base = cli_path() + " plan flux1-dev --no-probe --gpu h100 --ram 128GiB " +
                           "--disk 500GiB --prefer speed --json";
  auto first = [&](const std::string& extra) {
    std::string out;
    REQUIRE(run_command(base + extra, &out, false) == 0);
    auto j = nlohmann::json::parse(out, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    REQUIRE_FALSE(j["plans"].empty());
    return j["plans"][0]["estimate"];
  };
  const auto off = first(" --cfg off");
  const auto on = first(" --cfg on");
  CHECK(on["step_seconds"].get<double>() > 1.9 * off["step_seconds"].get<double>());
  const auto one = first("");
  const auto ten = first(" --images 10");
  CHECK(ten["total_seconds"].get<double>() > one["total_seconds"].get<double>());
  CHECK(ten["load_seconds"].get<double>() == Approx(one["load_seconds"].get<double>()));

  std::string out;
  CHECK(run_command(base + " --cfg sometimes", &out) == 2);
  CHECK(out.find("--cfg") != std::string::npos);
  CHECK(out.find("on, off, batched") != std::string::npos);
  CHECK(run_command(base + " --images 0", &out) == 2);
  CHECK(out.find("--images") != std::string::npos);
}

TEST_CASE("SDXL's VAE decodes in fp32 when the compute dtype is fp16", "[plan][workload]") {
  const Hardware hw = machine("t4");
  const Model m = model("sdxl");
  const Workload wl = default_workload(m);
  auto with_dtype = [&](DType d) {
    Strategy s;
    for (const auto& c : m.components) {
      ComponentStrategy cs;
      cs.component = c.name;
      cs.storage.compute_dtype = d;
      s.components.push_back(cs);
    }
    auto e = estimate(m, s, hw, wl);
    REQUIRE(e);
    return *e;
  };
  const Estimate f16 = with_dtype(DType::f16);
  const Estimate bf16 = with_dtype(DType::bf16);
  const PhaseEstimate& d16 = phase(f16, Phase::decode);
  const PhaseEstimate& db = phase(bf16, Phase::decode);
  // force_upcast: fp32 activations (about twice) and the VAE's weights in fp32 for the phase.
  CHECK(static_cast<double>(d16.vram_activations) > 1.9 * static_cast<double>(db.vram_activations));
  CHECK(d16.vram_weights > db.vram_weights);
  const Component* vae = m.find("vae");
  REQUIRE(vae != nullptr);
  std::uint64_t vae_bytes = 0;
  for (const auto& t : vae->tensors) vae_bytes += t.nbytes;
  CHECK(d16.vram_weights - db.vram_weights == vae_bytes);  // fp16 weights become fp32
  // FLUX's pipeline does not upcast (its VAE config says force_upcast too).
  const Model flux = model("flux1-dev");
  Strategy s;
  ComponentStrategy cs;
  cs.component = "vae";
  cs.storage.compute_dtype = DType::f16;
  s.components.push_back(cs);
  auto e16 = estimate(flux, s, hw, default_workload(flux));
  cs.storage.compute_dtype = DType::bf16;
  s.components[0] = cs;
  auto eb = estimate(flux, s, hw, default_workload(flux));
  REQUIRE(e16);
  REQUIRE(eb);
  CHECK(phase(*e16, Phase::decode).vram_activations == phase(*eb, Phase::decode).vram_activations);
}

TEST_CASE("copies from pageable RAM never overlap compute", "[plan][workload]") {
  const Hardware hw = machine("rtx4090");
  const Model m = model("flux1-dev");
  const Workload wl = default_workload(m);
  auto streamed = [&](Tier park) {
    Strategy s;
    ComponentStrategy cs;
    cs.component = "transformer";
    cs.placement.kind = PlacementKind::group_offload;
    cs.placement.level = OffloadLevel::block;
    cs.placement.use_stream = true;
    cs.placement.park = park;
    s.components.push_back(cs);
    auto e = estimate(m, s, hw, wl);
    REQUIRE(e);
    return *e;
  };
  const Estimate pinned = streamed(Tier::pinned);
  const Estimate pageable = streamed(Tier::pageable);
  const GpuSpec& g = hw.gpus.front();
  CHECK(g.h2d_pageable_gbps <= 11.0);
  // Same bytes moved; the pinned plan hides its copies under compute, the pageable one adds them.
  CHECK(pinned.bytes_moved_per_step == pageable.bytes_moved_per_step);
  const double copy_s =
      static_cast<double>(pageable.bytes_moved_per_step) / (g.h2d_pageable_gbps * 1e9);
  CHECK(pageable.step_seconds > pinned.step_seconds + 0.9 * copy_s);
}
