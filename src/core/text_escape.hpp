// Escaping of untrusted names (file paths, tensor names, JSON keys) before they reach a terminal or
// a one-line error message: a name may hold NUL, newlines, ANSI escapes or invalid UTF-8.
#pragma once

#include <string>
#include <string_view>

namespace dmem::detail {

/// Appends `text` with every byte a terminal could act on written as `\xNN` (upper-case hex):
/// C0 controls (NUL, newline, ESC …), DEL, the C1 controls U+0080…U+009F, bidirectional and
/// line-separator marks (U+200E/F, U+2028/9, U+202A…E, U+2066…9) and every byte that is not part
/// of well-formed UTF-8. Printable ASCII and other well-formed UTF-8 pass unchanged, so escaping
/// twice gives the same text as escaping once.
/// `keep_newlines` leaves '\n' as is, for multi-line reports whose lines dmem composed.
void append_escaped(std::string& out, std::string_view text, bool keep_newlines = false);

/// `text` escaped as by append_escaped.
[[nodiscard]] std::string escape_text(std::string_view text, bool keep_newlines = false);

/// True when escape_text(text) == text (nothing to escape).
[[nodiscard]] bool is_plain_text(std::string_view text) noexcept;

}  // namespace dmem::detail
