// safetensors reader: golden files from the reference writer, one crafted bad file per rule,
// and the allocation bound.
#include <catch2/catch.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "dmem/checkpoint.hpp"
#include "dmem/tensor_source.hpp"
#include "support/test_support.hpp"

using namespace dmem;
using dmem::test::TempDir;

namespace {

std::string le64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>(v >> (8 * i));
  return s;
}

// A file image: length prefix, `header` as given, then `data_bytes` bytes of data.
std::string image(const std::string& header, std::size_t data_bytes) {
  return le64(header.size()) + header + std::string(data_bytes, '\x5A');
}

std::string golden(const char* name) {
  return std::string(DMEM_GOLDEN_DIR) + "/safetensors/" + name;
}

struct BadCase {
  const char* what;
  std::string bytes;
  const char* rule;
  const char* tensor;  // "" when the error names no tensor
  Errc code = Errc::format_error;
};

std::vector<BadCase> bad_cases() {
  const std::string t4 = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  return {
      {"shorter than 8 bytes", std::string("\x02\x00\x00\x00\x00", 5), "safetensors.file.too_small",
       ""},
      {"empty file", std::string(), "safetensors.file.too_small", ""},
      {"header above 100 MB", le64(100'000'001) + "{}", "safetensors.header.too_large", "",
       Errc::limit_exceeded},
      {"header length near 2^64", le64(~0ull) + "{}", "safetensors.header.too_large", "",
       Errc::limit_exceeded},
      {"header past end of file", le64(1000) + "{}", "safetensors.header.past_eof", ""},
      {"overlong UTF-8", image("{\"\xC0\xAF\":1}", 0), "safetensors.header.utf8", ""},
      {"UTF-16 surrogate in UTF-8", image("{\"\xED\xA0\x80\":1}", 0), "safetensors.header.utf8",
       ""},
      {"truncated UTF-8 sequence", image("{\"\xE2\x82\"}", 0), "safetensors.header.utf8", ""},
      {"stray continuation byte", image("{\"\x80\":1}", 0), "safetensors.header.utf8", ""},
      {"code point above U+10FFFF", image("{\"\xF4\x90\x80\x80\":1}", 0), "safetensors.header.utf8",
       ""},
      {"byte F5", image("{\"\xF5\x80\x80\x80\":1}", 0), "safetensors.header.utf8", ""},
      {"unterminated JSON", image("{\"a\":", 0), "safetensors.header.json", ""},
      {"JSON followed by garbage", image("{} x", 0), "safetensors.header.json", ""},
      {"empty header", image("", 0), "safetensors.header.json", ""},
      {"byte order mark", image("\xEF\xBB\xBF{}", 0), "safetensors.header.json", ""},
      {"comment", image("{/*x*/}", 0), "safetensors.header.json", ""},
      {"top level array", image("[]", 0), "safetensors.header.schema", ""},
      {"tensor is a number", image(R"({"a":1})", 0), "safetensors.header.schema", "a"},
      {"dtype not a string", image(R"({"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}})", 4),
       "safetensors.header.schema", "a"},
      {"shape not an array", image(R"({"a":{"dtype":"F32","shape":1,"data_offsets":[0,4]}})", 4),
       "safetensors.header.schema", "a"},
      {"negative dim", image(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4),
       "safetensors.header.schema", "a"},
      {"fractional dim", image(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", 4),
       "safetensors.header.schema", "a"},
      {"dim above 2^64",
       image(R"({"a":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]}})", 4),
       "safetensors.header.schema", "a"},
      {"negative offset", image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[-0,4]}})", 4),
       "safetensors.header.schema", "a"},
      {"three offsets", image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", 4),
       "safetensors.header.schema", "a"},
      {"one offset", image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4),
       "safetensors.header.schema", "a"},
      {"missing data_offsets", image(R"({"a":{"dtype":"F32","shape":[1]}})", 4),
       "safetensors.header.schema", "a"},
      {"missing dtype", image(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4),
       "safetensors.header.schema", "a"},
      {"metadata value not a string", image(R"({"__metadata__":{"k":1}})", 0),
       "safetensors.header.schema", ""},
      {"metadata not an object", image(R"({"__metadata__":["k"]})", 0), "safetensors.header.schema",
       ""},
      {"metadata twice", image(R"({"__metadata__":{},"__metadata__":{}})", 0),
       "safetensors.header.duplicate_key", ""},
      {"metadata key twice", image(R"({"__metadata__":{"k":"1","k":"2"}})", 0),
       "safetensors.header.duplicate_key", ""},
      {"field twice",
       image(R"({"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}})", 4),
       "safetensors.header.duplicate_key", "a"},
      {"unknown dtype", image(R"({"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}})", 16),
       "safetensors.dtype.unknown", "a"},
      {"lower-case dtype", image(R"({"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}})", 4),
       "safetensors.dtype.unknown", "a"},
      {"duplicate tensor name",
       image(
           R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
           8),
       "safetensors.tensor.duplicate", "a"},
      {"gap before a tensor",
       image(
           R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
           12),
       "safetensors.offsets.contiguous", "b"},
      {"first tensor not at 0",
       image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
       "safetensors.offsets.contiguous", "a"},
      {"overlapping tensors (json attack)",
       image(
           R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
           16),
       "safetensors.offsets.contiguous", "b"},
      {"end before begin",
       image(
           R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[0],"data_offsets":[4,2]}})",
           4),
       "safetensors.offsets.reversed", "b"},
      {"shape overflow",
       image(R"({"a":{"dtype":"F32","shape":[2,18446744073709551614],"data_offsets":[0,4]}})", 4),
       "safetensors.shape.overflow", "a"},
      {"bits overflow",
       image(R"({"a":{"dtype":"U64","shape":[4611686018427387904],"data_offsets":[0,4]}})", 4),
       "safetensors.shape.overflow", "a"},
      {"F4 odd element count",
       image(R"({"a":{"dtype":"F4","shape":[1,3],"data_offsets":[0,2]}})", 2),
       "safetensors.shape.misaligned", "a"},
      {"F6 element count not a multiple of 4",
       image(R"({"a":{"dtype":"F6_E2M3","shape":[2],"data_offsets":[0,2]}})", 2),
       "safetensors.shape.misaligned", "a"},
      {"offsets disagree with shape",
       image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4),
       "safetensors.tensor.size", "a"},
      {"truncated data", image(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 5),
       "safetensors.file.truncated", ""},
      {"trailing bytes", image(t4, 7), "safetensors.file.trailing", ""},
      {"data but no tensors", image("{}", 1), "safetensors.file.trailing", ""},
  };
}

}  // namespace

