//! The engine on the core-source plans, checked against the parquet crate's own reader and
//! arrow-ipc's file reader: nested, dictionary and nullable columns, projections, row-group
//! selections, every kind of source, any settings.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arrow_array::builder::{Int32Builder, ListBuilder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{
    ArrayRef, Int32Array, Int64Array, LargeBinaryArray, RecordBatch, StringArray, StructArray,
};
use arrow_schema::{DataType, Field};
use arrowfeed_core_source::{IpcScanPlan, LocalFile, MmapFile, ParquetScanPlan, ReadOptions};
use arrowfeed_decode_sched::{LatencySource, Scan};
use arrowfeed_traits::{ByteSource, MemorySource};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::properties::WriterProperties;
use proptest::prelude::*;

use crate::common::within;

const ROWS: usize = 5_000;

/// A batch with nullable, nested, dictionary and large columns; deterministic in `seed`.
fn table(rows: usize, seed: u64) -> RecordBatch {
    let mut s = seed;
    let mut next = move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        s >> 33
    };
    let mut ids = Vec::with_capacity(rows);
    let mut text = Vec::with_capacity(rows);
    let mut blob = Vec::with_capacity(rows);
    let mut a = Vec::with_capacity(rows);
    let mut tokens = ListBuilder::new(Int32Builder::new());
    let mut dict = StringDictionaryBuilder::<Int32Type>::new();
    for i in 0..rows {
        ids.push(i as i64);
        let r = next();
        text.push((r % 9 != 0).then(|| "x".repeat((r % 40) as usize) + &i.to_string()));
        blob.push(vec![(r & 0xff) as u8; (r % 300) as usize]);
        a.push((r % 5 != 0).then_some(r as i32));
        if r % 11 == 0 {
            tokens.append_null();
        } else {
            for k in 0..(r % 17) {
                tokens.values().append_value((r + k) as i32);
            }
            tokens.append(true);
        }
        if r % 13 == 0 {
            dict.append_null();
        } else {
            dict.append_value(["cat", "dog", "bird", "fish"][(r % 4) as usize]);
        }
    }
    let inner: ArrayRef = Arc::new(Int32Array::from(a));
    let label: ArrayRef = Arc::new(StringArray::from(
        (0..rows).map(|i| format!("l{}", i % 7)).collect::<Vec<_>>(),
    ));
    let nested = StructArray::from(vec![
        (Arc::new(Field::new("a", DataType::Int32, true)), inner),
        (Arc::new(Field::new("label", DataType::Utf8, false)), label),
    ]);
    RecordBatch::try_from_iter([
        ("id", Arc::new(Int64Array::from(ids)) as ArrayRef),
        ("text", Arc::new(StringArray::from(text)) as ArrayRef),
        ("tokens", Arc::new(tokens.finish()) as ArrayRef),
        ("nested", Arc::new(nested) as ArrayRef),
        ("kind", Arc::new(dict.finish()) as ArrayRef),
        (
            "blob",
            Arc::new(LargeBinaryArray::from_iter_values(blob)) as ArrayRef,
        ),
    ])
    .expect("columns of equal length")
}

struct Files {
    parquet: PathBuf,
    ipc: PathBuf,
}

/// Written once per test run: a Parquet file of uneven row groups and small pages, and an IPC
/// file of uneven batches.
fn files() -> &'static Files {
    static FILES: OnceLock<Files> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("decode-sched-formats");
        std::fs::create_dir_all(&dir).expect("target tmpdir is writable");
        let batch = table(ROWS, 7);
        let parquet = dir.join("nested.parquet");
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(700))
            .set_data_page_row_count_limit(64)
            .set_write_batch_size(64)
            .set_compression(parquet::basic::Compression::SNAPPY)
            .build();
        let f = std::fs::File::create(&parquet).expect("create");
        let mut w = ArrowWriter::try_new(f, batch.schema(), Some(props)).expect("writer");
        w.write(&batch).expect("write");
        w.close().expect("close");
        let ipc = dir.join("nested.arrow");
        let f = std::fs::File::create(&ipc).expect("create");
        let mut w = arrow_ipc::writer::FileWriter::try_new(f, &batch.schema()).expect("writer");
        let mut at = 0;
        for len in [1, 999, 0, 2000, 333, 1667] {
            w.write(&batch.slice(at, len)).expect("write");
            at += len;
        }
        w.finish().expect("finish");
        Files { parquet, ipc }
    })
}

