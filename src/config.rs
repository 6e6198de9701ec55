//! The profile file (`config.toml`): parsing with every unknown key, malformed value and value
//! out of range refused and named with its file, line and key, human-readable sizes, and the check
//! that sections whose feature this build does not have are refused rather than silently ignored.
//! Turning a profile into settings happens in `cli::settings`; the library only sees the typed
//! result.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

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

/// Parses a human-readable size such as `4MiB`, `1.5 GB` or `4096`; a size beyond 64 bits is
/// refused as too large rather than clamped.
pub fn parse_size(s: &str) -> std::result::Result<Size, String> {
    let invalid = || format!("invalid size {s:?} (expected e.g. 4096, \"4MiB\" or \"1.5GB\")");
    let too_large = || format!("{s:?} is too large");
    let text = s.trim();
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(end);
    let unit = match unit.trim_start() {
        "" => bytesize::Unit::Byte,
        u => u.parse::<bytesize::Unit>().map_err(|_| invalid())?,
    };
    // bytesize saturates on overflow and shows a unit's factor only through arithmetic.
    let factor: u64 = unit * 1;
    if !number.contains('.') {
        let n = number.parse::<u64>().map_err(|e| match e.kind() {
            std::num::IntErrorKind::PosOverflow => too_large(),
            _ => invalid(),
        })?;
        return n.checked_mul(factor).map(Size).ok_or_else(too_large);
    }
    let bytes = number.parse::<f64>().map_err(|_| invalid())? * factor as f64;
    // `u64::MAX as f64` is 2^64, the first value that does not fit.
    if bytes >= u64::MAX as f64 {
        return Err(too_large());
    }
    Ok(Size(bytes as u64))
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
#[serde(deny_unknown_fields, expecting = "a table of profile settings")]
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
#[serde(
    deny_unknown_fields,
    expecting = "a table such as { algorithm = \"zstd\", level = 3 }"
)]
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
#[serde(
    deny_unknown_fields,
    expecting = "a table such as { algorithm = \"aes-256-gcm\", key = { ... } }"
)]
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
#[serde(deny_unknown_fields, expecting = "a table naming a key source")]
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
#[serde(
    tag = "type",
    rename_all = "lowercase",
    expecting = "a table such as { type = \"local\", path = \"/data/vault\" }"
)]
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
// Read through a plain struct: serde buffers an internally tagged enum, which loses where each
// value was written and so which key a refused value (`size = "99999PiB"`) belongs to.
#[serde(try_from = "ChunkingTable")]
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

/// The `chunking` table as written, before its keys are checked against its `mode`.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a table such as { mode = \"cdc\", avg = \"4MiB\" }"
)]
struct ChunkingTable {
    mode: ChunkingMode,
    min: Option<Size>,
    avg: Option<Size>,
    max: Option<Size>,
    size: Option<Size>,
    min_chunk_threshold: Option<Size>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum ChunkingMode {
    Cdc,
    Fixed,
}

impl TryFrom<ChunkingTable> for ChunkingSpec {
    type Error = String;

    fn try_from(t: ChunkingTable) -> std::result::Result<Self, String> {
        let refuse = |keys: &[(&str, bool)], mode: &str| match keys.iter().find(|(_, set)| *set) {
            Some((key, _)) => Err(format!("`{key}` applies only with mode = \"{mode}\"")),
            None => Ok(()),
        };
        match t.mode {
            ChunkingMode::Cdc => {
                refuse(
                    &[
                        ("size", t.size.is_some()),
                        ("min_chunk_threshold", t.min_chunk_threshold.is_some()),
                    ],
                    "fixed",
                )?;
                Ok(Self::Cdc {
                    min: t.min,
                    avg: t.avg,
                    max: t.max,
                })
            }
            ChunkingMode::Fixed => {
                refuse(
                    &[
                        ("min", t.min.is_some()),
                        ("avg", t.avg.is_some()),
                        ("max", t.max.is_some()),
                    ],
                    "cdc",
                )?;
                Ok(Self::Fixed {
                    size: t.size,
                    min_chunk_threshold: t.min_chunk_threshold,
                })
            }
        }
    }
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
#[serde(deny_unknown_fields, expecting = "a table such as { parallel = 8 }")]
pub struct TransferSpec {
    /// Chunks (and small files) in flight at once (default 8).
    pub parallel: Option<usize>,
}

impl TransferSpec {
    /// The values `parallel` may take: the same bounds as `-j/--parallel`.
    pub const PARALLEL: RangeInclusive<usize> = 1..=256;
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
        Self::read(path)?
            .ok_or_else(|| Error::config(format!("config file {} not found", path.display())))
    }

