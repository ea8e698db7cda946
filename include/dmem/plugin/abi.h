/* The C ABI between libdmem and its plugins (docs/plugin-guide.md). C99, no exceptions, no C++
 * types: a plugin built by any compiler, with or without exceptions, loads into any dmem host of
 * the same ABI major.
 *
 * Rules that keep it stable:
 *  - every struct starts with `uint32_t struct_size` (the writer's sizeof); a reader uses a field
 *    only when struct_size covers it, so minor versions only append fields;
 *  - the host accepts a plugin whose major equals its own and whose minor is not newer;
 *  - errors are a status code plus a message written into a caller-owned buffer; nothing throws;
 *  - enumerations travel as fixed-width integers (a C enum's size is the compiler's choice).
 * Layout is frozen by the static assertions at the end (LP64: x86-64, aarch64). */
#ifndef DMEM_PLUGIN_ABI_H
#define DMEM_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#define DMEM_PLUGIN_ABI_MAJOR 1
#define DMEM_PLUGIN_ABI_MINOR 0

#ifdef __cplusplus
#define DMEM_PLUGIN_EXTERN_C extern "C"
#else
#define DMEM_PLUGIN_EXTERN_C
#endif
/* The two entry symbols are the only ones a plugin exports (-fvisibility=hidden elsewhere). */
#if defined(_WIN32)
#define DMEM_PLUGIN_EXPORT DMEM_PLUGIN_EXTERN_C __declspec(dllexport)
#else
#define DMEM_PLUGIN_EXPORT DMEM_PLUGIN_EXTERN_C __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status codes (same values as dmem::Errc) ------------------------------------------- */
#define DMEM_PLUGIN_OK 0
#define DMEM_PLUGIN_INVALID_ARGUMENT 1
#define DMEM_PLUGIN_NOT_FOUND 2
#define DMEM_PLUGIN_IO_ERROR 3
#define DMEM_PLUGIN_FORMAT_ERROR 4
#define DMEM_PLUGIN_UNSUPPORTED 5
#define DMEM_PLUGIN_LIMIT_EXCEEDED 6
#define DMEM_PLUGIN_OUT_OF_MEMORY 7
#define DMEM_PLUGIN_INTERNAL 9

/* ---- plugin kinds ------------------------------------------------------------------------ */
#define DMEM_PLUGIN_KIND_QUANTIZER 1u
#define DMEM_PLUGIN_KIND_OFFLOADER 2u /* reserved: not loaded by this ABI version */

/* ---- devices (where code runs) and tiers (where packed data rests): bitmasks ------------- */
#define DMEM_PLUGIN_DEVICE_CPU (1u << 0)
#define DMEM_PLUGIN_DEVICE_CUDA (1u << 1)

#define DMEM_PLUGIN_TIER_VRAM (1u << 0)
#define DMEM_PLUGIN_TIER_PINNED (1u << 1)
#define DMEM_PLUGIN_TIER_PAGEABLE (1u << 2)
#define DMEM_PLUGIN_TIER_DISK (1u << 3)

/* ---- element types; a set of them is a mask of DMEM_PLUGIN_DTYPE_BIT(code) ---------------- */
#define DMEM_PLUGIN_DTYPE_F32 1u
#define DMEM_PLUGIN_DTYPE_F16 2u
#define DMEM_PLUGIN_DTYPE_BF16 3u
#define DMEM_PLUGIN_DTYPE_F64 4u
#define DMEM_PLUGIN_DTYPE_F8_E4M3 5u
#define DMEM_PLUGIN_DTYPE_F8_E5M2 6u
#define DMEM_PLUGIN_DTYPE_I8 7u
#define DMEM_PLUGIN_DTYPE_U8 8u
#define DMEM_PLUGIN_DTYPE_I16 9u
#define DMEM_PLUGIN_DTYPE_I32 10u
#define DMEM_PLUGIN_DTYPE_I64 11u
#define DMEM_PLUGIN_DTYPE_BIT(code) (UINT64_C(1) << (code))

/* ---- quality tiers, lower is better (same values as dmem::QualityTier) -------------------- */
#define DMEM_PLUGIN_QUALITY_NATIVE 0u
#define DMEM_PLUGIN_QUALITY_FP8 1u
#define DMEM_PLUGIN_QUALITY_INT8 2u
#define DMEM_PLUGIN_QUALITY_Q6 3u
#define DMEM_PLUGIN_QUALITY_Q5 4u
#define DMEM_PLUGIN_QUALITY_Q4 5u
#define DMEM_PLUGIN_QUALITY_Q4_LOW 6u
#define DMEM_PLUGIN_QUALITY_Q3 7u
#define DMEM_PLUGIN_QUALITY_Q2 8u

