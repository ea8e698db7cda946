// write_synthetic_model: a model's tensors filled with deterministic pseudo-random values, written
// as a diffusers folder (or one .gguf for GGML block types) that open_model() reads back.
// docs/synthetic.md describes the values and the layout.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "dmem/block_quant.hpp"
#include "dmem/synthetic.hpp"
#include "dmem/writer.hpp"
#include "format/file_io.hpp"
#include "format/gguf_arch.hpp"
#include "format/json_util.hpp"
#include "format/temp_folder.hpp"
#include "model/synthetic_config.hpp"

namespace dmem {
inline namespace v1 {

namespace {

namespace fs = std::filesystem;

// ---- values ----------------------------------------------------------------------------------

// splitmix64: the same sequence on every machine and standard library.
std::uint64_t next(std::uint64_t& s) noexcept {
  s += 0x9E3779B97F4A7C15ull;
  std::uint64_t z = s;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

std::uint64_t fnv1a(std::string_view a, std::string_view b) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ull;
  const auto mix = [&](std::string_view s) {
    for (unsigned char ch : s) h = (h ^ ch) * 0x100000001b3ull;
  };
  mix(a);
  h = (h ^ 0xffu) * 0x100000001b3ull;  // separator no name byte can forge in UTF-8
  mix(b);
  return h;
}

// A signed integer in [-2^23, 2^23): products with powers of two and one rounding stay exact
// and identical everywhere (no fused multiply-add can change them).
std::int64_t next_k(std::uint64_t& s) noexcept {
  return static_cast<std::int64_t>(next(s) >> 40) - (std::int64_t{1} << 23);
}

enum class Kind { weight, norm, small };

struct ValueClass {
  Kind kind = Kind::small;
  double bound = 1.0 / 64;  ///< half-width of the uniform range (around 1 for norms)
};

ValueClass value_class(const TensorInfo& t) {
  const auto dot = t.name.rfind('.');
  const std::string_view last = dot == std::string::npos ? std::string_view(t.name)
                                                         : std::string_view(t.name).substr(dot + 1);
  if (last == "bias") return {};
  bool trailing_ones = !t.shape.empty();
  for (std::size_t i = 1; i < t.shape.size(); ++i) trailing_ones = trailing_ones && t.shape[i] == 1;
  if (trailing_ones && (last == "weight" || last == "scale" || last == "gamma"))
    return {Kind::norm, 1.0 / 64};
  if (t.shape.size() >= 2) {
    const std::uint64_t fan_in =
        t.shape[0] == 0 ? 1 : std::max<std::uint64_t>(1, t.elements() / t.shape[0]);
    return {Kind::weight, 1.0 / std::sqrt(static_cast<double>(fan_in))};
  }
  return {};
}

void fill(const TensorInfo& t, std::uint64_t state, const ValueClass& vc, float* out,
          std::size_t n) noexcept {
  const double step = vc.bound * 0x1p-23;
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t k = next_k(state);
    if (vc.kind == Kind::norm) {
      // 1 + k / 2^29, exact in double before the one rounding to float.
      out[i] = static_cast<float>(static_cast<double>((std::int64_t{1} << 29) + k) * 0x1p-29);
    } else {
      out[i] = static_cast<float>(static_cast<double>(k) * step);
    }
  }
  (void)t;
}

// GGML types without a reference quantizer here: random blocks whose scales are set so every
// value lies within the class's bound (offsets and ranges from ggml's block layouts).
struct BlockScales {
  DType type;
  int d_at, dmin_at;    // byte offsets of the f16 scale and min (-1: none)
  double d_div, m_div;  // |value| <= d * d_div + dmin * m_div
};
constexpr BlockScales kBlockScales[] = {
    {DType::q2_k, 80, 82, 15.0 * 3, 15.0}, {DType::q3_k, 108, -1, 32.0 * 4, 0},
    {DType::q4_k, 0, 2, 63.0 * 15, 63.0},  {DType::q5_k, 0, 2, 63.0 * 31, 63.0},
    {DType::q6_k, 208, -1, 128.0 * 32, 0}, {DType::iq4_nl, 0, -1, 127.0, 0},
};

void put_f16(unsigned char* p, float v) noexcept {
  const std::uint16_t h = f32_to_f16(v);
  p[0] = static_cast<unsigned char>(h & 0xFF);
  p[1] = static_cast<unsigned char>(h >> 8);
}

Status fill_blocks(const TensorInfo& t, std::uint64_t state, double bound, unsigned char* out) {
  const DTypeInfo& info = dtype_info(t.dtype);
  const std::uint64_t blocks = t.nbytes / info.block_bytes;
  for (std::uint64_t i = 0; i < t.nbytes; i += 8) {
    const std::uint64_t r = next(state);
    for (std::uint64_t j = 0; j < 8 && i + j < t.nbytes; ++j)
      out[i + j] = static_cast<unsigned char>(r >> (8 * j));
  }
  if (t.dtype == DType::mxfp4) {
    // E8M0 scale e gives 2^(e-128) x (doubled e2m1 values up to 12).
    int e = 128;
    while (e > 1 && std::ldexp(12.0, e - 128) > bound) --e;
    for (std::uint64_t b = 0; b < blocks; ++b)
      out[b * info.block_bytes] = static_cast<unsigned char>(e);
    return Status::ok();
  }
  for (const auto& s : kBlockScales) {
    if (s.type != t.dtype) continue;
    // Half the bound to the scale term and half to the min term when there is one; the f16
    // rounding is kept below the bound by a 1/1024 margin.
    const double share = (s.dmin_at >= 0 ? 0.5 : 1.0) * (1.0 - 1.0 / 1024);
    for (std::uint64_t b = 0; b < blocks; ++b) {
      unsigned char* p = out + b * info.block_bytes;
      put_f16(p + s.d_at, static_cast<float>(bound * share / s.d_div));
      if (s.dmin_at >= 0) put_f16(p + s.dmin_at, static_cast<float>(bound * share / s.m_div));
    }
    return Status::ok();
  }
  std::string message = "cannot generate ";
  message.append(info.name).append(" blocks");
  return Status(Errc::unsupported, std::move(message))
      .with_tensor(t.name)
      .with_rule("synthetic.dtype")
      .with_hint(
          "synthetic weights cover element types and q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k "
          "q4_k q5_k q6_k iq4_nl mxfp4");
}

// The tensor's bytes: values of its class converted to its dtype.
Status generate(const Component& c, const TensorInfo& t, std::uint64_t seed,
                std::vector<unsigned char>& bytes) {
  std::uint64_t state = seed ^ fnv1a(c.name, t.name);
  (void)next(state);
  bytes.assign(t.nbytes, 0);
  const ValueClass vc = value_class(t);
  const DTypeInfo& info = dtype_info(t.dtype);
  if (info.is_block_quant && !can_quantize(t.dtype)) {
    const double bound = vc.kind == Kind::norm ? 1.0 + vc.bound : vc.bound;
    return fill_blocks(t, state, bound, bytes.data());
  }
  const std::uint64_t n = t.elements();
  std::vector<float> values(n);
  fill(t, state, vc, values.data(), n);
  Status st = convert(DType::f32, values.data(), t.dtype, bytes.data(), n);
  if (!st.is_ok()) {
    st.with_tensor(t.name).with_rule("synthetic.dtype");
    return st;
  }
  return Status::ok();
}

// ---- layout ----------------------------------------------------------------------------------

bool needs_gguf(const Model& m) {
  for (const auto& c : m.components)
    for (const auto& t : c.tensors)
      if (dtype_info(t.dtype).safetensors_name.empty()) return true;
  return false;
}

Status bad_name(const std::string& name, std::string_view dir) {
  std::string message = "component name '";
  message.append(name).append("' cannot be a folder of a diffusers pipeline");
  return Status(Errc::invalid_argument, std::move(message))
      .with_file(std::string(dir))
      .with_rule("synthetic.component_name")
      .with_hint("component names are plain folder names that do not start with '_' or '.'");
}

bool plain_name(const std::string& n) {
  return !n.empty() && n.front() != '_' && n.front() != '.' &&
         n.find_first_of(std::string_view("/\\\0", 3)) == std::string::npos;
}

Status write_component_safetensors(const Component& c, const std::string& path,
                                   std::uint64_t seed) {
  // Every tensor's bytes are held until the file is written: the writer takes them all at once.
  std::vector<std::vector<unsigned char>> data(c.tensors.size());
  std::vector<TensorData> tensors;
  tensors.reserve(c.tensors.size());
  for (std::size_t i = 0; i < c.tensors.size(); ++i) {
    const TensorInfo& t = c.tensors[i];
    DMEM_TRY(generate(c, t, seed, data[i]));
    tensors.push_back(TensorData{t.name, t.dtype, t.shape, data[i].data(), t.nbytes});
  }
  return write_safetensors(path, tensors);
}

Status write_gguf_component(const Component& c, const std::string& path, std::uint64_t seed) {
  std::vector<std::vector<unsigned char>> data(c.tensors.size());
  std::vector<TensorData> tensors;
  tensors.reserve(c.tensors.size());
  for (std::size_t i = 0; i < c.tensors.size(); ++i) {
    const TensorInfo& t = c.tensors[i];
    DMEM_TRY(generate(c, t, seed, data[i]));
    tensors.push_back(TensorData{t.name, t.dtype, t.shape, data[i].data(), t.nbytes});
  }
  std::vector<GgufKv> meta;
  if (std::string arch = detail::gguf_architecture(c.arch); !arch.empty()) {
    GgufKv kv;
    kv.key = "general.architecture";
    kv.value.type = GgufType::string;
    kv.value.value = std::move(arch);
    meta.push_back(std::move(kv));
  }
  return write_gguf(path, tensors, meta);
}

Status write_diffusers(const Model& m, const std::string& root, std::uint64_t seed) {
  nlohmann::json index = nlohmann::json::object();
  index["_class_name"] =
      m.pipeline_class.empty() ? std::string("DiffusionPipeline") : m.pipeline_class;
  index["_diffusers_version"] = "0.35.0";
  for (const auto& c : m.components) {
    const bool transformers = c.role == Role::text_encoder;
    index[c.name] =
        nlohmann::json::array({transformers ? "transformers" : "diffusers", c.class_name});
    const std::string folder = root + "/" + c.name;
    if (::mkdir(folder.c_str(), 0755) != 0)
      return detail::os_error("cannot create folder", folder, errno);
    const std::string config = c.config_json.empty() ? detail::synthesize_config(c) : c.config_json;
    DMEM_TRY(detail::write_file_atomic(folder + "/config.json", config));
    const char* weights =
        transformers ? "/model.safetensors" : "/diffusion_pytorch_model.safetensors";
    DMEM_TRY(write_component_safetensors(c, folder + weights, seed));
  }
  return detail::write_file_atomic(root + "/model_index.json", detail::dump_json(index, 2));
}

Status check_target(const std::string& dir) {
  if (dir.empty())
    return Status(Errc::invalid_argument, "no folder given").with_rule("synthetic.dir");
  if (dir.find('\0') != std::string::npos)
    return Status(Errc::invalid_argument, "the path contains a NUL byte").with_rule("file.path");
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::ok();
    return detail::os_error("cannot check", dir, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status(Errc::invalid_argument, "exists and is not a folder")
        .with_file(dir)
        .with_rule("synthetic.dir")
        .with_hint("give a new folder name; synthetic models are never written over files");
  }
  std::error_code ec;
  const bool empty = fs::is_empty(dir, ec);
  if (ec) return detail::os_error("cannot list folder", dir, ec.value());
  if (!empty) {
    return Status(Errc::invalid_argument, "the folder is not empty")
        .with_file(dir)
        .with_rule("synthetic.dir")
        .with_hint("give a new or empty folder; synthetic models are never written over files");
  }
  return Status::ok();
}

}  // namespace

Result<std::string> write_synthetic_model(const Model& model, std::string_view dir_view,
                                          std::uint64_t seed) noexcept {
  std::string dir(dir_view);
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  DMEM_TRY(check_target(dir));
  if (model.components.empty())
    return Status(Errc::invalid_argument, "the model has no components")
        .with_rule("synthetic.model");
  const bool gguf = needs_gguf(model);
  if (gguf && model.components.size() != 1) {
    std::string message = "GGML block types are written as one .gguf file, and the model has ";
    message.append(std::to_string(model.components.size())).append(" components");
    return Status(Errc::unsupported, std::move(message))
        .with_file(dir)
        .with_rule("synthetic.gguf")
        .with_hint("write one component at a time, or scale a model stored in safetensors");
  }
  for (const auto& c : model.components)
    if (!plain_name(c.name)) return bad_name(c.name, dir);

  detail::TempFolder tmp;
  DMEM_TRY(tmp.create(dir, "synthetic"));
  std::string opened = dir;
  if (gguf) {
    std::string file = "/";
    file.append(model.components.front().name).append(".gguf");
    DMEM_TRY(write_gguf_component(model.components.front(), tmp.path() + file, seed));
    opened += file;
  } else {
    DMEM_TRY(write_diffusers(model, tmp.path(), seed));
  }
  DMEM_TRY(tmp.commit(dir));
  return opened;
}

}  // namespace v1
}  // namespace dmem
