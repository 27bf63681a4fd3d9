//! Malformed input: every case is an `Err` naming the file, never a panic.

use std::path::Path;

use arrowfeed_traits::Error;
use proptest::prelude::*;

use crate::common::*;

fn valid_file(dir: &Path, out: Out) -> (std::path::PathBuf, Vec<u8>) {
    let cols = [Col::Int64, Col::Utf8, Col::ListInt32, Col::DictUtf8];
    let schema = schema(&cols);
    let path = dir.join(format!("valid-{out:?}"));
    write(&path, out, &schema, &batches(&cols, &[40, 60], 3));
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

/// Reading `bytes` as a file must fail with an error that names the file.
fn assert_fails_naming_file(dir: &Path, name: &str, bytes: &[u8]) -> Error {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let err = read_all(&path).expect_err(name);
    assert!(
        err.to_string().contains(name),
        "the error for {name} should name the file: {err}"
    );
    err
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = assert_fails_naming_file(dir.path(), "empty.parquet", b"");
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains("empty"), "{err}");
    assert!(arrowfeed_core_source::info(dir.path().join("empty.parquet")).is_err());
}

#[test]
fn directory_as_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = read_all(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}

#[test]
fn missing_file() {
    let err = read_all(Path::new("/nonexistent/dir/x.parquet")).unwrap_err();
    assert!(
        matches!(&err, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound),
        "{err:?}"
    );
    assert!(err.to_string().contains("/nonexistent/dir/x.parquet"));
}

#[test]
fn random_bytes_and_wrong_magic() {
    let dir = tempfile::tempdir().unwrap();
    let noise: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let err = assert_fails_naming_file(dir.path(), "noise.bin", &noise);
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    for out in [Out::Parquet, Out::IpcFile] {
        let (_, mut bytes) = valid_file(dir.path(), out);
        bytes[..4].copy_from_slice(b"JUNK");
        let err = assert_fails_naming_file(dir.path(), &format!("badmagic-{out:?}"), &bytes);
        assert!(matches!(err, Error::Corrupt { .. }), "{out:?}: {err:?}");
    }
    // Right magic at the start, wrong at the end.
    for out in [Out::Parquet, Out::IpcFile] {
        let (_, mut bytes) = valid_file(dir.path(), out);
        let n = bytes.len();
        bytes[n - 2..].copy_from_slice(b"XX");
        assert_fails_naming_file(dir.path(), &format!("badtail-{out:?}"), &bytes);
    }
}

#[test]
fn truncated_files() {
    let dir = tempfile::tempdir().unwrap();
    for out in OUTS {
        let (_, bytes) = valid_file(dir.path(), out);
        let n = bytes.len();
        for cut in [5, 12, n / 3, n / 2, n - 20, n - 1] {
            if out == Out::IpcStream || out == Out::IpcStreamZstd {
                // A stream cut exactly at a message boundary is a valid shorter stream; the
                // cuts here land inside messages.
            }
            let name = format!("cut{cut}-{out:?}");
            assert_fails_naming_file(dir.path(), &name, &bytes[..cut]);
        }
    }
}

