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
    let listed = vault.list_versions(prefix).await?;
    let mut entries: Vec<Entry> = Vec::new();
    for (name, version) in listed {
        match entries.last_mut() {
            Some(last) if last.name == name && !all_versions => {
                last.version = version;
                last.versions += 1;
            }
            _ => entries.push(Entry {
                name,
                version,
                versions: 1,
                size: None,
                created_at: None,
                sha256: None,
                chunks: None,
                damaged: None,
            }),
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
