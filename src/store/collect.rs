//! Garbage collection of a format-2 vault, safe beside running writers and without locks, on
//! stores that ignore conditional writes. Two phases a grace period apart:
//!
//! - **Condemn.** From the chunks every manifest references, each pack is live, partly dead or
//!   dead. Dead packs, packs never indexed (older than the grace), and packs worth repacking
//!   (their live chunks copied into new packs first) are listed in a new mark `index/mark-…`.
//!   Writers that see the mark never deduplicate onto those packs.
//! - **Sweep.** A later run deletes what a mark condemned once the mark is older than the grace
//!   period by the store's clock. It first re-reads every manifest: a chunk that a version
//!   committed since the mark references, and that exists only in condemned packs, keeps its
//!   pack (rescued). It writes an index segment that supersedes every segment it read and
//!   leaves the swept packs out, then deletes the packs, the superseded segments the mark
//!   named, and the mark.
//!
//! Why no running put can lose a chunk: a put deduplicates only against packs no visible mark
//! condemns, and commits only within nine tenths of the grace period after loading its index
//! ([`super::Vault::commit`]). A put that deduplicated onto a pack condemned after it loaded
//! its index commits before that mark is old enough to sweep, so the sweep sees its manifest
//! and rescues the pack. Times of marks and packs are the store's (object modification
//! times), compared with the store's "now" (a probe object's time), never the local clock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use super::Vault;
use super::index::{self, LEGACY, Listing, Mark, SegmentId};
use super::layout::{self, ChunkId};
use super::pack::{self, PackEntry, PackId};
use crate::backend::{MIN_LEFTOVER_AGE, ObjectMeta, PutMode};
use crate::error::{Error, ErrorKind, Result};

/// A pack whose dead bytes are at least this share of it is repacked: copying its live bytes
/// then costs at most twice the bytes it frees.
pub const REPACK_DEAD_SHARE: f64 = 1.0 / 3.0;
/// Packs smaller than this share of the target are merged once there are [`SMALL_PACKS`].
const SMALL_SHARE: u64 = 8;
/// Small packs merged together at once.
const SMALL_PACKS: usize = 4;

/// What a format-2 gc would do (or did): the condemn phase's choices and the sweep's.
#[derive(Debug, Default, Serialize)]
pub struct PackPlan {
    /// Manifests read.
    pub manifests: u64,
    /// Chunks some manifest references.
    pub referenced_chunks: u64,
    /// Packs stored.
    pub packs_total: u64,
    /// Bytes stored in packs.
    pub pack_bytes: u64,
    /// Bytes of frames no manifest references (in packs not yet condemned), and the whole size
    /// of packs no index segment lists.
    pub dead_bytes: u64,
    /// Packs to condemn because nothing in them is referenced.
    pub dead_packs: u64,
    /// Packs to repack (live chunks copied out, then condemned).
    pub repack_packs: u64,
    /// Live bytes those repacks copy.
    pub repack_bytes: u64,
    /// Packs no index segment lists, older than the grace, to condemn.
    pub orphan_packs: u64,
    /// Format-1 chunk objects to copy into packs (a migrated vault).
    pub legacy_to_pack: u64,
    /// Format-1 chunk objects to condemn (unreferenced, older than the grace).
    pub legacy_dead: u64,
    /// Marks old enough to sweep now.
    pub marks_to_sweep: u64,
    /// Marks still within the grace period.
    pub marks_waiting: u64,
    /// Packs and chunk objects the sweep deletes now.
    pub sweep_objects: u64,
    /// Bytes the sweep frees now.
    pub sweep_bytes: u64,
    /// Condemned packs kept because a version committed since references them.
    pub rescued_packs: u64,
    /// Segments superseded by the one this gc writes.
    pub segments_superseded: u64,
    /// The grace period, in seconds.
    pub grace_secs: u64,
    #[serde(skip)]
    work: Work,
}

impl PackPlan {
    /// Whether executing the plan changes anything.
    pub fn is_empty(&self) -> bool {
        self.dead_packs
            + self.repack_packs
            + self.orphan_packs
            + self.legacy_to_pack
            + self.legacy_dead
            + self.marks_to_sweep
            == 0
    }
}

