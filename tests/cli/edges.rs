//! Sources and destinations at the edges: pipes and devices, files that change while a put reads
//! them, entries a tree put skips, names a put must refuse, destinations a get must not replace, a tree get that fails
//! half-way, a full stdout, and a manifest whose content digest no longer matches its chunks.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::common::{Env, FORMATS, assert_file, error_line, json_of, random_bytes, write_over};

const MIB: usize = 1 << 20;

fn mkfifo(path: &Path) {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path)
        .map(|m| m.file_type().is_fifo())
        .unwrap_or(false)
}

/// A thread appending to a file every millisecond, from before `start` returns until `stop`.
struct Appender {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Appender {
    fn start(path: &Path) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (path, stop) = (path.to_path_buf(), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    f.write_all(&[7u8; 4096]).unwrap();
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        // Running before a put started next opens the file.
        std::thread::sleep(Duration::from_millis(20));
        Self { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
    }
}

fn names(env: &Env) -> Vec<String> {
    env.versions(env.ldv(), None)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

#[test]
fn a_fifo_is_read_once_to_its_end() {
    let env = Env::with_vault();
    let fifo = env.path("pipe");
    mkfifo(&fifo);
    let data = random_bytes(3, MIB + 7);
    let writer = {
        let (fifo, data) = (fifo.clone(), data.clone());
        std::thread::spawn(move || {
            // Blocks until ldv opens the FIFO for reading; one open, one stream.
            let mut f = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
            f.write_all(&data).unwrap();
        })
    };
    let receipt = json_of(
        env.ldv()
            .args(["--json", "put"])
            .arg(&fifo)
            .arg("from/pipe")
            .assert()
            .success()
            .get_output(),
    );
    writer.join().unwrap();
    assert_eq!(receipt["size"], data.len() as u64);
    env.ldv()
        .args(["get", "from/pipe"])
        .arg(env.path("out"))
        .assert()
        .success();
    assert_file(&env.path("out"), &data);
}

#[test]
fn a_file_that_grows_while_it_is_read_stores_nothing() {
    let env = Env::with_vault();
    let src = env.write("growing.bin", &random_bytes(4, 4 * MIB));
    let appender = Appender::start(&src);
    let out = env.ldv().arg("put").arg(&src).arg("grows").assert().code(1);
    appender.stop();
    let line = error_line(out.get_output());
    assert!(line.contains("changed while it was read"), "{line}");
    assert!(line.contains("growing.bin"), "{line}");
    assert!(names(&env).is_empty(), "a version was committed");
}

#[test]
fn a_tree_put_skips_what_it_cannot_store_commits_the_rest_and_exits_9() {
    let env = Env::with_vault();
    let tree = env.path("tree");
    env.write("tree/keep.txt", b"kept");
    env.write("tree/sub/deep.bin", &random_bytes(9, 3000));
    let growing = env.write("tree/sub/growing.bin", &random_bytes(10, 4 * MIB));
    mkfifo(&tree.join("fifo"));
    let _socket = std::os::unix::net::UnixListener::bind(tree.join("sock")).unwrap();
    // Symlinks of every kind are stored as symlinks, never followed: none of these is skipped.
    std::os::unix::fs::symlink(tree.join("nowhere"), tree.join("dangling")).unwrap();
    std::os::unix::fs::symlink(tree.join("sub"), tree.join("linked-dir")).unwrap();
    std::os::unix::fs::symlink("/proc/self/mem", tree.join("to-mem")).unwrap();
    // A source named on the command line is followed: /proc/self/mem opens, but reading a
    // process's memory at address 0 fails (EIO), even for root. With two sources, the tree's
    // top-level entries are `tree` and `mem`.
    let unreadable = Path::new("/proc/self/mem");
    let appender = Appender::start(&growing);
    let out = env
        .ldv()
        .args(["--json", "put"])
        .arg(&tree)
        .arg(unreadable)
        .arg("t")
        .assert()
        .code(9);
    appender.stop();
    let out = out.get_output();
    let summary = json_of(out);
    assert_eq!(summary["name"], "t", "{summary}");
    assert_eq!(summary["complete"], false, "{summary}");
    let skipped: Vec<(String, String)> = summary["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let path = s["path"].as_str().unwrap().to_owned();
            (path, s["reason"].as_str().unwrap().to_owned())
        })
        .collect();
    let paths: Vec<&str> = skipped.iter().map(|(p, _)| p.as_str()).collect();
    let mut want: Vec<String> = ["fifo", "sock", "sub/growing.bin"]
        .iter()
        .map(|f| tree.join(f).display().to_string())
        .collect();
    want.push(unreadable.display().to_string());
    want.sort();
    assert_eq!(paths, want, "{skipped:?}");
    let reason = |path: &Path| {
        let path = path.display().to_string();
        &skipped.iter().find(|(p, _)| *p == path).unwrap().1
    };
    assert!(reason(&tree.join("fifo")).starts_with("not a regular file"));
    assert!(reason(&tree.join("sock")).starts_with("not a regular file"));
    assert!(reason(&tree.join("sub/growing.bin")).starts_with("changed while it was read"));
    assert!(reason(unreadable).starts_with("cannot be read"));
    // Each is named in a warning, and the rest is committed as one tree version.
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (path, _) in &skipped {
        assert!(
            stderr.contains(&format!("skipped {path}")),
            "{path}: {stderr}"
        );
    }
    assert_eq!(names(&env), ["t"]);
    assert_eq!(
        (
            &summary["files"],
            &summary["dirs"],
            &summary["symlinks"],
            &summary["entries"]
        ),
        (&2.into(), &2.into(), &3.into(), &7.into()),
        "{summary}"
    );
    let out = env.ldv().args(["ls", "t/"]).assert().success();
    let listed = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert_eq!(
        listed,
        format!(
            "t/tree/\n\
             t/tree/dangling -> {}\n\
             t/tree/keep.txt\n\
             t/tree/linked-dir -> {}\n\
             t/tree/sub/\n\
             t/tree/sub/deep.bin\n\
             t/tree/to-mem -> /proc/self/mem\n",
            tree.join("nowhere").display(),
            tree.join("sub").display()
        )
    );
    let back = env.path("back");
    env.ldv().args(["get", "t"]).arg(&back).assert().success();
    assert_file(&back.join("tree/keep.txt"), b"kept");
    assert_file(&back.join("tree/sub/deep.bin"), &random_bytes(9, 3000));
    for (link, target) in [
        ("dangling", tree.join("nowhere")),
        ("linked-dir", tree.join("sub")),
        ("to-mem", unreadable.to_path_buf()),
    ] {
        assert_eq!(
            std::fs::read_link(back.join("tree").join(link)).unwrap(),
            target,
            "{link}"
        );
    }
    for gone in ["tree/fifo", "tree/sock", "tree/sub/growing.bin", "mem"] {
        assert!(
            std::fs::symlink_metadata(back.join(gone)).is_err(),
            "{gone} was restored"
        );
    }
}

#[test]
fn sources_that_would_share_a_name_are_refused_before_anything_is_stored() {
    // Format 1 stores each file as a version of its own name, format 2 makes one tree of the
    // sources: either way two sources with one basename would collide.
    for format in FORMATS {
        let env = Env::with_vault_in(format);
        let a = env.write("d1/same", b"one");
        let b = env.write("d2/same", b"two");
        env.write("x/dir/f", b"three");
        env.write("y/dir/f", b"four");
        // Format 1 collides on the files, format 2 on the directories.
        let dir_collides = if format == 1 { "pre/dir/f" } else { "pre/dir" };
        // Every file of the vault (an empty directory a put may leave, such as `locks/`, is
        // not something stored).
        let files = || {
            let mut snapshot = env.vault_snapshot();
            snapshot.retain(|_, hash| hash != "dir");
            snapshot
        };
        let before = files();
        for (sources, collides) in [
            ([a, b], "pre/same"),
            ([env.path("x/dir"), env.path("y/dir")], dir_collides),
        ] {
            let out = env
                .ldv()
                .arg("put")
                .args(&sources)
                .arg("pre/")
                .assert()
                .code(2);
            let line = error_line(out.get_output());
            assert!(line.contains(collides), "format {format}: {line}");
        }
        assert!(names(&env).is_empty(), "format {format}");
        assert_eq!(files(), before, "format {format}");
    }
}

#[test]
fn names_that_would_read_back_as_versions_are_refused() {
    let env = Env::with_vault();
    let src = env.write("f", b"data");
    for name in [
        "q@20261127T081108971Z-c0d69473",
        "q@20261127T081108971Z-zzzzzzzz",
    ] {
        let out = env.ldv().arg("put").arg(&src).arg(name).assert().code(2);
        let line = error_line(out.get_output());
        assert!(line.contains(name), "{line}");
    }
    // An '@' that is not followed by a version is part of the name, and reads back.
    env.ldv()
        .arg("put")
        .arg(&src)
        .arg("mail/user@example.org")
        .assert()
        .success();
    env.ldv()
        .args(["cat", "mail/user@example.org"])
        .assert()
        .success()
        .stdout("data");
    assert_eq!(names(&env), ["mail/user@example.org"]);
}

#[test]
fn get_refuses_to_replace_what_is_not_a_regular_file() {
    let env = Env::with_vault();
    let src = env.write("f", b"content");
    env.ldv().arg("put").arg(&src).arg("obj").assert().success();

    let fifo = env.path("fifo");
    mkfifo(&fifo);
    let out = env.ldv().arg("get").arg("obj").arg(&fifo).assert().code(2);
    let line = error_line(out.get_output());
    assert!(line.contains("not a regular file"), "{line}");
    assert!(is_fifo(&fifo), "the FIFO was replaced");

    let out = env.ldv().args(["get", "obj", ""]).assert().code(2);
    assert!(error_line(out.get_output()).contains("empty"));

    // A symlink to a file is written through, and stays a symlink.
    let target = env.write("real.bin", b"old");
    let link = env.path("link.bin");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    env.ldv()
        .arg("get")
        .arg("obj")
        .arg(&link)
        .assert()
        .success();
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_file(&target, b"content");
}

#[test]
fn a_failed_tree_get_leaves_nothing_behind_and_names_the_file() {
    for format in FORMATS {
        a_failed_tree_get_leaves_nothing_behind(format);
    }
}

fn a_failed_tree_get_leaves_nothing_behind(format: u8) {
    let env = Env::with_vault_in(format);
    let tree = env.path("tree");
    env.write("tree/a/one.bin", &random_bytes(5, 1000));
    env.write("tree/a/b/two.bin", &random_bytes(6, 2000));
    env.write("tree/c/big.bin", &random_bytes(7, 2 * MIB));
    env.write("tree/z.bin", &random_bytes(8, 500));
    env.ldv().arg("put").arg(&tree).arg("t").assert().success();
    // Damage the one chunk of a small file (the last byte of its frame, in its chunk object or
    // its pack); every other file reads back fine.
    let (_, _, id) = env.chunks_of(env.ldv(), "t/a/b/two.bin").remove(0);
    let frame = env.frame_of(&id);
    frame.flip(frame.len - 1);

    // Format 1 names the file's own version; format 2 the file inside the tree's version.
    let damaged = if format == 1 {
        "t/a/b/two.bin".to_owned()
    } else {
        let versions = env.versions(env.ldv(), None);
        assert_eq!(versions.len(), 1, "one tree version: {versions:?}");
        format!("t@{}/a/b/two.bin", versions[0].1)
    };

    let dest = env.path("restore");
    let out = env.ldv().arg("get").arg("t").arg(&dest).assert().code(4);
    let line = error_line(out.get_output());
    assert!(line.contains(&damaged), "format {format}: {line}");
    assert!(!dest.exists(), "a failed tree get left {dest:?}");

    // Into an existing directory: it stays as it was.
    std::fs::create_dir(&dest).unwrap();
    std::fs::write(dest.join("mine"), b"keep").unwrap();
    env.ldv().arg("get").arg("t").arg(&dest).assert().code(4);
    let left: Vec<_> = std::fs::read_dir(&dest)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        ["mine"],
        "a failed tree get left files or directories"
    );
}

#[test]
fn a_full_stdout_is_named_and_exits_7() {
    let env = Env::with_vault();
    let src = env.write("f", b"data");
    env.ldv().arg("put").arg(&src).arg("obj").assert().success();
    for args in [&["ls"][..], &["--json", "stat", "obj"], &["cat", "obj"]] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = env.std_ldv().args(args).stdout(full).output().unwrap();
        assert_eq!(out.status.code(), Some(7), "{args:?}");
        let line = error_line(&out);
        assert!(line.contains("stdout"), "{args:?}: {line}");
    }
}

