//! Arbitrary schemas written with arrow-rs read back equal through every source.

use proptest::prelude::*;

use arrowfeed_core_source::{ReadOptions, open_with};

use crate::common::*;

fn arb_cols() -> impl Strategy<Value = Vec<Col>> {
    proptest::collection::vec(proptest::sample::select(ALL.to_vec()), 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever was written comes back: same schema, same rows, in order, for any batch size.
    #[test]
    fn every_format_round_trips(
        cols in arb_cols(),
        sizes in proptest::collection::vec(0usize..120, 0..5),
        batch_size in 1usize..200,
        seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let schema = schema(&cols);
        let input = batches(&cols, &sizes, seed);
        let want = concat(&schema, &input);
        for out in OUTS {
            let path = dir.path().join(format!("{out:?}"));
            write(&path, out, &schema, &input);
            let src = open_with(&path, &ReadOptions::default().batch_size(batch_size)).unwrap();
            prop_assert_eq!(arrow_array::RecordBatchReader::schema(&src), schema.clone());
            let got: Vec<_> = src.collect::<Result<_, _>>().unwrap();
            for b in &got {
                prop_assert!(b.num_rows() <= batch_size, "{:?}: batch of {} rows > {}", out, b.num_rows(), batch_size);
            }
            let got = concat(&schema, &got);
            prop_assert_eq!(&got, &want, "{:?}", out);
        }
    }
}

/// Zero rows, and no batches at all, in every format.
#[test]
fn empty_files_read_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let cols = [Col::Int64, Col::Utf8, Col::ListInt32];
    let schema = schema(&cols);
    for (label, input) in [
        ("no-batches", vec![]),
        ("zero-rows", batches(&cols, &[0], 1)),
    ] {
        for out in OUTS {
            let path = dir.path().join(format!("{label}-{out:?}"));
            write(&path, out, &schema, &input);
            let got = read_all(&path).unwrap();
            assert_eq!(
                got.iter().map(|b| b.num_rows()).sum::<usize>(),
                0,
                "{label} {out:?}"
            );
            let info = arrowfeed_core_source::info(&path).unwrap();
            assert_eq!(info.rows, Some(0), "{label} {out:?}");
            assert_eq!(info.schema, schema);
        }
    }
}
