// Sharded safetensors: an index and shards written by our writer, then made inconsistent one way
// at a time.
#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "dmem/checkpoint.hpp"
#include "dmem/tensor_source.hpp"
#include "dmem/writer.hpp"
#include "support/test_support.hpp"

using namespace dmem;
using dmem::test::TempDir;
using nlohmann::json;

namespace {

constexpr const char* kShard1 = "diffusion_pytorch_model-00001-of-00002.safetensors";
constexpr const char* kShard2 = "diffusion_pytorch_model-00002-of-00002.safetensors";
constexpr const char* kIndex = "diffusion_pytorch_model.safetensors.index.json";

struct Checkpoint {
  TempDir dir;
  std::vector<std::uint8_t> data = std::vector<std::uint8_t>(256, 0x42);
  // shard file -> tensor names (each f32 [4], 16 bytes)
  std::map<std::string, std::vector<std::string>> shards{
      {kShard1, {"blocks.0.w", "blocks.0.b", "embed.w"}}, {kShard2, {"blocks.1.w", "blocks.1.b"}}};
  json index;

  Checkpoint() {
    for (const auto& [file, names] : shards) write_shard(file, names);
    index["metadata"]["total_size"] = 5 * 16;
    for (const auto& [file, names] : shards)
      for (const auto& n : names) index["weight_map"][n] = file;
    save_index();
  }
  void write_shard(const std::string& file, const std::vector<std::string>& names,
                   std::vector<std::pair<std::string, std::string>> md = {{"format", "pt"}}) {
    std::vector<TensorData> t;
    for (const auto& n : names) t.push_back({n, DType::f32, {4}, data.data(), 16});
    REQUIRE(write_safetensors(dir.file(file), t, md).is_ok());
  }
  void save_index() { dmem::test::write_file(index_path(), index.dump(2) + "\n"); }
  std::string index_path() const { return dir.file(kIndex); }
};

void expect_error(const Result<ShardedCheckpoint>& r, const char* rule, const std::string& file,
                  const char* tensor, Errc code = Errc::format_error) {
  REQUIRE_FALSE(r.has_value());
  const Status& st = r.status();
  INFO(st.to_string());
  CHECK(st.rule() == rule);
  CHECK(st.code() == code);
  CHECK(st.file() == file);
  CHECK(st.tensor() == tensor);
  CHECK_FALSE(st.hint().empty());
}

}  // namespace

TEST_CASE("sharded: reads an index and its shards", "[safetensors]") {
  Checkpoint ck;
  auto r = read_sharded(ck.index_path());
  REQUIRE(r.has_value());
  CHECK(r->index_path == ck.index_path());
  REQUIRE(r->files.size() == 2);
  CHECK(r->files[0] == ck.dir.file(kShard1));  // sorted shard names
  CHECK(r->files[1] == ck.dir.file(kShard2));
  CHECK(r->total_size == 80);
  CHECK(r->metadata == std::vector<std::pair<std::string, std::string>>{{"format", "pt"}});
  REQUIRE(r->tensors.size() == 5);
  std::map<std::string, std::uint32_t> where;
  for (const auto& t : r->tensors) where[t.name] = t.file;
  CHECK(where["blocks.0.w"] == 0);
  CHECK(where["embed.w"] == 0);
  CHECK(where["blocks.1.b"] == 1);
  // Ordered by file, then offset.
  for (std::size_t i = 1; i < r->tensors.size(); ++i) {
    const auto& p = r->tensors[i - 1];
    const auto& t = r->tensors[i];
    CHECK((p.file < t.file || (p.file == t.file && p.offset < t.offset)));
  }
  // TensorInfo::file indexes `files`: TensorSource reads through it.
  auto src = TensorSource::open(r->files);
  REQUIRE(src.has_value());
  std::vector<std::uint8_t> buf(16);
  for (const auto& t : r->tensors) REQUIRE(src->read(t, buf.data()).is_ok());
}

TEST_CASE("sharded: total_size is optional", "[safetensors]") {
  Checkpoint ck;
  ck.index.erase("metadata");
  ck.save_index();
  auto r = read_sharded(ck.index_path());
  REQUIRE(r.has_value());
  CHECK(r->total_size == 80);
}

TEST_CASE("sharded: a missing shard names the index and the shard", "[safetensors]") {
  Checkpoint ck;
  std::filesystem::remove(ck.dir.file(kShard2));
  auto r = read_sharded(ck.index_path());
  expect_error(r, "sharded.shard.missing", ck.index_path(), "", Errc::not_found);
  CHECK(r.status().message().find(kShard2) != std::string::npos);
}

