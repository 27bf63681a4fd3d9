//! The Parquet plan's unit tests: parts sharing pages, streamed row groups.

use std::path::PathBuf;

use arrowfeed_traits::run_plan_in_order;
use std::sync::atomic::Ordering;

use arrow_array::{Int64Array, StringArray};
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

use super::*;

/// One row group of 2,000 rows in pages of 50: a nullable plain column and a dictionary one.
fn small_pages(dir: &Path) -> PathBuf {
    let n = 2000i64;
    let batch = RecordBatch::try_from_iter([
        (
            "id",
            Arc::new(Int64Array::from_iter(
                (0..n).map(|i| (i % 7 != 0).then_some(i * 1_000_003)),
            )) as _,
        ),
        (
            "word",
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("w{}", i % 13)),
            )) as _,
        ),
    ])
    .expect("batch");
    let props = WriterProperties::builder()
        .set_data_page_row_count_limit(50)
        .set_write_batch_size(50)
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let path = dir.join("pages.parquet");
    let f = std::fs::File::create(&path).expect("create");
    let mut w = ArrowWriter::try_new(f, batch.schema(), Some(props)).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    path
}

/// Runs the plan of `path` with `part_rows`, returning its batches and its page counts:
/// pages decompressed, taken from another reader, snappy blocks decompressed and those
/// decompressed in pairs.
fn run(path: &Path, part_rows: usize) -> (Vec<RecordBatch>, [u64; 4]) {
    let plan = ParquetScanPlan::try_new(path, &ReadOptions::default())
        .expect("plan")
        .decode_batch_rows(96)
        .part_rows(part_rows);
    let counts = plan.pages.clone();
    let data = Bytes::from(std::fs::read(path).expect("read"));
    let batches = run_plan_in_order(plan, |r| Ok(data.slice(r.start as usize..r.end as usize)))
        .expect("decodes");
    let n = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    (
        batches,
        [
            n(&counts.decompressed),
            n(&counts.shared),
            n(&counts.snappy_blocks),
            n(&counts.paired),
        ],
    )
}

#[test]
fn parts_of_a_row_group_decompress_each_page_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = small_pages(dir.path());
    let (whole, [pages, shared, blocks, paired]) = run(&path, 0);
    assert_eq!(shared, 0, "one reader shares nothing");
    // Cuts every 300 rows (rounded up to batches of 96): mostly mid-page, each part read
    // by one reader (parts start at batch multiples).
    let (split, [split_pages, split_shared, split_blocks, split_paired]) = run(&path, 300);
    assert_eq!(split, whole);
    assert_eq!(
        split_pages, pages,
        "every page decompressed once ({split_shared} taken from another reader)"
    );
    assert!(
        split_shared >= 2 * 6,
        "each of the 6 later parts takes its first page of both columns and the dictionary: {split_shared}"
    );
    // Pages decompressed in pairs are pages a reader reads: none is decompressed ahead and
    // then dropped.
    assert_eq!((split_blocks, blocks), (pages, pages));
    assert!(
        paired * 10 >= blocks * 9 && split_paired * 10 >= blocks * 8,
        "most pages are decompressed in pairs: {paired} and {split_paired} of {blocks}"
    );
}

/// Rows with a nullable integer, a string (dictionary-encoded when `dictionary`) and a
/// list of integers, written in row groups of `group_rows` and pages of `page_rows`.
fn mixed(
    n: usize,
    group_rows: usize,
    page_rows: usize,
    dictionary: bool,
    snappy: bool,
    v2: bool,
) -> Bytes {
    use arrow_array::ListArray;
    use arrow_array::types::Int32Type;
    let lists = ListArray::from_iter_primitive::<Int32Type, _, _>((0..n).map(|i| {
        (i % 5 != 0).then(|| {
            (0..(i % 4) as i32)
                .map(|v| Some(v * i as i32))
                .collect::<Vec<_>>()
        })
    }));
    let batch = RecordBatch::try_from_iter([
        (
            "id",
            Arc::new(Int64Array::from_iter(
                (0..n as i64).map(|i| (i % 3 != 0).then_some(i * 7)),
            )) as _,
        ),
        (
            "word",
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("w{}", i % 17)),
            )) as _,
        ),
        ("list", Arc::new(lists) as _),
    ])
    .expect("batch");
    let codec = if snappy {
        parquet::basic::Compression::SNAPPY
    } else {
        parquet::basic::Compression::UNCOMPRESSED
    };
    let version = if v2 {
        parquet::file::properties::WriterVersion::PARQUET_2_0
    } else {
        parquet::file::properties::WriterVersion::PARQUET_1_0
    };
    let props = WriterProperties::builder()
        .set_data_page_row_count_limit(page_rows)
        .set_write_batch_size(page_rows)
        .set_max_row_group_row_count(Some(group_rows))
        .set_dictionary_enabled(dictionary)
        .set_compression(codec)
        .set_writer_version(version)
        .build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    out.into()
}

