//! The local shard cache of remote stores: bounded in bytes, checksummed, published
//! atomically, shared by every process on the machine, reused across runs.
//!
//! # Layout
//! `ROOT/<store key>/<shard file>.<xxh3>`: one directory per store (the key is a hash of its
//! URL and the last part of it, for people), one file per shard, named with its checksum so a
//! store rewritten in place never serves an old shard. A download in progress is
//! `ROOT/<store key>/.<entry>.part`, written in place and renamed over the entry when its
//! checksum matches: no reader ever maps half a shard.
//!
//! # Sharing without lock files
//! Every coordination is an advisory lock (`flock`) on a file that exists anyway, and the
//! kernel drops such locks when their holder dies, so a crash leaves nothing that blocks
//! anyone:
//! - a reader holds a shared lock on its open shard for as long as its map lives; eviction
//!   takes an exclusive lock without waiting, so it only ever removes shards nobody holds;
//! - a download holds an exclusive lock on its `.part` file; another process that wants the
//!   same shard waits for that lock, then finds the entry in place. A `.part` nobody holds
//!   is a crashed download's: the next download to start, of any shard, removes it;
//! - making room, reserving space (the `.part` file is set to its full size at once) and
//!   publishing a download (its rename) happen under an exclusive lock on the cache root
//!   directory, so processes never overshoot the limit together, and each sees the others'
//!   files whole when it counts them.
//!
//! Recency is each entry's modification time, set on every open: eviction removes the least
//! recently used entries first.

use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions as FsOpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arrowfeed_traits::{ByteSource, Error, ObjectDir, Result};

/// The cache limit when neither the options nor `ARROWFEED_CACHE_LIMIT` set one: 16 GiB.
pub const DEFAULT_CACHE_LIMIT: u64 = 16 << 30;

/// Bytes per range request of a download.
const DOWNLOAD_PART_BYTES: u64 = 8 << 20;

/// How long a read waits for room in a full cache (shards other readers hold are released as
/// they finish) before it gives up with an error that says to raise the limit.
const ROOM_WAIT: Duration = Duration::from_secs(60);

/// Where a remote store's shards are cached and how much room they get.
///
/// | setting | default |
/// |---|---|
/// | [`dir`](Self::dir) | `$ARROWFEED_CACHE_DIR`, else `$XDG_CACHE_HOME/arrowfeed`, else `~/.cache/arrowfeed` |
/// | [`limit`](Self::limit) | `$ARROWFEED_CACHE_LIMIT` (`500MiB`, `16GB`, bytes), else [`DEFAULT_CACHE_LIMIT`] |
/// | [`download_parallelism`](Self::download_parallelism) | 8 range requests in flight per download |
/// | [`read_ahead_threads`](Self::read_ahead_threads) | 2 shards downloaded ahead at once |
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheOptions {
    /// The cache root (shared by every store and process that names it).
    pub dir: Option<PathBuf>,
    /// Bytes the cache may hold on disk, all stores together.
    pub limit: Option<u64>,
    /// Range requests in flight at once for one shard's download.
    pub download_parallelism: usize,
    /// Shards downloaded ahead of use at once ([`RandomAccess::will_need`]); 0 downloads only
    /// on demand.
    ///
    /// [`RandomAccess::will_need`]: arrowfeed_traits::RandomAccess::will_need
    pub read_ahead_threads: usize,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self {
            dir: None,
            limit: None,
            download_parallelism: 8,
            read_ahead_threads: 2,
        }
    }
}

impl CacheOptions {
    /// Sets the cache root.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Sets the byte limit.
    pub fn limit(mut self, bytes: u64) -> Self {
        self.limit = Some(bytes);
        self
    }

    /// Sets the range requests in flight per download.
    pub fn download_parallelism(mut self, n: usize) -> Self {
        self.download_parallelism = n;
        self
    }

    /// Sets the shards downloaded ahead at once.
    pub fn read_ahead_threads(mut self, n: usize) -> Self {
        self.read_ahead_threads = n;
        self
    }

