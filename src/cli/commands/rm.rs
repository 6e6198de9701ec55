//! `ldv rm NAME[@VERSION]...`.

use crate::cli::args::RmArgs;
use crate::cli::output;
use crate::cli::{Ctx, locked};
use crate::error::Result;
use crate::ops::rm;
use crate::store::layout::ObjectRef;

/// Runs `ldv rm`: plan, confirm (or `--yes`), then delete the manifests.
pub async fn run(ctx: &Ctx, args: RmArgs) -> anyhow::Result<u8> {
    let refs = args
        .objects
        .iter()
        .map(|o| ObjectRef::parse(o))
        .collect::<Result<Vec<_>>>()?;
    let (vault, _) = ctx.vault().await?;
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
