#!/usr/bin/env python3
"""pcm-mini round trip against the Hugging Face stack, in two halves, so that what travels to the GPU
machine is small (the device tool carries at most 64 MiB with the whole checkout):

  prepare  (here, with pcm; standard library only): records `pcm tokenize` ids of sample texts,
           `pcm render` chat prompts, and `pcm score` float32 logits rows of a short prompt and of one
           longer than chunk_size; copies the model with model.safetensors xz-compressed.
  check    (where torch/transformers/tokenizers exist): HF `tokenizers` loads tokenizer.json and must
           give the same ids; transformers' chat template must render the same prompts;
           Mamba2ForCausalLM (float32, CPU) must give the same logits rows (relative L2 < 1e-4, same argmax).

  python3 scripts/pcm-mini/device_check.py prepare --pcm build/pcm --model models/pcm-mini \
      --texts texts.jsonl --out build-mini-run/check
  python3 check/device_check.py check --dir check --out $OUT/check.json      # on the device
Exit status 0 only when every check passes."""
import argparse
import json
import lzma
import os
import shutil
import struct
import subprocess
import sys
import tempfile

MODEL_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"]


def pcm(binary, args, stdin=None):
    r = subprocess.run([binary] + args, input=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"pcm {' '.join(args[:1])} failed: {r.stderr.strip()}")
    return r.stdout


def read_logits(path):
    """[T, V] float32 'logits' of a pcm score safetensors file, as a list of byte rows."""
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    t = header["logits"]
    assert t["dtype"] == "F32", t
    rows, cols = t["shape"]
    start = 8 + n + t["data_offsets"][0]
    return [data[start + r * cols * 4: start + (r + 1) * cols * 4] for r in range(rows)], cols


def prepare(a):
    os.makedirs(a.out, exist_ok=True)
    rows = [json.loads(line) for line in open(a.texts)][: a.max_texts]
    texts = [m["content"] for r in rows for m in r["messages"]]
    texts += ["<|im_start|>user\nhi<|im_end|>\n<think>x</think>", "  leading spaces, tabs\t\tand\nnewlines\n\n",
              "unicode: é ü 中文 🙂 – ∑ x²", "1234567890 12,345.67 $3.50 50% 3/4 \\boxed{\\frac{3}{7}}"]
    ids = [[int(x) for x in pcm(a.pcm, ["tokenize", "--model", a.model, "--text", "-"], stdin=t).strip().split(",") if x]
           for t in texts]
    chats = []
    for r in rows[:20]:
        msgs = [m for m in r["messages"] if m["role"] == "user"]
        with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
            json.dump(msgs, f)
            f.flush()
            chats.append({"messages": msgs, "rendered": pcm(a.pcm, ["render", "--model", a.model, "--messages", f.name,
                                                                     "--add-generation-prompt"])})
    chunk = json.load(open(f"{a.model}/config.json"))["chunk_size"]
    long_text = "\n".join(m["content"] for r in rows[:6] for m in r["messages"])
    prompts = {"short": ids[0][:48], "long": [i for t in ids[:40] for i in t][: 2 * chunk + 5]}
    if len(prompts["long"]) <= chunk:
        raise SystemExit(f"prepare: the long prompt has only {len(prompts['long'])} tokens (chunk_size {chunk})")
    logit_rows = {}
    for name, p in prompts.items():
        # Rows at the start, around each chunk boundary and at the end (the whole [T, V] would be MBs).
        keep = sorted({i for i in list(range(4)) + [chunk - 2, chunk - 1, chunk, chunk + 1] + list(range(len(p) - 4, len(p)))
                       if 0 <= i < len(p)})
        with tempfile.TemporaryDirectory() as d:
            pcm(a.pcm, ["score", "--model", a.model, "--prompt-ids", ",".join(map(str, p)), "--out", f"{d}/l.safetensors"])
            all_rows, cols = read_logits(f"{d}/l.safetensors")
        with open(f"{a.out}/logits-{name}.f32", "wb") as f:
            for i in keep:
                f.write(all_rows[i])
        logit_rows[name] = {"ids": p, "rows": keep, "vocab": cols}
    json.dump({"texts": texts, "pcm_ids": ids, "chats": chats, "prompts": logit_rows},
              open(f"{a.out}/expected.json", "w"), ensure_ascii=False)
    os.makedirs(f"{a.out}/model", exist_ok=True)
    for f in MODEL_FILES:
        if os.path.exists(f"{a.model}/{f}"):
            shutil.copy(f"{a.model}/{f}", f"{a.out}/model/{f}")
    with open(f"{a.model}/model.safetensors", "rb") as src, lzma.open(f"{a.out}/model/model.safetensors.xz", "wb", preset=6) as dst:
        shutil.copyfileobj(src, dst)
    shutil.copy(os.path.abspath(__file__), f"{a.out}/device_check.py")
    print(f"prepared {a.out}: {len(texts)} texts, {len(chats)} chat prompts, logits rows of {list(prompts)}")
    return 0


