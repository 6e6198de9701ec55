//! `ldv get NAME[@VERSION] [DEST]`.

use std::path::{Path, PathBuf};

use crate::cli::args::GetArgs;
use crate::cli::output;
use crate::cli::{Ctx, locked};
use crate::error::Error;
use crate::ops::get;
use crate::ops::tree::{self, Located};
use crate::store::layout::ObjectRef;
use crate::store::tree::Kind;

use super::{basename, emit};

fn target(dest: Option<&str>, name: &str) -> PathBuf {
    match dest {
        None => PathBuf::from(basename(name)),
        Some(d) if d.ends_with('/') || Path::new(d).is_dir() => Path::new(d).join(basename(name)),
        Some(d) => PathBuf::from(d),
    }
}

/// Runs `ldv get`.
pub async fn run(ctx: &Ctx, args: GetArgs) -> anyhow::Result<u8> {
    let r = ObjectRef::parse(&args.object)?;
    let (vault, _) = ctx.vault().await?;
    let lock = ctx.read_lock(&vault, "get").await?;
    locked(lock, async {
        let parallel = ctx.settings.parallel;
        let located = tree::locate(&vault, &r).await?;
        if args.dest.as_deref() == Some("-") {
            let m = match located {
                Some(found) => super::one_file(found)?,
                None => super::resolve_one(&vault, &r).await?,
            };
            get::cat(&vault, &m, None, parallel, std::io::stdout(), &ctx.reporter).await?;
            return Ok(0);
        }
        match located {
            Some(Located::Object(m)) => {
                let path = target(args.dest.as_deref(), &m.name);
                ctx.reporter.on_start(Some(m.size), None);
                let receipt = get::get_to_path(&vault, &m, &path, parallel, &ctx.reporter).await?;
                ctx.reporter.on_done();
                emit(ctx, &receipt, |receipt| output::line(wrote(receipt)))?;
            }
            Some(Located::InTree {
                manifest,
                tree,
                path,
            }) => {
                let entry = tree.find(path.as_bytes());
                match entry.map(|e| e.kind) {
                    Some(Kind::File) => {
                        let e = entry.expect("found above");
                        let dest = target(args.dest.as_deref(), &path);
                        ctx.reporter.on_start(Some(e.size), None);
                        let receipt = get::get_tree_file(
                            &vault,
                            &manifest,
                            e,
                            &dest,
                            parallel,
                            &ctx.reporter,
                        )
                        .await?;
                        ctx.reporter.on_done();
                        emit(ctx, &receipt, |receipt| output::line(wrote(receipt)))?;
                    }
                    Some(Kind::Symlink) => {
                        let e = entry.expect("found above");
                        return Err(Error::config(format!(
                            "{}@{}/{path} is a symlink to {}; get the tree or directory holding it",
                            manifest.name,
                            manifest.version,
                            String::from_utf8_lossy(&e.target)
                        ))
                        .into());
                    }
                    // The whole tree, or a directory in it.
                    _ => {
                        let shown = if path.is_empty() {
                            &manifest.name
                        } else {
                            &path
                        };
                        let dest = match args.dest.as_deref() {
                            None => PathBuf::from(basename(shown)),
                            Some(d) => PathBuf::from(d),
                        };
                        let summary = get::restore_tree(
                            &vault,
                            &manifest,
                            &tree,
                            &path,
                            &dest,
                            parallel,
                            &ctx.reporter,
                        )
                        .await?;
                        ctx.reporter.on_done();
                        emit(ctx, &summary, |summary| {
                            output::line(format!(
                                "wrote {} files into {}  {}@{}  {} (verified, {})",
                                summary.files,
                                dest.display(),
                                manifest.name,
                                manifest.version,
                                output::size(summary.size),
                                output::rate(summary.size, summary.elapsed_ms),
                            ))
                        })?;
                    }
                }
            }
            None if r.version.is_some() => return Err(Error::not_found(&r).into()),
            None => {
                let refs = get::tree(&vault, &r.name).await?;
                if refs.is_empty() {
                    return Err(Error::not_found(&r).into());
                }
                let dest = match args.dest.as_deref() {
                    None => PathBuf::from(basename(&r.name)),
                    Some(d) => PathBuf::from(d),
                };
                let summary =
                    get::get_tree(&vault, &r.name, refs, &dest, parallel, &ctx.reporter).await?;
                ctx.reporter.on_done();
                emit(ctx, &summary, |summary| {
                    output::line(format!(
                        "wrote {} files into {}  {} (verified, {})",
                        summary.files,
                        dest.display(),
                        output::size(summary.size),
                        output::rate(summary.size, summary.elapsed_ms),
                    ))
                })?;
            }
        }
        Ok(0)
    })
    .await
}

fn wrote(receipt: &get::GetReceipt) -> String {
    format!(
        "wrote {}  {}@{}  {}  sha256 {} (verified, {})",
        receipt.path,
        receipt.name,
        receipt.version,
        output::size(receipt.size),
        receipt.sha256,
        output::rate(receipt.size, receipt.elapsed_ms),
    )
}
