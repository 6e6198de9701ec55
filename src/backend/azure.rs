//! The Azure Blob Storage backend (the seed's `AzureBlobConfig`) on object_store's `azure` module.
//! Every upload carries a Content-MD5 the service verifies: object_store sends none, so the HTTP
//! service below it ([`AzureHttp`]) adds the header and signs shared-key requests again, since
//! that signature covers it. Objects above `block_threshold` go up as parallel blocks committed
//! by one Put Block List, each block retried by itself; create-only puts are one Put Blob with
//! `If-None-Match: *`. The same HTTP service reads the service's error answers (status, error
//! code, Retry-After), so not-found, denied, throttling and a missing container keep their kinds
//! when errors are mapped here, once. object_store's own retries are off: the retry layer above
//! retries and reports.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use http_body_util::BodyExt;
use md5::Digest;
use object_store::azure::{
    AzureAccessKey, AzureAuthorizer, AzureCredential, AzureCredentialProvider, MicrosoftAzure,
    MicrosoftAzureBuilder,
};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody,
    HttpResponse, HttpService, ReqwestConnector,
};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutOptions, PutPayload,
    RetryConfig, StaticCredentialProvider,
};
use serde::Deserialize;
use tokio::sync::Semaphore;
use url::Url;

use super::s3::TimeoutConfig;
use super::{
    Backend, HealthStatus, ObjectMeta, PutMode, Swept, timed, validate_key, validate_prefix,
};
use crate::backend::layer::Retrier;
use crate::config::{Secret, Size};
use crate::error::{Error, ErrorKind, Result};

/// Default size above which objects go up as blocks: every chunk of the default chunker (at most
/// 16 MiB) goes up in one request.
pub const BLOCK_THRESHOLD: u64 = 32 * 1024 * 1024;
/// Default block size.
pub const BLOCK_SIZE: u64 = 8 * 1024 * 1024;
/// Azure's largest block (API version 2019-12-12 and later).
const MAX_BLOCK: u64 = 4000 * 1024 * 1024;
/// The largest blob Azure takes in one Put Blob.
const MAX_SINGLE_PUT: u64 = 5000 * 1024 * 1024;
/// Blocks of one object in flight at once.
const BLOCKS_IN_FLIGHT: usize = 4;

/// Where `AZURE_STORAGE_*` credentials and settings are read from, first found wins.
const ENV_CONNECTION_STRING: &str = "AZURE_STORAGE_CONNECTION_STRING";
const ENV_ACCOUNT: [&str; 2] = ["AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_NAME"];
const ENV_KEY: [&str; 2] = ["AZURE_STORAGE_KEY", "AZURE_STORAGE_ACCOUNT_KEY"];
const ENV_SAS: &str = "AZURE_STORAGE_SAS_TOKEN";
const ENV_ENDPOINT: &str = "AZURE_STORAGE_ENDPOINT";

/// Azurite's development account and its published key (`UseDevelopmentStorage=true`).
const DEV_ACCOUNT: &str = "devstoreaccount1";
const DEV_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const DEV_ENDPOINT: &str = "http://127.0.0.1:10000/devstoreaccount1";

fn default_pool() -> usize {
    16
}

fn default_threshold() -> Size {
    Size(BLOCK_THRESHOLD)
}

fn default_block() -> Size {
    Size(BLOCK_SIZE)
}

/// Profile settings of an Azure Blob Storage vault (the seed's `AzureBlobConfig`).
///
/// Credentials: at most one of `account_key`, `sas_token` and `connection_string`; with none,
/// they come from `AZURE_STORAGE_CONNECTION_STRING`, `AZURE_STORAGE_KEY` or
/// `AZURE_STORAGE_SAS_TOKEN`, in that order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureConfig {
    /// Storage account; default: the connection string's, else `AZURE_STORAGE_ACCOUNT`.
    #[serde(alias = "account")]
    pub account_name: Option<String>,
    /// Container name.
    #[serde(alias = "container")]
    pub container_name: String,
    /// Blob name prefix inside the container (the vault lives below it).
    #[serde(default)]
    pub prefix: String,
    /// Blob service URL; default: the connection string's, else `AZURE_STORAGE_ENDPOINT`, else
    /// `https://<account>.blob.core.windows.net`. For an IP address or `localhost` (Azurite) the
    /// account goes in the path: `http://127.0.0.1:10000` means `.../devstoreaccount1`.
    pub endpoint: Option<String>,
    /// Shared key of the account (then the profile file must be private, mode 0600).
    pub account_key: Option<Secret>,
    /// A shared access signature (the query string, with or without its `?`).
    pub sas_token: Option<Secret>,
    /// A connection string as the Azure portal shows it (`AccountName=...;AccountKey=...`).
    pub connection_string: Option<Secret>,
    /// Requests in flight at once.
    #[serde(default = "default_pool")]
    pub connection_pool_size: usize,
    /// Objects larger than this go up as blocks.
    #[serde(default = "default_threshold")]
    pub block_threshold: Size,
    /// Size of each block.
    #[serde(default = "default_block")]
    pub block_size: Size,
}

impl AzureConfig {
    /// A config for `az://container/prefix` with everything else from the environment.
    pub fn from_url(container: &str, prefix: &str) -> Self {
        Self {
            account_name: None,
            container_name: container.to_owned(),
            prefix: prefix.to_owned(),
            endpoint: None,
            account_key: None,
            sas_token: None,
            connection_string: None,
            connection_pool_size: default_pool(),
            block_threshold: default_threshold(),
            block_size: default_block(),
        }
    }

