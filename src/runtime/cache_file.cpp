#include "runtime/cache_file.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <cstring>

#include "format/file_io.hpp"

namespace dmem::detail {
namespace {

constexpr char kMagic[8] = {'D', 'M', 'E', 'M', 'C', 'A', 'C', 'H'};
constexpr std::uint64_t kFormat = 1;

// FNV-1a: stable across builds and machines (std::hash is neither).
struct Hasher {
  std::uint64_t h = 1469598103934665603ull;
  void bytes(const void* p, std::size_t n) noexcept {
    const auto* b = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 1099511628211ull;
    }
  }
  void u64(std::uint64_t v) noexcept { bytes(&v, sizeof v); }
  void str(const std::string& s) noexcept {
    u64(s.size());
    bytes(s.data(), s.size());
  }
};

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

}  // namespace

std::uint64_t cache_key(const Model& model, const ResidencyLayout& layout,
                        const std::vector<std::string>& plugin_versions) noexcept {
  Hasher h;
  h.u64(kFormat);
  std::vector<bool> described(layout.components.size(), false);
  for (const TensorSlot& slot : layout.tensors) {
    if (slot.home != StoreKind::disk || (!slot.cast && !slot.quantized)) continue;
    if (!described[slot.component]) {
      described[slot.component] = true;
      const ComponentLayout& c = layout.components[slot.component];
      h.str(c.name);
      h.u64(static_cast<std::uint64_t>(c.storage.kind));
      h.u64(static_cast<std::uint64_t>(c.storage.cast_dtype));
      h.str(c.storage.quantizer);
      for (const auto& [k, v] : c.storage.params) {
        h.str(k);
        h.str(v);
      }
      h.str(slot.component < plugin_versions.size() ? plugin_versions[slot.component] : "");
      if (const Component* mc = model.find(c.name)) {
        for (const std::string& file : mc->files) {
          h.str(file);
          struct stat st {};
          if (::stat(file.c_str(), &st) == 0) {
            h.u64(static_cast<std::uint64_t>(st.st_size));
            h.u64(static_cast<std::uint64_t>(st.st_mtim.tv_sec));
            h.u64(static_cast<std::uint64_t>(st.st_mtim.tv_nsec));
            h.u64(static_cast<std::uint64_t>(st.st_ino));
          }
        }
      }
    }
    const TensorInfo& t = *slot.info;
    h.str(t.name);
    h.u64(static_cast<std::uint64_t>(t.dtype));
    for (std::uint64_t d : t.shape) h.u64(d);
    h.u64(t.file);
    h.u64(t.offset);
    h.u64(t.nbytes);
    h.u64(static_cast<std::uint64_t>(slot.stored_dtype));
    h.u64(slot.stored_bytes);
    h.u64(slot.home_offset);
  }
  return h.h;
}

std::string cache_path(const std::string& folder, std::uint64_t key) {
  char name[40];
  std::snprintf(name, sizeof name, "/dmem-cache-%016llx.bin", static_cast<unsigned long long>(key));
  std::string path = folder;
  path += name;
  return path;
}

std::string cache_trailer(std::uint64_t key, std::uint64_t data_bytes) {
  std::string t(kMagic, sizeof kMagic);
  put_u64(t, kFormat);
  put_u64(t, key);
  put_u64(t, data_bytes);
  return t;
}

bool cache_reusable(const std::string& path, std::uint64_t key, std::uint64_t data_bytes) noexcept {
  if (!path_present(path)) return false;
  auto file = ReadFile::open(path);
  if (!file || file->size() != data_bytes + kCacheTrailerBytes) return false;
  std::string trailer(kCacheTrailerBytes, '\0');
  if (!file->read_at(trailer.data(), trailer.size(), data_bytes)) return false;
  return trailer == cache_trailer(key, data_bytes);
}

}  // namespace dmem::detail
