//! The chunk index (format 2): write-once segments under `index/` that map chunk ids to where
//! their frames are (a pack and a range in it, or a format-1 chunk object), and gc marks beside
//! them. A put lists `index/` once, reads only the segments it has not seen (from a local copy
//! when the vault is remote), and decides from memory which chunks are new: no request per chunk.
//!
//! A segment is named by the SHA-256 of its stored bytes (`index/<64 hex>`) and may say which
//! older segments it supersedes; readers ignore a superseded segment once its successor is
//! visible. A mark (`index/mark-<version>`) is gc's first phase: the packs, format-1 chunk objects
//! and segments it condemned. Writers never deduplicate onto a condemned pack; gc deletes what a
//! mark condemned only once the mark is older than the grace period (see `store::collect`).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::Bytes;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use super::codec::Codec;
use super::layout::ChunkId;
use super::pack::{PackEntry, PackId};
use crate::backend::{DynBackend, ObjectMeta};
use crate::error::{Error, ErrorKind, Result};

/// Prefix of index segments and gc marks.
pub const INDEX_PREFIX: &str = "index/";
/// Prefix of gc marks, inside [`INDEX_PREFIX`].
pub const MARK_PREFIX: &str = "index/mark-";
/// First bytes of a segment's body.
const SEGMENT_MAGIC: &[u8; 8] = b"LDVIDX2\n";
/// The context a sealed segment is bound to.
const SEGMENT_CONTEXT: &str = "ldv-index-segment";
/// Largest segment a reader accepts (about 3 M entries).
pub const MAX_SEGMENT: u64 = 128 << 20;
/// Most entries a writer puts in one segment (about 40 MiB).
pub const SEGMENT_ENTRIES: usize = 1_000_000;
/// Largest mark a reader accepts.
pub const MAX_MARK: u64 = 256 << 20;
/// The pack id that stands for "a format-1 chunk object under `chunks/`".
pub const LEGACY: PackId = PackId([0; 32]);

/// The name of a segment: the SHA-256 of its stored bytes.
pub type SegmentId = PackId;

/// The key of segment `id`.
pub fn segment_key(id: &SegmentId) -> String {
    format!("{INDEX_PREFIX}{id}")
}

/// What an `index/` key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexKey {
    /// A segment.
    Segment(SegmentId),
    /// A gc mark, with its version string.
    Mark(String),
}

/// Parses an `index/` key; `None` for anything ldv does not write there.
pub fn parse_key(key: &str) -> Option<IndexKey> {
    if let Some(version) = key.strip_prefix(MARK_PREFIX) {
        return super::layout::is_version(version).then(|| IndexKey::Mark(version.to_owned()));
    }
    let hex = key.strip_prefix(INDEX_PREFIX)?;
    let id: ChunkId = hex.parse().ok()?;
    Some(IndexKey::Segment(PackId(id.0)))
}

/// One index segment: the packs it covers with their entries, and the segments it replaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Segment {
    /// Older segments whose every live entry this one repeats.
    pub supersedes: Vec<SegmentId>,
    /// Packs and the chunks in each ([`LEGACY`] for format-1 chunk objects, offset 0).
    pub packs: Vec<(PackId, Vec<PackEntry>)>,
}

impl Segment {
    /// The stored form (sealed by `codec` in an encrypted vault) and its name.
    pub fn encode(&self, codec: &Codec) -> (SegmentId, Bytes) {
        let entries: usize = self.packs.iter().map(|(_, e)| e.len()).sum();
        let mut out = Vec::with_capacity(
            16 + self.supersedes.len() * 32 + self.packs.len() * 36 + entries * 40,
        );
        out.extend_from_slice(SEGMENT_MAGIC);
        out.extend_from_slice(&(self.supersedes.len() as u32).to_le_bytes());
        for s in &self.supersedes {
            out.extend_from_slice(&s.0);
        }
        out.extend_from_slice(&(self.packs.len() as u32).to_le_bytes());
        for (pack, entries) in &self.packs {
            out.extend_from_slice(&pack.0);
            out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
            for e in entries {
                out.extend_from_slice(&e.id.0);
                out.extend_from_slice(&e.offset.to_le_bytes());
                out.extend_from_slice(&e.len.to_le_bytes());
            }
        }
        let stored = codec.encode_manifest(SEGMENT_CONTEXT, out);
        (PackId::of(&stored), stored)
    }

