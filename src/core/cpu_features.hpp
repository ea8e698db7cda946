// Which CPU code path the conversion and dequantization kernels take, chosen once at run time.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

// AVX2 kernels are compiled (as target-attributed functions, so the rest of the library keeps the
// baseline ISA) on x86-64 with gcc or clang. No "fma" in the target: the compiler could then fuse
// a * b - c, and the results would no longer match the scalar path and ggml's reference.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DMEM_HAVE_AVX2_KERNELS 1
#define DMEM_TARGET_AVX2 __attribute__((target("avx2,f16c")))
#else
#define DMEM_HAVE_AVX2_KERNELS 0
#endif

namespace dmem::detail {

enum class CpuPath : std::uint8_t { scalar, avx2 };

/// The fastest path this CPU and build support (AVX2 + F16C on x86-64 with gcc or clang).
[[nodiscard]] CpuPath detected_cpu_path() noexcept;

/// What DMEM_CPU_FEATURES asks for: "scalar" forces the portable code, "auto", "avx2" or empty
/// take the detected path (a path the CPU lacks is never chosen); nullopt for anything else.
[[nodiscard]] std::optional<CpuPath> parse_cpu_features(std::string_view value) noexcept;

/// The path in use: DMEM_CPU_FEATURES (read once) capped by detection, unless a test overrides it.
[[nodiscard]] CpuPath cpu_path() noexcept;

/// Tests run both paths in one process; the override is capped by detection too.
void set_cpu_path_override(std::optional<CpuPath> path) noexcept;

}  // namespace dmem::detail
