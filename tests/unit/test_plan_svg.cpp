// `dmem plan --svg`: well-formed XML (checked by a small parser here, no XML library needed), the
// expected elements (per plan: full title, VRAM and RAM bars per phase, GiB ticks, usable and
// total lines, a time bar), text that stays inside the picture, and a render to PNG with
// rsvg-convert when the tool is installed (skipped otherwise).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/test_support.hpp"

using dmem::test::cli_path;
using dmem::test::run_command;
using dmem::test::TempDir;

namespace {

struct Element {
  std::string name;
  std::map<std::string, std::string> attrs;
  std::string text;  ///< character data directly inside (entities decoded)
  int parent = -1;
};

// A strict reader for the XML subset an SVG writer emits: declaration, elements, attributes in
// double quotes, character data with the five predefined entities. Any other construct, an
// unbalanced tag or a bad entity makes it fail with a message.
struct Xml {
  std::vector<Element> elements;
  std::string error;

  static bool name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == ':' ||
           c == '.';
  }

  bool decode(const std::string& raw, std::string& out) {
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] == '<') return fail("'<' in character data");
      if (raw[i] != '&') {
        out += raw[i];
        continue;
      }
      const std::size_t semi = raw.find(';', i);
      if (semi == std::string::npos) return fail("unterminated entity");
      const std::string e = raw.substr(i + 1, semi - i - 1);
      static const std::map<std::string, char> known = {
          {"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
      auto it = known.find(e);
      if (it == known.end()) return fail("unknown entity &" + e + ";");
      out += it->second;
      i = semi;
    }
    return true;
  }

  bool fail(const std::string& what) {
    if (error.empty()) error = what;
    return false;
  }

  bool parse(const std::string& s) {
    std::size_t i = 0;
    if (s.rfind("<?xml", 0) == 0) {
      i = s.find("?>");
      if (i == std::string::npos) return fail("unterminated declaration");
      i += 2;
    }
    std::vector<int> open;
    bool root_done = false;
    while (i < s.size()) {
      const std::size_t lt = s.find('<', i);
      std::string raw = s.substr(i, (lt == std::string::npos ? s.size() : lt) - i);
      std::string text;
      if (!decode(raw, text)) return false;
      if (open.empty()) {
        if (text.find_first_not_of(" \n\r\t") != std::string::npos)
          return fail("text outside the root element");
      } else {
        elements[static_cast<std::size_t>(open.back())].text += text;
      }
      if (lt == std::string::npos) break;
      i = lt + 1;
      if (i < s.size() && s[i] == '/') {
        std::size_t e = i + 1;
        while (e < s.size() && name_char(s[e])) ++e;
        const std::string name = s.substr(i + 1, e - i - 1);
        if (open.empty() || elements[static_cast<std::size_t>(open.back())].name != name)
          return fail("</" + name + "> closes nothing open");
        if (e >= s.size() || s[e] != '>') return fail("bad end tag " + name);
        open.pop_back();
        if (open.empty()) root_done = true;
        i = e + 1;
        continue;
      }
      if (root_done) return fail("a second root element");
      std::size_t e = i;
      while (e < s.size() && name_char(s[e])) ++e;
      Element el;
      el.name = s.substr(i, e - i);
      if (el.name.empty()) return fail("empty tag name");
      el.parent = open.empty() ? -1 : open.back();
      i = e;
      bool self_closing = false;
      for (;;) {
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])) != 0) ++i;
        if (i >= s.size()) return fail("unterminated tag " + el.name);
        if (s[i] == '>') {
          ++i;
          break;
        }
        if (s.compare(i, 2, "/>") == 0) {
          self_closing = true;
          i += 2;
          break;
        }
        std::size_t ne = i;
        while (ne < s.size() && name_char(s[ne])) ++ne;
        const std::string an = s.substr(i, ne - i);
        if (an.empty() || ne + 1 >= s.size() || s[ne] != '=' || s[ne + 1] != '"')
          return fail("bad attribute in " + el.name);
        const std::size_t close = s.find('"', ne + 2);
        if (close == std::string::npos) return fail("unterminated attribute " + an);
        std::string value;
        if (!decode(s.substr(ne + 2, close - ne - 2), value)) return false;
        if (!el.attrs.emplace(an, value).second) return fail("attribute " + an + " twice");
        i = close + 1;
      }
      elements.push_back(std::move(el));
      if (!self_closing) open.push_back(static_cast<int>(elements.size()) - 1);
    }
    if (!open.empty())
      return fail("<" + elements[static_cast<std::size_t>(open.back())].name + "> never closed");
    if (elements.empty() || elements.front().name != "svg") return fail("root is not <svg>");
    return true;
  }

  bool has_class(const Element& e, const std::string& cls) const {
    auto it = e.attrs.find("class");
    if (it == e.attrs.end()) return false;
    // Appended piece by piece: GCC 12 -O3 gives a false -Wrestrict on "lit" + string.
    std::string c = " ";
    c.append(it->second).append(" ");
    for (std::size_t p = 0; p < cls.size();) {
      std::size_t sp = cls.find(' ', p);
      if (sp == std::string::npos) sp = cls.size();
      std::string word = " ";
      word.append(cls, p, sp - p).append(" ");
      if (c.find(word) == std::string::npos) return false;
      p = sp + 1;
    }
    return true;
  }

  // Elements inside `group` (any depth) carrying every class in `cls`.
  std::vector<const Element*> within(int group, const std::string& cls) const {
    std::vector<const Element*> out;
    for (const auto& e : elements) {
      int p = e.parent;
      while (p != -1 && p != group) p = elements[static_cast<std::size_t>(p)].parent;
      if (p == group && has_class(e, cls)) out.push_back(&e);
    }
    return out;
  }
};

