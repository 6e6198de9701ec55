//! The in-memory backend: a sorted map behind a lock. It is first-class, not a test hack: the
//! conformance suite runs on it, fault-injection layers wrap it, and it anchors unit tests of the
//! chunk store. Nothing is persisted.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;

use super::{
    Backend, HealthStatus, ObjectMeta, PutMode, clip_range, validate_key, validate_prefix,
};
use crate::error::{Error, ErrorKind, Result};

/// A backend that keeps every object in memory.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    objects: Mutex<BTreeMap<String, (Bytes, SystemTime)>>,
}

impl MemoryBackend {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> MutexGuard<'_, BTreeMap<String, (Bytes, SystemTime)>> {
        // A panic while holding the lock cannot leave the map half-updated: every critical
        // section is a single map operation, so the poisoned state is still consistent.
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn object(&self, key: &str) -> Result<(Bytes, SystemTime)> {
        validate_key(key)?;
        self.map()
            .get(key)
            .cloned()
            .ok_or_else(|| Error::not_found(key))
    }
}

impl fmt::Display for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("memory://")
    }
}

#[async_trait]
impl Backend for MemoryBackend {
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<()> {
        validate_key(key)?;
        let mut map = self.map();
        if mode == PutMode::CreateOnly && map.contains_key(key) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("{key}: already exists"),
            ));
        }
        map.insert(key.to_owned(), (data, SystemTime::now()));
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        Ok(self.object(key)?.0)
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let data = self.object(key)?.0;
        Ok(data.slice(clip_range(&range, data.len() as u64)))
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        let (data, modified) = self.object(key)?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size: data.len() as u64,
            modified: Some(modified),
        })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        validate_key(key)?;
        self.map()
            .remove(key)
            .map(|_| ())
            .ok_or_else(|| Error::not_found(key))
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta>> {
        if let Err(e) = validate_prefix(prefix) {
            return futures::stream::once(async { Err(e) }).boxed();
        }
        let items: Vec<Result<ObjectMeta>> = self
            .map()
            .range(prefix.to_owned()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (data, modified))| {
                Ok(ObjectMeta {
                    key: k.clone(),
                    size: data.len() as u64,
                    modified: Some(*modified),
                })
            })
            .collect();
        futures::stream::iter(items).boxed()
    }

    async fn copy(&self, from: &str, to: &str) -> Result<()> {
        validate_key(to)?;
        let (data, _) = self.object(from)?;
        self.put(to, data, PutMode::Overwrite).await
    }

    async fn sweep(&self, _older_than: std::time::Duration) -> Result<crate::backend::Swept> {
        // Memory puts are a single map insert: an interrupted one leaves nothing behind.
        Ok(crate::backend::Swept::default())
    }

    async fn health(&self) -> Result<HealthStatus> {
        Ok(HealthStatus {
            healthy: true,
            latency_ms: 0,
            last_error: None,
            details: vec![("objects".into(), self.map().len().to_string())],
        })
    }
}
