// Crafted bad GGUF files: one per validation rule, including the published exploit shapes of
// FORMATS.md §2.7. Each is checked through parse_gguf (memory) and read_gguf (a file on disk):
// the rule id, the byte offset of the bad field and the file name must be right.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "dmem/checkpoint.hpp"
#include "support/test_support.hpp"

using namespace dmem;

namespace {

class Craft {
 public:
  std::vector<std::uint8_t> b;

  std::uint64_t pos() const { return b.size(); }
  Craft& le(std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    return *this;
  }
  Craft& u32(std::uint64_t v) { return le(v, 4); }
  Craft& u64(std::uint64_t v) { return le(v, 8); }
  Craft& str(const std::string& s) {
    u64(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Craft& header(std::uint64_t n_tensors, std::uint64_t n_kv, std::uint32_t version = 3) {
    b.insert(b.end(), {'G', 'G', 'U', 'F'});
    u32(version);
    u64(n_tensors);
    return u64(n_kv);
  }
  Craft& kv_u32(const std::string& key, std::uint32_t v) { return str(key).u32(4).u32(v); }
  // One tensor info; `ne` in GGUF order.
  Craft& info(const std::string& name, const std::vector<std::uint64_t>& ne, std::uint32_t type,
              std::uint64_t offset) {
    str(name).u32(ne.size());
    for (const std::uint64_t d : ne) u64(d);
    return u32(type).u64(offset);
  }
  Craft& pad(std::size_t align = 32) {
    while (b.size() % align != 0) b.push_back(0);
    return *this;
  }
  Craft& zeros(std::size_t n) {
    b.insert(b.end(), n, 0);
    return *this;
  }
};

// What a failed parse said, for further checks (not nodiscard, unlike Status).
struct Got {
  std::string text, tensor_name;
  const std::string& message() const { return text; }
  const std::string& tensor() const { return tensor_name; }
};

// Parses from memory and from a file; both must fail the same way.
Got expect_error(const std::vector<std::uint8_t>& bytes, const std::string& rule,
                 std::uint64_t offset, Errc code = Errc::format_error) {
  const std::string label = "crafted.gguf";
  auto mem = parse_gguf(bytes.data(), bytes.size(), label);
  REQUIRE_FALSE(mem.is_ok());
  const Status& s = mem.status();
  INFO(s.to_string());
  CHECK(s.rule() == rule);
  CHECK(s.code() == code);
  CHECK(s.has_offset());
  CHECK(s.offset() == offset);
  CHECK(s.file() == label);
  CHECK(s.to_string().find(label) != std::string::npos);
  CHECK_FALSE(s.message().empty());
  CHECK_FALSE(s.hint().empty());

  test::TempDir dir;
  const std::string path = dir.file("crafted.gguf");
  test::write_file(path, bytes.data(), bytes.size());
  auto disk = read_gguf(path);
  REQUIRE_FALSE(disk.is_ok());
  CHECK(disk.status().rule() == rule);
  CHECK(disk.status().code() == code);
  CHECK(disk.status().offset() == offset);
  CHECK(disk.status().file() == path);
  CHECK(disk.status().to_string().find(path) != std::string::npos);
  return {s.message(), s.tensor()};
}

void expect_ok(const std::vector<std::uint8_t>& bytes) {
  auto f = parse_gguf(bytes.data(), bytes.size(), "crafted.gguf");
  INFO((f.is_ok() ? std::string() : f.status().to_string()));
  CHECK(f.is_ok());
}

std::vector<std::uint8_t> golden_bytes(const std::string& name) {
  return test::read_file(std::string(DMEM_GOLDEN_DIR) + "/gguf/" + name);
}

}  // namespace

TEST_CASE("gguf: the crafting helper makes a valid file", "[gguf]") {
  // Guards the tests below: each breaks exactly one field of a file like this one.
  Craft c;
  c.header(2, 2).str("general.architecture").u32(8).str("x").kv_u32("general.alignment", 64);
  c.info("a", {32, 2}, 0, 0).info("b", {32}, 8, 256).pad(64).zeros(256 + 34);
  auto f = parse_gguf(c.b.data(), c.b.size(), "ok.gguf");
  REQUIRE(f.is_ok());
  CHECK(f->alignment == 64);
  CHECK(f->tensors[1].dtype == DType::q8_0);
  CHECK(f->tensors[1].offset == f->data_start + 256);
}

TEST_CASE("gguf: magic and version", "[gguf]") {
  expect_error({}, "gguf.magic", 0);
  expect_error({'G', 'G'}, "gguf.magic", 0);
  Craft ggml;
  ggml.b = {'G', 'G', 'M', 'L'};
  ggml.u32(3).u64(0).u64(0);
  const Got s = expect_error(ggml.b, "gguf.magic", 0);
  CHECK(s.message().find("47 47 4d 4c") != std::string::npos);

  for (const std::uint32_t v : {0u, 1u, 4u, 0x03000000u, 0x00030000u}) {
    INFO("version " << v);
    Craft c;
    c.header(0, 0, v);
    const Got e = expect_error(c.b, "gguf.version", 4);
    if (v == 1) CHECK(e.message().find("no longer supported") != std::string::npos);
    if (v == 0x03000000u) CHECK(e.message().find("byte-swapped") != std::string::npos);
  }
  Craft v2;
  v2.header(0, 0, 2);
  expect_ok(v2.b);
  // The header itself cut short.
  Craft cut;
  cut.header(0, 0);
  cut.b.resize(20);
  expect_error(cut.b, "gguf.truncated", 16);
}

TEST_CASE("gguf: counts are bounded by the file size before any allocation", "[gguf]") {
  // CVE-2024-21836: n_tensors = 0x1D1D1D1D1D1D1D1D.
  Craft talos;
  talos.header(0x1D1D1D1D1D1D1D1Dull, 0).zeros(64);
  expect_error(talos.b, "gguf.counts", 8);
  // Negative as int64.
  Craft negative;
  negative.header(~0ull, 0).zeros(64);
  expect_error(negative.b, "gguf.counts", 8);
  // CVE-2024-23605: huge n_kv.
  Craft kv;
  kv.header(0, 1ull << 62).zeros(64);
  expect_error(kv.b, "gguf.counts", 16);
  Craft kv_neg;
  kv_neg.header(0, 0x8000000000000000ull).zeros(64);
  expect_error(kv_neg.b, "gguf.counts", 16);
  // Each count alone fits 100 bytes (≤ 4 tensors, ≤ 7 kvs) but not both together.
  Craft both;
  both.header(3, 3).zeros(100);
  expect_error(both.b, "gguf.counts", 16);
  // A count that fits the bound but whose records are not there is a truncation.
  Craft short_kv;
  short_kv.header(0, 2).kv_u32("k", 1).str("kk").zeros(1);
  expect_error(short_kv.b, "gguf.truncated", 51);
}

TEST_CASE("gguf: string lengths", "[gguf]") {
  // CVE-2024-23496: a key of length 2^63.
  Craft huge;
  huge.header(0, 1).u64(1ull << 63).zeros(16);
  expect_error(huge.b, "gguf.string_length", 24, Errc::limit_exceeded);
  // Under the 1 GiB cap but longer than the file.
  Craft longer;
  longer.header(0, 1).u64(1000).zeros(16);
  expect_error(longer.b, "gguf.string_length", 24);
  // A string value.
  Craft value;
  value.header(0, 1).str("k").u32(8).u64(1ull << 40).zeros(8);
  expect_error(value.b, "gguf.string_length", 37, Errc::limit_exceeded);
  // A string inside a string array.
  Craft in_array;
  in_array.header(0, 1).str("k").u32(9).u32(8).u64(2).str("ok").u64(99).zeros(8);
  expect_error(in_array.b, "gguf.string_length", 59);
}

TEST_CASE("gguf: array lengths", "[gguf]") {
  // gguf-py PR #27188: array length 2^63 in a tiny file.
  Craft tiny;
  tiny.header(0, 1).str("a").u32(9).u32(4).u64(1ull << 63);
  REQUIRE(tiny.b.size() < 64);
  expect_error(tiny.b, "gguf.array_length", 41, Errc::limit_exceeded);
  // Under the 2^30 cap but more u32s than the bytes left.
  Craft more;
  more.header(0, 1).str("a").u32(9).u32(4).u64(100).zeros(399);
  expect_error(more.b, "gguf.array_length", 41);
  // Strings need at least 8 bytes each.
  Craft strings;
  strings.header(0, 1).str("a").u32(9).u32(8).u64(10).zeros(79);
  expect_error(strings.b, "gguf.array_length", 41);
  // u64s: count * 8 > bytes left.
  Craft wide;
  wide.header(0, 1).str("a").u32(9).u32(10).u64(3).zeros(23);
  expect_error(wide.b, "gguf.array_length", 41);
}

TEST_CASE("gguf: value types", "[gguf]") {
  Craft unknown;
  unknown.header(0, 1).str("k").u32(13).zeros(8);
  expect_error(unknown.b, "gguf.value_type", 33);
  Craft nested;
  nested.header(0, 1).str("k").u32(9).u32(9).u64(1).u32(4).u64(1).u32(0);
  const Got s = expect_error(nested.b, "gguf.value_type", 37);
  CHECK(s.message().find("nested") != std::string::npos);
  CHECK(s.message().find("'k'") != std::string::npos);
  Craft unknown_elem;
  unknown_elem.header(0, 1).str("k").u32(9).u32(0xFFFFFFFF).u64(1).zeros(8);
  expect_error(unknown_elem.b, "gguf.value_type", 37);
}

TEST_CASE("gguf: keys", "[gguf]") {
  Craft dup;
  dup.header(0, 2).kv_u32("a.b", 1);
  const std::uint64_t second = dup.pos();
  dup.kv_u32("a.b", 2);
  const Got s = expect_error(dup.b, "gguf.duplicate_key", second);
  CHECK(s.message().find("'a.b'") != std::string::npos);
  Craft empty;
  empty.header(0, 1).str("").u32(0).zeros(8);
  expect_error(empty.b, "gguf.key", 24);
}

TEST_CASE("gguf: general.alignment", "[gguf]") {
  // Wrong type (UINT64): reported at the type field.
  Craft u64;
  u64.header(0, 1).str("general.alignment").u32(10).u64(32);
  expect_error(u64.b, "gguf.alignment", 24 + 8 + 17);
  Craft i32;
  i32.header(0, 1).str("general.alignment").u32(5).u32(32);
  expect_error(i32.b, "gguf.alignment", 49);
  // Bad values: reported at the value.
  for (const std::uint32_t a : {0u, 48u, 3u, 1u << 21, 0x80000000u}) {
    INFO("alignment " << a);
    Craft c;
    c.header(0, 1).kv_u32("general.alignment", a);
    expect_error(c.b, "gguf.alignment", 53);
  }
  for (const std::uint32_t a : {1u, 8u, 1u << 20}) {
    INFO("alignment " << a);
    Craft c;
    c.header(1, 1).kv_u32("general.alignment", a).info("t", {2}, 0, 0).pad(a).zeros(8);
    auto f = parse_gguf(c.b.data(), c.b.size(), "a.gguf");
    REQUIRE(f.is_ok());
    CHECK(f->alignment == a);
    CHECK(f->tensors[0].offset == f->data_start);
  }
}

TEST_CASE("gguf: tensor names", "[gguf]") {
  Craft long_name;
  long_name.header(1, 0).info(std::string(64, 'n'), {2}, 0, 0).pad().zeros(32);
  expect_error(long_name.b, "gguf.tensor_name", 24);
  Craft max_name;
  max_name.header(1, 0).info(std::string(63, 'n'), {2}, 0, 0).pad().zeros(32);
  expect_ok(max_name.b);
  Craft empty;
  empty.header(1, 0).info("", {2}, 0, 0).pad().zeros(32);
  expect_error(empty.b, "gguf.tensor_name", 24);
  Craft dup;
  dup.header(2, 0).info("w", {8}, 0, 0);
  const std::uint64_t second = dup.pos();
  dup.info("w", {8}, 0, 32).pad().zeros(64);
  const Got s = expect_error(dup.b, "gguf.duplicate_tensor", second);
  CHECK(s.tensor() == "w");
}

TEST_CASE("gguf: dimensions and element counts", "[gguf]") {
  Craft five;
  five.header(1, 0).info("t", {1, 1, 1, 1, 2}, 0, 0).pad().zeros(32);
  expect_error(five.b, "gguf.dims", 24 + 9);
  Craft negative;
  negative.header(1, 0).info("t", {2, ~0ull}, 0, 0).pad().zeros(32);
  const Got s = expect_error(negative.b, "gguf.dims", 24 + 9 + 4 + 8);
  CHECK(s.tensor() == "t");
  // CVE-2024-21802: dimensions whose product overflows int64.
  Craft product;
  product.header(1, 0).info("t", {1ull << 32, 1ull << 31}, 0, 0).pad().zeros(32);
  expect_error(product.b, "gguf.size_overflow", 24 + 9 + 4);
  // Element count fits but the byte size does not (2^62 f64 values).
  Craft bytes;
  bytes.header(1, 0).info("t", {1ull << 62}, 28, 0).pad().zeros(32);
  expect_error(bytes.b, "gguf.size_overflow", 24 + 9 + 4);
  // A zero dimension makes an empty tensor, whatever the others say.
  Craft empty;
  empty.header(1, 0).info("t", {1ull << 40, 0}, 0, 0).pad();
  expect_ok(empty.b);
  // Scalars (no dims) are fine.
  Craft scalar;
  scalar.header(1, 0).info("t", {}, 0, 0).pad().zeros(4);
  expect_ok(scalar.b);
}

TEST_CASE("gguf: llama.cpp PR #18674 dim[1] = 2^42+1 is caught by the offset rules", "[gguf]") {
  // The first tensor is enormous: the second tensor's offset no longer matches the running size.
  Craft two;
  two.header(2, 0).info("big", {4096, (1ull << 42) + 1}, 0, 0);
  const std::uint64_t second_offset = two.pos() + 8 + 4 + 4 + 8 + 4;
  two.info("next", {8}, 0, 32).pad().zeros(128);
  const Got s = expect_error(two.b, "gguf.offset", second_offset);
  CHECK(s.tensor() == "next");
  // Alone, it runs past the end of the file.
  Craft one;
  one.header(1, 0).info("big", {4096, (1ull << 42) + 1}, 0, 0).pad();
  const std::uint64_t data_start = one.pos();
  one.zeros(128);
  const Got t = expect_error(one.b, "gguf.truncated", data_start);
  CHECK(t.tensor() == "big");
}

TEST_CASE("gguf: padded-size accumulation overflow (CVE-2025-53630)", "[gguf]") {
  // Two tensors of 2^63 bytes each: the second offset is right, the sum wraps 64 bits.
  Craft c;
  c.header(2, 0).info("a", {1ull << 61}, 0, 0);
  const std::uint64_t second_ne = c.pos() + 8 + 1 + 4;
  c.info("b", {1ull << 61}, 0, 1ull << 63).pad().zeros(64);
  const Got s = expect_error(c.b, "gguf.size_overflow", second_ne);
  CHECK(s.tensor() == "b");
}

TEST_CASE("gguf: tensor types", "[gguf]") {
  const std::uint64_t type_at = 24 + 9 + 4 + 8;
  for (const std::uint32_t id : {0xFFFFFFFFu, 0x80000000u, 99u, 43u}) {
    INFO("type " << id);
    Craft c;
    c.header(1, 0).info("t", {32}, id, 0).pad().zeros(128);
    expect_error(c.b, "gguf.tensor_type", type_at);
  }
  for (const std::uint32_t id : {4u, 5u, 31u, 32u, 33u, 36u, 37u, 38u}) {
    INFO("type " << id);
    Craft c;
    c.header(1, 0).info("t", {32}, id, 0).pad().zeros(128);
    const Got s = expect_error(c.b, "gguf.tensor_type", type_at);
    CHECK(s.message().find("removed") != std::string::npos);
    CHECK(s.tensor() == "t");
  }
  Craft block;
  block.header(1, 0).info("t", {33, 2}, 8, 0).pad().zeros(128);
  expect_error(block.b, "gguf.block_multiple", 24 + 9 + 4);
  Craft scalar_block;
  scalar_block.header(1, 0).info("t", {}, 12, 0).pad().zeros(256);
  expect_error(scalar_block.b, "gguf.block_multiple", 24 + 9 + 4);
}

TEST_CASE("gguf: tensor offsets", "[gguf]") {
  const std::uint64_t offset_at = 24 + 9 + 4 + 8 + 4;
  Craft unaligned;
  unaligned.header(1, 0).info("t", {2}, 0, 8).pad().zeros(64);
  expect_error(unaligned.b, "gguf.offset", offset_at);
  Craft gap;
  gap.header(1, 0).info("t", {2}, 0, 32).pad().zeros(64);
  expect_error(gap.b, "gguf.offset", offset_at);
  // Out of order: the second tensor points back at the first one's data.
  Craft overlap;
  overlap.header(2, 0).info("a", {2}, 0, 0);
  const std::uint64_t second = overlap.pos() + 8 + 1 + 4 + 8 + 4;
  overlap.info("b", {2}, 0, 0).pad().zeros(64);
  expect_error(overlap.b, "gguf.offset", second);
}

TEST_CASE("gguf: truncated files", "[gguf]") {
  auto bytes = golden_bytes("tensors.gguf");
  auto f = parse_gguf(bytes.data(), bytes.size(), "tensors.gguf");
  REQUIRE(f.is_ok());
  const TensorInfo last = f->tensors.back();

  // The data section cut inside the last tensor.
  auto cut = bytes;
  cut.resize(static_cast<std::size_t>(last.offset + 1));
  const Got s = expect_error(cut, "gguf.truncated", last.offset);
  CHECK(s.tensor() == last.name);
  // Cut before the data section: the first tensor is reported.
  auto header_only = bytes;
  header_only.resize(static_cast<std::size_t>(f->data_start));
  const Got h = expect_error(header_only, "gguf.truncated", f->tensors.front().offset);
  CHECK(h.tensor() == f->tensors.front().name);
  // Missing trailing padding after the last tensor is accepted (as llama.cpp's mmap loader).
  auto unpadded = bytes;
  unpadded.resize(static_cast<std::size_t>(last.offset + last.nbytes));
  expect_ok(unpadded);

  // Cut anywhere inside the header: always a clean error, never a crash.
  for (std::size_t n = 0; n < f->data_start; ++n) {
    std::vector<std::uint8_t> prefix(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    auto r = parse_gguf(prefix.data(), prefix.size(), "prefix.gguf");
    INFO("prefix " << n);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().has_offset());
    CHECK(r.status().offset() <= f->data_start);
    CHECK(r.status().rule().rfind("gguf.", 0) == 0);
  }
}

TEST_CASE("gguf: flipping any header byte never crashes", "[gguf]") {
  for (const char* name : {"meta.gguf", "tensors.gguf", "align64.gguf"}) {
    const auto bytes = golden_bytes(name);
    auto f = parse_gguf(bytes.data(), bytes.size(), name);
    REQUIRE(f.is_ok());
    for (std::size_t i = 0; i < f->data_start; ++i) {
      for (const int x : {0x01, 0x80, 0xFF}) {
        auto mutated = bytes;
        mutated[i] = static_cast<std::uint8_t>(mutated[i] ^ x);
        auto r = parse_gguf(mutated.data(), mutated.size(), name);
        if (!r.is_ok()) {
          INFO(name << " byte " << i << ": " << r.status().to_string());
          CHECK(r.status().code() != Errc::internal);
          CHECK(r.status().has_offset());
        }
      }
    }
  }
}
