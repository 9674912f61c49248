#!/bin/sh
# Packs a device window's binaries for bench/window_run.sh: pcm, test_cuda, test_train (this build), pcm_base (main's pcm, measured in
# the same call) and the libraries the device lacks, into DEST (<= 8 MB).
# usage: [BINS="pcm test_cuda test_train"] [RUN=bench/other_run.sh] window_pack.sh BUILD_DIR DEST_DIR BASELINE_PCM
# (default without test_train: all four pass 8 MB; run.sh skips the steps of a missing binary; RUN: the device
# script to pack as run.sh, default window_run.sh)
set -e
src=$1; dst=$2; base=$3
tmp="$dst.tmp"; final="$dst"; dst="$tmp"  # built beside DEST and moved in at the end: never half there
rm -rf "$dst"; mkdir -p "$dst/stage/lib"
for b in ${BINS:-pcm test_cuda}; do f=$src/$b; [ -f "$f" ] || f=$src/bench/$b; strip -o "$dst/stage/$b" "$f"; done
strip -o "$dst/stage/pcm_base" "$base"
"$(dirname "$0")/../scripts/dev/device_libs.sh" "$dst/stage/lib"
(cd "$dst/stage" && tar cf - ${BINS:-pcm test_cuda} pcm_base lib |
  xz --x86 --lzma2=preset=9e,dict=96MiB,lc=4,pb=0 -T1 > ../pack.tar.xz)
rm -rf "$dst/stage"
cp "${RUN:-$(dirname "$0")/window_run.sh}" "$dst/run.sh"
rm -rf "$final.old"; [ -d "$final" ] && mv "$final" "$final.old"; mv "$dst" "$final"; rm -rf "$final.old"
du -sh "$final"
