//! `get` and `cat`: read a version back, in order, verifying every chunk against its id and the
//! whole content against the manifest's SHA-256. Chunks are fetched `parallel` at a time; writing
//! and whole-content hashing run on their own threads. `get` writes a temp file beside the
//! destination and renames it into place only after everything checked out; `cat` streams to a
//! writer and stops at the first bad chunk.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Instant;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind, Result};
use crate::ops::{Window, fanout};
use crate::report::Reporter;
use crate::store::Vault;
use crate::store::layout::ObjectRef;
use crate::store::manifest::{ChunkRef, Manifest};
use crate::store::tree::{Entry, Kind, Tree};

/// What one get wrote.
#[derive(Debug, Clone, Serialize)]
pub struct GetReceipt {
    /// Object name.
    pub name: String,
    /// Version read.
    pub version: String,
    /// Where the content went.
    pub path: String,
    /// Bytes written.
    pub size: u64,
    /// Verified SHA-256 of the content.
    pub sha256: String,
    /// Chunks read and verified.
    pub chunks: u64,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// What a multi-object get wrote.
#[derive(Debug, Clone, Serialize)]
pub struct GetSummary {
    /// One receipt per object.
    pub objects: Vec<GetReceipt>,
    /// Objects written.
    pub files: u64,
    /// Total bytes written.
    pub size: u64,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// A file being written that asks the kernel to start writing each 32 MiB back to disk as soon
/// as it is complete, so the fsync before the rename has little left to do.
struct Writeback {
    file: tempfile::NamedTempFile,
    written: u64,
    flushed: u64,
}

impl Writeback {
    const STEP: u64 = 32 * 1024 * 1024;

