// Helpers shared by tests: temporary folders and raw file writing for crafted bad inputs.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace dmem::test {

/// A fresh folder under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  [[nodiscard]] std::string file(std::string_view name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

void write_file(const std::string& path, const void* data, std::size_t size);
void write_file(const std::string& path, std::string_view text);
std::vector<std::uint8_t> read_file(const std::string& path);

/// Runs a command through the shell; returns its exit status and captures stdout (+stderr when
/// `merge_stderr`).
int run_command(const std::string& command, std::string* output, bool merge_stderr = true);

/// The dmem CLI built with the tests.
std::string cli_path();

}  // namespace dmem::test
