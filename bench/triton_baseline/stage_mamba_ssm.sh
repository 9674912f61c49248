#!/bin/sh
# Copies from a git mirror of state-spaces/mamba the few files the baseline needs (the SSD and norm Triton
# kernels and what they import) into DEST/mamba_ssm, with empty package __init__ files, so that
# `import mamba_ssm.ops.triton.ssd_combined` works without building mamba_ssm's CUDA extensions.
# The copied files are the upstream ones, unchanged; DEST/MAMBA_COMMIT records where they came from.
#   stage_mamba_ssm.sh MIRROR_GIT_DIR COMMIT DEST
set -e
[ $# -eq 3 ] || { echo "usage: stage_mamba_ssm.sh MIRROR_GIT_DIR COMMIT DEST" >&2; exit 2; }
git_dir=$1; commit=$2; dest=$3
mkdir -p "$dest/mamba_ssm/ops/triton" "$dest/mamba_ssm/utils"
for f in ssd_bmm ssd_chunk_state ssd_chunk_scan ssd_state_passing ssd_combined layernorm_gated layer_norm \
         k_activations softplus; do
  git --git-dir="$git_dir" show "$commit:mamba_ssm/ops/triton/$f.py" > "$dest/mamba_ssm/ops/triton/$f.py"
done
for f in determinism torch; do
  git --git-dir="$git_dir" show "$commit:mamba_ssm/utils/$f.py" > "$dest/mamba_ssm/utils/$f.py"
done
# Stub package: upstream's mamba_ssm/__init__.py imports the selective-scan CUDA extension and the models.
echo "# stub: only mamba_ssm.ops.triton (copied unchanged from state-spaces/mamba $commit)" > "$dest/mamba_ssm/__init__.py"
: > "$dest/mamba_ssm/ops/__init__.py"
: > "$dest/mamba_ssm/ops/triton/__init__.py"
: > "$dest/mamba_ssm/utils/__init__.py"
git --git-dir="$git_dir" log -1 --format='%H %ad %s' --date=short "$commit" > "$dest/MAMBA_COMMIT"
