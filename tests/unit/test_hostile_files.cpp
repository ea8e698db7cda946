// Hostile files (issue 6): sparse files with huge counts, special files (FIFOs, devices, folders),
// OS errors with their real reason, duplicate shard spellings, planted links at temp names,
// non-file write targets and a full disk. Every error must be one line with a rule id.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "dmem/checkpoint.hpp"
#include "dmem/model.hpp"
#include "dmem/writer.hpp"
#include "format/file_io.hpp"
#include "support/test_support.hpp"

using namespace dmem;
using dmem::test::TempDir;
namespace fs = std::filesystem;

namespace {

// ---- helpers -----------------------------------------------------------------------------------

std::uint64_t proc_status_kib(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::size_t n = std::strlen(field);
  while (std::getline(in, line))
    if (line.compare(0, n, field) == 0) return std::stoull(line.substr(n + 1));
  return 0;
}

struct ChildOutcome {
  int exit_code = -1;  // -1: killed by a signal
  int signal = 0;
  std::uint64_t peak_growth = 0;  // bytes the child's peak RSS grew by while running `fn`
};

// Runs `fn` in a forked child so a crash or a memory peak cannot touch the test process; the
// child's peak RSS is reset first (clear_refs 5) so the figure is the function's own.
ChildOutcome run_in_child(const std::function<int()>& fn) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    ::malloc_trim(0);  // freed heap already resident would hide the function's own growth
    { std::ofstream("/proc/self/clear_refs") << "5"; }
    const std::uint64_t before = proc_status_kib("VmRSS:");
    const int code = fn();
    const std::uint64_t peak = proc_status_kib("VmHWM:");
    const std::uint64_t growth = peak > before ? (peak - before) * 1024 : 0;
    (void)!::write(fds[1], &growth, sizeof growth);
    ::_exit(code);
  }
  ::close(fds[1]);
  ChildOutcome out;
  (void)!::read(fds[0], &out.peak_growth, sizeof out.peak_growth);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) out.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) out.signal = WTERMSIG(status);
  return out;
}

// Little-endian record builder for crafted GGUF headers.
struct Bytes {
  std::vector<std::uint8_t> b;
  Bytes& raw(const void* p, std::size_t n) {
    const auto* c = static_cast<const std::uint8_t*>(p);
    b.insert(b.end(), c, c + n);
    return *this;
  }
  Bytes& u32(std::uint32_t v) { return raw(&v, 4); }
  Bytes& u64(std::uint64_t v) { return raw(&v, 8); }
  Bytes& str(const std::string& s) { return u64(s.size()).raw(s.data(), s.size()); }
  Bytes& gguf(std::uint64_t n_tensors, std::uint64_t n_kv) {
    return raw("GGUF", 4).u32(3).u64(n_tensors).u64(n_kv);
  }
};

// Writes `head` and extends the file with a hole to `size` bytes: the size claims content that
// is not there.
void write_sparse(const std::string& path, const std::vector<std::uint8_t>& head,
                  std::uint64_t size) {
  dmem::test::write_file(path, head.data(), head.size());
  REQUIRE(::truncate(path.c_str(), static_cast<off_t>(size)) == 0);
}

// One line, with a rule id.
void check_one_line(const Status& s, const std::string& rule) {
  INFO(s.to_string());
  CHECK_FALSE(s.is_ok());
  CHECK(s.rule() == rule);
  CHECK(s.to_string().find('\n') == std::string::npos);
  CHECK_FALSE(s.hint().empty());
}

std::string write_minimal_safetensors(const TempDir& dir, const std::string& name) {
  const std::string path = dir.file(name);
  const float v = 1.0f;
  const TensorData t{"w", DType::f32, {1}, &v, 4};
  REQUIRE(write_safetensors(path, std::span<const TensorData>(&t, 1)).is_ok());
  return path;
}

bool have_file(const char* path) {
  struct stat st {};
  return ::stat(path, &st) == 0;
}

// ---- 1. pre-allocation from counts (GGUF, safetensors) -----------------------------------------

