//! Azure vaults end to end: the real `ldv` binary against Azurite, the loopback Azure Blob
//! Storage emulator of `scripts/cloud-servers`, directly and through the fault-injecting proxy of
//! `tests/common/proxy.rs`.
//!
//! Each test works in its own prefix of the shared test container
//! (`az://ldv-test/<test>-<random>`) and gives `ldv` a clean environment: every `AZURE_*`
//! variable of the test process is removed and only what the test means to use is set. Azurite
//! checks shared-key signatures and SAS tokens, so wrong credentials really fail, and verifies
//! the Content-MD5 of every upload, so a body damaged on the way is refused. Without Azurite
//! (`LDV_TEST_AZURE_ENDPOINT` unset) a test prints a note and passes, unless
//! `LDV_TEST_REQUIRE_ALL` is set (as `scripts/test` does): then it fails.

// s3.rs loads the proxy too; each keeps its own copy rather than reaching into the other.
#[allow(clippy::duplicate_mod)]
#[path = "../common/proxy.rs"]
mod proxy;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Output;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use base64::Engine;

use crate::common::{
    Env, FORMATS, all_text, assert_file, assert_unreachable, closed_port, error_line, get, json_of,
    output, put, random_bytes, round_trip, u, verify_clean,
};
use proxy::{FaultProxy, Faults};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// Small content-defined chunks, so a few MiB span many chunks (and many requests).
const SMALL_CHUNKS: &str =
    r#"chunking = { mode = "cdc", min = "64KiB", avg = "256KiB", max = "1MiB" }"#;

/// Many quick retries, so the fault-injection tests stay fast.
const FAST_RETRY: &str =
    r#"retry = { max_retries = 10, initial_backoff = "10ms", max_backoff = "200ms" }"#;

/// Short timeouts and two quick retries, for endpoints that do not answer.
const SHORT_LIMITS: &str = "timeouts = { connect = \"1s\", read = \"2s\", write = \"2s\" }\n\
                            retry = { max_retries = 2, initial_backoff = \"10ms\", max_backoff = \"50ms\" }";

/// Per-command limit: a hung `ldv` fails its test instead of the whole run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The name of the profile the tests write.
const PROFILE: &str = "t";

fn var_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn account() -> String {
    var_or("LDV_TEST_AZURE_ACCOUNT", "devstoreaccount1")
}

fn key() -> String {
    var_or("LDV_TEST_AZURE_KEY", "")
}

/// A well-formed (base64, 64 bytes) key that is not the account's.
fn wrong_key() -> String {
    base64::engine::general_purpose::STANDARD.encode([0x5a_u8; 64])
}

/// Azurite's endpoint (`http://127.0.0.1:PORT/devstoreaccount1`); `None` (after a note) when it
/// was not started, a failure when it must have been (`LDV_TEST_REQUIRE_ALL`).
fn azurite() -> Option<String> {
    match std::env::var("LDV_TEST_AZURE_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => Some(endpoint),
        _ => {
            assert!(
                std::env::var_os("LDV_TEST_REQUIRE_ALL").is_none(),
                "LDV_TEST_AZURE_ENDPOINT is not set but LDV_TEST_REQUIRE_ALL is: Azurite did not \
                 start (eval \"$(scripts/cloud-servers start)\")"
            );
            eprintln!("skipped: LDV_TEST_AZURE_ENDPOINT is not set (no Azurite)");
            None
        }
    }
}

/// `host:port` of an `http://host:port/...` endpoint, as a socket address (for the proxy).
fn socket_of(endpoint: &str) -> SocketAddr {
    let rest = endpoint.trim_start_matches("http://");
    let host = rest.split('/').next().unwrap_or(rest);
    host.parse()
        .unwrap_or_else(|e| panic!("endpoint {endpoint:?} is not http://IP:PORT/...: {e}"))
}

/// `endpoint` with its host and port replaced by `proxy`'s (`http://127.0.0.1:P/account`).
fn through(proxy: &FaultProxy, endpoint: &str) -> String {
    let path = endpoint
        .trim_start_matches("http://")
        .split_once('/')
        .map_or("", |(_, p)| p);
    format!("{}/{path}", proxy.endpoint().trim_end_matches('/'))
}

