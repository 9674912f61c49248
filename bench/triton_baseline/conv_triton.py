"""Causal depthwise conv1d + SiLU in Triton, forward and backward, on channels-last activations (B, L, C)
with unit channel stride: the work causal_conv1d's CUDA kernel does for Mamba2 (it reads the transposed
xBC in place and fuses the SiLU). Not available on the GPU machine; torch's Conv1d instead needs the
transposes' copies and a separate SiLU (window 1: conv 121 ms + copies/SiLU 115 ms of 640 ms at T=16384),
which a mamba_ssm user does not pay. Memory-bound like causal_conv1d: one read of x, one write of y.
check() holds it against torch's conv (forward and the three gradients) before a run uses it."""
import torch
import triton
import triton.language as tl

from ref_ops import torch_conv_silu

BLOCK_L, BLOCK_C = 32, 128
NSUB = 8                 # the K = 4 backward's strip: 8 tiles of BLOCK_L tokens per program
BWD = {"variant": "g4"}  # "g4" (K = 4, strip) or "generic"; check() falls back to generic if g4 fails


@triton.jit
def _causal_conv1d_fwd_kernel(X, W, Bias, Y, L, C, sx_b, sx_l, sy_b, sy_l,
                              K: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_C: tl.constexpr, SILU: tl.constexpr):
    # y[t] = bias + sum_k w[k] x[t - (K-1) + k], then SiLU; a (BLOCK_L tokens, BLOCK_C channels) tile
    pid_l, pid_c, pid_b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    offs_l = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)
    offs_c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_c = offs_c < C
    acc = tl.zeros((BLOCK_L, BLOCK_C), dtype=tl.float32)
    acc += tl.load(Bias + offs_c, mask=mask_c, other=0.0).to(tl.float32)[None, :]
    for k in tl.static_range(K):
        t = offs_l - (K - 1) + k
        m = ((t >= 0) & (t < L))[:, None] & mask_c[None, :]
        xk = tl.load(X + pid_b * sx_b + t[:, None] * sx_l + offs_c[None, :], mask=m, other=0.0).to(tl.float32)
        wk = tl.load(W + offs_c * K + k, mask=mask_c, other=0.0).to(tl.float32)
        acc += xk * wk[None, :]
    if SILU:
        acc = acc * tl.sigmoid(acc)
    m = (offs_l < L)[:, None] & mask_c[None, :]
    tl.store(Y + pid_b * sy_b + offs_l[:, None] * sy_l + offs_c[None, :], acc.to(Y.dtype.element_ty), mask=m)


@triton.jit
def _causal_conv1d_bwd_g_kernel(X, W, Bias, DY, G, DW, DB, L, C, sx_b, sx_l, sdy_b, sdy_l, sg_b, sg_l,
                                K: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_C: tl.constexpr):
    # g = dy * silu'(pre) (pre recomputed), stored fp32; dw[c, k] += sum_t g[t] x[t-(K-1)+k], db[c] += sum_t g[t]
    pid_l, pid_c, pid_b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    offs_l = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)
    offs_c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_c = offs_c < C
    mask_out = (offs_l < L)[:, None] & mask_c[None, :]
    pre = tl.zeros((BLOCK_L, BLOCK_C), dtype=tl.float32)
    pre += tl.load(Bias + offs_c, mask=mask_c, other=0.0).to(tl.float32)[None, :]
    for k in tl.static_range(K):
        t = offs_l - (K - 1) + k
        m = ((t >= 0) & (t < L))[:, None] & mask_c[None, :]
        xk = tl.load(X + pid_b * sx_b + t[:, None] * sx_l + offs_c[None, :], mask=m, other=0.0).to(tl.float32)
        wk = tl.load(W + offs_c * K + k, mask=mask_c, other=0.0).to(tl.float32)
        pre += xk * wk[None, :]
    dy = tl.load(DY + pid_b * sdy_b + offs_l[:, None] * sdy_l + offs_c[None, :], mask=mask_out, other=0.0)
    s = tl.sigmoid(pre)
    g = dy.to(tl.float32) * s * (1.0 + pre * (1.0 - s))
    g = tl.where(mask_out, g, 0.0)
    tl.store(G + pid_b * sg_b + offs_l[:, None] * sg_l + offs_c[None, :], g, mask=mask_out)
    for k in tl.static_range(K):
        t = offs_l - (K - 1) + k
        m = ((t >= 0) & (t < L))[:, None] & mask_c[None, :]
        xk = tl.load(X + pid_b * sx_b + t[:, None] * sx_l + offs_c[None, :], mask=m, other=0.0).to(tl.float32)
        tl.atomic_add(DW + offs_c * K + k, tl.sum(g * xk, axis=0), mask=mask_c)
    tl.atomic_add(DB + offs_c, tl.sum(g, axis=0), mask=mask_c)