/// Walks two batch sequences and checks they hold the same rows, whatever their batch sizes.
fn assert_same_rows(
    ours: impl Iterator<Item = RecordBatch>,
    theirs: impl Iterator<Item = RecordBatch>,
) -> usize {
    let mut ours = ours.filter(|b| b.num_rows() > 0);
    let mut theirs = theirs.filter(|b| b.num_rows() > 0);
    let (mut a, mut b): (Option<RecordBatch>, Option<RecordBatch>) = (None, None);
    let mut rows = 0;
    loop {
        if a.is_none() {
            a = ours.next();
        }
        if b.is_none() {
            b = theirs.next();
        }
        let (x, y) = match (a.take(), b.take()) {
            (None, None) => return rows,
            (Some(x), None) => panic!("{} extra rows after row {rows}", x.num_rows()),
            (None, Some(y)) => panic!("{} rows missing after row {rows}", y.num_rows()),
            (Some(x), Some(y)) => (x, y),
        };
        let n = x.num_rows().min(y.num_rows());
        assert_eq!(x.schema().fields(), y.schema().fields());
        for (c, (p, q)) in x.columns().iter().zip(y.columns()).enumerate() {
            assert_eq!(
                p.slice(0, n).to_data(),
                q.slice(0, n).to_data(),
                "column {c} differs in rows {rows}..{}",
                rows + n
            );
        }
        rows += n;
        if x.num_rows() > n {
            a = Some(x.slice(n, x.num_rows() - n));
        }
        if y.num_rows() > n {
            b = Some(y.slice(n, y.num_rows() - n));
        }
    }
}

fn reference_parquet(path: &Path, options: &ReadOptions) -> Vec<RecordBatch> {
    let f = std::fs::File::open(path).expect("open");
    let mut b = ParquetRecordBatchReaderBuilder::try_new(f).expect("footer");
    if let Some(rgs) = &options.row_groups {
        b = b.with_row_groups(rgs.clone());
    }
    if let Some(cols) = &options.columns {
        // The parquet crate projects in file order; the plan keeps the asked order. Compare in
        // the asked order by projecting the reference's output.
        let schema = b.schema().clone();
        let reader = b.build().expect("reader");
        return reader
            .map(|r| {
                let r = r.expect("decodes");
                let idx: Vec<usize> = cols
                    .iter()
                    .map(|c| schema.index_of(c).expect("column exists"))
                    .collect();
                r.project(&idx).expect("project")
            })
            .collect();
    }
    b.build()
        .expect("reader")
        .map(|r| r.expect("decodes"))
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Local,
    Mmap,
    Memory,
    Slow,
}

fn source(kind: Kind, path: &Path) -> Arc<dyn ByteSource> {
    match kind {
        Kind::Local => Arc::new(LocalFile::open(path).expect("open")),
        Kind::Mmap => Arc::new(MmapFile::open(path).expect("map")),
        Kind::Memory => Arc::new(MemorySource::new(
            path.display().to_string(),
            std::fs::read(path).expect("read"),
        )),
        Kind::Slow => Arc::new(LatencySource::new(
            LocalFile::open(path).expect("open"),
            Duration::from_micros(300),
        )),
    }
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Local),
        Just(Kind::Mmap),
        Just(Kind::Memory),
        Just(Kind::Slow)
    ]
}

