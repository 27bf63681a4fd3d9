//! What the fuzz targets in `fuzz/` run, and the tests that replay their seeds and findings:
//! each function reads untrusted bytes every way this crate can, panics only where an
//! invariant breaks (libFuzzer also reports a panic the readers' guard turns into an error),
//! and says whether every read succeeded, which a valid seed must.

use std::sync::Arc;

use arrowfeed_traits::{ByteSource, MemorySource, ScanPlan};
use bytes::Bytes;

use crate::{
    Format, IpcFileReader, IpcScanPlan, IpcStreamReader, ParquetScanPlan, PlanReader, ReadOptions,
    detect_format_of, info_source, open_source, stream_batch_infos_of,
};

fn source(data: &[u8]) -> Arc<dyn ByteSource> {
    Arc::new(MemorySource::new("fuzz", Bytes::copy_from_slice(data)))
}

/// Reads every batch of `plan` up to the first error; true if there was none.
fn drain_plan(plan: impl ScanPlan + 'static, source: Arc<dyn ByteSource>) -> bool {
    let mut reader = PlanReader::new(Box::new(plan), source).exact_batches(7);
    loop {
        match reader.next_batch() {
            Ok(Some(_)) => {}
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

/// Reads every batch of `batches` up to the first error; true if there was none.
fn drain<T, E>(batches: impl IntoIterator<Item = Result<T, E>>) -> bool {
    batches.into_iter().all(|b| b.is_ok())
}

/// Reads every batch of whatever `open_source` makes of `source`; true if all of it read.
fn drain_open(source: &Arc<dyn ByteSource>) -> bool {
    let options = ReadOptions::default().batch_size(5);
    open_source(source.clone(), &options).is_ok_and(drain)
}

/// `data` as a Parquet file: what `info` says, the reader, and the scan plan through our page
/// reader with small batches, parts and pieces (so that splits and page sharing run).
pub fn parquet(data: &[u8]) -> bool {
    let source = source(data);
    if !matches!(detect_format_of(&*source), Ok(Format::Parquet)) {
        return false;
    }
    let info = info_source(source.clone()).is_ok();
    let read = drain_open(&source);
    let planned =
        ParquetScanPlan::from_source(&source, &ReadOptions::default()).is_ok_and(|plan| {
            let plan = plan.decode_batch_rows(5).part_rows(11).piece_bytes(64);
            drain_plan(plan, source)
        });
    info && read && planned
}

/// `data` as an Arrow IPC file or stream: the file reader (each batch by index, and the batch
/// infos) and its scan plan, the stream reader and the stream walk. True if the readers of the
/// format the bytes claim read everything.
pub fn ipc(data: &[u8]) -> bool {
    let source = source(data);
    let info = info_source(source.clone()).is_ok();
    let read = drain_open(&source);
    let file = IpcFileReader::from_source(source.clone(), None).is_ok_and(|file| {
        file.batch_infos().is_ok() && (0..file.num_batches()).all(|i| file.read_batch(i).is_ok())
    });
    let stream = IpcStreamReader::from_source(source.clone(), None).is_ok_and(drain);
    let walked = stream_batch_infos_of(source.clone()).is_ok();
    let planned =
        IpcScanPlan::from_source(&source, None).is_ok_and(|plan| drain_plan(plan, source));
    info && read && ((file && planned) || (stream && walked))
}

/// `data` as raw snappy blocks: the first byte splits it in two; each block is decompressed
/// alone and both together, to the length each declares. Decoding alone and together must
/// agree, and a block that decodes comes to exactly its declared length. True if both decoded.
pub fn snappy(data: &[u8]) -> bool {
    let Some((&cut, rest)) = data.split_first() else {
        return false;
    };
    let (a, b) = rest.split_at(usize::from(cut).min(rest.len()));
    let declared = |block: &[u8]| {
        crate::snappy::decompressed_len(block)
            .ok()
            .map(|(len, _)| len)
            // A declared length past what a block of this size can hold fails before any
            // allocation; keep the harness's own allocations small too.
            .filter(|&len| len <= 1 << 20)
    };
    let (Some(a_len), Some(b_len)) = (declared(a), declared(b)) else {
        return false;
    };
    let alone = |block: &[u8], len: usize| {
        let mut out = b"prefix".to_vec();
        let ok = crate::snappy::decompress_into(block, len, &mut out).is_ok();
        assert!(
            out.starts_with(b"prefix"),
            "the output's old bytes were changed"
        );
        if ok {
            assert_eq!(out.len(), 6 + len, "a block decoded to another length");
        } else {
            assert_eq!(out.len(), 6, "a failed block left bytes behind");
        }
        ok.then_some(out)
    };
    let (one, two) = (alone(a, a_len), alone(b, b_len));
    let (mut a_out, mut b_out) = (b"prefix".to_vec(), b"prefix".to_vec());
    let both = crate::snappy::decompress_two_into((a, a_len, &mut a_out), (b, b_len, &mut b_out));
    match (&one, &two) {
        (Some(x), Some(y)) => {
            assert!(both.is_ok(), "two good blocks failed together");
            assert_eq!((x, y), (&a_out, &b_out), "together decoded differently");
            true
        }
        _ => {
            assert!(both.is_err(), "a bad block decoded when paired");
            assert_eq!(
                (a_out.len(), b_out.len()),
                (6, 6),
                "a failed pair left bytes"
            );
            false
        }
    }
}

/// `block` decompressed on its own to `len` bytes, or `None` if it is malformed: what the
/// `snappy` target compares with another decoder.
pub fn snappy_one(block: &[u8], len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    crate::snappy::decompress_into(block, len, &mut out).ok()?;
    Some(out)
}