/// One test's world: a temp [`Env`], an endpoint and a fresh prefix in the test container.
struct Az {
    env: Env,
    endpoint: String,
    container: String,
    prefix: String,
}

impl Az {
    /// A world on Azurite with the prefix `<test>-<random>`; `None` when Azurite is absent.
    fn new(test: &str) -> Option<Az> {
        let endpoint = azurite()?;
        Some(Self::at(&endpoint, test))
    }

    /// [`Az::new`] whose commands create vaults of `format`.
    fn new_in(test: &str, format: u8) -> Option<Az> {
        let mut t = Self::new(test)?;
        t.env = Env::bare_in(format);
        Some(t)
    }

    /// A world whose "server" is `endpoint`, for tests of endpoints that do not answer.
    fn at(endpoint: &str, test: &str) -> Az {
        Az {
            env: Env::bare(),
            endpoint: endpoint.to_owned(),
            container: var_or("LDV_TEST_AZURE_CONTAINER", "ldv-test"),
            prefix: format!("{test}-{:08x}", rand::random::<u32>()),
        }
    }

    /// `az://container/prefix`.
    fn url(&self) -> String {
        format!("az://{}/{}", self.container, self.prefix)
    }

    /// `ldv` with the env's HOME and XDG dirs and no `AZURE_*` variable of this process.
    fn std_command(&self) -> std::process::Command {
        let mut cmd = self.env.std_command();
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AZURE") {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    fn command(&self, std: std::process::Command) -> Command {
        let mut cmd = Command::from_std(std);
        cmd.timeout(COMMAND_TIMEOUT);
        cmd
    }

    /// `ldv --vault az://container/prefix` with `vars` as the only `AZURE_*` settings, and the
    /// profile file (chunking, retries, timeouts only) when one was written.
    fn ldv_url_with(&self, vars: &[(&str, &str)]) -> Command {
        let mut std = self.std_command();
        for (k, v) in vars {
            std.env(k, v);
        }
        std.arg("--vault").arg(self.url());
        if self.env.config_path().exists() {
            std.arg("--config")
                .arg(self.env.config_path())
                .args(["--profile", PROFILE]);
        }
        self.command(std)
    }

    /// [`Az::ldv_url_with`] the account, `key` and endpoint in `AZURE_STORAGE_*`.
    fn ldv_url_at(&self, endpoint: &str, key: &str) -> Command {
        let account = account();
        self.ldv_url_with(&[
            ("AZURE_STORAGE_ACCOUNT", &account),
            ("AZURE_STORAGE_KEY", key),
            ("AZURE_STORAGE_ENDPOINT", endpoint),
        ])
    }

    /// [`Az::ldv_url_at`] Azurite with the right key.
    fn ldv_url(&self) -> Command {
        self.ldv_url_at(&self.endpoint, &key())
    }

    /// `ldv --config profile.toml --profile NAME`, with no `AZURE_*` variable: everything comes
    /// from the profile.
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

    /// A `[profiles.NAME]` table of type "azure" for this test's prefix at `endpoint`, with
    /// `credential` (e.g. `account_key = "..."`) and `extra` lines.
    fn profile(&self, name: &str, endpoint: &str, credential: &str, extra: &str) -> String {
        format!(
            "[profiles.{name}]\n\
             backend = {{ type = \"azure\", account_name = \"{}\", container_name = \"{}\", \
             prefix = \"{}\", endpoint = \"{endpoint}\", {credential} }}\n{extra}\n",
            account(),
            self.container,
            self.prefix,
        )
    }

    /// [`Az::profile`] with the account key `key`.
    fn key_profile(&self, name: &str, endpoint: &str, key: &str, extra: &str) -> String {
        self.profile(name, endpoint, &format!("account_key = \"{key}\""), extra)
    }

    fn write(&self, rel: &str, data: &[u8]) -> PathBuf {
        self.env.write(rel, data)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.env.path(rel)
    }
}

