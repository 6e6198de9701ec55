//! Settings resolution: flag > environment (clap reads `LDV_*`) > profile > built-in default,
//! validated once. The result is plain data the commands use; nothing below the CLI sees clap.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::backend::BackendConfig;
use crate::backend::azure::AzureConfig;
use crate::backend::gcs::GcsConfig;
use crate::backend::local::LocalConfig;
use crate::backend::s3::{S3Config, TimeoutConfig};
use crate::config::{BackendSpec, LoadedConfig, Profile};
use crate::error::{Error, Result};
use crate::store::chunker::ChunkerConfig;

use super::args::GlobalArgs;

/// Default number of chunks in flight.
pub const DEFAULT_PARALLEL: usize = 8;

/// How output should look.
#[derive(Debug, Clone, Copy)]
pub struct OutputSettings {
    /// One JSON document on stdout.
    pub json: bool,
    /// Errors only.
    pub quiet: bool,
    /// Verbosity level (0 = warnings).
    pub verbose: u8,
    /// Show progress bars.
    pub progress: bool,
    /// Assume yes at confirmations.
    pub yes: bool,
    /// Stdin and stderr are terminals, so questions can be asked.
    pub interactive: bool,
    /// Print counters on stderr when done.
    pub stats: bool,
}

/// Where the vault is and how it was chosen.
#[derive(Debug, Clone)]
pub struct VaultLocation {
    /// The backend to build.
    pub backend: BackendConfig,
    /// The built-in default vault in the user's data directory (created on first use).
    pub embedded_default: bool,
}

/// Everything a command needs, resolved and checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Output behaviour.
    pub output: OutputSettings,
    /// Chunks (and small files) in flight.
    pub parallel: usize,
    /// The vault.
    pub location: VaultLocation,
    /// The profile's chunking, if it sets one (else the vault's default applies).
    pub chunker: Option<ChunkerConfig>,
    /// The config file in effect or where a new one would be written.
    pub config_path: PathBuf,
    /// The profile in use, if any.
    pub profile: Option<String>,
    /// How long to wait for a conflicting vault lock.
    pub lock_wait: std::time::Duration,
    /// How backend calls are retried.
    pub retry: crate::backend::layer::RetryPolicy,
    /// Network time limits.
    pub timeouts: TimeoutConfig,
    /// Compression of chunks written.
    pub compression: crate::store::codec::CompressionConfig,
    /// Whether the profile chose the compression (else a format-2 vault compresses with zstd).
    pub compression_chosen: bool,
    /// The profile's encryption, if it has one.
    pub encryption: Option<crate::config::EncryptionSpec>,
    /// The format of a vault created now: `LDV_VAULT_FORMAT` (1 or 2), else the newest.
    pub vault_format: u32,
    /// Where copies of a remote vault's index are kept: `$LDV_CACHE_DIR/index`, else the
    /// user's cache directory; `None` for a local vault, which needs no copy.
    pub index_cache: Option<PathBuf>,
}

/// The format of vaults created now, from `LDV_VAULT_FORMAT`.
fn vault_format() -> Result<u32> {
    match std::env::var("LDV_VAULT_FORMAT") {
        Err(_) => Ok(crate::store::VAULT_FORMAT),
        Ok(v) => match v.trim().parse::<u32>() {
            Ok(f) if f == crate::store::VAULT_FORMAT || f == crate::store::FORMAT_1 => Ok(f),
            _ => Err(Error::config(format!(
                "LDV_VAULT_FORMAT={v:?}: the vault formats are {} and {}",
                crate::store::FORMAT_1,
                crate::store::VAULT_FORMAT
            ))),
        },
    }
}

/// The directory of local index copies for the vault at `backend`.
fn index_cache(backend: &BackendConfig) -> Option<PathBuf> {
    if matches!(backend, BackendConfig::Local(_)) {
        return None;
    }
    let base = match std::env::var_os("LDV_CACHE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => project_dirs().ok()?.cache_dir().to_path_buf(),
    };
    Some(base.join("index"))
}

/// The default config file path: `$XDG_CONFIG_HOME/ldv/config.toml` or the platform equivalent.
pub fn default_config_path() -> Result<PathBuf> {
    Ok(project_dirs()?.config_dir().join("config.toml"))
}

