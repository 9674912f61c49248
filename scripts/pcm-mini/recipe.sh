#!/usr/bin/env bash
# pcm-mini, end to end: data -> tokenizer -> train variants (a) phase 1 only, (b) phase 1 -> phase 2,
# (c) one phase on the mixture at (b)'s budget -> evaluate (GSM8K test greedy and n=4 sampled, held-out
# composed problems greedy) -> loss curves -> WORK/results.md and WORK/results.json.
# Every stage is a pcm command; rerunning resumes training and evaluation where they stopped.
#
#   scripts/pcm-mini/recipe.sh --device cuda --eval-device cuda --a-from-b --max-slots 128 --sampled-limit 500
#                                                            # the shipped model's run (one H200, ~8 min)
#   scripts/pcm-mini/recipe.sh --device cpu --threads 2 --p1-steps 100 --p2-steps 60 --batch-rows 2 \
#       --variants b --eval-limit 100                         # the provisional CPU model
#   scripts/pcm-mini/recipe.sh --ship models/pcm-mini         # copy (b)'s final checkpoint + card inputs
#
# Options (defaults in brackets):
#   --pcm PATH          the pcm binary [REPO/build/pcm]
#   --data-root DIR     holds train/gsm8k_train.jsonl and benchmarks/*.jsonl [REPO/../shared/data]
#   --configs DIR       the variant configs [REPO/configs/pcm-mini]
#   --work DIR          everything written goes here [REPO/runs/pcm-mini]
#   --device D          training device, passed to `pcm train --device` unless cpu [cpu]
#   --threads N         CPU threads for every pcm command [all cores]
#   --variants "a b c"  which variants to train and evaluate [a b c]
#   --p1-steps N --p2-steps N --batch-rows N   budget: steps per phase, 512-token rows per step [300 150 32]
#   --p2-count N        composed training problems [20000]; --test-count N held-out problems [500]
#   --eval-limit N      first N problems of each eval set (0: all) [0]
#   --sampled-limit N   first N GSM8K problems for the n-sample run (0: all) [--eval-limit]
#   --eval-n N          samples per problem in the sampled GSM8K run [4]
#   --max-new-tokens N  generation budget per eval sample [320]
#   --max-slots N       sequences pcm eval decodes together [64]
#   --eval-device D     device for pcm eval (cpu or cuda) [cpu]
#   --a-from-b          take (a) from (b)'s phase 1 instead of training it: (a)'s config is (b)'s phase 1
#                       (same data, schedule and seed), so this saves a third of the GPU time
#   --parallel          train the variants at the same time (one process each; a GPU has room for three
#                       runs of this size), and evaluate them at the same time
#   --stages LIST       comma list of data,tokenizer,train,eval,plot,results [all]
#   --ship DIR          only copy (b)'s final checkpoint, its config, curves and results into DIR
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)
PCM=$REPO/build/pcm
DATA_ROOT=$REPO/../shared/data
CONFIGS=$REPO/configs/pcm-mini
WORK=$REPO/runs/pcm-mini
DEVICE=cpu
THREADS=0
VARIANTS="a b c"
P1_STEPS=300
P2_STEPS=150
BATCH_ROWS=32
P2_COUNT=20000
TEST_COUNT=500
EVAL_LIMIT=0
SAMPLED_LIMIT=""
EVAL_N=4
MAX_NEW=320
MAX_SLOTS=64
EVAL_DEVICE=cpu
PARALLEL=0
A_FROM_B=0
STAGES=data,tokenizer,train,eval,plot,results
SHIP=""

die() { echo "recipe.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --pcm) PCM=$2; shift 2 ;;
    --data-root) DATA_ROOT=$2; shift 2 ;;
    --configs) CONFIGS=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --device) DEVICE=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --variants) VARIANTS=$2; shift 2 ;;
    --p1-steps) P1_STEPS=$2; shift 2 ;;
    --p2-steps) P2_STEPS=$2; shift 2 ;;
    --batch-rows) BATCH_ROWS=$2; shift 2 ;;
    --p2-count) P2_COUNT=$2; shift 2 ;;
    --test-count) TEST_COUNT=$2; shift 2 ;;
    --eval-limit) EVAL_LIMIT=$2; shift 2 ;;
    --sampled-limit) SAMPLED_LIMIT=$2; shift 2 ;;
    --eval-n) EVAL_N=$2; shift 2 ;;
    --max-new-tokens) MAX_NEW=$2; shift 2 ;;
    --max-slots) MAX_SLOTS=$2; shift 2 ;;
    --eval-device) EVAL_DEVICE=$2; shift 2 ;;
    --parallel) PARALLEL=1; shift ;;
    --a-from-b) A_FROM_B=1; shift ;;
    --stages) STAGES=$2; shift 2 ;;
    --ship) SHIP=$2; shift 2 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

