//! Memory measurement: a counting global allocator (live and peak heap bytes) plus
//! resident-set readings from `/proc/self/status`.
//!
//! RSS alone cannot show whether an operation allocates: memory freed by an earlier
//! benchmark stays resident and is reused without growing RSS. The allocator counts
//! every byte the operation's code asks for, so "peak heap growth" is exact; RSS growth
//! is measured after `malloc_trim` and reported alongside.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::util::{peak_rss, reset_peak_rss, rss};

/// The system allocator, counting live and peak bytes.
pub struct Counting;

static LIVE: AtomicU64 = AtomicU64::new(0);
static PEAK: AtomicU64 = AtomicU64::new(0);

fn grew(n: usize) {
    let live = LIVE.fetch_add(n as u64, Relaxed) + n as u64;
    PEAK.fetch_max(live, Relaxed);
}

fn shrank(n: usize) {
    LIVE.fetch_sub(n as u64, Relaxed);
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the
// counters are only statistics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Count the new block before releasing the old one: a moving realloc holds
            // both for a moment.
            grew(new_size);
            shrank(layout.size());
        }
        p
    }
}

/// What an operation cost in memory.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mem {
    /// Peak heap bytes above the live heap at the start.
    pub heap_peak: u64,
    /// Peak RSS above the RSS at the start (after returning free heap to the OS).
    pub rss_peak: u64,
    pub rss_before: u64,
    pub rss_after: u64,
}

/// Run `f` and measure its peak heap and RSS growth.
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, Mem) {
    // SAFETY: malloc_trim only returns free memory to the OS.
    unsafe {
        libc::malloc_trim(0);
    }
    let exact = reset_peak_rss();
    let rss_before = rss();
    let hwm_before = peak_rss();
    let live = LIVE.load(Relaxed);
    PEAK.store(live, Relaxed);
    let r = f();
    let heap_peak = PEAK.load(Relaxed).saturating_sub(live);
    let hwm = peak_rss();
    let rss_peak = if exact {
        hwm.saturating_sub(rss_before)
    } else {
        hwm.saturating_sub(hwm_before)
    };
    (
        r,
        Mem {
            heap_peak,
            rss_peak,
            rss_before,
            rss_after: rss(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_a_big_allocation() {
        let (_, m) = measure(|| {
            let v = vec![1u8; 8 << 20];
            std::hint::black_box(&v);
        });
        assert!(m.heap_peak >= 8 << 20, "{m:?}");
    }
}
