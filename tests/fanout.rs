//! Many small objects are latency-bound: a put or get of a tree of small files, and the manifest
//! reads behind it, keep many more requests in flight than `parallel` (ldv::ops::Window), while
//! the bytes in flight stay within the window's budget. Checked over a backend that takes 20 ms
//! (or 200 ms) per call and records how many calls overlap.

mod common;

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use ldv::backend::memory::MemoryBackend;
use ldv::backend::{Backend, DynBackend, HealthStatus, ObjectMeta, PutMode, Swept};
use ldv::error::Result;
use ldv::ops::get::{get_tree, tree};
use ldv::ops::put::{FileJob, PutOptions, put_files};
use ldv::report::{NoReporter, Reporter};
use ldv::store::Vault;
use ldv::store::chunker::ChunkerConfig;

const CHUNKER: ChunkerConfig = ChunkerConfig::Cdc {
    min: 64 * 1024,
    avg: 256 * 1024,
    max: 1024 * 1024,
};
const PARALLEL: usize = 2;

/// Delays every call and records the most calls in flight at once, and the most bytes that
/// puts and gets had in flight at once.
#[derive(Debug)]
struct Gauge {
    inner: DynBackend,
    latency: Duration,
    now: AtomicUsize,
    most: AtomicUsize,
    bytes_now: AtomicU64,
    bytes_most: AtomicU64,
}

struct Call<'a>(&'a Gauge, u64);

impl<'a> Call<'a> {
    fn start(g: &'a Gauge, bytes: u64) -> Self {
        let n = g.now.fetch_add(1, Ordering::SeqCst) + 1;
        g.most.fetch_max(n, Ordering::SeqCst);
        let b = g.bytes_now.fetch_add(bytes, Ordering::SeqCst) + bytes;
        g.bytes_most.fetch_max(b, Ordering::SeqCst);
        Self(g, bytes)
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
        self.0.bytes_now.fetch_sub(self.1, Ordering::SeqCst);
    }
}

impl std::fmt::Display for Gauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "gauge({})", self.inner)
    }
}

#[async_trait]
impl Backend for Gauge {
    async fn put(&self, key: &str, data: Bytes, mode: PutMode) -> Result<()> {
        let _call = Call::start(self, data.len() as u64);
        tokio::time::sleep(self.latency).await;
        self.inner.put(key, data, mode).await
    }
    async fn get(&self, key: &str) -> Result<Bytes> {
        let _call = Call::start(self, 0);
        tokio::time::sleep(self.latency).await;
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        let _call = Call::start(self, 0);
        tokio::time::sleep(self.latency).await;
        self.inner.get_range(key, range).await
    }
    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        let _call = Call::start(self, 0);
        tokio::time::sleep(self.latency).await;
        self.inner.head(key).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        let _call = Call::start(self, 0);
        tokio::time::sleep(self.latency).await;
        self.inner.delete(key).await
    }
    fn list(&self, prefix: &str) -> BoxStream<'_, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }
    async fn copy(&self, from: &str, to: &str) -> Result<()> {
        self.inner.copy(from, to).await
    }
    async fn health(&self) -> Result<HealthStatus> {
        self.inner.health().await
    }
    async fn sweep(&self, older_than: Duration) -> Result<Swept> {
        self.inner.sweep(older_than).await
    }
}

impl Gauge {
    /// A memory backend whose calls each take `latency`.
    fn new(latency: Duration) -> Arc<Self> {
        Arc::new(Self {
            inner: Arc::new(MemoryBackend::new()),
            latency,
            now: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            bytes_now: AtomicU64::new(0),
            bytes_most: AtomicU64::new(0),
        })
    }

    fn reset(&self) {
        self.most.store(0, Ordering::SeqCst);
        self.bytes_most.store(0, Ordering::SeqCst);
    }
}

fn write_tree(root: &Path, files: usize, size: usize) -> Vec<FileJob> {
    (0..files)
        .map(|i| {
            let path = root.join(format!("d{}/f{i:04}", i % 7));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, common::data(size, i as u64 + 1)).unwrap();
            FileJob {
                path,
                name: format!("t/d{}/f{i:04}", i % 7),
                size: Some(size as u64),
            }
        })
        .collect()
}

