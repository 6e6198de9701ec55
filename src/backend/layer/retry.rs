//! The retry layer (the seed's `RetryPolicy`): a call that fails with a transient error (network,
//! timeout, throttling, or a kind the policy lists) is repeated after an exponential backoff with
//! jitter, honouring a server's Retry-After, up to `max_retries` times. Every retry is reported
//! and counted. Permanent errors (not found, denied, conflict, corruption) pass straight through.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Deserialize;

use crate::backend::{Backend, DynBackend, HealthStatus, ObjectMeta, PutMode};
use crate::error::{Error, ErrorKind, Result};
use crate::report::Reporter;

/// When and how often to retry (the seed's `RetryPolicy`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Pause before the first retry.
    #[serde(with = "crate::config::duration")]
    pub initial_backoff: Duration,
    /// Longest pause between attempts.
    #[serde(with = "crate::config::duration")]
    pub max_backoff: Duration,
    /// Growth of the pause after each retry.
    pub multiplier: f64,
    /// Randomize each pause between half and all of it, so clients do not retry in lockstep.
    pub jitter: bool,
    /// Error kinds retried besides those marked transient (network errors and timeouts are).
    pub retryable: Vec<ErrorKind>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: true,
            retryable: vec![ErrorKind::NetworkError, ErrorKind::Timeout],
        }
    }
}

impl RetryPolicy {
    /// Checks the numbers make sense.
    pub fn validate(&self) -> Result<()> {
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            return Err(Error::config(format!(
                "retry.multiplier {} must be a number of at least 1",
                self.multiplier
            )));
        }
        if self.initial_backoff > self.max_backoff {
            return Err(Error::config(
                "retry.initial_backoff must not exceed retry.max_backoff",
            ));
        }
        Ok(())
    }

    fn retries(&self, e: &Error) -> bool {
        e.is_retryable() || self.retryable.contains(&e.kind())
    }

    /// The pause before retry number `attempt` (1-based), before jitter.
    fn backoff(&self, attempt: u32) -> Duration {
        let factor = self.multiplier.powi(attempt.saturating_sub(1) as i32);
        self.initial_backoff
            .mul_f64(factor.min(1e9))
            .min(self.max_backoff)
    }
}

/// Runs calls with the retry policy, reporting and counting every retry. Shared by the retry
/// layer and by backends that retry the parts of one call themselves (S3 multipart parts).
#[derive(Clone)]
pub struct Retrier {
    policy: RetryPolicy,
    reporter: Arc<dyn Reporter>,
    retries: Arc<AtomicU64>,
}

impl fmt::Debug for Retrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retrier")
            .field("policy", &self.policy)
            .finish()
    }
}

impl Retrier {
    /// A retrier with its own retry counter.
    pub fn new(policy: RetryPolicy, reporter: Arc<dyn Reporter>) -> Self {
        Self {
            policy,
            reporter,
            retries: Arc::default(),
        }
    }

    /// Retries made so far.
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    fn retryable(&self, e: &Error) -> bool {
        self.policy.retries(e)
    }

    async fn pause(&self, what: &str, attempt: u32, e: &Error) {
        let mut pause = e
            .retry_after()
            .unwrap_or_else(|| self.policy.backoff(attempt))
            .min(self.policy.max_backoff);
        if self.policy.jitter && e.retry_after().is_none() {
            pause = pause.mul_f64(0.5 + rand::random::<f64>() / 2.0);
        }
        self.retries.fetch_add(1, Ordering::Relaxed);
        self.reporter.on_retry(what, attempt, e);
        tracing::debug!("retry {attempt} of {what} in {pause:?}: {e}");
        tokio::time::sleep(pause).await;
    }

