//! Format 2 as a user meets it: new vaults pack chunks into a few pack objects found through one
//! index segment per put (no object per chunk), deduplicate from that index, fail closed on a
//! damaged or missing pack; and vaults made by the format-1 release still read byte-identical and
//! stay format 1 when written to.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use serde_json::{Value, json};

use crate::common::{
    Env, assert_file, error_line, json_of, pack_layout, random_bytes, sha256_hex, tree_files, u,
    verify_clean,
};

/// The format-1 fixture vaults and their sources (see its README.md).
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/format1");

/// The passphrase of the encrypted fixture, and the variable its profile reads it from.
const FIXTURE_PASS_VAR: &str = "LDV_FIXTURE_PASSPHRASE";
const FIXTURE_PASS: &str = "format one fixture";

/// A fresh vault of ldv's default format, checked to be format 2.
fn format2_vault() -> Env {
    let env = Env::with_vault();
    assert_eq!(env.vault_format(), 2, "new vaults are format 2");
    env
}

/// Puts `data` as `name` and returns the receipt.
fn put_bytes(env: &Env, name: &str, data: &[u8]) -> Value {
    let src = env.write(&format!("src/{name}"), data);
    env.put_json(env.ldv(), &src, name)
}

#[test]
fn a_directory_of_300_small_files_fills_few_packs_and_one_index_segment() {
    let env = format2_vault();
    let mut want = BTreeMap::new();
    for i in 0..300u64 {
        let rel = format!("d{}/f{i:03}.bin", i % 7);
        let data = random_bytes(5000 + i, 500 + (i as usize * 37) % 3500);
        env.write(&format!("tree/{rel}"), &data);
        want.insert(rel, data);
    }
    let out = env
        .ldv()
        .args(["--json", "put"])
        .arg(env.path("tree"))
        .arg("small")
        .assert()
        .success();
    let receipt = json_of(out.get_output());
    assert_eq!(receipt["files"], 300, "{receipt:#}");
    assert_eq!(receipt["dirs"], 7, "{receipt:#}");
    assert_eq!(receipt["files_read"], 300, "{receipt:#}");
    // One chunk per file, and the tree's listing (one version for the whole directory).
    let listing: Vec<String> = env
        .chunks_of(env.ldv(), "small")
        .into_iter()
        .map(|(_, _, id)| id)
        .collect();
    assert!(!listing.is_empty());
    assert_eq!(
        u(&receipt["new_chunks"]),
        300 + listing.len() as u64,
        "{receipt:#}"
    );

    let packs = env.packs();
    assert!(
        (2..=4).contains(&packs.len()),
        "300 small files and their listing made {} packs",
        packs.len()
    );
    assert_eq!(env.index_segments().len(), 1, "one put, one index segment");
    assert!(env.chunk_objects().is_empty(), "no object per chunk");
    // Every chunk is in a pack: the packs' trailers list each file's one chunk, and the
    // listing's chunks, in packs of their own.
    let frames = env.frames();
    assert_eq!(frames.len(), 300 + listing.len());
    for data in want.values() {
        assert!(frames.contains_key(&sha256_hex(data)));
    }
    let listing_packs: Vec<&PathBuf> = listing.iter().map(|id| &frames[id].file).collect();
    for (id, frame) in &frames {
        if !listing.contains(id) {
            assert!(
                !listing_packs.contains(&&frame.file),
                "a file's chunk shares a pack with the listing"
            );
        }
    }

    let dest = env.path("back");
    env.ldv()
        .args(["get", "small"])
        .arg(&dest)
        .assert()
        .success();
    assert_eq!(tree_files(&dest), want, "the tree reads back");
    verify_clean(env.ldv());

    // The same tree again: nothing uploaded, no pack and no segment written.
    let before = (env.packs(), env.index_segments());
    let out = env
        .ldv()
        .args(["--json", "put"])
        .arg(env.path("tree"))
        .arg("small")
        .assert()
        .success();
    let again = json_of(out.get_output());
    assert_eq!(again["new_chunks"], 0, "{again:#}");
    assert_eq!(again["bytes_uploaded"], 0, "{again:#}");
    assert_eq!((env.packs(), env.index_segments()), before);
}

#[test]
fn a_second_put_of_the_same_content_uploads_nothing() {
    let env = format2_vault();
    let data = random_bytes(6001, 2 << 20);
    let first = put_bytes(&env, "big.bin", &data);
    let chunks = u(&first["chunks"]);
    assert!(chunks >= 8, "{first:#}");
    assert_eq!(first["new_chunks"], chunks, "{first:#}");
    let store = || (env.packs(), env.index_segments(), env.chunk_objects());
    let before = store();

    // Under its own name and under another: every chunk is found in the index.
    for name in ["big.bin", "copy.bin"] {
        let again = put_bytes(&env, name, &data);
        assert_eq!(again["new_chunks"], 0, "{name}: {again:#}");
        assert_eq!(again["bytes_uploaded"], 0, "{name}: {again:#}");
        assert_eq!(again["existing_chunks"], chunks, "{name}: {again:#}");
        assert_eq!(again["bytes_deduplicated"], data.len() as u64, "{again:#}");
        assert_eq!(again["sha256"], sha256_hex(&data));
    }
    assert_eq!(store(), before, "a put of stored content wrote chunks");
    let out = env.ldv().args(["cat", "copy.bin"]).assert().success();
    assert!(out.get_output().stdout == data, "copy.bin reads back");
}

