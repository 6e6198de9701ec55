//! Fuzz targets: one function per parser of bytes ldv may get from someone else (a shared
//! bucket, a restored backup, a user's flags and profile). Each takes arbitrary bytes, must never
//! panic, and asserts the properties that are cheap to check (a frame that decodes is exactly
//! its declared size, a parsed manifest re-serializes to the same value, a valid name has no
//! `..` segment, ...). A panic is a finding.
//!
//! The bodies live in the library so that two drivers share them: the coverage-guided fuzzer in
//! `fuzz/` (cargo-fuzz, libFuzzer) and the mutation test in `tests/fuzz.rs`, which replays the
//! committed corpus and mutates it for a few seconds per target in every test run. [`seeds`]
//! makes valid objects with ldv's own writers for both. Not a stable API.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Deserialize;

use crate::backend::memory::MemoryBackend;
use crate::backend::{Backend, BackendConfig, DynBackend, MAX_KEY_LEN, PutMode};
use crate::cli::args::GlobalArgs;
use crate::cli::settings::{Settings, parse_vault_url};
use crate::config::{LoadedConfig, Secret, parse_size};
use crate::store::chunker::ChunkerConfig;
use crate::store::codec::{
    self, Algorithm, CHUNK_PURPOSE, Codec, CompressionConfig, HEADER_LEN, MAX_DECODED, PlainChunk,
};
use crate::store::crypto::{self, Cipher, KdfParams, KeyBytes, KeySlot, SlotKind, VaultKeys};
use crate::store::index::{self, Location, Mark, Segment};
use crate::store::keys::{KeyProvider, PassphraseKey, RawKey};
use crate::store::layout::{self, ChunkId, ObjectRef};
use crate::store::locks::{LockInfo, LockKind};
use crate::store::manifest::{self, ChunkRef, Manifest};
use crate::store::pack::{self, PackEntry, PackId};
use crate::store::tree;
use crate::store::{Descriptor, EncryptionOptions, Vault, VaultOptions, parse_descriptor};

/// A fuzz target: takes any bytes, panics only on a finding.
pub type Target = fn(&[u8]);

/// Every target by name, in the order the fuzz script runs them.
pub const TARGETS: &[(&str, Target)] = &[
    ("frame", frame),
    ("frame_zstd", frame_zstd),
    ("frame_lz4", frame_lz4),
    ("frame_gzip", frame_gzip),
    ("frame_sealed", frame_sealed),
    ("frame_round_trip", frame_round_trip),
    ("manifest", manifest),
    ("manifest_sealed", manifest_sealed),
    ("tree_listing", tree_listing),
    ("pack", pack),
    ("index_segment", index_segment),
    ("gc_mark", gc_mark),
    ("descriptor", descriptor),
    ("lock", lock),
    ("profile", profile),
    ("name", name),
    ("range", range),
    ("vault_url", vault_url),
    ("backend_key", backend_key),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The raw key of the encrypted vault the targets open; fixed so that a corpus stays valid.
pub const TEST_KEY: [u8; 32] = [0x5a; 32];
/// The id of that vault (part of every derived key).
pub const TEST_VAULT_ID: &str = "fuzz-vault";
/// The passphrase of the passphrase slots in seed descriptors.
pub const TEST_PASSPHRASE: &str = "fuzz passphrase";
/// The storage key the sealed-manifest target opens manifests at.
pub const MANIFEST_KEY: &str = "manifests/fuzz/20260101T000000000Z-00000000";

fn test_keys(cipher: Cipher) -> Arc<VaultKeys> {
    static KEYS: OnceLock<[Arc<VaultKeys>; 2]> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305].map(|c| {
            Arc::new(VaultKeys::derive(
                c,
                &KeyBytes::new(TEST_KEY),
                TEST_VAULT_ID,
            ))
        })
    });
    Arc::clone(&keys[usize::from(cipher == Cipher::ChaCha20Poly1305)])
}

fn sealed_codec(cipher: Cipher) -> Codec {
    Codec::new(CompressionConfig::NONE, Some(test_keys(cipher)))
}

/// Splits a little-endian `u32` off the front (missing bytes read as zero).
fn take_u32(data: &[u8]) -> (u32, &[u8]) {
    let mut n = [0u8; 4];
    let k = data.len().min(4);
    n[..k].copy_from_slice(&data[..k]);
    (u32::from_le_bytes(n), &data[k..])
}

fn take_u64(data: &[u8]) -> (u64, &[u8]) {
    let mut n = [0u8; 8];
    let k = data.len().min(8);
    n[..k].copy_from_slice(&data[..k]);
    (u64::from_le_bytes(n), &data[k..])
}

fn header(compression: u8, cipher: u8) -> [u8; HEADER_LEN] {
    codec::frame_header(compression, cipher)
}

/// The properties of any decode: success means exactly `size` bytes, failure is damage.
fn check_decoded(result: crate::Result<Bytes>, size: u64) -> Option<Bytes> {
    match result {
        Ok(out) => {
            assert_eq!(out.len() as u64, size, "a frame decoded to another size");
            assert!(size <= MAX_DECODED, "a size over the limit decoded");
            Some(out)
        }
        Err(e) => {
            assert_eq!(
                e.kind(),
                crate::ErrorKind::IntegrityCheckFailed,
                "a bad frame is damage: {e}"
            );
            None
        }
    }
}

/// A stored chunk frame of a plain vault: `[size: u32 LE][frame]`, where size is the plaintext
/// length a manifest would record.
pub fn frame(data: &[u8]) {
    let (size, stored) = take_u32(data);
    let id = ChunkId([0; 32]);
    let out = check_decoded(
        Codec::plain().decode_chunk(id, Bytes::copy_from_slice(stored), u64::from(size)),
        u64::from(size),
    );
    if let Some(out) = out
        && stored[5] == 0
    {
        assert_eq!(&out[..], &stored[HEADER_LEN..], "a stored frame changed");
    }
    if let Ok(out) = codec::decode(Bytes::copy_from_slice(stored), "fuzz") {
        assert!(out.len() as u64 <= MAX_DECODED);
    }
}

/// A compressed payload behind a valid header: `[size: u32 LE][payload]`.
fn compressed(code: u8, data: &[u8]) {
    let (size, payload) = take_u32(data);
    let mut stored = header(code, 0).to_vec();
    stored.extend_from_slice(payload);
    check_decoded(
        Codec::plain().decode_chunk(ChunkId([0; 32]), Bytes::from(stored), u64::from(size)),
        u64::from(size),
    );
}

/// A zstd frame of a chunk: `[size: u32 LE][zstd payload]`.
pub fn frame_zstd(data: &[u8]) {
    compressed(2, data);
}

/// An lz4 frame of a chunk: `[size: u32 LE][lz4 block]`.
pub fn frame_lz4(data: &[u8]) {
    compressed(3, data);
}

/// A gzip frame of a chunk: `[size: u32 LE][gzip stream]`.
pub fn frame_gzip(data: &[u8]) {
    compressed(1, data);
}

/// A chunk frame of an encrypted vault (fixed test key): `[mode][size: u32 LE][rest]`. Mode bit
/// 0 clear: `rest` is the stored frame, as an attacker without the key could write it. Set:
/// `rest` is `[compression code][payload]`, sealed here under the right key, so the
/// decompressors behind the AEAD are reached too. Mode bit 1 picks ChaCha20-Poly1305.
pub fn frame_sealed(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let cipher = if mode & 2 == 0 {
        Cipher::Aes256Gcm
    } else {
        Cipher::ChaCha20Poly1305
    };
    let codec = sealed_codec(cipher);
    let (size, rest) = take_u32(rest);
    let id = ChunkId([7; 32]);
    let stored = if mode & 1 == 0 {
        Bytes::copy_from_slice(rest)
    } else {
        let Some((&code, payload)) = rest.split_first() else {
            return;
        };
        codec.seal(code, CHUNK_PURPOSE, &id.0, payload)
    };
    let out = check_decoded(
        codec.decode_chunk(id, stored, u64::from(size)),
        u64::from(size),
    );
    if let (Some(out), true) = (out, mode & 1 == 1 && rest.first() == Some(&0)) {
        assert_eq!(&out[..], &rest[1..], "a sealed payload changed");
    }
}

