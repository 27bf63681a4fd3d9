//! The scan plan for Arrow IPC files: one task per record batch block, as an
//! `arrowfeed_traits::ScanPlan`. The Parquet plan is in `parquet_plan.rs`.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use arrow_buffer::Buffer;
use arrow_ipc::Block;
use arrow_ipc::reader::FileDecoder;
use arrow_schema::SchemaRef;
use arrowfeed_traits::{ByteSource, Decoded, Error, ReadTask, Result, ScanPlan, no_panic};
use bytes::Bytes;

use crate::ipc::IpcFileReader;

/// A plan that reads an Arrow IPC file one record batch block per task.
pub struct IpcScanPlan {
    name: Arc<str>,
    decoder: Arc<FileDecoder>,
    schema: SchemaRef,
    blocks: VecDeque<(Block, u64)>,
    next_row: u64,
    total_rows: u64,
}

impl std::fmt::Debug for IpcScanPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpcScanPlan")
            .field("name", &self.name)
            .field("blocks", &self.blocks.len())
            .finish_non_exhaustive()
    }
}

impl IpcScanPlan {
    /// Plans a scan of the Arrow IPC file at `path`, reading only `columns` (by name) if given.
    /// Reads the footer, the dictionaries and the record batch headers now.
    ///
    /// # Errors
    /// As [`IpcFileReader::open`].
    pub fn try_new(path: impl AsRef<Path>, columns: Option<&[String]>) -> Result<Self> {
        Self::from_reader(IpcFileReader::open_with_columns(path, columns)?)
    }

    /// Plans a scan of the Arrow IPC file behind `source`, reading its footer, dictionaries
    /// and record batch headers through the source now.
    ///
    /// # Errors
    /// As [`try_new`](Self::try_new), and the source's read errors.
    pub fn from_source(source: &Arc<dyn ByteSource>, columns: Option<&[String]>) -> Result<Self> {
        Self::from_reader(IpcFileReader::from_source(source.clone(), columns)?)
    }

    fn from_reader(reader: IpcFileReader) -> Result<Self> {
        let name: Arc<str> = reader.path().display().to_string().into();
        let infos = reader.batch_infos()?;
        let (decoder, schema, blocks) = reader.into_parts();
        let blocks: VecDeque<(Block, u64)> = blocks
            .into_iter()
            .zip(infos.iter().map(|i| i.rows))
            .collect();
        let total_rows = blocks.iter().map(|(_, r)| r).sum();
        Ok(Self {
            name,
            decoder,
            schema,
            blocks,
            next_row: 0,
            total_rows,
        })
    }
}

impl Iterator for IpcScanPlan {
    type Item = Result<ReadTask>;

    fn next(&mut self) -> Option<Self::Item> {
        let (block, rows) = self.blocks.pop_front()?;
        let start = block.offset() as u64;
        let len = block.metaDataLength() as u64 + block.bodyLength() as u64;
        let (name, decoder) = (self.name.clone(), self.decoder.clone());
        #[allow(clippy::single_range_in_vec_init, reason = "one byte range: the block")]
        let ranges = vec![start..start + len];
        let task = ReadTask {
            ranges,
            priority: self.next_row,
            rows: self.next_row..self.next_row + rows,
            decoder: Box::new(move |bytes: Vec<Bytes>| -> Result<Decoded> {
                let path = &*name;
                let data = bytes.into_iter().next().ok_or_else(|| {
                    Error::invalid_argument(format!("{path}: no bytes for the block"))
                })?;
                let buf = Buffer::from(data);
                arrowfeed_traits::ipc::check_message(&buf, block.metaDataLength() as usize)
                    .map_err(|e| e.or_location(path))?;
                no_panic(path, "the decoder", || {
                    match decoder.read_record_batch(&block, &buf) {
                        Ok(Some(b)) => Ok(Decoded::Batches(vec![b])),
                        Ok(None) => Ok(Decoded::Batches(vec![])),
                        Err(e) => Err(Error::arrow_at(path, e)),
                    }
                })
            }),
        };
        self.next_row += rows;
        Some(Ok(task))
    }
}

impl ScanPlan for IpcScanPlan {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
    fn total_rows(&self) -> Option<u64> {
        Some(self.total_rows)
    }
}
