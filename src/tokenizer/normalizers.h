// HF tokenizers normalizers: NFC/NFD/NFKC/NFKD, Lowercase, Strip, StripAccents, Prepend, Replace,
// Nmt, ByteLevel and Sequence. Each rewrites a piece's text in place (and keeps Piece::zero_prefix
// in step with HF's alignments).
#pragma once
#include <memory>
#include <string>

#include "tokenizer/pretokenized.h"
#include "util/json.h"

namespace pcm {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(Piece& piece) const = 0;
};

// Builds the normalizer a tokenizer.json "normalizer" object describes; `where` names the file and
// field in errors (e.g. "dir/tokenizer.json: normalizer"). Unsupported types are an error.
std::unique_ptr<Normalizer> make_normalizer(const json& spec, const std::string& where);

}  // namespace pcm
