//! Trees: the listing a directory put commits as one version. A tree is the content of a tree
//! version (manifest format 2): it is chunked and stored in packs like any content, so a tree
//! that changes little between puts shares most of its chunks with the previous one.
//!
//! The listing is binary, entries sorted by path bytes, and canonical: [`parse`] accepts only
//! what [`encode`] writes, so `encode(parse(b)) == b` for every listing it accepts. Paths are
//! kept as the file system gave them (any bytes but `/` and NUL in a name) and checked so that
//! no entry can name anything outside the tree's root: no empty, `.` or `..` component, no
//! leading or trailing `/`, and every entry's parent is a directory entry of the same tree.

use std::collections::HashSet;

use super::layout::ChunkId;
use super::manifest::{ChunkRef, TreeSummary};

/// The first bytes of every tree listing.
pub const MAGIC: &[u8; 8] = b"LDVTREE1";
/// The longest path or symlink target a tree holds (Linux's `PATH_MAX`).
pub const MAX_PATH: usize = 4096;
/// The permission bits a tree records (and `get` restores): rwx for all three, setuid, setgid
/// and sticky.
pub const MODE_BITS: u32 = 0o7777;

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A directory (listed so that empty ones, modes and times come back).
    Dir,
    /// A regular file.
    File,
    /// A symbolic link, stored as its target, never followed.
    Symlink,
}

impl Kind {
    fn code(self) -> u8 {
        match self {
            Self::Dir => 0,
            Self::File => 1,
            Self::Symlink => 2,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        match code {
            0 => Some(Self::Dir),
            1 => Some(Self::File),
            2 => Some(Self::Symlink),
            _ => None,
        }
    }
}

/// A time as the file system gives it: seconds since the epoch (negative before 1970) and
/// nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Time {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub secs: i64,
    /// Nanoseconds, below 1,000,000,000.
    pub nanos: u32,
}

impl Time {
    /// As a `SystemTime`, when it is one (always, on 64-bit Linux).
    pub fn to_system(self) -> Option<std::time::SystemTime> {
        let epoch = std::time::SystemTime::UNIX_EPOCH;
        if self.secs >= 0 {
            epoch.checked_add(std::time::Duration::new(
                self.secs.unsigned_abs(),
                self.nanos,
            ))
        } else {
            epoch
                .checked_sub(std::time::Duration::from_secs(self.secs.unsigned_abs()))?
                .checked_add(std::time::Duration::from_nanos(u64::from(self.nanos)))
        }
    }
}

/// One chunk of a file in a tree: its id, plaintext size and stored (framed) size. Its offset
/// follows from the chunks before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileChunk {
    /// The chunk's id.
    pub id: ChunkId,
    /// Plaintext length.
    pub size: u32,
    /// Stored frame length when the tree was written.
    pub stored: u32,
}

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path below the tree's root, `/`-separated, as raw bytes.
    pub path: Vec<u8>,
    /// What it is.
    pub kind: Kind,
    /// Permission bits ([`MODE_BITS`]).
    pub mode: u32,
    /// Modification time.
    pub mtime: Time,
    /// Status-change time, kept to tell whether a file may have changed since (incremental put).
    pub ctime: Time,
    /// Inode number, kept for the same reason.
    pub inode: u64,
    /// Content length of a file; length of a symlink's target; 0 for a directory.
    pub size: u64,
    /// SHA-256 of a file's content (zero for other kinds).
    pub sha256: [u8; 32],
    /// A file's chunks in content order (empty for other kinds and for empty files).
    pub chunks: Vec<FileChunk>,
    /// A symlink's target, as raw bytes (empty for other kinds).
    pub target: Vec<u8>,
}

impl Entry {
    /// The path as text (bytes that are not UTF-8 shown as U+FFFD).
    pub fn path_lossy(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.path)
    }

    /// A file's chunks with their offsets, as a manifest lists them.
    pub fn chunk_refs(&self) -> Vec<ChunkRef> {
        let mut offset = 0;
        self.chunks
            .iter()
            .map(|c| {
                let r = ChunkRef {
                    offset,
                    size: u64::from(c.size),
                    id: c.id,
                    stored: Some(u64::from(c.stored)),
                };
                offset += u64::from(c.size);
                r
            })
            .collect()
    }
}

/// A parsed tree: its entries sorted by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    /// The entries, sorted by path bytes, parents before children.
    pub entries: Vec<Entry>,
}