/// The embedded default vault: `$XDG_DATA_HOME/ldv/vault` or the platform equivalent.
pub fn default_vault_path() -> Result<PathBuf> {
    Ok(project_dirs()?.data_dir().join("vault"))
}

fn project_dirs() -> Result<directories::ProjectDirs> {
    directories::ProjectDirs::from("", "", "ldv").ok_or_else(|| {
        Error::config("cannot find a home directory for the default config and vault; set HOME or use --vault")
    })
}

/// Parses a vault URL: `file:///abs/path` or a plain path; cloud schemes are not in this build.
pub fn parse_vault_url(url: &str) -> Result<BackendConfig> {
    if let Some((scheme, _)) = url.split_once("://") {
        return match scheme {
            "file" => {
                let path = &url["file://".len()..];
                if !path.starts_with('/') {
                    return Err(Error::config(format!(
                        "vault URL {url:?}: file URLs need an absolute path (file:///path)"
                    )));
                }
                Ok(BackendConfig::Local(LocalConfig::new(path)))
            }
            "s3" => {
                let rest = &url["s3://".len()..];
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(Error::config(format!(
                        "vault URL {url:?}: no bucket (s3://bucket/prefix)"
                    )));
                }
                Ok(BackendConfig::S3(Box::new(S3Config::from_url(
                    bucket, prefix,
                ))))
            }
            "az" => {
                let rest = &url["az://".len()..];
                let (container, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if container.is_empty() {
                    return Err(Error::config(format!(
                        "vault URL {url:?}: no container (az://container/prefix)"
                    )));
                }
                let config = AzureConfig::from_url(container, prefix);
                config
                    .validate()
                    .map_err(|e| e.context(format!("vault URL {url:?}")))?;
                Ok(BackendConfig::Azure(Box::new(config)))
            }
            "gs" => {
                let rest = &url["gs://".len()..];
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                if bucket.is_empty() {
                    return Err(Error::config(format!(
                        "vault URL {url:?}: no bucket (gs://bucket/prefix)"
                    )));
                }
                let config = GcsConfig::from_url(bucket, prefix);
                config
                    .validate()
                    .map_err(|e| e.context(format!("vault URL {url:?}")))?;
                Ok(BackendConfig::Gcs(Box::new(config)))
            }
            _ => Err(Error::config(format!(
                "vault URL {url:?}: unknown scheme {scheme:?} (supported: file://, s3://, az://, gs://)"
            ))),
        };
    }
    if url.is_empty() {
        return Err(Error::config("vault URL is empty"));
    }
    let path = Path::new(url);
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io("read current directory", ".", e))?
            .join(path)
    };
    Ok(BackendConfig::Local(LocalConfig::new(abs)))
}

