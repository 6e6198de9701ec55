//! Hostile vaults: each test starts from a real vault made by `ldv`, crafts damage or malice into
//! it by writing files directly (absurd sizes and offsets in manifests, decompression bombs,
//! unknown frame bytes, huge or deeply nested JSON, names nested thousands deep, symlinks out of
//! the vault, absurd descriptor parameters, garbage locks, a listing that never ends) and runs
//! the real binary on it. Every run must end with the documented exit code and, on failure, one
//! error line naming what and where; within 10 s and 256 MiB of peak RSS; without a panic; and
//! without changing anything outside the destination it was given.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{
    Bounded, Env, FORMATS, put, random_bytes, run_bounded, sha256_hex, write_over,
};

/// Every run must end within this.
const TIME_LIMIT: Duration = Duration::from_secs(10);
/// Every run must stay within this peak RSS.
const RSS_LIMIT_KIB: u64 = 256 * 1024;
const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// What a crafted vault is run with and what the user must see.
struct Expect<'a> {
    args: Vec<String>,
    code: i32,
    /// Strings the one error line must contain (what and where), or with `report` the report
    /// on stdout.
    names: Vec<String>,
    /// The command reports on stdout (verify) instead of failing with an error line.
    report: bool,
    /// Paths the command may change (its destination); everything else under the test's root
    /// must be exactly as before.
    may_change: Vec<PathBuf>,
    /// Extra environment variables.
    vars: Vec<(&'a str, &'a str)>,
}

impl<'a> Expect<'a> {
    fn run(args: &[&str]) -> Self {
        Self {
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            code: 0,
            names: Vec::new(),
            report: false,
            may_change: Vec::new(),
            vars: Vec::new(),
        }
    }

    /// Exits with `code`, its error line naming each of `names`.
    fn fails(mut self, code: i32, names: &[&str]) -> Self {
        self.code = code;
        self.names = names.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Exits with `code`, its report on stdout naming each of `names`.
    fn reports(mut self, code: i32, names: &[&str]) -> Self {
        self.report = true;
        self.fails(code, names)
    }

    fn may_change(mut self, path: impl Into<PathBuf>) -> Self {
        self.may_change.push(path.into());
        self
    }

    fn var(mut self, key: &'a str, value: &'a str) -> Self {
        self.vars.push((key, value));
        self
    }

    /// Runs `ldv --config … --profile t <args>` in `env` and checks every rule of this suite.
    #[track_caller]
    fn check(self, env: &Env) -> Bounded {
        let before = state(env.root(), &self.may_change);
        let mut cmd = env.std_ldv();
        cmd.args(&self.args);
        // No AWS setting of this machine reaches ldv (the S3 cases give their own).
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AWS_") {
                cmd.env_remove(key);
            }
        }
        let nowhere = env.root().join("no-aws");
        cmd.env("AWS_CONFIG_FILE", nowhere.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", nowhere.join("credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true");
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        let run = run_bounded(cmd, TIME_LIMIT);
        let stderr = String::from_utf8_lossy(&run.stderr).into_owned();
        // The figures of every run, for `--nocapture`.
        eprintln!(
            "hostile run: ldv {:?}: exit {:?}, {} KiB peak, {} ms",
            self.args,
            run.status.code(),
            run.max_rss_kib,
            run.elapsed.as_millis()
        );
        let shown = || {
            format!(
                "ldv {:?}: exit {:?}, {} KiB peak, {:?}\nstdout:\n{}\nstderr:\n{stderr}",
                self.args,
                run.status.code(),
                run.max_rss_kib,
                run.elapsed,
                String::from_utf8_lossy(&run.stdout[..run.stdout.len().min(2000)])
            )
        };
        assert!(!stderr.contains("panicked"), "a panic: {}", shown());
        assert_eq!(run.status.code(), Some(self.code), "{}", shown());
        if self.report {
            let stdout = String::from_utf8_lossy(&run.stdout);
            for name in &self.names {
                assert!(
                    stdout.contains(name.as_str()),
                    "not naming {name:?}: {}",
                    shown()
                );
            }
        } else if self.code != 0 {
            let lines: Vec<&str> = stderr.lines().collect();
            assert_eq!(lines.len(), 1, "not a one-line error: {}", shown());
            assert!(lines[0].starts_with("ldv: error: "), "{}", shown());
            for name in &self.names {
                assert!(
                    lines[0].contains(name.as_str()),
                    "not naming {name:?}: {}",
                    shown()
                );
            }
        }
        assert!(
            run.max_rss_kib <= RSS_LIMIT_KIB,
            "peak RSS over 256 MiB: {}",
            shown()
        );
        assert!(run.elapsed <= TIME_LIMIT, "too slow: {}", shown());
        let after = state(env.root(), &self.may_change);
        assert_changes_only_allowed(&before, &after, &shown());
        run
    }
}

#[track_caller]
fn assert_changes_only_allowed(
    before: &BTreeMap<String, String>,
    after: &BTreeMap<String, String>,
    shown: &str,
) {
    if before == after {
        return;
    }
    let mut diffs = Vec::new();
    for (k, v) in before {
        match after.get(k) {
            None => diffs.push(format!("removed {k}")),
            Some(w) if w != v => diffs.push(format!("changed {k}: {v} -> {w}")),
            _ => {}
        }
    }
    for k in after.keys().filter(|k| !before.contains_key(*k)) {
        diffs.push(format!("added {k}"));
    }
    diffs.truncate(20);
    panic!("wrote outside its destination: {diffs:#?}\n{shown}");
}

