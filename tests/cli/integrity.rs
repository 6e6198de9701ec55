//! Damage on storage is detected (exit 4) and never reaches a destination file; an interrupted
//! or killed put leaves no version behind and can simply be run again.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::common::{
    Env, FORMATS, assert_bytes, assert_file, error_line, json_of, random_bytes, sha256_hex,
    write_over,
};

/// Length of the chunk frame header (magic, format, compression, cipher).
const HEADER_LEN: usize = 7;

/// Asserts that `get NAME DEST` and `get NAME -` fail with exit 4 leaving `dest_dir` empty, and
/// that `cat NAME` fails with exit 4 having written at most a prefix of `data` that ends at or
/// before `bad_offset` (the content offset of the first damaged chunk). Returns the error line.
fn assert_fails_closed(
    env: &Env,
    name: &str,
    data: &[u8],
    bad_offset: u64,
    dest_dir: &Path,
) -> String {
    let out = env
        .ldv()
        .arg("get")
        .arg(name)
        .arg(dest_dir.join("out.bin"))
        .assert()
        .code(4);
    let line = error_line(out.get_output());
    let left: Vec<_> = std::fs::read_dir(dest_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "get left files behind: {left:?}");

    let out = env.ldv().args(["get", name, "-"]).assert().code(4);
    error_line(out.get_output());

    let out = env.ldv().args(["cat", name]).assert().code(4);
    error_line(out.get_output());
    let written = &out.get_output().stdout;
    assert!(
        written.len() as u64 <= bad_offset,
        "cat wrote {} bytes, past the damaged chunk at {bad_offset}",
        written.len()
    );
    assert!(
        data.starts_with(written),
        "cat wrote bytes that are not the content"
    );

    let out = env
        .ldv()
        .args(["--json", "get", name])
        .arg(dest_dir.join("out.bin"))
        .assert()
        .code(4);
    let err = json_of(out.get_output());
    assert_eq!(err["error"]["kind"], "integrity_check_failed");
    assert_eq!(err["error"]["exit_code"], 4);
    line
}

/// Puts a multi-chunk file and returns `(data, chunks)`.
fn put_multi_chunk(env: &Env, name: &str, seed: u64) -> (Vec<u8>, Vec<(u64, u64, String)>) {
    let data = random_bytes(seed, 1_500_000);
    let src = env.write(&format!("{name}.src"), &data);
    env.ldv().arg("put").arg(&src).arg(name).assert().success();
    let chunks = env.chunks_of(env.ldv(), name);
    assert!(
        chunks.len() >= 5,
        "expected several chunks, got {}",
        chunks.len()
    );
    (data, chunks)
}

fn get_succeeds(env: &Env, name: &str, data: &[u8]) {
    let out = env.ldv().args(["cat", name]).assert().success();
    assert_bytes(
        &out.get_output().stdout,
        data,
        &format!("{name} does not read back identical"),
    );
}

#[test]
fn a_flipped_payload_byte_fails_get_and_cat() {
    for format in FORMATS {
        let env = Env::with_vault_in(format);
        let (data, chunks) = put_multi_chunk(&env, "payload", 60);
        let dest = env.path("dest");
        std::fs::create_dir(&dest).unwrap();

        // The chunk's frame: its chunk object in format 1, its range of a pack in format 2.
        let (offset, size, id) = chunks[chunks.len() / 2].clone();
        let frame = env.frame_of(&id);
        let original = frame.read();
        assert_eq!(
            original.len(),
            HEADER_LEN + size as usize,
            "format {format}: a frame is header + payload"
        );
        frame.flip(HEADER_LEN + size as usize / 2);
        let line = assert_fails_closed(&env, "payload", &data, offset, &dest);
        assert!(line.contains(&id), "the error names the chunk: {line}");

        // The last payload byte, too.
        frame.write(&original);
        frame.flip(original.len() - 1);
        assert_fails_closed(&env, "payload", &data, offset, &dest);

        // Repaired, it reads again: the failures above were the damage.
        frame.write(&original);
        get_succeeds(&env, "payload", &data);
    }
}

#[test]
fn a_damaged_frame_header_fails_get_and_cat() {
    for format in FORMATS {
        let env = Env::with_vault_in(format);
        let (data, chunks) = put_multi_chunk(&env, "header", 61);
        let small = random_bytes(62, 1000);
        let small_src = env.write("small.bin", &small);
        env.ldv()
            .arg("put")
            .arg(&small_src)
            .arg("small")
            .assert()
            .success();
        let small_chunks = env.chunks_of(env.ldv(), "small");
        assert_eq!(small_chunks.len(), 1);
        let dest = env.path("dest");
        std::fs::create_dir(&dest).unwrap();

        let (offset, _, id) = chunks[1].clone();
        let targets = [
            ("header", &data, offset, id),
            ("small", &small, 0, small_chunks[0].2.clone()),
        ];
        for (name, content, offset, id) in targets {
            let frame = env.frame_of(&id);
            let original = frame.read();
            for at in 0..HEADER_LEN {
                frame.flip(at);
                let line = assert_fails_closed(&env, name, content, offset, &dest);
                assert!(
                    line.contains(&id),
                    "format {format}, header byte {at}: {line}"
                );
                frame.write(&original);
            }
            get_succeeds(&env, name, content);
        }
    }
}

