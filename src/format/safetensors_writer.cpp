// safetensors writer: byte-for-byte what the reference writer produces (FORMATS.md §1.4), written
// to a temporary file in the destination folder and renamed into place.
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <vector>

#include "dmem/writer.hpp"
#include "format/file_io.hpp"
#include "format/json_util.hpp"
#include "format/safetensors.hpp"
#include "format/writer_layout.hpp"

namespace dmem {
inline namespace v1 {

namespace {

Status validate(std::string_view path, std::span<const TensorData> tensors,
                std::span<const std::pair<std::string, std::string>> metadata, bool need_data) {
  for (const TensorData& t : tensors) {
    if (t.name.empty())
      return detail::writer_input_error("a tensor has an empty name", path,
                                        "safetensors.write.name");
    if (t.name == "__metadata__")
      return detail::writer_input_error("\"__metadata__\" is reserved and cannot name a tensor",
                                        path, "safetensors.write.name", t.name);
    if (!detail::is_valid_utf8(t.name))
      return detail::writer_input_error("the tensor name is not valid UTF-8", path,
                                        "safetensors.write.name");
    if (detail::safetensors_bits(t.dtype) == 0)
      return detail::writer_input_error(
          "dtype " + std::string(dtype_name(t.dtype)) +
              " cannot be stored in safetensors (use GGUF for block types)",
          path, "safetensors.write.dtype", t.name);
    std::uint64_t expected = 0;
    switch (detail::safetensors_nbytes(t.dtype, t.shape, expected)) {
      case detail::SizeCheck::overflow:
        return detail::writer_input_error("the shape's byte size overflows 64 bits", path,
                                          "safetensors.write.shape", t.name);
      case detail::SizeCheck::misaligned:
        return detail::writer_input_error("the element count is not a whole number of bytes of " +
                                              std::string(dtype_name(t.dtype)),
                                          path, "safetensors.write.shape", t.name);
      case detail::SizeCheck::ok:
        break;
    }
    if (t.nbytes != expected)
      return detail::writer_input_error("nbytes is " + std::to_string(t.nbytes) +
                                            " but the shape and dtype need " +
                                            std::to_string(expected),
                                        path, "safetensors.write.nbytes", t.name);
    if (need_data && t.nbytes > 0 && t.data == nullptr)
      return detail::writer_input_error(
          "data is null for a tensor of " + std::to_string(t.nbytes) + " bytes", path,
          "safetensors.write.data", t.name);
  }

  std::vector<const std::string*> names;
  names.reserve(tensors.size());
  for (const TensorData& t : tensors) names.push_back(&t.name);
  std::sort(names.begin(), names.end(),
            [](const std::string* a, const std::string* b) { return *a < *b; });
  for (std::size_t i = 1; i < names.size(); ++i)
    if (*names[i] == *names[i - 1])
      return detail::writer_input_error("two tensors have the same name", path,
                                        "safetensors.write.duplicate", *names[i]);

  std::vector<const std::string*> keys;
  for (const auto& [key, value] : metadata) {
    if (!detail::is_valid_utf8(key) || !detail::is_valid_utf8(value))
      return detail::writer_input_error("metadata key or value \"" + key + "\" is not valid UTF-8",
                                        path, "safetensors.write.metadata");
    keys.push_back(&key);
  }
  std::sort(keys.begin(), keys.end(),
            [](const std::string* a, const std::string* b) { return *a < *b; });
  for (std::size_t i = 1; i < keys.size(); ++i)
    if (*keys[i] == *keys[i - 1])
      return detail::writer_input_error("metadata key \"" + *keys[i] + "\" appears twice", path,
                                        "safetensors.write.metadata");
  return Status::ok();
}

}  // namespace

}  // namespace v1

namespace detail {

Result<WriteLayout> safetensors_layout(
    std::string_view path, std::span<const TensorData> tensors,
    std::span<const std::pair<std::string, std::string>> metadata, bool need_data) noexcept {
  DMEM_TRY(validate(path, tensors, metadata, need_data));

  // Descending alignment (the reference enum order), then name: every tensor then starts at a
  // multiple of its element size once the header is padded to 8 bytes.
  std::vector<std::size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const int oa = detail::safetensors_order(tensors[a].dtype);
    const int ob = detail::safetensors_order(tensors[b].dtype);
    if (oa != ob) return oa > ob;
    return tensors[a].name < tensors[b].name;
  });

