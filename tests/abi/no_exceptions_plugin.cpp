// Built with -fno-exceptions (tests/CMakeLists.txt): the adapter compiles without exceptions, and
// DMEM_QUANTIZER_PLUGIN exports the two entry symbols from here, as a plugin library would.
#include "abi/int8_row_quantizer.hpp"

DMEM_QUANTIZER_PLUGIN(dmem_test::Int8RowQuantizer)
