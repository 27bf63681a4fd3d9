//! Reading a store: open lazily, map shards on first use with a cap on open maps, route rows
//! by binary search, and serve `RandomAccess`.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow_array::{RecordBatch, RecordBatchReader};
use arrow_schema::{ArrowError, SchemaRef};
use arrowfeed_traits::{Error, ObjectDir, RandomAccess, Result, check_slice, project_schema};

use crate::cache::{CacheEntry, CacheMetrics, CacheOptions, ShardCache};
use crate::hf::open_hf;
use crate::manifest::{MANIFEST_FILE, Manifest};
use crate::shard::{LoadMode, LoadedShard, ShardKind, decode, load_bytes, load_file};
use crate::wide::{Columns, OFFSET_LIMIT, batch_of, conform, widen};

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
    pub fn with_mode(mut self, mode: LoadMode) -> Self {
        self.mode = mode;
        self
    }

    /// Sets whether shards are mapped with their pages populated.
    pub fn with_prefault(mut self, prefault: bool) -> Self {
        self.prefault = prefault;
        self
    }

    /// Sets whether each shard's checksum is checked as it loads.
    pub fn with_verify_checksums(mut self, verify: bool) -> Self {
        self.verify_checksums = verify;
        self
    }

    #[doc(hidden)]
    pub fn with_offset_limit(mut self, limit: u64) -> Self {
        self.offset_limit = limit;
        self
    }

    /// Sets the cap on open shards (at least 1).
    pub fn with_max_open_shards(mut self, n: usize) -> Self {
        self.max_open_shards = n.max(1);
        self
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
    pub(crate) compression: String,
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
        let unrecorded = match m.compression.as_str() {
            "none" => m.shards.iter().map(|s| s.bytes).sum(),
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

#[derive(Debug, Default)]
struct Lru {
    open: HashMap<usize, Arc<LoadedShard>>,
    /// Least recently used at the front.
    order: VecDeque<usize>,
    loads: u64,
}

#[derive(Debug)]
struct Inner {
    dir: PathBuf,
    /// Set for a store read from object storage through the local shard cache.
    cache: Option<Arc<ShardCache>>,
    format: StoreFormat,
    /// The schema of the shard files.
    stored: SchemaRef,
    /// The schema of every batch the store returns: `stored` with its wide columns in their
    /// large types (see [`crate::wide`]).
    schema: SchemaRef,
    kind: ShardKind,
    shards: Vec<ShardMeta>,
    /// Row where each shard starts, then the total.
    starts: Vec<u64>,
    compression: String,
    options: OpenOptions,
    lru: Mutex<Lru>,
    /// One lock per shard, held while it loads: threads that need a shard another is loading
    /// wait for that load instead of mapping and decoding it a second time.
    loading: Vec<Mutex<()>>,
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
    inner: Arc<Inner>,
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
    /// As [`open`](Self::open).
    pub fn open_with(dir: impl AsRef<Path>, options: OpenOptions) -> Result<Self> {
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
        let mut starts = Vec::with_capacity(shards.len() + 1);
        let mut total = 0u64;
        for s in &shards {
            starts.push(total);
            total += s.rows;
        }
        starts.push(total);
        let schema = widen(
            &stored,
            |c| spans.get(c).copied().flatten().unwrap_or(unrecorded),
            options.offset_limit,
        );
        let loading = (0..shards.len()).map(|_| Mutex::new(())).collect();
        Self {
            inner: Arc::new(Inner {
                dir,
                cache,
                format,
                stored,
                schema,
                kind,
                shards,
                starts,
                compression,
                options,
                lru: Mutex::new(Lru::default()),
                loading,
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

    /// Closes open shards nobody but the store holds; true if it closed any.
    fn release_idle(&self) -> bool {
        let mut lru = self.lock();
        let idle: Vec<usize> = lru
            .open
            .iter()
            .filter(|(_, sh)| Arc::strong_count(sh) == 1)
            .map(|(&k, _)| k)
            .collect();
        for k in &idle {
            lru.open.remove(k);
            if let Some(p) = lru.order.iter().position(|o| o == k) {
                lru.order.remove(p);
            }
        }
        !idle.is_empty()
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

    /// Shard compression: `none`, `lz4` or `zstd`.
    pub fn compression(&self) -> &str {
        &self.inner.compression
    }

    /// How many times a shard was loaded (mapped or read, and decoded) so far: a measure of
    /// how well the open-shard cap fits the access pattern.
    pub fn shard_loads(&self) -> u64 {
        self.lock().loads
    }

    /// Shards open now.
    pub fn open_shards(&self) -> usize {
        self.lock().open.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Lru> {
        self.inner.lru.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The shard holding global `row`, and the row within it.
    fn route(&self, row: u64) -> (usize, u64) {
        let s = self.inner.starts.partition_point(|&start| start <= row) - 1;
        // Skip empty shards that share a start row.
        let s = (s..self.inner.shards.len())
            .find(|&k| self.inner.shards[k].rows > row - self.inner.starts[k])
            .unwrap_or(s);
        (s, row - self.inner.starts[s])
    }

    /// Shard `s` if it is open, marked most recently used.
    fn cached_shard(&self, s: usize) -> Option<Arc<LoadedShard>> {
        let mut lru = self.lock();
        let sh = lru.open.get(&s).cloned()?;
        if let Some(p) = lru.order.iter().position(|&k| k == s) {
            lru.order.remove(p);
        }
        lru.order.push_back(s);
        Some(sh)
    }

    /// Loads shard `s` (or takes it from the cache).
    pub(crate) fn shard(&self, s: usize) -> Result<Arc<LoadedShard>> {
        if let Some(sh) = self.cached_shard(s) {
            return Ok(sh);
        }
        let _loading = self.inner.loading[s]
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(sh) = self.cached_shard(s) {
            return Ok(sh);
        }
        let meta = &self.inner.shards[s];
        let bytes = match &self.inner.cache {
            None => load_bytes(
                &meta.path,
                meta.bytes,
                self.inner.options.mode,
                self.inner.options.prefault,
            )?,
            Some(cache) => {
                let held = cache.get(s, &|| self.release_idle())?;
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
        let loaded = Arc::new(loaded);
        let mut lru = self.lock();
        lru.loads += 1;
        if lru.open.insert(s, loaded.clone()).is_none() {
            lru.order.push_back(s);
        }
        while lru.open.len() > self.inner.options.max_open_shards {
            match lru.order.pop_front() {
                Some(old) => {
                    lru.open.remove(&old);
                }
                None => break,
            }
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
    fn columns(&self) -> Columns<'_> {
        Columns {
            dir: &self.inner.dir,
            limit: self.inner.options.offset_limit,
        }
    }

    fn out_of_range(&self, index: u64) -> Error {
        Error::IndexOutOfRange {
            location: arrowfeed_traits::Location::from(self.inner.dir.as_path()),
            index,
            len: self.num_rows(),
        }
    }
}

impl RandomAccess for ShardStore {
    fn schema(&self) -> SchemaRef {
        self.inner.schema.clone()
    }

    fn num_rows(&self) -> u64 {
        *self
            .inner
            .starts
            .last()
            .expect("starts ends with the total")
    }

    /// Gathers rows grouped by shard and batch: each shard is loaded once per call and each
    /// column gathered in one pass; a sorted run of consecutive rows is served as a slice.
    ///
    /// The batch's schema is always `schema().project(p)`: string, binary and list columns
    /// that can pass 2 GiB of values are in their large types in every batch (decided at open;
    /// see the crate docs). A `take` that repeats rows until a column reported in its 32-bit
    /// type would pass 2 GiB is an [`Error::InvalidArgument`] naming the column.
    fn take(&self, indices: &[u64], projection: Option<&[usize]>) -> Result<RecordBatch> {
        let schema = project_schema(&self.inner.schema, projection)?;
        let n = self.num_rows();
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            return Err(self.out_of_range(bad));
        }
        if indices.is_empty() {
            return Ok(RecordBatch::new_empty(schema));
        }
        if indices.windows(2).all(|w| w[1] == w[0] + 1) {
            return self.slice(indices[0], indices.len() as u64, projection);
        }
        if self.inner.cache.is_some() {
            return self.take_shard_by_shard(indices, projection, &schema);
        }
        let mut loaded: HashMap<usize, Arc<LoadedShard>> = HashMap::new();
        let mut source_of: HashMap<(usize, usize), usize> = HashMap::new();
        let mut sources: Vec<RecordBatch> = Vec::new();
        let mut positions = Vec::with_capacity(indices.len());
        for &i in indices {
            let (s, local) = self.route(i);
            let shard = match loaded.get(&s) {
                Some(sh) => sh.clone(),
                None => {
                    let sh = self.shard(s)?;
                    loaded.insert(s, sh.clone());
                    sh
                }
            };
            let (b, r) = shard.locate(local);
            let src = match source_of.get(&(s, b)) {
                Some(&k) => k,
                None => {
                    let batch = &shard.batches[b];
                    sources.push(match projection {
                        Some(p) => batch.project(p)?,
                        None => batch.clone(),
                    });
                    source_of.insert((s, b), sources.len() - 1);
                    sources.len() - 1
                }
            };
            positions.push((src, r));
        }
        self.columns().gather_batch(&schema, &sources, &positions)
    }

    /// Rows `offset..offset + len`: zero-copy when they lie in one batch, else the pieces of
    /// each batch concatenated (whole shards are never materialised).
    fn slice(&self, offset: u64, len: u64, projection: Option<&[usize]>) -> Result<RecordBatch> {
        let range = check_slice(offset, len, self.num_rows())
            .map_err(|_| self.out_of_range(offset.saturating_add(len).saturating_sub(1)))?;
        let schema = project_schema(&self.inner.schema, projection)?;
        if range.is_empty() {
            return Ok(RecordBatch::new_empty(schema));
        }
        if self.inner.cache.is_some() && self.route(range.start).0 != self.route(range.end - 1).0 {
            // Pieces would keep every shard they point into open, and in the cache, at once:
            // copy shard by shard instead.
            let rows: Vec<u64> = range.collect();
            return self.take_shard_by_shard(&rows, projection, &schema);
        }
        let mut pieces = Vec::new();
        let mut row = range.start;
        while row < range.end {
            let (s, local) = self.route(row);
            let shard = self.shard(s)?;
            let (b, r) = shard.locate(local);
            let batch = &shard.batches[b];
            let take = ((batch.num_rows() - r) as u64).min(range.end - row) as usize;
            let piece = batch.slice(r, take);
            pieces.push(match projection {
                Some(p) => piece.project(p)?,
                None => piece,
            });
            row += take as u64;
        }
        if pieces.len() == 1 {
            return conform(pieces.pop().expect("one piece"), &schema);
        }
        let columns = schema
            .fields()
            .iter()
            .enumerate()
            .map(|(c, f)| {
                self.columns()
                    .concat(f, pieces.iter().map(|p| p.column(c).as_ref()).collect())
            })
            .collect::<Result<Vec<_>>>()?;
        batch_of(&schema, columns, len as usize)
    }

    /// For a remote store, asks the shard cache to download the shards holding `rows` ahead of
    /// use, in the order they first appear; a local store ignores it.
    fn will_need(&self, rows: &[u64]) {
        let Some(cache) = &self.inner.cache else {
            return;
        };
        let n = self.num_rows();
        let mut shards: Vec<usize> = Vec::new();
        for &r in rows.iter().filter(|&&r| r < n) {
            let (s, _) = self.route(r);
            if !shards.contains(&s) {
                shards.push(s);
            }
        }
        cache.want(&shards);
    }

    fn partitions(&self) -> Vec<Range<u64>> {
        self.inner
            .starts
            .windows(2)
            .filter(|w| w[1] > w[0])
            .map(|w| w[0]..w[1])
            .collect()
    }
}

impl ShardStore {
    /// `take` holding one shard at a time: the rows of each shard are gathered while it is
    /// open, then put in the asked order. How a remote store gathers across more shards than
    /// its cache holds (a global shuffle), at the cost of copying the gathered rows twice.
    fn take_shard_by_shard(
        &self,
        indices: &[u64],
        projection: Option<&[usize]>,
        schema: &SchemaRef,
    ) -> Result<RecordBatch> {
        // Each shard's rows in the order first asked, and where each output row comes from.
        let mut order: Vec<usize> = Vec::new();
        let mut rows_of: HashMap<usize, Vec<u64>> = HashMap::new();
        let mut positions = Vec::with_capacity(indices.len());
        for &i in indices {
            let (s, local) = self.route(i);
            let rows = rows_of.entry(s).or_insert_with(|| {
                order.push(s);
                Vec::new()
            });
            rows.push(local);
            positions.push((s, rows.len() - 1));
        }
        let mut part_of: HashMap<usize, usize> = HashMap::new();
        let mut parts: Vec<RecordBatch> = Vec::with_capacity(order.len());
        for &s in &order {
            let shard = self.shard(s)?;
            let local = &rows_of[&s];
            let mut sources: Vec<RecordBatch> = Vec::new();
            let mut source_of: HashMap<usize, usize> = HashMap::new();
            let mut pos = Vec::with_capacity(local.len());
            for &r in local {
                let (b, row) = shard.locate(r);
                let k = *source_of.entry(b).or_insert_with(|| {
                    sources.push(shard.batches[b].clone());
                    sources.len() - 1
                });
                pos.push((k, row));
            }
            let sources = match projection {
                Some(p) => sources
                    .iter()
                    .map(|b| b.project(p))
                    .collect::<std::result::Result<Vec<_>, _>>()?,
                None => sources,
            };
            part_of.insert(s, parts.len());
            parts.push(self.columns().gather_batch(schema, &sources, &pos)?);
            // The shard is let go here, before the next is opened.
        }
        if parts.len() == 1 {
            return Ok(parts.pop().expect("one part"));
        }
        let positions: Vec<(usize, usize)> =
            positions.iter().map(|&(s, r)| (part_of[&s], r)).collect();
        self.columns().gather_batch(schema, &parts, &positions)
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
