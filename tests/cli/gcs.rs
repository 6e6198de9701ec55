//! Google Cloud Storage vaults end to end: the real `ldv` binary against fake-gcs-server, the
//! loopback GCS emulator of `scripts/cloud-servers`, directly and through the fault-injecting
//! proxy of `tests/common/proxy.rs`.
//!
//! Each test works in its own prefix of the shared test bucket (`gs://ldv-test/<test>-<random>`),
//! or in a bucket of its own made through the emulator's JSON API, and gives `ldv` a clean
//! environment: every `GOOGLE_*`, `GCE_*`, `CLOUDSDK_*` and `STORAGE_EMULATOR_HOST` variable of
//! the test process is removed, HOME is a temp dir (no gcloud credentials file), and
//! `GCE_METADATA_HOST` names a closed loopback port, so that the Google auth library never probes
//! the real metadata server (169.254.169.254): nothing leaves 127.0.0.1. Service-account
//! credentials are tested with a key made here and a loopback token endpoint
//! (fake-gcs-server itself accepts any request, authenticated or not).
//!
//! fake-gcs-server does not check the CRC32C an upload declares (it computes its own), so the
//! damaged-body tests show ldv's own comparison of the stored checksum. Without the emulator
//! (`LDV_TEST_GCS_ENDPOINT` unset) a test prints a note and passes, unless `LDV_TEST_REQUIRE_ALL`
//! is set (as `scripts/test` does): then it fails.

// s3.rs and azure.rs load the proxy too; each keeps its own copy rather than reaching into
// another.
#[allow(clippy::duplicate_mod)]
#[path = "../common/proxy.rs"]
mod proxy;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use base64::Engine;
use serde_json::{Value, json};

use crate::common::{
    Env, FORMATS, all_text, assert_bytes, assert_unreachable, closed_port, error_line, get,
    json_of, output, permissions_enforced, put, random_bytes, round_trip, sha256_hex, u,
    verify_clean,
};
use crate::common::{cut_sealed_pack, pack_entries, pack_layout};
use proxy::{FaultProxy, Faults};

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

/// Small content-defined chunks, so a few MiB span many chunks (and many requests).
const SMALL_CHUNKS: &str =
    r#"chunking = { mode = "cdc", min = "64KiB", avg = "256KiB", max = "1MiB" }"#;

/// Backend keys that send every object above 1 MiB as a resumable upload in 256 KiB pieces.
const SMALL_RESUMABLE: &str = r#"resumable_threshold = "1MiB", resumable_chunk_size = "256KiB""#;

/// Many quick retries, so the fault-injection tests stay fast.
const FAST_RETRY: &str =
    r#"retry = { max_retries = 10, initial_backoff = "10ms", max_backoff = "200ms" }"#;

/// Short timeouts and one quick retry, for endpoints that do not answer.
const SHORT_LIMITS: &str = "timeouts = { connect = \"1s\", read = \"2s\", write = \"2s\" }\n\
                            retry = { max_retries = 1, initial_backoff = \"10ms\", max_backoff = \"50ms\" }";

/// The environment variable the encrypted profile reads its raw key from, and a key for it.
const RAW_VAR: &str = "VAULT_RAW_KEY";
const RAW_KEY: &str = "3b5c1f2e8d7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c";

/// Frame header of a stored chunk: magic `LDVC`, format, compression and cipher bytes.
const HEADER_LEN: usize = 7;

/// Per-command limit: a hung `ldv` fails its test instead of the whole run.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The name of the profile the tests write.
const PROFILE: &str = "t";

fn var_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// fake-gcs-server's endpoint (`http://127.0.0.1:PORT`); `None` (after a note) when it was not
/// started, a failure when it must have been (`LDV_TEST_REQUIRE_ALL`).
fn emulator() -> Option<String> {
    match std::env::var("LDV_TEST_GCS_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => Some(endpoint.trim_end_matches('/').to_owned()),
        _ => {
            assert!(
                std::env::var_os("LDV_TEST_REQUIRE_ALL").is_none(),
                "LDV_TEST_GCS_ENDPOINT is not set but LDV_TEST_REQUIRE_ALL is: fake-gcs-server \
                 did not start (eval \"$(scripts/cloud-servers start)\")"
            );
            eprintln!("skipped: LDV_TEST_GCS_ENDPOINT is not set (no fake-gcs-server)");
            None
        }
    }
}

/// `host:port` of an `http://host:port` endpoint, as a socket address.
fn socket_of(endpoint: &str) -> SocketAddr {
    let rest = endpoint.trim_start_matches("http://");
    let host = rest.split('/').next().unwrap_or(rest);
    host.parse()
        .unwrap_or_else(|e| panic!("endpoint {endpoint:?} is not http://IP:PORT: {e}"))
}

/// One test's world: a temp [`Env`], an endpoint, a bucket and a fresh prefix in it.
struct Gs {
    env: Env,
    endpoint: String,
    bucket: String,
    prefix: String,
    /// `127.0.0.1:PORT` of a closed port, given to the auth library as its metadata server.
    metadata: String,
}

impl Gs {
    /// A world on fake-gcs-server with the prefix `<test>-<random>` in the shared test bucket;
    /// `None` when the emulator is absent.
    fn new(test: &str) -> Option<Gs> {
        let endpoint = emulator()?;
        Some(Self::at(&endpoint, test))
    }

    /// [`Gs::new`] whose commands create vaults of `format`.
    fn new_in(test: &str, format: u8) -> Option<Gs> {
        let mut t = Self::new(test)?;
        t.env = Env::bare_in(format);
        Some(t)
    }

    /// A world whose "server" is `endpoint`, for tests of endpoints that do not answer.
    fn at(endpoint: &str, test: &str) -> Gs {
        Gs {
            env: Env::bare(),
            endpoint: endpoint.to_owned(),
            bucket: var_or("LDV_TEST_GCS_BUCKET", "ldv-test"),
            prefix: format!("{test}-{:08x}", rand::random::<u32>()),
            metadata: format!("127.0.0.1:{}", closed_port()),
        }
    }

    /// `gs://bucket/prefix`.
    fn url(&self) -> String {
        format!("gs://{}/{}", self.bucket, self.prefix)
    }

