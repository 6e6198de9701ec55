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

impl Drop for Secret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
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
    /// Client-side compression of chunks.
    pub compression: Option<CompressionSpec>,
    /// Client-side encryption of chunks and manifests.
    pub encryption: Option<EncryptionSpec>,
    /// Local cache (not in this build).
    pub cache: Option<Spanned<toml::Value>>,
    /// Retry policy.
    pub retry: Option<crate::backend::layer::RetryPolicy>,
    /// Connect, read and write time limits for network backends.
    pub timeouts: Option<crate::backend::s3::TimeoutConfig>,
}

/// The `compression` table of a profile (the seed's CompressionConfig).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompressionSpec {
    /// `none`, `gzip`, `zstd` or `lz4`.
    pub algorithm: crate::store::codec::Algorithm,
    /// zstd 1–22 (default 3), gzip 0–9 (default 6); lz4 has no levels.
    pub level: Option<i32>,
    /// Chunks smaller than this are stored uncompressed (default 4 KiB).
    pub min_size: Option<Size>,
}

impl CompressionSpec {
    /// The codec setting, or an error naming the bad value.
    pub fn to_config(self) -> Result<crate::store::codec::CompressionConfig> {
        let algorithm = self.algorithm;
        let level = self.level.unwrap_or_else(|| algorithm.default_level());
        if !algorithm.levels().contains(&level) {
            let levels = algorithm.levels();
            return Err(Error::config(if levels.start() == levels.end() {
                format!(
                    "compression.level: {} has no levels; remove `level`",
                    algorithm.name()
                )
            } else {
                format!(
                    "compression.level {level} is out of range for {} ({}..={})",
                    algorithm.name(),
                    levels.start(),
                    levels.end()
                )
            }));
        }
        Ok(crate::store::codec::CompressionConfig {
            algorithm,
            level,
            min_size: self.min_size.map_or(
                crate::store::codec::CompressionConfig::DEFAULT_MIN_SIZE,
                |s| s.0,
            ),
        })
    }
}

/// The `encryption` table of a profile (the seed's EncryptionConfig).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionSpec {
    /// `aes-256-gcm` (default) or `chacha20-poly1305`.
    #[serde(default = "default_cipher")]
    pub algorithm: crate::store::crypto::Cipher,
    /// Where the key comes from.
    pub key: KeySpec,
}

fn default_cipher() -> crate::store::crypto::Cipher {
    crate::store::crypto::Cipher::Aes256Gcm
}

/// Where an encryption key comes from (the seed's KeyProvider): exactly one of `env`,
/// `prompt`, `static` and `kms`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// An environment variable holding a passphrase (or, with `raw = true`, a 256-bit key).
    pub env: Option<String>,
    /// With `env`: the variable holds a raw key (64 hex digits or base64), not a passphrase.
    #[serde(default)]
    pub raw: bool,
    /// Ask for a passphrase on the terminal.
    #[serde(default)]
    pub prompt: bool,
    /// A raw key written in the profile itself (discouraged: anyone who reads the file can
    /// decrypt the vault).
    #[serde(rename = "static")]
    pub static_key: Option<Secret>,
    /// An AWS KMS key id, ARN or alias (envelope encryption).
    pub kms: Option<String>,
    /// With `kms`: the region of the key.
    pub region: Option<String>,
    /// With `kms`: the KMS endpoint URL.
    pub endpoint: Option<String>,
}

