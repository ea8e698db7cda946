// Sample: the loop a host engine runs. Scale a catalog model down (so it has weights), stream
// its transformer block by block through a Session, run each block's linear layers, and print
// what moved. With a real checkpoint, open it instead of scaling.
//
//   sample_run_session [catalog model, default flux1-dev]
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <dmem/dmem.hpp>

int main(int argc, char** argv) {
  const char* target = argc > 1 ? argv[1] : "flux1-dev";
  auto catalog = dmem::open_model(target);
  if (!catalog) {
    std::fprintf(stderr, "%s\n", catalog.status().to_string().c_str());
    return 2;
  }
  // 1. Weights: a 1/16 copy with generated values (docs/synthetic.md).
  auto scaled = dmem::scale_down(*catalog, dmem::ScaleDown{});
  const std::string dir =
      (std::filesystem::temp_directory_path() / "dmem-sample-run-session").string();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  auto path = scaled ? dmem::write_synthetic_model(*scaled, dir) : scaled.status();
  auto model = path ? dmem::open_model(*path) : path.status();
  if (!model) {
    std::fprintf(stderr, "%s\n", model.status().to_string().c_str());
    return 2;
  }
  const dmem::Component* denoiser = nullptr;
  for (const auto& c : model->components)
    if (c.role == dmem::Role::denoiser) denoiser = &c;
  if (denoiser == nullptr) return 2;

  // 2. A strategy: stream the denoiser block by block from pinned RAM, one block prefetched.
  dmem::Strategy strategy;
  dmem::ComponentStrategy cs;
  cs.component = denoiser->name;
  cs.placement.kind = dmem::PlacementKind::group_offload;
  cs.placement.prefetch = 1;
  strategy.components.push_back(cs);

  dmem::SessionOptions options;
  options.device_budget = 64ull << 20;  // the device store never holds more
  auto session = dmem::Session::open(*model, strategy, options);
  if (!session) {
    std::fprintf(stderr, "%s\n", session.status().to_string().c_str());
    return 1;
  }

  // 3. The host's loop: acquire each unit in order, use its weights, let it go.
  const std::size_t tokens = 64;
  std::vector<float> x, y;
  for (int step = 0; step < 3; ++step) {
    for (const std::string& unit : session->modules(denoiser->name)) {
      auto block = session->acquire(denoiser->name, unit);  // resident until `block` dies
      if (!block) {
        std::fprintf(stderr, "%s\n", block.status().to_string().c_str());
        return 1;
      }
      for (const dmem::TensorView& t : block->tensors()) {
        const std::string& name = *t.name;
        if (t.shape->size() != 2 || !name.ends_with(".weight")) continue;
        const std::uint64_t out = (*t.shape)[0], in = (*t.shape)[1];
        x.assign(tokens * in, 0.5f);
        y.resize(tokens * out);
        const std::string leaf = name.substr(0, name.size() - 7);
        if (dmem::Status s = session->linear(*block, leaf, x.data(), tokens, y.data()); !s) {
          std::fprintf(stderr, "%s\n", s.to_string().c_str());
          return 1;
        }
      }
    }
  }
  const dmem::SessionStats s = session->stats();
  std::printf("%s (1/16): %zu units per step, device peak %s of %s budget\n", target,
              session->modules(denoiser->name).size(), dmem::format_bytes(s.device.peak).c_str(),
              dmem::format_bytes(s.device.budget).c_str());
  std::printf("moved %s to the device in %llu copies, %llu back to the host, %llu prefetch hits\n",
              dmem::format_bytes(s.bytes_to_device).c_str(),
              static_cast<unsigned long long>(s.copies_to_device),
              static_cast<unsigned long long>(s.copies_to_host),
              static_cast<unsigned long long>(s.prefetch_hits));
  std::filesystem::remove_all(dir, ec);
  return 0;
}
