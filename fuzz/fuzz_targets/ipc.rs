//! An Arrow IPC file or stream: both readers, the stream walk and the scan plan.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    arrowfeed_fuzz::guard_dependency_panics();
    arrowfeed_core_source::fuzz::ipc(data);
});
