"""One table from a device call: the Triton baseline's lines (its summary) next to pcm's bench output,
same GPU, same call. The ratio is pcm over baseline in tokens/s (higher is better for pcm) and pcm over
baseline in peak memory (lower is better for pcm).
  table.py SUMMARY PCM_PREFILL_OUT PCM_TRAIN_OUT [PCM_TRAIN8_OUT]"""
import re
import sys


def grab(path, pattern):
    try:
        text = open(path, errors="replace").read()
    except OSError:
        return []
    return re.findall(pattern, text, re.M)


def main():
    summary, pcm_prefill, pcm_train = sys.argv[1:4]
    pcm_train8 = sys.argv[4] if len(sys.argv) > 4 else None
    base_pf = {int(t): (float(ms), float(tps)) for t, ms, tps in
               grab(summary, r"^\| baseline prefill T=(\d+) \| ([\d.]+) ms .*?\| (\d+) tok/s")}
    base_tr = {int(b): (float(ms), float(tps), float(gb)) for b, ms, tps, gb in
               grab(summary, r"^\| baseline train B=(\d+)x\d+ \| ([\d.]+) ms/step .*?\| (\d+) tok/s \| peak [\d.]+ GB "
                             r"allocated, ([\d.]+) GB reserved")}
    pcm_pf = {int(t): (float(ms), float(tps)) for t, ms, tps in
              grab(pcm_prefill, r"^\| T=(\d+) \| \d+ \| ([\d.]+) \| (\d+) \|")}

    def pcm_tr(path):
        m = grab(path, r"^ms/step ([\d.]+) .*?\| tokens/s (\d+) \| peak device memory ([\d.]+) GB") if path else []
        return tuple(float(v) for v in m[0]) if m else None

    pcm_trs = {4: pcm_tr(pcm_train), 8: pcm_tr(pcm_train8)}
    rows = ["| measure (same GPU, same call) | Triton baseline | pcm | pcm / baseline |", "| --- | --- | --- | --- |"]

    def row(name, b, p, unit, fmt="{:.0f}", note=""):
        ratio = f"{p / b:.2f}x{note}" if b and p else "-"
        rows.append(f"| {name} | {fmt.format(b) + ' ' + unit if b else 'missing'} | "
                    f"{fmt.format(p) + ' ' + unit if p else 'missing'} | {ratio} |")

    for T in sorted(set(base_pf) | set(pcm_pf)):
        b, p = base_pf.get(T), pcm_pf.get(T)
        row(f"prefill T={T}, batch 1", b and b[1], p and p[1], "tok/s",
            note=f" ({b[0]:.1f} vs {p[0]:.1f} ms)" if b and p else "")
    for T, ms, tps in grab(summary, r"^\| baseline prefill T=(\d+) \(torch conv\) \| ([\d.]+) ms .*?\| (\d+) tok/s"):
        p = pcm_pf.get(int(T))
        row(f"prefill T={T}, baseline with torch's conv", float(tps), p and p[1], "tok/s",
            note=f" ({float(ms):.1f} vs {p[0]:.1f} ms)" if p else "")
    for B in sorted(set(base_tr) | {k for k, v in pcm_trs.items() if v}):
        b, p = base_tr.get(B), pcm_trs.get(B)
        row(f"train {B}x2048 tokens/s", b and b[1], p and p[1], "tok/s",
            note=f" ({b[0]:.1f} vs {p[0]:.1f} ms/step)" if b and p else "")
        row(f"train {B}x2048 peak memory", b and b[2], p and p[2], "GB", "{:.1f}")
    oom = grab(summary, r"^\| baseline train B=(\d+)x\d+ \| OOM")
    for B in oom:
        rows.append(f"| train {B}x2048 | OOM | | |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