const COLUMNS: [&str; 6] = ["id", "text", "tokens", "nested", "kind", "blob"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    /// For any projection (in any order), row-group selection, batch size, split of row groups
    /// into parts, source and settings, the engine's Parquet output holds the parquet crate's rows, in exact batches.
    #[test]
    fn parquet_equals_the_parquet_crate(
        columns in proptest::option::of(proptest::sample::subsequence(COLUMNS.to_vec(), 1..6).prop_shuffle()),
        row_groups in proptest::option::of(proptest::sample::subsequence((0..8usize).collect::<Vec<_>>(), 0..8)),
        bs in 1usize..3000,
        decode_rows in prop_oneof![Just(None), (1usize..1500).prop_map(Some)],
        part_rows in prop_oneof![Just(None), (0usize..1500).prop_map(Some)],
        kind in kind(),
        io in 1usize..6,
        decode in 1usize..4,
        budget in prop_oneof![Just(1u64), 1u64..200_000, Just(1u64 << 30)],
        max_request in prop_oneof![Just(None), (1u64..100_000).prop_map(Some)],
    ) {
        let path = files().parquet.clone();
        let mut options = ReadOptions::default();
        options.columns = columns.map(|c| c.into_iter().map(String::from).collect());
        options.row_groups = row_groups;
        let expected = reference_parquet(&path, &options);
        let got = within(Duration::from_secs(30), move || {
            let mut plan = ParquetScanPlan::try_new(&path, &options).expect("plan");
            if let Some(n) = decode_rows {
                plan = plan.decode_batch_rows(n);
            }
            if let Some(n) = part_rows {
                plan = plan.part_rows(n);
            }
            let mut scan = Scan::from_parts(source(kind, &path), Box::new(plan))
                .batch_size(bs)
                .io_parallelism(io)
                .decode_parallelism(decode)
                .memory_budget(budget as usize);
            if let Some(m) = max_request {
                scan = scan.max_request_bytes(m);
            }
            scan.reader().expect("settings").collect::<Result<Vec<_>, _>>().expect("no error")
        });
        if let Some((last, full)) = got.split_last() {
            prop_assert!(full.iter().all(|b| b.num_rows() == bs));
            prop_assert!(last.num_rows() <= bs);
        }
        let rows = assert_same_rows(got.into_iter(), expected.into_iter());
        prop_assert!(rows <= ROWS);
    }

    /// The same for the Arrow IPC plan against arrow-ipc's own file reader.
    #[test]
    fn ipc_equals_arrow_ipc(
        columns in proptest::option::of(proptest::sample::subsequence(COLUMNS.to_vec(), 1..6).prop_shuffle()),
        bs in 1usize..3000,
        kind in kind(),
        decode in 1usize..4,
        budget in prop_oneof![Just(1u64), 1u64..200_000, Just(1u64 << 30)],
    ) {
        let path = files().ipc.clone();
        let f = std::fs::File::open(&path).expect("open");
        let reader = arrow_ipc::reader::FileReader::try_new(f, None).expect("footer");
        let schema = reader.schema();
        let idx: Option<Vec<usize>> = columns.as_ref().map(|c| c.iter().map(|n| schema.index_of(n).expect("exists")).collect());
        let expected: Vec<RecordBatch> = reader
            .map(|b| {
                let b = b.expect("decodes");
                match &idx { Some(i) => b.project(i).expect("project"), None => b }
            })
            .collect();
        let names: Option<Vec<String>> = columns.map(|c| c.into_iter().map(String::from).collect());
        let got = within(Duration::from_secs(30), move || {
            let plan = IpcScanPlan::try_new(&path, names.as_deref()).expect("plan");
            Scan::from_parts(source(kind, &path), Box::new(plan))
                .batch_size(bs)
                .decode_parallelism(decode)
                .memory_budget(budget as usize)
                .reader()
                .expect("settings")
                .collect::<Result<Vec<_>, _>>()
                .expect("no error")
        });
        if let Some((_, full)) = got.split_last() {
            prop_assert!(full.iter().all(|b| b.num_rows() == bs));
        }
        prop_assert_eq!(assert_same_rows(got.into_iter(), expected.into_iter()), ROWS);
    }
}

