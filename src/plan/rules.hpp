// Internal: the composition validator's rules table. Every rule is data (id, description, fix
// template) plus a check over the strategy, the capabilities of each component's storage, the
// platform facts and the model. No rule names a quantizer or offloader: rules read capability
// bitmasks (docs/rules.md).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "dmem/plan.hpp"
#include "dmem/quantizer.hpp"

namespace dmem::detail {

/// What the platform offers, gathered once before the rules run (so the rules stay pure).
struct PlatformFacts {
  bool has_gpu = false;
  bool cache_writable = false;  ///< the cache dir (or its nearest existing parent) is writable
};

/// One strategy entry with what the rules need to know about it.
struct ComponentView {
  const ComponentStrategy* strategy = nullptr;
  const Component* component = nullptr;      ///< nullptr: not in the model
  const QuantizerCaps* caps = nullptr;       ///< nullptr: native storage, or unknown quantizer
  std::uint32_t blocks = 0;                  ///< repeated blocks in the component
  const TensorInfo* prequantized = nullptr;  ///< first block-quantized tensor of the checkpoint
};

/// The component's first tensor stored block-quantized (GGUF) in the checkpoint, or nullptr.
[[nodiscard]] const TensorInfo* first_block_quant(const Component& component) noexcept;

struct RuleContext {
  const Model& model;
  const Strategy& strategy;
  const Hardware& hardware;
  const Workload& workload;
  const PlanOptions& options;
  const std::vector<QuantizerCaps>& quantizers;
  PlatformFacts platform;
  std::vector<ComponentView> views;
  const Estimate* estimate = nullptr;  ///< budget rules run only when set
};

using RuleCheck = void (*)(const RuleContext&, std::vector<Violation>&);

struct Rule {
  const char* id;
  const char* description;
  RuleCheck check;
};

/// Every rule, in reporting order (structure rules, then capabilities, platform, budgets).
[[nodiscard]] const std::vector<Rule>& rules_table() noexcept;

/// Builds the context's views and platform facts.
[[nodiscard]] RuleContext make_rule_context(const Model& model, const Strategy& strategy,
                                            const Hardware& hardware, const Workload& workload,
                                            const PlanOptions& options,
                                            const std::vector<QuantizerCaps>& quantizers);

/// How budgets are costed: estimate() in the library, a crafted one in tests.
using EstimateFn = Result<Estimate> (*)(const Model&, const Strategy&, const Hardware&,
                                        const Workload&) noexcept;

/// validate() over a given capability table (plugins' descriptions; crafted ones in tests) and
/// estimator (nullptr: budget rules are skipped).
[[nodiscard]] Result<std::vector<Violation>> validate_with(
    const Model& model, const Strategy& strategy, const Hardware& hardware,
    const Workload& workload, const PlanOptions& options,
    const std::vector<QuantizerCaps>& quantizers, EstimateFn estimator) noexcept;

/// Every budget of the context's estimate: VRAM (the tightest GPU the strategy computes on; only
/// with a GPU), RAM at load, RAM steady, pinned, disk. Empty without an estimate.
[[nodiscard]] std::vector<BudgetNeed> budget_needs(const RuleContext& ctx);

// Shared wording helpers for rule messages.
[[nodiscard]] std::string placement_kind_name(PlacementKind kind);
[[nodiscard]] std::string device_mask_text(std::uint32_t mask);
[[nodiscard]] std::string tier_mask_text(std::uint32_t mask);
/// Where a placement computes (kDeviceCpu / kDeviceCuda) and where its weights rest.
[[nodiscard]] std::uint32_t compute_devices(const Placement& p) noexcept;
[[nodiscard]] std::uint32_t rest_tiers(const Placement& p) noexcept;

}  // namespace dmem::detail
