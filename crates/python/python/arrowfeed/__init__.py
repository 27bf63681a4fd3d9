"""arrowfeed: Arrow data to training loops, fast — Parquet, Arrow IPC and shard stores, local or
in object storage (``s3://``, ``gs://``, ``az://``, ``https://``).

- :func:`open` reads a file (or several) as ``pyarrow.RecordBatch`` es; the reader is an Arrow
  stream, so ``pyarrow.table(reader)``, polars and duckdb take it without a copy.
- :class:`Store` is a map-style dataset over a shard store or a Hugging Face ``save_to_disk``
  directory, like ``datasets.Dataset``: ``len(store)``, ``store[i]``, ``store[a:b]``,
  ``store[[i, j]]``.
- :class:`Loader` gives shuffled, rank-partitioned, resumable training batches; it is an
  iterable, and :class:`arrowfeed.torch.IterableDataset` is the same for PyTorch's
  ``DataLoader``.

Reads, gathers and waits release the GIL. Objects pickle (they reopen their files where they
are unpickled) and are safe to use after ``fork``. Errors are :class:`ArrowfeedError` (and
``OSError``, ``IndexError`` or ``ValueError`` where those fit), one line naming the file.
"""

import os as _os
import sys as _sys

from . import _arrowfeed
from ._errors import ArrowfeedError
from ._errors import IndexError as _IndexError
from ._errors import ValueError as _ValueError
from ._arrowfeed import __version__

__all__ = ["open", "write_store", "Store", "Loader", "Reader", "ArrowfeedError", "__version__"]

#: The reader :func:`open` returns.
Reader = _arrowfeed._Reader

_FORMATS = ("arrow", "numpy", "torch")


def open(path_or_url, columns=None, batch_size=None, memory_budget=None):  # noqa: A001 - like io.open
    """Opens a Parquet, Arrow IPC file or Arrow IPC stream file, by path or URL (or a list of
    them, one schema), and returns a reader of ``pyarrow.RecordBatch`` es.

    The format comes from the file's bytes. ``columns`` picks columns by name, in that order;
    ``batch_size`` sets the rows per batch (Parquet decodes in that size; longer IPC batches are
    split). A remote file is read by ranges, never downloaded first.

    One Parquet or Arrow IPC file is read by the scan engine: reads ahead, decoding on every
    core, holding at most ``memory_budget`` bytes (default 256 MiB) of decoded batches and of
    remote bytes fetched; a local file is memory-mapped, and its pages (page cache) are not
    counted. Several files and IPC streams are read in order on one thread.

    Under a budget below the default, the module's allocator gives freed memory back to the OS
    sooner while the reader is open. The interpreter, pyarrow and memory the allocator keeps
    are outside the count; ``MIMALLOC_ALLOW_THP=0`` in the environment keeps the module's
    memory out of transparent huge pages (at 16 MiB over S3: about 80 instead of 125 MiB for
    the whole process).

    >>> import arrowfeed, pyarrow as pa                              # doctest: +SKIP
    >>> reader = arrowfeed.open("s3://bucket/train.parquet", columns=["text"])
    >>> table = pa.table(reader)                                    # no copy
    """
    paths = [path_or_url] if isinstance(path_or_url, (str, _os.PathLike)) else list(path_or_url)
    if not paths:
        raise _ValueError("arrowfeed.open needs at least one path")
    if memory_budget is not None and memory_budget < 1:
        raise _ValueError(f"memory_budget must be at least 1 byte, not {memory_budget}")
    return _arrowfeed.open_reader([_os.fspath(p) for p in paths], columns, batch_size, memory_budget)


def write_store(data, path_or_url, shard_bytes=256 << 20, batch_rows=8192, overwrite=False):
    """Writes ``data`` — a ``pyarrow.Table`` or ``RecordBatchReader``, an :func:`open` reader, or
    anything with ``__arrow_c_stream__`` — as a shard store at ``path_or_url``, cutting shards of
    about ``shard_bytes`` (a shard ends after the batch that reaches it; batches inside a shard
    hold at most ``batch_rows`` rows). Locally the store appears atomically; in object storage
    the manifest is uploaded last. Returns ``(rows, shards, bytes)``.

    >>> arrowfeed.write_store(arrowfeed.open("train.parquet"), "data/train")   # doctest: +SKIP
    """
    return _arrowfeed.write_store(data, _os.fspath(path_or_url), shard_bytes, batch_rows, overwrite)


def _column_indices(schema, columns):
    if columns is None:
        return None
    names = schema.names
    out = []
    for c in columns:
        if c not in names:
            raise _ValueError(f"no column named {c!r}; the columns are {', '.join(names)}")
        out.append(names.index(c))
    return out


