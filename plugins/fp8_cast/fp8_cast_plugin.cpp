// dmem_plugin_fp8_cast: exports the fp8 storage quantizer (fp8_cast_quantizer.hpp).
#include "fp8_cast_quantizer.hpp"

DMEM_QUANTIZER_PLUGIN(dmem_fp8::Fp8CastQuantizer)
