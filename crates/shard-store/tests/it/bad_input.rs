//! Bad input: each case a clear error naming the shard, never a crash.

use std::path::Path;

use arrowfeed_shard_store::{ShardProblem, ShardStore, StoreWriter};
use arrowfeed_traits::{Error, RandomAccess};
use proptest::prelude::*;

use crate::common::*;

fn store(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("s");
    write(
        &p,
        input(&[300]),
        &StoreWriter::new().shard_rows(100).batch_rows(40),
    );
    p
}

#[test]
fn a_shard_rewritten_in_place_is_refused_when_checksums_are_verified() {
    use arrowfeed_shard_store::{LoadMode, OpenOptions};
    let dir = tempfile::tempdir().unwrap();
    let p = store(dir.path());
    // Same size, one byte of shard 1's first batch's values changed: what a rewrite in place
    // does, and what a map shows without a signal.
    let shard = ShardStore::open(&p).unwrap().shard_rows()[1].0.clone();
    let path = p.join(&shard);
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() / 3;
    bytes[at] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    for mode in [LoadMode::Mmap, LoadMode::Read] {
        let options = OpenOptions::default().mode(mode).verify_checksums(true);
        let s = ShardStore::open_with(&p, options).unwrap();
        assert_eq!(
            s.take(&[5], None).unwrap(),
            ShardStore::open(&p).unwrap().take(&[5], None).unwrap(),
            "shard 0 is intact"
        );
        let e = s.take(&[150], None).unwrap_err();
        assert!(
            matches!(e, Error::Corrupt { .. })
                && e.to_string().contains(&shard)
                && e.to_string().contains("xxh3"),
            "{e}"
        );
    }
}

#[test]
fn out_of_range_indices() {
    let dir = tempfile::tempdir().unwrap();
    let s = ShardStore::open(store(dir.path())).unwrap();
    match s.take(&[5, 300], None) {
        Err(Error::IndexOutOfRange {
            index: 300,
            len: 300,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.slice(299, 2, None),
        Err(Error::IndexOutOfRange { .. })
    ));
}

#[test]
fn shard_paths_leaving_the_directory() {
    for bad in ["../outside.arrow", "/etc/passwd", "sub/dir.arrow", ".."] {
        let dir = tempfile::tempdir().unwrap();
        let p = store(dir.path());
        edit_manifest(&p, |v| v["shards"][1]["file"] = bad.into());
        let e = ShardStore::open(&p).unwrap_err();
        assert!(
            matches!(e, Error::Corrupt { .. })
                && e.to_string().contains("shard 1")
                && e.to_string().contains("manifest.json"),
            "{e}"
        );
    }
}

#[test]
fn row_counts_that_disagree() {
    let dir = tempfile::tempdir().unwrap();
    let p = store(dir.path());
    edit_manifest(&p, |v| v["rows"] = 301.into());
    assert!(
        ShardStore::open(&p)
            .unwrap_err()
            .to_string()
            .contains("add up to 300")
    );
    edit_manifest(&p, |v| {
        v["rows"] = 310.into();
        v["shards"][2]["rows"] = 110.into();
    });
    let s = ShardStore::open(&p).unwrap();
    let e = s.take(&[250], None).unwrap_err();
    assert!(
        e.to_string().contains("shard-00002.arrow") && e.to_string().contains("110"),
        "{e}"
    );
}

#[test]
fn a_schema_that_disagrees() {
    let dir = tempfile::tempdir().unwrap();
    let p = store(dir.path());
    let other = tempfile::tempdir().unwrap();
    let q = other.path().join("q");
    let b = arrow_array::RecordBatch::try_from_iter([(
        "x",
        std::sync::Arc::new(arrow_array::Int32Array::from(vec![1])) as _,
    )])
    .unwrap();
    arrowfeed_shard_store::write_batches(&q, b.schema(), vec![b], &StoreWriter::new()).unwrap();
    let other_schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(q.join("manifest.json")).unwrap()).unwrap();
    edit_manifest(&p, |v| {
        v["schema_ipc_hex"] = other_schema["schema_ipc_hex"].clone();
        v["columns"] = other_schema["columns"].clone();
    });
    let s = ShardStore::open(&p).unwrap();
    let e = s.take(&[0], None).unwrap_err();
    assert!(
        e.to_string().contains("shard-00000.arrow") && e.to_string().contains("schema"),
        "{e}"
    );
}

