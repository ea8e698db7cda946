// The runtime's timeline recorder (src/runtime/trace.*) and its summary (trace_summary.*).
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "format/json_util.hpp"
#include "runtime/trace.hpp"
#include "runtime/trace_summary.hpp"
#include "support/test_support.hpp"

using dmem::detail::ScopedSpan;
using dmem::detail::Store;
using dmem::detail::Trace;

namespace {

constexpr std::uint64_t kMs = 1'000'000;  // ns

nlohmann::json read_json(const std::string& path) {
  const auto bytes = dmem::test::read_file(path);
  nlohmann::json j;
  dmem::detail::JsonError error;
  const std::string_view text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  INFO(error.message);
  REQUIRE(dmem::detail::parse_json_strict(text, j, error));
  return j;
}

// A timeline whose every figure is known exactly (docs/runtime.md, "Traces").
void record_crafted(Trace& t) {
  const auto io = t.lane("io 0");
  const auto copy = t.lane("copy 0");
  const auto compute = t.lane("compute");
  const auto host = t.lane("host");
  // Load: [0,5) and [3,8) overlap, then [9,10): 9 ms of wall time, 3500 bytes.
  t.span(io, "load", "a.weight", 0, 5 * kMs, {{"bytes", 1000}});
  t.span(io, "load", "b.weight", 3 * kMs, 8 * kMs, {{"bytes", 2000}});
  t.span(io, "load", "c.weight", 9 * kMs, 10 * kMs, {{"bytes", 500}});
  const std::uint64_t s0 = 100 * kMs, s1 = 110 * kMs;
  t.span(host, "phase", "denoise", s0, s1 + 10 * kMs);
  t.span(host, "step", "step 0", s0, s0 + 10 * kMs, {{"index", 0}});
  t.span(host, "step", "step 1", s1, s1 + 10 * kMs, {{"index", 1}});
  t.span(compute, "compute", "blocks", s0 + 2 * kMs, s0 + 6 * kMs);
  t.span(compute, "compute", "blocks", s1 + 2 * kMs, s1 + 8 * kMs);
  // Step 0: 9 ms of copies, 3 ms of them under compute; one device->host copy.
  t.span(copy, "copy", "block 0", s0, s0 + 4 * kMs, {{"bytes", 100}});
  t.span(copy, "copy", "block 1", s0 + 5 * kMs, s0 + 9 * kMs, {{"bytes", 200}});
  t.span(copy, "copy", "block 1", s0 + 8 * kMs, s0 + 9 * kMs, {{"bytes", 50}, {"d2h", 1}});
  // Step 1: 6 ms of copies, 4 ms under compute.
  t.span(copy, "copy", "block 2", s1, s1 + 2 * kMs, {{"bytes", 300}});
  t.span(copy, "copy", "block 3", s1 + 3 * kMs, s1 + 7 * kMs, {{"bytes", 400}, {"d2h", 0}});
  // Stalls: 0.75 ms in step 0, 1 ms in step 1.
  t.span(host, "wait", "block 1", s0 + kMs, s0 + kMs + kMs / 2);
  t.span(host, "wait", "block 1", s0 + 3 * kMs, s0 + 3 * kMs + kMs / 4);
  t.span(host, "wait", "block 2", s1 + kMs, s1 + 2 * kMs);
  t.instant(host, "evict", "block 0", {{"bytes", 64}});
  t.instant(host, "evict", "block 1", {{"bytes", 64}});
  t.span(host, "evict", "block 2", s1, s1 + kMs, {{"bytes", 32}});
  t.memory(Store::device, 100);
  t.memory(Store::device, 300);
  t.memory(Store::device, 200);
  t.memory(Store::pinned, 50);
  t.set_info("device", "cpu");
  t.set_info_number("budget.device", 1000);
  t.set_info_number("estimate.device", 330);
  t.set_info_number("budget.pinned", 4096);
  t.set_info_number("estimate.step_seconds", 0.011);
}

void check_crafted(const dmem::detail::TraceSummary& s) {
  CHECK(s.device == "cpu");
  REQUIRE(s.stores.size() == 2);
  CHECK(s.stores[0].store == "device");
  CHECK(s.stores[0].peak_bytes == 300u);
  CHECK(s.stores[0].budget_bytes == 1000.0);
  REQUIRE(s.stores[0].estimate_error_pct);
  CHECK(*s.stores[0].estimate_error_pct == Approx(10.0));
  CHECK(s.stores[1].store == "pinned");
  CHECK(s.stores[1].peak_bytes == 50u);
  CHECK(s.stores[1].budget_bytes == 4096.0);
  CHECK_FALSE(s.stores[1].estimate_error_pct);

  CHECK(s.load_spans == 3);
  CHECK(s.load_bytes == 3500);
  CHECK(s.load_seconds == Approx(0.009));
  REQUIRE(s.load_gbps);
  CHECK(*s.load_gbps == Approx(3500.0 / 0.009 / 1e9));

  REQUIRE(s.phases.size() == 1);
  CHECK(s.phases[0].name == "denoise");
  CHECK(s.phases[0].seconds == Approx(0.020));

  REQUIRE(s.steps.size() == 2);
  const auto& a = s.steps[0];
  CHECK(a.index == 0);
  CHECK(a.seconds == Approx(0.010));
  CHECK(a.h2d_bytes == 300);
  CHECK(a.h2d_copies == 2);
  CHECK(a.d2h_copies == 1);
  CHECK(a.d2h_bytes == 50);
  CHECK(a.stall_seconds == Approx(0.00075));
  CHECK(a.copy_seconds == Approx(0.009));
  REQUIRE(a.overlap);
  CHECK(*a.overlap == Approx(1.0 / 3.0));
  const auto& b = s.steps[1];
  CHECK(b.index == 1);
  CHECK(b.h2d_bytes == 700);
  CHECK(b.d2h_copies == 0);
  CHECK(b.stall_seconds == Approx(0.001));
  REQUIRE(b.overlap);
  CHECK(*b.overlap == Approx(2.0 / 3.0));

  CHECK(s.steps_seconds == Approx(0.020));
  REQUIRE(s.mean_step_seconds);
  CHECK(*s.mean_step_seconds == Approx(0.010));
  CHECK(s.h2d_bytes == 1000);
  CHECK(s.d2h_copies == 1);
  CHECK(s.stall_seconds == Approx(0.00175));
  REQUIRE(s.overlap);
  CHECK(*s.overlap == Approx(7.0 / 15.0));
  REQUIRE(s.step_estimate_error_pct);
  CHECK(*s.step_estimate_error_pct == Approx(10.0));
  CHECK(s.evictions == 3);
  CHECK(s.evicted_bytes == 160);
  CHECK(s.dropped_events == 0);
}

std::string crafted_trace(const dmem::test::TempDir& dir) {
  Trace t;
  t.enable(true);
  record_crafted(t);
  const std::string path = dir.file("t.json");
  REQUIRE(t.write_chrome_json(path).is_ok());
  return path;
}

}  // namespace

