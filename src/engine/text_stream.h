// Generated tokens to text as they come: whole UTF-8 characters only (StreamDecoder), and --stop
// strings honoured across token boundaries — text that might be the start of a stop string is held
// back until it is known not to be, and nothing from a stop string on is ever emitted.
#pragma once
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace pcm {

class TextStreamer {
 public:
  TextStreamer(const Tokenizer& tokenizer, std::vector<std::string> stop_strings, bool skip_special = true);

  std::string push(int32_t id);  // text that is final now ("" while held back)
  std::string finish();          // the rest, unless a stop string ended the text
  bool stopped() const { return stopped_; }
  const std::string& emitted() const { return emitted_; }

 private:
  std::string release(bool at_end);

  StreamDecoder decoder_;
  std::vector<std::string> stops_;
  std::string pending_, emitted_;
  bool stopped_ = false;
};

}  // namespace pcm
