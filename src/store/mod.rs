//! The chunk store: a vault of content-addressed chunks and per-version manifests on top of any
//! backend (format 1, DESIGN §3). It owns the write order (chunks durable before the manifest that
//! commits them), deduplication (a chunk that exists is never uploaded again) and verification of
//! every chunk read. It never prints and knows nothing of files or terminals.

pub mod chunker;
pub mod codec;
pub mod collect;
pub mod crypto;
pub mod index;
pub mod keys;
pub mod layout;
pub mod locks;
pub mod manifest;
pub mod pack;
pub mod tree;
pub mod writer;

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
use codec::{Codec, CompressionConfig};
use crypto::{Cipher, EncryptionHeader, KeyBytes, KeySlot, VaultKeys};
use futures::StreamExt;
use keys::KeyProvider;
use layout::{ChunkId, DESCRIPTOR_KEY, ObjectRef};
use manifest::{ChunkRef, ChunkSink, Manifest, ManifestHead};

/// Chunks up to this size are hashed, compressed or sealed on the calling task: handing tens of
/// microseconds of work to the blocking pool costs more in thread wake-ups than it saves (seen
/// with thousands of small files); larger ones go to the blocking pool.
pub const INLINE_WORK_LIMIT: usize = 64 * 1024;

/// Runs the CPU work `f` over `len` bytes inline when small, else on the blocking pool.
pub async fn cpu_work<T: Send + 'static>(
    len: usize,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    if len <= INLINE_WORK_LIMIT {
        return Ok(f());
    }
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        Error::new(
            ErrorKind::BackendError,
            format!("internal task failed: {e}"),
        )
    })
}

/// Chunk `id` framed (compressed and sealed) for a pack: the CPU work of storing a new chunk.
fn new_frame(codec: &Codec, id: ChunkId, chunk: &codec::PlainChunk) -> PreparedChunk {
    PreparedChunk::Frame {
        id,
        frame: codec.encode_chunk(id, chunk),
        plain: chunk.len() as u64,
    }
}

/// The id of `chunk` under `codec`, hashed on the blocking pool when the chunk is large.
pub async fn identify(codec: &Codec, chunk: &codec::PlainChunk) -> Result<ChunkId> {
    let (codec, data) = (codec.clone(), chunk.data());
    cpu_work(data.len(), move || codec.chunk_id(&data)).await
}

/// The vault format new vaults get: chunks in packs, found through an index (FORMAT.md).
pub const VAULT_FORMAT: u32 = 2;
/// The first format: one object per chunk. Still read and written in vaults that have it.
pub const FORMAT_1: u32 = 1;

/// How a format-2 vault packs chunks and how long its gc waits (stored in its descriptor, so
/// every writer and every gc of the vault agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackConfig {
    /// Pack size writers fill to before uploading, in bytes.
    pub target: u64,
    /// gc deletes what it condemned only this many seconds later; a put that ran longer than
    /// about this long does not commit.
    pub grace_secs: u64,
    /// Whether format-1 chunk objects (`chunks/`) may still hold data (a migrated vault).
    #[serde(default)]
    pub legacy_chunks: bool,
}

impl Default for PackConfig {
    fn default() -> Self {
        Self {
            target: pack::DEFAULT_TARGET,
            grace_secs: DEFAULT_GRACE.as_secs(),
            legacy_chunks: false,
        }
    }
}

/// gc's grace period unless a vault says otherwise.
pub const DEFAULT_GRACE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<EncryptionHeader>,
    /// Packing (format 2 only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packs: Option<PackConfig>,
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
    /// The vault already held the chunk; the value is its stored size.
    Existed(u64),
}

/// A chunk made ready to store by [`Vault::prepare_chunk`].
#[derive(Debug)]
pub enum PreparedChunk {
    /// Stored already, or found stored.
    Done(ChunkWrite),
    /// A new frame for the open pack (format 2), with the chunk's plaintext size.
    Frame {
        /// The chunk's id.
        id: ChunkId,
        /// Its frame.
        frame: Bytes,
        /// Its plaintext size.
        plain: u64,
    },
}

impl ChunkWrite {
    /// The chunk's stored (framed) size.
    pub fn stored(self) -> u64 {
        match self {
            ChunkWrite::Uploaded(n) | ChunkWrite::Existed(n) => n,
        }
    }
}

/// How a profile asks for a vault to be opened or created.
#[derive(Debug, Clone)]
pub struct VaultOptions {
    /// Compression of chunks written from now on.
    pub compression: CompressionConfig,
    /// Encryption: the cipher the profile expects and the key that opens the vault.
    pub encryption: Option<EncryptionOptions>,
    /// The format of a vault created now (format 1 only for older ldv to read it).
    pub format: u32,
    /// Packing of a format-2 vault created now.
    pub packs: PackConfig,
    /// Where copies of a remote vault's index segments are kept between runs.
    pub index_cache: Option<std::path::PathBuf>,
    /// Compression for a format-2 vault in place of `compression` (the profile chose none, so
    /// the format's default applies).
    pub packed_compression: Option<CompressionConfig>,
}

impl Default for VaultOptions {
    fn default() -> Self {
        Self {
            compression: CompressionConfig::NONE,
            encryption: None,
            format: VAULT_FORMAT,
            packs: PackConfig::default(),
            index_cache: None,
            packed_compression: None,
        }
    }
}

/// The encryption a profile asks for.
#[derive(Debug, Clone)]
pub struct EncryptionOptions {
    /// The AEAD.
    pub cipher: Cipher,
    /// The key.
    pub key: Arc<dyn KeyProvider>,
}

/// The key material of an open encrypted vault.
#[derive(Debug)]
struct Unlocked {
    vault_key: KeyBytes,
    /// The slot the vault was opened through.
    slot: String,
}

/// An open vault: a backend holding a valid descriptor.
#[derive(Debug)]
pub struct Vault {
    backend: DynBackend,
    /// Where lock objects go (by default `backend`; see [`Vault::with_lock_store`]).
    locks: DynBackend,
    descriptor: Descriptor,
    codec: Codec,
    unlocked: Option<Unlocked>,
    counters: Counters,
    /// Chunks stored or found during this session, with their stored size; concurrent writers of
    /// the same chunk share one upload, and a failed upload leaves the cell empty so the next
    /// writer tries again.
    known: Mutex<HashMap<ChunkId, Arc<OnceCell<u64>>>>,
    /// The lock this process holds on the vault, checked before every commit and removal.
    held: Mutex<Option<Arc<locks::LockState>>>,
    /// Format 2's packs and index; `None` in a format-1 vault.
    packed: Option<Packed>,
}

/// The format-2 state of an open vault.
#[derive(Debug)]
struct Packed {
    config: PackConfig,
    writer: writer::PackWriter,
    /// The index, loaded at first use.
    index: tokio::sync::OnceCell<std::sync::RwLock<index::Index>>,
    /// When this process loaded the index it deduplicates against (monotonic and wall clock):
    /// a put that ran longer than the grace period must not commit (see [`Vault::commit`]).
    loaded_at: std::sync::OnceLock<(std::time::Instant, SystemTime)>,
    /// Local copies of index segments (remote vaults).
    local: Option<std::path::PathBuf>,
}

impl Vault {
    /// Opens the plain vault on `backend`, or fails with `NotFound` when it holds none.
    pub async fn open(backend: DynBackend) -> Result<Self> {
        Self::open_with(backend, &VaultOptions::default()).await
    }

