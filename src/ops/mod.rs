//! Operations: one module per command. Each takes an open vault and plain settings, does the
//! work, and returns a serializable result; none prints or knows about the terminal.

pub mod chunk;
pub mod gc;
pub mod get;
pub mod info;
pub mod put;
pub mod rm;
pub mod tree;
pub mod verify;

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How many times wider than `parallel` small requests run.
const FANOUT: usize = 16;
/// The most small requests in flight, whatever `parallel` says.
const MAX_WIDTH: usize = 512;
/// Bytes of small objects in flight per unit of `parallel`.
const BYTES_PER_SLOT: u64 = 16 * 1024 * 1024;
/// The byte budget's granularity: an object holds at least this much of it.
const UNIT: u64 = 64 * 1024;

/// How many small, latency-bound requests (manifest reads, deletes) to keep in flight.
///
/// `parallel` bounds the chunks in flight, each up to a chunk's size. A small request costs one
/// round trip and almost no memory, and a store's round trip (tens of milliseconds on S3) is far
/// longer than moving a small object, so such requests run `FANOUT` times wider: with `parallel`
/// at 8, 128 at once.
pub fn fanout(parallel: usize) -> usize {
    (parallel.max(1) * FANOUT).min(MAX_WIDTH)
}

/// Admits many objects of known size (one-chunk files, chunks read back) at once: at most
/// [`fanout`] of them, holding at most `parallel` × 16 MiB between them, so thousands of small files
/// are latency-bound no longer while a burst of larger ones stays within the memory budget. An
/// object larger than the whole budget is admitted alone.
#[derive(Clone)]
pub struct Window {
    budget: Arc<Semaphore>,
    units: u32,
    width: usize,
}

impl Window {
    /// The window for `parallel`.
    pub fn new(parallel: usize) -> Self {
        let bytes = parallel.max(1) as u64 * BYTES_PER_SLOT;
        let units = u32::try_from(bytes / UNIT).unwrap_or(u32::MAX >> 4);
        Self {
            budget: Arc::new(Semaphore::new(units as usize)),
            units,
            width: fanout(parallel),
        }
    }

    /// How many objects may be in flight at once (for `buffer_unordered`).
    pub fn width(&self) -> usize {
        self.width
    }

    /// Waits until an object of `size` bytes fits in the budget; it holds its share until the
    /// permit is dropped.
    pub async fn admit(&self, size: u64) -> OwnedSemaphorePermit {
        let units = u32::try_from(size.div_ceil(UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.units);
        Arc::clone(&self.budget)
            .acquire_many_owned(units)
            .await
            .expect("the window's semaphore is never closed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_requests_run_wider_than_chunks_within_a_cap() {
        assert_eq!(fanout(8), 128);
        assert_eq!(fanout(0), FANOUT);
        assert_eq!(fanout(1000), MAX_WIDTH);
    }

    #[tokio::test]
    async fn the_window_bounds_bytes_in_flight() {
        let w = Window::new(1); // 16 MiB
        let a = w.admit(12 * 1024 * 1024).await;
        // 5 MiB more would exceed 16 MiB: not admitted until `a` is released.
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            w.admit(5 * 1024 * 1024),
        )
        .await;
        assert!(waiting.is_err(), "admitted beyond the byte budget");
        // Tiny objects still fit beside `a`, one budget unit each.
        let small: Vec<_> = futures::future::join_all((0..32).map(|_| w.admit(100))).await;
        drop(small);
        drop(a);
        let b = w.admit(5 * 1024 * 1024).await;
        // Larger than the whole budget: admitted alone, not never.
        drop(b);
        let huge =
            tokio::time::timeout(std::time::Duration::from_secs(5), w.admit(64 * 1024 * 1024))
                .await;
        assert!(
            huge.is_ok(),
            "an object larger than the budget was never admitted"
        );
    }
}
