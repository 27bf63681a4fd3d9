//! The one place arrowfeed walks Arrow IPC framing it did not just write (feature `ipc`):
//! the file footer and its blocks, the stream's messages, and the checks on each message's
//! buffers that arrow-ipc does not make before it slices or allocates.
//!
//! Every length read off the bytes is checked against the file's size before anything is
//! read or allocated for it: [`footer_range`] and [`FileFooter::parse`] for an IPC file,
//! [`walk_stream`] for a stream's message headers. A compressed IPC buffer starts with its
//! uncompressed length, and arrow-ipc allocates that many bytes before decompressing; a
//! damaged or crafted prefix (say 2^60) makes the allocation fail, and a failed allocation
//! aborts the process: no `Result`, no `catch_unwind`. And it slices the body by each
//! buffer's offset and length, panicking on one outside it. So each message is checked here
//! first ([`check_message`] for a file's block, [`StreamCheck`] and [`CheckedRead`] for stream
//! bytes as they pass): every buffer inside the body and aligned ([`check_buffers`]), every
//! compressed one declaring no more than its codec could expand to ([`check_prefix`]).
//!
//! ```
//! use arrowfeed_traits::ipc::check_stream_messages;
//!
//! // Not IPC at all: nothing this check can follow, so nothing to refuse (the decoder will).
//! assert!(check_stream_messages(b"hello").is_ok());
//! ```

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

use arrow_ipc::{Block, CompressionType, MetadataVersion};
use arrow_schema::Schema;

use crate::{Error, Location, Result};

/// A damaged message, for the caller to name the file ([`Error::or_location`]).
fn bad(message: impl Into<String>) -> Error {
    Error::corrupt(Location::none(), message)
}

/// Largest flatbuffer footer or message header accepted: the schema of a very wide table is a
/// few MiB; anything larger is taken as damage rather than allocated.
pub const MAX_METADATA_BYTES: u64 = 256 << 20;

/// The magic at both ends of an IPC file.
const MAGIC: &[u8; 6] = b"ARROW1";

/// The most a compressed buffer can expand, by codec: an LZ4 sequence encodes at most ~255
/// bytes per byte of input; a Zstandard RLE block, 128 KiB from 4 bytes.
fn max_expansion(codec: CompressionType) -> u64 {
    match codec {
        CompressionType::LZ4_FRAME => 255,
        _ => 32 << 10,
    }
}

/// The compressed buffers of a message: (offset in the body, length, codec) of each non-empty
/// buffer of a compressed record batch or dictionary batch; none for an uncompressed message.
///
/// # Errors
/// A buffer with a negative offset or length, or shorter than its length prefix.
pub fn compressed_buffers(
    msg: &arrow_ipc::Message<'_>,
) -> Result<Vec<(u64, u64, CompressionType)>> {
    let batch = match msg.header_type() {
        arrow_ipc::MessageHeader::RecordBatch => msg.header_as_record_batch(),
        arrow_ipc::MessageHeader::DictionaryBatch => {
            msg.header_as_dictionary_batch().and_then(|d| d.data())
        }
        _ => None,
    };
    let Some((batch, codec)) = batch.and_then(|b| Some((b, b.compression()?.codec()))) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for (k, b) in batch.buffers().iter().flatten().enumerate() {
        let (offset, len) = (u64::try_from(b.offset()), u64::try_from(b.length()));
        let (Ok(offset), Ok(len)) = (offset, len) else {
            return Err(bad(format!("buffer {k} has a negative offset or length")));
        };
        if len == 0 {
            continue;
        }
        if len < 8 {
            return Err(bad(format!(
                "compressed buffer {k} of {len} bytes is shorter than its 8-byte length prefix"
            )));
        }
        out.push((offset, len, codec));
    }
    Ok(out)
}

