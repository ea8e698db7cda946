#include "cli/output.hpp"

#include <cstdio>
#include <string>

#include "core/text_escape.hpp"
#include "format/json_util.hpp"

namespace dmem::cli {

int fail(std::string_view command, std::string_view what, int status) {
  std::string line = "dmem";
  if (!command.empty()) line += " ";
  line += command;
  line += ": ";
  // Idempotent: a Status::to_string() line is already escaped and passes unchanged.
  detail::append_escaped(line, what);
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
  return status;
}

void print_text(std::string_view text) {
  const std::string safe = detail::escape_text(text, /*keep_newlines=*/true);
  std::fwrite(safe.data(), 1, safe.size(), stdout);
}

void print_json(const nlohmann::json& j) {
  std::string out = detail::dump_json(j, 2);
  out += '\n';
  std::fwrite(out.data(), 1, out.size(), stdout);
}

}  // namespace dmem::cli
