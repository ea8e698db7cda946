// LLM.int8 weight rows as bitsandbytes makes them (FORMATS.md §4.1): the weight cast to f16,
// SCB[r] = max |W[r, :]| in f32, CB = round-half-even(W * (127 / SCB[r])) as int8, and back
// W ~ (CB * SCB[r]) * (1/127). Bit-identical to bitsandbytes 0.50.2's CPU path (golden:
// tests/golden/bnb_int8).
#pragma once

#include <cstdint>

namespace dmem_bnb {

/// One row of `cols` f32 values (already rounded to f16 precision, finite) to int8 codes;
/// returns SCB. An all-zero row has SCB 0 and codes 0.
float quantize_row(const float* w, std::uint64_t cols, std::int8_t* cb) noexcept;

/// One row back to f32.
void dequantize_row(const std::int8_t* cb, float scb, std::uint64_t cols, float* w) noexcept;

}  // namespace dmem_bnb
