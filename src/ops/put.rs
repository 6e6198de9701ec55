//! `put`: stream a file, a directory tree or a reader into the vault as a new version. Chunking
//! and reading run on one thread, the whole-content SHA-256 on another, and chunk hashing and
//! uploads on the runtime with at most `parallel` chunks in flight, so memory stays bounded by
//! about `parallel` × the largest chunk whatever the input size. The manifest is written only
//! after every chunk is stored: an interrupted put leaves no visible version.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::ops::Window;
use crate::report::Reporter;
use crate::store::chunker::{Chunker, ChunkerConfig};
use crate::store::codec::{self, PlainChunk};
use crate::store::layout::{self, ChunkId};
use crate::store::manifest::{
    ChunkRef, MANIFEST_FORMAT, Manifest, TREE_MANIFEST_FORMAT, TreeSummary,
};
use crate::store::{ChunkWrite, PreparedChunk, Vault};

/// Settings of a put.
#[derive(Debug, Clone)]
pub struct PutOptions {
    /// Chunks (and small files) in flight at once.
    pub parallel: usize,
    /// How to split content into chunks.
    pub chunker: ChunkerConfig,
    /// MIME type recorded in the manifest.
    pub content_type: Option<String>,
    /// User metadata recorded in the manifest.
    pub metadata: BTreeMap<String, String>,
}

/// What one put stored.
#[derive(Debug, Clone, Serialize)]
pub struct PutReceipt {
    /// Object name.
    pub name: String,
    /// The new version.
    pub version: String,
    /// Content length in bytes.
    pub size: u64,
    /// SHA-256 of the content (compare with `sha256sum`).
    pub sha256: String,
    /// Chunks in the version.
    pub chunks: u64,
    /// Chunks this put uploaded.
    pub new_chunks: u64,
    /// Chunks the vault already held.
    pub existing_chunks: u64,
    /// Bytes written to the backend (framed chunks and the manifest excluded).
    pub bytes_uploaded: u64,
    /// Content bytes that did not need uploading.
    pub bytes_deduplicated: u64,
    /// Wall time of the put in milliseconds.
    pub elapsed_ms: u64,
}

/// What a multi-file put stored.
#[derive(Debug, Clone, Serialize)]
pub struct PutSummary {
    /// One receipt per file, in name order.
    pub objects: Vec<PutReceipt>,
    /// Files stored.
    pub files: u64,
    /// Total content bytes.
    pub size: u64,
    /// Total chunks uploaded.
    pub new_chunks: u64,
    /// Total bytes uploaded.
    pub bytes_uploaded: u64,
    /// Total content bytes deduplicated.
    pub bytes_deduplicated: u64,
    /// Whether every entry of the sources was stored; when not, `skipped` names what was not
    /// and the put exits with the code for "committed, incomplete".
    pub complete: bool,
    /// Entries not stored, in path order: sockets, FIFOs and devices in a tree, symlinked
    /// directories, and files that could not be read or vanished or changed while being read.
    pub skipped: Vec<Skipped>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// An entry of a directory put that was not stored, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// The entry's path as the walk found it.
    pub path: String,
    /// Why it was not stored.
    pub reason: String,
}

impl Skipped {
    pub(crate) fn new(path: &Path, reason: impl Into<String>) -> Self {
        Self {
            path: path.display().to_string(),
            reason: reason.into(),
        }
    }
}

/// Where a failure of the source itself is noted (it could not be opened or read, or it changed
/// while it was read), as opposed to a failure of the vault: a multi-file put skips such a file
/// and stores the rest.
#[derive(Debug, Default)]
struct SourceFault(std::sync::Mutex<Option<String>>);

impl SourceFault {
    fn set(&self, reason: String) {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(reason);
    }

    fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// `result` of opening the source, its error noted as the source's own.
    fn opened(&self, result: std::io::Result<File>, path: &Path) -> Result<File> {
        result.map_err(|e| {
            self.set(format!("cannot be opened: {e}"));
            Error::io("open", path.display(), e)
        })
    }

    /// `result` of a check of the source ([`Stamp`]), its error noted as the source's own.
    fn checked<T>(&self, result: Result<T>) -> Result<T> {
        result
            .inspect_err(|_| self.set("changed while it was read, or could not be checked".into()))
    }
}

/// A source reader that notes its read errors in a [`SourceFault`].
struct Watched<R> {
    inner: R,
    fault: Arc<SourceFault>,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if e.kind() != std::io::ErrorKind::Interrupted {
                self.fault.set(format!("cannot be read: {e}"));
            }
        })
    }
}

/// One source to store under one name.
#[derive(Debug, Clone)]
pub struct FileJob {
    /// Path on disk.
    pub path: PathBuf,
    /// Object name.
    pub name: String,
    /// Size of a regular file when planned; `None` for a pipe or device, read once to its end.
    pub size: Option<u64>,
}

