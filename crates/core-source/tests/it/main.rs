//! Integration tests of arrowfeed-core-source, in one binary to keep link time low.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

mod common;
mod conformance;
mod fuzz_inputs;
mod malformed;
mod options;
mod plans;
mod roundtrip;
mod sources;
