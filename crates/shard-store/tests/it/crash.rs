//! Crash safety: a writer process killed with SIGKILL at random points leaves either no
//! dataset or the complete one.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use arrowfeed_shard_store::{ShardStore, StoreWriter};
use arrowfeed_traits::RandomAccess;

use crate::common::*;

const CHILD_ENV: &str = "ARROWFEED_CRASH_CHILD_DIR";
const ROWS: usize = 40_000;

/// Writes the store the crash test kills. Run directly (without the environment variable) it
/// writes into a temporary directory and checks the result, so it is a test on its own too.
#[test]
fn crash_child_writer() {
    let tmp;
    let target = match std::env::var_os(CHILD_ENV) {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir().unwrap();
            tmp.path().join("store")
        }
    };
    let batches: Vec<_> = (0..40).map(|k| batch(k * 1000, 1000)).collect();
    write_slowly(&target, batches);
    let store = ShardStore::open(&target).unwrap();
    assert_eq!(store.num_rows(), ROWS as u64);
}

fn write_slowly(target: &Path, batches: Vec<arrow_array::RecordBatch>) {
    let schema = batches[0].schema();
    let slow = batches.into_iter().map(|b| {
        std::thread::sleep(Duration::from_millis(2));
        Ok(b)
    });
    let input = arrow_array::RecordBatchIterator::new(slow, schema);
    StoreWriter::new()
        .shard_rows(3000)
        .batch_rows(500)
        .write(target, input)
        .unwrap();
}

#[cfg(unix)]
#[test]
fn a_killed_writer_leaves_no_dataset_or_the_complete_one() {
    let exe = std::env::current_exe().unwrap();
    let mut outcomes = (0, 0);
    for (k, delay_ms) in [5u64, 20, 40, 60, 80, 95, 110, 130, 160, 250]
        .into_iter()
        .enumerate()
    {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join(format!("store-{k}"));
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "crash::crash_child_writer",
                "--test-threads",
                "1",
                "--quiet",
            ])
            .env(CHILD_ENV, &target)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        if target.exists() {
            let store = ShardStore::open(&target).expect("a published store opens");
            assert_eq!(
                store.num_rows(),
                ROWS as u64,
                "killed after {delay_ms} ms: a partial dataset"
            );
            assert!(store.verify().unwrap().is_ok());
            outcomes.1 += 1;
        } else {
            assert!(ShardStore::open(&target).is_err());
            outcomes.0 += 1;
        }
    }
    // Both outcomes should occur across the delays; if the machine is so slow or fast that one
    // never does, the test still checked every kill, so only report it.
    eprintln!(
        "killed writers: {} left no dataset, {} the complete one",
        outcomes.0, outcomes.1
    );
}
