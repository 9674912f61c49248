#!/bin/bash
# Builds persistent_decode_host (README.md here) into $1 (default /tmp/pcm-host-emul) with g++: a copy of
# src/kernels/cuda with what g++ cannot take replaced (static __shared__ arrays become static: per process, so per
# block; the dynamic one is the harness's; the L2 prefetch is checked; the trace's timer reads become zeros), this
# directory's grid_barrier.cuh and bulk_copy.cuh over the originals, AddressSanitizer on. CUDA_INCLUDE: the CUDA
# headers (default /usr/local/cuda/include); CXX: a g++ (default g++).
set -e
here=$(cd "$(dirname "$0")" && pwd); root=$(cd "$here/../../.." && pwd); out=${1:-/tmp/pcm-host-emul}
mkdir -p "$out/tree/kernels/cuda"
for f in "$root"/src/kernels/cuda/*.cuh "$root"/src/kernels/cuda/*.h "$root"/src/kernels/cuda/decode_persistent.cu; do
  sed -e 's/extern __shared__/extern/' -e 's/__shared__/static/' \
      -e 's/asm volatile("prefetch.global.L2 \[%0\];" ::"l"(p));/emul_prefetch_l2(p);/' \
      -e 's/asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));/t = 0;/' \
      -e 's/asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));/sm = 0;/' "$f" > "$out/tree/kernels/cuda/$(basename "$f")"
done
cp "$here"/kernels/cuda/*.cuh "$out/tree/kernels/cuda/"
# the kernel only: its host launchers (cudaLaunchKernelEx of a kernel pointer) need nvcc's runtime templates
k="$out/tree/kernels/cuda/decode_persistent.cu"
awk '{print} /^size_t smem_bytes/{exit}' "$k" > "$k.tmp" && printf '}  // namespace\n}  // namespace pcm::cuda\n' >> "$k.tmp"
mv "$k.tmp" "$k"
"${CXX:-g++}" -std=c++20 -O1 -g -fsanitize=address -fno-omit-frame-pointer -Wno-attributes -I"$here" -I"$out/tree" \
  -I"$root/src" -I"${CUDA_INCLUDE:-/usr/local/cuda/include}" "$here/persistent_decode_host.cpp" \
  -o "$out/persistent_decode_host" -lfmt -lpthread