/// Rewrites the `sha256` of `name`'s only version in its manifest file.
fn falsify_digest(env: &Env, name: &str) -> String {
    let (_, version) = env.versions(env.ldv(), Some(name)).remove(0);
    let path = env.vault_dir().join("manifests").join(name).join(&version);
    let mut m: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let digest = m["sha256"].as_str().unwrap().to_owned();
    let first = if digest.starts_with('0') { "1" } else { "0" };
    m["sha256"] = format!("{first}{}", &digest[1..]).into();
    write_over(&path, &serde_json::to_vec(&m).unwrap());
    format!("{name}@{version}")
}

#[test]
fn verify_read_data_checks_each_version_against_its_content_digest() {
    let env = Env::with_vault();
    let small = env.write("small.bin", &random_bytes(9, 3000));
    let large = env.write("large.bin", &random_bytes(10, 2 * MIB));
    let sound = env.write("sound.bin", &random_bytes(11, MIB));
    for (src, name) in [(&small, "small"), (&large, "large"), (&sound, "sound")] {
        env.ldv().arg("put").arg(src).arg(name).assert().success();
    }
    assert!(env.chunks_of(env.ldv(), "large").len() > 1);
    let small_label = falsify_digest(&env, "small");
    let large_label = falsify_digest(&env, "large");

    // get refuses both; verify without reads cannot see it; with reads it names both versions.
    for name in ["small", "large"] {
        env.ldv()
            .arg("get")
            .arg(name)
            .arg(env.path("out"))
            .assert()
            .code(4);
    }
    env.ldv().args(["verify"]).assert().success();
    let out = env
        .ldv()
        .args(["--json", "verify", "--read-data"])
        .assert()
        .code(4);
    let report = json_of(out.get_output());
    assert_eq!(
        report["problems_by_kind"],
        serde_json::json!({"wrong_content": 2}),
        "{report}"
    );
    let mut flagged: Vec<String> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["versions"][0].as_str().unwrap().to_owned())
        .collect();
    flagged.sort();
    let mut want = vec![large_label, small_label];
    want.sort();
    assert_eq!(flagged, want);
    assert_eq!(report["versions_hashed"], 3, "{report}");
    assert_eq!(report["could_not_check"], serde_json::json!([]), "{report}");
    // Every chunk was read once, none twice.
    assert_eq!(
        report["chunks_read"], report["chunks_referenced"],
        "{report}"
    );

    let text = env.ldv().args(["verify", "--read-data"]).assert().code(4);
    let stdout = String::from_utf8_lossy(&text.get_output().stdout).into_owned();
    assert!(stdout.contains("DAMAGE wrong_content: large@"), "{stdout}");
}

