#include "io/jsonl.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace pcm {

void for_each_jsonl(const std::string& path, const std::function<void(const nlohmann::json&, int64_t)>& fn,
                    bool strict_tail) {
  const std::string content = read_text_file(path);
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < content.size()) {
    size_t end = content.find('\n', pos);
    bool complete = end != std::string::npos;
    if (!complete) end = content.size();
    ++line_no;
    std::string_view line(content.data() + pos, end - pos);
    pos = complete ? end + 1 : end;
    if (!complete && !strict_tail) break;  // torn by a kill mid-write
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    nlohmann::json row;
    try {
      row = nlohmann::json::parse(line);
    } catch (const nlohmann::json::parse_error& e) {
      fail("{}:{}: malformed JSON: {}", path, line_no, e.what());
    }
    naming_json_errors([&] { return fmt::format("{}:{}: unexpected value", path, line_no); },
                       [&] { fn(row, line_no); });
  }
}

std::vector<nlohmann::json> read_jsonl(const std::string& path, bool strict_tail) {
  std::vector<nlohmann::json> rows;
  for_each_jsonl(path, [&](const nlohmann::json& row, int64_t) { rows.push_back(row); }, strict_tail);
  return rows;
}

JsonlAppender::JsonlAppender(const std::string& path, bool sync_every_line)
    : path_(path), sync_every_line_(sync_every_line) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("{}: cannot open for appending: {}", path, std::strerror(errno));
  // Cut a torn final line (no '\n') left by a kill, so the next row starts on a line of its own.
  struct stat st {};
  if (::fstat(fd_, &st) != 0) fail("{}: stat failed: {}", path, std::strerror(errno));
  off_t size = st.st_size, keep = size;
  char buf[4096];
  while (keep > 0) {
    off_t chunk = std::min<off_t>(keep, sizeof buf);
    if (::pread(fd_, buf, chunk, keep - chunk) != chunk) fail("{}: read failed: {}", path, std::strerror(errno));
    off_t i = chunk;
    while (i > 0 && buf[i - 1] != '\n') --i;
    if (i > 0) { keep = keep - chunk + i; break; }
    keep -= chunk;
  }
  if (keep != size && ::ftruncate(fd_, keep) != 0) fail("{}: truncate failed: {}", path, std::strerror(errno));
  if (::lseek(fd_, 0, SEEK_END) < 0) fail("{}: seek failed: {}", path, std::strerror(errno));
}

JsonlAppender::~JsonlAppender() {
  if (fd_ >= 0) ::close(fd_);
}

void JsonlAppender::append(const nlohmann::json& row) {
  // Invalid UTF-8 in a string becomes U+FFFD rather than an exception halfway through a job.
  std::string line = row.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line.push_back('\n');
  std::lock_guard<std::mutex> lock(mutex_);
  size_t done = 0;
  while (done < line.size()) {
    ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("{}: write failed: {}", path_, std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  if (sync_every_line_) ::fsync(fd_);
}

void JsonlAppender::sync() {
  std::lock_guard<std::mutex> lock(mutex_);
  ::fsync(fd_);
}

}  // namespace pcm
