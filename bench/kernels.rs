//! Criterion benchmarks of the per-byte kernels of put and get, each over 64 MiB held in memory so
//! that no disk or backend is measured: SHA-256 (`ChunkId::of`), the `Chunker` (CDC at several
//! averages and fixed 4 MiB, on random and on text-like data, with FastCDC's own iterator as a
//! no-copy reference), frame decoding, and every compression × cipher combination of the codec
//! (encode and decode of a 4 MiB chunk, random and text-like). Run with
//! `cargo bench --bench kernels`; see `bench/README.md` for results.

#[path = "common.rs"]
mod common;

use std::hint::black_box;
use std::time::Duration;

use sha2::Digest;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fastcdc::v2020::FastCDC;
use ldv::store::chunker::{Chunker, ChunkerConfig};
use ldv::store::codec::{self, Algorithm, Codec, CompressionConfig, PlainChunk};
use ldv::store::crypto::{Cipher, KeyBytes, VaultKeys};
use ldv::store::layout::ChunkId;

use common::{cdc, random_bytes, size_label};

/// Bytes per measured input.
const INPUT: usize = 64 << 20;
/// CDC averages benchmarked; `min`/`max` follow from [`common::cdc`].
const AVERAGES: [u32; 3] = [256 << 10, 1 << 20, 4 << 20];
/// Size of the framed chunk decoded (the default CDC average).
const FRAME: usize = 4 << 20;

/// Words for the text-like input, roughly in order of frequency.
const WORDS: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "a",
    "in",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "had",
    "they",
    "you",
    "were",
    "their",
    "one",
    "all",
    "we",
    "can",
    "her",
    "has",
    "there",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "model",
    "data",
    "token",
    "training",
    "weights",
    "dataset",
    "layer",
    "attention",
    "gradient",
    "vault",
    "chunk",
];

/// `len` bytes of word salad: ASCII words, spaces, punctuation and newlines, Zipf-like skewed.
fn text_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = common::XorShift::new(seed);
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        let r = rng.next_u64();
        // The smaller of two draws favours frequent words.
        let a = (r & 0xffff) as usize % WORDS.len();
        let b = ((r >> 16) & 0xffff) as usize % WORDS.len();
        out.extend_from_slice(WORDS[a.min(b)].as_bytes());
        out.push(match (r >> 32) % 40 {
            0 => b'\n',
            1 | 2 => b',',
            3 => b'.',
            _ => b' ',
        });
    }
    out.truncate(len);
    out
}

/// Runs a chunker over `data` as put does (frame header in front of every chunk); returns the
/// bytes cut so the work cannot be optimized away.
fn chunk_all(config: ChunkerConfig, data: &[u8]) -> usize {
    Chunker::new(config, data)
        .with_prefix(&codec::PLAIN_HEADER)
        .map(|c| c.expect("reading memory cannot fail").len())
        .sum()
}

fn sha256(c: &mut Criterion) {
    let data = random_bytes(INPUT, 1);
    let mut g = c.benchmark_group("sha256");
    g.throughput(Throughput::Bytes(INPUT as u64));
    g.bench_function("ChunkId::of/random", |b| {
        b.iter(|| ChunkId::of(black_box(&data)))
    });
    g.bench_function("sha2/random", |b| {
        b.iter(|| sha2::Sha256::digest(black_box(&data)))
    });
    g.bench_function("aws-lc-rs/random", |b| {
        b.iter(|| aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, black_box(&data)))
    });
    g.finish();
}

