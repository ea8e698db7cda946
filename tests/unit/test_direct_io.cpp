// Direct (O_DIRECT) checkpoint reads: the bytes equal a buffered read at every offset and size,
// and a Session loading with SessionOptions::direct_io gives the buffered run's outputs bit for
// bit.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "dmem/plugin_registry.hpp"
#include "dmem/session.hpp"
#include "format/direct_read.hpp"
#include "format/file_io.hpp"
#include "support/runtime_fixture.hpp"
#include "support/test_support.hpp"

using namespace dmem;

namespace {

// Whether this file system takes O_DIRECT at all (tmpfs on older kernels does not).
bool direct_supported(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

struct AlignedBuffer {
  explicit AlignedBuffer(std::size_t n)
      : size(n),
        data(static_cast<unsigned char*>(
            ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0))) {}
  ~AlignedBuffer() { ::munmap(data, size); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  std::size_t size;
  unsigned char* data;
};

}  // namespace

TEST_CASE("direct reads return the file's bytes at any offset and size", "[runtime][direct_io]") {
  test::TempDir dir;
  const std::string path = dir.file("data.bin");
  // Not a multiple of the block: the last direct read runs past the end of the file.
  std::vector<unsigned char> bytes(3 * 4096 + 1234);
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<unsigned char>(i * 131 + 7);
  test::write_file(path, bytes.data(), bytes.size());
  auto file = detail::ReadFile::open(path);
  REQUIRE(file.has_value());
  auto direct = detail::DirectFile::open(*file);
  if (!direct) {
    CHECK(direct.status().code() == Errc::unsupported);
    CHECK(direct.status().rule() == "file.direct_io");
    CHECK_FALSE(direct_supported(path));
    return;
  }
  AlignedBuffer buf(detail::direct_span(bytes.size()));
  const std::uint64_t n = bytes.size();
  for (std::uint64_t off : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{4095},
                            std::uint64_t{4096}, std::uint64_t{5000}, n - 1000, n - 1}) {
    for (std::uint64_t size : {1, 100, 4096, 8191}) {
      if (off + size > n) continue;
      INFO("offset " << off << " size " << size);
      auto got = direct->read(buf.data, buf.size, size, off);
      REQUIRE(got.has_value());
      CHECK(std::memcmp(*got, bytes.data() + off, size) == 0);
    }
  }
  // A buffer too small for the aligned span falls back to a buffered read of just the bytes.
  auto small = direct->read(buf.data, 100, 100, 5);
  REQUIRE(small.has_value());
  CHECK(*small == buf.data);
  CHECK(std::memcmp(buf.data, bytes.data() + 5, 100) == 0);
  // Past the end: the same error as a buffered read.
  auto past = direct->read(buf.data, buf.size, 100, n + 10);
  REQUIRE_FALSE(past.has_value());
  CHECK(past.status().rule() == "file.truncated");
  CHECK(past.status().file() == path);
}

TEST_CASE("a session loading with direct I/O gives the buffered run's outputs bit for bit",
          "[runtime][direct_io]") {
  test::TempDir dir;
  const std::string path = dir.file("m.safetensors");
  const Model model = test::make_block_model(path, 6, 96);
  Storage cast;
  cast.kind = StorageKind::layerwise_cast;
  cast.cast_dtype = DType::f8_e4m3;
  Storage int8;
  int8.kind = StorageKind::quantized;
  int8.quantizer = "dmem.quantizer.int8_row_test";
  PluginRegistry registry;
  REQUIRE(registry.load(DMEM_TEST_PLUGIN_INT8).is_ok());

  const auto placement = [](PlacementKind kind, Tier park = Tier::pinned) {
    Placement p;
    p.kind = kind;
    p.park = park;
    return p;
  };
  struct Case {
    const char* name;
    Placement placement;
    Storage storage;
  };
  const std::vector<Case> cases = {
      {"resident", placement(PlacementKind::resident), {}},
      {"group offload", placement(PlacementKind::group_offload), {}},
      {"disk", placement(PlacementKind::disk), {}},
      {"model offload parked pageable",
       placement(PlacementKind::model_offload, Tier::pageable),
       {}},
      {"fp8 cast, resident", placement(PlacementKind::resident), cast},
      {"fp8 cast, disk", placement(PlacementKind::disk), cast},
      {"int8 rows, group offload", placement(PlacementKind::group_offload), int8},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    SessionOptions options;
    options.plugins = &registry;
    options.staging_bytes = 64 << 10;  // many chunks, most of them unaligned in the file
    auto buffered = Session::open(model, test::one_component(c.placement, c.storage), options);
    if (!buffered) FAIL(buffered.status().to_string());
    auto expected = test::run_workload(*buffered, 2);
    REQUIRE(expected.has_value());
    CHECK_FALSE(buffered->stats().direct_io);

    options.direct_io = true;
    auto direct = Session::open(model, test::one_component(c.placement, c.storage), options);
    if (!direct) FAIL(direct.status().to_string());
    CHECK(direct->stats().direct_io == direct_supported(path));
    CHECK(direct->stats().load_bytes == buffered->stats().load_bytes);
    auto sum = test::run_workload(*direct, 2);
    REQUIRE(sum.has_value());
    CHECK(*sum == *expected);
  }
}
