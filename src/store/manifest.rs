//! Manifests: the immutable record of one version of a named object (its size, whole-content
//! SHA-256, the chunker used and the ordered chunk list). Writing a manifest is the commit point
//! of a put; a manifest is checked for internal consistency every time it is read.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::chunker::ChunkerConfig;
use super::layout::{ChunkId, is_version};
use crate::error::{Error, ErrorKind, Result};

/// The manifest format of a file version.
pub const MANIFEST_FORMAT: u32 = 1;
/// The manifest format of a tree version (a directory put): its content is the tree listing
/// (see [`super::tree`]) and it carries a [`TreeSummary`]. An ldv that reads only format 1
/// refuses it rather than taking the listing for a file.
pub const TREE_MANIFEST_FORMAT: u32 = 2;

/// What a tree version holds, recorded in its manifest so a listing of names need not read the
/// tree itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeSummary {
    /// Entries in the tree: files, directories and symlinks.
    pub entries: u64,
    /// Regular files among them.
    pub files: u64,
    /// Bytes of content of those files.
    pub bytes: u64,
}

/// One chunk of an object: where it sits in the content and which chunk holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    /// Offset of the chunk in the object's content.
    pub offset: u64,
    /// Plaintext length of the chunk.
    pub size: u64,
    /// The chunk's id.
    pub id: ChunkId,
    /// The chunk's stored (framed) size when this version was written; frames vary with
    /// compression and encryption, so `verify` checks sizes against this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored: Option<u64>,
}

/// One immutable version of a named object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Manifest format (1).
    pub format: u32,
    /// Object name.
    pub name: String,
    /// Version string.
    pub version: String,
    /// Content length in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the whole content.
    pub sha256: String,
    /// How the content was chunked.
    pub chunker: ChunkerConfig,
    /// When the version was committed.
    #[serde(with = "crate::time::serde_time")]
    pub created_at: SystemTime,
    /// MIME type given at put, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// User metadata given at put.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// For a tree version (format 2): what the tree holds. Its content is then the tree listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<TreeSummary>,
    /// The chunks, in content order.
    pub chunks: Vec<ChunkRef>,
}

impl Manifest {
    /// Serializes for storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self)
            .expect("a manifest always serializes: it holds only strings and numbers")
    }

    /// Parses and checks a stored manifest found at `name@version`.
    pub fn from_bytes(bytes: &[u8], name: &str, version: &str) -> Result<Self> {
        let mut chunks = Vec::new();
        let head = read_slice(bytes, name, version, &mut chunks)?;
        Ok(Self::from_head(head, chunks))
    }

    /// Joins a manifest read by [`read_slice`] or [`read_from`] with the chunks its sink kept.
    pub fn from_head(head: ManifestHead, chunks: Vec<ChunkRef>) -> Self {
        Self {
            format: head.format,
            name: head.name,
            version: head.version,
            size: head.size,
            sha256: head.sha256,
            chunker: head.chunker,
            created_at: head.created_at,
            content_type: head.content_type,
            metadata: head.metadata,
            tree: head.tree,
            chunks,
        }
    }

    /// Whether this is a tree version (a directory put) rather than a file's.
    pub fn is_tree(&self) -> bool {
        self.tree.is_some()
    }

    /// Indices of the chunks overlapping the byte range `start..end`.
    pub fn chunks_in(&self, start: u64, end: u64) -> std::ops::Range<usize> {
        let first = self.chunks.partition_point(|c| c.offset + c.size <= start);
        let last = self.chunks.partition_point(|c| c.offset < end);
        first..last.max(first)
    }
}

/// A manifest without its chunk list: what a reader that takes the chunks one at a time (see
/// [`ChunkSink`]) keeps of it, so a manifest of millions of chunks need not be held whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestHead {
    /// Manifest format (1).
    pub format: u32,
    /// Object name.
    pub name: String,
    /// Version string.
    pub version: String,
    /// Content length in bytes.
    pub size: u64,
    /// Lower-case hex SHA-256 of the whole content.
    pub sha256: String,
    /// How the content was chunked.
    pub chunker: ChunkerConfig,
    /// When the version was committed.
    pub created_at: SystemTime,
    /// MIME type given at put, if any.
    pub content_type: Option<String>,
    /// User metadata given at put.
    pub metadata: BTreeMap<String, String>,
    /// For a tree version: what the tree holds.
    pub tree: Option<TreeSummary>,
    /// How many chunks the manifest lists.
    pub chunk_count: u64,
    /// The size of its largest chunk (0 without chunks).
    pub largest_chunk: u64,
}

