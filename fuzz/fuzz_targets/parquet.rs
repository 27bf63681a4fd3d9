//! A Parquet file: `info`, the reader, and the scan plan through our page reader.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    arrowfeed_fuzz::guard_dependency_panics();
    arrowfeed_core_source::fuzz::parquet(data);
});
