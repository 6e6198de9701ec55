//! S3 vaults end to end: the real `ldv` binary against the loopback S3 servers of
//! `scripts/s3-servers` (moto and s3s-fs), directly and through the fault-injecting proxy of
//! `tests/common/proxy.rs`.
//!
//! Each test works in its own prefix of the shared test bucket (`s3://ldv-test/<test>-<random>`)
//! and gives `ldv` a clean AWS environment: every `AWS_*` variable of the test process is removed
//! (this machine may set `AWS_CA_BUNDLE`, which makes clients refuse plain-http endpoints), the
//! shared config and credentials files point nowhere, instance metadata is off, and only what the
//! test means to use is set. Without a server (its `LDV_TEST_S3_*_ENDPOINT` unset) a test prints a
//! note and passes, unless `LDV_TEST_REQUIRE_ALL` is set (as `scripts/test` does): then it fails.
//!
//! moto accepts any credentials and does not verify upload checksums, so tests of authentication
//! and of damaged uploads run on s3s-fs, which checks SigV4 and answers `400 BadDigest`.

#[path = "../common/proxy.rs"]
mod proxy;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use assert_cmd::Command;

use crate::common::{
    Env, FORMATS, all_text, assert_file, assert_unreachable, closed_port, error_line, get, json_of,
    output, put, random_bytes, round_trip, sha256_hex, u, verify_clean,
};
use proxy::{FaultProxy, Faults};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// Small content-defined chunks, so a few MiB span many chunks (and many requests).
const SMALL_CHUNKS: &str =
    r#"chunking = { mode = "cdc", min = "64KiB", avg = "256KiB", max = "1MiB" }"#;

/// One 12 MiB chunk per file below 12 MiB: above the 5 MiB multipart threshold.
const ONE_BIG_CHUNK: &str =
    r#"chunking = { mode = "fixed", size = "12MiB", min_chunk_threshold = "12MiB" }"#;

/// Many quick retries, so the fault-injection tests stay fast.
const FAST_RETRY: &str =
    r#"retry = { max_retries = 10, initial_backoff = "10ms", max_backoff = "200ms" }"#;

/// Per-command limit: a hung `ldv` fails its test instead of the whole run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The name of the profile the tests write.
const PROFILE: &str = "t";

/// The loopback S3 servers of `scripts/s3-servers`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    Moto,
    S3sFs,
}

impl Server {
    fn var(self) -> &'static str {
        match self {
            Server::Moto => "LDV_TEST_S3_MOTO_ENDPOINT",
            Server::S3sFs => "LDV_TEST_S3_S3SFS_ENDPOINT",
        }
    }

    /// The server's endpoint URL; `None` (after printing a note) when the server was not started,
    /// a failure when it must have been (`LDV_TEST_REQUIRE_ALL`).
    fn endpoint(self) -> Option<String> {
        match std::env::var(self.var()) {
            Ok(endpoint) if !endpoint.is_empty() => Some(endpoint),
            _ => {
                assert!(
                    std::env::var_os("LDV_TEST_REQUIRE_ALL").is_none(),
                    "{} is not set but LDV_TEST_REQUIRE_ALL is: the S3 server did not start \
                     (eval \"$(scripts/s3-servers start)\")",
                    self.var()
                );
                eprintln!(
                    "skipped: {} is not set (no {self:?} server; eval \"$(scripts/s3-servers start)\")",
                    self.var()
                );
                None
            }
        }
    }
}

fn var_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn access_key() -> String {
    var_or("LDV_TEST_S3_ACCESS_KEY", "ldvtest")
}

fn secret_key() -> String {
    var_or("LDV_TEST_S3_SECRET_KEY", "ldvtest-secret-key")
}

fn region() -> String {
    var_or("LDV_TEST_S3_REGION", "us-east-1")
}

fn bucket() -> String {
    var_or("LDV_TEST_S3_BUCKET", "ldv-test")
}

/// `host:port` of an `http://host:port` endpoint, as a socket address (for the proxy).
fn socket_of(endpoint: &str) -> SocketAddr {
    endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("endpoint {endpoint:?} is not http://IP:PORT: {e}"))
}

/// One test's world: a temp [`Env`] (home, config, work dirs), a server and a fresh prefix in
/// the test bucket.
struct S3 {
    env: Env,
    server: Server,
    /// The server's own endpoint (not a proxy's).
    endpoint: String,
    bucket: String,
    prefix: String,
}

impl S3 {
    /// A world on `server` with the prefix `<test>-<random>`; `None` when the server is absent.
    fn new(server: Server, test: &str) -> Option<S3> {
        Self::with_env(server, test, Env::bare())
    }

    /// [`S3::new`] whose commands create vaults of `format`.
    fn new_in(server: Server, test: &str, format: u8) -> Option<S3> {
        Self::with_env(server, test, Env::bare_in(format))
    }

    fn with_env(server: Server, test: &str, env: Env) -> Option<S3> {
        let endpoint = server.endpoint()?;
        Some(S3 {
            env,
            server,
            endpoint,
            bucket: bucket(),
            prefix: format!("{test}-{:08x}", rand::random::<u32>()),
        })
    }

    /// A world whose "server" is `endpoint`, for tests of endpoints that do not answer.
    fn at(endpoint: &str, test: &str) -> S3 {
        S3 {
            env: Env::bare(),
            server: Server::S3sFs,
            endpoint: endpoint.to_owned(),
            bucket: bucket(),
            prefix: format!("{test}-{:08x}", rand::random::<u32>()),
        }
    }

    /// `s3://bucket/prefix`.
    fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    /// Where s3s-fs keeps this test's prefix (s3s-fs stores each object as a file).
    fn s3sfs_dir(&self) -> Option<PathBuf> {
        assert_eq!(self.server, Server::S3sFs);
        let root = std::env::var_os("LDV_TEST_S3_S3SFS_ROOT")?;
        Some(Path::new(&root).join(&self.bucket).join(&self.prefix))
    }

