//! The S3 backend (the seed's `S3Config` and `MinIOConfig`) on aws-sdk-s3: AWS S3 and
//! S3-compatible stores (MinIO, Garage, Ceph, R2). Every upload carries a CRC32C checksum the
//! server verifies, with an unsigned payload so the body is not SHA-256-hashed again; objects
//! above `multipart_threshold` go up as parallel parts, aborted on failure. Create-only puts send
//! `If-None-Match: *` and also check first, because some stores ignore the header. SDK errors are
//! mapped once, here, so not-found, denied and throttling keep their kinds; the SDK's own
//! retries are off, the retry layer above does that and reports it.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart, ServerSideEncryption,
};
use base64::Engine;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::{
    Backend, HealthStatus, ObjectMeta, PutMode, Swept, timed, validate_key, validate_prefix,
};
use crate::backend::layer::Retrier;
use crate::config::{Secret, Size};
use crate::error::{Error, ErrorKind, Result};

/// Default size above which objects go up in parts (the seed's 5 MiB).
pub const MULTIPART_THRESHOLD: u64 = 5 * 1024 * 1024;
/// Default part size (the seed's 8 MiB).
pub const MULTIPART_CHUNK_SIZE: u64 = 8 * 1024 * 1024;
/// S3's smallest allowed part (all but the last).
const MIN_PART: u64 = 5 * 1024 * 1024;
/// The largest object S3 takes in one PUT.
const MAX_SINGLE_PUT: u64 = 5 << 30;
/// The largest buffer a GET allocates up front from the Content-Length it is sent.
const MAX_PRESIZE: usize = 64 * 1024 * 1024;

fn default_pool() -> usize {
    16
}

fn default_threshold() -> Size {
    Size(MULTIPART_THRESHOLD)
}

fn default_part() -> Size {
    Size(MULTIPART_CHUNK_SIZE)
}

/// Profile settings of an S3 vault (the seed's `S3Config`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket (the vault lives below it).
    #[serde(default)]
    pub prefix: String,
    /// Region; default: the AWS chain (`AWS_REGION`, shared config), else `us-east-1`.
    pub region: Option<String>,
    /// Endpoint URL for S3-compatible stores; default: AWS (or `AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), needed by most S3-compatible stores.
    #[serde(default)]
    pub path_style: bool,
    /// Access key id; default: the AWS credential chain (env, shared files, instance metadata).
    pub access_key_id: Option<String>,
    /// Secret access key (then the profile file must be private, mode 0600).
    pub secret_access_key: Option<Secret>,
    /// Session token for temporary credentials.
    pub session_token: Option<Secret>,
    /// Server-side encryption: `AES256` or `aws:kms`.
    pub sse: Option<String>,
    /// KMS key id for `sse = "aws:kms"` (default: the bucket's AWS-managed key).
    pub kms_key_id: Option<String>,
    /// Requests in flight at once.
    #[serde(default = "default_pool")]
    pub connection_pool_size: usize,
    /// Objects larger than this are uploaded in parts.
    #[serde(default = "default_threshold")]
    pub multipart_threshold: Size,
    /// Size of each part.
    #[serde(default = "default_part")]
    pub multipart_chunk_size: Size,
}

/// Profile settings of a MinIO vault (the seed's `MinIOConfig`): S3 with path-style addressing.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinioConfig {
    /// `host:port` or a URL.
    pub endpoint: String,
    /// Access key.
    pub access_key: String,
    /// Secret key.
    pub secret_key: Secret,
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket.
    #[serde(default)]
    pub prefix: String,
    /// Region (MinIO's default is `us-east-1`).
    pub region: Option<String>,
    /// Use https when the endpoint has no scheme.
    #[serde(default)]
    pub use_ssl: bool,
    /// Requests in flight at once.
    #[serde(default = "default_pool")]
    pub connection_pool_size: usize,
}

impl MinioConfig {
    /// The S3 settings this MinIO profile stands for.
    pub fn to_s3(&self) -> S3Config {
        let endpoint = if self.endpoint.contains("://") {
            self.endpoint.clone()
        } else {
            let scheme = if self.use_ssl { "https" } else { "http" };
            format!("{scheme}://{}", self.endpoint)
        };
        S3Config {
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
            region: Some(self.region.clone().unwrap_or_else(|| "us-east-1".into())),
            endpoint: Some(endpoint),
            path_style: true,
            access_key_id: Some(self.access_key.clone()),
            secret_access_key: Some(self.secret_key.clone()),
            session_token: None,
            sse: None,
            kms_key_id: None,
            connection_pool_size: self.connection_pool_size,
            multipart_threshold: default_threshold(),
            multipart_chunk_size: default_part(),
        }
    }
}

