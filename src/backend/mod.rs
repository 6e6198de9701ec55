//! Storage backends: the small `Backend` trait every store implements, the key validator every key
//! passes, and the factory that builds a backend stack from a profile. Backends move opaque bytes
//! under opaque keys; they know nothing of chunks, manifests, compression or encryption.

pub mod azure;
pub mod gcs;
pub mod layer;
pub mod local;
pub mod memory;
pub mod s3;

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};

/// Longest key a backend accepts, in bytes (S3's limit).
pub const MAX_KEY_LEN: usize = 1024;

/// Longest segment of a key, in bytes (the common file-name limit).
pub const MAX_SEGMENT_LEN: usize = 255;

/// Prefix of temporary files the local backend writes; no key segment may start with it.
pub const TEMP_PREFIX: &str = ".ldv-tmp.";

/// Whether a put may replace an existing object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutMode {
    /// Create or replace the object.
    Overwrite,
    /// Create the object only if the key is absent; otherwise fail with `ErrorKind::Conflict`.
    CreateOnly,
}

/// What a backend knows about one stored object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectMeta {
    /// The object's key.
    pub key: String,
    /// Stored size in bytes.
    pub size: u64,
    /// Last modification time, when the backend reports one.
    #[serde(with = "crate::time::serde_opt")]
    pub modified: Option<SystemTime>,
}

/// The outcome of a backend health check.
#[derive(Debug, Clone, Serialize)]
pub struct HealthStatus {
    /// Whether the backend answered and can be used.
    pub healthy: bool,
    /// Round-trip time of the probe.
    pub latency_ms: u64,
    /// What went wrong, when unhealthy.
    pub last_error: Option<String>,
    /// Backend-specific facts (for example whether conditional writes are honoured).
    pub details: Vec<(String, String)>,
}

/// A store of opaque objects under string keys.
///
/// Contract, which every implementation and every layer MUST keep (the conformance suite in
/// `tests/conformance.rs` checks it):
/// - Keys MUST be validated with [`validate_key`] before use; an invalid key is `InvalidKey`.
/// - `put` MUST be atomic: a completed put is whole and visible to every later read, and a
///   failed or interrupted put leaves either the old object or nothing, never a partial one.
/// - `put` with `PutMode::CreateOnly` MUST fail with `Conflict` when the key exists and MUST NOT
///   replace it.
/// - A missing key MUST be `NotFound` from `get`, `get_range`, `head`, `delete` and `copy`.
/// - `get_range` MUST return exactly the bytes in the range, clipped at the object's end; a range
///   starting past the end returns no bytes.
/// - `list(prefix)` MUST yield every object whose key starts with `prefix` (a plain string
///   prefix, not a directory), each once, in unspecified order.
/// - `copy` MUST behave as a get followed by an atomic put.
/// - `sweep` MUST leave every object untouched: it removes only leftovers of interrupted writes.
/// - A backend MAY refuse, with `Conflict`, to store a key while another key is a `/`-prefix of
///   it (`a` and `a/b`): a directory-backed store cannot hold both. The vault never needs both.
/// - Errors MUST keep their kind: not found, permission denied, throttling and network failures
///   are distinguishable, and only transient ones are marked retryable.
#[async_trait]
pub trait Backend: Send + Sync + fmt::Display + fmt::Debug {
    /// Stores `data` under `key` atomically.
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<()>;
    /// Stores `data` under `key` atomically, overwriting, in one request where the store takes
    /// an object of that size in one, whatever the multipart threshold: for objects already
    /// whole in memory and bounded in size, such as packs (up to 128 MiB), where parts would
    /// only add requests. Backends without a multipart path store it as [`Backend::put`] does.
    async fn put_whole(&self, key: &str, data: Bytes) -> Result<()> {
        self.put(key, data, PutMode::Overwrite).await
    }
    /// Reads the whole object.
    async fn get(&self, key: &str) -> Result<Bytes>;
    /// Reads the bytes of `range` of the object.
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes>;
    /// Reads the object's metadata without its content.
    async fn head(&self, key: &str) -> Result<ObjectMeta>;
    /// Removes the object.
    async fn delete(&self, key: &str) -> Result<()>;
    /// Lists the objects whose key starts with `prefix`.
    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta>>;
    /// Copies an object to another key within this backend.
    async fn copy(&self, from: &str, to: &str) -> Result<()>;
    /// Probes the backend and reports whether it can be used.
    async fn health(&self) -> Result<HealthStatus>;
    /// Removes what interrupted writes left behind (temp files, unfinished multipart uploads)
    /// that is older than `older_than`. It MUST NOT remove or change any object.
    async fn sweep(&self, older_than: Duration) -> Result<Swept>;
    /// The longest key this backend takes: [`MAX_KEY_LEN`] less the prefix a store puts in
    /// front of every key, so a caller can refuse a name before uploading anything for it.
    fn max_key_len(&self) -> usize {
        MAX_KEY_LEN
    }
}

