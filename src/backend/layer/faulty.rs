//! The fault-injecting layer: scripted failures for tests of retries, verification and recovery
//! without a network. Rules say which operation and keys to hit, how many calls to let through
//! first, how many to spoil, and how (a transient or permanent error, flipped bits, a short body).
//! With no rules it is a transparent pass-through.

use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::backend::{Backend, DynBackend, HealthStatus, ObjectMeta, PutMode};
use crate::error::{Error, ErrorKind, Result};

/// The backend operation a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `put`.
    Put,
    /// `get` and `get_range`.
    Get,
    /// `head`.
    Head,
    /// `delete`.
    Delete,
    /// `list`.
    List,
    /// `copy`.
    Copy,
    /// Every operation.
    Any,
}

/// How a matching call is spoiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The call fails with a retryable network error and has no effect.
    Transient,
    /// The call fails with a permanent error of this kind and has no effect.
    Permanent(ErrorKind),
    /// A read returns its bytes with one bit flipped at this byte offset (modulo the length).
    FlipBit(usize),
    /// A read returns only the first half of its bytes.
    ShortBody,
    /// A put stores the data with one bit flipped at this byte offset, and reports success.
    CorruptWrite(usize),
}

/// One scripted fault: which calls it hits and how.
#[derive(Debug, Clone)]
pub struct FaultRule {
    op: Op,
    key_contains: Option<String>,
    skip: u64,
    times: Option<u64>,
    every: u64,
    seen: u64,
    fault: Fault,
}

impl FaultRule {
    /// A rule spoiling every `op` call with `fault`.
    pub fn new(op: Op, fault: Fault) -> Self {
        Self {
            op,
            key_contains: None,
            skip: 0,
            times: None,
            every: 1,
            seen: 0,
            fault,
        }
    }

    /// Spoils only every `n`-th matching call (after the skipped ones).
    pub fn every(mut self, n: u64) -> Self {
        self.every = n.max(1);
        self
    }

    /// Only calls whose key contains `fragment`.
    pub fn on_keys(mut self, fragment: impl Into<String>) -> Self {
        self.key_contains = Some(fragment.into());
        self
    }

    /// Lets the first `n` matching calls through untouched.
    pub fn skip(mut self, n: u64) -> Self {
        self.skip = n;
        self
    }

    /// Spoils at most `n` matching calls, then stops.
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    fn matches(&self, op: Op, key: &str) -> bool {
        (self.op == Op::Any || self.op == op)
            && self.key_contains.as_deref().is_none_or(|f| key.contains(f))
    }
}

/// A layer that spoils calls according to its rules.
#[derive(Debug)]
pub struct FaultyBackend {
    inner: DynBackend,
    rules: Mutex<Vec<FaultRule>>,
    injected: AtomicU64,
}

impl FaultyBackend {
    /// Wraps `inner` with no rules.
    pub fn new(inner: DynBackend) -> Self {
        Self {
            inner,
            rules: Mutex::new(Vec::new()),
            injected: AtomicU64::new(0),
        }
    }

    /// Adds a rule; rules are tried in the order added and the first that fires wins.
    pub fn add(&self, rule: FaultRule) -> &Self {
        self.rules().push(rule);
        self
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules().clear();
    }