TEST_CASE("hostile: sparse GGUF with huge counts fails fast with bounded memory", "[hostile]") {
  TempDir dir;
  const std::uint64_t size = 64ull << 30;  // 64 GiB of hole
  const std::uint64_t max_tensors = (size - 24) / 25;
  const std::uint64_t max_kv = (size - 24) / 14;
  struct Case {
    const char* name;
    std::vector<std::uint8_t> head;
    const char* rule;
  };
  std::vector<Case> cases;
  cases.push_back({"tensors", Bytes().gguf(max_tensors, 0).b, "gguf.tensor_name"});
  cases.push_back({"kvs", Bytes().gguf(0, max_kv).b, "gguf.key"});
  // Arrays whose decoded form would need gigabytes: refused before anything is read.
  cases.push_back({"u8 array", Bytes().gguf(0, 1).str("a").u32(9).u32(0).u64(1ull << 30).b,
                   "gguf.metadata_size"});
  cases.push_back({"string array", Bytes().gguf(0, 1).str("a").u32(9).u32(8).u64(1ull << 29).b,
                   "gguf.metadata_size"});
  // A 1 GiB string value backed by nothing.
  cases.push_back(
      {"string", Bytes().gguf(0, 1).str("a").u32(8).u64(1ull << 30).b, "gguf.metadata_size"});
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.name) {
      const std::string path = dir.file("sparse.gguf");
      write_sparse(path, c.head, size);
      const auto start = std::chrono::steady_clock::now();
      const ChildOutcome out = run_in_child([&] {
        auto r = read_gguf(path);
        return !r && r.status().rule() == c.rule ? 0 : 1;
      });
      CHECK(out.signal == 0);
      CHECK(out.exit_code == 0);
      CHECK(out.peak_growth < (64ull << 20));
      CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
      auto r = read_gguf(path);
      REQUIRE_FALSE(r);
      check_one_line(r.status(), c.rule);
    }
  }
}

TEST_CASE("hostile: sparse safetensors claiming a 100 MB header reads in bounded pieces",
          "[hostile]") {
  TempDir dir;
  const std::string path = dir.file("sparse.safetensors");
  Bytes head;
  head.u64(99'000'000).raw("{\"a\":", 5);
  write_sparse(path, head.b, 8 + 99'000'000 + 16);
  const ChildOutcome out = run_in_child([&] {
    auto r = read_safetensors(path);
    return !r && r.status().rule() == "safetensors.header.json" ? 0 : 1;
  });
  CHECK(out.exit_code == 0);
  CHECK(out.peak_growth < (32ull << 20));
  auto r = read_safetensors(path);
  REQUIRE_FALSE(r);
  check_one_line(r.status(), "safetensors.header.json");
}

// ---- 2. amplification through a sharded index --------------------------------------------------

TEST_CASE("hostile: one shard under many spellings is read once", "[hostile]") {
  TempDir dir;
  // One shard holding n tensors; the index maps each tensor through a different spelling.
  constexpr int n = 400;
  std::vector<float> v(n, 1.0f);
  std::vector<TensorData> tensors;
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) names.push_back(std::string("t").append(std::to_string(i)));
  for (int i = 0; i < n; ++i) tensors.push_back({names[i], DType::f32, {1}, &v[i], 4});
  REQUIRE(write_safetensors(dir.file("x.safetensors"), tensors).is_ok());
  std::string index = "{\"weight_map\":{";
  for (int i = 0; i < n; ++i) {
    std::string spelling;
    for (int k = 0; k < i / 2; ++k) spelling += (i % 2 == 0) ? "./" : ".//";
    spelling += "x.safetensors";
    if (i) index += ',';
    index.append("\"").append(names[i]).append("\":\"").append(spelling).append("\"");
  }
  index += "}}";
  const std::string index_path = dir.file("model.safetensors.index.json");
  dmem::test::write_file(index_path, index);
  auto r = read_sharded(index_path);
  INFO((r ? std::string() : r.status().to_string()));
  REQUIRE(r);
  CHECK(r->files.size() == 1);  // 400 spellings, 1 header read
  CHECK(r->tensors.size() == static_cast<std::size_t>(n));
  for (const TensorInfo& t : r->tensors) CHECK(t.file == 0);
}

