//! `_Store` (a shard store's random access) and `_Loader` / `_Epoch` (the Loader), reopened in
//! a process other than the one that made them (after `fork`), never used across it.

use std::path::PathBuf;
use std::sync::Arc;

use arrow_schema::SchemaRef;
use arrowfeed::prefetch::{Loader as RustLoader, Remainder, Shuffle};
use arrowfeed::shard_store::{CacheOptions, OpenOptions, ShardStore};
use arrowfeed::traits::RandomAccess;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::capsule::{schema_to_pyarrow, to_pyarrow};
use crate::errors::IntoPy;
use crate::reader::{Batches, next_pyarrow, spawn_reader};

type Item = Result<arrow_array::RecordBatch, arrow_schema::ArrowError>;

/// Where a store is and how to open it: enough to open it again in another process.
#[derive(Clone)]
struct StoreSpec {
    path: PathBuf,
    cache_dir: Option<PathBuf>,
    cache_limit: Option<u64>,
}

impl StoreSpec {
    fn open(&self, py: Python<'_>) -> PyResult<ShardStore> {
        let mut cache = CacheOptions::default();
        cache.dir = self.cache_dir.clone();
        cache.limit = self.cache_limit;
        let path = self.path.clone();
        py.detach(|| arrowfeed::store_with(&path, OpenOptions::default(), &cache))
            .py_err()
    }
}

/// A store opened in a given process.
struct Opened {
    pid: u32,
    store: Arc<ShardStore>,
}

/// A shard store or Hugging Face directory, local or remote; see `arrowfeed.Store`.
#[pyclass(module = "arrowfeed._arrowfeed", name = "_Store")]
pub(crate) struct Store {
    spec: StoreSpec,
    opened: Opened,
}

/// Opens the store at `path` (a path or URL).
#[pyfunction]
#[pyo3(signature = (path, cache_dir = None, cache_limit = None))]
pub(crate) fn open_store(
    py: Python<'_>,
    path: PathBuf,
    cache_dir: Option<PathBuf>,
    cache_limit: Option<u64>,
) -> PyResult<Store> {
    let spec = StoreSpec {
        path,
        cache_dir,
        cache_limit,
    };
    let store = Arc::new(spec.open(py)?);
    Ok(Store {
        spec,
        opened: Opened {
            pid: std::process::id(),
            store,
        },
    })
}

impl Store {
    /// The store, reopened first if this is not the process that opened it.
    fn get(&mut self, py: Python<'_>) -> PyResult<Arc<ShardStore>> {
        if self.opened.pid != std::process::id() {
            self.opened = Opened {
                pid: std::process::id(),
                store: Arc::new(self.spec.open(py)?),
            };
        }
        Ok(self.opened.store.clone())
    }
}

#[pymethods]
impl Store {
    fn __len__(&mut self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.get(py)?.num_rows() as usize)
    }

    /// The number of shards.
    #[getter]
    fn num_shards(&mut self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.get(py)?.num_shards())
    }

    /// The schema, as a `pyarrow.Schema`.
    #[getter]
    fn schema<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let schema: SchemaRef = self.get(py)?.schema();
        schema_to_pyarrow(py, schema)
    }

    /// The path or URL.
    #[getter]
    fn path(&self) -> PathBuf {
        self.spec.path.clone()
    }

    /// The cache settings (`cache_dir`, `cache_limit`), for pickling.
    #[getter]
    fn cache(&self) -> (Option<PathBuf>, Option<u64>) {
        (self.spec.cache_dir.clone(), self.spec.cache_limit)
    }

    /// Rows `indices` (in this order, duplicates allowed) as a `pyarrow.RecordBatch`.
    #[pyo3(signature = (indices, columns = None))]
    fn take<'py>(
        &mut self,
        py: Python<'py>,
        indices: Vec<u64>,
        columns: Option<Vec<usize>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = self.get(py)?;
        let batch = py
            .detach(|| store.take(&indices, columns.as_deref()))
            .py_err()?;
        to_pyarrow(py, batch)
    }

    /// Rows `offset..offset + length` as a `pyarrow.RecordBatch`.
    #[pyo3(signature = (offset, length, columns = None))]
    fn slice<'py>(
        &mut self,
        py: Python<'py>,
        offset: u64,
        length: u64,
        columns: Option<Vec<usize>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let store = self.get(py)?;
        let batch = py
            .detach(|| store.slice(offset, length, columns.as_deref()))
            .py_err()?;
        to_pyarrow(py, batch)
    }

    /// Every shard's checksum checked: `(shards checked, [(shard, problem), ...])`.
    fn verify(&mut self, py: Python<'_>) -> PyResult<(usize, Vec<(String, String)>)> {
        let store = self.get(py)?;
        let report = py.detach(|| store.verify()).py_err()?;
        let bad = report
            .bad
            .into_iter()
            .map(|b| (b.file, b.problem.to_string()));
        Ok((report.checked, bad.collect()))
    }
}

