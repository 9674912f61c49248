#!/bin/bash
# Device side of a decode A/B call (short: fits a nearly spent device budget). Packed on the dev machine by
# bench/ab_pack.sh, e.g. for the two patches of bench/experiments (decode v21 in bench/cuda_notes.md):
#   bench/ab_pack.sh build-dev build-wNN ring=bench/experiments/ring-epilogue.patch \
#     both=bench/experiments/norm-preload.patch
# (pcm_base = main, pcm_ring = main + the first patch, pcm and test_cuda = main + both), then run
# `bash build-wNN/run.sh` on the device with build-wNN carried. VARIANTS: the binaries compared, alternating, 2 rounds
# (default "pcm_base pcm_ring pcm"); TEST_FILTER: test_cuda's focused tests, run first. $OUT/key.txt is written line
# by line, so a call cut off by its limit still returns what ran.
cd "$(dirname "$0")"; tar xJf pack.tar.xz
export LD_LIBRARY_PATH=$PWD/lib:$LD_LIBRARY_PATH PCM_TESTDATA_DIR=$PWD/../testdata PCM_BINARY_PATH=$PWD/pcm
L=$OUT/logs; mkdir -p $L; K=$OUT/key.txt; : > $K
nvidia-smi --query-gpu=name,clocks.sm,power.draw --format=csv,noheader >> $K
F=${TEST_FILTER:-'*Conv*:CudaKernels.DecodeFused*:CudaModel*:CudaFixture*:CudaScheduler*'}
t=$SECONDS; timeout 60 ./test_cuda --gtest_filter="$F" > $L/tests.log 2>&1; rc=$?
echo "tests rc=$rc $((SECONDS-t))s ok=$(grep -c '^\[       OK' $L/tests.log) failed: $(grep '^\[  FAILED  \]' \
  $L/tests.log | grep -v listed | awk '{print $4}' | sort -u | tr '\n' ' ')" >> $K
grep -B2 -A6 "Failure" $L/tests.log | head -12 >> $K
fmt() { grep -E '^\| B=' "$1" | awk -F'|' '{printf "%s %s %s %s;", $2, $3, $4, $7}'; }
B="bench --device cuda --shape codestral-7b --cuda-prefill 512 --decode-tokens 128 --cuda-batches 1,16,64,128"
for r in 1 2; do for b in ${VARIANTS:-pcm_base pcm_ring pcm}; do
  [ -x ./$b ] || continue
  timeout 40 ./$b $B > $L/d_${b}_$r.txt 2>&1; echo "$b r$r rc=$? ${SECONDS}s: $(fmt $L/d_${b}_$r.txt)" >> $K
done; done
grep -E 'TB/s' $L/d_pcm_base_1.txt | head -1 >> $K
cat $K
