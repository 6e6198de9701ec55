//! `ldv unlock [--all]`.

use crate::cli::args::UnlockArgs;
use crate::cli::{Ctx, output};
use crate::store::locks;

/// Runs `ldv unlock`: removes stale locks (every lock with `--all`) and lists what it removed.
pub async fn run(ctx: &Ctx, args: UnlockArgs) -> anyhow::Result<u8> {
    let (vault, _) = ctx.vault().await?;
    let removed = locks::remove(vault.backend(), args.all).await?;
    let remaining = locks::list(vault.backend()).await?;
    if ctx.settings.output.json {
        output::json(&serde_json::json!({
            "removed": removed,
            "remaining": remaining.into_iter().map(|(_, info)| info).collect::<Vec<_>>(),
        }))?;
    } else if !ctx.settings.output.quiet {
        for info in &removed {
            output::line(format!("removed {}", info.describe()))?;
        }
        for (_, info) in &remaining {
            output::line(format!("kept live {}", info.describe()))?;
        }
        if removed.is_empty() && remaining.is_empty() {
            output::line("no locks")?;
        }
    }
    Ok(0)
}
