#include "io/gguf.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "util/error.h"

namespace pcm {

namespace {

enum GgufValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7, kString = 8, kArray = 9,
  kU64 = 10, kI64 = 11, kF64 = 12,
};

// ggml tensor types we load; anything else is an error naming the tensor and the type number.
bool ggml_type_to_dtype(uint32_t t, DType* out) {
  switch (t) {
    case 0: *out = DType::F32; return true;
    case 1: *out = DType::F16; return true;
    case 8: *out = DType::Q8_0; return true;
    case 30: *out = DType::BF16; return true;
    default: return false;
  }
}

const char* ggml_type_name(uint32_t t) {
  static const char* names[] = {"F32", "F16", "Q4_0", "Q4_1", "?", "?", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K",
                                "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K"};
  if (t < sizeof(names) / sizeof(names[0])) return names[t];
  return t == 30 ? "BF16" : "other";
}

// Bounds-checked little-endian cursor over the header; every error names the file and what was read.
class Cursor {
 public:
  Cursor(const uint8_t* data, size_t size, const std::string& path) : p_(data), size_(size), path_(path) {}

  size_t pos() const { return pos_; }
  void need(size_t n, const std::string& what) const {
    PCM_CHECK(n <= size_ - pos_, "{}: truncated GGUF header: {} needs {} bytes at offset {} but the file has {}",
              path_, what, n, pos_, size_ - pos_);
  }
  template <class T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string string(const std::string& what) {
    uint64_t n = read<uint64_t>(what + " length");
    need(n, what);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  const uint8_t* p_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& path_;
};

size_t min_value_bytes(uint32_t type) {
  switch (type) {
    case kU8: case kI8: case kBool: return 1;
    case kU16: case kI16: return 2;
    case kU32: case kI32: case kF32: return 4;
    case kString: case kU64: case kI64: case kF64: return 8;
    case kArray: return 12;
    default: return 0;
  }
}

nlohmann::json read_value(Cursor& c, uint32_t type, const std::string& key, const std::string& path, int depth) {
  switch (type) {
    case kU8: return c.read<uint8_t>(key);
    case kI8: return c.read<int8_t>(key);
    case kU16: return c.read<uint16_t>(key);
    case kI16: return c.read<int16_t>(key);
    case kU32: return c.read<uint32_t>(key);
    case kI32: return c.read<int32_t>(key);
    case kF32: return c.read<float>(key);
    case kU64: return c.read<uint64_t>(key);
    case kI64: return c.read<int64_t>(key);
    case kF64: return c.read<double>(key);
    case kBool: {
      uint8_t b = c.read<uint8_t>(key);
      PCM_CHECK(b <= 1, "{}: metadata '{}': bool value {} is not 0 or 1", path, key, b);
      return b == 1;
    }
    case kString: return c.string(key);
    case kArray: {
      PCM_CHECK(depth == 0, "{}: metadata '{}': nested arrays are not supported", path, key);
      uint32_t elem = c.read<uint32_t>(key + " array type");
      size_t min = min_value_bytes(elem);
      PCM_CHECK(min > 0 && elem != kArray, "{}: metadata '{}': unknown array element type {}", path, key, elem);
      uint64_t n = c.read<uint64_t>(key + " array length");
      c.need(n > 0 ? min * std::min<uint64_t>(n, SIZE_MAX / min) : 0, key + " array elements");
      nlohmann::json arr = nlohmann::json::array();
      arr.get_ref<nlohmann::json::array_t&>().reserve(n);
      for (uint64_t i = 0; i < n; ++i) arr.push_back(read_value(c, elem, key, path, depth + 1));
      return arr;
    }
    default:
      fail("{}: metadata '{}' has unknown value type {}", path, key, type);
  }
}

}  // namespace

bool is_gguf_path(const std::string& path) {
  return path.size() > 5 && path.compare(path.size() - 5, 5, ".gguf") == 0 && std::filesystem::is_regular_file(path);
}

int64_t GgufTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string GgufTensor::shape_str() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

GgufFile::GgufFile(const std::string& path) : map_(path) {
  Cursor c(map_.data(), map_.size(), path);
  uint32_t magic = c.read<uint32_t>("magic");
  PCM_CHECK(magic == 0x46554747u, "{}: not a GGUF file (magic 0x{:08x}, expected \"GGUF\")", path, magic);
  version_ = c.read<uint32_t>("version");
  PCM_CHECK(version_ == 2 || version_ == 3, "{}: GGUF version {} is not supported (2 or 3)", path, version_);
  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  // Each key/value needs at least 12 bytes and each tensor info 24: reject absurd counts early.
  c.need(std::min<uint64_t>(n_kv, SIZE_MAX / 16) * 12, "metadata entries");
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = c.string("metadata key #" + std::to_string(i));
    PCM_CHECK(!metadata_.contains(key), "{}: metadata key '{}' appears twice", path, key);
    uint32_t type = c.read<uint32_t>(key + " type");
    metadata_[key] = read_value(c, type, key, path, 0);
  }
  uint64_t alignment = 32;
  if (metadata_.contains("general.alignment")) {
    const auto& a = metadata_["general.alignment"];
    PCM_CHECK(a.is_number_unsigned() && a.get<uint64_t>() > 0 && (a.get<uint64_t>() & (a.get<uint64_t>() - 1)) == 0,
              "{}: general.alignment must be a power of two", path);
    alignment = a.get<uint64_t>();
  }
  c.need(std::min<uint64_t>(n_tensors, SIZE_MAX / 32) * 24, "tensor infos");
  struct Pending { GgufTensor t; uint64_t offset; };
  std::vector<Pending> pending;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    Pending p;
    p.t.name = c.string("tensor name #" + std::to_string(i));
    const std::string& name = p.t.name;
    uint32_t n_dims = c.read<uint32_t>(name + " n_dims");
    PCM_CHECK(n_dims >= 1 && n_dims <= 4, "{}: tensor '{}' has {} dims (1 to 4 allowed)", path, name, n_dims);
    std::vector<int64_t> ne(n_dims);
    int64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t v = c.read<uint64_t>(name + " dim");
      PCM_CHECK(v > 0 && v < (1ull << 40) && numel <= (int64_t{1} << 48) / static_cast<int64_t>(v),
                "{}: tensor '{}' has an invalid dimension {}", path, name, v);
      ne[d] = static_cast<int64_t>(v);
      numel *= ne[d];
    }
    p.t.shape.assign(ne.rbegin(), ne.rend());
    uint32_t type = c.read<uint32_t>(name + " type");
    PCM_CHECK(ggml_type_to_dtype(type, &p.t.dtype), "{}: tensor '{}' has ggml type {} ({}); supported: F32, F16, BF16, Q8_0",
              path, name, type, ggml_type_name(type));
    PCM_CHECK(p.t.dtype != DType::Q8_0 || ne[0] % kQ8BlockSize == 0,
              "{}: tensor '{}' is Q8_0 but its rows hold {} values (not a multiple of 32)", path, name, ne[0]);
    p.t.nbytes = row_bytes(p.t.dtype, ne[0]) * static_cast<size_t>(numel / ne[0]);
    p.offset = c.read<uint64_t>(name + " offset");
    PCM_CHECK(p.offset % alignment == 0, "{}: tensor '{}' offset {} is not aligned to {}", path, name, p.offset, alignment);
    PCM_CHECK(!tensors_.count(name), "{}: tensor '{}' appears twice", path, name);
    tensors_[name] = GgufTensor{};  // reserve the name for the duplicate check
    pending.push_back(std::move(p));
  }
  // A vocabulary-only file (no tensors) may end right after its header, without the alignment padding.
  const uint64_t data_start = pending.empty() ? std::min<uint64_t>(map_.size(), (c.pos() + alignment - 1) / alignment * alignment)
                                              : (c.pos() + alignment - 1) / alignment * alignment;
  PCM_CHECK(data_start <= map_.size(), "{}: tensor data starts at {} but the file has {} bytes", path, data_start,
            map_.size());
  const uint64_t data_size = map_.size() - data_start;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto& p : pending) {
    PCM_CHECK(p.offset <= data_size && p.t.nbytes <= data_size - p.offset,
              "{}: tensor '{}' {} {} needs bytes [{}, {}) of the data section, which has {} (truncated file?)", path,
              p.t.name, dtype_name(p.t.dtype), p.t.shape_str(), p.offset, p.offset + p.t.nbytes, data_size);
    p.t.data = map_.data() + data_start + p.offset;
    ranges.emplace_back(p.offset, p.offset + p.t.nbytes);
    tensors_[p.t.name] = std::move(p.t);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    PCM_CHECK(ranges[i].first >= ranges[i - 1].second, "{}: tensor data ranges overlap at offset {}", path,
              ranges[i].first);
}

