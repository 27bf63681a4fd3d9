//! The fetched byte ranges of a row group's task, as the file the parquet crate reads.

use bytes::Bytes;
use parquet::file::reader::{ChunkReader, Length};

/// The fetched byte ranges of a file, served to the parquet crate as if it were the file.
#[derive(Clone)]
pub(super) struct Fetched {
    pub(super) len: u64,
    pub(super) parts: Vec<(u64, Bytes)>,
}

impl Fetched {
    fn find(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let end = start + length as u64;
        self.parts
            .iter()
            .find(|(s, b)| *s <= start && end <= s + b.len() as u64)
            .map(|(s, b)| b.slice((start - s) as usize..(end - s) as usize))
            .ok_or_else(|| {
                parquet::errors::ParquetError::General(format!(
                    "bytes {start}..{end} were not fetched"
                ))
            })
    }
}

impl Length for Fetched {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for Fetched {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        let (s, b) = self
            .parts
            .iter()
            .find(|(s, b)| *s <= start && start < s + b.len() as u64)
            .ok_or_else(|| {
                parquet::errors::ParquetError::General(format!("byte {start} was not fetched"))
            })?;
        Ok(bytes::Buf::reader(b.slice((start - s) as usize..)))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.find(start, length)
    }
}
