//! `ldv ls [PREFIX] [-l] [--versions]`.

use crate::backend::validate_prefix;
use crate::cli::Ctx;
use crate::cli::args::LsArgs;
use crate::cli::output;
use crate::ops::info;

/// Runs `ldv ls`.
pub async fn run(ctx: &Ctx, args: LsArgs) -> anyhow::Result<u8> {
    let prefix = args.prefix.unwrap_or_default();
    validate_prefix(&prefix)?;
    let (vault, _) = ctx.vault().await?;
    let entries = info::ls(
        &vault,
        &prefix,
        args.versions,
        args.long,
        ctx.settings.parallel,
    )
    .await?;
    let out = &ctx.settings.output;
    if out.json {
        output::json(&entries)?;
        return Ok(0);
    }
    for e in &entries {
        let shown = if args.versions {
            format!("{}@{}", e.name, e.version)
        } else {
            e.name.clone()
        };
        if args.long {
            output::line(format!(
                "{:>10}  {}  {:>3} {}  {}  {}",
                output::size(e.size.unwrap_or(0)),
                e.created_at.map(crate::time::rfc3339).unwrap_or_default(),
                e.versions,
                if e.versions == 1 {
                    "version "
                } else {
                    "versions"
                },
                &e.sha256.as_deref().unwrap_or("")
                    [..12.min(e.sha256.as_deref().unwrap_or("").len())],
                shown,
            ))?;
        } else {
            output::line(shown)?;
        }
    }
    Ok(0)
}
