//! Where things live in a vault (format 1) and what names look like: the descriptor key, chunk
//! keys, manifest keys, object names, version strings and `NAME@VERSION` references. Every other
//! module builds keys through these functions, never by hand.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::backend::validate_key;
use crate::error::{Error, ErrorKind, Result};

/// Key of the vault descriptor.
pub const DESCRIPTOR_KEY: &str = "ldv-vault.json";
/// Prefix of every chunk object.
pub const CHUNKS_PREFIX: &str = "chunks/";
/// Prefix of every manifest.
pub const MANIFESTS_PREFIX: &str = "manifests/";
/// Longest object name, in bytes: its manifest key (`manifests/<name>/<version>`) must still fit
/// the 1024-byte key limit.
pub const MAX_NAME_LEN: usize =
    crate::backend::MAX_KEY_LEN - MANIFESTS_PREFIX.len() - 1 - VERSION_LEN;
/// Length of a version string.
pub const VERSION_LEN: usize = 28;

/// A chunk id: the SHA-256 of the chunk's plaintext.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChunkId(pub [u8; 32]);

impl ChunkId {
    /// The id of `data`.
    pub fn of(data: &[u8]) -> Self {
        use sha2::Digest;
        Self(sha2::Sha256::digest(data).into())
    }

    /// Lower-case hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The key of this chunk's object: `chunks/<2 hex>/<64 hex>`.
    pub fn key(&self) -> String {
        let hex = self.to_hex();
        format!("{CHUNKS_PREFIX}{}/{hex}", &hex[..2])
    }

    /// Parses a chunk key back into an id.
    pub fn from_key(key: &str) -> Option<Self> {
        let rest = key.strip_prefix(CHUNKS_PREFIX)?;
        let (dir, hex) = rest.split_once('/')?;
        let id: ChunkId = hex.parse().ok()?;
        (dir == &hex[..2]).then_some(id)
    }
}

impl FromStr for ChunkId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let mut out = [0u8; 32];
        if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(Error::new(
                ErrorKind::SerializationError,
                format!("invalid chunk id {s:?}: expected 64 lower-case hex digits"),
            ));
        }
        hex::decode_to_slice(s, &mut out).map_err(|_| {
            Error::new(
                ErrorKind::SerializationError,
                format!("invalid chunk id {s:?}: expected 64 lower-case hex digits"),
            )
        })?;
        Ok(Self(out))
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkId({})", self.to_hex())
    }
}

impl Serialize for ChunkId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ChunkId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Checks an object name: a valid key (segments fit a file name) of at most [`MAX_NAME_LEN`] bytes.
pub fn validate_name(name: &str) -> Result<()> {
    validate_key(name)?;
    if name.len() > MAX_NAME_LEN {
        return Err(Error::invalid_key(
            name,
            format!("longer than {MAX_NAME_LEN} bytes"),
        ));
    }
    Ok(())
}

/// Checks a name a put would store under: a valid name that also reads back as itself, so
/// it must not end in `@` and something [`ObjectRef::parse`] takes for a version.
pub fn validate_new_name(name: &str) -> Result<()> {
    validate_name(name)?;
    match ObjectRef::parse(name) {
        Ok(r) if r.name == name && r.version.is_none() => Ok(()),
        _ => Err(Error::invalid_key(
            name,
            "ends in '@' and a version, so it could not be read back by name; rename it",
        )),
    }
}

/// Makes a fresh version string: `<UTC time with ms>-<8 random hex digits>`, sortable by time.
pub fn new_version(now: SystemTime) -> String {
    format!(
        "{}-{:08x}",
        crate::time::compact(now),
        rand::random::<u32>()
    )
}

/// Whether `s` has the shape of a version string made by [`new_version`].
pub fn is_version(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == VERSION_LEN
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8] == b'T'
        && b[9..18].iter().all(u8::is_ascii_digit)
        && b[18] == b'Z'
        && b[19] == b'-'
        && b[20..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// The manifest key of one version of an object.
pub fn manifest_key(name: &str, version: &str) -> String {
    format!("{MANIFESTS_PREFIX}{name}/{version}")
}

/// The listing prefix under which every version of `name` (and of names below it) lives.
pub fn manifest_prefix(name: &str) -> String {
    format!("{MANIFESTS_PREFIX}{name}/")
}

/// Splits a manifest key into `(name, version)`; `None` for keys that are not manifests.
pub fn parse_manifest_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(MANIFESTS_PREFIX)?;
    let (name, version) = rest.rsplit_once('/')?;
    is_version(version).then_some((name, version))
}

/// A reference to an object as a user writes it: `NAME` (newest version) or `NAME@VERSION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRef {
    /// The object name.
    pub name: String,
    /// A specific version, or `None` for the newest.
    pub version: Option<String>,
}

impl ObjectRef {
    /// Parses `NAME` or `NAME@VERSION`; an `@` not followed by a version is part of the name.
    pub fn parse(s: &str) -> Result<Self> {
        let (name, version) = match s.rsplit_once('@') {
            Some((name, v)) if is_version(v) => (name, Some(v.to_owned())),
            Some((_, v)) if looks_like_version_attempt(v) => {
                return Err(Error::invalid_key(
                    s,
                    "the part after '@' is not a version (expected e.g. 20261127T080512123Z-1a2b3c4d)",
                ));
            }
            _ => (s, None),
        };
        validate_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            version,
        })
    }
}

fn looks_like_version_attempt(v: &str) -> bool {
    v.len() >= 8 && v.as_bytes()[..8].iter().all(u8::is_ascii_digit) && !v.contains('/')
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.version {
            Some(v) => write!(f, "{}@{v}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_round_trip_through_keys() {
        let v = new_version(SystemTime::now());
        assert!(is_version(&v), "{v}");
        let key = manifest_key("a/b@c", &v);
        assert_eq!(parse_manifest_key(&key), Some(("a/b@c", v.as_str())));
        assert_eq!(parse_manifest_key("manifests/a/notaversion"), None);
    }

    #[test]
    fn object_refs_split_at_a_real_version_only() {
        let v = new_version(SystemTime::now());
        let r = ObjectRef::parse(&format!("x/y@{v}")).unwrap();
        assert_eq!(
            (r.name.as_str(), r.version.as_deref()),
            ("x/y", Some(v.as_str()))
        );
        let r = ObjectRef::parse("user@host/file").unwrap();
        assert_eq!((r.name.as_str(), r.version), ("user@host/file", None));
        assert!(ObjectRef::parse("x@20260101T0000").is_err());
        for bad in ["../x", "/abs", "a//b", "a\u{1}b", ""] {
            assert!(ObjectRef::parse(bad).is_err(), "{bad:?}");
        }
        assert!(validate_name(&"a".repeat(256)).is_err());
    }

    #[test]
    fn chunk_keys_round_trip() {
        let id = ChunkId::of(b"hello");
        assert_eq!(ChunkId::from_key(&id.key()), Some(id));
        assert_eq!(ChunkId::from_key("chunks/00/zz"), None);
    }
}
