// Strategy as JSON (docs/strategy.md): strict reading (every unknown key or value is an error
// naming it and the allowed ones), canonical writing, and one-line summaries for tables.
#include <algorithm>
#include <array>
#include <cmath>
#include <set>
#include <string>
#include <unordered_set>

#include <nlohmann/json.hpp>

#include "dmem/quantizer.hpp"
#include "dmem/strategy.hpp"
#include "format/json_util.hpp"
#include "plan/strategy_limits.hpp"

namespace dmem {
inline namespace v1 {

namespace {

using nlohmann::json;

constexpr std::array<std::pair<PlacementKind, const char*>, 8> kKinds{{
    {PlacementKind::resident, "resident"},
    {PlacementKind::model_offload, "model_offload"},
    {PlacementKind::group_offload, "group_offload"},
    {PlacementKind::sequential, "sequential"},
    {PlacementKind::partial, "partial"},
    {PlacementKind::cpu, "cpu"},
    {PlacementKind::disk, "disk"},
    {PlacementKind::dropped, "dropped"},
}};
constexpr std::array<std::pair<OffloadLevel, const char*>, 2> kLevels{
    {{OffloadLevel::block, "block"}, {OffloadLevel::leaf, "leaf"}}};
constexpr std::array<std::pair<Tier, const char*>, 3> kTiers{
    {{Tier::pinned, "pinned"}, {Tier::pageable, "pageable"}, {Tier::disk, "disk"}}};
constexpr std::array<std::pair<StorageKind, const char*>, 3> kStorageKinds{
    {{StorageKind::native, "native"},
     {StorageKind::layerwise_cast, "layerwise_cast"},
     {StorageKind::quantized, "quantized"}}};
constexpr std::array<std::pair<DType, const char*>, 4> kCastDtypes{{{DType::f8_e4m3, "f8_e4m3"},
                                                                    {DType::f8_e5m2, "f8_e5m2"},
                                                                    {DType::bf16, "bf16"},
                                                                    {DType::f16, "f16"}}};
constexpr std::array<std::pair<DType, const char*>, 3> kComputeDtypes{
    {{DType::bf16, "bf16"}, {DType::f16, "f16"}, {DType::f32, "f32"}}};

template <class E, std::size_t N>
const char* name_of(const std::array<std::pair<E, const char*>, N>& table, E value) {
  for (const auto& [e, n] : table)
    if (e == value) return n;
  return "?";
}

template <class E, std::size_t N>
std::string allowed(const std::array<std::pair<E, const char*>, N>& table) {
  std::string out;
  for (const auto& [e, n] : table) out += (out.empty() ? "" : ", ") + std::string(n);
  return out;
}

std::string join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& v : s) out += (out.empty() ? "" : ", ") + v;
  return out;
}

// A key or value as shown in a message: long ones cut, so messages stay short whatever the input.
std::string clip(std::string_view text) {
  constexpr std::size_t kShown = 64;
  if (text.size() <= kShown) return std::string(text);
  return std::string(text.substr(0, kShown)) + "... (" + std::to_string(text.size()) + " bytes)";
}

Status too_long(const std::string& key, std::size_t size, std::size_t max) {
  return Status(Errc::limit_exceeded, "strategy: " + key + ": " + std::to_string(size) +
                                          " bytes is longer than the limit of " +
                                          std::to_string(max))
      .with_rule("strategy.limit.string")
      .with_hint("names of components, quantizers and parameter values are short words");
}

// A string member no longer than `max`.
Status check_length(const json& v, const std::string& key, std::size_t max) {
  if (v.is_string() && v.get_ref<const std::string&>().size() > max)
    return too_long(key, v.get_ref<const std::string&>().size(), max);
  return Status::ok();
}

Status bad(const std::string& key, const std::string& what,
           const std::string& allowed_values = {}) {
  Status s(Errc::invalid_argument, "strategy: " + key + ": " + what);
  s.with_rule("strategy.json");
  if (!allowed_values.empty()) s.with_hint("allowed: " + allowed_values);
  return s;
}

// Reads an object's keys, rejecting any not in `keys`.
Status check_keys(const json& obj, const std::string& where,
                  std::initializer_list<const char*> keys) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    bool known = false;
    for (const char* k : keys) known = known || it.key() == k;
    if (!known) {
      std::string list;
      for (const char* k : keys) list += (list.empty() ? "" : ", ") + std::string(k);
      return bad(where + (where.empty() ? "" : ".") + clip(it.key()), "unknown key", list);
    }
  }
  return Status::ok();
}

