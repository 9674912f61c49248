#!/bin/bash
# Device side of the SSD-backward calls (bench/ssdbwd_pack.sh makes the pack): chunked-backward tests + train
# tests, a memcheck of one case, per-kernel ncu of a 2-layer 1.3B training step (this build and pcm_base),
# the 48-layer 1.3B training bench. Summary in $OUT/summary.txt as it goes, logs in $OUT/logs.tgz.
cd "$(dirname "$0")"; tar xJf pack.tar.xz
export LD_LIBRARY_PATH=$PWD/lib:$LD_LIBRARY_PATH PCM_TESTDATA_DIR=$PWD/../testdata PCM_BINARY_PATH=$PWD/pcm
L=/tmp/ssdbwd-logs; rm -rf $L; mkdir -p $L; S=$OUT/summary.txt; : > $S
BUDGET=${BUDGET:-145}  # seconds: optional steps are skipped past it
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null)
CS=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
left() { [ $((BUDGET - SECONDS)) -gt "$1" ]; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw --format=csv,noheader > $L/gpu.txt 2>&1; cat $L/gpu.txt >> $S
t=$SECONDS; timeout 40 ./test_cuda --gtest_filter='Shapes/CudaSsdChunkedBackward.*' > $L/test_ssd.log 2>&1
echo "test_cuda ssd rc=$? ok=$(grep -c '^\[       OK' $L/test_ssd.log) failed=$(grep -c '^\[  FAILED  \]' $L/test_ssd.log) $((SECONDS-t))s" >> $S
grep -E "chunked-tc vs CPU|Failure|Expected|Which is" $L/test_ssd.log | head -20 >> $S
t=$SECONDS; timeout 40 ./test_train --gtest_filter='*Cuda*' > $L/test_train.log 2>&1
echo "test_train rc=$? ok=$(grep -c '^\[       OK' $L/test_train.log) failed=$(grep -c '^\[  FAILED  \]' $L/test_train.log) $((SECONDS-t))s" >> $S
grep -h "^\[  FAILED  \]" $L/test_*.log | sort -u | head -10 >> $S
agg() { python3 - "$1" <<'PY'
import csv,sys,collections
rows=list(csv.reader(open(sys.argv[1])))
h=None;t=collections.defaultdict(float);n=collections.Counter()
for r in rows:
    if 'Kernel Name' in r: h=r; continue
    if h and len(r)==len(h) and r[h.index('Metric Name')]=='gpu__time_duration.sum':
        k=r[h.index('Kernel Name')][:90]; t[k]+=float(r[h.index('Metric Value')].replace(',',''))/1e3; n[k]+=1
tot=sum(t.values())
for k,v in sorted(t.items(),key=lambda x:-x[1]): print(f"{v:10.1f} us {n[k]:5d}x {100*v/tot:5.1f}%  {k}")
print(f"{tot:10.1f} us total")
PY
}
prof() { n=$1; shift; t=$SECONDS; timeout 45 $NCU --clock-control none --metrics gpu__time_duration.sum --csv --print-units base "$@" > $L/$n.csv 2> $L/$n.err; echo "== ncu $n rc=$? $((SECONDS-t))s" >> $S; agg $L/$n.csv > $L/$n.txt; grep -E "bwd_tc|ssd_chunk|dstate|scalars|group_sum|head_sum|chunk_states" $L/$n.txt | head -16 >> $S; tail -1 $L/$n.txt >> $S; }
bench() { b=$1; t=$SECONDS; PCM_TRAIN_PROFILE=1 timeout 60 ./$b bench --train --device cuda --shape mamba2-1.3b --seq-len 2048 --batch 4 --steps 3 > $L/train_$b.txt 2>&1; echo "== train48 $b rc=$? $((SECONDS-t))s" >> $S; grep -E "ms/step|bwd: ssd|fwd: ssd" $L/train_$b.txt >> $S; }
T2="bench --train --device cuda --shape mamba2-1.3b --layers 2 --seq-len 2048 --batch 4 --steps 1"
left 30 && prof train2l ./pcm $T2
bench pcm
[ -n "$WITH_BASE_NCU" ] && left 25 && prof train2l_base ./pcm_base $T2
C67='Shapes/CudaSsdChunkedBackward.MatchesCpuAndSequential/6:Shapes/CudaSsdChunkedBackward.MatchesCpuAndSequential/7'
for tool in memcheck racecheck; do  # case 6: scalar paths (odd strides, N = 48), 7: 16-byte paths
  if left 20 && [ -n "$CS" ]; then
    t=$SECONDS; timeout 30 $CS --tool $tool ./test_cuda --gtest_filter="$C67" > $L/$tool.log 2>&1
    echo "== $tool cases 6, 7 rc=$? $((SECONDS-t))s: $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' $L/$tool.log | tr '\n' ' ')" >> $S
  fi
done
if left 40; then  # where the tc kernels of one backward layer spend their time (sections, 4 launches)
  t=$SECONDS; timeout 40 $NCU --clock-control none -k 'regex:u_kernel|dcb_kernel|dx_kernel|bc_kernel' --launch-count 5 \
    --section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section SchedulerStats \
    --section MemoryWorkloadAnalysis ./pcm $T2 > $L/sections.txt 2>&1
  echo "== ncu sections rc=$? $((SECONDS-t))s" >> $S
  grep -E "^  (void )?[a-z_:<>0-9A-Z]+kernel|^    Duration|Compute \(SM\) Throughput|^    Memory Throughput|Achieved Occupancy|Registers Per|Warp Cycles Per Issued|L1/TEX Hit|L2 Hit|Issue Slots Busy|Eligible Warps|spends [0-9.]+ cycles" $L/sections.txt | head -80 >> $S
fi
left 25 && bench pcm_base
echo "== done at ${SECONDS}s" >> $S
tar czf $OUT/logs.tgz -C $L .
cat $S
