//! `verify`: audit a vault in stages — manifests parse, every referenced chunk exists with the
//! right size, and (with `--read-data`) every chunk, or a deterministic slice or a random sample
//! of them, reads back and matches its id. A full `--read-data` also checks every version's whole
//! content against its manifest's SHA-256, as `get` does, so a version verify passes is one get
//! can restore. Every problem is collected, not just the first; each names the chunk and the
//! versions that need it. A chunk that fails and then reads back clean on a retry is a transient
//! error, not damage; one that cannot be read at all is "could not check", never damage.
//! Memory follows the vault's distinct chunks, not its manifests: each manifest is read on its
//! own and only its distinct chunks are kept (see [`Vault::read_manifest`]).

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::Serialize;

use crate::backend::BackendExt;
use crate::error::{Error, ErrorKind, Result};
use crate::report::Reporter;
use crate::store::Vault;
use crate::store::codec;
use crate::store::layout::{ChunkId, ObjectRef};
use crate::store::manifest::{ChunkRef, ChunkSink, Manifest, ManifestHead};

/// Reads a chunk up to this many times before judging it.
const ATTEMPTS: u32 = 3;

/// Which chunks `--read-data` downloads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReadData {
    /// None: only existence and sizes are checked.
    None,
    /// Every referenced chunk.
    All,
    /// Slice `n` of `t`: slices 1..=t together cover every chunk exactly once.
    Slice {
        /// Which slice, 1-based.
        n: u32,
        /// How many slices.
        t: u32,
    },
    /// A random sample of about this percentage of chunks.
    Percent(f64),
}

impl FromStr for ReadData {
    type Err = Error;

    /// Parses a `--read-data-subset` value: `n/t` or `x%`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::config(format!(
                "invalid subset {s:?}: expected n/t (1 <= n <= t) or x% (0 < x <= 100)"
            ))
        };
        if let Some(p) = s.strip_suffix('%') {
            let x: f64 = p.trim().parse().map_err(|_| bad())?;
            return if x > 0.0 && x <= 100.0 {
                Ok(Self::Percent(x))
            } else {
                Err(bad())
            };
        }
        let (n, t) = s.split_once('/').ok_or_else(bad)?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        let t: u32 = t.trim().parse().map_err(|_| bad())?;
        if n == 0 || t == 0 || n > t {
            return Err(bad());
        }
        Ok(Self::Slice { n, t })
    }
}

impl fmt::Display for ReadData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::All => f.write_str("all"),
            Self::Slice { n, t } => write!(f, "{n}/{t}"),
            Self::Percent(x) => write!(f, "{x}%"),
        }
    }
}

impl ReadData {
    /// Whether chunk `id` is read under this setting.
    fn selects(&self, id: &ChunkId) -> bool {
        match *self {
            Self::None => false,
            Self::All => true,
            Self::Slice { n, t } => {
                let key = u64::from_be_bytes(id.0[..8].try_into().expect("an id has 32 bytes"));
                key % u64::from(t) == u64::from(n - 1)
            }
            Self::Percent(x) => rand::random::<f64>() * 100.0 < x,
        }
    }
}

/// The kinds of damage verify reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A manifest that cannot be parsed or is inconsistent.
    UnreadableManifest,
    /// A referenced chunk that is not in the vault.
    MissingChunk,
    /// A chunk whose stored size is not what its manifest implies (truncated or padded).
    WrongSize,
    /// A chunk whose content does not match its id, or whose frame is damaged.
    CorruptChunk,
    /// A version whose chunks are sound but whose content does not match the manifest's SHA-256.
    WrongContent,
}

impl ProblemKind {
    /// The kind's name, as in `--json` output.
    pub fn label(self) -> &'static str {
        match self {
            Self::UnreadableManifest => "unreadable_manifest",
            Self::MissingChunk => "missing_chunk",
            Self::WrongSize => "wrong_size",
            Self::CorruptChunk => "corrupt_chunk",
            Self::WrongContent => "wrong_content",
        }
    }
}

/// One problem found.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// What is wrong.
    pub kind: ProblemKind,
    /// The damaged chunk, if the problem is a chunk.
    pub chunk: Option<String>,
    /// The versions (`name@version`) affected.
    pub versions: Vec<String>,
    /// Details.
    pub detail: String,
}

