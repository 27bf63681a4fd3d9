//! Tests against a real S3 server on loopback (SeaweedFS, started by `cargo xtask test`), and
//! faults injected in front of it by a TCP proxy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrowfeed_object_store::{RemoteDir, RemoteFile, RemoteOptions};
use arrowfeed_traits::testkit::{S3Server, TcpProxy, check_byte_source, s3_server};
use arrowfeed_traits::{ByteSource, Error, ObjectDir};
use futures::executor::block_on;

fn options(server: &S3Server) -> RemoteOptions {
    RemoteOptions::default()
        .config("aws_endpoint", &server.endpoint)
        .config("aws_allow_http", "true")
        .config("aws_region", "us-east-1")
        .config("aws_access_key_id", &server.access_key)
        .config("aws_secret_access_key", &server.secret_key)
}

/// Bytes that differ at every offset a test might read.
fn pattern(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| {
            (i as u64)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(17) as u8
        })
        .collect()
}

fn upload(dir: &RemoteDir, name: &str, data: &[u8]) {
    let tmp = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(tmp.path(), data).expect("write");
    block_on(dir.put_file(name, tmp.path())).expect("upload");
}

#[test]
fn remote_files_conform_to_byte_source_small_and_multipart() {
    let Some(server) = s3_server() else { return };
    let opts = options(&server);
    let dir = RemoteDir::new(&server.unique_url("conform"), &opts).expect("dir");
    // One request, and a multipart upload of three parts (8 MiB each, the last short).
    for (name, n) in [("small.bin", 10_000usize), ("large.bin", 20 << 20)] {
        let data = pattern(n);
        upload(&dir, name, &data);
        let file = dir.open_blocking(name).expect("open");
        assert_eq!(file.len(), n as u64);
        check_byte_source(&file, &data);
        let via_trait = block_on(dir.open(name)).expect("open via the trait");
        assert_eq!(block_on(via_trait.size()).expect("size"), n as u64);
        assert_eq!(&block_on(dir.get(name)).expect("get")[..], &data[..]);
    }
}

#[test]
fn a_missing_object_is_not_found_naming_the_url() {
    let Some(server) = s3_server() else { return };
    let url = format!("{}/nothing-here.parquet", server.unique_url("missing"));
    let err = RemoteFile::open(&url, &options(&server)).expect_err("missing");
    match &err {
        Error::Io { path, source } => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound, "{err}");
            assert_eq!(path.to_str(), Some(url.as_str()));
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert_eq!(err.to_string(), format!("{url}: no such object"));
}

#[test]
fn a_wrong_secret_is_refused_naming_the_url() {
    let Some(server) = s3_server() else { return };
    let dir = RemoteDir::new(&server.unique_url("refused"), &options(&server)).expect("dir");
    upload(&dir, "x.bin", b"hello");
    let url = dir.url_of("x.bin");
    let wrong = options(&server).config("aws_secret_access_key", "not-the-secret");
    let err = RemoteFile::open(&url, &wrong).expect_err("refused");
    match &err {
        Error::Io { source, .. } => {
            assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied, "{err}")
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.starts_with(&url) && msg.contains("refused"), "{msg}");
}

#[test]
fn the_environment_configures_s3() {
    let Some(server) = s3_server() else { return };
    // xtask sets the standard variables for the server; nothing explicit here but the
    // endpoint, which a user would also put in the environment (`AWS_ENDPOINT_URL`).
    for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
        assert!(std::env::var_os(var).is_some(), "{var} is set by xtask");
    }
    let dir = RemoteDir::new(&server.unique_url("env"), &options(&server)).expect("dir");
    upload(&dir, "e.bin", b"from the environment");
    let plain = RemoteOptions::default()
        .config("aws_endpoint", &server.endpoint)
        .config("aws_allow_http", "true");
    let file = RemoteFile::open(&dir.url_of("e.bin"), &plain).expect("credentials from env");
    assert_eq!(
        &block_on(file.read(5..16)).expect("read")[..],
        b"the environ"
    );
}

#[test]
fn a_server_that_goes_away_mid_read_is_an_error_after_bounded_retries() {
    let Some(server) = s3_server() else { return };
    let dir = RemoteDir::new(&server.unique_url("away"), &options(&server)).expect("dir");
    let data = pattern(4 << 20);
    upload(&dir, "a.bin", &data);
    let upstream = server.endpoint.trim_start_matches("http://").to_string();
    let proxy = TcpProxy::start(&upstream);
    let opts = options(&server)
        .config("aws_endpoint", proxy.endpoint())
        .max_retries(2)
        .retry_timeout(Duration::from_secs(5))
        .request_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(1));
    let file = RemoteFile::open(&dir.url_of("a.bin"), &opts).expect("open through the proxy");
    assert_eq!(
        &block_on(file.read(0..1000)).expect("read")[..],
        &data[..1000]
    );
    proxy.stop();
    let t = Instant::now();
    let err = block_on(file.read(1000..2 << 20)).expect_err("the server is gone");
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "gave up after {took:?}, more than the retry bounds allow"
    );
    assert!(err.to_string().contains(&dir.url_of("a.bin")), "{err}");
}

#[test]
fn reads_many_at_once_from_many_threads() {
    let Some(server) = s3_server() else { return };
    let dir = RemoteDir::new(&server.unique_url("threads"), &options(&server)).expect("dir");
    let data = Arc::new(pattern(1 << 20));
    upload(&dir, "t.bin", &data);
    let file = Arc::new(dir.open_blocking("t.bin").expect("open"));
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let (file, data) = (file.clone(), data.clone());
            std::thread::spawn(move || {
                for k in 0..16u64 {
                    let start = (t * 65_536 + k * 4_093) % (1 << 20);
                    let end = (start + 10_000).min(1 << 20);
                    let got = block_on(file.read(start..end)).expect("read");
                    assert_eq!(&got[..], &data[start as usize..end as usize]);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("reader thread");
    }
}

#[test]
fn bad_urls_and_settings_are_invalid_arguments() {
    for url in ["ftp://host/x", "s3://", "not a url"] {
        let err = RemoteFile::open(url, &RemoteOptions::default()).expect_err(url);
        assert!(
            matches!(err, Error::InvalidArgument { .. }),
            "{url}: {err:?}"
        );
    }
    let err = RemoteDir::new(
        "s3://b/p",
        &RemoteOptions::default().max_requests_in_flight(0),
    )
    .expect_err("zero");
    assert!(err.to_string().contains("max_requests_in_flight"), "{err}");
    let err = RemoteDir::new(
        "s3://b/p",
        &RemoteOptions::default().config("no_such_key", "1"),
    )
    .expect_err("unknown key");
    assert!(err.to_string().contains("no_such_key"), "{err}");
}
