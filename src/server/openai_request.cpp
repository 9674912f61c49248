#include "server/openai_request.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace pcm::server {

using nlohmann::json;

json error_body(const std::string& message, const std::string& type, const std::string& param,
                const std::string& code) {
  json e = {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}};
  if (!param.empty()) e["param"] = param;
  if (!code.empty()) e["code"] = code;
  return json{{"error", e}};
}

json parse_body(std::string_view body) {
  json j;
  try {
    // nlohmann's lexer rejects invalid UTF-8 inside strings, so everything after this is valid UTF-8.
    j = json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {  // parse errors, and numbers out of range (1e309)
    throw ApiError(400, fmt::format("the request body is not valid JSON: {}", e.what()), "", "invalid_json");
  }
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object", "", "invalid_json");
  return j;
}

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& message) {
  throw ApiError(400, message, param, "invalid_value");
}

const json* field(const json& body, const char* key) {
  auto it = body.find(key);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

int64_t get_int(const json& body, const char* key, int64_t fallback, int64_t lo, int64_t hi) {
  const json* v = field(body, key);
  if (!v) return fallback;
  if (v->is_number_float()) {
    double d = v->get<double>();
    if (!(std::isfinite(d) && d == std::floor(d))) bad(key, fmt::format("'{}' must be an integer", key));
    if (d < static_cast<double>(lo) || d > static_cast<double>(hi))
      bad(key, fmt::format("'{}' must be between {} and {}, got {}", key, lo, hi, d));
    return static_cast<int64_t>(d);
  }
  if (!v->is_number_integer()) bad(key, fmt::format("'{}' must be an integer, got {}", key, v->type_name()));
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    bad(key, fmt::format("'{}' must be between {} and {}", key, lo, hi));
  int64_t x = v->get<int64_t>();
  if (x < lo || x > hi) bad(key, fmt::format("'{}' must be between {} and {}, got {}", key, lo, hi, x));
  return x;
}

double get_number(const json& body, const char* key, double fallback, double lo, double hi) {
  const json* v = field(body, key);
  if (!v) return fallback;
  if (!v->is_number()) bad(key, fmt::format("'{}' must be a number, got {}", key, v->type_name()));
  double x = v->get<double>();
  if (!(x >= lo && x <= hi)) bad(key, fmt::format("'{}' must be between {} and {}, got {}", key, lo, hi, x));
  return x;
}

bool get_bool(const json& body, const char* key, bool fallback) {
  const json* v = field(body, key);
  if (!v) return fallback;
  if (!v->is_boolean()) bad(key, fmt::format("'{}' must be a boolean, got {}", key, v->type_name()));
  return v->get<bool>();
}

std::vector<int32_t> token_ids(const json& arr, const std::string& param) {
  std::vector<int32_t> ids;
  ids.reserve(arr.size());
  for (const json& t : arr) {
    if (!t.is_number_integer()) bad(param, fmt::format("'{}' must hold integer token ids", param));
    int64_t x = t.get<int64_t>();
    if (x < 0 || x > std::numeric_limits<int32_t>::max())
      bad(param, fmt::format("'{}' holds the invalid token id {}", param, x));
    ids.push_back(static_cast<int32_t>(x));
  }
  return ids;
}

void check_model(const json& body, const RequestLimits& limits, std::string& model) {
  const json* v = field(body, "model");
  if (!v) {
    model = limits.model_name;
    return;
  }
  if (!v->is_string()) bad("model", "'model' must be a string");
  model = v->get<std::string>();
  // 404 like OpenAI's API (the client raises NotFoundError) and like GET /v1/models/{id}.
  if (!limits.model_name.empty() && model != limits.model_name)
    throw ApiError(404, fmt::format("The model '{}' does not exist; this server serves '{}'", model, limits.model_name),
                   "model", "model_not_found");
}

// Parameters this server does not implement are refused when they would change the output.
void refuse_unsupported(const json& body) {
  for (const char* key : {"frequency_penalty", "presence_penalty"}) {
    const json* v = field(body, key);
    if (v && !(v->is_number() && v->get<double>() == 0.0))
      throw ApiError(400, fmt::format("'{}' is not supported by this server", key), key, "unsupported_parameter");
  }
  for (const char* key : {"logit_bias", "tools", "functions", "response_format", "suffix"}) {
    const json* v = field(body, key);
    if (v && !(v->is_object() && v->empty()) && !(v->is_array() && v->empty()) &&
        !(key == std::string("response_format") && v->is_object() && v->value("type", "") == "text"))
      throw ApiError(400, fmt::format("'{}' is not supported by this server", key), key, "unsupported_parameter");
  }
  for (const char* key : {"logprobs", "top_logprobs", "echo"}) {
    const json* v = field(body, key);
    if (v && !(v->is_boolean() && !v->get<bool>()) && !(v->is_number_integer() && v->get<int64_t>() == 0))
      throw ApiError(400, fmt::format("'{}' is not supported by this server", key), key, "unsupported_parameter");
  }
}

// Parameters accepted without effect here: still a 400 when of the wrong type, as OpenAI answers. tool_choice
// "none" / "auto" change nothing without tools; "required" or a named function would force a call.
void check_inert(const json& body) {
  const std::pair<const char*, json::value_t> typed[] = {
      {"parallel_tool_calls", json::value_t::boolean}, {"store", json::value_t::boolean},
      {"user", json::value_t::string},                 {"service_tier", json::value_t::string},
      {"reasoning_effort", json::value_t::string},     {"metadata", json::value_t::object}};
  for (const auto& [key, type] : typed) {
    const json* v = field(body, key);
    if (v && !v->is_null() && v->type() != type)
      bad(key, fmt::format("'{}' must be {}", key, type == json::value_t::boolean  ? "a boolean"
                                                   : type == json::value_t::string ? "a string"
                                                                                   : "an object"));
  }
  const json* tc = field(body, "tool_choice");
  if (!tc || tc->is_null()) return;
  if (tc->is_object() || (tc->is_string() && tc->get<std::string>() == "required"))
    throw ApiError(400, "'tool_choice' asks for a tool call; tools are not supported by this server", "tool_choice",
                   "unsupported_parameter");
  if (!tc->is_string() || (tc->get<std::string>() != "none" && tc->get<std::string>() != "auto"))
    bad("tool_choice", "'tool_choice' must be \"none\", \"auto\", \"required\" or an object naming a function");
}

GenerationParams parse_generation(const json& body, const RequestLimits& limits, bool chat) {
  GenerationParams g;
  check_model(body, limits, g.model);
  refuse_unsupported(body);
  check_inert(body);
  const int64_t default_max = chat ? (limits.default_max_tokens_chat > 0 ? limits.default_max_tokens_chat
                                                                          : limits.max_tokens)
                                   : limits.default_max_tokens_completion;
  const char* max_key = chat && field(body, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  g.max_tokens = get_int(body, max_key, std::min(default_max, limits.max_tokens), 1, limits.max_tokens);
  g.n = get_int(body, "n", 1, 1, limits.max_n);
  if (const json* b = field(body, "best_of"); b && !(b->is_number_integer() && b->get<int64_t>() == g.n))
    throw ApiError(400, "'best_of' other than n is not supported by this server", "best_of", "unsupported_parameter");
  g.sampling.temperature = static_cast<float>(get_number(body, "temperature", 1.0, 0.0, 2.0));
  g.sampling.top_p = static_cast<float>(get_number(body, "top_p", 1.0, 0.0, 1.0));
  if (g.sampling.top_p <= 0.0f) bad("top_p", "'top_p' must be greater than 0");
  const int64_t top_k = get_int(body, "top_k", 0, -1, std::numeric_limits<int32_t>::max());
  g.sampling.top_k = top_k < 0 ? 0 : top_k;
  g.sampling.min_p = static_cast<float>(get_number(body, "min_p", 0.0, 0.0, 1.0));
  if (const json* s = field(body, "seed")) {
    if (!s->is_number_integer()) bad("seed", "'seed' must be an integer");
    g.sampling.seed = s->is_number_unsigned() ? s->get<uint64_t>() : static_cast<uint64_t>(s->get<int64_t>());
    g.seed_given = true;
  }
  g.stream = get_bool(body, "stream", false);
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) bad("stream_options", "'stream_options' must be an object");
    if (!g.stream) bad("stream_options", "'stream_options' is only allowed when 'stream' is true");
    g.include_usage = get_bool(*so, "include_usage", false);
  }
  if (const json* st = field(body, "stop")) {
    if (st->is_string()) {
      g.stop.push_back(st->get<std::string>());
    } else if (st->is_array()) {
      for (const json& s : *st) {
        if (!s.is_string()) bad("stop", "'stop' must be a string or an array of strings");
        g.stop.push_back(s.get<std::string>());
      }
    } else {
      bad("stop", "'stop' must be a string or an array of strings");
    }
    if (g.stop.size() > 4) bad("stop", "'stop' allows at most 4 sequences");
    for (const std::string& s : g.stop)
      if (s.empty()) bad("stop", "'stop' sequences must not be empty");
  }
  if (const json* ids = field(body, "stop_token_ids")) {
    if (!ids->is_array()) bad("stop_token_ids", "'stop_token_ids' must be an array of token ids");
    g.stop_token_ids = token_ids(*ids, "stop_token_ids");
  }
  g.ignore_eos = get_bool(body, "ignore_eos", false);
  g.return_token_ids = get_bool(body, "return_token_ids", false);
  if (const json* cps = field(body, "cache_checkpoints")) {
    if (!cps->is_array() || cps->size() > 16) bad("cache_checkpoints", "'cache_checkpoints' must be an array of at most 16 positions");
    for (const json& p : *cps) {
      if (!p.is_number_integer() || p.get<int64_t>() <= 0 ||
          (!g.cache_checkpoints.empty() && p.get<int64_t>() <= g.cache_checkpoints.back()))
        bad("cache_checkpoints", "'cache_checkpoints' must hold ascending positive token positions");
      g.cache_checkpoints.push_back(p.get<int64_t>());
    }
  }
  return g;
}

