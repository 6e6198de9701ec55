//! `ldv verify [NAME...] [--read-data | --read-data-subset n/t|x%]`.

use crate::cli::args::VerifyArgs;
use crate::cli::{Ctx, exit, locked, output};
use crate::error::Result;
use crate::ops::verify::{self, ReadData, VerifyReport};
use crate::store::layout::ObjectRef;

use super::WithStats;

fn render(r: &VerifyReport) -> anyhow::Result<()> {
    output::line(format!(
        "checked {} versions of {} names: {} chunks referenced, {} present",
        r.versions, r.names, r.chunks_referenced, r.chunks_present
    ))?;
    if r.read_data != "none" {
        output::line(format!(
            "read {} chunks ({}) of subset {}: {:.0} chunks/s",
            r.chunks_read,
            output::size(r.bytes_read),
            r.read_data,
            r.chunks_per_sec
        ))?;
    }
    if r.versions_hashed > 0 {
        output::line(format!(
            "checked the whole content of {} versions against their SHA-256",
            r.versions_hashed
        ))?;
    }
    if let (Some(n), Some(bytes)) = (r.orphan_chunks, r.orphan_bytes) {
        if n > 0 {
            output::line(format!(
                "info: {n} chunks ({}) are referenced by no version; `ldv gc` reclaims them",
                output::size(bytes)
            ))?;
        }
    }
    for p in &r.problems {
        let users = match p.versions.len() {
            0 => String::new(),
            1..=3 => format!(" (used by {})", p.versions.join(", ")),
            n => format!(
                " (used by {} and {} more)",
                p.versions[..3].join(", "),
                n - 3
            ),
        };
        let line = match p.chunk.as_deref() {
            Some(c) => format!("DAMAGE {}: chunk {c}{users}: {}", p.kind.label(), p.detail),
            None => format!(
                "DAMAGE {}: {}: {}",
                p.kind.label(),
                p.versions.join(", "),
                p.detail
            ),
        };
        output::line(line)?;
    }
    for why in &r.could_not_check {
        output::line(format!("NOT CHECKED: {why}"))?;
    }
    output::line(if r.damaged() {
        format!("damage found: {} problems", r.problems.len())
    } else if r.incomplete() {
        format!(
            "no damage found, but {} checks could not be made",
            r.could_not_check.len()
        )
    } else {
        "no damage found".to_owned()
    })
}

/// Runs `ldv verify`: exit 0 clean, 4 damage found, 6 could not complete.
pub async fn run(ctx: &Ctx, args: VerifyArgs) -> anyhow::Result<u8> {
    let refs = args
        .objects
        .iter()
        .map(|o| ObjectRef::parse(o))
        .collect::<Result<Vec<_>>>()?;
    let read = match (&args.read_data_subset, args.read_data) {
        (Some(subset), _) => subset.parse::<ReadData>()?,
        (None, true) => ReadData::All,
        (None, false) => ReadData::None,
    };
    let (vault, _) = ctx.vault().await?;
    let lock = ctx.read_lock(&vault, "verify").await?;
    let report = locked(lock, async {
        Ok(verify::verify(&vault, &refs, read, ctx.settings.parallel, &ctx.reporter).await?)
    })
    .await?;
    ctx.reporter.on_done();
    if ctx.settings.output.json {
        output::json(&WithStats {
            result: &report,
            stats: ctx.stats(),
        })?;
    } else if !ctx.settings.output.quiet || report.damaged() || report.incomplete() {
        render(&report)?;
    }
    Ok(if report.damaged() {
        exit::INTEGRITY
    } else if report.incomplete() {
        exit::NETWORK
    } else {
        exit::OK
    })
}
