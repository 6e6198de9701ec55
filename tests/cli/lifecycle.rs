//! The integrity and lifecycle commands on a real vault directory: `gc` deletes exactly the
//! chunks no version references and nothing else, `verify` finds and names every kind of damage,
//! `chunk` plans a put against what the vault holds, and vault locks written by other processes
//! block, or do not block, the commands they should.
//!
//! Expected results are computed from the vault directory itself (manifest JSON files and chunk
//! files), never from the command under test.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::common::{
    Env, FORMATS, assert_bytes, error_line, flip_byte, json_of, lines_of, random_bytes, sha256_hex,
    snapshot, write_over,
};

/// Length of the chunk frame header (magic, format, compression, cipher).
const HEADER_LEN: u64 = 7;

// ---------------------------------------------------------------------------------------------
// Reading the vault directory
// ---------------------------------------------------------------------------------------------

/// One manifest as stored: `name@version` and its chunk ids in order.
struct StoredManifest {
    label: String,
    chunks: Vec<String>,
}

/// Every manifest file under `vault/manifests`, parsed.
fn stored_manifests(env: &Env) -> Vec<StoredManifest> {
    let dir = env.vault_dir().join("manifests");
    let mut out = Vec::new();
    for (rel, hash) in snapshot(&dir) {
        if hash == "dir" {
            continue;
        }
        let raw = std::fs::read(dir.join(&rel)).unwrap();
        let m: Value = serde_json::from_slice(&raw)
            .unwrap_or_else(|e| panic!("manifest {rel} is not JSON: {e}"));
        let name = m["name"].as_str().expect("manifest has a name");
        let version = m["version"].as_str().expect("manifest has a version");
        assert_eq!(
            rel,
            format!("{name}/{version}"),
            "manifest stored at its key"
        );
        let chunks = m["chunks"]
            .as_array()
            .expect("manifest has a chunk list")
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .collect();
        out.push(StoredManifest {
            label: format!("{name}@{version}"),
            chunks,
        });
    }
    out
}

/// Every chunk some manifest references, with the versions (`name@version`) that reference it.
fn referenced(env: &Env) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for m in stored_manifests(env) {
        for id in m.chunks {
            out.entry(id).or_default().insert(m.label.clone());
        }
    }
    out
}

/// Every chunk file in a format-1 vault: id -> stored size.
fn chunk_files(env: &Env) -> BTreeMap<String, u64> {
    let dir = env.vault_dir().join("chunks");
    let mut out = BTreeMap::new();
    for (rel, hash) in snapshot(&dir) {
        if hash == "dir" {
            continue;
        }
        let (fan, id) = rel.split_once('/').expect("chunks/<2 hex>/<id>");
        assert!(
            id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) && id.starts_with(fan),
            "unexpected file in chunks/: {rel}"
        );
        let size = std::fs::metadata(dir.join(&rel)).unwrap().len();
        out.insert(id.to_owned(), size);
    }
    out
}

/// Every chunk stored in the vault, in a chunk object (format 1) or a pack (format 2): id ->
/// stored size (its frame's length).
fn stored_chunks(env: &Env) -> BTreeMap<String, u64> {
    env.frames()
        .into_iter()
        .map(|(id, frame)| (id, frame.len as u64))
        .collect()
}

/// Every regular file of the vault with its SHA-256 (directories left out, so that creating or
/// pruning an empty directory is not a change).
fn vault_files(env: &Env) -> BTreeMap<String, String> {
    env.vault_snapshot()
        .into_iter()
        .filter(|(_, v)| v != "dir")
        .collect()
}

/// Names of the lock objects under `vault/locks`.
fn lock_files(env: &Env) -> BTreeSet<String> {
    match std::fs::read_dir(env.vault_dir().join("locks")) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => BTreeSet::new(),
    }
}

