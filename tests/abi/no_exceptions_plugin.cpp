// Built with -fno-exceptions (tests/CMakeLists.txt): the adapter compiles without exceptions, and
// DMEM_QUANTIZER_PLUGIN exports the two entry symbols from here, as a plugin library would. The
// class is local to this file so that the adapter instantiated here (without try/catch) is not
// the one test_abi_adapter.cpp instantiates (with it).
#include "abi/int8_row_quantizer.hpp"

namespace {
struct NoExceptionsInt8 : dmem_test::Int8RowQuantizer {
  static constexpr const char* kId = "dmem.quantizer.int8_row_noexcept_test";
};
}  // namespace

DMEM_QUANTIZER_PLUGIN(NoExceptionsInt8)
