#!/usr/bin/python3
"""CPU emulation of the lane/fragment index math of src/kernels/cuda/ssd_backward_{u,dx}_tc.cu (no GPU needed;
the per-group dcb and bc kernels: ssd_backward_group_emul.py, which imports mma and step16 from here).

Every mma.sync m16n8k8 is rebuilt from the 32 lanes' registers by the PTX fragment layout and multiplied in
float64, so a wrong lane index, k order, mask or shared-memory offset shows up as a mismatch against the
matrix formulas of the chunked backward:
  dX = D dY + diag(w) B dS^T + M^T dY,   M = tril(CB * e^(cs_i - cs_j)) diag(dt),  u_j = <(B dS^T)_j, X_j>
  U = (diag(e^cs) dY)^T C
Unwritten C·Bᵀ scratch (upper triangle, rows past len) is NaN.
Run: /usr/bin/python3 bench/emul/ssd_backward_tc_emul.py"""
import numpy as np

KP, KNTMAX = 64, 16
LANES = np.arange(32)
GQ, TQ = LANES >> 2, LANES & 3


def mma(acc, a0, a1, a2, a3, b0, b1):
    """acc[32, 4] += A B with A (16x8), B (8x8) assembled from per-lane fragments (PTX m16n8k8 tf32)."""
    A = np.full((16, 8), np.nan)
    B = np.full((8, 8), np.nan)
    A[GQ, TQ], A[GQ + 8, TQ], A[GQ, TQ + 4], A[GQ + 8, TQ + 4] = a0, a1, a2, a3
    B[TQ, GQ], B[TQ + 4, GQ] = b0, b1
    assert not np.isnan(A).any() or True
    D = A @ B
    acc[:, 0] += D[GQ, 2 * TQ]
    acc[:, 1] += D[GQ, 2 * TQ + 1]
    acc[:, 2] += D[GQ + 8, 2 * TQ]
    acc[:, 3] += D[GQ + 8, 2 * TQ + 1]


def step16(acc, f0, f1, smem, base, sn, nts):
    # base: per-lane offset of b = rs + (k0 + 4 tq) * sn + gq
    for nt in range(nts):
        bc = base + 8 * nt
        mma(acc[nt], f0[0], f1[0], f0[1], f1[1], smem[bc], smem[bc + sn])
        mma(acc[nt], f0[2], f1[2], f0[3], f1[3], smem[bc + 2 * sn], smem[bc + 3 * sn])


