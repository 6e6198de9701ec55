//! `ldv cat NAME[@VERSION] [--range A-B]`.

use crate::cli::args::CatArgs;
use crate::cli::{Ctx, locked};
use crate::error::{Error, Result};
use crate::ops::get;
use crate::store::layout::ObjectRef;

/// Parses `A-B` (inclusive), `A-` or `-N` against an object of `size` bytes into `start..end`.
pub fn parse_range(spec: &str, size: u64) -> Result<(u64, u64)> {
    let bad = || {
        Error::config(format!(
            "invalid range {spec:?}: expected A-B (inclusive), A- or -N, in bytes"
        ))
    };
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, true) => Err(bad()),
        (true, false) => {
            let n = num(b)?;
            Ok((size.saturating_sub(n), size))
        }
        (false, true) => Ok((num(a)?.min(size), size)),
        (false, false) => {
            let (a, b) = (num(a)?, num(b)?);
            if b < a {
                return Err(bad());
            }
            Ok((a.min(size), b.saturating_add(1).min(size)))
        }
    }
}

/// Runs `ldv cat`.
pub async fn run(ctx: &Ctx, args: CatArgs) -> anyhow::Result<u8> {
    let r = ObjectRef::parse(&args.object)?;
    let (vault, _) = ctx.vault().await?;
    let lock = ctx.read_lock(&vault, "cat").await?;
    locked(lock, async {
        let m = match crate::ops::tree::locate(&vault, &r).await? {
            Some(found) => super::one_file(found)?,
            None => super::resolve_one(&vault, &r).await?,
        };
        let range = args
            .range
            .as_deref()
            .map(|spec| parse_range(spec, m.size))
            .transpose()?;
        get::cat(
            &vault,
            &m,
            range,
            ctx.settings.parallel,
            std::io::stdout(),
            &ctx.reporter,
        )
        .await?;
        Ok(0)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_http_semantics() {
        assert_eq!(parse_range("0-9", 100).unwrap(), (0, 10));
        assert_eq!(parse_range("90-", 100).unwrap(), (90, 100));
        assert_eq!(parse_range("-10", 100).unwrap(), (90, 100));
        assert_eq!(parse_range("50-500", 100).unwrap(), (50, 100));
        assert_eq!(parse_range("-500", 100).unwrap(), (0, 100));
        for bad in ["", "-", "x-1", "5-2", "1-2-3"] {
            assert!(parse_range(bad, 100).is_err(), "{bad}");
        }
    }
}