#[test]
fn missing_and_truncated_shards() {
    let dir = tempfile::tempdir().unwrap();
    let p = store(dir.path());
    std::fs::remove_file(p.join("shard-00001.arrow")).unwrap();
    let s = ShardStore::open(&p).unwrap();
    let e = s.take(&[150], None).unwrap_err();
    assert!(
        matches!(e, Error::Io { .. }) && e.to_string().contains("shard-00001.arrow"),
        "{e}"
    );
    assert_eq!(
        s.take(&[50], None).unwrap().num_rows(),
        1,
        "other shards still read"
    );
    // Loaded side by side with others, the missing shard is still the error.
    let s = ShardStore::open(&p).unwrap();
    let e = s.take(&[250, 150, 50], None).unwrap_err();
    assert!(e.to_string().contains("shard-00001.arrow"), "{e}");
    assert_eq!(s.take(&[250, 50], None).unwrap().num_rows(), 2);
    let v = s.verify().unwrap();
    assert_eq!(v.bad.len(), 1);
    assert_eq!(v.bad[0].file, "shard-00001.arrow");
    assert!(
        matches!(&v.bad[0].problem, ShardProblem::Unreadable(e) if e.contains("cannot open")),
        "{:?}",
        v.bad[0]
    );

    let f = p.join("shard-00002.arrow");
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    let e = ShardStore::open(&p)
        .unwrap()
        .take(&[250], None)
        .unwrap_err();
    assert!(
        e.to_string().contains("shard-00002.arrow") && e.to_string().contains("truncated"),
        "{e}"
    );
}

#[test]
fn not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let e = ShardStore::open(dir.path()).unwrap_err();
    assert!(e.to_string().contains("not a shard store"), "{e}");
    std::fs::write(dir.path().join("manifest.json"), "{not json").unwrap();
    let e = ShardStore::open(dir.path()).unwrap_err();
    assert!(
        e.to_string().contains("manifest.json") && e.to_string().contains("JSON"),
        "{e}"
    );
    let f = dir.path().join("file");
    std::fs::write(&f, "x").unwrap();
    assert!(matches!(ShardStore::open(&f), Err(Error::Io { .. })));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A flipped byte anywhere in a shard: verify names the shard, and reading it returns rows
    /// or an error naming it, never a crash.
    #[test]
    fn a_flipped_byte_is_caught_by_verify_and_never_crashes_a_read(shard in 0usize..3, at in any::<prop::sample::Index>(), x in 1u8..=255, mode_read in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        let p = store(dir.path());
        let name = format!("shard-{shard:05}.arrow");
        let f = p.join(&name);
        let mut bytes = std::fs::read(&f).unwrap();
        let i = at.index(bytes.len());
        bytes[i] ^= x;
        std::fs::write(&f, &bytes).unwrap();
        let mode = if mode_read { arrowfeed_shard_store::LoadMode::Read } else { arrowfeed_shard_store::LoadMode::Mmap };
        let s = ShardStore::open_with(&p, arrowfeed_shard_store::OpenOptions::default().mode(mode)).unwrap();
        let v = s.verify().unwrap();
        prop_assert_eq!(v.bad.len(), 1);
        prop_assert_eq!(&v.bad[0].file, &name);
        // Same size, other bytes: the checksum is what differs.
        let is_checksum = matches!(v.bad[0].problem, ShardProblem::Checksum { found, recorded } if found != recorded);
        prop_assert!(is_checksum, "{:?}", v.bad[0]);
        let rows: Vec<u64> = (0..300).step_by(7).collect();
        if let Err(e) = s.take(&rows, None) {
            prop_assert!(e.to_string().contains(&name), "{}", e);
        }
    }
}