    /// `ldv` with the env's HOME and XDG dirs and a clean Google environment: no `GOOGLE_*`,
    /// `GCE_*`, `CLOUDSDK_*` or `STORAGE_EMULATOR_HOST` variable of this process, and a metadata
    /// server on a closed loopback port.
    fn std_command(&self) -> std::process::Command {
        let mut cmd = self.env.std_command();
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("GOOGLE")
                || key.starts_with("GCE_")
                || key.starts_with("CLOUDSDK")
                || key == "STORAGE_EMULATOR_HOST"
            {
                cmd.env_remove(key.as_ref());
            }
        }
        cmd.env("GCE_METADATA_HOST", &self.metadata);
        cmd
    }

    fn command(&self, std: std::process::Command) -> Command {
        let mut cmd = Command::from_std(std);
        cmd.timeout(COMMAND_TIMEOUT);
        cmd
    }

    /// `ldv --vault gs://bucket/prefix` with `STORAGE_EMULATOR_HOST=emulator_host`, and the
    /// profile file (chunking, retries, timeouts only) when one was written.
    fn ldv_url_with(&self, emulator_host: &str) -> Command {
        let mut std = self.std_command();
        std.env("STORAGE_EMULATOR_HOST", emulator_host)
            .arg("--vault")
            .arg(self.url());
        if self.env.config_path().exists() {
            std.arg("--config")
                .arg(self.env.config_path())
                .args(["--profile", PROFILE]);
        }
        self.command(std)
    }

    /// [`Gs::ldv_url_with`] the emulator.
    fn ldv_url(&self) -> Command {
        self.ldv_url_with(&self.endpoint)
    }

    /// `ldv --config profile.toml --profile NAME`: everything comes from the profile.
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

    /// Writes the profile file, private (mode 0600).
    fn write_config(&self, text: &str) {
        self.env.write_config(text);
    }

    /// A `[profiles.NAME]` table of type "gcs" for this test's bucket and prefix at `endpoint`,
    /// with more backend `keys` (e.g. `anonymous = true`) and `extra` lines.
    fn profile(&self, name: &str, endpoint: &str, keys: &str, extra: &str) -> String {
        let keys = if keys.is_empty() {
            String::new()
        } else {
            format!(", {keys}")
        };
        format!(
            "[profiles.{name}]\n\
             backend = {{ type = \"gcs\", bucket = \"{}\", prefix = \"{}\", endpoint = \"{endpoint}\"{keys} }}\n\
             {extra}\n",
            self.bucket, self.prefix,
        )
    }

    /// [`Gs::profile`] on the emulator, anonymously.
    fn anon_profile(&self, name: &str, keys: &str, extra: &str) -> String {
        let keys = if keys.is_empty() {
            "anonymous = true".to_owned()
        } else {
            format!("anonymous = true, {keys}")
        };
        self.profile(name, &self.endpoint, &keys, extra)
    }

    /// Names of the objects below this test's prefix, as the emulator lists them.
    fn objects(&self, below: &str) -> Vec<String> {
        list_objects(
            &self.endpoint,
            &self.bucket,
            &format!("{}/{below}", self.prefix),
        )
    }

    /// The object key of chunk `id` in this test's vault.
    fn chunk_key(&self, id: &str) -> String {
        format!("{}/chunks/{}/{id}", self.prefix, &id[..2])
    }

    fn write(&self, rel: &str, data: &[u8]) -> PathBuf {
        self.env.write(rel, data)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.env.path(rel)
    }
}

// ---------------------------------------------------------------------------------------------
// The emulator's JSON API, spoken directly (plain HTTP/1.1 on loopback)
// ---------------------------------------------------------------------------------------------

/// `s` with everything but unreserved characters percent-encoded (for object names in paths
/// and query strings).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One HTTP/1.1 request to `endpoint` (`Connection: close`): the status and the body.
fn http(
    endpoint: &str,
    method: &str,
    target: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let addr = socket_of(endpoint);
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("{method} {target}: {e}"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{method} {target}: no response head"));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {target}: bad status line in {head:?}"));
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    (status, body)
}

/// The data of a `Transfer-Encoding: chunked` body.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let eol = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("hex chunk size");
        raw = &raw[eol + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

/// Names of the objects of `bucket` below `prefix`.
fn list_objects(endpoint: &str, bucket: &str, prefix: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut target = format!("/storage/v1/b/{bucket}/o?prefix={}", encode(prefix));
        if let Some(t) = &token {
            target.push_str(&format!("&pageToken={}", encode(t)));
        }
        let (status, body) = http(endpoint, "GET", &target, "application/json", b"");
        assert_eq!(
            status,
            200,
            "list {bucket}/{prefix}: {}",
            String::from_utf8_lossy(&body)
        );
        let page: Value = serde_json::from_slice(&body).expect("a JSON object list");
        for item in page["items"].as_array().into_iter().flatten() {
            names.push(item["name"].as_str().unwrap().to_owned());
        }
        match page["nextPageToken"].as_str() {
            Some(t) if !t.is_empty() => token = Some(t.to_owned()),
            _ => return names,
        }
    }
}

/// The content of object `key` of `bucket`.
fn read_object(endpoint: &str, bucket: &str, key: &str) -> Vec<u8> {
    let target = format!("/storage/v1/b/{bucket}/o/{}?alt=media", encode(key));
    let (status, body) = http(endpoint, "GET", &target, "application/octet-stream", b"");
    assert_eq!(
        status,
        200,
        "read {key}: {}",
        String::from_utf8_lossy(&body)
    );
    body
}

/// Overwrites object `key` of `bucket` with `data` (a simple media upload).
fn upload_object(endpoint: &str, bucket: &str, key: &str, data: &[u8]) {
    let target = format!(
        "/upload/storage/v1/b/{bucket}/o?uploadType=media&name={}",
        encode(key)
    );
    let (status, body) = http(endpoint, "POST", &target, "application/octet-stream", data);
    assert_eq!(
        status,
        200,
        "upload {key}: {}",
        String::from_utf8_lossy(&body)
    );
}

/// Deletes object `key` of `bucket`.
fn delete_object(endpoint: &str, bucket: &str, key: &str) {
    let target = format!("/storage/v1/b/{bucket}/o/{}", encode(key));
    let (status, body) = http(endpoint, "DELETE", &target, "application/json", b"");
    assert!(
        status == 204 || status == 200,
        "delete {key}: {status} {}",
        String::from_utf8_lossy(&body)
    );
}

/// Creates bucket `name` on the emulator.
fn create_bucket(endpoint: &str, name: &str) {
    let body = json!({ "name": name }).to_string();
    let (status, answer) = http(
        endpoint,
        "POST",
        "/storage/v1/b?project=test",
        "application/json",
        body.as_bytes(),
    );
    assert_eq!(
        status,
        200,
        "create bucket {name}: {}",
        String::from_utf8_lossy(&answer)
    );
}

/// Whether bucket `name` exists on the emulator.
fn bucket_exists(endpoint: &str, name: &str) -> bool {
    let (status, _) = http(
        endpoint,
        "GET",
        &format!("/storage/v1/b/{name}"),
        "application/json",
        b"",
    );
    status == 200
}

// ---------------------------------------------------------------------------------------------
// ldv helpers
// ---------------------------------------------------------------------------------------------

