//! The command-line edge: parse arguments, resolve settings, run one command, render its result
//! as text or JSON, and turn any error into a one-line message and an exit code.

pub mod args;
pub mod commands;
pub mod exit;
pub mod generate;
pub mod output;
pub mod progress;
pub mod settings;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use crate::backend::{self, Stack};
use crate::error::{Error, ErrorKind};
use crate::report::Reporter;
use crate::store::keys::{KeyProvider, KmsConfig, KmsKey, PassphraseKey, RawKey};
use crate::store::locks::{LockGuard, LockKey, LockKind};
use crate::store::{EncryptionOptions, Vault, VaultOptions};
use args::{Cli, Command};
use progress::CliReporter;
use settings::Settings;

/// What every command gets: the settings and the reporter.
pub struct Ctx {
    /// Resolved settings.
    pub settings: Settings,
    /// Progress sink.
    pub reporter: Arc<dyn Reporter>,
    /// The vault opened by the command, for `--stats`.
    opened: std::sync::OnceLock<(Arc<Vault>, Stack)>,
    /// The profile's key, obtained once (a terminal prompt must not repeat).
    key: tokio::sync::OnceCell<Arc<dyn KeyProvider>>,
    /// Every lock the command took, deleted on the way out if it is interrupted.
    held: std::sync::Mutex<Vec<LockKey>>,
}

impl Ctx {
    /// Builds the backend stack of the configured vault.
    pub async fn stack(&self) -> crate::Result<Stack> {
        self.stack_for(&self.settings.location.backend).await
    }

    /// Builds a backend stack for `config` with this command's retry and timeout settings.
    pub async fn stack_for(&self, config: &backend::BackendConfig) -> crate::Result<Stack> {
        backend::build(
            config,
            &self.settings.retry,
            &self.settings.timeouts,
            Arc::clone(&self.reporter),
        )
        .await
    }

    /// How the profile asks for vaults to be opened: its compression, cipher and key. `creating`
    /// says a new vault is being made, so a passphrase typed on a terminal is asked twice.
    pub async fn vault_options(&self, creating: bool) -> crate::Result<VaultOptions> {
        let encryption = match &self.settings.encryption {
            None => None,
            Some(spec) => Some(EncryptionOptions {
                cipher: spec.algorithm,
                key: self
                    .key
                    .get_or_try_init(|| self.key_provider(&spec.key, creating, "the vault"))
                    .await?
                    .clone(),
            }),
        };
        Ok(VaultOptions {
            compression: self.settings.compression,
            encryption,
            format: self.settings.vault_format,
            packs: crate::store::PackConfig::default(),
            index_cache: self.settings.index_cache.clone(),
            packed_compression: (!self.settings.compression_chosen)
                .then_some(crate::store::codec::CompressionConfig::PACKED_DEFAULT),
        })
    }

    /// Builds the key provider a key spec names (reading a variable or asking on the terminal);
    /// `purpose` says what the key is for in the prompt.
    pub async fn key_provider(
        &self,
        spec: &crate::config::KeySpec,
        confirm: bool,
        purpose: &str,
    ) -> crate::Result<Arc<dyn KeyProvider>> {
        use crate::config::Secret;
        spec.validate()?;
        if let Some(var) = &spec.env {
            let value = std::env::var(var).map_err(|_| {
                Error::config(format!(
                    "encryption key: environment variable {var} is not set (or not UTF-8)"
                ))
            })?;
            let value = Secret::new(value);
            if value.expose().is_empty() {
                return Err(Error::config(format!(
                    "encryption key: environment variable {var} is empty"
                )));
            }
            let source = format!("${var}");
            return Ok(if spec.raw {
                let key = crate::store::crypto::KeyBytes::parse(value.expose(), &source)?;
                Arc::new(RawKey::new(key, source))
            } else {
                Arc::new(PassphraseKey::new(value, source))
            });
        }
        if let Some(key) = &spec.static_key {
            self.reporter.on_warning(&format!(
                "the profile{} holds the encryption key itself (`key.static`): anyone who can read {} can decrypt the vault; prefer `env`, `prompt` or `kms`",
                self.settings
                    .profile
                    .as_ref()
                    .map(|p| format!(" {p:?}"))
                    .unwrap_or_default(),
                self.settings.config_path.display()
            ));
            let key = crate::store::crypto::KeyBytes::parse(key.expose(), "encryption.key.static")?;
            return Ok(Arc::new(RawKey::new(key, "the profile (key.static)")));
        }
        if let Some(key_id) = &spec.kms {
            let kms = KmsKey::new(KmsConfig {
                key_id: key_id.clone(),
                region: spec.region.clone(),
                endpoint: spec.endpoint.clone(),
            })
            .await;
            return Ok(Arc::new(kms));
        }
        // `prompt`
        let o = &self.settings.output;
        if !o.interactive {
            return Err(Error::config(format!(
                "encryption key: the passphrase for {purpose} would be asked on the terminal, but stdin or stderr is not a terminal; in scripts give it from the environment (`key = {{ env = \"VAR\" }}` in a profile, --from-env VAR for `ldv key add` and `passwd`)"
            )));
        }
        let mut prompt =
            dialoguer::Password::new().with_prompt(format!("Passphrase for {purpose}"));
        if confirm {
            prompt = prompt.with_confirmation("Repeat the passphrase", "the passphrases differ");
        }
        let typed = Secret::new(
            prompt
                .interact()
                .map_err(|e| Error::config(format!("could not read the passphrase: {e}")))?,
        );
        if typed.expose().is_empty() {
            return Err(Error::config("encryption key: the passphrase is empty"));
        }
        Ok(Arc::new(PassphraseKey::new(typed, "the terminal")))
    }