/// Takes a manifest's chunks one at a time, in content order, as they are parsed. A manifest
/// that turns out unreadable or inconsistent may have handed some chunks over already: a
/// reader that fails drops its sink, so what it holds never outlives the error.
pub trait ChunkSink: Send + 'static {
    /// Takes the next chunk.
    fn chunk(&mut self, c: ChunkRef);
}

/// Keeps every chunk: the whole manifest.
impl ChunkSink for Vec<ChunkRef> {
    fn chunk(&mut self, c: ChunkRef) {
        self.push(c);
    }
}

/// Keeps each chunk's id once: the chunks a version needs.
impl ChunkSink for std::collections::HashSet<ChunkId> {
    fn chunk(&mut self, c: ChunkRef) {
        self.insert(c.id);
    }
}

/// Keeps nothing: for readers that need the head and the chunk count only.
impl ChunkSink for () {
    fn chunk(&mut self, _: ChunkRef) {}
}

/// Parses and checks a stored manifest (its JSON) found at `name@version` in one pass, handing
/// its chunks to `sink`; the result is the same as [`Manifest::from_bytes`]'s, error for error.
pub fn read_slice<S: ChunkSink>(
    json: &[u8],
    name: &str,
    version: &str,
    sink: &mut S,
) -> Result<ManifestHead> {
    let parsed = parse(serde_json::de::SliceRead::new(json), sink);
    finish(parsed, name, version, || {
        probe(serde_json::de::SliceRead::new(json))
    })
}

/// [`read_slice`] over a reader, for a manifest too large to hold whole. Only when the manifest
/// does not parse is `reopen` called, for a fresh reader over the same bytes: the format probe
/// tells a manifest format this ldv does not read from damage, as [`Manifest::from_bytes`] does.
/// A read error becomes an unreadable-manifest error here: a caller whose reader can fail for
/// other reasons (a network) checks its own record of them first.
pub fn read_from<R: std::io::Read, S: ChunkSink>(
    reader: R,
    name: &str,
    version: &str,
    sink: &mut S,
    reopen: impl FnOnce() -> R,
) -> Result<ManifestHead> {
    let guarded = |r: R| std::io::BufReader::with_capacity(64 * 1024, Guarded::new(r));
    let parsed = parse(serde_json::de::IoRead::new(guarded(reader)), sink);
    finish(parsed, name, version, || {
        probe(serde_json::de::IoRead::new(guarded(reopen())))
    })
}

/// The longest string a streamed manifest may hold (names are at most 1 KiB; a metadata value
/// given on a command line at most 128 KiB).
pub const MAX_STRING: usize = 1 << 20;
/// The most whitespace in a row a streamed manifest may hold: ldv writes compact JSON.
pub const MAX_SPACE: usize = 4096;

/// A stored manifest on its way to the parser, refused as soon as it shows what ldv never
/// writes and what would cost memory or time to parse: a string longer than [`MAX_STRING`]
/// bytes (the parser holds a string whole) or more than [`MAX_SPACE`] bytes of whitespace in
/// a row (hundreds of megabytes of it would be read to the end).
struct Guarded<R> {
    inner: R,
    in_string: bool,
    escaped: bool,
    run: usize,
}

impl<R> Guarded<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            in_string: false,
            escaped: false,
            run: 0,
        }
    }
}

impl<R: std::io::Read> std::io::Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            if self.in_string {
                match b {
                    _ if self.escaped => self.escaped = false,
                    b'\\' => self.escaped = true,
                    b'"' => {
                        self.in_string = false;
                        self.run = 0;
                        continue;
                    }
                    _ => {}
                }
                self.run += 1;
                if self.run > MAX_STRING {
                    return Err(std::io::Error::other(format!(
                        "it holds a string longer than {MAX_STRING} bytes"
                    )));
                }
            } else if b == b'"' {
                self.in_string = true;
                self.run = 0;
            } else if b.is_ascii_whitespace() {
                self.run += 1;
                if self.run > MAX_SPACE {
                    return Err(std::io::Error::other(format!(
                        "it holds more than {MAX_SPACE} bytes of whitespace in a row"
                    )));
                }
            } else {
                self.run = 0;
            }
        }
        Ok(n)
    }
}

