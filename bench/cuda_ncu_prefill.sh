#!/bin/bash
# extra.sh for bench/cuda_perf_run.sh (run from the pack): per-kernel device times of one T=16384 prefill
# layer of codestral-7b under ncu for each pcm* binary (NCU_BINS overrides), then ncu's sections (speed of
# light, occupancy, warp stalls, memory and pipe use, source counters) for the prefill's SSD, conv and norm
# kernels of ./pcm, and the SASS opcode counts of the tensor-core SSD kernels. Logs in $LOG/ncu_*.
# ncu reads counters only on some machines (KINDS.md): a failure here leaves the rest of the call alone.
command -v ncu > /dev/null || { echo "ncu: not found" >> $LOG/summary.txt; exit 0; }
bench="bench --device cuda --shape codestral-7b --layers 1 --cuda-prefill 16384 --cuda-batches 1 --decode-tokens 2"
for b in ${NCU_BINS:-pcm*}; do
  timeout 60 ncu --clock-control none --metrics gpu__time_duration.sum --csv --launch-count 60 ./$b $bench \
    > $LOG/ncu_$b.csv 2> $LOG/ncu_$b.err
  echo "== ncu $b rc=$? (us, one layer of the T=16384 prefill)" >> $LOG/summary.txt
  python3 - $LOG/ncu_$b.csv >> $LOG/summary.txt <<'PY'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 14]
if not rows: print("no rows"); sys.exit()
h = rows[0]; ki, gi, vi, ui = (h.index(k) for k in ("Kernel Name", "Grid Size", "Metric Value", "Metric Unit"))
scale = {"ns": 1e-3, "us": 1, "ms": 1e3, "nsecond": 1e-3, "usecond": 1, "msecond": 1e3}
rows = rows[1:]
start = next((i for i, r in enumerate(rows) if "embedding" in r[ki] and r[gi].startswith("(16384")), None)
if start is None: print("no T=16384 prefill"); sys.exit()
tot = 0.0
for r in rows[start + 1:start + 13]:
  name = r[ki].replace("void ", "").replace("pcm::<unnamed>::", "").replace("tc::<unnamed>::", "tc::").split("(")[0][:44]
  us = float(r[vi].replace(",", "")) * scale.get(r[ui], 1); tot += us
  print(f"  {name:44s} {r[gi]:16s} {us:9.1f}")
print(f"  {'sum':44s} {'':16s} {tot:9.1f}")
PY
done
k='regex:chunk_output_kernel|chunk_states_kernel|conv_prefill4_kernel|gated_rmsnorm_warp_kernel|state_pass_kernel'
timeout 90 ncu --clock-control none --section SpeedOfLight --section Occupancy --section LaunchStats \
  --section WarpStateStats --section ComputeWorkloadAnalysis --section MemoryWorkloadAnalysis --section SourceCounters \
  -k "$k" --launch-skip 5 --launch-count 5 ./pcm $bench > $LOG/ncu_detail.txt 2>&1
echo "== ncu sections rc=$? (full text in logs: ncu_detail.txt)" >> $LOG/summary.txt
grep -E "^  [a-z_]+kernel|tc::|Duration|Memory Throughput|DRAM Throughput|L1/TEX Hit|L2 Hit|Compute \(SM\) Th|Achieved Occupancy|Registers Per|Block Limit|Executed Ipc A|Issue Slots Busy|One or More Eligible|No Eligible" \
  $LOG/ncu_detail.txt | cut -c1-110 >> $LOG/summary.txt
command -v cuobjdump > /dev/null && cuobjdump --dump-sass ./pcm 2> /dev/null | awk '/Function : .*(chunk_output|chunk_states)/{f=$3} /Function : /{if ($3 !~ /chunk_output|chunk_states/) f=""} f' > $LOG/sass_tc.txt
[ -s $LOG/sass_tc.txt ] && echo "== SASS opcodes (tc kernels): $(grep -oE '^\s+/\*[0-9a-f]+\*/\s+[A-Z][A-Z0-9.]+' $LOG/sass_tc.txt | awk '{print $2}' | sed 's/\..*//' | sort | uniq -c | sort -rn | head -14 | awk '{printf "%s %s, ", $2, $1}')" >> $LOG/summary.txt
exit 0
