#!/bin/bash
# Device side of the Triton-baseline call (bench/triton_baseline/pack.sh makes the pack; the lead runs it as
# `bash build-baseline-run/run.sh` with $OUT set): the PyTorch + mamba_ssm Triton baseline's prefill and
# training step, then pcm's on the same GPU, then one table. Every step is under `timeout`; the summary is
# written as it goes. Autotune picks (autotune_*.json) come back in $OUT: packed into the next call, they
# spare it the full autotune (same kernels, minutes less).
cd "$(dirname "$0")"
tar xJf pack.tar.xz
export LD_LIBRARY_PATH=$PWD/lib:$LD_LIBRARY_PATH PCM_TESTDATA_DIR=$PWD/../testdata
export MAMBA_SSM_SRC=$PWD/mamba_src PYTHONUNBUFFERED=1 TRITON_CACHE_DIR=/tmp/baseline-triton-cache TRITON_PRINT_AUTOTUNING=1
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
L=/tmp/baseline-logs; rm -rf $L; mkdir -p $L; S=$OUT/summary.txt; : > $S
tuned() {  # TRITON_PRINT_AUTOTUNING's lines: how many autotunes ran and their seconds (compile included)
  grep -o "finished after [0-9.]*s" "$1" | awk '{n++; s+=$3} END {printf "%d autotunes, %.1f s", n, s}'
}
# seconds per step; the first call (no picks packed) gives the autotune more. Steps marked optional run only
# while the whole stays under 180 s.
if [ -f triton_baseline/autotune_train.json ]; then TP=40 TT=60 TPP=12 TPT=22 TPT8=30 TPC=30; else TP=70 TT=90 TPP=30 TPT=35 TPT8=0 TPC=0; fi
fits() { [ "$1" -gt 0 ] && [ $((SECONDS + $1)) -le 180 ]; }
for f in prefill train; do [ -f triton_baseline/autotune_$f.json ] && cp triton_baseline/autotune_$f.json $OUT/; done
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,clocks.mem,power.draw,temperature.gpu --format=csv > $L/gpu.txt 2>&1
echo "gpu: $(tail -1 $L/gpu.txt); mamba_ssm $(cat mamba_src/MAMBA_COMMIT | cut -c1-12)" >> $S

t=$SECONDS; timeout -k 5 $TP python3 triton_baseline/prefill.py --summary $S --autotune-json $OUT/autotune_prefill.json \
  > $L/prefill.log 2>&1
echo "  (prefill.py rc=$? $((SECONDS-t))s; $(tuned $L/prefill.log))" >> $S
t=$SECONDS; timeout -k 5 $TT python3 triton_baseline/train.py --summary $S --autotune-json $OUT/autotune_train.json \
  --profile-all > $L/train.log 2>&1
echo "  (train.py rc=$? $((SECONDS-t))s; $(tuned $L/train.log))" >> $S
grep -h -E "Error|error:" $L/prefill*.log $L/train.log | grep -v "^ " | head -5 >> $S

t=$SECONDS; timeout -k 5 $TPP ./pcm bench --device cuda --shape codestral-7b --cuda-batches 1 --cuda-prefill 4096,16384 \
  > $L/pcm_prefill.txt 2>&1
echo "== pcm prefill rc=$? $((SECONDS-t))s" >> $S; grep -E "^\| T=|^peak" $L/pcm_prefill.txt >> $S
t=$SECONDS; PCM_TRAIN_PROFILE=1 timeout -k 5 $TPT ./pcm bench --train --device cuda --shape mamba2-1.3b --seq-len 2048 \
  --batch 4 --steps 3 > $L/pcm_train.txt 2>&1
echo "== pcm train 4x2048 rc=$? $((SECONDS-t))s" >> $S; grep -E "^ms/step|^forward" $L/pcm_train.txt >> $S
if fits $TPT8; then  # optional
  t=$SECONDS; timeout -k 5 $TPT8 ./pcm bench --train --device cuda --shape mamba2-1.3b --seq-len 2048 --batch 8 --steps 3 \
    > $L/pcm_train8.txt 2>&1
  echo "== pcm train 8x2048 rc=$? $((SECONDS-t))s" >> $S; grep -E "^ms/step" $L/pcm_train8.txt >> $S
fi
if fits $TPC; then  # optional: the baseline as it runs with torch's conv (no causal_conv1d), same call
  t=$SECONDS; timeout -k 5 $TPC python3 triton_baseline/prefill.py --summary $S --conv torch --lengths 16384 --reps 3 \
    --check-len 0 --autotune-json $OUT/autotune_prefill.json > $L/prefill_torchconv.log 2>&1
  echo "  (prefill.py --conv torch rc=$? $((SECONDS-t))s)" >> $S
fi

echo "== table" >> $S
python3 triton_baseline/table.py $S $L/pcm_prefill.txt $L/pcm_train.txt $L/pcm_train8.txt >> $S 2>&1
tar czf $OUT/logs.tgz -C $L .
cat $S
