#!/usr/bin/env bash
# Runs bench/openai_client_check.py with the openai client taken from a source checkout, for machines without
# a pip index (see README.md, Serving). Dependencies come from the system Python (Debian:
# python3-httpx python3-pydantic python3-anyio python3-distro python3-sniffio python3-tqdm python3-numpy).
#
#   bench/openai_client_run.sh OPENAI_PYTHON_DIR [TYPING_EXTENSIONS_DIR] -- --port 8080
#
# OPENAI_PYTHON_DIR: a checkout of openai/openai-python at a release tag (its src/ goes on PYTHONPATH, unchanged).
# TYPING_EXTENSIONS_DIR: a checkout of python/typing_extensions, when the system's is older than the client needs.
# When `jiter` (a Rust extension the client imports from 1.40 on) is not installed, a stand-in whose from_json
# is json.loads is written to a temporary directory: the client calls it only to stream structured outputs or
# strict tool arguments, which pcm serve refuses.
set -euo pipefail
[[ $# -ge 1 && -d $1/src/openai ]] || { echo "usage: $0 OPENAI_PYTHON_DIR [TYPING_EXTENSIONS_DIR] -- CHECK_ARGS" >&2; exit 2; }
path=$1/src
shift
if [[ $# -ge 1 && $1 != -- ]]; then
  [[ -f $1/src/typing_extensions.py ]] || { echo "$0: no src/typing_extensions.py in $1" >&2; exit 2; }
  path=$1/src:$path
  shift
fi
[[ ${1:-} == -- ]] && shift
python=${PYTHON:-/usr/bin/python3}
shim=$(mktemp -d)
trap 'rm -rf "$shim"' EXIT
if ! "$python" -c 'import jiter' 2>/dev/null; then
  mkdir "$shim/jiter"
  cat > "$shim/jiter/__init__.py" <<'PY'
"""Stand-in for the jiter extension (not installed): complete JSON documents only."""
import json


def from_json(data, *, partial_mode=False, **_):
    return json.loads(data)
PY
  echo "openai_client_run: jiter is not installed; using a json.loads stand-in for jiter.from_json" >&2
  path=$path:$shim
fi
PYTHONPATH=$path${PYTHONPATH:+:$PYTHONPATH} "$python" "$(dirname "$0")/openai_client_check.py" "$@"