@triton.jit
def _causal_conv1d_bwd_g4_kernel(X, W, Bias, DY, G, DW, DB, L, C, sx_b, sx_l, sdy_b, sdy_l, sg_b, sg_l,
                                 BLOCK_L: tl.constexpr, BLOCK_C: tl.constexpr, NSUB: tl.constexpr):
    # the generic kernel's work for K = 4 over a strip of NSUB * BLOCK_L tokens: dw and db summed in registers
    # over the strip (one atomic per channel and tap per strip, not per tile), each x tile loaded once
    pid_l, pid_c, pid_b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    offs_c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_c = offs_c < C
    w0 = tl.load(W + offs_c * 4 + 0, mask=mask_c, other=0.0).to(tl.float32)[None, :]
    w1 = tl.load(W + offs_c * 4 + 1, mask=mask_c, other=0.0).to(tl.float32)[None, :]
    w2 = tl.load(W + offs_c * 4 + 2, mask=mask_c, other=0.0).to(tl.float32)[None, :]
    w3 = tl.load(W + offs_c * 4 + 3, mask=mask_c, other=0.0).to(tl.float32)[None, :]
    bias = tl.load(Bias + offs_c, mask=mask_c, other=0.0).to(tl.float32)[None, :]
    dw0 = tl.zeros((BLOCK_C,), dtype=tl.float32)
    dw1 = tl.zeros((BLOCK_C,), dtype=tl.float32)
    dw2 = tl.zeros((BLOCK_C,), dtype=tl.float32)
    dw3 = tl.zeros((BLOCK_C,), dtype=tl.float32)
    db = tl.zeros((BLOCK_C,), dtype=tl.float32)
    xb = X + pid_b * sx_b + offs_c[None, :]
    for i in range(NSUB):
        offs_l = (pid_l * NSUB + i) * BLOCK_L + tl.arange(0, BLOCK_L)
        mask_out = (offs_l < L)[:, None] & mask_c[None, :]
        x0 = tl.load(xb + (offs_l - 3)[:, None] * sx_l, mask=(offs_l >= 3)[:, None] & mask_out, other=0.0).to(tl.float32)
        x1 = tl.load(xb + (offs_l - 2)[:, None] * sx_l, mask=(offs_l >= 2)[:, None] & mask_out, other=0.0).to(tl.float32)
        x2 = tl.load(xb + (offs_l - 1)[:, None] * sx_l, mask=(offs_l >= 1)[:, None] & mask_out, other=0.0).to(tl.float32)
        x3 = tl.load(xb + offs_l[:, None] * sx_l, mask=mask_out, other=0.0).to(tl.float32)
        pre = bias + x0 * w0 + x1 * w1 + x2 * w2 + x3 * w3
        dy = tl.load(DY + pid_b * sdy_b + offs_l[:, None] * sdy_l + offs_c[None, :], mask=mask_out, other=0.0)
        s = tl.sigmoid(pre)
        g = tl.where(mask_out, dy.to(tl.float32) * s * (1.0 + pre * (1.0 - s)), 0.0)
        tl.store(G + pid_b * sg_b + offs_l[:, None] * sg_l + offs_c[None, :], g, mask=mask_out)
        dw0 += tl.sum(g * x0, axis=0)
        dw1 += tl.sum(g * x1, axis=0)
        dw2 += tl.sum(g * x2, axis=0)
        dw3 += tl.sum(g * x3, axis=0)
        db += tl.sum(g, axis=0)
    tl.atomic_add(DW + offs_c * 4 + 0, dw0, mask=mask_c)
    tl.atomic_add(DW + offs_c * 4 + 1, dw1, mask=mask_c)
    tl.atomic_add(DW + offs_c * 4 + 2, dw2, mask=mask_c)
    tl.atomic_add(DW + offs_c * 4 + 3, dw3, mask=mask_c)
    tl.atomic_add(DB + offs_c, db, mask=mask_c)


@triton.jit
def _causal_conv1d_bwd_dx_kernel(G, W, DX, L, C, sg_b, sg_l, sdx_b, sdx_l,
                                 K: tl.constexpr, BLOCK_L: tl.constexpr, BLOCK_C: tl.constexpr):
    # dx[s] = sum_k w[k] g[s + (K-1) - k] over s + (K-1) - k < L
    pid_l, pid_c, pid_b = tl.program_id(0), tl.program_id(1), tl.program_id(2)
    offs_l = pid_l * BLOCK_L + tl.arange(0, BLOCK_L)
    offs_c = pid_c * BLOCK_C + tl.arange(0, BLOCK_C)
    mask_c = offs_c < C
    acc = tl.zeros((BLOCK_L, BLOCK_C), dtype=tl.float32)
    for k in tl.static_range(K):
        t = offs_l + (K - 1) - k
        m = (t < L)[:, None] & mask_c[None, :]
        gk = tl.load(G + pid_b * sg_b + t[:, None] * sg_l + offs_c[None, :], mask=m, other=0.0)
        wk = tl.load(W + offs_c * K + k, mask=mask_c, other=0.0).to(tl.float32)
        acc += gk * wk[None, :]
    m = (offs_l < L)[:, None] & mask_c[None, :]
    tl.store(DX + pid_b * sdx_b + offs_l[:, None] * sdx_l + offs_c[None, :], acc.to(DX.dtype.element_ty), mask=m)


