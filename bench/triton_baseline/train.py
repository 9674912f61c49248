"""Training-step baseline: the Mamba-2 model with fp32 master weights, forward and backward under bf16
autocast through the mamba_ssm Triton kernels (mamba_chunk_scan_combined's autograd Function, the Triton
norms), cross-entropy over every position, gradient clipping at 1.0 and torch.optim.AdamW(fused=True).
Prints ms/step (median), tokens/s and peak memory for each batch size (OOM is reported, not fatal), then
where the GPU time of one step goes."""
import time

import torch
import torch.nn.functional as F

from common import Phase, autotune_record, base_args, peak_gb, reset_peak, say, start, sync, time_ms
import breakdown
from model import LM, SHAPES


def main():
    ap = base_args(__doc__)
    ap.add_argument("--shape", default="mamba2-1.3b")
    ap.add_argument("--seq-len", type=int, default=2048)
    ap.add_argument("--batches", default="4,8")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--profile-all", action="store_true", help="a GPU-time breakdown for every batch size")
    a = ap.parse_args()
    shape = SHAPES["tiny" if a.smoke else a.shape]
    seq = 32 if a.smoke else a.seq_len
    ops, device = start(a, "train", f"seq {seq}, ")
    model = LM(shape, ops, device, torch.float32).train()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2 and "conv" not in name:
                p.normal_(0.0, 0.02)
    params = list(model.parameters())
    fused = {"fused": True} if device == "cuda" else {}  # the CPU smoke test may run an older torch
    opt = torch.optim.AdamW(params, lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1, **fused)
    say(a.summary, f"  {sum(p.numel() for p in params) / 1e9:.3f}B params, fp32 master weights, bf16 autocast, "
                   f"AdamW fused={device == 'cuda'}, clip 1.0")
    V = shape.vocab

    def step(ids, labels):
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            logits, _ = model(ids)
            loss = F.cross_entropy(logits.view(-1, V), labels.view(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return loss

    for i, bsz in enumerate(int(b) for b in a.batches.split(",")):
        ids = torch.randint(0, V, (bsz, seq + 1), device=device)
        ids, labels = ids[:, :-1].contiguous(), ids[:, 1:].contiguous()
        Phase.name = f"batch {bsz} warm-up"
        try:
            w0 = time.perf_counter()
            for _ in range(a.warmup):
                loss = step(ids, labels)
            sync(device)
            say(a.summary, f"  batch {bsz}: warm-up {a.warmup} steps {time.perf_counter() - w0:.1f} s"
                           f"{' (compile + autotune)' if i == 0 else ''}, loss {loss.item():.4f}")
            autotune_record(ops, a.autotune_json)
            Phase.name = f"batch {bsz} timing"
            reset_peak(device)
            med, mn = time_ms(lambda: step(ids, labels), a.reps, device)
            alloc, res = peak_gb(device)
            say(a.summary, f"| baseline train B={bsz}x{seq} | {med:.1f} ms/step (min {mn:.1f}) | "
                           f"{bsz * seq / med * 1e3:.0f} tok/s | peak {alloc:.2f} GB allocated, {res:.2f} GB reserved |")
            if i == 0 or a.profile_all:
                Phase.name = f"batch {bsz} profile"
                kinds, top = breakdown.profile(lambda: step(ids, labels), device == "cuda")
                say(a.summary, f"  B={bsz} step GPU time by kind: {breakdown.format_kinds(kinds, med)}")
                for ms, name in top:
                    print(f"    {ms:9.2f} ms  {name[:110]}")
        except torch.cuda.OutOfMemoryError if device == "cuda" else MemoryError:
            say(a.summary, f"| baseline train B={bsz}x{seq} | OOM | | |")
        loss = None
        if device == "cuda":
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