TEST_CASE("safetensors: reads the reference writer's mixed-dtype file", "[safetensors]") {
  const std::string path = golden("mixed.safetensors");
  auto r = read_safetensors(path);
  REQUIRE(r.has_value());
  const SafetensorsFile& f = *r;
  CHECK(f.path == path);
  CHECK(f.file_size == 573);
  CHECK(f.header_size == 504);
  CHECK(f.data_start == 512);
  REQUIRE(f.metadata.size() == 1);
  CHECK(f.metadata[0] == std::pair<std::string, std::string>{"format", "pt"});

  struct Want {
    const char* name;
    DType dtype;
    std::vector<std::uint64_t> shape;
    std::uint64_t begin, nbytes;
  };
  // In offset order; the zero-size tensor shares its offset with the scalar that follows.
  const std::vector<Want> want{
      {"position_ids", DType::i64, {1, 4}, 0, 32},
      {"empty.bias", DType::f32, {0, 4}, 32, 0},
      {"scale", DType::f32, {}, 32, 4},
      {"model.embed.weight", DType::bf16, {2, 3}, 36, 12},
      {"model.norm.weight", DType::f16, {3}, 48, 6},
      {"model.fp8.weight", DType::f8_e4m3, {4}, 54, 4},
      {"mask", DType::boolean, {3}, 58, 3},
  };
  REQUIRE(f.tensors.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    INFO(want[i].name);
    CHECK(f.tensors[i].name == want[i].name);
    CHECK(f.tensors[i].dtype == want[i].dtype);
    CHECK(f.tensors[i].shape == want[i].shape);
    CHECK(f.tensors[i].nbytes == want[i].nbytes);
    CHECK(f.tensors[i].file == 0);
    CHECK(f.tensors[i].offset == 512 + want[i].begin);
  }

  // The values the script wrote come back through TensorSource.
  auto src = TensorSource::open(std::vector<std::string>{path});
  REQUIRE(src.has_value());
  std::uint16_t bf[6];
  REQUIRE(src->read(f.tensors[3], bf).is_ok());
  const float bf_want[6] = {1.0f, -2.0f, 0.5f, 3.25f, -0.125f, 100.0f};
  for (int i = 0; i < 6; ++i) CHECK(bf16_to_f32(bf[i]) == bf_want[i]);
  std::uint8_t f8[4];
  REQUIRE(src->read(f.tensors[5], f8).is_ok());
  const float f8_want[4] = {0.5f, -1.0f, 448.0f, 0.015625f};
  for (int i = 0; i < 4; ++i) CHECK(f8_e4m3_to_f32(f8[i]) == f8_want[i]);
  std::int64_t ids[4];
  REQUIRE(src->read(f.tensors[0], ids).is_ok());
  for (int i = 0; i < 4; ++i) CHECK(ids[i] == i);
  std::uint16_t h[3];
  REQUIRE(src->read(f.tensors[4], h).is_ok());
  CHECK(f16_to_f32(h[2]) == -65504.0f);
}

