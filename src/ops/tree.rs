//! Tree versions (format 2): a directory put, or a put of several sources, commits one version
//! whose content is the tree's listing (see [`crate::store::tree`]): every file, directory and
//! symlink with its mode, times and, for files, chunks and SHA-256. Putting a tree again reuses
//! the entries of files whose size, modification and status-change times and inode are those
//! of the previous tree, without reading them. This module walks, stores and commits trees and
//! resolves `NAME/path` and `NAME@VERSION/path` inside them.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::ops::put::{self, FileJob, PutOptions, Skipped};
use crate::report::{NoReporter, Reporter};
use crate::store::Vault;
use crate::store::layout::{self, ChunkId, ObjectRef};
use crate::store::manifest::{MANIFEST_FORMAT, Manifest};
use crate::store::tree::{self, Entry, FileChunk, Kind, Time, Tree};

/// One source of a tree put and where it goes in the tree.
#[derive(Debug, Clone)]
pub struct TreeSource {
    /// Path on disk.
    pub path: PathBuf,
    /// Its path in the tree; empty for a directory whose contents make the tree's root.
    pub at: Vec<u8>,
}

/// What a tree put stored.
#[derive(Debug, Clone, Serialize)]
pub struct TreeReceipt {
    /// Tree name.
    pub name: String,
    /// The new version.
    pub version: String,
    /// Entries in the tree.
    pub entries: u64,
    /// Regular files.
    pub files: u64,
    /// Directories.
    pub dirs: u64,
    /// Symlinks.
    pub symlinks: u64,
    /// Content bytes of the files.
    pub size: u64,
    /// SHA-256 of the tree's listing.
    pub sha256: String,
    /// The version whose entries unchanged files reused, if any.
    pub previous: Option<String>,
    /// Files read (new or changed since the previous version).
    pub files_read: u64,
    /// Bytes of those files.
    pub bytes_read: u64,
    /// Files taken unread from the previous version (same size, times and inode).
    pub files_reused: u64,
    /// Bytes of those files.
    pub bytes_reused: u64,
    /// Chunks uploaded (listing included).
    pub new_chunks: u64,
    /// Bytes uploaded.
    pub bytes_uploaded: u64,
    /// Content bytes read that the vault already held.
    pub bytes_deduplicated: u64,
    /// Whether every entry of the sources was stored; when not, `skipped` names what was not
    /// and the put exits with the code for "committed, incomplete".
    pub complete: bool,
    /// Entries not stored, in path order.
    pub skipped: Vec<Skipped>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// The entries of a walk, each file with the path it is read from.
#[derive(Default)]
struct Walk {
    entries: Vec<(Entry, Option<PathBuf>)>,
    skipped: Vec<Skipped>,
}

fn time(secs: i64, nanos: i64) -> Time {
    Time {
        secs,
        nanos: u32::try_from(nanos).unwrap_or(0).min(999_999_999),
    }
}

/// The entry for `meta` (from `lstat`) at tree path `at`, without content.
fn entry_of(at: Vec<u8>, kind: Kind, meta: &std::fs::Metadata) -> Entry {
    Entry {
        path: at,
        kind,
        mode: meta.mode() & tree::MODE_BITS,
        mtime: time(meta.mtime(), meta.mtime_nsec()),
        ctime: time(meta.ctime(), meta.ctime_nsec()),
        inode: meta.ino(),
        size: 0,
        sha256: [0; 32],
        chunks: Vec::new(),
        target: Vec::new(),
    }
}

fn joined(dir: &[u8], name: &[u8]) -> Vec<u8> {
    if dir.is_empty() {
        return name.to_vec();
    }
    let mut p = Vec::with_capacity(dir.len() + 1 + name.len());
    p.extend_from_slice(dir);
    p.push(b'/');
    p.extend_from_slice(name);
    p
}

/// Walks the sources into entries sorted by path. Symlinks are recorded, never followed
/// (a source named on the command line is followed); sockets, FIFOs and devices, entries that
/// cannot be examined, listed or read as links, and paths a tree cannot hold are skipped, each
/// with its reason. A directory source to be the root must be listable.
fn walk(name: &str, sources: &[TreeSource]) -> Result<Walk> {
    let mut w = Walk::default();
    // Directories to list: (path on disk, path in the tree).
    let mut roots: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for src in sources {
        if src.at.is_empty() {
            std::fs::read_dir(&src.path)
                .map_err(|e| Error::io("read directory", src.path.display(), e))?;
            roots.push((src.path.clone(), Vec::new()));
        } else {
            let meta = std::fs::metadata(&src.path)
                .map_err(|e| Error::io("read", src.path.display(), e))?;
            add(&mut w, &mut roots, src.path.clone(), src.at.clone(), &meta);
        }
    }
    let (listed, unlisted) = list_all(roots);
    w.entries.extend(listed.entries);
    w.skipped.extend(listed.skipped);
    if !unlisted.is_empty() {
        // A directory that could not be listed goes too: restored empty, it would be wrong.
        let unlisted: std::collections::HashSet<Vec<u8>> = unlisted.into_iter().collect();
        w.entries.retain(|(e, _)| !unlisted.contains(&e.path));
    }
    // Sorted through an index: moving the entries themselves cost more than comparing paths.
    let mut order: Vec<usize> = (0..w.entries.len()).collect();
    order.sort_unstable_by(|&a, &b| w.entries[a].0.path.cmp(&w.entries[b].0.path));
    let mut slots: Vec<Option<(Entry, Option<PathBuf>)>> =
        w.entries.into_iter().map(Some).collect();
    w.entries = order
        .into_iter()
        .map(|i| slots[i].take().expect("each index once"))
        .collect();
    if let Some(pair) = w.entries.windows(2).find(|p| p[0].0.path == p[1].0.path) {
        return Err(Error::config(format!(
            "two sources would both be stored as {name}/{}; put them under different names",
            pair[0].0.path_lossy()
        )));
    }
    Ok(w)
}

/// Threads listing directories at once: a listing and the `lstat` of every entry are system
/// calls that wait on the file system, or, when it is cached, keep a core busy each.
const WALKERS: usize = 4;

/// Lists `roots` and every directory below them, [`WALKERS`] directories at a time. Returns
/// what was found (unsorted) and the tree paths of directories that could not be listed.
fn list_all(roots: Vec<(PathBuf, Vec<u8>)>) -> (Walk, Vec<Vec<u8>>) {
    struct Queue {
        dirs: Vec<(PathBuf, Vec<u8>)>,
        busy: usize,
    }
    let shared = (
        std::sync::Mutex::new(Queue {
            dirs: roots,
            busy: 0,
        }),
        std::sync::Condvar::new(),
    );
    let walker = || {
        let (lock, ready) = &shared;
        let (mut w, mut unlisted, mut found) = (Walk::default(), Vec::new(), Vec::new());
        loop {
            let (dir, at) = {
                let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if let Some(next) = q.dirs.pop() {
                        q.busy += 1;
                        break next;
                    }
                    if q.busy == 0 {
                        ready.notify_all();
                        return (w, unlisted);
                    }
                    q = ready.wait(q).unwrap_or_else(|p| p.into_inner());
                }
            };
            // Unsorted: the walk sorts every entry by path at the end.
            let listed =
                std::fs::read_dir(&dir).and_then(|d| d.collect::<std::io::Result<Vec<_>>>());
            match listed {
                Ok(items) => {
                    for item in items {
                        let path = item.path();
                        // `DirEntry::metadata` does not follow a symlink.
                        match item.metadata() {
                            Ok(meta) => {
                                let child = joined(&at, item.file_name().as_bytes());
                                add(&mut w, &mut found, path, child, &meta);
                            }
                            Err(e) => w
                                .skipped
                                .push(Skipped::new(&path, format!("cannot be examined: {e}"))),
                        }
                    }
                }
                Err(e) => {
                    w.skipped
                        .push(Skipped::new(&dir, format!("cannot be listed: {e}")));
                    unlisted.push(at);
                }
            }
            let mut q = lock.lock().unwrap_or_else(|p| p.into_inner());
            q.dirs.append(&mut found);
            q.busy -= 1;
            ready.notify_all();
        }
    };
    let parts: Vec<(Walk, Vec<Vec<u8>>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WALKERS).map(|_| s.spawn(walker)).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a walker thread does not panic"))
            .collect()
    });
    let mut all = Walk::default();
    let mut unlisted = Vec::new();
    for (w, u) in parts {
        all.entries.extend(w.entries);
        all.skipped.extend(w.skipped);
        unlisted.extend(u);
    }
    (all, unlisted)
}

