#!/usr/bin/env python3
"""Interop check: files of every Arrow type pyarrow can write, through the arrowfeed CLI.

For each table in the matrix (nested, dictionary, temporal, decimal, view types, zero rows, no
batches, unicode column names, 500 columns) and each format pyarrow can write it to (Parquet,
IPC file, IPC stream), checks that:
  - `arrowfeed info --json` reports the format, rows and columns;
  - `arrowfeed cat` prints it (jsonl, csv where flat, table);
  - a Hugging Face `save_to_disk` directory opens with `info`, `take` and `convert`;
  - `arrowfeed convert` to .arrow / .arrows / .parquet gives a file pyarrow reads back equal to
    what it reads from the input (or a one-line error, exit 1, when the target format cannot
    hold a type);
and that bad inputs exit 1 with `error: <path>: ...` and usage errors exit 2.

With an S3 server in the environment (ARROWFEED_TEST_S3_ENDPOINT, ARROWFEED_TEST_S3_BUCKET and
the AWS_* credentials, as `cargo xtask ci` sets them), every file is also uploaded with pyarrow's
own S3 filesystem and read back through the CLI by URL: `info` agrees with the local file and a
conversion of the URL equals the conversion of the path; and a conversion written to an s3://
URL is read back by pyarrow from the server. ARROWFEED_REQUIRE_S3=1 makes a missing server a
failure.

Usage: interop.py PATH-TO-ARROWFEED-BINARY
"""
import decimal
import json
import os
import subprocess
import sys
import tempfile

# Hugging Face datasets must not reach for the network, nor write outside the temporary area.
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HOME", os.path.join(tempfile.gettempdir(), "arrowfeed-interop-hf"))

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

BIN = sys.argv[1]
N = 37
failures = []
checked = 0


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg, file=sys.stderr)


def cli(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True)


