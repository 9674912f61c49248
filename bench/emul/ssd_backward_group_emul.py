#!/usr/bin/python3
"""CPU emulation of the lane/fragment index math of the per-group kernels of the chunked SSD backward:
src/kernels/cuda/ssd_backward_dcb_tc.cu (Σ_h dCB_h over a head split, per-head R sums) and
src/kernels/cuda/ssd_backward_bc_tc.cu (dB, dC per group, per-head inter dots), for one (chunk, group).
Every mma.sync is rebuilt from the 32 lanes' fragments (ssd_backward_tc_emul.mma) in float64; unwritten
scratch is NaN, so a wrong clamp, mask or offset shows up against the matrix formulas:
  dCB = Σ_h tril(dY_h X_hᵀ ∘ L_h) diag(dt_h),  R_h = tril(dY_h X_hᵀ ∘ L_h ∘ CB)
  dC  = Σ_h diag(e^cs_h) dY_h S0_h + tril(dCB) B,   inter_h = rowdot(diag(e^cs_h) dY_h S0_h, C)
  dB  = Σ_h diag(w_h) X_h dS_h + tril(dCB)ᵀ C,      w_h = e^(cs_h,last − cs_h) dt_h
Run: /usr/bin/python3 bench/emul/ssd_backward_group_emul.py"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ssd_backward_tc_emul import GQ, TQ, mma, step16  # noqa: E402

KP, T64, KHS, KSS, KRS = 64, 64, 8, 66, 80


def dcb_kernel(Q, length, hpg, dY, X, CB, cs, dt, dcbp, col, row):
    """All blocks of one (chunk, group). dY, X: [hpg, len, P]; cs: [hpg, Q]; dt: [hpg, len]; CB: [Q, Q] (NaN
    outside the causal part); dcbp: [S, Q, Q]; col, row: [hpg, qt, Q] (outputs, NaN-poisoned)."""
    S = (hpg + KHS - 1) // KHS
    hs = (hpg + S - 1) // S
    qt = (Q + T64 - 1) // T64
    for p in range(qt * (qt + 1) // 2):
        it = 0
        while (it + 1) * (it + 2) // 2 <= p:
            it += 1
        jt = p - it * (it + 1) // 2
        i0, j0 = T64 * it, T64 * jt
        for sp in range(S):
            h0, nh = sp * hs, min(hs, hpg - sp * hs)
            if i0 >= length or nh <= 0:
                continue
            r_ = np.arange(T64)
            csi = np.array([[cs[h0 + k, i0 + r] if i0 + r < length else 0.0 for r in r_] for k in range(nh)])
            csj = np.array([[cs[h0 + k, j0 + r] if j0 + r < length else 0.0 for r in r_] for k in range(nh)])
            dtj = np.array([[dt[h0 + k, j0 + r] if j0 + r < length else 0.0 for r in r_] for k in range(nh)])
            colp = np.zeros((nh, 4, T64))
            rowp = np.zeros((nh, 2, T64))
            for warp in range(8):
                wr, wc = warp % 4, 32 * (warp // 4)
                ir0, ir1 = 16 * wr + GQ, 16 * wr + GQ + 8
                r0, r1 = i0 + ir0, i0 + ir1
                q0, q1 = np.minimum(r0, length - 1), np.minimum(r1, length - 1)
                nt_end = min(4, 2 * wr + 2 - wc // 8) if it == jt else 4
                ssum = np.zeros((4, 32, 4))
                for k in range(nh):
                    h = h0 + k
                    # the stage: each thread's copies (rows tid / 16 + 16 u, columns 4 (tid % 16)), 0 past len
                    ys, xs = np.full(T64 * KRS, np.nan), np.full(T64 * KRS, np.nan)
                    for tid in range(256):
                        c4 = 4 * (tid & 15)
                        for u in range(4):
                            rr = (tid >> 4) + 16 * u
                            i, j = i0 + rr, j0 + rr
                            ys[rr * KRS + c4: rr * KRS + c4 + 4] = dY[h][i, c4:c4 + 4] if i < length else 0.0
                            xs[rr * KRS + c4: rr * KRS + c4 + 4] = X[h][j, c4:c4 + 4] if j < length else 0.0
                    acc = np.zeros((4, 32, 4))
                    for ks in range(KP // 16):
                        u0 = [ys[ir0 * KRS + 16 * ks + 4 * TQ + u] for u in range(4)]
                        u1 = [ys[ir1 * KRS + 16 * ks + 4 * TQ + u] for u in range(4)]
                        for nt in range(4):
                            if nt >= nt_end:
                                continue
                            b = [xs[(wc + 8 * nt + GQ) * KRS + 16 * ks + 4 * TQ + u] for u in range(4)]
                            mma(acc[nt], u0[0], u1[0], u0[1], u1[1], b[0], b[1])
                            mma(acc[nt], u0[2], u1[2], u0[3], u1[3], b[2], b[3])
                    cs0, cs1 = csi[k][ir0], csi[k][ir1]
                    rs0, rs1 = np.zeros(32), np.zeros(32)
                    for nt in range(4):
                        if nt >= nt_end:
                            continue
                        jr = wc + 8 * nt + 2 * TQ
                        R = []
                        for e in range(4):
                            r, ir = (r0, ir0) if e < 2 else (r1, ir1)
                            jc = jr + (e & 1)
                            valid = (r < length) & (j0 + jc <= r)
                            with np.errstate(over="ignore", invalid="ignore"):
                                gl = np.where(valid, acc[nt][:, e] * np.exp((cs0 if e < 2 else cs1) - csj[k][jc]), 0.0)
                            ssum[nt][:, e] += gl * dtj[k][jc]
                            i = np.minimum(r, length - 1)  # cbv: clamped into the causal part
                            R.append(gl * CB[i, np.minimum(j0 + jc, i)])
                        rs0 += R[0] * dtj[k][jr] + R[1] * dtj[k][jr + 1]
                        rs1 += R[2] * dtj[k][jr] + R[3] * dtj[k][jr + 1]
                        c0 = (R[0] + R[2]).reshape(8, 4).sum(0)  # xor 4, 8, 16: over gq, per tq
                        c1 = (R[1] + R[3]).reshape(8, 4).sum(0)
                        for t in range(4):
                            colp[k, wr, wc + 8 * nt + 2 * t] = c0[t]
                            colp[k, wr, wc + 8 * nt + 2 * t + 1] = c1[t]
                    rs0 = rs0.reshape(8, 4).sum(1)  # xor 1, 2: over tq, per gq
                    rs1 = rs1.reshape(8, 4).sum(1)
                    for gq in range(8):
                        rowp[k, wc // 32, 16 * wr + gq] = rs0[gq]
                        rowp[k, wc // 32, 16 * wr + gq + 8] = rs1[gq]
                for nt in range(4):
                    j = j0 + wc + 8 * nt + 2 * TQ
                    for lane in range(32):
                        for e in range(4):
                            r = (r0 if e < 2 else r1)[lane]
                            if r < length and j[lane] < Q:
                                dcbp[sp, r, j[lane] + (e & 1)] = ssum[nt][lane, e]
            for k in range(nh):
                for q in range(T64):
                    if j0 + q < length:
                        col[h0 + k, it, j0 + q] = colp[k].sum(0)[q]
                    if i0 + q < length:
                        row[h0 + k, jt, i0 + q] = rowp[k, 0, q] + rowp[k, 1, q]
    return S


def fold(Q, length, dcbp):
    """fold_kernel of one (chunk, group): the splits' sum and its transpose over 32x32 tiles with j-tile <= i-tile
    and i0 < len (0 past len); everything else NaN (unwritten)."""
    S = dcbp.shape[0]
    sm, st = np.full((Q, Q), np.nan), np.full((Q, Q), np.nan)
    ft = (Q + 31) // 32
    for it in range(ft):
        for jt in range(it + 1):
            i0, j0 = 32 * it, 32 * jt
            if i0 >= length:
                continue
            for r in range(32):
                for tx in range(32):
                    i, j = i0 + r, j0 + tx
                    v = 0.0
                    if i < length and j < Q:
                        for sp in range(S):
                            v += dcbp[sp][i, j]
                    if i < Q and j < Q:
                        sm[i, j] = v
                        st[j, i] = v
    return sm, st


def bc_kernel(is_c, Q, N, length, hpg, dY, X, Bm, Cm, St, cs, dt, dcbp, out, inter):
    """All blocks of one (chunk, group) and one of dB / dC. St: [hpg, P, N] (S0 or dS); dcbp: [S, Q, Q];
    out: [len, N]; inter: [hpg, slots of 32 columns, Q]. 16 warps; stage 1: warp w takes rows 16 (w % 4), head
    2s + (w / 4) % 2 of a stage's pair, columns 32 (w / 8) .. + 31, the row scale on the head's product; stage 2:
    16 rows x 16 columns after the exchange between the two heads' warps."""
    dsum, dsum_t = fold(Q, length, dcbp)
    rows = (length + 15) & ~15
    KAS = KP + 16
    for ntile in range((N + T64 - 1) // T64):
        n0, ncols = T64 * ntile, min(T64, N - T64 * ntile)
        nts = min(8, ncols // 8)
        for rb in range(0, Q, T64):
            if rb >= length:
                continue
            # Per head k the threads' copies (tid: rows tid / 16 + 16 u, columns 4 (tid % 16)), unscaled; cs, dt of
            # the rows (0 past len) and cs_last.
            As, st, css, dts = [], [], [], []
            for k in range(hpg):
                A_s = np.full(T64 * KAS, np.nan)
                m = np.full(KP * KSS, np.nan)
                Am = dY[k] if is_c else X[k]
                for tid in range(512):
                    c4 = 4 * (tid & 15)
                    for u in range(2):
                        rr = (tid >> 4) + 32 * u
                        i = min(rb + rr, length - 1)
                        valid = rb + rr < length
                        A_s[rr * KAS + c4: rr * KAS + c4 + 4] = Am[i, c4:c4 + 4] if valid else 0.0
                        m[rr * KSS + c4: rr * KSS + c4 + 4] = St[k][rr, n0 + c4:n0 + c4 + 4] if c4 < ncols else 0.0
                As.append(A_s)
                st.append(m)
                css.append(np.array([cs[k, rb + r] if rb + r < length else 0.0 for r in range(T64)]))
                dts.append(np.array([dt[k, rb + r] if rb + r < length else 0.0 for r in range(T64)]))
            accs = {}
            for warp in range(16):
                rw, hp, ch = warp & 3, (warp >> 2) & 1, warp >> 3
                mt = rb // 16 + rw
                active = 16 * mt < length
                rl0, wc1 = 16 * rw + GQ, 32 * ch
                r0, r1 = 16 * mt + GQ, 16 * mt + GQ + 8
                q0, q1 = np.minimum(r0, length - 1), np.minimum(r1, length - 1)
                nts = max(0, min(4, int((ncols - wc1) / 8)))
                cv = np.zeros((4, 32, 4))
                for nt in range(nts):
                    n = n0 + wc1 + 8 * nt + 2 * TQ
                    cv[nt][:, 0], cv[nt][:, 1] = Cm[q0, n], Cm[q0, n + 1]
                    cv[nt][:, 2], cv[nt][:, 3] = Cm[q1, n], Cm[q1, n + 1]
                acc = np.zeros((4, 32, 4))
                for s_ in range((hpg + 1) // 2):
                    k = 2 * s_ + hp
                    if not active or k >= hpg or nts == 0:
                        continue
                    tmp = np.zeros((4, 32, 4))
                    for ks in range(KP // 16):
                        f0 = [As[k][rl0 * KAS + 16 * ks + 4 * TQ + u] for u in range(4)]
                        f1 = [As[k][(rl0 + 8) * KAS + 16 * ks + 4 * TQ + u] for u in range(4)]
                        step16(tmp, f0, f1, st[k], (16 * ks + 4 * TQ) * KSS + wc1 + GQ, KSS, nts)
                    if is_c:
                        sc0, sc1 = np.exp(css[k][rl0]), np.exp(css[k][rl0 + 8])
                    else:
                        last = cs[k, length - 1]
                        sc0 = np.exp(last - css[k][rl0]) * dts[k][rl0]
                        sc1 = np.exp(last - css[k][rl0 + 8]) * dts[k][rl0 + 8]
                    acc[:, :, 0] += sc0 * tmp[:, :, 0]
                    acc[:, :, 1] += sc0 * tmp[:, :, 1]
                    acc[:, :, 2] += sc1 * tmp[:, :, 2]
                    acc[:, :, 3] += sc1 * tmp[:, :, 3]
                    if is_c:
                        d0 = sum(tmp[nt][:, 0] * cv[nt][:, 0] + tmp[nt][:, 1] * cv[nt][:, 1] for nt in range(4))
                        d1 = sum(tmp[nt][:, 2] * cv[nt][:, 2] + tmp[nt][:, 3] * cv[nt][:, 3] for nt in range(4))
                        d0, d1 = (sc0 * d0).reshape(8, 4).sum(1), (sc1 * d1).reshape(8, 4).sum(1)  # xor 1, 2
                        slot = 2 * ntile + ch
                        for gq in range(8):
                            if r0[4 * gq] < length:
                                inter[k, slot, r0[4 * gq]] = d0[gq]
                            if r1[4 * gq] < length:
                                inter[k, slot, r1[4 * gq]] = d1[gq]
                accs[warp] = acc
            rbeg, rend = (0, min(rb + T64, rows)) if is_c else (rb, rows)
            src = Bm if is_c else Cm
            rs = np.full(Q * KSS, np.nan)
            for r in range(rbeg, rend):
                rs[(r - rbeg) * KSS: (r - rbeg) * KSS + T64] = 0.0
                if r < length:
                    rs[(r - rbeg) * KSS: (r - rbeg) * KSS + ncols] = src[r, n0:n0 + ncols]
            for warp in range(16):
                rw, hp, ch = warp & 3, (warp >> 2) & 1, warp >> 3
                mt = rb // 16 + rw
                if not 16 * mt < length:
                    continue
                r0, r1 = 16 * mt + GQ, 16 * mt + GQ + 8
                q0, q1 = np.minimum(r0, length - 1), np.minimum(r1, length - 1)
                own, partner = accs[warp], accs[warp ^ 4]
                acc = own[2 * hp:2 * hp + 2] + partner[2 * hp:2 * hp + 2]  # the exchange: blocks 2 hp, 2 hp + 1
                wc = 32 * ch + 16 * hp
                nts2 = max(0, min(2, int((ncols - wc) / 8)))
                dm = dsum if is_c else dsum_t  # rows r0, r1 (one 16-byte piece per lane and step)
                kb0, kb1 = (0, mt + 1) if is_c else (mt, rows // 16)
                for kb in range(kb0, kb1):
                    kk = 16 * kb + 4 * TQ
                    e0 = [dm[q0, kk + u] for u in range(4)]
                    e1 = [dm[q1, kk + u] for u in range(4)]
                    if is_c:
                        ok0 = [(kk + u <= r0) & (r0 < length) for u in range(4)]
                        ok1 = [(kk + u <= r1) & (r1 < length) for u in range(4)]
                    else:
                        ok0 = [(kk + u >= r0) & (kk + u < length) & (r0 < length) for u in range(4)]
                        ok1 = [(kk + u >= r1) & (kk + u < length) & (r1 < length) for u in range(4)]
                    f0 = [np.where(ok0[u], e0[u], 0.0) for u in range(4)]
                    f1 = [np.where(ok1[u], e1[u], 0.0) for u in range(4)]
                    step16(acc, f0, f1, rs, (kk - rbeg) * KSS + wc + GQ, KSS, nts2)
                for nt in range(nts2):
                    n = n0 + wc + 8 * nt + 2 * TQ
                    for lane in range(32):
                        for e in range(4):
                            r = (r0 if e < 2 else r1)[lane]
                            if r < length:
                                out[r, n[lane] + (e & 1)] = acc[nt][lane, e]


def check(Q, N, length, hpg, seed):
    rng = np.random.default_rng(seed)
    u = lambda *s: rng.uniform(-1, 1, s)  # noqa: E731
    dY, X = u(hpg, length, KP), u(hpg, length, KP)
    Bm, Cm = u(length, N), u(length, N)
    S0, dS = u(hpg, KP, N), u(hpg, KP, N)
    dt = rng.uniform(0.01, 0.3, (hpg, length))
    A = rng.uniform(-2, -0.2, hpg)
    cs = np.full((hpg, Q), np.nan)
    cs[:, :length] = np.cumsum(dt * A[:, None], axis=1)
    L = np.exp(cs[:, :length, None] - cs[:, None, :length])  # [h, i, j]
    tri = np.tril(np.ones((length, length)))
    CBfull = Cm @ Bm.T
    CB = np.full((Q, Q), np.nan)
    qt = (Q + T64 - 1) // T64
    for i in range(length):  # only the causal part is read (the forward writes more)
        CB[i, :i + 1] = CBfull[i, :i + 1]
    dM = np.einsum("hip,hjp->hij", dY, X) * L * tri
    ref_dcb = (dM * dt[:, None, :]).sum(0)
    R = dM * CBfull[None]
    ref_col, ref_row = R.sum(1), (R * dt[:, None, :]).sum(2)  # [h, j], [h, i]
    w = np.exp(cs[:, length - 1:length] - cs[:, :length]) * dt
    inter_t = np.exp(cs[:, :length, None]) * np.einsum("hip,hpn->hin", dY, S0)
    ref_dC = inter_t.sum(0) + ref_dcb @ Bm
    ref_inter = (inter_t * Cm[None]).sum(2)
    ref_dB = (w[:, :, None] * np.einsum("hjp,hpn->hjn", X, dS)).sum(0) + ref_dcb.T @ Cm
    S = (hpg + KHS - 1) // KHS
    dcbp = np.full((S, Q, Q), np.nan)
    col, row = np.full((hpg, qt, Q), np.nan), np.full((hpg, qt, Q), np.nan)
    dcb_kernel(Q, length, hpg, dY, X, CB, cs, dt, dcbp, col, row)
    slots = (N + 31) // 32
    dC, dB = np.full((length, N), np.nan), np.full((length, N), np.nan)
    inter = np.full((hpg, slots, Q), np.nan)
    bc_kernel(True, Q, N, length, hpg, dY, X, Bm, Cm, S0, cs, dt, dcbp, dC, inter)
    bc_kernel(False, Q, N, length, hpg, dY, X, Bm, Cm, dS, cs, dt, dcbp, dB, inter)
    # What the scalar step reads: col over i-tiles from j's own, row over j-tiles up to i's own, inter slots.
    got_col = np.array([[sum(col[h, it, j] for it in range(j // T64, qt) if it * T64 < length)
                         for j in range(length)] for h in range(hpg)])
    got_row = np.array([[sum(row[h, jt, i] for jt in range(i // T64 + 1)) for i in range(length)] for h in range(hpg)])
    got_inter = inter[:, :, :length].sum(1)
    got_dcb = np.where(tri > 0, dcbp[:, :length, :length].sum(0), 0.0)
    errs = []
    for name, got, ref in (("dcb", got_dcb, ref_dcb), ("col", got_col, ref_col), ("row", got_row, ref_row),
                           ("dC", dC, ref_dC), ("inter", got_inter, ref_inter), ("dB", dB, ref_dB)):
        e = np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-30)
        errs.append(f"{name} {e:.1e}")
        if not e < 1e-12:
            errs.append("FAIL")
    ok = "FAIL" not in errs
    print(f"Q{Q} N{N} len{length} hpg{hpg}: " + " ".join(errs))
    return ok


if __name__ == "__main__":
    cases = [(64, 64, 64, 1), (32, 48, 30, 2), (256, 128, 256, 2), (256, 128, 162, 3), (128, 64, 100, 17),
             (32, 48, 7, 2), (16, 128, 16, 1), (256, 128, 1, 2), (128, 64, 128, 33), (64, 16, 50, 3),
             (32, 80, 32, 2)]
    ok = all([check(Q, N, L, h, i) for i, (Q, N, L, h) in enumerate(cases)])
    print("all agree" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)
