#!/bin/bash
# Device side of the ssdpass calls (bench/ssdpass_pack.sh makes the pack): C·Bᵀ on mma.sync and the state pass folded
# into the tc chunk states ("fold"; windows 1-2 also ran the knobs since removed). SSD tests of test_cuda, memcheck
# of two backward cases; codestral-7b prefill (T=4096, 16384, B=1) of pcm_base (main) and pcm, alternating; ncu
# per-kernel times of a 2-layer T=16384 prefill of both; the 1.3B training bench of both (3 steps).
# $OUT/summary.txt rewritten after every step, key lines last; logs.tgz.
cd "$(dirname "$0")"; tar xJf pack.tar.xz
export LD_LIBRARY_PATH=$PWD/lib:$LD_LIBRARY_PATH PCM_TESTDATA_DIR=$PWD/../testdata PCM_BINARY_PATH=$PWD/pcm
L=/tmp/ssdpass-logs; rm -rf $L; mkdir -p $L; D=$L/detail.txt; K=$L/key.txt; : > $D; : > $K; T0=$SECONDS
BUDGET=${BUDGET:-145}
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null)
left() { [ $((BUDGET - SECONDS + T0)) -gt "$1" ]; }
summary() { { tail -n $((24 - $(wc -l < $K))) $D; cat $K; } > $OUT/summary.txt; tar czf $OUT/logs.tgz -C $L --exclude='*.csv' . 2>/dev/null; }
tst() {  # binary, timeout, filter, log name
  local t=$SECONDS n=${4:-$1}; timeout $2 ./$1 --gtest_filter="$3" > $L/$n.log 2>&1; local rc=$?
  echo "$n rc=$rc $((SECONDS-t))s: $(grep -c '^\[       OK' $L/$n.log) ok, failed: $(grep '^\[  FAILED  \]' $L/$n.log | grep -v listed | awk '{print $4}' | sort -u | tr '\n' ' ')" >> $K
  grep -B2 -A4 "Failure" $L/$n.log | grep -E "Which is|evaluates|rel_error|Expected" | head -2 >> $D
}
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw,temperature.gpu --format=csv,noheader > $L/gpu.txt 2>&1
echo "gpu: $(cat $L/gpu.txt)" >> $D
SSD='CudaKernels.SsdChunked*:Shapes/CudaSsdChunkedBackward.*'
tst test_cuda 60 "$SSD"
summary
CS=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [ -n "$CS" ]; then
  t=$SECONDS; timeout 30 $CS --tool memcheck ./test_cuda --gtest_filter='Shapes/CudaSsdChunkedBackward.*/1:Shapes/CudaSsdChunkedBackward.*/10' > $L/memcheck.log 2>&1
  echo "memcheck bwd /1 /10 rc=$? $((SECONDS-t))s: $(grep -hoE 'ERROR SUMMARY: [0-9]+ errors' $L/memcheck.log)" >> $K
  summary
fi
[ -x ./test_train ] && tst test_train 40 '*Cuda*'
summary
BA="bench --device cuda --shape codestral-7b --cuda-batches 1 --cuda-prefill 4096,16384"
for r in 1 2; do for v in base fold; do
  b=pcm; [ $v = base ] && b=pcm_base
  t=$SECONDS; timeout 20 ./$b $BA > $L/bench_${v}_$r.txt 2>&1
  echo "prefill $v rc=$? $((SECONDS-t))s: $(grep -E '^\| T=' $L/bench_${v}_$r.txt | awk -F'|' '{printf "%s %s ms; ", $2, $4}')" >> $K
  summary
done; done
agg() { python3 - "$1" <<'PY'
import csv, sys, collections
h = None; t = collections.defaultdict(float); n = collections.Counter()
for r in csv.reader(open(sys.argv[1])):
    if "Kernel Name" in r: h = r; continue
    if h and len(r) == len(h) and r[h.index("Metric Name")] == "gpu__time_duration.sum":
        k = r[h.index("Kernel Name")].replace("void ", "").replace("pcm::cuda::", "").replace("(anonymous namespace)::", "")
        k = k.replace("<unnamed>::", "").split("(")[0][:40]
        t[k] += float(r[h.index("Metric Value")].replace(",", "")) / 2e3; n[k] += 1  # ns over 2 layers -> us/layer
print(" | ".join(f"{k} {v:.0f}" for k, v in sorted(t.items(), key=lambda x: -x[1]) if v >= 20) + f" | total {sum(t.values()):.0f}")
PY
}
B2="bench --device cuda --shape codestral-7b --layers 2 --cuda-batches 1 --cuda-prefill 16384 --decode-tokens 1 --prompt-tokens 1"
for v in fold base; do
  [ -n "$NCU" ] && left 25 || continue
  b=pcm; [ $v = base ] && b=pcm_base
  t=$SECONDS; timeout 25 $NCU --clock-control none --metrics gpu__time_duration.sum --csv --print-units base ./$b $B2 > $L/ncu_$v.csv 2> $L/ncu_$v.err
  echo "ncu $v rc=$? $((SECONDS-t))s us/layer T=16384: $(agg $L/ncu_$v.csv | tr '|' '\n' | grep -E 'tc::|cb_|state_pass|cumsum|transpose|total' | tr '\n' '|')" | fold -w 150 >> $D
  summary
done
for v in fold base; do
  left 22 || continue
  b=pcm; [ $v = base ] && b=pcm_base
  t=$SECONDS; PCM_TRAIN_PROFILE=1 timeout 30 ./$b bench --train --device cuda --shape mamba2-1.3b --seq-len 2048 --batch 4 --steps 3 > $L/train_$v.txt 2>&1
  echo "train 1.3B b4 $v rc=$? $((SECONDS-t))s: $(grep -oE 'ms/step [0-9.]+|tokens/s [0-9]+|loss [0-9.]+' $L/train_$v.txt | tr '\n' ' ') fwd ssd $(grep -oE 'fwd: ssd +[0-9.]+' $L/train_$v.txt | grep -oE '[0-9.]+$') bwd ssd $(grep -oE 'bwd: ssd +[0-9.]+' $L/train_$v.txt | grep -oE '[0-9.]+$') ms" >> $K
  summary
done
echo "done at $((SECONDS-T0))s" >> $D
summary
cat $OUT/summary.txt
