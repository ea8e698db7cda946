// GGUF reader: validates the header, metadata and tensor table as ggml's gguf.cpp does
// (FORMATS.md §2.4) plus the hardening of §2.7, without touching tensor data. Every count and
// length is checked against the bytes left in the input, and no count ever sizes an allocation up
// front: containers grow as records are actually read (a sparse file's size proves nothing about
// its content), and decoded metadata has a fixed budget, so memory follows the bytes really read.
#include "format/gguf.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "format/file_io.hpp"
#include "format/gguf_bytes.hpp"

namespace dmem::detail {

std::string_view gguf_type_name(std::uint32_t type) noexcept {
  static constexpr std::array<std::string_view, 13> kNames{
      "UINT8", "INT8",   "UINT16", "INT16",  "UINT32", "INT32",  "FLOAT32",
      "BOOL",  "STRING", "ARRAY",  "UINT64", "INT64",  "FLOAT64"};
  return type < kNames.size() ? kNames[type] : std::string_view("unknown");
}

std::string_view gguf_removed_type_name(std::int64_t ggml_id) noexcept {
  switch (ggml_id) {
    case 4:
      return "Q4_2";
    case 5:
      return "Q4_3";
    case 31:
      return "Q4_0_4_4";
    case 32:
      return "Q4_0_4_8";
    case 33:
      return "Q4_0_8_8";
    case 36:
      return "IQ4_NL_4_4";
    case 37:
      return "IQ4_NL_4_8";
    case 38:
      return "IQ4_NL_8_8";
    default:
      return {};
  }
}

}  // namespace dmem::detail

namespace dmem {
inline namespace v1 {

namespace {

using detail::GgufBytes;

// Smallest possible records: a KV is a 1-byte key (8 + 1), a type (4) and a 1-byte value; a tensor
// info is a 1-byte name (8 + 1), n_dims (4), no dims, a type (4) and an offset (8).
constexpr std::uint64_t kMinKvBytes = 8 + 1 + 4 + 1;
constexpr std::uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 4 + 8;

// Strings longer than this are read piecewise, growing as bytes arrive.
constexpr std::uint64_t kStringChunk = 1u << 20;

constexpr const char* kCorruptHint =
    "the file is corrupt, truncated or crafted: re-download it or re-export it with llama.cpp's "
    "gguf-py";

std::uint64_t load_le(const unsigned char* p, std::size_t n) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = n; i-- > 0;) v = (v << 8) | p[i];
  return v;
}

std::int64_t sign_extend(std::uint64_t v, std::size_t n) noexcept {
  if (n < 8) {
    const std::uint64_t sign = 1ull << (8 * n - 1);
    if ((v & sign) != 0) v |= ~((sign << 1) - 1);
  }
  return static_cast<std::int64_t>(v);  // modular since C++20
}

bool is_unsigned(std::uint32_t t) noexcept {
  return t == 0 || t == 2 || t == 4 || t == 10;
}
bool is_signed(std::uint32_t t) noexcept {
  return t == 1 || t == 3 || t == 5 || t == 11;
}

std::string hex4(const unsigned char* p) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < 4; ++i) {
    if (i > 0) s += ' ';
    s += kDigits[p[i] >> 4];
    s += kDigits[p[i] & 15];
  }
  return s;
}

// A set of record indexes keyed by the record's name, looked up through the vector each time, so
// the vector may reallocate as it grows (string_views into it would dangle).
template <class Record, std::string Record::*Name>
class NameSet {
 public:
  explicit NameSet(const std::vector<Record>& records)
      : set_(16, Hash{&records}, Equal{&records}) {}
  /// Adds records[i]; false when an earlier record has the same name.
  bool insert(std::size_t i) { return set_.insert(i).second; }

 private:
  struct Hash {
    const std::vector<Record>* v;
    std::size_t operator()(std::size_t i) const noexcept {
      return std::hash<std::string_view>{}((*v)[i].*Name);
    }
  };
  struct Equal {
    const std::vector<Record>* v;
    bool operator()(std::size_t a, std::size_t b) const noexcept {
      return (*v)[a].*Name == (*v)[b].*Name;
    }
  };
  std::unordered_set<std::size_t, Hash, Equal> set_;
};

class Parser {
 public:
  Parser(GgufBytes& bytes, std::string_view label) : bytes_(bytes), label_(label) {}

