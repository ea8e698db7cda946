// Output tensors of one quantized weight in its ecosystem's checkpoint keys (see the header).
#include "convert/checkpoint_parts.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace dmem::detail {

namespace {

std::string_view param(const QuantChoice& q, std::string_view key) {
  for (const auto& [k, v] : q.params)
    if (k == key) return v;
  return {};
}

std::uint64_t param_u64(const QuantChoice& q, std::string_view key, std::uint64_t fallback) {
  const std::string_view s = param(q, key);
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return s.empty() || ec != std::errc() || p != s.data() + s.size() ? fallback : v;
}

// torch's str(dtype) without "torch.", as bitsandbytes writes it into the quant state.
const char* torch_dtype_name(DType t) {
  switch (t) {
    case DType::bf16:
      return "bfloat16";
    case DType::f16:
      return "float16";
    default:
      return "float32";
  }
}

Status layout_error(const TensorInfo& t, std::string what) {
  return Status(Errc::internal,
                "the quantizer's packed size does not match its documented " + std::move(what))
      .with_tensor(t.name)
      .with_rule("convert.layout")
      .with_hint("the plugin's packed layout changed; update src/convert/checkpoint_parts.cpp");
}

// "blocks.0.proj.weight" -> "blocks.0.proj." (bitsandbytes keys hang off the module prefix).
std::string module_prefix(const std::string& name) {
  const std::size_t dot = name.rfind('.');
  return dot == std::string::npos ? std::string() : name.substr(0, dot + 1);
}

OutPart slice(std::string name, DType dtype, std::vector<std::uint64_t> shape, std::uint64_t at,
              std::uint64_t nbytes) {
  OutPart p;
  p.name = std::move(name);
  p.dtype = dtype;
  p.shape = std::move(shape);
  p.packed_offset = at;
  p.nbytes = nbytes;
  return p;
}

OutPart constant(std::string name, DType dtype, std::vector<std::uint64_t> shape,
                 std::string bytes) {
  OutPart p;
  p.name = std::move(name);
  p.dtype = dtype;
  p.shape = std::move(shape);
  p.constant = true;
  p.nbytes = bytes.size();
  p.bytes = std::move(bytes);
  return p;
}

}  // namespace

std::string python_float_repr(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v < 0 ? "-Infinity" : "Infinity";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  const std::string_view s(buf, static_cast<std::size_t>(r.ptr - buf));
  // s is "[-]d[.ddd]e[+-]XX": split into sign, digits and decimal exponent.
  std::string out;
  std::size_t i = 0;
  if (s[i] == '-') {
    out += '-';
    ++i;
  }
  const std::size_t e = s.find('e');
  std::string digits;
  for (std::size_t k = i; k < e; ++k)
    if (s[k] != '.') digits += s[k];
  const int exp = std::atoi(std::string(s.substr(e + 1)).c_str());
  const int decpt = exp + 1;  // digits before the decimal point
  const int n = static_cast<int>(digits.size());
  if (exp < -4 || exp >= 16) {
    out += digits[0];
    if (n > 1) out.append(".").append(digits.substr(1));
    out += exp < 0 ? "e-" : "e+";
    const int a = exp < 0 ? -exp : exp;
    if (a < 10) out += '0';
    out += std::to_string(a);
  } else if (decpt <= 0) {
    out.append("0.").append(static_cast<std::size_t>(-decpt), '0').append(digits);
  } else if (decpt >= n) {
    out.append(digits).append(static_cast<std::size_t>(decpt - n), '0').append(".0");
  } else {
    out.append(digits.substr(0, static_cast<std::size_t>(decpt)))
        .append(".")
        .append(digits.substr(static_cast<std::size_t>(decpt)));
  }
  return out;
}

Result<PartKind> part_kind(const QuantChoice& q) noexcept {
  if (q.plugin == "dmem.quantizer.nf4")
    return param(q, "double_quant") == "true" ? PartKind::bnb4_nested : PartKind::bnb4;
  if (q.plugin == "dmem.quantizer.bnb_int8") return PartKind::bnb_int8;
  if (q.plugin == "dmem.quantizer.fp8_cast") return PartKind::fp8_scaled;
  if (q.plugin == "dmem.quantizer.gguf") return PartKind::gguf;
  return Status(Errc::unsupported, "convert cannot write checkpoints of quantizer " + q.plugin)
      .with_rule("convert.quantizer");
}

