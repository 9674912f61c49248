#!/bin/bash
# Device side of helper trainhost's calls (bench/trainhost_pack.sh makes the pack): the CUDA training tests,
# the row-wise kernels alone (bench/cuda_train_kernels.cpp), the 48-layer 1.3B training bench with the
# per-phase table and the tuned products' choices (this build, then pcm_base = main), batch 8 with
# --recompute, a per-kernel ncu of a 2-layer step, every cuBLASLt candidate of the step's products, ncu
# sections of the row-wise backward kernels. $OUT/summary.txt is rewritten after every step (<= 25 lines,
# the key lines last); logs in $OUT/logs.tgz.
cd "$(dirname "$0")"; tar xJf pack.tar.xz
export LD_LIBRARY_PATH=$PWD/lib:$LD_LIBRARY_PATH PCM_TESTDATA_DIR=$PWD/../testdata PCM_BINARY_PATH=$PWD/pcm
L=/tmp/trainhost-logs; rm -rf $L; mkdir -p $L; R=$L/raw.txt; : > $R
BUDGET=${BUDGET:-95}
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu 2>/dev/null)
left() { [ $((BUDGET - SECONDS)) -gt "$1" ]; }
summary() { python3 - $L > $OUT/summary.txt <<'PY'
import csv, collections, os, re, sys
L = sys.argv[1]
def rd(n):
    p = os.path.join(L, n)
    return open(p, errors="replace").read() if os.path.exists(p) else ""
pats = (("gated_rmsnorm_backward|gated_bwd_staged", "gbwd"), ("rmsnorm_backward|rms_bwd_staged", "rbwd"), ("conv_backward", "convbwd"),
        ("grad_kernel", "xgrad"), ("to_bf16", "tobf16"), ("stats_kernel", "xstats"), ("conv_prefill", "convfwd"),
        ("gated_rmsnorm", "gfwd"), ("rmsnorm_kernel", "rfwd"), ("adamw", "adamw"), ("nvjet|gemm|sm90_xmma", "gemm"))
out = []
for n in ("train2l", "train2l_base"):
    t = collections.defaultdict(float); c = collections.Counter(); h = None; tot = 0.0
    for r in csv.reader(rd(n + ".csv").splitlines()):
        if "Kernel Name" in r: h = r; continue
        if h and len(r) == len(h) and r[h.index("Metric Name")] == "gpu__time_duration.sum":
            v = float(r[h.index("Metric Value")].replace(",", "")) / 1e3  # us, one step of 2 layers
            tot += v
            k = r[h.index("Kernel Name")]
            for p, s in pats:
                if re.search(p, k): t[s] += v; c[s] += 1; break
    if t:
        out.append(f"{n} us per launch (x launches): " + " ".join(f"{k} {v / c[k]:.0f}x{c[k]}" for k, v in
                   sorted(t.items(), key=lambda x: -x[1])) + f" | all kernels {tot:.0f} us")
out += [l for l in rd("raw.txt").splitlines() if l]
print("\n".join(out[-25:]))
PY
}
t=$SECONDS; timeout 40 ./test_train --gtest_filter='*Cuda*' > $L/test_train.log 2>&1
echo "test_train Cuda rc=$? ok=$(grep -c '^\[       OK' $L/test_train.log) failed=$(grep -c '^\[  FAILED  \]' $L/test_train.log) $((SECONDS-t))s; $(grep -h '^bf16 ' $L/test_train.log | tr '\n' ' ')" >> $R
grep -h "^\[  FAILED  \]" $L/test_train.log | sort -u | head -3 >> $R
summary
if [ -x ./test_cuda ] && left 60; then
  t=$SECONDS; timeout 30 ./test_cuda > $L/test_cuda.log 2>&1
  echo "test_cuda rc=$? ok=$(grep -c '^\[       OK' $L/test_cuda.log) failed=$(grep -c '^\[  FAILED  \]' $L/test_cuda.log) $((SECONDS-t))s" >> $R
  grep -h "^\[  FAILED  \]" $L/test_cuda.log | sort -u | head -3 >> $R
  summary
