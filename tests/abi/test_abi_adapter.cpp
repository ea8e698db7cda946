// The C++ adapter seen from the host side: a plugin class driven only through the C function
// table of abi.h, its errors (returned or thrown) arriving as a status and a bounded message.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "abi/int8_row_quantizer.hpp"
#include "dmem/plugin/abi.h"
#include "dmem/plugin/plugin.hpp"

namespace {

using Int8 = dmem::plugin::QuantizerAdapter<dmem_test::Int8RowQuantizer>;

dmem_plugin_tensor f32_tensor(std::vector<float>& v, std::vector<std::uint64_t> shape) {
  dmem_plugin_tensor t{};
  t.struct_size = sizeof(t);
  t.dtype = DMEM_PLUGIN_DTYPE_F32;
  t.device = DMEM_PLUGIN_DEVICE_CPU;
  t.rank = static_cast<std::uint32_t>(shape.size());
  for (std::size_t i = 0; i < shape.size(); ++i) t.shape[i] = shape[i];
  t.data = v.data();
  t.nbytes = v.size() * sizeof(float);
  return t;
}

// An error buffer with a canary after its capacity, to prove nothing is written past it.
struct ErrorBuffer {
  explicit ErrorBuffer(std::uint32_t capacity) : bytes(capacity + 8, '#') {
    err.struct_size = sizeof(err);
    err.capacity = capacity;
    err.message = bytes.data();
  }
  std::string text() const { return std::string(bytes.data()); }
  bool canary_intact() const {
    for (std::size_t i = err.capacity; i < bytes.size(); ++i)
      if (bytes[i] != '#') return false;
    return true;
  }
  std::vector<char> bytes;
  dmem_plugin_error err{};
};

struct Params {
  std::vector<const char*> keys, values;
  dmem_plugin_params c{};
  Params(std::initializer_list<std::pair<const char*, const char*>> kv) {
    for (auto& [k, v] : kv) {
      keys.push_back(k);
      values.push_back(v);
    }
    c.struct_size = sizeof(c);
    c.count = static_cast<std::uint32_t>(keys.size());
    c.keys = keys.data();
    c.values = values.data();
  }
};

// A plugin whose methods throw, to show that nothing but a status leaves the adapter.
class ThrowingQuantizer {
 public:
  static constexpr const char* kId = "dmem.quantizer.throwing_test";
  static constexpr const char* kDisplay = "throws";
  static constexpr const char* kVersion = "0.0.1";
  dmem::plugin::Outcome configure(const dmem::plugin::Params& p) {
    if (p.get("throw_in") == "configure") throw std::runtime_error("configure exploded");
    return {};
  }
  dmem::plugin::Outcome caps(dmem::plugin::Caps&) { return {}; }
  dmem::plugin::Outcome stored_bytes(const dmem_plugin_tensor&, std::uint64_t&) {
    throw std::bad_alloc();
  }
  dmem::plugin::Outcome quantize(const dmem_plugin_tensor&, dmem_plugin_tensor&, void*) {
    throw std::runtime_error(std::string(500, 'x'));
  }
  dmem::plugin::Outcome dequantize(const dmem_plugin_tensor&, dmem_plugin_tensor&, void*) {
    throw 42;  // not a std::exception
  }
  dmem::plugin::Outcome linear(const dmem_plugin_tensor&, const dmem_plugin_tensor&,
                               const dmem_plugin_tensor*, dmem_plugin_tensor&, void*) {
    return {DMEM_PLUGIN_UNSUPPORTED, "no linear here"};
  }
};
using Throwing = dmem::plugin::QuantizerAdapter<ThrowingQuantizer>;

}  // namespace

TEST_CASE("adapter: descriptor and probe are filled from the class", "[abi]") {
  const dmem_plugin_probe_info* probe = Int8::probe();
  CHECK(probe->struct_size == sizeof(dmem_plugin_probe_info));
  CHECK(probe->abi_major == DMEM_PLUGIN_ABI_MAJOR);
  CHECK(probe->abi_minor == DMEM_PLUGIN_ABI_MINOR);
  CHECK(probe->kind == DMEM_PLUGIN_KIND_QUANTIZER);
  CHECK(std::string(probe->id) == "dmem.quantizer.int8_row_test");
  const dmem_plugin_descriptor* d = Int8::descriptor();
  CHECK(d->struct_size == sizeof(dmem_plugin_descriptor));
  CHECK(std::string(d->display) == "int8 per row (test)");
  CHECK(d->quantizer == Int8::vtable());
  CHECK(d->quantizer->struct_size == sizeof(dmem_quantizer_vtable));
  CHECK(d->offloader == nullptr);
}

