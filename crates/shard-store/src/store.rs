//! Reading a store: open it lazily (an arrowfeed manifest here, a Hugging Face directory in
//! `hf.rs`), load shards on first use (kept open by `open_shards.rs`), and iterate them. Rows
//! are routed by `route.rs` and served as `RandomAccess` by `gather.rs`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use arrowfeed_traits::{Error, ObjectDir, RandomAccess, Result};

use crate::cache::{CacheEntry, CacheMetrics, CacheOptions, ShardCache};
use crate::hf::open_hf;
use crate::manifest::{MANIFEST_FILE, Manifest, ShardCompression};
use crate::open_shards::OpenShards;
use crate::route::Routes;
use crate::shard::{LoadMode, LoadedShard, ShardKind, decode, load_bytes, load_file};
use crate::wide::{Columns, OFFSET_LIMIT, conform, widen};

/// What kind of directory a store was opened from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreFormat {
    /// An arrowfeed shard store (`manifest.json`, Arrow IPC file shards, checksums).
    Arrowfeed,
    /// A Hugging Face `datasets` `save_to_disk` directory (`state.json`, IPC stream shards),
    /// read-only.
    HuggingFace,
}

impl StoreFormat {
    /// The name `arrowfeed info` prints.
    pub fn name(self) -> &'static str {
        match self {
            Self::Arrowfeed => "arrowfeed-shard-store",
            Self::HuggingFace => "huggingface-datasets",
        }
    }
}

/// Options for [`ShardStore::open_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenOptions {
    /// Memory-map shards (default) or read them into memory; see [`LoadMode`].
    pub mode: LoadMode,
    /// Shards kept open (mapped and decoded) at once; the least recently used is closed first.
    pub max_open_shards: usize,
    /// Map shards with their pages populated (`MAP_POPULATE`, default on): a shard's first use
    /// pays for setting up its whole mapping, and later gathers never take a page fault, which
    /// is what keeps the p99 latency of random gathers low. If the shard is not in the page
    /// cache, populating reads all of it: turn this off for stores much larger than memory
    /// that are read sparsely.
    pub prefault: bool,
    /// Check each shard's xxh3 checksum against the manifest as it loads (default off): a
    /// shard changed since it was written is an error before any of its batches is used. It
    /// costs a pass over the shard's bytes per load. Hugging Face directories carry no
    /// checksums, so it checks nothing there. (A change *after* the load still reaches a
    /// mapped shard's batches; see [`LoadMode::Mmap`].)
    pub verify_checksums: bool,
    /// The offset span past which a column is wide (`i32::MAX`); lowered only by tests, to
    /// drive the wide-column paths with small data.
    #[doc(hidden)]
    pub offset_limit: u64,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self {
            mode: LoadMode::Mmap,
            max_open_shards: 64,
            prefault: true,
            verify_checksums: false,
            offset_limit: OFFSET_LIMIT,
        }
    }
}

