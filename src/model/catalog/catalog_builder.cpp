#include "model/catalog/catalog_builder.hpp"

#include <charconv>
#include <utility>

namespace dmem::detail {

TensorListBuilder::TensorListBuilder(DType dtype, std::size_t expected_tensors) : dtype_(dtype) {
  tensors_.reserve(expected_tensors);
}

void TensorListBuilder::push(std::string name, std::vector<std::uint64_t> shape) {
  TensorInfo t;
  t.name = std::move(name);
  t.dtype = dtype_;
  t.shape = std::move(shape);
  // Catalog dtypes are whole-byte element types, for which dtype_bytes never fails.
  t.nbytes = dtype_bytes(dtype_, t.elements()).value_or(0);
  t.file = kNoFile;
  t.offset = 0;
  tensors_.push_back(std::move(t));
}

void TensorListBuilder::add(std::string_view name, std::initializer_list<std::uint64_t> shape) {
  push(std::string(name), std::vector<std::uint64_t>(shape));
}

void TensorListBuilder::linear(std::string_view prefix, std::uint64_t in, std::uint64_t out,
                               bool bias) {
  push(join(prefix, "weight"), {out, in});
  if (bias) push(join(prefix, "bias"), {out});
}

void TensorListBuilder::vec(std::string_view prefix, std::uint64_t n, std::string_view param) {
  push(join(prefix, param), {n});
}

void TensorListBuilder::norm(std::string_view prefix, std::uint64_t n) {
  push(join(prefix, "weight"), {n});
  push(join(prefix, "bias"), {n});
}

void TensorListBuilder::conv(std::string_view prefix, std::uint64_t in, std::uint64_t out,
                             std::initializer_list<std::uint64_t> kernel, bool bias) {
  std::vector<std::uint64_t> shape;
  shape.reserve(2 + kernel.size());
  shape.push_back(out);
  shape.push_back(in);
  shape.insert(shape.end(), kernel.begin(), kernel.end());
  push(join(prefix, "weight"), std::move(shape));
  if (bias) push(join(prefix, "bias"), {out});
}

std::string indexed(std::string_view prefix, std::uint64_t index) {
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, index);
  (void)ec;  // 24 chars always hold a 64-bit value
  std::string s;
  s.reserve(prefix.size() + 1 + static_cast<std::size_t>(end - digits));
  s.append(prefix).push_back('.');
  s.append(digits, end);
  return s;
}

std::string fill_template(std::string_view text, std::initializer_list<std::string_view> values) {
  std::string out;
  out.reserve(text.size() + 64);
  auto next = values.begin();
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '{' && i + 1 < text.size() && text[i + 1] == '}' && next != values.end()) {
      out.append(*next++);
      ++i;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

std::string join(std::string_view a, std::string_view b) {
  std::string s;
  s.reserve(a.size() + 1 + b.size());
  s.append(a).push_back('.');
  s.append(b);
  return s;
}

}  // namespace dmem::detail

namespace dmem::detail {

void two_layer_mlp(TensorListBuilder& b, std::string_view prefix, std::uint64_t in,
                   std::uint64_t mid, std::uint64_t out) {
  b.linear(join(prefix, "linear_1"), in, mid);
  b.linear(join(prefix, "linear_2"), mid, out);
}

void feed_forward(TensorListBuilder& b, std::string_view prefix, std::uint64_t dim,
                  std::uint64_t inner, bool gated, std::uint64_t dim_out) {
  b.linear(join(prefix, "net.0.proj"), dim, gated ? 2 * inner : inner);
  b.linear(join(prefix, "net.2"), inner, dim_out ? dim_out : dim);
}

void joint_attention(TensorListBuilder& b, std::string_view prefix, std::uint64_t dim,
                     std::uint64_t heads, std::uint64_t head_dim, AttentionShape shape) {
  const std::uint64_t inner = heads * head_dim;
  if (shape.qk_norm) {
    b.vec(join(prefix, "norm_q"), head_dim);
    b.vec(join(prefix, "norm_k"), head_dim);
  }
  for (const char* n : {"to_q", "to_k", "to_v"}) b.linear(join(prefix, n), dim, inner);
  if (shape.added) {
    for (const char* n : {"add_q_proj", "add_k_proj", "add_v_proj"})
      b.linear(join(prefix, n), dim, inner);
    if (shape.qk_norm) {
      b.vec(join(prefix, "norm_added_q"), head_dim);
      b.vec(join(prefix, "norm_added_k"), head_dim);
    }
    if (!shape.context_pre_only) b.linear(join(prefix, "to_add_out"), inner, dim);
  }
  if (!shape.pre_only) b.linear(join(prefix, "to_out.0"), inner, dim);
}

}  // namespace dmem::detail
