//! Scan plans run in order equal the readers' output, for every projection and row-group
//! selection.

use arrowfeed_core_source::{IpcScanPlan, LocalFile, ParquetScanPlan, ReadOptions, open_with};
use arrowfeed_traits::ScanPlan;
use arrowfeed_traits::run_plan_in_order;
use parquet::basic::Compression;
use parquet::file::properties::{WriterProperties, WriterPropertiesBuilder, WriterVersion};
use std::sync::Arc;

use proptest::prelude::*;

use crate::common::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn plans_equal_the_readers(
        cols in proptest::collection::vec(proptest::sample::select(ALL.to_vec()), 1..5),
        sizes in proptest::collection::vec(0usize..120, 1..4),
        pick in proptest::option::of(proptest::sample::subsequence((0usize..5).collect::<Vec<_>>(), 1..3)),
        seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let schema = schema(&cols);
        let input = batches(&cols, &sizes, seed);
        let columns: Option<Vec<String>> = pick.map(|p| p.into_iter().filter(|&i| i < cols.len()).rev().map(|i| schema.field(i).name().clone()).collect());
        let columns = columns.filter(|c| !c.is_empty());
        let mut opts = ReadOptions::default();
        opts.columns = columns.clone();
        for out in [Out::Parquet, Out::IpcFile, Out::IpcFileLz4] {
            let path = dir.path().join(format!("{out:?}"));
            write(&path, out, &schema, &input);
            // Parquet through the parquet crate's reader: `open_with` runs these plans too.
            let want: Vec<_> = if out == Out::Parquet {
                parquet_reference(&path, columns.as_deref())
            } else {
                open_with(&path, &opts).unwrap().collect::<Result<_, _>>().unwrap()
            };
            let file = LocalFile::open(&path).unwrap();
            let got = if out == Out::Parquet {
                let plan = ParquetScanPlan::try_new(&path, &opts).unwrap();
                prop_assert_eq!(plan.total_rows(), Some(want.iter().map(|b| b.num_rows() as u64).sum()));
                let s = plan.schema();
                (s, run_plan_in_order(plan, |r| file.read_blocking(r)).unwrap())
            } else {
                let plan = IpcScanPlan::try_new(&path, columns.as_deref()).unwrap();
                let s = plan.schema();
                (s, run_plan_in_order(plan, |r| file.read_blocking(r)).unwrap())
            };
            prop_assert_eq!(concat(&got.0, &got.1), concat(&got.0, &want), "{:?}", out);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Every kind of page the plan's own page reader meets (v1 and v2 data pages, dictionary
    /// pages or none, uncompressed or snappy, pages of any row count) and the codecs left to
    /// the parquet crate's, with row groups split into parts of any size: the plan's rows are
    /// the reader's.
    #[test]
    fn parquet_plans_equal_the_reader_for_every_page_kind(
        codec in prop_oneof![
            Just(Compression::UNCOMPRESSED),
            Just(Compression::SNAPPY),
            Just(Compression::LZ4_RAW),
            Just(Compression::ZSTD(Default::default())),
        ],
        v2 in any::<bool>(),
        dictionary in any::<bool>(),
        page_rows in 1usize..80,
        part_rows in 0usize..200,
        batch_rows in 1usize..100,
        seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let schema = schema(&ALL);
        let input = batches(&ALL, &[90, 0, 250, 13], seed);
        let path = dir.path().join("pages.parquet");
        let props = pages(codec, v2, page_rows)
            .set_max_row_group_row_count(Some(300))
            .set_dictionary_enabled(dictionary)
            .build();
        write_parquet(&path, &schema, &input, props);
        let want = parquet_reference(&path, None);
        let plan = ParquetScanPlan::try_new(&path, &ReadOptions::default())
            .unwrap()
            .decode_batch_rows(batch_rows)
            .part_rows(part_rows);
        let file = LocalFile::open(&path).unwrap();
        let got = run_plan_in_order(plan, |r| file.read_blocking(r)).unwrap();
        prop_assert_eq!(concat(&schema, &got), concat(&schema, &want));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Flat fixed-width columns (decoded by the plan itself, not the parquet crate): required
    /// and nullable, dictionary or plain (and a dictionary that falls back to plain within a
    /// column chunk), v1 and v2 pages, any page size, split into parts of any size, any
    /// projection order: the plan's rows are the reader's.
    #[test]
    fn flat_columns_equal_the_reader(
        codec in prop_oneof![Just(Compression::UNCOMPRESSED), Just(Compression::SNAPPY), Just(Compression::ZSTD(Default::default()))],
        v2 in any::<bool>(),
        dictionary in any::<bool>(),
        dict_page_bytes in prop_oneof![Just(1usize << 20), 16usize..400],
        page_rows in 1usize..80,
        part_rows in 0usize..200,
        batch_rows in 1usize..100,
        nulls in 0u32..3,
        distinct in 1i64..1000,
        pick in proptest::sample::subsequence((0usize..6).collect::<Vec<_>>(), 1..6),
        seed in any::<u64>(),
    ) {
        use arrow_array::{Date32Array, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch};
        use arrow_schema::{DataType, Field, Schema};
        let dir = tempfile::tempdir().unwrap();
        let n = 777usize;
        let mut r = seed | 1;
        let mut next = move || { r ^= r << 13; r ^= r >> 7; r ^= r << 17; r };
        let mut vals = |f: &mut dyn FnMut(i64) -> Option<i64>| -> Vec<Option<i64>> {
            (0..n).map(|_| { let v = next(); if nulls > 0 && v % (4 - nulls as u64) == 0 { None } else { f((v >> 8) as i64 % distinct) } }).collect()
        };
        let a = vals(&mut |v| Some(v * 1_000_003));
        let b = vals(&mut |v| Some(v));
        let c = vals(&mut |v| Some(v));
        let d = vals(&mut |v| Some(v));
        let e = vals(&mut |v| Some(v));
        let schema = Arc::new(Schema::new(vec![
            Field::new("i64", DataType::Int64, nulls > 0),
            Field::new("i32", DataType::Int32, true),
            Field::new("f64", DataType::Float64, true),
            Field::new("f32", DataType::Float32, nulls > 0),
            Field::new("date", DataType::Date32, true),
            Field::new("req", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(schema.clone(), vec![
            Arc::new(Int64Array::from(a.iter().map(|v| v.or(if nulls > 0 { None } else { Some(0) })).collect::<Vec<_>>())),
            Arc::new(Int32Array::from(b.iter().map(|v| v.map(|v| v as i32)).collect::<Vec<_>>())),
            Arc::new(Float64Array::from(c.iter().map(|v| v.map(|v| v as f64 / 3.0)).collect::<Vec<_>>())),
            Arc::new(Float32Array::from(d.iter().map(|v| v.map(|v| v as f32 / 3.0).or(if nulls > 0 { None } else { Some(0.5) })).collect::<Vec<_>>())),
            Arc::new(Date32Array::from(e.iter().map(|v| v.map(|v| v as i32)).collect::<Vec<_>>())),
            Arc::new(Int64Array::from_iter_values((0..n as i64).map(|i| i % distinct))),
        ]).unwrap();
        let path = dir.path().join("flat.parquet");
        let props = pages(codec, v2, page_rows)
            .set_max_row_group_row_count(Some(300))
            .set_dictionary_enabled(dictionary)
            .set_dictionary_page_size_limit(dict_page_bytes)
            .build();
        write_parquet(&path, &schema, &[batch], props);
        let names: Vec<String> = pick.iter().rev().map(|&i| schema.field(i).name().clone()).collect();
        plan_equals_the_parquet_crate(&path, names, batch_rows, part_rows)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Damaged pages of flat columns (our page headers, snappy decoder and value decoder) are
    /// errors or garbage values, never a panic: the plan's panic guard must not fire.
    #[test]
    fn damaged_flat_pages_are_errors_not_panics(
        v2 in any::<bool>(),
        snappy in any::<bool>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6),
        part_rows in 0usize..300,
    ) {
        use arrow_array::{Float64Array, Int64Array, RecordBatch};
        use arrow_schema::{DataType, Field, Schema};
        let dir = tempfile::tempdir().unwrap();
        let n = 1000i64;
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Float64, false),
        ]));
        let batch = RecordBatch::try_new(schema.clone(), vec![
            Arc::new(Int64Array::from_iter((0..n).map(|i| (i % 5 != 0).then_some(i * 7919 % 600)))),
            Arc::new(Float64Array::from_iter_values((0..n).map(|i| i as f64 * 0.37))),
        ]).unwrap();
        let codec = if snappy { Compression::SNAPPY } else { Compression::UNCOMPRESSED };
        let props = pages(codec, v2, 100)
            .set_dictionary_page_size_limit(512)
            // PLAIN after the dictionary fills (v2 would pick DELTA_BINARY_PACKED, which is
            // left to the parquet crate, whose panics the guard rightly catches).
            .set_encoding(parquet::basic::Encoding::PLAIN)
            .build();
        let path = dir.path().join("damaged.parquet");
        write_parquet(&path, &schema, &[batch], props);
        damaged_plan_is_an_error_not_a_panic(&path, part_rows, &flips)?;
    }
}

/// The columns of the variable-width tests: Utf8, Binary, list<int32> (list and element
/// nullable as asked) and an Int64, 777 rows; `nulls` (0-2) makes values null more often,
/// `empty` lists empty, `distinct` bounds the values seen (dictionaries), `long` makes some
/// values kilobytes long.
#[allow(clippy::too_many_arguments)]
fn variable_width_batch(
    nulls: u32,
    empty: u32,
    distinct: u64,
    long: bool,
    list_nullable: bool,
    elem_nullable: bool,
    seed: u64,
) -> arrow_array::RecordBatch {
    use arrow_array::builder::{Int32Builder, ListBuilder};
    use arrow_array::{BinaryArray, Int64Array, RecordBatch, StringArray};
    use arrow_schema::{DataType, Field, Schema};
    let n = 777usize;
    let mut r = seed | 1;
    let mut next = move || {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        r
    };
    let null = |next: &mut dyn FnMut() -> u64| nulls > 0 && next().is_multiple_of(5 - nulls as u64);
    let text = |v: u64| {
        let v = v % distinct;
        let reps = if long && v.is_multiple_of(7) {
            300
        } else {
            (v % 5) as usize
        };
        format!("{v}-ü").repeat(reps)
    };
    let strings: Vec<Option<String>> = (0..n)
        .map(|_| (!null(&mut next)).then(|| text(next())))
        .collect();
    let binary: Vec<Option<Vec<u8>>> = (0..n)
        .map(|_| (!null(&mut next)).then(|| text(next()).into_bytes()))
        .collect();
    let item = Arc::new(Field::new_list_field(DataType::Int32, elem_nullable));
    let mut lists = ListBuilder::new(Int32Builder::new()).with_field(item.clone());
    for _ in 0..n {
        if list_nullable && null(&mut next) {
            lists.append_null();
            continue;
        }
        let len = if empty > 0 && next().is_multiple_of(4 - u64::from(empty)) {
            0
        } else {
            next() % 9
        };
        for _ in 0..len {
            if elem_nullable && null(&mut next) {
                lists.values().append_null();
            } else {
                lists.values().append_value((next() % distinct) as i32 - 7);
            }
        }
        lists.append(true);
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("s", DataType::Utf8, nulls > 0),
        Field::new("b", DataType::Binary, true),
        Field::new("l", DataType::List(item), list_nullable),
        Field::new("n", DataType::Int64, false),
    ]));
    let strings: StringArray = if nulls > 0 {
        strings.iter().map(|s| s.as_deref()).collect()
    } else {
        strings
            .iter()
            .map(|s| Some(s.clone().unwrap_or_default()))
            .collect()
    };
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(strings),
            Arc::new(binary.iter().map(|b| b.as_deref()).collect::<BinaryArray>()),
            Arc::new(lists.finish()),
            Arc::new(Int64Array::from_iter_values((0..n as i64).map(|i| i * 3))),
        ],
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Byte-array columns read as Utf8 and Binary and lists of INT32 (decoded by the plan
    /// itself, not the parquet crate): required and nullable lists and elements, null and
    /// empty lists, long values, dictionary or plain (and a dictionary that falls back to
    /// plain within a column chunk), v1 and v2 pages, every codec the page reader handles
    /// and one it leaves to the parquet crate, any page size, split into parts of any size,
    /// any projection order: the plan's rows are the parquet crate's.
    #[test]
    fn variable_width_columns_equal_the_parquet_crate(
        codec in prop_oneof![Just(Compression::UNCOMPRESSED), Just(Compression::SNAPPY), Just(Compression::ZSTD(Default::default()))],
        v2 in any::<bool>(),
        dictionary in any::<bool>(),
        dict_page_bytes in prop_oneof![Just(1usize << 20), 16usize..400],
        page_rows in 1usize..80,
        part_rows in 0usize..200,
        batch_rows in 1usize..100,
        nulls in 0u32..3,
        empty in 0u32..3,
        distinct in 1u64..300,
        long in any::<bool>(),
        list_nullable in any::<bool>(),
        elem_nullable in any::<bool>(),
        pick in proptest::sample::subsequence((0usize..4).collect::<Vec<_>>(), 1..4),
        seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let batch = variable_width_batch(nulls, empty, distinct, long, list_nullable, elem_nullable, seed);
        let schema = batch.schema();
        let path = dir.path().join("varwidth.parquet");
        let props = pages(codec, v2, page_rows)
            .set_max_row_group_row_count(Some(300))
            .set_dictionary_enabled(dictionary)
            .set_dictionary_page_size_limit(dict_page_bytes)
            // PLAIN after the dictionary fills (v2 would pick DELTA_BYTE_ARRAY, which is
            // left to the parquet crate).
            .set_encoding(parquet::basic::Encoding::PLAIN)
            .build();
        write_parquet(&path, &schema, &[batch], props);
        let names: Vec<String> = pick.iter().rev().map(|&i| schema.field(i).name().clone()).collect();
        plan_equals_the_parquet_crate(&path, names, batch_rows, part_rows)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Damaged pages of byte-array and list columns are errors or garbage values, never a
    /// panic (the plan's panic guard must not fire) and never an allocation sized by a
    /// damaged count.
    #[test]
    fn damaged_variable_width_pages_are_errors_not_panics(
        v2 in any::<bool>(),
        snappy in any::<bool>(),
        dictionary in any::<bool>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..6),
        part_rows in 0usize..300,
        seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let batch = variable_width_batch(1, 1, 50, false, true, true, seed);
        let schema = batch.schema();
        let codec = if snappy { Compression::SNAPPY } else { Compression::UNCOMPRESSED };
        let props = pages(codec, v2, 100)
            .set_dictionary_enabled(dictionary)
            .set_dictionary_page_size_limit(512)
            .set_encoding(parquet::basic::Encoding::PLAIN)
            .build();
        let path = dir.path().join("damaged.parquet");
        write_parquet(&path, &schema, &[batch], props);
        damaged_plan_is_an_error_not_a_panic(&path, part_rows, &flips)?;
    }
}

