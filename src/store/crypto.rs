//! Client-side encryption of an encrypted vault (DESIGN §3), after restic, kopia and age:
//!
//! - One random 256-bit **vault key** per vault. It is never stored in the clear: the descriptor
//!   holds it wrapped once per key slot (a passphrase through Argon2id, a raw key, or an AWS KMS
//!   key), so adding or changing a key re-wraps 32 bytes and never re-encrypts data.
//! - From the vault key, HKDF-SHA-256 (salted with the vault id) derives the **chunk-id key**:
//!   chunk ids are HMAC-SHA-256 of the plaintext under it, so no stored name is a plaintext hash;
//!   and for each chunk (or manifest) its own **subkey** from the chunk id (or the manifest's
//!   key), so a random 96-bit nonce is used at most once per subkey and the random-nonce limit
//!   of AES-GCM never binds.
//! - Every sealed frame authenticates its header and what it must be (the chunk id, or the
//!   manifest's storage key) as associated data, so a frame moved to another name, or a header
//!   byte changed, fails to open.

use std::fmt;

use aws_lc_rs::aead::{self, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{hkdf, hmac};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, ErrorKind, Result};

/// Length of keys and of the vault key.
pub const KEY_LEN: usize = 32;
/// Length of an AEAD tag.
pub const TAG_LEN: usize = 16;
/// Bytes a sealed payload adds: nonce and tag.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// An AEAD of the seed's EncryptionConfig.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Cipher {
    /// AES-256 in Galois/counter mode (the default: hardware AES makes it the fastest).
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
    /// ChaCha20-Poly1305.
    #[serde(rename = "chacha20-poly1305")]
    ChaCha20Poly1305,
}

impl Cipher {
    /// The cipher byte of the frame header.
    pub fn code(self) -> u8 {
        match self {
            Cipher::Aes256Gcm => 1,
            Cipher::ChaCha20Poly1305 => 2,
        }
    }

    /// The cipher with frame code `code`.
    pub fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Cipher::Aes256Gcm),
            2 => Some(Cipher::ChaCha20Poly1305),
            _ => None,
        }
    }

    /// The name used in profiles and descriptors.
    pub fn name(self) -> &'static str {
        match self {
            Cipher::Aes256Gcm => "aes-256-gcm",
            Cipher::ChaCha20Poly1305 => "chacha20-poly1305",
        }
    }

    fn algorithm(self) -> &'static aead::Algorithm {
        match self {
            Cipher::Aes256Gcm => &aead::AES_256_GCM,
            Cipher::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }
}

impl fmt::Display for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// 32 secret bytes (the vault key, or a key that wraps it), wiped on drop and never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyBytes(Zeroizing<[u8; KEY_LEN]>);

impl KeyBytes {
    /// Wraps `bytes`.
    pub fn new(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A fresh random key.
    pub fn random() -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        random_fill(&mut bytes[..]);
        Self(bytes)
    }

    /// Parses a key given as 64 hex digits or as base64 of 32 bytes; `what` names where it came
    /// from (never the key itself).
    pub fn parse(text: &str, what: &str) -> Result<Self> {
        let text = text.trim();
        let mut decoded = Zeroizing::new(Vec::new());
        if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            *decoded = hex::decode(text).unwrap_or_default();
        } else if let Ok(bytes) = B64.decode(text) {
            *decoded = bytes;
        }
        let bytes: [u8; KEY_LEN] = decoded.as_slice().try_into().map_err(|_| {
            Error::config(format!(
                "{what} is not a 256-bit key (64 hex digits or base64 of 32 bytes)"
            ))
        })?;
        Ok(Self::new(bytes))
    }

    /// The secret bytes.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyBytes(<redacted>)")
    }
}

/// Fills `buf` from the operating system's random source.
pub fn random_fill(buf: &mut [u8]) {
    aws_lc_rs::rand::fill(buf).expect("the system random source never fails once the OS is up");
}

/// The keys of an open encrypted vault, derived from its vault key.
pub struct VaultKeys {
    cipher: Cipher,
    prk: hkdf::Prk,
    chunk_id_key: hmac::Key,
}

impl fmt::Debug for VaultKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VaultKeys({}, <redacted>)", self.cipher)
    }
}

