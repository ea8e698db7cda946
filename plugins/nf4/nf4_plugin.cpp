// dmem_plugin_nf4: exports the NF4 / FP4 quantizer (nf4_quantizer.hpp) through the C ABI.
#include "nf4_quantizer.hpp"

DMEM_QUANTIZER_PLUGIN(dmem_nf4::Nf4Quantizer)