template <class E, std::size_t N>
Status read_enum(const json& obj, const char* key, const std::string& where,
                 const std::array<std::pair<E, const char*>, N>& table, E& out) {
  if (!obj.contains(key)) return Status::ok();
  const json& v = obj[key];
  const std::string path = where + "." + key;
  if (!v.is_string()) return bad(path, "must be a string", allowed(table));
  const auto& s = v.get_ref<const std::string&>();
  for (const auto& [e, n] : table)
    if (s == n) {
      out = e;
      return Status::ok();
    }
  return bad(path, "unknown value '" + clip(s) + "'", allowed(table));
}

Status read_bool(const json& obj, const char* key, const std::string& where, bool& out) {
  if (!obj.contains(key)) return Status::ok();
  if (!obj[key].is_boolean()) return bad(where + "." + key, "must be true or false");
  out = obj[key].get<bool>();
  return Status::ok();
}

template <class T>
Status read_uint(const json& obj, const char* key, const std::string& where, T min, T max, T& out) {
  if (!obj.contains(key)) return Status::ok();
  const json& v = obj[key];
  const std::string range = std::to_string(min) + " to " + std::to_string(max);
  if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0))
    return bad(where + "." + key, "must be a whole number from " + range);
  const auto n = v.get<std::uint64_t>();
  if (n < static_cast<std::uint64_t>(min) || n > static_cast<std::uint64_t>(max))
    return bad(where + "." + key, std::to_string(n) + " is out of range (" + range + ")");
  out = static_cast<T>(n);
  return Status::ok();
}

Status read_placement(const json& j, const std::string& where, Placement& p) {
  if (j.is_string()) {
    json obj = json::object();
    obj["kind"] = j;
    return read_placement(obj, where, p);
  }
  if (!j.is_object()) return bad(where, "must be an object or a placement kind", allowed(kKinds));
  DMEM_TRY(check_keys(j, where,
                      {"kind", "level", "blocks_per_group", "use_stream", "record_stream",
                       "prefetch", "resident_blocks", "park", "gpu"}));
  if (!j.contains("kind")) return bad(where + ".kind", "is required", allowed(kKinds));
  DMEM_TRY(read_enum(j, "kind", where, kKinds, p.kind));
  DMEM_TRY(read_enum(j, "level", where, kLevels, p.level));
  DMEM_TRY(read_uint<std::uint32_t>(j, "blocks_per_group", where, 1, 1u << 20, p.blocks_per_group));
  DMEM_TRY(read_bool(j, "use_stream", where, p.use_stream));
  DMEM_TRY(read_bool(j, "record_stream", where, p.record_stream));
  DMEM_TRY(read_uint<std::uint32_t>(j, "prefetch", where, 0, 64, p.prefetch));
  DMEM_TRY(read_uint<std::uint32_t>(j, "resident_blocks", where, 0, 1u << 20, p.resident_blocks));
  DMEM_TRY(read_enum(j, "park", where, kTiers, p.park));
  DMEM_TRY(read_uint<std::int32_t>(j, "gpu", where, 0, 63, p.gpu));
  return Status::ok();
}

