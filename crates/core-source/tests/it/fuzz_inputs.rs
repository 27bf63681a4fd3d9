//! The fuzz targets' seeds and findings through the targets' own harness: seeds read cleanly,
//! and no input that once crashed a target panics now.

use arrowfeed_core_source::fuzz;
use arrowfeed_traits::testkit::replay_fuzz_inputs;

#[test]
fn parquet_fuzz_inputs_replay() {
    replay_fuzz_inputs("parquet", fuzz::parquet);
}

#[test]
fn ipc_fuzz_inputs_replay() {
    replay_fuzz_inputs("ipc", fuzz::ipc);
}

#[test]
fn snappy_fuzz_inputs_replay() {
    replay_fuzz_inputs("snappy", fuzz::snappy);
}