/// An account SAS for Azurite's blob service with permissions `sp` (e.g. `rwdlac`), valid for an
/// hour: what `az storage account generate-sas` prints.
fn account_sas(sp: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expiry =
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(now + 3600))
            .to_string();
    let version = "2021-06-08";
    // Account name, permissions, services, resource types, start, expiry, IP, protocol,
    // version and encryption scope, each followed by a newline.
    let to_sign = format!(
        "{}\n{sp}\nb\nsco\n\n{expiry}\n\nhttps,http\n{version}\n\n",
        account()
    );
    let key_bytes = base64::engine::general_purpose::STANDARD
        .decode(key())
        .expect("the test key is base64");
    let mac = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key_bytes),
        to_sign.as_bytes(),
    );
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.as_ref());
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    format!(
        "sv={version}&ss=b&srt=sco&sp={sp}&se={}&spr=https,http&sig={}",
        encode(&expiry),
        encode(&sig)
    )
}

// ---------------------------------------------------------------------------------------------
// Round trips: --vault az://..., profiles with a key, a SAS and a connection string, blocks
// ---------------------------------------------------------------------------------------------

/// `--vault az://container/prefix` with `AZURE_STORAGE_*` credentials: init, put, get, dedup,
/// ls, stat, verify --read-data, rm and gc.
#[test]
///
/// A format-1 vault: it ends with gc deleting chunk objects (format-2 gc is tested with it; the
/// other round trips here run on format 2).
fn vault_url_with_env_credentials() {
    let Some(t) = Az::new_in("url", 1) else {
        return;
    };
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

    let len = 3 * MIB + 4321;
    let first = round_trip(&t.env, || t.ldv_url(), 1, len);
    let name = first["name"].as_str().unwrap().to_owned();
    let chunks = u(&first["chunks"]);

    let out = t.ldv_url().args(["--json", "ls"]).assert().success();
    let listed = json_of(out.get_output());
    assert_eq!(listed[0]["name"], name.as_str(), "{listed:#}");
    assert_eq!(listed[0]["versions"], 2);
    let out = t
        .ldv_url()
        .args(["--json", "stat", &name])
        .assert()
        .success();
    assert_eq!(json_of(out.get_output())["size"], len as u64);

    let report = verify_clean(t.ldv_url());
    assert_eq!(report["versions"], 2);
    assert_eq!(u(&report["chunks_read"]), chunks, "{report:#}");

    t.ldv_url().args(["-y", "rm", &name]).assert().success();
    let out = t
        .ldv_url()
        .args(["-y", "--json", "gc", "--grace", "0s"])
        .assert()
        .success();
    let gc = json_of(out.get_output());
    assert_eq!(u(&gc["result"]["deleted_chunks"]), chunks, "{gc:#}");
    let out = t
        .ldv_url()
        .args(["--json", "gc", "--dry-run", "--grace", "0s"])
        .assert()
        .success();
    assert_eq!(json_of(out.get_output())["plan"]["chunks_total"], 0);
    let report = verify_clean(t.ldv_url());
    assert_eq!(report["versions"], 0);
}