// string | [string] | [int, ...] | [[int, ...]]: one prompt.
Prompt parse_prompt(const json& v, const std::string& param) {
  Prompt p;
  if (v.is_string()) {
    p.text = v.get<std::string>();
    return p;
  }
  if (!v.is_array()) bad(param, fmt::format("'{}' must be a string, an array of strings or an array of token ids", param));
  if (v.empty()) bad(param, fmt::format("'{}' must not be empty", param));
  if (v[0].is_number()) {
    p.ids = token_ids(v, param);
    return p;
  }
  if (v.size() > 1) bad(param, fmt::format("'{}' holds {} prompts; this server takes one prompt per request", param, v.size()));
  if (v[0].is_string()) {
    p.text = v[0].get<std::string>();
    return p;
  }
  // OpenAI's last form, [[ids]]: one level only (a recursion here let a deeply nested body overflow the stack).
  if (v[0].is_array() && !v[0].empty() && v[0][0].is_number()) {
    p.ids = token_ids(v[0], param);
    return p;
  }
  bad(param, fmt::format("'{}' must be a string, an array of strings, an array of token ids or an array of one "
                         "array of token ids", param));
}

}  // namespace

static CompletionRequest parse_completion_request_unchecked(const json& body, const RequestLimits& limits) {
  CompletionRequest r;
  r.gen = parse_generation(body, limits, /*chat=*/false);
  const json* p = field(body, "prompt");
  if (!p) throw ApiError(400, "'prompt' is required", "prompt", "missing_required_parameter");
  r.prompt = parse_prompt(*p, "prompt");
  if (r.prompt.text && r.prompt.text->empty()) bad("prompt", "'prompt' must not be empty");
  if (!r.prompt.text && static_cast<int64_t>(r.prompt.ids.size()) > limits.max_prompt_tokens)
    throw ApiError(400, fmt::format("the prompt has {} tokens; this server's limit is {}", r.prompt.ids.size(),
                                    limits.max_prompt_tokens), "prompt", "context_length_exceeded");
  return r;
}

