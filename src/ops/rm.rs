//! `rm`: remove versions by deleting their manifests. Chunks stay until garbage collection, so an
//! rm never races a put that is reusing the same chunks. Split into a plan (what would go) and
//! its execution, so the CLI can show the plan and ask before anything is deleted.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::store::Vault;
use crate::store::layout::ObjectRef;

/// One version to remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    /// Object name.
    pub name: String,
    /// Version.
    pub version: String,
}

/// Resolves what removing `refs` means: `NAME@VERSION` is that version, `NAME` is every version
/// of the name, and with `recursive` a `NAME` also takes every object below `NAME/`. A reference
/// that matches nothing is `NotFound`, and nothing is planned.
pub async fn plan(vault: &Vault, refs: &[ObjectRef], recursive: bool) -> Result<Vec<Target>> {
    let mut targets = Vec::new();
    for r in refs {
        let before = targets.len();
        match &r.version {
            Some(v) => {
                vault.manifest(&r.name, v).await?;
                targets.push(Target {
                    name: r.name.clone(),
                    version: v.clone(),
                });
            }
            None => {
                for version in vault.versions(&r.name).await? {
                    targets.push(Target {
                        name: r.name.clone(),
                        version,
                    });
                }
                if recursive {
                    let below = format!("{}/", r.name);
                    for (name, version) in vault.list_versions(&below).await? {
                        targets.push(Target { name, version });
                    }
                }
            }
        }
        if targets.len() == before {
            return Err(Error::not_found(&r.name));
        }
    }
    targets.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    targets.dedup();
    Ok(targets)
}

/// Deletes the manifests of `targets`, stopping at the first failure.
pub async fn execute(vault: &Vault, targets: &[Target]) -> Result<()> {
    for t in targets {
        vault.remove_version(&t.name, &t.version).await?;
    }
    Ok(())
}