TEST_CASE("safetensors: reads every dtype of the reference writer", "[safetensors]") {
  auto r = read_safetensors(golden("all_dtypes.safetensors"));
  REQUIRE(r.has_value());
  const std::vector<std::pair<const char*, DType>> want{
      {"g.u64", DType::u64},
      {"h.i64", DType::i64},
      {"i.f64", DType::f64},
      {"j.c64", DType::c64},
      {"b.f32", DType::f32},
      {"k.f32", DType::f32},
      {"l.u32", DType::u32},
      {"m.i32", DType::i32},
      {"n.bf16", DType::bf16},
      {"o.f16", DType::f16},
      {"p.u16", DType::u16},
      {"q.i16", DType::i16},
      {"r.f8_e5m2fnuz", DType::f8_e5m2fnuz},
      {"s.f8_e4m3fnuz", DType::f8_e4m3fnuz},
      {"t.f8_e8m0", DType::f8_e8m0},
      {"u.f8_e4m3", DType::f8_e4m3},
      {"v.f8_e5m2", DType::f8_e5m2},
      {"w.i8", DType::i8},
      {"x.u8", DType::u8},
      {"y.f4", DType::f4},
      {"z.bool", DType::boolean},
  };
  REQUIRE(r->tensors.size() == want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    CHECK(r->tensors[i].name == want[i].first);
    CHECK(r->tensors[i].dtype == want[i].second);
  }
  // F4: the header shape is the logical element count (2 x 2 values in 2 bytes).
  CHECK(r->tensors[19].shape == std::vector<std::uint64_t>{2, 2});
  CHECK(r->tensors[19].nbytes == 2);
  CHECK(r->tensors.back().offset + r->tensors.back().nbytes == r->file_size);
}

TEST_CASE("safetensors: header whitespace before and after the object is accepted",
          "[safetensors]") {
  // The reference's test_whitespace_leading_padded_header.
  const std::string bytes = le64(6) + "\x09\x0A{}\x0D\x20";
  auto r = parse_safetensors(bytes.data(), bytes.size(), bytes.size(), "ws");
  REQUIRE(r.has_value());
  CHECK(r->tensors.empty());
  CHECK(r->data_start == 14);
}