/// Format 1: a chunk object cut short, gone, or one byte longer.
#[test]
fn a_truncated_or_missing_chunk_fails_closed() {
    let env = Env::with_vault_format1();
    let (data, chunks) = put_multi_chunk(&env, "cut", 63);
    let dest = env.path("dest");
    std::fs::create_dir(&dest).unwrap();
    let (offset, _, id) = chunks[3].clone();
    let file = env.chunk_file(&id);
    let original = std::fs::read(&file).unwrap();

    for len in [original.len() / 2, HEADER_LEN, 3, 0] {
        write_over(&file, &original[..len]);
        assert_fails_closed(&env, "cut", &data, offset, &dest);
    }
    std::fs::remove_file(&file).unwrap();
    let line = assert_fails_closed(&env, "cut", &data, offset, &dest);
    assert!(line.contains(&id), "{line}");
    // An extra byte is damage too.
    let mut longer = original.clone();
    longer.push(0);
    std::fs::write(&file, &longer).unwrap();
    assert_fails_closed(&env, "cut", &data, offset, &dest);

    write_over(&file, &original);
    get_succeeds(&env, "cut", &data);
}

/// Format 2: the pack holding a file's chunks cut short inside a frame, at a frame's start, or
/// gone. (Bytes after the pack's tail are no chunk's: readers read frames by range.)
#[test]
fn a_truncated_or_missing_pack_fails_closed() {
    let env = Env::with_vault_in(2);
    let (data, chunks) = put_multi_chunk(&env, "cut", 63);
    let dest = env.path("dest");
    std::fs::create_dir(&dest).unwrap();
    let frames = env.frames();
    let packs = env.packs();
    assert_eq!(packs.len(), 1, "one put of 1.5 MB fills one pack");
    let pack = &packs[0];
    let original = std::fs::read(pack).unwrap();
    // The content offset of the first chunk whose frame a cut at `len` damages.
    let first_damaged = |len: usize| -> (u64, String) {
        chunks
            .iter()
            .filter(|(_, _, id)| frames[id].end() > len)
            .map(|(offset, _, id)| (*offset, id.clone()))
            .min()
            .expect("the cut damages a chunk")
    };

    let frame = &frames[&chunks[3].2];
    for len in [
        frame.offset + frame.len / 2,
        frame.offset + HEADER_LEN,
        frame.offset + 3,
        frame.offset,
        0,
    ] {
        write_over(pack, &original[..len]);
        let (bad_offset, _) = first_damaged(len);
        assert_fails_closed(&env, "cut", &data, bad_offset, &dest);
    }
    std::fs::remove_file(pack).unwrap();
    let line = assert_fails_closed(&env, "cut", &data, 0, &dest);
    let pack_name = pack.file_name().unwrap().to_string_lossy().into_owned();
    assert!(
        line.contains(&pack_name) && line.contains("missing"),
        "{line}"
    );

    std::fs::write(pack, &original).unwrap();
    get_succeeds(&env, "cut", &data);
}

#[test]
fn a_tampered_manifest_fails_closed() {
    let env = Env::with_vault();
    let (data, _) = put_multi_chunk(&env, "m", 64);
    let versions = env.versions(env.ldv(), Some("m"));
    let manifest = env
        .vault_dir()
        .join("manifests")
        .join("m")
        .join(&versions[0].1);
    let original = std::fs::read(&manifest).unwrap();
    let dest = env.path("dest");
    std::fs::create_dir(&dest).unwrap();

    // A different whole-content digest: every chunk checks out, the whole does not.
    let mut doc: serde_json::Value = serde_json::from_slice(&original).unwrap();
    doc["sha256"] = sha256_hex(b"something else").into();
    write_over(&manifest, &serde_json::to_vec(&doc).unwrap());
    let out = env
        .ldv()
        .arg("get")
        .arg("m")
        .arg(dest.join("out.bin"))
        .assert()
        .code(4);
    error_line(out.get_output());
    assert_eq!(
        std::fs::read_dir(&dest).unwrap().count(),
        0,
        "get left a file"
    );
    env.ldv().args(["cat", "m"]).assert().code(4);

    // A truncated manifest.
    write_over(&manifest, &original[..original.len() / 2]);
    let out = env
        .ldv()
        .arg("get")
        .arg("m")
        .arg(dest.join("out.bin"))
        .assert()
        .code(4);
    error_line(out.get_output());
    assert_eq!(
        std::fs::read_dir(&dest).unwrap().count(),
        0,
        "get left a file"
    );

    write_over(&manifest, &original);
    get_succeeds(&env, "m", &data);
}