/// The result of a verify run.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Names checked.
    pub names: u64,
    /// Versions checked.
    pub versions: u64,
    /// Distinct chunks the versions reference.
    pub chunks_referenced: u64,
    /// Referenced chunks found with the right size.
    pub chunks_present: u64,
    /// Which chunks were read (`none`, `all`, `n/t`, `x%`).
    pub read_data: String,
    /// Chunks downloaded and re-hashed.
    pub chunks_read: u64,
    /// Content bytes read.
    pub bytes_read: u64,
    /// Versions whose whole content was checked against their SHA-256 (full `--read-data`).
    pub versions_hashed: u64,
    /// Chunks no version references (only when the whole vault is checked).
    pub orphan_chunks: Option<u64>,
    /// Stored bytes of those chunks.
    pub orphan_bytes: Option<u64>,
    /// Every problem found.
    pub problems: Vec<Problem>,
    /// Problem counts by kind.
    pub problems_by_kind: BTreeMap<&'static str, u64>,
    /// What could not be checked because of backend errors.
    pub could_not_check: Vec<String>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
    /// Chunks read per second.
    pub chunks_per_sec: f64,
}

impl VerifyReport {
    /// Whether damage was found.
    pub fn damaged(&self) -> bool {
        !self.problems.is_empty()
    }

    /// Whether some checks could not be made.
    pub fn incomplete(&self) -> bool {
        !self.could_not_check.is_empty()
    }
}

/// What reading one chunk concluded.
enum Outcome {
    Clean,
    Damaged(String),
    Unchecked(String),
}

/// Reads a chunk up to [`ATTEMPTS`] times: clean if any read checks out, damaged only if every
/// read found damage, otherwise unchecked.
async fn read_chunk(vault: &Vault, id: ChunkId, size: u64) -> Outcome {
    let mut damage = None;
    let mut other = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
        match vault.get_chunk(id, size).await {
            Ok(_) => return Outcome::Clean,
            Err(e) if e.kind() == ErrorKind::IntegrityCheckFailed => damage = Some(e),
            Err(e) => other = Some(e),
        }
    }
    match (damage, other) {
        (Some(e), None) => Outcome::Damaged(e.to_string()),
        (_, Some(e)) => Outcome::Unchecked(format!("chunk {id}: {e}")),
        (None, None) => unreachable!("at least one attempt was made"),
    }
}

/// Whether a version's whole-content digest follows from its manifest and sound chunks alone:
/// empty content, or in a plain vault a single chunk, whose id is the SHA-256 of the content.
fn content_digest_is_known(chunks: u64, plain_ids: bool) -> bool {
    chunks == 0 || (plain_ids && chunks == 1)
}

/// For a version [`content_digest_is_known`] holds for (`first` is its chunk, if it has one):
/// whether its digest is the right one.
fn known_digest_matches(first: Option<ChunkId>, sha256: &str) -> bool {
    match first {
        Some(id) => id.to_hex() == sha256,
        None => hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"")) == sha256,
    }
}

fn wrong_content(label: String, sha256: &str) -> Problem {
    Problem {
        kind: ProblemKind::WrongContent,
        chunk: None,
        versions: vec![label],
        detail: format!("the content does not hash to the manifest's SHA-256 {sha256}"),
    }
}

/// A full read keeps the chunk list of a version it will stream, to save reading its manifest
/// twice, while the list has at most this many chunks...
const KEEP_CHUNKS: usize = 4096;
/// ...and while the lists kept hold at most about this many bytes between them; the others are
/// read again when their turn comes, so memory does not grow with the vault.
const KEEP_BYTES: usize = 32 * 1024 * 1024;

/// What verify keeps of one manifest while reading it: each chunk it references once, with the
/// stored size it recorded (and any other stored size it recorded for the same chunk), its
/// first chunk, and its chunk list while that is short and wanted.
struct Uses {
    distinct: HashMap<ChunkId, (u64, u64)>,
    more_stored: BTreeSet<(ChunkId, u64)>,
    first: Option<ChunkId>,
    kept: Option<Vec<ChunkRef>>,
}