/// Runs the plan of `columns` of `path` in decode batches of `batch_rows` and parts of
/// `part_rows`, against the parquet crate's reading of the file.
fn plan_equals_the_parquet_crate(
    path: &std::path::Path,
    columns: Vec<String>,
    batch_rows: usize,
    part_rows: usize,
) -> Result<(), TestCaseError> {
    let want = parquet_reference(path, Some(&columns));
    let opts = ReadOptions::default().columns(columns);
    let plan = ParquetScanPlan::try_new(path, &opts)
        .unwrap()
        .decode_batch_rows(batch_rows)
        .part_rows(part_rows);
    let out = plan.schema();
    let file = LocalFile::open(path).unwrap();
    let got = run_plan_in_order(plan, |r| file.read_blocking(r)).unwrap();
    prop_assert!(
        got.iter().all(|b| b.schema() == out),
        "batch schema is the plan's"
    );
    prop_assert_eq!(concat(&out, &got), concat(&out, &want));
    Ok(())
}

/// Flips bytes of the column chunks of `path` (after the magic, before the footer the plan
/// has already read) and runs its plan in parts of `part_rows`: an error names the file and
/// is not a caught panic.
fn damaged_plan_is_an_error_not_a_panic(
    path: &std::path::Path,
    part_rows: usize,
    flips: &[(prop::sample::Index, u8)],
) -> Result<(), TestCaseError> {
    let plan = ParquetScanPlan::try_new(path, &ReadOptions::default())
        .unwrap()
        .part_rows(part_rows);
    let mut bytes = std::fs::read(path).unwrap();
    let footer =
        u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap()) as usize;
    let data = 4..bytes.len() - 8 - footer;
    for (at, x) in flips {
        bytes[data.start + at.index(data.len())] ^= x;
    }
    let bytes = bytes::Bytes::from(bytes);
    if let Err(e) = run_plan_in_order(plan, |r| Ok(bytes.slice(r.start as usize..r.end as usize))) {
        let msg = e.to_string();
        prop_assert!(!msg.contains("panicked"), "a panic: {}", msg);
        prop_assert!(msg.contains("damaged.parquet"), "{}", msg);
    }
    Ok(())
}

