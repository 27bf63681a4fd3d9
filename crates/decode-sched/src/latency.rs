//! A `ByteSource` wrapper that makes every request slow, as object storage is.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use arrowfeed_traits::{ByteSource, Result};
use bytes::Bytes;
use futures::future::BoxFuture;

/// Wraps a [`ByteSource`] so that each read first waits a fixed latency and, optionally, the
/// time the bytes would take at a per-request bandwidth: a stand-in for object storage in tests
/// and benchmarks (S3-like stores answer in milliseconds and serve each connection at tens to
/// hundreds of MB/s).
///
/// The wait is a thread sleep inside the read future, so [`is_blocking`](ByteSource::is_blocking)
/// is true: drive it from threads that may block, as the scan engine's I/O threads do.
///
/// ```
/// use std::time::{Duration, Instant};
/// use arrowfeed_decode_sched::LatencySource;
/// use arrowfeed_traits::{ByteSource, MemorySource};
///
/// let slow = LatencySource::new(MemorySource::new("memory", &b"hello"[..]), Duration::from_millis(5));
/// let t = Instant::now();
/// let bytes = futures::executor::block_on(slow.read(1..3))?;
/// assert_eq!(&bytes[..], b"el");
/// assert!(t.elapsed() >= Duration::from_millis(5));
/// assert_eq!((slow.requests(), slow.bytes_read(), slow.peak_in_flight()), (1, 2, 1));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct LatencySource<S> {
    inner: S,
    latency: Duration,
    bytes_per_second: Option<u64>,
    requests: AtomicU64,
    bytes: AtomicU64,
    in_flight: AtomicUsize,
    peak_in_flight: AtomicUsize,
}

impl<S: ByteSource> LatencySource<S> {
    /// `inner`, with `latency` added to every read.
    pub fn new(inner: S, latency: Duration) -> Self {
        Self {
            inner,
            latency,
            bytes_per_second: None,
            requests: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            peak_in_flight: AtomicUsize::new(0),
        }
    }

    /// Also limits each request to `bytes_per_second` (a single connection's throughput); 0
    /// means no limit.
    pub fn bandwidth_per_request(mut self, bytes_per_second: u64) -> Self {
        self.bytes_per_second = (bytes_per_second > 0).then_some(bytes_per_second);
        self
    }

    /// Reads made so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// The most reads that were in flight at once.
    pub fn peak_in_flight(&self) -> usize {
        self.peak_in_flight.load(Ordering::SeqCst)
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    fn delay(&self, len: u64) -> Duration {
        let transfer = self.bytes_per_second.map_or(Duration::ZERO, |bps| {
            Duration::from_secs_f64(len as f64 / bps as f64)
        });
        self.latency + transfer
    }
}

impl<S: ByteSource> ByteSource for LatencySource<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn size(&self) -> BoxFuture<'_, Result<u64>> {
        self.inner.size()
    }

    fn read(&self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes>> {
        Box::pin(async move {
            let len = range.end.saturating_sub(range.start);
            self.requests.fetch_add(1, Ordering::Relaxed);
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak_in_flight.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(self.delay(len));
            let b = self.inner.read(range).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            let b = b?;
            self.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
            Ok(b)
        })
    }

    fn is_blocking(&self) -> bool {
        true
    }
}