case "$EVAL_DEVICE" in cpu|cuda) ;; *) die "--eval-device: '$EVAL_DEVICE' is not cpu or cuda" ;; esac
[ -x "$PCM" ] || die "--pcm: '$PCM' is not an executable (build pcm first: cmake --build build --target pcm)"
PCM=$(cd "$(dirname "$PCM")" && pwd)/$(basename "$PCM")
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
THREAD_ARGS=()
[ "$THREADS" != 0 ] && THREAD_ARGS=(--threads "$THREADS")
has_stage() { [[ ",$STAGES," == *",$1,"* ]]; }
log() { echo "[recipe $(date -u +%H:%M:%S)] $*" >&2; }
config_of() { case "$1" in a) echo a-phase1 ;; b) echo b-curriculum ;; c) echo c-mixture ;; *) die "unknown variant '$1'" ;; esac; }
# The phase-end checkpoints of run $1 that match the glob ${2:-phase*-*}, in order, without the .tmp
# directory a save interrupted mid-way leaves. Prints nothing when there is none and never fails: under
# set -e + pipefail a failing `ck=$(final_ckpt ...)` would end the script silently, before the caller's
# die could say what is missing.
phase_ckpts() { { ls -d "$WORK/runs/$1"/${2:-phase*-*} 2>/dev/null || true; } | { grep -v '\.tmp$' || true; } | sort -V; }
final_ckpt() { phase_ckpts "$@" | tail -1; }

