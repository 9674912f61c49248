#include "server/request_deadline.h"

#include <dirent.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdlib>
#include <optional>
#include <set>

namespace pcm::server {

namespace {

int port_of(const sockaddr_storage& a) {
  if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
  return -1;
}

// The peer of a connection accepted on local `port` (its address spelt as httplib spells Request::remote_addr:
// getnameinfo, numeric), or nothing for any other descriptor (files, pipes, the listening socket, other ports).
std::optional<std::pair<std::string, int>> accepted_peer(int fd, int port) {
  sockaddr_storage local{}, peer{};
  socklen_t len = sizeof local;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) != 0 || port_of(local) != port) return std::nullopt;
  len = sizeof peer;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return std::nullopt;
  char host[NI_MAXHOST];
  if (::getnameinfo(reinterpret_cast<sockaddr*>(&peer), len, host, sizeof host, nullptr, 0, NI_NUMERICHOST) != 0)
    return std::nullopt;
  return std::pair<std::string, int>{host, port_of(peer)};
}

}  // namespace

RequestDeadline::RequestDeadline(int port, std::chrono::milliseconds limit) : port_(port), limit_(limit) {
  if (limit_.count() > 0) thread_ = std::thread([this] { watch(); });
}

RequestDeadline::~RequestDeadline() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RequestDeadline::serving(const std::string& addr, int port) {
  std::lock_guard lock(mu_);
  conns_[{addr, port}].serving = true;
}

void RequestDeadline::answered(const std::string& addr, int port) {
  std::lock_guard lock(mu_);
  Conn& c = conns_[{addr, port}];
  c.serving = false;
  c.reading_since = Clock::now();
}

void RequestDeadline::watch() {
  std::unique_lock lock(mu_);
  while (!wake_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stop_; })) {
    lock.unlock();
    scan();
    lock.lock();
  }
}

void RequestDeadline::scan() {
  std::map<Peer, int> live;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (const dirent* e = ::readdir(dir)) {
      if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
      const int fd = std::atoi(e->d_name);
      if (auto peer = accepted_peer(fd, port_)) live[*peer] = fd;
    }
    ::closedir(dir);
  }
  std::lock_guard lock(mu_);
  const auto now = Clock::now();
  // Gone: closed. A handler's entry not yet listed (accepted after this listing) waits for the next scans, and one
  // never listed (its address spelt otherwise) stays while it is served.
  for (auto it = conns_.begin(); it != conns_.end();) {
    const Conn& c = it->second;
    const bool gone =
        !live.count(it->first) && (c.listed || (!c.serving && now - c.noted > std::chrono::seconds(5)));
    it = gone ? conns_.erase(it) : std::next(it);
  }
  // Ports of connections being answered: a peer whose address httplib spelt differently from getnameinfo here is
  // still not cut while served (a missed cut is the safe side).
  std::set<int> serving_ports;
  for (const auto& [peer, c] : conns_)
    if (c.serving) serving_ports.insert(peer.second);
  for (const auto& [peer, fd] : live) {
    auto [it, fresh] = conns_.try_emplace(peer);
    Conn& c = it->second;
    if (fresh) c.reading_since = now;  // first seen: accepted within the last scan
    c.listed = true;
    if (c.serving || c.cut || now - c.reading_since <= limit_ || serving_ports.count(peer.second)) continue;
    // The descriptor may have been closed and reused since the listing: cut only the same peer's connection.
    if (accepted_peer(fd, port_) != peer) continue;
    ::shutdown(fd, SHUT_RDWR);  // its blocked read returns; httplib closes the connection
    c.cut = true;
    ++cut_;
  }
}

}  // namespace pcm::server