/// Any chunk, written by every compression and cipher: `[selector][plaintext]`. It must decode
/// to itself, and to nothing under a wrong size or another chunk's id.
pub fn frame_round_trip(data: &[u8]) {
    let Some((&sel, plain)) = data.split_first() else {
        return;
    };
    let algorithm = [
        Algorithm::None,
        Algorithm::Gzip,
        Algorithm::Zstd,
        Algorithm::Lz4,
    ][usize::from(sel % 4)];
    let keys = match (sel / 4) % 3 {
        0 => None,
        1 => Some(test_keys(Cipher::Aes256Gcm)),
        _ => Some(test_keys(Cipher::ChaCha20Poly1305)),
    };
    let codec = Codec::new(
        CompressionConfig {
            algorithm,
            level: algorithm.default_level(),
            min_size: u64::from(sel / 12 % 4) * 16,
        },
        keys,
    );
    let id = codec.chunk_id(plain);
    let stored = codec.encode_chunk(id, &PlainChunk::copy_from(plain));
    let n = plain.len() as u64;
    let back = codec
        .decode_chunk(id, stored.clone(), n)
        .expect("a frame ldv wrote decodes");
    assert_eq!(&back[..], plain, "round trip changed the chunk");
    assert!(
        codec.decode_chunk(id, stored.clone(), n + 1).is_err(),
        "a frame decoded to a size it does not have"
    );
    if codec.cipher().is_some() {
        let other = ChunkId([!id.0[0]; 32]);
        assert!(
            codec.decode_chunk(other, stored, n).is_err(),
            "a sealed frame opened as another chunk"
        );
    }
}

/// Where a manifest says it belongs, so that the parser's checks past that one are reached.
fn manifest_address(raw: &[u8]) -> (String, String) {
    #[derive(Deserialize)]
    struct Address {
        name: String,
        version: String,
    }
    serde_json::from_slice::<Address>(raw)
        .map(|a| (a.name, a.version))
        .unwrap_or_else(|_| ("fuzz".into(), "20260101T000000000Z-00000000".into()))
}

/// The properties of a manifest that parsed.
fn check_manifest(m: &Manifest, name: &str, version: &str) {
    let again = Manifest::from_bytes(&m.to_bytes(), name, version)
        .expect("a manifest that parsed re-parses after serializing");
    // Times are stored to the millisecond; a stored one may have more digits.
    let mut truncated = m.clone();
    truncated.created_at = again.created_at;
    assert_eq!(truncated, again, "a manifest changed through a round trip");
    let ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).ok();
    assert_eq!(ms(m.created_at), ms(again.created_at), "created_at moved");
    assert_eq!(m.chunks.iter().map(|c| c.size).sum::<u64>(), m.size);
    assert_eq!(m.chunks_in(0, m.size), 0..m.chunks.len());
    for c in &m.chunks {
        let r = m.chunks_in(c.offset, c.offset + 1);
        assert!(
            r.start < r.end && m.chunks[r.start] == *c,
            "chunks_in missed {c:?}"
        );
    }
    assert!(m.chunks_in(m.size, u64::MAX).is_empty());
}

/// Hands out its bytes a few at a time, so a streaming parser meets every split of its input.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Parses `json` as every manifest reader does (whole, and streamed a few bytes at a time into
/// each kind of sink): they must agree, error for error, and the head must count its chunks.
fn read_manifest(json: &[u8], name: &str, version: &str) -> Option<Manifest> {
    let whole = Manifest::from_bytes(json, name, version);
    // The streamed reader also refuses long strings and whitespace runs that no short input has.
    if json.len() <= manifest::MAX_SPACE {
        let step = json.len() % 7 + 1;
        let trickle = || Trickle { data: json, step };
        let mut chunks = Vec::new();
        let streamed = manifest::read_from(trickle(), name, version, &mut chunks, trickle);
        match (&whole, &streamed) {
            (Ok(m), Ok(head)) => {
                assert_eq!(Manifest::from_head(head.clone(), chunks), *m);
                assert_eq!(head.chunk_count, m.chunks.len() as u64);
                let largest = m.chunks.iter().map(|c| c.size).max().unwrap_or(0);
                assert_eq!(head.largest_chunk, largest);
            }
            (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind(), "{a} / {b}"),
            (a, b) => panic!("the readers disagree: whole {a:?}, streamed {b:?}"),
        }
        let mut ids = std::collections::HashSet::new();
        let by_id = manifest::read_slice(json, name, version, &mut ids);
        let counted = manifest::read_slice(json, name, version, &mut ());
        assert_eq!(by_id.is_ok(), whole.is_ok());
        assert_eq!(counted.ok(), by_id.ok());
    }
    whole.ok()
}

/// A stored manifest of a plain vault (JSON).
pub fn manifest(data: &[u8]) {
    let (name, version) = manifest_address(data);
    if let Some(m) = read_manifest(data, &name, &version) {
        check_manifest(&m, &name, &version);
    }
}

/// A tree's listing (the content of a tree version) as `[u32 LE largest chunk][listing]`: one
/// that parses is canonical (it re-encodes to the same bytes), names only paths inside the
/// tree's root, each inside a directory entry, and lists files whose chunks add up to their
/// size, none larger than the limit.
pub fn tree_listing(data: &[u8]) {
    let (max, listing) = take_u32(data);
    let max = u64::from(max);
    let Ok(parsed) = tree::parse(listing, max) else {
        return;
    };
    assert_eq!(
        tree::encode(&parsed.entries),
        listing,
        "a listing that parsed is not what it re-encodes to"
    );
    for (i, e) in parsed.entries.iter().enumerate() {
        assert!(tree::path_fault(&e.path).is_none(), "a bad path parsed");
        let parts: Vec<&[u8]> = e.path.split(|&b| b == b'/').collect();
        assert!(
            !parts
                .iter()
                .any(|p| p.is_empty() || *p == b".." || *p == b".")
        );
        if parts.len() > 1 {
            let parent = &e.path[..e.path.len() - parts[parts.len() - 1].len() - 1];
            let dir = parsed.find(parent).expect("a parent was checked");
            assert_eq!(dir.kind, tree::Kind::Dir, "an entry below a non-directory");
        }
        assert_eq!(parsed.find(&e.path), Some(e), "entry {i} cannot be found");
        let sum: u64 = e.chunks.iter().map(|c| u64::from(c.size)).sum();
        if e.kind == tree::Kind::File {
            assert_eq!(sum, e.size);
            assert!(e.chunks.iter().all(|c| u64::from(c.size) <= max));
        } else {
            assert!(e.chunks.is_empty());
        }
    }
}

/// A stored manifest of an encrypted vault (fixed test key) at [`MANIFEST_KEY`]: `[mode][rest]`.
/// Mode bit 0 clear: `rest` is the stored object; set: `rest` is manifest JSON sealed here under
/// the right key. Mode bit 1 picks ChaCha20-Poly1305.
pub fn manifest_sealed(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let cipher = if mode & 2 == 0 {
        Cipher::Aes256Gcm
    } else {
        Cipher::ChaCha20Poly1305
    };
    let codec = sealed_codec(cipher);
    let stored = if mode & 1 == 0 {
        Bytes::copy_from_slice(rest)
    } else {
        codec.encode_manifest(MANIFEST_KEY, rest.to_vec())
    };
    let Ok(json) = codec.decode_manifest(MANIFEST_KEY, stored, "manifest") else {
        assert!(
            mode & 1 == 0,
            "a manifest sealed under the vault key did not open"
        );
        return;
    };
    if mode & 1 == 1 {
        assert_eq!(&json[..], rest, "a sealed manifest changed");
    }
    let (name, version) = layout::parse_manifest_key(MANIFEST_KEY).expect("a manifest key");
    if let Some(m) = read_manifest(&json, name, version) {
        check_manifest(&m, name, version);
    }
}