    fn new(file: tempfile::NamedTempFile) -> Self {
        Self {
            file,
            written: 0,
            flushed: 0,
        }
    }
}

impl Write for Writeback {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.flushed >= Self::STEP {
            #[cfg(target_os = "linux")]
            {
                use std::os::fd::AsRawFd;
                let (offset, len) = (self.flushed, self.written - self.flushed);
                // SAFETY: sync_file_range only reads its integer arguments; the descriptor is
                // open for as long as `self.file` lives. It is a hint: its failure is harmless
                // because the fsync before the rename is what guarantees durability.
                unsafe {
                    libc::sync_file_range(
                        self.file.as_file().as_raw_fd(),
                        i64::try_from(offset).unwrap_or(i64::MAX),
                        i64::try_from(len).unwrap_or(i64::MAX),
                        libc::SYNC_FILE_RANGE_WRITE,
                    );
                }
            }
            self.flushed = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Drops the temp-file path tempfile adds to its errors: messages name the destination instead.
fn without_path(e: std::io::Error) -> std::io::Error {
    match e.raw_os_error() {
        Some(code) => std::io::Error::from_raw_os_error(code),
        None => std::io::Error::from(e.kind()),
    }
}

fn task_failed(e: tokio::task::JoinError) -> Error {
    Error::new(
        ErrorKind::BackendError,
        format!("internal task failed: {e}"),
    )
}

/// Streams the bytes `start..end` of `manifest`'s content to `sink`, in order, verifying each
/// chunk; when the range is the whole content the SHA-256 is checked too and returned.
async fn pump<W: Write + Send + 'static>(
    vault: &Arc<Vault>,
    manifest: &Manifest,
    (start, end): (u64, u64),
    parallel: usize,
    sink: W,
    sink_name: String,
    reporter: &Arc<dyn Reporter>,
) -> Result<(W, Option<String>)> {
    let whole = start == 0 && end == manifest.size;
    // The writer and the hasher take a run's pieces at a time: one hand-off per run, not per
    // chunk (a pack's run holds dozens of small chunks).
    let (write_tx, write_rx) = mpsc::sync_channel::<Arc<Vec<Bytes>>>(2);
    let writer = std::thread::spawn(move || -> Result<W> {
        let mut sink = sink;
        for pieces in write_rx {
            for piece in pieces.iter() {
                sink.write_all(piece)
                    .map_err(|e| Error::io("write", &sink_name, e))?;
            }
        }
        sink.flush()
            .map_err(|e| Error::io("write", &sink_name, e))?;
        Ok(sink)
    });
    let (hash_tx, hasher) = if whole {
        let (tx, rx) = mpsc::sync_channel::<Arc<Vec<Bytes>>>(2);
        let handle = std::thread::spawn(move || {
            let mut h = Sha256::new();
            for pieces in rx {
                for piece in pieces.iter() {
                    h.update(piece);
                }
            }
            hex::encode(h.finalize())
        });
        (Some(tx), Some(handle))
    } else {
        (None, None)
    };

    // Chunks are fetched as many at once as the window lets them (each GET waits a round trip
    // before its first byte), bounded by bytes in flight; each holds its share until handed on.
    let range = manifest.chunks_in(start, end);
    let refs = &manifest.chunks[range];
    // Chunks back to back in one pack come in one ranged read (a run).
    let runs = vault
        .read_runs(refs)
        .await
        .map_err(|e| e.context(format!("{}@{}", manifest.name, manifest.version)))?;
    let window = Window::new(parallel);
    let fetched = futures::stream::iter(runs)
        .map(|run| {
            let vault = Arc::clone(vault);
            let window = window.clone();
            let run = &refs[run];
            async move {
                let held = window.admit(run.iter().map(|c| c.size).sum()).await;
                vault
                    .get_run(run)
                    .await
                    .map(|data| (run, data, held))
                    .map_err(|e| e.context(format!("{}@{}", manifest.name, manifest.version)))
            }
        })
        .buffered(window.width());
    let streamed = fetched
        .try_for_each(|(run, datas, _held)| {
            let pieces: Vec<Bytes> = run
                .iter()
                .zip(datas)
                .map(|(c, data)| {
                    let from = start.saturating_sub(c.offset).min(c.size) as usize;
                    let to = (end.min(c.offset + c.size) - c.offset) as usize;
                    data.slice(from..to)
                })
                .collect();
            let len: u64 = pieces.iter().map(|p| p.len() as u64).sum();
            let pieces = Arc::new(pieces);
            let sent = hash_tx
                .as_ref()
                .is_none_or(|tx| tx.send(Arc::clone(&pieces)).is_ok())
                && write_tx.send(pieces).is_ok();
            reporter.on_bytes(len);
            futures::future::ready(if sent {
                Ok(())
            } else {
                // The writer stopped: its own error says why.
                Err(Error::new(ErrorKind::BackendError, "output closed"))
            })
        })
        .await;
    drop(write_tx);
    drop(hash_tx);
    let written = writer
        .join()
        .map_err(|_| Error::new(ErrorKind::BackendError, "internal writer thread failed"))?;
    let digest =
        match hasher {
            Some(h) => Some(h.join().map_err(|_| {
                Error::new(ErrorKind::BackendError, "internal hashing thread failed")
            })?),
            None => None,
        };
    // A writer error comes first: when the output closed, the stream only saw a closed channel.
    // Otherwise a chunk error is the cause (the writer just saw its input end).
    let sink = written?;
    streamed?;
    if let Some(d) = &digest {
        if *d != manifest.sha256 {
            return Err(Error::integrity(
                format!("{}@{}", manifest.name, manifest.version),
                format!(
                    "content SHA-256 is {d}, the manifest says {}",
                    manifest.sha256
                ),
            ));
        }
    }
    Ok((sink, digest))
}

/// Reads a version's whole content in order, as a get would, and discards it: every chunk is
/// checked against its id and the content against the manifest's SHA-256.
pub async fn check_content(
    vault: &Arc<Vault>,
    manifest: &Manifest,
    parallel: usize,
    reporter: &Arc<dyn Reporter>,
) -> Result<()> {
    let range = (0, manifest.size);
    pump(
        vault,
        manifest,
        range,
        parallel,
        std::io::sink(),
        "nowhere".into(),
        reporter,
    )
    .await?;
    Ok(())
}

/// Writes a version's content (or the byte range `start..end` of it) to `out`, verified.
pub async fn cat<W: Write + Send + 'static>(
    vault: &Arc<Vault>,
    manifest: &Manifest,
    range: Option<(u64, u64)>,
    parallel: usize,
    out: W,
    reporter: &Arc<dyn Reporter>,
) -> Result<u64> {
    let (start, end) = match range {
        Some((s, e)) => (
            s.min(manifest.size),
            e.min(manifest.size).max(s.min(manifest.size)),
        ),
        None => (0, manifest.size),
    };
    reporter.on_start(Some(end - start), None);
    pump(
        vault,
        manifest,
        (start, end),
        parallel,
        out,
        "stdout".into(),
        reporter,
    )
    .await?;
    Ok(end - start)
}

/// The file a get writes for `dest`: `dest` itself, or the file a symlink there points to (the
/// link stays, as with `cp`). Anything else that exists there (a FIFO, a device, a socket, a
/// directory) is refused: renaming a file into place would replace it.
pub fn destination(dest: &Path) -> Result<PathBuf> {
    if dest.as_os_str().is_empty() {
        return Err(Error::config("the destination path is empty"));
    }
    let target = match std::fs::symlink_metadata(dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(dest.to_path_buf()),
        Err(e) => return Err(Error::io("stat", dest.display(), e)),
        Ok(meta) if meta.file_type().is_symlink() => {
            std::fs::canonicalize(dest).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Error::config(format!(
                    "{} is a symlink to a missing file; give the path to write",
                    dest.display()
                )),
                _ => Error::io("resolve symlink", dest.display(), e),
            })?
        }
        Ok(_) => dest.to_path_buf(),
    };
    let meta = std::fs::metadata(&target).map_err(|e| Error::io("stat", target.display(), e))?;
    if meta.is_file() {
        Ok(target)
    } else {
        Err(Error::config(format!(
            "{} is not a regular file; get writes files (`ldv cat` streams to anything)",
            dest.display()
        )))
    }
}

