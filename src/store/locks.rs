//! Vault locks (DESIGN §4.4): writers (put, rm) hold shared locks, gc holds an exclusive one.
//! A lock is an object under `locks/` naming its holder; it is refreshed every few minutes and
//! is stale when it was not refreshed for 30 minutes, or when its process is gone on this host.
//!
//! Acquiring writes the lock first and then looks for conflicting ones, removing its own and
//! backing off if it finds any: two processes can both back off, but never both hold conflicting
//! locks. A holder whose refresh failed, or whose lock was removed, must not commit.

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::backend::{DynBackend, PutMode};
use crate::error::{Error, ErrorKind, Result};

/// Prefix of every lock object.
pub const LOCKS_PREFIX: &str = "locks/";
/// A lock not refreshed for this long is stale.
pub const STALE_AFTER: Duration = Duration::from_secs(30 * 60);
/// How often a held lock is refreshed.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

/// Shared (writers) or exclusive (gc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKind {
    /// Held by writers; any number may coexist.
    Shared,
    /// Held by gc; excludes every other lock.
    Exclusive,
}

/// The content of a lock object: who holds it and since when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Random id, also the last part of the lock's key.
    pub id: String,
    /// Shared or exclusive.
    pub kind: LockKind,
    /// Host name of the holder.
    pub host: String,
    /// Process id of the holder.
    pub pid: u32,
    /// What the holder is doing (`put`, `rm`, `gc`).
    pub command: String,
    /// When the lock was taken.
    #[serde(with = "crate::time::serde_time")]
    pub since: SystemTime,
    /// When the lock was last refreshed.
    #[serde(with = "crate::time::serde_time")]
    pub refreshed: SystemTime,
    /// The holder's start time in clock ticks since boot (Linux), so a reused pid is not
    /// mistaken for the holder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process_start: Option<u64>,
}

impl LockInfo {
    /// Why the lock is stale at `now`, or `None` if it is live.
    pub fn stale_reason(&self, now: SystemTime) -> Option<&'static str> {
        if now.duration_since(self.refreshed).unwrap_or_default() > STALE_AFTER {
            return Some("not refreshed for 30 minutes");
        }
        // No clock is that far ahead of ours: such a time was written to hold the vault forever.
        if self.refreshed.duration_since(now).unwrap_or_default() > STALE_AFTER {
            return Some("its refresh time is more than 30 minutes in the future");
        }
        if self.host == this_host() {
            match (process_start(self.pid), self.process_start) {
                (None, _) => return Some("its process is gone"),
                (Some(now), Some(then)) if now != then => {
                    return Some("its process is gone (the pid now belongs to another)");
                }
                _ => {}
            }
        }
        None
    }

    /// "exclusive lock of `ldv gc` (pid 42 on host h) since <time>".
    pub fn describe(&self) -> String {
        format!(
            "{} lock of `ldv {}` (pid {} on host {}) since {}",
            match self.kind {
                LockKind::Shared => "shared",
                LockKind::Exclusive => "exclusive",
            },
            self.command,
            self.pid,
            self.host,
            crate::time::rfc3339(self.since)
        )
    }
}

/// This machine's host name.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// When process `pid` started, in clock ticks since boot, or `None` if it does not exist. Where
/// `/proc` is missing every process is assumed alive (the 30-minute rule still applies).
fn process_start(pid: u32) -> Option<u64> {
    if !cfg!(target_os = "linux") {
        return Some(0);
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 (starttime) counts from the one after the command name, which may hold spaces
    // and parentheses: start after its closing parenthesis.
    let after = &stat[stat.rfind(')')? + 1..];
    Some(
        after
            .split_whitespace()
            .nth(19)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0),
    )
}

/// Shared between a held lock and its refresher.
#[derive(Debug)]
pub struct LockState {
    key: String,
    refreshed: Mutex<SystemTime>,
    lost: Mutex<Option<String>>,
}

impl LockState {
    /// Fails with `Locked` if the lock can no longer be trusted: a refresh failed, the lock was
    /// removed, or it went too long without a refresh (the process was suspended, say).
    pub fn check(&self) -> Result<()> {
        if let Some(why) = self.lost.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            return Err(Error::new(
                ErrorKind::Locked,
                format!(
                    "lost the vault lock {}: {why}; stopping before commit",
                    self.key
                ),
            ));
        }
        let refreshed = *self.refreshed.lock().unwrap_or_else(|p| p.into_inner());
        // Leave a margin so that a commit never lands after others may have judged it stale.
        let limit = STALE_AFTER - REFRESH_EVERY;
        if SystemTime::now()
            .duration_since(refreshed)
            .unwrap_or_default()
            > limit
        {
            return Err(Error::new(
                ErrorKind::Locked,
                format!(
                    "the vault lock {} was not refreshed for over {} minutes; stopping before commit",
                    self.key,
                    limit.as_secs() / 60
                ),
            ));
        }
        Ok(())
    }
}

