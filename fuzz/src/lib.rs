//! What every fuzz target shares: [`guard_dependency_panics`].

use std::collections::HashSet;
use std::sync::{Mutex, Once};

/// Lets a panic inside a dependency (a crate from the registry) reach our guard, which turns
/// it into an error, instead of aborting the run as libFuzzer's panic hook does; prints its
/// place once. Every other panic, ours or one no guard catches, still aborts: those are the
/// findings. Dependency panics are reported upstream, not fixed here, and would otherwise stop
/// every run at the first one.
pub fn guard_dependency_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let libfuzzer = std::panic::take_hook();
        let seen = Mutex::new(HashSet::new());
        std::panic::set_hook(Box::new(move |info| {
            let place = info
                .location()
                .map(|l| (l.file().to_owned(), l.line()))
                .filter(|(file, _)| file.contains("/.cargo/registry/"));
            match place {
                Some(place) if arrowfeed_traits::panic_is_guarded() => {
                    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                    if seen.insert(place.clone()) {
                        // Which of our calls reached it: the innermost arrowfeed frame.
                        let trace = std::backtrace::Backtrace::force_capture().to_string();
                        let ours = trace
                            .lines()
                            .map(str::trim)
                            .find(|l| l.contains("arrowfeed_") && !l.contains("arrowfeed_fuzz"))
                            .unwrap_or("?");
                        eprintln!(
                            "guarded dependency panic at {}:{} from {ours}",
                            place.0, place.1
                        );
                    }
                }
                _ => libfuzzer(info),
            }
        }));
    });
}
