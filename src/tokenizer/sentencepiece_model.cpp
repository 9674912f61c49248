#include "tokenizer/sentencepiece_model.h"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <unordered_map>

#include "tokenizer/utf8.h"
#include "util/error.h"

namespace pcm {

namespace {

// A minimal protobuf wire-format reader over one message.
class ProtoReader {
 public:
  ProtoReader(std::string_view data, const std::string& path, const char* message)
      : data_(data), path_(path), message_(message) {}

  bool done() const { return pos_ >= data_.size(); }

  // Reads the next field key; returns false at the end of the message.
  bool next(uint32_t* field, uint32_t* wire) {
    if (done()) return false;
    uint64_t key = varint();
    *field = static_cast<uint32_t>(key >> 3);
    *wire = static_cast<uint32_t>(key & 7);
    PCM_CHECK(*field != 0, "{}: malformed protobuf in {}: field number 0 at byte {}", path_, message_, pos_);
    return true;
  }

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      PCM_CHECK(pos_ < data_.size(), "{}: malformed protobuf in {}: truncated varint", path_, message_);
      auto b = static_cast<uint8_t>(data_[pos_++]);
      v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (b < 0x80) return v;
    }
    fail("{}: malformed protobuf in {}: varint too long", path_, message_);
  }

  std::string_view bytes() {
    uint64_t n = varint();
    PCM_CHECK(n <= data_.size() - pos_, "{}: malformed protobuf in {}: length {} past the end", path_, message_, n);
    std::string_view v = data_.substr(pos_, n);
    pos_ += n;
    return v;
  }

  float fixed32_float() {
    PCM_CHECK(data_.size() - pos_ >= 4, "{}: malformed protobuf in {}: truncated float", path_, message_);
    uint32_t bits = 0;
    for (int i = 0; i < 4; ++i) bits |= static_cast<uint32_t>(static_cast<uint8_t>(data_[pos_ + i])) << (8 * i);
    pos_ += 4;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }

  void skip(uint32_t wire) {
    switch (wire) {
      case 0: varint(); break;
      case 1:
        PCM_CHECK(data_.size() - pos_ >= 8, "{}: malformed protobuf in {}: truncated fixed64", path_, message_);
        pos_ += 8;
        break;
      case 2: bytes(); break;
      case 5:
        PCM_CHECK(data_.size() - pos_ >= 4, "{}: malformed protobuf in {}: truncated fixed32", path_, message_);
        pos_ += 4;
        break;
      default: fail("{}: malformed protobuf in {}: unsupported wire type {}", path_, message_, wire);
    }
  }

  void expect(uint32_t wire, uint32_t want, uint32_t field) {
    PCM_CHECK(wire == want, "{}: malformed protobuf in {}: field {} has wire type {}, expected {}", path_, message_,
              field, wire, want);
  }

 private:
  std::string_view data_;
  const std::string& path_;
  const char* message_;
  size_t pos_ = 0;
};

int32_t as_int32(uint64_t v) { return static_cast<int32_t>(static_cast<uint32_t>(v)); }

}  // namespace

SentencePieceModel parse_sentencepiece_model(const std::string& data, const std::string& path) {
  SentencePieceModel m;
  ProtoReader top(data, path, "ModelProto");
  uint32_t field, wire;
  while (top.next(&field, &wire)) {
    if (field == 1) {  // repeated SentencePiece pieces
      top.expect(wire, 2, field);
      ProtoReader pr(top.bytes(), path, "SentencePiece");
      SentencePieceModel::Piece piece;
      uint32_t f, w;
      while (pr.next(&f, &w)) {
        if (f == 1) {
          pr.expect(w, 2, f);
          piece.text = std::string(pr.bytes());
        } else if (f == 2) {
          pr.expect(w, 5, f);
          piece.score = pr.fixed32_float();
        } else if (f == 3) {
          pr.expect(w, 0, f);
          piece.type = static_cast<int>(pr.varint());
        } else {
          pr.skip(w);
        }
      }
      PCM_CHECK(utf8_valid(piece.text), "{}: piece {} is not valid UTF-8", path, m.pieces.size());
      m.pieces.push_back(std::move(piece));
    } else if (field == 2) {  // TrainerSpec
      top.expect(wire, 2, field);
      ProtoReader tr(top.bytes(), path, "TrainerSpec");
      uint32_t f, w;
      while (tr.next(&f, &w)) {
        switch (f) {
          case 3: tr.expect(w, 0, f); m.model_type = static_cast<int>(tr.varint()); break;
          case 35: tr.expect(w, 0, f); m.byte_fallback = tr.varint() != 0; break;
          case 40: tr.expect(w, 0, f); m.unk_id = as_int32(tr.varint()); break;
          case 41: tr.expect(w, 0, f); m.bos_id = as_int32(tr.varint()); break;
          case 42: tr.expect(w, 0, f); m.eos_id = as_int32(tr.varint()); break;
          case 43: tr.expect(w, 0, f); m.pad_id = as_int32(tr.varint()); break;
          case 45: tr.expect(w, 2, f); m.unk_piece = std::string(tr.bytes()); break;
          default: tr.skip(w);
        }
      }
    } else if (field == 3) {  // NormalizerSpec
      top.expect(wire, 2, field);
      ProtoReader nr(top.bytes(), path, "NormalizerSpec");
      uint32_t f, w;
      while (nr.next(&f, &w)) {
        switch (f) {
          case 1: nr.expect(w, 2, f); m.normalizer_name = std::string(nr.bytes()); break;
          case 2: nr.expect(w, 2, f); m.has_precompiled_charsmap = !nr.bytes().empty(); break;
          case 3: nr.expect(w, 0, f); m.add_dummy_prefix = nr.varint() != 0; break;
          default: nr.skip(w);
        }
      }
    } else {
      top.skip(wire);
    }
  }
  PCM_CHECK(!m.pieces.empty(), "{}: no pieces in the SentencePiece model", path);
  return m;
}

