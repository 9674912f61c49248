#!/bin/bash
# Device side of decode v27 (bench/cuda_notes.md): the one-row decode as one persistent launch. Its tests first (stop
# if they fail), the v26 probe rows, `pcm bench` at B=1 with PCM_DECODE_PERSISTENT=1 and =0 alternating (ROUNDS,
# default 2), memcheck on the tests, then the whole of test_cuda (most telling first: a short call still answers).
# Pack: BINS="pcm cuda_decode_kernels cuda_persistent_harness test_cuda" RUN=bench/persistent_run.sh
# bench/window_pack.sh BUILD DEST PCM.
cd "$(dirname "$0")"; tar xJf pack.tar.xz
export LD_LIBRARY_PATH=$PWD/lib:$LD_LIBRARY_PATH PCM_TESTDATA_DIR=$PWD/../testdata PCM_BINARY_PATH=$PWD/pcm
CS=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
K=$OUT/key.txt; : > $K
log() { echo "$*" | tee -a $K; }
log "gpu: $(nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw --format=csv,noheader)"
F='CudaModel.PersistentDecode*:CudaKernels.LayerStream*'
timeout ${NEW_S:-240} ./test_cuda --gtest_filter="$F" > $OUT/test_new.log 2>&1; rc=$?
log "new tests rc=$rc: $(grep -c '^\[       OK' $OUT/test_new.log) ok; $(grep -E 'Failure|Expected|Which is|error' $OUT/test_new.log | head -6 | tr '\n' ' ')"
if [ $rc -ne 0 ]; then  # where it faults: the kernel and line (the build has -lineinfo), then stop
  grep -E "Failure|case ok" $OUT/test_new.log | head -14
  # the kernel outside the model: direct or in a graph, with or without the head's PDL launch after it
  for m in direct direct+plainhead direct+head graph graph+plainhead graph+head; do
    [ -x ./cuda_persistent_harness ] && timeout 30 ./cuda_persistent_harness $m 2>&1 | tail -1 | tee -a $K
  done
  # memcheck on the first test that failed (the fixture's when the run ended without a verdict, e.g. a hang)
  first=$(grep '^\[  FAILED  \]' $OUT/test_new.log | grep -v listed | awk '{print $4}' | head -1)
  log "memcheck on ${first:=CudaModel.PersistentDecodeMatchesThreeLaunchesOnFixture}"
  [ -n "$CS" ] && timeout 150 $CS --tool memcheck --print-limit 3 --show-backtrace device ./test_cuda \
    --gtest_filter="$first" > $OUT/memcheck_fail.log 2>&1
  grep -E "Invalid|Address|out of bounds|at .*\.cuh?:[0-9]+|ERROR SUMMARY" $OUT/memcheck_fail.log | head -16 | tee -a $K
  # B=1 in the most default arrangement the fixture's cases passed with (both states), against three launches a layer
  knobs=
  for a in "0 0:direct, plain head" "0 1:graphs, the persistent step launched directly, head under PDL" \
           "1 0:graphs, plain head"; do
    grep -q "case ok: bf16 state, ${a#*:}\$" $OUT/test_new.log && knobs=${a%%:*}
  done
  log "arrangement that works (PCM_DECODE_PERSISTENT_GRAPH, _HEAD_PDL): ${knobs:-none}"
  [ -n "$knobs" ] && for p in 1 0; do
    PCM_DECODE_PERSISTENT_GRAPH=${knobs% *} PCM_DECODE_PERSISTENT_HEAD_PDL=${knobs#* } PCM_DECODE_PERSISTENT=$p \
      timeout 60 ./pcm bench --device cuda --shape codestral-7b --cuda-batches 1 --cuda-prefill 4096 \
      --decode-tokens 64 > $OUT/bench_fallback_p$p.txt 2>&1
    log "bench persistent=$p ($knobs) rc=$?: $(grep -E '^\| B=' $OUT/bench_fallback_p$p.txt | tr -s ' ' | tr '\n' ' ')"
  done
  exit 1
fi
timeout 100 ./cuda_decode_kernels --probe > $OUT/probe.txt 2>&1; log "probe rc=$?"
grep -E "copy|probe|persistent|a launch each|alone" $OUT/probe.txt | tee -a $K
for r in $(seq ${ROUNDS:-2}); do for p in 1 0; do
  PCM_DECODE_PERSISTENT=$p timeout 60 ./pcm bench --device cuda --shape codestral-7b --cuda-batches 1 --cuda-prefill 4096 \
    --decode-tokens 64 > $OUT/bench_p${p}_$r.txt 2>&1
  log "bench persistent=$p round $r rc=$?: $(grep -E '^\| B=' $OUT/bench_p${p}_$r.txt | tr -s ' ' | tr '\n' ' ')"
done; done
if [ -n "$CS" ]; then
  timeout 150 $CS --tool memcheck ./test_cuda --gtest_filter='*PersistentDecode*OnFixture:CudaKernels.LayerStream*' \
    > $OUT/memcheck.log 2>&1
  log "memcheck rc=$? $(grep -h 'ERROR SUMMARY' $OUT/memcheck.log)"
fi
timeout ${TEST_S:-200} ./test_cuda > $OUT/test_cuda.log 2>&1
log "test_cuda rc=$?: $(grep -c '^\[       OK' $OUT/test_cuda.log) ok; failed: $(grep '^\[  FAILED  \]' $OUT/test_cuda.log | grep -v listed | awk '{print $4}' | tr '\n' ' ')"
echo ===; cat $K
