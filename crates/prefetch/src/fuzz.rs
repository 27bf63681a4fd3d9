//! What the fuzz targets in `fuzz/` run, and the tests that replay their seeds and findings.

use crate::LoaderState;

/// `data` as a printed [`LoaderState`]: a state that parses prints back to text that parses
/// to the same state, and prints the same again. True if it parsed.
pub fn loader_state(data: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let Ok(state) = text.parse::<LoaderState>() else {
        return false;
    };
    let printed = state.to_string();
    let again: LoaderState = printed
        .parse()
        .unwrap_or_else(|e| panic!("{printed:?}, printed from {text:?}, does not parse: {e}"));
    assert_eq!(again, state, "{text:?} printed as {printed:?}");
    assert_eq!(again.to_string(), printed);
    true
}