/// A profile of type "azure" holding the account key, then the same vault through a
/// connection string (profile and `AZURE_STORAGE_CONNECTION_STRING`) and a SAS token (profile
/// and `AZURE_STORAGE_SAS_TOKEN`).
#[test]
fn profiles_with_a_key_a_connection_string_and_a_sas_token() {
    let Some(t) = Az::new("profiles") else {
        return;
    };
    let connection = format!(
        "DefaultEndpointsProtocol=http;AccountName={};AccountKey={};BlobEndpoint={};",
        account(),
        key(),
        t.endpoint
    );
    let sas = account_sas("rwdlac");
    let read_only = account_sas("rl");
    t.write_config(&format!(
        "{}{}{}{}",
        t.key_profile(PROFILE, &t.endpoint, &key(), SMALL_CHUNKS),
        t.profile(
            "cs",
            &t.endpoint,
            &format!("connection_string = \"{connection}\""),
            SMALL_CHUNKS
        ),
        t.profile(
            "sas",
            &t.endpoint,
            &format!("sas_token = \"{sas}\""),
            SMALL_CHUNKS
        ),
        t.profile(
            "ro",
            &t.endpoint,
            &format!("sas_token = \"?{read_only}\""),
            SMALL_CHUNKS
        ),
    ));
    let out = t.ldv().arg("init").assert().success();
    // A private profile file draws no warning.
    assert_eq!(String::from_utf8_lossy(&out.get_output().stderr), "");
    round_trip(&t.env, || t.ldv(), 2, 2 * MIB + 777);

    for profile in ["cs", "sas"] {
        let data = random_bytes(3, 600 * KIB);
        let src = t.write(&format!("{profile}.bin"), &data);
        put(t.ldv_profile(profile), &src, &format!("{profile}.bin"));
        get(
            t.ldv_profile(profile),
            &format!("{profile}.bin"),
            &t.path(&format!("{profile}.out")),
            &data,
        );
        verify_clean(t.ldv_profile(profile));
    }
    // A read-only SAS reads, and is refused writes: exit 5.
    get(
        t.ldv_profile("ro"),
        "cs.bin",
        &t.path("ro.out"),
        &random_bytes(3, 600 * KIB),
    );
    let src = t.write("ro.bin", &random_bytes(4, 10 * KIB));
    let out = t
        .ldv_profile("ro")
        .arg("put")
        .arg(&src)
        .arg("ro.bin")
        .assert()
        .code(5);
    let line = error_line(out.get_output());
    assert!(line.contains("403"), "{line}");

    // The environment's connection string and SAS token, for --vault.
    std::fs::remove_file(t.env.config_path()).unwrap();
    for vars in [
        [("AZURE_STORAGE_CONNECTION_STRING", connection.as_str())].as_slice(),
        &[
            ("AZURE_STORAGE_ACCOUNT", &account()),
            ("AZURE_STORAGE_SAS_TOKEN", &sas),
            ("AZURE_STORAGE_ENDPOINT", &t.endpoint),
        ],
    ] {
        let out = t
            .ldv_url_with(vars)
            .args(["--json", "ls"])
            .assert()
            .success();
        let listed = json_of(out.get_output());
        assert_eq!(listed.as_array().unwrap().len(), 3, "{listed:#}");
    }
}

/// In a format-1 vault, a chunk above `block_threshold` goes up as blocks of `block_size`,
/// committed by one Put Block List; in a format-2 vault its pack goes up in one Put Blob
/// whatever the threshold. Either reads back intact. A transparent proxy counts the Put Block
/// requests (`comp=block`) by "stalling" them for zero time.
#[test]
fn a_chunk_above_the_block_threshold_goes_up_in_blocks() {
    for format in FORMATS {
        a_chunk_above_the_block_threshold_in(format);
    }
}

fn a_chunk_above_the_block_threshold_in(format: u8) {
    let Some(t) = Az::new_in("blocks", format) else {
        return;
    };
    let proxy = FaultProxy::start(
        socket_of(&t.endpoint),
        Faults::none()
            .stall(1.0, Duration::ZERO)
            .path_contains("comp=block&"),
    );
    let extra =
        "chunking = { mode = \"fixed\", size = \"12MiB\", min_chunk_threshold = \"12MiB\" }";
    t.write_config(
        &t.key_profile(PROFILE, &through(&proxy, &t.endpoint), &key(), extra)
            .replace(
                "account_key",
                "block_threshold = \"5MiB\", block_size = \"4MiB\", account_key",
            ),
    );
    t.ldv().arg("init").assert().success();
    let len = 11 * MIB + 12_345;
    let data = random_bytes(5, len);
    let src = t.write("big.bin", &data);
    let receipt = put(t.ldv(), &src, "big.bin");
    assert_eq!(receipt["chunks"], 1, "{receipt:#}");
    let blocks = if format == 1 { 3 } else { 0 };
    assert_eq!(
        proxy.counts().stalls,
        blocks,
        "format {format}: an {len}-byte chunk goes up as {blocks} blocks: {:?}",
        proxy.counts()
    );
    get(t.ldv(), "big.bin", &t.path("big.out"), &data);
    let report = verify_clean(t.ldv());
    assert_eq!(u(&report["bytes_read"]), len as u64);
    get(t.ldv_url(), "big.bin", &t.path("big.direct"), &data);
}

// ---------------------------------------------------------------------------------------------
// Faults in flight: resets, 503s, stalls, damaged bodies
// ---------------------------------------------------------------------------------------------

/// How many retries a `-v` run logged on stderr.
fn retries_logged(out: &Output) -> u64 {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("retrying "))
        .count() as u64
}

