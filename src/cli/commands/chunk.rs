//! `ldv chunk FILE [-l]`.

use crate::cli::args::ChunkArgs;
use crate::cli::{Ctx, output};
use crate::ops::chunk;

use super::WithStats;

/// Runs `ldv chunk`: the plan of a put, without uploading.
pub async fn run(ctx: &Ctx, args: ChunkArgs) -> anyhow::Result<u8> {
    let (vault, _) = ctx.vault().await?;
    let chunker = ctx.settings.chunker.unwrap_or(vault.descriptor().chunker);
    let mut plan = chunk::plan(&vault, &args.file, chunker, ctx.settings.parallel).await?;
    let out = &ctx.settings.output;
    if out.json {
        if !args.long {
            plan.list.clear();
        }
        output::json(&WithStats {
            result: &plan,
            stats: ctx.stats(),
        })?;
        return Ok(0);
    }
    if args.long {
        for c in &plan.list {
            output::line(format!(
                "{:>14} {:>10}  {}  {}",
                c.offset,
                c.size,
                c.id,
                if c.exists { "exists" } else { "new" }
            ))?;
        }
    }
    if !out.quiet {
        let s = &plan.sizes;
        output::line(format!(
            "{}: {} in {} chunks ({})",
            plan.file,
            output::size(plan.size),
            plan.chunks,
            plan.chunker
        ))?;
        output::line(format!(
            "chunk sizes: min {}, p10 {}, median {}, p90 {}, max {}, mean {}",
            output::size(s.min),
            output::size(s.p10),
            output::size(s.p50),
            output::size(s.p90),
            output::size(s.max),
            output::size(s.mean)
        ))?;
        output::line(format!(
            "already stored: {} chunks ({}); would upload: {} chunks ({}); dedup {:.1}%",
            plan.existing_chunks,
            output::size(plan.existing_bytes),
            plan.new_chunks,
            output::size(plan.bytes_to_upload),
            plan.dedup_ratio * 100.0
        ))?;
        output::line(format!("sha256 {}", plan.sha256))?;
    }
    Ok(0)
}
