// A build without the CUDA toolkit: no kernels, and every CUDA call says so.
#include "gguf_cuda.hpp"

namespace dmem_gguf::cuda {

bool compiled() noexcept {
  return false;
}
bool has_kernel(int /*ggml_type*/) noexcept {
  return false;
}
std::vector<std::uint32_t> archs() {
  return {};
}
std::string dequantize(int, const void*, void*, Out, std::uint64_t, void*) {
  return "this gguf plugin was built without CUDA";
}
std::string linear(int, const float*, const void*, const float*, float*, std::uint64_t,
                   std::uint64_t, std::uint64_t, void*) {
  return "this gguf plugin was built without CUDA";
}

}  // namespace dmem_gguf::cuda
