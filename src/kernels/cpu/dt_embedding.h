// The two small element-wise ops of the training graph that have no inference kernel of their own:
// the time step dt = clamp(softplus(raw + dt_bias), dt_min, dt_max), and the embedding lookup.
#pragma once
#include <cstdint>

namespace pcm::cpu {

// raw row t at raw + t * raw_stride (the dt slice of in_proj's output); dt: [T, H].
void dt_softplus_forward(float* dt, const float* raw, int64_t raw_stride, const float* dt_bias, int64_t T, int64_t H,
                         float dt_min, float dt_max);
// draw (row t at draw + t * draw_stride, =) and ddt_bias (+=) from ddt [T, H]. Where the clamp is
// active the gradient is zero (torch.clamp passes it only for dt_min <= v <= dt_max).
void dt_softplus_backward(float* draw, int64_t draw_stride, float* ddt_bias, const float* ddt, const float* raw,
                          int64_t raw_stride, const float* dt_bias, int64_t T, int64_t H, float dt_min, float dt_max);

// out[t, :] = table[ids[t], :] for a float32 table [V, d].
void embedding_forward(float* out, const float* table, const int32_t* ids, int64_t T, int64_t d);
// dtable[ids[t], :] += dout[t, :] (columns split across threads, so repeated ids never race).
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t T, int64_t d);

}  // namespace pcm::cpu