/// Checks a compressed buffer's length prefix (the uncompressed length, or -1 for a buffer
/// stored as is) against what `len` bytes of `codec` data can expand to.
///
/// # Errors
/// A prefix that declares more than the buffer can hold, or a negative one other than -1.
pub fn check_prefix(prefix: [u8; 8], len: u64, codec: CompressionType) -> Result<()> {
    let declared = i64::from_le_bytes(prefix);
    let most = (len.saturating_sub(8))
        .saturating_mul(max_expansion(codec))
        .saturating_add(64);
    if declared == -1 || u64::try_from(declared).is_ok_and(|d| d <= most) {
        Ok(())
    } else {
        Err(bad(format!(
            "a {len}-byte compressed buffer declares {declared} bytes uncompressed (at most {most} possible)"
        )))
    }
}

/// Parses an encapsulated message header: its 4-byte length (after the continuation marker,
/// if there is one), then the flatbuffer.
///
/// # Errors
/// Bytes too short for the length, or a flatbuffer that does not verify.
pub fn message_header(meta: &[u8]) -> Result<arrow_ipc::Message<'_>> {
    let header = match meta {
        [0xff, 0xff, 0xff, 0xff, rest @ ..] => rest.get(4..),
        _ => meta.get(4..),
    }
    .ok_or_else(|| bad("message header shorter than its length prefix"))?;
    arrow_ipc::root_as_message(header).map_err(|e| bad(format!("bad message header: {e}")))
}

/// Checks that every buffer of a record batch or dictionary batch message lies inside its
/// `body`-byte body at an 8-byte aligned offset, as the IPC format requires. arrow-ipc slices
/// the body by these numbers and panics on one outside it (or on a misaligned one it views
/// as wider values), so they are checked before it sees them.
///
/// # Errors
/// A buffer with a negative offset or length, one past the body's end, or a misaligned one.
pub fn check_buffers(msg: &arrow_ipc::Message<'_>, body: u64) -> Result<()> {
    let batch = match msg.header_type() {
        arrow_ipc::MessageHeader::RecordBatch => msg.header_as_record_batch(),
        arrow_ipc::MessageHeader::DictionaryBatch => {
            msg.header_as_dictionary_batch().and_then(|d| d.data())
        }
        _ => None,
    };
    for (k, b) in batch.iter().flat_map(|b| b.buffers()).flatten().enumerate() {
        let (Ok(offset), Ok(len)) = (u64::try_from(b.offset()), u64::try_from(b.length())) else {
            return Err(bad(format!("buffer {k} has a negative offset or length")));
        };
        if offset.checked_add(len).is_none_or(|end| end > body) {
            return Err(bad(format!(
                "buffer {k} ({len} bytes at {offset}) lies outside the {body}-byte body"
            )));
        }
        if !offset.is_multiple_of(8) && len > 0 {
            return Err(bad(format!("buffer {k} at {offset} is not 8-byte aligned")));
        }
    }
    Ok(())
}

/// Checks the buffers of `body`, the body of the message `msg`: [`check_buffers`], and each
/// compressed buffer's length prefix.
fn check_body(msg: &arrow_ipc::Message<'_>, body: &[u8]) -> Result<()> {
    check_buffers(msg, body.len() as u64)?;
    for (offset, len, codec) in compressed_buffers(msg)? {
        let prefix = usize::try_from(offset)
            .ok()
            .and_then(|o| body.get(o..o.checked_add(8)?))
            .ok_or_else(|| {
                bad(format!(
                    "a buffer at {offset} lies outside the {}-byte body",
                    body.len()
                ))
            })?;
        let mut p = [0u8; 8];
        p.copy_from_slice(prefix);
        check_prefix(p, len, codec)?;
    }
    Ok(())
}

/// Checks the buffers of one message of an IPC file: `block` is its header (`meta_len`
/// bytes, as the file's footer block says) and then its body.
///
/// # Errors
/// A header that does not parse, a buffer [`check_buffers`] refuses, or a compressed
/// buffer's prefix [`check_prefix`] refuses.
pub fn check_message(block: &[u8], meta_len: usize) -> Result<()> {
    let meta = block
        .get(..meta_len)
        .ok_or_else(|| bad("the message is shorter than its header"))?;
    check_body(&message_header(meta)?, &block[meta_len..])
}

