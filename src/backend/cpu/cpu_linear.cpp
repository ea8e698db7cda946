#include "backend/cpu/cpu_linear.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "dmem/block_quant.hpp"

#if DMEM_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace dmem::detail {
namespace {

// f32 tile of W rows: big enough for sgemm to run near peak, small enough to stay in L2.
constexpr std::uint64_t kTileBytes = 512u << 10;

Status convert_rows(const LinearArgs& a, std::uint64_t row, std::uint64_t rows, float* dst) {
  const DTypeInfo& info = dtype_info(a.weight_dtype);
  const std::uint64_t count = rows * a.in;
  const std::uint64_t first = row * a.in;
  if (first % info.block_elems != 0 || count % info.block_elems != 0) {
    return Status(Errc::unsupported, "a weight row of " + std::to_string(a.in) +
                                         " values is not a whole number of " +
                                         std::string(info.name) + " blocks")
        .with_rule("runtime.linear.shape");
  }
  const auto* src =
      static_cast<const unsigned char*>(a.weight) + first / info.block_elems * info.block_bytes;
  if (info.is_block_quant) return dequantize(a.weight_dtype, src, dst, count);
  return convert(a.weight_dtype, src, DType::f32, dst, count);
}

void gemm_tile(const float* x, std::size_t tokens, std::uint64_t in, const float* w,
               std::uint64_t rows, float* y, std::uint64_t ldy) {
#if DMEM_HAVE_OPENBLAS
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(tokens),
              static_cast<int>(rows), static_cast<int>(in), 1.0f, x, static_cast<int>(in), w,
              static_cast<int>(in), 0.0f, y, static_cast<int>(ldy));
#else
  for (std::size_t t = 0; t < tokens; ++t) {
    for (std::uint64_t r = 0; r < rows; ++r) {
      float sum = 0;
      for (std::uint64_t k = 0; k < in; ++k) sum += x[t * in + k] * w[r * in + k];
      y[t * ldy + r] = sum;
    }
  }
#endif
}

}  // namespace

Status cpu_linear(const LinearArgs& a) noexcept {
  if (a.weight == nullptr || a.x == nullptr || a.y == nullptr || a.out == 0 || a.in == 0) {
    return Status(Errc::invalid_argument, "linear: null operand or empty weight")
        .with_rule("runtime.linear.args");
  }
  if (a.in > 0x7fffffffu || a.out > 0x7fffffffu || a.tokens > 0x7fffffffu) {
    return Status(Errc::limit_exceeded, "linear: a dimension exceeds 2^31-1")
        .with_rule("runtime.linear.shape");
  }
  const DTypeInfo& info = dtype_info(a.weight_dtype);
  // Whole blocks per tile: a row is a whole number of blocks, so tile by rows.
  std::uint64_t rows = std::max<std::uint64_t>(1, kTileBytes / (a.in * sizeof(float)));
  rows = std::min(rows, a.out);
  if (info.is_block_quant && a.in % info.block_elems != 0) {
    return Status(Errc::unsupported, "a weight row of " + std::to_string(a.in) +
                                         " values is not a whole number of " +
                                         std::string(info.name) + " blocks")
        .with_rule("runtime.linear.shape");
  }
  thread_local std::vector<float> tile;
  thread_local std::vector<float> out_tile;
  if (tile.size() < rows * a.in) tile.resize(rows * a.in);
  for (std::uint64_t r0 = 0; r0 < a.out; r0 += rows) {
    const std::uint64_t n = std::min(rows, a.out - r0);
    DMEM_TRY(convert_rows(a, r0, n, tile.data()));
    gemm_tile(a.x, a.tokens, a.in, tile.data(), n, a.y + r0, a.out);
  }
  if (a.bias != nullptr) {
    if (out_tile.size() < a.out) out_tile.resize(a.out);
    DMEM_TRY(convert(a.bias_dtype, a.bias, DType::f32, out_tile.data(), a.out));
    for (std::size_t t = 0; t < a.tokens; ++t) {
      float* row = a.y + t * a.out;
      for (std::uint64_t o = 0; o < a.out; ++o) row[o] += out_tile[o];
    }
  }
  return Status::ok();
}

}  // namespace dmem::detail
