// /proc and /sys readers for RAM (with cgroup limits), disk and CPUs. Parsing is split from
// reading so tests can feed fixture text and fixture folders.
#include <sched.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "hw/hw_detail.hpp"

namespace dmem::detail {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() &&
         (s.front() == ' ' || s.front() == '\t' || s.front() == '\n' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\n' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::optional<std::uint64_t> parse_u64(std::string_view s) {
  s = trim(s);
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Small files only (/proc, /sys); a missing or unreadable file is "not there".
std::optional<std::string> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string out;
  char buf[4096];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.append(buf, static_cast<std::size_t>(in.gcount()));
    if (out.size() > (1u << 20)) break;
  }
  return out;
}

// "/a/b" -> {"/a/b", "/a", ""}: this cgroup and every ancestor up to the mounted root.
std::vector<std::string> ancestors(std::string path) {
  std::vector<std::string> out;
  while (!path.empty() && path.back() == '/') path.pop_back();
  while (true) {
    out.push_back(path);
    if (path.empty()) break;
    auto slash = path.rfind('/');
    path = slash == std::string::npos ? std::string() : path.substr(0, slash);
  }
  return out;
}

}  // namespace

std::optional<MemInfo> parse_meminfo(std::string_view text) noexcept {
  std::optional<std::uint64_t> total, avail;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view key = line.substr(0, colon);
    std::string_view rest = trim(line.substr(colon + 1));
    std::uint64_t mult = 1;
    if (rest.size() > 3 && rest.substr(rest.size() - 3) == " kB") {
      mult = 1024;
      rest.remove_suffix(3);
    }
    auto v = parse_u64(rest);
    if (!v) continue;
    if (key == "MemTotal")
      total = *v * mult;
    else if (key == "MemAvailable")
      avail = *v * mult;
  }
  if (!total || !avail) return std::nullopt;
  return MemInfo{*total, *avail};
}

std::optional<std::uint64_t> CgroupMemory::room() const noexcept {
  if (!limit) return std::nullopt;
  return *limit > usage ? *limit - usage : 0;
}

std::optional<CgroupMemory> parse_cgroup_memory(std::string_view limit_text,
                                                std::string_view usage_text) noexcept {
  CgroupMemory m;
  const std::string_view lt = trim(limit_text);
  if (lt != "max") {
    auto l = parse_u64(lt);
    if (!l) return std::nullopt;
    // cgroup v1 spells "no limit" as LONG_MAX rounded down to a page.
    if (*l < (1ull << 62)) m.limit = *l;
  }
  auto u = parse_u64(usage_text);
  if (!u) return std::nullopt;
  m.usage = *u;
  return m;
}

std::optional<std::string> parse_proc_cgroup(std::string_view text, bool& v2) noexcept {
  std::optional<std::string> v2_path, v1_path;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    auto c1 = line.find(':');
    if (c1 == std::string_view::npos) continue;
    auto c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    std::string_view id = line.substr(0, c1);
    std::string_view controllers = line.substr(c1 + 1, c2 - c1 - 1);
    std::string path(line.substr(c2 + 1));
    if (id == "0" && controllers.empty()) {
      v2_path = path;
      continue;
    }
    // v1 controller lists are comma separated ("memory" or "cpu,memory").
    std::string_view rest = controllers;
    while (!rest.empty()) {
      auto comma = rest.find(',');
      if (rest.substr(0, comma) == "memory") v1_path = path;
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  }
  if (v1_path) {
    v2 = false;
    return v1_path;
  }
  if (v2_path) {
    v2 = true;
    return v2_path;
  }
  return std::nullopt;
}

std::optional<RamInfo> read_ram(const SystemPaths& paths) noexcept {
  auto text = slurp(paths.meminfo);
  if (!text) return std::nullopt;
  auto mi = parse_meminfo(*text);
  if (!mi) return std::nullopt;
  RamInfo r;
  r.total = mi->total;
  r.available = mi->available;

  bool v2 = true;
  std::string cg_path;
  if (auto self = slurp(paths.self_cgroup)) {
    if (auto p = parse_proc_cgroup(*self, v2)) cg_path = *p;
  } else {
    // No /proc/self/cgroup: look at the root of whichever hierarchy is mounted.
    std::error_code ec;
    v2 = std::filesystem::exists(paths.cgroup_root + "/memory.max", ec) ||
         !std::filesystem::exists(paths.cgroup_root + "/memory", ec);
  }
  const std::string base = v2 ? paths.cgroup_root : paths.cgroup_root + "/memory";
  const char* limit_file = v2 ? "/memory.max" : "/memory.limit_in_bytes";
  const char* usage_file = v2 ? "/memory.current" : "/memory.usage_in_bytes";
  // Inside a container the namespace root is mounted at cgroup_root, so the path from
  // /proc/self/cgroup may not exist below it; every ancestor that does exist is checked.
  for (const auto& rel : ancestors(cg_path)) {
    auto lim = slurp(base + rel + limit_file);
    auto use = slurp(base + rel + usage_file);
    if (!lim || !use) continue;
    auto cm = parse_cgroup_memory(*lim, *use);
    if (!cm || !cm->limit) continue;
    if (*cm->limit < r.total) r.total = *cm->limit;
    const auto room = *cm->room();
    if (room < r.available) {
      r.available = room;
      r.limited_by = std::string(v2 ? "cgroup v2 " : "cgroup v1 ") + (rel.empty() ? "/" : rel);
    }
  }
  return r;
}

std::string default_cache_dir() noexcept {
  if (const char* d = std::getenv("DMEM_CACHE_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/dmem";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/dmem";
  return "/tmp/dmem-cache";
}

std::optional<std::uint64_t> disk_free_at(const std::string& dir) noexcept {
  std::filesystem::path p = dir.empty() ? std::filesystem::path(".") : std::filesystem::path(dir);
  std::error_code ec;
  // The cache folder may not exist yet: measure the file system it would be created on.
  while (!std::filesystem::exists(p, ec)) {
    if (!p.has_parent_path() || p.parent_path() == p) return std::nullopt;
    p = p.parent_path();
  }
  struct statvfs st {};
  if (::statvfs(p.c_str(), &st) != 0) return std::nullopt;
  return static_cast<std::uint64_t>(st.f_bavail) * static_cast<std::uint64_t>(st.f_frsize);
}

std::uint32_t cpu_cores() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<std::uint32_t>(n);
  }
  const unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

}  // namespace dmem::detail