/// Checks the buffers of every whole message in `data`, bytes of an IPC stream
/// from a message boundary: [`StreamCheck`] over all of them at once.
///
/// # Errors
/// As [`StreamCheck::follow`].
pub fn check_stream_messages(data: &[u8]) -> Result<()> {
    StreamCheck::new().follow(data)
}

/// Follows the bytes of an IPC stream as they pass, in pieces of any size, checking each
/// message's buffers ([`check_buffers`]) as its header goes by and each compressed buffer's
/// length prefix ([`check_prefix`]) as its bytes do, so that a damaged one is an error before
/// a decoder slices or allocates for it. Framing it cannot follow (a header that
/// does not parse, or one longer than [`MAX_METADATA_BYTES`]) ends the checks without an
/// error: the decoder meets it and says so.
#[derive(Debug)]
pub struct StreamCheck {
    stage: Stage,
}

#[derive(Debug)]
enum Stage {
    /// The continuation marker and length of the next message.
    Prefix(Vec<u8>),
    /// The message header, `len` bytes.
    Header { len: usize, buf: Vec<u8> },
    /// The body: where in it the next byte is, its length, and the buffers still to check with
    /// the bytes of the next one's prefix seen so far.
    Body {
        pos: u64,
        len: u64,
        checks: VecDeque<(u64, u64, CompressionType)>,
        prefix: Vec<u8>,
    },
    /// End of stream, or framing left to the decoder.
    Through,
}

impl Default for StreamCheck {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamCheck {
    /// A check of a stream from its first byte (or any message boundary).
    pub fn new() -> Self {
        Self {
            stage: Stage::Prefix(Vec::with_capacity(8)),
        }
    }

    /// Follows the next `data` of the stream through its framing.
    ///
    /// # Errors
    /// A compressed buffer outside its body, two that overlap, or a length prefix
    /// [`check_prefix`] refuses; the message says which.
    pub fn follow(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            match &mut self.stage {
                Stage::Through => return Ok(()),
                Stage::Prefix(buf) => {
                    // The continuation marker, if the message has one (streams before Arrow
                    // 0.15 do not), then the header's length.
                    let want = if buf.len() >= 4 && buf[..4] == [0xff; 4] {
                        8
                    } else {
                        4
                    };
                    let take = (want - buf.len()).min(data.len());
                    buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if buf.len() < want || (want == 4 && buf[..4] == [0xff; 4]) {
                        continue;
                    }
                    let raw = &buf[want - 4..want];
                    let len = i32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
                    self.stage = match usize::try_from(len) {
                        Ok(0) | Err(_) => Stage::Through,
                        Ok(len) if len as u64 > MAX_METADATA_BYTES => Stage::Through,
                        Ok(len) => Stage::Header {
                            len,
                            buf: Vec::with_capacity(len.min(data.len())),
                        },
                    };
                }
                Stage::Header { len, buf } => {
                    let take = (*len - buf.len()).min(data.len());
                    buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    if buf.len() < *len {
                        continue;
                    }
                    let Ok(msg) = arrow_ipc::root_as_message(buf) else {
                        self.stage = Stage::Through;
                        continue;
                    };
                    let body = u64::try_from(msg.bodyLength()).unwrap_or(0);
                    check_buffers(&msg, body)?;
                    let mut checks = compressed_buffers(&msg)?;
                    checks.sort_by_key(|c| c.0);
                    if let Some(&(offset, ..)) =
                        checks.iter().find(|c| c.0.saturating_add(8) > body)
                    {
                        return Err(bad(format!(
                            "a compressed buffer at {offset} lies outside the {body}-byte body"
                        )));
                    }
                    // Prefixes are checked as their bytes pass, once: two that share bytes
                    // would be checked only where the first is, or not at all, depending on
                    // how the stream is cut into reads. Refused here, whatever the cuts.
                    if let Some(w) = checks
                        .windows(2)
                        .find(|w| w[1].0 < w[0].0.saturating_add(8))
                    {
                        return Err(bad(format!("compressed buffers overlap at {}", w[1].0)));
                    }
                    self.stage = Stage::Body {
                        pos: 0,
                        len: body,
                        checks: checks.into(),
                        prefix: Vec::with_capacity(8),
                    };
                }
                Stage::Body {
                    pos,
                    len,
                    checks,
                    prefix,
                } => {
                    if *pos == *len {
                        self.stage = Stage::Prefix(Vec::with_capacity(8));
                        continue;
                    }
                    let take = ((*len - *pos).min(data.len() as u64)) as usize;
                    let (end, chunk) = (*pos + take as u64, &data[..take]);
                    while let Some(&(offset, blen, codec)) = checks.front() {
                        let from = offset + prefix.len() as u64;
                        if from < *pos {
                            return Err(bad(format!("compressed buffers overlap at {offset}")));
                        }
                        if from >= end {
                            break;
                        }
                        let i = (from - *pos) as usize;
                        let n = (8 - prefix.len()).min(take - i);
                        prefix.extend_from_slice(&chunk[i..i + n]);
                        if prefix.len() < 8 {
                            break;
                        }
                        let mut p = [0u8; 8];
                        p.copy_from_slice(prefix);
                        check_prefix(p, blen, codec)?;
                        prefix.clear();
                        checks.pop_front();
                    }
                    *pos = end;
                    data = &data[take..];
                }
            }
        }
        Ok(())
    }
}