/// HKDF output length for a 32-byte key.
struct Len32;

impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        KEY_LEN
    }
}

impl VaultKeys {
    /// Derives the keys of the vault `vault_id` from its vault key.
    pub fn derive(cipher: Cipher, vault_key: &KeyBytes, vault_id: &str) -> Self {
        let salt = hkdf::Salt::new(
            hkdf::HKDF_SHA256,
            format!("ldv vault {vault_id}").as_bytes(),
        );
        let prk = salt.extract(vault_key.expose());
        let mut id_key = Zeroizing::new([0u8; KEY_LEN]);
        expand(&prk, &[b"ldv chunk-id key v1"], &mut id_key[..]);
        let chunk_id_key = hmac::Key::new(hmac::HMAC_SHA256, &id_key[..]);
        Self {
            cipher,
            prk,
            chunk_id_key,
        }
    }

    /// The vault's cipher.
    pub fn cipher(&self) -> Cipher {
        self.cipher
    }

    /// The keyed chunk id of `data`: HMAC-SHA-256 under the chunk-id key.
    pub fn chunk_id(&self, data: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(&self.chunk_id_key, data);
        tag.as_ref().try_into().expect("HMAC-SHA-256 is 32 bytes")
    }

    fn subkey(&self, purpose: &[u8], context: &[u8]) -> LessSafeKey {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        expand(&self.prk, &[purpose, context], &mut key[..]);
        let unbound = UnboundKey::new(self.cipher.algorithm(), &key[..])
            .expect("a 32-byte key fits both AEADs");
        LessSafeKey::new(unbound)
    }

    /// Seals `out[start..]` in place under the subkey of (`purpose`, `context`), where `out` holds
    /// the frame so far: `aad` (the header) is authenticated with `context`; a fresh random nonce
    /// is written at `out[start - NONCE_LEN..start]` and the tag appended.
    pub fn seal(
        &self,
        purpose: &[u8],
        context: &[u8],
        aad: &[u8],
        out: &mut Vec<u8>,
        start: usize,
    ) {
        let key = self.subkey(purpose, context);
        let mut nonce = [0u8; NONCE_LEN];
        random_fill(&mut nonce);
        out[start - NONCE_LEN..start].copy_from_slice(&nonce);
        let aad = [aad, context].concat();
        let tag = key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut out[start..],
            )
            .expect("sealing fails only for inputs over 64 GiB");
        out.extend_from_slice(tag.as_ref());
    }

    /// Opens `sealed` (nonce, ciphertext, tag) in place and returns the plaintext's length, or
    /// `None` if it was not sealed by this vault for (`purpose`, `context`) with header `aad`.
    pub fn open(
        &self,
        purpose: &[u8],
        context: &[u8],
        aad: &[u8],
        sealed: &mut [u8],
    ) -> Option<std::ops::Range<usize>> {
        if sealed.len() < SEAL_OVERHEAD {
            return None;
        }
        let key = self.subkey(purpose, context);
        let (nonce, rest) = sealed.split_at_mut(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let aad = [aad, context].concat();
        let plain = key.open_in_place(nonce, Aad::from(aad), rest).ok()?;
        Some(NONCE_LEN..NONCE_LEN + plain.len())
    }
}

fn expand(prk: &hkdf::Prk, info: &[&[u8]], out: &mut [u8]) {
    prk.expand(info, Len32)
        .and_then(|okm| okm.fill(out))
        .expect("HKDF-SHA-256 can always produce 32 bytes");
}

// ---------------------------------------------------------------------------------------------
// Key slots: the vault key wrapped under each key that may open the vault
// ---------------------------------------------------------------------------------------------

/// The encryption header of a vault descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionHeader {
    /// The AEAD of every sealed frame.
    pub algorithm: Cipher,
    /// How chunk ids are made (`hmac-sha256`).
    pub chunk_id: String,
    /// The vault key wrapped once per key that opens the vault.
    pub slots: Vec<KeySlot>,
}

/// The vault key wrapped under one key. (Not `deny_unknown_fields`: serde cannot combine it
/// with the flattened kind.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySlot {
    /// Short random id, shown by `ldv key list`.
    pub id: String,
    /// What unwraps this slot.
    #[serde(flatten)]
    pub kind: SlotKind,
    /// The wrapped vault key (base64).
    pub wrapped: String,
    /// When the slot was added (RFC 3339).
    pub created_at: String,
}

