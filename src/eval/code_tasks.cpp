#include "eval/code_tasks.h"

#include <fmt/ranges.h>

#include "util/error.h"

namespace pcm::eval {

std::string extract_code(const std::string& completion) {
  std::string text = completion;
  size_t think = text.rfind("</think>");
  if (think != std::string::npos) text = text.substr(think + 8);
  size_t close = text.rfind("```");
  if (close == std::string::npos || close == 0) return text;
  size_t open = text.rfind("```", close - 1);
  if (open == std::string::npos) return text;
  size_t body = text.find('\n', open);  // skip the language tag
  if (body == std::string::npos || body > close) return text;
  return text.substr(body + 1, close - body - 1);
}

std::vector<std::string> required_strings(const json& row, const char* kind, std::initializer_list<const char*> keys) {
  std::vector<std::string> out;
  for (const char* key : keys) {
    const auto it = row.find(key);
    if (it == row.end())
      throw JsonFieldError(fmt::format("{}: missing (a {} row needs {})", key, kind, fmt::join(keys, ", ")));
    if (!it->is_string()) throw JsonFieldError(fmt::format("{}: expected a string, got {}", key, it->dump()));
    out.push_back(it->get<std::string>());
  }
  return out;
}

std::string humaneval_program(const json& row, const std::string& completion, bool completion_style) {
  const auto f = required_strings(row, "HumanEval", {"prompt", "test", "entry_point"});
  const std::string &prompt = f[0], &test = f[1], &entry = f[2];
  std::string code = completion_style ? prompt + completion : extract_code(completion);
  return code + "\n\n" + test + "\n\ncheck(" + entry + ")\n";
}

}  // namespace pcm::eval
