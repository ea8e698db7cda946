#include "support/golden_safetensors.hpp"

#include <catch2/catch.hpp>

#include <cstring>
#include <nlohmann/json.hpp>

#include "support/test_support.hpp"

namespace dmem::test {

const GoldenTensor& GoldenFile::at(const std::string& name) const {
  auto it = tensors.find(name);
  INFO("golden tensor " << name);
  REQUIRE(it != tensors.end());
  return it->second;
}

GoldenFile read_golden_safetensors(const std::string& path) {
  const std::vector<std::uint8_t> file = read_file(path);
  INFO(path);
  REQUIRE(file.size() >= 8);
  std::uint64_t n = 0;
  std::memcpy(&n, file.data(), 8);
  REQUIRE(n <= file.size() - 8);
  const auto header =
      nlohmann::json::parse(file.begin() + 8, file.begin() + 8 + static_cast<long>(n));
  const std::uint8_t* data = file.data() + 8 + n;
  GoldenFile g;
  for (const auto& [name, v] : header.items()) {
    if (name == "__metadata__") {
      for (const auto& [k, s] : v.items()) g.metadata[k] = s.get<std::string>();
      continue;
    }
    GoldenTensor t;
    t.dtype = v.at("dtype").get<std::string>();
    t.shape = v.at("shape").get<std::vector<std::uint64_t>>();
    const auto off = v.at("data_offsets").get<std::vector<std::uint64_t>>();
    REQUIRE(off.size() == 2);
    REQUIRE(off[0] <= off[1]);
    REQUIRE(8 + n + off[1] <= file.size());
    t.bytes.assign(data + off[0], data + off[1]);
    g.tensors.emplace(name, std::move(t));
  }
  return g;
}

}  // namespace dmem::test
