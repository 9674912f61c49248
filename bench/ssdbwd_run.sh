#!/bin/bash
# Device side of the SSD-backward calls (bench/ssdbwd_pack.sh makes the pack): chunked-backward tests + train
# tests, memcheck/racecheck of two cases, per-kernel ncu of a 2-layer 1.3B training step, ncu sections of the
# tc kernels, the 48-layer 1.3B training bench (this build, then pcm_base). $OUT/summary.txt is short (the
# device returns little): one line per item, the most important last; full logs in $OUT/logs.tgz if room.
cd "$(dirname "$0")"; tar xJf pack.tar.xz
export LD_LIBRARY_PATH=$PWD/lib:$LD_LIBRARY_PATH PCM_TESTDATA_DIR=$PWD/../testdata PCM_BINARY_PATH=$PWD/pcm
L=/tmp/ssdbwd-logs; rm -rf $L; mkdir -p $L; R=$L/raw.txt; : > $R
BUDGET=${BUDGET:-125}  # seconds: optional steps are skipped past it (the call allows ~150)
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null)
CS=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
left() { [ $((BUDGET - SECONDS)) -gt "$1" ]; }
summary() { tail -n 1 $R; python3 - $L > $OUT/summary.txt <<'PY'
import csv, collections, glob, os, re, sys
L = sys.argv[1]
def rd(n):
    p = os.path.join(L, n)
    return open(p, errors="replace").read() if os.path.exists(p) else ""
out, tables = [], []
def short(k):
    for pat, s in (("transpose_bc", "transp"), ("round_bc", "round"), ("u_kernel", "u"), ("dcb_kernel", "dcb"),
                   ("dx_kernel_base", "dx(main)"), ("dx_kernel", "dx"), (r"bc_kernel<(true|1)", "dC"), (r"bc_kernel<(false|0)", "dB"), ("bc_kernel", "bc"),
                   ("chunk_states", "cstates(fwd+bwd)"), ("dstate_pass", "pass"), ("scalars", "scal"), ("group_sum", "gsum")):
        if re.search(pat, k): return s
    return None
for n in ("train2l", "train2l_base"):
    t = collections.defaultdict(float); h = None
    for r in csv.reader(rd(n + ".csv").splitlines()):
        if "Kernel Name" in r: h = r; continue
        if h and len(r) == len(h) and r[h.index("Metric Name")] == "gpu__time_duration.sum":
            s = short(r[h.index("Kernel Name")])
            if s: t[s] += float(r[h.index("Metric Value")].replace(",", "")) / 4e3  # us per layer per step
    if t:
        tables.append(f"{n} us/layer: " + " ".join(f"{k} {v:.0f}" for k, v in sorted(t.items(), key=lambda x: -x[1]))
                   + f" | ssd bwd {sum(t.values()):.0f}")
sec = rd("sections.txt") + rd("sections_base.txt")
for blk in re.split(r"\n  (?=(?:void )?[a-zA-Z_:<>]+kernel)", sec)[1:]:
    name = short(blk.split("(")[0]) or blk[:20]
    def m(label):
        x = re.search(label + r"\s+\S*\s+([\d.,]+)\s*\n", blk)
        return x.group(1) if x else "?"
    st = re.search(r"spends ([\d.]+) cycles being stalled waiting for a scoreboard dependency on\s+a? ?(\S+)", blk)
    out.append(f"sect {name}: {m('Duration')}us occ {m('Achieved Occupancy')}% elig {m('Eligible Warps Per Scheduler')}"
               f" cyc/iss {m('Warp Cycles Per Issued Instruction')} L2hit {m('L2 Hit Rate')} regs {m('Registers Per Thread')}"
               + (f" L1TEX-stall {st.group(1)}" if st else ""))
    stalls = re.findall(r"smsp__average_warps_issue_stalled_(\w+?)_per_issue_active.ratio\s+\S*\s+([\d.]+)", blk)
    def met(n):  # a counter of the metrics list, in millions
        x = re.search(n + r"\s+\S*\s+([\d.,]+)\s*\n", blk)
        return f"{float(x.group(1).replace(',', '')) / 1e6:.2f}M" if x else "?"
    tensor = re.search(r"sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active\s+\S*\s+([\d.]+)", blk)
    out.append(f"  {name}: inst {met('smsp__inst_executed.sum')} lsu-wavefr {met('l1tex__data_pipe_lsu_wavefronts.sum')} "
               f"L2-rd-sect {met('lts__t_sectors_srcunit_tex_op_read.sum')} shm-wavefr "
               f"{met('l1tex__data_pipe_lsu_wavefronts_mem_shared.sum')} confl "
               f"{met('l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum')} tensor% {tensor.group(1) if tensor else '?'} | "
               + " ".join(f"{k[:6]} {float(v):.1f}" for k, v in stalls if float(v) >= 0.3))
out += tables + [l for l in rd("raw.txt").splitlines() if l]
print("\n".join(out[-25:]))
PY
}
t=$SECONDS; timeout 40 ./test_cuda --gtest_filter='Shapes/CudaSsdChunkedBackward.*:CudaKernels.SsdChunked*' > $L/test_ssd.log 2>&1; rc=$?
mx=$(grep -oE "chunked-tc vs CPU: rel err dxbc [0-9.e+-]+ ddt [0-9.e+-]+ dA [0-9.e+-]+" $L/test_ssd.log | awk '{if($7>a)a=$7; if($9>b)b=$9; if($11>c)c=$11} END{print "max dxbc",a,"ddt",b,"dA",c}')
echo "tests ssd rc=$rc ok=$(grep -c '^\[       OK' $L/test_ssd.log) failed=$(grep -c '^\[  FAILED  \]' $L/test_ssd.log) (tc vs CPU $mx) $((SECONDS-t))s" >> $R
if [ -x ./test_train ]; then
  t=$SECONDS; timeout 40 ./test_train --gtest_filter='*Cuda*' > $L/test_train.log 2>&1
  echo "test_train rc=$? ok=$(grep -c '^\[       OK' $L/test_train.log) failed=$(grep -c '^\[  FAILED  \]' $L/test_train.log) $((SECONDS-t))s" >> $R