impl Tree {
    /// What the tree holds, as its manifest records it.
    pub fn summary(&self) -> TreeSummary {
        let files = self.entries.iter().filter(|e| e.kind == Kind::File);
        TreeSummary {
            entries: self.entries.len() as u64,
            files: files.clone().count() as u64,
            bytes: files.map(|e| e.size).sum(),
        }
    }

    /// The entry at `path`, if any.
    pub fn find(&self, path: &[u8]) -> Option<&Entry> {
        self.entries
            .binary_search_by(|e| e.path.as_slice().cmp(path))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The entries strictly below directory `dir` (all entries for the root, `dir` empty), in
    /// order: they lie next to each other, since they share the prefix `dir/`.
    pub fn below(&self, dir: &[u8]) -> &[Entry] {
        if dir.is_empty() {
            return &self.entries;
        }
        let mut prefix = dir.to_vec();
        prefix.push(b'/');
        let start = self
            .entries
            .partition_point(|e| e.path.as_slice() < prefix.as_slice());
        let len = self.entries[start..]
            .iter()
            .take_while(|e| e.path.starts_with(&prefix))
            .count();
        &self.entries[start..start + len]
    }
}

/// Why a path cannot be in a tree, if it cannot.
pub fn path_fault(path: &[u8]) -> Option<&'static str> {
    if path.is_empty() {
        return Some("an empty path");
    }
    if path.len() > MAX_PATH {
        return Some("a path longer than 4096 bytes");
    }
    if path.contains(&0) {
        return Some("a path holding a NUL byte");
    }
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" => return Some("a path with an empty component (leading, trailing or double /)"),
            b"." | b".." => return Some("a path with a . or .. component"),
            _ => {}
        }
    }
    None
}

/// The listing of `entries`, which must be sorted by path, each path valid and each parent a
/// directory entry before it (as [`parse`] requires; a walk that sorts its directories makes
/// them so).
pub fn encode(entries: &[Entry]) -> Vec<u8> {
    let per_entry: usize = entries
        .iter()
        .map(|e| 64 + e.path.len() + e.target.len() + 40 * e.chunks.len())
        .sum();
    let mut out = Vec::with_capacity(16 + per_entry);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    for e in entries {
        out.push(e.kind.code());
        put_bytes(&mut out, &e.path);
        out.extend_from_slice(&e.mode.to_le_bytes());
        put_time(&mut out, e.mtime);
        put_time(&mut out, e.ctime);
        out.extend_from_slice(&e.inode.to_le_bytes());
        out.extend_from_slice(&e.size.to_le_bytes());
        match e.kind {
            Kind::Dir => {}
            Kind::File => {
                out.extend_from_slice(&e.sha256);
                out.extend_from_slice(&(e.chunks.len() as u32).to_le_bytes());
                for c in &e.chunks {
                    out.extend_from_slice(&c.id.0);
                    out.extend_from_slice(&c.size.to_le_bytes());
                    out.extend_from_slice(&c.stored.to_le_bytes());
                }
            }
            Kind::Symlink => put_bytes(&mut out, &e.target),
        }
    }
    out
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn put_time(out: &mut Vec<u8>, t: Time) {
    out.extend_from_slice(&t.secs.to_le_bytes());
    out.extend_from_slice(&t.nanos.to_le_bytes());
}

/// The fewest bytes an entry takes: kind, path length, one path byte, mode, two times, inode
/// and size.
const MIN_ENTRY: usize = 1 + 4 + 1 + 4 + 12 + 12 + 8 + 8;
/// The bytes of one chunk in a file entry.
const CHUNK_BYTES: usize = 32 + 4 + 4;

/// Reads a listing, checking it whole: the magic, every field, sorted unique paths, paths
/// that stay inside the root, parents that are directories, file sizes that equal the sum of
/// their chunks, chunks no larger than `max_chunk`, and nothing after the last entry. The
/// error says what is wrong, for "tree NAME@VERSION: ...".
pub fn parse(bytes: &[u8], max_chunk: u64) -> Result<Tree, String> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(MAGIC.len())? != MAGIC {
        return Err("it does not start with the tree magic".into());
    }
    let count = r.u64()?;
    // Each entry takes at least MIN_ENTRY bytes: a count the rest cannot hold is refused
    // before anything is allocated for it.
    if count > (r.remaining() / MIN_ENTRY) as u64 {
        return Err(format!(
            "it claims {count} entries, more than its {} bytes can hold",
            bytes.len()
        ));
    }
    let mut entries: Vec<Entry> = Vec::with_capacity(count as usize);
    let mut dirs: HashSet<Vec<u8>> = HashSet::new();
    for n in 0..count {
        let e = entry(&mut r, max_chunk).map_err(|e| format!("entry {n}: {e}"))?;
        if let Some(prev) = entries.last() {
            if prev.path >= e.path {
                return Err(format!(
                    "entry {n} ({}) is not after entry {} ({}): paths must be sorted and unique",
                    e.path_lossy(),
                    n - 1,
                    prev.path_lossy()
                ));
            }
        }
        if let Some(slash) = e.path.iter().rposition(|&b| b == b'/') {
            if !dirs.contains(&e.path[..slash]) {
                return Err(format!(
                    "entry {n} ({}) is not inside a directory entry of the tree",
                    e.path_lossy()
                ));
            }
        }
        if e.kind == Kind::Dir {
            dirs.insert(e.path.clone());
        }
        entries.push(e);
    }
    if r.remaining() != 0 {
        return Err(format!("{} bytes follow its last entry", r.remaining()));
    }
    Ok(Tree { entries })
}

