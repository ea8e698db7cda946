// A folder written whole or not at all: created beside its destination under a hidden, unique
// name, filled, then renamed into place; dropped with its contents on every other path.
#pragma once

#include <string>

#include "dmem/status.hpp"

namespace dmem::detail {

class TempFolder {
 public:
  TempFolder() = default;
  TempFolder(const TempFolder&) = delete;
  TempFolder& operator=(const TempFolder&) = delete;
  ~TempFolder();

  /// Creates ".<name of dir>.<tag>.<pid>.<n>" beside `dir` (mode 0755).
  [[nodiscard]] Status create(const std::string& dir, const char* tag);
  /// Renames the folder onto `dir`, which must not exist or be an empty folder.
  [[nodiscard]] Status commit(const std::string& dir);
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace dmem::detail
