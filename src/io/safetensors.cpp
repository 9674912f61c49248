#include "io/safetensors.h"

#include <algorithm>
#include <cstring>

#include "util/error.h"
#include "util/json.h"

namespace pcm {

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorInfo::shape_str() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

namespace {

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // safetensors' own limit

TensorInfo parse_entry(const std::string& path, const std::string& name, const json& entry,
                       const uint8_t* data_start, uint64_t data_size) {
  PCM_CHECK(entry.is_object(), "{}: tensor '{}': header entry is not an object", path, name);
  TensorInfo t;
  t.name = name;
  t.file = path;
  PCM_CHECK(entry.contains("dtype") && entry["dtype"].is_string(), "{}: tensor '{}': missing dtype", path, name);
  std::string dt = entry["dtype"].get<std::string>();
  PCM_CHECK(parse_dtype(dt, &t.dtype), "{}: tensor '{}': unknown dtype '{}'", path, name, dt);
  PCM_CHECK(entry.contains("shape") && entry["shape"].is_array(), "{}: tensor '{}': missing shape", path, name);
  uint64_t numel = 1;
  for (const auto& d : entry["shape"]) {
    PCM_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0),
              "{}: tensor '{}': bad shape {}", path, name, entry["shape"].dump());
    uint64_t v = d.get<uint64_t>();
    PCM_CHECK(v == 0 || numel <= (1ull << 62) / v, "{}: tensor '{}': shape {} overflows", path, name,
              entry["shape"].dump());
    numel *= v;
    t.shape.push_back(static_cast<int64_t>(v));
  }
  const json& off = entry.contains("data_offsets") ? entry["data_offsets"] : json();
  PCM_CHECK(off.is_array() && off.size() == 2 && off[0].is_number_unsigned() && off[1].is_number_unsigned(),
            "{}: tensor '{}': missing or bad data_offsets", path, name);
  uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
  PCM_CHECK(begin <= end && end <= data_size,
            "{}: tensor '{}': data_offsets [{}, {}] outside the data section of {} bytes (truncated file?)", path,
            name, begin, end, data_size);
  uint64_t expect = numel * dtype_size(t.dtype);
  PCM_CHECK(end - begin == expect, "{}: tensor '{}': shape {} of {} needs {} bytes but data_offsets give {}",
            path, name, entry["shape"].dump(), dt, expect, end - begin);
  t.data = data_start + begin;
  t.nbytes = end - begin;
  return t;
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : map_(path) {
  PCM_CHECK(map_.size() >= 8, "{}: not a safetensors file: {} bytes, too short for the header length", path,
            map_.size());
  uint64_t header_len;
  std::memcpy(&header_len, map_.data(), 8);
  PCM_CHECK(header_len <= map_.size() - 8, "{}: header length {} runs past the end of the {}-byte file", path,
            header_len, map_.size());
  PCM_CHECK(header_len <= kMaxHeaderBytes, "{}: header length {} exceeds the 100 MB limit", path, header_len);
  std::string_view text(reinterpret_cast<const char*>(map_.data()) + 8, header_len);
  json header = parse_json(text, path + " (header)");
  PCM_CHECK(header.is_object(), "{}: header is not a JSON object", path);
  const uint8_t* data_start = map_.data() + 8 + header_len;
  uint64_t data_size = map_.size() - 8 - header_len;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      PCM_CHECK(it->is_object(), "{}: __metadata__ is not an object", path);
      for (auto m = it->begin(); m != it->end(); ++m)
        metadata_[m.key()] = m->is_string() ? m->get<std::string>() : m->dump();
      continue;
    }
    tensors_[it.key()] = parse_entry(path, it.key(), *it, data_start, data_size);
  }
  // Ranges must not overlap (zero-sized tensors take no bytes).
  std::vector<const TensorInfo*> by_offset;
  for (const auto& [name, t] : tensors_)
    if (t.nbytes) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](auto a, auto b) { return a->data < b->data; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo* a = by_offset[i - 1];
    const TensorInfo* b = by_offset[i];
    PCM_CHECK(a->data + a->nbytes <= b->data, "{}: tensors '{}' and '{}' overlap in the file", path, a->name,
              b->name);
  }
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const TensorInfo& SafetensorsFile::get(const std::string& name) const {
  const TensorInfo* t = find(name);
  PCM_CHECK(t, "{}: missing tensor '{}'", path(), name);
  return *t;
}

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    uint64_t n = dtype_size(t.dtype);
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
    header[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // align the data section
  std::string out;
  out.reserve(8 + h.size() + offset);
  uint64_t len = h.size();
  out.append(reinterpret_cast<const char*>(&len), 8);
  out += h;
  for (const auto& t : tensors) {
    uint64_t n = dtype_size(t.dtype);
    for (int64_t d : t.shape) n *= static_cast<uint64_t>(d);
    out.append(static_cast<const char*>(t.data), n);
  }
  write_file_atomic(path, out);
}

std::vector<float> tensor_to_f32(const TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  convert_to_f32(t.data, t.dtype, out.data(), out.size());
  return out;
}

}  // namespace pcm