#[derive(Debug, Default)]
struct Work {
    condemn: Vec<PackId>,
    repack: Vec<(PackId, Vec<PackEntry>)>,
    legacy_to_pack: Vec<(ChunkId, u64)>,
    legacy_condemn: Vec<ChunkId>,
    sweep_packs: Vec<(PackId, u64)>,
    sweep_chunks: Vec<(ChunkId, u64)>,
    sweep_segments: Vec<SegmentId>,
    sweep_marks: Vec<String>,
    /// Every segment read: superseded by the one gc writes.
    read_segments: Vec<SegmentId>,
    /// Entries of packs that stay, for the segment gc writes.
    keep: Vec<(PackId, Vec<PackEntry>)>,
}

/// The store's clock: the modification time of a probe object written now. `None` when the
/// store reports no times (gc then condemns by mark age only from later runs' view).
pub async fn store_now(vault: &Vault) -> Result<SystemTime> {
    let key = format!(
        "{}clock-{}",
        index::INDEX_PREFIX,
        hex::encode(rand::random::<[u8; 8]>())
    );
    let backend = vault.backend();
    backend.put(&key, Bytes::new(), PutMode::Overwrite).await?;
    let meta = backend.head(&key).await;
    let _ = backend.delete(&key).await;
    Ok(meta?.modified.unwrap_or_else(SystemTime::now))
}

fn older_than(meta: &ObjectMeta, now: SystemTime, grace: Duration) -> bool {
    // An object with no known time is treated as young: nothing is condemned on a guess.
    meta.modified
        .is_some_and(|m| now.duration_since(m).unwrap_or_default() >= grace)
}

