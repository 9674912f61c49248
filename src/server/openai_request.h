// Parsing and validation of OpenAI API request bodies. Every problem becomes an ApiError (HTTP 400, or 404
// for an unknown model as OpenAI answers, with an OpenAI-style error body naming the offending parameter);
// nothing here touches the model.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/sampler.h"

namespace pcm::server {

struct ApiError : std::runtime_error {
  int status = 400;
  std::string type = "invalid_request_error";
  std::string param;  // "" = null
  std::string code;   // "" = null
  ApiError(int status_, std::string message, std::string param_ = "", std::string code_ = "",
           std::string type_ = "invalid_request_error")
      : std::runtime_error(std::move(message)), status(status_), type(std::move(type_)), param(std::move(param_)),
        code(std::move(code_)) {}
};

// {"error": {"message", "type", "param", "code"}}
nlohmann::json error_body(const std::string& message, const std::string& type, const std::string& param,
                          const std::string& code);
inline nlohmann::json error_body(const ApiError& e) { return error_body(e.what(), e.type, e.param, e.code); }

// What the server allows; requests outside these get a 400.
struct RequestLimits {
  std::string model_name;            // the one served model ("" = accept any name)
  int64_t max_prompt_tokens = 32768;
  int64_t max_tokens = 65536;        // upper bound for max_tokens
  int64_t default_max_tokens_completion = 16;  // OpenAI's default for /v1/completions
  int64_t default_max_tokens_chat = 0;         // 0 = max_tokens
  int64_t max_n = 8;
  int64_t max_embedding_inputs = 256;
};

// A prompt is text (needs the tokenizer) or token ids.
struct Prompt {
  std::optional<std::string> text;
  std::vector<int32_t> ids;
};

// The fields of /v1/completions and /v1/chat/completions that drive generation.
struct GenerationParams {
  std::string model;
  int64_t max_tokens = 16;
  int64_t n = 1;
  SamplingParams sampling;
  bool seed_given = false;
  bool stream = false;
  bool include_usage = false;     // stream_options.include_usage
  std::vector<std::string> stop;  // up to 4 stop strings
  std::vector<int32_t> stop_token_ids;  // extension (vLLM): extra stop ids
  bool ignore_eos = false;        // extension (vLLM)
  bool return_token_ids = false;  // extension: add "token_ids" to each choice
  std::vector<int64_t> cache_checkpoints;  // extension: prompt positions whose states the cache keeps
};

struct CompletionRequest {
  GenerationParams gen;
  Prompt prompt;
};

struct ChatRequest {
  GenerationParams gen;
  nlohmann::json messages;  // validated: non-empty array of {role, content (string or text parts)}
};

struct EmbeddingRequest {
  std::string model;
  std::vector<Prompt> inputs;
  bool base64 = false;  // encoding_format "base64": little-endian float32, base64
};

// Parses the body as a JSON object (malformed JSON, invalid UTF-8 and non-objects are ApiErrors).
nlohmann::json parse_body(std::string_view body);

CompletionRequest parse_completion_request(const nlohmann::json& body, const RequestLimits& limits);
ChatRequest parse_chat_request(const nlohmann::json& body, const RequestLimits& limits);
EmbeddingRequest parse_embedding_request(const nlohmann::json& body, const RequestLimits& limits);

// Standard base64 (RFC 4648) of raw bytes.
std::string base64_encode(const void* data, size_t size);

}  // namespace pcm::server
