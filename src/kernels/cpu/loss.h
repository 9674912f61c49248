// LM head + next-token cross-entropy, computed over vocabulary blocks so the [T, V] logits are never
// stored: one pass finds each row's log-sum-exp (online, like flash attention's softmax), a second
// pass recomputes each block's logits and turns them into gradients.
#pragma once
#include <cstdint>

namespace pcm::cpu {

// x: [T, d] (the final-normed hidden states), W: [V, d] (lm_head or the tied embedding),
// targets: [T] in [0, V). Returns sum_t (logsumexp(x_t · Wᵀ) - x_t · W[target_t]) in float64.
// With dx (written, =) and/or dW (+=) non-null, also the gradient of that sum.
// scratch: lm_head_xent_scratch_floats(T, vocab_chunk) floats.
double lm_head_xent(float* dx, float* dW, const float* x, const float* W, const int32_t* targets, int64_t T,
                    int64_t V, int64_t d, int64_t vocab_chunk, float* scratch);

int64_t lm_head_xent_scratch_floats(int64_t T, int64_t vocab_chunk);

}  // namespace pcm::cpu
