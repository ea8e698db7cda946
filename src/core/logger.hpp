// Internal: one private spdlog logger per owner, feeding the host's callback. Never registered
// in spdlog's global registry (spdlog issues #1448, #3003), so hosts that use spdlog keep theirs.
#pragma once

#include <memory>
#include <string_view>

#include <fmt/format.h>

#include "dmem/log.hpp"

namespace spdlog {
class logger;
}

namespace dmem::detail {

class Logger {
 public:
  explicit Logger(LogConfig config = {});
  ~Logger();
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  void set_level(LogLevel level) noexcept;
  [[nodiscard]] bool enabled(LogLevel level) const noexcept;
  void log(LogLevel level, std::string_view message) noexcept;

  template <class... Args>
  void logf(LogLevel level, fmt::format_string<Args...> format, Args&&... args) noexcept {
    if (!enabled(level)) return;
    log(level, fmt::format(format, std::forward<Args>(args)...));
  }

 private:
  std::shared_ptr<spdlog::logger> logger_;
  LogLevel level_;
};

}  // namespace dmem::detail
