//! A shard loaded for reading: its bytes (a memory map or a heap copy) decoded zero-copy into
//! record batches, with the row where each batch starts.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::{FileDecoder, StreamDecoder};
use arrow_schema::SchemaRef;
use arrowfeed_traits::ipc::{
    FileFooter, block_range, check_message, check_stream_messages, footer_range, walk_stream,
};
use arrowfeed_traits::{Error, Location, Result};

use crate::manifest::ShardCompression;

/// How shard bytes are brought into memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LoadMode {
    /// Memory-map each shard (the default): no copy, pages come from the page cache on demand.
    ///
    /// **Hazard** (the contract of [`arrowfeed_traits::mmap`]): if another process truncates a
    /// mapped shard, reading the lost pages raises `SIGBUS` and kills this process; if it
    /// rewrites one in place, the bytes under batches already decoded change silently. Sizes
    /// are checked at open, but nothing can guard against a change afterwards. Use
    /// [`LoadMode::Read`] for files others may change, or
    /// [`OpenOptions::verify_checksums`](crate::OpenOptions::verify_checksums) to
    /// check each shard as it loads.
    #[default]
    Mmap,
    /// Read each shard into memory when first used: safe against concurrent changes, costs a
    /// copy and resident memory.
    Read,
}

/// The layout of a shard file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShardKind {
    /// Arrow IPC file (this crate's stores).
    File,
    /// Arrow IPC stream (Hugging Face `save_to_disk`).
    Stream,
}

/// A decoded shard.
#[derive(Debug)]
pub(crate) struct LoadedShard {
    pub(crate) batches: Vec<RecordBatch>,
    /// Row where each batch starts, then the total.
    pub(crate) starts: Vec<u64>,
}

impl LoadedShard {
    /// (batch, row within it) of `row`.
    pub(crate) fn locate(&self, row: u64) -> (usize, usize) {
        let k = self.starts.partition_point(|&s| s <= row) - 1;
        (k, (row - self.starts[k]) as usize)
    }
}

/// Brings `path` into memory as a `Buffer`, checking its size first.
pub(crate) fn load_bytes(
    path: &Path,
    expected: Option<u64>,
    mode: LoadMode,
    prefault: bool,
) -> Result<Buffer> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    load_file(file, path, expected, mode, prefault)
}

/// Brings the open `file` (at `path`, for messages) into memory as a `Buffer`, checking its
/// size first. A map keeps `file` open for as long as any array made from it lives, with
/// whatever lock the file holds (the shard cache's readers hold a shared one).
pub(crate) fn load_file(
    file: File,
    path: &Path,
    expected: Option<u64>,
    mode: LoadMode,
    prefault: bool,
) -> Result<Buffer> {
    let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    if let Some(want) = expected
        && len != want
    {
        return Err(Error::corrupt(
            path,
            format!("the shard is {len} bytes, the manifest says {want} (truncated or replaced?)"),
        ));
    }
    let n =
        usize::try_from(len).map_err(|_| Error::corrupt(path, "larger than the address space"))?;
    if n == 0 {
        return Ok(Buffer::from_vec(Vec::<u8>::new()));
    }
    match mode {
        LoadMode::Read => {
            let mut buf = arrow_buffer::MutableBuffer::from_len_zeroed(n);
            std::io::Read::read_exact(&mut &file, buf.as_slice_mut())
                .map_err(|e| Error::io(path, e))?;
            Ok(buf.into())
        }
        LoadMode::Mmap => {
            // A store's shards are written once and replaced only by renaming a new store in,
            // which leaves a mapped file as it was: the map's contract (truncation raises
            // SIGBUS, a rewrite in place changes bytes) is met unless someone edits a shard.
            arrowfeed_traits::mmap::map_file(file, path, len, prefault).map(Buffer::from)
        }
    }
}

/// Decodes a whole shard; every length read from it is checked against its size first.
///
/// arrow-ipc can still panic on some malformed buffer layouts (a buffer offset past the
/// message body, seen with arrow-ipc 60.1), so decoding runs under `catch_unwind` and such a
/// panic becomes an [`Error::Corrupt`] naming the shard.
pub(crate) fn decode(
    path: &Path,
    data: &Buffer,
    kind: ShardKind,
    schema: &SchemaRef,
) -> Result<LoadedShard> {
    let batches = arrowfeed_traits::no_panic(path, "the decoder", || match kind {
        ShardKind::File => decode_file(path, data, schema),
        ShardKind::Stream => decode_stream(path, data),
    })?;
    let mut starts = Vec::with_capacity(batches.len() + 1);
    let mut total = 0u64;
    let mut kept = Vec::with_capacity(batches.len());
    for b in batches {
        if b.schema().fields() != schema.fields() {
            return Err(Error::corrupt(
                path,
                format!(
                    "a batch has schema {:?}, the store's is {:?}",
                    b.schema(),
                    schema
                ),
            ));
        }
        if b.num_rows() > 0 {
            starts.push(total);
            total += b.num_rows() as u64;
            kept.push(b);
        }
    }
    starts.push(total);
    Ok(LoadedShard {
        batches: kept,
        starts,
    })
}

