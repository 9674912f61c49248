"""Shared by prefill.py and train.py: choosing the ops, timing on the GPU clock, peak memory, and the
summary lines that run.sh collects (each appended and flushed as soon as it is known)."""
import argparse
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def base_args(desc):
    ap = argparse.ArgumentParser(description=desc)
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny shape, pure-torch ops: checks the logic")
    ap.add_argument("--summary", default=os.environ.get("BASELINE_SUMMARY", ""), help="append result lines here")
    ap.add_argument("--conv", choices=["triton", "torch"], default="triton",
                    help="the causal conv + SiLU: conv_triton.py (causal_conv1d's work) or torch's Conv1d")
    ap.add_argument("--autotune-json", default=os.environ.get("BASELINE_AUTOTUNE_JSON", ""),
                    help="restrict autotuning to the configs listed there when it exists; write the picks there "
                         "(default: autotune_<prefill|train>.json beside this script, the committed picks)")
    return ap


def make_ops(smoke, conv="triton"):
    if smoke:
        from ref_ops import RefOps
        return RefOps(), "cpu"
    from ops_triton import TritonOps
    return TritonOps(conv), "cuda"


def start(a, kind, detail=""):
    """The opening both scripts share: the ops (Triton on the GPU, plain torch for --smoke), the summary's
    header lines, the autotune picks and the timeout hook; returns (ops, device)."""
    ops, device = make_ops(a.smoke, a.conv)
    if not a.autotune_json and not a.smoke:  # any runner gets the short path, not a full autotune
        a.autotune_json = os.path.join(HERE, f"autotune_{kind}.json")
    name = "tiny (smoke)" if a.smoke else a.shape
    say(a.summary, f"== triton baseline {kind}: {name}, {detail}{versions(device)}")
    say(a.summary, f"  ops: {ops.origin}")
    say(a.summary, f"  conv: {getattr(ops, 'conv_note', 'torch Conv1d + SiLU')}")
    autotune_setup(ops, a.autotune_json, a.summary)
    on_timeout(ops, a.autotune_json, a.summary)
    Phase.name = "model init"
    torch.manual_seed(0)
    return ops, device


def say(summary, line):
    print(line, flush=True)
    if summary:
        with open(summary, "a") as f:
            f.write(line + "\n")


def versions(device):
    v = f"torch {torch.__version__}"
    try:
        import triton
        v += f", triton {triton.__version__}"
    except ImportError:
        v += ", no triton"
    if device == "cuda":
        v += f", {torch.cuda.get_device_name()}, CUDA {torch.version.cuda}"
    return v


def sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def time_ms(fn, reps, device):
    """Median and min of `reps` calls, each timed alone (CUDA events on the GPU, wall clock on a CPU)."""
    times = []
    for _ in range(reps):
        if device == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def reset_peak(device):
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_gb(device):
    """(allocated, reserved) peaks in GB (1e9 bytes): what tensors held, and what the allocator took."""
    if device != "cuda":
        return 0.0, 0.0
    return torch.cuda.max_memory_allocated() / 1e9, torch.cuda.max_memory_reserved() / 1e9


def autotune_setup(ops, path, summary):
    if not (path and hasattr(ops, "modules")):
        return
    import autotune_ctl
    if os.path.exists(path):
        n = autotune_ctl.restrict(ops.modules, path)
        say(summary, f"  autotune restricted to the configs in {os.path.basename(path)} ({n} kernels)")
    autotune_ctl.record_live(ops.modules, path)


def autotune_record(ops, path):
    if path and hasattr(ops, "modules"):
        import autotune_ctl
        autotune_ctl.dump(ops.modules, path)


class Phase:
    """What the script is doing, for the line a timeout leaves in the summary."""
    name = "start"


def on_timeout(ops, autotune_json, summary):
    """`timeout` sends SIGTERM: keep the autotune picks made so far (a later call then compiles only those)
    and say where the time ran out, then exit 124 like timeout itself."""
    import signal

    def handler(signum, frame):
        autotune_record(ops, autotune_json)
        say(summary, f"  TIMEOUT during {Phase.name} (autotune picks so far kept)")
        os._exit(124)

    signal.signal(signal.SIGTERM, handler)
