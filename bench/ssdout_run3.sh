#!/bin/bash
# Window 3 of the bf16-x prefill (pack: RUN=bench/ssdout_run3.sh bench/ssdpass_pack.sh): conv rows per thread
# (PCM_CONV_RUN 8 / 16 / 32) in the codestral-7b prefill against pcm_base; ncu per-kernel times of a 2-layer T=16384
# prefill (all kernels of one layer); ncu sections with stall reasons of the conv and the chunk states.
cd "$(dirname "$0")"; tar xJf pack.tar.xz
export LD_LIBRARY_PATH=$PWD/lib:$LD_LIBRARY_PATH PCM_TESTDATA_DIR=$PWD/../testdata PCM_BINARY_PATH=$PWD/pcm
L=/tmp/ssdout-logs; rm -rf $L; mkdir -p $L; D=$L/detail.txt; K=$L/key.txt; : > $D; : > $K; T0=$SECONDS
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null)
summary() { { tail -n $((40 - $(wc -l < $K))) $D; cat $K; } > $OUT/summary.txt; tar czf $OUT/logs.tgz -C $L --exclude='*.csv' . 2>/dev/null; }
timeout 60 ./test_cuda --gtest_filter='CudaKernels.Conv*' > $L/conv_tests.log 2>&1
echo "conv tests rc=$?: $(grep -c '^\[       OK' $L/conv_tests.log) ok" >> $K
for run in 8 32; do
  PCM_CONV_RUN=$run timeout 60 ./test_cuda --gtest_filter='CudaKernels.Conv1dPrefill*' > $L/conv_tests_$run.log 2>&1
  echo "conv tests run=$run rc=$?: $(grep -c '^\[       OK' $L/conv_tests_$run.log) ok" >> $K
done
summary
BA="bench --device cuda --shape codestral-7b --cuda-batches 1 --cuda-prefill 4096,16384"
for r in 1 2; do for v in base 16 8 32; do
  b=pcm; [ $v = base ] && b=pcm_base
  t=$SECONDS; PCM_CONV_RUN=$v timeout 30 ./$b $BA > $L/bench_${v}_$r.txt 2>&1
  echo "prefill $v rc=$? $((SECONDS-t))s: $(grep -E '^\| T=' $L/bench_${v}_$r.txt | awk -F'|' '{printf "%s %s ms; ", $2, $4}')" >> $K
  summary
done; done
agg() { python3 - "$1" <<'PY'
import csv, sys, collections
h = None; t = collections.defaultdict(float)
for r in csv.reader(open(sys.argv[1])):
    if "Kernel Name" in r: h = r; continue
    if h and len(r) == len(h) and r[h.index("Metric Name")] == "gpu__time_duration.sum":
        k = r[h.index("Kernel Name")].replace("void ", "").replace("pcm::cuda::", "").replace("(anonymous namespace)::", "")
        k = k.replace("<unnamed>::", "").split("(")[0][:40]
        t[k] += float(r[h.index("Metric Value")].replace(",", "")) / 2e3  # ns over 2 layers -> us/layer
print(" | ".join(f"{k} {v:.0f}" for k, v in sorted(t.items(), key=lambda x: -x[1]) if v >= 10) + f" | total {sum(t.values()):.0f}")
PY
}
B2="bench --device cuda --shape codestral-7b --layers 2 --cuda-batches 1 --cuda-prefill 16384 --decode-tokens 1 --prompt-tokens 1"
for v in 16 8 base; do
  [ -n "$NCU" ] || continue
  b=pcm; [ $v = base ] && b=pcm_base
  t=$SECONDS; PCM_CONV_RUN=$v timeout 35 $NCU --clock-control none --metrics gpu__time_duration.sum --csv --print-units base ./$b $B2 > $L/ncu_$v.csv 2> $L/ncu_$v.err
  echo "ncu $v rc=$? $((SECONDS-t))s us/layer T=16384: $(agg $L/ncu_$v.csv)" | fold -w 150 >> $K
  summary
done
if [ -n "$NCU" ]; then
  t=$SECONDS; timeout 45 $NCU --clock-control none --section SpeedOfLight --section Occupancy --section LaunchStats \
    --section WarpStateStats --section MemoryWorkloadAnalysis --section SchedulerStats \
    -k 'regex:conv_prefill4|chunk_states_kernel|chunk_output_bf16' --launch-skip 3 --launch-count 3 ./pcm $B2 > $L/ncu_detail.txt 2>&1
  echo "ncu sections rc=$? $((SECONDS-t))s" >> $K
  m=$(for r in long_scoreboard short_scoreboard barrier wait math_pipe_throttle mio_throttle lg_throttle not_selected selected dispatch_stall no_instruction imc_miss tex_throttle drain membar branch_resolving sleeping; do printf 'smsp__average_warps_issue_stalled_%s_per_issue_active.ratio,' $r; done)
  t=$SECONDS; timeout 45 $NCU --clock-control none --metrics ${m%,} \
    -k 'regex:conv_prefill4|chunk_states_kernel|chunk_output_bf16' --launch-skip 3 --launch-count 3 ./pcm $B2 > $L/ncu_stalls.txt 2>&1
  echo "ncu sections rc=$? $((SECONDS-t))s" >> $K
fi
echo "done at $((SECONDS-T0))s" >> $D
summary
cat $OUT/summary.txt
