//! The chunk frame of format 1 (DESIGN §3): magic `LDVC`, a format byte, a compression byte and
//! a cipher byte, then the payload; in an encrypted vault the payload is a random nonce, the
//! ciphertext and the AEAD tag, with the header and the chunk id as associated data.
//!
//! A [`Codec`] turns plaintext chunks into frames and back: it compresses a chunk only when that
//! saves space (otherwise the frame says `none` and holds the chunk as is), decompresses into a
//! buffer no larger than the size the manifest records (no decompression bombs), and in an
//! encrypted vault seals every chunk and manifest (see [`super::crypto`]). An unknown or
//! mismatched header is damage, so a flipped header byte is never mistaken for data.

use std::io::{Read, Write};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use super::crypto::{Cipher, SEAL_OVERHEAD, VaultKeys};
use super::layout::ChunkId;
use crate::error::{Error, Result};

/// The four bytes every chunk object starts with.
pub const MAGIC: &[u8; 4] = b"LDVC";
/// The frame format written by this build.
pub const FRAME_FORMAT: u8 = 1;
/// Length of the frame header.
pub const HEADER_LEN: usize = 7;
/// Compression code: stored as is.
pub const COMPRESSION_NONE: u8 = 0;
/// Cipher code: not encrypted.
pub const CIPHER_NONE: u8 = 0;

/// The header of a frame holding an uncompressed, unencrypted chunk.
pub const PLAIN_HEADER: [u8; HEADER_LEN] = [
    MAGIC[0],
    MAGIC[1],
    MAGIC[2],
    MAGIC[3],
    FRAME_FORMAT,
    COMPRESSION_NONE,
    CIPHER_NONE,
];

/// A plaintext chunk kept in a buffer that starts with [`PLAIN_HEADER`], so the buffer is also
/// the chunk's stored frame and storing it needs no copy.
#[derive(Debug, Clone)]
pub struct PlainChunk(Bytes);

impl PlainChunk {
    /// Wraps a buffer that already starts with [`PLAIN_HEADER`]; `None` if it does not.
    pub fn from_framed(buf: Bytes) -> Option<Self> {
        buf.starts_with(&PLAIN_HEADER).then_some(Self(buf))
    }

    /// Copies `data` into a new framed buffer.
    pub fn copy_from(data: &[u8]) -> Self {
        let mut out = BytesMut::with_capacity(HEADER_LEN + data.len());
        out.put_slice(&PLAIN_HEADER);
        out.put_slice(data);
        Self(out.freeze())
    }

    /// The chunk's plaintext.
    pub fn data(&self) -> Bytes {
        self.0.slice(HEADER_LEN..)
    }

    /// Length of the plaintext.
    pub fn len(&self) -> usize {
        self.0.len() - HEADER_LEN
    }

    /// Whether the plaintext is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored frame.
    pub fn frame(&self) -> Bytes {
        self.0.clone()
    }
}

/// Compression codes of the frame header.
const COMPRESSION_GZIP: u8 = 1;
const COMPRESSION_ZSTD: u8 = 2;
const COMPRESSION_LZ4: u8 = 3;

/// The largest chunk a frame may decode to (1 GiB): a size read from storage above this is damage,
/// never an allocation.
pub const MAX_DECODED: u64 = 1 << 30;

/// A compression algorithm of the seed's CompressionConfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// No compression.
    None,
    /// gzip (DEFLATE, zlib-rs).
    Gzip,
    /// Zstandard.
    Zstd,
    /// LZ4 block format.
    Lz4,
}

impl Algorithm {
    /// The name used in profiles.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::None => "none",
            Algorithm::Gzip => "gzip",
            Algorithm::Zstd => "zstd",
            Algorithm::Lz4 => "lz4",
        }
    }

    /// The level used when a profile gives none.
    pub fn default_level(self) -> i32 {
        match self {
            Algorithm::Gzip => 6,
            Algorithm::Zstd => 3,
            Algorithm::None | Algorithm::Lz4 => 0,
        }
    }

    /// The levels a profile may give.
    pub fn levels(self) -> std::ops::RangeInclusive<i32> {
        match self {
            Algorithm::Gzip => 0..=9,
            Algorithm::Zstd => 1..=22,
            Algorithm::None | Algorithm::Lz4 => 0..=0,
        }
    }

    fn code(self) -> u8 {
        match self {
            Algorithm::None => COMPRESSION_NONE,
            Algorithm::Gzip => COMPRESSION_GZIP,
            Algorithm::Zstd => COMPRESSION_ZSTD,
            Algorithm::Lz4 => COMPRESSION_LZ4,
        }
    }
}

