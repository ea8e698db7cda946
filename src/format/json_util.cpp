#include "format/json_util.hpp"

#include <string_view>
#include <utility>
#include <vector>

namespace dmem::detail {

namespace {

using json = nlohmann::json;

}  // namespace

std::string plain_parse_message(std::string_view what) {
  if (what.substr(0, 16) == "[json.exception.") {
    const auto close = what.find("] ");
    if (close != std::string_view::npos) what.remove_prefix(close + 2);
  }
  constexpr std::string_view kAt = "parse error at ";
  if (what.substr(0, kAt.size()) == kAt) what.remove_prefix(kAt.size());
  constexpr std::string_view kPe = "parse error: ";
  if (what.substr(0, kPe.size()) == kPe) what.remove_prefix(kPe.size());
  return std::string(what);
}

namespace {

// Builds a DOM like nlohmann's own SAX DOM parser, but refuses duplicate keys and deep nesting.
class StrictDomBuilder {
 public:
  StrictDomBuilder(json& root, JsonError& error, std::size_t max_depth)
      : root_(root), error_(error), max_depth_(max_depth) {}

  bool null() { return add(json(nullptr)); }
  bool boolean(bool v) { return add(json(v)); }
  bool number_integer(json::number_integer_t v) { return add(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return add(json(v)); }
  bool number_float(json::number_float_t v, const json::string_t& /*text*/) { return add(json(v)); }
  bool string(json::string_t& v) { return add(json(std::move(v))); }
  bool binary(json::binary_t& /*v*/) { return fail_syntax("binary values are not JSON"); }

  bool start_object(std::size_t /*n*/) { return open(json::object()); }
  bool start_array(std::size_t /*n*/) { return open(json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(json::string_t& k) {
    json& obj = *stack_.back();
    if (obj.contains(k)) {
      error_.kind = JsonError::Kind::duplicate_key;
      error_.key = k;
      error_.message = "duplicate key \"" + k + "\"";
      if (!keys_.empty() && !keys_.back().empty()) error_.message += " in \"" + keys_.back() + "\"";
      return false;
    }
    pending_key_ = std::move(k);
    return true;
  }

  bool parse_error(std::size_t position, const std::string& /*token*/,
                   const nlohmann::detail::exception& ex) {
    error_.kind = JsonError::Kind::syntax;
    error_.offset = position > 0 ? position - 1 : 0;
    error_.message = plain_parse_message(ex.what());
    return false;
  }

 private:
  bool fail_syntax(const char* message) {
    error_.kind = JsonError::Kind::syntax;
    error_.message = message;
    return false;
  }

  // Places `value` where the parser is (root, array element or object member); returns it.
  json* place(json&& value) {
    if (stack_.empty()) {
      root_ = std::move(value);
      return &root_;
    }
    json& top = *stack_.back();
    if (top.is_array()) {
      top.push_back(std::move(value));
      return &top.back();
    }
    json& slot = top[pending_key_];
    slot = std::move(value);
    return &slot;
  }

  bool add(json&& value) {
    place(std::move(value));
    return true;
  }

  bool open(json&& container) {
    if (stack_.size() >= max_depth_) {
      error_.kind = JsonError::Kind::too_deep;
      error_.message = "JSON nested deeper than " + std::to_string(max_depth_) + " levels";
      return false;
    }
    const bool in_object = !stack_.empty() && stack_.back()->is_object();
    keys_.push_back(in_object ? pending_key_ : std::string());
    stack_.push_back(place(std::move(container)));
    return true;
  }

  bool close() {
    stack_.pop_back();
    keys_.pop_back();
    return true;
  }

  json& root_;
  JsonError& error_;
  std::size_t max_depth_;
  std::vector<json*> stack_;
  std::vector<std::string> keys_;  // the key each open container was stored under
  std::string pending_key_;
};

}  // namespace

bool parse_json_strict(std::string_view text, nlohmann::json& out, JsonError& error,
                       std::size_t max_depth) noexcept {
  // nlohmann skips a UTF-8 byte order mark silently; JSON parsers such as serde_json do not.
  std::size_t i = 0;
  while (i < text.size() &&
         (text[i] == ' ' || text[i] == '\t' || text[i] == '\n' || text[i] == '\r'))
    ++i;
  if (text.size() - i >= 3 && static_cast<unsigned char>(text[i]) == 0xEF &&
      static_cast<unsigned char>(text[i + 1]) == 0xBB &&
      static_cast<unsigned char>(text[i + 2]) == 0xBF) {
    error.kind = JsonError::Kind::syntax;
    error.offset = i;
    error.message = "a byte order mark is not allowed in JSON";
    return false;
  }
  out = nlohmann::json();
  StrictDomBuilder builder(out, error, max_depth);
  const bool ok = nlohmann::json::sax_parse(text.begin(), text.end(), &builder,
                                            nlohmann::json::input_format_t::json, true, false);
  if (!ok) out = nlohmann::json();
  return ok;
}

bool is_valid_utf8(std::string_view text, std::size_t* bad_offset) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  auto fail = [&](std::size_t at) {
    if (bad_offset) *bad_offset = at;
    return false;
  };
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // UTF-16 surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
    } else {
      return fail(i);  // continuation byte, overlong lead C0/C1, or F5..FF
    }
    if (n - i < len) return fail(i);
    if (s[i + 1] < lo || s[i + 1] > hi) return fail(i + 1);
    for (std::size_t k = 2; k < len; ++k)
      if ((s[i + k] & 0xC0) != 0x80) return fail(i + k);
    i += len;
  }
  return true;
}

std::string dump_json(const nlohmann::json& j, int indent) noexcept {
  // replace: a name that is not UTF-8 (a tensor name from a GGUF, a path) becomes U+FFFD instead
  // of a type_error.316 exception, which -fno-exceptions code cannot survive.
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 0xF]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

}  // namespace dmem::detail
