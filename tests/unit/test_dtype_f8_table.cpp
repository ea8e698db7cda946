// 16-bit floats to fp8 go through a lookup table: it must agree with the two-step conversion
// (16-bit -> f32 -> fp8, each exact against PyTorch's goldens) for every one of the 65536 inputs.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <vector>

#include "dmem/dtype.hpp"

using namespace dmem;

TEST_CASE("bf16 and f16 to fp8 agree with the conversion through f32 for every input", "[dtype]") {
  std::vector<std::uint16_t> all(65536);
  for (std::uint32_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint16_t>(i);
  std::vector<float> wide(all.size());
  std::vector<std::uint8_t> direct(all.size());
  std::vector<std::uint8_t> via_f32(all.size());
  for (DType from : {DType::bf16, DType::f16}) {
    REQUIRE(convert(from, all.data(), DType::f32, wide.data(), all.size()).is_ok());
    for (DType to : {DType::f8_e4m3, DType::f8_e5m2}) {
      INFO(dtype_name(from) << " -> " << dtype_name(to));
      REQUIRE(convert(from, all.data(), to, direct.data(), all.size()).is_ok());
      REQUIRE(convert(DType::f32, wide.data(), to, via_f32.data(), all.size()).is_ok());
      std::size_t mismatches = 0;
      for (std::size_t i = 0; i < all.size(); ++i) mismatches += direct[i] != via_f32[i];
      CHECK(mismatches == 0);
      // Unaligned source: the table path reads 16-bit values at any address.
      std::vector<std::uint8_t> shifted(2 * all.size() + 1);
      std::memcpy(shifted.data() + 1, all.data(), 2 * all.size());
      REQUIRE(convert(from, shifted.data() + 1, to, direct.data(), all.size()).is_ok());
      mismatches = 0;
      for (std::size_t i = 0; i < all.size(); ++i) mismatches += direct[i] != via_f32[i];
      CHECK(mismatches == 0);
    }
  }
}
