//! `ldv stat NAME[@VERSION]`.

use crate::cli::Ctx;
use crate::cli::args::StatArgs;
use crate::cli::output;
use crate::ops::info;
use crate::ops::tree::{Located, locate};
use crate::store::layout::ObjectRef;

/// Runs `ldv stat`.
pub async fn run(ctx: &Ctx, args: StatArgs) -> anyhow::Result<u8> {
    let r = ObjectRef::parse(&args.object)?;
    let (vault, _) = ctx.vault().await?;
    if let Some(Located::InTree {
        manifest,
        tree,
        path,
    }) = locate(&vault, &r).await?
    {
        if let Some(e) = tree.find(path.as_bytes()) {
            return entry(ctx, &info::EntryStat::of(&manifest, e));
        }
    }
    let s = info::stat(&vault, &r).await?;
    if ctx.settings.output.json {
        output::json(&s)?;
        return Ok(0);
    }
    let m = &s.manifest;
    let stored: u64 = m.chunks.iter().map(|c| c.size).sum();
    output::line(format!("name:         {}", m.name))?;
    output::line(format!(
        "version:      {} ({} of {})",
        m.version,
        s.all_versions
            .iter()
            .position(|v| *v == m.version)
            .map_or(0, |i| i + 1),
        s.all_versions.len()
    ))?;
    output::line(format!(
        "size:         {} ({} bytes)",
        output::size(m.size),
        m.size
    ))?;
    output::line(format!("sha256:       {}", m.sha256))?;
    output::line(format!(
        "created:      {}",
        crate::time::rfc3339(m.created_at)
    ))?;
    output::line(format!(
        "chunks:       {} ({} of content)",
        m.chunks.len(),
        output::size(stored)
    ))?;
    output::line(format!("chunking:     {}", m.chunker))?;
    if let Some(t) = &m.tree {
        output::line(format!(
            "tree:         {} entries, {} files, {} of content (the chunks above hold its listing)",
            t.entries,
            t.files,
            output::size(t.bytes)
        ))?;
    }
    if let Some(t) = &m.content_type {
        output::line(format!("content type: {t}"))?;
    }
    for (k, v) in &m.metadata {
        output::line(format!("meta:         {k}={v}"))?;
    }
    if args.chunks {
        for c in &m.chunks {
            output::line(format!("  {:>14} {:>10}  {}", c.offset, c.size, c.id))?;
        }
    }
    Ok(0)
}

fn entry(ctx: &Ctx, s: &info::EntryStat) -> anyhow::Result<u8> {
    if ctx.settings.output.json {
        output::json(s)?;
        return Ok(0);
    }
    output::line(format!("tree:         {}@{}", s.tree, s.version))?;
    output::line(format!("path:         {}", s.path))?;
    output::line(format!("kind:         {:?}", s.kind).to_lowercase())?;
    output::line(format!("mode:         {}", s.mode))?;
    if let Some(t) = s.mtime {
        output::line(format!("modified:     {}", crate::time::rfc3339(t)))?;
    }
    output::line(format!(
        "size:         {} ({} bytes)",
        output::size(s.size),
        s.size
    ))?;
    if let Some(sha) = &s.sha256 {
        output::line(format!("sha256:       {sha}"))?;
        output::line(format!("chunks:       {}", s.chunks.len()))?;
    }
    if let Some(t) = &s.target {
        output::line(format!("target:       {t}"))?;
    }
    Ok(0)
}
