//! The Google Cloud Storage backend (the seed's `GCSConfig`) on `gcloud-storage`, a client of the
//! GCS JSON API, the API that GCS emulators (fake-gcs-server, gcp-storage-emulator) speak too.
//! Every upload carries a CRC32C in its metadata, which GCS checks before it stores the object;
//! the checksum GCS answers with is compared again, so a store that does not check (an emulator)
//! still cannot keep a damaged body unnoticed. Objects up to `resumable_threshold` go up in one
//! multipart request, larger ones as a resumable upload in chunks.
//! Create-only puts send `ifGenerationMatch=0`, always in one multipart request: that is the upload
//! kind both GCS and fake-gcs-server (which ignores the precondition on other kinds) honour.
//! Errors are mapped once, here, from each answer's status (kept with its `Retry-After` by a small
//! middleware), so not-found, denied and throttling keep their kinds; the client has no retries of
//! its own, the retry layer above does that and reports it. Never prints; never shows a token or
//! a resumable session URL (which grants upload rights) in a message.

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use gcloud_storage::client::google_cloud_auth::credentials::CredentialsFile;
use gcloud_storage::client::{Client, ClientConfig};
use gcloud_storage::http::Error as GcsError;
use gcloud_storage::http::buckets::get::GetBucketRequest;
use gcloud_storage::http::buckets::insert::{InsertBucketParam, InsertBucketRequest};
use gcloud_storage::http::objects::Object;
use gcloud_storage::http::objects::delete::DeleteObjectRequest;
use gcloud_storage::http::objects::download::Range as GcsRange;
use gcloud_storage::http::objects::get::GetObjectRequest;
use gcloud_storage::http::objects::list::ListObjectsRequest;
use gcloud_storage::http::objects::rewrite::RewriteObjectRequest;
use gcloud_storage::http::objects::upload::{UploadObjectRequest, UploadType};
use gcloud_storage::http::resumable_upload_client::{
    ChunkSize, ResumableUploadClient, UploadStatus,
};
use serde::Deserialize;
use tokio::sync::Semaphore;

use super::s3::TimeoutConfig;
use super::{
    Backend, HealthStatus, ObjectMeta, PutMode, Swept, timed, validate_key, validate_prefix,
};
use crate::config::Size;
use crate::error::{Error, ErrorKind, Result};

/// Default size above which objects go up as resumable uploads.
pub const RESUMABLE_THRESHOLD: u64 = 16 * 1024 * 1024;
/// Default size of each chunk of a resumable upload.
pub const RESUMABLE_CHUNK_SIZE: u64 = 8 * 1024 * 1024;
/// GCS requires every chunk of a resumable upload but the last to be a multiple of this.
pub const CHUNK_GRANULE: u64 = 256 * 1024;
/// Objects listed per page (GCS's maximum).
const PAGE_SIZE: i32 = 1000;
/// The environment variable Google's own clients read for an emulator's address.
pub const EMULATOR_ENV: &str = "STORAGE_EMULATOR_HOST";

fn default_pool() -> usize {
    16
}

fn default_threshold() -> Size {
    Size(RESUMABLE_THRESHOLD)
}

fn default_chunk() -> Size {
    Size(RESUMABLE_CHUNK_SIZE)
}

/// Profile settings of a GCS vault (the seed's `GCSConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcsConfig {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket (the vault lives below it).
    #[serde(default)]
    pub prefix: String,
    /// Project that owns the bucket; needed only to create it (default: the credentials').
    pub project_id: Option<String>,
    /// Service-account JSON key file; default: Application Default Credentials
    /// (`GOOGLE_APPLICATION_CREDENTIALS`, gcloud's ADC file, the metadata server).
    pub credentials_path: Option<PathBuf>,
    /// Endpoint URL, e.g. an emulator's `http://127.0.0.1:4443`; default: GCS
    /// (or `STORAGE_EMULATOR_HOST`).
    pub endpoint: Option<String>,
    /// Send no credentials at all (emulators, public buckets).
    #[serde(default)]
    pub anonymous: bool,
    /// Requests in flight at once.
    #[serde(default = "default_pool")]
    pub connection_pool_size: usize,
    /// Objects larger than this go up as resumable uploads, in chunks.
    #[serde(default = "default_threshold")]
    pub resumable_threshold: Size,
    /// Size of each chunk of a resumable upload (a multiple of 256 KiB).
    #[serde(default = "default_chunk")]
    pub resumable_chunk_size: Size,
}

impl GcsConfig {
    /// A config for `gs://bucket/prefix` with everything else from the environment: with
    /// `STORAGE_EMULATOR_HOST` set, that emulator, anonymously (as Google's own clients do).
    pub fn from_url(bucket: &str, prefix: &str) -> Self {
        let emulator = std::env::var(EMULATOR_ENV)
            .ok()
            .filter(|v| !v.trim().is_empty());
        Self {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            project_id: None,
            credentials_path: None,
            anonymous: emulator.is_some(),
            endpoint: emulator.map(|e| with_scheme(&e)),
            connection_pool_size: default_pool(),
            resumable_threshold: default_threshold(),
            resumable_chunk_size: default_chunk(),
        }
    }