impl Uses {
    fn new(keep: bool) -> Self {
        Self {
            distinct: HashMap::new(),
            more_stored: BTreeSet::new(),
            first: None,
            kept: keep.then(Vec::new),
        }
    }
}

impl ChunkSink for Uses {
    fn chunk(&mut self, c: ChunkRef) {
        // Manifests written before stored sizes were recorded hold plain frames.
        let stored = c.stored.unwrap_or_else(|| codec::framed_len(c.size));
        self.first.get_or_insert(c.id);
        match self.distinct.entry(c.id) {
            Entry::Vacant(v) => {
                v.insert((c.size, stored));
            }
            Entry::Occupied(o) => {
                if o.get().1 != stored {
                    self.more_stored.insert((c.id, stored));
                }
            }
        }
        if let Some(kept) = &mut self.kept {
            if kept.len() < KEEP_CHUNKS {
                kept.push(c);
            } else {
                self.kept = None;
            }
        }
    }
}

/// The chunks of `wanted` a manifest references (for naming the versions a damaged chunk affects).
struct Hits {
    wanted: Arc<HashSet<ChunkId>>,
    found: BTreeSet<ChunkId>,
}

impl ChunkSink for Hits {
    fn chunk(&mut self, c: ChunkRef) {
        if self.wanted.contains(&c.id) {
            self.found.insert(c.id);
        }
    }
}

/// A chunk some checked version references: its size, one stored size a version recorded, and
/// whether a full read streams a version that holds it.
struct Ref {
    size: u64,
    stored: u64,
    streamed: bool,
}

/// A version a full read streams: its manifest, kept from stage 1 or read again.
enum Streamed {
    Kept(Box<Manifest>),
    Reread(usize),
}

/// Sorts a failed manifest read into damage, "could not check", or nothing (removed since it
/// was listed: nothing left to check).
fn manifest_failed(
    label: String,
    e: Error,
    problems: &mut Vec<Problem>,
    could_not_check: &mut Vec<String>,
) {
    match e.kind() {
        ErrorKind::NotFound => {}
        ErrorKind::IntegrityCheckFailed
        | ErrorKind::SerializationError
        | ErrorKind::ConfigurationError => problems.push(Problem {
            kind: ProblemKind::UnreadableManifest,
            chunk: None,
            versions: vec![label],
            detail: e.to_string(),
        }),
        _ => could_not_check.push(format!("manifest {label}: {e}")),
    }
}

/// What reading a chunk found, as far as whole-content checks are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Sound,
    Damaged,
    Unknown,
}

/// Judges the chunks of streamed versions, each chunk once per run, recording what it finds.
struct Judge<'a> {
    vault: &'a Arc<Vault>,
    verdicts: HashMap<ChunkId, Verdict>,
    problems: &'a mut Vec<Problem>,
    could_not_check: &'a mut Vec<String>,
    chunks_read: &'a mut u64,
    bytes_read: &'a mut u64,
}

impl Judge<'_> {
    /// Records a version whose content checked out: its chunks are sound.
    fn passed(&mut self, m: &Manifest) {
        for c in &m.chunks {
            if self.verdicts.insert(c.id, Verdict::Sound).is_none() {
                *self.chunks_read += 1;
            }
        }
        *self.bytes_read += m.size;
    }

    /// Reads every chunk of `m` not judged yet; the worst verdict of them all.
    async fn chunks(&mut self, m: &Manifest) -> Verdict {
        let mut worst = Verdict::Sound;
        for c in &m.chunks {
            let verdict = match self.verdicts.get(&c.id) {
                Some(&v) => v,
                None => {
                    let verdict = match read_chunk(self.vault, c.id, c.size).await {
                        Outcome::Clean => Verdict::Sound,
                        Outcome::Damaged(detail) => {
                            self.problems.push(Problem {
                                kind: ProblemKind::CorruptChunk,
                                chunk: Some(c.id.to_hex()),
                                // Named once every problem is known, by one more pass.
                                versions: Vec::new(),
                                detail,
                            });
                            Verdict::Damaged
                        }
                        Outcome::Unchecked(why) => {
                            self.could_not_check.push(why);
                            Verdict::Unknown
                        }
                    };
                    if verdict != Verdict::Unknown {
                        *self.chunks_read += 1;
                        *self.bytes_read += c.size;
                    }
                    self.verdicts.insert(c.id, verdict);
                    verdict
                }
            };
            worst = match (worst, verdict) {
                (Verdict::Damaged, _) | (_, Verdict::Damaged) => Verdict::Damaged,
                (Verdict::Unknown, _) | (_, Verdict::Unknown) => Verdict::Unknown,
                _ => Verdict::Sound,
            };
        }
        worst
    }
}

