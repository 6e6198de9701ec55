//! Fuzz targets: one function per parser of bytes ldv may get from someone else (a shared
//! bucket, a restored backup, a user's flags and profile). Each takes arbitrary bytes, must never
//! panic, and asserts the properties that are cheap to check (a frame that decodes is exactly
//! its declared size, a parsed manifest re-serializes to the same value, a valid name has no
//! `..` segment, ...). A panic is a finding.
//!
//! The bodies live in the library so that two drivers share them: the coverage-guided fuzzer in
//! `fuzz/` (cargo-fuzz, libFuzzer) and the mutation test in `tests/fuzz.rs`, which replays the
//! committed corpus and mutates it for a few seconds per target in every test run. [`seeds`]
//! makes valid objects with ldv's own writers for both. Not a stable API.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Deserialize;

use crate::backend::memory::MemoryBackend;
use crate::backend::{Backend, BackendConfig, DynBackend, MAX_KEY_LEN, PutMode};
use crate::cli::args::GlobalArgs;
use crate::cli::settings::{Settings, parse_vault_url};
use crate::config::{LoadedConfig, Secret, parse_size};
use crate::store::chunker::ChunkerConfig;
use crate::store::codec::{
    self, Algorithm, CHUNK_PURPOSE, Codec, CompressionConfig, HEADER_LEN, MAX_DECODED, PlainChunk,
};
use crate::store::crypto::{self, Cipher, KdfParams, KeyBytes, KeySlot, SlotKind, VaultKeys};
use crate::store::keys::{KeyProvider, PassphraseKey, RawKey};
use crate::store::layout::{self, ChunkId, ObjectRef};
use crate::store::locks::{LockInfo, LockKind};
use crate::store::manifest::{self, ChunkRef, Manifest};
use crate::store::{Descriptor, EncryptionOptions, Vault, VaultOptions, parse_descriptor};

/// A fuzz target: takes any bytes, panics only on a finding.
pub type Target = fn(&[u8]);

/// Every target by name, in the order the fuzz script runs them.
pub const TARGETS: &[(&str, Target)] = &[
    ("frame", frame),
    ("frame_zstd", frame_zstd),
    ("frame_lz4", frame_lz4),
    ("frame_gzip", frame_gzip),
    ("frame_sealed", frame_sealed),
    ("frame_round_trip", frame_round_trip),
    ("manifest", manifest),
    ("manifest_sealed", manifest_sealed),
    ("descriptor", descriptor),
    ("lock", lock),
    ("profile", profile),
    ("name", name),
    ("range", range),
    ("vault_url", vault_url),
    ("backend_key", backend_key),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<Target> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// The raw key of the encrypted vault the targets open; fixed so that a corpus stays valid.
pub const TEST_KEY: [u8; 32] = [0x5a; 32];
/// The id of that vault (part of every derived key).
pub const TEST_VAULT_ID: &str = "fuzz-vault";
/// The passphrase of the passphrase slots in seed descriptors.
pub const TEST_PASSPHRASE: &str = "fuzz passphrase";
/// The storage key the sealed-manifest target opens manifests at.
pub const MANIFEST_KEY: &str = "manifests/fuzz/20260101T000000000Z-00000000";

fn test_keys(cipher: Cipher) -> Arc<VaultKeys> {
    static KEYS: OnceLock<[Arc<VaultKeys>; 2]> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305].map(|c| {
            Arc::new(VaultKeys::derive(
                c,
                &KeyBytes::new(TEST_KEY),
                TEST_VAULT_ID,
            ))
        })
    });
    Arc::clone(&keys[usize::from(cipher == Cipher::ChaCha20Poly1305)])
}

fn sealed_codec(cipher: Cipher) -> Codec {
    Codec::new(CompressionConfig::NONE, Some(test_keys(cipher)))
}

/// Splits a little-endian `u32` off the front (missing bytes read as zero).
fn take_u32(data: &[u8]) -> (u32, &[u8]) {
    let mut n = [0u8; 4];
    let k = data.len().min(4);
    n[..k].copy_from_slice(&data[..k]);
    (u32::from_le_bytes(n), &data[k..])
}

fn take_u64(data: &[u8]) -> (u64, &[u8]) {
    let mut n = [0u8; 8];
    let k = data.len().min(8);
    n[..k].copy_from_slice(&data[..k]);
    (u64::from_le_bytes(n), &data[k..])
}

fn header(compression: u8, cipher: u8) -> [u8; HEADER_LEN] {
    codec::frame_header(compression, cipher)
}