    /// Parses a stored segment, checking it against its name `id`.
    pub fn decode(codec: &Codec, id: &SegmentId, stored: Bytes) -> Result<Self> {
        let what = format!("index segment {id}");
        if PackId::of(&stored) != *id {
            return Err(Error::integrity(&what, "content does not match its name"));
        }
        Self::parse(codec, stored, &what)
    }

    /// Parses a stored segment's bytes, whatever its name.
    pub fn parse(codec: &Codec, stored: Bytes, what: &str) -> Result<Self> {
        let mut segment = Self::default();
        Self::visit(codec, stored, what, |item| match item {
            Item::Supersedes(id) => segment.supersedes.push(id),
            Item::Pack(pack, count) => segment.packs.push((pack, Vec::with_capacity(count))),
            Item::Entry(e) => {
                let (_, entries) = segment.packs.last_mut().expect("a pack comes first");
                entries.push(e);
            }
        })?;
        Ok(segment)
    }

    /// Parses a stored segment's bytes without holding them parsed: calls `each` on every
    /// item in stored order. On an error, some calls may have been made.
    pub fn visit(
        codec: &Codec,
        stored: Bytes,
        what: &str,
        mut each: impl FnMut(Item),
    ) -> Result<()> {
        let body = codec.decode_manifest(SEGMENT_CONTEXT, stored, what)?;
        let mut r = Reader { buf: &body, what };
        if r.take(SEGMENT_MAGIC.len())? != SEGMENT_MAGIC {
            return Err(Error::integrity(what, "is not an ldv index segment"));
        }
        for _ in 0..r.count(32)? {
            each(Item::Supersedes(PackId(r.id()?)));
        }
        for _ in 0..r.count(36)? {
            let id = PackId(r.id()?);
            let count = r.count(40)?;
            each(Item::Pack(id, count));
            for _ in 0..count {
                let e = PackEntry {
                    id: ChunkId(r.id()?),
                    offset: r.u32()?,
                    len: r.u32()?,
                };
                if e.len == 0 || (id == LEGACY && e.offset != 0) {
                    return Err(Error::integrity(
                        what,
                        format!("has an impossible entry for chunk {}", e.id),
                    ));
                }
                each(Item::Entry(e));
            }
        }
        if !r.buf.is_empty() {
            return Err(Error::integrity(
                what,
                format!("has {} bytes after its last entry", r.buf.len()),
            ));
        }
        Ok(())
    }
}

/// One item of a stored segment, in the order [`Segment::visit`] meets them.
#[derive(Debug)]
pub enum Item {
    /// A segment this one supersedes.
    Supersedes(SegmentId),
    /// A pack, with the number of its entries that follow.
    Pack(PackId, usize),
    /// An entry of the last pack.
    Entry(PackEntry),
}

struct Reader<'a> {
    buf: &'a [u8],
    what: &'a str,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.buf.len() < n {
            return Err(Error::integrity(self.what, "is cut short"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }

    fn id(&mut self) -> Result<[u8; 32]> {
        Ok(self.take(32)?.try_into().expect("32"))
    }

    /// A count of items of at least `each` bytes: refused if they cannot fit what is left, so
    /// a hostile count allocates nothing.
    fn count(&mut self, each: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(each) > self.buf.len() {
            return Err(Error::integrity(
                self.what,
                format!("claims {n} entries, more than its size holds"),
            ));
        }
        Ok(n)
    }
}

/// A gc mark: what one gc run condemned, to be deleted by a later run once the mark is older
/// than the grace period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mark {
    /// When gc wrote it (the store's own time is the object's modification time).
    #[serde(with = "crate::time::serde_time")]
    pub created_at: SystemTime,
    /// Packs condemned: dead, repacked, or never indexed.
    pub packs: Vec<String>,
    /// Format-1 chunk objects condemned.
    pub chunks: Vec<String>,
    /// Segments superseded by the one this gc wrote.
    pub segments: Vec<String>,
}

