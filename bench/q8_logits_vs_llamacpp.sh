#!/usr/bin/env bash
# Q8_0 numerics side by side: our Q8_0 logits on llama.cpp's own Q8_0 GGUF against llama.cpp's logits on
# the same file (dump_logits), and both against the bf16 path — relative L2 per the issue's 2% bound.
#   bench/q8_logits_vs_llamacpp.sh Q8_0.gguf BF16_MODEL(dir or .gguf) [IDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED:-$root/../shared}
pcm=${PCM:-$root/build/pcm}
q8=$1; bf16=$2; ids=${3:-1,415,2936,9060,285,1142,6767,689,253,22658,4370,15,50,42,17,3,99,1234,5678,10}
llama=$(bash "$shared/tools/llamacpp/setup.sh" | tail -1)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$llama/dump_logits" "$q8" "$ids" "$tmp/llama.f32" 2 >/dev/null 2>&1
"$pcm" score --model "$q8" --prompt-ids "$ids" --out "$tmp/pcm_q8.safetensors" 2>/dev/null
"$pcm" score --model "$bf16" --prompt-ids "$ids" --out "$tmp/pcm_bf16.safetensors" 2>/dev/null
/usr/bin/python3 - "$tmp" <<'PY'
import json, struct, sys
import numpy as np
d = sys.argv[1]
def st(path):
    b = open(path, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])["logits"]
    s, e = h["data_offsets"]; return np.frombuffer(b[8 + n + s:8 + n + e], np.float32).reshape(h["shape"]).astype(np.float64)
ours_q8, ours_bf16 = st(f"{d}/pcm_q8.safetensors"), st(f"{d}/pcm_bf16.safetensors")
llama = np.fromfile(f"{d}/llama.f32", np.float32).astype(np.float64).reshape(ours_q8.shape[0], -1)[:, :ours_q8.shape[1]]
rel = lambda a, b: np.linalg.norm(a - b) / np.linalg.norm(b)
print("| comparison | relative L2 | argmax agreement |\n| --- | --- | --- |")
for name, a, b in [("pcm Q8_0 vs llama.cpp Q8_0 (same file)", ours_q8, llama),
                   ("pcm Q8_0 vs pcm bf16 (exact)", ours_q8, ours_bf16),
                   ("llama.cpp Q8_0 vs pcm bf16 (exact)", llama, ours_bf16)]:
    print(f"| {name} | {rel(a, b):.4f} | {(a.argmax(-1) == b.argmax(-1)).mean():.3f} |")
PY
