//! Splitting a byte stream into chunks: content-defined (FastCDC 2020) so that an insertion only
//! changes the chunks around it, or fixed-size (the seed's `ChunkConfig`). The chunker reads large
//! blocks into one buffer and hands out chunks as zero-copy slices of it; it holds at most about
//! one maximum-size chunk plus one read block, whatever the input size.

use std::fmt;
use std::io::{self, Read};

use bytes::Bytes;
use fastcdc::v2020;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

const MIB: u64 = 1024 * 1024;
/// Default smallest content-defined chunk.
pub const CDC_MIN: u32 = 1024 * 1024;
/// Default average content-defined chunk.
pub const CDC_AVG: u32 = 4 * 1024 * 1024;
/// Default largest content-defined chunk.
pub const CDC_MAX: u32 = 16 * 1024 * 1024;
/// The seed's default fixed chunk size.
pub const FIXED_SIZE: u64 = 64 * MIB;
/// The seed's default size below which a file is one chunk.
pub const FIXED_THRESHOLD: u64 = 128 * MIB;
/// Bytes requested from the source per read.
pub const READ_BLOCK: usize = 8 * 1024 * 1024;
/// Largest fixed chunk size and single-chunk threshold accepted, to keep memory bounded.
pub const MAX_FIXED_CHUNK: u64 = 256 * MIB;

/// How files are split into chunks; recorded in the vault descriptor and in every manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChunkerConfig {
    /// Content-defined chunking with FastCDC 2020 (normalization level 1).
    Cdc {
        /// Smallest chunk, in bytes (64 B – 1 MiB).
        min: u32,
        /// Target average chunk, in bytes (256 B – 4 MiB).
        avg: u32,
        /// Largest chunk, in bytes (1 KiB – 16 MiB).
        max: u32,
    },
    /// Fixed-size chunks (the seed's `ChunkConfig`).
    Fixed {
        /// Size of every chunk but the last.
        size: u64,
        /// Inputs smaller than this are stored as one chunk.
        min_chunk_threshold: u64,
    },
}

impl Default for ChunkerConfig {
    fn default() -> Self {
        Self::Cdc {
            min: CDC_MIN,
            avg: CDC_AVG,
            max: CDC_MAX,
        }
    }
}

/// Format 2's content-defined defaults (packs make small chunks cheap; bench/chunk-size-study.md
/// chose them): min 32 KiB, avg 128 KiB, max 512 KiB.
pub const PACKED_CDC: ChunkerConfig = ChunkerConfig::Cdc {
    min: 32 * 1024,
    avg: 128 * 1024,
    max: 512 * 1024,
};

impl ChunkerConfig {
    /// The content-defined default of a vault of `format`: [`PACKED_CDC`] for format 2, the
    /// larger format-1 default (one object per chunk) otherwise.
    pub fn cdc_for_format(format: u32) -> Self {
        if format >= 2 {
            PACKED_CDC
        } else {
            Self::default()
        }
    }

    /// The seed's fixed-size defaults: 64 MiB chunks, files under 128 MiB kept whole.
    pub fn fixed_default() -> Self {
        Self::Fixed {
            size: FIXED_SIZE,
            min_chunk_threshold: FIXED_THRESHOLD,
        }
    }

