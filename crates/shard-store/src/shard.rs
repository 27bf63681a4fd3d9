//! A shard loaded for reading: its bytes (a memory map or a heap copy) decoded zero-copy into
//! record batches, with the row where each batch starts.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::{FileDecoder, StreamDecoder};
use arrow_schema::SchemaRef;
use arrowfeed_traits::ipc::{check_compressed_message, check_stream_messages};
use arrowfeed_traits::{Error, Location, Result};

/// How shard bytes are brought into memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LoadMode {
    /// Memory-map each shard (the default): no copy, pages come from the page cache on demand.
    ///
    /// **Hazard:** if another process truncates or rewrites a mapped shard, reading the lost
    /// pages raises `SIGBUS` and kills this process. Sizes are checked at open, but nothing can
    /// guard against a change afterwards. Use [`LoadMode::Read`] for files others may change.
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
            // SAFETY: mapping a file is sound as long as nobody truncates or rewrites it while
            // mapped; that is the documented hazard of `LoadMode::Mmap` (a change would raise
            // SIGBUS rather than corrupt memory silently). The size was checked just above.
            let mut options = memmap2::MmapOptions::new();
            options.len(n);
            if prefault {
                options.populate();
            }
            let mmap = unsafe { options.map(&file) }.map_err(|e| Error::io(path, e))?;
            let ptr = std::ptr::NonNull::new(mmap.as_ptr().cast_mut())
                .expect("a successful mmap is never null");
            // SAFETY: `ptr` points at `n` readable bytes owned by `mmap`, which the buffer keeps
            // alive for as long as any array made from it.
            Ok(unsafe { Buffer::from_custom_allocation(ptr, n, Arc::new(Mapped { mmap, file })) })
        }
    }
}

