#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

// DESIGN.md §2: public headers include only the standard library and each other.
TEST_CASE("public headers include only the standard library and dmem headers", "[headers]") {
  const std::filesystem::path dir = std::string(DMEM_SOURCE_DIR) + "/include/dmem";
  const std::regex include_re(R"(^\s*#\s*include\s*([<"])([^>"]+)[>"])");
  int headers = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    const auto ext = entry.path().extension();
    if (ext != ".hpp" && ext != ".h") continue;
    ++headers;
    std::ifstream in(entry.path());
    std::string line;
    while (std::getline(in, line)) {
      std::smatch m;
      if (!std::regex_search(line, m, include_re)) continue;
      const std::string what = m[2];
      INFO(entry.path().string() << ": " << line);
      if (m[1] == "\"") {
        CHECK(what.rfind("dmem/", 0) == 0);
      } else {
        // Standard headers have no directory and no extension (C ABI headers may use <stddef.h>
        // ...).
        const bool std_cpp =
            what.find('/') == std::string::npos && what.find('.') == std::string::npos;
        const bool std_c =
            ext == ".h" && (what == "stddef.h" || what == "stdint.h" || what == "stdbool.h");
        CHECK((std_cpp || std_c));
      }
    }
  }
  CHECK(headers >= 10);
}
