// Plugin discovery: directories are listed with std::filesystem's error_code overloads (the
// library builds without exceptions), in a fixed order so that "the first id wins" is
// predictable.
#include "plugin_host/discovery.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string_view>
#include <system_error>

namespace dmem::detail {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPrefix = "dmem_plugin_";
constexpr std::string_view kSuffix = ".so";

bool ends_with_so(const std::string& name) {
  return name.size() > kSuffix.size() && name.ends_with(kSuffix);
}

/// An entry the user named (explicit or DMEM_PLUGIN_PATH): reporting it missing helps; the
/// default directories usually do not exist and are not worth a line.
struct Entry {
  std::string path;
  bool named_by_user = false;
};

std::vector<Entry> entries(const PluginSearch& search, const SearchRoots& roots) {
  std::vector<Entry> out;
  for (const auto& p : search.paths)
    if (!p.empty()) out.push_back({p, true});
  if (search.environment) {
    std::string_view env = roots.environment;
    while (!env.empty()) {
      const std::size_t colon = env.find(':');
      const std::string_view item = env.substr(0, colon);
      if (!item.empty()) out.push_back({std::string(item), true});
      if (colon == std::string_view::npos) break;
      env.remove_prefix(colon + 1);
    }
  }
  if (search.installed && !roots.installed_dir.empty()) out.push_back({roots.installed_dir, false});
  if (search.beside_executable && !roots.executable_dir.empty())
    out.push_back({(fs::path(roots.executable_dir) / "plugins").string(), false});
  return out;
}

}  // namespace

SearchRoots process_search_roots() noexcept {
  SearchRoots roots;
  if (const char* env = std::getenv("DMEM_PLUGIN_PATH")) roots.environment = env;
  roots.installed_dir = DMEM_INSTALLED_PLUGIN_DIR;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) roots.executable_dir = exe.parent_path().string();
  return roots;
}

std::vector<std::string> search_entries(const PluginSearch& search,
                                        const SearchRoots& roots) noexcept {
  std::vector<std::string> out;
  for (auto& e : entries(search, roots)) out.push_back(std::move(e.path));
  return out;
}

Candidates find_candidates(const PluginSearch& search, const SearchRoots& roots) noexcept {
  Candidates found;
  std::set<std::string> seen;  // canonical paths already listed
  auto add = [&](const fs::path& file) {
    std::error_code ec;
    const fs::path canonical = fs::weakly_canonical(file, ec);
    if (seen.insert(ec ? file.string() : canonical.string()).second)
      found.files.push_back(file.string());
  };
  for (const Entry& e : entries(search, roots)) {
    std::error_code ec;
    const fs::file_status st = fs::status(e.path, ec);
    if (fs::is_regular_file(st)) {
      add(e.path);
      continue;
    }
    if (!fs::is_directory(st)) {
      if (e.named_by_user)
        found.ignored.push_back(
            {e.path, Status(Errc::not_found, "plugin path is neither a file nor a directory")
                         .with_rule("plugin.path")
                         .with_file(e.path)
                         .with_hint("check the path given on the command line or in "
                                    "DMEM_PLUGIN_PATH (directories or files, ':'-separated)")});
      continue;
    }
    std::vector<fs::path> files;
    for (fs::directory_iterator it(e.path, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code fec;
      if (it->is_regular_file(fec) && ends_with_so(it->path().filename().string()))
        files.push_back(it->path());
    }
    if (ec) {
      found.ignored.push_back(
          {e.path, Status(Errc::io_error, "cannot list the plugin directory: " + ec.message())
                       .with_rule("plugin.path")
                       .with_file(e.path)
                       .with_hint("check the directory's permissions")});
      continue;
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      if (f.filename().string().starts_with(kPrefix)) {
        add(f);
        continue;
      }
      std::string hint = "plugin libraries in a plugin directory are named ";
      hint += kPrefix;
      hint +=
          "<name>.so (dmem_add_plugin names them after their target): rename it, or name the "
          "file itself with --path or DMEM_PLUGIN_PATH";
      found.ignored.push_back({f.string(), Status(Errc::not_found,
                                                  "not loaded: the file name does not start "
                                                  "with dmem_plugin_")
                                               .with_rule("plugin.name")
                                               .with_file(f.string())
                                               .with_hint(std::move(hint))});
    }
  }
  return found;
}

}  // namespace dmem::detail
