//! Opening what the commands read: files through `arrowfeed::open`, directories (and remote
//! prefixes holding a manifest) as shard stores (arrowfeed or Hugging Face). Paths and URLs
//! alike.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use arrowfeed::ReadOptions;
use arrowfeed::shard_store::{CacheOptions, OpenOptions, ShardStore};
use arrowfeed::source::MemTable;
use arrowfeed::traits::RandomAccess;

use crate::{CliResult, Failure};

/// The shard cache settings of this run (`--cache-dir`, `--cache-limit`; unset, the
/// environment's `ARROWFEED_CACHE_DIR` and `ARROWFEED_CACHE_LIMIT`).
static CACHE: OnceLock<CacheOptions> = OnceLock::new();

/// Sets the shard cache settings for the run (once, before any store is opened).
pub(crate) fn set_cache(dir: Option<PathBuf>, limit: Option<u64>) {
    let mut c = CacheOptions::default();
    c.dir = dir;
    c.limit = limit;
    let _ = CACHE.set(c);
}

/// True when `path` names a store: a local directory, or a remote prefix with a manifest.
pub(crate) fn is_store(path: &Path) -> CliResult<bool> {
    arrowfeed::is_store(path).map_err(|e| Failure::at(path, e))
}

/// The store (or Hugging Face directory) at `path`, local or remote.
pub(crate) fn open_store(path: &Path) -> CliResult<ShardStore> {
    let cache = CACHE.get_or_init(CacheOptions::default);
    arrowfeed::store_with(path, OpenOptions::default(), cache).map_err(|e| Failure::at(path, e))
}

/// A reader of every row of `inputs` (files, or a single store), in order: one Parquet or IPC
/// file on the scan engine, anything else one file after another.
pub(crate) fn sequential(
    inputs: &[std::path::PathBuf],
    columns: Option<Vec<String>>,
) -> CliResult<Box<dyn RecordBatchReader + Send>> {
    let mut store_input = None;
    for p in inputs {
        if is_store(p)? {
            store_input = Some(p);
            break;
        }
    }
    if let Some(dir) = store_input {
        if inputs.len() > 1 {
            return Err(Failure::Usage(format!(
                "{}: a store must be the only input",
                dir.display()
            )));
        }
        let store = open_store(dir)?;
        let projection = projection(&store.schema(), columns).map_err(|e| Failure::at(dir, e))?;
        let it = store.iter_shards(None);
        return Ok(match projection {
            None => Box::new(it),
            Some(p) => Box::new(Projected {
                schema: Arc::new(
                    store
                        .schema()
                        .project(&p)
                        .map_err(|e| Failure::at(dir, e))?,
                ),
                inner: it,
                projection: p,
            }),
        });
    }
    let mut options = ReadOptions::default();
    options.columns = columns;
    let first = &inputs[0];
    // One Parquet or Arrow IPC file: the scan engine (reads ahead, decodes on every core,
    // within its default memory budget). An IPC stream has no footer to plan from.
    if let [path] = inputs
        && (path.is_file() || arrowfeed::is_url(&path.to_string_lossy()))
    {
        match arrowfeed::scan(path, &options) {
            Ok(scan) => return Ok(Box::new(scan.reader().map_err(|e| Failure::at(path, e))?)),
            Err(arrowfeed::Error::InvalidArgument { .. }) => {}
            Err(e) => return Err(Failure::at(path, e)),
        }
    }
    let source = arrowfeed::open_many(inputs, &options).map_err(|e| Failure::at(first, e))?;
    Ok(Box::new(source))
}

/// `path` as a random-access dataset: a store, or a file read into memory.
pub(crate) fn random_access(path: &Path) -> CliResult<Arc<dyn RandomAccess>> {
    if is_store(path)? {
        return Ok(Arc::new(open_store(path)?));
    }
    let source = arrowfeed::open(path).map_err(|e| Failure::at(path, e))?;
    Ok(Arc::new(
        MemTable::from_reader(source).map_err(|e| Failure::at(path, e))?,
    ))
}

/// Column names to indices in `schema`, with an error listing the columns.
pub(crate) fn projection(
    schema: &SchemaRef,
    columns: Option<Vec<String>>,
) -> arrowfeed::Result<Option<Vec<usize>>> {
    let Some(names) = columns else {
        return Ok(None);
    };
    names
        .iter()
        .map(|n| {
            schema.index_of(n).map_err(|_| {
                let have: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                arrowfeed::Error::invalid_argument(format!(
                    "no column named {n:?}; the columns are {}",
                    have.join(", ")
                ))
            })
        })
        .collect::<arrowfeed::Result<Vec<_>>>()
        .map(Some)
}

struct Projected<R> {
    schema: SchemaRef,
    inner: R,
    projection: Vec<usize>,
}

impl<R: Iterator<Item = Result<RecordBatch, ArrowError>>> Iterator for Projected<R> {
    type Item = Result<RecordBatch, ArrowError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner
            .next()
            .map(|b| b.and_then(|b| b.project(&self.projection)))
    }
}

impl<R: Iterator<Item = Result<RecordBatch, ArrowError>>> RecordBatchReader for Projected<R> {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// A deterministic generator for random indices (splitmix64).
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        // Multiply-shift: unbiased enough for benchmarks and sampling, no division.
        ((u128::from(z) * u128::from(n)) >> 64) as u64
    }
}
