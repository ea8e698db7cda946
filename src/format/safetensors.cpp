// safetensors reader: validates a header exactly as the reference reader does (FORMATS.md §1.3)
// and a little more (duplicate names, UTF-8 checked here), without touching tensor data.
#include "format/safetensors.hpp"

#include <algorithm>
#include <array>
#include <deque>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "dmem/checkpoint.hpp"
#include "format/file_io.hpp"
#include "format/json_util.hpp"
#include "format/streamed_text.hpp"

namespace dmem::detail {

namespace {
// Reference enum order (tensor.rs `enum Dtype`, "increasing alignment order").
constexpr std::array<DType, 22> kOrder{
    DType::boolean,     DType::f4,      DType::f6_e2m3, DType::f6_e3m2, DType::u8,
    DType::i8,          DType::f8_e5m2, DType::f8_e4m3, DType::f8_e8m0, DType::f8_e4m3fnuz,
    DType::f8_e5m2fnuz, DType::i16,     DType::u16,     DType::f16,     DType::bf16,
    DType::i32,         DType::u32,     DType::f32,     DType::c64,     DType::f64,
    DType::i64,         DType::u64};
}  // namespace

std::uint32_t safetensors_bits(DType type) noexcept {
  const DTypeInfo& info = dtype_info(type);
  if (info.safetensors_name.empty() || info.block_elems == 0) return 0;
  return info.block_bytes * 8 / info.block_elems;
}

int safetensors_order(DType type) noexcept {
  for (std::size_t i = 0; i < kOrder.size(); ++i)
    if (kOrder[i] == type) return static_cast<int>(i);
  return -1;
}

SizeCheck safetensors_nbytes(DType type, std::span<const std::uint64_t> shape,
                             std::uint64_t& nbytes) noexcept {
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t elements = 1;
  for (const std::uint64_t d : shape) {
    if (d != 0 && elements > kMax / d) return SizeCheck::overflow;
    elements *= d;
  }
  const std::uint64_t bits = safetensors_bits(type);
  if (bits == 0) return SizeCheck::misaligned;  // not a safetensors dtype; callers check first
  if (elements != 0 && elements > kMax / bits) return SizeCheck::overflow;
  const std::uint64_t total_bits = elements * bits;
  if (total_bits % 8 != 0) return SizeCheck::misaligned;
  nbytes = total_bits / 8;
  return SizeCheck::ok;
}

}  // namespace dmem::detail

