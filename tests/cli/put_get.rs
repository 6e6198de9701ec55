//! Storing and reading back: files spanning many chunks, byte ranges, deduplication, directory
//! trees, stdin, several sources, and the embedded default vault.

use std::io::Read;
use std::process::Stdio;

use crate::common::{
    Env, assert_bytes, assert_file, json_of, lines_of, random_bytes, sha256_hex, tree_files,
};

const MIB: usize = 1 << 20;

#[test]
fn put_then_get_round_trips_a_multi_chunk_file() {
    let env = Env::with_vault();
    let data = random_bytes(1, 3 * MIB + 12_345);
    let src = env.write("src/data.bin", &data);

    let receipt = env.put_json(env.ldv(), &src, "datasets/data.bin");
    assert_eq!(receipt["name"], "datasets/data.bin");
    assert_eq!(receipt["size"], data.len() as u64);
    assert_eq!(receipt["sha256"], sha256_hex(&data));
    let chunks = receipt["chunks"].as_u64().unwrap();
    assert!(chunks >= 8, "expected many chunks, got {chunks}");
    assert_eq!(receipt["new_chunks"], chunks);
    assert!(receipt["bytes_uploaded"].as_u64().unwrap() >= data.len() as u64);

    // get to a named file.
    let out = env
        .ldv()
        .arg("get")
        .arg("datasets/data.bin")
        .arg(env.path("out.bin"))
        .assert()
        .success();
    assert_file(&env.path("out.bin"), &data);
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains(&sha256_hex(&data)));

    // get into an existing directory keeps the basename; no DEST means the working directory.
    std::fs::create_dir(env.path("into")).unwrap();
    env.ldv()
        .args(["get", "datasets/data.bin"])
        .arg(env.path("into"))
        .assert()
        .success();
    assert_file(&env.path("into/data.bin"), &data);
    env.ldv()
        .args(["get", "datasets/data.bin"])
        .assert()
        .success();
    assert_file(&env.path("data.bin"), &data);

    // get - and cat stream the exact bytes.
    let out = env
        .ldv()
        .args(["get", "datasets/data.bin", "-"])
        .assert()
        .success();
    assert_bytes(
        &out.get_output().stdout,
        &data,
        "get - differs from the source",
    );
    let out = env
        .ldv()
        .args(["cat", "datasets/data.bin"])
        .assert()
        .success();
    assert_bytes(
        &out.get_output().stdout,
        &data,
        "cat differs from the source",
    );

    // get --json reports the verified digest and where it wrote.
    let out = env
        .ldv()
        .args(["--json", "get", "datasets/data.bin"])
        .arg(env.path("json.bin"))
        .assert()
        .success();
    let r = json_of(out.get_output());
    assert_eq!(r["sha256"], sha256_hex(&data));
    assert_eq!(r["size"], data.len() as u64);
    assert_eq!(r["version"], receipt["version"]);
    assert_file(&env.path("json.bin"), &data);

    // No temp files were left beside the destinations.
    let leftovers: Vec<_> = std::fs::read_dir(env.path(""))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("ldv-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[test]
fn cat_ranges_are_exact_byte_slices() {
    let env = Env::with_vault();
    let data = random_bytes(2, 2 * MIB + 777);
    let src = env.write("r.bin", &data);
    env.ldv().arg("put").arg(&src).arg("r").assert().success();
    let chunks = env.chunks_of(env.ldv(), "r");
    assert!(chunks.len() >= 4, "expected several chunks");
    let boundary = chunks[2].0 as usize;
    let len = data.len();

    let cases: Vec<(String, &[u8])> = vec![
        ("10-19".into(), &data[10..=19]),
        ("-5".into(), &data[len - 5..]),
        ("0-0".into(), &data[..1]),
        ("100-".into(), &data[100..]),
        // Across a chunk boundary.
        (
            format!("{}-{}", boundary - 3, boundary + 2),
            &data[boundary - 3..=boundary + 2],
        ),
        // A whole middle chunk, exactly.
        (
            format!("{}-{}", chunks[1].0, chunks[1].0 + chunks[1].1 - 1),
            &data[chunks[1].0 as usize..(chunks[1].0 + chunks[1].1) as usize],
        ),
        // Past the end is clipped, like HTTP ranges.
        (format!("{}-{}", len - 4, len + 1000), &data[len - 4..]),
        (format!("{len}-"), &[]),
    ];
    for (spec, want) in cases {
        // `--range=SPEC` so that `-5` is not taken for a flag (see the test below).
        let out = env
            .ldv()
            .args(["cat", "r", &format!("--range={spec}")])
            .assert()
            .success();
        let got = &out.get_output().stdout;
        assert!(
            got == want,
            "range {spec}: got {} bytes, want {}",
            got.len(),
            want.len()
        );
    }

    for bad in ["5-2", "x-1", "-", "1-2-3"] {
        let out = env
            .ldv()
            .args(["cat", "r", &format!("--range={bad}")])
            .assert()
            .code(2);
        assert!(
            out.get_output().stdout.is_empty(),
            "range {bad}: output written"
        );
        crate::common::error_line(out.get_output());
    }
}

#[test]
fn cat_range_takes_a_suffix_range_as_a_separate_argument() {
    let env = Env::with_explicit_vault();
    let data = random_bytes(3, 1000);
    let src = env.write("s.bin", &data);
    env.ldv_vault()
        .arg("put")
        .arg(&src)
        .arg("s")
        .assert()
        .success();
    let out = env
        .ldv_vault()
        .args(["cat", "s", "--range", "-5"])
        .assert()
        .success();
    assert_eq!(out.get_output().stdout, &data[995..]);
    let out = env
        .ldv_vault()
        .args(["cat", "s", "--range", "10-19"])
        .assert()
        .success();
    assert_eq!(out.get_output().stdout, &data[10..=19]);
}

#[test]
fn re_putting_the_same_file_uploads_nothing() {
    let env = Env::with_vault();
    let data = random_bytes(4, 2 * MIB);
    let src = env.write("same.bin", &data);
    let first = env.put_json(env.ldv(), &src, "same");
    // Where chunks are: chunk objects (format 1), packs and index segments (format 2).
    let chunk_store =
        || ["chunks", "packs", "index"].map(|d| crate::common::snapshot(&env.vault_dir().join(d)));
    let chunks_before = chunk_store();
    assert!(
        !chunks_before[1].is_empty(),
        "a format-2 vault packs chunks"
    );

    let second = env.put_json(env.ldv(), &src, "same");
    assert_eq!(second["new_chunks"], 0, "{second}");
    assert_eq!(second["bytes_uploaded"], 0, "{second}");
    assert_eq!(second["existing_chunks"], first["chunks"]);
    assert_eq!(second["bytes_deduplicated"], data.len() as u64);
    assert_eq!(second["sha256"], first["sha256"]);
    assert_ne!(second["version"], first["version"]);
    assert_eq!(chunk_store(), chunks_before, "chunk store changed");
}

#[test]
fn an_insertion_at_the_front_uploads_only_nearby_chunks() {
    let env = Env::with_vault();
    let data = random_bytes(5, 3 * MIB);
    let src = env.write("v1.bin", &data);
    let first = env.put_json(env.ldv(), &src, "shifted");

    let mut shifted = vec![0x42u8];
    shifted.extend_from_slice(&data);
    let src2 = env.write("v2.bin", &shifted);
    let second = env.put_json(env.ldv(), &src2, "shifted");

    let uploaded = second["bytes_uploaded"].as_u64().unwrap();
    let new_chunks = second["new_chunks"].as_u64().unwrap();
    let chunks = second["chunks"].as_u64().unwrap();
    assert!(
        new_chunks >= 1,
        "the changed chunk must be uploaded: {second}"
    );
    assert!(
        uploaded < shifted.len() as u64 / 4,
        "a one-byte insertion uploaded {uploaded} of {} bytes",
        shifted.len()
    );
    assert!(
        new_chunks * 4 < chunks,
        "{new_chunks} of {chunks} chunks were new"
    );
    assert_eq!(second["sha256"], sha256_hex(&shifted));

    let v1 = first["version"].as_str().unwrap();
    let out = env
        .ldv()
        .args(["cat", &format!("shifted@{v1}")])
        .assert()
        .success();
    assert_bytes(&out.get_output().stdout, &data, "first version changed");
    let out = env.ldv().args(["cat", "shifted"]).assert().success();
    assert_bytes(&out.get_output().stdout, &shifted, "newest version differs");
}

#[test]
fn a_directory_tree_round_trips() {
    let env = Env::with_vault();
    let tree = env.path("tree");
    let mut expected_files = 0;
    for i in 0..200u64 {
        let rel = match i % 4 {
            0 => format!("f{i}.txt"),
            1 => format!("a/f{i}.txt"),
            2 => format!("a/b{}/f{i}.dat", i % 3),
            _ => format!("c/d/e{}/f{i}", i % 5),
        };
        let len = (i * 37 % 3000) as usize + 1;
        env.write(&format!("tree/{rel}"), &random_bytes(100 + i, len));
        expected_files += 1;
    }
    env.write("tree/big/multi.bin", &random_bytes(7, MIB + 4321));
    env.write("tree/a/empty", b"");
    env.write("tree/name with spaces & ünïcode.txt", b"hello\n");
    expected_files += 3;

    let out = env
        .ldv()
        .args(["--json", "put"])
        .arg(&tree)
        .arg("ds")
        .assert()
        .success();
    // One tree version holds it all: every file, and every directory (a, a/b0..b2, big, c,
    // c/d, c/d/e0..e4).
    let expected_dirs = 12;
    let summary = json_of(out.get_output());
    assert_eq!(summary["name"], "ds", "{summary}");
    assert_eq!(summary["files"], expected_files, "{summary}");
    assert_eq!(summary["dirs"], expected_dirs, "{summary}");
    assert_eq!(
        summary["entries"],
        expected_files + expected_dirs,
        "{summary}"
    );
    assert_eq!(summary["complete"], true, "{summary}");
    let want = tree_files(&tree);
    let size: usize = want.values().map(Vec::len).sum();
    assert_eq!(summary["size"], size as u64, "{summary}");
    let out = env.ldv().args(["ls", "--versions"]).assert().success();
    assert_eq!(
        lines_of(out.get_output()),
        [format!("ds@{}", summary["version"].as_str().unwrap())]
    );
    let out = env
        .ldv()
        .args(["--json", "stat", "ds/big/multi.bin"])
        .assert()
        .success();
    let multi = json_of(out.get_output());
    assert_eq!(multi["size"], (MIB + 4321) as u64, "{multi}");
    assert!(multi["chunks"].as_array().unwrap().len() > 4, "{multi}");

    let out = env.ldv().args(["ls", "ds/"]).assert().success();
    let listed = lines_of(out.get_output());
    assert_eq!(listed.len(), (expected_files + expected_dirs) as usize);
    for entry in ["ds/a/empty", "ds/c/d/e3/f3", "ds/c/d/e3/", "ds/big/"] {
        assert!(listed.contains(&entry.to_owned()), "{entry}: {listed:?}");
    }
    let files_listed = listed.iter().filter(|l| !l.ends_with('/')).count();
    assert_eq!(files_listed, expected_files as usize);

    let out = env
        .ldv()
        .args(["--json", "get", "ds"])
        .arg(env.path("restored"))
        .assert()
        .success();
    assert_eq!(json_of(out.get_output())["files"], expected_files);
    let got = tree_files(&env.path("restored"));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "different file lists"
    );
    for (rel, data) in &want {
        assert_bytes(&got[rel], data, rel);
    }
}