/// Per-chunk compression (the seed's CompressionConfig).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressionConfig {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// Its level (zstd 1–22, gzip 0–9; lz4 has one).
    pub level: i32,
    /// Chunks smaller than this are stored uncompressed.
    pub min_size: u64,
}

impl CompressionConfig {
    /// No compression.
    pub const NONE: Self = Self {
        algorithm: Algorithm::None,
        level: 0,
        min_size: 0,
    };

    /// The default minimum chunk size worth compressing.
    pub const DEFAULT_MIN_SIZE: u64 = 4096;

    /// What a format-2 vault compresses with when the profile says nothing: zstd at level 3,
    /// chunks of 4 KiB and up (an incompressible chunk is stored as is).
    pub const PACKED_DEFAULT: Self = Self {
        algorithm: Algorithm::Zstd,
        level: 3,
        min_size: Self::DEFAULT_MIN_SIZE,
    };
}

/// Chunks at least this long are first tried on a sample, so incompressible data costs almost
/// nothing whatever the algorithm (the approach of borg's `auto` mode). zstd tries the sample
/// at its fastest regular level: whether data compresses at all shows there as well, at a
/// fraction of the cost of a higher level (a 1 GiB incompressible put in 128 KiB chunks
/// samples 64 MiB). From the CDC minimum (32 KiB) up: chunks between it and 64 KiB, about a
/// tenth of the chunks, were compressed whole at the profile's level when the sample started at
/// 64 KiB. A put of 64 MiB of random data runs 0.3% more instructions than with compression
/// none (callgrind), 0.6% with the sample from 64 KiB.
const SAMPLE_FROM: usize = 32 * 1024;
const SAMPLE_LEN: usize = 8 * 1024;
const SAMPLE_ZSTD_LEVEL: i32 = 1;

/// Turns plaintext chunks and manifests into stored frames and back, for one vault.
#[derive(Debug, Clone)]
pub struct Codec {
    compression: CompressionConfig,
    keys: Option<Arc<VaultKeys>>,
}

/// What a chunk's subkey is derived for (HKDF info).
pub(crate) const CHUNK_PURPOSE: &[u8] = b"ldv chunk v1";
const MANIFEST_PURPOSE: &[u8] = b"ldv manifest v1";

impl Codec {
    /// The codec of a plain vault without compression.
    pub fn plain() -> Self {
        Self::new(CompressionConfig::NONE, None)
    }

    /// A codec compressing with `compression` and, when `keys` is given, sealing with them.
    pub fn new(compression: CompressionConfig, keys: Option<Arc<VaultKeys>>) -> Self {
        Self { compression, keys }
    }

    /// The vault's cipher, if it is encrypted.
    pub fn cipher(&self) -> Option<Cipher> {
        self.keys.as_ref().map(|k| k.cipher())
    }

    /// The compression written.
    pub fn compression(&self) -> CompressionConfig {
        self.compression
    }

    /// The id of chunk `data`: its SHA-256, or in an encrypted vault its keyed HMAC-SHA-256.
    pub fn chunk_id(&self, data: &[u8]) -> ChunkId {
        match &self.keys {
            Some(keys) => ChunkId(keys.chunk_id(data)),
            None => ChunkId::of(data),
        }
    }

    /// The stored size of an uncompressed frame of `plain_len` bytes.
    pub fn plain_frame_len(&self, plain_len: u64) -> u64 {
        let sealed = if self.keys.is_some() {
            SEAL_OVERHEAD as u64
        } else {
            0
        };
        // Saturating: `plain_len` may come from a damaged manifest.
        plain_len.saturating_add(HEADER_LEN as u64 + sealed)
    }

    fn header(&self, compression: u8) -> [u8; HEADER_LEN] {
        frame_header(compression, self.cipher().map_or(CIPHER_NONE, Cipher::code))
    }

    /// Whether frames are the chunks' own buffers (no compression, no encryption): encoding
    /// is then free and needs no worker thread.
    pub fn is_identity(&self) -> bool {
        self.keys.is_none() && self.compression.algorithm == Algorithm::None
    }

