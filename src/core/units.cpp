#include "dmem/units.hpp"

#include <array>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <string>

namespace dmem {
inline namespace v1 {

namespace {
struct Suffix {
  std::string_view text;
  double factor;
};
// Longest spellings first so "GiB" is not read as "G".
// PiB / PB: format_bytes writes them, so what dmem prints reads back.
constexpr std::array<Suffix, 19> kSuffixes{{
    {"kib", 1024.0},
    {"mib", 1048576.0},
    {"gib", 1073741824.0},
    {"tib", 1099511627776.0},
    {"pib", 1125899906842624.0},
    {"kb", 1e3},
    {"mb", 1e6},
    {"gb", 1e9},
    {"tb", 1e12},
    {"pb", 1e15},
    {"k", 1024.0},
    {"m", 1048576.0},
    {"g", 1073741824.0},
    {"t", 1099511627776.0},
    {"b", 1.0},
    {"bytes", 1.0},
    {"byte", 1.0},
    {"ki", 1024.0},
    {"gi", 1073741824.0},
}};

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}
}  // namespace

Result<std::uint64_t> parse_bytes(std::string_view text) noexcept {
  auto bad = [&](const char* why) {
    return Status(Errc::invalid_argument,
                  "cannot read '" + std::string(text) + "' as a byte quantity: " + why)
        .with_rule("units.bytes")
        .with_hint(
            "write it like 24GiB, 24GB, 24G, 512MiB or 1.5TiB; a bare number is whole bytes");
  };
  std::size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  std::size_t num_begin = i;
  bool seen_digit = false, seen_dot = false;
  while (i < text.size()) {
    char c = text[i];
    if (std::isdigit(static_cast<unsigned char>(c))) {
      seen_digit = true;
    } else if (c == '.' && !seen_dot) {
      seen_dot = true;
    } else {
      break;
    }
    ++i;
  }
  if (!seen_digit) return bad("no number");
  std::string number(text.substr(num_begin, i - num_begin));
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  std::size_t end = text.size();
  while (end > i && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  std::string suffix = lower(text.substr(i, end - i));
  double factor = 1.0;
  if (!suffix.empty()) {
    bool found = false;
    for (const auto& s : kSuffixes) {
      if (suffix == s.text) {
        factor = s.factor;
        found = true;
        break;
      }
    }
    if (!found) return bad("unknown unit");
  }
  char* endp = nullptr;
  double value = std::strtod(number.c_str(), &endp);
  if (endp == number.c_str() || !std::isfinite(value)) return bad("not a number");
  // A bare number counts bytes: "--vram 0.4" is a slip (0.4 GiB?), not 0 bytes.
  if (factor == 1.0 && seen_dot) return bad("a number without a unit (or with B) is whole bytes");
  double bytes = std::round(value * factor);
  if (bytes >= 18446744073709551616.0) return bad("too large");
  return static_cast<std::uint64_t>(bytes);
}

std::string format_bytes(std::uint64_t bytes, bool binary, int decimals) {
  static constexpr std::array<const char*, 6> kBin{"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  static constexpr std::array<const char*, 6> kDec{"B", "kB", "MB", "GB", "TB", "PB"};
  const double base = binary ? 1024.0 : 1000.0;
  double v = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (v >= base && unit + 1 < kBin.size()) {
    v /= base;
    ++unit;
  }
  char buf[64];
  if (unit == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, "%.*f %s", decimals, v, binary ? kBin[unit] : kDec[unit]);
  }
  return buf;
}

}  // namespace v1
}  // namespace dmem
