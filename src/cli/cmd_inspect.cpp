// `dmem inspect`: exact sizes of every component, from headers alone.
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/table.hpp"
#include "core/text_escape.hpp"
#include "dmem/model.hpp"
#include "dmem/module_tree.hpp"
#include "format/json_util.hpp"

namespace dmem::cli {

namespace {

constexpr const char* kHelp = R"(usage: dmem inspect <model> [--json] [--tensors]

  <model>     catalog name (dmem models), .safetensors, *.safetensors.index.json,
              diffusers folder, component folder, single-file checkpoint or .gguf
  --json      machine-readable output
  --tensors   also list every tensor (name, dtype, shape, bytes)

Reads headers only. Exit status 2 on invalid input, with one line naming the file,
offset or tensor and the rule broken.)";

std::string source_label(const Model& m) {
  if (m.source == "catalog") return "built-in catalog";
  return m.source;
}

std::string dtype_cell(const ComponentSummary& s) {
  std::string out;
  for (const auto& [dt, bytes] : s.bytes_by_dtype) {
    if (!out.empty()) out += ", ";
    out += std::string(dtype_name(dt));
    if (s.bytes_by_dtype.size() > 1) {
      out += ' ';
      out += format_gb(bytes);
    }
  }
  // A pre-quantized checkpoint (dmem convert, bitsandbytes) names its storage.
  if (!s.prequantized.empty()) out.append(" (").append(s.prequantized).append(")");
  return out.empty() ? "-" : out;
}

std::string shape_text(const TensorInfo& t) {
  std::string out = "[";
  for (std::size_t i = 0; i < t.shape.size(); ++i)
    out += (i ? ", " : "") + std::to_string(t.shape[i]);
  return out + "]";
}

nlohmann::json to_json(const Model& model, const std::vector<ComponentSummary>& sums) {
  nlohmann::json j;
  j["model"] = model.name;
  j["source"] = model.source;
  j["pipeline"] = model.pipeline_class;
  std::uint64_t total = 0, params = 0;
  j["components"] = nlohmann::json::array();
  for (std::size_t i = 0; i < sums.size(); ++i) {
    const auto& s = sums[i];
    const auto& c = model.components[i];
    total += s.bytes;
    params += s.params;
    nlohmann::json cj;
    cj["name"] = s.name;
    cj["role"] = std::string(role_name(s.role));
    cj["class_name"] = c.class_name;
    cj["params"] = s.params;
    cj["bytes"] = s.bytes;
    cj["tensors"] = s.tensors;
    cj["blocks"] = {{"count", s.blocks.size()},
                    {"max_bytes", s.max_block_bytes},
                    {"largest", s.largest_block},
                    {"bytes", s.block_bytes}};
    cj["max_leaf_bytes"] = s.max_leaf_bytes;
    cj["largest_leaf"] = s.largest_leaf;
    cj["castable_bytes"] = s.castable_bytes;
    cj["linear_bytes"] = s.linear_bytes;
    if (!s.prequantized.empty()) {
      cj["prequantized"] = s.prequantized;
      cj["prequantized_bytes"] = s.prequantized_bytes;
    }
    nlohmann::json dt = nlohmann::json::object();
    for (const auto& [d, b] : s.bytes_by_dtype) dt[std::string(dtype_name(d))] = b;
    cj["dtypes"] = dt;
    j["components"].push_back(std::move(cj));
  }
  j["total_bytes"] = total;
  j["params"] = params;
  return j;
}

void write_out(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
}

// `--json --tensors`: a checkpoint can hold millions of tensors, and a document tree of them costs
// about ten times the header. The summary stays a (small) tree; each component's "tensor_list"
// is written entry by entry, so memory stays what opening the model costs.
void print_json_with_tensors(const Model& model, const nlohmann::json& summary) {
  write_out("{\n  \"components\": [");
  const auto& comps = summary["components"];
  for (std::size_t i = 0; i < comps.size(); ++i) {
    std::string head = detail::dump_json(comps[i]);  // compact "{...}": reopen it for the list
    head.pop_back();
    write_out(std::string(i ? "," : "") + "\n    " + head + ", \"tensor_list\": [");
    const auto& list = model.components[i].tensors;
    for (std::size_t k = 0; k < list.size(); ++k) {
      const auto& t = list[k];
      const nlohmann::json tj = {{"name", t.name},
                                 {"dtype", std::string(dtype_name(t.dtype))},
                                 {"shape", t.shape},
                                 {"bytes", t.nbytes}};
      write_out(std::string(k ? "," : "") + "\n      " + detail::dump_json(tj));
    }
    write_out("\n    ]}");
  }
  write_out("\n  ]");
  for (const auto& [key, value] : summary.items())
    if (key != "components")
      write_out(",\n  " + detail::dump_json(key) + ": " + detail::dump_json(value));
  write_out("\n}\n");
}

}  // namespace