/// The chunk list of `name` as `(offset, size, id)`, from `stat --json`.
fn chunks_of(mut cmd: Command, name: &str) -> Vec<(u64, u64, String)> {
    let out = cmd.args(["--json", "stat", name]).assert().success();
    json_of(out.get_output())["chunks"]
        .as_array()
        .expect("stat --json has a chunks array")
        .iter()
        .map(|c| {
            (
                u(&c["offset"]),
                u(&c["size"]),
                c["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Whether every frame of a stored pack (unencrypted, its frames uncompressed) holds content
/// whose SHA-256 is the id its trailer gives.
fn pack_object_is_intact(pack: &[u8]) -> bool {
    let (frames_len, _) = pack_layout(pack);
    frames_len > 0
        && pack_entries(pack).iter().all(|(id, offset, len)| {
            let frame = &pack[*offset..offset + len];
            frame.starts_with(b"LDVC\x01\x00") && sha256_hex(&frame[HEADER_LEN..]) == *id
        })
}

/// Where chunk `id`'s frame is in this test's (unencrypted, format-2) vault: the key of the
/// pack holding it, the pack's bytes, and the frame's offset in it.
fn frame_in_packs(t: &Gs, id: &str) -> (String, Vec<u8>, usize) {
    for key in t.objects("packs/") {
        let pack = read_object(&t.endpoint, &t.bucket, &key);
        if let Some((_, offset, _)) = pack_entries(&pack).into_iter().find(|e| e.0 == id) {
            return (key, pack, offset);
        }
    }
    panic!("chunk {id} is in no pack");
}

/// Whether a stored chunk object (an uncompressed, unencrypted frame) holds content whose
/// SHA-256 is the id its key ends with.
fn chunk_object_is_intact(key: &str, frame: &[u8]) -> bool {
    let id = key.rsplit('/').next().unwrap();
    frame.len() >= HEADER_LEN
        && frame.starts_with(b"LDVC")
        && sha256_hex(&frame[HEADER_LEN..]) == id
}

// ---------------------------------------------------------------------------------------------
// Round trips: --vault gs://..., gcs profiles, resumable uploads, a vault at a bucket's root
// ---------------------------------------------------------------------------------------------

/// `--vault gs://bucket/prefix` with `STORAGE_EMULATOR_HOST`: init, put, get, cat (whole and a
/// range), dedup, ls, stat, verify --read-data, rm and gc, with the objects where the vault
/// layout puts them. A format-1 vault: it reads chunk objects and ends with gc deleting them
/// (format-2 gc is tested with it; the other round trips here run on format 2).
#[test]
fn vault_url_with_the_emulator_host() {
    let Some(t) = Gs::new_in("url", 1) else {
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
    let data = random_bytes(1, len);

    // The objects are where the layout puts them: the descriptor, one object per chunk (header
    // and payload), one manifest per version.
    let objects = t.objects("");
    assert!(
        objects.contains(&format!("{}/ldv-vault.json", t.prefix)),
        "{objects:#?}"
    );
    let listed = chunks_of(t.ldv_url(), &name);
    assert_eq!(listed.len() as u64, chunks);
    for (_, size, id) in &listed {
        let key = t.chunk_key(id);
        let frame = read_object(&t.endpoint, &t.bucket, &key);
        assert_eq!(frame.len(), HEADER_LEN + *size as usize, "{key}");
        assert!(chunk_object_is_intact(&key, &frame), "{key}");
    }
    assert_eq!(t.objects("chunks/").len() as u64, chunks, "{objects:#?}");
    assert_eq!(t.objects("manifests/").len(), 2, "{objects:#?}");

    let out = t.ldv_url().args(["cat", &name]).assert().success();
    assert_bytes(&out.get_output().stdout, &data, "cat");
    let out = t
        .ldv_url()
        .args(["cat", "--range", "1000-2999999", &name])
        .assert()
        .success();
    assert_bytes(
        &out.get_output().stdout,
        &data[1000..3_000_000],
        "cat --range",
    );

    let out = t.ldv_url().args(["--json", "ls"]).assert().success();
    let listed = json_of(out.get_output());
    assert_eq!(listed[0]["name"], name.as_str(), "{listed:#}");
    assert_eq!(listed[0]["versions"], 2);
    let out = t
        .ldv_url()
        .args(["--json", "stat", &name])
        .assert()
        .success();
    let stat = json_of(out.get_output());
    assert_eq!(stat["size"], len as u64);
    assert_eq!(stat["sha256"], sha256_hex(&data));

    // STORAGE_EMULATOR_HOST may be `host:port`, without a scheme, as Google's clients take it.
    let host_port = t.endpoint.trim_start_matches("http://").to_owned();
    let out = t
        .ldv_url_with(&host_port)
        .args(["--json", "ls"])
        .assert()
        .success();
    assert_eq!(json_of(out.get_output()).as_array().unwrap().len(), 1);

    // A second file, which gc must keep.
    let other = random_bytes(2, MIB + 17);
    let other_src = t.write("other.bin", &other);
    let kept = put(t.ldv_url(), &other_src, "other.bin");

    let report = verify_clean(t.ldv_url());
    assert_eq!(report["versions"], 3);
    assert_eq!(
        u(&report["chunks_read"]),
        chunks + u(&kept["chunks"]),
        "{report:#}"
    );

    // rm, then gc deletes exactly the chunks no version references any more.
    t.ldv_url().args(["--yes", "rm", &name]).assert().success();
    let out = t
        .ldv_url()
        .args(["--yes", "--json", "gc", "--grace", "0s"])
        .assert()
        .success();
    let gc = json_of(out.get_output());
    assert_eq!(u(&gc["result"]["deleted_chunks"]), chunks, "{gc:#}");
    let left = t.objects("chunks/");
    assert_eq!(left.len() as u64, u(&kept["chunks"]), "{left:#?}");
    for (_, _, id) in chunks_of(t.ldv_url(), "other.bin") {
        assert!(left.contains(&t.chunk_key(&id)), "{id} was deleted");
    }
    let out = t
        .ldv_url()
        .args(["--json", "gc", "--dry-run", "--grace", "0s"])
        .assert()
        .success();
    let plan = json_of(out.get_output());
    assert_eq!(plan["plan"]["unreferenced_chunks"], 0, "{plan:#}");
    assert_eq!(plan["plan"]["chunks_total"], kept["chunks"], "{plan:#}");
    get(t.ldv_url(), "other.bin", &t.path("other.out"), &other);
    let report = verify_clean(t.ldv_url());
    assert_eq!(report["versions"], 1);
    let out = t.ldv_url().args(["stat", &name]).assert().code(3);
    error_line(out.get_output());
}

/// A profile of type "gcs" (endpoint, anonymous) works like `--vault gs://`. In a format-1
/// vault, chunks above `resumable_threshold` go up as resumable uploads in pieces of
/// `resumable_chunk_size`, both with a lowered threshold and with the defaults (16 MiB, 8 MiB);
/// in a format-2 vault, packs go up in one request whatever the threshold. A transparent proxy
/// counts the pieces (requests to the session URL, `upload_id=`) by "stalling" them for zero
/// time.
#[test]
fn profiles_and_resumable_uploads() {
    for format in FORMATS {
        profiles_and_resumable_uploads_in(format);
    }
}

fn profiles_and_resumable_uploads_in(format: u8) {
    let Some(t) = Gs::new_in("profile", format) else {
        return;
    };
    let proxy = FaultProxy::start(
        socket_of(&t.endpoint),
        Faults::none()
            .stall(1.0, Duration::ZERO)
            .path_contains("upload_id="),
    );
    let via = proxy.endpoint().trim_end_matches('/').to_owned();
    let three = r#"chunking = { mode = "fixed", size = "3MiB", min_chunk_threshold = "3MiB" }"#;
    let big = r#"chunking = { mode = "fixed", size = "32MiB", min_chunk_threshold = "32MiB" }"#;
    t.write_config(&format!(
        "{}{}{}",
        t.anon_profile(PROFILE, "", SMALL_CHUNKS),
        t.profile(
            "small",
            &via,
            &format!("anonymous = true, {SMALL_RESUMABLE}"),
            three
        ),
        t.profile("default", &via, "anonymous = true", big),
    ));
    let out = t.ldv().arg("init").assert().success();
    // A profile without secrets draws no warning.
    assert_eq!(String::from_utf8_lossy(&out.get_output().stderr), "");
    round_trip(&t.env, || t.ldv(), 3, 2 * MIB + 777);
    assert_eq!(
        proxy.counts().requests,
        0,
        "profile t does not use the proxy"
    );

    // Format 1: two chunks of 3 MiB (+ 7 header bytes) above the 1 MiB threshold, 13 pieces
    // of 256 KiB each; the last chunk (512 KiB) and the manifest go up in one request each.
    // Format 2: the three frames in one pack (6.5 MiB and a trailer), in one request.
    let packs_before = t.objects("packs/");
    let len = 6 * MIB + MIB / 2;
    let data = random_bytes(4, len);
    let src = t.write("resumable.bin", &data);
    let receipt = put(t.ldv_profile("small"), &src, "resumable.bin");
    assert_eq!(receipt["chunks"], 3, "{receipt:#}");
    let pieces = if format == 1 {
        26
    } else {
        let new: Vec<String> = t
            .objects("packs/")
            .into_iter()
            .filter(|k| !packs_before.contains(k))
            .collect();
        assert_eq!(new.len(), 1, "{new:?}");
        let pack = read_object(&t.endpoint, &t.bucket, &new[0]).len();
        assert!(pack > len, "{pack}");
        0
    };
    assert_eq!(
        proxy.counts().stalls as usize,
        pieces,
        "format {format}: 6.5 MiB in 256 KiB pieces: {:?}",
        proxy.counts()
    );
    get(
        t.ldv_profile("small"),
        "resumable.bin",
        &t.path("r.out"),
        &data,
    );
    get(t.ldv(), "resumable.bin", &t.path("r.direct"), &data);

    // With the defaults, a 17 MiB chunk (above 16 MiB) goes up in 8 MiB pieces: 3 of them (format
    // 1); its pack goes up in one request (format 2).
    let len = 17 * MIB + 1000;
    let data = random_bytes(5, len);
    let src = t.write("big.bin", &data);
    let receipt = put(t.ldv_profile("default"), &src, "big.bin");
    assert_eq!(receipt["chunks"], 1, "{receipt:#}");
    let pieces = pieces + if format == 1 { 3 } else { 0 };
    assert_eq!(
        proxy.counts().stalls as usize,
        pieces,
        "format {format}: a 17 MiB chunk in 8 MiB pieces, or its pack in one request: {:?}",
        proxy.counts()
    );
    let again = put(t.ldv_profile("default"), &src, "big.bin");
    assert_eq!(again["new_chunks"], 0, "{again:#}");
    assert_eq!(
        proxy.counts().stalls as usize,
        pieces,
        "{:?}",
        proxy.counts()
    );
    get(t.ldv(), "big.bin", &t.path("big.out"), &data);
    let report = verify_clean(t.ldv());
    assert_eq!(report["versions"], 5);
    assert_eq!(report["orphan_chunks"], 0, "{report:#}");
}

/// A vault at the root of a bucket of its own (`gs://bucket`, no prefix): the objects are the
/// bucket's top-level keys, and listing finds them.
#[test]
fn a_vault_at_the_root_of_a_new_bucket() {
    for format in FORMATS {
        a_vault_at_the_root_of_a_new_bucket_in(format);
    }
}

fn a_vault_at_the_root_of_a_new_bucket_in(format: u8) {
    let Some(mut t) = Gs::new_in("root", format) else {
        return;
    };
    t.bucket = format!("ldv-root-{:08x}", rand::random::<u32>());
    t.prefix = String::new();
    create_bucket(&t.endpoint, &t.bucket);
    t.write_config(&format!("[profiles.{PROFILE}]\n{SMALL_CHUNKS}\n"));
    let ldv = || {
        let mut c = t.std_command();
        c.env("STORAGE_EMULATOR_HOST", &t.endpoint)
            .args(["--vault", &format!("gs://{}", t.bucket)])
            .arg("--config")
            .arg(t.env.config_path())
            .args(["--profile", PROFILE]);
        t.command(c)
    };
    ldv().arg("init").assert().success();
    let first = round_trip(&t.env, ldv, 6, 2 * MIB + 5);
    let objects = list_objects(&t.endpoint, &t.bucket, "");
    assert!(
        objects.contains(&"ldv-vault.json".to_owned()),
        "{objects:#?}"
    );
    let count = |dir: &str| objects.iter().filter(|o| o.starts_with(dir)).count() as u64;
    if format == 1 {
        assert_eq!(count("chunks/"), u(&first["chunks"]), "{objects:#?}");
    } else {
        // One put of new chunks: its packs and one index segment; no chunk objects.
        assert_eq!(count("chunks/"), 0, "{objects:#?}");
        assert!(count("packs/") >= 1, "{objects:#?}");
        assert_eq!(count("index/"), 1, "{objects:#?}");
    }
    let out = ldv().args(["--json", "ls"]).assert().success();
    assert_eq!(json_of(out.get_output())[0]["name"], "data/file-6.bin");
    verify_clean(ldv());
}

// ---------------------------------------------------------------------------------------------
// Faults in flight: resets, 503s, stalls, damaged bodies
// ---------------------------------------------------------------------------------------------

/// Through a proxy that resets 10% of the connections, answers 10% of the requests with `503`
/// and stalls a few, a put and a get of 6 MiB (many chunks, some of them resumable uploads)
/// succeed byte-identical and the retries show in the `--json` stats.
///
/// In format 2 the chunks go up in packs: packs of 1 MiB (`init --pack-size`) in 512 KiB pieces,
/// so the put is many requests, some of them resumable uploads, as the chunks of format 1 are.
/// (A failed piece restarts its object's upload from the start: a 6 MiB pack in 256 KiB pieces
/// rarely gets all of its ~25 pieces through at these fault rates.)
#[test]
fn put_and_get_survive_resets_503s_and_stalls() {
    for format in FORMATS {
        put_and_get_survive_resets_503s_and_stalls_in(format);
    }
}

fn put_and_get_survive_resets_503s_and_stalls_in(format: u8) {
    let Some(t) = Gs::new_in("faults", format) else {
        return;
    };
    let proxy = FaultProxy::start(socket_of(&t.endpoint), Faults::none());
    let via = proxy.endpoint().trim_end_matches('/').to_owned();
    let keys = if format == 1 {
        r#"anonymous = true, resumable_threshold = "512KiB", resumable_chunk_size = "256KiB""#
    } else {
        r#"anonymous = true, resumable_threshold = "512KiB", resumable_chunk_size = "512KiB""#
    };
    t.write_config(&format!(
        "{}{}",
        t.profile(
            PROFILE,
            &via,
            keys,
            &format!("{SMALL_CHUNKS}\n{FAST_RETRY}")
        ),
        t.anon_profile("direct", "", SMALL_CHUNKS),
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
            .seed(0x5eed_6c01),
    );
    let len = 6 * MIB + 999;
    let data = random_bytes(7, len);
    let src = t.write("faulty.bin", &data);
    let receipt = put(t.ldv(), &src, "faulty.bin");
    assert!(u(&receipt["stats"]["retries"]) > 0, "{receipt:#}");
    let got = get(t.ldv(), "faulty.bin", &t.path("faulty.out"), &data);
    assert!(u(&got["stats"]["retries"]) > 0, "{got:#}");
    let counts = proxy.counts();
    assert!(counts.resets > 0 && counts.slow_downs > 0, "{counts:?}");
    let report = verify_clean(t.ldv_profile("direct"));
    assert_eq!(report["chunks_read"], receipt["chunks"]);
}

/// fake-gcs-server keeps a resumable upload whose body was damaged on the way (it does not check
/// the declared CRC32C); ldv compares the CRC32C the store computed with its own, removes the
/// damaged object and sends it again, so what ends up stored is intact. Without retries the put
/// fails (exit 6, naming the damage), commits nothing and leaves no damaged object. Format 1
/// only: resumable uploads carry format-1 chunks above the threshold; a format-2 pack goes up in
/// one request, whose CRC32C the store checks itself.
#[test]
fn a_damaged_upload_body_is_removed_then_retried_or_fails_the_put() {
    a_damaged_upload_body_is_removed_then_retried_or_fails_the_put_in(1);
}

fn a_damaged_upload_body_is_removed_then_retried_or_fails_the_put_in(format: u8) {
    let Some(t) = Gs::new_in("flip", format) else {
        return;
    };
    let proxy = FaultProxy::start(socket_of(&t.endpoint), Faults::none());
    let via = proxy.endpoint().trim_end_matches('/').to_owned();
    let keys = format!("anonymous = true, {SMALL_RESUMABLE}");
    let three = r#"chunking = { mode = "fixed", size = "3MiB", min_chunk_threshold = "3MiB" }"#;
    t.write_config(&format!(
        "{}{}{}",
        t.profile(PROFILE, &via, &keys, &format!("{three}\n{FAST_RETRY}")),
        t.profile(
            "once",
            &via,
            &keys,
            &format!("{three}\nretry = {{ max_retries = 0 }}")
        ),
        t.anon_profile("direct", "", three),
    ));
    t.ldv_profile("direct").arg("init").assert().success();

    // The proxy flips a byte only in PUT bodies: the pieces of a resumable upload. Each file has
    // one chunk (in format 2, one pack) above the threshold; the damage shows when the upload
    // completes.
    let flips = |seed, n| {
        Faults::none()
            .flip_byte(1.0)
            .limit(n)
            .path_contains("upload_id=")
            .seed(seed)
    };
    proxy.set_faults(flips(0x5eed_6c02, 1));
    let data = random_bytes(8, 3 * MIB + 321);
    let src = t.write("flip.bin", &data);
    let out = t
        .ldv()
        .args(["-v", "--json", "put"])
        .arg(&src)
        .arg("flip.bin")
        .assert()
        .success();
    let receipt = json_of(out.get_output());
    assert_eq!(proxy.counts().flipped_bytes, 1, "{:?}", proxy.counts());
    assert!(u(&receipt["stats"]["retries"]) >= 1, "{receipt:#}");
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    let noticed = stderr.lines().filter(|l| l.contains("damaged")).count();
    assert!(
        noticed >= 1,
        "expected the damaged body on stderr:\n{stderr}"
    );
    let report = verify_clean(t.ldv_profile("direct"));
    assert_eq!(report["orphan_chunks"], 0, "{report:#}");
    get(
        t.ldv_profile("direct"),
        "flip.bin",
        &t.path("flip.out"),
        &data,
    );

    proxy.set_faults(flips(0x5eed_6c03, 1));
    let data = random_bytes(9, 3 * MIB + 123);
    let src = t.write("flip2.bin", &data);
    let out = t
        .ldv_profile("once")
        .arg("put")
        .arg(&src)
        .arg("flip2.bin")
        .assert()
        .code(6);
    let line = error_line(out.get_output());
    assert!(
        line.contains("damaged") && line.contains("CRC32C"),
        "{line}"
    );
    assert_eq!(proxy.counts().flipped_bytes, 2, "{:?}", proxy.counts());
    let out = t
        .ldv_profile("direct")
        .args(["--json", "ls"])
        .assert()
        .success();
    let listed = json_of(out.get_output());
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed:#}");
    // No damaged object was kept: every chunk object there holds what its name says, every
    // pack what its trailer says.
    for key in t.objects("chunks/") {
        let frame = read_object(&t.endpoint, &t.bucket, &key);
        assert!(chunk_object_is_intact(&key, &frame), "{key} is damaged");
    }
    let packs = t.objects("packs/");
    assert_eq!(packs.is_empty(), format == 1, "{packs:?}");
    for key in packs {
        let pack = read_object(&t.endpoint, &t.bucket, &key);
        assert!(pack_object_is_intact(&pack), "{key} is damaged");
    }
    put(t.ldv_profile("direct"), &src, "flip2.bin");
    get(
        t.ldv_profile("direct"),
        "flip2.bin",
        &t.path("flip2.out"),
        &data,
    );
    verify_clean(t.ldv_profile("direct"));
}

/// A chunk object damaged in the store (overwritten through the JSON API with one bit flipped):
/// `verify --read-data` exits 4 naming the chunk, `get` exits 4 leaving no file, `cat` exits 4;
/// a chunk object deleted from the store: verify exits 4 naming it missing. Repaired, the file
/// reads again, so the failures were the damage.
///
/// In format 2 the damage is to the chunk's frame in its pack, and the pack goes missing.
#[test]
fn a_damaged_chunk_object_fails_verify_and_get_with_exit_4() {
    for format in FORMATS {
        a_damaged_chunk_object_fails_verify_and_get_in(format);
    }
}

fn a_damaged_chunk_object_fails_verify_and_get_in(format: u8) {
    let Some(t) = Gs::new_in("damaged", format) else {
        return;
    };
    t.write_config(&format!("[profiles.{PROFILE}]\n{SMALL_CHUNKS}\n"));
    t.ldv_url().arg("init").assert().success();
    let data = random_bytes(10, 2 * MIB + 99);
    let src = t.write("d.bin", &data);
    put(t.ldv_url(), &src, "d.bin");
    let chunks = chunks_of(t.ldv_url(), "d.bin");
    assert!(chunks.len() >= 4, "{chunks:?}");
    let (_, size, id) = chunks[chunks.len() / 2].clone();
    // The chunk object, or the pack holding the chunk's frame at `at`.
    let (key, original, at) = if format == 1 {
        let key = t.chunk_key(&id);
        let original = read_object(&t.endpoint, &t.bucket, &key);
        (key, original, 0)
    } else {
        frame_in_packs(&t, &id)
    };
    let mut bad = original.clone();
    bad[at + HEADER_LEN + size as usize / 2] ^= 0x01;
    upload_object(&t.endpoint, &t.bucket, &key, &bad);

    let out = t
        .ldv_url()
        .args(["--json", "verify", "--read-data"])
        .assert()
        .code(4);
    let report = json_of(out.get_output());
    let problems = report["problems"].to_string();
    assert!(problems.contains(&id), "{report:#}");
    assert_eq!(
        report["problems"].as_array().unwrap().len(),
        1,
        "{report:#}"
    );

    let dest_dir = t.path("dest");
    std::fs::create_dir(&dest_dir).unwrap();
    let out = t
        .ldv_url()
        .arg("get")
        .arg("d.bin")
        .arg(dest_dir.join("d.out"))
        .assert()
        .code(4);
    let line = error_line(out.get_output());
    assert!(line.contains(&id), "{line}");
    let left: Vec<_> = std::fs::read_dir(&dest_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "get left files behind: {left:?}");
    let out = t.ldv_url().args(["cat", "d.bin"]).assert().code(4);
    error_line(out.get_output());

    // Missing altogether.
    delete_object(&t.endpoint, &t.bucket, &key);
    let out = t
        .ldv_url()
        .args(["--json", "verify", "--read-data"])
        .assert()
        .code(4);
    let report = json_of(out.get_output());
    assert!(report["problems"].to_string().contains(&id), "{report:#}");
    let out = t
        .ldv_url()
        .arg("get")
        .arg("d.bin")
        .arg(dest_dir.join("d.out"))
        .assert()
        .failure();
    error_line(out.get_output());
    assert!(!dest_dir.join("d.out").exists());

    upload_object(&t.endpoint, &t.bucket, &key, &original);
    verify_clean(t.ldv_url());
    get(t.ldv_url(), "d.bin", &dest_dir.join("d.out"), &data);
}

// ---------------------------------------------------------------------------------------------
// Encryption
// ---------------------------------------------------------------------------------------------

/// `len` bytes of text-like content: words of a small vocabulary, chosen by `seed`; zstd shrinks
/// it to well under half.
fn text_bytes(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the", "vault", "chunk", "model", "weights", "data", "set", "of", "and", "training",
        "layer", "token", "storage", "bucket", "version",
    ];
    let picks = random_bytes(seed, len / 2 + 1);
    let mut out = Vec::with_capacity(len + 16);
    let mut i = 0;
    while out.len() < len {
        out.extend_from_slice(WORDS[picks[i] as usize % WORDS.len()].as_bytes());
        out.push(if picks[i] % 11 == 0 { b'\n' } else { b' ' });
        i += 1;
    }
    out.truncate(len);
    out
}

/// A vault with zstd compression and AES-256-GCM (a raw key from the environment) on GCS: the
/// round trip is byte-identical, a second put uploads nothing, verify --read-data passes, and
/// the stored objects are sealed frames under keyed ids, some compressed, holding no plaintext.
#[test]
fn zstd_and_aes_gcm_round_trip_on_gcs() {
    const MARKER: &[u8] = b"LDV-GCS-MARKER-51c";
    let Some(t) = Gs::new("encrypted") else {
        return;
    };
    t.write_config(&t.anon_profile(
        PROFILE,
        "",
        &format!(
            "{SMALL_CHUNKS}\ncompression = {{ algorithm = \"zstd\", level = 3, min_size = \"4KiB\" }}\n\
             encryption = {{ algorithm = \"aes-256-gcm\", key = {{ env = \"{RAW_VAR}\", raw = true }} }}"
        ),
    ));
    let ldv = || {
        let mut cmd = t.ldv();
        cmd.env(RAW_VAR, RAW_KEY);
        cmd
    };
    ldv().arg("init").assert().success();

    let mut data = Vec::new();
    for piece in text_bytes(11, 1024 * KIB).chunks(3 * KIB) {
        data.extend_from_slice(piece);
        data.extend_from_slice(MARKER);
    }
    data.extend_from_slice(&random_bytes(12, 1536 * KIB));
    let src = t.write("input.bin", &data);
    let first = put(ldv(), &src, "gcs/input.bin");
    let n = u(&first["chunks"]);
    assert!(n >= 4, "{first:#}");
    assert_eq!(u(&first["new_chunks"]), n, "{first:#}");
    assert!(
        u(&first["bytes_uploaded"]) < data.len() as u64 - 1024 * KIB as u64 / 3,
        "the text part was not compressed: {first:#}"
    );
    get(ldv(), "gcs/input.bin", &t.path("out.bin"), &data);
    let second = put(ldv(), &src, "gcs/input.bin");
    assert_eq!(u(&second["new_chunks"]), 0, "{second:#}");
    assert_eq!(u(&second["bytes_uploaded"]), 0, "{second:#}");
    let report = verify_clean(ldv());
    assert_eq!(u(&report["chunks_read"]), n, "{report:#}");

    // What the emulator holds: sealed frames (cipher byte 1) under keyed ids, some compressed
    // (zstd, 2), some not (0), and never the marker.
    // Format 2: the frames are in packs, cut by their stored lengths (the trailers are sealed).
    assert_eq!(t.objects("chunks/"), Vec::<String>::new());
    let mut by_len: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    let out = ldv()
        .args(["--json", "stat", "gcs/input.bin"])
        .assert()
        .success();
    for c in json_of(out.get_output())["chunks"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap().to_owned();
        by_len.entry(u(&c["stored"]) as usize).or_default().push(id);
    }
    let mut frames = std::collections::BTreeMap::new();
    for key in t.objects("packs/") {
        let pack = read_object(&t.endpoint, &t.bucket, &key);
        let cut = cut_sealed_pack(&pack, &mut by_len)
            .unwrap_or_else(|| panic!("{key}: frames that are not the chunks' stored lengths"));
        for (id, offset, len) in cut {
            frames.insert(id, pack[offset..offset + len].to_vec());
        }
    }
    let mut codes = Vec::new();
    for (offset, len, id) in chunks_of(ldv(), "gcs/input.bin") {
        let frame = &frames[&id];
        let key = &id;
        assert_eq!(&frame[..5], b"LDVC\x01", "{key}");
        assert_eq!(frame[6], 1, "{key}: cipher byte");
        let plain = &data[offset as usize..(offset + len) as usize];
        assert_ne!(id, sha256_hex(plain), "chunk ids are keyed");
        codes.push(frame[5]);
    }
    assert!(
        codes.contains(&2),
        "no chunk stored zstd-compressed: {codes:?}"
    );
    assert!(
        codes.contains(&0),
        "no chunk stored uncompressed: {codes:?}"
    );
    for key in t.objects("") {
        let object = read_object(&t.endpoint, &t.bucket, &key);
        assert!(
            !object.windows(MARKER.len()).any(|w| w == MARKER),
            "{key} holds plaintext"
        );
    }
    // Without the key nothing is read.
    let out = t
        .ldv()
        .arg("get")
        .arg("gcs/input.bin")
        .arg(t.path("nokey.out"))
        .assert()
        .failure();
    error_line(out.get_output());
    assert!(!t.path("nokey.out").exists());
}

// ---------------------------------------------------------------------------------------------
// Profiles and credentials
// ---------------------------------------------------------------------------------------------

/// Bad gcs profiles are configuration errors (exit 2) before any request: an unknown key and
/// `anonymous` with `credentials_path` name the file and line; a credentials file that is
/// missing, unreadable or not a key file is named. Nothing is written to the bucket.
#[test]
fn bad_profiles_exit_2_naming_the_file_line_or_key() {
    let Some(t) = Gs::new("bad-profile") else {
        return;
    };
    let missing = t.env.root().join("nonexistent").join("key.json");
    let garbage = t.write("garbage.json", b"{ this is not a key file");
    let unreadable = t.write("unreadable.json", b"{}");
    let cases: Vec<(String, Vec<String>)> = vec![
        (
            t.anon_profile(PROFILE, "colour = \"red\"", ""),
            vec!["profile.toml:2:".into(), "unknown field `colour`".into()],
        ),
        (
            t.anon_profile(
                PROFILE,
                &format!("credentials_path = \"{}\"", garbage.display()),
                "",
            ),
            vec![
                "profile.toml:2:".into(),
                "credentials_path or anonymous = true, not both".into(),
            ],
        ),
        (
            t.profile(
                PROFILE,
                &t.endpoint,
                &format!("credentials_path = \"{}\"", missing.display()),
                "",
            ),
            vec![
                "credentials_path".into(),
                missing.display().to_string(),
                "No such file".into(),
            ],
        ),
        (
            t.profile(
                PROFILE,
                &t.endpoint,
                &format!("credentials_path = \"{}\"", garbage.display()),
                "",
            ),
            vec!["credentials_path".into(), garbage.display().to_string()],
        ),
        (
            t.anon_profile(PROFILE, "resumable_chunk_size = \"100KiB\"", ""),
            vec![
                "profile.toml:2:".into(),
                "resumable_chunk_size must be a multiple of 256 KiB".into(),
            ],
        ),
        (
            t.anon_profile(PROFILE, "", "").replace(
                &format!("endpoint = \"{}\"", t.endpoint),
                &format!(
                    "endpoint = \"{}\"",
                    t.endpoint.trim_start_matches("http://")
                ),
            ),
            vec!["profile.toml:2:".into(), "is not a URL".into()],
        ),
        (
            t.anon_profile(PROFILE, "", "")
                .replace(&format!("\"{}\"", t.bucket), "\"Bad_Bucket\""),
            vec!["profile.toml:2:".into(), "is not a bucket name".into()],
        ),
    ];
    let src = t.write("a.bin", b"some bytes");
    for (text, needles) in &cases {
        t.write_config(text);
        for args in [vec!["ls"], vec!["init"], vec!["put", "a.bin", "a.bin"]] {
            let out = t.ldv().args(&args).assert().code(2);
            let line = error_line(out.get_output());
            for needle in needles {
                assert!(
                    line.contains(needle.as_str()),
                    "{args:?} {needle:?}: {line}"
                );
            }
        }
    }
    // A file this user may not read, where permissions apply (not as root).
    use std::os::unix::fs::PermissionsExt;
    if permissions_enforced(t.env.root()) {
        std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
        t.write_config(&t.profile(
            PROFILE,
            &t.endpoint,
            &format!("credentials_path = \"{}\"", unreadable.display()),
            "",
        ));
        let out = t.ldv().arg("ls").assert().code(2);
        let line = error_line(out.get_output());
        assert!(
            line.contains(&unreadable.display().to_string()) && line.contains("ermission"),
            "{line}"
        );
    } else {
        eprintln!("note: running as root, the unreadable credentials file is not tested");
    }
    // A gs:// URL with a bad bucket name is refused the same way.
    let mut cmd = t.std_command();
    cmd.env("STORAGE_EMULATOR_HOST", &t.endpoint)
        .args(["--vault", "gs://Bad_Bucket/x", "ls"]);
    let out = t.command(cmd).assert().code(2);
    let line = error_line(out.get_output());
    assert!(
        line.contains("gs://Bad_Bucket/x") && line.contains("bucket"),
        "{line}"
    );
    assert!(src.exists());
    assert_eq!(t.objects(""), Vec::<String>::new());
}

/// A loopback OAuth token endpoint: answers every POST with `status` and a token document (or
/// an `invalid_grant` error), keeping each request body.
struct TokenServer {
    addr: SocketAddr,
    bodies: Arc<Mutex<Vec<String>>>,
}

/// The access token the token server hands out (a canary: it must never show in output).
const ACCESS_TOKEN: &str = "ya29.ldv-canary-access-token-7d41";

impl TokenServer {
    fn start(status: u16) -> TokenServer {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&bodies);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let _ = Self::answer(stream, status, &seen);
            }
        });
        TokenServer { addr, bodies }
    }

    fn answer(stream: TcpStream, status: u16, seen: &Mutex<Vec<String>>) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line)? == 0 || line == "\r\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body)?;
        seen.lock()
            .unwrap()
            .push(String::from_utf8_lossy(&body).into_owned());
        let doc = if status == 200 {
            json!({ "access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 3600 })
        } else {
            json!({ "error": "invalid_grant", "error_description": "Invalid JWT Signature." })
        }
        .to_string();
        let reason = if status == 200 { "OK" } else { "Bad Request" };
        let mut stream = stream;
        write!(
            stream,
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{doc}",
            doc.len()
        )?;
        stream.flush()
    }

    fn uri(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    fn requests(&self) -> Vec<String> {
        self.bodies.lock().unwrap().clone()
    }
}

/// A service-account key file (a fresh RSA key, PKCS#8 PEM as Google issues them) whose token
/// endpoint is `token_uri`: its text and the PEM (a secret).
fn service_account_json(token_uri: &str) -> (String, String) {
    use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .expect("generate an RSA key");
    let der: Pkcs8V1Der = key.as_der().expect("PKCS#8 DER");
    let b64 = base64::engine::general_purpose::STANDARD.encode(der.as_ref());
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap());
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    let doc = json!({
        "type": "service_account",
        "project_id": "ldv-test-project",
        "private_key_id": "0123456789abcdef",
        "private_key": pem,
        "client_email": "ldv-test@ldv-test-project.iam.gserviceaccount.com",
        "client_id": "100000000000000000001",
        "token_uri": token_uri,
    });
    (doc.to_string(), pem)
}

/// A service-account key file works through `credentials_path` and through
/// `GOOGLE_APPLICATION_CREDENTIALS` (Application Default Credentials): ldv gets a token from the
/// key file's token endpoint (a signed JWT grant) and the vault works. With no credentials at all
/// (no key file, no gcloud login, no metadata server) a non-anonymous profile is refused with
/// exit 5 saying what to set. The key and the token never show, even at trace level.
#[test]
fn service_account_credentials_from_a_file_or_the_environment() {
    let Some(t) = Gs::new("credentials") else {
        return;
    };
    let tokens = TokenServer::start(200);
    let (key_json, pem) = service_account_json(&tokens.uri());
    let key_file = t.write("sa.json", key_json.as_bytes());
    t.write_config(&format!(
        "{}{}",
        t.profile(
            PROFILE,
            &t.endpoint,
            &format!("credentials_path = \"{}\"", key_file.display()),
            SMALL_CHUNKS,
        ),
        t.profile("adc", &t.endpoint, "", SMALL_CHUNKS),
    ));
    t.ldv().arg("init").assert().success();
    let requests = tokens.requests();
    assert!(!requests.is_empty(), "no token was requested");
    assert!(
        requests
            .iter()
            .all(|b| b.contains("jwt-bearer") && b.contains("assertion=")),
        "{requests:?}"
    );
    let data = random_bytes(13, 700 * KIB);
    let src = t.write("c.bin", &data);
    put(t.ldv(), &src, "c.bin");
    get(t.ldv(), "c.bin", &t.path("c.out"), &data);

    // Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS names the key file.
    let before = tokens.requests().len();
    let out = t
        .ldv_profile("adc")
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key_file)
        .args(["--json", "ls"])
        .assert()
        .success();
    assert_eq!(json_of(out.get_output())[0]["name"], "c.bin");
    assert!(
        tokens.requests().len() > before,
        "ADC did not use the key file"
    );

    // No credentials anywhere: exit 5, saying what to set.
    let out = t.ldv_profile("adc").arg("ls").assert().code(5);
    let line = error_line(out.get_output());
    assert!(
        line.contains("no Google credentials")
            && line.contains("GOOGLE_APPLICATION_CREDENTIALS")
            && line.contains("credentials_path"),
        "{line}"
    );

    // The key and the token never show, not even at trace level.
    let body_line = pem.lines().nth(1).unwrap().to_owned();
    for rust_log in ["", "trace"] {
        let mut cmd = t.ldv();
        if rust_log.is_empty() {
            cmd.arg("-v");
        } else {
            cmd.env("RUST_LOG", rust_log);
        }
        let out = output({
            cmd.arg("get")
                .arg("c.bin")
                .arg(t.path(&format!("c{rust_log}.out")));
            cmd
        });
        assert_eq!(out.status.code(), Some(0), "{}", all_text(&out));
        let text = all_text(&out);
        for secret in [ACCESS_TOKEN, body_line.as_str(), "BEGIN PRIVATE KEY"] {
            assert!(
                !text.contains(secret),
                "RUST_LOG={rust_log}: {secret:?} shows"
            );
        }
    }
}

/// A key file the token endpoint refuses (a revoked or deleted service-account key) is an
/// authentication failure: exit 5, naming the key file, whether the key comes from
/// `credentials_path` or `GOOGLE_APPLICATION_CREDENTIALS`.
#[test]
fn refused_credentials_exit_5_naming_the_key_file() {
    let Some(t) = Gs::new("refused") else {
        return;
    };
    let tokens = TokenServer::start(400);
    let (key_json, _) = service_account_json(&tokens.uri());
    let key_file = t.write("sa.json", key_json.as_bytes());
    t.write_config(&format!(
        "{}{}",
        t.profile(
            PROFILE,
            &t.endpoint,
            &format!("credentials_path = \"{}\"", key_file.display()),
            "",
        ),
        t.profile("adc", &t.endpoint, "", ""),
    ));
    let out = t.ldv().arg("ls").assert().code(5);
    let line = error_line(out.get_output());
    assert!(line.contains(&key_file.display().to_string()), "{line}");
    assert!(line.contains("invalid_grant"), "{line}");
    let out = t
        .ldv_profile("adc")
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key_file)
        .arg("ls")
        .assert()
        .code(5);
    let line = error_line(out.get_output());
    assert!(!line.contains("no Google credentials found"), "{line}");
    assert!(line.contains("invalid_grant"), "{line}");
    assert!(!tokens.requests().is_empty());
}

