// safetensors writer: byte-exact against the reference (its own test vectors and golden files made
// by the Python package), round trips, input validation, nothing left behind on failure.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "dmem/checkpoint.hpp"
#include "dmem/tensor_source.hpp"
#include "dmem/writer.hpp"
#include "support/test_support.hpp"

using namespace dmem;
using dmem::test::TempDir;

namespace {

std::string golden(const std::string& name) {
  return std::string(DMEM_GOLDEN_DIR) + "/safetensors/" + name;
}

std::vector<std::uint8_t> bytes_of(const std::string& s) {
  return {s.begin(), s.end()};
}

std::vector<std::uint8_t> f32_bytes(std::initializer_list<float> values) {
  std::vector<std::uint8_t> out(values.size() * 4);
  std::size_t i = 0;
  for (float v : values) {
    std::memcpy(out.data() + i, &v, 4);
    i += 4;
  }
  return out;
}

// Every tensor of `file` with its data, as writer input (buffers owned by `store`).
std::vector<TensorData> load_all(const SafetensorsFile& file,
                                 std::vector<std::vector<std::uint8_t>>& store) {
  auto src = TensorSource::open(std::vector<std::string>{file.path});
  REQUIRE(src.has_value());
  std::vector<TensorData> out;
  store.reserve(file.tensors.size());
  for (const TensorInfo& t : file.tensors) {
    store.emplace_back(t.nbytes);
    REQUIRE(src->read(t, store.back().data()).is_ok());
    out.push_back({t.name, t.dtype, t.shape, store.back().data(), t.nbytes});
  }
  return out;
}

// Files left in a folder (a failed write must leave none, temporary or final).
std::size_t entries(const TempDir& dir) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++n;
  return n;
}

}  // namespace

TEST_CASE("safetensors writer: the reference's own byte vectors", "[safetensors]") {
  TempDir dir;
  SECTION("empty dict (test_empty)") {
    const std::string path = dir.file("empty.safetensors");
    REQUIRE(write_safetensors(path, {}).is_ok());
    const std::vector<std::uint8_t> want{8,   0,   0,   0,   0,   0,   0,   0,
                                         '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    CHECK(dmem::test::read_file(path) == want);
  }
  SECTION("empty dict with metadata (test_empty)") {
    const std::string path = dir.file("meta.safetensors");
    const std::pair<std::string, std::string> md[] = {{"framework", "pt"}};
    REQUIRE(write_safetensors(path, {}, md).is_ok());
    std::string want("\x28\0\0\0\0\0\0\0", 8);
    want += R"({"__metadata__":{"framework":"pt"}})" + std::string(5, ' ');
    CHECK(dmem::test::read_file(path) == bytes_of(want));
  }
  SECTION("one f32 tensor (test_serialization, test_serialization_forced_alignement)") {
    const auto data = f32_bytes({0, 1, 2, 3, 4, 5});
    const std::string path = dir.file("attn.safetensors");
    const TensorData t[] = {{"attn.0", DType::f32, {1, 2, 3}, data.data(), 24}};
    REQUIRE(write_safetensors(path, t).is_ok());
    std::string want("\x40\0\0\0\0\0\0\0", 8);
    want += R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
    want.append(reinterpret_cast<const char*>(data.data()), data.size());
    CHECK(dmem::test::read_file(path) == bytes_of(want));

    const std::string path2 = dir.file("attn0.safetensors");
    const TensorData t2[] = {{"attn0", DType::f32, {1, 1, 2, 3}, data.data(), 24}};
    REQUIRE(write_safetensors(path2, t2).is_ok());
    std::string want2("\x48\0\0\0\0\0\0\0", 8);
    want2 += R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})" +
             std::string(7, ' ');
    want2.append(reinterpret_cast<const char*>(data.data()), data.size());
    CHECK(dmem::test::read_file(path2) == bytes_of(want2));
  }
}

TEST_CASE("safetensors writer: byte-identical to the Python package's golden files",
          "[safetensors]") {
  TempDir dir;
  for (const char* name : {"mixed.safetensors", "all_dtypes.safetensors", "escapes.safetensors",
                           "empty.safetensors"}) {
    INFO(name);
    auto file = read_safetensors(golden(name));
    REQUIRE(file.has_value());
    std::vector<std::vector<std::uint8_t>> store;
    // Hand the writer the tensors in reverse so its own sort is what reproduces the order.
    auto tensors = load_all(*file, store);
    std::reverse(tensors.begin(), tensors.end());
    const std::string out = dir.file(name);
    REQUIRE(write_safetensors(out, tensors, file->metadata).is_ok());
    CHECK(dmem::test::read_file(out) == dmem::test::read_file(golden(name)));
  }
}

