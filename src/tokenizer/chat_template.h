// A model's chat template, rendered as transformers' apply_chat_template does: chat_template.jinja
// (newer transformers), else the `chat_template` field of tokenizer_config.json (a string, or a list of
// named templates, "default" unless one is named), else tokenizer.chat_template in a GGUF; bos_token /
// eos_token from tokenizer_config.json or special_tokens_map.json. Unsupported Jinja is an error that
// names the construct and line, never a silently different prompt.
#pragma once
#include <memory>
#include <string>

#include "util/json.h"

namespace pcm {

namespace jinja {
struct TemplateAst;
}

class ChatTemplate {
 public:
  static ChatTemplate from_dir(const std::string& model_dir, const std::string& template_name = "");
  static ChatTemplate from_file(const std::string& path, std::string bos_token, std::string eos_token);
  static ChatTemplate from_source(const std::string& source, const std::string& origin, std::string bos_token,
                                  std::string eos_token);
  // --chat-template FILE support: the template from `template_file` when given (special tokens still
  // from the model), else from_dir.
  static ChatTemplate load(const std::string& model_dir, const std::string& template_file);
  // Whether from_dir would find a template.
  static bool available(const std::string& model_dir);

  // `messages`: an OpenAI-style array of {"role", "content"} (content a string or a list of
  // {"type": "text", "text"} parts); `extra`: more template variables (tools, ...). Errors name the
  // offending message/field, or the template line.
  std::string render(const json& messages, bool add_generation_prompt, const json& extra = json::object()) const;

  const std::string& bos_token() const { return bos_; }
  const std::string& eos_token() const { return eos_; }
  const std::string& origin() const { return origin_; }

 private:
  std::shared_ptr<const jinja::TemplateAst> ast_;
  std::string bos_, eos_, origin_;
};

}  // namespace pcm
