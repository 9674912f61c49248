// pcm render: the prompt a chat template makes of an OpenAI-style messages array (to check a template by eye).
#include <cstdio>
#include <memory>

#include "cli/command.h"
#include "cli/common.h"
#include "tokenizer/chat_template.h"
#include "util/error.h"
#include "util/file.h"
#include "util/json.h"

namespace pcm::cli {
namespace {

struct Options {
  std::string model, messages, chat_template, template_name;
  bool add_generation_prompt = false;
};

std::string read_stdin() {
  std::string s, line;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, stdin)) > 0) s.append(buf, n);
  return s;
}

void run(const Options& o) {
  std::string dir = o.model.empty() ? default_model_dir() : o.model;
  PCM_CHECK(!dir.empty(), "no --model given and no shipped model found");
  const std::string text = o.messages == "-" ? read_stdin() : read_text_file(o.messages);
  json messages = parse_json(text, o.messages == "-" ? "stdin" : o.messages);
  if (messages.is_object() && messages.contains("messages")) messages = messages.at("messages");  // a request body
  ChatTemplate t = !o.template_name.empty() ? ChatTemplate::from_dir(dir, o.template_name) : ChatTemplate::load(dir, o.chat_template);
  std::fputs(t.render(messages, o.add_generation_prompt).c_str(), stdout);
}

PCM_REGISTER_COMMAND({"render", "Print the prompt a chat template makes of a messages array", [](CLI::App* sub) {
                        auto o = std::make_shared<Options>();
                        sub->add_option("--model,-m", o->model, "model directory or .gguf (default: the shipped model)");
                        sub->add_option("--messages", o->messages, "JSON file: [{\"role\", \"content\"}, ...] or {\"messages\": [...]}; - for stdin")
                            ->required();
                        sub->add_flag("--add-generation-prompt", o->add_generation_prompt, "end with the assistant turn's opening");
                        sub->add_option("--chat-template", o->chat_template, "a Jinja file instead of the model's template");
                        sub->add_option("--template-name", o->template_name, "a named template of tokenizer_config.json");
                        sub->callback([o] { run(*o); });
                      }});

}  // namespace
}  // namespace pcm::cli
