//! Read-only views of a vault: `ls` (names, sizes, versions), `stat` (one version in detail) and
//! `health` (can the backend be reached and does it hold a readable vault).

use std::sync::Arc;
use std::time::SystemTime;

use futures::{StreamExt, TryStreamExt};
use serde::Serialize;

use crate::backend::{DynBackend, HealthStatus};
use crate::error::Result;
use crate::store::layout::ObjectRef;
use crate::store::manifest::Manifest;
use crate::store::{Descriptor, Vault};

/// One line of `ls`.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Object name.
    pub name: String,
    /// The version shown (the newest, unless listing all versions).
    pub version: String,
    /// How many versions the name has.
    pub versions: u64,
    /// Content size, when details were asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Commit time, when details were asked for.
    #[serde(
        with = "crate::time::serde_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<SystemTime>,
    /// Content SHA-256, when details were asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Number of chunks, when details were asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chunks: Option<u64>,
    /// Why the version's manifest could not be read, when details were asked for and it is
    /// damaged: the rest of the listing still shows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub damaged: Option<String>,
    /// What it is: `tree` for a tree version, `file`, `dir` or `symlink` for an entry of a
    /// tree; absent for a file version (or when details of a version were not read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// A tree version's number of files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// An entry's permission bits, in octal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// A symlink's target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl Entry {
    fn new(name: String, version: String) -> Self {
        Self {
            name,
            version,
            versions: 1,
            size: None,
            created_at: None,
            sha256: None,
            chunks: None,
            damaged: None,
            kind: None,
            files: None,
            mode: None,
            target: None,
        }
    }
}

/// The tree version a listing prefix reaches into, and the path prefix inside it: for
/// `TREE/p` (or `TREE@VERSION/p`), the newest version of the longest name before a `/` that
/// is a tree. `None` when the prefix is not inside a tree.
async fn tree_of_prefix(
    vault: &Vault,
    prefix: &str,
) -> Result<Option<(Manifest, crate::store::tree::Tree, String)>> {
    let mut cut = prefix.len();
    while let Some(slash) = prefix[..cut].rfind('/') {
        cut = slash;
        let (head, inner) = (&prefix[..slash], &prefix[slash + 1..]);
        let found = match head.rsplit_once('@') {
            Some((name, v)) if crate::store::layout::is_version(v) => {
                match vault.manifest(name, v).await {
                    Ok(m) => Some(m),
                    Err(e) if e.kind() == crate::ErrorKind::NotFound => None,
                    Err(e) => return Err(e),
                }
            }
            _ => match vault.versions(head).await?.last() {
                Some(newest) => Some(vault.manifest(head, newest).await?),
                None => None,
            },
        };
        match found {
            Some(m) if m.is_tree() => {
                let tree = vault.read_tree(&m).await?;
                return Ok(Some((m, tree, inner.to_owned())));
            }
            Some(_) => return Ok(None),
            None => {}
        }
    }
    Ok(None)
}

/// The entries of `tree` whose path starts with `inner`, as listing lines named `TREE/path`
/// (each with the number of versions of the tree, `versions`).
fn tree_entries(
    m: &Manifest,
    tree: &crate::store::tree::Tree,
    inner: &str,
    versions: u64,
) -> Vec<Entry> {
    use crate::store::tree::Kind;
    let start = tree
        .entries
        .partition_point(|e| e.path.as_slice() < inner.as_bytes());
    tree.entries[start..]
        .iter()
        .take_while(|e| e.path.starts_with(inner.as_bytes()))
        .map(|e| {
            let mut line = Entry::new(format!("{}/{}", m.name, e.path_lossy()), m.version.clone());
            line.versions = versions;
            line.size = Some(e.size);
            line.created_at = e.mtime.to_system();
            line.mode = Some(format!("{:o}", e.mode));
            match e.kind {
                Kind::File => {
                    line.kind = Some("file");
                    line.sha256 = Some(hex::encode(e.sha256));
                    line.chunks = Some(e.chunks.len() as u64);
                }
                Kind::Dir => {
                    line.kind = Some("dir");
                    line.name.push('/');
                }
                Kind::Symlink => {
                    line.kind = Some("symlink");
                    line.target = Some(String::from_utf8_lossy(&e.target).into_owned());
                }
            }
            line
        })
        .collect()
}

