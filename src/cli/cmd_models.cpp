// `dmem models`: the built-in catalog.
#include <cstdio>

#include "cli/commands.hpp"
#include "cli/table.hpp"
#include "dmem/catalog.hpp"

namespace dmem::cli {

int run_models(const Args& args) {
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::printf(
          "usage: dmem models\n  lists the built-in catalog (plan and inspect them with no "
          "download)\n");
      return 0;
    }
    std::fprintf(stderr, "dmem models: unexpected argument '%s'\n", a.c_str());
    return 2;
  }
  Table table({"name", "model", "pipeline", "description"});
  for (const auto& e : catalog_entries()) table.add({e.name, e.title, e.pipeline, e.description});
  std::fputs(table.render().c_str(), stdout);
  return 0;
}

}  // namespace dmem::cli
