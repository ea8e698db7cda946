// Internal JSON helpers shared by format readers and writers: a strict parser (duplicate keys and
// deep nesting rejected, which nlohmann's DOM parser accepts silently), a UTF-8 validator and a
// string escaper that writes exactly what serde_json writes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace dmem::detail {

/// Why strict parsing failed. `offset` is a byte offset into the text (syntax errors only).
struct JsonError {
  enum class Kind { syntax, duplicate_key, too_deep };
  Kind kind = Kind::syntax;
  std::string message;
  std::size_t offset = 0;
  std::string key;  ///< duplicate_key: the repeated key
};

/// Parses one JSON value spanning all of `text` (surrounding whitespace allowed). Rejects
/// duplicate object keys, nesting deeper than `max_depth`, a byte order mark and comments.
/// Never throws. Returns false and fills `error` on failure.
[[nodiscard]] bool parse_json_strict(std::string_view text, nlohmann::json& out, JsonError& error,
                                     std::size_t max_depth = 64) noexcept;

/// nlohmann's "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error …"
/// in our own words: callers add their rule id and the byte offset, so only the reason is kept.
/// Every parser (DOM or SAX) reports syntax errors through this.
[[nodiscard]] std::string plain_parse_message(std::string_view what);

/// True when `text` is well-formed UTF-8 (no overlong forms, surrogates or code points above
/// U+10FFFF). On failure `*bad_offset` (when given) is the offset of the first bad byte.
[[nodiscard]] bool is_valid_utf8(std::string_view text, std::size_t* bad_offset = nullptr) noexcept;

/// Serialises `j` (indent < 0: one line). Strings that are not valid UTF-8 have each bad byte
/// replaced by U+FFFD; never throws. Every JSON that dmem writes goes through here.
[[nodiscard]] std::string dump_json(const nlohmann::json& j, int indent = -1) noexcept;

/// Appends `text` as a JSON string literal with serde_json's escaping: `"` `\` and control
/// characters only (\b \f \n \r \t, else \u00xx in lower-case hex); everything else verbatim.
void append_json_string(std::string& out, std::string_view text);

}  // namespace dmem::detail