impl OpenOptions {
    /// Sets how shard bytes are loaded.
    pub fn mode(mut self, mode: LoadMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets whether shards are mapped with their pages populated.
    pub fn prefault(mut self, prefault: bool) -> Self {
        self.prefault = prefault;
        self
    }

    /// Sets whether each shard's checksum is checked as it loads.
    pub fn verify_checksums(mut self, verify: bool) -> Self {
        self.verify_checksums = verify;
        self
    }

    #[doc(hidden)]
    pub fn offset_limit(mut self, limit: u64) -> Self {
        self.offset_limit = limit;
        self
    }

    /// Sets the cap on open shards (at least 1; opening with 0 is an error).
    pub fn max_open_shards(mut self, n: usize) -> Self {
        self.max_open_shards = n;
        self
    }

    /// [`Error::InvalidArgument`] naming a setting that cannot work.
    fn check(&self) -> Result<()> {
        if self.max_open_shards == 0 {
            return Err(Error::invalid_argument(
                "max_open_shards must be at least 1, got 0",
            ));
        }
        Ok(())
    }
}

#[derive(Debug)]
pub(crate) struct ShardMeta {
    pub(crate) file: String,
    pub(crate) path: PathBuf,
    pub(crate) rows: u64,
    pub(crate) bytes: Option<u64>,
    pub(crate) xxh3: Option<u64>,
}

/// What opening a directory finds, before the store is built.
pub(crate) struct Parts {
    pub(crate) format: StoreFormat,
    pub(crate) stored: SchemaRef,
    pub(crate) kind: ShardKind,
    pub(crate) shards: Vec<ShardMeta>,
    pub(crate) compression: ShardCompression,
    /// Each column's recorded offset span (see [`crate::wide`]).
    pub(crate) spans: Vec<Option<u64>>,
    /// What bounds a column's span when none is recorded.
    pub(crate) unrecorded: u64,
}

impl Parts {
    /// An arrowfeed store's parts, its shard files at `path_of(file name)`.
    fn of_manifest(m: Manifest, path_of: impl Fn(&str) -> PathBuf) -> Self {
        let shards: Vec<ShardMeta> = m
            .shards
            .iter()
            .map(|s| ShardMeta {
                file: s.file.clone(),
                path: path_of(&s.file),
                rows: s.rows,
                bytes: Some(s.bytes),
                xxh3: Some(s.xxh3),
            })
            .collect();
        // Uncompressed shards hold every value byte and offset, so their size bounds a span.
        let unrecorded = match m.compression {
            ShardCompression::None => m.shards.iter().map(|s| s.bytes).sum(),
            _ => u64::MAX,
        };
        Self {
            format: StoreFormat::Arrowfeed,
            stored: m.schema,
            kind: ShardKind::File,
            shards,
            compression: m.compression,
            spans: m.column_spans,
            unrecorded,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) dir: PathBuf,
    /// Set for a store read from object storage through the local shard cache.
    pub(crate) cache: Option<Arc<ShardCache>>,
    format: StoreFormat,
    /// The schema of the shard files.
    stored: SchemaRef,
    /// The schema of every batch the store returns: `stored` with its wide columns in their
    /// large types (see [`crate::wide`]).
    pub(crate) schema: SchemaRef,
    kind: ShardKind,
    shards: Vec<ShardMeta>,
    /// Which shard holds a row.
    pub(crate) routes: Routes,
    compression: ShardCompression,
    pub(crate) options: OpenOptions,
    /// The shards open now (the cap, the LRU, one load at a time).
    open: OpenShards,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(c) = &self.cache {
            c.close();
        }
    }
}

/// A sharded dataset opened for reading: an arrowfeed store or a Hugging Face `save_to_disk`
/// directory. Cheap to clone (an `Arc` inside) and `Send + Sync`, so worker threads share one.
///
/// Opening reads only the manifest (or, for Hugging Face directories, each shard's message
/// headers): no shard is mapped until a row of it is read.
///
/// ```
/// use std::sync::Arc;
/// use arrow_array::{Int64Array, RecordBatch, RecordBatchIterator};
/// use arrowfeed_shard_store::{ShardStore, StoreWriter};
/// use arrowfeed_traits::RandomAccess;
///
/// let dir = tempfile::tempdir()?;
/// let batch = RecordBatch::try_from_iter([("id", Arc::new(Int64Array::from_iter_values(0..1000)) as _)])?;
/// let input = RecordBatchIterator::new(vec![Ok(batch.clone())], batch.schema());
/// StoreWriter::new().shard_rows(300).write(dir.path().join("ds"), input)?;
///
/// let store = ShardStore::open(dir.path().join("ds"))?;
/// assert_eq!(store.num_rows(), 1000);
/// assert_eq!(store.num_shards(), 4);
/// let rows = store.take(&[999, 0, 500], None)?;
/// assert_eq!(rows.column(0).as_ref(), &Int64Array::from(vec![999, 0, 500]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ShardStore {
    pub(crate) inner: Arc<Inner>,
}

