#!/bin/bash
# Device side of a measurement window (pack: [BINS="pcm test_cuda test_train ..."] bench/window_pack.sh BUILD DEST
# BASE_PCM): test_cuda (and test_train's CUDA tests when packed), compute-sanitizer memcheck / racecheck, the
# codestral-7b prefill (T=4096, 16384) of the variants alternating, ncu per-kernel times of a 2-layer T=16384 prefill,
# the 1.3B training step, ncu sections of chosen kernels. Knobs: TEST_FILTER (test_cuda), CHECK_FILTER (sanitizers;
# SANITIZE=0 skips them), VARIANTS (binaries compared: base = pcm_base, bf16 = pcm, NAME = pcm_NAME packed through
# BINS), TRAIN_BENCH (variants of the training bench, e.g. "bf16 base"), DETAIL_KERNEL / DETAIL_SKIP / DETAIL_COUNT
# (ncu sections of pcm's kernels; DETAIL=0 skips them), TRAIN_NCU=1 (ncu per-kernel times of a 2-layer 1.3B step), BUDGET (seconds), PREFILL=0 (skips the prefill rounds), DECODE_VARIANTS (decode
# bench at B = 1, 16, 64, 128 of each, alternating, 2 rounds; an entry NAME:VAR=VALUE[,VAR=VALUE] runs NAME with that
# environment),
# cuda_decode_kernels when packed (BINS="... cuda_decode_kernels" from the build's bench/). $OUT/summary.txt rewritten after every step; logs.tgz.
cd "$(dirname "$0")"; tar xJf pack.tar.xz
export LD_LIBRARY_PATH=$PWD/lib:$LD_LIBRARY_PATH PCM_TESTDATA_DIR=$PWD/../testdata PCM_BINARY_PATH=$PWD/pcm
L=/tmp/window-logs; rm -rf $L; mkdir -p $L; D=$L/detail.txt; K=$L/key.txt; : > $D; : > $K; T0=$SECONDS
BUDGET=${BUDGET:-480}
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null)
CS=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
left() { [ $((BUDGET - SECONDS + T0)) -gt "$1" ]; }
summary() { { tail -n $((30 - $(wc -l < $K))) $D; cat $K; } > $OUT/summary.txt; tar czf $OUT/logs.tgz -C $L --exclude='*.csv' . 2>/dev/null; }
tst() {  # binary, timeout, filter, log name
  local t=$SECONDS n=${4:-$1}; timeout $2 ./$1 --gtest_filter="$3" > $L/$n.log 2>&1; local rc=$?
  echo "$n rc=$rc $((SECONDS-t))s: $(grep -c '^\[       OK' $L/$n.log) ok, failed: $(grep '^\[  FAILED  \]' $L/$n.log | grep -v listed | awk '{print $4}' | sort -u | tr '\n' ' ')" >> $K
  grep -B2 -A4 "Failure" $L/$n.log | grep -E "Which is|evaluates|rel_error|Expected" | head -4 >> $D
}
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv,noheader > $L/gpu.txt 2>&1
echo "gpu: $(cat $L/gpu.txt)" >> $D
tst test_cuda 240 "${TEST_FILTER:-*}" test_cuda
[ -x ./test_train ] && tst test_train 90 '*Cuda*'
# main's tests when this build's fail (packed as test_cuda_base): tells a patch's failure from main's
[ -x ./test_cuda_base ] && grep -q '^\[  FAILED  \]' $L/test_cuda.log && tst test_cuda_base 240 '*'
summary
if [ -n "$CS" ] && [ "${SANITIZE:-1}" != 0 ]; then
  for tool in memcheck racecheck; do
    t=$SECONDS; timeout 60 $CS --tool $tool ./test_cuda --gtest_filter="${CHECK_FILTER:-CudaKernels.Conv1dPrefillBf16X:CudaKernels.SsdChunkedPackedBf16X}" > $L/$tool.log 2>&1
    echo "$tool bf16 tests rc=$? $((SECONDS-t))s: $(grep -hoE 'ERROR SUMMARY: [0-9]+ errors|RACECHECK SUMMARY: [0-9]+ hazard[s]?' $L/$tool.log | tr '\n' ' ')" >> $K
    summary
  done