/// A token endpoint that cannot be reached is a network error like any other: retried, then
/// exit 6 naming it.
#[test]
fn an_unreachable_token_endpoint_exits_6() {
    let Some(t) = Gs::new("token-down") else {
        return;
    };
    let token_uri = format!("http://127.0.0.1:{}/token", closed_port());
    let (key_json, _) = service_account_json(&token_uri);
    let key_file = t.write("sa.json", key_json.as_bytes());
    t.write_config(&format!(
        "{}{}",
        t.profile(
            PROFILE,
            &t.endpoint,
            &format!("credentials_path = \"{}\"", key_file.display()),
            SHORT_LIMITS,
        ),
        t.profile("adc", &t.endpoint, "", SHORT_LIMITS),
    ));
    let out = t.ldv().arg("ls").assert().code(6);
    let line = error_line(out.get_output());
    assert!(line.contains("token"), "{line}");
    let out = t
        .ldv_profile("adc")
        .env("GOOGLE_APPLICATION_CREDENTIALS", &key_file)
        .arg("ls")
        .assert()
        .code(6);
    let line = error_line(out.get_output());
    assert!(line.contains("token"), "{line}");
}

// ---------------------------------------------------------------------------------------------
// Errors: missing buckets, unreachable and silent endpoints; health
// ---------------------------------------------------------------------------------------------

