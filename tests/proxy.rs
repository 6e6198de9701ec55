//! Self-tests of the fault-injecting HTTP proxy (tests/common/proxy.rs) against a tiny in-process
//! upstream server: forwarding (keep-alive, Content-Length, chunked and aws-chunked bodies,
//! `Expect: 100-continue`, every kind of response body) and each fault, with its counter.

#[path = "common/proxy.rs"]
mod proxy;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use proxy::{FaultCounts, FaultProxy, Faults, SLOW_DOWN_BODY, header, read_chunked, read_head};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A request as the upstream received it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    trailers: Vec<String>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

/// A loopback HTTP/1.1 server that records each request and answers one per connection. Its
/// answer depends on the path: `/chunked` answers with a chunked body, `/close` with a body ended
/// by closing the connection, anything else with `Content-Length`; the body is
/// `<method> <path> <request body length>`.
struct Upstream {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    async fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let record = Arc::clone(&record);
                tokio::spawn(async move { Self::serve(stream, record).await });
            }
        });
        Upstream { addr, seen }
    }

    async fn serve(stream: TcpStream, record: Arc<Mutex<Vec<Seen>>>) {
        let mut r = BufReader::new(stream);
        let (start, headers) = read_head(&mut r).await.unwrap().unwrap();
        let mut parts = start.split_whitespace();
        let method = parts.next().unwrap().to_owned();
        let target = parts.next().unwrap().to_owned();
        let (body, trailers) = if header(&headers, "transfer-encoding") == Some("chunked") {
            read_chunked(&mut r).await.unwrap()
        } else {
            let len = header(&headers, "content-length").map_or(0, |v| v.parse().unwrap());
            let mut body = vec![0; len];
            r.read_exact(&mut body).await.unwrap();
            (body, Vec::new())
        };
        let text = format!("{method} {target} {}", body.len());
        record.lock().unwrap().push(Seen {
            method: method.clone(),
            target: target.clone(),
            headers,
            body,
            trailers,
        });
        let head_only = method == "HEAD";
        let mut stream = r.into_inner();
        let out = match target.as_str() {
            "/chunked" => {
                let (a, b) = text.split_at(text.len() / 2);
                format!(
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Kind: chunked\r\n\r\n\
                     {:x}\r\n{a}\r\n{:x};ext=1\r\n{b}\r\n0\r\nX-Trailer: t\r\n\r\n",
                    a.len(),
                    b.len()
                )
            }
            "/close" => format!("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{text}"),
            _ if head_only => {
                "HTTP/1.1 200 OK\r\nContent-Length: 12345\r\nETag: \"e\"\r\n\r\n".to_owned()
            }
            _ => format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                text.len()
            ),
        };
        stream.write_all(out.as_bytes()).await.unwrap();
        stream.shutdown().await.unwrap();
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A response as the client read it.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A keep-alive client connection to the proxy.
struct Client {
    r: BufReader<TcpStream>,
}

