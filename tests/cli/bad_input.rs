//! Bad input of every kind gets a one-line error, the documented exit code (src/cli/exit.rs:
//! 2 usage or configuration, 3 not found, 4 a damaged vault descriptor, 5 permission denied,
//! 1 other failures), and changes nothing in the vault.

use std::os::unix::fs::PermissionsExt;

use assert_cmd::Command;

use crate::common::{Env, error_line, json_of, permissions_enforced, random_bytes};

/// Runs `cmd`, expects exit `code` and a one-line error, and returns that line.
fn fails(mut cmd: Command, code: i32) -> String {
    let out = cmd.assert().code(code);
    error_line(out.get_output())
}

/// An env with a vault holding one object, `kept`, and a file `src.bin` ready to put.
fn env_with_object() -> Env {
    let env = Env::with_vault();
    let src = env.write("src.bin", &random_bytes(50, 200_000));
    env.ldv()
        .arg("put")
        .arg(&src)
        .arg("kept")
        .assert()
        .success();
    env
}

/// `ldv --config PATH --profile t ARGS...`.
fn with_config(env: &Env, path: &std::path::Path, args: &[&str]) -> Command {
    let mut cmd = env.bare_ldv();
    cmd.arg("--config")
        .arg(path)
        .args(["--profile", "t"])
        .args(args);
    cmd
}

#[test]
fn malformed_toml_is_refused_naming_file_and_line() {
    let env = env_with_object();
    let before = env.vault_snapshot();
    let bad = env.root().join("bad.toml");
    let text = env.profile_toml("transfer = { parallel = = 4 }\n");
    std::fs::write(&bad, &text).unwrap();
    let line_no = text.lines().count();
    for args in [
        &["put", "src.bin", "new"][..],
        &["ls"],
        &["get", "kept", "out"],
    ] {
        let line = fails(with_config(&env, &bad, args), 2);
        assert!(line.contains(&format!("bad.toml:{line_no}:")), "{line}");
        assert!(line.contains(&bad.display().to_string()), "{line}");
    }
    assert!(!env.path("out").exists());
    assert_eq!(env.vault_snapshot(), before);

    // The default config file ($XDG_CONFIG_HOME/ldv/config.toml) is checked the same way.
    let default = env.xdg_config().join("ldv").join("config.toml");
    std::fs::create_dir_all(default.parent().unwrap()).unwrap();
    std::fs::write(&default, "default_profile = \"t\"\n[profiles.t\n").unwrap();
    let mut cmd = env.bare_ldv();
    cmd.args(["put", "src.bin", "new"]);
    let line = fails(cmd, 2);
    assert!(line.contains("config.toml:2:"), "{line}");
    assert_eq!(env.vault_snapshot(), before);
}

#[test]
fn unknown_keys_are_refused_and_named() {
    let env = env_with_object();
    let before = env.vault_snapshot();
    let vault = crate::common::toml_string(&env.vault_dir());
    let cases = [
        // In the profile table.
        (env.profile_toml("bogus = 1\n"), "bogus", 4),
        // In a nested table.
        (
            format!(
                "[profiles.t]\nbackend = {{ type = \"local\", path = {vault}, colour = \"red\" }}\n"
            ),
            "colour",
            2,
        ),
        (
            env.profile_toml("transfer = { parallel = 2, speed = 9 }\n"),
            "speed",
            4,
        ),
        // At the top level.
        (
            format!("verbose = true\n{}", env.profile_toml("")),
            "verbose",
            1,
        ),
    ];
    for (i, (text, key, line_no)) in cases.into_iter().enumerate() {
        let path = env.root().join(format!("unknown{i}.toml"));
        std::fs::write(&path, text).unwrap();
        let line = fails(with_config(&env, &path, &["put", "src.bin", "new"]), 2);
        assert!(line.contains(&format!("`{key}`")), "{line}");
        assert!(
            line.contains(&format!("unknown{i}.toml:{line_no}:")),
            "{line}"
        );
    }
    assert_eq!(env.vault_snapshot(), before);
}