fi
BA="bench --device cuda --shape codestral-7b --cuda-batches 1 --cuda-prefill 4096,16384"
bin() { case $1 in base) echo pcm_base ;; bf16) echo pcm ;; *) echo pcm_$1 ;; esac; }
for r in 1 2 3; do [ "${PREFILL:-1}" = 0 ] && break; for v in ${VARIANTS:-base bf16}; do
  left 60 || continue
  b=$(bin $v)
  t=$SECONDS; timeout 30 ./$b $BA > $L/bench_${v}_$r.txt 2>&1
  echo "prefill $v rc=$? $((SECONDS-t))s: $(grep -E '^\| T=' $L/bench_${v}_$r.txt | awk -F'|' '{printf "%s %s ms; ", $2, $4}')" >> $K
  summary
done; done
for r in 1 2; do for e in ${DECODE_VARIANTS:-}; do
  left 40 || continue
  v=${e%%:*}; env=; [ "$e" != "$v" ] && env=${e#*:}; env=${env//,/ }; b=$(bin $v)
  t=$SECONDS; env $env timeout 30 ./$b bench --device cuda --shape codestral-7b --cuda-prefill 4096 --decode-tokens 64 \
    > $L/decode_${e//[:=]/_}_$r.txt 2>&1
  echo "decode $e rc=$? $((SECONDS-t))s ms (% roofline) B=1,16,64,128 fp32|bf16: $(grep -E '^\| B=' \
    $L/decode_${e//[:=]/_}_$r.txt | awk -F'|' '{printf "%s(%s)", $4, $7}' | tr -s ' ')" >> $K
  summary
done; done
for e in default ${KERNELS_ENVS:-}; do  # KERNELS_ENVS: VAR=VALUE[,VAR=VALUE] per extra run of the kernel bench
  [ -x ./cuda_decode_kernels ] && left 40 || continue
  env=; [ $e != default ] && env=${e//,/ }
  t=$SECONDS; env $env timeout 40 ./cuda_decode_kernels > $L/decode_kernels_$e.txt 2>&1
  echo "cuda_decode_kernels $e rc=$? $((SECONDS-t))s" >> $K
  grep -E "^\| (SSD step|conv decode|layer unfused|gated rmsnorm T|rmsnorm T)" $L/decode_kernels_$e.txt | grep -v algo |
    awk -F'|' '{printf "%s %s;", $2, $3}' | tr -s ' ' | fold -w 150 >> $K
  echo >> $K
  summary
done
agg() { python3 - "$1" "$2" <<'PY'
import csv, sys, collections
h = None; t = collections.defaultdict(float)
for r in csv.reader(open(sys.argv[1])):
    if "Kernel Name" in r: h = r; continue
    if h and len(r) == len(h) and r[h.index("Metric Name")] == "gpu__time_duration.sum":
        k = r[h.index("Kernel Name")].replace("void ", "").replace("pcm::cuda::", "").replace("(anonymous namespace)::", "")
        k = k.replace("<unnamed>::", "").split("(")[0][:40]
        t[k] += float(r[h.index("Metric Value")].replace(",", "")) / float(sys.argv[2])  # ns over layers x passes -> us/layer
print(" | ".join(f"{k} {v:.0f}" for k, v in sorted(t.items(), key=lambda x: -x[1]) if v >= 20) + f" | total {sum(t.values()):.0f}")
PY
}
B2="bench --device cuda --shape codestral-7b --layers 2 --cuda-batches 1 --cuda-prefill 16384 --decode-tokens 1 --prompt-tokens 1"
for v in ${VARIANTS:-bf16 base}; do
  [ -n "$NCU" ] && left 40 || continue
  b=$(bin $v)
  # pcm bench after dd30c7b: a warm-up pass of each prefill length, then the median of 5: 2 layers x 6 passes of
  # 16384 rows (GEMMs on the heuristic's choice: PCM_GEMM_TUNE=0); up to dd30c7b 2 layers x (2048 + 16384) rows
  div=${NCU_DIV:-12e3}; [ $v = base ] && div=${NCU_DIV_BASE:-2e3}
  t=$SECONDS; PCM_GEMM_TUNE=0 timeout 35 $NCU --clock-control none --metrics gpu__time_duration.sum --csv --print-units base ./$b $B2 > $L/ncu_$v.csv 2> $L/ncu_$v.err
  echo "ncu $v rc=$? $((SECONDS-t))s us/layer T=16384: $(agg $L/ncu_$v.csv $div | tr '|' '\n' | grep -E "tc::|conv|cb_|cumsum|transpose|gated|rmsnorm|nvjet|total" | tr '\n' '|')" | fold -w 150 >> $K
  summary
done
for v in ${TRAIN_BENCH:-}; do
  left 40 || continue
  b=$(bin $v)
  t=$SECONDS; PCM_TRAIN_PROFILE=1 timeout 40 ./$b bench --train --device cuda --shape mamba2-1.3b --seq-len 2048 --batch 4 --steps 3 > $L/train_$v.txt 2>&1
  echo "train 1.3B b4 $v rc=$? $((SECONDS-t))s: $(grep -oE 'ms/step [0-9.]+|tokens/s [0-9]+|loss [0-9.]+' $L/train_$v.txt | tr '\n' ' ') fwd ssd $(grep -oE 'fwd: ssd +[0-9.]+' $L/train_$v.txt | grep -oE '[0-9.]+$') bwd ssd $(grep -oE 'bwd: ssd +[0-9.]+' $L/train_$v.txt | grep -oE '[0-9.]+$') ms" >> $K
  summary
done
if [ -n "$NCU" ] && [ "${TRAIN_NCU:-0}" = 1 ] && left 60; then  # per-kernel µs of a 2-layer 1.3B training step
  t=$SECONDS; PCM_GEMM_TUNE=0 timeout 60 $NCU --clock-control none --metrics gpu__time_duration.sum --csv --print-units base ./pcm bench \
    --train --device cuda --shape mamba2-1.3b --layers 2 --seq-len 2048 --batch 4 --steps 1 > $L/ncu_train.csv 2> $L/ncu_train.err
  echo "ncu train rc=$? $((SECONDS-t))s (per kernel: launches, mean µs, total ms; all steps of the run)" >> $K
  python3 - $L/ncu_train.csv >> $K <<'PY'
import csv, sys, collections
h = None; t = collections.defaultdict(float); n = collections.Counter()
for r in csv.reader(open(sys.argv[1])):
    if "Kernel Name" in r: h = r; continue
    if h and len(r) == len(h) and r[h.index("Metric Name")] == "gpu__time_duration.sum":
        k = r[h.index("Kernel Name")].replace("void ", "").replace("pcm::cuda::", "").replace("(anonymous namespace)::", "")
        k = k.replace("<unnamed>::", "").split("(")[0][:48]
        t[k] += float(r[h.index("Metric Value")].replace(",", "")) / 1e3; n[k] += 1
for k, v in sorted(t.items(), key=lambda x: -x[1])[:28]: print(f"  {k} {n[k]}x {v / n[k]:.1f} us = {v / 1e3:.2f} ms")
PY
  summary
fi
if [ -n "$NCU" ] && [ "${DETAIL:-1}" != 0 ] && left 40; then
  t=$SECONDS; timeout 40 $NCU --clock-control none --section SpeedOfLight --section Occupancy --section LaunchStats \
    --section WarpStateStats --section MemoryWorkloadAnalysis -k "regex:${DETAIL_KERNEL:-chunk_output}" --launch-skip ${DETAIL_SKIP:-2} --launch-count ${DETAIL_COUNT:-2} ./pcm $B2 > $L/ncu_detail.txt 2>&1
  echo "ncu sections rc=$? $((SECONDS-t))s" >> $K
  grep -E "${DETAIL_KERNEL:-chunk_output}|Duration|DRAM Throughput|Mem Busy|Max Bandwidth|Registers Per|Achieved Occupancy|Theoretical Occ|Block Limit (Reg|Sha)|Issue Slots Busy|No Eligible|Warp Cycles Per Issued|Compute \(SM\) Th|Memory Throughput" \
    $L/ncu_detail.txt | cut -c1-100 >> $D
  summary
fi
echo "done at $((SECONDS-T0))s" >> $D
summary
cat $OUT/summary.txt
