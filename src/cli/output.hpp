// How every sub-command writes: exit statuses, one escaped line per error, text reports with names
// escaped, and JSON that cannot throw on a name that is not UTF-8.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

namespace dmem::cli {

/// Exit statuses (docs/errors.md, `dmem --help`).
inline constexpr int kExitOk = 0;
inline constexpr int kExitNegative = 1;  ///< validate found violations; plan found no viable plan
inline constexpr int kExitBadInput = 2;  ///< one line on stderr names the file, key or flag
inline constexpr int kExitInternal = 3;  ///< a dmem bug

/// Prints "dmem COMMAND: WHAT" as one line on stderr (names escaped) and returns `status`.
int fail(std::string_view command, std::string_view what, int status = kExitBadInput);

/// Writes a multi-line report to stdout with control characters and invalid UTF-8 escaped.
void print_text(std::string_view text);

/// Writes `j` indented to stdout; invalid UTF-8 in strings becomes U+FFFD.
void print_json(const nlohmann::json& j);

}  // namespace dmem::cli
