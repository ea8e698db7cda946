#include "format/temp_folder.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <system_error>

#include "format/file_io.hpp"

namespace dmem::detail {

namespace fs = std::filesystem;

TempFolder::~TempFolder() {
  if (path_.empty()) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

Status TempFolder::create(const std::string& dir, const char* tag) {
  static std::atomic<unsigned> counter{0};
  const fs::path target(dir);
  fs::path parent = target.parent_path();
  if (parent.empty()) parent = ".";
  const std::string base = target.filename().string();
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string leaf = ".";
    leaf.append(base).append(".").append(tag).append(".").append(std::to_string(::getpid()));
    leaf.append(".").append(std::to_string(counter++));
    const std::string p = (parent / leaf).string();
    if (::mkdir(p.c_str(), 0755) == 0) {
      path_ = p;
      return Status::ok();
    }
    if (errno != EEXIST) return os_error("cannot create folder", p, errno);
  }
  return Status(Errc::io_error, "cannot find a free temporary folder name").with_file(dir);
}

Status TempFolder::commit(const std::string& dir) {
  if (::rename(path_.c_str(), dir.c_str()) != 0) {
    const int err = errno;
    Status st = os_error("cannot rename the written folder onto", dir, err);
    if (err == ENOTEMPTY || err == EEXIST) st.with_hint("the folder was filled while writing");
    return st;
  }
  path_.clear();
  return Status::ok();
}

}  // namespace dmem::detail