    /// Whether the profile itself holds a secret.
    pub fn holds_secrets(&self) -> bool {
        self.account_key.is_some() || self.sas_token.is_some() || self.connection_string.is_some()
    }

    /// Checks the settings, naming the one that is wrong.
    pub fn validate(&self) -> Result<()> {
        check_container_name(&self.container_name)?;
        let sources = [
            self.account_key.is_some(),
            self.sas_token.is_some(),
            self.connection_string.is_some(),
        ];
        if sources.iter().filter(|s| **s).count() > 1 {
            return Err(Error::config(
                "azure backend: give one of account_key, sas_token and connection_string",
            ));
        }
        if let Some(account) = &self.account_name {
            check_account_name(account)?;
        }
        if let Some(endpoint) = &self.endpoint {
            parse_endpoint(endpoint)?;
        }
        if let Some(cs) = &self.connection_string {
            ConnectionString::parse(cs.expose())?;
        }
        if self.connection_pool_size == 0 {
            return Err(Error::config(
                "azure backend: connection_pool_size must be at least 1",
            ));
        }
        if self.block_size.0 == 0 || self.block_size.0 > MAX_BLOCK {
            return Err(Error::config(
                "azure backend: block_size must be between 1 byte and 4000 MiB",
            ));
        }
        Ok(())
    }

    /// Account, endpoint and credential, from the profile, then the environment.
    fn resolve(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Resolved> {
        let first = |names: &[&str]| names.iter().find_map(|n| env(n).filter(|v| !v.is_empty()));
        let from_env = !self.holds_secrets();
        let connection = match (&self.connection_string, from_env) {
            (Some(cs), _) => Some(ConnectionString::parse(cs.expose())?),
            (None, true) => first(&[ENV_CONNECTION_STRING])
                .map(|cs| {
                    ConnectionString::parse(&cs).map_err(|e| e.context(ENV_CONNECTION_STRING))
                })
                .transpose()?,
            (None, false) => None,
        };
        let connection = connection.unwrap_or_default();
        let account = match (&self.account_name, &connection.account) {
            (Some(a), Some(c)) if a != c => {
                return Err(Error::config(format!(
                    "azure backend: account_name {a:?} differs from the connection string's AccountName {c:?}"
                )));
            }
            (Some(a), _) | (None, Some(a)) => a.clone(),
            (None, None) => first(&ENV_ACCOUNT).ok_or_else(|| {
                Error::config(
                    "azure backend: no storage account: set account_name in the profile, a connection string, or AZURE_STORAGE_ACCOUNT",
                )
            })?,
        };
        check_account_name(&account)?;
        let credential = if let Some(key) = &self.account_key {
            Credential::Key(key.clone())
        } else if let Some(sas) = &self.sas_token {
            Credential::Sas(sas.clone())
        } else if let Some(c) = connection.credential.clone() {
            c
        } else if let Some(key) = from_env.then(|| first(&ENV_KEY)).flatten() {
            Credential::Key(Secret::new(key))
        } else if let Some(sas) = from_env.then(|| first(&[ENV_SAS])).flatten() {
            Credential::Sas(Secret::new(sas))
        } else {
            return Err(Error::config(format!(
                "azure backend: no credentials for account {account}: set account_key, sas_token or connection_string in the profile, or AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN"
            )));
        };
        let endpoint = match (&self.endpoint, &connection.endpoint) {
            (Some(e), _) => parse_endpoint(e)?,
            (None, Some(e)) => e.clone(),
            (None, None) => match first(&[ENV_ENDPOINT]) {
                Some(e) => parse_endpoint(&e).map_err(|e| e.context(ENV_ENDPOINT))?,
                None => parse_endpoint(&format!("https://{account}.blob.core.windows.net"))?,
            },
        };
        Ok(Resolved {
            endpoint: with_account_path(endpoint, &account),
            account,
            credential,
        })
    }
}

/// Container names: 3 to 63 lowercase letters, digits and single hyphens, starting and ending
/// with a letter or digit (or `$root`).
fn check_container_name(name: &str) -> Result<()> {
    let ok = name == "$root"
        || ((3..=63).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-')
            && !name.contains("--"));
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "azure backend: container name {name:?} is not valid (3-63 lowercase letters, digits and single hyphens)"
        )))
    }
}

/// Account names: 3 to 24 lowercase letters and digits.
fn check_account_name(name: &str) -> Result<()> {
    if (3..=24).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        Ok(())
    } else {
        Err(Error::config(format!(
            "azure backend: account name {name:?} is not valid (3-24 lowercase letters and digits)"
        )))
    }
}

/// An http(s) URL with no query (a SAS goes in `sas_token`, not in the endpoint).
fn parse_endpoint(endpoint: &str) -> Result<Url> {
    let url = crate::backend::check_endpoint(endpoint, "azure backend: endpoint")?;
    if url.query().is_some() {
        return Err(Error::config(
            "azure backend: endpoint: has a query string; give a SAS token as sas_token",
        ));
    }
    Ok(url)
}

/// Emulators (an IP address or `localhost` as host) take the account as the first path segment.
fn with_account_path(mut url: Url, account: &str) -> Url {
    let ip_style = matches!(
        url.host(),
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_) | url::Host::Domain("localhost"))
    );
    if ip_style && url.path().trim_matches('/').is_empty() {
        url.set_path(account);
    }
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    url
}