#[test]
fn stdin_is_stored_under_the_given_name() {
    let env = Env::with_vault();
    let data = random_bytes(8, 700_000);
    let out = env
        .ldv()
        .args(["--json", "put", "-", "from/stdin.bin"])
        .write_stdin(data.clone())
        .assert()
        .success();
    let r = json_of(out.get_output());
    assert_eq!(r["name"], "from/stdin.bin");
    assert_eq!(r["size"], data.len() as u64);
    assert_eq!(r["sha256"], sha256_hex(&data));
    let out = env.ldv().args(["cat", "from/stdin.bin"]).assert().success();
    assert_bytes(&out.get_output().stdout, &data, "stdin round trip");

    // Empty stdin is an empty object, not an error.
    env.ldv()
        .args(["put", "-", "empty"])
        .write_stdin(Vec::new())
        .assert()
        .success();
    let out = env.ldv().args(["cat", "empty"]).assert().success();
    assert!(out.get_output().stdout.is_empty());

    // Stdin needs exactly one name.
    let before = env.vault_snapshot();
    for args in [
        vec!["put", "-"],
        vec!["put", "-", "p/"],
        vec!["put", "-", "-", "x"],
    ] {
        let out = env.ldv().args(&args).write_stdin("x").assert().code(2);
        crate::common::error_line(out.get_output());
    }
    assert_eq!(env.vault_snapshot(), before);
}