/// The context a sealed pack trailer is bound to (`store::pack`'s, private there). If the two
/// drift apart, the `pack` seeds that seal a trailer here stop agreeing with their plain twins
/// and the seed test fails.
const PACK_TRAILER_CONTEXT: &str = "ldv-pack-trailer";
/// The context a sealed index segment is bound to (`store::index`'s, private there; checked the
/// same way by the `index_segment` seeds).
const SEGMENT_CONTEXT: &str = "ldv-index-segment";

/// The cipher a target's mode byte picks (bit 1): AES-256-GCM or ChaCha20-Poly1305.
fn mode_cipher(mode: u8) -> Cipher {
    if mode & 2 == 0 {
        Cipher::Aes256Gcm
    } else {
        Cipher::ChaCha20Poly1305
    }
}

/// Reads a pack as ldv does, whole (`parse_pack`) and as a ranged reader does (`parse_tail` on
/// the last bytes, then `parse_trailer` on the trailer): they must agree, every failure is
/// damage, and every entry of an accepted pack is a non-empty frame inside the frames, in order
/// and without overlap.
fn read_pack(codec: &Codec, stored: &Bytes) -> Option<Vec<PackEntry>> {
    let whole = pack::parse_pack(codec, stored, "fuzz pack");
    let len = stored.len() as u64;
    if stored.len() >= pack::TAIL_LEN {
        let ranged = pack::parse_tail(&stored[stored.len() - pack::TAIL_LEN..], len, "fuzz pack")
            .and_then(|trailer_len| {
                let frames_len = len - pack::TAIL_LEN as u64 - trailer_len;
                let trailer = stored.slice(frames_len as usize..stored.len() - pack::TAIL_LEN);
                pack::parse_trailer(codec, trailer, frames_len, "fuzz pack")
            });
        match (&whole, &ranged) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "whole and ranged pack reads disagree"),
            (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind(), "{a} / {b}"),
            (a, b) => panic!("the pack readers disagree: whole {a:?}, ranged {b:?}"),
        }
    }
    let entries = match whole {
        Ok(entries) => entries,
        Err(e) => {
            assert_eq!(
                e.kind(),
                crate::ErrorKind::IntegrityCheckFailed,
                "a bad pack is damage: {e}"
            );
            return None;
        }
    };
    assert!(
        stored.ends_with(pack::PACK_MAGIC),
        "a pack without its magic"
    );
    let (trailer_len, _) = take_u32(&stored[stored.len() - pack::TAIL_LEN..]);
    let frames_len = len - pack::TAIL_LEN as u64 - u64::from(trailer_len);
    let mut end = 0u64;
    for e in &entries {
        let (start, stop) = (u64::from(e.offset), u64::from(e.offset) + u64::from(e.len));
        assert!(e.len > 0, "an empty frame in {e:?}");
        assert!(
            start >= end,
            "{e:?} overlaps the frame before it (ends at {end})"
        );
        assert!(
            stop <= frames_len,
            "{e:?} runs past the {frames_len} bytes of frames"
        );
        end = stop;
    }
    Some(entries)
}

/// A pack object (format 2): `[mode][rest]`. Mode bit 1 picks the cipher of the sealed codec.
/// - bit 2 clear, bit 0 clear: `rest` is a stored pack, as anyone who can write to the bucket
///   could write it, read by the plain codec and by the sealed one (at most one may accept it);
/// - bit 2 clear, bit 0 set: `rest` is `[split: u16 LE][frames ‖ trailer body]` (split taken
///   modulo the length): the pack is assembled with the trailer stored plain and, again, sealed
///   here under the right key; the two must read the same (so the trailer parser behind the
///   AEAD is reached);
/// - bit 2 set: a round trip. `rest` is chunks, each `[len: u8][bytes]`, encoded by the plain
///   (bit 0 clear) or sealed codec, uncompressed or lz4 (bit 3), packed by `PackBuilder`:
///   the pack must be named by its trailer and tail and parse to the builder's entries, each
///   holding its frame, each frame decoding to its chunk.
pub fn pack(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let sealed = sealed_codec(mode_cipher(mode));
    if mode & 4 != 0 {
        return pack_round_trip(mode, rest);
    }
    if mode & 1 == 0 {
        let stored = Bytes::copy_from_slice(rest);
        let plain = read_pack(&Codec::plain(), &stored);
        let opened = read_pack(&sealed, &stored);
        assert!(
            plain.is_none() || opened.is_none(),
            "one pack read by both a plain and an encrypted vault"
        );
        return;
    }
    let (split, rest) = (
        usize::from(u16::from_le_bytes([
            rest.first().copied().unwrap_or(0),
            rest.get(1).copied().unwrap_or(0),
        ])),
        rest.get(2..).unwrap_or_default(),
    );
    let (frames, body) = rest.split_at(split % (rest.len() + 1));
    let assemble = |trailer: &[u8]| {
        let mut out = frames.to_vec();
        out.extend_from_slice(trailer);
        out.extend_from_slice(&(trailer.len() as u32).to_le_bytes());
        out.extend_from_slice(pack::PACK_MAGIC);
        Bytes::from(out)
    };
    let plain = read_pack(&Codec::plain(), &assemble(body));
    let trailer = sealed.encode_manifest(PACK_TRAILER_CONTEXT, body.to_vec());
    let opened = read_pack(&sealed, &assemble(&trailer));
    // A body that begins like a sealed frame is refused as a plain trailer (ldv's plain
    // trailers start with LDVT, never LDVC); the sealed one is not.
    if !body.starts_with(codec::MAGIC) {
        assert_eq!(plain, opened, "a trailer read differently once sealed");
    }
}

fn pack_round_trip(mode: u8, mut rest: &[u8]) {
    // Frames are opaque to a pack, and gzip and zstd cost more per run than all the rest
    // (`frame_round_trip` covers them): no compression or lz4.
    let algorithm = if mode & 8 == 0 {
        Algorithm::None
    } else {
        Algorithm::Lz4
    };
    let keys = (mode & 1 == 1).then(|| test_keys(mode_cipher(mode)));
    let codec = Codec::new(
        CompressionConfig {
            algorithm,
            level: algorithm.default_level(),
            min_size: 0,
        },
        keys,
    );
    let mut chunks = Vec::new();
    while let Some((&n, tail)) = rest.split_first() {
        let (chunk, tail) = tail.split_at(usize::from(n).min(tail.len()));
        chunks.push(chunk);
        rest = tail;
    }
    let mut builder = pack::PackBuilder::with_capacity(64);
    let mut frames = Vec::with_capacity(chunks.len());
    for chunk in &chunks {
        let id = codec.chunk_id(chunk);
        let frame = codec.encode_chunk(id, &PlainChunk::copy_from(chunk));
        builder.push(id, &frame);
        frames.push(frame);
    }
    assert_eq!(builder.is_empty(), chunks.is_empty());
    let frames_len: u64 = frames.iter().map(|f| f.len() as u64).sum();
    assert_eq!(builder.len(), frames_len);
    let (id, stored, entries) = builder.finish(&codec);
    assert_eq!(
        id,
        PackId::of(&stored[frames_len as usize..]),
        "a pack is named by its trailer and tail"
    );
    assert_eq!(PackId::from_key(&id.key()), Some(id));
    assert_eq!(entries.len(), chunks.len());
    let parsed = read_pack(&codec, &stored).expect("a pack ldv wrote parses");
    assert_eq!(parsed, entries, "a pack's trailer changed its entries");
    for ((e, frame), chunk) in parsed.iter().zip(&frames).zip(&chunks) {
        let at = e.offset as usize..e.offset as usize + e.len as usize;
        assert_eq!(&stored[at.clone()], &frame[..], "a frame moved in its pack");
        let back = codec
            .decode_chunk(e.id, stored.slice(at), chunk.len() as u64)
            .expect("a packed frame decodes");
        assert_eq!(&back[..], *chunk, "a packed chunk changed");
    }
    // The other kind of vault cannot read it.
    let other = if codec.cipher().is_some() {
        Codec::plain()
    } else {
        sealed_codec(mode_cipher(mode))
    };
    assert!(pack::parse_pack(&other, &stored, "fuzz pack").is_err());
}