    /// How many calls have been spoiled so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(Ordering::Relaxed)
    }

    fn rules(&self) -> MutexGuard<'_, Vec<FaultRule>> {
        // Each critical section is one push, clear or counter update: a poisoned lock still
        // guards a consistent list.
        self.rules.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Finds the fault to apply to this call, consuming the rule's budget.
    fn fire(&self, op: Op, key: &str) -> Option<Fault> {
        let mut rules = self.rules();
        for rule in rules.iter_mut() {
            if !rule.matches(op, key) || rule.times == Some(0) {
                continue;
            }
            if rule.skip > 0 {
                rule.skip -= 1;
                continue;
            }
            rule.seen += 1;
            if rule.seen % rule.every != 0 {
                continue;
            }
            if let Some(t) = rule.times.as_mut() {
                *t -= 1;
            }
            self.injected.fetch_add(1, Ordering::Relaxed);
            return Some(rule.fault.clone());
        }
        None
    }

    fn fail(fault: &Fault, op: Op, key: &str) -> Option<Error> {
        match fault {
            Fault::Transient => Some(Error::new(
                ErrorKind::NetworkError,
                format!("{op:?} {key}: injected transient fault"),
            )),
            Fault::Permanent(kind) => Some(Error::new(
                *kind,
                format!("{op:?} {key}: injected permanent fault"),
            )),
            _ => None,
        }
    }

    fn spoil_read(fault: &Fault, data: Bytes) -> Bytes {
        match fault {
            Fault::FlipBit(at) if !data.is_empty() => flip(data, *at),
            Fault::ShortBody => data.slice(..data.len() / 2),
            _ => data,
        }
    }

    async fn read(&self, key: &str, read: impl Future<Output = Result<Bytes>>) -> Result<Bytes> {
        match self.fire(Op::Get, key) {
            None => read.await,
            Some(fault) => match Self::fail(&fault, Op::Get, key) {
                Some(e) => Err(e),
                None => read.await.map(|d| Self::spoil_read(&fault, d)),
            },
        }
    }

    async fn simple<T>(
        &self,
        op: Op,
        key: &str,
        call: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match self.fire(op, key).and_then(|f| Self::fail(&f, op, key)) {
            Some(e) => Err(e),
            None => call.await,
        }
    }
}

fn flip(data: Bytes, at: usize) -> Bytes {
    let mut buf = BytesMut::from(&data[..]);
    let i = at % buf.len();
    buf[i] ^= 0x01;
    buf.freeze()
}

impl fmt::Display for FaultyBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "faulty({})", self.inner)
    }
}

impl FaultyBackend {
    /// A put (`mode`), or a whole put (`None`), with this layer's faults.
    async fn put_faulty(&self, key: &str, data: Bytes, mode: Option<PutMode>) -> Result<()> {
        let forward = |data: Bytes| async move {
            match mode {
                Some(mode) => self.inner.put(key, data, mode).await,
                None => self.inner.put_whole(key, data).await,
            }
        };
        match self.fire(Op::Put, key) {
            None => forward(data).await,
            Some(Fault::CorruptWrite(at)) if !data.is_empty() => forward(flip(data, at)).await,
            Some(fault) => match Self::fail(&fault, Op::Put, key) {
                Some(e) => Err(e),
                None => forward(data).await,
            },
        }
    }
}

#[async_trait]
impl Backend for FaultyBackend {
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<()> {
        self.put_faulty(key, data, Some(mode)).await
    }

    async fn put_whole(&self, key: &str, data: Bytes) -> Result<()> {
        self.put_faulty(key, data, None).await
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        self.read(key, self.inner.get(key)).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        self.read(key, self.inner.get_range(key, range)).await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        self.simple(Op::Head, key, self.inner.head(key)).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.simple(Op::Delete, key, self.inner.delete(key)).await
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta>> {
        match self
            .fire(Op::List, prefix)
            .and_then(|f| Self::fail(&f, Op::List, prefix))
        {
            Some(e) => futures::stream::once(async { Err(e) }).boxed(),
            None => self.inner.list(prefix),
        }
    }

    async fn copy(&self, from: &str, to: &str) -> Result<()> {
        self.simple(Op::Copy, to, self.inner.copy(from, to)).await
    }

    fn max_key_len(&self) -> usize {
        self.inner.max_key_len()
    }

    async fn sweep(&self, older_than: std::time::Duration) -> Result<crate::backend::Swept> {
        self.inner.sweep(older_than).await
    }

    async fn health(&self) -> Result<HealthStatus> {
        self.inner.health().await
    }
}
