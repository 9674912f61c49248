"""Prefill baseline: one forward of the whole Mamba-2 model (random bf16 weights, batch 1) over T tokens
under torch.inference_mode, as MambaLMHeadModel computes it with the mamba_ssm Triton kernels: logits of
the last position and every layer's conv and SSM state (what a prefill for generation must produce).
Prints the median time, tok/s and peak memory per T, then where the GPU time goes (the conv is a Triton
kernel doing causal_conv1d's work, or torch's Conv1d with --conv torch)."""
import time

import torch

from common import Phase, autotune_record, base_args, peak_gb, reset_peak, say, start, sync, time_ms
import breakdown
from model import LM, SHAPES
from ref_ops import RefOps, ssd_quadratic


def check_layer(model, ops, device, summary, T):
    """Layer 0's mixer on the Triton ops against the pure-torch reference (fp32 scan) on T tokens."""
    torch.manual_seed(1)
    u = torch.randn(1, T, model.s.d_model, device=device, dtype=model.embedding.weight.dtype)
    mixer = model.layers[0].mixer
    got, _ = mixer(u)
    mixer.ops = RefOps()
    want, _ = mixer(u)
    mixer.ops = ops
    err = (got.float() - want.float()).abs().max().item() / (want.float().abs().max().item() + 1e-30)
    say(summary, f"  check: layer 0 mixer, {type(ops).__name__} vs the pure-torch scan, T={T}: "
                 f"max |diff| / max |ref| = {err:.2e} ({'ok' if err < 3e-2 else 'MISMATCH'})")


def smoke_scan_check(summary):
    """RefOps.ssd's scan against the quadratic form (CPU): the reference the GPU check trusts is right."""
    torch.manual_seed(2)
    b, l, h, p, g, n = 2, 40, 4, 8, 2, 16
    x, dt = torch.randn(b, l, h, p, dtype=torch.float64), torch.randn(b, l, h, dtype=torch.float64)
    A, D, dt_bias = -torch.rand(h, dtype=torch.float64) * 4, torch.randn(h, dtype=torch.float64), torch.randn(h)
    B, C = torch.randn(b, l, g, n, dtype=torch.float64), torch.randn(b, l, g, n, dtype=torch.float64)
    scan = RefOps().ssd(x, dt, A, B, C, 16, D, dt_bias, False)
    quad = ssd_quadratic(x, dt, A, B, C, D, dt_bias)
    err = ((scan - quad).abs().max() / quad.abs().max()).item()  # the scan runs in fp32
    say(summary, f"  smoke: scan vs quadratic SSD max |diff| / max |y| {err:.1e} ({'ok' if err < 1e-5 else 'MISMATCH'})")


def main():
    ap = base_args(__doc__)
    ap.add_argument("--shape", default="codestral-7b")
    ap.add_argument("--lengths", default="4096,16384")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--check-len", type=int, default=512, help="0: skip the layer check")
    a = ap.parse_args()
    shape = SHAPES["tiny" if a.smoke else a.shape]
    lengths = [64, 100] if a.smoke else [int(t) for t in a.lengths.split(",")]
    ops, device = start(a, "prefill")
    dtype = torch.float32 if a.smoke else torch.bfloat16
    with torch.no_grad():
        model = LM(shape, ops, device, dtype).eval()
        for p in model.parameters():  # random weights of a trained model's scale (kaiming init is too small)
            if p.dim() == 2:
                p.normal_(0.0, 0.02)
    say(a.summary, f"  {sum(p.numel() for p in model.parameters()) / 1e9:.2f}B params, "
                   f"{sum(p.numel() * p.element_size() for p in model.parameters()) / 1e9:.2f} GB")
    V = shape.vocab
    with torch.inference_mode():
        # warm-up: every T once (Triton compiles and autotunes here), then the timed reps
        w0 = time.perf_counter()
        Phase.name = "warm-up (compile + autotune)"
        finite = True
        for T in lengths:
            ids = torch.randint(0, V, (1, T), device=device)
            logits, states = model(ids, last_only=True, want_state=True)
            finite = finite and bool(torch.isfinite(logits).all()) and bool(torch.isfinite(states[-1][1]).all())
        sync(device)
        say(a.summary, f"  warm-up (compile + autotune) {time.perf_counter() - w0:.1f} s; logits and states "
                       f"{'finite' if finite else 'NOT FINITE'}")
        autotune_record(ops, a.autotune_json)
        for T in lengths:
            Phase.name = f"timing T={T}"
            ids = torch.randint(0, V, (1, T), device=device)
            reset_peak(device)
            med, mn = time_ms(lambda: model(ids, last_only=True, want_state=True), a.reps, device)
            alloc, res = peak_gb(device)
            tag = "" if getattr(ops, "conv_kind", "torch") == "triton" or a.smoke else " (torch conv)"
            say(a.summary, f"| baseline prefill T={T}{tag} | {med:.1f} ms (min {mn:.1f}) | {T / med * 1e3:.0f} tok/s "
                           f"| peak {alloc:.2f} GB allocated, {res:.2f} GB reserved |")
        T = lengths[-1]
        Phase.name = "profile"
        ids = torch.randint(0, V, (1, T), device=device)
        kinds, top = breakdown.profile(lambda: model(ids, last_only=True, want_state=True), device == "cuda")
        say(a.summary, f"  T={T} GPU time by kind: {breakdown.format_kinds(kinds, med)}")
        for ms, name in top:
            print(f"    {ms:9.2f} ms  {name[:110]}")
        if a.smoke:
            smoke_scan_check(a.summary)
        Phase.name = "layer check"
        if a.check_len:
            check_layer(model, ops, device, a.summary, 48 if a.smoke else a.check_len)


if __name__ == "__main__":
    main()
