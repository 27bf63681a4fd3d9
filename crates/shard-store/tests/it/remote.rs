//! Remote stores through the shard cache: equal to local, bounded on disk, reused across runs,
//! shared by processes, checked against the manifest. The remote side here is a directory on
//! disk served through `ObjectDir` (the real S3 server is exercised by the facade's tests);
//! faults are injected around it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arrowfeed_shard_store::{CacheOptions, OpenOptions, ShardStore, StoreWriter};
use arrowfeed_traits::{ByteSource, Error, MemorySource, ObjectDir, RandomAccess, Result};
use bytes::Bytes;
use futures::future::BoxFuture;

use crate::common::*;

/// A directory on disk as an `ObjectDir`, counting what is read from it.
#[derive(Debug)]
pub struct DiskDir {
    root: PathBuf,
    url: String,
    pub bytes_read: Arc<AtomicU64>,
}

impl DiskDir {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            url: format!("test://{}", root.display()),
            bytes_read: Arc::default(),
        }
    }
}

/// A source that counts the bytes read through it.
#[derive(Debug)]
struct CountingSource(MemorySource, Arc<AtomicU64>);

impl ByteSource for CountingSource {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn size(&self) -> BoxFuture<'_, Result<u64>> {
        self.0.size()
    }
    fn read(&self, r: std::ops::Range<u64>) -> BoxFuture<'_, Result<Bytes>> {
        self.1.fetch_add(r.end - r.start, Ordering::Relaxed);
        self.0.read(r)
    }
}

impl ObjectDir for DiskDir {
    fn url(&self) -> &str {
        &self.url
    }
    fn open<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Arc<dyn ByteSource>>> {
        let path = self.root.join(name);
        let url = self.url_of(name);
        let counter = self.bytes_read.clone();
        Box::pin(async move {
            match std::fs::read(&path) {
                Ok(data) => Ok(
                    Arc::new(CountingSource(MemorySource::new(url, data), counter))
                        as Arc<dyn ByteSource>,
                ),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    Err(arrowfeed_traits::not_found(url))
                }
                Err(e) => Err(Error::io(path, e)),
            }
        })
    }
    fn put_file<'a>(&'a self, name: &'a str, from: &'a Path) -> BoxFuture<'a, Result<()>> {
        let to = self.root.join(name);
        Box::pin(async move {
            std::fs::copy(from, &to).map_err(|e| Error::io(&to, e))?;
            Ok(())
        })
    }
}

/// A store of `shards` shards of 500 rows uploaded to a fresh `DiskDir`, and the same store
/// opened locally.
fn remote_fixture(shards: usize) -> (tempfile::TempDir, Arc<DiskDir>, ShardStore) {
    let tmp = tempfile::tempdir().unwrap();
    let local = write(
        &tmp.path().join("local"),
        input(&vec![500; shards]),
        &StoreWriter::new().shard_rows(500).batch_rows(128),
    );
    let remote = tmp.path().join("remote");
    std::fs::create_dir(&remote).unwrap();
    let objects = Arc::new(DiskDir::new(&remote));
    let w = StoreWriter::new().shard_rows(500).batch_rows(128);
    let reader = arrowfeed_traits::RandomAccess::slice(&local, 0, local.num_rows(), None).unwrap();
    let input = arrow_array::RecordBatchIterator::new([Ok(reader)], local.schema());
    w.write_to(objects.as_ref(), input, |_| {}).unwrap();
    (tmp, objects, local)
}

/// Bytes on disk in the cache at `dir`. Another process may evict a shard or publish a
/// download (a rename) between the listing and the size: such a file is not on disk under
/// that name any more, and counts nothing. A listing taken while a download is published may
/// show the file under both names (a directory read is not a snapshot), and each name may
/// still resolve when it is looked up: each file (inode) counts once.
fn cache_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let mut files = std::collections::HashMap::new();
    for store in std::fs::read_dir(dir).unwrap().flatten() {
        for f in std::fs::read_dir(store.path()).unwrap().flatten() {
            match std::fs::metadata(f.path()) {
                Ok(m) => {
                    files.insert((m.dev(), m.ino()), m.len());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => panic!("{}: {e}", f.path().display()),
            }
        }
    }
    files.values().sum()
}

