//! Tree versions (format 2): a directory put commits one version that keeps what the file
//! system holds (modes, modification times, symlinks of every kind, empty directories, names
//! with spaces, unicode and newlines), a re-put reads only what changed, paths inside a tree
//! work with every reading command and with rm, and get never writes outside its destination.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::common::{Env, error_line, json_of, random_bytes, u, verify_clean};

/// What a walk of `dir` finds, entry by entry (symlinks not followed): kind, permission bits,
/// modification time in nanoseconds (directories' and files'), content or link target.
/// One entry a walk found: kind, permission bits, mtime in nanoseconds, content or target.
type Found = (char, u32, Option<i128>, Vec<u8>);

fn walk(dir: &Path) -> BTreeMap<Vec<u8>, Found> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .as_os_str()
                .as_bytes()
                .to_vec();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let mtime =
                Some(i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()));
            let mode = meta.mode() & 0o7777;
            let entry = if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                // A symlink's own mode is always 777 on Linux; its time is checked too.
                ('l', 0o777, mtime, target.as_os_str().as_bytes().to_vec())
            } else if meta.is_dir() {
                todo.push(path.clone());
                ('d', mode, mtime, Vec::new())
            } else {
                ('f', mode, mtime, std::fs::read(&path).unwrap())
            };
            out.insert(rel, entry);
        }
    }
    out
}

fn set_mtime(path: &Path, secs: u64, nanos: u32) {
    let t = SystemTime::UNIX_EPOCH + Duration::new(secs, nanos);
    std::fs::File::open(path).unwrap().set_modified(t).unwrap();
}

/// A source tree with every kind of entry a tree keeps.
fn awkward_tree(env: &Env) -> std::path::PathBuf {
    let root = env.path("src");
    env.write("src/plain.txt", b"plain\n");
    env.write("src/with space and ü.txt", b"unicode\n");
    env.write("src/new\nline", b"a name with a newline\n");
    env.write("src/sub/big.bin", &random_bytes(1, 700_000));
    env.write("src/sub/deeper/small", b"s");
    env.write("src/empty-file", b"");
    std::fs::create_dir_all(root.join("empty/dir")).unwrap();
    let script = env.write("src/run.sh", b"#!/bin/sh\necho hi\n");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let private = root.join("sub/deeper/small");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink("plain.txt", root.join("relative-link")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", root.join("absolute-link")).unwrap();
    std::os::unix::fs::symlink("no/such/thing", root.join("dangling-link")).unwrap();
    std::os::unix::fs::symlink("sub", root.join("dir-link")).unwrap();
    std::os::unix::fs::symlink("../../outside", root.join("sub/climbing-link")).unwrap();
    set_mtime(&root.join("sub/big.bin"), 1_000_000_000, 123_456_789);
    set_mtime(&root.join("plain.txt"), 1_700_000_000, 1);
    // Directory times last: writing into a directory changes its time.
    set_mtime(&root.join("empty/dir"), 1_600_000_000, 5);
    set_mtime(&root.join("sub/deeper"), 1_500_000_000, 0);
    root
}

fn put_tree(env: &Env, src: &Path, name: &str, extra: &[&str]) -> serde_json::Value {
    let out = env
        .ldv()
        .args(["--json", "put"])
        .args(extra)
        .arg(src)
        .arg(name)
        .assert()
        .success();
    json_of(out.get_output())
}

#[test]
fn a_tree_is_one_version_and_get_restores_it_exactly() {
    let env = Env::with_vault();
    let src = awkward_tree(&env);
    let manifests_before = std::fs::read_dir(env.vault_dir().join("manifests"))
        .map(|d| d.count())
        .unwrap_or(0);
    let receipt = put_tree(&env, &src, "t", &[]);
    assert_eq!(u(&receipt["files"]), 7, "{receipt:#}");
    assert_eq!(u(&receipt["symlinks"]), 5, "{receipt:#}");
    assert_eq!(receipt["complete"], true);
    // One manifest for the whole tree.
    let versions = env.versions(env.ldv(), None);
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(versions[0].0, "t");
    assert_eq!(manifests_before, 0);

    let dest = env.path("restored");
    env.ldv().args(["get", "t"]).arg(&dest).assert().success();
    let (want, got) = (walk(&src), walk(&dest));
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>()
    );
    for (path, w) in &want {
        let g = &got[path];
        assert_eq!(
            (w.0, w.1, &w.3),
            (g.0, g.1, &g.3),
            "{}",
            String::from_utf8_lossy(path)
        );
        assert_eq!(w.2, g.2, "mtime of {}", String::from_utf8_lossy(path));
    }
    // The symlinks are links, never followed: nothing appeared beside the destination.
    assert!(!env.path("outside").exists());
    verify_clean(env.ldv());
}

