// Header parsing memory: peak RSS growth while reading a large header, divided by the header's
// bytes, for each format (safetensors, sharded index + shards, GGUF).
//
// Each format is parsed in its own forked child whose peak RSS is reset first (clear_refs 5), so
// peaks do not mix. The files are generated here with sparse data sections (only headers are
// real bytes). Target: peak ≤ 4 × header bytes + 64 MiB for every format.
//
//   bench_header_memory [--tensors N] [--dir DIR] [--keep 1] [--json FILE]
//   (default 250000 tensors per format; --keep leaves the generated files in DIR, e.g. to time
//   `dmem inspect` on them)
#include <fcntl.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "bench_report.hpp"
#include "dmem/checkpoint.hpp"
#include "dmem/model.hpp"
#include "dmem/module_tree.hpp"

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

std::uint64_t status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::size_t n = std::strlen(field);
  while (std::getline(in, line))
    if (line.compare(0, n, field) == 0) return std::stoull(line.substr(n + 1));
  return 0;
}

void write_all(const std::string& path, const std::string& bytes, std::uint64_t total_size) {
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  fs::resize_file(path, total_size);  // the data section is a hole
}

void put_u32(std::string& s, std::uint32_t v) {
  s.append(reinterpret_cast<const char*>(&v), 4);
}
void put_u64(std::string& s, std::uint64_t v) {
  s.append(reinterpret_cast<const char*>(&v), 8);
}
void put_str(std::string& s, const std::string& v) {
  put_u64(s, v.size());
  s += v;
}

std::string tensor_name(std::size_t i) {
  static const char* kParts[] = {"attn.to_q.weight",     "attn.to_k.weight",     "attn.to_v.weight",
                                 "attn.to_out.0.weight", "ff.net.0.proj.weight", "ff.net.2.weight",
                                 "norm1.linear.weight",  "norm1.linear.bias"};
  return "transformer_blocks." + std::to_string(i / 8) + "." + kParts[i % 8];
}

// A safetensors file with tensors [first, first + count): 64×64 BF16 each. Returns 8 + N.
std::uint64_t make_safetensors(const std::string& path, std::size_t first, std::size_t count) {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}";
  std::uint64_t offset = 0;
  constexpr std::uint64_t kBytes = 64 * 64 * 2;
  for (std::size_t i = first; i < first + count; ++i) {
    header +=
        fmt::format(",\"{}\":{{\"dtype\":\"BF16\",\"shape\":[64,64],\"data_offsets\":[{},{}]}}",
                    tensor_name(i), offset, offset + kBytes);
    offset += kBytes;
  }
  header += "}";
  while (header.size() % 8 != 0) header += ' ';
  std::string bytes;
  put_u64(bytes, header.size());
  bytes += header;
  write_all(path, bytes, bytes.size() + offset);
  return bytes.size();
}

// Index + 4 shards; returns the bytes of the index and all shard headers.
std::uint64_t make_sharded(const fs::path& dir, std::size_t tensors) {
  constexpr std::size_t kShards = 4;
  std::uint64_t header_bytes = 0;
  std::string index =
      "{\n  \"metadata\": {\"total_size\": " + std::to_string(tensors * 64 * 64 * 2) +
      "},\n  \"weight_map\": {\n";
  const std::size_t per = (tensors + kShards - 1) / kShards;
  for (std::size_t s = 0; s < kShards; ++s) {
    const std::size_t first = s * per;
    const std::size_t count = std::min(per, tensors - first);
    const std::string shard =
        fmt::format("diffusion_pytorch_model-{:05}-of-{:05}.safetensors", s + 1, kShards);
    header_bytes += make_safetensors((dir / shard).string(), first, count);
    for (std::size_t i = first; i < first + count; ++i)
      index += fmt::format("{}    \"{}\": \"{}\"", i ? ",\n" : "", tensor_name(i), shard);
  }
  index += "\n  }\n}\n";
  const std::string path = (dir / "diffusion_pytorch_model.safetensors.index.json").string();
  write_all(path, index, index.size());
  return header_bytes + index.size();
}