// Quantizer parameters: keys and values must be ones some description of that quantizer uses.
Status read_params(const json& j, const std::string& where, const std::string& id,
                   std::vector<std::pair<std::string, std::string>>& out) {
  if (!j.is_object()) return bad(where, "must be an object of parameter names to values");
  std::set<std::string> keys;
  for (const auto& c : quantizer_table())
    if (c.id == id)
      for (const auto& [k, v] : c.params) keys.insert(k);
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string path = where + "." + clip(it.key());
    if (keys.count(it.key()) == 0)
      return bad(path, "unknown parameter of " + id, keys.empty() ? "(none)" : join(keys));
    DMEM_TRY(check_length(*it, path, detail::kMaxStrategyString));
    std::string value;
    if (it->is_string())
      value = it->get<std::string>();
    else if (it->is_boolean())
      value = it->get<bool>() ? "true" : "false";
    else if (it->is_number_unsigned())
      value = std::to_string(it->get<std::uint64_t>());
    else
      return bad(path, "must be a string, a boolean or a whole number");
    std::set<std::string> values;
    for (const auto& c : quantizer_table())
      if (c.id == id)
        for (const auto& [k, v] : c.params)
          if (k == it.key()) values.insert(v);
    if (values.count(value) == 0)
      return bad(path, "unsupported value '" + clip(value) + "'", join(values));
    out.emplace_back(it.key(), value);
  }
  return Status::ok();
}

Status read_storage(const json& j, const std::string& where, Storage& s) {
  if (!j.is_object()) return bad(where, "must be an object");
  DMEM_TRY(check_keys(j, where, {"kind", "dtype", "quantizer", "params", "compute_dtype"}));
  if (!j.contains("kind")) return bad(where + ".kind", "is required", allowed(kStorageKinds));
  if (j.contains("quantizer"))
    DMEM_TRY(check_length(j["quantizer"], where + ".quantizer", detail::kMaxStrategyString));
  DMEM_TRY(read_enum(j, "kind", where, kStorageKinds, s.kind));
  DMEM_TRY(read_enum(j, "compute_dtype", where, kComputeDtypes, s.compute_dtype));
  if (j.contains("dtype") && s.kind != StorageKind::layerwise_cast)
    return bad(where + ".dtype", "applies only to kind layerwise_cast");
  if ((j.contains("quantizer") || j.contains("params")) && s.kind == StorageKind::native)
    return bad(where + (j.contains("quantizer") ? ".quantizer" : ".params"),
               "does not apply to kind native");
  if (s.kind == StorageKind::layerwise_cast) {
    DMEM_TRY(read_enum(j, "dtype", where, kCastDtypes, s.cast_dtype));
    // A quantizer next to a cast is kept as written: the validator reports it
    // (storage.single_transform) with the fix, instead of a bare syntax error.
    if (j.contains("quantizer")) {
      if (!j["quantizer"].is_string()) return bad(where + ".quantizer", "must be a string");
      s.quantizer = j["quantizer"].get<std::string>();
      if (s.quantizer.find('.') == std::string::npos) s.quantizer = "dmem.quantizer." + s.quantizer;
    }
    return Status::ok();
  }
  if (s.kind != StorageKind::quantized) return Status::ok();

  std::set<std::string> ids;
  for (const auto& c : quantizer_table())
    if (!c.is_cast) ids.insert(c.id);
  if (!j.contains("quantizer"))
    return bad(where + ".quantizer", "is required for kind quantized", join(ids));
  if (!j["quantizer"].is_string()) return bad(where + ".quantizer", "must be a string", join(ids));
  std::string id = j["quantizer"].get<std::string>();
  // Short names ("nf4", "gguf") stand for the stock ids.
  if (id.find('.') == std::string::npos) id = "dmem.quantizer." + id;
  if (ids.count(id) == 0)
    return bad(where + ".quantizer",
               "unknown quantizer '" + clip(j["quantizer"].get<std::string>()) + "'", join(ids));
  s.quantizer = id;
  if (j.contains("params")) DMEM_TRY(read_params(j["params"], where + ".params", id, s.params));
  if (id == "dmem.quantizer.gguf") {
    bool has_type = false;
    for (const auto& [k, v] : s.params) has_type = has_type || k == "type";
    if (!has_type) {
      std::set<std::string> types;
      for (const auto& c : quantizer_table())
        if (c.id == id) types.insert(c.variant);
      return bad(where + ".params.type", "is required for gguf", join(types));
    }
  }
  return Status::ok();
}