/* ---- quantizer capability flags --------------------------------------------------------- */
#define DMEM_PLUGIN_QFLAG_MOVES_PACKED (1u << 0) /* offloading moves packed, not dequantized */
#define DMEM_PLUGIN_QFLAG_IS_CAST (1u << 1)      /* a layerwise cast, not a quantizer */
#define DMEM_PLUGIN_QFLAG_NEEDS_CUBLASLT (1u << 2)

/* ---- log levels (same values as dmem::LogLevel) ----------------------------------------- */
#define DMEM_PLUGIN_LOG_TRACE 0
#define DMEM_PLUGIN_LOG_DEBUG 1
#define DMEM_PLUGIN_LOG_INFO 2
#define DMEM_PLUGIN_LOG_WARN 3
#define DMEM_PLUGIN_LOG_ERROR 4

#define DMEM_PLUGIN_MAX_RANK 8

/* An error message buffer owned by the caller. The callee writes at most capacity - 1 bytes and
 * a NUL, and sets `length` to the full message length (length >= capacity: truncated). A NULL
 * error pointer, NULL message or zero capacity means "no message wanted". */
typedef struct dmem_plugin_error {
  uint32_t struct_size;
  uint32_t capacity;
  char* message;
  uint32_t length;
  uint32_t reserved;
} dmem_plugin_error;

/* What the host gives the plugin. It outlives every object the plugin makes. */
typedef void (*dmem_plugin_log_fn)(void* user, int32_t level, const char* message);
typedef struct dmem_plugin_host {
  uint32_t struct_size;
  uint16_t abi_major;
  uint16_t abi_minor;
  void* user;             /* passed back to log */
  dmem_plugin_log_fn log; /* may be NULL; thread-safe; must not call back into the plugin */
} dmem_plugin_host;

/* Returned by dmem_plugin_probe: static data, read before anything else is called. */
typedef struct dmem_plugin_probe_info {
  uint32_t struct_size;
  uint16_t abi_major; /* the DMEM_PLUGIN_ABI_* the plugin was built with */
  uint16_t abi_minor;
  uint32_t kind; /* DMEM_PLUGIN_KIND_* */
  uint32_t reserved;
  const char* id;      /* stable id, "dmem.quantizer.nf4" */
  const char* version; /* the plugin's own version, for messages */
} dmem_plugin_probe_info;

/* A tensor as the ABI sees it. For packed data, dtype/rank/shape describe the logical (original)
 * tensor and data/nbytes the stored bytes. stored_bytes reads only dtype, rank and shape. */
typedef struct dmem_plugin_tensor {
  uint32_t struct_size;
  uint32_t dtype;                       /* DMEM_PLUGIN_DTYPE_* */
  uint32_t rank;                        /* <= DMEM_PLUGIN_MAX_RANK */
  uint32_t device;                      /* DMEM_PLUGIN_DEVICE_CPU or _CUDA: where data lives */
  uint64_t shape[DMEM_PLUGIN_MAX_RANK]; /* outermost first (PyTorch order) */
  void* data;
  uint64_t nbytes; /* bytes at data */
} dmem_plugin_tensor;

/* Parameters an instance is created with ("blocksize" = "64"): parallel arrays of C strings. */
typedef struct dmem_plugin_params {
  uint32_t struct_size;
  uint32_t count;
  const char* const* keys;
  const char* const* values;
} dmem_plugin_params;

/* What the planner and validator need to know about one configured quantizer. */
typedef struct dmem_quantizer_caps {
  uint32_t struct_size;
  uint32_t exec_devices;  /* DMEM_PLUGIN_DEVICE_* where its kernels run */
  uint32_t storage_tiers; /* DMEM_PLUGIN_TIER_* where its packed data may rest */
  uint32_t flags;         /* DMEM_PLUGIN_QFLAG_* */
  uint64_t input_dtypes;  /* DMEM_PLUGIN_DTYPE_BIT of each accepted input dtype */
  uint32_t min_sm;        /* lowest CUDA compute capability (89 = 8.9); 0 = any */
  uint32_t block_size;    /* elements per quantization block; 0 = not block-wise */
  uint32_t quality_tier;  /* DMEM_PLUGIN_QUALITY_* */
  uint32_t cuda_arch_count;
  const uint32_t* cuda_archs; /* SASS/PTX archs compiled (75, 80, ...); count 0 = no CUDA code */
  double speed_factor;        /* step time multiplier against bf16 on the same device */
  const char* variant;        /* "q4_k"; "" when the id says it all */
  const char* display;        /* "gguf q4_k" */
} dmem_quantizer_caps;