/// Plans a format-2 gc from `referenced`, every chunk the manifests reference, and `listing`
/// (the index, read after them); `now` is the store's time.
pub async fn plan(
    vault: &Vault,
    listing: Listing,
    referenced: &HashSet<ChunkId>,
    manifests: u64,
    grace: Duration,
    now: SystemTime,
) -> Result<PackPlan> {
    let config = vault
        .pack_config()
        .expect("format-2 gc runs on format-2 vaults");
    let stored: HashMap<PackId, ObjectMeta> = vault
        .backend()
        .list(pack::PACKS_PREFIX)
        .try_filter_map(|meta| {
            futures::future::ready(Ok(PackId::from_key(&meta.key).map(|id| (id, meta))))
        })
        .try_collect()
        .await?;
    let legacy: HashMap<ChunkId, ObjectMeta> = if config.legacy_chunks {
        vault
            .backend()
            .list(layout::CHUNKS_PREFIX)
            .try_filter_map(|meta| {
                futures::future::ready(Ok(ChunkId::from_key(&meta.key).map(|id| (id, meta))))
            })
            .try_collect()
            .await?
    } else {
        HashMap::new()
    };

    let mut p = PackPlan {
        manifests,
        referenced_chunks: referenced.len() as u64,
        packs_total: stored.len() as u64,
        pack_bytes: stored.values().map(|m| m.size).sum(),
        grace_secs: grace.as_secs(),
        ..PackPlan::default()
    };

    // Marks: old enough ones are swept now, the others only shield their packs.
    let mut condemned: HashSet<PackId> = HashSet::new();
    let mut condemned_chunks: HashSet<ChunkId> = HashSet::new();
    let mut sweeping: HashSet<PackId> = HashSet::new();
    let mut sweeping_chunks: HashSet<ChunkId> = HashSet::new();
    for (version, meta, mark) in &listing.marks {
        condemned.extend(mark.packs.iter().copied());
        condemned_chunks.extend(mark.chunks.iter().copied());
        if older_than(meta, now, grace) {
            p.marks_to_sweep += 1;
            p.work.sweep_marks.push(version.clone());
            sweeping.extend(mark.packs.iter().copied());
            sweeping_chunks.extend(mark.chunks.iter().copied());
            p.work.sweep_segments.extend(mark.segments.iter().copied());
        } else {
            p.marks_waiting += 1;
        }
    }

    // Every indexed copy of every chunk, by pack.
    let mut by_pack: BTreeMap<PackId, Vec<PackEntry>> = BTreeMap::new();
    for (_, _, segment) in &listing.live {
        for (pack, entries) in &segment.packs {
            by_pack
                .entry(*pack)
                .or_default()
                .extend(entries.iter().copied());
        }
    }
    for entries in by_pack.values_mut() {
        entries.sort_by_key(|e| (e.offset, e.id));
        entries.dedup();
    }
    let legacy_indexed: Vec<PackEntry> = by_pack.remove(&LEGACY).unwrap_or_default();
    // Packs listed but missing from the store are damage: gc deletes nothing then.
    let missing: Vec<&PackId> = by_pack
        .keys()
        .filter(|p| !stored.contains_key(p) && !condemned.contains(p))
        .collect();
    if !missing.is_empty() {
        return Err(Error::new(
            ErrorKind::IntegrityCheckFailed,
            format!(
                "gc refuses to run: {} indexed pack(s) are missing, e.g. {}; nothing was deleted (run `ldv verify`)",
                missing.len(),
                missing[0]
            ),
        ));
    }

    // Rescue: a referenced chunk whose every copy is being swept keeps its copies.
    let mut holders: HashMap<ChunkId, Vec<PackId>> = HashMap::new();
    for (pack, entries) in &by_pack {
        if !stored.contains_key(pack) {
            continue;
        }
        for e in entries {
            if referenced.contains(&e.id) {
                holders.entry(e.id).or_default().push(*pack);
            }
        }
    }
    let lost: Vec<&ChunkId> = referenced
        .iter()
        .filter(|id| !holders.contains_key(id) && !legacy.contains_key(id))
        .collect();
    if !lost.is_empty() {
        return Err(Error::new(
            ErrorKind::IntegrityCheckFailed,
            format!(
                "gc refuses to run: {} referenced chunk(s) are missing, e.g. {}; nothing was deleted (run `ldv verify`)",
                lost.len(),
                lost[0]
            ),
        ));
    }
    for id in referenced {
        let in_packs = holders.get(id).map(Vec::as_slice).unwrap_or_default();
        let survives = in_packs.iter().any(|p| !sweeping.contains(p))
            || (legacy.contains_key(id) && !sweeping_chunks.contains(id));
        if survives {
            continue;
        }
        for pack in in_packs {
            if sweeping.remove(pack) {
                p.rescued_packs += 1;
            }
        }
        if sweeping_chunks.remove(id) {
            p.rescued_packs += 1;
        }
    }
    for pack in &sweeping {
        if let Some(meta) = stored.get(pack) {
            p.work.sweep_packs.push((*pack, meta.size));
        }
    }
    for id in &sweeping_chunks {
        if let Some(meta) = legacy.get(id) {
            p.work.sweep_chunks.push((*id, meta.size));
        }
    }
    p.sweep_objects = (p.work.sweep_packs.len() + p.work.sweep_chunks.len()) as u64;
    p.sweep_bytes = p.work.sweep_packs.iter().map(|(_, s)| s).sum::<u64>()
        + p.work.sweep_chunks.iter().map(|(_, s)| s).sum::<u64>();

    // Condemn: each live copy has one home (the first uncondemned pack holding it); the other
    // copies are dead weight.
    let mut home: HashMap<ChunkId, PackId> = HashMap::new();
    for (pack, entries) in &by_pack {
        if condemned.contains(pack) || !stored.contains_key(pack) {
            continue;
        }
        for e in entries {
            if referenced.contains(&e.id) {
                home.entry(e.id).or_insert(*pack);
            }
        }
    }
    let small_limit = config.target / SMALL_SHARE;
    let mut small = Vec::new();
    for (pack, entries) in &by_pack {
        let Some(meta) = stored.get(pack) else {
            continue;
        };
        if !sweeping.contains(pack) {
            p.work.keep.push((*pack, entries.clone()));
        }
        if condemned.contains(pack) {
            continue;
        }
        let live: Vec<PackEntry> = entries
            .iter()
            .filter(|e| home.get(&e.id) == Some(pack))
            .copied()
            .collect();
        // Frames only: a pack's header and trailer are neither live nor dead data.
        let frame_bytes: u64 = entries.iter().map(|e| u64::from(e.len)).sum();
        let live_bytes: u64 = live.iter().map(|e| u64::from(e.len)).sum();
        let dead_bytes = frame_bytes.saturating_sub(live_bytes);
        if live.is_empty() {
            p.dead_packs += 1;
            p.dead_bytes += dead_bytes;
            p.work.condemn.push(*pack);
        } else if dead_bytes as f64 >= REPACK_DEAD_SHARE * frame_bytes as f64 {
            p.dead_bytes += dead_bytes;
            p.repack_packs += 1;
            p.repack_bytes += live_bytes;
            p.work.repack.push((*pack, live));
        } else if meta.size < small_limit {
            p.dead_bytes += dead_bytes;
            small.push((*pack, live));
        } else {
            p.dead_bytes += dead_bytes;
        }
    }
    if small.len() >= SMALL_PACKS {
        for (pack, live) in small {
            p.repack_packs += 1;
            p.repack_bytes += live.iter().map(|e| u64::from(e.len)).sum::<u64>();
            p.work.repack.push((pack, live));
        }
    }
    // Packs no segment lists: leftovers of puts that stopped before indexing, once older than
    // the grace (a running put indexes its packs well within it).
    for (pack, meta) in &stored {
        if !by_pack.contains_key(pack) && !condemned.contains(pack) && older_than(meta, now, grace)
        {
            p.orphan_packs += 1;
            p.dead_bytes += meta.size;
            p.work.condemn.push(*pack);
        }
    }
    // Format-1 chunk objects of a migrated vault: referenced ones move into packs.
    drop(legacy_indexed);
    for (id, meta) in &legacy {
        if condemned_chunks.contains(id) {
            continue;
        }
        if referenced.contains(id) && !home.contains_key(id) {
            p.work.legacy_to_pack.push((*id, meta.size));
        } else if older_than(meta, now, grace) || referenced.contains(id) {
            p.work.legacy_condemn.push(*id);
        }
    }
    p.legacy_to_pack = p.work.legacy_to_pack.len() as u64;
    p.legacy_dead = p.work.legacy_condemn.len() as u64;
    if !legacy.is_empty() {
        let kept: Vec<PackEntry> = legacy
            .iter()
            .filter(|(id, _)| !sweeping_chunks.contains(id))
            .map(|(id, meta)| PackEntry {
                id: *id,
                offset: 0,
                len: u32::try_from(meta.size).unwrap_or(u32::MAX),
            })
            .collect();
        p.work.keep.push((LEGACY, kept));
    }
    p.work.read_segments = listing.live.iter().map(|(id, _, _)| *id).collect();
    p.work
        .read_segments
        .extend(listing.superseded.iter().map(|(id, _)| *id));
    p.segments_superseded = p.work.read_segments.len() as u64;
    Ok(p)
}

