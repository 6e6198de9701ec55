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

/// What an rm did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RmReport {
    /// Versions this rm removed.
    pub removed: Vec<Target>,
    /// Planned versions that another process removed first.
    pub already_gone: Vec<Target>,
}

/// Deletes the manifests of `targets`, stopping at the first failure; a version that vanished
/// since the plan was made is reported, not an error.
pub async fn execute(vault: &Vault, targets: &[Target]) -> Result<RmReport> {
    let mut report = RmReport::default();
    for t in targets {
        match vault.remove_version(&t.name, &t.version).await {
            Ok(()) => report.removed.push(t.clone()),
            Err(e) if e.kind() == crate::ErrorKind::NotFound => report.already_gone.push(t.clone()),
            Err(e) => {
                return Err(e.context(format!(
                    "removed {} of {} versions before failing",
                    report.removed.len(),
                    targets.len()
                )));
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::backend::DynBackend;
    use crate::backend::memory::MemoryBackend;
    use crate::ops::put::{PutOptions, put_reader};
    use crate::report::{NoReporter, Reporter};
    use crate::store::chunker::ChunkerConfig;

    #[tokio::test]
    async fn a_version_removed_by_someone_else_since_the_plan_is_reported_not_fatal() {
        let backend: DynBackend = Arc::new(MemoryBackend::new());
        let vault = Arc::new(
            Vault::init(backend, ChunkerConfig::default())
                .await
                .unwrap()
                .0,
        );
        let opts = PutOptions {
            parallel: 2,
            chunker: ChunkerConfig::default(),
            content_type: None,
            metadata: Default::default(),
        };
        let reporter: Arc<dyn Reporter> = Arc::new(NoReporter);
        for content in [&b"one"[..], b"two"] {
            put_reader(
                &vault,
                "obj",
                "test",
                Box::new(content),
                None,
                &opts,
                &reporter,
            )
            .await
            .unwrap();
        }
        let refs = [ObjectRef::parse("obj").unwrap()];
        let targets = plan(&vault, &refs, false).await.unwrap();
        assert_eq!(targets.len(), 2);
        // A racing rm removes the newer version between plan and execute.
        vault
            .remove_version(&targets[1].name, &targets[1].version)
            .await
            .unwrap();
        let report = execute(&vault, &targets).await.unwrap();
        assert_eq!(report.removed, targets[..1]);
        assert_eq!(report.already_gone, targets[1..]);
        assert!(vault.versions("obj").await.unwrap().is_empty());
    }
}
