//! The terminal side of `Reporter`: an indicatif bar with bytes, rate, ETA and (for many files) a
//! file count, drawn on stderr only when settings allow; warnings and retries go to the log.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::error::Error;
use crate::report::Reporter;

/// Reports progress as a bar on stderr (when `show`), and warnings through `tracing`.
#[derive(Debug)]
pub struct CliReporter {
    bar: Mutex<Option<ProgressBar>>,
    show: bool,
    files_total: AtomicU64,
    files_done: AtomicU64,
}

impl CliReporter {
    /// A reporter that draws bars only if `show`.
    pub fn new(show: bool) -> Self {
        Self {
            bar: Mutex::new(None),
            show,
            files_total: AtomicU64::new(0),
            files_done: AtomicU64::new(0),
        }
    }

    fn with_bar(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            f(bar);
        }
    }
}

impl Reporter for CliReporter {
    fn on_start(&self, total_bytes: Option<u64>, total_files: Option<u64>) {
        if !self.show {
            return;
        }
        let files = total_files.filter(|&n| n > 1);
        self.files_total
            .store(files.unwrap_or(0), Ordering::Relaxed);
        let template = match (total_bytes.is_some(), files.is_some()) {
            (true, true) => {
                "{bar:30.cyan/blue} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} · {msg}"
            }
            (true, false) => {
                "{bar:30.cyan/blue} {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
            }
            _ => "{spinner} {bytes} {binary_bytes_per_sec} {elapsed}",
        };
        let style = ProgressStyle::with_template(template)
            .expect("the progress templates are fixed and valid")
            .progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(total_bytes, ProgressDrawTarget::stderr())
            .with_style(style);
        if let Some(n) = files {
            bar.set_message(format!("0/{n} files"));
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        *self.bar.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar);
    }

    fn on_bytes(&self, n: u64) {
        self.with_bar(|b| b.inc(n));
    }

    fn on_file_done(&self, _name: &str) {
        let done = self.files_done.fetch_add(1, Ordering::Relaxed) + 1;
        let total = self.files_total.load(Ordering::Relaxed);
        if total > 1 {
            self.with_bar(|b| b.set_message(format!("{done}/{total} files")));
        }
    }

    fn on_done(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|p| p.into_inner()).take() {
            bar.finish_and_clear();
        }
    }

    fn on_retry(&self, what: &str, attempt: u32, error: &Error) {
        // Retries are routine on real networks: shown with -v; a request that keeps failing
        // ends in an error that says how many attempts were made.
        tracing::info!("retrying {what} (attempt {attempt}): {error}");
    }

    fn on_warning(&self, message: &str) {
        match self.bar.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(bar) => bar.suspend(|| tracing::warn!("{message}")),
            None => tracing::warn!("{message}"),
        }
    }
}