/// The versions of `name` after a put that may or may not have finished.
fn versions_of(env: &Env, name: &str) -> Vec<String> {
    env.versions(env.ldv(), Some(name))
        .into_iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v)
        .collect()
}

#[test]
fn a_killed_put_leaves_no_version_and_can_be_redone() {
    let env = Env::with_vault();
    let mut rng = rand::rng();
    let mut interrupted = 0;
    for round in 0..3u64 {
        let name = format!("killed/{round}");
        let data = random_bytes(70 + round, 64 << 20);
        let src = env.write(&format!("big{round}.bin"), &data);

        let mut child = env
            .std_ldv()
            .arg("put")
            .arg(&src)
            .arg(&name)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = Duration::from_millis(rng.random_range(10..250) + 100 * round);
        let started = Instant::now();
        while started.elapsed() < delay && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(2));
        }
        // Killing a process that already exited is harmless: `wait` then reports its own exit.
        child.kill().unwrap();
        let status = child.wait().unwrap();

        let after_kill = versions_of(&env, &name);
        if status.success() {
            assert_eq!(
                after_kill.len(),
                1,
                "round {round}: a finished put left no version"
            );
        } else {
            assert_eq!(
                status.signal(),
                Some(9),
                "round {round}: the put failed on its own: {status}"
            );
            interrupted += 1;
            // A kill racing the commit may leave the version; never more than one.
            assert!(after_kill.len() <= 1, "round {round}: {after_kill:?}");
        }
        if let Some(v) = after_kill.first() {
            get_succeeds(&env, &format!("{name}@{v}"), &data);
        }

        // Running the put again works and reads back identical.
        let receipt = env.put_json(env.ldv(), &src, &name);
        assert_eq!(receipt["sha256"], sha256_hex(&data));
        assert_eq!(versions_of(&env, &name).len(), after_kill.len() + 1);
        let out = env
            .ldv()
            .args(["get", &name])
            .arg(env.path("back.bin"))
            .assert()
            .success();
        assert_no_stderr(out.get_output());
        assert_file(&env.path("back.bin"), &data);
        std::fs::remove_file(&src).unwrap();
    }
    eprintln!("note: {interrupted} of 3 puts were killed before they finished");
    // Whatever the kills left behind, listing and reading the vault still work.
    env.ldv()
        .args(["ls", "-l", "--versions"])
        .assert()
        .success();
}

fn assert_no_stderr(out: &std::process::Output) {
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_interrupted_or_terminated_put_leaves_no_version_and_no_lock() {
    for format in FORMATS {
        for (signal, code) in [("INT", 130), ("TERM", 143)] {
            interrupted_put(format, signal, code);
        }
    }
}

/// Whether the put has stored a chunk object (format 1) or a pack (format 2), or is writing one.
fn storing_started(env: &Env) -> bool {
    ["chunks", "packs"].iter().any(|dir| {
        std::fs::read_dir(env.vault_dir().join(dir)).is_ok_and(|mut d| d.next().is_some())
    })
}

fn interrupted_put(format: u8, signal: &str, code: i32) {
    let kill = ["/bin/kill", "/usr/bin/kill"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(kill) = kill else {
        eprintln!("note: no kill(1) found; skipping the SIGINT test");
        return;
    };
    let env = Env::with_vault_in(format);
    let data = random_bytes(80, 64 << 20);
    let src = env.write("big.bin", &data);
    let child = env
        .std_ldv()
        .arg("put")
        .arg(&src)
        .arg("interrupted")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Signal only once chunks are being written: by then ldv is inside its runtime and handles
    // SIGINT itself (before that, the default action would kill it, which proves nothing).
    let started = Instant::now();
    while !storing_started(&env) && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(
        storing_started(&env),
        "format {format}: the put stored nothing in 20 s"
    );
    let sent = std::process::Command::new(kill)
        .args(["-s", signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(c) if c == code => {
            assert!(
                stderr.contains(&format!("ldv: error: interrupted by SIG{signal}")),
                "{stderr}"
            );
            assert!(
                versions_of(&env, "interrupted").is_empty(),
                "an interrupted put left a version"
            );
            // Nor its lock, which would hold gc off until it went stale.
            let locks: Vec<_> = std::fs::read_dir(env.vault_dir().join("locks"))
                .map(|d| d.map(|e| e.unwrap().file_name()).collect())
                .unwrap_or_default();
            assert!(locks.is_empty(), "an interrupted put left locks: {locks:?}");
        }
        // The put won the race.
        Some(0) => get_succeeds(&env, "interrupted", &data),
        other => panic!("format {format}: put after SIG{signal} exited {other:?}: {stderr}"),
    }
    let r = env.put_json(env.ldv(), &src, "interrupted");
    assert_eq!(r["sha256"], sha256_hex(&data));
    get_succeeds(&env, "interrupted", &data);
}
