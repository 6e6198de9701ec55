//! `ldv gc [--dry-run] [--grace DURATION]`.

use crate::cli::args::GcArgs;
use crate::cli::{Ctx, exit, locked, output};
use crate::ops::gc::{self, GcPlan};
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

/// Runs `ldv gc` under the vault's exclusive lock: plan, confirm, execute.
pub async fn run(ctx: &Ctx, args: GcArgs) -> anyhow::Result<u8> {
    let (vault, _) = ctx.vault().await?;
    let out = &ctx.settings.output;
    let lock = ctx.lock(&vault, LockKind::Exclusive, "gc").await?;
    locked(Some(lock), async {
        let plan = gc::plan(&vault, args.grace, ctx.settings.parallel).await?;
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