def tables():
    i = list(range(N))
    maybe = lambda f: [None if k % 5 == 3 else f(k) for k in i]  # noqa: E731
    yield "primitives", pa.table({
        "i8": pa.array(maybe(lambda k: k - 20), pa.int8()),
        "i16": pa.array(maybe(lambda k: k * 300), pa.int16()),
        "i32": pa.array(maybe(lambda k: -k), pa.int32()),
        "i64": pa.array(maybe(lambda k: k << 40), pa.int64()),
        "u8": pa.array(maybe(lambda k: k), pa.uint8()),
        "u16": pa.array(maybe(lambda k: k), pa.uint16()),
        "u32": pa.array(maybe(lambda k: k), pa.uint32()),
        "u64": pa.array(maybe(lambda k: k << 50), pa.uint64()),
        "f16": pa.array([None if k % 5 == 3 else float(k) / 4 for k in i], pa.float16()) if hasattr(pa, "float16") else pa.array(i),
        "f32": pa.array(maybe(lambda k: k / 3), pa.float32()),
        "f64": pa.array(maybe(lambda k: k / 7), pa.float64()),
        "b": pa.array(maybe(lambda k: k % 2 == 0), pa.bool_()),
        "nul": pa.nulls(N),
    })
    yield "binary", pa.table({
        "s": pa.array(maybe(lambda k: "x" * (k % 9) + "é"), pa.string()),
        "ls": pa.array(maybe(lambda k: "y" * k), pa.large_string()),
        "bin": pa.array(maybe(lambda k: bytes([k]) * (k % 4)), pa.binary()),
        "lbin": pa.array(maybe(lambda k: b"z" * k), pa.large_binary()),
        "fsb": pa.array(maybe(lambda k: bytes([k, k, k])), pa.binary(3)),
    })
    yield "views", pa.table({
        "sv": pa.array(maybe(lambda k: "long enough to not be inlined " * (k % 3)), pa.string_view()),
        "bv": pa.array(maybe(lambda k: b"q" * k), pa.binary_view()),
    })
    yield "temporal", pa.table({
        "d32": pa.array(maybe(lambda k: k * 100), pa.date32()),
        "d64": pa.array(maybe(lambda k: k * 86_400_000), pa.date64()),
        "t32s": pa.array(maybe(lambda k: k), pa.time32("s")),
        "t32ms": pa.array(maybe(lambda k: k * 1000), pa.time32("ms")),
        "t64us": pa.array(maybe(lambda k: k * 10**6), pa.time64("us")),
        "t64ns": pa.array(maybe(lambda k: k * 10**9), pa.time64("ns")),
        "ts_s": pa.array(maybe(lambda k: k * 10**6), pa.timestamp("s")),
        "ts_ms_tz": pa.array(maybe(lambda k: k * 10**6), pa.timestamp("ms", tz="Europe/Paris")),
        "ts_us_utc": pa.array(maybe(lambda k: k * 10**9), pa.timestamp("us", tz="UTC")),
        "ts_ns": pa.array(maybe(lambda k: k * 10**12), pa.timestamp("ns")),
        "dur_ms": pa.array(maybe(lambda k: k), pa.duration("ms")),
        "dur_ns": pa.array(maybe(lambda k: k), pa.duration("ns")),
    })
    yield "intervals", pa.table({
        "mdn": pa.array(maybe(lambda k: pa.MonthDayNano([k, -k, k * 1000])), pa.month_day_nano_interval()),
    })
    yield "decimal", pa.table({
        "d128": pa.array(maybe(lambda k: decimal.Decimal(k) / 100), pa.decimal128(12, 2)),
        "d256": pa.array(maybe(lambda k: decimal.Decimal(k) * 10**40), pa.decimal256(60, 0)),
    })
    yield "nested", pa.table({
        "list": pa.array(maybe(lambda k: list(range(k % 4))), pa.list_(pa.int32())),
        "llist": pa.array(maybe(lambda k: ["a"] * (k % 3)), pa.large_list(pa.string())),
        "fsl": pa.array(maybe(lambda k: [k, k + 1]), pa.list_(pa.int64(), 2)),
        "struct": pa.array(maybe(lambda k: {"x": k, "y": str(k)}), pa.struct([("x", pa.int64()), ("y", pa.string())])),
        "map": pa.array(maybe(lambda k: [("k%d" % j, j) for j in range(k % 3)]), pa.map_(pa.string(), pa.int32())),
        "deep": pa.array(maybe(lambda k: [{"v": [k, None]}]), pa.list_(pa.struct([("v", pa.list_(pa.int16()))]))),
    })
    yield "dictionary", pa.table({
        "dict_s": pa.array(maybe(lambda k: ["red", "green", "blue"][k % 3])).dictionary_encode(),
        "dict_i": pa.array(maybe(lambda k: k % 4), pa.int64()).dictionary_encode(),
    })
    yield "unicode-names", pa.table({"名前": pa.array(["太郎"] * N), "ñandú 🐦": pa.array(i), "a b,c\"d": pa.array(i)})
    yield "wide-500", pa.table({f"col_{k:03d}": pa.array([k * j for j in range(5)], pa.int32()) for k in range(500)})
    yield "zero-rows", pa.table({"a": pa.array([], pa.int64()), "s": pa.array([], pa.string())})


