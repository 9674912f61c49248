// SentencePiece tokenizer.model (a ModelProto protobuf) read without libprotobuf, and converted to the
// tokenizer.json that transformers' LlamaConverter would produce for a BPE model: the pieces as the
// vocabulary, merges generated from piece pairs ordered by score, Prepend("▁") + Replace(" ", "▁")
// normalizers, byte fallback, control pieces as special added tokens, and a <s> $A template.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "util/json.h"

namespace pcm {

struct SentencePieceModel {
  enum PieceType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };
  struct Piece {
    std::string text;
    float score = 0.0f;
    int type = kNormal;
  };
  std::vector<Piece> pieces;
  int model_type = 1;  // 1 unigram, 2 BPE, 3 word, 4 char
  bool byte_fallback = false;
  int unk_id = 0, bos_id = 1, eos_id = 2, pad_id = -1;
  std::string unk_piece = "<unk>";
  std::string normalizer_name;
  bool add_dummy_prefix = true;
  bool has_precompiled_charsmap = false;
};

// Parses the protobuf; errors name `path`.
SentencePieceModel parse_sentencepiece_model(const std::string& bytes, const std::string& path);

// How transformers' tokenizer_config.json asks for the conversion: legacy=true gives the
// Prepend + Replace normalizers, legacy=false a Metaspace pre-tokenizer (prepend_scheme "first");
// add_prefix_space (default: the model's add_dummy_prefix) turns the leading "▁" on or off.
struct SentencePieceConversion {
  bool legacy = true;
  std::optional<bool> add_prefix_space;
};

// The equivalent tokenizer.json object (BPE models only; other types are an error naming `path`).
json sentencepiece_to_tokenizer_json(const SentencePieceModel& model, const std::string& path,
                                     const SentencePieceConversion& options = {});

}  // namespace pcm
