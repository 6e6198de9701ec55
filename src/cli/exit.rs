//! The exit-code table, decided in one place from the library's error kinds.

use crate::error::ErrorKind;

/// Success.
pub const OK: u8 = 0;
/// Any other failure.
pub const FAILED: u8 = 1;
/// Usage or configuration error.
pub const USAGE: u8 = 2;
/// Object, version, vault or file not found.
pub const NOT_FOUND: u8 = 3;
/// Integrity failure: corruption detected.
pub const INTEGRITY: u8 = 4;
/// Permission or authentication denied.
pub const DENIED: u8 = 5;
/// Network failure or timeout after retries.
pub const NETWORK: u8 = 6;
/// Quota exceeded or storage full.
pub const QUOTA: u8 = 7;
/// The vault is locked by another process.
pub const LOCKED: u8 = 8;
/// Committed, incomplete: a directory put stored what it could and skipped entries it names
/// (in warnings and in `--json`'s `skipped`).
pub const INCOMPLETE: u8 = 9;
/// Interrupted (Ctrl-C, SIGINT).
pub const INTERRUPTED: u8 = 130;
/// Terminated (SIGTERM).
pub const TERMINATED: u8 = 143;

/// The table as printed in `--help` and the man page.
pub const TABLE: &str = "\
Exit codes:
  0    ok
  1    failed
  2    usage or configuration error
  3    not found
  4    integrity failure (corruption detected)
  5    permission or authentication denied
  6    network error or timeout after retries
  7    quota exceeded
  8    vault locked
  9    committed, incomplete (a put skipped entries it names)
  130  interrupted (SIGINT)
  143  terminated (SIGTERM)";

/// The exit code for an error of `kind`.
pub fn code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::NotFound => NOT_FOUND,
        ErrorKind::IntegrityCheckFailed => INTEGRITY,
        ErrorKind::PermissionDenied => DENIED,
        ErrorKind::NetworkError | ErrorKind::Timeout => NETWORK,
        ErrorKind::QuotaExceeded => QUOTA,
        ErrorKind::Locked => LOCKED,
        ErrorKind::ConfigurationError | ErrorKind::InvalidKey | ErrorKind::ChunkingError => USAGE,
        ErrorKind::BackendError
        | ErrorKind::SerializationError
        | ErrorKind::CacheError
        | ErrorKind::Conflict => FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_in_the_table_is_documented() {
        for c in [
            OK,
            FAILED,
            USAGE,
            NOT_FOUND,
            INTEGRITY,
            DENIED,
            NETWORK,
            QUOTA,
            LOCKED,
            INCOMPLETE,
            INTERRUPTED,
            TERMINATED,
        ] {
            assert!(
                TABLE.contains(&format!("  {c} ")),
                "{c} missing from the table"
            );
        }
    }
}
