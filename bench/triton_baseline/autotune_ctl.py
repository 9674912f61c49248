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


class _Recording(dict):
    """An Autotuner's cache that writes the picks file whenever a pick is made: a run stopped mid-autotune
    (SIGKILL in a long compile) still leaves every pick made so far."""

    def __init__(self, old, on_set):
        super().__init__(old)
        self.on_set = on_set

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self.on_set()


def record_live(modules, path):
    for at in autotuners(modules).values():
        if isinstance(getattr(at, "cache", None), dict):
            at.cache = _Recording(at.cache, lambda: dump(modules, path))


def from_log(log_path, mamba_src, out_path):
    """Picks file from a log of a run with TRITON_PRINT_AUTOTUNING=1 (a run killed before it wrote its own),
    each kernel named after the staged mamba_ssm file(s) that define it."""
    import glob
    import re
    text = open(log_path, errors="replace").read()
    found = re.findall(r"Triton autotuning for function (\w+),\s*with key as (\(.*?\)),\s*finished after [\d.]+s,\s*"
                       r"best config selected: (.*?);", text, re.S)
    sources = {os.path.basename(p)[:-3]: open(p).read()
               for p in glob.glob(os.path.join(mamba_src, "mamba_ssm", "ops", "triton", "*.py"))}
    picks = json.load(open(out_path)) if os.path.exists(out_path) else {}
    for fn, key, cfg in found:
        for mod, src in sources.items():
            if re.search(rf"^def {fn}\(", src, re.M):
                picks.setdefault(f"{mod}.{fn}", {})[key] = cfg
    with open(out_path, "w") as f:
        json.dump(picks, f, indent=1, sort_keys=True)
    return len(found)


if __name__ == "__main__":
    import sys
    if len(sys.argv) != 5 or sys.argv[1] != "from-log":
        sys.exit("usage: autotune_ctl.py from-log LOG MAMBA_SRC OUT_JSON")
    print(f"{from_log(*sys.argv[2:])} picks read")
