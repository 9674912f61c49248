#!/bin/bash
# decode6 window: tests (tile SSD kernel), the persistent-stream SSD test alone (a hang costs only its
# timeout), pcm bench decode6 vs main, cuda_decode_kernels (tile vs stream rows, cuBLASLt algorithms),
# then pcm bench with the stream SSD kernel for bf16. $OUT/summary.txt is written as it goes.
cd "$(dirname "$0")"
tar xJf pack.tar.xz
export LD_LIBRARY_PATH=$PWD/lib:$LD_LIBRARY_PATH PCM_TESTDATA_DIR=$PWD/../testdata LOG=/tmp/pcm-d6-logs
S=${OUT:-/tmp}/summary.txt
rm -rf $LOG; mkdir -p $LOG
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu --format=csv > $LOG/gpu.txt 2>&1
echo "gpu: $(tail -1 $LOG/gpu.txt)" > $S
t0=$SECONDS
PCM_SSD_DECODE=tile timeout 40 ./test_cuda --gtest_filter='CudaKernels.*:CudaModel.*:*CudaGemm*:*CudaFixture*:-*StreamAndTile*' > $LOG/test_cuda.log 2>&1
echo "test_cuda rc=$? $(grep -c '^\[       OK' $LOG/test_cuda.log) ok, $(grep -c '^\[  FAILED  \]' $LOG/test_cuda.log) failed lines ($((SECONDS-t0)) s)" >> $S
grep -E "^\[  FAILED|Failure|rel_error|error" $LOG/test_cuda.log | head -12 >> $S
timeout 12 ./test_cuda --gtest_filter='*StreamAndTile*' > $LOG/test_stream.log 2>&1
echo "test stream rc=$? $(grep -c '^\[       OK' $LOG/test_stream.log) ok ($((SECONDS-t0)) s)" >> $S
grep -E "^\[  FAILED|Failure|rel_error|error" $LOG/test_stream.log | head -8 >> $S
for b in pcm pcm_base; do
  PCM_SSD_DECODE=tile timeout 18 ./$b bench --device cuda --shape codestral-7b --cuda-prefill 4096 > $LOG/bench_$b.txt 2>&1
  echo "== $b (tile) rc=$? ($((SECONDS-t0)) s)" >> $S
  grep -E "copy bandwidth|^\| (T=|B=)" $LOG/bench_$b.txt >> $S
done
timeout 25 ./cuda_decode_kernels > $LOG/kernels.txt 2>&1
echo "== cuda_decode_kernels rc=$? ($((SECONDS-t0)) s)" >> $S
grep -E "^\| [a-zS]|ceiling" $LOG/kernels.txt | grep -v "^| kernel" >> $S
timeout 12 ./pcm bench --device cuda --shape codestral-7b --cuda-prefill 4096 --cuda-batches 64,128 > $LOG/bench_stream.txt 2>&1
echo "== pcm (bf16 state: stream SSD) rc=$? ($((SECONDS-t0)) s)" >> $S
grep -E "^\| B=" $LOG/bench_stream.txt >> $S
tar czf ${OUT:-/tmp}/logs.tgz -C $LOG .
cat $S