    /// The stored frame of chunk `id`. A plain, uncompressed frame is the chunk's own buffer.
    pub fn encode_chunk(&self, id: ChunkId, chunk: &PlainChunk) -> Bytes {
        let data = &chunk.0[HEADER_LEN..];
        let compressed = self.compress(data);
        let (code, payload) = match &compressed {
            Some(c) => (self.compression.algorithm.code(), &c[..]),
            None if self.keys.is_none() => return chunk.frame(),
            None => (COMPRESSION_NONE, data),
        };
        self.seal(code, CHUNK_PURPOSE, &id.0, payload)
    }

    /// Frames `payload` (already compressed with `code`), sealing it in an encrypted vault.
    pub(crate) fn seal(&self, code: u8, purpose: &[u8], context: &[u8], payload: &[u8]) -> Bytes {
        let header = self.header(code);
        match &self.keys {
            None => {
                let mut out = BytesMut::with_capacity(HEADER_LEN + payload.len());
                out.put_slice(&header);
                out.put_slice(payload);
                out.freeze()
            }
            Some(keys) => {
                let start = HEADER_LEN + aws_lc_rs::aead::NONCE_LEN;
                let mut out = Vec::with_capacity(start + payload.len() + SEAL_OVERHEAD);
                out.extend_from_slice(&header);
                out.resize(start, 0);
                out.extend_from_slice(payload);
                keys.seal(purpose, context, &header, &mut out, start);
                Bytes::from(out)
            }
        }
    }

    /// The compressed form of `data`, or `None` when it is not worth storing compressed.
    fn compress(&self, data: &[u8]) -> Option<Vec<u8>> {
        let c = self.compression;
        if c.algorithm == Algorithm::None || (data.len() as u64) < c.min_size.max(1) {
            return None;
        }
        if data.len() >= SAMPLE_FROM {
            let mid = data.len() / 2 - SAMPLE_LEN / 2;
            let sample = &data[mid..mid + SAMPLE_LEN];
            let trial = match c.algorithm {
                Algorithm::Zstd => zstd_compress(sample, c.level.min(SAMPLE_ZSTD_LEVEL)),
                _ => compress_with(c, sample),
            };
            if !worth_it(sample.len(), trial.len()) {
                return None;
            }
        }
        let out = compress_with(c, data);
        worth_it(data.len(), out.len()).then_some(out)
    }

    /// Checks and opens the frame of chunk `id` whose size no manifest gives (gc copying it
    /// between packs), up to [`MAX_DECODED`] bytes of plaintext.
    pub fn decode_chunk_unsized(&self, id: ChunkId, frame: Bytes) -> Result<Bytes> {
        self.open(
            frame,
            CHUNK_PURPOSE,
            &id.0,
            MAX_DECODED,
            &format!("chunk {id}"),
        )
    }

    /// Checks and opens the frame of chunk `id`, whose plaintext the manifest says is `size`
    /// bytes, and returns that plaintext (without copying for a plain, uncompressed frame).
    /// Any damage, or a frame that does not belong to this vault, is an integrity error.
    pub fn decode_chunk(&self, id: ChunkId, frame: Bytes, size: u64) -> Result<Bytes> {
        let what = format!("chunk {id}");
        let plain = self.open(frame, CHUNK_PURPOSE, &id.0, size, &what)?;
        if plain.len() as u64 != size {
            return Err(Error::integrity(
                &what,
                format!(
                    "decodes to {} bytes, but the manifest records {size}",
                    plain.len()
                ),
            ));
        }
        Ok(plain)
    }

    /// The stored form of the manifest at storage key `key`: in an encrypted vault a sealed frame
    /// bound to that key, otherwise the JSON itself.
    pub fn encode_manifest(&self, key: &str, json: Vec<u8>) -> Bytes {
        match self.keys {
            None => Bytes::from(json),
            Some(_) => self.seal(COMPRESSION_NONE, MANIFEST_PURPOSE, key.as_bytes(), &json),
        }
    }