/// What kind of key unwraps a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SlotKind {
    /// A passphrase stretched by a memory-hard KDF into a wrapping key.
    Passphrase {
        /// KDF parameters and salt.
        kdf: KdfParams,
    },
    /// A raw 256-bit key (from an environment variable or the profile).
    RawKey {
        /// Salt of the HKDF that turns the raw key into a wrapping key (base64).
        salt: String,
    },
    /// AWS KMS envelope encryption: `wrapped` is KMS ciphertext of the vault key.
    Kms {
        /// The KMS key id or ARN that encrypted the vault key.
        key_id: String,
    },
}

impl SlotKind {
    /// A short name for listings.
    pub fn name(&self) -> &'static str {
        match self {
            SlotKind::Passphrase { .. } => "passphrase",
            SlotKind::RawKey { .. } => "raw-key",
            SlotKind::Kms { .. } => "kms",
        }
    }
}

/// Argon2id parameters of a passphrase slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KdfParams {
    /// Always `argon2id`.
    pub algorithm: String,
    /// Passes over memory.
    pub t_cost: u32,
    /// Memory in KiB.
    pub m_cost_kib: u32,
    /// Lanes.
    pub p_cost: u32,
    /// Random salt (base64).
    pub salt: String,
}

/// Argon2id defaults for new passphrase slots: t=3, m=64 MiB, p=4.
pub const KDF_T: u32 = 3;
/// Argon2id memory for new slots, KiB.
pub const KDF_M_KIB: u32 = 64 * 1024;
/// Argon2id lanes for new slots.
pub const KDF_P: u32 = 4;
/// The most memory a descriptor may ask the KDF for (128 MiB, twice what ldv writes), so a
/// hostile descriptor cannot exhaust memory; also the bounds on passes and lanes (the passes
/// bound the time: at most 8 passes over 128 MiB, about 5 times the default work).
pub const KDF_MAX_M_KIB: u32 = 128 * 1024;
const KDF_MAX_T: u32 = 8;
const KDF_MAX_P: u32 = 16;
/// The most key slots a vault descriptor may hold.
pub const MAX_SLOTS: usize = 32;
/// The most KDF work (passes × KiB) all passphrase slots of a descriptor may ask for together:
/// as much as 8 slots with the defaults. Opening with a wrong passphrase runs every slot's KDF,
/// so this bounds the time a descriptor can cost (a few seconds), as `KDF_MAX_M_KIB` bounds
/// its memory.
pub const MAX_KDF_WORK: u64 = 8 * KDF_T as u64 * KDF_M_KIB as u64;

impl KdfParams {
    /// Fresh parameters with a random salt.
    pub fn new() -> Self {
        let mut salt = [0u8; 16];
        random_fill(&mut salt);
        Self {
            algorithm: "argon2id".into(),
            t_cost: KDF_T,
            m_cost_kib: KDF_M_KIB,
            p_cost: KDF_P,
            salt: B64.encode(salt),
        }
    }

    /// Checks the algorithm and the parameters against fixed bounds (t 1..=8, m 8 KiB..=128 MiB,
    /// p 1..=16), before any work: the reason when they are out.
    pub fn check_bounds(&self) -> std::result::Result<(), String> {
        if self.algorithm != "argon2id" {
            return Err(format!("unknown KDF {:?}", self.algorithm));
        }
        if !(1..=KDF_MAX_T).contains(&self.t_cost)
            || !(8..=KDF_MAX_M_KIB).contains(&self.m_cost_kib)
            || !(1..=KDF_MAX_P).contains(&self.p_cost)
            || self.m_cost_kib < 8 * self.p_cost
        {
            return Err(format!(
                "KDF parameters t={} m={} KiB p={} are outside the accepted bounds (t 1..={KDF_MAX_T}, m 8 KiB..=128 MiB, p 1..={KDF_MAX_P})",
                self.t_cost, self.m_cost_kib, self.p_cost
            ));
        }
        Ok(())
    }

    /// The work these parameters ask for: passes × KiB of memory.
    pub fn work(&self) -> u64 {
        u64::from(self.t_cost) * u64::from(self.m_cost_kib)
    }

