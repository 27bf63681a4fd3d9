//! The fuzz targets' seeds and findings through the targets' own harness: seeds read cleanly,
//! and no input that once crashed a target panics now.

use arrowfeed_shard_store::fuzz::{Kind, store};
use arrowfeed_traits::testkit::replay_fuzz_inputs;

#[test]
fn store_fuzz_inputs_replay() {
    replay_fuzz_inputs("store", |data| store(Kind::Arrowfeed, data));
}

#[test]
fn hf_store_fuzz_inputs_replay() {
    replay_fuzz_inputs("hf_store", |data| store(Kind::HuggingFace, data));
}