    /// The JSON of the manifest stored at `key`; `what` names it in errors.
    pub fn decode_manifest(&self, key: &str, raw: Bytes, what: &str) -> Result<Bytes> {
        let framed = raw.starts_with(MAGIC);
        match (&self.keys, framed) {
            (None, false) => Ok(raw),
            (None, true) => Err(Error::integrity(
                what,
                "is a sealed frame, but this vault is not encrypted",
            )),
            (Some(_), false) => Err(Error::integrity(
                what,
                "is not sealed, but this vault is encrypted (a plaintext manifest here was not written by ldv)",
            )),
            (Some(_), true) => self.open(raw, MANIFEST_PURPOSE, key.as_bytes(), MAX_DECODED, what),
        }
    }

    /// Checks a frame's header, opens it and decompresses its payload. `size` is the exact
    /// plaintext length for chunks, the upper bound for manifests.
    fn open(
        &self,
        frame: Bytes,
        purpose: &[u8],
        context: &[u8],
        size: u64,
        what: &str,
    ) -> Result<Bytes> {
        if size > MAX_DECODED {
            return Err(Error::integrity(
                what,
                format!("recorded size {size} is over the {MAX_DECODED}-byte limit of a chunk"),
            ));
        }
        if frame.len() < HEADER_LEN || &frame[..4] != MAGIC {
            return Err(Error::integrity(what, "not an ldv chunk frame (bad magic)"));
        }
        if frame[4] != FRAME_FORMAT {
            return Err(Error::integrity(
                what,
                format!(
                    "unknown frame format {} (damaged, or written by a newer ldv)",
                    frame[4]
                ),
            ));
        }
        let (compression, cipher) = (frame[5], frame[6]);
        if compression > COMPRESSION_LZ4 {
            return Err(Error::integrity(
                what,
                format!(
                    "unknown compression {compression} in frame header (damaged, or written by a newer ldv)"
                ),
            ));
        }
        let expected_cipher = self.cipher().map_or(CIPHER_NONE, Cipher::code);
        if cipher != expected_cipher {
            return Err(Error::integrity(
                what,
                format!(
                    "frame cipher {} does not match the vault's {} (damaged, or not written by this vault)",
                    cipher_name(cipher),
                    cipher_name(expected_cipher)
                ),
            ));
        }
        let payload = match &self.keys {
            None => frame.slice(HEADER_LEN..),
            Some(keys) => {
                let header: [u8; HEADER_LEN] = frame[..HEADER_LEN]
                    .try_into()
                    .expect("checked length above");
                let mut sealed = frame[HEADER_LEN..].to_vec();
                let plain = keys
                    .open(purpose, context, &header, &mut sealed)
                    .ok_or_else(|| {
                        Error::integrity(
                            what,
                            "failed authentication (damaged, moved, or sealed under another key)",
                        )
                    })?;
                Bytes::from(sealed).slice(plain)
            }
        };
        if compression == COMPRESSION_NONE {
            return Ok(payload);
        }
        // No compressor ldv uses ever emits an empty stream, and some decoders accept one.
        if payload.is_empty() {
            return Err(Error::integrity(
                what,
                "has a compressed frame with an empty payload",
            ));
        }
        let limit = usize::try_from(size).expect("bounded by MAX_DECODED");
        let out = decompress(compression, &payload, limit)
            .map_err(|e| Error::integrity(what, format!("does not decompress: {e}")))?;
        Ok(Bytes::from(out))
    }
}

/// Whether a compressed form of `compressed` bytes is worth storing for `plain` bytes: it must
/// save at least 1/32 (3%), so a chunk that barely shrinks is not decompressed on every read.
fn worth_it(plain: usize, compressed: usize) -> bool {
    compressed < plain - plain / 32
}

thread_local! {
    /// zstd compressors of each worker thread, by level (the sample's and the profile's):
    /// creating a context costs about as much as compressing a 128 KiB chunk, so small chunks
    /// reuse it.
    static ZSTD: std::cell::RefCell<Vec<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

fn zstd_compress(data: &[u8], level: i32) -> Vec<u8> {
    ZSTD.with(|cell| {
        let mut held = cell.borrow_mut();
        let at = match held.iter().position(|(l, _)| *l == level) {
            Some(at) => at,
            None => {
                let fresh = zstd::bulk::Compressor::new(level)
                    .expect("a zstd compressor for a level the profile check accepted");
                held.push((level, fresh));
                held.len() - 1
            }
        };
        let (_, compressor) = &mut held[at];
        compressor
            .compress(data)
            .expect("zstd compresses any input into a growable buffer")
    })
}

fn compress_with(c: CompressionConfig, data: &[u8]) -> Vec<u8> {
    match c.algorithm {
        Algorithm::None => data.to_vec(),
        Algorithm::Zstd => zstd_compress(data, c.level),
        Algorithm::Lz4 => lz4_flex::block::compress(data),
        Algorithm::Gzip => {
            let level = flate2::Compression::new(c.level.clamp(0, 9) as u32);
            let mut enc = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 2), level);
            enc.write_all(data)
                .and_then(|()| enc.finish())
                .expect("writing into a Vec cannot fail")
        }
    }
}

