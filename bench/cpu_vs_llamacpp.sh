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
# llama-bench -o json: one record per test; avg_ts of the pp (n_gen 0) or tg (n_prompt 0) record.
llama_ts() {  # GGUF, "pp"|"tg"  (reads the cached JSON)
  python3 - "$1" "$2" <<'PY'
import json, sys
recs = json.load(open(sys.argv[1]))
want = sys.argv[2]
for r in recs:
    if (want == "pp" and r["n_gen"] == 0) or (want == "tg" and r["n_prompt"] == 0):
        print(f'{r["avg_ts"]:.1f}'); break
PY
}
run_llama() {  # GGUF -> JSON file with pp512 and tg128, and peak RSS (KB) on stderr file
  /usr/bin/time -f %M -o "$2.rss" "$bench_bin" -m "$1" -t "$threads" -p 512 -n 128 -r 3 -o json > "$2" 2>/dev/null
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
  echo "pcm $shape..." >&2
  pb=$("$pcm" bench --model "$dir" --prompt-tokens 512 --decode-tokens 128 --threads "$threads" --bandwidth --json)
  pq=$("$pcm" bench --model "$dir" --weights q8_0 --prompt-tokens 512 --decode-tokens 128 --threads "$threads" --bandwidth --json)
  echo "llama.cpp $shape..." >&2
  run_llama "$work/$shape-bf16.gguf" "$work/$shape-bf16.llama.json"
  run_llama "$work/$shape-q8_0.gguf" "$work/$shape-q8_0.llama.json"
  lb_pp=$(llama_ts "$work/$shape-bf16.llama.json" pp); lb_tg=$(llama_ts "$work/$shape-bf16.llama.json" tg)
  lq_tg=$(llama_ts "$work/$shape-q8_0.llama.json" tg)
  lb_rss=$(( $(tail -1 "$work/$shape-bf16.llama.json.rss") / 1024 )); lq_rss=$(( $(tail -1 "$work/$shape-q8_0.llama.json.rss") / 1024 ))
  rows+=("$(python3 - "$shape" "$pb" "$pq" "$lb_pp" "$lb_tg" "$lq_tg" "$lb_rss" "$lq_rss" <<'PY'
import json, sys
shape, pb, pq = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
lb_pp, lb_tg, lq_tg, lb_rss, lq_rss = map(float, sys.argv[4:9])
def floor_pct(j): return 100.0 * j["decode_floor_ms"] / j["decode_ms_per_step"]
def llama_pct(j, ts): return 100.0 * j["decode_floor_ms"] / (1000.0 / ts)
mb = lambda b: b / 1e6
out = []
out.append(f'| {shape} | prefill T=512 (bf16) | {pb["prefill_tokens_per_s"]:.1f} | {lb_pp:.1f} | {pb["prefill_tokens_per_s"]/lb_pp:.2f}x | — | {mb(pb["peak_rss_bytes"]):.0f} / {lb_rss:.0f} |')
out.append(f'| {shape} | decode bf16 (tg128) | {pb["decode_tokens_per_s"]:.1f} | {lb_tg:.1f} | {pb["decode_tokens_per_s"]/lb_tg:.2f}x | {floor_pct(pb):.0f}% / {llama_pct(pb, lb_tg):.0f}% | {mb(pb["peak_rss_bytes"]):.0f} / {lb_rss:.0f} |')
out.append(f'| {shape} | decode Q8_0 (tg128) | {pq["decode_tokens_per_s"]:.1f} | {lq_tg:.1f} | {pq["decode_tokens_per_s"]/lq_tg:.2f}x | {floor_pct(pq):.0f}% / {llama_pct(pq, lq_tg):.0f}% | {mb(pq["peak_rss_bytes"]):.0f} / {lq_rss:.0f} |')
print("\n".join(out))
PY
)")
  bw=$(field "$pb" read_bandwidth_gbs)
done
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
echo
echo "$(date -u +%F), $cpu, $threads threads, read bandwidth ${bw%.*}ish GB/s (measured by pcm bench)"
echo
echo "| shape | phase | pcm tok/s | llama.cpp tok/s | ratio | % of floor (pcm / llama.cpp) | peak RSS MB (pcm / llama.cpp) |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${rows[@]}"
