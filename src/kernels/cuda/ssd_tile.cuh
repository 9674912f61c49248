// The 64x64 output tile of the chunked SSD kernels (forward in ssd.cu, backward in ssd_chunked_backward.cu):
// 32-deep slabs of the operands in shared memory, the products on the TF32 tensor cores (WMMA, fp32
// accumulation) or, for exact fp32, on the CUDA cores (4x4 outputs per thread). A kernel fills s.a[row][k]
// and s.b[k][col], calls mma, and after the last slab `store`s the tile into s.out for its epilogue.
#pragma once
#include <mma.h>

namespace pcm::cuda::ssd_tile {

namespace wmma = nvcuda::wmma;

constexpr int kTile = 64, kSlab = 32, kThreads = 256, kMaxQ = 256, kApad = kSlab + 4, kBpad = kTile + 4;

struct __align__(32) TileSmem {
  float a[kTile][kApad];  // a[row][k]
  float b[kSlab][kBpad];  // b[k][col]
  float out[kTile][kBpad];  // the finished tile, for the epilogue
};

// fp32 on the CUDA cores: thread (ty, tx) owns outputs (ty + 16r, tx + 16c).
struct SimtAcc {
  float acc[4][4];
  __device__ void zero() {
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
      for (int c = 0; c < 4; ++c) acc[r][c] = 0.0f;
  }
  __device__ void mma(const TileSmem& s) {
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
#pragma unroll 8
    for (int k = 0; k < kSlab; ++k) {
      float av[4], bv[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) av[r] = s.a[ty + 16 * r][k];
#pragma unroll
      for (int c = 0; c < 4; ++c) bv[c] = s.b[k][tx + 16 * c];
#pragma unroll
      for (int r = 0; r < 4; ++r)
#pragma unroll
        for (int c = 0; c < 4; ++c) acc[r][c] = fmaf(av[r], bv[c], acc[r][c]);
    }
  }
  __device__ void store(TileSmem& s) {
    const int tx = threadIdx.x & 15, ty = threadIdx.x >> 4;
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
      for (int c = 0; c < 4; ++c) s.out[ty + 16 * r][tx + 16 * c] = acc[r][c];
  }
};

// TF32 tensor cores (m16n16k8, fp32 accumulation): warp w owns rows 16(w/2).., columns 32(w%2)...
struct TensorAcc {
  wmma::fragment<wmma::accumulator, 16, 16, 8, float> f[2];
  __device__ void zero() {
    wmma::fill_fragment(f[0], 0.0f);
    wmma::fill_fragment(f[1], 0.0f);
  }
  __device__ void mma(const TileSmem& s) {
    const int warp = threadIdx.x >> 5, rb = warp >> 1, cb = (warp & 1) * 2;
#pragma unroll
    for (int k = 0; k < kSlab; k += 8) {
      wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> a;
      wmma::load_matrix_sync(a, &s.a[rb * 16][k], kApad);
#pragma unroll
      for (int t = 0; t < a.num_elements; ++t) a.x[t] = wmma::__float_to_tf32(a.x[t]);
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> b;
        wmma::load_matrix_sync(b, &s.b[k][(cb + j) * 16], kBpad);
#pragma unroll
        for (int t = 0; t < b.num_elements; ++t) b.x[t] = wmma::__float_to_tf32(b.x[t]);
        wmma::mma_sync(f[j], a, b, f[j]);
      }
    }
  }
  __device__ void store(TileSmem& s) {
    const int warp = threadIdx.x >> 5, rb = warp >> 1, cb = (warp & 1) * 2;
    wmma::store_matrix_sync(&s.out[rb * 16][cb * 16], f[0], kBpad, wmma::mem_row_major);
    wmma::store_matrix_sync(&s.out[rb * 16][(cb + 1) * 16], f[1], kBpad, wmma::mem_row_major);
  }
};

}  // namespace pcm::cuda::ssd_tile
