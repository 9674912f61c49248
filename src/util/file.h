// Files: whole-file reads, read-only memory maps, and atomic writes (temp file + rename).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pcm {

std::string read_text_file(const std::string& path);
bool file_exists(const std::string& path);
bool is_directory(const std::string& path);

// Writes `data` to path.tmp, fsyncs, then renames over `path`: a kill never leaves a torn file.
void write_file_atomic(const std::string& path, std::string_view data);

// A read-only memory map of a whole file. Pages load on first touch, so weights cost no copy.
class MappedFile {
 public:
  MappedFile() = default;
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  void release();
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace pcm
