#!/usr/bin/env python3
"""Collects a pcm-mini recipe run into WORK/results.md and WORK/results.json: the data counts, each
variant's training tokens and final losses (from metrics.jsonl) and its pcm eval scores with standard
errors (from each eval's report.json). Standard library only; called by recipe.sh."""
import argparse
import json
import os
import sys


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def training_summary(metrics_path):
    if not os.path.exists(metrics_path):
        return None
    phases, tokens, last_loss, seconds = {}, 0, {}, 0.0
    with open(metrics_path) as f:
        for line in f:
            if not line.endswith("\n"):
                break  # a torn last line of a killed run
            row = json.loads(line)
            if row.get("event") == "phase_start":
                continue
            name = row.get("phase_name", str(row.get("phase")))
            phases[name] = phases.get(name, 0) + 1
            tokens += row.get("loss_tokens", 0)
            seconds += row.get("step_seconds", 0.0)
            if row.get("loss") is not None:
                last_loss.setdefault(name, []).append(row["loss"])
    # Mean of each phase's last 10 step losses: a less noisy "final loss" than one step.
    final = {k: sum(v[-10:]) / len(v[-10:]) for k, v in last_loss.items()}
    return {"steps_per_phase": phases, "loss_tokens": tokens, "train_seconds": seconds, "final_loss": final}


def score(report_path, bench):
    r = load_json(report_path)
    if not r or bench not in r:
        return None
    b = r[bench]
    return {"problems": b["problems"], "samples": b["samples"], "pass@1": b["pass@1"]["mean"],
            "stderr": b["pass@1"]["stderr"], "pass@k": b.get("pass@k", {}),
            "format_valid_rate": b.get("format_valid_rate"), "mean_length": b.get("length", {}).get("mean")}


def pct(s):
    return "—" if s is None else f"{100 * s['pass@1']:.1f} ± {100 * s['stderr']:.1f} (n={s['problems']})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--variants", default="a b c")
    ap.add_argument("--eval-n", type=int, default=4)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--p1-steps", type=int)
    ap.add_argument("--p2-steps", type=int)
    ap.add_argument("--batch-tokens", type=int)
    ap.add_argument("--eval-device", default="cpu")
    a = ap.parse_args()
    w = a.work
    names = {"a": "(a) phase 1 only", "b": "(b) phase 1 → phase 2", "c": "(c) mixture, one phase"}
    out = {"device": a.device, "eval_device": a.eval_device, "budget": {"p1_steps": a.p1_steps, "p2_steps": a.p2_steps, "batch_tokens": a.batch_tokens},
           "data": {k: load_json(f"{w}/data/{k}.stats.json") for k in ("phase1", "phase2", "phase2_test")},
           "variants": {}}
    for v in a.variants.split():
        test_name = "phase2_test"
        out["variants"][v] = {
            "training": training_summary(f"{w}/runs/{v}/metrics.jsonl"),
            "gsm8k_greedy": score(f"{w}/eval/{v}/gsm8k-greedy/report.json", "gsm8k"),
            f"gsm8k_n{a.eval_n}": score(f"{w}/eval/{v}/gsm8k-n{a.eval_n}/report.json", "gsm8k"),
            "composed_greedy": score(f"{w}/eval/{v}/composed-greedy/report.json", test_name),
        }
    with open(f"{w}/results.json", "w") as f:
        json.dump(out, f, indent=2)

    d = out["data"]
    lines = ["# pcm-mini results", "",
             f"Training device: {a.device}; evaluation device: {a.eval_device}; budget: phase 1 {a.p1_steps} steps, phase 2 {a.p2_steps} steps, "
             f"{a.batch_tokens} tokens per step (512-token rows). Scores are pass@1 in % ± one standard error over "
             "problems (`pcm eval` report.json).", ""]
    if d["phase1"]:
        lines.append(f"Data: phase 1 {d['phase1']['kept']} GSM8K train rows ({d['phase1']['dropped_benchmark_contamination']} "
                     f"dropped as benchmark overlap, {d['phase1']['dropped_grader_rejected']} rejected by the grader).")
    if d["phase2"]:
        p = d["phase2"]
        lines.append(f"Phase 2: {p['kept']} composed problems from {p['distinct_concept_lists']} distinct concept lists "
                     f"(dropped: {p['dropped_no_feasible_chain']} no feasible chain, {p['dropped_grader_rejected']} grader, "
                     f"{p['dropped_benchmark_contamination']} benchmark overlap, {p['dropped_duplicate_problem']} duplicates).")
    if d["phase2_test"]:
        p = d["phase2_test"]
        lines.append(f"Held-out: {p['kept']} composed problems, seed {p['seed']} ({p['dropped_excluded_overlap']} dropped "
                     f"for equalling a training problem, {p['dropped_benchmark_contamination']} benchmark overlap).")
    lines += ["", f"| variant | loss tokens | final loss (per phase) | GSM8K greedy | GSM8K n={a.eval_n} pass@1 | "
              f"GSM8K pass@{a.eval_n} | held-out composed greedy |", "|---|---|---|---|---|---|---|"]
    for v, r in out["variants"].items():
        t = r["training"] or {}
        losses = ", ".join(f"{k} {x:.3f}" for k, x in (t.get("final_loss") or {}).items()) or "—"
        sampled = r[f"gsm8k_n{a.eval_n}"]
        pk = "—" if not sampled else f"{100 * sampled['pass@k'].get(str(a.eval_n), float('nan')):.1f}"
        lines.append(f"| {names.get(v, v)} | {t.get('loss_tokens', '—')} | {losses} | {pct(r['gsm8k_greedy'])} | "
                     f"{pct(sampled)} | {pk} | {pct(r['composed_greedy'])} |")
    lines.append("")
    with open(f"{w}/results.md", "w") as f:
        f.write("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
