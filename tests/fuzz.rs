//! Every fuzz target (src/fuzz.rs) in the default test run, with no fuzzer installed: each test
//! replays the target's committed corpus (`fuzz/corpus/<target>/`) and its seeds, then mutates
//! them (bit flips, interesting bytes, truncations, insertions, deletions, splices, number
//! swaps; a seeded RNG) for `LDV_FUZZ_SECONDS` seconds (default 2) and fails on the first
//! panic, printing the input and writing it to `target/fuzz-failures/`.
//!
//! The coverage-guided fuzzer is `scripts/fuzz` (cargo-fuzz); this is its quick stand-in, so
//! that a regression in any parser shows up in CI. `LDV_FUZZ_SEED` repeats a run's mutations;
//! with `LDV_FUZZ_WRITE_SEEDS=DIR`, the ignored test `write_seeds` writes every target's seeds
//! under `DIR/<target>/` (how the corpus was seeded).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    let mut inputs: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(f).unwrap_or_else(|e| panic!("read {}: {e}", f.display())))
        .collect();
    inputs.extend(ldv::fuzz::seeds(name));
    inputs
}

/// Byte strings a parser of ldv's formats treats specially.
const TOKENS: &[&[u8]] = &[
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"=",
    b"\n",
    b"/",
    b"..",
    b"@",
    b"-",
    b".",
    b"\\u0000",
    b"null",
    b"true",
    b"0",
    b"-1",
    b"4294967296",
    b"18446744073709551615",
    b"99999999999999999999999",
    b"1e999",
    b"1GiB",
    b"9999-12-31T23:59:60.999Z",
    b"LDVC",
    b"\x01\x02\x00",
    b"20261127T081108971Z-c0d69473",
    b"file://",
    b"s3://",
    b"az://",
    b"gs://",
    b".ldv-tmp.",
    b"\xff\xff\xff\x7f",
    b"\x00\x00\x00\x40",
];

const INTERESTING: &[u8] = &[0, 1, 0x7f, 0x80, 0xff, b'0', b'9', b'a', b' '];

fn mutate(rng: &mut StdRng, input: &mut Vec<u8>, others: &[Vec<u8>]) {
    for _ in 0..rng.random_range(1..=4) {
        let len = input.len();
        match rng.random_range(0..10) {
            0 if len > 0 => {
                let at = rng.random_range(0..len);
                input[at] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let at = rng.random_range(0..len);
                input[at] = INTERESTING[rng.random_range(0..INTERESTING.len())];
            }
            2 if len > 0 => input.truncate(rng.random_range(0..len)),
            3 => {
                let at = rng.random_range(0..=len);
                let n = rng.random_range(1..=16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                input.splice(at..at, bytes);
            }
            4 if len > 0 => {
                let at = rng.random_range(0..len);
                let end = (at + rng.random_range(1..=32)).min(len);
                input.drain(at..end);
            }
            5 if !others.is_empty() => {
                let other = &others[rng.random_range(0..others.len())];
                let at = rng.random_range(0..=len);
                let from = rng.random_range(0..=other.len());
                let to = rng.random_range(from..=other.len());
                input.truncate(at);
                input.extend_from_slice(&other[from..to]);
            }
            6 | 7 => {
                let at = rng.random_range(0..=len);
                let token = TOKENS[rng.random_range(0..TOKENS.len())];
                if rng.random_bool(0.5) || len == 0 {
                    input.splice(at..at, token.iter().copied());
                } else {
                    let end = (at + token.len()).min(len);
                    input.splice(at..end, token.iter().copied());
                }
            }
            8 => {
                // Replace a run of digits with another number: sizes, offsets, counts.
                let starts: Vec<usize> = (0..len)
                    .filter(|&i| {
                        input[i].is_ascii_digit() && (i == 0 || !input[i - 1].is_ascii_digit())
                    })
                    .collect();
                if let Some(&at) = starts.get(rng.random_range(0..starts.len().max(1))) {
                    let end = (at..len)
                        .find(|&i| !input[i].is_ascii_digit())
                        .unwrap_or(len);
                    let n: u64 = match rng.random_range(0..4) {
                        0 => rng.random_range(0..10),
                        1 => rng.random::<u32>().into(),
                        2 => u64::MAX - rng.random_range(0..2),
                        _ => 1 << rng.random_range(0..64),
                    };
                    input.splice(at..end, n.to_string().into_bytes());
                }
            }
            _ if len > 1 => {
                // Duplicate a range in place (repeated fields, chunks, segments).
                let from = rng.random_range(0..len);
                let to = (from + rng.random_range(1..=64)).min(len);
                let copy = input[from..to].to_vec();
                let at = rng.random_range(0..=len);
                input.splice(at..at, copy);
            }
            _ => input.push(rng.random()),
        }
    }
    input.truncate(1 << 16);
}

fn fail(name: &str, input: &[u8], how: &str) -> ! {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
    let file = dir.join(format!("{name}-{:016x}", fxhash(input)));
    let saved = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&file, input))
        .map(|()| file.display().to_string())
        .unwrap_or_else(|e| format!("(not saved: {e})"));
    panic!(
        "fuzz target {name} panicked on {how} ({} bytes, saved to {saved}; reproduce with `cargo fuzz run {name} {saved}` or ldv::fuzz::{name}):\n{}",
        input.len(),
        hex_dump(input)
    );
}

