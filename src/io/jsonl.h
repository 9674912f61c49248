// JSON Lines: reading with line-numbered errors, and crash-safe appending for resumable jobs
// (eval samples, synth stages, training metrics). A kill can only tear the last line; readers skip a
// final line without '\n' and the appender cuts it off before writing, so files never hold torn rows.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

namespace pcm {

// Calls fn(row, line_number) for every complete non-blank line. A final line without a newline (torn by
// a kill while it was being written) is skipped unless `strict_tail`; malformed JSON on any other line,
// and a JSON type error thrown by fn (a field of another type than it reads), is a pcm::Error naming path:line.
void for_each_jsonl(const std::string& path, const std::function<void(const nlohmann::json&, int64_t)>& fn,
                    bool strict_tail = false);
std::vector<nlohmann::json> read_jsonl(const std::string& path, bool strict_tail = false);

// Appends one JSON object per line with a single write(2) each, so concurrent appends from threads in
// this process never interleave and a kill leaves at most one torn final line (removed on next open).
class JsonlAppender {
 public:
  // Creates the file (and parent directories) if needed. `sync_every_line` fsyncs after each row.
  explicit JsonlAppender(const std::string& path, bool sync_every_line = false);
  ~JsonlAppender();
  JsonlAppender(const JsonlAppender&) = delete;
  JsonlAppender& operator=(const JsonlAppender&) = delete;

  void append(const nlohmann::json& row);
  void sync();  // fsync what was appended so far
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
  bool sync_every_line_ = false;
  std::mutex mutex_;
};

}  // namespace pcm