    /// `ldv` with the env's HOME and XDG dirs and a clean AWS environment: no `AWS_*` variable of
    /// this process, no shared config or credentials file, no instance metadata.
    fn std_command(&self) -> std::process::Command {
        let mut cmd = self.env.std_command();
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(key);
            }
        }
        let nowhere = self.env.root().join("nonexistent");
        cmd.env("AWS_CONFIG_FILE", nowhere.join("aws-config"))
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                nowhere.join("aws-credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true");
        cmd
    }

    fn command(&self, std: std::process::Command) -> Command {
        let mut cmd = Command::from_std(std);
        cmd.timeout(COMMAND_TIMEOUT);
        cmd
    }

    /// `ldv --vault s3://bucket/prefix --config profile.toml --profile t` with the credentials,
    /// region and `AWS_ENDPOINT_URL` (`endpoint`) in the environment. The profile, when written,
    /// only sets chunking, retries and timeouts: the vault comes from the URL.
    fn ldv_url_at(&self, endpoint: &str, secret: &str) -> Command {
        let mut std = self.std_command();
        std.env("AWS_ACCESS_KEY_ID", access_key())
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", region())
            .env("AWS_ENDPOINT_URL", endpoint)
            .arg("--vault")
            .arg(self.url());
        if self.env.config_path().exists() {
            std.arg("--config")
                .arg(self.env.config_path())
                .args(["--profile", PROFILE]);
        }
        self.command(std)
    }

    /// [`S3::ldv_url_at`] on the server with the right credentials.
    fn ldv_url(&self) -> Command {
        self.ldv_url_at(&self.endpoint, &secret_key())
    }

    /// `ldv --config profile.toml --profile NAME`, with no AWS credentials, region or endpoint
    /// in the environment: everything comes from the profile.
    fn ldv_profile(&self, name: &str) -> Command {
        let mut std = self.std_command();
        std.arg("--config")
            .arg(self.env.config_path())
            .args(["--profile", name]);
        self.command(std)
    }

    /// `ldv --config profile.toml --profile t`.
    fn ldv(&self) -> Command {
        self.ldv_profile(PROFILE)
    }

    /// Writes the profile file, private (mode 0600) as a file holding secrets must be.
    fn write_config(&self, text: &str) {
        self.env.write_config(text);
    }

    /// A `[profiles.NAME]` table of type "s3" for this test's prefix at `endpoint`, with static
    /// credentials (`secret` as the secret key) and `extra` lines.
    fn s3_profile(&self, name: &str, endpoint: &str, secret: &str, extra: &str) -> String {
        format!(
            "[profiles.{name}]\n\
             backend = {{ type = \"s3\", bucket = \"{}\", prefix = \"{}\", region = \"{}\", \
             endpoint = \"{endpoint}\", path_style = true, access_key_id = \"{}\", \
             secret_access_key = \"{secret}\" }}\n{extra}\n",
            self.bucket,
            self.prefix,
            region(),
            access_key(),
        )
    }

    /// A `[profiles.NAME]` table of type "minio" (endpoint as `host:port`, plain http).
    fn minio_profile(&self, name: &str, endpoint: &str, secret: &str, extra: &str) -> String {
        format!(
            "[profiles.{name}]\n\
             backend = {{ type = \"minio\", endpoint = \"{}\", access_key = \"{}\", \
             secret_key = \"{secret}\", bucket = \"{}\", prefix = \"{}\", use_ssl = false }}\n{extra}\n",
            endpoint.trim_start_matches("http://"),
            access_key(),
            self.bucket,
            self.prefix,
        )
    }

    /// Writes `data` to `work/<rel>`.
    fn write(&self, rel: &str, data: &[u8]) -> PathBuf {
        self.env.write(rel, data)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.env.path(rel)
    }
}

