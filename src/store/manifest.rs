//! Manifests: the immutable record of one version of a named object (its size, whole-content
//! SHA-256, the chunker used and the ordered chunk list). Writing a manifest is the commit point
//! of a put; a manifest is checked for internal consistency every time it is read.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::chunker::ChunkerConfig;
use super::layout::{ChunkId, is_version};
use crate::error::{Error, ErrorKind, Result};

/// The manifest format written by this build.
pub const MANIFEST_FORMAT: u32 = 1;

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
        let what = format!("manifest {name}@{version}");
        #[derive(Deserialize)]
        struct Probe {
            format: u32,
        }
        let probe: Probe = serde_json::from_slice(bytes).map_err(|e| {
            Error::new(
                ErrorKind::IntegrityCheckFailed,
                format!("{what}: unreadable: {e}"),
            )
        })?;
        if probe.format != MANIFEST_FORMAT {
            return Err(Error::config(format!(
                "{what}: manifest format {} is not supported by this ldv (it reads format {MANIFEST_FORMAT})",
                probe.format
            )));
        }
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| {
            Error::new(
                ErrorKind::IntegrityCheckFailed,
                format!("{what}: unreadable: {e}"),
            )
        })?;
        m.check(name, version)?;
        Ok(m)
    }

    /// Checks that the manifest is consistent and belongs at `name@version`.
    fn check(&self, name: &str, version: &str) -> Result<()> {
        let bad = |detail: String| {
            Err(Error::integrity(
                format!("manifest {name}@{version}"),
                detail,
            ))
        };
        if self.name != name || self.version != version {
            return bad(format!(
                "it describes {}@{} but is stored as {name}@{version}",
                self.name, self.version
            ));
        }
        if !is_version(&self.version) {
            return bad("malformed version".into());
        }
        if self.sha256.len() != 64 || !self.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return bad("malformed sha256".into());
        }
        let mut offset = 0u64;
        for c in &self.chunks {
            if c.offset != offset || c.size == 0 {
                return bad(format!("chunk list is not contiguous at offset {offset}"));
            }
            offset = offset.checked_add(c.size).ok_or_else(|| {
                Error::integrity(format!("manifest {name}@{version}"), "chunk sizes overflow")
            })?;
        }
        if offset != self.size {
            return bad(format!(
                "chunks cover {offset} bytes but size is {}",
                self.size
            ));
        }
        Ok(())
    }

    /// Indices of the chunks overlapping the byte range `start..end`.
    pub fn chunks_in(&self, start: u64, end: u64) -> std::ops::Range<usize> {
        let first = self.chunks.partition_point(|c| c.offset + c.size <= start);
        let last = self.chunks.partition_point(|c| c.offset < end);
        first..last.max(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        future["format"] = 2.into();
        let err = Manifest::from_bytes(&serde_json::to_vec(&future).unwrap(), &m.name, &m.version)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConfigurationError);
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