TEST_CASE("trace: disabled records nothing, and lanes still work", "[trace]") {
  Trace t;
  CHECK_FALSE(t.enabled());
  const auto lane = t.lane("compute");
  CHECK(t.lane("compute") == lane);
  CHECK(t.lane("copy 0") != lane);
  t.span(lane, "load", "x", 0, 10, {{"bytes", 1}});
  t.instant(lane, "evict", "x");
  t.memory(Store::device, 5);
  t.set_info("device", "cpu");
  { ScopedSpan span(t, lane, "compute", "linear"); }
  CHECK(t.size() == 0);
  CHECK(t.dropped() == 0);

  dmem::test::TempDir dir;
  REQUIRE(t.write_chrome_json(dir.file("empty.json")).is_ok());
  const auto j = read_json(dir.file("empty.json"));
  CHECK(j["displayTimeUnit"] == "ms");
  CHECK(j["dmem"]["trace.events"] == 0);
  CHECK_FALSE(j["dmem"].contains("device"));
  for (const auto& e : j["traceEvents"]) CHECK(e["ph"] == "M");  // only the lane names
}

TEST_CASE("trace: threads record at once and every event is kept", "[trace][threads]") {
  Trace t;
  t.enable(true);
  constexpr int kThreads = 8, kEach = 2000;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&t, i] {
      const auto lane = t.lane("io " + std::to_string(i));
      for (int k = 0; k < kEach; ++k) {
        const auto start = t.now_ns();
        t.span(lane, "load", "tensor " + std::to_string(k % 7), start, start + 10, {{"bytes", 3}});
        t.memory(Store::pinned, static_cast<std::uint64_t>(k));
        ScopedSpan s(t, lane, "alloc", "scratch");
        s.set_arg("bytes", 1);
      }
    });
  }
  for (auto& th : threads) th.join();
  CHECK(t.size() == 3u * kThreads * kEach);
  CHECK(t.dropped() == 0);

  dmem::test::TempDir dir;
  REQUIRE(t.write_chrome_json(dir.file("t.json")).is_ok());
  auto s = dmem::detail::summarize_trace_file(dir.file("t.json"));
  REQUIRE(s.is_ok());
  CHECK(s->load_spans == std::uint64_t{kThreads} * kEach);
  CHECK(s->load_bytes == 3u * kThreads * kEach);
  REQUIRE(s->stores.size() == 1);
  CHECK(s->stores[0].peak_bytes == std::uint64_t{kEach - 1});
  const auto j = read_json(dir.file("t.json"));
  int lanes = 0;
  for (const auto& e : j["traceEvents"])
    if (e["ph"] == "M" && e["name"] == "thread_name") ++lanes;
  CHECK(lanes == kThreads);
}

