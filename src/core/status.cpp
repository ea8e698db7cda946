#include "dmem/status.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "core/text_escape.hpp"

namespace dmem {
inline namespace v1 {

std::string_view errc_name(Errc code) noexcept {
  switch (code) {
    case Errc::ok:
      return "ok";
    case Errc::invalid_argument:
      return "invalid_argument";
    case Errc::not_found:
      return "not_found";
    case Errc::io_error:
      return "io_error";
    case Errc::format_error:
      return "format_error";
    case Errc::unsupported:
      return "unsupported";
    case Errc::limit_exceeded:
      return "limit_exceeded";
    case Errc::out_of_memory:
      return "out_of_memory";
    case Errc::validation_failed:
      return "validation_failed";
    case Errc::internal:
      return "internal";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  // Names come from untrusted files: every part is escaped so the line stays one line, whole
  // (a NUL would cut it) and inert on a terminal (no ANSI escapes, no newlines).
  std::string out;
  if (!file_.empty()) {
    detail::append_escaped(out, file_);
    out += ": ";
  }
  if (has_offset_) out += "offset " + std::to_string(offset_) + ": ";
  if (!tensor_.empty()) {
    out += "tensor '";
    detail::append_escaped(out, tensor_);
    out += "': ";
  }
  detail::append_escaped(out, message_);
  if (!rule_.empty()) {
    out += " [rule ";
    detail::append_escaped(out, rule_);
    out += "]";
  }
  if (!hint_.empty()) {
    out += " (hint: ";
    detail::append_escaped(out, hint_);
    out += ")";
  }
  return out;
}

namespace {
void default_fatal(const char* message) noexcept {
  std::fprintf(stderr, "%s\n", message);
  std::fflush(stderr);
  std::abort();
}
std::atomic<FatalHandler> g_fatal{&default_fatal};
}  // namespace

void set_fatal_handler(FatalHandler handler) noexcept {
  g_fatal.store(handler ? handler : &default_fatal);
}

void fatal(const char* message) noexcept {
  g_fatal.load()(message);
  std::abort();  // a handler must not return; make sure
}

}  // namespace v1
}  // namespace dmem
