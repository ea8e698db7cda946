#include "plugin_host/plugin_log.hpp"

#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "core/logger.hpp"

namespace dmem::detail {

namespace {

constexpr std::size_t kMaxMessage = 4096;  // a plugin's message is cut here, never read past

struct PluginLogTarget {
  std::string id;
  dmem_plugin_host host{};
};

struct PluginLogState {
  std::mutex mu;
  std::deque<PluginLogTarget> targets;  // stable addresses: plugins keep pointers into it
  std::shared_ptr<Logger> logger;
};

// Deliberately leaked: a plugin may log from its own threads until the process ends.
PluginLogState& state() {
  static auto* s = new PluginLogState();
  return *s;
}

void log_from_plugin(void* user, std::int32_t level, const char* message) {
  if (user == nullptr || message == nullptr) return;
  if (level < DMEM_PLUGIN_LOG_TRACE || level > DMEM_PLUGIN_LOG_ERROR) level = DMEM_PLUGIN_LOG_ERROR;
  std::shared_ptr<Logger> logger;
  {
    const std::lock_guard<std::mutex> lock(state().mu);
    logger = state().logger;
  }
  const auto lvl = static_cast<LogLevel>(level);
  if (!logger || !logger->enabled(lvl)) return;
  const auto* target = static_cast<const PluginLogTarget*>(user);
  std::string text = "[";
  text += target->id;
  text += "] ";
  text.append(message, strnlen(message, kMaxMessage));
  logger->log(lvl, text);
}

}  // namespace

const dmem_plugin_host& plugin_host_for(std::string_view id) noexcept {
  PluginLogState& s = state();
  const std::lock_guard<std::mutex> lock(s.mu);
  for (const PluginLogTarget& t : s.targets)
    if (t.id == id) return t.host;
  PluginLogTarget& t = s.targets.emplace_back();
  t.id = std::string(id);
  t.host.struct_size = sizeof(dmem_plugin_host);
  t.host.abi_major = DMEM_PLUGIN_ABI_MAJOR;
  t.host.abi_minor = DMEM_PLUGIN_ABI_MINOR;
  t.host.user = &t;
  t.host.log = &log_from_plugin;
  return t.host;
}

void set_plugin_log(LogConfig config) noexcept {
  auto logger = std::make_shared<Logger>(std::move(config));
  const std::lock_guard<std::mutex> lock(state().mu);
  state().logger = std::move(logger);
}

}  // namespace dmem::detail
