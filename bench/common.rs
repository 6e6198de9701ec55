//! Deterministic inputs and chunker settings shared by the benchmarks in `bench/`. Inputs are
//! generated, never read from disk, so every run and every machine measures the same bytes.

use ldv::store::chunker::ChunkerConfig;

// The benches use the system allocator with its defaults. The `ldv` binary fixes glibc's mmap
// threshold at 64 KiB (see `src/main.rs`), so its chunk buffers are fresh mappings whose pages
// fault in: whole-command figures include that cost, these kernel figures mostly do not.

/// xorshift64*: a tiny, fast, deterministic generator; statistical quality is ample for test data.
pub struct XorShift(u64);

impl XorShift {
    /// A generator started from `seed` (zero is replaced, as xorshift would stay at zero).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next 64 pseudo-random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (modulo bias is irrelevant for `n` far below 2^64).
    #[allow(dead_code)] // used by chunk_study only
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// `len` pseudo-random bytes from `seed`: incompressible, like compressed or encrypted payloads.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = XorShift::new(seed);
    let mut out = vec![0u8; len];
    let mut words = out.chunks_exact_mut(8);
    for w in &mut words {
        w.copy_from_slice(&rng.next_u64().to_le_bytes());
    }
    let tail = words.into_remainder();
    let last = rng.next_u64().to_le_bytes();
    tail.copy_from_slice(&last[..tail.len()]);
    out
}

/// Largest `min` FastCDC 2020 accepts (1 MiB).
const CDC_MIN_LIMIT: u32 = 1 << 20;
/// Largest `max` FastCDC 2020 accepts (16 MiB).
const CDC_MAX_LIMIT: u32 = 16 << 20;

/// The CDC settings studied: `min = avg / 4`, `max = avg * 4`, capped to FastCDC's limits.
pub fn cdc(avg: u32) -> ChunkerConfig {
    let config = ChunkerConfig::Cdc {
        min: (avg / 4).min(CDC_MIN_LIMIT),
        avg,
        max: avg.saturating_mul(4).min(CDC_MAX_LIMIT),
    };
    config.validate().expect("studied CDC settings are valid");
    config
}

/// A size in binary units for labels: `256KiB`, `4MiB`.
pub fn size_label(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes % (1 << 20) == 0 {
        format!("{}MiB", bytes >> 20)
    } else {
        format!("{}KiB", bytes >> 10)
    }
}
