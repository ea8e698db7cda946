// Reference quantizers of the GGML k-quant blocks (q4_k, q5_k, q6_k), written from the format
// facts (FORMATS.md §2.6): the same search and the same float operations in the same order as
// ggml's quantize_row_q*_K_ref, so the bytes are identical (golden: tests/golden/gguf_plugin).
#pragma once

#include <cstdint>

namespace dmem_gguf {

/// One block of 256 finite values to 144 bytes (d, dmin, scales[12], qs[128]).
void quantize_block_q4_k(const float* x, std::uint8_t* block) noexcept;
/// One block of 256 finite values to 176 bytes (d, dmin, scales[12], qh[32], qs[128]).
void quantize_block_q5_k(const float* x, std::uint8_t* block) noexcept;
/// One block of 256 finite values to 210 bytes (ql[128], qh[64], scales[16], d).
void quantize_block_q6_k(const float* x, std::uint8_t* block) noexcept;

}  // namespace dmem_gguf
