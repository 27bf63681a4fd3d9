//! Raw snappy blocks: ours alone and in pairs agree with each other
//! (`arrowfeed_core_source::fuzz::snappy`) and with the `snap` crate.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    arrowfeed_fuzz::guard_dependency_panics();
    arrowfeed_core_source::fuzz::snappy(data);
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let block = &rest[..usize::from(cut).min(rest.len())];
    let Ok(len) = snap::raw::decompress_len(block) else {
        return;
    };
    if len > 1 << 20 {
        return;
    }
    let reference = snap::raw::Decoder::new().decompress_vec(block).ok();
    let ours = arrowfeed_core_source::fuzz::snappy_one(block, len);
    assert_eq!(ours, reference, "ours and snap disagree on {block:?}");
});
