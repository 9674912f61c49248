#!/bin/sh
# Packs bench/trainhost_run.sh's binaries: pcm and test_train (this build), optionally test_cuda, pcm_base
# (main's pcm, measured in the same call) and the libraries the device lacks, into DEST (<= 8 MB).
# usage: trainhost_pack.sh BUILD_DIR DEST_DIR BASELINE_PCM [with-test-cuda]
set -e
src=$1; dst=$2; base=$3; extra=$4
tmp="$dst.tmp"; final="$dst"; dst="$tmp"
rm -rf "$dst"; mkdir -p "$dst/stage/lib"
bins="pcm test_train"; [ "$extra" = with-test-cuda ] && bins="$bins test_cuda"
[ -x "$src/bench/cuda_train_kernels" ] && strip -o "$dst/stage/cuda_train_kernels" "$src/bench/cuda_train_kernels"
for b in $bins; do strip -o "$dst/stage/$b" "$src/$b"; done
strip -o "$dst/stage/pcm_base" "$base"
"$(dirname "$0")/../scripts/dev/device_libs.sh" "$dst/stage/lib"
# One solid stream (the binaries share pcm_core's kernels) through xz's x86 filter: ~5% smaller than -9e
# alone; `tar xJf` unpacks it as any .tar.xz.
(cd "$dst/stage" && tar cf - . | xz --x86 --lzma2=preset=9e,dict=128MiB -T1 > ../pack.tar.xz)
rm -rf "$dst/stage"
cp "$(dirname "$0")/trainhost_run.sh" "$dst/run.sh"
rm -rf "$final.old"; [ -d "$final" ] && mv "$final" "$final.old"; mv "$dst" "$final"; rm -rf "$final.old"
du -sb "$final"
