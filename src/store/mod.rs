//! The chunk store: a vault of content-addressed chunks and per-version manifests on top of any
//! backend (format 1, DESIGN §3). It owns the write order (chunks durable before the manifest that
//! commits them), deduplication (a chunk that exists is never uploaded again) and verification of
//! every chunk read. It never prints and knows nothing of files or terminals.

pub mod chunker;
pub mod codec;
pub mod layout;
pub mod locks;
pub mod manifest;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::backend::{BackendExt, DynBackend, PutMode};
use crate::error::{Error, ErrorKind, Result};
use chunker::ChunkerConfig;
use layout::{ChunkId, DESCRIPTOR_KEY, ObjectRef};
use manifest::Manifest;

/// The vault format written and read by this build.
pub const VAULT_FORMAT: u32 = 1;

/// The vault descriptor stored at `ldv-vault.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    /// Vault format (1).
    pub format: u32,
    /// Random id of this vault.
    pub vault_id: String,
    /// Hash of chunk ids and content digests (`sha256`).
    pub hash: String,
    /// The chunker used when a profile does not choose one.
    pub chunker: ChunkerConfig,
    /// Encryption header; `None` for a plain vault.
    #[serde(default)]
    pub encryption: Option<serde_json::Value>,
    /// When the vault was created.
    #[serde(with = "crate::time::serde_time")]
    pub created_at: SystemTime,
}

/// Counters of the chunk store (the seed's content-store and chunk-manager metrics).
#[derive(Debug, Default)]
struct Counters {
    chunks_uploaded: AtomicU64,
    chunks_deduplicated: AtomicU64,
    deduplicated_bytes: AtomicU64,
    chunks_downloaded: AtomicU64,
    integrity_checks_passed: AtomicU64,
    integrity_checks_failed: AtomicU64,
}

/// A snapshot of the chunk store's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    /// Chunks written to the backend.
    pub chunks_uploaded: u64,
    /// Chunks skipped because the vault already held them.
    pub chunks_deduplicated: u64,
    /// Plaintext bytes of skipped chunks.
    pub deduplicated_bytes: u64,
    /// Chunks read back from the backend.
    pub chunks_downloaded: u64,
    /// Chunks whose content matched their id.
    pub integrity_checks_passed: u64,
    /// Chunks whose content did not match their id (verification failures).
    pub integrity_checks_failed: u64,
}

/// Whether storing a chunk wrote it or found it already present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkWrite {
    /// The chunk was uploaded; the value is the stored (framed) size.
    Uploaded(u64),
    /// The vault already held the chunk.
    Existed,
}

/// An open vault: a backend holding a valid descriptor.
#[derive(Debug)]
pub struct Vault {
    backend: DynBackend,
    descriptor: Descriptor,
    counters: Counters,
    /// Chunks stored or found during this session; concurrent writers of the same chunk share one
    /// upload, and a failed upload leaves the cell empty so the next writer tries again.
    known: Mutex<HashMap<ChunkId, Arc<OnceCell<()>>>>,
    /// The lock this process holds on the vault, checked before every commit and removal.
    held: Mutex<Option<Arc<locks::LockState>>>,
}

