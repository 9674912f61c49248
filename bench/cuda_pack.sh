#!/bin/sh
# Packs the CUDA build for the GPU machine: stripped binaries + the shared libraries it may lack.
set -e
src=${1:-/work/main/build-cuda}; dst=${2:-/work/main/build-cuda-run}
rm -rf "$dst"; mkdir -p "$dst/lib"
for b in pcm test_cuda; do strip -o "$dst/$b" "$src/$b"; done
"$(dirname "$0")/../scripts/dev/device_libs.sh" "$dst/lib"
du -sh "$dst"
