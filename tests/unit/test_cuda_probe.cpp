#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <string>

#include "backend/cuda/cuda_probe.hpp"

using namespace dmem;

namespace {
// [cuda] tests print this marker and return when there is nothing to run on; CTest turns the
// marker into "skipped" (SKIP_REGULAR_EXPRESSION in tests/CMakeLists.txt).
bool skip_without_gpu() {
  std::string why;
  if (!detail::cuda_compiled() || detail::cuda_devices(&why).empty()) {
    std::printf("DMEM_SKIP: no CUDA device (%s)\n", why.c_str());
    return true;
  }
  return false;
}
}  // namespace

TEST_CASE("CPU builds and GPU-less machines report no CUDA device", "[cuda_probe]") {
  std::string why;
  auto devices = detail::cuda_devices(&why);
  if (devices.empty()) CHECK_FALSE(why.empty());
  if (!detail::cuda_compiled()) CHECK(detail::cuda_running_arch(0) == -1);
}

TEST_CASE("CUDA probe reports memory and compute capability", "[cuda]") {
  if (skip_without_gpu()) return;
  for (const auto& d : detail::cuda_devices()) {
    INFO(d.name);
    CHECK(d.cc_major >= 7);
    CHECK(d.total_bytes > (1ull << 30));
    CHECK(d.free_bytes > 0);
    CHECK(d.free_bytes <= d.total_bytes);
  }
}

TEST_CASE("a kernel runs from this build's architectures", "[cuda]") {
  if (skip_without_gpu()) return;
  const auto dev = detail::cuda_devices().front();
  const int arch = detail::cuda_running_arch(dev.index);
  INFO("device sm_" << dev.cc_major << dev.cc_minor << " ran __CUDA_ARCH__ " << arch);
  REQUIRE(arch > 0);
  const auto archs = detail::cuda_compiled_archs();
  CHECK(std::find(archs.begin(), archs.end(), arch / 10) != archs.end());
  CHECK(arch / 10 <= dev.cc_major * 10 + dev.cc_minor);
}

TEST_CASE("the build reports every CUDA architecture it was configured with", "[cuda_probe]") {
  // DMEM_TEST_CUDA_ARCHS is CMake's list reduced to numbers ("75,80,...", empty for CPU builds).
  std::string expected;
  for (int a : detail::cuda_compiled_archs()) {
    if (!expected.empty()) expected += ',';
    expected += std::to_string(a);
  }
  CHECK(expected == DMEM_TEST_CUDA_ARCHS);
  CHECK(detail::cuda_compiled() == !expected.empty());
}