    /// Opens the configured vault; the embedded default vault is created on first use.
    pub async fn vault(&self) -> crate::Result<(Arc<Vault>, Stack)> {
        let (vault, stack) = self.open_vault().await?;
        let vault = Arc::new(vault);
        let _ = self.opened.set((Arc::clone(&vault), stack.clone()));
        Ok((vault, stack))
    }

    /// Opens the configured vault for a command that changes it in place (`key`).
    pub async fn open_vault(&self) -> crate::Result<(Vault, Stack)> {
        let stack = self.stack().await?;
        let options = self.vault_options(false).await?;
        let vault = match Vault::open_with(Arc::clone(&stack.backend), &options).await {
            Err(e)
                if e.kind() == ErrorKind::NotFound && self.settings.location.embedded_default =>
            {
                let chunker = self.settings.chunker.unwrap_or_else(|| {
                    crate::store::chunker::ChunkerConfig::cdc_for_format(self.settings.vault_format)
                });
                Vault::init_with(Arc::clone(&stack.backend), chunker, &options)
                    .await?
                    .0
            }
            other => other?,
        };
        Ok((vault.with_lock_store(Arc::clone(&stack.locks)), stack))
    }

    /// Takes a vault lock of `kind` for `command`, waiting up to `--lock-wait`.
    pub async fn lock(
        &self,
        vault: &Vault,
        kind: LockKind,
        command: &str,
    ) -> crate::Result<LockGuard> {
        let guard = vault.lock(kind, command, self.settings.lock_wait).await?;
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(guard.key());
        Ok(guard)
    }

