"""arrowfeed.Store against `datasets` on a real save_to_disk directory, and on shard stores."""

import os
import pickle

import numpy as np
import pyarrow as pa
import pytest

import arrowfeed
from conftest import s3


def test_store_rows_equal_datasets_rows(hf_dir, table):
    d, ds = hf_dir
    store = arrowfeed.Store(d)
    assert len(store) == len(ds) == table.num_rows
    assert store.num_shards > 1
    assert store.column_names == ds.column_names
    for i in [0, 1, 7, len(ds) // 2, len(ds) - 1, -1, -len(ds)]:
        assert store[i] == ds[i], i


def test_slices_lists_and_take_are_record_batches(store_dir, table):
    store = arrowfeed.Store(store_dir)
    n = len(store)
    want = table.combine_chunks()
    got = store[10:2500]
    assert isinstance(got, pa.RecordBatch)
    assert pa.Table.from_batches([got]).equals(want.slice(10, 2490))
    assert store[::-500].to_pydict() == want.take(list(range(n - 1, -1, -500))).to_pydict()
    idx = [5, 2999, 5, 0, 1234]
    assert store[idx].to_pydict() == want.take(idx).to_pydict()
    assert store.take(np.array(idx)).to_pydict() == want.take(idx).to_pydict()
    assert store.take(idx, columns=["text", "id"]).schema.names == ["text", "id"]
    rows = store.__getitems__(idx)
    assert rows == want.take(idx).to_pylist()
    assert store[n:n + 5].num_rows == 0


def test_index_errors_past_the_end(store_dir):
    store = arrowfeed.Store(store_dir)
    n = len(store)
    for bad in [n, -n - 1, 10**12]:
        with pytest.raises(IndexError):
            store[bad]
    with pytest.raises(IndexError) as e:
        store.take([0, n])
    assert isinstance(e.value, arrowfeed.ArrowfeedError)


def test_missing_store_is_an_os_error_naming_it(tmp_path):
    with pytest.raises(OSError) as e:
        arrowfeed.Store(tmp_path / "nothing")
    assert str(tmp_path / "nothing") in str(e.value)


def test_a_store_pickles_and_reopens(store_dir):
    store = arrowfeed.Store(store_dir)
    again = pickle.loads(pickle.dumps(store))
    assert len(again) == len(store)
    assert again[17] == store[17]


def test_verify(store_dir):
    checked, bad = arrowfeed.Store(store_dir).verify()
    assert checked > 1 and bad == []


def test_a_remote_store_through_the_cache(tmp_path, table):
    server = s3()
    if server is None:
        pytest.skip("no S3 server (run through cargo xtask ci)")
    bucket, _ = server
    url = f"s3://{bucket}/pytest-store-{os.getpid()}"
    arrowfeed.write_store(table, url, shard_bytes=100_000)
    store = arrowfeed.Store(url, cache_dir=tmp_path / "cache", cache_limit=1 << 30)
    local = table.combine_chunks()
    idx = [2999, 0, 1500, 1500]
    assert store.take(idx).to_pydict() == local.take(idx).to_pydict()
    assert store[42] == {k: v[0] for k, v in local.slice(42, 1).to_pydict().items()}
    assert any((tmp_path / "cache").iterdir())
