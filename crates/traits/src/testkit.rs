//! A conformance kit: checks that a `RandomAccess` or `ByteSource` keeps its trait's contract.
//!
//! Call these from the implementation's own tests with a reference of what the data should be.
//! They panic with a message saying which part of the contract failed, like `assert!`.

use std::ops::Range;

use arrow_array::RecordBatch;

use crate::{ByteSource, Error, RandomAccess};

fn row_eq(got: &RecordBatch, j: usize, want: &RecordBatch, i: usize) -> bool {
    let g = got.slice(j, 1);
    let w = want.slice(i, 1);
    g.columns().len() == w.columns().len()
        && g.columns()
            .iter()
            .zip(w.columns())
            .all(|(a, b)| a.as_ref() == b.as_ref())
}

fn assert_gather(got: &RecordBatch, want: &RecordBatch, rows: &[u64], what: &str) {
    assert_eq!(got.num_rows(), rows.len(), "{what}: wrong number of rows");
    assert_eq!(got.schema(), want.schema(), "{what}: wrong schema");
    for (j, &i) in rows.iter().enumerate() {
        assert!(
            row_eq(got, j, want, i as usize),
            "{what}: output row {j} should be dataset row {i}"
        );
    }
}

/// A small deterministic generator, so the kit needs no random-number crate.
fn lcg(state: &mut u64) -> u64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *state >> 33
}

/// Checks `ra` against `expected`, which holds every row of the dataset in one batch.
///
/// Covers: schema and row count; partitions covering the rows; `take` with empty, sorted,
/// reversed, duplicated, pseudo-random and partition-crossing indices; `slice` at the edges,
/// empty and whole; projections (a subset, reordered); and the errors for out-of-range indices,
/// out-of-range slices and bad projections.
///
/// # Panics
/// When `ra` breaks the [`RandomAccess`] contract, with a message saying how.
pub fn check_random_access(ra: &dyn RandomAccess, expected: &RecordBatch) {
    let n = expected.num_rows() as u64;
    assert_eq!(ra.schema(), expected.schema(), "schema differs");
    assert_eq!(ra.num_rows(), n, "num_rows differs");

    let parts = ra.partitions();
    let mut next = 0;
    for p in &parts {
        assert_eq!(p.start, next, "partitions must be contiguous: {parts:?}");
        assert!(p.end > p.start, "partitions must be non-empty: {parts:?}");
        next = p.end;
    }
    assert_eq!(next, n, "partitions must cover every row: {parts:?}");

    let ncols = expected.num_columns();
    let mut projections: Vec<Option<Vec<usize>>> = vec![None];
    if ncols > 0 {
        projections.push(Some(vec![ncols - 1]));
        projections.push(Some((0..ncols).rev().collect()));
        projections.push(Some(Vec::new()));
    }
    let mut seed = 0x5eed ^ n;
    for proj in &projections {
        let p = proj.as_deref();
        let want = match p {
            Some(p) => expected.project(p).expect("projection of the reference"),
            None => expected.clone(),
        };
        let mut index_lists: Vec<(&str, Vec<u64>)> = vec![("empty take", vec![])];
        if n > 0 {
            index_lists.push(("sorted take", (0..n).collect()));
            index_lists.push(("reversed take", (0..n).rev().collect()));
            index_lists.push(("duplicated take", vec![0, n - 1, 0, n / 2, n / 2, n - 1]));
            let random = (0..(2 * n).min(500)).map(|_| lcg(&mut seed) % n).collect();
            index_lists.push(("random take", random));
            let edges = parts
                .iter()
                .flat_map(|r| [r.start, r.end - 1])
                .rev()
                .collect();
            index_lists.push(("partition-edge take", edges));
        }
        for (what, idx) in &index_lists {
            let got = ra
                .take(idx, p)
                .unwrap_or_else(|e| panic!("{what} with projection {p:?} failed: {e}"));
            assert_gather(&got, &want, idx, &format!("{what} with projection {p:?}"));
        }

        let mut slices: Vec<Range<u64>> = vec![0..0, 0..n, n..n];
        if n > 0 {
            slices.push(0..1);
            slices.push(n - 1..n);
            slices.push(n / 3..n - n / 3);
            for r in &parts {
                // Straddle each partition boundary.
                slices.push(r.start.saturating_sub(1)..(r.start + 1).min(n));
            }
        }
        for r in slices {
            let got = ra
                .slice(r.start, r.end - r.start, p)
                .unwrap_or_else(|e| panic!("slice {r:?} with projection {p:?} failed: {e}"));
            let rows: Vec<u64> = r.clone().collect();
            assert_gather(
                &got,
                &want,
                &rows,
                &format!("slice {r:?}, projection {p:?}"),
            );
        }
    }

    for bad in [n, n + 7, u64::MAX] {
        // A valid index before the bad one: no partial result may come back.
        let idx: Vec<u64> = if n > 0 { vec![0, bad] } else { vec![bad] };
        match ra.take(&idx, None) {
            Err(Error::IndexOutOfRange { .. }) => {}
            other => {
                panic!("take of index {bad} of {n} rows should be IndexOutOfRange, got {other:?}")
            }
        }
    }
    for (off, len) in [(n, 1), (0, n + 1), (u64::MAX, 2), (1, u64::MAX)] {
        match ra.slice(off, len, None) {
            Err(Error::IndexOutOfRange { .. }) => {}
            other => {
                panic!("slice({off}, {len}) of {n} rows should be IndexOutOfRange, got {other:?}")
            }
        }
    }
    match ra.take(&[], Some(&[ncols])) {
        Err(Error::InvalidArgument { .. }) => {}
        other => panic!("projection of column {ncols} should be InvalidArgument, got {other:?}"),
    }
}

