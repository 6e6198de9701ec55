//! The local-directory backend: one file per key under a root directory. Writes go to a temp file
//! in the target directory, are fsynced, renamed into place and the directory fsynced, so a crash
//! leaves the old object or the new one, never a torn file. Large objects (packs, big chunks) are
//! written with direct I/O where the file system allows it, sparing the copy into the page cache.
//! Keys are validated before they become paths, and no symbolic link below the root is followed
//! (nor listed), so no key can reach outside the root.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Deserialize;

use super::{
    Backend, HealthStatus, ObjectMeta, PutMode, TEMP_PREFIX, clip_range, timed, validate_key,
    validate_prefix,
};
use crate::error::{Error, ErrorKind, Result};

/// Profile settings of a local vault (the seed's `LocalFilesystemConfig`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// The vault's root directory.
    pub path: PathBuf,
    /// Create the root directory when it is missing.
    #[serde(default = "yes")]
    pub create_dirs: bool,
    /// fsync every written file and its directory (turn off only for scratch vaults).
    #[serde(default = "yes")]
    pub sync: bool,
}

fn yes() -> bool {
    true
}

impl LocalConfig {
    /// A config for `path` with the safe defaults.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            create_dirs: true,
            sync: true,
        }
    }
}

/// A backend storing each object as a file under a root directory.
#[derive(Debug, Clone)]
pub struct LocalBackend {
    root: PathBuf,
    sync: bool,
    create_root: bool,
}

impl LocalBackend {
    /// A backend over the root directory of `config`. Nothing is created here: the root is made
    /// by the first write (vault creation), and only if `create_dirs` allows, so a mistyped path
    /// never leaves directories behind.
    pub fn new(config: &LocalConfig) -> Result<Self> {
        let root = &config.path;
        if !root.is_absolute() {
            return Err(Error::config(format!(
                "local vault path {} must be absolute",
                root.display()
            )));
        }
        match fs::metadata(root) {
            Ok(m) if !m.is_dir() => {
                return Err(Error::config(format!(
                    "local vault path {} is not a directory",
                    root.display()
                )));
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("open vault directory", root.display(), e)),
        }
        Ok(Self {
            root: root.clone(),
            sync: config.sync,
            create_root: config.create_dirs,
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        validate_key(key)?;
        Ok(self.root.join(key))
    }

    /// Fails when a component of `key`'s path below the root is a symbolic link: a link could
    /// lead a read or a write out of the vault (or loop), and ldv never makes one. Checked
    /// before every access; components from the first missing one on cannot be links.
    fn unlinked(&self, key: &str) -> Result<()> {
        let mut path = self.root.clone();
        for segment in key.split('/') {
            path.push(segment);
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(Error::new(
                        ErrorKind::IntegrityCheckFailed,
                        format!(
                            "{key}: {} is a symbolic link; ldv does not follow links inside a local vault",
                            path.display()
                        ),
                    ));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        Ok(())
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&LocalBackend) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this))
            .await
            .map_err(|e| {
                Error::new(
                    ErrorKind::BackendError,
                    format!("local I/O task failed: {e}"),
                )
            })?
    }