#[test]
fn an_unchanged_re_put_reads_nothing_and_a_change_is_read_alone() {
    let env = Env::with_vault();
    for i in 0..40u64 {
        env.write(
            &format!("src/d{}/f{i}", i % 4),
            &random_bytes(i, 3000 + i as usize * 100),
        );
    }
    let src = env.path("src");
    let first = put_tree(&env, &src, "t", &[]);
    assert_eq!(u(&first["files_read"]), 40, "{first:#}");
    let again = put_tree(&env, &src, "t", &[]);
    assert_eq!(u(&again["files_read"]), 0, "{again:#}");
    assert_eq!(u(&again["bytes_read"]), 0, "{again:#}");
    assert_eq!(u(&again["files_reused"]), 40, "{again:#}");
    assert_eq!(again["previous"], first["version"]);
    assert_eq!(
        again["sha256"], first["sha256"],
        "the same tree lists the same"
    );
    // Change one file (same size: its time and inode tell) and add one.
    env.write("src/d1/f5", &random_bytes(99, 3500));
    env.write("src/d1/new", b"new file");
    let changed = put_tree(&env, &src, "t", &[]);
    assert_eq!(u(&changed["files_read"]), 2, "{changed:#}");
    assert_eq!(u(&changed["files_reused"]), 39, "{changed:#}");
    // --reread reads everything again.
    let reread = put_tree(&env, &src, "t", &["--reread"]);
    assert_eq!(u(&reread["files_read"]), 41, "{reread:#}");
    let dest = env.path("back");
    env.ldv().args(["get", "t"]).arg(&dest).assert().success();
    assert_eq!(
        std::fs::read(dest.join("d1/f5")).unwrap(),
        random_bytes(99, 3500)
    );
    assert_eq!(std::fs::read(dest.join("d1/new")).unwrap(), b"new file");
}

#[test]
fn paths_inside_a_tree_work_with_ls_cat_stat_get_and_rm() {
    let env = Env::with_vault();
    env.write("src/a/one.txt", b"one\n");
    env.write("src/a/two.txt", b"two\n");
    env.write("src/b/three.txt", b"three\n");
    let first = put_tree(&env, &env.path("src"), "proj", &[]);
    let v1 = first["version"].as_str().unwrap().to_owned();

    let out = env.ldv().args(["cat", "proj/a/one.txt"]).assert().success();
    assert_eq!(out.get_output().stdout, b"one\n");
    for r in [
        format!("proj@{v1}/b/three.txt"),
        format!("proj/b/three.txt@{v1}"),
    ] {
        let out = env.ldv().args(["cat", &r]).assert().success();
        assert_eq!(out.get_output().stdout, b"three\n", "{r}");
    }
    let out = env.ldv().args(["ls", "proj/a/"]).assert().success();
    let listed = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(listed, "proj/a/one.txt\nproj/a/two.txt\n");
    let out = env
        .ldv()
        .args(["--json", "stat", "proj/a/two.txt"])
        .assert()
        .success();
    let stat = json_of(out.get_output());
    assert_eq!(stat["kind"], "file");
    assert_eq!(stat["size"], 4);
    // A directory of a tree is not one file.
    let out = env.ldv().args(["cat", "proj/a"]).assert().failure();
    assert!(error_line(out.get_output()).contains("not one file"));
    // get of a directory in the tree writes just it.
    let dest = env.path("only-a");
    env.ldv()
        .args(["get", "proj/a"])
        .arg(&dest)
        .assert()
        .success();
    assert_eq!(std::fs::read(dest.join("two.txt")).unwrap(), b"two\n");
    assert!(!dest.join("three.txt").exists());
    // A missing path names the tree version it was looked for in.
    let out = env.ldv().args(["cat", "proj/a/nope"]).assert().code(3);
    assert!(error_line(out.get_output()).contains(&format!("proj@{v1}/a/nope")));

    // rm of a path commits a version without it; the older version keeps it.
    env.ldv()
        .args(["rm", "--yes", "proj/a/one.txt"])
        .assert()
        .success();
    env.ldv().args(["cat", "proj/a/one.txt"]).assert().code(3);
    let out = env
        .ldv()
        .args(["cat", &format!("proj@{v1}/a/one.txt")])
        .assert()
        .success();
    assert_eq!(out.get_output().stdout, b"one\n");
    // A directory with entries needs -r.
    env.ldv().args(["rm", "--yes", "proj/b"]).assert().failure();
    env.ldv()
        .args(["rm", "--yes", "-r", "proj/b"])
        .assert()
        .success();
    let out = env.ldv().args(["ls", "proj/"]).assert().success();
    let listed = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(listed, "proj/a/\nproj/a/two.txt\n");
    assert_eq!(env.versions(env.ldv(), None).len(), 3);
}

#[test]
fn get_never_writes_through_a_symlink_in_the_destination() {
    let env = Env::with_vault();
    env.write("src/d/file", b"payload");
    put_tree(&env, &env.path("src"), "t", &[]);
    // The destination already holds `d` as a symlink to a directory elsewhere.
    let dest = env.path("dest");
    let elsewhere = env.path("elsewhere");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, dest.join("d")).unwrap();
    let out = env.ldv().args(["get", "t"]).arg(&dest).assert().failure();
    assert!(
        error_line(out.get_output()).contains("not a directory"),
        "{}",
        error_line(out.get_output())
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
}

