//! A printed Loader state: parsing, and printing back what parses.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    arrowfeed_fuzz::guard_dependency_panics();
    arrowfeed_prefetch::fuzz::loader_state(data);
});
