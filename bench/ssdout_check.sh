#!/bin/bash
# Short device check after a refactor of the SSD prefill kernels (pack: RUN=bench/ssdout_check.sh
# bench/ssdpass_pack.sh): the CUDA kernel and model tests, and the codestral-7b prefill of pcm against pcm_base.
cd "$(dirname "$0")"; tar xJf pack.tar.xz
export LD_LIBRARY_PATH=$PWD/lib:$LD_LIBRARY_PATH PCM_TESTDATA_DIR=$PWD/../testdata PCM_BINARY_PATH=$PWD/pcm
S=$OUT/summary.txt; : > $S
timeout 100 ./test_cuda --gtest_filter='CudaKernels.*:CudaModel.*:*CudaFixture*' > /tmp/t.log 2>&1
echo "test_cuda kernels+model rc=$?: $(grep -c '^\[       OK' /tmp/t.log) ok, failed: $(grep '^\[  FAILED  \]' /tmp/t.log | grep -v listed | awk '{print $4}' | sort -u | tr '\n' ' ')" >> $S
for r in 1 2; do for b in pcm_base pcm; do
  timeout 30 ./$b bench --device cuda --shape codestral-7b --cuda-batches 1 --cuda-prefill 4096,16384 > /tmp/ab.txt 2>&1
  echo "prefill $b: $(grep -E '^\| T=' /tmp/ab.txt | awk -F'|' '{printf "%s %s ms; ", $2, $4}')" >> $S
done; done
cat $S