/// Every entry under `root` (links never followed) as kind, size, mode and modification time,
/// leaving out `skip` and what is below it. Entries that cannot be read are recorded as such.
fn state(root: &Path, skip: &[PathBuf]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    // Iterative: a crafted vault may nest directories thousands deep.
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                out.insert(format!("{}/", dir.display()), format!("unreadable: {e}"));
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if skip.iter().any(|s| path.starts_with(s)) {
                continue;
            }
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                out.insert(rel, "unstattable".into());
                continue;
            };
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap_or_default();
                out.insert(rel, format!("link -> {}", target.display()));
            } else if meta.is_dir() {
                out.insert(rel, format!("dir {:o}", meta.mode()));
                dirs.push(path);
            } else {
                out.insert(
                    rel,
                    format!(
                        "file {} {:o} {}.{}",
                        meta.len(),
                        meta.mode(),
                        meta.mtime(),
                        meta.mtime_nsec()
                    ),
                );
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// A real vault to start from
// ---------------------------------------------------------------------------------------------

/// A vault holding one file `data/file.bin` (600 KiB of random bytes: several chunks of the
/// test profile's 16/64/256 KiB chunker), with its manifest. Format 2 (its chunks in one pack)
/// unless made with [`Fixture::new_in`].
struct Fixture {
    env: Env,
    name: String,
    version: String,
    manifest: Value,
    data: Vec<u8>,
}

impl Fixture {
    fn new() -> Self {
        Self::with(Env::with_vault())
    }

    /// A fixture in a vault of `format`.
    fn new_in(format: u8) -> Self {
        Self::with(Env::with_vault_in(format))
    }

    fn with(env: Env) -> Self {
        let data = random_bytes(11, 600 * KIB as usize);
        let src = env.write("src.bin", &data);
        let name = "data/file.bin".to_owned();
        let receipt = put(env.ldv(), &src, &name);
        let version = receipt["version"].as_str().unwrap().to_owned();
        let text = std::fs::read(manifest_path(&env, &name, &version)).unwrap();
        let manifest: Value = serde_json::from_slice(&text).unwrap();
        assert!(
            manifest["chunks"].as_array().unwrap().len() >= 3,
            "{manifest}"
        );
        Self {
            env,
            name,
            version,
            manifest,
            data,
        }
    }

    fn manifest_path(&self) -> PathBuf {
        manifest_path(&self.env, &self.name, &self.version)
    }

    /// Replaces the stored manifest with `m`.
    fn write_manifest(&self, m: &Value) {
        write_over(&self.manifest_path(), &serde_json::to_vec(m).unwrap());
    }

    /// The stored manifest after `edit`.
    fn edit_manifest(&self, edit: impl FnOnce(&mut Value)) {
        let mut m = self.manifest.clone();
        edit(&mut m);
        self.write_manifest(&m);
    }

    fn chunk_id(&self, i: usize) -> String {
        self.manifest["chunks"][i]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Replaces the stored frame of chunk `i` with `frame`: its chunk object (format 1), or
    /// its place in its pack, the pack and the index written again around it (format 2).
    fn write_chunk(&self, i: usize, frame: &[u8]) {
        self.env.replace_frame(&self.chunk_id(i), frame);
    }

    fn out(&self) -> PathBuf {
        self.env.path("out.bin")
    }

    /// `get data/file.bin out.bin`, allowed to write only `out.bin`.
    fn get(&self) -> Expect<'static> {
        let out = self.out();
        Expect::run(&["get", &self.name, out.to_str().unwrap()]).may_change(out)
    }
}

fn manifest_path(env: &Env, name: &str, version: &str) -> PathBuf {
    env.vault_dir().join("manifests").join(name).join(version)
}

/// A frame header: magic, format, compression, cipher.
fn header(format: u8, compression: u8, cipher: u8) -> Vec<u8> {
    let mut h = b"LDVC".to_vec();
    h.extend_from_slice(&[format, compression, cipher]);
    h
}

const ZSTD: u8 = 2;
const GZIP: u8 = 1;
const LZ4: u8 = 3;

/// A zstd frame of `total` zero bytes made of raw-length-encoded blocks (4 bytes per 128 KiB):
/// 10 GiB fits in 320 KiB, and no content size is declared.
fn zstd_rle_bomb(total: u64) -> Vec<u8> {
    let mut f = vec![0x28, 0xB5, 0x2F, 0xFD];
    // Frame header: no content size, no checksum, not single-segment; window 2^17.
    f.extend_from_slice(&[0x00, 0x38]);
    let block = 128 * KIB;
    let n = total / block;
    for i in 0..n {
        let last = u32::from(i + 1 == n);
        let h = (block as u32) << 3 | 1 << 1 | last;
        f.extend_from_slice(&h.to_le_bytes()[..3]);
        f.push(0);
    }
    f
}

/// A gzip member inflating to `segments` × 16 MiB of zeros: one fully flushed deflate segment
/// (a flush resets the compressor, so every segment is the same bytes) repeated.
fn gzip_bomb(segments: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let zeros = vec![0u8; 16 << 20];
    let mut c = Compress::new(Compression::best(), false);
    let segment = |c: &mut Compress| {
        let mut out = Vec::with_capacity(1 << 20);
        let before = c.total_in();
        c.compress_vec(&zeros, &mut out, FlushCompress::Full)
            .unwrap();
        assert_eq!(c.total_in() - before, zeros.len() as u64);
        out
    };
    let (first, second) = (segment(&mut c), segment(&mut c));
    assert_eq!(first, second, "flushed segments repeat");
    let mut end = Vec::with_capacity(64);
    c.compress_vec(&[], &mut end, FlushCompress::Finish)
        .unwrap();
    let mut f = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    for _ in 0..segments {
        f.extend_from_slice(&first);
    }
    f.extend_from_slice(&end);
    f.extend_from_slice(&[0; 8]);
    f
}

// ---------------------------------------------------------------------------------------------
// Manifests: absurd sizes, offsets and chunk lists
// ---------------------------------------------------------------------------------------------

#[test]
fn a_manifest_size_of_2_pow_63_is_damage() {
    let f = Fixture::new();
    f.edit_manifest(|m| m["size"] = json!(1u64 << 63));
    f.get()
        .fails(4, &["manifest data/file.bin@", "size"])
        .check(&f.env);
    Expect::run(&["cat", &f.name])
        .fails(4, &["manifest data/file.bin@"])
        .check(&f.env);
}

#[test]
fn a_manifest_size_of_u64_max_is_damage() {
    let f = Fixture::new();
    f.edit_manifest(|m| m["size"] = json!(u64::MAX));
    f.get().fails(4, &["manifest data/file.bin@"]).check(&f.env);
    Expect::run(&["ls", "-l"])
        .fails(4, &["data/file.bin"])
        .check(&f.env);
    Expect::run(&["verify"])
        .reports(4, &["unreadable_manifest", "data/file.bin@"])
        .check(&f.env);
}

/// Format 1: gc here deletes chunk objects under its lock (format-2 gc, which condemns and
/// sweeps packs, is tested with it).
#[test]
fn a_damaged_manifest_stops_gc_from_deleting_its_chunks() {
    let f = Fixture::new_in(1);
    f.edit_manifest(|m| m["size"] = json!(u64::MAX));
    Expect::run(&["--yes", "gc", "--grace", "0s"])
        .fails(4, &["data/file.bin@"])
        .check(&f.env);
    for i in 0..f.manifest["chunks"].as_array().unwrap().len() {
        assert!(f.env.chunk_file(&f.chunk_id(i)).exists());
    }
}

/// Format 2: gc (with its default grace, which draws no warning) refuses before it condemns
/// anything: no mark is written, every pack stays (only `locks/`, where gc excludes other gc
/// runs, may change).
#[test]
fn a_damaged_manifest_stops_gc_from_condemning_its_packs() {
    let f = Fixture::new_in(2);
    f.edit_manifest(|m| m["size"] = json!(u64::MAX));
    Expect::run(&["--yes", "gc"])
        .fails(4, &["data/file.bin@"])
        .may_change(f.env.vault_dir().join("locks"))
        .check(&f.env);
    let frames = f.env.frames();
    for i in 0..f.manifest["chunks"].as_array().unwrap().len() {
        assert!(frames.contains_key(&f.chunk_id(i)));
    }
}

#[test]
fn a_chunk_offset_of_u64_max_is_damage() {
    let f = Fixture::new();
    f.edit_manifest(|m| m["chunks"][1]["offset"] = json!(u64::MAX));
    f.get()
        .fails(4, &["manifest data/file.bin@", "offset"])
        .check(&f.env);
}

#[test]
fn one_chunk_claiming_u64_max_bytes_is_refused_before_reading() {
    let f = Fixture::new();
    let first = f.manifest["chunks"][0].clone();
    f.edit_manifest(|m| {
        m["size"] = json!(u64::MAX);
        m["chunks"] = json!([{"offset": 0, "size": u64::MAX, "id": first["id"]}]);
    });
    f.get().fails(4, &["data/file.bin@"]).check(&f.env);
    Expect::run(&["cat", &f.name, "--range", "0-100"])
        .fails(4, &["data/file.bin@"])
        .check(&f.env);
    Expect::run(&["verify", "--read-data"])
        .reports(4, &["data/file.bin@"])
        .check(&f.env);
}

#[test]
fn chunk_sizes_that_overflow_are_damage() {
    let f = Fixture::new();
    f.edit_manifest(|m| {
        let id0 = m["chunks"][0]["id"].clone();
        let id1 = m["chunks"][1]["id"].clone();
        m["size"] = json!(9);
        m["chunks"] = json!([
            {"offset": 0, "size": u64::MAX - 5, "id": id0},
            {"offset": u64::MAX - 5, "size": 15, "id": id1},
        ]);
    });
    f.get().fails(4, &["manifest data/file.bin@"]).check(&f.env);
}

#[test]
fn overlapping_chunks_are_damage() {
    let f = Fixture::new();
    f.edit_manifest(|m| {
        let off0 = m["chunks"][0]["offset"].clone();
        m["chunks"][1]["offset"] = off0;
    });
    f.get().fails(4, &["manifest data/file.bin@"]).check(&f.env);
    assert!(!f.out().exists());
}

#[test]
fn out_of_order_chunks_are_damage() {
    let f = Fixture::new();
    f.edit_manifest(|m| {
        let chunks = m["chunks"].as_array_mut().unwrap();
        chunks.swap(0, 1);
    });
    f.get().fails(4, &["manifest data/file.bin@"]).check(&f.env);
}

#[test]
fn a_chunk_list_with_a_hole_is_damage() {
    let f = Fixture::new();
    f.edit_manifest(|m| {
        m["chunks"].as_array_mut().unwrap().remove(1);
    });
    f.get().fails(4, &["manifest data/file.bin@"]).check(&f.env);
}

#[test]
fn a_chunk_missing_from_the_vault_is_damage_naming_it() {
    let f = Fixture::new_in(1);
    let id = f.chunk_id(1);
    std::fs::remove_file(f.env.chunk_file(&id)).unwrap();
    f.get().fails(4, &[&id, "missing"]).check(&f.env);
    Expect::run(&["verify"])
        .reports(4, &["missing_chunk", &id])
        .check(&f.env);
}

#[test]
fn a_pack_missing_from_the_vault_is_damage_naming_it() {
    let f = Fixture::new_in(2);
    let id = f.chunk_id(0);
    let pack = f.env.frame_of(&id).file;
    let pack_name = pack.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::remove_file(&pack).unwrap();
    f.get()
        .fails(4, &[&id, &pack_name, "missing"])
        .check(&f.env);
    Expect::run(&["verify"])
        .reports(4, &["missing_chunk", &id, &f.chunk_id(1)])
        .check(&f.env);
}

#[test]
fn a_billion_one_byte_chunks_claimed_by_size_allocate_nothing() {
    let f = Fixture::new();
    let id = f.chunk_id(0);
    f.edit_manifest(|m| {
        m["size"] = json!(1_000_000_000u64);
        m["chunker"] = json!({"mode": "fixed", "size": 1, "min_chunk_threshold": 0});
        m["chunks"] = json!([
            {"offset": 0, "size": 1, "id": id},
            {"offset": 1, "size": 1, "id": id},
        ]);
    });
    let run = f.get().fails(4, &["manifest data/file.bin@"]).check(&f.env);
    assert!(run.max_rss_kib < 64 * 1024, "{} KiB", run.max_rss_kib);
    Expect::run(&["stat", &f.name])
        .fails(4, &["manifest data/file.bin@"])
        .check(&f.env);
}

#[test]
fn a_chunk_larger_than_its_chunker_allows_is_refused_before_decompressing() {
    for format in FORMATS {
        // A zstd frame inflating to 1 GiB, recorded as a 1 GiB chunk of a chunker whose largest
        // chunk is 256 KiB: decoding it would hold 1 GiB.
        let f = Fixture::new_in(format);
        let id = f.chunk_id(0);
        let mut frame = header(1, ZSTD, 0);
        frame.extend_from_slice(&zstd_rle_bomb(GIB));
        f.write_chunk(0, &frame);
        f.edit_manifest(|m| {
            m["size"] = json!(GIB);
            m["chunks"] = json!([{"offset": 0, "size": GIB, "id": id}]);
        });
        f.get().fails(4, &["data/file.bin@"]).check(&f.env);
        Expect::run(&["verify", "--read-data"])
            .reports(4, &["data/file.bin@"])
            .check(&f.env);
    }
}

#[test]
fn many_one_byte_chunks_of_a_valid_manifest_stream_in_bounded_memory() {
    // A valid, if silly, manifest: 50,000 references to one 1-byte chunk (a 5 MB manifest).
    let f = Fixture::new();
    let src = f.env.write("one.bin", b"a");
    let one = put(f.env.ldv(), &src, "one");
    let one_manifest: Value = serde_json::from_slice(
        &std::fs::read(manifest_path(
            &f.env,
            "one",
            one["version"].as_str().unwrap(),
        ))
        .unwrap(),
    )
    .unwrap();
    let id = one_manifest["chunks"][0]["id"].clone();
    let n = 50_000u64;
    let content = vec![b'a'; n as usize];
    f.edit_manifest(|m| {
        m["size"] = json!(n);
        m["sha256"] = json!(sha256_hex(&content));
        m["chunker"] = json!({"mode": "fixed", "size": 1, "min_chunk_threshold": 0});
        m["chunks"] = Value::Array(
            (0..n)
                .map(|i| json!({"offset": i, "size": 1, "id": id}))
                .collect(),
        );
    });
    Expect::run(&["stat", &f.name]).check(&f.env);
    Expect::run(&["ls", "-l"]).check(&f.env);
}

// ---------------------------------------------------------------------------------------------
// Huge and deeply nested JSON
// ---------------------------------------------------------------------------------------------

/// Writes `len` bytes made by `fill` to `path` in 1 MiB pieces.
fn write_big(path: &Path, head: &[u8], fill: u8, len: u64, tail: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    if path.exists() {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    file.write_all(head).unwrap();
    let piece = vec![fill; MIB as usize];
    let mut left = len;
    while left > 0 {
        let n = left.min(MIB);
        file.write_all(&piece[..n as usize]).unwrap();
        left -= n;
    }
    file.write_all(tail).unwrap();
    file.flush().unwrap();
}

#[test]
fn a_manifest_of_300_mb_of_whitespace_is_refused_in_bounded_memory() {
    let f = Fixture::new();
    write_big(&f.manifest_path(), b"", b' ', 300_000_000, b"{}");
    f.get().fails(4, &["manifest data/file.bin@"]).check(&f.env);
    Expect::run(&["ls", "-l"])
        .fails(4, &["data/file.bin"])
        .check(&f.env);
    // A listing needs no manifest: it still works.
    Expect::run(&["ls"]).check(&f.env);
}

#[test]
fn a_manifest_holding_a_200_mb_string_is_refused_in_bounded_memory() {
    let f = Fixture::new();
    write_big(
        &f.manifest_path(),
        br#"{"format":1,"name":""#,
        b'x',
        200_000_000,
        br#""}"#,
    );
    f.get().fails(4, &["manifest data/file.bin@"]).check(&f.env);
    Expect::run(&["verify"])
        .reports(4, &["unreadable_manifest", "data/file.bin@"])
        .check(&f.env);
}

#[test]
fn a_sealed_manifest_of_300_mb_is_refused_in_bounded_memory() {
    // An encrypted vault's manifest is one sealed frame: a huge one must not be held whole.
    let f = encrypted_fixture();
    let dir = f.env.vault_dir().join("manifests/f");
    let version = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let path = dir.join(&version);
    write_big(&path, &header(1, 0, 1), 0x5a, 300_000_000, b"");
    let out = f.env.path("out.bin");
    Expect::run(&["get", "f", out.to_str().unwrap()])
        .var(PASS_VAR, PASS)
        .fails(4, &["manifest f@"])
        .may_change(&out)
        .check(&f.env);
}

#[test]
fn a_deeply_nested_manifest_is_damage() {
    let f = Fixture::new();
    let depth = 100_000;
    let mut text = br#"{"format":1,"metadata":"#.to_vec();
    text.extend(std::iter::repeat_n(b'[', depth));
    text.extend(std::iter::repeat_n(b']', depth));
    text.push(b'}');
    write_over(&f.manifest_path(), &text);
    f.get().fails(4, &["manifest data/file.bin@"]).check(&f.env);
}

#[test]
fn a_deeply_nested_descriptor_is_damage() {
    let f = Fixture::new();
    let depth = 100_000;
    let mut text = br#"{"format":1,"x":"#.to_vec();
    text.extend(std::iter::repeat_n(b'{', 1));
    for _ in 0..depth {
        text.extend_from_slice(br#""a":{"#);
    }
    text.extend(std::iter::repeat_n(b'}', depth + 1));
    text.push(b'}');
    write_over(&f.env.vault_dir().join("ldv-vault.json"), &text);
    Expect::run(&["ls"])
        .fails(4, &["ldv-vault.json"])
        .check(&f.env);
}

#[test]
fn a_descriptor_of_300_mb_is_refused_in_bounded_memory() {
    let f = Fixture::new();
    write_big(
        &f.env.vault_dir().join("ldv-vault.json"),
        b"",
        b' ',
        300_000_000,
        b"{}",
    );
    Expect::run(&["ls"])
        .fails(4, &["ldv-vault.json"])
        .check(&f.env);
}

// ---------------------------------------------------------------------------------------------
// Chunk frames: bombs and unknown header bytes
// ---------------------------------------------------------------------------------------------

#[test]
fn a_zstd_frame_declaring_2_pow_60_bytes_is_damage() {
    for format in FORMATS {
        let f = Fixture::new_in(format);
        let mut frame = header(1, ZSTD, 0);
        // Single-segment frame with an 8-byte content size of 2^60, then one 1-byte RLE block.
        frame.extend_from_slice(&[0x28, 0xB5, 0x2F, 0xFD, 0xE0]);
        frame.extend_from_slice(&(1u64 << 60).to_le_bytes());
        frame.extend_from_slice(&((1u32 << 3 | 1 << 1 | 1).to_le_bytes()[..3]));
        frame.push(0);
        f.write_chunk(0, &frame);
        f.get().fails(4, &[&f.chunk_id(0)]).check(&f.env);
    }
}

#[test]
fn a_zstd_bomb_of_10_gib_stops_at_the_recorded_size() {
    for format in FORMATS {
        let f = Fixture::new_in(format);
        let mut frame = header(1, ZSTD, 0);
        frame.extend_from_slice(&zstd_rle_bomb(10 * GIB));
        f.write_chunk(0, &frame);
        f.get().fails(4, &[&f.chunk_id(0)]).check(&f.env);
        Expect::run(&["verify", "--read-data"])
            .reports(4, &[&f.chunk_id(0)])
            .check(&f.env);
    }
}

#[test]
fn a_gzip_bomb_of_10_gib_stops_at_the_recorded_size() {
    for format in FORMATS {
        let f = Fixture::new_in(format);
        let mut frame = header(1, GZIP, 0);
        frame.extend_from_slice(&gzip_bomb(640));
        assert!(frame.len() < 16 << 20, "{}", frame.len());
        f.write_chunk(0, &frame);
        f.get().fails(4, &[&f.chunk_id(0)]).check(&f.env);
    }
}

#[test]
fn an_lz4_payload_with_a_size_prefix_of_u32_max_is_damage() {
    for format in FORMATS {
        let f = Fixture::new_in(format);
        let mut frame = header(1, LZ4, 0);
        frame.extend_from_slice(&u32::MAX.to_le_bytes());
        frame.extend_from_slice(&[0x1f; 64]);
        f.write_chunk(0, &frame);
        f.get().fails(4, &[&f.chunk_id(0)]).check(&f.env);
    }
}

#[test]
fn unknown_format_compression_or_cipher_bytes_are_damage() {
    for format in FORMATS {
        let f = Fixture::new_in(format);
        let id = f.chunk_id(0);
        let original = f.env.frame_of(&id).read();
        for (at, value, says) in [
            (4, 9u8, "frame format 9"),
            (5, 9, "compression 9"),
            (6, 9, "cipher"),
        ] {
            let mut frame = original.clone();
            frame[at] = value;
            f.write_chunk(0, &frame);
            f.get().fails(4, &[&id, says]).check(&f.env);
        }
    }
}

/// Format 1: a chunk is an object of its own, whose size is bounded before it is read.
#[test]
fn a_chunk_object_of_10_gib_is_refused_without_reading_it() {
    let f = Fixture::new_in(1);
    let path = f.env.chunk_file(&f.chunk_id(0));
    write_over(&path, &header(1, 0, 0));
    // Sparse: 10 GiB of length, no blocks.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(10 * GIB)
        .unwrap();
    f.get().fails(4, &[&f.chunk_id(0)]).check(&f.env);
    Expect::run(&["verify", "--read-data"])
        .reports(4, &[&f.chunk_id(0)])
        .check(&f.env);
}

/// Format 2: an index entry is read as a range of its pack, bounded before it is read.
#[test]
fn an_index_entry_claiming_a_4_gib_frame_is_refused_without_reading_it() {
    let f = Fixture::new_in(2);
    let id = f.chunk_id(0);
    let pack = f.env.frame_of(&id).file;
    // The pack made 5 GiB long (sparse: no blocks), and the index saying chunk 0 is all of its
    // first 4 GiB.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&pack)
        .unwrap()
        .set_len(5 * GIB)
        .unwrap();
    let name = pack.file_name().unwrap().to_string_lossy().into_owned();
    f.env
        .write_index(&[(name, vec![(id.clone(), 0, u32::MAX as usize)])]);
    f.get().fails(4, &[&id]).check(&f.env);
    Expect::run(&["verify", "--read-data"])
        .reports(4, &[&id])
        .check(&f.env);
}

// ---------------------------------------------------------------------------------------------
// Names: nested thousands deep, smuggled `..`, symlinks
// ---------------------------------------------------------------------------------------------

/// Creates `segment/` nested `depth` times under `base` (through directory descriptors, since
/// the whole path outgrows PATH_MAX) with a file named like a version at the bottom.
fn nest_dirs(base: &Path, segment: &str, depth: usize) {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |s: &[u8]| CString::new(s).unwrap();
    let seg = c(segment.as_bytes());
    // SAFETY: plain descriptor-relative file-system calls on NUL-terminated strings; every
    // descriptor opened is closed.
    unsafe {
        let mut fd = libc::open(
            c(base.as_os_str().as_bytes()).as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY,
        );
        assert!(fd >= 0);
        for _ in 0..depth {
            assert_eq!(libc::mkdirat(fd, seg.as_ptr(), 0o755), 0);
            let next = libc::openat(fd, seg.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
            assert!(next >= 0);
            libc::close(fd);
            fd = next;
        }
        let file = libc::openat(
            fd,
            c(b"20261207T000000000Z-00000000").as_ptr(),
            libc::O_CREAT | libc::O_WRONLY,
            0o644,
        );
        assert!(file >= 0);
        libc::close(file);
        libc::close(fd);
    }
}

#[test]
fn names_nested_thousands_deep_are_not_followed_past_any_valid_name() {
    for format in FORMATS {
        let f = Fixture::new_in(format);
        nest_dirs(&f.env.vault_dir().join("manifests"), "a", 3000);
        // Where chunks are listed: chunk objects (format 1), packs and index segments (2).
        let listed: &[&str] = if format == 1 {
            &["chunks"]
        } else {
            &["packs", "index"]
        };
        for dir in listed {
            nest_dirs(&f.env.vault_dir().join(dir), "bb", 3000);
        }
        let run = Expect::run(&["ls"]).check(&f.env);
        assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), f.name);
        Expect::run(&["verify"]).check(&f.env);
        // gc lists every chunk object (format-2 gc is tested with it).
        if format == 1 {
            Expect::run(&["--yes", "gc", "--dry-run"]).check(&f.env);
        }
        Expect::run(&["get", "a", f.env.path("tree").to_str().unwrap()])
            .fails(3, &["a"])
            .check(&f.env);
    }
}

#[test]
fn a_stored_name_spelling_dot_dot_slash_is_only_a_name() {
    let f = Fixture::new();
    let name = "t/..%2f..%2fescape";
    let dir = manifest_path(&f.env, name, &f.version);
    std::fs::create_dir_all(dir.parent().unwrap()).unwrap();
    let mut m = f.manifest.clone();
    m["name"] = json!(name);
    std::fs::write(&dir, serde_json::to_vec(&m).unwrap()).unwrap();
    let dest = f.env.path("tree");
    Expect::run(&["get", "t", dest.to_str().unwrap()])
        .may_change(&dest)
        .check(&f.env);
    let got = std::fs::read(dest.join("..%2f..%2fescape")).unwrap();
    assert!(got == f.data, "content differs");
    assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 1);
}

#[test]
fn a_manifest_whose_name_field_climbs_out_is_damage_and_writes_nothing() {
    let f = Fixture::new();
    for evil in ["../../etc/passwd", "/etc/passwd", "data/../../../escape"] {
        f.edit_manifest(|m| m["name"] = json!(evil));
        let dest = f.env.path("tree");
        Expect::run(&["get", "data", dest.to_str().unwrap()])
            .fails(4, &["manifest data/file.bin@"])
            .may_change(&dest)
            .check(&f.env);
        assert!(!dest.exists(), "{evil}: the destination was created");
        f.get().fails(4, &["manifest data/file.bin@"]).check(&f.env);
    }
}

/// A directory beside the vault that symlinks point into, with a file that must stay unread
/// and unchanged.
fn outside(env: &Env) -> PathBuf {
    let dir = env.root().join("outside");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("secret"), b"not part of any vault").unwrap();
    dir
}

