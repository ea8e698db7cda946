// The CUDA device (kernels in cuda_kernels.cu). Weights live in physical chunks mapped into
// reserved virtual ranges (the driver's virtual memory API, reached through
// cudaGetDriverEntryPointByVersion so libdmem links no libcuda): freeing unmaps and releases the
// chunk, so eviction hands memory back to the driver at once. Where the virtual memory API is
// missing, cudaMalloc/cudaFree stand in.
//
// Two streams: copies of weights run on their own, so a prefetch on the session's copy worker
// overlaps the linear layers the host thread runs on the compute stream. Linear layers go
// through cuBLASLt (cuda_gemm.cpp) when it can be loaded, else through the reference kernel.
#include <cuda.h>  // driver API types only; the functions come through the runtime
#include <cuda_runtime.h>

#include <cstdint>
#include <mutex>
#include <new>
#include <string>

#include "backend/cuda/cuda_device.hpp"
#include "backend/cuda/cuda_gemm.hpp"
#include "backend/cuda/cuda_kernels.hpp"
#include "runtime/fault_injection.hpp"

namespace dmem::detail {
namespace {

// Driver functions used for the virtual memory arena (CUDA 10.2 ABI versions).
using GranularityFn = CUresult (*)(size_t*, const CUmemAllocationProp*,
                                   CUmemAllocationGranularity_flags);
using CreateFn = CUresult (*)(CUmemGenericAllocationHandle*, size_t, const CUmemAllocationProp*,
                              unsigned long long);
using ReserveFn = CUresult (*)(CUdeviceptr*, size_t, size_t, CUdeviceptr, unsigned long long);
using MapFn = CUresult (*)(CUdeviceptr, size_t, size_t, CUmemGenericAllocationHandle,
                           unsigned long long);
using SetAccessFn = CUresult (*)(CUdeviceptr, size_t, const CUmemAccessDesc*, size_t);
using UnmapFn = CUresult (*)(CUdeviceptr, size_t);
using ReleaseFn = CUresult (*)(CUmemGenericAllocationHandle);
using AddressFreeFn = CUresult (*)(CUdeviceptr, size_t);

struct DriverVmm {
  GranularityFn granularity = nullptr;
  CreateFn create = nullptr;
  ReserveFn reserve = nullptr;
  MapFn map = nullptr;
  SetAccessFn set_access = nullptr;
  UnmapFn unmap = nullptr;
  ReleaseFn release = nullptr;
  AddressFreeFn address_free = nullptr;
};

template <class Fn>
bool entry(const char* name, Fn& fn) {
  void* p = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  if (cudaGetDriverEntryPointByVersion(name, &p, 10020, cudaEnableDefault, &found) != cudaSuccess ||
      found != cudaDriverEntryPointSuccess || p == nullptr) {
    cudaGetLastError();
    return false;
  }
  fn = reinterpret_cast<Fn>(p);
  return true;
}

bool load_vmm(DriverVmm& d) {
  return entry("cuMemGetAllocationGranularity", d.granularity) && entry("cuMemCreate", d.create) &&
         entry("cuMemAddressReserve", d.reserve) && entry("cuMemMap", d.map) &&
         entry("cuMemSetAccess", d.set_access) && entry("cuMemUnmap", d.unmap) &&
         entry("cuMemRelease", d.release) && entry("cuMemAddressFree", d.address_free);
}

bool code_of(DType t, Code& c) {
  switch (t) {
    case DType::f32:
      c = Code::f32;
      return true;
    case DType::f16:
      c = Code::f16;
      return true;
    case DType::bf16:
      c = Code::bf16;
      return true;
    case DType::f8_e4m3:
      c = Code::e4m3;
      return true;
    case DType::f8_e5m2:
      c = Code::e5m2;
      return true;
    default:
      return false;
  }
}

Status cuda_error(const char* what, cudaError_t err) {
  std::string message = what;
  message += ": ";
  message += cudaGetErrorString(err);
  cudaGetLastError();
  return Status(err == cudaErrorMemoryAllocation ? Errc::out_of_memory : Errc::internal,
                std::move(message))
      .with_rule("runtime.cuda");
}

class CudaDevice final : public ComputeDevice {
 public:
  CudaDevice(int index, cudaStream_t stream, cudaStream_t copy_stream, const DriverVmm* vmm,
             std::size_t granularity)
      : index_(index), stream_(stream), copy_stream_(copy_stream), granularity_(granularity) {
    if (vmm != nullptr) {
      vmm_ = *vmm;
      use_vmm_ = true;
    }
    gemm_ = CudaGemm::open(gemm_why_);
  }
  ~CudaDevice() override {
    cudaSetDevice(index_);
    cudaStreamSynchronize(copy_stream_);
    cudaStreamSynchronize(stream_);
    gemm_.reset();
    if (scratch_ != nullptr) cudaFree(scratch_);
    cudaStreamDestroy(copy_stream_);
    cudaStreamDestroy(stream_);
  }