/// How requests are authorized.
#[derive(Clone)]
enum Credential {
    /// The account's shared key (base64).
    Key(Secret),
    /// A shared access signature.
    Sas(Secret),
}

/// The parts of a connection string ldv uses.
#[derive(Default)]
struct ConnectionString {
    account: Option<String>,
    endpoint: Option<Url>,
    credential: Option<Credential>,
}

impl ConnectionString {
    /// Parses `Key=Value;...`; errors name the part, never the value.
    fn parse(text: &str) -> Result<Self> {
        let bad = |why: String| Error::config(format!("azure backend: connection string: {why}"));
        let mut fields = std::collections::HashMap::new();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| bad("a part has no '=' (expected Key=Value;...)".into()))?;
            fields.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
        let get = |k: &str| fields.get(k).filter(|v| !v.is_empty()).cloned();
        if get("usedevelopmentstorage").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(Self {
                account: Some(DEV_ACCOUNT.into()),
                endpoint: Some(parse_endpoint(DEV_ENDPOINT)?),
                credential: Some(Credential::Key(Secret::new(DEV_KEY))),
            });
        }
        let account = get("accountname");
        let endpoint = match (get("blobendpoint"), &account) {
            (Some(e), _) => Some(parse_endpoint(&e).map_err(|e| bad(e.message().into()))?),
            (None, Some(a)) => {
                let scheme = get("defaultendpointsprotocol").unwrap_or_else(|| "https".into());
                let suffix = get("endpointsuffix").unwrap_or_else(|| "core.windows.net".into());
                Some(
                    parse_endpoint(&format!("{scheme}://{a}.blob.{suffix}"))
                        .map_err(|e| bad(e.message().into()))?,
                )
            }
            (None, None) => None,
        };
        let credential = match (get("accountkey"), get("sharedaccesssignature")) {
            (Some(_), Some(_)) => {
                return Err(bad("has both AccountKey and SharedAccessSignature".into()));
            }
            (Some(k), None) => Some(Credential::Key(Secret::new(k))),
            (None, Some(s)) => Some(Credential::Sas(Secret::new(s))),
            (None, None) => None,
        };
        if credential.is_none() {
            return Err(bad("has no AccountKey or SharedAccessSignature".into()));
        }
        if account.is_none() && endpoint.is_none() {
            return Err(bad("has no AccountName or BlobEndpoint".into()));
        }
        Ok(Self {
            account,
            endpoint,
            credential,
        })
    }
}

/// What the profile and environment resolve to.
struct Resolved {
    account: String,
    endpoint: Url,
    credential: Credential,
}

/// The service's answer to a failed request, read by [`AzureHttp`] before object_store sees it.
#[derive(Debug)]
struct Failure {
    status: u16,
    /// Azure's error code (`BlobNotFound`, `AuthenticationFailed`, `ServerBusy`, ...).
    code: String,
    /// The first line of the service's message.
    message: String,
    retry_after: Option<Duration>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for Failure {}

impl Failure {
    async fn read(response: HttpResponse) -> Self {
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let header_code = header("x-ms-error-code");
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.into_body().bytes().await.unwrap_or_default();
        let body = String::from_utf8_lossy(&body[..body.len().min(16 * 1024)]).into_owned();
        let element = |name: &str| {
            let open = format!("<{name}>");
            let start = body.find(&open)? + open.len();
            let end = body[start..].find(&format!("</{name}>"))? + start;
            Some(body[start..end].to_owned())
        };
        let code = header_code.or_else(|| element("Code")).unwrap_or_default();
        let message = element("Message")
            .and_then(|m| m.lines().next().map(str::to_owned))
            .unwrap_or_default();
        Self {
            status,
            code,
            message,
            retry_after,
        }
    }

    /// The service refused an upload whose body did not match its Content-MD5: it was damaged on
    /// the way (Azure answers `Md5Mismatch`, Azurite an `InvalidOperation` naming the MD5).
    fn is_damaged_upload(&self) -> bool {
        self.status == 400
            && (matches!(self.code.as_str(), "Md5Mismatch" | "InvalidMd5")
                || self.message.contains("contentMD5")
                || self.message.contains("MD5"))
    }
}

/// The HTTP service under object_store: adds a Content-MD5 to every upload (Put Blob, Put Block,
/// Put Block List) and re-signs shared-key requests to cover it; turns the service's error
/// answers into [`Failure`]s.
#[derive(Debug)]
struct AzureHttp {
    inner: HttpClient,
    credentials: AzureCredentialProvider,
    account: String,
}

#[async_trait]
impl HttpService for AzureHttp {
    async fn call(&self, mut req: HttpRequest) -> std::result::Result<HttpResponse, HttpError> {
        if req.method() == http::Method::PUT && req.body().content_length() > 0 {
            let mut body = req.body().clone();
            let mut md5 = md5::Md5::new();
            while let Some(frame) = body.frame().await {
                if let Some(data) = frame?.data_ref() {
                    md5.update(data);
                }
            }
            let digest = base64::engine::general_purpose::STANDARD.encode(md5.finalize());
            req.headers_mut().insert(
                "content-md5",
                http::HeaderValue::from_str(&digest).expect("base64 is a valid header value"),
            );
            let signed = req
                .headers()
                .get(http::header::AUTHORIZATION)
                .is_some_and(|v| v.as_bytes().starts_with(b"SharedKey "));
            if signed {
                req.headers_mut().remove(http::header::AUTHORIZATION);
                let credential = self
                    .credentials
                    .get_credential()
                    .await
                    .map_err(|e| HttpError::new(HttpErrorKind::Unknown, e))?;
                AzureAuthorizer::new(&credential, &self.account)
                    .try_authorize(&mut req)
                    .map_err(|e| HttpError::new(HttpErrorKind::Unknown, e))?;
            }
        }
        let response = self.inner.execute(req).await?;
        if response.status().is_client_error() || response.status().is_server_error() {
            let failure = Failure::read(response).await;
            return Err(HttpError::new(HttpErrorKind::Unknown, failure));
        }
        Ok(response)
    }
}

/// Builds [`AzureHttp`] on object_store's reqwest client.
#[derive(Debug)]
struct AzureConnector {
    credentials: AzureCredentialProvider,
    account: String,
}

impl HttpConnector for AzureConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(AzureHttp {
            inner: ReqwestConnector::default().connect(options)?,
            credentials: Arc::clone(&self.credentials),
            account: self.account.clone(),
        }))
    }
}