fn cache_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for store in std::fs::read_dir(dir).unwrap().flatten() {
        for f in std::fs::read_dir(store.path()).unwrap().flatten() {
            out.push(f.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

fn shard_bytes(objects: &DiskDir) -> u64 {
    std::fs::read_dir(&objects.root)
        .unwrap()
        .flatten()
        .filter(|f| f.file_name().to_string_lossy().starts_with("shard-"))
        .map(|f| f.metadata().unwrap().len())
        .max()
        .unwrap()
}

fn open(objects: &Arc<DiskDir>, cache: &Path, limit: u64) -> ShardStore {
    ShardStore::open_remote(
        objects.clone(),
        OpenOptions::default(),
        &CacheOptions::default()
            .dir(cache)
            .limit(limit)
            .read_ahead_threads(1),
    )
    .unwrap()
}

#[test]
fn a_remote_store_reads_what_the_local_one_reads() {
    let (tmp, objects, local) = remote_fixture(6);
    let cache = tmp.path().join("cache");
    let store = open(&objects, &cache, 1 << 30);
    assert!(store.is_remote());
    assert_eq!(store.num_rows(), local.num_rows());
    assert_eq!(store.partitions(), local.partitions());
    let all = local.slice(0, local.num_rows(), None).unwrap();
    arrowfeed_traits::testkit::check_random_access(&store, &all);
    let iter: Vec<_> = store
        .iter_shards(Some(3))
        .collect::<std::result::Result<_, _>>()
        .unwrap();
    let want: Vec<_> = local
        .iter_shards(Some(3))
        .collect::<std::result::Result<_, _>>()
        .unwrap();
    assert_eq!(iter, want);
    assert!(store.verify().unwrap().is_ok());
}

#[test]
fn the_cache_never_holds_more_than_its_limit_and_is_reused_by_the_next_run() {
    let (tmp, objects, local) = remote_fixture(10);
    let cache = tmp.path().join("cache");
    let limit = 3 * shard_bytes(&objects) + 1000;
    let n = local.num_rows();
    {
        let store = open(&objects, &cache, limit);
        // Random gathers touching every shard, over and over: shards come and go.
        let mut x = 7u64;
        for _ in 0..60 {
            let rows: Vec<u64> = (0..40)
                .map(|_| {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (x >> 33) % n
                })
                .collect();
            let got = store.take(&rows, None).unwrap();
            assert_eq!(got, local.take(&rows, None).unwrap());
            let on_disk = cache_bytes(&cache);
            assert!(on_disk <= limit, "{on_disk} bytes on disk, limit {limit}");
        }
        let m = store.cache_metrics().unwrap();
        assert!(m.evictions > 0 && m.downloads > 10, "{m:?}");
    }
    // A second run over shards still cached downloads nothing.
    let before = objects.bytes_read.load(Ordering::Relaxed);
    let kept: Vec<String> = cache_files(&cache);
    assert!(
        !kept.is_empty() && kept.iter().all(|f| !f.starts_with('.')),
        "{kept:?}"
    );
    let store = open(&objects, &cache, limit);
    let cached_shard = kept[0].split('.').next().unwrap().to_string();
    let s = store
        .shard_rows()
        .iter()
        .position(|(f, _)| f.starts_with(&cached_shard))
        .unwrap();
    let first_row: u64 = store.shard_rows()[..s].iter().map(|(_, r)| r).sum();
    store.take(&[first_row, first_row + 3], None).unwrap();
    let m = store.cache_metrics().unwrap();
    assert_eq!((m.downloads, m.hits), (0, 1), "{m:?}");
    // The manifest is read again, the shard is not.
    let read = objects.bytes_read.load(Ordering::Relaxed) - before;
    assert!(read < 10_000, "read {read} bytes from the remote");
}

#[test]
fn a_damaged_shard_on_the_server_is_corrupt_and_leaves_nothing_in_the_cache() {
    let (tmp, objects, _) = remote_fixture(3);
    let shard = std::fs::read_dir(&objects.root)
        .unwrap()
        .flatten()
        .map(|f| f.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("shard-00001")
        })
        .unwrap();
    let mut data = std::fs::read(&shard).unwrap();
    let k = data.len() / 2;
    data[k] ^= 0x40;
    std::fs::write(&shard, data).unwrap();
    let cache = tmp.path().join("cache");
    let store = open(&objects, &cache, 1 << 30);
    let err = store.take(&[600], None).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("shard-00001") && msg.contains("xxh3"), "{msg}");
    assert!(
        cache_files(&cache).is_empty(),
        "left behind: {:?}",
        cache_files(&cache)
    );
    // Shards that are fine still read.
    store.take(&[10, 1200], None).unwrap();
    let report = store.verify().unwrap();
    assert_eq!(report.bad.len(), 1, "{report:?}");
}

#[test]
fn a_shard_larger_than_the_limit_is_a_clear_error() {
    let (tmp, objects, _) = remote_fixture(2);
    let store = open(&objects, &tmp.path().join("cache"), 1000);
    let err = store.take(&[0], None).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, Error::InvalidArgument { .. }) && msg.contains("cache limit"),
        "{msg}"
    );
}

