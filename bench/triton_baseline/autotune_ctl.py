"""Triton autotuning of the mamba_ssm kernels: record which config each kernel picked, and restrict a later
run to the picked configs. A fresh GPU machine compiles and times every config of every kernel (minutes
for the backward); restricted to the configs a full autotune picked on the same GPU, a run compiles only
those and runs the same kernels, so the measured times are unchanged."""
import json
import os


def autotuners(modules):
    from triton.runtime.autotuner import Autotuner
    found = {}
    for m in modules:
        for name, obj in vars(m).items():
            if isinstance(obj, Autotuner):
                found[f"{m.__name__.rsplit('.', 1)[-1]}.{name}"] = obj
    return found


def picked(modules):
    """{kernel: {autotune key: config}} of every kernel that has run."""
    return {name: {str(k): str(c) for k, c in at.cache.items()}
            for name, at in sorted(autotuners(modules).items()) if getattr(at, "cache", None)}


def dump(modules, path):
    old = json.load(open(path)) if os.path.exists(path) else {}
    for name, keys in picked(modules).items():
        old.setdefault(name, {}).update(keys)
    with open(path, "w") as f:
        json.dump(old, f, indent=1, sort_keys=True)
    return len(old)


def restrict(modules, path):
    """Keep only the configs that `path` (dump's file) lists for each kernel; returns how many kernels."""
    chosen = json.load(open(path))
    n = 0
    for name, at in autotuners(modules).items():
        want = set(chosen.get(name, {}).values())
        keep = [c for c in at.configs if str(c) in want]
        if keep:
            at.configs = keep
            n += 1
    return n
