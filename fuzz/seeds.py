"""Writes the fuzz targets' seed corpora: small valid inputs of every kind each target reads.

    python fuzz/seeds.py ARROWFEED_CLI OUT_DIR      (cargo xtask fuzz-seeds runs it)

pyarrow writes the Parquet and IPC files, Hugging Face `datasets` the save_to_disk directory,
and the arrowfeed CLI the shard stores. The committed seeds in fuzz/seeds came from this."""
import json, os, shutil, struct, subprocess, sys, tempfile
import pyarrow as pa, pyarrow.ipc as ipc, pyarrow.parquet as pq

cli, out = sys.argv[1], sys.argv[2]
n = 40
table = pa.table({
    "id": pa.array(range(n), pa.int64()),
    "f": pa.array([i * 0.5 for i in range(n)], pa.float32()),
    "s": pa.array([("x" * (i % 13)) if i % 7 else None for i in range(n)]),
    "d": pa.array([["a", "bb", "ccc"][i % 3] for i in range(n)]).dictionary_encode(),
    "l": pa.array([list(range(i % 5)) for i in range(n)], pa.list_(pa.int32())),
    "st": pa.array([{"a": i, "b": str(i)} for i in range(n)]),
    "b": pa.array([i % 3 == 0 for i in range(n)]),
    "ts": pa.array(range(n), pa.timestamp("ms")),
    "dec": pa.array(range(n), pa.decimal128(10, 2)),
    "ll": pa.array([[[i]] * (i % 3) for i in range(n)], pa.list_(pa.list_(pa.int64()))),
})
narrow = table.select(["id", "s", "l"])


def put(kind, name, data):
    os.makedirs(os.path.join(out, kind), exist_ok=True)
    with open(os.path.join(out, kind, name), "wb") as f:
        f.write(data)


def pack(meta, shard):
    return struct.pack("<H", len(meta)) + meta + shard


with tempfile.TemporaryDirectory() as tmp:
    for comp in ["snappy", "zstd", "none", "gzip", "lz4", "brotli"]:
        for v2 in [False, True]:
            p = os.path.join(tmp, "t.parquet")
            pq.write_table(table, p, compression=comp, row_group_size=15, data_page_size=128,
                           data_page_version="2.0" if v2 else "1.0")
            put("parquet", f"{comp}-v{2 if v2 else 1}.parquet", open(p, "rb").read())
    p = os.path.join(tmp, "plain.parquet")
    pq.write_table(table, p, use_dictionary=False, compression="snappy", row_group_size=20)
    put("parquet", "plain-snappy.parquet", open(p, "rb").read())

    for comp in [None, "lz4", "zstd"]:
        for kind, new in [("file", ipc.new_file), ("stream", ipc.new_stream)]:
            sink = pa.BufferOutputStream()
            with new(sink, table.schema, options=ipc.IpcWriteOptions(compression=comp)) as w:
                for b in table.to_batches(max_chunksize=15):
                    w.write_batch(b)
            put("ipc", f"{kind}-{comp or 'none'}.arrow", sink.getvalue().to_pybytes())

    for name, data in [
        ("text", b"the quick brown fox jumps over the lazy dog " * 20),
        ("runs", bytes(300) + b"\x01" * 300 + bytes(range(256))),
        ("mixed", bytes((i * 7919) % 251 for i in range(700)) + b"abcd" * 100),
    ]:
        small = pa.compress(data[:90], "snappy", asbytes=True)
        big = pa.compress(data, "snappy", asbytes=True)
        put("snappy", name, bytes([len(small)]) + small + big)

    src = os.path.join(tmp, "narrow.parquet")
    pq.write_table(narrow, src)
    for comp in ["none", "lz4", "zstd"]:
        store = os.path.join(tmp, f"s-{comp}")
        subprocess.run([cli, "convert", src, "--out", store, "--compression", comp],
                       check=True, capture_output=True)
        manifest = json.load(open(os.path.join(store, "manifest.json")))
        (shard,) = manifest["shards"]
        data = open(os.path.join(store, shard["file"]), "rb").read()
        shard["file"] = "shard-00000.arrow"
        put("store", f"{comp}", pack(json.dumps(manifest).encode(), data))

    import datasets
    hf = os.path.join(tmp, "hf")
    datasets.Dataset.from_dict(narrow.to_pydict()).save_to_disk(hf)
    shards = json.load(open(os.path.join(hf, "state.json")))["_data_files"]
    assert [s["filename"] for s in shards] == ["data-00000-of-00001.arrow"], shards
    put("hf_store", "narrow", pack(open(os.path.join(hf, "state.json"), "rb").read(),
                                  open(os.path.join(hf, shards[0]["filename"]), "rb").read()))

states = {
    "first": "seed=0,epoch=0,position=0,start=0,batch_size=1,drop_last=0,shuffle=none,"
             "remainder=drop,rank=0,world_size=1,dataset=0000000000000000",
    "mid": "seed=42,epoch=3,position=17,start=96,batch_size=32,drop_last=1,shuffle=global,"
           "remainder=pad,rank=2,world_size=4,dataset=9e3779b97f4a7c15",
    "local": "seed=18446744073709551615,epoch=1,position=5,start=0,batch_size=64,drop_last=0,"
             "shuffle=local-4096,remainder=drop,rank=1,world_size=8,dataset=ffffffffffffffff",
}
for name, body in states.items():
    put("loader_state", name, f"arrowfeed-loader/v2:{body}".encode())
