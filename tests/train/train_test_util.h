// Shared by the train tests: a fixture's reference prompt as a PackedBatch.
#pragma once
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "test_util.h"
#include "train/batch.h"

namespace pcm::test {

// One row: the prompt's tokens; target t = input_ids[t + 1] where loss_mask[t] is 1, else -1.
inline PackedBatch fixture_batch(const SafetensorsFile& ref) {
  const TensorInfo& ids = ref.get("input_ids");
  const TensorInfo& mask = ref.get("loss_mask");
  const int64_t T = ids.numel();
  const auto* id = reinterpret_cast<const int32_t*>(ids.data);
  const auto* m = reinterpret_cast<const int32_t*>(mask.data);
  PackedBatch b;
  b.rows = 1;
  b.seq_len = T;
  b.tokens.assign(id, id + T);
  b.targets.assign(static_cast<size_t>(T), -1);
  for (int64_t t = 0; t + 1 < T; ++t)
    if (m[t]) b.targets[static_cast<size_t>(t)] = id[t + 1];
  b.doc_start.assign(static_cast<size_t>(T), 0);
  b.doc_start[0] = 1;
  return b;
}

}  // namespace pcm::test
