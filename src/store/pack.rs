//! Packs (format 2): many chunk frames in one object, so small chunks cost an index entry, not an
//! object and a request each. A pack is `frame_1 … frame_n ‖ trailer ‖ u32 trailer length ‖
//! "LDVPACK2"`; the frames are exactly format 1's chunk frames (so gc copies them verbatim), and
//! the trailer lists `(chunk id, offset, length)` for each, so a pack can be re-indexed from
//! itself alone. A pack is named by the SHA-256 of its trailer (which lists every frame's chunk
//! id): uploading it twice is harmless.
//! The trailer carries random salt, so two writers that happen to pack the same frames still
//! make two packs; a pack that one writer's gc condemned is never revived by another's upload.
//! This module owns the byte layout only; writing packs and indexing them is the vault's.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::codec::Codec;
use super::layout::ChunkId;
use crate::error::{Error, ErrorKind, Result};

/// Prefix of every pack object.
pub const PACKS_PREFIX: &str = "packs/";
/// The last eight bytes of every pack.
pub const PACK_MAGIC: &[u8; 8] = b"LDVPACK2";
/// The pack's tail: trailer length (u32 LE) and magic.
pub const TAIL_LEN: usize = 4 + PACK_MAGIC.len();
/// The pack size a writer fills to before uploading, unless the vault says otherwise.
pub const DEFAULT_TARGET: u64 = 16 << 20;
/// Bounds of a vault's pack target.
pub const TARGET_RANGE: std::ops::RangeInclusive<u64> = (1 << 20)..=(128 << 20);
/// Largest pack a reader accepts: a target's worth plus the largest chunk frame.
pub const MAX_PACK: u64 = 1 << 30;
/// Bytes of one trailer entry: id, offset, length.
pub const ENTRY_LEN: usize = 32 + 4 + 4;
/// The first bytes of a trailer's body: never a sealed frame's `LDVC`, so a plain trailer is
/// never mistaken for a sealed one whatever its salt.
const TRAILER_MAGIC: &[u8; 4] = b"LDVT";
/// Random salt after the trailer's magic.
const SALT_LEN: usize = 16;
/// Bytes before a trailer's entry count.
const TRAILER_HEAD: usize = TRAILER_MAGIC.len() + SALT_LEN;
/// Largest trailer a reader accepts (about 400,000 entries).
pub const MAX_TRAILER: u64 = 16 << 20;
/// The context a sealed trailer is bound to.
const TRAILER_CONTEXT: &str = "ldv-pack-trailer";

/// The name of a pack: the SHA-256 of its trailer and tail. The trailer lists every frame by
/// chunk id (the hash of its content, checked whenever a frame is read) plus random salt, so it
/// names the pack's content without hashing every byte a third time (chunk ids and the file's
/// digest already hash it twice).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackId(pub [u8; 32]);

impl PackId {
    /// The SHA-256 of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        use sha2::Digest;
        Self(sha2::Sha256::digest(bytes).into())
    }

    /// The key of this pack: `packs/<2 hex>/<64 hex>`.
    pub fn key(&self) -> String {
        let hex = hex::encode(self.0);
        format!("{PACKS_PREFIX}{}/{hex}", &hex[..2])
    }

    /// Parses a pack key back into an id.
    pub fn from_key(key: &str) -> Option<Self> {
        let rest = key.strip_prefix(PACKS_PREFIX)?;
        let (dir, hex) = rest.split_once('/')?;
        let id: ChunkId = hex.parse().ok()?;
        (dir == &hex[..2]).then_some(Self(id.0))
    }
}

impl fmt::Display for PackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PackId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PackId({self})")
    }
}

/// Where one chunk's frame lies in its pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackEntry {
    /// The chunk.
    pub id: ChunkId,
    /// Offset of its frame in the pack.
    pub offset: u32,
    /// Length of its frame.
    pub len: u32,
}

/// A pack being filled: frames appended in order, then [`PackBuilder::finish`]ed.
#[derive(Debug, Default)]
pub struct PackBuilder {
    buf: BytesMut,
    entries: Vec<PackEntry>,
}