/// A map and the file it maps: the owner of a mapped shard's buffer.
#[allow(
    dead_code,
    reason = "held for their lifetimes: the map's pages and the file's lock"
)]
struct Mapped {
    mmap: memmap2::Mmap,
    file: File,
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
    let decoded = arrowfeed_traits::catch_panic(|| match kind {
        ShardKind::File => decode_file(path, data, schema),
        ShardKind::Stream => decode_stream(path, data),
    });
    let batches = match decoded {
        Ok(r) => r?,
        Err(message) => {
            return Err(Error::corrupt(
                path,
                format!("the decoder failed on malformed data ({message})"),
            ));
        }
    };
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
    let size = data.len();
    if size < 18 || &data[..6] != b"ARROW1" || &data[size - 6..] != b"ARROW1" {
        return Err(corrupt(
            "not an Arrow IPC file (bad magic or truncated)".into(),
        ));
    }
    let footer_len = i32::from_le_bytes(data[size - 10..size - 6].try_into().expect("4 bytes"));
    let footer_len = usize::try_from(footer_len)
        .ok()
        .filter(|&l| l > 0 && l <= size - 18)
        .ok_or_else(|| {
            corrupt(format!(
                "footer length {footer_len} points outside the {size}-byte file"
            ))
        })?;
    let footer_start = size - 10 - footer_len;
    let footer = arrow_ipc::root_as_footer(&data[footer_start..size - 10])
        .map_err(|e| corrupt(format!("the footer is not a valid flatbuffer: {e}")))?;
    let file_schema = footer
        .schema()
        .map(arrow_ipc::convert::try_fb_to_schema)
        .transpose()
        .map_err(|e| Error::arrow_at(path, e))?
        .ok_or_else(|| corrupt("the footer has no schema".into()))?;
    if file_schema.fields() != schema.fields() {
        return Err(corrupt(format!(
            "the shard's schema {file_schema:?} differs from the manifest's {schema:?}"
        )));
    }
    let block_range = |kind: &str, k: usize, b: &arrow_ipc::Block| -> Result<(usize, usize)> {
        let start = usize::try_from(b.offset()).ok();
        let len = usize::try_from(b.metaDataLength())
            .ok()
            .zip(usize::try_from(b.bodyLength()).ok())
            .and_then(|(m, d)| m.checked_add(d));
        match (start, len) {
            (Some(s), Some(l))
                if s >= 8 && l > 0 && s.checked_add(l).is_some_and(|e| e <= footer_start) =>
            {
                Ok((s, l))
            }
            _ => Err(corrupt(format!(
                "{kind} block {k} points outside the data section"
            ))),
        }
    };
    // arrow-ipc allocates what a compressed buffer's prefix declares: checked first, as a
    // failed allocation aborts the process.
    let checked = |kind: &str, k: usize, b: &arrow_ipc::Block| -> Result<(usize, usize)> {
        let (s, l) = block_range(kind, k, b)?;
        let meta = usize::try_from(b.metaDataLength()).unwrap_or(usize::MAX);
        check_compressed_message(&data[s..s + l], meta)
            .map_err(|m| corrupt(format!("{kind} block {k}: {m}")))?;
        Ok((s, l))
    };
    let mut decoder = FileDecoder::new(Arc::new(file_schema), footer.version());
    for (k, b) in footer.dictionaries().iter().flatten().enumerate() {
        let (s, l) = checked("dictionary", k, b)?;
        decoder
            .read_dictionary(b, &data.slice_with_length(s, l))
            .map_err(|e| Error::arrow_at(path, e))?;
    }
    let mut out = Vec::new();
    for (k, b) in footer.recordBatches().iter().flatten().enumerate() {
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
    check_stream_messages(data).map_err(|m| Error::corrupt(path, m))?;
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

/// The schema at the start of an IPC stream file, and the rows of each record batch, from
/// message headers only (bodies are skipped): how a Hugging Face directory opens without
/// loading its shards.
pub(crate) fn scan_stream(path: &Path) -> Result<(SchemaRef, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut r = std::io::BufReader::new(file);
    let corrupt = |m: String| Error::corrupt(path, m);
    let mut pos = 0u64;
    let mut schema = None;
    let mut rows = 0u64;
    while pos + 4 <= size {
        let mut w = [0u8; 4];
        r.read_exact(&mut w).map_err(|e| Error::io(path, e))?;
        pos += 4;
        if w == [0xff; 4] {
            if pos + 4 > size {
                return Err(corrupt(format!("truncated at byte {pos}")));
            }
            r.read_exact(&mut w).map_err(|e| Error::io(path, e))?;
            pos += 4;
        }
        let len = i32::from_le_bytes(w);
        if len == 0 {
            break;
        }
        let len = u64::try_from(len)
            .ok()
            .filter(|&l| pos + l <= size && l <= 256 << 20)
            .ok_or_else(|| {
                corrupt(format!(
                    "message length {len} at byte {} runs past the end",
                    pos - 4
                ))
            })?;
        let mut meta = vec![0u8; len as usize];
        r.read_exact(&mut meta).map_err(|e| Error::io(path, e))?;
        pos += len;
        let msg = arrow_ipc::root_as_message(&meta)
            .map_err(|e| corrupt(format!("bad message header at byte {}: {e}", pos - len)))?;
        let body = u64::try_from(msg.bodyLength())
            .ok()
            .filter(|&b| pos + b <= size)
            .ok_or_else(|| corrupt(format!("message body at byte {pos} runs past the end")))?;
        if let Some(s) = msg.header_as_schema() {
            schema = Some(Arc::new(
                arrow_ipc::convert::try_fb_to_schema(s).map_err(|e| Error::arrow_at(path, e))?,
            ));
        } else if let Some(b) = msg.header_as_record_batch() {
            rows +=
                u64::try_from(b.length()).map_err(|_| corrupt("negative batch length".into()))?;
        }
        r.seek(SeekFrom::Current(body as i64))
            .map_err(|e| Error::io(path, e))?;
        pos += body;
    }
    let schema =
        schema.ok_or_else(|| corrupt("no schema message; not an Arrow IPC stream".into()))?;
    Ok((schema, rows))
}