/// Which versions to check: every version of every name, or those `refs` name.
async fn select(vault: &Vault, refs: &[ObjectRef]) -> Result<Vec<(String, String)>> {
    if refs.is_empty() {
        return vault.list_versions("").await;
    }
    let mut out = Vec::new();
    for r in refs {
        match &r.version {
            Some(v) => {
                let key = crate::store::layout::manifest_key(&r.name, v);
                if !vault.backend().exists(&key).await? {
                    return Err(Error::not_found(r));
                }
                out.push((r.name.clone(), v.clone()));
            }
            None => {
                let versions = vault.versions(&r.name).await?;
                if versions.is_empty() {
                    return Err(Error::not_found(&r.name));
                }
                out.extend(versions.into_iter().map(|v| (r.name.clone(), v)));
            }
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Verifies the versions `refs` name (every version when empty), reading chunks per `read`.
pub async fn verify(
    vault: &Arc<Vault>,
    refs: &[ObjectRef],
    read: ReadData,
    parallel: usize,
    reporter: &Arc<dyn Reporter>,
) -> Result<VerifyReport> {
    let started = Instant::now();
    let whole_vault = refs.is_empty();
    let selected = select(vault, refs).await?;
    let mut problems = Vec::new();
    let mut could_not_check = Vec::new();
    let plain_ids = vault.codec().cipher().is_none();

    // Stage 1: manifests parse. Each is read on its own and only what later stages need is kept
    // (`referenced`: each chunk once, with its size and recorded stored sizes), never every
    // manifest or chunk list at once. A full read checks whole contents: versions whose digest
    // follows from the manifest are checked here; the others are streamed in stage 4, which
    // checks their chunks on the way, so stage 3 does not read those too.
    let mut referenced: HashMap<ChunkId, Ref> = HashMap::new();
    // Stored sizes recorded for a chunk beyond the one in `referenced` (rare: racing writers).
    let mut more_stored: HashMap<ChunkId, BTreeSet<u64>> = HashMap::new();
    let mut streamed = Vec::new();
    let mut trees = Vec::new();
    let (mut kept_bytes, mut streamed_bytes) = (0usize, 0u64);
    let (mut versions, mut names, mut versions_hashed) = (0u64, 0u64, 0u64);
    let mut last_name: Option<&str> = None;
    let keep = read == ReadData::All;
    let mut manifests = futures::stream::iter(selected.iter().enumerate())
        .map(|(i, (name, version))| async move {
            (
                i,
                vault
                    .read_manifest_deep(name, version, Uses::new(keep))
                    .await,
            )
        })
        .buffered(crate::ops::fanout(parallel));
    while let Some((i, read_back)) = manifests.next().await {
        let (name, version) = &selected[i];
        let label = || format!("{name}@{version}");
        let (head, uses): (ManifestHead, Uses) = match read_back {
            Ok(read_back) => read_back,
            Err(e) => {
                manifest_failed(label(), e, &mut problems, &mut could_not_check);
                continue;
            }
        };
        versions += 1;
        // `selected` is sorted: the versions of a name are neighbours.
        if last_name != Some(name.as_str()) {
            names += 1;
            last_name = Some(name);
        }
        // A tree's chunks (its listing's and its files') are read one by one in stage 3; its
        // files' contents are checked in stage 5.
        if head.tree.is_some() && read == ReadData::All {
            trees.push(i);
        }
        let streams = read == ReadData::All
            && head.tree.is_none()
            && !content_digest_is_known(head.chunk_count, plain_ids);
        if read == ReadData::All && !streams && head.tree.is_none() {
            versions_hashed += 1;
            if !known_digest_matches(uses.first, &head.sha256) {
                problems.push(wrong_content(label(), &head.sha256));
            }
        }
        for (id, (size, stored)) in uses.distinct {
            match referenced.entry(id) {
                Entry::Vacant(v) => {
                    v.insert(Ref {
                        size,
                        stored,
                        streamed: streams,
                    });
                }
                Entry::Occupied(mut o) => {
                    let r = o.get_mut();
                    r.streamed |= streams;
                    if r.stored != stored {
                        more_stored.entry(id).or_default().insert(stored);
                    }
                }
            }
        }
        for (id, stored) in uses.more_stored {
            if referenced.get(&id).is_some_and(|r| r.stored != stored) {
                more_stored.entry(id).or_default().insert(stored);
            }
        }
        if streams {
            streamed_bytes += head.size;
            let cost = std::mem::size_of::<Manifest>()
                + head.name.len()
                + head.version.len()
                + head.sha256.len()
                + uses
                    .kept
                    .as_ref()
                    .map_or(0, |k| k.len() * std::mem::size_of::<ChunkRef>());
            streamed.push(match uses.kept {
                Some(kept) if kept_bytes + cost <= KEEP_BYTES => {
                    kept_bytes += cost;
                    Streamed::Kept(Box::new(Manifest::from_head(head, kept)))
                }
                _ => Streamed::Reread(i),
            });
        }
    }
    drop(manifests);

    // Stage 2: every referenced chunk exists with a stored size a version recorded. A chunk of
    // another size is read whatever `read` selects: two writers racing to store the same new
    // chunk with different settings leave a sound frame of the other size, so only a read can
    // tell damage (truncation, say) from that.
    let stored: HashMap<ChunkId, u64> = vault.chunk_sizes().await?;
    let mut to_read = Vec::new();
    for (id, r) in &referenced {
        match stored.get(id) {
            None => problems.push(Problem {
                kind: ProblemKind::MissingChunk,
                chunk: Some(id.to_hex()),
                versions: Vec::new(),
                detail: "not in the vault".into(),
            }),
            Some(&actual)
                if actual != r.stored
                    && !more_stored.get(id).is_some_and(|s| s.contains(&actual)) =>
            {
                let mut sizes: BTreeSet<u64> = more_stored.get(id).cloned().unwrap_or_default();
                sizes.insert(r.stored);
                let expected: Vec<String> = sizes.iter().map(u64::to_string).collect();
                let note = format!("stored {actual} bytes, recorded {}", expected.join(" or "));
                to_read.push((*id, r.size, Some(note)));
            }
            Some(_) => {
                if read.selects(id) && !r.streamed {
                    to_read.push((*id, r.size, None));
                }
            }
        }
    }
    drop(more_stored);

    // Stage 3: read and re-check the selected chunks, as many at once as the window lets them
    // (small chunks are latency-bound, large ones bounded by bytes in flight).
    reporter.on_start(
        Some(to_read.iter().map(|(_, s, _)| s).sum::<u64>() + streamed_bytes),
        None,
    );
    let window = crate::ops::Window::new(parallel);
    let mut outcomes = futures::stream::iter(to_read)
        .map(|(id, size, note)| {
            let vault = Arc::clone(vault);
            let reporter = Arc::clone(reporter);
            let window = window.clone();
            async move {
                let _held = window.admit(size).await;
                let outcome = read_chunk(&vault, id, size).await;
                reporter.on_bytes(size);
                (id, size, note, outcome)
            }
        })
        .buffer_unordered(window.width());
    // A read made only to settle a size mismatch is part of the size check, not of the data
    // read `read` selected, so it is not counted in `chunks_read`.
    let (mut chunks_read, mut bytes_read) = (0u64, 0u64);
    while let Some((id, size, note, outcome)) = outcomes.next().await {
        let selected = u64::from(note.is_none());
        match outcome {
            Outcome::Clean => {
                chunks_read += selected;
                bytes_read += size * selected;
            }
            Outcome::Damaged(detail) => {
                chunks_read += selected;
                let (kind, detail) = match note {
                    Some(note) => (ProblemKind::WrongSize, format!("{note}; {detail}")),
                    None => (ProblemKind::CorruptChunk, detail),
                };
                problems.push(Problem {
                    kind,
                    chunk: Some(id.to_hex()),
                    versions: Vec::new(),
                    detail,
                });
            }
            Outcome::Unchecked(why) => could_not_check.push(why),
        }
    }
    drop(outcomes);

    // Stage 4 (full read): whole contents against their SHA-256, one version at a time.
    let mut judge = Judge {
        vault,
        verdicts: problems
            .iter()
            .filter_map(|p| p.chunk.as_deref())
            .filter_map(|hex| hex.parse::<ChunkId>().ok())
            .map(|id| (id, Verdict::Damaged))
            .collect(),
        problems: &mut problems,
        could_not_check: &mut could_not_check,
        chunks_read: &mut chunks_read,
        bytes_read: &mut bytes_read,
    };
    for s in streamed {
        let m = match s {
            Streamed::Kept(m) => *m,
            Streamed::Reread(i) => {
                let (name, version) = &selected[i];
                match vault.manifest(name, version).await {
                    Ok(m) => m,
                    Err(e) => {
                        let label = format!("{name}@{version}");
                        manifest_failed(label, e, judge.problems, judge.could_not_check);
                        continue;
                    }
                }
            }
        };
        let label = format!("{}@{}", m.name, m.version);
        if m.chunks
            .iter()
            .any(|c| judge.verdicts.get(&c.id) == Some(&Verdict::Damaged))
        {
            // Its content cannot be right; its other chunks still get read.
            judge.chunks(&m).await;
            continue;
        }
        let streamed_once = crate::ops::get::check_content(vault, &m, parallel, reporter).await;
        let outcome = match streamed_once {
            Ok(()) => Ok(()),
            // A damaged chunk, content other than the manifest says, or a read that failed: the
            // chunks are judged one by one (each read retried, and read once per run); damage or
            // an unreadable chunk is recorded there, and if they are all sound the version is
            // streamed again to settle its content.
            Err(_) => match judge.chunks(&m).await {
                Verdict::Damaged | Verdict::Unknown => continue,
                Verdict::Sound => {
                    crate::ops::get::check_content(vault, &m, parallel, reporter).await
                }
            },
        };
        match outcome {
            Ok(()) => {
                versions_hashed += 1;
                judge.passed(&m);
            }
            Err(e) if e.kind() == ErrorKind::IntegrityCheckFailed => {
                versions_hashed += 1;
                judge.problems.push(Problem {
                    detail: e.to_string(),
                    ..wrong_content(label, &m.sha256)
                });
            }
            Err(e) => judge
                .could_not_check
                .push(format!("content of {label}: {e}")),
        }
    }

    // Stage 5 (full read): the content of every file of every tree against its SHA-256. Its
    // chunks were read in stage 3; a file of one chunk in a plain vault is settled by its id.
    for i in trees {
        let (name, version) = &selected[i];
        let label = format!("{name}@{version}");
        let listed = async {
            let m = vault.manifest(name, version).await?;
            let tree = vault.read_tree(&m).await?;
            Ok::<_, Error>((m, tree))
        };
        let (m, tree) = match listed.await {
            Ok(listed) => listed,
            Err(e) => {
                manifest_failed(label, e, judge.problems, judge.could_not_check);
                continue;
            }
        };
        let mut sound = true;
        for e in tree
            .entries
            .iter()
            .filter(|e| e.kind == crate::store::tree::Kind::File)
        {
            let fm = crate::ops::tree::file_manifest(&m, e);
            let file_label = format!("{label}/{}", e.path_lossy());
            if content_digest_is_known(fm.chunks.len() as u64, plain_ids) {
                if !known_digest_matches(fm.chunks.first().map(|c| c.id), &fm.sha256) {
                    sound = false;
                    judge.problems.push(wrong_content(file_label, &fm.sha256));
                }
                continue;
            }
            if fm
                .chunks
                .iter()
                .any(|c| judge.verdicts.get(&c.id) == Some(&Verdict::Damaged))
            {
                sound = false;
                continue;
            }
            match crate::ops::get::check_content(vault, &fm, parallel, reporter).await {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::IntegrityCheckFailed => {
                    sound = false;
                    judge.problems.push(Problem {
                        detail: e.to_string(),
                        ..wrong_content(file_label, &fm.sha256)
                    });
                }
                Err(e) => {
                    sound = false;
                    judge
                        .could_not_check
                        .push(format!("content of {file_label}: {e}"));
                }
            }
        }
        if sound {
            versions_hashed += 1;
        }
    }
    drop(judge);

    let chunks_present = referenced.len() as u64
        - problems
            .iter()
            .filter(|p| matches!(p.kind, ProblemKind::MissingChunk | ProblemKind::WrongSize))
            .count() as u64;

    let (orphan_chunks, orphan_bytes) = if whole_vault {
        let (mut count, mut bytes) = (0u64, 0u64);
        for (id, size) in &stored {
            if !referenced.contains_key(id) {
                count += 1;
                bytes += size;
            }
        }
        (Some(count), Some(bytes))
    } else {
        (None, None)
    };
    let chunks_referenced = referenced.len() as u64;
    drop((stored, referenced));
    name_users(vault, &selected, &mut problems, parallel).await;
    problems.sort_by(|a, b| (a.kind, &a.chunk, &a.versions).cmp(&(b.kind, &b.chunk, &b.versions)));
    let mut problems_by_kind = BTreeMap::new();
    for p in &problems {
        *problems_by_kind.entry(p.kind.label()).or_insert(0) += 1;
    }
    could_not_check.sort();
    let elapsed = started.elapsed();
    Ok(VerifyReport {
        names,
        versions,
        chunks_referenced,
        chunks_present,
        read_data: read.to_string(),
        chunks_read,
        bytes_read,
        versions_hashed,
        orphan_chunks,
        orphan_bytes,
        problems,
        problems_by_kind,
        could_not_check,
        elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        chunks_per_sec: chunks_read as f64 / elapsed.as_secs_f64().max(1e-3),
    })
}

/// Names, for each problem about a chunk, the versions that reference it (in `selected`'s
/// order): one more pass over the manifests, made only when there is damage to describe, so a
/// clean run never holds a list of users per chunk. A manifest that cannot be read now names
/// nothing (it was reported already, or was removed since).
async fn name_users(
    vault: &Vault,
    selected: &[(String, String)],
    problems: &mut [Problem],
    parallel: usize,
) {
    let wanted: HashSet<ChunkId> = problems
        .iter()
        .filter_map(|p| p.chunk.as_deref())
        .filter_map(|hex| hex.parse().ok())
        .collect();
    if wanted.is_empty() {
        return;
    }
    let wanted = Arc::new(wanted);
    let mut users: HashMap<ChunkId, Vec<String>> = HashMap::new();
    let mut hits = futures::stream::iter(selected)
        .map(|(name, version)| {
            let sink = Hits {
                wanted: Arc::clone(&wanted),
                found: BTreeSet::new(),
            };
            async move {
                (
                    name,
                    version,
                    vault.read_manifest_deep(name, version, sink).await,
                )
            }
        })
        .buffered(crate::ops::fanout(parallel));
    while let Some((name, version, read_back)) = hits.next().await {
        if let Ok((_, hits)) = read_back {
            for id in hits.found {
                users
                    .entry(id)
                    .or_default()
                    .push(format!("{name}@{version}"));
            }
        }
    }
    for p in problems {
        if let Some(id) = p
            .chunk
            .as_deref()
            .and_then(|hex| hex.parse::<ChunkId>().ok())
        {
            p.versions = users.get(&id).cloned().unwrap_or_default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_parse_and_slices_partition_the_chunks() {
        assert_eq!(
            "2/5".parse::<ReadData>().unwrap(),
            ReadData::Slice { n: 2, t: 5 }
        );
        assert_eq!(
            "12.5%".parse::<ReadData>().unwrap(),
            ReadData::Percent(12.5)
        );
        for bad in ["0/5", "6/5", "5", "x/y", "0%", "101%", "-1%"] {
            assert!(bad.parse::<ReadData>().is_err(), "{bad}");
        }
        for i in 0..500u32 {
            let id = ChunkId::of(&i.to_le_bytes());
            let hits = (1..=5)
                .filter(|&n| ReadData::Slice { n, t: 5 }.selects(&id))
                .count();
            assert_eq!(hits, 1, "chunk {id} is in {hits} slices");
        }
    }
}
