//! The module's allocator (mimalloc, its own: Python's objects keep Python's) and how it is
//! fitted to the memory budgets of the readers open.
//!
//! By default freed memory is kept 10 s before it goes back to the OS, and regions may be
//! backed by transparent huge pages. While a reader opened with a budget below the default is
//! open, freed memory goes back after a millisecond per 1.6 MiB of the smallest such budget
//! and new regions ask for no huge pages; the defaults return when the last such reader is
//! dropped. The host process's own settings (`prctl`, Python's allocator) are left alone.

use std::sync::Mutex;

/// mimalloc's `mi_option_purge_delay` (its place in `mi_option_e`, the same in v2 and v3).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
/// mimalloc's `mi_option_allow_thp` in v3, the version libmimalloc-sys builds by default.
const MI_OPTION_ALLOW_THP: std::ffi::c_int = 43;

/// The default purge delay: an epoch frees each batch while the next is gathered, and giving
/// the memory back sooner made every batch fault in fresh, zeroed pages.
const KEEP_FREED_MS: std::ffi::c_long = 10_000;

/// The budgets of the open readers that asked for less than the default.
static SMALL_BUDGETS: Mutex<Vec<usize>> = Mutex::new(Vec::new());

fn set(option: std::ffi::c_int, value: std::ffi::c_long) {
    // SAFETY: mi_option_set stores a number in mimalloc's option table; any value is valid.
    unsafe { libmimalloc_sys::mi_option_set(option, value) };
}

/// The settings at import.
pub(crate) fn init() {
    set(MI_OPTION_PURGE_DELAY, KEEP_FREED_MS);
}

/// How long freed memory waits under `budget`, as the CLI's `bench` waits
/// (`decode_sched::freed_memory_delay_ms`: 10 ms at 16 MiB).
fn purge_delay_ms(budget: usize) -> std::ffi::c_long {
    let ms = arrowfeed::decode_sched::freed_memory_delay_ms(budget);
    std::ffi::c_long::try_from(ms).unwrap_or(std::ffi::c_long::MAX)
}

fn apply(budgets: &[usize]) {
    match budgets.iter().min() {
        Some(&b) => {
            set(MI_OPTION_PURGE_DELAY, purge_delay_ms(b));
            set(MI_OPTION_ALLOW_THP, 0);
        }
        None => {
            set(MI_OPTION_PURGE_DELAY, KEEP_FREED_MS);
            set(MI_OPTION_ALLOW_THP, 1);
        }
    }
}

/// Held by a reader for its budget; the allocator's settings follow the budgets held.
#[derive(Debug)]
pub(crate) struct BudgetHold(Option<usize>);

impl BudgetHold {
    /// Fits the allocator to `budget` if it is below `default`, until this is dropped.
    pub(crate) fn new(budget: usize, default: usize) -> Self {
        if budget >= default {
            return Self(None);
        }
        let mut budgets = SMALL_BUDGETS.lock().unwrap_or_else(|p| p.into_inner());
        budgets.push(budget);
        apply(&budgets);
        Self(Some(budget))
    }
}

impl Drop for BudgetHold {
    fn drop(&mut self) {
        let Some(budget) = self.0 else {
            return;
        };
        let mut budgets = SMALL_BUDGETS.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = budgets.iter().position(|&b| b == budget) {
            budgets.swap_remove(i);
        }
        apply(&budgets);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(option: std::ffi::c_int) -> std::ffi::c_long {
        // SAFETY: mi_option_get reads a number from mimalloc's option table.
        unsafe { libmimalloc_sys::mi_option_get(option) }
    }

    #[test]
    fn the_settings_follow_the_smallest_budget_held() {
        init();
        assert_eq!(get(MI_OPTION_PURGE_DELAY), KEEP_FREED_MS);
        assert_eq!(
            get(MI_OPTION_ALLOW_THP),
            1,
            "mimalloc's default: is the index v3's?"
        );
        let default = 256 << 20;
        let big = BudgetHold::new(default, default);
        assert_eq!(get(MI_OPTION_PURGE_DELAY), KEEP_FREED_MS);
        let a = BudgetHold::new(64 << 20, default);
        assert_eq!(
            (get(MI_OPTION_PURGE_DELAY), get(MI_OPTION_ALLOW_THP)),
            (40, 0)
        );
        let b = BudgetHold::new(16 << 20, default);
        assert_eq!(get(MI_OPTION_PURGE_DELAY), 10);
        drop(b);
        assert_eq!(get(MI_OPTION_PURGE_DELAY), 40);
        drop((a, big));
        assert_eq!(
            (get(MI_OPTION_PURGE_DELAY), get(MI_OPTION_ALLOW_THP)),
            (KEEP_FREED_MS, 1)
        );
    }
}
