// Hostile names in messages (issue 6, class 7): every error is one clean line. Names with NUL,
// newlines, ANSI escapes or invalid UTF-8 are shown as \xNN, and JSON parse errors speak our
// words (no "[json.exception…]") with a rule id and the byte offset.
#include <catch2/catch.hpp>

#include <string>

#include "core/text_escape.hpp"
#include "dmem/hardware.hpp"
#include "dmem/status.hpp"
#include "dmem/strategy.hpp"
#include "format/diffusers.hpp"
#include "hw/hw_detail.hpp"
#include "support/test_support.hpp"

using dmem::Errc;
using dmem::Status;
using dmem::detail::escape_text;

namespace {

// True when `line` has no byte a terminal acts on and no line break.
bool is_clean_line(const std::string& line) {
  for (unsigned char c : line)
    if (c < 0x20 || c == 0x7F) return false;
  return dmem::detail::is_plain_text(line);
}

}  // namespace

TEST_CASE("escape_text writes control bytes and invalid UTF-8 as \\xNN", "[hostile][text]") {
  using namespace std::string_literals;
  CHECK(escape_text("plain name.weight") == "plain name.weight");
  CHECK(escape_text("a\nb") == "a\\x0Ab");
  CHECK(escape_text("nul\0cut"s) == "nul\\x00cut");
  CHECK(escape_text("\x1b[2Jcleared") == "\\x1B[2Jcleared");
  CHECK(escape_text("del\x7f") == "del\\x7F");
  CHECK(escape_text("bad\xff\xfe") == "bad\\xFF\\xFE");
  CHECK(escape_text("cut\xe2\x82") == "cut\\xE2\\x82");           // truncated sequence
  CHECK(escape_text("\xc0\xaf") == "\\xC0\\xAF");                 // overlong '/'
  CHECK(escape_text("csi\xc2\x9b") == "csi\\xC2\\x9B");           // C1 CSI, valid UTF-8
  CHECK(escape_text("rtl\xe2\x80\xae") == "rtl\\xE2\\x80\\xAE");  // U+202E override
  CHECK(escape_text("caf\xc3\xa9 \xe5\x9b\xbe") == "caf\xc3\xa9 \xe5\x9b\xbe");  // kept as is
  CHECK(escape_text("two\nlines\n", true) == "two\nlines\n");
  const std::string once = escape_text("x\x1b\xff\n");
  CHECK(escape_text(once) == once);  // escaping is idempotent
}

TEST_CASE("Status::to_string is one clean line whatever the names hold", "[hostile][text]") {
  using namespace std::string_literals;
  Status s(Errc::format_error, "tensor name 'a\nb' is odd");
  s.with_file("dir/\x1b[2J\x1b[Hevil\n.safetensors")
      .with_tensor("w\0hidden"s)
      .with_offset(8)
      .with_rule("safetensors.name")
      .with_hint("re-export");
  const std::string line = s.to_string();
  CHECK(is_clean_line(line));
  // Nothing is cut at the NUL: the reason, rule and hint all follow.
  CHECK(line ==
        "dir/\\x1B[2J\\x1B[Hevil\\x0A.safetensors: offset 8: tensor 'w\\x00hidden': tensor name "
        "'a\\x0Ab' is odd [rule safetensors.name] (hint: re-export)");
}

TEST_CASE("JSON syntax errors carry our wording, a rule id and the offset", "[hostile][text]") {
  SECTION("strategy") {
    auto r = dmem::strategy_from_json("{\"version\": 1, \"components\": [x]}");
    REQUIRE_FALSE(r);
    const std::string line = r.status().to_string();
    INFO(line);
    CHECK(line.find("json.exception") == std::string::npos);
    CHECK(r.status().rule() == "strategy.json");
    REQUIRE(r.status().has_offset());
    CHECK(r.status().offset() == 30);  // the x
  }
  SECTION("calibration") {
    dmem::Hardware hw;
    Status s = dmem::detail::apply_calibration_text(hw, "{\"h2d_pinned_gbps\": }", "cal.json");
    REQUIRE_FALSE(s);
    INFO(s.to_string());
    CHECK(s.to_string().find("json.exception") == std::string::npos);
    CHECK(s.rule() == "calibration.json");
    CHECK(s.has_offset());
  }
  SECTION("config.json") {
    auto r = dmem::detail::parse_json_object("{\"_class_name\": \"A\",,}", "vae/config.json");
    REQUIRE_FALSE(r);
    INFO(r.status().to_string());
    CHECK(r.status().to_string().find("json.exception") == std::string::npos);
    CHECK_FALSE(r.status().rule().empty());
    CHECK(r.status().has_offset());
  }
}

TEST_CASE("a hostile key in a calibration file is shown escaped and short", "[hostile][text]") {
  dmem::Hardware hw;
  // JSON escapes become raw ESC and BEL bytes in the key.
  const std::string key = "\\u001b]0;pwned\\u0007" + std::string(5000, 'k');
  Status s = dmem::detail::apply_calibration_text(hw, "{\"" + key + "\": 1}", "cal.json");
  REQUIRE_FALSE(s);
  const std::string line = s.to_string();
  CHECK(is_clean_line(line));
  CHECK(line.size() < 600);
  CHECK(s.rule() == "calibration.key");
}

TEST_CASE("the CLI prints one escaped line for a file with a hostile name",
          "[hostile][text][cli]") {
  dmem::test::TempDir dir;
  // The name holds a newline and the "clear screen" escape; the shell's printf builds it.
  const std::string raw = dir.file("x\n\x1b[2J.safetensors");
  dmem::test::write_file(raw, std::string_view("\x08\x00\x00\x00\x00\x00\x00\x00{}", 10));
  std::string err;
  const std::string arg = std::string("\"")
                              .append(dir.path().string())
                              .append("/$(printf 'x\\n\\033[2J.safetensors')\"");
  const int rc = dmem::test::run_command(dmem::test::cli_path() + " inspect " + arg, &err);
  INFO(err);
  CHECK(rc == 2);
  REQUIRE_FALSE(err.empty());
  CHECK(err.back() == '\n');
  const std::string line = err.substr(0, err.size() - 1);
  CHECK(is_clean_line(line));
  CHECK(line.find("x\\x0A\\x1B[2J.safetensors") != std::string::npos);
  CHECK(line.find("[rule ") != std::string::npos);
}