/// Parses a stored segment with `codec`; for one that parses, the properties of any segment:
/// its entries are possible, it re-encodes to a segment that parses back equal (byte for byte
/// in a plain vault, where the encoding is canonical), `decode` under its name agrees with
/// `parse`, and `decode` under any other name refuses it.
/// The index a put builds from one segment agrees with the parsed segment: a segment that
/// supersedes itself is dropped; otherwise every chunk is found at one of its places there,
/// once.
fn check_built_index(codec: &Codec, id: &PackId, stored: &Bytes, segment: &Segment) {
    let index = index::build_from(codec, &[(*id, stored.clone())])
        .expect("a segment that parses builds an index");
    if segment.supersedes.contains(id) {
        assert!(
            index.is_empty(),
            "a segment that supersedes itself is dropped"
        );
        return;
    }
    let mut places: std::collections::HashMap<ChunkId, Vec<Location>> = Default::default();
    for (pack, entries) in &segment.packs {
        for e in entries {
            places.entry(e.id).or_default().push(Location {
                pack: *pack,
                offset: e.offset,
                len: e.len,
            });
        }
    }
    assert_eq!(index.len(), places.len(), "one index entry per chunk");
    for (chunk, at) in &places {
        let found = index
            .locate(chunk)
            .expect("every chunk of the segment is indexed");
        assert!(
            at.contains(&found),
            "chunk {chunk} indexed at a place the segment does not give"
        );
    }
}

fn open_segment(codec: &Codec, stored: &Bytes) -> Option<Segment> {
    let segment = match Segment::parse(codec, stored.clone(), "fuzz segment") {
        Ok(s) => s,
        Err(e) => {
            assert_eq!(
                e.kind(),
                crate::ErrorKind::IntegrityCheckFailed,
                "a bad segment is damage: {e}"
            );
            return None;
        }
    };
    check_segment(&segment);
    let id = PackId::of(stored);
    check_built_index(codec, &id, stored, &segment);
    let decoded = Segment::decode(codec, &id, stored.clone()).expect("decode under its name");
    assert_eq!(decoded, segment, "decode and parse disagree");
    let (again_id, again) = segment.encode(codec);
    if codec.cipher().is_none() {
        assert_eq!(again, *stored, "a plain segment re-encoded to other bytes");
        assert_eq!(again_id, id);
    }
    assert_eq!(
        Segment::decode(codec, &again_id, again).expect("a re-encoded segment decodes"),
        segment,
        "a segment changed through a round trip"
    );
    let mut wrong = id;
    wrong.0[31] ^= 1;
    let err = Segment::decode(codec, &wrong, stored.clone())
        .expect_err("a segment decoded under another name");
    assert_eq!(err.kind(), crate::ErrorKind::IntegrityCheckFailed);
    Some(segment)
}

fn check_segment(segment: &Segment) {
    for (pack, entries) in &segment.packs {
        for e in entries {
            assert!(e.len > 0, "an empty entry {e:?}");
            assert!(
                *pack != index::LEGACY || e.offset == 0,
                "a format-1 chunk object at offset {}",
                e.offset
            );
        }
    }
}

/// An index segment (format 2): `[mode][rest]`. Mode bit 1 picks the cipher of the sealed codec.
/// - bit 2 clear, bit 0 clear: `rest` is a stored segment, read by the plain and the sealed
///   codec (at most one may accept it);
/// - bit 2 clear, bit 0 set: `rest` is a segment body, stored plain and sealed here under the
///   right key: the two must read the same;
/// - bit 2 set: `rest` describes a segment (supersedes, packs, entries), which is encoded by
///   the plain (bit 0 clear) or sealed codec and must decode to itself exactly when its entries
///   are possible (non-empty; offset 0 for format-1 chunk objects), under its name only.
pub fn index_segment(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let sealed = sealed_codec(mode_cipher(mode));
    if mode & 4 != 0 {
        let codec = if mode & 1 == 0 {
            Codec::plain()
        } else {
            sealed
        };
        return segment_round_trip(&codec, rest);
    }
    if mode & 1 == 0 {
        let stored = Bytes::copy_from_slice(rest);
        let plain = open_segment(&Codec::plain(), &stored);
        let opened = open_segment(&sealed, &stored);
        assert!(
            plain.is_none() || opened.is_none(),
            "one segment read by both a plain and an encrypted vault"
        );
        return;
    }
    let plain = open_segment(&Codec::plain(), &Bytes::copy_from_slice(rest));
    let stored = sealed.encode_manifest(SEGMENT_CONTEXT, rest.to_vec());
    let opened = open_segment(&sealed, &stored);
    assert_eq!(plain, opened, "a segment read differently once sealed");
}

/// Hands out a fuzz input's bytes, then zeros.
struct Bytewise<'a>(&'a [u8]);

impl Bytewise<'_> {
    fn u8(&mut self) -> u8 {
        let Some((&b, rest)) = self.0.split_first() else {
            return 0;
        };
        self.0 = rest;
        b
    }

    fn u16(&mut self) -> u32 {
        u32::from(u16::from_le_bytes([self.u8(), self.u8()]))
    }
}

fn segment_round_trip(codec: &Codec, data: &[u8]) {
    let mut r = Bytewise(data);
    let supersedes = (0..r.u8() % 4).map(|_| PackId([r.u8(); 32])).collect();
    let packs = (0..r.u8() % 5)
        .map(|_| {
            let pack = match r.u8() {
                0 => index::LEGACY,
                b => PackId([b; 32]),
            };
            let entries = (0..r.u8() % 6)
                .map(|_| PackEntry {
                    id: ChunkId([r.u8(); 32]),
                    offset: r.u16(),
                    len: r.u16(),
                })
                .collect();
            (pack, entries)
        })
        .collect();
    let segment = Segment { supersedes, packs };
    let possible = segment.packs.iter().all(|(pack, entries)| {
        entries
            .iter()
            .all(|e| e.len > 0 && (*pack != index::LEGACY || e.offset == 0))
    });
    let (id, stored) = segment.encode(codec);
    assert_eq!(id, PackId::of(&stored), "a segment is named by its bytes");
    assert_eq!(
        index::parse_key(&index::segment_key(&id)),
        Some(index::IndexKey::Segment(id))
    );
    match Segment::decode(codec, &id, stored.clone()) {
        Ok(back) => {
            assert!(possible, "an impossible segment decoded: {segment:?}");
            assert_eq!(back, segment, "a segment changed through a round trip");
        }
        Err(e) => {
            assert!(!possible, "a segment ldv wrote did not decode: {e}");
            assert_eq!(e.kind(), crate::ErrorKind::IntegrityCheckFailed);
        }
    }
    let mut wrong = id;
    wrong.0[0] ^= 0x80;
    assert!(Segment::decode(codec, &wrong, stored).is_err());
}

/// The properties of a key `parse_key` read: it is the key of what it names, and a valid
/// storage key.
fn check_index_key(key: &str) {
    match index::parse_key(key) {
        Some(index::IndexKey::Segment(id)) => {
            assert_eq!(
                index::segment_key(&id),
                key,
                "a segment key did not round-trip"
            );
        }
        Some(index::IndexKey::Mark(version)) => {
            assert!(layout::is_version(&version), "mark version {version:?}");
            assert_eq!(format!("{}{version}", index::MARK_PREFIX), key);
        }
        None => return,
    }
    crate::backend::validate_key(key).expect("an index key is a valid storage key");
}

