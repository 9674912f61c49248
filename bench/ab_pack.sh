#!/bin/bash
# Builds and packs a decode A/B call (bench/decode_ab_run.sh) from experiment patches applied in turn to this tree:
# main's pcm as pcm_base; after each patch but the last its pcm as pcm_NAME; after the last, pcm and test_cuda.
# usage: bench/ab_pack.sh BUILD_DIR DEST_DIR NAME=PATCH [NAME=PATCH ...]
#   e.g. bench/ab_pack.sh build-dev build-w35 ring=bench/experiments/ring-epilogue.patch \
#        both=bench/experiments/norm-preload.patch
# The tracked sources must be clean; they are restored (and BUILD_DIR rebuilt) at the end, also on failure.
set -euo pipefail
build=$1; dest=$2; shift 2
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "ab_pack: commit or stash the tracked changes first" >&2; exit 1
fi
stage=$(mktemp -d)
restore() { git checkout -q -- src; cmake --build "$build" -j2 --target pcm test_cuda > /dev/null; rm -rf "$stage"; }
trap restore EXIT
cmake --build "$build" -j2 --target pcm
cp "$build/pcm" "$stage/pcm_base"
last=${!#}; variants=()
for spec in "$@"; do
  name=${spec%%=*}; patch=${spec#*=}
  git apply "$patch"
  if [ "$spec" = "$last" ]; then
    cmake --build "$build" -j2 --target pcm test_cuda
    cp "$build/pcm" "$build/test_cuda" "$stage/"
  else
    cmake --build "$build" -j2 --target pcm
    cp "$build/pcm" "$stage/pcm_$name"; variants+=("pcm_$name")
  fi
done
BINS="pcm ${variants[*]} test_cuda" RUN="$(dirname "$0")/decode_ab_run.sh" \
  sh "$(dirname "$0")/window_pack.sh" "$stage" "$dest" "$stage/pcm_base"
echo "ab_pack: run \`VARIANTS=\"pcm_base ${variants[*]} pcm\" bash $dest/run.sh\` on the device with $dest carried"