#[test]
fn sources_are_named_like_cp() {
    let env = Env::with_vault();
    let a = env.write("a.txt", b"alpha\n");
    let b = env.write("sub/dir/b.bin", &random_bytes(9, 5000));
    env.write("d/x", b"x\n");
    env.write("d/y/z", b"z\n");
    let d = env.path("d");

    // Several sources make one tree named by the prefix, each source at the top by its
    // basename (directories with their contents), with or without the trailing '/'.
    for prefix in ["pre/", "several"] {
        env.ldv()
            .arg("put")
            .arg(&a)
            .arg(&b)
            .arg(&d)
            .arg(prefix)
            .assert()
            .success();
    }
    // One file: its basename, NAME, or NAME/ + basename, each a version of its own.
    env.ldv().arg("put").arg(&b).assert().success();
    env.ldv()
        .arg("put")
        .arg(&a)
        .arg("exact/name")
        .assert()
        .success();
    env.ldv().arg("put").arg(&a).arg("into/").assert().success();
    // One directory: a tree of its basename, of NAME/ + basename, or of NAME, whose root holds
    // the directory's contents.
    env.ldv().arg("put").arg(&d).assert().success();
    env.ldv()
        .arg("put")
        .arg(&d)
        .arg("under/")
        .assert()
        .success();
    env.ldv().arg("put").arg(&d).arg("named").assert().success();

    let out = env.ldv().arg("ls").assert().success();
    assert_eq!(
        lines_of(out.get_output()),
        [
            "b.bin",
            "d",
            "exact/name",
            "into/a.txt",
            "named",
            "pre",
            "several",
            "under/d"
        ]
    );
    // Every name has one version: a tree is one version, not one per file.
    assert_eq!(env.versions(env.ldv(), None).len(), 8);
    for tree in ["pre", "several"] {
        let out = env
            .ldv()
            .args(["ls", &format!("{tree}/")])
            .assert()
            .success();
        assert_eq!(
            lines_of(out.get_output()),
            ["a.txt", "b.bin", "d/", "d/x", "d/y/", "d/y/z"].map(|p| format!("{tree}/{p}"))
        );
    }
    for tree in ["d", "under/d", "named"] {
        let out = env
            .ldv()
            .args(["ls", &format!("{tree}/")])
            .assert()
            .success();
        assert_eq!(
            lines_of(out.get_output()),
            ["x", "y/", "y/z"].map(|p| format!("{tree}/{p}"))
        );
    }
    for (name, want) in [
        ("pre/a.txt", &b"alpha\n"[..]),
        ("pre/d/y/z", b"z\n"),
        ("several/d/x", b"x\n"),
        ("exact/name", b"alpha\n"),
        ("into/a.txt", b"alpha\n"),
        ("d/y/z", b"z\n"),
        ("under/d/x", b"x\n"),
        ("named/y/z", b"z\n"),
    ] {
        let out = env.ldv().args(["cat", name]).assert().success();
        assert_eq!(out.get_output().stdout, want, "{name}");
    }
    for name in ["pre/b.bin", "b.bin"] {
        let out = env.ldv().args(["cat", name]).assert().success();
        assert_bytes(&out.get_output().stdout, &random_bytes(9, 5000), name);
    }
}