#[test]
fn streaming_a_tree_says_it_is_a_tree() {
    for format in FORMATS {
        let env = Env::with_vault_in(format);
        env.write("tree/a", b"1");
        env.write("tree/b", b"2");
        if format == 2 {
            // A tree counts its files, not its directories or symlinks.
            std::fs::create_dir(env.path("tree/empty")).unwrap();
            std::os::unix::fs::symlink("a", env.path("tree/link")).unwrap();
        }
        env.ldv()
            .arg("put")
            .arg(env.path("tree"))
            .arg("t")
            .assert()
            .success();
        // Format 1: a name with per-file versions below it; format 2: one tree version, named.
        let said = if format == 1 {
            "t is a tree of 2 objects, not one object; `ldv get t DIR`".to_owned()
        } else {
            let (_, version) = env.versions(env.ldv(), Some("t")).remove(0);
            format!("t@{version} is a tree of 2 files, not one file; `ldv get t@{version} DIR`")
        };
        for args in [&["cat", "t"][..], &["get", "t", "-"]] {
            let out = env.ldv().args(args).assert().code(2);
            assert!(out.get_output().stdout.is_empty(), "{args:?}");
            let line = error_line(out.get_output());
            assert!(line.contains(&said), "format {format}: {args:?}: {line}");
        }
        env.ldv().args(["cat", "nothing"]).assert().code(3);
    }
}