/// Lists objects whose name starts with `prefix`: the newest version of each, or every version;
/// with `long`, reads each listed manifest for size, time and hash (a damaged one is marked, not
/// fatal).
pub async fn ls(
    vault: &Arc<Vault>,
    prefix: &str,
    all_versions: bool,
    long: bool,
    parallel: usize,
) -> Result<Vec<Entry>> {
    // A prefix inside a tree lists the tree's entries (read from its listing), beside any
    // versions of names under the same prefix.
    let inside = match all_versions {
        false => tree_of_prefix(vault, prefix).await?,
        true => None,
    };
    let listed = vault.list_versions(prefix).await?;
    let mut entries: Vec<Entry> = Vec::new();
    for (name, version) in listed {
        match entries.last_mut() {
            Some(last) if last.name == name && !all_versions => {
                last.version = version;
                last.versions += 1;
            }
            _ => entries.push(Entry::new(name, version)),
        }
    }
    if all_versions {
        let mut i = 0;
        while i < entries.len() {
            let n = entries[i..]
                .iter()
                .take_while(|e| e.name == entries[i].name)
                .count();
            for e in &mut entries[i..i + n] {
                e.versions = n as u64;
            }
            i += n;
        }
    }
    if long {
        entries = futures::stream::iter(entries)
            .map(|mut e| {
                let vault = Arc::clone(vault);
                async move {
                    // The head and a count are all a listing shows: no chunk list is kept.
                    match vault.read_manifest(&e.name, &e.version, ()).await {
                        Ok((m, ())) => {
                            e.size = Some(m.size);
                            e.created_at = Some(m.created_at);
                            e.sha256 = Some(m.sha256);
                            e.chunks = Some(m.chunk_count);
                            if let Some(t) = m.tree {
                                e.kind = Some("tree");
                                e.size = Some(t.bytes);
                                e.files = Some(t.files);
                            }
                        }
                        Err(err) if err.kind() == crate::ErrorKind::IntegrityCheckFailed => {
                            e.damaged = Some(err.to_string());
                        }
                        Err(err) => return Err(err),
                    }
                    Ok::<_, crate::Error>(e)
                }
            })
            .buffered(crate::ops::fanout(parallel))
            .try_collect()
            .await?;
    }
    if let Some((m, tree, inner)) = inside {
        let versions = vault.versions(&m.name).await?.len() as u64;
        entries.retain(|e| e.name != m.name);
        entries.extend(tree_entries(&m, &tree, &inner, versions));
        entries.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(entries)
}

/// The details of one version and the list of its siblings.
#[derive(Debug, Clone, Serialize)]
pub struct Stat {
    /// The version's manifest.
    #[serde(flatten)]
    pub manifest: Manifest,
    /// Every version of the name, oldest first.
    pub all_versions: Vec<String>,
}

/// Reads the manifest of `r` and the list of its name's versions.
pub async fn stat(vault: &Vault, r: &ObjectRef) -> Result<Stat> {
    let manifest = vault.resolve(r).await?;
    let all_versions = vault.versions(&r.name).await?;
    Ok(Stat {
        manifest,
        all_versions,
    })
}

/// The details of one entry of a tree version.
#[derive(Debug, Clone, Serialize)]
pub struct EntryStat {
    /// The tree's name.
    pub tree: String,
    /// The tree version.
    pub version: String,
    /// The entry's path in the tree.
    pub path: String,
    /// `file`, `dir` or `symlink`.
    pub kind: crate::store::tree::Kind,
    /// Permission bits, in octal.
    pub mode: String,
    /// Modification time.
    #[serde(with = "crate::time::serde_opt")]
    pub mtime: Option<SystemTime>,
    /// Content length (a symlink's: its target's).
    pub size: u64,
    /// A file's SHA-256.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A symlink's target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// A file's chunks.
    pub chunks: Vec<crate::store::manifest::ChunkRef>,
}

impl EntryStat {
    /// The details of `e`, in tree version `m`.
    pub fn of(m: &Manifest, e: &crate::store::tree::Entry) -> Self {
        use crate::store::tree::Kind;
        Self {
            tree: m.name.clone(),
            version: m.version.clone(),
            path: e.path_lossy().into_owned(),
            kind: e.kind,
            mode: format!("{:o}", e.mode),
            mtime: e.mtime.to_system(),
            size: e.size,
            sha256: (e.kind == Kind::File).then(|| hex::encode(e.sha256)),
            target: (e.kind == Kind::Symlink)
                .then(|| String::from_utf8_lossy(&e.target).into_owned()),
            chunks: e.chunk_refs(),
        }
    }
}

/// The result of `health`.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// The backend stack probed.
    pub backend: String,
    /// What the backend said.
    pub status: HealthStatus,
    /// The vault descriptor, when one could be read.
    pub vault: Option<Descriptor>,
    /// Why the vault could not be opened, if it could not.
    pub vault_error: Option<String>,
    /// The kind of that error (not found, permission denied for a wrong key, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vault_error_kind: Option<crate::error::ErrorKind>,
}

impl Health {
    /// Whether the backend is healthy and holds a readable vault.
    pub fn ok(&self) -> bool {
        self.status.healthy && self.vault.is_some()
    }
}

/// Probes the backend, then tries to open the vault on it as `options` ask (so an encrypted
/// vault's key is checked too).
pub async fn health(backend: DynBackend, options: &crate::store::VaultOptions) -> Result<Health> {
    let status = backend.health().await?;
    let shown = backend.to_string();
    let (vault, vault_error, vault_error_kind) = match Vault::open_with(backend, options).await {
        Ok(v) => (Some(v.descriptor().clone()), None, None),
        Err(e) => (None, Some(e.to_string()), Some(e.kind())),
    };
    Ok(Health {
        backend: shown,
        status,
        vault,
        vault_error,
        vault_error_kind,
    })
}
