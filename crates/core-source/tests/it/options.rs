//! Projection, row-group selection, many files as one source, and format detection.

use std::sync::Arc;

use arrow_array::RecordBatchReader;
use arrowfeed_core_source::{Format, ReadOptions, info, open_many, open_with};
use arrowfeed_traits::Error;

use crate::common::*;

#[test]
fn columns_come_in_the_order_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let cols = [Col::Int64, Col::Utf8, Col::Struct, Col::DictUtf8];
    let schema = schema(&cols);
    let input = batches(&cols, &[30, 70], 5);
    let want = concat(&schema, &input);
    let names = [
        schema.field(3).name().clone(),
        schema.field(0).name().clone(),
    ];
    for out in OUTS {
        let path = dir.path().join(format!("{out:?}"));
        write(&path, out, &schema, &input);
        let src = open_with(&path, &ReadOptions::default().columns(names.clone())).unwrap();
        let got = src.collect::<Result<Vec<_>, _>>().unwrap();
        let got = concat(&Arc::new(want.schema().project(&[3, 0]).unwrap()), &got);
        assert_eq!(got, want.project(&[3, 0]).unwrap(), "{out:?}");

        let err = open_with(&path, &ReadOptions::default().columns(["nope"])).unwrap_err();
        assert!(
            matches!(err, Error::InvalidArgument { .. }),
            "{out:?}: {err}"
        );
        assert!(
            err.to_string().contains("nope") && err.to_string().contains(schema.field(0).name()),
            "{err}"
        );
    }
}

#[test]
fn parquet_row_groups_are_selectable() {
    let dir = tempfile::tempdir().unwrap();
    let cols = [Col::Int64];
    let schema = schema(&cols);
    let input = batches(&cols, &[120], 9); // row groups of 50: 50, 50, 20
    let path = dir.path().join("f.parquet");
    write(&path, Out::Parquet, &schema, &input);
    assert_eq!(info(&path).unwrap().unit_rows, vec![50, 50, 20]);
    let got = open_with(&path, &ReadOptions::default().row_groups(vec![2, 0]))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let got = concat(&schema, &got);
    // The parquet crate reads selected row groups in the order given.
    let want = concat(&schema, &[input[0].slice(100, 20), input[0].slice(0, 50)]);
    assert_eq!(got, want);
    let err = open_with(&path, &ReadOptions::default().row_groups(vec![3])).unwrap_err();
    assert!(
        err.to_string().contains("row group 3") && err.to_string().contains("f.parquet"),
        "{err}"
    );
}

#[test]
fn many_files_read_as_one_and_mismatches_name_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let cols = [Col::Int64, Col::Utf8];
    let schema = schema(&cols);
    let a = batches(&cols, &[10, 5], 1);
    let b = batches(&cols, &[7], 2);
    let pa = dir.path().join("a.parquet");
    let pb = dir.path().join("b.arrow");
    write(&pa, Out::Parquet, &schema, &a);
    write(&pb, Out::IpcFile, &schema, &b);
    let src = open_many([&pa, &pb], &ReadOptions::default()).unwrap();
    assert_eq!(src.format(), Format::Parquet);
    let got = concat(&schema, &src.collect::<Result<Vec<_>, _>>().unwrap());
    let want = concat(&schema, &[a, b].concat());
    assert_eq!(got, want);

    let other = schema_of(&[Col::Int64, Col::Binary]);
    let pc = dir.path().join("c.arrows");
    write(&pc, Out::IpcStream, &other, &[]);
    let err = open_many([&pa, &pc], &ReadOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("a.parquet") && msg.contains("c.arrows") && msg.contains("column 1"),
        "{msg}"
    );

    let none: [&std::path::Path; 0] = [];
    assert!(matches!(
        open_many(none, &ReadOptions::default()),
        Err(Error::InvalidArgument { .. })
    ));
}