if [ -n "$SHIP" ]; then
  ck=$(final_ckpt b)
  [ -n "$ck" ] || die "no finished run in $WORK/runs/b to ship"
  mkdir -p "$SHIP"
  for f in config.json model.safetensors tokenizer.json tokenizer_config.json special_tokens_map.json chat_template.jinja; do
    [ -f "$ck/$f" ] && cp "$ck/$f" "$SHIP/"
  done
  cp "$WORK/configs/b-curriculum.toml" "$SHIP/train_config.toml"
  for f in results.md results.json data/phase1.stats.json data/phase2.stats.json data/phase2_test.stats.json; do
    [ -f "$WORK/$f" ] && cp "$WORK/$f" "$SHIP/"
  done
  [ -d "$WORK/plots" ] && cp "$WORK"/plots/*.svg "$SHIP/" 2>/dev/null || true
  log "shipped $ck into $SHIP (update its README.md numbers from $SHIP/results.md; refresh tests: scripts/pcm-mini/record_ci_ids.sh)"
  exit 0
fi

DATA=$WORK/data
GSM8K_TRAIN=$DATA_ROOT/train/gsm8k_train.jsonl
BENCH=$DATA_ROOT/benchmarks

if has_stage data; then
  [ -f "$GSM8K_TRAIN" ] || die "--data-root: $GSM8K_TRAIN not found"
  [ -d "$BENCH" ] || die "--data-root: $BENCH not found"
  mkdir -p "$DATA"
  log "data: phase 1 (GSM8K train as chat), phase 2 (composed, seed 1), held-out test (composed, seed 2)"
  "$PCM" synth gsm8k-chat --in "$GSM8K_TRAIN" --benchmarks "$BENCH" --out "$DATA/phase1.jsonl" --stats "$DATA/phase1.stats.json"
  "$PCM" synth compose --seed 1 --count "$P2_COUNT" --seed-problems "$GSM8K_TRAIN" --benchmarks "$BENCH" \
    --out "$DATA/phase2.jsonl" --stats "$DATA/phase2.stats.json"
  # Different seed; --exclude drops any problem text that is also a training problem.
  "$PCM" synth compose --seed 2 --count "$TEST_COUNT" --seed-problems "$GSM8K_TRAIN" --benchmarks "$BENCH" \
    --exclude "$DATA/phase2.jsonl" --format bench --out "$DATA/phase2_test.jsonl" --stats "$DATA/phase2_test.stats.json"
fi

if has_stage tokenizer; then
  log "tokenizer: byte-level BPE, vocab 8192, on both training sets"
  "$PCM" tokenizer train --in "$DATA/phase1.jsonl" "$DATA/phase2.jsonl" --field messages --vocab-size 8192 \
    --out "$WORK/tokenizer" 2>"$WORK/tokenizer.log"
  tail -1 "$WORK/tokenizer.log" >&2
fi

# The variant configs with this run's budget written into the lines marked "# recipe:".
mkdir -p "$WORK/configs"
BATCH_TOKENS=$((BATCH_ROWS * 512))
for v in a b c; do
  c=$(config_of $v)
  sed -e "s/^steps = [0-9]*  # recipe: P1_STEPS$/steps = $P1_STEPS  # recipe: P1_STEPS/" \
      -e "s/^steps = [0-9]*  # recipe: P2_STEPS$/steps = $P2_STEPS  # recipe: P2_STEPS/" \
      -e "s/^steps = [0-9]*  # recipe: P1P2_STEPS$/steps = $((P1_STEPS + P2_STEPS))  # recipe: P1P2_STEPS/" \
      -e "s/^batch_tokens = [0-9]*  # recipe: BATCH_TOKENS$/batch_tokens = $BATCH_TOKENS  # recipe: BATCH_TOKENS/" \
      "$CONFIGS/$c.toml" > "$WORK/configs/$c.toml.new"
  if [ -f "$WORK/configs/$c.toml" ] && ! cmp -s "$WORK/configs/$c.toml" "$WORK/configs/$c.toml.new" && [ -d "$WORK/runs/$v" ]; then
    die "$WORK/configs/$c.toml changed (budget or config) but $WORK/runs/$v exists: remove it or use another --work"
  fi
  mv "$WORK/configs/$c.toml.new" "$WORK/configs/$c.toml"
done

# Runs "$@" once per variant (the function name first, then the variants), one after the other or, with
# --parallel, all at once with each one's output in WORK/NAME-VARIANT.log; fails if any run fails.
for_variants() {
  local fn=$1; shift
  if [ "$PARALLEL" = 0 ]; then
    for v in "$@"; do "$fn" "$v"; done
    return
  fi
  local pids=() names=() failed=0
  for v in "$@"; do
    "$fn" "$v" > "$WORK/$fn-$v.log" 2>&1 &
    pids+=($!); names+=("$v")
  done
  for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || { failed=1; log "$fn ${names[$i]} failed:"; tail -5 "$WORK/$fn-${names[$i]}.log" >&2; }
  done
  [ "$failed" = 0 ] || die "$fn failed (logs: $WORK/$fn-*.log)"
}

train_variant() {
  local v=$1 c
  c=$(config_of "$v")
  if [ "$(phase_ckpts "$v" | wc -l)" -ge "$(grep -c '^\[\[phases\]\]' "$WORK/configs/$c.toml")" ]; then
    log "train $v: already finished"
    return
  fi
  local resume=() device_args=()
  [ -f "$WORK/runs/$v/latest" ] && resume=(--resume "$WORK/runs/$v")
  [ "$DEVICE" != cpu ] && device_args=(--device "$DEVICE")
  log "train $v ($c, device $DEVICE, $P1_STEPS/$P2_STEPS steps of $BATCH_TOKENS tokens)"
  "$PCM" train --config "$WORK/configs/$c.toml" "${resume[@]}" "${device_args[@]}" "${THREAD_ARGS[@]}" --quiet
  log "train $v: done"
}

# (a) as (b)'s phase 1: WORK/runs/a gets a link to that checkpoint and (b)'s phase-1 metrics rows.
link_a_to_b() {
  local p1
  p1=$(final_ckpt b "phase1-*")
  [ -n "$p1" ] || die "--a-from-b: (b) has no phase-1 checkpoint in $WORK/runs/b"
  [ -f "$WORK/runs/b/metrics.jsonl" ] || die "--a-from-b: (b) has no metrics.jsonl in $WORK/runs/b"
  mkdir -p "$WORK/runs/a"
  ln -sfn "../b/$(basename "$p1")" "$WORK/runs/a/$(basename "$p1")"
  python3 -c 'import json,sys
for line in open(sys.argv[1]):
    if line.endswith("\n") and json.loads(line).get("phase") == 1: sys.stdout.write(line)' \
    "$WORK/runs/b/metrics.jsonl" > "$WORK/runs/a/metrics.jsonl"
  log "(a) = (b)'s phase 1: $p1"
}

if has_stage train; then
  TRAIN_VARIANTS=$VARIANTS
  if [ "$A_FROM_B" = 1 ] && [[ " $VARIANTS " == *" a "* ]]; then
    [[ " $VARIANTS " == *" b "* ]] || die "--a-from-b: variant a comes from b, so --variants must name b too"
    TRAIN_VARIANTS=$(echo " $VARIANTS " | sed 's/ a / /; s/^ *//; s/ *$//')
  fi
  for_variants train_variant $TRAIN_VARIANTS
  [ "$A_FROM_B" = 1 ] && [[ " $VARIANTS " == *" a "* ]] && link_a_to_b
