//! The profile file (`config.toml`): parsing with every unknown key refused and named with its
//! file and line, human-readable sizes, and the check that sections whose feature this build does
//! not have are refused rather than silently ignored. Turning a profile into settings happens in
//! `cli::settings`; the library only sees the typed result.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::backend::local::LocalConfig;
use crate::error::{Error, Result};
use crate::store::chunker::{self, ChunkerConfig};

/// A byte size written as an integer or a string such as `"4MiB"` or `"1.5 GB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Size;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a size such as 4194304 or \"4MiB\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Size, E> {
                Ok(Size(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Size, E> {
                u64::try_from(v)
                    .map(Size)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Size, E> {
                parse_size(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A secret from the profile (a key or password): its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for handing to the library that needs it (never for printing).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Serde helper: durations written as human-readable strings such as `"100ms"` or `"20s"`.
pub mod duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    /// Reads a duration string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(s.trim()).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid duration {s:?} ({e}); expected e.g. \"100ms\", \"20s\""
            ))
        })
    }
}

/// Parses a human-readable size such as `4MiB`, `1.5 GB` or `4096`.
pub fn parse_size(s: &str) -> std::result::Result<Size, String> {
    s.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| Size(b.as_u64()))
        .map_err(|_| format!("invalid size {s:?} (expected e.g. 4096, \"4MiB\" or \"1.5GB\")"))
}

/// The whole profile file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// Profile used when none is named.
    pub default_profile: Option<String>,
    /// Named profiles.
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// One profile: where the vault lives and how to use it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The storage backend.
    pub backend: Option<Spanned<BackendSpec>>,
    /// How files are chunked.
    pub chunking: Option<ChunkingSpec>,
    /// Transfer settings.
    pub transfer: Option<TransferSpec>,
    /// Client-side compression (not in this build).
    pub compression: Option<Spanned<toml::Value>>,
    /// Client-side encryption (not in this build).
    pub encryption: Option<Spanned<toml::Value>>,
    /// Local cache (not in this build).
    pub cache: Option<Spanned<toml::Value>>,
    /// Retry policy.
    pub retry: Option<crate::backend::layer::RetryPolicy>,
    /// Connect, read and write time limits for network backends.
    pub timeouts: Option<crate::backend::s3::TimeoutConfig>,
}

/// The `backend` table of a profile, selected by its `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum BackendSpec {
    /// A directory on this machine.
    Local(LocalConfig),
    /// Amazon S3 or a compatible store.
    S3(crate::backend::s3::S3Config),
    /// MinIO (S3 with path-style addressing).
    Minio(crate::backend::s3::MinioConfig),
    /// Azure Blob Storage (not in this build).
    Azure(toml::Table),
    /// Google Cloud Storage (not in this build).
    Gcs(toml::Table),
}

/// The `chunking` table of a profile.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(tag = "mode", rename_all = "lowercase", deny_unknown_fields)]
pub enum ChunkingSpec {
    /// Content-defined chunking.
    Cdc {
        /// Smallest chunk (default 1 MiB).
        min: Option<Size>,
        /// Average chunk (default 4 MiB).
        avg: Option<Size>,
        /// Largest chunk (default 16 MiB).
        max: Option<Size>,
    },
    /// Fixed-size chunking.
    Fixed {
        /// Chunk size (default 64 MiB).
        size: Option<Size>,
        /// Inputs below this stay one chunk (default 128 MiB).
        min_chunk_threshold: Option<Size>,
    },
}

impl ChunkingSpec {
    /// The chunker this table describes, with defaults filled in and ranges checked.
    pub fn to_config(&self) -> Result<ChunkerConfig> {
        let fit = |s: Option<Size>, default: u32, what: &str| -> Result<u32> {
            match s {
                None => Ok(default),
                Some(Size(v)) => u32::try_from(v)
                    .map_err(|_| Error::config(format!("chunking.{what} {v} is too large"))),
            }
        };
        let config = match *self {
            Self::Cdc { min, avg, max } => ChunkerConfig::Cdc {
                min: fit(min, chunker::CDC_MIN, "min")?,
                avg: fit(avg, chunker::CDC_AVG, "avg")?,
                max: fit(max, chunker::CDC_MAX, "max")?,
            },
            Self::Fixed {
                size,
                min_chunk_threshold,
            } => ChunkerConfig::Fixed {
                size: size.map_or(chunker::FIXED_SIZE, |s| s.0),
                min_chunk_threshold: min_chunk_threshold.map_or(chunker::FIXED_THRESHOLD, |s| s.0),
            },
        };
        config.validate()?;
        Ok(config)
    }
}

