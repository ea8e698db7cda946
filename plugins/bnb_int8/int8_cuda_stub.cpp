// A build without the CUDA toolkit: bnb_int8 has nowhere to run, and says so.
#include "int8_cuda.hpp"

namespace dmem_bnb::cuda {

bool compiled() noexcept {
  return false;
}
std::vector<std::uint32_t> archs() {
  return {};
}
std::string dequantize(const Weight&, void*, Float, void*) {
  return "this bnb_int8 plugin was built without CUDA";
}
std::string linear(const Weight&, const void*, const void*, void*, Float, std::uint64_t, float,
                   void*, bool*) {
  return "this bnb_int8 plugin was built without CUDA";
}

}  // namespace dmem_bnb::cuda
