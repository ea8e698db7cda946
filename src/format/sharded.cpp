// Sharded safetensors checkpoints: `*.safetensors.index.json` plus its shards (FORMATS.md §1.5).
// The index and the shard headers must agree exactly; shards are listed in sorted name order.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "dmem/checkpoint.hpp"
#include "format/file_io.hpp"
#include "format/json_util.hpp"

namespace dmem {
inline namespace v1 {

namespace {

using json = nlohmann::json;

// Real indexes are a few MB at most (one line per tensor); bound what we allocate for one.
constexpr std::uint64_t kMaxIndexBytes = 100'000'000;

Status index_error(Errc code, std::string message, std::string_view index, const char* rule,
                   std::string hint) {
  Status status(code, std::move(message));
  status.with_file(std::string(index)).with_rule(rule);
  if (!hint.empty()) status.with_hint(std::move(hint));
  return status;
}

constexpr const char* kIndexHint =
    "the index is malformed: re-download it or re-save the model with save_pretrained";

// Shard names come from the file, so keep them inside the index's folder.
bool is_safe_shard_name(const std::string& name) {
  if (name.empty()) return false;
  const std::filesystem::path p(name);
  if (p.is_absolute() || p.has_root_name()) return false;
  for (const auto& part : p)
    if (part == "..") return false;
  return true;
}

// metadata.total_size: an integer (some tools write it as an integral float).
bool read_total_size(const json& value, std::uint64_t& out) {
  if (value.is_number_unsigned()) {
    out = value.get<std::uint64_t>();
    return true;
  }
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (d >= 0 && d < 18446744073709551616.0 &&
        d == static_cast<double>(static_cast<std::uint64_t>(d))) {
      out = static_cast<std::uint64_t>(d);
      return true;
    }
  }
  return false;
}

}  // namespace

Result<ShardedCheckpoint> read_sharded(std::string_view index_path) noexcept {
  auto text = detail::read_small_file(index_path, kMaxIndexBytes);
  if (!text) return text.status();

  std::size_t bad = 0;
  if (!detail::is_valid_utf8(*text, &bad)) {
    return index_error(Errc::format_error, "the index is not valid UTF-8", index_path,
                       "sharded.index.json", kIndexHint)
        .with_offset(bad);
  }
  json root;
  detail::JsonError jerr;
  if (!detail::parse_json_strict(*text, root, jerr, 16)) {
    if (jerr.kind == detail::JsonError::Kind::duplicate_key) {
      return index_error(
                 Errc::format_error, "the index has a " + jerr.message, index_path,
                 "sharded.index.duplicate_key",
                 "each tensor may be mapped to one shard only: fix or re-download the index")
          .with_tensor(jerr.key);
    }
    Status status = index_error(Errc::format_error, "the index is not valid JSON: " + jerr.message,
                                index_path, "sharded.index.json", kIndexHint);
    if (jerr.kind == detail::JsonError::Kind::syntax) status.with_offset(jerr.offset);
    return status;
  }

  if (!root.is_object()) {
    return index_error(Errc::format_error, "the index must be a JSON object", index_path,
                       "sharded.index.schema", kIndexHint);
  }
  const auto wm = root.find("weight_map");
  if (wm == root.end() || !wm->is_object()) {
    return index_error(Errc::format_error,
                       "the index has no \"weight_map\" object (tensor name -> shard file)",
                       index_path, "sharded.index.schema", kIndexHint);
  }
  if (wm->empty()) {
    return index_error(Errc::format_error, "the index's weight_map lists no tensors", index_path,
                       "sharded.index.empty", kIndexHint);
  }
  bool has_total = false;
  std::uint64_t total_size = 0;
  if (const auto md = root.find("metadata"); md != root.end() && !md->is_null()) {
    if (!md->is_object()) {
      return index_error(Errc::format_error, "the index's \"metadata\" must be an object",
                         index_path, "sharded.index.schema", kIndexHint);
    }
    if (const auto ts = md->find("total_size"); ts != md->end() && !ts->is_null()) {
      if (!read_total_size(*ts, total_size)) {
        return index_error(Errc::format_error, "metadata.total_size must be a non-negative integer",
                           index_path, "sharded.index.schema", kIndexHint);
      }
      has_total = true;
    }
  }

  // Shard list: sorted, unique file names (HF names -00001-of-0000N sort in shard order).
  std::vector<std::string> shard_names;
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    if (!it.value().is_string()) {
      return index_error(Errc::format_error, "weight_map values must be shard file names (strings)",
                         index_path, "sharded.index.schema", kIndexHint)
          .with_tensor(it.key());
    }
    const auto& shard = it.value().get_ref<const std::string&>();
    if (!is_safe_shard_name(shard)) {
      return index_error(
                 Errc::format_error,
                 "shard name \"" + shard + "\" must be a relative path inside the index's folder",
                 index_path, "sharded.shard.path", kIndexHint)
          .with_tensor(it.key());
    }
    shard_names.push_back(shard);
  }
  std::sort(shard_names.begin(), shard_names.end());
  shard_names.erase(std::unique(shard_names.begin(), shard_names.end()), shard_names.end());