impl FileJob {
    /// Whether the source is a regular file that fits in a single chunk.
    fn is_small(&self, chunker: &ChunkerConfig) -> bool {
        self.size.is_some_and(|len| chunker.is_single_chunk(len))
    }
}

/// What a regular file looked like when ldv opened it. A put checks it again after reading and
/// fails, storing nothing, if the file changed meanwhile: a version must be content that existed.
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl Stamp {
    fn of(file: &File, path: &Path) -> Result<Self> {
        let meta = file
            .metadata()
            .map_err(|e| Error::io("stat", path.display(), e))?;
        Ok(Self {
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }

    /// Fails unless `file` still has this stamp and exactly its length was read.
    fn check(&self, file: &File, read: u64, path: &Path) -> Result<()> {
        let now = Self::of(file, path)?;
        if read == self.len && now.len == self.len && now.modified == self.modified {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "{}: changed while it was read ({} bytes when opened, {read} read, {} now); nothing stored",
                path.display(),
                self.len,
                now.len
            ),
        ))
    }
}

#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) chunks: u64,
    pub(crate) new_chunks: u64,
    pub(crate) bytes_uploaded: u64,
    pub(crate) bytes_deduplicated: u64,
}

impl Tally {
    fn add(&mut self, size: u64, write: ChunkWrite) {
        self.chunks += 1;
        match write {
            ChunkWrite::Uploaded(stored) => {
                self.new_chunks += 1;
                self.bytes_uploaded += stored;
            }
            ChunkWrite::Existed(_) => self.bytes_deduplicated += size,
        }
    }
}

pub(crate) fn millis(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn task_failed(e: tokio::task::JoinError) -> Error {
    Error::new(
        ErrorKind::BackendError,
        format!("internal task failed: {e}"),
    )
}

/// Reads `source` and cuts it into chunks, grouped in batches of consecutive chunks of at least
/// `batch_bytes` (or single chunks, when larger or when `batch_bytes` is 0), then calls `each` on
/// every batch (which computes the chunks' ids: see [`crate::store::identify`]) with at most
/// `parallel` calls in flight, and `then` on each of its results in content order, one at a time.
/// Returns what `then` returned, in content order, and the SHA-256 of the whole content. Reading
/// and chunking run on a blocking thread, the whole-content digest on a thread of its own; queues
/// between them are short, so memory stays bounded by about `parallel` batches. Batches make the
/// hand-offs between threads per batch, not per chunk: a 1 GiB put of 128 KiB chunks went from
/// 36,000 futex calls to a few thousand. `what` names the source in errors.
#[allow(clippy::too_many_arguments)]
pub async fn pipeline<T, U, F, Fut, G, GFut>(
    source: Box<dyn Read + Send>,
    size_hint: Option<u64>,
    what: &str,
    config: ChunkerConfig,
    batch_bytes: usize,
    parallel: usize,
    each: F,
    then: G,
) -> Result<(Vec<U>, String)>
where
    F: Fn(Vec<PlainChunk>) -> Fut,
    Fut: Future<Output = Result<Vec<T>>>,
    G: FnMut(T) -> GFut,
    GFut: Future<Output = Result<U>>,
{
    config.validate()?;

    // Whole-content digest on its own thread, fed the chunks in order.
    let (hash_tx, hash_rx) = mpsc::sync_channel::<Vec<Bytes>>(2);
    let hasher = std::thread::spawn(move || {
        let mut h = Sha256::new();
        for chunk in hash_rx.iter().flatten() {
            h.update(&chunk);
        }
        hex::encode(h.finalize())
    });

    // Chunks come out already framed, so storing them needs no copy.
    let (batch_tx, batch_rx) = tokio::sync::mpsc::channel::<Vec<PlainChunk>>(2);
    let source_name = what.to_owned();
    let chunker = tokio::task::spawn_blocking(move || -> Result<()> {
        let mut chunker = Chunker::new(config, source).with_prefix(&codec::PLAIN_HEADER);
        if let Some(len) = size_hint {
            chunker = chunker.with_size_hint(len);
        }
        let mut batch = Vec::new();
        let mut batched = 0;
        let mut cuts = chunker.peekable();
        while let Some(cut) = cuts.next() {
            let cut = cut.map_err(|e| Error::io("read", &source_name, e))?;
            let chunk = PlainChunk::from_framed(cut.buf)
                .expect("the chunker puts the plain frame header in front of every chunk");
            batched += chunk.len();
            batch.push(chunk);
            if batched < batch_bytes && cuts.peek().is_some() {
                continue;
            }
            let data = batch.iter().map(PlainChunk::data).collect();
            if hash_tx.send(data).is_err()
                || batch_tx.blocking_send(std::mem::take(&mut batch)).is_err()
            {
                // The consumer stopped (it failed); its error is the one to report.
                break;
            }
            batched = 0;
        }
        Ok(())
    });

    // The parallel stage and the ordered one run side by side: while `then` waits (for an
    // upload slot, say), hashing and framing of the next chunks go on.
    let (done_tx, mut done_rx) = tokio::sync::mpsc::channel::<Vec<T>>(parallel.max(1));
    let parallel_stage = async move {
        let mut done = tokio_stream::wrappers::ReceiverStream::new(batch_rx)
            .map(&each)
            .buffered(parallel.max(1));
        while let Some(result) = done.next().await {
            if done_tx.send(result?).await.is_err() {
                // The ordered stage stopped (it failed); its error is the one to report.
                break;
            }
        }
        Ok::<(), Error>(())
    };
    let mut then = then;
    let ordered_stage = async move {
        let mut results = Vec::new();
        while let Some(batch) = done_rx.recv().await {
            for t in batch {
                results.push(then(t).await?);
            }
        }
        Ok::<Vec<U>, Error>(results)
    };
    let (produced, results) = futures::join!(parallel_stage, ordered_stage);
    let results = produced.and(results);
    let chunked = chunker.await.map_err(task_failed)?;
    let results = results?;
    chunked?;
    let sha256 = hasher
        .join()
        .map_err(|_| Error::new(ErrorKind::BackendError, "internal hashing thread failed"))?;
    Ok((results, sha256))
}

/// Stores everything `source` yields as a new version of `name`; `what` names the source in
/// errors (a path, or "stdin").
pub async fn put_reader(
    vault: &Arc<Vault>,
    name: &str,
    what: &str,
    source: Box<dyn Read + Send>,
    size_hint: Option<u64>,
    opts: &PutOptions,
    reporter: &Arc<dyn Reporter>,
) -> Result<PutReceipt> {
    layout::validate_new_name(name)?;
    vault.check_name_fits(name)?;
    let pending = put_checked(vault, name, what, source, size_hint, opts, reporter, |_| {
        Ok(())
    })
    .await?;
    commit(vault, pending, opts, None).await
}

/// A version whose chunks are stored (in a format-2 vault, perhaps not yet flushed) and whose
/// manifest is not yet written.
pub(crate) struct Pending {
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) sha256: String,
    pub(crate) chunks: Vec<ChunkRef>,
    pub(crate) tally: Tally,
    pub(crate) started: Instant,
}