/// An LZ4 block expands at most 255-fold (each extra length byte adds at most 255 bytes), plus
/// the few bytes of one sequence.
const LZ4_MAX_RATIO: usize = 255;
/// A zstd frame's own claim of its content size is trusted to size the buffer up to this, or
/// up to this many times its length: past that it is decoded as a stream, growing with what it
/// really holds.
const ZSTD_TRUSTED_CLAIM: usize = 1 << 20;
const ZSTD_TRUSTED_RATIO: usize = 64;

/// Decompresses `payload` into at most `limit` bytes; more is an error, not an allocation.
/// `limit` comes from a manifest, which a hostile vault writes too, so the buffer is sized by
/// what the payload can hold, never by `limit` alone: a tiny frame claiming a gigabyte costs a
/// small allocation and an error.
fn decompress(code: u8, payload: &[u8], limit: usize) -> std::result::Result<Vec<u8>, String> {
    let beyond = || format!("expands beyond the recorded {limit} bytes");
    match code {
        COMPRESSION_ZSTD => {
            let claim = zstd::zstd_safe::get_frame_content_size(payload)
                .ok()
                .flatten()
                .and_then(|n| usize::try_from(n).ok());
            match claim {
                Some(n) if n > limit => Err(beyond()),
                Some(n) if n <= ZSTD_TRUSTED_CLAIM || n / ZSTD_TRUSTED_RATIO <= payload.len() => {
                    zstd::bulk::decompress(payload, n).map_err(|e| e.to_string())
                }
                _ => {
                    let decoder = zstd::stream::read::Decoder::with_buffer(payload)
                        .map_err(|e| e.to_string())?;
                    read_bounded(decoder, limit)
                }
            }
        }
        COMPRESSION_LZ4 => {
            let most = payload
                .len()
                .saturating_mul(LZ4_MAX_RATIO)
                .saturating_add(64);
            let mut out = vec![0u8; limit.min(most)];
            let n = lz4_flex::block::decompress_into(payload, &mut out).map_err(|e| match e {
                lz4_flex::block::DecompressError::OutputTooSmall { .. } if most >= limit => {
                    beyond()
                }
                e => e.to_string(),
            })?;
            out.truncate(n);
            Ok(out)
        }
        COMPRESSION_GZIP => read_bounded(flate2::read::GzDecoder::new(payload), limit),
        _ => Err(format!("unknown compression {code}")),
    }
}

/// Reads `r` to its end into a buffer that grows with what it yields, failing past `limit`.
fn read_bounded(r: impl Read, limit: usize) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    r.take((limit as u64).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    if out.len() > limit {
        return Err(format!("expands beyond the recorded {limit} bytes"));
    }
    Ok(out)
}

fn cipher_name(code: u8) -> &'static str {
    match Cipher::from_code(code) {
        Some(c) => c.name(),
        None if code == CIPHER_NONE => "none",
        None => "unknown",
    }
}

/// Unframes a stored chunk of a plain vault written without compression.
pub fn decode(frame: Bytes, what: &str) -> Result<Bytes> {
    Codec::plain().open(frame, CHUNK_PURPOSE, &[], MAX_DECODED, what)
}

/// The stored size of a plain, uncompressed frame holding `plain_len` bytes.
pub fn framed_len(plain_len: u64) -> u64 {
    // Saturating: `plain_len` may come from a damaged manifest.
    plain_len.saturating_add(HEADER_LEN as u64)
}