#[test]
fn a_damaged_manifest_is_marked_in_a_long_listing_and_the_rest_still_shows() {
    let env = Env::with_vault();
    for name in ["a", "b", "c"] {
        let src = env.write(name, name.as_bytes());
        env.ldv().arg("put").arg(&src).arg(name).assert().success();
    }
    let (_, version) = env.versions(env.ldv(), Some("b")).remove(0);
    let manifest = env.vault_dir().join("manifests").join("b").join(&version);
    write_over(&manifest, b"{\"format\": 1, \"na");

    let out = env.ldv().args(["ls", "-l"]).assert().code(4);
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 3, "{text}");
    assert!(
        rows[1].contains("DAMAGED") && rows[1].ends_with(" b"),
        "{text}"
    );
    assert!(rows[0].ends_with(" a") && rows[2].ends_with(" c"), "{text}");
    let line = error_line(out.get_output());
    assert!(line.contains(&format!("b@{version}")), "{line}");

    let out = env.ldv().args(["--json", "ls", "-l"]).assert().code(4);
    let entries = json_of(out.get_output());
    let damaged: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e.get("damaged").is_some())
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(damaged, ["b"], "{entries}");
    assert_eq!(entries[0]["size"], 1, "{entries}");
    // A short listing reads no manifest, so it has nothing to report.
    env.ldv().arg("ls").assert().success();
}

