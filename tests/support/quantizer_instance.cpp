#include "support/quantizer_instance.hpp"

#include <catch2/catch.hpp>

namespace dmem::test {

namespace {
const dmem_plugin_host& host() {
  static const dmem_plugin_host h{sizeof(dmem_plugin_host), DMEM_PLUGIN_ABI_MAJOR,
                                  DMEM_PLUGIN_ABI_MINOR, nullptr, nullptr};
  return h;
}
}  // namespace

dmem_plugin_tensor abi_tensor(std::uint32_t dtype, std::vector<std::uint64_t> shape, void* data,
                              std::uint64_t nbytes, std::uint32_t device) {
  dmem_plugin_tensor t{};
  t.struct_size = sizeof t;
  t.dtype = dtype;
  t.rank = static_cast<std::uint32_t>(shape.size());
  t.device = device;
  for (std::size_t i = 0; i < shape.size() && i < DMEM_PLUGIN_MAX_RANK; ++i) t.shape[i] = shape[i];
  t.data = data;
  t.nbytes = nbytes;
  return t;
}

QuantizerInstance::QuantizerInstance(const std::string& path) {
  auto loaded = detail::load_plugin(path, host());
  INFO(path << ": " << loaded.status().to_string());
  REQUIRE(loaded.has_value());
  loaded_ = std::move(*loaded);
  REQUIRE(loaded_.descriptor->quantizer != nullptr);
}

QuantizerInstance::~QuantizerInstance() {
  if (instance_) loaded_.descriptor->quantizer->destroy(instance_);
}

dmem_plugin_error* QuantizerInstance::err() {
  error_ = dmem_plugin_error{sizeof(dmem_plugin_error), static_cast<std::uint32_t>(buffer_.size()),
                             buffer_.data(), 0, 0};
  buffer_[0] = '\0';
  return &error_;
}

std::int32_t QuantizerInstance::finish(std::int32_t rc) {
  message_ = buffer_.data();
  return rc;
}

std::int32_t QuantizerInstance::create(
    const std::vector<std::pair<std::string, std::string>>& params) {
  if (instance_) loaded_.descriptor->quantizer->destroy(instance_);
  instance_ = nullptr;
  std::vector<const char*> keys, values;
  for (const auto& [k, v] : params) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  const dmem_plugin_params p{sizeof(dmem_plugin_params), static_cast<std::uint32_t>(keys.size()),
                             keys.data(), values.data()};
  return finish(loaded_.descriptor->quantizer->create(&p, &instance_, err()));
}

const dmem_quantizer_caps& QuantizerInstance::caps() const {
  REQUIRE(instance_ != nullptr);
  return *loaded_.descriptor->quantizer->caps(instance_);
}

std::int32_t QuantizerInstance::stored_bytes(const dmem_plugin_tensor& t, std::uint64_t& bytes) {
  REQUIRE(instance_ != nullptr);
  return finish(loaded_.descriptor->quantizer->stored_bytes(instance_, &t, &bytes, err()));
}

std::int32_t QuantizerInstance::quantize(const dmem_plugin_tensor& src, dmem_plugin_tensor& packed,
                                         void* stream) {
  REQUIRE(instance_ != nullptr);
  return finish(loaded_.descriptor->quantizer->quantize(instance_, &src, &packed, stream, err()));
}

std::int32_t QuantizerInstance::dequantize(const dmem_plugin_tensor& packed,
                                           dmem_plugin_tensor& dst, void* stream) {
  REQUIRE(instance_ != nullptr);
  return finish(loaded_.descriptor->quantizer->dequantize(instance_, &packed, &dst, stream, err()));
}

std::int32_t QuantizerInstance::linear(const dmem_plugin_tensor& x, const dmem_plugin_tensor& w,
                                       const dmem_plugin_tensor* bias, dmem_plugin_tensor& y,
                                       void* stream) {
  REQUIRE(instance_ != nullptr);
  return finish(loaded_.descriptor->quantizer->linear(instance_, &x, &w, bias, &y, stream, err()));
}

}  // namespace dmem::test