/* The quantizer's functions. `instance` is what create made; every function but destroy and caps
 * returns DMEM_PLUGIN_OK or a status and writes a message into `err`. `stream` is a
 * cudaStream_t for DMEM_PLUGIN_DEVICE_CUDA tensors and NULL on the CPU. */
typedef struct dmem_quantizer_vtable {
  uint32_t struct_size;
  uint32_t reserved;
  int32_t (*create)(const dmem_plugin_params* params, void** instance, dmem_plugin_error* err);
  void (*destroy)(void* instance);
  /* Owned by the instance, valid until destroy. */
  const dmem_quantizer_caps* (*caps)(void* instance);
  /* Exact stored bytes (packed data + scales + state) of a tensor of this dtype and shape. */
  int32_t (*stored_bytes)(void* instance, const dmem_plugin_tensor* tensor, uint64_t* bytes,
                          dmem_plugin_error* err);
  /* src: the original tensor; packed->data must hold stored_bytes(src) bytes. */
  int32_t (*quantize)(void* instance, const dmem_plugin_tensor* src, dmem_plugin_tensor* packed,
                      void* stream, dmem_plugin_error* err);
  int32_t (*dequantize)(void* instance, const dmem_plugin_tensor* packed, dmem_plugin_tensor* dst,
                        void* stream, dmem_plugin_error* err);
  /* y[..., out] = x[..., in] * W^T + bias, W the packed [out, in] weight; bias may be NULL. */
  int32_t (*linear)(void* instance, const dmem_plugin_tensor* x, const dmem_plugin_tensor* weight,
                    const dmem_plugin_tensor* bias, dmem_plugin_tensor* y, void* stream,
                    dmem_plugin_error* err);
} dmem_quantizer_vtable;

/* What dmem_plugin_entry hands back: static data owned by the plugin library. */
typedef struct dmem_plugin_descriptor {
  uint32_t struct_size;
  uint16_t abi_major;
  uint16_t abi_minor;
  uint32_t kind;
  uint32_t reserved;
  const char* id;
  const char* display;
  const char* version;
  const dmem_quantizer_vtable* quantizer; /* kind QUANTIZER */
  const void* offloader;                  /* kind OFFLOADER: reserved, NULL */
} dmem_plugin_descriptor;

/* The two exported symbols. probe must be cheap: no allocation, no side effect. entry may log
 * through `host` and keep the pointer; it sets *descriptor on success. */
typedef const dmem_plugin_probe_info* (*dmem_plugin_probe_fn)(void);
typedef int32_t (*dmem_plugin_entry_fn)(const dmem_plugin_host* host,
                                        const dmem_plugin_descriptor** descriptor,
                                        dmem_plugin_error* err);
#define DMEM_PLUGIN_PROBE_SYMBOL "dmem_plugin_probe"
#define DMEM_PLUGIN_ENTRY_SYMBOL "dmem_plugin_entry"

#ifdef __cplusplus
} /* extern "C" */
#endif

DMEM_PLUGIN_EXPORT const dmem_plugin_probe_info* dmem_plugin_probe(void);
DMEM_PLUGIN_EXPORT int32_t dmem_plugin_entry(const dmem_plugin_host* host,
                                             const dmem_plugin_descriptor** descriptor,
                                             dmem_plugin_error* err);

/* ---- frozen layout (LP64) ---------------------------------------------------------------- */
/* C99 has no _Static_assert: a negative array size stops the build instead. */
#define DMEM_PLUGIN_CAT_(a, b) a##b
#define DMEM_PLUGIN_CAT(a, b) DMEM_PLUGIN_CAT_(a, b)

/* Static mode (DMEM_STATIC_PLUGINS, docs/plugin-guide.md): a plugin linked into the host has
 * uniquely named entry functions, dmem_plugin_probe_<name> and dmem_plugin_entry_<name>, that
 * the host lists in a table. This declares them. */
#define DMEM_PLUGIN_DECLARE_STATIC(name)                                                 \
  DMEM_PLUGIN_EXTERN_C const dmem_plugin_probe_info* DMEM_PLUGIN_CAT(dmem_plugin_probe_, \
                                                                     name)(void);        \
  DMEM_PLUGIN_EXTERN_C int32_t DMEM_PLUGIN_CAT(dmem_plugin_entry_, name)(                \
      const dmem_plugin_host* host, const dmem_plugin_descriptor** descriptor,           \
      dmem_plugin_error* err)
#if defined(__cplusplus)
#define DMEM_PLUGIN_STATIC_ASSERT(cond, msg) static_assert(cond, msg)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define DMEM_PLUGIN_STATIC_ASSERT(cond, msg) _Static_assert(cond, msg)
#else
#define DMEM_PLUGIN_STATIC_ASSERT(cond, msg) \
  typedef char DMEM_PLUGIN_CAT(dmem_plugin_layout_check_, __LINE__)[(cond) ? 1 : -1]