TEST_CASE("hostile: shard links out of the folder work; NUL in a shard name is refused",
          "[hostile]") {
  TempDir dir;
  fs::create_directory(dir.file("blobs"));
  fs::create_directory(dir.file("snapshot"));
  write_minimal_safetensors(dir, "blobs/abc123");
  REQUIRE(::symlink("../blobs/abc123",
                    dir.file("snapshot/model-00001-of-00001.safetensors").c_str()) == 0);
  const std::string index = dir.file("snapshot/model.safetensors.index.json");
  dmem::test::write_file(index, R"({"weight_map":{"w":"model-00001-of-00001.safetensors"}})");
  auto ok = read_sharded(index);
  INFO((ok ? std::string() : ok.status().to_string()));
  CHECK(ok);
  // "\u0000" decodes to a NUL; the OS would open only "model-00001-of-00001.safetensors".
  dmem::test::write_file(index,
                         R"({"weight_map":{"w":"model-00001-of-00001.safetensors\u0000.evil"}})");
  auto bad = read_sharded(index);
  REQUIRE_FALSE(bad);
  check_one_line(bad.status(), "sharded.shard.path");
  CHECK(bad.status().tensor() == "w");
}

// ---- 3. special files and OS errors ------------------------------------------------------------

TEST_CASE("hostile: FIFOs, devices and folders are refused by every reader", "[hostile]") {
  TempDir dir;
  const std::string fifo = dir.file("pipe.safetensors");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::string folder = dir.file("folder.gguf");
  fs::create_directory(folder);
  std::vector<std::string> inputs{fifo, folder};
  if (have_file("/dev/zero")) inputs.push_back("/dev/zero");
  if (have_file("/dev/null")) inputs.push_back("/dev/null");

  using Reader = std::function<Status(const std::string&)>;
  const std::vector<std::pair<const char*, Reader>> readers{
      {"read_safetensors", [](const std::string& p) { return read_safetensors(p).status(); }},
      {"read_gguf", [](const std::string& p) { return read_gguf(p).status(); }},
      {"read_sharded", [](const std::string& p) { return read_sharded(p).status(); }},
      {"read_small_file",
       [](const std::string& p) { return detail::read_small_file(p, 1 << 20).status(); }},
  };
  for (const auto& [name, read] : readers) {
    for (const std::string& input : inputs) {
      INFO(name << " on " << input);
      const auto start = std::chrono::steady_clock::now();
      const Status s = read(input);
      CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
      check_one_line(s, "file.not_regular");
      if (input == folder) CHECK(s.message().find("folder") != std::string::npos);
      if (input == fifo) CHECK(s.message().find("FIFO") != std::string::npos);
      if (input.rfind("/dev/", 0) == 0) CHECK(s.message().find("device") != std::string::npos);
    }
  }
  // open_model on the special files themselves: an error, never a hang or a read.
  for (const std::string& input : inputs) {
    INFO("open_model on " << input);
    auto m = open_model(input);
    REQUIRE_FALSE(m);
    CHECK(m.status().to_string().find('\n') == std::string::npos);
    CHECK_FALSE(m.status().rule().empty());
  }
}

TEST_CASE("hostile: diffusers folders whose JSON or weights are FIFOs or folders", "[hostile]") {
  enum class Kind { fifo, folder };
  for (const Kind kind : {Kind::fifo, Kind::folder}) {
    for (const char* which : {"config.json", "model_index.json", "weights"}) {
      DYNAMIC_SECTION((kind == Kind::fifo ? "FIFO " : "folder ") << which) {
        TempDir dir;
        fs::create_directory(dir.file("transformer"));
        const std::string weights = "transformer/diffusion_pytorch_model.safetensors";
        if (std::string(which) != "weights") write_minimal_safetensors(dir, weights);
        std::string special;
        if (std::string(which) == "config.json") {
          special = dir.file("transformer/config.json");
        } else if (std::string(which) == "model_index.json") {
          special = dir.file("model_index.json");
        } else {
          special = dir.file(weights);
          dmem::test::write_file(dir.file("transformer/config.json"), "{}");
        }
        if (std::string(which) != "model_index.json") {
          dmem::test::write_file(
              dir.file("model_index.json"),
              R"({"_class_name":"P","transformer":["diffusers","FluxTransformer2DModel"]})");
        }
        if (kind == Kind::fifo) {
          REQUIRE(::mkfifo(special.c_str(), 0600) == 0);
        } else {
          fs::create_directory(special);
        }
        // The pipeline folder, and the component folder itself.
        for (const std::string& open : {dir.path().string(), dir.file("transformer")}) {
          if (std::string(which) == "model_index.json" && open != dir.path().string()) continue;
          INFO(open);
          const auto start = std::chrono::steady_clock::now();
          auto m = open_model(open);
          CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
          REQUIRE_FALSE(m);
          check_one_line(m.status(), "file.not_regular");
          CHECK(m.status().file() == special);
        }
      }
    }
  }
}

