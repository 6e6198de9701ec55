//! Command-line syntax: clap types only, no I/O. `settings` turns these into validated settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use super::exit;

/// ldv: a data vault for datasets and model artifacts.
///
/// Stores files as content-addressed, deduplicated, verified chunks with an immutable manifest
/// per version. With no configuration, ldv uses a local vault in your data directory.
#[derive(Debug, Parser)]
#[command(name = "ldv", version, after_long_help = exit::TABLE, after_help = exit::TABLE)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Profile to use from the config file.
    #[arg(long, global = true, env = "LDV_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// Vault location, overriding the profile: file:///path (or a plain path).
    #[arg(long, global = true, env = "LDV_VAULT", value_name = "URL")]
    pub vault: Option<String>,
    /// Config file [default: $XDG_CONFIG_HOME/ldv/config.toml].
    #[arg(long, global = true, env = "LDV_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print nothing but errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log more to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Never show progress bars.
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Chunks in flight at once; small files and manifests go 16 × wider, within N × 16 MiB
    /// [default: profile, else 8].
    #[arg(short = 'j', long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallel: Option<u16>,
    /// Answer yes to confirmations (needed by rm and gc when stdin is not a terminal).
    #[arg(short = 'y', long, global = true)]
    pub yes: bool,
    /// How long to wait for a vault lock held by another process before giving up (exit 8).
    #[arg(long, global = true, value_name = "DURATION", default_value = "1m", value_parser = parse_duration)]
    pub lock_wait: std::time::Duration,
    /// Print the store and backend counters on stderr when done.
    #[arg(long, global = true)]
    pub stats: bool,
}

/// Parses a duration such as `30s`, `5m`, `24h` or `0s`.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration {s:?} ({e}); expected e.g. 30s, 5m, 24h"))
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a vault (and optionally save a profile for it).
    Init(InitArgs),
    /// Store files, directories or stdin as new versions.
    Put(PutArgs),
    /// Fetch a version to a file, a directory, or stdout (-), verified.
    Get(GetArgs),
    /// Write a version to stdout, verified.
    Cat(CatArgs),
    /// List objects and versions.
    Ls(LsArgs),
    /// Remove versions (their chunks are reclaimed by gc).
    Rm(RmArgs),
    /// Show the details of one version.
    Stat(StatArgs),
    /// Check that the backend answers and holds a readable vault.
    Health,
    /// Audit the vault: manifests, chunk presence and sizes, and optionally chunk contents.
    Verify(VerifyArgs),
    /// Show how a file would be chunked and what a put would upload, without uploading.
    Chunk(ChunkArgs),
    /// Delete chunks no version references (after a grace period).
    Gc(GcArgs),
    /// Remove stale vault locks (or all locks with --all).
    Unlock(UnlockArgs),
    /// Manage the keys of an encrypted vault (re-wraps the vault key; data is never re-encrypted).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Convert a format-1 vault to format 2 (packs and an index), in place and crash-safe.
    Migrate,
    /// Print a shell completion script.
    Completions(CompletionsArgs),
}

/// Chunking modes selectable on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ChunkingMode {
    /// Content-defined (FastCDC; min 32 KiB, avg 128 KiB, max 512 KiB; format 1: 1/4/16 MiB).
    Cdc,
    /// Fixed 64 MiB chunks; files under 128 MiB kept whole.
    Fixed,
}

/// `ldv init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Default chunking of the new vault [default: profile, else cdc].
    #[arg(long, value_enum)]
    pub chunking: Option<ChunkingMode>,
    /// Also write a profile with this name for the vault into the config file.
    #[arg(long, value_name = "NAME")]
    pub save_profile: Option<String>,
    /// Vault format: 2 (packs and an index), or 1 for vaults older ldv must read
    /// [default: LDV_VAULT_FORMAT, else 2].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=2))]
    pub format: Option<u32>,
    /// Format 2: how long gc waits between condemning data and deleting it; a put must finish
    /// within nine tenths of it [default: 24h].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub gc_grace: Option<std::time::Duration>,
    /// Format 2: the size packs are filled to before upload, 1 MiB to 128 MiB [default: 16MiB].
    #[arg(long, value_name = "SIZE", value_parser = parse_pack_size)]
    pub pack_size: Option<u64>,
}

/// Parses a pack size such as `16MiB`.
fn parse_pack_size(s: &str) -> Result<u64, String> {
    let bytes = crate::config::parse_size(s)?.0;
    if crate::store::pack::TARGET_RANGE.contains(&bytes) {
        Ok(bytes)
    } else {
        Err(format!("{s} is outside 1MiB..=128MiB"))
    }
}

