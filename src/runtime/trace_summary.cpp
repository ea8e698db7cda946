#include "runtime/trace_summary.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <utility>

#include <nlohmann/json.hpp>

#include "format/file_io.hpp"
#include "format/json_util.hpp"
#include "runtime/trace.hpp"

namespace dmem::detail {

namespace {

using json = nlohmann::json;

constexpr std::size_t kMaxDepth = 64;
// Timestamps and durations above this (about 126 years in microseconds) cannot be a trace of a
// run; the bound keeps start + duration in nanoseconds within int64.
constexpr double kMaxMicroseconds = 4.0e15;

struct Interval {
  std::int64_t start = 0;  // ns
  std::int64_t end = 0;
  std::uint64_t bytes = 0;
  bool d2h = false;
  std::string name;
  std::uint64_t index = 0;
  bool has_index = false;
};

// The facts a trace's events give, gathered while parsing.
struct Timeline {
  std::vector<Interval> loads, copies, waits, steps, phases, computes;
  std::uint64_t evictions = 0;
  std::uint64_t evicted_bytes = 0;
  std::vector<std::pair<std::string, std::uint64_t>> peaks;  // store -> max bytes
  // store -> (ns, bytes) in trace order, repeats dropped: per-phase peaks.
  std::vector<std::pair<std::string, std::vector<std::pair<std::int64_t, std::uint64_t>>>> samples;
  std::uint64_t events = 0;
  json dmem = json::object();
};

std::vector<std::pair<std::int64_t, std::int64_t>> merged(const std::vector<Interval>& spans) {
  std::vector<std::pair<std::int64_t, std::int64_t>> v;
  v.reserve(spans.size());
  for (const Interval& s : spans)
    if (s.end > s.start) v.emplace_back(s.start, s.end);
  std::sort(v.begin(), v.end());
  std::vector<std::pair<std::int64_t, std::int64_t>> out;
  for (const auto& iv : v) {
    if (!out.empty() && iv.first <= out.back().second)
      out.back().second = std::max(out.back().second, iv.second);
    else
      out.push_back(iv);
  }
  return out;
}

// Length of [a, b) covered by the sorted, disjoint intervals `u`.
std::int64_t covered(const std::vector<std::pair<std::int64_t, std::int64_t>>& u, std::int64_t a,
                     std::int64_t b) {
  auto it = std::lower_bound(u.begin(), u.end(), a,
                             [](const auto& iv, std::int64_t t) { return iv.second <= t; });
  std::int64_t total = 0;
  for (; it != u.end() && it->first < b; ++it)
    total += std::min(b, it->second) - std::max(a, it->first);
  return total;
}

double seconds(std::int64_t ns) {
  return static_cast<double>(ns) / 1e9;
}

class TraceReader {
 public:
  TraceReader(std::string_view file, Timeline& out) : file_(file), out_(out) {}

  [[nodiscard]] const Status& error() const { return error_; }
  [[nodiscard]] bool saw_events() const { return saw_events_; }

  // nlohmann SAX interface.
  bool null() { return scalar(json(nullptr)); }
  bool boolean(bool v) { return scalar(json(v)); }
  bool number_integer(json::number_integer_t v) { return scalar(json(v)); }
  bool number_unsigned(json::number_unsigned_t v) { return scalar(json(v)); }
  bool number_float(json::number_float_t v, const json::string_t& /*text*/) {
    return scalar(json(v));
  }
  bool string(json::string_t& v) { return scalar(json(std::move(v))); }
  bool binary(json::binary_t& /*v*/) { return fail_json("binary values are not JSON"); }
  bool start_object(std::size_t /*n*/) { return open(true); }
  bool start_array(std::size_t /*n*/) { return open(false); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }
  bool key(json::string_t& k) {
    if (!stack_.empty()) {
      if (stack_.back()->contains(k)) return fail_json("duplicate key \"" + k + "\"");
      key_ = std::move(k);
    } else if (depth_ == 1) {
      if ((k == "traceEvents" && saw_events_) || (k == "dmem" && saw_dmem_))
        return fail_json("duplicate key \"" + k + "\"");
      key_ = std::move(k);
    }
    return true;
  }
  bool parse_error(std::size_t position, const std::string& /*token*/,
                   const nlohmann::detail::exception& ex) {
    return fail_json(plain_parse_message(ex.what()), position > 0 ? position - 1 : 0);
  }