TEST_CASE("safetensors writer: several metadata keys match the golden file's content",
          "[safetensors]") {
  // The reference writes `__metadata__` from a hash map (key order varies run to run), so this
  // file is compared parsed: same tensors, offsets, data and metadata. Our writer sorts the keys.
  TempDir dir;
  auto file = read_safetensors(golden("multi_meta.safetensors"));
  REQUIRE(file.has_value());
  std::vector<std::vector<std::uint8_t>> store;
  const auto tensors = load_all(*file, store);
  const std::string out = dir.file("multi.safetensors");
  REQUIRE(write_safetensors(out, tensors, file->metadata).is_ok());
  auto back = read_safetensors(out);
  REQUIRE(back.has_value());
  CHECK(back->header_size == file->header_size);  // same keys, same lengths
  CHECK(back->metadata == file->metadata);
  REQUIRE(back->tensors.size() == file->tensors.size());
  for (std::size_t i = 0; i < back->tensors.size(); ++i) {
    CHECK(back->tensors[i].name == file->tensors[i].name);
    CHECK(back->tensors[i].offset == file->tensors[i].offset);
  }
  const auto a = dmem::test::read_file(out);
  const auto b = dmem::test::read_file(golden("multi_meta.safetensors"));
  REQUIRE(a.size() == b.size());
  const std::size_t data = static_cast<std::size_t>(file->data_start);
  CHECK(std::equal(a.begin() + static_cast<std::ptrdiff_t>(data), a.end(),
                   b.begin() + static_cast<std::ptrdiff_t>(data)));
  const std::string header(a.begin() + 8, a.begin() + static_cast<std::ptrdiff_t>(data));
  CHECK(header.find(
            R"({"__metadata__":{"format":"pt","license":"apache-2.0","producer":"dmem golden"})") ==
        0);
}

TEST_CASE("safetensors writer: round trip of every element dtype, scalars and empty tensors",
          "[safetensors]") {
  TempDir dir;
  std::vector<std::uint8_t> pool(256);
  for (std::size_t i = 0; i < pool.size(); ++i) pool[i] = static_cast<std::uint8_t>(i * 7 + 3);
  std::vector<TensorData> in{
      {"blocks.0.w", DType::bf16, {3, 5}, pool.data(), 30},
      {"blocks.0.b", DType::f32, {3}, pool.data() + 30, 12},
      {"scalar", DType::f64, {}, pool.data() + 42, 8},
      {"empty", DType::f16, {4, 0}, nullptr, 0},
      {"fp4", DType::f4, {2, 3}, pool.data() + 50, 3},
      {"fp6", DType::f6_e3m2, {8}, pool.data() + 53, 6},
      {"fp8", DType::f8_e5m2, {5}, pool.data() + 59, 5},
      {"ids", DType::i64, {2}, pool.data() + 64, 16},
      {"flag", DType::boolean, {1}, pool.data() + 80, 1},
      {"z", DType::c64, {1}, pool.data() + 81, 8},
  };
  const std::pair<std::string, std::string> md[] = {{"format", "pt"}, {"a", "b"}};
  const std::string path = dir.file("rt.safetensors");
  REQUIRE(write_safetensors(path, in, md).is_ok());

  auto f = read_safetensors(path);
  REQUIRE(f.has_value());
  CHECK(f->header_size % 8 == 0);
  CHECK(f->metadata ==
        std::vector<std::pair<std::string, std::string>>{{"a", "b"}, {"format", "pt"}});
  REQUIRE(f->tensors.size() == in.size());
  auto src = TensorSource::open(std::vector<std::string>{path});
  REQUIRE(src.has_value());
  for (const TensorData& t : in) {
    INFO(t.name);
    auto it = std::find_if(f->tensors.begin(), f->tensors.end(),
                           [&](const TensorInfo& i) { return i.name == t.name; });
    REQUIRE(it != f->tensors.end());
    CHECK(it->dtype == t.dtype);
    CHECK(it->shape == t.shape);
    CHECK(it->nbytes == t.nbytes);
    // Whole-byte element types start aligned to their element size (descending-alignment sort).
    const DTypeInfo& info = dtype_info(t.dtype);
    if (info.block_elems == 1) CHECK(it->offset % info.block_bytes == 0);
    std::vector<std::uint8_t> got(t.nbytes);
    REQUIRE(src->read(*it, got.data()).is_ok());
    if (t.nbytes > 0)
      CHECK(std::equal(got.begin(), got.end(), static_cast<const std::uint8_t*>(t.data)));
  }
}

