// Sharded safetensors checkpoints: `*.safetensors.index.json` plus its shards (FORMATS.md §1.5).
// The index and the shard headers must agree exactly; shards are listed in sorted name order.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "dmem/checkpoint.hpp"
#include "format/file_io.hpp"
#include "format/json_util.hpp"
#include "format/safetensors.hpp"
#include "format/streamed_text.hpp"

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

// One weight_map line: tensor name -> shard id (an index into the interned shard names).
struct MapEntry {
  std::string tensor;
  std::uint32_t shard = 0;
};

// Streams the index JSON into weight_map entries with interned shard names and total_size: no
// DOM, so memory is the entries themselves (about the size of the text) whatever the index holds.
class IndexHandler {
 public:
  explicit IndexHandler(std::string_view index) : index_(index) {}

  std::vector<MapEntry> entries;
  std::vector<std::string> shard_names;   // by shard id, first-seen order
  std::vector<std::string> first_tensor;  // by shard id: the first tensor that named it
  bool has_weight_map = false;
  bool has_total = false;
  std::uint64_t total_size = 0;
  Status error;
  bool syntax_error = false;
  std::size_t syntax_offset = 0;
  std::string syntax_message;

  bool null() { return scalar(Kind::null); }
  bool boolean(bool /*v*/) { return scalar(Kind::other); }
  bool number_integer(json::number_integer_t /*v*/) { return scalar(Kind::negative); }
  bool number_unsigned(json::number_unsigned_t v) {
    number_ = static_cast<double>(v);
    unsigned_ = v;
    return scalar(Kind::unsigned_int);
  }
  bool number_float(json::number_float_t v, const json::string_t& /*s*/) {
    number_ = v;
    return scalar(Kind::floating);
  }
  bool string(json::string_t& s) {
    text_ = &s;
    return scalar(Kind::string);
  }
  bool binary(json::binary_t& /*b*/) { return scalar(Kind::other); }
  bool start_object(std::size_t /*n*/) { return open(true); }
  bool start_array(std::size_t /*n*/) { return open(false); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(json::string_t& k) {
    if (depth_ == 1) {
      if (!top_keys_.insert(k).second) return duplicate(k, "");
      where_ = k == "weight_map" ? Where::weight_map
               : k == "metadata" ? Where::metadata
                                 : Where::other;
    } else if (depth_ == 2 && where_ == Where::weight_map) {
      key_ = std::move(k);
    } else if (depth_ == 2 && where_ == Where::metadata) {
      if (!meta_keys_.insert(k).second) return duplicate(k, "metadata");
      in_total_ = k == "total_size";
    }
    return true;
  }

  bool parse_error(std::size_t position, const std::string& /*token*/,
                   const nlohmann::detail::exception& ex) {
    syntax_error = true;
    syntax_offset = position > 0 ? position - 1 : 0;
    syntax_message = detail::plain_parse_message(ex.what());
    return false;
  }

 private:
  enum class Kind { null, negative, unsigned_int, floating, string, other };
  enum class Where { other, weight_map, metadata };
  static constexpr std::size_t kMaxDepth = 16;

  bool schema(std::string message, const std::string& tensor) {
    error = index_error(Errc::format_error, std::move(message), index_, "sharded.index.schema",
                        kIndexHint);
    if (!tensor.empty()) error.with_tensor(tensor);
    return false;
  }
  bool duplicate(const std::string& key, const char* in) {
    error =
        index_error(Errc::format_error,
                    "the index has a duplicate key \"" + key + "\"" +
                        (*in != 0 ? std::string(" in \"") + in + "\"" : std::string()),
                    index_, "sharded.index.duplicate_key",
                    "each tensor may be mapped to one shard only: fix or re-download the index");
    error.with_tensor(key);
    return false;
  }

  // A value that is not a container, at the current position.
  bool scalar(Kind kind) {
    if (depth_ == 0) return schema("the index must be a JSON object", "");
    if (depth_ == 1 && where_ == Where::weight_map) {
      return schema("the index has no \"weight_map\" object (tensor name -> shard file)", "");
    }
    if (depth_ == 1 && where_ == Where::metadata && kind != Kind::null)
      return schema("the index's \"metadata\" must be an object", "");
    if (depth_ == 2 && where_ == Where::weight_map) {
      if (kind != Kind::string)
        return schema("weight_map values must be shard file names (strings)", key_);
      add_entry(std::move(*text_));
      return true;
    }
    if (depth_ == 2 && where_ == Where::metadata && in_total_) return total(kind);
    return true;
  }

  // metadata.total_size: an integer (some tools write it as an integral float).
  bool total(Kind kind) {
    if (kind == Kind::null) return true;
    if (kind == Kind::unsigned_int) {
      total_size = unsigned_;
    } else if (kind == Kind::floating && number_ >= 0 && number_ < 18446744073709551616.0 &&
               number_ == static_cast<double>(static_cast<std::uint64_t>(number_))) {
      total_size = static_cast<std::uint64_t>(number_);
    } else {
      return schema("metadata.total_size must be a non-negative integer", "");
    }
    has_total = true;
    return true;
  }

  void add_entry(std::string shard) {
    auto [it, inserted] = ids_.emplace(std::move(shard), 0);
    if (inserted) {
      it->second = static_cast<std::uint32_t>(shard_names.size());
      shard_names.push_back(it->first);
      first_tensor.push_back(key_);
    }
    entries.push_back({std::move(key_), it->second});
  }

  bool open(bool object) {
    if (depth_ == 0 && !object) return schema("the index must be a JSON object", "");
    if (depth_ == 1 && where_ == Where::weight_map) {
      if (!object)
        return schema("the index has no \"weight_map\" object (tensor name -> shard file)", "");
      has_weight_map = true;
    }
    if (depth_ == 1 && where_ == Where::metadata && !object)
      return schema("the index's \"metadata\" must be an object", "");
    if (depth_ == 2 && where_ == Where::weight_map)
      return schema("weight_map values must be shard file names (strings)", key_);
    if (depth_ == 2 && where_ == Where::metadata && in_total_)
      return schema("metadata.total_size must be a non-negative integer", "");
    if (++depth_ > kMaxDepth) {
      syntax_error = true;
      syntax_message = "the index nests deeper than " + std::to_string(kMaxDepth) + " levels";
      return false;
    }
    return true;
  }

  bool close() {
    if (depth_ == 2) where_ = Where::other;  // leaving weight_map or metadata
    --depth_;
    return true;
  }

  std::string_view index_;
  std::size_t depth_ = 0;
  Where where_ = Where::other;
  bool in_total_ = false;
  std::string key_;
  std::string* text_ = nullptr;
  double number_ = 0;
  std::uint64_t unsigned_ = 0;
  std::unordered_map<std::string, std::uint32_t> ids_;
  std::unordered_set<std::string> top_keys_;
  std::unordered_set<std::string> meta_keys_;
};

// A shard's own error, keeping its rule, file, tensor and offset, saying which index listed it.
Status wrap_shard_error(const Status& st, const std::string& name, std::string_view index_path) {
  Status wrapped(st.code(), "shard \"" + name + "\" of index " + std::string(index_path) + ": " +
                                st.message());
  wrapped.with_file(st.file()).with_rule(st.rule()).with_hint(st.hint());
  if (!st.tensor().empty()) wrapped.with_tensor(st.tensor());
  if (st.has_offset()) wrapped.with_offset(st.offset());
  return wrapped;
}

Result<IndexHandler> parse_index(std::string_view index_path) {
  auto file = detail::ReadFile::open(index_path);
  if (!file) return file.status();
  if (file->size() > kMaxIndexBytes) {
    return index_error(Errc::limit_exceeded,
                       "the index is " + std::to_string(file->size()) + " bytes; at most " +
                           std::to_string(kMaxIndexBytes) + " are accepted",
                       index_path, "file.too_large", "this does not look like a shard index");
  }
  detail::StreamedText text(*file, 0, file->size());
  IndexHandler h(index_path);
  const bool ok =
      json::sax_parse(text.begin(), text.end(), &h, json::input_format_t::json, true, false);
  if (!ok) {
    if (text.utf8_error()) {
      return index_error(Errc::format_error, "the index is not valid UTF-8", index_path,
                         "sharded.index.json", kIndexHint)
          .with_offset(text.utf8_offset());
    }
    if (!text.error().is_ok()) return text.error();
    if (!h.error.is_ok()) return h.error;
    Status status =
        index_error(Errc::format_error, "the index is not valid JSON: " + h.syntax_message,
                    index_path, "sharded.index.json", kIndexHint);
    if (h.syntax_error && h.syntax_message.find("nests deeper") == std::string::npos)
      status.with_offset(h.syntax_offset);
    return status;
  }
  if (text.peek(3) == "\xEF\xBB\xBF") {
    return index_error(Errc::format_error, "the index starts with a byte order mark", index_path,
                       "sharded.index.json", kIndexHint)
        .with_offset(0);
  }
  return h;
}

// A file's identity after resolving links: the same shard spelled "x", "./x" or ".//x" is read
// once (work stays linear in distinct files), while links out of the folder still work (the
// Hugging Face cache links every file into a blob store).
struct FileId {
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  bool operator==(const FileId&) const = default;
};

}  // namespace