impl S3Config {
    /// A config for `s3://bucket/prefix` with everything else from the environment.
    pub fn from_url(bucket: &str, prefix: &str) -> Self {
        Self {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            region: None,
            endpoint: None,
            path_style: std::env::var_os("AWS_ENDPOINT_URL").is_some(),
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
            sse: None,
            kms_key_id: None,
            connection_pool_size: default_pool(),
            multipart_threshold: default_threshold(),
            multipart_chunk_size: default_part(),
        }
    }

    /// Checks the settings, naming the one that is wrong.
    pub fn validate(&self) -> Result<()> {
        if self.bucket.is_empty() {
            return Err(Error::config("s3 backend: bucket is empty"));
        }
        if self.access_key_id.is_some() != self.secret_access_key.is_some() {
            return Err(Error::config(
                "s3 backend: give both access_key_id and secret_access_key, or neither",
            ));
        }
        match self.sse.as_deref() {
            None | Some("AES256") | Some("aws:kms") => {}
            Some(other) => {
                return Err(Error::config(format!(
                    "s3 backend: sse {other:?} is not AES256 or aws:kms"
                )));
            }
        }
        if self.kms_key_id.is_some() && self.sse.as_deref() != Some("aws:kms") {
            return Err(Error::config(
                "s3 backend: kms_key_id needs sse = \"aws:kms\"",
            ));
        }
        if self.connection_pool_size == 0 {
            return Err(Error::config(
                "s3 backend: connection_pool_size must be at least 1",
            ));
        }
        if self.multipart_chunk_size.0 < MIN_PART || self.multipart_chunk_size.0 > 5 << 30 {
            return Err(Error::config(
                "s3 backend: multipart_chunk_size must be between 5 MiB and 5 GiB",
            ));
        }
        Ok(())
    }
}

/// Connect, read and write time limits (the seed's `TimeoutConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeoutConfig {
    /// Establishing a connection.
    #[serde(with = "crate::config::duration")]
    pub connect: Duration,
    /// Waiting for response data.
    #[serde(with = "crate::config::duration")]
    pub read: Duration,
    /// Sending one request, body included.
    #[serde(with = "crate::config::duration")]
    pub write: Duration,
}

impl Default for TimeoutConfig {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(300),
            write: Duration::from_secs(300),
        }
    }
}

/// A backend storing objects in an S3 bucket below a prefix.
pub struct S3Backend {
    client: Client,
    bucket: String,
    prefix: String,
    shown: String,
    endpoint: String,
    sse: Option<ServerSideEncryption>,
    kms_key_id: Option<String>,
    threshold: u64,
    part_size: u64,
    slots: Arc<Semaphore>,
    parts: Option<Retrier>,
    /// Create-only puts made so far (see [`PROBE_AFTER`]).
    create_only_puts: std::sync::atomic::AtomicU64,
    /// Whether the store refuses a second create-only put, probed once when first needed.
    honours_conditions: tokio::sync::OnceCell<bool>,
}

/// A create-only put first checks with a HEAD, because some S3-compatible stores ignore
/// If-None-Match. After this many in one process (a directory put, say), the store is probed once
/// instead: if it refuses a second create-only put, later ones rely on If-None-Match and skip the
/// HEAD, halving their requests; short commands never pay for the probe.
const PROBE_AFTER: u64 = 16;

impl fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Backend")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for S3Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

fn crc32c(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(crc32c::crc32c(data).to_be_bytes())
}

