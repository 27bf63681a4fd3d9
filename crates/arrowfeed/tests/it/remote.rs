//! Every entry point over a real S3 server (SeaweedFS on loopback, started by `cargo xtask
//! test`, configured through the standard `AWS_*` environment): remote reads equal local
//! ones, a remote store streams an epoch through a cache a quarter of its size, and faults are
//! errors naming the URL, never hangs.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arrowfeed::object_store::{RemoteDir, RemoteOptions};
use arrowfeed::prelude::*;
use arrowfeed::shard_store::OpenOptions;
use arrowfeed::traits::testkit::{S3Server, TcpProxy, s3_server};

use crate::common::*;

/// The server, with the environment checked to point the facade's default options at it.
fn server() -> Option<S3Server> {
    let s = s3_server()?;
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .or_else(|_| std::env::var("AWS_ENDPOINT"))
        .expect("cargo xtask test sets AWS_ENDPOINT_URL for the S3 tests");
    assert_eq!(
        endpoint, s.endpoint,
        "AWS_ENDPOINT_URL and ARROWFEED_TEST_S3_ENDPOINT differ"
    );
    Some(s)
}

fn bytes_under(dir: &Path) -> u64 {
    fn walk(p: &Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(p) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => walk(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    }
    walk(dir)
}

#[test]
fn every_kind_of_file_reads_remotely_as_it_reads_locally() {
    let Some(server) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = batches(&[700, 1300, 64]);
    let prefix = server.unique_url("kinds");
    let options = ReadOptions::default()
        .batch_size(500)
        .columns(["image", "id", "tokens"]);
    for path in write_all_kinds(dir.path(), &input) {
        let url = format!("{prefix}/{}", path.file_name().unwrap().to_string_lossy());
        arrowfeed::upload(&path, &url).unwrap();
        assert!(arrowfeed::is_url(&url));
        let local = drain(arrowfeed::open_with(&path, &options).unwrap());
        let remote = drain(arrowfeed::open_with(&url, &options).unwrap());
        assert_eq!(remote, local, "{url}");
        let (a, b) = (
            arrowfeed::info(&path).unwrap(),
            arrowfeed::info(&url).unwrap(),
        );
        assert_eq!(
            (
                a.format,
                a.rows,
                a.unit_rows,
                a.file_bytes,
                a.compression,
                a.schema
            ),
            (
                b.format,
                b.rows,
                b.unit_rows,
                b.file_bytes,
                b.compression,
                b.schema
            ),
            "{url}"
        );
        if a.format != Format::ArrowStream {
            let scanned = drain(arrowfeed::scan(&url, &options).unwrap().reader().unwrap());
            assert_eq!(concat(&scanned), concat(&local), "scan of {url}");
        }
    }
}

#[test]
fn a_missing_object_names_its_url() {
    let Some(server) = server() else { return };
    let url = format!("{}/absent.parquet", server.unique_url("missing"));
    for err in [
        arrowfeed::open(&url).unwrap_err(),
        arrowfeed::info(&url).unwrap_err(),
    ] {
        assert_eq!(err.to_string(), format!("{url}: no such object"));
    }
    let store_url = server.unique_url("no-store");
    let err = arrowfeed::store(&store_url).unwrap_err();
    assert!(err.to_string().contains(&store_url), "{err}");
    assert!(!arrowfeed::is_store(&store_url).unwrap());
}

/// A store of about 1.4 MB in 16 shards, written locally and to the server.
fn stores(server: &S3Server, dir: &Path) -> (ShardStore, String) {
    let local_dir = dir.join("local");
    let writer = StoreWriter::new().shard_bytes(60_000).batch_rows(64);
    let input = batches(&[1000; 4]);
    let reader =
        arrow_array::RecordBatchIterator::new(input.into_iter().map(Ok), batch(0, 0).schema());
    arrowfeed::write_store(&local_dir, reader, &writer, |_| {}).unwrap();
    let local = ShardStore::open(&local_dir).unwrap();
    let url = server.unique_url("store");
    let all = local.iter_shards(None);
    arrowfeed::write_store(&url, all, &writer, |_| {}).unwrap();
    assert!(arrowfeed::is_store(&url).unwrap());
    (local, url)
}

#[test]
fn a_remote_store_streams_an_epoch_through_a_quarter_sized_cache() {
    let Some(server) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (local, url) = stores(&server, dir.path());
    let total = local.total_bytes().unwrap();
    assert!(local.num_shards() >= 12, "{} shards", local.num_shards());
    let cache_dir = dir.path().join("cache");
    let limit = total / 4;
    let cache = CacheOptions::default().dir(&cache_dir).limit(limit);
    let remote = arrowfeed::store_with(&url, OpenOptions::default(), &cache).unwrap();
    assert!(remote.is_remote());
    assert_eq!(remote.num_rows(), local.num_rows());
    assert_eq!(remote.partitions(), local.partitions());

    // Watch the bytes on disk through the whole epoch.
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (peak, done, cache_dir) = (peak.clone(), done.clone(), cache_dir.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(bytes_under(&cache_dir), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let build = |ds: Arc<dyn RandomAccess>| {
        Loader::builder(ds)
            .batch_size(100)
            .shuffle(Shuffle::Local { window: 2 })
            .seed(11)
            .workers(2)
            .build()
            .unwrap()
    };
    let remote = Arc::new(remote);
    let got = drain(build(remote.clone()).epoch(3).unwrap());
    done.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    let want = drain(build(Arc::new(local.clone())).epoch(3).unwrap());
    assert_eq!(got, want, "the remote epoch equals the local one");
    let peak = peak.load(Ordering::Relaxed);
    assert!(peak <= limit, "{peak} bytes in the cache, limit {limit}");
    let m = remote.cache_metrics().unwrap();
    assert!(m.downloads >= local.num_shards() as u64, "{m:?}");
    assert!(
        m.read_ahead > 0,
        "the Loader's hints downloaded ahead: {m:?}"
    );

    // Random access equals the local store, and a global shuffle works over the small cache.
    let all = local.slice(0, local.num_rows(), None).unwrap();
    arrowfeed::traits::testkit::check_random_access(remote.as_ref(), &all);
    let global = |ds: Arc<dyn RandomAccess>| {
        Loader::builder(ds)
            .batch_size(256)
            .seed(2)
            .build()
            .unwrap()
            .epoch(0)
            .unwrap()
    };
    assert_eq!(
        drain(global(remote.clone()).take(4)),
        drain(global(Arc::new(local.clone())).take(4))
    );
    assert!(bytes_under(&cache_dir) <= limit);
    assert!(remote.verify().unwrap().is_ok());
}

#[test]
fn a_damaged_shard_on_the_server_is_corrupt_and_removed_from_the_cache() {
    let Some(server) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (local, url) = stores(&server, dir.path());
    // Replace one shard on the server with a damaged copy of itself.
    let remote = arrowfeed::store_with(
        &url,
        OpenOptions::default(),
        &CacheOptions::default().dir(dir.path().join("c1")),
    )
    .unwrap();
    let name = remote.shard_rows()[2].0.clone();
    let first: u64 = remote.shard_rows()[..2].iter().map(|(_, r)| r).sum();
    // The same writer on the same rows: shard 2 of the local store is shard 2 of the remote.
    let local_shard = local.dir().join(&local.shard_rows()[2].0);
    let mut data = std::fs::read(&local_shard).unwrap();
    let k = data.len() / 3;
    data[k] ^= 0x20;
    let damaged = dir.path().join("damaged.arrow");
    std::fs::write(&damaged, &data).unwrap();
    arrowfeed::upload(&damaged, &format!("{url}/{name}")).unwrap();
    let cache_dir = dir.path().join("c2");
    let remote = arrowfeed::store_with(
        &url,
        OpenOptions::default(),
        &CacheOptions::default().dir(&cache_dir),
    )
    .unwrap();
    let err = remote.take(&[first + 1], None).unwrap_err();
    assert!(matches!(err, arrowfeed::Error::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains(&name), "{err}");
    assert_eq!(
        bytes_under(&cache_dir),
        0,
        "nothing of the bad download is kept"
    );
    assert_eq!(remote.verify().unwrap().bad.len(), 1);
}

#[test]
fn a_server_that_goes_away_mid_epoch_ends_it_with_an_error() {
    let Some(server) = server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (_, url) = stores(&server, dir.path());
    let proxy = TcpProxy::start(server.endpoint.trim_start_matches("http://"));
    let options = RemoteOptions::default()
        .config("aws_endpoint", proxy.endpoint())
        .max_retries(2)
        .retry_timeout(Duration::from_secs(5))
        .request_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(1));
    let objects = Arc::new(RemoteDir::new(&url, &options).unwrap());
    let store = ShardStore::open_remote(
        objects,
        OpenOptions::default(),
        &CacheOptions::default()
            .dir(dir.path().join("cache"))
            .read_ahead_threads(0),
    )
    .unwrap();
    let loader = Loader::builder(Arc::new(store))
        .batch_size(100)
        .shuffle(Shuffle::None)
        .read_ahead_rows(0)
        .build()
        .unwrap();
    let mut epoch = loader.epoch(0).unwrap();
    let first = epoch.next().unwrap();
    assert!(first.is_ok());
    proxy.stop();
    let t = Instant::now();
    let err = epoch
        .find_map(|b| b.err())
        .expect("an error once the server is gone");
    assert!(
        t.elapsed() < Duration::from_secs(60),
        "took {:?}",
        t.elapsed()
    );
    let err = arrowfeed::Error::from_arrow(err);
    assert!(err.to_string().contains(&url), "{err}");
}
