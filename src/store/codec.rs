//! The chunk frame of format 1: magic `LDVC`, a format byte, a compression byte and a cipher byte,
//! then (for ciphers) nonce, payload and tag. This build writes and reads compression `none` and
//! cipher `none`; any other header is rejected as damage, so a flipped header byte can never be
//! mistaken for data.

use bytes::{BufMut, Bytes, BytesMut};

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

/// Unframes a stored chunk, returning its plaintext without copying; `what` names it in errors.
pub fn decode(frame: Bytes, what: &str) -> Result<Bytes> {
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
    if frame[5] != COMPRESSION_NONE || frame[6] != CIPHER_NONE {
        return Err(Error::integrity(
            what,
            format!(
                "unknown compression {} / cipher {} in frame header (damaged, or written by a newer ldv)",
                frame[5], frame[6]
            ),
        ));
    }
    Ok(frame.slice(HEADER_LEN..))
}

/// The stored size of a frame holding `plain_len` bytes.
pub fn framed_len(plain_len: u64) -> u64 {
    plain_len + HEADER_LEN as u64
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
}
