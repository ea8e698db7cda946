// libFuzzer target: the GGUF header parser on arbitrary bytes (the whole input is the file).
#include <bit>
#include <cstddef>
#include <cstdint>

#include "dmem/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto result = dmem::parse_gguf(data, size, "fuzz");
  if (!result.has_value()) {
    // Every rejection is a format error with a rule, never an internal one.
    if (result.status().code() == dmem::Errc::internal || result.status().rule().empty())
      __builtin_trap();
    return 0;
  }
  // Invariants of an accepted file: tensors lie back to back from the aligned data start, each
  // padded to the alignment, and every byte of every tensor is inside the input.
  const auto& f = *result;
  if (!std::has_single_bit(f.alignment) || f.data_start % f.alignment != 0) __builtin_trap();
  std::uint64_t expected = f.data_start;
  for (const auto& t : f.tensors) {
    if (t.offset != expected || t.offset > size || t.nbytes > size - t.offset) __builtin_trap();
    if (t.shape.size() > 4 || t.name.empty() || t.name.size() > 63) __builtin_trap();
    const auto bytes = dmem::dtype_bytes(t.dtype, t.elements());
    if (!bytes || *bytes != t.nbytes) __builtin_trap();
    expected += (t.nbytes + f.alignment - 1) / f.alignment * f.alignment;
  }
  return 0;
}