/// Through a proxy that resets 10% of the connections, answers 10% of the requests with `503`
/// and stalls a few, a put and a get of 16 MiB succeed byte-identical and the retries show in
/// the `--json` stats.
#[test]
///
/// In format 2 the chunks go up in packs of 1 MiB (`init --pack-size`), so the put is many
/// requests, as the chunks of format 1 are.
fn put_and_get_survive_resets_503s_and_stalls() {
    for format in FORMATS {
        put_and_get_survive_resets_503s_and_stalls_in(format);
    }
}

fn put_and_get_survive_resets_503s_and_stalls_in(format: u8) {
    let Some(t) = Az::new_in("faults", format) else {
        return;
    };
    let proxy = FaultProxy::start(socket_of(&t.endpoint), Faults::none());
    let extra = format!("{SMALL_CHUNKS}\n{FAST_RETRY}");
    t.write_config(&format!(
        "{}{}",
        t.key_profile(PROFILE, &through(&proxy, &t.endpoint), &key(), &extra),
        t.key_profile("direct", &t.endpoint, &key(), &extra)
    ));
    let mut init = t.ldv_profile("direct");
    init.arg("init");
    if format == 2 {
        init.args(["--pack-size", "1MiB"]);
    }
    init.assert().success();
    proxy.set_faults(
        Faults::none()
            .reset(0.1)
            .slow_down(0.1)
            .stall(0.05, Duration::from_millis(200))
            .seed(0x5eed_a201),
    );
    let len = 16 * MIB + 999;
    let data = random_bytes(6, len);
    let src = t.write("faulty.bin", &data);
    let out = t
        .ldv()
        .args(["-v", "--json", "put"])
        .arg(&src)
        .arg("faulty.bin")
        .assert()
        .success();
    let receipt = json_of(out.get_output());
    let put_logged = retries_logged(out.get_output());
    assert!(u(&receipt["stats"]["retries"]) > 0, "{receipt:#}");
    let out = t
        .ldv()
        .args(["-v", "--json", "get", "faulty.bin"])
        .arg(t.path("faulty.out"))
        .assert()
        .success();
    assert_file(&t.path("faulty.out"), &data);
    let got = json_of(out.get_output());
    let get_logged = retries_logged(out.get_output());
    assert!(u(&got["stats"]["retries"]) > 0, "{got:#}");
    let counts = proxy.counts();
    assert!(counts.resets > 0 && counts.slow_downs > 0, "{counts:?}");
    assert_eq!(
        put_logged + get_logged,
        counts.resets + counts.slow_downs,
        "retries logged by put ({put_logged}) and get ({get_logged}) for {counts:?}"
    );
    let report = verify_clean(t.ldv_profile("direct"));
    assert_eq!(report["chunks_read"], receipt["chunks"]);
}

/// A chunk body damaged on its way to Azurite is refused (it does not match the Content-MD5 ldv
/// sent) and sent again; what ends up stored is intact. Without retries the put fails (exit 6,
/// naming the MD5) and commits nothing.
#[test]
fn a_damaged_upload_body_is_refused_then_retried_or_fails_the_put() {
    for format in FORMATS {
        a_damaged_upload_body_is_refused_then_retried_or_fails_the_put_in(format);
    }
}