#[tokio::test]
async fn a_tree_of_small_files_goes_many_times_wider_than_parallel() {
    let gauge = Gauge::new(Duration::from_millis(20));
    let backend: DynBackend = gauge.clone();
    let vault = Arc::new(Vault::init(backend, CHUNKER).await.unwrap().0);
    let src = tempfile::tempdir().unwrap();
    let jobs = write_tree(src.path(), 200, 4096);
    let reporter: Arc<dyn Reporter> = Arc::new(NoReporter);
    let opts = PutOptions {
        parallel: PARALLEL,
        chunker: CHUNKER,
        content_type: None,
        metadata: Default::default(),
    };

    gauge.reset();
    let summary = put_files(&vault, jobs, Vec::new(), &opts, &reporter)
        .await
        .unwrap();
    assert_eq!(summary.files, 200);
    let put_width = gauge.most.load(Ordering::SeqCst);
    // 16 × parallel = 32 one-chunk files at once; `parallel` alone would allow 2.
    assert!(
        put_width >= 8 * PARALLEL,
        "put kept only {put_width} calls in flight with parallel {PARALLEL}"
    );
    assert!(
        put_width <= 16 * PARALLEL + 1,
        "put exceeded the fan-out: {put_width}"
    );

    gauge.reset();
    let refs = tree(&vault, "t").await.unwrap();
    assert_eq!(refs.len(), 200);
    let out = tempfile::tempdir().unwrap();
    let got = get_tree(&vault, "t", refs, out.path(), PARALLEL, &reporter)
        .await
        .unwrap();
    assert_eq!(got.files, 200);
    let get_width = gauge.most.load(Ordering::SeqCst);
    assert!(
        get_width >= 8 * PARALLEL,
        "get kept only {get_width} calls in flight with parallel {PARALLEL}"
    );
    for i in 0..200 {
        let path = out.path().join(format!("d{}/f{i:04}", i % 7));
        let bytes = std::fs::read(&path).unwrap();
        common::assert_bytes(&bytes, &common::data(4096, i as u64 + 1), "a file got back");
    }
}

#[tokio::test]
async fn larger_one_chunk_files_stay_within_the_byte_budget() {
    // Long calls, so that two admitted files' puts overlap even when reading them is slow.
    let gauge = Gauge::new(Duration::from_millis(200));
    let backend: DynBackend = gauge.clone();
    // Fixed chunking: files up to 8 MiB are one chunk each.
    let fixed = ChunkerConfig::Fixed {
        size: 8 * 1024 * 1024,
        min_chunk_threshold: 16 * 1024 * 1024,
    };
    // Format 1: each file is one chunk object, so the window's byte budget is what reaches the
    // store at once. (Format 2 sends packs instead; see the next test.)
    let options = ldv::store::VaultOptions {
        format: ldv::store::FORMAT_1,
        ..ldv::store::VaultOptions::default()
    };
    let vault = Arc::new(Vault::init_with(backend, fixed, &options).await.unwrap().0);
    let src = tempfile::tempdir().unwrap();
    let jobs = write_tree(src.path(), 12, 6 * 1024 * 1024);
    let reporter: Arc<dyn Reporter> = Arc::new(NoReporter);
    let opts = PutOptions {
        parallel: 1,
        chunker: fixed,
        content_type: None,
        metadata: Default::default(),
    };
    put_files(&vault, jobs, Vec::new(), &opts, &reporter)
        .await
        .unwrap();
    // parallel 1: a 16 MiB budget holds two 6 MiB files, never three.
    let most = gauge.bytes_most.load(Ordering::SeqCst);
    assert!(
        most <= 16 * 1024 * 1024 + 4096,
        "{most} bytes of puts in flight with a 16 MiB budget"
    );
    assert!(
        most >= 12 * 1024 * 1024,
        "only {most} bytes in flight: two files should fit at once"
    );
}

#[tokio::test]
async fn pack_uploads_in_flight_stay_bounded() {
    let gauge = Gauge::new(Duration::from_millis(200));
    let backend: DynBackend = gauge.clone();
    let fixed = ChunkerConfig::Fixed {
        size: 8 * 1024 * 1024,
        min_chunk_threshold: 16 * 1024 * 1024,
    };
    let vault = Arc::new(Vault::init(backend, fixed).await.unwrap().0);
    let src = tempfile::tempdir().unwrap();
    let jobs = write_tree(src.path(), 24, 6 * 1024 * 1024);
    let reporter: Arc<dyn Reporter> = Arc::new(NoReporter);
    let opts = PutOptions {
        parallel: 1,
        chunker: fixed,
        content_type: None,
        metadata: Default::default(),
    };
    put_files(&vault, jobs, Vec::new(), &opts, &reporter)
        .await
        .unwrap();
    // 144 MiB go up as packs of under 16 + 8 MiB, at most three at once.
    let most = gauge.bytes_most.load(Ordering::SeqCst);
    assert!(
        most <= 3 * 24 * 1024 * 1024,
        "{most} bytes of pack uploads in flight"
    );
    assert!(
        most >= 16 * 1024 * 1024,
        "only {most} bytes in flight: packs should fill to their target"
    );
}