TEST_CASE("adapter: an int8 quantizer runs entirely through the C table", "[abi]") {
  const dmem_quantizer_vtable* q = Int8::descriptor()->quantizer;
  ErrorBuffer e(64);
  Params params{{"bits", "8"}};
  void* inst = nullptr;
  REQUIRE(q->create(&params.c, &inst, &e.err) == DMEM_PLUGIN_OK);
  REQUIRE(inst != nullptr);
  CHECK(e.text().empty());  // a success leaves an empty message

  const dmem_quantizer_caps* caps = q->caps(inst);
  REQUIRE(caps != nullptr);
  CHECK(caps->struct_size == sizeof(dmem_quantizer_caps));
  CHECK(caps->exec_devices == DMEM_PLUGIN_DEVICE_CPU);
  CHECK((caps->storage_tiers & DMEM_PLUGIN_TIER_DISK) != 0);
  CHECK(caps->input_dtypes == DMEM_PLUGIN_DTYPE_BIT(DMEM_PLUGIN_DTYPE_F32));
  CHECK(caps->quality_tier == DMEM_PLUGIN_QUALITY_INT8);
  CHECK(caps->speed_factor == 1.5);
  CHECK(caps->cuda_arch_count == 0);
  CHECK(std::string(caps->display) == "int8 per row (test)");
  CHECK(std::string(caps->variant).empty());

  // W [3, 4]: stored as 3 f32 scales then 12 int8 codes.
  std::vector<float> w = {1.0f, -2.0f, 0.5f, 0.25f, 0, 0, 0, 0, -127.0f, 63.5f, 1.0f, 2.0f};
  dmem_plugin_tensor wt = f32_tensor(w, {3, 4});
  std::uint64_t bytes = 0;
  REQUIRE(q->stored_bytes(inst, &wt, &bytes, &e.err) == DMEM_PLUGIN_OK);
  CHECK(bytes == 3 * 4 + 3 * 4);

  std::vector<float> storage(bytes / 4);  // float storage keeps the scales aligned
  dmem_plugin_tensor packed = wt;
  packed.data = storage.data();
  packed.nbytes = bytes;
  REQUIRE(q->quantize(inst, &wt, &packed, nullptr, &e.err) == DMEM_PLUGIN_OK);

  std::vector<float> back(w.size(), -1.0f);
  dmem_plugin_tensor bt = f32_tensor(back, {3, 4});
  REQUIRE(q->dequantize(inst, &packed, &bt, nullptr, &e.err) == DMEM_PLUGIN_OK);
  for (std::size_t r = 0; r < 3; ++r) {
    float absmax = 0;
    for (std::size_t c = 0; c < 4; ++c) absmax = std::max(absmax, std::fabs(w[r * 4 + c]));
    for (std::size_t c = 0; c < 4; ++c)
      CHECK(std::fabs(back[r * 4 + c] - w[r * 4 + c]) <= absmax / 127.0f / 2.0f + 1e-6f);
  }
  CHECK(back[8] == -127.0f);  // the row's absmax is exact
  CHECK(back[4] == 0.0f);     // an all-zero row stays zero

  // y [2, 3] = x [2, 4] * W^T + b, against the same product on the dequantized weights.
  std::vector<float> x = {1, 2, 3, 4, -1, 0.5f, 0, 2};
  std::vector<float> b = {0.5f, -1, 2};
  std::vector<float> y(6, 0.0f);
  dmem_plugin_tensor xt = f32_tensor(x, {2, 4}), bt2 = f32_tensor(b, {3}),
                     yt = f32_tensor(y, {2, 3});
  REQUIRE(q->linear(inst, &xt, &packed, &bt2, &yt, nullptr, &e.err) == DMEM_PLUGIN_OK);
  for (std::size_t n = 0; n < 2; ++n)
    for (std::size_t o = 0; o < 3; ++o) {
      float ref = b[o];
      for (std::size_t k = 0; k < 4; ++k) ref += x[n * 4 + k] * back[o * 4 + k];
      CHECK(y[n * 3 + o] == Approx(ref).margin(1e-4));
    }
  // Without bias.
  REQUIRE(q->linear(inst, &xt, &packed, nullptr, &yt, nullptr, nullptr) == DMEM_PLUGIN_OK);
  CHECK(y[0] == Approx(1 * back[0] + 2 * back[1] + 3 * back[2] + 4 * back[3]).margin(1e-4));
  q->destroy(inst);
}

