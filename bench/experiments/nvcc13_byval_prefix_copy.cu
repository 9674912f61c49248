// nvcc 13.0 (V13.0.88) miscompile found in decode v27 (bench/cuda_notes.md): a kernel argument struct larger than
// 128 bytes, a local aggregate whose leading fields are that argument's leading fields (same types, same offsets),
// and that local copied into another aggregate: the copy reads the argument's bytes instead of the local's, so
// ws.p.count below is a.L (not 2 a.L) and ws.p.n_in, k_in, n_out, k_out are the pointers x0..x3.
//   nvcc -O3 -arch=sm_90 -std=c++17 -ptx nvcc13_byval_prefix_copy.cu -o - | grep -o 'param_0+[0-9]*\]' | sort -u
// Miscompiled: loads at +8 +16 +24 +32 +40 only (and never d, di, cd at +48 +56 +64). Compiled right: +8 +48 +56 +64,
// which is what it gives with pad[56] (a 128-byte argument), with the local's fields in another order, or with the
// aggregate built in place (W ws{P{...}, ...}), the form src/kernels/cuda/decode_persistent.cu now uses.
#include <cstdint>

struct Layer {
  const void *in, *out;
};
struct Arg {  // 136 bytes
  const Layer* layers;
  int L;
  float *x0, *x1, *x2, *x3;
  int64_t d, di, cd;
  char pad[64];
};
struct P {
  const Layer* layers;
  int count;
  int64_t n_in, k_in, n_out, k_out;
  __device__ const uint4* weights(int i) const {
    return static_cast<const uint4*>((i & 1) ? layers[i >> 1].out : layers[i >> 1].in);
  }
  __device__ int64_t rows(int i) const { return (i & 1) ? n_out : n_in; }
  __device__ int64_t k8(int i) const { return (i & 1) ? k_out : k_in; }
};
struct W {
  P p;
  uint4* ring;
  int64_t row0, stride;
  int i = 0;
  int64_t j = 0, c = 0;
  const uint4* w = nullptr;
  int64_t asked = 0;
  __device__ void ask(uint4* out) {
    while (i < p.count && row0 + j * stride >= p.rows(i)) ++i, j = 0, c = 0, w = nullptr;
    if (i >= p.count) return;
    if (!w) w = p.weights(i);
    const int64_t k8 = p.k8(i), len = min(int64_t{256}, k8 - c * 256);
    out[asked % 3] = w[(row0 + j * stride) * k8 + c * 256 + len];
    ++asked;
    if (++c * 256 >= k8) ++j, c = 0;
  }
};

__global__ void kernel(Arg a, uint4* out) {
  const P p{a.layers, 2 * a.L, a.di + a.cd, a.d / 8, a.d, a.di / 8};
  W ws{p, nullptr, blockIdx.x * 16 + (threadIdx.x >> 5), gridDim.x * 16};
  if ((threadIdx.x & 31) == 0)
    for (int s = 0; s < 3; ++s) ws.ask(out);
  for (int l = 0; l < a.L; ++l) {
    __syncthreads();
    if ((threadIdx.x & 31) == 0) ws.ask(out + 3);
  }
}