  void* compute_stream() noexcept override { return stream_; }

  std::string linear_backend() const override {
    if (gemm_) return gemm_->version();
    std::string text = "reference kernel (cuBLASLt: ";
    text += gemm_why_;
    text += ")";
    return text;
  }

  DeviceKind kind() const noexcept override { return DeviceKind::cuda; }
  bool host_addressable() const noexcept override { return false; }

  Result<void*> allocate(std::uint64_t bytes) noexcept override {
    if (fault_hit(FaultSite::device_alloc))
      return Status(Errc::out_of_memory, "device allocation failed (injected)")
          .with_rule("runtime.alloc");
    cudaSetDevice(index_);
    if (bytes == 0) bytes = 1;
    if (!use_vmm_) {
      void* p = nullptr;
      const cudaError_t err = cudaMalloc(&p, bytes);
      if (err != cudaSuccess) return cuda_error("cudaMalloc", err);
      return p;
    }
    const std::size_t size = rounded(bytes);
    CUmemAllocationProp prop = props();
    CUdeviceptr ptr = 0;
    if (vmm_.reserve(&ptr, size, 0, 0, 0) != CUDA_SUCCESS)
      return Status(Errc::out_of_memory, "could not reserve device address space")
          .with_rule("runtime.alloc");
    CUmemGenericAllocationHandle handle = 0;
    if (vmm_.create(&handle, size, &prop, 0) != CUDA_SUCCESS) {
      vmm_.address_free(ptr, size);
      std::string message = "the driver has no ";
      message += std::to_string(size);
      message += " bytes of device memory to map";
      return Status(Errc::out_of_memory, std::move(message)).with_rule("runtime.alloc");
    }
    // The mapping keeps the physical chunk; releasing the handle now means unmapping frees it.
    const bool mapped = vmm_.map(ptr, size, 0, handle, 0) == CUDA_SUCCESS;
    vmm_.release(handle);
    CUmemAccessDesc access{};
    access.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    access.location.id = index_;
    access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    if (!mapped || vmm_.set_access(ptr, size, &access, 1) != CUDA_SUCCESS) {
      if (mapped) vmm_.unmap(ptr, size);
      vmm_.address_free(ptr, size);
      return Status(Errc::internal, "could not map device memory").with_rule("runtime.alloc");
    }
    return reinterpret_cast<void*>(ptr);
  }

  void free(void* ptr, std::uint64_t bytes) noexcept override {
    if (ptr == nullptr) return;
    cudaSetDevice(index_);
    // Compute queued on the stream may still read it. Copies need no wait: a group's copies
    // have landed before it is marked resident (or freed after a failed load), and waiting
    // here would hold the host's release behind the next group's prefetch.
    cudaStreamSynchronize(stream_);
    if (!use_vmm_) {
      cudaFree(ptr);
      return;
    }
    const std::size_t size = rounded(bytes == 0 ? 1 : bytes);
    const auto p = reinterpret_cast<CUdeviceptr>(ptr);
    vmm_.unmap(p, size);
    vmm_.address_free(p, size);
  }

  Status copy_to_device(void* dst, const void* src, std::uint64_t bytes) noexcept override {
    DMEM_TRY(copy_to_device_async(dst, src, bytes));
    return wait_copies();
  }

  Status copy_to_device_async(void* dst, const void* src, std::uint64_t bytes) noexcept override {
    cudaSetDevice(index_);
    const cudaError_t err = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, copy_stream_);
    return err == cudaSuccess ? Status::ok() : cuda_error("host-to-device copy", err);
  }

