#!/bin/bash
# One decode window (the pack's run.sh; bench/cuda_perf_pack.sh makes the pack): the kernel + model tests,
# pcm bench of this build and of main (pcm_base) in the same call, then cuda_decode_kernels.
# $OUT/summary.txt is written as it goes (a call cut off by its time limit keeps what finished).
cd "$(dirname "$0")"
tar xJf pack.tar.xz
export LD_LIBRARY_PATH=$PWD/lib:$LD_LIBRARY_PATH PCM_TESTDATA_DIR=$PWD/../testdata LOG=/tmp/pcm-d6-logs
S=${OUT:-/tmp}/summary.txt
rm -rf $LOG; mkdir -p $LOG
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu --format=csv > $LOG/gpu.txt 2>&1
echo "gpu: $(tail -1 $LOG/gpu.txt)" > $S
t0=$SECONDS
timeout 45 ./test_cuda --gtest_filter='CudaKernels.*:CudaModel.*:*CudaGemm*:*CudaFixture*' > $LOG/test_cuda.log 2>&1
echo "test_cuda rc=$? $(grep -c '^\[       OK' $LOG/test_cuda.log) ok, $(grep -c '^\[  FAILED  \]' $LOG/test_cuda.log) failed lines ($((SECONDS-t0)) s)" >> $S
grep -E "^\[  FAILED|Failure|rel_error|error" $LOG/test_cuda.log | head -12 >> $S
for b in pcm pcm_base; do
  timeout 20 ./$b bench --device cuda --shape codestral-7b --cuda-prefill 4096 > $LOG/bench_$b.txt 2>&1
  echo "== $b rc=$? ($((SECONDS-t0)) s)" >> $S
  grep -E "copy bandwidth|^\| (T=|B=)" $LOG/bench_$b.txt >> $S
done
timeout 30 ./cuda_decode_kernels > $LOG/kernels.txt 2>&1
echo "== cuda_decode_kernels rc=$? ($((SECONDS-t0)) s)" >> $S
grep -E "^\| [a-zS]|ceiling" $LOG/kernels.txt | grep -v "^| kernel" >> $S
tar czf ${OUT:-/tmp}/logs.tgz -C $LOG .
cat $S