/// A bucket that does not exist: `health` reports it unhealthy (exit 1), naming the bucket and
/// "not found"; reading commands fail as a configuration error naming the bucket (exit 2; the
/// emulator answers a bare `404 Not Found`, so ldv looks the bucket up once); nothing creates it.
#[test]
fn a_missing_bucket_is_unhealthy_and_never_created() {
    let Some(mut t) = Gs::new("no-bucket") else {
        return;
    };
    t.bucket = format!("ldv-missing-{:08x}", rand::random::<u32>());
    t.write("a.bin", &random_bytes(14, 10 * KIB));
    let out = t.ldv_url().arg("health").assert().code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains("UNHEALTHY") && text.contains(&t.bucket) && text.contains("not found"),
        "{text}"
    );
    for args in [vec!["ls"], vec!["get", "a.bin", "a.out"], vec!["verify"]] {
        let out = t.ldv_url().args(&args).assert().code(2);
        let line = error_line(out.get_output());
        assert!(
            line.contains(&t.bucket) && line.contains("does not exist"),
            "{args:?}: {line}"
        );
    }
    for args in [vec!["init"], vec!["put", "a.bin", "a.bin"]] {
        let out = t.ldv_url().args(&args).assert().failure();
        error_line(out.get_output());
    }
    assert!(!t.path("a.out").exists());
    assert!(
        !bucket_exists(&t.endpoint, &t.bucket),
        "ldv created the bucket"
    );
}

