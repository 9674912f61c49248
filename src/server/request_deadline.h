// A deadline for reading one request. httplib 0.11.4 times out each read (30 s) but not a whole request, so a client
// that sent a byte every few seconds held one of the server's HTTP threads for as long as it liked, and a few dozen
// such clients held them all. A watchdog thread looks at the process's connections on the server's port twice a
// second (Linux: /proc/self/fd) and shuts down one that has spent longer than the limit reading a request: from the
// moment it is first seen, or from its last answer, until a handler takes its request (serving). Connections being
// answered, however long (a stream), are never cut.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace pcm::server {

class RequestDeadline {
 public:
  // Watches connections accepted on local `port`; `limit` 0 = off (no thread).
  RequestDeadline(int port, std::chrono::milliseconds limit);
  ~RequestDeadline();
  RequestDeadline(const RequestDeadline&) = delete;
  RequestDeadline& operator=(const RequestDeadline&) = delete;

  // A handler took the request of the connection from this peer (the Request's remote_addr and remote_port).
  void serving(const std::string& addr, int port);
  // Its answer is out: the connection reads its next request from now.
  void answered(const std::string& addr, int port);
  // Connections shut down so far for reading too long.
  uint64_t cut() const { return cut_.load(); }

 private:
  using Clock = std::chrono::steady_clock;
  using Peer = std::pair<std::string, int>;
  struct Conn {
    Clock::time_point reading_since;
    Clock::time_point noted = Clock::now();  // made by serving()/answered() before any scan listed it
    bool listed = false;                     // a scan has seen its descriptor
    bool serving = false;
    bool cut = false;
  };
  void watch();
  void scan();

  int port_;
  std::chrono::milliseconds limit_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::map<Peer, Conn> conns_;
  std::atomic<uint64_t> cut_{0};
  std::thread thread_;
};

}  // namespace pcm::server
