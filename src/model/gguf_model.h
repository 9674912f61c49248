// Mamba-2 from a llama.cpp GGUF file (architecture "mamba2"): the config from its metadata and the
// weights bound in place, undoing llama.cpp's conversions (A stored as -exp(A_log) with a trailing
// unit dim, D unsqueezed, the gated norm as [n_group, d_inner / n_group], conv1d squeezed to [C, K]).
#pragma once
#include <memory>
#include <string>

#include "io/gguf.h"
#include "model/config.h"
#include "model/weights.h"

namespace pcm {

// GGUF stores neither chunk_size (llama.cpp does not chunk; we use 256) nor time_step_limit (llama.cpp
// does not clamp dt; neither do we for a GGUF).
Mamba2Config mamba2_config_from_gguf(const GgufFile& file);
Mamba2Weights bind_mamba2_gguf_weights(const Mamba2Config& config, std::shared_ptr<const GgufFile> file);

}  // namespace pcm