/// What a pass over the chunk list found: how far contiguous chunks cover the content, or the
/// first fault, exactly as a check of the whole list in order would report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cover {
    Contiguous(u64),
    GapAt(u64),
    Overflow,
}

impl Cover {
    fn add(self, c: &ChunkRef) -> Self {
        match self {
            Self::Contiguous(offset) if c.offset != offset || c.size == 0 => Self::GapAt(offset),
            Self::Contiguous(offset) => offset
                .checked_add(c.size)
                .map_or(Self::Overflow, Self::Contiguous),
            fault => fault,
        }
    }
}

/// Applies the old two-step reading's rules to one parse: a document that is not even a JSON
/// object with a `format` is unreadable (the probe's error), one of another format is a
/// configuration error, otherwise a parse error is damage; then the consistency checks.
fn finish(
    parsed: serde_json::Result<(ManifestHead, Cover)>,
    name: &str,
    version: &str,
    probe: impl FnOnce() -> serde_json::Result<u32>,
) -> Result<ManifestHead> {
    let what = format!("manifest {name}@{version}");
    let unreadable = |e: serde_json::Error| {
        Error::new(
            ErrorKind::IntegrityCheckFailed,
            format!("{what}: unreadable: {e}"),
        )
    };
    let other_format = |format: u32| {
        Error::config(format!(
            "{what}: manifest format {format} is not supported by this ldv (it reads formats {MANIFEST_FORMAT} and {TREE_MANIFEST_FORMAT})"
        ))
    };
    let known = |format: u32| format == MANIFEST_FORMAT || format == TREE_MANIFEST_FORMAT;
    let (head, cover) = match parsed {
        Ok((head, _)) if !known(head.format) => return Err(other_format(head.format)),
        Ok(parsed) => parsed,
        Err(e) => {
            return Err(match probe() {
                Err(probe_error) => unreadable(probe_error),
                Ok(format) if !known(format) => other_format(format),
                Ok(_) => unreadable(e),
            });
        }
    };
    check(&head, cover, name, version)?;
    Ok(head)
}

/// Checks that the manifest is consistent and belongs at `name@version`.
fn check(head: &ManifestHead, cover: Cover, name: &str, version: &str) -> Result<()> {
    let bad = |detail: String| {
        Err(Error::integrity(
            format!("manifest {name}@{version}"),
            detail,
        ))
    };
    if head.name != name || head.version != version {
        return bad(format!(
            "it describes {}@{} but is stored as {name}@{version}",
            head.name, head.version
        ));
    }
    if !is_version(&head.version) {
        return bad("malformed version".into());
    }
    match (head.format, &head.tree) {
        (MANIFEST_FORMAT, Some(_)) => return bad("a file manifest with a tree summary".into()),
        (TREE_MANIFEST_FORMAT, None) => return bad("a tree manifest without its summary".into()),
        (TREE_MANIFEST_FORMAT, Some(t)) if t.files > t.entries => {
            return bad("its tree summary counts more files than entries".into());
        }
        _ => {}
    }
    if head.sha256.len() != 64 || !head.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return bad("malformed sha256".into());
    }
    // A chunk its chunker cannot make would be decompressed into that much memory.
    if let Err(e) = head.chunker.validate() {
        return bad(format!(
            "its chunker is one ldv never writes ({})",
            e.message()
        ));
    }
    if head.largest_chunk > head.chunker.max_chunk() as u64 {
        return bad(format!(
            "a chunk of {} bytes is larger than its chunker ({}) makes",
            head.largest_chunk, head.chunker
        ));
    }
    match cover {
        Cover::GapAt(offset) => bad(format!("chunk list is not contiguous at offset {offset}")),
        Cover::Overflow => bad("chunk sizes overflow".into()),
        Cover::Contiguous(offset) if offset != head.size => bad(format!(
            "chunks cover {offset} bytes but size is {}",
            head.size
        )),
        Cover::Contiguous(_) => Ok(()),
    }
}

/// The `format` of a manifest document, read as the first step of the old two-step reading did.
fn probe<'de, R: serde_json::de::Read<'de>>(read: R) -> serde_json::Result<u32> {
    #[derive(Deserialize)]
    struct Probe {
        format: u32,
    }
    let mut de = serde_json::Deserializer::new(read);
    let probe = Probe::deserialize(&mut de)?;
    de.end()?;
    Ok(probe.format)
}