/// [`put_reader`], calling `settled` with the number of bytes read once the content is stored
/// and before the version is committed: an error there commits nothing.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn put_checked(
    vault: &Arc<Vault>,
    name: &str,
    what: &str,
    source: Box<dyn Read + Send>,
    size_hint: Option<u64>,
    opts: &PutOptions,
    reporter: &Arc<dyn Reporter>,
    settled: impl FnOnce(u64) -> Result<()>,
) -> Result<Pending> {
    let started = Instant::now();
    let (stored, sha256) = pipeline(
        source,
        size_hint,
        what,
        opts.chunker,
        vault.batch_bytes(),
        opts.parallel,
        |batch| vault.identify_and_prepare(batch),
        // Frames enter packs in content order: a file reads back in few ranged requests.
        |(size, id, prepared)| async move {
            let write = vault.store_prepared(prepared).await?;
            reporter.on_bytes(size);
            Ok((size, id, write))
        },
    )
    .await?;
    let mut tally = Tally::default();
    let mut chunks = Vec::with_capacity(stored.len());
    let mut offset = 0;
    for (size, id, write) in stored {
        chunks.push(ChunkRef {
            offset,
            size,
            id,
            stored: Some(write.stored()),
        });
        offset += size;
        tally.add(size, write);
    }
    settled(offset)?;
    Ok(Pending {
        name: name.to_owned(),
        size: offset,
        sha256,
        chunks,
        tally,
        started,
    })
}

/// A small file read whole: its content as one chunk, the chunk's id and the content's SHA-256.
type SmallRead = (PlainChunk, ChunkId, String);

/// Reads a small file whole and checks that it did not change meanwhile; a failure of the file
/// itself is noted in `fault`. Blocking.
fn read_small(path: &Path, codec: &codec::Codec, fault: &Arc<SourceFault>) -> Result<SmallRead> {
    let buf = read_checked(path, &codec::PLAIN_HEADER, fault)?;
    let data = &buf[codec::HEADER_LEN..];
    let id = codec.chunk_id(data);
    // In a plain vault the chunk id of a single chunk is the SHA-256 of the whole content.
    let sha256 = if codec.cipher().is_none() {
        id.to_hex()
    } else {
        hex::encode(Sha256::digest(data))
    };
    let chunk = PlainChunk::from_framed(Bytes::from(buf))
        .expect("the buffer starts with the plain frame header");
    Ok((chunk, id, sha256))
}