/// A gc mark (`index/mark-<version>`, JSON) as the index loader reads it (`Mark::parse`), and
/// the same bytes as an `index/` key name (`parse_key`), alone and behind the index and mark
/// prefixes. A mark that parses holds exactly the ids it lists and round-trips; a key that
/// parses is the key of what it names; the key of any segment id parses back to it.
pub fn gc_mark(data: &[u8]) {
    match Mark::parse(data, "fuzz mark") {
        Ok(parsed) => {
            let mark: Mark = serde_json::from_slice(data).expect("a parsed mark is a Mark");
            fn same<T: Copy + Eq + std::hash::Hash>(
                listed: &[String],
                set: &std::collections::HashSet<T>,
                id: impl Fn(&str) -> T,
            ) {
                let ids: std::collections::HashSet<T> = listed.iter().map(|s| id(s)).collect();
                assert!(ids == *set, "a mark's ids changed");
            }
            let chunk = |s: &str| s.parse::<ChunkId>().expect("a listed id parses");
            same(&mark.packs, &parsed.packs, |s| PackId(chunk(s).0));
            same(&mark.chunks, &parsed.chunks, chunk);
            same(&mark.segments, &parsed.segments, |s| PackId(chunk(s).0));
            let again = serde_json::to_vec(&mark).expect("a mark serializes");
            let back = Mark::parse(&again, "fuzz mark").expect("a mark re-parses");
            assert!(
                back.packs == parsed.packs
                    && back.chunks == parsed.chunks
                    && back.segments == parsed.segments,
                "a mark changed through a round trip"
            );
            let mut value: Mark = serde_json::from_slice(&again).expect("a Mark re-parses");
            let ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).ok();
            assert_eq!(
                ms(value.created_at),
                ms(mark.created_at),
                "created_at moved"
            );
            value.created_at = mark.created_at;
            assert_eq!(value, mark);
        }
        Err(e) => assert_eq!(
            e.kind(),
            crate::ErrorKind::IntegrityCheckFailed,
            "a bad mark is damage: {e}"
        ),
    }
    let s = String::from_utf8_lossy(data);
    check_index_key(&s);
    check_index_key(&format!("{}{s}", index::INDEX_PREFIX));
    let mark_key = format!("{}{s}", index::MARK_PREFIX);
    check_index_key(&mark_key);
    assert_eq!(
        index::parse_key(&mark_key),
        layout::is_version(&s).then(|| index::IndexKey::Mark(s.clone().into_owned()))
    );
    let mut id = [0u8; 32];
    let n = data.len().min(32);
    id[..n].copy_from_slice(&data[..n]);
    let id = PackId(id);
    assert_eq!(
        index::parse_key(&index::segment_key(&id)),
        Some(index::IndexKey::Segment(id))
    );
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    thread_local! {
        static RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
    }
    RUNTIME.with(|rt| {
        let mut rt = rt.borrow_mut();
        rt.get_or_insert_with(|| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a current-thread runtime starts")
        })
        .block_on(f)
    })
}

/// Whether the KDF of `kdf` is cheap enough to run on every input (a few KiB, few passes), or
/// refused before any work; the fuzzer must not wait on Argon2 at 1 GiB.
fn kdf_is_cheap(kdf: &KdfParams) -> bool {
    (kdf.m_cost_kib <= 256 && kdf.t_cost <= 2 && kdf.p_cost <= 4)
        || kdf.m_cost_kib > crypto::KDF_MAX_M_KIB
        || kdf.t_cost == 0
        || kdf.p_cost == 0
}

/// A vault descriptor (`ldv-vault.json`) and its key slots: parsed, then opened as `ldv` opens a
/// vault (on a memory store), without a key, with the raw [`TEST_KEY`], and with
/// [`TEST_PASSPHRASE`] when every passphrase slot's KDF is cheap.
pub fn descriptor(data: &[u8]) {
    let Ok(d) = parse_descriptor(data, "fuzz://") else {
        return;
    };
    let again = serde_json::to_vec_pretty(&d).expect("a descriptor serializes");
    let mut back = parse_descriptor(&again, "fuzz://").expect("a descriptor re-parses");
    assert_eq!(
        back.created_at
            .duration_since(UNIX_EPOCH)
            .map(|t| t.as_millis())
            .ok(),
        d.created_at
            .duration_since(UNIX_EPOCH)
            .map(|t| t.as_millis())
            .ok()
    );
    back.created_at = d.created_at;
    assert_eq!(back, d, "a descriptor changed through a round trip");

    let store = Arc::new(MemoryBackend::new());
    let backend: DynBackend = Arc::clone(&store) as DynBackend;
    block_on(async {
        store
            .put(
                layout::DESCRIPTOR_KEY,
                Bytes::copy_from_slice(data),
                PutMode::Overwrite,
            )
            .await
            .expect("a memory put succeeds");
        let plain = Vault::open(Arc::clone(&backend)).await;
        assert_eq!(plain.is_ok(), d.encryption.is_none());
        let Some(header) = &d.encryption else {
            return;
        };
        let mut keys: Vec<Arc<dyn KeyProvider>> = vec![Arc::new(RawKey::new(
            KeyBytes::new(TEST_KEY),
            "the fuzz key",
        ))];
        let cheap = header.slots.iter().all(|s| match &s.kind {
            SlotKind::Passphrase { kdf } => kdf_is_cheap(kdf),
            _ => true,
        });
        if cheap {
            keys.push(Arc::new(PassphraseKey::new(
                Secret::new(TEST_PASSPHRASE),
                "the fuzz passphrase",
            )));
        }
        for key in keys {
            let options = VaultOptions {
                compression: CompressionConfig::NONE,
                encryption: Some(EncryptionOptions {
                    cipher: header.algorithm,
                    key,
                }),
                ..VaultOptions::default()
            };
            if let Ok(vault) = Vault::open_with(Arc::clone(&backend), &options).await {
                assert_eq!(vault.codec().cipher(), Some(header.algorithm));
                assert!(vault.opened_slot().is_some());
            }
        }
    });
}

/// A lock object (`locks/<id>`) as `ldv` reads it from the vault.
pub fn lock(data: &[u8]) {
    let Ok(info) = serde_json::from_slice::<LockInfo>(data) else {
        return;
    };
    let now = SystemTime::now();
    let _ = info.stale_reason(now);
    let _ = info.stale_reason(UNIX_EPOCH);
    assert!(!info.describe().is_empty());
    let again = serde_json::to_vec(&info).expect("a lock serializes");
    let back: LockInfo = serde_json::from_slice(&again).expect("a lock re-parses");
    assert_eq!(back.id, info.id);
    assert_eq!(back.pid, info.pid);
}

/// A profile file (`config.toml`): parsed with its checks, then each profile resolved into
/// settings as `ldv --config FILE --profile NAME` does. Each size-looking string is also read
/// as a size.
pub fn profile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for word in text.split(['"', '\'', '=', '\n']) {
        if let Ok(size) = parse_size(word) {
            let digits = word.trim();
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                assert_eq!(Some(size.0), digits.parse().ok(), "{word:?}");
            }
        }
    }
    let path = profile_path();
    let Ok(loaded) = LoadedConfig::parse(&path, text.to_owned()) else {
        return;
    };
    if std::fs::write(&path, text).is_err() {
        return;
    }
    let mut names: Vec<Option<String>> = loaded.file.profiles.keys().cloned().map(Some).collect();
    names.push(None);
    for name in names {
        let global = GlobalArgs {
            profile: name.clone(),
            vault: None,
            config: Some(path.clone()),
            json: false,
            quiet: true,
            verbose: 0,
            no_progress: true,
            parallel: None,
            yes: false,
            lock_wait: Duration::from_secs(1),
            stats: false,
        };
        if let Ok(settings) = Settings::resolve(&global, false) {
            assert!(settings.parallel >= 1);
            if let Some(c) = settings.chunker {
                c.validate().expect("a resolved chunker is valid");
            }
            if let Some(Some(static_key)) = settings
                .encryption
                .as_ref()
                .map(|e| e.key.static_key.as_ref())
            {
                let _ = KeyBytes::parse(static_key.expose(), "encryption.key.static");
            }
        }
    }
}

fn profile_path() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a temp dir for the fuzzed profile"));
    // One file per thread: the mutation test runs targets on several threads.
    let thread = format!("{:?}", std::thread::current().id());
    let tag: String = thread.chars().filter(char::is_ascii_digit).collect();
    dir.path().join(format!("config-{tag}.toml"))
}

