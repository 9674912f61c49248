#!/usr/bin/python3
"""CPU emulation of the lane/fragment index math of src/kernels/cuda/ssd_prefill_tc.cu's chunk_states_kernel<true>
(the tc backward's recompute: B of each chunk transposed, [N][Q], 16-byte pieces of rows j swizzled by 4 (n % 2),
x rows swizzled by 8 ((j / 4) % 4), lanes taking k = j in the order 4t..4t+3 per 16 rows) against
states = (w ∘ X)ᵀ B, with every unwritten shared slot NaN.
Run: /usr/bin/python3 bench/emul/ssd_chunk_states_emul.py"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssd_backward_tc_emul import GQ, TQ, mma  # noqa: E402

KP, KN, KS = 64, 128, 64


def run(Q, length, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (length, KP)); B = rng.uniform(-1, 1, (length, KN)); w = rng.uniform(0, 1, length)
    ref = (X * w[:, None]).T @ B
    # bt [N][Q], 0 past len
    bt = np.zeros((KN, Q)); bt[:, :length] = B.T
    slabs = (length + KS - 1) // KS
    wfull = np.zeros(slabs * KS); wfull[:length] = w
    out = np.full((KP, KN), np.nan)
    for warp in range(8):
        m0, n0 = 16 * (warp & 3), 64 * (warp >> 2)
        acc = np.zeros((8, 32, 4))
        for s in range(slabs):
            xs = np.full(KS * KP, np.nan); bs = np.full(KN * KS, np.nan)
            for r in range(KS):
                j = s * KS + r
                sw = 8 * ((r >> 2) & 3)
                for col in range(0, KP, 4):
                    for u in range(4):
                        xs[r * KP + ((col ^ sw) + u)] = X[j, col + u] if j < length else 0.0
            for n in range(KN):
                for q in range(KS // 4):
                    j = s * KS + 4 * q
                    for u in range(4):
                        bs[n * KS + 4 * (q ^ (4 * (n & 1))) + u] = bt[n, min(j, Q - 4) + u] if j < Q else 0.0
            ws = wfull[s * KS:(s + 1) * KS]
            for k0 in range(0, KS, 16):
                j4 = k0 + 4 * TQ
                sw = 8 * ((j4 >> 2) & 3)
                a0 = [ws[j4 + u] * xs[(j4 + u) * KP + ((m0 + GQ) ^ sw)] for u in range(4)]
                a1 = [ws[j4 + u] * xs[(j4 + u) * KP + ((m0 + GQ + 8) ^ sw)] for u in range(4)]
                for nt in range(8):
                    n = n0 + 8 * nt + GQ
                    base = n * KS + 4 * ((j4 >> 2) ^ (4 * (n & 1)))
                    bv = [bs[base + u] for u in range(4)]
                    mma(acc[nt], a0[0], a1[0], a0[1], a1[1], bv[0], bv[1])
                    mma(acc[nt], a0[2], a1[2], a0[3], a1[3], bv[2], bv[3])
        for nt in range(8):
            n = n0 + 8 * nt + 2 * TQ; p = m0 + GQ
            out[p, n], out[p, n + 1] = acc[nt][:, 0], acc[nt][:, 1]
            out[p + 8, n], out[p + 8, n + 1] = acc[nt][:, 2], acc[nt][:, 3]
    e = np.abs(out - ref).max() / np.abs(ref).max()
    print(f"Q {Q:3d} len {length:3d}: rel err {e:.1e}", "ok" if e < 1e-12 else "FAIL")
    return e < 1e-12


if __name__ == "__main__":
    ok = all([run(Q, L, i) for i, (Q, L) in enumerate([(256, 256), (256, 162), (64, 37), (16, 16), (48, 48), (32, 1)])])
    print("all ok" if ok else "FAILED")
    raise SystemExit(0 if ok else 1)