double code_points(const std::string& s) {
  int n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

const std::string kMachine = " --no-probe --gpu rtx4090 --ram 64GiB --disk 500GiB";

}  // namespace

TEST_CASE("dmem plan --svg is well-formed and has titles, axes, budgets and time", "[plan][svg]") {
  TempDir dir;
  const std::string svg = dir.file("plans.svg");
  std::string out;
  REQUIRE(run_command(cli_path() + " plan qwen-image" + kMachine + " --svg " + svg, &out) == 0);
  auto bytes = dmem::test::read_file(svg);
  const std::string text(bytes.begin(), bytes.end());
  Xml x;
  INFO(x.error);
  REQUIRE(x.parse(text));
  const Element& root = x.elements.front();
  REQUIRE(root.attrs.count("width") == 1);
  const int width = std::atoi(root.attrs.at("width").c_str());
  CHECK(width > 0);

  // The plans in rank order, to compare titles with.
  REQUIRE(run_command(cli_path() + " plan qwen-image" + kMachine + " --json", &out, false) == 0);
  auto j = nlohmann::json::parse(out, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());

  std::vector<int> groups;
  for (std::size_t i = 0; i < x.elements.size(); ++i)
    if (x.elements[i].name == "g" && x.has_class(x.elements[i], "plan"))
      groups.push_back(static_cast<int>(i));
  REQUIRE(groups.size() == 6);
  for (std::size_t gi = 0; gi < groups.size(); ++gi) {
    const int g = groups[gi];
    const auto& plan = j["plans"][gi];
    std::string id = "plan-";
    id += plan["id"].get<std::string>();
    CHECK(x.elements[static_cast<std::size_t>(g)].attrs.at("id") == id);
    // The full title: its wrapped lines joined name every component of the strategy.
    std::string title;
    for (const Element* t : x.within(g, "title")) {
      CHECK(code_points(t->text) * 7.4 + std::atof(t->attrs.at("x").c_str()) <= width);
      title += (title.empty() ? "" : " ") + t->text;
    }
    INFO(title);
    std::string head = "#";
    head.append(plan["id"].get<std::string>()).append(" ");
    CHECK(title.rfind(head, 0) == 0);
    for (const auto& c : plan["strategy"]["components"])
      CHECK(title.find(c["component"].get<std::string>() + " ") != std::string::npos);
    CHECK(title.find("…") == std::string::npos);
    // Four phases: stacked VRAM (4 parts) and RAM (2 parts) bars, one time segment each.
    CHECK(x.within(g, "bar vram").size() == 4 * 4);
    CHECK(x.within(g, "bar ram").size() == 4 * 2);
    CHECK(x.within(g, "bar time").size() == 4);
    for (const char* line :
         {"budget vram usable", "budget vram total", "budget ram usable", "budget ram total"})
      CHECK(x.within(g, line).size() == 1);
    // GiB axes with numbers, on two scales.
    const auto ticks = x.within(g, "tick");
    CHECK(ticks.size() >= 4);
    for (const Element* t : ticks)
      CHECK(t->text.find_first_not_of("0123456789.") == std::string::npos);
    bool vram_axis = false, ram_axis = false;
    for (const auto& e : x.elements) {
      vram_axis = vram_axis || e.text == "VRAM (GiB)";
      ram_axis = ram_axis || e.text == "RAM (GiB)";
    }
    CHECK(vram_axis);
    CHECK(ram_axis);
    CHECK(x.within(g, "summary").size() == 1);
    CHECK(x.within(g, "time-total").size() == 1);
  }
  // Every text element stays inside the picture (a 12 px character is at most ~7.4 px wide).
  for (const auto& e : x.elements) {
    if (e.name != "text" || e.attrs.count("text-anchor") != 0) continue;
    const double size =
        e.attrs.count("font-size") != 0 ? std::atof(e.attrs.at("font-size").c_str()) : 12.0;
    CHECK(std::atof(e.attrs.at("x").c_str()) + code_points(e.text) * size * 0.62 <= width);
  }
}

TEST_CASE("dmem plan --svg renders to PNG with rsvg-convert", "[plan][svg]") {
  std::string out;
  if (run_command("command -v rsvg-convert", &out) != 0) {
    WARN("rsvg-convert not installed (Debian librsvg2-bin): render check skipped");
    return;
  }
  TempDir dir;
  const std::string svg = dir.file("cpu.svg"), png = dir.file("cpu.png");
  // CPU-only too: the VRAM chart says so instead of drawing an empty axis.
  REQUIRE(run_command(cli_path() + " plan sdxl --no-probe --gpu none --ram 64GiB --svg " + svg,
                      &out) == 0);
  REQUIRE(run_command("rsvg-convert -o " + png + " " + svg, &out) == 0);
  auto bytes = dmem::test::read_file(png);
  REQUIRE(bytes.size() > 24);
  CHECK(bytes[1] == 'P');
  CHECK(bytes[2] == 'N');
  CHECK(bytes[3] == 'G');
  const auto be32 = [&](std::size_t o) {
    return (std::uint32_t{bytes[o]} << 24) | (std::uint32_t{bytes[o + 1]} << 16) |
           (std::uint32_t{bytes[o + 2]} << 8) | std::uint32_t{bytes[o + 3]};
  };
  CHECK(be32(16) == 1000);  // width of the picture
  CHECK(be32(20) > 200);
  const std::string gpu_svg = dir.file("gpu.svg");
  REQUIRE(run_command(cli_path() + " plan flux1-dev" + kMachine + " --svg " + gpu_svg, &out) == 0);
  CHECK(run_command("rsvg-convert -o " + dir.file("gpu.png") + " " + gpu_svg, &out) == 0);
}
