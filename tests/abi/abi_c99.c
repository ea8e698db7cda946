/* Compiled with -std=c99 -pedantic -Wall -Wextra (-Werror in CI): abi.h is C99-clean, and a
 * plugin can be written in plain C. */
#include "abi/abi_c99.h"

#include <string.h>

size_t dmem_abi_c99_layout(size_t* out, size_t capacity) {
  const size_t values[] = {
      sizeof(dmem_plugin_error),
      offsetof(dmem_plugin_error, capacity),
      offsetof(dmem_plugin_error, message),
      offsetof(dmem_plugin_error, length),
      sizeof(dmem_plugin_host),
      offsetof(dmem_plugin_host, abi_major),
      offsetof(dmem_plugin_host, abi_minor),
      offsetof(dmem_plugin_host, user),
      offsetof(dmem_plugin_host, log),
      sizeof(dmem_plugin_probe_info),
      offsetof(dmem_plugin_probe_info, kind),
      offsetof(dmem_plugin_probe_info, id),
      offsetof(dmem_plugin_probe_info, version),
      sizeof(dmem_plugin_tensor),
      offsetof(dmem_plugin_tensor, dtype),
      offsetof(dmem_plugin_tensor, device),
      offsetof(dmem_plugin_tensor, shape),
      offsetof(dmem_plugin_tensor, data),
      offsetof(dmem_plugin_tensor, nbytes),
      sizeof(dmem_plugin_params),
      offsetof(dmem_plugin_params, count),
      offsetof(dmem_plugin_params, keys),
      offsetof(dmem_plugin_params, values),
      sizeof(dmem_quantizer_caps),
      offsetof(dmem_quantizer_caps, flags),
      offsetof(dmem_quantizer_caps, input_dtypes),
      offsetof(dmem_quantizer_caps, min_sm),
      offsetof(dmem_quantizer_caps, quality_tier),
      offsetof(dmem_quantizer_caps, cuda_arch_count),
      offsetof(dmem_quantizer_caps, cuda_archs),
      offsetof(dmem_quantizer_caps, speed_factor),
      offsetof(dmem_quantizer_caps, variant),
      offsetof(dmem_quantizer_caps, display),
      sizeof(dmem_quantizer_vtable),
      offsetof(dmem_quantizer_vtable, create),
      offsetof(dmem_quantizer_vtable, destroy),
      offsetof(dmem_quantizer_vtable, caps),
      offsetof(dmem_quantizer_vtable, stored_bytes),
      offsetof(dmem_quantizer_vtable, quantize),
      offsetof(dmem_quantizer_vtable, dequantize),
      offsetof(dmem_quantizer_vtable, linear),
      sizeof(dmem_plugin_descriptor),
      offsetof(dmem_plugin_descriptor, kind),
      offsetof(dmem_plugin_descriptor, id),
      offsetof(dmem_plugin_descriptor, display),
      offsetof(dmem_plugin_descriptor, version),
      offsetof(dmem_plugin_descriptor, quantizer),
      offsetof(dmem_plugin_descriptor, offloader),
  };
  size_t n = sizeof(values) / sizeof(values[0]);
  size_t i;
  if (n > capacity) n = capacity;
  for (i = 0; i < n; ++i) out[i] = values[i];
  return n;
}

/* ---- the C plugin: one stateless instance; packed data is the f32 data itself ------------- */

static int instance_tag;

static int32_t fail(dmem_plugin_error* err, int32_t code, const char* message) {
  if (err && err->struct_size >= offsetof(dmem_plugin_error, length) + sizeof(err->length)) {
    size_t len = strlen(message);
    err->length = (uint32_t)len;
    if (err->message && err->capacity > 0) {
      if (len > err->capacity - 1) len = err->capacity - 1;
      memcpy(err->message, message, len);
      err->message[len] = '\0';
    }
  }
  return code;
}

static uint64_t f32_bytes(const dmem_plugin_tensor* t) {
  uint64_t n = 4;
  uint32_t i;
  for (i = 0; i < t->rank && i < DMEM_PLUGIN_MAX_RANK; ++i) n *= t->shape[i];
  return n;
}

static int32_t c_create(const dmem_plugin_params* params, void** instance, dmem_plugin_error* err) {
  if (params && params->struct_size >= sizeof(dmem_plugin_params) && params->count > 0)
    return fail(err, DMEM_PLUGIN_INVALID_ARGUMENT, "identity takes no parameters");
  *instance = &instance_tag;
  return DMEM_PLUGIN_OK;
}

