//! `gc`: reclaim the chunks no version references. Split into a plan (mark every chunk any
//! manifest references, list every stored chunk, set aside those younger than the grace period)
//! and its execution (delete in batches, re-reading manifests committed since the plan before
//! each batch). It refuses to plan, and so deletes nothing, when a manifest cannot be read or a
//! referenced chunk is missing: both mean the vault needs `verify`, not deletion. The caller
//! holds the vault's exclusive lock throughout.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::backend::MIN_LEFTOVER_AGE;
use crate::error::{Error, ErrorKind, Result};
use crate::report::Reporter;
use crate::store::Vault;
use crate::store::layout::ChunkId;

/// Chunks deleted between two re-checks of the manifests.
pub const BATCH: usize = 1000;

/// The chunks every manifest references, and which manifests have been read. Only chunk ids
/// are kept (no chunk list, no name per chunk), each manifest read on its own, so marking a
/// vault costs its distinct chunks and its version list, not its manifests.
#[derive(Debug, Default)]
struct Marks {
    /// Each referenced chunk.
    referenced: HashSet<ChunkId>,
    /// Manifest keys already read; manifests are immutable, so each is read once.
    seen: HashSet<(String, String)>,
}

impl Marks {
    /// Reads every manifest not read before and marks its chunks.
    async fn update(&mut self, vault: &Vault, parallel: usize) -> Result<usize> {
        let fresh: Vec<(String, String)> = vault
            .list_versions("")
            .await?
            .into_iter()
            .filter(|v| !self.seen.contains(v))
            .collect();
        let count = fresh.len();
        let mut manifests = futures::stream::iter(fresh)
            .map(|(name, version)| async move {
                let ids = vault
                    .read_manifest_deep(&name, &version, HashSet::new())
                    .await;
                (name, version, ids)
            })
            .buffered(crate::ops::fanout(parallel));
        while let Some((name, version, ids)) = manifests.next().await {
            match ids {
                Ok((_, ids)) => self.referenced.extend(ids),
                // Removed since it was listed: it references nothing any more.
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::new(
                        e.kind(),
                        format!(
                            "gc refuses to run: cannot read manifest {name}@{version} ({e}), so it cannot know which chunks are in use; nothing was deleted (run `ldv verify`)"
                        ),
                    ));
                }
            }
            self.seen.insert((name, version));
        }
        Ok(count)
    }

    /// One version that needs each of `ids`, for naming missing chunks: another pass over the
    /// manifests, made only when gc is about to refuse.
    async fn needed_by(
        &self,
        vault: &Vault,
        ids: &[ChunkId],
        parallel: usize,
    ) -> HashMap<ChunkId, String> {
        let mut versions: Vec<&(String, String)> = self.seen.iter().collect();
        versions.sort();
        let wanted: HashSet<ChunkId> = ids.iter().copied().collect();
        let mut by = HashMap::new();
        let mut manifests = futures::stream::iter(versions)
            .map(|(name, version)| async move {
                let ids = vault
                    .read_manifest_deep(name, version, HashSet::new())
                    .await;
                (name, version, ids)
            })
            .buffered(crate::ops::fanout(parallel));
        while let Some((name, version, ids)) = manifests.next().await {
            for id in ids.map(|(_, ids)| ids).unwrap_or_default() {
                if wanted.contains(&id) {
                    by.entry(id).or_insert_with(|| format!("{name}@{version}"));
                }
            }
            if by.len() == wanted.len() {
                break;
            }
        }
        by
    }
}

/// What gc would do.
#[derive(Debug, Serialize)]
pub struct GcPlan {
    /// Manifests read.
    pub manifests: u64,
    /// Chunks stored.
    pub chunks_total: u64,
    /// Bytes stored in chunks.
    pub bytes_total: u64,
    /// Chunks some manifest references.
    pub referenced_chunks: u64,
    /// Chunks no manifest references.
    pub unreferenced_chunks: u64,
    /// Unreferenced chunks kept because they are younger than the grace period.
    pub too_young_chunks: u64,
    /// Bytes of those.
    pub too_young_bytes: u64,
    /// Chunks that would be deleted.
    pub deletable_chunks: u64,
    /// Bytes that would be freed.
    pub bytes_reclaimable: u64,
    /// The grace period, in seconds.
    pub grace_secs: u64,
    #[serde(skip)]
    deletable: Vec<(ChunkId, u64)>,
    #[serde(skip)]
    marks: Marks,
}

/// The result of executing a plan.
#[derive(Debug, Serialize)]
pub struct GcReport {
    /// Chunks deleted.
    pub deleted_chunks: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
    /// Planned chunks kept because a version committed since the plan references them.
    pub kept_now_referenced: u64,
    /// Leftovers of interrupted writes (temp files, unfinished uploads) removed.
    pub leftovers_removed: u64,
    /// Their size in bytes.
    pub leftover_bytes: u64,
    /// Wall time of the execution in milliseconds.
    pub elapsed_ms: u64,
}