Result<ShardedCheckpoint> read_sharded(std::string_view index_path) noexcept {
  auto parsed = parse_index(index_path);
  if (!parsed) return parsed.status();
  IndexHandler& h = *parsed;
  if (!h.has_weight_map) {
    return index_error(Errc::format_error,
                       "the index has no \"weight_map\" object (tensor name -> shard file)",
                       index_path, "sharded.index.schema", kIndexHint);
  }
  if (h.entries.empty()) {
    return index_error(Errc::format_error, "the index's weight_map lists no tensors", index_path,
                       "sharded.index.empty", kIndexHint);
  }
  // A tensor listed twice: sorting also makes every later lookup a binary search.
  std::vector<MapEntry>& entries = h.entries;
  std::stable_sort(entries.begin(), entries.end(),
                   [](const MapEntry& a, const MapEntry& b) { return a.tensor < b.tensor; });
  for (std::size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].tensor == entries[i - 1].tensor) {
      return index_error(
                 Errc::format_error,
                 "the index has a duplicate key \"" + entries[i].tensor + "\" in \"weight_map\"",
                 index_path, "sharded.index.duplicate_key",
                 "each tensor may be mapped to one shard only: fix or re-download the index")
          .with_tensor(entries[i].tensor);
    }
  }
  for (std::size_t id = 0; id < h.shard_names.size(); ++id) {
    const std::string& shard = h.shard_names[id];
    if (shard.find('\0') != std::string::npos) {
      return index_error(Errc::format_error,
                         "a shard name contains a NUL byte (\\u0000); the part before it, \"" +
                             shard.substr(0, shard.find('\0')) + "\", would be opened instead",
                         index_path, "sharded.shard.path", kIndexHint)
          .with_tensor(h.first_tensor[id]);
    }
    if (!is_safe_shard_name(shard)) {
      return index_error(
                 Errc::format_error,
                 "shard name \"" + shard + "\" must be a relative path inside the index's folder",
                 index_path, "sharded.shard.path", kIndexHint)
          .with_tensor(h.first_tensor[id]);
    }
  }

  // Distinct files, in sorted-name order; every spelling of one file maps to its first name.
  std::vector<std::uint32_t> by_name(h.shard_names.size());
  for (std::uint32_t i = 0; i < by_name.size(); ++i) by_name[i] = i;
  std::sort(by_name.begin(), by_name.end(),
            [&](std::uint32_t a, std::uint32_t b) { return h.shard_names[a] < h.shard_names[b]; });
  const std::filesystem::path folder = std::filesystem::path(std::string(index_path)).parent_path();
  ShardedCheckpoint out;
  out.index_path = std::string(index_path);
  std::vector<std::string> file_names;                 // by file: the shard name it was read under
  std::vector<FileId> ids;                             // by file
  std::vector<std::uint32_t> file_of(by_name.size());  // shard id -> file
  // Each distinct name is opened once; its identity comes from the open file (no stat-then-open
  // race), and a file already seen under another spelling is not read again.
  std::vector<SafetensorsFile> shards;
  for (const std::uint32_t id : by_name) {
    const std::string& name = h.shard_names[id];
    const std::string path = folder.empty() ? name : (folder / name).string();
    auto file = detail::ReadFile::open(path);
    if (!file) {
      const Status& st = file.status();
      if (st.code() == Errc::not_found) {
        std::size_t mapped = 0;
        for (const MapEntry& e : entries)
          if (e.shard == id) ++mapped;
        return index_error(Errc::not_found,
                           "shard \"" + name + "\" (" + std::to_string(mapped) +
                               " tensors mapped to it) does not exist at " + path,
                           index_path, "sharded.shard.missing",
                           "the download is incomplete: fetch every shard listed in the index");
      }
      return wrap_shard_error(st, name, index_path);
    }
    const FileId fid{file->device(), file->inode()};
    const auto seen = std::find(ids.begin(), ids.end(), fid);
    if (seen != ids.end()) {
      file_of[id] = static_cast<std::uint32_t>(seen - ids.begin());
      continue;
    }
    auto shard = detail::read_safetensors_file(*file);
    if (!shard) return wrap_shard_error(shard.status(), name, index_path);
    file_of[id] = static_cast<std::uint32_t>(ids.size());
    ids.push_back(fid);
    file_names.push_back(name);
    out.files.push_back(path);
    shards.push_back(std::move(shard.value()));
  }
  const std::vector<std::string>& shard_names = file_names;

  // Where each tensor really is (sorted by name); a name in two shards is ambiguous.
  std::vector<std::pair<std::string_view, std::uint32_t>> where;
  for (std::uint32_t f = 0; f < shards.size(); ++f)
    for (const TensorInfo& t : shards[f].tensors) where.emplace_back(t.name, f);
  std::stable_sort(where.begin(), where.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (std::size_t i = 1; i < where.size(); ++i) {
    if (where[i].first == where[i - 1].first) {
      return index_error(Errc::format_error,
                         "the tensor is stored in two shards: \"" +
                             shard_names[where[i - 1].second] + "\" and \"" +
                             shard_names[where[i].second] + "\"",
                         index_path, "sharded.tensor.duplicate",
                         "remove the stale shard or re-download the checkpoint")
          .with_tensor(std::string(where[i].first));
    }
  }
  const auto find_stored = [&](std::string_view name) -> const std::uint32_t* {
    const auto it = std::lower_bound(where.begin(), where.end(), name,
                                     [](const auto& e, std::string_view n) { return e.first < n; });
    return it != where.end() && it->first == name ? &it->second : nullptr;
  };
  for (const MapEntry& e : entries) {
    const std::string& shard = h.shard_names[e.shard];
    const std::uint32_t* stored = find_stored(e.tensor);
    if (stored == nullptr) {
      return index_error(Errc::format_error,
                         "weight_map maps the tensor to \"" + shard + "\" but no shard holds it",
                         index_path, "sharded.tensor.missing",
                         "the shard is stale or the index is wrong: re-download the checkpoint")
          .with_tensor(e.tensor);
    }
    // Compared by file identity: "./x" and "x" name the same shard.
    if (file_of[e.shard] != *stored) {
      return index_error(Errc::format_error,
                         "weight_map maps the tensor to \"" + shard + "\" but it is stored in \"" +
                             shard_names[*stored] + "\"",
                         index_path, "sharded.tensor.wrong_shard",
                         "the index does not match the shards: re-download the checkpoint")
          .with_tensor(e.tensor);
    }
  }
  const auto listed = [&](const std::string& name) {
    const auto it =
        std::lower_bound(entries.begin(), entries.end(), name,
                         [](const MapEntry& e, const std::string& n) { return e.tensor < n; });
    return it != entries.end() && it->tensor == name;
  };
  const bool has_total = h.has_total;
  const std::uint64_t total_size = h.total_size;
  std::uint64_t sum = 0;
  for (std::uint32_t s = 0; s < shards.size(); ++s) {
    for (TensorInfo& t : shards[s].tensors) {
      if (!listed(t.name)) {
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
