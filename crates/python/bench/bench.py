#!/usr/bin/env python3
"""arrowfeed from Python on the shared bench data, measured as `../shared/bench/peers.py`
measures its peers (same data, same seeds, the same `Touch` of every value byte, one JSON line
per run), so the figures sit beside theirs:

    BENCH_DATA=/tmp/benchdata python bench.py shuffled-epoch --impl arrowfeed
    BENCH_DATA=/tmp/benchdata python bench.py shuffled-epoch --impl arrowfeed-numpy
    BENCH_DATA=/tmp/benchdata python bench.py take-random --impl arrowfeed
    BENCH_DATA=/tmp/benchdata python bench.py shuffled-epoch --impl hf-numpy
    BENCH_DATA=/tmp/benchdata python bench.py shuffled-epoch --impl hf-torch-dataloader

`--store` names the shard store (default `$BENCH_DATA/store`, made by
`arrowfeed convert $BENCH_DATA/ml.parquet --out $BENCH_DATA/store`). The `hf-*` peers not in
peers.py are here: `datasets` with `with_format("numpy")`, and a PyTorch `DataLoader` with two
workers over the `datasets` dataset (needs torch).
"""
import argparse
import os
import sys
import time

import numpy as np
import pyarrow as pa

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../../shared/bench"))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "../../../shared/bench"))
from peers import DATA, EPOCH_SEED, TAKE_SEED, Touch, emit, lat_stats, touch_batch  # noqa: E402


def touch_numpy(batch, t):
    """Every value byte of a dict of numpy columns (object columns element by element)."""
    n = None
    for name, col in batch.items():
        n = len(col)
        if col.dtype.kind in "iub":
            t.int_sum += int(col.sum())
        elif col.dtype.kind == "f":
            t.float_sum += float(np.nansum(col))
        else:
            for v in col:
                if isinstance(v, (bytes, str)):
                    t.var_len_sum += len(v)
                elif v is not None:
                    a = np.asarray(v)
                    t.list_len_sum += len(a)
                    t.list_val_sum += int(a.sum())
    t.rows += n or 0


def shuffled_epoch(a):
    import arrowfeed
    info = {"batch_rows": a.batch_rows, "seed": EPOCH_SEED, "workers": a.workers}
    t = Touch()
    lat = []
    if a.impl.startswith("arrowfeed"):
        fmt = "numpy" if a.impl == "arrowfeed-numpy" else "arrow"
        t_prep = time.perf_counter()
        loader = arrowfeed.Loader(a.store, batch_size=a.batch_rows, seed=EPOCH_SEED,
                                  shuffle=a.shuffle, workers=a.workers, format=fmt)
        prep = time.perf_counter() - t_prep
        t0 = s = time.perf_counter()
        for batch in loader:
            touch_batch(batch, t) if fmt == "arrow" else touch_numpy(batch, t)
            lat.append(time.perf_counter() - s)
            s = time.perf_counter()
        info["arrowfeed"] = arrowfeed.__version__
    elif a.impl == "hf-numpy":
        import datasets
        t_prep = time.perf_counter()
        ds = datasets.load_from_disk(os.path.join(DATA, "hf_ml"))
        ds = ds.shuffle(seed=EPOCH_SEED, keep_in_memory=True).with_format("numpy")
        prep = time.perf_counter() - t_prep
        t0 = s = time.perf_counter()
        for batch in ds.iter(batch_size=a.batch_rows):
            touch_numpy(batch, t)
            lat.append(time.perf_counter() - s)
            s = time.perf_counter()
        info["datasets"] = datasets.__version__
    elif a.impl == "hf-torch-dataloader":
        import datasets
        import torch
        t_prep = time.perf_counter()
        ds = datasets.load_from_disk(os.path.join(DATA, "hf_ml")).with_format("numpy")
        g = torch.Generator().manual_seed(EPOCH_SEED)
        dl = torch.utils.data.DataLoader(ds, batch_size=a.batch_rows, shuffle=True, generator=g,
                                         num_workers=2, collate_fn=lambda rows: rows)
        prep = time.perf_counter() - t_prep
        t0 = s = time.perf_counter()
        def column(values):
            if isinstance(values[0], (np.ndarray, bytes, str)) and np.ndim(values[0]) != 0:
                out = np.empty(len(values), dtype=object)
                out[:] = values
                return out
            return np.asarray(values)

        for rows in dl:
            cols = {k: column([r[k] for r in rows]) for k in rows[0]}
            touch_numpy(cols, t)
            lat.append(time.perf_counter() - s)
            s = time.perf_counter()
        info["torch"] = torch.__version__
    else:
        raise SystemExit(f"unknown --impl {a.impl}")
    wall = time.perf_counter() - t0
    met = {"wall_s": wall, "rows_per_s": t.rows / wall, "prep_s": prep,
           "total_s_incl_prep": wall + prep}
    met.update(lat_stats(lat))
    info["rows"] = t.rows
    emit("shuffled-epoch", a.impl, met, {"id_sum": t.int_sum, "var_len_sum": t.var_len_sum}, info)


def take_random(a):
    import arrowfeed
    t_open = time.perf_counter()
    store = arrowfeed.Store(a.store)
    open_s = time.perf_counter() - t_open
    rng = np.random.default_rng(TAKE_SEED)
    all_idx = rng.integers(0, len(store), (a.batches, a.batch_rows), dtype=np.int64)
    t = Touch()
    lat = []
    t0 = time.perf_counter()
    for b in range(a.batches):
        s = time.perf_counter()
        touch_batch(store.take(all_idx[b]), t)
        lat.append(time.perf_counter() - s)
    wall = time.perf_counter() - t0
    rows = a.batches * a.batch_rows
    met = {"wall_s": wall, "rows_per_s": rows / wall, "open_s": open_s}
    met.update(lat_stats(lat))
    emit("take-random", "arrowfeed", met, {"id_sum": t.int_sum, "var_len_sum": t.var_len_sum},
         {"batches": a.batches, "batch_rows": a.batch_rows, "seed": TAKE_SEED})


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bench", choices=["shuffled-epoch", "take-random"])
    p.add_argument("--impl", default="arrowfeed")
    p.add_argument("--store", default=os.path.join(DATA, "store"))
    p.add_argument("--batch-rows", type=int, default=256)
    p.add_argument("--batches", type=int, default=2000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--shuffle", default="global")
    a = p.parse_args()
    (shuffled_epoch if a.bench == "shuffled-epoch" else take_random)(a)


if __name__ == "__main__":
    main()
