// Training documents: JSONL rows tokenized into ids plus a per-token loss mask, and the packing of a
// shuffled mixture into fixed-length rows with document boundaries (doc_start) and no loss across them.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "train/batch.h"
#include "train/train_config.h"

namespace pcm {

class Tokenizer;
class ChatTemplate;

struct Document {
  std::vector<int32_t> ids;
  std::vector<uint8_t> loss;  // 1 = this token is a training target (assistant/completion/text tokens)
};

// What a row needs to be tokenized. Both may be null for datasets of {"input_ids"} rows only.
struct TextCodec {
  const Tokenizer* tokenizer = nullptr;
  const ChatTemplate* chat = nullptr;
};

// One JSONL row -> a document. Formats:
//   {"messages": [...]}: rendered with the chat template; loss on assistant turns only (each assistant
//     span is found by rendering the conversation up to and including that turn and diffing tokens);
//   {"prompt": s, "completion": s}: loss on the completion's tokens;
//   {"text": s}: loss on every token; {"input_ids": [...], optional "loss_mask": [...]}: pre-tokenized.
// `where` (path:line) prefixes errors.
Document tokenize_row(const nlohmann::json& row, const TextCodec& codec, const std::string& where);

std::vector<Document> load_documents(const std::string& path, const TextCodec& codec);

struct PackStats {
  int64_t documents = 0, truncated = 0, dropped = 0, rows = 0, loss_tokens = 0, tokens = 0;
};

// Packs documents in order into rows of seq_len: a document that does not fit in the rest of a row
// starts a new row (the rest is padding with no loss); a document longer than seq_len is truncated to
// seq_len or dropped (rule). Within a document, position i predicts token i+1 when that token has loss.
// Result: rows * seq_len tokens/targets/doc_start.
PackedBatch pack_documents(const std::vector<const Document*>& docs, int64_t seq_len, OverlongRule rule,
                           PackStats* stats);

// The phase's data: the mixture of its datasets, one shuffled packing per epoch (deterministic in
// seed and epoch), addressed by a global row cursor so a resumed run sees the same rows.
class PhaseData {
 public:
  PhaseData(const PhaseConfig& phase, const TextCodec& codec, uint64_t seed);
  // Rows in one epoch (fixed: the same documents are drawn every epoch, only the order changes).
  int64_t rows_per_epoch() const { return epoch_rows_; }
  // Rows [first, first + count) of the endless epoch stream.
  PackedBatch rows(int64_t first, int64_t count);
  const PackStats& epoch_stats() const { return stats_; }

 private:
  void build_epoch(int64_t epoch);
  PhaseConfig phase_;
  uint64_t seed_;
  std::vector<Document> docs_;
  std::vector<int64_t> mixture_;  // document indices drawn for an epoch (weights applied)
  int64_t epoch_rows_ = 0;
  int64_t cached_epoch_ = -1;
  PackedBatch cached_;
  PackStats stats_;
};

}  // namespace pcm
