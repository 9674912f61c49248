#!/bin/sh
# Packs the CUDA build for the GPU machine: stripped binaries + the shared libraries it may lack.
set -e
src=${1:-/work/main/build-cuda}; dst=${2:-/work/main/build-cuda-run}
rm -rf "$dst"; mkdir -p "$dst/lib"
for b in pcm test_cuda; do strip -o "$dst/$b" "$src/$b"; done
for l in libgomp.so.1 libfmt.so.9 libgfortran.so.5 libquadmath.so.0; do cp -L /lib/x86_64-linux-gnu/$l "$dst/lib/"; done
du -sh "$dst"