def _grid(B, L, C):
    return (triton.cdiv(L, BLOCK_L), triton.cdiv(C, BLOCK_C), B)


class CausalConv1dSilu(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        """x (B, L, C) with x.stride(2) == 1 (a slice of in_proj's output is fine), weight (C, K), bias (C)."""
        assert x.stride(2) == 1 and weight.is_contiguous() and bias.is_contiguous()
        B, L, C = x.shape
        y = torch.empty((B, L, C), dtype=x.dtype, device=x.device)
        _causal_conv1d_fwd_kernel[_grid(B, L, C)](x, weight, bias, y, L, C, x.stride(0), x.stride(1), y.stride(0),
                                                  y.stride(1), K=weight.shape[1], BLOCK_L=BLOCK_L, BLOCK_C=BLOCK_C,
                                                  SILU=True, num_warps=4)
        ctx.save_for_backward(x, weight, bias)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight, bias = ctx.saved_tensors
        if dy.stride(2) != 1:
            dy = dy.contiguous()
        B, L, C = x.shape
        K = weight.shape[1]
        g = torch.empty((B, L, C), dtype=torch.float32, device=x.device)
        dw = torch.zeros((C, K), dtype=torch.float32, device=x.device)
        db = torch.zeros((C,), dtype=torch.float32, device=x.device)
        if K == 4 and BWD["variant"] == "g4":
            grid = (triton.cdiv(L, BLOCK_L * NSUB), triton.cdiv(C, BLOCK_C), B)
            _causal_conv1d_bwd_g4_kernel[grid](x, weight, bias, dy, g, dw, db, L, C, x.stride(0), x.stride(1),
                                               dy.stride(0), dy.stride(1), g.stride(0), g.stride(1), BLOCK_L=BLOCK_L,
                                               BLOCK_C=BLOCK_C, NSUB=NSUB, num_warps=4)
        else:
            _causal_conv1d_bwd_g_kernel[_grid(B, L, C)](x, weight, bias, dy, g, dw, db, L, C, x.stride(0),
                                                        x.stride(1), dy.stride(0), dy.stride(1), g.stride(0),
                                                        g.stride(1), K=K, BLOCK_L=BLOCK_L, BLOCK_C=BLOCK_C, num_warps=4)
        dx = torch.empty((B, L, C), dtype=x.dtype, device=x.device)
        _causal_conv1d_bwd_dx_kernel[_grid(B, L, C)](g, weight, dx, L, C, g.stride(0), g.stride(1), dx.stride(0),
                                                     dx.stride(1), K=K, BLOCK_L=BLOCK_L, BLOCK_C=BLOCK_C, num_warps=4)
        return dx, dw.to(weight.dtype), db.to(bias.dtype)


def conv_silu(xBC, conv_weight, conv_bias):
    """xBC (B, L, C) channels-last, conv_weight nn.Conv1d's (C, 1, K): SiLU(causal depthwise conv)."""
    return CausalConv1dSilu.apply(xBC, conv_weight.view(conv_weight.shape[0], conv_weight.shape[2]), conv_bias)


def _check_once(device):
    torch.manual_seed(3)
    B, L, C, K = 2, 300, 200, 4
    big = torch.randn(B, L, C + 40, device=device, dtype=torch.bfloat16)
    x = big[:, :, 16:16 + C]  # a slice, as xBC is of zxbcdt
    w = (torch.randn(C, 1, K, device=device) * 0.5).requires_grad_()
    b = torch.randn(C, device=device).requires_grad_()
    dy = torch.randn(B, L, C, device=device, dtype=torch.bfloat16)
    xt = x.detach().clone().requires_grad_()
    y = conv_silu(xt, w, b)
    y.backward(dy)
    got = [y.float(), xt.grad.float(), w.grad.clone(), b.grad.clone()]
    w.grad, b.grad = None, None
    xr = x.detach().float().requires_grad_()
    yr = torch_conv_silu(xr, w, b)
    yr.backward(dy.float())
    want = [yr, xr.grad, w.grad, b.grad]
    return max(((g - r).abs().max() / (r.abs().max() + 1e-30)).item() for g, r in zip(got, want))


def check(device="cuda", tol=2e-2):
    """Max relative error of the Triton conv against torch's, over y, dx, dw, db (fp32 reference), with the
    strip backward; if that fails (or does not compile), with the generic one, which BWD then names."""
    err = float("inf")
    for variant in ("g4", "generic"):
        BWD["variant"] = variant
        try:
            err = _check_once(device)
        except Exception as e:  # noqa: BLE001
            print(f"conv_triton: backward '{variant}' raised {type(e).__name__}: {e}", flush=True)
            continue
        if err < tol:
            return err
    return err