    /// Stretches `passphrase` into a wrapping key; parameters read from storage are checked
    /// against fixed bounds first.
    pub fn derive(&self, passphrase: &[u8], slot: &str) -> Result<KeyBytes> {
        let bad = |why: String| Error::config(format!("key slot {slot}: {why}"));
        self.check_bounds().map_err(bad)?;
        let salt = B64
            .decode(&self.salt)
            .ok()
            .filter(|s| (16..=64).contains(&s.len()))
            .ok_or_else(|| bad("KDF salt is not 16 to 64 bytes of base64".into()))?;
        let params = argon2::Params::new(self.m_cost_kib, self.t_cost, self.p_cost, Some(KEY_LEN))
            .map_err(|e| bad(format!("KDF parameters rejected: {e}")))?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        argon
            .hash_password_into(passphrase, &salt, &mut out[..])
            .map_err(|e| bad(format!("KDF failed: {e}")))?;
        Ok(KeyBytes(out))
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::new()
    }
}

/// A wrapping key for raw-key slots: HKDF of the raw key with the slot's salt.
pub fn raw_wrapping_key(raw: &KeyBytes, salt_b64: &str, slot: &str) -> Result<KeyBytes> {
    let salt = B64
        .decode(salt_b64)
        .ok()
        .filter(|s| (16..=64).contains(&s.len()))
        .ok_or_else(|| Error::config(format!("key slot {slot}: salt is not 16 to 64 bytes")))?;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, &salt).extract(raw.expose());
    let mut out = [0u8; KEY_LEN];
    expand(&prk, &[b"ldv raw-key wrap v1"], &mut out);
    let key = KeyBytes::new(out);
    out.zeroize();
    Ok(key)
}

/// A fresh random salt for a raw-key slot (base64).
pub fn new_salt() -> String {
    let mut salt = [0u8; 16];
    random_fill(&mut salt);
    B64.encode(salt)
}

/// Wraps the vault key under `kek` for the slot `slot_id` of vault `vault_id` (AES-256-GCM;
/// the slot and vault ids are authenticated, so a slot cannot be moved between vaults).
pub fn wrap(kek: &KeyBytes, vault_key: &KeyBytes, vault_id: &str, slot_id: &str) -> String {
    let key =
        LessSafeKey::new(UnboundKey::new(&aead::AES_256_GCM, kek.expose()).expect("32-byte key"));
    let mut nonce = [0u8; NONCE_LEN];
    random_fill(&mut nonce);
    let mut out = Zeroizing::new(Vec::with_capacity(SEAL_OVERHEAD + KEY_LEN));
    out.extend_from_slice(&nonce);
    out.extend_from_slice(vault_key.expose());
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(wrap_aad(vault_id, slot_id)),
            &mut out[NONCE_LEN..],
        )
        .expect("sealing 32 bytes cannot fail");
    out.extend_from_slice(tag.as_ref());
    B64.encode(&out[..])
}