fn decode_file(path: &Path, data: &Buffer, schema: &SchemaRef) -> Result<Vec<RecordBatch>> {
    let corrupt = |m: String| Error::corrupt(path, m);
    let size = data.len() as u64;
    let footer = footer_range(path, size, data, data)?;
    let footer_start = footer.start;
    let footer = FileFooter::parse(
        path,
        &data[footer.start as usize..footer.end as usize],
        footer_start,
    )?;
    if footer.schema.fields() != schema.fields() {
        return Err(corrupt(format!(
            "the shard's schema {:?} differs from the manifest's {schema:?}",
            footer.schema
        )));
    }
    // arrow-ipc allocates what a compressed buffer's prefix declares: checked first, as a
    // failed allocation aborts the process.
    let checked = |kind: &str, k: usize, b: &arrow_ipc::Block| -> Result<(usize, usize)> {
        let r = block_range(b);
        let (s, l) = (r.start as usize, (r.end - r.start) as usize);
        check_message(&data[s..s + l], b.metaDataLength() as usize)
            .map_err(|m| corrupt(format!("{kind} block {k}: {m}")))?;
        Ok((s, l))
    };
    let mut decoder = FileDecoder::new(Arc::new(footer.schema), footer.version);
    for (k, b) in footer.dictionaries.iter().enumerate() {
        let (s, l) = checked("dictionary", k, b)?;
        decoder
            .read_dictionary(b, &data.slice_with_length(s, l))
            .map_err(|e| Error::arrow_at(path, e))?;
    }
    let mut out = Vec::new();
    for (k, b) in footer.record_batches.iter().enumerate() {
        let (s, l) = checked("record batch", k, b)?;
        match decoder.read_record_batch(b, &data.slice_with_length(s, l)) {
            Ok(Some(batch)) => out.push(batch),
            Ok(None) => {}
            Err(e) => {
                return Err(Error::arrow_at(
                    Location::new(format!("{} (record batch {k})", path.display())),
                    e,
                ));
            }
        }
    }
    Ok(out)
}

fn decode_stream(path: &Path, data: &Buffer) -> Result<Vec<RecordBatch>> {
    // As in `decode_file`: compressed buffers' prefixes checked before arrow-ipc allocates.
    check_stream_messages(data).map_err(|e| e.or_location(path))?;
    let mut decoder = StreamDecoder::new();
    let mut rest = data.clone();
    let mut out = Vec::new();
    while !rest.is_empty() {
        if let Some(b) = decoder
            .decode(&mut rest)
            .map_err(|e| Error::arrow_at(path, e))?
        {
            out.push(b);
        }
    }
    decoder.finish().map_err(|e| Error::arrow_at(path, e))?;
    Ok(out)
}

/// What the message headers of an IPC stream file say.
#[derive(Debug)]
pub(crate) struct StreamScan {
    pub(crate) schema: SchemaRef,
    /// Rows of all its record batches.
    pub(crate) rows: u64,
    /// The file's size.
    pub(crate) bytes: u64,
    /// The codec of its compressed record batches: the first one's, `None` if none is.
    pub(crate) compression: ShardCompression,
}

/// The schema at the start of an IPC stream file, and the rows of each record batch, from
/// message headers only (bodies are skipped): how a Hugging Face directory opens without
/// loading its shards.
pub(crate) fn scan_stream(path: &Path) -> Result<StreamScan> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let (mut schema, mut rows) = (None, 0u64);
    let mut compression = ShardCompression::None;
    walk_stream(path, std::io::BufReader::new(file), size, |m| {
        if let Some(s) = m.header.header_as_schema() {
            let s =
                arrow_ipc::convert::try_fb_to_schema(s).map_err(|e| Error::arrow_at(path, e))?;
            schema = Some(Arc::new(s));
        } else if let Some(b) = m.header.header_as_record_batch() {
            let n = u64::try_from(b.length()).map_err(|_| {
                Error::corrupt(path, format!("negative batch length at byte {}", m.offset))
            })?;
            rows = rows.saturating_add(n);
            if let (ShardCompression::None, Some(c)) = (compression, b.compression()) {
                compression = match c.codec() {
                    arrow_ipc::CompressionType::ZSTD => ShardCompression::Zstd,
                    _ => ShardCompression::Lz4,
                };
            }
        }
        Ok(())
    })?;
    let schema =
        schema.ok_or_else(|| Error::corrupt(path, "no schema message; not an Arrow IPC stream"))?;
    Ok(StreamScan {
        schema,
        rows,
        bytes: size,
        compression,
    })
}
