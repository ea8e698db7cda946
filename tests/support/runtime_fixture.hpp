// A small block-structured checkpoint and a synthetic workload over a Session, shared by the
// runtime tests: every placement must give the resident run's outputs bit for bit.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dmem/model.hpp"
#include "dmem/session.hpp"
#include "dmem/status.hpp"
#include "dmem/strategy.hpp"

namespace dmem::test {

/// Writes `path` (.safetensors) with `blocks` transformer blocks (bf16, f16 and f32 tensors,
/// linear weights with and without bias, norms) plus modules outside blocks, of about
/// `blocks` × `width`² × 6 bytes, and opens it as a one-component model named "transformer".
Model make_block_model(const std::string& path, std::uint32_t blocks = 6, std::uint32_t width = 48);

/// A strategy for the model's one component.
Strategy one_component(const Placement& placement, const Storage& storage = {});

/// The host's own memory around each linear layer (its activations): `allocate` is called with
/// the layer's activation bytes before it runs (a failure ends the workload) and `release` after.
struct WorkloadHooks {
  std::function<Status(std::uint64_t bytes)> allocate;
  std::function<void(std::uint64_t bytes)> release;
};

/// Runs `steps` passes: acquire every module in order, run each linear leaf on `tokens`
/// deterministic activations; returns a checksum of all outputs (or the first failure).
Result<std::uint64_t> run_workload(Session& session, std::uint32_t steps, std::size_t tokens = 5,
                                   const std::string& component = "transformer",
                                   const WorkloadHooks* hooks = nullptr);

}  // namespace dmem::test
