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

/// Frames a plaintext chunk for storage.
pub fn encode(plain: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(HEADER_LEN + plain.len());
    out.put_slice(MAGIC);
    out.put_u8(FRAME_FORMAT);
    out.put_u8(COMPRESSION_NONE);
    out.put_u8(CIPHER_NONE);
    out.put_slice(plain);
    out.freeze()
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
            let frame = encode(&data);
            prop_assert_eq!(frame.len() as u64, framed_len(data.len() as u64));
            prop_assert_eq!(&decode(frame, "c").unwrap()[..], &data[..]);
        }

        #[test]
        fn any_header_flip_is_rejected(data in proptest::collection::vec(any::<u8>(), 0..64), at in 0usize..HEADER_LEN, bit in 0u8..8) {
            let mut frame = encode(&data).to_vec();
            frame[at] ^= 1 << bit;
            let err = decode(Bytes::from(frame), "c").unwrap_err();
            prop_assert_eq!(err.kind(), crate::ErrorKind::IntegrityCheckFailed);
        }
    }
}
