// HF tokenizers pre-tokenizers: ByteLevel, Metaspace, Split, Digits, Punctuation, Whitespace,
// WhitespaceSplit, BertPreTokenizer, CharDelimiterSplit and Sequence. Each cuts every piece that is
// not an added token into smaller pieces (and may rewrite them, as ByteLevel and Metaspace do).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/pretokenized.h"
#include "util/json.h"

namespace pcm {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};

// Builds the pre-tokenizer a tokenizer.json "pre_tokenizer" object describes; `where` names the
// file and field in errors. Unsupported types are an error.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& spec, const std::string& where);

}  // namespace pcm