/// An object name and a `NAME@VERSION` reference as a user types them, and the keys built from
/// them: a valid name can never step outside its directory, and every parse round-trips.
pub fn name(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if layout::validate_name(s).is_ok() {
        assert_key_shape(s);
        assert!(s.len() <= layout::MAX_NAME_LEN);
        let v = "20260101T000000000Z-00000000";
        let key = layout::manifest_key(s, v);
        assert!(key.len() <= MAX_KEY_LEN, "a manifest key outgrew the limit");
        assert_eq!(layout::parse_manifest_key(&key), Some((s, v)));
    }
    if layout::validate_new_name(s).is_ok() {
        let r = ObjectRef::parse(s).expect("a new name parses as a reference");
        assert_eq!((r.name.as_str(), r.version.as_deref()), (s, None));
    }
    if let Ok(r) = ObjectRef::parse(s) {
        layout::validate_name(&r.name).expect("a parsed reference has a valid name");
        if let Some(v) = &r.version {
            assert!(layout::is_version(v));
        }
        assert_eq!(r.to_string(), s);
        assert_eq!(ObjectRef::parse(&r.to_string()).ok(), Some(r));
    }
    if let Some((n, v)) = layout::parse_manifest_key(s) {
        assert!(layout::is_version(v));
        assert_eq!(layout::manifest_key(n, v), s);
    }
    if let Some(id) = ChunkId::from_key(s) {
        assert_eq!(id.key(), s);
    }
    if let Ok(id) = s.parse::<ChunkId>() {
        assert_eq!(id.to_hex(), s);
    }
}

/// What a valid key must look like: no empty, `.` or `..` segment, no leading `/`, no control
/// character; joined to a root it stays below that root.
fn assert_key_shape(key: &str) {
    assert!(!key.is_empty() && key.len() <= MAX_KEY_LEN);
    assert!(!key.starts_with('/'));
    assert!(!key.chars().any(char::is_control));
    for segment in key.split('/') {
        assert!(!matches!(segment, "" | "." | ".."), "segment {segment:?}");
    }
    let root = Path::new("/vault/root");
    let path = root.join(key);
    assert!(path.starts_with(root));
    for c in path
        .strip_prefix(root)
        .expect("below the root")
        .components()
    {
        assert!(matches!(c, Component::Normal(_)), "{key:?} makes {c:?}");
    }
}

/// A `--range` spec against an object size: `[size: u64 LE][spec]`.
pub fn range(data: &[u8]) {
    let (size, spec) = take_u64(data);
    let Ok(spec) = std::str::from_utf8(spec) else {
        return;
    };
    match crate::cli::commands::cat::parse_range(spec, size) {
        Ok((start, end)) => assert!(start <= end && end <= size, "{spec:?} gave {start}..{end}"),
        Err(e) => assert_eq!(e.kind(), crate::ErrorKind::ConfigurationError),
    }
}

/// A `--vault` URL (`file://`, `s3://`, `az://`, `gs://` or a path).
pub fn vault_url(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match parse_vault_url(s) {
        Ok(BackendConfig::Local(c)) => assert!(c.path.is_absolute()),
        Ok(BackendConfig::S3(c)) => assert!(!c.bucket.is_empty()),
        Ok(BackendConfig::Azure(c)) => assert!(!c.container_name.is_empty()),
        Ok(BackendConfig::Gcs(c)) => assert!(!c.bucket.is_empty()),
        Ok(BackendConfig::Memory) => {}
        Err(e) => assert_eq!(e.kind(), crate::ErrorKind::ConfigurationError, "{e}"),
    }
}

/// A storage key and a listing prefix, as every backend checks them.
pub fn backend_key(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match crate::backend::validate_key(s) {
        Ok(()) => {
            assert_key_shape(s);
            crate::backend::validate_prefix(s).expect("a valid key is a valid prefix");
        }
        Err(e) => assert_eq!(e.kind(), crate::ErrorKind::InvalidKey),
    }
    if crate::backend::validate_prefix(s).is_ok()
        && let Some((complete, _)) = s.rsplit_once('/')
    {
        assert_key_shape(complete);
    }
}