TEST_CASE("trace: the cap keeps the first events and counts the rest", "[trace]") {
  Trace t;
  t.enable(true);
  t.set_capacity(100);
  const auto lane = t.lane("host");
  for (int i = 0; i < 150; ++i) t.span(lane, "copy", "b", 0, 1, {{"bytes", 1}});
  CHECK(t.size() == 100);
  CHECK(t.dropped() == 50);
  dmem::test::TempDir dir;
  REQUIRE(t.write_chrome_json(dir.file("t.json")).is_ok());
  const auto j = read_json(dir.file("t.json"));
  CHECK(j["dmem"]["trace.dropped"] == 50);
  CHECK(j["dmem"]["trace.events"] == 100);
  auto s = dmem::detail::summarize_trace_file(dir.file("t.json"));
  REQUIRE(s.is_ok());
  CHECK(s->dropped_events == 50);
}

TEST_CASE("trace: Chrome JSON has microsecond timestamps and escaped names", "[trace]") {
  Trace t;
  t.enable(true);
  const auto lane = t.lane("io \"0\"\n");
  t.span(lane, "load", "a\"b\\c\nd\x01", 1'234'567, 2'000'000, {{"bytes", 42}, {"d2h", 1}});
  t.span(lane, "load", std::string("bad\xff utf8"), 0, 1);
  t.set_info("note", "quote \" and \xfe");
  t.set_info_number("estimate.step_seconds", 0.5);
  t.set_info_number("trace.events", 99);  // a reserved fact: the writer's value wins
  dmem::test::TempDir dir;
  REQUIRE(t.write_chrome_json(dir.file("t.json")).is_ok());
  const auto j = read_json(dir.file("t.json"));
  bool seen = false, seen_bad = false, seen_lane = false;
  for (const auto& e : j["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "thread_name" && e["args"]["name"] == "io \"0\"\n")
      seen_lane = true;
    if (e["ph"] != "X") continue;
    if (e["name"] == "a\"b\\c\nd\x01") {
      seen = true;
      CHECK(e["cat"] == "load");
      CHECK(e["ts"].get<double>() == Approx(1234.567));
      CHECK(e["dur"].get<double>() == Approx(765.433));
      CHECK(e["args"]["bytes"] == 42);
      CHECK(e["args"]["d2h"] == 1);
      CHECK(e["pid"] == 1);
    }
    if (e["name"] == "bad\xef\xbf\xbd utf8") seen_bad = true;
  }
  CHECK(seen);
  CHECK(seen_bad);
  CHECK(seen_lane);
  CHECK(j["dmem"]["note"] == "quote \" and \xef\xbf\xbd");
  CHECK(j["dmem"]["estimate.step_seconds"] == 0.5);
  CHECK(j["dmem"]["trace.events"] == 2);
}

TEST_CASE("trace: ScopedSpan records from construction to destruction", "[trace]") {
  Trace t;
  t.enable(true);
  const auto lane = t.lane("io 0");
  {
    ScopedSpan s(t, lane, "load", "w", {{"bytes", 1}});
    s.set_arg("bytes", 77);
  }
  {
    // The name is copied: a temporary is safe (ASan would see a dangling view).
    ScopedSpan s(t, lane, "compute", std::string("linear ") + std::to_string(12));
  }
  REQUIRE(t.size() == 2);
  dmem::test::TempDir dir;
  REQUIRE(t.write_chrome_json(dir.file("t.json")).is_ok());
  auto s = dmem::detail::summarize_trace_file(dir.file("t.json"));
  REQUIRE(s.is_ok());
  CHECK(s->load_bytes == 77);
  bool named = false;
  const auto j = read_json(dir.file("t.json"));
  for (const auto& e : j["traceEvents"])
    named = named || (e["ph"] == "X" && e["name"] == "linear 12" && e["cat"] == "compute");
  CHECK(named);
}

