// convert_model: every tensor read once, quantized by its component's plugin, split into its
// ecosystem's checkpoint keys and written at the offset a header computed up front assigns it.
// docs/convert.md describes the outputs and the guarantees.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "convert/checkpoint_parts.hpp"
#include "core/text_escape.hpp"
#include "dmem/convert.hpp"
#include "dmem/module_tree.hpp"
#include "dmem/plugin_registry.hpp"
#include "dmem/tensor_source.hpp"
#include "dmem/writer.hpp"
#include "format/file_io.hpp"
#include "format/gguf_arch.hpp"
#include "format/json_util.hpp"
#include "format/temp_folder.hpp"
#include "format/writer_layout.hpp"
#include "model/synthetic_config.hpp"

namespace dmem {
inline namespace v1 {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

Status convert_error(Errc code, std::string message, const char* rule, std::string hint) {
  return Status(code, std::move(message)).with_rule(rule).with_hint(std::move(hint));
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

bool float_dtype(DType t) {
  return t == DType::f32 || t == DType::f16 || t == DType::bf16;
}

// One source tensor: copied as it is, or quantized into parts.
struct TensorJob {
  const TensorInfo* info = nullptr;
  bool quantize = false;
  DType input = DType::f32;
  std::uint64_t packed_bytes = 0;
  std::size_t first_part = 0;
  std::size_t parts = 0;
};

struct ComponentJob {
  const Component* component = nullptr;
  const QuantChoice* choice = nullptr;  // nullptr: copied unchanged
  detail::PartKind kind = detail::PartKind::gguf;
  QuantizerInstance quantizer;
  detail::Bnb4Tables tables;
  std::vector<TensorJob> tensors;
  std::vector<detail::OutPart> parts;  // raw copies too (constant = false, offset 0)
  std::uint64_t bytes_in = 0;
  std::uint64_t quantized = 0;
  std::string path;  // final path of its file
};

// Holds the bytes of one tensor at a time; grows to the largest and is reused.
struct Buffers {
  std::vector<unsigned char> raw, wide, packed;
};

// Reads a tensor and, when it is quantized, packs it (converting to f32 first when the plugin
// does not take its dtype).
Status load_tensor(const ComponentJob& job, const TensorJob& tj, const TensorSource& source,
                   Buffers& buf) {
  const TensorInfo& t = *tj.info;
  buf.raw.resize(t.nbytes);
  DMEM_TRY(source.read(t, buf.raw.data()));
  if (!tj.quantize) return Status::ok();
  const void* input = buf.raw.data();
  std::uint64_t input_bytes = t.nbytes;
  if (tj.input != t.dtype) {
    buf.wide.resize(t.elements() * 4);
    DMEM_TRY(convert(t.dtype, buf.raw.data(), DType::f32, buf.wide.data(), t.elements()));
    input = buf.wide.data();
    input_bytes = buf.wide.size();
  }
  buf.packed.resize(tj.packed_bytes);
  Status s = job.quantizer.quantize(HostTensor{tj.input, t.shape, input, input_bytes},
                                    buf.packed.data(), tj.packed_bytes);
  if (!s) return std::move(s).with_tensor(t.name);
  return Status::ok();
}

// Decides, for every tensor of a component, whether it is quantized and what it becomes.
Status plan_component(ComponentJob& job, const ConvertOptions& options, const TensorSource& source,
                      Buffers& buf) {
  const Component& c = *job.component;
  std::unordered_set<std::string> linear;
  if (job.choice != nullptr)
    for (const LeafInfo& leaf : summarize(c).leaves)
      if (leaf.linear) linear.insert(leaf.name);
  std::uint64_t float_linear = 0;
  DType other_dtype = DType::f32;
  for (const TensorInfo& t : c.tensors) {
    TensorJob tj;
    tj.info = &t;
    job.bytes_in += t.nbytes;
    const std::size_t dot = t.name.rfind('.');
    // The runtime's rule (src/runtime/residency_layout.cpp): 2-D `.weight` of a linear leaf.
    const bool linear_weight = job.choice != nullptr && dot != std::string::npos &&
                               t.name.compare(dot, std::string::npos, ".weight") == 0 &&
                               t.shape.size() == 2 && linear.count(t.name.substr(0, dot)) != 0;
    if (linear_weight && !float_dtype(t.dtype)) {
      other_dtype = t.dtype;
      const DTypeInfo& info = dtype_info(t.dtype);
      const bool storable = options.format == ConvertFormat::gguf ? info.ggml_id >= 0
                                                                  : !info.safetensors_name.empty();
      if (!storable) {
        std::string message = "the weight is already ";
        message += info.name;
        message += ", which ";
        message += job.choice->name;
        message += " cannot quantize (it takes f32, f16 and bf16) and ";
        message += options.format == ConvertFormat::gguf ? "GGUF" : "safetensors";
        message += " cannot store";
        return convert_error(Errc::unsupported, std::move(message), "convert.dtype",
                             "convert from the unquantized checkpoint")
            .with_tensor(t.name);
      }
    }
    if (linear_weight && float_dtype(t.dtype)) {
      ++float_linear;
      tj.input = job.quantizer.accepts(t.dtype) ? t.dtype : DType::f32;
      // A tensor the plugin refuses (rows not whole blocks of its type) keeps its dtype.
      if (auto bytes = job.quantizer.stored_bytes(tj.input, t.shape)) {
        tj.quantize = true;
        tj.packed_bytes = *bytes;
      }
    }
    tj.first_part = job.parts.size();
    if (tj.quantize) {
      const unsigned char* packed = nullptr;
      if (detail::parts_need_data(job.kind)) {
        // The part list depends on the packed bytes (bnb's nested offset goes into the JSON):
        // quantize once now, and again when writing.
        DMEM_TRY(load_tensor(job, tj, source, buf));
        packed = buf.packed.data();
      }
      auto parts = detail::checkpoint_parts(job.kind, *job.choice, job.tables, t, tj.input,
                                            tj.packed_bytes, packed);
      if (!parts) return parts.status();
      for (auto& p : *parts) job.parts.push_back(std::move(p));
      ++job.quantized;
    } else {
      detail::OutPart p;
      p.name = t.name;
      p.dtype = t.dtype;
      p.shape = t.shape;
      p.nbytes = t.nbytes;
      job.parts.push_back(std::move(p));
    }
    tj.parts = job.parts.size() - tj.first_part;
    job.tensors.push_back(tj);
  }
  if (job.choice != nullptr && job.quantized == 0) {
    std::string message = "component '";
    message += c.name;
    message += "': ";
    if (float_linear == 0 && other_dtype != DType::f32) {
      message += "its linear weights are ";
      message += dtype_name(other_dtype);
      message += "; ";
      message += job.choice->name;
      message += " quantizes f32, f16 and bf16 weights only";
      return convert_error(Errc::unsupported, std::move(message), "convert.dtype",
                           "convert from the unquantized checkpoint");
    }
    if (float_linear == 0) {
      message += "has no linear weights for ";
      message += job.choice->name;
      message += " to quantize";
      return convert_error(Errc::unsupported, std::move(message), "convert.dtype",
                           "leave this component out of --quantize");
    }
    message += job.choice->name;
    message += " cannot store any of its linear weights (their shapes do not fit its blocks)";
    return convert_error(Errc::unsupported, std::move(message), "convert.dtype",
                         "pick a quantizer with a smaller block size");
  }
  return Status::ok();
}

// Writes one component's file: header first, then every tensor at its offset.
Status write_component(ComponentJob& job, const ConvertOptions& options, const TensorSource& source,
                       Buffers& buf, ConvertProgress& progress, Clock::time_point start,
                       std::uint64_t& bytes_out) {
  const bool gguf = options.format == ConvertFormat::gguf;
  std::vector<TensorData> tensors;
  tensors.reserve(job.parts.size());
  for (const auto& p : job.parts) {
    if (!gguf && !dtype_info(p.dtype).safetensors_name.empty()) {
      tensors.push_back(TensorData{p.name, p.dtype, p.shape, nullptr, p.nbytes});
      continue;
    }
    if (gguf && dtype_info(p.dtype).ggml_id >= 0) {
      tensors.push_back(TensorData{p.name, p.dtype, p.shape, nullptr, p.nbytes});
      continue;
    }
    std::string message = "tensor of dtype ";
    message += dtype_name(p.dtype);
    message += gguf ? " cannot be stored in GGUF" : " cannot be stored in safetensors";
    return convert_error(Errc::unsupported, std::move(message), "convert.format",
                         gguf ? "write --format safetensors"
                              : "write --format gguf, or convert from the unquantized checkpoint")
        .with_tensor(p.name)
        .with_file(job.path);
  }
  const auto make_layout = [&]() -> Result<detail::WriteLayout> {
    if (gguf) {
      std::vector<GgufKv> meta;
      // city96 / ComfyUI-GGUF keys: the architecture names the model, quantization version 2.
      if (std::string arch = detail::gguf_architecture(job.component->arch); !arch.empty()) {
        GgufKv kv;
        kv.key = "general.architecture";
        kv.value.type = GgufType::string;
        kv.value.value = std::move(arch);
        meta.push_back(std::move(kv));
      }
      GgufKv version;
      version.key = "general.quantization_version";
      version.value.type = GgufType::u32;
      version.value.value = std::uint64_t{2};
      meta.push_back(std::move(version));
      return detail::gguf_layout(job.path, tensors, meta, 32, false);
    }
    // transformers refuses safetensors files without format=pt when loading them.
    const std::pair<std::string, std::string> meta[] = {{"format", "pt"}};
    return detail::safetensors_layout(job.path, tensors, meta, false);
  };
  auto layout = make_layout();
  if (!layout) return layout.status();

  auto file = detail::TempFile::create(job.path);
  if (!file) return file.status();
  // The whole size up front: a full disk fails here, before any quantization work.
  DMEM_TRY(file->allocate(layout->file_size));
  DMEM_TRY(file->write_at(0, layout->head.data(), layout->head.size()));
  for (const TensorJob& tj : job.tensors) {
    DMEM_TRY(load_tensor(job, tj, source, buf));
    for (std::size_t k = tj.first_part; k < tj.first_part + tj.parts; ++k) {
      const detail::OutPart& p = job.parts[k];
      const unsigned char* data = p.constant
                                      ? reinterpret_cast<const unsigned char*>(p.bytes.data())
                                  : tj.quantize ? buf.packed.data() + p.packed_offset
                                                : buf.raw.data();
      DMEM_TRY(file->write_at(layout->offsets[k], data, p.nbytes));
    }
    ++progress.tensors_done;
    progress.bytes_done += tj.info->nbytes;
    progress.tensor = tj.info->name;
    progress.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    progress.bytes_per_second =
        progress.seconds > 0 ? static_cast<double>(progress.bytes_done) / progress.seconds : 0;
    progress.eta_seconds = progress.bytes_per_second > 0
                               ? static_cast<double>(progress.bytes_total - progress.bytes_done) /
                                     progress.bytes_per_second
                               : 0;
    if (options.progress && !options.progress(progress)) {
      return convert_error(Errc::io_error, "the conversion was cancelled", "convert.cancelled",
                           "nothing was written; run it again to convert")
          .with_file(job.path);
    }
  }
  DMEM_TRY(file->commit());
  bytes_out += layout->file_size;
  return Status::ok();
}

// diffusers reads pre-quantized bitsandbytes weights only with a quantization_config.
std::string component_config(const Component& c, const QuantChoice* q, detail::PartKind kind) {
  std::string text = c.config_json.empty() ? detail::synthesize_config(c) : c.config_json;
  if (q == nullptr || (kind != detail::PartKind::bnb4 && kind != detail::PartKind::bnb4_nested &&
                       kind != detail::PartKind::bnb_int8))
    return text;
  nlohmann::json config = nlohmann::json::parse(text, nullptr, false);
  if (config.is_discarded() || !config.is_object()) return text;
  const bool four = kind != detail::PartKind::bnb_int8;
  std::string type = "nf4";
  for (const auto& [k, v] : q->params)
    if (k == "quant_type") type = v;
  nlohmann::json qc = nlohmann::json::object();
  qc["quant_method"] = "bitsandbytes";
  qc["load_in_4bit"] = four;
  qc["load_in_8bit"] = !four;
  qc["_load_in_4bit"] = four;
  qc["_load_in_8bit"] = !four;
  qc["bnb_4bit_quant_type"] = type;
  qc["bnb_4bit_use_double_quant"] = kind == detail::PartKind::bnb4_nested;
  qc["bnb_4bit_compute_dtype"] = "bfloat16";
  qc["bnb_4bit_quant_storage"] = "uint8";
  qc["llm_int8_threshold"] = 6.0;
  qc["llm_int8_skip_modules"] = nullptr;
  qc["llm_int8_enable_fp32_cpu_offload"] = false;
  qc["llm_int8_has_fp16_weight"] = false;
  config["quantization_config"] = std::move(qc);
  return detail::dump_json(config, 2);
}

Status check_output(const std::string& out, bool folder, bool force) {
  struct stat st {};
  const bool exists = ::lstat(out.c_str(), &st) == 0;
  if (folder) {
    if (exists)
      return convert_error(Errc::invalid_argument,
                           "the output exists; a model with several components is written as a "
                           "new folder, never over an existing path",
                           "convert.exists", "remove it, or pass a new folder name")
          .with_file(out);
    const fs::path parent = fs::path(out).parent_path();
    struct stat pst {};
    if (!parent.empty() && ::stat(parent.c_str(), &pst) != 0)
      return detail::os_error("cannot write into the folder of", out, errno);
    return Status::ok();
  }
  DMEM_TRY(detail::check_write_target(out));
  if (exists && !force)
    return convert_error(Errc::invalid_argument, "the output file exists", "convert.exists",
                         "pass --force to replace it, or choose another name")
        .with_file(out);
  return Status::ok();
}

}  // namespace

Result<ConvertResult> convert_model(const Model& model, std::string_view out_view,
                                    const ConvertOptions& options) noexcept {
  const auto start = Clock::now();
  std::string out(out_view);
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  if (out.empty())
    return convert_error(Errc::invalid_argument, "no output path given", "convert.output",
                         "pass -o OUT");

  // Components to write.
  std::vector<const Component*> comps;
  for (const Component& c : model.components) {
    if (!options.components.empty() &&
        std::find(options.components.begin(), options.components.end(), c.name) ==
            options.components.end())
      continue;
    if (c.files.empty())
      return convert_error(Errc::invalid_argument,
                           "component '" + c.name + "' has no weights (a catalog model?)",
                           "convert.input", "convert a checkpoint on disk")
          .with_file(model.name);
    comps.push_back(&c);
  }
  std::string names;
  for (const Component& c : model.components)
    names.append(names.empty() ? "" : ", ").append(c.name);
  for (const std::string& want : options.components)
    if (model.find(want) == nullptr)
      return convert_error(Errc::not_found, "the model has no component '" + want + "'",
                           "convert.component", "its components: " + names);
  if (comps.empty())
    return convert_error(Errc::invalid_argument, "nothing to convert", "convert.component",
                         "its components: " + names);
  for (const QuantChoice& q : options.quantize)
    if (q.component != "*" && model.find(q.component) == nullptr)
      return convert_error(
          Errc::not_found,
          "--quantize names component '" + q.component + "', which the model does not have",
          "convert.component", "its components: " + names);

  const bool gguf = options.format == ConvertFormat::gguf;
  const bool folder = comps.size() > 1;
  if (folder && gguf)
    return convert_error(
        Errc::unsupported,
        "a GGUF file holds one component and the model has " + std::to_string(comps.size()),
        "convert.gguf_components",
        "pick one with --component (e.g. the transformer, as city96's files do)");
  if (!folder) {
    const char* ext = gguf ? ".gguf" : ".safetensors";
    if (!ends_with(out, ext))
      return convert_error(Errc::invalid_argument,
                           std::string("the output must end in ") + ext + " to be read back",
                           "convert.output", std::string("e.g. -o model") + ext)
          .with_file(out);
  }
  DMEM_TRY(check_output(out, folder, options.force));

  // Plugins and quantizers.
  PluginRegistry own;
  const PluginRegistry* registry = options.plugins;
  if (registry == nullptr && !options.quantize.empty()) {
    own.discover();
    registry = &own;
  }
  std::vector<ComponentJob> jobs(comps.size());
  std::uint64_t bytes_total = 0, tensors_total = 0;
  for (std::size_t i = 0; i < comps.size(); ++i) {
    ComponentJob& job = jobs[i];
    job.component = comps[i];
    for (const QuantChoice& q : options.quantize)
      if (q.component == comps[i]->name || (q.component == "*" && job.choice == nullptr))
        job.choice = &q;
    job.path = folder ? std::string() : out;
    for (const TensorInfo& t : comps[i]->tensors) bytes_total += t.nbytes;
    tensors_total += comps[i]->tensors.size();
    if (job.choice == nullptr) continue;
    auto kind = detail::part_kind(*job.choice);
    if (!kind) return kind.status();
    job.kind = *kind;
    if (detail::part_kind_is_gguf(job.kind) != gguf)
      return convert_error(Errc::unsupported,
                           job.choice->name + (gguf ? " cannot be stored in GGUF files"
                                                    : " is a GGUF type and needs --format gguf"),
                           "convert.format",
                           gguf ? "write --format safetensors, or pick q8_0, q4_k, …"
                                : "write --format gguf -o OUT.gguf");
    auto q = registry->create_quantizer(job.choice->plugin, job.choice->params);
    if (!q) {
      Status s = q.status();
      if (s.code() == Errc::not_found)
        s.with_hint("build the stock plugins (bin/plugins beside dmem) or set DMEM_PLUGIN_PATH");
      return s;
    }
    job.quantizer = std::move(q.value());
    if (job.kind == detail::PartKind::bnb4 || job.kind == detail::PartKind::bnb4_nested) {
      auto tables = detail::bnb4_tables(job.quantizer, job.kind == detail::PartKind::bnb4_nested);
      if (!tables) return tables.status();
      job.tables = std::move(tables.value());
    }
  }

  ConvertResult result;
  result.path = out;
  ConvertProgress progress;
  progress.bytes_total = bytes_total;
  progress.tensors_total = tensors_total;
  Buffers buf;
  detail::TempFolder tmp;
  if (folder) DMEM_TRY(tmp.create(out, "convert"));
  nlohmann::json index = nlohmann::json::object();
  if (folder) {
    index["_class_name"] =
        model.pipeline_class.empty() ? std::string("DiffusionPipeline") : model.pipeline_class;
    index["_diffusers_version"] = "0.35.0";
  }
  for (ComponentJob& job : jobs) {
    const Component& c = *job.component;
    std::string final_path = out;
    if (folder) {
      const bool transformers = c.role == Role::text_encoder;
      index[c.name] =
          nlohmann::json::array({transformers ? "transformers" : "diffusers", c.class_name});
      const std::string sub = tmp.path() + "/" + c.name;
      if (c.name.empty() || c.name.find('/') != std::string::npos || c.name == "." ||
          c.name == "..")
        return convert_error(Errc::invalid_argument, "component name cannot name a folder",
                             "convert.component", "rename the component");
      if (::mkdir(sub.c_str(), 0755) != 0)
        return detail::os_error("cannot create folder", sub, errno);
      DMEM_TRY(detail::write_file_atomic(sub + "/config.json",
                                         component_config(c, job.choice, job.kind)));
      const char* weights =
          transformers ? "/model.safetensors" : "/diffusion_pytorch_model.safetensors";
      job.path = sub + weights;
      final_path = out + "/" + c.name + weights;
    }
    auto source = TensorSource::open(c);
    if (!source) return source.status();
    progress.component = c.name;
    DMEM_TRY(plan_component(job, options, *source, buf));
    std::uint64_t written = 0;
    DMEM_TRY(write_component(job, options, *source, buf, progress, start, written));
    ConvertedComponent rc;
    rc.name = c.name;
    rc.path = final_path;
    rc.quantizer = job.choice != nullptr ? job.choice->name : std::string();
    rc.tensors_in = c.tensors.size();
    rc.tensors_out = job.parts.size();
    rc.tensors_quantized = job.quantized;
    rc.bytes_in = job.bytes_in;
    rc.bytes_out = written;
    result.bytes_in += rc.bytes_in;
    result.bytes_out += rc.bytes_out;
    result.components.push_back(std::move(rc));
  }
  if (folder) {
    DMEM_TRY(
        detail::write_file_atomic(tmp.path() + "/model_index.json", detail::dump_json(index, 2)));
    // rename() would also replace an empty folder that appeared meanwhile: refuse any.
    struct stat st {};
    if (::lstat(out.c_str(), &st) == 0)
      return convert_error(Errc::invalid_argument, "the output appeared while converting",
                           "convert.exists", "remove it and convert again")
          .with_file(out);
    DMEM_TRY(tmp.commit(out));
  }
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace v1
}  // namespace dmem