/// Adds the entry at `path` (tree path `at`), queueing a directory for listing.
fn add(
    w: &mut Walk,
    pending: &mut Vec<(PathBuf, Vec<u8>)>,
    path: PathBuf,
    at: Vec<u8>,
    meta: &std::fs::Metadata,
) {
    if let Some(fault) = tree::path_fault(&at) {
        w.skipped
            .push(Skipped::new(&path, format!("cannot be stored: {fault}")));
        return;
    }
    let kind = meta.file_type();
    if kind.is_dir() {
        w.entries
            .push((entry_of(at.clone(), Kind::Dir, meta), None));
        pending.push((path, at));
    } else if kind.is_file() {
        let mut e = entry_of(at, Kind::File, meta);
        e.size = meta.len();
        w.entries.push((e, Some(path)));
    } else if kind.is_symlink() {
        match std::fs::read_link(&path) {
            Ok(target) if target.as_os_str().len() <= tree::MAX_PATH => {
                let mut e = entry_of(at, Kind::Symlink, meta);
                e.target = target.as_os_str().as_bytes().to_vec();
                e.size = e.target.len() as u64;
                w.entries.push((e, None));
            }
            Ok(_) => w
                .skipped
                .push(Skipped::new(&path, "symlink target longer than 4096 bytes")),
            Err(e) => w
                .skipped
                .push(Skipped::new(&path, format!("cannot be read: {e}"))),
        }
    } else {
        w.skipped.push(Skipped::new(
            &path,
            "not a regular file, directory or symlink (socket, FIFO or device)",
        ));
    }
}

