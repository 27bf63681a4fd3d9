//! The files the README's examples read, so that those examples run as doc tests of this crate
//! (`cargo test -p arrowfeed --doc`). Not part of the API.

use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::{Int32Array, Int64Array, RecordBatch, RecordBatchIterator, StringArray};

use crate::{Error, Result};

/// A scratch directory that is the current directory while it lives, holding `data.parquet`,
/// `train.parquet`, `a.parquet`, `b.arrow` (2,000 rows of `id`, `text`, `label`) and the shard
/// store `data/train` written from them.
#[derive(Debug)]
pub struct Fixtures {
    dir: PathBuf,
    was: PathBuf,
}

impl Drop for Fixtures {
    fn drop(&mut self) {
        let _ = std::env::set_current_dir(&self.was);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes the fixtures into a fresh directory and makes it the current one (each doc test
/// runs in a process of its own, so changing directory is safe there).
///
/// # Errors
/// [`Error::Io`] if a file cannot be written.
pub fn enter() -> Result<Fixtures> {
    use arrowfeed_core_source::{BatchWriter, Format, WriteCompression};
    let dir = std::env::temp_dir().join(format!("arrowfeed-readme-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("data")).map_err(|e| Error::io(&dir, e))?;
    let was = std::env::current_dir().map_err(|e| Error::io(".", e))?;
    std::env::set_current_dir(&dir).map_err(|e| Error::io(&dir, e))?;
    let fixtures = Fixtures { dir, was };
    let n = 2_000;
    let batch = RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from_iter_values(0..n)) as _),
        (
            "text",
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("row {i}")),
            )) as _,
        ),
        (
            "label",
            Arc::new(Int32Array::from_iter_values(
                (0..n).map(|i| (i % 10) as i32),
            )) as _,
        ),
    ])?;
    for (file, format) in [
        ("data.parquet", Format::Parquet),
        ("train.parquet", Format::Parquet),
        ("a.parquet", Format::Parquet),
        ("b.arrow", Format::ArrowFile),
    ] {
        let mut w = BatchWriter::create(
            fixtures.dir.join(file),
            format,
            batch.schema(),
            WriteCompression::Default,
        )?;
        w.write(&batch)?;
        w.finish()?;
    }
    arrowfeed_shard_store::StoreWriter::new()
        .shard_rows(500)
        .write(
            fixtures.dir.join("data/train"),
            RecordBatchIterator::new([Ok(batch.clone())], batch.schema()),
        )?;
    Ok(fixtures)
}