/// The properties of any decode: success means exactly `size` bytes, failure is damage.
fn check_decoded(result: crate::Result<Bytes>, size: u64) -> Option<Bytes> {
    match result {
        Ok(out) => {
            assert_eq!(out.len() as u64, size, "a frame decoded to another size");
            assert!(size <= MAX_DECODED, "a size over the limit decoded");
            Some(out)
        }
        Err(e) => {
            assert_eq!(
                e.kind(),
                crate::ErrorKind::IntegrityCheckFailed,
                "a bad frame is damage: {e}"
            );
            None
        }
    }
}

/// A stored chunk frame of a plain vault: `[size: u32 LE][frame]`, where size is the plaintext
/// length a manifest would record.
pub fn frame(data: &[u8]) {
    let (size, stored) = take_u32(data);
    let id = ChunkId([0; 32]);
    let out = check_decoded(
        Codec::plain().decode_chunk(id, Bytes::copy_from_slice(stored), u64::from(size)),
        u64::from(size),
    );
    if let Some(out) = out
        && stored[5] == 0
    {
        assert_eq!(&out[..], &stored[HEADER_LEN..], "a stored frame changed");
    }
    if let Ok(out) = codec::decode(Bytes::copy_from_slice(stored), "fuzz") {
        assert!(out.len() as u64 <= MAX_DECODED);
    }
}

/// A compressed payload behind a valid header: `[size: u32 LE][payload]`.
fn compressed(code: u8, data: &[u8]) {
    let (size, payload) = take_u32(data);
    let mut stored = header(code, 0).to_vec();
    stored.extend_from_slice(payload);
    check_decoded(
        Codec::plain().decode_chunk(ChunkId([0; 32]), Bytes::from(stored), u64::from(size)),
        u64::from(size),
    );
}

/// A zstd frame of a chunk: `[size: u32 LE][zstd payload]`.
pub fn frame_zstd(data: &[u8]) {
    compressed(2, data);
}

/// An lz4 frame of a chunk: `[size: u32 LE][lz4 block]`.
pub fn frame_lz4(data: &[u8]) {
    compressed(3, data);
}

/// A gzip frame of a chunk: `[size: u32 LE][gzip stream]`.
pub fn frame_gzip(data: &[u8]) {
    compressed(1, data);
}

/// A chunk frame of an encrypted vault (fixed test key): `[mode][size: u32 LE][rest]`. Mode bit
/// 0 clear: `rest` is the stored frame, as an attacker without the key could write it. Set:
/// `rest` is `[compression code][payload]`, sealed here under the right key, so the
/// decompressors behind the AEAD are reached too. Mode bit 1 picks ChaCha20-Poly1305.
pub fn frame_sealed(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let cipher = if mode & 2 == 0 {
        Cipher::Aes256Gcm
    } else {
        Cipher::ChaCha20Poly1305
    };
    let codec = sealed_codec(cipher);
    let (size, rest) = take_u32(rest);
    let id = ChunkId([7; 32]);
    let stored = if mode & 1 == 0 {
        Bytes::copy_from_slice(rest)
    } else {
        let Some((&code, payload)) = rest.split_first() else {
            return;
        };
        codec.seal(code, CHUNK_PURPOSE, &id.0, payload)
    };
    let out = check_decoded(
        codec.decode_chunk(id, stored, u64::from(size)),
        u64::from(size),
    );
    if let (Some(out), true) = (out, mode & 1 == 1 && rest.first() == Some(&0)) {
        assert_eq!(&out[..], &rest[1..], "a sealed payload changed");
    }
}

/// Any chunk, written by every compression and cipher: `[selector][plaintext]`. It must decode
/// to itself, and to nothing under a wrong size or another chunk's id.
pub fn frame_round_trip(data: &[u8]) {
    let Some((&sel, plain)) = data.split_first() else {
        return;
    };
    let algorithm = [
        Algorithm::None,
        Algorithm::Gzip,
        Algorithm::Zstd,
        Algorithm::Lz4,
    ][usize::from(sel % 4)];
    let keys = match (sel / 4) % 3 {
        0 => None,
        1 => Some(test_keys(Cipher::Aes256Gcm)),
        _ => Some(test_keys(Cipher::ChaCha20Poly1305)),
    };
    let codec = Codec::new(
        CompressionConfig {
            algorithm,
            level: algorithm.default_level(),
            min_size: u64::from(sel / 12 % 4) * 16,
        },
        keys,
    );
    let id = codec.chunk_id(plain);
    let stored = codec.encode_chunk(id, &PlainChunk::copy_from(plain));
    let n = plain.len() as u64;
    let back = codec
        .decode_chunk(id, stored.clone(), n)
        .expect("a frame ldv wrote decodes");
    assert_eq!(&back[..], plain, "round trip changed the chunk");
    assert!(
        codec.decode_chunk(id, stored.clone(), n + 1).is_err(),
        "a frame decoded to a size it does not have"
    );
    if codec.cipher().is_some() {
        let other = ChunkId([!id.0[0]; 32]);
        assert!(
            codec.decode_chunk(other, stored, n).is_err(),
            "a sealed frame opened as another chunk"
        );
    }
}

