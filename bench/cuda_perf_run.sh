#!/bin/bash
# Device side of one measurement call (bench/cuda_perf_pack.sh makes the pack): kernel + model tests for each
# test_cuda* binary, then `pcm bench` for each pcm* binary in the pack; logs in $OUT/logs.tgz, and
# $OUT/summary.txt written as it goes (a call cut off by its time limit keeps what finished).
# Extra per-call steps come from ./extra.sh in the pack when present (it writes into $LOG); BENCH_ARGS
# (environment) is appended to every `pcm bench` line, e.g. --cuda-batches 1 for a prefill-only call.
cd "$(dirname "$0")"
tar xJf pack.tar.xz
export LD_LIBRARY_PATH=$PWD/lib:$LD_LIBRARY_PATH PCM_TESTDATA_DIR=$PWD/../testdata LOG=/tmp/pcm-perf-logs
S=${OUT:-/tmp}/summary.txt
rm -rf $LOG; mkdir -p $LOG  # a warm machine keeps /tmp: no earlier call's logs
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu --format=csv > $LOG/gpu.txt 2>&1
echo "gpu: $(tail -1 $LOG/gpu.txt)" > $S
for t in test_cuda*; do  # each test binary in the pack (a variant build: test_cuda_NAME)
  timeout 200 ./$t --gtest_filter='CudaKernels.*:CudaModel.*:*CudaGemm*:*CudaFixture*' > $LOG/$t.log 2>&1
  echo "$t rc=$? $(grep -c '^\[       OK' $LOG/$t.log) ok, $(grep -c '^\[  FAILED  \]' $LOG/$t.log) failed lines" >> $S
  grep -E "^\[  FAILED|Failure|error" $LOG/$t.log | head -8 >> $S
done
[ -x ./extra.sh ] && ./extra.sh
for b in pcm*; do
  timeout 90 ./$b bench --device cuda --shape codestral-7b $BENCH_ARGS > $LOG/bench_$b.txt 2>&1
  echo "== $b rc=$?" >> $S
  grep -E "copy bandwidth|^\| (T=|B=)" $LOG/bench_$b.txt >> $S
done
if [ -x ./cuda_decode_kernels ]; then
  timeout 60 ./cuda_decode_kernels > $LOG/kernels.txt 2>&1
  echo "== cuda_decode_kernels rc=$?" >> $S
  grep -E "^\| [a-zS]|ceiling" $LOG/kernels.txt | grep -v "^| kernel" >> $S
fi
tar czf ${OUT:-/tmp}/logs.tgz -C $LOG .
grep -E "FAILED|Failure" $LOG/*.log | head -20
cat $S
