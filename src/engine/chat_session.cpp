#include "engine/chat_session.h"

#include <algorithm>

#include "engine/text_stream.h"
#include "util/error.h"

namespace pcm {

ChatSession::ChatSession(Mamba2Model& model, const Tokenizer& tokenizer, const ChatTemplate& chat)
    : model_(model), tokenizer_(tokenizer), chat_(chat), state_(model.new_state()) {}

void ChatSession::reset() {
  state_.reset();
  covered_.clear();
  last_logits_.clear();
}

int64_t ChatSession::sync(const json& messages, bool add_generation_prompt, bool* restarted) {
  // The template writes the special tokens (e.g. <s>) itself.
  const std::vector<int32_t> ids = tokenizer_.encode(chat_.render(messages, add_generation_prompt), false);
  const bool extends = covered_.size() <= ids.size() && std::equal(covered_.begin(), covered_.end(), ids.begin());
  if (restarted) *restarted = !extends && !covered_.empty();
  if (!extends) reset();
  std::span<const int32_t> fresh(ids.data() + covered_.size(), ids.size() - covered_.size());
  if (!fresh.empty()) {
    last_logits_.resize(static_cast<size_t>(model_.vocab_size()));
    model_.prefill(fresh, state_, last_logits_.data(), /*all_positions=*/false);
    covered_ = ids;
  }
  return static_cast<int64_t>(fresh.size());
}

std::string ChatSession::reply(const GenerateOptions& options, const std::vector<std::string>& stops,
                               const std::function<void(const std::string&)>& on_text, GenerateResult* result) {
  PCM_CHECK(!covered_.empty() && !last_logits_.empty(), "chat: sync() the conversation before asking for a reply");
  GenerateOptions g = options;
  g.feed_last_token = true;  // the state covers the whole reply, so the next turn continues from it
  TextStreamer streamer(tokenizer_, stops);
  GenerateResult r = generate_from_logits(model_, state_, last_logits_, g, [&](int32_t id) {
    const std::string piece = streamer.push(id);
    if (!piece.empty() && on_text) on_text(piece);
    return !streamer.stopped();
  });
  const std::string rest = streamer.finish();
  if (!rest.empty() && on_text) on_text(rest);
  covered_.insert(covered_.end(), r.tokens.begin(), r.tokens.end());
  last_logits_.clear();  // a new sync() is needed before the next reply
  if (result) *result = r;
  return streamer.emitted();
}

}  // namespace pcm
