"""arrowfeed.open against pyarrow for every format; the Arrow stream interface; errors."""

import os

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

import arrowfeed
from conftest import FORMATS, ml_table, s3, write


def pyarrow_read(path, fmt):
    if fmt.startswith("parquet"):
        return pq.read_table(path)
    if fmt.startswith("arrows"):
        return ipc.open_stream(path).read_all()
    return ipc.open_file(path).read_all()


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_reads_as_pyarrow_reads_it(tmp_path, table, fmt):
    path = write(table, str(tmp_path / f"t.{fmt}"), fmt)
    want = pyarrow_read(path, fmt)
    reader = arrowfeed.open(path)
    assert reader.schema.equals(want.schema)
    batches = list(reader)
    assert all(isinstance(b, pa.RecordBatch) for b in batches)
    got = pa.Table.from_batches(batches, schema=reader.schema)
    assert got.equals(want)
    # The Arrow C stream: pyarrow takes the reader itself.
    assert pa.table(arrowfeed.open(path)).equals(want)
    assert pa.RecordBatchReader.from_stream(arrowfeed.open(path)).read_all().equals(want)


@pytest.mark.parametrize("fmt", ["parquet", "arrow", "arrows"])
def test_columns_and_batch_size(tmp_path, table, fmt):
    path = write(table, str(tmp_path / f"t.{fmt}"), fmt)
    reader = arrowfeed.open(path, columns=["text", "id"], batch_size=500)
    batches = list(reader)
    assert reader.schema.names == ["text", "id"]
    assert all(b.num_rows <= 500 for b in batches)
    got = pa.Table.from_batches(batches)
    assert got.equals(pyarrow_read(path, fmt).select(["text", "id"]))


@pytest.mark.parametrize("fmt", ["parquet", "arrow"])
@pytest.mark.parametrize("budget", [1, 1 << 16, None])
def test_a_memory_budget_changes_nothing_but_memory(tmp_path, table, fmt, budget):
    # One file is read by the scan engine; any budget, down to 1 byte (one piece at a time),
    # gives the same batches.
    path = write(table, str(tmp_path / f"t.{fmt}"), fmt)
    got = pa.table(arrowfeed.open(path, batch_size=300, memory_budget=budget))
    assert got.equals(pyarrow_read(path, fmt))
    assert all(b.num_rows == 300 for b in got.to_batches()[:-1])


@pytest.mark.parametrize("budget", [-1, 0])
def test_a_memory_budget_below_one_byte_is_a_value_error(tmp_path, table, budget):
    path = write(table, str(tmp_path / "t.parquet"), "parquet")
    with pytest.raises(ValueError, match="memory_budget"):
        arrowfeed.open(path, memory_budget=budget)


def test_several_files_as_one(tmp_path, table):
    a = write(table.slice(0, 1000), str(tmp_path / "a.parquet"), "parquet")
    b = write(table.slice(1000), str(tmp_path / "b.parquet"), "parquet-zstd")
    got = pa.table(arrowfeed.open([a, b]))
    assert got.equals(pa.concat_tables([pq.read_table(a), pq.read_table(b)]))
    # Files whose schemas differ (pyarrow names a Parquet list's item "element", an IPC one
    # "item") are refused, naming both.
    c = write(table.slice(1000), str(tmp_path / "c.arrow"), "arrow")
    with pytest.raises(ValueError, match="different schemas"):
        arrowfeed.open([a, c])


def test_write_store_from_any_stream(tmp_path, table):
    rows, shards, size = arrowfeed.write_store(table, tmp_path / "s", shard_bytes=50_000,
                                               batch_rows=100)
    assert rows == table.num_rows and shards > 1 and size > 0
    store = arrowfeed.Store(tmp_path / "s")
    assert store[0:len(store)].to_pydict() == table.to_pydict()
    path = write(table, str(tmp_path / "t.parquet"), "parquet")
    arrowfeed.write_store(arrowfeed.open(path), tmp_path / "s2")
    assert len(arrowfeed.Store(tmp_path / "s2")) == table.num_rows
    with pytest.raises(arrowfeed.ArrowfeedError, match="already exists"):
        arrowfeed.write_store(table, tmp_path / "s")
    with pytest.raises(TypeError):
        arrowfeed.write_store([1, 2, 3], tmp_path / "s3")


