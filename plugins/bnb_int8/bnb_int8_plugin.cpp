// The bnb_int8 plugin library: exports dmem_plugin_probe and dmem_plugin_entry, nothing else.
#include "bnb_int8_quantizer.hpp"

DMEM_QUANTIZER_PLUGIN(dmem_bnb::BnbInt8Quantizer)