fn fxhash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn hex_dump(data: &[u8]) -> String {
    let shown = &data[..data.len().min(512)];
    let hex: String = shown.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}{}", if data.len() > shown.len() { "…" } else { "" })
}

fn run(name: &str) {
    let target = ldv::fuzz::target(name).expect("a target of src/fuzz.rs");
    let inputs = corpus(name);
    assert!(!inputs.is_empty(), "{name}: no corpus and no seeds");
    for input in &inputs {
        if catch_unwind(AssertUnwindSafe(|| target(input))).is_err() {
            fail(name, input, "a corpus input");
        }
    }
    let seconds: f64 = std::env::var("LDV_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let seed: u64 = std::env::var("LDV_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed ^ fxhash(name.as_bytes()));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut runs = 0u64;
    while Instant::now() < deadline {
        for _ in 0..32 {
            let mut input = inputs[rng.random_range(0..inputs.len())].clone();
            mutate(&mut rng, &mut input, &inputs);
            if catch_unwind(AssertUnwindSafe(|| target(&input))).is_err() {
                fail(
                    name,
                    &input,
                    &format!("a mutated input (LDV_FUZZ_SEED={seed})"),
                );
            }
            runs += 1;
        }
    }
    eprintln!(
        "{name}: {} corpus inputs, {runs} mutated inputs",
        inputs.len()
    );
}

macro_rules! targets {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run(stringify!($name));
            }
        )*

        /// The list above names every target of src/fuzz.rs.
        #[test]
        fn every_target_is_run() {
            let here = [$(stringify!($name)),*];
            let all: Vec<&str> = ldv::fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
            assert_eq!(here.to_vec(), all);
        }
    };
}

targets!(
    frame,
    frame_zstd,
    frame_lz4,
    frame_gzip,
    frame_sealed,
    frame_round_trip,
    manifest,
    manifest_sealed,
    tree_listing,
    pack,
    index_segment,
    gc_mark,
    descriptor,
    lock,
    profile,
    name,
    range,
    vault_url,
    backend_key,
);

/// Writes every target's seeds under `$LDV_FUZZ_WRITE_SEEDS/<target>/` (`scripts/fuzz --seed`).
#[test]
#[ignore = "writes files; run by scripts/fuzz --seed"]
fn write_seeds() {
    let dir = PathBuf::from(std::env::var("LDV_FUZZ_WRITE_SEEDS").expect("LDV_FUZZ_WRITE_SEEDS"));
    for (name, _) in ldv::fuzz::TARGETS {
        let out = dir.join(name);
        std::fs::create_dir_all(&out).expect("create the seed directory");
        for seed in ldv::fuzz::seeds(name) {
            std::fs::write(out.join(format!("seed-{:016x}", fxhash(&seed))), &seed)
                .expect("write a seed");
        }
    }
}