    /// Reads and parses `path`, or `None` when there is no such file; errors name the file,
    /// line and key.
    pub fn read(path: &Path) -> Result<Option<Self>> {
        let Some(text) = read_text(path)? else {
            return Ok(None);
        };
        let loaded = Self::parse(path, text)?;
        loaded.warn_if_secrets_are_exposed();
        Ok(Some(loaded))
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
            let (at, key) = match e.span() {
                Some(s) => (
                    line_of(&text, s.start),
                    key_of_value(&text, s.start)
                        .map(|key| format!("{}: ", describe(&key)))
                        .unwrap_or_default(),
                ),
                None => (String::new(), String::new()),
            };
            let message = e.message().replace('\n', " ");
            Error::config(format!("{}{at}: {key}{message}", path.display()))
        })?;
        let loaded = Self {
            path: path.to_owned(),
            text,
            file,
        };
        loaded.check_supported()?;
        Ok(loaded)
    }

    /// `":LINE:COL"` for the byte offset of a span, for error messages.
    pub fn line(&self, span: Range<usize>) -> String {
        line_of(&self.text, span.start)
    }

    /// `":LINE:COL"` of the key at `path` (e.g. `["profiles", "lab", "chunking", "max"]`), or of
    /// the deepest part of it the file writes; empty when it writes none of it.
    pub fn locate(&self, path: &[&str]) -> String {
        let Ok(root) = DeTable::parse(&self.text) else {
            return String::new();
        };
        let mut table = root.get_ref();
        let mut at = None;
        for key in path {
            let Some((k, v)) = table.get_key_value(*key) else {
                break;
            };
            at = Some(k.span().start);
            let DeValue::Table(inner) = v.get_ref() else {
                break;
            };
            table = inner;
        }
        at.map(|offset| line_of(&self.text, offset))
            .unwrap_or_default()
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
            // A check names the key it refuses first in its message (`chunking.max 1 must…`);
            // the error points at that key's line, or at its section's when the key is a default.
            let in_section = |section: &'static str| {
                move |e: Error| {
                    let key = leading_key(e.message(), section);
                    let mut path = vec!["profiles", name.as_str()];
                    path.extend(key.split('.'));
                    Error::config(format!(
                        "{}{}: profile {name:?}: {}",
                        self.path.display(),
                        self.locate(&path),
                        e.message()
                    ))
                }
            };
            if let Some(c) = p.compression {
                c.to_config().map_err(in_section("compression"))?;
            }
            if let Some(e) = &p.encryption {
                e.key.validate().map_err(in_section("encryption.key"))?;
            }
            if let Some(c) = &p.chunking {
                c.to_config().map_err(in_section("chunking"))?;
            }
            if let Some(r) = &p.retry {
                r.validate().map_err(in_section("retry"))?;
            }
            if let Some(n) = p.transfer.and_then(|t| t.parallel)
                && !TransferSpec::PARALLEL.contains(&n)
            {
                return Err(in_section("transfer")(Error::config(format!(
                    "transfer.parallel {n} must be between {} and {}",
                    TransferSpec::PARALLEL.start(),
                    TransferSpec::PARALLEL.end()
                ))));
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

/// Reads the text of the profile file at `path`, or `None` when there is no such file. A path
/// that cannot be read as a profile file (a directory, not UTF-8) is a configuration error naming
/// it; only a permission problem keeps its own kind.
pub fn read_text(path: &Path) -> Result<Option<String>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(Error::io("read config", path.display(), e));
        }
        Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => {
            return Err(Error::config(format!(
                "config file {} is a directory, not a file",
                path.display()
            )));
        }
        Err(e) => {
            return Err(Error::config(format!(
                "config file {} cannot be read: {e}",
                path.display()
            )));
        }
    };
    String::from_utf8(bytes).map(Some).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let valid = std::str::from_utf8(valid).expect("the bytes before valid_up_to are UTF-8");
        Error::config(format!(
            "{}{}: not UTF-8 text; a config file must be UTF-8",
            path.display(),
            line_of(valid, valid.len())
        ))
    })
}

/// The key a check's message starts with (`chunking.max` in `chunking.max 1 must…`) when it lies
/// in `section`, else `section` itself.
fn leading_key<'a>(message: &'a str, section: &'a str) -> &'a str {
    let first = message.split([' ', ':']).next().unwrap_or_default();
    match first.strip_prefix(section) {
        Some(rest) if rest.is_empty() || rest.starts_with('.') => first,
        _ => section,
    }
}

/// The key path of the value written at byte `offset` (a plain value holding it, or a table that
/// starts there), for naming the key of a value the parser refused; `None` when there is none.
fn key_of_value(text: &str, offset: usize) -> Option<Vec<String>> {
    fn walk(table: &DeTable<'_>, offset: usize, path: &mut Vec<String>) -> bool {
        for (key, value) in table.iter() {
            let hit = match value.get_ref() {
                DeValue::Table(inner) => {
                    path.push(key.get_ref().to_string());
                    if walk(inner, offset, path) {
                        return true;
                    }
                    path.pop();
                    value.span().start == offset
                }
                DeValue::Array(items) => items.iter().any(|item| {
                    !matches!(item.get_ref(), DeValue::Table(_) | DeValue::Array(_))
                        && item.span().contains(&offset)
                }),
                _ => value.span().contains(&offset),
            };
            if hit {
                path.push(key.get_ref().to_string());
                return true;
            }
        }
        false
    }
    let root = DeTable::parse(text).ok()?;
    let mut path = Vec::new();
    walk(root.get_ref(), offset, &mut path).then_some(path)
}

/// A key path as the user reads it: `profile "lab": chunking.size`, or `default_profile`.
fn describe(path: &[String]) -> String {
    match path {
        [profiles, name, rest @ ..] if profiles == "profiles" && !rest.is_empty() => {
            format!("profile {name:?}: {}", rest.join("."))
        }
        _ => path.join("."),
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
    fn sizes_parse_and_a_size_beyond_64_bits_is_too_large() {
        for (text, want) in [
            ("4096", 4096),
            ("4MiB", 4 << 20),
            ("4 MiB", 4 << 20),
            ("1.5GB", 1_500_000_000),
            ("4k", 4000),
            ("18446744073709551615", u64::MAX),
            ("15EiB", 15 << 60),
        ] {
            assert_eq!(parse_size(text), Ok(Size(want)), "{text}");
        }
        for text in ["16EiB", "99999PiB", "18446744073709551616", "20.5EiB"] {
            assert_eq!(
                parse_size(text),
                Err(format!("{text:?} is too large")),
                "{text}"
            );
        }
        for text in ["", "MiB", "-1", "4 parsecs", "1.2.3KiB"] {
            assert!(
                parse_size(text).unwrap_err().contains("invalid size"),
                "{text:?}"
            );
        }
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
