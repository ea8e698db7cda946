// GGUF writer: GGUF v3 laid out as gguf-py's GGUFWriter lays it out (FORMATS.md §2.1–2.3), so the
// same content gives the same bytes. Written to a temporary file and renamed into place.
#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <string>
#include <unordered_set>
#include <variant>
#include <vector>

#include "dmem/writer.hpp"
#include "format/file_io.hpp"
#include "format/gguf.hpp"
#include "format/writer_layout.hpp"

namespace dmem {
inline namespace v1 {

namespace {

class Out {
 public:
  std::vector<unsigned char> bytes;

  void le(std::uint64_t v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) bytes.push_back(static_cast<unsigned char>(v >> (8 * i)));
  }
  void str(std::string_view s) {
    le(s.size(), 8);
    bytes.insert(bytes.end(), s.begin(), s.end());
  }
};

bool is_unsigned(GgufType t) {
  return t == GgufType::u8 || t == GgufType::u16 || t == GgufType::u32 || t == GgufType::u64;
}
bool is_signed(GgufType t) {
  return t == GgufType::i8 || t == GgufType::i16 || t == GgufType::i32 || t == GgufType::i64;
}
bool is_float(GgufType t) {
  return t == GgufType::f32 || t == GgufType::f64;
}

std::size_t size_of(GgufType t) {
  return static_cast<std::size_t>(detail::gguf_scalar_size(static_cast<std::uint32_t>(t)));
}

bool fits_unsigned(std::uint64_t v, GgufType t) {
  const std::size_t n = size_of(t);
  return n == 8 || v < (1ull << (8 * n));
}

bool fits_signed(std::int64_t v, GgufType t) {
  const std::size_t n = size_of(t);
  if (n == 8) return true;
  const std::int64_t lim = std::int64_t{1} << (8 * n - 1);
  return v >= -lim && v < lim;
}

void put_float(Out& out, double v, GgufType t) {
  if (t == GgufType::f32) {
    out.le(std::bit_cast<std::uint32_t>(static_cast<float>(v)), 4);
  } else {
    out.le(std::bit_cast<std::uint64_t>(v), 8);
  }
}

// Encodes one value, checking that the variant holds what the type says and that integers fit.
Status encode_value(Out& out, const GgufKv& kv, std::string_view path) {
  const GgufValue& v = kv.value;
  const auto mismatch = [&](const char* what) {
    return detail::writer_input_error("metadata key '" + kv.key + "': " + what, path,
                                      "gguf.write.value");
  };
  const GgufType t = v.type;
  out.le(static_cast<std::uint32_t>(t), 4);
  if (is_unsigned(t)) {
    const auto* x = std::get_if<std::uint64_t>(&v.value);
    if (x == nullptr) return mismatch("an unsigned type needs a std::uint64_t value");
    if (!fits_unsigned(*x, t)) return mismatch("the value does not fit its type");
    out.le(*x, size_of(t));
  } else if (is_signed(t)) {
    const auto* x = std::get_if<std::int64_t>(&v.value);
    if (x == nullptr) return mismatch("a signed type needs a std::int64_t value");
    if (!fits_signed(*x, t)) return mismatch("the value does not fit its type");
    out.le(static_cast<std::uint64_t>(*x), size_of(t));
  } else if (is_float(t)) {
    const auto* x = std::get_if<double>(&v.value);
    if (x == nullptr) return mismatch("a float type needs a double value");
    put_float(out, *x, t);
  } else if (t == GgufType::boolean) {
    const auto* x = std::get_if<bool>(&v.value);
    if (x == nullptr) return mismatch("BOOL needs a bool value");
    out.le(*x ? 1 : 0, 1);
  } else if (t == GgufType::string) {
    const auto* x = std::get_if<std::string>(&v.value);
    if (x == nullptr) return mismatch("STRING needs a std::string value");
    if (x->size() > kGgufMaxString) return mismatch("the string is longer than 1 GiB");
    out.str(*x);
  } else if (t == GgufType::array) {
    const GgufType e = v.elem_type;
    out.le(static_cast<std::uint32_t>(e), 4);
    if (is_unsigned(e)) {
      const auto* xs = std::get_if<std::vector<std::uint64_t>>(&v.value);
      if (xs == nullptr) return mismatch("an unsigned array needs std::vector<std::uint64_t>");
      if (xs->size() > kGgufMaxArray) return mismatch("the array has more than 2^30 elements");
      out.le(xs->size(), 8);
      for (const std::uint64_t x : *xs) {
        if (!fits_unsigned(x, e)) return mismatch("an array element does not fit its type");
        out.le(x, size_of(e));
      }
    } else if (is_signed(e)) {
      const auto* xs = std::get_if<std::vector<std::int64_t>>(&v.value);
      if (xs == nullptr) return mismatch("a signed array needs std::vector<std::int64_t>");
      if (xs->size() > kGgufMaxArray) return mismatch("the array has more than 2^30 elements");
      out.le(xs->size(), 8);
      for (const std::int64_t x : *xs) {
        if (!fits_signed(x, e)) return mismatch("an array element does not fit its type");
        out.le(static_cast<std::uint64_t>(x), size_of(e));
      }
    } else if (is_float(e)) {
      const auto* xs = std::get_if<std::vector<double>>(&v.value);
      if (xs == nullptr) return mismatch("a float array needs std::vector<double>");
      if (xs->size() > kGgufMaxArray) return mismatch("the array has more than 2^30 elements");
      out.le(xs->size(), 8);
      for (const double x : *xs) put_float(out, x, e);
    } else if (e == GgufType::boolean) {
      const auto* xs = std::get_if<std::vector<bool>>(&v.value);
      if (xs == nullptr) return mismatch("a BOOL array needs std::vector<bool>");
      if (xs->size() > kGgufMaxArray) return mismatch("the array has more than 2^30 elements");
      out.le(xs->size(), 8);
      for (const bool x : *xs) out.le(x ? 1 : 0, 1);
    } else if (e == GgufType::string) {
      const auto* xs = std::get_if<std::vector<std::string>>(&v.value);
      if (xs == nullptr) return mismatch("a STRING array needs std::vector<std::string>");
      if (xs->size() > kGgufMaxArray) return mismatch("the array has more than 2^30 elements");
      out.le(xs->size(), 8);
      for (const std::string& x : *xs) {
        if (x.size() > kGgufMaxString) return mismatch("a string is longer than 1 GiB");
        out.str(x);
      }
    } else {
      return mismatch("arrays of arrays (or of unknown types) cannot be written");
    }
  } else {
    return mismatch("unknown value type");
  }
  return Status::ok();
}

Status validate_tensors(std::string_view path, std::span<const TensorData> tensors,
                        bool need_data) {
  std::unordered_set<std::string_view> names;
  for (const TensorData& t : tensors) {
    if (t.name.empty() || t.name.size() >= detail::kGgufMaxName)
      return detail::writer_input_error("tensor name '" + t.name + "' has " +
                                            std::to_string(t.name.size()) +
                                            " bytes; GGUF names hold 1 to 63 bytes",
                                        path, "gguf.write.name", t.name);
    if (!names.insert(t.name).second)
      return detail::writer_input_error("two tensors have the same name", path,
                                        "gguf.write.duplicate", t.name);
    if (t.shape.size() > detail::kGgufMaxDims)
      return detail::writer_input_error(
          "the tensor has " + std::to_string(t.shape.size()) + " dimensions; GGUF allows at most 4",
          path, "gguf.write.dims", t.name);
    const DTypeInfo& info = dtype_info(t.dtype);
    if (info.ggml_id < 0)
      return detail::writer_input_error(
          "dtype " + std::string(info.name) + " cannot be stored in GGUF", path, "gguf.write.dtype",
          t.name);
    std::uint64_t elements = 1;
    bool overflow = false;
    for (const std::uint64_t d : t.shape) {
      if (d > static_cast<std::uint64_t>(INT64_MAX)) overflow = true;
      if (d != 0 && elements > static_cast<std::uint64_t>(INT64_MAX) / d) overflow = true;
      elements = overflow ? 0 : elements * d;
    }
    if (overflow)
      return detail::writer_input_error("the shape's element count overflows 64 bits", path,
                                        "gguf.write.shape", t.name);
    const std::uint64_t inner = t.shape.empty() ? 1 : t.shape.back();
    if (inner % info.block_elems != 0)
      return detail::writer_input_error("the innermost dimension " + std::to_string(inner) +
                                            " is not a multiple of the " + std::string(info.name) +
                                            " block size " + std::to_string(info.block_elems),
                                        path, "gguf.write.shape", t.name);
    const auto expected = dtype_bytes(t.dtype, elements);
    if (!expected)
      return detail::writer_input_error("the byte size overflows 64 bits", path, "gguf.write.shape",
                                        t.name);
    if (t.nbytes != *expected)
      return detail::writer_input_error("nbytes is " + std::to_string(t.nbytes) +
                                            " but the shape and dtype need " +
                                            std::to_string(*expected),
                                        path, "gguf.write.nbytes", t.name);
    if (need_data && t.nbytes > 0 && t.data == nullptr)
      return detail::writer_input_error(
          "data is null for a tensor of " + std::to_string(t.nbytes) + " bytes", path,
          "gguf.write.data", t.name);
  }
  return Status::ok();
}

Status write_zeros(detail::TempFile& file, std::uint64_t n) {
  static constexpr std::array<unsigned char, 4096> kZeros{};
  while (n > 0) {
    const std::uint64_t chunk = std::min<std::uint64_t>(n, kZeros.size());
    DMEM_TRY(file.write(kZeros.data(), chunk));
    n -= chunk;
  }
  return Status::ok();
}

}  // namespace

}  // namespace v1

