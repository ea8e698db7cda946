// Internal pieces of the hardware description: transfer defaults, preset matching and the
// /proc and /sys readers (factored so tests can point them at fixture files).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dmem/hardware.hpp"

namespace dmem::detail {

/// Effective pinned host->device bandwidth for a PCIe link, GB/s (gen3 ~12, gen4 ~25, gen5 ~50
/// at x16, scaled by lanes). Pageable is about half.
[[nodiscard]] double pcie_pinned_gbps(std::uint32_t gen, std::uint32_t lanes) noexcept;
/// Fills h2d/d2h figures left at 0 from the PCIe generation and width.
void fill_transfer_defaults(GpuSpec& gpu) noexcept;
/// The preset a probed device name corresponds to ("NVIDIA GeForce RTX 4090" -> rtx4090), using
/// the memory size to tell the A100 40/80 GB apart; nullptr when none matches.
[[nodiscard]] const GpuPreset* match_preset(std::string_view device_name,
                                            std::uint64_t total_bytes) noexcept;
/// Host GEMM throughput assumed when nothing was measured: cores x 50 GFLOPS.
[[nodiscard]] double default_cpu_gflops(std::uint32_t cores) noexcept;

/// apply_calibration on the file's text (`path` only names it in errors): for tests and fuzzing.
[[nodiscard]] Status apply_calibration_text(Hardware& hardware, std::string_view text,
                                            std::string_view path) noexcept;

/// MemTotal and MemAvailable from /proc/meminfo text (kB lines); nullopt when either is missing.
struct MemInfo {
  std::uint64_t total = 0;
  std::uint64_t available = 0;
};
[[nodiscard]] std::optional<MemInfo> parse_meminfo(std::string_view text) noexcept;

/// A cgroup memory limit and the usage charged against it. `limit` is nullopt when unlimited
/// ("max" in v2, a page-rounded 2^63 in v1).
struct CgroupMemory {
  std::optional<std::uint64_t> limit;
  std::uint64_t usage = 0;
  /// Bytes still allowed: limit - usage (0 when usage exceeds it); nullopt when unlimited.
  [[nodiscard]] std::optional<std::uint64_t> room() const noexcept;
};
/// Parses the text of memory.max / memory.current (v2) or memory.limit_in_bytes /
/// memory.usage_in_bytes (v1). nullopt when the text is not a number (or "max").
[[nodiscard]] std::optional<CgroupMemory> parse_cgroup_memory(std::string_view limit_text,
                                                              std::string_view usage_text) noexcept;

/// The cgroup path of this process for the memory controller from /proc/self/cgroup text:
/// the v2 line "0::/path" or the v1 line "N:...memory...:/path"; `v2` tells which was found.
[[nodiscard]] std::optional<std::string> parse_proc_cgroup(std::string_view text,
                                                           bool& v2) noexcept;

/// Where the readers look (tests replace them with a TempDir).
struct SystemPaths {
  std::string meminfo = "/proc/meminfo";
  std::string self_cgroup = "/proc/self/cgroup";
  std::string cgroup_root = "/sys/fs/cgroup";
};

struct RamInfo {
  std::uint64_t total = 0;
  std::uint64_t available = 0;
  std::string limited_by;  ///< "", "cgroup v2 /path", "cgroup v1 /path"
};
/// MemAvailable capped by every cgroup limit on the way from this process's cgroup to the root
/// (v2: memory.max - memory.current; v1: memory.limit_in_bytes - memory.usage_in_bytes).
[[nodiscard]] std::optional<RamInfo> read_ram(const SystemPaths& paths) noexcept;

/// $DMEM_CACHE_DIR, else $XDG_CACHE_HOME/dmem, else $HOME/.cache/dmem, else /tmp/dmem-cache.
[[nodiscard]] std::string default_cache_dir() noexcept;
/// Free bytes for an unprivileged writer at `dir` (or at its nearest existing parent).
[[nodiscard]] std::optional<std::uint64_t> disk_free_at(const std::string& dir) noexcept;
/// CPUs this process may run on.
[[nodiscard]] std::uint32_t cpu_cores() noexcept;

}  // namespace dmem::detail
