// GGUF reader against gguf-py's GGUFReader (golden files), writer byte-compared with gguf-py's
// GGUFWriter, and writer -> reader round trips.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "dmem/checkpoint.hpp"
#include "dmem/writer.hpp"
#include "support/test_support.hpp"

using namespace dmem;
using json = nlohmann::json;

namespace {

std::string golden(const std::string& name) {
  return std::string(DMEM_GOLDEN_DIR) + "/gguf/" + name;
}

json golden_report() {
  const auto bytes = test::read_file(golden("gguf_reader.json"));
  json j = json::parse(bytes.begin(), bytes.end(), nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

bool is_unsigned(GgufType t) {
  return t == GgufType::u8 || t == GgufType::u16 || t == GgufType::u32 || t == GgufType::u64;
}
bool is_signed(GgufType t) {
  return t == GgufType::i8 || t == GgufType::i16 || t == GgufType::i32 || t == GgufType::i64;
}

void check_scalar(const json& j, GgufType t, const GgufValue& v, std::size_t i, bool array) {
  // For arrays `i` indexes the vector; for scalars it is unused.
  if (is_unsigned(t)) {
    const auto got =
        array ? std::get<std::vector<std::uint64_t>>(v.value)[i] : std::get<std::uint64_t>(v.value);
    CHECK(got == j.get<std::uint64_t>());
  } else if (is_signed(t)) {
    const auto got =
        array ? std::get<std::vector<std::int64_t>>(v.value)[i] : std::get<std::int64_t>(v.value);
    CHECK(got == j.get<std::int64_t>());
  } else if (t == GgufType::f32 || t == GgufType::f64) {
    const auto got = array ? std::get<std::vector<double>>(v.value)[i] : std::get<double>(v.value);
    CHECK(got == j.get<double>());
  } else if (t == GgufType::boolean) {
    const bool got = array ? static_cast<bool>(std::get<std::vector<bool>>(v.value)[i])
                           : std::get<bool>(v.value);
    CHECK(got == j.get<bool>());
  } else if (t == GgufType::string) {
    const auto& got =
        array ? std::get<std::vector<std::string>>(v.value)[i] : std::get<std::string>(v.value);
    CHECK(got == j.get<std::string>());
  } else {
    FAIL("unexpected type");
  }
}

std::size_t array_size(const GgufValue& v) {
  return std::visit(
      [](const auto& x) -> std::size_t {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::vector<std::uint64_t>> ||
                      std::is_same_v<T, std::vector<std::int64_t>> ||
                      std::is_same_v<T, std::vector<double>> ||
                      std::is_same_v<T, std::vector<bool>> ||
                      std::is_same_v<T, std::vector<std::string>>) {
          return x.size();
        } else {
          return SIZE_MAX;
        }
      },
      v.value);
}

void check_against_report(const GgufFile& f, const json& r) {
  CHECK(f.file_size == r["file_size"].get<std::uint64_t>());
  CHECK(f.alignment == r["alignment"].get<std::uint32_t>());
  CHECK(f.data_start == r["data_offset"].get<std::uint64_t>());
  CHECK(f.version == 3);

  const json& meta = r["metadata"];
  REQUIRE(f.metadata.size() == meta.size());
  for (std::size_t i = 0; i < meta.size(); ++i) {
    const GgufKv& kv = f.metadata[i];
    INFO("key " << kv.key);
    CHECK(kv.key == meta[i]["key"].get<std::string>());
    CHECK(static_cast<int>(kv.value.type) == meta[i]["type"].get<int>());
    if (kv.value.type == GgufType::array) {
      CHECK(static_cast<int>(kv.value.elem_type) == meta[i]["elem_type"].get<int>());
      const json& values = meta[i]["value"];
      REQUIRE(array_size(kv.value) == values.size());
      for (std::size_t k = 0; k < values.size(); ++k)
        check_scalar(values[k], kv.value.elem_type, kv.value, k, true);
    } else {
      check_scalar(meta[i]["value"], kv.value.type, kv.value, 0, false);
    }
    CHECK(f.find(kv.key) == &kv.value);
  }

  const json& tensors = r["tensors"];
  REQUIRE(f.tensors.size() == tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& t = f.tensors[i];
    const json& g = tensors[i];
    INFO("tensor " << t.name);
    CHECK(t.name == g["name"].get<std::string>());
    // gguf-py reports ne order; ours is PyTorch order.
    auto ne = g["shape"].get<std::vector<std::uint64_t>>();
    std::reverse(ne.begin(), ne.end());
    CHECK(t.shape == ne);
    CHECK(dtype_info(t.dtype).ggml_id == g["type"].get<int>());
    CHECK(t.nbytes == g["n_bytes"].get<std::uint64_t>());
    CHECK(t.elements() == g["n_elements"].get<std::uint64_t>());
    CHECK(t.offset == g["data_offset"].get<std::uint64_t>());
    CHECK(t.file == 0u);
  }
}

// The file's content as writer input; data points into `bytes`.
std::vector<TensorData> tensors_of(const GgufFile& f, const std::vector<std::uint8_t>& bytes) {
  std::vector<TensorData> out;
  for (const TensorInfo& t : f.tensors)
    out.push_back({t.name, t.dtype, t.shape, bytes.data() + t.offset, t.nbytes});
  return out;
}

const std::vector<std::string> kGoldenFiles{"meta.gguf", "tensors.gguf", "align64.gguf",
                                            "no_tensors.gguf"};

}  // namespace

TEST_CASE("read_gguf agrees with gguf-py's GGUFReader on the golden files", "[gguf]") {
  const json report = golden_report();
  REQUIRE(report.size() == kGoldenFiles.size());
  for (const std::string& name : kGoldenFiles) {
    INFO(name);
    auto f = read_gguf(golden(name));
    REQUIRE(f.is_ok());
    CHECK(f->path == golden(name));
    check_against_report(*f, report[name]);
  }
}

TEST_CASE("parse_gguf on memory gives the same result as read_gguf", "[gguf]") {
  const json report = golden_report();
  for (const std::string& name : kGoldenFiles) {
    INFO(name);
    const auto bytes = test::read_file(golden(name));
    auto f = parse_gguf(bytes.data(), bytes.size(), name);
    REQUIRE(f.is_ok());
    CHECK(f->path == name);
    check_against_report(*f, report[name]);
  }
}

TEST_CASE("golden metadata has every value type and typed look-ups work", "[gguf]") {
  auto f = read_gguf(golden("meta.gguf"));
  REQUIRE(f.is_ok());
  const GgufValue* arch = f->find("general.architecture");
  REQUIRE(arch != nullptr);
  CHECK(std::get<std::string>(arch->value) == "dmemtest");
  CHECK(f->find("no.such.key") == nullptr);
  std::vector<bool> scalar_seen(13, false), array_seen(13, false);
  for (const GgufKv& kv : f->metadata) {
    scalar_seen[static_cast<std::size_t>(kv.value.type)] = true;
    if (kv.value.type == GgufType::array)
      array_seen[static_cast<std::size_t>(kv.value.elem_type)] = true;
  }
  for (std::size_t t = 0; t < 13; ++t) {
    INFO("type " << t);
    CHECK(scalar_seen[t]);
    if (t != 9) CHECK(array_seen[t]);
  }
  CHECK(std::get<bool>(f->find("test.bool_true")->value));
  CHECK_FALSE(std::get<bool>(f->find("test.bool_false")->value));
  CHECK(std::get<std::vector<std::string>>(f->find("test.arr.string")->value) ==
        std::vector<std::string>{"a", "", "tokens ünïcode"});
}

TEST_CASE("a GGUF v2 file with the same layout is read", "[gguf]") {
  auto bytes = test::read_file(golden("tensors.gguf"));
  bytes[4] = 2;
  auto f = parse_gguf(bytes.data(), bytes.size(), "v2.gguf");
  REQUIRE(f.is_ok());
  CHECK(f->version == 2);
  CHECK(f->tensors.size() == 9);
}

TEST_CASE("write_gguf reproduces gguf-py's files byte for byte", "[gguf]") {
  test::TempDir dir;
  for (const std::string& name : kGoldenFiles) {
    INFO(name);
    const auto bytes = test::read_file(golden(name));
    auto f = read_gguf(golden(name));
    REQUIRE(f.is_ok());
    const auto tensors = tensors_of(*f, bytes);
    const std::string out = dir.file(name);
    REQUIRE(write_gguf(out, tensors, f->metadata, f->alignment).is_ok());
    CHECK(test::read_file(out) == bytes);
  }
}

TEST_CASE("write_gguf then read_gguf round-trips metadata, tensors and data", "[gguf]") {
  test::TempDir dir;
  const std::string path = dir.file("round.gguf");

  std::vector<GgufKv> meta;
  meta.push_back({"general.architecture", {GgufType::string, GgufType::u8, std::string("dmem")}});
  meta.push_back({"a.u8", {GgufType::u8, GgufType::u8, std::uint64_t{255}}});
  meta.push_back({"a.i16", {GgufType::i16, GgufType::u8, std::int64_t{-32768}}});
  meta.push_back({"a.f32", {GgufType::f32, GgufType::u8, 0.5}});
  meta.push_back({"a.f64", {GgufType::f64, GgufType::u8, 1e-300}});
  meta.push_back({"a.bool", {GgufType::boolean, GgufType::u8, true}});
  meta.push_back({"a.i64s", {GgufType::array, GgufType::i64, std::vector<std::int64_t>{-1, 2}}});
  meta.push_back(
      {"a.u16s", {GgufType::array, GgufType::u16, std::vector<std::uint64_t>{1, 65535}}});
  meta.push_back({"a.bools", {GgufType::array, GgufType::boolean, std::vector<bool>{false, true}}});
  meta.push_back({"a.f32s", {GgufType::array, GgufType::f32, std::vector<double>{0.25, -8.0}}});
  meta.push_back(
      {"a.strs", {GgufType::array, GgufType::string, std::vector<std::string>{"x", "", "yz"}}});
  meta.push_back({"a.empty", {GgufType::array, GgufType::u32, std::vector<std::uint64_t>{}}});

  std::vector<std::uint8_t> f32(2 * 3 * 4), q8(34 * 4), q4k(144 * 2), i8(5);
  for (std::size_t i = 0; i < f32.size(); ++i) f32[i] = static_cast<std::uint8_t>(i * 7 + 1);
  for (std::size_t i = 0; i < q8.size(); ++i) q8[i] = static_cast<std::uint8_t>(i * 3 + 2);
  for (std::size_t i = 0; i < q4k.size(); ++i) q4k[i] = static_cast<std::uint8_t>(i * 5 + 3);
  for (std::size_t i = 0; i < i8.size(); ++i) i8[i] = static_cast<std::uint8_t>(200 - i);
  const std::vector<TensorData> tensors{
      {"w.f32", DType::f32, {2, 3}, f32.data(), f32.size()},
      {"w.q8", DType::q8_0, {2, 64}, q8.data(), q8.size()},
      {"w.q4k", DType::q4_k, {1, 2, 256}, q4k.data(), q4k.size()},
      {"w.i8", DType::i8, {5}, i8.data(), i8.size()},
      {"w.empty", DType::f16, {0, 4}, nullptr, 0},
      {"w.scalar", DType::f32, {}, f32.data(), 4},
  };

  for (const std::uint32_t alignment : {32u, 64u, 1u, 4096u}) {
    INFO("alignment " << alignment);
    REQUIRE(write_gguf(path, tensors, meta, alignment).is_ok());
    auto f = read_gguf(path);
    REQUIRE(f.is_ok());
    CHECK(f->alignment == alignment);
    CHECK(f->data_start % alignment == 0);
    // general.alignment is appended after the caller's keys when it is not the default.
    REQUIRE(f->metadata.size() == meta.size() + (alignment != 32 ? 1 : 0));
    for (std::size_t i = 0; i < meta.size(); ++i) {
      CHECK(f->metadata[i].key == meta[i].key);
      CHECK(f->metadata[i].value.type == meta[i].value.type);
      if (meta[i].value.type == GgufType::array)
        CHECK(f->metadata[i].value.elem_type == meta[i].value.elem_type);
      CHECK(f->metadata[i].value.value == meta[i].value.value);
    }
    if (alignment != 32) {
      CHECK(f->metadata.back().key == "general.alignment");
      CHECK(std::get<std::uint64_t>(f->metadata.back().value.value) == alignment);
    }
    const auto bytes = test::read_file(path);
    REQUIRE(f->tensors.size() == tensors.size());
    for (std::size_t i = 0; i < tensors.size(); ++i) {
      const TensorInfo& t = f->tensors[i];
      INFO(t.name);
      CHECK(t.name == tensors[i].name);
      CHECK(t.dtype == tensors[i].dtype);
      CHECK(t.shape == tensors[i].shape);
      CHECK(t.nbytes == tensors[i].nbytes);
      CHECK(t.offset % alignment == 0);
      REQUIRE(t.offset + t.nbytes <= bytes.size());
      if (t.nbytes > 0) CHECK(std::memcmp(bytes.data() + t.offset, tensors[i].data, t.nbytes) == 0);
    }
    // Written twice the same way, the bytes are the same.
    REQUIRE(write_gguf(path + ".2", tensors, meta, alignment).is_ok());
    CHECK(test::read_file(path + ".2") == bytes);
  }
}

TEST_CASE("read_gguf reads headers larger than its read window", "[gguf]") {
  // A vocabulary-sized string array and one string longer than the 64 KiB window: the file
  // reader refills its window many times and reads the long string directly.
  test::TempDir dir;
  const std::string path = dir.file("vocab.gguf");
  std::vector<std::string> vocab;
  for (int i = 0; i < 20000; ++i) vocab.push_back("token_" + std::to_string(i));
  std::string long_text(200000, 'x');
  for (std::size_t i = 0; i < long_text.size(); i += 997) long_text[i] = 'y';
  std::vector<GgufKv> meta;
  meta.push_back({"tokenizer.ggml.tokens", {GgufType::array, GgufType::string, vocab}});
  meta.push_back({"long", {GgufType::string, GgufType::u8, long_text}});
  std::vector<std::uint64_t> ids(30000);
  for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = i * 3;
  meta.push_back({"ids", {GgufType::array, GgufType::u32, ids}});
  std::vector<float> w(256, 1.5f);
  const std::vector<TensorData> tensors{{"w", DType::f32, {256}, w.data(), 1024}};
  REQUIRE(write_gguf(path, tensors, meta).is_ok());

  auto f = read_gguf(path);
  REQUIRE(f.is_ok());
  CHECK(std::get<std::vector<std::string>>(f->find("tokenizer.ggml.tokens")->value) == vocab);
  CHECK(std::get<std::string>(f->find("long")->value) == long_text);
  CHECK(std::get<std::vector<std::uint64_t>>(f->find("ids")->value) == ids);
  REQUIRE(f->tensors.size() == 1);
  const auto bytes = test::read_file(path);
  CHECK(std::memcmp(bytes.data() + f->tensors[0].offset, w.data(), 1024) == 0);
  auto m = parse_gguf(bytes.data(), bytes.size(), "vocab.gguf");
  REQUIRE(m.is_ok());
  CHECK(m->data_start == f->data_start);
}

TEST_CASE("read_gguf reports missing files and folders", "[gguf]") {
  test::TempDir dir;
  auto missing = read_gguf(dir.file("nope.gguf"));
  REQUIRE_FALSE(missing.is_ok());
  CHECK(missing.status().code() == Errc::not_found);
  CHECK(missing.status().file() == dir.file("nope.gguf"));
  auto folder = read_gguf(dir.path().string());
  REQUIRE_FALSE(folder.is_ok());
  CHECK(folder.status().code() == Errc::io_error);
}

TEST_CASE("write_gguf rejects bad input and leaves nothing behind", "[gguf]") {
  test::TempDir dir;
  const std::string path = dir.file("out.gguf");
  std::vector<std::uint8_t> data(4096, 0);
  const TensorData ok{"ok", DType::f32, {2}, data.data(), 8};

  struct Case {
    const char* what;
    std::vector<TensorData> tensors;
    std::vector<GgufKv> meta;
    std::uint32_t alignment;
    const char* rule;
  };
  const GgufKv u8kv{"k", {GgufType::u8, GgufType::u8, std::uint64_t{1}}};
  const std::vector<Case> cases{
      {"duplicate name", {ok, ok}, {}, 32, "gguf.write.duplicate"},
      {"64-byte name",
       {{std::string(64, 'n'), DType::f32, {2}, data.data(), 8}},
       {},
       32,
       "gguf.write.name"},
      {"empty name", {{"", DType::f32, {2}, data.data(), 8}}, {}, 32, "gguf.write.name"},
      {"5 dims", {{"t", DType::f32, {1, 1, 1, 1, 2}, data.data(), 8}}, {}, 32, "gguf.write.dims"},
      {"u8 has no ggml id", {{"t", DType::u8, {2}, data.data(), 2}}, {}, 32, "gguf.write.dtype"},
      {"bf16 nbytes wrong", {{"t", DType::bf16, {2}, data.data(), 8}}, {}, 32, "gguf.write.nbytes"},
      {"q8_0 row of 33", {{"t", DType::q8_0, {33}, data.data(), 34}}, {}, 32, "gguf.write.shape"},
      {"null data", {{"t", DType::f32, {2}, nullptr, 8}}, {}, 32, "gguf.write.data"},
      {"alignment 48", {ok}, {}, 48, "gguf.write.alignment"},
      {"alignment 0", {ok}, {}, 0, "gguf.write.alignment"},
      {"alignment 2 MiB", {ok}, {}, 2u << 20, "gguf.write.alignment"},
      {"duplicate key", {ok}, {u8kv, u8kv}, 32, "gguf.write.key"},
      {"empty key", {ok}, {{"", u8kv.value}}, 32, "gguf.write.key"},
      {"u8 out of range",
       {ok},
       {{"k", {GgufType::u8, GgufType::u8, std::uint64_t{256}}}},
       32,
       "gguf.write.value"},
      {"i8 out of range",
       {ok},
       {{"k", {GgufType::i8, GgufType::u8, std::int64_t{-129}}}},
       32,
       "gguf.write.value"},
      {"type and variant disagree",
       {ok},
       {{"k", {GgufType::u32, GgufType::u8, 1.0}}},
       32,
       "gguf.write.value"},
      {"nested array",
       {ok},
       {{"k", {GgufType::array, GgufType::array, std::vector<std::uint64_t>{1}}}},
       32,
       "gguf.write.value"},
      {"general.alignment disagrees",
       {ok},
       {{"general.alignment", {GgufType::u32, GgufType::u8, std::uint64_t{64}}}},
       32,
       "gguf.write.alignment"},
      {"general.alignment not u32",
       {ok},
       {{"general.alignment", {GgufType::u64, GgufType::u8, std::uint64_t{32}}}},
       32,
       "gguf.write.alignment"},
  };
  // An existing file must survive a failed write untouched.
  test::write_file(path, std::string_view("previous"));
  for (const Case& c : cases) {
    INFO(c.what);
    const Status s = write_gguf(path, c.tensors, c.meta, c.alignment);
    REQUIRE_FALSE(s.is_ok());
    CHECK(s.code() == Errc::invalid_argument);
    CHECK(s.rule() == c.rule);
    CHECK(s.file() == path);
    std::size_t entries = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path()))
      ++entries;
    CHECK(entries == 1);
    const auto kept = test::read_file(path);
    CHECK(std::string(kept.begin(), kept.end()) == "previous");
  }
}

TEST_CASE("write_gguf into a missing folder fails cleanly", "[gguf]") {
  test::TempDir dir;
  std::vector<std::uint8_t> data(8, 0);
  const std::vector<TensorData> tensors{{"t", DType::f32, {2}, data.data(), 8}};
  const Status s = write_gguf(dir.file("missing/out.gguf"), tensors);
  REQUIRE_FALSE(s.is_ok());
  CHECK(s.code() == Errc::not_found);
}
