// The short quantizer names `dmem convert --quantize` takes, and the component=name map.
#include <string>
#include <string_view>
#include <vector>

#include "core/text_escape.hpp"
#include "dmem/convert.hpp"

namespace dmem {
inline namespace v1 {

namespace {

struct Entry {
  const char* name;
  const char* plugin;
  std::vector<std::pair<std::string, std::string>> params;
};

// Block size 64 is bitsandbytes' default and what diffusers' BitsAndBytesConfig writes.
const std::vector<Entry>& table() {
  static const std::vector<Entry> kTable = {
      {"nf4", "dmem.quantizer.nf4", {{"quant_type", "nf4"}, {"double_quant", "false"}}},
      {"nf4-dq", "dmem.quantizer.nf4", {{"quant_type", "nf4"}, {"double_quant", "true"}}},
      {"fp4", "dmem.quantizer.nf4", {{"quant_type", "fp4"}, {"double_quant", "false"}}},
      {"fp4-dq", "dmem.quantizer.nf4", {{"quant_type", "fp4"}, {"double_quant", "true"}}},
      {"int8", "dmem.quantizer.bnb_int8", {}},
      {"fp8", "dmem.quantizer.fp8_cast", {{"format", "e4m3"}, {"scale", "tensor"}}},
      {"fp8-e4m3", "dmem.quantizer.fp8_cast", {{"format", "e4m3"}, {"scale", "tensor"}}},
      {"fp8-e5m2", "dmem.quantizer.fp8_cast", {{"format", "e5m2"}, {"scale", "tensor"}}},
      {"q8_0", "dmem.quantizer.gguf", {{"type", "q8_0"}}},
      {"q6_k", "dmem.quantizer.gguf", {{"type", "q6_k"}}},
      {"q5_k", "dmem.quantizer.gguf", {{"type", "q5_k"}}},
      {"q5_1", "dmem.quantizer.gguf", {{"type", "q5_1"}}},
      {"q5_0", "dmem.quantizer.gguf", {{"type", "q5_0"}}},
      {"q4_k", "dmem.quantizer.gguf", {{"type", "q4_k"}}},
      {"q4_1", "dmem.quantizer.gguf", {{"type", "q4_1"}}},
      {"q4_0", "dmem.quantizer.gguf", {{"type", "q4_0"}}},
  };
  return kTable;
}

Status spec_error(std::string message, std::string hint) {
  return Status(Errc::invalid_argument, std::move(message))
      .with_rule("convert.quantize")
      .with_hint(std::move(hint));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  return s;
}

}  // namespace

std::vector<std::string> convert_quantizer_names() noexcept {
  std::vector<std::string> names;
  for (const Entry& e : table()) names.emplace_back(e.name);
  return names;
}

Result<QuantChoice> resolve_quantizer(std::string_view name) noexcept {
  for (const Entry& e : table()) {
    if (name != e.name) continue;
    QuantChoice q;
    q.name = e.name;
    q.plugin = e.plugin;
    q.params = e.params;
    return q;
  }
  std::string list;
  for (const Entry& e : table()) {
    if (!list.empty()) list += ' ';
    list += e.name;
  }
  std::string message = "unknown quantizer '";
  message += detail::escape_text(name);
  message += "'";
  return Status(Errc::invalid_argument, std::move(message))
      .with_rule("convert.quantizer")
      .with_hint("pick one of: " + list);
}

Result<std::vector<QuantChoice>> parse_quantize_map(std::string_view spec) noexcept {
  std::vector<QuantChoice> out;
  if (trim(spec).empty())
    return spec_error("--quantize is empty", "e.g. --quantize transformer=nf4,text_encoder=q8_0");
  while (!spec.empty()) {
    const std::size_t comma = spec.find(',');
    const std::string_view entry = trim(spec.substr(0, comma));
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    const std::size_t eq = entry.find('=');
    if (eq == std::string_view::npos || trim(entry.substr(0, eq)).empty() ||
        trim(entry.substr(eq + 1)).empty()) {
      std::string message = "'";
      message += detail::escape_text(entry);
      message += "' is not COMPONENT=QUANTIZER";
      return spec_error(std::move(message), "e.g. transformer=nf4 ('*=q8_0' for every component)");
    }
    auto q = resolve_quantizer(trim(entry.substr(eq + 1)));
    if (!q) return q.status();
    q->component = std::string(trim(entry.substr(0, eq)));
    for (const QuantChoice& prev : out) {
      if (prev.component != q->component) continue;
      std::string message = "component '";
      message += detail::escape_text(q->component);
      message += "' is given twice";
      return spec_error(std::move(message), "give each component one quantizer");
    }
    out.push_back(std::move(q.value()));
  }
  return out;
}

}  // namespace v1
}  // namespace dmem