json placement_json(const Placement& p) {
  json j = json::object();
  j["kind"] = name_of(kKinds, p.kind);
  j["level"] = name_of(kLevels, p.level);
  j["blocks_per_group"] = p.blocks_per_group;
  j["use_stream"] = p.use_stream;
  j["record_stream"] = p.record_stream;
  j["prefetch"] = p.prefetch;
  j["resident_blocks"] = p.resident_blocks;
  j["park"] = name_of(kTiers, p.park);
  j["gpu"] = p.gpu;
  return j;
}

json storage_json(const Storage& s) {
  json j = json::object();
  j["kind"] = name_of(kStorageKinds, s.kind);
  if (s.kind == StorageKind::layerwise_cast) {
    j["dtype"] = name_of(kCastDtypes, s.cast_dtype);
    if (!s.quantizer.empty()) j["quantizer"] = s.quantizer;
  }
  if (s.kind == StorageKind::quantized) {
    j["quantizer"] = s.quantizer;
    json params = json::object();
    for (const auto& [k, v] : s.params) params[k] = v;
    j["params"] = params;
  }
  j["compute_dtype"] = name_of(kComputeDtypes, s.compute_dtype);
  return j;
}

std::string storage_text(const Storage& s) {
  if (s.kind == StorageKind::native) return "native";
  if (const QuantizerCaps* c = storage_caps(s)) return c->display;
  if (s.kind == StorageKind::layerwise_cast)
    return std::string(dtype_name(s.cast_dtype)) + " (cast)";
  return s.quantizer;
}

std::string placement_text(const Placement& p) {
  std::string t;
  switch (p.kind) {
    case PlacementKind::resident:
      t = "resident";
      break;
    case PlacementKind::model_offload:
      t = "model offload";
      break;
    case PlacementKind::group_offload:
      t = p.level == OffloadLevel::leaf
              ? "group offload (leaf"
              : "group offload (" + std::to_string(p.blocks_per_group) + " block" +
                    (p.blocks_per_group == 1 ? "" : "s") + "/group";
      if (p.use_stream) t += ", stream, prefetch " + std::to_string(p.prefetch);
      t += ")";
      break;
    case PlacementKind::sequential:
      t = "sequential offload";
      break;
    case PlacementKind::partial:
      t = std::to_string(p.resident_blocks) + " blocks resident, rest streamed";
      break;
    case PlacementKind::cpu:
      t = "on CPU";
      break;
    case PlacementKind::disk:
      t = "streamed from disk";
      break;
    case PlacementKind::dropped:
      t = "dropped after its phase";
      break;
  }
  const bool offloaded = p.kind == PlacementKind::model_offload ||
                         p.kind == PlacementKind::group_offload ||
                         p.kind == PlacementKind::sequential || p.kind == PlacementKind::partial;
  if (offloaded && p.park != Tier::pinned) t += ", parked " + std::string(name_of(kTiers, p.park));
  if (p.gpu != 0 && p.kind != PlacementKind::cpu) t += " on gpu " + std::to_string(p.gpu);
  return t;
}

}  // namespace

const ComponentStrategy* Strategy::find(std::string_view component) const noexcept {
  for (const auto& c : components)
    if (c.component == component) return &c;
  return nullptr;
}