  Status wait_copies() noexcept override {
    cudaSetDevice(index_);
    const cudaError_t err = cudaStreamSynchronize(copy_stream_);
    return err == cudaSuccess ? Status::ok() : cuda_error("host-to-device copy", err);
  }

  Status copy_to_host(void* dst, const void* src, std::uint64_t bytes) noexcept override {
    cudaSetDevice(index_);
    cudaError_t err = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_);
    if (err == cudaSuccess) err = cudaStreamSynchronize(stream_);
    return err == cudaSuccess ? Status::ok() : cuda_error("device-to-host copy", err);
  }

  void pin(void* ptr, std::uint64_t bytes) noexcept override {
    if (ptr != nullptr && bytes != 0 &&
        cudaHostRegister(ptr, bytes, cudaHostRegisterDefault) != cudaSuccess)
      cudaGetLastError();  // still correct, only slower: copies then go through the driver
  }
  void unpin(void* ptr) noexcept override {
    if (ptr != nullptr && cudaHostUnregister(ptr) != cudaSuccess) cudaGetLastError();
  }

  Status cast(DType from, const void* src, DType to, void* dst,
              std::uint64_t count) noexcept override {
    Code f{}, t{};
    if (!code_of(from, f) || !code_of(to, t) || t == Code::e4m3 || t == Code::e5m2)
      return Status(Errc::unsupported, "the CUDA device casts fp8/f16/bf16/f32 to f16/bf16/f32")
          .with_rule("runtime.cuda");
    if (count == 0) return Status::ok();
    cudaSetDevice(index_);
    cudaError_t err = launch_cast(src, f, dst, t, count, stream_);
    if (err == cudaSuccess) err = cudaStreamSynchronize(stream_);
    return err == cudaSuccess ? Status::ok() : cuda_error("cast kernel", err);
  }

  Status linear(const LinearArgs& a) noexcept override {
    Code wc{}, bc = Code::f32;
    if (!code_of(a.weight_dtype, wc) || (a.bias != nullptr && !code_of(a.bias_dtype, bc)))
      return Status(Errc::unsupported,
                    "the CUDA device runs linear layers on f32/f16/bf16/fp8 weights; GGML blocks "
                    "go through the gguf plugin")
          .with_rule("runtime.cuda");
    if (a.tokens == 0) return Status::ok();
    cudaSetDevice(index_);
    cudaError_t err = cudaErrorNotSupported;
    {
      // The activation scratch and cuBLASLt's plans are shared by the threads that compute.
      std::lock_guard<std::mutex> lock(linear_mu_);
      if (gemm_ && (wc == Code::f32 || wc == Code::f16 || wc == Code::bf16))
        err = gemm_linear(a, wc, bc);
      if (err == cudaErrorNotSupported)
        err = launch_linear(a.x, a.weight, wc, a.bias, bc, a.y, static_cast<int>(a.tokens),
                            static_cast<int>(a.in), static_cast<int>(a.out), stream_);
    }
    if (err == cudaSuccess) err = cudaStreamSynchronize(stream_);
    return err == cudaSuccess ? Status::ok() : cuda_error("linear layer", err);
  }

  Result<DeviceMemoryInfo> memory_info() noexcept override {
    cudaSetDevice(index_);
    std::size_t free_bytes = 0, total_bytes = 0;
    const cudaError_t err = cudaMemGetInfo(&free_bytes, &total_bytes);
    if (err != cudaSuccess) return cuda_error("cudaMemGetInfo", err);
    return DeviceMemoryInfo{free_bytes, total_bytes};
  }

