#!/bin/bash
# One decode window of helper decode7 (bench/cuda_notes.md, decode v11; pack: bench/decode7_pack.sh with
# main's pcm as pcm_base): the kernel + model tests, pcm bench of this build and of main alternating in the
# same call (full: B = 1, 16, 64, 128; then the fused rows B = 1, 4 with more steps), then
# cuda_decode_kernels. $OUT/summary.txt is rewritten after every step (a call cut off by its
# time limit keeps what finished), the key lines last.
cd "$(dirname "$0")"
tar xJf pack.tar.xz
export LD_LIBRARY_PATH=$PWD/lib:$LD_LIBRARY_PATH PCM_TESTDATA_DIR=$PWD/../testdata LOG=/tmp/pcm-d7-logs
S=${OUT:-/tmp}/summary.txt
rm -rf $LOG; mkdir -p $LOG
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu --format=csv > $LOG/gpu.txt 2>&1
t0=$SECONDS
steps=$LOG/steps.txt; key=$LOG/key.txt; : > $steps; : > $key
flush() { { echo "gpu: $(tail -1 $LOG/gpu.txt)"; head -5 $steps; tail -1 $steps; cat $key; } | tail -25 > $S; }
flush
# Smoke first (the decode kernels alone): if they fail or hang, only main is benched.
timeout 15 ./test_cuda --gtest_filter='*SsdDecode*:*DecodeFused*:*GatedRmsNorm*' > $LOG/smoke.log 2>&1
smoke=$?
echo "smoke rc=$smoke $(grep -c '^\[       OK' $LOG/smoke.log) ok ($((SECONDS-t0)) s)" >> $steps
[ $smoke = 0 ] && mine=pcm || mine=pcm_base
timeout 40 ./test_cuda --gtest_filter='CudaKernels.*:CudaModel.*:*CudaGemm*:*CudaFixture*' > $LOG/test_cuda.log 2>&1
echo "test_cuda rc=$? $(grep -c '^\[       OK' $LOG/test_cuda.log) ok, $(grep -c '^\[  FAILED  \]' $LOG/test_cuda.log) failed lines ($((SECONDS-t0)) s)" >> $steps
grep -E "^\[  FAILED|Failure" $LOG/test_cuda.log | head -3 >> $steps
flush
echo "== pcm bench: ms (% of roofline) at B=1,16,64,128 fp32 | bf16" >> $key
for b in $mine pcm_base $mine pcm_base; do
  n=$(ls $LOG | grep -c "^bench_$b")
  timeout 15 ./$b bench --device cuda --shape codestral-7b --cuda-prefill 4096 --decode-tokens 64 > $LOG/bench_${b}_$n.txt 2>&1
  echo "bench $b rc=$? ($((SECONDS-t0)) s)" >> $steps
  echo "$b: $(grep -E '^\| B=' $LOG/bench_${b}_$n.txt | awk -F'|' '{printf "%s(%s)", $4, $7}' | tr -s ' ')" >> $key
  flush
done
echo "== B=1,4 (200 steps): ms at B=1 fp32, B=4 fp32, B=1 bf16, B=4 bf16" >> $key
for b in $mine pcm_base $mine pcm_base; do
  n=$(ls $LOG | grep -c "^rows_$b")
  timeout 10 ./$b bench --device cuda --shape codestral-7b --cuda-prefill 256 --cuda-batches 1,4 --decode-tokens 200 \
    > $LOG/rows_${b}_$n.txt 2>&1
  echo "rows $b rc=$? ($((SECONDS-t0)) s)" >> $steps
  echo "$b: $(grep -E '^\| B=' $LOG/rows_${b}_$n.txt | awk -F'|' '{printf "%s", $4}' | tr -s ' ')" >> $key
  flush
done
[ $smoke = 0 ] && timeout 25 ./cuda_decode_kernels > $LOG/kernels.txt 2>&1
echo "cuda_decode_kernels rc=$? ($((SECONDS-t0)) s)" >> $steps
grep -E "^\| (in_proj fused|out_proj fused|layer.*row|in_proj \+ out_proj|SSD step (gated )?B=1 |gated rmsnorm|layer unfused)" $LOG/kernels.txt |
  sed 's/ (in_proj + SSD + out_proj)//; s/, programmatic/ prog/' | awk -F'|' '{printf "%s %s\n", $2, $3}' | tr -s ' ' |
  paste -d';' - - >> $key
flush
tar czf ${OUT:-/tmp}/logs.tgz -C $LOG .
cat $S