/// Where a manifest says it belongs, so that the parser's checks past that one are reached.
fn manifest_address(raw: &[u8]) -> (String, String) {
    #[derive(Deserialize)]
    struct Address {
        name: String,
        version: String,
    }
    serde_json::from_slice::<Address>(raw)
        .map(|a| (a.name, a.version))
        .unwrap_or_else(|_| ("fuzz".into(), "20260101T000000000Z-00000000".into()))
}

/// The properties of a manifest that parsed.
fn check_manifest(m: &Manifest, name: &str, version: &str) {
    let again = Manifest::from_bytes(&m.to_bytes(), name, version)
        .expect("a manifest that parsed re-parses after serializing");
    // Times are stored to the millisecond; a stored one may have more digits.
    let mut truncated = m.clone();
    truncated.created_at = again.created_at;
    assert_eq!(truncated, again, "a manifest changed through a round trip");
    let ms = |t: SystemTime| t.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).ok();
    assert_eq!(ms(m.created_at), ms(again.created_at), "created_at moved");
    assert_eq!(m.chunks.iter().map(|c| c.size).sum::<u64>(), m.size);
    assert_eq!(m.chunks_in(0, m.size), 0..m.chunks.len());
    for c in &m.chunks {
        let r = m.chunks_in(c.offset, c.offset + 1);
        assert!(
            r.start < r.end && m.chunks[r.start] == *c,
            "chunks_in missed {c:?}"
        );
    }
    assert!(m.chunks_in(m.size, u64::MAX).is_empty());
}

/// Hands out its bytes a few at a time, so a streaming parser meets every split of its input.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl std::io::Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Parses `json` as every manifest reader does (whole, and streamed a few bytes at a time into
/// each kind of sink): they must agree, error for error, and the head must count its chunks.
fn read_manifest(json: &[u8], name: &str, version: &str) -> Option<Manifest> {
    let whole = Manifest::from_bytes(json, name, version);
    // The streamed reader also refuses long strings and whitespace runs that no short input has.
    if json.len() <= manifest::MAX_SPACE {
        let step = json.len() % 7 + 1;
        let trickle = || Trickle { data: json, step };
        let mut chunks = Vec::new();
        let streamed = manifest::read_from(trickle(), name, version, &mut chunks, trickle);
        match (&whole, &streamed) {
            (Ok(m), Ok(head)) => {
                assert_eq!(Manifest::from_head(head.clone(), chunks), *m);
                assert_eq!(head.chunk_count, m.chunks.len() as u64);
                let largest = m.chunks.iter().map(|c| c.size).max().unwrap_or(0);
                assert_eq!(head.largest_chunk, largest);
            }
            (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind(), "{a} / {b}"),
            (a, b) => panic!("the readers disagree: whole {a:?}, streamed {b:?}"),
        }
        let mut ids = std::collections::HashSet::new();
        let by_id = manifest::read_slice(json, name, version, &mut ids);
        let counted = manifest::read_slice(json, name, version, &mut ());
        assert_eq!(by_id.is_ok(), whole.is_ok());
        assert_eq!(counted.ok(), by_id.ok());
    }
    whole.ok()
}

/// A stored manifest of a plain vault (JSON).
pub fn manifest(data: &[u8]) {
    let (name, version) = manifest_address(data);
    if let Some(m) = read_manifest(data, &name, &version) {
        check_manifest(&m, &name, &version);
    }
}