TEST_CASE("hostile: OS errors keep their real reason", "[hostile]") {
  TempDir dir;
  // ELOOP: a link to itself.
  const std::string loop = dir.file("loop.safetensors");
  REQUIRE(::symlink(loop.c_str(), loop.c_str()) == 0);
  // ENAMETOOLONG: one name longer than NAME_MAX.
  const std::string longname = dir.file(std::string(300, 'x') + ".safetensors");
  // ENOTDIR: a file used as a folder.
  const std::string file = write_minimal_safetensors(dir, "a.safetensors");
  const std::string notdir = file + "/b.safetensors";
  struct Case {
    std::string path;
    const char* reason;
  };
  const std::vector<Case> cases{
      {loop, "symbolic links"},
      {longname, "too long"},
      {notdir, "Not a directory"},
  };
  for (const Case& c : cases) {
    INFO(c.path.substr(0, 80));
    auto st = read_safetensors(c.path);
    REQUIRE_FALSE(st);
    check_one_line(st.status(), "file.io");
    CHECK(st.status().message().find(c.reason) != std::string::npos);
    auto m = open_model(c.path);
    REQUIRE_FALSE(m);
    CHECK(m.status().message().find(c.reason) != std::string::npos);
    CHECK(m.status().message().find("not an existing") == std::string::npos);
  }
  // EACCES (root reads anything, so only checked as a normal user).
  if (::geteuid() != 0) {
    const std::string locked = dir.file("locked");
    fs::create_directory(locked);
    const std::string inside = write_minimal_safetensors(dir, "locked/x.safetensors");
    ::chmod(locked.c_str(), 0);
    auto m = open_model(inside);
    ::chmod(locked.c_str(), 0700);
    REQUIRE_FALSE(m);
    CHECK(m.status().message().find("Permission denied") != std::string::npos);
  }
  // A NUL inside a path is refused, not cut short.
  auto nul = read_safetensors(std::string(file) + std::string("\0.x", 3));
  REQUIRE_FALSE(nul);
  check_one_line(nul.status(), "file.path");
}

// ---- 6. safe writes ----------------------------------------------------------------------------

TEST_CASE("hostile: writers refuse targets that are not regular files", "[hostile]") {
  TempDir dir;
  const std::string fifo = dir.file("out.fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::string folder = dir.file("out.dir");
  fs::create_directory(folder);
  const std::string link_to_null = dir.file("null.link");
  std::vector<std::string> targets{fifo, folder, folder + "/"};
  // Devices only through a link in the temp folder: if a regression ever renamed over the
  // target, a test running as root would otherwise replace the real /dev/null.
  if (have_file("/dev/null")) {
    REQUIRE(::symlink("/dev/null", link_to_null.c_str()) == 0);
    targets.push_back(link_to_null);
  }
  const float v = 1.0f;
  const TensorData t{"w", DType::f32, {1}, &v, 4};
  for (const std::string& target : targets) {
    INFO(target);
    struct stat before {};
    const bool existed = ::lstat(target.c_str(), &before) == 0;
    check_one_line(write_safetensors(target, std::span<const TensorData>(&t, 1)),
                   "file.write_target");
    check_one_line(write_gguf(target, std::span<const TensorData>(&t, 1)), "file.write_target");
    check_one_line(detail::write_file_atomic(target, "x"), "file.write_target");
    struct stat after {};
    if (existed) {
      REQUIRE(::lstat(target.c_str(), &after) == 0);
      CHECK(after.st_mode == before.st_mode);
      CHECK(after.st_ino == before.st_ino);
    }
  }
  // Nothing was left behind in the folder.
  std::size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  CHECK(entries == (have_file("/dev/null") ? 3u : 2u));  // fifo, folder, link
}

TEST_CASE("hostile: a planted link at a temp name cannot redirect a write", "[hostile]") {
  TempDir dir;
  const std::string target = dir.file("plan.svg");
  const std::string victim = dir.file("victim.txt");
  dmem::test::write_file(victim, "precious");
  // The old predictable names, planted as links to the victim.
  for (const char* suffix : {".tmp", ".0.tmp", ".1.tmp"}) {
    const std::string planted = target + suffix;
    REQUIRE(::symlink(victim.c_str(), planted.c_str()) == 0);
  }
  REQUIRE(detail::write_file_atomic(target, "<svg/>").is_ok());
  const auto got = dmem::test::read_file(target);
  CHECK(std::string(got.begin(), got.end()) == "<svg/>");
  const auto v = dmem::test::read_file(victim);
  CHECK(std::string(v.begin(), v.end()) == "precious");
  // The temp file is created with O_EXCL|O_NOFOLLOW under an unpredictable name.
  auto a = detail::TempFile::create(target);
  auto b = detail::TempFile::create(target);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->temp_path() != b->temp_path());
  CHECK(a->temp_path().find("/.plan.svg.") != std::string::npos);
  // A replaced file keeps its mode.
  REQUIRE(::chmod(target.c_str(), 0600) == 0);
  REQUIRE(detail::write_file_atomic(target, "<svg/>").is_ok());
  struct stat mode {};
  REQUIRE(::stat(target.c_str(), &mode) == 0);
  CHECK((mode.st_mode & 0777) == 0600);
  // A folder on the way that is a link loop: the OS's reason, one line.
  const std::string loop = dir.file("loop");
  REQUIRE(::symlink(loop.c_str(), loop.c_str()) == 0);
  const Status looped = detail::write_file_atomic(loop + "/out.svg", "x");
  check_one_line(looped, "file.io");
  CHECK(looped.message().find("symbolic links") != std::string::npos);
  // A name near NAME_MAX still gets a temp name that fits.
  const std::string long_target = dir.file(std::string(250, 'n'));
  CHECK(detail::write_file_atomic(long_target, "x").is_ok());
  // A link at the destination is replaced, not written through.
  const std::string link = dir.file("link.svg");
  REQUIRE(::symlink(victim.c_str(), link.c_str()) == 0);
  REQUIRE(detail::write_file_atomic(link, "new").is_ok());
  struct stat st {};
  REQUIRE(::lstat(link.c_str(), &st) == 0);
  CHECK(S_ISREG(st.st_mode));
  const auto v2 = dmem::test::read_file(victim);
  CHECK(std::string(v2.begin(), v2.end()) == "precious");
}