    /// The cache root these options name.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when no option or variable names one and there is no home
    /// directory.
    pub fn resolved_dir(&self) -> Result<PathBuf> {
        if let Some(d) = &self.dir {
            return Ok(d.clone());
        }
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        if let Some(d) = var("ARROWFEED_CACHE_DIR") {
            return Ok(d);
        }
        if let Some(d) = var("XDG_CACHE_HOME") {
            return Ok(d.join("arrowfeed"));
        }
        var("HOME")
            .map(|h| h.join(".cache").join("arrowfeed"))
            .ok_or_else(|| {
                Error::invalid_argument(
                    "no shard cache directory: set ARROWFEED_CACHE_DIR or HOME, or pass one",
                )
            })
    }

    /// The byte limit these options name.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for an `ARROWFEED_CACHE_LIMIT` that is not a size, or a
    /// limit of zero.
    pub fn resolved_limit(&self) -> Result<u64> {
        let limit = match self.limit {
            Some(l) => l,
            None => match std::env::var("ARROWFEED_CACHE_LIMIT") {
                Ok(v) if !v.trim().is_empty() => parse_size(&v).map_err(|m| {
                    Error::invalid_argument(format!("ARROWFEED_CACHE_LIMIT={v:?}: {m}"))
                })?,
                _ => DEFAULT_CACHE_LIMIT,
            },
        };
        if limit == 0 {
            return Err(Error::invalid_argument(
                "the shard cache limit must be more than 0 bytes",
            ));
        }
        Ok(limit)
    }
}

/// Parses `500MiB`, `16GB`, `1.5 GiB`, `1048576` (bytes).
///
/// # Errors
/// A message saying what is not understood.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (like 500MiB, 16GB or 1048576)"))?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown size unit {other:?} in {s:?}")),
    };
    let bytes = value * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes > u64::MAX as f64 {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(bytes as u64)
}

/// One shard as the cache knows it.
#[derive(Debug, Clone)]
pub(crate) struct CacheEntry {
    /// The shard's object name under the store's prefix.
    pub(crate) name: String,
    /// Its size, from the manifest.
    pub(crate) bytes: u64,
    /// Its xxh3, from the manifest.
    pub(crate) xxh3: u64,
}

/// Counters of a remote store's cache, from `ShardStore::cache_metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct CacheMetrics {
    /// Shards found in the cache when needed (downloaded earlier, by any process).
    pub hits: u64,
    /// Shards this process downloaded.
    pub downloads: u64,
    /// Of those, downloads started ahead of use.
    pub read_ahead: u64,
    /// Bytes this process downloaded.
    pub bytes_downloaded: u64,
    /// Shards this process removed to make room.
    pub evictions: u64,
    /// Time readers spent waiting for a shard to arrive (a download, or room for one).
    pub wait: Duration,
}

/// A shard in the cache, held open: the shared lock lives as long as this file does, so
/// eviction leaves the shard alone while it is mapped.
#[derive(Debug)]
pub(crate) struct HeldShard {
    pub(crate) file: File,
    pub(crate) path: PathBuf,
}

/// The cache of one remote store.
#[derive(Debug)]
pub(crate) struct ShardCache {
    root: PathBuf,
    dir: PathBuf,
    limit: u64,
    objects: Arc<dyn ObjectDir>,
    entries: Vec<CacheEntry>,
    parallelism: usize,
    state: Mutex<CacheState>,
    /// Signalled when a download ends or this process releases room.
    changed: Condvar,
}

#[derive(Debug, Default)]
struct CacheState {
    metrics: CacheMetrics,
    /// Shards asked for ahead of use and not downloaded yet, in the order asked.
    queue: VecDeque<usize>,
    /// Shards queued, being downloaded ahead, or downloaded ahead and not opened yet: read
    /// ahead never evicts these for one another (that would be a thrash).
    ahead: HashSet<usize>,
    /// The read-ahead threads should stop.
    closing: bool,
}

/// What a download found when it tried to make room.
enum Room {
    Reserved(File, PathBuf),
    /// Another process or thread is downloading it: wait for that.
    Busy(PathBuf),
    /// The entry appeared meanwhile.
    Present,
    /// Not enough room without evicting held (or, for read ahead, wanted) shards.
    Full,
}