/// A mark read back, its ids parsed.
#[derive(Debug, Clone, Default)]
pub struct ParsedMark {
    /// Condemned packs.
    pub packs: HashSet<PackId>,
    /// Condemned format-1 chunk objects.
    pub chunks: HashSet<ChunkId>,
    /// Superseded segments.
    pub segments: HashSet<SegmentId>,
}

impl Mark {
    /// Parses a stored mark; `what` names it in errors.
    pub fn parse(raw: &[u8], what: &str) -> Result<ParsedMark> {
        let mark: Mark = serde_json::from_slice(raw)
            .map_err(|e| Error::integrity(what, format!("is unreadable: {e}")))?;
        let id = |s: &String| -> Result<[u8; 32]> {
            s.parse::<ChunkId>()
                .map(|c| c.0)
                .map_err(|e| Error::integrity(what, e.message().to_owned()))
        };
        Ok(ParsedMark {
            packs: mark
                .packs
                .iter()
                .map(|s| id(s).map(PackId))
                .collect::<Result<_>>()?,
            chunks: mark
                .chunks
                .iter()
                .map(|s| id(s).map(ChunkId))
                .collect::<Result<_>>()?,
            segments: mark
                .segments
                .iter()
                .map(|s| id(s).map(PackId))
                .collect::<Result<_>>()?,
        })
    }
}

/// Where a chunk's frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// The pack ([`LEGACY`] for a format-1 chunk object).
    pub pack: PackId,
    /// Offset of the frame in the pack.
    pub offset: u32,
    /// Length of the frame.
    pub len: u32,
}

/// One chunk's place in the in-memory index, 44 bytes: packs are numbered.
#[derive(Debug, Clone, Copy)]
struct Slot {
    id: ChunkId,
    pack: u32,
    offset: u32,
    len: u32,
}

/// The merged, in-memory index: every visible segment not superseded, plus the marks. The
/// chunks of the segments read at load are held in one vector sorted by id (44 bytes a chunk,
/// about 42 MiB for a million), the chunks this process indexed since in a small map beside it.
#[derive(Debug, Default)]
pub struct Index {
    packs: Vec<PackId>,
    pack_numbers: HashMap<PackId, u32>,
    /// One slot per chunk, sorted by id.
    sorted: Vec<Slot>,
    /// Chunks indexed after the load; a chunk here is never also in `sorted` at a live place.
    added: HashMap<ChunkId, Slot>,
    /// Packs and format-1 chunk objects some visible mark condemned.
    condemned_packs: HashSet<PackId>,
    condemned_chunks: HashSet<ChunkId>,
    /// Segments read (not superseded), with their listing entries.
    pub segments: Vec<(SegmentId, ObjectMeta)>,
    /// Superseded segments still stored.
    pub superseded: Vec<(SegmentId, ObjectMeta)>,
    /// Marks, by version, with their listing entries.
    pub marks: Vec<(String, ObjectMeta, ParsedMark)>,
}

impl Index {
    fn number(&mut self, pack: PackId) -> u32 {
        if let Some(&n) = self.pack_numbers.get(&pack) {
            return n;
        }
        let n = u32::try_from(self.packs.len()).expect("fewer than 4 G packs");
        self.packs.push(pack);
        self.pack_numbers.insert(pack, n);
        n
    }

    fn location(&self, s: &Slot) -> Location {
        Location {
            pack: self.packs[s.pack as usize],
            offset: s.offset,
            len: s.len,
        }
    }

    /// Adds the entries of `segment`, written by this process; a chunk already located in a
    /// live pack keeps that place.
    pub fn add(&mut self, segment: &Segment) {
        for (pack, entries) in &segment.packs {
            let n = self.number(*pack);
            let condemned = self.condemned_packs.contains(pack);
            for e in entries {
                let replace = match self.locate(&e.id) {
                    None => true,
                    Some(held) => !condemned && self.is_condemned_at(held.pack, e.id),
                };
                if replace {
                    let slot = Slot {
                        id: e.id,
                        pack: n,
                        offset: e.offset,
                        len: e.len,
                    };
                    self.added.insert(e.id, slot);
                }
            }
        }
    }