/// Valid inputs for `target`, made with ldv's own writers: the seed corpus.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let texts: Vec<Vec<u8>> = [0usize, 1, 15, 100, 4096, 70_000]
        .iter()
        .map(|&n| {
            b"the quick brown fox jumps over the lazy dog 0123456789; "
                .iter()
                .copied()
                .cycle()
                .take(n)
                .collect()
        })
        .collect();
    let sized = |size: usize, body: &[u8]| {
        let mut out = u32::try_from(size)
            .expect("seed sizes are small")
            .to_le_bytes()
            .to_vec();
        out.extend_from_slice(body);
        out
    };
    let compressed = |algorithm: Algorithm| -> Vec<Vec<u8>> {
        let codec = Codec::new(
            CompressionConfig {
                algorithm,
                level: algorithm.default_level(),
                min_size: 0,
            },
            None,
        );
        texts
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| {
                let stored = codec.encode_chunk(codec.chunk_id(t), &PlainChunk::copy_from(t));
                sized(t.len(), &stored[HEADER_LEN..])
            })
            .collect()
    };
    match target {
        "frame" => [
            Algorithm::None,
            Algorithm::Gzip,
            Algorithm::Zstd,
            Algorithm::Lz4,
        ]
        .into_iter()
        .flat_map(|algorithm| {
            let codec = Codec::new(
                CompressionConfig {
                    algorithm,
                    level: algorithm.default_level(),
                    min_size: 0,
                },
                None,
            );
            texts
                .iter()
                .map(|t| {
                    let stored = codec.encode_chunk(codec.chunk_id(t), &PlainChunk::copy_from(t));
                    sized(t.len(), &stored)
                })
                .collect::<Vec<_>>()
        })
        .collect(),
        "frame_zstd" => compressed(Algorithm::Zstd),
        "frame_lz4" => compressed(Algorithm::Lz4),
        "frame_gzip" => compressed(Algorithm::Gzip),
        "frame_sealed" => {
            let mut out = Vec::new();
            for (mode, cipher) in [(0u8, Cipher::Aes256Gcm), (2, Cipher::ChaCha20Poly1305)] {
                let codec = sealed_codec(cipher);
                for t in &texts[..4] {
                    // The targets open every frame as chunk [7; 32].
                    let stored = codec.encode_chunk(ChunkId([7; 32]), &PlainChunk::copy_from(t));
                    let mut seed = vec![mode];
                    seed.extend(sized(t.len(), &stored));
                    out.push(seed);
                    let mut seed = vec![mode | 1];
                    seed.extend(sized(t.len(), &[0]));
                    seed.extend_from_slice(t);
                    out.push(seed);
                }
                for algorithm in [Algorithm::Gzip, Algorithm::Zstd, Algorithm::Lz4] {
                    for body in compressed(algorithm).into_iter().take(3) {
                        let (size, payload) = take_u32(&body);
                        let mut seed = vec![mode | 1];
                        seed.extend(sized(size as usize, &[algorithm_code(algorithm)]));
                        seed.extend_from_slice(payload);
                        out.push(seed);
                    }
                }
            }
            out
        }
        "frame_round_trip" => texts[..5]
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut seed = vec![(i * 5) as u8];
                seed.extend_from_slice(t);
                seed
            })
            .collect(),
        "manifest" => seed_manifests().iter().map(Manifest::to_bytes).collect(),
        "manifest_sealed" => {
            let (name, version) = layout::parse_manifest_key(MANIFEST_KEY).expect("a key");
            let mut out = Vec::new();
            for mut m in seed_manifests() {
                m.name = name.into();
                m.version = version.into();
                let json = m.to_bytes();
                for (mode, cipher) in [(0u8, Cipher::Aes256Gcm), (2, Cipher::ChaCha20Poly1305)] {
                    let mut sealed = vec![mode];
                    sealed.extend_from_slice(
                        &sealed_codec(cipher).encode_manifest(MANIFEST_KEY, json.clone()),
                    );
                    out.push(sealed);
                    let mut plain = vec![mode | 1];
                    plain.extend_from_slice(&json);
                    out.push(plain);
                }
            }
            out
        }
        "tree_listing" => seed_listings(),
        "pack" => seed_packs(&texts[..4]),
        "index_segment" => seed_segments(&texts[..4]),
        "gc_mark" => seed_marks(),
        "descriptor" => seed_descriptors(),
        "lock" => [LockKind::Shared, LockKind::Exclusive]
            .into_iter()
            .map(|kind| {
                let info = LockInfo {
                    id: "20260101T000000000Z-0123456789abcdef".into(),
                    kind,
                    host: "fuzz-host".into(),
                    pid: 4242,
                    command: "put".into(),
                    since: UNIX_EPOCH + Duration::from_millis(1_767_225_600_123),
                    refreshed: UNIX_EPOCH + Duration::from_millis(1_767_225_900_456),
                    process_start: (kind == LockKind::Shared).then_some(123_456),
                };
                serde_json::to_vec(&info).expect("a lock serializes")
            })
            .collect(),
        "profile" => SEED_PROFILES
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect(),
        "name" => [
            "a",
            "datasets/2026-11/train.parquet",
            "models/llama@20261127T081108971Z-c0d69473",
            "user@host/file",
            "üñí/ç",
            "a.b/..c",
            "manifests/a/b/20261127T081108971Z-c0d69473",
            "chunks/ab/ab00000000000000000000000000000000000000000000000000000000000000",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
        "range" => [
            (100u64, "0-9"),
            (100, "90-"),
            (100, "-10"),
            (0, "5-2"),
            (1 << 40, " 7 - 1099511627775 "),
        ]
        .iter()
        .map(|(size, spec)| {
            let mut seed = size.to_le_bytes().to_vec();
            seed.extend_from_slice(spec.as_bytes());
            seed
        })
        .collect(),
        "vault_url" => [
            "file:///tmp/vault",
            "s3://bucket/team/a",
            "az://container/prefix",
            "gs://bucket/p",
            "relative/path",
            "/abs/path",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
        "backend_key" => [
            "ldv-vault.json",
            "chunks/ab/ab00000000000000000000000000000000000000000000000000000000000000",
            "manifests/a/b/20261127T081108971Z-c0d69473",
            "locks/20260101T000000000Z-0123456789abcdef",
            "manifests/partial/pre",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
        _ => Vec::new(),
    }
}

fn algorithm_code(algorithm: Algorithm) -> u8 {
    match algorithm {
        Algorithm::None => 0,
        Algorithm::Gzip => 1,
        Algorithm::Zstd => 2,
        Algorithm::Lz4 => 3,
    }
}

/// A pack of `chunks` as a vault with `codec` writes it: its name, bytes and entries.
fn seed_pack(codec: &Codec, chunks: &[Vec<u8>]) -> (PackId, Bytes, Vec<PackEntry>) {
    let mut builder = pack::PackBuilder::default();
    for chunk in chunks {
        let id = codec.chunk_id(chunk);
        builder.push(id, &codec.encode_chunk(id, &PlainChunk::copy_from(chunk)));
    }
    builder.finish(codec)
}

fn with_mode(mode: u8, rest: &[u8]) -> Vec<u8> {
    let mut out = vec![mode];
    out.extend_from_slice(rest);
    out
}

/// Packs as ldv writes them (plain, and sealed by each cipher; of no chunk, one and several)
/// with truncations; the same frames and trailer to be assembled and sealed by the target; and
/// chunk lists for the round trip under each compression and cipher. `chunks` are under 256
/// bytes each.
fn seed_packs(chunks: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (mode, codec) in [
        (0u8, Codec::plain()),
        (0, sealed_codec(Cipher::Aes256Gcm)),
        (2, sealed_codec(Cipher::ChaCha20Poly1305)),
    ] {
        for n in [0, 1, chunks.len()] {
            let (_, stored, _) = seed_pack(&codec, &chunks[..n]);
            out.push(with_mode(mode, &stored));
        }
        let (_, stored, _) = seed_pack(&codec, chunks);
        let len = stored.len();
        for cut in [
            &stored[..len - 1],
            &stored[1..],
            &stored[..len - pack::TAIL_LEN],
            &stored[len - pack::TAIL_LEN..],
        ] {
            out.push(with_mode(mode, cut));
        }
    }
    let (_, stored, _) = seed_pack(&Codec::plain(), chunks);
    let (trailer_len, _) = take_u32(&stored[stored.len() - pack::TAIL_LEN..]);
    let frames_len = stored.len() - pack::TAIL_LEN - trailer_len as usize;
    for mode in [1u8, 3] {
        let mut seed = vec![mode];
        seed.extend_from_slice(
            &u16::try_from(frames_len)
                .expect("seed frames are small")
                .to_le_bytes(),
        );
        seed.extend_from_slice(&stored[..stored.len() - pack::TAIL_LEN]);
        out.push(seed);
    }
    let listed: Vec<u8> = chunks
        .iter()
        .flat_map(|c| {
            let mut item = vec![u8::try_from(c.len()).expect("seed chunks are small")];
            item.extend_from_slice(c);
            item
        })
        .collect();
    for mode in [4u8, 5, 7, 4 | 8, 5 | 8, 7 | 8] {
        out.push(with_mode(mode, &listed));
    }
    out
}

/// Segments as ldv writes them (one indexing a real pack and a format-1 chunk, superseding
/// another; an empty one), plain and sealed, with truncations; their bodies to be sealed by the
/// target; and descriptions for the round trip, one of them impossible.
fn seed_segments(chunks: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let (pack_id, _, entries) = seed_pack(&Codec::plain(), chunks);
    let legacy = PackEntry {
        id: ChunkId::of(&chunks[chunks.len() - 1]),
        offset: 0,
        len: 107,
    };
    let segments = [
        Segment {
            supersedes: vec![PackId::of(b"older"), PackId::of(b"oldest")],
            packs: vec![(pack_id, entries), (index::LEGACY, vec![legacy])],
        },
        Segment::default(),
    ];
    let mut out = Vec::new();
    for segment in &segments {
        let (_, body) = segment.encode(&Codec::plain());
        out.push(with_mode(0, &body));
        out.push(with_mode(1, &body));
        out.push(with_mode(3, &body));
        for (mode, cipher) in [(0u8, Cipher::Aes256Gcm), (2, Cipher::ChaCha20Poly1305)] {
            let (_, stored) = segment.encode(&sealed_codec(cipher));
            out.push(with_mode(mode, &stored));
        }
        for cut in [body.len() - 1, 12, 8] {
            out.push(with_mode(0, &body[..cut]));
        }
    }
    let described: [&[u8]; 3] = [
        // Superseding one; a format-1 chunk; a pack of two.
        &[
            1, 7, 2, 0, 1, 3, 0, 0, 100, 0, 9, 2, 4, 0, 0, 50, 0, 5, 50, 0, 20, 0,
        ],
        // A format-1 chunk at an offset: impossible.
        &[0, 1, 0, 1, 3, 5, 0, 100, 0],
        &[],
    ];
    for d in described {
        for mode in [4u8, 5, 7] {
            out.push(with_mode(mode, d));
        }
    }
    out
}

/// Marks as gc writes them (compact and pretty; one condemning a pack, a chunk object and a
/// segment, one empty), and `index/` keys: a segment's, a mark's, and their bare tails.
fn seed_marks() -> Vec<Vec<u8>> {
    let created_at = UNIX_EPOCH + Duration::from_millis(1_767_225_600_123);
    let full = Mark {
        created_at,
        packs: vec![PackId::of(b"pack").to_string()],
        chunks: vec![ChunkId::of(b"chunk").to_hex()],
        segments: vec![
            PackId::of(b"segment").to_string(),
            PackId::of(b"segment 2").to_string(),
        ],
    };
    let empty = Mark {
        created_at,
        packs: Vec::new(),
        chunks: Vec::new(),
        segments: Vec::new(),
    };
    let mut out = Vec::new();
    for mark in [&full, &empty] {
        out.push(serde_json::to_vec(mark).expect("a mark serializes"));
        out.push(serde_json::to_vec_pretty(mark).expect("a mark serializes"));
    }
    let segment = PackId::of(b"segment");
    let version = "20260101T000000123Z-0a1b2c3d";
    for key in [
        index::segment_key(&segment),
        format!("{}{version}", index::MARK_PREFIX),
        segment.to_string(),
        version.to_string(),
        index::INDEX_PREFIX.to_string(),
    ] {
        out.push(key.into_bytes());
    }
    out
}

fn seed_manifests() -> Vec<Manifest> {
    let created = UNIX_EPOCH + Duration::from_millis(1_767_225_600_123);
    let base = Manifest {
        format: crate::store::manifest::MANIFEST_FORMAT,
        name: "datasets/train.jsonl".into(),
        version: "20260101T000000123Z-0a1b2c3d".into(),
        size: 0,
        sha256: hex::encode(ChunkId::of(b"").0),
        chunker: ChunkerConfig::default(),
        created_at: created,
        content_type: None,
        metadata: BTreeMap::new(),
        tree: None,
        chunks: Vec::new(),
    };
    let mut two = base.clone();
    two.size = 5_000_000;
    two.content_type = Some("application/jsonl".into());
    two.metadata.insert("source".into(), "fuzz".into());
    two.chunker = ChunkerConfig::Fixed {
        size: 4 << 20,
        min_chunk_threshold: 1 << 20,
    };
    two.chunks = vec![
        ChunkRef {
            offset: 0,
            size: 4 << 20,
            id: ChunkId::of(b"one"),
            stored: Some((4 << 20) + 7),
        },
        ChunkRef {
            offset: 4 << 20,
            size: 5_000_000 - (4 << 20),
            id: ChunkId::of(b"two"),
            stored: None,
        },
    ];
    let mut tree = two.clone();
    tree.format = crate::store::manifest::TREE_MANIFEST_FORMAT;
    tree.content_type = None;
    tree.tree = Some(crate::store::manifest::TreeSummary {
        entries: 3,
        files: 2,
        bytes: 123_456,
    });
    vec![base, two, tree]
}

/// Tree listings as a put writes them, each behind the largest chunk its chunker makes.
fn seed_listings() -> Vec<Vec<u8>> {
    use tree::{Entry, FileChunk, Kind, Time};
    let entry = |path: &[u8], kind: Kind| Entry {
        path: path.to_vec(),
        kind,
        mode: 0o755,
        mtime: Time {
            secs: 1_767_225_600,
            nanos: 123_456_789,
        },
        ctime: Time { secs: -1, nanos: 0 },
        inode: 7,
        size: 0,
        sha256: [0; 32],
        chunks: Vec::new(),
        target: Vec::new(),
    };
    let mut file = entry(b"data/train \n\xff.jsonl", Kind::File);
    file.chunks = vec![
        FileChunk {
            id: ChunkId::of(b"one"),
            size: 100,
            stored: 80,
        },
        FileChunk {
            id: ChunkId::of(b"two"),
            size: 50,
            stored: 58,
        },
    ];
    file.size = 150;
    file.sha256 = ChunkId::of(b"content").0;
    let mut link = entry(b"data/up", Kind::Symlink);
    link.target = b"../../etc".to_vec();
    link.size = 9;
    let mut empty = entry(b"empty", Kind::File);
    empty.sha256 = ChunkId::of(b"").0;
    let listings = [
        vec![],
        vec![entry(b"data", Kind::Dir), file, link, empty],
        vec![entry(b"a", Kind::Dir), entry(b"a/b", Kind::Dir)],
    ];
    listings
        .iter()
        .map(|entries| {
            let mut out = (512u32 << 10).to_le_bytes().to_vec();
            out.extend_from_slice(&tree::encode(entries));
            out
        })
        .collect()
}

/// Descriptors as `ldv init` writes them: plain, encrypted with a raw-key slot (each cipher), and
/// with a passphrase slot added whose KDF is cheap enough for the fuzzer to run.
fn seed_descriptors() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    block_on(async {
        let plain = Arc::new(MemoryBackend::new()) as DynBackend;
        Vault::init(Arc::clone(&plain), ChunkerConfig::default())
            .await
            .expect("a plain vault inits");
        out.push(
            plain
                .get(layout::DESCRIPTOR_KEY)
                .await
                .expect("written")
                .to_vec(),
        );
        for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
            let backend = Arc::new(MemoryBackend::new()) as DynBackend;
            let key: Arc<dyn KeyProvider> =
                Arc::new(RawKey::new(KeyBytes::new(TEST_KEY), "the fuzz key"));
            let options = VaultOptions {
                compression: CompressionConfig::NONE,
                encryption: Some(EncryptionOptions { cipher, key }),
                ..VaultOptions::default()
            };
            Vault::init_with(Arc::clone(&backend), ChunkerConfig::default(), &options)
                .await
                .expect("an encrypted vault inits");
            let raw = backend.get(layout::DESCRIPTOR_KEY).await.expect("written");
            out.push(raw.to_vec());
            // A passphrase slot for the same vault key, with a KDF the fuzzer can afford.
            let mut d: Descriptor = serde_json::from_slice(&raw).expect("parses");
            let header = d.encryption.as_mut().expect("encrypted");
            let slot = &header.slots[0];
            let SlotKind::RawKey { salt } = &slot.kind else {
                continue;
            };
            let kek = crypto::raw_wrapping_key(&KeyBytes::new(TEST_KEY), salt, &slot.id)
                .expect("the slot's salt is valid");
            let vault_key = crypto::unwrap(&kek, &slot.wrapped, &d.vault_id, &slot.id)
                .expect("the fuzz key opens its slot");
            let mut kdf = KdfParams::new();
            (kdf.m_cost_kib, kdf.t_cost, kdf.p_cost) = (64, 1, 1);
            let id = "0fa55a5e".to_string();
            let pass = kdf
                .derive(TEST_PASSPHRASE.as_bytes(), &id)
                .expect("cheap KDF parameters are valid");
            let wrapped = crypto::wrap(&pass, &vault_key, &d.vault_id, &id);
            header.slots.push(KeySlot {
                id,
                kind: SlotKind::Passphrase { kdf },
                wrapped,
                created_at: "2026-01-01T00:00:00Z".into(),
            });
            out.push(serde_json::to_vec_pretty(&d).expect("serializes"));
        }
    });
    out
}