/// Checks `src` against `expected`, the object's whole content: its size, reads at the edges,
/// empty and whole reads, `read_many` in a scrambled order, and that a read past the end is an
/// error naming the source.
///
/// # Panics
/// When `src` breaks the [`ByteSource`] contract, with a message saying how.
pub fn check_byte_source(src: &dyn ByteSource, expected: &[u8]) {
    use futures::executor::block_on;

    let n = expected.len() as u64;
    let size = block_on(src.size()).unwrap_or_else(|e| panic!("size failed: {e}"));
    assert_eq!(size, n, "size differs");
    let mut ranges = vec![0..0, 0..n, n..n];
    if n > 0 {
        ranges.extend([0..1, n - 1..n, n / 3..n - n / 3]);
    }
    let mut seed = 0xb17e ^ n;
    for _ in 0..20 {
        if n == 0 {
            break;
        }
        let a = lcg(&mut seed) % n;
        let b = lcg(&mut seed) % (n + 1);
        ranges.push(a.min(b)..a.max(b));
    }
    for r in &ranges {
        let got =
            block_on(src.read(r.clone())).unwrap_or_else(|e| panic!("read {r:?} failed: {e}"));
        assert_eq!(
            &got[..],
            &expected[r.start as usize..r.end as usize],
            "read {r:?} returned other bytes"
        );
    }
    let mut scrambled = ranges.clone();
    scrambled.reverse();
    let got = block_on(src.read_many(scrambled.clone()))
        .unwrap_or_else(|e| panic!("read_many failed: {e}"));
    assert_eq!(
        got.len(),
        scrambled.len(),
        "read_many returned a wrong count"
    );
    for (g, r) in got.iter().zip(&scrambled) {
        assert_eq!(
            &g[..],
            &expected[r.start as usize..r.end as usize],
            "read_many {r:?}"
        );
    }
    for bad in [n..n + 1, n.saturating_sub(1)..n + 100] {
        match block_on(src.read(bad.clone())) {
            Err(e) => assert!(
                e.to_string().contains(src.name()),
                "the error for reading {bad:?} should name {:?}: {e}",
                src.name()
            ),
            Ok(b) => panic!("read {bad:?} past the end ({n}) returned {} bytes", b.len()),
        }
    }
}

/// The S3-compatible server tests run against, from the environment `cargo xtask test` sets
/// when it starts one (SeaweedFS on loopback): `ARROWFEED_TEST_S3_ENDPOINT` (`http://host:port`)
/// and `ARROWFEED_TEST_S3_BUCKET`, with the credentials in `AWS_ACCESS_KEY_ID` and
/// `AWS_SECRET_ACCESS_KEY`.
#[derive(Debug, Clone)]
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// A bucket that exists and may be written.
    pub bucket: String,
    /// The access key the server accepts.
    pub access_key: String,
    /// The secret the server accepts.
    pub secret_key: String,
}