/// A missing bucket is a configuration error (exit 2) naming it, for every command, as on GCS
/// (whose 404 says "The specified bucket does not exist.").
#[test]
fn a_missing_bucket_is_named_with_exit_2() {
    let Some(mut t) = Gs::new("no-bucket-2") else {
        return;
    };
    t.bucket = format!("ldv-missing-{:08x}", rand::random::<u32>());
    t.write("a.bin", &random_bytes(15, 10 * KIB));
    for args in [
        vec!["init"],
        vec!["ls"],
        vec!["put", "a.bin", "a.bin"],
        vec!["get", "a.bin", "a.out"],
    ] {
        let out = t.ldv_url().args(&args).assert().code(2);
        let line = error_line(out.get_output());
        assert!(
            line.contains(&t.bucket) && line.contains("does not exist"),
            "{args:?}: {line}"
        );
    }
}

/// A closed loopback port: every command ends with exit 6 after its one retry, quickly, naming
/// the endpoint and the last error; health reports it unhealthy (exit 1).
#[test]
fn an_unreachable_endpoint_exits_6_after_the_configured_retries() {
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let t = Gs::at(&endpoint, "unreachable");
    t.write_config(&t.profile(PROFILE, &endpoint, "anonymous = true", SHORT_LIMITS));
    t.write("a.bin", &random_bytes(16, 10 * KIB));
    assert_unreachable(
        || t.ldv(),
        &endpoint,
        &[
            &["init"][..],
            &["ls"],
            &["put", "a.bin", "a.bin"],
            &["get", "a.bin", "a.out"],
            &["health"],
        ],
        2,
        Duration::from_secs(10),
    );
    assert!(!t.path("a.out").exists());
}