int run_inspect(const Args& args) {
  std::string target;
  bool json = false, tensors = false;
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::printf("%s\n", kHelp);
      return 0;
    } else if (a == "--json") {
      json = true;
    } else if (a == "--tensors") {
      tensors = true;
    } else if (!a.empty() && a[0] == '-') {
      return fail("inspect", Status(Errc::invalid_argument, "unknown flag '" + a + "'")
                                 .with_rule("cli.flag")
                                 .with_hint("valid flags: --json, --tensors, --help")
                                 .to_string());
    } else if (target.empty()) {
      target = a;
    } else {
      return fail("inspect", Status(Errc::invalid_argument,
                                    "more than one model given ('" + target + "', '" + a + "')")
                                 .with_rule("cli.flag")
                                 .with_hint("give one <model>; flags start with --")
                                 .to_string());
    }
  }
  if (target.empty())
    return fail("inspect", Status(Errc::invalid_argument, "no model given")
                               .with_rule("cli.flag")
                               .with_hint("dmem inspect <model> [--json] [--tensors]")
                               .to_string());
  auto model = open_model(target);
  if (!model) return fail("inspect", model.status().to_string());
  std::vector<ComponentSummary> sums;
  sums.reserve(model->components.size());
  for (const auto& c : model->components) sums.push_back(summarize(c));

  if (json) {
    if (tensors)
      print_json_with_tensors(*model, to_json(*model, sums));
    else
      print_json(to_json(*model, sums));
    return 0;
  }
  std::uint64_t total = 0, params = 0;
  for (const auto& s : sums) {
    total += s.bytes;
    params += s.params;
  }
  std::printf(
      "%s (%s)%s · %zu component%s · %s parameters · %s\n",
      detail::escape_text(model->name).c_str(), detail::escape_text(source_label(*model)).c_str(),
      model->pipeline_class.empty() ? ""
                                    : (" · " + detail::escape_text(model->pipeline_class)).c_str(),
      sums.size(), sums.size() == 1 ? "" : "s", format_count(params).c_str(),
      format_gb(total).c_str());
  Table table({"component", "role", "tensors", "params", "bytes", "dtype", "blocks",
               "largest block", "largest leaf", "castable", "linear"},
              {false, false, true, true, true, false, true, true, false, true, true});
  for (const auto& s : sums) {
    std::string leaf =
        s.largest_leaf.empty() ? "-" : s.largest_leaf + " " + format_gb(s.max_leaf_bytes);
    table.add({s.name, std::string(role_name(s.role)), std::to_string(s.tensors),
               format_count(s.params), format_gb(s.bytes), dtype_cell(s),
               s.blocks.empty() ? "-" : std::to_string(s.blocks.size()),
               s.blocks.empty() ? "-" : format_gb(s.max_block_bytes), leaf,
               format_gb(s.castable_bytes), format_gb(s.linear_bytes)});
  }
  std::fputs(table.render().c_str(), stdout);
  if (tensors) {
    for (std::size_t i = 0; i < sums.size(); ++i) {
      const auto& c = model->components[i];
      std::printf("\n%s (%zu tensors)\n", detail::escape_text(c.name).c_str(), c.tensors.size());
      Table t({"tensor", "dtype", "shape", "bytes"}, {false, false, false, true});
      for (const auto& ti : c.tensors)
        t.add({ti.name, std::string(dtype_name(ti.dtype)), shape_text(ti),
               std::to_string(ti.nbytes)});
      std::fputs(t.render("  ").c_str(), stdout);
    }
  }
  return 0;
}

}  // namespace dmem::cli
