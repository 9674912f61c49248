// A multi-turn conversation over one fixed-size state: each turn prefills only the tokens the state does
// not cover yet (the new user message and the assistant opening), never the whole history. When the
// template renders earlier turns differently than the tokens the state saw (a template that rewrites
// history, or a reply whose text re-tokenises differently), it starts over from the full conversation.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "engine/generator.h"
#include "model/model.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "util/json.h"

namespace pcm {

class ChatSession {
 public:
  ChatSession(Mamba2Model& model, const Tokenizer& tokenizer, const ChatTemplate& chat);

  // Brings the state to cover render(messages, add_generation_prompt). Returns how many tokens were
  // prefilled; *restarted (optional) tells whether it had to start over.
  int64_t sync(const json& messages, bool add_generation_prompt, bool* restarted = nullptr);

  // After sync(..., true): samples the assistant reply, streaming whole characters to on_text; `stops`
  // end it early. The state then covers every generated token. Returns the reply text.
  std::string reply(const GenerateOptions& options, const std::vector<std::string>& stops,
                    const std::function<void(const std::string&)>& on_text, GenerateResult* result = nullptr);

  void reset();
  const SequenceState& state() const { return state_; }
  const std::vector<int32_t>& covered() const { return covered_; }

 private:
  Mamba2Model& model_;
  const Tokenizer& tokenizer_;
  const ChatTemplate& chat_;
  SequenceState state_;
  std::vector<int32_t> covered_;        // the tokens the state has seen
  std::vector<float> last_logits_;      // logits after the last covered token (for reply())
};

}  // namespace pcm