// GGUF v3 with a tokenizer (tensors strings, f32 scores, i32 types) and `tensors` 64×64 F16
// tensor infos; returns data_start.
std::uint64_t make_gguf(const std::string& path, std::size_t tensors) {
  const std::size_t vocab = tensors;
  std::string b = "GGUF";
  put_u32(b, 3);
  put_u64(b, tensors);
  put_u64(b, 4);
  put_str(b, "general.architecture");
  put_u32(b, 8);
  put_str(b, "llama");
  put_str(b, "tokenizer.ggml.tokens");
  put_u32(b, 9);
  put_u32(b, 8);
  put_u64(b, vocab);
  for (std::size_t i = 0; i < vocab; ++i) put_str(b, "tok" + std::to_string(i));
  put_str(b, "tokenizer.ggml.scores");
  put_u32(b, 9);
  put_u32(b, 6);
  put_u64(b, vocab);
  for (std::size_t i = 0; i < vocab; ++i) put_u32(b, 0);
  put_str(b, "tokenizer.ggml.token_type");
  put_u32(b, 9);
  put_u32(b, 5);
  put_u64(b, vocab);
  for (std::size_t i = 0; i < vocab; ++i) put_u32(b, 1);
  constexpr std::uint64_t kBytes = 64 * 64 * 2;
  for (std::size_t i = 0; i < tensors; ++i) {
    put_str(b, "blk." + std::to_string(i / 8) + ".t" + std::to_string(i % 8) + ".weight");
    put_u32(b, 2);
    put_u64(b, 64);
    put_u64(b, 64);
    put_u32(b, 1);  // F16
    put_u64(b, i * kBytes);
  }
  while (b.size() % 32 != 0) b += '\0';
  write_all(path, b, b.size() + tensors * kBytes);
  return b.size();
}

// Adversarial shapes: the smallest records each format allows (1-byte names, scalars), which
// maximise the records per header byte.
std::uint64_t make_tiny_safetensors(const std::string& path, std::size_t count) {
  std::string header = "{";
  for (std::size_t i = 0; i < count; ++i)
    header += fmt::format("{}\"{}\":{{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[{},{}]}}",
                          i ? "," : "", i, i, i + 1);
  header += "}";
  while (header.size() % 8 != 0) header += ' ';
  std::string bytes;
  put_u64(bytes, header.size());
  bytes += header;
  write_all(path, bytes, bytes.size() + count);
  return bytes.size();
}

std::uint64_t make_tiny_gguf(const std::string& path, std::size_t tensors) {
  std::string b = "GGUF";
  put_u32(b, 3);
  put_u64(b, tensors);
  put_u64(b, 0);
  for (std::size_t i = 0; i < tensors; ++i) {
    put_str(b, std::to_string(i));
    put_u32(b, 0);  // scalar
    put_u32(b, 0);  // F32
    put_u64(b, i * 32);
  }
  while (b.size() % 32 != 0) b += '\0';
  write_all(path, b, b.size() + tensors * 32);
  return b.size();
}

struct Peak {
  bool ok = false;
  std::uint64_t growth = 0;
  double seconds = 0;
};

