// Finding pre-quantized weights by their keys, and laying their tensors out as packed bytes.
#include "runtime/prequant.hpp"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "convert/checkpoint_parts.hpp"
#include "dmem/convert.hpp"
#include "dmem/module_tree.hpp"
#include "format/json_util.hpp"

namespace dmem::detail {
namespace {

constexpr std::uint64_t kMaxQuantState = 64 << 10;  // bitsandbytes writes ~150 bytes

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() > suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

Status state_error(const std::string& tensor, std::string message, std::string hint) {
  return Status(Errc::format_error, std::move(message))
      .with_tensor(tensor)
      .with_rule("prequant.state")
      .with_hint(std::move(hint));
}

Status format_error(const std::string& tensor, std::string message, std::string hint) {
  return Status(Errc::unsupported, std::move(message))
      .with_tensor(tensor)
      .with_rule("prequant.format")
      .with_hint(std::move(hint));
}

const char* kResave =
    "re-save it with bitsandbytes (the module's state_dict()), or convert the original "
    "weights with `dmem convert -q COMPONENT=nf4|int8`";

std::string describe_shape(const std::vector<std::uint64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  s += "]";
  return s;
}

// The bitsandbytes 4-bit state of `w` (FORMATS.md §3.5): quant_type, blocksize, the original
// dtype and shape, and the nested offset from the JSON.
Status read_bnb4(PrequantWeight& w, const TensorInfo& qs, bool fp4, const TensorInfo* nested,
                 const TensorSource& source) {
  const std::string& name = qs.name;
  if (qs.nbytes == 0 || qs.nbytes > kMaxQuantState)
    return state_error(
        name, std::string("the quant state is ") + std::to_string(qs.nbytes) + " bytes", kResave);
  std::string text(qs.nbytes, '\0');
  DMEM_TRY(source.read(qs, text.data()));
  nlohmann::json j;
  JsonError error;
  if (!parse_json_strict(text, j, error) || !j.is_object())
    return state_error(name, "the quant state is not a JSON object", kResave);
  const auto field = [&](const char* key) -> const nlohmann::json* {
    auto it = j.find(key);
    return it == j.end() ? nullptr : &*it;
  };
  const auto* type = field("quant_type");
  const auto* blocksize = field("blocksize");
  const auto* dtype = field("dtype");
  const auto* shape = field("shape");
  if (type == nullptr || !type->is_string() || blocksize == nullptr ||
      !blocksize->is_number_unsigned() || dtype == nullptr || !dtype->is_string() ||
      shape == nullptr || !shape->is_array()) {
    return state_error(name,
                       "the quant state lacks quant_type, blocksize, dtype or shape (or one has "
                       "the wrong type)",
                       kResave);
  }
  if (type->get<std::string>() != (fp4 ? "fp4" : "nf4")) {
    return state_error(name,
                       std::string("the quant state says quant_type '") + type->get<std::string>() +
                           std::string("' but its key says ") + (fp4 ? "fp4" : "nf4"),
                       kResave);
  }
  const auto original = dtype_from_name(dtype->get<std::string>());
  if (!original ||
      (*original != DType::bf16 && *original != DType::f16 && *original != DType::f32)) {
    return state_error(name,
                       std::string("the quant state's dtype '") + dtype->get<std::string>() +
                           "' is not float16, bfloat16 or float32",
                       kResave);
  }
  std::vector<std::uint64_t> dims;
  for (const auto& d : *shape) {
    if (!d.is_number_unsigned() || d.get<std::uint64_t>() == 0 ||
        d.get<std::uint64_t>() > (1u << 30))
      return state_error(name, "the quant state's shape is not a list of sizes", kResave);
    dims.push_back(d.get<std::uint64_t>());
  }
  if (dims.size() != 2) {
    return format_error(name,
                        std::string("a 4-bit weight of shape ") + describe_shape(dims) +
                            " is not a linear layer's [out, in]",
                        "keep this tensor unquantized");
  }
  const auto* offset = field("nested_offset");
  if ((nested != nullptr) != (offset != nullptr)) {
    return state_error(name,
                       nested != nullptr
                           ? "the weight has nested_absmax but the quant state no nested_offset"
                           : "the quant state has nested_offset but the weight no nested_absmax",
                       kResave);
  }
  if (offset != nullptr) {
    if (!offset->is_number())
      return state_error(name, "the quant state's nested_offset is not a number", kResave);
    const auto* nbs = field("nested_blocksize");
    if (nbs != nullptr && (!nbs->is_number_unsigned() || nbs->get<std::uint64_t>() != 256)) {
      return format_error(name, "a nested block size other than 256",
                          "bitsandbytes always writes 256; re-save the checkpoint");
    }
    w.nested_offset = static_cast<float>(offset->get<double>());
  }
  w.logical.dtype = *original;
  w.logical.shape = std::move(dims);
  w.params = {{"quant_type", fp4 ? "fp4" : "nf4"},
              {"blocksize", std::to_string(blocksize->get<std::uint64_t>())},
              {"double_quant", nested != nullptr ? "true" : "false"}};
  return Status::ok();
}

// fp8 scales widened to f32 (a scale is tiny: read at open).
Result<std::string> read_scales(const TensorInfo& scale, const TensorSource& source) {
  std::string raw(scale.nbytes, '\0');
  DMEM_TRY(source.read(scale, raw.data()));
  std::string out(scale.elements() * 4, '\0');
  DMEM_TRY(convert(scale.dtype, raw.data(), DType::f32, out.data(), scale.elements()));
  return out;
}

}  // namespace

Result<std::vector<PrequantWeight>> find_prequantized(const Component& component,
                                                      const TensorSource& source) noexcept {
  std::unordered_map<std::string_view, const TensorInfo*> by_name;
  for (const TensorInfo& t : component.tensors) by_name.emplace(t.name, &t);
  const auto find = [&](const std::string& name) -> const TensorInfo* {
    auto it = by_name.find(name);
    return it == by_name.end() ? nullptr : it->second;
  };
  std::unordered_set<std::string_view> linear;
  const ComponentSummary summary = summarize(component);
  for (const LeafInfo& leaf : summary.leaves)
    if (leaf.linear) linear.insert(leaf.name);

  std::vector<PrequantWeight> out;
  std::unordered_set<const TensorInfo*> claimed;
  for (const TensorInfo& t : component.tensors) {
    if (!ends_with(t.name, ".weight")) continue;
    const std::string module = t.name.substr(0, t.name.size() - 7);
    PrequantWeight w;
    w.weight = &t;
    w.logical.name = t.name;
    w.logical.dtype = DType::bf16;
    w.logical.shape = t.shape;
    w.logical.file = t.file;
    w.logical.offset = t.offset;

    const TensorInfo* nf4 = find(t.name + ".quant_state.bitsandbytes__nf4");
    const TensorInfo* fp4 = find(t.name + ".quant_state.bitsandbytes__fp4");
    const TensorInfo* absmax = find(t.name + ".absmax");
    const TensorInfo* scb = find(module + ".SCB");
    const TensorInfo* scale = find(t.name + "_scale");             // M.weight_scale
    if (scale == nullptr) scale = find(module + ".scale_weight");  // ComfyUI's scaled fp8
    const bool fp8 = t.dtype == DType::f8_e4m3 || t.dtype == DType::f8_e5m2;

    if (nf4 != nullptr || fp4 != nullptr || absmax != nullptr) {
      if (nf4 != nullptr && fp4 != nullptr)
        return state_error(t.name, "the weight has both an nf4 and an fp4 quant state", kResave);
      const TensorInfo* qs = nf4 != nullptr ? nf4 : fp4;
      if (qs == nullptr) {
        return state_error(t.name,
                           "a 4-bit weight (it has absmax) without its "
                           "quant_state.bitsandbytes__nf4 or __fp4",
                           kResave);
      }
      if (absmax == nullptr)
        return state_error(t.name, "a 4-bit weight without its absmax", kResave);
      if (t.dtype != DType::u8) {
        return state_error(t.name,
                           std::string("a 4-bit weight stored as ") +
                               std::string(dtype_name(t.dtype)) +
                               ", not the packed uint8 bitsandbytes writes",
                           kResave);
      }
      const TensorInfo* nested = find(t.name + ".nested_absmax");
      DMEM_TRY(read_bnb4(w, *qs, fp4 != nullptr, nested, source));
      w.kind = PrequantKind::bnb4;
      w.format = fp4 != nullptr ? "bnb fp4" : "bnb nf4";
      w.plugin = "dmem.quantizer.nf4";
      for (const char* aux : {".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map"})
        if (const TensorInfo* a = find(t.name + aux)) w.state.push_back(a);
      w.state.push_back(qs);
    } else if (scb != nullptr) {
      if (t.dtype != DType::i8 || t.shape.size() != 2) {
        return state_error(t.name,
                           std::string("has SCB row scales but is ") +
                               std::string(dtype_name(t.dtype)) + " " + describe_shape(t.shape) +
                               ", not an int8 [out, in] weight",
                           kResave);
      }
      w.kind = PrequantKind::bnb_int8;
      w.format = "bnb int8";
      w.plugin = "dmem.quantizer.bnb_int8";
      w.state.push_back(scb);
      if (const TensorInfo* f = find(module + ".weight_format")) {
        if (f->nbytes != 1 || (f->dtype != DType::u8 && f->dtype != DType::i8))
          return state_error(f->name, "weight_format is not one uint8", kResave);
        unsigned char v = 0;
        DMEM_TRY(source.read(*f, &v));
        if (v != 0) {
          return format_error(f->name,
                              std::string("weight_format ") + std::to_string(v) +
                                  " (a tiled col32/col_turing/col_ampere layout of an old "
                                  "bitsandbytes); only the row layout (0) is read",
                              "load it with bitsandbytes >= 0.45 and save it again");
        }
        w.state.push_back(f);
      }
    } else if (t.dtype == DType::i8 && t.shape.size() == 2 && linear.count(module) != 0) {
      return state_error(
          t.name, std::string("an int8 weight without its SCB row scales ('") + module + ".SCB')",
          kResave);
    } else if (fp8 && scale != nullptr) {
      if (t.shape.size() != 2) {
        return format_error(t.name,
                            std::string("a scaled fp8 weight of shape ") + describe_shape(t.shape) +
                                " is not a linear layer's [out, in]",
                            "store it without a scale, or in bf16");
      }
      if (scale->dtype != DType::f32 && scale->dtype != DType::bf16 && scale->dtype != DType::f16) {
        return format_error(scale->name,
                            std::string("an fp8 scale of dtype ") +
                                std::string(dtype_name(scale->dtype)) +
                                "; f32, bf16 or f16 scales are read",
                            "store the scale as float32");
      }
      const std::uint64_t n = scale->elements();
      if (n != 1 && n != t.shape[0]) {
        return format_error(scale->name,
                            std::string("an fp8 scale of ") + std::to_string(n) +
                                " values for a weight of " + describe_shape(t.shape) +
                                "; one scale per tensor or per output row is read",
                            "block-wise fp8 scales are not supported yet: dequantize the "
                            "checkpoint to bf16, or convert it with `dmem convert -q "
                            "COMPONENT=fp8`");
      }
      auto scales = read_scales(*scale, source);
      if (!scales) return Status(scales.status()).with_tensor(scale->name);
      w.kind = PrequantKind::fp8_scaled;
      w.format = t.dtype == DType::f8_e4m3 ? "fp8 e4m3 scaled" : "fp8 e5m2 scaled";
      w.plugin = "dmem.quantizer.fp8_cast";
      w.params = {{"format", t.dtype == DType::f8_e4m3 ? "e4m3" : "e5m2"},
                  {"scale", n == 1 ? "tensor" : "channel"}};
      w.state.push_back(scale);
      PackedPiece s;
      s.nbytes = scales->size();
      s.bytes = std::move(scales.value());
      PackedPiece codes;
      codes.tensor = &t;
      codes.at = s.nbytes;
      codes.nbytes = t.nbytes;
      w.pieces = {std::move(s), std::move(codes)};
    } else if (dtype_info(t.dtype).is_block_quant && t.shape.size() == 2 &&
               linear.count(module) != 0) {
      w.kind = PrequantKind::gguf;
      w.format = std::string("gguf ") + std::string(dtype_name(t.dtype));
      w.plugin = "dmem.quantizer.gguf";
      w.params = {{"type", std::string(dtype_name(t.dtype))}};
    } else {
      continue;
    }
    claimed.insert(&t);
    for (const TensorInfo* s : w.state) claimed.insert(s);
    out.push_back(std::move(w));
  }

  // State that belongs to no weight: the weight is missing or was renamed.
  for (const TensorInfo& t : component.tensors) {
    if (claimed.count(&t) != 0) continue;
    for (const std::string_view aux :
         {std::string_view(".weight.absmax"), std::string_view(".weight.quant_map"),
          std::string_view(".weight.nested_absmax"), std::string_view(".weight.nested_quant_map"),
          std::string_view(".weight.quant_state.bitsandbytes__nf4"),
          std::string_view(".weight.quant_state.bitsandbytes__fp4"), std::string_view(".SCB"),
          std::string_view(".weight_scale"), std::string_view(".scale_weight")}) {
      if (!ends_with(t.name, aux)) continue;
      const std::string owner = t.name.substr(0, t.name.size() - aux.size()) + ".weight";
      const TensorInfo* w = find(owner);
      if (w == nullptr) {
        return state_error(t.name,
                           std::string("quantization state without its weight '") + owner + "'",
                           "the checkpoint is incomplete (a shard missing?): download it again");
      }
      return format_error(t.name,
                          std::string("quantization state beside '") + owner + "', which is " +
                              std::string(dtype_name(w->dtype)) + " " + describe_shape(w->shape) +
                              ": no known format pairs them",
                          "fp8 scales go with fp8 weights, SCB with int8 and absmax with packed "
                          "uint8 4-bit weights; dequantize the checkpoint to bf16 first");
    }
  }
  return out;
}

Status plan_pieces(PrequantWeight& w, const QuantizerInstance& q,
                   const TensorSource& source) noexcept {
  const TensorInfo& t = *w.weight;
  auto stored = q.stored_bytes(w.logical.dtype, w.logical.shape);
  if (!stored) return Status(stored.status()).with_tensor(t.name);
  const std::uint64_t packed = *stored;
  const auto size_error = [&](const TensorInfo& part, std::uint64_t want) {
    std::string message = "is ";
    message += std::to_string(part.nbytes);
    message += " bytes of ";
    message += dtype_name(part.dtype);
    message += "; a ";
    message += w.format;
    message += " weight of ";
    message += describe_shape(w.logical.shape);
    message += " needs ";
    message += std::to_string(want);
    return state_error(part.name, std::move(message), kResave);
  };

  switch (w.kind) {
    case PrequantKind::gguf: {
      if (t.nbytes != packed) return size_error(t, packed);
      PackedPiece p;
      p.tensor = &t;
      p.nbytes = t.nbytes;
      w.pieces = {std::move(p)};
      break;
    }
    case PrequantKind::fp8_scaled:
      if (w.pieces.size() != 2 || w.pieces[1].at + w.pieces[1].nbytes != packed)
        return size_error(t, packed - (w.pieces.empty() ? 0 : w.pieces[0].nbytes));
      break;
    case PrequantKind::bnb4:
    case PrequantKind::bnb_int8: {
      QuantChoice choice;
      choice.plugin = w.plugin;
      choice.params = w.params;
      auto kind = part_kind(choice);
      if (!kind) return Status(kind.status()).with_tensor(t.name);
      Bnb4Tables tables;
      if (w.kind == PrequantKind::bnb4) {
        auto got = bnb4_tables(q, *kind == PartKind::bnb4_nested);
        if (!got) return Status(got.status()).with_tensor(t.name);
        tables = std::move(got.value());
      }
      auto parts =
          checkpoint_parts(*kind, choice, tables, w.logical, w.logical.dtype, packed, nullptr);
      if (!parts) return Status(parts.status()).with_tensor(t.name);
      const auto find = [&](const std::string& name) -> const TensorInfo* {
        if (t.name == name) return &t;
        for (const TensorInfo* s : w.state)
          if (s->name == name) return s;
        return nullptr;
      };
      w.pieces.clear();
      if (*kind == PartKind::bnb4_nested) {
        PackedPiece offset;  // the JSON holds it; the packed layout starts with it
        offset.nbytes = 4;
        offset.bytes.assign(reinterpret_cast<const char*>(&w.nested_offset), 4);
        w.pieces.push_back(std::move(offset));
      }
      for (const OutPart& part : *parts) {
        const TensorInfo* have = find(part.name);
        if (part.constant) {
          // Code tables: must be the plugin's own (a custom map would decode differently).
          if (have == nullptr || ends_with(part.name, ".quant_state.bitsandbytes__nf4") ||
              ends_with(part.name, ".quant_state.bitsandbytes__fp4"))
            continue;
          if (have->nbytes != part.nbytes) return size_error(*have, part.nbytes);
          std::string bytes(have->nbytes, '\0');
          DMEM_TRY(source.read(*have, bytes.data()));
          if (bytes != part.bytes) {
            return format_error(have->name,
                                "a code table other than bitsandbytes' standard one, which the "
                                "nf4 plugin decodes with",
                                "dequantize this checkpoint with bitsandbytes and convert the "
                                "result with `dmem convert`");
          }
          continue;
        }
        PackedPiece p;
        p.at = part.packed_offset;
        p.nbytes = part.nbytes;
        if (have == nullptr) {
          if (!ends_with(part.name, ".weight_format"))
            return state_error(
                part.name,
                std::string("missing: the ") + w.format + " weight '" + t.name + "' needs it",
                kResave);
          p.bytes.assign(1, '\0');  // older bitsandbytes wrote no weight_format: row layout
        } else {
          if (have->nbytes != part.nbytes) return size_error(*have, part.nbytes);
          const bool byte_type = part.dtype == DType::u8 || part.dtype == DType::i8;
          const bool same = have->dtype == part.dtype ||
                            (byte_type && (have->dtype == DType::u8 || have->dtype == DType::i8));
          if (!same) return size_error(*have, part.nbytes);
          p.tensor = have;
        }
        w.pieces.push_back(std::move(p));
      }
      break;
    }
  }
  // Every packed byte comes from exactly one piece.
  std::sort(w.pieces.begin(), w.pieces.end(),
            [](const PackedPiece& a, const PackedPiece& b) { return a.at < b.at; });
  std::uint64_t at = 0;
  for (const PackedPiece& p : w.pieces) {
    if (p.at != at)
      return Status(Errc::internal, "pre-quantized pieces do not tile the packed layout")
          .with_tensor(t.name)
          .with_rule("prequant.layout");
    at += p.nbytes;
  }
  if (at != packed) return size_error(t, packed);
  w.logical.nbytes = packed;
  return Status::ok();
}

}  // namespace dmem::detail