/// A stored manifest of an encrypted vault (fixed test key) at [`MANIFEST_KEY`]: `[mode][rest]`.
/// Mode bit 0 clear: `rest` is the stored object; set: `rest` is manifest JSON sealed here under
/// the right key. Mode bit 1 picks ChaCha20-Poly1305.
pub fn manifest_sealed(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let cipher = if mode & 2 == 0 {
        Cipher::Aes256Gcm
    } else {
        Cipher::ChaCha20Poly1305
    };
    let codec = sealed_codec(cipher);
    let stored = if mode & 1 == 0 {
        Bytes::copy_from_slice(rest)
    } else {
        codec.encode_manifest(MANIFEST_KEY, rest.to_vec())
    };
    let Ok(json) = codec.decode_manifest(MANIFEST_KEY, stored, "manifest") else {
        assert!(
            mode & 1 == 0,
            "a manifest sealed under the vault key did not open"
        );
        return;
    };
    if mode & 1 == 1 {
        assert_eq!(&json[..], rest, "a sealed manifest changed");
    }
    let (name, version) = layout::parse_manifest_key(MANIFEST_KEY).expect("a manifest key");
    if let Some(m) = read_manifest(&json, name, version) {
        check_manifest(&m, name, version);
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    thread_local! {
        static RUNTIME: RefCell<Option<tokio::runtime::Runtime>> = const { RefCell::new(None) };
    }
    RUNTIME.with(|rt| {
        let mut rt = rt.borrow_mut();
        rt.get_or_insert_with(|| {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a current-thread runtime starts")
        })
        .block_on(f)
    })
}

/// Whether the KDF of `kdf` is cheap enough to run on every input (a few KiB, few passes), or
/// refused before any work; the fuzzer must not wait on Argon2 at 1 GiB.
fn kdf_is_cheap(kdf: &KdfParams) -> bool {
    (kdf.m_cost_kib <= 256 && kdf.t_cost <= 2 && kdf.p_cost <= 4)
        || kdf.m_cost_kib > crypto::KDF_MAX_M_KIB
        || kdf.t_cost == 0
        || kdf.p_cost == 0
}

/// A vault descriptor (`ldv-vault.json`) and its key slots: parsed, then opened as `ldv` opens a
/// vault (on a memory store), without a key, with the raw [`TEST_KEY`], and with
/// [`TEST_PASSPHRASE`] when every passphrase slot's KDF is cheap.
pub fn descriptor(data: &[u8]) {
    let Ok(d) = parse_descriptor(data, "fuzz://") else {
        return;
    };
    let again = serde_json::to_vec_pretty(&d).expect("a descriptor serializes");
    let mut back = parse_descriptor(&again, "fuzz://").expect("a descriptor re-parses");
    assert_eq!(
        back.created_at
            .duration_since(UNIX_EPOCH)
            .map(|t| t.as_millis())
            .ok(),
        d.created_at
            .duration_since(UNIX_EPOCH)
            .map(|t| t.as_millis())
            .ok()
    );
    back.created_at = d.created_at;
    assert_eq!(back, d, "a descriptor changed through a round trip");

    let store = Arc::new(MemoryBackend::new());
    let backend: DynBackend = Arc::clone(&store) as DynBackend;
    block_on(async {
        store
            .put(
                layout::DESCRIPTOR_KEY,
                Bytes::copy_from_slice(data),
                PutMode::Overwrite,
            )
            .await
            .expect("a memory put succeeds");
        let plain = Vault::open(Arc::clone(&backend)).await;
        assert_eq!(plain.is_ok(), d.encryption.is_none());
        let Some(header) = &d.encryption else {
            return;
        };
        let mut keys: Vec<Arc<dyn KeyProvider>> = vec![Arc::new(RawKey::new(
            KeyBytes::new(TEST_KEY),
            "the fuzz key",
        ))];
        let cheap = header.slots.iter().all(|s| match &s.kind {
            SlotKind::Passphrase { kdf } => kdf_is_cheap(kdf),
            _ => true,
        });
        if cheap {
            keys.push(Arc::new(PassphraseKey::new(
                Secret::new(TEST_PASSPHRASE),
                "the fuzz passphrase",
            )));
        }
        for key in keys {
            let options = VaultOptions {
                compression: CompressionConfig::NONE,
                encryption: Some(EncryptionOptions {
                    cipher: header.algorithm,
                    key,
                }),
                ..VaultOptions::default()
            };
            if let Ok(vault) = Vault::open_with(Arc::clone(&backend), &options).await {
                assert_eq!(vault.codec().cipher(), Some(header.algorithm));
                assert!(vault.opened_slot().is_some());
            }
        }
    });
}

/// A lock object (`locks/<id>`) as `ldv` reads it from the vault.
pub fn lock(data: &[u8]) {
    let Ok(info) = serde_json::from_slice::<LockInfo>(data) else {
        return;
    };
    let now = SystemTime::now();
    let _ = info.stale_reason(now);
    let _ = info.stale_reason(UNIX_EPOCH);
    assert!(!info.describe().is_empty());
    let again = serde_json::to_vec(&info).expect("a lock serializes");
    let back: LockInfo = serde_json::from_slice(&again).expect("a lock re-parses");
    assert_eq!(back.id, info.id);
    assert_eq!(back.pid, info.pid);
}

/// A profile file (`config.toml`): parsed with its checks, then each profile resolved into
/// settings as `ldv --config FILE --profile NAME` does. Each size-looking string is also read
/// as a size.
pub fn profile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for word in text.split(['"', '\'', '=', '\n']) {
        if let Ok(size) = parse_size(word) {
            let digits = word.trim();
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                assert_eq!(Some(size.0), digits.parse().ok(), "{word:?}");
            }
        }
    }
    let path = profile_path();
    let Ok(loaded) = LoadedConfig::parse(&path, text.to_owned()) else {
        return;
    };
    if std::fs::write(&path, text).is_err() {
        return;
    }
    let mut names: Vec<Option<String>> = loaded.file.profiles.keys().cloned().map(Some).collect();
    names.push(None);
    for name in names {
        let global = GlobalArgs {
            profile: name.clone(),
            vault: None,
            config: Some(path.clone()),
            json: false,
            quiet: true,
            verbose: 0,
            no_progress: true,
            parallel: None,
            yes: false,
            lock_wait: Duration::from_secs(1),
            stats: false,
        };
        if let Ok(settings) = Settings::resolve(&global, false) {
            assert!(settings.parallel >= 1);
            if let Some(c) = settings.chunker {
                c.validate().expect("a resolved chunker is valid");
            }
            if let Some(Some(static_key)) = settings
                .encryption
                .as_ref()
                .map(|e| e.key.static_key.as_ref())
            {
                let _ = KeyBytes::parse(static_key.expose(), "encryption.key.static");
            }
        }
    }
}