    fn is_condemned_at(&self, pack: PackId, id: ChunkId) -> bool {
        if pack == LEGACY {
            self.condemned_chunks.contains(&id)
        } else {
            self.condemned_packs.contains(&pack)
        }
    }

    /// Where chunk `id` is, for reading (a condemned pack still holds it until it is swept).
    pub fn locate(&self, id: &ChunkId) -> Option<Location> {
        if let Some(s) = self.added.get(id) {
            return Some(self.location(s));
        }
        let at = self.sorted.binary_search_by(|s| s.id.cmp(id)).ok()?;
        Some(self.location(&self.sorted[at]))
    }

    /// Where chunk `id` is, for deduplicating a write onto it: never a condemned pack.
    pub fn reusable(&self, id: &ChunkId) -> Option<Location> {
        self.locate(id)
            .filter(|l| !self.is_condemned_at(l.pack, *id))
    }

    /// Chunks indexed.
    pub fn len(&self) -> usize {
        let again = self
            .added
            .keys()
            .filter(|id| self.sorted.binary_search_by(|s| s.id.cmp(id)).is_ok())
            .count();
        self.sorted.len() + self.added.len() - again
    }

    /// Whether no chunk is indexed.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty() && self.added.is_empty()
    }

    /// Every indexed chunk with its location.
    pub fn iter(&self) -> impl Iterator<Item = (ChunkId, Location)> + '_ {
        self.sorted
            .iter()
            .filter(|s| !self.added.contains_key(&s.id))
            .chain(self.added.values())
            .map(|s| (s.id, self.location(s)))
    }

    /// Whether a visible mark condemned `pack`.
    pub fn pack_condemned(&self, pack: &PackId) -> bool {
        self.condemned_packs.contains(pack)
    }
}

/// The index of stored segments `segments` (named by their ids, which are checked) with no
/// marks, as a put builds it: for checks of the builder against [`Segment::parse`].
pub(crate) fn build_from(codec: &Codec, segments: &[(SegmentId, Bytes)]) -> Result<Index> {
    let mut builder = IndexBuilder::new(Vec::new(), 0);
    for (id, stored) in segments {
        if PackId::of(stored) != *id {
            return Err(Error::integrity(
                format!("index segment {id}"),
                "content does not match its name",
            ));
        }
        let meta = ObjectMeta {
            key: segment_key(id),
            size: stored.len() as u64,
            modified: None,
        };
        builder.segment(*id, meta, codec, stored.clone())?;
    }
    Ok(builder.finish())
}

/// Builds an [`Index`] from segments read in any order, holding each one's entries as slots
/// only: the segments themselves are dropped as they are read.
struct IndexBuilder {
    index: Index,
    /// Each segment read, with the range of `index.sorted` its entries took.
    read: Vec<(SegmentId, ObjectMeta, std::ops::Range<usize>)>,
    superseded: HashSet<SegmentId>,
}

impl IndexBuilder {
    /// A builder that knows the marks, expecting about `entries` chunks.
    fn new(marks: Vec<(String, ObjectMeta, ParsedMark)>, entries: usize) -> Self {
        let mut index = Index::default();
        for (_, _, mark) in &marks {
            index.condemned_packs.extend(mark.packs.iter().copied());
            index.condemned_chunks.extend(mark.chunks.iter().copied());
        }
        index.marks = marks;
        index.sorted.reserve_exact(entries);
        Self {
            index,
            read: Vec::new(),
            superseded: HashSet::new(),
        }
    }

