//! Compression and client-side encryption end to end: every compression × cipher combination
//! round-trips, the stored frames say what they hold, an encrypted vault stores no plaintext, no
//! plaintext hash and no key, a wrong key or a damaged byte fails closed, key slots change without
//! touching data, and AWS KMS envelope encryption works against moto.
//!
//! Most vaults here use a raw 256-bit key from an environment variable: a passphrase costs an
//! Argon2id run (64 MiB) per open, which the tests of passphrases pay and the others avoid.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use assert_cmd::Command;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common::{
    Env, FORMATS, assert_bytes, assert_file, cut_sealed_pack, error_line, json_of, pack_layout,
    random_bytes, sha256_hex, snapshot, toml_string, tree_files, u, write_over,
};

const KIB: usize = 1 << 10;

/// Small content-defined chunks, so a few MiB span several chunks.
const SMALL_CHUNKS: &str =
    r#"chunking = { mode = "cdc", min = "64KiB", avg = "256KiB", max = "1MiB" }"#;

/// Frame header: magic, format, compression, cipher.
const HEADER_LEN: usize = 7;
/// Nonce and tag of a sealed frame.
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// The environment variable the raw-key profiles read, and a key for it.
const RAW_VAR: &str = "VAULT_RAW_KEY";
const RAW_KEY: &str = "3b5c1f2e8d7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c";

/// Per-command limit for commands that talk to moto.
const S3_TIMEOUT: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `[profiles.NAME]` on this env's vault directory, with small chunks and `extra` lines.
fn local_profile(env: &Env, name: &str, extra: &str) -> String {
    format!(
        "[profiles.{name}]\nbackend = {{ type = \"local\", path = {} }}\n{SMALL_CHUNKS}\n{extra}\n",
        toml_string(&env.vault_dir())
    )
}

/// `ldv --config profile.toml --profile NAME` with a raw key in `$VAULT_RAW_KEY`.
fn ldv(env: &Env, profile: &str) -> Command {
    let mut cmd = env.bare_ldv();
    cmd.arg("--config")
        .arg(env.config_path())
        .args(["--profile", profile])
        .env(RAW_VAR, RAW_KEY);
    cmd
}

/// The `encryption` line of a profile reading a raw key from `$VAULT_RAW_KEY`.
fn raw_encryption(cipher: &str) -> String {
    format!(
        "encryption = {{ algorithm = \"{cipher}\", key = {{ env = \"{RAW_VAR}\", raw = true }} }}"
    )
}

/// Runs `cmd` to its end whatever its status.
fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run ldv")
}

fn code_of(out: &Output) -> Option<i32> {
    out.status.code()
}

fn text_of(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `len` bytes of text-like content: words of a small vocabulary in lines, chosen by `seed`.
/// General-purpose compressors shrink it to well under half.
fn text_bytes(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "vault",
        "stores",
        "chunks",
        "of",
        "model",
        "weights",
        "and",
        "datasets",
        "with",
        "a",
        "manifest",
        "per",
        "version",
        "token",
        "embedding",
        "layer",
        "attention",
        "gradient",
        "batch",
        "epoch",
        "loss",
        "training",
        "validation",
        "shard",
        "parquet",
        "row",
        "column",
        "tensor",
        "float",
        "int8",
        "quantized",
        "checkpoint",
        "optimizer",
        "learning",
        "rate",
    ];
    let picks = random_bytes(seed, len / 3 + 64);
    let mut out = Vec::with_capacity(len + 16);
    for (i, p) in picks.iter().enumerate() {
        if out.len() >= len {
            break;
        }
        out.extend_from_slice(WORDS[*p as usize % WORDS.len()].as_bytes());
        out.push(if i % 12 == 11 { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

/// The 7-byte header of the frame at `path`.
fn header_of(path: &Path) -> Vec<u8> {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(data.len() >= HEADER_LEN, "{} is too short", path.display());
    data[..HEADER_LEN].to_vec()
}

/// Every file below `dir`, recursively.
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

/// The first of `needles` that occurs in `hay` (a two-byte prefix table keeps this fast in a
/// debug build, where a naive search of megabytes for dozens of needles takes seconds).
fn find_any<'a>(hay: &[u8], needles: &'a [Vec<u8>]) -> Option<&'a [u8]> {
    let mut first = vec![false; 1 << 16];
    let shortest = needles.iter().map(Vec::len).min()?;
    assert!(shortest >= 2, "needles must be at least two bytes");
    for n in needles {
        first[(usize::from(n[0]) << 8) | usize::from(n[1])] = true;
    }
    for i in 0..(hay.len() + 1).saturating_sub(shortest) {
        if first[(usize::from(hay[i]) << 8) | usize::from(hay[i + 1])] {
            for n in needles {
                if hay[i..].starts_with(n) {
                    return Some(n);
                }
            }
        }
    }
    None
}

/// Where the moto server is, or `None` (after a note) when it was not started and the run does
/// not require it.
fn moto_endpoint() -> Option<String> {
    const VAR: &str = "LDV_TEST_S3_MOTO_ENDPOINT";
    match std::env::var(VAR) {
        Ok(endpoint) if !endpoint.is_empty() => Some(endpoint),
        _ => {
            assert!(
                std::env::var_os("LDV_TEST_REQUIRE_ALL").is_none(),
                "{VAR} is not set but LDV_TEST_REQUIRE_ALL is: the S3 server did not start \
                 (eval \"$(scripts/s3-servers start)\")"
            );
            eprintln!(
                "skipped: {VAR} is not set (no moto server; eval \"$(scripts/s3-servers start)\")"
            );
            None
        }
    }
}

fn var_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn s3_access_key() -> String {
    var_or("LDV_TEST_S3_ACCESS_KEY", "ldvtest")
}

fn s3_secret_key() -> String {
    var_or("LDV_TEST_S3_SECRET_KEY", "ldvtest-secret-key")
}

fn s3_bucket() -> String {
    var_or("LDV_TEST_S3_BUCKET", "ldv-test")
}

/// `ldv --config profile.toml --profile NAME` with a clean AWS environment: no `AWS_*` variable
/// of this process (this machine may set `AWS_CA_BUNDLE`), no shared config or credentials file,
/// no instance metadata; only the moto credentials (moto accepts any).
fn aws_ldv(env: &Env, profile: &str) -> Command {
    let mut std = env.std_command();
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            std.env_remove(key);
        }
    }
    let nowhere = env.root().join("nonexistent");
    std.env("AWS_CONFIG_FILE", nowhere.join("aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            nowhere.join("aws-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", s3_access_key())
        .env("AWS_SECRET_ACCESS_KEY", s3_secret_key())
        .env(RAW_VAR, RAW_KEY)
        .arg("--config")
        .arg(env.config_path())
        .args(["--profile", profile]);
    let mut cmd = Command::from_std(std);
    cmd.timeout(S3_TIMEOUT);
    cmd
}

/// A runtime for the AWS SDK clients the tests use to look at moto directly.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn kms_client(endpoint: &str) -> aws_sdk_kms::Client {
    use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            s3_access_key(),
            s3_secret_key(),
            None,
            None,
            "ldv-tests",
        ))
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