def check(a):
    import numpy as np
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer, Mamba2ForCausalLM

    torch.backends.cuda.matmul.allow_tf32 = False
    model_dir = f"{a.dir}/model"
    if not os.path.exists(f"{model_dir}/model.safetensors"):
        with lzma.open(f"{model_dir}/model.safetensors.xz", "rb") as src, open(f"{model_dir}/model.safetensors", "wb") as dst:
            shutil.copyfileobj(src, dst)
    exp = json.load(open(f"{a.dir}/expected.json"))
    result = {}

    hf_tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    bad = [{"text": t[:200], "pcm": ours[:40], "hf": hf_tok.encode(t, add_special_tokens=False).ids[:40]}
           for t, ours in zip(exp["texts"], exp["pcm_ids"]) if hf_tok.encode(t, add_special_tokens=False).ids != ours]
    result["tokenizer"] = {"texts": len(exp["texts"]), "mismatches": len(bad), "examples": bad[:5]}

    auto_tok = AutoTokenizer.from_pretrained(model_dir)
    tmpl_bad = sum(auto_tok.apply_chat_template(c["messages"], tokenize=False, add_generation_prompt=True) != c["rendered"]
                   for c in exp["chats"])
    result["chat_template"] = {"conversations": len(exp["chats"]), "mismatches": int(tmpl_bad)}

    model = Mamba2ForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32).eval()
    result["logits"] = []
    for name, p in exp["prompts"].items():
        ours = np.fromfile(f"{a.dir}/logits-{name}.f32", dtype="<f4").reshape(len(p["rows"]), p["vocab"]).astype(np.float64)
        with torch.no_grad():
            theirs = model(torch.tensor([p["ids"]])).logits[0].double().numpy()[p["rows"]]
        rel = float(np.linalg.norm(ours - theirs) / np.linalg.norm(theirs))
        agree = float((ours.argmax(-1) == theirs.argmax(-1)).mean())
        result["logits"].append({"prompt": name, "tokens": len(p["ids"]), "rows_compared": len(p["rows"]),
                                 "rel_l2": rel, "argmax_agreement": agree})

    import tokenizers as tk
    import transformers as tf
    result["versions"] = {"torch": torch.__version__, "transformers": tf.__version__, "tokenizers": tk.__version__}
    ok = (result["tokenizer"]["mismatches"] == 0 and result["chat_template"]["mismatches"] == 0 and
          all(x["rel_l2"] < 1e-4 and x["argmax_agreement"] == 1.0 for x in result["logits"]))
    result["pass"] = ok
    json.dump(result, open(a.out, "w"), indent=1)
    print(f"tokenizer: {result['tokenizer']['mismatches']} mismatches in {result['tokenizer']['texts']} texts")
    print(f"chat template: {result['chat_template']['mismatches']} mismatches in {result['chat_template']['conversations']}")
    for x in result["logits"]:
        print(f"logits {x['prompt']:5s} T={x['tokens']:4d} rows={x['rows_compared']:2d} rel_l2={x['rel_l2']:.2e} "
              f"argmax={100 * x['argmax_agreement']:.1f}%")
    print(result["versions"])
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--pcm", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--texts", required=True, help="JSONL rows with messages (user/assistant turns)")
    p.add_argument("--max-texts", type=int, default=200)
    p.add_argument("--out", required=True)
    c = sub.add_parser("check")
    c.add_argument("--dir", required=True)
    c.add_argument("--out", required=True)
    a = ap.parse_args()
    return prepare(a) if a.cmd == "prepare" else check(a)


if __name__ == "__main__":
    sys.exit(main())