/// Writes a version to `dest` atomically: a temp file in the same directory, fsynced, renamed
/// into place only once every chunk and the whole content checked out.
pub async fn get_to_path(
    vault: &Arc<Vault>,
    manifest: &Manifest,
    dest: &Path,
    parallel: usize,
    reporter: &Arc<dyn Reporter>,
) -> Result<GetReceipt> {
    let target = destination(dest)?;
    let (receipt, staged) = stage_large(vault, manifest, &target, dest, parallel, reporter).await?;
    tokio::task::spawn_blocking(move || -> Result<()> {
        let dir = staged.dir();
        std::fs::File::open(&staged.tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io("fsync", staged.dest.display(), e))?;
        staged
            .tmp
            .persist(&staged.dest)
            .map_err(|e| Error::io("rename into", staged.dest.display(), e.error))?;
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("fsync directory", dir.display(), e))
    })
    .await
    .map_err(task_failed)??;
    reporter.on_file_done(&manifest.name);
    Ok(receipt)
}

/// Streams a version into a temp file beside `target`, checked, not yet synced or renamed;
/// `shown` is the destination as the user gave it.
async fn stage_large(
    vault: &Arc<Vault>,
    manifest: &Manifest,
    target: &Path,
    shown: &Path,
    parallel: usize,
    reporter: &Arc<dyn Reporter>,
) -> Result<(GetReceipt, Staged)> {
    let started = Instant::now();
    let tmp = temp_beside(target)?;
    let shown = shown.display().to_string();
    let (tmp, digest) = pump(
        vault,
        manifest,
        (0, manifest.size),
        parallel,
        Writeback::new(tmp),
        shown.clone(),
        reporter,
    )
    .await?;
    let digest = digest.expect("a whole-content read always computes the digest");
    let receipt = GetReceipt {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        path: shown,
        size: manifest.size,
        sha256: digest,
        chunks: manifest.chunks.len() as u64,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let staged = Staged {
        tmp: tmp.file.into_temp_path(),
        dest: target.to_path_buf(),
    };
    Ok((receipt, staged))
}

/// A new, empty temp file in `dest`'s directory, named after it.
fn temp_beside(dest: &Path) -> Result<tempfile::NamedTempFile> {
    use std::os::unix::fs::PermissionsExt;
    let dir = dir_of(dest);
    let file_name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    tempfile::Builder::new()
        .prefix(&format!(".{file_name}.ldv-tmp."))
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(&dir)
        .map_err(|e| Error::io("create file in", dir.display(), without_path(e)))
}

/// A checked file written to a temp path beside its destination, not yet renamed into place.
struct Staged {
    tmp: tempfile::TempPath,
    dest: PathBuf,
}

impl Staged {
    /// The directory the file is renamed in.
    fn dir(&self) -> PathBuf {
        dir_of(&self.dest)
    }
}

/// The directory `path` is in (`.` for a bare file name).
fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Reads a single-chunk (or empty) object, checks its chunk and whole-content SHA-256, and writes
/// it to a temp file beside `dest` without syncing: [`place`] makes a whole batch durable at once.
///
/// The file is written on the blocking pool, where it goes on even when this future is dropped
/// (a sibling file failed). `inflight` is held until that work is over and its temp file is gone
/// with it, so a failed get can wait for every such file before removing the directories it
/// made.
async fn stage_small(
    vault: &Arc<Vault>,
    m: &Manifest,
    dest: PathBuf,
    inflight: &Arc<tokio::sync::RwLock<()>>,
    reporter: &Arc<dyn Reporter>,
) -> Result<(GetReceipt, Staged)> {
    let started = Instant::now();
    let data = match m.chunks.first() {
        Some(c) => vault
            .get_chunk(c.id, c.size)
            .await
            .map_err(|e| e.context(format!("{}@{}", m.name, m.version)))?,
        None => Bytes::new(),
    };
    let plain_ids = vault.codec().cipher().is_none();
    let m = m.clone();
    let shown = dest.display().to_string();
    let held = Arc::clone(inflight).read_owned().await;
    let (written, held) = tokio::task::spawn_blocking(move || {
        // Returned beside the result and dropped after it: a result no one awaits any more
        // (its temp file included) is dropped before the guard.
        let written = (|| -> Result<(Manifest, Staged, String)> {
            // In a plain vault the id of the only chunk, just verified, is the content's SHA-256.
            let digest = match m.chunks.first() {
                Some(c) if plain_ids => c.id.to_hex(),
                _ => hex::encode(Sha256::digest(&data)),
            };
            if digest != m.sha256 || data.len() as u64 != m.size {
                return Err(Error::integrity(
                    format!("{}@{}", m.name, m.version),
                    format!(
                        "content SHA-256 is {digest} ({} bytes), the manifest says {} ({} bytes)",
                        data.len(),
                        m.sha256,
                        m.size
                    ),
                ));
            }
            let target = destination(&dest)?;
            let mut tmp = temp_beside(&target)?;
            tmp.write_all(&data)
                .map_err(|e| Error::io("write", dest.display(), e))?;
            let staged = Staged {
                tmp: tmp.into_temp_path(),
                dest: target,
            };
            Ok((m, staged, digest))
        })();
        (written, held)
    })
    .await
    .map_err(task_failed)?;
    drop(held);
    let (m, staged, digest) = written?;
    reporter.on_bytes(m.size);
    reporter.on_file_done(&m.name);
    let receipt = GetReceipt {
        name: m.name.clone(),
        version: m.version.clone(),
        path: shown,
        size: m.size,
        sha256: digest,
        chunks: m.chunks.len() as u64,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    Ok((receipt, staged))
}

/// Makes staged files durable with one sync of their file system, then renames each into place
/// and syncs every directory that received one: as safe as an fsync per file (no file appears
/// under its name before its content is on disk) at the cost of one sync per batch.
fn place(staged: Vec<Staged>) -> Result<()> {
    use std::os::fd::AsRawFd;
    let Some(first) = staged.first() else {
        return Ok(());
    };
    let probe =
        std::fs::File::open(&first.tmp).map_err(|e| Error::io("open", first.tmp.display(), e))?;
    // SAFETY: syncfs only reads the descriptor, which `probe` keeps open for the call.
    if unsafe { libc::syncfs(probe.as_raw_fd()) } != 0 {
        // Not every file system can sync as a whole; sync each file then.
        for s in &staged {
            std::fs::File::open(&s.tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io("fsync", s.dest.display(), e))?;
        }
    }
    // Renames and directory syncs of different directories run on a few threads at once:
    // thousands of small files spend as long here as being written.
    let mut by_dir: std::collections::BTreeMap<PathBuf, Vec<Staged>> = Default::default();
    for s in staged {
        by_dir.entry(s.dir()).or_default().push(s);
    }
    let placers = PLACERS.min(by_dir.len());
    let mut shares: Vec<Vec<(PathBuf, Vec<Staged>)>> = (0..placers).map(|_| Vec::new()).collect();
    for (i, group) in by_dir.into_iter().enumerate() {
        shares[i % placers].push(group);
    }
    let place_share = |share: Vec<(PathBuf, Vec<Staged>)>| -> Result<()> {
        for (dir, files) in share {
            for s in files {
                s.tmp
                    .persist(&s.dest)
                    .map_err(|e| Error::io("rename into", s.dest.display(), e.error))?;
            }
            std::fs::File::open(&dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::io("fsync directory", dir.display(), e))?;
        }
        Ok(())
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|share| scope.spawn(move || place_share(share)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a placing thread does not panic"))
            .collect::<Result<Vec<()>>>()
    })?;
    Ok(())
}

/// Threads renaming staged files into place at once (see [`place`]).
const PLACERS: usize = 4;

/// The newest version of every object whose name starts with `prefix/`.
pub async fn tree(vault: &Vault, prefix: &str) -> Result<Vec<ObjectRef>> {
    let below = format!("{}/", prefix.trim_end_matches('/'));
    let mut newest: Vec<ObjectRef> = Vec::new();
    for (name, version) in vault.list_versions(&below).await? {
        match newest.last_mut() {
            Some(last) if last.name == name => last.version = Some(version),
            _ => newest.push(ObjectRef {
                name,
                version: Some(version),
            }),
        }
    }
    Ok(newest)
}

/// Writes each object of `refs` (all under `prefix/`) to `dest/<path below prefix>`, creating
/// `dest` and directories below it as needed. Every file is checked and staged beside its
/// destination before any is renamed into place, so a failure leaves nothing behind: no file,
/// and none of the directories it created.
pub async fn get_tree(
    vault: &Arc<Vault>,
    prefix: &str,
    refs: Vec<ObjectRef>,
    dest: &Path,
    parallel: usize,
    reporter: &Arc<dyn Reporter>,
) -> Result<GetSummary> {
    let started = Instant::now();
    if dest.as_os_str().is_empty() {
        return Err(Error::config("the destination directory is empty"));
    }
    let below = format!("{}/", prefix.trim_end_matches('/'));
    let manifests: Vec<Manifest> = futures::stream::iter(refs.iter())
        .map(|r| vault.resolve(r))
        .buffered(fanout(parallel))
        .try_collect()
        .await?;
    // Tree versions below the prefix are restored as directories, after the files.
    let (trees, manifests): (Vec<Manifest>, Vec<Manifest>) =
        manifests.into_iter().partition(Manifest::is_tree);
    let total: u64 = manifests.iter().map(|m| m.size).sum();
    reporter.on_start(Some(total), Some(manifests.len() as u64));
    let path_of = |m: &Manifest| {
        // Names passed validation, so the relative part cannot climb out of `dest`.
        dest.join(m.name.strip_prefix(&below).unwrap_or(&m.name))
    };
    let created = missing_dirs(dest, manifests.iter().map(path_of));
    let inflight = Arc::new(tokio::sync::RwLock::new(()));
    let written = async {
        for dir in &created {
            std::fs::create_dir(dir)
                .map_err(|e| Error::io("create directory", dir.display(), e))?;
        }
        // Single-chunk objects go many at a time (as wide as the window lets them: each costs a
        // round trip), each written whole to a temp file; larger ones one after another, each
        // fetching `parallel` chunks at once, so memory stays bounded by `parallel` chunks.
        let (small, large): (Vec<&Manifest>, Vec<&Manifest>) =
            manifests.iter().partition(|m| m.chunks.len() <= 1);
        let window = Window::new(parallel);
        let mut staged: Vec<(GetReceipt, Staged)> = futures::stream::iter(small)
            .map(|m| {
                let (window, path, inflight) = (&window, path_of(m), &inflight);
                async move {
                    let _held = window.admit(m.size).await;
                    stage_small(vault, m, path, inflight, reporter).await
                }
            })
            .buffer_unordered(window.width())
            .try_collect()
            .await?;
        for m in large {
            let path = path_of(m);
            let target = destination(&path)?;
            staged.push(stage_large(vault, m, &target, &path, parallel, reporter).await?);
            reporter.on_file_done(&m.name);
        }
        // One file-system-wide sync for them all, then the renames.
        let (objects, staged): (Vec<GetReceipt>, Vec<Staged>) = staged.into_iter().unzip();
        tokio::task::spawn_blocking(move || place(staged))
            .await
            .map_err(task_failed)??;
        Ok::<_, Error>(objects)
    }
    .await;
    let mut objects = match written {
        Ok(objects) => objects,
        Err(e) => {
            // Temp files are gone with their handles once the small files still being written
            // have finished; then only empty directories are left.
            let _quiet = inflight.write().await;
            for dir in created.iter().rev() {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(e);
        }
    };
    for m in &trees {
        let listing = vault.read_tree(m).await?;
        let into = path_of(m);
        let restored = restore_tree(vault, m, &listing, "", &into, parallel, reporter).await?;
        objects.extend(restored.objects);
    }
    objects.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(GetSummary {
        files: objects.len() as u64,
        size: objects.iter().map(|o| o.size).sum(),
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        objects,
    })
}

/// The directories, `dest` included, that writing `files` below `dest` needs and that do not
/// exist yet, parents before children.
fn missing_dirs(dest: &Path, files: impl Iterator<Item = PathBuf>) -> Vec<PathBuf> {
    let mut missing = std::collections::BTreeSet::new();
    // Directories already found to exist: many files share a few, each looked up once.
    let mut present = std::collections::BTreeSet::new();
    for file in files {
        let mut dir = file.parent();
        while let Some(d) = dir {
            if !d.starts_with(dest) || missing.contains(d) || present.contains(d) {
                break;
            }
            if d.symlink_metadata().is_ok() {
                present.insert(d.to_path_buf());
                break;
            }
            missing.insert(d.to_path_buf());
            dir = d.parent();
        }
    }
    let mut missing: Vec<PathBuf> = missing.into_iter().collect();
    missing.sort_by_key(|d| d.components().count());
    missing
}

/// Sets the modification time of `path` itself (a symlink is not followed).
fn set_mtime_nofollow(path: &Path, t: crate::store::tree::Time) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let times = [
        libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
        libc::timespec {
            tv_sec: t.secs,
            tv_nsec: i64::from(t.nanos),
        },
    ];
    // SAFETY: `c` is a NUL-terminated path and `times` two timespecs, both alive for the call.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Gives a written (not yet renamed) file the mode and modification time its entry records.
fn set_file_attrs(file: &std::fs::File, e: &Entry) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(t) = e.mtime.to_system() {
        file.set_modified(t)?;
    }
    file.set_permissions(std::fs::Permissions::from_mode(e.mode))
}

/// The path of entry `e` below `dest`, for a restore of the directory `strip` bytes long
/// (with its `/`) at the front of every entry's path.
fn restored_path(dest: &Path, e: &Entry, strip: usize) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    dest.join(std::ffi::OsStr::from_bytes(&e.path[strip..]))
}

/// Fails if something other than a regular file or symlink is at `path`, where a restored
/// file or symlink is renamed into place (the rename replaces a file or a symlink itself,
/// never what a symlink points to).
fn check_replaceable(path: &Path) -> Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => Err(Error::config(format!(
            "{} is a directory; get will not replace it with a file",
            path.display()
        ))),
        _ => Ok(()),
    }
}

