#include "engine/text_stream.h"

#include <algorithm>

namespace pcm {

TextStreamer::TextStreamer(const Tokenizer& tokenizer, std::vector<std::string> stop_strings, bool skip_special)
    : decoder_(tokenizer, skip_special), stops_(std::move(stop_strings)) {
  stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()), stops_.end());
}

std::string TextStreamer::release(bool at_end) {
  // A stop string inside the pending text: emit what precedes it and end.
  size_t cut = std::string::npos;
  for (const auto& s : stops_) cut = std::min(cut, pending_.find(s));
  if (cut != std::string::npos) {
    std::string out = pending_.substr(0, cut);
    pending_.clear();
    stopped_ = true;
    emitted_ += out;
    return out;
  }
  // Hold back the longest suffix that is a prefix of some stop string.
  size_t hold = 0;
  if (!at_end)
    for (const auto& s : stops_)
      for (size_t k = std::min(s.size() - 1, pending_.size()); k > hold; --k)
        if (pending_.compare(pending_.size() - k, k, s, 0, k) == 0) {
          hold = k;
          break;
        }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  emitted_ += out;
  return out;
}

std::string TextStreamer::push(int32_t id) {
  if (stopped_) return "";
  pending_ += decoder_.push(id);
  return release(false);
}

std::string TextStreamer::finish() {
  if (stopped_) return "";
  pending_ += decoder_.flush();
  return release(true);
}

}  // namespace pcm