    /// Checks the settings, naming the one that is wrong.
    pub fn validate(&self) -> Result<()> {
        let b = &self.bucket;
        if b.len() < 3
            || b.len() > 222
            || !b.bytes().all(|c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'-' | b'_' | b'.')
            })
        {
            return Err(Error::config(format!(
                "gcs backend: bucket {b:?} is not a bucket name (3-222 of a-z, 0-9, '-', '_', '.')"
            )));
        }
        if self.anonymous && self.credentials_path.is_some() {
            return Err(Error::config(
                "gcs backend: give credentials_path or anonymous = true, not both",
            ));
        }
        if let Some(endpoint) = &self.endpoint {
            crate::backend::check_endpoint(
                endpoint,
                "gcs backend: endpoint (or STORAGE_EMULATOR_HOST)",
            )?;
        }
        if self.connection_pool_size == 0 {
            return Err(Error::config(
                "gcs backend: connection_pool_size must be at least 1",
            ));
        }
        let chunk = self.resumable_chunk_size.0;
        if chunk == 0 || chunk % CHUNK_GRANULE != 0 || chunk > 5 << 30 {
            return Err(Error::config(
                "gcs backend: resumable_chunk_size must be a multiple of 256 KiB, at most 5 GiB",
            ));
        }
        Ok(())
    }
}

/// `host:port` (as `STORAGE_EMULATOR_HOST` often is) becomes `http://host:port`.
fn with_scheme(endpoint: &str) -> String {
    let e = endpoint.trim().trim_end_matches('/');
    if e.contains("://") {
        e.to_owned()
    } else {
        format!("http://{e}")
    }
}

/// Whether `endpoint` names this machine.
fn is_loopback(endpoint: &str) -> bool {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let host = rest.split('/').next().unwrap_or("");
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// An error answer from GCS, kept whole by [`StatusErrors`] for the error mapping.
#[derive(Debug)]
struct HttpStatus {
    status: u16,
    retry_after: Option<Duration>,
    reason: String,
    message: String,
}

impl fmt::Display for HttpStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.status, self.reason, self.message)
    }
}

impl std::error::Error for HttpStatus {}

/// Turns every 4xx/5xx answer into an [`HttpStatus`] error before gcloud-storage parses it, so
/// the mapping sees the status and `Retry-After` of every call alike (downloads, uploads and
/// resumable chunks included), not only of those whose body was GCS's JSON error document.
struct StatusErrors;

#[async_trait]
impl reqwest_middleware::Middleware for StatusErrors {
    async fn handle(
        &self,
        req: reqwest::Request,
        extensions: &mut http::Extensions,
        next: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let resp = next.run(req, extensions).await?;
        let status = resp.status().as_u16();
        // 499 is how GCS confirms a cancelled resumable upload.
        if status < 400 || status == 499 {
            return Ok(resp);
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = resp.text().await.unwrap_or_default();
        let (reason, message) = error_document(&body);
        Err(reqwest_middleware::Error::Middleware(anyhow::Error::new(
            HttpStatus {
                status,
                retry_after,
                reason,
                message,
            },
        )))
    }
}

/// The reason and message of a GCS JSON error document, or the start of a body that is not one.
fn error_document(body: &str) -> (String, String) {
    #[derive(Deserialize)]
    struct Doc {
        error: Inner,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default)]
        message: String,
        #[serde(default)]
        errors: Vec<Item>,
    }
    #[derive(Deserialize)]
    struct Item {
        #[serde(default)]
        reason: String,
    }
    match serde_json::from_str::<Doc>(body) {
        Ok(doc) => (
            doc.error
                .errors
                .into_iter()
                .next()
                .map(|i| i.reason)
                .unwrap_or_default(),
            doc.error.message,
        ),
        Err(_) => {
            let text: String = body.trim().chars().take(200).collect();
            (String::new(), text.replace('\n', " "))
        }
    }
}

/// The kind of an error answer with `status`, GCS `reason` and `message`, and whether retrying
/// can help.
fn classify(status: u16, reason: &str, message: &str) -> (ErrorKind, bool) {
    let damaged = (message.contains("CRC32C") || message.contains("MD5"))
        && (message.contains("match") || message.contains("differ"));
    match status {
        404 => (ErrorKind::NotFound, false),
        401 | 403 if reason.contains("quotaExceeded") => (ErrorKind::QuotaExceeded, false),
        401 | 403 => (ErrorKind::PermissionDenied, false),
        409 | 412 => (ErrorKind::Conflict, false),
        408 => (ErrorKind::Timeout, true),
        429 | 503 => (ErrorKind::NetworkError, true),
        // A body damaged on the way: GCS refused to store it; resending the intact bytes can
        // succeed.
        400 if damaged => (ErrorKind::NetworkError, true),
        413 => (ErrorKind::QuotaExceeded, false),
        500..=599 => (ErrorKind::BackendError, true),
        _ => (ErrorKind::BackendError, false),
    }
}

