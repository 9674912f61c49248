#!/usr/bin/env python3
"""pcm-mini round trip against the Hugging Face stack (run where torch/transformers/tokenizers exist, e.g.
the GPU machine, from a folder made by scripts/pcm-mini/pack_device_check.sh):

  * transformers' Mamba2ForCausalLM loads the model directory and its float32 logits match `pcm score`
    (relative L2 error and argmax agreement per prompt; a short prompt and one longer than chunk_size);
  * HF `tokenizers` loads tokenizer.json and encodes every sample text to the same ids as `pcm tokenize`;
  * transformers' chat template rendering (tokenizer_config.json) equals `pcm render`.

  python3 device_check.py --pcm ./pcm --model models/pcm-mini --texts texts.jsonl --out $OUT/check.json
Exit status 0 only when every check passes."""
import argparse
import json
import subprocess
import sys
import tempfile


def pcm(args, binary, stdin=None):
    r = subprocess.run([binary] + args, input=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"pcm {' '.join(args[:2])} failed: {r.stderr.strip()}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pcm", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--texts", required=True, help="JSONL rows with messages (user/assistant turns)")
    ap.add_argument("--max-texts", type=int, default=200)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    import numpy as np
    import torch
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer, Mamba2ForCausalLM

    result = {"tokenizer": {}, "chat_template": {}, "logits": []}
    rows = [json.loads(line) for line in open(a.texts)][: a.max_texts]

    # Tokenizer: HF tokenizers vs pcm tokenize, on every turn of every sample row plus edge cases.
    hf_tok = Tokenizer.from_file(f"{a.model}/tokenizer.json")
    texts = [m["content"] for r in rows for m in r["messages"]]
    texts += ["<|im_start|>user\nhi<|im_end|>\n<think>x</think>", "  leading spaces, tabs\t\tand\nnewlines\n\n",
              "unicode: é ü 中文 🙂 – ∑ x²", "1234567890 12,345.67 $3.50 50% 3/4 \\boxed{\\frac{3}{7}}"]
    mismatches = []
    for t in texts:
        ours = [int(x) for x in pcm(["tokenize", "--model", a.model, "--text", "-"], a.pcm, stdin=t).strip().split(",") if x]
        theirs = hf_tok.encode(t, add_special_tokens=False).ids
        if ours != theirs:
            mismatches.append({"text": t[:200], "pcm": ours[:40], "hf": theirs[:40]})
    result["tokenizer"] = {"texts": len(texts), "mismatches": len(mismatches), "examples": mismatches[:5]}

    # Chat template: transformers' rendering vs pcm render, with the generation prompt.
    auto_tok = AutoTokenizer.from_pretrained(a.model)
    tmpl_bad = 0
    for r in rows[:20]:
        msgs = [m for m in r["messages"] if m["role"] == "user"]
        theirs = auto_tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            json.dump(msgs, f)
            f.flush()
            ours = pcm(["render", "--model", a.model, "--messages", f.name, "--add-generation-prompt"], a.pcm)
        tmpl_bad += ours != theirs
    result["chat_template"] = {"conversations": min(20, len(rows)), "mismatches": tmpl_bad}

    # Logits: float32 HF forward on the CPU (no TF32) vs pcm score (fp32 activations).
    model = Mamba2ForCausalLM.from_pretrained(a.model, torch_dtype=torch.float32).eval()
    chunk = model.config.chunk_size
    prompts = {"short": rows[0]["messages"][0]["content"],
               "long": "\n".join(m["content"] for r in rows[:4] for m in r["messages"])}
    for name, text in prompts.items():
        ids = hf_tok.encode(text, add_special_tokens=False).ids[: 3 * chunk + 5]
        with tempfile.TemporaryDirectory() as d:
            pcm(["score", "--model", a.model, "--prompt-ids", ",".join(map(str, ids)), "--out", f"{d}/l.safetensors"], a.pcm)
            ours = load_file(f"{d}/l.safetensors")["logits"].astype(np.float64)
        with torch.no_grad():
            theirs = model(torch.tensor([ids])).logits[0].double().numpy()
        rel = float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))
        agree = float((ours.argmax(-1) == theirs.argmax(-1)).mean())
        result["logits"].append({"prompt": name, "tokens": len(ids), "rel_l2": rel, "argmax_agreement": agree})

    ok = (result["tokenizer"]["mismatches"] == 0 and result["chat_template"]["mismatches"] == 0 and
          all(x["rel_l2"] < 1e-4 and x["argmax_agreement"] == 1.0 for x in result["logits"]))
    result["pass"] = ok
    with open(a.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"tokenizer: {result['tokenizer']['mismatches']} mismatches in {result['tokenizer']['texts']} texts")
    print(f"chat template: {result['chat_template']['mismatches']} mismatches in {result['chat_template']['conversations']}")
    for x in result["logits"]:
        print(f"logits {x['prompt']:5s} T={x['tokens']:4d} rel_l2={x['rel_l2']:.2e} argmax={100 * x['argmax_agreement']:.1f}%")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