#[test]
fn unknown_profile_is_refused() {
    let env = env_with_object();
    let before = env.vault_snapshot();
    let mut cmd = env.bare_ldv();
    cmd.arg("--config")
        .arg(env.config_path())
        .args(["--profile", "nope", "put", "src.bin", "new"]);
    let line = fails(cmd, 2);
    assert!(
        line.contains("\"nope\"") && line.contains("known: t"),
        "{line}"
    );

    // The same through LDV_PROFILE and LDV_CONFIG.
    let mut cmd = env.bare_ldv();
    cmd.env("LDV_CONFIG", env.config_path())
        .env("LDV_PROFILE", "nope")
        .args(["ls"]);
    assert!(fails(cmd, 2).contains("\"nope\""));

    // A profile named when there is no config file at all.
    let mut cmd = env.bare_ldv();
    cmd.args(["--profile", "t", "ls"]);
    let line = fails(cmd, 2);
    assert!(line.contains("no config file"), "{line}");

    // A --config that does not exist.
    let line = fails(
        with_config(&env, &env.root().join("missing.toml"), &["ls"]),
        2,
    );
    assert!(line.contains("missing.toml"), "{line}");
    assert_eq!(env.vault_snapshot(), before);
}

#[test]
fn invalid_names_are_refused() {
    let env = env_with_object();
    let before = env.vault_snapshot();
    let long_segment = "a".repeat(256);
    let too_long = vec!["abcdefgh"; 130].join("/");
    let bad_names = [
        "../x",
        "/abs",
        "a//b",
        "a\u{1}b",
        "tab\there",
        "a/./b",
        "x/..",
        "",
        ".ldv-tmp.x",
        long_segment.as_str(),
        too_long.as_str(),
    ];
    for name in bad_names {
        let mut cmd = env.ldv();
        cmd.args(["put", "src.bin", name]);
        let line = fails(cmd, 2);
        assert!(line.contains("invalid name"), "{name:?}: {line}");
        let mut cmd = env.ldv();
        cmd.args(["put", "-", name]).write_stdin("data");
        fails(cmd, 2);
    }
    for name in ["../x", "/abs", "a//b", "a\u{1}b"] {
        for command in ["get", "cat", "stat", "rm"] {
            let mut cmd = env.ldv();
            cmd.args(["--yes", command, name]);
            let line = fails(cmd, 2);
            assert!(line.contains("invalid name"), "{command} {name:?}: {line}");
        }
    }
    // An '@' followed by something that is almost a version is refused, not taken as a name.
    let mut cmd = env.ldv();
    cmd.args(["get", "kept@20260101T0000", "-"]);
    fails(cmd, 2);
    assert!(
        std::fs::read_dir(env.path("")).unwrap().count() == 1,
        "files were written"
    );
    assert_eq!(env.vault_snapshot(), before);
}

#[test]
fn missing_objects_are_not_found() {
    let env = env_with_object();
    // A tree version too (format 2): paths and versions missing from it are not found either.
    env.write("tree/a/one", b"1");
    env.ldv()
        .arg("put")
        .arg(env.path("tree"))
        .arg("tr")
        .assert()
        .success();
    let before = env.vault_snapshot();
    let missing_version = "kept@20200101T000000000Z-00000000";
    for args in [
        &["get", "nothere"][..],
        &["get", "nothere", "dest"],
        &["get", "nothere", "-"],
        &["get", missing_version, "dest"],
        &["cat", "nothere"],
        &["cat", missing_version],
        &["stat", "nothere"],
        &["stat", missing_version],
        &["rm", "nothere"],
        &["rm", "nothere", "--yes"],
        &["rm", missing_version, "--yes"],
        // One missing among several: nothing at all is removed.
        &["rm", "kept", "nothere", "--yes"],
        // Inside a tree: a missing path, a path below a file, a missing tree version.
        &["get", "tr/a/nothere", "dest"],
        &["get", "tr/a/nothere", "-"],
        &["get", "tr@20200101T000000000Z-00000000/a/one", "dest"],
        &["cat", "tr/nothere"],
        &["cat", "tr/a/one/below"],
        &["cat", "tr/a/one@20200101T000000000Z-00000000"],
        &["stat", "tr/a/nothere"],
        &["rm", "tr/a/nothere", "--yes"],
        &["rm", "-r", "tr/nothere", "--yes"],
    ] {
        let mut cmd = env.ldv();
        cmd.args(args);
        let out = cmd.assert().code(3);
        assert!(
            out.get_output().stdout.is_empty(),
            "{args:?} wrote to stdout"
        );
        let line = error_line(out.get_output());
        assert!(line.contains("not found"), "{args:?}: {line}");
    }
    assert!(!env.path("dest").exists() && !env.path("nothere").exists());
    assert_eq!(env.vault_snapshot(), before);

    // A source that does not exist is not found either, and stores nothing.
    let mut cmd = env.ldv();
    cmd.args(["put", "no-such-file", "x"]);
    fails(cmd, 3);
    // A profile whose vault was never created: not found, with the fix in the message.
    let other = env.root().join("other.toml");
    std::fs::write(
        &other,
        format!(
            "[profiles.t]\nbackend = {{ type = \"local\", path = {} }}\n",
            crate::common::toml_string(&env.root().join("never-created"))
        ),
    )
    .unwrap();
    let line = fails(with_config(&env, &other, &["put", "src.bin", "x"]), 3);
    assert!(line.contains("ldv init"), "{line}");
    assert_eq!(env.vault_snapshot(), before);
}