/// What executing a format-2 plan did.
#[derive(Debug, Default, Serialize)]
pub struct PackReport {
    /// Packs and chunk objects deleted by the sweep.
    pub deleted_objects: u64,
    /// Bytes they held.
    pub bytes_freed: u64,
    /// Packs written by repacking.
    pub packs_written: u64,
    /// Live bytes copied into them.
    pub bytes_repacked: u64,
    /// Packs and chunk objects condemned by the new mark (deleted by a gc after the grace).
    pub condemned: u64,
    /// Leftovers of interrupted writes (temp files, unfinished uploads) removed.
    pub leftovers_removed: u64,
    /// Their size in bytes.
    pub leftover_bytes: u64,
}

/// Executes a plan: repack, write the superseding segment and the new mark, then sweep.
pub async fn execute(vault: &Vault, plan: PackPlan) -> Result<PackReport> {
    let grace = Duration::from_secs(plan.grace_secs);
    let mut work = plan.work;
    let mut report = PackReport::default();
    // 1. Copy live chunks out of packs being repacked and out of format-1 chunk objects. Every
    //    frame is checked against its id first: gc never spreads damage.
    for (pack, live) in &work.repack {
        let whole = vault
            .backend()
            .get_range(&pack.key(), 0..pack::MAX_PACK + 1)
            .await?;
        for e in live {
            let (start, end) = (e.offset as usize, e.offset as usize + e.len as usize);
            if end > whole.len() {
                return Err(Error::integrity(
                    format!("pack {pack}"),
                    format!("is shorter than its index says ({} bytes)", whole.len()),
                ));
            }
            let frame = whole.slice(start..end);
            vault.check_stored_frame(e.id, frame.clone()).await?;
            vault.put_frame(e.id, frame).await?;
            report.bytes_repacked += u64::from(e.len);
        }
        work.condemn.push(*pack);
    }
    for (id, size) in &work.legacy_to_pack {
        let frame = vault.backend().get_range(&id.key(), 0..size + 1).await?;
        vault.check_stored_frame(*id, frame.clone()).await?;
        vault.put_frame(*id, frame).await?;
        report.bytes_repacked += size;
        work.legacy_condemn.push(*id);
    }
    let written = vault.flush_packs().await?;
    report.packs_written = written.len() as u64;

    // 2. One segment for everything that stays (and the new packs), superseding every segment
    //    read, when a sweep removes packs from the index or segments have piled up.
    let sweeping = !work.sweep_packs.is_empty() || !work.sweep_chunks.is_empty();
    let mut superseded = Vec::new();
    if sweeping || !written.is_empty() || work.read_segments.len() > 16 {
        let mut packs = std::mem::take(&mut work.keep);
        packs.extend(written);
        let parts = vault
            .write_segments(packs, work.read_segments.clone())
            .await?;
        let ours: HashSet<SegmentId> = parts.iter().map(|(id, _)| *id).collect();
        superseded = std::mem::take(&mut work.read_segments);
        superseded.retain(|s| !ours.contains(s));
    }

    // 3. The new mark: what this run condemned, and the segments it superseded.
    let condemned = work.condemn.len() + work.legacy_condemn.len();
    if condemned > 0 || !superseded.is_empty() {
        let now = crate::time::now_millis();
        let mark = Mark {
            created_at: now,
            packs: work.condemn.iter().map(ToString::to_string).collect(),
            chunks: work.legacy_condemn.iter().map(ChunkId::to_hex).collect(),
            segments: superseded.iter().map(ToString::to_string).collect(),
        };
        let key = format!("{}{}", index::MARK_PREFIX, layout::new_version(now));
        let body = serde_json::to_vec(&mark).expect("a mark always serializes");
        vault
            .backend()
            .put(&key, Bytes::from(body), PutMode::CreateOnly)
            .await?;
        report.condemned = condemned as u64;
    }

    // 4. Sweep: packs and chunk objects of old marks, their superseded segments, the marks.
    let deletes = work
        .sweep_packs
        .iter()
        .map(|(p, s)| (p.key(), *s))
        .chain(work.sweep_chunks.iter().map(|(c, s)| (c.key(), *s)))
        .chain(
            work.sweep_segments
                .iter()
                .map(|s| (index::segment_key(s), 0)),
        );
    let freed: Vec<(bool, u64)> = futures::stream::iter(deletes)
        .map(|(key, size)| async move {
            match vault.backend().delete(&key).await {
                Ok(()) => Ok((size > 0, size)),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok((false, 0)),
                Err(e) => Err(e),
            }
        })
        .buffer_unordered(16)
        .try_collect()
        .await?;
    report.deleted_objects = freed.iter().filter(|(counted, _)| *counted).count() as u64;
    report.bytes_freed = freed.iter().map(|(_, s)| s).sum();
    for version in &work.sweep_marks {
        match vault
            .backend()
            .delete(&format!("{}{version}", index::MARK_PREFIX))
            .await
        {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    // 5. Temp files and unfinished uploads of killed writers, once older than the grace.
    let swept = vault.backend().sweep(grace.max(MIN_LEFTOVER_AGE)).await?;
    report.leftovers_removed = swept.leftovers;
    report.leftover_bytes = swept.bytes;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::memory::MemoryBackend;
    use crate::backend::{BackendExt, DynBackend};
    use crate::store::chunker::ChunkerConfig;
    use crate::store::codec::PlainChunk;
    use crate::store::manifest::{ChunkRef, MANIFEST_FORMAT, Manifest};
    use crate::store::{PackConfig, VaultOptions};

    async fn vault(backend: &DynBackend) -> Vault {
        let options = VaultOptions {
            packs: PackConfig {
                target: 1 << 20,
                ..PackConfig::default()
            },
            ..VaultOptions::default()
        };
        Vault::init_with(Arc::clone(backend), ChunkerConfig::default(), &options)
            .await
            .unwrap()
            .0
    }

    fn data(seed: u8) -> Vec<u8> {
        (0..300_000u32)
            .map(|i| (i.wrapping_mul(31) as u8) ^ seed)
            .collect()
    }

    /// Stores `content` as one chunk under `name` and commits it.
    async fn put(vault: &Vault, name: &str, content: &[u8]) -> Manifest {
        let id = ChunkId::of(content);
        let write = vault
            .put_chunk(id, &PlainChunk::copy_from(content))
            .await
            .unwrap();
        let now = crate::time::now_millis();
        let m = Manifest {
            format: MANIFEST_FORMAT,
            name: name.into(),
            version: layout::new_version(now),
            size: content.len() as u64,
            sha256: id.to_hex(),
            chunker: ChunkerConfig::default(),
            created_at: now,
            content_type: None,
            metadata: Default::default(),
            tree: None,
            chunks: vec![ChunkRef {
                offset: 0,
                size: content.len() as u64,
                id,
                stored: Some(write.stored()),
            }],
        };
        vault.commit(&m).await.unwrap();
        m
    }

    async fn gc(vault: &Vault, grace: Duration) -> PackReport {
        let p = plan_now(vault, grace).await;
        execute(vault, p).await.unwrap()
    }

    async fn readable(backend: &DynBackend, m: &Manifest) -> bool {
        let fresh = Vault::open(Arc::clone(backend)).await.unwrap();
        fresh.get_chunk(m.chunks[0].id, m.size).await.is_ok()
    }

    #[tokio::test]
    async fn a_pack_a_late_put_reuses_is_rescued_not_swept() {
        let backend: DynBackend = Arc::new(MemoryBackend::new());
        let first = vault(&backend).await;
        let old = put(&first, "old", &data(1)).await;
        first.remove_version("old", &old.version).await.unwrap();
        // A writer loads the index while the pack is live...
        let writer = vault(&backend).await;
        assert!(writer.holds_chunk(old.chunks[0].id).await.unwrap());
        // ...gc condemns the pack (nothing references it)...
        let report = gc(&first, Duration::ZERO).await;
        assert_eq!(report.condemned, 1);
        // ...the writer deduplicates onto it and commits (it never saw the mark)...
        let late = put(&writer, "late", &data(1)).await;
        assert_eq!(writer.stats().chunks_uploaded, 0);
        // ...and the sweep keeps the pack the late version needs.
        let report = gc(&first, Duration::ZERO).await;
        assert_eq!(report.deleted_objects, 0, "{report:?}");
        assert!(readable(&backend, &late).await);
        // Removed again, it goes: condemned, then swept.
        first.remove_version("late", &late.version).await.unwrap();
        gc(&first, Duration::ZERO).await;
        let report = gc(&first, Duration::ZERO).await;
        assert_eq!(report.deleted_objects, 1, "{report:?}");
        assert!(
            backend
                .list_all(pack::PACKS_PREFIX)
                .await
                .unwrap()
                .is_empty()
        );
    }

    #[tokio::test]
    async fn a_writer_that_sees_a_mark_stores_the_chunk_again() {
        let backend: DynBackend = Arc::new(MemoryBackend::new());
        let first = vault(&backend).await;
        let old = put(&first, "old", &data(2)).await;
        first.remove_version("old", &old.version).await.unwrap();
        gc(&first, Duration::ZERO).await;
        // Loaded after the mark: the condemned copy is not reused.
        let writer = vault(&backend).await;
        assert!(!writer.holds_chunk(old.chunks[0].id).await.unwrap());
        let again = put(&writer, "again", &data(2)).await;
        assert_eq!(writer.stats().chunks_uploaded, 1);
        let report = gc(&first, Duration::ZERO).await;
        assert_eq!(report.deleted_objects, 1, "the condemned pack goes");
        assert!(readable(&backend, &again).await);
    }

    #[tokio::test]
    async fn marks_wait_for_the_grace_and_partly_dead_packs_are_repacked() {
        let backend: DynBackend = Arc::new(MemoryBackend::new());
        let v = vault(&backend).await;
        // Two versions in one pack: one removed leaves the pack half dead.
        let a = data(3);
        let b = data(4);
        let ida = ChunkId::of(&a);
        let idb = ChunkId::of(&b);
        v.put_chunk(ida, &PlainChunk::copy_from(&a)).await.unwrap();
        let kept = put(&v, "b", &b).await;
        let gone = put(&v, "a", &a).await;
        assert_eq!(backend.list_all(pack::PACKS_PREFIX).await.unwrap().len(), 1);
        v.remove_version("a", &gone.version).await.unwrap();
        let report = gc(&v, Duration::from_secs(3600)).await;
        assert!(report.bytes_repacked > 0, "{report:?}");
        assert_eq!(report.packs_written, 1);
        // Within the grace nothing is deleted.
        let report = gc(&v, Duration::from_secs(3600)).await;
        assert_eq!(report.deleted_objects, 0);
        assert_eq!(backend.list_all(pack::PACKS_PREFIX).await.unwrap().len(), 2);
        // Past it, the old pack goes and the kept version reads from its new pack.
        gc(&v, Duration::ZERO).await;
        assert_eq!(backend.list_all(pack::PACKS_PREFIX).await.unwrap().len(), 1);
        assert!(readable(&backend, &kept).await);
        let fresh = Vault::open(Arc::clone(&backend)).await.unwrap();
        assert!(!fresh.holds_chunk(ida).await.unwrap());
        assert!(fresh.holds_chunk(idb).await.unwrap());
    }

    async fn plan_now(vault: &Vault, grace: Duration) -> PackPlan {
        let listing = vault.read_index_listing().await.unwrap();
        let mut referenced = HashSet::new();
        for (name, version) in vault.list_versions("").await.unwrap() {
            let (_, ids) = vault
                .read_manifest(&name, &version, HashSet::new())
                .await
                .unwrap();
            referenced.extend(ids);
        }
        let now = store_now(vault).await.unwrap();
        plan(vault, listing, &referenced, 0, grace, now)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn dead_bytes_count_unreferenced_frames_not_pack_trailers() {
        let backend: DynBackend = Arc::new(MemoryBackend::new());
        let v = vault(&backend).await;
        // Chunk a waits in the open pack while b's put commits both: one pack.
        let a = data(7);
        v.put_chunk(ChunkId::of(&a), &PlainChunk::copy_from(&a))
            .await
            .unwrap();
        let kept = put(&v, "b", &data(6)).await;
        let gone = put(&v, "a", &a).await;
        let packs = backend.list_all(pack::PACKS_PREFIX).await.unwrap();
        assert_eq!(packs.len(), 1);
        let frames = kept.chunks[0].stored.unwrap() + gone.chunks[0].stored.unwrap();
        assert!(packs[0].size > frames, "a pack holds more than its frames");
        // Everything referenced: nothing dead, whatever the pack's own header and trailer.
        assert_eq!(plan_now(&v, Duration::ZERO).await.dead_bytes, 0);
        // One version removed: exactly its frame is dead.
        v.remove_version("a", &gone.version).await.unwrap();
        let p = plan_now(&v, Duration::ZERO).await;
        assert_eq!(p.dead_bytes, gone.chunks[0].stored.unwrap(), "{p:?}");
        assert_eq!(p.repack_packs, 1, "half the pack is dead: {p:?}");
    }

    #[tokio::test]
    async fn a_put_past_the_grace_commits_nothing() {
        let backend: DynBackend = Arc::new(MemoryBackend::new());
        let options = VaultOptions {
            packs: PackConfig {
                grace_secs: 1,
                ..PackConfig::default()
            },
            ..VaultOptions::default()
        };
        let v = Vault::init_with(Arc::clone(&backend), ChunkerConfig::default(), &options)
            .await
            .unwrap()
            .0;
        let content = data(5);
        let id = ChunkId::of(&content);
        v.put_chunk(id, &PlainChunk::copy_from(&content))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        let err = v.flush().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
        assert!(
            backend
                .list_all(index::INDEX_PREFIX)
                .await
                .unwrap()
                .is_empty()
        );
    }
}