TEST_CASE("hostile: dmem plan --svg goes through the safe write", "[hostile][cli]") {
  TempDir dir;
  const std::string machine = " --no-probe --gpu rtx5090 --ram 60GiB --disk 500GiB";
  // A planted link at the old predictable temp name is never followed.
  const std::string svg = dir.file("plans.svg");
  const std::string victim = dir.file("victim");
  dmem::test::write_file(victim, "precious");
  REQUIRE(::symlink(victim.c_str(), (svg + ".tmp").c_str()) == 0);
  std::string out;
  REQUIRE(dmem::test::run_command(
              dmem::test::cli_path() + " plan qwen-image" + machine + " --svg " + svg, &out) == 0);
  const auto v = dmem::test::read_file(victim);
  CHECK(std::string(v.begin(), v.end()) == "precious");
  CHECK(dmem::test::read_file(svg).size() > 100);
  // A FIFO target: refused at once with one line naming the rule (never opened, so no hang).
  const std::string fifo = dir.file("out.svg");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const int rc = dmem::test::run_command(
      dmem::test::cli_path() + " plan qwen-image" + machine + " --svg " + fifo, &out);
  CHECK(rc == 2);
  CHECK(out.find("[rule file.write_target]") != std::string::npos);
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  struct stat st {};
  REQUIRE(::lstat(fifo.c_str(), &st) == 0);
  CHECK(S_ISFIFO(st.st_mode));
}

TEST_CASE("hostile: a full disk leaves the old file and no temp file", "[hostile]") {
  TempDir dir;
  const std::string target = dir.file("out.safetensors");
  dmem::test::write_file(target, "old contents");
  // RLIMIT_FSIZE in a child makes every write past 4 KiB fail with EFBIG, as a full disk would.
  const ChildOutcome out = run_in_child([&] {
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim {
      4096, 4096
    };
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) return 3;
    std::vector<float> big(1 << 16, 1.0f);
    const TensorData t{"w", DType::f32, {big.size()}, big.data(), big.size() * 4};
    const Status st = write_safetensors(target, std::span<const TensorData>(&t, 1));
    const Status sg = write_gguf(target, std::span<const TensorData>(&t, 1));
    const Status sf = detail::write_file_atomic(target, std::string(1 << 16, 'x'));
    for (const Status* s : {&st, &sg, &sf}) {
      if (s->is_ok() || s->rule() != "file.write") return 1;
      if (s->file() != target || s->to_string().find('\n') != std::string::npos) return 2;
    }
    return 0;
  });
  CHECK(out.exit_code == 0);
  const auto got = dmem::test::read_file(target);
  CHECK(std::string(got.begin(), got.end()) == "old contents");
  std::size_t entries = 0;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  CHECK(entries == 1);
  // /dev/full, where there is one: refused as a device before anything is written.
  // /dev/full (through a link, see above): refused as a device before anything is written.
  if (have_file("/dev/full")) {
    const std::string full = dir.file("full.link");
    REQUIRE(::symlink("/dev/full", full.c_str()) == 0);
    check_one_line(detail::write_file_atomic(full, "x"), "file.write_target");
  }
}