#[test]
fn an_unreadable_source_changes_nothing() {
    let env = env_with_object();
    let before = env.vault_snapshot();

    // A file that fails while being read, even for root.
    #[cfg(target_os = "linux")]
    {
        let mut cmd = env.ldv();
        cmd.args(["put", "/proc/self/mem", "mem"]);
        let line = fails(cmd, 1);
        assert!(line.contains("/proc/self/mem"), "{line}");
        assert_eq!(env.vault_snapshot(), before);
    }

    let locked = env.write("locked.bin", &random_bytes(51, 100_000));
    env.write("tree/ok.txt", b"fine");
    let locked_in_tree = env.write("tree/locked.txt", b"secret");
    for p in [&locked, &locked_in_tree] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o000)).unwrap();
    }
    if !permissions_enforced(env.root()) {
        eprintln!(
            "note: running with privileges that ignore chmod 000; skipping the unreadable-file assertions"
        );
        return;
    }
    let mut cmd = env.ldv();
    cmd.arg("put").arg(&locked).arg("locked");
    let line = fails(cmd, 5);
    assert!(line.contains("locked.bin"), "{line}");
    // A tree with one unreadable file is refused as a whole, before anything is stored.
    let mut cmd = env.ldv();
    cmd.arg("put").arg(env.path("tree")).arg("tree");
    let line = fails(cmd, 5);
    assert!(line.contains("locked.txt"), "{line}");
    assert_eq!(env.vault_snapshot(), before);
}

#[test]
fn get_into_an_unwritable_destination_fails_cleanly() {
    let env = env_with_object();
    let before = env.vault_snapshot();

    // A destination whose parent is a regular file fails for everyone, root included.
    env.write("plain-file", b"not a directory");
    let mut cmd = env.ldv();
    cmd.args(["get", "kept", "plain-file/out"]);
    let line = fails(cmd, 1);
    assert!(line.contains("plain-file"), "{line}");
    assert_eq!(
        std::fs::read(env.path("plain-file")).unwrap(),
        b"not a directory"
    );

    // A destination directory that does not exist.
    let mut cmd = env.ldv();
    cmd.args(["get", "kept", "no/such/dir/out"]);
    fails(cmd, 3);
    assert!(!env.path("no").exists());

    // A read-only directory.
    let ro = env.path("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    if permissions_enforced(env.root()) {
        let mut cmd = env.ldv();
        cmd.arg("get").arg("kept").arg(ro.join("out"));
        fails(cmd, 5);
        assert_eq!(
            std::fs::read_dir(&ro).unwrap().count(),
            0,
            "files left in {}",
            ro.display()
        );
    } else {
        eprintln!(
            "note: running with privileges that ignore directory permissions; skipping the read-only directory assertion"
        );
    }
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(env.vault_snapshot(), before);
}