/// A held lock. Call [`LockGuard::release`] when done; a lock dropped without release is
/// stale once its process exits.
#[derive(Debug)]
pub struct LockGuard {
    backend: DynBackend,
    info: LockInfo,
    state: Arc<LockState>,
    refresher: tokio::task::JoinHandle<()>,
}

impl LockGuard {
    /// The lock's content.
    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    /// The state shared with the refresher, for commit-time checks.
    pub fn state(&self) -> Arc<LockState> {
        Arc::clone(&self.state)
    }

    /// Whether the lock can still be trusted.
    pub fn check(&self) -> Result<()> {
        self.state.check()
    }

    /// Stops refreshing and removes the lock.
    pub async fn release(self) -> Result<()> {
        self.refresher.abort();
        self.key().delete().await
    }

    /// The lock's object, to delete after the guard is gone (an interrupted command).
    pub fn key(&self) -> LockKey {
        LockKey {
            backend: Arc::clone(&self.backend),
            key: self.state.key.clone(),
        }
    }
}

/// A lock's object in the vault, kept apart from its guard so a command that is interrupted, and
/// so drops its guards without releasing them, can still delete its locks on the way out.
#[derive(Clone)]
pub struct LockKey {
    backend: DynBackend,
    key: String,
}

impl LockKey {
    /// The lock object's key.
    pub fn name(&self) -> &str {
        &self.key
    }