  // The reference keeps metadata in a hash map (no stable order); we write it sorted by key.
  std::vector<const std::pair<std::string, std::string>*> meta;
  for (const auto& kv : metadata) meta.push_back(&kv);
  std::sort(meta.begin(), meta.end(), [](auto* a, auto* b) { return a->first < b->first; });

  std::string header = "{";
  if (!meta.empty()) {
    header += "\"__metadata__\":{";
    for (std::size_t i = 0; i < meta.size(); ++i) {
      if (i > 0) header += ',';
      detail::append_json_string(header, meta[i]->first);
      header += ':';
      detail::append_json_string(header, meta[i]->second);
    }
    header += '}';
  }
  WriteLayout layout;
  layout.offsets.assign(tensors.size(), 0);
  layout.order = order;
  std::uint64_t offset = 0;
  for (std::size_t k = 0; k < order.size(); ++k) {
    const TensorData& t = tensors[order[k]];
    if (k > 0 || !meta.empty()) header += ',';
    detail::append_json_string(header, t.name);
    header += ":{\"dtype\":\"";
    header += dtype_info(t.dtype).safetensors_name;
    header += "\",\"shape\":[";
    for (std::size_t d = 0; d < t.shape.size(); ++d) {
      if (d > 0) header += ',';
      header += std::to_string(t.shape[d]);
    }
    if (t.nbytes > UINT64_MAX - offset)
      return detail::writer_input_error("the tensors' total size overflows 64 bits", path,
                                        "safetensors.write.shape", t.name);
    header += "],\"data_offsets\":[" + std::to_string(offset) + ',' +
              std::to_string(offset + t.nbytes) + "]}";
    layout.offsets[order[k]] = offset;
    offset += t.nbytes;
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');  // "Force alignment to 8 bytes"

  if (header.size() > kSafetensorsMaxHeader) {
    return Status(Errc::limit_exceeded, "the header would be " + std::to_string(header.size()) +
                                            " bytes; readers accept at most " +
                                            std::to_string(kSafetensorsMaxHeader))
        .with_file(std::string(path))
        .with_rule("safetensors.write.header_too_large")
        .with_hint("split the tensors into shards");
  }
  const std::uint64_t start = 8 + header.size();
  if (offset > UINT64_MAX - start)
    return detail::writer_input_error("the file size overflows 64 bits", path,
                                      "safetensors.write.shape");
  layout.head.resize(8);
  detail::store_le64(layout.head.data(), header.size());
  layout.head.insert(layout.head.end(), header.begin(), header.end());
  for (std::uint64_t& o : layout.offsets) o += start;
  layout.file_size = start + offset;
  return layout;
}

}  // namespace detail

inline namespace v1 {

Status write_safetensors(std::string_view path, std::span<const TensorData> tensors,
                         std::span<const std::pair<std::string, std::string>> metadata) noexcept {
  auto layout = detail::safetensors_layout(path, tensors, metadata, true);
  if (!layout) return layout.status();
  auto file = detail::TempFile::create(path);
  if (!file) return file.status();
  DMEM_TRY(file->write(layout->head.data(), layout->head.size()));
  for (const std::size_t i : layout->order)
    if (tensors[i].nbytes > 0) DMEM_TRY(file->write(tensors[i].data, tensors[i].nbytes));
  return file->commit();  // an uncommitted TempFile removes itself on every early return
}

}  // namespace v1
}  // namespace dmem