/// A backend storing objects as block blobs in an Azure container below a prefix.
pub struct AzureBackend {
    store: MicrosoftAzure,
    http: HttpClient,
    credentials: AzureCredentialProvider,
    account: String,
    container: String,
    container_url: Url,
    prefix: String,
    shown: String,
    endpoint: String,
    threshold: u64,
    block_size: u64,
    page_size: Option<usize>,
    slots: Arc<Semaphore>,
    parts: Option<Retrier>,
}

impl fmt::Debug for AzureBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AzureBackend")
            .field("account", &self.account)
            .field("container", &self.container)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for AzureBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl AzureBackend {
    /// Builds a client for `config` with `timeouts`; what the profile leaves out comes from the
    /// `AZURE_STORAGE_*` environment variables. `parts` retries the blocks of a large upload one
    /// by one, so a lost block does not restart the whole upload.
    pub fn new(
        config: &AzureConfig,
        timeouts: &TimeoutConfig,
        parts: Option<Retrier>,
    ) -> Result<Self> {
        Self::with_env(config, timeouts, parts, &|name| std::env::var(name).ok())
    }

    fn with_env(
        config: &AzureConfig,
        timeouts: &TimeoutConfig,
        parts: Option<Retrier>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        config.validate()?;
        let Resolved {
            account,
            endpoint,
            credential,
        } = config.resolve(env)?;
        let credential = match credential {
            Credential::Key(key) => {
                AzureCredential::AccessKey(AzureAccessKey::try_new(key.expose()).map_err(|_| {
                    Error::config("azure backend: the account key is not valid base64")
                })?)
            }
            Credential::Sas(sas) => AzureCredential::SASToken(
                object_store::azure::split_sas(sas.expose()).map_err(|_| {
                    Error::config(
                        "azure backend: the SAS token is not a query string (sv=...&sig=...)",
                    )
                })?,
            ),
        };
        let credentials: AzureCredentialProvider =
            Arc::new(StaticCredentialProvider::new(credential));
        let options = ClientOptions::new()
            .with_allow_http(endpoint.scheme() == "http")
            .with_connect_timeout(timeouts.connect)
            .with_read_timeout(timeouts.read)
            .with_timeout(timeouts.read.max(timeouts.write))
            .with_pool_max_idle_per_host(config.connection_pool_size);
        let connector = AzureConnector {
            credentials: Arc::clone(&credentials),
            account: account.clone(),
        };
        let http = connector
            .connect(&options)
            .map_err(|e| Error::config(format!("azure backend: HTTP client: {e}")))?;
        let store = MicrosoftAzureBuilder::new()
            .with_account(&account)
            .with_container_name(&config.container_name)
            .with_endpoint(endpoint.to_string())
            .with_credentials(Arc::clone(&credentials))
            // The retry layer above retries and reports; object_store must not retry silently.
            .with_retry(RetryConfig {
                max_retries: 0,
                ..RetryConfig::default()
            })
            .with_client_options(options)
            .with_http_connector(connector)
            .build()
            .map_err(|e| Error::config(format!("azure backend: {e}")))?;
        let prefix = match config.prefix.trim_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        if !prefix.is_empty() {
            validate_prefix(&prefix)?;
        }
        let mut container_url = endpoint.clone();
        container_url
            .path_segments_mut()
            .map_err(|()| Error::config("azure backend: endpoint cannot hold a path"))?
            .push(&config.container_name);
        Ok(Self {
            store,
            http,
            credentials,
            shown: format!("az://{}/{}", config.container_name, prefix),
            endpoint: endpoint.to_string().trim_end_matches('/').to_owned(),
            account,
            container: config.container_name.clone(),
            container_url,
            prefix,
            threshold: config.block_threshold.0,
            block_size: config.block_size.0,
            page_size: None,
            slots: Arc::new(Semaphore::new(config.connection_pool_size)),
            parts,
        })
    }

    /// Asks for listings in pages of at most `n` blobs (the service's default is 5,000).
    pub fn with_list_page_size(mut self, n: usize) -> Self {
        self.page_size = Some(n.max(1));
        self
    }

    /// Creates the container (an existing one is fine). object_store has no container calls, so
    /// this is one Create Container request, signed by object_store's authorizer.
    pub async fn create_container(&self) -> Result<()> {
        let mut url = self.container_url.clone();
        url.query_pairs_mut().append_pair("restype", "container");
        match self.send_signed(http::Method::PUT, url).await {
            Err(e) if failure_of(&e).is_some_and(|f| f.code == "ContainerAlreadyExists") => Ok(()),
            sent => sent.map_err(|e| self.err("create container", &self.container, e)),
        }
    }

    /// Sends one body-less request to `url`, authorized like object_store's own, through the
    /// same HTTP service (so its failures read the same way).
    async fn send_signed(&self, method: http::Method, url: Url) -> object_store::Result<()> {
        let generic = |e: Box<dyn std::error::Error + Send + Sync>| object_store::Error::Generic {
            store: "MicrosoftAzure",
            source: e,
        };
        let mut req = http::Request::builder()
            .method(method)
            .uri(url.as_str())
            .header(http::header::CONTENT_LENGTH, "0")
            .body(HttpRequestBody::empty())
            .map_err(|e| generic(Box::new(e)))?;
        let credential = self.credentials.get_credential().await?;
        AzureAuthorizer::new(&credential, &self.account).try_authorize(&mut req)?;
        let _slot = self.slot().await;
        self.http
            .execute(req)
            .await
            .map(|_| ())
            .map_err(|e| generic(Box::new(e)))
    }

    /// Deletes one blob with Delete Blob. object_store deletes only through Blob Batch, whose
    /// per-blob answers lose the error kind and which Azurite refuses under a SAS.
    async fn delete_path(&self, key: &str, path: &Path) -> Result<()> {
        let mut url = self.container_url.clone();
        url.path_segments_mut()
            .expect("the container URL has a path")
            .extend(path.parts());
        self.send_signed(http::Method::DELETE, url)
            .await
            .map_err(|e| self.err("delete", key, e))
    }

    fn path(&self, key: &str) -> Result<Path> {
        validate_key(key)?;
        Path::parse(escape(&format!("{}{key}", self.prefix)))
            .map_err(|e| Error::invalid_key(key, format!("not a blob name: {e}")))
    }

    async fn slot(&self) -> tokio::sync::SemaphorePermit<'_> {
        self.slots
            .acquire()
            .await
            .expect("the request semaphore is never closed")
    }

    /// Maps an object_store error on `key` during `op` to an ldv error, keeping its kind.
    fn err(&self, op: &str, key: &str, e: object_store::Error) -> Error {
        let at = format!("{op} {key} on {} at {}", self.shown, self.endpoint);
        tracing::debug!("{at}: {e}");
        if let Some(f) = failure_of(&e) {
            let detail = format!("{at}: {f}").trim_end().to_owned();
            return match (f.status, f.code.as_str()) {
                (_, "ContainerNotFound") => Error::config(format!(
                    "container {} does not exist at {}: create it first (az storage container create --name {})",
                    self.container, self.endpoint, self.container
                )),
                (404, _) => Error::not_found(key),
                (401 | 403, _) => Error::new(ErrorKind::PermissionDenied, detail),
                (409 | 412, _) => Error::new(ErrorKind::Conflict, detail),
                (503 | 429, _) | (_, "ServerBusy") => Error::new(ErrorKind::NetworkError, detail)
                    .with_retry_after(f.retry_after.unwrap_or(Duration::from_secs(1))),
                // The body was damaged on the way and refused; resending the intact bytes can
                // succeed.
                _ if f.is_damaged_upload() => {
                    Error::new(ErrorKind::NetworkError, detail).with_transient(true)
                }
                (413, _) => Error::new(ErrorKind::QuotaExceeded, detail),
                (500..=599, _) | (_, "OperationTimedOut" | "InternalError") => {
                    Error::new(ErrorKind::BackendError, detail).with_transient(true)
                }
                _ => Error::new(ErrorKind::BackendError, detail),
            };
        }
        match &e {
            object_store::Error::NotFound { .. } => return Error::not_found(key),
            object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. } => {
                return Error::new(ErrorKind::Conflict, format!("{at}: already exists"));
            }
            object_store::Error::InvalidPath { .. } => {
                return Error::invalid_key(key, "not a blob name");
            }
            _ => {}
        }
        let cause = root_cause(&e);
        match http_error_of(&e).map(HttpError::kind) {
            Some(HttpErrorKind::Timeout) => {
                Error::new(ErrorKind::Timeout, format!("{at}: timed out ({cause})"))
            }
            Some(_) => Error::new(ErrorKind::NetworkError, format!("{at}: {cause}")),
            None => Error::new(ErrorKind::BackendError, format!("{at}: {cause}")),
        }
    }

    async fn head_path(&self, key: &str, path: &Path) -> Result<ObjectMeta> {
        let meta = {
            let _slot = self.slot().await;
            self.store.head(path).await
        }
        .map_err(|e| self.err("head", key, e))?;
        Ok(ObjectMeta {
            key: key.to_owned(),
            size: meta.size,
            modified: Some(SystemTime::from(meta.last_modified)),
        })
    }

    /// [`Backend::put`]; `whole` sends up to [`MAX_SINGLE_PUT`] bytes in one Put Blob.
    async fn store(&self, key: &str, data: Bytes, mode: PutMode, whole: bool) -> Result<()> {
        let path = self.path(key)?;
        // Put Block List takes no If-None-Match through object_store: create-only puts (manifests
        // and locks, all small) are always one conditional Put Blob.
        let limit = if whole {
            MAX_SINGLE_PUT
        } else {
            self.threshold
        };
        if mode == PutMode::Overwrite && data.len() as u64 > limit {
            self.put_blocks(key, &path, data).await
        } else {
            self.put_blob(key, &path, data, mode).await
        }
    }

    async fn put_blob(&self, key: &str, path: &Path, data: Bytes, mode: PutMode) -> Result<()> {
        let mode = match mode {
            PutMode::Overwrite => object_store::PutMode::Overwrite,
            PutMode::CreateOnly => object_store::PutMode::Create,
        };
        let options = PutOptions {
            mode,
            ..PutOptions::default()
        };
        let _slot = self.slot().await;
        self.store
            .put_opts(path, PutPayload::from(data), options)
            .await
            .map(|_| ())
            .map_err(|e| self.err("put", key, e))
    }

    async fn put_block(&self, key: &str, path: &Path, index: usize, body: Bytes) -> Result<PartId> {
        let _slot = self.slot().await;
        self.store
            .put_part(path, &String::new(), index, PutPayload::from(body))
            .await
            .map_err(|e| self.err(&format!("put block {} of", index + 1), key, e))
    }

    /// Uploads `data` as blocks, each retried by itself, then commits them with one Put Block
    /// List: the blob changes only then, and wholly. Blocks of a failed upload are never part of
    /// a blob; the service discards them after a week.
    async fn put_blocks(&self, key: &str, path: &Path, data: Bytes) -> Result<()> {
        let block = usize::try_from(self.block_size).unwrap_or(usize::MAX);
        let blocks: Vec<(usize, Bytes)> = (0..data.len().div_ceil(block))
            .map(|i| {
                let start = i * block;
                (i, data.slice(start..(start + block).min(data.len())))
            })
            .collect();
        let ids: Vec<PartId> = futures::stream::iter(blocks)
            .map(|(index, body)| async move {
                let attempt = || self.put_block(key, path, index, body.clone());
                match &self.parts {
                    Some(retrier) => {
                        retrier
                            .run(&format!("put block {} of {key}", index + 1), attempt)
                            .await
                    }
                    None => attempt().await,
                }
            })
            .buffered(BLOCKS_IN_FLIGHT)
            .try_collect()
            .await?;
        let _slot = self.slot().await;
        self.store
            .complete_multipart(path, &String::new(), ids)
            .await
            .map(|_| ())
            .map_err(|e| self.err("put", key, e))
    }

    /// Whether the store refuses a second create-only put of the same key.
    async fn probe_create_only(&self) -> Result<bool> {
        let key = format!("health-probe-{:016x}", rand::random::<u64>());
        let path = self.path(&key)?;
        let data = |b: &'static [u8]| Bytes::from_static(b);
        self.put_blob(&key, &path, data(b"1"), PutMode::CreateOnly)
            .await?;
        let second = self
            .put_blob(&key, &path, data(b"2"), PutMode::CreateOnly)
            .await;
        let _ = self.delete_path(&key, &path).await;
        match second {
            Err(e) if e.kind() == ErrorKind::Conflict => Ok(true),
            Ok(()) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// One page of blobs below `full` (the prefixed listing prefix).
    async fn list_page(
        &self,
        full: &str,
        listed: &str,
        token: Option<String>,
    ) -> Result<(Vec<ObjectMeta>, Option<String>)> {
        let options = PaginatedListOptions {
            max_keys: self.page_size,
            page_token: token,
            ..PaginatedListOptions::default()
        };
        let page = {
            let _slot = self.slot().await;
            self.store
                .list_paginated((!full.is_empty()).then_some(full), options)
                .await
        }
        .map_err(|e| self.err("list", listed, e))?;
        let objects = page
            .result
            .objects
            .into_iter()
            .filter_map(|o| {
                let name = unescape(o.location.as_ref())?;
                Some(ObjectMeta {
                    key: name.strip_prefix(&self.prefix)?.to_owned(),
                    size: o.size,
                    modified: Some(SystemTime::from(o.last_modified)),
                })
            })
            .collect();
        Ok((objects, page.page_token))
    }
}

/// The blob name of a key. Azure turns `\` in a blob name into `/`, so `a\b` and `a/b` would be
/// one blob: `%` and `\` are written as `%25` and `%5C`, and every other character as itself.
/// Each character's code is a whole, so a key starts with a prefix exactly when its blob name
/// starts with the prefix's, and listings by prefix stay exact.
fn escape(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for c in key.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\\' => out.push_str("%5C"),
            c => out.push(c),
        }
    }
    out
}