#[test]
fn a_retry_section_is_used_and_a_bad_one_refused() {
    let env = env_with_object();
    let good = env.root().join("retry-good.toml");
    let retry = "retry = { max_retries = 5, initial_backoff = \"50ms\", max_backoff = \"2s\", multiplier = 1.5, jitter = false }\n";
    std::fs::write(&good, env.profile_toml(retry)).unwrap();
    with_config(&env, &good, &["put", "src.bin", "with-retry"])
        .assert()
        .success();
    let before = env.vault_snapshot();
    for (i, bad) in [
        "retry = { multiplier = 0.5 }",
        "retry = { initial_backoff = \"5s\", max_backoff = \"1s\" }",
        "retry = { initial_backoff = \"soon\" }",
        "retry = { retries = 3 }",
    ]
    .iter()
    .enumerate()
    {
        let path = env.root().join(format!("retry-bad{i}.toml"));
        std::fs::write(&path, env.profile_toml(&format!("{bad}\n"))).unwrap();
        let line = fails(with_config(&env, &path, &["put", "src.bin", "new"]), 2);
        assert!(
            line.contains("retry") || line.contains("soon"),
            "{bad}: {line}"
        );
    }
    assert_eq!(env.vault_snapshot(), before);
}

#[test]
fn unsupported_config_sections_are_refused() {
    let env = env_with_object();
    let before = env.vault_snapshot();
    let sections = ["cache = { max_size = \"10GiB\" }"];
    for (i, section) in sections.iter().enumerate() {
        let path = env.root().join(format!("section{i}.toml"));
        std::fs::write(&path, env.profile_toml(&format!("{section}\n"))).unwrap();
        let line = fails(with_config(&env, &path, &["put", "src.bin", "new"]), 2);
        let key = section.split(' ').next().unwrap();
        assert!(
            line.contains("not supported yet") && line.contains(key),
            "{line}"
        );
        assert!(line.contains(&format!("section{i}.toml:4:")), "{line}");
    }
    // Every backend type is known; a key the type does not have is refused, named with its line.
    for (kind, bucket) in [("azure", "container"), ("gcs", "bucket")] {
        let path = env.root().join(format!("{kind}.toml"));
        std::fs::write(
            &path,
            format!(
                "[profiles.t]\nbackend = {{ type = \"{kind}\", {bucket} = \"b\", region = \"x\" }}\n"
            ),
        )
        .unwrap();
        let line = fails(with_config(&env, &path, &["put", "src.bin", "new"]), 2);
        assert!(
            line.contains("unknown field `region`") && line.contains(&format!("{kind}.toml:2:")),
            "{line}"
        );
    }
    // Chunking out of range is a configuration error too.
    let path = env.root().join("chunking.toml");
    std::fs::write(
        &path,
        format!(
            "[profiles.t]\nbackend = {{ type = \"local\", path = {} }}\nchunking = {{ mode = \"cdc\", max = \"1GiB\" }}\n",
            crate::common::toml_string(&env.vault_dir())
        ),
    )
    .unwrap();
    let line = fails(with_config(&env, &path, &["put", "src.bin", "new"]), 2);
    assert!(line.contains("chunking.max"), "{line}");
    assert_eq!(env.vault_snapshot(), before);
}

#[test]
fn unsupported_vault_urls_are_refused() {
    let env = env_with_object();
    let before = env.vault_snapshot();
    for (url, needle) in [
        ("s3://", "no bucket"),
        ("az://", "no container"),
        ("gs://", "no bucket"),
        ("ftp://host/x", "unknown scheme"),
        ("file://relative/path", "absolute"),
    ] {
        for args in [&["ls"][..], &["put", "src.bin", "x"], &["init"]] {
            let mut cmd = env.bare_ldv();
            cmd.args(["--vault", url]).args(args);
            let line = fails(cmd, 2);
            assert!(line.contains(needle), "{url} {args:?}: {line}");
        }
    }
    // LDV_VAULT is read the same way.
    let mut cmd = env.bare_ldv();
    cmd.env("LDV_VAULT", "ftp://b").arg("ls");
    assert!(fails(cmd, 2).contains("unknown scheme"));
    assert_eq!(env.vault_snapshot(), before);
    assert!(
        !env.xdg_data().join("ldv").exists(),
        "the default vault was created"
    );
}