#[test]
fn gc_keeps_a_trees_chunks_and_verify_names_the_tree_of_a_damaged_file() {
    let env = Env::with_vault();
    for i in 0..20u64 {
        env.write(&format!("src/f{i}"), &random_bytes(100 + i, 20_000));
    }
    put_tree(&env, &env.path("src"), "t", &[]);
    env.ldv()
        .args(["gc", "--yes", "--grace", "0s"])
        .assert()
        .success();
    let dest = env.path("back");
    env.ldv().args(["get", "t"]).arg(&dest).assert().success();
    assert_eq!(
        std::fs::read(dest.join("f7")).unwrap(),
        random_bytes(107, 20_000)
    );
    verify_clean(env.ldv());
    // Flip a byte of one file's frame: verify finds it and names the tree version.
    let chunk = {
        let out = env
            .ldv()
            .args(["--json", "stat", "t/f3"])
            .assert()
            .success();
        json_of(out.get_output())["chunks"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let frame = env.frame_of(&chunk);
    frame.flip(frame.len - 1);
    let out = env
        .ldv()
        .args(["--json", "verify", "--read-data"])
        .assert()
        .failure();
    let report = json_of(out.get_output());
    let text = report.to_string();
    assert!(text.contains(&chunk), "{report:#}");
    assert!(text.contains("\"t@"), "{report:#}");
}

#[test]
fn per_file_versions_and_trees_live_side_by_side_in_a_migrated_vault() {
    let env = Env::with_vault_format1();
    env.write("old-src/a.txt", b"a");
    env.write("old-src/sub/b.txt", b"b");
    // Format 1: one version per file.
    env.ldv()
        .arg("put")
        .arg(env.path("old-src"))
        .arg("data")
        .assert()
        .success();
    env.ldv().arg("migrate").assert().success();
    assert_eq!(env.vault_format(), 2);
    env.write("new-src/c.txt", b"c");
    env.write("new-src/d/e.txt", b"e");
    let tree = put_tree(&env, &env.path("new-src"), "tree", &[]);
    let v1 = tree["version"].as_str().unwrap().to_owned();

    let out = env.ldv().args(["ls"]).assert().success();
    let listed = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert_eq!(listed, "data/a.txt\ndata/sub/b.txt\ntree\n");
    for (r, want) in [("data/sub/b.txt", &b"b"[..]), ("tree/d/e.txt", b"e")] {
        let out = env.ldv().args(["cat", r]).assert().success();
        assert_eq!(out.get_output().stdout, want, "{r}");
    }
    let (old, new) = (env.path("got-old"), env.path("got-new"));
    env.ldv().args(["get", "data"]).arg(&old).assert().success();
    env.ldv().args(["get", "tree"]).arg(&new).assert().success();
    assert_eq!(std::fs::read(old.join("sub/b.txt")).unwrap(), b"b");
    assert_eq!(std::fs::read(new.join("c.txt")).unwrap(), b"c");

    env.ldv()
        .args(["rm", "--yes", "data/a.txt"])
        .assert()
        .success();
    env.ldv()
        .args(["rm", "--yes", "tree/c.txt"])
        .assert()
        .success();
    env.ldv()
        .args(["gc", "--yes", "--grace", "0s"])
        .assert()
        .success();
    env.ldv()
        .args(["gc", "--yes", "--grace", "0s"])
        .assert()
        .success();
    verify_clean(env.ldv());
    env.ldv().args(["cat", "data/a.txt"]).assert().code(3);
    env.ldv().args(["cat", "tree/c.txt"]).assert().code(3);
    let out = env
        .ldv()
        .args(["cat", &format!("tree@{v1}/c.txt")])
        .assert()
        .success();
    assert_eq!(out.get_output().stdout, b"c");
    let out = env.ldv().args(["cat", "data/sub/b.txt"]).assert().success();
    assert_eq!(out.get_output().stdout, b"b");
}

#[test]
fn a_killed_tree_put_commits_nothing() {
    let env = Env::with_vault();
    for i in 0..400u64 {
        env.write(&format!("src/d{}/f{i}", i % 10), &random_bytes(i, 40_000));
    }
    env.write("src/big", &random_bytes(7, 24 << 20));
    let mut child = env
        .std_ldv()
        .args(["put", "--no-progress"])
        .arg(env.path("src"))
        .arg("t")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once its first pack is out, before it can have committed.
    let packs = env.vault_dir().join("packs");
    let started = std::time::Instant::now();
    while std::fs::read_dir(&packs).map_or(0, |d| d.count()) == 0
        && started.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the put finished before it was killed");
    assert!(env.versions(env.ldv(), None).is_empty());
    // The next put commits the whole tree.
    put_tree(&env, &env.path("src"), "t", &[]);
    let dest = env.path("back");
    env.ldv().args(["get", "t"]).arg(&dest).assert().success();
    assert_eq!(
        std::fs::read(dest.join("big")).unwrap(),
        random_bytes(7, 24 << 20)
    );
}