TEST_CASE("safetensors: unknown tensor fields are ignored and null metadata is no metadata",
          "[safetensors]") {
  const std::string bytes = image(
      R"({"__metadata__":null,"a":{"x":{"deep":[1,{"y":null}]},"dtype":"U8","shape":[2],"data_offsets":[0,2],"z":true}})",
      2);
  auto r = parse_safetensors(bytes.data(), bytes.size(), bytes.size(), "extra");
  REQUIRE(r.has_value());
  REQUIRE(r->tensors.size() == 1);
  CHECK(r->tensors[0].name == "a");
  CHECK(r->metadata.empty());
}

TEST_CASE("safetensors: every dtype string of the format is known", "[safetensors]") {
  for (const char* name :
       {"BOOL",    "U8",          "I8",          "I16", "U16",     "I32",    "U32",     "I64",
        "U64",     "F16",         "BF16",        "F32", "F64",     "C64",    "F8_E4M3", "F8_E5M2",
        "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "F4",  "F6_E2M3", "F6_E3M2"}) {
    INFO(name);
    const std::string header =
        std::string(R"({"t":{"dtype":")") + name + R"(","shape":[8],"data_offsets":[0,0]}})";
    // Size the tensor from the dtype: 8 elements of bits(dtype).
    auto type = dtype_from_safetensors(name);
    REQUIRE(type.has_value());
    const std::uint64_t nbytes = *dtype_bytes(*type, 8);
    std::string h = header;
    h.replace(h.find("[0,0]"), 5, "[0," + std::to_string(nbytes) + "]");
    const std::string bytes = image(h, nbytes);
    auto r = parse_safetensors(bytes.data(), bytes.size(), bytes.size(), "dtypes");
    REQUIRE(r.has_value());
    CHECK(r->tensors[0].dtype == *type);
    CHECK(r->tensors[0].nbytes == nbytes);
  }
}

TEST_CASE("safetensors: each broken rule is reported with its rule id, file and tensor",
          "[safetensors]") {
  TempDir dir;
  int n = 0;
  for (const BadCase& c : bad_cases()) {
    INFO(c.what);
    const std::string path = dir.file("bad" + std::to_string(n++) + ".safetensors");
    dmem::test::write_file(path, c.bytes);

    auto r = read_safetensors(path);
    REQUIRE_FALSE(r.has_value());
    const Status& st = r.status();
    INFO(st.to_string());
    CHECK(st.rule() == c.rule);
    CHECK(st.code() == c.code);
    CHECK(st.file() == path);
    CHECK(st.tensor() == c.tensor);
    CHECK_FALSE(st.message().empty());
    CHECK_FALSE(st.hint().empty());
    CHECK(st.to_string().find(path) != std::string::npos);

    // The in-memory parser applies the same rules.
    auto m = parse_safetensors(c.bytes.empty() ? "" : c.bytes.data(), c.bytes.size(),
                               c.bytes.size(), "mem");
    REQUIRE_FALSE(m.has_value());
    CHECK(m.status().rule() == c.rule);
    CHECK(m.status().file() == "mem");
  }
}

TEST_CASE("safetensors: UTF-8 and JSON errors give the file offset", "[safetensors]") {
  const std::string bytes = image("{\"ab\xC0\xAF\":1}", 0);
  auto r = parse_safetensors(bytes.data(), bytes.size(), bytes.size(), "x");
  REQUIRE_FALSE(r.has_value());
  REQUIRE(r.status().has_offset());
  CHECK(r.status().offset() == 8 + 4);  // the C0 byte

  const std::string json = image("{\"a\" 1}", 0);
  auto j = parse_safetensors(json.data(), json.size(), json.size(), "x");
  REQUIRE_FALSE(j.has_value());
  CHECK(j.status().rule() == "safetensors.header.json");
  REQUIRE(j.status().has_offset());
  CHECK(j.status().offset() == 8 + 5);  // the '1' where ':' was expected
}

TEST_CASE("safetensors: the in-memory parser needs the whole header in the buffer",
          "[safetensors]") {
  const std::string bytes = image(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}})", 4);
  // The buffer holds only the prefix and half the header, the file is complete.
  auto r = parse_safetensors(bytes.data(), 20, bytes.size(), "partial");
  REQUIRE_FALSE(r.has_value());
  CHECK(r.status().code() == Errc::invalid_argument);
  CHECK(r.status().rule() == "safetensors.buffer");
  // Prefix and header are enough: tensor data is never looked at.
  const std::size_t header_end = bytes.size() - 4;
  auto ok = parse_safetensors(bytes.data(), header_end, bytes.size(), "headers-only");
  REQUIRE(ok.has_value());
  CHECK(ok->tensors[0].offset == header_end);
}