    /// Calls `call` until it succeeds, fails permanently, or the retries run out.
    pub async fn run<T, F, Fut>(&self, what: &str, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) if self.retryable(&e) => {
                    if attempt >= self.policy.max_retries {
                        return Err(if attempt == 0 {
                            e
                        } else {
                            e.context(format!("{what}: gave up after {} attempts", attempt + 1))
                        });
                    }
                    attempt += 1;
                    self.pause(what, attempt, &e).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// A layer that retries transient failures of its inner backend.
#[derive(Debug)]
pub struct RetryBackend {
    inner: DynBackend,
    retrier: Retrier,
}

impl RetryBackend {
    /// Wraps `inner`, reporting every retry to `reporter`.
    pub fn new(inner: DynBackend, policy: RetryPolicy, reporter: Arc<dyn Reporter>) -> Self {
        Self::with(inner, Retrier::new(policy, reporter))
    }

    /// Wraps `inner` with a retrier that may be shared with the backend below.
    pub fn with(inner: DynBackend, retrier: Retrier) -> Self {
        Self { inner, retrier }
    }

    /// Retries made so far (including those of a backend sharing the retrier).
    pub fn retries(&self) -> u64 {
        self.retrier.retries()
    }

    async fn pause(&self, what: &str, attempt: u32, e: &Error) {
        self.retrier.pause(what, attempt, e).await
    }

    async fn run<T, F, Fut>(&self, what: &str, call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.retrier.run(what, call).await
    }
}

/// Retrying does not change where data lives, so the layer shows as the backend it wraps:
/// messages name the vault location a user typed.
impl fmt::Display for RetryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

#[async_trait]
impl Backend for RetryBackend {
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<()> {
        let what = format!("put {key}");
        let mut failed_before = false;
        self.run(&what, || {
            let data = data.clone();
            let first = !failed_before;
            failed_before = true;
            async move {
                match self.inner.put(key, data.clone(), mode).await {
                    // A create-only put that timed out may have landed: if what is there now
                    // is exactly what we wrote, the earlier attempt succeeded.
                    Err(e) if e.kind() == ErrorKind::Conflict && !first => {
                        match self.inner.get(key).await {
                            Ok(existing) if existing == data => Ok(()),
                            _ => Err(e),
                        }
                    }
                    other => other,
                }
            }
        })
        .await
    }

    async fn put_whole(&self, key: &str, data: Bytes) -> Result<()> {
        self.run(&format!("put {key}"), || {
            self.inner.put_whole(key, data.clone())
        })
        .await
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        self.run(&format!("get {key}"), || self.inner.get(key))
            .await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        self.run(&format!("get {key}"), || {
            self.inner.get_range(key, range.clone())
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        self.run(&format!("head {key}"), || self.inner.head(key))
            .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.run(&format!("delete {key}"), || self.inner.delete(key))
            .await
    }

    /// A listing is retried only while it has yielded nothing: restarting a half-read listing
    /// could yield an object twice.
    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta>> {
        let prefix = prefix.to_owned();
        futures::stream::once(async move {
            let what = format!("list {prefix}");
            let mut attempt = 0;
            loop {
                let mut stream = self.inner.list(&prefix);
                match stream.next().await {
                    Some(Err(e))
                        if self.retrier.retryable(&e)
                            && attempt < self.retrier.policy.max_retries =>
                    {
                        attempt += 1;
                        self.pause(&what, attempt, &e).await;
                    }
                    // An ended stream must not be polled again.
                    None => return futures::stream::empty().boxed(),
                    Some(first) => {
                        return futures::stream::once(futures::future::ready(first))
                            .chain(stream)
                            .boxed();
                    }
                }
            }
        })
        .flatten()
        .boxed()
    }

    async fn copy(&self, from: &str, to: &str) -> Result<()> {
        self.run(&format!("copy {from} to {to}"), || {
            self.inner.copy(from, to)
        })
        .await
    }

    fn max_key_len(&self) -> usize {
        self.inner.max_key_len()
    }

    async fn sweep(&self, older_than: std::time::Duration) -> Result<crate::backend::Swept> {
        self.run("sweep", || self.inner.sweep(older_than)).await
    }

    async fn health(&self) -> Result<HealthStatus> {
        self.inner.health().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::layer::{Fault, FaultRule, FaultyBackend, Op};
    use crate::backend::memory::MemoryBackend;
    use crate::report::NoReporter;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(5),
            ..RetryPolicy::default()
        }
    }

    #[tokio::test]
    async fn transient_failures_are_retried_and_permanent_ones_are_not() {
        let faulty = Arc::new(FaultyBackend::new(Arc::new(MemoryBackend::new())));
        let retry = RetryBackend::new(faulty.clone(), fast(), Arc::new(NoReporter));
        faulty.add(FaultRule::new(Op::Put, Fault::Transient).times(2));
        retry
            .put("a", Bytes::from_static(b"x"), PutMode::Overwrite)
            .await
            .unwrap();
        assert_eq!(retry.retries(), 2);
        faulty.add(FaultRule::new(Op::Get, Fault::Permanent(ErrorKind::PermissionDenied)).times(1));
        let e = retry.get("a").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert_eq!(retry.retries(), 2);
        faulty.add(FaultRule::new(Op::Get, Fault::Transient));
        let e = retry.get("a").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NetworkError);
        assert!(e.message().contains("gave up after 4 attempts"), "{e}");
    }

    #[tokio::test]
    async fn a_listing_that_fails_before_its_first_item_is_retried() {
        let faulty = Arc::new(FaultyBackend::new(Arc::new(MemoryBackend::new())));
        faulty
            .put("k/1", Bytes::from_static(b"x"), PutMode::Overwrite)
            .await
            .unwrap();
        let retry = RetryBackend::new(faulty.clone(), fast(), Arc::new(NoReporter));
        faulty.add(FaultRule::new(Op::List, Fault::Transient).times(1));
        let items: Vec<_> = retry.list("k/").collect().await;
        assert_eq!(items.len(), 1);
        assert!(items[0].is_ok());
        assert_eq!(retry.retries(), 1);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(3), Duration::from_millis(400));
        assert_eq!(p.backoff(40), Duration::from_secs(30));
    }
}
