#!/usr/bin/env python3
"""Summarise per-block timestamps of the one-row decode layer chain (cuda_decode_kernels --trace DIR).

Each CSV row is one block: kind + 256 x block index (kind 0 in_proj, 1 out_proj, 2 head, 3 SSD step), the kind's
block count when it was recorded (launch = count // grid), SM, tag, and its start / wait passed / inputs ready /
end in ns. Per layer the times are relative to t0 = the end of in_proj's last block; the tables give medians over
the middle layers (µs): the chain's milestones, when the in_proj / out_proj blocks end (percentiles over blocks,
and by rows per warp), and how the step's blocks share SMs with out_proj's.
usage: decode_trace_summary.py FILE.csv [FILE.csv ...]
"""
import csv
import statistics
import sys
from collections import defaultdict

IN, OUT, STEP = 0, 1, 3
ROWS = {IN: 18560, OUT: 4096}  # in_proj's rows (z | xBC | dt) and out_proj's (d) at the bench's Codestral shape
WARPS = 8


def launches(path):
    rows = defaultdict(list)
    with open(path) as f:
        for r in csv.DictReader(f):
            rec = {k: int(v) for k, v in r.items()}
            rec["block"] = rec["kind"] >> 8
            rows[rec["kind"] & 255].append(rec)
    per = {}
    for kind, rs in rows.items():
        grid = max(r["block"] for r in rs) + 1
        by = defaultdict(list)
        for r in rs:
            by[r["count"] // grid].append(r)
        per[kind] = ([by[i] for i in sorted(by)], grid)
    return per


def end_by_rows(m, name, blocks, grid, n_rows, rel):
    """Median end of the blocks whose warps stream each number of rows (warp w of block b: rows b * 8 + w + k * stride)."""
    stride = grid * WARPS
    rows_of = lambda b: (n_rows - 1 - b * WARPS) // stride + 1
    for nrows in sorted({rows_of(b) for b in range(grid)}):
        ends = [b["end"] for b in blocks if rows_of(b["block"]) == nrows]
        m[f"{name}: median end, blocks of {nrows}-row warps ({len(ends)})"].append(rel(statistics.median(ends)))


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def summary(path):
    per = launches(path)
    (inp, in_grid), (step, _), (out, out_grid) = per[IN], per[STEP], per[OUT]
    m = defaultdict(list)
    L = min(len(inp), len(step), len(out))
    in_rows, out_rows = ROWS[IN], ROWS[OUT]
    for i in range(2, L - 2):
        t0 = max(b["end"] for b in inp[i])
        rel = lambda v: (v - t0) / 1e3
        m["layer period"].append((max(b["end"] for b in inp[i + 1]) - t0) / 1e3)
        m["in: duration (prev out end -> in end)"].append(-rel(max(b["end"] for b in out[i - 1])))
        m["in: last wait passed"].append(rel(max(b["wait"] for b in inp[i])))
        m["in: last ready"].append(rel(max(b["ready"] for b in inp[i])))
        for q in (0.0, 0.1, 0.5, 0.9):
            m[f"in: block end p{int(q * 100)}"].append(rel(pct([b["end"] for b in inp[i]], q)))
        end_by_rows(m, "in", inp[i], in_grid, in_rows, rel)
        for name, blocks in (("step", step[i]), ("out", out[i])):
            m[f"{name}: first start"].append(rel(min(b["start"] for b in blocks)))
            m[f"{name}: last start"].append(rel(max(b["start"] for b in blocks)))
            m[f"{name}: last wait passed"].append(rel(max(b["wait"] for b in blocks)))
            m[f"{name}: last ready"].append(rel(max(b["ready"] for b in blocks)))
            m[f"{name}: last end"].append(rel(max(b["end"] for b in blocks)))
        for q in (0.0, 0.1, 0.5, 0.9):
            m[f"out: block end p{int(q * 100)}"].append(rel(pct([b["end"] for b in out[i]], q)))
        end_by_rows(m, "out", out[i], out_grid, out_rows, rel)
        # SMs that ran two step blocks, and when out_proj's blocks started there and elsewhere
        per_sm = defaultdict(int)
        for b in step[i]:
            per_sm[b["sm"]] += 1
        doubled = {sm for sm, n in per_sm.items() if n > 1}
        m["step: SMs with 2+ step blocks"].append(len(doubled))
        late = [b["start"] for b in out[i] if b["sm"] in doubled]
        rest = [b["start"] for b in out[i] if b["sm"] not in doubled]
        if late:
            m["out: last start on those SMs"].append(rel(max(late)))
        m["out: last start elsewhere"].append(rel(max(rest)))
        m["next in: first start"].append(rel(min(b["start"] for b in inp[i + 1])))
    return {k: statistics.median(v) for k, v in m.items()}


def main():
    paths = sys.argv[1:]
    if not paths:
        print(__doc__)
        return 2
    sums = [summary(p) for p in paths]
    names = [p.rsplit("/", 1)[-1].removesuffix(".csv") for p in paths]
    keys = list(dict.fromkeys(k for s in sums for k in s))
    print("| µs from in_proj's end (median over layers) | " + " | ".join(names) + " |")
    print("| --- |" + " --- |" * len(names))
    for key in keys:
        print(f"| {key} | " + " | ".join(f"{s[key]:.2f}" if key in s else "-" for s in sums) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