/// Leftovers of interrupted writes younger than this are kept by gc even with `--grace 0s`:
/// another process may be writing them right now (a lock file, say).
pub const MIN_LEFTOVER_AGE: Duration = Duration::from_secs(60);

/// What [`Backend::sweep`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Swept {
    /// Leftovers removed.
    pub leftovers: u64,
    /// Their size in bytes.
    pub bytes: u64,
}

/// Convenience helpers built on the [`Backend`] trait.
#[async_trait]
pub trait BackendExt: Backend {
    /// Whether an object exists under `key`.
    async fn exists(&self, key: &str) -> Result<bool> {
        match self.head(key).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Collects every listed object under `prefix`.
    async fn list_all(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        use futures::TryStreamExt;
        self.list(prefix).try_collect().await
    }
}

impl<T: Backend + ?Sized> BackendExt for T {}

/// A shared, type-erased backend (possibly a stack of layers).
pub type DynBackend = Arc<dyn Backend>;

/// Which base backend to build, with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendConfig {
    /// A directory on this machine.
    Local(local::LocalConfig),
    /// Process memory (tests and benchmarks).
    Memory,
    /// Amazon S3 or an S3-compatible store.
    S3(Box<s3::S3Config>),
    /// Azure Blob Storage.
    Azure(Box<azure::AzureConfig>),
    /// Google Cloud Storage.
    Gcs(Box<gcs::GcsConfig>),
}

/// A built backend stack and handles to the layers the caller reads from.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The outermost layer: what the store talks to.
    pub backend: DynBackend,
    /// The metrics layer, for `--json` statistics.
    pub metrics: Arc<layer::MetricsBackend>,
    /// The retry layer, for the retry count.
    pub retry: Arc<layer::RetryBackend>,
    /// Where lock objects go: the same store, retried and counted alike, but written without
    /// fsync on a local directory. A lock matters only while its process lives (one that
    /// survives a crash is stale by its pid), so taking or removing one must never wait on the
    /// disk's writeback: under a heavy writer a directory fsync can take tens of seconds.
    pub locks: DynBackend,
}

/// Builds the backend stack for `config`, in the fixed order `metrics(retry(<base>))`: metrics
/// count what the store asked for, retries stay inside. (The metrics layer displays as its inner
/// backend.) Cache and concurrency-limit layers slot in below retry as they arrive:
/// `metrics(retry(cache(limit(<base>))))`.
pub async fn build(
    config: &BackendConfig,
    retry: &layer::RetryPolicy,
    timeouts: &s3::TimeoutConfig,
    reporter: Arc<dyn crate::report::Reporter>,
) -> Result<Stack> {
    retry.validate()?;
    let retrier = layer::Retrier::new(retry.clone(), reporter);
    let volatile = match config {
        BackendConfig::Local(c) if c.sync => Some(local::LocalBackend::new(&local::LocalConfig {
            sync: false,
            ..c.clone()
        })?),
        _ => None,
    };
    let base: DynBackend = match config {
        BackendConfig::Local(c) => Arc::new(local::LocalBackend::new(c)?),
        BackendConfig::Memory => Arc::new(memory::MemoryBackend::new()),
        BackendConfig::S3(c) => {
            Arc::new(s3::S3Backend::new(c, timeouts, Some(retrier.clone())).await?)
        }
        BackendConfig::Azure(c) => Arc::new(azure::AzureBackend::new(
            c,
            timeouts,
            Some(retrier.clone()),
        )?),
        BackendConfig::Gcs(c) => Arc::new(gcs::GcsBackend::new(c, timeouts).await?),
    };
    let retry = Arc::new(layer::RetryBackend::with(base, retrier.clone()));
    let metrics = Arc::new(layer::MetricsBackend::new(Arc::clone(&retry) as DynBackend));
    let locks = match volatile {
        Some(volatile) => Arc::new(layer::MetricsBackend::sharing(
            Arc::new(layer::RetryBackend::with(Arc::new(volatile), retrier)),
            &metrics,
        )) as DynBackend,
        None => Arc::clone(&metrics) as DynBackend,
    };
    Ok(Stack {
        backend: Arc::clone(&metrics) as DynBackend,
        metrics,
        retry,
        locks,
    })
}