#[test]
fn concurrent_key_changes_never_lose_a_key_they_reported_added() {
    let env = Env::bare();
    env.write_config(
        &env.profile_toml("encryption = { algorithm = \"aes-256-gcm\", key = { env = \"PW\" } }\n"),
    );
    let run = |pw: &str| {
        let mut cmd = env.std_ldv();
        cmd.env("PW", pw).args(["--lock-wait", "60s"]);
        cmd
    };
    assert!(run("old").arg("init").status().unwrap().success());
    let src = env.write("f", b"sealed");
    assert!(
        run("old")
            .arg("put")
            .arg(&src)
            .arg("x")
            .status()
            .unwrap()
            .success()
    );

    let new_keys = ["k1", "k2", "k3", "k4"];
    let children: Vec<_> = new_keys
        .iter()
        .map(|k| {
            run("old")
                .env("NEW", k)
                .args(["key", "add", "--from-env", "NEW"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (k, child) in new_keys.iter().zip(children) {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "key add {k}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every key reported added opens the vault, and so does the old one.
    for k in ["old"].iter().chain(&new_keys) {
        let out = run(k).args(["cat", "x"]).output().unwrap();
        assert!(
            out.status.success(),
            "key {k} lost: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, b"sealed");
    }
}

/// `ldv --vault URL ls` with no AWS credentials anywhere (and instance metadata off: it is not
/// on loopback), `vars` set.
fn remote_ls(env: &Env, url: &str, vars: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = env.std_command();
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "STORAGE_EMULATOR_HOST",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("AWS_EC2_METADATA_DISABLED", "true")
        .envs(vars.iter().copied())
        .args(["--vault", url, "ls"]);
    cmd.output().unwrap()
}

#[test]
fn missing_s3_credentials_are_denied_at_once_not_retried() {
    let env = Env::bare();
    let endpoint = format!("http://127.0.0.1:{}", crate::common::closed_port());
    let started = std::time::Instant::now();
    let out = remote_ls(
        &env,
        "s3://bucket/p",
        &[("AWS_ENDPOINT_URL", &endpoint), ("AWS_REGION", "us-east-1")],
    );
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = error_line(&out);
    assert!(line.contains("no usable AWS credentials"), "{line}");
    assert!(!line.contains("attempts"), "retried: {line}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn malformed_endpoints_are_configuration_errors() {
    let env = Env::bare();
    for (url, var, value) in [
        ("s3://bucket/p", "AWS_ENDPOINT_URL", "notaurl"),
        ("s3://bucket/p", "AWS_ENDPOINT_URL", "ftp://127.0.0.1:1"),
        (
            "s3://bucket/p",
            "AWS_ENDPOINT_URL",
            "http://127.0.0.1:1/some path",
        ),
        ("gs://bucket/p", "STORAGE_EMULATOR_HOST", "not a host"),
    ] {
        let out = remote_ls(&env, url, &[(var, value), ("AWS_REGION", "us-east-1")]);
        assert_eq!(out.status.code(), Some(2), "{var}={value}");
        let line = error_line(&out);
        assert!(line.contains("is not"), "{var}={value}: {line}");
    }
}
