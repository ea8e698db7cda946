// `dmem run`: executes a plan through a Session with a synthetic denoising workload (real weights,
// or generated ones in a scaled-down copy of the model), then prints the plan's estimate beside
// what was measured, per store and per step.
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/command_plugins.hpp"
#include "cli/commands.hpp"
#include "cli/machine_flags.hpp"
#include "cli/output.hpp"
#include "cli/plan_render.hpp"
#include "cli/progress_bar.hpp"
#include "cli/table.hpp"
#include "dmem/model.hpp"
#include "dmem/plan.hpp"
#include "dmem/plugin_registry.hpp"
#include "dmem/session.hpp"
#include "dmem/synthetic.hpp"
#include "dmem/units.hpp"
#include "format/file_io.hpp"
#include "plan/activations.hpp"
#include "plan/estimator.hpp"

namespace dmem::cli {
namespace {

constexpr const char* kHelp =
    R"(usage: dmem run <model> [--plan N | --strategy s.json] [--device cpu|cuda] [--steps N]
                [--scale-down F] [--tokens N] [--io-threads N] [--direct-io]
                [--headroom SIZE] [--trace t.json] [--json] [machine flags]

Loads the model by a plan and runs a synthetic denoising workload through a Session: every
block of the encoders, the denoiser (each step, once per guidance pass) and the VAE is acquired
in execution order and its linear layers run on activations of the workload's token count. Then
the plan's estimate is printed beside the measured peak of every store and the seconds per step.
Catalog models have no weights: --scale-down F writes a temporary copy with generated weights,
hidden sizes, layer counts and token counts divided by F (docs/runtime.md). On the CPU device the
plan's GPU is played by a device arena whose budget is the plan's VRAM peak. --headroom SIZE
keeps SIZE of the device free for other programs while it runs (docs/budgets.md; on the CPU
device, of the system's available RAM).
Exit status: 0 ran, 1 the plan does not fit (no viable plan, or a budget was hit), 2 bad input.)";

int fail(const std::string& what, int status = kExitBadInput) {
  return cli::fail("run", what, status);
}

Status flag_error(const std::string& flag, const std::string& value, const char* want) {
  return Status(Errc::invalid_argument, flag + ": '" + value + "' is not " + want)
      .with_rule("cli.flag")
      .with_hint("e.g. " + flag + " 4");
}

bool parse_uint(const std::string& text, std::uint64_t& out) {
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && p == text.data() + text.size();
}

// A private folder for the generated checkpoint, removed on every exit path.
struct ScratchDir {
  std::string path;
  ~ScratchDir() {
    if (!path.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  }
};

struct PhaseRun {
  std::string phase;
  std::string component;
  std::uint32_t repeats = 1;
  std::uint32_t passes = 1;
  std::uint64_t tokens = 0;
  double seconds = 0;
};

// Activations: host vectors, mirrored in device buffers when the session computes on CUDA.
struct Activations {
  std::vector<float> x;
  std::vector<float> y;
  void* dx = nullptr;
  void* dy = nullptr;
  std::uint64_t dx_bytes = 0;
  std::uint64_t dy_bytes = 0;
  // Replaces a device buffer by one of `bytes` (the old contents are not kept).
  static Status grow(Session& s, void*& buffer, std::uint64_t& size, std::uint64_t bytes) {
    s.release_buffer(buffer, size);
    buffer = nullptr;
    size = 0;
    auto fresh = s.allocate_buffer(bytes);
    if (!fresh) return fresh.status();
    buffer = *fresh;
    size = bytes;
    return Status::ok();
  }
  void release(Session& s) {
    s.release_buffer(dx, dx_bytes);
    s.release_buffer(dy, dy_bytes);
    dx = dy = nullptr;
    dx_bytes = dy_bytes = 0;
  }
};

// One forward pass: acquire each unit in order and run its linear leaves.
Status forward(Session& session, const std::string& component, std::uint64_t tokens,
               Activations& act) {
  for (const std::string& module : session.modules(component)) {
    auto handle = session.acquire(component, module);
    if (!handle) return handle.status();
    for (const TensorView& t : handle->tensors()) {
      const std::string& name = *t.name;
      if (t.shape->size() != 2 || name.size() <= 7 ||
          name.compare(name.size() - 7, 7, ".weight") != 0)
        continue;
      const std::uint64_t out = (*t.shape)[0];
      const std::uint64_t in = (*t.shape)[1];
      const DTypeInfo& info = dtype_info(t.dtype);
      if (in % info.block_elems != 0) continue;  // e.g. an embedding table stored by rows
      bool grown = false;
      if (act.x.size() < tokens * in) {
        const std::size_t old = act.x.size();
        act.x.resize(tokens * in);
        for (std::size_t i = old; i < act.x.size(); ++i)
          act.x[i] = static_cast<float>((i * 2654435761u) % 2001) / 1000.0f - 1.0f;
        grown = true;
      }
      if (act.y.size() < tokens * out) act.y.resize(tokens * out);
      const std::string leaf = name.substr(0, name.size() - 7);
      if (t.device == DeviceKind::cpu) {
        DMEM_TRY(session.linear(*handle, leaf, act.x.data(), tokens, act.y.data()));
        continue;
      }
      if (grown || act.dx_bytes < act.x.size() * 4) {
        DMEM_TRY(act.grow(session, act.dx, act.dx_bytes, act.x.size() * 4));
        DMEM_TRY(session.upload(act.dx, act.x.data(), act.dx_bytes));
      }
      if (act.dy_bytes < act.y.size() * 4)
        DMEM_TRY(act.grow(session, act.dy, act.dy_bytes, act.y.size() * 4));
      DMEM_TRY(session.linear(*handle, leaf, static_cast<const float*>(act.dx), tokens,
                              static_cast<float*>(act.dy)));
    }
  }
  session.finish(component);
  return Status::ok();
}

// A text progress bar on stderr when it is a terminal and the load takes over a second.
void draw_progress(const LoadProgress& p) {
  static ProgressBar bar("loading");
  bar.update(p.bytes_done, p.bytes_total, p.seconds, p.bytes_per_second, p.eta_seconds);
}

// The runtime drives one device, and quantized storage needs its plugin with CPU kernels.
bool runnable(const Strategy& s, const PluginRegistry& plugins) {
  return std::all_of(s.components.begin(), s.components.end(), [&](const ComponentStrategy& c) {
    if (c.placement.gpu != 0) return false;
    if (c.storage.kind != StorageKind::quantized) return true;
    const PluginInfo* p = plugins.find(c.storage.quantizer);
    return p != nullptr && (p->caps.exec_devices & kDeviceCpu) != 0;
  });
}

}  // namespace

int run_run(const Args& args) {
  po::options_description desc("flags");
  desc.add_options()("help,h", "this text")("model", po::value<std::string>(),
                                            "catalog name or checkpoint path")(
      "plan", po::value<std::string>(), "run plan N of `dmem plan` (default: the best runnable)")(
      "strategy", po::value<std::string>(), "run the strategy in this JSON file")(
      "device", po::value<std::string>(), "cpu (default) or cuda")(
      "scale-down", po::value<std::string>(), "run a copy scaled down by F with generated weights")(
      "tokens", po::value<std::string>(), "denoiser tokens per pass (default: from the workload)")(
      "io-threads", po::value<std::string>(), "loader threads (default 2)")(
      "direct-io", po::bool_switch(), "read checkpoints with O_DIRECT (bypass the page cache)")(
      "headroom", po::value<std::string>(), "keep SIZE of the device free for other programs")(
      "trace", po::value<std::string>(), "write the timeline as Chrome trace JSON to FILE")(
      "json", po::bool_switch(), "print the result as JSON");
  add_machine_options(desc);
  po::variables_map vm;
  bool help_shown = false;
  if (Status s = parse_command(args, desc, "model", kHelp, vm, help_shown); !s)
    return fail(s.to_string());
  if (help_shown) return kExitOk;
  if (!vm.count("model"))
    return fail(Status(Errc::invalid_argument, "no model given")
                    .with_rule("cli.flag")
                    .with_hint("dmem run <model> [--scale-down 16]")
                    .to_string());
  if (vm.count("plan") && vm.count("strategy"))
    return fail(Status(Errc::invalid_argument, "--plan and --strategy both given")
                    .with_rule("cli.flag")
                    .with_hint("give one of them")
                    .to_string());
  SessionOptions options;
  if (vm.count("device")) {
    const std::string d = vm["device"].as<std::string>();
    if (d == "cuda") {
      options.device = DeviceKind::cuda;
    } else if (d != "cpu") {
      return fail(flag_error("--device", d, "cpu or cuda").with_hint("--device cpu").to_string());
    }
  }
  if (vm.count("io-threads")) {
    std::uint64_t n = 0;
    const std::string t = vm["io-threads"].as<std::string>();
    if (!parse_uint(t, n) || n == 0 || n > 64)
      return fail(flag_error("--io-threads", t, "a whole number from 1 to 64").to_string());
    options.io_threads = static_cast<std::uint32_t>(n);
  }
  options.direct_io = vm["direct-io"].as<bool>();
  if (vm.count("headroom")) {
    const std::string t = vm["headroom"].as<std::string>();
    auto bytes = parse_bytes(t);
    if (!bytes || *bytes == 0)
      return fail(flag_error("--headroom", t, "a size such as 2GiB")
                      .with_hint("--headroom 2GiB")
                      .to_string());
    options.headroom = *bytes;
  }
  double factor = 1;
  if (vm.count("scale-down")) {
    const std::string t = vm["scale-down"].as<std::string>();
    char* end = nullptr;
    factor = std::strtod(t.c_str(), &end);
    if (t.empty() || end != t.c_str() + t.size() || !std::isfinite(factor) || factor < 1 ||
        factor > kScaleDownMaxFactor)
      return fail(flag_error("--scale-down", t, "a number from 1 to 1e6").to_string());
  }
  std::uint64_t tokens_flag = 0;
  if (vm.count("tokens")) {
    const std::string t = vm["tokens"].as<std::string>();
    if (!parse_uint(t, tokens_flag) || tokens_flag == 0 || tokens_flag > (1u << 24))
      return fail(flag_error("--tokens", t, "a whole number from 1 to 16777216").to_string());
  }
  std::string trace_path;
  if (vm.count("trace")) {
    trace_path = vm["trace"].as<std::string>();
    if (Status s = detail::check_write_target(trace_path); !s) return fail(s.to_string());
    options.trace = true;
  }

  auto opened = open_model(vm["model"].as<std::string>());
  if (!opened) return fail(opened.status().to_string());
  Model model = std::move(opened.value());
  const std::string display = model.name;
  ScratchDir scratch;
  if (vm.count("scale-down")) {
    ScaleDown sd;
    sd.factor = factor;
    auto scaled = scale_down(model, sd);
    if (!scaled) return fail(scaled.status().to_string());
    const char* tmp = std::getenv("TMPDIR");
    std::string base = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
    base += "/dmem-run-XXXXXX";
    std::vector<char> buf(base.begin(), base.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr)
      return fail(detail::os_error("create a scratch folder in", base, errno).to_string());
    scratch.path = buf.data();
    auto written = write_synthetic_model(*scaled, scratch.path + "/model", 1);
    if (!written) return fail(written.status().to_string());
    auto reopened = open_model(*written);
    if (!reopened) return fail(reopened.status().to_string());
    model = std::move(reopened.value());
  }

  for (const Component& c : model.components) {
    if (!c.tensors.empty() && c.files.empty()) {
      return fail(Status(Errc::invalid_argument,
                         "'" + display +
                             "' has no weights on disk (a built-in catalog model is "
                             "headers only)")
                      .with_rule("runtime.no_files")
                      .with_hint("add --scale-down 16 to run a scaled-down copy with generated "
                                 "weights, or give a checkpoint path")
                      .to_string());
    }
  }
  auto machine = read_machine_options(vm, default_workload(model));
  if (!machine) return fail(machine.status().to_string());
  // Quantized storage finds its quantizer here (dmem plugins lists it), and the planner offers
  // what these plugins describe.
  const CommandPlugins found;
  const PluginRegistry& plugins = found.registry();
  options.plugins = &plugins;
  machine->options.plugins = found.for_planner();
  Strategy strategy;
  std::string plan_label;
  if (vm.count("strategy")) {
    const std::string path = vm["strategy"].as<std::string>();
    auto text = detail::read_small_file(path, 4u << 20);
    if (!text) return fail(text.status().to_string());
    auto parsed = strategy_from_json(*text);
    if (!parsed) return fail(Status(parsed.status()).with_file(path).to_string());
    strategy = std::move(parsed.value());
    auto violations =
        validate(model, strategy, machine->hardware, machine->workload, machine->options);
    if (!violations) return fail(violations.status().to_string());
    if (!violations->empty()) {
      std::string text_out = "the strategy breaks " + std::to_string(violations->size()) +
                             " rule(s); `dmem validate` explains each:\n";
      for (const Violation& v : *violations)
        text_out += "  " + v.rule + " " + v.component + ": " + v.message + "\n";
      std::fputs(text_out.c_str(), stderr);
      return kExitNegative;
    }
    plan_label = "strategy " + path;
  } else {
    auto report = make_plans(model, machine->hardware, machine->workload, machine->options);
    if (!report) return fail(report.status().to_string());
    if (report->plans.empty()) {
      // What blocks every candidate, and the closest plan with the flags that would run it.
      if (!vm["json"].as<bool>()) std::fputs(render_no_plan(model, *report).c_str(), stderr);
      return fail(Status(Errc::out_of_memory, "no viable plan for this machine")
                      .with_rule("run.no_plan")
                      .with_hint("`dmem plan` lists what was rejected and why")
                      .to_string(),
                  kExitNegative);
    }
    const Plan* chosen = nullptr;
    if (vm.count("plan")) {
      const std::string id = vm["plan"].as<std::string>();
      for (const Plan& p : report->plans)
        if (p.id == id) chosen = &p;
      if (chosen == nullptr)
        return fail(flag_error("--plan", id, "a plan id")
                        .with_hint("1 to " + std::to_string(report->plans.size()) +
                                   " (the # column of dmem plan with the same flags)")
                        .to_string());
      if (!runnable(chosen->strategy, plugins))
        return fail(Status(Errc::unsupported,
                           "plan " + id + " (" + strategy_summary(chosen->strategy) +
                               ") needs a quantizer plugin with CPU kernels that was not found, "
                               "or a second GPU, which the runtime does not drive yet")
                        .with_rule("run.plan")
                        .with_hint("`dmem plugins` lists the quantizers found; or run another "
                                   "plan")
                        .to_string());
    } else {
      for (const Plan& p : report->plans) {
        if (runnable(p.strategy, plugins)) {
          chosen = &p;
          break;
        }
      }
      if (chosen == nullptr)
        return fail(Status(Errc::unsupported,
                           "every viable plan needs a quantizer plugin that was not found")
                        .with_rule("run.plan")
                        .with_hint("give more memory (--vram/--ram) or --strategy")
                        .to_string(),
                    kExitNegative);
    }
    strategy = chosen->strategy;
    plan_label = "plan " + chosen->id;
  }
  auto est = estimate(model, strategy, machine->hardware, machine->workload);
  if (!est) return fail(est.status().to_string());
  // The plan's GPU is played by the device arena: its budget is the plan's VRAM peak.
  if (!machine->hardware.gpus.empty()) options.device_budget = est->vram_peak_bytes;
  options.progress = draw_progress;
  // An allocation that fails with nothing idle left moves the run to a plan that fits the
  // memory free then (docs/budgets.md), rather than ending it.
  if (!machine->hardware.gpus.empty()) {
    options.replan = ReplanOptions{machine->hardware, machine->workload, machine->options};
    options.on_replan = [](const ReplanEvent& e) {
      std::string line = "dmem run: re-planned to ";
      line += strategy_summary(*e.new_plan);
      line += " (";
      line += e.reason;
      line += ")\n";
      std::fputs(line.c_str(), stderr);
    };
  }
  // Only a folder the user named keeps a persistent cache of transformed disk-tier weights (not
  // for a scaled-down copy: its checkpoint is written anew, so its cache could never be reused).
  if (vm.count("cache-dir") && factor == 1) options.cache_dir = machine->hardware.cache_dir;

  auto session = Session::open(model, strategy, options);
  if (!session && options.device == DeviceKind::cuda &&
      session.status().rule() == "runtime.device") {
    // No usable GPU: say why, and let the CPU device serve.
    std::fprintf(stderr, "dmem run: %s; running on the CPU device\n",
                 session.status().message().c_str());
    options.device = DeviceKind::cpu;
    session = Session::open(model, strategy, options);
  }
  if (!session) {
    const bool budget = session.status().code() == Errc::out_of_memory;
    return fail(session.status().to_string(), budget ? kExitNegative : kExitBadInput);
  }
  session->trace_info("estimate.device", static_cast<double>(est->vram_peak_bytes));
  session->trace_info("estimate.pinned", static_cast<double>(est->pinned_bytes));
  session->trace_info("estimate.pageable", static_cast<double>(est->ram_peak_bytes));
  session->trace_info("estimate.disk", static_cast<double>(est->disk_bytes));
  session->trace_info("estimate.step_seconds", est->step_seconds);
  // The estimate is for the workload's tokens; a scaled-down run computes `factor` times fewer.
  if (factor != 1) session->trace_info("run.scale_down", factor);
  // The compute figures the estimate used, for dmem calibrate --from-trace.
  session->trace_info("plan.cpu_gflops", machine->hardware.cpu_gflops);
  if (!machine->hardware.gpus.empty())
    session->trace_info("plan.bf16_tflops", machine->hardware.gpus.front().bf16_tflops);
  session->trace_info("plan.activation_scale", machine->hardware.activation_scale);
  // Only the linear layers' inputs and outputs are allocated, not a real pipeline's attention
  // and feature maps: dmem calibrate --from-trace never lowers activation_scale from such a run.
  session->trace_info("run.synthetic_activations", 1);

  // Phases in pipeline order; token counts follow the workload (divided by the scale factor).
  std::uint32_t steps = machine->workload.steps;
  if (!vm.count("steps")) steps = 3;
  const auto scaled_tokens = [&](std::uint64_t t, std::uint64_t floor) {
    return std::max<std::uint64_t>(
        floor, static_cast<std::uint64_t>(std::ceil(static_cast<double>(t) / factor)));
  };
  const Component* denoiser = nullptr;
  for (const Component& c : model.components)
    if (c.role == Role::denoiser && strategy.find(c.name) != nullptr) denoiser = &c;
  std::vector<PhaseRun> phases;
  for (Role role : {Role::text_encoder, Role::denoiser, Role::vae}) {
    for (const Component& c : model.components) {
      if (c.role != role || strategy.find(c.name) == nullptr) continue;
      PhaseRun run;
      run.component = c.name;
      if (role == Role::text_encoder) {
        run.phase = "encode";
        run.tokens = scaled_tokens(detail::text_encoder_tokens(c.arch, false), 8);
      } else if (role == Role::denoiser) {
        run.phase = "denoise";
        const auto guidance = detail::guidance_shape(c.arch, machine->workload.cfg);
        const auto tokens = detail::denoiser_tokens(c.arch, machine->workload, false);
        run.repeats = steps;
        run.passes = guidance.passes;
        run.tokens =
            tokens_flag != 0 ? tokens_flag : scaled_tokens(tokens.total * guidance.batch, 16);
      } else {
        run.phase = "decode";
        const auto latent =
            detail::latent_size(denoiser != nullptr ? denoiser->arch : c.arch, machine->workload);
        run.tokens = scaled_tokens(latent.h * latent.w * latent.frames, 16);
      }
      phases.push_back(run);
    }
  }
  // Per phase, the plan's estimate beside the "phase" spans (dmem report; docs/runtime.md). The
  // denoise phase is estimated for the steps this run runs, not the workload's.
  const double wl_steps = std::max<std::uint32_t>(1, machine->workload.steps);
  for (const PhaseEstimate& pe : est->phases) {
    if (pe.phase == Phase::load) continue;
    std::string key = "estimate.phase.";
    key += detail::phase_name(pe.phase);
    double secs = pe.seconds;
    if (pe.phase == Phase::denoise)
      secs = std::max(0.0, secs - est->step_seconds * wl_steps) + est->step_seconds * steps;
    session->trace_info(key + ".seconds", secs);
    session->trace_info(key + ".device", static_cast<double>(pe.vram_peak));
    session->trace_info(key + ".weights", static_cast<double>(pe.vram_weights));
    session->trace_info(key + ".activations", static_cast<double>(pe.vram_activations));
    session->trace_info(key + ".pinned", static_cast<double>(pe.ram_pinned));
    session->trace_info(key + ".pageable", static_cast<double>(pe.ram_pageable));
  }
  Activations act;
  std::vector<double> step_seconds;
  std::uint64_t denoise_bytes = 0;
  std::string open_phase;
  for (PhaseRun& run : phases) {
    if (run.phase != open_phase) session->begin_phase(run.phase);
    open_phase = run.phase;
    const auto t0 = std::chrono::steady_clock::now();
    const std::uint64_t moved_before = session->stats().bytes_to_device;
    for (std::uint32_t r = 0; r < run.repeats; ++r) {
      const auto s0 = std::chrono::steady_clock::now();
      if (run.phase == "denoise") session->begin_step(r);
      for (std::uint32_t p = 0; p < run.passes; ++p) {
        if (Status s = forward(*session, run.component, run.tokens, act); !s) {
          act.release(*session);
          return fail(s.to_string(),
                      s.code() == Errc::out_of_memory ? kExitNegative : kExitInternal);
        }
      }
      if (run.phase == "denoise") {
        session->end_step();
        step_seconds.push_back(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count());
      }
    }
    run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (run.phase == "denoise") denoise_bytes += session->stats().bytes_to_device - moved_before;
  }
  session->end_phase();
  act.release(*session);
  if (!trace_path.empty()) {
    if (Status s = session->write_trace(trace_path); !s) return fail(s.to_string());
  }

  const SessionStats st = session->stats();
  // Steady steps: the first records the execution order and warms the caches.
  double measured_step = 0;
  if (!step_seconds.empty()) {
    const std::size_t first = step_seconds.size() > 1 ? 1 : 0;
    for (std::size_t i = first; i < step_seconds.size(); ++i) measured_step += step_seconds[i];
    measured_step /= static_cast<double>(step_seconds.size() - first);
  }
  const std::uint64_t per_step = steps == 0 ? 0 : denoise_bytes / steps;
  struct Row {
    const char* store;
    std::uint64_t estimate;
    StoreStats stats;
  };
  const Row rows[] = {{"device", est->vram_peak_bytes, st.device},
                      {"pinned", est->pinned_bytes, st.pinned},
                      {"pageable", est->ram_peak_bytes, st.pageable},
                      {"disk", est->disk_bytes, st.disk}};
  if (vm["json"].as<bool>()) {
    nlohmann::json j;
    j["model"] = display;
    j["scale_down"] = factor;
    j["plan"] = plan_label;
    j["strategy"] = strategy_summary(strategy);
    j["device"] = session->device() == DeviceKind::cuda ? "cuda" : "cpu";
    j["linear"] = session->linear_backend();
    j["load"] = {{"bytes", st.load_bytes},
                 {"seconds", st.load_seconds},
                 {"staging_peak", st.staging_peak},
                 {"direct_io", st.direct_io},
                 {"cache_reused", st.cache_reused}};
    for (const Row& r : rows) {
      j["stores"][r.store] = {{"estimate", r.estimate},
                              {"peak", r.stats.peak},
                              {"budget", r.stats.budget},
                              {"in_use", r.stats.in_use}};
    }
    for (const PhaseRun& p : phases) {
      j["phases"].push_back({{"phase", p.phase},
                             {"component", p.component},
                             {"repeats", p.repeats},
                             {"passes", p.passes},
                             {"tokens", p.tokens},
                             {"seconds", p.seconds}});
    }
    j["step_seconds"] = {{"estimate", est->step_seconds}, {"measured", measured_step}};
    j["moves"] = {{"bytes_to_device", st.bytes_to_device},
                  {"copies_to_device", st.copies_to_device},
                  {"copies_to_host", st.copies_to_host},
                  {"bytes_to_device_per_step", per_step},
                  {"stalls", st.stalls},
                  {"stall_seconds", st.stall_seconds},
                  {"prefetch_hits", st.prefetch_hits},
                  {"evictions", st.evictions},
                  {"pin_calls", st.pin_calls},
                  {"disk_reads", st.disk_reads}};
    j["pressure"] = {{"headroom", options.headroom},
                     {"headroom_shrinks", st.headroom_shrinks},
                     {"headroom_overruns", st.headroom_overruns},
                     {"alloc_retries", st.alloc_retries},
                     {"replans", st.replans},
                     {"trimmed_bytes", st.trimmed_bytes}};
    print_json(j);
    return kExitOk;
  }
  std::string out;
  out += display;
  if (factor != 1)
    out += " (scaled down ×" + format_count(static_cast<std::uint64_t>(factor)) + ")";
  out += " · " + plan_label + ": " + strategy_summary(strategy) + " · device ";
  out += session->device() == DeviceKind::cuda ? "cuda" : "cpu";
  out += " (linear layers: ";
  out += session->linear_backend();
  out += ")\n";
  char line[256];
  std::snprintf(
      line, sizeof line, "load      %s in %.2f s (%s/s), staging peak %s%s\n",
      format_bytes(st.load_bytes).c_str(), st.load_seconds,
      format_bytes(st.load_seconds > 0 ? static_cast<std::uint64_t>(
                                             static_cast<double>(st.load_bytes) / st.load_seconds)
                                       : 0)
          .c_str(),
      format_bytes(st.staging_peak).c_str(),
      st.cache_reused ? (st.direct_io ? ", direct I/O, cache reused" : ", cache reused")
                      : (st.direct_io ? ", direct I/O" : ""));
  out += line;
  out += "phase     component        runs    tokens   seconds\n";
  for (const PhaseRun& p : phases) {
    std::snprintf(line, sizeof line, "%-9s %-16s %-7s %-8llu %.3f\n", p.phase.c_str(),
                  p.component.c_str(),
                  (std::to_string(p.repeats) + "x" + std::to_string(p.passes)).c_str(),
                  static_cast<unsigned long long>(p.tokens), p.seconds);
    out += line;
  }
  out += "store     estimate     measured peak  budget\n";
  for (const Row& r : rows) {
    std::snprintf(line, sizeof line, "%-9s %-12s %-14s %s\n", r.store,
                  format_bytes(r.estimate).c_str(), format_bytes(r.stats.peak).c_str(),
                  r.stats.budget == 0 ? "-" : format_bytes(r.stats.budget).c_str());
    out += line;
  }
  std::snprintf(
      line, sizeof line, "s/step    estimate %.3f (the plan's device) · measured %.3f (%s)\n",
      est->step_seconds, measured_step, session->device() == DeviceKind::cuda ? "cuda" : "cpu");
  out += line;
  std::snprintf(line, sizeof line,
                "moves     %s to the device per step · %llu copies back to the host · %llu "
                "stalls (%.3f s) · %llu prefetch hits · %llu evictions\n",
                format_bytes(per_step).c_str(), static_cast<unsigned long long>(st.copies_to_host),
                static_cast<unsigned long long>(st.stalls), st.stall_seconds,
                static_cast<unsigned long long>(st.prefetch_hits),
                static_cast<unsigned long long>(st.evictions));
  out += line;
  if (options.headroom != 0 || st.alloc_retries != 0) {
    std::snprintf(line, sizeof line,
                  "pressure  headroom %s: %llu shrinks (%s given back), %llu loads past it · %llu "
                  "allocations retried\n",
                  options.headroom == 0 ? "off" : format_bytes(options.headroom).c_str(),
                  static_cast<unsigned long long>(st.headroom_shrinks),
                  format_bytes(st.trimmed_bytes).c_str(),
                  static_cast<unsigned long long>(st.headroom_overruns),
                  static_cast<unsigned long long>(st.alloc_retries));
    out += line;
  }
  if (!trace_path.empty()) out += "trace     " + trace_path + " (dmem report " + trace_path + ")\n";
  print_text(out);
  return kExitOk;
}

}  // namespace dmem::cli
