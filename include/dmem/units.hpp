// Byte quantities as people write them: "24GiB", "24GB", "24G", "512MiB", "1.5 TiB".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "dmem/status.hpp"

namespace dmem {
inline namespace v1 {

/// Parses a byte quantity. Binary suffixes (KiB, MiB, GiB, TiB) are powers of 1024, decimal ones
/// (kB, MB, GB, TB) powers of 1000, and a bare letter (K, M, G, T) is binary, as in `free -h`.
/// A plain number is bytes. Case-insensitive; fractions allowed; no negatives or overflow.
[[nodiscard]] Result<std::uint64_t> parse_bytes(std::string_view text) noexcept;

/// "40.86 GB" style (decimal) or "38.05 GiB" style (binary) with `decimals` digits.
[[nodiscard]] std::string format_bytes(std::uint64_t bytes, bool binary = true, int decimals = 2);

}  // namespace v1
}  // namespace dmem