impl PackBuilder {
    /// An empty pack with room for `capacity` bytes of frames.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            buf: BytesMut::with_capacity(capacity),
            entries: Vec::new(),
        }
    }

    /// An empty pack filling `buf` (emptied first), a buffer of an uploaded pack: reusing it
    /// spares the page faults of a fresh 16 MiB allocation.
    pub fn with_buffer(mut buf: BytesMut) -> Self {
        buf.clear();
        Self {
            buf,
            entries: Vec::new(),
        }
    }

    /// Bytes of frames so far.
    pub fn len(&self) -> u64 {
        self.buf.len() as u64
    }

    /// Whether no frame was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends the frame of chunk `id`.
    pub fn push(&mut self, id: ChunkId, frame: &[u8]) {
        let entry = PackEntry {
            id,
            offset: u32::try_from(self.buf.len()).expect("a pack stays under 4 GiB"),
            len: u32::try_from(frame.len()).expect("a frame stays under 4 GiB"),
        };
        self.buf.extend_from_slice(frame);
        self.entries.push(entry);
    }

    /// Ends the pack: appends the trailer (sealed by `codec` in an encrypted vault) and the
    /// tail, and names it.
    pub fn finish(mut self, codec: &Codec) -> (PackId, Bytes, Vec<PackEntry>) {
        let trailer = codec.encode_manifest(TRAILER_CONTEXT, encode_trailer(&self.entries));
        self.buf.extend_from_slice(&trailer);
        self.buf
            .put_u32_le(u32::try_from(trailer.len()).expect("a trailer stays under 4 GiB"));
        self.buf.extend_from_slice(PACK_MAGIC);
        let bytes = self.buf.freeze();
        let frames_len = bytes.len() - trailer.len() - TAIL_LEN;
        (PackId::of(&bytes[frames_len..]), bytes, self.entries)
    }
}

