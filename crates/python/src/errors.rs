//! arrowfeed errors as Python exceptions: `arrowfeed.ArrowfeedError` and its subclasses that
//! are also `OSError`, `IndexError` and `ValueError` (defined in `arrowfeed/_errors.py`, since
//! an exception with two bases is plainer in Python).

use arrowfeed::Error;
use pyo3::prelude::*;

/// The Python exception for `e`: one line naming the file, of the class that fits.
pub(crate) fn to_py(e: Error) -> PyErr {
    let class = match &e {
        Error::Io { .. } => "IOError",
        Error::IndexOutOfRange { .. } => "IndexError",
        Error::InvalidArgument { .. } => "ValueError",
        Error::Cancelled => "CancelledError",
        _ => "ArrowfeedError",
    };
    let message = e.to_string().replace("invalid argument: ", "");
    Python::attach(|py| match raise(py, class, &message) {
        Ok(err) => err,
        Err(err) => err,
    })
}

fn raise(py: Python<'_>, class: &str, message: &str) -> PyResult<PyErr> {
    let module = py.import("arrowfeed._errors")?;
    let cls = module.getattr(class)?;
    let value = cls.call1((message,))?;
    Ok(PyErr::from_value(value))
}

/// `Result<T, Error>` to `PyResult<T>`.
pub(crate) trait IntoPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPy<T> for arrowfeed::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// An `ArrowError` that carries an arrowfeed error back to it, then to Python.
pub(crate) fn from_arrow(e: arrow_schema::ArrowError) -> PyErr {
    to_py(Error::from_arrow(e))
}