/// Reads a regular file whole, behind `prefix`, and checks that it did not change while it was
/// read; a failure of the file itself is noted in `fault`. Blocking.
fn read_checked(path: &Path, prefix: &[u8], fault: &Arc<SourceFault>) -> Result<Vec<u8>> {
    let file = fault.opened(File::open(path), path)?;
    let stamp = fault.checked(Stamp::of(&file, path))?;
    let mut buf = Vec::with_capacity(prefix.len() + usize::try_from(stamp.len).unwrap_or(0));
    buf.extend_from_slice(prefix);
    let mut reader = Watched {
        inner: &file,
        fault: Arc::clone(fault),
    };
    reader
        .read_to_end(&mut buf)
        .map_err(|e| Error::io("read", path.display(), e))?;
    let read = (buf.len() - prefix.len()) as u64;
    fault.checked(stamp.check(&file, read, path))?;
    Ok(buf)
}

/// Stores a small file's content, known to be a single chunk, without the pipeline. A failure of
/// the file itself is noted in `fault`.
async fn put_small(
    vault: &Arc<Vault>,
    job: &FileJob,
    fault: &Arc<SourceFault>,
    reporter: &Arc<dyn Reporter>,
) -> Result<Pending> {
    let started = Instant::now();
    let (path, codec, fault) = (job.path.clone(), vault.codec().clone(), Arc::clone(fault));
    let read = tokio::task::spawn_blocking(move || read_small(&path, &codec, &fault))
        .await
        .map_err(task_failed)??;
    finish_small(vault, job, read, started, reporter).await
}

/// Stores what [`read_small`] read of `job`.
async fn finish_small(
    vault: &Arc<Vault>,
    job: &FileJob,
    (chunk, id, sha256): SmallRead,
    started: Instant,
    reporter: &Arc<dyn Reporter>,
) -> Result<Pending> {
    let size = chunk.len() as u64;
    let mut tally = Tally::default();
    let mut chunks = Vec::new();
    if size > 0 {
        let write = vault.put_chunk(id, &chunk).await?;
        tally.add(size, write);
        chunks.push(ChunkRef {
            offset: 0,
            size,
            id,
            stored: Some(write.stored()),
        });
    }
    reporter.on_bytes(size);
    Ok(Pending {
        name: job.name.clone(),
        size,
        sha256,
        chunks,
        tally,
        started,
    })
}

/// Small files read by one job on the blocking pool: one hand-off per batch instead of one
/// per file (thousands of files spent a sixth of their time switching threads).
const SMALL_BATCH_FILES: usize = 32;
/// ...and at most about this many bytes of them.
const SMALL_BATCH_BYTES: u64 = 1 << 20;

/// Files up to this size are read whole, chunked, hashed and framed in one blocking job (with
/// others, up to [`SMALL_BATCH_BYTES`]): a pipeline of threads and channels per file cost more
/// than the work in a tree of thousands of files of tens or hundreds of KiB, and it ran one file
/// at a time.
const WHOLE_READ_MAX: u64 = 4 << 20;

/// What reading a file whole in a batch gave: its chunks in order (each with its id and, in a
/// format-2 vault, its frame) and the SHA-256 of the content.
struct WholeRead {
    chunks: Vec<(PlainChunk, ChunkId, Option<PreparedChunk>)>,
    sha256: String,
}

/// Reads a file of at most [`WHOLE_READ_MAX`] bytes whole, checks that it did not change
/// meanwhile, chunks it and frames its chunks. A failure of the file itself is noted in
/// `fault`. Blocking.
fn read_whole(
    vault: &Vault,
    job: &FileJob,
    chunker: ChunkerConfig,
    fault: &Arc<SourceFault>,
) -> Result<WholeRead> {
    let codec = vault.codec();
    let prepare = |chunk: PlainChunk, id: ChunkId| {
        let prepared = vault.prepare_loaded(id, &chunk);
        (chunk, id, prepared)
    };
    if job.is_small(&chunker) {
        let (chunk, id, sha256) = read_small(&job.path, codec, fault)?;
        let chunks = match chunk.len() {
            0 => Vec::new(),
            _ => vec![prepare(chunk, id)],
        };
        return Ok(WholeRead { chunks, sha256 });
    }
    let path = &job.path;
    let data = read_checked(path, &[], fault)?;
    let sha256 = hex::encode(Sha256::digest(&data));
    let len = data.len() as u64;
    let cuts = Chunker::new(chunker, std::io::Cursor::new(data))
        .with_prefix(&codec::PLAIN_HEADER)
        .with_size_hint(len);
    let mut chunks = Vec::new();
    for cut in cuts {
        let cut = cut.map_err(|e| Error::io("read", path.display(), e))?;
        let chunk = PlainChunk::from_framed(cut.buf)
            .expect("the chunker puts the plain frame header in front of every chunk");
        let id = codec.chunk_id(&chunk.data());
        chunks.push(prepare(chunk, id));
    }
    Ok(WholeRead { chunks, sha256 })
}