/// A new symmetric KMS key on moto: its id.
fn create_kms_key(rt: &tokio::runtime::Runtime, client: &aws_sdk_kms::Client) -> String {
    let out = rt
        .block_on(client.create_key().description("ldv test key").send())
        .expect("moto CreateKey");
    out.key_metadata()
        .expect("CreateKey returns metadata")
        .key_id()
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// 1. Every compression × cipher combination round-trips
// ---------------------------------------------------------------------------------------------

/// (profile name, frame code) of each compression.
const COMPRESSIONS: [(&str, u8); 4] = [("none", 0), ("gzip", 1), ("zstd", 2), ("lz4", 3)];
/// (profile name, frame code) of each cipher; `none` means no `encryption` section.
const CIPHERS: [(&str, u8); 3] = [("none", 0), ("aes-256-gcm", 1), ("chacha20-poly1305", 2)];

#[test]
fn every_compression_and_cipher_round_trips_on_a_local_vault() {
    for format in FORMATS {
        every_compression_and_cipher_round_trips(format);
    }
}

fn every_compression_and_cipher_round_trips(format: u8) {
    let text_len = 1536 * KIB;
    let random_len = 1536 * KIB;
    let mut data = text_bytes(11, text_len);
    data.extend_from_slice(&random_bytes(12, random_len));
    let size = data.len() as u64;

    for (compression, ccode) in COMPRESSIONS {
        for (cipher, kcode) in CIPHERS {
            let combo = format!("format {format}, compression {compression}, cipher {cipher}");
            let env = Env::bare_in(format);
            let mut extra = format!("compression = {{ algorithm = \"{compression}\" }}\n");
            if cipher != "none" {
                extra.push_str(&raw_encryption(cipher));
            }
            env.write_config(&local_profile(&env, "t", &extra));
            ldv(&env, "t").arg("init").assert().success();
            let descriptor: Value = serde_json::from_slice(
                &std::fs::read(env.vault_dir().join("ldv-vault.json")).unwrap(),
            )
            .unwrap();
            if cipher == "none" {
                assert!(descriptor.get("encryption").is_none(), "{combo}");
            } else {
                assert_eq!(descriptor["encryption"]["algorithm"], cipher, "{combo}");
            }

            let src = env.write("input.bin", &data);
            let receipt = env.put_json(ldv(&env, "t"), &src, "corpus/input.bin");
            assert_eq!(u(&receipt["size"]), size, "{combo}");
            assert_eq!(receipt["sha256"], sha256_hex(&data), "{combo}");
            let n = u(&receipt["chunks"]);
            assert!(n >= 4, "{combo}: expected several chunks: {receipt:#}");
            assert_eq!(u(&receipt["new_chunks"]), n, "{combo}: {receipt:#}");

            // Stored sizes: exactly header (+ seal) per chunk without compression; the text
            // part well compressed with it.
            let uploaded = u(&receipt["bytes_uploaded"]);
            let per_chunk = (HEADER_LEN + if cipher == "none" { 0 } else { SEAL_OVERHEAD }) as u64;
            if compression == "none" {
                assert_eq!(uploaded, size + n * per_chunk, "{combo}: {receipt:#}");
            } else {
                assert!(
                    uploaded < size - text_len as u64 / 3,
                    "{combo}: {uploaded} bytes uploaded for {size} bytes of which {text_len} \
                     are text: the text was not compressed"
                );
            }

            // The frames on disk: chunk objects (format 1) or ranges of packs (format 2).
            let chunks = env.chunks_of(ldv(&env, "t"), "corpus/input.bin");
            assert_eq!(chunks.len() as u64, n, "{combo}");
            let frames = env.sealed_frames(&env.stored_of(ldv(&env, "t"), "corpus/input.bin"));
            if cipher == "none" {
                assert_eq!(frames, env.frames(), "{combo}: the packs' trailers");
            }
            let mut compressed_text_chunks = 0;
            for (offset, len, id) in &chunks {
                let (offset, len) = (*offset as usize, *len as usize);
                let frame = frames[id].read();
                let header = &frame[..HEADER_LEN];
                assert_eq!(&header[..5], b"LDVC\x01", "{combo}: chunk {id}");
                assert_eq!(header[6], kcode, "{combo}: cipher byte of chunk {id}");
                assert!(
                    header[5] == 0 || header[5] == ccode,
                    "{combo}: compression byte {} of chunk {id}",
                    header[5]
                );
                let plain = &data[offset..offset + len];
                if cipher == "none" {
                    assert_eq!(
                        *id,
                        sha256_hex(plain),
                        "{combo}: plain chunk ids are SHA-256"
                    );
                } else {
                    assert_ne!(*id, sha256_hex(plain), "{combo}: chunk ids must be keyed");
                }
                if header[5] == 0 {
                    assert_eq!(
                        frame.len(),
                        len + per_chunk as usize,
                        "{combo}: uncompressed frame of chunk {id}"
                    );
                    if cipher == "none" {
                        assert_bytes(&frame[HEADER_LEN..], plain, &combo);
                    }
                } else {
                    assert!(
                        frame.len() < len,
                        "{combo}: chunk {id} grew when compressed"
                    );
                }
                let in_text = offset + len <= text_len;
                let in_random = offset >= text_len;
                if in_random {
                    assert_eq!(header[5], 0, "{combo}: random chunk {id} stored compressed");
                }
                if in_text && compression != "none" {
                    assert_eq!(header[5], ccode, "{combo}: text chunk {id} not compressed");
                    assert!(
                        frame.len() < len * 6 / 10,
                        "{combo}: text chunk {id} of {len} bytes stored in {}",
                        frame.len()
                    );
                    compressed_text_chunks += 1;
                }
            }
            if compression != "none" {
                assert!(
                    compressed_text_chunks >= 2,
                    "{combo}: only {compressed_text_chunks} chunks wholly in the text part"
                );
            }

            // Back out: get, cat, a range, verify.
            let dest = env.path("out.bin");
            ldv(&env, "t")
                .args(["get", "corpus/input.bin"])
                .arg(&dest)
                .assert()
                .success();
            assert_file(&dest, &data);
            let out = ldv(&env, "t")
                .args(["cat", "corpus/input.bin"])
                .assert()
                .success();
            assert_bytes(&out.get_output().stdout, &data, &format!("{combo}: cat"));
            let (a, b) = (text_len - 1000, text_len + 300 * KIB);
            let out = ldv(&env, "t")
                .args(["cat", "corpus/input.bin", "--range", &format!("{a}-{b}")])
                .assert()
                .success();
            assert_bytes(
                &out.get_output().stdout,
                &data[a..=b],
                &format!("{combo}: cat --range"),
            );
            let out = ldv(&env, "t")
                .args(["--json", "verify", "--read-data"])
                .assert()
                .code(0);
            let report = json_of(out.get_output());
            assert_eq!(report["problems"], serde_json::json!([]), "{combo}");
            assert_eq!(u(&report["chunks_read"]), n, "{combo}: {report:#}");

            // The same file again: every chunk deduplicated, nothing uploaded.
            let again = env.put_json(ldv(&env, "t"), &src, "corpus/input.bin");
            assert_eq!(u(&again["new_chunks"]), 0, "{combo}: {again:#}");
            assert_eq!(u(&again["bytes_uploaded"]), 0, "{combo}: {again:#}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. zstd + AES-256-GCM on S3 (moto)
// ---------------------------------------------------------------------------------------------

#[test]
fn zstd_and_aes_gcm_round_trip_on_s3() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let env = Env::bare();
    let prefix = format!("encryption-{:08x}", rand::random::<u32>());
    let profile = format!(
        "[profiles.t]\n\
         backend = {{ type = \"s3\", bucket = \"{}\", prefix = \"{prefix}\", region = \"us-east-1\", \
         endpoint = \"{endpoint}\", path_style = true, access_key_id = \"{}\", \
         secret_access_key = \"{}\" }}\n{SMALL_CHUNKS}\n\
         compression = {{ algorithm = \"zstd\", level = 3, min_size = \"4KiB\" }}\n{}\n",
        s3_bucket(),
        s3_access_key(),
        s3_secret_key(),
        raw_encryption("aes-256-gcm"),
    );
    env.write_config(&profile);
    aws_ldv(&env, "t").arg("init").assert().success();

    let mut data = text_bytes(21, 1024 * KIB);
    data.extend_from_slice(&random_bytes(22, 1536 * KIB));
    let src = env.write("input.bin", &data);
    let first = env.put_json(aws_ldv(&env, "t"), &src, "s3/input.bin");
    let n = u(&first["chunks"]);
    assert!(n >= 4, "{first:#}");
    assert_eq!(u(&first["new_chunks"]), n, "{first:#}");
    assert!(
        u(&first["bytes_uploaded"]) < data.len() as u64 - 1024 * KIB as u64 / 3,
        "the text part was not compressed: {first:#}"
    );

    let dest = env.path("out.bin");
    let out = aws_ldv(&env, "t")
        .args(["--json", "get", "s3/input.bin"])
        .arg(&dest)
        .assert()
        .success();
    assert_file(&dest, &data);
    assert_eq!(json_of(out.get_output())["sha256"], sha256_hex(&data));

    let second = env.put_json(aws_ldv(&env, "t"), &src, "s3/input.bin");
    assert_eq!(u(&second["new_chunks"]), 0, "{second:#}");
    assert_eq!(u(&second["bytes_uploaded"]), 0, "{second:#}");
    assert_eq!(u(&second["existing_chunks"]), n, "{second:#}");

    let out = aws_ldv(&env, "t")
        .args(["--json", "verify", "--read-data"])
        .assert()
        .code(0);
    let report = json_of(out.get_output());
    assert_eq!(report["problems"], serde_json::json!([]), "{report:#}");
    assert_eq!(u(&report["chunks_read"]), n, "{report:#}");

    // What moto holds: sealed frames under keyed ids, some compressed, in packs (this is a
    // format-2 vault): no chunk objects.
    let chunks = env.chunks_of(aws_ldv(&env, "t"), "s3/input.bin");
    let rt = runtime();
    let s3 = {
        use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .endpoint_url(&endpoint)
                .force_path_style(true)
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new(
                    s3_access_key(),
                    s3_secret_key(),
                    None,
                    None,
                    "ldv-tests",
                ))
                .build(),
        )
    };
    let keys = |dir: &str| -> Vec<String> {
        rt.block_on(async {
            let listed = s3
                .list_objects_v2()
                .bucket(s3_bucket())
                .prefix(format!("{prefix}/{dir}/"))
                .send()
                .await?;
            Ok::<_, Box<dyn std::error::Error>>(
                listed
                    .contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned))
                    .collect(),
            )
        })
        .unwrap_or_else(|e| panic!("list {prefix}/{dir}/ on moto: {e}"))
    };
    assert_eq!(
        keys("chunks"),
        Vec::<String>::new(),
        "chunk objects in a format-2 vault"
    );
    let mut by_len: std::collections::BTreeMap<usize, Vec<String>> = Default::default();
    for (id, stored) in env.stored_of(aws_ldv(&env, "t"), "s3/input.bin") {
        by_len.entry(stored as usize).or_default().push(id);
    }
    let mut frames = std::collections::BTreeMap::new();
    for key in keys("packs") {
        let pack = rt
            .block_on(async {
                let obj = s3.get_object().bucket(s3_bucket()).key(&key).send().await?;
                Ok::<_, Box<dyn std::error::Error>>(obj.body.collect().await?.into_bytes())
            })
            .unwrap_or_else(|e| panic!("GET {key} from moto: {e}"));
        let cut = cut_sealed_pack(&pack, &mut by_len)
            .unwrap_or_else(|| panic!("{key}: frames that are not the chunks' stored lengths"));
        for (id, offset, len) in cut {
            frames.insert(id, pack[offset..offset + len].to_vec());
        }
    }
    assert_eq!(frames.len(), chunks.len(), "every chunk is in a pack");
    let mut codes = Vec::new();
    for (offset, len, id) in &chunks {
        let frame = &frames[id];
        assert_eq!(&frame[..5], b"LDVC\x01", "{id}");
        assert_eq!(frame[6], 1, "{id}: cipher byte");
        let plain = &data[*offset as usize..(*offset + *len) as usize];
        assert_ne!(*id, sha256_hex(plain), "chunk ids are keyed");
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
}

// ---------------------------------------------------------------------------------------------
// 3. Nothing of the plaintext shows in an encrypted vault
// ---------------------------------------------------------------------------------------------

#[test]
fn encrypted_vaults_store_no_plaintext_hash_or_content() {
    const MARKER: &[u8] = b"LDV-MARKER-7f3a";
    const NAME: &str = "quarterly-figures.txt";
    // Text with the marker every few KiB, then random bytes with the marker too.
    let mut data = Vec::new();
    let text = text_bytes(31, 2048 * KIB);
    for piece in text.chunks(3 * KIB) {
        data.extend_from_slice(piece);
        data.extend_from_slice(MARKER);
    }
    let random = random_bytes(32, 2048 * KIB);
    for piece in random.chunks(5 * KIB) {
        data.extend_from_slice(piece);
        data.extend_from_slice(MARKER);
    }

    // The plaintext chunk boundaries, from a plain vault with the same chunker.
    let plain = Env::bare();
    plain.write_config(&local_profile(&plain, "t", ""));
    ldv(&plain, "t").arg("init").assert().success();
    let src = plain.write("input.txt", &data);
    let out = ldv(&plain, "t")
        .args(["--json", "chunk", "--long"])
        .arg(&src)
        .assert()
        .success();
    let plan = json_of(out.get_output());
    assert_eq!(plan["sha256"], sha256_hex(&data));
    let boundaries: Vec<(u64, u64)> = plan["list"]
        .as_array()
        .expect("chunk --json --long has a list")
        .iter()
        .map(|c| (u(&c["offset"]), u(&c["size"])))
        .collect();
    assert!(boundaries.len() >= 8, "{} chunks", boundaries.len());

    let mut needles: Vec<Vec<u8>> = vec![MARKER.to_vec(), NAME.as_bytes().to_vec()];
    let mut digests = vec![Sha256::digest(&data).to_vec()];
    for (offset, size) in &boundaries {
        digests.push(Sha256::digest(&data[*offset as usize..(*offset + *size) as usize]).to_vec());
    }
    for (i, (c, (offset, size))) in plan["list"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&boundaries)
        .enumerate()
    {
        assert_eq!(
            c["id"].as_str().unwrap(),
            hex::encode(&digests[i + 1]),
            "plain chunk {offset}+{size}"
        );
    }
    let mut hex_names = Vec::new();
    for d in &digests {
        needles.push(d.clone());
        needles.push(hex::encode(d).into_bytes());
        needles.push(hex::encode_upper(d).into_bytes());
        hex_names.push(hex::encode(d));
    }

    for (format, cipher) in FORMATS
        .into_iter()
        .flat_map(|f| [(f, "aes-256-gcm"), (f, "chacha20-poly1305")])
    {
        let cipher = &*format!("{cipher} (format {format})");
        let env = Env::bare_in(format);
        let algorithm = cipher.split(' ').next().unwrap();
        env.write_config(&local_profile(&env, "t", &raw_encryption(algorithm)));
        ldv(&env, "t").arg("init").assert().success();
        let src = env.write("input.txt", &data);
        env.put_json(ldv(&env, "t"), &src, NAME);
        let out = ldv(&env, "t").args(["cat", NAME]).assert().success();
        assert_bytes(&out.get_output().stdout, &data, cipher);

        // The encrypted vault cut the same chunks (so the hashes above are the stored chunks').
        let stored: Vec<(u64, u64)> = env
            .chunks_of(ldv(&env, "t"), NAME)
            .into_iter()
            .map(|(o, s, _)| (o, s))
            .collect();
        assert_eq!(stored, boundaries, "{cipher}: chunk boundaries differ");

        let files = tree_files(&env.vault_dir());
        // Every chunk is stored: as an object of its own (format 1), or in a pack (format 2).
        let stored = env.stored_of(ldv(&env, "t"), NAME);
        let frames = env.sealed_frames(&stored);
        assert_eq!(frames.len(), boundaries.len(), "{cipher}");
        if format == 1 {
            assert!(files.len() > boundaries.len(), "{cipher}: {files:?}");
        } else {
            assert!(env.chunk_objects().is_empty(), "{cipher}: {files:?}");
            assert!(!env.packs().is_empty(), "{cipher}: {files:?}");
            assert!(!env.index_segments().is_empty(), "{cipher}: {files:?}");
        }
        for (rel, content) in &files {
            if let Some(found) = find_any(content, &needles) {
                panic!(
                    "{cipher}: {rel} holds {:?} (plaintext or a plaintext hash)",
                    String::from_utf8_lossy(found)
                );
            }
            assert!(
                !rel.contains(std::str::from_utf8(MARKER).unwrap()),
                "{cipher}: path {rel}"
            );
            for h in &hex_names {
                assert!(
                    !rel.contains(h.as_str()),
                    "{cipher}: path {rel} is a SHA-256"
                );
            }
            if rel.contains(NAME) {
                assert!(
                    rel.starts_with(&format!("manifests/{NAME}/")),
                    "{cipher}: the object name shows in {rel}"
                );
            }
        }
        // Every stored object except the descriptor is a sealed frame of this cipher; a pack
        // is sealed frames and a sealed trailer.
        let code = if algorithm == "aes-256-gcm" { 1 } else { 2 };
        for path in files_below(&env.vault_dir().join("chunks"))
            .into_iter()
            .chain(files_below(&env.vault_dir().join("manifests")))
            .chain(env.index_segments())
        {
            let header = header_of(&path);
            assert_eq!(&header[..5], b"LDVC\x01", "{}", path.display());
            assert_eq!(header[6], code, "{}", path.display());
        }
        for frame in frames.values() {
            let header = frame.read();
            assert_eq!(&header[..5], b"LDVC\x01", "{frame:?}");
            assert_eq!(header[6], code, "{frame:?}");
        }
        for pack in env.packs() {
            let bytes = std::fs::read(&pack).unwrap();
            let (frames_len, _) = pack_layout(&bytes);
            let trailer = &bytes[frames_len..];
            assert_eq!(&trailer[..5], b"LDVC\x01", "trailer of {}", pack.display());
            assert_eq!(trailer[6], code, "trailer of {}", pack.display());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Wrong keys and mismatched profiles
// ---------------------------------------------------------------------------------------------

#[test]
fn a_wrong_passphrase_exits_5_naming_the_vault_and_reads_nothing() {
    let env = Env::bare();
    let text = format!(
        "{}{}",
        local_profile(
            &env,
            "t",
            r#"encryption = { algorithm = "chacha20-poly1305", key = { env = "VAULT_PASS" } }"#
        ),
        local_profile(
            &env,
            "json",
            r#"encryption = { algorithm = "chacha20-poly1305", key = { env = "VAULT_PASS" } }"#
        ),
    );
    env.write_config(&text);
    let right = |cmd: &mut Command| {
        cmd.env("VAULT_PASS", "correct horse battery staple");
    };
    let wrong = |cmd: &mut Command| {
        cmd.env("VAULT_PASS", "correct horse battery stapler");
    };
    let mut init = ldv(&env, "t");
    right(&mut init);
    init.arg("init").assert().success();
    let data = text_bytes(41, 300 * KIB);
    let src = env.write("doc.txt", &data);
    let mut put = ldv(&env, "t");
    right(&mut put);
    put.arg("put").arg(&src).arg("doc.txt").assert().success();

    let before = env.vault_snapshot();
    let dest_dir = env.path("dest");
    std::fs::create_dir(&dest_dir).unwrap();
    let dest = dest_dir.join("doc.txt");
    let cases: Vec<Vec<String>> = vec![
        vec!["ls".into()],
        vec!["ls".into(), "-l".into()],
        vec!["cat".into(), "doc.txt".into()],
        vec!["get".into(), "doc.txt".into(), dest.display().to_string()],
        vec!["get".into(), "doc.txt".into(), "-".into()],
        vec!["stat".into(), "doc.txt".into()],
        vec!["verify".into(), "--read-data".into()],
        vec!["put".into(), src.display().to_string(), "other.txt".into()],
        vec!["rm".into(), "--yes".into(), "doc.txt".into()],
        vec!["gc".into(), "--yes".into(), "--grace".into(), "0s".into()],
        vec!["chunk".into(), src.display().to_string()],
        vec!["key".into(), "list".into()],
        vec!["init".into()],
        vec!["unlock".into()],
    ];
    for args in &cases {
        let mut cmd = ldv(&env, "t");
        wrong(&mut cmd);
        let out = run(cmd.args(args));
        assert_eq!(code_of(&out), Some(5), "{args:?}: {}", text_of(&out));
        let line = error_line(&out);
        assert!(
            line.contains("wrong key") && line.contains(&env.vault_url()),
            "{args:?}: the error should say the key is wrong and name the vault: {line}"
        );
        assert!(
            !line.contains("correct horse"),
            "{args:?}: the passphrase shows: {line}"
        );
        assert!(
            out.stdout.is_empty(),
            "{args:?} printed on stdout: {}",
            text_of(&out)
        );
        let left: Vec<_> = std::fs::read_dir(&dest_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{args:?} left files behind: {left:?}");
        assert_eq!(env.vault_snapshot(), before, "{args:?} changed the vault");
    }

    // The JSON form says the same.
    let mut cmd = ldv(&env, "json");
    wrong(&mut cmd);
    let out = run(cmd.args(["--json", "cat", "doc.txt"]));
    assert_eq!(code_of(&out), Some(5), "{}", text_of(&out));
    let err = json_of(&out);
    assert_eq!(err["error"]["exit_code"], 5);
    assert_eq!(err["error"]["kind"], "permission_denied", "{err:#}");

    // The right passphrase still reads it.
    let mut cat = ldv(&env, "t");
    right(&mut cat);
    let out = cat.args(["cat", "doc.txt"]).assert().success();
    assert_bytes(
        &out.get_output().stdout,
        &data,
        "cat with the right passphrase",
    );
}

#[test]
fn a_profile_whose_encryption_disagrees_with_the_vault_exits_2_and_changes_nothing() {
    // An encrypted vault and a plain one, each with data.
    let enc = Env::bare();
    let plain = Env::bare();
    let both = |env: &Env| {
        [
            local_profile(env, "plain", ""),
            local_profile(env, "aes", &raw_encryption("aes-256-gcm")),
            local_profile(env, "chacha", &raw_encryption("chacha20-poly1305")),
        ]
        .concat()
    };
    enc.write_config(&both(&enc));
    plain.write_config(&both(&plain));
    ldv(&enc, "aes").arg("init").assert().success();
    ldv(&plain, "plain").arg("init").assert().success();
    let data = text_bytes(51, 200 * KIB);
    for (env, profile) in [(&enc, "aes"), (&plain, "plain")] {
        let src = env.write("doc.txt", &data);
        ldv(env, profile)
            .arg("put")
            .arg(&src)
            .arg("doc.txt")
            .assert()
            .success();
    }

    let cases = |env: &Env| -> Vec<Vec<String>> {
        let src = env.path("doc.txt").display().to_string();
        let dest = env.path("dest/doc.txt").display().to_string();
        vec![
            vec!["init".into()],
            vec!["ls".into()],
            vec!["cat".into(), "doc.txt".into()],
            vec!["get".into(), "doc.txt".into(), dest],
            vec!["stat".into(), "doc.txt".into()],
            vec!["verify".into(), "--read-data".into()],
            vec!["put".into(), src.clone(), "new.txt".into()],
            vec!["rm".into(), "--yes".into(), "doc.txt".into()],
            vec!["gc".into(), "--yes".into(), "--grace".into(), "0s".into()],
            vec!["chunk".into(), src],
            vec!["key".into(), "list".into()],
            vec!["unlock".into()],
        ]
    };
    // (env, profile, what the message must say)
    let mismatches = [
        (&enc, "plain", "is encrypted"),
        (&plain, "aes", "is not encrypted"),
        (&plain, "chacha", "is not encrypted"),
        (&enc, "chacha", "encrypted with aes-256-gcm"),
    ];
    for (env, profile, needle) in mismatches {
        std::fs::create_dir_all(env.path("dest")).unwrap();
        let before = env.vault_snapshot();
        for args in cases(env) {
            let out = run(ldv(env, profile).args(&args));
            assert_eq!(
                code_of(&out),
                Some(2),
                "profile {profile}, {args:?}: {}",
                text_of(&out)
            );
            let line = error_line(&out);
            assert!(
                line.contains(needle) && line.contains(&env.vault_url()),
                "profile {profile}, {args:?}: {line}"
            );
            assert!(
                out.stdout.is_empty(),
                "profile {profile}, {args:?}: {}",
                text_of(&out)
            );
            assert_eq!(
                env.vault_snapshot(),
                before,
                "profile {profile}, {args:?} changed the vault"
            );
            assert!(
                std::fs::read_dir(env.path("dest"))
                    .unwrap()
                    .next()
                    .is_none(),
                "profile {profile}, {args:?} wrote a file"
            );
        }
    }
    // Without any profile, the encrypted vault is refused as well.
    let before = enc.vault_snapshot();
    let out = run(enc.ldv_vault().arg("ls"));
    assert_eq!(code_of(&out), Some(2), "{}", text_of(&out));
    assert!(error_line(&out).contains("is encrypted"));
    assert_eq!(enc.vault_snapshot(), before);

    // Both still read with their own profiles.
    for (env, profile) in [(&enc, "aes"), (&plain, "plain")] {
        let out = ldv(env, profile)
            .args(["cat", "doc.txt"])
            .assert()
            .success();
        assert_bytes(&out.get_output().stdout, &data, profile);
    }
}

/// `ldv health` with a wrong key, or with a profile that disagrees with the vault, should exit
/// as every other command does (5 and 2, README: "A wrong key exits 5 ... refused (exit 2)").
#[test]
fn health_reports_a_wrong_key_as_denied_and_a_mismatch_as_a_usage_error() {
    let env = Env::bare();
    env.write_config(
        &[
            local_profile(&env, "aes", &raw_encryption("aes-256-gcm")),
            local_profile(&env, "plain", ""),
        ]
        .concat(),
    );
    ldv(&env, "aes").arg("init").assert().success();
    ldv(&env, "aes").arg("health").assert().code(0);
    let out = run(ldv(&env, "aes").env(RAW_VAR, "ab".repeat(32)).arg("health"));
    assert_eq!(code_of(&out), Some(5), "wrong key: {}", text_of(&out));
    let out = run(ldv(&env, "plain").arg("health"));
    assert_eq!(code_of(&out), Some(2), "plain profile: {}", text_of(&out));
}

// ---------------------------------------------------------------------------------------------
// 5. Damage fails closed
// ---------------------------------------------------------------------------------------------

/// Asserts `ldv cat NAME` (through `cmd`) exits 4 with a one-line integrity error and prints
/// nothing on stdout; `what` describes the damage.
fn cat_fails_closed(cmd: Command, name: &str, what: &dyn Fn() -> String) {
    let mut cmd = cmd;
    let out = run(cmd.args(["cat", name]));
    assert_eq!(code_of(&out), Some(4), "{}: {}", what(), text_of(&out));
    assert!(
        out.stdout.is_empty(),
        "{}: cat printed {} bytes",
        what(),
        out.stdout.len()
    );
    let line = error_line(&out);
    assert!(line.contains("integrity"), "{}: {line}", what());
}

#[test]
fn a_thousand_single_bit_flips_in_sealed_chunks_fail_closed() {
    for format in FORMATS {
        thousand_single_bit_flips(format);
    }
}

fn thousand_single_bit_flips(format: u8) {
    const FLIPS: usize = 1000;
    const OBJECTS: usize = 4;
    const SEED: u64 = 0x5eed_f11b;
    let env = Env::bare_in(format);
    env.write_config(&local_profile(
        &env,
        "t",
        &format!(
            "compression = {{ algorithm = \"zstd\" }}\n{}",
            raw_encryption("aes-256-gcm")
        ),
    ));
    ldv(&env, "t").arg("init").assert().success();
    // Single-chunk objects (below the 64 KiB minimum chunk): two compressible, two random, so
    // frames with and without compression are both damaged.
    let mut objects = Vec::new();
    for i in 0..OBJECTS {
        let data = if i % 2 == 0 {
            text_bytes(60 + i as u64, 48 * KIB)
        } else {
            random_bytes(60 + i as u64, 40 * KIB)
        };
        let name = format!("obj-{i}");
        let src = env.write(&name, &data);
        let packs = env.packs();
        ldv(&env, "t")
            .arg("put")
            .arg(&src)
            .arg(&name)
            .assert()
            .success();
        let chunks = env.stored_of(ldv(&env, "t"), &name);
        assert_eq!(chunks.len(), 1, "{name} is not one chunk");
        // Its chunk object (format 1), or its range of the pack this put wrote (format 2).
        let stored = env
            .sealed_frames_in(&env.packs_since(&packs), &chunks)
            .remove(&chunks[0].0)
            .unwrap();
        let frame = stored.read();
        let code = if i % 2 == 0 { 2 } else { 0 };
        assert_eq!(frame[5], code, "{name}: compression byte");
        objects.push((name, data, stored, frame));
    }

    std::thread::scope(|s| {
        for (t, (name, data, stored, frame)) in objects.iter().enumerate() {
            let env = &env;
            s.spawn(move || {
                let seed = SEED + t as u64;
                let mut rng = StdRng::seed_from_u64(seed);
                let len = frame.len();
                let regions = [
                    ("header", 0, HEADER_LEN),
                    ("nonce", HEADER_LEN, HEADER_LEN + NONCE_LEN),
                    ("body", HEADER_LEN + NONCE_LEN, len - TAG_LEN),
                    ("tag", len - TAG_LEN, len),
                ];
                for i in 0..FLIPS / OBJECTS {
                    let (region, lo, hi) = regions[i % regions.len()];
                    let at = rng.random_range(lo..hi);
                    let bit = rng.random_range(0..8u8);
                    let mut damaged = frame.clone();
                    damaged[at] ^= 1 << bit;
                    stored.write(&damaged);
                    cat_fails_closed(ldv(env, "t"), name, &|| {
                        format!(
                            "format {format}, {name} (seed {seed:#x}, flip {i}): bit {bit} of \
                             byte {at} ({region}) of a {len}-byte frame"
                        )
                    });
                    stored.write(frame);
                }
                // Restored, it reads again: the failures were the damage.
                let out = ldv(env, "t").args(["cat", name]).assert().success();
                assert_bytes(&out.get_output().stdout, data, name);
            });
        }
    });
}

#[test]
fn damaged_or_moved_manifests_and_moved_chunks_fail_closed() {
    for format in FORMATS {
        damaged_or_moved_manifests_and_moved_chunks(format);
    }
}

fn damaged_or_moved_manifests_and_moved_chunks(format: u8) {
    const SEED: u64 = 0x0a11_fe57;
    let env = Env::bare_in(format);
    env.write_config(&local_profile(
        &env,
        "t",
        &raw_encryption("chacha20-poly1305"),
    ));
    ldv(&env, "t").arg("init").assert().success();
    let a = text_bytes(71, 30 * KIB);
    let b = text_bytes(72, 30 * KIB);
    // Two random objects of one size too, stored uncompressed: their frames are as long, so
    // one fits in the other's place in a pack; only the pack each put wrote tells them apart.
    let c = random_bytes(73, 30 * KIB);
    let d = random_bytes(74, 30 * KIB);
    let mut packs_of = Vec::new();
    for (name, data) in [("a.txt", &a), ("b.txt", &b), ("c.bin", &c), ("d.bin", &d)] {
        let src = env.write(name, data);
        let before = env.packs();
        ldv(&env, "t")
            .arg("put")
            .arg(&src)
            .arg(name)
            .assert()
            .success();
        packs_of.push(env.packs_since(&before));
    }
    let manifest_of = |name: &str| -> PathBuf {
        let files = files_below(&env.vault_dir().join("manifests").join(name));
        assert_eq!(files.len(), 1, "{name}: {files:?}");
        files[0].clone()
    };
    let (ma, mb) = (manifest_of("a.txt"), manifest_of("b.txt"));
    let (ma_bytes, mb_bytes) = (std::fs::read(&ma).unwrap(), std::fs::read(&mb).unwrap());
    assert_eq!(&ma_bytes[..5], b"LDVC\x01", "manifests are sealed frames");

    // Random single-bit flips over the whole manifest frame.
    let mut rng = StdRng::seed_from_u64(SEED);
    let len = ma_bytes.len();
    for i in 0..64 {
        let at = match i % 4 {
            0 => rng.random_range(0..HEADER_LEN),
            1 => rng.random_range(HEADER_LEN..HEADER_LEN + NONCE_LEN),
            2 => rng.random_range(HEADER_LEN + NONCE_LEN..len - TAG_LEN),
            _ => rng.random_range(len - TAG_LEN..len),
        };
        let bit = rng.random_range(0..8u8);
        let mut damaged = ma_bytes.clone();
        damaged[at] ^= 1 << bit;
        write_over(&ma, &damaged);
        let what = || {
            format!(
                "format {format}, manifest flip {i} (seed {SEED:#x}): bit {bit} of byte {at}/{len}"
            )
        };
        cat_fails_closed(ldv(&env, "t"), "a.txt", &what);
        let out = run(ldv(&env, "t").args(["stat", "a.txt"]));
        assert_eq!(
            code_of(&out),
            Some(4),
            "{}: stat: {}",
            what(),
            text_of(&out)
        );
        assert!(
            out.stdout.is_empty(),
            "{}: stat printed {}",
            what(),
            text_of(&out)
        );
        if i % 16 == 0 {
            let dest = env.path("dest.txt");
            let out = run(ldv(&env, "t").args(["get", "a.txt"]).arg(&dest));
            assert_eq!(code_of(&out), Some(4), "{}: get: {}", what(), text_of(&out));
            assert!(!dest.exists(), "{}: get wrote {}", what(), dest.display());
        }
    }
    write_over(&ma, &ma_bytes);

    // b's manifest in a's place: sealed for another key, refused.
    write_over(&ma, &mb_bytes);
    cat_fails_closed(ldv(&env, "t"), "a.txt", &|| {
        "b's manifest under a's key".into()
    });
    write_over(&ma, &ma_bytes);

    // b's chunk object under a's chunk id (format 1): sealed for another id, refused.
    if format == 1 {
        let ca = env.chunk_file(&env.chunks_of(ldv(&env, "t"), "a.txt")[0].2);
        let cb = env.chunk_file(&env.chunks_of(ldv(&env, "t"), "b.txt")[0].2);
        let ca_bytes = std::fs::read(&ca).unwrap();
        write_over(&ca, &std::fs::read(&cb).unwrap());
        cat_fails_closed(ldv(&env, "t"), "a.txt", &|| "b's chunk under a's id".into());
        write_over(&ca, &ca_bytes);
    }
    // d's frame where c's is (its chunk object, or its range of a pack): refused too.
    let (sc, sd) = (
        env.stored_of(ldv(&env, "t"), "c.bin"),
        env.stored_of(ldv(&env, "t"), "d.bin"),
    );
    let (fc, fd) = (
        env.sealed_frames_in(&packs_of[2], &sc)
            .remove(&sc[0].0)
            .unwrap(),
        env.sealed_frames_in(&packs_of[3], &sd)
            .remove(&sd[0].0)
            .unwrap(),
    );
    let fc_bytes = fc.read();
    fc.write(&fd.read());
    cat_fails_closed(ldv(&env, "t"), "c.bin", &|| {
        format!("format {format}: d's frame under c's id")
    });
    fc.write(&fc_bytes);

    // A plaintext (unsealed) manifest planted in an encrypted vault is refused too.
    let planted = serde_json::to_vec(&serde_json::json!({"name": "a.txt"})).unwrap();
    write_over(&ma, &planted);
    cat_fails_closed(ldv(&env, "t"), "a.txt", &|| "plaintext manifest".into());
    write_over(&ma, &ma_bytes);

    for (name, data) in [("a.txt", &a), ("b.txt", &b), ("c.bin", &c), ("d.bin", &d)] {
        let out = ldv(&env, "t").args(["cat", name]).assert().success();
        assert_bytes(&out.get_output().stdout, data, name);
    }
    ldv(&env, "t")
        .args(["verify", "--read-data"])
        .assert()
        .code(0);
}

// ---------------------------------------------------------------------------------------------
// 6. Keys never reach the output
// ---------------------------------------------------------------------------------------------

/// Collects what every `ldv -v` run (with `RUST_LOG=trace`) printed, to search for secrets.
struct Transcript<'a> {
    env: &'a Env,
    runs: Vec<(String, String)>,
}

impl<'a> Transcript<'a> {
    fn new(env: &'a Env) -> Self {
        Self {
            env,
            runs: Vec::new(),
        }
    }

    /// Runs `ldv -v --profile PROFILE ARGS` with `vars` set; checks the exit code.
    fn run(&mut self, profile: &str, vars: &[(&str, &str)], args: &[&str], code: i32) -> Output {
        let out = self.run_any(profile, vars, args);
        assert_eq!(
            code_of(&out),
            Some(code),
            "--profile {profile} {}: {}",
            args.join(" "),
            text_of(&out)
        );
        out
    }

    /// Runs `ldv -v --profile PROFILE ARGS` with `vars` set, whatever its exit code.
    fn run_any(&mut self, profile: &str, vars: &[(&str, &str)], args: &[&str]) -> Output {
        let mut cmd = self.env.bare_ldv();
        cmd.arg("--config")
            .arg(self.env.config_path())
            .args(["--profile", profile, "-v"])
            .env("RUST_LOG", "trace")
            .args(args);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let out = run(&mut cmd);
        let what = format!("--profile {profile} {}", args.join(" "));
        self.runs.push((what, text_of(&out)));
        out
    }

    /// Asserts none of `secrets` shows in any run's stdout or stderr.
    fn assert_free_of(&self, secrets: &[String]) {
        assert!(!self.runs.is_empty());
        for (what, text) in &self.runs {
            for secret in secrets {
                assert!(
                    !text.contains(secret.as_str()),
                    "`ldv {what}` printed the secret {secret:?}:\n{text}"
                );
            }
        }
    }
}

/// The ways a raw key could show: its hex (both cases), its base64, and the start of each.
fn key_forms(hex_key: &str) -> Vec<String> {
    let bytes = hex::decode(hex_key).unwrap();
    let b64 = B64.encode(&bytes);
    let b64_url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
    vec![
        hex_key.to_lowercase(),
        hex_key.to_uppercase(),
        hex_key[..16].to_lowercase(),
        hex_key[..16].to_uppercase(),
        b64.clone(),
        b64[..16].to_owned(),
        b64_url[..16].to_owned(),
        format!("{:?}", &bytes[..8]),
    ]
}

#[test]
fn passphrases_and_keys_never_show_in_output_or_logs() {
    const PASS: &str = "canary-pass-93f1c";
    const NEW_PASS: &str = "canary-newpass-4b7e";
    const PASSWD_PASS: &str = "canary-passwd-c3d9";
    const WRONG_PASS: &str = "canary-wrong-0e11";
    let raw_hex = "5ca1ab1e".repeat(8);
    let raw_b64 = B64.encode(hex::decode(&raw_hex).unwrap());
    let added_raw_hex = "0badc0de".repeat(8);
    let static_hex = "f00dcafe".repeat(8);
    let wrong_raw_hex = "defec8ed".repeat(8);
    let bad_raw = "5ca1ab1e".repeat(7) + "5ca1ab"; // 62 hex digits: not a key
    let bad_static = "f00dcafe".repeat(7) + "f00dca";

    let env = Env::bare();
    let vault = toml_string(&env.vault_dir());
    let raw_vault = toml_string(&env.root().join("raw-vault"));
    let static_vault = toml_string(&env.root().join("static-vault"));
    let config = format!(
        "[profiles.pass]\nbackend = {{ type = \"local\", path = {vault} }}\n{SMALL_CHUNKS}\n\
         encryption = {{ key = {{ env = \"CANARY_PASS\" }} }}\n\
         [profiles.raw]\nbackend = {{ type = \"local\", path = {raw_vault} }}\n{SMALL_CHUNKS}\n\
         compression = {{ algorithm = \"lz4\" }}\n\
         encryption = {{ algorithm = \"chacha20-poly1305\", key = {{ env = \"CANARY_RAW\", raw = true }} }}\n\
         [profiles.added]\nbackend = {{ type = \"local\", path = {raw_vault} }}\n\
         encryption = {{ algorithm = \"chacha20-poly1305\", key = {{ env = \"CANARY_ADDED\", raw = true }} }}\n\
         [profiles.static]\nbackend = {{ type = \"local\", path = {static_vault} }}\n{SMALL_CHUNKS}\n\
         compression = {{ algorithm = \"gzip\" }}\n\
         encryption = {{ key = {{ static = \"{static_hex}\" }} }}\n\
         [profiles.badstatic]\nbackend = {{ type = \"local\", path = {static_vault} }}\n\
         encryption = {{ key = {{ static = \"{bad_static}\" }} }}\n"
    );
    env.write_config(&config);
    let data = text_bytes(81, 600 * KIB);
    let src = env.write("canary.txt", &data);
    let src = src.to_str().unwrap();
    let dest = env.path("out.txt");
    let dest = dest.to_str().unwrap();
    let mut t = Transcript::new(&env);

    // Every command on each kind of vault, successes and failures.
    let pass = [("CANARY_PASS", PASS)];
    let raw = [("CANARY_RAW", raw_hex.as_str())];
    let stat: [(&str, &str); 0] = [];
    for (profile, vars) in [
        ("pass", &pass[..]),
        ("raw", &raw[..]),
        ("static", &stat[..]),
    ] {
        t.run(profile, vars, &["init"], 0);
        t.run(profile, vars, &["--json", "init"], 0);
        t.run(profile, vars, &["put", src, "c/canary.txt"], 0);
        t.run(profile, vars, &["--json", "put", src, "c/canary2.txt"], 0);
        t.run(profile, vars, &["put", src, "bad//name"], 2);
        t.run(profile, vars, &["get", "c/canary.txt", dest], 0);
        assert_file(Path::new(dest), &data);
        std::fs::remove_file(dest).unwrap();
        t.run(profile, vars, &["get", "c/missing.txt", dest], 3);
        t.run(profile, vars, &["cat", "c/canary.txt"], 0);
        t.run(profile, vars, &["cat", "c/missing.txt"], 3);
        t.run(profile, vars, &["cat", "../bad"], 2);
        t.run(profile, vars, &["ls", "-l"], 0);
        t.run(profile, vars, &["--json", "ls", "-l", "--versions"], 0);
        t.run(profile, vars, &["stat", "--chunks", "c/canary.txt"], 0);
        t.run(profile, vars, &["--json", "stat", "c/canary.txt"], 0);
        t.run(profile, vars, &["stat", "c/missing.txt"], 3);
        t.run(profile, vars, &["verify", "--read-data"], 0);
        t.run(profile, vars, &["--json", "verify", "--read-data"], 0);
        t.run(profile, vars, &["chunk", "--long", src], 0);
        t.run(profile, vars, &["--json", "chunk", src], 0);
        t.run(profile, vars, &["health"], 0);
        t.run(profile, vars, &["--json", "health"], 0);
        t.run(profile, vars, &["rm", "--yes", "c/canary2.txt"], 0);
        t.run(profile, vars, &["rm", "--yes", "c/missing.txt"], 3);
        t.run(profile, vars, &["gc", "--yes", "--grace", "0s"], 0);
        t.run(profile, vars, &["unlock"], 0);
        t.run(profile, vars, &["key", "list"], 0);
        t.run(profile, vars, &["--json", "key", "list"], 0);
    }

    // Wrong keys.
    t.run("pass", &[("CANARY_PASS", WRONG_PASS)], &["ls"], 5);
    t.run(
        "pass",
        &[("CANARY_PASS", WRONG_PASS)],
        &["--json", "cat", "c/canary.txt"],
        5,
    );
    // (health reports the wrong key on stdout; its exit code is another test's business)
    t.run_any("pass", &[("CANARY_PASS", WRONG_PASS)], &["health"]);
    t.run("raw", &[("CANARY_RAW", wrong_raw_hex.as_str())], &["ls"], 5);
    t.run(
        "raw",
        &[("CANARY_RAW", wrong_raw_hex.as_str())],
        &["get", "c/canary.txt", dest],
        5,
    );
    // Keys that are not keys.
    t.run("raw", &[("CANARY_RAW", bad_raw.as_str())], &["ls"], 2);
    t.run(
        "raw",
        &[("CANARY_RAW", bad_raw.as_str())],
        &["--json", "ls"],
        2,
    );
    t.run("badstatic", &[], &["ls"], 2);
    t.run("badstatic", &[], &["--json", "ls"], 2);
    // The raw key as base64 opens it too.
    t.run(
        "raw",
        &[("CANARY_RAW", raw_b64.as_str())],
        &["cat", "c/canary.txt"],
        0,
    );

    // Key management, with new secrets.
    let vars: Vec<(&str, &str)> = vec![
        ("CANARY_PASS", PASS),
        ("NEW_PASS", NEW_PASS),
        ("PASSWD_PASS", PASSWD_PASS),
        ("BAD_RAW", bad_raw.as_str()),
    ];
    t.run("pass", &vars, &["key", "add", "--from-env", "NEW_PASS"], 0);
    t.run(
        "pass",
        &vars,
        &["key", "add", "--from-env", "BAD_RAW", "--raw"],
        2,
    );
    t.run(
        "pass",
        &vars,
        &["key", "add", "--from-env", "UNSET_VAR_X"],
        2,
    );
    // No source for the new key and no terminal: the error says how to give one.
    let out = t.run("pass", &vars, &["key", "add"], 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("passphrase for the new key") && stderr.contains("--from-env VAR"),
        "{stderr}"
    );
    let out = t.run(
        "pass",
        &vars,
        &["--json", "key", "passwd", "--from-env", "PASSWD_PASS"],
        0,
    );
    let added = json_of(&out)["added"]["id"].as_str().unwrap().to_owned();
    t.run(
        "pass",
        &[("CANARY_PASS", PASSWD_PASS)],
        &["--yes", "key", "remove", &added],
        0,
    );
    t.run("pass", &[("CANARY_PASS", NEW_PASS)], &["key", "list"], 0);
    t.run(
        "pass",
        &[("CANARY_PASS", NEW_PASS)],
        &["key", "remove", "00000000"],
        3,
    );
    let vars: Vec<(&str, &str)> = vec![
        ("CANARY_RAW", raw_hex.as_str()),
        ("ADDED_RAW", added_raw_hex.as_str()),
    ];
    t.run(
        "raw",
        &vars,
        &["key", "add", "--from-env", "ADDED_RAW", "--raw"],
        0,
    );
    t.run(
        "added",
        &[("CANARY_ADDED", added_raw_hex.as_str())],
        &["cat", "c/canary.txt"],
        0,
    );
    t.run(
        "added",
        &[("CANARY_ADDED", added_raw_hex.as_str())],
        &["key", "list"],
        0,
    );
    t.run(
        "static",
        &[("ADDED_RAW", added_raw_hex.as_str())],
        &["key", "passwd", "--from-env", "ADDED_RAW", "--raw"],
        0,
    );
    // The static key's slot is gone now: the profile no longer opens its vault.
    t.run("static", &[], &["ls"], 5);

    let mut secrets: Vec<String> = [PASS, NEW_PASS, PASSWD_PASS, WRONG_PASS]
        .iter()
        .map(|s| s.to_string())
        .collect();
    secrets.push("canary-".into());
    for key in [&raw_hex, &added_raw_hex, &static_hex, &wrong_raw_hex] {
        secrets.extend(key_forms(key));
    }
    secrets.push(bad_raw[..16].to_owned());
    secrets.push(bad_static[..16].to_owned());
    t.assert_free_of(&secrets);
}

// ---------------------------------------------------------------------------------------------
// 7. ldv key
// ---------------------------------------------------------------------------------------------

/// `ldv --json key list` through `cmd`: the slots as (id, kind, current).
fn slots(cmd: Command) -> Vec<(String, String, bool)> {
    let mut cmd = cmd;
    let out = cmd.args(["--json", "key", "list"]).assert().success();
    json_of(out.get_output())["slots"]
        .as_array()
        .expect("key list --json has slots")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_owned(),
                s["kind"].as_str().unwrap().to_owned(),
                s["current"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn key_add_passwd_and_remove_rewrap_the_vault_key_without_touching_data() {
    let env = Env::bare();
    env.write_config(
        &[
            local_profile(
                &env,
                "t",
                r#"encryption = { key = { env = "VAULT_PASS" } }"#,
            ),
            local_profile(
                &env,
                "raw",
                &format!("encryption = {{ key = {{ env = \"{RAW_VAR}\", raw = true }} }}"),
            ),
            local_profile(&env, "plain", ""),
        ]
        .concat(),
    );
    let with = |pass: &str| {
        let mut cmd = ldv(&env, "t");
        cmd.env("VAULT_PASS", pass)
            .env("SECOND_PASS", "second passphrase")
            .env("THIRD_PASS", "third passphrase")
            .env("NEW_RAW", RAW_KEY);
        cmd
    };
    let (first, second, third) = ("first passphrase", "second passphrase", "third passphrase");
    with(first).arg("init").assert().success();
    let data = text_bytes(91, 700 * KIB);
    let src = env.write("data.txt", &data);
    with(first)
        .arg("put")
        .arg(&src)
        .arg("data.txt")
        .assert()
        .success();
    let reads = |pass: &str| {
        let out = with(pass).args(["cat", "data.txt"]).assert().success();
        assert_bytes(&out.get_output().stdout, &data, pass);
    };
    let denied = |pass: &str| {
        let out = run(with(pass).args(["cat", "data.txt"]));
        assert_eq!(code_of(&out), Some(5), "{pass}: {}", text_of(&out));
        assert!(out.stdout.is_empty());
        assert!(error_line(&out).contains("wrong key"));
    };
    // Chunks (chunk objects, or packs and index segments) and manifests.
    let data_dirs = ["chunks", "packs", "index", "manifests"].map(|d| env.vault_dir().join(d));
    let stored_data = || data_dirs.iter().map(|d| snapshot(d)).collect::<Vec<_>>();
    let data_before = stored_data();
    assert!(
        data_before.iter().map(|s| s.len()).sum::<usize>() >= 3,
        "{data_before:?}"
    );
    let data_unchanged = |when: &str| {
        assert_eq!(
            stored_data(),
            data_before,
            "{when}: chunks or manifests changed"
        );
    };

    let initial = slots(with(first));
    assert_eq!(initial.len(), 1, "{initial:?}");
    assert_eq!(initial[0].1, "passphrase");
    assert!(initial[0].2, "the one slot opened the vault");
    let slot1 = initial[0].0.clone();

    // add: two slots, both open the vault.
    let out = with(first)
        .args(["--json", "key", "add", "--from-env", "SECOND_PASS"])
        .assert()
        .success();
    let slot2 = json_of(out.get_output())["added"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = slots(with(first));
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed.iter().all(|s| s.1 == "passphrase"), "{listed:?}");
    assert_eq!(
        listed
            .iter()
            .filter(|s| s.2)
            .map(|s| &s.0)
            .collect::<Vec<_>>(),
        [&slot1]
    );
    let listed = slots(with(second));
    assert_eq!(
        listed
            .iter()
            .filter(|s| s.2)
            .map(|s| &s.0)
            .collect::<Vec<_>>(),
        [&slot2],
        "the second passphrase opens through its own slot"
    );
    reads(first);
    reads(second);
    denied(third);
    data_unchanged("key add");

    // remove refuses the slot that opened the vault without --yes.
    let before = env.vault_snapshot();
    let out = run(with(first).args(["key", "remove", &slot1]));
    assert_eq!(code_of(&out), Some(2), "{}", text_of(&out));
    assert!(error_line(&out).contains("--yes"));
    assert_eq!(env.vault_snapshot(), before);
    // ... and names an unknown slot.
    let out = run(with(first).args(["key", "remove", "deadbeef"]));
    assert_eq!(code_of(&out), Some(3), "{}", text_of(&out));
    assert!(error_line(&out).contains("deadbeef"));
    assert_eq!(env.vault_snapshot(), before);

    // passwd: the third passphrase replaces the first (the one that opened the vault).
    let out = with(first)
        .args(["--json", "key", "passwd", "--from-env", "THIRD_PASS"])
        .assert()
        .success();
    let receipt = json_of(out.get_output());
    assert_eq!(receipt["removed"]["id"], slot1.as_str(), "{receipt:#}");
    let slot3 = receipt["added"]["id"].as_str().unwrap().to_owned();
    let listed = slots(with(third));
    let mut ids: Vec<&str> = listed.iter().map(|s| s.0.as_str()).collect();
    ids.sort_unstable();
    let mut want = vec![slot2.as_str(), slot3.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want);
    denied(first);
    reads(second);
    reads(third);
    data_unchanged("key passwd");

    // remove the second slot (not the opening one: no --yes needed).
    with(third)
        .args(["key", "remove", &slot2])
        .assert()
        .success();
    denied(second);
    reads(third);
    let listed = slots(with(third));
    assert_eq!(listed.len(), 1, "{listed:?}");

    // The last slot is never removed, --yes or not.
    let before = env.vault_snapshot();
    let out = run(with(third).args(["--yes", "key", "remove", &slot3]));
    assert_eq!(code_of(&out), Some(2), "{}", text_of(&out));
    assert!(error_line(&out).contains("only key"), "{}", text_of(&out));
    assert_eq!(env.vault_snapshot(), before);
    reads(third);

    // A raw key can join a passphrase vault and open it through a raw profile.
    with(third)
        .args(["key", "add", "--from-env", "NEW_RAW", "--raw"])
        .assert()
        .success();
    let out = ldv(&env, "raw")
        .args(["cat", "data.txt"])
        .assert()
        .success();
    assert_bytes(&out.get_output().stdout, &data, "raw key");
    let listed = slots(ldv(&env, "raw"));
    let kinds: Vec<(&str, bool)> = listed.iter().map(|s| (s.1.as_str(), s.2)).collect();
    assert!(kinds.contains(&("raw-key", true)), "{listed:?}");
    assert!(kinds.contains(&("passphrase", false)), "{listed:?}");
    data_unchanged("key add --raw");

    // A plain vault has no keys.
    let plain = Env::bare();
    plain.write_config(&local_profile(&plain, "plain", ""));
    ldv(&plain, "plain").arg("init").assert().success();
    let out = run(ldv(&plain, "plain").args(["key", "list"]));
    assert_eq!(code_of(&out), Some(2), "{}", text_of(&out));
    assert!(error_line(&out).contains("not encrypted"));

    ldv(&env, "raw")
        .args(["verify", "--read-data"])
        .assert()
        .code(0);
}

// ---------------------------------------------------------------------------------------------
// 8. AWS KMS envelope encryption (moto)
// ---------------------------------------------------------------------------------------------

/// A profile `NAME` on this env's vault with `kms = KEY_ID` on moto.
fn kms_profile(env: &Env, name: &str, key_id: &str, endpoint: &str) -> String {
    local_profile(
        env,
        name,
        &format!(
            "compression = {{ algorithm = \"zstd\" }}\n\
             encryption = {{ key = {{ kms = \"{key_id}\", region = \"us-east-1\", endpoint = \"{endpoint}\" }} }}"
        ),
    )
}

#[test]
fn kms_envelope_encryption_round_trips_on_moto() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let rt = runtime();
    let kms = kms_client(&endpoint);
    let key_id = create_kms_key(&rt, &kms);
    let env = Env::bare();
    env.write_config(
        &[
            kms_profile(&env, "t", &key_id, &endpoint),
            local_profile(
                &env,
                "raw",
                &format!("encryption = {{ key = {{ env = \"{RAW_VAR}\", raw = true }} }}"),
            ),
        ]
        .concat(),
    );
    let trace = |cmd: &mut Command| {
        cmd.args(["-v"]).env("RUST_LOG", "trace");
    };
    let mut outputs = Vec::new();
    let mut init = aws_ldv(&env, "t");
    trace(&mut init);
    outputs.push(init.arg("init").assert().success().get_output().clone());

    // The descriptor holds one KMS slot naming the key.
    let descriptor: Value =
        serde_json::from_slice(&std::fs::read(env.vault_dir().join("ldv-vault.json")).unwrap())
            .unwrap();
    let slots = descriptor["encryption"]["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 1, "{descriptor:#}");
    assert_eq!(slots[0]["kind"], "kms", "{descriptor:#}");
    assert_eq!(slots[0]["key_id"], key_id.as_str(), "{descriptor:#}");

    let mut data = text_bytes(101, 512 * KIB);
    data.extend_from_slice(&random_bytes(102, 512 * KIB));
    let src = env.write("model.bin", &data);
    let mut put = aws_ldv(&env, "t");
    trace(&mut put);
    outputs.push(
        put.arg("put")
            .arg(&src)
            .arg("models/model.bin")
            .assert()
            .success()
            .get_output()
            .clone(),
    );
    let dest = env.path("out.bin");
    let mut get = aws_ldv(&env, "t");
    trace(&mut get);
    outputs.push(
        get.args(["get", "models/model.bin"])
            .arg(&dest)
            .assert()
            .success()
            .get_output()
            .clone(),
    );
    assert_file(&dest, &data);
    aws_ldv(&env, "t")
        .args(["verify", "--read-data"])
        .assert()
        .code(0);
    let listed = slots_of_kms(aws_ldv(&env, "t"));
    assert_eq!(listed, vec![("kms".to_owned(), Some(key_id.clone()), true)]);

    // The vault key (a KMS data key) never shows in ldv's output, even at trace level.
    let wrapped = B64
        .decode(slots[0]["wrapped"].as_str().unwrap())
        .expect("wrapped is base64");
    let vault_id = descriptor["vault_id"].as_str().unwrap().to_owned();
    let plain = rt
        .block_on(
            kms.decrypt()
                .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(wrapped))
                .encryption_context("ldv-vault", &vault_id)
                .send(),
        )
        .expect("moto Decrypt of the slot with the vault's encryption context");
    let vault_key = plain.plaintext().expect("plaintext").as_ref().to_vec();
    assert_eq!(vault_key.len(), 32);
    let forms = key_forms(&hex::encode(&vault_key));
    for out in &outputs {
        let text = text_of(out);
        for form in &forms {
            assert!(
                !text.contains(form.as_str()),
                "the vault key shows:\n{text}"
            );
        }
    }

    // A raw key added next to the KMS slot opens the same vault.
    aws_ldv(&env, "t")
        .args(["key", "add", "--from-env", RAW_VAR, "--raw"])
        .assert()
        .success();
    let out = ldv(&env, "raw")
        .args(["cat", "models/model.bin"])
        .assert()
        .success();
    assert_bytes(&out.get_output().stdout, &data, "raw key next to KMS");
}

/// `ldv --json key list` through `cmd`: (kind, kms key id, current) of each slot.
fn slots_of_kms(cmd: Command) -> Vec<(String, Option<String>, bool)> {
    let mut cmd = cmd;
    let out = cmd.args(["--json", "key", "list"]).assert().success();
    json_of(out.get_output())["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["kind"].as_str().unwrap().to_owned(),
                s["kms_key_id"].as_str().map(str::to_owned),
                s["current"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// A profile naming another KMS key must not open the vault: the key that opens a vault is the
/// profile's, so Decrypt must name it (else KMS decrypts with whatever key the ciphertext names
/// and any profile with a KMS key opens the vault).
#[test]
fn kms_vault_refuses_a_profile_naming_another_kms_key() {
    let Some(endpoint) = moto_endpoint() else {
        return;
    };
    let rt = runtime();
    let kms = kms_client(&endpoint);
    let key_id = create_kms_key(&rt, &kms);
    let other_id = create_kms_key(&rt, &kms);
    let env = Env::bare();
    env.write_config(
        &[
            kms_profile(&env, "t", &key_id, &endpoint),
            kms_profile(&env, "other", &other_id, &endpoint),
        ]
        .concat(),
    );
    aws_ldv(&env, "t").arg("init").assert().success();
    let data = text_bytes(111, 100 * KIB);
    let src = env.write("doc.txt", &data);
    aws_ldv(&env, "t")
        .arg("put")
        .arg(&src)
        .arg("doc.txt")
        .assert()
        .success();

    let before = env.vault_snapshot();
    let out = run(aws_ldv(&env, "other").args(["cat", "doc.txt"]));
    assert_eq!(
        code_of(&out),
        Some(5),
        "a profile with KMS key {other_id} opened a vault wrapped under {key_id}: {}",
        text_of(&out)
    );
    assert!(out.stdout.is_empty(), "cat printed the content");
    assert!(error_line(&out).contains("wrong key"));
    assert_eq!(env.vault_snapshot(), before);
}
