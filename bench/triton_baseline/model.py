"""The Mamba-2 language model as mamba_ssm computes it (MambaLMHeadModel with Mamba2 mixers, fused
add + RMSNorm, residual in fp32), written out here so that its three kernel calls can be switched between
the mamba_ssm Triton ops (ops_triton.py) and a pure-PyTorch reference (ref_ops.py).

The mixer follows mamba_ssm/modules/mamba2.py's unfused path (use_mem_eff_path=False): in_proj, causal
depthwise conv + SiLU (ops.conv: causal_conv1d's work done by conv_triton.py, or torch's Conv1d),
mamba_chunk_scan_combined, RMSNormGated (norm_before_gate=False, groups of d_inner / ngroups), out_proj."""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class Shape:
    d_model: int
    n_layer: int
    vocab: int
    d_state: int = 128
    headdim: int = 64
    ngroups: int = 1
    expand: int = 2
    d_conv: int = 4
    chunk_size: int = 256
    tied: bool = True

    @property
    def d_inner(self):
        return self.expand * self.d_model

    @property
    def nheads(self):
        return self.d_inner // self.headdim


SHAPES = {
    # the issues' shapes: Mamba-Codestral-7B (untied head) and the mamba2-1.3b training shape (tied)
    "codestral-7b": Shape(d_model=4096, n_layer=64, vocab=32768, ngroups=8, tied=False),
    "mamba2-1.3b": Shape(d_model=2048, n_layer=48, vocab=50304, ngroups=1, tied=True),
    # CPU smoke test: every code path, tiny
    "tiny": Shape(d_model=64, n_layer=2, vocab=97, d_state=16, headdim=16, ngroups=2, chunk_size=16, tied=False),
}


class Mixer(nn.Module):
    def __init__(self, s: Shape, ops, device, dtype):
        super().__init__()
        fk = {"device": device, "dtype": dtype}
        self.s, self.ops = s, ops
        self.conv_dim = s.d_inner + 2 * s.ngroups * s.d_state
        # order [z, x, B, C, dt], as mamba2.py
        self.in_proj = nn.Linear(s.d_model, 2 * s.d_inner + 2 * s.ngroups * s.d_state + s.nheads, bias=False, **fk)
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, s.d_conv, groups=self.conv_dim, padding=s.d_conv - 1,
                                bias=True, **fk)
        dt = torch.exp(torch.rand(s.nheads, device=device) * (math.log(0.1) - math.log(0.001)) + math.log(0.001))
        dt = dt.clamp(min=1e-4)
        self.dt_bias = nn.Parameter((dt + torch.log(-torch.expm1(-dt))).to(dtype))
        self.A_log = nn.Parameter(torch.log(torch.empty(s.nheads, device=device).uniform_(1, 16)).to(dtype))
        self.D = nn.Parameter(torch.ones(s.nheads, device=device))  # fp32, as mamba2.py creates it
        self.norm_weight = nn.Parameter(torch.ones(s.d_inner, **fk))
        self.out_proj = nn.Linear(s.d_inner, s.d_model, bias=False, **fk)

    def forward(self, u, want_state=False):
        s = self.s
        bsz, L, _ = u.shape
        zxbcdt = self.in_proj(u)
        A = -torch.exp(self.A_log.float())
        z, xBC, dt = torch.split(zxbcdt, [s.d_inner, self.conv_dim, s.nheads], dim=-1)
        conv_state = None
        if want_state:  # what an inference cache keeps: the last d_conv inputs of the conv
            conv_state = F.pad(xBC.transpose(1, 2), (s.d_conv - L, 0)).contiguous()
        xBC = self.ops.conv(xBC, self.conv1d.weight, self.conv1d.bias)
        x, B, C = torch.split(xBC, [s.d_inner, s.ngroups * s.d_state, s.ngroups * s.d_state], dim=-1)
        y = self.ops.ssd(x.reshape(bsz, L, s.nheads, s.headdim), dt, A,
                         B.reshape(bsz, L, s.ngroups, s.d_state), C.reshape(bsz, L, s.ngroups, s.d_state),
                         s.chunk_size, self.D, self.dt_bias, want_state)
        ssm_state = None
        if want_state:
            y, ssm_state = y
        y = self.ops.gated_norm(y.reshape(bsz, L, s.d_inner), z, self.norm_weight, 1e-5, s.d_inner // s.ngroups)
        return self.out_proj(y), (conv_state, ssm_state)


class Block(nn.Module):
    def __init__(self, s, ops, device, dtype):
        super().__init__()
        self.ops = ops
        self.norm_weight = nn.Parameter(torch.ones(s.d_model, device=device, dtype=dtype))
        self.mixer = Mixer(s, ops, device, dtype)

    def forward(self, h, residual, want_state=False):
        h, residual = self.ops.add_norm(h, self.norm_weight, residual, True, 1e-5)
        h, state = self.mixer(h, want_state)
        return h, residual, state


class LM(nn.Module):
    def __init__(self, s: Shape, ops, device, dtype):
        super().__init__()
        self.s, self.ops = s, ops
        self.embedding = nn.Embedding(s.vocab, s.d_model, device=device, dtype=dtype)
        self.layers = nn.ModuleList([Block(s, ops, device, dtype) for _ in range(s.n_layer)])
        self.norm_f = nn.Parameter(torch.ones(s.d_model, device=device, dtype=dtype))
        self.lm_head = None if s.tied else nn.Linear(s.d_model, s.vocab, bias=False, device=device, dtype=dtype)

    def forward(self, ids, last_only=False, want_state=False):
        """Logits (all positions, or the last one as a prefill for generation needs) and, with want_state,
        each layer's (conv state, ssm state)."""
        h, residual, states = self.embedding(ids), None, []
        for layer in self.layers:
            h, residual, st = layer(h, residual, want_state)
            states.append(st)
        h = self.ops.add_norm(h, self.norm_f, residual, False, 1e-5)
        if last_only:
            h = h[:, -1:]
        w = self.embedding.weight if self.lm_head is None else self.lm_head.weight
        return F.linear(h, w), states


def param_count(model):
    return sum(p.numel() for p in model.parameters())