/// Stores what [`read_whole`] read of `job`, its chunks in content order.
async fn finish_whole(
    vault: &Arc<Vault>,
    job: &FileJob,
    read: WholeRead,
    started: Instant,
    reporter: &Arc<dyn Reporter>,
) -> Result<Pending> {
    let mut tally = Tally::default();
    let mut chunks = Vec::with_capacity(read.chunks.len());
    let mut offset = 0;
    for (chunk, id, prepared) in read.chunks {
        let size = chunk.len() as u64;
        let write = match prepared {
            Some(prepared) => vault.store_prepared(prepared).await?,
            None => vault.put_chunk(id, &chunk).await?,
        };
        tally.add(size, write);
        chunks.push(ChunkRef {
            offset,
            size,
            id,
            stored: Some(write.stored()),
        });
        offset += size;
        reporter.on_bytes(size);
    }
    Ok(Pending {
        name: job.name.clone(),
        size: offset,
        sha256: read.sha256,
        chunks,
        tally,
        started,
    })
}

/// Stores a batch of files read whole (see [`WHOLE_READ_MAX`]): read, chunked and framed on
/// the blocking pool in one job, then stored one by one; each outcome as [`store_or_skip`]'s.
async fn store_small_batch(
    vault: &Arc<Vault>,
    batch: &[(usize, &FileJob)],
    chunker: ChunkerConfig,
    reporter: &Arc<dyn Reporter>,
) -> Result<Vec<(usize, Result<Pending, Skipped>)>> {
    let started = Instant::now();
    let faults: Vec<Arc<SourceFault>> = batch.iter().map(|_| Arc::default()).collect();
    let jobs: Vec<FileJob> = batch.iter().map(|(_, j)| (*j).clone()).collect();
    // Framing (compressing, sealing) runs in the same job as the reads: on the runtime's
    // threads, thousands of small frames were made one at a time.
    vault.load_index().await?;
    let (this, held) = (Arc::clone(vault), faults.clone());
    let reads = tokio::task::spawn_blocking(move || {
        jobs.iter()
            .zip(&held)
            .map(|(job, fault)| read_whole(&this, job, chunker, fault))
            .collect::<Vec<Result<_>>>()
    })
    .await
    .map_err(task_failed)?;
    let mut out = Vec::with_capacity(batch.len());
    for ((&(i, job), read), fault) in batch.iter().zip(reads).zip(&faults) {
        let outcome = match read {
            Ok(read) => Ok(finish_whole(vault, job, read, started, reporter).await?),
            Err(e) => Err(skip_or_fail(e, fault, job, reporter)?),
        };
        out.push((i, outcome));
    }
    Ok(out)
}

/// A failure storing `job`: a skip (warned about) when `fault` says the file itself failed,
/// else the error, which fails the put.
fn skip_or_fail(
    e: Error,
    fault: &SourceFault,
    job: &FileJob,
    reporter: &Arc<dyn Reporter>,
) -> Result<Skipped> {
    match fault.take() {
        Some(reason) => {
            reporter.on_warning(&format!("skipped {}: {reason}", job.path.display()));
            Ok(Skipped::new(&job.path, reason))
        }
        None => Err(e),
    }
}

/// Writes the manifest of a stored version (after making its chunks durable).
pub(crate) async fn commit(
    vault: &Vault,
    pending: Pending,
    opts: &PutOptions,
    tree: Option<TreeSummary>,
) -> Result<PutReceipt> {
    let Pending {
        name,
        size,
        sha256,
        chunks,
        tally,
        started,
    } = pending;
    let name = name.as_str();
    let mut manifest = Manifest {
        format: if tree.is_some() {
            TREE_MANIFEST_FORMAT
        } else {
            MANIFEST_FORMAT
        },
        name: name.to_owned(),
        version: String::new(),
        size,
        sha256,
        chunker: opts.chunker,
        created_at: crate::time::now_millis(),
        content_type: opts.content_type.clone(),
        metadata: opts.metadata.clone(),
        tree,
        chunks,
    };
    // A version collision needs the same millisecond and random suffix: retry with a new one.
    for _ in 0..5 {
        manifest.created_at = crate::time::now_millis();
        manifest.version = layout::new_version(manifest.created_at);
        match vault.commit(&manifest).await {
            Err(e) if e.kind() == ErrorKind::Conflict => continue,
            other => other?,
        }
        return Ok(PutReceipt {
            name: manifest.name,
            version: manifest.version,
            size,
            sha256: manifest.sha256,
            chunks: tally.chunks,
            new_chunks: tally.new_chunks,
            existing_chunks: tally.chunks - tally.new_chunks,
            bytes_uploaded: tally.bytes_uploaded,
            bytes_deduplicated: tally.bytes_deduplicated,
            elapsed_ms: millis(started),
        });
    }
    Err(Error::new(
        ErrorKind::Conflict,
        format!("{name}: could not pick an unused version"),
    ))
}

