#!/usr/bin/env bash
# pcm vs llama.cpp on this CPU, same machine, same weights, same thread count, back to back:
# prefill (pp512), bf16 decode (tg128) and Q8_0 decode, with % of the bandwidth floor and peak RSS.
#   bench/cpu_vs_llamacpp.sh [SHAPE ...]        (default: mamba2-370m mamba2-1.3b)
# Env: THREADS (2), WORK (/tmp/pcm-vs-llamacpp: random checkpoints and GGUFs, cached), PCM (build/pcm),
#      SHARED (../shared: the llama.cpp setup and model tools).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED:-$root/../shared}
threads=${THREADS:-2}
work=${WORK:-/tmp/pcm-vs-llamacpp}
pcm=${PCM:-$root/build/pcm}
shapes=("$@"); [ ${#shapes[@]} -gt 0 ] || shapes=(mamba2-370m mamba2-1.3b)
mkdir -p "$work"
[ -x "$pcm" ] || { echo "build pcm first: cmake --build build (or set PCM=...)" >&2; exit 1; }
echo "building/locating llama.cpp (cached after the first run)..." >&2
llama=$(bash "$shared/tools/llamacpp/setup.sh" | tail -1)
bench_bin=$llama/src/build/bin/llama-bench

field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
run_llama() {  # GGUF -> JSON file with pp512 and tg128, and peak RSS (KB) on stderr file
  /usr/bin/time -f %M -o "$2.rss" "$bench_bin" -m "$1" -t "$threads" -p 512 -n 128 -r 3 -o json > "$2" 2>/dev/null
}
run_llama_both() {  # SHAPE ROUND: bf16 and Q8_0 runs of one round
  for q in bf16 q8_0; do run_llama "$work/$1-$q.gguf" "$work/$1-$q.llama$2.json"; done
}

rows=()
for shape in "${shapes[@]}"; do
  dir=$work/$shape
  if [ ! -f "$dir/model.safetensors" ]; then
    echo "making random $shape weights in $dir..." >&2
    /usr/bin/python3 "$shared/tools/make_random_mamba2.py" "$shape" "$dir" >&2
  fi
  for q in bf16 q8_0; do
    g=$work/$shape-$q.gguf
    [ -f "$g" ] || LLAMA_CPP=$llama/src /usr/bin/python3 "$shared/tools/llamacpp/convert_gguf.py" "$dir" \
      --outfile "$g" --outtype "$q" >/dev/null 2>&1
  done
  # Two rounds in ABBA order (pcm, llama.cpp, llama.cpp, pcm); each figure is the better of its two runs,
  # so load from other processes in one window cannot decide the ratio.
  pbs=(); pqs=()
  for round in 1 2; do
    if [ $round = 2 ]; then echo "llama.cpp $shape (round $round)..." >&2; run_llama_both "$shape" $round; fi
    echo "pcm $shape (round $round)..." >&2
    pbs+=("$("$pcm" bench --model "$dir" --prompt-tokens 512 --decode-tokens 128 --threads "$threads" --reps 3 --bandwidth --json)")
    pqs+=("$("$pcm" bench --model "$dir" --weights q8_0 --prompt-tokens 512 --decode-tokens 128 --threads "$threads" --reps 3 --bandwidth --json)")
    if [ $round = 1 ]; then echo "llama.cpp $shape (round $round)..." >&2; run_llama_both "$shape" $round; fi
  done
  rows+=("$(python3 - "$shape" "$work" "${pbs[0]}" "${pbs[1]}" "${pqs[0]}" "${pqs[1]}" <<'PY'
import json, sys
shape, work = sys.argv[1], sys.argv[2]
pbs, pqs = [json.loads(a) for a in sys.argv[3:5]], [json.loads(a) for a in sys.argv[5:7]]
def llama(q, r, want):
    for rec in json.load(open(f"{work}/{shape}-{q}.llama{r}.json")):
        if (want == "pp" and rec["n_gen"] == 0) or (want == "tg" and rec["n_prompt"] == 0):
            return rec["avg_ts"]
def rss(q, r): return int(open(f"{work}/{shape}-{q}.llama{r}.json.rss").read().split()[-1]) / 1024
best = lambda runs, key: max(runs, key=lambda j: j[key])
pb_pre, pb_dec, pq_dec = best(pbs, "prefill_tokens_per_s"), best(pbs, "decode_tokens_per_s"), best(pqs, "decode_tokens_per_s")
lb_pp = max(llama("bf16", r, "pp") for r in (1, 2)); lb_tg = max(llama("bf16", r, "tg") for r in (1, 2))
lq_tg = max(llama("q8_0", r, "tg") for r in (1, 2))
lb_rss, lq_rss = max(rss("bf16", r) for r in (1, 2)), max(rss("q8_0", r) for r in (1, 2))
pb_rss, pq_rss = max(j["peak_rss_bytes"] for j in pbs) / 1e6, max(j["peak_rss_bytes"] for j in pqs) / 1e6
floor_pct = lambda j: 100.0 * j["decode_floor_ms"] / j["decode_ms_per_step"]
llama_pct = lambda j, ts: 100.0 * j["decode_floor_ms"] / (1000.0 / ts)
print(f'| {shape} | prefill T=512 (bf16) | {pb_pre["prefill_tokens_per_s"]:.1f} | {lb_pp:.1f} | {pb_pre["prefill_tokens_per_s"]/lb_pp:.2f}x | — | {pb_rss:.0f} / {lb_rss:.0f} |')
print(f'| {shape} | decode bf16 (tg128) | {pb_dec["decode_tokens_per_s"]:.1f} | {lb_tg:.1f} | {pb_dec["decode_tokens_per_s"]/lb_tg:.2f}x | {floor_pct(pb_dec):.0f}% / {llama_pct(pb_dec, lb_tg):.0f}% | {pb_rss:.0f} / {lb_rss:.0f} |')
print(f'| {shape} | decode Q8_0 (tg128) | {pq_dec["decode_tokens_per_s"]:.1f} | {lq_tg:.1f} | {pq_dec["decode_tokens_per_s"]/lq_tg:.2f}x | {floor_pct(pq_dec):.0f}% / {llama_pct(pq_dec, lq_tg):.0f}% | {pq_rss:.0f} / {lq_rss:.0f} |')
PY
)")
  pb=${pbs[0]}
  bw=$(field "$pb" read_bandwidth_gbs)
done
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
echo
echo "$(date -u +%F), $cpu, $threads threads, read bandwidth ${bw%.*}ish GB/s (measured by pcm bench)"
echo
echo "| shape | phase | pcm tok/s | llama.cpp tok/s | ratio | % of floor (pcm / llama.cpp) | peak RSS MB (pcm / llama.cpp) |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