fi
grep -h "^\[  FAILED  \]" $L/test_*.log | sort -u | head -3 >> $R
summary
prof() { n=$1; shift; timeout 45 $NCU --clock-control none --metrics gpu__time_duration.sum --csv --print-units base "$@" > $L/$n.csv 2> $L/$n.err; }
bench() { b=$1; t=$SECONDS; PCM_TRAIN_PROFILE=1 timeout 60 ./$b bench --train --device cuda --shape mamba2-1.3b --seq-len 2048 --batch 4 --steps 3 > $L/train_$b.txt 2>&1; echo "train48 $b rc=$? $((SECONDS-t))s: $(grep -oE 'ms/step [0-9.]+|tokens/s [0-9]+|loss [0-9.]+' $L/train_$b.txt | tr '\n' ' ') bwd ssd $(grep -oE 'bwd: ssd +[0-9.]+' $L/train_$b.txt | grep -oE '[0-9.]+$') ms" >> $R; }
T2="bench --train --device cuda --shape mamba2-1.3b --layers 2 --seq-len 2048 --batch 4 --steps 1"
left 30 && prof train2l ./pcm $T2
[ "${WITH_BASE_NCU:-1}" = 1 ] && [ -x ./pcm_base ] && left 30 && prof train2l_base ./pcm_base $T2  # the same-call per-kernel baseline
summary
bench pcm
[ -x ./pcm_base ] && bench pcm_base  # the same-call baseline right after (the key comparison)
summary
# memcheck: case 6 (scalar paths: odd strides, N = 48) and 7 (16-byte paths); racecheck (slow): case 9 alone
# (the smallest: 3 heads per group, 130 rows).
CASE=Shapes/CudaSsdChunkedBackward.MatchesCpuAndSequential
for tool in memcheck racecheck; do
  if [ $tool = memcheck ]; then cases="$CASE/6:$CASE/7"; else cases="$CASE/9"; fi
  if left 20 && [ -n "$CS" ]; then
    t=$SECONDS; timeout 25 $CS --tool $tool ./test_cuda --gtest_filter="$cases" > $L/$tool.log 2>&1
    echo "$tool rc=$? $((SECONDS-t))s: $(grep -hoE 'ERROR SUMMARY: [0-9]+ errors|RACECHECK SUMMARY: [0-9]+ hazards' $L/$tool.log | tr '\n' ' ')" >> $R
    summary
  fi
done
COUNTS=smsp__inst_executed.sum,l1tex__data_pipe_lsu_wavefronts.sum,lts__t_sectors_srcunit_tex_op_read.sum,l1tex__data_pipe_lsu_wavefronts_mem_shared.sum,l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active
STALLS=$(for r in barrier long_scoreboard short_scoreboard mio_throttle math_pipe_throttle wait not_selected lg_throttle; do
  printf 'smsp__average_warps_issue_stalled_%s_per_issue_active.ratio,' $r; done | sed 's/,$//')
if left 25; then  # where the tc kernels of one backward layer spend their time (8 launches: chunk states fwd x2 + bwd, u, dcb, dx, dC, dB)
  # the backward's tc kernels only (transpose_bc_kernel / round_bc_kernel / the forward's chunk states excluded)
  timeout 30 $NCU --clock-control none -k 'regex:(^|:)(u|dcb|dx|bc)_kernel' --launch-count 5 \
    --section SpeedOfLight --section Occupancy --section WarpStateStats --section SchedulerStats \
    --section MemoryWorkloadAnalysis --section LaunchStats --metrics "$STALLS,$COUNTS" ./pcm $T2 > $L/sections.txt 2>&1
fi
summary
# main's dx with the same sections and counts (the kernel this session changed most)
if [ -x ./pcm_base ] && left 15; then
  timeout 25 $NCU --clock-control none -k 'regex:(^|:)dx_kernel' --launch-count 1 --section SpeedOfLight --section Occupancy \
    --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis --section LaunchStats \
    --metrics "$STALLS,$COUNTS" ./pcm_base $T2 2>&1 | sed 's/dx_kernel/dx_kernel_base/' > $L/sections_base.txt
fi
summary
echo "done at ${SECONDS}s" >> $R
summary
tar czf $OUT/logs.tgz -C $L . 2>/dev/null
cat $OUT/summary.txt
