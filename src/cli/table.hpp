// Plain-text tables for the CLI: columns padded to their widest cell (UTF-8 aware).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dmem::cli {

class Table {
 public:
  explicit Table(std::vector<std::string> header, std::vector<bool> right_aligned = {});
  void add(std::vector<std::string> row);
  /// A line printed as-is between rows (group titles, notes).
  void add_line(std::string line);
  [[nodiscard]] std::string render(const std::string& indent = "") const;

 private:
  struct Row {
    std::vector<std::string> cells;
    bool raw = false;
  };
  std::vector<std::string> header_;
  std::vector<bool> right_;
  std::vector<Row> rows_;
};

/// "20.43 B", "126.89 M", "512 K" parameters.
std::string format_count(std::uint64_t n);
/// Decimal bytes as checkpoints are usually described: "40.86 GB".
std::string format_gb(std::uint64_t bytes);

}  // namespace dmem::cli