#[test]
fn embedded_default_vault_needs_no_config() {
    let env = Env::bare();
    let data = random_bytes(10, 100_000);
    let src = env.write("file.bin", &data);

    env.bare_ldv()
        .arg("put")
        .arg(&src)
        .arg("first/object")
        .assert()
        .success();
    let out = env.bare_ldv().arg("ls").assert().success();
    assert_eq!(lines_of(out.get_output()), ["first/object"]);
    let out = env
        .bare_ldv()
        .args(["cat", "first/object"])
        .assert()
        .success();
    assert_bytes(&out.get_output().stdout, &data, "default vault round trip");

    let vault = env.xdg_data().join("ldv").join("vault");
    assert!(
        vault.join("ldv-vault.json").is_file(),
        "no vault at {}",
        vault.display()
    );
    assert!(
        vault
            .join("manifests")
            .join("first")
            .join("object")
            .is_dir()
    );
    // Using the default vault writes no config file, and nothing outside the XDG dirs.
    assert!(crate::common::snapshot(&env.xdg_config()).is_empty());
    assert!(crate::common::snapshot(&env.root().join("home")).is_empty());
}

#[test]
fn cat_into_a_closed_pipe_is_not_a_failure() {
    let env = Env::with_vault();
    let src = env.write("big.bin", &random_bytes(11, 2 * MIB));
    env.ldv().arg("put").arg(&src).arg("big").assert().success();
    for args in [&["cat", "big"][..], &["get", "big", "-"]] {
        let mut child = env
            .std_ldv()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read a little, like `head -c 10`, then close the pipe.
        let mut head = [0u8; 10];
        child.stdout.take().unwrap().read_exact(&mut head).unwrap();
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
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}