TEST_CASE("safetensors writer: overwrites an existing file in place", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  dmem::test::write_file(path, std::string("old contents"));
  const std::uint8_t d[2] = {1, 2};
  const TensorData t[] = {{"x", DType::u8, {2}, d, 2}};
  REQUIRE(write_safetensors(path, t).is_ok());
  auto f = read_safetensors(path);
  REQUIRE(f.has_value());
  CHECK(f->tensors.size() == 1);
  CHECK(entries(dir) == 1);
}

TEST_CASE("safetensors writer: rejects bad input and leaves nothing behind", "[safetensors]") {
  const std::uint8_t buf[64] = {};
  struct Case {
    const char* what;
    std::vector<TensorData> tensors;
    std::vector<std::pair<std::string, std::string>> metadata;
    const char* rule;
    const char* tensor;
  };
  const std::vector<Case> cases{
      {"empty name", {{"", DType::u8, {1}, buf, 1}}, {}, "safetensors.write.name", ""},
      {"reserved name",
       {{"__metadata__", DType::u8, {1}, buf, 1}},
       {},
       "safetensors.write.name",
       "__metadata__"},
      {"invalid UTF-8 name", {{"a\xFF", DType::u8, {1}, buf, 1}}, {}, "safetensors.write.name", ""},
      {"duplicate names",
       {{"a", DType::u8, {1}, buf, 1},
        {"b", DType::u8, {1}, buf, 1},
        {"a", DType::u8, {1}, buf, 1}},
       {},
       "safetensors.write.duplicate",
       "a"},
      {"nbytes too small",
       {{"a", DType::f32, {2, 2}, buf, 8}},
       {},
       "safetensors.write.nbytes",
       "a"},
      {"nbytes too large", {{"a", DType::f32, {2}, buf, 9}}, {}, "safetensors.write.nbytes", "a"},
      {"null data", {{"a", DType::f16, {2}, nullptr, 4}}, {}, "safetensors.write.data", "a"},
      {"block dtype", {{"a", DType::q4_0, {32}, buf, 18}}, {}, "safetensors.write.dtype", "a"},
      {"F4 odd count", {{"a", DType::f4, {3}, buf, 2}}, {}, "safetensors.write.shape", "a"},
      {"shape overflow",
       {{"a", DType::f32, {1ull << 62, 2}, buf, 0}},
       {},
       "safetensors.write.shape",
       "a"},
      {"duplicate metadata key",
       {{"a", DType::u8, {1}, buf, 1}},
       {{"k", "1"}, {"k", "2"}},
       "safetensors.write.metadata",
       ""},
      {"invalid UTF-8 metadata", {}, {{"k", "\xC0\x80"}}, "safetensors.write.metadata", ""},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    TempDir dir;
    const std::string path = dir.file("out.safetensors");
    const Status st = write_safetensors(path, c.tensors, c.metadata);
    REQUIRE_FALSE(st.is_ok());
    CHECK(st.code() == Errc::invalid_argument);
    CHECK(st.rule() == c.rule);
    CHECK(st.tensor() == c.tensor);
    CHECK(st.file() == path);
    CHECK(entries(dir) == 0);
  }
}

TEST_CASE("safetensors writer: an unwritable destination fails cleanly", "[safetensors]") {
  TempDir dir;
  const std::string path = dir.file("missing/sub/out.safetensors");
  const std::uint8_t d[1] = {1};
  const TensorData t[] = {{"x", DType::u8, {1}, d, 1}};
  const Status st = write_safetensors(path, t);
  REQUIRE_FALSE(st.is_ok());
  CHECK(st.code() == Errc::not_found);
  CHECK(st.file() == path);
  CHECK(entries(dir) == 0);
}
