#!/usr/bin/python3
"""CPU emulation of the lane/fragment index math of src/kernels/cuda/ssd_backward_{u,dcb,dx,bc}_tc.cu (no GPU needed).

Every mma.sync m16n8k8 is rebuilt from the 32 lanes' registers by the PTX fragment layout and multiplied in
float64, so a wrong lane index, k order, mask or shared-memory offset shows up as a mismatch against the
matrix formulas of the chunked backward:
  dC = diag(e^cs) dY S0 + tril(dCB) B,  inter_i = <(diag(e^cs) dY S0)_i, C_i>
  dB = diag(w) X dS + tril(dCB)^T C,    w_j = e^(cs_last - cs_j) dt_j
  dX = D dY + diag(w) B dS^T + M^T dY,   M = tril(CB * e^(cs_i - cs_j)) diag(dt),  u_j = <(B dS^T)_j, X_j>
  U = (diag(e^cs) dY)^T C
  dCB = tril(dY X^T * L) diag(dt),  R = tril(dY X^T * L * CB), col = sum_i R, row = R dt  (as the scalars read)
Unwritten dCB scratch (upper triangle, rows past len) is NaN, as the tests poison it.
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


def block(is_c, Q, N, length, dY, X, Brow, Crow, St, cs, dt, dcb):
    """One (chunk, head) block. dY, X: [len, P]; Brow, Crow: [len, N]; St: [P, N]; dcb: [Q, Q] (NaN-poisoned)."""
    sn, nts, rows = N + 2, N // 8, (length + 15) & ~15
    smem = np.full((Q + KP) * sn, np.nan)
    rowsrc = Brow if is_c else Crow
    for r in range(rows):  # fill
        smem[r * sn: r * sn + N] = rowsrc[r] if r < length else 0.0
    for p in range(KP):
        smem[(Q + p) * sn:(Q + p) * sn + N] = St[p]  # st = smem + Q * sn
    out = np.full((length, N), np.nan)
    inter = np.full(length, np.nan)
    cs_last = cs[length - 1]
    for warp in range(8):
        for mt in (warp, 15 - warp):
            if 16 * mt >= length:
                continue
            r0, r1 = 16 * mt + GQ, 16 * mt + GQ + 8
            q0, q1 = np.minimum(r0, length - 1), np.minimum(r1, length - 1)
            acc = np.zeros((KNTMAX, 32, 4))
            Am = dY if is_c else X
            for k0 in range(0, KP, 16):
                cols = k0 + 4 * TQ
                u0 = np.stack([Am[q0, cols + u] for u in range(4)])
                u1 = np.stack([Am[q1, cols + u] for u in range(4)])
                step16(acc, u0, u1, smem, Q * sn + (k0 + 4 * TQ) * sn + GQ, sn, nts)
            if is_c:
                s0, s1 = np.exp(cs[q0]), np.exp(cs[q1])
            else:
                s0, s1 = np.exp(cs_last - cs[q0]) * dt[q0], np.exp(cs_last - cs[q1]) * dt[q1]
            acc[:, :, 0] *= s0; acc[:, :, 1] *= s0; acc[:, :, 2] *= s1; acc[:, :, 3] *= s1
            if is_c:
                d0 = np.zeros(32); d1 = np.zeros(32)
                for nt in range(nts):
                    n = 8 * nt + 2 * TQ
                    d0 += acc[nt, :, 0] * Crow[q0, n] + acc[nt, :, 1] * Crow[q0, n + 1]
                    d1 += acc[nt, :, 2] * Crow[q1, n] + acc[nt, :, 3] * Crow[q1, n + 1]
                d0 = d0.reshape(8, 4).sum(1); d1 = d1.reshape(8, 4).sum(1)  # xor-shuffle over tq
                for gq in range(8):
                    if r0[4 * gq] < length: inter[r0[4 * gq]] = d0[gq]
                    if r1[4 * gq] < length: inter[r1[4 * gq]] = d1[gq]
                for kb in range(mt + 1):
                    jb = 16 * kb + 4 * TQ
                    e0 = [dcb[r0, jb + u] for u in range(4)]
                    e1 = [dcb[r1, jb + u] for u in range(4)]
                    f0 = [np.where((jb + u <= r0) & (r0 < length), e0[u], 0.0) for u in range(4)]
                    f1 = [np.where((jb + u <= r1) & (r1 < length), e1[u], 0.0) for u in range(4)]
                    step16(acc, f0, f1, smem, jb * sn + GQ, sn, nts)
            else:
                for kb in range(mt, rows // 16):
                    ib = 16 * kb + 4 * TQ
                    f0 = [np.where((ib + u >= r0) & (ib + u < length), dcb[ib + u, r0], 0.0) for u in range(4)]
                    f1 = [np.where((ib + u >= r1) & (ib + u < length), dcb[ib + u, r1], 0.0) for u in range(4)]
                    step16(acc, f0, f1, smem, ib * sn + GQ, sn, nts)
            for nt in range(nts):
                n = 8 * nt + 2 * TQ
                for l in range(32):
                    if r0[l] < length: out[r0[l], n[l]], out[r0[l], n[l] + 1] = acc[nt, l, 0], acc[nt, l, 1]
                    if r1[l] < length: out[r1[l], n[l]], out[r1[l], n[l] + 1] = acc[nt, l, 2], acc[nt, l, 3]
    return out, inter


def block_dx(Q, N, length, dY, X, Bm, CB, dS, cs, dt, D):
    """dx_kernel of one (chunk, head): CB [Q, Q] NaN past len and above the diagonal's 64-tiles."""
    sp, P8 = KP + 2, KP // 8
    rows = (length + 15) & ~15
    smem = np.full((Q + N) * sp + 2 * Q, np.nan)
    for r in range(rows):
        smem[r * sp: r * sp + KP] = dY[r] if r < length else 0.0
    ds0 = Q * sp
    for p in range(KP):
        for n in range(N):
            smem[ds0 + n * sp + p] = dS[p, n]
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
                step16(acc, u0, u1, smem, ds0 + (k0 + 4 * TQ) * sp + GQ, sp, P8)
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