fn entry(r: &mut Reader<'_>, max_chunk: u64) -> Result<Entry, String> {
    let code = r.u8()?;
    let kind = Kind::from_code(code).ok_or_else(|| format!("unknown kind {code}"))?;
    let path = r.bytes(MAX_PATH)?.to_vec();
    if let Some(fault) = path_fault(&path) {
        return Err(fault.into());
    }
    let mode = r.u32()?;
    if mode & !MODE_BITS != 0 {
        return Err(format!("mode {mode:o} has bits other than permissions"));
    }
    let mtime = r.time()?;
    let ctime = r.time()?;
    let inode = r.u64()?;
    let size = r.u64()?;
    let mut e = Entry {
        path,
        kind,
        mode,
        mtime,
        ctime,
        inode,
        size,
        sha256: [0; 32],
        chunks: Vec::new(),
        target: Vec::new(),
    };
    match kind {
        Kind::Dir if size != 0 => return Err("a directory with a size".into()),
        Kind::Dir => {}
        Kind::File => {
            e.sha256.copy_from_slice(r.take(32)?);
            let n = r.u32()? as usize;
            if n > r.remaining() / CHUNK_BYTES {
                return Err(format!("it claims {n} chunks, more than the tree holds"));
            }
            e.chunks.reserve_exact(n);
            let mut sum = 0u64;
            for _ in 0..n {
                let mut id = [0; 32];
                id.copy_from_slice(r.take(32)?);
                let (size, stored) = (r.u32()?, r.u32()?);
                if size == 0 || u64::from(size) > max_chunk {
                    return Err(format!(
                        "a chunk of {size} bytes (chunks are 1 to {max_chunk} bytes)"
                    ));
                }
                if stored == 0 {
                    return Err("a chunk stored in 0 bytes".into());
                }
                sum += u64::from(size);
                e.chunks.push(FileChunk {
                    id: ChunkId(id),
                    size,
                    stored,
                });
            }
            if sum != size {
                return Err(format!(
                    "its chunks hold {sum} bytes but its size is {size}"
                ));
            }
        }
        Kind::Symlink => {
            e.target = r.bytes(MAX_PATH)?.to_vec();
            if e.target.is_empty() || e.target.contains(&0) {
                return Err("a symlink target that is empty or holds a NUL byte".into());
            }
            if size != e.target.len() as u64 {
                return Err("a symlink whose size is not its target's length".into());
            }
        }
    }
    Ok(e)
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if n > self.remaining() {
            return Err("it ends in the middle of an entry".into());
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn time(&mut self) -> Result<Time, String> {
        let secs = i64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes"));
        let nanos = self.u32()?;
        if nanos >= 1_000_000_000 {
            return Err(format!("a time with {nanos} nanoseconds"));
        }
        Ok(Time { secs, nanos })
    }

    fn bytes(&mut self, max: usize) -> Result<&'a [u8], String> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(format!("a field of {len} bytes (at most {max})"));
        }
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn entry(path: &str, kind: Kind) -> Entry {
        let mut e = Entry {
            path: path.as_bytes().to_vec(),
            kind,
            mode: 0o644,
            mtime: Time {
                secs: 1_700_000_000,
                nanos: 5,
            },
            ctime: Time {
                secs: -3,
                nanos: 999_999_999,
            },
            inode: 42,
            size: 0,
            sha256: [7; 32],
            chunks: Vec::new(),
            target: Vec::new(),
        };
        match kind {
            Kind::File => {
                e.chunks = vec![
                    FileChunk {
                        id: ChunkId([1; 32]),
                        size: 10,
                        stored: 18,
                    },
                    FileChunk {
                        id: ChunkId([2; 32]),
                        size: 5,
                        stored: 13,
                    },
                ];
                e.size = 15;
            }
            Kind::Symlink => {
                e.target = b"../elsewhere".to_vec();
                e.size = 12;
                e.sha256 = [0; 32];
            }
            Kind::Dir => e.sha256 = [0; 32],
        }
        e
    }

    fn sample() -> Vec<Entry> {
        vec![
            entry("a", Kind::Dir),
            entry("a/b c", Kind::File),
            entry("a/link", Kind::Symlink),
            entry("a/new\nline", Kind::File),
            entry("a/ü", Kind::Dir),
            entry("z", Kind::File),
        ]
    }

    #[test]
    fn a_listing_reads_back_as_written_and_is_canonical() {
        let entries = sample();
        let bytes = encode(&entries);
        let tree = parse(&bytes, 1 << 20).unwrap();
        assert_eq!(tree.entries, entries);
        assert_eq!(encode(&tree.entries), bytes);
        assert_eq!(
            tree.summary(),
            TreeSummary {
                entries: 6,
                files: 3,
                bytes: 45
            }
        );
        assert_eq!(tree.find(b"a/link").unwrap().kind, Kind::Symlink);
        assert!(tree.find(b"a/lin").is_none());
        let below: Vec<_> = tree.below(b"a").iter().map(|e| e.path_lossy()).collect();
        assert_eq!(below, ["a/b c", "a/link", "a/new\nline", "a/ü"]);
        assert_eq!(tree.entries[1].chunk_refs()[1].offset, 10);
    }

    #[test]
    fn listings_that_could_escape_the_root_or_lie_are_refused() {
        let refused = |entries: Vec<Entry>, why: &str| {
            let e = parse(&encode(&entries), 1 << 20).unwrap_err();
            assert!(e.contains(why), "{e} (wanted {why})");
        };
        for bad in ["../x", "/etc", "a/../b", "a//b", "a/", ".", "a/./b"] {
            let mut e = entry(bad, Kind::File);
            e.path = bad.as_bytes().to_vec();
            refused(vec![e], "path");
        }
        // A child of a symlink or of a file: writing it would follow the link.
        refused(
            vec![entry("a", Kind::Symlink), entry("a/passwd", Kind::File)],
            "not inside a directory",
        );
        refused(
            vec![entry("a", Kind::File), entry("a/x", Kind::File)],
            "not inside a directory",
        );
        refused(vec![entry("b/x", Kind::File)], "not inside a directory");
        refused(
            vec![entry("b", Kind::File), entry("a", Kind::File)],
            "sorted",
        );
        refused(
            vec![entry("b", Kind::File), entry("b", Kind::File)],
            "sorted",
        );
        let mut lying = entry("f", Kind::File);
        lying.size = 16;
        refused(vec![lying], "chunks hold 15");
        let mut big = entry("f", Kind::File);
        big.chunks[0].size = 1 << 21;
        big.size = (1 << 21) + 5;
        refused(vec![big], "a chunk of");
        let mut mode = entry("f", Kind::File);
        mode.mode = 0o100644;
        refused(vec![mode], "mode");
        let mut nul = entry("f", Kind::Symlink);
        nul.target = b"a\0b".to_vec();
        refused(vec![nul], "NUL");
        // Truncated anywhere, or with bytes after the end.
        let bytes = encode(&sample());
        for cut in 0..bytes.len() {
            assert!(parse(&bytes[..cut], 1 << 20).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(parse(&longer, 1 << 20).unwrap_err().contains("follow"));
        // A huge count is refused before anything is allocated for it.
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(parse(&huge, 1 << 20).unwrap_err().contains("claims"));
    }

    #[test]
    fn times_before_and_after_the_epoch_convert() {
        let t = Time {
            secs: -1,
            nanos: 500_000_000,
        };
        let epoch = std::time::SystemTime::UNIX_EPOCH;
        assert_eq!(
            epoch.duration_since(t.to_system().unwrap()).unwrap(),
            std::time::Duration::from_millis(500)
        );
        let t = Time { secs: 10, nanos: 1 };
        assert_eq!(
            t.to_system().unwrap().duration_since(epoch).unwrap(),
            std::time::Duration::new(10, 1)
        );
    }
}
