#!/usr/bin/env bash
# The lead's checkout tracks ~74 MB (testdata + models/pcm-mini), over the device tool's 64 MiB. Around a
# `run` call only: `device_slim.sh on` untracks testdata/tokenizers, testdata/gguf and the shipped
# pcm-mini weights (no GPU test reads them) in the index (and ignores them) so they do not travel
# (~24 MB go); `device_slim.sh off` restores the index right after the call.
# Never commit or merge while it is on.
set -e
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
EX=.git/info/exclude
case "$1" in
  on)  git rm -r -q --cached testdata/tokenizers testdata/gguf models/pcm-mini/model.safetensors
       grep -qx '/testdata/tokenizers/' $EX || printf '/testdata/tokenizers/\n/testdata/gguf/\n/models/pcm-mini/model.safetensors\n' >> $EX ;;
  off) git reset -q -- testdata/tokenizers testdata/gguf models/pcm-mini/model.safetensors
       sed -i '\#^/testdata/tokenizers/$#d; \#^/testdata/gguf/$#d; \#^/models/pcm-mini/model.safetensors$#d' $EX ;;
  *) echo "usage: device_slim.sh on|off" >&2; exit 1 ;;
esac
git status --short | grep -v '^??' | head -3