/// The chunk ids named by a verify report's problems of `kind`, with their versions.
fn problems_of(report: &Value, kind: &str) -> BTreeMap<String, BTreeSet<String>> {
    report["problems"]
        .as_array()
        .expect("verify --json has a problems array")
        .iter()
        .filter(|p| p["kind"] == kind)
        .map(|p| {
            let versions = p["versions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect();
            (p["chunk"].as_str().unwrap().to_owned(), versions)
        })
        .collect()
}

fn problem_count(report: &Value) -> usize {
    report["problems"].as_array().unwrap().len()
}

/// `ldv --json -j 16 verify ARGS...`, asserting the exit code; the report. (Each damaged chunk
/// is read several times with pauses in between; more in flight keeps the test fast.)
fn verify_json(env: &Env, args: &[&str], code: i32) -> Value {
    let out = env
        .ldv()
        .args(["--json", "-j", "16", "verify"])
        .args(args)
        .assert()
        .code(code);
    json_of(out.get_output())
}

// ---------------------------------------------------------------------------------------------
// gc
// ---------------------------------------------------------------------------------------------

/// A vault after a sequence of puts and rms, and the content of every remaining version.
struct Garbage {
    env: Env,
    /// `name@version` -> content, for the versions that remain.
    remaining: BTreeMap<String, Vec<u8>>,
    /// The removed versions.
    removed: Vec<String>,
    /// The chunks of the removed versions.
    removed_chunks: BTreeSet<String>,
}

fn put_version(env: &Env, name: &str, data: &[u8]) -> String {
    let src = env.write(&format!("src/{}", sha256_hex(data)), data);
    let r = env.put_json(env.ldv(), &src, name);
    format!("{name}@{}", r["version"].as_str().unwrap())
}

/// Two versions of `a` that share most chunks, `b` with chunks of its own, `c` sharing a prefix
/// with the first `a`; then `a`'s first version and all of `b` are removed.
///
/// A format-1 vault: these gc tests count and delete chunk objects, one per chunk, and hold
/// gc's locks; format-2 gc condemns and sweeps whole packs through marks, without locks.
fn vault_with_garbage() -> Garbage {
    let env = Env::with_vault_format1();
    let a1 = random_bytes(100, 600_000);
    let mut a2 = a1.clone();
    for byte in &mut a2[450_000..451_000] {
        *byte ^= 0x5a;
    }
    let b = random_bytes(101, 400_000);
    let mut c = a1[..300_000].to_vec();
    c.extend_from_slice(&random_bytes(102, 200_000));

    let v_a1 = put_version(&env, "a", &a1);
    let v_a2 = put_version(&env, "a", &a2);
    let v_b = put_version(&env, "data/b", &b);
    let v_c = put_version(&env, "c", &c);
    let removed_chunks = [&v_a1, &v_b]
        .into_iter()
        .flat_map(|v| env.chunks_of(env.ldv(), v))
        .map(|(_, _, id)| id)
        .collect();
    env.ldv().args(["rm", "--yes", &v_a1]).assert().success();
    env.ldv().args(["rm", "--yes", "data/b"]).assert().success();
    let remaining = BTreeMap::from([(v_a2, a2), (v_c, c)]);
    let labels: BTreeSet<String> = stored_manifests(&env)
        .into_iter()
        .map(|m| m.label)
        .collect();
    assert_eq!(
        labels,
        remaining.keys().cloned().collect(),
        "rm removed the wrong manifests"
    );
    Garbage {
        env,
        remaining,
        removed: vec![v_a1, v_b],
        removed_chunks,
    }
}

impl Garbage {
    /// The chunk files no remaining manifest references, with their stored sizes; checks that
    /// the scenario has both garbage and chunks of removed versions that other versions share.
    fn unreferenced(&self) -> BTreeMap<String, u64> {
        let refs = referenced(&self.env);
        let files = chunk_files(&self.env);
        for id in refs.keys() {
            assert!(files.contains_key(id), "referenced chunk {id} has no file");
        }
        let garbage: BTreeMap<String, u64> = files
            .into_iter()
            .filter(|(id, _)| !refs.contains_key(id))
            .collect();
        assert!(
            garbage.len() >= 4,
            "the scenario should leave garbage: {garbage:?}"
        );
        assert!(
            garbage.keys().all(|id| self.removed_chunks.contains(id)),
            "only removed versions leave garbage"
        );
        assert!(
            self.removed_chunks
                .iter()
                .any(|id| !garbage.contains_key(id)),
            "the scenario should have chunks of removed versions that others still use"
        );
        garbage
    }

    /// Every remaining version reads back byte-identical.
    fn assert_remaining_read_back(&self) {
        for (label, data) in &self.remaining {
            let out = self.env.ldv().args(["cat", label]).assert().success();
            assert_bytes(&out.get_output().stdout, data, label);
        }
    }
}

#[test]
fn gc_deletes_exactly_the_unreferenced_chunks() {
    let g = vault_with_garbage();
    let env = &g.env;
    let before = chunk_files(env);
    let garbage = g.unreferenced();
    let refs = referenced(env);
    let manifests_before: BTreeMap<String, String> = vault_files(env)
        .into_iter()
        .filter(|(k, _)| k.starts_with("manifests/"))
        .collect();

    let out = env
        .ldv()
        .args(["--json", "gc", "--grace", "0s", "--yes"])
        .assert()
        .success();
    let r = json_of(out.get_output());
    assert_eq!(r["executed"], true, "{r}");
    assert_eq!(r["plan"]["deletable_chunks"], garbage.len() as u64, "{r}");
    assert_eq!(r["plan"]["referenced_chunks"], refs.len() as u64, "{r}");
    assert_eq!(r["plan"]["chunks_total"], before.len() as u64, "{r}");
    assert_eq!(r["plan"]["manifests"], g.remaining.len() as u64, "{r}");
    assert_eq!(r["result"]["deleted_chunks"], garbage.len() as u64, "{r}");
    assert_eq!(
        r["result"]["bytes_freed"],
        garbage.values().sum::<u64>(),
        "{r}"
    );
    assert_eq!(r["result"]["kept_now_referenced"], 0, "{r}");

    let after = chunk_files(env);
    let want: BTreeMap<String, u64> = before
        .into_iter()
        .filter(|(id, _)| !garbage.contains_key(id))
        .collect();
    assert_eq!(
        after, want,
        "gc deleted other chunks than the unreferenced ones"
    );
    assert_eq!(
        after.keys().cloned().collect::<BTreeSet<_>>(),
        refs.keys().cloned().collect::<BTreeSet<_>>()
    );
    let manifests_after: BTreeMap<String, String> = vault_files(env)
        .into_iter()
        .filter(|(k, _)| k.starts_with("manifests/"))
        .collect();
    assert_eq!(manifests_after, manifests_before, "gc touched manifests");
    assert!(lock_files(env).is_empty(), "gc left its lock behind");
    g.assert_remaining_read_back();
    for removed in &g.removed {
        env.ldv().args(["cat", removed]).assert().code(3);
    }

    let v = verify_json(env, &["--read-data"], 0);
    assert_eq!(v["orphan_chunks"], 0, "{v}");
    assert_eq!(v["chunks_read"], refs.len() as u64, "{v}");

    // A second run has nothing left to do.
    let out = env
        .ldv()
        .args(["--json", "gc", "--grace", "0s", "--yes"])
        .assert()
        .success();
    let r = json_of(out.get_output());
    assert_eq!(r["plan"]["deletable_chunks"], 0, "{r}");
    assert_eq!(chunk_files(env), want);
}

#[test]
fn gc_dry_run_reports_the_plan_and_deletes_nothing() {
    let g = vault_with_garbage();
    let env = &g.env;
    let garbage = g.unreferenced();
    let refs = referenced(env);
    let before = vault_files(env);
    let total: u64 = chunk_files(env).values().sum();

    let out = env
        .ldv()
        .args(["--json", "gc", "--dry-run", "--grace", "0s"])
        .assert()
        .success();
    let r = json_of(out.get_output());
    assert_eq!(r["executed"], false, "{r}");
    let p = &r["plan"];
    assert_eq!(p["deletable_chunks"], garbage.len() as u64, "{r}");
    assert_eq!(p["unreferenced_chunks"], garbage.len() as u64, "{r}");
    assert_eq!(p["too_young_chunks"], 0, "{r}");
    assert_eq!(p["bytes_reclaimable"], garbage.values().sum::<u64>(), "{r}");
    assert_eq!(p["referenced_chunks"], refs.len() as u64, "{r}");
    assert_eq!(
        p["chunks_total"],
        (refs.len() + garbage.len()) as u64,
        "{r}"
    );
    assert_eq!(p["bytes_total"], total, "{r}");
    assert_eq!(p["grace_secs"], 0, "{r}");
    assert!(r.get("result").is_none(), "a dry run has no result: {r}");
    assert_eq!(vault_files(env), before, "gc --dry-run changed the vault");

    // The human form says the same, and --yes does not turn a dry run into a real one.
    let out = env
        .ldv()
        .args(["gc", "--dry-run", "--grace", "0s", "--yes"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        text.contains(&format!("{} to delete", garbage.len())),
        "{text}"
    );
    assert_eq!(
        vault_files(env),
        before,
        "gc --dry-run --yes changed the vault"
    );
    assert!(lock_files(env).is_empty(), "gc left its lock behind");
}

#[test]
fn gc_with_the_default_grace_keeps_young_unreferenced_chunks() {
    let g = vault_with_garbage();
    let env = &g.env;
    let garbage = g.unreferenced();
    let before = vault_files(env);

    let out = env.ldv().args(["--json", "gc", "--yes"]).assert().success();
    let r = json_of(out.get_output());
    let p = &r["plan"];
    assert_eq!(p["grace_secs"], 24 * 3600, "{r}");
    assert_eq!(p["unreferenced_chunks"], garbage.len() as u64, "{r}");
    assert_eq!(p["too_young_chunks"], garbage.len() as u64, "{r}");
    assert_eq!(p["too_young_bytes"], garbage.values().sum::<u64>(), "{r}");
    assert_eq!(p["deletable_chunks"], 0, "{r}");
    // It still runs (to sweep leftovers of interrupted writes) but deletes no chunk.
    assert_eq!(r["executed"], true, "{r}");
    assert_eq!(r["result"]["deleted_chunks"], 0, "{r}");
    assert_eq!(
        vault_files(env),
        before,
        "gc deleted chunks inside the grace"
    );

    // An explicit grace longer than the chunks' age keeps them too.
    env.ldv()
        .args(["gc", "--yes", "--grace", "1h"])
        .assert()
        .success();
    assert_eq!(
        vault_files(env),
        before,
        "gc deleted chunks inside the grace"
    );
    g.assert_remaining_read_back();
}

#[test]
fn gc_without_yes_and_no_terminal_refuses_and_deletes_nothing() {
    let g = vault_with_garbage();
    let env = &g.env;
    g.unreferenced();
    let before = vault_files(env);

    let out = env.ldv().args(["gc", "--grace", "0s"]).assert().code(2);
    let line = error_line(out.get_output());
    assert!(line.contains("--yes"), "{line}");
    let out = env
        .ldv()
        .args(["gc", "--grace", "0s"])
        .write_stdin("y\n")
        .assert()
        .code(2);
    error_line(out.get_output());
    let out = env
        .ldv()
        .args(["--json", "gc", "--grace", "0s"])
        .assert()
        .code(2);
    assert_eq!(json_of(out.get_output())["error"]["exit_code"], 2);

    assert_eq!(
        vault_files(env),
        before,
        "gc without --yes changed the vault"
    );
    assert!(lock_files(env).is_empty(), "gc left its lock behind");
}

#[test]
fn gc_refuses_when_a_referenced_chunk_is_missing() {
    let g = vault_with_garbage();
    let env = &g.env;
    g.unreferenced();
    let refs = referenced(env);
    let (lost, users) = refs
        .iter()
        .find(|(_, users)| users.iter().any(|u| u.starts_with("c@")))
        .unwrap();
    std::fs::remove_file(env.chunk_file(lost)).unwrap();
    let before = vault_files(env);

    for args in [
        &["gc", "--grace", "0s", "--yes"][..],
        &["gc", "--grace", "0s", "--dry-run"][..],
    ] {
        let out = env.ldv().args(args).assert().code(4);
        let line = error_line(out.get_output());
        assert!(line.contains(lost.as_str()), "{args:?}: {line}");
        let user = users.iter().next().unwrap();
        assert!(line.contains(user.as_str()), "{args:?}: {line}");
        assert_eq!(vault_files(env), before, "{args:?} deleted something");
    }
    let out = env
        .ldv()
        .args(["--json", "gc", "--grace", "0s", "--yes"])
        .assert()
        .code(4);
    let e = json_of(out.get_output());
    assert_eq!(e["error"]["kind"], "integrity_check_failed", "{e}");
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains(lost.as_str()),
        "{e}"
    );
    assert_eq!(vault_files(env), before, "gc deleted something");
    assert!(lock_files(env).is_empty(), "gc left its lock behind");
}

// ---------------------------------------------------------------------------------------------
// verify
// ---------------------------------------------------------------------------------------------

/// How `verify` must classify a damaged chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    Flipped,
    Deleted,
    Truncated,
}

