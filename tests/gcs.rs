//! The GCS backend beyond the conformance suite: what fake-gcs-server cannot show by itself.
//! Through the fault-injecting proxy (tests/common/proxy.rs): a body damaged on the way is never
//! kept, resets and `503`s keep their kinds and are retried by the retry layer, and a lost chunk
//! of a resumable upload leaves nothing behind. Against a scripted loopback server: each error
//! status GCS answers with keeps its kind, `Retry-After` included. Every server is on 127.0.0.1;
//! the emulator's address is in `LDV_TEST_GCS_ENDPOINT` (set by scripts/test).

mod common;
#[path = "common/proxy.rs"]
mod proxy;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{assert_bytes, assert_kind, data};
use ldv::ErrorKind;
use ldv::backend::gcs::{GcsBackend, GcsConfig};
use ldv::backend::layer::{RetryBackend, RetryPolicy};
use ldv::backend::s3::TimeoutConfig;
use ldv::backend::{Backend, PutMode};
use ldv::config::Size;
use ldv::report::NoReporter;
use proxy::{FaultProxy, Faults};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const MIB: usize = 1024 * 1024;

/// The emulator's address, or `None` (and a note) when no emulator was given and
/// `LDV_TEST_REQUIRE_ALL` is unset.
fn emulator() -> Option<SocketAddr> {
    let var = "LDV_TEST_GCS_ENDPOINT";
    let Ok(endpoint) = std::env::var(var) else {
        assert!(
            std::env::var_os("LDV_TEST_REQUIRE_ALL").is_none(),
            "{var} is not set but LDV_TEST_REQUIRE_ALL is: the GCS emulator did not start"
        );
        eprintln!("skipped: {var} is not set (no GCS emulator)");
        return None;
    };
    let addr = endpoint.trim_start_matches("http://").trim_end_matches('/');
    Some(
        addr.parse()
            .expect("LDV_TEST_GCS_ENDPOINT is http://127.0.0.1:PORT"),
    )
}

/// An anonymous config for `endpoint` with a fresh bucket; objects above 1 MiB go up as
/// resumable uploads in 256 KiB chunks.
fn config(endpoint: &str) -> GcsConfig {
    GcsConfig {
        endpoint: Some(endpoint.to_owned()),
        anonymous: true,
        resumable_threshold: Size(MIB as u64),
        resumable_chunk_size: Size(256 * 1024),
        ..GcsConfig::from_url(&format!("gcs-test-{:016x}", rand::random::<u64>()), "v/")
    }
}

/// Quick retries, so tests do not wait on backoff.
fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 10,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        ..RetryPolicy::default()
    }
}

/// A backend on the emulator through a proxy injecting `faults`, its bucket created directly.
async fn through_proxy(upstream: SocketAddr, faults: Faults) -> (GcsBackend, FaultProxy) {
    let direct = config(&format!("http://{upstream}"));
    GcsBackend::new(&direct, &TimeoutConfig::default())
        .await
        .expect("build the GCS backend")
        .create_bucket()
        .await
        .expect("create the test bucket");
    let proxy = FaultProxy::start(upstream, faults);
    let proxied = GcsConfig {
        endpoint: Some(proxy.endpoint()),
        ..direct
    };
    let backend = GcsBackend::new(&proxied, &TimeoutConfig::default())
        .await
        .expect("build the proxied GCS backend");
    (backend, proxy)
}

/// DESIGN 4.5: fake-gcs-server does not check the CRC32C sent with an upload, so a chunk damaged
/// on the way reaches it; the backend compares the checksum the store computed, fails the put as
/// retryable and removes the damaged body, and the next put stores the intact bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_upload_is_refused_and_not_kept() {
    let Some(upstream) = emulator() else { return };
    // Only resumable chunks are PUTs, which is what the proxy damages.
    let faults = Faults::none().flip_byte(1.0).limit(1);
    let (b, proxy) = through_proxy(upstream, faults).await;
    let value = data(2 * MIB + 5, 1);
    let e = b
        .put("chunks/damaged", value.clone(), PutMode::Overwrite)
        .await
        .expect_err("a damaged upload must fail");
    assert_eq!(proxy.counts().flipped_bytes, 1);
    assert_eq!(e.kind(), ErrorKind::NetworkError, "{e}");
    assert!(e.is_retryable(), "resending intact bytes can succeed: {e}");
    assert!(e.to_string().contains("damaged"), "{e}");
    assert_kind(b.head("chunks/damaged").await, ErrorKind::NotFound, "head");
    b.put("chunks/damaged", value.clone(), PutMode::Overwrite)
        .await
        .expect("the second put is clean");
    assert_bytes(&b.get("chunks/damaged").await.unwrap(), &value, "stored");
}