Result<Strategy> strategy_from_json(std::string_view text) noexcept {
  if (text.size() > detail::kMaxStrategyBytes)
    return Status(Errc::limit_exceeded, "strategy: " + std::to_string(text.size()) +
                                            " bytes of JSON is more than the limit of " +
                                            std::to_string(detail::kMaxStrategyBytes))
        .with_rule("strategy.limit.size")
        .with_hint("a strategy lists a few components; check that this is the right file");
  json j;
  detail::JsonError err;
  if (!detail::parse_json_strict(text, j, err)) {
    Status s(Errc::invalid_argument, "strategy is not valid JSON: " + err.message);
    s.with_rule("strategy.json");
    if (err.kind == detail::JsonError::Kind::syntax) s.with_offset(err.offset);
    return s;
  }
  if (!j.is_object()) return bad("(top level)", "must be a JSON object");
  DMEM_TRY(check_keys(j, "", {"version", "components", "vae_tiling", "vae_slicing", "comment"}));
  if (j.contains("version") &&
      !(j["version"].is_number_unsigned() && j["version"].get<std::uint64_t>() == 1))
    return bad("version", "unsupported version", "1");
  if (j.contains("comment") && !j["comment"].is_string()) return bad("comment", "must be a string");
  if (j.contains("comment"))
    DMEM_TRY(check_length(j["comment"], "comment", detail::kMaxStrategyComment));
  Strategy st;
  DMEM_TRY(read_bool(j, "vae_tiling", "", st.vae_tiling));
  DMEM_TRY(read_bool(j, "vae_slicing", "", st.vae_slicing));
  if (!j.contains("components")) return bad("components", "is required (an array of components)");
  const json& comps = j["components"];
  if (!comps.is_array()) return bad("components", "must be an array");
  // Refused before any per-component work, so the cost of a hostile file is the parse alone.
  if (comps.size() > detail::kMaxStrategyComponents)
    return Status(Errc::limit_exceeded, "strategy: components: " + std::to_string(comps.size()) +
                                            " entries is more than the limit of " +
                                            std::to_string(detail::kMaxStrategyComponents))
        .with_rule("strategy.limit.components")
        .with_hint("list each of the model's components at most once (dmem inspect MODEL)");
  std::unordered_set<std::string> seen;  // names so far: duplicates in O(1), not a scan
  seen.reserve(comps.size());
  st.components.reserve(comps.size());
  for (std::size_t i = 0; i < comps.size(); ++i) {
    const json& c = comps[i];
    const std::string where = "components[" + std::to_string(i) + "]";
    if (!c.is_object()) return bad(where, "must be an object");
    DMEM_TRY(check_keys(c, where, {"component", "placement", "storage"}));
    if (!c.contains("component") || !c["component"].is_string() ||
        c["component"].get<std::string>().empty())
      return bad(where + ".component", "is required: the component's name (\"transformer\")");
    DMEM_TRY(check_length(c["component"], where + ".component", detail::kMaxStrategyString));
    ComponentStrategy cs;
    cs.component = c["component"].get<std::string>();
    if (!seen.insert(cs.component).second)
      return bad(where + ".component", "'" + cs.component + "' appears more than once");
    if (c.contains("placement"))
      DMEM_TRY(read_placement(c["placement"], where + ".placement", cs.placement));
    if (c.contains("storage")) DMEM_TRY(read_storage(c["storage"], where + ".storage", cs.storage));
    st.components.push_back(std::move(cs));
  }
  return st;
}

std::string strategy_to_json(const Strategy& strategy, int indent) {
  json j = json::object();
  j["version"] = 1;
  json comps = json::array();
  for (const auto& c : strategy.components) {
    json cj = json::object();
    cj["component"] = c.component;
    cj["placement"] = placement_json(c.placement);
    cj["storage"] = storage_json(c.storage);
    comps.push_back(std::move(cj));
  }
  j["components"] = std::move(comps);
  j["vae_tiling"] = strategy.vae_tiling;
  j["vae_slicing"] = strategy.vae_slicing;
  return detail::dump_json(j, indent);
}

std::string strategy_summary(const Strategy& strategy) {
  std::string out;
  for (const auto& c : strategy.components) {
    if (!out.empty()) out += " · ";
    out += c.component + " " + storage_text(c.storage) + " " + placement_text(c.placement);
  }
  if (strategy.vae_tiling) out += " · vae tiling";
  if (strategy.vae_slicing) out += " · vae slicing";
  return out.empty() ? "(empty strategy)" : out;
}

}  // namespace v1
}  // namespace dmem
