//! Checks on Arrow IPC messages that arrow-ipc does not make before it allocates (feature
//! `ipc`).
//!
//! A compressed IPC buffer starts with its uncompressed length, and arrow-ipc allocates that
//! many bytes before decompressing. A damaged or crafted prefix (say 2^60) makes the allocation
//! fail, and a failed allocation aborts the process: no `Result`, no `catch_unwind`. Every
//! arrowfeed crate that decodes IPC bytes it did not just write checks each message here first,
//! against what the buffer's codec could expand to.
//!
//! ```
//! use arrowfeed_traits::ipc::check_stream_messages;
//!
//! // Not IPC at all: nothing this check can follow, so nothing to refuse (the decoder will).
//! assert!(check_stream_messages(b"hello").is_ok());
//! ```

use arrow_ipc::CompressionType;

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
) -> Result<Vec<(u64, u64, CompressionType)>, String> {
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
            return Err(format!("buffer {k} has a negative offset or length"));
        };
        if len == 0 {
            continue;
        }
        if len < 8 {
            return Err(format!(
                "compressed buffer {k} of {len} bytes is shorter than its 8-byte length prefix"
            ));
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
pub fn check_prefix(prefix: [u8; 8], len: u64, codec: CompressionType) -> Result<(), String> {
    let declared = i64::from_le_bytes(prefix);
    let most = (len.saturating_sub(8))
        .saturating_mul(max_expansion(codec))
        .saturating_add(64);
    if declared == -1 || u64::try_from(declared).is_ok_and(|d| d <= most) {
        Ok(())
    } else {
        Err(format!(
            "a {len}-byte compressed buffer declares {declared} bytes uncompressed (at most {most} possible)"
        ))
    }
}

/// Parses an encapsulated message header: its 4-byte length (after the continuation marker,
/// if there is one), then the flatbuffer.
///
/// # Errors
/// Bytes too short for the length, or a flatbuffer that does not verify.
pub fn message_header(meta: &[u8]) -> Result<arrow_ipc::Message<'_>, String> {
    let header = match meta {
        [0xff, 0xff, 0xff, 0xff, rest @ ..] => rest.get(4..),
        _ => meta.get(4..),
    }
    .ok_or("message header shorter than its length prefix")?;
    arrow_ipc::root_as_message(header).map_err(|e| format!("bad message header: {e}"))
}

/// Checks the compressed buffers of `body`, the body of the message `msg`.
fn check_body(msg: &arrow_ipc::Message<'_>, body: &[u8]) -> Result<(), String> {
    for (offset, len, codec) in compressed_buffers(msg)? {
        let prefix = usize::try_from(offset)
            .ok()
            .and_then(|o| body.get(o..o.checked_add(8)?))
            .ok_or_else(|| {
                format!(
                    "a buffer at {offset} lies outside the {}-byte body",
                    body.len()
                )
            })?;
        let mut p = [0u8; 8];
        p.copy_from_slice(prefix);
        check_prefix(p, len, codec)?;
    }
    Ok(())
}

/// Checks the compressed buffers of one message of an IPC file: `block` is its header
/// (`meta_len` bytes, as the file's footer block says) and then its body.
///
/// # Errors
/// A header that does not parse, a buffer outside the body, or a prefix [`check_prefix`]
/// refuses.
pub fn check_compressed_message(block: &[u8], meta_len: usize) -> Result<(), String> {
    let meta = block
        .get(..meta_len)
        .ok_or("the message is shorter than its header")?;
    check_body(&message_header(meta)?, &block[meta_len..])
}

/// Checks the compressed buffers of every whole message in `data`, bytes of an IPC stream
/// from a message boundary. Framing it cannot follow (a header that does not parse, a message
/// cut off at the end) ends the check without an error: the decoder meets it and says so.
///
/// # Errors
/// A buffer outside its body, or a prefix [`check_prefix`] refuses.
pub fn check_stream_messages(data: &[u8]) -> Result<(), String> {
    let mut rest = data;
    loop {
        // The continuation marker, if the message has one (streams before Arrow 0.15 do not).
        let marker: usize = if rest.starts_with(&[0xff; 4]) { 4 } else { 0 };
        let Some(len) = rest.get(marker..marker + 4) else {
            return Ok(());
        };
        let len = i32::from_le_bytes([len[0], len[1], len[2], len[3]]);
        let Some(meta_end) = usize::try_from(len)
            .ok()
            .filter(|&l| l > 0)
            .and_then(|l| (marker + 4).checked_add(l))
        else {
            return Ok(());
        };
        let Some(Ok(msg)) = rest
            .get(marker + 4..meta_end)
            .map(arrow_ipc::root_as_message)
        else {
            return Ok(());
        };
        let Some(body_end) = usize::try_from(msg.bodyLength())
            .ok()
            .and_then(|b| meta_end.checked_add(b))
            .filter(|&e| e <= rest.len())
        else {
            return Ok(());
        };
        check_body(&msg, &rest[meta_end..body_end])?;
        rest = &rest[body_end..];
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch, StringArray};
    use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
    use proptest::prelude::*;

    use super::*;

    /// An LZ4-compressed IPC stream of `batches` batches of 100 rows.
    fn stream(batches: usize) -> Vec<u8> {
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from_iter_values(0..100)) as _),
            (
                "s",
                Arc::new(StringArray::from_iter_values(
                    (0..100).map(|i| format!("row {i}")),
                )) as _,
            ),
        ])
        .expect("batch");
        let options = IpcWriteOptions::default()
            .try_with_compression(Some(CompressionType::LZ4_FRAME))
            .expect("lz4");
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
            let e = check_stream_messages(&bad).expect_err("2^60 bytes from a few");
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
    fn file_blocks_are_checked_the_same_way() {
        let good = stream(1);
        let at = prefixes(&good)[0];
        // The record batch message starts after the schema message, which has no body; the
        // block is the message without the stream's 8-byte end marker.
        let start = 8 + i32::from_le_bytes(good[4..8].try_into().expect("4")) as usize;
        let meta_len =
            8 + i32::from_le_bytes(good[start + 4..start + 8].try_into().expect("4")) as usize;
        let block = &good[start..good.len() - 8];
        check_compressed_message(block, meta_len).expect("valid");
        let mut bad = block.to_vec();
        let p = at - start;
        bad[p..p + 8].copy_from_slice(&i64::MAX.to_le_bytes());
        assert!(check_compressed_message(&bad, meta_len).is_err());
        assert!(check_compressed_message(&bad, bad.len() + 1).is_err());
    }

    proptest! {
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