impl Client {
    async fn connect(proxy: &FaultProxy) -> Client {
        Client {
            r: BufReader::new(TcpStream::connect(proxy.addr).await.unwrap()),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.r.get_mut().write_all(bytes).await.unwrap();
    }

    /// Reads one response; the proxy always answers with a `Content-Length` (none after HEAD).
    async fn read(&mut self, head_request: bool) -> std::io::Result<Resp> {
        let (start, headers) = read_head(&mut self.r)
            .await?
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        let status = start.split_whitespace().nth(1).unwrap().parse().unwrap();
        assert!(
            header(&headers, "transfer-encoding").is_none(),
            "proxy answered with Transfer-Encoding: {headers:?}"
        );
        let mut body = Vec::new();
        if !head_request && status != 100 {
            let len: usize = header(&headers, "content-length")
                .expect("a response without Content-Length")
                .parse()
                .unwrap();
            body.resize(len, 0);
            self.r.read_exact(&mut body).await?;
        }
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    async fn request(&mut self, method: &str, path: &str, body: &[u8]) -> std::io::Result<Resp> {
        let mut req =
            format!("{method} {path} HTTP/1.1\r\nHost: s3.test:1234\r\nUser-Agent: proxy-test\r\n")
                .into_bytes();
        if !body.is_empty() || method == "PUT" {
            req.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        req.extend_from_slice(body);
        self.r.get_mut().write_all(&req).await?;
        self.read(method == "HEAD").await
    }
}

/// `len` bytes of a fixed pseudo-random pattern.
fn data(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1])
        .collect()
}

/// Indices where `a` and `b` (of equal length) differ.
fn diff(a: &[u8], b: &[u8]) -> Vec<usize> {
    assert_eq!(a.len(), b.len());
    (0..a.len()).filter(|&i| a[i] != b[i]).collect()
}

#[tokio::test]
async fn forwards_keep_alive_requests_unchanged() {
    let up = Upstream::start().await;
    let proxy = FaultProxy::start(up.addr, Faults::none());
    let mut c = Client::connect(&proxy).await;

    let r = c
        .request("GET", "/ldv-test/a?list-type=2", b"")
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "GET /ldv-test/a?list-type=2 0")
    );
    assert_eq!(
        r.header("connection"),
        None,
        "the client's connection stays open"
    );

    let body = data(100_000);
    let r = c.request("PUT", "/ldv-test/b", &body).await.unwrap();
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "PUT /ldv-test/b 100000")
    );

    let r = c.request("HEAD", "/ldv-test/b", b"").await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some("12345"),
        "HEAD keeps the length"
    );
    assert!(r.body.is_empty());

    let r = c.request("GET", "/chunked", b"").await.unwrap();
    assert_eq!(
        r.text(),
        "GET /chunked 0",
        "a chunked response is passed on whole"
    );
    assert_eq!(r.header("x-kind"), Some("chunked"));

    let r = c.request("GET", "/close", b"").await.unwrap();
    assert_eq!(
        r.text(),
        "GET /close 0",
        "a close-delimited response is passed on whole"
    );

    let seen = up.seen();
    let requests: Vec<_> = seen
        .iter()
        .map(|s| (s.method.as_str(), s.target.as_str()))
        .collect();
    assert_eq!(
        requests,
        [
            ("GET", "/ldv-test/a?list-type=2"),
            ("PUT", "/ldv-test/b"),
            ("HEAD", "/ldv-test/b"),
            ("GET", "/chunked"),
            ("GET", "/close")
        ]
    );
    for s in &seen {
        assert_eq!(
            s.header("host"),
            Some("s3.test:1234"),
            "Host is the client's"
        );
        assert_eq!(s.header("connection"), Some("close"));
        assert_eq!(s.header("user-agent"), Some("proxy-test"));
    }
    assert_eq!(seen[1].body, body);
    assert_eq!(
        proxy.counts(),
        FaultCounts {
            requests: 5,
            forwarded: 5,
            ..FaultCounts::default()
        }
    );
}

#[tokio::test]
async fn forwards_chunked_aws_chunked_bodies_and_answers_100_continue() {
    let up = Upstream::start().await;
    let proxy = FaultProxy::start(up.addr, Faults::none());
    let mut c = Client::connect(&proxy).await;

    // An aws-chunked payload (what the SDK sends with a trailing checksum), itself sent with
    // Transfer-Encoding: chunked in two HTTP chunks.
    let payload = data(5000);
    let mut aws = format!("{:x}\r\n", payload.len()).into_bytes();
    aws.extend_from_slice(&payload);
    aws.extend_from_slice(b"\r\n0\r\nx-amz-checksum-crc32c:AAAAAA==\r\n\r\n");
    c.send(
        b"PUT /ldv-test/chunk HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\
          Content-Encoding: aws-chunked\r\nx-amz-decoded-content-length: 5000\r\n\
          Expect: 100-continue\r\n\r\n",
    )
    .await;
    let interim = c.read(false).await.unwrap();
    assert_eq!(interim.status, 100, "Expect: 100-continue is answered");
    let (a, b) = aws.split_at(1234);
    let mut body = format!("{:x}\r\n", a.len()).into_bytes();
    body.extend_from_slice(a);
    body.extend_from_slice(format!("\r\n{:x};name=value\r\n", b.len()).as_bytes());
    body.extend_from_slice(b);
    body.extend_from_slice(b"\r\n0\r\nX-Http-Trailer: yes\r\n\r\n");
    c.send(&body).await;
    let r = c.read(false).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), format!("PUT /ldv-test/chunk {}", aws.len()));

    // Expect with a Content-Length body, on the same connection.
    c.send(b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        .await;
    assert_eq!(c.read(false).await.unwrap().status, 100);
    c.send(b"abc").await;
    assert_eq!(c.read(false).await.unwrap().text(), "PUT /x 3");

    let seen = up.seen();
    assert_eq!(seen[0].body, aws, "the chunked body arrives intact");
    assert_eq!(seen[0].trailers, vec!["X-Http-Trailer: yes".to_owned()]);
    assert_eq!(seen[0].header("content-encoding"), Some("aws-chunked"));
    assert_eq!(
        seen[0].header("expect"),
        None,
        "Expect is answered, not forwarded"
    );
    assert_eq!(seen[1].body, b"abc");
}

