//! `ldv ls [PREFIX] [-l] [--versions]`.

use crate::backend::validate_prefix;
use crate::cli::args::LsArgs;
use crate::cli::output;
use crate::cli::{Ctx, exit};
use crate::ops::info::{self, Entry};

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
    } else {
        render(&entries, args.versions, args.long)?;
    }
    // The listing shows every entry; a damaged manifest among them fails the command, once.
    let damaged: Vec<&Entry> = entries.iter().filter(|e| e.damaged.is_some()).collect();
    match damaged.as_slice() {
        [] => Ok(0),
        [e, rest @ ..] => {
            let more = match rest.len() {
                0 => String::new(),
                n => format!(" (and {n} more manifests)"),
            };
            eprintln!(
                "ldv: error: {}{more}",
                e.damaged.as_deref().unwrap_or_default()
            );
            Ok(exit::INTEGRITY)
        }
    }
}

fn render(entries: &[Entry], versions: bool, long: bool) -> anyhow::Result<()> {
    for e in entries {
        let mut shown = if versions {
            format!("{}@{}", e.name, e.version)
        } else {
            e.name.clone()
        };
        match (e.kind, &e.target) {
            (Some("tree"), _) => shown.push('/'),
            (_, Some(target)) => shown = format!("{shown} -> {target}"),
            _ => {}
        }
        if long && e.damaged.is_some() {
            output::line(format!("{:>10}  {shown}", "DAMAGED"))?;
        } else if long {
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
    Ok(())
}