  Result<GgufFile> run() {
    GgufFile file;
    file.path = label_;
    file.file_size = bytes_.size();
    Status s = header(file);
    if (s.is_ok()) s = metadata(file);
    if (s.is_ok()) s = tensor_infos(file);
    if (s.is_ok()) s = data_section(file);
    if (!s.is_ok()) return s;
    return file;
  }

 private:
  GgufBytes& bytes_;
  std::string label_;
  std::uint64_t pos_ = 0;
  std::uint64_t n_tensors_ = 0;
  std::uint64_t n_kv_ = 0;
  std::uint64_t metadata_bytes_ = 0;  // memory the decoded metadata takes (budgeted)

  [[nodiscard]] std::uint64_t remaining() const noexcept { return bytes_.size() - pos_; }

  [[nodiscard]] Status fail(Errc code, std::string message, std::uint64_t offset, const char* rule,
                            std::string hint = kCorruptHint, std::string_view tensor = {}) const {
    Status status(code, std::move(message));
    status.with_file(label_).with_offset(offset).with_rule(rule).with_hint(std::move(hint));
    if (!tensor.empty()) status.with_tensor(std::string(tensor));
    return status;
  }

  [[nodiscard]] Status truncated(std::uint64_t need, std::string_view what) const {
    return fail(Errc::format_error,
                "the file ends at byte " + std::to_string(bytes_.size()) + " inside " +
                    std::string(what) + " (" + std::to_string(need) + " bytes needed at byte " +
                    std::to_string(pos_) + ")",
                pos_, "gguf.truncated");
  }

  // Reads `n` bytes at the cursor and advances; a short input is gguf.truncated.
  [[nodiscard]] Status raw(void* dst, std::uint64_t n, std::string_view what) {
    if (n > remaining()) return truncated(n, what);
    DMEM_TRY(bytes_.read(pos_, dst, n));
    pos_ += n;
    return Status::ok();
  }

  [[nodiscard]] Status u32(std::uint32_t& out, std::string_view what) {
    unsigned char b[4];
    DMEM_TRY(raw(b, 4, what));
    out = static_cast<std::uint32_t>(load_le(b, 4));
    return Status::ok();
  }

  [[nodiscard]] Status u64(std::uint64_t& out, std::string_view what) {
    unsigned char b[8];
    DMEM_TRY(raw(b, 8, what));
    out = load_le(b, 8);
    return Status::ok();
  }

  // A gguf_string: u64 length (≤ 1 GiB and ≤ the bytes left) then the bytes.
  [[nodiscard]] Status string(std::string& out, std::string_view what) {
    const std::uint64_t at = pos_;
    std::uint64_t len = 0;
    DMEM_TRY(u64(len, what));
    if (len > kGgufMaxString) {
      return fail(Errc::limit_exceeded,
                  std::string(what) + " is " + std::to_string(len) +
                      " bytes long; at most 1 GiB is accepted",
                  at, "gguf.string_length");
    }
    if (len > remaining()) {
      return fail(Errc::format_error,
                  std::string(what) + " claims " + std::to_string(len) + " bytes but only " +
                      std::to_string(remaining()) + " are left in the file",
                  at, "gguf.string_length");
    }
    DMEM_TRY(charge(len, at, what));
    // Piecewise: a huge length backed by a hole costs memory only as bytes are really read.
    out.clear();
    for (std::uint64_t done = 0; done < len;) {
      const std::uint64_t n = std::min(kStringChunk, len - done);
      out.resize(static_cast<std::size_t>(done + n));
      DMEM_TRY(raw(out.data() + done, n, what));
      done += n;
    }
    return Status::ok();
  }

  // Charges decoded metadata against kGgufMaxMetadataBytes before it is built.
  [[nodiscard]] Status charge(std::uint64_t bytes, std::uint64_t at, std::string_view what) {
    if (bytes > detail::kGgufMaxMetadataBytes - metadata_bytes_) {
      return fail(Errc::limit_exceeded,
                  std::string(what) + ": the metadata would take more than " +
                      std::to_string(detail::kGgufMaxMetadataBytes >> 20) +
                      " MiB of memory once decoded",
                  at, "gguf.metadata_size",
                  "real GGUF metadata (tokenizers included) takes a few tens of MiB: the file is "
                  "corrupt or crafted");
    }
    metadata_bytes_ += bytes;
    return Status::ok();
  }