fn a_damaged_upload_body_is_refused_then_retried_or_fails_the_put_in(format: u8) {
    let Some(t) = Az::new_in("flip", format) else {
        return;
    };
    let proxy = FaultProxy::start(socket_of(&t.endpoint), Faults::none());
    let via = through(&proxy, &t.endpoint);
    t.write_config(&format!(
        "{}{}{}",
        t.key_profile(
            PROFILE,
            &via,
            &key(),
            &format!("{SMALL_CHUNKS}\n{FAST_RETRY}")
        ),
        t.key_profile(
            "once",
            &via,
            &key(),
            &format!("{SMALL_CHUNKS}\nretry = {{ max_retries = 0 }}")
        ),
        t.key_profile("direct", &t.endpoint, &key(), SMALL_CHUNKS)
    ));
    t.ldv_profile("direct").arg("init").assert().success();

    // The uploads of chunk frames: chunk objects (format 1) or packs (format 2).
    let frames_path = if format == 1 { "/chunks/" } else { "/packs/" };
    let flips = |seed| {
        Faults::none()
            .flip_byte(1.0)
            .limit(3)
            .path_contains(frames_path)
            .seed(seed)
    };
    proxy.set_faults(flips(0x5eed_a202));
    let data = random_bytes(7, 2 * MIB + 321);
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
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    let refusals = stderr.lines().filter(|l| l.contains("MD5")).count();
    assert!(
        refusals >= 3,
        "expected 3 MD5 refusals on stderr:\n{stderr}"
    );
    let report = verify_clean(t.ldv_profile("direct"));
    assert_eq!(report["orphan_chunks"], 0, "{report:#}");
    get(
        t.ldv_profile("direct"),
        "flip.bin",
        &t.path("flip.out"),
        &data,
    );

    proxy.set_faults(flips(0x5eed_a203).limit(1));
    let data = random_bytes(8, 2 * MIB + 123);
    let src = t.write("flip2.bin", &data);
    let out = t
        .ldv_profile("once")
        .arg("put")
        .arg(&src)
        .arg("flip2.bin")
        .assert()
        .code(6);
    let line = error_line(out.get_output());
    assert!(line.contains("MD5") && line.contains(&via), "{line}");
    let out = t
        .ldv_profile("direct")
        .args(["--json", "ls"])
        .assert()
        .success();
    let listed = json_of(out.get_output());
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed:#}");
    // Nothing damaged was stored: every chunk there reads back intact.
    verify_clean(t.ldv_profile("direct"));
    put(t.ldv_profile("direct"), &src, "flip2.bin");
    get(
        t.ldv_profile("direct"),
        "flip2.bin",
        &t.path("flip2.out"),
        &data,
    );
}

// ---------------------------------------------------------------------------------------------
// Errors: credentials, unreachable endpoints, missing containers; health; secrets
// ---------------------------------------------------------------------------------------------

/// A wrong account key (Azurite checks shared-key signatures): exit 5, one line naming the
/// endpoint, and neither key in any output.
#[test]
fn wrong_credentials_exit_5_naming_the_endpoint_without_the_secret() {
    let Some(t) = Az::new("wrong-key") else {
        return;
    };
    t.ldv_url().arg("init").assert().success();
    let src = t.write("a.bin", &random_bytes(9, 100 * KIB));
    t.ldv_url()
        .arg("put")
        .arg(&src)
        .arg("a.bin")
        .assert()
        .success();
    let wrong = wrong_key();
    t.write_config(&t.key_profile(PROFILE, &t.endpoint, &wrong, ""));
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
                "env" => t.ldv_url_at(&t.endpoint, &wrong),
                _ => t.ldv(),
            };
            let out = cmd.args(args).assert().code(5);
            let line = error_line(out.get_output());
            assert!(line.contains(&t.endpoint), "{how} {args:?}: {line}");
            assert!(line.contains("403"), "{how} {args:?}: {line}");
            let text = all_text(out.get_output());
            assert!(!text.contains(&wrong), "{how} {args:?}: secret shown");
            assert!(!text.contains(&key()), "{how} {args:?}: secret shown");
        }
    }
    assert!(!out_path.exists());
    let out = t.ldv_url().args(["--json", "ls"]).assert().success();
    assert_eq!(json_of(out.get_output()).as_array().unwrap().len(), 1);
}

/// A container that does not exist: a configuration error (exit 2) naming it, for every
/// command; health says so and exits 1; nothing creates the container.
#[test]
fn a_missing_container_is_named() {
    let Some(mut t) = Az::new("no-container") else {
        return;
    };
    t.container = format!("ldv-missing-{:08x}", rand::random::<u32>());
    let src = t.write("a.bin", &random_bytes(11, 10 * KIB));
    for args in [
        vec!["ls"],
        vec!["init"],
        vec!["put", "a.bin", "a.bin"],
        vec!["get", "a.bin", "a.out"],
    ] {
        let out = t.ldv_url().args(&args).assert().code(2);
        let line = error_line(out.get_output());
        assert!(
            line.contains(&t.container) && line.contains("does not exist"),
            "{args:?}: {line}"
        );
    }
    let out = t.ldv_url().arg("health").assert().code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("UNHEALTHY") && text.contains(&t.container),
        "{text}"
    );
    assert!(src.exists());
}

