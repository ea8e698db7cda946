// The gguf plugin library: exports dmem_plugin_probe and dmem_plugin_entry, nothing else.
#include "gguf_quantizer.hpp"

DMEM_QUANTIZER_PLUGIN(dmem_gguf::GgufQuantizer)