/// `ldv put`.
#[derive(Debug, Args)]
pub struct PutArgs {
    /// SRC... [NAME]: files, directories, or - for stdin. In a format-2 vault a directory, or
    /// several sources, become one tree version of NAME; in a format-1 vault each file becomes
    /// a version of its own under the NAME prefix.
    #[arg(required = true, num_args = 1.., value_name = "SRC|NAME")]
    pub args: Vec<String>,
    /// Read every file of a tree again, instead of reusing the entries of files whose size,
    /// times and inode are those of the tree's previous version.
    #[arg(long)]
    pub reread: bool,
    /// MIME type to record.
    #[arg(long, value_name = "TYPE")]
    pub content_type: Option<String>,
    /// Metadata to record, KEY=VALUE (repeatable).
    #[arg(long = "meta", value_name = "KEY=VALUE", value_parser = parse_meta)]
    pub meta: Vec<(String, String)>,
}

fn parse_meta(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

/// `ldv get`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// NAME, NAME@VERSION, or a path in a tree: NAME/path, NAME@VERSION/path; a tree (or a
    /// directory in one, or a NAME with objects below NAME/) is written into a directory.
    pub object: String,
    /// Destination file or directory, or - for stdout [default: ./BASENAME].
    pub dest: Option<String>,
}

/// `ldv cat`.
#[derive(Debug, Args)]
pub struct CatArgs {
    /// NAME or NAME@VERSION.
    pub object: String,
    /// Byte range: A-B (inclusive), A- (to the end) or -N (the last N bytes).
    #[arg(long, value_name = "RANGE", allow_hyphen_values = true)]
    pub range: Option<String>,
}

/// `ldv ls`.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only names starting with this prefix.
    pub prefix: Option<String>,
    /// Show size, time, chunks and SHA-256.
    #[arg(short, long)]
    pub long: bool,
    /// Show every version, not just the newest.
    #[arg(long)]
    pub versions: bool,
}

/// `ldv rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// NAME (every version) or NAME@VERSION.
    #[arg(required = true)]
    pub objects: Vec<String>,
    /// Also remove every object below NAME/.
    #[arg(short, long)]
    pub recursive: bool,
}

/// `ldv stat`.
#[derive(Debug, Args)]
pub struct StatArgs {
    /// NAME or NAME@VERSION.
    pub object: String,
    /// List every chunk.
    #[arg(long)]
    pub chunks: bool,
}

/// `ldv completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate for.
    pub shell: clap_complete::Shell,
}

/// `ldv verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Check only these names (every version) or NAME@VERSION; default: the whole vault.
    pub objects: Vec<String>,
    /// Download and re-hash every referenced chunk, and check every version's whole content
    /// against its SHA-256 as `get` would (versions of more than one chunk, and every version of
    /// an encrypted vault, are read in order for that).
    #[arg(long, conflicts_with = "read_data_subset")]
    pub read_data: bool,
    /// Download and re-hash a subset: n/t (slice n of t; slices 1..t cover every chunk once) or
    /// x% (a random sample).
    #[arg(long, value_name = "n/t|x%")]
    pub read_data_subset: Option<String>,
}

/// `ldv chunk`.
#[derive(Debug, Args)]
pub struct ChunkArgs {
    /// The file to examine.
    pub file: PathBuf,
    /// List every chunk: offset, size, id and whether it exists.
    #[arg(short, long)]
    pub long: bool,
}

/// `ldv gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Print the plan and stop.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep unreferenced chunks younger than this; in a format-2 vault, delete what an earlier
    /// gc condemned only this long after [default: the vault's grace, 24h unless set at init]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub grace: Option<std::time::Duration>,
}

/// `ldv unlock`.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Remove every lock, live ones too (only when you know their processes are gone).
    #[arg(long)]
    pub all: bool,
}

/// `ldv key`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the key slots of the vault.
    List,
    /// Add a key that opens the vault (asked on the terminal unless a source is given).
    Add(NewKeyArgs),
    /// Replace the key that opened the vault with a new one.
    Passwd(NewKeyArgs),
    /// Remove a key slot (never the last one).
    Remove(KeyRemoveArgs),
}

/// Where a new key comes from.
#[derive(Debug, Args)]
pub struct NewKeyArgs {
    /// Read the new passphrase (or, with --raw, a 256-bit key) from this environment variable.
    #[arg(long, value_name = "VAR", conflicts_with = "kms")]
    pub from_env: Option<String>,
    /// With --from-env: the variable holds a raw key (64 hex digits or base64 of 32 bytes).
    #[arg(long, requires = "from_env")]
    pub raw: bool,
    /// Wrap the vault key with this AWS KMS key (id, ARN or alias).
    #[arg(long, value_name = "KEY_ID")]
    pub kms: Option<String>,
    /// With --kms: the key's region.
    #[arg(long, value_name = "REGION", requires = "kms")]
    pub kms_region: Option<String>,
    /// With --kms: the KMS endpoint URL.
    #[arg(long, value_name = "URL", requires = "kms")]
    pub kms_endpoint: Option<String>,
}

/// `ldv key remove`.
#[derive(Debug, Args)]
pub struct KeyRemoveArgs {
    /// The slot id, as `ldv key list` shows it.
    pub slot: String,
}
