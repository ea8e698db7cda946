#include "core/logger.hpp"

#include <mutex>
#include <string>

#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

namespace dmem::detail {

namespace {
spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::trace:
      return spdlog::level::trace;
    case LogLevel::debug:
      return spdlog::level::debug;
    case LogLevel::info:
      return spdlog::level::info;
    case LogLevel::warn:
      return spdlog::level::warn;
    case LogLevel::error:
      return spdlog::level::err;
    case LogLevel::off:
      return spdlog::level::off;
  }
  return spdlog::level::off;
}

LogLevel from_spdlog(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return LogLevel::trace;
    case spdlog::level::debug:
      return LogLevel::debug;
    case spdlog::level::info:
      return LogLevel::info;
    case spdlog::level::warn:
      return LogLevel::warn;
    case spdlog::level::err:
    case spdlog::level::critical:
      return LogLevel::error;
    default:
      return LogLevel::off;
  }
}

// Hands formatted messages to the host callback.
class CallbackSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit CallbackSink(LogCallback callback) : callback_(std::move(callback)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    if (callback_)
      callback_(from_spdlog(msg.level), std::string_view(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}

 private:
  LogCallback callback_;
};
}  // namespace

Logger::Logger(LogConfig config) : level_(config.level) {
  auto sink = std::make_shared<CallbackSink>(std::move(config.callback));
  logger_ = std::make_shared<spdlog::logger>("dmem", std::move(sink));
  logger_->set_level(to_spdlog(level_));
}

Logger::~Logger() = default;

void Logger::set_level(LogLevel level) noexcept {
  level_ = level;
  logger_->set_level(to_spdlog(level));
}

bool Logger::enabled(LogLevel level) const noexcept {
  return level != LogLevel::off && level >= level_;
}

void Logger::log(LogLevel level, std::string_view message) noexcept {
  if (!enabled(level)) return;
  logger_->log(to_spdlog(level), message);
}

}  // namespace dmem::detail
