//! A fault-injecting HTTP/1.1 reverse proxy for tests: put it between a client and a loopback S3
//! server and it resets connections, answers `503 SlowDown`, stalls responses and flips a byte in
//! request bodies, each with a set probability, counting every fault it injects.
//!
//! ```ignore
//! let proxy = FaultProxy::start(upstream, Faults::none().reset(0.1).slow_down(0.1));
//! // point the client at proxy.endpoint() ...
//! assert!(proxy.counts().resets > 0);
//! ```
//!
//! How it works: it reads each request whole (head, then a `Content-Length` or chunked body,
//! answering `Expect: 100-continue` itself), decides its faults, forwards the request on a fresh
//! upstream connection with `Connection: close` and the client's own `Host` (so SigV4 signatures
//! still match), reads the whole response (by `Content-Length`, chunked or close) and writes it back
//! with a `Content-Length`. Client connections are kept alive. Bodies are buffered, so it suits the
//! chunk-sized requests of a vault, not multi-GiB single requests. It runs on its own thread and
//! runtime, so sync and async tests alike can use it; it stops when dropped. Loopback only.

// Each integration test is its own crate and uses a different subset of these helpers.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// The S3 error body of a `503 SlowDown` answer.
pub const SLOW_DOWN_BODY: &str =
    "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>";

/// Longest request or response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// Which faults to inject, each with a probability from 0.0 (never) to 1.0 (every request).
///
/// Per request, in this order: `reset` (drop the connection with a TCP RST after reading the
/// request, never forwarding it), else `slow_down` (answer `503 SlowDown` with `Retry-After: 1`,
/// never forwarding), else forward, flipping one byte of the body with probability `flip_byte`
/// (only `PUT` requests with a non-empty body; in an `aws-chunked` body a byte of the first chunk's
/// data, not of its framing), then `stall` (hold the response for `stall_for` before writing it).
#[derive(Clone, Debug)]
pub struct Faults {
    pub reset: f64,
    pub slow_down: f64,
    pub stall: f64,
    pub stall_for: Duration,
    pub flip_byte: f64,
    /// Inject at most this many faults in all (then forward cleanly): with probability 1.0 and a
    /// limit of 1, exactly the first request fails.
    pub limit: Option<u64>,
    /// Only requests whose path (with query) contains this string are candidates for faults.
    pub path_contains: Option<String>,
    /// Only requests with this method (`DELETE`, say) are candidates for faults.
    pub method: Option<String>,
    /// Seed of the proxy's random choices; `None` takes one from the clock (printed on stderr).
    pub seed: Option<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self::none()
    }
}

impl Faults {
    /// No faults: a transparent proxy.
    pub fn none() -> Self {
        Self {
            reset: 0.0,
            slow_down: 0.0,
            stall: 0.0,
            stall_for: Duration::from_millis(0),
            flip_byte: 0.0,
            limit: None,
            path_contains: None,
            method: None,
            seed: None,
        }
    }

    pub fn reset(mut self, p: f64) -> Self {
        self.reset = p;
        self
    }

    pub fn slow_down(mut self, p: f64) -> Self {
        self.slow_down = p;
        self
    }

    pub fn stall(mut self, p: f64, for_: Duration) -> Self {
        self.stall = p;
        self.stall_for = for_;
        self
    }

    pub fn flip_byte(mut self, p: f64) -> Self {
        self.flip_byte = p;
        self
    }

    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }

    pub fn path_contains(mut self, s: &str) -> Self {
        self.path_contains = Some(s.to_owned());
        self
    }

    pub fn method(mut self, m: &str) -> Self {
        self.method = Some(m.to_owned());
        self
    }

    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    fn check(&self) {
        for (name, p) in [
            ("reset", self.reset),
            ("slow_down", self.slow_down),
            ("stall", self.stall),
            ("flip_byte", self.flip_byte),
        ] {
            assert!(
                (0.0..=1.0).contains(&p),
                "Faults::{name} = {p}: not in 0.0..=1.0"
            );
        }
    }
}

/// What the proxy has seen and done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Requests read from clients.
    pub requests: u64,
    /// Requests sent upstream (with or without a flipped byte).
    pub forwarded: u64,
    pub resets: u64,
    pub slow_downs: u64,
    pub stalls: u64,
    pub flipped_bytes: u64,
    /// Requests answered `502` because the upstream could not be reached or answered garbage.
    pub upstream_errors: u64,
}

