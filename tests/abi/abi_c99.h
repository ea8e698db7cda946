/* What tests/abi/abi_c99.c, compiled as strict C99, offers the C++ tests. */
#ifndef DMEM_TESTS_ABI_C99_H
#define DMEM_TESTS_ABI_C99_H

#include <stddef.h>

#include "dmem/plugin/abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Sizes and offsets of the ABI structs as the C compiler lays them out, in the order of
 * dmem_abi_layout_names; returns how many were written (at most capacity). */
size_t dmem_abi_c99_layout(size_t* out, size_t capacity);
/* A quantizer plugin written in C: copies f32 tensors unchanged ("identity"). */
const dmem_plugin_probe_info* dmem_abi_c99_probe(void);
int32_t dmem_abi_c99_entry(const dmem_plugin_host* host, const dmem_plugin_descriptor** descriptor,
                           dmem_plugin_error* err);

#ifdef __cplusplus
}
#endif

#endif
