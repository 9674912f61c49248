// HF tokenizers decoders: ByteLevel, Metaspace, ByteFallback, Fuse, Strip, Replace, BPEDecoder and
// Sequence. Each rewrites the list of token strings (decode_chain); the decoded text is their
// concatenation.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "util/json.h"

namespace pcm {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
  // True if a <0xNN> token may still change meaning when more tokens follow (ByteFallback joins
  // runs of them); the stream decoder holds such runs back.
  virtual bool joins_byte_tokens() const { return false; }
};

// Builds the decoder a tokenizer.json "decoder" object describes; `where` names the file and field
// in errors. Unsupported types are an error.
std::unique_ptr<Decoder> make_decoder(const json& spec, const std::string& where);

// The byte a "<0xNN>" token stands for (HF ByteFallback's parse), or -1.
int byte_fallback_value(std::string_view token);

}  // namespace pcm