/// A closed loopback port: every command ends with exit 6 after its retries, quickly, naming
/// the endpoint and the last error; health reports it unhealthy (exit 1).
#[test]
fn an_unreachable_endpoint_exits_6_after_the_configured_retries() {
    let endpoint = format!("http://127.0.0.1:{}/devstoreaccount1", closed_port());
    let t = Az::at(&endpoint, "unreachable");
    t.write_config(&t.key_profile(PROFILE, &endpoint, &wrong_key(), SHORT_LIMITS));
    t.write("a.bin", &random_bytes(10, 10 * KIB));
    assert_unreachable(
        || t.ldv(),
        &endpoint,
        &[&["init"], &["ls"], &["put", "a.bin", "a.bin"], &["health"]],
        3,
        Duration::from_secs(20),
    );
}

/// A server that accepts connections but never answers: each attempt ends at the read timeout
/// (2 s), and after 3 attempts the command exits 6, well within 20 s.
#[test]
fn a_silent_endpoint_exits_6_within_the_configured_timeouts() {
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let endpoint = format!("http://{}/devstoreaccount1", silent.local_addr().unwrap());
    let t = Az::at(&endpoint, "silent");
    t.write_config(&t.key_profile(PROFILE, &endpoint, &wrong_key(), SHORT_LIMITS));
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

/// `ldv health`: healthy, with the endpoint, create-only writes honoured and the upload
/// checksum; the probe blob is removed.
#[test]
fn health_reports_healthy_and_create_only_support() {
    let Some(t) = Az::new("health") else {
        return;
    };
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
    assert!(text.contains("upload_checksum: Content-MD5"), "{text}");
    // The probe left nothing: ls finds an empty vault, gc nothing to plan.
    let out = t.ldv_url().args(["--json", "ls"]).assert().success();
    assert_eq!(json_of(out.get_output()), serde_json::json!([]));
}

/// The account key, the SAS signature and a connection string (canaries) never show in output
/// or logs, even at trace level, whether the command succeeds or is refused.
#[test]
fn secrets_never_show_in_output_or_logs() {
    let Some(t) = Az::new("secrets") else {
        return;
    };
    let sas = account_sas("rwdlac");
    let sig = sas.rsplit_once("sig=").unwrap().1.to_owned();
    let wrong = wrong_key();
    let connection = format!(
        "AccountName={};AccountKey={};BlobEndpoint={}",
        account(),
        key(),
        t.endpoint
    );
    t.write_config(&format!(
        "{}{}{}{}",
        t.key_profile(PROFILE, &t.endpoint, &key(), SMALL_CHUNKS),
        t.profile(
            "sas",
            &t.endpoint,
            &format!("sas_token = \"{sas}\""),
            SMALL_CHUNKS
        ),
        t.profile(
            "cs",
            &t.endpoint,
            &format!("connection_string = \"{connection}\""),
            SMALL_CHUNKS
        ),
        t.key_profile("wrong", &t.endpoint, &wrong, SMALL_CHUNKS),
    ));
    let secrets = [key(), sig, wrong];
    let src = t.write("s.bin", &random_bytes(12, 300 * KIB));
    let src = src.to_str().unwrap();
    let dest = t.path("s.out");
    let dest = dest.to_str().unwrap();
    let cases: [(&str, &[&str], i32); 7] = [
        (PROFILE, &["init"], 0),
        (PROFILE, &["put", src, "s.bin"], 0),
        ("sas", &["get", "s.bin", dest], 0),
        ("cs", &["ls", "-l"], 0),
        ("sas", &["health"], 0),
        ("wrong", &["ls"], 5),
        ("wrong", &["put", src, "t.bin"], 5),
    ];
    for (profile, args, code) in cases {
        for rust_log in ["", "trace"] {
            let mut cmd = t.ldv_profile(profile);
            if rust_log.is_empty() {
                cmd.arg("-v");
            } else {
                cmd.env("RUST_LOG", rust_log);
            }
            let out = output({
                cmd.args(args);
                cmd
            });
            assert_eq!(
                out.status.code(),
                Some(code),
                "{profile} {args:?}: {}",
                all_text(&out)
            );
            let text = all_text(&out);
            for secret in &secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "{profile} {args:?} RUST_LOG={rust_log}: a secret shows"
                );
            }
        }
    }
}
