//! The one error type of the ldv library: every failure carries a kind (the seed's
//! `StorageErrorKind`), the object or path it concerns, and whether retrying can help.
//! Exit codes are not decided here but in `cli::exit`, from `Error::kind`.

use std::fmt;
use std::time::Duration;

/// Result alias used throughout the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, coarsely: the classification that survives across every backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The object, version, vault or file does not exist.
    NotFound,
    /// The backend or the operating system refused access.
    PermissionDenied,
    /// A name or storage key is not valid.
    InvalidKey,
    /// Stored data does not match its checksum: corruption was detected.
    IntegrityCheckFailed,
    /// The network failed (connection reset, refused, DNS).
    NetworkError,
    /// The backend failed for another reason.
    BackendError,
    /// The profile, flags or vault descriptor are wrong or unsupported.
    ConfigurationError,
    /// A stored document could not be encoded or decoded.
    SerializationError,
    /// The chunker was given parameters or input it cannot handle.
    ChunkingError,
    /// The local cache failed.
    CacheError,
    /// The backend refused the write for lack of space or quota.
    QuotaExceeded,
    /// An operation did not complete within its time limit.
    Timeout,
    /// A create-only write found the key already present.
    Conflict,
    /// The vault is locked by another process.
    Locked,
}

/// A library error: a kind, a one-line message naming what and where, and an optional source.
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    retry_after: Option<Duration>,
    transient: bool,
}

impl Error {
    /// Builds an error of `kind` with a message that names what failed and where.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
            retry_after: None,
            transient: matches!(kind, ErrorKind::NetworkError | ErrorKind::Timeout),
        }
    }

    /// A missing object, version or file.
    pub fn not_found(what: impl fmt::Display) -> Self {
        Self::new(ErrorKind::NotFound, format!("{what}: not found"))
    }

    /// A configuration or usage problem.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ConfigurationError, message)
    }

    /// Detected corruption of `what`.
    pub fn integrity(what: impl fmt::Display, detail: impl fmt::Display) -> Self {
        Self::new(
            ErrorKind::IntegrityCheckFailed,
            format!("integrity check failed for {what}: {detail}"),
        )
    }

    /// An invalid name or key.
    pub fn invalid_key(key: &str, reason: impl fmt::Display) -> Self {
        Self::new(
            ErrorKind::InvalidKey,
            format!("invalid name {key:?}: {reason}"),
        )
    }

    /// Maps an I/O error on `path` while doing `op`, keeping not-found and permission kinds.
    pub fn io(op: &str, path: impl fmt::Display, err: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match err.kind() {
            K::NotFound => ErrorKind::NotFound,
            K::PermissionDenied | K::ReadOnlyFilesystem => ErrorKind::PermissionDenied,
            K::StorageFull | K::QuotaExceeded | K::FileTooLarge => ErrorKind::QuotaExceeded,
            K::TimedOut => ErrorKind::Timeout,
            K::ConnectionReset
            | K::ConnectionRefused
            | K::ConnectionAborted
            | K::BrokenPipe
            | K::NotConnected => ErrorKind::NetworkError,
            K::AlreadyExists => ErrorKind::Conflict,
            _ => ErrorKind::BackendError,
        };
        let reason = err.to_string();
        Self::new(kind, format!("{op} {path}: {reason}")).with_source(err)
    }

    /// Attaches the underlying cause (kept out of the one-line message).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Marks how long the server asked us to wait before retrying.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self.transient = true;
        self
    }

    /// Marks the error as transient (worth retrying) or not, whatever its kind.
    pub fn with_transient(mut self, transient: bool) -> Self {
        self.transient = transient;
        self
    }

    /// Prefixes the message with more context, e.g. the operation or object name.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The coarse classification of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The one-line message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How long the server asked to wait, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whether repeating the same request may succeed.
    pub fn is_retryable(&self) -> bool {
        self.transient
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.kind)
            .field("message", &self.message)
            .field("retryable", &self.transient)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_keep_their_kind() {
        let e = Error::io(
            "open",
            "/x",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(!e.is_retryable());
        let e = Error::io(
            "open",
            "/x",
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        );
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        let e = Error::io(
            "read",
            "/x",
            std::io::Error::from(std::io::ErrorKind::ConnectionReset),
        );
        assert!(e.is_retryable());
    }
}