    /// Deletes every lock the command took (those already released are gone already), giving
    /// up after `within`: an interrupted command should not leave locks that block `gc` until
    /// they go stale.
    async fn release_held(&self, within: std::time::Duration) {
        let held = std::mem::take(
            &mut *self
                .held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        let deletes = futures::future::join_all(held.iter().map(LockKey::delete));
        if tokio::time::timeout(within, deletes).await.is_err() {
            tracing::warn!("could not remove this command's locks in time; `ldv unlock` will");
        }
    }

    /// Takes a shared lock for a writer of a format-1 vault, so its gc waits; a format-2 vault's
    /// writers take none (its gc is safe beside them).
    pub async fn write_lock(
        &self,
        vault: &Vault,
        command: &str,
    ) -> crate::Result<Option<LockGuard>> {
        if vault.pack_config().is_some() {
            return Ok(None);
        }
        self.lock(vault, LockKind::Shared, command).await.map(Some)
    }

    /// Takes a shared lock for a reader of a format-1 vault, so gc cannot delete chunks
    /// mid-read (a format-2 vault's readers need none: gc deletes only packs condemned a grace
    /// period earlier, and a reader that finds a pack gone reloads the index); a reader
    /// without write access to the vault reads unlocked rather than not at all.
    pub async fn read_lock(
        &self,
        vault: &Vault,
        command: &str,
    ) -> crate::Result<Option<LockGuard>> {
        if vault.pack_config().is_some() {
            return Ok(None);
        }
        match self.lock(vault, LockKind::Shared, command).await {
            Ok(guard) => Ok(Some(guard)),
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                tracing::debug!("reading without a lock: {e}");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// The counters of the vault this command opened, if any.
    pub fn stats(&self) -> Option<commands::Stats> {
        self.opened
            .get()
            .map(|(vault, stack)| commands::Stats::of(vault, stack))
    }

    /// Asks the user to confirm `question`; without a terminal, `--yes` is required.
    pub fn confirm(&self, question: &str) -> crate::Result<bool> {
        let o = &self.settings.output;
        if o.yes {
            return Ok(true);
        }
        if !o.interactive || o.json {
            return Err(Error::config(
                "refusing to proceed without confirmation: stdin is not a terminal; pass --yes",
            ));
        }
        dialoguer::Confirm::new()
            .with_prompt(question)
            .default(false)
            .interact()
            .map_err(|e| Error::config(format!("could not read the confirmation: {e}")))
    }
}

fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("ldv={default},llm_data_vault={default}"))
    });
    // Whatever RUST_LOG asks for, the SDK's signing traces and request dumps stay out: they carry
    // credentials (session tokens) in their headers.
    let no_secrets = tracing_subscriber::filter::filter_fn(|meta| {
        let target = meta.target();
        let dumps = ["aws_smithy", "hyper", "h2"];
        !(target.starts_with("aws_sigv4")
            || (*meta.level() == tracing::Level::TRACE
                && dumps.iter().any(|d| target.starts_with(d))))
    });
    let output = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(
            std::env::var_os("NO_COLOR").is_none()
                && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        )
        .without_time()
        .with_filter(no_secrets);
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(output)
        .try_init();
}

/// How long a finished command waits for its lock to be removed before it exits anyway.
const RELEASE_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs `work` while `lock` is held, then releases it whatever happened; the work's error wins
/// over a release error. The work has printed its result by then, so the release is bounded by
/// [`RELEASE_WITHIN`]: a store that stops answering (retried with backoff) must not keep a
/// finished command alive. A lock left behind that way is stale once this process is gone.
pub async fn locked<T>(
    lock: Option<LockGuard>,
    work: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let result = work.await;
    let released = match lock {
        Some(lock) => {
            let key = lock.key();
            match tokio::time::timeout(RELEASE_WITHIN, lock.release()).await {
                Ok(released) => released,
                Err(_) => {
                    tracing::warn!(
                        "could not remove the vault lock {} within {} s; it is stale once this process exits (`ldv unlock` removes it)",
                        key.name(),
                        RELEASE_WITHIN.as_secs()
                    );
                    Ok(())
                }
            }
        }
        None => Ok(()),
    };
    let value = result?;
    released?;
    Ok(value)
}

/// Whether the error (or one of its causes) is a closed pipe on our output, which is not a
/// failure: `ldv cat x | head` is fine.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn exit_code_of(err: &anyhow::Error) -> u8 {
    match err.downcast_ref::<Error>() {
        Some(e) => exit::code(e.kind()),
        None => exit::FAILED,
    }
}

fn report_error(err: &anyhow::Error, json: bool) -> u8 {
    let code = exit_code_of(err);
    let message = match err.downcast_ref::<Error>() {
        Some(e) => e.to_string(),
        None => err.to_string(),
    };
    let message = message.replace('\n', " ");
    if json {
        let kind = err.downcast_ref::<Error>().map(Error::kind);
        let _ = output::json(&serde_json::json!({
            "error": { "kind": kind, "message": message, "exit_code": code }
        }));
    }
    eprintln!("ldv: error: {message}");
    code
}

