//! `ldv rm NAME[@VERSION]...`.

use crate::cli::args::RmArgs;
use crate::cli::output;
use crate::cli::{Ctx, locked};
use crate::error::Error;
use crate::error::Result;
use crate::ops::rm;
use crate::ops::tree::{self, Located, locate};
use crate::store::Vault;
use crate::store::layout::ObjectRef;
use crate::store::manifest::Manifest;
use crate::store::tree::Tree;

use super::emit;

/// The newest version of `name`.
async fn newest(vault: &Vault, name: &str) -> Result<String> {
    vault
        .versions(name)
        .await?
        .pop()
        .ok_or_else(|| Error::not_found(name))
}

/// Runs `ldv rm`: plan, confirm (or `--yes`), then delete the manifests.
pub async fn run(ctx: &Ctx, args: RmArgs) -> anyhow::Result<u8> {
    let refs = args
        .objects
        .iter()
        .map(|o| ObjectRef::parse(o))
        .collect::<Result<Vec<_>>>()?;
    let (vault, _) = ctx.vault().await?;
    // Paths inside a tree: a new version of the tree without them.
    let mut edits: Vec<(Manifest, Tree, Vec<String>)> = Vec::new();
    let mut whole = Vec::new();
    for r in refs {
        if !vault.versions(&r.name).await?.is_empty() {
            whole.push(r);
            continue;
        }
        match locate(&vault, &r).await? {
            Some(Located::InTree {
                manifest,
                tree,
                path,
            }) if !path.is_empty() => {
                if r.version.is_some() || manifest.version != newest(&vault, &manifest.name).await?
                {
                    return Err(Error::config(format!(
                        "{} is in an older version of {}; versions are immutable (`ldv rm {}@{}` removes that whole version)",
                        r, manifest.name, manifest.name, manifest.version
                    ))
                    .into());
                }
                match edits.iter_mut().find(|(m, _, _)| m.name == manifest.name) {
                    Some((_, _, paths)) => paths.push(path),
                    None => edits.push((manifest, tree, vec![path])),
                }
            }
            _ => whole.push(r),
        }
    }
    if !edits.is_empty() {
        if !whole.is_empty() {
            return Err(Error::config(
                "remove paths inside a tree in an rm of their own, apart from whole versions",
            )
            .into());
        }
        let question = edits
            .iter()
            .map(|(m, _, paths)| {
                format!(
                    "Commit a new version of {} without {} ({} path{})?",
                    m.name,
                    paths.join(", "),
                    paths.len(),
                    if paths.len() == 1 { "" } else { "s" }
                )
            })
            .collect::<Vec<_>>()
            .join(" ");
        if !ctx.confirm(&question)? {
            if !ctx.settings.output.quiet {
                eprintln!("ldv: nothing removed");
            }
            return Ok(crate::cli::exit::FAILED);
        }
        let mut done = Vec::new();
        for (m, tree, paths) in edits {
            let edit = tree::remove_paths(
                &vault,
                &m,
                tree,
                &paths,
                args.recursive,
                ctx.settings.parallel,
            )
            .await?;
            done.push(edit);
        }
        #[derive(serde::Serialize)]
        struct Edits {
            edits: Vec<tree::TreeEdit>,
        }
        emit(ctx, &Edits { edits: done }, |done| {
            for e in &done.edits {
                output::line(format!(
                    "removed {} entries: committed {}@{} (from {})",
                    e.removed, e.name, e.version, e.from
                ))?;
            }
            Ok(())
        })?;
        return Ok(0);
    }
    let refs = whole;
    let targets = rm::plan(&vault, &refs, args.recursive).await?;
    let out = &ctx.settings.output;
    if !out.yes && out.interactive && !out.json {
        for t in &targets {
            eprintln!("  {}@{}", t.name, t.version);
        }
    }
    if !ctx.confirm(&format!("Remove these {} versions?", targets.len()))? {
        if !out.quiet {
            eprintln!("ldv: nothing removed");
        }
        return Ok(crate::cli::exit::FAILED);
    }
    let lock = ctx.write_lock(&vault, "rm").await?;
    let report = locked(lock, async { Ok(rm::execute(&vault, &targets).await?) }).await?;
    if out.json {
        output::json(&report)?;
    } else if !out.quiet {
        for t in &report.removed {
            output::line(format!("removed {}@{}", t.name, t.version))?;
        }
        for t in &report.already_gone {
            output::line(format!("already removed {}@{}", t.name, t.version))?;
        }
    }
    Ok(0)
}