  Status header(GgufFile& file) {
    unsigned char magic[4] = {0, 0, 0, 0};
    if (bytes_.size() < 4) {
      return fail(Errc::format_error,
                  "not a GGUF file: it is " + std::to_string(bytes_.size()) +
                      " bytes, too short for the magic \"GGUF\"",
                  0, "gguf.magic", "pass a .gguf checkpoint");
    }
    DMEM_TRY(raw(magic, 4, "the magic"));
    if (std::memcmp(magic, "GGUF", 4) != 0) {
      return fail(Errc::format_error,
                  "not a GGUF file: it starts with bytes " + hex4(magic) +
                      ", not the magic \"GGUF\" (47 47 55 46)",
                  0, "gguf.magic", "pass a .gguf checkpoint");
    }
    DMEM_TRY(u32(file.version, "the version"));
    const std::uint32_t v = file.version;
    if (v == 0 || (v & 0xFFFFu) == 0 || v == 1 || v > 3) {
      std::string message = "GGUF version " + std::to_string(v) + " is not supported";
      std::string hint = "dmem reads GGUF versions 2 and 3";
      if (v != 0 && (v & 0xFFFFu) == 0) {
        message = "the version field reads " + std::to_string(v) +
                  ": the file is big-endian or byte-swapped";
        hint = "convert it to little-endian GGUF with llama.cpp's gguf-py";
      } else if (v == 1) {
        message = "GGUF version 1 is no longer supported";
        hint = "convert the file to GGUF v3 with a current llama.cpp";
      } else if (v > 3) {
        message += " (newer than this dmem)";
      }
      return fail(Errc::format_error, std::move(message), 4, "gguf.version", std::move(hint));
    }
    DMEM_TRY(u64(n_tensors_, "the tensor count"));
    DMEM_TRY(u64(n_kv_, "the metadata count"));

    // Every record takes a minimum number of bytes, so the file size bounds both counts; checking
    // this before reserving anything defeats the huge-count exploits (CVE-2024-21836, -23605).
    const std::uint64_t left = remaining();
    if (n_tensors_ > static_cast<std::uint64_t>(INT64_MAX)) {
      return fail(Errc::format_error,
                  "the tensor count is negative (" +
                      std::to_string(static_cast<std::int64_t>(n_tensors_)) + ")",
                  8, "gguf.counts");
    }
    if (n_tensors_ > left / kMinTensorInfoBytes) {
      return fail(Errc::format_error,
                  "the header claims " + std::to_string(n_tensors_) + " tensors but the " +
                      std::to_string(left) + " bytes after it can hold at most " +
                      std::to_string(left / kMinTensorInfoBytes),
                  8, "gguf.counts");
    }
    if (n_kv_ > static_cast<std::uint64_t>(INT64_MAX)) {
      return fail(Errc::format_error,
                  "the metadata count is negative (" +
                      std::to_string(static_cast<std::int64_t>(n_kv_)) + ")",
                  16, "gguf.counts");
    }
    if (n_kv_ > left / kMinKvBytes ||
        n_kv_ * kMinKvBytes > left - n_tensors_ * kMinTensorInfoBytes) {
      return fail(Errc::format_error,
                  "the header claims " + std::to_string(n_kv_) + " metadata entries and " +
                      std::to_string(n_tensors_) + " tensors but the " + std::to_string(left) +
                      " bytes after it cannot hold that many",
                  16, "gguf.counts");
    }
    return Status::ok();
  }

  // Fixed-size elements, decoded in chunks so a long array is not one read per element.
  template <class T, class Decode>
  Status fixed_array(std::vector<T>& out, std::uint64_t count, std::uint64_t size, Decode decode,
                     std::string_view what) {
    // No reserve(count): the vector grows only as chunks are actually read.
    std::array<unsigned char, 4096> chunk{};
    const std::uint64_t per_chunk = chunk.size() / size;
    for (std::uint64_t done = 0; done < count;) {
      const std::uint64_t n = std::min(per_chunk, count - done);
      DMEM_TRY(raw(chunk.data(), n * size, what));
      for (std::uint64_t i = 0; i < n; ++i) out.push_back(decode(chunk.data() + i * size));
      done += n;
    }
    return Status::ok();
  }

