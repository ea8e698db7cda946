// `dmem plan --svg`: one panel per plan with its full title (wrapped, never cut), a VRAM chart and
// a RAM chart on their own GiB scales (ticks with numbers, usable and total lines) with a stacked
// bar per phase, and the plan's time as a bar on a scale shared by all plans.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "cli/plan_render.hpp"
#include "core/text_escape.hpp"
#include "dmem/units.hpp"
#include "plan/estimator.hpp"

namespace dmem::cli {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
constexpr int kWidth = 1000;
constexpr int kMarginX = 16;
constexpr int kLine = 15;           // text line height at 12 px
constexpr double kCharWidth = 7.4;  // a generous average advance of 12 px DejaVu Sans
constexpr int kPlotH = 150;         // height of a memory chart's plot area
constexpr int kVramX = 64;          // left edge of the VRAM plot (axis labels to its left)
constexpr int kRamX = 564;          // left edge of the RAM plot
constexpr int kPlotW = 330;         // width of each memory plot
constexpr int kTimeX = 64;          // left edge of the time bar
constexpr int kTimeW = 760;         // the slowest plan's bar

const char* const kVramColors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#bab0ac"};
const char* const kVramParts[] = {"weights", "activations", "workspace", "reserve"};
const char* const kRamColors[] = {"#76b7b2", "#edc948"};
const char* const kRamParts[] = {"pinned", "pageable"};
const char* const kPhaseColors[] = {"#9c755f", "#b07aa1", "#4e79a7", "#59a14f"};

// XML-safe text: names from a checkpoint may hold controls or invalid UTF-8, which XML forbids;
// escape_text writes those as \xNN first.
std::string esc(const std::string& raw) {
  const std::string s = detail::escape_text(raw);
  std::string o;
  for (char ch : s) {
    if (ch == '&')
      o += "&amp;";
    else if (ch == '<')
      o += "&lt;";
    else if (ch == '>')
      o += "&gt;";
    else if (ch == '"')
      o += "&quot;";
    else if (static_cast<unsigned char>(ch) < 0x20 && ch != '\t')
      o += ' ';  // control bytes are not allowed in XML 1.0
    else
      o += ch;
  }
  return o;
}

std::string num(double v, const char* f = "%.1f") {
  char buf[48];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string i2s(int v) {
  return std::to_string(v);
}

// Code points, not bytes: "·" and "×" are one character wide.
std::size_t width_of(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

// Splits `text` into lines of at most `max_chars`. A " · "-separated part moves to the next line
// whole when it fits there; otherwise it breaks at spaces, and a word longer than a line is
// split where it must. Nothing is dropped.
std::vector<std::string> wrap(const std::string& text, std::size_t max_chars) {
  std::vector<std::string> parts;  // "a", "· b", "· c"
  for (std::size_t pos = 0; pos < text.size();) {
    const std::size_t sep = text.find(" · ", pos);
    const std::size_t end = sep == std::string::npos ? text.size() : sep;
    parts.push_back((pos == 0 ? "" : "· ") + text.substr(pos, end - pos));
    pos = sep == std::string::npos ? text.size() : sep + 4;  // " · " is 4 bytes
  }
  std::vector<std::string> lines;
  std::string line;
  auto put_word = [&](std::string w) {
    while (width_of(w) > max_chars) {
      if (!line.empty()) lines.push_back(std::exchange(line, {}));
      std::size_t cut = 0, chars = 0;
      while (cut < w.size() && chars < max_chars) {
        ++cut;
        while (cut < w.size() && (static_cast<unsigned char>(w[cut]) & 0xC0) == 0x80) ++cut;
        ++chars;
      }
      lines.push_back(w.substr(0, cut));
      w = w.substr(cut);
    }
    const std::size_t need = width_of(w) + (line.empty() ? 0 : 1);
    if (!line.empty() && width_of(line) + need > max_chars)
      lines.push_back(std::exchange(line, {}));
    line += (line.empty() ? "" : " ") + w;
  };
  for (const std::string& part : parts) {
    const std::size_t w = width_of(part);
    if (!line.empty() && width_of(line) + 1 + w > max_chars && w <= max_chars)
      lines.push_back(std::exchange(line, {}));
    if (width_of(line) + (line.empty() ? 0 : 1) + w <= max_chars) {
      line += (line.empty() ? "" : " ") + part;
      continue;
    }
    // Longer than a line: word by word, "· " kept with the word after it.
    std::size_t pos = 0;
    while (pos < part.size()) {
      std::size_t sp = part.find(' ', part.compare(pos, 3, "· ") == 0 ? pos + 3 : pos);
      if (sp == std::string::npos) sp = part.size();
      put_word(part.substr(pos, sp - pos));
      pos = sp + 1;
    }
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

// A tick step of 1, 2 or 5 × 10^n GiB giving at most 6 intervals up to `max_gib`.
double tick_step(double max_gib) {
  for (double mag = 0.1; mag < 1e7; mag *= 10)
    for (double m : {1.0, 2.0, 5.0})
      if (max_gib / (mag * m) <= 6) return mag * m;
  return 1e7;
}

struct Scale {
  double max_gib = 1;  // top of the axis
  double step = 1;
  int y_of(double bytes, int base) const {
    return base - static_cast<int>(std::lround(bytes / kGiB / max_gib * kPlotH));
  }
};

Scale make_scale(double max_bytes) {
  Scale s;
  const double g = std::max(max_bytes / kGiB, 0.5);
  s.step = tick_step(g);
  s.max_gib = std::ceil(g / s.step) * s.step;
  return s;
}

std::string text(int x, int y, const std::string& body, const std::string& attrs = {}) {
  std::string s = "<text x=\"";
  s += i2s(x) + "\" y=\"" + i2s(y) + "\"" + (attrs.empty() ? "" : " ") + attrs + ">";
  s += body + "</text>\n";
  return s;
}

std::string rect(int x, int y, int w, int h, const char* fill, const std::string& cls,
                 const std::string& tip) {
  std::string s = "<rect class=\"";
  s += cls + "\" x=\"" + i2s(x) + "\" y=\"" + i2s(y) + "\" width=\"" + i2s(std::max(w, 0)) +
       "\" height=\"" + i2s(std::max(h, 0)) + "\" fill=\"" + fill + "\"><title>" + esc(tip) +
       "</title></rect>\n";
  return s;
}

std::string hline(int x1, int x2, int y, const char* stroke, const std::string& cls,
                  const char* dash) {
  std::string s = "<line class=\"";
  s += cls + "\" x1=\"" + i2s(x1) + "\" x2=\"" + i2s(x2) + "\" y1=\"" + i2s(y) + "\" y2=\"" +
       i2s(y) + "\" stroke=\"" + stroke + "\"";
  if (dash != nullptr) s += std::string(" stroke-dasharray=\"") + dash + "\"";
  s += "/>\n";
  return s;
}

// Axis with GiB ticks and grid lines for one memory plot whose baseline is `base`.
std::string axis(const Scale& sc, int x0, int base, const std::string& what) {
  std::string s = text(x0, base - kPlotH - 8, what + " (GiB)", "font-weight=\"bold\"");
  for (int k = 0; k * sc.step <= sc.max_gib * (1 + 1e-9); ++k) {
    const double v = k * sc.step;
    const int y = sc.y_of(v * kGiB, base);
    s += hline(x0, x0 + kPlotW, y, v == 0 ? "#555555" : "#e3e3e3", "grid", nullptr);
    s += text(x0 - 6, y + 4, num(v, sc.step < 1 ? "%.1f" : "%.0f"),
              "text-anchor=\"end\" class=\"tick\"");
  }
  s += "<line class=\"axis\" x1=\"" + i2s(x0) + "\" x2=\"" + i2s(x0) + "\" y1=\"" +
       i2s(base - kPlotH) + "\" y2=\"" + i2s(base) + "\" stroke=\"#555555\"/>\n";
  return s;
}

// The usable line (solid) and the total line (dashed) of a budget, labelled on the right.
std::string budget_lines(const Scale& sc, int x0, int base, const std::string& what, double usable,
                         double total, const char* color) {
  std::string s;
  const int yu = sc.y_of(usable, base), yt = sc.y_of(total, base);
  s += hline(x0, x0 + kPlotW, yt, color, "budget " + what + " total", "5 3");
  s += hline(x0, x0 + kPlotW, yu, color, "budget " + what + " usable", nullptr);
  const int xl = x0 + kPlotW + 4;
  std::string fill = std::string("fill=\"") + color + "\"";
  // Labels one above the other even when the lines are close.
  const int ylt = std::min(yt + 4, yu - 8);
  s += text(xl, ylt, "total " + num(total / kGiB), fill);
  s += text(xl, std::max(yu + 4, ylt + 12), "usable " + num(usable / kGiB), fill);
  return s;
}

}  // namespace

std::string render_svg(const Model& model, const PlanReport& r, std::size_t count) {
  const std::size_t n = std::min(count, r.plans.size());
  const Hardware& hw = r.hardware;
  const double m = r.options.margin;
  const bool gpu = !hw.gpus.empty();
  double vram_free = 0, vram_total = 0;
  if (gpu) {
    vram_free = static_cast<double>(hw.gpus.front().vram_free);
    vram_total = static_cast<double>(hw.gpus.front().vram_total);
    for (const auto& g : hw.gpus) {
      vram_free = std::min(vram_free, static_cast<double>(g.vram_free));
      vram_total = std::min(vram_total, static_cast<double>(g.vram_total));
    }
    vram_total = std::max(vram_total, vram_free);
  }
  const double ram_avail = static_cast<double>(hw.ram_available);
  const double ram_total = std::max(static_cast<double>(hw.ram_total), ram_avail);
  const double vram_usable = std::floor(vram_free * (1.0 - m));
  const double ram_usable = std::floor(ram_avail * (1.0 - m));

  double vmax = vram_total, rmax = ram_total, tmax = 0;
  for (std::size_t i = 0; i < n; ++i) {
    for (const auto& ph : r.plans[i].estimate.phases) {
      vmax = std::max(vmax, static_cast<double>(ph.vram_peak));
      rmax = std::max(rmax, static_cast<double>(ph.ram_peak));
    }
    tmax = std::max(tmax, r.plans[i].estimate.total_seconds);
  }
  const Scale vs = make_scale(vmax), rs = make_scale(rmax);
  const std::size_t max_chars = static_cast<std::size_t>((kWidth - 2 * kMarginX) / kCharWidth);

  std::string body;
  int y = 24;
  // The header is set at 14 px: fewer characters per line.
  for (const auto& l : wrap(plan_header(model, r), max_chars * 12 / 14)) {
    body += text(kMarginX, y, esc(l), "font-size=\"14\" font-weight=\"bold\" class=\"header\"");
    y += kLine + 2;
  }
  for (const auto& w : r.warnings)
    for (const auto& l : wrap("warning: " + w, max_chars)) {
      body += text(kMarginX, y, esc(l), "fill=\"#b8420f\" class=\"warning\"");
      y += kLine;
    }
  // Legend: what each colour is.
  y += 6;
  int x = kMarginX;
  auto key = [&](const char* color, const std::string& label) {
    body += "<rect x=\"" + i2s(x) + "\" y=\"" + i2s(y - 10) +
            "\" width=\"11\" height=\"11\" fill=\"" + color + "\"/>\n";
    body += text(x + 15, y, esc(label), "class=\"legend\"");
    x += 15 + static_cast<int>(std::ceil(static_cast<double>(width_of(label)) * kCharWidth)) + 14;
  };
  for (int k = 0; k < 4; ++k) key(kVramColors[k], std::string("VRAM ") + kVramParts[k]);
  for (int k = 0; k < 2; ++k) key(kRamColors[k], std::string("RAM ") + kRamParts[k]);
  y += kLine + 2;
  x = kMarginX;
  for (int k = 0; k < 4; ++k)
    key(kPhaseColors[k], std::string("time: ") + detail::phase_name(static_cast<Phase>(k)));
  body += text(
      x, y, "lines: solid = usable (less the " + num(m * 100, "%.0f") + "% margin), dashed = total",
      "class=\"legend\"");
  y += kLine + 10;

  for (std::size_t i = 0; i < n; ++i) {
    const Plan& p = r.plans[i];
    const Estimate& e = p.estimate;
    body += "<g class=\"plan\" id=\"plan-" + esc(p.id) + "\">\n";
    body += hline(kMarginX, kWidth - kMarginX, y - 12, "#cccccc", "separator", nullptr);
    y += 6;
    // The full title: wrapped, never cut.
    bool first = true;
    // Continuation lines are indented by 24 px: 4 characters fewer per line.
    for (const auto& l : wrap("#" + p.id + "  " + plan_title(model, p.strategy), max_chars - 4)) {
      body += text(kMarginX + (first ? 0 : 24), y, esc(l),
                   first ? "font-weight=\"bold\" class=\"title\"" : "class=\"title\"");
      first = false;
      y += kLine;
    }
    std::string summary =
        "total " + format_duration(e.total_seconds) + " · load " + format_duration(e.load_seconds) +
        " · " + num(e.step_seconds, e.step_seconds < 10 ? "%.2f" : "%.1f") + " s/step × " +
        std::to_string(r.workload.steps) + " · quality " + p.quality_tier + " · " + p.group;
    body += text(kMarginX + 24, y, esc(summary), "fill=\"#444444\" class=\"summary\"");
    y += 24 + kPlotH;
    const int base = y;

    // Memory charts, one bar per phase.
    const int slot = kPlotW / 4, bar_w = 44;
    if (gpu) {
      body += axis(vs, kVramX, base, "VRAM");
    } else {
      body += text(kVramX, base - kPlotH / 2, "CPU only: no VRAM", "fill=\"#777777\"");
    }
    body += axis(rs, kRamX, base, "RAM");
    for (std::size_t k = 0; k < e.phases.size() && k < 4; ++k) {
      const PhaseEstimate& ph = e.phases[k];
      const std::string phase = detail::phase_name(ph.phase);
      if (gpu) {
        const int bx = kVramX + static_cast<int>(k) * slot + (slot - bar_w) / 2;
        const double parts[] = {
            static_cast<double>(ph.vram_weights), static_cast<double>(ph.vram_activations),
            static_cast<double>(ph.vram_workspace), static_cast<double>(ph.vram_reserve)};
        double acc = 0;
        for (int q = 0; q < 4; ++q) {
          const int y0 = vs.y_of(acc, base);
          acc += parts[q];
          const int y1 = vs.y_of(acc, base);
          body +=
              rect(bx, y1, bar_w, y0 - y1, kVramColors[q], std::string("bar vram ") + kVramParts[q],
                   phase + " VRAM " + kVramParts[q] + " " +
                       format_bytes(static_cast<std::uint64_t>(parts[q])));
        }
        body += text(bx + bar_w / 2, vs.y_of(acc, base) - 3, num(acc / kGiB),
                     "text-anchor=\"middle\" font-size=\"10\" class=\"value\"");
        body += text(bx + bar_w / 2, base + 14, phase, "text-anchor=\"middle\"");
      }
      const int rx = kRamX + static_cast<int>(k) * slot + (slot - bar_w) / 2;
      const double rparts[] = {static_cast<double>(ph.ram_pinned),
                               static_cast<double>(ph.ram_pageable)};
      double acc = 0;
      for (int q = 0; q < 2; ++q) {
        const int y0 = rs.y_of(acc, base);
        acc += rparts[q];
        const int y1 = rs.y_of(acc, base);
        body += rect(rx, y1, bar_w, y0 - y1, kRamColors[q], std::string("bar ram ") + kRamParts[q],
                     phase + " RAM " + kRamParts[q] + " " +
                         format_bytes(static_cast<std::uint64_t>(rparts[q])));
      }
      body += text(rx + bar_w / 2, rs.y_of(acc, base) - 3, num(acc / kGiB),
                   "text-anchor=\"middle\" font-size=\"10\" class=\"value\"");
      body += text(rx + bar_w / 2, base + 14, phase, "text-anchor=\"middle\"");
    }
    if (gpu) body += budget_lines(vs, kVramX, base, "vram", vram_usable, vram_total, "#e15759");
    body += budget_lines(rs, kRamX, base, "ram", ram_usable, ram_total, "#8c4f9f");

    // Time: phases as segments of one bar, the slowest plan shown filling the width.
    y = base + 36;
    body += text(kMarginX, y, "time", "font-weight=\"bold\"");
    double tx = kTimeX;
    for (std::size_t k = 0; k < e.phases.size() && k < 4; ++k) {
      const double w = tmax > 0 ? e.phases[k].seconds / tmax * kTimeW : 0;
      const std::string phase = detail::phase_name(e.phases[k].phase);
      body += rect(static_cast<int>(std::lround(tx)), y - 11,
                   static_cast<int>(std::lround(tx + w)) - static_cast<int>(std::lround(tx)), 14,
                   kPhaseColors[k], "bar time " + phase,
                   phase + " " + format_duration(e.phases[k].seconds));
      tx += w;
    }
    body += text(static_cast<int>(std::lround(tx)) + 6, y, format_duration(e.total_seconds),
                 "class=\"time-total\"");
    body += "</g>\n";
    y += 36;
  }

  std::string s = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  s += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + i2s(kWidth) + "\" height=\"" +
       i2s(y) + "\" viewBox=\"0 0 " + i2s(kWidth) + " " + i2s(y) +
       "\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">\n";
  s += "<title>" + esc(plan_header(model, r)) + "</title>\n";
  s += "<rect x=\"0\" y=\"0\" width=\"" + i2s(kWidth) + "\" height=\"" + i2s(y) +
       "\" fill=\"#ffffff\"/>\n";
  s += body + "</svg>\n";
  return s;
}

}  // namespace dmem::cli
