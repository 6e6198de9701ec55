//! One file per command, each with one `run` that resolves its inputs, calls one operation and
//! renders the result.

pub mod cat;
pub mod chunk;
pub mod completions;
pub mod gc;
pub mod get;
pub mod health;
pub mod init;
pub mod key;
pub mod ls;
pub mod migrate;
pub mod put;
pub mod rm;
pub mod stat;
pub mod unlock;
pub mod verify;

use serde::Serialize;

use crate::backend::Stack;
use crate::backend::layer::BackendMetrics;
use crate::cli::{Ctx, output};
use crate::store::{StoreStats, Vault};

/// Counters reported with `--json` by commands that move data.
#[derive(Debug, Serialize)]
pub struct Stats {
    /// Backend requests, failures, bytes and latency.
    pub backend: BackendMetrics,
    /// Requests repeated after a transient failure.
    pub retries: u64,
    /// Chunk store counters.
    pub store: StoreStats,
}

impl Stats {
    /// The counters of `vault` on `stack` so far.
    pub fn of(vault: &Vault, stack: &Stack) -> Self {
        Self {
            backend: stack.metrics.snapshot(),
            retries: stack.retry.retries(),
            store: vault.stats(),
        }
    }

    /// The counters as a few lines of text, for `--stats`.
    pub fn render(&self) -> String {
        let (b, s) = (&self.backend, &self.store);
        format!(
            "backend: {} requests ({} failed, {} retries), {} up, {} down, {:.2} ms average latency\n\
             store:   {} chunks uploaded, {} deduplicated ({}), {} downloaded, integrity checks {} passed / {} failed",
            b.total_requests,
            b.failed_requests,
            self.retries,
            output::size(b.bytes_uploaded),
            output::size(b.bytes_downloaded),
            b.avg_latency_ms,
            s.chunks_uploaded,
            s.chunks_deduplicated,
            output::size(s.deduplicated_bytes),
            s.chunks_downloaded,
            s.integrity_checks_passed,
            s.integrity_checks_failed,
        )
    }
}

/// A command result with its statistics, for `--json`.
#[derive(Debug, Serialize)]
pub struct WithStats<T: Serialize> {
    /// The result.
    #[serde(flatten)]
    pub result: T,
    /// The counters of the vault the command opened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
}

/// Prints `result` with the command's counters as one JSON document under `--json`, or else,
/// unless `--quiet`, as the text `human` writes.
pub fn emit<T: Serialize>(
    ctx: &Ctx,
    result: &T,
    human: impl FnOnce(&T) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let out = &ctx.settings.output;
    if out.json {
        output::json(&WithStats {
            result,
            stats: ctx.stats(),
        })
    } else if out.quiet {
        Ok(())
    } else {
        human(result)
    }
}

/// The one version `r` names, for commands that stream a single object: a name with only
/// objects below it gets an error saying so rather than "not found".
pub async fn resolve_one(
    vault: &Vault,
    r: &crate::store::layout::ObjectRef,
) -> crate::error::Result<crate::store::manifest::Manifest> {
    match vault.resolve(r).await {
        Err(e) if e.kind() == crate::error::ErrorKind::NotFound && r.version.is_none() => {
            let below = crate::ops::get::tree(vault, &r.name).await?;
            if below.is_empty() {
                return Err(e);
            }
            Err(crate::error::Error::config(format!(
                "{} is a tree of {} objects, not one object; `ldv get {} DIR` writes them all",
                r.name,
                below.len(),
                r.name
            )))
        }
        other => other,
    }
}

/// The one file `found` names, for commands that stream a single file: a tree, a directory or
/// a symlink in one gets an error saying what it is.
pub fn one_file(
    found: crate::ops::tree::Located,
) -> crate::error::Result<crate::store::manifest::Manifest> {
    use crate::ops::tree::Located;
    use crate::store::tree::Kind;
    let label = found.label();
    match found {
        Located::Object(m) => Ok(m),
        Located::InTree {
            manifest,
            tree,
            path,
        } => match tree.find(path.as_bytes()) {
            Some(e) if e.kind == Kind::File => Ok(crate::ops::tree::file_manifest(&manifest, e)),
            Some(e) if e.kind == Kind::Symlink => Err(crate::error::Error::config(format!(
                "{label} is a symlink to {}, not a file",
                String::from_utf8_lossy(&e.target)
            ))),
            _ => Err(crate::error::Error::config(format!(
                "{label} is a tree of {} files, not one file; `ldv get {label} DIR` writes them all",
                tree.below(path.as_bytes())
                    .iter()
                    .filter(|e| e.kind == Kind::File)
                    .count()
            ))),
        },
    }
}

/// The last `/`-separated segment of an object name.
pub fn basename(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}