  Status scalar_value(std::uint32_t type, GgufValue& out, std::string_view what) {
    const std::uint64_t size = detail::gguf_scalar_size(type);
    unsigned char b[8];
    DMEM_TRY(raw(b, size, what));
    const std::uint64_t bits = load_le(b, static_cast<std::size_t>(size));
    if (is_unsigned(type)) {
      out.value = bits;
    } else if (is_signed(type)) {
      out.value = sign_extend(bits, static_cast<std::size_t>(size));
    } else if (type == 6) {
      out.value = static_cast<double>(std::bit_cast<float>(static_cast<std::uint32_t>(bits)));
    } else if (type == 12) {
      out.value = std::bit_cast<double>(bits);
    } else {
      out.value = bits != 0;  // ggml reads any non-zero byte as true
    }
    return Status::ok();
  }

  Status array_value(GgufValue& out, const std::string& key) {
    const std::uint64_t type_at = pos_;
    std::uint32_t elem = 0;
    DMEM_TRY(u32(elem, "an array element type"));
    if (elem == static_cast<std::uint32_t>(GgufType::array)) {
      return fail(Errc::format_error, "key '" + key + "': nested arrays are not supported", type_at,
                  "gguf.value_type");
    }
    if (elem > 12) {
      return fail(Errc::format_error,
                  "key '" + key + "': unknown array element type " + std::to_string(elem), type_at,
                  "gguf.value_type");
    }
    out.elem_type = static_cast<GgufType>(elem);
    const std::uint64_t count_at = pos_;
    std::uint64_t count = 0;
    DMEM_TRY(u64(count, "an array length"));
    if (count > kGgufMaxArray) {
      return fail(Errc::limit_exceeded,
                  "key '" + key + "': the array has " + std::to_string(count) +
                      " elements; at most 2^30 are accepted",
                  count_at, "gguf.array_length");
    }
    // A string element takes at least its 8-byte length.
    const std::uint64_t min_size = elem == 8 ? 8 : detail::gguf_scalar_size(elem);
    if (count > remaining() / min_size) {
      return fail(Errc::format_error,
                  "key '" + key + "': the array claims " + std::to_string(count) + " " +
                      std::string(detail::gguf_type_name(elem)) + " elements but only " +
                      std::to_string(remaining()) + " bytes are left in the file",
                  count_at, "gguf.array_length");
    }
    const std::string what = "the array of key '" + key + "'";
    const std::uint64_t size = detail::gguf_scalar_size(elem);
    // What the decoded elements take in memory (count is bounded above, so this cannot wrap).
    const std::uint64_t elem_memory = elem == 8   ? sizeof(std::string)
                                      : elem == 7 ? 1
                                                  : sizeof(std::uint64_t);
    DMEM_TRY(charge(count * elem_memory, count_at, "the array of key '" + key + "'"));
    if (elem == 8) {
      std::vector<std::string> values;
      for (std::uint64_t i = 0; i < count; ++i) {
        values.emplace_back();
        DMEM_TRY(string(values.back(), "a string in " + what));
      }
      out.value = std::move(values);
    } else if (is_unsigned(elem)) {
      std::vector<std::uint64_t> values;
      const auto n = static_cast<std::size_t>(size);
      DMEM_TRY(fixed_array(
          values, count, size, [n](const unsigned char* p) { return load_le(p, n); }, what));
      out.value = std::move(values);
    } else if (is_signed(elem)) {
      std::vector<std::int64_t> values;
      const auto n = static_cast<std::size_t>(size);
      DMEM_TRY(fixed_array(
          values, count, size,
          [n](const unsigned char* p) { return sign_extend(load_le(p, n), n); }, what));
      out.value = std::move(values);
    } else if (elem == 6 || elem == 12) {
      std::vector<double> values;
      if (elem == 6) {
        DMEM_TRY(fixed_array(
            values, count, size,
            [](const unsigned char* p) {
              return static_cast<double>(
                  std::bit_cast<float>(static_cast<std::uint32_t>(load_le(p, 4))));
            },
            what));
      } else {
        DMEM_TRY(fixed_array(
            values, count, size,
            [](const unsigned char* p) { return std::bit_cast<double>(load_le(p, 8)); }, what));
      }
      out.value = std::move(values);
    } else {
      std::vector<bool> values;
      DMEM_TRY(fixed_array(
          values, count, size, [](const unsigned char* p) { return *p != 0; }, what));
      out.value = std::move(values);
    }
    return Status::ok();
  }