TEST_CASE("adapter: a returned error arrives as status and message", "[abi]") {
  const dmem_quantizer_vtable* q = Int8::vtable();
  ErrorBuffer e(128);
  void* inst = reinterpret_cast<void*>(0x1);
  Params unknown{{"group", "64"}};
  CHECK(q->create(&unknown.c, &inst, &e.err) == DMEM_PLUGIN_INVALID_ARGUMENT);
  CHECK(inst == nullptr);  // a failed create leaves no instance
  CHECK(e.text() == "unknown parameter 'group' (this quantizer takes: bits)");
  Params four{{"bits", "4"}};
  CHECK(q->create(&four.c, &inst, &e.err) == DMEM_PLUGIN_UNSUPPORTED);
  CHECK(e.text() == "only bits=8 is implemented");

  Params short_params{{"bits", "8"}};
  short_params.c.struct_size = 8;
  CHECK(q->create(&short_params.c, &inst, &e.err) == DMEM_PLUGIN_INVALID_ARGUMENT);
  CHECK(e.text() == "params struct_size is too small");
  REQUIRE(q->create(nullptr, &inst, nullptr) == DMEM_PLUGIN_OK);  // no params, no error buffer
  std::vector<float> v(4);
  dmem_plugin_tensor t = f32_tensor(v, {2, 2});
  std::uint64_t bytes = 0;
  t.dtype = DMEM_PLUGIN_DTYPE_F16;
  CHECK(q->stored_bytes(inst, &t, &bytes, &e.err) == DMEM_PLUGIN_UNSUPPORTED);
  CHECK(e.text() == "only f32 tensors are accepted");
  // The adapter rejects malformed host structs before the class sees them.
  t.dtype = DMEM_PLUGIN_DTYPE_F32;
  t.struct_size = 16;
  CHECK(q->stored_bytes(inst, &t, &bytes, &e.err) == DMEM_PLUGIN_INVALID_ARGUMENT);
  CHECK(e.text() == "tensor struct_size is too small");
  t.struct_size = sizeof(t);
  t.rank = DMEM_PLUGIN_MAX_RANK + 1;
  CHECK(q->stored_bytes(inst, &t, &bytes, &e.err) == DMEM_PLUGIN_INVALID_ARGUMENT);
  CHECK(q->stored_bytes(inst, nullptr, &bytes, &e.err) == DMEM_PLUGIN_INVALID_ARGUMENT);
  CHECK(q->stored_bytes(nullptr, &t, &bytes, &e.err) == DMEM_PLUGIN_INVALID_ARGUMENT);
  t.rank = 2;
  t.device = DMEM_PLUGIN_DEVICE_CUDA;
  std::vector<float> out(16);
  dmem_plugin_tensor packed = f32_tensor(out, {2, 2});
  CHECK(q->quantize(inst, &t, &packed, nullptr, &e.err) == DMEM_PLUGIN_UNSUPPORTED);
  CHECK(e.text() == "source is not in CPU memory");
  CHECK(q->caps(nullptr) == nullptr);
  q->destroy(inst);
  q->destroy(nullptr);  // like delete: a no-op
}

TEST_CASE("adapter: exceptions become a status and a bounded, NUL-terminated message", "[abi]") {
  const dmem_quantizer_vtable* q = Throwing::vtable();
  ErrorBuffer e(32);
  void* inst = reinterpret_cast<void*>(0x1);
  Params bad{{"throw_in", "configure"}};
  CHECK(q->create(&bad.c, &inst, &e.err) == DMEM_PLUGIN_INTERNAL);
  CHECK(inst == nullptr);
  CHECK(e.text() == "create: configure exploded");
  CHECK(e.err.length == e.text().size());

  REQUIRE(q->create(nullptr, &inst, &e.err) == DMEM_PLUGIN_OK);
  std::vector<float> v(4);
  dmem_plugin_tensor t = f32_tensor(v, {2, 2});
  dmem_plugin_tensor packed = t;
  // 510 characters ("quantize: " + 500 x) into 32 bytes: 31 of them and a NUL, the rest dropped,
  // and `length` tells the host how long the whole message was.
  CHECK(q->quantize(inst, &t, &packed, nullptr, &e.err) == DMEM_PLUGIN_INTERNAL);
  CHECK(e.text() == "quantize: " + std::string(21, 'x'));
  CHECK(e.bytes[31] == '\0');
  CHECK(e.err.length == 510);
  CHECK(e.canary_intact());

  std::uint64_t bytes = 0;
  CHECK(q->stored_bytes(inst, &t, &bytes, &e.err) == DMEM_PLUGIN_OUT_OF_MEMORY);
  CHECK(e.text() == "out of memory");
  CHECK(q->dequantize(inst, &packed, &t, nullptr, &e.err) == DMEM_PLUGIN_INTERNAL);
  CHECK(e.text() == "dequantize");  // not a std::exception: the method's name is all there is
  CHECK(q->linear(inst, &t, &t, nullptr, &t, nullptr, &e.err) == DMEM_PLUGIN_UNSUPPORTED);
  CHECK(e.text() == "no linear here");
  // No buffer, a one-byte buffer: still a status, never a write out of bounds.
  CHECK(q->quantize(inst, &t, &packed, nullptr, nullptr) == DMEM_PLUGIN_INTERNAL);
  ErrorBuffer one(1);
  CHECK(q->quantize(inst, &t, &packed, nullptr, &one.err) == DMEM_PLUGIN_INTERNAL);
  CHECK(one.bytes[0] == '\0');
  CHECK(one.canary_intact());
  q->destroy(inst);
}