/// The header of a frame: magic, frame format, compression and cipher codes.
pub(crate) fn frame_header(compression: u8, cipher: u8) -> [u8; HEADER_LEN] {
    [
        MAGIC[0],
        MAGIC[1],
        MAGIC[2],
        MAGIC[3],
        FRAME_FORMAT,
        compression,
        cipher,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn frames_round_trip(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let frame = PlainChunk::copy_from(&data).frame();
            prop_assert_eq!(frame.len() as u64, framed_len(data.len() as u64));
            prop_assert_eq!(&decode(frame, "c").unwrap()[..], &data[..]);
        }

        #[test]
        fn any_header_flip_is_rejected(data in proptest::collection::vec(any::<u8>(), 0..64), at in 0usize..HEADER_LEN, bit in 0u8..8) {
            let mut frame = PlainChunk::copy_from(&data).frame().to_vec();
            frame[at] ^= 1 << bit;
            let err = decode(Bytes::from(frame), "c").unwrap_err();
            prop_assert_eq!(err.kind(), crate::ErrorKind::IntegrityCheckFailed);
        }
    }

    /// Bytes like a trained model's BF16 weights: normal(0, 0.02) floats, rounded to BF16.
    fn bf16_weights(n: usize) -> Vec<u8> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            // Box-Muller: two uniforms to one normal draw.
            let (u, v): (f32, f32) = (rng.random_range(1e-7..1.0), rng.random());
            let x = 0.02 * (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos();
            out.extend_from_slice(&((x.to_bits() >> 16) as u16).to_le_bytes());
        }
        out
    }

    /// Incompressible chunks are stored as they are, and compressible ones (text, BF16 weights)
    /// compressed.
    #[test]
    fn chunks_are_compressed_exactly_where_it_pays() {
        use rand::{RngCore, SeedableRng};
        let codec = Codec::new(CompressionConfig::PACKED_DEFAULT, None);
        let mut random = vec![0; 128 * 1024];
        rand::rngs::StdRng::seed_from_u64(2).fill_bytes(&mut random);
        assert!(codec.compress(&random).is_none());
        let text = b"fn main() { println!(\"a data vault\"); }\n".repeat(3000);
        assert!(codec.compress(&text).is_some());
        let weights = bf16_weights(128 * 1024);
        assert!(codec.compress(&weights).is_some());
    }

    /// A chunk size read from a damaged manifest (u64::MAX) used to overflow computing its
    /// frame's size and panic `verify`.
    #[test]
    fn frame_lengths_of_absurd_chunk_sizes_saturate() {
        assert_eq!(framed_len(u64::MAX), u64::MAX);
        let sealed = Codec::new(
            CompressionConfig::NONE,
            Some(Arc::new(VaultKeys::derive(
                Cipher::Aes256Gcm,
                &crate::store::crypto::KeyBytes::new([1; 32]),
                "t",
            ))),
        );
        assert_eq!(sealed.plain_frame_len(u64::MAX - 3), u64::MAX);
    }

    /// Every single-bit flip of the header of frames of several lengths, the empty one included
    /// (a zstd or gzip decoder may accept an empty stream), is rejected.
    #[test]
    fn every_header_flip_is_rejected() {
        for len in [0usize, 1, 2, 16, 63, 4096] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let frame = PlainChunk::copy_from(&data).frame().to_vec();
            for at in 0..HEADER_LEN {
                for bit in 0..8 {
                    let mut damaged = frame.clone();
                    damaged[at] ^= 1 << bit;
                    let err = decode(Bytes::from(damaged), "c").expect_err(&format!(
                        "flip of bit {bit} of byte {at} of a {len}-byte frame"
                    ));
                    assert_eq!(err.kind(), crate::ErrorKind::IntegrityCheckFailed);
                }
            }
        }
    }

    use crate::store::crypto::{KeyBytes, VaultKeys};

    fn codec(algorithm: Algorithm, cipher: Option<Cipher>) -> Codec {
        let keys = cipher.map(|c| Arc::new(VaultKeys::derive(c, &KeyBytes::new([3; 32]), "t")));
        Codec::new(
            CompressionConfig {
                algorithm,
                level: algorithm.default_level(),
                min_size: 16,
            },
            keys,
        )
    }

    const ALGORITHMS: [Algorithm; 4] = [
        Algorithm::None,
        Algorithm::Gzip,
        Algorithm::Zstd,
        Algorithm::Lz4,
    ];
    const CIPHERS: [Option<Cipher>; 3] = [
        None,
        Some(Cipher::Aes256Gcm),
        Some(Cipher::ChaCha20Poly1305),
    ];

    fn text(len: usize) -> Vec<u8> {
        b"the quick brown fox jumps over the lazy dog; "
            .iter()
            .copied()
            .cycle()
            .take(len)
            .collect()
    }

    fn random(len: usize) -> Vec<u8> {
        (0..len).map(|_| rand::random::<u8>()).collect()
    }

    #[test]
    fn every_combination_round_trips_and_compresses_only_what_shrinks() {
        for algorithm in ALGORITHMS {
            for cipher in CIPHERS {
                let c = codec(algorithm, cipher);
                let overhead = c.plain_frame_len(0);
                for data in [text(300_000), random(300_000), text(10), Vec::new()] {
                    let id = c.chunk_id(&data);
                    let frame = c.encode_chunk(id, &PlainChunk::copy_from(&data));
                    assert_eq!(frame[6], cipher.map_or(0, Cipher::code));
                    let back = c
                        .decode_chunk(id, frame.clone(), data.len() as u64)
                        .unwrap();
                    assert_eq!(&back[..], &data[..], "{algorithm:?} {cipher:?}");
                    let compressible = data.len() > 1000 && data[..100] == text(100)[..];
                    if algorithm != Algorithm::None && compressible {
                        assert!(
                            frame.len() < data.len() / 4,
                            "{algorithm:?}: {}",
                            frame.len()
                        );
                        assert_eq!(frame[5], algorithm.code());
                    } else {
                        assert_eq!(frame.len() as u64, data.len() as u64 + overhead);
                        assert_eq!(frame[5], COMPRESSION_NONE);
                    }
                }
            }
        }
    }

    #[test]
    fn decompression_is_bounded_by_the_recorded_size() {
        for algorithm in [Algorithm::Gzip, Algorithm::Zstd, Algorithm::Lz4] {
            let c = codec(algorithm, None);
            let big = vec![0u8; 4 << 20];
            let id = c.chunk_id(&big);
            let frame = c.encode_chunk(id, &PlainChunk::copy_from(&big));
            assert!(frame.len() < 100_000);
            // A manifest claiming a smaller chunk must not let the frame expand past it.
            let e = c.decode_chunk(id, frame.clone(), 1000).unwrap_err();
            assert_eq!(
                e.kind(),
                crate::ErrorKind::IntegrityCheckFailed,
                "{algorithm:?}"
            );
            let e = c.decode_chunk(id, frame, MAX_DECODED + 1).unwrap_err();
            assert!(e.message().contains("limit"), "{e}");
        }
    }

    /// The payloads the fuzz targets `frame`, `frame_zstd` and `frame_sealed` found: tiny
    /// frames whose claimed size (a manifest's, or a zstd header's) made the decoder allocate
    /// that size up front (1 GiB, 637 MiB). The buffer now follows what the payload can hold, so
    /// even an unbounded limit costs a small allocation and an error, never a huge one.
    #[test]
    fn tiny_frames_claiming_a_huge_size_allocate_by_their_payload() {
        let lz4: &[u8] = b"\xf0\x10the quick brown fox jumps over \x1f\x00\xf1\x05lazy dog 0123456789;\x19\x00\x0f8\x00\x0f`y dog";
        let zstd: &[u8] = b"hi\x00&\x0f\x00\x00hi\x00tuc\x9e\xdf\xd2\x9crown";
        let mut lying_zstd = zstd::bulk::compress(&[7u8; 100], 3).unwrap();
        // Frame header descriptor 0xe0: single segment, 8-byte content size; claim 2^62 bytes.
        let header = zstd::zstd_safe::get_frame_content_size(&lying_zstd).unwrap();
        assert_eq!(header, Some(100));
        lying_zstd = lying_zstd.iter().copied().take(4).collect::<Vec<u8>>();
        lying_zstd.extend_from_slice(&[0xe0]);
        lying_zstd.extend_from_slice(&(1u64 << 62).to_le_bytes());
        lying_zstd.extend_from_slice(&[1, 0, 0]);
        for (code, payload) in [
            (COMPRESSION_LZ4, lz4),
            (COMPRESSION_ZSTD, zstd),
            (COMPRESSION_ZSTD, &lying_zstd[..]),
            (
                COMPRESSION_GZIP,
                b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03",
            ),
        ] {
            // Before, `usize::MAX` here was a capacity overflow (and 1 GiB an allocation of it).
            let _ = decompress(code, payload, usize::MAX);
            for limit in [1 << 30, 100] {
                if let Ok(out) = decompress(code, payload, limit) {
                    assert!(out.len() <= payload.len() * LZ4_MAX_RATIO + 64, "{code}");
                }
            }
            let mut frame = PLAIN_HEADER.to_vec();
            frame[5] = code;
            frame.extend_from_slice(payload);
            let e = Codec::plain()
                .decode_chunk(ChunkId([0; 32]), Bytes::from(frame), MAX_DECODED)
                .unwrap_err();
            assert_eq!(
                e.kind(),
                crate::ErrorKind::IntegrityCheckFailed,
                "{code}: {e}"
            );
        }
    }

    /// Chunks that compress far beyond the ratios the decoder trusts up front (16 MiB of
    /// zeros) still decode: lz4 within its 255-fold bound, zstd through its streaming path.
    #[test]
    fn chunks_of_any_compression_ratio_round_trip() {
        let zeros = vec![0u8; 16 << 20];
        for algorithm in [Algorithm::Gzip, Algorithm::Zstd, Algorithm::Lz4] {
            let c = codec(algorithm, None);
            let id = c.chunk_id(&zeros);
            let frame = c.encode_chunk(id, &PlainChunk::copy_from(&zeros));
            assert!(
                frame.len() < zeros.len() / 200,
                "{algorithm:?}: {}",
                frame.len()
            );
            let back = c.decode_chunk(id, frame, zeros.len() as u64).unwrap();
            assert!(back == zeros, "{algorithm:?}");
        }
    }

    #[test]
    fn frames_belong_to_their_vault_chunk_and_cipher() {
        let aes = codec(Algorithm::Zstd, Some(Cipher::Aes256Gcm));
        let data = text(50_000);
        let id = aes.chunk_id(&data);
        let frame = aes.encode_chunk(id, &PlainChunk::copy_from(&data));
        let n = data.len() as u64;
        let other_id = aes.chunk_id(b"other");
        for (c, id) in [
            (codec(Algorithm::Zstd, None), id),
            (codec(Algorithm::Zstd, Some(Cipher::ChaCha20Poly1305)), id),
            (aes.clone(), other_id),
        ] {
            let e = c.decode_chunk(id, frame.clone(), n).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::IntegrityCheckFailed, "{e}");
        }
        let plain = codec(Algorithm::None, None);
        let plain_frame = plain.encode_chunk(id, &PlainChunk::copy_from(&data));
        assert!(
            aes.decode_chunk(id, plain_frame, n).is_err(),
            "plain frame in an encrypted vault"
        );
        // Every single-bit flip anywhere in a sealed frame is refused.
        for at in 0..frame.len() {
            let mut bad = frame.to_vec();
            bad[at] ^= 1 << (at % 8);
            assert!(
                aes.decode_chunk(id, Bytes::from(bad), n).is_err(),
                "flip at {at}"
            );
        }
    }

    #[test]
    fn manifests_are_sealed_to_their_key() {
        let c = codec(Algorithm::Zstd, Some(Cipher::Aes256Gcm));
        let json = br#"{"name":"secret-marker"}"#.to_vec();
        let sealed = c.encode_manifest("manifests/a/v1", json.clone());
        assert!(!sealed.windows(13).any(|w| w == b"secret-marker"));
        assert_eq!(
            &c.decode_manifest("manifests/a/v1", sealed.clone(), "m")
                .unwrap()[..],
            &json[..]
        );
        assert!(
            c.decode_manifest("manifests/b/v1", sealed.clone(), "m")
                .is_err()
        );
        assert!(
            c.decode_manifest("manifests/a/v1", Bytes::from(json.clone()), "m")
                .is_err()
        );
        let plain = codec(Algorithm::None, None);
        assert!(
            plain
                .decode_manifest("manifests/a/v1", sealed, "m")
                .is_err()
        );
        assert_eq!(
            &plain
                .decode_manifest("k", Bytes::from(json.clone()), "m")
                .unwrap()[..],
            &json[..]
        );
    }
}