 private:
  enum class Target { none, event, dmem };

  // `offset` is known for syntax errors only (the parser's position).
  bool fail_json(std::string message, std::optional<std::size_t> offset = std::nullopt) {
    if (error_) {
      error_ = Status(Errc::format_error, "the trace is not valid JSON: " + std::move(message))
                   .with_file(file_)
                   .with_rule("report.json")
                   .with_hint("a Chrome trace JSON file, as `dmem run --trace` writes");
      if (offset) error_.with_offset(*offset);
    }
    return false;
  }
  bool fail_format(std::string message) {
    if (error_) {
      error_ = Status(Errc::format_error, std::move(message))
                   .with_file(file_)
                   .with_rule("report.format")
                   .with_hint(
                       "a Chrome trace: {\"traceEvents\":[{\"ph\":…,\"ts\":…},…]} or an "
                       "array of events");
    }
    return false;
  }

  // Places a value inside the object or array being captured.
  json* place(json&& v) {
    json& top = *stack_.back();
    if (top.is_array()) {
      top.push_back(std::move(v));
      return &top.back();
    }
    json& slot = top[key_];
    slot = std::move(v);
    return &slot;
  }

  bool scalar(json&& v) {
    if (!stack_.empty()) {
      place(std::move(v));
      return true;
    }
    if (depth_ == 0) return fail_format("the trace is neither a JSON object nor an array");
    if (depth_ == events_depth_)
      return fail_format("event " + std::to_string(out_.events) + " is not an object");
    if (depth_ == 1 && root_is_object_) {
      if (key_ == "traceEvents") return fail_format("\"traceEvents\" is not an array");
      if (key_ == "dmem") return fail_format("\"dmem\" is not an object");
    }
    return true;  // a value the report does not read
  }

  bool open(bool object) {
    if (depth_ >= kMaxDepth)
      return fail_json("nested deeper than " + std::to_string(kMaxDepth) + " levels");
    const std::size_t at = depth_++;  // containers open around this one
    if (!stack_.empty()) {
      stack_.push_back(place(object ? json::object() : json::array()));
      return true;
    }
    if (at == 0) {
      root_is_object_ = object;
      if (!object) {
        events_depth_ = 1;  // the events are the root array's elements
        saw_events_ = true;
      }
      return true;
    }
    if (at == 1 && root_is_object_) {
      if (key_ == "traceEvents") {
        if (object) return fail_format("\"traceEvents\" is not an array");
        events_depth_ = 2;
        saw_events_ = true;
        return true;
      }
      if (key_ == "dmem") {
        if (!object) return fail_format("\"dmem\" is not an object");
        saw_dmem_ = true;
        return begin(Target::dmem);
      }
      return true;
    }
    if (at == events_depth_) {
      if (!object) return fail_format("event " + std::to_string(out_.events) + " is not an object");
      return begin(Target::event);
    }
    return true;
  }

  bool begin(Target target) {
    target_ = target;
    captured_ = json::object();
    stack_.push_back(&captured_);
    return true;
  }

  bool close() {
    --depth_;
    if (stack_.empty()) {
      if (depth_ + 1 == events_depth_) events_depth_ = 0;  // the events array closed
      return true;
    }
    stack_.pop_back();
    if (!stack_.empty()) return true;
    if (target_ == Target::dmem) {
      out_.dmem = std::move(captured_);
      return true;
    }
    const bool ok = take_event(captured_);
    ++out_.events;
    return ok;
  }

  std::string where() const { return "event " + std::to_string(out_.events); }