impl ShardCache {
    /// The cache of the store at `objects`, whose shards are `entries`.
    pub(crate) fn new(
        objects: Arc<dyn ObjectDir>,
        entries: Vec<CacheEntry>,
        options: &CacheOptions,
    ) -> Result<Arc<Self>> {
        if options.download_parallelism == 0 {
            return Err(Error::invalid_argument(
                "cache download_parallelism must be at least 1",
            ));
        }
        let root = options.resolved_dir()?;
        let limit = options.resolved_limit()?;
        let url = objects.url().trim_end_matches('/').to_string();
        let tail: String = url
            .rsplit('/')
            .next()
            .unwrap_or("store")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let key = format!("{tail}-{:016x}", xxhash_rust::xxh3::xxh3_64(url.as_bytes()));
        let dir = root.join(key);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let cache = Arc::new(Self {
            root,
            dir,
            limit,
            objects,
            entries,
            parallelism: options.download_parallelism,
            state: Mutex::new(CacheState::default()),
            changed: Condvar::new(),
        });
        for _ in 0..options.read_ahead_threads {
            let weak = Arc::downgrade(&cache);
            arrowfeed_traits::spawn_thread("arrowfeed-shard-read-ahead".into(), move || {
                read_ahead_loop(weak)
            })?;
        }
        Ok(cache)
    }

    /// The cache root.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The store's objects.
    pub(crate) fn objects(&self) -> Arc<dyn ObjectDir> {
        self.objects.clone()
    }

    /// The byte limit.
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn metrics(&self) -> CacheMetrics {
        self.lock().metrics
    }

    fn entry_path(&self, s: usize) -> PathBuf {
        let e = &self.entries[s];
        self.dir.join(format!("{}.{:016x}", e.name, e.xxh3))
    }

    fn part_path(&self, s: usize) -> PathBuf {
        let e = &self.entries[s];
        self.dir.join(format!(".{}.{:016x}.part", e.name, e.xxh3))
    }

    /// Shard `s`, held open, downloading it first if it is not cached. `release` is called
    /// when the cache is full of held shards, so the caller can let go of shards it keeps open
    /// but does not use; it returns whether it let go of any.
    pub(crate) fn get(&self, s: usize, release: &dyn Fn() -> bool) -> Result<HeldShard> {
        let started = Instant::now();
        let mut waited = false;
        let mut full_since: Option<Instant> = None;
        loop {
            if let Some(held) = self.open_entry(s)? {
                let mut st = self.lock();
                if st.ahead.remove(&s) {
                    // Downloaded ahead: counted as a read-ahead download, not a hit.
                } else if !waited {
                    st.metrics.hits += 1;
                }
                if waited {
                    st.metrics.wait += started.elapsed();
                }
                return Ok(held);
            }
            waited = true;
            match self.download(s, false)? {
                Some(()) => {}
                None => {
                    // Full of shards in use. Let go of ours that are idle, then wait for
                    // others to finish with theirs.
                    if release() {
                        continue;
                    }
                    let since = *full_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > ROOM_WAIT {
                        return Err(self.no_room(s));
                    }
                    let st = self.lock();
                    let _ = self
                        .changed
                        .wait_timeout(st, Duration::from_millis(50))
                        .unwrap_or_else(|p| p.into_inner());
                }
            }
        }
    }

    fn no_room(&self, s: usize) -> Error {
        let used = usage(&self.root).map(|u| u.total).unwrap_or(0);
        Error::invalid_argument(format!(
            "shard cache {}: {used} of its {}-byte limit is held by shards in use, and shard {} ({} bytes) does not fit; raise the cache limit (ARROWFEED_CACHE_LIMIT or --cache-limit) or read fewer shards at once",
            self.root.display(),
            self.limit,
            self.entries[s].name,
            self.entries[s].bytes
        ))
    }