/// Parts of a row group with a list column in v1 pages reach their first rows by counting the
/// list's pages from their levels (decompressing those alone), each page once for all parts,
/// rather than decompressing every page before them: the parts decompress the pages one reader
/// does, and one more list page each, where they start.
#[test]
fn parts_pass_a_lists_v1_pages_by_their_levels() {
    for snappy in [true, false] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lists.parquet");
        std::fs::write(&path, mixed(4000, 4000, 40, false, snappy, false)).expect("write");
        let counted = |part_rows| {
            let plan = ParquetScanPlan::try_new(&path, &ReadOptions::default())
                .expect("plan")
                .decode_batch_rows(96)
                .part_rows(part_rows);
            let counts = plan.pages.clone();
            let data = Bytes::from(std::fs::read(&path).expect("read"));
            let batches =
                run_plan_in_order(plan, |r| Ok(data.slice(r.start as usize..r.end as usize)))
                    .expect("decodes");
            let n = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
            (batches, n(&counts.decompressed), n(&counts.by_levels))
        };
        let (whole, pages, none) = counted(0);
        assert_eq!(none, 0, "one reader skips nothing");
        // Parts of 500 rows (rounded to batches of 96): 7 parts start past row 0.
        let (split, split_pages, by_levels) = counted(500);
        assert_eq!(split, whole);
        assert!(
            split_pages <= pages + 7,
            "snappy {snappy}: {split_pages} pages decompressed against one reader's {pages}"
        );
        // The list's pages hold 50 rows (its writer checks the page row limit after each
        // batch of levels); the last part starts at row 3456, past 69 of them, and counts
        // the one it starts in.
        assert!(
            (69..=71).contains(&by_levels),
            "snappy {snappy}: {by_levels} pages counted by their levels"
        );
    }
}

/// The plan of `source` with every row group streamed in requests of `request` bytes.
fn streamed_plan(
    source: Arc<dyn ByteSource>,
    batch_rows: usize,
    request: usize,
) -> ParquetScanPlan {
    let mut plan = ParquetScanPlan::from_source(&source, &ReadOptions::default())
        .expect("plan")
        .decode_batch_rows(batch_rows);
    plan.min_request = request;
    plan.whole_fetch = 0;
    plan.fit_fetches(1);
    plan
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(32))]

    /// A row group read a window at a time decodes to the rows the parquet crate reads,
    /// whatever the requests' size against the pages' (pages cut across requests, pages
    /// longer than several), the batch size (row groups starting mid-batch), the page
    /// kinds and a list column; and its task fetches nothing up front.
    #[test]
    fn streamed_row_groups_equal_the_parquet_crate(
        group_rows in 50usize..400,
        page_rows in 1usize..60,
        batch_rows in 1usize..150,
        request in 16usize..3000,
        dictionary in proptest::bool::ANY,
        snappy in proptest::bool::ANY,
        v2 in proptest::bool::ANY,
    ) {
        let data = mixed(700, group_rows, page_rows, dictionary, snappy, v2);
        let want: Vec<RecordBatch> =
            parquet::arrow::arrow_reader::ParquetRecordBatchReader::try_new(data.clone(), 1 << 20)
                .expect("reader")
                .collect::<std::result::Result<_, _>>()
                .expect("reads");
        let source: Arc<dyn ByteSource> = Arc::new(arrowfeed_traits::MemorySource::new("mem", data.clone()));
        let plan = streamed_plan(source, batch_rows, request);
        let schema = plan.schema();
        let tasks: Vec<ReadTask> = streamed_plan(
            Arc::new(arrowfeed_traits::MemorySource::new("mem", data.clone())),
            batch_rows,
            request,
        )
        .map(|t| t.expect("task"))
        .collect();
        proptest::prop_assert!(tasks.iter().all(|t| t.ranges.is_empty()), "a streamed task fetches nothing itself");
        let got = run_plan_in_order(plan, |r| Ok(data.slice(r.start as usize..r.end as usize)))
            .expect("decodes");
        let concat = |b: &[RecordBatch]| arrow_select::concat::concat_batches(&schema, b).expect("concat");
        proptest::prop_assert_eq!(concat(&got), concat(&want));
    }
}

/// A read of a streamed chunk that fails ends the scan with the source's own error (its
/// kind kept, naming the object), not a decoding error, whichever read it is.
#[test]
fn a_failed_streamed_read_is_the_sources_error() {
    let data = mixed(700, 300, 20, true, true, false);
    // The footer takes a read or two; fail each later read in turn.
    let mut failures = 0;
    for ok in 1..40 {
        let source = Arc::new(crate::stream::testing::FailsAfter::new(
            arrowfeed_traits::MemorySource::new("s3://bucket/mixed.parquet", data.clone()),
            ok,
        ));
        let Ok(mut plan) =
            ParquetScanPlan::from_source(&(source as Arc<dyn ByteSource>), &ReadOptions::default())
        else {
            continue;
        };
        plan.min_request = 64;
        plan.whole_fetch = 0;
        plan.fit_fetches(1);
        let Err(e) = run_plan_in_order(plan, |r| Ok(data.slice(r.start as usize..r.end as usize)))
        else {
            continue;
        };
        failures += 1;
        assert!(
            matches!(&e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::ConnectionReset),
            "after {ok} reads: {e:?}"
        );
        assert!(e.to_string().contains("s3://bucket/mixed.parquet"), "{e}");
    }
    assert!(failures > 10, "only {failures} runs met a failed read");
}