static void c_destroy(void* instance) {
  (void)instance;
}

static const dmem_quantizer_caps c_caps_data = {sizeof(dmem_quantizer_caps),
                                                DMEM_PLUGIN_DEVICE_CPU,
                                                DMEM_PLUGIN_TIER_PINNED | DMEM_PLUGIN_TIER_PAGEABLE,
                                                DMEM_PLUGIN_QFLAG_MOVES_PACKED,
                                                DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_F32),
                                                0,
                                                0,
                                                DMEM_PLUGIN_QUALITY_NATIVE,
                                                0,
                                                NULL,
                                                1.0,
                                                "",
                                                "identity (C)"};

static const dmem_quantizer_caps* c_caps(void* instance) {
  return instance ? &c_caps_data : NULL;
}

static int32_t c_stored_bytes(void* instance, const dmem_plugin_tensor* t, uint64_t* bytes,
                              dmem_plugin_error* err) {
  (void)instance;
  if (t->dtype != DMEM_PLUGIN_DTYPE_F32)
    return fail(err, DMEM_PLUGIN_UNSUPPORTED, "identity accepts f32 only");
  *bytes = f32_bytes(t);
  return DMEM_PLUGIN_OK;
}

static int32_t copy(const dmem_plugin_tensor* from, dmem_plugin_tensor* to,
                    dmem_plugin_error* err) {
  const uint64_t n = f32_bytes(from);
  if (from->dtype != DMEM_PLUGIN_DTYPE_F32 || from->nbytes < n || to->nbytes < n)
    return fail(err, DMEM_PLUGIN_INVALID_ARGUMENT, "identity: f32 buffers of the tensor's size");
  memcpy(to->data, from->data, (size_t)n);
  return DMEM_PLUGIN_OK;
}

static int32_t c_quantize(void* instance, const dmem_plugin_tensor* src, dmem_plugin_tensor* packed,
                          void* stream, dmem_plugin_error* err) {
  (void)instance;
  (void)stream;
  return copy(src, packed, err);
}

static int32_t c_dequantize(void* instance, const dmem_plugin_tensor* packed,
                            dmem_plugin_tensor* dst, void* stream, dmem_plugin_error* err) {
  (void)instance;
  (void)stream;
  return copy(packed, dst, err);
}

static int32_t c_linear(void* instance, const dmem_plugin_tensor* x,
                        const dmem_plugin_tensor* weight, const dmem_plugin_tensor* bias,
                        dmem_plugin_tensor* y, void* stream, dmem_plugin_error* err) {
  (void)instance;
  (void)x;
  (void)weight;
  (void)bias;
  (void)y;
  (void)stream;
  return fail(err, DMEM_PLUGIN_UNSUPPORTED, "identity has no linear kernel");
}

static const dmem_quantizer_vtable c_vtable = {sizeof(dmem_quantizer_vtable),
                                               0,
                                               c_create,
                                               c_destroy,
                                               c_caps,
                                               c_stored_bytes,
                                               c_quantize,
                                               c_dequantize,
                                               c_linear};

static const dmem_plugin_descriptor c_descriptor = {sizeof(dmem_plugin_descriptor),
                                                    DMEM_PLUGIN_ABI_MAJOR,
                                                    DMEM_PLUGIN_ABI_MINOR,
                                                    DMEM_PLUGIN_KIND_QUANTIZER,
                                                    0,
                                                    "dmem.quantizer.identity_c",
                                                    "identity (C)",
                                                    "1.0.0",
                                                    &c_vtable,
                                                    NULL};

static const dmem_plugin_probe_info c_probe = {sizeof(dmem_plugin_probe_info),
                                               DMEM_PLUGIN_ABI_MAJOR,
                                               DMEM_PLUGIN_ABI_MINOR,
                                               DMEM_PLUGIN_KIND_QUANTIZER,
                                               0,
                                               "dmem.quantizer.identity_c",
                                               "1.0.0"};

const dmem_plugin_probe_info* dmem_abi_c99_probe(void) {
  return &c_probe;
}

int32_t dmem_abi_c99_entry(const dmem_plugin_host* host, const dmem_plugin_descriptor** descriptor,
                           dmem_plugin_error* err) {
  (void)host;
  if (!descriptor) return fail(err, DMEM_PLUGIN_INVALID_ARGUMENT, "descriptor pointer is NULL");
  *descriptor = &c_descriptor;
  return DMEM_PLUGIN_OK;
}