/// A scan whose batch size is left unset fits it to its memory budget: every batch but the
/// last has `batch_rows()` rows, the fewest allowed at a budget of one byte, the default at a
/// large budget, and in between about what an eighth of the budget holds. A batch size that
/// is set stays, whatever the budget. The rows are the parquet crate's in every case.
#[test]
fn an_unset_batch_size_is_fitted_to_the_memory_budget() {
    use arrowfeed_decode_sched::{BATCH_SHARE_OF_BUDGET, DEFAULT_BATCH_SIZE};
    use arrowfeed_traits::{MIN_FITTED_ROWS, batch_memory_size};
    let path = files().parquet.clone();
    let expected = || reference_parquet(&path, &ReadOptions::default());
    let scan = |budget: u64, bs: Option<usize>| {
        let path = path.clone();
        within(Duration::from_secs(30), move || {
            let plan = ParquetScanPlan::try_new(&path, &ReadOptions::default()).expect("plan");
            let mut scan = Scan::from_parts(source(Kind::Mmap, &path), Box::new(plan))
                .decode_parallelism(2)
                .memory_budget(budget as usize);
            if let Some(n) = bs {
                scan = scan.batch_size(n);
            }
            let reader = scan.reader().expect("settings");
            let rows = reader.batch_rows();
            let batches = reader.collect::<Result<Vec<_>, _>>().expect("no error");
            if let Some((_, full)) = batches.split_last() {
                assert!(
                    full.iter().all(|b| b.num_rows() == rows),
                    "batches of {rows} rows"
                );
            }
            (rows, batches)
        })
    };

    let (rows, got) = scan(1, None);
    assert_eq!(rows, MIN_FITTED_ROWS);
    let row_bytes = batch_memory_size(&got[0]) as u64 / rows as u64;
    assert_same_rows(got.into_iter(), expected().into_iter());

    assert_eq!(scan(1 << 30, None).0, DEFAULT_BATCH_SIZE);

    // Room for 1,000 rows in an eighth: the footer's estimate is within 4x of the decoded size.
    let (rows, got) = scan(BATCH_SHARE_OF_BUDGET * 1000 * row_bytes, None);
    assert!(
        (250..=4000).contains(&rows),
        "{rows} rows for 1,000 rows' room"
    );
    assert_same_rows(got.into_iter(), expected().into_iter());

    let (rows, got) = scan(1, Some(700));
    assert_eq!(rows, 700);
    assert_same_rows(got.into_iter(), expected().into_iter());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Row groups split into parts of any size, handed over in pieces of any size, with any
    /// batch size: the rows and the cuts between batches are the parquet crate's, and the
    /// parts and pieces did happen.
    #[test]
    fn parquet_parts_equal_the_parquet_crate(
        columns in proptest::option::of(proptest::sample::subsequence(COLUMNS.to_vec(), 1..6)),
        bs in 1usize..300,
        part_rows in 1usize..700,
        piece_bytes in prop_oneof![Just(0usize), 0usize..50_000, Just(usize::MAX)],
        decode in 1usize..4,
    ) {
        let path = files().parquet.clone();
        let mut options = ReadOptions::default();
        options.columns = columns.map(|c| c.into_iter().map(String::from).collect());
        let expected = reference_parquet(&path, &options);
        let (got, metrics) = within(Duration::from_secs(30), move || {
            let plan = ParquetScanPlan::try_new(&path, &options)
                .expect("plan")
                .decode_batch_rows(bs)
                .part_rows(part_rows)
                .piece_bytes(piece_bytes);
            let mut reader = Scan::from_parts(source(Kind::Mmap, &path), Box::new(plan))
                .batch_size(bs)
                .decode_parallelism(decode)
                .reader()
                .expect("settings");
            let got = reader.by_ref().collect::<Result<Vec<_>, _>>().expect("no error");
            (got, reader.metrics())
        });
        // Every row group is at least one part. The first (700 rows) has a cut when a multiple
        // of the batch size lies at least `part_rows` past its first row and before its end.
        let row_groups = ROWS.div_ceil(700) as u64;
        if part_rows.div_ceil(bs) * bs < 700 {
            prop_assert!(
                metrics.parts > row_groups,
                "no split with part_rows {part_rows}, batch size {bs}: {metrics:?}"
            );
        }
        // With pieces of no size each decoded batch is a piece: batches end at multiples of
        // the batch size and at row-group ends. Whole parts are one piece each.
        if piece_bytes == 0 {
            let ends: std::collections::BTreeSet<usize> =
                (1..=ROWS / bs).map(|k| k * bs).chain((1..=ROWS / 700).map(|k| k * 700)).chain([ROWS]).collect();
            prop_assert_eq!(metrics.pieces, ends.len() as u64);
        }
        if piece_bytes == usize::MAX {
            prop_assert_eq!(metrics.pieces, metrics.parts);
        }
        if let Some((_, full)) = got.split_last() {
            prop_assert!(full.iter().all(|b| b.num_rows() == bs));
        }
        prop_assert_eq!(assert_same_rows(got.into_iter(), expected.into_iter()), ROWS);
    }
}

