#!/usr/bin/env bash
# Packs what the pcm-mini recipe needs into one folder for the GPU machine (the device gets the lead's
# checkout plus carried ignored paths, not ../shared; 64 MiB in all): the stripped pcm (a CUDA build for
# `--device cuda`), the shared libraries the device lacks, the recipe scripts and configs, GSM8K train and
# the benchmarks (~18 MB). Laid out like the repo, so the recipe's defaults find build/pcm and
# configs/pcm-mini. The HF round-trip check packs separately: scripts/pcm-mini/device_check.py prepare.
#   scripts/pcm-mini/pack.sh [--pcm build-cuda/pcm] [--out REPO/build-mini-run] [--data-root ../shared/data]
# Then, on the device (the run tool, carry ["build-mini-run"]):
#   export LD_LIBRARY_PATH=$PWD/build-mini-run/lib:$LD_LIBRARY_PATH; cd build-mini-run
#   bash scripts/pcm-mini/recipe.sh --data-root data --work ../runs/pcm-mini --device cuda --eval-device cuda \
#       --parallel --a-from-b --threads 16 (see models/pcm-mini/README.md)
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PCM=$REPO/build/pcm
OUT=$REPO/build-mini-run
DATA_ROOT=$REPO/../shared/data
while [ $# -gt 0 ]; do
  case "$1" in
    --pcm) PCM=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --data-root) DATA_ROOT=$2; shift 2 ;;
    *) echo "pack.sh: unknown option '$1'" >&2; exit 1 ;;
  esac
done
[ -x "$PCM" ] || { echo "pack.sh: $PCM is not an executable" >&2; exit 1; }
[ -f "$DATA_ROOT/train/gsm8k_train.jsonl" ] || { echo "pack.sh: $DATA_ROOT/train/gsm8k_train.jsonl not found" >&2; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT/build" "$OUT/lib" "$OUT/scripts" "$OUT/configs" "$OUT/data/train" "$OUT/data/benchmarks"
strip -o "$OUT/build/pcm" "$PCM"
"$REPO/scripts/dev/device_libs.sh" "$OUT/lib"
cp -r "$REPO/scripts/pcm-mini" "$OUT/scripts/"
cp -r "$REPO/configs/pcm-mini" "$OUT/configs/"
cp "$DATA_ROOT/train/gsm8k_train.jsonl" "$OUT/data/train/"
cp "$REPO"/data/benchmarks/*.jsonl "$OUT/data/benchmarks/"
du -sh "$OUT"