bool part_kind_is_gguf(PartKind kind) noexcept {
  return kind == PartKind::gguf;
}

Result<Bnb4Tables> bnb4_tables(const QuantizerInstance& q, bool nested) noexcept {
  // The plain layout is absmax f32[blocks] | codes; 16 elements in one block of absmax 1.0 with
  // codes 0..15 dequantize to the code table itself.
  Bnb4Tables tables;
  const auto fail = [] {
    return Status(Errc::internal, "the nf4 plugin's packed layout is not the documented one")
        .with_rule("convert.layout")
        .with_hint("update src/convert/checkpoint_parts.cpp to the plugin's README");
  };
  {
    const std::uint64_t shape[] = {1, 16};
    auto bytes = q.stored_bytes(DType::f32, shape);
    // A nested instance stores offset | nested absmax | codes of absmax | codes.
    const std::uint64_t want = nested ? 4 + 4 + 1 + 8 : 4 + 8;
    if (!bytes || *bytes != want) return fail();
    std::vector<unsigned char> packed(want, 0);
    const float one = 1.0f, zero = 0.0f;
    std::size_t at = 0;
    if (nested) {
      // offset 0, nested absmax 1; the one absmax code must decode to 1.0: found below.
      std::memcpy(packed.data(), &zero, 4);
      std::memcpy(packed.data() + 4, &one, 4);
      at = 9;
    } else {
      std::memcpy(packed.data(), &one, 4);
      at = 4;
    }
    for (unsigned c = 0; c < 8; ++c)
      packed[at + c] = static_cast<unsigned char>(((2 * c) << 4) | (2 * c + 1));
    float out[16];
    // Nested: the absmax code that decodes to 1.0, the dynamic map's largest (last) value.
    for (unsigned code = 256; code-- > 0;) {
      if (nested) packed[8] = static_cast<unsigned char>(code);
      DMEM_TRY(q.dequantize(HostTensor{DType::f32, shape, packed.data(), want}, DType::f32, out,
                            sizeof out));
      float top = 0;
      for (float v : out) top = std::max(top, std::fabs(v));
      if (top == 1.0f) break;
      if (!nested) return fail();
    }
    tables.quant_map.assign(reinterpret_cast<const char*>(out), sizeof out);
  }
  if (!nested) return tables;
  // 256 blocks of 32 (one nested block) with absmax codes 0..255, offset 0, nested absmax 1 and
  // every element the code of 1.0: element b * 32 dequantizes to map[b].
  float map16[16];
  std::memcpy(map16, tables.quant_map.data(), sizeof map16);
  int code_one = -1;
  for (int c = 0; c < 16; ++c)
    if (map16[c] == 1.0f) code_one = c;
  if (code_one < 0) return fail();
  const std::uint64_t blocks = 256;
  // The instance's block size: the one for which 256 blocks fill one nested block exactly.
  std::uint64_t bs = 0;
  for (std::uint64_t cand = 32; cand <= 4096; cand *= 2) {
    const std::uint64_t shape[] = {1, cand * blocks};
    auto b = q.stored_bytes(DType::f32, shape);
    if (b && *b == 4 + 4 + blocks + cand * blocks / 2) {
      bs = cand;
      break;
    }
  }
  if (bs == 0) return fail();
  const std::uint64_t count = bs * blocks;
  const std::uint64_t shape[] = {1, count};
  std::vector<unsigned char> packed(8 + blocks + count / 2);
  const float one = 1.0f, zero = 0.0f;
  std::memcpy(packed.data(), &zero, 4);
  std::memcpy(packed.data() + 4, &one, 4);
  for (unsigned b = 0; b < blocks; ++b) packed[8 + b] = static_cast<unsigned char>(b);
  std::memset(packed.data() + 8 + blocks, code_one * 17, count / 2);
  std::vector<float> out(count);
  DMEM_TRY(q.dequantize(HostTensor{DType::f32, shape, packed.data(), packed.size()}, DType::f32,
                        out.data(), count * 4));
  std::vector<float> map(blocks);
  for (std::uint64_t b = 0; b < blocks; ++b) map[b] = out[b * bs];
  tables.nested_quant_map.assign(reinterpret_cast<const char*>(map.data()), blocks * 4);
  return tables;
}

