// libFuzzer target: the safetensors header parser on arbitrary bytes (the whole input is the file).
#include <cstddef>
#include <cstdint>

#include "dmem/checkpoint.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto result = dmem::parse_safetensors(data, size, size, "fuzz");
  if (result.has_value()) {
    // Invariants of an accepted file: tensors tile the data section exactly, in offset order.
    std::uint64_t end = result->data_start;
    for (const auto& t : result->tensors) {
      if (t.offset != end) __builtin_trap();
      end += t.nbytes;
    }
    if (end != size) __builtin_trap();
  }
  return 0;
}
