"""Shared fixtures: ML-shaped tables written in every format, shard stores, and a real
`datasets.save_to_disk` directory."""

import os
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

# datasets must not reach for the network nor write outside the temporary area.
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HOME", os.path.join(tempfile.gettempdir(), "arrowfeed-pytest-hf"))


def ml_table(n, seed=0):
    """n rows shaped like training data: ids, labels, scores with nulls, text, tokens, bytes."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 12, n)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    tokens = pa.ListArray.from_arrays(pa.array(offsets), pa.array(rng.integers(0, 30000, offsets[-1]).astype(np.int32)))
    return pa.table({
        "id": pa.array(np.arange(n, dtype=np.int64)),
        "label": pa.array(rng.integers(0, 10, n).astype(np.int32)),
        "score": pa.array([None if i % 7 == 3 else float(i) / 3 for i in range(n)], pa.float32()),
        "text": pa.array([f"row {i} " + "x" * int(i % 17) for i in range(n)]),
        "tokens": tokens,
        "image": pa.array([bytes([i % 251]) * int(i % 50) for i in range(n)], pa.binary()),
    })


FORMATS = ["parquet", "parquet-zstd", "arrow", "arrow-lz4", "arrows", "arrows-zstd"]


def write(table, path, fmt):
    batches = table.to_batches(max_chunksize=max(1, table.num_rows // 3))
    if fmt.startswith("parquet"):
        pq.write_table(table, path, row_group_size=max(1, table.num_rows // 4),
                       compression="zstd" if fmt.endswith("zstd") else "snappy")
    elif fmt.startswith("arrows"):
        opts = ipc.IpcWriteOptions(compression="zstd" if fmt.endswith("zstd") else None)
        with ipc.new_stream(path, table.schema, options=opts) as w:
            for b in batches:
                w.write_batch(b)
    else:
        opts = ipc.IpcWriteOptions(compression="lz4" if fmt.endswith("lz4") else None)
        with ipc.new_file(path, table.schema, options=opts) as w:
            for b in batches:
                w.write_batch(b)
    return path


@pytest.fixture(scope="session")
def table():
    return ml_table(3000)


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory, table):
    """A shard store of `table` in several shards."""
    import arrowfeed
    d = tmp_path_factory.mktemp("store") / "train"
    arrowfeed.write_store(table, d, shard_bytes=100_000, batch_rows=256)
    return d


@pytest.fixture(scope="session")
def hf_dir(tmp_path_factory, table):
    """A real `datasets.save_to_disk` directory of `table`, and the dataset."""
    import datasets
    datasets.disable_progress_bars()
    ds = datasets.Dataset(datasets.table.InMemoryTable(table))
    d = tmp_path_factory.mktemp("hf") / "ds"
    ds.save_to_disk(str(d), max_shard_size="100KB")
    return d, datasets.load_from_disk(str(d))


def s3():
    """(bucket, endpoint) of the S3 server `cargo xtask ci` starts, or None; a missing server
    fails when ARROWFEED_REQUIRE_S3=1."""
    endpoint = os.environ.get("ARROWFEED_TEST_S3_ENDPOINT")
    bucket = os.environ.get("ARROWFEED_TEST_S3_BUCKET")
    if not endpoint or not bucket:
        if os.environ.get("ARROWFEED_REQUIRE_S3") == "1":
            pytest.fail("ARROWFEED_REQUIRE_S3=1 but no S3 server is configured")
        return None
    return bucket, endpoint