/// Plans gc of a format-2 vault (see `store::collect`): reads every manifest, then the index.
pub async fn plan_packs(
    vault: &Vault,
    grace: Duration,
    parallel: usize,
    dry_run: bool,
) -> Result<crate::store::collect::PackPlan> {
    use crate::store::collect;
    // The store's own clock decides what is old enough; a dry run writes nothing, so it
    // estimates with the local one.
    let now = if dry_run {
        SystemTime::now()
    } else {
        collect::store_now(vault).await?
    };
    let mut marks = Marks::default();
    marks.update(vault, parallel).await?;
    // The index after the manifests: every version read had its packs indexed before it was
    // committed, so none of its chunks looks missing. A pack indexed since, whose version came
    // after the manifests were read, looks dead and is condemned, and the sweep a grace period
    // later sees that version and keeps it.
    let listing = vault.read_index_listing().await?;
    collect::plan(
        vault,
        listing,
        &marks.referenced,
        marks.seen.len() as u64,
        grace,
        now,
    )
    .await
}

/// Marks every referenced chunk and lists the unreferenced ones older than `grace`.
pub async fn plan(vault: &Vault, grace: Duration, parallel: usize) -> Result<GcPlan> {
    let mut marks = Marks::default();
    marks.update(vault, parallel).await?;
    let stored = vault.list_chunks().await?;
    let present: HashSet<ChunkId> = stored.iter().map(|(id, _)| *id).collect();
    let mut missing: Vec<ChunkId> = marks
        .referenced
        .iter()
        .filter(|id| !present.contains(id))
        .copied()
        .collect();
    drop(present);
    if !missing.is_empty() {
        missing.sort();
        let by = marks
            .needed_by(vault, &missing[..missing.len().min(5)], parallel)
            .await;
        let named: Vec<String> = missing
            .iter()
            .take(5)
            .map(|id| match by.get(id) {
                Some(by) => format!("{id} (needed by {by})"),
                None => id.to_string(),
            })
            .collect();
        return Err(Error::new(
            ErrorKind::IntegrityCheckFailed,
            format!(
                "gc refuses to run: {} referenced chunk(s) are missing: {}{}; nothing was deleted (run `ldv verify`)",
                missing.len(),
                named.join(", "),
                if missing.len() > 5 { ", ..." } else { "" }
            ),
        ));
    }
    let now = SystemTime::now();
    let (mut too_young_chunks, mut too_young_bytes) = (0, 0);
    let mut deletable = Vec::new();
    let mut bytes_total = 0;
    for (id, meta) in &stored {
        bytes_total += meta.size;
        if marks.referenced.contains(id) {
            continue;
        }
        // A chunk with no known age is treated as young: it is never deleted on a guess.
        let old_enough = meta
            .modified
            .is_some_and(|m| now.duration_since(m).unwrap_or_default() >= grace);
        if old_enough {
            deletable.push((*id, meta.size));
        } else {
            too_young_chunks += 1;
            too_young_bytes += meta.size;
        }
    }
    deletable.sort();
    Ok(GcPlan {
        manifests: marks.seen.len() as u64,
        chunks_total: stored.len() as u64,
        bytes_total,
        referenced_chunks: marks.referenced.len() as u64,
        unreferenced_chunks: deletable.len() as u64 + too_young_chunks,
        too_young_chunks,
        too_young_bytes,
        deletable_chunks: deletable.len() as u64,
        bytes_reclaimable: deletable.iter().map(|(_, s)| s).sum(),
        grace_secs: grace.as_secs(),
        deletable,
        marks,
    })
}

/// Deletes the planned chunks in batches, re-reading new manifests before each batch and
/// keeping any chunk they reference; then removes leftovers of interrupted writes older than the
/// grace period (and at least [`MIN_LEFTOVER_AGE`]).
pub async fn execute(
    vault: &Arc<Vault>,
    mut plan: GcPlan,
    parallel: usize,
    reporter: &Arc<dyn Reporter>,
) -> Result<GcReport> {
    let started = Instant::now();
    reporter.on_start(Some(plan.bytes_reclaimable), None);
    let deletable = std::mem::take(&mut plan.deletable);
    let (mut deleted_chunks, mut bytes_freed, mut kept_now_referenced) = (0, 0, 0);
    for batch in deletable.chunks(BATCH) {
        vault.check_lock()?;
        plan.marks.update(vault, parallel).await?;
        let doomed: Vec<(ChunkId, u64)> = batch
            .iter()
            .filter(|(id, _)| !plan.marks.referenced.contains(id))
            .copied()
            .collect();
        kept_now_referenced += (batch.len() - doomed.len()) as u64;
        let freed: Vec<u64> = futures::stream::iter(doomed)
            .map(|(id, size)| async move {
                match vault.backend().delete(&id.key()).await {
                    Ok(()) => Ok(size),
                    // Someone else removed it already.
                    Err(e) if e.kind() == ErrorKind::NotFound => Ok(0),
                    Err(e) => Err(e),
                }
            })
            .buffer_unordered(crate::ops::fanout(parallel))
            .inspect_ok(|size| reporter.on_bytes(*size))
            .try_collect()
            .await?;
        deleted_chunks += freed.iter().filter(|&&s| s > 0).count() as u64;
        bytes_freed += freed.iter().sum::<u64>();
    }
    let swept = vault
        .backend()
        .sweep(Duration::from_secs(plan.grace_secs).max(MIN_LEFTOVER_AGE))
        .await?;
    Ok(GcReport {
        deleted_chunks,
        bytes_freed,
        kept_now_referenced,
        leftovers_removed: swept.leftovers,
        leftover_bytes: swept.bytes,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}