/// Restores tree version `m` (its listing `tree`), or only its directory `sub`, into `dest`:
/// every file with its mode and modification time, directories (empty ones too) with theirs,
/// and symlinks as links. Nothing is written outside `dest`: the listing was checked to name
/// only paths below its root, each inside a directory entry, and a directory that already
/// exists below `dest` must be a real directory, not a symlink. Files are checked and staged
/// beside their destinations before any is renamed into place, and symlinks are made last, so
/// no write goes through a link this get made. If staging fails, the directories the get
/// made are removed.
#[allow(clippy::too_many_arguments)]
pub async fn restore_tree(
    vault: &Arc<Vault>,
    m: &Manifest,
    tree: &Tree,
    sub: &str,
    dest: &Path,
    parallel: usize,
    reporter: &Arc<dyn Reporter>,
) -> Result<GetSummary> {
    let started = Instant::now();
    if dest.as_os_str().is_empty() {
        return Err(Error::config("the destination directory is empty"));
    }
    let entries = tree.below(sub.as_bytes());
    let strip = if sub.is_empty() { 0 } else { sub.len() + 1 };
    let files: Vec<&Entry> = entries.iter().filter(|e| e.kind == Kind::File).collect();
    reporter.on_start(
        Some(files.iter().map(|e| e.size).sum()),
        Some(files.len() as u64),
    );

    // Directories first: `dest` (and any missing parents), then every directory entry.
    let dirs: Vec<PathBuf> = entries
        .iter()
        .filter(|e| e.kind == Kind::Dir)
        .map(|e| restored_path(dest, e, strip))
        .collect();
    let root = dest.to_path_buf();
    let created = tokio::task::spawn_blocking(move || -> Result<Vec<PathBuf>> {
        let mut created = missing_dirs(&root, std::iter::once(root.join("x")));
        for dir in &created {
            std::fs::create_dir(dir)
                .map_err(|e| Error::io("create directory", dir.display(), e))?;
        }
        if !std::fs::metadata(&root).is_ok_and(|m| m.is_dir()) {
            return Err(Error::config(format!(
                "{} exists and is not a directory",
                root.display()
            )));
        }
        let made = (|| {
            for dir in &dirs {
                match std::fs::symlink_metadata(dir) {
                    Ok(meta) if meta.is_dir() => {}
                    Ok(_) => {
                        return Err(Error::config(format!(
                            "{} exists and is not a directory; get does not write through it",
                            dir.display()
                        )));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        std::fs::create_dir(dir)
                            .map_err(|e| Error::io("create directory", dir.display(), e))?;
                        created.push(dir.clone());
                    }
                    Err(e) => return Err(Error::io("stat", dir.display(), e)),
                }
            }
            Ok(())
        })();
        match made {
            Ok(()) => Ok(created),
            Err(e) => {
                for dir in created.iter().rev() {
                    let _ = std::fs::remove_dir(dir);
                }
                Err(e)
            }
        }
    })
    .await
    .map_err(task_failed)??;

    let inflight = Arc::new(tokio::sync::RwLock::new(()));
    let staged = stage_tree_files(vault, m, &files, dest, strip, parallel, &inflight, reporter);
    let placed = async {
        let staged = staged.await?;
        tokio::task::spawn_blocking(move || place(staged))
            .await
            .map_err(task_failed)?
    }
    .await;
    if let Err(e) = placed {
        let _quiet = inflight.write().await;
        for dir in created.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
        return Err(e);
    }

    // Symlinks, then the modes and times of directories, deepest first (their contents are
    // all in place, so nothing changes them after).
    let links: Vec<(PathBuf, Entry)> = entries
        .iter()
        .filter(|e| e.kind != Kind::File)
        .map(|e| (restored_path(dest, e, strip), e.clone()))
        .collect();
    tokio::task::spawn_blocking(move || -> Result<()> {
        use std::os::unix::ffi::OsStrExt;
        use std::os::unix::fs::PermissionsExt;
        for (path, e) in links.iter().filter(|(_, e)| e.kind == Kind::Symlink) {
            check_replaceable(path)?;
            let dir = dir_of(path);
            let tmp = dir.join(format!(
                ".{}.ldv-tmp.{:08x}",
                path.file_name().unwrap_or_default().to_string_lossy(),
                rand::random::<u32>()
            ));
            let target = std::ffi::OsStr::from_bytes(&e.target);
            std::os::unix::fs::symlink(target, &tmp)
                .map_err(|err| Error::io("create symlink", path.display(), err))?;
            let _ = set_mtime_nofollow(&tmp, e.mtime);
            std::fs::rename(&tmp, path).map_err(|err| {
                let _ = std::fs::remove_file(&tmp);
                Error::io("rename into", path.display(), err)
            })?;
        }
        for (path, e) in links.iter().rev().filter(|(_, e)| e.kind == Kind::Dir) {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(e.mode))
                .map_err(|err| Error::io("set the mode of", path.display(), err))?;
            set_mtime_nofollow(path, e.mtime)
                .map_err(|err| Error::io("set the time of", path.display(), err))?;
        }
        Ok(())
    })
    .await
    .map_err(task_failed)??;

    let mut objects: Vec<GetReceipt> = files
        .iter()
        .map(|e| GetReceipt {
            name: format!("{}/{}", m.name, e.path_lossy()),
            version: m.version.clone(),
            path: restored_path(dest, e, strip).display().to_string(),
            size: e.size,
            sha256: hex::encode(e.sha256),
            chunks: e.chunks.len() as u64,
            elapsed_ms: 0,
        })
        .collect();
    objects.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(GetSummary {
        files: objects.len() as u64,
        size: objects.iter().map(|o| o.size).sum(),
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        objects,
    })
}