/// Stores one file as a new version of `job.name`.
pub async fn put_file(
    vault: &Arc<Vault>,
    job: &FileJob,
    opts: &PutOptions,
    reporter: &Arc<dyn Reporter>,
) -> Result<PutReceipt> {
    vault.check_name_fits(&job.name)?;
    let fault = Arc::default();
    let pending = store_file(vault, job, opts, &fault, reporter).await?;
    let receipt = commit(vault, pending, opts, None).await?;
    reporter.on_file_done(&job.name);
    Ok(receipt)
}

/// Stores one file's content, leaving its version to commit. A failure of the file itself (it
/// could not be opened or read, or changed while it was read) is noted in `fault`.
async fn store_file(
    vault: &Arc<Vault>,
    job: &FileJob,
    opts: &PutOptions,
    fault: &Arc<SourceFault>,
    reporter: &Arc<dyn Reporter>,
) -> Result<Pending> {
    let pending = if job.is_small(&opts.chunker) {
        put_small(vault, job, fault, reporter).await?
    } else {
        let path = &job.path;
        let file = fault.opened(File::open(path), path)?;
        let what = path.display().to_string();
        match job.size {
            // A pipe or device: whatever it yields is the content.
            None => {
                let reader = Watched {
                    inner: file,
                    fault: Arc::clone(fault),
                };
                put_checked(
                    vault,
                    &job.name,
                    &what,
                    Box::new(reader),
                    None,
                    opts,
                    reporter,
                    |_| Ok(()),
                )
                .await?
            }
            Some(_) => {
                let stamp = fault.checked(Stamp::of(&file, path))?;
                let reader = Watched {
                    inner: fault.opened(file.try_clone(), path)?,
                    fault: Arc::clone(fault),
                };
                put_checked(
                    vault,
                    &job.name,
                    &what,
                    Box::new(reader),
                    Some(stamp.len),
                    opts,
                    reporter,
                    |read| fault.checked(stamp.check(&file, read, path)),
                )
                .await?
            }
        }
    };
    Ok(pending)
}

/// [`store_file`] for one file of a multi-file put: a failure of the file itself skips it
/// (`Ok(Err(..))`, with a warning naming it); a failure of the vault fails the put.
async fn store_or_skip(
    vault: &Arc<Vault>,
    job: &FileJob,
    opts: &PutOptions,
    reporter: &Arc<dyn Reporter>,
) -> Result<Result<Pending, Skipped>> {
    let fault = Arc::new(SourceFault::default());
    match store_file(vault, job, opts, &fault, reporter).await {
        Ok(pending) => Ok(Ok(pending)),
        Err(e) => Ok(Err(skip_or_fail(e, &fault, job, reporter)?)),
    }
}

/// Stores the content of many files, leaving their versions to commit: one-chunk ones many at a
/// time (see [`Window`]: they are latency-bound), large ones one after another (each is already
/// parallel inside). The outcomes are in `jobs`' order; a file that cannot be read, or vanishes
/// or changes while being read, is an `Err` naming it (and warned about).
pub(crate) async fn store_jobs(
    vault: &Arc<Vault>,
    jobs: &[FileJob],
    opts: &PutOptions,
    reporter: &Arc<dyn Reporter>,
) -> Result<Vec<Result<Pending, Skipped>>> {
    let window = Window::new(opts.parallel);
    let (small, large): (Vec<_>, Vec<_>) = jobs.iter().enumerate().partition(|(_, j)| {
        j.is_small(&opts.chunker) || j.size.is_some_and(|len| len <= WHOLE_READ_MAX)
    });
    let mut batches: Vec<Vec<(usize, &FileJob)>> = Vec::new();
    let mut bytes = 0;
    for (i, job) in small {
        let size = job.size.unwrap_or(0);
        match batches.last_mut() {
            Some(b) if b.len() < SMALL_BATCH_FILES && bytes + size <= SMALL_BATCH_BYTES => {
                bytes += size;
                b.push((i, job));
            }
            _ => {
                bytes = size;
                batches.push(vec![(i, job)]);
            }
        }
    }
    let stored: Vec<Vec<(usize, Result<Pending, Skipped>)>> = futures::stream::iter(&batches)
        .map(|batch| {
            let window = &window;
            async move {
                let size = batch.iter().map(|(_, j)| j.size.unwrap_or(0)).sum();
                let _held = window.admit(size).await;
                store_small_batch(vault, batch, opts.chunker, reporter).await
            }
        })
        .buffer_unordered(window.width())
        .try_collect()
        .await?;
    let mut outcomes: Vec<(usize, Result<Pending, Skipped>)> =
        stored.into_iter().flatten().collect();
    for (i, job) in large {
        outcomes.push((i, store_or_skip(vault, job, opts, reporter).await?));
    }
    outcomes.sort_unstable_by_key(|(i, _)| *i);
    Ok(outcomes.into_iter().map(|(_, o)| o).collect())
}