/// The `transfer` table of a profile.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferSpec {
    /// Chunks (and small files) in flight at once (default 8).
    pub parallel: Option<usize>,
}

/// A parsed profile file and where it came from, for error messages.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The file read.
    pub path: PathBuf,
    /// Its text, for turning spans into line numbers.
    pub text: String,
    /// The parsed content.
    pub file: ConfigFile,
}

impl LoadedConfig {
    /// Reads and parses `path`; errors name the file, line and key.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io("read config", path.display(), e))
            .map_err(|e| {
                if e.kind() == crate::ErrorKind::NotFound {
                    Error::config(format!("config file {} not found", path.display()))
                } else {
                    e
                }
            })?;
        let loaded = Self::parse(path, text)?;
        loaded.warn_if_secrets_are_exposed();
        Ok(loaded)
    }

    /// Whether any profile holds a secret (a key or password) in the file itself.
    pub fn holds_secrets(&self) -> bool {
        self.file
            .profiles
            .values()
            .any(|p| match p.backend.as_ref().map(|b| b.get_ref()) {
                Some(BackendSpec::S3(c)) => {
                    c.secret_access_key.is_some() || c.session_token.is_some()
                }
                Some(BackendSpec::Minio(_)) => true,
                _ => false,
            })
    }

    /// A profile file holding a secret must be private (mode 0600); say how to fix it if not.
    fn warn_if_secrets_are_exposed(&self) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&self.path).map(|m| m.permissions().mode() & 0o777);
            if let Ok(mode) = mode {
                if mode & 0o077 != 0 && self.holds_secrets() {
                    tracing::warn!(
                        "{} holds a secret but is readable by others (mode {mode:o}); run `chmod 600 {}`",
                        self.path.display(),
                        self.path.display()
                    );
                }
            }
        }
    }

    /// Parses `text` as the content of `path`.
    pub fn parse(path: &Path, text: String) -> Result<Self> {
        let file: ConfigFile = toml::from_str(&text).map_err(|e| {
            let at = e
                .span()
                .map(|s| line_of(&text, s.start))
                .unwrap_or_default();
            let message = e.message().replace('\n', " ");
            Error::config(format!("{}{at}: {message}", path.display()))
        })?;
        let loaded = Self {
            path: path.to_owned(),
            text,
            file,
        };
        loaded.check_supported()?;
        Ok(loaded)
    }

    /// `":LINE"` for the byte offset of a span, for error messages.
    pub fn line(&self, span: Range<usize>) -> String {
        line_of(&self.text, span.start)
    }

    fn check_supported(&self) -> Result<()> {
        for (name, p) in &self.file.profiles {
            let sections = [
                ("compression", &p.compression),
                ("encryption", &p.encryption),
                ("cache", &p.cache),
            ];
            for (section, value) in sections {
                if let Some(v) = value {
                    return Err(Error::config(format!(
                        "{}{}: profile {name:?}: `{section}` is not supported yet by this ldv; remove the section",
                        self.path.display(),
                        self.line(v.span())
                    )));
                }
            }
            if let Some(b) = &p.backend {
                let checked = match b.get_ref() {
                    BackendSpec::S3(c) => c.validate(),
                    BackendSpec::Minio(c) => c.to_s3().validate(),
                    _ => Ok(()),
                };
                checked.map_err(|e| {
                    Error::config(format!(
                        "{}{}: profile {name:?}: {}",
                        self.path.display(),
                        self.line(b.span()),
                        e.message()
                    ))
                })?;
                let kind = match b.get_ref() {
                    BackendSpec::Local(_) | BackendSpec::S3(_) | BackendSpec::Minio(_) => None,
                    BackendSpec::Azure(_) => Some("azure"),
                    BackendSpec::Gcs(_) => Some("gcs"),
                };
                if let Some(kind) = kind {
                    return Err(Error::config(format!(
                        "{}{}: profile {name:?}: backend type {kind:?} is not supported yet by this ldv (supported: \"local\", \"s3\", \"minio\")",
                        self.path.display(),
                        self.line(b.span())
                    )));
                }
            }
            if let Some(c) = &p.chunking {
                c.to_config().map_err(|e| {
                    Error::config(format!(
                        "{}: profile {name:?}: {}",
                        self.path.display(),
                        e.message()
                    ))
                })?;
            }
            if let Some(r) = &p.retry {
                r.validate().map_err(|e| {
                    Error::config(format!(
                        "{}: profile {name:?}: {}",
                        self.path.display(),
                        e.message()
                    ))
                })?;
            }
            if p.transfer.and_then(|t| t.parallel) == Some(0) {
                return Err(Error::config(format!(
                    "{}: profile {name:?}: transfer.parallel must be at least 1",
                    self.path.display()
                )));
            }
        }
        if let Some(d) = &self.file.default_profile {
            if !self.file.profiles.contains_key(d) {
                return Err(Error::config(format!(
                    "{}: default_profile {d:?} names no profile in the file",
                    self.path.display()
                )));
            }
        }
        Ok(())
    }
}

