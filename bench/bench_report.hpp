// Machine-readable benchmark results. Every benchmark prints its table for people; given
// `--json FILE` it also writes {"bench": NAME, "results": {...}, "ratios": {...}} to FILE, which
// scripts/gpu-check gathers into one report.
#pragma once

#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

namespace dmem::bench {

class Report {
 public:
  explicit Report(std::string name) : name_(std::move(name)) {}

  /// A measured figure, its unit in the key ("plan_ms", "memcpy_gbs").
  void result(const std::string& key, double value) { results_[key] = value; }
  /// A figure divided by the peer or physical limit measured in the same run.
  void ratio(const std::string& key, double value) { ratios_[key] = value; }

  /// Writes the report when `path` is not empty; false (with a message) when it cannot.
  bool write(const std::string& path) const {
    if (path.empty()) return true;
    nlohmann::json j = {{"bench", name_}, {"results", results_}, {"ratios", ratios_}};
    std::FILE* f = std::fopen(path.c_str(), "w");
    const std::string text = j.dump(2) + "\n";
    bool ok = f != nullptr && std::fwrite(text.data(), 1, text.size(), f) == text.size();
    if (f != nullptr) ok = std::fclose(f) == 0 && ok;
    if (!ok) std::fprintf(stderr, "%s: cannot write %s\n", name_.c_str(), path.c_str());
    return ok;
  }

 private:
  std::string name_;
  std::map<std::string, double> results_;
  std::map<std::string, double> ratios_;
};

/// Removes `--json FILE` from the arguments and returns FILE ("" when absent), so each
/// benchmark's own flag parsing stays as it is.
inline std::string take_json_flag(int& argc, char** argv) {
  std::string path;
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
      path = argv[++i];
      continue;
    }
    argv[out++] = argv[i];
  }
  argc = out;
  argv[argc] = nullptr;
  return path;
}

}  // namespace dmem::bench