impl S3Server {
    /// `s3://BUCKET/PREFIX`, with `prefix` made unique to this process and call, so tests
    /// running at once never share objects.
    pub fn unique_url(&self, prefix: &str) -> String {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("s3://{}/{prefix}-{}-{n}", self.bucket, std::process::id())
    }
}

/// The server of [`S3Server`], or `None` when the environment names none. When
/// `ARROWFEED_REQUIRE_S3=1` is set (as `cargo xtask ci` does), a missing server panics instead:
/// in CI a test must fail rather than pass for want of its server.
///
/// # Panics
/// As said, when the server is required and not configured.
pub fn s3_server() -> Option<S3Server> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let found = (|| {
        Some(S3Server {
            endpoint: var("ARROWFEED_TEST_S3_ENDPOINT")?,
            bucket: var("ARROWFEED_TEST_S3_BUCKET")?,
            access_key: var("AWS_ACCESS_KEY_ID")?,
            secret_key: var("AWS_SECRET_ACCESS_KEY")?,
        })
    })();
    if found.is_none() {
        if var("ARROWFEED_REQUIRE_S3").as_deref() == Some("1") {
            panic!(
                "ARROWFEED_REQUIRE_S3=1 but no S3 server is configured (ARROWFEED_TEST_S3_ENDPOINT, ARROWFEED_TEST_S3_BUCKET, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
            );
        }
        eprintln!(
            "note: no S3 server configured; run the tests through `cargo xtask test` to start one"
        );
    }
    found
}

/// A TCP proxy on loopback in front of a real server, for faults a real server does not make:
/// [`stop`](Self::stop) closes the listener and every open connection at once, as a server
/// that goes away does.
#[derive(Debug)]
pub struct TcpProxy {
    addr: std::net::SocketAddr,
    stopped: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl TcpProxy {
    /// A proxy forwarding every connection to `upstream` (`host:port`).
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub fn start(upstream: &str) -> Self {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("bound address");
        let stopped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let upstream = upstream.to_string();
        let (s, c) = (stopped.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                {
                    let mut all = c.lock().unwrap_or_else(|p| p.into_inner());
                    all.extend(client.try_clone());
                    all.extend(server.try_clone());
                }
                let pipe = |mut from: std::net::TcpStream, mut to: std::net::TcpStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    })
                };
                pipe(client, server);
                pipe(s2, c2);
            }
        });
        Self {
            addr,
            stopped,
            conns,
        }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Closes every connection and stops accepting new ones: later connections are refused.
    pub fn stop(&self) {
        use std::sync::atomic::Ordering;
        self.stopped.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag and drops the listener.
        let _ = std::net::TcpStream::connect(self.addr);
        for c in self
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs every input of fuzz target `target` through `run`, its harness, on this thread:
/// - the committed seeds (`fuzz/seeds/TARGET`): each must read cleanly (`run` returns true);
/// - the findings (`fuzz/findings/TARGET`, inputs that once made a dependency panic through
///   a call of ours, since fixed): none may panic at all, not even one a guard catches;
/// - the known panics (`fuzz/known-panics/TARGET`, inputs on which a dependency still panics
///   inside our guard): each must come back, as an error.
///
/// A panic of `run` fails the test that calls this. Returns the numbers of seeds, findings and
/// known panics; panics if the target has no seeds, so a missing corpus fails loudly.
pub fn replay_fuzz_inputs(target: &str, run: impl Fn(&[u8]) -> bool) -> (usize, usize, usize) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let files = |kind: &str| {
        let dir = root.join(kind).join(target);
        let mut found: Vec<_> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .map(|e| e.expect("a directory entry").path())
                .map(|p| {
                    let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                    (p, data)
                })
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && kind != "seeds" => vec![],
            Err(e) => panic!("{}: {e}", dir.display()),
        };
        found.sort();
        found
    };
    let seeds = files("seeds");
    assert!(!seeds.is_empty(), "no seeds for fuzz target {target}");
    for (path, data) in &seeds {
        assert!(run(data), "{}: a seed must read cleanly", path.display());
    }
    let findings = files("findings");
    for (path, data) in &findings {
        let before = crate::panics_caught_on_this_thread();
        run(data);
        assert_eq!(
            crate::panics_caught_on_this_thread(),
            before,
            "{}: a guard caught a panic on a fixed finding",
            path.display()
        );
    }
    let known = files("known-panics");
    for (_, data) in &known {
        run(data);
    }
    (seeds.len(), findings.len(), known.len())
}