/// A chunk of a resumable upload lost to a reset fails the put as retryable, leaves no object
/// (the session is cancelled), and the retry layer's next attempt stores the whole object intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_resumable_chunk_fails_the_put_and_the_retry_layer_puts_it_again() {
    let Some(upstream) = emulator() else { return };
    let faults = Faults::none()
        .reset(1.0)
        .limit(1)
        .path_contains("upload_id=");
    let (b, proxy) = through_proxy(upstream, faults.clone()).await;
    let b = Arc::new(b);
    let value = data(3 * MIB + 7, 2);
    let e = b
        .put("big", value.clone(), PutMode::Overwrite)
        .await
        .expect_err("a lost chunk fails the put");
    assert_eq!(e.kind(), ErrorKind::NetworkError, "{e}");
    assert!(e.is_retryable(), "{e}");
    assert_kind(
        b.head("big").await,
        ErrorKind::NotFound,
        "after a lost chunk",
    );

    proxy.set_faults(faults);
    let retry = RetryBackend::new(b.clone(), quick_retries(), Arc::new(NoReporter));
    retry
        .put("big", value.clone(), PutMode::Overwrite)
        .await
        .expect("the retry layer puts it again");
    assert_eq!(retry.retries(), 1);
    assert_eq!(proxy.counts().resets, 2);
    assert_bytes(&b.get("big").await.unwrap(), &value, "big");
    assert_eq!(b.head("big").await.unwrap().size, value.len() as u64);
}

/// Resets and `503`s keep their kinds, are retryable, and a `503` carries its `Retry-After`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_and_unavailable_are_retryable() {
    let Some(upstream) = emulator() else { return };
    let (b, proxy) = through_proxy(upstream, Faults::none()).await;
    b.put("k", data(10, 1), PutMode::Overwrite).await.unwrap();

    proxy.set_faults(Faults::none().reset(1.0).limit(1));
    let e = b.get("k").await.expect_err("reset");
    assert_eq!(e.kind(), ErrorKind::NetworkError, "{e}");
    assert!(e.is_retryable(), "{e}");

    proxy.set_faults(Faults::none().slow_down(1.0).limit(1));
    let e = b.head("k").await.expect_err("503");
    assert_eq!(e.kind(), ErrorKind::NetworkError, "{e}");
    assert!(e.is_retryable(), "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(1)), "{e}");
    assert!(e.to_string().contains("503"), "{e}");

    assert_eq!(b.get("k").await.unwrap(), data(10, 1));
}

/// The retry layer over GCS rides out resets on every kind of call.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_layer_applies_to_gcs() {
    let Some(upstream) = emulator() else { return };
    let faults = Faults::none().reset(0.05).seed(7);
    let (b, proxy) = through_proxy(upstream, faults).await;
    let r = RetryBackend::new(Arc::new(b), quick_retries(), Arc::new(NoReporter));
    for i in 0..12u64 {
        let key = format!("r/{i}");
        // From 1 KB to 1.1 MB: the last ones go up as resumable uploads.
        let value = data(1000 + i as usize * 100_000, i);
        r.put(&key, value.clone(), PutMode::Overwrite)
            .await
            .unwrap();
        assert_bytes(&r.get(&key).await.unwrap(), &value, &key);
        let range = r.get_range(&key, 10..20).await.unwrap();
        assert_bytes(&range, &value[10..20], "range");
    }
    let listed: Vec<_> = futures::TryStreamExt::try_collect::<Vec<_>>(r.list("r/"))
        .await
        .unwrap();
    assert_eq!(listed.len(), 12);
    r.copy("r/0", "r/copy").await.unwrap();
    r.delete("r/copy").await.unwrap();
    assert!(proxy.counts().resets > 0, "{:?}", proxy.counts());
    assert!(r.retries() > 0);
}