#[tokio::test]
async fn reset_drops_the_connection_without_forwarding() {
    let up = Upstream::start().await;
    let proxy = FaultProxy::start(up.addr, Faults::none().reset(1.0));
    let mut c = Client::connect(&proxy).await;
    let err = c
        .request("PUT", "/ldv-test/x", &data(1000))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err:?}");
    assert!(
        up.seen().is_empty(),
        "a reset request never reaches the upstream"
    );
    let counts = proxy.counts();
    assert_eq!(
        (counts.requests, counts.resets, counts.forwarded),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn slow_down_answers_503_and_keeps_the_connection() {
    let up = Upstream::start().await;
    let proxy = FaultProxy::start(up.addr, Faults::none().slow_down(1.0));
    let mut c = Client::connect(&proxy).await;
    let r = c.request("PUT", "/ldv-test/x", &data(1000)).await.unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(r.text(), SLOW_DOWN_BODY);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("content-type"), Some("application/xml"));
    assert!(up.seen().is_empty());

    proxy.set_faults(Faults::none());
    let r = c.request("GET", "/ldv-test/x", b"").await.unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "GET /ldv-test/x 0"));
    let counts = proxy.counts();
    assert_eq!(
        (counts.requests, counts.slow_downs, counts.forwarded),
        (2, 1, 1)
    );
}