/// A reader of IPC stream bytes that [`StreamCheck`]s them as they are read: what a stream
/// decoder reads through. A refused buffer is an `InvalidData` error of the read.
#[derive(Debug)]
pub struct CheckedRead<R> {
    inner: R,
    check: StreamCheck,
}

impl<R> CheckedRead<R> {
    /// Checks what is read from `inner`, a stream read from its first byte.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            check: StreamCheck::new(),
        }
    }
}

impl<R: Read> Read for CheckedRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.check
            .follow(&buf[..n])
            .map_err(|m| std::io::Error::new(std::io::ErrorKind::InvalidData, m))?;
        Ok(n)
    }
}

/// The checked footer of an IPC file: its schema, metadata version and blocks, each block
/// inside the data section (between the leading magic and the footer).
#[derive(Debug)]
#[non_exhaustive]
pub struct FileFooter {
    /// The file's schema.
    pub schema: Schema,
    /// Its metadata version (V4 or later).
    pub version: MetadataVersion,
    /// The dictionary batches' blocks, in file order.
    pub dictionaries: Vec<Block>,
    /// The record batches' blocks, in file order.
    pub record_batches: Vec<Block>,
}

/// Where the footer of the `size`-byte IPC file at `at` lies, from its first 6 bytes (`head`)
/// and its last 10 (`tail`: the footer's length and the closing magic).
///
/// # Errors
/// [`Error::Corrupt`] naming `at`: a file too short, a missing magic, or a footer length that
/// is not positive, exceeds [`MAX_METADATA_BYTES`] or points outside the file.
pub fn footer_range(at: &Path, size: u64, head: &[u8], tail: &[u8]) -> Result<Range<u64>> {
    let corrupt = |m: String| Error::corrupt(at, m);
    // "ARROW1" + 2 bytes padding at the start; footer, 4-byte length and "ARROW1" at the end.
    if size < 8 + 10 || head.len() < 6 || tail.len() < 10 {
        return Err(corrupt(format!(
            "too short for an Arrow IPC file ({size} bytes; truncated?)"
        )));
    }
    if &head[..6] != MAGIC {
        return Err(corrupt("missing the ARROW1 magic at the start".into()));
    }
    let tail = &tail[tail.len() - 10..];
    if &tail[4..] != MAGIC {
        return Err(corrupt(
            "missing the ARROW1 magic at the end (truncated, or a stream rather than a file?)"
                .into(),
        ));
    }
    let len = i32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let len = u64::try_from(len)
        .ok()
        .filter(|&l| l > 0 && l <= size - 18 && l <= MAX_METADATA_BYTES)
        .ok_or_else(|| {
            corrupt(format!(
                "footer length {len} points outside the {size}-byte file"
            ))
        })?;
    Ok(size - 10 - len..size - 10)
}

