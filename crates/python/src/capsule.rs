//! The Arrow PyCapsule interface: batches, schemas and streams handed to Python as capsules of
//! arrow-rs's C data interface structs, which pyarrow (and polars, duckdb) import without a
//! copy.

use arrow_array::ffi::{FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{Array, RecordBatch, RecordBatchReader, StructArray};
use arrow_schema::SchemaRef;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyTuple};

fn ffi_err(e: arrow_schema::ArrowError) -> PyErr {
    crate::errors::from_arrow(e)
}

/// An `arrow_schema` capsule of `schema`.
pub(crate) fn schema_capsule<'py>(
    py: Python<'py>,
    schema: &arrow_schema::Schema,
) -> PyResult<Bound<'py, PyCapsule>> {
    let ffi = FFI_ArrowSchema::try_from(schema).map_err(ffi_err)?;
    PyCapsule::new_with_value(py, ffi, c"arrow_schema")
}

/// One record batch, as an object with `__arrow_c_array__`: what `pyarrow.record_batch`
/// imports.
#[pyclass(module = "arrowfeed._arrowfeed", name = "_Batch", frozen)]
pub(crate) struct Batch {
    batch: RecordBatch,
}

#[pymethods]
impl Batch {
    /// The batch as (schema, array) capsules of the Arrow C data interface. A requested
    /// schema is ignored, as the protocol allows: the batch is exported as it is.
    #[pyo3(signature = (requested_schema = None))]
    fn __arrow_c_array__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let _ = requested_schema;
        let array = StructArray::from(self.batch.clone());
        let schema = schema_capsule(py, self.batch.schema().as_ref())?;
        let ffi_array = FFI_ArrowArray::new(&array.to_data());
        let array = PyCapsule::new_with_value(py, ffi_array, c"arrow_array")?;
        PyTuple::new(py, [schema.into_any(), array.into_any()])
    }

    fn __len__(&self) -> usize {
        self.batch.num_rows()
    }
}

/// A schema, as an object with `__arrow_c_schema__`: what `pyarrow.schema` imports.
#[pyclass(module = "arrowfeed._arrowfeed", name = "_Schema", frozen)]
pub(crate) struct SchemaCapsule {
    schema: SchemaRef,
}

#[pymethods]
impl SchemaCapsule {
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        schema_capsule(py, &self.schema)
    }
}

/// `batch` as a `pyarrow.RecordBatch` (imported without a copy).
pub(crate) fn to_pyarrow(py: Python<'_>, batch: RecordBatch) -> PyResult<Bound<'_, PyAny>> {
    let record_batch = py.import("pyarrow")?.getattr("record_batch")?;
    record_batch.call1((Batch { batch },))
}

/// `schema` as a `pyarrow.Schema`.
pub(crate) fn schema_to_pyarrow(py: Python<'_>, schema: SchemaRef) -> PyResult<Bound<'_, PyAny>> {
    let to_schema = py.import("pyarrow")?.getattr("schema")?;
    to_schema.call1((SchemaCapsule { schema },))
}

/// The stream in an `arrow_array_stream` capsule (from a producer's `__arrow_c_stream__`), as
/// a reader; the capsule's stream is moved out, so the producer's is released once.
pub(crate) fn import_stream(
    capsule: &Bound<'_, PyAny>,
) -> PyResult<arrow_array::ffi_stream::RecordBatchStreamReader> {
    let capsule = capsule.cast::<PyCapsule>().map_err(|_| {
        pyo3::exceptions::PyTypeError::new_err("__arrow_c_stream__ did not return a PyCapsule")
    })?;
    // Checks the name: only an `arrow_array_stream` capsule holds what we read below.
    let ptr = capsule
        .pointer_checked(Some(c"arrow_array_stream"))?
        .cast::<FFI_ArrowArrayStream>();
    // SAFETY: an `arrow_array_stream` capsule holds a valid FFI_ArrowArrayStream (the Arrow
    // PyCapsule interface); `from_raw` moves it out and marks the original released, as the
    // protocol asks of a consumer, so the capsule's own destructor releases nothing twice.
    unsafe { arrow_array::ffi_stream::RecordBatchStreamReader::from_raw(ptr.as_ptr()) }
        .map_err(crate::errors::from_arrow)
}

/// An `arrow_array_stream` capsule that hands `reader`'s batches to its consumer.
pub(crate) fn stream_capsule(
    py: Python<'_>,
    reader: Box<dyn RecordBatchReader + Send>,
) -> PyResult<Bound<'_, PyCapsule>> {
    let stream = FFI_ArrowArrayStream::new(reader);
    PyCapsule::new_with_value(py, stream, c"arrow_array_stream")
}
