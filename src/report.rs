//! Progress and events from the library to whoever drives it. The library never prints: it calls
//! a `Reporter`, and the CLI decides whether that becomes a progress bar, a log line or nothing.

use crate::error::Error;

/// Receives progress events from long operations; every method must be cheap and non-blocking.
pub trait Reporter: Send + Sync {
    /// An operation starts that will move `total_bytes` over `total_files` files, when known.
    fn on_start(&self, total_bytes: Option<u64>, total_files: Option<u64>);
    /// `n` more bytes were processed.
    fn on_bytes(&self, n: u64);
    /// One file or object was finished.
    fn on_file_done(&self, name: &str);
    /// The operation ended (successfully or not).
    fn on_done(&self);
    /// A request failed and will be retried after a pause.
    fn on_retry(&self, what: &str, attempt: u32, error: &Error);
    /// Something the user should know that does not stop the operation.
    fn on_warning(&self, message: &str);
}

/// A reporter that ignores every event.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReporter;

impl Reporter for NoReporter {
    fn on_start(&self, _: Option<u64>, _: Option<u64>) {}
    fn on_bytes(&self, _: u64) {}
    fn on_file_done(&self, _: &str) {}
    fn on_done(&self) {}
    fn on_retry(&self, _: &str, _: u32, _: &Error) {}
    fn on_warning(&self, _: &str) {}
}