// ---- 9. memory multiple ------------------------------------------------------------------------

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kMeasureRss = false;  // redzones and quarantine inflate RSS under ASan
#else
constexpr bool kMeasureRss = true;
#endif

TEST_CASE("hostile: header parsing memory stays within 4x the header", "[hostile]") {
  TempDir dir;
  constexpr std::size_t n = 60000;
  std::vector<std::string> names;
  names.reserve(n);
  for (std::size_t i = 0; i < n; ++i)
    names.push_back("transformer_blocks." + std::to_string(i / 8) + ".attn.to_q_" +
                    std::to_string(i % 8) + ".weight");
  std::vector<float> data(n * 4, 0.0f);
  std::vector<TensorData> tensors;
  for (std::size_t i = 0; i < n; ++i)
    tensors.push_back({names[i], DType::f32, {2, 2}, &data[i * 4], 16});
  const std::string st = dir.file("model.safetensors");
  REQUIRE(write_safetensors(st, tensors).is_ok());
  const std::string gg = dir.file("model.gguf");
  REQUIRE(write_gguf(gg, tensors).is_ok());
  auto st_info = read_safetensors(st);
  REQUIRE(st_info);
  auto gg_info = read_gguf(gg);
  REQUIRE(gg_info);
  struct Case {
    const char* name;
    std::uint64_t header;
    std::function<bool()> parse;
  };
  const std::vector<Case> cases{
      {"safetensors", st_info->data_start, [&] { return read_safetensors(st).has_value(); }},
      {"gguf", gg_info->data_start, [&] { return read_gguf(gg).has_value(); }},
  };
  for (const Case& c : cases) {
    INFO(c.name << ": header " << c.header << " bytes");
    const ChildOutcome out = run_in_child([&] { return c.parse() ? 0 : 1; });
    CHECK(out.exit_code == 0);
    INFO("peak growth " << out.peak_growth);
    if (kMeasureRss) CHECK(out.peak_growth <= 4 * c.header + (8u << 20));
  }
}

// Peak RSS of `dmem ARGS > /dev/null`, in KiB, from the child's own rusage.
long cli_peak_kib(const std::vector<std::string>& args) {
  const std::string cli = test::cli_path();
  std::vector<char*> argv{const_cast<char*>(cli.c_str())};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int null_fd = ::open("/dev/null", O_WRONLY);
    ::dup2(null_fd, 1);
    ::execv(cli.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  struct rusage usage {};
  REQUIRE(::wait4(pid, &status, 0, &usage) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  return usage.ru_maxrss;
}

TEST_CASE("hostile: inspect --json --tensors costs no more memory than the summary",
          "[hostile][cli]") {
  // The tensor list is written entry by entry: listing 60k tensors must not build a document
  // tree of them (about ten times the header).
  TempDir dir;
  constexpr std::size_t n = 60000;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < n; ++i)
    names.push_back("transformer_blocks." + std::to_string(i / 8) + ".ff.net_" +
                    std::to_string(i % 8) + ".weight");
  std::vector<float> data(4, 0.0f);
  std::vector<TensorData> tensors;
  for (std::size_t i = 0; i < n; ++i)
    tensors.push_back({names[i], DType::f32, {2, 2}, data.data(), 16});
  const std::string st = dir.file("model.safetensors");
  REQUIRE(write_safetensors(st, tensors).is_ok());
  const long summary = cli_peak_kib({"inspect", st, "--json"});
  const long listed = cli_peak_kib({"inspect", st, "--json", "--tensors"});
  INFO("peak RSS: --json " << summary << " KiB, --json --tensors " << listed << " KiB");
  if (kMeasureRss) CHECK(listed <= summary + summary / 4 + 8 * 1024);
}

}  // namespace