def test_errors_name_the_file(tmp_path):
    missing = str(tmp_path / "missing.parquet")
    with pytest.raises(OSError) as e:
        arrowfeed.open(missing)
    assert isinstance(e.value, arrowfeed.ArrowfeedError)
    assert missing in str(e.value) and "\n" not in str(e.value)
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"PAR1 this is not parquet at all PAR1")
    with pytest.raises(arrowfeed.ArrowfeedError) as e:
        list(arrowfeed.open(str(bad)))
    assert str(bad) in str(e.value)
    good = write(ml_table(10), str(tmp_path / "g.parquet"), "parquet")
    with pytest.raises(ValueError, match="no column named .nope."):
        arrowfeed.open(good, columns=["nope"])
    with pytest.raises(ValueError):
        arrowfeed.open(good, batch_size=0)


def test_a_decoder_panic_raises_without_a_panic_message(capfd):
    """The parquet crate panics on this damaged file (a dictionary key past a decimal column's
    dictionary); the error names the file and stderr stays empty."""
    bad = os.path.join(os.path.dirname(__file__), "../../cli/tests/data/dictionary-key-out-of-range.parquet")
    with pytest.raises(arrowfeed.ArrowfeedError, match="out of range") as e:
        list(arrowfeed.open(bad))
    assert "dictionary-key-out-of-range.parquet" in str(e.value)
    # Through the Arrow C stream, pyarrow raises its own error with our message.
    with pytest.raises(pa.ArrowInvalid, match="dictionary-key-out-of-range.parquet"):
        pa.table(arrowfeed.open(bad))
    assert "panicked" not in capfd.readouterr().err


def test_damaged_files_raise_and_never_crash(tmp_path, table):
    """Byte flips and truncations of every format: an ArrowfeedError or the right data."""
    import random
    rnd = random.Random(7)
    for fmt in FORMATS:
        path = write(table.slice(0, 400), str(tmp_path / f"d.{fmt}"), fmt)
        data = open(path, "rb").read()
        for k in range(12):
            damaged = bytearray(data)
            if k % 3 == 0:
                damaged = damaged[: rnd.randrange(1, len(damaged))]
            else:
                for _ in range(4):
                    damaged[rnd.randrange(len(damaged))] ^= 1 << rnd.randrange(8)
            p = tmp_path / f"dmg-{fmt}-{k}"
            p.write_bytes(bytes(damaged))
            try:
                pa.table(arrowfeed.open(str(p)))
            except arrowfeed.ArrowfeedError as e:
                assert str(p) in str(e)
            except pa.ArrowInvalid:
                # pyarrow's own validation of what it imported: also an error, not a crash.
                pass


def test_remote_files_read_as_local_ones(tmp_path, table):
    server = s3()
    if server is None:
        pytest.skip("no S3 server (run through cargo xtask ci)")
    bucket, _ = server
    for fmt in ["parquet", "arrow-lz4", "arrows"]:
        path = write(table, str(tmp_path / f"r.{fmt}"), fmt)
        url = f"s3://{bucket}/pytest-{os.getpid()}/r.{fmt}"
        _upload(path, url)
        assert pa.table(arrowfeed.open(url, columns=["id", "tokens"])).equals(
            pyarrow_read(path, fmt).select(["id", "tokens"]))
    with pytest.raises(OSError, match="no such object"):
        arrowfeed.open(f"s3://{bucket}/pytest-{os.getpid()}/absent.parquet")


def _upload(path, url):
    """Uploads with pyarrow's own S3 filesystem, as a user's other tools would."""
    import pyarrow.fs
    scheme, host = os.environ["ARROWFEED_TEST_S3_ENDPOINT"].split("://", 1)
    fs = pyarrow.fs.S3FileSystem(access_key=os.environ["AWS_ACCESS_KEY_ID"],
                                 secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                                 endpoint_override=host, scheme=scheme, region="us-east-1")
    with open(path, "rb") as src, fs.open_output_stream(url[len("s3://"):]) as dst:
        dst.write(src.read())
