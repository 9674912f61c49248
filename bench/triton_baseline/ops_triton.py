"""The mamba_ssm Triton ops the baseline calls, imported from an installed mamba_ssm or, when that is
missing (the GPU machine has PyTorch and Triton but not mamba_ssm), from the staged upstream files under
$MAMBA_SSM_SRC (stage_mamba_ssm.sh)."""
import importlib
import os
import sys


def _import(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        src = os.environ.get("MAMBA_SSM_SRC")
        if not src:
            raise ImportError(f"{name}: mamba_ssm is not installed and MAMBA_SSM_SRC is not set "
                              "(stage the sources with stage_mamba_ssm.sh)")
        if src not in sys.path:
            sys.path.insert(0, src)
        for m in [m for m in sys.modules if m == "mamba_ssm" or m.startswith("mamba_ssm.")]:
            del sys.modules[m]  # a failed partial import must not shadow the staged package
        return importlib.import_module(name)


class TritonOps:
    """Same call signatures as ref_ops.RefOps."""

    def __init__(self, conv="triton"):
        self.ssd_mod = _import("mamba_ssm.ops.triton.ssd_combined")
        self.gated_mod = _import("mamba_ssm.ops.triton.layernorm_gated")
        self.norm_mod = _import("mamba_ssm.ops.triton.layer_norm")
        self.modules = [_import("mamba_ssm.ops.triton." + m) for m in
                        ("ssd_bmm", "ssd_chunk_state", "ssd_chunk_scan", "ssd_state_passing", "ssd_combined",
                         "layernorm_gated", "layer_norm")]
        src = os.environ.get("MAMBA_SSM_SRC")
        commit_file = os.path.join(src, "MAMBA_COMMIT") if src else None
        self.origin = (open(commit_file).read().strip() if commit_file and os.path.exists(commit_file)
                       else "installed mamba_ssm " + getattr(sys.modules.get("mamba_ssm"), "__version__", "?"))
        self.conv_kind, self.conv_note = "torch", "torch Conv1d + SiLU (as Mamba2 without causal_conv1d)"
        if conv == "triton":
            try:  # a failure here must not cost the whole measurement: torch's conv then, and said so
                import conv_triton
                err = conv_triton.check()
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                msg = " ".join(str(e).split())[:300]
                err, self.conv_note = float("inf"), self.conv_note + f" (the Triton conv raised {type(e).__name__}: {msg})"
            if err < 2e-2:
                self.conv_kind, self.conv_fn = "triton", conv_triton.conv_silu
                self.conv_note = (f"Triton causal conv + SiLU (causal_conv1d's work), checked vs torch: {err:.1e}, "
                                  f"backward '{conv_triton.BWD['variant']}'")
            elif err != float("inf"):
                self.conv_note += f" (the Triton conv FAILED its check: {err:.1e})"

    def conv(self, xBC, conv_weight, conv_bias):
        if self.conv_kind == "triton":
            return self.conv_fn(xBC, conv_weight, conv_bias)
        from ref_ops import torch_conv_silu
        return torch_conv_silu(xBC, conv_weight, conv_bias)

    def ssd(self, x, dt, A, B, C, chunk_size, D, dt_bias, return_final_states):
        return self.ssd_mod.mamba_chunk_scan_combined(x, dt, A, B, C, chunk_size=chunk_size, D=D, z=None,
                                                      dt_bias=dt_bias, dt_softplus=True,
                                                      return_final_states=return_final_states)

    def gated_norm(self, y, z, weight, eps, group_size):
        # Mamba2's RMSNormGated with norm_before_gate=False: norm(y * silu(z)) per group
        return self.gated_mod.rmsnorm_fn(y, weight, None, z=z, eps=eps, group_size=group_size,
                                         norm_before_gate=False)

    def add_norm(self, x, weight, residual, prenorm, eps):
        # Block's fused_add_norm with residual_in_fp32=True (MambaConfig's defaults)
        return self.norm_mod.rms_norm_fn(x, weight, None, residual=residual, eps=eps, prenorm=prenorm,
                                         residual_in_fp32=True)
