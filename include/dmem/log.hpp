// Logging: the host installs a callback and a level; dmem never touches global logger state.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace dmem {
inline namespace v1 {

enum class LogLevel : std::uint8_t { trace, debug, info, warn, error, off };

/// Receives every message at or above the configured level. Called from dmem's threads; must
/// be thread-safe and must not call back into dmem.
using LogCallback = std::function<void(LogLevel level, std::string_view message)>;

struct LogConfig {
  LogLevel level = LogLevel::warn;
  LogCallback callback;  ///< empty: messages are dropped
};

}  // namespace v1
}  // namespace dmem