/// Whether `now`, a file just walked, is unchanged since `before` was stored: same size,
/// modification and status-change times and inode (what restic and git compare).
fn unchanged(before: &Entry, now: &Entry) -> bool {
    before.kind == Kind::File
        && before.size == now.size
        && before.mtime == now.mtime
        && before.ctime == now.ctime
        && before.inode == now.inode
}

/// The newest version of `name` if it is a tree, read; `None` when the name has no version or
/// its newest is a file. A previous tree that cannot be read is warned about and not used.
async fn previous_tree(
    vault: &Vault,
    name: &str,
    reporter: &Arc<dyn Reporter>,
) -> Result<Option<(Manifest, Tree)>> {
    let versions = vault.versions(name).await?;
    let Some(newest) = versions.last() else {
        return Ok(None);
    };
    let read = async {
        let m = vault.manifest(name, newest).await?;
        if !m.is_tree() {
            return Ok(None);
        }
        let tree = vault.read_tree(&m).await?;
        Ok::<_, Error>(Some((m, tree)))
    };
    match read.await {
        Ok(found) => Ok(found),
        Err(e) if e.kind() == ErrorKind::IntegrityCheckFailed => {
            reporter.on_warning(&format!(
                "not reusing {name}@{newest}: {e}; every file is read"
            ));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Stores the sources as one new tree version of `name`. Unless `reread`, files unchanged since
/// the newest version of `name` (see [`unchanged`]) keep their entries unread, as long as the
/// vault still holds their chunks. Files that cannot be read, or vanish or change while read,
/// are skipped and named; the rest is committed. Nothing is visible until the manifest is
/// written, after every pack and the index segment: an interrupted put commits nothing.
pub async fn put_tree(
    vault: &Arc<Vault>,
    name: &str,
    sources: Vec<TreeSource>,
    opts: &PutOptions,
    reread: bool,
    reporter: &Arc<dyn Reporter>,
) -> Result<TreeReceipt> {
    let started = Instant::now();
    layout::validate_new_name(name)?;
    vault.check_name_fits(name)?;
    if vault.format() < 2 {
        return Err(Error::config(
            "tree versions need a format-2 vault (`ldv migrate`)",
        ));
    }
    let tree_name = name.to_owned();
    // The walk and the reading of the previous tree run side by side.
    let walking = async {
        let walked = tokio::task::spawn_blocking(move || walk(&tree_name, &sources))
            .await
            .map_err(put::task_failed)??;
        tracing::debug!(
            "walked {} entries in {:?}",
            walked.entries.len(),
            started.elapsed()
        );
        Ok::<_, Error>(walked)
    };
    let reading = async {
        let previous = match reread {
            true => None,
            false => previous_tree(vault, name, reporter).await?,
        };
        // The index too: every file the walk finds is looked up in it.
        vault.load_index().await?;
        tracing::debug!(
            "read the previous tree and the index at {:?}",
            started.elapsed()
        );
        Ok(previous)
    };
    let (walked, mut previous) = futures::future::try_join(walking, reading).await?;
    let mut skipped = walked.skipped;
    for s in &skipped {
        reporter.on_warning(&format!("skipped {}: {}", s.path, s.reason));
    }
    tracing::debug!("read the previous tree at {:?}", started.elapsed());
    let mut entries = Vec::with_capacity(walked.entries.len());
    let mut jobs = Vec::new();
    let mut reading = Vec::new();
    let (mut files_reused, mut bytes_reused) = (0u64, 0u64);
    // Both lists are sorted by path: one pass pairs each file with its previous entry, if it
    // is unchanged.
    // The previous tree's entries give up their chunk lists to the files that reuse them.
    let earlier: &mut [Entry] = previous.as_mut().map_or(&mut [], |(_, t)| &mut t.entries);
    let mut cursor = 0;
    let pairs: Vec<Option<usize>> = walked
        .entries
        .iter()
        .map(|(e, source)| {
            source.as_ref()?;
            while earlier.get(cursor).is_some_and(|b| b.path < e.path) {
                cursor += 1;
            }
            earlier
                .get(cursor)
                .filter(|b| b.path == e.path && unchanged(b, e))
                .map(|_| cursor)
        })
        .collect();
    // An unchanged file is reused only while the vault holds every chunk of it outside
    // condemned packs (one look at the index for them all).
    let ids: Vec<ChunkId> = pairs
        .iter()
        .flatten()
        .flat_map(|&j| earlier[j].chunks.iter().map(|c| c.id))
        .collect();
    tracing::debug!("paired with the previous tree at {:?}", started.elapsed());
    let mut held = vault.holds_chunks(&ids).await?.into_iter();
    tracing::debug!("looked up reused chunks at {:?}", started.elapsed());
    for ((mut e, source), before) in walked.entries.into_iter().zip(pairs) {
        if let Some(source) = source {
            let reusable = before.filter(|&j| {
                // Every answer of this file is taken, so the next file starts at its own.
                let mut all = true;
                for h in held.by_ref().take(earlier[j].chunks.len()) {
                    all &= h;
                }
                all
            });
            match reusable {
                Some(j) => {
                    e.sha256 = earlier[j].sha256;
                    e.chunks = std::mem::take(&mut earlier[j].chunks);
                    files_reused += 1;
                    bytes_reused += e.size;
                }
                None => {
                    reading.push(entries.len());
                    jobs.push(FileJob {
                        name: e.path_lossy().into_owned(),
                        path: source,
                        size: Some(e.size),
                    });
                }
            }
        }
        entries.push(e);
    }
    tracing::debug!(
        "matched against the previous tree: {} files to read, {files_reused} reused, at {:?}",
        jobs.len(),
        started.elapsed()
    );
    let bytes_to_read: u64 = jobs.iter().filter_map(|j| j.size).sum();
    reporter.on_start(Some(bytes_to_read), Some(jobs.len() as u64));
    let outcomes = put::store_jobs(vault, &jobs, opts, reporter).await?;
    let mut tally = put::Tally::default();
    let (mut files_read, mut bytes_read) = (0u64, 0u64);
    let mut dropped = vec![false; entries.len()];
    for (i, outcome) in reading.into_iter().zip(outcomes) {
        match outcome {
            Ok(pending) => {
                let e = &mut entries[i];
                hex::decode_to_slice(&pending.sha256, &mut e.sha256)
                    .expect("a put's digest is 64 hex digits");
                e.size = pending.size;
                e.chunks = pending
                    .chunks
                    .iter()
                    .map(|c| FileChunk {
                        id: c.id,
                        size: u32::try_from(c.size).expect("chunks are at most 256 MiB"),
                        stored: u32::try_from(c.stored.unwrap_or(0))
                            .expect("frames are at most a chunk and a header"),
                    })
                    .collect();
                files_read += 1;
                bytes_read += pending.size;
                tally.chunks += pending.tally.chunks;
                tally.new_chunks += pending.tally.new_chunks;
                tally.bytes_uploaded += pending.tally.bytes_uploaded;
                tally.bytes_deduplicated += pending.tally.bytes_deduplicated;
            }
            Err(skip) => {
                dropped[i] = true;
                skipped.push(skip);
            }
        }
    }
    let entries: Vec<Entry> = entries
        .into_iter()
        .zip(dropped)
        .filter_map(|(e, dropped)| (!dropped).then_some(e))
        .collect();
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    let listed = Tree { entries };
    let summary = listed.summary();
    let count = |kind: Kind| listed.entries.iter().filter(|e| e.kind == kind).count() as u64;
    let (dirs, symlinks) = (count(Kind::Dir), count(Kind::Symlink));
    let listing = tree::encode(&listed.entries);
    drop(listed);
    tracing::debug!(
        "stored the files and encoded a listing of {} bytes at {:?}",
        listing.len(),
        started.elapsed()
    );
    // The listing's chunks go into packs of their own, apart from the files' data: reading a
    // tree is then a few ranged reads of listing alone.
    vault.cut_pack().await?;
    let len = listing.len() as u64;
    let pending =
        match same_listing(vault, previous.as_ref().map(|(m, _)| m), &listing, opts).await? {
            Some(pending) => pending,
            None => {
                let quiet: Arc<dyn Reporter> = Arc::new(NoReporter);
                put::put_checked(
                    vault,
                    name,
                    "the tree's listing",
                    Box::new(std::io::Cursor::new(listing)),
                    Some(len),
                    opts,
                    &quiet,
                    |_| Ok(()),
                )
                .await?
            }
        };
    let listing_tally = (pending.tally.new_chunks, pending.tally.bytes_uploaded);
    tracing::debug!("stored the listing at {:?}", started.elapsed());
    let receipt = put::commit(vault, pending, opts, Some(summary)).await?;
    Ok(TreeReceipt {
        name: receipt.name,
        version: receipt.version,
        entries: summary.entries,
        files: summary.files,
        dirs,
        symlinks,
        size: summary.bytes,
        sha256: receipt.sha256,
        previous: previous.map(|(m, _)| m.version),
        files_read,
        bytes_read,
        files_reused,
        bytes_reused,
        new_chunks: tally.new_chunks + listing_tally.0,
        bytes_uploaded: tally.bytes_uploaded + listing_tally.1,
        bytes_deduplicated: tally.bytes_deduplicated,
        complete: skipped.is_empty(),
        skipped,
        elapsed_ms: put::millis(started),
    })
}

/// The listing of `previous` as already stored, when `listing` is byte for byte the same (an
/// unchanged tree), chunked the same way, and the vault holds its chunks: an unchanged re-put
/// then stores nothing but its manifest without chunking and hashing the listing again.
async fn same_listing(
    vault: &Vault,
    previous: Option<&Manifest>,
    listing: &[u8],
    opts: &PutOptions,
) -> Result<Option<put::Pending>> {
    let Some(m) = previous.filter(|m| m.chunker == opts.chunker && m.size == listing.len() as u64)
    else {
        return Ok(None);
    };
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(listing));
    if digest != m.sha256 {
        return Ok(None);
    }
    let ids: Vec<ChunkId> = m.chunks.iter().map(|c| c.id).collect();
    if !vault.holds_chunks(&ids).await?.iter().all(|h| *h) {
        return Ok(None);
    }
    Ok(Some(put::Pending {
        name: m.name.clone(),
        size: m.size,
        sha256: digest,
        chunks: m.chunks.clone(),
        tally: put::Tally {
            chunks: m.chunks.len() as u64,
            new_chunks: 0,
            bytes_uploaded: 0,
            bytes_deduplicated: m.size,
        },
        started: Instant::now(),
    }))
}

/// What a reference names.
#[derive(Debug)]
pub enum Located {
    /// A version of a file.
    Object(Manifest),
    /// A tree version, or a path in one.
    InTree {
        /// The tree version's manifest.
        manifest: Manifest,
        /// Its listing.
        tree: Tree,
        /// The path in the tree (empty for the whole tree).
        path: String,
    },
}

impl Located {
    /// `NAME@VERSION` or `NAME@VERSION/path`, for messages.
    pub fn label(&self) -> String {
        match self {
            Self::Object(m) => format!("{}@{}", m.name, m.version),
            Self::InTree { manifest, path, .. } if path.is_empty() => {
                format!("{}@{}", manifest.name, manifest.version)
            }
            Self::InTree { manifest, path, .. } => {
                format!("{}@{}/{path}", manifest.name, manifest.version)
            }
        }
    }
}

/// Splits `NAME@VERSION/path` into its parts, when `s` has that shape.
fn split_versioned_path(s: &str) -> Option<(&str, &str, &str)> {
    let mut from = 0;
    while let Some(at) = s[from..].find('@').map(|i| from + i) {
        let rest = &s[at + 1..];
        let (version, path) = rest.split_once('/').unwrap_or((rest, ""));
        if layout::is_version(version) && !path.is_empty() {
            return Some((&s[..at], version, path));
        }
        from = at + 1;
    }
    None
}

/// Finds what `r` names: a version of an object, a tree version, or a path in a tree version
/// (`TREE/path`, `TREE/path@VERSION` or `TREE@VERSION/path`, the tree being the longest name
/// that has versions). `None` when no version of any of these exists. A path a tree does not
/// hold is "not found", naming the tree version looked in.
pub async fn locate(vault: &Vault, r: &ObjectRef) -> Result<Option<Located>> {
    if r.version.is_none() {
        if let Some((name, version, path)) = split_versioned_path(&r.name) {
            let m = vault.manifest(name, version).await?;
            return in_tree(vault, m, path).await.map(Some);
        }
    }
    match vault.resolve(r).await {
        Ok(m) if m.is_tree() => return in_tree(vault, m, "").await.map(Some),
        Ok(m) => return Ok(Some(Located::Object(m))),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // The longest name above `r.name` that has a version (of the given version, if one).
    let mut cut = r.name.len();
    while let Some(slash) = r.name[..cut].rfind('/') {
        cut = slash;
        let (name, path) = (&r.name[..slash], &r.name[slash + 1..]);
        let found = match &r.version {
            Some(v) => match vault.manifest(name, v).await {
                Ok(m) => Some(m),
                Err(e) if e.kind() == ErrorKind::NotFound => None,
                Err(e) => return Err(e),
            },
            None => match vault.versions(name).await?.last() {
                Some(newest) => Some(vault.manifest(name, newest).await?),
                None => None,
            },
        };
        match found {
            Some(m) if m.is_tree() => return in_tree(vault, m, path).await.map(Some),
            // A file has no paths below it.
            Some(_) => return Ok(None),
            None => {}
        }
    }
    Ok(None)
}

async fn in_tree(vault: &Vault, manifest: Manifest, path: &str) -> Result<Located> {
    if !manifest.is_tree() {
        return Err(Error::not_found(format!(
            "{}@{}/{path} ({}@{} is a file, not a tree)",
            manifest.name, manifest.version, manifest.name, manifest.version
        )));
    }
    let tree = vault.read_tree(&manifest).await?;
    let path = path.trim_end_matches('/').to_owned();
    if !path.is_empty() && tree.find(path.as_bytes()).is_none() {
        return Err(Error::not_found(format!(
            "{}@{}/{path}",
            manifest.name, manifest.version
        )));
    }
    Ok(Located::InTree {
        manifest,
        tree,
        path,
    })
}

/// What removing paths from a tree committed.
#[derive(Debug, Clone, Serialize)]
pub struct TreeEdit {
    /// Tree name.
    pub name: String,
    /// The version the paths were removed from.
    pub from: String,
    /// The new version, without them.
    pub version: String,
    /// Entries removed (a directory's entries below it included).
    pub removed: u64,
}

/// Commits a new version of tree `m` (listing `tree`) without `paths`; a directory goes with
/// everything below it, which takes `recursive` unless it is empty. Versions are immutable:
/// `m` and older versions keep the paths until they are removed themselves. A path the tree
/// does not hold is "not found" and nothing is committed.
pub async fn remove_paths(
    vault: &Arc<Vault>,
    m: &Manifest,
    tree: Tree,
    paths: &[String],
    recursive: bool,
    parallel: usize,
) -> Result<TreeEdit> {
    let mut gone = vec![false; tree.entries.len()];
    for path in paths {
        let path = path.trim_end_matches('/');
        let at = tree
            .entries
            .binary_search_by(|e| e.path.as_slice().cmp(path.as_bytes()))
            .map_err(|_| Error::not_found(format!("{}@{}/{path}", m.name, m.version)))?;
        gone[at] = true;
        let below = tree.below(path.as_bytes()).len();
        if below > 0 && !recursive {
            return Err(Error::config(format!(
                "{}/{path} is a directory holding {below} entries; `ldv rm -r` removes it with them",
                m.name
            )));
        }
        for flag in &mut gone[at + 1..at + 1 + below] {
            *flag = true;
        }
    }
    let removed = gone.iter().filter(|g| **g).count() as u64;
    let entries: Vec<Entry> = tree
        .entries
        .into_iter()
        .zip(gone)
        .filter_map(|(e, gone)| (!gone).then_some(e))
        .collect();
    let kept = Tree { entries };
    let summary = kept.summary();
    let listing = tree::encode(&kept.entries);
    drop(kept);
    let opts = PutOptions {
        parallel,
        chunker: m.chunker,
        content_type: None,
        metadata: m.metadata.clone(),
    };
    let len = listing.len() as u64;
    let quiet: Arc<dyn Reporter> = Arc::new(NoReporter);
    let pending = put::put_checked(
        vault,
        &m.name,
        "the tree's listing",
        Box::new(std::io::Cursor::new(listing)),
        Some(len),
        &opts,
        &quiet,
        |_| Ok(()),
    )
    .await?;
    let receipt = put::commit(vault, pending, &opts, Some(summary)).await?;
    Ok(TreeEdit {
        name: receipt.name,
        from: m.version.clone(),
        version: receipt.version,
        removed,
    })
}

/// A file of a tree as a version of its own (`TREE/path` at the tree's version), for reading
/// it as any file version is read.
pub fn file_manifest(tree_version: &Manifest, e: &Entry) -> Manifest {
    Manifest {
        format: MANIFEST_FORMAT,
        name: format!("{}/{}", tree_version.name, e.path_lossy()),
        version: tree_version.version.clone(),
        size: e.size,
        sha256: hex::encode(e.sha256),
        chunker: tree_version.chunker,
        created_at: tree_version.created_at,
        content_type: None,
        metadata: Default::default(),
        tree: None,
        chunks: e.chunk_refs(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versioned_paths_split_at_the_version() {
        assert_eq!(
            split_versioned_path("src@20261207T000000000Z-0000abcd/a/b"),
            Some(("src", "20261207T000000000Z-0000abcd", "a/b"))
        );
        assert_eq!(
            split_versioned_path("me@home/x@20261207T000000000Z-0000abcd/y"),
            Some(("me@home/x", "20261207T000000000Z-0000abcd", "y"))
        );
        assert_eq!(
            split_versioned_path("src@20261207T000000000Z-0000abcd"),
            None
        );
        assert_eq!(split_versioned_path("a@b/c"), None);
    }
}