    fn write_atomic(&self, key: &str, path: &Path, data: &[u8], mode: PutMode) -> Result<()> {
        self.unlinked(key)?;
        let dir = path
            .parent()
            .expect("a validated key always has a parent under the root");
        self.ensure_dir(dir)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(dir)
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotADirectory => a_file_is_in_the_way(key),
                _ => Error::io("create temp file in", dir.display(), e),
            })?;
        let written = if self.sync {
            write_object(tmp.as_file_mut(), data).map(drop)
        } else {
            tmp.write_all(data)
        };
        written.map_err(|e| Error::io("write", path.display(), e))?;
        if self.sync {
            tmp.as_file()
                .sync_all()
                .map_err(|e| Error::io("fsync", path.display(), e))?;
        }
        let persisted = match mode {
            PutMode::Overwrite => tmp.persist(path),
            PutMode::CreateOnly => tmp.persist_noclobber(path),
        };
        if let Err(e) = persisted {
            if e.error.kind() == io::ErrorKind::AlreadyExists {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("{key}: already exists"),
                ));
            }
            if e.error.kind() == io::ErrorKind::IsADirectory {
                return Err(a_file_is_in_the_way(key));
            }
            return Err(Error::io("rename into", path.display(), e.error));
        }
        if self.sync {
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// Creates `dir` and its missing parents below the root, fsyncing each parent that gained an
    /// entry; the root itself is created only when the config allows it.
    fn ensure_dir(&self, dir: &Path) -> Result<()> {
        if dir.is_dir() {
            return Ok(());
        }
        if dir == self.root {
            if !self.create_root {
                return Err(Error::not_found(format!(
                    "vault directory {} (create_dirs is off)",
                    self.root.display()
                )));
            }
            fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir.display(), e))?;
            if self.sync {
                if let Some(parent) = dir.parent() {
                    sync_dir(parent)?;
                }
            }
            return Ok(());
        }
        let parent = dir.parent().unwrap_or(&self.root);
        self.ensure_dir(parent)?;
        match fs::create_dir(dir) {
            Ok(()) => {
                if self.sync {
                    sync_dir(parent)?;
                }
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "{}: a stored object is in the way of this directory",
                    dir.display()
                ),
            )),
            Err(e) => Err(Error::io("create directory", dir.display(), e)),
        }
    }

    fn walk(
        &self,
        dir: &Path,
        prefix: &str,
        out: &tokio::sync::mpsc::Sender<Result<ObjectMeta>>,
    ) -> bool {
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return true,
            Err(e) => {
                return out
                    .blocking_send(Err(Error::io("list", dir.display(), e)))
                    .is_ok();
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    return out
                        .blocking_send(Err(Error::io("list", dir.display(), e)))
                        .is_ok();
                }
            };
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with(TEMP_PREFIX) {
                continue;
            }
            let path = entry.path();
            let Ok(rel) = path.strip_prefix(&self.root) else {
                continue;
            };
            let Some(key) = rel.to_str().map(str::to_owned) else {
                continue;
            };
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if file_type.is_dir() {
                let dir_key = format!("{key}/");
                // No valid key lies below a directory this deep: directories nested past the key
                // limit (thousands deep in a damaged vault) are not walked.
                if dir_key.len() >= super::MAX_KEY_LEN {
                    continue;
                }
                if (dir_key.starts_with(prefix) || prefix.starts_with(&dir_key))
                    && !self.walk(&path, prefix, out)
                {
                    return false;
                }
            } else if file_type.is_file() && key.starts_with(prefix) {
                let meta = match entry.metadata() {
                    Ok(m) => m,
                    // Removed between listing and stat: it is no longer there to report.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        return out
                            .blocking_send(Err(Error::io("stat", path.display(), e)))
                            .is_ok();
                    }
                };
                let item = ObjectMeta {
                    key,
                    size: meta.len(),
                    modified: meta.modified().ok(),
                };
                if out.blocking_send(Ok(item)).is_err() {
                    return false;
                }
            }
        }
        true
    }
}

/// Removes temp files (interrupted writes) older than `older_than` below `dir`.
fn sweep_dir(
    dir: &Path,
    older_than: std::time::Duration,
    now: std::time::SystemTime,
    swept: &mut crate::backend::Swept,
) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", dir.display(), e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir.display(), e))?;
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let path = entry.path();
        if file_type.is_dir() {
            sweep_dir(&path, older_than, now, swept)?;
            continue;
        }
        let is_temp = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(TEMP_PREFIX));
        if !is_temp || !file_type.is_file() {
            continue;
        }
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let age = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .unwrap_or_default();
        if age < older_than {
            continue;
        }
        match fs::remove_file(&path) {
            Ok(()) => {
                swept.leftovers += 1;
                swept.bytes += meta.len();
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("remove temp file", path.display(), e)),
        }
    }
    Ok(())
}

/// A local vault cannot hold both `a` and `a/b`: one of them would have to be a directory.
/// Objects at least this large are written with `O_DIRECT` (Linux) when writes are fsynced:
/// the copy into the page cache cost as much CPU as hashing the data on the project's machines
/// (a 1 GiB put: over 1 s of system time, half the CPU of the put), and a fsynced object is not
/// read back soon by the writer.
const DIRECT_FROM: usize = 1 << 20;
/// Alignment of a direct write's buffer, offset and length.
const DIRECT_ALIGN: usize = 4096;
/// Bytes written per direct write, copied through an aligned buffer of this size (one per
/// thread that writes large objects).
const DIRECT_PIECE: usize = 1 << 20;

/// Writes all of `data` to `file` (new and empty): the largest aligned prefix of a large object
/// with `O_DIRECT` where the file system allows it, the rest through the page cache. Returns the
/// bytes written directly.
fn write_object(file: &mut File, data: &[u8]) -> io::Result<usize> {
    #[cfg(target_os = "linux")]
    let done = if data.len() >= DIRECT_FROM && set_direct(file, true) {
        let direct = write_direct(file, &data[..data.len() / DIRECT_ALIGN * DIRECT_ALIGN]);
        if !set_direct(file, false) {
            return Err(io::Error::other("could not leave direct I/O"));
        }
        direct?
    } else {
        0
    };
    #[cfg(not(target_os = "linux"))]
    let done = 0;
    file.write_all(&data[done..])?;
    Ok(done)
}

