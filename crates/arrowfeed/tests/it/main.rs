//! Integration tests of the facade: the crates put together, and (with `object-store`) every
//! entry point over a real S3 server on loopback, started by `cargo xtask test`.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

mod common;
mod local;
#[cfg(feature = "object-store")]
mod remote;
