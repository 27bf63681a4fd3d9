//! The facade on local files: paths and `file://` URLs alike; a URL without the feature is a
//! clear error.

use arrowfeed::prelude::*;

use crate::common::*;

#[test]
fn file_urls_are_paths() {
    let dir = tempfile::tempdir().unwrap();
    let input = batches(&[300, 200]);
    for path in write_all_kinds(dir.path(), &input) {
        let url = format!("file://{}", path.display());
        assert!(!arrowfeed::is_url(&url));
        let a = drain(arrowfeed::open(&path).unwrap());
        let b = drain(arrowfeed::open(&url).unwrap());
        assert_eq!(concat(&a), concat(&b), "{url}");
        assert_eq!(arrowfeed::info(&url).unwrap().rows, Some(500), "{url}");
    }
}

#[test]
fn scan_reads_through_one_source() {
    let dir = tempfile::tempdir().unwrap();
    let input = batches(&[1000, 1000, 500]);
    let paths = write_all_kinds(dir.path(), &input);
    let options = ReadOptions::default()
        .batch_size(333)
        .columns(["tokens", "id"]);
    for path in paths
        .iter()
        .filter(|p| !p.to_string_lossy().ends_with(".arrows"))
    {
        let scanned = drain(arrowfeed::scan(path, &options).unwrap().reader().unwrap());
        assert!(
            scanned[..scanned.len() - 1]
                .iter()
                .all(|b| b.num_rows() == 333)
        );
        let want = drain(arrowfeed::open_with(path, &options).unwrap());
        assert_eq!(concat(&scanned), concat(&want), "{}", path.display());
    }
    let stream = paths
        .iter()
        .find(|p| p.to_string_lossy().ends_with(".arrows"))
        .unwrap();
    let err = arrowfeed::scan(stream, &options).unwrap_err();
    assert!(err.to_string().contains("arrow-stream"), "{err}");
}

#[cfg(not(feature = "object-store"))]
#[test]
fn urls_need_the_object_store_feature() {
    let err = arrowfeed::open("s3://bucket/x.parquet").unwrap_err();
    assert!(err.to_string().contains("object-store"), "{err}");
}
