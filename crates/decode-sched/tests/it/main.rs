//! Integration tests of the scan engine (one binary).

mod common;
mod formats;
mod synthetic;
