//! `ldv put SRC... [NAME]`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::args::PutArgs;
use crate::cli::exit;
use crate::cli::output;
use crate::cli::{Ctx, locked};
use crate::error::{Error, Result};
use crate::ops::put::{self, FileJob, PutOptions, PutReceipt, Skipped};
use crate::ops::tree::{self, TreeReceipt, TreeSource};
use crate::store::layout::validate_new_name;

use super::emit;

enum Plan {
    Stdin(String),
    Files(Vec<FileJob>, Vec<Skipped>),
    Tree(String, Vec<TreeSource>),
}

fn dir_name(path: &Path) -> Result<String> {
    // `.`, `..` and `/` have no name of their own: use the directory they stand for.
    let named = match path.file_name() {
        Some(_) => path.to_path_buf(),
        None => std::fs::canonicalize(path).map_err(|e| Error::io("resolve", path.display(), e))?,
    };
    named
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            Error::invalid_key(&path.display().to_string(), "has no usable name; give one")
        })
}

/// What `args` ask to store: in a vault of format 2 or later (`trees`), a directory or
/// several sources make one tree version.
fn plan(args: &[String], trees: bool) -> Result<Plan> {
    let (sources, dest) = match args.split_last() {
        Some((last, rest)) if !rest.is_empty() => (rest, Some(last.as_str())),
        _ => (args, None),
    };
    let many = sources.len() > 1;
    if dest == Some("-") {
        return Err(Error::config(
            "`-` names stdin as a source; it cannot be the NAME (ldv put - NAME reads stdin)",
        ));
    }
    if sources.iter().any(|s| s == "-") {
        return match (many, dest) {
            (false, Some(name)) if !name.ends_with('/') => {
                validate_new_name(name)?;
                Ok(Plan::Stdin(name.to_owned()))
            }
            _ => Err(Error::config(
                "reading stdin (-) needs exactly one NAME: ldv put - NAME",
            )),
        };
    }
    let prefix = dest.map(|d| d.trim_end_matches('/').to_owned());
    if trees {
        if many {
            let name = prefix.unwrap_or_default();
            let mut tree = Vec::new();
            for src in sources {
                let path = PathBuf::from(src);
                std::fs::metadata(&path).map_err(|e| Error::io("read", path.display(), e))?;
                let at = dir_name(&path)?.into_bytes();
                tree.push(TreeSource { path, at });
            }
            return Ok(Plan::Tree(name, tree));
        }
        let path = PathBuf::from(&sources[0]);
        if std::fs::metadata(&path).is_ok_and(|m| m.is_dir()) {
            let base = dir_name(&path)?;
            let name = match (&prefix, dest.is_some_and(|d| d.ends_with('/'))) {
                (None, _) => base,
                (Some(p), true) if p.is_empty() => base,
                (Some(p), true) => format!("{p}/{base}"),
                (Some(p), false) => p.clone(),
            };
            let at = Vec::new();
            return Ok(Plan::Tree(name, vec![TreeSource { path, at }]));
        }
    }
    let mut jobs = Vec::new();
    let mut skipped = Vec::new();
    for src in sources {
        let path = PathBuf::from(src);
        let meta = std::fs::metadata(&path).map_err(|e| Error::io("read", path.display(), e))?;
        let base = dir_name(&path)?;
        let under = |p: &str| {
            if p.is_empty() {
                base.clone()
            } else {
                format!("{p}/{base}")
            }
        };
        let name = match (&prefix, many, dest.is_some_and(|d| d.ends_with('/'))) {
            (None, _, _) => base.clone(),
            (Some(p), true, _) | (Some(p), false, true) => under(p),
            (Some(p), false, false) => p.clone(),
        };
        if meta.is_dir() {
            let mut tree = put::TreePlan::default();
            put::plan_tree(&path, &name, &mut tree)?;
            jobs.append(&mut tree.jobs);
            skipped.append(&mut tree.skipped);
        } else {
            validate_new_name(&name)?;
            // A pipe or device is opened once, when it is read: opening it here to check it
            // would take (and lose) what a writer sends, or wait for one.
            let size = meta.is_file().then_some(meta.len());
            if size.is_some() {
                std::fs::File::open(&path).map_err(|e| Error::io("open", path.display(), e))?;
            }
            jobs.push(FileJob { path, name, size });
        }
    }
    Ok(Plan::Files(jobs, skipped))
}