TEST_CASE("trace: writing refuses a folder and leaves no temporary file", "[trace]") {
  Trace t;
  t.enable(true);
  dmem::test::TempDir dir;
  const auto status = t.write_chrome_json(dir.path().string());
  REQUIRE_FALSE(status.is_ok());
  CHECK(status.rule() == "file.write_target");
  CHECK(std::filesystem::is_empty(dir.path()));
}

TEST_CASE("trace summary: a crafted timeline gives the exact figures", "[trace]") {
  dmem::test::TempDir dir;
  auto s = dmem::detail::summarize_trace_file(crafted_trace(dir));
  REQUIRE(s.is_ok());
  check_crafted(*s);
}

TEST_CASE("trace summary: other Chrome traces are read, unknown events ignored", "[trace]") {
  const std::string text = R"([
    {"ph":"M","name":"thread_name","pid":1,"tid":1,"args":{"name":"x"}},
    {"ph":"B","name":"frame","ts":"not read","pid":1,"tid":1},
    {"ph":"X","cat":"gpu","name":"kernel","ts":1,"dur":{"odd":1}},
    {"ph":"X","cat":"step","name":"s","ts":0,"dur":1000},
    {"ph":"C","name":"fps","args":{"value":"x"}},
    {"ph":"C","name":"memory vram","ts":3,"args":{"used":2048}},
    {"no_ph":true}
  ])";
  auto s = dmem::detail::summarize_trace(text, "other.json");
  REQUIRE(s.is_ok());
  CHECK(s->events == 7);
  REQUIRE(s->steps.size() == 1);
  CHECK(s->steps[0].seconds == Approx(0.001));
  REQUIRE(s->stores.size() == 1);
  CHECK(s->stores[0].store == "vram");
  CHECK(s->stores[0].peak_bytes == 2048u);
}