    /// Opens the cached entry of shard `s` with a shared lock, or `None` when it is not there.
    fn open_entry(&self, s: usize) -> Result<Option<HeldShard>> {
        let path = self.entry_path(s);
        loop {
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Error::io(&path, e)),
            };
            file.lock_shared().map_err(|e| Error::io(&path, e))?;
            // Eviction may have removed the name between our open and our lock: then this
            // file is an orphan, and the shard must be fetched again.
            if !same_file(&file, &path) {
                continue;
            }
            let len = file.metadata().map_err(|e| Error::io(&path, e))?.len();
            if len != self.entries[s].bytes {
                // Not ours to trust (a changed file): remove it if nobody holds it.
                drop(file);
                remove_if_unheld(&path);
                return Ok(None);
            }
            // Recency for eviction; a failure only makes this entry look older.
            let _ = file.set_modified(SystemTime::now());
            return Ok(Some(HeldShard { file, path }));
        }
    }

    /// Downloads shard `s` into the cache unless another process is doing so (then waits for
    /// it). `Ok(None)` when there is no room without evicting shards in use (for read ahead:
    /// or shards wanted ahead).
    fn download(&self, s: usize, ahead: bool) -> Result<Option<()>> {
        let entry = &self.entries[s];
        if entry.bytes > self.limit {
            return Err(Error::invalid_argument(format!(
                "shard {} of {} is {} bytes, more than the {}-byte shard cache limit; raise the limit (ARROWFEED_CACHE_LIMIT or --cache-limit)",
                entry.name,
                self.objects.url(),
                entry.bytes,
                self.limit
            )));
        }
        let (part, part_path) = match self.reserve(s, ahead)? {
            Room::Present => return Ok(Some(())),
            Room::Full => return Ok(None),
            Room::Busy(part_path) => {
                // Wait for the other download: its exclusive lock goes when it ends, either
                // way. Then look again.
                if let Ok(f) = File::open(&part_path) {
                    let _ = f.lock_shared();
                }
                return Ok(Some(()));
            }
            Room::Reserved(f, p) => (f, p),
        };
        let result = self.fetch_into(s, &part, &part_path);
        match result {
            Ok(()) => {
                let final_path = self.entry_path(s);
                // Published under the root's lock, like every reservation: a directory read
                // that meets a rename may see neither name, and `usage` (always under this
                // lock) missing a whole shard would let the cache pass its limit (seen with
                // two processes sharing one: five shards in a four-shard limit).
                let root_lock = File::open(&self.root).map_err(|e| Error::io(&self.root, e))?;
                root_lock.lock().map_err(|e| Error::io(&self.root, e))?;
                std::fs::rename(&part_path, &final_path).map_err(|e| {
                    let _ = std::fs::remove_file(&part_path);
                    Error::io(&final_path, e)
                })?;
                drop(root_lock);
                let mut st = self.lock();
                st.metrics.downloads += 1;
                st.metrics.bytes_downloaded += entry.bytes;
                if ahead {
                    st.metrics.read_ahead += 1;
                }
            }
            Err(e) => {
                let _ = std::fs::remove_file(&part_path);
                self.changed.notify_all();
                return Err(e);
            }
        }
        drop(part);
        self.changed.notify_all();
        Ok(Some(()))
    }

    /// Under the cache root's exclusive lock: makes room for shard `s` and reserves it as a
    /// full-size `.part` file held with an exclusive lock.
    fn reserve(&self, s: usize, ahead: bool) -> Result<Room> {
        let root_lock = File::open(&self.root).map_err(|e| Error::io(&self.root, e))?;
        root_lock.lock().map_err(|e| Error::io(&self.root, e))?;
        if self.entry_path(s).exists() {
            return Ok(Room::Present);
        }
        let part_path = self.part_path(s);
        if let Ok(f) = File::open(&part_path) {
            match f.try_lock() {
                Ok(()) => {
                    // A crashed download's leftover: nobody holds it.
                    drop(f);
                    let _ = std::fs::remove_file(&part_path);
                }
                Err(_) => return Ok(Room::Busy(part_path)),
            }
        }
        reclaim_parts(&self.root);
        let need = self.entries[s].bytes;
        let mut u = usage(&self.root)?;
        if u.total + need > self.limit {
            let protected: HashSet<PathBuf> = if ahead {
                let st = self.lock();
                st.ahead
                    .iter()
                    .filter(|&&k| k != s)
                    .map(|&k| self.entry_path(k))
                    .collect()
            } else {
                HashSet::new()
            };
            u.entries.sort_by_key(|e| e.modified);
            for e in &u.entries {
                if u.total + need <= self.limit {
                    break;
                }
                if protected.contains(&e.path) {
                    continue;
                }
                if remove_if_unheld(&e.path) {
                    u.total -= e.bytes;
                    self.lock().metrics.evictions += 1;
                }
            }
            if u.total + need > self.limit {
                return Ok(Room::Full);
            }
        }
        let part = FsOpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&part_path)
            .map_err(|e| Error::io(&part_path, e))?;
        part.lock().map_err(|e| Error::io(&part_path, e))?;
        // The reservation: the full size counts against the limit from now on.
        part.set_len(need).map_err(|e| Error::io(&part_path, e))?;
        Ok(Room::Reserved(part, part_path))
    }

    /// Fills `part` with shard `s` by parallel range requests and checks its checksum.
    fn fetch_into(&self, s: usize, part: &File, part_path: &Path) -> Result<()> {
        use futures::StreamExt;
        let entry = &self.entries[s];
        let url = self.objects.url_of(&entry.name);
        let source: Arc<dyn ByteSource> =
            futures::executor::block_on(self.objects.open(&entry.name))?;
        let size = futures::executor::block_on(source.size())?;
        if size != entry.bytes {
            return Err(Error::corrupt(
                url.as_str(),
                format!(
                    "the object is {size} bytes, the manifest says {} (replaced or truncated?)",
                    entry.bytes
                ),
            ));
        }
        let ranges: Vec<std::ops::Range<u64>> = (0..size)
            .step_by(DOWNLOAD_PART_BYTES as usize)
            .map(|start| start..(start + DOWNLOAD_PART_BYTES).min(size))
            .collect();
        let mut reads = futures::stream::iter(ranges.into_iter().map(|r| {
            let source = source.clone();
            async move { source.read(r.clone()).await.map(|b| (r.start, b)) }
        }))
        .buffer_unordered(self.parallelism);
        futures::executor::block_on(async {
            while let Some(got) = reads.next().await {
                let (at, bytes) = got?;
                write_at(part, &bytes, at).map_err(|e| Error::io(part_path, e))?;
            }
            Ok::<(), Error>(())
        })?;
        let got = hash_file(part, size).map_err(|e| Error::io(part_path, e))?;
        if got != entry.xxh3 {
            return Err(Error::corrupt(
                url.as_str(),
                format!(
                    "the downloaded shard's xxh3 is {got:016x}, the manifest says {:016x}; the copy was removed from the cache",
                    entry.xxh3
                ),
            ));
        }
        Ok(())
    }

    /// Asks for shards `wanted` to be downloaded ahead, in this order, skipping those cached,
    /// queued or in progress.
    pub(crate) fn want(&self, wanted: &[usize]) {
        let mut st = self.lock();
        let mut added = false;
        for &s in wanted {
            if st.ahead.contains(&s) || self.entry_path(s).exists() {
                continue;
            }
            st.ahead.insert(s);
            st.queue.push_back(s);
            added = true;
        }
        drop(st);
        if added {
            self.changed.notify_all();
        }
    }

    /// Drops a shard from the read-ahead set (it was opened, or read ahead gave up on it).
    fn forget(&self, s: usize) {
        self.lock().ahead.remove(&s);
    }

    /// Stops the read-ahead threads (they hold only a weak reference and exit on their own
    /// once the cache is gone; this makes them notice at once).
    pub(crate) fn close(&self) {
        self.lock().closing = true;
        self.changed.notify_all();
    }
}