json sentencepiece_to_tokenizer_json(const SentencePieceModel& m, const std::string& path,
                                     const SentencePieceConversion& options) {
  const bool prefix = options.add_prefix_space.value_or(m.add_dummy_prefix);
  PCM_CHECK(m.model_type == 2, "{}: SentencePiece model type {} is not supported (only BPE, type 2)", path, m.model_type);
  PCM_CHECK(!m.has_precompiled_charsmap || m.normalizer_name == "identity",
            "{}: SentencePiece normalizer \"{}\" (a precompiled charsmap) is not supported; only \"identity\"", path,
            m.normalizer_name);

  const size_t n = m.pieces.size();
  std::unordered_map<std::string_view, int32_t> index;
  index.reserve(n);
  json vocab = json::object();
  for (size_t i = 0; i < n; ++i) {
    index.emplace(m.pieces[i].text, static_cast<int32_t>(i));  // the first piece wins, as in a dict built in order
  }
  for (size_t i = 0; i < n; ++i) vocab[m.pieces[i].text] = static_cast<int64_t>(i);

  // transformers' SentencePieceExtractor: for every piece, each split into two pieces that are both
  // in the vocabulary is a merge; a piece's merges are ordered by (id of left, id of right), and all
  // merges by the merged piece's score, highest first (stable).
  struct MergeRow {
    int32_t left, right;
    float score;
  };
  std::vector<MergeRow> rows;
  for (size_t i = 0; i < n; ++i) {
    const std::string& text = m.pieces[i].text;
    size_t first = rows.size();
    for (size_t cut = 1; cut < text.size(); ++cut) {
      if ((static_cast<uint8_t>(text[cut]) & 0xC0) == 0x80) continue;  // split at characters only
      auto l = index.find(std::string_view(text).substr(0, cut));
      auto r = index.find(std::string_view(text).substr(cut));
      if (l != index.end() && r != index.end()) rows.push_back({l->second, r->second, m.pieces[i].score});
    }
    std::sort(rows.begin() + static_cast<std::ptrdiff_t>(first), rows.end(), [](const MergeRow& a, const MergeRow& b) {
      return a.left != b.left ? a.left < b.left : a.right < b.right;
    });
  }
  std::stable_sort(rows.begin(), rows.end(), [](const MergeRow& a, const MergeRow& b) { return a.score > b.score; });
  json merges = json::array();
  for (const MergeRow& r : rows) {
    merges.push_back(json::array({m.pieces[static_cast<size_t>(r.left)].text, m.pieces[static_cast<size_t>(r.right)].text}));
  }

  json model = {{"type", "BPE"},          {"dropout", nullptr},       {"unk_token", m.unk_piece},
                {"continuing_subword_prefix", nullptr},               {"end_of_word_suffix", nullptr},
                {"fuse_unk", true},       {"byte_fallback", m.byte_fallback},
                {"ignore_merges", false}, {"vocab", std::move(vocab)}, {"merges", std::move(merges)}};

  // Control pieces (and the unknown piece) are special added tokens, user-defined pieces plain ones.
  json added = json::array();
  for (size_t i = 0; i < n; ++i) {
    int type = m.pieces[i].type;
    if (type != SentencePieceModel::kControl && type != SentencePieceModel::kUserDefined &&
        type != SentencePieceModel::kUnknown)
      continue;
    added.push_back({{"id", static_cast<int64_t>(i)},
                     {"content", m.pieces[i].text},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", type != SentencePieceModel::kUserDefined}});
  }

  json normalizer = nullptr, pre_tokenizer = nullptr;
  if (options.legacy) {
    json normalizers = json::array();
    if (prefix) normalizers.push_back({{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}});
    normalizers.push_back({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}});
    normalizer = {{"type", "Sequence"}, {"normalizers", std::move(normalizers)}};
  } else {
    pre_tokenizer = {{"type", "Metaspace"},
                     {"replacement", "\xE2\x96\x81"},
                     {"prepend_scheme", prefix ? "first" : "never"},
                     {"split", false}};
  }

  json decoders = json::array({{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}}});
  if (m.byte_fallback) decoders.push_back({{"type", "ByteFallback"}});
  decoders.push_back({{"type", "Fuse"}});
  if (prefix) decoders.push_back({{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}});

  json post = nullptr;
  if (m.bos_id >= 0 && static_cast<size_t>(m.bos_id) < n) {
    const std::string& bos = m.pieces[static_cast<size_t>(m.bos_id)].text;
    json bos_piece = json::object();
    bos_piece["SpecialToken"] = {{"id", bos}, {"type_id", 0}};
    json seq_piece = json::object();
    seq_piece["Sequence"] = {{"id", "A"}, {"type_id", 0}};
    json special = json::object();
    special[bos] = {{"id", bos}, {"ids", json::array({m.bos_id})}, {"tokens", json::array({bos})}};
    post = json::object();
    post["type"] = "TemplateProcessing";
    post["single"] = json::array({bos_piece, seq_piece});
    post["special_tokens"] = std::move(special);
  }

  return {{"version", "1.0"},
          {"added_tokens", std::move(added)},
          {"normalizer", std::move(normalizer)},
          {"pre_tokenizer", std::move(pre_tokenizer)},
          {"post_processor", std::move(post)},
          {"decoder", {{"type", "Sequence"}, {"decoders", std::move(decoders)}}},
          {"model", std::move(model)}};
}

}  // namespace pcm