#[tokio::test]
async fn stall_delays_the_response() {
    let up = Upstream::start().await;
    let stall = Duration::from_millis(300);
    let proxy = FaultProxy::start(up.addr, Faults::none().stall(1.0, stall));
    let mut c = Client::connect(&proxy).await;
    let started = Instant::now();
    let r = c.request("GET", "/ldv-test/x", b"").await.unwrap();
    assert!(
        started.elapsed() >= stall,
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(r.text(), "GET /ldv-test/x 0");
    assert_eq!(up.seen().len(), 1, "a stalled request is still forwarded");
    assert_eq!(proxy.counts().stalls, 1);
}

#[tokio::test]
async fn flip_byte_damages_one_bit_of_a_put_body_only() {
    let up = Upstream::start().await;
    let proxy = FaultProxy::start(up.addr, Faults::none().flip_byte(1.0).seed(7));
    let mut c = Client::connect(&proxy).await;
    let body = data(64 * 1024);
    assert_eq!(c.request("PUT", "/a", &body).await.unwrap().status, 200);
    assert_eq!(c.request("GET", "/b", b"").await.unwrap().status, 200);
    assert_eq!(c.request("POST", "/c", &body).await.unwrap().status, 200);

    let seen = up.seen();
    let at = diff(&seen[0].body, &body);
    assert_eq!(at.len(), 1, "exactly one byte differs");
    assert_eq!((seen[0].body[at[0]] ^ body[at[0]]).count_ones(), 1);
    assert_eq!(seen[2].body, body, "only PUT bodies are damaged");
    assert_eq!(proxy.counts().flipped_bytes, 1);
}

#[tokio::test]
async fn flip_byte_in_aws_chunked_body_hits_the_data_not_the_framing() {
    let up = Upstream::start().await;
    let proxy = FaultProxy::start(up.addr, Faults::none().flip_byte(1.0));
    let mut c = Client::connect(&proxy).await;
    let payload = data(3000);
    let mut aws = format!("{:x};chunk-signature=abc\r\n", payload.len()).into_bytes();
    let start = aws.len();
    aws.extend_from_slice(&payload);
    aws.extend_from_slice(b"\r\n0\r\nx-amz-checksum-crc32c:AAAAAA==\r\n\r\n");
    let mut req = format!(
        "PUT /k HTTP/1.1\r\nHost: h\r\nContent-Encoding: aws-chunked\r\nContent-Length: {}\r\n\r\n",
        aws.len()
    )
    .into_bytes();
    req.extend_from_slice(&aws);
    c.send(&req).await;
    assert_eq!(c.read(false).await.unwrap().status, 200);
    let at = diff(&up.seen()[0].body, &aws);
    assert_eq!(at.len(), 1);
    assert!(
        (start..start + payload.len()).contains(&at[0]),
        "flipped byte {} outside the data {start}..{}",
        at[0],
        start + payload.len()
    );
}

#[tokio::test]
async fn limit_and_path_filter_choose_which_requests_fail() {
    let up = Upstream::start().await;
    let faults = Faults::none()
        .flip_byte(1.0)
        .limit(1)
        .path_contains("/chunks/");
    let proxy = FaultProxy::start(up.addr, faults);
    let mut c = Client::connect(&proxy).await;
    let body = data(1000);
    for path in ["/manifests/a", "/chunks/1", "/chunks/2"] {
        assert_eq!(c.request("PUT", path, &body).await.unwrap().status, 200);
    }
    let seen = up.seen();
    assert_eq!(seen[0].body, body, "path filter: not a chunk");
    assert_eq!(
        diff(&seen[1].body, &body).len(),
        1,
        "the first chunk PUT is damaged"
    );
    assert_eq!(seen[2].body, body, "limit 1: the second is not");
    assert_eq!(proxy.counts().flipped_bytes, 1);
}

#[tokio::test]
async fn probabilities_mix_faults_and_counters_add_up() {
    let up = Upstream::start().await;
    let faults = Faults::none()
        .reset(0.2)
        .slow_down(0.2)
        .stall(0.1, Duration::from_millis(1))
        .seed(42);
    let proxy = FaultProxy::start(up.addr, faults);
    let n = 200;
    let mut c = Client::connect(&proxy).await;
    for i in 0..n {
        match c.request("GET", &format!("/k{i}"), b"").await {
            Ok(r) => assert!(r.status == 200 || r.status == 503, "{r:?}"),
            Err(_) => c = Client::connect(&proxy).await, // reset: reconnect
        }
    }
    let counts = proxy.counts();
    assert_eq!(counts.requests, n);
    assert_eq!(counts.forwarded + counts.resets + counts.slow_downs, n);
    assert_eq!(up.seen().len() as u64, counts.forwarded);
    // 20% of 200 is 40 (sd ~6) for resets; slow_down applies to the ~160 left (~32).
    assert!((20..=60).contains(&counts.resets), "{counts:?}");
    assert!((15..=50).contains(&counts.slow_downs), "{counts:?}");
    assert!((3..=30).contains(&counts.stalls), "{counts:?}");
}

#[tokio::test]
async fn unreachable_upstream_answers_502() {
    // A port nothing listens on: bind one, then free it.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = FaultProxy::start(addr, Faults::none());
    let mut c = Client::connect(&proxy).await;
    let r = c.request("GET", "/x", b"").await.unwrap();
    assert_eq!(r.status, 502);
    assert_eq!(proxy.counts().upstream_errors, 1);
}

#[tokio::test]
async fn drop_stops_the_proxy() {
    let up = Upstream::start().await;
    let proxy = FaultProxy::start(up.addr, Faults::none());
    let addr = proxy.addr;
    assert!(addr.ip().is_loopback());
    assert_eq!(proxy.endpoint(), format!("http://{addr}"));
    drop(proxy);
    assert!(TcpStream::connect(addr).await.is_err(), "still listening");
}

#[test]
#[should_panic(expected = "loopback only")]
fn refuses_a_non_loopback_upstream() {
    let _ = FaultProxy::start("192.0.2.1:80".parse().unwrap(), Faults::none());
}

#[test]
#[should_panic(expected = "not in 0.0..=1.0")]
fn refuses_a_probability_out_of_range() {
    let _ = FaultProxy::start("127.0.0.1:9".parse().unwrap(), Faults::none().reset(1.5));
}