impl S3Backend {
    /// Builds a client for `config` with `timeouts`; credentials and region not in the profile
    /// come from the AWS default chain.
    /// `parts` retries the parts of a multipart upload one by one, so a lost part does not
    /// restart the whole upload.
    pub async fn new(
        config: &S3Config,
        timeouts: &TimeoutConfig,
        parts: Option<Retrier>,
    ) -> Result<Self> {
        config.validate()?;
        // The SDK also takes its endpoint from these variables; check whichever is in force.
        let endpoint_setting = match &config.endpoint {
            Some(e) => Some((e.clone(), "s3 backend: endpoint")),
            None => ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
                .into_iter()
                .find_map(|var| std::env::var(var).ok().map(|e| (e, var))),
        };
        if let Some((endpoint, setting)) = &endpoint_setting {
            crate::backend::check_endpoint(endpoint, setting)?;
        }
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &config.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                id,
                secret.expose(),
                config.session_token.as_ref().map(|t| t.expose().to_owned()),
                None,
                "ldv-profile",
            ));
        }
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        let shared = loader.load().await;
        let mut builder = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.path_style)
            // The retry layer above retries and reports; the SDK must not retry silently.
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(timeouts.connect)
                    .read_timeout(timeouts.read)
                    .operation_attempt_timeout(timeouts.read.max(timeouts.write))
                    .build(),
            )
            // ldv sends its own CRC32C with each upload and verifies every read itself.
            .request_checksum_calculation(
                aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired,
            )
            .response_checksum_validation(
                aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired,
            );
        if shared.region().is_none() {
            builder = builder.region(aws_config::Region::new("us-east-1"));
        }
        let client = Client::from_conf(builder.build());
        let endpoint = endpoint_setting.map_or_else(|| "AWS S3".to_owned(), |(e, _)| e);
        let prefix = match config.prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        if !prefix.is_empty() {
            validate_prefix(&prefix)?;
        }
        let shown = format!("s3://{}/{}", config.bucket, prefix);
        Ok(Self {
            client,
            bucket: config.bucket.clone(),
            prefix,
            shown,
            endpoint,
            sse: config.sse.as_deref().map(ServerSideEncryption::from),
            kms_key_id: config.kms_key_id.clone(),
            threshold: config.multipart_threshold.0.max(MIN_PART),
            part_size: config.multipart_chunk_size.0,
            slots: Arc::new(Semaphore::new(config.connection_pool_size)),
            parts,
            create_only_puts: std::sync::atomic::AtomicU64::new(0),
            honours_conditions: tokio::sync::OnceCell::new(),
        })
    }

    /// Whether a create-only put must check for the key first (see [`PROBE_AFTER`]). A failed
    /// probe counts as "not honoured": the HEAD stays.
    async fn head_before_create(&self) -> bool {
        use std::sync::atomic::Ordering;
        if self.create_only_puts.fetch_add(1, Ordering::Relaxed) < PROBE_AFTER {
            return true;
        }
        let honoured = self
            .honours_conditions
            .get_or_init(|| async {
                let probed = self.probe_create_only().await;
                tracing::debug!("{}: create-only writes honoured: {probed:?}", self.shown);
                probed.unwrap_or(false)
            })
            .await;
        !*honoured
    }

    /// Creates the bucket (an existing one owned by these credentials is fine).
    pub async fn create_bucket(&self) -> Result<()> {
        let _slot = self.slot().await;
        match self
            .client
            .create_bucket()
            .bucket(&self.bucket)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error().and_then(|s| s.meta().code()),
                    Some("BucketAlreadyOwnedByYou")
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(self.err("create bucket", &self.bucket, e)),
        }
    }

    fn key(&self, key: &str) -> Result<String> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    /// Maps an SDK error on `key` during `op` to an ldv error, keeping its kind.
    fn err<E>(&self, op: &str, key: &str, e: SdkError<E>) -> Error
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let at = format!("{op} {key} on {} at {}", self.shown, self.endpoint);
        tracing::debug!("{at}: {}", DisplayErrorContext(&e));
        if let Some(err) = credentials_error(&e) {
            use aws_credential_types::provider::error::CredentialsError as C;
            let detail = format!(
                "{at}: no usable AWS credentials ({}); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or the profile's access_key_id and secret_access_key",
                root_cause(err)
            );
            return match err {
                C::ProviderTimedOut(_) => Error::new(ErrorKind::Timeout, detail),
                C::InvalidConfiguration(_) => Error::config(detail),
                _ => Error::new(ErrorKind::PermissionDenied, detail),
            };
        }
        match &e {
            SdkError::ServiceError(ctx) => {
                let status = ctx.raw().status().as_u16();
                let code = ctx.err().code().unwrap_or("");
                let message = ctx.err().message().unwrap_or("");
                let detail = format!("{at}: {status} {code} {message}")
                    .trim_end()
                    .to_owned();
                let retry_after = ctx
                    .raw()
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                match (status, code) {
                    (_, "NoSuchBucket") => Error::config(format!(
                        "bucket {} does not exist at {}: create it first",
                        self.bucket, self.endpoint
                    )),
                    (404, _) | (_, "NoSuchKey") | (_, "NoSuchUpload") => Error::not_found(key),
                    (401 | 403, _) => Error::new(ErrorKind::PermissionDenied, detail),
                    (412, _) | (409, _) => Error::new(ErrorKind::Conflict, detail),
                    (_, "SlowDown") | (503, _) | (429, _) => {
                        Error::new(ErrorKind::NetworkError, detail)
                            .with_retry_after(retry_after.unwrap_or(Duration::from_secs(1)))
                    }
                    // A body damaged on the way: the server refused to store it; resending the
                    // intact bytes can succeed.
                    (_, "BadDigest" | "InvalidDigest" | "XAmzContentChecksumMismatch") => {
                        Error::new(ErrorKind::NetworkError, detail).with_transient(true)
                    }
                    (_, "QuotaExceeded" | "EntityTooLarge") => {
                        Error::new(ErrorKind::QuotaExceeded, detail)
                    }
                    (500..=599, _) | (_, "InternalError" | "RequestTimeout") => {
                        Error::new(ErrorKind::BackendError, detail).with_transient(true)
                    }
                    _ => Error::new(ErrorKind::BackendError, detail),
                }
            }
            SdkError::TimeoutError(_) => Error::new(ErrorKind::Timeout, format!("{at}: timed out")),
            SdkError::DispatchFailure(d) => {
                let kind = if d.is_timeout() {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::NetworkError
                };
                Error::new(kind, format!("{at}: {}", root_cause(&e)))
            }
            SdkError::ResponseError(_) => Error::new(
                ErrorKind::NetworkError,
                format!("{at}: bad response: {}", root_cause(&e)),
            ),
            _ => Error::new(ErrorKind::BackendError, format!("{at}: {}", root_cause(&e))),
        }
    }

    /// Whether an object with exactly this full key is listed.
    async fn listed(&self, full: &str) -> Result<bool> {
        let _slot = self.slot().await;
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(full)
            .max_keys(1)
            .send()
            .await
            .map_err(|e| self.err("list", full, e))?;
        Ok(out.contents().iter().any(|o| o.key() == Some(full)))
    }

    /// Stores that keep objects as files (s3s-fs) answer a bare 500 when a key names a directory
    /// of other keys; a listing tells whether the object really exists, so such a key reads as
    /// missing, as it does on S3.
    async fn missing_or(&self, key: &str, full: &str, e: Error) -> Error {
        if e.kind() == ErrorKind::BackendError && matches!(self.listed(full).await, Ok(false)) {
            Error::not_found(key)
        } else {
            e
        }
    }

    /// Stores that keep objects as files answer a bare 500 when a put needs a file where a
    /// directory is, or the reverse; that is the `Conflict` the contract allows.
    async fn conflict_or(&self, key: &str, full: &str, e: Error) -> Error {
        if e.kind() != ErrorKind::BackendError {
            return e;
        }
        let mut parents = full.match_indices('/').map(|(i, _)| &full[..i]);
        let mut blocked = false;
        for parent in parents.by_ref() {
            if parent.len() >= self.prefix.len() && matches!(self.listed(parent).await, Ok(true)) {
                blocked = true;
                break;
            }
        }
        if !blocked {
            let below = format!("{full}/");
            let _slot = self.slot().await;
            blocked = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&below)
                .max_keys(1)
                .send()
                .await
                .is_ok_and(|out| !out.contents().is_empty());
        }
        if blocked {
            Error::new(
                ErrorKind::Conflict,
                format!(
                    "{key}: cannot be stored because an object's key is a path prefix of it, or it is one of another's"
                ),
            )
        } else {
            e
        }
    }

    /// Reads a GET's body into one buffer sized by its Content-Length as it arrives, so each
    /// piece is freed as soon as it is copied (collecting the pieces first and joining them at
    /// the end would hold the body twice).
    async fn read_body(
        &self,
        key: &str,
        out: aws_sdk_s3::operation::get_object::GetObjectOutput,
    ) -> Result<Bytes> {
        let cut_short = |e: &dyn fmt::Display| {
            Error::new(
                ErrorKind::NetworkError,
                format!("get {key} on {}: body cut short: {e}", self.shown),
            )
        };
        let expected = out
            .content_length()
            .and_then(|n| usize::try_from(n).ok())
            .unwrap_or(0);
        let mut body = out.body;
        // A first piece that is the whole body needs no copy at all.
        let Some(first) = body.try_next().await.map_err(|e| cut_short(&e))? else {
            return Ok(Bytes::new());
        };
        let Some(second) = body.try_next().await.map_err(|e| cut_short(&e))? else {
            return Ok(first);
        };
        // The length is the server's claim: trust it for the allocation only up to a bound.
        let mut buf = bytes::BytesMut::with_capacity(expected.min(MAX_PRESIZE));
        buf.extend_from_slice(&first);
        buf.extend_from_slice(&second);
        while let Some(piece) = body.try_next().await.map_err(|e| cut_short(&e))? {
            buf.extend_from_slice(&piece);
        }
        Ok(buf.freeze())
    }

    async fn slot(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.slots
            .acquire()
            .await
            .expect("the request semaphore is never closed")
    }

    /// [`Backend::put`]; `whole` sends up to [`MAX_SINGLE_PUT`] bytes in one request.
    async fn store(&self, key: &str, data: Bytes, mode: PutMode, whole: bool) -> Result<()> {
        let full = self.key(key)?;
        if mode == PutMode::CreateOnly && self.head_before_create().await {
            // Some S3-compatible stores ignore If-None-Match: check first as well.
            match self.head_full(key, &full).await {
                Ok(_) => {
                    return Err(Error::new(
                        ErrorKind::Conflict,
                        format!("{key}: already exists"),
                    ));
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let parts = data.len() as u64
            > if whole {
                MAX_SINGLE_PUT
            } else {
                self.threshold
            };
        let put = if parts {
            self.put_multipart(key, &full, data, mode).await
        } else {
            let put = self.put_single(key, &full, data.clone(), mode).await;
            if let Err(e) = &put {
                self.scrub_refused(key, &full, &data, e).await;
            }
            put
        };
        match put {
            Err(e) => Err(self.conflict_or(key, &full, e).await),
            ok => ok,
        }
    }

    async fn put_single(&self, key: &str, full: &str, data: Bytes, mode: PutMode) -> Result<()> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(full)
            .checksum_crc32_c(crc32c(&data))
            .content_length(i64::try_from(data.len()).unwrap_or(i64::MAX))
            .body(ByteStream::from(data));
        if mode == PutMode::CreateOnly {
            req = req.if_none_match("*");
        }
        if let Some(sse) = &self.sse {
            req = req.server_side_encryption(sse.clone());
        }
        if let Some(kms) = &self.kms_key_id {
            req = req.ssekms_key_id(kms);
        }
        let _slot = self.slot().await;
        req.customize()
            .disable_payload_signing()
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.err("put", key, e))
    }

    async fn put_part(
        &self,
        key: &str,
        full: &str,
        upload_id: &str,
        number: i32,
        body: Bytes,
    ) -> Result<CompletedPart> {
        let checksum = crc32c(&body);
        let _slot = self.slot().await;
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(full)
            .upload_id(upload_id)
            .part_number(number)
            .checksum_crc32_c(&checksum)
            .content_length(i64::try_from(body.len()).unwrap_or(i64::MAX))
            .body(ByteStream::from(body))
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|e| self.err("put part of", key, e))?;
        Ok(CompletedPart::builder()
            .part_number(number)
            .set_e_tag(out.e_tag().map(str::to_owned))
            .checksum_crc32_c(checksum)
            .build())
    }

    async fn put_multipart(&self, key: &str, full: &str, data: Bytes, mode: PutMode) -> Result<()> {
        let mut create = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(full)
            .checksum_algorithm(ChecksumAlgorithm::Crc32C);
        if let Some(sse) = &self.sse {
            create = create.server_side_encryption(sse.clone());
        }
        if let Some(kms) = &self.kms_key_id {
            create = create.ssekms_key_id(kms);
        }
        let upload = {
            let _slot = self.slot().await;
            create.send().await.map_err(|e| self.err("put", key, e))?
        };
        let upload_id = upload
            .upload_id()
            .ok_or_else(|| Error::new(ErrorKind::BackendError, format!("put {key}: no upload id")))?
            .to_owned();
        let part_size = usize::try_from(self.part_size).unwrap_or(usize::MAX);
        let parts: Vec<(i32, Bytes)> = (0..data.len().div_ceil(part_size))
            .map(|i| {
                let start = i * part_size;
                let n = i32::try_from(i + 1).unwrap_or(i32::MAX);
                (n, data.slice(start..(start + part_size).min(data.len())))
            })
            .collect();
        let uploaded: Result<Vec<CompletedPart>> = futures::stream::iter(parts)
            .map(|(number, body)| {
                let upload_id = upload_id.clone();
                let part = move || {
                    let upload_id = upload_id.clone();
                    let body = body.clone();
                    async move { self.put_part(key, full, &upload_id, number, body).await }
                };
                async move {
                    match &self.parts {
                        Some(retrier) => {
                            retrier
                                .run(&format!("put part {number} of {key}"), part)
                                .await
                        }
                        None => part().await,
                    }
                }
            })
            .buffered(4)
            .try_collect()
            .await;
        let completed = match uploaded {
            Ok(parts) => {
                let mut complete = self
                    .client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(full)
                    .upload_id(&upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    );
                if mode == PutMode::CreateOnly {
                    complete = complete.if_none_match("*");
                }
                let sent = {
                    let _slot = self.slot().await;
                    complete.send().await
                };
                match sent {
                    Ok(_) => Ok(()),
                    // Some stores answer 200 with a body the SDK cannot parse (moto names its
                    // root element differently): the upload is done if the object is there
                    // with the size we sent.
                    Err(SdkError::ServiceError(ctx)) if ctx.raw().status().as_u16() == 200 => {
                        let meta = self.head_full(key, full).await?;
                        if meta.size == data.len() as u64 {
                            Ok(())
                        } else {
                            Err(Error::new(
                                ErrorKind::BackendError,
                                format!(
                                    "put {key} on {}: completed upload has {} bytes, sent {}",
                                    self.shown,
                                    meta.size,
                                    data.len()
                                ),
                            ))
                        }
                    }
                    Err(e) => Err(self.err("put", key, e)),
                }
            }
            Err(e) => Err(e),
        };
        if completed.is_err() {
            // Leave no half-uploaded parts behind to be billed; a failed abort is swept later.
            let _slot = self.slot().await;
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(full)
                .upload_id(&upload_id)
                .send()
                .await;
        }
        completed
    }

    /// Some stores (s3s-fs) keep a body they refused as damaged (BadDigest). Whatever is stored
    /// under the key now and differs from what we sent is such a body, never a good copy: keys
    /// name their content, so every good copy equals ours. Remove it, best effort.
    async fn scrub_refused(&self, key: &str, full: &str, sent: &Bytes, e: &Error) {
        let refused = ["BadDigest", "InvalidDigest", "XAmzContentChecksumMismatch"];
        if !refused.iter().any(|code| e.message().contains(code)) {
            return;
        }
        let stored = {
            let _slot = self.slot().await;
            match self
                .client
                .get_object()
                .bucket(&self.bucket)
                .key(full)
                .send()
                .await
            {
                Ok(out) => out.body.collect().await.ok().map(|b| b.into_bytes()),
                Err(_) => None,
            }
        };
        if stored.is_some_and(|stored| stored != *sent) {
            tracing::info!("{key}: removing a damaged body the store kept after refusing it");
            let _slot = self.slot().await;
            let _ = self
                .client
                .delete_object()
                .bucket(&self.bucket)
                .key(full)
                .send()
                .await;
        }
    }

    async fn head_full(&self, key: &str, full: &str) -> Result<ObjectMeta> {
        let sent = {
            let _slot = self.slot().await;
            self.client
                .head_object()
                .bucket(&self.bucket)
                .key(full)
                .send()
                .await
        };
        let out = match sent {
            Ok(out) => out,
            Err(e) => {
                let e = self.err("head", key, e);
                return Err(self.missing_or(key, full, e).await);
            }
        };
        Ok(ObjectMeta {
            key: key.to_owned(),
            size: out
                .content_length()
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0),
            modified: out
                .last_modified()
                .and_then(|t| SystemTime::try_from(*t).ok()),
        })
    }

    /// Whether the store refuses a second create-only put of the same key.
    async fn probe_create_only(&self) -> Result<bool> {
        let key = format!("health-probe-{:016x}", rand::random::<u64>());
        let full = format!("{}{key}", self.prefix);
        self.put_single(&key, &full, Bytes::from_static(b"1"), PutMode::CreateOnly)
            .await?;
        let second = self
            .put_single(&key, &full, Bytes::from_static(b"2"), PutMode::CreateOnly)
            .await;
        let _slot = self.slot().await;
        let _ = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await;
        match second {
            Err(e) if e.kind() == ErrorKind::Conflict => Ok(true),
            Ok(()) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Backend for S3Backend {
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<()> {
        self.store(key, data, mode, false).await
    }

    async fn put_whole(&self, key: &str, data: Bytes) -> Result<()> {
        self.store(key, data, PutMode::Overwrite, true).await
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let full = self.key(key)?;
        let sent = {
            let _slot = self.slot().await;
            self.client
                .get_object()
                .bucket(&self.bucket)
                .key(&full)
                .send()
                .await
        };
        let out = match sent {
            Ok(out) => out,
            Err(e) => {
                let e = self.err("get", key, e);
                return Err(self.missing_or(key, &full, e).await);
            }
        };
        self.read_body(key, out).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let full = self.key(key)?;
        // An empty range, or one starting beyond any object S3 can hold (5 TiB; some stores
        // reject such offsets outright), has no bytes to read: only the key must exist.
        if range.start >= range.end || range.start > i64::MAX as u64 {
            self.head_full(key, &full).await?;
            return Ok(Bytes::new());
        }
        let sent = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&full)
            .range(if range.end > i64::MAX as u64 {
                // Some stores parse the end as a signed 64-bit number: ask for "to the end".
                format!("bytes={}-", range.start)
            } else {
                format!("bytes={}-{}", range.start, range.end - 1)
            })
            .send()
            .await;
        let out = match sent {
            Ok(out) => out,
            // A range starting past the end: the contract says "no bytes".
            Err(SdkError::ServiceError(ctx)) if ctx.raw().status().as_u16() == 416 => {
                return Ok(Bytes::new());
            }
            Err(e) => {
                let e = self.err("get", key, e);
                return Err(self.missing_or(key, &full, e).await);
            }
        };
        let bytes = self.read_body(key, out).await?;
        // Some stores ignore Range and send the whole object: cut it down ourselves.
        let len = usize::try_from(range.end - range.start).unwrap_or(usize::MAX);
        Ok(if bytes.len() > len {
            let size = bytes.len() as u64;
            bytes.slice(super::clip_range(&range, size))
        } else {
            bytes
        })
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        let full = self.key(key)?;
        self.head_full(key, &full).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let full = self.key(key)?;
        // S3 answers success for a missing key; the contract wants NotFound.
        self.head_full(key, &full).await?;
        let _slot = self.slot().await;
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(&full)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.err("delete", key, e))
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta>> {
        if let Err(e) = validate_prefix(prefix) {
            return futures::stream::once(async { Err(e) }).boxed();
        }
        let full = format!("{}{prefix}", self.prefix);
        let strip = self.prefix.len();
        let listed = prefix.to_owned();
        // Page by page, each checked (see `Pages`): a store whose listing loops must end in an
        // error, not in a listing that never ends or one silently cut short.
        futures::stream::unfold(Pages::default(), move |mut pages| {
            let (full, listed) = (full.clone(), listed.clone());
            async move {
                if pages.done {
                    return None;
                }
                let sent = self
                    .client
                    .list_objects_v2()
                    .bucket(&self.bucket)
                    .prefix(full)
                    .set_continuation_token(pages.token.clone())
                    .send()
                    .await;
                let page = match sent {
                    Ok(page) => pages.take(&page, strip, &listed, &self.shown),
                    Err(e) => Err(self.err("list", &listed, e)),
                };
                if page.is_err() {
                    pages.done = true;
                }
                Some((page, pages))
            }
        })
        .map(|page| match page {
            Ok(items) => futures::stream::iter(items.into_iter().map(Ok)).boxed(),
            Err(e) => futures::stream::once(async { Err(e) }).boxed(),
        })
        .flatten()
        .boxed()
    }

    async fn copy(&self, from: &str, to: &str) -> Result<()> {
        let src = self.key(from)?;
        let dst = self.key(to)?;
        if src == dst {
            // S3 refuses to copy an object onto itself unchanged; the result would be the same.
            return self.head_full(from, &src).await.map(|_| ());
        }
        let source = format!("{}/{}", self.bucket, urlencode(&src));
        let mut req = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(&dst)
            .copy_source(source);
        if let Some(sse) = &self.sse {
            req = req.server_side_encryption(sse.clone());
        }
        if let Some(kms) = &self.kms_key_id {
            req = req.ssekms_key_id(kms);
        }
        let sent = {
            let _slot = self.slot().await;
            req.send().await
        };
        match sent {
            Ok(_) => Ok(()),
            Err(e) => {
                let e = self.err("copy", from, e);
                if e.kind() == ErrorKind::NotFound {
                    return Err(Error::not_found(from));
                }
                let e = self.missing_or(from, &src, e).await;
                if e.kind() == ErrorKind::NotFound {
                    return Err(e);
                }
                Err(self.conflict_or(to, &dst, e).await)
            }
        }
    }

    async fn health(&self) -> Result<HealthStatus> {
        let (bucket, latency) = timed(async {
            let _slot = self.slot().await;
            self.client
                .head_bucket()
                .bucket(&self.bucket)
                .send()
                .await
                .map_err(|e| self.err("head bucket", &self.bucket, e))
        })
        .await;
        let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        if let Err(e) = bucket {
            return Ok(HealthStatus {
                healthy: false,
                latency_ms,
                last_error: Some(e.to_string()),
                details: vec![("endpoint".into(), self.endpoint.clone())],
            });
        }
        let create_only = match self.probe_create_only().await {
            Ok(true) => "honoured (If-None-Match: *)".to_owned(),
            Ok(false) => {
                "IGNORED by this store: ldv also checks before create-only writes".to_owned()
            }
            Err(e) => format!("could not probe: {e}"),
        };
        Ok(HealthStatus {
            healthy: true,
            latency_ms,
            last_error: None,
            details: vec![
                ("endpoint".into(), self.endpoint.clone()),
                ("create_only".into(), create_only),
            ],
        })
    }

    fn max_key_len(&self) -> usize {
        crate::backend::MAX_KEY_LEN.saturating_sub(self.prefix.len())
    }

    async fn sweep(&self, older_than: Duration) -> Result<Swept> {
        let cutoff = SystemTime::now() - older_than;
        let mut swept = Swept::default();
        let mut marker: (Option<String>, Option<String>) = (None, None);
        loop {
            let listed = {
                let _slot = self.slot().await;
                self.client
                    .list_multipart_uploads()
                    .bucket(&self.bucket)
                    .prefix(&self.prefix)
                    .set_key_marker(marker.0.clone())
                    .set_upload_id_marker(marker.1.clone())
                    .send()
                    .await
            };
            let page = match listed {
                Ok(page) => page,
                Err(e) => {
                    let e = self.err("list uploads", &self.prefix, e);
                    // Stores without ListMultipartUploads (s3s-fs) have nothing to sweep that
                    // ldv could find; say so in the log rather than fail gc.
                    tracing::debug!("cannot list unfinished uploads: {e}");
                    return Ok(swept);
                }
            };
            for upload in page.uploads() {
                let old = upload
                    .initiated()
                    .and_then(|t| SystemTime::try_from(*t).ok())
                    .is_some_and(|t| t < cutoff);
                if let (true, Some(key), Some(id)) = (old, upload.key(), upload.upload_id()) {
                    let _slot = self.slot().await;
                    let aborted = self
                        .client
                        .abort_multipart_upload()
                        .bucket(&self.bucket)
                        .key(key)
                        .upload_id(id)
                        .send()
                        .await;
                    if aborted.is_ok() {
                        swept.leftovers += 1;
                    }
                }
            }
            if page.is_truncated() == Some(true) {
                marker = (
                    page.next_key_marker().map(str::to_owned),
                    page.next_upload_id_marker().map(str::to_owned),
                );
            } else {
                return Ok(swept);
            }
        }
    }
}

/// The innermost cause of an error, on one line: "Connection refused (os error 111)" rather
/// than the SDK's nested debug dump.
/// The credentials error behind an SDK error, if loading credentials is what failed.
fn credentials_error<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Option<&'a aws_credential_types::provider::error::CredentialsError> {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(found) = c.downcast_ref() {
            return Some(found);
        }
        cause = c.source();
    }
    None
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string().replace('\n', " ")
}

