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
    let mut leaked = 0;
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
        // The next write to the target removes the hidden directories the killed one left.
        leaked += usize::from(!hidden(dir.path()).is_empty());
        let store = write(&target, input(&[100]), &StoreWriter::new().overwrite(true));
        assert_eq!(store.num_rows(), 100);
        let left = hidden(dir.path());
        assert!(
            left.is_empty(),
            "killed after {delay_ms} ms, left after the next write: {left:?}"
        );
    }
    // Both outcomes should occur across the delays; if the machine is so slow or fast that one
    // never does, the test still checked every kill, so only report it.
    eprintln!(
        "killed writers: {} left no dataset, {} the complete one; {leaked} left hidden directories",
        outcomes.0, outcomes.1
    );
}

/// The hidden entries (names starting with a dot) in `dir`.
fn hidden(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// A hidden directory that a writer still holds (its lock taken) survives another write to
/// the same target; one nobody holds is removed, and so is a leftover `.old` one.
#[cfg(unix)]
#[test]
fn a_write_removes_abandoned_directories_and_leaves_a_working_writers_alone() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("store");
    let working = dir.path().join(".store.tmp-1-0");
    let abandoned = dir.path().join(".store.tmp-999999-7");
    let old = dir.path().join(".store.old-999999-8");
    for d in [&working, &abandoned, &old] {
        std::fs::create_dir(d).unwrap();
        std::fs::write(d.join("shard-00000.arrow"), b"partial").unwrap();
    }
    // Another store's leftovers are not this target's.
    let other = dir.path().join(".other.tmp-999999-0");
    std::fs::create_dir(&other).unwrap();
    let held = std::fs::File::open(&working).unwrap();
    held.lock().unwrap();
    let store = write(&target, input(&[10]), &StoreWriter::new());
    let mut left = hidden(dir.path());
    left.sort();
    assert_eq!(left, [".other.tmp-999999-0", ".store.tmp-1-0"]);

    // `verify` reports what a killed write left, without calling the store bad.
    for d in [&abandoned, &old] {
        std::fs::create_dir(d).unwrap();
    }
    let report = store.verify().unwrap();
    assert!(report.is_ok());
    let mut reported: Vec<_> = report
        .leftovers
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    reported.sort();
    assert_eq!(reported, [".store.old-999999-8", ".store.tmp-999999-7"]);
    write(&target, input(&[10]), &StoreWriter::new().overwrite(true));
    let again = ShardStore::open(&target).unwrap().verify().unwrap();
    assert!(again.is_ok() && again.leftovers.is_empty(), "{again:?}");
    drop(held);
}
