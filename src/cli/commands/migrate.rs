//! `ldv migrate`: convert a format-1 vault to format 2 under its exclusive lock.

use crate::cli::{Ctx, locked, output};
use crate::store::locks::LockKind;

/// Runs `ldv migrate`.
pub async fn run(ctx: &Ctx) -> anyhow::Result<u8> {
    let (mut vault, stack) = ctx.open_vault().await?;
    let shown = stack.backend.to_string();
    let out = &ctx.settings.output;
    if vault.pack_config().is_some() {
        if out.json {
            output::json(
                &serde_json::json!({ "vault": shown, "migrated": false, "format": vault.format() }),
            )?;
        } else if !out.quiet {
            output::line(format!(
                "the vault at {shown} is already format {}",
                vault.format()
            ))?;
        }
        return Ok(0);
    }
    let lock = ctx.lock(&vault, LockKind::Exclusive, "migrate").await?;
    let indexed = locked(Some(lock), async {
        Ok(vault.migrate(crate::store::PackConfig::default()).await?)
    })
    .await?;
    if out.json {
        output::json(&serde_json::json!({
            "vault": shown,
            "migrated": true,
            "format": crate::store::VAULT_FORMAT,
            "chunks_indexed": indexed,
        }))?;
    } else if !out.quiet {
        output::line(format!(
            "converted the vault at {shown} to format {}: {indexed} chunk objects indexed where they are; gc moves them into packs",
            crate::store::VAULT_FORMAT
        ))?;
    }
    Ok(0)
}