class Store:
    """A shard store (``arrowfeed convert … --out DIR``) or a Hugging Face ``save_to_disk``
    directory, by path or URL, as a map-style dataset.

    ``store[i]`` is a dict of Python values, as ``datasets`` gives for ``ds[i]``;
    ``store[a:b]``, ``store[[i, j, …]]`` and ``store.take(indices)`` are
    ``pyarrow.RecordBatch`` es; ``__getitems__`` is PyTorch's batched fetch. A remote store
    streams its shards through the local shard cache (``cache_dir``, ``cache_limit`` in bytes;
    default ``$ARROWFEED_CACHE_DIR`` and ``$ARROWFEED_CACHE_LIMIT``).
    """

    def __init__(self, path_or_url, cache_dir=None, cache_limit=None):
        self._path = _os.fspath(path_or_url)
        self._cache = (cache_dir, cache_limit)
        self._inner = _arrowfeed.open_store(self._path, cache_dir, cache_limit)

    def __reduce__(self):
        return (Store, (self._path, *self._cache))

    def __repr__(self):
        return f"Store({self._path!r}, rows={len(self)}, shards={self.num_shards})"

    def __len__(self):
        return self._inner.__len__()

    @property
    def schema(self):
        """The ``pyarrow.Schema`` of every row."""
        return self._inner.schema

    @property
    def num_shards(self):
        """The number of shards."""
        return self._inner.num_shards

    @property
    def column_names(self):
        """The column names, as in ``datasets``."""
        return self.schema.names

    def _index(self, i):
        n = len(self)
        if not isinstance(i, int) and hasattr(i, "__index__"):
            i = i.__index__()
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise _IndexError(f"{self._path}: row index {i} is out of range for {n} rows")
        return i

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step == 1:
                return self._inner.slice(start, max(0, stop - start))
            return self._inner.take(list(range(start, stop, step)))
        if isinstance(key, (list, tuple)) or (hasattr(key, "__array__") and getattr(key, "ndim", 0) == 1):
            return self.take(key)
        if isinstance(key, str):
            raise TypeError(f"{self._path}: select columns with store.take(..., columns=[{key!r}])")
        row = self._inner.slice(self._index(key), 1)
        return {name: col[0].as_py() for name, col in zip(row.schema.names, row.columns)}

    def __getitems__(self, indices):
        """Rows ``indices`` as a list of dicts: PyTorch's batched fetch for map-style datasets."""
        batch = self.take(indices)
        return batch.to_pylist()

    def take(self, indices, columns=None):
        """Rows ``indices`` (in this order, duplicates allowed) as a ``pyarrow.RecordBatch``;
        ``columns`` picks columns by name."""
        rows = [self._index(int(i)) for i in indices]
        return self._inner.take(rows, _column_indices(self.schema, columns))

    def verify(self):
        """Checks every shard's checksum; returns ``(shards checked, [(shard, problem), ...])``."""
        return self._inner.verify()


def _default_rank():
    """``torch.distributed``'s rank and world size when it is initialised, else ``RANK`` and
    ``WORLD_SIZE`` from the environment, else 0 and 1. torch is not imported for this."""
    dist = _sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if "RANK" in _os.environ and "WORLD_SIZE" in _os.environ:
        return int(_os.environ["RANK"]), int(_os.environ["WORLD_SIZE"])
    return 0, 1


def _worker():
    """(id, count) of the PyTorch DataLoader worker this runs in, or (0, 1)."""
    data = _sys.modules.get("torch.utils.data")
    info = data.get_worker_info() if data is not None else None
    return (info.id, info.num_workers) if info is not None else (0, 1)