  // A timestamp or duration in microseconds, as nanoseconds.
  bool micros(const json& e, const char* key, std::int64_t& ns) {
    auto it = e.find(key);
    if (it == e.end() || !it->is_number())
      return fail_format(where() + ": \"" + key + "\" is missing or not a number");
    const double us = it->get<double>();
    if (!std::isfinite(us) || us < 0 || us > kMaxMicroseconds)
      return fail_format(where() + ": \"" + key + "\" is out of range");
    ns = std::llround(us * 1000.0);
    return true;
  }

  bool count(const json& v, const std::string& key, std::uint64_t& out) {
    if (v.is_number_unsigned()) {
      out = v.get<std::uint64_t>();
      return true;
    }
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (std::isfinite(d) && d >= 0 && d < 1.8e19) {
        out = static_cast<std::uint64_t>(d);
        return true;
      }
    }
    return fail_format(where() + ": argument \"" + key + "\" is not a count of bytes");
  }

  // Reads an optional unsigned argument.
  bool arg(const json& e, const char* key, std::uint64_t& out, bool& present) {
    present = false;
    auto args = e.find("args");
    if (args == e.end()) return true;
    if (!args->is_object()) return fail_format(where() + ": \"args\" is not an object");
    auto it = args->find(key);
    if (it == args->end()) return true;
    present = true;
    return count(*it, key, out);
  }

  bool take_event(const json& e) {
    auto ph_it = e.find("ph");
    if (ph_it == e.end()) return true;
    if (!ph_it->is_string()) return fail_format(where() + ": \"ph\" is not a string");
    const std::string& ph = ph_it->get_ref<const std::string&>();
    std::string name;
    if (auto n = e.find("name"); n != e.end()) {
      if (!n->is_string()) return fail_format(where() + ": \"name\" is not a string");
      name = n->get<std::string>();
    }
    if (ph == "C") return take_counter(e, name);
    if (ph != "X" && ph != "i" && ph != "I") return true;  // metadata, B/E pairs, flows …
    auto cat_it = e.find("cat");
    if (cat_it == e.end()) return true;
    if (!cat_it->is_string()) return fail_format(where() + ": \"cat\" is not a string");
    const std::string& cat = cat_it->get_ref<const std::string&>();
    std::vector<Interval>* into = nullptr;
    if (cat == "load")
      into = &out_.loads;
    else if (cat == "copy")
      into = &out_.copies;
    else if (cat == "wait")
      into = &out_.waits;
    else if (cat == "step")
      into = &out_.steps;
    else if (cat == "phase")
      into = &out_.phases;
    else if (cat == "compute")
      into = &out_.computes;
    else if (cat != "evict")
      return true;

    Interval iv;
    if (!micros(e, "ts", iv.start)) return false;
    std::int64_t dur = 0;
    if (ph == "X" && !micros(e, "dur", dur)) return false;
    iv.end = iv.start + dur;
    bool present = false;
    if (!arg(e, "bytes", iv.bytes, present)) return false;
    std::uint64_t flag = 0;
    if (!arg(e, "d2h", flag, present)) return false;
    iv.d2h = flag != 0;
    if (!arg(e, "index", iv.index, iv.has_index)) return false;
    if (cat == "evict") {
      ++out_.evictions;
      out_.evicted_bytes += iv.bytes;
      return true;
    }
    if (ph != "X") return true;  // instants have no duration to add up
    iv.name = std::move(name);
    into->push_back(std::move(iv));
    return true;
  }