/// Where the first compressed buffer of the first compressed message at or after `from`
/// starts: its 8-byte uncompressed-length prefix.
fn first_prefix_at(bytes: &[u8], from: usize) -> usize {
    let mut pos = from;
    loop {
        if bytes[pos..pos + 4] == [0xff; 4] {
            pos += 4;
        }
        let len = i32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        assert!(
            len > 0,
            "no compressed record batch in the {} bytes",
            bytes.len()
        );
        let meta_end = pos + 4 + len;
        let msg = arrow_ipc::root_as_message(&bytes[pos + 4..meta_end]).unwrap();
        if let Some(&(offset, ..)) = arrowfeed_traits::ipc::compressed_buffers(&msg)
            .unwrap()
            .first()
        {
            return meta_end + offset as usize;
        }
        pos = meta_end + msg.bodyLength() as usize;
    }
}

/// Where an IPC file's first record batch message starts, as its footer says.
fn first_batch_block(bytes: &[u8]) -> usize {
    let n = bytes.len();
    let footer_len = i32::from_le_bytes(bytes[n - 10..n - 6].try_into().unwrap()) as usize;
    let footer = arrow_ipc::root_as_footer(&bytes[n - 10 - footer_len..n - 10]).unwrap();
    footer.recordBatches().unwrap().get(0).offset() as usize
}

/// A compressed buffer whose length prefix declares 2^60 bytes: arrow-ipc would allocate that
/// before decompressing, and the failed allocation would abort the process. Refused first, in
/// both shard kinds and both load modes.
#[test]
fn a_compressed_buffer_declaring_2_to_the_60_bytes_is_an_error_not_an_abort() {
    let huge = (1i64 << 60).to_le_bytes();
    for mode in [
        arrowfeed_shard_store::LoadMode::Read,
        arrowfeed_shard_store::LoadMode::Mmap,
    ] {
        // Opens the store at `dir`, and checks that reading `row` is refused naming `shard`.
        let refused = |dir: &Path, row: u64, shard: &str| {
            let s = ShardStore::open_with(
                dir,
                arrowfeed_shard_store::OpenOptions::default().mode(mode),
            )
            .unwrap();
            let e = s.take(&[row], None).unwrap_err();
            assert!(
                matches!(e, Error::Corrupt { .. })
                    && e.to_string().contains(shard)
                    && e.to_string().contains("declares"),
                "{e}"
            );
            s
        };
        // An arrowfeed store with LZ4 shards (IPC files).
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s");
        write(
            &p,
            input(&[300]),
            &StoreWriter::new()
                .shard_rows(100)
                .batch_rows(40)
                .compression(arrowfeed_shard_store::ShardCompression::Lz4),
        );
        let f = p.join("shard-00001.arrow");
        let mut bytes = std::fs::read(&f).unwrap();
        let at = first_prefix_at(&bytes, first_batch_block(&bytes));
        bytes[at..at + 8].copy_from_slice(&huge);
        std::fs::write(&f, &bytes).unwrap();
        let s = refused(&p, 150, "shard-00001.arrow");
        assert_eq!(
            s.take(&[5], None).unwrap().num_rows(),
            1,
            "shard 0 still reads"
        );

        // A Hugging Face directory: an LZ4-compressed IPC stream.
        let hf = dir.path().join("hf");
        let mut stream = ipc_stream(&input(&[120]), Some(arrow_ipc::CompressionType::LZ4_FRAME));
        let at = first_prefix_at(&stream, 0);
        stream[at..at + 8].copy_from_slice(&huge);
        hf_dir(&hf, &stream);
        refused(&hf, 3, "data-00000-of-00001.arrow");
    }
}

/// A cap of zero open shards cannot work: opening says so, naming the setting, locally and
/// before anything is read.
#[test]
fn zero_open_shards_is_an_error_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let p = store(dir.path());
    let e = ShardStore::open_with(
        &p,
        arrowfeed_shard_store::OpenOptions::default().max_open_shards(0),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument { .. }) && e.to_string().contains("max_open_shards"),
        "{e}"
    );
    let one = arrowfeed_shard_store::OpenOptions::default().max_open_shards(1);
    assert_eq!(ShardStore::open_with(&p, one).unwrap().max_open_shards(), 1);
}