class Loader:
    """Shuffled, rank-partitioned, resumable batches of a shard store (or Hugging Face
    directory), by path or URL.

    Each epoch is an exact permutation (``shuffle="global"``), a locality-aware one
    (``"local"``: shuffled shards, rows shuffled within windows of ``window`` shards — the
    choice for a remote store larger than its cache) or the storage order (``"none"``),
    seeded and different every epoch. Rank ``r`` of ``world_size`` gets disjoint rows and the
    same number of batches as every other rank (``len(loader)``). ``workers`` threads gather
    batches ahead; the order does not depend on them.

    Iterating yields ``pyarrow.RecordBatch`` es (``format="arrow"``), dicts of numpy arrays
    (``"numpy"``: fixed-width columns without nulls are not copied) or dicts of torch tensors
    (``"torch"``). ``set_epoch(e)`` picks the epoch; ``state_dict()`` and
    ``load_state_dict()`` resume exactly mid-epoch, in a new process too, and on another
    number of ranks (elastic resume: the new ranks share out the rest of the epoch).
    """

    def __init__(self, path_or_url, batch_size=256, shuffle="global", seed=0, rank=None,
                 world_size=None, workers=2, columns=None, drop_last=False, format="arrow",  # noqa: A002
                 window=4, pad=False, cache_dir=None, cache_limit=None):
        if format not in _FORMATS:
            raise _ValueError(f"format must be one of {', '.join(map(repr, _FORMATS))}, not {format!r}")
        if (rank is None) != (world_size is None):
            raise _ValueError("give rank and world_size together, or neither")
        if rank is None:
            rank, world_size = _default_rank()
        self._args = dict(path_or_url=_os.fspath(path_or_url), batch_size=batch_size,
                          shuffle=shuffle, seed=seed, rank=rank, world_size=world_size,
                          workers=workers, columns=columns, drop_last=drop_last, format=format,
                          window=window, pad=pad, cache_dir=cache_dir, cache_limit=cache_limit)
        self._columns = columns
        self._format = format
        self._epoch = 0
        self._start = 0
        self._position = 0
        self._inner = None
        self._open()

    def _open(self):
        a = self._args
        store = _arrowfeed.open_store(a["path_or_url"], a["cache_dir"], a["cache_limit"])
        projection = _column_indices(store.schema, a["columns"])
        self._inner = _arrowfeed._Loader(
            a["path_or_url"], a["batch_size"], a["shuffle"], a["window"], a["seed"], a["rank"],
            a["world_size"], a["workers"], projection, a["drop_last"], a["pad"],
            a["cache_dir"], a["cache_limit"])

    def __reduce__(self):
        return (_rebuild, (type(self), self._args, self.state_dict()))

    def __repr__(self):
        a = self._args
        return (f"Loader({a['path_or_url']!r}, batch_size={a['batch_size']}, shuffle={a['shuffle']!r}, "
                f"seed={a['seed']}, rank={a['rank']}, world_size={a['world_size']}, epoch={self._epoch})")

    def __len__(self):
        """Batches this rank gets per epoch."""
        return self._inner.__len__()

    @property
    def schema(self):
        """The ``pyarrow.Schema`` of every batch."""
        return self._inner.schema

    def set_epoch(self, epoch):
        """Uses epoch ``epoch`` from the next iteration on (each epoch has its own order)."""
        self._epoch = int(epoch)
        self._start = 0
        self._position = 0

    def state_dict(self):
        """Where the epoch stands: a small dict that :meth:`load_state_dict` takes, in this
        process or another, also on another number of ranks. ``"state"`` is the whole of it
        (seed, epoch, position, batch size, shuffle, remainder, rank, world size and the
        dataset's fingerprint); the other keys repeat parts of it for reading. It counts the
        batches this object has yielded; with a PyTorch ``DataLoader`` of several workers, pass
        ``{"epoch": e, "position": steps}`` instead, ``steps`` being the batches the training
        loop has taken since the epoch began (the order is the same)."""
        return {"format": "arrowfeed-loader", "version": 2,
                "state": self._inner.state(self._epoch, self._start, self._position),
                "epoch": self._epoch, "position": self._position, "seed": self._args["seed"],
                "batch_size": self._args["batch_size"], "shuffle": self._args["shuffle"],
                "rank": self._args["rank"], "world_size": self._args["world_size"]}

    def load_state_dict(self, state):
        """Continues from ``state`` (from :meth:`state_dict`): the next iteration yields exactly
        the batches not yet delivered when it was taken. A state taken with another seed,
        batch size, shuffle, remainder policy or dataset is a ``ValueError`` naming it; one
        taken on another world size continues the epoch (every rank must have delivered the
        same number of batches, as in synchronous data-parallel training)."""
        if "state" in state:
            self._epoch, self._start, self._position = self._inner.rebase(state["state"])
            return
        if "version" in state:
            raise _ValueError(f"a version {state['version']} loader state has no \"state\" entry; "
                              "it cannot be checked against this loader")
        # {"epoch": e, "position": steps}: this loader's own batches since the epoch began.
        epoch, position = int(state["epoch"]), int(state["position"])
        self._epoch, self._start, self._position = self._inner.rebase(
            self._inner.state(epoch, 0, position))

    def __iter__(self):
        worker, workers = _worker()
        epoch = self._inner.epoch(self._epoch, self._start, self._position, worker, workers)
        convert = _converter(self._format)
        for batch in epoch:
            self._position += workers
            yield convert(batch)
        # A finished epoch starts over when iterated again (as PyTorch's samplers do); call
        # set_epoch for the next one.
        self._start = 0
        self._position = 0


def _rebuild(cls, args, state):
    obj = cls.__new__(cls)
    Loader.__init__(obj, **args)
    obj.load_state_dict(state)
    return obj


def _converter(format):  # noqa: A002
    if format == "arrow":
        return lambda batch: batch
    if format == "numpy":
        return _to_numpy
    return _to_torch


def _to_numpy(batch):
    return {name: col.to_numpy(zero_copy_only=False)
            for name, col in zip(batch.schema.names, batch.columns)}


def _to_torch(batch):
    import torch  # only when asked for

    out = {}
    for name, col in zip(batch.schema.names, batch.columns):
        arr = col.to_numpy(zero_copy_only=False)
        if arr.dtype.kind in "biuf":
            # from_numpy shares memory when it can; a read-only buffer (a map) is copied.
            out[name] = torch.from_numpy(arr) if arr.flags.writeable else torch.tensor(arr)
        else:
            out[name] = arr.tolist()
    return out