/// The key of a blob name written by [`escape`]; `None` for a name it cannot have written.
fn unescape(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let code = rest.get(at..at + 3)?;
        out.push(match code {
            "%25" => '%',
            "%5C" => '\\',
            _ => return None,
        });
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// The [`Failure`] read from the service's answer, if the error carries one.
fn failure_of<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Failure> {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(f) = c.downcast_ref::<Failure>() {
            return Some(f);
        }
        cause = c.source();
    }
    None
}

/// The transport error inside `e`, if any.
fn http_error_of<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a HttpError> {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(h) = c.downcast_ref::<HttpError>() {
            return Some(h);
        }
        cause = c.source();
    }
    None
}

/// The innermost cause of an error, on one line: "Connection refused (os error 111)" rather than
/// object_store's chain (whose outer layers may name the request URL).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string().replace('\n', " ")
}

#[async_trait]
impl Backend for AzureBackend {
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<()> {
        self.store(key, data, mode, false).await
    }

    async fn put_whole(&self, key: &str, data: Bytes) -> Result<()> {
        self.store(key, data, PutMode::Overwrite, true).await
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let path = self.path(key)?;
        let _slot = self.slot().await;
        let got = self
            .store
            .get(&path)
            .await
            .map_err(|e| self.err("get", key, e))?;
        got.bytes().await.map_err(|e| self.err("get", key, e))
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let path = self.path(key)?;
        // An empty range, or one starting beyond any blob (Azure's limit is under 200 TiB), has no
        // bytes to read: only the blob must exist.
        if range.start >= range.end || range.start > i64::MAX as u64 {
            self.head_path(key, &path).await?;
            return Ok(Bytes::new());
        }
        let wanted = if range.end > i64::MAX as u64 {
            GetRange::Offset(range.start)
        } else {
            GetRange::Bounded(range.clone())
        };
        let options = GetOptions {
            range: Some(wanted),
            ..GetOptions::default()
        };
        let got = {
            let _slot = self.slot().await;
            self.store.get_opts(&path, options).await
        };
        let got = match got {
            Ok(got) => got,
            // A range starting at or past the end: the contract says "no bytes". Azure answers
            // 416; object_store refuses some answers itself (Azurite's for a range starting at
            // the end), so for any other refusal the blob's size decides.
            Err(e) if failure_of(&e).is_some_and(|f| f.status == 416) => return Ok(Bytes::new()),
            Err(e) => {
                let e = self.err("get", key, e);
                if e.kind() == ErrorKind::BackendError
                    && self.head_path(key, &path).await?.size <= range.start
                {
                    return Ok(Bytes::new());
                }
                return Err(e);
            }
        };
        let _slot = self.slot().await;
        got.bytes().await.map_err(|e| self.err("get", key, e))
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        let path = self.path(key)?;
        self.head_path(key, &path).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let path = self.path(key)?;
        self.delete_path(key, &path).await
    }

    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta>> {
        if let Err(e) = validate_prefix(prefix) {
            return futures::stream::once(async { Err(e) }).boxed();
        }
        let full = escape(&format!("{}{prefix}", self.prefix));
        let listed = prefix.to_owned();
        // object_store leaves out a blob named exactly like the prefix; a prefix that is a valid
        // key is looked up by itself (ldv's own prefixes end in '/', so never are).
        let exact = validate_key(prefix).is_ok().then(|| prefix.to_owned());
        let exact = futures::stream::iter(exact)
            .then(move |key| async move {
                match self.head(&key).await {
                    Ok(meta) => Some(Ok(meta)),
                    Err(e) if e.kind() == ErrorKind::NotFound => None,
                    Err(e) => Some(Err(e)),
                }
            })
            .filter_map(futures::future::ready);
        let pages =
            futures::stream::try_unfold(Some(None), move |state: Option<Option<String>>| {
                let full = full.clone();
                let listed = listed.clone();
                async move {
                    let Some(token) = state else {
                        return Ok(None);
                    };
                    let (objects, next) = self.list_page(&full, &listed, token).await?;
                    Ok(Some((objects, next.map(Some))))
                }
            })
            .map_ok(|objects| futures::stream::iter(objects.into_iter().map(Ok)))
            .try_flatten();
        exact.chain(pages).boxed()
    }

