#!/bin/sh
# Pack for bench/decode7_run.sh under the 8 MiB device-window limit: this build's pcm and
# cuda_decode_kernels, main's pcm as pcm_base, the libraries, and a test_cuda linked from only the test
# files the run uses (kernels, model: the full test_cuda took the pack 80 KB over).
# usage: decode7_pack.sh BUILD_DIR DEST_DIR BASELINE_PCM
set -e
src=$(cd "$1" && pwd); dst=$2; base=$3
rm -rf "$dst"; mkdir -p "$dst/stage/lib"
link=$(cd "$src" && ninja -t commands test_cuda | tail -1 | sed 's/ && cd .*//; s/^: && //')
for t in cli_cuda_test scheduler_cuda_test ssd_backward_chunked_test; do  # not in the run's filter
  link=$(echo "$link" | sed "s# CMakeFiles/test_cuda.dir/tests/cuda/$t.cpp.o##")
done
(cd "$src" && eval "$(echo "$link" | sed "s#-o test_cuda #-o $src/test_cuda_slim #")")
strip -o "$dst/stage/test_cuda" "$src/test_cuda_slim"
strip -o "$dst/stage/pcm" "$src/pcm"
strip -o "$dst/stage/cuda_decode_kernels" "$src/bench/cuda_decode_kernels"
strip -o "$dst/stage/pcm_base" "$base"
"$(dirname "$0")/../scripts/dev/device_libs.sh" "$dst/stage/lib"
(cd "$dst/stage" && tar cf - pcm test_cuda cuda_decode_kernels pcm_base lib |
  xz --x86 --lzma2=preset=9e,dict=96MiB,lc=4,pb=0 -T1 > ../pack.tar.xz)
rm -rf "$dst/stage"
cp "$(dirname "$0")/decode7_run.sh" "$dst/run.sh"
ls -l "$dst"; du -sh "$dst"
