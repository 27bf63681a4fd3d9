//! An arrowfeed shard store: its manifest and one shard.
#![no_main]
use arrowfeed_shard_store::fuzz::{Kind, store};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    arrowfeed_fuzz::guard_dependency_panics();
    store(Kind::Arrowfeed, data);
});