TEST_CASE("trace summary: malformed traces are one error with the file and rule", "[trace]") {
  struct Case {
    const char* what;
    std::string text;
    const char* rule;
  };
  const std::string deep =
      R"({"traceEvents":[{"a":)" + std::string(100, '[') + std::string(100, ']') + "}]}";
  const std::vector<Case> cases = {
      {"empty", "", "report.json"},
      {"truncated", R"({"traceEvents":[)", "report.json"},
      {"not JSON", "hello", "report.json"},
      {"duplicate key in an event", R"({"traceEvents":[{"ph":"X","ph":"X"}]})", "report.json"},
      {"duplicate traceEvents", R"({"traceEvents":[],"traceEvents":[]})", "report.json"},
      {"too deep", deep, "report.json"},
      {"a number", "42", "report.format"},
      {"no traceEvents", R"({"events":[]})", "report.format"},
      {"traceEvents an object", R"({"traceEvents":{}})", "report.format"},
      {"traceEvents a string", R"({"traceEvents":"x"})", "report.format"},
      {"event not an object", R"({"traceEvents":[1]})", "report.format"},
      {"ph not a string", R"({"traceEvents":[{"ph":1}]})", "report.format"},
      {"cat not a string", R"({"traceEvents":[{"ph":"X","cat":[]}]})", "report.format"},
      {"ts a string", R"({"traceEvents":[{"ph":"X","cat":"load","ts":"0","dur":1}]})",
       "report.format"},
      {"dur missing", R"({"traceEvents":[{"ph":"X","cat":"copy","ts":0}]})", "report.format"},
      {"negative ts", R"({"traceEvents":[{"ph":"X","cat":"copy","ts":-1,"dur":1}]})",
       "report.format"},
      {"ts past int64 nanoseconds",
       R"({"traceEvents":[{"ph":"X","cat":"copy","ts":9e15,"dur":9e15}]})", "report.format"},
      {"bytes negative",
       R"({"traceEvents":[{"ph":"X","cat":"copy","ts":0,"dur":1,"args":{"bytes":-5}}]})",
       "report.format"},
      {"args not an object", R"({"traceEvents":[{"ph":"X","cat":"copy","ts":0,"dur":1,"args":3}]})",
       "report.format"},
      {"counter without args", R"({"traceEvents":[{"ph":"C","name":"memory device","ts":0}]})",
       "report.format"},
      {"counter value a string",
       R"({"traceEvents":[{"ph":"C","name":"memory device","ts":0,"args":{"bytes":"1"}}]})",
       "report.format"},
      {"dmem an array", R"({"traceEvents":[],"dmem":[]})", "report.format"},
      {"budget a string", R"({"traceEvents":[],"dmem":{"budget.device":"1 GiB"}})",
       "report.format"},
      {"step estimate a string", R"({"traceEvents":[],"dmem":{"estimate.step_seconds":"fast"}})",
       "report.format"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto s = dmem::detail::summarize_trace(c.text, "bad.json");
    REQUIRE_FALSE(s.is_ok());
    CHECK(s.status().rule() == c.rule);
    CHECK(s.status().file() == "bad.json");
    CHECK(s.status().code() == dmem::Errc::format_error);
  }
}

TEST_CASE("dmem report prints the summary of a written trace", "[trace][cli]") {
  dmem::test::TempDir dir;
  const std::string path = crafted_trace(dir);
  std::string out;
  REQUIRE(dmem::test::run_command(dmem::test::cli_path() + " report " + path, &out) == 0);
  INFO(out);
  CHECK(out.find("device cpu") != std::string::npos);
  CHECK(out.find("+10.0 %") != std::string::npos);  // device estimate and step estimate
  CHECK(out.find("33.3 %") != std::string::npos);   // step 0 overlap
  CHECK(out.find("66.7 %") != std::string::npos);   // step 1 overlap
  CHECK(out.find("overlap 46.7 %") != std::string::npos);
  CHECK(out.find("3 reads") != std::string::npos);
  CHECK(out.find("evictions\n  3, 160 B") != std::string::npos);

  REQUIRE(dmem::test::run_command(dmem::test::cli_path() + " report --json " + path, &out, false) ==
          0);
  const auto j = nlohmann::json::parse(out);
  CHECK(j["file"] == path);
  CHECK(j["device"] == "cpu");
  CHECK(j["stores"][0]["store"] == "device");
  CHECK(j["stores"][0]["peak_bytes"] == 300);
  CHECK(j["stores"][0]["budget_bytes"] == 1000.0);
  CHECK(j["load"]["bytes"] == 3500);
  REQUIRE(j["steps"].size() == 2);
  CHECK(j["steps"][0]["h2d_bytes"] == 300);
  CHECK(j["steps"][0]["d2h_copies"] == 1);
  CHECK(j["steps"][1]["h2d_bytes"] == 700);
  CHECK(j["totals"]["h2d_bytes"] == 1000);
  CHECK(j["totals"]["overlap"].get<double>() == Approx(7.0 / 15.0));
  CHECK(j["totals"]["stall_seconds"].get<double>() == Approx(0.00175));
  CHECK(j["totals"]["step_estimate_error_pct"].get<double>() == Approx(10.0));
  CHECK(j["evictions"]["count"] == 3);
  CHECK(j["evictions"]["bytes"] == 160);
}

TEST_CASE("dmem report: hostile inputs are one line and exit status 2", "[trace][cli]") {
  dmem::test::TempDir dir;
  dmem::test::write_file(dir.file("bad.json"), std::string_view(R"({"traceEvents":[)"));
  dmem::test::write_file(dir.file("types.json"), std::string_view(R"({"traceEvents":[7]})"));
  // A sparse file just over the cap: refused from its size before a byte is read.
  const std::string big = dir.file("big.json");
  dmem::test::write_file(big, std::string_view("{"));
  REQUIRE(::truncate(big.c_str(), static_cast<off_t>(dmem::detail::kMaxTraceFileBytes + 1)) == 0);
  REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0600) == 0);
  struct Case {
    std::string args;
    const char* rule;
  };
  const std::vector<Case> cases = {
      {dir.file("bad.json"), "report.json"},
      {dir.file("types.json"), "report.format"},
      {dir.file("missing.json"), "file.io"},
      {dir.path().string(), "file.not_regular"},
      {dir.file("fifo"), "file.not_regular"},
      {big, "file.too_large"},
      {"", "cli.flag"},
      {dir.file("bad.json") + " --bogus", "cli.flag"},
  };
  for (const auto& c : cases) {
    INFO(c.args);
    std::string out;
    CHECK(dmem::test::run_command(dmem::test::cli_path() + " report " + c.args, &out) == 2);
    CHECK(out.find(std::string("[rule ") + c.rule + "]") != std::string::npos);
    CHECK(out.rfind("dmem report: ", 0) == 0);
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  }
}