  bool take_counter(const json& e, const std::string& name) {
    constexpr std::string_view kPrefix = "memory ";
    if (name.size() <= kPrefix.size() || name.compare(0, kPrefix.size(), kPrefix) != 0) return true;
    const std::string store = name.substr(kPrefix.size());
    auto args = e.find("args");
    if (args == e.end() || !args->is_object() || args->empty())
      return fail_format(where() + ": counter \"" + name + "\" has no \"args\" values");
    // Our writer's series is "bytes"; another tool's single series may have any name.
    auto it = args->find("bytes");
    if (it == args->end()) it = args->begin();
    std::uint64_t bytes = 0;
    if (!count(*it, it.key(), bytes)) return false;
    // A counter without a time still has a peak, though no phase to count it in.
    if (e.contains("ts")) {
      std::int64_t at = 0;
      if (!micros(e, "ts", at)) return false;
      bool known = false;
      for (auto& [s, v] : out_.samples) {
        if (s == store) {
          // A repeated value adds nothing to a phase's peak: kept once.
          if (v.empty() || v.back().second != bytes || v.back().first > at)
            v.emplace_back(at, bytes);
          known = true;
        }
      }
      if (!known) out_.samples.push_back({store, {{at, bytes}}});
    }
    for (auto& [s, peak] : out_.peaks) {
      if (s == store) {
        peak = std::max(peak, bytes);
        return true;
      }
    }
    out_.peaks.emplace_back(store, bytes);
    return true;
  }

