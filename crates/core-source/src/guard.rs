//! Defence in depth against panics inside third-party decoders.
//!
//! arrowfeed validates lengths and offsets before it hands bytes to arrow-ipc or parquet, and
//! keeps arrow's own validation on. A crafted file may still reach a code path in a decoder that
//! panics instead of returning an error; the API promises no panics for bad input, so decoding
//! of untrusted bytes runs under `catch_unwind` and such a panic becomes [`Error::Corrupt`].

use arrowfeed_traits::{Error, Location, Result, catch_panic};

/// Runs `f`, turning a panic into [`Error::Corrupt`] at `location`.
pub(crate) fn no_panic<T>(
    location: impl Into<Location>,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    // The closures passed here own or exclusively borrow their state, and a panic poisons
    // nothing we keep: the reader that panicked is marked finished by its caller.
    match catch_panic(f) {
        Ok(r) => r,
        Err(message) => Err(Error::corrupt(
            location,
            format!("the decoder failed on malformed data ({message})"),
        )),
    }
}