/// Puts 1.5 MB of random data as `f.bin` into a fresh format-2 vault: `(env, data, the one
/// pack)`.
fn vault_with_one_pack() -> (Env, Vec<u8>, PathBuf) {
    let env = format2_vault();
    let data = random_bytes(6002, 1_500_000);
    put_bytes(&env, "f.bin", &data);
    let packs = env.packs();
    assert_eq!(packs.len(), 1, "{packs:?}");
    (env, data, packs[0].clone())
}

/// `get f.bin` fails with exit 4 and one error line, leaving nothing behind, and so does
/// `cat f.bin`: get's error line.
fn get_fails_closed(env: &Env) -> String {
    let dest = env.path("out.bin");
    let out = env.ldv().args(["get", "f.bin"]).arg(&dest).assert().code(4);
    assert!(!dest.exists(), "get left {}", dest.display());
    let line = error_line(out.get_output());
    let out = env.ldv().args(["cat", "f.bin"]).assert().code(4);
    error_line(out.get_output());
    line
}

#[test]
fn a_flipped_byte_in_a_pack_fails_get_and_verify_read_data() {
    let (env, data, pack) = vault_with_one_pack();
    let original = std::fs::read(&pack).unwrap();
    let (frames_len, _) = pack_layout(&original);
    let frames = env.frames();
    for at in [frames_len / 2, 3, frames_len - 1] {
        // The chunk whose frame holds byte `at`.
        let (hit, _) = frames
            .iter()
            .find(|(_, f)| (f.offset..f.end()).contains(&at))
            .expect("the frames fill the pack up to its trailer");
        crate::common::flip_byte(&pack, at);

        let line = get_fails_closed(&env);
        assert!(line.contains(hit.as_str()), "byte {at}: {line}");
        // Without reading data, verify finds every chunk where the index says.
        env.ldv().arg("verify").assert().code(0);
        let out = env
            .ldv()
            .args(["--json", "verify", "--read-data"])
            .assert()
            .code(4);
        let report = json_of(out.get_output());
        let problems = report["problems"].as_array().unwrap();
        assert_eq!(problems.len(), 1, "byte {at}: {report:#}");
        assert_eq!(problems[0]["kind"], "corrupt_chunk", "{report:#}");
        assert_eq!(problems[0]["chunk"], hit.as_str(), "{report:#}");
        let out = env.ldv().args(["verify", "--read-data"]).assert().code(4);
        let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(
            text.lines()
                .any(|l| l.starts_with("DAMAGE") && l.contains(hit.as_str())),
            "{text}"
        );

        crate::common::write_over(&pack, &original);
        let out = env.ldv().args(["cat", "f.bin"]).assert().success();
        assert!(out.get_output().stdout == data, "repaired, it reads again");
    }
}

#[test]
fn a_deleted_pack_is_missing_chunks_to_verify_and_fails_get() {
    let (env, _, pack) = vault_with_one_pack();
    let ids: Vec<String> = env
        .chunks_of(env.ldv(), "f.bin")
        .into_iter()
        .map(|(_, _, id)| id)
        .collect();
    std::fs::remove_file(&pack).unwrap();

    let line = get_fails_closed(&env);
    let pack_name = pack.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        line.contains("missing") && line.contains(&pack_name),
        "{line}"
    );
    for args in [&["verify"][..], &["verify", "--read-data"]] {
        let out = env.ldv().arg("--json").args(args).assert().code(4);
        let report = json_of(out.get_output());
        let mut missing: Vec<String> = report["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                assert_eq!(p["kind"], "missing_chunk", "{args:?}: {p}");
                p["chunk"].as_str().unwrap().to_owned()
            })
            .collect();
        missing.sort();
        let mut want = ids.clone();
        want.sort();
        want.dedup();
        assert_eq!(missing, want, "{args:?}: {report:#}");
        assert_eq!(
            report["problems_by_kind"],
            json!({"missing_chunk": want.len()}),
            "{report:#}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Format-1 vaults made by the format-1 release
// ---------------------------------------------------------------------------------------------

/// Copies `from` into `to` (created), recursively.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `name -> sha256` of the fixture's sources, from its SHA256SUMS.
fn fixture_sums() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(Path::new(FIXTURES).join("SHA256SUMS")).unwrap();
    text.lines()
        .map(|l| {
            let (sum, name) = l.split_once("  ").expect("sha256sum lines");
            (name.to_owned(), sum.to_owned())
        })
        .collect()
}

