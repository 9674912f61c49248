// `pcm serve` as a child process, for the tests that signal it (tests/server, tests/cuda): a free port,
// fork + exec with stderr discarded, waiting until GET /health answers, and a POST whose body arrives
// piece by piece (streams, and clients that hang up part-way); ServeProcess, a server on a port it picks.
#pragma once
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"
#include "util/file.h"

namespace pcm::test {

// A TCP port on 127.0.0.1 that nothing listens on right now.
inline int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// Starts `pcm serve --port PORT ARGS...`; returns the child's pid (negative when fork failed).
inline pid_t spawn_pcm_serve(int port, const std::vector<std::string>& args) {
  std::vector<std::string> words = {pcm_binary(), "serve", "--port", std::to_string(port)};
  words.insert(words.end(), args.begin(), args.end());
  std::vector<char*> argv;  // built before fork: the child only calls exec
  for (auto& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    freopen("/dev/null", "w", stderr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// Polls GET /health every 20 ms; true once it answers 200, false when `timeout` passed first.
inline bool wait_until_healthy(int port, std::chrono::milliseconds timeout) {
  httplib::Client c("127.0.0.1", port);
  const auto end = std::chrono::steady_clock::now() + timeout;
  while (true) {
    auto h = c.Get("/health");
    if (h && h->status == 200) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

struct ReceivedPost {
  bool sent = false;  // false: a transport error, or the receiver hung up
  int status = 0;
  httplib::Error error = httplib::Error::Success;
};

// POSTs a JSON `body` to 127.0.0.1:PORT`path`, handing each piece of the response body to `on_bytes` as it
// arrives; `on_bytes` returning false hangs up.
inline ReceivedPost post_receiving(int port, const std::string& path, const std::string& body,
                                   const std::function<bool(const char*, size_t)>& on_bytes) {
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60);
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body;
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* d, size_t n, uint64_t, uint64_t) { return on_bytes(d, n); };
  httplib::Response res;
  ReceivedPost r;
  r.sent = c.send(req, res, r.error);
  r.status = res.status;
  return r;
}

// `pcm serve` on the tiny-mistral fixture with --port 0, stderr to `log`; port() is the one it printed
// (0 if it did not start within 30 s). Killed with SIGKILL when destroyed.
class ServeProcess {
 public:
  explicit ServeProcess(const std::string& log) : log_(log) {
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = freopen(log.c_str(), "w", stderr);
      (void)f;
      std::string bin = pcm_binary(), model = testdata("models/tiny-mistral-bf16");
      execl(bin.c_str(), bin.c_str(), "serve", "--model", model.c_str(), "--port", "0", "--threads", "1",
            "--max-slots", "4", static_cast<char*>(nullptr));
      _exit(127);
    }
    std::regex line("http://127\\.0\\.0\\.1:([0-9]+)");
    for (int i = 0; i < 600 && port_ == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      std::smatch m;
      std::string text = file_exists(log) ? read_text_file(log) : "";
      if (std::regex_search(text, m, line)) port_ = std::stoi(m[1]);
    }
  }
  ~ServeProcess() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;
  int port() const { return port_; }
  std::string log() const { return read_text_file(log_); }

 private:
  std::string log_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace pcm::test