    async fn copy(&self, from: &str, to: &str) -> Result<()> {
        let src = self.path(from)?;
        let dst = self.path(to)?;
        if src == dst {
            // Copying a blob onto itself changes nothing; only the source must exist.
            return self.head_path(from, &src).await.map(|_| ());
        }
        let _slot = self.slot().await;
        self.store.copy(&src, &dst).await.map_err(|e| {
            let e = self.err("copy", from, e);
            if e.kind() == ErrorKind::NotFound {
                Error::not_found(from)
            } else {
                e
            }
        })
    }

    async fn health(&self) -> Result<HealthStatus> {
        let (listed, latency) = timed(async {
            let _slot = self.slot().await;
            let options = PaginatedListOptions {
                max_keys: Some(1),
                ..PaginatedListOptions::default()
            };
            let prefix = escape(&self.prefix);
            self.store
                .list_paginated((!prefix.is_empty()).then_some(prefix.as_str()), options)
                .await
                .map_err(|e| self.err("list container", &self.container, e))
        })
        .await;
        let latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        let mut details = vec![
            ("endpoint".to_owned(), self.endpoint.clone()),
            ("account".to_owned(), self.account.clone()),
        ];
        if let Err(e) = listed {
            return Ok(HealthStatus {
                healthy: false,
                latency_ms,
                last_error: Some(e.to_string()),
                details,
            });
        }
        let create_only = match self.probe_create_only().await {
            Ok(true) => "honoured (If-None-Match: *)".to_owned(),
            Ok(false) => "IGNORED by this store".to_owned(),
            Err(e) => format!("could not probe: {e}"),
        };
        details.push(("create_only".into(), create_only));
        details.push(("upload_checksum".into(), "Content-MD5".into()));
        Ok(HealthStatus {
            healthy: true,
            latency_ms,
            last_error: None,
            details,
        })
    }