impl Vault {
    /// Opens the vault on `backend`, or fails with `NotFound` when it holds none.
    pub async fn open(backend: DynBackend) -> Result<Self> {
        let raw = backend.get(DESCRIPTOR_KEY).await.map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                Error::new(
                    ErrorKind::NotFound,
                    format!("no vault at {backend} (run `ldv init` to create one)"),
                )
            } else {
                e
            }
        })?;
        let descriptor = parse_descriptor(&raw, &backend.to_string())?;
        Ok(Self::with(backend, descriptor))
    }

    /// Creates a vault on `backend` with `chunker` as its default, or opens the one already
    /// there; the flag says whether it was created.
    pub async fn init(backend: DynBackend, chunker: ChunkerConfig) -> Result<(Self, bool)> {
        chunker.validate()?;
        let descriptor = Descriptor {
            format: VAULT_FORMAT,
            vault_id: hex::encode(rand::random::<[u8; 16]>()),
            hash: "sha256".into(),
            chunker,
            encryption: None,
            created_at: crate::time::now_millis(),
        };
        let bytes = serde_json::to_vec_pretty(&descriptor)
            .expect("a descriptor always serializes: it holds only strings and numbers");
        match backend
            .put(DESCRIPTOR_KEY, Bytes::from(bytes), PutMode::CreateOnly)
            .await
        {
            Ok(()) => Ok((Self::with(backend, descriptor), true)),
            Err(e) if e.kind() == ErrorKind::Conflict => Ok((Self::open(backend).await?, false)),
            Err(e) => Err(e),
        }
    }

    fn with(backend: DynBackend, descriptor: Descriptor) -> Self {
        Self {
            backend,
            descriptor,
            counters: Counters::default(),
            known: Mutex::new(HashMap::new()),
            held: Mutex::new(None),
        }
    }

    /// The backend stack under this vault.
    pub fn backend(&self) -> &DynBackend {
        &self.backend
    }

    /// The vault descriptor.
    pub fn descriptor(&self) -> &Descriptor {
        &self.descriptor
    }

    /// The store counters so far.
    pub fn stats(&self) -> StoreStats {
        let c = &self.counters;
        StoreStats {
            chunks_uploaded: c.chunks_uploaded.load(Ordering::Relaxed),
            chunks_deduplicated: c.chunks_deduplicated.load(Ordering::Relaxed),
            deduplicated_bytes: c.deduplicated_bytes.load(Ordering::Relaxed),
            chunks_downloaded: c.chunks_downloaded.load(Ordering::Relaxed),
            integrity_checks_passed: c.integrity_checks_passed.load(Ordering::Relaxed),
            integrity_checks_failed: c.integrity_checks_failed.load(Ordering::Relaxed),
        }
    }

    /// Stores the chunk `id` unless the vault already has it.
    pub async fn put_chunk(&self, id: ChunkId, chunk: &codec::PlainChunk) -> Result<ChunkWrite> {
        let cell = {
            let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(known.entry(id).or_default())
        };
        let mut uploaded = None;
        cell.get_or_try_init(|| async {
            let key = id.key();
            if !self.backend.exists(&key).await? {
                let frame = chunk.frame();
                let stored = frame.len() as u64;
                self.backend.put(&key, frame, PutMode::Overwrite).await?;
                tracing::debug!("stored chunk {id} ({stored} bytes)");
                uploaded = Some(stored);
            }
            Ok::<(), Error>(())
        })
        .await?;
        let c = &self.counters;
        Ok(match uploaded {
            Some(stored) => {
                c.chunks_uploaded.fetch_add(1, Ordering::Relaxed);
                ChunkWrite::Uploaded(stored)
            }
            None => {
                c.chunks_deduplicated.fetch_add(1, Ordering::Relaxed);
                c.deduplicated_bytes
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                ChunkWrite::Existed
            }
        })
    }

    /// Reads chunk `id`, checks its frame, length and hash, and returns its plaintext.
    pub async fn get_chunk(&self, id: ChunkId, size: u64) -> Result<Bytes> {
        let frame = self.backend.get(&id.key()).await.map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                Error::integrity(format!("chunk {id}"), "missing from the vault")
            } else {
                e
            }
        })?;
        self.counters
            .chunks_downloaded
            .fetch_add(1, Ordering::Relaxed);
        let checked = tokio::task::spawn_blocking(move || -> Result<Bytes> {
            let what = format!("chunk {id}");
            let plain = codec::decode(frame, &what)?;
            if plain.len() as u64 != size {
                return Err(Error::integrity(
                    &what,
                    format!("{} bytes where the manifest says {size}", plain.len()),
                ));
            }
            if ChunkId::of(&plain) != id {
                return Err(Error::integrity(&what, "content does not match its id"));
            }
            Ok(plain)
        })
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::BackendError,
                format!("chunk check task failed: {e}"),
            )
        })?;
        let counter = match &checked {
            Ok(_) => &self.counters.integrity_checks_passed,
            Err(_) => &self.counters.integrity_checks_failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        checked
    }

    /// Takes a vault lock for `command` (waiting up to `wait` for conflicting holders); from then
    /// on every commit and removal first checks that the lock is still held.
    pub async fn lock(
        &self,
        kind: locks::LockKind,
        command: &str,
        wait: std::time::Duration,
    ) -> Result<locks::LockGuard> {
        let guard = locks::acquire(&self.backend, kind, command, wait).await?;
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(guard.state());
        Ok(guard)
    }

    /// Fails if this process took a lock and can no longer trust it.
    pub fn check_lock(&self) -> Result<()> {
        match self.held.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(state) => state.check(),
            None => Ok(()),
        }
    }

    /// Commits a version: writes its manifest create-only. Every chunk must already be stored.
    pub async fn commit(&self, manifest: &Manifest) -> Result<()> {
        self.check_lock()?;
        let key = layout::manifest_key(&manifest.name, &manifest.version);
        self.backend
            .put(&key, Bytes::from(manifest.to_bytes()), PutMode::CreateOnly)
            .await
    }

    /// Reads the manifest of `name@version`.
    pub async fn manifest(&self, name: &str, version: &str) -> Result<Manifest> {
        let raw = self
            .backend
            .get(&layout::manifest_key(name, version))
            .await
            .map_err(|e| {
                if e.kind() == ErrorKind::NotFound {
                    Error::not_found(format!("{name}@{version}"))
                } else {
                    e
                }
            })?;
        Manifest::from_bytes(&raw, name, version)
    }

    /// The versions of `name`, oldest first (empty when the name has none).
    pub async fn versions(&self, name: &str) -> Result<Vec<String>> {
        let prefix = layout::manifest_prefix(name);
        let mut versions: Vec<String> = self
            .backend
            .list(&prefix)
            .try_filter_map(|meta| {
                let version = layout::parse_manifest_key(&meta.key)
                    .filter(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_owned());
                futures::future::ready(Ok(version))
            })
            .try_collect()
            .await?;
        versions.sort();
        Ok(versions)
    }

    /// Resolves `NAME` to its newest version, or checks that `NAME@VERSION` exists, and reads it.
    pub async fn resolve(&self, r: &ObjectRef) -> Result<Manifest> {
        match &r.version {
            Some(v) => self.manifest(&r.name, v).await,
            None => {
                let versions = self.versions(&r.name).await?;
                let newest = versions.last().ok_or_else(|| Error::not_found(&r.name))?;
                self.manifest(&r.name, newest).await
            }
        }
    }

    /// Every `(name, version)` whose name starts with `prefix`, sorted by name then version.
    pub async fn list_versions(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let key_prefix = format!("{}{prefix}", layout::MANIFESTS_PREFIX);
        let mut all: Vec<(String, String)> = self
            .backend
            .list(&key_prefix)
            .try_filter_map(|meta| {
                let parsed = layout::parse_manifest_key(&meta.key)
                    .map(|(n, v)| (n.to_owned(), v.to_owned()));
                futures::future::ready(Ok(parsed))
            })
            .try_collect()
            .await?;
        all.sort();
        Ok(all)
    }

    /// Reads the manifests of `versions`, `parallel` at a time, in the given order; each result
    /// stands alone so one unreadable manifest does not hide the others.
    pub async fn read_manifests(
        &self,
        versions: &[(String, String)],
        parallel: usize,
    ) -> Vec<Result<Manifest>> {
        use futures::StreamExt;
        futures::stream::iter(versions)
            .map(|(name, version)| self.manifest(name, version))
            .buffered(parallel.max(1))
            .collect()
            .await
    }

    /// Every chunk in the vault with its stored size and modification time.
    pub async fn list_chunks(&self) -> Result<Vec<(ChunkId, crate::backend::ObjectMeta)>> {
        self.backend
            .list(layout::CHUNKS_PREFIX)
            .try_filter_map(|meta| {
                futures::future::ready(Ok(ChunkId::from_key(&meta.key).map(|id| (id, meta))))
            })
            .try_collect()
            .await
    }

    /// Removes the manifest of `name@version`; its chunks stay until garbage collection.
    pub async fn remove_version(&self, name: &str, version: &str) -> Result<()> {
        self.check_lock()?;
        self.backend
            .delete(&layout::manifest_key(name, version))
            .await
            .map_err(|e| {
                if e.kind() == ErrorKind::NotFound {
                    Error::not_found(format!("{name}@{version}"))
                } else {
                    e
                }
            })
    }
}