impl KeySpec {
    /// Checks that exactly one source is chosen and its options fit it.
    pub fn validate(&self) -> Result<()> {
        let sources = [
            self.env.is_some(),
            self.prompt,
            self.static_key.is_some(),
            self.kms.is_some(),
        ];
        match sources.iter().filter(|s| **s).count() {
            1 => {}
            0 => {
                return Err(Error::config(
                    "encryption.key names no key source; set one of env, prompt, static or kms",
                ));
            }
            _ => {
                return Err(Error::config(
                    "encryption.key names several key sources; set exactly one of env, prompt, static or kms",
                ));
            }
        }
        if self.raw && self.env.is_none() {
            return Err(Error::config("encryption.key.raw applies only with `env`"));
        }
        if (self.region.is_some() || self.endpoint.is_some()) && self.kms.is_none() {
            return Err(Error::config(
                "encryption.key.region and .endpoint apply only with `kms`",
            ));
        }
        if let Some(var) = &self.env
            && (var.is_empty() || var.contains('='))
        {
            return Err(Error::config(format!(
                "encryption.key.env {var:?} is not an environment variable name"
            )));
        }
        Ok(())
    }
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
    /// Azure Blob Storage.
    Azure(crate::backend::azure::AzureConfig),
    /// Google Cloud Storage.
    Gcs(crate::backend::gcs::GcsConfig),
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
                Some(BackendSpec::Azure(c)) => c.holds_secrets(),
                _ => false,
            } || p
                .encryption
                .as_ref()
                .is_some_and(|e| e.key.static_key.is_some()))
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
            let sections = [("cache", &p.cache)];
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
                    BackendSpec::Azure(c) => c.validate(),
                    BackendSpec::Gcs(c) => c.validate(),
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
            }
            let in_profile = |e: Error| {
                Error::config(format!(
                    "{}: profile {name:?}: {}",
                    self.path.display(),
                    e.message()
                ))
            };
            if let Some(c) = p.compression {
                c.to_config().map_err(in_profile)?;
            }
            if let Some(e) = &p.encryption {
                e.key.validate().map_err(in_profile)?;
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
        let e = parse("[profiles.a]\ncache = { max_size = \"1GiB\" }\n").unwrap_err();
        assert!(
            e.message().contains("not supported yet") && e.message().contains(":2:"),
            "{e}"
        );
        let e = parse("[profiles.a]\nencryption = { algorithm = \"aes-256-gcm\" }\n").unwrap_err();
        assert!(
            e.message().contains("missing field `key`") && e.message().contains(":2:"),
            "{e}"
        );
        let e =
            parse("[profiles.a]\nencryption = { algorithm = \"des\", key = { prompt = true } }\n")
                .unwrap_err();
        assert!(
            e.message().contains("des") && e.message().contains(":2:"),
            "{e}"
        );
        for (key, needle) in [
            ("{}", "names no key source"),
            ("{ env = \"A\", prompt = true }", "several key sources"),
            (
                "{ prompt = true, raw = true }",
                "raw applies only with `env`",
            ),
            ("{ env = \"A\", region = \"x\" }", "apply only with `kms`"),
        ] {
            let e = parse(&format!("[profiles.a]\nencryption = {{ key = {key} }}\n")).unwrap_err();
            assert!(
                e.message().contains(needle) && e.message().contains("profile \"a\""),
                "{key}: {e}"
            );
        }
        for (c, needle) in [
            (
                "{ algorithm = \"zstd\", level = 30 }",
                "out of range for zstd (1..=22)",
            ),
            ("{ algorithm = \"lz4\", level = 3 }", "lz4 has no levels"),
            ("{ algorithm = \"brotli\" }", "brotli"),
        ] {
            let e = parse(&format!("[profiles.a]\ncompression = {c}\n")).unwrap_err();
            assert!(e.message().contains(needle), "{c}: {e}");
        }
        let ok = parse(
            "[profiles.a]\ncompression = { algorithm = \"zstd\", min_size = \"8KiB\" }\nencryption = { algorithm = \"chacha20-poly1305\", key = { static = \"canary-static-key\" } }\n",
        )
        .unwrap();
        let p = &ok.file.profiles["a"];
        let c = p.compression.unwrap().to_config().unwrap();
        assert_eq!((c.level, c.min_size), (3, 8192));
        assert!(ok.holds_secrets());
        assert!(!format!("{:?}", ok.file).contains("canary-static-key"));
        let e =
            parse("[profiles.a]\nbackend = { type = \"gcs\", bucket = \"b\", region = \"x\" }\n")
                .unwrap_err();
        assert!(e.message().contains("unknown field `region`"), "{e}");
        let e = parse("[profiles.a]\nbackend = { type = \"azure\", container = \"B_b\" }\n")
            .unwrap_err();
        assert!(
            e.message().contains("container name") && e.message().contains(":2:"),
            "{e}"
        );
        let ok = parse(
            "[profiles.a]\nbackend = { type = \"azure\", account_name = \"acct\", container_name = \"box\", account_key = \"canary-azure-key\" }\n",
        )
        .unwrap();
        assert!(ok.holds_secrets());
        assert!(!format!("{:?}", ok.file).contains("canary-azure-key"));
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