/// Reads, checks and stages the files of a restore. Files of at most one chunk are read in
/// runs: their chunks sorted by where they lie and fetched many per ranged read (a put stores
/// a tree's small files side by side), each run written out on the blocking pool while the
/// next ones are fetched. Larger files are streamed one after another, each `parallel` chunks
/// at a time.
#[allow(clippy::too_many_arguments)]
async fn stage_tree_files(
    vault: &Arc<Vault>,
    m: &Manifest,
    files: &[&Entry],
    dest: &Path,
    strip: usize,
    parallel: usize,
    inflight: &Arc<tokio::sync::RwLock<()>>,
    reporter: &Arc<dyn Reporter>,
) -> Result<Vec<Staged>> {
    let (small, large): (Vec<&Entry>, Vec<&Entry>) =
        files.iter().copied().partition(|e| e.chunks.len() <= 1);
    // (entry, its only chunk) in the order the chunks lie in the vault.
    let mut located: Vec<(&Entry, ChunkRef)> = small
        .iter()
        .filter_map(|e| e.chunk_refs().first().map(|c| (*e, *c)))
        .collect();
    vault.sort_by_location(&mut located, |(_, c)| c.id).await?;
    let refs: Vec<ChunkRef> = located.iter().map(|(_, c)| *c).collect();
    let runs = vault.read_runs(&refs).await?;
    let plain_ids = vault.codec().cipher().is_none();
    let label = format!("{}@{}", m.name, m.version);
    // Empty files need no read: one batch of their own.
    let empties: Vec<(PathBuf, Entry, Bytes)> = small
        .iter()
        .filter(|e| e.chunks.is_empty())
        .map(|e| (restored_path(dest, e, strip), (*e).clone(), Bytes::new()))
        .collect();
    let window = Window::new(parallel);
    let batches = futures::stream::iter(runs)
        .map(|run| {
            let (vault, window, label) = (Arc::clone(vault), window.clone(), &label);
            let (located, refs) = (&located, &refs);
            async move {
                let held = window
                    .admit(refs[run.clone()].iter().map(|c| c.size).sum())
                    .await;
                let data = match vault.get_run(&refs[run.clone()]).await {
                    Ok(data) => data,
                    // Read again chunk by chunk, to name the file whose chunk fails.
                    Err(_) => {
                        let mut data = Vec::with_capacity(run.len());
                        for (e, c) in &located[run.clone()] {
                            let got = vault.get_chunk(c.id, c.size).await.map_err(|err| {
                                err.context(format!("{label}/{}", e.path_lossy()))
                            })?;
                            data.push(got);
                        }
                        data
                    }
                };
                let batch: Vec<(PathBuf, Entry, Bytes)> = located[run]
                    .iter()
                    .zip(data)
                    .map(|((e, _), d)| (restored_path(dest, e, strip), (*e).clone(), d))
                    .collect();
                Ok::<_, Error>((batch, held))
            }
        })
        .buffer_unordered(window.width())
        .map_ok(|(batch, held)| (batch, Some(held)));
    let all = futures::stream::once(async { Ok((empties, None)) }).chain(batches);
    let written: Vec<Vec<Staged>> = all
        .map(|batch| {
            let (inflight, label) = (Arc::clone(inflight), label.clone());
            async move {
                let (batch, _held) = batch?;
                let bytes: u64 = batch.iter().map(|(_, e, _)| e.size).sum();
                let names: Vec<String> = batch
                    .iter()
                    .map(|(_, e, _)| e.path_lossy().into_owned())
                    .collect();
                let guard = inflight.read_owned().await;
                let (staged, guard) = tokio::task::spawn_blocking(move || {
                    let staged = batch
                        .into_iter()
                        .map(|(path, e, data)| stage_tree_file(&label, &path, &e, &data, plain_ids))
                        .collect::<Result<Vec<Staged>>>();
                    (staged, guard)
                })
                .await
                .map_err(task_failed)?;
                drop(guard);
                reporter.on_bytes(bytes);
                for name in &names {
                    reporter.on_file_done(name);
                }
                staged
            }
        })
        .buffer_unordered(2)
        .try_collect()
        .await?;
    let mut staged: Vec<Staged> = written.into_iter().flatten().collect();
    for e in large {
        let path = restored_path(dest, e, strip);
        check_replaceable(&path)?;
        let fm = crate::ops::tree::file_manifest(m, e);
        let (_, one) = stage_large(vault, &fm, &path, &path, parallel, reporter).await?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&one.tmp)
            .map_err(|err| Error::io("open", path.display(), err))?;
        set_file_attrs(&file, e)
            .map_err(|err| Error::io("set the mode and time of", path.display(), err))?;
        reporter.on_file_done(&fm.name);
        staged.push(one);
    }
    Ok(staged)
}

