//! The `arrowfeed._arrowfeed` extension module: readers, shard stores and the Loader for
//! Python, over the facade. The public API (`arrowfeed.open`, `Store`, `Loader`) is the Python
//! package around it (`python/arrowfeed`); this module holds what must be Rust:
//!
//! | item | what it is |
//! |---|---|
//! | `_Reader` | batches of a file (local or remote), produced on a thread of its own |
//! | `_Store` | a shard store's random access |
//! | `_Loader`, `_Epoch` | the Loader and one epoch's batches |
//! | `_Batch` | one batch, exported through the Arrow PyCapsule interface |
//!
//! Batches cross into Python through the Arrow PyCapsule interface (`__arrow_c_array__`,
//! `__arrow_c_stream__`, `__arrow_c_schema__`), implemented here over arrow-rs's C data
//! interface: pyarrow, polars and duckdb take them without a copy, and the module does not
//! depend on a particular pyo3 pairing of arrow's own `pyarrow` crate. Every read, gather and
//! wait releases the GIL; waits wake every 50 ms to let Ctrl-C through.
//!
//! Nothing made before a `fork` is used after it: every object remembers the process that made
//! it and reopens what it holds (maps, threads, HTTP clients) when called in another.

mod allocator;
mod capsule;
mod errors;
mod reader;
mod store;

use pyo3::prelude::*;

/// Every allocation of this module (the batches it hands to Python among them) comes from
/// mimalloc, which reuses freed memory across threads; Python's own objects keep Python's
/// allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The module.
#[pymodule]
fn _arrowfeed(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Freed memory is kept 10 s before it goes back to the OS, as in the CLI (see
    // `allocator.rs`, which also fits it to small memory budgets).
    allocator::init();
    // A decoder that panics on a damaged file raises ArrowfeedError naming the file, without
    // a panic message on stderr first; other panics report as before.
    arrowfeed::traits::quiet_guarded_panics();
    m.add_class::<capsule::Batch>()?;
    m.add_class::<capsule::SchemaCapsule>()?;
    m.add_class::<reader::Reader>()?;
    m.add_class::<store::Store>()?;
    m.add_class::<store::Loader>()?;
    m.add_class::<store::Epoch>()?;
    m.add_function(wrap_pyfunction!(reader::open_reader, m)?)?;
    m.add_function(wrap_pyfunction!(store::open_store, m)?)?;
    m.add_function(wrap_pyfunction!(store::write_store, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
