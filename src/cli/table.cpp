#include "cli/table.hpp"

#include <algorithm>
#include <cstdio>

#include "core/text_escape.hpp"
#include "dmem/units.hpp"

namespace dmem::cli {

namespace {
// Display width: count UTF-8 code points (our tables hold no wide glyphs).
std::size_t width(const std::string& s) {
  std::size_t w = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++w;
  return w;
}
}  // namespace

Table::Table(std::vector<std::string> header, std::vector<bool> right_aligned)
    : header_(std::move(header)), right_(std::move(right_aligned)) {
  right_.resize(header_.size(), false);
}

void Table::add(std::vector<std::string> row) {
  row.resize(header_.size());
  // Cells hold names from checkpoints: a newline or an ANSI escape must not reach the terminal.
  for (auto& cell : row)
    if (!detail::is_plain_text(cell)) cell = detail::escape_text(cell);
  rows_.push_back({std::move(row), false});
}

void Table::add_line(std::string line) {
  if (!detail::is_plain_text(line)) line = detail::escape_text(line);
  rows_.push_back({{std::move(line)}, true});
}

std::string Table::render(const std::string& indent) const {
  std::vector<std::size_t> widths(header_.size(), 0);
  for (std::size_t i = 0; i < header_.size(); ++i) widths[i] = width(header_[i]);
  for (const auto& r : rows_) {
    if (r.raw) continue;
    for (std::size_t i = 0; i < r.cells.size(); ++i)
      widths[i] = std::max(widths[i], width(r.cells[i]));
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out = indent;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      const std::size_t pad = widths[i] - width(cells[i]);
      const bool last = i + 1 == cells.size();
      if (right_[i]) out.append(pad, ' ');
      out += cells[i];
      if (!right_[i] && !last) out.append(pad, ' ');
      if (!last) out += "  ";
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out + "\n";
  };
  std::string out = line(header_);
  for (const auto& r : rows_) out += r.raw ? indent + r.cells[0] + "\n" : line(r.cells);
  return out;
}

std::string format_count(std::uint64_t n) {
  char buf[32];
  const auto v = static_cast<double>(n);
  if (n >= 1'000'000'000ull)
    std::snprintf(buf, sizeof buf, "%.2f B", v / 1e9);
  else if (n >= 1'000'000ull)
    std::snprintf(buf, sizeof buf, "%.2f M", v / 1e6);
  else if (n >= 1'000ull)
    std::snprintf(buf, sizeof buf, "%.2f K", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(n));
  return buf;
}

std::string format_gb(std::uint64_t bytes) {
  return format_bytes(bytes, false, 2);
}

}  // namespace dmem::cli