impl FaultCounts {
    /// Faults injected, of every kind.
    pub fn faults(&self) -> u64 {
        self.resets + self.slow_downs + self.stalls + self.flipped_bytes
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    forwarded: AtomicU64,
    resets: AtomicU64,
    slow_downs: AtomicU64,
    stalls: AtomicU64,
    flipped_bytes: AtomicU64,
    upstream_errors: AtomicU64,
}

struct Shared {
    upstream: SocketAddr,
    faults: Mutex<Faults>,
    rng: Mutex<u64>,
    counters: Counters,
    /// Faults injected so far, for [`Faults::limit`].
    injected: AtomicU64,
}

/// A running proxy; dropping it stops it and closes its connections.
pub struct FaultProxy {
    /// Where clients connect: `127.0.0.1:<port>`.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy on a free loopback port forwarding to `upstream` (a loopback address).
    pub fn start(upstream: SocketAddr, faults: Faults) -> FaultProxy {
        assert!(
            upstream.ip().is_loopback(),
            "FaultProxy forwards to loopback only, not {upstream}"
        );
        faults.check();
        let seed = faults.seed.unwrap_or_else(|| {
            let seed = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64);
            eprintln!("FaultProxy: seed {seed}");
            seed
        });
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("FaultProxy: bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("FaultProxy: set_nonblocking");
        let addr = listener.local_addr().expect("FaultProxy: local_addr");
        let shared = Arc::new(Shared {
            upstream,
            faults: Mutex::new(faults),
            rng: Mutex::new(seed | 1),
            counters: Counters::default(),
            injected: AtomicU64::new(0),
        });
        let (tx, rx) = oneshot::channel();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("fault-proxy-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("FaultProxy: tokio runtime");
                runtime.block_on(async move {
                    let listener =
                        TcpListener::from_std(listener).expect("FaultProxy: tokio listener");
                    tokio::select! {
                        () = accept_loop(listener, thread_shared) => {}
                        _ = rx => {}
                    }
                });
                // Dropping the runtime cancels every connection task.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })
            .expect("FaultProxy: spawn thread");
        FaultProxy {
            addr,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`, for a client's endpoint setting.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Replaces the faults for requests read from now on (the limit counts from now on too).
    pub fn set_faults(&self, faults: Faults) {
        faults.check();
        if let Some(seed) = faults.seed {
            *self.shared.rng.lock().unwrap() = seed | 1;
        }
        *self.shared.faults.lock().unwrap() = faults;
        self.shared.injected.store(0, Ordering::SeqCst);
    }

    /// The counters so far.
    pub fn counts(&self) -> FaultCounts {
        let c = &self.shared.counters;
        FaultCounts {
            requests: c.requests.load(Ordering::SeqCst),
            forwarded: c.forwarded.load(Ordering::SeqCst),
            resets: c.resets.load(Ordering::SeqCst),
            slow_downs: c.slow_downs.load(Ordering::SeqCst),
            stalls: c.stalls.load(Ordering::SeqCst),
            flipped_bytes: c.flipped_bytes.load(Ordering::SeqCst),
            upstream_errors: c.upstream_errors.load(Ordering::SeqCst),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            // A client that goes away mid-request is no error of the proxy's.
            let _ = serve_connection(stream, &shared).await;
        });
    }
}

/// What the proxy decided to do with one request.
#[derive(Default)]
struct Plan {
    reset: bool,
    slow_down: bool,
    flip: bool,
    stall: Option<Duration>,
}

impl Shared {
    /// A uniform draw in [0, 1) (xorshift64*).
    fn draw(&self) -> f64 {
        let mut state = self.rng.lock().unwrap();
        *state ^= *state >> 12;
        *state ^= *state << 25;
        *state ^= *state >> 27;
        let x = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }

    fn below(&self, n: usize) -> usize {
        (self.draw() * n as f64) as usize % n.max(1)
    }

    /// True with probability `p`, while the fault limit allows one more fault.
    fn roll(&self, p: f64, limit: Option<u64>) -> bool {
        if p <= 0.0 || self.draw() >= p {
            return false;
        }
        match limit {
            None => {
                self.injected.fetch_add(1, Ordering::SeqCst);
                true
            }
            Some(limit) => self
                .injected
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                    (n < limit).then_some(n + 1)
                })
                .is_ok(),
        }
    }

    fn plan(&self, req: &Request) -> Plan {
        let faults = self.faults.lock().unwrap().clone();
        let mut plan = Plan::default();
        if let Some(s) = &faults.path_contains {
            if !req.target.contains(s.as_str()) {
                return plan;
            }
        }
        if let Some(m) = &faults.method {
            if !req.method.eq_ignore_ascii_case(m) {
                return plan;
            }
        }
        if self.roll(faults.reset, faults.limit) {
            plan.reset = true;
            return plan;
        }
        if self.roll(faults.slow_down, faults.limit) {
            plan.slow_down = true;
            return plan;
        }
        if req.method.eq_ignore_ascii_case("PUT")
            && !req.body.is_empty()
            && self.roll(faults.flip_byte, faults.limit)
        {
            plan.flip = true;
        }
        if self.roll(faults.stall, faults.limit) {
            plan.stall = Some(faults.stall_for);
        }
        plan
    }
}

struct Request {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Trailer lines of a chunked body, forwarded as they came.
    trailers: Vec<String>,
    chunked: bool,
}

struct Response {
    status_line: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn bad(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

/// Reads a head (start line and headers, up to the empty line). `None` at a clean EOF before it.
/// (Public, like [`read_chunked`], for the self-tests' upstream server in tests/proxy.rs.)
pub async fn read_head<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
) -> std::io::Result<Option<(String, Vec<(String, String)>)>> {
    let mut start = String::new();
    let mut total = 0;
    // Tolerate empty lines before a request (RFC 9112 §2.2).
    loop {
        start.clear();
        let n = r.read_line(&mut start).await?;
        if n == 0 {
            return Ok(None);
        }
        total += n;
        if !start.trim_end().is_empty() {
            break;
        }
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).await?;
        if n == 0 {
            return Err(bad("EOF inside a head"));
        }
        total += n;
        if total > MAX_HEAD {
            return Err(bad("head too long"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad(format!("bad header line {line:?}")))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(Some((start.trim_end().to_owned(), headers)))
}

/// Reads a chunked body, returning the decoded data and the trailer lines.
pub async fn read_chunked<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
) -> std::io::Result<(Vec<u8>, Vec<String>)> {
    let mut body = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Err(bad("EOF inside a chunked body"));
        }
        let size = line.trim_end().split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| bad(format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            break;
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..]).await?;
        let mut crlf = [0u8; 2];
        r.read_exact(&mut crlf).await?;
        if &crlf != b"\r\n" {
            return Err(bad("chunk not followed by CRLF"));
        }
    }
    let mut trailers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Err(bad("EOF inside chunked trailers"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return Ok((body, trailers));
        }
        trailers.push(line.to_owned());
    }
}

fn content_length(headers: &[(String, String)]) -> std::io::Result<Option<usize>> {
    header(headers, "content-length")
        .map(|v| {
            v.parse()
                .map_err(|_| bad(format!("bad Content-Length {v:?}")))
        })
        .transpose()
}

/// Reads one request from the client; `None` when the client closed the connection between
/// requests. Answers `Expect: 100-continue` before reading the body.
async fn read_request(client: &mut BufReader<TcpStream>) -> std::io::Result<Option<Request>> {
    let Some((start, headers)) = read_head(client).await? else {
        return Ok(None);
    };
    let mut parts = start.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(format!("bad request line {start:?}")));
    };
    let chunked = has_token(&headers, "transfer-encoding", "chunked");
    let length = content_length(&headers)?;
    if has_token(&headers, "expect", "100-continue") && (chunked || length.unwrap_or(0) > 0) {
        client
            .get_mut()
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await?;
    }
    let (body, trailers) = if chunked {
        read_chunked(client).await?
    } else {
        let mut body = vec![0; length.unwrap_or(0)];
        client.read_exact(&mut body).await?;
        (body, Vec::new())
    };
    Ok(Some(Request {
        method: method.to_owned(),
        target: target.to_owned(),
        version: version.to_owned(),
        headers,
        body,
        trailers,
        chunked,
    }))
}

/// Where to flip a byte: a byte of the payload, inside the first data chunk of an `aws-chunked`
/// body (`<hex size>[;ext]\r\n<data>\r\n...`) so the framing stays intact.
fn flip_position(req: &Request, pick: impl FnOnce(usize) -> usize) -> Option<usize> {
    let body = &req.body;
    if body.is_empty() {
        return None;
    }
    if has_token(&req.headers, "content-encoding", "aws-chunked") {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_line = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
        let data = line_end + 2;
        if size == 0 || data + size > body.len() {
            return None;
        }
        return Some(data + pick(size));
    }
    Some(pick(body.len()))
}

/// The request as sent upstream: same start line, headers and `Host`, but `Connection: close`,
/// no `Expect`, and the body as read (re-chunked as one chunk when it came chunked).
fn encode_request(req: &Request) -> Vec<u8> {
    let mut out = format!("{} {} {}\r\n", req.method, req.target, req.version).into_bytes();
    for (name, value) in &req.headers {
        if ["connection", "keep-alive", "proxy-connection", "expect"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
        {
            continue;
        }
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    if req.chunked {
        if !req.body.is_empty() {
            out.extend_from_slice(format!("{:x}\r\n", req.body.len()).as_bytes());
            out.extend_from_slice(&req.body);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n");
        for t in &req.trailers {
            out.extend_from_slice(format!("{t}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    } else {
        out.extend_from_slice(&req.body);
    }
    out
}

/// Sends `req` upstream on a fresh connection and reads the whole response.
async fn forward(upstream: SocketAddr, req: &Request) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(upstream).await?;
    let _ = stream.set_nodelay(true);
    stream.write_all(&encode_request(req)).await?;
    stream.flush().await?;
    let mut r = BufReader::new(stream);
    loop {
        let (status_line, headers) = read_head(&mut r)
            .await?
            .ok_or_else(|| bad("upstream closed without answering"))?;
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
        if (100..200).contains(&status) && status != 101 {
            continue; // an interim response: the final one follows
        }
        let no_body = req.method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304;
        let body = if no_body {
            Vec::new()
        } else if has_token(&headers, "transfer-encoding", "chunked") {
            read_chunked(&mut r).await?.0
        } else if let Some(len) = content_length(&headers)? {
            let mut body = vec![0; len];
            r.read_exact(&mut body).await?;
            body
        } else {
            let mut body = Vec::new();
            r.read_to_end(&mut body).await?;
            body
        };
        return Ok(Response {
            status_line,
            status,
            headers,
            body,
        });
    }
}

fn encode_response(resp: &Response, head_request: bool, close: bool) -> Vec<u8> {
    let mut out = format!("{}\r\n", resp.status_line).into_bytes();
    let keep_length = head_request || resp.status == 204 || resp.status == 304;
    for (name, value) in &resp.headers {
        let skip = ["connection", "keep-alive", "transfer-encoding"]
            .iter()
            .any(|h| name.eq_ignore_ascii_case(h))
            || (!keep_length && name.eq_ignore_ascii_case("content-length"));
        if !skip {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
    }
    if !keep_length {
        out.extend_from_slice(format!("Content-Length: {}\r\n", resp.body.len()).as_bytes());
    }
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_request {
        out.extend_from_slice(&resp.body);
    }
    out
}

fn simple_response(status_line: &str, headers: &[(&str, &str)], body: &str) -> Response {
    Response {
        status_line: status_line.to_owned(),
        status: status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(500),
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

async fn serve_connection(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut client = BufReader::new(stream);
    let c = &shared.counters;
    loop {
        let Some(mut req) = read_request(&mut client).await? else {
            return Ok(());
        };
        c.requests.fetch_add(1, Ordering::SeqCst);
        let close = has_token(&req.headers, "connection", "close") || req.version == "HTTP/1.0";
        let head_request = req.method.eq_ignore_ascii_case("HEAD");
        let plan = shared.plan(&req);

        if plan.reset {
            c.resets.fetch_add(1, Ordering::SeqCst);
            let stream = client.into_inner();
            // SO_LINGER 0: close() sends RST instead of FIN.
            stream.set_zero_linger()?;
            drop(stream);
            return Ok(());
        }

        let resp = if plan.slow_down {
            c.slow_downs.fetch_add(1, Ordering::SeqCst);
            simple_response(
                "HTTP/1.1 503 Slow Down",
                &[("Content-Type", "application/xml"), ("Retry-After", "1")],
                SLOW_DOWN_BODY,
            )
        } else {
            let flip_at = if plan.flip {
                flip_position(&req, |n| shared.below(n))
            } else {
                None
            };
            if let Some(pos) = flip_at {
                req.body[pos] ^= 0x01;
                c.flipped_bytes.fetch_add(1, Ordering::SeqCst);
            }
            match forward(shared.upstream, &req).await {
                Ok(resp) => {
                    c.forwarded.fetch_add(1, Ordering::SeqCst);
                    resp
                }
                Err(e) => {
                    c.upstream_errors.fetch_add(1, Ordering::SeqCst);
                    simple_response(
                        "HTTP/1.1 502 Bad Gateway",
                        &[("Content-Type", "text/plain")],
                        &format!("FaultProxy: upstream {}: {e}", shared.upstream),
                    )
                }
            }
        };

        if let Some(stall) = plan.stall {
            c.stalls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(stall).await;
        }
        let out = client.get_mut();
        out.write_all(&encode_response(&resp, head_request, close))
            .await?;
        out.flush().await?;
        if close {
            return Ok(());
        }
    }
}
