// `dmem convert`: writes a pre-quantized checkpoint (bitsandbytes / fp8 safetensors, or GGUF)
// through convert_model, with a progress bar, and reports what each component became.
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/machine_flags.hpp"
#include "cli/output.hpp"
#include "cli/progress_bar.hpp"
#include "cli/table.hpp"
#include "dmem/convert.hpp"
#include "dmem/model.hpp"
#include "dmem/units.hpp"

namespace dmem::cli {
namespace {

constexpr const char* kHelp =
    R"(usage: dmem convert <model> --quantize COMPONENT=Q[,COMPONENT=Q...] -o OUT
                    [--format safetensors|gguf] [--component NAME]... [--force] [--json]

Writes a pre-quantized checkpoint, one tensor at a time (host memory stays near the largest
tensor), into a temporary file renamed into place at the end: on any failure nothing is left.
The linear weights of each listed component are quantized; everything else is copied unchanged.
  Q (safetensors)  nf4 nf4-dq fp4 fp4-dq (bitsandbytes Linear4bit keys), int8 (Linear8bitLt
                   keys), fp8 fp8-e4m3 fp8-e5m2 (fp8 weight + f32 weight_scale)
  Q (gguf)         q8_0 q6_k q5_k q5_1 q5_0 q4_k q4_1 q4_0 (city96-style diffusion GGUF)
  COMPONENT        a component name, or * for every component
  OUT              a .safetensors or .gguf file for one component; a new diffusers folder when
                   the model has several (--component picks some)
The format defaults to gguf for an OUT ending in .gguf or GGUF types, else safetensors.
An existing OUT file is replaced only with --force; folders are never replaced.
Read it back with `dmem inspect OUT` and `dmem plan OUT` (docs/convert.md).
Exit status: 0 written, 2 bad input (nothing written).)";

int fail(const std::string& what, int status = kExitBadInput) {
  return cli::fail("convert", what, status);
}

Status flag_error(std::string message, std::string hint) {
  return Status(Errc::invalid_argument, std::move(message))
      .with_rule("cli.flag")
      .with_hint(std::move(hint));
}

bool ends_with(const std::string& s, const char* suffix) {
  const std::string x(suffix);
  return s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0;
}

}  // namespace

int run_convert(const Args& args) {
  po::options_description desc("flags");
  desc.add_options()("help,h", "this text")("model", po::value<std::string>(),
                                            "checkpoint path (file or folder)")(
      "quantize,q", po::value<std::string>(), "COMPONENT=Q,... (see above)")(
      "output,o", po::value<std::string>(), "the file or folder to write")(
      "format", po::value<std::string>(), "safetensors or gguf")(
      "component", po::value<std::vector<std::string>>(), "write only this component")(
      "force", po::bool_switch(), "replace an existing output file")("json", po::bool_switch(),
                                                                     "print the result as JSON");
  po::variables_map vm;
  bool help_shown = false;
  if (Status s = parse_command(args, desc, "model", kHelp, vm, help_shown); !s)
    return fail(s.to_string());
  if (help_shown) return kExitOk;
  if (!vm.count("model"))
    return fail(flag_error("no model given",
                           "dmem convert <model> --quantize transformer=nf4 -o "
                           "out.safetensors")
                    .to_string());
  if (!vm.count("output"))
    return fail(flag_error("no output given", "-o OUT.safetensors (or OUT.gguf)").to_string());
  const std::string out = vm["output"].as<std::string>();

  ConvertOptions options;
  options.force = vm["force"].as<bool>();
  if (vm.count("component")) options.components = vm["component"].as<std::vector<std::string>>();
  if (vm.count("quantize")) {
    auto map = parse_quantize_map(vm["quantize"].as<std::string>());
    if (!map) return fail(map.status().to_string());
    options.quantize = std::move(map.value());
  }
  bool gguf_types = false;
  for (const QuantChoice& q : options.quantize)
    gguf_types = gguf_types || q.plugin == "dmem.quantizer.gguf";
  options.format =
      gguf_types || ends_with(out, ".gguf") ? ConvertFormat::gguf : ConvertFormat::safetensors;
  if (vm.count("format")) {
    const std::string f = vm["format"].as<std::string>();
    if (f == "gguf") {
      options.format = ConvertFormat::gguf;
    } else if (f == "safetensors") {
      options.format = ConvertFormat::safetensors;
    } else {
      return fail(flag_error("--format: '" + f + "' is not safetensors or gguf", "--format gguf")
                      .to_string());
    }
  }

  auto opened = open_model(vm["model"].as<std::string>());
  if (!opened) return fail(opened.status().to_string());
  ProgressBar bar("converting");
  options.progress = [&bar](const ConvertProgress& p) {
    bar.update(p.bytes_done, p.bytes_total, p.seconds, p.bytes_per_second, p.eta_seconds);
    return true;
  };
  auto result = convert_model(*opened, out, options);
  if (!result) return fail(result.status().to_string());

  if (vm["json"].as<bool>()) {
    nlohmann::json j;
    j["output"] = result->path;
    j["format"] = options.format == ConvertFormat::gguf ? "gguf" : "safetensors";
    j["bytes_in"] = result->bytes_in;
    j["bytes_out"] = result->bytes_out;
    j["seconds"] = result->seconds;
    j["components"] = nlohmann::json::array();
    for (const ConvertedComponent& c : result->components) {
      nlohmann::json jc;
      jc["name"] = c.name;
      jc["path"] = c.path;
      jc["quantizer"] = c.quantizer.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.quantizer);
      jc["tensors_in"] = c.tensors_in;
      jc["tensors_out"] = c.tensors_out;
      jc["tensors_quantized"] = c.tensors_quantized;
      jc["bytes_in"] = c.bytes_in;
      jc["bytes_out"] = c.bytes_out;
      j["components"].push_back(std::move(jc));
    }
    print_json(j);
    return kExitOk;
  }
  Table table({"component", "quantizer", "tensors quantized", "bytes in", "bytes out", "file"});
  for (const ConvertedComponent& c : result->components) {
    table.add({c.name, c.quantizer.empty() ? std::string("(unchanged)") : c.quantizer,
               std::to_string(c.tensors_quantized) + " of " + std::to_string(c.tensors_in),
               format_bytes(c.bytes_in), format_bytes(c.bytes_out), c.path});
  }
  std::string text = "wrote ";
  text += result->path;
  text += " (";
  text += format_bytes(result->bytes_out);
  text += " from ";
  text += format_bytes(result->bytes_in);
  text += ", " + std::to_string(static_cast<int>(result->seconds * 1000)) + " ms)\n";
  text += table.render();
  text += "read it back: dmem inspect " + result->path + "\n";
  print_text(text);
  return kExitOk;
}

}  // namespace dmem::cli