TEST_CASE("safetensors: a file claiming a 90 MB header but 100 bytes long fails without allocating",
          "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("liar.safetensors");
  std::string bytes = le64(90'000'000) + "{" + std::string(91, ' ');
  REQUIRE(bytes.size() == 100);
  dmem::test::write_file(path, bytes);

  auto r = read_safetensors(path);
  REQUIRE_FALSE(r.has_value());
  CHECK(r.status().rule() == "safetensors.header.past_eof");

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // Sanitizers reserve terabytes of address space: an address-space limit cannot be used.
  SUCCEED("allocation bound not measured under a sanitizer");
#else
  // In a child with 48 MiB of address space to spare, a 90 MB allocation is impossible: if the
  // reader allocated before checking the bound it would die instead of returning the error.
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::ifstream status("/proc/self/status");
    std::string line;
    unsigned long long vm_kib = 0;
    while (std::getline(status, line))
      if (line.rfind("VmSize:", 0) == 0) vm_kib = std::stoull(line.substr(7));
    const rlim_t limit = static_cast<rlim_t>(vm_kib * 1024 + (48ull << 20));
    rlimit rl{limit, limit};
    if (vm_kib == 0 || ::setrlimit(RLIMIT_AS, &rl) != 0) ::_exit(3);
    // Control: the limit really forbids a 90 MB block.
    // Stored through a volatile pointer: otherwise clang may elide the unused allocation.
    static char* volatile probe = nullptr;
    probe = new (std::nothrow) char[90'000'000];
    if (probe != nullptr) ::_exit(2);
    auto child = read_safetensors(path);
    ::_exit(!child.has_value() && child.status().rule() == "safetensors.header.past_eof" ? 0 : 1);
  }
  int wstatus = 0;
  REQUIRE(::waitpid(pid, &wstatus, 0) == pid);
  REQUIRE(WIFEXITED(wstatus));
  CHECK(WEXITSTATUS(wstatus) == 0);
#endif
}

TEST_CASE("safetensors: reading a missing file or a folder names it", "[safetensors]") {
  TempDir dir;
  auto missing = read_safetensors(dir.file("nope.safetensors"));
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.status().code() == Errc::not_found);
  CHECK(missing.status().file() == dir.file("nope.safetensors"));

  auto folder = read_safetensors(dir.path().string());
  REQUIRE_FALSE(folder.has_value());
  CHECK(folder.status().code() == Errc::io_error);
  CHECK(folder.status().file() == dir.path().string());
}

TEST_CASE("safetensors: fuzz seeds are accepted or rejected as their names say", "[safetensors]") {
  const std::filesystem::path dir =
      std::filesystem::path(DMEM_SOURCE_DIR) / "tests/fuzz/corpus/safetensors";
  int seen = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    INFO(name);
    const auto bytes = dmem::test::read_file(entry.path().string());
    auto r = parse_safetensors(bytes.data(), bytes.size(), bytes.size(), name);
    CHECK(r.has_value() == (name.rfind("valid_", 0) == 0));
    ++seen;
  }
  CHECK(seen >= 6);
}