/// Every regular file below `dir`, recursively.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_below(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// Defines `mod $check { fn moto(); fn s3sfs(); }`: the check on each server.
macro_rules! on_both_servers {
    ($check:ident) => {
        mod $check {
            #[test]
            fn moto() {
                super::$check(super::Server::Moto);
            }

            #[test]
            fn s3sfs() {
                super::$check(super::Server::S3sFs);
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Round trips: --vault s3://..., s3 and minio profiles, multipart
// ---------------------------------------------------------------------------------------------

/// `--vault s3://bucket/prefix` with `AWS_ENDPOINT_URL` and credentials from the environment:
/// init, put, get, dedup, ls, stat, verify --read-data, rm and gc.
///
/// A format-1 vault: it counts chunk objects in the bucket and ends with gc deleting them
/// (format-2 gc is tested with it; the other round trips here run on format 2).
fn vault_url_with_env_credentials(server: Server) {
    let Some(t) = S3::new_in(server, "url", 1) else {
        return;
    };
    // A profile for chunking only: the vault is the URL's.
    t.write_config(&format!("[profiles.{PROFILE}]\n{SMALL_CHUNKS}\n"));

    let out = t.ldv_url().arg("ls").assert().code(3);
    let line = error_line(out.get_output());
    assert!(
        line.contains("no vault") && line.contains(&t.url()),
        "{line}"
    );

    let out = t.ldv_url().arg("init").assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("created vault") && text.contains(&t.url()),
        "{text}"
    );
    // Twice is fine and finds the same vault.
    let out = t.ldv_url().arg("init").assert().success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("found existing"));

    let len = 3 * MIB + 4321;
    let first = round_trip(&t.env, || t.ldv_url(), 1, len);
    let name = first["name"].as_str().unwrap().to_owned();
    let chunks = u(&first["chunks"]);

    // The chunks are really in the bucket, below the prefix.
    if let Some(dir) = (server == Server::S3sFs).then(|| t.s3sfs_dir()).flatten() {
        let stored = files_below(&dir.join("chunks")).len() as u64;
        assert_eq!(stored, chunks, "chunk objects under {}", dir.display());
        assert!(dir.join("ldv-vault.json").is_file());
    }

    // ls and stat.
    let out = t.ldv_url().args(["--json", "ls"]).assert().success();
    let listed = json_of(out.get_output());
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed:#}");
    assert_eq!(listed[0]["name"], name.as_str());
    assert_eq!(listed[0]["versions"], 2);
    let versions = t.env.versions(t.ldv_url(), None);
    assert_eq!(versions.len(), 2, "{versions:?}");
    let out = t
        .ldv_url()
        .args(["--json", "stat", &name])
        .assert()
        .success();
    let stat = json_of(out.get_output());
    assert_eq!(stat["size"], len as u64);
    assert_eq!(stat["sha256"], first["sha256"]);
    assert_eq!(stat["chunks"].as_array().unwrap().len() as u64, chunks);

    // verify reads back every chunk.
    let report = verify_clean(t.ldv_url());
    assert_eq!(report["versions"], 2);
    assert_eq!(u(&report["chunks_read"]), chunks, "{report:#}");
    assert_eq!(report["orphan_chunks"], 0, "{report:#}");

    // rm one version, then the name.
    let (_, v1) = versions
        .iter()
        .find(|(_, v)| first["version"] == v.as_str())
        .expect("the first version is listed")
        .clone();
    t.ldv_url()
        .args(["-y", "rm", &format!("{name}@{v1}")])
        .assert()
        .success();
    let left = t.env.versions(t.ldv_url(), None);
    assert_eq!(left.len(), 1, "{left:?}");
    assert_ne!(left[0].1, v1);
    t.ldv_url().args(["-y", "rm", &name]).assert().success();
    let out = t.ldv_url().args(["--json", "ls"]).assert().success();
    assert_eq!(json_of(out.get_output()), serde_json::json!([]));
    let out = t
        .ldv_url()
        .args(["get", &name])
        .arg(t.path("gone.bin"))
        .assert()
        .code(3);
    error_line(out.get_output());
    assert!(!t.path("gone.bin").exists());

    // gc reclaims every chunk, and nothing is left to reclaim.
    let out = t
        .ldv_url()
        .args(["-y", "--json", "gc", "--grace", "0s"])
        .assert()
        .success();
    let gc = json_of(out.get_output());
    assert_eq!(gc["executed"], true, "{gc:#}");
    assert_eq!(u(&gc["result"]["deleted_chunks"]), chunks, "{gc:#}");
    let out = t
        .ldv_url()
        .args(["--json", "gc", "--dry-run", "--grace", "0s"])
        .assert()
        .success();
    let plan = json_of(out.get_output());
    assert_eq!(plan["plan"]["chunks_total"], 0, "{plan:#}");
    if let Some(dir) = (server == Server::S3sFs).then(|| t.s3sfs_dir()).flatten() {
        let left = files_below(&dir.join("chunks"));
        assert!(left.is_empty(), "gc left chunk objects: {left:?}");
    }
    let report = verify_clean(t.ldv_url());
    assert_eq!(report["versions"], 0);
}
on_both_servers!(vault_url_with_env_credentials);

/// A profile of type "s3" holding endpoint, path-style addressing and credentials (no AWS_*
/// variables at all).
fn s3_profile_round_trip(server: Server) {
    let Some(t) = S3::new(server, "s3-profile") else {
        return;
    };
    t.write_config(&t.s3_profile(PROFILE, &t.endpoint, &secret_key(), SMALL_CHUNKS));
    let out = t.ldv().arg("init").assert().success();
    assert!(
        String::from_utf8_lossy(&out.get_output().stdout).contains(&t.url()),
        "init names the vault"
    );
    // A private profile file draws no warning.
    assert_eq!(String::from_utf8_lossy(&out.get_output().stderr), "");
    round_trip(&t.env, || t.ldv(), 2, 2 * MIB + 777);
    verify_clean(t.ldv());
    // The same vault through --vault and environment credentials.
    let out = t.ldv_url().args(["--json", "ls"]).assert().success();
    assert_eq!(json_of(out.get_output())[0]["versions"], 2);
}
on_both_servers!(s3_profile_round_trip);

/// A profile of type "minio": endpoint as host:port, use_ssl = false.
fn minio_profile_round_trip(server: Server) {
    let Some(t) = S3::new(server, "minio-profile") else {
        return;
    };
    t.write_config(&t.minio_profile(PROFILE, &t.endpoint, &secret_key(), SMALL_CHUNKS));
    let out = t.ldv().arg("init").assert().success();
    assert_eq!(String::from_utf8_lossy(&out.get_output().stderr), "");
    round_trip(&t.env, || t.ldv(), 3, 2 * MIB + 555);
    verify_clean(t.ldv());
    let out = t.ldv_url().args(["--json", "ls"]).assert().success();
    assert_eq!(json_of(out.get_output())[0]["versions"], 2);
}
on_both_servers!(minio_profile_round_trip);

/// In a format-1 vault, a single chunk above `multipart_threshold` (5 MiB) goes up in parts of
/// `multipart_chunk_size` (8 MiB); in a format-2 vault its pack goes up in one PUT whatever the
/// threshold. Either reads back intact. A transparent proxy counts the part uploads
/// (`?partNumber=`) by "stalling" them for zero time.
fn a_chunk_above_the_multipart_threshold_goes_up_in_parts(server: Server) {
    for format in FORMATS {
        a_chunk_above_the_multipart_threshold_in(server, format);
    }
}

fn a_chunk_above_the_multipart_threshold_in(server: Server, format: u8) {
    let Some(t) = S3::new_in(server, "multipart", format) else {
        return;
    };
    let proxy = FaultProxy::start(
        socket_of(&t.endpoint),
        Faults::none()
            .stall(1.0, Duration::ZERO)
            .path_contains("partNumber="),
    );
    t.write_config(&t.s3_profile(PROFILE, &proxy.endpoint(), &secret_key(), ONE_BIG_CHUNK));
    t.ldv().arg("init").assert().success();
    let len = 11 * MIB + 12_345;
    let data = random_bytes(4, len);
    let src = t.write("big.bin", &data);
    let receipt = put(t.ldv(), &src, "big.bin");
    assert_eq!(receipt["chunks"], 1, "{receipt:#}");
    assert_eq!(receipt["new_chunks"], 1);
    assert!(u(&receipt["bytes_uploaded"]) > len as u64);
    let parts = if format == 1 { 2 } else { 0 };
    assert_eq!(
        proxy.counts().stalls,
        parts,
        "format {format}: an {len}-byte chunk goes up in {parts} parts: {:?}",
        proxy.counts()
    );
    let got = get(t.ldv(), "big.bin", &t.path("big.out"), &data);
    assert_eq!(got["chunks"], 1);
    let report = verify_clean(t.ldv());
    assert_eq!(report["chunks_read"], 1);
    assert_eq!(u(&report["bytes_read"]), len as u64);
    // Directly, without the proxy, too.
    get(t.ldv_url(), "big.bin", &t.path("big.direct"), &data);
    // The chunk went up in the one pack of a format-2 vault.
    let s3sfs = (server == Server::S3sFs && format == 2).then(|| t.s3sfs_dir());
    if let Some(dir) = s3sfs.flatten() {
        assert!(files_below(&dir.join("chunks")).is_empty());
        let stored = files_below(&dir.join("packs"));
        assert_eq!(stored.len(), 1, "{stored:?}");
        assert!(std::fs::metadata(&stored[0]).unwrap().len() > len as u64);
    }
}
on_both_servers!(a_chunk_above_the_multipart_threshold_goes_up_in_parts);

// ---------------------------------------------------------------------------------------------
// Faults in flight: resets, SlowDown, stalls, damaged bodies
// ---------------------------------------------------------------------------------------------

/// Through a proxy that resets 10% of the connections, answers 10% of the requests with
/// `503 SlowDown` and stalls a few, a put and a get of 16 MiB succeed byte-identical and the
/// retries show in the `--json` stats.
fn put_and_get_survive_resets_slowdowns_and_stalls(server: Server) {
    let Some(t) = S3::new(server, "faults") else {
        return;
    };
    let proxy = FaultProxy::start(socket_of(&t.endpoint), Faults::none());
    let extra = format!("{SMALL_CHUNKS}\n{FAST_RETRY}");
    t.write_config(&format!(
        "{}{}",
        t.s3_profile(PROFILE, &proxy.endpoint(), &secret_key(), &extra),
        t.s3_profile("direct", &t.endpoint, &secret_key(), &extra)
    ));
    // 1 MiB packs: enough requests (a pack PUT and a ranged GET per MiB) for every kind of
    // fault to strike.
    t.ldv_profile("direct")
        .args(["init", "--pack-size", "1MiB"])
        .assert()
        .success();
    proxy.set_faults(
        Faults::none()
            .reset(0.1)
            .slow_down(0.1)
            .stall(0.05, Duration::from_millis(200))
            .seed(0x5eed_0001),
    );

    let len = 16 * MIB + 999;
    let data = random_bytes(5, len);
    let src = t.write("faulty.bin", &data);
    // -v logs every retry on stderr, those after the JSON was printed (the lock's release) too.
    let mut cmd = t.ldv();
    let out = cmd
        .arg("-v")
        .args(["--json", "put"])
        .arg(&src)
        .arg("faulty.bin")
        .assert()
        .success();
    let receipt = json_of(out.get_output());
    let put_logged = retries_logged(out.get_output());
    assert_eq!(receipt["sha256"], sha256_hex(&data));
    assert!(u(&receipt["chunks"]) >= 16, "{receipt:#}");
    let put_retries = u(&receipt["stats"]["retries"]);
    assert!(
        put_retries > 0,
        "no retries in the put's stats: {receipt:#}"
    );
    assert!(put_retries <= put_logged, "{put_retries} > {put_logged}");

    let mut cmd = t.ldv();
    let out = cmd
        .arg("-v")
        .args(["--json", "get", "faulty.bin"])
        .arg(t.path("faulty.out"))
        .assert()
        .success();
    assert_file(&t.path("faulty.out"), &data);
    let got = json_of(out.get_output());
    let get_logged = retries_logged(out.get_output());
    assert_eq!(got["sha256"], sha256_hex(&data));
    let get_retries = u(&got["stats"]["retries"]);
    assert!(get_retries > 0, "no retries in the get's stats: {got:#}");
    assert!(get_retries <= get_logged, "{get_retries} > {get_logged}");

    let counts = proxy.counts();
    assert!(
        counts.resets > 0 && counts.slow_downs > 0 && counts.stalls > 0,
        "{counts:?}"
    );
    // Each reset and SlowDown failed one request, which was retried (stalls only delay).
    assert_eq!(
        put_logged + get_logged,
        counts.resets + counts.slow_downs,
        "retries logged by put ({put_logged}) and get ({get_logged}) for {counts:?}"
    );

    // What is stored is intact, read directly.
    let report = verify_clean(t.ldv_profile("direct"));
    assert_eq!(report["chunks_read"], receipt["chunks"]);
    assert_eq!(report["orphan_chunks"], 0);
    get(
        t.ldv_profile("direct"),
        "faulty.bin",
        &t.path("direct.out"),
        &data,
    );
}
on_both_servers!(put_and_get_survive_resets_slowdowns_and_stalls);

/// A put whose result is printed exits promptly even when the store does not answer the removal
/// of its lock: the release is bounded and warned about. Pins a finished command hanging after
/// its output. A format-1 vault: format-2 puts take no lock.
fn a_finished_put_exits_when_its_lock_cannot_be_removed(server: Server) {
    let Some(t) = S3::new_in(server, "stuck-unlock", 1) else {
        return;
    };
    let proxy = FaultProxy::start(socket_of(&t.endpoint), Faults::none());
    t.write_config(&t.s3_profile(PROFILE, &proxy.endpoint(), &secret_key(), SMALL_CHUNKS));
    t.ldv().arg("init").assert().success();
    // Every DELETE of a lock object is held for far longer than the command may take.
    proxy.set_faults(
        Faults::none()
            .stall(1.0, Duration::from_secs(90))
            .path_contains("locks/")
            .method("DELETE"),
    );
    let data = random_bytes(91, 100_000);
    let src = t.write("small.bin", &data);
    let started = Instant::now();
    let out = t
        .ldv()
        .args(["--json", "put"])
        .arg(&src)
        .arg("small.bin")
        .output()
        .unwrap();
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", all_text(&out));
    assert_eq!(json_of(&out)["sha256"], sha256_hex(&data));
    assert!(
        took < Duration::from_secs(45),
        "the put waited {took:?} on a lock removal the store never answered"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("could not remove the vault lock") && stderr.contains("ldv unlock"),
        "{stderr}"
    );
    assert!(proxy.counts().stalls >= 1, "{:?}", proxy.counts());

    // The proxy forwarded the DELETE and held only its answer, so the store removed the lock:
    // nothing is left for gc to wait on (a lock the store kept would be stale by its pid).
    proxy.set_faults(Faults::none());
    let out = t.ldv().args(["--json", "unlock"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", all_text(&out));
    assert_eq!(
        json_of(&out)["remaining"].as_array().map(Vec::len),
        Some(0),
        "{}",
        all_text(&out)
    );
}

on_both_servers!(a_finished_put_exits_when_its_lock_cannot_be_removed);

/// How many retries a `-v` run logged on stderr.
fn retries_logged(out: &Output) -> u64 {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("retrying "))
        .count() as u64
}

/// What part of a request's path marks an upload of chunk frames in a vault of `format`: a
/// chunk object (1) or a pack (2).
fn frames_path(format: u8) -> &'static str {
    if format == 1 { "/chunks/" } else { "/packs/" }
}

/// The s3s-fs world for the damaged-body tests: profile `t` through a proxy (returned, with no
/// faults yet) with `retry`, profile `direct` straight to the server; the vault is initialised,
/// of `format`.
fn damaged_body_world(test: &str, retry: &str, format: u8) -> Option<(S3, FaultProxy)> {
    let t = S3::new_in(Server::S3sFs, test, format)?;
    let proxy = FaultProxy::start(socket_of(&t.endpoint), Faults::none());
    let extra = format!("{SMALL_CHUNKS}\n{retry}");
    t.write_config(&format!(
        "{}{}",
        t.s3_profile(PROFILE, &proxy.endpoint(), &secret_key(), &extra),
        t.s3_profile("direct", &t.endpoint, &secret_key(), &extra)
    ));
    t.ldv_profile("direct").arg("init").assert().success();
    Some((t, proxy))
}

/// A chunk body damaged on its way to s3s-fs is refused (400 BadDigest: it does not match the
/// CRC32C ldv sent) and sent again; what ends up stored is intact.
#[test]
fn a_damaged_upload_body_is_rejected_and_retried() {
    for format in FORMATS {
        let Some((t, proxy)) = damaged_body_world("flip-retried", FAST_RETRY, format) else {
            return;
        };
        proxy.set_faults(
            Faults::none()
                .flip_byte(1.0)
                .limit(3)
                .path_contains(frames_path(format))
                .seed(0x5eed_0002),
        );
        let data = random_bytes(6, 2 * MIB + 321);
        let src = t.write("flip.bin", &data);
        let out = t
            .ldv()
            .args(["-v", "--json", "put"])
            .arg(&src)
            .arg("flip.bin")
            .assert()
            .success();
        let receipt = json_of(out.get_output());
        assert_eq!(proxy.counts().flipped_bytes, 3, "{:?}", proxy.counts());
        assert!(u(&receipt["stats"]["retries"]) >= 3, "{receipt:#}");
        // The server refused each damaged body; ldv logged the retries (-v).
        let stderr = String::from_utf8_lossy(&out.get_output().stderr);
        let refusals = stderr.lines().filter(|l| l.contains("BadDigest")).count();
        assert!(
            refusals >= 3,
            "expected 3 BadDigest retries on stderr:\n{stderr}"
        );

        let report = verify_clean(t.ldv_profile("direct"));
        assert_eq!(report["chunks_read"], receipt["chunks"]);
        assert_eq!(report["orphan_chunks"], 0, "{report:#}");
        get(
            t.ldv_profile("direct"),
            "flip.bin",
            &t.path("flip.out"),
            &data,
        );
    }
}

/// Without retries a damaged chunk body fails the put: non-zero exit (6: the last error was a
/// refused upload), no version committed, and `verify --read-data` finds no committed version
/// damaged.
#[test]
fn without_retries_a_damaged_upload_fails_the_put_and_commits_nothing() {
    for format in FORMATS {
        let Some((t, proxy)) =
            damaged_body_world("flip-no-retry", "retry = { max_retries = 0 }", format)
        else {
            return;
        };
        proxy.set_faults(
            Faults::none()
                .flip_byte(1.0)
                .limit(1)
                .path_contains(frames_path(format))
                .seed(0x5eed_0003),
        );
        let data = random_bytes(7, 2 * MIB + 123);
        let src = t.write("flip.bin", &data);
        let out = t
            .ldv()
            .arg("put")
            .arg(&src)
            .arg("flip.bin")
            .assert()
            .code(6);
        let line = error_line(out.get_output());
        // ldv talks to the proxy, so the message names the proxy's endpoint.
        assert!(
            line.contains("BadDigest") && line.contains(&proxy.endpoint()),
            "{line}"
        );
        assert_eq!(proxy.counts().flipped_bytes, 1);

        let out = t
            .ldv_profile("direct")
            .args(["--json", "ls", "--versions"])
            .assert()
            .success();
        assert_eq!(json_of(out.get_output()), serde_json::json!([]));
        let report = verify_clean(t.ldv_profile("direct"));
        assert_eq!(report["versions"], 0, "{report:#}");
        assert_eq!(report["chunks_referenced"], 0, "{report:#}");

        // What the refused put left in the bucket: chunk objects no version references, and (with
        // s3s-fs 0.14.1, which keeps a body it answers BadDigest for) one whose content does not
        // match its id. Printed, not asserted: that part is the server's behaviour.
        // In format 2, packs no index segment lists: the put wrote no segment.
        if let Some(dir) = t.s3sfs_dir().filter(|_| format == 2) {
            let segments = files_below(&dir.join("index"));
            assert!(segments.is_empty(), "a refused put wrote {segments:?}");
            eprintln!(
                "note: the refused put left {} packs",
                files_below(&dir.join("packs")).len()
            );
        }
        if let Some(dir) = t.s3sfs_dir().filter(|_| format == 1) {
            let stored = files_below(&dir.join("chunks"));
            let damaged: Vec<_> = stored.iter().filter(|p| !chunk_file_is_intact(p)).collect();
            assert_eq!(
                report["orphan_chunks"],
                stored.len() as u64,
                "every chunk object left is an orphan: {report:#}"
            );
            eprintln!(
                "note: the refused put left {} chunk objects, {} of them damaged: {damaged:?}",
                stored.len(),
                damaged.len()
            );
        }
    }
}

/// Whether a stored chunk object (an uncompressed, unencrypted frame) holds content whose
/// SHA-256 is its file name.
fn chunk_file_is_intact(path: &Path) -> bool {
    /// Magic `LDVC`, format, compression and cipher bytes.
    const HEADER_LEN: usize = 7;
    let data = std::fs::read(path).expect("read chunk object");
    let name = path.file_name().unwrap().to_string_lossy();
    data.len() >= HEADER_LEN && data.starts_with(b"LDVC") && sha256_hex(&data[HEADER_LEN..]) == name
}

/// After a put failed on a damaged chunk body, putting the same file again (with no fault) must
/// store a readable version. s3s-fs 0.14.1 moves a damaged upload into place before it answers
/// BadDigest; ldv then takes the damaged object for an existing chunk and never replaces it.
#[test]
fn after_a_refused_damaged_upload_the_same_file_can_be_stored_again() {
    for format in FORMATS {
        let Some((t, proxy)) =
            damaged_body_world("flip-reput", "retry = { max_retries = 0 }", format)
        else {
            return;
        };
        proxy.set_faults(
            Faults::none()
                .flip_byte(1.0)
                .limit(1)
                .path_contains(frames_path(format))
                .seed(0x5eed_0004),
        );
        let data = random_bytes(8, 2 * MIB + 99);
        let src = t.write("flip.bin", &data);
        t.ldv()
            .arg("put")
            .arg(&src)
            .arg("flip.bin")
            .assert()
            .code(6);
        assert_eq!(proxy.counts().flipped_bytes, 1);

        // Again, with nothing in the way.
        put(t.ldv_profile("direct"), &src, "flip.bin");
        verify_clean(t.ldv_profile("direct"));
        get(
            t.ldv_profile("direct"),
            "flip.bin",
            &t.path("flip.out"),
            &data,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Errors: credentials, unreachable endpoints, missing buckets; health
// ---------------------------------------------------------------------------------------------

/// Wrong credentials on s3s-fs (which checks SigV4): exit 5, one line naming the endpoint, and
/// neither the wrong nor the right secret in it.
#[test]
fn wrong_credentials_exit_5_naming_the_endpoint_without_the_secret() {
    let Some(t) = S3::new(Server::S3sFs, "wrong-creds") else {
        return;
    };
    let wrong = "wrong-secret-canary-6f1d2a";
    // A vault to fail to read: made with the right credentials.
    t.ldv_url().arg("init").assert().success();
    let src = t.write("a.bin", &random_bytes(9, 100 * KIB));
    t.ldv_url()
        .arg("put")
        .arg(&src)
        .arg("a.bin")
        .assert()
        .success();

    t.write_config(&t.s3_profile(PROFILE, &t.endpoint, wrong, ""));
    let src = src.to_str().unwrap();
    let out_path = t.path("a.out");
    let dest = out_path.to_str().unwrap();
    let runs: [&[&str]; 4] = [
        &["ls"],
        &["put", src, "b.bin"],
        &["get", "a.bin", dest],
        &["init"],
    ];
    for how in ["env", "profile"] {
        for args in runs {
            let mut cmd = match how {
                "env" => t.ldv_url_at(&t.endpoint, wrong),
                _ => t.ldv(),
            };
            let out = cmd.args(args).assert().code(5);
            let line = error_line(out.get_output());
            assert!(line.contains(&t.endpoint), "{how} {args:?}: {line}");
            assert!(line.contains("403"), "{how} {args:?}: {line}");
            let text = all_text(out.get_output());
            assert!(
                !text.contains(wrong),
                "{how} {args:?}: secret shown: {text}"
            );
            assert!(
                !text.contains(&secret_key()),
                "{how} {args:?}: secret shown: {text}"
            );
        }
    }
    assert!(!out_path.exists());
    // Nothing was stored with the wrong key.
    let out = t.ldv_url().args(["--json", "ls"]).assert().success();
    let listed = json_of(out.get_output());
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed:#}");
}

/// A closed loopback port: every command ends with exit 6 after its retries, quickly, with a
/// message naming the endpoint and the last error.
#[test]
fn an_unreachable_endpoint_exits_6_after_the_configured_retries() {
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    // No S3 server needed: the endpoint is none at all.
    let t = S3::at(&endpoint, "unreachable");
    let limits = "timeouts = { connect = \"1s\", read = \"2s\", write = \"2s\" }\n\
                  retry = { max_retries = 2, initial_backoff = \"10ms\", max_backoff = \"50ms\" }";
    t.write_config(&t.s3_profile(PROFILE, &endpoint, &secret_key(), limits));
    let src = t.write("a.bin", &random_bytes(10, 10 * KIB));
    assert_unreachable(
        || t.ldv(),
        &endpoint,
        &[&["init"], &["ls"], &["put", "a.bin", "a.bin"], &["health"]],
        3,
        Duration::from_secs(20),
    );
    assert!(src.exists());
}

/// A server that accepts connections but never answers: each attempt ends at the read timeout
/// (2 s), and after 3 attempts the command exits 6, well within 20 s.
#[test]
fn a_silent_endpoint_exits_6_within_the_configured_timeouts() {
    // Bound and listening, never accepting: the kernel completes the handshakes.
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let t = S3::at(&endpoint, "silent");
    let limits = "timeouts = { connect = \"1s\", read = \"2s\", write = \"2s\" }\n\
                  retry = { max_retries = 2, initial_backoff = \"10ms\", max_backoff = \"50ms\" }";
    t.write_config(&t.s3_profile(PROFILE, &endpoint, &secret_key(), limits));
    let started = Instant::now();
    let out = t.ldv().arg("ls").assert().code(6);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(20),
        "3 attempts of 2 s took {took:?}"
    );
    let line = error_line(out.get_output());
    assert!(line.contains(&endpoint), "{line}");
    assert!(line.contains("gave up after 3 attempts"), "{line}");
    drop(silent);
}

/// A bucket that does not exist: on moto (which answers NoSuchBucket like S3) a configuration
/// error, exit 2, naming the bucket. s3s-fs 0.14.1 answers NoSuchKey for objects of a missing
/// bucket (and creates the bucket's directory on a put, so no put is tried there): reads fail
/// naming the bucket, and health says the bucket is not found.
fn a_missing_bucket_is_named(server: Server) {
    let Some(mut t) = S3::new(server, "no-bucket") else {
        return;
    };
    t.bucket = format!("ldv-missing-{:08x}", rand::random::<u32>());
    let src = t.write("a.bin", &random_bytes(11, 10 * KIB));
    let mut runs = vec![vec!["ls"], vec!["get", "a.bin", "a.out"]];
    if server == Server::Moto {
        runs.extend([vec!["init"], vec!["put", "a.bin", "a.bin"]]);
    }
    for args in runs {
        let out = t.ldv_url().args(&args).assert().failure();
        let code = out.get_output().status.code();
        let line = error_line(out.get_output());
        assert!(line.contains(&t.bucket), "{args:?}: {line}");
        match server {
            Server::Moto => {
                assert_eq!(code, Some(2), "{args:?}: {line}");
                assert!(line.contains("does not exist"), "{args:?}: {line}");
            }
            Server::S3sFs => assert!(matches!(code, Some(2 | 3)), "{args:?}: {line}"),
        }
    }
    let out = t.ldv_url().arg("health").assert().code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("UNHEALTHY") && text.contains(&t.bucket),
        "{text}"
    );
    if server == Server::S3sFs {
        if let Some(root) = std::env::var_os("LDV_TEST_S3_S3SFS_ROOT") {
            assert!(
                !Path::new(&root).join(&t.bucket).exists(),
                "the missing bucket was created"
            );
        }
    }
    assert!(src.exists());
}
on_both_servers!(a_missing_bucket_is_named);

/// `ldv health` on a vault: healthy, with the endpoint and whether the store honours
/// create-only writes (both servers do); the probe object is removed.
fn health_reports_healthy_and_create_only_support(server: Server) {
    let Some(t) = S3::new(server, "health") else {
        return;
    };
    // No vault yet: the backend is healthy, the vault is not found.
    let out = t.ldv_url().arg("health").assert().code(3);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("(healthy"), "{text}");

    t.ldv_url().arg("init").assert().success();
    let out = t.ldv_url().arg("health").assert().code(0);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains(&t.url()) && text.contains("(healthy"),
        "{text}"
    );
    assert!(
        text.contains(&format!("endpoint: {}", t.endpoint)),
        "{text}"
    );
    assert!(text.contains("create_only: honoured"), "{text}");
    assert!(text.contains("vault:    format 2"), "{text}");

    let out = t.ldv_url().args(["--json", "health"]).assert().code(0);
    let h = json_of(out.get_output());
    assert_eq!(h["status"]["healthy"], true, "{h:#}");
    let details: Vec<(String, String)> = serde_json::from_value(h["status"]["details"].clone())
        .unwrap_or_else(|e| panic!("details are [key, value] pairs ({e}): {h:#}"));
    let create_only = details
        .iter()
        .find(|(k, _)| k == "create_only")
        .unwrap_or_else(|| panic!("no create_only detail: {h:#}"));
    assert!(create_only.1.starts_with("honoured"), "{h:#}");
    assert_eq!(h["vault"]["format"], 2);

    if let Some(dir) = (server == Server::S3sFs).then(|| t.s3sfs_dir()).flatten() {
        let left: Vec<_> = files_below(&dir)
            .into_iter()
            .filter(|p| p.to_string_lossy().contains("health-probe"))
            .collect();
        assert!(left.is_empty(), "health left its probe behind: {left:?}");
    }
}
on_both_servers!(health_reports_healthy_and_create_only_support);

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

/// Runs `args` through `ldv` twice, with `-v` and with `RUST_LOG=trace`, and asserts that no
/// `secret` shows on stdout or stderr; `expect` is the exit code. Returns the trace run's
/// output.
fn assert_hidden(
    ldv: &dyn Fn() -> Command,
    args: &[&str],
    expect: i32,
    secrets: &[&str],
) -> Output {
    let mut verbose = ldv();
    verbose.arg("-v").args(args);
    let mut traced = ldv();
    traced.env("RUST_LOG", "trace").args(args);
    let mut last = None;
    for (how, cmd) in [("-v", verbose), ("RUST_LOG=trace", traced)] {
        let out = output(cmd);
        assert_eq!(
            out.status.code(),
            Some(expect),
            "{args:?} with {how}: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
        let text = all_text(&out);
        for secret in secrets {
            if let Some(at) = text.find(secret) {
                let from = text[..at]
                    .char_indices()
                    .rev()
                    .nth(200)
                    .map_or(0, |(i, _)| i);
                panic!(
                    "{args:?} with {how}: the secret shows: ...{}",
                    &text[from..(at + secret.len())]
                );
            }
        }
        last = Some(out);
    }
    last.unwrap()
}

/// The secret key of a profile (a canary string) never shows in output or logs, even at trace
/// level, whether the command succeeds (moto takes any secret; s3s-fs its own) or fails on
/// wrong credentials (s3s-fs).
#[test]
fn secret_keys_never_show_in_output_or_logs() {
    let (Some(moto), Some(s3sfs)) = (
        S3::new(Server::Moto, "secrets"),
        S3::new(Server::S3sFs, "secrets"),
    ) else {
        return;
    };
    let canary = "canary-secret-5be7c0d9e1";
    let src = moto.write("s.bin", &random_bytes(12, 300 * KIB));
    let s3sfs_src = s3sfs.write("s.bin", &random_bytes(12, 300 * KIB));
    let small = "chunking = { mode = \"cdc\", min = \"16KiB\", avg = \"64KiB\", max = \"256KiB\" }";

    // moto accepts the canary: every command succeeds, through an s3 and a minio profile.
    moto.write_config(&format!(
        "{}{}",
        moto.s3_profile(PROFILE, &moto.endpoint, canary, small),
        moto.minio_profile("minio", &moto.endpoint, canary, small)
    ));
    for profile in [PROFILE, "minio"] {
        let ldv = || moto.ldv_profile(profile);
        let name = format!("{profile}/s.bin");
        let dest = moto.path(&format!("{profile}.out"));
        let src = src.to_str().unwrap();
        assert_hidden(&ldv, &["init"], 0, &[canary]);
        let traced = assert_hidden(&ldv, &["put", src, &name], 0, &[canary]);
        // The trace really logged the SDK's work, so the search above means something; the
        // request dumps (with their credential headers) are kept out whatever RUST_LOG says.
        let text = all_text(&traced).to_ascii_lowercase();
        assert!(text.contains("try_op"), "RUST_LOG=trace logged no request");
        assert!(
            !text.contains("authorization:") && !text.contains("x-amz-security-token"),
            "RUST_LOG=trace dumped request headers"
        );
        assert_hidden(&ldv, &["get", &name, dest.to_str().unwrap()], 0, &[canary]);
        assert_hidden(&ldv, &["ls", "-l"], 0, &[canary]);
        assert_hidden(&ldv, &["health"], 0, &[canary]);
    }

    // s3s-fs: the right secret works and does not show either; the canary is refused (exit 5).
    let right = secret_key();
    s3sfs.write_config(&format!(
        "{}{}",
        s3sfs.s3_profile(PROFILE, &s3sfs.endpoint, &right, small),
        s3sfs.s3_profile("wrong", &s3sfs.endpoint, canary, small)
    ));
    let ldv = || s3sfs.ldv();
    let src = s3sfs_src.to_str().unwrap();
    let dest = s3sfs.path("s.out");
    let secrets = [canary, right.as_str()];
    assert_hidden(&ldv, &["init"], 0, &secrets);
    assert_hidden(&ldv, &["put", src, "s.bin"], 0, &secrets);
    assert_hidden(&ldv, &["get", "s.bin", dest.to_str().unwrap()], 0, &secrets);
    assert_hidden(&ldv, &["ls", "-l"], 0, &secrets);
    let wrong = || s3sfs.ldv_profile("wrong");
    assert_hidden(&wrong, &["ls"], 5, &secrets);
    assert_hidden(&wrong, &["put", src, "t.bin"], 5, &secrets);
    assert_hidden(
        &wrong,
        &["get", "s.bin", dest.to_str().unwrap()],
        5,
        &secrets,
    );
    assert_hidden(&wrong, &["health"], 1, &secrets);
    // And through the environment (--vault), wrong and right.
    let env_wrong = || s3sfs.ldv_url_at(&s3sfs.endpoint, canary);
    assert_hidden(&env_wrong, &["ls"], 5, &secrets);
    let env_right = || s3sfs.ldv_url();
    assert_hidden(&env_right, &["ls"], 0, &secrets);
}

/// A profile file holding a secret but readable by others draws a warning that names the file
/// and the fix, not the secret.
#[test]
fn a_profile_readable_by_others_is_warned_about_without_the_secret() {
    use std::os::unix::fs::PermissionsExt;
    let Some(t) = S3::new(Server::Moto, "mode") else {
        return;
    };
    let canary = "canary-secret-0a9f33";
    t.write_config(&t.s3_profile(PROFILE, &t.endpoint, canary, ""));
    let path = t.env.config_path();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = output({
        let mut c = t.ldv();
        c.arg("init");
        c
    });
    assert_eq!(out.status.code(), Some(0), "{}", all_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("chmod 600") && stderr.contains(path.to_str().unwrap()),
        "{stderr}"
    );
    assert!(!all_text(&out).contains(canary));
}

/// A session token is a secret too (the profile's `session_token`): it must not show in logs
/// either. At `RUST_LOG=trace` the SDK logs each request's headers, `x-amz-security-token`
/// included.
#[test]
fn session_tokens_never_show_in_logs() {
    let Some(t) = S3::new(Server::Moto, "token") else {
        return;
    };
    let token = "canary-session-token-77c1e0";
    let profile = t
        .s3_profile(PROFILE, &t.endpoint, &secret_key(), "")
        .replace(" }\n", &format!(", session_token = \"{token}\" }}\n"));
    assert!(profile.contains(token));
    t.write_config(&profile);
    let ldv = || t.ldv();
    assert_hidden(&ldv, &["init"], 0, &[token]);
    assert_hidden(&ldv, &["ls"], 0, &[token]);
}

/// A name valid on its own can be too long for a vault under a store prefix: the manifest key
/// would pass S3's 1024-byte limit. It is refused before anything is uploaded, and the message
/// gives the longest name that fits, which then works (on moto: s3s-fs cannot store keys that
/// long at all).
#[test]
fn names_are_checked_against_the_store_prefix_before_any_upload() {
    let Some(t) = S3::new(Server::Moto, "names") else {
        return;
    };
    t.ldv_url().arg("init").assert().success();
    let src = t.write("f.bin", b"long-named content");
    let segment = |c: char, n: usize| c.to_string().repeat(n);
    let name = |len: usize| {
        let head = format!(
            "long/{}/{}/{}/",
            segment('a', 255),
            segment('b', 255),
            segment('c', 255)
        );
        format!("{head}{}", segment('d', len - head.len()))
    };
    let too_long = name(layout_max_name());
    let out = t
        .ldv_url()
        .arg("put")
        .arg(&src)
        .arg(&too_long)
        .assert()
        .code(2);
    let line = error_line(out.get_output());
    let longest: usize = line
        .rsplit("at most ")
        .next()
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no 'at most N' in: {line}"));
    assert_eq!(longest, layout_max_name() - (t.prefix.len() + 1), "{line}");
    let out = t.ldv_url().args(["--json", "verify"]).assert().success();
    let report = json_of(out.get_output());
    assert_eq!(
        report["orphan_chunks"], 0,
        "the refused put uploaded: {report}"
    );

    let fits = name(longest);
    t.ldv_url()
        .arg("put")
        .arg(&src)
        .arg(&fits)
        .assert()
        .success();
    let out = t.ldv_url().args(["cat", &fits]).assert().success();
    assert_eq!(out.get_output().stdout, b"long-named content");
}

/// The longest name a vault without a store prefix takes (README: 985 bytes).
fn layout_max_name() -> usize {
    ldv::store::layout::MAX_NAME_LEN
}