/// Format 1 (with gc, which deletes chunk objects): see `a_pack_symlinked_out_of_the_vault_is_not_followed`.
#[test]
fn a_chunk_symlinked_out_of_the_vault_is_not_followed() {
    let f = Fixture::new_in(1);
    let out = outside(&f.env);
    let id = f.chunk_id(0);
    let chunk = f.env.chunk_file(&id);
    // Even holding the right frame, a chunk reached through a link is not read.
    std::fs::copy(&chunk, out.join("frame")).unwrap();
    std::fs::remove_file(&chunk).unwrap();
    std::os::unix::fs::symlink(out.join("frame"), &chunk).unwrap();
    f.get().fails(4, &[&id, "link"]).check(&f.env);
    // gc does not see a linked chunk as present: it refuses, and deletes nothing, here or there.
    Expect::run(&["--yes", "gc", "--grace", "0s"])
        .fails(4, &[&id])
        .check(&f.env);
}

#[test]
fn a_pack_symlinked_out_of_the_vault_is_not_followed() {
    let f = Fixture::new_in(2);
    let out = outside(&f.env);
    let id = f.chunk_id(0);
    let pack = f.env.frame_of(&id).file;
    let pack_name = pack.file_name().unwrap().to_string_lossy().into_owned();
    // Even holding the right frames, a pack reached through a link is not read.
    std::fs::copy(&pack, out.join("pack")).unwrap();
    std::fs::remove_file(&pack).unwrap();
    std::os::unix::fs::symlink(out.join("pack"), &pack).unwrap();
    f.get()
        .fails(4, &[&f.name, &pack_name, "link"])
        .check(&f.env);
    Expect::run(&["verify", "--read-data"])
        .reports(4, &[&id])
        .check(&f.env);
}