/// Unwraps a vault key wrapped by [`wrap`]; `None` if `kek` is not the key that wrapped it.
pub fn unwrap(kek: &KeyBytes, wrapped: &str, vault_id: &str, slot_id: &str) -> Option<KeyBytes> {
    let mut sealed = Zeroizing::new(B64.decode(wrapped).ok()?);
    if sealed.len() != SEAL_OVERHEAD + KEY_LEN {
        return None;
    }
    let key = LessSafeKey::new(UnboundKey::new(&aead::AES_256_GCM, kek.expose()).ok()?);
    let (nonce, rest) = sealed.split_at_mut(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let plain = key
        .open_in_place(nonce, Aad::from(wrap_aad(vault_id, slot_id)), rest)
        .ok()?;
    let bytes: [u8; KEY_LEN] = (&*plain).try_into().ok()?;
    Some(KeyBytes::new(bytes))
}

fn wrap_aad(vault_id: &str, slot_id: &str) -> Vec<u8> {
    format!("ldv key slot v1\0{vault_id}\0{slot_id}").into_bytes()
}

/// A new random slot id.
pub fn new_slot_id() -> String {
    let mut id = [0u8; 4];
    random_fill(&mut id);
    hex::encode(id)
}

/// The error for a key that opens no slot of the vault at `location` (exit 5).
pub fn wrong_key(location: &str, tried: &str) -> Error {
    Error::new(
        ErrorKind::PermissionDenied,
        format!(
            "wrong key for the encrypted vault at {location}: {tried} opens none of its key slots"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(cipher: Cipher) -> VaultKeys {
        VaultKeys::derive(cipher, &KeyBytes::new([7; 32]), "v1")
    }

    #[test]
    fn seal_and_open_round_trip_and_bind_context_and_header() {
        for cipher in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
            let k = keys(cipher);
            let mut out = b"HDR".to_vec();
            out.resize(3 + NONCE_LEN, 0);
            out.extend_from_slice(b"secret data");
            k.seal(b"chunk", b"ctx", b"HDR", &mut out, 3 + NONCE_LEN);
            assert!(!out.windows(6).any(|w| w == b"secret"));
            let mut sealed = out[3..].to_vec();
            let r = k.open(b"chunk", b"ctx", b"HDR", &mut sealed).unwrap();
            assert_eq!(&sealed[r], b"secret data");
            for (purpose, ctx, aad) in [
                (&b"chunk"[..], &b"ctx"[..], &b"HDX"[..]),
                (b"chunk", b"ctY", b"HDR"),
                (b"manifest", b"ctx", b"HDR"),
            ] {
                let mut sealed = out[3..].to_vec();
                assert!(k.open(purpose, ctx, aad, &mut sealed).is_none());
            }
            let other = VaultKeys::derive(cipher, &KeyBytes::new([8; 32]), "v1");
            let mut sealed = out[3..].to_vec();
            assert!(other.open(b"chunk", b"ctx", b"HDR", &mut sealed).is_none());
        }
    }

    #[test]
    fn chunk_ids_are_keyed() {
        let a = keys(Cipher::Aes256Gcm).chunk_id(b"x");
        let b = VaultKeys::derive(Cipher::Aes256Gcm, &KeyBytes::new([7; 32]), "v2").chunk_id(b"x");
        assert_ne!(a, b);
        use sha2::Digest;
        assert_ne!(&a[..], &sha2::Sha256::digest(b"x")[..]);
    }

    #[test]
    fn wrapping_needs_the_same_key_vault_and_slot() {
        let vk = KeyBytes::random();
        let kek = KeyBytes::random();
        let w = wrap(&kek, &vk, "v", "s");
        assert_eq!(unwrap(&kek, &w, "v", "s"), Some(vk));
        assert!(unwrap(&KeyBytes::random(), &w, "v", "s").is_none());
        assert!(unwrap(&kek, &w, "v2", "s").is_none());
        assert!(unwrap(&kek, &w, "v", "s2").is_none());
    }

    #[test]
    fn hostile_kdf_parameters_are_refused_before_any_work() {
        let mut p = KdfParams::new();
        p.m_cost_kib = 4 * 1024 * 1024;
        let e = p.derive(b"pw", "s").unwrap_err();
        assert!(e.message().contains("outside the accepted bounds"), "{e}");
        let mut p = KdfParams::new();
        p.t_cost = 1000;
        assert!(p.derive(b"pw", "s").is_err());
    }

    #[test]
    fn passphrase_kdf_is_deterministic_per_salt() {
        let mut p = KdfParams::new();
        p.m_cost_kib = 64;
        p.t_cost = 1;
        p.p_cost = 1;
        assert_eq!(p.derive(b"pw", "s").unwrap(), p.derive(b"pw", "s").unwrap());
        assert_ne!(
            p.derive(b"pw", "s").unwrap(),
            p.derive(b"pw2", "s").unwrap()
        );
    }

    #[test]
    fn keys_parse_from_hex_or_base64_and_never_print() {
        let hex_key = "11".repeat(32);
        let k = KeyBytes::parse(&hex_key, "$K").unwrap();
        assert_eq!(k.expose(), &[0x11; 32]);
        assert_eq!(KeyBytes::parse(&B64.encode([0x11; 32]), "$K").unwrap(), k);
        let e = KeyBytes::parse("short", "$K").unwrap_err();
        assert!(e.message().contains("$K") && !e.message().contains("short"));
        assert_eq!(format!("{k:?}"), "KeyBytes(<redacted>)");
    }
}
