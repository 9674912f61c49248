"""Pure-PyTorch versions of the three mamba_ssm ops (sequential SSD scan, gated RMSNorm, add + RMSNorm):
the --smoke mode runs the model on them on a CPU, and on the GPU they check the Triton wiring."""
import torch
import torch.nn.functional as F


def torch_conv_silu(xBC, conv_weight, conv_bias):
    """SiLU(causal depthwise conv) with torch's Conv1d over the transposed (B, L, C) activations, as Mamba2
    does without causal_conv1d: the transposes cost copies and the SiLU a separate kernel."""
    L = xBC.shape[1]
    y = F.conv1d(xBC.transpose(1, 2), conv_weight, conv_bias, padding=conv_weight.shape[2] - 1,
                 groups=conv_weight.shape[0])
    return F.silu(y[..., :L]).transpose(1, 2)


class RefOps:
    origin = "pure-torch reference"
    conv_kind = "torch"

    def conv(self, xBC, conv_weight, conv_bias):
        return torch_conv_silu(xBC, conv_weight, conv_bias)

    def ssd(self, x, dt, A, B, C, chunk_size, D, dt_bias, return_final_states):
        # x (b,l,h,p), dt (b,l,h), A (h), B/C (b,l,g,n), D (h); h_t = exp(dt A) h_{t-1} + dt x_t B_t^T
        b, l, h, p = x.shape
        g, n = B.shape[2], B.shape[3]
        dt = F.softplus(dt.float() + dt_bias.float())
        Bh = B.float().repeat_interleave(h // g, dim=2)
        Ch = C.float().repeat_interleave(h // g, dim=2)
        xf = x.float()
        state = torch.zeros(b, h, p, n, dtype=torch.float32, device=x.device)
        ys = []
        for t in range(l):
            decay = torch.exp(dt[:, t] * A.float())                      # (b,h)
            state = state * decay[:, :, None, None] + \
                (dt[:, t, :, None] * xf[:, t])[..., None] * Bh[:, t, :, None, :]
            ys.append(torch.einsum("bhpn,bhn->bhp", state, Ch[:, t]) + D.float()[:, None] * xf[:, t])
        y = torch.stack(ys, dim=1).to(x.dtype)
        return (y, state) if return_final_states else y

    def gated_norm(self, y, z, weight, eps, group_size):
        x = y.float() * F.silu(z.float())
        xg = x.reshape(*x.shape[:-1], -1, group_size)
        xg = xg * torch.rsqrt(xg.square().mean(dim=-1, keepdim=True) + eps)
        return (xg.reshape(x.shape) * weight.float()).to(y.dtype)

    def add_norm(self, x, weight, residual, prenorm, eps):
        res = x.float() if residual is None else x.float() + residual.float()
        out = (res * torch.rsqrt(res.square().mean(dim=-1, keepdim=True) + eps) * weight.float()).to(x.dtype)
        return (out, res) if prenorm else out


def ssd_quadratic(x, dt, A, B, C, D, dt_bias):
    """The SSD as one masked matrix per sequence, y_t = sum_{s<=t} (C_t . B_s) exp(sum_{s<r<=t} dt_r A) dt_s
    x_s + D x_t: an independent form that the smoke test holds RefOps.ssd's scan against."""
    b, l, h, p = x.shape
    g = B.shape[2]
    dt = F.softplus(dt.float() + dt_bias.float())                           # (b,l,h)
    cum = torch.cumsum(dt * A.float(), dim=1)                               # (b,l,h)
    seg = cum[:, :, None, :] - cum[:, None, :, :]                           # (b,t,s,h)
    mask = torch.tril(torch.ones(l, l, dtype=torch.bool, device=x.device))[None, :, :, None]
    decay = torch.where(mask, torch.exp(seg.masked_fill(~mask, 0.0)), torch.zeros_like(seg))
    Bh = B.float().repeat_interleave(h // g, dim=2)
    Ch = C.float().repeat_interleave(h // g, dim=2)
    cb = torch.einsum("bthn,bshn->btsh", Ch, Bh)
    y = torch.einsum("btsh,bsh,bshp->bthp", cb * decay, dt, x.float()) + D.float()[:, None] * x.float()
    return y.to(x.dtype)