/// Stores many files: one-chunk ones many at a time (see [`Window`]), large ones one after
/// another (each is already parallel inside), and sums up what was stored. A file that cannot
/// be read, or vanishes or changes while being read, is skipped with a warning and listed in the
/// summary beside `skipped` (what the walk already left out); the rest is committed.
pub async fn put_files(
    vault: &Arc<Vault>,
    jobs: Vec<FileJob>,
    skipped: Vec<Skipped>,
    opts: &PutOptions,
    reporter: &Arc<dyn Reporter>,
) -> Result<PutSummary> {
    let started = Instant::now();
    // Every name must fit, and be the name of one source only, before the first upload: a
    // refused put stores nothing at all. (Two sources under one name would make two versions
    // in one put, the newer of them picked by chance.)
    let mut sources = std::collections::HashMap::with_capacity(jobs.len());
    for job in &jobs {
        vault.check_name_fits(&job.name)?;
        if let Some(first) = sources.insert(job.name.as_str(), &job.path) {
            return Err(Error::config(format!(
                "{} and {} would both be stored as {}; put them under different names",
                first.display(),
                job.path.display(),
                job.name
            )));
        }
    }
    let total = jobs.iter().map(|j| j.size).sum::<Option<u64>>();
    reporter.on_start(total, Some(jobs.len() as u64));
    let outcomes = store_jobs(vault, &jobs, opts, reporter).await?;
    let window = Window::new(opts.parallel);
    let mut skipped = skipped;
    let mut stored = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        match outcome {
            Ok(pending) => stored.push(pending),
            Err(skip) => skipped.push(skip),
        }
    }
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    // Every file's content first, then one flush (in a format-2 vault: the last pack and one
    // index segment for the whole put), then the manifests: an interrupted put commits nothing.
    vault.flush().await?;
    let mut objects: Vec<PutReceipt> = futures::stream::iter(stored)
        .map(|pending| async move {
            let name = pending.name.clone();
            let receipt = commit(vault, pending, opts, None).await?;
            reporter.on_file_done(&name);
            Ok::<_, Error>(receipt)
        })
        .buffer_unordered(window.width())
        .try_collect()
        .await?;
    objects.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(PutSummary {
        files: objects.len() as u64,
        size: objects.iter().map(|r| r.size).sum(),
        new_chunks: objects.iter().map(|r| r.new_chunks).sum(),
        bytes_uploaded: objects.iter().map(|r| r.bytes_uploaded).sum(),
        bytes_deduplicated: objects.iter().map(|r| r.bytes_deduplicated).sum(),
        complete: skipped.is_empty(),
        skipped,
        elapsed_ms: millis(started),
        objects,
    })
}

/// A directory tree planned for storing.
#[derive(Debug, Default)]
pub struct TreePlan {
    /// The regular files to store.
    pub jobs: Vec<FileJob>,
    /// Entries that are not stored, and why: sockets, FIFOs, devices, symlinked directories,
    /// dangling symlinks, and entries that cannot be examined, opened or listed.
    pub skipped: Vec<Skipped>,
}

/// The entries of directory `dir`, sorted by name.
pub(crate) fn sorted_entries(dir: &Path) -> std::io::Result<Vec<std::fs::DirEntry>> {
    let mut entries = std::fs::read_dir(dir)?.collect::<std::io::Result<Vec<_>>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    Ok(entries)
}

/// Plans the files of a directory tree as jobs named `prefix/<relative path>`. Every name is
/// checked up front, so a tree holding a name the vault cannot take is refused before anything
/// is stored. Entries that cannot be stored (see [`TreePlan::skipped`]) are left out, each with
/// its reason; `root` itself must be readable.
pub fn plan_tree(root: &Path, prefix: &str, plan: &mut TreePlan) -> Result<()> {
    let entries =
        sorted_entries(root).map_err(|e| Error::io("read directory", root.display(), e))?;
    plan_entries(entries, prefix, plan)
}

