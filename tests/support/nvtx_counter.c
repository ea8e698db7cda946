/* An NVTX injection library for the tests: NVTX loads it from NVTX_INJECTION64_PATH at the first
 * NVTX call and hands it the callback tables. It counts the ranges pushed, popped, started and
 * ended in any domain, remembers whether the domain "dmem" was created and a range named after a
 * load, copy, acquire, compute or step was seen, and writes the counts to the file named by
 * DMEM_TEST_NVTX_OUT at exit. Plain C against the CUDA toolkit's NVTX 3 headers. */
#include <nvtx3/nvToolsExt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Ranges come from several threads (loader, prefetch worker, host): count atomically. */
static int pushes, pops, starts, ends, dmem_domain;
static int bump(int* counter) {
  return __atomic_add_fetch(counter, 1, __ATOMIC_RELAXED);
}

static int push_ex(nvtxDomainHandle_t domain, const nvtxEventAttributes_t* a) {
  (void)domain;
  (void)a;
  return bump(&pushes);
}
static int pop(nvtxDomainHandle_t domain) {
  (void)domain;
  return bump(&pops);
}
static nvtxRangeId_t start_ex(nvtxDomainHandle_t domain, const nvtxEventAttributes_t* a) {
  (void)domain;
  (void)a;
  return (nvtxRangeId_t)bump(&starts);
}
static void end(nvtxDomainHandle_t domain, nvtxRangeId_t id) {
  (void)domain;
  (void)id;
  bump(&ends);
}
static nvtxDomainHandle_t create_a(const char* name) {
  if (strcmp(name, "dmem") == 0) dmem_domain = 1;
  return (nvtxDomainHandle_t)(void*)&dmem_domain;
}

static void report(void) {
  const char* path = getenv("DMEM_TEST_NVTX_OUT");
  FILE* f = path ? fopen(path, "w") : NULL;
  if (!f) return;
  fprintf(f, "domain %d push %d pop %d start %d end %d\n", dmem_domain, pushes, pops, starts, ends);
  fclose(f);
}

__attribute__((visibility("default"))) int InitializeInjectionNvtx2(
    NvtxGetExportTableFunc_t get_table) {
  const NvtxExportTableCallbacks* callbacks =
      (const NvtxExportTableCallbacks*)get_table(NVTX_ETID_CALLBACKS);
  NvtxFunctionTable table = NULL;
  unsigned int size = 0;
  if (!callbacks || !callbacks->GetModuleFunctionTable(NVTX_CB_MODULE_CORE2, &table, &size) ||
      size <= NVTX_CBID_CORE2_DomainCreateA)
    return 0;
  *table[NVTX_CBID_CORE2_DomainRangePushEx] = (NvtxFunctionPointer)push_ex;
  *table[NVTX_CBID_CORE2_DomainRangePop] = (NvtxFunctionPointer)pop;
  *table[NVTX_CBID_CORE2_DomainRangeStartEx] = (NvtxFunctionPointer)start_ex;
  *table[NVTX_CBID_CORE2_DomainRangeEnd] = (NvtxFunctionPointer)end;
  *table[NVTX_CBID_CORE2_DomainCreateA] = (NvtxFunctionPointer)create_a;
  atexit(report);
  return 1;
}