impl Damage {
    fn kind(self) -> &'static str {
        match self {
            Self::Flipped => "corrupt_chunk",
            Self::Deleted => "missing_chunk",
            Self::Truncated => "wrong_size",
        }
    }
}

/// Asserts `report` names exactly the chunks in `want` with their kinds and versions.
#[track_caller]
fn assert_problems(
    report: &Value,
    want: &BTreeMap<String, Damage>,
    refs: &BTreeMap<String, BTreeSet<String>>,
    what: &str,
) {
    let mut seen = BTreeSet::new();
    for p in report["problems"].as_array().unwrap() {
        let id = p["chunk"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: problem without a chunk: {p}"));
        assert!(seen.insert(id.to_owned()), "{what}: {id} reported twice");
        let damage = want
            .get(id)
            .unwrap_or_else(|| panic!("{what}: undamaged chunk reported: {p}"));
        assert_eq!(p["kind"], damage.kind(), "{what}: {p}");
        let versions: BTreeSet<String> = p["versions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(&versions, &refs[id], "{what}: versions of {id}");
        assert!(
            !p["detail"].as_str().unwrap_or_default().is_empty(),
            "{what}: {p}"
        );
    }
    let missed: Vec<_> = want.keys().filter(|id| !seen.contains(*id)).collect();
    assert!(missed.is_empty(), "{what}: damage not reported: {missed:?}");
}

/// Writes 100 small objects of 96-160 KiB to `set0/`..`set3/`, most of them several chunks: 90
/// distinct, and 10 copies whose chunks two versions share; and stores each as a version of its
/// own, `v/setK/NAME`. When `concurrent` (a format-1 vault, where a directory put makes a
/// version per file) the four directories are put under `v/` all at once, as four writers
/// would; else (format 2, where a directory put is one tree version) each file is put on its
/// own, one after the other.
fn put_hundred_objects(env: &Env, rng: &mut rand::rngs::StdRng, concurrent: bool) {
    for i in 0..90u64 {
        let len = 96 * 1024 + rng.random_range(0..64 * 1024);
        env.write(
            &format!("set{}/f{i:03}", i % 4),
            &random_bytes(1000 + i, len),
        );
    }
    for i in 0..10u64 {
        let copy = std::fs::read(env.path(&format!("set{}/f{i:03}", i % 4))).unwrap();
        env.write(&format!("set{}/copy{i:03}", (i + 1) % 4), &copy);
    }
    let spawn = |k: usize| {
        env.std_ldv()
            .args(["-q", "put"])
            .arg(env.path(&format!("set{k}")))
            .arg("v/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ldv put")
    };
    let wait = |w: std::process::Child| {
        let out = w.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "put failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    if concurrent {
        assert_eq!(
            env.vault_format(),
            1,
            "a directory put per file is format 1's"
        );
        let writers: Vec<_> = (0..4).map(spawn).collect();
        writers.into_iter().for_each(wait);
    } else {
        for k in 0..4 {
            let dir = env.path(&format!("set{k}"));
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            files.sort();
            for file in files {
                let put = env
                    .std_ldv()
                    .args(["-q", "put"])
                    .arg(dir.join(&file))
                    .arg(format!("v/set{k}/{file}"))
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn ldv put");
                wait(put);
            }
        }
    }
}

/// Format 1: each damaged chunk is its own object, flipped, deleted or cut short (see
/// `verify_finds_and_names_every_damaged_chunk_in_packs` for format 2).
#[test]
fn verify_finds_and_names_every_damaged_chunk() {
    let env = Env::with_vault_format1();
    // `put` stores a tree's multi-chunk files one after the other, so four trees go in at once,
    // as four writers would.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x1d5e_7a11);
    put_hundred_objects(&env, &mut rng, true);
    let refs = referenced(&env);
    let files = chunk_files(&env);
    let manifests = stored_manifests(&env);
    assert_eq!(manifests.len(), 100);
    let multi = manifests.iter().filter(|m| m.chunks.len() > 1).count();
    assert!(
        multi >= 70,
        "only {multi} of 100 objects span several chunks"
    );
    assert_eq!(
        refs.keys().collect::<Vec<_>>(),
        files.keys().collect::<Vec<_>>()
    );
    let total = refs.len();

    let clean = verify_json(&env, &["--read-data"], 0);
    assert_eq!(clean["chunks_read"], total as u64, "{clean}");
    assert_eq!(clean["versions"], 100, "{clean}");
    assert_eq!(problem_count(&clean), 0, "{clean}");

    // Damage 15 distinct chunks, one of them shared by two versions.
    let shared: Vec<&String> = refs
        .iter()
        .filter(|(_, users)| users.len() > 1)
        .map(|(id, _)| id)
        .collect();
    assert!(!shared.is_empty());
    let mut ids: Vec<String> = refs.keys().filter(|id| *id != shared[0]).cloned().collect();
    ids.shuffle(&mut rng);
    ids.insert(0, shared[0].clone());
    let mut damage: BTreeMap<String, Damage> = BTreeMap::new();
    let mut originals: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (i, id) in ids.iter().take(15).enumerate() {
        let file = env.chunk_file(id);
        let data = std::fs::read(&file).unwrap();
        assert_eq!(data.len() as u64, files[id]);
        let kind = match i {
            0..10 => {
                let at = rng.random_range(0..data.len());
                flip_byte(&file, at);
                Damage::Flipped
            }
            10..13 => {
                std::fs::remove_file(&file).unwrap();
                Damage::Deleted
            }
            13 => {
                write_over(&file, &data[..data.len() - 1]);
                Damage::Truncated
            }
            _ => {
                write_over(&file, &data[..HEADER_LEN as usize + data.len() / 3]);
                Damage::Truncated
            }
        };
        damage.insert(id.clone(), kind);
        originals.insert(id.clone(), data);
    }
    let flipped: BTreeMap<String, Damage> = damage
        .iter()
        .filter(|(_, d)| **d == Damage::Flipped)
        .map(|(id, d)| (id.clone(), *d))
        .collect();
    let structural: BTreeMap<String, Damage> = damage
        .iter()
        .filter(|(_, d)| **d != Damage::Flipped)
        .map(|(id, d)| (id.clone(), *d))
        .collect();
    let damaged_files = vault_files(&env);

    // Every chunk read: all 15.
    let r = verify_json(&env, &["--read-data"], 4);
    assert_problems(&r, &damage, &refs, "--read-data");
    assert_eq!(
        r["problems_by_kind"],
        json!({"corrupt_chunk": 10, "missing_chunk": 3, "wrong_size": 2}),
        "{r}"
    );
    assert_eq!(r["chunks_referenced"], total as u64, "{r}");
    assert_eq!(r["chunks_present"], (total - 5) as u64, "{r}");
    assert_eq!(r["chunks_read"], (total - 5) as u64, "{r}");
    assert_eq!(r["could_not_check"], json!([]), "{r}");

    // The human report names every damaged chunk too.
    let out = env
        .ldv()
        .args(["-j", "16", "verify", "--read-data"])
        .assert()
        .code(4);
    let text = lines_of(out.get_output());
    for id in damage.keys() {
        assert!(
            text.iter()
                .any(|l| l.starts_with("DAMAGE") && l.contains(id)),
            "{id} not in:\n{}",
            text.join("\n")
        );
    }

    // No reads: the missing and the truncated chunks only.
    let r = verify_json(&env, &[], 4);
    assert_problems(&r, &structural, &refs, "no --read-data");
    assert_eq!(r["chunks_read"], 0, "{r}");
    assert_eq!(r["read_data"], "none", "{r}");

    // Five slices: each finds the missing and truncated chunks, and each flipped chunk is found
    // by exactly one slice; together they read every present chunk once.
    let mut found_in: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut read = 0;
    for n in 1..=5u32 {
        let subset = format!("{n}/5");
        let r = verify_json(&env, &["--read-data-subset", &subset], 4);
        assert_eq!(r["read_data"], subset.as_str(), "{r}");
        assert_eq!(problems_of(&r, "missing_chunk").len(), 3, "{subset}: {r}");
        assert_eq!(problems_of(&r, "wrong_size").len(), 2, "{subset}: {r}");
        let corrupt = problems_of(&r, "corrupt_chunk");
        let only: BTreeMap<String, Damage> = damage
            .iter()
            .filter(|(id, d)| **d != Damage::Flipped || corrupt.contains_key(*id))
            .map(|(id, d)| (id.clone(), *d))
            .collect();
        assert_problems(&r, &only, &refs, &subset);
        for id in corrupt.keys() {
            found_in.entry(id.clone()).or_default().push(n);
        }
        read += r["chunks_read"].as_u64().unwrap();
    }
    assert_eq!(
        found_in.keys().cloned().collect::<BTreeSet<_>>(),
        flipped.keys().cloned().collect::<BTreeSet<_>>(),
        "slices 1/5..5/5 together must find every flipped chunk"
    );
    for (id, slices) in &found_in {
        assert_eq!(slices.len(), 1, "{id} found by slices {slices:?}");
    }
    assert_eq!(
        read,
        (total - 5) as u64,
        "slices must read every chunk once"
    );

    // Percentages parse and run; 100% reads everything.
    let r = verify_json(&env, &["--read-data-subset", "100%"], 4);
    assert_problems(&r, &damage, &refs, "100%");
    let r = verify_json(&env, &["--read-data-subset", "37.5%"], 4);
    assert_eq!(r["read_data"], "37.5%", "{r}");
    // A random sample: out of a couple of hundred chunks, reading none, all, or a share far
    // from 37.5% does not happen by chance.
    let sampled = r["chunks_read"].as_u64().unwrap() as f64 / (total - 5) as f64;
    assert!(
        (0.1..0.7).contains(&sampled),
        "read {sampled} of the chunks: {r}"
    );
    let corrupt = problems_of(&r, "corrupt_chunk");
    assert!(corrupt.keys().all(|id| flipped.contains_key(id)), "{r}");
    assert_eq!(problems_of(&r, "missing_chunk").len(), 3, "{r}");
    for bad in ["0%", "101%", "0/5", "6/5", "x"] {
        env.ldv()
            .args(["verify", "--read-data-subset", bad])
            .assert()
            .code(2);
    }
    assert_eq!(vault_files(&env), damaged_files, "verify changed the vault");

    // Repair all but one flipped chunk: exactly the slice holding it exits 4, the others 0.
    let (last, _) = flipped.iter().next_back().unwrap();
    for (id, data) in &originals {
        if id != last {
            let file = env.chunk_file(id);
            if file.exists() {
                write_over(&file, data);
            } else {
                std::fs::write(&file, data).unwrap();
            }
        }
    }
    let mut failing = Vec::new();
    for n in 1..=5u32 {
        let subset = format!("{n}/5");
        let out = env
            .ldv()
            .args(["--json", "verify", "--read-data-subset", &subset])
            .assert();
        let code = out.get_output().status.code();
        let r = json_of(out.get_output());
        match code {
            Some(4) => {
                failing.push(n);
                let only = BTreeMap::from([(last.clone(), Damage::Flipped)]);
                assert_problems(&r, &only, &refs, &subset);
            }
            Some(0) => assert_eq!(problem_count(&r), 0, "{subset}: {r}"),
            other => panic!("{subset}: exit {other:?}: {r}"),
        }
    }
    assert_eq!(failing, found_in[last], "one slice, the one holding {last}");
    write_over(&env.chunk_file(last), &originals[last]);
    let r = verify_json(&env, &["--read-data"], 0);
    assert_eq!(r["chunks_read"], total as u64, "{r}");
}

/// Format 2: chunks damaged inside their packs (a flipped byte in a frame) and a whole pack
/// deleted (every chunk it held is missing).
#[test]
fn verify_finds_and_names_every_damaged_chunk_in_packs() {
    let env = Env::with_vault_in(2);
    // One file after the other: writers at once could each pack a chunk two versions share.
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x1d5e_7a12);
    put_hundred_objects(&env, &mut rng, false);
    let refs = referenced(&env);
    let frames = env.frames();
    let manifests = stored_manifests(&env);
    assert_eq!(manifests.len(), 100);
    assert_eq!(
        refs.keys().collect::<Vec<_>>(),
        frames.keys().collect::<Vec<_>>()
    );
    let packs = env.packs();
    assert!(packs.len() >= 2, "the puts made {} packs", packs.len());
    let total = refs.len();

    let clean = verify_json(&env, &["--read-data"], 0);
    assert_eq!(clean["chunks_read"], total as u64, "{clean}");
    assert_eq!(clean["versions"], 100, "{clean}");
    assert_eq!(problem_count(&clean), 0, "{clean}");

    // The last pack goes: every chunk in it is missing. Ten chunks of the other packs, one of
    // them shared by two versions, get a flipped byte.
    let lost_pack = packs.last().unwrap().clone();
    let lost_bytes = std::fs::read(&lost_pack).unwrap();
    let missing: BTreeMap<String, Damage> = frames
        .iter()
        .filter(|(_, f)| f.file == lost_pack)
        .map(|(id, _)| (id.clone(), Damage::Deleted))
        .collect();
    assert!(!missing.is_empty());
    let mut ids: Vec<String> = refs
        .keys()
        .filter(|id| !missing.contains_key(*id))
        .cloned()
        .collect();
    ids.shuffle(&mut rng);
    let shared = ids
        .iter()
        .position(|id| refs[id].len() > 1)
        .expect("a chunk two versions share, outside the lost pack");
    ids.swap(0, shared);
    let mut flipped: BTreeMap<String, Damage> = BTreeMap::new();
    let mut originals: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for id in ids.iter().take(10) {
        let frame = &frames[id];
        originals.insert(id.clone(), frame.read());
        frame.flip(rng.random_range(0..frame.len));
        flipped.insert(id.clone(), Damage::Flipped);
    }
    std::fs::remove_file(&lost_pack).unwrap();
    let damage: BTreeMap<String, Damage> = flipped
        .iter()
        .chain(&missing)
        .map(|(id, d)| (id.clone(), *d))
        .collect();
    let damaged_files = vault_files(&env);

    // Every chunk read: all of them.
    let r = verify_json(&env, &["--read-data"], 4);
    assert_problems(&r, &damage, &refs, "--read-data");
    assert_eq!(
        r["problems_by_kind"],
        json!({"corrupt_chunk": 10, "missing_chunk": missing.len()}),
        "{r}"
    );
    assert_eq!(r["chunks_referenced"], total as u64, "{r}");
    assert_eq!(r["chunks_present"], (total - missing.len()) as u64, "{r}");
    assert_eq!(r["chunks_read"], (total - missing.len()) as u64, "{r}");
    assert_eq!(r["could_not_check"], json!([]), "{r}");

    // The human report names every damaged chunk too.
    let out = env
        .ldv()
        .args(["-j", "16", "verify", "--read-data"])
        .assert()
        .code(4);
    let text = lines_of(out.get_output());
    for id in damage.keys() {
        assert!(
            text.iter()
                .any(|l| l.starts_with("DAMAGE") && l.contains(id)),
            "{id} not in:\n{}",
            text.join("\n")
        );
    }

    // No reads: the missing chunks only.
    let r = verify_json(&env, &[], 4);
    assert_problems(&r, &missing, &refs, "no --read-data");
    assert_eq!(r["chunks_read"], 0, "{r}");

    // Five slices: each finds the missing chunks, and each flipped chunk is found by exactly
    // one slice; together they read every present chunk once.
    let mut found_in: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut read = 0;
    for n in 1..=5u32 {
        let subset = format!("{n}/5");
        let r = verify_json(&env, &["--read-data-subset", &subset], 4);
        assert_eq!(
            problems_of(&r, "missing_chunk").len(),
            missing.len(),
            "{subset}: {r}"
        );
        let corrupt = problems_of(&r, "corrupt_chunk");
        let only: BTreeMap<String, Damage> = damage
            .iter()
            .filter(|(id, d)| **d != Damage::Flipped || corrupt.contains_key(*id))
            .map(|(id, d)| (id.clone(), *d))
            .collect();
        assert_problems(&r, &only, &refs, &subset);
        for id in corrupt.keys() {
            found_in.entry(id.clone()).or_default().push(n);
        }
        read += r["chunks_read"].as_u64().unwrap();
    }
    assert_eq!(
        found_in.keys().cloned().collect::<BTreeSet<_>>(),
        flipped.keys().cloned().collect::<BTreeSet<_>>(),
        "slices 1/5..5/5 together must find every flipped chunk"
    );
    for (id, slices) in &found_in {
        assert_eq!(slices.len(), 1, "{id} found by slices {slices:?}");
    }
    assert_eq!(
        read,
        (total - missing.len()) as u64,
        "slices read each once"
    );
    assert_eq!(vault_files(&env), damaged_files, "verify changed the vault");

    // The pack back and all but one flipped chunk repaired: exactly the slice holding it
    // exits 4, the others 0.
    std::fs::write(&lost_pack, &lost_bytes).unwrap();
    let (last, _) = flipped.iter().next_back().unwrap();
    for (id, data) in &originals {
        if id != last {
            frames[id].write(data);
        }
    }
    let mut failing = Vec::new();
    for n in 1..=5u32 {
        let subset = format!("{n}/5");
        let out = env
            .ldv()
            .args(["--json", "verify", "--read-data-subset", &subset])
            .assert();
        let code = out.get_output().status.code();
        let r = json_of(out.get_output());
        match code {
            Some(4) => {
                failing.push(n);
                let only = BTreeMap::from([(last.clone(), Damage::Flipped)]);
                assert_problems(&r, &only, &refs, &subset);
            }
            Some(0) => assert_eq!(problem_count(&r), 0, "{subset}: {r}"),
            other => panic!("{subset}: exit {other:?}: {r}"),
        }
    }
    assert_eq!(failing, found_in[last], "one slice, the one holding {last}");
    frames[last].write(&originals[last]);
    let r = verify_json(&env, &["--read-data"], 0);
    assert_eq!(r["chunks_read"], total as u64, "{r}");
}

#[test]
fn verify_of_a_clean_vault_passes_and_reports_orphans_as_information() {
    for format in FORMATS {
        verify_of_a_clean_vault(format);
    }
}

fn verify_of_a_clean_vault(format: u8) {
    let env = Env::with_vault_in(format);
    let one = random_bytes(200, 500_000);
    let two = random_bytes(201, 300_000);
    let v1 = put_version(&env, "one", &one);
    put_version(&env, "two", &two);
    let total = stored_chunks(&env).len();

    let r = verify_json(&env, &["--read-data"], 0);
    assert_eq!(r["problems"], json!([]), "{r}");
    assert_eq!(r["could_not_check"], json!([]), "{r}");
    assert_eq!(r["chunks_referenced"], total as u64, "{r}");
    assert_eq!(r["chunks_read"], total as u64, "{r}");
    assert_eq!(r["bytes_read"], 800_000, "{r}");
    assert_eq!(r["orphan_chunks"], 0, "{r}");
    let out = env.ldv().args(["verify", "--read-data"]).assert().success();
    let text = lines_of(out.get_output());
    assert_eq!(text.last().map(String::as_str), Some("no damage found"));
    assert!(!text.iter().any(|l| l.starts_with("info:")), "{text:?}");

    let orphans: BTreeMap<String, u64> = {
        let of_one: BTreeSet<String> = referenced(&env)
            .into_iter()
            .filter(|(_, users)| users.contains(&v1))
            .map(|(id, _)| id)
            .collect();
        stored_chunks(&env)
            .into_iter()
            .filter(|(id, _)| of_one.contains(id))
            .collect()
    };
    assert!(orphans.len() >= 2);
    env.ldv().args(["rm", "--yes", "one"]).assert().success();

    let r = verify_json(&env, &["--read-data"], 0);
    assert_eq!(r["problems"], json!([]), "{r}");
    assert_eq!(r["orphan_chunks"], orphans.len() as u64, "{r}");
    assert_eq!(r["orphan_bytes"], orphans.values().sum::<u64>(), "{r}");
    assert_eq!(r["chunks_read"], (total - orphans.len()) as u64, "{r}");
    let out = env.ldv().args(["verify", "--read-data"]).assert().success();
    let text = lines_of(out.get_output());
    assert!(
        text.iter()
            .any(|l| l.starts_with(&format!("info: {} chunks", orphans.len()))),
        "{text:?}"
    );
    assert_eq!(text.last().map(String::as_str), Some("no damage found"));

    // Checking named objects says nothing about orphans: it did not look at the whole vault.
    let r = verify_json(&env, &["--read-data", "two"], 0);
    assert_eq!(r["orphan_chunks"], Value::Null, "{r}");
    assert_eq!(r["versions"], 1, "{r}");
    assert!(lock_files(&env).is_empty(), "verify left its lock behind");
}

// ---------------------------------------------------------------------------------------------
// chunk
// ---------------------------------------------------------------------------------------------

/// `(offset, size, id, exists)` of every line `chunk -l` prints.
fn listed_chunks(out: &std::process::Output) -> Vec<(u64, u64, String, bool)> {
    lines_of(out)
        .iter()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && f[2].len() == 64).then(|| {
                assert!(matches!(f[3], "exists" | "new"), "{l}");
                (
                    f[0].parse().unwrap(),
                    f[1].parse().unwrap(),
                    f[2].to_owned(),
                    f[3] == "exists",
                )
            })
        })
        .collect()
}

