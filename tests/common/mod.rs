//! Helpers shared by integration tests: deterministic test data, error-kind assertions and listing
//! shortcuts for any `Backend`. Nothing here knows which backend it talks to.

// Each integration test is its own crate and uses a different subset of these helpers.
#![allow(dead_code)]

use std::fmt::Debug;
use std::path::Path;

use bytes::Bytes;
use futures::TryStreamExt;
use ldv::backend::Backend;
use ldv::{ErrorKind, Result};

/// `len` pseudo-random bytes, the same for the same `seed`: unlike a repeated pattern, a shifted,
/// truncated or mixed-up copy never compares equal by accident.
pub fn data(len: usize, seed: u64) -> Bytes {
    // xorshift64*: fast and good enough to make every window of the output distinct.
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// Asserts that `result` failed with `kind`; `what` names the call in the failure message.
#[track_caller]
pub fn assert_kind<T: Debug>(result: Result<T>, kind: ErrorKind, what: &str) {
    match result {
        Ok(v) => panic!("{what}: expected {kind:?}, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.kind(), kind, "{what}: wrong error kind: {e:?}");
            // The contract: only transient failures are marked retryable.
            if matches!(
                kind,
                ErrorKind::NotFound | ErrorKind::Conflict | ErrorKind::InvalidKey
            ) {
                assert!(
                    !e.is_retryable(),
                    "{what}: {kind:?} marked retryable: {e:?}"
                );
            }
        }
    }
}

/// What a call ended in, to compare many outcomes at once: `Ok(())` or the error's kind.
pub fn outcome<T>(result: Result<T>) -> std::result::Result<(), ErrorKind> {
    result.map(drop).map_err(|e| e.kind())
}

/// Asserts that `bytes` equal `expected`, reporting lengths instead of dumping megabytes.
#[track_caller]
pub fn assert_bytes(bytes: &[u8], expected: &[u8], what: &str) {
    if bytes != expected {
        let first_diff = bytes.iter().zip(expected).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, expected {} bytes (first difference at {first_diff:?})",
            bytes.len(),
            expected.len()
        );
    }
}

/// Every listed key under `prefix`, sorted but not deduplicated, so a key listed twice shows.
pub async fn list_keys(backend: &dyn Backend, prefix: &str) -> Result<Vec<String>> {
    let mut keys: Vec<String> = backend
        .list(prefix)
        .map_ok(|meta| meta.key)
        .try_collect()
        .await?;
    keys.sort();
    Ok(keys)
}

/// `keys` as owned, sorted strings, to compare with [`list_keys`].
pub fn sorted(keys: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    v.sort();
    v
}

/// Every entry under `dir` (recursively) whose file name starts with `prefix`.
pub fn files_named(dir: &Path, prefix: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with(prefix) {
            found.push(path.clone());
        }
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            found.extend(files_named(&path, prefix));
        }
    }
    found
}