TEST_CASE("sharded: a tensor mapped to the wrong shard", "[safetensors]") {
  Checkpoint ck;
  ck.index["weight_map"]["embed.w"] = kShard2;
  ck.save_index();
  auto r = read_sharded(ck.index_path());
  expect_error(r, "sharded.tensor.wrong_shard", ck.index_path(), "embed.w");
  CHECK(r.status().message().find(kShard1) != std::string::npos);
  CHECK(r.status().message().find(kShard2) != std::string::npos);
}

TEST_CASE("sharded: a tensor stored in two shards", "[safetensors]") {
  Checkpoint ck;
  ck.write_shard(kShard2, {"blocks.1.w", "blocks.1.b", "embed.w"});
  auto r = read_sharded(ck.index_path());
  expect_error(r, "sharded.tensor.duplicate", ck.index_path(), "embed.w");
}

TEST_CASE("sharded: a shard tensor the index does not list", "[safetensors]") {
  Checkpoint ck;
  ck.write_shard(kShard2, {"blocks.1.w", "blocks.1.b", "extra"});
  auto r = read_sharded(ck.index_path());
  expect_error(r, "sharded.tensor.unlisted", ck.index_path(), "extra");
}

TEST_CASE("sharded: an index tensor no shard holds", "[safetensors]") {
  Checkpoint ck;
  ck.index["weight_map"]["ghost"] = kShard1;
  ck.save_index();
  auto r = read_sharded(ck.index_path());
  expect_error(r, "sharded.tensor.missing", ck.index_path(), "ghost");
}

TEST_CASE("sharded: total_size must equal the tensor bytes", "[safetensors]") {
  Checkpoint ck;
  ck.index["metadata"]["total_size"] = 81;
  ck.save_index();
  auto r = read_sharded(ck.index_path());
  expect_error(r, "sharded.total_size", ck.index_path(), "");
  CHECK(r.status().message().find("81") != std::string::npos);
  CHECK(r.status().message().find("80") != std::string::npos);

  ck.index["metadata"]["total_size"] = -80;
  ck.save_index();
  expect_error(read_sharded(ck.index_path()), "sharded.index.schema", ck.index_path(), "");
}

TEST_CASE("sharded: a broken shard keeps its rule and names both files", "[safetensors]") {
  Checkpoint ck;
  std::filesystem::resize_file(ck.dir.file(kShard2),
                               std::filesystem::file_size(ck.dir.file(kShard2)) - 1);
  auto r = read_sharded(ck.index_path());
  REQUIRE_FALSE(r.has_value());
  CHECK(r.status().rule() == "safetensors.file.truncated");
  CHECK(r.status().file() == ck.dir.file(kShard2));
  CHECK(r.status().message().find(ck.index_path()) != std::string::npos);
}

TEST_CASE("sharded: malformed index files", "[safetensors]") {
  Checkpoint ck;
  const std::string path = ck.index_path();
  SECTION("missing index") {
    std::filesystem::remove(path);
    auto r = read_sharded(path);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.status().code() == Errc::not_found);
    CHECK(r.status().file() == path);
  }
  SECTION("not JSON") {
    dmem::test::write_file(path, std::string("{\"weight_map\": {"));
    expect_error(read_sharded(path), "sharded.index.json", path, "");
  }
  SECTION("duplicate tensor in weight_map") {
    dmem::test::write_file(path, std::string(R"({"weight_map":{"embed.w":")") + kShard1 +
                                     R"(","embed.w":")" + kShard2 + "\"}}");
    expect_error(read_sharded(path), "sharded.index.duplicate_key", path, "embed.w");
  }
  SECTION("no weight_map") {
    dmem::test::write_file(path, std::string(R"({"metadata":{}})"));
    expect_error(read_sharded(path), "sharded.index.schema", path, "");
  }
  SECTION("empty weight_map") {
    dmem::test::write_file(path, std::string(R"({"weight_map":{}})"));
    expect_error(read_sharded(path), "sharded.index.empty", path, "");
  }
  SECTION("shard name not a string") {
    dmem::test::write_file(path, std::string(R"({"weight_map":{"a":1}})"));
    expect_error(read_sharded(path), "sharded.index.schema", path, "a");
  }
  SECTION("shard outside the folder") {
    for (const char* bad : {"../x.safetensors", "/etc/passwd", "a/../../b.safetensors", ""}) {
      INFO(bad);
      json j;
      j["weight_map"]["a"] = bad;
      dmem::test::write_file(path, j.dump());
      expect_error(read_sharded(path), "sharded.shard.path", path, "a");
    }
  }
}