  const std::filesystem::path folder = std::filesystem::path(std::string(index_path)).parent_path();
  ShardedCheckpoint out;
  out.index_path = std::string(index_path);
  std::vector<SafetensorsFile> shards;
  shards.reserve(shard_names.size());
  for (const std::string& name : shard_names) {
    const std::string path = folder.empty() ? name : (folder / name).string();
    auto shard = read_safetensors(path);
    if (!shard) {
      const Status& st = shard.status();
      if (st.code() == Errc::not_found) {
        std::size_t mapped = 0;
        for (auto it = wm->begin(); it != wm->end(); ++it)
          if (it.value().get_ref<const std::string&>() == name) ++mapped;
        return index_error(Errc::not_found,
                           "shard \"" + name + "\" (" + std::to_string(mapped) +
                               " tensors mapped to it) does not exist at " + path,
                           index_path, "sharded.shard.missing",
                           "the download is incomplete: fetch every shard listed in the index");
      }
      // Keep the shard's own rule, file, tensor and offset; say which index listed it.
      Status wrapped(st.code(), "shard \"" + name + "\" of index " + std::string(index_path) +
                                    ": " + st.message());
      wrapped.with_file(st.file()).with_rule(st.rule()).with_hint(st.hint());
      if (!st.tensor().empty()) wrapped.with_tensor(st.tensor());
      if (st.has_offset()) wrapped.with_offset(st.offset());
      return wrapped;
    }
    out.files.push_back(path);
    shards.push_back(std::move(shard.value()));
  }

  // Where each tensor really is; a name in two shards is ambiguous.
  std::unordered_map<std::string_view, std::uint32_t> where;
  for (std::uint32_t s = 0; s < shards.size(); ++s) {
    for (const TensorInfo& t : shards[s].tensors) {
      const auto [it, inserted] = where.emplace(t.name, s);
      if (!inserted) {
        return index_error(Errc::format_error,
                           "the tensor is stored in two shards: \"" + shard_names[it->second] +
                               "\" and \"" + shard_names[s] + "\"",
                           index_path, "sharded.tensor.duplicate",
                           "remove the stale shard or re-download the checkpoint")
            .with_tensor(t.name);
      }
    }
  }
  for (auto it = wm->begin(); it != wm->end(); ++it) {
    const auto& shard = it.value().get_ref<const std::string&>();
    const auto found = where.find(it.key());
    if (found == where.end()) {
      return index_error(Errc::format_error,
                         "weight_map maps the tensor to \"" + shard + "\" but no shard holds it",
                         index_path, "sharded.tensor.missing",
                         "the shard is stale or the index is wrong: re-download the checkpoint")
          .with_tensor(it.key());
    }
    if (shard_names[found->second] != shard) {
      return index_error(Errc::format_error,
                         "weight_map maps the tensor to \"" + shard + "\" but it is stored in \"" +
                             shard_names[found->second] + "\"",
                         index_path, "sharded.tensor.wrong_shard",
                         "the index does not match the shards: re-download the checkpoint")
          .with_tensor(it.key());
    }
  }
  std::uint64_t sum = 0;
  for (std::uint32_t s = 0; s < shards.size(); ++s) {
    for (TensorInfo& t : shards[s].tensors) {
      if (!wm->contains(t.name)) {
        return index_error(
                   Errc::format_error,
                   "shard \"" + shard_names[s] + "\" holds a tensor weight_map does not list",
                   index_path, "sharded.tensor.unlisted",
                   "the index does not match the shards: re-download the checkpoint")
            .with_tensor(t.name);
      }
      if (t.nbytes > UINT64_MAX - sum) {
        return index_error(Errc::format_error, "the shards' total size overflows 64 bits",
                           index_path, "sharded.total_size", kIndexHint);
      }
      sum += t.nbytes;
    }
  }
  if (has_total && total_size != sum) {
    return index_error(Errc::format_error,
                       "metadata.total_size is " + std::to_string(total_size) +
                           " but the shards' tensors hold " + std::to_string(sum) + " bytes",
                       index_path, "sharded.total_size",
                       "the index does not match the shards: re-download the checkpoint");
  }
  out.total_size = has_total ? total_size : sum;

  // Merged `__metadata__`: the first shard (in file order) that sets a key wins.
  std::map<std::string, std::string> merged;
  for (std::uint32_t s = 0; s < shards.size(); ++s) {
    for (auto& [k, v] : shards[s].metadata) merged.emplace(k, v);
    for (TensorInfo& t : shards[s].tensors) {
      t.file = s;
      out.tensors.push_back(std::move(t));
    }
  }
  out.metadata.assign(merged.begin(), merged.end());
  return out;
}

}  // namespace v1
}  // namespace dmem
