// The GGML block types the gguf plugin handles, as data: name, dmem dtype, block geometry,
// quality tier and speed factor for the planner (the same values as src/plan/quantizers.cpp),
// and whether dmem quantizes to it (CUDA kernels: gguf_cuda.hpp).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "dmem/dtype.hpp"

namespace dmem_gguf {

struct GgufType {
  const char* name;  ///< "q4_k": the `type` parameter and the caps' variant
  dmem::DType dtype;
  std::uint32_t block_elems;
  std::uint32_t block_bytes;
  int ggml_id;            ///< the type's id in GGUF files (ggml.h enum ggml_type)
  std::uint32_t quality;  ///< DMEM_PLUGIN_QUALITY_*
  double speed;           ///< GEMM time multiplier against bf16
  bool quantizes;         ///< dmem has ggml's reference quantizer for it
};

/// The type called `name`, or nullptr.
[[nodiscard]] const GgufType* find_type(std::string_view name) noexcept;
/// "q8_0 q4_0 ..." for messages.
[[nodiscard]] std::string type_names(bool quantizable_only);

}  // namespace dmem_gguf
