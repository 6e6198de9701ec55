//! The metrics layer counts what passes through it (the seed's `BackendMetrics`): requests, failed
//! requests, bytes up and down, and the average latency. It never changes a result.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Serialize;

use crate::backend::{Backend, DynBackend, HealthStatus, ObjectMeta, PutMode};
use crate::error::{ErrorKind, Result};

/// A snapshot of the counters of a [`MetricsBackend`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct BackendMetrics {
    /// Requests sent to the inner backend.
    pub total_requests: u64,
    /// Requests that ended in an error.
    pub failed_requests: u64,
    /// Payload bytes written.
    pub bytes_uploaded: u64,
    /// Payload bytes read.
    pub bytes_downloaded: u64,
    /// Mean request latency in milliseconds.
    pub avg_latency_ms: f64,
}

#[derive(Debug, Default)]
struct Counters {
    total: AtomicU64,
    failed: AtomicU64,
    up: AtomicU64,
    down: AtomicU64,
    latency_us: AtomicU64,
}

/// A layer that counts requests, failures, bytes and latency.
#[derive(Debug)]
pub struct MetricsBackend {
    inner: DynBackend,
    counters: Arc<Counters>,
}

impl MetricsBackend {
    /// Wraps `inner`.
    pub fn new(inner: DynBackend) -> Self {
        Self {
            inner,
            counters: Arc::default(),
        }
    }

    /// Wraps `inner`, adding to the counters of `other`: a second path to the same store
    /// counts as the same store.
    pub fn sharing(inner: DynBackend, other: &MetricsBackend) -> Self {
        Self {
            inner,
            counters: Arc::clone(&other.counters),
        }
    }

    /// The counters so far.
    pub fn snapshot(&self) -> BackendMetrics {
        let c = &self.counters;
        let total = c.total.load(Ordering::Relaxed);
        let latency_us = c.latency_us.load(Ordering::Relaxed);
        BackendMetrics {
            total_requests: total,
            failed_requests: c.failed.load(Ordering::Relaxed),
            bytes_uploaded: c.up.load(Ordering::Relaxed),
            bytes_downloaded: c.down.load(Ordering::Relaxed),
            avg_latency_ms: if total == 0 {
                0.0
            } else {
                latency_us as f64 / total as f64 / 1000.0
            },
        }
    }

    fn record<T>(&self, started: Instant, result: &Result<T>, up: u64, down: impl Fn(&T) -> u64) {
        let c = &self.counters;
        c.total.fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        c.latency_us.fetch_add(us, Ordering::Relaxed);
        match result {
            Ok(v) => {
                c.up.fetch_add(up, Ordering::Relaxed);
                c.down.fetch_add(down(v), Ordering::Relaxed);
            }
            // "Not found" is an answer, not a failed request: existence checks rely on it.
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(_) => {
                c.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Records a listing's latency and failure when its stream goes away.
struct ListGuard {
    counters: Arc<Counters>,
    started: Instant,
    failed: bool,
}

impl Drop for ListGuard {
    fn drop(&mut self) {
        let us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.counters.latency_us.fetch_add(us, Ordering::Relaxed);
        if self.failed {
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The metrics layer only observes, so it shows as the backend it wraps: messages such as
/// "no vault at file:///data/vault" name the location a user typed.
impl fmt::Display for MetricsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait]
impl Backend for MetricsBackend {
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<()> {
        let started = Instant::now();
        let len = data.len() as u64;
        let r = self.inner.put(key, data, mode).await;
        self.record(started, &r, len, |_| 0);
        r
    }

    async fn put_whole(&self, key: &str, data: Bytes) -> Result<()> {
        let started = Instant::now();
        let len = data.len() as u64;
        let r = self.inner.put_whole(key, data).await;
        self.record(started, &r, len, |_| 0);
        r
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let started = Instant::now();
        let r = self.inner.get(key).await;
        self.record(started, &r, 0, |b| b.len() as u64);
        r
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let started = Instant::now();
        let r = self.inner.get_range(key, range).await;
        self.record(started, &r, 0, |b| b.len() as u64);
        r
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        let started = Instant::now();
        let r = self.inner.head(key).await;
        self.record(started, &r, 0, |_| 0);
        r
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let started = Instant::now();
        let r = self.inner.delete(key).await;
        self.record(started, &r, 0, |_| 0);
        r
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta>> {
        // The request counts when the listing starts; its latency and any failure are recorded
        // when the stream ends or is dropped, even if the caller stops early.
        self.counters.total.fetch_add(1, Ordering::Relaxed);
        let mut guard = ListGuard {
            counters: Arc::clone(&self.counters),
            started: Instant::now(),
            failed: false,
        };
        self.inner
            .list(prefix)
            .inspect(move |item| {
                // Borrow the whole guard so the closure owns it (not just its field).
                let guard: &mut ListGuard = &mut guard;
                guard.failed |= item.is_err();
            })
            .boxed()
    }

    async fn copy(&self, from: &str, to: &str) -> Result<()> {
        let started = Instant::now();
        let r = self.inner.copy(from, to).await;
        self.record(started, &r, 0, |_| 0);
        r
    }

    fn max_key_len(&self) -> usize {
        self.inner.max_key_len()
    }

    async fn sweep(&self, older_than: std::time::Duration) -> Result<crate::backend::Swept> {
        let started = Instant::now();
        let r = self.inner.sweep(older_than).await;
        self.record(started, &r, 0, |_| 0);
        r
    }

    async fn health(&self) -> Result<HealthStatus> {
        let started = Instant::now();
        let r = self.inner.health().await;
        self.record(started, &r, 0, |_| 0);
        r
    }
}
