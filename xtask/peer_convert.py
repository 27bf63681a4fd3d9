#!/usr/bin/env python3
"""The peer of `arrowfeed convert IN.parquet --out STORE`: pyarrow reads the Parquet file batch by
batch (`ParquetFile.iter_batches`) and writes one Arrow IPC file, fsynced at the end as our store
writer fsyncs its shards.

    python xtask/peer_convert.py IN.parquet OUT.arrow [--no-fsync]
"""
import os
import sys

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        sys.exit(__doc__)
    src, out = args
    pf = pq.ParquetFile(src)
    rows = 0
    with pa.OSFile(out, "wb") as f:
        with ipc.new_file(f, pf.schema_arrow) as w:
            for b in pf.iter_batches(batch_size=8192):
                w.write_batch(b)
                rows += b.num_rows
        if "--no-fsync" not in sys.argv:
            f.flush()
            os.fsync(f.fileno())
    print(f"{rows} rows to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
