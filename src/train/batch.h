// A packed training batch: `rows` rows of `seq_len` tokens, documents concatenated inside a row.
#pragma once
#include <cstdint>
#include <vector>

namespace pcm {

struct PackedBatch {
  int64_t rows = 0, seq_len = 0;
  std::vector<int32_t> tokens;     // rows * seq_len input ids
  std::vector<int32_t> targets;    // next token to predict at each position; -1 = no loss there
  std::vector<uint8_t> doc_start;  // 1 where a new document begins: conv and SSM state reset to zero
                                   // there (the first position of every row is always a start)
};

}  // namespace pcm
