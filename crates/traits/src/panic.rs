//! One way to catch a panic: [`catch_panic`], and [`no_panic`], the guard around untrusted
//! bytes and user code that turns a panic into the workspace's error; [`panic_is_guarded`],
//! which a panic hook asks so that a panic a guard turns into an error prints nothing (the
//! error says what failed, naming the file). And one way to start a thread: [`spawn_thread`],
//! whose failure is one error wherever it happens.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::{Error, Location, Result, panic_message};

thread_local! {
    /// How many [`catch_panic`] calls this thread is inside.
    static GUARDS: Cell<u32> = const { Cell::new(0) };
    /// How many panics [`catch_panic`] has caught on this thread.
    static CAUGHT: Cell<u64> = const { Cell::new(0) };
}

/// How many panics [`catch_panic`] has turned into errors on this thread: what the fuzz
/// findings' replay checks, since a guard that catches a panic hides it from a test. Not
/// part of the API.
#[doc(hidden)]
pub fn panics_caught_on_this_thread() -> u64 {
    CAUGHT.with(Cell::get)
}

/// Leaves a guard also when `f` unwinds.
struct Leave;

impl Drop for Leave {
    fn drop(&mut self) {
        GUARDS.with(|g| g.set(g.get().saturating_sub(1)));
    }
}

/// Runs `f`; a panic inside it becomes `Err` with the panic's message.
///
/// Callers own or exclusively borrow what `f` touches and treat the work that panicked as
/// failed, so nothing half-updated is used again (hence the `AssertUnwindSafe` inside).
///
/// ```
/// let r = arrowfeed_traits::catch_panic(|| -> u32 { panic!("offset {} out of range", 9) });
/// assert_eq!(r.unwrap_err(), "offset 9 out of range");
/// assert_eq!(arrowfeed_traits::catch_panic(|| 1 + 1), Ok(2));
/// ```
pub fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    GUARDS.with(|g| g.set(g.get() + 1));
    let leave = Leave;
    let r = catch_unwind(AssertUnwindSafe(f));
    drop(leave);
    r.map_err(|payload| {
        CAUGHT.with(|c| c.set(c.get() + 1));
        panic_message(payload.as_ref())
    })
}

/// Runs `f`, a decoder of untrusted bytes or code a caller supplied; a panic inside it becomes
/// [`Error::Corrupt`] at `location`, saying that `what` panicked and why. The one guard every
/// crate uses, so a panic reads the same wherever it is caught.
///
/// ```
/// use arrowfeed_traits::{Error, no_panic};
/// let r = no_panic("data.parquet", "the decoder", || -> arrowfeed_traits::Result<u8> {
///     panic!("offset 9 out of range")
/// });
/// let e = r.unwrap_err();
/// assert!(matches!(e, Error::Corrupt { .. }));
/// assert_eq!(e.to_string(), "data.parquet: the decoder panicked: offset 9 out of range");
/// ```
pub fn no_panic<T>(
    location: impl Into<Location>,
    what: &str,
    f: impl FnOnce() -> Result<T>,
) -> Result<T> {
    match catch_panic(f) {
        Ok(r) => r,
        Err(message) => Err(Error::corrupt(
            location,
            format!("{what} panicked: {message}"),
        )),
    }
}

/// Starts a thread named `name` running `f`. A thread that cannot start is
/// [`Error::External`] at `thread NAME`, with the operating system's error as its source.
///
/// ```
/// let h = arrowfeed_traits::spawn_thread("arrowfeed-example".into(), || 6 * 7)?;
/// assert_eq!(h.join().expect("no panic"), 42);
/// # Ok::<(), arrowfeed_traits::Error>(())
/// ```
pub fn spawn_thread<T: Send + 'static>(
    name: String,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<T>> {
    let at = Location::new(format!("thread {name}"));
    std::thread::Builder::new()
        .name(name)
        .spawn(f)
        .map_err(|e| Error::external(at, e))
}

/// True while this thread runs inside [`catch_panic`]: a panic hook that sees it can stay
/// silent, because the panic will come back as an error.
///
/// ```
/// assert!(!arrowfeed_traits::panic_is_guarded());
/// assert_eq!(arrowfeed_traits::catch_panic(arrowfeed_traits::panic_is_guarded), Ok(true));
/// ```
pub fn panic_is_guarded() -> bool {
    GUARDS.with(Cell::get) > 0
}

/// Installs a process panic hook that prints nothing for a panic inside [`catch_panic`] (it
/// comes back as an error naming the file and what failed) and hands every other panic to
/// the hook that was installed before. For programs (the CLI, the Python module) whose users
/// should see one error, not a panic message followed by it.
pub fn quiet_guarded_panics() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !panic_is_guarded() {
            report(info);
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_count_returns_to_zero_after_a_panic_and_nests() {
        let r = catch_panic(|| {
            assert!(panic_is_guarded());
            let inner = catch_panic(|| -> () { panic!("inner") });
            assert_eq!(inner.unwrap_err(), "inner");
            assert!(panic_is_guarded());
            panic!("outer {}", 1)
        });
        assert_eq!(r.unwrap_err(), "outer 1");
        assert!(!panic_is_guarded());
    }
}
