//! Key providers (the seed's KeyProvider): what turns a user's key into the vault key of an
//! encrypted vault. Each wraps the vault key into a slot of the descriptor and unwraps it again:
//! a passphrase through Argon2id, a raw 256-bit key through HKDF, an AWS KMS key by envelope
//! encryption (GenerateDataKey to create, Encrypt to add, Decrypt to open).
//!
//! Where the secret comes from (an environment variable, a terminal prompt, the profile) is the
//! CLI's business; providers hold it redacted and describe themselves without it.

use std::fmt;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::crypto::{self, KdfParams, KeyBytes, KeySlot, SlotKind};
use crate::config::Secret;
use crate::error::{Error, ErrorKind, Result};

/// A key that can open (and be added to) an encrypted vault.
#[async_trait]
pub trait KeyProvider: Send + Sync + fmt::Debug {
    /// Names the key for messages, never its value (e.g. "the passphrase in $LDV_PASSPHRASE").
    fn describe(&self) -> String;

    /// A new slot holding `vault_key` wrapped under this key.
    async fn wrap(&self, vault_key: &KeyBytes, vault_id: &str) -> Result<KeySlot>;

    /// The vault key held in `slot`, or `None` when this key does not open it.
    async fn unwrap(&self, slot: &KeySlot, vault_id: &str) -> Result<Option<KeyBytes>>;

    /// A fresh vault key and its slot, for a new vault.
    async fn generate(&self, vault_id: &str) -> Result<(KeyBytes, KeySlot)> {
        let key = KeyBytes::random();
        let slot = self.wrap(&key, vault_id).await?;
        Ok((key, slot))
    }
}

fn new_slot(kind: SlotKind, wrapped: String, id: String) -> KeySlot {
    KeySlot {
        id,
        kind,
        wrapped,
        created_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
    }
}

/// A passphrase, stretched by Argon2id (t=3, m=64 MiB, p=4) with a random salt per slot.
pub struct PassphraseKey {
    passphrase: Secret,
    source: String,
}

impl PassphraseKey {
    /// A passphrase obtained from `source` (e.g. "$LDV_PASSPHRASE", "the terminal").
    pub fn new(passphrase: Secret, source: impl Into<String>) -> Self {
        Self {
            passphrase,
            source: source.into(),
        }
    }
}

impl fmt::Debug for PassphraseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PassphraseKey({}, <redacted>)", self.source)
    }
}

#[async_trait]
impl KeyProvider for PassphraseKey {
    fn describe(&self) -> String {
        format!("the passphrase from {}", self.source)
    }

    async fn wrap(&self, vault_key: &KeyBytes, vault_id: &str) -> Result<KeySlot> {
        let kdf = KdfParams::new();
        let id = crypto::new_slot_id();
        let kek = stretch(&kdf, &self.passphrase, &id).await?;
        let wrapped = crypto::wrap(&kek, vault_key, vault_id, &id);
        Ok(new_slot(SlotKind::Passphrase { kdf }, wrapped, id))
    }

    async fn unwrap(&self, slot: &KeySlot, vault_id: &str) -> Result<Option<KeyBytes>> {
        let SlotKind::Passphrase { kdf } = &slot.kind else {
            return Ok(None);
        };
        let kek = stretch(kdf, &self.passphrase, &slot.id).await?;
        Ok(crypto::unwrap(&kek, &slot.wrapped, vault_id, &slot.id))
    }
}

/// Runs the memory-hard KDF on a blocking thread.
async fn stretch(kdf: &KdfParams, passphrase: &Secret, slot: &str) -> Result<KeyBytes> {
    let (kdf, passphrase, slot) = (kdf.clone(), passphrase.clone(), slot.to_owned());
    tokio::task::spawn_blocking(move || kdf.derive(passphrase.expose().as_bytes(), &slot))
        .await
        .map_err(|e| Error::new(ErrorKind::BackendError, format!("KDF task failed: {e}")))?
}

/// A raw 256-bit key (from an environment variable, or written in the profile).
pub struct RawKey {
    key: KeyBytes,
    source: String,
}

impl RawKey {
    /// A raw key obtained from `source`.
    pub fn new(key: KeyBytes, source: impl Into<String>) -> Self {
        Self {
            key,
            source: source.into(),
        }
    }
}

impl fmt::Debug for RawKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawKey({}, <redacted>)", self.source)
    }
}

#[async_trait]
impl KeyProvider for RawKey {
    fn describe(&self) -> String {
        format!("the key from {}", self.source)
    }

    async fn wrap(&self, vault_key: &KeyBytes, vault_id: &str) -> Result<KeySlot> {
        let salt = crypto::new_salt();
        let id = crypto::new_slot_id();
        let kek = crypto::raw_wrapping_key(&self.key, &salt, &id)?;
        let wrapped = crypto::wrap(&kek, vault_key, vault_id, &id);
        Ok(new_slot(SlotKind::RawKey { salt }, wrapped, id))
    }

    async fn unwrap(&self, slot: &KeySlot, vault_id: &str) -> Result<Option<KeyBytes>> {
        let SlotKind::RawKey { salt } = &slot.kind else {
            return Ok(None);
        };
        let kek = crypto::raw_wrapping_key(&self.key, salt, &slot.id)?;
        Ok(crypto::unwrap(&kek, &slot.wrapped, vault_id, &slot.id))
    }
}

/// Where to reach AWS KMS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KmsConfig {
    /// The key id, ARN or alias.
    pub key_id: String,
    /// Region (else the AWS chain's).
    pub region: Option<String>,
    /// Endpoint URL (else AWS's, or `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
}