fn encode_trailer(entries: &[PackEntry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(TRAILER_HEAD + 4 + entries.len() * ENTRY_LEN);
    out.extend_from_slice(TRAILER_MAGIC);
    out.extend_from_slice(&rand::random::<[u8; SALT_LEN]>());
    out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    for e in entries {
        out.extend_from_slice(&e.id.0);
        out.extend_from_slice(&e.offset.to_le_bytes());
        out.extend_from_slice(&e.len.to_le_bytes());
    }
    out
}

/// Reads a pack's tail (its last [`TAIL_LEN`] bytes) into the trailer's length; `pack_len` is
/// the pack's size and `what` names it in errors.
pub fn parse_tail(tail: &[u8], pack_len: u64, what: &str) -> Result<u64> {
    if tail.len() != TAIL_LEN || &tail[4..] != PACK_MAGIC {
        return Err(Error::integrity(
            what,
            "is not an ldv pack (no LDVPACK2 tail)",
        ));
    }
    let len = u64::from(u32::from_le_bytes(tail[..4].try_into().expect("4 bytes")));
    if len > MAX_TRAILER || len + TAIL_LEN as u64 > pack_len {
        return Err(Error::integrity(
            what,
            format!("claims a {len}-byte trailer, which does not fit its {pack_len} bytes"),
        ));
    }
    Ok(len)
}

/// Parses a pack's stored trailer (opened by `codec`) into its entries, checking that every
/// frame lies inside the `frames_len` bytes before the trailer, in order and without overlap.
pub fn parse_trailer(
    codec: &Codec,
    stored: Bytes,
    frames_len: u64,
    what: &str,
) -> Result<Vec<PackEntry>> {
    let body = codec.decode_manifest(TRAILER_CONTEXT, stored, what)?;
    let bad = |why: String| Error::integrity(what, format!("has a damaged trailer: {why}"));
    if body.len() < TRAILER_HEAD + 4 {
        return Err(bad(format!("{} bytes is too short", body.len())));
    }
    if &body[..TRAILER_MAGIC.len()] != TRAILER_MAGIC {
        return Err(bad("it does not start with LDVT".into()));
    }
    let count =
        u32::from_le_bytes(body[TRAILER_HEAD..TRAILER_HEAD + 4].try_into().expect("4")) as usize;
    let rest = &body[TRAILER_HEAD + 4..];
    if rest.len() != count.saturating_mul(ENTRY_LEN) {
        return Err(bad(format!(
            "it lists {count} entries in {} bytes",
            rest.len()
        )));
    }
    let mut entries = Vec::with_capacity(count);
    let mut end = 0u64;
    for raw in rest.chunks_exact(ENTRY_LEN) {
        let e = PackEntry {
            id: ChunkId(raw[..32].try_into().expect("32")),
            offset: u32::from_le_bytes(raw[32..36].try_into().expect("4")),
            len: u32::from_le_bytes(raw[36..40].try_into().expect("4")),
        };
        let (start, stop) = (u64::from(e.offset), u64::from(e.offset) + u64::from(e.len));
        if start < end || stop > frames_len || e.len == 0 {
            return Err(bad(format!(
                "chunk {} at {start}..{stop} overlaps another or lies outside the {frames_len} bytes of frames",
                e.id
            )));
        }
        end = stop;
        entries.push(e);
    }
    Ok(entries)
}

/// Parses a whole pack held in memory into its entries.
pub fn parse_pack(codec: &Codec, pack: &Bytes, what: &str) -> Result<Vec<PackEntry>> {
    let len = pack.len() as u64;
    if pack.len() < TAIL_LEN {
        return Err(Error::integrity(what, "is too short to be an ldv pack"));
    }
    let trailer_len = parse_tail(&pack[pack.len() - TAIL_LEN..], len, what)?;
    let frames_len = len - TAIL_LEN as u64 - trailer_len;
    let trailer = pack.slice(frames_len as usize..pack.len() - TAIL_LEN);
    parse_trailer(codec, trailer, frames_len, what)
}

/// The error for a pack object that is not where its index says.
pub fn missing(pack: PackId, id: ChunkId) -> Error {
    Error::new(
        ErrorKind::IntegrityCheckFailed,
        format!("chunk {id}: pack {pack} that holds it is missing from the vault"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pack_reindexes_from_its_own_trailer() {
        let codec = Codec::plain();
        let mut b = PackBuilder::with_capacity(1024);
        let frames: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 10 + i as usize]).collect();
        for (i, f) in frames.iter().enumerate() {
            b.push(ChunkId::of(&[i as u8]), f);
        }
        let (id, bytes, entries) = b.finish(&codec);
        let frames_len: usize = entries.iter().map(|e| e.len as usize).sum();
        assert_eq!(id, PackId::of(&bytes[frames_len..]));
        assert_eq!(PackId::from_key(&id.key()), Some(id));
        let parsed = parse_pack(&codec, &bytes, "pack").unwrap();
        assert_eq!(parsed, entries);
        for (e, f) in parsed.iter().zip(&frames) {
            let at = e.offset as usize;
            assert_eq!(&bytes[at..at + e.len as usize], &f[..]);
        }
        // The same frames packed again make another pack (salt): never an alias of the first.
        let mut again = PackBuilder::default();
        for (i, f) in frames.iter().enumerate() {
            again.push(ChunkId::of(&[i as u8]), f);
        }
        assert_ne!(again.finish(&codec).0, id);
    }

    #[test]
    fn a_plain_trailer_never_reads_as_a_sealed_frame() {
        // Whatever the salt, a plain trailer starts with LDVT, never a sealed frame's LDVC.
        let codec = Codec::plain();
        for _ in 0..64 {
            let mut b = PackBuilder::default();
            b.push(ChunkId::of(b"x"), b"frame-x");
            let (_, bytes, entries) = b.finish(&codec);
            assert_eq!(&bytes[7..11], TRAILER_MAGIC);
            assert_eq!(parse_pack(&codec, &bytes, "p").unwrap(), entries);
        }
    }

    #[test]
    fn damaged_trailers_are_refused() {
        let codec = Codec::plain();
        let mut b = PackBuilder::default();
        b.push(ChunkId::of(b"a"), b"frame-a");
        b.push(ChunkId::of(b"b"), b"frame-b");
        let (_, bytes, _) = b.finish(&codec);
        for cut in [1, 8, 12, 40] {
            let short = bytes.slice(cut..);
            assert!(parse_pack(&codec, &short, "p").is_err(), "cut {cut}");
        }
        let mut overlapping = bytes.to_vec();
        // Second entry's offset (after salt, count, first entry) moved back into the first frame.
        let at = 14 + TRAILER_HEAD + 4 + ENTRY_LEN + 32;
        overlapping[at] = 1;
        let err = parse_pack(&codec, &Bytes::from(overlapping), "p").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::IntegrityCheckFailed);
        assert!(err.to_string().contains("overlaps"), "{err}");
    }
}