const GgufTensor* GgufFile::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const GgufTensor& GgufFile::get(const std::string& name) const {
  const GgufTensor* t = find(name);
  PCM_CHECK(t, "{}: tensor '{}' is missing", path(), name);
  return *t;
}

int64_t GgufFile::get_int(const std::string& key) const {
  PCM_CHECK(metadata_.contains(key), "{}: metadata '{}' is missing", path(), key);
  const auto& v = metadata_.at(key);
  PCM_CHECK(v.is_number_integer(), "{}: metadata '{}' must be an integer, got {}", path(), key, v.dump());
  return v.get<int64_t>();
}

int64_t GgufFile::get_int_or(const std::string& key, int64_t fallback) const {
  return metadata_.contains(key) ? get_int(key) : fallback;
}

double GgufFile::get_float(const std::string& key) const {
  PCM_CHECK(metadata_.contains(key), "{}: metadata '{}' is missing", path(), key);
  const auto& v = metadata_.at(key);
  PCM_CHECK(v.is_number(), "{}: metadata '{}' must be a number, got {}", path(), key, v.dump());
  return v.get<double>();
}

std::string GgufFile::get_string(const std::string& key) const {
  PCM_CHECK(metadata_.contains(key), "{}: metadata '{}' is missing", path(), key);
  const auto& v = metadata_.at(key);
  PCM_CHECK(v.is_string(), "{}: metadata '{}' must be a string, got {}", path(), key, v.type_name());
  return v.get<std::string>();
}

}  // namespace pcm
