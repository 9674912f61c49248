#!/bin/bash
# Device side of decode v26's probe (bench/cuda_notes.md): the probe's test (stop if it fails), memcheck on it, then
# `cuda_decode_kernels --probe` twice (ceilings, the fused chain's rows, the three probe rows; the second run sizes
# the noise). Pack: BINS="cuda_decode_kernels test_cuda" RUN=bench/probe_run.sh bench/window_pack.sh BUILD DEST PCM.
cd "$(dirname "$0")"; tar xJf pack.tar.xz
export LD_LIBRARY_PATH=$PWD/lib:$LD_LIBRARY_PATH
CS=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,power.draw --format=csv,noheader | tee $OUT/gpu.txt
timeout 120 ./test_cuda --gtest_filter='CudaKernels.LayerStream*' > $OUT/test.log 2>&1; rc=$?
tail -3 $OUT/test.log; [ $rc -eq 0 ] || { echo "probe test failed rc=$rc"; exit 1; }
[ -n "$CS" ] && timeout 120 $CS --tool memcheck ./test_cuda --gtest_filter='CudaKernels.LayerStream*' > $OUT/memcheck.log 2>&1
echo "memcheck rc=$? $(grep -h 'ERROR SUMMARY' $OUT/memcheck.log)"
for r in 1 2; do timeout 150 ./cuda_decode_kernels --probe > $OUT/probe$r.txt 2>&1; echo "probe run $r rc=$?"; done
tail -n 30 $OUT/probe1.txt; echo "--- run 2:"; grep -E "probe|persistent|a launch each|alone" $OUT/probe2.txt
