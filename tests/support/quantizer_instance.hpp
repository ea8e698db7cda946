// Drives a quantizer plugin library through its C table, as the host does: load by path, create
// an instance with key/value parameters, call its functions with an error buffer.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "dmem/plugin/abi.h"
#include "plugin_host/plugin_library.hpp"

namespace dmem::test {

/// A CPU (or device) tensor for the ABI; the caller keeps `data` alive.
dmem_plugin_tensor abi_tensor(std::uint32_t dtype, std::vector<std::uint64_t> shape, void* data,
                              std::uint64_t nbytes, std::uint32_t device = DMEM_PLUGIN_DEVICE_CPU);

class QuantizerInstance {
 public:
  /// Loads `path`; REQUIREs success.
  explicit QuantizerInstance(const std::string& path);
  ~QuantizerInstance();
  QuantizerInstance(const QuantizerInstance&) = delete;
  QuantizerInstance& operator=(const QuantizerInstance&) = delete;

  /// create(params): the status, with the message in error().
  std::int32_t create(const std::vector<std::pair<std::string, std::string>>& params);
  const dmem_quantizer_caps& caps() const;
  std::int32_t stored_bytes(const dmem_plugin_tensor& t, std::uint64_t& bytes);
  std::int32_t quantize(const dmem_plugin_tensor& src, dmem_plugin_tensor& packed,
                        void* stream = nullptr);
  std::int32_t dequantize(const dmem_plugin_tensor& packed, dmem_plugin_tensor& dst,
                          void* stream = nullptr);
  std::int32_t linear(const dmem_plugin_tensor& x, const dmem_plugin_tensor& w,
                      const dmem_plugin_tensor* bias, dmem_plugin_tensor& y,
                      void* stream = nullptr);
  const std::string& error() const { return message_; }
  const dmem_plugin_descriptor& descriptor() const { return *loaded_.descriptor; }

 private:
  dmem_plugin_error* err();
  detail::LoadedPlugin loaded_;
  void* instance_ = nullptr;
  std::vector<char> buffer_ = std::vector<char>(1024);
  dmem_plugin_error error_{};
  std::string message_;
  std::int32_t finish(std::int32_t rc);
};

}  // namespace dmem::test
