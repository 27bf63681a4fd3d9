"""Type stubs of the arrowfeed package."""

import os
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import pyarrow

PathOrUrl = Union[str, "os.PathLike[str]"]

__version__: str

class ArrowfeedError(Exception): ...

class Reader:
    """Batches of one or more files; an Arrow stream (``__arrow_c_stream__``)."""

    @property
    def schema(self) -> pyarrow.Schema: ...
    def __iter__(self) -> Iterator[pyarrow.RecordBatch]: ...
    def __next__(self) -> pyarrow.RecordBatch: ...
    def __arrow_c_stream__(self, requested_schema: Optional[object] = None) -> object: ...
    def __arrow_c_schema__(self) -> object: ...

def open(
    path_or_url: Union[PathOrUrl, Sequence[PathOrUrl]],
    columns: Optional[Sequence[str]] = None,
    batch_size: Optional[int] = None,
    memory_budget: Optional[int] = None,
) -> Reader: ...

def write_store(
    data: Any,
    path_or_url: PathOrUrl,
    shard_bytes: int = ...,
    batch_rows: int = 8192,
    overwrite: bool = False,
) -> Tuple[int, int, int]: ...

class Store:
    def __init__(
        self,
        path_or_url: PathOrUrl,
        cache_dir: Optional[PathOrUrl] = None,
        cache_limit: Optional[int] = None,
    ) -> None: ...
    def __len__(self) -> int: ...
    @property
    def schema(self) -> pyarrow.Schema: ...
    @property
    def num_shards(self) -> int: ...
    @property
    def column_names(self) -> List[str]: ...
    def __getitem__(self, key: Union[int, slice, Sequence[int]]) -> Any: ...
    def __getitems__(self, indices: Sequence[int]) -> List[Dict[str, Any]]: ...
    def take(self, indices: Sequence[int], columns: Optional[Sequence[str]] = None) -> pyarrow.RecordBatch: ...
    def verify(self) -> Tuple[int, List[Tuple[str, str]]]: ...

class Loader:
    def __init__(
        self,
        path_or_url: PathOrUrl,
        batch_size: int = 256,
        shuffle: str = "global",
        seed: int = 0,
        rank: Optional[int] = None,
        world_size: Optional[int] = None,
        workers: int = 2,
        columns: Optional[Sequence[str]] = None,
        drop_last: bool = False,
        format: str = "arrow",
        window: int = 4,
        pad: bool = False,
        cache_dir: Optional[PathOrUrl] = None,
        cache_limit: Optional[int] = None,
    ) -> None: ...
    def __len__(self) -> int: ...
    @property
    def schema(self) -> pyarrow.Schema: ...
    def set_epoch(self, epoch: int) -> None: ...
    def state_dict(self) -> Dict[str, Any]: ...
    def load_state_dict(self, state: Dict[str, Any]) -> None: ...
    def __iter__(self) -> Iterator[Any]: ...