def block_dcb(Q, length, dY, X, CB, cs, dt):
    """dcb_kernel of one (chunk, head): returns dcb [Q, Q] (NaN where unwritten), col/row slots [qt, Q]."""
    xs_stride = KP + 16
    rows = (length + 15) & ~15
    qt = (Q + 63) // 64
    xs = np.full(Q * xs_stride, np.nan)
    for r in range(rows):
        xs[r * xs_stride: r * xs_stride + KP] = X[r] if r < length else 0.0
    css = np.zeros(Q); dts = np.zeros(Q)
    css[:length] = cs; dts[:length] = dt
    colp = np.zeros((8, Q))
    dcb = np.full((Q, Q), np.nan)
    col = np.full((qt, Q), np.nan); row = np.full((qt, Q), np.nan)
    for warp in range(8):
        for mt in (warp, 15 - warp):
            if 16 * mt >= length:
                continue
            r0, r1 = 16 * mt + GQ, 16 * mt + GQ + 8
            q0, q1 = np.minimum(r0, length - 1), np.minimum(r1, length - 1)
            fa = []
            for ks in range(KP // 16):
                u0 = [dY[q0, 16 * ks + 4 * TQ + u] for u in range(4)]
                u1 = [dY[q1, 16 * ks + 4 * TQ + u] for u in range(4)]
                fa.append([u0[0], u1[0], u0[1], u1[1], u0[2], u1[2], u0[3], u1[3]])
            cs0, cs1 = css[q0], css[q1]
            rs0 = np.zeros(32); rs1 = np.zeros(32)
            for jb in range(mt + 1):
                acc = np.zeros((2, 32, 4))
                for ks in range(KP // 16):
                    for nt in range(2):
                        base = (16 * jb + 8 * nt + GQ) * xs_stride + 16 * ks + 4 * TQ
                        b = [xs[base + u] for u in range(4)]
                        f = fa[ks]
                        mma(acc[nt], f[0], f[1], f[2], f[3], b[0], b[1])
                        mma(acc[nt], f[4], f[5], f[6], f[7], b[2], b[3])
                for nt in range(2):
                    j = 16 * jb + 8 * nt + 2 * TQ
                    R = []
                    for e in range(4):
                        r = r0 if e < 2 else r1
                        jj = j + (e & 1)
                        valid = (r < length) & (jj <= r)
                        with np.errstate(over="ignore", invalid="ignore"):
                            gL = np.where(valid, acc[nt, :, e] * np.exp((cs0 if e < 2 else cs1) - css[jj]), 0.0)
                            R.append(np.where(valid, gL * CB[r, jj], 0.0))
                        for l in range(32):
                            if r[l] < length: dcb[r[l], jj[l]] = gL[l] * dts[jj[l]]
                    rs0 += R[0] * dts[j] + R[1] * dts[j + 1]
                    rs1 += R[2] * dts[j] + R[3] * dts[j + 1]
                    c0 = (R[0] + R[2]).reshape(8, 4).sum(0)  # over g (lanes 4 apart): per tq
                    c1 = (R[1] + R[3]).reshape(8, 4).sum(0)
                    for t in range(4):
                        colp[warp, j[t]] += c0[t]
                        colp[warp, j[t] + 1] += c1[t]
            rs0 = rs0.reshape(8, 4).sum(1); rs1 = rs1.reshape(8, 4).sum(1)
            for gq in range(8):
                for r, v in ((r0[4 * gq], rs0[gq]), (r1[4 * gq], rs1[gq])):
                    if r >= length: continue
                    row[0, r] = v
                    for jt in range(1, r // 64 + 1): row[jt, r] = 0.0
    for j in range(length):
        col[j // 64, j] = colp[:, j].sum()
        it = j // 64 + 1
        while it * 64 < length:
            col[it, j] = 0.0; it += 1
    return dcb, col, row


def block_u(Q, N, length, dY, Cm, cs):
    """u_kernel of one (chunk, head): U [P, N]."""
    sp, sn, nts = KP + 2, N + 2, N // 16
    rows = (length + 15) & ~15
    ys = np.full(Q * sp, np.nan); cs_ = np.full(Q * sn, np.nan)
    for r in range(rows):
        ys[r * sp: r * sp + KP] = np.exp(cs[r]) * dY[r] if r < length else 0.0
        cs_[r * sn: r * sn + N] = Cm[r] if r < length else 0.0
    out = np.full((KP, N), np.nan)
    for warp in range(8):
        p0, n0 = 16 * (warp & 3), (warp >> 2) * (N // 2)
        acc = np.zeros((nts, 32, 4))
        for k0 in range(0, rows, 16):
            ya = (k0 + 4 * TQ) * sp + p0 + GQ
            f0 = [ys[ya], ys[ya + sp], ys[ya + 2 * sp], ys[ya + 3 * sp]]
            f1 = [ys[ya + 8], ys[ya + sp + 8], ys[ya + 2 * sp + 8], ys[ya + 3 * sp + 8]]
            step16(acc, f0, f1, cs_, (k0 + 4 * TQ) * sn + n0 + GQ, sn, nts)
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
    dcb = np.full((Q, Q), np.nan)
    low = np.tril(rng.uniform(-1, 1, (length, length)))
    dcb[:length, :length] = np.where(np.tril(np.ones((length, length))) > 0, low, np.nan)
    w = np.exp(cs[-1] - cs) * dt
    first_c = np.exp(cs)[:, None] * (dY @ S0)
    ref_c = first_c + low @ Bm
    ref_inter = (first_c * Cm).sum(1)
    ref_b = w[:, None] * (X @ dS) + low.T @ Cm
    dC, inter = block(True, Q, N, length, dY, X, Bm, Cm, S0, cs, dt, dcb)
    dB, _ = block(False, Q, N, length, dY, X, Bm, Cm, dS, cs, dt, dcb)
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
    # dcb: what the scalar step reads (col slots it >= j / 64 below len, row slots jt <= i / 64) summed
    dM = (dY @ X.T) * np.tril(np.exp(cs[:, None] - cs[None, :]))
    Rm = np.tril(dM * cbl)
    ref_dcb = np.tril(dM) * dt[None, :]
    dcb_out, col, row = block_dcb(Q, length, dY, X, CB, cs, dt)
    colR = np.array([sum(col[it, j] for it in range(j // 64, (length + 63) // 64)) for j in range(length)])
    rowR = np.array([sum(row[jt, i] for jt in range(i // 64 + 1)) for i in range(length)])
    U = block_u(Q, N, length, dY, Cm, cs)
    ref_U = (np.exp(cs)[:, None] * dY).T @ Cm
    got_dcb = np.where(np.tril(np.ones((length, length))) > 0, dcb_out[:length, :length], 0.0)
    pairs = ((dC, ref_c), (inter, ref_inter), (dB, ref_b), (dX, ref_x), (u, ref_u), (np.array([dsum]), np.array([ref_dsum])),
             (got_dcb, ref_dcb), (colR, Rm.sum(0)), (rowR, (Rm * dt[None, :]).sum(1)), (U, ref_U))
    errs = [np.abs(a - b).max() / np.abs(b).max() for a, b in pairs]
    ok = all(e < 1e-12 for e in errs) and not any(np.isnan(v).any() for v in (dC, inter, dB, dX, u, got_dcb, colR, rowR, U))
    print(f"Q {Q:3d} N {N:3d} len {length:3d}: rel err dC {errs[0]:.1e} inter {errs[1]:.1e} dB {errs[2]:.1e} "
          f"dX {errs[3]:.1e} u {errs[4]:.1e} dD {errs[5]:.1e} dCB {errs[6]:.1e} col {errs[7]:.1e} row {errs[8]:.1e} "
          f"U {errs[9]:.1e} "
          f"{'ok' if ok else 'FAIL'}")
    return ok


if __name__ == "__main__":
    cases = [(64, 32, 64), (64, 32, 37), (64, 32, 1), (32, 16, 30), (128, 64, 100), (256, 128, 256),
             (256, 128, 162), (16, 128, 16), (16, 48, 13), (256, 64, 200), (128, 16, 65)]
    ok = all(check(Q, N, L, i) for i, (Q, N, L) in enumerate(cases))
    print("all ok" if ok else "FAILED")
    raise SystemExit(0 if ok else 1)