/// One pass over a manifest document: its fields, as `#[derive(Deserialize)]` on [`Manifest`]
/// reads them (unknown fields ignored, duplicates and missing ones refused), with each chunk
/// handed to `sink` instead of collected.
fn parse<'de, R: serde_json::de::Read<'de>, S: ChunkSink>(
    read: R,
    sink: &mut S,
) -> serde_json::Result<(ManifestHead, Cover)> {
    use serde::Deserializer as _;
    let mut de = serde_json::Deserializer::new(read);
    let parsed = (&mut de).deserialize_struct(
        "Manifest",
        FIELDS,
        ManifestVisitor {
            sink,
            cover: Cover::Contiguous(0),
            largest: 0,
        },
    )?;
    de.end()?;
    Ok(parsed)
}

const FIELDS: &[&str] = &[
    "format",
    "name",
    "version",
    "size",
    "sha256",
    "chunker",
    "created_at",
    "content_type",
    "metadata",
    "tree",
    "chunks",
];

struct ManifestVisitor<'s, S> {
    sink: &'s mut S,
    cover: Cover,
    largest: u64,
}

/// `created_at` as [`crate::time::serde_time`] reads it.
struct Time(SystemTime);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        crate::time::serde_time::deserialize(d).map(Time)
    }
}

/// The chunk list, handed to the sink element by element.
struct ChunksSeed<'a, S> {
    sink: &'a mut S,
    cover: &'a mut Cover,
    largest: &'a mut u64,
}

impl<'de, S: ChunkSink> serde::de::DeserializeSeed<'de> for ChunksSeed<'_, S> {
    type Value = u64;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<u64, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, S: ChunkSink> serde::de::Visitor<'de> for ChunksSeed<'_, S> {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<u64, A::Error> {
        let mut count = 0u64;
        while let Some(c) = seq.next_element::<ChunkRef>()? {
            *self.cover = self.cover.add(&c);
            *self.largest = (*self.largest).max(c.size);
            self.sink.chunk(c);
            count += 1;
        }
        Ok(count)
    }
}

