//! Versions, listing, stat, removal, and the `--json` form of every command.

use std::io::Read;
use std::process::Stdio;

use serde_json::Value;

use crate::common::{Env, assert_bytes, error_line, json_of, lines_of, random_bytes, sha256_hex};

/// Puts `data` under `name` through the explicit vault and returns the new version.
fn put_version(env: &Env, name: &str, file: &str, data: &[u8]) -> String {
    let src = env.write(file, data);
    let r = env.put_json(env.ldv_vault(), &src, name);
    r["version"].as_str().unwrap().to_owned()
}

#[test]
fn versions_are_kept_and_addressable() {
    let env = Env::with_explicit_vault();
    let one = random_bytes(20, 4000);
    let two = random_bytes(21, 6000);
    let v1 = put_version(&env, "m/model.bin", "one", &one);
    let v2 = put_version(&env, "m/model.bin", "two", &two);
    assert!(v1 < v2, "versions sort by time: {v1} then {v2}");

    let out = env
        .ldv_vault()
        .args(["ls", "--versions"])
        .assert()
        .success();
    assert_eq!(
        lines_of(out.get_output()),
        [format!("m/model.bin@{v1}"), format!("m/model.bin@{v2}")]
    );
    let out = env.ldv_vault().arg("ls").assert().success();
    assert_eq!(lines_of(out.get_output()), ["m/model.bin"]);
    let out = env.ldv_vault().args(["ls", "-l"]).assert().success();
    let long = lines_of(out.get_output());
    assert_eq!(long.len(), 1);
    assert!(long[0].contains("2 versions"), "{long:?}");
    assert!(long[0].contains(&sha256_hex(&two)[..12]), "{long:?}");
    assert!(long[0].ends_with(" m/model.bin"), "{long:?}");

    let out = env
        .ldv_vault()
        .args(["get", &format!("m/model.bin@{v1}"), "-"])
        .assert()
        .success();
    assert_bytes(
        &out.get_output().stdout,
        &one,
        "NAME@V1 is not the first content",
    );
    let out = env
        .ldv_vault()
        .args(["get", "m/model.bin", "-"])
        .assert()
        .success();
    assert_bytes(
        &out.get_output().stdout,
        &two,
        "NAME is not the newest content",
    );
    let out = env
        .ldv_vault()
        .args(["cat", &format!("m/model.bin@{v1}")])
        .assert()
        .success();
    assert_bytes(&out.get_output().stdout, &one, "cat NAME@V1");

    let out = env
        .ldv_vault()
        .args(["--json", "stat", "m/model.bin"])
        .assert()
        .success();
    let s = json_of(out.get_output());
    assert_eq!(s["version"], v2.as_str());
    assert_eq!(s["all_versions"], serde_json::json!([v1, v2]));
    assert_eq!(s["size"], two.len() as u64);
    assert_eq!(s["sha256"], sha256_hex(&two));
    let out = env
        .ldv_vault()
        .args(["--json", "stat", &format!("m/model.bin@{v1}")])
        .assert()
        .success();
    let s = json_of(out.get_output());
    assert_eq!(s["version"], v1.as_str());
    assert_eq!(s["sha256"], sha256_hex(&one));
    assert_eq!(s["all_versions"].as_array().unwrap().len(), 2);

    let out = env
        .ldv_vault()
        .args(["stat", "m/model.bin"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains(&format!("{v2} (2 of 2)")), "{text}");
}

#[test]
fn rm_of_one_version_keeps_the_others() {
    let env = Env::with_explicit_vault();
    let other = put_version(&env, "other", "o", b"other content");
    let contents: Vec<Vec<u8>> = (0..3).map(|i| random_bytes(30 + i, 3000)).collect();
    let versions: Vec<String> = contents
        .iter()
        .enumerate()
        .map(|(i, c)| put_version(&env, "x/obj", &format!("c{i}"), c))
        .collect();

    let out = env
        .ldv_vault()
        .args(["rm", "--yes", &format!("x/obj@{}", versions[1])])
        .assert()
        .success();
    assert_eq!(
        lines_of(out.get_output()),
        [format!("removed x/obj@{}", versions[1])]
    );
    let left = env.versions(env.ldv_vault(), Some("x/"));
    assert_eq!(
        left,
        [
            ("x/obj".to_owned(), versions[0].clone()),
            ("x/obj".to_owned(), versions[2].clone())
        ]
    );
    env.ldv_vault()
        .args(["get", &format!("x/obj@{}", versions[1]), "-"])
        .assert()
        .code(3);
    let out = env.ldv_vault().args(["cat", "x/obj"]).assert().success();
    assert_bytes(&out.get_output().stdout, &contents[2], "newest after rm");
    let out = env
        .ldv_vault()
        .args(["cat", &format!("x/obj@{}", versions[0])])
        .assert()
        .success();
    assert_bytes(
        &out.get_output().stdout,
        &contents[0],
        "first version after rm",
    );

    // NAME removes every version of NAME and nothing else.
    env.ldv_vault()
        .args(["rm", "x/obj", "--yes"])
        .assert()
        .success();
    assert!(env.versions(env.ldv_vault(), Some("x/")).is_empty());
    let out = env.ldv_vault().args(["cat", "x/obj"]).assert().code(3);
    error_line(out.get_output());
    assert_eq!(
        env.versions(env.ldv_vault(), None),
        [("other".to_owned(), other)]
    );

    // Removing again: nothing to remove is not found.
    env.ldv_vault()
        .args(["rm", "x/obj", "--yes"])
        .assert()
        .code(3);
}

#[test]
fn rm_without_yes_and_no_terminal_refuses_and_removes_nothing() {
    let env = Env::with_explicit_vault();
    put_version(&env, "keep/me", "a", b"first");
    put_version(&env, "keep/me", "b", b"second");
    let before = env.vault_snapshot();

    let out = env.ldv_vault().args(["rm", "keep/me"]).assert().code(2);
    let line = error_line(out.get_output());
    assert!(line.contains("--yes"), "{line}");
    let out = env
        .ldv_vault()
        .args(["rm", "keep/me"])
        .write_stdin("y\n")
        .assert()
        .code(2);
    error_line(out.get_output());
    let out = env
        .ldv_vault()
        .args(["--json", "rm", "keep/me"])
        .assert()
        .code(2);
    assert_eq!(json_of(out.get_output())["error"]["exit_code"], 2);

    assert_eq!(
        env.vault_snapshot(),
        before,
        "rm without --yes changed the vault"
    );
    assert_eq!(env.versions(env.ldv_vault(), None).len(), 2);
}

#[test]
fn rm_recursive_takes_the_tree_below_a_name_only() {
    let env = Env::with_explicit_vault();
    put_version(&env, "dir/a", "a", b"a");
    put_version(&env, "dir/sub/b", "b", b"b");
    put_version(&env, "dirx", "c", b"c");

    // Without -r a name that only has objects below it is not found.
    let before = env.vault_snapshot();
    env.ldv_vault()
        .args(["rm", "dir", "--yes"])
        .assert()
        .code(3);
    assert_eq!(env.vault_snapshot(), before);

    env.ldv_vault()
        .args(["rm", "-r", "dir", "--yes"])
        .assert()
        .success();
    let names: Vec<String> = env
        .versions(env.ldv_vault(), None)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["dirx"]);
}