/// Turns `O_DIRECT` on or off for `file`; false if the file system refused.
#[cfg(target_os = "linux")]
fn set_direct(file: &File, on: bool) -> bool {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: F_GETFL and F_SETFL only read and set the status flags of a descriptor that
    // `file` keeps open for the duration of the call.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return false;
        }
        let flags = if on {
            flags | libc::O_DIRECT
        } else {
            flags & !libc::O_DIRECT
        };
        libc::fcntl(fd, libc::F_SETFL, flags) == 0
    }
}

/// Writes `body` (a multiple of [`DIRECT_ALIGN`] long) to `file` opened for direct I/O, through
/// an aligned buffer; returns how many bytes it wrote. It stops early, leaving the rest to
/// buffered writes, if the file system rejects a direct write (EINVAL) or writes short.
#[cfg(target_os = "linux")]
fn write_direct(file: &mut File, body: &[u8]) -> io::Result<usize> {
    thread_local! {
        static ALIGNED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    ALIGNED.with_borrow_mut(|scratch| {
        if scratch.is_empty() {
            *scratch = vec![0; DIRECT_PIECE + DIRECT_ALIGN];
        }
        let start = scratch.as_ptr().align_offset(DIRECT_ALIGN);
        let aligned = &mut scratch[start..start + DIRECT_PIECE];
        let mut done = 0;
        while done < body.len() {
            let piece = &body[done..body.len().min(done + DIRECT_PIECE)];
            aligned[..piece.len()].copy_from_slice(piece);
            match file.write(&aligned[..piece.len()]) {
                Ok(n) => {
                    done += n;
                    if n < piece.len() {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    })
}

fn a_file_is_in_the_way(key: &str) -> Error {
    Error::new(
        ErrorKind::Conflict,
        format!(
            "{key}: cannot be stored because an object's key is a path prefix of it, or it is one of another's"
        ),
    )
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync directory", dir.display(), e))
}

/// Maps an I/O error on the object at `key` to an error: a path that does not exist, runs
/// through a file, or names a directory is simply a missing object.
fn object_err(op: &str, key: &str, path: &Path, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory => {
            Error::not_found(key)
        }
        _ => Error::io(op, path.display(), e),
    }
}

impl fmt::Display for LocalBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "file://{}", self.root.display())
    }
}

#[async_trait]
impl Backend for LocalBackend {
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<()> {
        let path = self.path(key)?;
        let key = key.to_owned();
        self.blocking(move |b| b.write_atomic(&key, &path, &data, mode))
            .await
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let path = self.path(key)?;
        let k = key.to_owned();
        self.blocking(move |b| {
            b.unlinked(&k)?;
            fs::read(&path)
                .map(Bytes::from)
                .map_err(|e| object_err("read", &k, &path, e))
        })
        .await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let path = self.path(key)?;
        let k = key.to_owned();
        self.blocking(move |b| {
            b.unlinked(&k)?;
            let read = || -> io::Result<Bytes> {
                let mut file = File::open(&path)?;
                let size = file.metadata()?.len();
                let r = clip_range(&range, size);
                let mut buf = vec![0u8; r.len()];
                file.seek(SeekFrom::Start(r.start as u64))?;
                file.read_exact(&mut buf)?;
                Ok(Bytes::from(buf))
            };
            read().map_err(|e| object_err("read", &k, &path, e))
        })
        .await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        let path = self.path(key)?;
        let k = key.to_owned();
        self.blocking(move |b| {
            b.unlinked(&k)?;
            let meta = fs::metadata(&path).map_err(|e| object_err("stat", &k, &path, e))?;
            if !meta.is_file() {
                return Err(Error::not_found(&k));
            }
            Ok(ObjectMeta {
                key: k,
                size: meta.len(),
                modified: meta.modified().ok(),
            })
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        let k = key.to_owned();
        self.blocking(move |b| {
            b.unlinked(&k)?;
            fs::remove_file(&path).map_err(|e| object_err("delete", &k, &path, e))?;
            if b.sync {
                if let Some(dir) = path.parent() {
                    sync_dir(dir)?;
                }
            }
            Ok(())
        })
        .await
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta>> {
        if let Err(e) = validate_prefix(prefix) {
            return futures::stream::once(async { Err(e) }).boxed();
        }
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let this = self.clone();
        let prefix = prefix.to_owned();
        tokio::task::spawn_blocking(move || {
            let root = this.root.clone();
            this.walk(&root, &prefix, &tx);
        });
        tokio_stream::wrappers::ReceiverStream::new(rx).boxed()
    }

    async fn copy(&self, from: &str, to: &str) -> Result<()> {
        let src = self.path(from)?;
        let dst = self.path(to)?;
        let from = from.to_owned();
        let to = to.to_owned();
        self.blocking(move |b| {
            b.unlinked(&from)?;
            let data = fs::read(&src).map_err(|e| object_err("read", &from, &src, e))?;
            b.write_atomic(&to, &dst, &data, PutMode::Overwrite)
        })
        .await
    }

    async fn sweep(&self, older_than: std::time::Duration) -> Result<crate::backend::Swept> {
        self.blocking(move |b| {
            let mut swept = crate::backend::Swept::default();
            if b.root.is_dir() {
                sweep_dir(
                    &b.root,
                    older_than,
                    std::time::SystemTime::now(),
                    &mut swept,
                )?;
            }
            Ok(swept)
        })
        .await
    }

    async fn health(&self) -> Result<HealthStatus> {
        // Probe the root, or the nearest existing ancestor the root would be created in.
        let (probe, latency) = timed(self.blocking(|b| {
            let mut dir = b.root.as_path();
            let mut exists = true;
            while !dir.exists() {
                exists = false;
                dir = dir.parent().unwrap_or(Path::new("/"));
            }
            if !dir.is_dir() {
                return Err(Error::config(format!(
                    "{} is not a directory",
                    dir.display()
                )));
            }
            let tmp = tempfile::Builder::new()
                .prefix(TEMP_PREFIX)
                .tempfile_in(dir)
                .map_err(|e| Error::io("write probe file in", dir.display(), e))?;
            drop(tmp);
            Ok(exists)
        }))
        .await;
        let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        Ok(match probe {
            Ok(exists) => HealthStatus {
                healthy: true,
                latency_ms,
                last_error: None,
                details: vec![
                    (
                        "root".into(),
                        if exists {
                            "exists"
                        } else {
                            "missing (ldv init creates it)"
                        }
                        .into(),
                    ),
                    ("writable".into(), "yes".into()),
                    ("fsync".into(), if self.sync { "on" } else { "off" }.into()),
                    (
                        "create_only".into(),
                        "honoured (link without replace)".into(),
                    ),
                ],
            },
            Err(e) => HealthStatus {
                healthy: false,
                latency_ms,
                last_error: Some(e.to_string()),
                details: vec![],
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Content whose every 4 KiB block differs, so a block written twice or out of place shows.
    fn content(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 251) as u8 ^ (i / 4096) as u8)
            .collect()
    }

    /// Sizes around the direct-write threshold and piece size, with and without unaligned tails.
    const SIZES: [usize; 6] = [
        DIRECT_FROM - 1,
        DIRECT_FROM,
        DIRECT_FROM + 1,
        2 * DIRECT_PIECE,
        3 * DIRECT_PIECE + DIRECT_ALIGN - 1,
        5 * DIRECT_PIECE + 7,
    ];

    /// Whether `file`'s file system takes direct I/O.
    fn direct_allowed(file: &File) -> bool {
        #[cfg(target_os = "linux")]
        {
            let allowed = set_direct(file, true);
            assert!(set_direct(file, false));
            allowed
        }
        #[cfg(not(target_os = "linux"))]
        false
    }

    fn write_and_read_back(dir: &Path) {
        for len in SIZES {
            let data = content(len);
            let path = dir.join(format!("object-{len}"));
            let mut file = File::create(&path).unwrap();
            let direct_io = cfg!(target_os = "linux") && direct_allowed(&file);
            let direct = write_object(&mut file, &data).unwrap();
            let expected = if direct_io && len >= DIRECT_FROM {
                len / DIRECT_ALIGN * DIRECT_ALIGN
            } else {
                0
            };
            assert_eq!(direct, expected, "bytes of {len} written directly");
            file.sync_all().unwrap();
            drop(file);
            assert_eq!(
                fs::read(&path).unwrap(),
                data,
                "{len} bytes in {}",
                dir.display()
            );
        }
    }

    #[test]
    fn large_objects_written_directly_read_back_byte_identical() {
        let dir = tempfile::tempdir().unwrap();
        write_and_read_back(dir.path());
    }

    #[test]
    fn large_objects_read_back_byte_identical_on_tmpfs_too() {
        // tmpfs takes direct I/O on some kernels and not on others (then the write is buffered).
        let shm = Path::new("/dev/shm");
        if !shm.is_dir() {
            return;
        }
        let dir = tempfile::tempdir_in(shm).unwrap();
        write_and_read_back(dir.path());
    }

    #[tokio::test]
    async fn a_fsynced_vault_stores_large_objects_byte_identical() {
        let dir = tempfile::tempdir().unwrap();
        let backend = LocalBackend::new(&LocalConfig::new(dir.path())).unwrap();
        for len in SIZES {
            let data = Bytes::from(content(len));
            let key = format!("packs/ab/{len}");
            backend
                .put(&key, data.clone(), PutMode::Overwrite)
                .await
                .unwrap();
            assert_eq!(backend.get(&key).await.unwrap(), data, "{len} bytes");
        }
    }
}