  Status metadata(GgufFile& file) {
    // No reserve(n_kv_): the count is only a claim until each record has been read.
    NameSet<GgufKv, &GgufKv::key> keys(file.metadata);
    for (std::uint64_t i = 0; i < n_kv_; ++i) {
      const std::uint64_t kv_at = pos_;
      file.metadata.emplace_back();
      GgufKv& kv = file.metadata.back();
      DMEM_TRY(string(kv.key, "a metadata key"));
      DMEM_TRY(charge(sizeof(GgufKv), kv_at, "metadata key '" + kv.key + "'"));
      if (kv.key.empty()) {
        return fail(Errc::format_error, "metadata entry " + std::to_string(i) + " has an empty key",
                    kv_at, "gguf.key");
      }
      if (!keys.insert(file.metadata.size() - 1)) {
        return fail(Errc::format_error, "metadata key '" + kv.key + "' appears twice", kv_at,
                    "gguf.duplicate_key");
      }
      const std::uint64_t type_at = pos_;
      std::uint32_t type = 0;
      DMEM_TRY(u32(type, "a metadata value type"));
      if (type > 12) {
        return fail(Errc::format_error,
                    "key '" + kv.key + "': unknown value type " + std::to_string(type), type_at,
                    "gguf.value_type");
      }
      kv.value.type = static_cast<GgufType>(type);
      const std::uint64_t value_at = pos_;
      if (type == static_cast<std::uint32_t>(GgufType::array)) {
        DMEM_TRY(array_value(kv.value, kv.key));
      } else if (type == static_cast<std::uint32_t>(GgufType::string)) {
        std::string text;
        DMEM_TRY(string(text, "the value of key '" + kv.key + "'"));
        kv.value.value = std::move(text);
      } else {
        DMEM_TRY(scalar_value(type, kv.value, "the value of key '" + kv.key + "'"));
      }
      if (kv.key == detail::kGgufAlignmentKey)
        DMEM_TRY(alignment(kv.value, type_at, value_at, file));
    }
    return Status::ok();
  }

  Status alignment(const GgufValue& value, std::uint64_t type_at, std::uint64_t value_at,
                   GgufFile& file) const {
    if (value.type != GgufType::u32) {
      return fail(Errc::format_error,
                  "general.alignment has type " +
                      std::string(detail::gguf_type_name(static_cast<std::uint32_t>(value.type))) +
                      "; it must be UINT32",
                  type_at, "gguf.alignment");
    }
    const std::uint64_t a = std::get<std::uint64_t>(value.value);
    if (a == 0 || !std::has_single_bit(a) || a > detail::kGgufMaxAlignment) {
      return fail(Errc::format_error,
                  "general.alignment is " + std::to_string(a) +
                      "; it must be a power of two from 1 to 1048576",
                  value_at, "gguf.alignment");
    }
    file.alignment = static_cast<std::uint32_t>(a);
    return Status::ok();
  }

  // Walks the tensor-info table reading only its length fields and counts the records that are
  // really there (up to the first malformed one); the cursor is left where it was. Reserving that
  // count is reserving for bytes already read, and avoids the 3x peak of a doubling vector.
  std::uint64_t count_tensor_infos() {
    const std::uint64_t start = pos_;
    std::uint64_t n = 0;
    for (; n < n_tensors_; ++n) {
      std::uint64_t len = 0;
      std::uint32_t n_dims = 0;
      unsigned char skip[64];
      if (!u64(len, "").is_ok() || len == 0 || len >= detail::kGgufMaxName) break;
      if (!raw(skip, len, "").is_ok() || !u32(n_dims, "").is_ok()) break;
      if (n_dims > detail::kGgufMaxDims || !raw(skip, 8ull * n_dims + 4 + 8, "").is_ok()) break;
    }
    pos_ = start;
    return n;
  }

  // Byte offset of tensor info `index` (a table already validated up to it).
  std::uint64_t tensor_info_offset(std::uint64_t table_start, std::uint64_t index) {
    const std::uint64_t saved = pos_;
    pos_ = table_start;
    for (std::uint64_t i = 0; i < index; ++i) {
      std::uint64_t len = 0;
      std::uint32_t n_dims = 0;
      unsigned char skip[64];
      if (!u64(len, "").is_ok() || len >= detail::kGgufMaxName || !raw(skip, len, "").is_ok() ||
          !u32(n_dims, "").is_ok() || n_dims > detail::kGgufMaxDims ||
          !raw(skip, 8ull * n_dims + 4 + 8, "").is_ok())
        break;
    }
    const std::uint64_t at = pos_;
    pos_ = saved;
    return at;
  }