fi
# bench NAME BINARY [VAR=value ...]: the 48-layer bench with the environment given
bench() { n=$1; b=$2; shift 2; t=$SECONDS; env PCM_TRAIN_PROFILE=1 "$@" timeout 45 ./$b bench --train --device cuda --shape mamba2-1.3b --seq-len 2048 --batch 4 --steps 6 > $L/train_$n.txt 2>&1
  echo "train48 $n rc=$? $((SECONDS-t))s: $(grep -oE 'ms/step [0-9.]+|peak device memory [0-9.]+ GB|loss [0-9.]+' $L/train_$n.txt | tr '\n' ' ')" >> $R
  echo "  phases $n: $(grep -E '^  (bwd|fwd|head)' $L/train_$n.txt | awk '{n=$0; v=$(NF-1); sub(/^ +/,"",n); sub(/ +[0-9.]+ ms$/,"",n); gsub(/ /,"",n); gsub(/gatednorm/,"gn",n); gsub(/recompute(xn,)?conv/,"recomp",n); gsub(/:norm\+loss\+grads/,"",n); printf "%s=%s ", n, v}')" >> $R; }
# the step's kernels other than the products (their first-use tuning would be profiled too; the GEMM table
# below times them)
KS='regex:conv|norm|staged|grad_kernel|stats_kernel|adamw|to_bf16|chunk_|state_pass|cb_kernel|cumsum|embedding|scatter|dt_|u_kernel|dx_kernel|bc_kernel|dcb|scalars|sum_|partials'
prof() { n=$1; shift; timeout 30 $NCU --clock-control none -k "$KS" --metrics gpu__time_duration.sum --csv --print-units base "$@" > $L/$n.csv 2> $L/$n.err; }
T2="bench --train --device cuda --shape mamba2-1.3b --layers 2 --seq-len 2048 --batch 4 --steps 1"
if [ -x ./cuda_train_kernels ]; then  # the row-wise kernels alone
  timeout 20 ./cuda_train_kernels rowwise > $L/rowwise.txt 2>&1
  echo "rowwise rc=$?: $(sed -E 's/ +/ /g; s/ \([0-9]+ MB\)//' $L/rowwise.txt | tr '\n' ';')" >> $R; summary
fi
bench pcm pcm  # (PCM_TRAIN_PROFILE=1 also logs each product shape's tuned choice)
echo "  tune: $(grep -h '^train gemm' $L/train_pcm.txt | sed -E 's/^train gemm //; s/reference /ref /g; s/chosen //; s/ us//g' | tr '\n' ';')" >> $R
summary
left 20 && bench pcm_base pcm_base; summary
if left 25; then  # batch 8 with --recompute (main: 647.8 ms, 35.7 GB)
  t=$SECONDS; timeout 40 ./pcm bench --train --device cuda --shape mamba2-1.3b --seq-len 2048 --batch 8 --recompute --steps 3 > $L/train_rc8.txt 2>&1
  echo "train48 b8 recompute pcm rc=$? $((SECONDS-t))s: $(grep -oE 'ms/step [0-9.]+|peak device memory [0-9.]+ GB' $L/train_rc8.txt | tr '\n' ' ')" >> $R; summary
fi
left 25 && prof train2l ./pcm $T2; summary
if [ -x ./cuda_train_kernels ] && left 15; then  # every cuBLASLt candidate of each training product vs TrainGemm
  timeout 30 ./cuda_train_kernels gemm > $L/gemm.txt 2>&1
  grep -E "^[A-Za-z_+ ]+ +[0-9]+ x" $L/gemm.txt | sed -E 's/ +/ /g' | cut -c1-150 >> $R; summary
fi
[ -n "$WITH_BASE_NCU" ] && left 25 && prof train2l_base ./pcm_base $T2; summary
if left 20; then
  timeout 20 $NCU --clock-control none -k 'regex:gated_rmsnorm_backward|rmsnorm_backward|conv_backward' --launch-count 3 \
    --section SpeedOfLight --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis \
    ./pcm $T2 > $L/sections.txt 2>&1
fi
echo "done at ${SECONDS}s" >> $R
summary
tar czf $OUT/logs.tgz -C $L . 2>/dev/null
cat $OUT/summary.txt
