#!/bin/sh
# Copies into DEST_DIR the shared libraries that pcm and the test binaries (built here, Debian 12) need
# and the GPU machine (Ubuntu 24.04) lacks; the one list for every pack script (check with ldd).
#   scripts/dev/device_libs.sh DEST_DIR
set -e
[ $# -eq 1 ] || { echo "usage: device_libs.sh DEST_DIR" >&2; exit 2; }
mkdir -p "$1"
for l in libgomp.so.1 libfmt.so.9 libgfortran.so.5 libquadmath.so.0 libutf8proc.so.2 libginac.so.11 libcln.so.6 \
         libgmp.so.10 libtomlplusplus.so.3 libcpp-httplib.so.0.11 libbrotlicommon.so.1 libbrotlidec.so.1 \
         libbrotlienc.so.1 libpcre2-8.so.0; do
  cp -L "/lib/x86_64-linux-gnu/$l" "$1/"
done
