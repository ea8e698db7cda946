// libFuzzer target: a diffusers config.json as the folder reader parses it (strict JSON object,
// class name, role, architecture fields), and the same text as a pipeline's model_index.json.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "format/diffusers.hpp"
#include "model/arch_from_config.hpp"

namespace {

// A folder of our own for model_index.json (parallel fuzzing jobs each get one).
const std::string& pipeline_dir() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/dmem_fuzz_diffusers_XXXXXX";
    const char* made = ::mkdtemp(tmpl);
    return std::string(made ? made : "/tmp");
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto cfg = dmem::detail::parse_json_object(text, "config.json");
  if (cfg) {
    const std::string cls = dmem::detail::class_from_config(cfg->value);
    const dmem::Role role = dmem::detail::role_from_class(cls);
    dmem::ArchInfo arch;
    dmem::detail::arch_from_config(cfg->value, role, arch);
  } else {
    (void)cfg.status().to_string();
  }

  const std::string index = pipeline_dir() + "/model_index.json";
  if (FILE* f = std::fopen(index.c_str(), "wb")) {
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    auto model = dmem::detail::read_diffusers_pipeline(pipeline_dir());
    if (!model) (void)model.status().to_string();
  }
  return 0;
}