TEST_CASE("dmem report: per-phase rows of a dmem run trace match its spans and facts",
          "[trace][cli]") {
  dmem::test::TempDir dir;
  const std::string trace = dir.file("t.json");
  std::string out;
  const int rc = dmem::test::run_command(dmem::test::cli_path() +
                                             " run sdxl --scale-down 16 --no-probe --gpu rtx4090 "
                                             "--ram 16GiB --disk 10GiB --steps 2 --trace " +
                                             trace,
                                         &out);
  INFO(out);
  REQUIRE(rc == 0);
  const nlohmann::json t = read_json(trace);
  REQUIRE(t.is_object());
  const nlohmann::json& facts = t["dmem"];

  // The trace's own phase spans and device counter samples, read independently of the report.
  struct Span {
    double start_us, dur_us;
  };
  std::map<std::string, Span> spans;
  std::vector<std::pair<double, std::uint64_t>> device;
  for (const auto& e : t["traceEvents"]) {
    if (e.value("ph", "") == "X" && e.value("cat", "") == "phase")
      spans[e["name"].get<std::string>()] = {e["ts"].get<double>(), e["dur"].get<double>()};
    if (e.value("ph", "") == "C" && e.value("name", "") == "memory device")
      device.emplace_back(e["ts"].get<double>(), e["args"]["bytes"].get<std::uint64_t>());
  }
  REQUIRE(spans.size() == 3);
  std::sort(device.begin(), device.end());

  REQUIRE(dmem::test::run_command(dmem::test::cli_path() + " report --json " + trace, &out,
                                  false) == 0);
  const auto j = nlohmann::json::parse(out);
  REQUIRE(j["phases"].size() == 3);
  const char* order[] = {"encode", "denoise", "decode"};
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& p = j["phases"][i];
    const std::string name = order[i];
    INFO(name);
    REQUIRE(p["name"] == name);
    const Span& s = spans.at(name);
    CHECK(p["seconds"].get<double>() == Approx(s.dur_us / 1e6).margin(1e-9));
    const std::string prefix = "estimate.phase." + name + ".";
    REQUIRE(facts.contains(prefix + "seconds"));
    CHECK(p["estimate_seconds"].get<double>() == facts[prefix + "seconds"].get<double>());
    CHECK(p["estimate_activation_bytes"].get<double>() ==
          facts[prefix + "activations"].get<double>());
    CHECK(p["estimate_weights_bytes"].get<double>() == facts[prefix + "weights"].get<double>());
    // Device: the counter's value when the phase began and every sample inside it.
    std::uint64_t peak = 0;
    for (const auto& [ts, bytes] : device)
      if (ts <= s.start_us) peak = bytes;
    for (const auto& [ts, bytes] : device)
      if (ts > s.start_us && ts <= s.start_us + s.dur_us) peak = std::max(peak, bytes);
    REQUIRE(p["stores"][0]["store"] == "device");
    CHECK(p["stores"][0]["peak_bytes"].get<std::uint64_t>() == peak);
    const double est = facts[prefix + "device"].get<double>();
    CHECK(p["stores"][0]["estimate_bytes"].get<double>() == est);
    CHECK(p["stores"][0]["estimate_error_pct"].get<double>() ==
          Approx((est - static_cast<double>(peak)) / static_cast<double>(peak) * 100.0));
    CHECK(p["seconds_estimate_error_pct"].get<double>() ==
          Approx((facts[prefix + "seconds"].get<double>() - s.dur_us / 1e6) / (s.dur_us / 1e6) *
                 100.0)
              .epsilon(1e-6));
  }
  // The steps lie inside the denoise phase.
  const double denoise_s = j["phases"][1]["seconds"].get<double>();
  CHECK(j["totals"]["seconds"].get<double>() <= denoise_s);

  REQUIRE(dmem::test::run_command(dmem::test::cli_path() + " report " + trace, &out) == 0);
  CHECK(out.find("phases (measured vs the plan's estimate)") != std::string::npos);
  CHECK(out.find("denoise  device peak") != std::string::npos);
  CHECK(out.find("scaled down x16") != std::string::npos);
}
