#include "support/runtime_fixture.hpp"

#include <cstring>
#include <vector>

#include "dmem/writer.hpp"

namespace dmem::test {
namespace {

std::uint64_t mix(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

float uniform(std::uint64_t& state) {
  return static_cast<float>(static_cast<double>(mix(state) >> 11) / 9007199254740992.0 - 0.5);
}

struct Owned {
  std::string name;
  DType dtype;
  std::vector<std::uint64_t> shape;
  std::vector<unsigned char> bytes;
};

Owned make(std::uint64_t& rng, std::string name, DType dtype, std::vector<std::uint64_t> shape) {
  std::uint64_t n = 1;
  for (auto d : shape) n *= d;
  std::vector<float> values(n);
  for (auto& v : values) v = uniform(rng) * 0.25f;
  Owned o{std::move(name), dtype, std::move(shape), {}};
  o.bytes.resize(dtype_bytes(dtype, n).value());
  (void)convert(DType::f32, values.data(), dtype, o.bytes.data(), n);
  return o;
}

}  // namespace

Model make_block_model(const std::string& path, std::uint32_t blocks, std::uint32_t width) {
  std::uint64_t rng = 42;
  const std::uint64_t w = width;
  std::vector<Owned> tensors;
  tensors.push_back(make(rng, "proj_in.weight", DType::bf16, {w, 32}));
  tensors.push_back(make(rng, "proj_in.bias", DType::bf16, {w}));
  for (std::uint32_t b = 0; b < blocks; ++b) {
    const std::string p = "transformer_blocks." + std::to_string(b) + ".";
    tensors.push_back(make(rng, p + "norm1.weight", DType::f32, {w}));
    tensors.push_back(make(rng, p + "attn.to_q.weight", DType::bf16, {w, w}));
    tensors.push_back(make(rng, p + "attn.to_q.bias", DType::bf16, {w}));
    tensors.push_back(make(rng, p + "attn.to_out.0.weight", DType::f16, {w, w}));
    tensors.push_back(make(rng, p + "ff.net.0.proj.weight", DType::bf16, {2 * w, w}));
    tensors.push_back(make(rng, p + "ff.net.2.weight", DType::f32, {w, 2 * w}));
  }
  tensors.push_back(make(rng, "norm_out.weight", DType::f32, {w}));
  tensors.push_back(make(rng, "proj_out.weight", DType::bf16, {16, w}));
  std::vector<TensorData> data;
  for (const auto& t : tensors)
    data.push_back({t.name, t.dtype, t.shape, t.bytes.data(), t.bytes.size()});
  const Status written = write_safetensors(path, data);
  if (!written) fatal(written.to_string().c_str());
  auto model = open_model(path);
  if (!model) fatal(model.status().to_string().c_str());
  Model m = std::move(model.value());
  m.components.at(0).name = "transformer";
  return m;
}

Strategy one_component(const Placement& placement, const Storage& storage) {
  Strategy s;
  s.components.push_back({"transformer", placement, storage});
  return s;
}

Result<std::uint64_t> run_workload(Session& session, std::uint32_t steps, std::size_t tokens,
                                   const std::string& component, const WorkloadHooks* hooks) {
  std::uint64_t hash = 1469598103934665603ull;
  const auto modules = session.modules(component);
  std::vector<float> x;
  std::vector<float> y;
  for (std::uint32_t step = 0; step < steps; ++step) {
    session.begin_step(step);
    for (const std::string& module : modules) {
      auto handle = session.acquire(component, module);
      if (!handle) return handle.status();
      for (const TensorView& t : handle->tensors()) {
        const std::string& name = *t.name;
        if (t.shape->size() != 2 || name.size() < 7 ||
            name.compare(name.size() - 7, 7, ".weight") != 0)
          continue;
        const std::uint64_t out = (*t.shape)[0];
        const std::uint64_t in = (*t.shape)[1];
        x.resize(tokens * in);
        std::uint64_t rng = in * 7 + out;
        for (auto& v : x) v = uniform(rng);
        y.assign(tokens * out, 0.0f);
        const std::uint64_t activation_bytes = (x.size() + y.size()) * sizeof(float);
        if (hooks != nullptr && hooks->allocate) {
          Status allocated = hooks->allocate(activation_bytes);
          if (!allocated) return allocated;
        }
        Status status =
            session.linear(*handle, name.substr(0, name.size() - 7), x.data(), tokens, y.data());
        if (hooks != nullptr && hooks->release) hooks->release(activation_bytes);
        if (!status) return status;
        for (float v : y) {
          std::uint32_t bits = 0;
          std::memcpy(&bits, &v, 4);
          hash = (hash ^ bits) * 1099511628211ull;
        }
      }
    }
    session.end_step();
  }
  return hash;
}

}  // namespace dmem::test