fn plan_entries(entries: Vec<std::fs::DirEntry>, prefix: &str, plan: &mut TreePlan) -> Result<()> {
    for entry in entries {
        let path = entry.path();
        let file_name = entry.file_name();
        let Some(segment) = file_name.to_str() else {
            return Err(Error::invalid_key(
                &path.display().to_string(),
                "file name is not valid UTF-8",
            ));
        };
        let name = if prefix.is_empty() {
            segment.to_owned()
        } else {
            format!("{prefix}/{segment}")
        };
        let is_link = entry.file_type().is_ok_and(|t| t.is_symlink());
        let meta = match std::fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) if is_link && e.kind() == std::io::ErrorKind::NotFound => {
                plan.skipped.push(Skipped::new(&path, "dangling symlink"));
                continue;
            }
            Err(e) => {
                plan.skipped
                    .push(Skipped::new(&path, format!("cannot be examined: {e}")));
                continue;
            }
        };
        if meta.is_dir() {
            // Symlinked directories are not followed: they could form cycles.
            if is_link {
                plan.skipped
                    .push(Skipped::new(&path, "symlinked directory not followed"));
                continue;
            }
            match sorted_entries(&path) {
                Ok(below) => plan_entries(below, &name, plan)?,
                Err(e) => plan
                    .skipped
                    .push(Skipped::new(&path, format!("cannot be listed: {e}"))),
            }
        } else if meta.is_file() {
            layout::validate_new_name(&name)
                .map_err(|e| e.context(format!("cannot name {}", path.display())))?;
            if let Err(e) = File::open(&path) {
                plan.skipped
                    .push(Skipped::new(&path, format!("cannot be opened: {e}")));
                continue;
            }
            plan.jobs.push(FileJob {
                path,
                name,
                size: Some(meta.len()),
            });
        } else {
            plan.skipped.push(Skipped::new(
                &path,
                "not a regular file (socket, FIFO or device)",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::{Duration, SystemTime};

    use super::*;

    #[tokio::test]
    async fn files_that_cannot_be_read_are_skipped_and_the_rest_committed() {
        use crate::backend::memory::MemoryBackend;
        use crate::report::NoReporter;
        use crate::store::VaultOptions;

        let backend = Arc::new(MemoryBackend::new());
        let vault = Vault::init_with(backend, ChunkerConfig::default(), &VaultOptions::default())
            .await
            .unwrap()
            .0;
        let vault = Arc::new(vault);
        let dir = tempfile::tempdir().unwrap();
        let job = |file: &str, size: u64| FileJob {
            path: dir.path().join(file),
            name: format!("t/{file}"),
            size: Some(size),
        };
        std::fs::write(dir.path().join("small"), b"small file").unwrap();
        let big: Vec<u8> = (0..3u32 << 20).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(dir.path().join("big"), &big).unwrap();
        // Reading a process's memory at address 0 fails (EIO) even for root: a file that opens
        // but cannot be read.
        std::os::unix::fs::symlink("/proc/self/mem", dir.path().join("unreadable")).unwrap();
        let jobs = vec![
            job("small", 10),
            job("big", big.len() as u64),
            // Planned, then gone before the put reached them: one small, one large.
            job("gone-small", 10),
            job("gone-big", 8 << 20),
            job("unreadable", 0),
        ];
        let earlier = vec![Skipped::new(&dir.path().join("sock"), "not a regular file")];
        let opts = PutOptions {
            parallel: 2,
            chunker: ChunkerConfig::default(),
            content_type: None,
            metadata: BTreeMap::new(),
        };
        let reporter: Arc<dyn Reporter> = Arc::new(NoReporter);
        let summary = put_files(&vault, jobs, earlier, &opts, &reporter)
            .await
            .unwrap();
        let stored: Vec<&str> = summary.objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(stored, ["t/big", "t/small"]);
        assert!(!summary.complete);
        let skipped: Vec<(String, &str)> = summary
            .skipped
            .iter()
            .map(|s| {
                let file = Path::new(&s.path).file_name().unwrap();
                (file.to_string_lossy().into_owned(), s.reason.as_str())
            })
            .collect();
        let names: Vec<&str> = skipped.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            names,
            ["gone-big", "gone-small", "sock", "unreadable"],
            "{skipped:?}"
        );
        assert!(skipped[0].1.starts_with("cannot be opened"), "{skipped:?}");
        assert!(skipped[3].1.starts_with("cannot be read"), "{skipped:?}");
        // What was committed reads back.
        for (name, content) in [("t/small", &b"small file"[..]), ("t/big", &big[..])] {
            let versions = vault.list_versions(name).await.unwrap();
            assert_eq!(versions.len(), 1, "{name}");
            let m = summary.objects.iter().find(|o| o.name == name).unwrap();
            assert_eq!(m.sha256, hex::encode(Sha256::digest(content)), "{name}");
        }
    }

    #[test]
    fn a_stamp_notices_any_change_of_length_or_time() {
        let mut tmp = tempfile::NamedTempFile::new().unwrap();
        tmp.write_all(&[1; 1000]).unwrap();
        let (file, path) = (tmp.as_file(), tmp.path().to_path_buf());
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        file.set_modified(t0).unwrap();
        let stamp = Stamp::of(file, &path).unwrap();
        stamp.check(file, 1000, &path).unwrap();
        // Fewer or more bytes read than the file had.
        assert_eq!(
            stamp.check(file, 999, &path).unwrap_err().kind(),
            ErrorKind::Conflict
        );
        assert_eq!(
            stamp.check(file, 1001, &path).unwrap_err().kind(),
            ErrorKind::Conflict
        );
        // Rewritten in place: same length, new time.
        file.set_modified(t0 + Duration::from_millis(1)).unwrap();
        let err = stamp.check(file, 1000, &path).unwrap_err();
        assert!(
            err.to_string().contains("changed while it was read"),
            "{err}"
        );
        // Truncated, with the old time put back.
        file.set_len(10).unwrap();
        file.set_modified(t0).unwrap();
        assert_eq!(
            stamp.check(file, 1000, &path).unwrap_err().kind(),
            ErrorKind::Conflict
        );
    }
}