  // Duplicate names, found by sorting indexes (4 bytes a tensor, not a hash node each); the
  // error names the first tensor info, in file order, whose name appeared before.
  Status check_duplicate_tensors(const GgufFile& file, std::uint64_t table_start) {
    const auto& ts = file.tensors;
    std::vector<std::uint32_t> order(ts.size());
    for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
      const int c = ts[a].name.compare(ts[b].name);
      return c != 0 ? c < 0 : a < b;
    });
    std::uint64_t first = UINT64_MAX;
    for (std::size_t k = 1; k < order.size(); ++k)
      if (ts[order[k]].name == ts[order[k - 1]].name)
        first = std::min<std::uint64_t>(first, order[k]);
    if (first == UINT64_MAX) return Status::ok();
    return fail(Errc::format_error, "the tensor name appears twice",
                tensor_info_offset(table_start, first), "gguf.duplicate_tensor", kCorruptHint,
                ts[first].name);
  }

  Status tensor_infos(GgufFile& file) {
    const std::uint64_t table_start = pos_;
    file.tensors.reserve(static_cast<std::size_t>(count_tensor_infos()));
    DMEM_TRY(read_tensor_infos(file));
    return check_duplicate_tensors(file, table_start);
  }

  Status read_tensor_infos(GgufFile& file) {
    std::uint64_t running = 0;  // expected offset of the next tensor (ggml: ctx->size)
    for (std::uint64_t i = 0; i < n_tensors_; ++i) {
      const std::uint64_t info_at = pos_;
      file.tensors.emplace_back();
      TensorInfo& t = file.tensors.back();
      t.file = 0;

      // Name: 1..63 bytes (ggml GGML_MAX_NAME), checked before reading it.
      std::uint64_t len = 0;
      DMEM_TRY(u64(len, "a tensor name length"));
      if (len == 0 || len >= detail::kGgufMaxName) {
        return fail(Errc::format_error,
                    "tensor " + std::to_string(i) + " has a name of " + std::to_string(len) +
                        " bytes; names hold 1 to 63 bytes",
                    info_at, "gguf.tensor_name");
      }
      t.name.resize(static_cast<std::size_t>(len));
      DMEM_TRY(raw(t.name.data(), len, "a tensor name"));

      const std::uint64_t dims_at = pos_;
      std::uint32_t n_dims = 0;
      DMEM_TRY(u32(n_dims, "a tensor's dimension count"));
      if (n_dims > detail::kGgufMaxDims) {
        return fail(
            Errc::format_error,
            "the tensor has " + std::to_string(n_dims) + " dimensions; GGUF allows at most 4",
            dims_at, "gguf.dims", kCorruptHint, t.name);
      }
      std::array<std::uint64_t, 4> ne{1, 1, 1, 1};
      const std::uint64_t ne_at = pos_;
      for (std::uint32_t j = 0; j < n_dims; ++j) {
        const std::uint64_t at = pos_;
        DMEM_TRY(u64(ne[j], "a tensor's dimensions"));
        if (ne[j] > static_cast<std::uint64_t>(INT64_MAX)) {
          return fail(Errc::format_error,
                      "the tensor has a negative dimension ne[" + std::to_string(j) +
                          "] = " + std::to_string(static_cast<std::int64_t>(ne[j])),
                      at, "gguf.dims", kCorruptHint, t.name);
        }
      }
      // Element count must fit int64 (CVE-2024-21802: dimension products that wrap).
      std::uint64_t elements = 1;
      const bool empty = std::find(ne.begin(), ne.end(), 0u) != ne.end();
      for (std::uint32_t j = 0; j < 4 && !empty; ++j) {
        if (elements > static_cast<std::uint64_t>(INT64_MAX) / ne[j]) {
          return fail(Errc::format_error,
                      "the element count of the tensor's dimensions overflows 64 bits", ne_at,
                      "gguf.size_overflow", kCorruptHint, t.name);
        }
        elements *= ne[j];
      }
      if (empty) elements = 0;

      const std::uint64_t type_at = pos_;
      std::uint32_t raw_type = 0;
      DMEM_TRY(u32(raw_type, "a tensor type"));
      const auto type_id = static_cast<std::int64_t>(static_cast<std::int32_t>(raw_type));
      const auto dtype = dtype_from_ggml(type_id);
      if (!dtype) {
        const std::string_view removed = detail::gguf_removed_type_name(type_id);
        if (!removed.empty()) {
          return fail(Errc::format_error,
                      "ggml type " + std::to_string(type_id) + " (" + std::string(removed) +
                          ") was removed from GGUF",
                      type_at, "gguf.tensor_type", "re-quantize the model with a current llama.cpp",
                      t.name);
        }
        return fail(Errc::format_error, "unknown ggml type " + std::to_string(type_id), type_at,
                    "gguf.tensor_type", kCorruptHint, t.name);
      }
      const DTypeInfo& info = dtype_info(*dtype);
      if (info.block_elems == 0 || ne[0] % info.block_elems != 0) {
        return fail(Errc::format_error,
                    "ne[0] = " + std::to_string(ne[0]) + " is not a multiple of the " +
                        std::string(info.name) + " block size " + std::to_string(info.block_elems),
                    ne_at, "gguf.block_multiple", kCorruptHint, t.name);
      }
      const auto nbytes = dtype_bytes(*dtype, elements);
      std::uint64_t padded = 0;
      if (!nbytes || !detail::gguf_pad(*nbytes, file.alignment, padded)) {
        return fail(Errc::format_error, "the tensor's byte size overflows 64 bits", ne_at,
                    "gguf.size_overflow", kCorruptHint, t.name);
      }

      const std::uint64_t offset_at = pos_;
      std::uint64_t offset = 0;
      DMEM_TRY(u64(offset, "a tensor offset"));
      if (offset % file.alignment != 0) {
        return fail(Errc::format_error,
                    "the tensor has offset " + std::to_string(offset) +
                        ", not a multiple of the alignment " + std::to_string(file.alignment),
                    offset_at, "gguf.offset", kCorruptHint, t.name);
      }
      // As ggml: tensors lie back to back in info order, each padded to the alignment.
      if (offset != running) {
        return fail(Errc::format_error,
                    "the tensor has offset " + std::to_string(offset) + ", expected " +
                        std::to_string(running) + " (tensors must follow each other in info order)",
                    offset_at, "gguf.offset", kCorruptHint, t.name);
      }
      if (padded > UINT64_MAX - running) {
        return fail(Errc::format_error, "the data section size overflows 64 bits at this tensor",
                    ne_at, "gguf.size_overflow", kCorruptHint, t.name);
      }
      running += padded;

      t.dtype = *dtype;
      t.nbytes = *nbytes;
      t.offset = offset;  // relative until the data section start is known
      t.shape.resize(n_dims);
      for (std::uint32_t j = 0; j < n_dims; ++j) t.shape[n_dims - 1 - j] = ne[j];
    }
    return Status::ok();
  }

  Status data_section(GgufFile& file) {
    std::uint64_t start = 0;
    if (!detail::gguf_pad(pos_, file.alignment, start)) start = UINT64_MAX;
    file.data_start = start;
    const std::uint64_t size = bytes_.size();
    for (TensorInfo& t : file.tensors) {
      // The last tensor's trailing padding may be missing (llama.cpp's mmap loader accepts that).
      const bool fits =
          start <= size && t.offset <= size - start && t.nbytes <= size - start - t.offset;
      if (!fits) {
        const std::uint64_t at = start <= UINT64_MAX - t.offset ? start + t.offset : UINT64_MAX;
        return fail(Errc::format_error,
                    "the tensor's data (" + std::to_string(t.nbytes) + " bytes at byte " +
                        std::to_string(at) + ") ends past the end of the " + std::to_string(size) +
                        "-byte file",
                    at, "gguf.truncated", "the file is truncated: re-download it", t.name);
      }
      t.offset += start;
    }
    return Status::ok();
  }
};

}  // namespace

const GgufValue* GgufFile::find(std::string_view key) const noexcept {
  for (const GgufKv& kv : metadata)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

Result<GgufFile> read_gguf(std::string_view path) noexcept {
  auto file = detail::ReadFile::open(path);
  if (!file) return file.status();
  GgufBytes bytes = GgufBytes::file(*file);
  return Parser(bytes, path).run();
}

Result<GgufFile> parse_gguf(const void* bytes, std::size_t size, std::string_view label) noexcept {
  GgufBytes source = GgufBytes::memory(bytes, size);
  return Parser(source, label).run();
}

}  // namespace v1
}  // namespace dmem
