// Load-time weight conversion: `--weights q8_0` quantises every large matrix (embedding, in_proj,
// out_proj, LM head) to GGUF's Q8_0 blocks, as llama.cpp's Q8_0 files store them.
#pragma once
#include <string>

#include "model/weights.h"

namespace pcm {

// "file" (keep the checkpoint's dtype), "q8_0". Errors name the bad value.
DType parse_weights_option(const std::string& value);

// Replaces the large matrices with Q8_0 copies (rows quantised in parallel). Matrices whose width is
// not a multiple of 32 are an error naming the tensor.
void quantize_weights_q8_0(Mamba2Weights& weights);

}  // namespace pcm