#[test]
fn ls_filters_by_prefix() {
    let env = Env::with_explicit_vault();
    for name in ["a/one", "a/two", "ab", "b/three"] {
        put_version(&env, name, name, name.as_bytes());
    }
    let ls = |prefix: &str| {
        let out = env.ldv_vault().args(["ls", prefix]).assert().success();
        lines_of(out.get_output())
    };
    assert_eq!(ls("a/"), ["a/one", "a/two"]);
    assert_eq!(ls("a"), ["a/one", "a/two", "ab"]);
    assert_eq!(ls("b/t"), ["b/three"]);
    assert!(ls("zzz").is_empty());
    let out = env
        .ldv_vault()
        .args(["--json", "ls", "zzz"])
        .assert()
        .success();
    assert_eq!(json_of(out.get_output()), serde_json::json!([]));
}

#[test]
fn every_command_speaks_json() {
    let env = Env::bare();
    let url = env.vault_url();

    // init: created, then found.
    let out = env.ldv_vault().args(["--json", "init"]).assert().success();
    let init = json_of(out.get_output());
    assert_eq!(init["created"], true);
    // Format 2 (packs and index segments) is what new vaults get.
    assert_eq!(init["descriptor"]["format"], 2);
    let out = env.ldv_vault().args(["--json", "init"]).assert().success();
    let again = json_of(out.get_output());
    assert_eq!(again["created"], false);
    assert_eq!(
        again["descriptor"]["vault_id"],
        init["descriptor"]["vault_id"]
    );

    // put: one file, then a tree.
    let data = random_bytes(40, 5000);
    let src = env.write("f.bin", &data);
    let put = env.put_json(env.ldv_vault(), &src, "j/f.bin");
    assert_eq!(put["sha256"], sha256_hex(&data));
    for key in ["version", "chunks", "new_chunks", "bytes_uploaded", "stats"] {
        assert!(!put[key].is_null(), "put --json lacks {key}: {put}");
    }
    env.write("t/x", b"x");
    env.write("t/y/z", b"zz");
    let out = env
        .ldv_vault()
        .args(["--json", "put"])
        .arg(env.path("t"))
        .arg("j/tree")
        .assert()
        .success();
    // A directory is one tree version: its receipt counts entries, not objects.
    let tree = json_of(out.get_output());
    assert_eq!(tree["name"], "j/tree", "{tree}");
    assert_eq!(
        (
            &tree["entries"],
            &tree["files"],
            &tree["dirs"],
            &tree["symlinks"]
        ),
        (&3.into(), &2.into(), &1.into(), &0.into()),
        "{tree}"
    );
    assert_eq!(tree["size"], 3, "{tree}");
    assert_eq!(tree["complete"], true, "{tree}");
    assert_eq!(tree["skipped"], serde_json::json!([]), "{tree}");
    for key in [
        "version",
        "sha256",
        "files_read",
        "new_chunks",
        "bytes_uploaded",
        "elapsed_ms",
        "stats",
    ] {
        assert!(!tree[key].is_null(), "tree put --json lacks {key}: {tree}");
    }
    assert!(tree.get("objects").is_none(), "{tree}");

    // get: one file, then the tree.
    let out = env
        .ldv_vault()
        .args(["--json", "get", "j/f.bin"])
        .arg(env.path("out.bin"))
        .assert()
        .success();
    assert_eq!(json_of(out.get_output())["sha256"], sha256_hex(&data));
    let out = env
        .ldv_vault()
        .args(["--json", "get", "j/tree"])
        .arg(env.path("tree-out"))
        .assert()
        .success();
    assert_eq!(json_of(out.get_output())["files"], 2);

    // ls, ls -l, ls --versions.
    let out = env.ldv_vault().args(["--json", "ls"]).assert().success();
    let ls = json_of(out.get_output());
    let names: Vec<&str> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["j/f.bin", "j/tree"]);
    // Inside the tree: its entries, directories ending with '/'.
    let out = env
        .ldv_vault()
        .args(["--json", "ls", "j/tree/"])
        .assert()
        .success();
    let inside = json_of(out.get_output());
    let entries: Vec<(&str, &str)> = inside
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        entries,
        [
            ("j/tree/x", "file"),
            ("j/tree/y/", "dir"),
            ("j/tree/y/z", "file")
        ]
    );
    assert!(
        inside
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["version"] == tree["version"]),
        "{inside}"
    );
    let out = env
        .ldv_vault()
        .args(["--json", "ls", "-l", "j/f.bin"])
        .assert()
        .success();
    let long = json_of(out.get_output());
    assert_eq!(long[0]["size"], data.len() as u64);
    assert_eq!(long[0]["sha256"], sha256_hex(&data));
    assert_eq!(long[0]["versions"], 1);
    assert!(
        long[0]["chunks"].is_u64() && long[0]["created_at"].is_string(),
        "{long}"
    );
    let out = env
        .ldv_vault()
        .args(["--json", "ls", "--versions"])
        .assert()
        .success();
    // Versions of names: the file's and the tree's, not one per entry of the tree.
    assert_eq!(json_of(out.get_output()).as_array().unwrap().len(), 2);

    // stat, health.
    let out = env
        .ldv_vault()
        .args(["--json", "stat", "j/f.bin"])
        .assert()
        .success();
    let stat = json_of(out.get_output());
    assert_eq!(stat["name"], "j/f.bin");
    assert_eq!(stat["version"], put["version"]);
    assert!(
        stat["chunks"].is_array() && stat["all_versions"].is_array(),
        "{stat}"
    );
    let out = env
        .ldv_vault()
        .args(["--json", "stat", "j/tree/y/z"])
        .assert()
        .success();
    let stat = json_of(out.get_output());
    assert_eq!(stat["tree"], "j/tree", "{stat}");
    assert_eq!(stat["version"], tree["version"], "{stat}");
    assert_eq!(stat["path"], "y/z", "{stat}");
    assert_eq!(stat["kind"], "file", "{stat}");
    assert_eq!(stat["size"], 2, "{stat}");
    assert_eq!(stat["sha256"], sha256_hex(b"zz"), "{stat}");
    assert!(
        stat["mode"].is_string() && stat["mtime"].is_string() && stat["chunks"].is_array(),
        "{stat}"
    );
    let out = env
        .ldv_vault()
        .args(["--json", "health"])
        .assert()
        .success();
    let health = json_of(out.get_output());
    assert_eq!(health["status"]["healthy"], true);
    assert_eq!(health["vault"]["format"], 2);
    assert!(
        health["backend"].as_str().unwrap().contains(&url),
        "{health}"
    );

    // rm.
    let out = env
        .ldv_vault()
        .args(["--json", "--yes", "rm", "j/f.bin"])
        .assert()
        .success();
    let rm = json_of(out.get_output());
    assert_eq!(
        rm["removed"],
        serde_json::json!([{ "name": "j/f.bin", "version": put["version"] }])
    );

    // Errors: one JSON document on stdout, one line on stderr, the exit code in both.
    let out = env
        .ldv_vault()
        .args(["--json", "get", "j/f.bin"])
        .assert()
        .code(3);
    let err: Value = json_of(out.get_output());
    assert_eq!(err["error"]["exit_code"], 3);
    assert_eq!(err["error"]["kind"], "not_found");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("j/f.bin")
    );
    error_line(out.get_output());
    let out = env
        .ldv_vault()
        .args(["--json", "put", "-", "../bad"])
        .write_stdin("x")
        .assert()
        .code(2);
    assert_eq!(json_of(out.get_output())["error"]["exit_code"], 2);
    error_line(out.get_output());

    // health on a directory holding no vault: JSON, and exit 3.
    let out = env
        .bare_ldv()
        .arg("--vault")
        .arg(env.root().join("empty-vault"))
        .args(["--json", "health"])
        .assert()
        .code(3);
    let h = json_of(out.get_output());
    assert!(h["vault"].is_null() && h["vault_error"].is_string(), "{h}");

    // rm of a path inside a tree: a new version of the tree without it, reported in JSON.
    let out = env
        .ldv_vault()
        .args(["--json", "--yes", "rm", "j/tree/x"])
        .assert()
        .success();
    let rm = json_of(out.get_output());
    let (_, newest) = env.versions(env.ldv_vault(), Some("j/tree")).pop().unwrap();
    assert_ne!(newest, tree["version"].as_str().unwrap());
    let text = rm.to_string();
    assert!(
        text.contains("\"j/tree\"")
            && text.contains(&newest)
            && text.contains(tree["version"].as_str().unwrap()),
        "rm --json names the tree, the new version and the one it was made from: {rm}"
    );
    env.ldv_vault().args(["cat", "j/tree/x"]).assert().code(3);
}

#[test]
fn json_into_a_closed_pipe_is_not_a_failure() {
    let env = Env::with_explicit_vault();
    put_version(&env, "p", "p", &random_bytes(41, 1000));
    for args in [
        vec!["--json", "stat", "p"],
        vec!["--json", "ls", "-l"],
        vec!["stat", "p"],
    ] {
        let mut child = env
            .std_command()
            .arg("--vault")
            .arg(env.vault_url())
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before ldv writes anything, as `| head -0` would.
        drop(child.stdout.take());
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(
            status.code(),
            Some(0),
            "{args:?} into a closed pipe: {stderr}"
        );
    }
}
