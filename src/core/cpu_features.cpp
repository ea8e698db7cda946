#include "core/cpu_features.hpp"

#include <atomic>
#include <cstdlib>

#if DMEM_HAVE_AVX2_KERNELS
#include <cpuid.h>
#endif

namespace dmem::detail {

namespace {
// -1: no override; otherwise a CpuPath value.
std::atomic<int> g_override{-1};

CpuPath cap(CpuPath wanted) {
  return wanted == CpuPath::avx2 ? detected_cpu_path() : CpuPath::scalar;
}
}  // namespace

CpuPath detected_cpu_path() noexcept {
#if DMEM_HAVE_AVX2_KERNELS
  // "avx2" also checks that the OS saves the AVX state. clang's builtin knows no "f16c", so
  // that bit comes from CPUID leaf 1 (ECX bit 29).
  static const CpuPath path = [] {
    unsigned a = 0, b = 0, c = 0, d = 0;
    const bool f16c = __get_cpuid(1, &a, &b, &c, &d) != 0 && (c & (1u << 29)) != 0;
    return __builtin_cpu_supports("avx2") && f16c ? CpuPath::avx2 : CpuPath::scalar;
  }();
  return path;
#else
  return CpuPath::scalar;
#endif
}

std::optional<CpuPath> parse_cpu_features(std::string_view value) noexcept {
  if (value.empty() || value == "auto" || value == "avx2") return detected_cpu_path();
  if (value == "scalar") return CpuPath::scalar;
  return std::nullopt;
}

CpuPath cpu_path() noexcept {
  const int o = g_override.load(std::memory_order_relaxed);
  if (o >= 0) return static_cast<CpuPath>(o);
  static const CpuPath from_env = [] {
    const char* v = std::getenv("DMEM_CPU_FEATURES");
    // An unknown value is ignored rather than fatal: it only ever selects a slower path.
    return parse_cpu_features(v ? v : "").value_or(detected_cpu_path());
  }();
  return from_env;
}

void set_cpu_path_override(std::optional<CpuPath> path) noexcept {
  g_override.store(path ? static_cast<int>(cap(*path)) : -1, std::memory_order_relaxed);
}

}  // namespace dmem::detail
