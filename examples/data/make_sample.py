#!/usr/bin/env python3
"""Writes examples/data/ml-sample.parquet: 500 ML-shaped rows (the schema of
../shared/bench/gen_data.py, smaller images) for the README's first commands. Fixed seed."""
import os

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

rng = np.random.default_rng(20261123)
n = 500
text = ["".join(map(chr, rng.integers(0x20, 0x7F, rng.integers(50, 120)))) for _ in range(n)]
tokens = [rng.integers(0, 50257, rng.integers(16, 64)).astype(np.int32).tolist() for _ in range(n)]
image = [rng.bytes(int(rng.integers(64, 256))) for _ in range(n)]
table = pa.table({
    "id": pa.array(np.arange(n, dtype=np.int64)),
    "label": pa.array(rng.integers(0, 1000, n, dtype=np.int32)),
    "score": pa.array(rng.random(n, dtype=np.float32)),
    "text": pa.array(text, pa.string()),
    "tokens": pa.array(tokens, pa.list_(pa.int32())),
    "image": pa.array(image, pa.binary()),
})
pq.write_table(table, os.path.join(os.path.dirname(__file__), "ml-sample.parquet"),
               compression="zstd", row_group_size=125)