/// Writes `data` (anything with `__arrow_c_stream__`: a pyarrow Table or RecordBatchReader, an
/// arrowfeed reader) as a shard store at `path` (a path or URL); returns (rows, shards, bytes).
#[pyfunction]
#[pyo3(signature = (data, path, shard_bytes = 256 << 20, batch_rows = 8192, overwrite = false))]
pub(crate) fn write_store(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    path: PathBuf,
    shard_bytes: u64,
    batch_rows: usize,
    overwrite: bool,
) -> PyResult<(u64, usize, u64)> {
    let capsule = data
        .call_method0("__arrow_c_stream__")
        .map_err(|_| {
            pyo3::exceptions::PyTypeError::new_err(
                "write_store takes an Arrow stream (a pyarrow Table or RecordBatchReader, or anything with __arrow_c_stream__)",
            )
        })?;
    let reader = crate::capsule::import_stream(&capsule)?;
    let writer = arrowfeed::shard_store::StoreWriter::new()
        .shard_bytes(shard_bytes)
        .batch_rows(batch_rows)
        .overwrite(overwrite);
    let m = py
        .detach(|| arrowfeed::write_store(&path, reader, &writer, |_| {}))
        .py_err()?;
    Ok((
        m.rows(),
        m.shards.len(),
        m.shards.iter().map(|s| s.bytes).sum(),
    ))
}

/// The Loader's settings, as Python passes them: enough to build it again in another process.
#[derive(Clone)]
struct LoaderSpec {
    store: StoreSpec,
    batch_size: usize,
    shuffle: Shuffle,
    seed: u64,
    rank: u64,
    world_size: u64,
    workers: usize,
    columns: Option<Vec<usize>>,
    drop_last: bool,
    pad: bool,
}

impl LoaderSpec {
    fn build(&self, py: Python<'_>) -> PyResult<(Arc<ShardStore>, RustLoader)> {
        let store = Arc::new(self.store.open(py)?);
        let mut b = RustLoader::builder(store.clone())
            .batch_size(self.batch_size)
            .shuffle(self.shuffle)
            .seed(self.seed)
            .rank(self.rank, self.world_size)
            .workers(self.workers)
            .drop_last(self.drop_last)
            .remainder(if self.pad {
                Remainder::Pad
            } else {
                Remainder::Drop
            });
        if let Some(c) = &self.columns {
            b = b.projection(c.clone());
        }
        Ok((store, b.build().py_err()?))
    }
}

/// The Loader over a store; see `arrowfeed.Loader`.
#[pyclass(module = "arrowfeed._arrowfeed", name = "_Loader")]
pub(crate) struct Loader {
    spec: LoaderSpec,
    pid: u32,
    store: Arc<ShardStore>,
    loader: RustLoader,
}

