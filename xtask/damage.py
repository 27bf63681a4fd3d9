"""Random damage to pyarrow-written Parquet files through the arrowfeed CLI.

    python xtask/damage.py target/debug/arrowfeed OUT_DIR RUNS     (SEED=N to vary the damage)

Writes one table with ten column types under four codecs and both page versions, then RUNS
times damages one copy (bit flips, a truncation, a zeroed or a copied span) and runs `info` and
`convert` on it. Prints each run whose stderr shows a panic message (kept in OUT_DIR) and the
totals: panic messages and deaths by a signal, both of which should be 0."""
import os, random, subprocess, sys, shutil
import pyarrow as pa, pyarrow.parquet as pq

bin_, out, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(out, exist_ok=True)
rng = random.Random(int(os.environ.get("SEED", "1")))
n = 2000
t = pa.table({
    "id": pa.array(range(n), pa.int64()),
    "f": pa.array([i * 0.5 for i in range(n)], pa.float32()),
    "s": pa.array([("x" * (i % 13)) if i % 7 else None for i in range(n)]),
    "d": pa.array([["a", "bb", "ccc"][i % 3] for i in range(n)]).dictionary_encode(),
    "l": pa.array([[j for j in range(i % 5)] for i in range(n)], pa.list_(pa.int32())),
    "st": pa.array([{"a": i, "b": str(i)} for i in range(n)]),
    "b": pa.array([i % 3 == 0 for i in range(n)]),
    "ts": pa.array(range(n), pa.timestamp("ms")),
    "dec": pa.array([i for i in range(n)], pa.decimal128(10, 2)),
    "ll": pa.array([[[i]] * (i % 3) for i in range(n)], pa.list_(pa.list_(pa.int64()))),
})
srcs = []
for comp in ["snappy", "zstd", "none", "gzip"]:
    for v2 in [False, True]:
        p = os.path.join(out, f"src-{comp}-{int(v2)}.parquet")
        pq.write_table(t, p, compression=comp, row_group_size=700,
                       data_page_version="2.0" if v2 else "1.0", data_page_size=4096)
        srcs.append(p)
bad = 0
sig = 0
for i in range(runs):
    src = rng.choice(srcs)
    data = bytearray(open(src, "rb").read())
    kind = rng.choice(["flip", "trunc", "zero", "copy"])
    body = len(data) - 8
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            k = rng.randrange(4, body); data[k] ^= 1 << rng.randrange(8)
    elif kind == "trunc":
        data = data[: rng.randrange(4, len(data))] + data[-8:]
    elif kind == "zero":
        k = rng.randrange(4, body); m = rng.randint(1, 64)
        data[k:k + m] = bytes(len(data[k:k + m]))
    else:
        a = rng.randrange(4, body); b = rng.randrange(4, body); m = rng.randint(1, 64)
        seg = data[a:a + m]; data[b:b + len(seg)] = seg
    p = os.path.join(out, "cur.parquet")
    open(p, "wb").write(data)
    for args in (["info", p], ["convert", p, "--out", os.path.join(out, "conv"), "--overwrite"]):
        r = subprocess.run([bin_] + args, capture_output=True, text=True,
                           env={**os.environ, "RUST_BACKTRACE": "0"})
        if r.returncode < 0:
            sig += 1
            shutil.copy(p, os.path.join(out, f"signal-{i}.parquet"))
        if "panicked" in r.stderr:
            bad += 1
            keep = os.path.join(out, f"panic-{i}-{args[0]}.parquet")
            shutil.copy(p, keep)
            print(keep, r.stderr.strip().splitlines()[0][:200], flush=True)
print(f"runs={runs} panic_messages={bad} signals={sig}")
