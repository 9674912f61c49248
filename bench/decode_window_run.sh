#!/bin/bash
# One decode window (the pack's run.sh; bench/cuda_perf_pack.sh makes the pack): the kernel + model tests
# with the block-per-tile SSD kernel, the persistent-stream SSD test alone (a hang costs only its timeout),
# pcm bench of this build (default kernels when the stream test passed) and main's (pcm_base),
# cuda_decode_kernels, then pcm bench with the stream kernel for fp32 state too. $OUT/summary.txt is
# written as it goes.
cd "$(dirname "$0")"
tar xJf pack.tar.xz
export LD_LIBRARY_PATH=$PWD/lib:$LD_LIBRARY_PATH PCM_TESTDATA_DIR=$PWD/../testdata LOG=/tmp/pcm-d6-logs
S=${OUT:-/tmp}/summary.txt
rm -rf $LOG; mkdir -p $LOG
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu --format=csv > $LOG/gpu.txt 2>&1
echo "gpu: $(tail -1 $LOG/gpu.txt)" > $S
t0=$SECONDS
bench() {  # NAME BINARY [ARGS...]: pcm bench at Codestral's shape, its table into the summary
  local name=$1 bin=$2; shift 2
  timeout 18 ./$bin bench --device cuda --shape codestral-7b --cuda-prefill 4096 "$@" > $LOG/bench_$name.txt 2>&1
  echo "== $name rc=$? ($((SECONDS-t0)) s)" >> $S
  grep -E "copy bandwidth|^\| (T=|B=)" $LOG/bench_$name.txt >> $S
}
PCM_SSD_DECODE=tile timeout 40 ./test_cuda --gtest_filter='CudaKernels.*:CudaModel.*:*CudaGemm*:*CudaFixture*:-*StreamAndTile*' > $LOG/test_cuda.log 2>&1
echo "test_cuda (tile) rc=$? $(grep -c '^\[       OK' $LOG/test_cuda.log) ok, $(grep -c '^\[  FAILED  \]' $LOG/test_cuda.log) failed lines ($((SECONDS-t0)) s)" >> $S
grep -E "^\[  FAILED|Failure|rel_error|error" $LOG/test_cuda.log | head -12 >> $S
timeout 12 ./test_cuda --gtest_filter='*StreamAndTile*:*SsdDecode*' > $LOG/test_stream.log 2>&1
rc=$?
echo "test stream rc=$rc $(grep -c '^\[       OK' $LOG/test_stream.log) ok ($((SECONDS-t0)) s)" >> $S
grep -E "^\[  FAILED|Failure|rel_error|error" $LOG/test_stream.log | head -8 >> $S
if [ $rc = 0 ]; then bench pcm pcm; else PCM_SSD_DECODE=tile bench pcm_tile pcm; fi
bench pcm_base pcm_base
timeout 25 ./cuda_decode_kernels > $LOG/kernels.txt 2>&1
echo "== cuda_decode_kernels rc=$? ($((SECONDS-t0)) s)" >> $S
grep -E "^\| [a-zS]|ceiling" $LOG/kernels.txt | grep -v "^| kernel" >> $S
[ $rc = 0 ] && PCM_SSD_DECODE=stream bench pcm_stream_fp32 pcm --cuda-batches 64,128
[ $rc = 0 ] && PCM_SSD_DECODE=tile bench pcm_tile pcm --cuda-batches 64,128
tar czf ${OUT:-/tmp}/logs.tgz -C $LOG .
cat $S
