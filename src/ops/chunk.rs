//! `chunk`: the plan of a put without the upload. The file goes through the same chunking and
//! hashing pipeline as `put`; each chunk is looked up in the vault, and the result says how many
//! chunks and bytes already exist and how many would be uploaded.

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::store::chunker::ChunkerConfig;
use crate::store::{Vault, cpu_work, identify};

use super::put::pipeline;

/// One chunk of the plan.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedChunk {
    /// Offset in the file.
    pub offset: u64,
    /// Length.
    pub size: u64,
    /// Chunk id.
    pub id: String,
    /// Whether the vault (or an earlier chunk of this file) already holds it.
    pub exists: bool,
}

/// Chunk sizes at a glance.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct SizeStats {
    /// Smallest chunk.
    pub min: u64,
    /// 10th percentile.
    pub p10: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// Largest chunk.
    pub max: u64,
    /// Mean.
    pub mean: u64,
}

/// What putting a file would do.
#[derive(Debug, Clone, Serialize)]
pub struct ChunkPlan {
    /// The file examined.
    pub file: String,
    /// Its size.
    pub size: u64,
    /// Its SHA-256.
    pub sha256: String,
    /// The chunker used.
    pub chunker: ChunkerConfig,
    /// Number of chunks.
    pub chunks: u64,
    /// Chunk size distribution.
    pub sizes: SizeStats,
    /// Chunks already in the vault (or repeated within the file).
    pub existing_chunks: u64,
    /// Content bytes of those chunks.
    pub existing_bytes: u64,
    /// Chunks that would be uploaded.
    pub new_chunks: u64,
    /// Bytes that would be uploaded (framed).
    pub bytes_to_upload: u64,
    /// Share of the content that would not be uploaded, 0 to 1.
    pub dedup_ratio: f64,
    /// Every chunk, in order.
    pub list: Vec<PlannedChunk>,
}

fn size_stats(sizes: &mut [u64]) -> SizeStats {
    if sizes.is_empty() {
        return SizeStats::default();
    }
    sizes.sort_unstable();
    let at = |q: usize| sizes[(sizes.len() - 1) * q / 100];
    SizeStats {
        min: sizes[0],
        p10: at(10),
        p50: at(50),
        p90: at(90),
        max: sizes[sizes.len() - 1],
        mean: sizes.iter().sum::<u64>() / sizes.len() as u64,
    }
}

/// Chunks and hashes `path` with `chunker` and checks which chunks the vault already holds.
pub async fn plan(
    vault: &Arc<Vault>,
    path: &Path,
    chunker: ChunkerConfig,
    parallel: usize,
) -> Result<ChunkPlan> {
    let file = File::open(path).map_err(|e| Error::io("open", path.display(), e))?;
    let size_hint = file.metadata().ok().map(|m| m.len());
    let what = path.display().to_string();
    let mut seen = HashSet::new();
    let (found, sha256) = pipeline(
        Box::new(file),
        size_hint,
        &what,
        chunker,
        0,
        parallel,
        |batch| {
            let vault = Arc::clone(vault);
            async move {
                let mut found = Vec::with_capacity(batch.len());
                for chunk in batch {
                    let size = chunk.len() as u64;
                    let id = identify(vault.codec(), &chunk).await?;
                    let exists = vault.holds_chunk(id).await?;
                    // The frame this chunk would be stored as, compressed and sealed like a put.
                    let stored = if exists {
                        0
                    } else {
                        let codec = vault.codec().clone();
                        cpu_work(chunk.len(), move || {
                            codec.encode_chunk(id, &chunk).len() as u64
                        })
                        .await?
                    };
                    found.push((size, id, exists, stored));
                }
                Ok(found)
            }
        },
        // A chunk seen earlier in the file is stored by then: settled in content order.
        |(size, id, exists, stored)| {
            let repeated = !seen.insert(id);
            futures::future::ok((size, id, exists || repeated, stored))
        },
    )
    .await?;
    let mut list = Vec::with_capacity(found.len());
    let mut offset = 0;
    let (mut existing_chunks, mut existing_bytes, mut bytes_to_upload) = (0, 0, 0);
    for (size, id, exists, stored) in found {
        if exists {
            existing_chunks += 1;
            existing_bytes += size;
        } else {
            bytes_to_upload += stored;
        }
        list.push(PlannedChunk {
            offset,
            size,
            id: id.to_hex(),
            exists,
        });
        offset += size;
    }
    let mut sizes: Vec<u64> = list.iter().map(|c| c.size).collect();
    Ok(ChunkPlan {
        file: what,
        size: offset,
        sha256,
        chunker,
        chunks: list.len() as u64,
        sizes: size_stats(&mut sizes),
        existing_chunks,
        existing_bytes,
        new_chunks: list.len() as u64 - existing_chunks,
        bytes_to_upload,
        dedup_ratio: if offset == 0 {
            0.0
        } else {
            existing_bytes as f64 / offset as f64
        },
        list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_sorted_sizes() {
        let mut sizes: Vec<u64> = (1..=100).rev().collect();
        let s = size_stats(&mut sizes);
        assert_eq!(
            (s.min, s.p10, s.p50, s.p90, s.max, s.mean),
            (1, 10, 50, 90, 100, 50)
        );
        assert_eq!(size_stats(&mut []).max, 0);
    }
}
