// Requests on a kept-alive connection are answered at once. The server writes a response in several
// pieces; with Nagle's algorithm on, the second piece waited for the client's delayed ACK (40 ms on Linux),
// so every request after the first on a pooled connection (the openai Python client's) took 40+ ms.
#include <algorithm>
#include <chrono>

#include "server_fixture.h"

namespace pcm::test {
namespace {

// Median wall time of `count` calls of fn, in milliseconds.
template <class F>
double median_ms(int count, F fn) {
  std::vector<double> ms;
  for (int i = 0; i < count; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

TEST(ServerTcp, KeptAliveRequestsAreNotHeldByDelayedAcks) {
  TestServer s;
  httplib::Client c = s.client();
  c.set_keep_alive(true);
  c.set_tcp_nodelay(true);  // only the server's writes are under test
  // The server closes a connection after 5 requests (Keep-Alive max=5): 4 of every 5 reuse it.
  const double get_ms = median_ms(10, [&] {
    auto r = c.Get("/v1/models");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  });
  const double error_ms = median_ms(10, [&] {
    auto r = c.Post("/v1/completions", R"({"prompt": "hi", "max_tokens": -1})", "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400);
  });
  RecordProperty("get_median_us", static_cast<int>(get_ms * 1000));
  RecordProperty("error_median_us", static_cast<int>(error_ms * 1000));
  // 40 ms is Linux's shortest delayed ACK; an answer without the stall takes about a millisecond.
  EXPECT_LT(get_ms, 20.0);
  EXPECT_LT(error_ms, 20.0);
}

}  // namespace
}  // namespace pcm::test