#[test]
fn parquet_plans_read_only_the_projected_columns() {
    let dir = tempfile::tempdir().unwrap();
    let cols = [Col::Int64, Col::Utf8, Col::Binary];
    let schema = schema(&cols);
    let path = dir.path().join("f.parquet");
    write(&path, Out::Parquet, &schema, &batches(&cols, &[120], 1));
    let all = planned_bytes(&path, &ReadOptions::default());
    let opts = ReadOptions::default().columns([schema.field(0).name().clone()]);
    let one = planned_bytes(&path, &opts);
    assert!(one * 2 < all, "projected {one} bytes of {all}");
    let opts = ReadOptions::default().row_groups(vec![1]);
    let tasks: Vec<_> = ParquetScanPlan::try_new(&path, &opts)
        .unwrap()
        .map(|t| t.unwrap())
        .collect();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].rows, 0..50);
}

/// The bytes a Parquet plan's tasks ask for, summed.
/// Writer settings of the page tests: `codec`, v1 or v2 data pages of `page_rows` rows.
fn pages(codec: Compression, v2: bool, page_rows: usize) -> WriterPropertiesBuilder {
    let version = if v2 {
        WriterVersion::PARQUET_2_0
    } else {
        WriterVersion::PARQUET_1_0
    };
    WriterProperties::builder()
        .set_compression(codec)
        .set_writer_version(version)
        .set_data_page_row_count_limit(page_rows)
        .set_write_batch_size(page_rows)
}

fn planned_bytes(path: &std::path::Path, options: &ReadOptions) -> u64 {
    ParquetScanPlan::try_new(path, options)
        .unwrap()
        .map(|t| {
            t.unwrap()
                .ranges
                .iter()
                .map(|r| r.end - r.start)
                .sum::<u64>()
        })
        .sum()
}
