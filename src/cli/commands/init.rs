//! `ldv init`: create a vault, asking for its location on a terminal, and optionally save a
//! profile for it.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use crate::backend::BackendConfig;
use crate::cli::args::{ChunkingMode, InitArgs};
use crate::cli::settings::parse_vault_url;
use crate::cli::{Ctx, output};
use crate::error::{Error, Result};
use crate::store::Vault;
use crate::store::chunker::ChunkerConfig;

fn ask(prompt: &str, default: &str) -> Result<String> {
    dialoguer::Input::<String>::new()
        .with_prompt(prompt)
        .default(default.to_owned())
        .allow_empty(true)
        .interact_text()
        .map_err(|e| Error::config(format!("could not read the answer: {e}")))
}

/// Appends a `[profiles.NAME]` table for `backend` to the config file, creating the file (with
/// `default_profile` set) when there is none. Refuses to overwrite an existing profile.
fn save_profile(
    path: &Path,
    name: &str,
    backend: &BackendConfig,
    chunker: ChunkerConfig,
) -> Result<()> {
    let BackendConfig::Local(local) = backend else {
        return Err(Error::config(
            "only local vaults can be saved as profiles by this ldv",
        ));
    };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::config(format!(
            "profile name {name:?} must be letters, digits, '-' or '_'"
        )));
    }
    let existing = crate::config::read_text(path)?
        .map(|text| crate::config::LoadedConfig::parse(path, text))
        .transpose()?;
    if existing
        .as_ref()
        .is_some_and(|c| c.file.profiles.contains_key(name))
    {
        return Err(Error::config(format!(
            "profile {name:?} already exists in {}",
            path.display()
        )));
    }
    let path_str = local.path.to_str().ok_or_else(|| {
        Error::config(format!(
            "vault path {} is not valid UTF-8",
            local.path.display()
        ))
    })?;
    let chunking = match chunker {
        ChunkerConfig::Cdc { min, avg, max } => {
            format!("{{ mode = \"cdc\", min = {min}, avg = {avg}, max = {max} }}")
        }
        ChunkerConfig::Fixed {
            size,
            min_chunk_threshold,
        } => format!(
            "{{ mode = \"fixed\", size = {size}, min_chunk_threshold = {min_chunk_threshold} }}"
        ),
    };
    let table = format!(
        "\n[profiles.{name}]\nbackend = {{ type = \"local\", path = {} }}\nchunking = {chunking}\n",
        toml::Value::String(path_str.to_owned())
    );
    let text = match &existing {
        Some(c) => format!("{}{table}", c.text),
        None => format!("default_profile = \"{name}\"\n{table}"),
    };
    // Check what we are about to write parses, then write it atomically.
    crate::config::LoadedConfig::parse(path, text.clone())?;
    // A bare file name has an empty parent: the working directory.
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir.display(), e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".config.toml.")
        .tempfile_in(dir)
        .map_err(|e| Error::io("write config in", dir.display(), e))?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::io("write", path.display(), e))?;
    tmp.persist(path)
        .map_err(|e| Error::io("write", path.display(), e.error))?;
    Ok(())
}

/// Runs `ldv init`.
pub async fn run(ctx: &Ctx, args: InitArgs) -> anyhow::Result<u8> {
    let s = &ctx.settings;
    let mut backend_config = s.location.backend.clone();
    let mut profile = args.save_profile.clone();
    let ask_user = s.output.interactive
        && !s.output.yes
        && !s.output.json
        && s.location.embedded_default
        && profile.is_none();
    if ask_user {
        let BackendConfig::Local(local) = &backend_config else {
            unreachable!("the embedded default vault is local")
        };
        let answer = ask(
            "Vault location (directory or file:// URL)",
            &local.path.display().to_string(),
        )?;
        backend_config = parse_vault_url(&answer)?;
        let name = ask("Save as profile (empty to skip)", "")?;
        profile = (!name.trim().is_empty()).then(|| name.trim().to_owned());
    }
    let format = args.format.unwrap_or(s.vault_format);
    let chunker = match args.chunking {
        Some(ChunkingMode::Cdc) => ChunkerConfig::cdc_for_format(format),
        Some(ChunkingMode::Fixed) => ChunkerConfig::fixed_default(),
        None => s
            .chunker
            .unwrap_or_else(|| ChunkerConfig::cdc_for_format(format)),
    };
    let stack = ctx.stack_for(&backend_config).await?;
    let shown = stack.backend.to_string();
    let mut options = ctx.vault_options(true).await?;
    options.format = format;
    if let Some(grace) = args.gc_grace {
        if grace.as_secs() == 0 {
            return Err(crate::error::Error::config("--gc-grace must be at least 1s").into());
        }
        options.packs.grace_secs = grace.as_secs();
    }
    if let Some(target) = args.pack_size {
        options.packs.target = target;
    }
    let (vault, created) = Vault::init_with(Arc::clone(&stack.backend), chunker, &options).await?;
    if let Some(name) = &profile {
        save_profile(
            &s.config_path,
            name,
            &backend_config,
            vault.descriptor().chunker,
        )?;
    }
    let d = vault.descriptor();
    if s.output.json {
        output::json(&serde_json::json!({
            "vault": shown,
            "created": created,
            "descriptor": d,
            "profile": profile,
            "config": profile.as_ref().map(|_| s.config_path.display().to_string()),
        }))?;
    } else if !s.output.quiet {
        let encryption = match &d.encryption {
            Some(h) => format!(
                ", encrypted with {} (key slot {})",
                h.algorithm,
                vault.opened_slot().unwrap_or("?")
            ),
            None => String::new(),
        };
        output::line(format!(
            "{} vault at {shown} (format {}, chunking {}{encryption})",
            if created { "created" } else { "found existing" },
            d.format,
            d.chunker
        ))?;
        if let Some(name) = &profile {
            output::line(format!(
                "saved profile {name:?} in {}",
                s.config_path.display()
            ))?;
        }
    }
    Ok(0)
}