fn profile_path() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("a temp dir for the fuzzed profile"));
    // One file per thread: the mutation test runs targets on several threads.
    let thread = format!("{:?}", std::thread::current().id());
    let tag: String = thread.chars().filter(char::is_ascii_digit).collect();
    dir.path().join(format!("config-{tag}.toml"))
}

/// An object name and a `NAME@VERSION` reference as a user types them, and the keys built from
/// them: a valid name can never step outside its directory, and every parse round-trips.
pub fn name(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if layout::validate_name(s).is_ok() {
        assert_key_shape(s);
        assert!(s.len() <= layout::MAX_NAME_LEN);
        let v = "20260101T000000000Z-00000000";
        let key = layout::manifest_key(s, v);
        assert!(key.len() <= MAX_KEY_LEN, "a manifest key outgrew the limit");
        assert_eq!(layout::parse_manifest_key(&key), Some((s, v)));
    }
    if layout::validate_new_name(s).is_ok() {
        let r = ObjectRef::parse(s).expect("a new name parses as a reference");
        assert_eq!((r.name.as_str(), r.version.as_deref()), (s, None));
    }
    if let Ok(r) = ObjectRef::parse(s) {
        layout::validate_name(&r.name).expect("a parsed reference has a valid name");
        if let Some(v) = &r.version {
            assert!(layout::is_version(v));
        }
        assert_eq!(r.to_string(), s);
        assert_eq!(ObjectRef::parse(&r.to_string()).ok(), Some(r));
    }
    if let Some((n, v)) = layout::parse_manifest_key(s) {
        assert!(layout::is_version(v));
        assert_eq!(layout::manifest_key(n, v), s);
    }
    if let Some(id) = ChunkId::from_key(s) {
        assert_eq!(id.key(), s);
    }
    if let Ok(id) = s.parse::<ChunkId>() {
        assert_eq!(id.to_hex(), s);
    }
}

/// What a valid key must look like: no empty, `.` or `..` segment, no leading `/`, no control
/// character; joined to a root it stays below that root.
fn assert_key_shape(key: &str) {
    assert!(!key.is_empty() && key.len() <= MAX_KEY_LEN);
    assert!(!key.starts_with('/'));
    assert!(!key.chars().any(char::is_control));
    for segment in key.split('/') {
        assert!(!matches!(segment, "" | "." | ".."), "segment {segment:?}");
    }
    let root = Path::new("/vault/root");
    let path = root.join(key);
    assert!(path.starts_with(root));
    for c in path
        .strip_prefix(root)
        .expect("below the root")
        .components()
    {
        assert!(matches!(c, Component::Normal(_)), "{key:?} makes {c:?}");
    }
}

/// A `--range` spec against an object size: `[size: u64 LE][spec]`.
pub fn range(data: &[u8]) {
    let (size, spec) = take_u64(data);
    let Ok(spec) = std::str::from_utf8(spec) else {
        return;
    };
    match crate::cli::commands::cat::parse_range(spec, size) {
        Ok((start, end)) => assert!(start <= end && end <= size, "{spec:?} gave {start}..{end}"),
        Err(e) => assert_eq!(e.kind(), crate::ErrorKind::ConfigurationError),
    }
}

