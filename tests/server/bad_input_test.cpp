// Bad requests get HTTP 400 with an OpenAI error body, never a crash; random bodies never break the server.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <random>

#include "server/openai_request.h"
#include "server_fixture.h"

namespace pcm::test {
namespace {

server::ServerOptions small_limits() {
  server::ServerOptions so;
  so.limits.max_tokens = 8;  // whatever a mutated body asks, generations stay short
  so.limits.max_prompt_tokens = 64;
  return so;
}

TEST(ServerBadInput, EachMistakeIsA400NamingTheParameter) {
  TestServer s({}, small_limits());
  struct Case {
    const char* path;
    std::string body;
    const char* param;  // "" = not checked
  };
  const std::string big(3000, 'a');
  std::vector<Case> cases = {
      {"/v1/completions", "{", ""},
      {"/v1/completions", "", ""},
      {"/v1/completions", "[1,2]", ""},
      {"/v1/completions", "null", ""},
      {"/v1/completions", R"({"prompt": "hi", "max_tokens": 5,})", ""},
      {"/v1/completions", "{\"prompt\": \"\xff\xfe bad utf8\"}", ""},
      {"/v1/completions", "{\"prompt\": \"\xc3\"}", ""},
      {"/v1/completions", R"({"max_tokens": 5})", "prompt"},
      {"/v1/completions", R"({"prompt": 5})", "prompt"},
      {"/v1/completions", R"({"prompt": ""})", "prompt"},
      {"/v1/completions", R"({"prompt": []})", "prompt"},
      {"/v1/completions", R"({"prompt": ["a", "b"]})", "prompt"},
      {"/v1/completions", R"({"prompt": [1, -2]})", "prompt"},
      {"/v1/completions", R"({"prompt": [1, 2.5]})", "prompt"},
      {"/v1/completions", R"({"prompt": [1, 99999999]})", "prompt"},
      {"/v1/completions", R"({"prompt": [[]]})", "prompt"},
      {"/v1/completions", R"({"prompt": [[["hello"]]]})", "prompt"},
      {"/v1/completions", R"({"prompt": [[[1, 2]]]})", "prompt"},
      // Nesting deep enough to overflow a recursive parser's stack (it crashed the server at 40000).
      {"/v1/completions", "{\"prompt\": " + std::string(100000, '[') + std::string(100000, ']') + "}", "prompt"},
      {"/v1/completions", R"({"prompt": "hi", "tool_choice": "required"})", "tool_choice"},
      {"/v1/completions", R"({"prompt": "hi", "tool_choice": {"type": "function", "function": {"name": "f"}}})",
       "tool_choice"},
      {"/v1/completions", R"({"prompt": "hi", "tool_choice": "bogus"})", "tool_choice"},
      {"/v1/completions", R"({"prompt": "hi", "tool_choice": 5})", "tool_choice"},
      {"/v1/completions", R"({"prompt": "hi", "parallel_tool_calls": "x"})", "parallel_tool_calls"},
      {"/v1/completions", R"({"prompt": "hi", "user": 5})", "user"},
      {"/v1/completions", R"({"prompt": "hi", "metadata": 5})", "metadata"},
      {"/v1/completions", R"({"prompt": "hi", "store": "x"})", "store"},
      {"/v1/completions", R"({"prompt": "hi", "service_tier": 5})", "service_tier"},
      {"/v1/completions", R"({"prompt": "hi", "reasoning_effort": 5})", "reasoning_effort"},
      {"/v1/completions", R"({"prompt": "hi", "model": 3})", "model"},
      {"/v1/completions", R"({"prompt": "hi", "max_tokens": -1})", "max_tokens"},
      {"/v1/completions", R"({"prompt": "hi", "max_tokens": 0})", "max_tokens"},
      {"/v1/completions", R"({"prompt": "hi", "max_tokens": 100000000000000000000})", "max_tokens"},
      {"/v1/completions", R"({"prompt": "hi", "max_tokens": 9})", "max_tokens"},
      {"/v1/completions", R"({"prompt": "hi", "max_tokens": "5"})", "max_tokens"},
      {"/v1/completions", R"({"prompt": "hi", "max_tokens": 2.5})", "max_tokens"},
      {"/v1/completions", R"({"prompt": "hi", "temperature": "hot"})", "temperature"},
      {"/v1/completions", R"({"prompt": "hi", "temperature": -0.5})", "temperature"},
      {"/v1/completions", R"({"prompt": "hi", "top_p": 0})", "top_p"},
      {"/v1/completions", R"({"prompt": "hi", "top_p": 1.5})", "top_p"},
      {"/v1/completions", R"({"prompt": "hi", "top_k": -7})", "top_k"},
      {"/v1/completions", R"({"prompt": "hi", "min_p": 2})", "min_p"},
      {"/v1/completions", R"({"prompt": "hi", "seed": "x"})", "seed"},
      {"/v1/completions", R"({"prompt": "hi", "n": 0})", "n"},
      {"/v1/completions", R"({"prompt": "hi", "n": 99})", "n"},
      {"/v1/completions", R"({"prompt": "hi", "stream": "yes"})", "stream"},
      {"/v1/completions", R"({"prompt": "hi", "stream_options": {"include_usage": true}})", "stream_options"},
      {"/v1/completions", R"({"prompt": "hi", "stop": 5})", "stop"},
      {"/v1/completions", R"({"prompt": "hi", "stop": ["a","b","c","d","e"]})", "stop"},
      {"/v1/completions", R"({"prompt": "hi", "stop": [""]})", "stop"},
      {"/v1/completions", R"({"prompt": "hi", "logprobs": 3})", "logprobs"},
      {"/v1/completions", R"({"prompt": "hi", "presence_penalty": 0.5})", "presence_penalty"},
      {"/v1/completions", R"({"prompt": "hi", "echo": true})", "echo"},
      {"/v1/completions", R"({"prompt": "hi", "best_of": 3})", "best_of"},
      {"/v1/completions", "{\"prompt\": \"" + big + "\"}", "prompt"},  // > 64 tokens
      {"/v1/chat/completions", R"({"messages": []})", "messages"},
      {"/v1/chat/completions", R"({"messages": "hi"})", "messages"},
      {"/v1/chat/completions", R"({})", "messages"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user"}]})", "messages[0].content"},
      {"/v1/chat/completions", R"({"messages": [{"content": "hi"}]})", "messages[0].role"},
      {"/v1/chat/completions", R"({"messages": [{"role": "wizard", "content": "hi"}]})", "messages[0].role"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": 7}]})", "messages[0].content"},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})",
       "messages[0].content"},
      {"/v1/chat/completions", R"({"messages": [5]})", "messages[0]"},
      {"/v1/embeddings", R"({})", "input"},
      {"/v1/embeddings", R"({"input": 5})", "input"},
      {"/v1/embeddings", R"({"input": [[]]})", "input"},
      {"/v1/embeddings", R"({"input": "x", "encoding_format": "hex"})", "encoding_format"},
      {"/v1/embeddings", R"({"input": "x", "dimensions": 3})", "dimensions"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.path) + " " + c.body.substr(0, 100));
    auto r = s.post(c.path, c.body);
    expect_openai_error(r, 400, c.param);
  }
  EXPECT_EQ(s.client().Get("/health")->status, 200);
  EXPECT_EQ(s.scheduler->stats().slots_used, 0);
}

