//! Thin wrappers over rayon that fall back to plain loops when the pool has a single
//! thread: calling into rayon from outside its pool costs a hand-off to a worker thread and
//! back (tens of microseconds per call), which would dominate single-threaded runs.

use rayon::prelude::*;

/// Whether more than one rayon worker is available.
#[inline]
pub(crate) fn enabled() -> bool {
    rayon::current_num_threads() > 1
}

/// `rayon::join` when parallel, otherwise `(a(), b())`.
pub(crate) fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    if enabled() {
        rayon::join(a, b)
    } else {
        (a(), b())
    }
}

/// Maps `f` over `items`, in parallel when the pool has several threads.
pub(crate) fn map<T, R, F>(items: &[T], f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync + Send,
{
    if enabled() {
        items.par_iter().map(f).collect()
    } else {
        items.iter().map(f).collect()
    }
}

/// Maps `f` over owned `items`, in parallel when the pool has several threads.
pub(crate) fn map_owned<T, R, F>(items: Vec<T>, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync + Send,
{
    if enabled() {
        items.into_par_iter().map(f).collect()
    } else {
        items.into_iter().map(f).collect()
    }
}
