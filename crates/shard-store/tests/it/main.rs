//! Integration tests of arrowfeed-shard-store, in one binary.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

mod bad_input;
mod common;
mod crash;
mod fuzz_inputs;
mod random_access;
mod remote;
mod wide;