// Runs `parse` in a forked child with a fresh peak-RSS counter.
Peak measure(const std::function<bool()>& parse) {
  int fds[2];
  if (::pipe(fds) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    ::malloc_trim(0);  // the parent's freed heap must not count as already-resident pages
    { std::ofstream("/proc/self/clear_refs") << "5"; }
    const std::uint64_t before = status_kib("VmRSS:");
    const auto t0 = Clock::now();
    Peak p;
    p.ok = parse();
    p.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    const std::uint64_t peak = status_kib("VmHWM:");
    p.growth = peak > before ? (peak - before) * 1024 : 0;
    (void)!::write(fds[1], &p, sizeof p);
    ::_exit(0);
  }
  ::close(fds[1]);
  Peak p;
  if (::read(fds[0], &p, sizeof p) != static_cast<ssize_t>(sizeof p)) p = {};
  ::close(fds[0]);
  ::waitpid(pid, nullptr, 0);
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string json = dmem::bench::take_json_flag(argc, argv);
  dmem::bench::Report report("bench_header_memory");
  std::size_t tensors = 250000;
  bool keep = false;
  fs::path dir = fs::temp_directory_path() / ("dmem-bench-header-" + std::to_string(::getpid()));
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--tensors") == 0) tensors = std::stoul(argv[i + 1]);
    if (std::strcmp(argv[i], "--dir") == 0) dir = argv[i + 1];
    if (std::strcmp(argv[i], "--keep") == 0) keep = std::strcmp(argv[i + 1], "0") != 0;
  }
  fs::create_directories(dir / "sharded");
  const std::string st_path = (dir / "model.safetensors").string();
  const std::string gguf_path = (dir / "model.gguf").string();
  const std::string index_path =
      (dir / "sharded" / "diffusion_pytorch_model.safetensors.index.json").string();

  struct Row {
    const char* format;
    std::uint64_t header_bytes;
    std::function<bool()> parse;
  };
  const std::vector<Row> rows{
      {"safetensors", make_safetensors(st_path, 0, tensors),
       [&] { return dmem::read_safetensors(st_path).has_value(); }},
      {"sharded (index + 4 shards)", make_sharded(dir / "sharded", tensors),
       [&] { return dmem::read_sharded(index_path).has_value(); }},
      {"gguf (tokenizer + tensor infos)", make_gguf(gguf_path, tensors),
       [&] { return dmem::read_gguf(gguf_path).has_value(); }},
  };
  const std::string tiny_st = (dir / "tiny.safetensors").string();
  const std::string tiny_gguf = (dir / "tiny.gguf").string();
  const std::vector<Row> tiny_rows{
      {"safetensors, smallest entries", make_tiny_safetensors(tiny_st, 2 * tensors),
       [&] { return dmem::read_safetensors(tiny_st).has_value(); }},
      {"gguf, smallest tensor infos", make_tiny_gguf(tiny_gguf, 2 * tensors),
       [&] { return dmem::read_gguf(tiny_gguf).has_value(); }},
  };
  // The whole open path a user runs (header + Model + module tree), for reference.
  const std::vector<Row> open_rows{
      {"open_model safetensors", rows[0].header_bytes,
       [&] { return dmem::open_model(st_path).has_value(); }},
      {"open_model sharded", rows[1].header_bytes,
       [&] { return dmem::open_model(index_path).has_value(); }},
      {"open_model gguf", rows[2].header_bytes,
       [&] { return dmem::open_model(gguf_path).has_value(); }},
      {"open_model + summarize st", rows[0].header_bytes,
       [&] {
         auto m = dmem::open_model(st_path);
         if (!m) return false;
         for (const auto& c : m->components) (void)dmem::summarize(c);
         return true;
       }},
  };
  std::printf(
      "header parsing memory, %zu tensors per format (target: peak <= 4 x header + 64 MiB)\n",
      tensors);
  std::printf("%-32s %12s %14s %10s %10s %8s\n", "format", "header MB", "peak growth MB", "ratio",
              "budget", "seconds");
  int failures = 0;
  for (const auto* list : {&rows, &tiny_rows, &open_rows}) {
    for (const Row& r : *list) {
      const Peak p = measure(r.parse);
      const double mb = 1e-6;
      const double ratio = static_cast<double>(p.growth) / static_cast<double>(r.header_bytes);
      const bool within = p.growth <= 4 * r.header_bytes + (64ull << 20);
      std::printf("%-32s %12.1f %14.1f %9.2fx %10s %8.2f\n", r.format,
                  static_cast<double>(r.header_bytes) * mb, static_cast<double>(p.growth) * mb,
                  ratio,
                  !p.ok    ? "PARSE FAIL"
                  : within ? "ok"
                           : "OVER",
                  p.seconds);
      if (list != &open_rows && (!p.ok || !within)) ++failures;
      report.result(std::string(r.format) + " peak growth MB", static_cast<double>(p.growth) * mb);
      report.ratio(std::string(r.format) + " x header", ratio);
    }
  }
  std::error_code ec;
  if (!keep) fs::remove_all(dir, ec);
  if (!report.write(json)) return 1;
  return failures == 0 ? 0 : 1;
}
