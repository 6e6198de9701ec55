//! `ldv health`.

use crate::cli::Ctx;
use crate::cli::{exit, output};
use crate::ops::info;

/// Runs `ldv health`: 0 when the backend answers and holds a readable vault.
pub async fn run(ctx: &Ctx) -> anyhow::Result<u8> {
    let stack = ctx.stack().await?;
    let h = info::health(stack.backend, &ctx.vault_options(false).await?).await?;
    if ctx.settings.output.json {
        output::json(&h)?;
    } else if !ctx.settings.output.quiet {
        output::line(format!(
            "backend:  {} ({}, {} ms)",
            h.backend,
            if h.status.healthy {
                "healthy"
            } else {
                "UNHEALTHY"
            },
            h.status.latency_ms
        ))?;
        if let Some(e) = &h.status.last_error {
            output::line(format!("error:    {e}"))?;
        }
        for (k, v) in &h.status.details {
            output::line(format!("{k}: {v}"))?;
        }
        match (&h.vault, &h.vault_error) {
            (Some(d), _) => output::line(format!(
                "vault:    format {}, id {}, chunking {}",
                d.format, d.vault_id, d.chunker
            ))?,
            (None, Some(e)) => output::line(format!("vault:    {e}"))?,
            (None, None) => {}
        }
    }
    Ok(if !h.status.healthy {
        exit::FAILED
    } else if h.vault.is_none() {
        // A wrong key is denied (5), a profile that disagrees with the vault a usage error (2).
        h.vault_error_kind.map_or(exit::NOT_FOUND, exit::code)
    } else {
        exit::OK
    })
}