    /// Adds segment `id`'s stored bytes, whose name is checked.
    fn segment(
        &mut self,
        id: SegmentId,
        meta: ObjectMeta,
        codec: &Codec,
        stored: Bytes,
    ) -> Result<()> {
        let what = format!("index segment {id}");
        let start = self.index.sorted.len();
        let Self {
            index, superseded, ..
        } = self;
        let mut pack = 0;
        let visited = Segment::visit(codec, stored, &what, |item| match item {
            Item::Supersedes(old) => {
                superseded.insert(old);
            }
            Item::Pack(p, _) => pack = index.number(p),
            Item::Entry(e) => index.sorted.push(Slot {
                id: e.id,
                pack,
                offset: e.offset,
                len: e.len,
            }),
        });
        if let Err(e) = visited {
            self.index.sorted.truncate(start);
            return Err(e);
        }
        let end = self.index.sorted.len();
        self.read.push((id, meta, start..end));
        Ok(())
    }

    /// The index: superseded segments' entries dropped, one slot per chunk, preferring a place
    /// no mark condemned (then the lowest pack id, for the same result in any reading order).
    fn finish(mut self) -> Index {
        let mut index = self.index;
        self.read.sort_by_key(|(id, _, range)| (*id, range.start));
        let mut dropped: Vec<std::ops::Range<usize>> = Vec::new();
        for (id, meta, range) in self.read {
            if self.superseded.contains(&id) {
                dropped.push(range);
                index.superseded.push((id, meta));
            } else {
                index.segments.push((id, meta));
            }
        }
        if !dropped.is_empty() {
            dropped.sort_by_key(|r| r.start);
            let (mut at, mut next) = (0usize, 0usize);
            index.sorted.retain(|_| {
                while next < dropped.len() && dropped[next].end <= at {
                    next += 1;
                }
                let keep = !(next < dropped.len() && dropped[next].contains(&at));
                at += 1;
                keep
            });
        }
        let condemned: Vec<bool> = index
            .packs
            .iter()
            .map(|p| index.condemned_packs.contains(p))
            .collect();
        let chunks = &index.condemned_chunks;
        let packs = &index.packs;
        let rank = |s: &Slot| {
            let pack = packs[s.pack as usize];
            let dead = if pack == LEGACY {
                chunks.contains(&s.id)
            } else {
                condemned[s.pack as usize]
            };
            (dead, pack, s.offset)
        };
        index
            .sorted
            .sort_unstable_by(|a, b| a.id.cmp(&b.id).then_with(|| rank(a).cmp(&rank(b))));
        index.sorted.dedup_by(|later, first| later.id == first.id);
        index.sorted.shrink_to_fit();
        index
    }
}

/// Everything under `index/`: segments read (split into live and superseded) and marks.
#[derive(Debug, Default)]
pub struct Listing {
    /// Segments no visible segment supersedes, with their contents.
    pub live: Vec<(SegmentId, ObjectMeta, Segment)>,
    /// Segments some visible segment supersedes.
    pub superseded: Vec<(SegmentId, ObjectMeta)>,
    /// gc marks, oldest first.
    pub marks: Vec<(String, ObjectMeta, ParsedMark)>,
}

/// Segments read at once.
const SEGMENTS_IN_FLIGHT: usize = 4;