/// A `--vault` URL (`file://`, `s3://`, `az://`, `gs://` or a path).
pub fn vault_url(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match parse_vault_url(s) {
        Ok(BackendConfig::Local(c)) => assert!(c.path.is_absolute()),
        Ok(BackendConfig::S3(c)) => assert!(!c.bucket.is_empty()),
        Ok(BackendConfig::Azure(c)) => assert!(!c.container_name.is_empty()),
        Ok(BackendConfig::Gcs(c)) => assert!(!c.bucket.is_empty()),
        Ok(BackendConfig::Memory) => {}
        Err(e) => assert_eq!(e.kind(), crate::ErrorKind::ConfigurationError, "{e}"),
    }
}

/// A storage key and a listing prefix, as every backend checks them.
pub fn backend_key(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    match crate::backend::validate_key(s) {
        Ok(()) => {
            assert_key_shape(s);
            crate::backend::validate_prefix(s).expect("a valid key is a valid prefix");
        }
        Err(e) => assert_eq!(e.kind(), crate::ErrorKind::InvalidKey),
    }
    if crate::backend::validate_prefix(s).is_ok()
        && let Some((complete, _)) = s.rsplit_once('/')
    {
        assert_key_shape(complete);
    }
}

/// Valid inputs for `target`, made with ldv's own writers: the seed corpus.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let texts: Vec<Vec<u8>> = [0usize, 1, 15, 100, 4096, 70_000]
        .iter()
        .map(|&n| {
            b"the quick brown fox jumps over the lazy dog 0123456789; "
                .iter()
                .copied()
                .cycle()
                .take(n)
                .collect()
        })
        .collect();
    let sized = |size: usize, body: &[u8]| {
        let mut out = u32::try_from(size)
            .expect("seed sizes are small")
            .to_le_bytes()
            .to_vec();
        out.extend_from_slice(body);
        out
    };
    let compressed = |algorithm: Algorithm| -> Vec<Vec<u8>> {
        let codec = Codec::new(
            CompressionConfig {
                algorithm,
                level: algorithm.default_level(),
                min_size: 0,
            },
            None,
        );
        texts
            .iter()
            .filter(|t| !t.is_empty())
            .map(|t| {
                let stored = codec.encode_chunk(codec.chunk_id(t), &PlainChunk::copy_from(t));
                sized(t.len(), &stored[HEADER_LEN..])
            })
            .collect()
    };
    match target {
        "frame" => [
            Algorithm::None,
            Algorithm::Gzip,
            Algorithm::Zstd,
            Algorithm::Lz4,
        ]
        .into_iter()
        .flat_map(|algorithm| {
            let codec = Codec::new(
                CompressionConfig {
                    algorithm,
                    level: algorithm.default_level(),
                    min_size: 0,
                },
                None,
            );
            texts
                .iter()
                .map(|t| {
                    let stored = codec.encode_chunk(codec.chunk_id(t), &PlainChunk::copy_from(t));
                    sized(t.len(), &stored)
                })
                .collect::<Vec<_>>()
        })
        .collect(),
        "frame_zstd" => compressed(Algorithm::Zstd),
        "frame_lz4" => compressed(Algorithm::Lz4),
        "frame_gzip" => compressed(Algorithm::Gzip),
        "frame_sealed" => {
            let mut out = Vec::new();
            for (mode, cipher) in [(0u8, Cipher::Aes256Gcm), (2, Cipher::ChaCha20Poly1305)] {
                let codec = sealed_codec(cipher);
                for t in &texts[..4] {
                    // The targets open every frame as chunk [7; 32].
                    let stored = codec.encode_chunk(ChunkId([7; 32]), &PlainChunk::copy_from(t));
                    let mut seed = vec![mode];
                    seed.extend(sized(t.len(), &stored));
                    out.push(seed);
                    let mut seed = vec![mode | 1];
                    seed.extend(sized(t.len(), &[0]));
                    seed.extend_from_slice(t);
                    out.push(seed);
                }
                for algorithm in [Algorithm::Gzip, Algorithm::Zstd, Algorithm::Lz4] {
                    for body in compressed(algorithm).into_iter().take(3) {
                        let (size, payload) = take_u32(&body);
                        let mut seed = vec![mode | 1];
                        seed.extend(sized(size as usize, &[algorithm_code(algorithm)]));
                        seed.extend_from_slice(payload);
                        out.push(seed);
                    }
                }
            }
            out
        }
        "frame_round_trip" => texts[..5]
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut seed = vec![(i * 5) as u8];
                seed.extend_from_slice(t);
                seed
            })
            .collect(),
        "manifest" => seed_manifests().iter().map(Manifest::to_bytes).collect(),
        "manifest_sealed" => {
            let (name, version) = layout::parse_manifest_key(MANIFEST_KEY).expect("a key");
            let mut out = Vec::new();
            for mut m in seed_manifests() {
                m.name = name.into();
                m.version = version.into();
                let json = m.to_bytes();
                for (mode, cipher) in [(0u8, Cipher::Aes256Gcm), (2, Cipher::ChaCha20Poly1305)] {
                    let mut sealed = vec![mode];
                    sealed.extend_from_slice(
                        &sealed_codec(cipher).encode_manifest(MANIFEST_KEY, json.clone()),
                    );
                    out.push(sealed);
                    let mut plain = vec![mode | 1];
                    plain.extend_from_slice(&json);
                    out.push(plain);
                }
            }
            out
        }
        "descriptor" => seed_descriptors(),
        "lock" => [LockKind::Shared, LockKind::Exclusive]
            .into_iter()
            .map(|kind| {
                let info = LockInfo {
                    id: "20260101T000000000Z-0123456789abcdef".into(),
                    kind,
                    host: "fuzz-host".into(),
                    pid: 4242,
                    command: "put".into(),
                    since: UNIX_EPOCH + Duration::from_millis(1_767_225_600_123),
                    refreshed: UNIX_EPOCH + Duration::from_millis(1_767_225_900_456),
                    process_start: (kind == LockKind::Shared).then_some(123_456),
                };
                serde_json::to_vec(&info).expect("a lock serializes")
            })
            .collect(),
        "profile" => SEED_PROFILES
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect(),
        "name" => [
            "a",
            "datasets/2026-11/train.parquet",
            "models/llama@20261127T081108971Z-c0d69473",
            "user@host/file",
            "üñí/ç",
            "a.b/..c",
            "manifests/a/b/20261127T081108971Z-c0d69473",
            "chunks/ab/ab00000000000000000000000000000000000000000000000000000000000000",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
        "range" => [
            (100u64, "0-9"),
            (100, "90-"),
            (100, "-10"),
            (0, "5-2"),
            (1 << 40, " 7 - 1099511627775 "),
        ]
        .iter()
        .map(|(size, spec)| {
            let mut seed = size.to_le_bytes().to_vec();
            seed.extend_from_slice(spec.as_bytes());
            seed
        })
        .collect(),
        "vault_url" => [
            "file:///tmp/vault",
            "s3://bucket/team/a",
            "az://container/prefix",
            "gs://bucket/p",
            "relative/path",
            "/abs/path",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
        "backend_key" => [
            "ldv-vault.json",
            "chunks/ab/ab00000000000000000000000000000000000000000000000000000000000000",
            "manifests/a/b/20261127T081108971Z-c0d69473",
            "locks/20260101T000000000Z-0123456789abcdef",
            "manifests/partial/pre",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
        _ => Vec::new(),
    }
}

fn algorithm_code(algorithm: Algorithm) -> u8 {
    match algorithm {
        Algorithm::None => 0,
        Algorithm::Gzip => 1,
        Algorithm::Zstd => 2,
        Algorithm::Lz4 => 3,
    }
}

fn seed_manifests() -> Vec<Manifest> {
    let created = UNIX_EPOCH + Duration::from_millis(1_767_225_600_123);
    let base = Manifest {
        format: crate::store::manifest::MANIFEST_FORMAT,
        name: "datasets/train.jsonl".into(),
        version: "20260101T000000123Z-0a1b2c3d".into(),
        size: 0,
        sha256: hex::encode(ChunkId::of(b"").0),
        chunker: ChunkerConfig::default(),
        created_at: created,
        content_type: None,
        metadata: BTreeMap::new(),
        chunks: Vec::new(),
    };
    let mut two = base.clone();
    two.size = 5_000_000;
    two.content_type = Some("application/jsonl".into());
    two.metadata.insert("source".into(), "fuzz".into());
    two.chunker = ChunkerConfig::Fixed {
        size: 4 << 20,
        min_chunk_threshold: 1 << 20,
    };
    two.chunks = vec![
        ChunkRef {
            offset: 0,
            size: 4 << 20,
            id: ChunkId::of(b"one"),
            stored: Some((4 << 20) + 7),
        },
        ChunkRef {
            offset: 4 << 20,
            size: 5_000_000 - (4 << 20),
            id: ChunkId::of(b"two"),
            stored: None,
        },
    ];
    vec![base, two]
}

/// Descriptors as `ldv init` writes them: plain, encrypted with a raw-key slot (each cipher), and
/// with a passphrase slot added whose KDF is cheap enough for the fuzzer to run.
fn seed_descriptors() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    block_on(async {
        let plain = Arc::new(MemoryBackend::new()) as DynBackend;
        Vault::init(Arc::clone(&plain), ChunkerConfig::default())
            .await
            .expect("a plain vault inits");
        out.push(
            plain
                .get(layout::DESCRIPTOR_KEY)
                .await
                .expect("written")
                .to_vec(),
        );
        for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
            let backend = Arc::new(MemoryBackend::new()) as DynBackend;
            let key: Arc<dyn KeyProvider> =
                Arc::new(RawKey::new(KeyBytes::new(TEST_KEY), "the fuzz key"));
            let options = VaultOptions {
                compression: CompressionConfig::NONE,
                encryption: Some(EncryptionOptions { cipher, key }),
                ..VaultOptions::default()
            };
            Vault::init_with(Arc::clone(&backend), ChunkerConfig::default(), &options)
                .await
                .expect("an encrypted vault inits");
            let raw = backend.get(layout::DESCRIPTOR_KEY).await.expect("written");
            out.push(raw.to_vec());
            // A passphrase slot for the same vault key, with a KDF the fuzzer can afford.
            let mut d: Descriptor = serde_json::from_slice(&raw).expect("parses");
            let header = d.encryption.as_mut().expect("encrypted");
            let slot = &header.slots[0];
            let SlotKind::RawKey { salt } = &slot.kind else {
                continue;
            };
            let kek = crypto::raw_wrapping_key(&KeyBytes::new(TEST_KEY), salt, &slot.id)
                .expect("the slot's salt is valid");
            let vault_key = crypto::unwrap(&kek, &slot.wrapped, &d.vault_id, &slot.id)
                .expect("the fuzz key opens its slot");
            let mut kdf = KdfParams::new();
            (kdf.m_cost_kib, kdf.t_cost, kdf.p_cost) = (64, 1, 1);
            let id = "0fa55a5e".to_string();
            let pass = kdf
                .derive(TEST_PASSPHRASE.as_bytes(), &id)
                .expect("cheap KDF parameters are valid");
            let wrapped = crypto::wrap(&pass, &vault_key, &d.vault_id, &id);
            header.slots.push(KeySlot {
                id,
                kind: SlotKind::Passphrase { kdf },
                wrapped,
                created_at: "2026-01-01T00:00:00Z".into(),
            });
            out.push(serde_json::to_vec_pretty(&d).expect("serializes"));
        }
    });
    out
}