    /// Checks the parameters, naming the one that is out of range.
    pub fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::new(ErrorKind::ChunkingError, msg));
        match *self {
            Self::Cdc { min, avg, max } => {
                if !(v2020::MINIMUM_MIN..=v2020::MINIMUM_MAX).contains(&min) {
                    return bad(format!("chunking.min {min} must be between 64 B and 1 MiB"));
                }
                if !(v2020::AVERAGE_MIN..=v2020::AVERAGE_MAX).contains(&avg) {
                    return bad(format!(
                        "chunking.avg {avg} must be between 256 B and 4 MiB"
                    ));
                }
                if !(v2020::MAXIMUM_MIN..=v2020::MAXIMUM_MAX).contains(&max) {
                    return bad(format!(
                        "chunking.max {max} must be between 1 KiB and 16 MiB"
                    ));
                }
                if !(min <= avg && avg <= max) {
                    return bad(format!(
                        "chunking sizes must satisfy min <= avg <= max (got {min}, {avg}, {max})"
                    ));
                }
            }
            Self::Fixed {
                size,
                min_chunk_threshold,
            } => {
                if size == 0 || size > MAX_FIXED_CHUNK {
                    return bad(format!(
                        "chunking.size {size} must be between 1 B and 256 MiB"
                    ));
                }
                if min_chunk_threshold > MAX_FIXED_CHUNK {
                    return bad(format!(
                        "chunking.min_chunk_threshold {min_chunk_threshold} must be at most 256 MiB"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The largest chunk this configuration can produce, in bytes.
    pub fn max_chunk(&self) -> usize {
        let max = match *self {
            Self::Cdc { max, .. } => u64::from(max),
            Self::Fixed {
                size,
                min_chunk_threshold,
            } => size.max(min_chunk_threshold),
        };
        usize::try_from(max).expect("validated chunk sizes fit in memory")
    }

    /// Whether an input of `len` bytes is certainly stored as exactly one chunk.
    pub fn is_single_chunk(&self, len: u64) -> bool {
        match *self {
            Self::Cdc { min, .. } => len <= u64::from(min),
            Self::Fixed {
                size,
                min_chunk_threshold,
            } => len < min_chunk_threshold || len <= size,
        }
    }
}

impl fmt::Display for ChunkerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let size = |b: u64| bytesize::ByteSize(b).display().iec().to_string();
        match *self {
            Self::Cdc { min, avg, max } => write!(
                f,
                "cdc (min {}, avg {}, max {})",
                size(min.into()),
                size(avg.into()),
                size(max.into())
            ),
            Self::Fixed {
                size: s,
                min_chunk_threshold,
            } => write!(
                f,
                "fixed ({}, whole below {})",
                size(s),
                size(min_chunk_threshold)
            ),
        }
    }
}

/// Cuts a reader into chunks according to a [`ChunkerConfig`].
///
/// The reader is read in large blocks into one reusable buffer; each chunk is then copied into a
/// buffer of its own, preceded by a caller-chosen prefix (the store's frame header), so a chunk
/// owns exactly its memory and can be stored without another copy.
pub struct Chunker<R> {
    source: R,
    config: ChunkerConfig,
    masks: (u64, u64),
    prefix: Vec<u8>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    size_hint: Option<usize>,
    eof: bool,
    started: bool,
    whole: bool,
}

/// One chunk as cut by a [`Chunker`]: the prefix followed by the chunk's bytes.
#[derive(Debug, Clone)]
pub struct Cut {
    /// Prefix and data in one buffer.
    pub buf: Bytes,
    /// Length of the prefix.
    pub prefix_len: usize,
}

impl Cut {
    /// The chunk's bytes, without the prefix.
    pub fn data(&self) -> Bytes {
        self.buf.slice(self.prefix_len..)
    }

    /// Length of the chunk's bytes.
    pub fn len(&self) -> usize {
        self.buf.len() - self.prefix_len
    }

    /// Whether the chunk holds no bytes (never true for a chunk a chunker returns).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<R: Read> Chunker<R> {
    /// A chunker over `source`; the config must have passed [`ChunkerConfig::validate`].
    pub fn new(config: ChunkerConfig, source: R) -> Self {
        let masks = match config {
            ChunkerConfig::Cdc { avg, .. } => {
                // FastCDC normalization level 1, as `v2020::FastCDC::new` uses.
                let bits = v2020::logarithm2(avg);
                (
                    v2020::MASKS[(bits + 1) as usize],
                    v2020::MASKS[(bits - 1) as usize],
                )
            }
            ChunkerConfig::Fixed { .. } => (0, 0),
        };
        Self {
            source,
            config,
            masks,
            prefix: Vec::new(),
            buf: Vec::new(),
            start: 0,
            end: 0,
            size_hint: None,
            eof: false,
            started: false,
            whole: false,
        }
    }

    /// Puts `prefix` in front of every chunk's bytes.
    pub fn with_prefix(mut self, prefix: &[u8]) -> Self {
        self.prefix = prefix.to_vec();
        self
    }

    /// Sizes the read buffer for an input of about `len` bytes, so a small file does not cost
    /// the full buffer; a longer input still reads correctly (the buffer grows).
    pub fn with_size_hint(mut self, len: u64) -> Self {
        self.size_hint = usize::try_from(len).ok();
        self
    }

    /// Reads until at least `want` unconsumed bytes are buffered or the source ends.
    fn fill(&mut self, want: usize) -> io::Result<()> {
        if self.end - self.start >= want || self.eof {
            return Ok(());
        }
        // One buffer, allocated once: room for two chunks and a read block (less for the
        // large single-chunk threshold of fixed mode, or for an input known to be small). The
        // unconsumed tail (less than one chunk) moves to the front only when no full read block
        // fits after it.
        let full = if want > 4 * READ_BLOCK {
            want + READ_BLOCK
        } else {
            2 * want + READ_BLOCK
        };
        // One byte past the hinted end, so the end of input is seen without another pass.
        let target = self
            .size_hint
            .map_or(full, |hint| full.min(hint.saturating_add(1)));
        if self.buf.len() < target {
            self.buf.resize(target, 0);
        }
        if self.buf.len() - self.start < want || self.buf.len() - self.end < READ_BLOCK.min(want) {
            self.compact();
        }
        while self.end - self.start < want && !self.eof {
            if self.end == self.buf.len() {
                // The input is longer than its hint said: grow to the full buffer.
                self.compact();
                let grown = full.max(self.end + READ_BLOCK);
                self.buf.resize(grown, 0);
            }
            match self.source.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Moves the unconsumed bytes to the front of the buffer.
    fn compact(&mut self) {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
    }

    /// The next chunk, or `None` at the end of the input.
    pub fn next_chunk(&mut self) -> io::Result<Option<Cut>> {
        let cut = match self.config {
            ChunkerConfig::Cdc { min, avg, max } => {
                self.fill(max as usize)?;
                if self.end == self.start {
                    return Ok(None);
                }
                let (mask_s, mask_l) = self.masks;
                v2020::cut(
                    &self.buf[self.start..self.end],
                    min as usize,
                    avg as usize,
                    max as usize,
                    mask_s,
                    mask_l,
                    mask_s << 1,
                    mask_l << 1,
                )
                .1
            }
            ChunkerConfig::Fixed {
                size,
                min_chunk_threshold,
            } => {
                let size = size as usize;
                if !self.started {
                    self.started = true;
                    self.fill(min_chunk_threshold as usize)?;
                    self.whole = self.eof && self.end - self.start < min_chunk_threshold as usize;
                }
                if self.whole {
                    self.end - self.start
                } else {
                    self.fill(size)?;
                    (self.end - self.start).min(size)
                }
            }
        };
        if cut == 0 {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(self.prefix.len() + cut);
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(&self.buf[self.start..self.start + cut]);
        self.start += cut;
        Ok(Some(Cut {
            buf: Bytes::from(out),
            prefix_len: self.prefix.len(),
        }))
    }
}

impl<R: Read> Iterator for Chunker<R> {
    type Item = io::Result<Cut>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_chunk().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn small_cdc() -> ChunkerConfig {
        ChunkerConfig::Cdc {
            min: 256,
            avg: 1024,
            max: 4096,
        }
    }

    fn chunks(config: ChunkerConfig, data: &[u8]) -> Vec<Bytes> {
        Chunker::new(config, data)
            .map(|c| c.map(|c| c.data()))
            .collect::<io::Result<_>>()
            .unwrap()
    }

    /// A reader that returns at most `step` bytes per call, to exercise refills.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(buf.len()).min(self.1);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    proptest! {
        #[test]
        fn cdc_chunks_concatenate_to_the_input_within_bounds(
            data in proptest::collection::vec(any::<u8>(), 0..40_000),
            step in 1usize..5000,
        ) {
            let config = small_cdc();
            let got: Vec<Bytes> = Chunker::new(config, Trickle(&data, step))
                .with_prefix(b"hdr")
                .map(|c| c.map(|c| { assert_eq!(&c.buf[..3], b"hdr"); c.data() }))
                .collect::<io::Result<_>>()
                .unwrap();
            prop_assert_eq!(got.concat(), data.clone());
            for (i, c) in got.iter().enumerate() {
                prop_assert!(c.len() <= 4096);
                if i + 1 < got.len() { prop_assert!(c.len() >= 256); }
            }
            // Boundaries depend on content only, not on how the reader delivers it.
            prop_assert_eq!(got, chunks(config, &data));
        }

        #[test]
        fn a_wrong_size_hint_changes_nothing(
            data in proptest::collection::vec(any::<u8>(), 0..30_000),
            hint in 0u64..40_000,
            step in 1usize..9000,
        ) {
            let config = small_cdc();
            let got: Vec<Bytes> = Chunker::new(config, Trickle(&data, step))
                .with_size_hint(hint)
                .map(|c| c.map(|c| c.data()))
                .collect::<io::Result<_>>()
                .unwrap();
            prop_assert_eq!(got, chunks(config, &data));
        }

        #[test]
        fn fixed_chunks_have_the_configured_size(
            len in 0usize..20_000, size in 1u64..3000, threshold in 0u64..10_000,
        ) {
            let data: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let config = ChunkerConfig::Fixed { size, min_chunk_threshold: threshold };
            let got = chunks(config, &data);
            prop_assert_eq!(got.concat(), data.clone());
            if (len as u64) < threshold {
                prop_assert!(got.len() <= 1);
            } else {
                for c in &got[..got.len().saturating_sub(1)] {
                    prop_assert_eq!(c.len() as u64, size);
                }
            }
            if config.is_single_chunk(len as u64) {
                prop_assert!(got.len() <= 1);
            }
        }
    }

    #[test]
    fn an_insertion_changes_only_nearby_chunks() {
        let mut data = vec![0u8; 200_000];
        let mut x: u64 = 1;
        for b in data.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        let before = chunks(small_cdc(), &data);
        data.insert(10, 0xAB);
        let after = chunks(small_cdc(), &data);
        let shared = after.iter().filter(|c| before.contains(c)).count();
        assert!(
            shared + 3 >= after.len(),
            "{shared} of {} shared",
            after.len()
        );
    }

    #[test]
    fn out_of_range_parameters_are_rejected() {
        assert!(ChunkerConfig::default().validate().is_ok());
        assert!(ChunkerConfig::fixed_default().validate().is_ok());
        let bad = ChunkerConfig::Cdc {
            min: 1 << 20,
            avg: 1 << 10,
            max: 1 << 24,
        };
        assert!(bad.validate().is_err());
        let bad = ChunkerConfig::Cdc {
            min: 1 << 20,
            avg: 1 << 22,
            max: 1 << 25,
        };
        assert!(bad.validate().is_err());
        let bad = ChunkerConfig::Fixed {
            size: 0,
            min_chunk_threshold: 0,
        };
        assert!(bad.validate().is_err());
    }
}
