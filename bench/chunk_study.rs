//! CDC parameter study: for several FastCDC averages (and fixed 4 MiB as a reference) over a
//! 512 MiB pseudo-random buffer, how many chunks a put produces, how fast one thread chunks and
//! hashes, and how much of the file must be stored anew after small edits. Prints Markdown.
//!
//! `cargo bench --bench chunk_study` runs the study in release; under `cargo test` (no `--bench`
//! argument) it runs a 16 MiB smoke version so the suite stays fast.

#[path = "common.rs"]
mod common;

use std::collections::HashSet;
use std::time::Instant;

use ldv::store::chunker::{Chunker, ChunkerConfig};
use ldv::store::codec;
use ldv::store::layout::ChunkId;

use common::{XorShift, cdc, random_bytes, size_label};

/// Input size of the study.
const STUDY_LEN: usize = 512 << 20;
/// Input size under `cargo test`.
const SMOKE_LEN: usize = 16 << 20;
/// CDC averages studied; `min`/`max` follow from [`common::cdc`].
const AVERAGES: [u32; 4] = [256 << 10, 1 << 20, 2 << 20, 4 << 20];
/// Timed passes per configuration (interleaved across configurations); the median is reported.
const ROUNDS: usize = 3;
/// In-place edits of scenario (b).
const EDITS: usize = 10;
/// Length of each in-place edit.
const EDIT_LEN: usize = 4096;
/// Where scenario (b) inserts its byte.
const INSERT_AT: usize = 4096;

/// One chunked and hashed version: (id, size) of every chunk, in order.
struct Pass {
    chunks: Vec<(ChunkId, u64)>,
    secs: f64,
}

/// Chunks and hashes `data` on this thread as put does (frame header copied in front of each
/// chunk, SHA-256 of each chunk's bytes).
fn chunk_and_hash(config: ChunkerConfig, data: &[u8]) -> Pass {
    let started = Instant::now();
    let chunks = Chunker::new(config, data)
        .with_prefix(&codec::PLAIN_HEADER)
        .map(|cut| {
            let cut = cut.expect("reading memory cannot fail");
            let id = ChunkId::of(&cut.buf[cut.prefix_len..]);
            (id, cut.len() as u64)
        })
        .collect();
    Pass {
        chunks,
        secs: started.elapsed().as_secs_f64(),
    }
}

/// Bytes a put of `version` would upload into a vault holding `base`: chunks not already there,
/// each counted once.
fn new_bytes(base: &[(ChunkId, u64)], version: &[(ChunkId, u64)]) -> u64 {
    let mut stored: HashSet<ChunkId> = base.iter().map(|(id, _)| *id).collect();
    version
        .iter()
        .filter(|(id, _)| stored.insert(*id))
        .map(|(_, size)| size)
        .sum()
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn label(config: ChunkerConfig) -> String {
    match config {
        ChunkerConfig::Cdc { min, avg, max } => format!(
            "cdc {} / {} / {}",
            size_label(min.into()),
            size_label(avg.into()),
            size_label(max.into())
        ),
        ChunkerConfig::Fixed { size, .. } => format!("fixed {}", size_label(size)),
    }
}

fn main() {
    let study = std::env::args().any(|a| a == "--bench");
    let len = if study { STUDY_LEN } else { SMOKE_LEN };
    let rounds = if study { ROUNDS } else { 1 };

    let v1 = random_bytes(len, 42);
    // (a) one byte inserted at the front.
    let mut front = Vec::with_capacity(len + 1);
    front.push(0x5A);
    front.extend_from_slice(&v1);
    // (b) ten in-place 4 KiB edits at random offsets, then one byte inserted near the start.
    let mut edited = v1.clone();
    let mut rng = XorShift::new(7);
    for _ in 0..EDITS {
        let at = rng.below(len - EDIT_LEN);
        edited[at..at + EDIT_LEN].copy_from_slice(&random_bytes(EDIT_LEN, rng.next_u64()));
    }
    edited.insert(INSERT_AT, 0xA5);

    let mut configs: Vec<ChunkerConfig> = AVERAGES.iter().map(|&avg| cdc(avg)).collect();
    configs.push(ChunkerConfig::Fixed {
        size: 4 << 20,
        min_chunk_threshold: 0,
    });

    // Timed passes over the first version, interleaved so that a noisy neighbour slows every
    // configuration alike; SHA-256 alone is timed in the same rounds as the reference.
    let mut secs = vec![Vec::new(); configs.len()];
    let mut sha_secs = Vec::new();
    let mut base = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        std::hint::black_box(ChunkId::of(&v1));
        sha_secs.push(started.elapsed().as_secs_f64());
        base.clear();
        for (i, &config) in configs.iter().enumerate() {
            let pass = chunk_and_hash(config, &v1);
            secs[i].push(pass.secs);
            base.push(pass.chunks);
        }
    }
    let mb_s = |s: f64| len as f64 / 1e6 / s;
    let sha = median(sha_secs);

    println!(
        "{} MiB pseudo-random input, one thread, median of {rounds} interleaved passes; \
         SHA-256 alone: {:.0} MB/s\n",
        len >> 20,
        mb_s(sha)
    );
    println!(
        "| chunker (min / avg / max) | chunks | mean chunk | chunks at max | chunks per GiB \
         | chunk+hash MB/s | vs SHA-256 alone | new after 1-byte insert at front \
         | new after 10×4 KiB edits + 1-byte insert |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (i, &config) in configs.iter().enumerate() {
        let chunks = &base[i];
        let total: u64 = chunks.iter().map(|(_, s)| s).sum();
        assert_eq!(total, len as u64, "chunks cover the input");
        let at_max = chunks
            .iter()
            .filter(|&&(_, s)| s as usize == config.max_chunk())
            .count();
        let a = new_bytes(chunks, &chunk_and_hash(config, &front).chunks);
        let b = new_bytes(chunks, &chunk_and_hash(config, &edited).chunks);
        let pct = |bytes: u64| 100.0 * bytes as f64 / len as f64;
        let t = median(secs[i].clone());
        println!(
            "| {} | {} | {:.2} MiB | {} | {:.0} | {:.0} | {:.2}× | {:.2}% ({:.1} MiB) | {:.2}% ({:.1} MiB) |",
            label(config),
            chunks.len(),
            total as f64 / chunks.len() as f64 / f64::from(1 << 20),
            at_max,
            chunks.len() as f64 * f64::from(1 << 30) / len as f64,
            mb_s(t),
            sha / t,
            pct(a),
            a as f64 / f64::from(1 << 20),
            pct(b),
            b as f64 / f64::from(1 << 20),
        );
        if matches!(config, ChunkerConfig::Cdc { .. }) {
            assert!(pct(a) < 50.0, "CDC resynchronizes after an insertion");
        }
    }
}