#[test]
fn a_crashed_download_is_reclaimed() {
    let (tmp, objects, local) = remote_fixture(2);
    let cache = tmp.path().join("cache");
    let store = open(&objects, &cache, 1 << 30);
    store.take(&[0], None).unwrap();
    let store_dir = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    // What a download killed half way leaves: a `.part` file nobody holds.
    let second = &store.shard_rows()[1].0;
    let xxh = {
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(objects.root.join("manifest.json")).unwrap())
                .unwrap();
        m["shards"][1]["xxh3"].as_str().unwrap().to_string()
    };
    let stale = store_dir.join(format!(".{second}.{xxh}.part"));
    std::fs::write(&stale, b"half a shard").unwrap();
    // Crashed downloads of shards nobody asks for again (another store's, here), and a live
    // download's file (held, as a downloading process holds it).
    let other_store = cache.join("other-store");
    std::fs::create_dir_all(&other_store).unwrap();
    let orphan = other_store.join(".shard-00007.arrow.0123456789abcdef.part");
    std::fs::write(&orphan, vec![0u8; 4096]).unwrap();
    let live = other_store.join(".shard-00008.arrow.0123456789abcdef.part");
    std::fs::write(&live, b"in progress").unwrap();
    let held = std::fs::File::open(&live).unwrap();
    held.lock().unwrap();
    let got = store.take(&[700], None).unwrap();
    assert_eq!(got, local.take(&[700], None).unwrap());
    assert!(!stale.exists(), "the crashed download's file was removed");
    assert!(
        !orphan.exists(),
        "another shard's crashed download was removed"
    );
    assert!(live.exists(), "a live download's file is left alone");
    drop(held);
    assert_eq!(
        cache_files(&cache)
            .iter()
            .filter(|f| f.ends_with(".part"))
            .collect::<Vec<_>>(),
        [".shard-00008.arrow.0123456789abcdef.part"]
    );
}

#[test]
fn will_need_downloads_ahead_of_use() {
    let (tmp, objects, _) = remote_fixture(4);
    let store = open(&objects, &tmp.path().join("cache"), 1 << 30);
    store.will_need(&[1600, 1700, 20]);
    let t = std::time::Instant::now();
    while store.cache_metrics().unwrap().read_ahead < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "no read ahead happened"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    store.take(&[1601, 21], None).unwrap();
    let m = store.cache_metrics().unwrap();
    assert_eq!(m.downloads, 2, "{m:?}");
    assert_eq!(m.read_ahead, 2, "{m:?}");
}

/// Run as a child process by the test below: reads every row of the store in a scrambled
/// order through the shared cache, and checks them against the local copy.
#[test]
fn child_reader_of_a_shared_cache() {
    let Ok(spec) = std::env::var("ARROWFEED_TEST_SHARED_CACHE") else {
        return;
    };
    let mut parts = spec.split('|');
    let (remote, cache, local, limit, seed) = (
        PathBuf::from(parts.next().unwrap()),
        PathBuf::from(parts.next().unwrap()),
        PathBuf::from(parts.next().unwrap()),
        parts.next().unwrap().parse::<u64>().unwrap(),
        parts.next().unwrap().parse::<u64>().unwrap(),
    );
    let objects = Arc::new(DiskDir::new(&remote));
    let store = open(&objects, &cache, limit);
    let local = ShardStore::open(local).unwrap();
    let n = local.num_rows();
    let mut x = seed;
    for _ in 0..80 {
        let rows: Vec<u64> = (0..30)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                (x >> 33) % n
            })
            .collect();
        assert_eq!(
            store.take(&rows, None).unwrap(),
            local.take(&rows, None).unwrap()
        );
        let held = cache_bytes(&cache);
        if held > limit {
            let mut listing = Vec::new();
            for store in std::fs::read_dir(&cache).unwrap().flatten() {
                for f in std::fs::read_dir(store.path()).unwrap().flatten() {
                    listing.push((f.file_name(), f.metadata().map(|m| m.len()).ok()));
                }
            }
            panic!("{held} bytes in the cache, limit {limit}: {listing:?}");
        }
    }
}

#[test]
fn two_processes_share_one_cache() {
    let (tmp, objects, _) = remote_fixture(8);
    let cache = tmp.path().join("cache");
    let limit = 4 * shard_bytes(&objects) + 1000;
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2u64)
        .map(|k| {
            std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "remote::child_reader_of_a_shared_cache",
                    "--nocapture",
                ])
                .env(
                    "ARROWFEED_TEST_SHARED_CACHE",
                    format!(
                        "{}|{}|{}|{limit}|{}",
                        objects.root.display(),
                        cache.display(),
                        tmp.path().join("local").display(),
                        k * 1_000_003 + 11
                    ),
                )
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for (k, out) in outputs.iter().enumerate() {
        assert!(
            out.status.success(),
            "child {k} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "child {k} ran nothing:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let left = cache_files(&cache);
    assert!(left.iter().all(|f| !f.starts_with('.')), "{left:?}");
    assert!(cache_bytes(&cache) <= limit);
}
