#!/bin/sh
# Packs bench/ssdbwd_run.sh's binaries: pcm, test_cuda, test_train (this build), pcm_base (another build of
# pcm, e.g. main's, measured in the same call) and the libraries the device lacks, into DEST (<= 8 MB).
# usage: [BINS="pcm test_cuda"] ssdbwd_pack.sh BUILD_DIR DEST_DIR [BASELINE_PCM]   (BINS, no baseline: fewer binaries
# when the pack would pass 8 MB; run.sh skips the steps of a missing one)
set -e
src=$1; dst=$2; base=$3
# Built beside DEST and moved in at the end: a pack being rebuilt is never half there.
tmp="$dst.tmp"; final="$dst"; dst="$tmp"
rm -rf "$dst"; mkdir -p "$dst/stage/lib"
for b in ${BINS:-pcm test_cuda test_train}; do strip -o "$dst/stage/$b" "$src/$b"; done
[ -n "$base" ] && strip -o "$dst/stage/pcm_base" "$base"
"$(dirname "$0")/../scripts/dev/device_libs.sh" "$dst/stage/lib"
# x86 branch filter before LZMA2: ~4 % smaller for these binaries (room for test_train under 8 MB)
(cd "$dst/stage" && XZ_OPT="--x86 --lzma2=preset=9e,dict=128MiB" tar cJf ../pack.tar.xz .)
rm -rf "$dst/stage"
cp "$(dirname "$0")/ssdbwd_run.sh" "$dst/run.sh"
rm -rf "$final.old"; [ -d "$final" ] && mv "$final" "$final.old"; mv "$dst" "$final"; rm -rf "$final.old"
du -sh "$final"