def write_variants(name, table, d):
    out = []
    # Two batches where there are rows, to exercise multi-batch files.
    batches = table.to_batches(max_chunksize=max(1, (table.num_rows + 1) // 2))
    p = os.path.join(d, f"{name}.arrow")
    with ipc.new_file(p, table.schema) as w:
        for b in batches:
            w.write_batch(b)
    out.append(("arrow-file", p))
    p = os.path.join(d, f"{name}.arrows")
    with ipc.new_stream(p, table.schema) as w:
        for b in batches:
            w.write_batch(b)
    out.append(("arrow-stream", p))
    p = os.path.join(d, f"{name}.zstd.arrow")
    with ipc.new_file(p, table.schema, options=ipc.IpcWriteOptions(compression="zstd")) as w:
        w.write_table(table)
    out.append(("arrow-file", p))
    p = os.path.join(d, f"{name}.lz4.arrows")
    with ipc.new_stream(p, table.schema, options=ipc.IpcWriteOptions(compression="lz4")) as w:
        w.write_table(table)
    out.append(("arrow-stream", p))
    p = os.path.join(d, f"{name}.parquet")
    try:
        pq.write_table(table, p, row_group_size=max(1, table.num_rows // 2 or 1))
        out.append(("parquet", p))
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid) as e:
        print(f"  (pyarrow cannot write {name} to Parquet: {e})", file=sys.stderr)
    return out


def read_any(path):
    with open(path, "rb") as f:
        head = f.read(6)
    if head.startswith(b"PAR1"):
        return pq.read_table(path)
    if head == b"ARROW1":
        return ipc.open_file(path).read_all()
    return ipc.open_stream(path).read_all()


def flat(schema):
    return all(not (pa.types.is_nested(f.type) or pa.types.is_dictionary(f.type) or pa.types.is_binary_view(f.type)
                    or pa.types.is_string_view(f.type) or pa.types.is_interval(f.type)) for f in schema)


def same_column(a, b):
    """Equal type and values; dictionaries compare by their logical values, since two writers
    may order a dictionary differently."""
    if a.type != b.type or len(a) != len(b):
        return False
    if pa.types.is_dictionary(a.type):
        return a.cast(a.type.value_type).equals(b.cast(b.type.value_type))
    return a.equals(b)


def pyarrow_parquet_round_trip(table, d):
    p = os.path.join(d, "pyarrow-own.parquet")
    pq.write_table(table, p)
    return pq.read_table(p)


def check_file(kind, path, d, orig):
    """`orig` is the table pyarrow wrote; `want` what pyarrow reads back from the file.

    Accepted results of a conversion, column by column: what pyarrow reads from the input; the table as
    originally written (arrow-rs restores types from the Arrow schema embedded in Parquet files,
    such as date64 or integer dictionaries, which pyarrow's Parquet reader does not); and, for
    Parquet output, what pyarrow's own Parquet round trip of the input gives (types Parquet cannot
    hold, such as second-resolution times, come back widened for pyarrow too).
    """
    global checked
    want = read_any(path)
    r = cli("info", path, "--json")
    if r.returncode != 0:
        return fail(f"info {path}: exit {r.returncode}: {r.stderr.strip()}")
    info = json.loads(r.stdout)
    if info["format"] != kind or info["rows"] != want.num_rows or [c["name"] for c in info["columns"]] != want.schema.names:
        return fail(f"info {path}: got format={info['format']} rows={info['rows']}, want {kind} {want.num_rows}")
    for fmt in ["jsonl", "table"] + (["csv"] if flat(want.schema) else []):
        r = cli("cat", path, "--format", fmt, "--limit", "5")
        if r.returncode != 0:
            fail(f"cat --format {fmt} {path}: exit {r.returncode}: {r.stderr.strip()}")
    if want.num_rows and want.num_columns > 1:
        cols = ",".join(reversed(want.schema.names[:2]))
        r = cli("cat", path, "--format", "jsonl", "--columns", cols, "--offset", "1", "--limit", "3")
        lines = r.stdout.splitlines()
        if r.returncode != 0 or len(lines) != min(3, want.num_rows - 1) or (lines and list(json.loads(lines[0]).keys()) and
                                                                          not set(json.loads(lines[0]).keys()) <= set(cols.split(","))):
            fail(f"cat --columns {cols} {path}: exit {r.returncode}, {len(lines)} lines: {r.stderr.strip()}")
    for ext in ("arrow", "arrows", "parquet"):
        out = os.path.join(d, "out." + ext)
        r = cli("convert", path, "--out", out)
        if r.returncode != 0:
            err = r.stderr.strip()
            if ext == "parquet" and r.returncode == 1 and err.count("\n") == 0 and err.startswith("error: "):
                print(f"  convert {os.path.basename(path)} -> parquet refused: {err}", file=sys.stderr)
                continue
            fail(f"convert {path} -> {ext}: exit {r.returncode}: {err}")
            continue
        got = read_any(out)
        refs = [want, orig] + ([pyarrow_parquet_round_trip(want, d)] if ext == "parquet" else [])
        ok = got.schema.names == want.schema.names and got.num_rows == want.num_rows and all(
            any(r.num_rows == got.num_rows and same_column(got.column(c), r.column(c)) for r in refs)
            for c in range(got.num_columns))
        if not ok:
            fail(f"convert {path} -> {ext}: pyarrow reads back different data\n  want {want.schema}\n  got  {got.schema}")
        checked += 1
        os.remove(out)


def s3():
    """pyarrow's S3 filesystem on the test server, and the bucket; None when there is none."""
    endpoint = os.environ.get("ARROWFEED_TEST_S3_ENDPOINT")
    bucket = os.environ.get("ARROWFEED_TEST_S3_BUCKET")
    if not endpoint or not bucket:
        if os.environ.get("ARROWFEED_REQUIRE_S3") == "1":
            fail("ARROWFEED_REQUIRE_S3=1 but no S3 server is configured")
        return None
    import pyarrow.fs
    scheme, host = endpoint.split("://", 1)
    fs = pyarrow.fs.S3FileSystem(access_key=os.environ["AWS_ACCESS_KEY_ID"],
                                 secret_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                                 endpoint_override=host, scheme=scheme, region="us-east-1")
    return fs, bucket


S3 = None
remote_checked = 0


def check_remote(kind, path, d, want):
    """The file at `path`, uploaded by pyarrow, read through the CLI by URL."""
    global remote_checked
    fs, bucket = S3
    key = f"{bucket}/interop-{os.getpid()}/{os.path.basename(path)}"
    with open(path, "rb") as src, fs.open_output_stream(key) as dst:
        dst.write(src.read())
    url = "s3://" + key
    local, remote = cli("info", path, "--json"), cli("info", url, "--json")
    if remote.returncode != 0:
        return fail(f"info {url}: exit {remote.returncode}: {remote.stderr.strip()}")
    a, b = json.loads(local.stdout), json.loads(remote.stdout)
    a.pop("path"), b.pop("path")
    if a != b:
        return fail(f"info {url} differs from the local file's:\n  {a}\n  {b}")
    ext = "parquet" if kind == "parquet" else "arrow"
    from_path, from_url = os.path.join(d, "p." + ext), os.path.join(d, "u." + ext)
    r1, r2 = cli("convert", path, "--out", from_path), cli("convert", url, "--out", from_url)
    if r1.returncode != r2.returncode:
        return fail(f"convert {url}: exit {r2.returncode}, the path gave {r1.returncode}: {r2.stderr.strip()}")
    if r1.returncode == 0:
        if not read_any(from_url).equals(read_any(from_path)):
            return fail(f"convert {url}: differs from the conversion of the path")
        os.remove(from_path), os.remove(from_url)
    # And written to the server by the CLI, read back by pyarrow.
    if want.num_rows and kind != "parquet":
        out_key = key + ".out.arrow"
        local_out = os.path.join(d, "local-out.arrow")
        r = cli("convert", path, "--out", "s3://" + out_key)
        if r.returncode != 0:
            return fail(f"convert {path} -> s3://{out_key}: {r.stderr.strip()}")
        cli("convert", path, "--out", local_out)
        with fs.open_input_file(out_key) as f:
            got = ipc.open_file(f).read_all()
        if not got.equals(read_any(local_out)):
            return fail(f"convert {path} -> s3://{out_key}: pyarrow reads back other data than the local conversion")
        os.remove(local_out)
    remote_checked += 1


def check_errors(d):
    bad = os.path.join(d, "bad.parquet")
    with open(bad, "wb") as f:
        f.write(b"PAR1 this is not parquet at all")
    for args in (["info", bad], ["cat", bad], ["convert", bad, "--out", os.path.join(d, "x.arrow")],
                 ["bench", bad, "--mode", "scan"], ["info", d], ["info", os.path.join(d, "missing.arrow")]):
        r = cli(*args)
        lines = r.stderr.strip().splitlines()
        if r.returncode != 1 or len(lines) != 1 or not lines[0].startswith("error: ") or args[1] not in lines[0]:
            fail(f"{args}: want exit 1 and one line naming the file, got exit {r.returncode}: {r.stderr!r}")
    for args in (["info"], ["frobnicate"], ["cat", bad, "--limit", "many"], ["convert", bad, "--out", os.path.join(d, "x"), "--to", "csv"]):
        r = cli(*args)
        if r.returncode != 2:
            fail(f"{args}: usage error should exit 2, got {r.returncode}: {r.stderr.strip()}")


def check_no_batches(d):
    schema = pa.schema([("a", pa.int64()), ("s", pa.string())])
    for name, opener in (("nobatch.arrow", ipc.new_file), ("nobatch.arrows", ipc.new_stream)):
        p = os.path.join(d, name)
        with opener(p, schema):
            pass
        check_file("arrow-file" if name.endswith(".arrow") else "arrow-stream", p, d, schema.empty_table())


def check_huggingface(d):
    """A real `datasets.save_to_disk` directory: info, take and convert through the CLI."""
    global checked
    try:
        import datasets
    except ImportError:
        fail("the datasets package is missing from the interop venv")
        return
    table = dict(tables())["nested"].drop_columns(["map"])
    datasets.disable_progress_bars()
    ds = datasets.Dataset(datasets.table.InMemoryTable(table))
    hf = os.path.join(d, "hf")
    ds.save_to_disk(hf, max_shard_size="2KB")
    r = cli("info", hf, "--json")
    if r.returncode != 0:
        return fail(f"info {hf}: {r.stderr.strip()}")
    info = json.loads(r.stdout)
    if info["format"] != "huggingface-datasets" or info["rows"] != table.num_rows or info["shards"] < 2:
        return fail(f"info {hf}: {info}")
    idx = [5, 0, 5, table.num_rows - 1]
    out = os.path.join(d, "hf-take.arrow")
    r = cli("take", hf, "--indices", ",".join(map(str, idx)), "--out", out)
    if r.returncode != 0:
        return fail(f"take {hf}: {r.stderr.strip()}")
    got = read_any(out)
    want = ds.with_format("arrow")[idx]
    if not got.equals(want):
        return fail(f"take {hf}: rows differ from datasets' own ds[{idx}]")
    checked += 1
    out = os.path.join(d, "hf-all.arrow")
    r = cli("convert", hf, "--out", out)
    if r.returncode != 0 or not read_any(out).equals(table):
        return fail(f"convert {hf}: exit {r.returncode} {r.stderr.strip()}")
    checked += 1
    r = cli("verify", hf)
    if r.returncode != 0:
        fail(f"verify {hf}: {r.stderr.strip()}")


def main():
    global S3
    S3 = s3()
    with tempfile.TemporaryDirectory() as d:
        check_huggingface(d)
        for name, table in tables():
            print(f"interop: {name} ({table.num_rows} rows, {table.num_columns} columns)", file=sys.stderr)
            for kind, path in write_variants(name, table, d):
                check_file(kind, path, d, table)
                if S3:
                    check_remote(kind, path, d, read_any(path))
        check_no_batches(d)
        check_errors(d)
    print(f"interop: {checked} conversions read back equal by pyarrow {pa.__version__}; "
          f"{remote_checked} files read by URL from S3 as from disk; "
          f"{len(failures)} failures", file=sys.stderr)
    print(f"{checked} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