    /// Opens the vault on `backend` as `options` ask, unlocking it when it is encrypted; fails
    /// with `NotFound` when it holds none, and with a clear error when the vault's encryption
    /// and the options disagree or the key opens none of its slots.
    pub async fn open_with(backend: DynBackend, options: &VaultOptions) -> Result<Self> {
        let raw = read_descriptor(&backend).await.map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                Error::new(
                    ErrorKind::NotFound,
                    format!("no vault at {backend} (run `ldv init` to create one)"),
                )
            } else {
                e
            }
        })?;
        let location = backend.to_string();
        let descriptor = parse_descriptor(&raw, &location)?;
        let unlocked = match (&descriptor.encryption, &options.encryption) {
            (None, None) => None,
            (Some(header), None) => {
                return Err(Error::config(format!(
                    "vault at {location} is encrypted ({}), but the profile has no `encryption` section to open it",
                    header.algorithm
                )));
            }
            (None, Some(_)) => {
                return Err(Error::config(format!(
                    "vault at {location} is not encrypted, but the profile asks for encryption; use a profile without `encryption` for it, or create an encrypted vault elsewhere"
                )));
            }
            (Some(header), Some(enc)) => {
                if header.algorithm != enc.cipher {
                    return Err(Error::config(format!(
                        "vault at {location} is encrypted with {}, but the profile says {}",
                        header.algorithm, enc.cipher
                    )));
                }
                Some(unlock(header, &descriptor.vault_id, enc.key.as_ref(), &location).await?)
            }
        };
        Ok(Self::with(backend, descriptor, options, unlocked))
    }

    /// Creates a plain vault on `backend` with `chunker` as its default, or opens the one already
    /// there; the flag says whether it was created.
    pub async fn init(backend: DynBackend, chunker: ChunkerConfig) -> Result<(Self, bool)> {
        Self::init_with(backend, chunker, &VaultOptions::default()).await
    }

    /// Creates a vault on `backend` with `chunker` as its default and the encryption `options`
    /// ask for, or opens the one already there; the flag says whether it was created.
    pub async fn init_with(
        backend: DynBackend,
        chunker: ChunkerConfig,
        options: &VaultOptions,
    ) -> Result<(Self, bool)> {
        chunker.validate()?;
        if backend.exists(DESCRIPTOR_KEY).await? {
            return Ok((Self::open_with(backend, options).await?, false));
        }
        let vault_id = hex::encode(rand::random::<[u8; 16]>());
        let (encryption, unlocked) = match &options.encryption {
            None => (None, None),
            Some(enc) => {
                let (vault_key, slot) = enc.key.generate(&vault_id).await?;
                let header = EncryptionHeader {
                    algorithm: enc.cipher,
                    chunk_id: "hmac-sha256".into(),
                    slots: vec![slot.clone()],
                };
                let unlocked = Unlocked {
                    vault_key,
                    slot: slot.id,
                };
                (Some(header), Some(unlocked))
            }
        };
        if options.format != VAULT_FORMAT && options.format != FORMAT_1 {
            return Err(Error::config(format!(
                "vault format {} does not exist; ldv writes format {VAULT_FORMAT} (or {FORMAT_1} for older ldv)",
                options.format
            )));
        }
        let descriptor = Descriptor {
            format: options.format,
            vault_id,
            hash: "sha256".into(),
            chunker,
            encryption,
            packs: (options.format == VAULT_FORMAT).then_some(options.packs),
            created_at: crate::time::now_millis(),
        };
        match backend
            .put(
                DESCRIPTOR_KEY,
                descriptor_bytes(&descriptor),
                PutMode::CreateOnly,
            )
            .await
        {
            Ok(()) => Ok((Self::with(backend, descriptor, options, unlocked), true)),
            Err(e) if e.kind() == ErrorKind::Conflict => {
                Ok((Self::open_with(backend, options).await?, false))
            }
            Err(e) => Err(e),
        }
    }

    fn with(
        backend: DynBackend,
        descriptor: Descriptor,
        options: &VaultOptions,
        unlocked: Option<Unlocked>,
    ) -> Self {
        let keys = match (&descriptor.encryption, &unlocked) {
            (Some(header), Some(u)) => Some(Arc::new(VaultKeys::derive(
                header.algorithm,
                &u.vault_key,
                &descriptor.vault_id,
            ))),
            _ => None,
        };
        let compression = match (&descriptor.packs, options.packed_compression) {
            (Some(_), Some(packed)) => packed,
            _ => options.compression,
        };
        let codec = Codec::new(compression, keys);
        let packed = descriptor.packs.map(|config| Packed {
            config,
            writer: writer::PackWriter::new(Arc::clone(&backend), codec.clone(), config.target),
            index: tokio::sync::OnceCell::new(),
            loaded_at: std::sync::OnceLock::new(),
            local: options
                .index_cache
                .as_ref()
                .map(|dir| dir.join(&descriptor.vault_id)),
        });
        Self {
            locks: Arc::clone(&backend),
            backend,
            codec,
            descriptor,
            unlocked,
            counters: Counters::default(),
            known: Mutex::new(HashMap::new()),
            held: Mutex::new(None),
            packed,
        }
    }

    /// Takes and removes this vault's locks through `store`: the same store seen without
    /// per-write fsync ([`crate::backend::Stack::locks`]).
    pub fn with_lock_store(mut self, store: DynBackend) -> Self {
        self.locks = store;
        self
    }

    /// The codec of this vault (chunk ids, frames).
    pub fn codec(&self) -> &Codec {
        &self.codec
    }

    /// The key slot this vault was opened through, if it is encrypted.
    pub fn opened_slot(&self) -> Option<&str> {
        self.unlocked.as_ref().map(|u| u.slot.as_str())
    }

    /// Wraps the vault key under `key` as a new slot, stores the descriptor, then checks the new
    /// slot by reading the descriptor back and opening it with `key`. Hold the exclusive lock.
    pub async fn add_key(&mut self, key: &dyn KeyProvider) -> Result<KeySlot> {
        self.check_lock()?;
        let location = self.backend.to_string();
        let unlocked = self
            .unlocked
            .as_ref()
            .ok_or_else(|| not_encrypted(&location))?;
        let slot = key
            .wrap(&unlocked.vault_key, &self.descriptor.vault_id)
            .await?;
        let mut descriptor = self.stored_descriptor().await?;
        let header = descriptor
            .encryption
            .as_mut()
            .ok_or_else(|| not_encrypted(&location))?;
        let work: u64 = header
            .slots
            .iter()
            .chain(std::iter::once(&slot))
            .filter_map(|s| match &s.kind {
                crypto::SlotKind::Passphrase { kdf } => Some(kdf.work()),
                _ => None,
            })
            .sum();
        if header.slots.len() >= crypto::MAX_SLOTS || work > crypto::MAX_KDF_WORK {
            return Err(Error::config(format!(
                "the vault at {location} has {} key slots, the most ldv opens ({} in all, or 8 passphrases); remove one first",
                header.slots.len(),
                crypto::MAX_SLOTS
            )));
        }
        header.slots.push(slot.clone());
        self.backend
            .put(
                DESCRIPTOR_KEY,
                descriptor_bytes(&descriptor),
                PutMode::Overwrite,
            )
            .await?;
        self.descriptor = descriptor;
        // Reopen through the new slot alone before anyone relies on it.
        let raw = read_descriptor(&self.backend).await?;
        let stored = parse_descriptor(&raw, &location)?;
        let reread = stored
            .encryption
            .as_ref()
            .and_then(|h| h.slots.iter().find(|s| s.id == slot.id))
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::BackendError,
                    format!(
                        "the new key slot {} did not read back from {location}",
                        slot.id
                    ),
                )
            })?;
        let reopened = key.unwrap(reread, &stored.vault_id).await?;
        if reopened.as_ref() != Some(&unlocked.vault_key) {
            return Err(Error::new(
                ErrorKind::IntegrityCheckFailed,
                format!(
                    "the new key slot {} does not open the vault at {location}",
                    slot.id
                ),
            ));
        }
        Ok(slot)
    }

    /// The descriptor as stored now. Key changes start from it, not from the copy read when the
    /// vault was opened: another `ldv key` may have changed the slots before this one took the
    /// lock, and writing back the old copy would silently drop that change.
    async fn stored_descriptor(&self) -> Result<Descriptor> {
        let location = self.backend.to_string();
        let raw = read_descriptor(&self.backend).await?;
        let stored = parse_descriptor(&raw, &location)?;
        if stored.vault_id != self.descriptor.vault_id {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "the vault at {location} was replaced by another (vault id {}) since this command opened it",
                    stored.vault_id
                ),
            ));
        }
        Ok(stored)
    }

    /// Converts this format-1 vault to format 2 in place (hold the exclusive lock): lists the
    /// chunk objects once and writes them as one index segment of format-1 locations, then
    /// rewrites the descriptor. A crash before the descriptor leaves a format-1 vault (with an
    /// index object it ignores); after it, a format-2 vault whose old chunks stay where they
    /// are, read through the index, until gc moves them into packs. Returns the chunks indexed.
    pub async fn migrate(&mut self, packs: PackConfig) -> Result<u64> {
        self.check_lock()?;
        if self.packed.is_some() {
            return Ok(0);
        }
        let location = self.backend.to_string();
        let mut entries = Vec::new();
        for (id, meta) in self.list_chunks().await? {
            let len = u32::try_from(meta.size).map_err(|_| {
                Error::integrity(
                    format!("chunk {id}"),
                    format!("its object is {} bytes, larger than any frame", meta.size),
                )
            })?;
            if len > 0 {
                entries.push(pack::PackEntry { id, offset: 0, len });
            }
        }
        let count = entries.len() as u64;
        let segment = index::Segment {
            supersedes: Vec::new(),
            packs: vec![(index::LEGACY, entries)],
        };
        let (id, bytes) = segment.encode(&self.codec);
        self.backend
            .put(&index::segment_key(&id), bytes, PutMode::Overwrite)
            .await?;
        let mut descriptor = self.stored_descriptor().await?;
        if descriptor.format != FORMAT_1 {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("the vault at {location} was converted by another ldv meanwhile"),
            ));
        }
        descriptor.format = VAULT_FORMAT;
        descriptor.packs = Some(PackConfig {
            legacy_chunks: true,
            ..packs
        });
        self.backend
            .put(
                DESCRIPTOR_KEY,
                descriptor_bytes(&descriptor),
                PutMode::Overwrite,
            )
            .await?;
        Ok(count)
    }

    /// Removes key slot `id`; the last slot is never removed. Hold the exclusive lock.
    pub async fn remove_key(&mut self, id: &str) -> Result<KeySlot> {
        self.check_lock()?;
        let location = self.backend.to_string();
        let mut descriptor = self.stored_descriptor().await?;
        let header = descriptor
            .encryption
            .as_mut()
            .ok_or_else(|| not_encrypted(&location))?;
        let at = header
            .slots
            .iter()
            .position(|s| s.id == id)
            .ok_or_else(|| Error::not_found(format!("key slot {id} in the vault at {location}")))?;
        if header.slots.len() == 1 {
            return Err(Error::config(format!(
                "key slot {id} is the only key of the vault at {location}; add another key first"
            )));
        }
        let removed = header.slots.remove(at);
        self.backend
            .put(
                DESCRIPTOR_KEY,
                descriptor_bytes(&descriptor),
                PutMode::Overwrite,
            )
            .await?;
        self.descriptor = descriptor;
        Ok(removed)
    }
    /// Checks that this vault's store can hold a version of `name`: with a store prefix, the
    /// manifest key may outgrow the store's key limit although the name alone is valid. A put
    /// checks this before it uploads anything.
    pub fn check_name_fits(&self, name: &str) -> Result<()> {
        let room = self.backend.max_key_len();
        let key_len = layout::manifest_key(name, &"0".repeat(layout::VERSION_LEN)).len();
        if key_len <= room {
            return Ok(());
        }
        let longest = name.len() - (key_len - room);
        Err(Error::invalid_key(
            name,
            format!(
                "is {} bytes; under the store prefix of the vault at {} a name can have at most {longest}",
                name.len(),
                self.backend
            ),
        ))
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

    /// The vault's format (1 or 2).
    pub fn format(&self) -> u32 {
        self.descriptor.format
    }

    /// A format-2 vault's packing settings; `None` for format 1.
    pub fn pack_config(&self) -> Option<PackConfig> {
        self.packed.as_ref().map(|p| p.config)
    }

    /// Stores the chunk `id` unless the vault already has it; compression and sealing run on
    /// the blocking pool, and only for chunks that are uploaded. In a format-2 vault the chunk
    /// goes into a pack and is durable only after [`Vault::flush`] (which [`Vault::commit`]
    /// calls).
    pub async fn put_chunk(&self, id: ChunkId, chunk: &codec::PlainChunk) -> Result<ChunkWrite> {
        let prepared = self.prepare_chunk(id, chunk).await?;
        self.store_prepared(prepared).await
    }

    /// The part of [`Vault::put_chunk`] that may run for many chunks at once: in a format-2
    /// vault, decides from the index whether chunk `id` is new and, if so, frames it (compresses
    /// and seals it); in a format-1 vault, stores it. [`Vault::store_prepared`] finishes, called
    /// in content order so a file's frames lie back to back in its packs and read back in few
    /// ranged requests.
    pub async fn prepare_chunk(
        &self,
        id: ChunkId,
        chunk: &codec::PlainChunk,
    ) -> Result<PreparedChunk> {
        if self.packed.is_none() {
            return Ok(PreparedChunk::Done(self.put_object_chunk(id, chunk).await?));
        }
        self.with_index(|_| ()).await?;
        if let Some(done) = self.found_packed(id, chunk) {
            return Ok(done);
        }
        if self.codec.is_identity() {
            return Ok(new_frame(&self.codec, id, chunk));
        }
        let (codec, plain) = (self.codec.clone(), chunk.clone());
        cpu_work(plain.len(), move || new_frame(&codec, id, &plain)).await
    }

    /// Loads the index of a format-2 vault if this process has not yet (nothing to do in a
    /// format-1 vault), so that [`Vault::prepare_loaded`] can run on any thread.
    pub async fn load_index(&self) -> Result<()> {
        match &self.packed {
            Some(_) => self.with_index(|_| ()).await,
            None => Ok(()),
        }
    }

    /// [`Vault::prepare_chunk`] without waiting, for blocking code: in a format-2 vault whose
    /// index is loaded ([`Vault::load_index`]), chunk `id` found or framed; `None` otherwise
    /// (a format-1 vault, whose chunks are requests of their own).
    pub fn prepare_loaded(&self, id: ChunkId, chunk: &codec::PlainChunk) -> Option<PreparedChunk> {
        let packed = self.packed.as_ref()?;
        packed.index.get()?;
        Some(
            self.found_packed(id, chunk)
                .unwrap_or_else(|| new_frame(&self.codec, id, chunk)),
        )
    }

    /// Batches of consecutive chunks a put should hand to [`Vault::identify_and_prepare`]: about
    /// 1 MiB in a format-2 vault, where chunks are small and only CPU work is per chunk; single
    /// chunks in a format-1 vault, where each one is a request of its own.
    pub fn batch_bytes(&self) -> usize {
        if self.packed.is_some() { 1 << 20 } else { 0 }
    }

    /// [`Vault::prepare_chunk`] for a batch of chunks whose ids are not yet known; returns each
    /// chunk's plaintext size, id and preparation, in order. In a format-2 vault the hashing,
    /// the index lookups and the framing of the whole batch run as one job on the blocking pool:
    /// one hand-off per batch instead of two per chunk. In a format-1 vault the chunks are
    /// prepared one after another (its batches are single chunks: see [`Vault::batch_bytes`]).
    pub async fn identify_and_prepare(
        self: &Arc<Self>,
        batch: Vec<codec::PlainChunk>,
    ) -> Result<Vec<(u64, ChunkId, PreparedChunk)>> {
        if self.packed.is_none() {
            let mut prepared = Vec::with_capacity(batch.len());
            for chunk in batch {
                let id = identify(&self.codec, &chunk).await?;
                prepared.push((
                    chunk.len() as u64,
                    id,
                    self.prepare_chunk(id, &chunk).await?,
                ));
            }
            return Ok(prepared);
        }
        self.with_index(|_| ()).await?;
        let this = Arc::clone(self);
        let bytes = batch.iter().map(codec::PlainChunk::len).sum();
        cpu_work(bytes, move || {
            batch
                .into_iter()
                .map(|chunk| {
                    let id = this.codec.chunk_id(&chunk.data());
                    let prepared = this
                        .found_packed(id, &chunk)
                        .unwrap_or_else(|| new_frame(&this.codec, id, &chunk));
                    (chunk.len() as u64, id, prepared)
                })
                .collect()
        })
        .await
    }

    /// In a format-2 vault whose index is loaded: chunk `id`, counted as found, if this process
    /// stored it or the index holds it outside condemned packs.
    fn found_packed(&self, id: ChunkId, chunk: &codec::PlainChunk) -> Option<PreparedChunk> {
        let known = {
            let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
            known.get(&id).and_then(|cell| cell.get().copied())
        };
        let stored = known.or_else(|| {
            let packed = self.packed.as_ref()?;
            let index = packed
                .index
                .get()?
                .read()
                .unwrap_or_else(|p| p.into_inner());
            index.reusable(&id).map(|l| u64::from(l.len))
        })?;
        Some(PreparedChunk::Done(self.count(
            false,
            stored,
            chunk.len() as u64,
        )))
    }

    /// Finishes storing a chunk [`Vault::prepare_chunk`] made ready: a new frame goes into the
    /// open pack, unless this process stored the same chunk meanwhile.
    pub async fn store_prepared(&self, prepared: PreparedChunk) -> Result<ChunkWrite> {
        let (id, frame, plain) = match prepared {
            PreparedChunk::Done(write) => return Ok(write),
            PreparedChunk::Frame { id, frame, plain } => (id, frame, plain),
        };
        let packed = self
            .packed
            .as_ref()
            .expect("only format-2 vaults prepare frames");
        let cell = self.known_cell(id);
        let mut added = false;
        let stored = *cell
            .get_or_try_init(|| async {
                let stored = frame.len() as u64;
                packed.writer.add(id, frame).await?;
                added = true;
                Ok::<u64, Error>(stored)
            })
            .await?;
        Ok(self.count(added, stored, plain))
    }

    /// The cell that settles, once per process, how chunk `id` was stored.
    fn known_cell(&self, id: ChunkId) -> Arc<OnceCell<u64>> {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(known.entry(id).or_default())
    }

    /// Counts a chunk of `plain` bytes, `stored` as a frame of that size, as uploaded now or
    /// found stored, in the store counters.
    fn count(&self, uploaded: bool, stored: u64, plain: u64) -> ChunkWrite {
        let c = &self.counters;
        if uploaded {
            c.chunks_uploaded.fetch_add(1, Ordering::Relaxed);
            ChunkWrite::Uploaded(stored)
        } else {
            c.chunks_deduplicated.fetch_add(1, Ordering::Relaxed);
            c.deduplicated_bytes.fetch_add(plain, Ordering::Relaxed);
            ChunkWrite::Existed(stored)
        }
    }

    /// Stores chunk `id` as an object of its own (format 1), unless it exists.
    async fn put_object_chunk(&self, id: ChunkId, chunk: &codec::PlainChunk) -> Result<ChunkWrite> {
        let cell = self.known_cell(id);
        let mut uploaded = false;
        let stored = *cell
            .get_or_try_init(|| async {
                let key = id.key();
                if chunk.len() <= INLINE_WORK_LIMIT {
                    // A small chunk goes up create-only at once: one request whether or not the
                    // vault has it, instead of a HEAD and then a PUT. A store that ignores the
                    // condition overwrites the chunk with the same content, which is harmless.
                    let frame = self.codec.encode_chunk(id, chunk);
                    let stored = frame.len() as u64;
                    return match self.backend.put(&key, frame, PutMode::CreateOnly).await {
                        Ok(()) => {
                            uploaded = true;
                            Ok(stored)
                        }
                        // Held already; a frame written with the same settings has this size.
                        Err(e) if e.kind() == ErrorKind::Conflict => Ok(stored),
                        Err(e) => Err(e),
                    };
                }
                match self.backend.head(&key).await {
                    Ok(meta) => return Ok(meta.size),
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e),
                }
                let (codec, plain) = (self.codec.clone(), chunk.clone());
                let frame = cpu_work(plain.len(), move || codec.encode_chunk(id, &plain)).await?;
                let stored = frame.len() as u64;
                self.backend.put(&key, frame, PutMode::Overwrite).await?;
                tracing::debug!("stored chunk {id} ({stored} bytes)");
                uploaded = true;
                Ok::<u64, Error>(stored)
            })
            .await?;
        Ok(self.count(uploaded, stored, chunk.len() as u64))
    }

    /// Whether a put would find chunk `id` already stored (format 2: in the index, outside
    /// condemned packs; format 1: its object exists).
    pub async fn holds_chunk(&self, id: ChunkId) -> Result<bool> {
        match &self.packed {
            Some(_) => self.with_index(|index| index.reusable(&id).is_some()).await,
            None => self.backend.exists(&id.key()).await,
        }
    }

    /// [`Vault::holds_chunk`] for many chunks at once, in order.
    pub async fn holds_chunks(&self, ids: &[ChunkId]) -> Result<Vec<bool>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        match &self.packed {
            Some(_) => {
                self.with_index(|index| ids.iter().map(|id| index.reusable(id).is_some()).collect())
                    .await
            }
            None => {
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    out.push(self.backend.exists(&id.key()).await?);
                }
                Ok(out)
            }
        }
    }

    /// Runs `f` on the index of this format-2 vault, loading the index first if this process
    /// has not yet.
    async fn with_index<T>(&self, f: impl FnOnce(&index::Index) -> T) -> Result<T> {
        let packed = self
            .packed
            .as_ref()
            .expect("only format-2 vaults have an index");
        let lock = packed
            .index
            .get_or_try_init(|| async {
                let loaded =
                    index::load(&self.backend, &self.codec, packed.local.as_deref()).await?;
                let _ = packed
                    .loaded_at
                    .set((std::time::Instant::now(), SystemTime::now()));
                tracing::debug!("loaded the index: {} chunks", loaded.len());
                Ok::<_, Error>(std::sync::RwLock::new(loaded))
            })
            .await?;
        let index = lock.read().unwrap_or_else(|p| p.into_inner());
        Ok(f(&index))
    }

    /// Loads the index of this format-2 vault again (new segments, marks), as a reader does
    /// when a chunk is not where the index it holds says.
    pub async fn reload_index(&self) -> Result<()> {
        let Some(packed) = &self.packed else {
            return Ok(());
        };
        let fresh = index::load(&self.backend, &self.codec, packed.local.as_deref()).await?;
        match packed.index.get() {
            Some(lock) => *lock.write().unwrap_or_else(|p| p.into_inner()) = fresh,
            None => {
                let _ = packed.index.set(std::sync::RwLock::new(fresh));
            }
        }
        Ok(())
    }

    /// Lists and reads every index segment and mark of this format-2 vault, for gc.
    pub async fn read_index_listing(&self) -> Result<index::Listing> {
        let local = self.packed.as_ref().and_then(|p| p.local.as_deref());
        index::read_all(&self.backend, &self.codec, local).await
    }

    /// Checks a stored frame against chunk `id` (opening it, hashing its plaintext) without
    /// knowing the chunk's size; for gc, which copies frames between packs.
    pub async fn check_stored_frame(&self, id: ChunkId, frame: Bytes) -> Result<()> {
        let codec = self.codec.clone();
        cpu_work(frame.len(), move || {
            let plain = codec.decode_chunk_unsized(id, frame)?;
            if codec.chunk_id(&plain) != id {
                return Err(Error::integrity(
                    format!("chunk {id}"),
                    "content does not match its id",
                ));
            }
            Ok(())
        })
        .await?
    }

    /// Adds an already encoded frame of chunk `id` to the pack being written (gc's repacking).
    pub async fn put_frame(&self, id: ChunkId, frame: Bytes) -> Result<()> {
        let packed = self
            .packed
            .as_ref()
            .expect("only format-2 vaults have packs");
        packed.writer.add(id, frame).await
    }

    /// In a format-2 vault, closes the open pack (its upload starts), so the chunks stored next
    /// go into packs of their own.
    pub async fn cut_pack(&self) -> Result<()> {
        match &self.packed {
            Some(packed) => packed.writer.cut().await,
            None => Ok(()),
        }
    }

    /// Uploads every pack written so far and returns them, without indexing them: the caller
    /// writes the segment (gc, whose segment supersedes the others).
    pub async fn flush_packs(&self) -> Result<Vec<writer::Written>> {
        match &self.packed {
            Some(packed) => packed.writer.flush().await,
            None => Ok(Vec::new()),
        }
    }

    /// Makes every chunk stored so far durable and findable: in a format-2 vault, uploads the
    /// open pack, waits for every pack upload, then writes one index segment for them. Nothing
    /// to do in a format-1 vault, whose chunks are durable once stored.
    pub async fn flush(&self) -> Result<()> {
        let Some(packed) = &self.packed else {
            return Ok(());
        };
        let flushed = async {
            let written = packed.writer.flush().await?;
            if written.is_empty() {
                return Ok(Vec::new());
            }
            // An index segment listing packs gc may have condemned as unindexed must not
            // appear after gc swept them: a writer past the grace period stops here.
            self.check_deadline()?;
            self.write_segments(written, Vec::new()).await
        }
        .await;
        let segments = match flushed {
            Ok(segments) => segments,
            Err(e) => {
                // Chunks of packs that were not uploaded or not indexed are not stored: this
                // session must not take them as stored again.
                self.known.lock().unwrap_or_else(|p| p.into_inner()).clear();
                return Err(e);
            }
        };
        if let Some(lock) = packed.index.get() {
            let mut index = lock.write().unwrap_or_else(|p| p.into_inner());
            for (_, segment) in &segments {
                index.add(segment);
            }
        }
        Ok(())
    }

    /// Writes index segments for `packs`, at most [`index::SEGMENT_ENTRIES`] entries each, the
    /// last one carrying `supersedes`: it is written after the others, so a reader that sees
    /// it (and drops the segments it supersedes) sees every part, even after a crash between
    /// two parts.
    pub async fn write_segments(
        &self,
        packs: Vec<writer::Written>,
        supersedes: Vec<index::SegmentId>,
    ) -> Result<Vec<(index::SegmentId, index::Segment)>> {
        let mut parts: Vec<index::Segment> = vec![index::Segment::default()];
        let mut entries = 0;
        for (pack, list) in packs {
            if entries + list.len() > index::SEGMENT_ENTRIES && entries > 0 {
                parts.push(index::Segment::default());
                entries = 0;
            }
            entries += list.len();
            parts
                .last_mut()
                .expect("there is always a part")
                .packs
                .push((pack, list));
        }
        parts.last_mut().expect("there is always a part").supersedes = supersedes;
        let mut written = Vec::with_capacity(parts.len());
        for part in parts {
            let (id, bytes) = part.encode(&self.codec);
            self.backend
                .put(&index::segment_key(&id), bytes, PutMode::Overwrite)
                .await?;
            written.push((id, part));
        }
        Ok(written)
    }

    /// Fails once this process has deduplicated against its index for longer than the vault's
    /// grace period allows (nine tenths of it): a gc that condemned a pack this put relies on
    /// may delete it a grace period after condemning it, and only a put that commits before
    /// then is seen (and its chunks rescued) by that gc. Both clocks count: the monotonic one
    /// stops while a machine sleeps, the wall clock may be set back.
    fn check_deadline(&self) -> Result<()> {
        let Some(packed) = &self.packed else {
            return Ok(());
        };
        let Some((mono, wall)) = packed.loaded_at.get() else {
            return Ok(());
        };
        let ran = mono
            .elapsed()
            .max(SystemTime::now().duration_since(*wall).unwrap_or_default());
        let grace = std::time::Duration::from_secs(packed.config.grace_secs);
        let limit = grace - (grace / 10).max(std::time::Duration::from_secs(1).min(grace / 2));
        if ran > limit {
            return Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "this write ran {} s, longer than the {} s a write may take in the vault at {} (nine tenths of its gc grace): nothing was committed; run it again",
                    ran.as_secs(),
                    limit.as_secs(),
                    self.backend
                ),
            ));
        }
        Ok(())
    }

    /// The largest frame a chunk of `size` plaintext bytes can have. A frame is never larger
    /// than the chunk's uncompressed frame (compression is stored only when it shrinks): reads
    /// take no more than that, plus slack, so an object that grew (a damaged or hostile store)
    /// is refused without being held.
    fn frame_bound(&self, size: u64) -> u64 {
        self.codec
            .plain_frame_len(size.min(codec::MAX_DECODED))
            .saturating_add(FRAME_SLACK)
    }

    /// Reads `chunks` one request each (format 1, or a run that could not be read whole).
    async fn get_each(&self, chunks: &[manifest::ChunkRef]) -> Result<Vec<Bytes>> {
        let mut out = Vec::with_capacity(chunks.len());
        for c in chunks {
            out.push(self.get_chunk(c.id, c.size).await?);
        }
        Ok(out)
    }

    /// Reads chunk `id`, checks its frame, length and id, and returns its plaintext.
    pub async fn get_chunk(&self, id: ChunkId, size: u64) -> Result<Bytes> {
        let most = self.frame_bound(size);
        let frame = match &self.packed {
            Some(_) => self.packed_frame(id, most).await?,
            None => self.chunk_object(id, most).await?,
        };
        self.check_frame(id, size, frame).await
    }

    /// Splits `chunks` (in content order) into runs that one ranged read each can fetch: in a
    /// format-2 vault, consecutive chunks whose frames lie back to back in one pack, up to
    /// [`RUN_BYTES`] of frames; otherwise one chunk per run.
    pub async fn read_runs(
        &self,
        chunks: &[manifest::ChunkRef],
    ) -> Result<Vec<std::ops::Range<usize>>> {
        if self.packed.is_none() || chunks.len() < 2 {
            return Ok((0..chunks.len()).map(|i| i..i + 1).collect());
        }
        self.with_index(|index| {
            let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
            let mut last: Option<(index::Location, u64)> = None;
            for (i, c) in chunks.iter().enumerate() {
                let at = index.locate(&c.id).filter(|l| l.pack != index::LEGACY);
                let joins = match (at, last, runs.last()) {
                    (Some(at), Some((prev, bytes)), Some(run)) => {
                        run.end == i
                            && prev.pack == at.pack
                            && u64::from(prev.offset) + u64::from(prev.len) == u64::from(at.offset)
                            && bytes + u64::from(at.len) <= RUN_BYTES
                    }
                    _ => false,
                };
                if joins {
                    let run = runs.last_mut().expect("checked above");
                    run.end = i + 1;
                    let (_, bytes) = last.expect("checked above");
                    last = at.map(|a| (a, bytes + u64::from(a.len)));
                } else {
                    runs.push(i..i + 1);
                    last = at.map(|a| (a, u64::from(a.len)));
                }
            }
            runs
        })
        .await
    }

    /// Sorts `chunks` by where their frames lie (pack, then offset; chunks the index does not
    /// place last, in their order), so that [`Vault::read_runs`] joins the chunks of many small
    /// files stored side by side into few ranged reads whatever order they are wanted in.
    pub async fn sort_by_location<T: Send>(
        &self,
        chunks: &mut [T],
        id: impl Fn(&T) -> ChunkId,
    ) -> Result<()> {
        if self.packed.is_none() {
            return Ok(());
        }
        self.with_index(|index| {
            chunks.sort_by_cached_key(|c| match index.locate(&id(c)) {
                Some(at) if at.pack != index::LEGACY => (0, at.pack, at.offset),
                _ => (1, pack::PackId([0; 32]), 0),
            });
        })
        .await
    }

    /// Reads a run of chunks made by [`Vault::read_runs`] with one ranged read, and checks each
    /// as [`Vault::get_chunk`] does. When the run's pack is gone or the index moved a chunk
    /// since, each chunk is read on its own (which reloads the index).
    pub async fn get_run(&self, chunks: &[manifest::ChunkRef]) -> Result<Vec<Bytes>> {
        if chunks.len() == 1 || self.packed.is_none() {
            return self.get_each(chunks).await;
        }
        let places: Vec<Option<index::Location>> = self
            .with_index(|index| chunks.iter().map(|c| index.locate(&c.id)).collect())
            .await?;
        let first = places[0];
        let contiguous = places.windows(2).all(|w| match (w[0], w[1]) {
            (Some(a), Some(b)) => {
                a.pack == b.pack
                    && a.pack != index::LEGACY
                    && u64::from(a.offset) + u64::from(a.len) == u64::from(b.offset)
            }
            _ => false,
        });
        let fetched = match (first, places.last().copied().flatten(), contiguous) {
            (Some(a), Some(z), true) => {
                let range = u64::from(a.offset)..u64::from(z.offset) + u64::from(z.len);
                match self.backend.get_range(&a.pack.key(), range.clone()).await {
                    Ok(bytes) if bytes.len() as u64 == range.end - range.start => Some(bytes),
                    Ok(_) => None,
                    Err(e) if e.kind() == ErrorKind::NotFound => None,
                    Err(e) => return Err(e),
                }
            }
            _ => None,
        };
        let Some(bytes) = fetched else {
            return self.get_each(chunks).await;
        };
        let base = first.expect("a fetched run has a first chunk").offset;
        let mut frames = Vec::with_capacity(chunks.len());
        for (c, at) in chunks.iter().zip(&places) {
            let at = at.expect("a fetched run has every chunk located");
            let start = (at.offset - base) as usize;
            let frame = bytes.slice(start..start + at.len as usize);
            if frame.len() as u64 > self.frame_bound(c.size) {
                self.counters
                    .integrity_checks_failed
                    .fetch_add(1, Ordering::Relaxed);
                return Err(Error::integrity(
                    format!("chunk {}", c.id),
                    "its frame is larger than any frame of the chunk the manifest records",
                ));
            }
            frames.push((c.id, c.size, frame));
        }
        // The whole run is checked in one task: one hand-off to a worker thread per run, not
        // per chunk.
        self.counters
            .chunks_downloaded
            .fetch_add(frames.len() as u64, Ordering::Relaxed);
        let codec = self.codec.clone();
        let checked = cpu_work(bytes.len(), move || {
            frames
                .into_iter()
                .map(|(id, size, frame)| check_plain(&codec, id, size, frame))
                .collect::<Vec<Result<Bytes>>>()
        })
        .await?;
        let mut out = Vec::with_capacity(checked.len());
        for result in checked {
            let counter = match &result {
                Ok(_) => &self.counters.integrity_checks_passed,
                Err(_) => &self.counters.integrity_checks_failed,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            out.push(result?);
        }
        Ok(out)
    }

    /// Reads the format-1 chunk object of `id`, at most `most` bytes of it.
    async fn chunk_object(&self, id: ChunkId, most: u64) -> Result<Bytes> {
        let frame = self
            .backend
            .get_range(&id.key(), 0..most.saturating_add(1))
            .await
            .map_err(|e| {
                if e.kind() == ErrorKind::NotFound {
                    Error::integrity(format!("chunk {id}"), "missing from the vault")
                } else {
                    e
                }
            })?;
        if frame.len() as u64 > most {
            self.counters
                .integrity_checks_failed
                .fetch_add(1, Ordering::Relaxed);
            return Err(Error::integrity(
                format!("chunk {id}"),
                "its stored object is larger than any frame of the chunk the manifest records",
            ));
        }
        Ok(frame)
    }

    /// Reads the frame of `id` from the pack the index names; a chunk the index does not know,
    /// or whose pack is gone (repacked since the index was loaded), is looked up again in a
    /// freshly loaded index once.
    async fn packed_frame(&self, id: ChunkId, most: u64) -> Result<Bytes> {
        let mut reloaded = false;
        loop {
            let found = self.with_index(|index| index.locate(&id)).await?;
            let attempt = match found {
                Some(at) if at.pack == index::LEGACY => self.chunk_object(id, most).await,
                Some(at) if u64::from(at.len) > most => {
                    self.counters
                        .integrity_checks_failed
                        .fetch_add(1, Ordering::Relaxed);
                    return Err(Error::integrity(
                        format!("chunk {id}"),
                        format!(
                            "the index gives it {} bytes, more than any frame of the chunk the manifest records",
                            at.len
                        ),
                    ));
                }
                Some(at) => {
                    let start = u64::from(at.offset);
                    let range = start..start + u64::from(at.len);
                    match self.backend.get_range(&at.pack.key(), range).await {
                        Err(e) if e.kind() == ErrorKind::NotFound => {
                            Err(pack::missing(at.pack, id))
                        }
                        other => other,
                    }
                }
                None if self.packed.as_ref().is_some_and(|p| p.config.legacy_chunks) => {
                    self.chunk_object(id, most).await
                }
                None => Err(Error::integrity(
                    format!("chunk {id}"),
                    "missing from the vault (no index entry)",
                )),
            };
            match attempt {
                Err(e) if e.kind() == ErrorKind::IntegrityCheckFailed && !reloaded => {
                    reloaded = true;
                    self.reload_index().await?;
                }
                other => return other,
            }
        }
    }

    /// Decodes a chunk's frame and checks it against its id and the length the manifest gives.
    async fn check_frame(&self, id: ChunkId, size: u64, frame: Bytes) -> Result<Bytes> {
        self.counters
            .chunks_downloaded
            .fetch_add(1, Ordering::Relaxed);
        let codec = self.codec.clone();
        let checked = cpu_work(frame.len(), move || check_plain(&codec, id, size, frame)).await?;
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
        let guard = locks::acquire(&self.locks, kind, command, wait).await?;
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

    /// Commits a version: makes its chunks durable ([`Vault::flush`]), then writes its manifest
    /// create-only.
    pub async fn commit(&self, manifest: &Manifest) -> Result<()> {
        self.check_lock()?;
        self.flush().await?;
        self.check_deadline()?;
        let key = layout::manifest_key(&manifest.name, &manifest.version);
        let stored = self.codec.encode_manifest(&key, manifest.to_bytes());
        if self.codec.cipher().is_some() && stored.len() as u64 > MAX_SEALED_MANIFEST {
            return Err(Error::new(
                ErrorKind::ChunkingError,
                format!(
                    "{}: its {} chunks make a manifest over the {MAX_SEALED_MANIFEST}-byte limit of an encrypted vault; choose larger chunks",
                    manifest.name,
                    manifest.chunks.len()
                ),
            ));
        }
        self.backend.put(&key, stored, PutMode::CreateOnly).await
    }

    /// Reads the manifest of `name@version`.
    pub async fn manifest(&self, name: &str, version: &str) -> Result<Manifest> {
        let (head, chunks) = self.read_manifest(name, version, Vec::new()).await?;
        Ok(Manifest::from_head(head, chunks))
    }

    /// Reads the listing of tree version `m` (its content), checks every chunk, the content's
    /// SHA-256 and the listing against the manifest's summary, and parses it.
    pub async fn read_tree(&self, m: &Manifest) -> Result<tree::Tree> {
        let what = format!("tree {}@{}", m.name, m.version);
        let Some(summary) = m.tree else {
            return Err(Error::config(format!(
                "{}@{} is a file, not a tree",
                m.name, m.version
            )));
        };
        let runs = self.read_runs(&m.chunks).await?;
        let pieces: Vec<Vec<Bytes>> = futures::stream::iter(runs)
            .map(|run| self.get_run(&m.chunks[run]))
            .buffered(4)
            .try_collect()
            .await
            .map_err(|e| e.context(&what))?;
        let mut body = Vec::with_capacity(usize::try_from(m.size.min(64 << 20)).unwrap_or(0));
        for piece in pieces.iter().flatten() {
            body.extend_from_slice(piece);
        }
        drop(pieces);
        let (max_chunk, expected) = (m.chunker.max_chunk() as u64, m.sha256.clone());
        let parsed = cpu_work(body.len(), move || {
            let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
            if digest != expected {
                return Err(format!(
                    "its listing's SHA-256 is {digest}, the manifest says {expected}"
                ));
            }
            tree::parse(&body, max_chunk).map_err(|e| format!("its listing is damaged: {e}"))
        })
        .await?
        .map_err(|e| Error::integrity(&what, e))?;
        if parsed.summary() != summary {
            return Err(Error::integrity(
                &what,
                format!(
                    "its listing holds {:?}, its manifest says {summary:?}",
                    parsed.summary()
                ),
            ));
        }
        Ok(parsed)
    }

    /// [`Vault::read_manifest`] for readers of every chunk a version needs (gc, verify): a tree
    /// version's listing is read too, and `sink` takes the listing's chunks and then every
    /// chunk of every file in the tree.
    pub async fn read_manifest_deep<S: ChunkSink>(
        &self,
        name: &str,
        version: &str,
        sink: S,
    ) -> Result<(ManifestHead, S)> {
        let tee = Tee {
            sink,
            kept: Some(Vec::new()),
        };
        let (head, tee) = self.read_manifest(name, version, tee).await?;
        let Tee { mut sink, kept } = tee;
        if head.tree.is_none() {
            return Ok((head, sink));
        }
        let chunks = match kept {
            Some(kept) => kept,
            None => self.read_manifest(name, version, Vec::new()).await?.1,
        };
        let _one_of_few = TREES
            .acquire()
            .await
            .expect("the tree semaphore is never closed");
        let m = Manifest::from_head(head.clone(), chunks);
        // The manifest is there, so a listing chunk that is not is damage, never "removed since
        // listed" (which gc and verify take to mean "references nothing").
        let listing = self.read_tree(&m).await.map_err(|e| match e.kind() {
            ErrorKind::NotFound => Error::integrity(
                format!("tree {name}@{version}"),
                format!("its listing cannot be read: {e}"),
            ),
            _ => e,
        })?;
        for e in &listing.entries {
            for c in e.chunk_refs() {
                sink.chunk(c);
            }
        }
        Ok((head, sink))
    }

    /// Reads the manifest of `name@version`, handing its chunks to `sink` as they are parsed, so
    /// a caller that needs less than the whole chunk list (a set of ids, a count) never holds
    /// it. A plain vault's manifest up to 16 MiB is read whole and parsed in
    /// memory; a larger one is read in windows and parsed as they arrive, never held whole. An
    /// encrypted vault's is one sealed frame, so it is read whole and opened before it is parsed
    /// (its JSON then costs twice its size while it is parsed).
    pub async fn read_manifest<S: ChunkSink>(
        &self,
        name: &str,
        version: &str,
        mut sink: S,
    ) -> Result<(ManifestHead, S)> {
        let key = layout::manifest_key(name, version);
        let what = format!("manifest {name}@{version}");
        let found = |e: Error| {
            if e.kind() == ErrorKind::NotFound {
                Error::not_found(format!("{name}@{version}"))
            } else {
                e
            }
        };
        let first = self
            .backend
            .get_range(&key, 0..MANIFEST_FIRST_WINDOW)
            .await
            .map_err(found)?;
        if (first.len() as u64) < MANIFEST_FIRST_WINDOW {
            // The whole manifest, in the one request a whole get would have made.
            let json = self.codec.decode_manifest(&key, first, &what)?;
            let head = manifest::read_slice(&json, name, version, &mut sink)?;
            return Ok((head, sink));
        }
        let _large = LARGE_MANIFESTS
            .acquire()
            .await
            .expect("the large-manifest semaphore is never closed");
        let (owned_name, owned_version) = (name.to_owned(), version.to_owned());
        if self.codec.cipher().is_some() {
            drop(first);
            // Opened whole (frame and plaintext at once): one past the limit is refused unread.
            let raw = self
                .backend
                .get_range(&key, 0..MAX_SEALED_MANIFEST + 1)
                .await
                .map_err(found)?;
            if raw.len() as u64 > MAX_SEALED_MANIFEST {
                return Err(Error::integrity(
                    &what,
                    format!(
                        "it is larger than {MAX_SEALED_MANIFEST} bytes, the most a sealed manifest may hold"
                    ),
                ));
            }
            let json = self.codec.decode_manifest(&key, raw, &what)?;
            return cpu_work(json.len(), move || {
                manifest::read_slice(&json, &owned_name, &owned_version, &mut sink)
                    .map(|head| (head, sink))
            })
            .await?;
        }
        // Refuses a sealed frame in a plain vault, as for a small manifest.
        let first = self.codec.decode_manifest(&key, first, &what)?;
        // Up to MANIFEST_WHOLE bytes are read in one more request and parsed in memory: parsing
        // from a reader takes about twice as long, so only a larger manifest pays for its
        // bounded memory that way. The request starts over from 0 rather than joining two
        // buffers: re-reading 64 KiB is cheaper than holding a copy.
        drop(first);
        let first = self
            .backend
            .get_range(&key, 0..MANIFEST_WHOLE)
            .await
            .map_err(found)?;
        if (first.len() as u64) < MANIFEST_WHOLE {
            return cpu_work(first.len(), move || {
                manifest::read_slice(&first, &owned_name, &owned_version, &mut sink)
                    .map(|head| (head, sink))
            })
            .await?;
        }
        let failed = Arc::new(Mutex::new(None));
        let reader = |first: Bytes| {
            std::io::BufReader::with_capacity(
                MANIFEST_BUFFER,
                WindowReader {
                    backend: Arc::clone(&self.backend),
                    key: key.clone(),
                    runtime: tokio::runtime::Handle::current(),
                    next: first.len() as u64,
                    end: false,
                    buf: first,
                    failed: Arc::clone(&failed),
                },
            )
        };
        let (from_start, again) = (reader(first), reader(Bytes::new()));
        let parsed = tokio::task::spawn_blocking(move || {
            manifest::read_from(from_start, &owned_name, &owned_version, &mut sink, || again)
                .map(|head| (head, sink))
        })
        .await
        .map_err(|e| {
            Error::new(
                ErrorKind::BackendError,
                format!("internal task failed: {e}"),
            )
        })?;
        // A window that could not be read is that error (not found, network), not damage.
        let read_error = failed.lock().unwrap_or_else(|p| p.into_inner()).take();
        match (parsed, read_error) {
            (Ok(parsed), _) => Ok(parsed),
            (Err(_), Some(e)) => Err(found(e)),
            (Err(e), None) => Err(e),
        }
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

    /// Every chunk in the vault with its stored size: [`Vault::list_chunks`] without the
    /// listing's keys and times, so a vault of millions of chunks lists in a fraction of the
    /// memory.
    pub async fn chunk_sizes(&self) -> Result<HashMap<ChunkId, u64>> {
        let legacy = || async {
            self.backend
                .list(layout::CHUNKS_PREFIX)
                .try_filter_map(|meta| {
                    futures::future::ready(Ok(
                        ChunkId::from_key(&meta.key).map(|id| (id, meta.size))
                    ))
                })
                .try_collect::<HashMap<ChunkId, u64>>()
                .await
        };
        let Some(packed) = &self.packed else {
            return legacy().await;
        };
        // In a format-2 vault: every indexed chunk whose pack is stored and long enough to
        // hold it, plus format-1 chunk objects in a migrated vault.
        let packs = self.pack_sizes().await?;
        let mut sizes = if packed.config.legacy_chunks {
            legacy().await?
        } else {
            HashMap::new()
        };
        let indexed: Vec<(ChunkId, u64)> = self
            .with_index(|index| {
                index
                    .iter()
                    .filter_map(|(id, at)| {
                        let end = u64::from(at.offset) + u64::from(at.len);
                        let fits = packs.get(&at.pack).is_some_and(|&size| end <= size);
                        (at.pack != index::LEGACY && fits).then_some((id, u64::from(at.len)))
                    })
                    .collect()
            })
            .await?;
        sizes.extend(indexed);
        Ok(sizes)
    }

    /// Every pack in the vault with its stored size.
    pub async fn pack_sizes(&self) -> Result<HashMap<pack::PackId, u64>> {
        self.backend
            .list(pack::PACKS_PREFIX)
            .try_filter_map(|meta| {
                futures::future::ready(Ok(
                    pack::PackId::from_key(&meta.key).map(|id| (id, meta.size))
                ))
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

/// Passes a manifest's chunks on to `sink` and keeps a copy of the list while it is short: a
/// tree version's listing chunks are needed to read the listing, a long file's list is not.
struct Tee<S> {
    sink: S,
    kept: Option<Vec<ChunkRef>>,
}

/// The most chunks [`Tee`] keeps: a listing of up to 512 MiB at 128 KiB chunks (millions of
/// files), while gc and verify, reading many manifests at once, hold little per manifest.
const TEE_KEEP: usize = 4096;

impl<S: ChunkSink> ChunkSink for Tee<S> {
    fn chunk(&mut self, c: ChunkRef) {
        if let Some(kept) = &mut self.kept {
            if kept.len() < TEE_KEEP {
                kept.push(c);
            } else {
                self.kept = None;
            }
        }
        self.sink.chunk(c);
    }
}

/// The first read of a manifest asks for this much: a manifest of up to a few hundred chunks
/// fits, so reading it is one request, as a whole get was, and the many reads `verify` and `gc`
/// keep in flight hold little each.
const MANIFEST_FIRST_WINDOW: u64 = 64 * 1024;
/// A plain manifest up to this size is read whole and parsed in memory; a larger one (over
/// ~150,000 chunks) is parsed as it is read. Unit tests take both paths with smaller manifests.
const MANIFEST_WHOLE: u64 = if cfg!(test) { 2 << 20 } else { 16 << 20 };
/// Each further read of a manifest larger than that asks for this much.
const MANIFEST_WINDOW: u64 = 1024 * 1024;
/// The parser's buffer over those windows.
const MANIFEST_BUFFER: usize = 64 * 1024;
/// Manifests larger than the first window read at once in this process: each holds up to
/// [`MANIFEST_WHOLE`] bytes (or, encrypted, its whole frame and plaintext) and a blocking thread
/// while it is parsed.
static LARGE_MANIFESTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Trees read whole at once by [`Vault::read_manifest_deep`] in this process: gc and verify
/// read many manifests at once, and a tree's listing is held whole while it is read (about
/// 300 bytes per entry).
static TREES: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// A plain manifest read window by window, for a parser on the blocking pool. A window that
/// cannot be read is recorded in `failed`, so the caller reports that error and not the parse
/// error it causes.
struct WindowReader {
    backend: DynBackend,
    key: String,
    runtime: tokio::runtime::Handle,
    /// Offset of the next window.
    next: u64,
    /// Whether the last window read was short: the object ends there.
    end: bool,
    buf: Bytes,
    failed: Arc<Mutex<Option<Error>>>,
}

impl std::io::Read for WindowReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            if self.end {
                return Ok(0);
            }
            let range = self.next..self.next + MANIFEST_WINDOW;
            match self
                .runtime
                .block_on(self.backend.get_range(&self.key, range))
            {
                Ok(window) => {
                    self.end = (window.len() as u64) < MANIFEST_WINDOW;
                    self.next += window.len() as u64;
                    self.buf = window;
                }
                Err(e) => {
                    let shown = e.to_string();
                    *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    return Err(std::io::Error::other(shown));
                }
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}

/// The largest sealed manifest (64 MiB, about 500,000 chunks): an encrypted vault's manifest
/// is opened whole, frame and plaintext at once, so this bounds the memory it costs.
pub const MAX_SEALED_MANIFEST: u64 = 64 * 1024 * 1024;

/// Decodes a chunk's frame and checks it against its id and the length the manifest gives.
fn check_plain(codec: &Codec, id: ChunkId, size: u64, frame: Bytes) -> Result<Bytes> {
    // Decoding checks the length against the manifest's; the id check is ours.
    let plain = codec.decode_chunk(id, frame, size)?;
    if codec.chunk_id(&plain) != id {
        return Err(Error::integrity(
            format!("chunk {id}"),
            "content does not match its id",
        ));
    }
    Ok(plain)
}

/// The most frame bytes one ranged read of a run of chunks fetches.
pub const RUN_BYTES: u64 = 8 << 20;

/// Bytes a chunk's stored object may exceed its uncompressed frame by before it is refused.
const FRAME_SLACK: u64 = 4096;

/// The largest descriptor read (1 MiB; one with the most key slots is a few KiB): a larger
/// object at `ldv-vault.json` is damage, refused without being read whole.
pub const MAX_DESCRIPTOR_LEN: u64 = 1 << 20;

/// Reads the stored descriptor, at most [`MAX_DESCRIPTOR_LEN`] bytes of it.
async fn read_descriptor(backend: &DynBackend) -> Result<Bytes> {
    let raw = backend
        .get_range(DESCRIPTOR_KEY, 0..MAX_DESCRIPTOR_LEN + 1)
        .await?;
    if raw.len() as u64 > MAX_DESCRIPTOR_LEN {
        return Err(Error::new(
            ErrorKind::IntegrityCheckFailed,
            format!(
                "vault descriptor {backend}/{DESCRIPTOR_KEY} is damaged: it is larger than {MAX_DESCRIPTOR_LEN} bytes"
            ),
        ));
    }
    Ok(raw)
}

/// Reads a stored descriptor. One that does not parse, or holds values `init` never writes, is
/// damage (integrity); a newer format or an algorithm this build lacks is configuration.
pub(crate) fn parse_descriptor(raw: &[u8], location: &str) -> Result<Descriptor> {
    #[derive(Deserialize)]
    struct Probe {
        format: u32,
    }
    let unreadable = |e: serde_json::Error| {
        Error::new(
            ErrorKind::IntegrityCheckFailed,
            format!("vault descriptor {location}/{DESCRIPTOR_KEY} is unreadable: {e}"),
        )
    };
    let probe: Probe = serde_json::from_slice(raw).map_err(unreadable)?;
    if probe.format != VAULT_FORMAT && probe.format != FORMAT_1 {
        return Err(Error::config(format!(
            "vault at {location} has format {}, which this ldv does not read (it reads formats {FORMAT_1} and {VAULT_FORMAT})",
            probe.format
        )));
    }
    let d: Descriptor = serde_json::from_slice(raw).map_err(unreadable)?;
    let damaged = |why: String| {
        Error::new(
            ErrorKind::IntegrityCheckFailed,
            format!("vault descriptor {location}/{DESCRIPTOR_KEY} is damaged: {why}"),
        )
    };
    match (&d.packs, d.format) {
        (None, FORMAT_1) => {}
        (Some(p), VAULT_FORMAT) => {
            if !pack::TARGET_RANGE.contains(&p.target) {
                return Err(damaged(format!(
                    "its pack target of {} bytes is outside {}..={}",
                    p.target,
                    pack::TARGET_RANGE.start(),
                    pack::TARGET_RANGE.end()
                )));
            }
            if p.grace_secs == 0 || p.grace_secs > 366 * 24 * 3600 {
                return Err(damaged(format!(
                    "its gc grace of {} s is outside 1 s..=1 year",
                    p.grace_secs
                )));
            }
        }
        (None, _) => return Err(damaged("format 2 without its `packs` settings".into())),
        (Some(_), _) => return Err(damaged("format 1 with format 2's `packs` settings".into())),
    }
    if d.hash != "sha256" {
        return Err(Error::config(format!(
            "vault at {location} uses hash {:?}, which this ldv does not support",
            d.hash
        )));
    }
    if let Some(header) = &d.encryption
        && header.chunk_id != "hmac-sha256"
    {
        return Err(Error::config(format!(
            "vault at {location} makes chunk ids with {:?}, which this ldv does not support",
            header.chunk_id
        )));
    }
    if let Some(header) = &d.encryption {
        let damaged = |why: String| {
            Error::new(
                ErrorKind::IntegrityCheckFailed,
                format!("vault descriptor {location}/{DESCRIPTOR_KEY} is damaged: {why}"),
            )
        };
        if header.slots.len() > crypto::MAX_SLOTS {
            return Err(damaged(format!(
                "it lists {} key slots, more than the {} ldv opens",
                header.slots.len(),
                crypto::MAX_SLOTS
            )));
        }
        // Checked before any slot is tried: a slot asking for terabytes or billions of passes
        // must not cost anything, nor may many slots together.
        let mut work = 0u64;
        for slot in &header.slots {
            if let crypto::SlotKind::Passphrase { kdf } = &slot.kind {
                kdf.check_bounds()
                    .map_err(|why| damaged(format!("key slot {}: {why}", slot.id)))?;
                work += kdf.work();
            }
        }
        if work > crypto::MAX_KDF_WORK {
            return Err(damaged(format!(
                "its passphrase slots ask for {} MiB-passes of KDF work together, more than the {} ldv runs to open a vault",
                work / 1024,
                crypto::MAX_KDF_WORK / 1024
            )));
        }
    }
    d.chunker.validate().map_err(|e| {
        Error::new(
            ErrorKind::IntegrityCheckFailed,
            format!(
                "vault descriptor {location}/{DESCRIPTOR_KEY} is damaged: its chunker is one ldv never writes ({})",
                e.message()
            ),
        )
    })?;
    Ok(d)
}

fn descriptor_bytes(descriptor: &Descriptor) -> Bytes {
    Bytes::from(
        serde_json::to_vec_pretty(descriptor)
            .expect("a descriptor always serializes: it holds only strings and numbers"),
    )
}

fn not_encrypted(location: &str) -> Error {
    Error::config(format!(
        "vault at {location} is not encrypted; it has no keys"
    ))
}

/// Finds the vault key in the first slot `key` opens.
async fn unlock(
    header: &EncryptionHeader,
    vault_id: &str,
    key: &dyn KeyProvider,
    location: &str,
) -> Result<Unlocked> {
    for slot in &header.slots {
        if let Some(vault_key) = key.unwrap(slot, vault_id).await? {
            tracing::debug!(
                "opened the vault at {location} through key slot {}",
                slot.id
            );
            return Ok(Unlocked {
                vault_key,
                slot: slot.id.clone(),
            });
        }
    }
    Err(crypto::wrong_key(location, &key.describe()))
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
        for format in [FORMAT_1, VAULT_FORMAT] {
            let backend: DynBackend = Arc::new(MemoryBackend::new());
            let options = VaultOptions {
                format,
                ..VaultOptions::default()
            };
            let (vault, _) =
                Vault::init_with(Arc::clone(&backend), ChunkerConfig::default(), &options)
                    .await
                    .unwrap();
            assert_eq!(vault.format(), format);
            let data = Bytes::from_static(b"some chunk");
            let id = ChunkId::of(&data);
            let chunk = codec::PlainChunk::copy_from(&data);
            assert!(matches!(
                vault.put_chunk(id, &chunk).await.unwrap(),
                ChunkWrite::Uploaded(_)
            ));
            let frame_len = data.len() + codec::HEADER_LEN;
            assert_eq!(
                vault.put_chunk(id, &chunk).await.unwrap(),
                ChunkWrite::Existed(frame_len as u64)
            );
            vault.flush().await.unwrap();
            assert_eq!(vault.get_chunk(id, data.len() as u64).await.unwrap(), data);
            // A fresh process finds it through the index alone.
            let fresh = Vault::open(Arc::clone(&backend)).await.unwrap();
            assert_eq!(fresh.get_chunk(id, data.len() as u64).await.unwrap(), data);
            // The frame's last byte flipped, wherever the format keeps it.
            let (key, at) = if format == FORMAT_1 {
                (id.key(), frame_len - 1)
            } else {
                let packs = backend.list_all(pack::PACKS_PREFIX).await.unwrap();
                assert_eq!(packs.len(), 1, "one pack holds the chunk");
                (packs[0].key.clone(), frame_len - 1)
            };
            let mut damaged = backend.get(&key).await.unwrap().to_vec();
            damaged[at] ^= 1;
            backend
                .put(&key, Bytes::from(damaged), PutMode::Overwrite)
                .await
                .unwrap();
            let err = vault.get_chunk(id, data.len() as u64).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::IntegrityCheckFailed);
            assert_eq!(vault.stats().integrity_checks_failed, 1);
        }
    }

    #[tokio::test]
    async fn a_format_2_put_writes_packs_then_an_index_and_no_chunk_objects() {
        let backend: DynBackend = Arc::new(MemoryBackend::new());
        let options = VaultOptions {
            packs: PackConfig {
                target: 1 << 20,
                ..PackConfig::default()
            },
            ..VaultOptions::default()
        };
        let (vault, _) = Vault::init_with(Arc::clone(&backend), ChunkerConfig::default(), &options)
            .await
            .unwrap();
        let mut ids = Vec::new();
        for i in 0..40u32 {
            let data: Vec<u8> = (0..64 * 1024).map(|j| (i * 7 + j) as u8).collect();
            let id = ChunkId::of(&data);
            vault
                .put_chunk(id, &codec::PlainChunk::copy_from(&data))
                .await
                .unwrap();
            ids.push((id, data));
        }
        // Before the flush nothing is indexed: a crash here leaves only unindexed packs.
        assert!(
            backend
                .list_all(index::INDEX_PREFIX)
                .await
                .unwrap()
                .is_empty()
        );
        vault.flush().await.unwrap();
        let packs = backend.list_all(pack::PACKS_PREFIX).await.unwrap();
        assert!((2..=4).contains(&packs.len()), "{} packs", packs.len());
        assert_eq!(
            backend.list_all(index::INDEX_PREFIX).await.unwrap().len(),
            1
        );
        assert!(
            backend
                .list_all(layout::CHUNKS_PREFIX)
                .await
                .unwrap()
                .is_empty()
        );
        let fresh = Vault::open(Arc::clone(&backend)).await.unwrap();
        for (id, data) in &ids {
            assert_eq!(
                &fresh.get_chunk(*id, data.len() as u64).await.unwrap()[..],
                &data[..]
            );
            // Known from the index: stored again as nothing.
            assert!(matches!(
                fresh
                    .put_chunk(*id, &codec::PlainChunk::copy_from(data))
                    .await
                    .unwrap(),
                ChunkWrite::Existed(_)
            ));
        }
        fresh.flush().await.unwrap();
        assert_eq!(
            backend.list_all(index::INDEX_PREFIX).await.unwrap().len(),
            1
        );
        assert_eq!(fresh.chunk_sizes().await.unwrap().len(), ids.len());
    }

    /// A manifest of `chunks` one-byte chunks whose JSON is `len` bytes long (padded through
    /// its metadata).
    fn manifest_of_len(chunks: u64, len: usize) -> Manifest {
        let mut m = Manifest {
            format: 1,
            name: "big/one".into(),
            version: layout::new_version(SystemTime::now()),
            size: chunks,
            sha256: "0".repeat(64),
            chunker: ChunkerConfig::default(),
            // Stored with millisecond precision.
            created_at: std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123),
            content_type: None,
            metadata: [("pad".to_owned(), String::new())].into(),
            tree: None,
            chunks: (0..chunks)
                .map(|i| manifest::ChunkRef {
                    offset: i,
                    size: 1,
                    id: ChunkId::of(&(i % 1000).to_le_bytes()),
                    stored: Some(20 + i % 7),
                })
                .collect(),
        };
        let short = m.to_bytes().len();
        assert!(
            short <= len,
            "{chunks} chunks take {short} bytes, more than {len}"
        );
        // In entries of 1,000 bytes: a streamed manifest refuses long strings.
        let mut need = len - short;
        for i in 0.. {
            if need <= 1100 {
                break;
            }
            // `,"p0000000":"…"`: 1,014 bytes.
            m.metadata.insert(format!("p{i:07}"), "p".repeat(1000));
            need -= 1014;
        }
        m.metadata.insert("pad".into(), "p".repeat(need));
        assert_eq!(m.to_bytes().len(), len);
        m
    }

    #[tokio::test]
    async fn manifests_of_every_size_around_the_windows_read_back_whole() {
        let first = MANIFEST_FIRST_WINDOW as usize;
        let window = MANIFEST_WINDOW as usize;
        for encrypt in [false, true] {
            let backend: DynBackend = Arc::new(MemoryBackend::new());
            let options = if encrypt {
                encrypted(raw(1), CompressionConfig::NONE)
            } else {
                VaultOptions::default()
            };
            let (vault, _) = Vault::init_with(backend, ChunkerConfig::default(), &options)
                .await
                .unwrap();
            let whole = MANIFEST_WHOLE as usize;
            for (chunks, len) in [
                (3, 800),
                (400, first - 1),
                (400, first),
                (400, first + 1),
                (15_000, whole - 1),
                (15_000, whole),
                (15_000, whole + 1),
                (25_000, whole + window),
                (30_000, whole + 2 * window + 17),
            ] {
                let m = manifest_of_len(chunks, len);
                vault.commit(&m).await.unwrap();
                let read = vault.manifest(&m.name, &m.version).await.unwrap();
                assert!(read == m, "a manifest of {len} bytes read back otherwise");
                let (head, ids) = vault
                    .read_manifest(&m.name, &m.version, std::collections::HashSet::new())
                    .await
                    .unwrap();
                assert_eq!(head.chunk_count, chunks);
                assert_eq!(ids.len() as u64, chunks.min(1000));
            }
        }
    }

    #[tokio::test]
    async fn a_window_that_cannot_be_read_is_that_error_not_damage() {
        use crate::backend::layer::faulty::{Fault, FaultRule, FaultyBackend, Op};
        let faulty = Arc::new(FaultyBackend::new(Arc::new(MemoryBackend::new())));
        let backend: DynBackend = faulty.clone();
        let (vault, _) = Vault::init(backend, ChunkerConfig::default())
            .await
            .unwrap();
        let m = manifest_of_len(30_000, (MANIFEST_WHOLE + 2 * MANIFEST_WINDOW) as usize);
        vault.commit(&m).await.unwrap();
        for kind in [ErrorKind::NotFound, ErrorKind::PermissionDenied] {
            faulty.clear();
            // The first window and the rest of MANIFEST_WHOLE read; a later window fails.
            faulty.add(
                FaultRule::new(Op::Get, Fault::Permanent(kind))
                    .on_keys("manifests/")
                    .skip(2),
            );
            let err = vault.manifest(&m.name, &m.version).await.unwrap_err();
            assert_eq!(err.kind(), kind, "{err}");
        }
        // A window cut short mid-document is damage.
        faulty.clear();
        faulty.add(
            FaultRule::new(Op::Get, Fault::ShortBody)
                .on_keys("manifests/")
                .skip(2)
                .times(1),
        );
        let err = vault.manifest(&m.name, &m.version).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IntegrityCheckFailed, "{err}");
        faulty.clear();
        let read = vault.manifest(&m.name, &m.version).await.unwrap();
        assert!(read == m, "the manifest read back otherwise");
    }

    #[tokio::test]
    async fn a_plain_vault_refuses_a_large_sealed_manifest() {
        let backend: DynBackend = Arc::new(MemoryBackend::new());
        let (vault, _) = Vault::init(Arc::clone(&backend), ChunkerConfig::default())
            .await
            .unwrap();
        let version = layout::new_version(SystemTime::now());
        let mut sealed = codec::MAGIC.to_vec();
        sealed.resize(3 * MANIFEST_FIRST_WINDOW as usize, 7);
        backend
            .put(
                &layout::manifest_key("x", &version),
                Bytes::from(sealed),
                PutMode::CreateOnly,
            )
            .await
            .unwrap();
        let err = vault.manifest("x", &version).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IntegrityCheckFailed);
        assert!(err.to_string().contains("sealed frame"), "{err}");
    }

    fn encrypted(key: Arc<dyn KeyProvider>, compression: CompressionConfig) -> VaultOptions {
        VaultOptions {
            compression,
            encryption: Some(EncryptionOptions {
                cipher: Cipher::Aes256Gcm,
                key,
            }),
            ..VaultOptions::default()
        }
    }

    fn raw(byte: u8) -> Arc<dyn KeyProvider> {
        Arc::new(keys::RawKey::new(KeyBytes::new([byte; 32]), "test"))
    }

    #[tokio::test]
    async fn encrypted_vaults_need_their_key_and_a_matching_profile() {
        let backend: DynBackend = Arc::new(MemoryBackend::new());
        let zstd = CompressionConfig {
            algorithm: codec::Algorithm::Zstd,
            level: 3,
            min_size: 0,
        };
        let (vault, created) = Vault::init_with(
            Arc::clone(&backend),
            ChunkerConfig::default(),
            &encrypted(raw(1), zstd),
        )
        .await
        .unwrap();
        assert!(created);
        let data = Bytes::from(b"secret text ".repeat(1000));
        let id = vault.codec().chunk_id(&data);
        assert_ne!(id, ChunkId::of(&data), "chunk ids are keyed");
        let write = vault
            .put_chunk(id, &codec::PlainChunk::copy_from(&data))
            .await
            .unwrap();
        assert!(write.stored() < data.len() as u64 / 10, "{write:?}");
        vault.flush().await.unwrap();
        for meta in backend.list_all("").await.unwrap() {
            let stored = backend.get(&meta.key).await.unwrap();
            assert!(!stored.windows(6).any(|w| w == b"secret"), "{}", meta.key);
        }
        assert_eq!(vault.get_chunk(id, data.len() as u64).await.unwrap(), data);

        let e = Vault::open_with(Arc::clone(&backend), &encrypted(raw(2), zstd))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        let e = Vault::open(Arc::clone(&backend)).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ConfigurationError);
        assert!(e.message().contains("is encrypted"), "{e}");
        let mut chacha = encrypted(raw(1), zstd);
        chacha.encryption.as_mut().unwrap().cipher = Cipher::ChaCha20Poly1305;
        let e = Vault::open_with(Arc::clone(&backend), &chacha)
            .await
            .unwrap_err();
        assert!(e.message().contains("encrypted with aes-256-gcm"), "{e}");

        let plain: DynBackend = Arc::new(MemoryBackend::new());
        Vault::init(Arc::clone(&plain), ChunkerConfig::default())
            .await
            .unwrap();
        let e = Vault::open_with(plain, &encrypted(raw(1), zstd))
            .await
            .unwrap_err();
        assert!(e.message().contains("is not encrypted"), "{e}");
    }

    #[tokio::test]
    async fn keys_are_added_and_removed_without_touching_data() {
        let backend: DynBackend = Arc::new(MemoryBackend::new());
        let none = CompressionConfig::NONE;
        let (mut vault, _) = Vault::init_with(
            Arc::clone(&backend),
            ChunkerConfig::default(),
            &encrypted(raw(1), none),
        )
        .await
        .unwrap();
        let data = Bytes::from_static(b"kept across key changes");
        let id = vault.codec().chunk_id(&data);
        vault
            .put_chunk(id, &codec::PlainChunk::copy_from(&data))
            .await
            .unwrap();
        vault.flush().await.unwrap();
        let first = vault.opened_slot().unwrap().to_owned();
        let added = vault.add_key(raw(2).as_ref()).await.unwrap();
        let e = vault.remove_key("nope").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        vault.remove_key(&first).await.unwrap();
        let e = vault.remove_key(&added.id).await.unwrap_err();
        assert!(e.message().contains("only key"), "{e}");

        assert_eq!(
            Vault::open_with(Arc::clone(&backend), &encrypted(raw(1), none))
                .await
                .unwrap_err()
                .kind(),
            ErrorKind::PermissionDenied
        );
        let reopened = Vault::open_with(Arc::clone(&backend), &encrypted(raw(2), none))
            .await
            .unwrap();
        assert_eq!(reopened.opened_slot(), Some(added.id.as_str()));
        assert_eq!(
            reopened.get_chunk(id, data.len() as u64).await.unwrap(),
            data
        );
    }
}