/// Checks one small file's content against its entry and writes it, with its mode and time,
/// to a temp file beside `path`.
fn stage_tree_file(
    label: &str,
    path: &Path,
    e: &Entry,
    data: &[u8],
    plain_ids: bool,
) -> Result<Staged> {
    // In a plain vault the id of the only chunk, just verified, is the content's SHA-256.
    let digest: [u8; 32] = match e.chunks.first() {
        Some(c) if plain_ids => c.id.0,
        _ => Sha256::digest(data).into(),
    };
    if digest != e.sha256 || data.len() as u64 != e.size {
        return Err(Error::integrity(
            format!("{label}/{}", e.path_lossy()),
            format!(
                "content SHA-256 is {} ({} bytes), the tree says {} ({} bytes)",
                hex::encode(digest),
                data.len(),
                hex::encode(e.sha256),
                e.size
            ),
        ));
    }
    check_replaceable(path)?;
    let mut tmp = temp_beside(path)?;
    tmp.write_all(data)
        .map_err(|err| Error::io("write", path.display(), err))?;
    set_file_attrs(tmp.as_file(), e)
        .map_err(|err| Error::io("set the mode and time of", path.display(), err))?;
    Ok(Staged {
        tmp: tmp.into_temp_path(),
        dest: path.to_path_buf(),
    })
}

/// Writes one file of a tree version to `dest` (as `get` writes a version), with the mode and
/// modification time its entry records.
pub async fn get_tree_file(
    vault: &Arc<Vault>,
    m: &Manifest,
    e: &Entry,
    dest: &Path,
    parallel: usize,
    reporter: &Arc<dyn Reporter>,
) -> Result<GetReceipt> {
    let fm = crate::ops::tree::file_manifest(m, e);
    let receipt = get_to_path(vault, &fm, dest, parallel, reporter).await?;
    let path = PathBuf::from(&receipt.path);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(destination(&path)?)
        .map_err(|err| Error::io("open", path.display(), err))?;
    set_file_attrs(&file, e)
        .map_err(|err| Error::io("set the mode and time of", path.display(), err))?;
    Ok(receipt)
}