fn chunker(c: &mut Criterion) {
    let random = random_bytes(INPUT, 2);
    let text = text_bytes(INPUT, 3);
    let mut g = c.benchmark_group("chunker");
    g.throughput(Throughput::Bytes(INPUT as u64));
    for (kind, data) in [("random", &random), ("text", &text)] {
        for avg in AVERAGES {
            let config = cdc(avg);
            let id = format!("{kind}/cdc-avg{}", size_label(avg.into()));
            g.bench_function(&id, |b| b.iter(|| chunk_all(config, black_box(data))));
        }
    }
    let fixed = ChunkerConfig::Fixed {
        size: 4 << 20,
        min_chunk_threshold: 0,
    };
    g.bench_function("random/fixed-4MiB", |b| {
        b.iter(|| chunk_all(fixed, black_box(&random)))
    });
    // FastCDC's own iterator finds the same cut points without copying chunks out: the floor.
    for avg in AVERAGES {
        let ChunkerConfig::Cdc { min, avg, max } = cdc(avg) else {
            unreachable!("cdc() builds CDC settings")
        };
        let id = format!("random/fastcdc-ref-avg{}", size_label(avg.into()));
        g.bench_function(&id, |b| {
            b.iter(|| FastCDC::new(black_box(&random), min, avg, max).count())
        });
    }
    g.finish();
}

fn decode(c: &mut Criterion) {
    let data = random_bytes(FRAME, 4);
    let frame = PlainChunk::copy_from(&data).frame();
    let id = ChunkId::of(&data);
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Bytes(FRAME as u64));
    // Unframing is zero-copy: a header check and a slice, whatever the chunk size.
    g.bench_function("decode/4MiB", |b| {
        b.iter(|| codec::decode(black_box(frame.clone()), "chunk").expect("a valid frame"))
    });
    // What get does per chunk: unframe, then check the plaintext against its id.
    g.bench_function("decode+verify/4MiB", |b| {
        b.iter(|| {
            let plain = codec::decode(black_box(frame.clone()), "chunk").expect("a valid frame");
            assert!(ChunkId::of(&plain) == id);
            plain
        })
    });
    g.finish();
}

/// Encode (compress, seal) and decode (open, decompress) of one 4 MiB chunk for every
/// compression × cipher combination, plus the keyed chunk id of encrypted vaults.
fn codecs(c: &mut Criterion) {
    let inputs = [
        ("random", random_bytes(FRAME, 5)),
        ("text", text_bytes(FRAME, 6)),
    ];
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Bytes(FRAME as u64));
    let keys = |cipher| {
        Some(std::sync::Arc::new(VaultKeys::derive(
            cipher,
            &KeyBytes::new([9; 32]),
            "bench",
        )))
    };
    let id_keys = keys(Cipher::Aes256Gcm).expect("keys");
    g.bench_function("hmac-chunk-id/random", |b| {
        b.iter(|| id_keys.chunk_id(black_box(&inputs[0].1)))
    });
    for algorithm in [
        Algorithm::None,
        Algorithm::Lz4,
        Algorithm::Zstd,
        Algorithm::Gzip,
    ] {
        let compression = CompressionConfig {
            algorithm,
            level: algorithm.default_level(),
            min_size: CompressionConfig::DEFAULT_MIN_SIZE,
        };
        for (cipher_name, cipher) in [
            ("plain", None),
            ("aes", Some(Cipher::Aes256Gcm)),
            ("chacha", Some(Cipher::ChaCha20Poly1305)),
        ] {
            let codec = Codec::new(compression, cipher.and_then(keys));
            for (kind, data) in &inputs {
                let chunk = PlainChunk::copy_from(data);
                let id = codec.chunk_id(data);
                let label = format!("{}+{cipher_name}/{kind}", algorithm.name());
                g.bench_function(format!("encode/{label}"), |b| {
                    b.iter(|| codec.encode_chunk(id, black_box(&chunk)))
                });
                let frame = codec.encode_chunk(id, &chunk);
                g.bench_function(format!("decode/{label}"), |b| {
                    b.iter(|| {
                        codec
                            .decode_chunk(id, black_box(frame.clone()), FRAME as u64)
                            .expect("a valid frame")
                    })
                });
            }
        }
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = kernels;
    config = config();
    targets = sha256, chunker, decode, codecs
}
criterion_main!(kernels);
