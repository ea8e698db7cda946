#include "core/text_escape.hpp"

#include <cstddef>
#include <cstdint>

namespace dmem::detail {

namespace {

// Length of the well-formed UTF-8 sequence at s[i] and its code point; 0 when malformed.
std::size_t utf8_sequence(const unsigned char* s, std::size_t n, std::size_t i,
                          std::uint32_t& cp) noexcept {
  const unsigned char c = s[i];
  std::size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1Fu;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0Fu;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // UTF-16 surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07u;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (n - i < len || s[i + 1] < lo || s[i + 1] > hi) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if ((s[i + k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[i + k] & 0x3Fu);
  }
  return len;
}

// Code points that steer a terminal or reorder what is shown (Trojan Source), though valid.
bool is_control_code_point(std::uint32_t cp) noexcept {
  return (cp >= 0x80 && cp <= 0x9F) || cp == 0x200E || cp == 0x200F || cp == 0x2028 ||
         cp == 0x2029 || (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

bool plain_ascii(unsigned char c) noexcept {
  return c >= 0x20 && c < 0x7F;
}

void append_hex(std::string& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out += "\\x";
  out.push_back(kHex[c >> 4]);
  out.push_back(kHex[c & 0xF]);
}

}  // namespace

void append_escaped(std::string& out, std::string_view text, bool keep_newlines) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    if (plain_ascii(s[i]) || (keep_newlines && s[i] == '\n')) {
      out.push_back(static_cast<char>(s[i++]));
      continue;
    }
    std::uint32_t cp = 0;
    const std::size_t len = s[i] < 0x80 ? 0 : utf8_sequence(s, n, i, cp);
    if (len == 0 || is_control_code_point(cp)) {
      // Escape the byte (or every byte of a control sequence) and go on after it.
      const std::size_t count = len == 0 ? 1 : len;
      for (std::size_t k = 0; k < count; ++k) append_hex(out, s[i + k]);
      i += count;
      continue;
    }
    out.append(text.data() + i, len);
    i += len;
  }
}

std::string escape_text(std::string_view text, bool keep_newlines) {
  std::string out;
  out.reserve(text.size());
  append_escaped(out, text, keep_newlines);
  return out;
}

bool is_plain_text(std::string_view text) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    if (plain_ascii(s[i])) {
      ++i;
      continue;
    }
    std::uint32_t cp = 0;
    const std::size_t len = s[i] < 0x80 ? 0 : utf8_sequence(s, n, i, cp);
    if (len == 0 || is_control_code_point(cp)) return false;
    i += len;
  }
  return true;
}

}  // namespace dmem::detail