  std::string file_;
  Timeline& out_;
  Status error_;
  std::size_t depth_ = 0;
  std::size_t events_depth_ = 0;  // depth_ inside the events array; 0 outside it
  bool root_is_object_ = false;
  bool saw_events_ = false;
  bool saw_dmem_ = false;
  std::string key_;
  Target target_ = Target::none;
  json captured_;
  std::vector<json*> stack_;
};

Status format_error(std::string_view file, std::string message) {
  return Status(Errc::format_error, std::move(message))
      .with_file(std::string(file))
      .with_rule("report.format")
      .with_hint(
          "the \"dmem\" object holds strings and numbers, as Trace::write_chrome_json writes");
}

Result<std::optional<double>> number_fact(const json& dmem, const std::string& key,
                                          std::string_view file) {
  auto it = dmem.find(key);
  if (it == dmem.end() || it->is_null()) return std::optional<double>();
  if (!it->is_number()) return format_error(file, "\"dmem\" fact \"" + key + "\" is not a number");
  return std::optional<double>(it->get<double>());
}

std::optional<double> error_pct(std::optional<double> estimate, double measured) {
  if (!estimate || !(measured > 0)) return std::nullopt;
  return (*estimate - measured) / measured * 100.0;
}

// A store's peak inside [start, end]: its value when the phase began, and every sample in it.
std::optional<std::uint64_t> phase_peak(
    const std::vector<std::pair<std::int64_t, std::uint64_t>>& samples, std::int64_t start,
    std::int64_t end) {
  std::optional<std::uint64_t> peak;
  auto it = std::upper_bound(samples.begin(), samples.end(), start,
                             [](std::int64_t t, const auto& v) { return t < v.first; });
  if (it != samples.begin()) peak = std::prev(it)->second;
  for (; it != samples.end() && it->first <= end; ++it)
    peak = std::max(peak.value_or(0), it->second);
  return peak;
}

Result<TraceSummary> summarize(Timeline& t, std::string_view file) {
  TraceSummary s;
  s.events = t.events;
  const json& info = t.dmem;

  // Stores: the four known ones in order, then any other counter track, each when it has a
  // measured peak, a budget or an estimate.
  std::vector<std::string> names;
  for (std::size_t i = 0; i < kStoreCount; ++i)
    names.emplace_back(store_name(static_cast<Store>(i)));
  for (const auto& [store, peak] : t.peaks)
    if (std::find(names.begin(), names.end(), store) == names.end()) names.push_back(store);
  for (const std::string& name : names) {
    StoreSummary st;
    st.store = name;
    for (const auto& [store, peak] : t.peaks)
      if (store == name) st.peak_bytes = peak;
    auto budget = number_fact(info, "budget." + name, file);
    if (!budget) return budget.status();
    auto estimate = number_fact(info, "estimate." + name, file);
    if (!estimate) return estimate.status();
    st.budget_bytes = *budget;
    st.estimate_bytes = *estimate;
    if (st.peak_bytes) st.estimate_error_pct = error_pct(st.estimate_bytes, double(*st.peak_bytes));
    if (st.peak_bytes || st.budget_bytes || st.estimate_bytes) s.stores.push_back(std::move(st));
  }

  // Load: wall time while any tensor was being loaded, and the bytes loaded.
  s.load_spans = t.loads.size();
  for (const Interval& l : t.loads) s.load_bytes += l.bytes;
  std::int64_t load_ns = 0;
  for (const auto& [a, b] : merged(t.loads)) load_ns += b - a;
  s.load_seconds = seconds(load_ns);
  if (load_ns > 0) s.load_gbps = static_cast<double>(s.load_bytes) / seconds(load_ns) / 1e9;

  // Phases: each span beside the plan's per-phase estimate facts.
  for (auto& [store, v] : t.samples)
    std::stable_sort(v.begin(), v.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
  std::stable_sort(t.phases.begin(), t.phases.end(),
                   [](const Interval& a, const Interval& b) { return a.start < b.start; });
  for (const Interval& p : t.phases) {
    PhaseSummary ps;
    ps.name = p.name;
    ps.start_s = seconds(p.start);
    ps.seconds = seconds(p.end - p.start);
    std::string prefix = "estimate.phase.";
    prefix += p.name;
    prefix += '.';
    auto est_s = number_fact(info, prefix + "seconds", file);
    if (!est_s) return est_s.status();
    ps.estimate_seconds = *est_s;
    ps.seconds_estimate_error_pct = error_pct(ps.estimate_seconds, ps.seconds);
    auto weights = number_fact(info, prefix + "weights", file);
    if (!weights) return weights.status();
    ps.estimate_weights_bytes = *weights;
    auto acts = number_fact(info, prefix + "activations", file);
    if (!acts) return acts.status();
    ps.estimate_activation_bytes = *acts;
    for (const std::string& name : names) {
      PhaseStoreSummary st;
      st.store = name;
      for (const auto& [store, v] : t.samples)
        if (store == name) st.peak_bytes = phase_peak(v, p.start, p.end);
      auto e = number_fact(info, prefix + name, file);
      if (!e) return e.status();
      st.estimate_bytes = *e;
      if (st.peak_bytes)
        st.estimate_error_pct = error_pct(st.estimate_bytes, double(*st.peak_bytes));
      // A store the phase neither used nor planned to use is no row.
      if (st.peak_bytes || (st.estimate_bytes && *st.estimate_bytes > 0))
        ps.stores.push_back(std::move(st));
    }
    s.phases.push_back(std::move(ps));
  }

  // Steps: a copy or wait belongs to the step during which it starts.
  std::stable_sort(t.steps.begin(), t.steps.end(),
                   [](const Interval& a, const Interval& b) { return a.start < b.start; });
  for (std::size_t i = 0; i < t.steps.size(); ++i) {
    const Interval& st = t.steps[i];
    StepSummary step;
    step.index = st.has_index ? st.index : i;
    step.name = st.name;
    step.start_s = seconds(st.start);
    step.seconds = seconds(st.end - st.start);
    s.steps.push_back(std::move(step));
  }
  auto find_step = [&t, &s](std::int64_t at) -> StepSummary* {
    // The last step starting at or before `at` that has not ended.
    auto it = std::upper_bound(t.steps.begin(), t.steps.end(), at,
                               [](std::int64_t v, const Interval& iv) { return v < iv.start; });
    while (it != t.steps.begin()) {
      --it;
      if (at < it->end || (it->start == it->end && at == it->start))
        return &s.steps[static_cast<std::size_t>(it - t.steps.begin())];
    }
    return nullptr;
  };
  const auto compute = merged(t.computes);
  for (const Interval& c : t.copies) {
    StepSummary* step = find_step(c.start);
    if (!step) continue;
    if (c.d2h) {
      ++step->d2h_copies;
      step->d2h_bytes += c.bytes;
    } else {
      ++step->h2d_copies;
      step->h2d_bytes += c.bytes;
    }
    step->copy_seconds += seconds(c.end - c.start);
    step->overlapped_copy_seconds += seconds(covered(compute, c.start, c.end));
  }
  for (const Interval& w : t.waits)
    if (StepSummary* step = find_step(w.start)) step->stall_seconds += seconds(w.end - w.start);

  double copy_total = 0, overlapped_total = 0;
  for (StepSummary& step : s.steps) {
    if (step.copy_seconds > 0) step.overlap = step.overlapped_copy_seconds / step.copy_seconds;
    s.steps_seconds += step.seconds;
    s.h2d_bytes += step.h2d_bytes;
    s.d2h_copies += step.d2h_copies;
    s.d2h_bytes += step.d2h_bytes;
    s.stall_seconds += step.stall_seconds;
    copy_total += step.copy_seconds;
    overlapped_total += step.overlapped_copy_seconds;
  }
  if (copy_total > 0) s.overlap = overlapped_total / copy_total;
  if (!s.steps.empty()) s.mean_step_seconds = s.steps_seconds / static_cast<double>(s.steps.size());
  auto est = number_fact(info, "estimate.step_seconds", file);
  if (!est) return est.status();
  s.estimate_step_seconds = *est;
  if (s.mean_step_seconds) s.step_estimate_error_pct = error_pct(*est, *s.mean_step_seconds);

  s.evictions = t.evictions;
  s.evicted_bytes = t.evicted_bytes;
  auto dropped = number_fact(info, "trace.dropped", file);
  if (!dropped) return dropped.status();
  if (*dropped && **dropped > 0) s.dropped_events = static_cast<std::uint64_t>(**dropped);
  if (auto it = info.find("device"); it != info.end() && it->is_string())
    s.device = it->get<std::string>();
  auto scale = number_fact(info, "run.scale_down", file);
  if (!scale) return scale.status();
  s.scale_down = *scale;
  auto cpu = number_fact(info, "plan.cpu_gflops", file);
  if (!cpu) return cpu.status();
  s.plan_cpu_gflops = *cpu;
  auto gpu = number_fact(info, "plan.bf16_tflops", file);
  if (!gpu) return gpu.status();
  s.plan_bf16_tflops = *gpu;
  auto act_scale = number_fact(info, "plan.activation_scale", file);
  if (!act_scale) return act_scale.status();
  s.plan_activation_scale = *act_scale;
  auto synthetic = number_fact(info, "run.synthetic_activations", file);
  if (!synthetic) return synthetic.status();
  s.synthetic_activations = *synthetic && **synthetic != 0;
  return s;
}

}  // namespace

Result<TraceSummary> summarize_trace(std::string_view json_text, std::string_view file) noexcept {
  Timeline timeline;
  TraceReader reader(file, timeline);
  const bool ok = json::sax_parse(json_text.begin(), json_text.end(), &reader,
                                  json::input_format_t::json, true, false);
  if (!ok || !reader.error()) {
    if (!reader.error()) return reader.error();
    return Status(Errc::format_error, "the trace is not valid JSON")
        .with_file(std::string(file))
        .with_rule("report.json");
  }
  if (!reader.saw_events())
    return format_error(file, "no \"traceEvents\" array: this is not a Chrome trace")
        .with_rule("report.format")
        .with_hint("a Chrome trace: {\"traceEvents\":[…]} or an array of events");
  return summarize(timeline, file);
}

Result<TraceSummary> summarize_trace_file(std::string_view path) noexcept {
  auto text = read_small_file(path, kMaxTraceFileBytes);
  if (!text) {
    Status s = text.status();
    if (s.code() == Errc::limit_exceeded)
      s.with_hint(
          "dmem report reads traces of at most 1 GiB; a trace capped at 2,000,000 events "
          "is far smaller: check that this is a trace");
    return s;
  }
  return summarize_trace(*text, path);
}

}  // namespace dmem::detail