/// Checks that `key` is a valid storage key: non-empty `/`-separated UTF-8 segments, none empty,
/// `.` or `..`, none starting with the temp-file prefix, no control characters, no leading `/`,
/// at most [`MAX_KEY_LEN`] bytes. Keys that pass can never name a path outside a backend's root.
pub fn validate_key(key: &str) -> Result<()> {
    let bad = |reason: &str| Err(Error::invalid_key(key, reason));
    if key.is_empty() {
        return bad("empty");
    }
    if key.len() > MAX_KEY_LEN {
        return bad("longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return bad("starts with '/'");
    }
    if key.chars().any(char::is_control) {
        return bad("contains a control character");
    }
    for segment in key.split('/') {
        match segment {
            "" => return bad("contains an empty path segment"),
            "." | ".." => return bad("contains a '.' or '..' segment"),
            s if s.starts_with(TEMP_PREFIX) => return bad("uses the reserved prefix .ldv-tmp."),
            s if s.len() > MAX_SEGMENT_LEN => {
                return bad("has a path segment longer than 255 bytes");
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks a service endpoint given by `setting` (a profile key or an environment variable):
/// an http or https URL with a host and no whitespace. A malformed one is a configuration error
/// up front, not a request that fails and is retried as a network error.
pub fn check_endpoint(endpoint: &str, setting: &str) -> Result<url::Url> {
    let bad = |why: &str| {
        Err(Error::config(format!(
            "{setting} {endpoint:?} is not {why} (e.g. https://host or http://127.0.0.1:9000)"
        )))
    };
    if endpoint
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return bad("a URL: it contains whitespace");
    }
    let Ok(url) = url::Url::parse(endpoint) else {
        return bad("a URL");
    };
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return bad("an http or https URL with a host");
    }
    Ok(url)
}

/// Checks a listing prefix: every complete segment must be valid; the last may be partial.
pub fn validate_prefix(prefix: &str) -> Result<()> {
    if prefix.starts_with('/') || prefix.chars().any(char::is_control) {
        return Err(Error::invalid_key(
            prefix,
            "a prefix may not start with '/' or hold control characters",
        ));
    }
    match prefix.rsplit_once('/') {
        Some((complete, _)) => validate_key(complete),
        None => Ok(()),
    }
}

/// Clips `range` to an object of `size` bytes.
pub fn clip_range(range: &Range<u64>, size: u64) -> Range<usize> {
    let start = range.start.min(size);
    let end = range.end.clamp(start, size);
    // Both bounds are at most `size`, which came from an in-memory or on-disk object length.
    usize::try_from(start).unwrap_or(usize::MAX)..usize::try_from(end).unwrap_or(usize::MAX)
}

/// Measures how long `f` took, for health checks.
pub async fn timed<T, F: Future<Output = T>>(f: F) -> (T, Duration) {
    let start = std::time::Instant::now();
    let out = f.await;
    (out, start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_could_escape_or_confuse_are_rejected() {
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/",
            "../x",
            "a/../b",
            "./a",
            "a\nb",
            "a\u{7f}",
            "chunks/.ldv-tmp.x",
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?} was accepted");
        }
        let long = "a".repeat(MAX_KEY_LEN + 1);
        assert!(validate_key(&long).is_err());
        for good in [
            "a",
            "a/b",
            "datasets/2024/train.parquet",
            "üñí/ç",
            "a.b/..c",
        ] {
            assert!(validate_key(good).is_ok(), "{good:?} was rejected");
        }
    }

    #[test]
    fn ranges_are_clipped() {
        assert_eq!(clip_range(&(2..5), 10), 2..5);
        assert_eq!(clip_range(&(8..50), 10), 8..10);
        assert_eq!(clip_range(&(20..50), 10), 10..10);
    }
}