static ChatRequest parse_chat_request_unchecked(const json& body, const RequestLimits& limits) {
  ChatRequest r;
  r.gen = parse_generation(body, limits, /*chat=*/true);
  const json* m = field(body, "messages");
  if (!m) throw ApiError(400, "'messages' is required", "messages", "missing_required_parameter");
  if (!m->is_array()) bad("messages", "'messages' must be an array");
  if (m->empty()) bad("messages", "'messages' must not be empty");
  r.messages = json::array();
  for (size_t i = 0; i < m->size(); ++i) {
    const json& msg = (*m)[i];
    const std::string where = fmt::format("messages[{}]", i);
    if (!msg.is_object()) bad(where, fmt::format("'{}' must be an object", where));
    const json* role = field(msg, "role");
    if (!role || !role->is_string()) bad(where + ".role", fmt::format("'{}.role' must be a string", where));
    const std::string rs = role->get<std::string>();
    if (rs != "system" && rs != "user" && rs != "assistant" && rs != "developer" && rs != "tool")
      bad(where + ".role", fmt::format("'{}.role' must be system, developer, user, assistant or tool, got '{}'", where, rs));
    json out = {{"role", rs == "developer" ? "system" : rs}};
    const json* content = field(msg, "content");
    if (!content) {
      if (rs != "assistant") bad(where + ".content", fmt::format("'{}.content' is required", where));
      out["content"] = "";
    } else if (content->is_string()) {
      out["content"] = *content;
    } else if (content->is_array()) {
      // Text parts are joined; other part types (images, audio) are not supported by a text model.
      std::string text;
      for (const json& part : *content) {
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
          bad(where + ".content", fmt::format("'{}.content' parts must be {{\"type\": \"text\", \"text\": ...}}", where));
        text += part["text"].get<std::string>();
      }
      out["content"] = text;
    } else {
      bad(where + ".content", fmt::format("'{}.content' must be a string or an array of text parts", where));
    }
    if (const json* name = field(msg, "name"); name && name->is_string()) out["name"] = *name;
    r.messages.push_back(std::move(out));
  }
  return r;
}

