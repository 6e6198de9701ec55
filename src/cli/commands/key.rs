//! `ldv key list|add|passwd|remove`: manage the key slots of an encrypted vault. Every change
//! re-wraps the 32-byte vault key under the exclusive lock; no chunk is re-encrypted. A new slot
//! is checked by reading the descriptor back and opening it with the new key before an old slot
//! is removed.

use serde::Serialize;

use crate::cli::args::{KeyCommand, NewKeyArgs};
use crate::cli::{Ctx, locked, output};
use crate::config::KeySpec;
use crate::error::Error;
use crate::store::Vault;
use crate::store::crypto::{KeySlot, SlotKind};
use crate::store::locks::LockKind;

/// One slot as listed.
#[derive(Debug, Serialize)]
struct SlotView {
    id: String,
    kind: &'static str,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    kms_key_id: Option<String>,
    /// Whether this run opened the vault through this slot.
    current: bool,
}

fn view(slot: &KeySlot, current: Option<&str>) -> SlotView {
    SlotView {
        id: slot.id.clone(),
        kind: slot.kind.name(),
        created_at: slot.created_at.clone(),
        kms_key_id: match &slot.kind {
            SlotKind::Kms { key_id } => Some(key_id.clone()),
            _ => None,
        },
        current: current == Some(slot.id.as_str()),
    }
}

fn slots(vault: &Vault) -> Result<&[KeySlot], Error> {
    vault
        .descriptor()
        .encryption
        .as_ref()
        .map(|h| h.slots.as_slice())
        .ok_or_else(|| {
            Error::config(format!(
                "vault at {} is not encrypted; it has no keys",
                vault.backend()
            ))
        })
}

fn spec_of(args: &NewKeyArgs) -> KeySpec {
    KeySpec {
        env: args.from_env.clone(),
        raw: args.raw,
        prompt: args.from_env.is_none() && args.kms.is_none(),
        static_key: None,
        kms: args.kms.clone(),
        region: args.kms_region.clone(),
        endpoint: args.kms_endpoint.clone(),
    }
}

/// Runs `ldv key`.
pub async fn run(ctx: &Ctx, command: KeyCommand) -> anyhow::Result<u8> {
    let (mut vault, _stack) = ctx.open_vault().await?;
    let out = &ctx.settings.output;
    if let KeyCommand::List = command {
        let current = vault.opened_slot();
        let views: Vec<SlotView> = slots(&vault)?.iter().map(|s| view(s, current)).collect();
        if out.json {
            output::json(&serde_json::json!({
                "vault": vault.backend().to_string(),
                "algorithm": vault.descriptor().encryption.as_ref().map(|h| h.algorithm),
                "slots": views,
            }))?;
        } else if !out.quiet {
            for v in &views {
                output::line(format!(
                    "{}  {:<10}  {}{}{}",
                    v.id,
                    v.kind,
                    v.created_at,
                    v.kms_key_id
                        .as_ref()
                        .map(|k| format!("  {k}"))
                        .unwrap_or_default(),
                    if v.current { "  (opened this run)" } else { "" }
                ))?;
            }
        }
        return Ok(0);
    }
    slots(&vault)?;
    let lock = ctx.lock(&vault, LockKind::Exclusive, "key").await?;
    locked(Some(lock), async {
        let (added, removed) = match command {
            KeyCommand::List => unreachable!("handled above"),
            KeyCommand::Add(args) => {
                let key = ctx
                    .key_provider(&spec_of(&args), true, "the new key")
                    .await?;
                (Some(vault.add_key(key.as_ref()).await?), None)
            }
            KeyCommand::Passwd(args) => {
                let old = vault
                    .opened_slot()
                    .expect("an open encrypted vault was opened through a slot")
                    .to_owned();
                let key = ctx
                    .key_provider(&spec_of(&args), true, "the new key")
                    .await?;
                let added = vault.add_key(key.as_ref()).await?;
                let removed = vault.remove_key(&old).await?;
                (Some(added), Some(removed))
            }
            KeyCommand::Remove(args) => {
                if vault.opened_slot() == Some(args.slot.as_str())
                    && !ctx.confirm(&format!(
                        "Remove key slot {}, the key this run opened the vault with?",
                        args.slot
                    ))?
                {
                    return Ok(crate::cli::exit::FAILED);
                }
                (None, Some(vault.remove_key(&args.slot).await?))
            }
        };
        let current = vault.opened_slot();
        if out.json {
            output::json(&serde_json::json!({
                "vault": vault.backend().to_string(),
                "added": added.as_ref().map(|s| view(s, current)),
                "removed": removed.as_ref().map(|s| view(s, current)),
                "slots": slots(&vault)?.iter().map(|s| view(s, current)).collect::<Vec<_>>(),
            }))?;
        } else if !out.quiet {
            if let Some(s) = &added {
                output::line(format!(
                    "added key slot {} ({}), checked by reopening the vault with it",
                    s.id,
                    s.kind.name()
                ))?;
            }
            if let Some(s) = &removed {
                output::line(format!("removed key slot {} ({})", s.id, s.kind.name()))?;
            }
        }
        Ok(0)
    })
    .await
}
