#!/bin/sh
# Packs the Triton-baseline call: pcm (stripped), the shared libraries the device lacks, these scripts, the
# mamba_ssm Triton sources at MAMBA_COMMIT (staged from a git mirror of state-spaces/mamba) and any
# autotune picks, into DEST_DIR/pack.tar.xz, with run.sh beside it. The device has PyTorch and Triton.
#   pack.sh PCM_BINARY MAMBA_GIT_DIR DEST_DIR
set -e
[ $# -eq 3 ] || { echo "usage: pack.sh PCM_BINARY MAMBA_GIT_DIR DEST_DIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd); pcm=$1; git_dir=$2; dst=$3
commit=${MAMBA_COMMIT:-e9594ce1c732d97440f0332fdc43170a2294dbfa}  # state-spaces/mamba main, 2026-07-23
rm -rf "$dst"; mkdir -p "$dst/stage/lib" "$dst/stage/triton_baseline"
strip -o "$dst/stage/pcm" "$pcm"
"$here/../../scripts/dev/device_libs.sh" "$dst/stage/lib"
cp "$here"/*.py "$dst/stage/triton_baseline/"
for f in "$here"/autotune_*.json; do [ -f "$f" ] && cp "$f" "$dst/stage/triton_baseline/"; done
"$here/stage_mamba_ssm.sh" "$git_dir" "$commit" "$dst/stage/mamba_src"
(cd "$dst/stage" && XZ_OPT=-9e tar cJf ../pack.tar.xz .)
rm -rf "$dst/stage"
cp "$here/run.sh" "$dst/run.sh"
du -sh "$dst"