fn parse_descriptor(raw: &[u8], location: &str) -> Result<Descriptor> {
    #[derive(Deserialize)]
    struct Probe {
        format: u32,
    }
    let unreadable = |e: serde_json::Error| {
        Error::new(
            ErrorKind::SerializationError,
            format!("vault descriptor {location}/{DESCRIPTOR_KEY} is unreadable: {e}"),
        )
    };
    let probe: Probe = serde_json::from_slice(raw).map_err(unreadable)?;
    if probe.format != VAULT_FORMAT {
        return Err(Error::config(format!(
            "vault at {location} has format {}, which this ldv does not read (it reads format {VAULT_FORMAT})",
            probe.format
        )));
    }
    let d: Descriptor = serde_json::from_slice(raw).map_err(unreadable)?;
    if d.hash != "sha256" {
        return Err(Error::config(format!(
            "vault at {location} uses hash {:?}, which this ldv does not support",
            d.hash
        )));
    }
    if d.encryption.is_some() {
        return Err(Error::config(format!(
            "vault at {location} is encrypted; encryption is not supported yet by this ldv"
        )));
    }
    d.chunker.validate()?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;

    #[tokio::test]
    async fn init_is_idempotent_and_open_needs_a_vault() {
        let backend: DynBackend = Arc::new(MemoryBackend::new());
        let err = Vault::open(Arc::clone(&backend)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let (v1, created) = Vault::init(Arc::clone(&backend), ChunkerConfig::default())
            .await
            .unwrap();
        assert!(created);
        let (v2, created) = Vault::init(Arc::clone(&backend), ChunkerConfig::fixed_default())
            .await
            .unwrap();
        assert!(!created);
        assert_eq!(v1.descriptor(), v2.descriptor());
    }

    #[tokio::test]
    async fn chunks_are_stored_once_and_verified_on_read() {
        let backend: DynBackend = Arc::new(MemoryBackend::new());
        let (vault, _) = Vault::init(Arc::clone(&backend), ChunkerConfig::default())
            .await
            .unwrap();
        let data = Bytes::from_static(b"some chunk");
        let id = ChunkId::of(&data);
        let chunk = codec::PlainChunk::copy_from(&data);
        assert!(matches!(
            vault.put_chunk(id, &chunk).await.unwrap(),
            ChunkWrite::Uploaded(_)
        ));
        assert_eq!(
            vault.put_chunk(id, &chunk).await.unwrap(),
            ChunkWrite::Existed
        );
        assert_eq!(vault.get_chunk(id, data.len() as u64).await.unwrap(), data);
        let mut damaged = backend.get(&id.key()).await.unwrap().to_vec();
        *damaged.last_mut().unwrap() ^= 1;
        backend
            .put(&id.key(), Bytes::from(damaged), PutMode::Overwrite)
            .await
            .unwrap();
        let err = vault.get_chunk(id, data.len() as u64).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IntegrityCheckFailed);
        assert_eq!(vault.stats().integrity_checks_failed, 1);
    }
}