impl FileFooter {
    /// Parses and checks `footer`, the bytes [`footer_range`] located (starting at
    /// `footer_start`), of the IPC file at `at`.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming `at` for a footer that is not a flatbuffer, has no schema,
    /// was written with the other endianness or a metadata version before V4, or has a block
    /// outside the data section; the schema's own conversion error.
    pub fn parse(at: &Path, footer: &[u8], footer_start: u64) -> Result<Self> {
        let corrupt = |m: String| Error::corrupt(at, m);
        let fb = arrow_ipc::root_as_footer(footer)
            .map_err(|e| corrupt(format!("the footer is not a valid flatbuffer: {e}")))?;
        let fb_schema = fb
            .schema()
            .ok_or_else(|| corrupt("the footer has no schema".into()))?;
        if !fb_schema.endianness().equals_to_target_endianness() {
            return Err(corrupt(
                "written on a machine of the other endianness".into(),
            ));
        }
        let version = fb.version();
        if matches!(
            version,
            MetadataVersion::V1 | MetadataVersion::V2 | MetadataVersion::V3
        ) {
            return Err(corrupt(format!(
                "unsupported IPC metadata version {version:?}"
            )));
        }
        let schema =
            arrow_ipc::convert::try_fb_to_schema(fb_schema).map_err(|e| Error::arrow_at(at, e))?;
        let check = |kind: &str, blocks: &[Block]| -> Result<()> {
            for (k, b) in blocks.iter().enumerate() {
                if block_end(b).is_none_or(|end| end > footer_start) || b.offset() < 8 {
                    return Err(corrupt(format!(
                        "{kind} block {k} (offset {}, {} + {} bytes) points outside the data section ({footer_start} bytes)",
                        b.offset(),
                        b.metaDataLength(),
                        b.bodyLength()
                    )));
                }
                // The format pads both to 8 bytes; a body that starts unaligned leaves arrow
                // viewing its buffers as wider values out of alignment, which panics.
                if b.offset() % 8 != 0 || b.metaDataLength() % 8 != 0 {
                    return Err(corrupt(format!(
                        "{kind} block {k} (offset {}, header {} bytes) is not 8-byte aligned",
                        b.offset(),
                        b.metaDataLength()
                    )));
                }
            }
            Ok(())
        };
        let dictionaries: Vec<Block> = fb
            .dictionaries()
            .map(|v| v.iter().copied().collect())
            .unwrap_or_default();
        let record_batches: Vec<Block> = fb
            .recordBatches()
            .map(|v| v.iter().copied().collect())
            .unwrap_or_default();
        check("dictionary", &dictionaries)?;
        check("record batch", &record_batches)?;
        Ok(Self {
            schema,
            version,
            dictionaries,
            record_batches,
        })
    }
}

/// The end of block `b` (its offset, header and body), if its lengths are valid: a positive
/// header length and a body length of at least 0.
fn block_end(b: &Block) -> Option<u64> {
    let offset = u64::try_from(b.offset()).ok()?;
    let meta = u64::try_from(b.metaDataLength()).ok().filter(|&m| m > 0)?;
    let body = u64::try_from(b.bodyLength()).ok()?;
    offset.checked_add(meta)?.checked_add(body)
}

/// The bytes of block `b` of a [`FileFooter`] (which checked it): its header, then its body.
pub fn block_range(b: &Block) -> Range<u64> {
    let start = u64::try_from(b.offset()).unwrap_or(0);
    start..block_end(b).unwrap_or(start)
}

/// One message of an IPC stream, as [`walk_stream`] meets it.
#[derive(Debug)]
pub struct StreamMessage<'a> {
    /// The message's header.
    pub header: arrow_ipc::Message<'a>,
    /// Where the message starts in the stream (at its continuation marker, if it has one).
    pub offset: u64,
    /// Its bytes in the stream: marker and length, header and body.
    pub bytes: u64,
}