TEST_CASE("adapter: the error struct is written only as far as its struct_size", "[abi]") {
  ErrorBuffer e(16);
  e.err.length = 777;
  e.err.struct_size = 16;  // covers the message, not `length`
  dmem::plugin::write_error(&e.err, "hello");
  CHECK(e.text() == "hello");
  CHECK(e.err.length == 777);
  e.err.struct_size = 8;  // covers not even the message pointer
  dmem::plugin::write_error(&e.err, "other");
  CHECK(e.text() == "hello");
  dmem::plugin::write_error(nullptr, "nothing happens");
}

namespace {
std::vector<std::string>& logged() {
  static std::vector<std::string> lines;
  return lines;
}
void log_to_vector(void* user, std::int32_t level, const char* message) {
  CHECK(user == &logged());
  logged().push_back(std::to_string(level) + " " + message);
}
}  // namespace

TEST_CASE("adapter: entry keeps the host table for logging and checks its major", "[abi]") {
  static dmem_plugin_host host{sizeof(dmem_plugin_host), DMEM_PLUGIN_ABI_MAJOR,
                               DMEM_PLUGIN_ABI_MINOR, &logged(), &log_to_vector};
  const dmem_plugin_descriptor* d = nullptr;
  ErrorBuffer e(128);
  REQUIRE(Int8::entry(&host, &d, &e.err) == DMEM_PLUGIN_OK);
  CHECK(d == Int8::descriptor());
  logged().clear();
  dmem::plugin::log(DMEM_PLUGIN_LOG_WARN, "from the plugin");
  CHECK(logged() == std::vector<std::string>{"3 from the plugin"});

  dmem_plugin_host other = host;
  other.abi_major = DMEM_PLUGIN_ABI_MAJOR + 1;
  CHECK(Int8::entry(&other, &d, &e.err) == DMEM_PLUGIN_UNSUPPORTED);
  CHECK(d == nullptr);
  CHECK(Int8::entry(&host, nullptr, &e.err) == DMEM_PLUGIN_INVALID_ARGUMENT);
  // A host without a log callback (or none at all): logging is dropped.
  REQUIRE(Int8::entry(nullptr, &d, nullptr) == DMEM_PLUGIN_OK);
  logged().clear();
  dmem::plugin::log(DMEM_PLUGIN_LOG_ERROR, "dropped");
  CHECK(logged().empty());
}

TEST_CASE("adapter: DMEM_QUANTIZER_PLUGIN exports probe and entry (built without exceptions)",
          "[abi]") {
  const dmem_plugin_probe_info* probe = dmem_plugin_probe();
  REQUIRE(probe != nullptr);
  CHECK(std::string(probe->id) == "dmem.quantizer.int8_row_noexcept_test");
  const dmem_plugin_descriptor* d = nullptr;
  REQUIRE(dmem_plugin_entry(nullptr, &d, nullptr) == DMEM_PLUGIN_OK);
  REQUIRE(d != nullptr);
  void* inst = nullptr;
  REQUIRE(d->quantizer->create(nullptr, &inst, nullptr) == DMEM_PLUGIN_OK);
  std::vector<float> v = {3, -3};
  dmem_plugin_tensor t = f32_tensor(v, {1, 2});
  std::uint64_t bytes = 0;
  CHECK(d->quantizer->stored_bytes(inst, &t, &bytes, nullptr) == DMEM_PLUGIN_OK);
  CHECK(bytes == 6);
  d->quantizer->destroy(inst);
}

TEST_CASE("docs/plugin-guide.md shows the example plugin as it is tested", "[abi]") {
  auto read = [](const std::string& path) {
    std::ifstream in(std::string(DMEM_SOURCE_DIR) + "/" + path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const std::string code = read("tests/abi/int8_row_quantizer.hpp");
  REQUIRE(code.size() > 1000);
  CHECK(read("docs/plugin-guide.md").find(code) != std::string::npos);
}