/// Format 1: gc deletes chunk objects (format-2 gc is tested with it).
#[test]
fn gc_never_deletes_through_a_symlinked_chunk_directory() {
    let f = Fixture::new_in(1);
    let out = outside(&f.env);
    // A file outside, named like an unreferenced chunk, behind a linked chunk directory.
    let stray = "ee".repeat(32);
    std::fs::write(out.join(&stray), header(1, 0, 0)).unwrap();
    let dir = f.env.vault_dir().join("chunks/ee");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::os::unix::fs::symlink(&out, &dir).unwrap();
    let vault = f.env.vault_dir();
    Expect::run(&["--yes", "gc", "--grace", "0s"])
        .may_change(vault.join("locks"))
        .check(&f.env);
    assert!(out.join(&stray).exists());
}

#[test]
fn a_manifest_directory_symlinked_out_of_the_vault_is_not_followed() {
    let f = Fixture::new();
    let out = outside(&f.env);
    // A whole manifest tree outside, linked in as `evil`.
    let version_file = out.join("x").join(&f.version);
    std::fs::create_dir_all(version_file.parent().unwrap()).unwrap();
    let mut m = f.manifest.clone();
    m["name"] = json!("evil/x");
    std::fs::write(&version_file, serde_json::to_vec(&m).unwrap()).unwrap();
    std::os::unix::fs::symlink(&out, f.env.vault_dir().join("manifests/evil")).unwrap();
    let run = Expect::run(&["ls"]).check(&f.env);
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), f.name);
    let dest = f.env.path("got");
    Expect::run(&["get", "evil/x", dest.to_str().unwrap()])
        .fails(3, &["evil/x"])
        .may_change(&dest)
        .check(&f.env);
    let pinned = format!("evil/x@{}", f.version);
    Expect::run(&["get", &pinned, dest.to_str().unwrap()])
        .fails(4, &["evil", "link"])
        .may_change(&dest)
        .check(&f.env);
    // Nor does a removal delete through it.
    Expect::run(&["--yes", "rm", &pinned])
        .fails(4, &["evil", "link"])
        .check(&f.env);
    assert!(version_file.exists());
}