/// Checks that the fixture vault reads back every source byte-identical through `ldv`: each
/// name's newest version, and `text.txt`'s first; then `verify --read-data` finds it clean.
fn assert_fixture_reads_back(env: &Env, ldv: &dyn Fn() -> Command) {
    let src = Path::new(FIXTURES).join("src");
    let sums = fixture_sums();
    // The newest version of each name, and text.txt's first (src/text.txt, then text-v2.txt).
    let mut gets: Vec<(String, &str)> = ["random.bin", "empty", "dir/a.txt", "dir/sub/b.txt"]
        .into_iter()
        .map(|n| (n.to_owned(), n))
        .collect();
    gets.push(("text.txt".to_owned(), "text-v2.txt"));
    let text_versions: Vec<String> = env
        .versions(ldv(), Some("text.txt"))
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(text_versions.len(), 2, "{text_versions:?}");
    let oldest = text_versions.iter().min().unwrap();
    gets.push((format!("text.txt@{oldest}"), "text.txt"));
    for (name, source) in gets {
        let want = std::fs::read(src.join(source)).unwrap();
        assert_eq!(sha256_hex(&want), sums[source], "src/{source} is as made");
        let dest = env.path(&format!("got/{}", sha256_hex(name.as_bytes())));
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        ldv().args(["get", &name]).arg(&dest).assert().success();
        assert_file(&dest, &want);
        let out = ldv().args(["cat", &name]).assert().success();
        assert!(out.get_output().stdout == want, "cat {name}");
    }
    // The directory put, as a tree.
    let dest = env.path("dir-back");
    ldv().args(["get", "dir"]).arg(&dest).assert().success();
    assert_eq!(tree_files(&dest), tree_files(&src.join("dir")));
    let report = verify_clean(ldv());
    assert_eq!(report["versions"], 6, "{report:#}");
}

/// Puts a new file into the fixture vault through `ldv`: it reads back, and went in as chunk
/// objects (one per new chunk) with no pack and no index: the vault is still format 1.
fn assert_put_stays_format1(env: &Env, ldv: &dyn Fn() -> Command) {
    let before = env.chunk_objects().len() as u64;
    let data = random_bytes(6003, 300_000);
    let src = env.write("new.bin", &data);
    let receipt = env.put_json(ldv(), &src, "new.bin");
    let new = u(&receipt["new_chunks"]);
    assert!(new >= 2, "{receipt:#}");
    assert_eq!(
        env.chunk_objects().len() as u64,
        before + new,
        "{receipt:#}"
    );
    assert!(
        env.packs().is_empty(),
        "a put into a format-1 vault wrote packs"
    );
    assert!(
        !env.vault_dir().join("index").exists(),
        "a put into a format-1 vault wrote an index"
    );
    assert_eq!(env.vault_format(), 1);
    let out = ldv().args(["cat", "new.bin"]).assert().success();
    assert!(out.get_output().stdout == data, "new.bin reads back");
    verify_clean(ldv());
}

#[test]
fn a_format1_vault_reads_back_byte_identical_and_stays_format1() {
    let env = Env::bare();
    copy_tree(&Path::new(FIXTURES).join("plain"), &env.vault_dir());
    assert_eq!(env.vault_format(), 1);
    // `--vault PATH`, a plain path.
    let ldv = || {
        let mut cmd = env.bare_ldv();
        cmd.arg("--vault").arg(env.vault_dir());
        cmd
    };
    assert_fixture_reads_back(&env, &ldv);
    assert_put_stays_format1(&env, &ldv);
}

#[test]
fn an_encrypted_format1_vault_reads_back_with_its_passphrase_and_stays_format1() {
    let env = Env::bare();
    copy_tree(&Path::new(FIXTURES).join("encrypted"), &env.vault_dir());
    assert_eq!(env.vault_format(), 1);
    env.write_config(&env.profile_toml(&format!(
        "compression = {{ algorithm = \"lz4\" }}\n\
         encryption = {{ algorithm = \"aes-256-gcm\", key = {{ env = \"{FIXTURE_PASS_VAR}\" }} }}"
    )));
    let ldv = || {
        let mut cmd = env.ldv();
        cmd.env(FIXTURE_PASS_VAR, FIXTURE_PASS);
        cmd
    };
    assert_fixture_reads_back(&env, &ldv);
    assert_put_stays_format1(&env, &ldv);
    // The new chunks are sealed frames like the old ones.
    for object in env.chunk_objects() {
        let frame = std::fs::read(&object).unwrap();
        assert_eq!(&frame[..5], b"LDVC\x01", "{}", object.display());
        assert_eq!(frame[6], 1, "cipher byte of {}", object.display());
    }
    // A wrong passphrase opens nothing.
    let out = env
        .ldv()
        .env(FIXTURE_PASS_VAR, "format two fixture")
        .args(["cat", "random.bin"])
        .assert()
        .code(5);
    assert!(out.get_output().stdout.is_empty());
}
