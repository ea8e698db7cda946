// The plugin library: the two exported entry functions for the quantizer class. This is the
// whole file; dmem_add_plugin() in CMakeLists.txt does the rest (hidden symbols, export map).
#include "int4_group32.hpp"

DMEM_QUANTIZER_PLUGIN(example::Int4Group32Quantizer)
