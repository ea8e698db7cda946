// libFuzzer target: a *.safetensors.index.json (weight_map of tensor -> shard). The reader takes a
// path, so each input is written to a file of our own first; shards it names do not exist here,
// which exercises every check up to opening them.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "dmem/checkpoint.hpp"

namespace {

const std::string& index_path() {
  static const std::string path = [] {
    char tmpl[] = "/tmp/dmem_fuzz_index_XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    return std::string(made ? made : "/tmp") + "/model.safetensors.index.json";
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FILE* f = std::fopen(index_path().c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  auto sharded = dmem::read_sharded(index_path());
  if (!sharded) (void)sharded.status().to_string();
  return 0;
}
