"""GPU time by kind of kernel (GEMM, SSD, conv, norms, optimizer, other) over one profiled call, from
torch.profiler's kernel list: the share each part of the baseline takes (the conv is torch's, not
causal_conv1d's)."""
import torch

# first match wins; Triton kernels keep their Python names
KINDS = [
    ("ssd", ("_chunk_", "_bmm_chunk", "_state_passing", "ssd")),
    ("gated norm", ("layernorm_gated", "_layer_norm_fwd_1pass_kernel_gated")),
    ("norm", ("_layer_norm", "rms")),
    ("conv", ("conv", "depthwise", "Conv")),
    ("gemm", ("gemm", "Gemm", "cutlass", "nvjet", "sm90_xmma", "sm80_xmma", "cublas", "addmm", "mm_")),
    ("optimizer", ("multi_tensor", "fused_adam", "FusedAdam", "_fused_adamw", "adam")),
    ("loss", ("cross_entropy", "log_softmax", "softmax", "SoftMax", "nll_loss")),
    ("embedding", ("embedding", "index_select", "indexSelect", "gather", "scatter")),
]


def kind_of(name):
    for kind, pats in KINDS:
        if any(p in name for p in pats):
            return kind
    return "other"


def _dev_us(evt):
    for attr in ("self_device_time_total", "self_cuda_time_total", "device_time_total", "cuda_time_total"):
        v = getattr(evt, attr, None)
        if v:
            return float(v)
    return 0.0


def profile(fn, use_cuda):
    """Runs fn() once under the profiler; returns ({kind: ms}, [(ms, kernel name)] top 15)."""
    from torch.profiler import ProfilerActivity, profile as prof
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if use_cuda else [])
    with prof(activities=acts) as p:
        fn()
        if use_cuda:
            torch.cuda.synchronize()
    kinds, per_kernel = {}, []
    for evt in p.key_averages():
        us = _dev_us(evt) if use_cuda else float(getattr(evt, "self_cpu_time_total", 0.0))
        if us <= 0 or (use_cuda and getattr(evt, "device_type", None) is not None
                       and "CUDA" not in str(evt.device_type)):
            continue
        if getattr(evt, "is_user_annotation", False) or "#" in evt.key:
            continue  # a range (Optimizer.step#AdamW.step) drawn over the kernels it launched: counted there
        kinds[kind_of(evt.key)] = kinds.get(kind_of(evt.key), 0.0) + us / 1e3
        per_kernel.append((us / 1e3, evt.key))
    per_kernel.sort(reverse=True)
    return kinds, per_kernel[:15]


def format_kinds(kinds, wall_ms=None):
    """One line; with wall_ms (the timed median) also how busy the GPU was: below 100%, the step waits on
    Python and kernel launches."""
    total = sum(kinds.values()) or 1.0
    line = " | ".join(f"{k} {v:.1f} ms ({100 * v / total:.0f}%)" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))
    if wall_ms:
        line += f" || kernels {total:.1f} ms = {100 * total / wall_ms:.0f}% of the {wall_ms:.1f} ms median"
    return line
