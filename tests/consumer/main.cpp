// An out-of-tree program built against an installed dmem (tests/consumer/run.sh): it includes
// only <dmem/dmem.hpp>, links the shared or the static library, and prints the catalog size of
// Qwen-Image. Any change to what a consumer needs (headers, link line, flags) breaks it.
#include <cstdint>
#include <cstdio>

#include <dmem/dmem.hpp>

int main() {
  dmem::Result<dmem::Model> model = dmem::open_model("qwen-image");
  if (!model) {
    std::fprintf(stderr, "consumer: %s\n", model.status().to_string().c_str());
    return 2;
  }
  std::uint64_t bytes = 0;
  for (const dmem::Component& c : model->components) bytes += dmem::summarize(c).bytes;
  std::printf("consumer: %s, %zu components, %s\n", model->name.c_str(), model->components.size(),
              dmem::format_bytes(bytes).c_str());
  return bytes > 0 ? 0 : 1;
}