/// Format 1: a chunk object's directory linked out. See
/// `a_put_never_writes_packs_or_index_through_a_symlink_out_of_the_vault` for format 2.
#[test]
fn a_put_never_writes_through_a_symlink_out_of_the_vault() {
    let f = Fixture::new_in(1);
    let out = outside(&f.env);
    // The new file is one chunk: its id is its SHA-256, so its chunk directory is known.
    let data = random_bytes(99, 1000);
    let id = sha256_hex(&data);
    let src = f.env.write("new.bin", &data);
    let dir = f.env.vault_dir().join("chunks").join(&id[..2]);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::os::unix::fs::symlink(&out, &dir).unwrap();
    Expect::run(&["put", src.to_str().unwrap(), "new.bin"])
        .fails(4, &["link"])
        .check(&f.env);
    // Nor a manifest through a linked name directory.
    std::fs::remove_file(&dir).unwrap();
    std::os::unix::fs::symlink(&out, f.env.vault_dir().join("manifests/linked")).unwrap();
    // The chunk directory the put may create is the vault's own business.
    let chunks = f.env.vault_dir().join("chunks");
    Expect::run(&["put", src.to_str().unwrap(), "linked/new.bin"])
        .fails(4, &["link"])
        .may_change(chunks)
        .check(&f.env);
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1, "wrote outside");
}

