//! The traits crate's conformance kit, run against this crate's implementations.

use arrowfeed_core_source::{LocalFile, MemTable};
use arrowfeed_traits::testkit::{check_byte_source, check_random_access};
use proptest::prelude::*;

use crate::common::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// MemTable keeps the RandomAccess contract for any split into batches (empty ones too).
    #[test]
    fn memtable_conforms(sizes in proptest::collection::vec(0usize..40, 0..6), seed in any::<u64>()) {
        let cols = [Col::Int64, Col::Utf8, Col::ListInt32, Col::Struct, Col::DictUtf8];
        let schema = schema(&cols);
        let input = batches(&cols, &sizes, seed);
        let table = MemTable::try_new(schema.clone(), input.clone()).unwrap();
        check_random_access(&table, &concat(&schema, &input));
        check_random_access(&table.reader(), &concat(&schema, &input));
    }
}

#[test]
fn memtable_rejects_batches_of_another_schema() {
    let a = batch(&[Col::Int64], 3, 1);
    let b = batch(&[Col::Utf8], 3, 1);
    let err = MemTable::try_new(a.schema(), vec![a.clone(), b]).unwrap_err();
    assert!(err.to_string().contains("batch 1"), "{err}");
}

#[test]
fn local_file_conforms() {
    let dir = tempfile::tempdir().unwrap();
    for n in [0usize, 1, 4095, 100_000] {
        let data: Vec<u8> = (0..n).map(|i| (i * 131 % 251) as u8).collect();
        let path = dir.path().join(format!("bytes-{n}"));
        std::fs::write(&path, &data).unwrap();
        let f = LocalFile::open(&path).unwrap();
        check_byte_source(&f, &data);
        // Shared across threads: concurrent positioned reads see the right bytes.
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let (f, data) = (&f, &data);
                s.spawn(move || {
                    for k in 0..50u64 {
                        if n == 0 {
                            break;
                        }
                        let a = (t * 7919 + k * 104_729) % n as u64;
                        let b = (a + k * 13).min(n as u64);
                        let got = f.read_blocking(a..b).unwrap();
                        assert_eq!(&got[..], &data[a as usize..b as usize]);
                    }
                });
            }
        });
    }
    let err = LocalFile::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("directory"), "{err}");
}