namespace dmem {
inline namespace v1 {

namespace {

using json = nlohmann::json;

struct RawTensor {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::uint64_t> shape;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
};

Status header_error(Errc code, std::string message, std::string_view label, const char* rule,
                    std::string hint) {
  Status status(code, std::move(message));
  status.with_file(std::string(label)).with_rule(rule);
  if (!hint.empty()) status.with_hint(std::move(hint));
  return status;
}

constexpr const char* kFixHeaderHint =
    "the header is malformed: re-export the checkpoint with a safetensors writer";

// Streams the header JSON into tensors and metadata, checking its shape on the way, so memory
// stays proportional to the header and nothing but our records is built.
class HeaderHandler {
 public:
  explicit HeaderHandler(std::string_view label) : label_(label) {}

  // A deque: growing it never copies what was read, and the records are handed over one by
  // one, so the peak stays near one copy of them (no vector doubling on huge headers).
  std::deque<RawTensor> tensors;
  std::vector<std::pair<std::string, std::string>> metadata;
  Status error;  // set when a callback stopped the parse

  bool null() { return value(Ev::null); }
  bool boolean(bool /*v*/) { return value(Ev::boolean); }
  bool number_integer(json::number_integer_t /*v*/) { return value(Ev::negative); }
  bool number_unsigned(json::number_unsigned_t v) { return value(Ev::unsigned_int, v); }
  bool number_float(json::number_float_t /*v*/, const json::string_t& /*s*/) {
    return value(Ev::floating);
  }
  bool string(json::string_t& s) { return value(Ev::string, 0, &s); }
  bool binary(json::binary_t& /*b*/) { return value(Ev::boolean); }
  bool start_object(std::size_t /*n*/) { return value(Ev::object); }
  bool start_array(std::size_t /*n*/) { return value(Ev::array); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(json::string_t& k) {
    if (skip_ > 0) return true;
    switch (state_) {
      case State::top_key:
        if (k == "__metadata__") {
          if (seen_metadata_) return dup("\"__metadata__\" appears twice", "");
          seen_metadata_ = true;
          in_metadata_ = true;
        } else {
          in_metadata_ = false;
        }
        current_.name = std::move(k);
        state_ = State::top_value;
        return true;
      case State::meta_key:
        meta_key_ = std::move(k);
        state_ = State::meta_value;
        return true;
      case State::field_key: {
        field_ = k == "dtype"          ? Field::dtype
                 : k == "shape"        ? Field::shape
                 : k == "data_offsets" ? Field::offsets
                                       : Field::unknown;
        if (field_ != Field::unknown) {
          const unsigned bit = 1u << static_cast<unsigned>(field_);
          if ((fields_seen_ & bit) != 0)
            return dup("field \"" + k + "\" appears twice", current_.name);
          fields_seen_ |= bit;
        }
        state_ = State::field_value;
        return true;
      }
      default:
        return internal();
    }
  }

  bool parse_error(std::size_t position, const std::string& /*token*/,
                   const nlohmann::detail::exception& ex) {
    syntax_error_ = true;
    syntax_offset_ = position > 0 ? position - 1 : 0;
    syntax_message_ = detail::plain_parse_message(ex.what());
    return false;
  }

  bool syntax_error_ = false;
  std::size_t syntax_offset_ = 0;
  std::string syntax_message_;

 private:
  enum class Ev { null, boolean, negative, unsigned_int, floating, string, object, array };
  enum class State {
    root,
    top_key,
    top_value,
    meta_key,
    meta_value,
    field_key,
    field_value,
    in_shape,
    in_offsets,
    done
  };
  enum class Field : unsigned { dtype = 0, shape = 1, offsets = 2, unknown = 3 };
  static constexpr std::size_t kMaxSkipDepth = 32;

  static const char* describe(Ev ev) {
    switch (ev) {
      case Ev::null:
        return "null";
      case Ev::boolean:
        return "a boolean";
      case Ev::negative:
        return "a negative number";
      case Ev::unsigned_int:
        return "an integer";
      case Ev::floating:
        return "a non-integer number";
      case Ev::string:
        return "a string";
      case Ev::object:
        return "an object";
      case Ev::array:
        return "an array";
    }
    return "a value";
  }

  bool schema(std::string message, const std::string& tensor) {
    error = header_error(Errc::format_error, std::move(message), label_,
                         "safetensors.header.schema", kFixHeaderHint);
    if (!tensor.empty()) error.with_tensor(tensor);
    return false;
  }

  bool dup(std::string message, const std::string& tensor) {
    error = header_error(Errc::format_error, std::move(message), label_,
                         "safetensors.header.duplicate_key",
                         "JSON keys must be unique: re-export the checkpoint");
    if (!tensor.empty()) error.with_tensor(tensor);
    return false;
  }

  bool internal() {
    error = header_error(Errc::internal, "unexpected JSON event in the header parser", label_,
                         "safetensors.header.schema", "");
    return false;
  }

  bool value(Ev ev, std::uint64_t u = 0, std::string* s = nullptr) {
    const bool container = ev == Ev::object || ev == Ev::array;
    if (skip_ > 0) {
      if (container && ++skip_ > kMaxSkipDepth)
        return schema(
            "an unknown field nests deeper than " + std::to_string(kMaxSkipDepth) + " levels",
            current_.name);
      return true;
    }
    switch (state_) {
      case State::root:
        if (ev != Ev::object)
          return schema(std::string("the header must be a JSON object, not ") + describe(ev), "");
        state_ = State::top_key;
        return true;
      case State::top_value:
        if (in_metadata_) {
          if (ev == Ev::null) {  // `"__metadata__": null` means no metadata, as in the reference
            state_ = State::top_key;
            return true;
          }
          if (ev != Ev::object)
            return schema(
                std::string("\"__metadata__\" must be an object of strings, not ") + describe(ev),
                "");
          state_ = State::meta_key;
          return true;
        }
        if (ev != Ev::object)
          return schema(std::string("a tensor entry must be an object with dtype, shape and "
                                    "data_offsets, not ") +
                            describe(ev),
                        current_.name);
        current_.dtype = DType::f32;
        current_.shape.clear();
        fields_seen_ = 0;
        offsets_count_ = 0;
        state_ = State::field_key;
        return true;
      case State::meta_value:
        if (ev != Ev::string)
          return schema("\"__metadata__\" value of \"" + meta_key_ + "\" must be a string, not " +
                            describe(ev),
                        "");
        metadata.emplace_back(std::move(meta_key_), std::move(*s));
        state_ = State::meta_key;
        return true;
      case State::field_value:
        return field_value(ev, s);
      case State::in_shape:
        if (ev != Ev::unsigned_int)
          return schema(
              std::string("shape entries must be non-negative integers, found ") + describe(ev),
              current_.name);
        current_.shape.push_back(u);
        return true;
      case State::in_offsets:
        if (ev != Ev::unsigned_int)
          return schema(std::string("data_offsets entries must be non-negative integers, found ") +
                            describe(ev),
                        current_.name);
        if (offsets_count_ >= 2)
          return schema("data_offsets must hold exactly 2 integers [begin, end]", current_.name);
        (offsets_count_ == 0 ? current_.begin : current_.end) = u;
        ++offsets_count_;
        return true;
      default:
        return internal();
    }
  }

  bool field_value(Ev ev, std::string* s) {
    switch (field_) {
      case Field::dtype: {
        if (ev != Ev::string)
          return schema(std::string("dtype must be a string, not ") + describe(ev), current_.name);
        const auto type = dtype_from_safetensors(*s);
        if (!type) {
          std::string shown = s->size() > 40 ? s->substr(0, 40) + "..." : *s;
          error = header_error(Errc::format_error, "unknown dtype \"" + shown + "\"", label_,
                               "safetensors.dtype.unknown",
                               "known dtypes: BOOL, U8, I8, I16, U16, I32, U32, I64, U64, F16, "
                               "BF16, F32, F64, C64, F8_E4M3, F8_E5M2, F8_E8M0, F8_E4M3FNUZ, "
                               "F8_E5M2FNUZ, F4, F6_E2M3, F6_E3M2");
          error.with_tensor(current_.name);
          return false;
        }
        current_.dtype = *type;
        state_ = State::field_key;
        return true;
      }
      case Field::shape:
        if (ev != Ev::array)
          return schema(
              std::string("shape must be an array of non-negative integers, not ") + describe(ev),
              current_.name);
        state_ = State::in_shape;
        return true;
      case Field::offsets:
        if (ev != Ev::array)
          return schema(
              std::string("data_offsets must be an array [begin, end], not ") + describe(ev),
              current_.name);
        state_ = State::in_offsets;
        return true;
      case Field::unknown:
        // Extra fields are ignored, as the reference's serde structs do.
        if (ev == Ev::object || ev == Ev::array) {
          skip_ = 1;
        } else {
          state_ = State::field_key;
        }
        return true;
    }
    return internal();
  }

  bool close() {
    if (skip_ > 0) {
      if (--skip_ == 0) state_ = State::field_key;
      return true;
    }
    switch (state_) {
      case State::top_key:
        state_ = State::done;
        return true;
      case State::meta_key:
        state_ = State::top_key;
        return true;
      case State::field_key: {
        static constexpr const char* kNames[] = {"dtype", "shape", "data_offsets"};
        for (unsigned i = 0; i < 3; ++i)
          if ((fields_seen_ & (1u << i)) == 0)
            return schema(std::string("missing field \"") + kNames[i] + "\"", current_.name);
        tensors.push_back(std::move(current_));
        current_ = RawTensor{};
        state_ = State::top_key;
        return true;
      }
      case State::in_shape:
        state_ = State::field_key;
        return true;
      case State::in_offsets:
        if (offsets_count_ != 2)
          return schema("data_offsets must hold exactly 2 integers [begin, end]", current_.name);
        state_ = State::field_key;
        return true;
      default:
        return internal();
    }
  }

  std::string_view label_;
  State state_ = State::root;
  Field field_ = Field::unknown;
  RawTensor current_;
  std::string meta_key_;
  unsigned fields_seen_ = 0;
  unsigned offsets_count_ = 0;
  std::size_t skip_ = 0;
  bool in_metadata_ = false;
  bool seen_metadata_ = false;
};

// Rules 1-3 of the reference reader, on the 8-byte prefix, before anything is allocated.
Status check_prefix(std::uint64_t n, std::uint64_t file_size, std::string_view label) {
  if (n > kSafetensorsMaxHeader) {
    return header_error(Errc::limit_exceeded,
                        "the header claims " + std::to_string(n) + " bytes; at most " +
                            std::to_string(kSafetensorsMaxHeader) + " are allowed",
                        label, "safetensors.header.too_large",
                        "this is not a safetensors file, or its first 8 bytes are corrupt")
        .with_offset(0);
  }
  if (n > file_size - 8) {
    return header_error(Errc::format_error,
                        "the header claims " + std::to_string(n) + " bytes but the file has only " +
                            std::to_string(file_size - 8) + " after the 8-byte length",
                        label, "safetensors.header.past_eof",
                        "the file is truncated (or not a safetensors file): re-download it")
        .with_offset(0);
  }
  return Status::ok();
}

Status bom_error(std::uint64_t at, std::string_view label) {
  return header_error(Errc::format_error, "the header starts with a byte order mark", label,
                      "safetensors.header.json", kFixHeaderHint)
      .with_offset(at);
}

// Runs the streaming parse over [first, last); on failure says why (syntax, schema, or the
// source's own error through `source_error`).
template <class Iter, class SourceError>
Status run_sax(Iter first, Iter last, HeaderHandler& handler, std::string_view label,
               SourceError source_error) {
  const bool ok = json::sax_parse(std::move(first), std::move(last), &handler,
                                  json::input_format_t::json, true, false);
  if (ok) return Status::ok();
  if (Status s = source_error(); !s.is_ok()) return s;
  if (handler.syntax_error_) {
    return header_error(Errc::format_error,
                        "the header is not valid JSON: " + handler.syntax_message_, label,
                        "safetensors.header.json", kFixHeaderHint)
        .with_offset(8 + handler.syntax_offset_);
  }
  if (!handler.error.is_ok()) return handler.error;
  return header_error(Errc::internal, "the header parser stopped without a reason", label,
                      "safetensors.header.json", "");
}

Result<SafetensorsFile> check_records(HeaderHandler& handler, std::uint64_t n,
                                      std::uint64_t file_size, std::string_view label);

// A header held in memory (parse_safetensors).
Result<SafetensorsFile> parse_header(std::string_view header, std::uint64_t file_size,
                                     std::string_view label) {
  std::size_t bad = 0;
  if (!detail::is_valid_utf8(header, &bad)) {
    return header_error(Errc::format_error, "the header is not valid UTF-8", label,
                        "safetensors.header.utf8", kFixHeaderHint)
        .with_offset(8 + bad);
  }
  // nlohmann would skip a byte order mark; the reference (serde_json) rejects it.
  {
    std::size_t i = 0;
    while (i < header.size() &&
           (header[i] == ' ' || header[i] == '\t' || header[i] == '\n' || header[i] == '\r'))
      ++i;
    if (header.substr(i).starts_with("\xEF\xBB\xBF")) return bom_error(8 + i, label);
  }
  HeaderHandler handler(label);
  DMEM_TRY(run_sax(header.begin(), header.end(), handler, label, [] { return Status::ok(); }));
  return check_records(handler, header.size(), file_size, label);
}

// A header streamed from the file in bounded chunks: memory holds one chunk plus the records,
// and a malformed header stops the reading at the first bad chunk.
Result<SafetensorsFile> parse_header(const detail::ReadFile& file, std::uint64_t n,
                                     std::string_view label) {
  detail::StreamedText text(file, 8, n);
  if (text.peek(3) == "\xEF\xBB\xBF") return bom_error(8, label);
  HeaderHandler handler(label);
  DMEM_TRY(run_sax(text.begin(), text.end(), handler, label, [&]() -> Status {
    if (text.utf8_error()) {
      return header_error(Errc::format_error, "the header is not valid UTF-8", label,
                          "safetensors.header.utf8", kFixHeaderHint)
          .with_offset(8 + text.utf8_offset());
    }
    return text.error();
  }));
  return check_records(handler, n, file.size(), label);
}

Result<SafetensorsFile> check_records(HeaderHandler& handler, std::uint64_t n,
                                      std::uint64_t file_size, std::string_view label) {
  const std::uint64_t data_start = 8 + n;
  std::deque<RawTensor>& raw = handler.tensors;

  // Duplicate names: nlohmann (and serde's map) would silently keep one of them.
  {
    std::vector<const RawTensor*> by_name;
    by_name.reserve(raw.size());
    for (const auto& t : raw) by_name.push_back(&t);
    std::sort(by_name.begin(), by_name.end(),
              [](const RawTensor* a, const RawTensor* b) { return a->name < b->name; });
    for (std::size_t i = 1; i < by_name.size(); ++i) {
      if (by_name[i]->name == by_name[i - 1]->name) {
        return header_error(Errc::format_error, "the tensor name appears twice in the header",
                            label, "safetensors.tensor.duplicate",
                            "tensor names must be unique: re-export the checkpoint")
            .with_tensor(by_name[i]->name);
      }
    }
  }
  auto& meta = handler.metadata;
  std::sort(meta.begin(), meta.end());
  for (std::size_t i = 1; i < meta.size(); ++i) {
    if (meta[i].first == meta[i - 1].first) {
      return header_error(
          Errc::format_error, "\"__metadata__\" key \"" + meta[i].first + "\" appears twice", label,
          "safetensors.header.duplicate_key", "JSON keys must be unique: re-export the checkpoint");
    }
  }

  // Reference order: sort by (begin, end); the name breaks ties so the result is deterministic.
  std::sort(raw.begin(), raw.end(), [](const RawTensor& a, const RawTensor& b) {
    if (a.begin != b.begin) return a.begin < b.begin;
    if (a.end != b.end) return a.end < b.end;
    return a.name < b.name;
  });

  SafetensorsFile out;
  out.path = std::string(label);
  out.file_size = file_size;
  out.header_size = n;
  out.data_start = data_start;
  out.tensors.reserve(raw.size());

  std::uint64_t running_end = 0;
  while (!raw.empty()) {
    RawTensor t = std::move(raw.front());
    raw.pop_front();  // frees the deque's blocks as the output vector fills
    if (t.begin != running_end) {
      const bool gap = t.begin > running_end;
      return header_error(
                 Errc::format_error,
                 "data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) + "] " +
                     (gap ? "leave a gap after" : "overlap") +
                     " the previous tensor's data, which ends at " + std::to_string(running_end),
                 label, "safetensors.offsets.contiguous",
                 "tensor data must be packed back to back from offset 0: re-export the "
                 "checkpoint")
          .with_tensor(t.name);
    }
    if (t.end < t.begin) {
      return header_error(Errc::format_error,
                          "data_offsets [" + std::to_string(t.begin) + ", " +
                              std::to_string(t.end) + "] end before they begin",
                          label, "safetensors.offsets.reversed", kFixHeaderHint)
          .with_tensor(t.name);
    }
    running_end = t.end;

    std::uint64_t nbytes = 0;
    switch (detail::safetensors_nbytes(t.dtype, t.shape, nbytes)) {
      case detail::SizeCheck::overflow:
        return header_error(Errc::format_error,
                            "the size of the shape times the dtype overflows 64 bits", label,
                            "safetensors.shape.overflow", kFixHeaderHint)
            .with_tensor(t.name);
      case detail::SizeCheck::misaligned:
        return header_error(Errc::format_error,
                            std::string("the element count times ") +
                                std::to_string(detail::safetensors_bits(t.dtype)) + " bits of " +
                                std::string(dtype_info(t.dtype).safetensors_name) +
                                " is not a whole number of bytes",
                            label, "safetensors.shape.misaligned", kFixHeaderHint)
            .with_tensor(t.name);
      case detail::SizeCheck::ok:
        break;
    }
    if (t.end - t.begin != nbytes) {
      return header_error(Errc::format_error,
                          "data_offsets span " + std::to_string(t.end - t.begin) +
                              " bytes but the shape and dtype need " + std::to_string(nbytes),
                          label, "safetensors.tensor.size", kFixHeaderHint)
          .with_tensor(t.name);
    }

    TensorInfo info;
    info.name = std::move(t.name);
    info.dtype = t.dtype;
    info.shape = std::move(t.shape);
    info.nbytes = nbytes;
    info.file = 0;
    info.offset = t.begin;  // made absolute once coverage proves 8 + N + end fits the file
    out.tensors.push_back(std::move(info));
  }

  // The data section must be covered exactly: catches truncation and trailing (polyglot) bytes.
  const std::uint64_t data_bytes = file_size - data_start;
  if (running_end > data_bytes) {
    return header_error(Errc::format_error,
                        "the tensors need " + std::to_string(running_end) +
                            " data bytes but the file holds only " + std::to_string(data_bytes),
                        label, "safetensors.file.truncated",
                        "the file is truncated: re-download it")
        .with_offset(file_size);
  }
  if (running_end < data_bytes) {
    return header_error(
               Errc::format_error,
               std::to_string(data_bytes - running_end) + " bytes follow the last tensor's data",
               label, "safetensors.file.trailing",
               "the file has trailing bytes (or a header that misses tensors): "
               "re-download or re-export it")
        .with_offset(data_start + running_end);
  }
  for (auto& t : out.tensors) t.offset += data_start;
  out.metadata = std::move(meta);
  return out;
}

}  // namespace

Result<SafetensorsFile> parse_safetensors(const void* bytes, std::size_t size,
                                          std::uint64_t file_size,
                                          std::string_view label) noexcept {
  if (file_size < 8) {
    return header_error(Errc::format_error,
                        "the file is " + std::to_string(file_size) +
                            " bytes long, shorter than the 8-byte header length",
                        label, "safetensors.file.too_small",
                        "the file is truncated or empty: re-download it");
  }
  if (bytes == nullptr || size < 8 || size > file_size) {
    return header_error(Errc::invalid_argument,
                        "the buffer must hold the file's first 8 bytes at least and no more than "
                        "the file",
                        label, "safetensors.buffer", "");
  }
  const auto* p = static_cast<const unsigned char*>(bytes);
  const std::uint64_t n = detail::load_le64(p);
  DMEM_TRY(check_prefix(n, file_size, label));
  if (n > size - 8) {
    return header_error(Errc::invalid_argument,
                        "the buffer holds " + std::to_string(size) + " bytes; the header needs " +
                            std::to_string(8 + n),
                        label, "safetensors.buffer", "pass at least the 8-byte prefix and header");
  }
  return parse_header(std::string_view(reinterpret_cast<const char*>(p + 8), n), file_size, label);
}

Result<SafetensorsFile> read_safetensors(std::string_view path) noexcept {
  auto file = detail::ReadFile::open(path);
  if (!file) return file.status();
  return detail::read_safetensors_file(*file);
}

}  // namespace v1
}  // namespace dmem

namespace dmem::detail {

Result<SafetensorsFile> read_safetensors_file(const ReadFile& file) noexcept {
  const std::string& path = file.path();
  const std::uint64_t file_size = file.size();
  if (file_size < 8) {
    return header_error(Errc::format_error,
                        "the file is " + std::to_string(file_size) +
                            " bytes long, shorter than the 8-byte header length",
                        path, "safetensors.file.too_small",
                        "the file is truncated or empty: re-download it");
  }
  unsigned char prefix[8];
  DMEM_TRY(file.read_at(prefix, 8, 0));
  const std::uint64_t n = load_le64(prefix);
  // Bound first (n <= min(file_size - 8, 100 MB)), then stream: the header is never held whole.
  DMEM_TRY(check_prefix(n, file_size, path));
  return parse_header(file, n, path);
}

}  // namespace dmem::detail
