#!/bin/sh
# Packs binaries for bench/cuda_perf_run.sh: pcm (this build), test_cuda, cuda_decode_kernels when built,
# optional pcm_base (another build to compare in the same call) and further variants named NAME=PATH
# (pcm_NAME, benched too), the shared libraries the device lacks, into one tar.xz.
# usage: cuda_perf_pack.sh BUILD_DIR DEST_DIR [BASELINE_PCM [NAME=PCM_PATH ...]]
set -e
src=$1; dst=$2; base=$3
shift 3 2>/dev/null || shift $#
rm -rf "$dst"; mkdir -p "$dst/stage/lib"
strip -o "$dst/stage/pcm" "$src/pcm"
strip -o "$dst/stage/test_cuda" "$src/test_cuda"
[ -x "$src/bench/cuda_decode_kernels" ] && strip -o "$dst/stage/cuda_decode_kernels" "$src/bench/cuda_decode_kernels"
[ -n "$base" ] && strip -o "$dst/stage/pcm_base" "$base"
for v in "$@"; do strip -o "$dst/stage/pcm_${v%%=*}" "${v#*=}"; done
"$(dirname "$0")/../scripts/dev/device_libs.sh" "$dst/stage/lib"
# One solid stream (pcm and its variants share most bytes) through the x86 branch filter, the libraries
# last: ~5% smaller than plain xz -9e.
(cd "$dst/stage" && tar cf - pcm test_cuda $(ls cuda_decode_kernels 2>/dev/null) $(ls -d pcm_* 2>/dev/null) lib |
  xz --x86 --lzma2=preset=9e,dict=96MiB,lc=4,pb=0 -T1 > ../pack.tar.xz)
rm -rf "$dst/stage"
cp "$(dirname "$0")/cuda_perf_run.sh" "$dst/run.sh"
du -sh "$dst"