/// Percent-encodes a key for `x-amz-copy-source`, keeping `/`.
fn urlencode(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Where a listing is between pages. S3 returns keys in ascending order and a fresh
/// continuation token with every truncated page; a store that repeats a token or sends keys
/// that do not ascend past the previous page is looping, and its listing is stopped with an
/// error (the SDK's paginator would loop forever, or stop silently at a repeated token, which
/// could hide manifests from gc).
#[derive(Default)]
struct Pages {
    token: Option<String>,
    seen: std::collections::HashSet<String>,
    highest: Option<String>,
    done: bool,
}

impl Pages {
    /// The objects of `page` below the store prefix (`strip` bytes), after checking it.
    fn take(
        &mut self,
        page: &aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output,
        strip: usize,
        listed: &str,
        store: &str,
    ) -> Result<Vec<ObjectMeta>> {
        let looping = |why: String| {
            Error::new(
                ErrorKind::BackendError,
                format!(
                    "listing {listed:?} on {store}: {why}; the store's listing does not end, so ldv stopped it"
                ),
            )
        };
        let floor = self.highest.clone();
        let mut items = Vec::with_capacity(page.contents().len());
        for o in page.contents() {
            let Some(full) = o.key() else { continue };
            if let Some(floor) = &floor
                && full <= floor.as_str()
            {
                return Err(looping(format!(
                    "key {full:?} does not ascend past the previous page's last key"
                )));
            }
            if self.highest.as_deref().is_none_or(|h| full > h) {
                self.highest = Some(full.to_owned());
            }
            let Some(key) = full.get(strip..) else {
                continue;
            };
            items.push(ObjectMeta {
                key: key.to_owned(),
                size: o.size().and_then(|n| u64::try_from(n).ok()).unwrap_or(0),
                modified: o
                    .last_modified()
                    .and_then(|t| SystemTime::try_from(*t).ok()),
            });
        }
        match page.next_continuation_token().filter(|t| !t.is_empty()) {
            None => self.done = true,
            Some(token) if !self.seen.insert(token.to_owned()) => {
                return Err(looping(format!("continuation token {token:?} came back")));
            }
            Some(token) => self.token = Some(token.to_owned()),
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_sources_are_percent_encoded() {
        assert_eq!(urlencode("a/b c/ü+"), "a/b%20c/%C3%BC%2B");
    }

    #[test]
    fn minio_profiles_become_path_style_s3() {
        let m = MinioConfig {
            endpoint: "127.0.0.1:9000".into(),
            access_key: "k".into(),
            secret_key: Secret::new("s"),
            bucket: "b".into(),
            prefix: String::new(),
            region: None,
            use_ssl: false,
            connection_pool_size: 4,
        };
        let s = m.to_s3();
        assert!(s.path_style);
        assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(s.region.as_deref(), Some("us-east-1"));
        assert!(s.validate().is_ok());
    }

    #[test]
    fn crc32c_is_base64_of_the_big_endian_value() {
        // RFC 3720 test vector: 32 bytes of zeros -> 0x8A9136AA.
        assert_eq!(crc32c(&[0u8; 32]), "ipE2qg==");
    }
}