#[test]
fn a_put_never_writes_packs_or_index_through_a_symlink_out_of_the_vault() {
    let f = Fixture::new_in(2);
    let src = f.env.write("new.bin", &random_bytes(99, 1000));
    // A pack's name is the hash of its bytes (random salt included): no one knows it before
    // the put, so the whole of `packs/` (then `index/`) is a link out, its content moved there.
    for dir in ["packs", "index"] {
        let out = f.env.root().join(format!("outside-{dir}"));
        let inside = f.env.vault_dir().join(dir);
        std::fs::rename(&inside, &out).unwrap();
        std::os::unix::fs::symlink(&out, &inside).unwrap();
        let before = crate::common::snapshot(&out);
        // A pack written before the index segment is refused is the vault's own business.
        Expect::run(&["put", src.to_str().unwrap(), "new.bin"])
            .fails(4, &["link"])
            .may_change(f.env.vault_dir().join("packs"))
            .check(&f.env);
        assert_eq!(crate::common::snapshot(&out), before, "wrote outside");
        std::fs::remove_file(&inside).unwrap();
        std::fs::rename(&out, &inside).unwrap();
    }
    // Nor a manifest through a linked name directory.
    let out = outside(&f.env);
    std::os::unix::fs::symlink(&out, f.env.vault_dir().join("manifests/linked")).unwrap();
    // The pack and index segment the put may write are the vault's own business.
    let vault = f.env.vault_dir();
    Expect::run(&["put", src.to_str().unwrap(), "linked/new.bin"])
        .fails(4, &["link"])
        .may_change(vault.join("packs"))
        .may_change(vault.join("index"))
        .check(&f.env);
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1, "wrote outside");
}

#[test]
fn a_symlink_loop_in_the_vault_does_not_hang_a_listing() {
    for format in FORMATS {
        let f = Fixture::new_in(format);
        let id = f.chunk_id(0);
        // Beside the chunk object (format 1) or the pack holding the chunk (format 2).
        let dir = f.env.frame_of(&id).file.parent().unwrap().to_path_buf();
        std::os::unix::fs::symlink("..", dir.join("loop")).unwrap();
        std::os::unix::fs::symlink(".", f.env.vault_dir().join("manifests/self")).unwrap();
        std::os::unix::fs::symlink("loop2", f.env.vault_dir().join("locks-loop1")).unwrap();
        if format == 2 {
            std::os::unix::fs::symlink(".", f.env.vault_dir().join("index/loop")).unwrap();
        }
        let run = Expect::run(&["ls"]).check(&f.env);
        assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), f.name);
        Expect::run(&["verify", "--read-data"]).check(&f.env);
        // gc lists every chunk object (format-2 gc is tested with it).
        if format == 1 {
            Expect::run(&["--yes", "gc", "--dry-run"]).check(&f.env);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The descriptor: absurd KDF and chunker parameters
// ---------------------------------------------------------------------------------------------

const PASS_VAR: &str = "HOSTILE_PASS";
const PASS: &str = "hostile but correct";

/// A passphrase-encrypted vault (one Argon2id slot) holding the fixture's file.
fn encrypted_fixture() -> Fixture {
    let env = Env::bare();
    env.write_config(&env.profile_toml(&format!(
        "encryption = {{ algorithm = \"aes-256-gcm\", key = {{ env = \"{PASS_VAR}\" }} }}"
    )));
    let mut init = env.ldv();
    init.env(PASS_VAR, PASS).arg("init").assert().success();
    let data = random_bytes(12, 100 * KIB as usize);
    let src = env.write("src.bin", &data);
    let mut cmd = env.ldv();
    cmd.env(PASS_VAR, PASS)
        .args(["put"])
        .arg(&src)
        .arg("f")
        .assert()
        .success();
    Fixture {
        env,
        name: "f".into(),
        version: String::new(),
        manifest: Value::Null,
        data,
    }
}

fn edit_descriptor(env: &Env, edit: impl FnOnce(&mut Value)) {
    let path = env.vault_dir().join("ldv-vault.json");
    let mut d: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut d);
    write_over(&path, &serde_json::to_vec_pretty(&d).unwrap());
}

