#include "runtime/trace.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>

#include <nlohmann/json.hpp>

#include "format/file_io.hpp"
#include "format/json_util.hpp"

namespace dmem::detail {

namespace {

constexpr std::string_view kOther = "other";
constexpr std::string_view kOtherName = "(other)";
constexpr std::size_t kFlushBytes = std::size_t{1} << 20;

// A name cut at `max` bytes without splitting a UTF-8 sequence.
std::string_view cut(std::string_view s, std::size_t max) noexcept {
  if (s.size() <= max) return s;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

void append_string(std::string& out, std::string_view s) {
  // Names come from checkpoints: bytes that are not UTF-8 become U+FFFD, never invalid JSON.
  if (is_valid_utf8(s))
    append_json_string(out, s);
  else
    out += dump_json(nlohmann::json(std::string(s)));
}

// Chrome traces count microseconds; nanoseconds keep three decimals.
void append_us(std::string& out, std::uint64_t ns) {
  char buf[32];
  const int n =
      std::snprintf(buf, sizeof buf, "%llu.%03u", static_cast<unsigned long long>(ns / 1000),
                    static_cast<unsigned>(ns % 1000));
  out.append(buf, static_cast<std::size_t>(n));
}

}  // namespace

std::string_view store_name(Store s) noexcept {
  switch (s) {
    case Store::device:
      return "device";
    case Store::pinned:
      return "pinned";
    case Store::pageable:
      return "pageable";
    case Store::disk:
      return "disk";
  }
  return "unknown";
}

Trace::Trace() noexcept : origin_(std::chrono::steady_clock::now()) {}

Trace::~Trace() = default;

void Trace::enable(bool on) noexcept {
  enabled_.store(on, std::memory_order_relaxed);
}

void Trace::set_capacity(std::size_t events) noexcept {
  std::lock_guard lock(mutex_);
  capacity_ = events;
}

std::uint64_t Trace::now_ns() const noexcept {
  const auto d = std::chrono::steady_clock::now() - origin_;
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

std::size_t Trace::size() const noexcept {
  std::lock_guard lock(mutex_);
  return count_;
}

template <std::size_t N>
std::size_t Trace::intern_table(std::array<TableName, N>& table, std::size_t& used,
                                std::string_view name) noexcept {
  name = cut(name, kMaxTableName);
  for (std::size_t i = 0; i < used; ++i)
    if (table[i].view() == name) return i;
  if (used + 1 >= N) {
    // The last slot is shared by everything past the table's size.
    TableName& last = table[N - 1];
    if (last.size == 0) {
      std::copy(kOther.begin(), kOther.end(), last.text.begin());
      last.size = static_cast<std::uint8_t>(kOther.size());
    }
    used = N;
    return N - 1;
  }
  TableName& slot = table[used];
  std::copy(name.begin(), name.end(), slot.text.begin());
  slot.size = static_cast<std::uint8_t>(name.size());
  return used++;
}

std::uint32_t Trace::lane(std::string_view name) noexcept {
  std::lock_guard lock(mutex_);
  return static_cast<std::uint32_t>(intern_table(lanes_, lane_count_, name));
}

std::uint32_t Trace::intern_name(std::string_view name) noexcept {
  name = cut(name, kMaxNameBytes);
  if (auto it = name_ids_.find(name); it != name_ids_.end()) return it->second;
  if (names_.size() >= kMaxDistinctNames) name = kOtherName;
  if (auto it = name_ids_.find(name); it != name_ids_.end()) return it->second;
  const auto id = static_cast<std::uint32_t>(names_.size());
  auto [it, inserted] = name_ids_.emplace(std::string(name), id);
  names_.push_back(&it->first);
  return id;
}

void Trace::record(Kind kind, std::uint32_t lane, std::string_view category, std::string_view name,
                   std::uint64_t start_ns, std::uint64_t end_ns,
                   std::span<const TraceArg> args) noexcept {
  if (end_ns < start_ns) end_ns = start_ns;
  std::lock_guard lock(mutex_);
  if (count_ >= capacity_) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (count_ / kChunkEvents >= chunks_.size()) chunks_.push_back(std::make_unique<Chunk>());
  Event& e = (*chunks_[count_ / kChunkEvents])[count_ % kChunkEvents];
  e.start_ns = start_ns;
  e.end_ns = end_ns;
  e.kind = kind;
  e.arg_count = 0;
  if (kind == Kind::counter) {
    e.lane = static_cast<std::uint16_t>(lane);
    e.category = 0;
    e.name = 0;
  } else {
    e.lane = static_cast<std::uint16_t>(std::min<std::size_t>(lane, kMaxLanes - 1));
    e.category = static_cast<std::uint8_t>(intern_table(categories_, category_count_, category));
    e.name = intern_name(name);
  }
  for (const TraceArg& a : args) {
    if (e.arg_count == kMaxArgs) break;
    const std::size_t key = intern_table(arg_keys_, arg_key_count_, a.key);
    if (key == kMaxArgKeys - 1 && arg_keys_[key].view() == kOther && a.key != kOther) continue;
    e.keys[e.arg_count] = static_cast<std::uint8_t>(key);
    e.values[e.arg_count] = a.value;
    ++e.arg_count;
  }
  ++count_;
}

void Trace::span(std::uint32_t lane, std::string_view category, std::string_view name,
                 std::uint64_t start_ns, std::uint64_t end_ns,
                 std::initializer_list<TraceArg> args) noexcept {
  if (!enabled()) return;
  record(Kind::span, lane, category, name, start_ns, end_ns, {args.begin(), args.size()});
}

void Trace::span(std::uint32_t lane, std::string_view category, std::string_view name,
                 std::uint64_t start_ns, std::uint64_t end_ns,
                 std::span<const TraceArg> args) noexcept {
  if (!enabled()) return;
  record(Kind::span, lane, category, name, start_ns, end_ns, args);
}

void Trace::instant(std::uint32_t lane, std::string_view category, std::string_view name,
                    std::initializer_list<TraceArg> args) noexcept {
  if (!enabled()) return;
  const std::uint64_t t = now_ns();
  record(Kind::instant, lane, category, name, t, t, {args.begin(), args.size()});
}

void Trace::memory(Store store, std::uint64_t bytes_in_use) noexcept {
  if (!enabled()) return;
  const std::uint64_t t = now_ns();
  const TraceArg arg{"bytes", bytes_in_use};
  record(Kind::counter, static_cast<std::uint32_t>(store), {}, {}, t, t, {&arg, 1});
}

void Trace::set_info(std::string_view key, std::string_view value) noexcept {
  if (!enabled()) return;
  std::lock_guard lock(mutex_);
  Info& info = info_[std::string(cut(key, kMaxNameBytes))];
  info.text = std::string(cut(value, 4 * kMaxNameBytes));
  info.is_number = false;
}

void Trace::set_info_number(std::string_view key, double value) noexcept {
  if (!enabled()) return;
  std::lock_guard lock(mutex_);
  Info& info = info_[std::string(cut(key, kMaxNameBytes))];
  info.text.clear();
  info.number = value;
  info.is_number = true;
}

Status Trace::write_chrome_json(std::string_view path) const noexcept {
  // A snapshot under the lock: events below `count` never change again and chunks never move, so
  // the (long) formatting runs while other threads go on recording.
  std::size_t count = 0;
  std::vector<const Chunk*> chunks;
  std::vector<std::string> names;
  std::array<TableName, kMaxLanes> lanes{};
  std::size_t lane_count = 0;
  std::array<TableName, kMaxCategories> categories{};
  std::array<TableName, kMaxArgKeys> keys{};
  std::map<std::string, Info, std::less<>> info;
  {
    std::lock_guard lock(mutex_);
    count = count_;
    chunks.reserve(chunks_.size());
    for (const auto& c : chunks_) chunks.push_back(c.get());
    names.reserve(names_.size());
    for (const std::string* n : names_) names.push_back(*n);
    lanes = lanes_;
    lane_count = std::min(lane_count_, kMaxLanes);
    categories = categories_;
    keys = arg_keys_;
    info = info_;
  }
  // Reserved facts come last and win over a set_info of the same key (no duplicate keys).
  auto set_number = [&info](const char* key, double v) {
    Info& i = info[key];
    i.text.clear();
    i.number = v;
    i.is_number = true;
  };
  set_number("trace.events", static_cast<double>(count));
  set_number("trace.dropped", static_cast<double>(dropped()));
  set_number("trace.format", 1);

  auto file = TempFile::create(path);
  if (!file) return file.status();
  std::string out;
  out.reserve(kFlushBytes + 4096);
  auto flush = [&](bool force) -> Status {
    if (!force && out.size() < kFlushBytes) return Status::ok();
    Status s = file->write(out.data(), out.size());
    out.clear();
    return s;
  };

  out += "{\"traceEvents\":[\n";
  out += R"({"ph":"M","name":"process_name","pid":1,"tid":0,"args":{"name":"dmem"}})";
  for (std::size_t i = 0; i < lane_count; ++i) {
    out += ",\n{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":1,\"tid\":";
    out += std::to_string(i + 1);
    out += ",\"args\":{\"name\":";
    append_string(out, lanes[i].view());
    out += "}}";
  }
  for (std::size_t i = 0; i < count; ++i) {
    const Event& e = (*chunks[i / kChunkEvents])[i % kChunkEvents];
    out += ",\n{\"ph\":";
    if (e.kind == Kind::counter) {
      out += "\"C\",\"name\":";
      std::string name = "memory ";
      name += store_name(static_cast<Store>(e.lane));
      append_string(out, name);
      out += ",\"pid\":1,\"tid\":0";
    } else {
      out += e.kind == Kind::span ? "\"X\"" : "\"i\",\"s\":\"t\"";
      out += ",\"cat\":";
      append_string(out, categories[e.category].view());
      out += ",\"name\":";
      append_string(out, names[e.name]);
      out += ",\"pid\":1,\"tid\":";
      out += std::to_string(static_cast<unsigned>(e.lane) + 1);
    }
    out += ",\"ts\":";
    append_us(out, e.start_ns);
    if (e.kind == Kind::span) {
      out += ",\"dur\":";
      append_us(out, e.end_ns - e.start_ns);
    }
    if (e.arg_count > 0) {
      out += ",\"args\":{";
      for (std::size_t a = 0; a < e.arg_count; ++a) {
        if (a > 0) out += ',';
        append_string(out, keys[e.keys[a]].view());
        out += ':';
        out += std::to_string(e.values[a]);
      }
      out += '}';
    }
    out += '}';
    DMEM_TRY(flush(false));
  }
  out += "\n],\"displayTimeUnit\":\"ms\",\"dmem\":{";
  bool first = true;
  for (const auto& [key, value] : info) {
    if (!first) out += ',';
    first = false;
    out += "\n";
    append_string(out, key);
    out += ':';
    if (value.is_number)
      out += dump_json(nlohmann::json(value.number));
    else
      append_string(out, value.text);
  }
  out += "\n}}\n";
  DMEM_TRY(flush(true));
  return file->commit();
}

ScopedSpan::ScopedSpan(Trace& trace, std::uint32_t lane, std::string_view category,
                       std::string_view name, std::initializer_list<TraceArg> args) noexcept
    : trace_(trace.enabled() ? &trace : nullptr), lane_(lane), category_(category) {
  if (!trace_) return;
  name_.assign(name.data(), name.size());
  for (const TraceArg& a : args) set_arg(a.key, a.value);
  start_ns_ = trace.now_ns();
}

ScopedSpan::~ScopedSpan() {
  if (!trace_) return;
  trace_->span(lane_, category_, name_, start_ns_, trace_->now_ns(),
               std::span<const TraceArg>(args_.data(), arg_count_));
}

void ScopedSpan::set_arg(std::string_view key, std::uint64_t value) noexcept {
  if (!trace_) return;
  for (std::size_t i = 0; i < arg_count_; ++i) {
    if (args_[i].key == key) {
      args_[i].value = value;
      return;
    }
  }
  if (arg_count_ < args_.size()) args_[arg_count_++] = {key, value};
}

}  // namespace dmem::detail