TEST(ServerBadInput, OversizedBodyIs413) {
  server::ServerOptions so = small_limits();
  so.max_body_bytes = 1000;
  TestServer s({}, so);
  auto r = s.post("/v1/completions", "{\"prompt\": \"" + std::string(5000, 'x') + "\"}");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 413);
}

// One request written to a raw socket (headers as given, then `body`) and the one answer read back: its headers and
// its Content-Length of body ("" when none came within `timeout_s`).
std::string raw_exchange(int port, const std::string& head, const std::string& body, int timeout_s) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{timeout_s, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string req = head + "\r\n\r\n" + body;
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) {
        out.append(buf, static_cast<size_t>(n));
        const size_t end = out.find("\r\n\r\n"), cl = out.find("Content-Length: ");
        if (end != std::string::npos && cl < end && out.size() >= end + 4 + std::stoul(out.substr(cl + 16))) break;
      }
    }
  }
  ::close(fd);
  return out;
}

// A Content-Length over the limit, wrapped ("-5" is 2^64 - 5 to httplib) or not a number is answered at once, before
// any body is read: httplib read such a body until the client had been quiet for 30 s before its 413. The answer says
// Connection: close, and the server goes on.
TEST(ServerBadInput, BadContentLengthIsAnsweredBeforeTheBody) {
  server::ServerOptions so = small_limits();
  so.max_body_bytes = 1000;
  TestServer s({}, so);
  const std::string body = R"({"prompt": [1, 2], "max_tokens": 1})";
  struct Case {
    std::string length;
    int status;
    const char* message;
  };
  const std::vector<Case> cases = {
      {"-5", 400, "Content-Length '-5' is not a byte count"},
      {"abc", 400, "Content-Length 'abc' is not a byte count"},
      {"+5", 400, "Content-Length '+5' is not a byte count"},
      {"12, 12", 400, "is not a byte count"},
      {"99999999999999999999", 413, "exceeds 1000 bytes"},
      {"1001", 413, "the request body (1001 bytes by Content-Length) exceeds 1000 bytes"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("Content-Length: " + c.length);
    const auto t0 = std::chrono::steady_clock::now();
    const std::string answer = raw_exchange(
        s.port, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " + c.length,
        body, 10);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
    EXPECT_EQ(answer.rfind("HTTP/1.1 " + std::to_string(c.status), 0), 0u) << answer;
    EXPECT_NE(answer.find("Connection: close"), std::string::npos) << answer;
    const size_t json_at = answer.find("\r\n\r\n");
    ASSERT_NE(json_at, std::string::npos) << answer;
    const json j = json::parse(answer.substr(json_at + 4), nullptr, false);
    ASSERT_TRUE(j.is_object()) << answer;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(c.message), std::string::npos) << answer;
  }
  // A leading-zero length within the limit is a length, and the request is served.
  const std::string ok = raw_exchange(
      s.port, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
      "Content-Length: 00" + std::to_string(body.size()), body, 30);
  EXPECT_EQ(ok.rfind("HTTP/1.1 200", 0), 0u) << ok;
  EXPECT_EQ(s.client().Get("/health")->status, 200);
}

