#include "eval/code_tasks.h"

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

std::string humaneval_program(const json& row, const std::string& completion, bool completion_style) {
  PCM_CHECK(row.contains("prompt") && row.contains("test") && row.contains("entry_point"),
            "humaneval row needs prompt, test and entry_point");
  const std::string prompt = row.at("prompt"), test = row.at("test"), entry = row.at("entry_point");
  std::string code = completion_style ? prompt + completion : extract_code(completion);
  return code + "\n\n" + test + "\n\ncheck(" + entry + ")\n";
}

}  // namespace pcm::eval