fn line_of(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!(":{line}:{col}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<LoadedConfig> {
        LoadedConfig::parse(Path::new("/c/config.toml"), text.to_owned())
    }

    #[test]
    fn a_full_local_profile_parses() {
        let c = parse(
            r#"
default_profile = "lab"
[profiles.lab]
backend = { type = "local", path = "/data/vault", sync = false }
chunking = { mode = "cdc", min = "512KiB", avg = "2MiB", max = "8MiB" }
transfer = { parallel = 4 }
"#,
        )
        .unwrap();
        let p = &c.file.profiles["lab"];
        assert_eq!(
            p.chunking.unwrap().to_config().unwrap(),
            ChunkerConfig::Cdc {
                min: 512 << 10,
                avg: 2 << 20,
                max: 8 << 20
            }
        );
        assert!(matches!(p.backend.as_ref().unwrap().get_ref(), BackendSpec::Local(l) if !l.sync));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let c = parse(
            "[profiles.a]\nbackend = { type = \"s3\", bucket = \"b\", access_key_id = \"AKIAEXAMPLE\", secret_access_key = \"canary-secret-7731\" }\n",
        )
        .unwrap();
        assert!(c.holds_secrets());
        let shown = format!("{:?}", c.file);
        assert!(!shown.contains("canary-secret-7731"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = parse("[profiles.a]\nbackend = { type = \"local\", path = \"/x\" }\nbogus = 1\n")
            .unwrap_err();
        assert!(e.message().starts_with("/c/config.toml:3:1"), "{e}");
        assert!(e.message().contains("bogus"), "{e}");
        let e = parse("[profiles.a\n").unwrap_err();
        assert!(e.message().starts_with("/c/config.toml:1:"), "{e}");
        let e = parse("[profiles.a]\nencryption = { algorithm = \"aes-256-gcm\" }\n").unwrap_err();
        assert!(
            e.message().contains("not supported yet") && e.message().contains(":2:"),
            "{e}"
        );
        let e =
            parse("[profiles.a]\nbackend = { type = \"azure\", container = \"b\" }\n").unwrap_err();
        assert!(
            e.message().contains("\"azure\" is not supported yet"),
            "{e}"
        );
        let e =
            parse("[profiles.a]\nbackend = { type = \"s3\", bucket = \"b\", sse = \"rot13\" }\n")
                .unwrap_err();
        assert!(
            e.message().contains("sse") && e.message().contains(":2:"),
            "{e}"
        );
        let e = parse("[profiles.a]\nchunking = { mode = \"cdc\", max = \"1GiB\" }\n").unwrap_err();
        assert!(e.message().contains("chunking.max"), "{e}");
        let e = parse("default_profile = \"zz\"\n").unwrap_err();
        assert!(e.message().contains("zz"), "{e}");
    }
}