fn line(r: &PutReceipt) -> String {
    format!(
        "stored {}@{}  {}  sha256 {}  ({} chunks, {} new, {} uploaded, {})",
        r.name,
        r.version,
        output::size(r.size),
        r.sha256,
        r.chunks,
        r.new_chunks,
        output::size(r.bytes_uploaded),
        output::rate(r.size, r.elapsed_ms),
    )
}

fn tree_line(r: &TreeReceipt) -> String {
    format!(
        "stored {}@{}  tree of {} files, {} directories, {} symlinks, {}  ({} files read, {} unchanged and reused, {} new chunks, {} uploaded, {})",
        r.name,
        r.version,
        r.files,
        r.dirs,
        r.symlinks,
        output::size(r.size),
        r.files_read,
        r.files_reused,
        r.new_chunks,
        output::size(r.bytes_uploaded),
        output::rate(r.bytes_read, r.elapsed_ms),
    )
}

/// Runs `ldv put`.
pub async fn run(ctx: &Ctx, args: PutArgs) -> anyhow::Result<u8> {
    let (vault, _) = ctx.vault().await?;
    let plan = plan(&args.args, vault.format() >= 2)?;
    if let Plan::Files(_, skipped) = &plan {
        for s in skipped {
            ctx.reporter
                .on_warning(&format!("skipped {}: {}", s.path, s.reason));
        }
    }
    let opts = PutOptions {
        parallel: ctx.settings.parallel,
        chunker: ctx.settings.chunker.unwrap_or(vault.descriptor().chunker),
        content_type: args.content_type,
        metadata: args.meta.into_iter().collect::<BTreeMap<_, _>>(),
    };
    let lock = ctx.write_lock(&vault, "put").await?;
    locked(lock, async {
        match plan {
            Plan::Stdin(name) => {
                ctx.reporter.on_start(None, None);
                let receipt = put::put_reader(
                    &vault,
                    &name,
                    "stdin",
                    Box::new(std::io::stdin()),
                    None,
                    &opts,
                    &ctx.reporter,
                )
                .await?;
                ctx.reporter.on_done();
                emit(ctx, &receipt, |r| output::line(line(r)))?;
            }
            Plan::Files(jobs, _) if jobs.len() == 1 && !Path::new(&args.args[0]).is_dir() => {
                ctx.reporter.on_start(jobs[0].size, None);
                let receipt = put::put_file(&vault, &jobs[0], &opts, &ctx.reporter).await?;
                ctx.reporter.on_done();
                emit(ctx, &receipt, |r| output::line(line(r)))?;
            }
            Plan::Tree(name, sources) => {
                let receipt = tree::put_tree(
                    &vault,
                    &name,
                    sources,
                    &opts,
                    args.reread,
                    &Arc::clone(&ctx.reporter),
                )
                .await?;
                ctx.reporter.on_done();
                emit(ctx, &receipt, |r| {
                    output::line(tree_line(r))?;
                    if !r.complete {
                        output::line(format!(
                            "incomplete: {} entries skipped (named above), the rest committed",
                            r.skipped.len()
                        ))?;
                    }
                    Ok(())
                })?;
                if !receipt.complete {
                    return Ok(exit::INCOMPLETE);
                }
            }
            Plan::Files(jobs, skipped) => {
                let summary =
                    put::put_files(&vault, jobs, skipped, &opts, &Arc::clone(&ctx.reporter))
                        .await?;
                ctx.reporter.on_done();
                emit(ctx, &summary, |summary| {
                    for r in &summary.objects {
                        output::line(line(r))?;
                    }
                    output::line(format!(
                        "{} files, {}, {} new chunks, {} uploaded, {} deduplicated, {}",
                        summary.files,
                        output::size(summary.size),
                        summary.new_chunks,
                        output::size(summary.bytes_uploaded),
                        output::size(summary.bytes_deduplicated),
                        output::rate(summary.size, summary.elapsed_ms),
                    ))?;
                    if !summary.complete {
                        output::line(format!(
                            "incomplete: {} entries skipped (named above), the rest committed",
                            summary.skipped.len()
                        ))?;
                    }
                    Ok(())
                })?;
                if !summary.complete {
                    return Ok(exit::INCOMPLETE);
                }
            }
        }
        Ok(exit::OK)
    })
    .await
}