#[test]
fn projection_reads_only_the_projected_columns() {
    let path = &files().parquet;
    let options = ReadOptions::default().columns(["id"]);
    let plan = ParquetScanPlan::try_new(path, &options).expect("plan");
    let slow = Arc::new(LatencySource::new(
        LocalFile::open(path).expect("open"),
        Duration::ZERO,
    ));
    let reader = Scan::from_parts(slow.clone(), Box::new(plan))
        .coalesce_gap(0)
        .reader()
        .expect("settings");
    let m = {
        let mut reader = reader;
        while reader.next_batch().expect("no error").is_some() {}
        reader.metrics()
    };
    let md = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).expect("open"))
        .expect("footer")
        .metadata()
        .clone();
    let id_bytes: i64 = md
        .row_groups()
        .iter()
        .map(|rg| rg.column(0).compressed_size())
        .sum();
    assert_eq!(m.bytes_read, id_bytes as u64);
    assert_eq!(slow.bytes_read(), id_bytes as u64);
    assert_eq!(m.requests, md.num_row_groups() as u64);
}

#[test]
fn a_truncated_parquet_file_is_an_error_naming_it() {
    let src = &files().parquet;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cut.parquet");
    let plan = ParquetScanPlan::try_new(src, &ReadOptions::default()).expect("plan");
    // The plan was made from the whole file; the source has lost its second half.
    let bytes = std::fs::read(src).expect("read");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
    let reader = Scan::new(LocalFile::open(&path).expect("open"), plan)
        .reader()
        .expect("settings");
    let err = reader
        .collect::<Result<Vec<_>, _>>()
        .expect_err("the second half is missing");
    let msg = arrowfeed_traits::Error::from_arrow(err).to_string();
    assert!(msg.contains("cut.parquet"), "{msg}");
}