impl<'de, S: ChunkSink> serde::de::Visitor<'de> for ManifestVisitor<'_, S> {
    type Value = (ManifestHead, Cover);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("struct Manifest")
    }

    /// An array reaches this only as `[format]` (the format probe refuses a longer one): it is
    /// refused as the derived reader refuses it, for want of a second element.
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        use serde::de::Error as _;
        const EXPECTED: &str = "struct Manifest with 11 elements";
        seq.next_element::<u32>()?
            .ok_or_else(|| A::Error::invalid_length(0, &EXPECTED))?;
        seq.next_element::<serde::de::IgnoredAny>()?;
        Err(A::Error::invalid_length(1, &EXPECTED))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        mut self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        use serde::de::Error as _;
        let mut format = None;
        let mut name = None;
        let mut version = None;
        let mut size = None;
        let mut sha256 = None;
        let mut chunker = None;
        let mut created_at: Option<Time> = None;
        let mut content_type: Option<Option<String>> = None;
        let mut metadata = None;
        let mut tree: Option<Option<TreeSummary>> = None;
        let mut chunk_count = None;
        /// Reads the value of a field seen at most once.
        fn once<'de, A: serde::de::MapAccess<'de>, T: Deserialize<'de>>(
            map: &mut A,
            slot: &mut Option<T>,
            field: &'static str,
        ) -> std::result::Result<(), A::Error> {
            if slot.is_some() {
                return Err(A::Error::duplicate_field(field));
            }
            *slot = Some(map.next_value()?);
            Ok(())
        }
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match key.as_ref() {
                "format" => once(&mut map, &mut format, "format")?,
                "name" => once(&mut map, &mut name, "name")?,
                "version" => once(&mut map, &mut version, "version")?,
                "size" => once(&mut map, &mut size, "size")?,
                "sha256" => once(&mut map, &mut sha256, "sha256")?,
                "chunker" => once(&mut map, &mut chunker, "chunker")?,
                "created_at" => once(&mut map, &mut created_at, "created_at")?,
                "content_type" => once(&mut map, &mut content_type, "content_type")?,
                "metadata" => once(&mut map, &mut metadata, "metadata")?,
                "tree" => once(&mut map, &mut tree, "tree")?,
                "chunks" => {
                    if chunk_count.is_some() {
                        return Err(A::Error::duplicate_field("chunks"));
                    }
                    chunk_count = Some(map.next_value_seed(ChunksSeed {
                        sink: &mut *self.sink,
                        cover: &mut self.cover,
                        largest: &mut self.largest,
                    })?);
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        let head = ManifestHead {
            format: format.ok_or_else(|| A::Error::missing_field("format"))?,
            name: name.ok_or_else(|| A::Error::missing_field("name"))?,
            version: version.ok_or_else(|| A::Error::missing_field("version"))?,
            size: size.ok_or_else(|| A::Error::missing_field("size"))?,
            sha256: sha256.ok_or_else(|| A::Error::missing_field("sha256"))?,
            chunker: chunker.ok_or_else(|| A::Error::missing_field("chunker"))?,
            created_at: created_at
                .ok_or_else(|| A::Error::missing_field("created_at"))?
                .0,
            content_type: content_type.unwrap_or_default(),
            metadata: metadata.unwrap_or_default(),
            tree: tree.unwrap_or_default(),
            chunk_count: chunk_count.ok_or_else(|| A::Error::missing_field("chunks"))?,
            largest_chunk: self.largest,
        };
        Ok((head, self.cover))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A streamed manifest of 300 MB of whitespace, or holding a 200 MB string, was read to its
    /// end (minutes in a debug build; the string held whole): the reader stops early now.
    #[test]
    fn streamed_manifests_stop_at_long_strings_and_whitespace_runs() {
        let read = |doc: Vec<u8>| {
            let again = doc.clone();
            read_from(
                std::io::Cursor::new(doc),
                "a",
                "20261207T000000000Z-00000000",
                &mut (),
                || std::io::Cursor::new(again),
            )
            .unwrap_err()
        };
        let mut spaces = vec![b' '; MAX_SPACE + 1];
        spaces.extend_from_slice(b"{}");
        assert!(read(spaces).message().contains("whitespace"));
        let mut long = br#"{"format":1,"name":""#.to_vec();
        long.extend(std::iter::repeat_n(b'x', MAX_STRING + 1));
        long.extend_from_slice(br#""}"#);
        let e = read(long);
        assert_eq!(e.kind(), ErrorKind::IntegrityCheckFailed);
        assert!(e.message().contains("string longer"), "{e}");
        // Escaped quotes stay inside the string; whitespace inside a string is not a run.
        let mut ok = br#"{"format":1,"name":"\"   "#.to_vec();
        ok.extend(std::iter::repeat_n(b' ', MAX_SPACE * 2));
        ok.extend_from_slice(br#""}"#);
        assert!(!read(ok).message().contains("whitespace"));
    }

    fn sample() -> Manifest {
        let v = super::super::layout::new_version(SystemTime::now());
        Manifest {
            format: 1,
            name: "a/b".into(),
            version: v,
            size: 10,
            sha256: "0".repeat(64),
            chunker: ChunkerConfig::default(),
            created_at: SystemTime::now(),
            content_type: None,
            metadata: BTreeMap::new(),
            tree: None,
            chunks: vec![
                ChunkRef {
                    offset: 0,
                    size: 4,
                    id: ChunkId::of(b"x"),
                    stored: None,
                },
                ChunkRef {
                    offset: 4,
                    size: 6,
                    id: ChunkId::of(b"y"),
                    stored: Some(13),
                },
            ],
        }
    }

    /// A chunk larger than its manifest's chunker makes (a 1 GiB chunk of a 16 MiB chunker,
    /// its frame a zstd bomb) was decompressed whole: now the manifest is damage.
    #[test]
    fn a_chunk_larger_than_the_chunker_makes_is_damage() {
        let mut m = sample();
        let big = ChunkerConfig::default().max_chunk() as u64 + 1;
        m.chunks[1].size = big;
        m.size = 4 + big;
        let e = Manifest::from_bytes(&m.to_bytes(), &m.name, &m.version).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::IntegrityCheckFailed);
        assert!(e.message().contains("larger than its chunker"), "{e}");
        let mut m = sample();
        m.chunker = ChunkerConfig::Fixed {
            size: 0,
            min_chunk_threshold: 0,
        };
        let e = Manifest::from_bytes(&m.to_bytes(), &m.name, &m.version).unwrap_err();
        assert!(e.message().contains("chunker"), "{e}");
    }

    #[test]
    fn manifests_round_trip_and_are_checked() {
        let m = sample();
        let parsed = Manifest::from_bytes(&m.to_bytes(), &m.name, &m.version).unwrap();
        assert_eq!(parsed.chunks, m.chunks);
        assert!(Manifest::from_bytes(&m.to_bytes(), "other", &m.version).is_err());
        let mut gap = m.clone();
        gap.chunks[1].offset = 5;
        assert!(Manifest::from_bytes(&gap.to_bytes(), &m.name, &m.version).is_err());
        let mut future = serde_json::to_value(&m).unwrap();
        future["format"] = 3.into();
        let err = Manifest::from_bytes(&serde_json::to_vec(&future).unwrap(), &m.name, &m.version)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConfigurationError);
    }

    /// The reading this module replaced, kept as the reference the one-pass reading must
    /// agree with: a format probe, a full parse into a `Manifest`, then checks of the whole.
    fn two_pass(bytes: &[u8], name: &str, version: &str) -> Result<Manifest> {
        let what = format!("manifest {name}@{version}");
        #[derive(Deserialize)]
        struct Probe {
            format: u32,
        }
        let unreadable = |e: serde_json::Error| {
            Error::new(
                ErrorKind::IntegrityCheckFailed,
                format!("{what}: unreadable: {e}"),
            )
        };
        let probe: Probe = serde_json::from_slice(bytes).map_err(unreadable)?;
        if probe.format != MANIFEST_FORMAT && probe.format != TREE_MANIFEST_FORMAT {
            return Err(Error::config(format!(
                "{what}: manifest format {} is not supported by this ldv (it reads formats {MANIFEST_FORMAT} and {TREE_MANIFEST_FORMAT})",
                probe.format
            )));
        }
        let m: Manifest = serde_json::from_slice(bytes).map_err(unreadable)?;
        let bad = |detail: String| Err(Error::integrity(&what, detail));
        if m.name != name || m.version != version {
            return bad(format!(
                "it describes {}@{} but is stored as {name}@{version}",
                m.name, m.version
            ));
        }
        if !is_version(&m.version) {
            return bad("malformed version".into());
        }
        match (m.format, &m.tree) {
            (MANIFEST_FORMAT, Some(_)) => return bad("a file manifest with a tree summary".into()),
            (TREE_MANIFEST_FORMAT, None) => {
                return bad("a tree manifest without its summary".into());
            }
            (TREE_MANIFEST_FORMAT, Some(t)) if t.files > t.entries => {
                return bad("its tree summary counts more files than entries".into());
            }
            _ => {}
        }
        if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return bad("malformed sha256".into());
        }
        if let Err(e) = m.chunker.validate() {
            return bad(format!(
                "its chunker is one ldv never writes ({})",
                e.message()
            ));
        }
        let largest = m.chunks.iter().map(|c| c.size).max().unwrap_or(0);
        if largest > m.chunker.max_chunk() as u64 {
            return bad(format!(
                "a chunk of {largest} bytes is larger than its chunker ({}) makes",
                m.chunker
            ));
        }
        let mut offset = 0u64;
        for c in &m.chunks {
            if c.offset != offset || c.size == 0 {
                return bad(format!("chunk list is not contiguous at offset {offset}"));
            }
            offset = offset
                .checked_add(c.size)
                .ok_or_else(|| Error::integrity(&what, "chunk sizes overflow"))?;
        }
        if offset != m.size {
            return bad(format!(
                "chunks cover {offset} bytes but size is {}",
                m.size
            ));
        }
        Ok(m)
    }

    /// A reader that hands out one byte per call, so the parser's reader path sees every
    /// boundary.
    struct Trickle<'a>(&'a [u8]);

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            match (self.0.split_first(), out.first_mut()) {
                (Some((&b, rest)), Some(slot)) => {
                    *slot = b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    /// Reads `bytes` the one-pass ways (from a slice, and from a reader) and checks both agree
    /// with [`two_pass`]: the same manifest, or the same error kind and message.
    fn assert_agrees(bytes: &[u8], name: &str, version: &str) {
        let reference = two_pass(bytes, name, version);
        let mut chunks = Vec::new();
        let sliced = read_slice(bytes, name, version, &mut chunks)
            .map(|head| Manifest::from_head(head, std::mem::take(&mut chunks)));
        let mut chunks = Vec::new();
        let streamed = read_from(Trickle(bytes), name, version, &mut chunks, || {
            Trickle(bytes)
        })
        .map(|head| Manifest::from_head(head, chunks));
        let shown = String::from_utf8_lossy(bytes);
        for (how, got) in [("slice", sliced), ("reader", streamed)] {
            match (&reference, &got) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{how}: {shown}"),
                (Err(a), Err(b)) => {
                    assert_eq!(a.kind(), b.kind(), "{how}: {a} / {b}: {shown}");
                    // serde_json places some errors one column later reading from a reader
                    // than from a slice: only the reader's position may differ.
                    let (a, b) = (a.to_string(), b.to_string());
                    let unplaced = |m: &str| {
                        m.rsplit_once(" at line ")
                            .map_or(m.to_owned(), |(m, _)| m.to_owned())
                    };
                    if how == "slice" {
                        assert_eq!(a, b, "{how}: {shown}");
                    } else {
                        assert_eq!(unplaced(&a), unplaced(&b), "{how}: {shown}");
                    }
                }
                (a, b) => panic!("{how}: two-pass {a:?}, one-pass {b:?}: {shown}"),
            }
        }
    }

    /// What the property test does to a sound manifest's JSON before reading it.
    #[derive(Debug, Clone)]
    enum Spoil {
        None,
        Remove(usize),
        Retype(usize, serde_json::Value),
        Duplicate(usize),
        Unknown,
        Format(u32),
        ChunkField(usize, &'static str, serde_json::Value),
        Truncate(usize),
        Flip(usize, u8),
        Array,
        Wrap(serde_json::Value),
    }

    fn spoil() -> impl proptest::strategy::Strategy<Value = Spoil> {
        use proptest::prelude::*;
        use serde_json::json;
        let value = prop_oneof![
            Just(json!(null)),
            Just(json!(1)),
            Just(json!(-1)),
            Just(json!(1.5)),
            Just(json!("x")),
            Just(json!([])),
            Just(json!({})),
            Just(json!(u64::MAX)),
            Just(json!(0)),
        ];
        let chunk_field = prop_oneof![
            Just("offset"),
            Just("size"),
            Just("id"),
            Just("stored"),
            Just("extra")
        ];
        prop_oneof![
            Just(Spoil::None),
            (0..FIELDS.len()).prop_map(Spoil::Remove),
            (0..FIELDS.len(), value.clone()).prop_map(|(f, v)| Spoil::Retype(f, v)),
            (0..FIELDS.len()).prop_map(Spoil::Duplicate),
            Just(Spoil::Unknown),
            prop_oneof![Just(0u32), Just(2), Just(u32::MAX)].prop_map(Spoil::Format),
            (0..8usize, chunk_field, value.clone())
                .prop_map(|(i, f, v)| Spoil::ChunkField(i, f, v)),
            any::<usize>().prop_map(Spoil::Truncate),
            (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Spoil::Flip(at, b)),
            Just(Spoil::Array),
            value.prop_map(Spoil::Wrap),
        ]
    }

    /// A sound manifest's JSON, spoiled as `how` says.
    fn spoiled(m: &Manifest, how: &Spoil) -> Vec<u8> {
        let mut v = serde_json::to_value(m).unwrap();
        let obj = v.as_object_mut().unwrap();
        match how {
            Spoil::None => {}
            Spoil::Remove(f) => {
                obj.remove(FIELDS[*f]);
            }
            Spoil::Retype(f, value) => {
                obj.insert(FIELDS[*f].into(), value.clone());
            }
            Spoil::Duplicate(f) => {
                // serde_json's maps hold a key once: splice a second copy into the text.
                let json = serde_json::to_string(&v).unwrap();
                let field = FIELDS[*f];
                let copy = serde_json::to_string(v.get(field).unwrap_or(&serde_json::Value::Null))
                    .unwrap();
                return format!("{{\"{field}\":{copy},{}", &json[1..]).into_bytes();
            }
            Spoil::Unknown => {
                obj.insert("future".into(), serde_json::json!({"a": [1, 2]}));
            }
            Spoil::Format(f) => {
                obj.insert("format".into(), (*f).into());
            }
            Spoil::ChunkField(i, field, value) => {
                let chunks = obj["chunks"].as_array_mut().unwrap();
                if !chunks.is_empty() {
                    let n = chunks.len();
                    chunks[i % n]
                        .as_object_mut()
                        .unwrap()
                        .insert((*field).into(), value.clone());
                }
            }
            Spoil::Truncate(at) => {
                let json = serde_json::to_vec(&v).unwrap();
                return json[..at % (json.len() + 1)].to_vec();
            }
            Spoil::Flip(at, b) => {
                let mut json = serde_json::to_vec(&v).unwrap();
                let n = json.len();
                json[at % n] = *b;
                return json;
            }
            Spoil::Array => {
                let values: Vec<serde_json::Value> =
                    FIELDS.iter().filter_map(|f| obj.get(*f).cloned()).collect();
                return serde_json::to_vec(&values).unwrap();
            }
            Spoil::Wrap(value) => return serde_json::to_vec(&[v.clone(), value.clone()]).unwrap(),
        }
        serde_json::to_vec(&v).unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn one_pass_reading_agrees_with_the_two_pass_reading(
            sizes in proptest::collection::vec(1u64..5000, 0..8),
            stored in proptest::collection::vec(proptest::option::of(0u64..9000), 8),
            content_type in proptest::option::of("[a-z/]{0,8}"),
            metadata in proptest::collection::btree_map("[a-z]{1,4}", "[a-z ]{0,6}", 0..3),
            how in spoil(),
        ) {
            let mut m = sample();
            let mut offset = 0;
            m.chunks = sizes
                .iter()
                .zip(&stored)
                .enumerate()
                .map(|(i, (&size, &stored))| {
                    let c = ChunkRef { offset, size, id: ChunkId::of(&i.to_le_bytes()), stored };
                    offset += size;
                    c
                })
                .collect();
            m.size = offset;
            m.content_type = content_type;
            m.metadata = metadata;
            let bytes = spoiled(&m, &how);
            assert_agrees(&bytes, &m.name, &m.version);
            assert_agrees(&bytes, "other", &m.version);
        }
    }

    #[test]
    fn one_pass_reading_agrees_on_hand_picked_documents() {
        let m = sample();
        let (name, version) = (m.name.as_str(), m.version.as_str());
        let sound = String::from_utf8(m.to_bytes()).unwrap();
        let docs = [
            String::new(),
            "null".into(),
            "[]".into(),
            "[1]".into(),
            "[2]".into(),
            "{}".into(),
            r#"{"format":2}"#.into(),
            r#"{"format":1}"#.into(),
            r#"{"format":2,"name":5}"#.into(),
            r#"{"format":1,"format":1}"#.into(),
            format!("{sound} "),
            format!("{sound}x"),
            format!(" \n{sound}"),
            sound.replace("\"chunks\":[", "\"chunks\":[{\"offset\":0},"),
            sound.replace("\"format\":1", "\"format\":\"1\""),
            sound.replace("\"name\"", "\"n\\u0061me\""),
            sound.replace("\"size\":10", "\"size\":11"),
            sound.replace("\"size\":6", "\"size\":18446744073709551615"),
        ];
        for doc in docs {
            assert_agrees(doc.as_bytes(), name, version);
        }
    }

    #[test]
    fn a_sink_sees_every_chunk_in_order_and_the_head_counts_them() {
        let m = sample();
        let mut ids = std::collections::HashSet::new();
        let head = read_slice(&m.to_bytes(), &m.name, &m.version, &mut ids).unwrap();
        assert_eq!(head.chunk_count, 2);
        assert_eq!(ids.len(), 2);
        let mut all = Vec::new();
        read_slice(&m.to_bytes(), &m.name, &m.version, &mut all).unwrap();
        assert_eq!(all, m.chunks);
    }

    #[test]
    fn ranges_select_overlapping_chunks() {
        let m = sample();
        assert_eq!(m.chunks_in(0, 10), 0..2);
        assert_eq!(m.chunks_in(0, 4), 0..1);
        assert_eq!(m.chunks_in(4, 5), 1..2);
        assert_eq!(m.chunks_in(3, 5), 0..2);
        assert_eq!(m.chunks_in(10, 10), 2..2);
    }
}
