// A scripted OpenAI-compatible server on loopback for tests: the test supplies the handler, and helpers
// produce the failure modes a real deployment shows (garbage bodies, 429 + Retry-After, 500s, a
// connection dropped halfway through the response).
#pragma once
#include <httplib.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace pcm::test {

class ScriptedServer {
 public:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

  explicit ScriptedServer(Handler handler) : handler_(std::move(handler)) {
    auto route = [this](const httplib::Request& req, httplib::Response& res) { handler_(req, res); };
    server_.set_tcp_nodelay(true);
    // httplib holds one thread per keep-alive connection; leave room for every client connection.
    server_.new_task_queue = [] { return new httplib::ThreadPool(32); };
    server_.set_keep_alive_max_count(1000);
    server_.Post(".*", route);
    server_.Get(".*", route);
    port_ = server_.bind_to_any_port("127.0.0.1");
    widen_listen_backlog(port_);
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    for (int i = 0; i < 500 && !server_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ~ScriptedServer() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  ScriptedServer(const ScriptedServer&) = delete;
  ScriptedServer& operator=(const ScriptedServer&) = delete;

  int port() const { return port_; }

  // Debian's httplib listens with a backlog of 5: more simultaneous connects than that lose their SYN
  // and retry after a second. Listening again on the same socket raises the backlog (Linux).
  static void widen_listen_backlog(int port) {
    for (int fd = 3; fd < 1024; ++fd) {
      sockaddr_in addr{};
      socklen_t len = sizeof addr;
      int listening = 0;
      socklen_t optlen = sizeof listening;
      if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 || addr.sin_family != AF_INET) continue;
      if (ntohs(addr.sin_port) != port) continue;
      if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &optlen) == 0 && listening) ::listen(fd, 256);
    }
  }
  std::string base_url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

 private:
  Handler handler_;
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

// Sends headers promising a body, writes a few bytes of it, then closes the connection.
inline void drop_connection(httplib::Response& res) {
  res.set_content_provider(4096, "application/json", [](size_t, size_t, httplib::DataSink& sink) {
    sink.write("{\"choi", 6);
    return false;
  });
}

inline void reply_json(httplib::Response& res, const std::string& body, int status = 200) {
  res.status = status;
  res.set_content(body, "application/json");
}

// An OpenAI chat.completion body with the given choice texts and usage.
inline std::string chat_body(const std::vector<std::string>& texts, int prompt_tokens = 10, int completion_tokens = 5) {
  nlohmann::json choices = nlohmann::json::array();
  for (size_t i = 0; i < texts.size(); ++i)
    choices.push_back({{"index", i},
                       {"message", {{"role", "assistant"}, {"content", texts[i]}}},
                       {"finish_reason", "stop"}});
  return nlohmann::json{{"id", "chatcmpl-test"},
                        {"object", "chat.completion"},
                        {"choices", choices},
                        {"usage",
                         {{"prompt_tokens", prompt_tokens},
                          {"completion_tokens", completion_tokens},
                          {"total_tokens", prompt_tokens + completion_tokens}}}}
      .dump();
}

}  // namespace pcm::test