fn schema_of(cols: &[Col]) -> arrow_schema::SchemaRef {
    schema(cols)
}

#[test]
fn format_comes_from_bytes_not_the_extension() {
    let dir = tempfile::tempdir().unwrap();
    let cols = [Col::Int64];
    let schema = schema(&cols);
    let input = batches(&cols, &[3], 1);
    for (out, fmt) in [
        (Out::Parquet, Format::Parquet),
        (Out::IpcFile, Format::ArrowFile),
        (Out::IpcStream, Format::ArrowStream),
    ] {
        // A misleading extension on purpose.
        let path = dir.path().join(format!("{out:?}.csv"));
        write(&path, out, &schema, &input);
        assert_eq!(arrowfeed_core_source::detect_format(&path).unwrap(), fmt);
        let src = arrowfeed_core_source::open(&path).unwrap();
        assert_eq!(src.format(), fmt);
        assert_eq!(src.schema(), schema);
    }
}

#[test]
fn ipc_info_reports_compression_and_batches() {
    let dir = tempfile::tempdir().unwrap();
    let cols = [Col::Utf8];
    let schema = schema(&cols);
    let input = batches(&cols, &[10, 20, 30], 4);
    for (out, codec) in [
        (Out::IpcFileLz4, "lz4"),
        (Out::IpcStreamZstd, "zstd"),
        (Out::IpcFile, "none"),
    ] {
        let path = dir.path().join(format!("{out:?}"));
        write(&path, out, &schema, &input);
        let i = info(&path).unwrap();
        assert_eq!(i.unit_rows, vec![10, 20, 30], "{out:?}");
        assert_eq!(i.rows, Some(60));
        assert_eq!(i.compression, vec![codec.to_string()], "{out:?}");
    }
}

/// A zero batch size cannot work, and no entry point turns it into another: opening, the
/// Parquet reader and plan refuse it naming the setting, as do a plan's decode batch rows and
/// a plan reader's exact batches.
#[test]
fn zero_rows_per_batch_is_an_error_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let cols = [Col::Int64];
    let schema = schema(&cols);
    let path = dir.path().join("z.parquet");
    write(&path, Out::Parquet, &schema, &batches(&cols, &[40], 1));
    let zero = ReadOptions::default().batch_size(0);
    let named = |e: Error, what: &str| {
        assert!(
            matches!(e, Error::InvalidArgument { .. }) && e.to_string().contains(what),
            "{e}"
        );
    };
    named(open_with(&path, &zero).unwrap_err(), "batch_size");
    named(
        arrowfeed_core_source::ParquetReader::open(&path, &zero).unwrap_err(),
        "batch_size",
    );
    named(
        arrowfeed_core_source::ParquetScanPlan::try_new(&path, &zero).unwrap_err(),
        "batch_size",
    );
    let plan = arrowfeed_core_source::ParquetScanPlan::try_new(&path, &ReadOptions::default())
        .unwrap()
        .decode_batch_rows(0);
    let file = std::fs::read(&path).unwrap();
    let e = arrowfeed_traits::run_plan_in_order(plan, |r| {
        Ok(bytes::Bytes::copy_from_slice(
            &file[r.start as usize..r.end as usize],
        ))
    })
    .unwrap_err();
    named(e, "decode_batch_rows");
    let plan =
        arrowfeed_core_source::ParquetScanPlan::try_new(&path, &ReadOptions::default()).unwrap();
    let source: Arc<dyn arrowfeed_traits::ByteSource> =
        Arc::new(arrowfeed_core_source::LocalFile::open(&path).unwrap());
    let mut reader =
        arrowfeed_core_source::PlanReader::new(Box::new(plan), source).exact_batches(0);
    named(reader.next_batch().unwrap_err(), "exact_batches");
    // One row per batch works.
    let one = open_with(&path, &ReadOptions::default().batch_size(1)).unwrap();
    assert_eq!(one.count(), 40);
}