/// Walks the message headers of the `size`-byte IPC stream read by `r` (at `at`, for
/// errors), seeking past the bodies, and hands each to `visit`. The stream ends at its end
/// marker or, without one, at its last whole message.
///
/// # Errors
/// [`Error::Corrupt`] naming `at` for a length cut off, a header longer than
/// [`MAX_METADATA_BYTES`] or running past the end, one that does not parse, or a body running
/// past the end; [`Error::Io`] for a failed read; and what `visit` returns.
pub fn walk_stream(
    at: &Path,
    mut r: impl Read + Seek,
    size: u64,
    mut visit: impl FnMut(StreamMessage<'_>) -> Result<()>,
) -> Result<()> {
    let corrupt = |m: String| Error::corrupt(at, m);
    let mut pos = 0u64;
    while pos + 4 <= size {
        let offset = pos;
        let mut word = [0u8; 4];
        r.read_exact(&mut word).map_err(|e| Error::io(at, e))?;
        pos += 4;
        if word == [0xff; 4] {
            if pos + 4 > size {
                return Err(corrupt(format!("truncated message length at byte {pos}")));
            }
            r.read_exact(&mut word).map_err(|e| Error::io(at, e))?;
            pos += 4;
        }
        let len = i32::from_le_bytes(word);
        if len == 0 {
            break;
        }
        let len = u64::try_from(len)
            .ok()
            .filter(|&l| l <= MAX_METADATA_BYTES && pos + l <= size)
            .ok_or_else(|| {
                corrupt(format!(
                    "message length {len} at byte {} points past the end of the {size}-byte stream",
                    pos - 4
                ))
            })?;
        let mut meta = vec![0u8; len as usize];
        r.read_exact(&mut meta).map_err(|e| Error::io(at, e))?;
        pos += len;
        let header = arrow_ipc::root_as_message(&meta)
            .map_err(|e| corrupt(format!("bad message header at byte {}: {e}", pos - len)))?;
        let body = u64::try_from(header.bodyLength())
            .ok()
            .filter(|&b| pos + b <= size)
            .ok_or_else(|| {
                corrupt(format!(
                    "message body of {} bytes at byte {pos} runs past the end of the {size}-byte stream",
                    header.bodyLength()
                ))
            })?;
        r.seek(SeekFrom::Current(body as i64))
            .map_err(|e| Error::io(at, e))?;
        pos += body;
        visit(StreamMessage {
            header,
            offset,
            bytes: pos - offset,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch, StringArray};
    use arrow_ipc::writer::{FileWriter, IpcWriteOptions, StreamWriter};
    use proptest::prelude::*;

    use super::*;

    /// The 100-row batch the test streams and files repeat.
    fn batch() -> RecordBatch {
        RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from_iter_values(0..100)) as _),
            (
                "s",
                Arc::new(StringArray::from_iter_values(
                    (0..100).map(|i| format!("row {i}")),
                )) as _,
            ),
        ])
        .expect("batch")
    }

    fn lz4() -> IpcWriteOptions {
        IpcWriteOptions::default()
            .try_with_compression(Some(CompressionType::LZ4_FRAME))
            .expect("lz4")
    }

    /// An LZ4-compressed IPC stream of `batches` batches of 100 rows.
    fn stream(batches: usize) -> Vec<u8> {
        let (batch, options) = (batch(), lz4());
        let mut out = Vec::new();
        let mut w =
            StreamWriter::try_new_with_options(&mut out, &batch.schema(), options).expect("writer");
        for _ in 0..batches {
            w.write(&batch).expect("write");
        }
        w.finish().expect("finish");
        drop(w);
        out
    }

    /// Where each compressed buffer's prefix is in `data`, by walking the messages.
    fn prefixes(data: &[u8]) -> Vec<usize> {
        let (mut pos, mut out) = (0, Vec::new());
        while pos + 8 <= data.len() {
            let len = i32::from_le_bytes(data[pos + 4..pos + 8].try_into().expect("4")) as usize;
            if len == 0 {
                break;
            }
            let msg = arrow_ipc::root_as_message(&data[pos + 8..pos + 8 + len]).expect("header");
            let body = pos + 8 + len;
            for (offset, ..) in compressed_buffers(&msg).expect("buffers") {
                out.push(body + offset as usize);
            }
            pos = body + msg.bodyLength() as usize;
        }
        out
    }

    #[test]
    fn a_prefix_past_what_its_codec_can_expand_to_is_refused() {
        let good = stream(3);
        check_stream_messages(&good).expect("a stream arrow-ipc wrote");
        let at = prefixes(&good);
        assert_eq!(
            at.len(),
            3 * 3,
            "id values, s offsets and values (no nulls: no validity)"
        );
        for &p in &at {
            let mut bad = good.clone();
            bad[p..p + 8].copy_from_slice(&(1i64 << 60).to_le_bytes());
            let e = check_stream_messages(&bad)
                .expect_err("2^60 bytes from a few")
                .to_string();
            assert!(e.contains("declares 1152921504606846976"), "{e}");
            // -2 is neither a length nor the "stored as is" marker.
            bad[p..p + 8].copy_from_slice(&(-2i64).to_le_bytes());
            assert!(check_stream_messages(&bad).is_err());
            // -1 (stored uncompressed) and small lengths pass this check.
            bad[p..p + 8].copy_from_slice(&(-1i64).to_le_bytes());
            check_stream_messages(&bad).expect("-1");
        }
    }

    #[test]
    fn a_buffer_must_lie_inside_its_body() {
        let good = stream(1);
        let start = 8 + i32::from_le_bytes(good[4..8].try_into().expect("4")) as usize;
        let len = i32::from_le_bytes(good[start + 4..start + 8].try_into().expect("4")) as usize;
        let msg = arrow_ipc::root_as_message(&good[start + 8..start + 8 + len]).expect("header");
        let body = msg.bodyLength() as u64;
        check_buffers(&msg, body).expect("the body arrow-ipc wrote");
        let end = msg
            .header_as_record_batch()
            .and_then(|b| b.buffers())
            .and_then(|v| v.iter().map(|b| (b.offset() + b.length()) as u64).max())
            .expect("buffers");
        let e = check_buffers(&msg, end - 1)
            .expect_err("a body one byte short")
            .to_string();
        assert!(e.contains("lies outside the"), "{e}");
    }

    #[test]
    fn file_blocks_are_checked_the_same_way() {
        let good = stream(1);
        let at = prefixes(&good)[0];
        // The record batch message starts after the schema message, which has no body; the
        // block is the message without the stream's 8-byte end marker.
        let start = 8 + i32::from_le_bytes(good[4..8].try_into().expect("4")) as usize;
        let meta_len =
            8 + i32::from_le_bytes(good[start + 4..start + 8].try_into().expect("4")) as usize;
        let block = &good[start..good.len() - 8];
        check_message(block, meta_len).expect("valid");
        let mut bad = block.to_vec();
        let p = at - start;
        bad[p..p + 8].copy_from_slice(&i64::MAX.to_le_bytes());
        assert!(check_message(&bad, meta_len).is_err());
        assert!(check_message(&bad, bad.len() + 1).is_err());
    }

    /// An LZ4-compressed IPC file of `batches` batches of 100 rows.
    fn file(batches: usize) -> Vec<u8> {
        let (batch, options) = (batch(), lz4());
        let mut out = Vec::new();
        let mut w =
            FileWriter::try_new_with_options(&mut out, &batch.schema(), options).expect("writer");
        for _ in 0..batches {
            w.write(&batch).expect("write");
        }
        w.finish().expect("finish");
        drop(w);
        out
    }

    /// `data`'s footer, located and parsed as readers do.
    fn footer_of(data: &[u8]) -> Result<(FileFooter, u64)> {
        let at = Path::new("t.arrow");
        let range = footer_range(at, data.len() as u64, data, data)?;
        let bytes = &data[range.start as usize..range.end as usize];
        Ok((FileFooter::parse(at, bytes, range.start)?, range.start))
    }

    #[test]
    fn a_file_footer_lists_its_blocks_inside_the_data_section() {
        let good = file(3);
        let (footer, start) = footer_of(&good).expect("a file arrow-ipc wrote");
        assert_eq!(footer.record_batches.len(), 3);
        assert!(footer.dictionaries.is_empty());
        assert_eq!(footer.schema.fields().len(), 2);
        for b in &footer.record_batches {
            let r = block_range(b);
            assert!(r.start >= 8 && r.end <= start, "{r:?} outside ..{start}");
            let block = &good[r.start as usize..r.end as usize];
            check_message(block, b.metaDataLength() as usize).expect("valid");
        }
        // The footer length in front of the closing magic: past the file, negative, zero.
        let at = good.len() - 10;
        for len in [i32::MAX, -1, 0, good.len() as i32] {
            let mut bad = good.clone();
            bad[at..at + 4].copy_from_slice(&len.to_le_bytes());
            let e = footer_of(&bad).expect_err("a footer length that cannot be");
            assert!(
                e.to_string().contains(&format!("footer length {len}")),
                "{e}"
            );
        }
        for (k, what) in [(0, "at the start"), (good.len() - 1, "at the end")] {
            let mut bad = good.clone();
            bad[k] ^= 0x20;
            let e = footer_of(&bad).expect_err("no magic");
            assert!(e.to_string().contains(what), "{e}");
        }
        assert!(footer_of(&good[..17]).is_err(), "too short");
    }

    #[test]
    fn a_stream_walk_meets_every_message_once() {
        let good = stream(3);
        let mut seen = Vec::new();
        walk_stream(
            Path::new("t.arrows"),
            std::io::Cursor::new(&good),
            good.len() as u64,
            |m| {
                seen.push((m.offset, m.bytes, m.header.header_type()));
                Ok(())
            },
        )
        .expect("a stream arrow-ipc wrote");
        let kinds: Vec<_> = seen.iter().map(|s| s.2).collect();
        use arrow_ipc::MessageHeader as H;
        assert_eq!(
            kinds,
            [H::Schema, H::RecordBatch, H::RecordBatch, H::RecordBatch]
        );
        // The messages tile the stream up to its 8-byte end marker.
        let mut at = 0;
        for &(offset, bytes, _) in &seen {
            assert_eq!(offset, at);
            at += bytes;
        }
        assert_eq!(at + 8, good.len() as u64);
    }

    proptest! {
        /// A footer with damage anywhere in it is refused or parses to blocks that all lie
        /// in the data section; never a panic.
        #[test]
        fn damaged_footers_are_refused_or_stay_in_bounds(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        ) {
            let mut data = file(2);
            let footer = footer_range(Path::new("t"), data.len() as u64, &data, &data)
                .expect("a good footer");
            for (at, x) in flips {
                let i = footer.start as usize + at.index((footer.end - footer.start) as usize);
                data[i] ^= x;
            }
            if let Ok((f, start)) = footer_of(&data) {
                for b in f.dictionaries.iter().chain(&f.record_batches) {
                    let r = block_range(b);
                    prop_assert!(r.start >= 8 && r.start < r.end && r.end <= start);
                    prop_assert!(r.start.is_multiple_of(8) && b.metaDataLength() % 8 == 0);
                }
            }
        }

        /// Following a stream in pieces of any sizes gives the answer following it whole does,
        /// on good and damaged streams alike.
        #[test]
        fn a_stream_checks_the_same_in_any_pieces(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
        ) {
            let mut data = stream(2);
            for (at, x) in flips {
                let i = at.index(data.len());
                data[i] ^= x;
            }
            let whole = check_stream_messages(&data);
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(data.len() + 1)).collect();
            cuts.push(data.len());
            cuts.sort_unstable();
            let mut check = StreamCheck::new();
            let (mut from, mut pieces) = (0, Ok(()));
            for c in cuts {
                pieces = pieces.and_then(|()| check.follow(&data[from..c]));
                from = c;
            }
            let text = |r: Result<()>| r.map_err(|e| e.to_string());
            prop_assert_eq!(text(whole), text(pieces));
        }

        /// Damaged or cut streams: an answer, never a panic.
        #[test]
        fn damaged_streams_never_panic(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut data = stream(2);
            for (at, x) in flips {
                let i = at.index(data.len());
                data[i] ^= x;
            }
            let keep = cut.index(data.len() + 1);
            let _ = check_stream_messages(&data[..keep]);
        }
    }
}