namespace detail {

Result<WriteLayout> gguf_layout(std::string_view path, std::span<const TensorData> tensors,
                                std::span<const GgufKv> metadata, std::uint32_t alignment,
                                bool need_data) noexcept {
  if (alignment == 0 || !std::has_single_bit(alignment) || alignment > detail::kGgufMaxAlignment)
    return detail::writer_input_error(
        "alignment " + std::to_string(alignment) + " is not a power of two from 1 to 1048576", path,
        "gguf.write.alignment");
  DMEM_TRY(validate_tensors(path, tensors, need_data));

  // Header and metadata.
  Out out;
  out.le(detail::kGgufMagic, 4);
  out.le(detail::kGgufVersion, 4);
  out.le(tensors.size(), 8);
  const std::size_t n_kv_at = out.bytes.size();
  out.le(0, 8);  // patched below once we know whether general.alignment is added

  std::unordered_set<std::string_view> keys;
  bool has_alignment = false;
  for (const GgufKv& kv : metadata) {
    if (kv.key.empty())
      return detail::writer_input_error("a metadata key is empty", path, "gguf.write.key");
    if (kv.key.size() > kGgufMaxString)
      return detail::writer_input_error("a metadata key is longer than 1 GiB", path,
                                        "gguf.write.key");
    if (!keys.insert(kv.key).second)
      return detail::writer_input_error("metadata key '" + kv.key + "' appears twice", path,
                                        "gguf.write.key");
    if (kv.key == detail::kGgufAlignmentKey) {
      const auto* v = std::get_if<std::uint64_t>(&kv.value.value);
      if (kv.value.type != GgufType::u32 || v == nullptr || *v != alignment)
        return detail::writer_input_error(
            "general.alignment must be a UINT32 equal to the alignment argument (" +
                std::to_string(alignment) + ")",
            path, "gguf.write.alignment");
      has_alignment = true;
    }
    out.str(kv.key);
    DMEM_TRY(encode_value(out, kv, path));
  }
  std::uint64_t n_kv = metadata.size();
  if (alignment != detail::kGgufDefaultAlignment && !has_alignment) {
    out.str(detail::kGgufAlignmentKey);
    out.le(static_cast<std::uint32_t>(GgufType::u32), 4);
    out.le(alignment, 4);
    ++n_kv;
  }
  for (std::size_t i = 0; i < 8; ++i)
    out.bytes[n_kv_at + i] = static_cast<unsigned char>(n_kv >> (8 * i));

  // Tensor infos: ne is the shape reversed; offsets run back to back, each padded.
  WriteLayout layout;
  layout.offsets.reserve(tensors.size());
  std::uint64_t offset = 0;
  for (const TensorData& t : tensors) {
    out.str(t.name);
    out.le(t.shape.size(), 4);
    for (auto d = t.shape.rbegin(); d != t.shape.rend(); ++d) out.le(*d, 8);
    out.le(static_cast<std::uint32_t>(dtype_info(t.dtype).ggml_id), 4);
    out.le(offset, 8);
    layout.offsets.push_back(offset);
    std::uint64_t padded = 0;
    if (!detail::gguf_pad(t.nbytes, alignment, padded) || padded > UINT64_MAX - offset)
      return detail::writer_input_error("the data section size overflows 64 bits", path,
                                        "gguf.write.shape", t.name);
    offset += padded;
  }
  std::uint64_t header_size = 0;
  if (!detail::gguf_pad(out.bytes.size(), alignment, header_size))
    return Status(Errc::internal, "GGUF header size overflow").with_file(std::string(path));

  if (offset > UINT64_MAX - header_size)
    return detail::writer_input_error("the file size overflows 64 bits", path, "gguf.write.shape");
  out.bytes.resize(static_cast<std::size_t>(header_size), 0);
  layout.head = std::move(out.bytes);
  for (std::uint64_t& o : layout.offsets) o += header_size;
  layout.order.resize(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) layout.order[i] = i;
  layout.file_size = header_size + offset;
  return layout;
}

}  // namespace detail

inline namespace v1 {

Status write_gguf(std::string_view path, std::span<const TensorData> tensors,
                  std::span<const GgufKv> metadata, std::uint32_t alignment) noexcept {
  auto layout = detail::gguf_layout(path, tensors, metadata, alignment, true);
  if (!layout) return layout.status();
  auto file = detail::TempFile::create(path);
  if (!file) return file.status();
  DMEM_TRY(file->write(layout->head.data(), layout->head.size()));
  std::uint64_t at = layout->head.size();
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    DMEM_TRY(write_zeros(*file, layout->offsets[i] - at));
    DMEM_TRY(file->write(tensors[i].data, tensors[i].nbytes));
    at = layout->offsets[i] + tensors[i].nbytes;
  }
  DMEM_TRY(write_zeros(*file, layout->file_size - at));
  return file->commit();
}

}  // namespace v1
}  // namespace dmem
