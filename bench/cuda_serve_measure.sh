#!/bin/bash
# GPU measurements of the CUDA serving path, run on the GPU machine inside a pack made by bench/cuda_pack.sh
# (plus the bench/*.py scripts and bench/synth_gpu_load.toml) that sits in the repository root:
#   (a) test_cuda (the CUDA engine under the scheduler included);
#   (b) pcm serve --device cuda at the Codestral-7B shape: streaming load test, official openai client;
#   (d) pcm synth generate/solve items per hour against that server;
#   (c) pcm eval --device cuda tokens/s against pcm bench --device cuda decode at the same batch.
# Usage: cuda_serve_measure.sh OUTDIR [SLOTS]. Logs go to OUTDIR; a summary table is printed last.
set -u
out=${1:?usage: cuda_serve_measure.sh OUTDIR [SLOTS]}; slots=${2:-128}
mkdir -p "$out"
repo=${REPO:-..}  # testdata/ (fixture models, tokenizers) and data/benchmarks/ come from the checkout
tok=$repo/testdata/tokenizers/mistral-v3; port=8080; summary="$out/summary.md"
: > "$summary"
say() { echo "$*" | tee -a "$summary"; }
get() { python3 -c "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())" "$1"; }
wait_port() { for _ in $(seq 1 120); do get "http://127.0.0.1:$port/v1/models" > /dev/null 2>&1 && return 0; sleep 0.5; done; return 1; }
since() { python3 -c "import sys,time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$1"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | sed 's/^/gpu: /' | tee -a "$summary"

# (a)
t0=$(date +%s.%N)
PCM_BINARY_PATH=$PWD/pcm PCM_TESTDATA_DIR=$(cd "$repo/testdata" && pwd) timeout 240 ./test_cuda > "$out/test_cuda.log" 2>&1; rc=$?
say "(a) test_cuda rc=$rc in $(since $t0) s: $(grep -E '^\[  (PASSED|FAILED)  \]' "$out/test_cuda.log" | tr '\n' ' ')"
grep -E '^\[  FAILED  \]' "$out/test_cuda.log" | head -20 | tee -a "$summary"

# (b) serve at the 7B shape, bf16 state, slots matched to the load
./pcm serve --device cuda --random-shape codestral-7b --tokenizer $tok --state-dtype bf16 --max-slots "$slots" \
  --state-cache 0 --max-queue 512 --port $port --served-model-name codestral-7b > "$out/serve.log" 2>&1 &
spid=$!
if ! wait_port; then say "serve did not come up"; tail -20 "$out/serve.log"; kill $spid; exit 1; fi
python3 -c "import openai; print(openai.__version__)" > "$out/openai_version.txt" 2>&1 && \
  python3 openai_client_check.py --port $port > "$out/openai_check.log" 2>&1; orc=$?
say "openai client check rc=$orc: $(head -c 600 "$out/openai_check.log" "$out/openai_version.txt" | tr '\n' ' ')"
python3 server_load.py --port $port --clients "$slots" --requests $((slots * 4)) --max-tokens 128 --prompt-tokens 256 \
  --vocab 32768 --time-limit 120 > "$out/load.json" 2> "$out/load.err"; lrc=$?
say "(b) load test rc=$lrc ($slots clients, $((slots * 4)) requests, 256-token prompts, 128 tokens each): $(cat "$out/load.json")"
head -5 "$out/load.err" | tee -a "$summary"

# (d) synth: generate (1 request per item) and solve (n = 4 in one request per item)
mkdir -p synth_out
python3 - "$slots" <<'PY'
import json, sys
n = int(sys.argv[1])
concepts = ["modular arithmetic", "the pigeonhole principle", "Vieta's formulas", "inscribed angles", "geometric series",
            "the triangle inequality", "binomial coefficients", "complex roots of unity", "recurrences", "expected value"]
levels = ["AMC12", "HMMT-Feb", "AIME", "USAMO"]
with open("synth_out/samples.jsonl", "w") as f:
    for i in range(2 * n):
        f.write(json.dumps({"id": f"s{i:05d}", "status": "ok", "concepts": [concepts[(i + k * 3) % 10] for k in range(5)],
                            "level": levels[i % 4]}) + "\n")
with open("synth_out/filtered.jsonl", "w") as f:
    for i in range(n // 2):
        f.write(json.dumps({"id": f"s{i:05d}", "status": "ok", "problem": f"Find the remainder when {i + 7}^{i + 100} is divided by 13.",
                            "concepts": ["modular arithmetic"], "level": "AIME"}) + "\n")
PY
for stage in generate solve; do
  t0=$(date +%s.%N)
  timeout 200 ./pcm synth $stage --config synth_gpu_load.toml --out synth_out -q > "$out/synth_$stage.log" 2>&1; src=$?
  secs=$(since $t0)
  file=$([ $stage = generate ] && echo problems || echo solutions)
  items=$(wc -l < synth_out/$file.jsonl)
  say "(d) synth $stage rc=$src: $items items in $secs s = $(python3 -c "print(round($items * 3600 / $secs))") items/hour; reasons: $(python3 -c "
import json,collections,sys
c=collections.Counter(json.loads(l).get('reason','ok') for l in open('synth_out/$file.jsonl'))
print(dict(c))")"
done
get "http://127.0.0.1:$port/metrics" > "$out/metrics.txt"
say "server after load: $(grep -E '^pcm_(slots_used|queue_depth|running_requests|requests_finished_total|requests_cancelled_total|generation_tokens_total) ' "$out/metrics.txt" | tr '\n' ' ')"
kill -TERM $spid; wait $spid; say "serve exit rc=$? ($(tail -1 "$out/serve.log"))"

# (c) engine decode ceiling vs the eval harness at the same batch
timeout 120 ./pcm bench --device cuda --shape codestral-7b --cuda-batches "$slots" --cuda-prefill 4096 --decode-tokens 30 > "$out/bench.log" 2>&1
say "(c) pcm bench --device cuda B=$slots: $(grep -E '^\| B=' "$out/bench.log" | tr '\n' ' ')"
timeout 200 ./pcm eval --random-shape codestral-7b --tokenizer $tok --device cuda --state-dtype bf16 --max-slots "$slots" \
  --bench gsm8k --limit $((slots / 2)) --n 2 --max-new-tokens 512 --data-dir $repo/data/benchmarks --out eval_out > "$out/eval.log" 2>&1
say "(c) pcm eval --device cuda rc=$?: $(grep -E '^engine' "$out/eval.log")"
cp -r synth_out eval_out "$out/" 2>/dev/null
echo; echo "==== summary"; cat "$summary"
