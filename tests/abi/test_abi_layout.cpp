// The plugin ABI's frozen layout: C and C++ agree on every size and offset, and the values are
// the ones documented (docs/plugin-guide.md). A change here breaks every built plugin.
#include <catch2/catch.hpp>

#include <cstddef>
#include <string>
#include <vector>

#include "abi/abi_c99.h"
#include "dmem/log.hpp"
#include "dmem/plugin/abi.h"
#include "dmem/quantizer.hpp"
#include "dmem/status.hpp"

namespace {

// Same order as dmem_abi_c99_layout in abi_c99.c, with the frozen value of each.
struct Expected {
  const char* what;
  std::size_t cpp;
  std::size_t frozen;
};
#define DMEM_TEST_SIZE(T, v)   \
  Expected {                   \
    "sizeof " #T, sizeof(T), v \
  }
#define DMEM_TEST_OFF(T, m, v)   \
  Expected {                     \
#T "." #m, offsetof(T, m), v \
  }

const std::vector<Expected>& expected_layout() {
  static const std::vector<Expected> v = {
      DMEM_TEST_SIZE(dmem_plugin_error, 24),
      DMEM_TEST_OFF(dmem_plugin_error, capacity, 4),
      DMEM_TEST_OFF(dmem_plugin_error, message, 8),
      DMEM_TEST_OFF(dmem_plugin_error, length, 16),
      DMEM_TEST_SIZE(dmem_plugin_host, 24),
      DMEM_TEST_OFF(dmem_plugin_host, abi_major, 4),
      DMEM_TEST_OFF(dmem_plugin_host, abi_minor, 6),
      DMEM_TEST_OFF(dmem_plugin_host, user, 8),
      DMEM_TEST_OFF(dmem_plugin_host, log, 16),
      DMEM_TEST_SIZE(dmem_plugin_probe_info, 32),
      DMEM_TEST_OFF(dmem_plugin_probe_info, kind, 8),
      DMEM_TEST_OFF(dmem_plugin_probe_info, id, 16),
      DMEM_TEST_OFF(dmem_plugin_probe_info, version, 24),
      DMEM_TEST_SIZE(dmem_plugin_tensor, 96),
      DMEM_TEST_OFF(dmem_plugin_tensor, dtype, 4),
      DMEM_TEST_OFF(dmem_plugin_tensor, device, 12),
      DMEM_TEST_OFF(dmem_plugin_tensor, shape, 16),
      DMEM_TEST_OFF(dmem_plugin_tensor, data, 80),
      DMEM_TEST_OFF(dmem_plugin_tensor, nbytes, 88),
      DMEM_TEST_SIZE(dmem_plugin_params, 24),
      DMEM_TEST_OFF(dmem_plugin_params, count, 4),
      DMEM_TEST_OFF(dmem_plugin_params, keys, 8),
      DMEM_TEST_OFF(dmem_plugin_params, values, 16),
      DMEM_TEST_SIZE(dmem_quantizer_caps, 72),
      DMEM_TEST_OFF(dmem_quantizer_caps, flags, 12),
      DMEM_TEST_OFF(dmem_quantizer_caps, input_dtypes, 16),
      DMEM_TEST_OFF(dmem_quantizer_caps, min_sm, 24),
      DMEM_TEST_OFF(dmem_quantizer_caps, quality_tier, 32),
      DMEM_TEST_OFF(dmem_quantizer_caps, cuda_arch_count, 36),
      DMEM_TEST_OFF(dmem_quantizer_caps, cuda_archs, 40),
      DMEM_TEST_OFF(dmem_quantizer_caps, speed_factor, 48),
      DMEM_TEST_OFF(dmem_quantizer_caps, variant, 56),
      DMEM_TEST_OFF(dmem_quantizer_caps, display, 64),
      DMEM_TEST_SIZE(dmem_quantizer_vtable, 64),
      DMEM_TEST_OFF(dmem_quantizer_vtable, create, 8),
      DMEM_TEST_OFF(dmem_quantizer_vtable, destroy, 16),
      DMEM_TEST_OFF(dmem_quantizer_vtable, caps, 24),
      DMEM_TEST_OFF(dmem_quantizer_vtable, stored_bytes, 32),
      DMEM_TEST_OFF(dmem_quantizer_vtable, quantize, 40),
      DMEM_TEST_OFF(dmem_quantizer_vtable, dequantize, 48),
      DMEM_TEST_OFF(dmem_quantizer_vtable, linear, 56),
      DMEM_TEST_SIZE(dmem_plugin_descriptor, 56),
      DMEM_TEST_OFF(dmem_plugin_descriptor, kind, 8),
      DMEM_TEST_OFF(dmem_plugin_descriptor, id, 16),
      DMEM_TEST_OFF(dmem_plugin_descriptor, display, 24),
      DMEM_TEST_OFF(dmem_plugin_descriptor, version, 32),
      DMEM_TEST_OFF(dmem_plugin_descriptor, quantizer, 40),
      DMEM_TEST_OFF(dmem_plugin_descriptor, offloader, 48),
  };
  return v;
}

}  // namespace

