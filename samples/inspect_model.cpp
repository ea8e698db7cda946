// Sample: open a model (a catalog name or a checkpoint path) and print what each component costs.
//
//   sample_inspect_model qwen-image
//   sample_inspect_model /models/FLUX.1-dev
//
// Shows the error model: every dmem call returns Status or Result<T>; nothing throws.
#include <cstdio>

#include <dmem/dmem.hpp>

int main(int argc, char** argv) {
  const char* target = argc > 1 ? argv[1] : "qwen-image";
  dmem::Result<dmem::Model> model = dmem::open_model(target);
  if (!model) {
    // One line naming the file, offset, tensor and rule, plus what to do about it.
    std::fprintf(stderr, "cannot open %s: %s\n", target, model.status().to_string().c_str());
    return 2;
  }
  std::printf("%s: %zu components (%s)\n", model->name.c_str(), model->components.size(),
              model->source.c_str());
  for (const dmem::Component& component : model->components) {
    const dmem::ComponentSummary s = dmem::summarize(component);
    std::printf(
        "  %-14s %-12s %6llu tensors  %s  blocks %zu (largest %s)  castable %s  linear %s\n",
        s.name.c_str(), std::string(dmem::role_name(s.role)).c_str(),
        static_cast<unsigned long long>(s.tensors), dmem::format_bytes(s.bytes).c_str(),
        s.blocks.size(), dmem::format_bytes(s.max_block_bytes).c_str(),
        dmem::format_bytes(s.castable_bytes).c_str(), dmem::format_bytes(s.linear_bytes).c_str());
  }
  return 0;
}
