#!/usr/bin/python3
"""CPU emulation of the weight stream of src/kernels/cuda/decode_persistent.cu (no GPU needed): each warp's ring
cursor (WeightStream::ask, lane 0) against the order project() takes the chunks in, with the ring's stages and
mbarrier parities, for every warp of a grid. Checks that every take waits on a chunk already asked for (no hang), that
it finds the chunk it expects in its stage with the parity it waits on, that nothing asked is left in flight at the
end, and that the warps' rows cover each row of every projection exactly once. Also a dot product of one row through
the ring's order against decode_fused.cu's register loop order (lane-strided words, per-lane sums in ascending order).
Run: /usr/bin/python3 bench/emul/decode_persistent_emul.py"""
import numpy as np

K_WARPS, K_CHUNK, K_STAGES = 16, 256, 3  # decode_persistent.cu's constants (16-byte words per chunk)


def warp_stream(grid, warp_index, projections):
    """Replays one warp: lane 0's asks interleaved with the lanes' takes as project() and release() order them.
    projections: [(rows, k8)]. Returns the rows it computed per projection."""
    stride = grid * K_WARPS
    row0 = warp_index
    cur = {"i": 0, "j": 0, "c": 0}
    stages = [None] * K_STAGES  # what each stage holds: (projection, row, chunk, completion count)
    completions = [0] * K_STAGES
    asked = taken = 0

    def ask():
        nonlocal asked
        while cur["i"] < len(projections) and row0 + cur["j"] * stride >= projections[cur["i"]][0]:
            cur["i"], cur["j"], cur["c"] = cur["i"] + 1, 0, 0
        if cur["i"] >= len(projections):
            return
        i, j, c = cur["i"], cur["j"], cur["c"]
        k8 = projections[i][1]
        length = min(K_CHUNK, k8 - c * K_CHUNK)
        assert length > 0 and length * 16 % 16 == 0
        st = asked % K_STAGES
        assert stages[st] is None, "a stage asked for again before it was read"
        completions[st] += 1
        stages[st] = (i, row0 + j * stride, c, completions[st])
        asked += 1
        cur["c"] += 1
        if cur["c"] * K_CHUNK >= k8:
            cur["j"], cur["c"] = cur["j"] + 1, 0

    for _ in range(K_STAGES):
        ask()
    done = [[] for _ in projections]
    for i, (n, k8) in enumerate(projections):
        chunks = (k8 + K_CHUNK - 1) // K_CHUNK
        row = row0
        while row < n:
            for c in range(chunks):
                st = taken % K_STAGES
                assert taken < asked, f"warp {warp_index}: take {taken} before its ask (hang)"
                held = stages[st]
                assert held is not None and held[:3] == (i, row, c), f"warp {warp_index}: stage {st} holds {held}"
                # the wait's parity is (taken / kStages) & 1: the stage's completion count - 1, mod 2
                assert (held[3] - 1) % 2 == (taken // K_STAGES) & 1
                stages[st] = None
                taken += 1
                ask()
            done[i].append(row)
            row += stride
    assert taken == asked and all(s is None for s in stages), f"warp {warp_index}: chunks left in flight"
    return done


def check_grid(grid, layers, d, d_inner, dpr):
    projections = []
    for _ in range(layers):
        projections += [(dpr, d // 8), (d, d_inner // 8)]
    seen = [np.zeros(n, dtype=int) for n, _ in projections]
    for b in range(grid):
        for w in range(K_WARPS):
            for i, rows in enumerate(warp_stream(grid, b * K_WARPS + w, projections)):
                seen[i][rows] += 1
    assert all((s == 1).all() for s in seen), "a row computed twice or never"
    return sum(len(s) for s in seen)


def dot_orders_agree(k8, seed=0):
    """One row's dot product: the ring (chunks of K_CHUNK words, lanes lane + 32u) and the register loop (slabs of 16
    words a lane) give the same per-lane sequence of dot8 values, hence the same bits in float32."""
    rng = np.random.default_rng(seed)
    dots = rng.standard_normal(k8).astype(np.float32)  # dot8 of word i (the same in both kernels)
    ring = np.zeros(32, dtype=np.float32)
    for c in range((k8 + K_CHUNK - 1) // K_CHUNK):
        for u in range(K_CHUNK // 32):
            for lane in range(32):
                i = lane + 32 * u
                if c * K_CHUNK + i < k8:
                    ring[lane] += dots[c * K_CHUNK + i]
    regs = np.zeros(32, dtype=np.float32)
    for i0 in range(0, k8, 32 * 16):
        for u in range(16):
            for lane in range(32):
                i = i0 + lane + 32 * u
                if i < k8:
                    regs[lane] += dots[i]
    return np.array_equal(ring, regs)


if __name__ == "__main__":
    # Codestral-7B's layer (d 4096, d_inner 8192, H 128, G 8, N 128) on an H100 (132 SMs) and an H200-like 140,
    # and the small-g4 fixture (d 128, d_inner 256, H 8, G 4, N 32)
    for grid, layers, d, di, H, G, N in [(132, 3, 4096, 8192, 128, 8, 128), (140, 2, 4096, 8192, 128, 8, 128),
                                         (132, 2, 128, 256, 8, 4, 32)]:
        dpr = di + 2 * G * N + H
        rows = check_grid(grid, layers, d, di, dpr)
        print(f"grid {grid}, {layers} layers, d {d}: {rows} rows, each once; every take after its ask; none left")
    for k8 in (16, 512, 1024, 1000):
        assert dot_orders_agree(k8), k8
    print("ring and register loop sum each lane's words in the same order (k8 = 16, 512, 1024, 1000)")