TEST_CASE("plugin ABI: C99 and C++ lay every struct out alike, at the frozen offsets", "[abi]") {
  const auto& expected = expected_layout();
  std::vector<std::size_t> c(expected.size() + 8, 0);
  const std::size_t n = dmem_abi_c99_layout(c.data(), c.size());
  REQUIRE(n == expected.size());  // both lists name the same fields
  for (std::size_t i = 0; i < n; ++i) {
    INFO(expected[i].what);
    CHECK(c[i] == expected[i].cpp);
    CHECK(expected[i].cpp == expected[i].frozen);
  }
}

TEST_CASE("plugin ABI: version macros and stable constants", "[abi]") {
  STATIC_REQUIRE(DMEM_PLUGIN_ABI_MAJOR == 1);
  STATIC_REQUIRE(DMEM_PLUGIN_ABI_MINOR == 0);
  // Status codes, quality tiers, log levels, devices and tiers have dmem's own values, so the
  // host maps them by value.
  using dmem::Errc;
  STATIC_REQUIRE(DMEM_PLUGIN_OK == static_cast<int>(Errc::ok));
  STATIC_REQUIRE(DMEM_PLUGIN_INVALID_ARGUMENT == static_cast<int>(Errc::invalid_argument));
  STATIC_REQUIRE(DMEM_PLUGIN_NOT_FOUND == static_cast<int>(Errc::not_found));
  STATIC_REQUIRE(DMEM_PLUGIN_IO_ERROR == static_cast<int>(Errc::io_error));
  STATIC_REQUIRE(DMEM_PLUGIN_FORMAT_ERROR == static_cast<int>(Errc::format_error));
  STATIC_REQUIRE(DMEM_PLUGIN_UNSUPPORTED == static_cast<int>(Errc::unsupported));
  STATIC_REQUIRE(DMEM_PLUGIN_LIMIT_EXCEEDED == static_cast<int>(Errc::limit_exceeded));
  STATIC_REQUIRE(DMEM_PLUGIN_OUT_OF_MEMORY == static_cast<int>(Errc::out_of_memory));
  STATIC_REQUIRE(DMEM_PLUGIN_INTERNAL == static_cast<int>(Errc::internal));
  using dmem::QualityTier;
  STATIC_REQUIRE(DMEM_PLUGIN_QUALITY_NATIVE == static_cast<unsigned>(QualityTier::native));
  STATIC_REQUIRE(DMEM_PLUGIN_QUALITY_FP8 == static_cast<unsigned>(QualityTier::fp8));
  STATIC_REQUIRE(DMEM_PLUGIN_QUALITY_INT8 == static_cast<unsigned>(QualityTier::int8));
  STATIC_REQUIRE(DMEM_PLUGIN_QUALITY_Q6 == static_cast<unsigned>(QualityTier::q6));
  STATIC_REQUIRE(DMEM_PLUGIN_QUALITY_Q5 == static_cast<unsigned>(QualityTier::q5));
  STATIC_REQUIRE(DMEM_PLUGIN_QUALITY_Q4 == static_cast<unsigned>(QualityTier::q4));
  STATIC_REQUIRE(DMEM_PLUGIN_QUALITY_Q4_LOW == static_cast<unsigned>(QualityTier::q4_low));
  STATIC_REQUIRE(DMEM_PLUGIN_QUALITY_Q3 == static_cast<unsigned>(QualityTier::q3));
  STATIC_REQUIRE(DMEM_PLUGIN_QUALITY_Q2 == static_cast<unsigned>(QualityTier::q2));
  using dmem::LogLevel;
  STATIC_REQUIRE(DMEM_PLUGIN_LOG_TRACE == static_cast<int>(LogLevel::trace));
  STATIC_REQUIRE(DMEM_PLUGIN_LOG_DEBUG == static_cast<int>(LogLevel::debug));
  STATIC_REQUIRE(DMEM_PLUGIN_LOG_INFO == static_cast<int>(LogLevel::info));
  STATIC_REQUIRE(DMEM_PLUGIN_LOG_WARN == static_cast<int>(LogLevel::warn));
  STATIC_REQUIRE(DMEM_PLUGIN_LOG_ERROR == static_cast<int>(LogLevel::error));
  // Device and tier bits equal dmem::DeviceMask and dmem::TierMask.
  STATIC_REQUIRE(DMEM_PLUGIN_DEVICE_CPU == dmem::kDeviceCpu);
  STATIC_REQUIRE(DMEM_PLUGIN_DEVICE_CUDA == dmem::kDeviceCuda);
  STATIC_REQUIRE(DMEM_PLUGIN_TIER_VRAM == dmem::kTierVram);
  STATIC_REQUIRE(DMEM_PLUGIN_TIER_PINNED == dmem::kTierPinned);
  STATIC_REQUIRE(DMEM_PLUGIN_TIER_PAGEABLE == dmem::kTierPageable);
  STATIC_REQUIRE(DMEM_PLUGIN_TIER_DISK == dmem::kTierDisk);
  STATIC_REQUIRE(DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_F32) == 2u);
  STATIC_REQUIRE(DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_I64) == 2048u);
  CHECK(std::string(DMEM_PLUGIN_PROBE_SYMBOL) == "dmem_plugin_probe");
  CHECK(std::string(DMEM_PLUGIN_ENTRY_SYMBOL) == "dmem_plugin_entry");
}