#[test]
fn absurd_kdf_parameters_are_refused_before_deriving() {
    let f = encrypted_fixture();
    let original = std::fs::read(f.env.vault_dir().join("ldv-vault.json")).unwrap();
    let cases: [(&str, Value); 5] = [
        // 4 TiB of memory does not fit the field at all.
        ("m_cost_kib", json!(4u64 << 30)),
        ("m_cost_kib", json!(u32::MAX)),
        ("m_cost_kib", json!(GIB / KIB)),
        ("t_cost", json!(u32::MAX)),
        ("p_cost", json!(1u32 << 24)),
    ];
    for (field, value) in cases {
        write_over(&f.env.vault_dir().join("ldv-vault.json"), &original);
        edit_descriptor(&f.env, |d| {
            d["encryption"]["slots"][0]["kdf"][field] = value.clone();
        });
        // Deriving with any of these would take gigabytes (over the run's 256 MiB bound) or
        // run for hours (past its 10 s bound): passing the bounds means nothing was derived.
        Expect::run(&["ls"])
            .var(PASS_VAR, PASS)
            .fails(4, &["ldv-vault.json"])
            .check(&f.env);
    }
}

#[test]
fn a_hundred_key_slots_are_refused_before_deriving() {
    let f = encrypted_fixture();
    edit_descriptor(&f.env, |d| {
        let slot = d["encryption"]["slots"][0].clone();
        let slots: Vec<Value> = (0..100)
            .map(|i| {
                let mut s = slot.clone();
                s["id"] = json!(format!("s{i}"));
                s
            })
            .collect();
        d["encryption"]["slots"] = Value::Array(slots);
    });
    Expect::run(&["ls"])
        .var(PASS_VAR, PASS)
        .fails(4, &["ldv-vault.json", "slots"])
        .check(&f.env);
}

#[test]
fn passphrase_slots_asking_for_too_much_kdf_work_together_are_refused_before_deriving() {
    // Nine slots of the default cost, or two at the per-slot bound (8 passes over 128 MiB):
    // each is allowed alone, but trying them all would take tens of seconds.
    let f = encrypted_fixture();
    let original = std::fs::read(f.env.vault_dir().join("ldv-vault.json")).unwrap();
    for (n, heavy) in [(9, false), (2, true)] {
        write_over(&f.env.vault_dir().join("ldv-vault.json"), &original);
        edit_descriptor(&f.env, |d| {
            let mut slot = d["encryption"]["slots"][0].clone();
            if heavy {
                slot["kdf"]["t_cost"] = json!(8);
                slot["kdf"]["m_cost_kib"] = json!(128 * 1024);
            }
            let slots: Vec<Value> = (0..n)
                .map(|i| {
                    let mut s = slot.clone();
                    s["id"] = json!(format!("s{i}"));
                    s
                })
                .collect();
            d["encryption"]["slots"] = Value::Array(slots);
        });
        // The error names the KDF-work bound: the descriptor was refused by that check, which
        // runs before any slot is tried (a timing bound here would be flaky on a loaded machine).
        Expect::run(&["ls"])
            .var(PASS_VAR, PASS)
            .fails(4, &["ldv-vault.json", "KDF work"])
            .check(&f.env);
    }
}

#[test]
fn absurd_chunker_parameters_in_the_descriptor_are_damage() {
    let f = Fixture::new();
    let original = std::fs::read(f.env.vault_dir().join("ldv-vault.json")).unwrap();
    for chunker in [
        json!({"mode": "cdc", "min": 262144, "avg": 65536, "max": 16384}),
        json!({"mode": "cdc", "min": 16384, "avg": 0, "max": 262144}),
        json!({"mode": "cdc", "min": 1u64 << 60, "avg": 1u64 << 60, "max": 1u64 << 60}),
        json!({"mode": "fixed", "size": 1u64 << 60, "min_chunk_threshold": 0}),
        json!({"mode": "fixed", "size": 0, "min_chunk_threshold": 0}),
    ] {
        write_over(&f.env.vault_dir().join("ldv-vault.json"), &original);
        edit_descriptor(&f.env, |d| d["chunker"] = chunker.clone());
        Expect::run(&["ls"])
            .fails(4, &["ldv-vault.json"])
            .check(&f.env);
    }
}

// ---------------------------------------------------------------------------------------------
// Locks: garbage, impossible holders, huge objects
//
// Format-1 vaults: format-2 writers, readers and gc take no locks.
// ---------------------------------------------------------------------------------------------

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

fn write_lock(env: &Env, id: &str, body: &[u8]) {
    let dir = env.vault_dir().join("locks");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(id), body).unwrap();
}

fn lock_json(id: &str, kind: &str, host: &str, pid: u64, refreshed: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id, "kind": kind, "host": host, "pid": pid, "command": "gc",
        "since": "2026-01-01T00:00:00.000Z", "refreshed": refreshed,
    }))
    .unwrap()
}

/// A put (shared lock) and a gc plan (exclusive lock) must both get through `locks/`.
fn put_and_gc_get_through(f: &Fixture) {
    let src = f.env.write("more.bin", &random_bytes(5, 1000));
    let vault = f.env.vault_dir();
    Expect::run(&["put", src.to_str().unwrap(), "more.bin"])
        .may_change(vault.join("chunks"))
        .may_change(vault.join("manifests"))
        .may_change(vault.join("locks"))
        .check(&f.env);
    Expect::run(&["--yes", "gc", "--dry-run"]).check(&f.env);
}

#[test]
fn a_lock_object_of_binary_junk_is_ignored() {
    let f = Fixture::new_in(1);
    write_lock(
        &f.env,
        "20260101T000000000Z-00000000000000aa",
        &random_bytes(3, 4096),
    );
    put_and_gc_get_through(&f);
}

#[test]
fn a_lock_of_pid_0_on_this_host_is_stale() {
    let f = Fixture::new_in(1);
    let now = "2099-01-01T00:00:00.000Z";
    write_lock(&f.env, "l0", &lock_json("l0", "exclusive", &host(), 0, now));
    put_and_gc_get_through(&f);
}

#[test]
fn a_lock_refreshed_far_in_the_future_is_stale() {
    let f = Fixture::new_in(1);
    // pid 1 (init) is alive on every host; the refresh time is what cannot be true.
    for (id, h) in [
        ("future-here", host()),
        ("future-there", "elsewhere".to_owned()),
    ] {
        write_lock(
            &f.env,
            id,
            &lock_json(id, "exclusive", &h, 1, "9999-12-31T23:59:59.000Z"),
        );
    }
    put_and_gc_get_through(&f);
}