#[test]
fn chunk_of_a_stored_file_finds_every_chunk() {
    chunk_of_a_stored_file(1);
}

#[test]
fn chunk_of_a_stored_file_finds_every_chunk_in_packs() {
    chunk_of_a_stored_file(2);
}

fn chunk_of_a_stored_file(format: u8) {
    let env = Env::with_vault_in(format);
    let data = random_bytes(300, 1_200_000);
    let src = env.write("stored.bin", &data);
    env.ldv()
        .arg("put")
        .arg(&src)
        .arg("stored")
        .assert()
        .success();
    let stored = env.chunks_of(env.ldv(), "stored");
    assert!(stored.len() >= 5, "{} chunks", stored.len());
    let before = vault_files(&env);

    let out = env
        .ldv()
        .args(["--json", "chunk"])
        .arg(&src)
        .assert()
        .success();
    let p = json_of(out.get_output());
    assert_eq!(p["size"], data.len() as u64, "{p}");
    assert_eq!(p["sha256"], sha256_hex(&data), "{p}");
    assert_eq!(p["chunks"], stored.len() as u64, "{p}");
    assert_eq!(p["existing_chunks"], stored.len() as u64, "{p}");
    assert_eq!(p["existing_bytes"], data.len() as u64, "{p}");
    assert_eq!(p["new_chunks"], 0, "{p}");
    assert_eq!(p["bytes_to_upload"], 0, "{p}");
    assert_eq!(p["dedup_ratio"].as_f64(), Some(1.0), "{p}");

    let out = env
        .ldv()
        .args(["--json", "chunk", "-l"])
        .arg(&src)
        .assert()
        .success();
    let p = json_of(out.get_output());
    let list: Vec<(u64, u64, String)> = p["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["exists"], true, "{c}");
            (
                c["offset"].as_u64().unwrap(),
                c["size"].as_u64().unwrap(),
                c["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(list, stored, "chunk -l plans the chunks put stored");

    let out = env.ldv().args(["chunk", "-l"]).arg(&src).assert().success();
    let listed = listed_chunks(out.get_output());
    let want: Vec<(u64, u64, String, bool)> = stored
        .iter()
        .map(|(o, s, id)| (*o, *s, id.clone(), true))
        .collect();
    assert_eq!(listed, want);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("dedup 100.0%"), "{text}");
    assert!(text.contains("would upload: 0 chunks (0 B)"), "{text}");
    assert!(
        text.contains(&format!("sha256 {}", sha256_hex(&data))),
        "{text}"
    );

    let out = env.ldv().arg("chunk").arg(&src).assert().success();
    assert!(listed_chunks(out.get_output()).is_empty(), "no -l, no list");
    assert_eq!(vault_files(&env), before, "chunk changed the vault");
}

#[test]
fn chunk_of_a_new_file_finds_nothing_and_of_an_edited_file_what_is_stored() {
    chunk_of_a_new_and_an_edited_file(1);
}

#[test]
fn chunk_of_an_edited_file_finds_what_packs_hold() {
    chunk_of_a_new_and_an_edited_file(2);
}

fn chunk_of_a_new_and_an_edited_file(format: u8) {
    let env = Env::with_vault_in(format);
    let old = random_bytes(301, 1_000_000);
    let old_src = env.write("old.bin", &old);
    env.ldv()
        .arg("put")
        .arg(&old_src)
        .arg("old")
        .assert()
        .success();
    let before = vault_files(&env);

    let new = random_bytes(302, 900_000);
    let src = env.write("new.bin", &new);
    let out = env
        .ldv()
        .args(["--json", "chunk", "-l"])
        .arg(&src)
        .assert()
        .success();
    let p = json_of(out.get_output());
    let n = p["chunks"].as_u64().unwrap();
    assert!(n >= 4, "{p}");
    assert_eq!(p["sha256"], sha256_hex(&new), "{p}");
    assert_eq!(p["existing_chunks"], 0, "{p}");
    assert_eq!(p["new_chunks"], n, "{p}");
    assert_eq!(
        p["bytes_to_upload"],
        new.len() as u64 + n * HEADER_LEN,
        "{p}"
    );
    assert_eq!(p["dedup_ratio"].as_f64(), Some(0.0), "{p}");
    let list = p["list"].as_array().unwrap();
    assert_eq!(list.len() as u64, n);
    let mut offset = 0;
    for c in list {
        assert_eq!(c["exists"], false, "{c}");
        assert_eq!(c["offset"], offset, "{c}");
        offset += c["size"].as_u64().unwrap();
    }
    assert_eq!(offset, new.len() as u64);
    let out = env.ldv().args(["chunk", "-l"]).arg(&src).assert().success();
    let listed = listed_chunks(out.get_output());
    assert_eq!(listed.len() as u64, n);
    assert!(listed.iter().all(|c| !c.3), "{listed:?}");
    assert!(
        String::from_utf8_lossy(&out.get_output().stdout).contains("dedup 0.0%"),
        "{listed:?}"
    );

    // An edited copy of the stored file: exactly the chunks the vault holds are marked existing.
    let mut edited = old.clone();
    edited.splice(500_000..500_000, random_bytes(303, 5000));
    let src = env.write("edited.bin", &edited);
    let out = env
        .ldv()
        .args(["--json", "chunk", "-l"])
        .arg(&src)
        .assert()
        .success();
    let p = json_of(out.get_output());
    let files = stored_chunks(&env);
    let (mut existing, mut existing_bytes, mut upload) = (0, 0, 0);
    for c in p["list"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let size = c["size"].as_u64().unwrap();
        assert_eq!(c["exists"], files.contains_key(id), "{c}");
        if files.contains_key(id) {
            existing += 1;
            existing_bytes += size;
        } else {
            upload += size + HEADER_LEN;
        }
    }
    assert!(existing >= 2, "an edit keeps most chunks: {p}");
    assert!(existing < p["chunks"].as_u64().unwrap(), "{p}");
    assert_eq!(p["existing_chunks"], existing, "{p}");
    assert_eq!(p["existing_bytes"], existing_bytes, "{p}");
    assert_eq!(p["bytes_to_upload"], upload, "{p}");
    assert_eq!(p["sha256"], sha256_hex(&edited), "{p}");
    assert_eq!(vault_files(&env), before, "chunk changed the vault");
}

// ---------------------------------------------------------------------------------------------
// Locks
//
// Format-2 writers and readers take no vault locks (packs are named by their hash, index
// segments are write-once and gc works through marks), so these tests run on format-1 vaults,
// whose commands do.
// ---------------------------------------------------------------------------------------------

/// This machine's host name, as the lock code reads it.
fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("read the host name")
        .trim()
        .to_owned()
}

/// A pid no process can have: above the kernel's limit.
fn dead_pid() -> u32 {
    let max: u32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
        .expect("read pid_max")
        .trim()
        .parse()
        .unwrap();
    let pid = max + 1;
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    pid
}

/// Now, truncated to whole milliseconds, minus `ago`.
fn millis_ago(ago: Duration) -> SystemTime {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    UNIX_EPOCH + Duration::from_millis(now.as_millis() as u64) - ago
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// A lock object as another process would have written it.
struct HandLock {
    id: String,
    kind: &'static str,
    host: String,
    pid: u32,
    command: &'static str,
    since: SystemTime,
    refreshed: SystemTime,
}

impl HandLock {
    /// A live lock of this host held by the test process itself.
    fn live(id: &str, kind: &'static str, command: &'static str) -> Self {
        let since = millis_ago(Duration::from_secs(5));
        Self {
            id: id.to_owned(),
            kind,
            host: this_host(),
            pid: std::process::id(),
            command,
            since,
            refreshed: since,
        }
    }

    fn since(&self) -> String {
        rfc3339(self.since)
    }

    /// Writes the lock to `vault/locks/<id>` and returns its path.
    fn write(&self, env: &Env) -> PathBuf {
        let body = json!({
            "id": self.id,
            "kind": self.kind,
            "host": self.host,
            "pid": self.pid,
            "command": self.command,
            "since": rfc3339(self.since),
            "refreshed": rfc3339(self.refreshed),
        });
        let dir = env.vault_dir().join("locks");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(&self.id);
        std::fs::write(&path, serde_json::to_vec(&body).unwrap()).unwrap();
        path
    }
}

/// `put --lock-wait 0s` of a fresh file as `name`.
fn try_put(env: &Env, name: &str, seed: u64) -> assert_cmd::assert::Assert {
    let src = env.write(&format!("{name}.src"), &random_bytes(seed, 300_000));
    env.ldv()
        .args(["--lock-wait", "0s", "put"])
        .arg(src)
        .arg(name)
        .assert()
}

/// The lock ids `unlock --json` reports under `field`.
fn lock_ids(report: &Value, field: &str) -> BTreeSet<String> {
    report[field]
        .as_array()
        .unwrap_or_else(|| panic!("unlock --json has no {field}: {report}"))
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_live_exclusive_lock_blocks_put_and_outlives_unlock() {
    let env = Env::with_vault_format1();
    put_version(&env, "before", &random_bytes(400, 100_000));
    let lock = HandLock::live("20261127T080512123Z-00000000000000e1", "exclusive", "gc");
    let path = lock.write(&env);
    let before = vault_files(&env);

    let out = try_put(&env, "blocked", 401).code(8);
    let line = error_line(out.get_output());
    assert!(line.contains(&lock.host), "names the host: {line}");
    assert!(
        line.contains(&format!("pid {}", lock.pid)),
        "names the pid: {line}"
    );
    assert!(line.contains("since"), "{line}");
    assert!(line.contains(&lock.since()), "names the time: {line}");
    assert!(line.contains("exclusive"), "{line}");
    assert_eq!(vault_files(&env), before, "a blocked put changed the vault");

    // Other writers and readers wait for gc too.
    env.ldv()
        .args(["--lock-wait", "0s", "rm", "--yes", "before"])
        .assert()
        .code(8);
    env.ldv()
        .args(["--lock-wait", "0s", "gc", "--yes", "--grace", "0s"])
        .assert()
        .code(8);
    env.ldv()
        .args(["--lock-wait", "0s", "verify"])
        .assert()
        .code(8);
    assert_eq!(
        vault_files(&env),
        before,
        "blocked commands changed the vault"
    );

    let out = env.ldv().args(["--json", "unlock"]).assert().success();
    let r = json_of(out.get_output());
    assert_eq!(lock_ids(&r, "removed"), BTreeSet::new(), "{r}");
    assert_eq!(
        lock_ids(&r, "remaining"),
        BTreeSet::from([lock.id.clone()]),
        "{r}"
    );
    let out = env.ldv().arg("unlock").assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("kept live"), "{text}");
    assert!(path.exists(), "unlock removed a live lock");
    try_put(&env, "blocked", 401).code(8);

    let out = env
        .ldv()
        .args(["--json", "unlock", "--all"])
        .assert()
        .success();
    let r = json_of(out.get_output());
    assert_eq!(
        lock_ids(&r, "removed"),
        BTreeSet::from([lock.id.clone()]),
        "{r}"
    );
    assert!(!path.exists(), "unlock --all kept a live lock");
    assert!(lock_files(&env).is_empty());
    try_put(&env, "blocked", 401).success();
    env.ldv().args(["cat", "blocked"]).assert().success();
}

#[test]
fn stale_locks_are_ignored_by_put_and_removed_by_unlock() {
    let env = Env::with_vault_format1();
    let dead = HandLock {
        pid: dead_pid(),
        ..HandLock::live("dead-pid-lock", "exclusive", "gc")
    };
    let old = HandLock {
        since: millis_ago(Duration::from_secs(40 * 60)),
        refreshed: millis_ago(Duration::from_secs(31 * 60)),
        ..HandLock::live("unrefreshed-lock", "exclusive", "gc")
    };
    let live = HandLock::live("live-shared-lock", "shared", "put");
    let dead_path = dead.write(&env);
    let old_path = old.write(&env);
    let live_path = live.write(&env);

    let data = random_bytes(410, 300_000);
    let src = env.write("through.bin", &data);
    env.ldv()
        .args(["--lock-wait", "0s", "put"])
        .arg(&src)
        .arg("through")
        .assert()
        .success();
    let out = env.ldv().args(["cat", "through"]).assert().success();
    assert_bytes(&out.get_output().stdout, &data, "put past stale locks");
    assert_eq!(
        lock_files(&env),
        BTreeSet::from([dead.id.clone(), old.id.clone(), live.id.clone()]),
        "put removes only its own lock"
    );

    let out = env.ldv().args(["--json", "unlock"]).assert().success();
    let r = json_of(out.get_output());
    assert_eq!(
        lock_ids(&r, "removed"),
        BTreeSet::from([dead.id.clone(), old.id.clone()]),
        "{r}"
    );
    assert_eq!(
        lock_ids(&r, "remaining"),
        BTreeSet::from([live.id.clone()]),
        "{r}"
    );
    assert!(
        !dead_path.exists() && !old_path.exists(),
        "stale locks kept"
    );
    assert!(live_path.exists(), "unlock removed a live lock");

    let out = env.ldv().args(["unlock", "--all"]).assert().success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("removed shared lock"), "{text}");
    assert!(lock_files(&env).is_empty(), "unlock --all kept a lock");
    let out = env.ldv().arg("unlock").assert().success();
    assert_eq!(lines_of(out.get_output()), ["no locks"]);
}

#[test]
fn a_lock_of_another_host_is_live_until_it_goes_unrefreshed() {
    let env = Env::with_vault_format1();
    // Its pid means nothing here: only the refresh time can make it stale.
    let mut other = HandLock {
        host: "ldv-test-other-host.invalid".into(),
        pid: dead_pid(),
        ..HandLock::live("other-host-lock", "exclusive", "gc")
    };
    other.write(&env);
    let before = vault_files(&env);
    let out = try_put(&env, "x", 420).code(8);
    let line = error_line(out.get_output());
    assert!(line.contains("ldv-test-other-host.invalid"), "{line}");
    assert!(line.contains(&format!("pid {}", other.pid)), "{line}");
    assert_eq!(vault_files(&env), before);
    env.ldv().arg("unlock").assert().success();
    assert_eq!(lock_files(&env), BTreeSet::from([other.id.clone()]));

    other.refreshed = millis_ago(Duration::from_secs(31 * 60));
    other.write(&env);
    try_put(&env, "x", 420).success();
    env.ldv().arg("unlock").assert().success();
    assert!(lock_files(&env).is_empty(), "unlock kept a stale lock");
}

#[test]
fn a_live_shared_lock_blocks_gc_but_not_put() {
    let g = vault_with_garbage();
    let env = &g.env;
    g.unreferenced();
    let lock = HandLock::live("writer-lock", "shared", "put");
    lock.write(env);
    let before = vault_files(env);

    let out = env
        .ldv()
        .args(["--lock-wait", "0s", "gc", "--yes", "--grace", "0s"])
        .assert()
        .code(8);
    let line = error_line(out.get_output());
    assert!(line.contains("shared"), "{line}");
    assert!(line.contains(&format!("pid {}", lock.pid)), "{line}");
    assert!(line.contains(&lock.host), "{line}");
    assert_eq!(vault_files(env), before, "a blocked gc changed the vault");

    try_put(env, "writer", 430).success();
    env.ldv().args(["cat", "writer"]).assert().success();
    // A reader shares the lock as well.
    env.ldv()
        .args(["--lock-wait", "0s", "verify"])
        .assert()
        .success();
    assert_eq!(lock_files(env), BTreeSet::from([lock.id.clone()]));

    // Once the writer is gone, gc runs.
    std::fs::remove_file(env.vault_dir().join("locks").join(&lock.id)).unwrap();
    env.ldv()
        .args(["--lock-wait", "0s", "gc", "--yes", "--grace", "0s"])
        .assert()
        .success();
    g.assert_remaining_read_back();
}

#[test]
fn unlock_all_removes_an_unreadable_lock() {
    let env = Env::with_vault_format1();
    let dir = env.vault_dir().join("locks");
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("20261127T080512123Z-00000000000000ff");
    std::fs::write(&junk, b"{\"id\": \"trunc").unwrap();

    // It cannot name a holder, so it blocks nobody...
    try_put(&env, "past-junk", 440).success();
    // ...and `unlock --all`, which removes every lock, removes it too.
    env.ldv().args(["unlock", "--all"]).assert().success();
    assert!(!junk.exists(), "unlock --all kept an unreadable lock");
    assert!(lock_files(&env).is_empty());
}

#[test]
fn gc_removes_old_leftovers_of_interrupted_writes_and_keeps_young_ones() {
    let g = vault_with_garbage();
    let env = &g.env;
    let chunks = env.vault_dir().join("chunks");
    let sub = std::fs::read_dir(&chunks)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("a chunk directory");
    let old = sub.join(".ldv-tmp.killed-put");
    let young = sub.join(".ldv-tmp.writing-now");
    std::fs::write(&old, vec![7u8; 1000]).unwrap();
    std::fs::write(&young, vec![7u8; 10]).unwrap();
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(two_hours_ago)
        .unwrap();
    let out = env
        .ldv()
        .args(["--json", "gc", "--yes", "--grace", "1h"])
        .assert()
        .success();
    let r = json_of(out.get_output());
    assert_eq!(r["result"]["leftovers_removed"], 1, "{r}");
    assert_eq!(r["result"]["leftover_bytes"], 1000, "{r}");
    assert!(!old.exists(), "an old temp file survived gc");
    assert!(
        young.exists(),
        "gc removed a temp file younger than the grace period"
    );
    g.assert_remaining_read_back();
}