#[test]
fn a_version_shaped_name_segment_does_not_break_name_at_version() {
    let env = env_with_object();
    let v = "20990101T000000000Z-00000000";
    env.ldv()
        .args(["put", "src.bin", &format!("x/{v}")])
        .assert()
        .success();
    let mut cmd = env.ldv();
    cmd.args(["get", &format!("x@{v}"), "-"]);
    fails(cmd, 3);
}

#[test]
fn a_command_on_a_missing_vault_creates_nothing() {
    let env = env_with_object();
    let missing = env.root().join("typo").join("deep");
    for args in [
        &["ls"][..],
        &["put", "src.bin", "x"],
        &["get", "x", "out"],
        &["stat", "x"],
        &["health"],
    ] {
        let mut cmd = env.bare_ldv();
        cmd.arg("--vault").arg(&missing).args(args);
        if args == ["health"] {
            // health reports on stdout, and says "no vault" with exit 3.
            cmd.assert().code(3);
        } else {
            let line = fails(cmd, 3);
            assert!(line.contains("ldv init"), "{args:?}: {line}");
        }
        assert!(
            !env.root().join("typo").exists(),
            "{args:?} created {}",
            missing.display()
        );
    }
}

/// Writes `text` as the config file `name` in the env's root and returns its path.
fn config_file(env: &Env, name: &str, text: &str) -> std::path::PathBuf {
    let path = env.root().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_profile_without_backend_is_refused_not_sent_to_the_default_vault() {
    let env = env_with_object();
    let text = "[profiles.t]\nchunking = { mode = \"cdc\" }\n";
    let path = config_file(&env, "nobackend.toml", text);
    for args in [&["put", "src.bin", "x"][..], &["ls"], &["init"]] {
        let line = fails(with_config(&env, &path, args), 2);
        assert!(
            line.contains("nobackend.toml:1:") && line.contains("profile \"t\" has no backend"),
            "{args:?}: {line}"
        );
    }
    // Chosen through default_profile, the same.
    let path = config_file(
        &env,
        "nobackend-default.toml",
        &format!("default_profile = \"t\"\n{text}"),
    );
    let mut cmd = env.bare_ldv();
    cmd.arg("--config").arg(&path).args(["put", "src.bin", "x"]);
    assert!(fails(cmd, 2).contains("has no backend"));
    assert!(
        !env.xdg_data().join("ldv").exists(),
        "the default vault was written"
    );
    // --vault (or LDV_VAULT) names the vault instead; the profile still gives the chunking.
    with_config(&env, &path, &["put", "src.bin", "via-flag"])
        .arg("--vault")
        .arg(env.vault_url())
        .assert()
        .success();
    with_config(&env, &path, &["ls", "via-flag"])
        .env("LDV_VAULT", env.vault_url())
        .assert()
        .success();
    assert!(!env.xdg_data().join("ldv").exists());
}

#[test]
fn a_config_that_is_not_a_utf8_file_is_a_configuration_error() {
    let env = env_with_object();
    let before = env.vault_snapshot();
    let mut text = env.profile_toml("").into_bytes();
    text.extend_from_slice(b"# caf\xe9\n");
    let latin1 = env.root().join("latin1.toml");
    std::fs::write(&latin1, text).unwrap();
    let line = fails(with_config(&env, &latin1, &["ls"]), 2);
    assert!(
        line.contains(&format!("{}:4:", latin1.display())) && line.contains("UTF-8"),
        "{line}"
    );
    let dir = env.root().join("conf.d");
    std::fs::create_dir(&dir).unwrap();
    let line = fails(with_config(&env, &dir, &["ls"]), 2);
    assert!(
        line.contains(&dir.display().to_string()) && line.contains("directory"),
        "{line}"
    );
    assert_eq!(env.vault_snapshot(), before);
}

#[test]
fn a_garbage_or_empty_vault_descriptor_is_corruption() {
    let env = env_with_object();
    let descriptor = env.vault_dir().join("ldv-vault.json");
    for damage in [&b"not json at all"[..], b"", b"{\"format\": 1}"] {
        std::fs::write(&descriptor, damage).unwrap();
        for args in [&["ls"][..], &["get", "kept", "out"]] {
            let mut cmd = env.ldv();
            cmd.args(args);
            let line = fails(cmd, 4);
            assert!(
                line.contains(&descriptor.display().to_string()) && line.contains("unreadable"),
                "{damage:?} {args:?}: {line}"
            );
        }
    }
    assert!(!env.path("out").exists());
}

#[test]
fn out_of_range_values_in_the_vault_descriptor_are_corruption_naming_it() {
    let env = env_with_object();
    let path = env.vault_dir().join("ldv-vault.json");
    let good: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for chunker in [
        serde_json::json!({ "mode": "cdc", "min": 65536, "avg": 262144, "max": 1 }),
        serde_json::json!({ "mode": "fixed", "size": 0, "min_chunk_threshold": 0 }),
    ] {
        let mut damaged = good.clone();
        damaged["chunker"] = chunker.clone();
        std::fs::write(&path, serde_json::to_vec(&damaged).unwrap()).unwrap();
        let mut cmd = env.ldv();
        cmd.arg("ls");
        let line = fails(cmd, 4);
        assert!(
            line.contains(&path.display().to_string()) && line.contains("chunker"),
            "{chunker}: {line}"
        );
    }
}

#[test]
fn an_overflowing_size_names_its_key_and_the_text_written() {
    let env = env_with_object();
    let before = env.vault_snapshot();
    for (chunking, key, text) in [
        (
            "{ mode = \"fixed\", size = \"99999PiB\" }",
            "chunking.size",
            "\"99999PiB\"",
        ),
        (
            "{ mode = \"fixed\", min_chunk_threshold = \"99999999999999999999\" }",
            "chunking.min_chunk_threshold",
            "\"99999999999999999999\"",
        ),
        (
            "{ mode = \"cdc\", max = \"17EiB\" }",
            "chunking.max",
            "\"17EiB\"",
        ),
    ] {
        let path = config_file(
            &env,
            "overflow.toml",
            &format!(
                "[profiles.t]\nbackend = {{ type = \"local\", path = {} }}\nchunking = {chunking}\n",
                crate::common::toml_string(&env.vault_dir())
            ),
        );
        let line = fails(with_config(&env, &path, &["put", "src.bin", "new"]), 2);
        assert!(
            line.contains("overflow.toml:3:")
                && line.contains(key)
                && line.contains(&format!("{text} is too large")),
            "{chunking}: {line}"
        );
        assert!(!line.contains("18446744073709551615"), "{line}");
    }
    assert_eq!(env.vault_snapshot(), before);
}

#[test]
fn transfer_parallel_in_a_profile_has_the_bounds_of_j() {
    let env = env_with_object();
    let before = env.vault_snapshot();
    for n in ["0", "257", "99999999999"] {
        let path = config_file(
            &env,
            "parallel.toml",
            &env.profile_toml(&format!("transfer = {{ parallel = {n} }}\n")),
        );
        let line = fails(with_config(&env, &path, &["put", "src.bin", "new"]), 2);
        assert!(
            line.contains("parallel.toml:4:")
                && line.contains(&format!("transfer.parallel {n} must be between 1 and 256")),
            "{n}: {line}"
        );
    }
    assert_eq!(env.vault_snapshot(), before);
    let path = config_file(
        &env,
        "parallel.toml",
        &env.profile_toml("transfer = { parallel = 256 }\n"),
    );
    with_config(&env, &path, &["put", "src.bin", "wide"])
        .assert()
        .success();
}

#[test]
fn range_errors_in_a_profile_name_the_line_of_their_key() {
    let env = env_with_object();
    let before = env.vault_snapshot();
    let vault = crate::common::toml_string(&env.vault_dir());
    let cases = [
        // The offending key on its own line in a table of its own.
        (
            format!(
                "[profiles.t]\nbackend = {{ type = \"local\", path = {vault} }}\n\n[profiles.t.chunking]\nmode = \"cdc\"\nmin = 1\n"
            ),
            6,
            "chunking.min 1",
        ),
        // A check across keys points at their table.
        (
            env.profile_toml("")
                .replace("max = \"256KiB\"", "max = \"1KiB\""),
            3,
            "min <= avg <= max",
        ),
        (
            env.profile_toml("retry = {\n  multiplier = 0.5 }\n"),
            5,
            "retry.multiplier",
        ),
        (
            env.profile_toml("compression = { algorithm = \"zstd\", level = 99 }\n"),
            4,
            "compression.level 99",
        ),
    ];
    for (text, line_no, needle) in cases {
        let path = config_file(&env, "range.toml", &text);
        let line = fails(with_config(&env, &path, &["put", "src.bin", "new"]), 2);
        assert!(
            line.contains(&format!("range.toml:{line_no}:"))
                && line.contains("profile \"t\"")
                && line.contains(needle),
            "{needle}: {line}"
        );
    }
    assert_eq!(env.vault_snapshot(), before);
}

#[test]
fn init_save_profile_creates_the_config_file_named_with_config() {
    let env = Env::bare();
    let config = env.root().join("new").join("dir").join("ldv.toml");
    let mut cmd = env.bare_ldv();
    cmd.arg("--config")
        .arg(&config)
        .arg("--vault")
        .arg(env.vault_url())
        .args(["init", "--save-profile", "p1"]);
    cmd.assert().success();
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", config.display());
    assert!(env.vault_dir().join("ldv-vault.json").is_file());
    // The saved profile is the default of the new file and names the vault.
    let src = env.write("src.bin", b"through the saved profile");
    let mut cmd = env.bare_ldv();
    cmd.arg("--config")
        .arg(&config)
        .arg("put")
        .arg(&src)
        .arg("x");
    cmd.assert().success();
    assert!(!env.xdg_data().join("ldv").exists());
    assert!(!env.xdg_config().join("ldv").exists());
    // A named config that does not exist is refused by every other command, `--vault` or not.
    let missing = env.root().join("missing.toml");
    let mut cmd = env.bare_ldv();
    cmd.arg("--config").arg(&missing).arg("ls");
    assert!(fails(cmd, 2).contains("missing.toml not found"));
    let mut cmd = env.bare_ldv();
    cmd.arg("--config")
        .arg(&missing)
        .arg("--vault")
        .arg(env.vault_url())
        .arg("ls");
    assert!(fails(cmd, 2).contains("missing.toml not found"));
    assert!(!missing.exists());
}

#[test]
fn a_section_that_is_not_a_table_is_named_with_an_example_not_a_type() {
    let env = Env::bare();
    for (line, want) in [
        (
            "backend = \"local\"",
            "backend: invalid type: string \"local\", expected a table such as { type = \"local\"",
        ),
        (
            "chunking = \"cdc\"",
            "chunking: invalid type: string \"cdc\", expected a table such as { mode = \"cdc\"",
        ),
        (
            "transfer = 5",
            "transfer: invalid type: integer `5`, expected a table such as { parallel = 8 }",
        ),
    ] {
        env.write_config(&format!("[profiles.t]\n{line}\n"));
        let mut cmd = env.ldv();
        cmd.arg("ls");
        let err = fails(cmd, 2);
        assert!(err.contains(want), "{line}: {err}");
        assert!(
            !err.contains("Spec") && !err.contains("Table"),
            "{line}: {err}"
        );
    }
}

#[test]
fn usage_errors_are_one_line_and_a_json_document_with_json() {
    let env = Env::with_vault();
    for args in [
        &["-j", "0", "ls"][..],
        &["ls", "--bogus"],
        &["get"],
        &["completions", "bogus"],
        &["--meta", "novalue", "put"],
    ] {
        let mut cmd = env.ldv();
        cmd.args(args);
        let line = fails(cmd, 2);
        assert!(!line.contains("Usage:"), "{args:?}: {line}");
    }
    let out = env.ldv().args(["--json", "ls", "--bogus"]).assert().code(2);
    let doc = json_of(out.get_output());
    assert_eq!(doc["error"]["exit_code"], 2, "{doc}");
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--bogus"),
        "{doc}"
    );
    // Help and version are not errors.
    env.ldv().arg("--help").assert().success();
    env.ldv().arg("--version").assert().success();
}
