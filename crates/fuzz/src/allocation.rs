//! A global allocator that remembers the largest single allocation and
//! aborts above [`ALLOCATION_BOUND`]: the bound every target is held to, so
//! that a length read from outside and trusted shows as a crash (libFuzzer
//! saves the input) instead of passing while it happens to fit in memory.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The largest single allocation a target may make on inputs of up to
/// [`crate::mutation::MAX_INPUT`] bytes: 256 MiB.
pub const ALLOCATION_BOUND: usize = 256 << 20;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

/// [`System`], recording the largest request and aborting above the bound.
pub struct TrackingAllocator;

// SAFETY: every call is forwarded to `System` with the caller's layout and
// pointer unchanged; the bookkeeping is an atomic maximum, and the abort
// happens before any memory is handed out.
unsafe impl GlobalAlloc for TrackingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: forwarded as received (see the impl's note).
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: forwarded as received.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: forwarded as received.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded as received.
        unsafe { System.dealloc(ptr, layout) }
    }
}

fn record(size: usize) {
    LARGEST.fetch_max(size, Ordering::Relaxed);
    if size > ALLOCATION_BOUND {
        // No formatting here: it would allocate inside the allocator.
        let message = b"heman-fuzz: an allocation above ALLOCATION_BOUND (256 MiB)\n";
        // SAFETY: writing a static buffer to the standard error descriptor.
        unsafe { libc_write(2, message.as_ptr(), message.len()) };
        std::process::abort();
    }
}

extern "C" {
    #[link_name = "write"]
    fn libc_write(fd: i32, buf: *const u8, count: usize) -> isize;
}

/// The largest single allocation since the last [`reset_largest`] (in any
/// thread, when this allocator is the global one).
pub fn largest() -> usize {
    LARGEST.load(Ordering::Relaxed)
}

/// Starts a new measurement of [`largest`].
pub fn reset_largest() {
    LARGEST.store(0, Ordering::Relaxed);
}