impl ShardStore {
    /// Opens the store (or Hugging Face directory) at `dir` with default options.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory or its manifest cannot be read; [`Error::Corrupt`] naming
    /// the file if the manifest is malformed or names files outside the directory.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, OpenOptions::default())
    }

    /// Opens the store at `dir` with `options`.
    ///
    /// # Errors
    /// As [`open`](Self::open), and [`Error::InvalidArgument`] for a zero
    /// [`max_open_shards`](OpenOptions::max_open_shards).
    pub fn open_with(dir: impl AsRef<Path>, options: OpenOptions) -> Result<Self> {
        options.check()?;
        let dir = dir.as_ref();
        let meta = std::fs::metadata(dir).map_err(|e| Error::io(dir, e))?;
        if !meta.is_dir() {
            return Err(Error::io(
                dir,
                std::io::Error::new(std::io::ErrorKind::NotADirectory, "a store is a directory"),
            ));
        }
        let manifest_path = dir.join(MANIFEST_FILE);
        let parts = if manifest_path.exists() {
            let text = std::fs::read_to_string(&manifest_path)
                .map_err(|e| Error::io(&manifest_path, e))?;
            Parts::of_manifest(Manifest::parse(dir, &text)?, |f| dir.join(f))
        } else if dir.join("state.json").exists() {
            open_hf(dir)?
        } else {
            return Err(Error::corrupt(
                dir,
                "not a shard store (no manifest.json) nor a Hugging Face datasets directory (no state.json)",
            ));
        };
        Ok(Self::from_parts(dir.to_path_buf(), None, parts, options))
    }

    /// Opens the store under the object-store prefix `objects` (`s3://bucket/train`): reads
    /// its manifest now, and each shard into the local shard cache when first used (or ahead of
    /// use, on a [`RandomAccess::will_need`] hint such as the Loader gives).
    ///
    /// The cache (see [`CacheOptions`]) holds at most its limit in bytes on disk, evicting the
    /// least recently used shards that no reader holds; downloads use parallel range
    /// requests, are checked against the manifest's xxh3 and published atomically; several
    /// processes may share one cache directory. A shard larger than the limit is an error.
    ///
    /// # Errors
    /// The directory's errors for the manifest (`NotFound` naming its URL when there is none);
    /// [`Error::Corrupt`] for a malformed manifest; [`Error::InvalidArgument`] for bad cache
    /// options or a Hugging Face directory (read those from a local copy).
    pub fn open_remote(
        objects: Arc<dyn ObjectDir>,
        options: OpenOptions,
        cache: &CacheOptions,
    ) -> Result<Self> {
        options.check()?;
        let url = objects.url().trim_end_matches('/').to_string();
        let dir = PathBuf::from(&url);
        let text = match futures::executor::block_on(objects.get(MANIFEST_FILE)) {
            Ok(t) => t,
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                if futures::executor::block_on(objects.open("state.json")).is_ok() {
                    return Err(Error::invalid_argument(format!(
                        "{url}: Hugging Face directories are read from local disk; copy it down, or convert it to a shard store"
                    )));
                }
                return Err(Error::corrupt(
                    dir.as_path(),
                    "not a shard store (no manifest.json)",
                ));
            }
            Err(e) => return Err(e),
        };
        let text = std::str::from_utf8(&text)
            .map_err(|e| Error::corrupt_with(objects.url_of(MANIFEST_FILE), "not UTF-8", e))?;
        let m = Manifest::parse(&dir, text)?;
        let entries = m
            .shards
            .iter()
            .map(|s| CacheEntry {
                name: s.file.clone(),
                bytes: s.bytes,
                xxh3: s.xxh3,
            })
            .collect();
        let parts = Parts::of_manifest(m, |f| PathBuf::from(objects.url_of(f)));
        let cache = ShardCache::new(objects, entries, cache)?;
        Ok(Self::from_parts(dir, Some(cache), parts, options))
    }

    fn from_parts(
        dir: PathBuf,
        cache: Option<Arc<ShardCache>>,
        parts: Parts,
        options: OpenOptions,
    ) -> Self {
        let Parts {
            format,
            stored,
            kind,
            shards,
            compression,
            spans,
            unrecorded,
        } = parts;
        let routes = Routes::new(shards.iter().map(|s| s.rows));
        let open = OpenShards::new(shards.len(), options.max_open_shards);
        let schema = widen(
            &stored,
            |c| spans.get(c).copied().flatten().unwrap_or(unrecorded),
            options.offset_limit,
        );
        Self {
            inner: Arc::new(Inner {
                dir,
                cache,
                format,
                stored,
                schema,
                kind,
                shards,
                routes,
                compression,
                options,
                open,
            }),
        }
    }

    /// True for a store read from object storage ([`open_remote`](Self::open_remote)).
    pub fn is_remote(&self) -> bool {
        self.inner.cache.is_some()
    }

    /// The shard cache's counters, for a remote store: hits, downloads (and how many ahead of
    /// use), bytes, evictions, and the time readers waited for shards to arrive.
    pub fn cache_metrics(&self) -> Option<CacheMetrics> {
        self.inner.cache.as_ref().map(|c| c.metrics())
    }

    /// The object-store prefix a remote store reads from.
    pub(crate) fn objects(&self) -> Option<Arc<dyn ObjectDir>> {
        self.inner.cache.as_ref().map(|c| c.objects())
    }

    /// The shard cache's root directory and byte limit, for a remote store.
    pub fn cache_location(&self) -> Option<(&Path, u64)> {
        self.inner.cache.as_ref().map(|c| (c.root(), c.limit()))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// What kind of directory this is.
    pub fn format(&self) -> StoreFormat {
        self.inner.format
    }

    /// The number of shards.
    pub fn num_shards(&self) -> usize {
        self.inner.shards.len()
    }

    /// Each shard's file name and rows.
    pub fn shard_rows(&self) -> Vec<(String, u64)> {
        self.inner
            .shards
            .iter()
            .map(|s| (s.file.clone(), s.rows))
            .collect()
    }

    /// Total bytes of the shard files, when recorded (arrowfeed stores).
    pub fn total_bytes(&self) -> Option<u64> {
        self.inner.shards.iter().map(|s| s.bytes).sum()
    }

    /// Shard compression. For a Hugging Face directory, the codec of its compressed record
    /// batches, if any.
    pub fn compression(&self) -> ShardCompression {
        self.inner.compression
    }

    /// How many times a shard was loaded (mapped or read, and decoded) so far: a measure of
    /// how well the open-shard cap fits the access pattern.
    pub fn shard_loads(&self) -> u64 {
        self.inner.open.loads()
    }

    /// Shards open now.
    pub fn open_shards(&self) -> usize {
        self.inner.open.len()
    }

    /// Shard `s`, open already or loaded now.
    pub(crate) fn shard(&self, s: usize) -> Result<Arc<LoadedShard>> {
        self.inner.open.get_or_load(s, || self.load(s))
    }

    /// Shards `wanted` (numbers, each once), open already or loaded now, in that order. When
    /// more than one must be loaded, they load on up to as many threads as the machine has
    /// cores: mapping with its pages populated and decoding are CPU work per shard, and a
    /// fresh process's first gather from a store of many shards needs them all.
    pub(crate) fn shards(&self, wanted: &[usize]) -> Result<Vec<Arc<LoadedShard>>> {
        let mut got: Vec<Option<Arc<LoadedShard>>> =
            wanted.iter().map(|&s| self.inner.open.get(s)).collect();
        let missing: Vec<usize> = (0..wanted.len()).filter(|&k| got[k].is_none()).collect();
        // Asked only when two or more must load: it reads files under /proc and /sys, which a
        // take per batch would pay for every time.
        let threads = if missing.len() < 2 || self.inner.cache.is_some() {
            1
        } else {
            std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(missing.len())
        };
        // Thread `t` loads every `threads`-th missing shard from the `t`-th, stopping at its
        // first error: shards are of about one size, and a fixed share is what the tests can
        // count on.
        let share = |t: usize| -> Vec<Result<Arc<LoadedShard>>> {
            let mut out = Vec::new();
            for &k in missing.iter().skip(t).step_by(threads) {
                let loaded = self.shard(wanted[k]);
                let failed = loaded.is_err();
                out.push(loaded);
                if failed {
                    break;
                }
            }
            out
        };
        let shares: Vec<Vec<Result<Arc<LoadedShard>>>> = if threads < 2 {
            vec![share(0)]
        } else {
            std::thread::scope(|scope| {
                let helpers: Vec<_> = (1..threads)
                    .map(|t| scope.spawn(move || share(t)))
                    .collect();
                let mut shares = vec![share(0)];
                for h in helpers {
                    shares.push(h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
                }
                shares
            })
        };
        // In the order asked: a share's error comes before anything it did not load.
        let mut shares: Vec<_> = shares.into_iter().map(Vec::into_iter).collect();
        for (n, &k) in missing.iter().enumerate() {
            got[k] = Some(shares[n % threads].next().expect("a share per shard")?);
        }
        Ok(got
            .into_iter()
            .map(|sh| sh.expect("open or loaded"))
            .collect())
    }

    /// Maps (or reads) shard `s`, checks it against what the manifest records, and decodes it.
    fn load(&self, s: usize) -> Result<LoadedShard> {
        let meta = &self.inner.shards[s];
        let bytes = match &self.inner.cache {
            None => load_bytes(
                &meta.path,
                meta.bytes,
                self.inner.options.mode,
                self.inner.options.prefault,
            )?,
            Some(cache) => {
                let held = cache.get(s, &|| self.inner.open.release_idle())?;
                load_file(
                    held.file,
                    &held.path,
                    meta.bytes,
                    self.inner.options.mode,
                    self.inner.options.prefault,
                )?
            }
        };
        if let Some(want) = meta.xxh3.filter(|_| self.inner.options.verify_checksums) {
            let got = xxhash_rust::xxh3::xxh3_64(&bytes);
            if got != want {
                return Err(Error::corrupt(
                    &meta.path,
                    format!(
                        "the shard's xxh3 is {got:016x}, the manifest says {want:016x} (changed since it was written?)"
                    ),
                ));
            }
        }
        let loaded = decode(&meta.path, &bytes, self.inner.kind, &self.inner.stored)?;
        let rows = *loaded.starts.last().expect("starts ends with the total");
        if rows != meta.rows {
            return Err(Error::corrupt(
                &meta.path,
                format!("the shard has {rows} rows, the manifest says {}", meta.rows),
            ));
        }
        Ok(loaded)
    }

    /// Every batch, shard by shard: in natural order, or with the shard order shuffled by
    /// `seed` (rows within a shard stay in order).
    pub fn iter_shards(&self, shuffle_seed: Option<u64>) -> ShardIter {
        let n = self.inner.shards.len();
        let order: Vec<usize> = match shuffle_seed {
            None => (0..n).collect(),
            Some(seed) => {
                let p = arrowfeed_traits::Permutation::new(n as u64, seed);
                (0..n as u64).map(|i| p.apply(i) as usize).collect()
            }
        };
        ShardIter {
            store: self.clone(),
            order: order.into(),
            current: None,
            done: false,
        }
    }

    /// Row `row` as a one-row batch (a zero-copy slice of its shard).
    ///
    /// # Errors
    /// As [`RandomAccess::slice`].
    pub fn get_row(&self, row: u64, projection: Option<&[usize]>) -> Result<RecordBatch> {
        self.slice(row, 1, projection)
    }

    /// The cap on shards open at once (see [`OpenOptions::max_open_shards`]).
    pub fn max_open_shards(&self) -> usize {
        self.inner.options.max_open_shards
    }

    /// The shard files, as `(name, path, rows, recorded bytes, recorded checksum)`.
    pub(crate) fn shard_metas(&self) -> &[ShardMeta] {
        &self.inner.shards
    }

    /// How this store builds output columns.
    pub(crate) fn columns(&self) -> Columns<'_> {
        Columns {
            dir: &self.inner.dir,
            limit: self.inner.options.offset_limit,
        }
    }

    pub(crate) fn out_of_range(&self, index: u64) -> Error {
        Error::IndexOutOfRange {
            location: arrowfeed_traits::Location::from(self.inner.dir.as_path()),
            index,
            len: self.num_rows(),
        }
    }
}

/// Batches of a store, shard by shard; see [`ShardStore::iter_shards`].
#[derive(Debug)]
pub struct ShardIter {
    store: ShardStore,
    order: VecDeque<usize>,
    current: Option<(Arc<LoadedShard>, usize)>,
    done: bool,
}

impl Iterator for ShardIter {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.done {
                return None;
            }
            if let Some((shard, k)) = &mut self.current {
                if let Some(b) = shard.batches.get(*k) {
                    *k += 1;
                    return Some(
                        conform(b.clone(), &self.store.inner.schema).map_err(Error::into_arrow),
                    );
                }
                self.current = None;
            }
            let s = self.order.pop_front()?;
            match self.store.shard(s) {
                Ok(sh) => self.current = Some((sh, 0)),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e.into_arrow()));
                }
            }
        }
    }
}

impl RecordBatchReader for ShardIter {
    fn schema(&self) -> SchemaRef {
        self.store.inner.schema.clone()
    }
}
