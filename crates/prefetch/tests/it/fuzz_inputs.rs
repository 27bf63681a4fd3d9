//! The fuzz target's seeds and findings through its own harness: seeds parse, and no input
//! that once crashed the target panics now.

use arrowfeed_prefetch::fuzz;
use arrowfeed_traits::testkit::replay_fuzz_inputs;

#[test]
fn loader_state_fuzz_inputs_replay() {
    replay_fuzz_inputs("loader_state", fuzz::loader_state);
}