#[test]
fn footer_lengths_pointing_outside_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // Parquet: the 4-byte metadata length before the trailing PAR1.
    let (_, mut pq) = valid_file(dir.path(), Out::Parquet);
    let n = pq.len();
    pq[n - 8..n - 4].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    let err = assert_fails_naming_file(dir.path(), "bigfooter.parquet", &pq);
    assert!(
        err.to_string().contains(&n.to_string()),
        "the error should give the file size: {err}"
    );
    // Arrow IPC file: the 4-byte footer length before the trailing ARROW1.
    let (_, mut ipc) = valid_file(dir.path(), Out::IpcFile);
    let n = ipc.len();
    ipc[n - 10..n - 6].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    let err = assert_fails_naming_file(dir.path(), "bigfooter.arrow", &ipc);
    assert!(
        matches!(err, Error::Corrupt { .. }) && err.to_string().contains("outside"),
        "{err}"
    );
    // Arrow IPC stream: a message length far past the end.
    let (_, mut st) = valid_file(dir.path(), Out::IpcStream);
    st[4..8].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
    assert_fails_naming_file(dir.path(), "biglen.arrows", &st);
    assert!(arrowfeed_core_source::stream_batch_infos(&dir.path().join("biglen.arrows")).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Flipped bytes and truncation anywhere: reading may succeed (the damage hit padding or
    /// values) or fail, but never panics, and a failure names the file.
    #[test]
    fn damaged_files_never_panic(which in 0usize..OUTS.len(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), cut in proptest::option::of(any::<prop::sample::Index>())) {
        let out = OUTS[which];
        let dir = tempfile::tempdir().unwrap();
        let (_, mut bytes) = valid_file(dir.path(), out);
        for (at, x) in flips {
            let i = at.index(bytes.len());
            bytes[i] ^= x.max(1);
        }
        if let Some(c) = cut {
            bytes.truncate(c.index(bytes.len()));
        }
        let path = dir.path().join("damaged");
        std::fs::write(&path, &bytes).unwrap();
        if let Err(e) = read_all(&path) {
            prop_assert!(e.to_string().contains("damaged"), "{}", e);
        }
        let _ = arrowfeed_core_source::info(&path);
    }
}

/// A compressed buffer whose length prefix claims more than its bytes can expand to is an
/// error naming the file, in the file reader, the stream reader and the scan plan; arrow-ipc
/// would otherwise allocate the claimed size first, and a failed allocation aborts.
#[test]
fn compressed_buffers_claiming_too_much_are_errors() {
    use arrow_ipc::CompressionType;
    use arrow_ipc::writer::{FileWriter, IpcWriteOptions, StreamWriter};
    let dir = tempfile::tempdir().unwrap();
    let batch = arrow_array::RecordBatch::try_from_iter([(
        "x",
        std::sync::Arc::new(arrow_array::Int64Array::from(vec![7i64; 1000])) as _,
    )])
    .unwrap();
    let claim = |bytes: &mut Vec<u8>| {
        // The values buffer: 8,000 bytes uncompressed; its prefix now claims ~7 EB.
        let at = bytes
            .windows(8)
            .position(|w| w == 8000i64.to_le_bytes())
            .expect("the values buffer's length prefix");
        bytes[at..at + 8].copy_from_slice(&0x6000_0000_0000_0000i64.to_le_bytes());
    };
    for codec in [CompressionType::LZ4_FRAME, CompressionType::ZSTD] {
        let options = IpcWriteOptions::default()
            .try_with_compression(Some(codec))
            .unwrap();
        let mut file = Vec::new();
        let mut w =
            FileWriter::try_new_with_options(&mut file, &batch.schema(), options.clone()).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
        drop(w);
        claim(&mut file);
        let name = format!("claims-{codec:?}.arrow");
        let e = assert_fails_naming_file(dir.path(), &name, &file);
        assert!(e.to_string().contains("declares"), "{e}");
        let path = dir.path().join(&name);
        let plan = arrowfeed_core_source::IpcScanPlan::try_new(&path, None).unwrap();
        let e = arrowfeed_traits::run_plan_in_order(plan, |r| {
            Ok(bytes::Bytes::copy_from_slice(
                &file[r.start as usize..r.end as usize],
            ))
        })
        .expect_err("the plan's decoder checks too");
        assert!(e.to_string().contains("declares"), "{e}");

        let mut stream = Vec::new();
        let mut w =
            StreamWriter::try_new_with_options(&mut stream, &batch.schema(), options).unwrap();
        w.write(&batch).unwrap();
        w.finish().unwrap();
        drop(w);
        claim(&mut stream);
        let e = assert_fails_naming_file(dir.path(), &format!("claims-{codec:?}.arrows"), &stream);
        assert!(e.to_string().contains("declares"), "{e}");
    }
}