    /// Deletes the lock object; one already gone is fine.
    pub async fn delete(&self) -> Result<()> {
        match self.backend.delete(&self.key).await {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.refresher.abort();
    }
}

fn new_lock_id() -> String {
    format!(
        "{}-{:016x}",
        crate::time::compact(SystemTime::now()),
        rand::random::<u64>()
    )
}

/// A lock object is a few hundred bytes; reading stops past this, so a huge object under
/// `locks/` costs no memory (it is unreadable, like any other garbage there).
const MAX_LOCK_LEN: u64 = 64 * 1024;

/// The first [`MAX_LOCK_LEN`] + 1 bytes of the lock object at `key`: too many to parse as a lock.
async fn read_lock(backend: &DynBackend, key: &str) -> Result<Bytes> {
    backend.get_range(key, 0..MAX_LOCK_LEN + 1).await
}

/// Every lock in the vault with its key; unreadable lock objects are skipped.
pub async fn list(backend: &DynBackend) -> Result<Vec<(String, LockInfo)>> {
    let keys: Vec<String> = backend
        .list(LOCKS_PREFIX)
        .map_ok(|m| m.key)
        .try_collect()
        .await?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        match read_lock(backend, &key).await {
            Ok(raw) => match serde_json::from_slice::<LockInfo>(&raw) {
                Ok(info) => out.push((key, info)),
                Err(e) => tracing::warn!("ignoring unreadable lock {key}: {e}"),
            },
            // Released between listing and reading.
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The first live lock other than `own` that conflicts with taking a `kind` lock.
async fn conflicting(
    backend: &DynBackend,
    kind: LockKind,
    own: Option<&str>,
) -> Result<Option<LockInfo>> {
    let now = SystemTime::now();
    Ok(list(backend)
        .await?
        .into_iter()
        .map(|(_, info)| info)
        .filter(|info| Some(info.id.as_str()) != own)
        .filter(|info| info.stale_reason(now).is_none())
        .find(|info| kind == LockKind::Exclusive || info.kind == LockKind::Exclusive))
}

fn locked_by(holder: &LockInfo) -> Error {
    Error::new(
        ErrorKind::Locked,
        format!(
            "vault is locked: {}; try again later (or run `ldv unlock` if that process is gone)",
            holder.describe()
        ),
    )
}

async fn try_acquire(backend: &DynBackend, kind: LockKind, command: &str) -> Result<LockGuard> {
    if let Some(holder) = conflicting(backend, kind, None).await? {
        return Err(locked_by(&holder));
    }
    let now = crate::time::now_millis();
    let info = LockInfo {
        id: new_lock_id(),
        kind,
        host: this_host(),
        pid: std::process::id(),
        command: command.to_owned(),
        since: now,
        refreshed: now,
        process_start: process_start(std::process::id()),
    };
    let key = format!("{LOCKS_PREFIX}{}", info.id);
    let body = serde_json::to_vec(&info).expect("a lock always serializes");
    backend
        .put(&key, Bytes::from(body), PutMode::CreateOnly)
        .await?;
    // Someone may have taken a conflicting lock between our check and our write.
    if let Some(holder) = conflicting(backend, kind, Some(&info.id)).await? {
        let _ = backend.delete(&key).await;
        return Err(locked_by(&holder));
    }
    let state = Arc::new(LockState {
        key: key.clone(),
        refreshed: Mutex::new(now),
        lost: Mutex::new(None),
    });
    let refresher = tokio::spawn(refresh(
        Arc::clone(backend),
        info.clone(),
        Arc::clone(&state),
    ));
    Ok(LockGuard {
        backend: Arc::clone(backend),
        info,
        state,
        refresher,
    })
}

async fn refresh(backend: DynBackend, mut info: LockInfo, state: Arc<LockState>) {
    let key = state.key.clone();
    loop {
        tokio::time::sleep(REFRESH_EVERY).await;
        let lost = |why: String| {
            *state.lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        };
        match backend.head(&key).await {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {
                lost("it was removed by another process".into());
                return;
            }
            Err(e) => {
                tracing::warn!("could not check the vault lock {key}: {e}");
                continue;
            }
        }
        info.refreshed = crate::time::now_millis();
        let body = serde_json::to_vec(&info).expect("a lock always serializes");
        match backend
            .put(&key, Bytes::from(body), PutMode::Overwrite)
            .await
        {
            Ok(()) => *state.refreshed.lock().unwrap_or_else(|p| p.into_inner()) = info.refreshed,
            // The next round tries again; `check` fails once the lock is too old.
            Err(e) => tracing::warn!("could not refresh the vault lock {key}: {e}"),
        }
    }
}

/// Takes a `kind` lock for `command`, retrying with backoff for up to `wait` while another
/// process holds a conflicting one; then fails with `Locked`, naming the holder.
pub async fn acquire(
    backend: &DynBackend,
    kind: LockKind,
    command: &str,
    wait: Duration,
) -> Result<LockGuard> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut pause = Duration::from_millis(50);
    loop {
        match try_acquire(backend, kind, command).await {
            Err(e) if e.kind() == ErrorKind::Locked && tokio::time::Instant::now() < deadline => {
                let jitter = Duration::from_millis(rand::random::<u64>() % 50);
                tokio::time::sleep((pause + jitter).min(deadline - tokio::time::Instant::now()))
                    .await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}

/// Removes stale locks (or, with `all`, every lock) and returns what was removed. A lock object
/// that cannot be read is removed with `all`, or once it is older than the stale limit.
pub async fn remove(backend: &DynBackend, all: bool) -> Result<Vec<LockInfo>> {
    let now = SystemTime::now();
    let metas: Vec<crate::backend::ObjectMeta> = backend.list(LOCKS_PREFIX).try_collect().await?;
    let mut removed = Vec::new();
    for meta in metas {
        let info = match read_lock(backend, &meta.key).await {
            Ok(raw) => serde_json::from_slice::<LockInfo>(&raw).ok(),
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let doomed = match &info {
            Some(info) => all || info.stale_reason(now).is_some(),
            None => {
                all || meta
                    .modified
                    .is_some_and(|m| now.duration_since(m).unwrap_or_default() > STALE_AFTER)
            }
        };
        if !doomed {
            continue;
        }
        match backend.delete(&meta.key).await {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => removed.push(info.unwrap_or_else(|| unreadable(&meta.key))),
        }
    }
    Ok(removed)
}

/// Stands in for a lock object that could not be parsed, so it can still be reported.
fn unreadable(key: &str) -> LockInfo {
    LockInfo {
        id: key.strip_prefix(LOCKS_PREFIX).unwrap_or(key).to_owned(),
        kind: LockKind::Shared,
        host: "unknown (unreadable lock)".into(),
        pid: 0,
        command: "?".into(),
        since: SystemTime::UNIX_EPOCH,
        refreshed: SystemTime::UNIX_EPOCH,
        process_start: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::memory::MemoryBackend;

    fn backend() -> DynBackend {
        Arc::new(MemoryBackend::new())
    }

    #[tokio::test]
    async fn shared_locks_coexist_and_exclude_an_exclusive_one() {
        let b = backend();
        let w1 = acquire(&b, LockKind::Shared, "put", Duration::ZERO)
            .await
            .unwrap();
        let w2 = acquire(&b, LockKind::Shared, "rm", Duration::ZERO)
            .await
            .unwrap();
        let err = acquire(&b, LockKind::Exclusive, "gc", Duration::ZERO)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Locked);
        assert!(err.message().contains("pid"), "{err}");
        w1.release().await.unwrap();
        w2.release().await.unwrap();
        let gc = acquire(&b, LockKind::Exclusive, "gc", Duration::ZERO)
            .await
            .unwrap();
        let err = acquire(&b, LockKind::Shared, "put", Duration::ZERO)
            .await
            .unwrap_err();
        assert!(
            err.message().contains("exclusive lock of `ldv gc`"),
            "{err}"
        );
        gc.release().await.unwrap();
        assert!(list(&b).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_waiting_writer_gets_the_lock_when_it_is_released() {
        let b = backend();
        let gc = acquire(&b, LockKind::Exclusive, "gc", Duration::ZERO)
            .await
            .unwrap();
        let b2 = Arc::clone(&b);
        let waiter = tokio::spawn(async move {
            acquire(&b2, LockKind::Shared, "put", Duration::from_secs(10)).await
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        gc.release().await.unwrap();
        waiter.await.unwrap().unwrap().release().await.unwrap();
    }

    #[tokio::test]
    async fn stale_locks_are_ignored_and_removed_by_unlock() {
        let b = backend();
        let old = crate::time::now_millis() - STALE_AFTER - Duration::from_secs(60);
        let dead = LockInfo {
            id: "x".into(),
            kind: LockKind::Exclusive,
            host: "elsewhere".into(),
            pid: 1,
            command: "gc".into(),
            since: old,
            refreshed: old,
            process_start: None,
        };
        let gone = LockInfo {
            id: "y".into(),
            host: this_host(),
            pid: u32::MAX - 1,
            refreshed: crate::time::now_millis(),
            ..dead.clone()
        };
        for info in [&dead, &gone] {
            let key = format!("{LOCKS_PREFIX}{}", info.id);
            let body = Bytes::from(serde_json::to_vec(info).unwrap());
            b.put(&key, body, PutMode::CreateOnly).await.unwrap();
        }
        let w = acquire(&b, LockKind::Shared, "put", Duration::ZERO)
            .await
            .unwrap();
        let removed = remove(&b, false).await.unwrap();
        assert_eq!(removed.len(), 2);
        assert_eq!(list(&b).await.unwrap().len(), 1);
        w.release().await.unwrap();
    }

    #[test]
    fn a_lock_whose_pid_was_reused_is_stale() {
        let now = crate::time::now_millis();
        let mine = LockInfo {
            id: "z".into(),
            kind: LockKind::Shared,
            host: this_host(),
            pid: std::process::id(),
            command: "put".into(),
            since: now,
            refreshed: now,
            process_start: process_start(std::process::id()),
        };
        assert_eq!(mine.stale_reason(SystemTime::now()), None);
        let reused = LockInfo {
            process_start: mine.process_start.map(|t| t + 1),
            ..mine.clone()
        };
        assert!(reused.stale_reason(SystemTime::now()).is_some());
        // Locks written before the start time was recorded are judged by the pid alone.
        let legacy = LockInfo {
            process_start: None,
            ..mine
        };
        assert_eq!(legacy.stale_reason(SystemTime::now()), None);
    }

    /// A lock claiming a refresh far in the future (a live pid, another host) used to hold the
    /// vault until that date; past the stale limit ahead of this clock it is stale.
    #[test]
    fn a_lock_refreshed_far_in_the_future_is_stale() {
        let now = SystemTime::now();
        let far = LockInfo {
            id: "f".into(),
            kind: LockKind::Exclusive,
            host: "elsewhere".into(),
            pid: 1,
            command: "gc".into(),
            since: now,
            refreshed: now + Duration::from_secs(365 * 24 * 3600),
            process_start: None,
        };
        assert!(far.stale_reason(now).is_some());
        let skewed = LockInfo {
            refreshed: now + Duration::from_secs(60),
            ..far
        };
        assert_eq!(skewed.stale_reason(now), None);
    }

    #[test]
    fn a_lock_that_was_lost_refuses_commits() {
        let state = LockState {
            key: "locks/x".into(),
            refreshed: Mutex::new(SystemTime::now()),
            lost: Mutex::new(None),
        };
        assert!(state.check().is_ok());
        *state.refreshed.lock().unwrap() = SystemTime::now() - STALE_AFTER;
        assert_eq!(state.check().unwrap_err().kind(), ErrorKind::Locked);
        *state.refreshed.lock().unwrap() = SystemTime::now();
        *state.lost.lock().unwrap() = Some("removed".into());
        assert_eq!(state.check().unwrap_err().kind(), ErrorKind::Locked);
    }
}