def block_dx(Q, N, length, dY, X, Bm, CB, dS, cs, dt, D):
    """dx_kernel of one (chunk, head): CB [Q, Q] NaN past len and above the diagonal's 64-tiles."""
    sp, P8 = KP + 2, KP // 8
    rows = (length + 15) & ~15
    dsn = N + 16 + (16 if N % 32 == 16 else 0)  # ds_stride: dS rows [p][n]
    smem = np.full(Q * sp + KP * dsn + 2 * Q, np.nan)
    for r in range(rows):
        smem[r * sp: r * sp + KP] = dY[r] if r < length else 0.0
    ds0 = Q * sp
    for p in range(KP):
        smem[ds0 + p * dsn: ds0 + p * dsn + N] = dS[p]
    css = np.zeros(Q); dts = np.zeros(Q)
    css[:length] = cs; dts[:length] = dt
    cs_last = css[length - 1]
    out = np.full((length, KP), np.nan)
    u_out = np.full(length, np.nan)
    dsum = 0.0
    for warp in range(8):
        for mt in (warp, 15 - warp):
            if 16 * mt >= length:
                continue
            r0, r1 = 16 * mt + GQ, 16 * mt + GQ + 8
            q0, q1 = np.minimum(r0, length - 1), np.minimum(r1, length - 1)
            acc = np.zeros((P8, 32, 4))
            for k0 in range(0, N, 16):
                cols = k0 + 4 * TQ
                u0 = [Bm[q0, cols + u] for u in range(4)]
                u1 = [Bm[q1, cols + u] for u in range(4)]
                for nt in range(P8):  # B fragment dS[8 nt + g][k0 + 4t .. + 3]: one 16-byte load
                    b = ds0 + (8 * nt + GQ) * dsn + k0 + 4 * TQ
                    v = [smem[b + u] for u in range(4)]
                    mma(acc[nt], u0[0], u1[0], u0[1], u1[1], v[0], v[1])
                    mma(acc[nt], u0[2], u1[2], u0[3], u1[3], v[2], v[3])
            w0 = np.exp(cs_last - css[q0]) * dts[q0]; w1 = np.exp(cs_last - css[q1]) * dts[q1]
            ok0, ok1 = r0 < length, r1 < length
            us0 = np.zeros(32); us1 = np.zeros(32)
            for nt in range(P8):
                p = 8 * nt + 2 * TQ
                x00, x01, x10, x11 = X[q0, p], X[q0, p + 1], X[q1, p], X[q1, p + 1]
                y00, y01, y10, y11 = dY[q0, p], dY[q0, p + 1], dY[q1, p], dY[q1, p + 1]
                us0 += acc[nt, :, 0] * x00 + acc[nt, :, 1] * x01
                us1 += acc[nt, :, 2] * x10 + acc[nt, :, 3] * x11
                dsum += np.where(ok0, y00 * x00 + y01 * x01, 0).sum() + np.where(ok1, y10 * x10 + y11 * x11, 0).sum()
                acc[nt, :, 0] = D * y00 + w0 * acc[nt, :, 0]
                acc[nt, :, 1] = D * y01 + w0 * acc[nt, :, 1]
                acc[nt, :, 2] = D * y10 + w1 * acc[nt, :, 2]
                acc[nt, :, 3] = D * y11 + w1 * acc[nt, :, 3]
            us0 = us0.reshape(8, 4).sum(1); us1 = us1.reshape(8, 4).sum(1)
            for gq in range(8):
                if r0[4 * gq] < length: u_out[r0[4 * gq]] = us0[gq]
                if r1[4 * gq] < length: u_out[r1[4 * gq]] = us1[gq]
            cs0, cs1, dt0, dt1 = css[q0], css[q1], dts[q0], dts[q1]
            for kb in range(mt, rows // 16):
                ib = 16 * kb + 4 * TQ
                with np.errstate(over="ignore", invalid="ignore"):
                    f0 = [np.where((ib + u >= r0) & (ib + u < length),
                                   CB[ib + u, r0] * np.exp(css[ib + u] - cs0) * dt0, 0.0) for u in range(4)]
                    f1 = [np.where((ib + u >= r1) & (ib + u < length),
                                   CB[ib + u, r1] * np.exp(css[ib + u] - cs1) * dt1, 0.0) for u in range(4)]
                step16(acc, f0, f1, smem, ib * sp + GQ, sp, P8)
            for nt in range(P8):
                p = 8 * nt + 2 * TQ
                for l in range(32):
                    if r0[l] < length: out[r0[l], p[l]], out[r0[l], p[l] + 1] = acc[nt, l, 0], acc[nt, l, 1]
                    if r1[l] < length: out[r1[l], p[l]], out[r1[l], p[l] + 1] = acc[nt, l, 2], acc[nt, l, 3]
    return out, u_out, dsum


def block_u(Q, N, length, dY, Cm, cs):
    """u_kernel of one (chunk, head): U [P, N], rows in passes of 64 through shared memory: dY rows [64][KP + 2],
    the chunk's Cᵀ rows [N][64] (from the backward's transposed copy, 0 past len; 16-byte pieces of rows XOR
    4 (n % 2)); lanes take k = i in the order 4t..4t+3, a B fragment is one 16-byte piece."""
    sp, nts = KP + 2, N // 16
    rows, pass_rows = (length + 15) & ~15, 64
    ctq = np.zeros((N, Q))
    ctq[:, :length] = Cm.T
    out = np.full((KP, N), np.nan)
    accs = [np.zeros((nts, 32, 4)) for _ in range(8)]
    for i0 in range(0, rows, pass_rows):
        prow = min(pass_rows, rows - i0)
        ys = np.full(pass_rows * sp, np.nan)
        cts = np.full(N * pass_rows, np.nan)
        for r in range(pass_rows):
            i = i0 + r
            ys[r * sp: r * sp + KP] = np.exp(cs[i]) * dY[i] if i < length else 0.0
        for n in range(N):
            for q in range(pass_rows // 4):
                i = i0 + 4 * q
                dst = n * pass_rows + 4 * (q ^ (4 * (n & 1)))
                cts[dst: dst + 4] = ctq[n, min(i, Q - 4): min(i, Q - 4) + 4] if i < Q else 0.0
        for warp in range(8):
            p0, n0 = 16 * (warp & 3), (warp >> 2) * (N // 2)
            for k0 in range(0, prow, 16):
                ya = (k0 + 4 * TQ) * sp + p0 + GQ
                f0 = [ys[ya], ys[ya + sp], ys[ya + 2 * sp], ys[ya + 3 * sp]]
                f1 = [ys[ya + 8], ys[ya + sp + 8], ys[ya + 2 * sp + 8], ys[ya + 3 * sp + 8]]
                q = (k0 >> 2) + TQ
                for nt in range(nts):
                    n = n0 + 8 * nt + GQ
                    base = n * pass_rows + 4 * (q ^ (4 * (n & 1)))
                    bv = [cts[base + u] for u in range(4)]
                    mma(accs[warp][nt], f0[0], f1[0], f0[1], f1[1], bv[0], bv[1])
                    mma(accs[warp][nt], f0[2], f1[2], f0[3], f1[3], bv[2], bv[3])
    for warp in range(8):
        p0, n0, acc = 16 * (warp & 3), (warp >> 2) * (N // 2), accs[warp]
        for nt in range(nts):
            n = n0 + 8 * nt + 2 * TQ; p = p0 + GQ
            out[p, n], out[p, n + 1] = acc[nt, :, 0], acc[nt, :, 1]
            out[p + 8, n], out[p + 8, n + 1] = acc[nt, :, 2], acc[nt, :, 3]
    return out


def check(Q, N, length, seed):
    rng = np.random.default_rng(seed)
    dY, X = rng.uniform(-1, 1, (length, KP)), rng.uniform(-1, 1, (length, KP))
    Bm, Cm = rng.uniform(-1, 1, (length, N)), rng.uniform(-1, 1, (length, N))
    S0, dS = rng.uniform(-1, 1, (KP, N)), rng.uniform(-1, 1, (KP, N))
    dt = rng.uniform(0.01, 0.3, length)
    cs = np.cumsum(dt * -1.3)
    w = np.exp(cs[-1] - cs) * dt
    CB = np.full((Q, Q), np.nan)
    cbl = Cm @ Bm.T
    CB[:length, :length] = np.where(np.tril(np.ones((length, length))) > 0, cbl, np.nan)
    D = 0.7
    M = np.tril(cbl * np.exp(cs[:, None] - cs[None, :])) * dt[None, :]
    Gm = Bm @ dS.T
    ref_x = D * dY + w[:, None] * Gm + M.T @ dY
    ref_u = (Gm * X).sum(1)
    ref_dsum = (dY * X).sum()
    dX, u, dsum = block_dx(Q, N, length, dY, X, Bm, CB, dS, cs, dt, D)
    U = block_u(Q, N, length, dY, Cm, cs)
    ref_U = (np.exp(cs)[:, None] * dY).T @ Cm
    pairs = ((dX, ref_x), (u, ref_u), (np.array([dsum]), np.array([ref_dsum])), (U, ref_U))
    errs = [np.abs(a - b).max() / np.abs(b).max() for a, b in pairs]
    ok = all(e < 1e-12 for e in errs) and not any(np.isnan(v).any() for v in (dX, u, U))
    print(f"Q {Q:3d} N {N:3d} len {length:3d}: rel err dX {errs[0]:.1e} u {errs[1]:.1e} dD {errs[2]:.1e} "
          f"U {errs[3]:.1e} {'ok' if ok else 'FAIL'}")
    return ok


if __name__ == "__main__":
    cases = [(64, 32, 64), (64, 32, 37), (64, 32, 1), (32, 16, 30), (128, 64, 100), (256, 128, 256),
             (256, 128, 162), (16, 128, 16), (16, 48, 13), (256, 64, 200), (128, 16, 65)]
    ok = all(check(Q, N, L, i) for i, (Q, N, L) in enumerate(cases))
    print("all ok" if ok else "FAILED")
    raise SystemExit(0 if ok else 1)
