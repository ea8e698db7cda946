// Bounds on a strategy (docs/security.md): a real pipeline has a handful of components with short
// names, so anything far larger is a mistake or hostile, and is refused before any work scales
// with it.
#pragma once

#include <cstddef>

namespace dmem::detail {

/// Strategy JSON text (rule strategy.limit.size).
inline constexpr std::size_t kMaxStrategyBytes = std::size_t{4} << 20;
/// Entries in `components` (rule strategy.limit.components); the largest pipelines have ~10.
inline constexpr std::size_t kMaxStrategyComponents = 256;
/// A component name, quantizer id or parameter value (rule strategy.limit.string).
inline constexpr std::size_t kMaxStrategyString = 256;
/// The ignored `comment` (rule strategy.limit.string).
inline constexpr std::size_t kMaxStrategyComment = std::size_t{64} << 10;

}  // namespace dmem::detail