const SEED_PROFILES: &[&str] = &[
    r#"default_profile = "prod"
[profiles.prod]
backend     = { type = "local", path = "/tmp/ldv-fuzz-vault" }
chunking    = { mode = "cdc", min = "1MiB", avg = "4MiB", max = "16MiB" }
compression = { algorithm = "zstd", level = 3, min_size = "4KiB" }
encryption  = { algorithm = "aes-256-gcm", key = { env = "LDV_PASSPHRASE" } }
retry       = { max_retries = 5, initial_backoff = "100ms", max_backoff = "20s", multiplier = 2.0, jitter = true }
timeouts    = { connect = "10s", read = "300s", write = "300s" }
transfer    = { parallel = 8 }
"#,
    r#"[profiles.s3]
backend = { type = "s3", bucket = "ml-vault", prefix = "team-a/", region = "us-east-1", endpoint = "http://127.0.0.1:9000", path_style = true }
chunking = { mode = "fixed", size = "64MiB" }
compression = { algorithm = "gzip", level = 6 }
[profiles.az]
backend = { type = "azure", container = "vault", prefix = "p" }
encryption = { algorithm = "chacha20-poly1305", key = { static = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a" } }
[profiles.gcs]
backend = { type = "gcs", bucket = "b", prefix = "x/" }
compression = { algorithm = "lz4" }
"#,
    r#"[profiles.minio]
backend = { type = "minio", bucket = "b", endpoint = "http://127.0.0.1:9000", access_key_id = "minio", secret_access_key = "minio123" }
encryption = { key = { kms = "alias/ldv", region = "us-east-1" } }
"#,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every seed of every target is a valid input its target accepts without a finding, and
    /// every target has seeds.
    #[test]
    fn every_target_has_seeds_that_pass() {
        for (name, target) in TARGETS {
            let seeds = seeds(name);
            assert!(!seeds.is_empty(), "{name} has no seeds");
            for seed in seeds {
                target(&seed);
            }
        }
    }
}