/// The innermost cause of an error, on one line ("Connection refused (os error 111)"), which
/// never holds a URL (a resumable session URL grants upload rights).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string().replace('\n', " ")
}

/// What a failed call returned: an answer with a status, or no answer.
enum Failure<'a> {
    Status(&'a HttpStatus),
    Other(Error),
}

/// A backend storing objects in a GCS bucket below a prefix.
pub struct GcsBackend {
    client: Client,
    bucket: String,
    prefix: String,
    shown: String,
    endpoint: String,
    project_id: Option<String>,
    threshold: u64,
    chunk_size: u64,
    slots: Arc<Semaphore>,
    /// Set once the bucket is known to exist (see [`GcsBackend::or_missing_bucket`]).
    bucket_seen: tokio::sync::OnceCell<()>,
}

impl fmt::Debug for GcsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcsBackend")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for GcsBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

fn crc32c(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(crc32c::crc32c(data).to_be_bytes())
}

impl GcsBackend {
    /// Builds a client for `config` with `timeouts`. Credentials: the profile's
    /// `credentials_path`, else none when `anonymous`, else Application Default Credentials.
    pub async fn new(config: &GcsConfig, timeouts: &TimeoutConfig) -> Result<Self> {
        config.validate()?;
        let endpoint = config
            .endpoint
            .as_deref()
            .map(with_scheme)
            .unwrap_or_else(|| "https://storage.googleapis.com".to_owned());
        let mut http = reqwest::Client::builder()
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.read)
            .timeout(timeouts.read.max(timeouts.write))
            .pool_max_idle_per_host(config.connection_pool_size)
            // A resumable upload's "308 Resume Incomplete" is an answer, not a redirect.
            .redirect(reqwest::redirect::Policy::none());
        if endpoint.starts_with("http://") {
            // Plain http means an emulator. fake-gcs-server closes the connection after a 416
            // without saying so, and the next request on it fails: do not reuse connections,
            // which costs next to nothing on loopback.
            http = http.pool_max_idle_per_host(0);
        }
        if is_loopback(&endpoint) {
            http = http.no_proxy();
        }
        let http = http.build().map_err(|e| {
            Error::config(format!(
                "gcs backend: cannot build the HTTP client: {}",
                root_cause(&e)
            ))
        })?;
        let mut client_config = ClientConfig {
            http: Some(
                reqwest_middleware::ClientBuilder::new(http)
                    .with(StatusErrors)
                    .build(),
            ),
            storage_endpoint: endpoint.clone(),
            project_id: config.project_id.clone(),
            ..ClientConfig::default()
        };
        if let Some(path) = &config.credentials_path {
            let shown = path.display();
            let file = CredentialsFile::new_from_file(path.to_string_lossy().into_owned())
                .await
                .map_err(|e| {
                    Error::config(format!(
                        "gcs backend: cannot read credentials_path {shown}: {e}"
                    ))
                })?;
            client_config = client_config
                .with_credentials(file)
                .await
                .map_err(|e| token_failure(&format!("the credentials in {shown}"), &e))?;
        } else if config.anonymous {
            client_config = client_config.anonymous();
        } else {
            client_config = client_config.with_auth().await.map_err(|e| {
                let detail = e.to_string();
                match std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS") {
                    // A key file was named: it was found, so say what became of it.
                    Some(path) => token_failure(
                        &format!(
                            "the credentials in {}",
                            std::path::Path::new(&path).display()
                        ),
                        &detail,
                    ),
                    None => Error::new(
                        ErrorKind::PermissionDenied,
                        format!(
                            "gcs backend: no Google credentials found ({detail}); set \
                             GOOGLE_APPLICATION_CREDENTIALS or credentials_path, or anonymous = \
                             true for an emulator"
                        ),
                    ),
                }
            })?;
        }
        if config.project_id.is_some() {
            client_config.project_id = config.project_id.clone();
        }
        let project_id = client_config.project_id.clone();
        let prefix = match config.prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        if !prefix.is_empty() {
            validate_prefix(&prefix)?;
        }
        let shown = format!("gs://{}/{}", config.bucket, prefix);
        Ok(Self {
            client: Client::new(client_config),
            bucket: config.bucket.clone(),
            prefix,
            shown,
            endpoint,
            project_id,
            threshold: config.resumable_threshold.0,
            chunk_size: config.resumable_chunk_size.0,
            slots: Arc::new(Semaphore::new(config.connection_pool_size)),
            bucket_seen: tokio::sync::OnceCell::new(),
        })
    }

    /// Turns a "not found" into "the bucket does not exist" when that is why: GCS says so in its
    /// message, but emulators answer a bare 404, so on the first 404 of a process the bucket is
    /// looked up once (one request; a bucket found is remembered).
    async fn or_missing_bucket(&self, e: Error) -> Error {
        if e.kind() != ErrorKind::NotFound || self.bucket_seen.initialized() {
            return e;
        }
        let looked = {
            let _slot = self.slot().await;
            self.client
                .get_bucket(&GetBucketRequest {
                    bucket: self.bucket.clone(),
                    ..Default::default()
                })
                .await
        };
        match looked {
            Ok(_) => {
                let _ = self.bucket_seen.set(());
                e
            }
            Err(b) if Self::status_of(&b) == Some(404) => Error::config(format!(
                "bucket {} does not exist at {}: create it first",
                self.bucket, self.endpoint
            )),
            Err(_) => e,
        }
    }

    /// Creates the bucket (one that already exists is fine); needs a project id, except on an
    /// emulator.
    pub async fn create_bucket(&self) -> Result<()> {
        let project = self.project_id.clone().unwrap_or_else(|| "ldv".to_owned());
        let _slot = self.slot().await;
        let created = self
            .client
            .insert_bucket(&InsertBucketRequest {
                name: self.bucket.clone(),
                param: InsertBucketParam {
                    project,
                    ..Default::default()
                },
                ..Default::default()
            })
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(e) => match self.err("create bucket", &self.bucket, e) {
                e if e.kind() == ErrorKind::Conflict => Ok(()),
                e => Err(e),
            },
        }
    }

    fn key(&self, key: &str) -> Result<String> {
        validate_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    async fn slot(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.slots
            .acquire()
            .await
            .expect("the request semaphore is never closed")
    }

    /// What `e` was: an answer with a status, or a failure mapped here (no answer, a token that
    /// could not be had).
    fn failure<'a>(&self, at: &str, e: &'a GcsError) -> Failure<'a> {
        let other = |kind, what: String| Failure::Other(Error::new(kind, format!("{at}: {what}")));
        match e {
            GcsError::HttpMiddleware(m) => match m.downcast_ref::<HttpStatus>() {
                Some(s) => Failure::Status(s),
                None => other(ErrorKind::BackendError, format!("{m:#}")),
            },
            GcsError::HttpClient(r) | GcsError::RawResponse(r, _) => {
                let kind = if r.is_timeout() {
                    ErrorKind::Timeout
                } else if let Some(s) = r.status() {
                    classify(s.as_u16(), "", "").0
                } else if r.is_builder() {
                    ErrorKind::BackendError
                } else {
                    ErrorKind::NetworkError
                };
                let what = match r.status() {
                    Some(s) => s.to_string(),
                    None if r.is_decode() => format!("bad response: {}", root_cause(r)),
                    None => root_cause(r),
                };
                other(kind, what)
            }
            GcsError::Response(r) => {
                let (kind, transient) = classify(r.code, "", &r.message);
                Failure::Other(
                    Error::new(kind, format!("{at}: {} {}", r.code, r.message))
                        .with_transient(transient),
                )
            }
            GcsError::TokenSource(t) => {
                // The token endpoint could not be reached, or refused the credentials.
                let unreachable = t
                    .downcast_ref::<gcloud_storage::client::google_cloud_auth::error::Error>()
                    .is_some_and(|a| {
                        matches!(a, gcloud_storage::client::google_cloud_auth::error::Error::HttpError(r)
                        if r.is_connect() || r.is_timeout() || r.is_request())
                    });
                let kind = if unreachable {
                    ErrorKind::NetworkError
                } else {
                    ErrorKind::PermissionDenied
                };
                other(kind, format!("could not get an access token: {t}"))
            }
            GcsError::InvalidRangeHeader(h) => {
                other(ErrorKind::BackendError, format!("bad Range in answer: {h}"))
            }
        }
    }

    /// Maps a client error on `key` during `op` to an ldv error, keeping its kind.
    fn err(&self, op: &str, key: &str, e: GcsError) -> Error {
        let at = format!("{op} {key} on {} at {}", self.shown, self.endpoint);
        let s = match self.failure(&at, &e) {
            Failure::Other(err) => {
                tracing::debug!("{err}");
                return err;
            }
            Failure::Status(s) => s,
        };
        tracing::debug!("{at}: {s}");
        let detail = format!("{at}: {s}").trim_end().to_owned();
        if s.status == 404 && s.message.contains("bucket does not exist") {
            return Error::config(format!(
                "bucket {} does not exist at {}: create it first",
                self.bucket, self.endpoint
            ));
        }
        let (kind, transient) = classify(s.status, &s.reason, &s.message);
        match kind {
            ErrorKind::NotFound => Error::not_found(key),
            _ if matches!(s.status, 429 | 503) => Error::new(kind, detail)
                .with_retry_after(s.retry_after.unwrap_or(Duration::from_secs(1))),
            _ => Error::new(kind, detail).with_transient(transient),
        }
    }

    /// The status of an error answer, if `e` is one.
    fn status_of(e: &GcsError) -> Option<u16> {
        match e {
            GcsError::HttpMiddleware(m) => m.downcast_ref::<HttpStatus>().map(|s| s.status),
            GcsError::HttpClient(r) | GcsError::RawResponse(r, _) => r.status().map(|s| s.as_u16()),
            GcsError::Response(r) => Some(r.code),
            _ => None,
        }
    }

    fn upload_request(&self, mode: PutMode) -> UploadObjectRequest {
        UploadObjectRequest {
            bucket: self.bucket.clone(),
            if_generation_match: (mode == PutMode::CreateOnly).then_some(0),
            ..Default::default()
        }
    }

    /// The object resource sent with an upload: its name and the CRC32C GCS must verify.
    fn upload_metadata(full: &str, checksum: &str) -> UploadType {
        UploadType::Multipart(Box::new(Object {
            name: full.to_owned(),
            content_type: Some("application/octet-stream".to_owned()),
            crc32c: Some(checksum.to_owned()),
            ..Default::default()
        }))
    }

    /// [`Backend::put`]; `whole` sends the object in one request (a pack: at most 128 MiB),
    /// whose failure resends it whole rather than restarting a resumable session.
    async fn store(&self, key: &str, data: Bytes, mode: PutMode, whole: bool) -> Result<()> {
        let full = self.key(key)?;
        let checksum = crc32c(&data);
        // Create-only puts always go in one request: fake-gcs-server honours ifGenerationMatch
        // only there, and a create-only object (manifest, lock, descriptor) is small.
        let one = whole || mode == PutMode::CreateOnly || data.len() as u64 <= self.threshold;
        let stored = if one {
            self.put_single(key, &full, data, &checksum, mode).await
        } else {
            self.put_resumable(key, &full, data, &checksum).await
        };
        let stored = match stored {
            Ok(stored) => stored,
            Err(e) if e.kind() == ErrorKind::Conflict => {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("{key}: already exists on {}", self.shown),
                ));
            }
            // An upload is never "not found" unless its bucket is.
            Err(e) => return Err(self.or_missing_bucket(e).await),
        };
        self.check_stored(key, &full, &checksum, &stored).await
    }

    /// One multipart upload: metadata and body in a single request.
    async fn put_single(
        &self,
        key: &str,
        full: &str,
        data: Bytes,
        checksum: &str,
        mode: PutMode,
    ) -> Result<Object> {
        let _slot = self.slot().await;
        self.client
            .upload_object(
                &self.upload_request(mode),
                data,
                &Self::upload_metadata(full, checksum),
            )
            .await
            .map_err(|e| self.err("put", key, e))
    }

    /// A resumable upload: a session, then chunks in order. A failed chunk fails the put and
    /// cancels the session, and the retry layer puts the object again from its start: resuming
    /// needs a status query, which fake-gcs-server answers by finalizing the object with the bytes
    /// it has, and a resent chunk it appends twice, so resuming could be shown only on GCS itself.
    async fn put_resumable(
        &self,
        key: &str,
        full: &str,
        data: Bytes,
        checksum: &str,
    ) -> Result<Object> {
        let session = {
            let _slot = self.slot().await;
            self.client
                .prepare_resumable_upload(
                    &self.upload_request(PutMode::Overwrite),
                    &Self::upload_metadata(full, checksum),
                )
                .await
                .map_err(|e| self.err("put", key, e))?
        };
        let uploaded = self.send_chunks(key, &session, &data).await;
        if uploaded.is_err() {
            // Free the session; GCS drops an abandoned one after a week in any case.
            let _slot = self.slot().await;
            let _ = session.cancel().await;
        }
        uploaded
    }

    async fn send_chunks(
        &self,
        key: &str,
        session: &ResumableUploadClient,
        data: &Bytes,
    ) -> Result<Object> {
        let total = data.len() as u64;
        let mut offset = 0u64;
        loop {
            let end = (offset + self.chunk_size).min(total);
            let range = ChunkSize::new(offset, end - 1, Some(total));
            let body = data.slice(offset as usize..end as usize);
            let status = {
                let _slot = self.slot().await;
                session
                    .upload_multiple_chunk(body, &range)
                    .await
                    .map_err(|e| self.err("put", key, e))?
            };
            let next = match status {
                UploadStatus::Ok(object) => return Ok(object),
                UploadStatus::ResumeIncomplete(r) => r.last_byte + 1,
                UploadStatus::NotStarted => 0,
            };
            // Each chunk must move the upload on, and only the last may complete it.
            if next <= offset || next >= total {
                return Err(Error::new(
                    ErrorKind::BackendError,
                    format!(
                        "put {key} on {}: the resumable upload stalled at byte {next} of {total}",
                        self.shown
                    ),
                )
                .with_transient(true));
            }
            offset = next;
        }
    }

    /// Checks the CRC32C the store computed against the one sent. GCS refuses a mismatch itself;
    /// a store that does not (an emulator) has kept a damaged body, which is removed (only that
    /// generation, never a later write) so that it is never read as the object.
    async fn check_stored(&self, key: &str, full: &str, sent: &str, stored: &Object) -> Result<()> {
        match stored.crc32c.as_deref() {
            None => Ok(()),
            Some(got) if got == sent => Ok(()),
            Some(got) => {
                tracing::info!("{key}: removing a damaged body the store kept");
                let _slot = self.slot().await;
                let _ = self
                    .client
                    .delete_object(&DeleteObjectRequest {
                        bucket: self.bucket.clone(),
                        object: full.to_owned(),
                        if_generation_match: Some(stored.generation),
                        ..Default::default()
                    })
                    .await;
                Err(Error::new(
                    ErrorKind::NetworkError,
                    format!(
                        "put {key} on {}: the body was damaged on the way (the store computed \
                         CRC32C {got}, ldv sent {sent}); it was removed",
                        self.shown
                    ),
                )
                .with_transient(true))
            }
        }
    }

    async fn head_full(&self, key: &str, full: &str) -> Result<ObjectMeta> {
        let _slot = self.slot().await;
        let object = self
            .client
            .get_object(&GetObjectRequest {
                bucket: self.bucket.clone(),
                object: full.to_owned(),
                ..Default::default()
            })
            .await
            .map_err(|e| self.err("head", key, e))?;
        Ok(self.meta(key.to_owned(), &object))
    }

    fn meta(&self, key: String, object: &Object) -> ObjectMeta {
        ObjectMeta {
            key,
            size: u64::try_from(object.size).unwrap_or(0),
            modified: object.updated.map(SystemTime::from),
        }
    }

    async fn delete_full(&self, key: &str, full: &str) -> Result<()> {
        let _slot = self.slot().await;
        self.client
            .delete_object(&DeleteObjectRequest {
                bucket: self.bucket.clone(),
                object: full.to_owned(),
                ..Default::default()
            })
            .await
            .map_err(|e| self.err("delete", key, e))
    }

    /// Whether the store refuses a second create-only put of the same key.
    async fn probe_create_only(&self) -> Result<bool> {
        let key = format!("health-probe-{:016x}", rand::random::<u64>());
        let full = format!("{}{key}", self.prefix);
        self.put(&key, Bytes::from_static(b"1"), PutMode::CreateOnly)
            .await?;
        let second = self
            .put(&key, Bytes::from_static(b"2"), PutMode::CreateOnly)
            .await;
        let _ = self.delete_full(&key, &full).await;
        match second {
            Err(e) if e.kind() == ErrorKind::Conflict => Ok(true),
            Ok(()) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One page of the listing below `full`.
    async fn list_page(
        &self,
        listed: &str,
        full: &str,
        token: Option<String>,
    ) -> Result<(Vec<ObjectMeta>, Option<String>)> {
        let page = {
            let _slot = self.slot().await;
            self.client
                .list_objects(&ListObjectsRequest {
                    bucket: self.bucket.clone(),
                    prefix: Some(full.to_owned()),
                    page_token: token,
                    max_results: Some(PAGE_SIZE),
                    ..Default::default()
                })
                .await
                .map_err(|e| self.err("list", listed, e))?
        };
        let strip = self.prefix.len();
        let items = page
            .items
            .unwrap_or_default()
            .iter()
            .filter_map(|o| Some(self.meta(o.name.get(strip..)?.to_owned(), o)))
            .collect();
        Ok((items, page.next_page_token.filter(|t| !t.is_empty())))
    }
}

#[async_trait]
impl Backend for GcsBackend {
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<()> {
        self.store(key, data, mode, false).await
    }

    async fn put_whole(&self, key: &str, data: Bytes) -> Result<()> {
        self.store(key, data, PutMode::Overwrite, true).await
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let full = self.key(key)?;
        let got = {
            let _slot = self.slot().await;
            self.client
                .download_object(
                    &GetObjectRequest {
                        bucket: self.bucket.clone(),
                        object: full,
                        ..Default::default()
                    },
                    &GcsRange::default(),
                )
                .await
        };
        match got {
            Ok(bytes) => Ok(Bytes::from(bytes)),
            Err(e) => Err(self.or_missing_bucket(self.err("get", key, e)).await),
        }
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let full = self.key(key)?;
        // An empty range, or one starting beyond any object GCS can hold (5 TiB), has no bytes
        // to read: only the key must exist.
        if range.start >= range.end || range.start > i64::MAX as u64 {
            self.head_full(key, &full).await?;
            return Ok(Bytes::new());
        }
        // An end past what a signed 64-bit number holds: ask for "to the end".
        let last = (range.end <= i64::MAX as u64).then(|| range.end - 1);
        let got = {
            let _slot = self.slot().await;
            self.client
                .download_object(
                    &GetObjectRequest {
                        bucket: self.bucket.clone(),
                        object: full,
                        ..Default::default()
                    },
                    &GcsRange(Some(range.start), last),
                )
                .await
        };
        let bytes = match got {
            Ok(bytes) => Bytes::from(bytes),
            // The object exists but the range starts at or past its end: no bytes.
            Err(e) if Self::status_of(&e) == Some(416) => return Ok(Bytes::new()),
            Err(e) => return Err(self.or_missing_bucket(self.err("get", key, e)).await),
        };
        // A store that ignores Range sends the whole object: cut it down here.
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
        match self.head_full(key, &full).await {
            Err(e) => Err(self.or_missing_bucket(e).await),
            ok => ok,
        }
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let full = self.key(key)?;
        // GCS answers 404 for a missing object, which is the contract's NotFound.
        self.delete_full(key, &full).await
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta>> {
        if let Err(e) = validate_prefix(prefix) {
            return futures::stream::once(async { Err(e) }).boxed();
        }
        let full = format!("{}{prefix}", self.prefix);
        let listed = prefix.to_owned();
        // State: the next page token, `None` once the last page was read.
        futures::stream::try_unfold(Some(None), move |token: Option<Option<String>>| {
            let full = full.clone();
            let listed = listed.clone();
            async move {
                let Some(token) = token else {
                    return Ok(None);
                };
                let (items, next) = match self.list_page(&listed, &full, token).await {
                    Ok(page) => page,
                    Err(e) => return Err(self.or_missing_bucket(e).await),
                };
                Ok(Some((
                    futures::stream::iter(items.into_iter().map(Ok)),
                    next.map(Some),
                )))
            }
        })
        .map(|page| match page {
            Ok(items) => items.boxed(),
            Err(e) => futures::stream::once(async { Err(e) }).boxed(),
        })
        .flatten()
        .boxed()
    }

    async fn copy(&self, from: &str, to: &str) -> Result<()> {
        let src = self.key(from)?;
        let dst = self.key(to)?;
        if src == dst {
            // Rewriting an object onto itself would only make a new generation of the same bytes.
            return self.head_full(from, &src).await.map(|_| ());
        }
        // Rewrite, not copy: GCS may need several calls for a large object, and says so.
        let mut token = None;
        loop {
            let step = {
                let _slot = self.slot().await;
                self.client
                    .rewrite_object(&RewriteObjectRequest {
                        source_bucket: self.bucket.clone(),
                        source_object: src.clone(),
                        destination_bucket: self.bucket.clone(),
                        destination_object: dst.clone(),
                        rewrite_token: token.take(),
                        ..Default::default()
                    })
                    .await
            };
            match step {
                Ok(step) if step.done => return Ok(()),
                Ok(step) => match step.rewrite_token {
                    Some(t) if !t.is_empty() => token = Some(t),
                    _ => {
                        return Err(Error::new(
                            ErrorKind::BackendError,
                            format!(
                                "copy {from} on {}: rewrite unfinished, no token",
                                self.shown
                            ),
                        ));
                    }
                },
                // The source is missing (the target's "directory" is never missing on GCS).
                Err(e) => return Err(self.err("copy", from, e)),
            }
        }
    }

    async fn health(&self) -> Result<HealthStatus> {
        let (bucket, latency) = timed(async {
            let _slot = self.slot().await;
            self.client
                .get_bucket(&GetBucketRequest {
                    bucket: self.bucket.clone(),
                    ..Default::default()
                })
                .await
                .map_err(|e| self.err("get bucket", &self.bucket, e))
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
            Ok(true) => "honoured (ifGenerationMatch=0)".to_owned(),
            Ok(false) => "IGNORED by this store: create-only writes are not guarded".to_owned(),
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

    /// Nothing to sweep: a multipart upload is one request, and a failed resumable upload is
    /// cancelled at once (GCS drops one that could not be cancelled after a week). Neither is
    /// ever visible as an object, nor listable, nor billed as storage.
    async fn sweep(&self, _older_than: Duration) -> Result<Swept> {
        Ok(Swept::default())
    }
}

/// The error for a first access token that could not be had (the client fetches one when it is
/// built): refused credentials are denied (exit 5), an unreachable token endpoint a network error
/// (exit 6), anything else a configuration error naming the credentials.
fn token_failure(what: &str, e: &dyn std::fmt::Display) -> Error {
    let detail = e.to_string();
    let lower = detail.to_ascii_lowercase();
    let kind = if [
        "invalid_grant",
        "unauthorized",
        "invalid_client",
        "403",
        "401",
        "denied",
    ]
    .iter()
    .any(|w| lower.contains(w))
    {
        ErrorKind::PermissionDenied
    } else if [
        "connect",
        "timed out",
        "timeout",
        "dns",
        "error sending request",
        "refused",
    ]
    .iter()
    .any(|w| lower.contains(w))
    {
        ErrorKind::NetworkError
    } else {
        ErrorKind::ConfigurationError
    };
    let verb = match kind {
        ErrorKind::PermissionDenied => "were refused by the token endpoint",
        ErrorKind::NetworkError => "could not reach the token endpoint",
        _ => "cannot be used",
    };
    Error::new(kind, format!("gcs backend: {what} {verb}: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_is_base64_of_the_big_endian_value() {
        // RFC 3720 test vector: 32 bytes of zeros -> 0x8A9136AA.
        assert_eq!(crc32c(&[0u8; 32]), "ipE2qg==");
    }

    #[test]
    fn statuses_keep_their_kinds() {
        let kind = |status, reason, message| classify(status, reason, message);
        assert_eq!(kind(404, "notFound", ""), (ErrorKind::NotFound, false));
        assert_eq!(
            kind(401, "required", ""),
            (ErrorKind::PermissionDenied, false)
        );
        assert_eq!(
            kind(403, "forbidden", ""),
            (ErrorKind::PermissionDenied, false)
        );
        assert_eq!(
            kind(403, "quotaExceeded", ""),
            (ErrorKind::QuotaExceeded, false)
        );
        assert_eq!(
            kind(412, "conditionNotMet", ""),
            (ErrorKind::Conflict, false)
        );
        assert_eq!(kind(409, "conflict", ""), (ErrorKind::Conflict, false));
        assert_eq!(
            kind(429, "rateLimitExceeded", ""),
            (ErrorKind::NetworkError, true)
        );
        assert_eq!(
            kind(503, "backendError", ""),
            (ErrorKind::NetworkError, true)
        );
        assert_eq!(
            kind(500, "backendError", ""),
            (ErrorKind::BackendError, true)
        );
        assert_eq!(kind(408, "", ""), (ErrorKind::Timeout, true));
        let damaged = "Provided CRC32C \"ipE2qg==\" doesn't match calculated CRC32C \"AAAAAA==\".";
        assert_eq!(
            kind(400, "invalid", damaged),
            (ErrorKind::NetworkError, true)
        );
        assert_eq!(
            kind(400, "invalid", "Invalid argument."),
            (ErrorKind::BackendError, false)
        );
    }

    #[test]
    fn error_documents_give_reason_and_message() {
        let doc = r#"{"error":{"code":403,"message":"Access denied.","errors":[{"message":"Access denied.","domain":"global","reason":"forbidden"}]}}"#;
        assert_eq!(
            error_document(doc),
            ("forbidden".into(), "Access denied.".into())
        );
        assert_eq!(
            error_document("Not Found\n"),
            (String::new(), "Not Found".into())
        );
    }

    #[test]
    fn configs_are_checked() {
        let ok = GcsConfig {
            endpoint: Some("http://127.0.0.1:4443".into()),
            anonymous: true,
            ..GcsConfig::from_url("ldv-bucket", "team/")
        };
        assert!(ok.validate().is_ok());
        let bad = [
            GcsConfig {
                bucket: "Upper".into(),
                ..ok.clone()
            },
            GcsConfig {
                bucket: "a/b".into(),
                ..ok.clone()
            },
            GcsConfig {
                credentials_path: Some("/k.json".into()),
                ..ok.clone()
            },
            GcsConfig {
                endpoint: Some("127.0.0.1:4443".into()),
                ..ok.clone()
            },
            GcsConfig {
                connection_pool_size: 0,
                ..ok.clone()
            },
            GcsConfig {
                resumable_chunk_size: Size(1000),
                ..ok.clone()
            },
        ];
        for config in bad {
            let e = config.validate().expect_err("a bad config");
            assert_eq!(e.kind(), ErrorKind::ConfigurationError, "{config:?}");
        }
    }

    #[test]
    fn profiles_parse_with_defaults_and_refuse_unknown_keys() {
        let c: GcsConfig = toml::from_str(
            "bucket = \"ml-vault\"\nprefix = \"team-a/\"\ncredentials_path = \"/k.json\"\n",
        )
        .expect("parse");
        assert_eq!(c.connection_pool_size, 16);
        assert_eq!(c.resumable_threshold, Size(RESUMABLE_THRESHOLD));
        assert!(!c.anonymous);
        assert!(toml::from_str::<GcsConfig>("bucket = \"b\"\nregion = \"x\"\n").is_err());
    }

    #[test]
    fn emulator_addresses_get_a_scheme_and_loopback_is_recognised() {
        assert_eq!(with_scheme("127.0.0.1:4443"), "http://127.0.0.1:4443");
        assert_eq!(with_scheme("https://h/"), "https://h");
        assert!(is_loopback("http://127.0.0.1:4443"));
        assert!(is_loopback("http://localhost:1"));
        assert!(is_loopback("http://[::1]:9/x"));
        assert!(!is_loopback("https://storage.googleapis.com"));
    }
}
