// A connection that takes longer than the limit to send its request is shut down; one being answered is not, however
// long the answer takes; a kept-alive connection's clock restarts at each answer.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "server/request_deadline.h"
#include "server_fixture.h"

namespace pcm::test {
namespace {

using namespace std::chrono_literals;

// A loopback listener and one accepted connection: the server's end (fd) and the client's, with the client's
// address as httplib spells it.
struct Connection {
  int listener = -1, server = -1, client = -1, port = 0;
  std::string peer_addr;
  int peer_port = 0;

  Connection() {
    listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listener, 4);
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    client = ::socket(AF_INET, SOCK_STREAM, 0);
    ::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a);
    server = ::accept(listener, nullptr, nullptr);
    sockaddr_in p{};
    len = sizeof p;
    ::getpeername(server, reinterpret_cast<sockaddr*>(&p), &len);
    char host[NI_MAXHOST];
    ::getnameinfo(reinterpret_cast<sockaddr*>(&p), len, host, sizeof host, nullptr, 0, NI_NUMERICHOST);
    peer_addr = host;
    peer_port = ntohs(p.sin_port);
  }
  ~Connection() {
    for (int fd : {listener, server, client}) ::close(fd);
  }
  // Whether the server's end was shut down (a read there returns at once with nothing).
  bool cut() const {
    timeval tv{0, 1000};
    ::setsockopt(server, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c;
    return ::recv(server, &c, 1, 0) == 0;
  }
};

// After `wait` more, the connection was cut, the watchdog's only cut.
void expect_cut_after(const Connection& c, const server::RequestDeadline& d, std::chrono::milliseconds wait) {
  std::this_thread::sleep_for(wait);
  EXPECT_TRUE(c.cut());
  EXPECT_EQ(d.cut(), 1u);
}

TEST(RequestDeadline, ReadingLongerThanTheLimitIsCut) {
  Connection c;
  server::RequestDeadline d(c.port, 1000ms);
  std::this_thread::sleep_for(600ms);
  EXPECT_FALSE(c.cut());
  // First seen by a scan within 0.5 s, cut by the first scan past the limit after that: by ~2 s. Margin for a loaded
  // machine (ctest -j2 on 2 cores).
  expect_cut_after(c, d, 2400ms);
}

TEST(RequestDeadline, ServingIsNeverCutAndEachAnswerRestartsTheClock) {
  Connection c;
  server::RequestDeadline d(c.port, 1000ms);
  d.serving(c.peer_addr, c.peer_port);
  std::this_thread::sleep_for(2500ms);  // a long answer
  EXPECT_FALSE(c.cut());
  d.answered(c.peer_addr, c.peer_port);
  for (int i = 0; i < 3; ++i) {  // kept alive: a quick request every 0.6 s
    std::this_thread::sleep_for(600ms);
    d.serving(c.peer_addr, c.peer_port);
    d.answered(c.peer_addr, c.peer_port);
  }
  EXPECT_FALSE(c.cut());
  expect_cut_after(c, d, 2500ms);
}

// A peer address spelt otherwise than the watchdog's own listing (its port the same) still keeps the connection
// uncut while served: a missed cut is the safe side.
TEST(RequestDeadline, ServedUnderAnotherSpellingIsNotCut) {
  Connection c;
  server::RequestDeadline d(c.port, 500ms);
  d.serving("::ffff:" + c.peer_addr, c.peer_port);
  std::this_thread::sleep_for(1600ms);
  EXPECT_FALSE(c.cut());
  d.answered("::ffff:" + c.peer_addr, c.peer_port);
  expect_cut_after(c, d, 1800ms);
}

TEST(RequestDeadline, OffWithoutALimit) {
  Connection c;
  server::RequestDeadline d(c.port, 0ms);
  std::this_thread::sleep_for(700ms);
  EXPECT_FALSE(c.cut());
  EXPECT_EQ(d.cut(), 0u);
}

// The server: a client sending its headers a byte at a time is disconnected after the limit, while other clients
// are answered meanwhile and afterwards.
TEST(RequestDeadline, ServerClosesADribblingClient) {
  server::ServerOptions so;
  so.request_read_limit = 1500ms;
  TestServer s({}, so);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(s.port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  const std::string head = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(100, 'a');
  const auto t0 = std::chrono::steady_clock::now();
  bool closed = false;
  for (size_t i = 0; i < head.size() && !closed; ++i) {  // ~14 s of bytes: the limit ends it long before
    if (::send(fd, &head[i], 1, MSG_NOSIGNAL) != 1) closed = true;
    std::this_thread::sleep_for(100ms);  // each byte well within httplib's 30 s per-read timeout
    if (i == 3) {
      auto r = s.client().Get("/health");
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 200);
    }
    timeval tv{0, 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char c;
    if (::recv(fd, &c, 1, 0) == 0) closed = true;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ::close(fd);
  EXPECT_TRUE(closed);
  EXPECT_GE(seconds, 1.4);
  EXPECT_LE(seconds, 8.0);
  EXPECT_EQ(s.client().Get("/health")->status, 200);
}

}  // namespace
}  // namespace pcm::test
