// Reading one bitsandbytes-serialised 4-bit weight (FORMATS.md §3.5): the tensors saved for a
// Linear4bit under `P.weight*` and the JSON of `P.weight.quant_state.bitsandbytes__{nf4,fp4}`,
// dequantized as bnb's dequantize_4bit does (with the checkpoint's own quant_map and
// nested_quant_map). Errors name the weight and what is wrong with it.
#pragma once

#include <cctype>
#include <charconv>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "nf4_layout.hpp"

namespace dmem_nf4 {

/// A tensor as read from the checkpoint: its bytes and its element count.
struct Bytes {
  const void* data = nullptr;
  std::uint64_t nbytes = 0;
};

/// The `P.weight…` tensors of one module. absmax is f32 (plain) or u8 (nested); nested_absmax
/// and nested_quant_map are present only when nested.
struct Bnb4Tensors {
  Bytes weight;            // u8 packed codes, [(n + 1) / 2, 1]
  Bytes absmax;            // f32 [blocks] or u8 [blocks]
  Bytes quant_map;         // f32 [16]
  Bytes nested_absmax;     // f32 [ceil(blocks / 256)]
  Bytes nested_quant_map;  // f32 [256]
  Bytes quant_state;       // UTF-8 JSON
};

/// The parsed quant_state JSON.
struct Bnb4State {
  QuantType type = QuantType::nf4;
  std::uint64_t blocksize = 0;
  std::string dtype;  // "bfloat16", "float16", "float32"
  std::vector<std::uint64_t> shape;
  bool nested = false;
  std::uint64_t nested_blocksize = 0;
  float nested_offset = 0.0f;
  std::uint64_t elements() const {
    std::uint64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

namespace detail {
// A small reader for the flat object bnb writes with json.dumps: string, number and
// number-list values. Returns "" or what is wrong.
struct JsonCursor {
  std::string_view s;
  std::size_t i = 0;
  void ws() {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r')) ++i;
  }
  bool eat(char c) {
    ws();
    if (i < s.size() && s[i] == c) {
      ++i;
      return true;
    }
    return false;
  }
  bool string(std::string& out) {
    if (!eat('"')) return false;
    out.clear();
    while (i < s.size() && s[i] != '"') {
      if (s[i] == '\\') return false;  // bnb's keys and values need no escapes
      out += s[i++];
    }
    return i < s.size() && s[i++] == '"';
  }
  bool number(std::string& out) {
    ws();
    const std::size_t b = i;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '-' ||
                            s[i] == '+' || s[i] == '.' || s[i] == 'e' || s[i] == 'E'))
      ++i;
    out.assign(s.substr(b, i - b));
    return i > b;
  }
};

inline bool to_u64(const std::string& t, std::uint64_t& v) {
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  return ec == std::errc() && p == t.data() + t.size();
}
}  // namespace detail

/// Parses bnb's quant_state JSON; returns "" or the problem.
inline std::string parse_quant_state(std::string_view json, Bnb4State& st) {
  detail::JsonCursor c{json};
  if (!c.eat('{')) return "quant_state is not a JSON object";
  bool have_type = false, have_bs = false, have_shape = false, have_offset = false;
  std::string key, val;
  if (!c.eat('}')) {
    do {
      if (!c.string(key) || !c.eat(':')) return "quant_state JSON is malformed";
      if (key == "shape") {
        if (!c.eat('[')) return "quant_state 'shape' is not a list";
        st.shape.clear();
        if (!c.eat(']')) {
          do {
            std::uint64_t d = 0;
            if (!c.number(val) || !detail::to_u64(val, d))
              return "quant_state 'shape' is not a list of sizes";
            st.shape.push_back(d);
          } while (c.eat(','));
          if (!c.eat(']')) return "quant_state 'shape' is not closed";
        }
        have_shape = true;
      } else if (key == "quant_type" || key == "dtype" || key == "nested_dtype") {
        if (!c.string(val)) return "quant_state '" + key + "' is not a string";
        if (key == "quant_type") {
          if (val != "nf4" && val != "fp4")
            return "quant_type '" + val + "' is neither nf4 nor fp4";
          st.type = val == "nf4" ? QuantType::nf4 : QuantType::fp4;
          have_type = true;
        } else if (key == "dtype") {
          st.dtype = val;
        } else if (val != "float32") {
          return "nested_dtype '" + val + "' is not float32";
        }
      } else {
        if (!c.number(val)) return "quant_state '" + key + "' is not a number";
        if (key == "blocksize") {
          have_bs = detail::to_u64(val, st.blocksize);
        } else if (key == "nested_blocksize") {
          if (!detail::to_u64(val, st.nested_blocksize)) return "bad nested_blocksize";
        } else if (key == "nested_offset") {
          char* end = nullptr;
          const std::string copy = val;
          const double d = std::strtod(copy.c_str(), &end);
          if (end != copy.c_str() + copy.size()) return "bad nested_offset";
          st.nested_offset = static_cast<float>(d);
          have_offset = true;
        }  // other numeric keys are ignored
      }
    } while (c.eat(','));
    if (!c.eat('}')) return "quant_state JSON is malformed";
  }
  if (!have_type || !have_bs || !have_shape)
    return "quant_state lacks quant_type, blocksize or shape";
  if (st.blocksize == 0 || st.blocksize % 2 != 0) return "quant_state blocksize must be even";
  st.nested = have_offset;
  if (st.nested && st.nested_blocksize != kNestedBlock)
    return "nested_blocksize must be 256 (bnb's only value)";
  return {};
}

/// Dequantizes the weight `name` into `out` (shape's element count of f32 / f16 / bf16).
/// Returns "" or an error naming the weight and the tensor at fault.
inline std::string dequantize_checkpoint(std::string_view name, const Bnb4Tensors& t,
                                         OutType out_type, void* out, std::uint64_t out_bytes) {
  const std::string w(name);
  Bnb4State st;
  const std::string_view json(static_cast<const char*>(t.quant_state.data), t.quant_state.nbytes);
  if (std::string e = parse_quant_state(json, st); !e.empty()) return w + ".quant_state: " + e;
  const std::uint64_t n = st.elements(), blocks = block_count(n, st.blocksize);
  const std::uint64_t size = out_type == OutType::f32 ? 4 : 2;
  if (out_bytes < n * size) return w + ": the output buffer is smaller than the weight";
  if (t.weight.nbytes < (n + 1) / 2)
    return w + ": packed weight has " + std::to_string(t.weight.nbytes) +
           " bytes, the shape needs " + std::to_string((n + 1) / 2);
  if (t.quant_map.nbytes != 16 * 4) return w + ".quant_map must be 16 float32 values";
  if (t.absmax.nbytes != (st.nested ? 1 : 4) * blocks)
    return w + ".absmax must hold " + std::to_string(blocks) + (st.nested ? " uint8" : " float32") +
           " values (one per block of " + std::to_string(st.blocksize) + ")";
  std::vector<float> absmax(blocks);
  if (st.nested) {
    const std::uint64_t nb = block_count(blocks, kNestedBlock);
    if (t.nested_absmax.nbytes != 4 * nb)
      return w + ".nested_absmax must hold " + std::to_string(nb) + " float32 values";
    if (t.nested_quant_map.nbytes != 256 * 4)
      return w + ".nested_quant_map must be 256 float32 values";
    std::vector<float> map(256), nested(nb);
    std::memcpy(map.data(), t.nested_quant_map.data, 256 * 4);
    std::memcpy(nested.data(), t.nested_absmax.data, 4 * nb);
    const auto* q = static_cast<const std::uint8_t*>(t.absmax.data);
    for (std::uint64_t b = 0; b < blocks; ++b)
      absmax[b] = nested_absmax(map.data(), q, nested.data(), st.nested_offset, b);
  } else {
    std::memcpy(absmax.data(), t.absmax.data, 4 * blocks);
  }
  float map16[16];
  std::memcpy(map16, t.quant_map.data, sizeof map16);
  const auto* codes = static_cast<const std::uint8_t*>(t.weight.data);
  for (std::uint64_t i = 0; i < n; ++i) {
    const unsigned c = i % 2 == 0 ? codes[i / 2] >> 4 : codes[i / 2] & 15u;
    const float v = map16[c] * absmax[i / st.blocksize];
    if (out_type == OutType::f32)
      static_cast<float*>(out)[i] = v;
    else
      static_cast<std::uint16_t*>(out)[i] = to_half_bits(out_type, v);
  }
  return {};
}

}  // namespace dmem_nf4
