#!/usr/bin/env bash
# Records what tests/shipped_model checks: the shipped model's greedy 16 tokens from a fixed chat prompt.
# Run it whenever models/pcm-mini changes, then commit testdata/pcm-mini/greedy16.json:
#   scripts/pcm-mini/record_ci_ids.sh [build/pcm] [models/pcm-mini]
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PCM=${1:-$REPO/build/pcm}
MODEL=${2:-$REPO/models/pcm-mini}
OUT=$REPO/testdata/pcm-mini/greedy16.json
[ -x "$PCM" ] || { echo "record_ci_ids.sh: $PCM is not an executable" >&2; exit 1; }
[ -f "$MODEL/config.json" ] || { echo "record_ci_ids.sh: $MODEL has no config.json" >&2; exit 1; }
QUESTION="Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?"
# The chat-rendered prompt, as `pcm generate --chat` builds it.
printf '[{"role":"user","content":"%s"}]' "$QUESTION" > /tmp/pcm-mini-record-messages.json
# (the trailing x keeps the prompt's final newline through the command substitution)
RENDERED=$("$PCM" render --model "$MODEL" --messages /tmp/pcm-mini-record-messages.json --add-generation-prompt; printf x)
RENDERED=${RENDERED%x}
PROMPT_IDS=$("$PCM" tokenize --model "$MODEL" --text "$RENDERED")
GEN_IDS=$("$PCM" generate --model "$MODEL" --prompt-ids "$PROMPT_IDS" --max-new-tokens 16 --temperature 0 --ignore-eos --threads 1 2>/dev/null)
# Trailing newlines are dropped here and in the test's comparison.
TEXT=$("$PCM" generate --model "$MODEL" --chat --prompt "$QUESTION" --max-new-tokens 16 --temperature 0 --ignore-eos --threads 1 2>/dev/null)
SHA=$(sha256sum "$MODEL/model.safetensors" | cut -d' ' -f1)
python3 - "$OUT" "$QUESTION" "$RENDERED" "$PROMPT_IDS" "$GEN_IDS" "$TEXT" "$SHA" <<'PY'
import json, sys
out, q, rendered, pids, gids, text, sha = sys.argv[1:]
json.dump({"question": q, "rendered_prompt": rendered, "prompt_ids": [int(x) for x in pids.split(",")],
           "generated_ids": [int(x) for x in gids.split(",")], "generated_text": text,
           "model_safetensors_sha256": sha}, open(out, "w"), indent=1, ensure_ascii=False)
open(out, "a").write("\n")
PY
rm -f /tmp/pcm-mini-record-messages.json
echo "recorded $OUT (model sha256 $SHA)"