const SEED_PROFILES: &[&str] = &[
    r#"default_profile = "prod"
[profiles.prod]
backend     = { type = "local", path = "/tmp/ldv-fuzz-vault" }
chunking    = { mode = "cdc", min = "1MiB", avg = "4MiB", max = "16MiB" }
compression = { algorithm = "zstd", level = 3, min_size = "4KiB" }
encryption  = { algorithm = "aes-256-gcm", key = { env = "LDV_PASSPHRASE" } }
retry       = { max_retries = 5, initial_backoff = "100ms", max_backoff = "20s", multiplier = 2.0, jitter = true }
timeouts    = { connect = "10s", read = "300s", write = "300s" }
transfer    = { parallel = 8 }
"#,
    r#"[profiles.s3]
backend = { type = "s3", bucket = "ml-vault", prefix = "team-a/", region = "us-east-1", endpoint = "http://127.0.0.1:9000", path_style = true }
chunking = { mode = "fixed", size = "64MiB" }
compression = { algorithm = "gzip", level = 6 }
[profiles.az]
backend = { type = "azure", container = "vault", prefix = "p" }
encryption = { algorithm = "chacha20-poly1305", key = { static = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a" } }
[profiles.gcs]
backend = { type = "gcs", bucket = "b", prefix = "x/" }
compression = { algorithm = "lz4" }
"#,
    r#"[profiles.minio]
backend = { type = "minio", bucket = "b", endpoint = "http://127.0.0.1:9000", access_key_id = "minio", secret_access_key = "minio123" }
encryption = { key = { kms = "alias/ldv", region = "us-east-1" } }
"#,
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Every seed of every target is a valid input its target accepts without a finding, and
    /// every target has seeds.
    #[test]
    fn every_target_has_seeds_that_pass() {
        for (name, target) in TARGETS {
            let seeds = seeds(name);
            assert!(!seeds.is_empty(), "{name} has no seeds");
            for seed in seeds {
                target(&seed);
            }
        }
    }
}