impl Settings {
    /// Resolves the global flags, the environment and the profile file into settings.
    /// `creates_config`: the command writes the config file (`init --save-profile`), so one
    /// named with `--config` need not exist yet.
    pub fn resolve(global: &GlobalArgs, creates_config: bool) -> Result<Self> {
        let (config_path, explicit_config) = match &global.config {
            Some(p) => (p.clone(), true),
            None => (default_config_path()?, false),
        };
        let loaded = match LoadedConfig::read(&config_path)? {
            Some(loaded) => Some(loaded),
            // The default file is optional. A named one that does not exist yet is where
            // `init --save-profile` writes; for any other command it is a typo.
            None if !explicit_config || (creates_config && global.profile.is_none()) => None,
            None => {
                return Err(Error::config(format!(
                    "config file {} not found",
                    config_path.display()
                )));
            }
        };
        let profile_name = global
            .profile
            .clone()
            .or_else(|| loaded.as_ref().and_then(|c| c.file.default_profile.clone()));
        let profile: Option<&Profile> = match (&profile_name, &loaded) {
            (None, _) => None,
            (Some(name), Some(c)) => Some(c.file.profiles.get(name).ok_or_else(|| {
                let known: Vec<&str> = c.file.profiles.keys().map(String::as_str).collect();
                Error::config(format!(
                    "unknown profile {name:?} in {} (known: {})",
                    c.path.display(),
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                ))
            })?),
            (Some(name), None) => {
                return Err(Error::config(format!(
                    "unknown profile {name:?}: there is no config file at {}",
                    config_path.display()
                )));
            }
        };

        let location = match (&global.vault, profile) {
            (Some(url), _) => VaultLocation {
                backend: parse_vault_url(url)?,
                embedded_default: false,
            },
            (None, Some(p)) => match &p.backend {
                Some(spec) => VaultLocation {
                    backend: backend_of(spec.get_ref(), &config_path),
                    embedded_default: false,
                },
                // Falling back to the embedded default would write where the user did not ask.
                None => {
                    let name = profile_name.as_deref().unwrap_or_default();
                    let at = loaded
                        .as_ref()
                        .map(|c| c.locate(&["profiles", name]))
                        .unwrap_or_default();
                    return Err(Error::config(format!(
                        "{}{at}: profile {name:?} has no backend; add one (e.g. `backend = {{ type = \"local\", path = \"/data/vault\" }}`) or name the vault with --vault",
                        config_path.display()
                    )));
                }
            },
            (None, None) => VaultLocation {
                backend: BackendConfig::Local(LocalConfig::new(default_vault_path()?)),
                embedded_default: true,
            },
        };

        let chunker = profile
            .and_then(|p| p.chunking)
            .map(|c| c.to_config())
            .transpose()?;
        let parallel = global
            .parallel
            .map(usize::from)
            .or_else(|| profile.and_then(|p| p.transfer).and_then(|t| t.parallel))
            .unwrap_or(DEFAULT_PARALLEL);

        let stderr_tty = std::io::stderr().is_terminal();
        let output = OutputSettings {
            json: global.json,
            quiet: global.quiet,
            verbose: global.verbose,
            progress: stderr_tty
                && !global.quiet
                && !global.json
                && global.verbose == 0
                && !global.no_progress,
            yes: global.yes,
            interactive: stderr_tty && std::io::stdin().is_terminal(),
            stats: global.stats,
        };
        Ok(Self {
            output,
            parallel,
            chunker,
            config_path,
            profile: profile_name,
            lock_wait: global.lock_wait,
            retry: profile.and_then(|p| p.retry.clone()).unwrap_or_default(),
            timeouts: profile.and_then(|p| p.timeouts).unwrap_or_default(),
            compression: profile
                .and_then(|p| p.compression)
                .map(|c| c.to_config())
                .transpose()?
                .unwrap_or(crate::store::codec::CompressionConfig::NONE),
            compression_chosen: profile.and_then(|p| p.compression).is_some(),
            encryption: profile.and_then(|p| p.encryption.clone()),
            vault_format: vault_format()?,
            index_cache: index_cache(&location.backend),
            location,
        })
    }
}

/// The backend a profile's `backend` table names; a relative local path is relative to the
/// profile file at `config_path`.
fn backend_of(spec: &BackendSpec, config_path: &Path) -> BackendConfig {
    match spec {
        BackendSpec::Local(c) => {
            let mut c = c.clone();
            if !c.path.is_absolute() {
                let base = config_path.parent().unwrap_or(Path::new("/"));
                c.path = base.join(&c.path);
            }
            BackendConfig::Local(c)
        }
        BackendSpec::S3(c) => BackendConfig::S3(Box::new(c.clone())),
        BackendSpec::Minio(c) => BackendConfig::S3(Box::new(c.to_s3())),
        BackendSpec::Azure(c) => BackendConfig::Azure(Box::new(c.clone())),
        BackendSpec::Gcs(c) => BackendConfig::Gcs(Box::new(c.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_urls_are_parsed_or_refused_clearly() {
        assert_eq!(
            parse_vault_url("file:///tmp/v").unwrap(),
            BackendConfig::Local(LocalConfig::new("/tmp/v"))
        );
        assert_eq!(
            parse_vault_url("az://box/team/a").unwrap(),
            BackendConfig::Azure(Box::new(AzureConfig::from_url("box", "team/a")))
        );
        assert!(matches!(
            parse_vault_url("gs://bucket/team/a").unwrap(),
            BackendConfig::Gcs(c) if c.bucket == "bucket"
        ));
        for (url, needle) in [
            ("gs://", "no bucket"),
            ("az://", "no container"),
            ("az://Not_Valid/p", "container name"),
            ("s3://", "no bucket"),
            ("file://rel", "absolute"),
            ("ftp://x", "unknown scheme"),
            ("", "empty"),
        ] {
            let e = parse_vault_url(url).unwrap_err();
            assert!(e.message().contains(needle), "{url}: {e}");
        }
    }
}