fi

eval_variant() {
  local v=$1 ck E
  ck=$(final_ckpt "$v")
  [ -n "$ck" ] || die "eval $v: no finished checkpoint in $WORK/runs/$v"
  E=$WORK/eval/$v
  mkdir -p "$E"
  local base=(--model "$ck" --max-new-tokens "$MAX_NEW" --max-slots "$MAX_SLOTS" --data-dir "$BENCH" "${THREAD_ARGS[@]}")
  [ "$EVAL_DEVICE" != cpu ] && base+=(--device "$EVAL_DEVICE")
  local limit=() sampled_limit=()
  [ "$EVAL_LIMIT" != 0 ] && limit=(--limit "$EVAL_LIMIT")
  [ "${SAMPLED_LIMIT:-$EVAL_LIMIT}" != 0 ] && sampled_limit=(--limit "${SAMPLED_LIMIT:-$EVAL_LIMIT}")
  # out-dir, then pcm eval options; resumes a stopped run, skips a finished one. OUT.args records what
  # defines the results (model, token budget, these options; not threads, slots or device): results of
  # other options, or older than the checkpoint (retrained), are an error rather than silently reused.
  run_eval() {
    local out=$1; shift
    local args
    args=$(printf '%q ' --model "$ck" --max-new-tokens "$MAX_NEW" "$@")
    if [ -f "$out.args" ] && [ "$(cat "$out.args")" != "$args" ]; then
      die "eval $v $(basename "$out"): $out was run with other options ($out.args): remove it to rerun"
    fi
    if [ -f "$out/report.json" ]; then
      [ "$out/report.json" -nt "$ck/model.safetensors" ] ||
        die "eval $v $(basename "$out"): $out/report.json is older than $ck: remove $out to rerun"
      log "eval $v $(basename "$out"): done"
      return
    fi
    local resume=()
    [ -f "$out/samples.jsonl" ] && resume=(--resume)
    printf '%s\n' "$args" > "$out.args"
    log "eval $v $(basename "$out")"
    "$PCM" eval "${base[@]}" "$@" --out "$out" "${resume[@]}" > "$out.log" 2>&1 || { tail -5 "$out.log" >&2; die "eval failed: $out.log"; }
  }
  run_eval "$E/gsm8k-greedy" "${limit[@]}" --bench gsm8k --n 1 --temperature 0
  run_eval "$E/gsm8k-n$EVAL_N" "${sampled_limit[@]}" --bench gsm8k --n "$EVAL_N" --temperature 0.6 --top-p 0.95 --seed 1
  run_eval "$E/composed-greedy" "${limit[@]}" --bench "$DATA/phase2_test.jsonl" --format math --n 1 --temperature 0
}

if has_stage eval; then
  for_variants eval_variant $VARIANTS
fi

if has_stage plot; then
  mkdir -p "$WORK/plots"
  for v in $VARIANTS; do
    [ -f "$WORK/runs/$v/metrics.jsonl" ] || continue
    "$PCM" plot "$WORK/runs/$v/metrics.jsonl" --out "$WORK/plots/loss-$v.svg" --title "pcm-mini ($v) training loss"
  done
fi

if has_stage results; then
  python3 "$SCRIPT_DIR/results.py" --work "$WORK" --variants "$VARIANTS" --eval-n "$EVAL_N" --device "$DEVICE" \
    --p1-steps "$P1_STEPS" --p2-steps "$P2_STEPS" --batch-tokens "$BATCH_TOKENS" --eval-device "$EVAL_DEVICE"
  log "results: $WORK/results.md"
  cat "$WORK/results.md"
fi
