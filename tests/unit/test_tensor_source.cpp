// TensorSource: whole tensors and ranges by pread, bounds, truncated files, bad file indexes.
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "dmem/checkpoint.hpp"
#include "dmem/model.hpp"
#include "dmem/tensor_source.hpp"
#include "dmem/writer.hpp"
#include "support/test_support.hpp"

using namespace dmem;
using dmem::test::TempDir;

namespace {

struct Fixture {
  TempDir dir;
  std::string path = dir.file("src.safetensors");
  std::vector<std::uint8_t> a = std::vector<std::uint8_t>(4000);
  std::vector<std::uint8_t> b = std::vector<std::uint8_t>(6);
  SafetensorsFile file;

  Fixture() {
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = static_cast<std::uint8_t>(i * 31 + 7);
    std::iota(b.begin(), b.end(), std::uint8_t{200});
    const TensorData t[] = {{"a", DType::f32, {1000}, a.data(), a.size()},
                            {"b", DType::u8, {2, 3}, b.data(), b.size()}};
    REQUIRE(write_safetensors(path, t).is_ok());
    auto f = read_safetensors(path);
    REQUIRE(f.has_value());
    file = *f;
    REQUIRE(file.tensors.size() == 2);
  }
  const TensorInfo& tensor(const char* name) const {
    for (const auto& t : file.tensors)
      if (t.name == name) return t;
    FAIL("no tensor " << name);
    return file.tensors[0];
  }
};

}  // namespace

TEST_CASE("TensorSource reads whole tensors", "[safetensors]") {
  Fixture fx;
  auto src = TensorSource::open(std::vector<std::string>{fx.path});
  REQUIRE(src.has_value());
  std::vector<std::uint8_t> got(4000);
  REQUIRE(src->read(fx.tensor("a"), got.data()).is_ok());
  CHECK(got == fx.a);
  std::vector<std::uint8_t> gb(6);
  REQUIRE(src->read(fx.tensor("b"), gb.data()).is_ok());
  CHECK(gb == fx.b);
}

TEST_CASE("TensorSource reads byte ranges of a tensor", "[safetensors]") {
  Fixture fx;
  auto src = TensorSource::open(std::vector<std::string>{fx.path});
  REQUIRE(src.has_value());
  const TensorInfo& a = fx.tensor("a");
  for (const auto& [begin, size] : std::vector<std::pair<std::uint64_t, std::uint64_t>>{
           {0, 1}, {1, 17}, {1234, 1000}, {3999, 1}, {0, 4000}, {4000, 0}}) {
    INFO(begin << "+" << size);
    std::vector<std::uint8_t> got(size + 1, 0xEE);
    REQUIRE(src->read(a, got.data(), begin, size).is_ok());
    CHECK(std::equal(got.begin(), got.begin() + static_cast<std::ptrdiff_t>(size),
                     fx.a.begin() + static_cast<std::ptrdiff_t>(begin)));
    CHECK(got[size] == 0xEE);  // nothing written past the range
  }
  // A moved source keeps working.
  TensorSource moved = std::move(src.value());
  std::uint8_t one = 0;
  REQUIRE(moved.read(a, &one, 10, 1).is_ok());
  CHECK(one == fx.a[10]);
}

TEST_CASE("TensorSource refuses ranges past the tensor's end", "[safetensors]") {
  Fixture fx;
  auto src = TensorSource::open(std::vector<std::string>{fx.path});
  REQUIRE(src.has_value());
  const TensorInfo& b = fx.tensor("b");
  std::vector<std::uint8_t> buf(64);
  for (const auto& [begin, size] : std::vector<std::pair<std::uint64_t, std::uint64_t>>{
           {0, 7}, {6, 1}, {7, 0}, {3, 4}, {1, ~0ull}, {~0ull, 2}}) {
    INFO(begin << "+" << size);
    const Status st = src->read(b, buf.data(), begin, size);
    REQUIRE_FALSE(st.is_ok());
    CHECK(st.code() == Errc::invalid_argument);
    CHECK(st.rule() == "tensor_source.range");
    CHECK(st.tensor() == "b");
    CHECK(st.file() == fx.path);
  }
}

TEST_CASE("TensorSource reports a file that ends early", "[safetensors]") {
  Fixture fx;
  // Cut the file after the header is read, as if it changed on disk (or a bad copy).
  std::filesystem::resize_file(fx.path, fx.file.file_size - 3);
  auto src = TensorSource::open(std::vector<std::string>{fx.path});
  REQUIRE(src.has_value());
  // The tensor placed last (u8 sorts after f32) loses its tail.
  const TensorInfo& last = fx.file.tensors.back();
  REQUIRE(last.name == "b");
  std::vector<std::uint8_t> buf(6);
  const Status st = src->read(last, buf.data());
  REQUIRE_FALSE(st.is_ok());
  CHECK(st.code() == Errc::format_error);
  CHECK(st.rule() == "file.truncated");
  CHECK(st.tensor() == "b");
  CHECK(st.file() == fx.path);
  REQUIRE(st.has_offset());
  CHECK(st.offset() == fx.file.file_size - 3);
  // Its first bytes are still there.
  CHECK(src->read(last, buf.data(), 0, 3).is_ok());
  // And the header reader now rejects the file.
  auto again = read_safetensors(fx.path);
  REQUIRE_FALSE(again.has_value());
  CHECK(again.status().rule() == "safetensors.file.truncated");
}

TEST_CASE("TensorSource checks the tensor's file index", "[safetensors]") {
  Fixture fx;
  auto src = TensorSource::open(std::vector<std::string>{fx.path});
  REQUIRE(src.has_value());
  TensorInfo t = fx.tensor("a");
  std::vector<std::uint8_t> buf(4000);
  t.file = 1;
  Status st = src->read(t, buf.data());
  CHECK(st.rule() == "tensor_source.file");
  CHECK(st.tensor() == "a");
  t.file = kNoFile;
  st = src->read(t, buf.data());
  CHECK(st.rule() == "tensor_source.file");
  CHECK(st.code() == Errc::invalid_argument);
}

TEST_CASE("TensorSource opens a component's files and names the one that is missing",
          "[safetensors]") {
  Fixture fx;
  Component c;
  c.name = "transformer";
  c.files = {fx.path, fx.path};
  c.tensors = fx.file.tensors;
  auto ok = TensorSource::open(c);
  REQUIRE(ok.has_value());
  TensorInfo second = fx.tensor("b");
  second.file = 1;  // same bytes through the second handle
  std::vector<std::uint8_t> buf(6);
  REQUIRE(ok->read(second, buf.data()).is_ok());
  CHECK(buf == fx.b);

  c.files.push_back(fx.dir.file("gone.safetensors"));
  auto bad = TensorSource::open(c);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.status().code() == Errc::not_found);
  CHECK(bad.status().file() == fx.dir.file("gone.safetensors"));
  CHECK(bad.status().message().find("transformer") != std::string::npos);

  auto folder = TensorSource::open(std::vector<std::string>{fx.dir.path().string()});
  REQUIRE_FALSE(folder.has_value());
  CHECK(folder.status().file() == fx.dir.path().string());
}
