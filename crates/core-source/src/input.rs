//! Reading a `ByteSource` from synchronous code: blocking reads, a `ChunkReader` for the
//! parquet crate's footer parser that serves the file's tail from one suffix read, and a
//! buffered `Read + Seek` for IPC streams. This is how every source and plan reads an object
//! it did not open itself (a remote object, a memory map, bytes in memory).

use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::sync::Arc;

use arrowfeed_traits::{ByteSource, Error, Result};
use bytes::Bytes;
use parquet::file::reader::{ChunkReader, Length};

/// Bytes read from the end of an object in one request when its footer is wanted: most
/// Parquet footers and IPC footers fit, so opening a remote file costs one request after its
/// size is known.
pub(crate) const SUFFIX_BYTES: u64 = 64 << 10;

/// Reads `range` of `source`, blocking this thread until it arrives.
pub(crate) fn read_blocking(source: &dyn ByteSource, range: Range<u64>) -> Result<Bytes> {
    futures::executor::block_on(source.read(range))
}

/// The size of `source`, blocking.
pub(crate) fn size_blocking(source: &dyn ByteSource) -> Result<u64> {
    futures::executor::block_on(source.size())
}

/// An object's tail, read once, with reads elsewhere going to the source: what the parquet
/// crate's footer parser reads through.
pub(crate) struct SourceChunks {
    source: Arc<dyn ByteSource>,
    size: u64,
    tail_start: u64,
    tail: Bytes,
}

impl SourceChunks {
    /// Reads the last [`SUFFIX_BYTES`] of `source` (all of it when smaller).
    pub(crate) fn new(source: Arc<dyn ByteSource>) -> Result<Self> {
        let size = size_blocking(source.as_ref())?;
        let tail_start = size.saturating_sub(SUFFIX_BYTES);
        let tail = read_blocking(source.as_ref(), tail_start..size)?;
        Ok(Self {
            source,
            size,
            tail_start,
            tail,
        })
    }

    /// The object's size.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// `range`, from the tail when it lies there, else from the source.
    pub(crate) fn read(&self, range: Range<u64>) -> Result<Bytes> {
        if range.start >= self.tail_start && range.end <= self.size && range.start <= range.end {
            let from = (range.start - self.tail_start) as usize;
            let to = (range.end - self.tail_start) as usize;
            return Ok(self.tail.slice(from..to));
        }
        read_blocking(self.source.as_ref(), range)
    }
}

impl std::fmt::Debug for SourceChunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceChunks")
            .field("source", &self.source.name())
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Length for SourceChunks {
    fn len(&self) -> u64 {
        self.size
    }
}

impl ChunkReader for SourceChunks {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        let bytes = self
            .read(start..self.size)
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?;
        Ok(bytes::Buf::reader(bytes))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let end = start.saturating_add(length as u64);
        self.read(start..end)
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
    }
}

/// A `ByteSource` as a buffered `Read + Seek`: reads of at least `chunk` bytes, so a stream
/// read front to back costs one request per chunk; seeking forward past the buffer costs
/// nothing until the next read.
pub(crate) struct SourceReader {
    source: Arc<dyn ByteSource>,
    size: u64,
    /// Position of the next byte to hand out.
    pos: u64,
    /// Buffered bytes, starting at `buf_start`.
    buf: Bytes,
    buf_start: u64,
    chunk: u64,
}

impl SourceReader {
    /// Reads `source` from its start in requests of `chunk` bytes.
    pub(crate) fn new(source: Arc<dyn ByteSource>, chunk: u64) -> Result<Self> {
        let size = size_blocking(source.as_ref())?;
        Ok(Self {
            source,
            size,
            pos: 0,
            buf: Bytes::new(),
            buf_start: 0,
            chunk: chunk.max(1),
        })
    }

    /// The object's size.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }
}

/// An arrowfeed error carried through `std::io`, so the reader above it can hand it back.
pub(crate) fn to_io(e: Error) -> std::io::Error {
    let kind = match &e {
        Error::Io { source, .. } => source.kind(),
        _ => std::io::ErrorKind::Other,
    };
    std::io::Error::new(kind, e)
}

impl Read for SourceReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() || self.pos >= self.size {
            return Ok(0);
        }
        let buf_end = self.buf_start + self.buf.len() as u64;
        if self.pos < self.buf_start || self.pos >= buf_end {
            let end = self.pos.saturating_add(self.chunk).min(self.size);
            self.buf = read_blocking(self.source.as_ref(), self.pos..end).map_err(to_io)?;
            self.buf_start = self.pos;
        }
        let from = (self.pos - self.buf_start) as usize;
        let n = out.len().min(self.buf.len() - from);
        out[..n].copy_from_slice(&self.buf[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SourceReader {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.size.checked_add_signed(d),
        };
        let target = target.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        self.pos = target;
        Ok(target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrowfeed_traits::MemorySource;

    /// A source that counts its reads.
    #[derive(Debug)]
    struct Counting(MemorySource, std::sync::atomic::AtomicU64);

    impl ByteSource for Counting {
        fn name(&self) -> &str {
            self.0.name()
        }
        fn size(&self) -> futures::future::BoxFuture<'_, Result<u64>> {
            self.0.size()
        }
        fn read(&self, range: Range<u64>) -> futures::future::BoxFuture<'_, Result<Bytes>> {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.0.read(range)
        }
    }

    #[test]
    fn a_stream_read_front_to_back_costs_one_read_per_chunk_and_seeks_are_free() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        let src = Arc::new(Counting(
            MemorySource::new("mem", data.clone()),
            Default::default(),
        ));
        let mut r = SourceReader::new(src.clone(), 1000).expect("reader");
        let mut got = Vec::new();
        r.read_to_end(&mut got).expect("read");
        assert_eq!(got, data);
        assert_eq!(src.1.load(std::sync::atomic::Ordering::Relaxed), 10);
        r.seek(SeekFrom::Start(4_500)).expect("seek");
        let mut four = [0u8; 4];
        r.read_exact(&mut four).expect("read after seek");
        assert_eq!(&four, &data[4_500..4_504]);
        r.seek(SeekFrom::Current(100)).expect("skip");
        r.read_exact(&mut four).expect("read after skip");
        assert_eq!(&four, &data[4_604..4_608]);
        assert_eq!(
            src.1.load(std::sync::atomic::Ordering::Relaxed),
            11,
            "the skip stayed inside the buffered chunk"
        );
    }

    #[test]
    fn the_tail_is_read_once() {
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let src = Arc::new(Counting(
            MemorySource::new("mem", data.clone()),
            Default::default(),
        ));
        let chunks = SourceChunks::new(src.clone()).expect("tail");
        for r in [199_992..200_000u64, 150_000..199_000, 200_000..200_000] {
            let got = chunks.read(r.clone()).expect("read");
            assert_eq!(&got[..], &data[r.start as usize..r.end as usize]);
        }
        assert_eq!(src.1.load(std::sync::atomic::Ordering::Relaxed), 1);
        let early = chunks.read(10..20).expect("outside the tail");
        assert_eq!(&early[..], &data[10..20]);
        assert_eq!(src.1.load(std::sync::atomic::Ordering::Relaxed), 2);
    }
}