// Mutations of valid bodies (byte flips, truncation, inserted JSON tokens, swapped value types) and pure
// noise: the parser answers 200 or 400 with a JSON body, and the server stays healthy with no slot held.
TEST(ServerBadInput, FuzzedBodies) {
  server::ServerOptions so = small_limits();
  TestServer s({}, so);
  // Parser-only pass: many bodies, no HTTP, no model.
  const std::vector<std::string> seeds = {
      R"({"model":"test-model","prompt":"Hello there","max_tokens":3,"temperature":0.7,"top_p":0.9,"seed":1,"stop":["\n"],"n":2})",
      R"({"prompt":[1,2,3,4],"max_tokens":2,"stream":true,"stream_options":{"include_usage":true},"top_k":5,"min_p":0.1})",
      R"({"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi"}]}],"max_tokens":2})",
      R"({"input":["one","two"],"encoding_format":"base64"})",
      R"({"input":[[1,2,3],[4,5]]})",
  };
  const std::vector<std::string> tokens = {"{", "}", "[", "]", ",", ":", "\"", "null", "true", "-1", "1e309", "\\u0000",
                                           "\xff", "\xc3", "0.5", "\"prompt\"", "99999999999999999999", "{}", "[]"};
  std::mt19937_64 rng(1234);
  auto mutate = [&](std::string b) {
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !b.empty(); ++e) {
      size_t pos = rng() % b.size();
      switch (rng() % 5) {
        case 0: b[pos] = static_cast<char>(rng() % 256); break;
        case 1: b.erase(pos, 1 + rng() % 8); break;
        case 2: b.insert(pos, tokens[rng() % tokens.size()]); break;
        case 3: b.resize(pos); break;
        case 4: {
          std::string noise(1 + rng() % 16, ' ');
          for (char& ch : noise) ch = static_cast<char>(rng() % 256);
          b.insert(pos, noise);
          break;
        }
      }
    }
    return b;
  };
  server::RequestLimits limits = so.limits;
  limits.model_name = "test-model";
  int parsed_ok = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string body = mutate(seeds[rng() % seeds.size()]);
    try {
      json j = server::parse_body(body);
      switch (i % 3) {
        case 0: server::parse_completion_request(j, limits); break;
        case 1: server::parse_chat_request(j, limits); break;
        case 2: server::parse_embedding_request(j, limits); break;
      }
      ++parsed_ok;
    } catch (const server::ApiError& e) {
      // a mutated model name is an unknown model: 404 like OpenAI's API
      EXPECT_TRUE(e.status == 400 || (e.status == 404 && e.code == "model_not_found")) << e.status << " " << e.what();
      EXPECT_FALSE(std::string(e.what()).empty());
    }
  }
  EXPECT_GT(parsed_ok, 0);

  // Over HTTP: fewer bodies, every endpoint, the model running on what gets through.
  const char* paths[] = {"/v1/completions", "/v1/chat/completions", "/v1/embeddings"};
  int ok = 0, bad = 0;
  for (int i = 0; i < 300; ++i) {
    std::string body = i % 10 == 9 ? std::string(1 + rng() % 64, static_cast<char>(rng() % 256))
                                   : mutate(seeds[rng() % seeds.size()]);
    auto r = s.post(paths[rng() % 3], body);
    ASSERT_TRUE(r) << "no response for body: " << body;
    ASSERT_TRUE(r->status == 200 || r->status == 400 ||
                (r->status == 404 && r->body.find("model_not_found") != std::string::npos))
        << r->status << " " << r->body;
    if (r->status == 200) {
      ++ok;
      continue;
    }
    ++bad;
    json j = json::parse(r->body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error")) << r->body;
  }
  EXPECT_GT(bad, 0);
  RecordProperty("fuzz_http_200", ok);
  EXPECT_EQ(s.client().Get("/health")->status, 200);
  EXPECT_TRUE(s.scheduler->wait_idle(std::chrono::seconds(10)));
  EXPECT_EQ(s.scheduler->stats().slots_used, 0);
}

// The server itself refuses more worker threads than it runs (a thread each): the CLI's check names its options,
// this one guards every other caller.
TEST(ServerBadInput, MoreHttpThreadsThanTheCapAreRefused) {
  server::ServerOptions so = small_limits();
  so.http_threads = server::kMaxHttpThreads + 1;
  const std::string message = error_of([&] { TestServer s({}, so); });
  EXPECT_NE(message.find("4097 HTTP threads: at most 4096"), std::string::npos) << message;
}

}  // namespace
}  // namespace pcm::test