/// One read-ahead thread: takes queued shards and downloads them while there is room.
fn read_ahead_loop(cache: std::sync::Weak<ShardCache>) {
    loop {
        let Some(c) = cache.upgrade() else { return };
        let next = {
            let mut st = c.lock();
            if st.closing {
                return;
            }
            match st.queue.pop_front() {
                Some(s) => Some(s),
                None => {
                    let _ = c
                        .changed
                        .wait_timeout(st, Duration::from_millis(200))
                        .unwrap_or_else(|p| p.into_inner());
                    None
                }
            }
        };
        let Some(s) = next else { continue };
        match c.download(s, true) {
            Ok(Some(())) => {}
            Ok(None) => {
                // No room yet: try again later, after the shards ahead of it in the queue.
                let mut st = c.lock();
                if !st.closing {
                    st.queue.push_back(s);
                }
                let _ = c
                    .changed
                    .wait_timeout(st, Duration::from_millis(100))
                    .unwrap_or_else(|p| p.into_inner());
            }
            // The reader that needs the shard will download it and report the error.
            Err(_) => c.forget(s),
        }
    }
}

/// Bytes on disk under the cache root, and its entries (not `.part` files, which count but
/// are never evicted).
struct Usage {
    total: u64,
    entries: Vec<UsageEntry>,
}