#[test]
fn a_corrupted_column_chunk_is_an_error_not_a_panic() {
    use parquet::file::reader::FileReader;
    let src = &files().parquet;
    let meta = parquet::file::reader::SerializedFileReader::new(std::fs::File::open(src).unwrap())
        .expect("footer");
    let bytes = std::fs::read(src).expect("read");
    let mut checked = 0;
    for rg in meta.metadata().row_groups() {
        for col in rg.columns() {
            // The first page header of the chunk, overwritten with bytes that are no Thrift
            // field (type 15): every reader of this chunk must fail, naming the source.
            let at = col
                .dictionary_page_offset()
                .unwrap_or(col.data_page_offset()) as usize;
            let mut damaged = bytes.clone();
            damaged[at..at + 8].fill(0xff);
            let plan = ParquetScanPlan::try_new(src, &ReadOptions::default()).expect("plan");
            let result: Result<Vec<_>, _> =
                Scan::new(MemorySource::new("damaged.parquet", damaged), plan)
                    .reader()
                    .expect("settings")
                    .collect();
            let msg = result
                .expect_err("a damaged page header decoded")
                .to_string();
            // Named by the source read or by the file the plan was made from: the same file.
            let file = src.file_name().unwrap().to_str().unwrap();
            assert!(
                msg.contains("damaged.parquet") || msg.contains(file),
                "{msg}"
            );
            checked += 1;
        }
    }
    assert!(checked > 1, "the sample has column chunks");
}

/// The ML-shaped sample in the repository (the schema of `../shared/bench`), whole and
/// projected, against the parquet crate.
#[test]
fn ml_sample_equals_the_parquet_crate() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/data/ml-sample.parquet");
    for columns in [None, Some(vec!["tokens".to_string(), "id".to_string()])] {
        let mut options = ReadOptions::default();
        options.columns = columns;
        let expected = reference_parquet(&path, &options);
        let plan = ParquetScanPlan::try_new(&path, &options).expect("plan");
        let got: Vec<RecordBatch> = Scan::new(MmapFile::open(&path).expect("map"), plan)
            .batch_size(96)
            .reader()
            .expect("settings")
            .collect::<Result<_, _>>()
            .expect("no error");
        assert_eq!(assert_same_rows(got.into_iter(), expected.into_iter()), 500);
    }
}

/// The shared benchmark data (`../shared/bench/gen_data.py`), when `ARROWFEED_BENCH_DATA`
/// points at it: `cargo xtask ci` generates a small set and runs this; on the full set it
/// checks 3 GB of Parquet and the IPC shards.
#[test]
#[ignore = "needs ARROWFEED_BENCH_DATA; `cargo xtask interop` generates it and runs this"]
fn shared_bench_data_equals_the_reference_readers() {
    let dir = std::env::var_os("ARROWFEED_BENCH_DATA")
        .expect("ARROWFEED_BENCH_DATA names a directory from ../shared/bench/gen_data.py");
    let dir = PathBuf::from(dir);
    let mut checked = 0;
    for name in ["ml.parquet", "tpch.parquet"] {
        let path = dir.join(name);
        let options = ReadOptions::default();
        let plan = ParquetScanPlan::try_new(&path, &options).expect("plan");
        let ours = Scan::new(MmapFile::open(&path).expect("map"), plan)
            .batch_size(8192)
            .reader()
            .expect("settings")
            .map(|b| b.expect("no error"));
        let f = std::fs::File::open(&path).expect("open");
        let theirs = ParquetRecordBatchReaderBuilder::try_new(f)
            .expect("footer")
            .build()
            .expect("reader")
            .map(|b| b.expect("decodes"));
        let rows = assert_same_rows(ours, theirs);
        assert!(rows > 0, "{name} is empty");
        checked += 1;
    }
    let mut shards: Vec<PathBuf> = std::fs::read_dir(dir.join("ipc"))
        .expect("ipc dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "arrow"))
        .collect();
    shards.sort();
    for path in shards.iter().take(3) {
        let plan = IpcScanPlan::try_new(path, None).expect("plan");
        let ours = Scan::new(MmapFile::open(path).expect("map"), plan)
            .reader()
            .expect("settings")
            .map(|b| b.expect("no error"));
        let f = std::fs::File::open(path).expect("open");
        let theirs = arrow_ipc::reader::FileReader::try_new(f, None)
            .expect("footer")
            .map(|b| b.expect("decodes"));
        assert!(assert_same_rows(ours, theirs) > 0);
        checked += 1;
    }
    assert!(checked >= 3);
}
