//! `_Reader`: the batches of a file, local or remote, read on a thread of their own into a
//! small channel, so Python waits for them with the GIL released and Ctrl-C still heard.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::Duration;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use arrowfeed::ReadOptions;
use pyo3::exceptions::{PyRuntimeError, PyStopIteration};
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

use crate::capsule::{schema_to_pyarrow, stream_capsule, to_pyarrow};
use crate::errors::{IntoPy, from_arrow};

/// How long a wait sleeps between checks for a signal (Ctrl-C).
pub(crate) const WAKE: Duration = Duration::from_millis(50);

/// Batches read ahead of Python.
const AHEAD: usize = 2;

type Item = Result<RecordBatch, ArrowError>;

/// The receiving end of a reader thread (a mutex so the Python objects holding it are `Sync`;
/// only the thread holding the GIL-protected object ever locks it).
pub(crate) type Batches = Mutex<Receiver<Item>>;

/// Moves `reader` onto a thread of its own that sends its batches into a channel of
/// [`AHEAD`]; the thread stops when the receiver is dropped.
pub(crate) fn spawn_reader(
    reader: Box<dyn Iterator<Item = Item> + Send>,
    thread_name: &str,
) -> PyResult<Batches> {
    let (tx, rx): (SyncSender<Item>, Receiver<Item>) = sync_channel(AHEAD);
    arrowfeed::traits::spawn_thread(thread_name.into(), move || {
        for item in reader {
            let end = item.is_err();
            if tx.send(item).is_err() || end {
                break;
            }
        }
    })
    .py_err()?;
    Ok(Mutex::new(rx))
}

/// The next item of `rx`, waiting with the GIL released and checking for signals every
/// [`WAKE`]; `None` at the end.
pub(crate) fn next_item(py: Python<'_>, rx: &Batches) -> PyResult<Option<RecordBatch>> {
    loop {
        let got = py.detach(|| {
            rx.lock()
                .unwrap_or_else(|p| p.into_inner())
                .recv_timeout(WAKE)
        });
        match got {
            Ok(Ok(batch)) => return Ok(Some(batch)),
            Ok(Err(e)) => return Err(from_arrow(e)),
            Err(RecvTimeoutError::Disconnected) => return Ok(None),
            Err(RecvTimeoutError::Timeout) => py.check_signals()?,
        }
    }
}

/// `__next__` of an object holding `rx`: the next batch as a `pyarrow.RecordBatch`,
/// `StopIteration` at the end; after the end or an error the channel is dropped (its thread
/// stops), and every later call is a `StopIteration`.
pub(crate) fn next_pyarrow<'py>(
    py: Python<'py>,
    rx: &mut Option<Batches>,
) -> PyResult<Bound<'py, PyAny>> {
    let Some(batches) = rx.as_ref() else {
        return Err(PyStopIteration::new_err(()));
    };
    match next_item(py, batches) {
        Ok(Some(b)) => to_pyarrow(py, b),
        Ok(None) => {
            *rx = None;
            Err(PyStopIteration::new_err(()))
        }
        Err(e) => {
            *rx = None;
            Err(e)
        }
    }
}

/// The rest of a channel as a `RecordBatchReader`, for the C stream export.
struct ChannelReader {
    schema: SchemaRef,
    rx: Receiver<Item>,
}

impl Iterator for ChannelReader {
    type Item = Item;
    fn next(&mut self) -> Option<Item> {
        self.rx.recv().ok()
    }
}

impl RecordBatchReader for ChannelReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// The batches of one or more files, in order; see `arrowfeed.open`.
#[pyclass(module = "arrowfeed._arrowfeed", name = "_Reader")]
pub(crate) struct Reader {
    schema: SchemaRef,
    rx: Option<Batches>,
    /// Keeps the module's allocator fitted to the budget while this reader is open.
    _budget: crate::allocator::BudgetHold,
}

/// Opens `paths` (paths or URLs, one schema) for reading `columns` in batches of `batch_size`:
/// one Parquet or IPC file on the scan engine within `memory_budget` bytes, anything else in
/// order on one thread.
#[pyfunction]
#[pyo3(signature = (paths, columns = None, batch_size = None, memory_budget = None))]
pub(crate) fn open_reader(
    py: Python<'_>,
    paths: Vec<PathBuf>,
    columns: Option<Vec<String>>,
    batch_size: Option<usize>,
    memory_budget: Option<usize>,
) -> PyResult<Reader> {
    if batch_size == Some(0) {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "batch_size must be at least 1",
        ));
    }
    let mut options = ReadOptions::default();
    options.columns = columns;
    options.batch_size = batch_size;
    let default = arrowfeed::decode_sched::DEFAULT_MEMORY_BUDGET;
    let budget = memory_budget.unwrap_or(default);
    let hold = crate::allocator::BudgetHold::new(budget, default);
    let reader = py
        .detach(
            || -> arrowfeed::Result<(SchemaRef, Box<dyn Iterator<Item = Item> + Send>)> {
                if let [path] = &paths[..]
                    && (path.is_file() || path.to_str().is_some_and(arrowfeed::is_url))
                {
                    match arrowfeed::scan(path, &options) {
                        Ok(scan) => {
                            let reader = scan.memory_budget(budget).reader()?;
                            return Ok((reader.schema(), Box::new(reader)));
                        }
                        // An IPC stream (no footer to plan from) is read in order below.
                        Err(arrowfeed::Error::InvalidArgument { .. }) => {}
                        Err(e) => return Err(e),
                    }
                }
                let source = arrowfeed::open_many(&paths, &options)?;
                Ok((source.schema(), Box::new(source)))
            },
        )
        .py_err()?;
    let (schema, batches) = reader;
    let rx = spawn_reader(batches, "arrowfeed-reader")?;
    Ok(Reader {
        schema,
        rx: Some(rx),
        _budget: hold,
    })
}

#[pymethods]
impl Reader {
    /// The schema of every batch, as a `pyarrow.Schema`.
    #[getter]
    fn schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        schema_to_pyarrow(py, self.schema.clone())
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        next_pyarrow(py, &mut self.rx)
    }

    /// The batches not read yet, as an `arrow_array_stream` capsule (the Arrow PyCapsule
    /// interface): `pyarrow.table(reader)`, polars and duckdb read them without a copy. The
    /// reader is consumed.
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_stream__<'py>(
        &mut self,
        py: Python<'py>,
        requested_schema: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let rx = self
            .rx
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("the reader was consumed already"))?;
        stream_capsule(
            py,
            Box::new(ChannelReader {
                schema: self.schema.clone(),
                rx: rx.into_inner().unwrap_or_else(|p| p.into_inner()),
            }),
        )
    }

    /// The schema as an `arrow_schema` capsule.
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        crate::capsule::schema_capsule(py, &self.schema)
    }
}