struct UsageEntry {
    path: PathBuf,
    bytes: u64,
    modified: SystemTime,
}

fn usage(root: &Path) -> Result<Usage> {
    let mut u = Usage {
        total: 0,
        entries: Vec::new(),
    };
    let stores = std::fs::read_dir(root).map_err(|e| Error::io(root, e))?;
    for store in stores.flatten() {
        let Ok(files) = std::fs::read_dir(store.path()) else {
            continue;
        };
        for f in files.flatten() {
            let Ok(meta) = f.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            u.total += meta.len();
            if !f.file_name().to_string_lossy().starts_with('.') {
                u.entries.push(UsageEntry {
                    path: f.path(),
                    bytes: meta.len(),
                    modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                });
            }
        }
    }
    Ok(u)
}

/// Removes every `.part` file under `root` that nobody holds: downloads that died (of any
/// shard, of any store in the cache), whose reserved bytes would otherwise count against the
/// limit until the same shard is downloaded again. A live download holds its `.part`
/// exclusively, so it is never touched. Called under the root's lock, as every download
/// starts.
fn reclaim_parts(root: &Path) {
    let Ok(stores) = std::fs::read_dir(root) else {
        return;
    };
    for store in stores.flatten() {
        let Ok(files) = std::fs::read_dir(store.path()) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".part") {
                remove_if_unheld(&f.path());
            }
        }
    }
}

/// Removes `path` if nobody holds a lock on it; true if removed.
fn remove_if_unheld(path: &Path) -> bool {
    let Ok(f) = File::open(path) else {
        return false;
    };
    if f.try_lock().is_err() {
        return false;
    }
    // Held exclusively: no reader can be between its open and its shared lock with this
    // name (it would see another file after its lock: see `open_entry`).
    std::fs::remove_file(path).is_ok()
}

/// True when the open `file` is the one `path` names now.
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

fn write_at(file: &File, data: &[u8], at: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::write_all_at(file, data, at)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < data.len() {
            done +=
                std::os::windows::fs::FileExt::seek_write(file, &data[done..], at + done as u64)?;
        }
        Ok(())
    }
}

fn hash_file(file: &File, size: u64) -> std::io::Result<u64> {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < size {
        let n = ((size - at) as usize).min(buf.len());
        read_exact_at(file, &mut buf[..n], at)?;
        hasher.update(&buf[..n]);
        at += n as u64;
    }
    Ok(hasher.digest())
}

fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, at)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buf.len() {
            let n =
                std::os::windows::fs::FileExt::seek_read(file, &mut buf[done..], at + done as u64)?;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_every_unit_and_refuse_nonsense() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("500MiB"), Ok(500 << 20));
        assert_eq!(parse_size("16GB"), Ok(16_000_000_000));
        assert_eq!(parse_size("1.5 GiB"), Ok(3 << 29));
        assert_eq!(parse_size(" 2k "), Ok(2000));
        for bad in ["", "MiB", "12 parsecs", "-5", "1e400"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }
}