Result<std::vector<OutPart>> checkpoint_parts(PartKind kind, const QuantChoice& q,
                                              const Bnb4Tables& tables, const TensorInfo& t,
                                              DType input, std::uint64_t packed_bytes,
                                              const unsigned char* packed) noexcept {
  (void)input;  // every layout below is the same for f32, f16 and bf16 input
  std::vector<OutPart> parts;
  const std::uint64_t n = t.elements();
  const std::string prefix = module_prefix(t.name);
  switch (kind) {
    case PartKind::bnb4:
    case PartKind::bnb4_nested: {
      const bool nested = kind == PartKind::bnb4_nested;
      const std::uint64_t bs = param_u64(q, "blocksize", 64);
      const std::uint64_t blocks = (n + bs - 1) / bs, nb = (blocks + 255) / 256;
      const std::uint64_t codes = (n + 1) / 2;
      const std::uint64_t codes_at = nested ? 4 + 4 * nb + blocks : 4 * blocks;
      if (packed_bytes != codes_at + codes) return layout_error(t, "nf4 layout");
      const std::string_view type = param(q, "quant_type") == "fp4" ? "fp4" : "nf4";
      parts.push_back(slice(t.name, DType::u8, {codes, 1}, codes_at, codes));
      if (nested) {
        parts.push_back(slice(t.name + ".absmax", DType::u8, {blocks}, 4 + 4 * nb, blocks));
        parts.push_back(slice(t.name + ".nested_absmax", DType::f32, {nb}, 4, 4 * nb));
        parts.push_back(
            constant(t.name + ".nested_quant_map", DType::f32, {256}, tables.nested_quant_map));
      } else {
        parts.push_back(slice(t.name + ".absmax", DType::f32, {blocks}, 0, 4 * blocks));
      }
      parts.push_back(constant(t.name + ".quant_map", DType::f32, {16}, tables.quant_map));
      // json.dumps of QuantState.as_dict(packed=True)'s non-tensor entries, in bnb's order.
      std::string json = "{\"quant_type\": \"";
      json += type;
      json += "\", \"blocksize\": " + std::to_string(bs) + ", \"dtype\": \"";
      json += torch_dtype_name(t.dtype);  // the weight's dtype, whatever the plugin was fed
      json += "\", \"shape\": [";
      for (std::size_t d = 0; d < t.shape.size(); ++d) {
        if (d > 0) json += ", ";
        json += std::to_string(t.shape[d]);
      }
      json += "]";
      if (nested) {
        float offset = 0;
        if (packed != nullptr) std::memcpy(&offset, packed, 4);
        json += ", \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": ";
        json += python_float_repr(static_cast<double>(offset));
      }
      json += "}";
      std::string key = t.name + ".quant_state.bitsandbytes__";
      key += type;
      const std::uint64_t len = json.size();
      parts.push_back(constant(std::move(key), DType::u8, {len}, std::move(json)));
      return parts;
    }
    case PartKind::bnb_int8: {
      const std::uint64_t rows = t.shape.front();
      if (packed_bytes != 4 * rows + n + 1) return layout_error(t, "int8 layout");
      parts.push_back(slice(t.name, DType::i8, t.shape, 4 * rows, n));
      parts.push_back(slice(prefix + "SCB", DType::f32, {rows}, 0, 4 * rows));
      parts.push_back(slice(prefix + "weight_format", DType::u8, {}, 4 * rows + n, 1));
      return parts;
    }
    case PartKind::fp8_scaled: {
      const std::string_view scale = param(q, "scale");
      const std::uint64_t scales = scale == "tensor" ? 1 : scale == "channel" ? t.shape[0] : 0;
      if (packed_bytes != 4 * scales + n) return layout_error(t, "fp8 layout");
      const DType fp8 = param(q, "format") == "e5m2" ? DType::f8_e5m2 : DType::f8_e4m3;
      parts.push_back(slice(t.name, fp8, t.shape, 4 * scales, n));
      if (scales == 1) parts.push_back(slice(t.name + "_scale", DType::f32, {}, 0, 4));
      if (scales > 1)
        parts.push_back(slice(t.name + "_scale", DType::f32, {scales, 1}, 0, 4 * scales));
      return parts;
    }
    case PartKind::gguf: {
      const auto type = dtype_from_name(param(q, "type"));
      if (!type) return layout_error(t, "GGML type");
      parts.push_back(slice(t.name, *type, t.shape, 0, packed_bytes));
      return parts;
    }
  }
  return layout_error(t, "layout");
}

}  // namespace dmem::detail