 private:
  CUmemAllocationProp props() const {
    CUmemAllocationProp prop{};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = index_;
    return prop;
  }
  // cuBLASLt on tensor cores: x rounded to the weight's 16-bit type in scratch (f32 weights use
  // x as it is), f32 accumulation and output, then the bias.
  cudaError_t gemm_linear(const LinearArgs& a, Code wc, Code bc) noexcept {
    GemmArgs g;
    g.w = a.weight;
    g.x = a.x;
    g.type = wc;
    g.y = a.y;
    g.tokens = static_cast<int>(a.tokens);
    g.in = static_cast<int>(a.in);
    g.out = static_cast<int>(a.out);
    if (wc != Code::f32) {
      const std::uint64_t count = a.tokens * a.in;
      const std::uint64_t bytes = count * 2;
      if (bytes > scratch_bytes_) {
        if (scratch_ != nullptr) cudaFree(scratch_);  // synchronises: nothing reads it after
        scratch_ = nullptr;
        scratch_bytes_ = 0;
        if (cudaMalloc(&scratch_, bytes) != cudaSuccess) {
          cudaGetLastError();
          scratch_ = nullptr;
          return cudaErrorNotSupported;  // the reference kernel needs no scratch
        }
        scratch_bytes_ = bytes;
      }
      cudaError_t err = launch_cast(a.x, Code::f32, scratch_, wc, count, stream_);
      if (err != cudaSuccess) return err;
      g.x = scratch_;
    }
    cudaError_t err = gemm_->run(g, stream_);
    if (err == cudaSuccess && a.bias != nullptr)
      err = launch_add_bias(a.y, a.bias, bc, g.tokens, g.out, stream_);
    return err;
  }

  std::size_t rounded(std::uint64_t bytes) const {
    return static_cast<std::size_t>((bytes + granularity_ - 1) / granularity_ * granularity_);
  }

  int index_;
  cudaStream_t stream_;       // compute: casts and linear layers
  cudaStream_t copy_stream_;  // host -> device copies of weights
  std::unique_ptr<CudaGemm> gemm_;
  std::string gemm_why_;
  std::mutex linear_mu_;
  void* scratch_ = nullptr;  // activations rounded to 16 bits for cuBLASLt
  std::uint64_t scratch_bytes_ = 0;
  DriverVmm vmm_;
  bool use_vmm_ = false;
  std::size_t granularity_ = 1;
};

}  // namespace

Result<std::unique_ptr<ComputeDevice>> make_cuda_device(int index) noexcept {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    std::string why = err != cudaSuccess ? cudaGetErrorString(err) : "no CUDA device";
    cudaGetLastError();
    return Status(Errc::unsupported, "the CUDA device is unavailable: " + why)
        .with_rule("runtime.device")
        .with_hint("run on the CPU device (--device cpu)");
  }
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  if (driver < runtime) {
    std::string message = "the NVIDIA driver supports CUDA ";
    message += std::to_string(driver);
    message += ", older than this build's runtime ";
    message += std::to_string(runtime);
    return Status(Errc::unsupported, std::move(message))
        .with_rule("runtime.device")
        .with_hint("update the driver, or run on the CPU device (--device cpu)");
  }
  if (index < 0 || index >= count) {
    std::string message = "no CUDA device ";
    message += std::to_string(index);
    return Status(Errc::invalid_argument, std::move(message)).with_rule("runtime.device");
  }
  if ((err = cudaSetDevice(index)) != cudaSuccess) return cuda_error("cudaSetDevice", err);
  cudaStream_t stream = nullptr, copy_stream = nullptr;
  if ((err = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking)) != cudaSuccess)
    return cuda_error("cudaStreamCreate", err);
  if ((err = cudaStreamCreateWithFlags(&copy_stream, cudaStreamNonBlocking)) != cudaSuccess) {
    cudaStreamDestroy(stream);
    return cuda_error("cudaStreamCreate", err);
  }
  DriverVmm vmm;
  std::size_t granularity = 0;
  bool have_vmm = load_vmm(vmm);
  if (have_vmm) {
    CUmemAllocationProp prop{};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = index;
    have_vmm =
        vmm.granularity(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM) == CUDA_SUCCESS &&
        granularity != 0;
  }
  auto* device = new (std::nothrow)
      CudaDevice(index, stream, copy_stream, have_vmm ? &vmm : nullptr, have_vmm ? granularity : 1);
  if (device == nullptr) {
    cudaStreamDestroy(copy_stream);
    cudaStreamDestroy(stream);
    return Status(Errc::out_of_memory, "could not create the CUDA device");
  }
  return std::unique_ptr<ComputeDevice>(device);
}

bool cuda_device_compiled() noexcept {
  return true;
}

}  // namespace dmem::detail