static EmbeddingRequest parse_embedding_request_unchecked(const json& body, const RequestLimits& limits) {
  EmbeddingRequest r;
  check_model(body, limits, r.model);
  const json* in = field(body, "input");
  if (!in) throw ApiError(400, "'input' is required", "input", "missing_required_parameter");
  auto check_text = [](const std::string& s) {
    if (s.empty()) bad("input", "'input' must not contain empty strings");
  };
  if (in->is_string()) {
    check_text(in->get<std::string>());
    r.inputs.push_back(Prompt{in->get<std::string>(), {}});
  } else if (in->is_array()) {
    if (in->empty()) bad("input", "'input' must not be empty");
    if ((*in)[0].is_number()) {
      r.inputs.push_back(Prompt{std::nullopt, token_ids(*in, "input")});
    } else {
      for (const json& item : *in) {
        if (item.is_string()) {
          check_text(item.get<std::string>());
          r.inputs.push_back(Prompt{item.get<std::string>(), {}});
        } else if (item.is_array()) {
          if (item.empty()) bad("input", "'input' must not contain empty token arrays");
          r.inputs.push_back(Prompt{std::nullopt, token_ids(item, "input")});
        } else {
          bad("input", "'input' must be a string, an array of strings, or token id arrays");
        }
      }
    }
  } else {
    bad("input", "'input' must be a string, an array of strings, or token id arrays");
  }
  if (static_cast<int64_t>(r.inputs.size()) > limits.max_embedding_inputs)
    bad("input", fmt::format("'input' holds {} items; the limit is {}", r.inputs.size(), limits.max_embedding_inputs));
  for (const Prompt& p : r.inputs)
    if (!p.text && static_cast<int64_t>(p.ids.size()) > limits.max_prompt_tokens)
      throw ApiError(400, fmt::format("an input has {} tokens; this server's limit is {}", p.ids.size(),
                                      limits.max_prompt_tokens), "input", "context_length_exceeded");
  if (const json* f = field(body, "encoding_format")) {
    if (!f->is_string() || (*f != "float" && *f != "base64"))
      bad("encoding_format", "'encoding_format' must be 'float' or 'base64'");
    r.base64 = *f == "base64";
  }
  if (const json* d = field(body, "dimensions"); d)
    throw ApiError(400, "'dimensions' is not supported: embeddings have the model's hidden size", "dimensions",
                   "unsupported_parameter");
  return r;
}

// A JSON type surprise that slipped past the checks above is still the client's mistake, not a 500.
template <typename F>
auto guarded(F&& f) {
  try {
    return f();
  } catch (const json::exception& e) {
    throw ApiError(400, fmt::format("unexpected value in the request: {}", e.what()), "", "invalid_value");
  }
}

CompletionRequest parse_completion_request(const json& body, const RequestLimits& limits) {
  return guarded([&] { return parse_completion_request_unchecked(body, limits); });
}
ChatRequest parse_chat_request(const json& body, const RequestLimits& limits) {
  return guarded([&] { return parse_chat_request_unchecked(body, limits); });
}
EmbeddingRequest parse_embedding_request(const json& body, const RequestLimits& limits) {
  return guarded([&] { return parse_embedding_request_unchecked(body, limits); });
}

std::string base64_encode(const void* data, size_t size) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const auto* p = static_cast<const unsigned char*>(data);
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < size; i += 3) {
    uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < size) {
    uint32_t v = uint32_t{p[i]} << 16;
    if (i + 1 < size) v |= uint32_t{p[i + 1]} << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < size ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace pcm::server
