// The tokenizer stored in a GGUF file (tokenizer.ggml.*), as the tokenizer.json that HF would build
// for it: "gpt2" (byte-level BPE with merges; the pre-tokenizer regex chosen by tokenizer.ggml.pre) and
// "llama" (SentencePiece BPE from pieces and scores, byte fallback). Other kinds are an error.
#pragma once
#include <string>

#include "io/gguf.h"
#include "tokenizer/tokenizer.h"
#include "util/json.h"

namespace pcm {

json tokenizer_json_from_gguf(const GgufFile& file);
Tokenizer tokenizer_from_gguf(const GgufFile& file);

}  // namespace pcm