/// A loopback server answering every request with `status`, `headers` and `body`.
async fn answering(status: &'static str, headers: &'static str, body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{headers}\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
                let _ = conn.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

/// One scripted error answer and what it must become.
struct Case {
    status: &'static str,
    headers: &'static str,
    reason: &'static str,
    message: &'static str,
    kind: ErrorKind,
    retryable: bool,
    retry_after: Option<u64>,
}

impl Case {
    /// GCS's JSON error document for this answer.
    fn body(&self) -> String {
        let code = &self.status[..3];
        let (reason, message) = (self.reason, self.message);
        format!(
            r#"{{"error":{{"code":{code},"message":"{message}","errors":[{{"domain":"global","reason":"{reason}","message":"{message}"}}]}}}}"#
        )
    }
}

/// Each error status GCS answers with keeps its kind through the backend (and so its exit code):
/// not found, permission denied, conflict, throttling with `Retry-After`, server errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_answers_keep_their_kinds() {
    let case = |status, reason, message, kind, retryable, retry_after| Case {
        status,
        headers: "",
        reason,
        message,
        kind,
        retryable,
        retry_after,
    };
    let denied = "ldv@p.iam.gserviceaccount.com does not have storage.objects.get access";
    let precondition = "At least one of the pre-conditions you specified did not hold.";
    let cases = [
        case(
            "404 Not Found",
            "notFound",
            "No such object: b/k",
            ErrorKind::NotFound,
            false,
            None,
        ),
        case(
            "401 Unauthorized",
            "required",
            "Login Required.",
            ErrorKind::PermissionDenied,
            false,
            None,
        ),
        case(
            "403 Forbidden",
            "forbidden",
            denied,
            ErrorKind::PermissionDenied,
            false,
            None,
        ),
        case(
            "412 Precondition Failed",
            "conditionNotMet",
            precondition,
            ErrorKind::Conflict,
            false,
            None,
        ),
        Case {
            headers: "Retry-After: 7\r\n",
            ..case(
                "429 Too Many Requests",
                "rateLimitExceeded",
                "Slow down.",
                ErrorKind::NetworkError,
                true,
                Some(7),
            )
        },
        case(
            "503 Service Unavailable",
            "backendError",
            "Backend Error",
            ErrorKind::NetworkError,
            true,
            Some(1),
        ),
        case(
            "500 Internal Server Error",
            "backendError",
            "Backend Error",
            ErrorKind::BackendError,
            true,
            None,
        ),
    ];
    for c in cases {
        let (status, kind, retryable, after) = (c.status, c.kind, c.retryable, c.retry_after);
        let endpoint = answering(status, c.headers, c.body()).await;
        let b = GcsBackend::new(&config(&endpoint), &TimeoutConfig::default())
            .await
            .expect("build");
        for (op, r) in [
            ("get", b.get("k").await.map(|_| ())),
            ("head", b.head("k").await.map(|_| ())),
            (
                "put",
                b.put("k", Bytes::from_static(b"x"), PutMode::CreateOnly)
                    .await,
            ),
            ("delete", b.delete("k").await),
        ] {
            let e = r.expect_err(status);
            // This server answers 404 to everything, the bucket lookup included, which a 404
            // on a read or an upload triggers: so the bucket is reported missing (exit 2).
            let kind = if status.starts_with("404") && op != "delete" {
                assert!(e.message().contains("does not exist"), "{op}: {e}");
                ErrorKind::ConfigurationError
            } else {
                kind
            };
            assert_eq!(e.kind(), kind, "{op} answered {status}: {e}");
            assert_eq!(e.is_retryable(), retryable, "{op} answered {status}: {e}");
            assert_eq!(e.retry_after(), after.map(Duration::from_secs), "{op}: {e}");
        }
    }
}

/// The health check reports that fake-gcs-server honours create-only writes (they go as
/// multipart uploads with `ifGenerationMatch=0`) and leaves nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_create_only_honoured() {
    let Some(upstream) = emulator() else { return };
    let b = GcsBackend::new(
        &config(&format!("http://{upstream}")),
        &TimeoutConfig::default(),
    )
    .await
    .unwrap();
    b.create_bucket().await.unwrap();
    let health = b.health().await.unwrap();
    assert!(health.healthy, "{health:?}");
    let create_only = health
        .details
        .iter()
        .find(|(k, _)| k == "create_only")
        .map(|(_, v)| v.as_str());
    assert_eq!(create_only, Some("honoured (ifGenerationMatch=0)"));
    assert!(
        futures::TryStreamExt::try_collect::<Vec<_>>(b.list(""))
            .await
            .unwrap()
            .is_empty()
    );
    // A missing bucket makes the backend unhealthy, naming the bucket.
    let missing = GcsBackend::new(
        &config(&format!("http://{upstream}")),
        &TimeoutConfig::default(),
    )
    .await
    .unwrap();
    let health = missing.health().await.unwrap();
    assert!(!health.healthy);
    assert!(health.last_error.unwrap().contains("gcs-test-"));
}
