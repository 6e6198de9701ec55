//! `ldv gc [--dry-run] [--grace DURATION]`.

use crate::cli::args::GcArgs;
use crate::cli::{Ctx, exit, locked, output};
use crate::ops::gc::{self, GcPlan};
use crate::store::Vault;
use crate::store::collect::{self, PackPlan};
use crate::store::locks::LockKind;

fn render_plan(p: &GcPlan) -> anyhow::Result<()> {
    output::line(format!(
        "{} manifests reference {} of {} chunks ({} stored)",
        p.manifests,
        p.referenced_chunks,
        p.chunks_total,
        output::size(p.bytes_total)
    ))?;
    output::line(format!(
        "{} unreferenced: {} younger than the {} grace period ({}), {} to delete ({} reclaimable)",
        p.unreferenced_chunks,
        p.too_young_chunks,
        humantime::format_duration(std::time::Duration::from_secs(p.grace_secs)),
        output::size(p.too_young_bytes),
        p.deletable_chunks,
        output::size(p.bytes_reclaimable)
    ))
}

fn render_pack_plan(p: &PackPlan) -> anyhow::Result<()> {
    output::line(format!(
        "{} manifests reference {} chunks in {} packs ({}); {} dead",
        p.manifests,
        p.referenced_chunks,
        p.packs_total,
        output::size(p.pack_bytes),
        output::size(p.dead_bytes)
    ))?;
    output::line(format!(
        "condemn {} dead and {} unindexed packs, repack {} ({} live to copy), move {} format-1 chunks into packs, condemn {} more",
        p.dead_packs,
        p.orphan_packs,
        p.repack_packs,
        output::size(p.repack_bytes),
        p.legacy_to_pack,
        p.legacy_dead
    ))?;
    output::line(format!(
        "sweep {} marks older than the {} grace: delete {} objects ({}){}; {} marks still waiting",
        p.marks_to_sweep,
        humantime::format_duration(std::time::Duration::from_secs(p.grace_secs)),
        p.sweep_objects,
        output::size(p.sweep_bytes),
        if p.rescued_packs > 0 {
            format!(", keeping {} that new versions use", p.rescued_packs)
        } else {
            String::new()
        },
        p.marks_waiting
    ))
}

/// `ldv gc` on a format-2 vault: writers take no lock and keep running (see
/// `store::collect`); gc takes the exclusive lock only against another gc (two sweeps at once
/// could each keep what the other deletes in their index segments).
async fn run_packs(ctx: &Ctx, args: GcArgs, vault: &Vault) -> anyhow::Result<u8> {
    let lock = ctx.lock(vault, LockKind::Exclusive, "gc").await?;
    locked(Some(lock), run_packs_locked(ctx, args, vault)).await
}

async fn run_packs_locked(ctx: &Ctx, args: GcArgs, vault: &Vault) -> anyhow::Result<u8> {
    let out = &ctx.settings.output;
    let config = vault.pack_config().expect("a format-2 vault");
    let grace = args
        .grace
        .unwrap_or(std::time::Duration::from_secs(config.grace_secs));
    if grace.as_secs() < config.grace_secs {
        tracing::warn!(
            "--grace {} is shorter than this vault's {}: safe only while no put runs",
            humantime::format_duration(grace),
            humantime::format_duration(std::time::Duration::from_secs(config.grace_secs))
        );
    }
    let plan = gc::plan_packs(vault, grace, ctx.settings.parallel, args.dry_run).await?;
    if args.dry_run {
        if out.json {
            output::json(&serde_json::json!({ "plan": plan, "executed": false }))?;
        } else if !out.quiet {
            render_pack_plan(&plan)?;
        }
        return Ok(exit::OK);
    }
    if !out.json && !out.quiet {
        render_pack_plan(&plan)?;
    }
    if plan.sweep_objects > 0
        && !ctx.confirm(&format!(
            "Delete {} condemned objects ({})?",
            plan.sweep_objects,
            output::size(plan.sweep_bytes)
        ))?
    {
        if !out.quiet {
            eprintln!("ldv: nothing deleted");
        }
        return Ok(exit::FAILED);
    }
    let plan_json = serde_json::to_value(&plan)?;
    let report = collect::execute(vault, plan).await?;
    ctx.reporter.on_done();
    if out.json {
        output::json(&serde_json::json!({
            "plan": plan_json,
            "executed": true,
            "result": report,
            "stats": ctx.stats(),
        }))?;
    } else if !out.quiet {
        output::line(format!(
            "deleted {} objects ({}), repacked {} into {} packs, condemned {} for a gc after the grace, removed {} leftovers of interrupted writes ({})",
            report.deleted_objects,
            output::size(report.bytes_freed),
            output::size(report.bytes_repacked),
            report.packs_written,
            report.condemned,
            report.leftovers_removed,
            output::size(report.leftover_bytes)
        ))?;
    }
    Ok(exit::OK)
}

/// Runs `ldv gc`: on a format-1 vault under its exclusive lock (plan, confirm, execute); on a
/// format-2 vault without a lock.
pub async fn run(ctx: &Ctx, args: GcArgs) -> anyhow::Result<u8> {
    let (vault, _) = ctx.vault().await?;
    if vault.pack_config().is_some() {
        return run_packs(ctx, args, &vault).await;
    }
    let out = &ctx.settings.output;
    let grace = args.grace.unwrap_or(crate::store::DEFAULT_GRACE);
    let lock = ctx.lock(&vault, LockKind::Exclusive, "gc").await?;
    locked(Some(lock), async {
        let plan = gc::plan(&vault, grace, ctx.settings.parallel).await?;
        if args.dry_run {
            if out.json {
                output::json(&serde_json::json!({ "plan": plan, "executed": false }))?;
            } else if !out.quiet {
                render_plan(&plan)?;
            }
            return Ok(exit::OK);
        }
        if !out.json && !out.quiet {
            render_plan(&plan)?;
        }
        // Nothing referenced is ever deleted; the question is only asked when chunks would go.
        if plan.deletable_chunks > 0
            && !ctx.confirm(&format!(
                "Delete {} unreferenced chunks ({})?",
                plan.deletable_chunks,
                output::size(plan.bytes_reclaimable)
            ))?
        {
            if !out.quiet {
                eprintln!("ldv: nothing deleted");
            }
            return Ok(exit::FAILED);
        }
        let plan_json = serde_json::to_value(&plan)?;
        let report = gc::execute(&vault, plan, ctx.settings.parallel, &ctx.reporter).await?;
        ctx.reporter.on_done();
        if out.json {
            output::json(&serde_json::json!({
                "plan": plan_json,
                "executed": true,
                "result": report,
                "stats": ctx.stats(),
            }))?;
        } else if !out.quiet {
            output::line(format!(
                "deleted {} chunks ({}) and {} leftovers of interrupted writes ({}) in {} ms{}",
                report.deleted_chunks,
                output::size(report.bytes_freed),
                report.leftovers_removed,
                output::size(report.leftover_bytes),
                report.elapsed_ms,
                if report.kept_now_referenced > 0 {
                    format!(
                        "; kept {} that new versions use",
                        report.kept_now_referenced
                    )
                } else {
                    String::new()
                }
            ))?;
        }
        Ok(exit::OK)
    })
    .await
}