/// A server that accepts connections but never answers: each attempt ends at the read timeout
/// (2 s), and after 2 attempts the command exits 6, well within 15 s.
#[test]
fn a_silent_endpoint_exits_6_within_the_configured_timeouts() {
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let t = Gs::at(&endpoint, "silent");
    t.write_config(&t.profile(PROFILE, &endpoint, "anonymous = true", SHORT_LIMITS));
    let started = Instant::now();
    let out = t.ldv().arg("ls").assert().code(6);
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(3900) && took < Duration::from_secs(15),
        "2 attempts of 2 s took {took:?}"
    );
    let line = error_line(out.get_output());
    assert!(line.contains(&endpoint), "{line}");
    assert!(line.contains("gave up after 2 attempts"), "{line}");
    drop(silent);
}

/// `ldv health`: exit 3 (healthy store, no vault) before init, exit 0 after, with the endpoint
/// and create-only writes honoured (`ifGenerationMatch=0`); the probe object is removed.
#[test]
fn health_reports_healthy_and_create_only_honoured() {
    let Some(t) = Gs::new("health") else {
        return;
    };
    let out = t.ldv_url().arg("health").assert().code(3);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("(healthy"), "{text}");
    t.ldv_url().arg("init").assert().success();
    for json in [false, true] {
        let mut cmd = t.ldv_url();
        if json {
            cmd.arg("--json");
        }
        let out = cmd.arg("health").assert().code(0);
        let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(text.contains(&t.url()), "{text}");
        if json {
            assert!(text.contains("honoured (ifGenerationMatch=0)"), "{text}");
        } else {
            assert!(text.contains("(healthy"), "{text}");
            assert!(
                text.contains(&format!("endpoint: {}", t.endpoint)),
                "{text}"
            );
            assert!(text.contains("create_only: honoured"), "{text}");
        }
    }
    // The probes left nothing but the descriptor.
    assert_eq!(t.objects(""), vec![format!("{}/ldv-vault.json", t.prefix)]);
    let out = t.ldv_url().args(["--json", "ls"]).assert().success();
    assert_eq!(json_of(out.get_output()), json!([]));
}