#[pymethods]
impl Loader {
    #[new]
    #[pyo3(signature = (path, batch_size, shuffle, window, seed, rank, world_size, workers, columns, drop_last, pad, cache_dir = None, cache_limit = None))]
    #[allow(clippy::too_many_arguments, reason = "one argument per Loader setting")]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        batch_size: usize,
        shuffle: &str,
        window: usize,
        seed: u64,
        rank: u64,
        world_size: u64,
        workers: usize,
        columns: Option<Vec<usize>>,
        drop_last: bool,
        pad: bool,
        cache_dir: Option<PathBuf>,
        cache_limit: Option<u64>,
    ) -> PyResult<Self> {
        let shuffle = match shuffle {
            "global" => Shuffle::Global,
            "local" => Shuffle::Local { window },
            "none" => Shuffle::None,
            other => {
                return Err(PyValueError::new_err(format!(
                    "shuffle must be 'global', 'local' or 'none', not {other:?}"
                )));
            }
        };
        let spec = LoaderSpec {
            store: StoreSpec {
                path,
                cache_dir,
                cache_limit,
            },
            batch_size,
            shuffle,
            seed,
            rank,
            world_size,
            workers,
            columns,
            drop_last,
            pad,
        };
        let (store, loader) = spec.build(py)?;
        Ok(Self {
            spec,
            pid: std::process::id(),
            store,
            loader,
        })
    }

    /// Batches this rank gets per epoch.
    fn __len__(&mut self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.current(py)?.batches_per_epoch() as usize)
    }

    /// The schema of every batch, as a `pyarrow.Schema`.
    #[getter]
    fn schema<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let schema = self.current(py)?.schema();
        schema_to_pyarrow(py, schema)
    }

    /// Rows of the dataset.
    #[getter]
    fn num_rows(&mut self, py: Python<'_>) -> PyResult<u64> {
        self.current(py)?;
        Ok(self.store.num_rows())
    }

    /// The printed state (`arrowfeed-loader/v2:…`) after `position` batches of `epoch` from
    /// position `start` of the epoch's order.
    fn state(&mut self, py: Python<'_>, epoch: u64, start: u64, position: u64) -> PyResult<String> {
        let mut state = self.current(py)?.state(epoch, position);
        state.start = start;
        Ok(state.to_string())
    }

    /// A printed state as `(epoch, start, position)` of this loader (elastic resume when it
    /// was taken on another world size); a ValueError naming the setting that differs.
    fn rebase(&mut self, py: Python<'_>, state: &str) -> PyResult<(u64, u64, u64)> {
        let loader = self.current(py)?;
        let state = state.parse().and_then(|s| loader.rebase(s)).py_err()?;
        Ok((state.epoch, state.start, state.position))
    }

    /// The batches of `epoch` from batch `position` after `start` on, taking every `stride`-th
    /// from `position + offset` (a DataLoader worker's share: only those are gathered).
    #[pyo3(signature = (epoch, start = 0, position = 0, offset = 0, stride = 1))]
    fn epoch(
        &mut self,
        py: Python<'_>,
        epoch: u64,
        start: u64,
        position: u64,
        offset: u64,
        stride: u64,
    ) -> PyResult<Epoch> {
        let loader = self.current(py)?.clone();
        let mut state = loader.state(epoch, position);
        state.start = start;
        let iter = py
            .detach(|| loader.resume_share(state, offset, stride))
            .py_err()?;
        let strided: Box<dyn Iterator<Item = Item> + Send> = Box::new(iter);
        let rx = spawn_reader(strided, "arrowfeed-loader")?;
        Ok(Epoch { rx: Some(rx) })
    }
}

impl Loader {
    /// The Loader, built again first if this is not the process that built it.
    fn current(&mut self, py: Python<'_>) -> PyResult<&RustLoader> {
        if self.pid != std::process::id() {
            let (store, loader) = self.spec.build(py)?;
            self.store = store;
            self.loader = loader;
            self.pid = std::process::id();
        }
        Ok(&self.loader)
    }
}

/// One epoch's batches, in order.
#[pyclass(module = "arrowfeed._arrowfeed", name = "_Epoch")]
pub(crate) struct Epoch {
    rx: Option<Batches>,
}

#[pymethods]
impl Epoch {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        next_pyarrow(py, &mut self.rx)
    }
}