/// Envelope encryption under an AWS KMS key: the vault key is a KMS data key, stored as KMS
/// ciphertext and unwrapped with Decrypt, so it is only readable by principals KMS allows.
pub struct KmsKey {
    client: aws_sdk_kms::Client,
    config: KmsConfig,
}

impl fmt::Debug for KmsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KmsKey({})", self.config.key_id)
    }
}

impl KmsKey {
    /// A client for `config`, with credentials from the AWS chain.
    pub async fn new(config: KmsConfig) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &config.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        let shared = loader.load().await;
        let kms_config = aws_sdk_kms::config::Builder::from(&shared)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(4))
            .build();
        Self {
            client: aws_sdk_kms::Client::from_conf(kms_config),
            config,
        }
    }

    fn context(vault_id: &str) -> (String, String) {
        ("ldv-vault".to_owned(), vault_id.to_owned())
    }

    fn failed(&self, op: &str, e: impl std::error::Error) -> Error {
        let detail = aws_sdk_kms::error::DisplayErrorContext(&e).to_string();
        let kind = if detail.contains("AccessDenied")
            || detail.contains("NotAuthorized")
            || detail.contains("InvalidCiphertext")
            || detail.contains("IncorrectKey")
        {
            ErrorKind::PermissionDenied
        } else if detail.contains("NotFound") {
            ErrorKind::NotFound
        } else if detail.contains("dispatch failure") || detail.contains("timeout") {
            ErrorKind::NetworkError
        } else {
            ErrorKind::BackendError
        };
        // The SDK's messages never hold key material: requests carry only the key id and
        // ciphertext, and plaintext comes back only on success. Its context dump is for the
        // kind above; the message is the chain of causes, each once.
        let mut causes: Vec<String> = Vec::new();
        let mut cause: Option<&dyn std::error::Error> = Some(&e);
        while let Some(c) = cause {
            let text = c.to_string().replace('\n', " ");
            if !text.is_empty() && !causes.iter().any(|seen| seen.contains(&text)) {
                causes.push(text);
            }
            cause = c.source();
        }
        Error::new(
            kind,
            format!(
                "KMS {op} with key {}: {}",
                self.config.key_id,
                causes.join(": ")
            ),
        )
    }
}

#[async_trait]
impl KeyProvider for KmsKey {
    fn describe(&self) -> String {
        format!("KMS key {}", self.config.key_id)
    }

    async fn wrap(&self, vault_key: &KeyBytes, vault_id: &str) -> Result<KeySlot> {
        let (k, v) = Self::context(vault_id);
        let out = self
            .client
            .encrypt()
            .key_id(&self.config.key_id)
            .plaintext(aws_sdk_kms::primitives::Blob::new(
                vault_key.expose().to_vec(),
            ))
            .encryption_context(k, v)
            .send()
            .await
            .map_err(|e| self.failed("Encrypt", e))?;
        let blob = out.ciphertext_blob().ok_or_else(|| {
            Error::new(
                ErrorKind::BackendError,
                "KMS Encrypt returned no ciphertext",
            )
        })?;
        Ok(new_slot(
            SlotKind::Kms {
                key_id: self.config.key_id.clone(),
            },
            B64.encode(blob.as_ref()),
            crypto::new_slot_id(),
        ))
    }

    async fn unwrap(&self, slot: &KeySlot, vault_id: &str) -> Result<Option<KeyBytes>> {
        let SlotKind::Kms { .. } = &slot.kind else {
            return Ok(None);
        };
        let Ok(blob) = B64.decode(&slot.wrapped) else {
            return Ok(None);
        };
        let (k, v) = Self::context(vault_id);
        let out = self
            .client
            .decrypt()
            // Only this key may open the slot: without it KMS would use whichever key the
            // ciphertext names, and a profile naming another key would open the vault.
            .key_id(&self.config.key_id)
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(blob))
            .encryption_context(k, v)
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                let e = self.failed("Decrypt", e);
                return match e.kind() {
                    // Another key's slot, or one this principal may not use: not ours.
                    ErrorKind::PermissionDenied | ErrorKind::NotFound => Ok(None),
                    _ => Err(e),
                };
            }
        };
        let plain = zeroize::Zeroizing::new(
            out.plaintext()
                .map(|b| b.as_ref().to_vec())
                .unwrap_or_default(),
        );
        Ok(<[u8; 32]>::try_from(plain.as_slice())
            .ok()
            .map(KeyBytes::new))
    }

    async fn generate(&self, vault_id: &str) -> Result<(KeyBytes, KeySlot)> {
        let (k, v) = Self::context(vault_id);
        let out = self
            .client
            .generate_data_key()
            .key_id(&self.config.key_id)
            .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
            .encryption_context(k, v)
            .send()
            .await
            .map_err(|e| self.failed("GenerateDataKey", e))?;
        let plain = zeroize::Zeroizing::new(
            out.plaintext()
                .map(|b| b.as_ref().to_vec())
                .unwrap_or_default(),
        );
        let key = <[u8; 32]>::try_from(plain.as_slice())
            .map(KeyBytes::new)
            .map_err(|_| {
                Error::new(
                    ErrorKind::BackendError,
                    "KMS GenerateDataKey returned a data key that is not 32 bytes",
                )
            })?;
        let blob = out.ciphertext_blob().ok_or_else(|| {
            Error::new(
                ErrorKind::BackendError,
                "KMS GenerateDataKey returned no ciphertext",
            )
        })?;
        let slot = new_slot(
            SlotKind::Kms {
                key_id: self.config.key_id.clone(),
            },
            B64.encode(blob.as_ref()),
            crypto::new_slot_id(),
        );
        Ok((key, slot))
    }
}