async fn dispatch(ctx: &Ctx, command: Command) -> anyhow::Result<u8> {
    match command {
        Command::Init(a) => commands::init::run(ctx, a).await,
        Command::Put(a) => commands::put::run(ctx, a).await,
        Command::Get(a) => commands::get::run(ctx, a).await,
        Command::Cat(a) => commands::cat::run(ctx, a).await,
        Command::Ls(a) => commands::ls::run(ctx, a).await,
        Command::Rm(a) => commands::rm::run(ctx, a).await,
        Command::Stat(a) => commands::stat::run(ctx, a).await,
        Command::Health => commands::health::run(ctx).await,
        Command::Verify(a) => commands::verify::run(ctx, a).await,
        Command::Chunk(a) => commands::chunk::run(ctx, a).await,
        Command::Gc(a) => commands::gc::run(ctx, a).await,
        Command::Unlock(a) => commands::unlock::run(ctx, a).await,
        Command::Key(a) => commands::key::run(ctx, a).await,
        Command::Migrate => commands::migrate::run(ctx).await,
        Command::Completions(a) => commands::completions::run(a),
    }
}

/// Help and version go out as clap prints them; any other parse error becomes the one-line
/// `ldv: error: …` (and the `--json` error document) every other error is, exit 2.
fn usage_error(e: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind as K;
    if matches!(
        e.kind(),
        K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(exit::USAGE));
    }
    let rendered = e.render().to_string();
    let message = rendered
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let message = message.strip_prefix("error: ").unwrap_or(&message);
    let json = std::env::args_os().any(|a| a == "--json");
    ExitCode::from(report_error(&Error::config(message).into(), json))
}

/// Runs ldv with the process arguments and returns its exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    init_logging(cli.global.verbose, cli.global.quiet);
    let json = cli.global.json;
    let creates_config = matches!(&cli.command, Command::Init(a) if a.save_profile.is_some());
    let settings = match Settings::resolve(&cli.global, creates_config) {
        Ok(s) => s,
        Err(e) => return ExitCode::from(report_error(&e.into(), json)),
    };
    let reporter = Arc::new(CliReporter::new(settings.output.progress));
    let ctx = Ctx {
        settings,
        reporter: Arc::clone(&reporter) as Arc<dyn Reporter>,
        opened: std::sync::OnceLock::new(),
        key: tokio::sync::OnceCell::new(),
        held: std::sync::Mutex::new(Vec::new()),
    };
    // Blocking work (file I/O, hashing) is bounded by --parallel, and many small files by the
    // wider fan-out (a local vault's fsyncs overlap only on threads of their own); capping the
    // pool keeps the allocator from holding per-thread memory for hundreds of idle threads.
    let blocking_threads = crate::ops::fanout(ctx.settings.parallel) + 8;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(blocking_threads)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let err = Error::new(
                ErrorKind::BackendError,
                format!("cannot start the runtime: {e}"),
            );
            return ExitCode::from(report_error(&err.into(), json));
        }
    };
    let outcome = runtime.block_on(async {
        let terminated = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => term.recv().await,
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            r = dispatch(&ctx, cli.command) => Ok(r),
            _ = tokio::signal::ctrl_c() => Err(("SIGINT", exit::INTERRUPTED)),
            _ = terminated => Err(("SIGTERM", exit::TERMINATED)),
        }
    });
    reporter.on_done();
    if ctx.settings.output.stats {
        if let Some(stats) = ctx.stats() {
            eprintln!("{}", stats.render());
        }
    }
    let code = match outcome {
        Err((signal, code)) => {
            runtime.block_on(ctx.release_held(RELEASE_WITHIN));
            eprintln!("ldv: error: interrupted by {signal}");
            code
        }
        Ok(Ok(code)) => code,
        Ok(Err(e)) if is_broken_pipe(&e) => exit::OK,
        Ok(Err(e)) => report_error(&e, json),
    };
    exit_now(runtime, code)
}

/// Ends the process once the command's result is out, without tearing the runtime down.
///
/// Dropping a runtime wakes every idle thread of its blocking pool and waits for the pool's
/// lock while each of them takes it in turn to exit. A directory put leaves a hundred or more
/// such threads; on a loaded machine each needs a turn on a CPU, and that convoy kept finished
/// commands alive for seconds after they printed their result. Nothing is left to wait for by
/// then: every write the command needed is durable, its locks are released (within
/// [`RELEASE_WITHIN`]), and blocking tasks of an interrupted or failed command must not keep the
/// process alive. `process::exit` flushes stdout and lets the kernel reap the threads.
fn exit_now(runtime: tokio::runtime::Runtime, code: u8) -> ! {
    std::mem::forget(runtime);
    let _ = std::io::Write::flush(&mut std::io::stdout());
    let _ = std::io::Write::flush(&mut std::io::stderr());
    std::process::exit(i32::from(code))
}