#[test]
fn a_lock_of_pid_1_refreshed_now_on_this_host_blocks_with_a_clear_error() {
    // Init is alive and the lock was refreshed just now: it is live, and gc says whose it is.
    let f = Fixture::new_in(1);
    let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    write_lock(
        &f.env,
        "init",
        &lock_json("init", "exclusive", &host(), 1, &now),
    );
    Expect::run(&["--yes", "--lock-wait", "1s", "gc", "--dry-run"])
        .fails(8, &["locked", "pid 1"])
        .check(&f.env);
}

#[test]
fn a_lock_object_of_100_mb_is_not_read_whole() {
    let f = Fixture::new_in(1);
    let dir = f.env.vault_dir().join("locks");
    std::fs::create_dir_all(&dir).unwrap();
    write_big(&dir.join("big"), br#"{"id":""#, b'x', 100_000_000, br#""}"#);
    let src = f.env.write("more.bin", &random_bytes(5, 1000));
    let vault = f.env.vault_dir();
    let run = Expect::run(&["put", src.to_str().unwrap(), "more.bin"])
        .may_change(vault.join("chunks"))
        .may_change(vault.join("manifests"))
        .may_change(vault.join("locks"))
        .check(&f.env);
    assert!(run.max_rss_kib < 64 * 1024, "{} KiB", run.max_rss_kib);
    assert!(dir.join("big").exists());
}

// ---------------------------------------------------------------------------------------------
// A listing that never ends (S3)
// ---------------------------------------------------------------------------------------------

/// A tiny S3 endpoint on 127.0.0.1: `GET /bucket/ldv-vault.json` returns `descriptor`, every
/// ListObjectsV2 answers a page of `page_keys(n)` for the n-th request, always truncated with
/// the continuation token `token(n)`; anything else is 404. Counts the list requests.
struct FakeS3 {
    port: u16,
    lists: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl FakeS3 {
    fn start(
        descriptor: Vec<u8>,
        page_keys: fn(u64) -> Vec<String>,
        token: fn(u64) -> String,
    ) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let lists = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (l2, s2) = (Arc::clone(&lists), Arc::clone(&stop));
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s2.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let (descriptor, l3) = (descriptor.clone(), Arc::clone(&l2));
                std::thread::spawn(move || serve(conn, &descriptor, page_keys, token, &l3));
            }
        });
        Self { port, lists, stop }
    }
}

impl Drop for FakeS3 {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, self.port));
    }
}

fn serve(
    conn: std::net::TcpStream,
    descriptor: &[u8],
    page_keys: fn(u64) -> Vec<String>,
    token: fn(u64) -> String,
    lists: &AtomicU64,
) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut request = String::new();
        if reader.read_line(&mut request).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let target = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
        let (status, content) = if target.contains("list-type=2") {
            let n = lists.fetch_add(1, Ordering::Relaxed);
            let contents: String = page_keys(n)
                .iter()
                .map(|k| {
                    format!(
                        "<Contents><Key>{k}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified><Size>10</Size></Contents>"
                    )
                })
                .collect();
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
                 <ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                 <Name>b</Name><Prefix></Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys>\
                 <IsTruncated>true</IsTruncated>{contents}\
                 <NextContinuationToken>{}</NextContinuationToken></ListBucketResult>",
                token(n)
            );
            ("200 OK", xml.into_bytes())
        } else if target.starts_with("/b/ldv-vault.json") {
            ("200 OK", descriptor.to_vec())
        } else {
            (
                "404 Not Found",
                b"<?xml version=\"1.0\"?><Error><Code>NoSuchKey</Code><Message>no</Message></Error>"
                    .to_vec(),
            )
        };
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\ncontent-type: application/xml\r\n\r\n",
            content.len()
        );
        if conn.write_all(head.as_bytes()).is_err() || conn.write_all(&content).is_err() {
            return;
        }
    }
}

fn s3_env(port: u16) -> Env {
    let env = Env::bare();
    env.write_config(&format!(
        "[profiles.t]\nbackend = {{ type = \"s3\", bucket = \"b\", region = \"us-east-1\", \
         endpoint = \"http://127.0.0.1:{port}\", path_style = true }}\n\
         retry = {{ max_retries = 0 }}\n"
    ));
    env
}

fn plain_descriptor() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "format": 1, "vault_id": "00112233445566778899aabbccddeeff", "hash": "sha256",
        "chunker": {"mode": "cdc", "min": 16384, "avg": 65536, "max": 262144},
        "created_at": "2026-01-01T00:00:00.000Z"
    }))
    .unwrap()
}

#[test]
fn an_s3_listing_that_repeats_its_continuation_token_stops() {
    let fake = FakeS3::start(
        plain_descriptor(),
        |n| vec![format!("manifests/a{n:09}/20261207T000000000Z-00000000")],
        |_| "same-token".into(),
    );
    let env = s3_env(fake.port);
    Expect::run(&["ls"])
        .var("AWS_ACCESS_KEY_ID", "test")
        .var("AWS_SECRET_ACCESS_KEY", "test")
        .fails(1, &["listing", "continuation token"])
        .check(&env);
    assert!(fake.lists.load(Ordering::Relaxed) < 10);
}

#[test]
fn an_s3_listing_whose_keys_do_not_ascend_stops() {
    // Fresh tokens each page, but the same keys: a store looping over its own listing.
    let fake = FakeS3::start(
        plain_descriptor(),
        |_| vec!["manifests/a/20261207T000000000Z-00000000".to_owned()],
        |n| format!("token-{n}"),
    );
    let env = s3_env(fake.port);
    Expect::run(&["ls"])
        .var("AWS_ACCESS_KEY_ID", "test")
        .var("AWS_SECRET_ACCESS_KEY", "test")
        .fails(1, &["listing", "ascend"])
        .check(&env);
    assert!(fake.lists.load(Ordering::Relaxed) < 10);
}

#[test]
fn an_s3_listing_of_names_that_climb_out_writes_nothing() {
    // A store listing manifest keys whose names hold `..` segments (S3 keys may): a tree get
    // must refuse them before any read, and write nothing anywhere.
    let fake = FakeS3::start(
        plain_descriptor(),
        |_| {
            vec![
                "manifests/t/../../escape/20261207T000000000Z-00000000".to_owned(),
                "manifests/t/a/../../../x/20261207T000000000Z-00000001".to_owned(),
            ]
        },
        |_| String::new(),
    );
    let env = s3_env(fake.port);
    let dest = env.path("tree");
    Expect::run(&["get", "t", dest.to_str().unwrap()])
        .var("AWS_ACCESS_KEY_ID", "test")
        .var("AWS_SECRET_ACCESS_KEY", "test")
        .fails(2, &["..", "escape"])
        .may_change(&dest)
        .check(&env);
    assert!(!dest.exists());
}