#endif
#if (defined(__x86_64__) || defined(__aarch64__)) && defined(__LP64__)
DMEM_PLUGIN_STATIC_ASSERT(sizeof(dmem_plugin_error) == 24, "dmem_plugin_error layout");
DMEM_PLUGIN_STATIC_ASSERT(offsetof(dmem_plugin_error, message) == 8, "dmem_plugin_error layout");
DMEM_PLUGIN_STATIC_ASSERT(offsetof(dmem_plugin_error, length) == 16, "dmem_plugin_error layout");
DMEM_PLUGIN_STATIC_ASSERT(sizeof(dmem_plugin_host) == 24, "dmem_plugin_host layout");
DMEM_PLUGIN_STATIC_ASSERT(offsetof(dmem_plugin_host, abi_minor) == 6, "dmem_plugin_host layout");
DMEM_PLUGIN_STATIC_ASSERT(offsetof(dmem_plugin_host, log) == 16, "dmem_plugin_host layout");
DMEM_PLUGIN_STATIC_ASSERT(sizeof(dmem_plugin_probe_info) == 32, "dmem_plugin_probe_info layout");
DMEM_PLUGIN_STATIC_ASSERT(offsetof(dmem_plugin_probe_info, kind) == 8,
                          "dmem_plugin_probe_info layout");
DMEM_PLUGIN_STATIC_ASSERT(offsetof(dmem_plugin_probe_info, version) == 24,
                          "dmem_plugin_probe_info layout");
DMEM_PLUGIN_STATIC_ASSERT(sizeof(dmem_plugin_tensor) == 96, "dmem_plugin_tensor layout");
DMEM_PLUGIN_STATIC_ASSERT(offsetof(dmem_plugin_tensor, shape) == 16, "dmem_plugin_tensor layout");
DMEM_PLUGIN_STATIC_ASSERT(offsetof(dmem_plugin_tensor, data) == 80, "dmem_plugin_tensor layout");
DMEM_PLUGIN_STATIC_ASSERT(offsetof(dmem_plugin_tensor, nbytes) == 88, "dmem_plugin_tensor layout");
DMEM_PLUGIN_STATIC_ASSERT(sizeof(dmem_plugin_params) == 24, "dmem_plugin_params layout");
DMEM_PLUGIN_STATIC_ASSERT(offsetof(dmem_plugin_params, values) == 16, "dmem_plugin_params layout");
DMEM_PLUGIN_STATIC_ASSERT(sizeof(dmem_quantizer_caps) == 72, "dmem_quantizer_caps layout");
DMEM_PLUGIN_STATIC_ASSERT(offsetof(dmem_quantizer_caps, input_dtypes) == 16,
                          "dmem_quantizer_caps layout");
DMEM_PLUGIN_STATIC_ASSERT(offsetof(dmem_quantizer_caps, cuda_archs) == 40,
                          "dmem_quantizer_caps layout");
DMEM_PLUGIN_STATIC_ASSERT(offsetof(dmem_quantizer_caps, speed_factor) == 48,
                          "dmem_quantizer_caps layout");
DMEM_PLUGIN_STATIC_ASSERT(offsetof(dmem_quantizer_caps, display) == 64,
                          "dmem_quantizer_caps layout");
DMEM_PLUGIN_STATIC_ASSERT(sizeof(dmem_quantizer_vtable) == 64, "dmem_quantizer_vtable layout");
DMEM_PLUGIN_STATIC_ASSERT(offsetof(dmem_quantizer_vtable, create) == 8,
                          "dmem_quantizer_vtable layout");
DMEM_PLUGIN_STATIC_ASSERT(offsetof(dmem_quantizer_vtable, linear) == 56,
                          "dmem_quantizer_vtable layout");
DMEM_PLUGIN_STATIC_ASSERT(sizeof(dmem_plugin_descriptor) == 56, "dmem_plugin_descriptor layout");
DMEM_PLUGIN_STATIC_ASSERT(offsetof(dmem_plugin_descriptor, id) == 16,
                          "dmem_plugin_descriptor layout");
DMEM_PLUGIN_STATIC_ASSERT(offsetof(dmem_plugin_descriptor, quantizer) == 40,
                          "dmem_plugin_descriptor layout");
DMEM_PLUGIN_STATIC_ASSERT(offsetof(dmem_plugin_descriptor, offloader) == 48,
                          "dmem_plugin_descriptor layout");
#endif

#endif /* DMEM_PLUGIN_ABI_H */