    fn max_key_len(&self) -> usize {
        crate::backend::MAX_KEY_LEN.saturating_sub(self.prefix.len())
    }

    /// Interrupted block uploads leave only uncommitted blocks: never part of a blob, invisible
    /// to listings, and discarded by the service after a week. There is nothing else to sweep.
    async fn sweep(&self, _older_than: Duration) -> Result<Swept> {
        Ok(Swept::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn connection_strings_give_account_endpoint_and_credential() {
        let c = ConnectionString::parse(
            "DefaultEndpointsProtocol=http;AccountName=acct1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:9/acct1;",
        )
        .unwrap();
        assert_eq!(c.account.as_deref(), Some("acct1"));
        assert_eq!(c.endpoint.unwrap().as_str(), "http://127.0.0.1:9/acct1");
        assert!(matches!(c.credential, Some(Credential::Key(k)) if k.expose() == "a2V5"));

        let c = ConnectionString::parse("AccountName=acct2;SharedAccessSignature=sv=1&sig=x%3D")
            .unwrap();
        assert_eq!(
            c.endpoint.unwrap().as_str(),
            "https://acct2.blob.core.windows.net/"
        );
        assert!(matches!(c.credential, Some(Credential::Sas(s)) if s.expose() == "sv=1&sig=x%3D"));

        let c = ConnectionString::parse("UseDevelopmentStorage=true").unwrap();
        assert_eq!(c.account.as_deref(), Some(DEV_ACCOUNT));

        for (text, needle) in [
            ("AccountName=a", "no AccountKey"),
            ("AccountKey=secret-canary", "no AccountName"),
            (
                "AccountName=abc;AccountKey=k;SharedAccessSignature=s",
                "both",
            ),
            ("garbage-secret-canary", "no '='"),
        ] {
            let e = ConnectionString::parse(text).err().expect(text);
            assert!(e.message().contains(needle), "{text}: {e}");
            assert!(!e.message().contains("canary"), "{e}");
        }
    }

    #[test]
    fn profile_settings_win_over_the_environment() {
        let vars: &[(&str, &str)] = &[
            ("AZURE_STORAGE_ACCOUNT", "envacct"),
            ("AZURE_STORAGE_KEY", "ZW52"),
            ("AZURE_STORAGE_ENDPOINT", "http://127.0.0.1:7"),
        ];
        let url = AzureConfig::from_url("box", "p");
        let r = url.resolve(&env(vars)).unwrap();
        assert_eq!(r.account, "envacct");
        assert_eq!(r.endpoint.as_str(), "http://127.0.0.1:7/envacct");
        assert!(matches!(r.credential, Credential::Key(k) if k.expose() == "ZW52"));

        let profile = AzureConfig {
            account_name: Some("mine".into()),
            sas_token: Some(Secret::new("sv=1&sig=abc")),
            endpoint: Some("https://mine.blob.core.windows.net/".into()),
            ..AzureConfig::from_url("box", "")
        };
        let r = profile.resolve(&env(vars)).unwrap();
        assert_eq!(r.account, "mine");
        assert_eq!(r.endpoint.as_str(), "https://mine.blob.core.windows.net/");
        assert!(matches!(r.credential, Credential::Sas(_)));

        let e = AzureConfig::from_url("box", "")
            .resolve(&env(&[("AZURE_STORAGE_ACCOUNT", "abc")]))
            .err()
            .unwrap();
        assert!(e.message().contains("no credentials"), "{e}");
    }

    #[test]
    fn bad_settings_are_named() {
        for (config, needle) in [
            (AzureConfig::from_url("Bad_Name", ""), "container name"),
            (
                AzureConfig {
                    account_key: Some(Secret::new("k")),
                    sas_token: Some(Secret::new("s")),
                    ..AzureConfig::from_url("box", "")
                },
                "one of account_key",
            ),
            (
                AzureConfig {
                    endpoint: Some("http://127.0.0.1:1/a?sig=secret".into()),
                    ..AzureConfig::from_url("box", "")
                },
                "query string",
            ),
            (
                AzureConfig {
                    account_name: Some("UPPER".into()),
                    ..AzureConfig::from_url("box", "")
                },
                "account name",
            ),
        ] {
            let e = config.validate().unwrap_err();
            assert!(e.message().contains(needle), "{needle}: {e}");
            assert!(!e.message().contains("secret"), "{e}");
        }
    }

    #[test]
    fn blob_names_escape_only_percent_and_backslash_and_keep_prefixes() {
        for (key, name) in [
            ("a/b", "a/b"),
            ("per%20cent", "per%2520cent"),
            ("back\\slash", "back%5Cslash"),
            ("üñí/%\\%", "üñí/%25%5C%25"),
        ] {
            assert_eq!(escape(key), name);
            assert_eq!(unescape(name).as_deref(), Some(key));
        }
        assert_eq!(unescape("bad%2"), None);
        assert_eq!(unescape("bad%41"), None);
        let keys = ["a%", "a%2", "a%25", "a\\", "a\\b", "a%5C", "ab"];
        for p in keys {
            for k in keys {
                assert_eq!(
                    k.starts_with(p),
                    escape(k).starts_with(&escape(p)),
                    "{p:?} {k:?}"
                );
            }
        }
    }

    #[test]
    fn emulator_endpoints_take_the_account_in_the_path() {
        let url = |s: &str| parse_endpoint(s).unwrap();
        assert_eq!(
            with_account_path(url("http://127.0.0.1:10000"), "devstoreaccount1").as_str(),
            "http://127.0.0.1:10000/devstoreaccount1"
        );
        assert_eq!(
            with_account_path(url("http://localhost:10000/other/"), "devstoreaccount1").as_str(),
            "http://localhost:10000/other"
        );
        assert_eq!(
            with_account_path(url("https://a.blob.core.windows.net"), "a").as_str(),
            "https://a.blob.core.windows.net/"
        );
    }
}
