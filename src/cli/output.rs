//! Rendering at the edge: JSON documents on stdout, human text on stdout, and the small
//! formatting helpers (sizes, rates) the text uses.

use std::io::Write;

use serde::Serialize;

use crate::error::Error;

/// Prints `value` as one JSON document on stdout.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    // Serialize first so that a closed stdout surfaces as the plain I/O error it is.
    let mut text = serde_json::to_vec_pretty(value)?;
    text.push(b'\n');
    std::io::stdout()
        .lock()
        .write_all(&text)
        .map_err(|e| Error::io("write", "stdout", e))?;
    Ok(())
}

/// Prints one line of text on stdout.
pub fn line(text: impl std::fmt::Display) -> anyhow::Result<()> {
    writeln!(std::io::stdout().lock(), "{text}").map_err(|e| Error::io("write", "stdout", e))?;
    Ok(())
}

/// `1.5 MiB`-style size.
pub fn size(bytes: u64) -> String {
    bytesize::ByteSize(bytes).display().iec().to_string()
}

/// `512.0 MiB/s`-style rate over `elapsed_ms`.
pub fn rate(bytes: u64, elapsed_ms: u64) -> String {
    let per_sec = bytes as f64 * 1000.0 / elapsed_ms.max(1) as f64;
    format!("{}/s", size(per_sec as u64))
}