/// Lists `index/` and reads every segment and mark into an [`Index`]: segments come from
/// `local` (a directory of verified copies, named as in the vault) when it holds them; the
/// others are fetched and copied there. Copies of segments no longer listed are removed.
pub async fn load(backend: &DynBackend, codec: &Codec, local: Option<&Path>) -> Result<Index> {
    use futures::StreamExt;
    let (marks, segments) = list(backend, local).await?;
    // A plain segment takes 40 bytes an entry, a sealed one a little more: enough room for
    // every entry at once, so the slots are never copied while they grow. The sizes come from
    // the store's listing, so the room taken on their word is capped (4 M entries, 176 MiB).
    let stored: u64 = segments.iter().map(|(_, m)| m.size.min(MAX_SEGMENT)).sum();
    let expected = usize::try_from(stored / 40)
        .unwrap_or(usize::MAX)
        .min(4 << 20);
    let mut builder = IndexBuilder::new(marks, expected);
    let local = local.map(Path::to_path_buf);
    let mut fetched = futures::stream::iter(segments)
        .map(|(id, meta)| {
            let local = local.clone();
            async move {
                let bytes = read_segment_bytes(backend, &id, local.as_deref()).await;
                (id, meta, bytes)
            }
        })
        .buffer_unordered(SEGMENTS_IN_FLIGHT);
    while let Some((id, meta, bytes)) = fetched.next().await {
        let bytes = match bytes {
            Ok(b) => b,
            // Superseded and swept since it was listed.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let codec = codec.clone();
        builder =
            blocking(move || builder.segment(id, meta, &codec, bytes).map(|()| builder)).await??;
    }
    blocking(move || builder.finish()).await
}

/// Lists `index/` and reads every segment and mark (see [`load`] for the local copies).
pub async fn read_all(
    backend: &DynBackend,
    codec: &Codec,
    local: Option<&Path>,
) -> Result<Listing> {
    use futures::StreamExt;
    let (marks, segments) = list(backend, local).await?;
    let local = local.map(Path::to_path_buf);
    let fetched: Vec<_> = futures::stream::iter(segments)
        .map(|(id, meta)| {
            let (local, codec) = (local.clone(), codec.clone());
            async move {
                let segment = match read_segment_bytes(backend, &id, local.as_deref()).await {
                    Ok(bytes) => {
                        let what = format!("index segment {id}");
                        blocking(move || Segment::parse(&codec, bytes, &what))
                            .await
                            .and_then(|r| r)
                    }
                    Err(e) => Err(e),
                };
                (id, meta, segment)
            }
        })
        .buffer_unordered(SEGMENTS_IN_FLIGHT)
        .collect()
        .await;
    let mut read = Vec::with_capacity(fetched.len());
    let mut superseded = HashSet::new();
    for (id, meta, segment) in fetched {
        match segment {
            Ok(s) => {
                superseded.extend(s.supersedes.iter().copied());
                read.push((id, meta, s));
            }
            // Superseded and swept since it was listed.
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    read.sort_by_key(|a| a.0);
    let mut out = Listing {
        marks,
        ..Listing::default()
    };
    for (id, meta, segment) in read {
        if superseded.contains(&id) {
            out.superseded.push((id, meta));
        } else {
            out.live.push((id, meta, segment));
        }
    }
    Ok(out)
}

type Marks = Vec<(String, ObjectMeta, ParsedMark)>;

/// Lists `index/` once: reads every mark (oldest first) and returns the segments listed, by
/// id. Prunes local copies of segments no longer listed.
async fn list(
    backend: &DynBackend,
    local: Option<&Path>,
) -> Result<(Marks, Vec<(SegmentId, ObjectMeta)>)> {
    let listing: Vec<ObjectMeta> = backend.list(INDEX_PREFIX).try_collect().await?;
    let mut segments = Vec::new();
    let mut marks = Vec::new();
    for meta in listing {
        match parse_key(&meta.key) {
            Some(IndexKey::Segment(id)) => segments.push((id, meta)),
            Some(IndexKey::Mark(v)) => marks.push((v, meta)),
            None => {}
        }
    }
    segments.sort_by_key(|a| a.0);
    marks.sort_by(|a, b| a.0.cmp(&b.0));
    let mut read = Vec::with_capacity(marks.len());
    for (version, meta) in marks {
        let raw = match read_capped(backend, &meta.key, MAX_MARK).await {
            Ok(raw) => raw,
            // Swept since it was listed.
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mark = Mark::parse(&raw, &format!("gc mark {}", meta.key))?;
        read.push((version, meta, mark));
    }
    if let Some(dir) = local {
        prune_local(dir, &segments);
    }
    Ok((read, segments))
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        Error::new(
            ErrorKind::BackendError,
            format!("internal task failed: {e}"),
        )
    })
}

/// The stored bytes of segment `id`, checked against its name: from the local copy when it
/// is sound, otherwise fetched (and copied there).
async fn read_segment_bytes(
    backend: &DynBackend,
    id: &SegmentId,
    local: Option<&Path>,
) -> Result<Bytes> {
    let copy = local.map(|dir| dir.join(id.to_string()));
    if let Some(path) = copy.clone() {
        let id = *id;
        let held = blocking(move || {
            let bytes = Bytes::from(std::fs::read(path).ok()?);
            (PackId::of(&bytes) == id).then_some(bytes)
        })
        .await?;
        if let Some(bytes) = held {
            return Ok(bytes);
        }
    }
    let key = segment_key(id);
    let stored = read_capped(backend, &key, MAX_SEGMENT).await?;
    let (id, checked) = (*id, stored.clone());
    if !blocking(move || PackId::of(&checked) == id).await? {
        return Err(Error::integrity(
            format!("index segment {id}"),
            "content does not match its name",
        ));
    }
    if let Some(path) = copy {
        let kept = stored.clone();
        let _ = blocking(move || write_local(&path, &kept)).await;
    }
    Ok(stored)
}

/// Writes a local copy through a temp file and a rename, so a crash leaves no half copy.
fn write_local(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp: PathBuf = dir.join(format!(".tmp-{}", hex::encode(rand::random::<[u8; 8]>())));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Removes local copies of segments the vault no longer lists.
fn prune_local(dir: &Path, listed: &[(SegmentId, ObjectMeta)]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let keep: HashSet<String> = listed.iter().map(|(id, _)| id.to_string()).collect();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !keep.contains(&name) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Reads object `key`, refusing one larger than `cap` without holding it.
pub async fn read_capped(backend: &DynBackend, key: &str, cap: u64) -> Result<Bytes> {
    let raw = backend.get_range(key, 0..cap + 1).await?;
    if raw.len() as u64 > cap {
        return Err(Error::integrity(
            format!("{backend}/{key}"),
            format!("is larger than {cap} bytes, the most ldv reads of it"),
        ));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u8, offset: u32) -> PackEntry {
        PackEntry {
            id: ChunkId::of(&[i]),
            offset,
            len: 10,
        }
    }

    #[test]
    fn segments_round_trip_and_refuse_damage() {
        let codec = Codec::plain();
        let s = Segment {
            supersedes: vec![PackId([7; 32])],
            packs: vec![
                (PackId([1; 32]), vec![entry(1, 0), entry(2, 10)]),
                (LEGACY, vec![entry(3, 0)]),
            ],
        };
        let (id, stored) = s.encode(&codec);
        assert_eq!(Segment::decode(&codec, &id, stored.clone()).unwrap(), s);
        assert_eq!(parse_key(&segment_key(&id)), Some(IndexKey::Segment(id)));
        let mut bad = stored.to_vec();
        bad[20] ^= 1;
        assert!(Segment::decode(&codec, &id, Bytes::from(bad.clone())).is_err());
        assert!(Segment::parse(&codec, Bytes::from(bad[..bad.len() - 3].to_vec()), "s").is_err());
        // A count of billions in a few bytes allocates nothing and is refused.
        let mut huge = SEGMENT_MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(Segment::parse(&codec, Bytes::from(huge), "s").is_err());
    }

    #[test]
    fn reads_find_condemned_packs_but_writes_never_reuse_them() {
        let mut index = Index::default();
        let (old, new) = (PackId([1; 32]), PackId([2; 32]));
        index.condemned_packs.insert(old);
        index.add(&Segment {
            supersedes: vec![],
            packs: vec![(old, vec![entry(1, 0), entry(2, 10)])],
        });
        index.add(&Segment {
            supersedes: vec![],
            packs: vec![(new, vec![entry(2, 0)])],
        });
        let one = ChunkId::of(&[1]);
        let two = ChunkId::of(&[2]);
        assert_eq!(index.locate(&one).unwrap().pack, old);
        assert_eq!(index.reusable(&one), None);
        assert_eq!(index.locate(&two).unwrap().pack, new);
        assert_eq!(index.reusable(&two).unwrap().pack, new);
    }

    fn meta(key: &str) -> ObjectMeta {
        ObjectMeta {
            key: key.to_owned(),
            size: 0,
            modified: None,
        }
    }

    /// Builds an index from `segments` fed in the given order.
    fn built(codec: &Codec, marks: Marks, segments: &[(SegmentId, Bytes)]) -> Index {
        let mut b = IndexBuilder::new(marks, 0);
        for (id, bytes) in segments {
            b.segment(*id, meta(&segment_key(id)), codec, bytes.clone())
                .unwrap();
        }
        b.finish()
    }

    #[test]
    fn a_built_index_drops_superseded_segments_and_prefers_live_places_in_any_order() {
        let codec = Codec::plain();
        let (a, b, c) = (PackId([1; 32]), PackId([2; 32]), PackId([3; 32]));
        // Pack a is condemned; chunk 1 is in a and in c, chunk 2 in a and b; segment `old`
        // (chunk 9 in pack b) is superseded by `new`.
        let old = Segment {
            supersedes: vec![],
            packs: vec![(b, vec![entry(9, 500)])],
        }
        .encode(&codec);
        let new = Segment {
            supersedes: vec![old.0],
            packs: vec![(c, vec![entry(1, 30)]), (b, vec![entry(2, 40)])],
        }
        .encode(&codec);
        let first = Segment {
            supersedes: vec![],
            packs: vec![(a, vec![entry(1, 0), entry(2, 10), entry(3, 20)])],
        }
        .encode(&codec);
        let mark = ParsedMark {
            packs: [a].into_iter().collect(),
            ..ParsedMark::default()
        };
        let marks = vec![("v".to_owned(), meta("index/mark-v"), mark)];
        let orders = [
            vec![first.clone(), old.clone(), new.clone()],
            vec![new.clone(), first.clone(), old.clone()],
            vec![old.clone(), new.clone(), first.clone()],
        ];
        for order in orders {
            let index = built(&codec, marks.clone(), &order);
            let at = |i: u8| index.locate(&ChunkId::of(&[i]));
            assert_eq!(at(1).map(|l| (l.pack, l.offset)), Some((c, 30)));
            assert_eq!(at(2).map(|l| (l.pack, l.offset)), Some((b, 40)));
            assert_eq!(at(3).map(|l| l.pack), Some(a));
            assert_eq!(index.reusable(&ChunkId::of(&[3])), None);
            assert_eq!(at(9), None, "a superseded segment's entries are dropped");
            assert_eq!(index.len(), 3);
            assert_eq!(index.segments.len(), 2);
            assert_eq!(index.superseded.len(), 1);
            assert_eq!(index.superseded[0].0, old.0);
        }
    }

    #[test]
    fn a_damaged_segment_adds_nothing_to_a_built_index() {
        let codec = Codec::plain();
        let good = Segment {
            supersedes: vec![],
            packs: vec![(PackId([1; 32]), vec![entry(1, 0)])],
        }
        .encode(&codec);
        let bad = Segment {
            supersedes: vec![],
            packs: vec![(PackId([2; 32]), vec![entry(2, 0), entry(3, 10)])],
        }
        .encode(&codec);
        let mut b = IndexBuilder::new(Vec::new(), 0);
        b.segment(good.0, meta("g"), &codec, good.1).unwrap();
        let cut = bad.1.slice(..bad.1.len() - 20);
        assert!(b.segment(bad.0, meta("b"), &codec, cut).is_err());
        let index = b.finish();
        assert_eq!(index.len(), 1);
        assert!(index.locate(&ChunkId::of(&[2])).is_none());
    }

    #[test]
    fn chunks_a_process_indexes_after_the_load_are_found_and_counted_once() {
        let codec = Codec::plain();
        let (a, b) = (PackId([1; 32]), PackId([2; 32]));
        let first = Segment {
            supersedes: vec![],
            packs: vec![(a, vec![entry(1, 0)])],
        }
        .encode(&codec);
        let mut index = built(&codec, Vec::new(), &[first]);
        index.add(&Segment {
            supersedes: vec![],
            packs: vec![(b, vec![entry(1, 50), entry(2, 60)])],
        });
        assert_eq!(index.locate(&ChunkId::of(&[1])).unwrap().pack, a);
        assert_eq!(index.locate(&ChunkId::of(&[2])).unwrap().pack, b);
        assert_eq!(index.len(), 2);
    }
}
