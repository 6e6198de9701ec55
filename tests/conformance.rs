//! The `Backend` conformance suite: every check of the contract written on the trait
//! (`src/backend/mod.rs`) runs on every backend and layer stack, in the manner of object_store's
//! `integration.rs` and restic's backend test suite.
//!
//! A check is an `async fn(&dyn Backend)` in [`checks`] and is listed once in [`for_each_check`];
//! a stack is a builder in [`stacks`] and is listed once with [`conformance!`]. Adding a backend
//! (s3, azure, gcs) is one builder and one `conformance!` line. After each check, stacks on a local
//! directory also assert that no temp file is left behind and nothing was written outside the root.
//!
//! Below the matrix are the tests that need more than the trait: the local backend's on-disk
//! behaviour, the metrics layer's counters, the fault layer's rules, and the chunk store reading
//! through injected faults.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::{assert_bytes, assert_kind, data, files_named, list_keys, outcome, sorted};
use futures::{StreamExt, TryStreamExt};
use ldv::ErrorKind;
use ldv::backend::BackendExt;
use ldv::backend::azure::{AzureBackend, AzureConfig};
use ldv::backend::gcs::{GcsBackend, GcsConfig};
use ldv::backend::layer::{
    Fault, FaultRule, FaultyBackend, MetricsBackend, Op, RetryBackend, RetryPolicy,
};
use ldv::backend::local::{LocalBackend, LocalConfig};
use ldv::backend::memory::MemoryBackend;
use ldv::backend::s3::{S3Backend, S3Config, TimeoutConfig};
use ldv::backend::{Backend, DynBackend, MAX_KEY_LEN, PutMode, TEMP_PREFIX, validate_key};
use ldv::config::Secret;
use ldv::report::NoReporter;
use ldv::store::chunker::ChunkerConfig;
use ldv::store::codec::PlainChunk;
use ldv::store::layout::ChunkId;
use ldv::store::{ChunkWrite, Vault, VaultOptions};
use tempfile::TempDir;

const MIB: usize = 1024 * 1024;

/// An absolute key: if validation ever let it through, the local backend would write here.
const ABSOLUTE_PROBE_KEY: &str = "/ldv-conformance-escape-probe";

// ---------------------------------------------------------------------------------------------
// Stacks
// ---------------------------------------------------------------------------------------------

/// A backend stack under test, with what must outlive it.
struct TestStack {
    backend: DynBackend,
    local: Option<LocalDirs>,
}

/// The directories of a local backend: `root` lives alone inside the private `outer` directory, so
/// anything a key manages to write outside the root shows up as a second entry of `outer`.
struct LocalDirs {
    outer: TempDir,
    root: PathBuf,
}

impl LocalDirs {
    fn new() -> Self {
        let outer = tempfile::Builder::new()
            .prefix("ldv-conformance-")
            .tempdir()
            .expect("create temp dir");
        let root = outer.path().join("vault");
        Self { outer, root }
    }

    fn backend(&self) -> DynBackend {
        Arc::new(LocalBackend::new(&LocalConfig::new(&self.root)).expect("open local backend"))
    }

    /// Asserts the invariants every operation must keep on disk, whatever it returned.
    fn assert_clean(&self) {
        let temps = files_named(&self.root, TEMP_PREFIX);
        assert!(temps.is_empty(), "temp files left behind: {temps:?}");
        let outside: Vec<_> = std::fs::read_dir(self.outer.path())
            .expect("read outer dir")
            .map(|e| e.expect("outer dir entry").file_name())
            .filter(|name| name != "vault")
            .collect();
        assert!(outside.is_empty(), "written outside the root: {outside:?}");
        assert!(
            !Path::new(ABSOLUTE_PROBE_KEY).exists(),
            "an absolute key was written at {ABSOLUTE_PROBE_KEY}"
        );
    }
}

impl TestStack {
    fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// Post-conditions checked after every check.
    fn assert_clean(&self) {
        if let Some(local) = &self.local {
            local.assert_clean();
        }
    }
}

/// Builders of every stack the suite runs on.
mod stacks {
    use super::*;

    pub async fn memory() -> TestStack {
        TestStack {
            backend: Arc::new(MemoryBackend::new()),
            local: None,
        }
    }

    pub async fn local() -> TestStack {
        let dirs = LocalDirs::new();
        TestStack {
            backend: dirs.backend(),
            local: Some(dirs),
        }
    }

    /// The fault layer with no rules must be a transparent pass-through.
    pub async fn faulty_memory() -> TestStack {
        TestStack {
            backend: Arc::new(FaultyBackend::new(Arc::new(MemoryBackend::new()))),
            local: None,
        }
    }

    pub async fn metrics_local() -> TestStack {
        let dirs = LocalDirs::new();
        TestStack {
            backend: Arc::new(MetricsBackend::new(dirs.backend())),
            local: Some(dirs),
        }
    }

    /// The retry layer must make a backend that fails every third call transiently conform.
    pub async fn retry_faulty_memory() -> TestStack {
        let faulty = Arc::new(FaultyBackend::new(Arc::new(MemoryBackend::new())));
        faulty.add(FaultRule::new(Op::Any, Fault::Transient).every(3));
        // Concurrent checks interleave their calls, so one caller can meet several faults in a
        // row: allow enough retries that the layer, not luck, decides the outcome.
        let policy = RetryPolicy {
            max_retries: 30,
            initial_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
            ..RetryPolicy::default()
        };
        TestStack {
            backend: Arc::new(RetryBackend::new(faulty, policy, Arc::new(NoReporter))),
            local: None,
        }
    }

    /// An S3 stack on the server whose endpoint is in `var` (set by scripts/test), in a fresh
    /// bucket so checks never see each other's objects; `None` when no server was given and
    /// `LDV_TEST_REQUIRE_ALL` is unset.
    async fn s3(var: &str) -> Option<TestStack> {
        let Ok(endpoint) = std::env::var(var) else {
            assert!(
                std::env::var_os("LDV_TEST_REQUIRE_ALL").is_none(),
                "{var} is not set but LDV_TEST_REQUIRE_ALL is: the S3 server did not start"
            );
            eprintln!("skipped: {var} is not set (no S3 server)");
            return None;
        };
        let env = |name: &str| std::env::var(name).unwrap_or_else(|_| "ldvtest".into());
        let config = S3Config {
            endpoint: Some(endpoint),
            region: Some("us-east-1".into()),
            path_style: true,
            access_key_id: Some(env("LDV_TEST_S3_ACCESS_KEY")),
            secret_access_key: Some(Secret::new(env("LDV_TEST_S3_SECRET_KEY"))),
            // A bucket of its own, with no prefix, so that full-length keys fit.
            ..S3Config::from_url(&format!("conformance-{:016x}", rand::random::<u64>()), "")
        };
        let backend = S3Backend::new(&config, &TimeoutConfig::default(), None)
            .await
            .expect("build the S3 backend");
        backend
            .create_bucket()
            .await
            .expect("create the test bucket");
        Some(TestStack {
            backend: served(Arc::new(backend)),
            local: None,
        })
    }

    /// A stack on a real server runs under the retry layer, as in `ldv` itself: servers on a
    /// loaded machine drop a connection now and then (Azurite under thousands of puts, say), and
    /// a reset retried is not a broken contract. The layer passes every other error through.
    fn served(backend: DynBackend) -> DynBackend {
        Arc::new(RetryBackend::new(
            backend,
            RetryPolicy::default(),
            Arc::new(NoReporter),
        ))
    }

    pub async fn s3_moto() -> Option<TestStack> {
        s3("LDV_TEST_S3_MOTO_ENDPOINT").await
    }

    pub async fn s3_s3sfs() -> Option<TestStack> {
        s3("LDV_TEST_S3_S3SFS_ENDPOINT").await
    }

    /// An Azure stack on Azurite (`LDV_TEST_AZURE_*`, set by scripts/test) in a fresh container
    /// with no prefix, so checks never see each other's blobs and full-length keys fit; `tune`
    /// adjusts the profile, `page` the listing page size. `None` when no server was given and
    /// `LDV_TEST_REQUIRE_ALL` is unset.
    async fn azure(
        tune: impl FnOnce(AzureConfig) -> AzureConfig,
        page: Option<usize>,
    ) -> Option<TestStack> {
        let var = "LDV_TEST_AZURE_ENDPOINT";
        let Ok(endpoint) = std::env::var(var) else {
            assert!(
                std::env::var_os("LDV_TEST_REQUIRE_ALL").is_none(),
                "{var} is not set but LDV_TEST_REQUIRE_ALL is: Azurite did not start"
            );
            eprintln!("skipped: {var} is not set (no Azurite)");
            return None;
        };
        let env = |name: &str, default: &str| std::env::var(name).unwrap_or(default.into());
        let config = AzureConfig {
            account_name: Some(env("LDV_TEST_AZURE_ACCOUNT", "devstoreaccount1")),
            account_key: Some(Secret::new(env("LDV_TEST_AZURE_KEY", ""))),
            endpoint: Some(endpoint),
            ..AzureConfig::from_url(&format!("conformance-{:016x}", rand::random::<u64>()), "")
        };
        let mut backend = AzureBackend::new(&tune(config), &TimeoutConfig::default(), None)
            .expect("build the Azure backend");
        if let Some(n) = page {
            backend = backend.with_list_page_size(n);
        }
        backend
            .create_container()
            .await
            .expect("create the test container");
        Some(TestStack {
            backend: served(Arc::new(backend)),
            local: None,
        })
    }

    /// Azurite with the default profile: every object of the suite goes up in one Put Blob.
    pub async fn azure_azurite() -> Option<TestStack> {
        azure(|c| c, None).await
    }

    /// Azurite with small blocks and listing pages: objects above 1 MiB go up as 512 KiB blocks
    /// committed by Put Block List, and listings of 2,500 keys take three pages.
    pub async fn azure_azurite_blocks() -> Option<TestStack> {
        azure(
            |c| AzureConfig {
                block_threshold: ldv::config::Size(1 << 20),
                block_size: ldv::config::Size(512 << 10),
                ..c
            },
            Some(1000),
        )
        .await
    }

    /// A GCS stack on fake-gcs-server at `LDV_TEST_GCS_ENDPOINT` (set by scripts/test), anonymous,
    /// in a fresh bucket per check; objects above 1 MiB go up as resumable uploads in 256 KiB
    /// chunks, so the suite's larger objects take that path too. `None` when no server was given
    /// and `LDV_TEST_REQUIRE_ALL` is unset.
    pub async fn gcs_fake() -> Option<TestStack> {
        let var = "LDV_TEST_GCS_ENDPOINT";
        let Ok(endpoint) = std::env::var(var) else {
            assert!(
                std::env::var_os("LDV_TEST_REQUIRE_ALL").is_none(),
                "{var} is not set but LDV_TEST_REQUIRE_ALL is: the GCS emulator did not start"
            );
            eprintln!("skipped: {var} is not set (no GCS emulator)");
            return None;
        };
        let config = GcsConfig {
            endpoint: Some(endpoint),
            anonymous: true,
            resumable_threshold: ldv::config::Size(MIB as u64),
            resumable_chunk_size: ldv::config::Size(256 * 1024),
            // A bucket of its own, with no prefix, so that full-length keys fit.
            ..GcsConfig::from_url(&format!("conformance-{:016x}", rand::random::<u64>()), "")
        };
        let backend = GcsBackend::new(&config, &TimeoutConfig::default())
            .await
            .expect("build the GCS backend");
        backend
            .create_bucket()
            .await
            .expect("create the test bucket");
        Some(TestStack {
            backend: served(Arc::new(backend)),
            local: None,
        })
    }

    pub async fn metrics_faulty_local() -> TestStack {
        let dirs = LocalDirs::new();
        let faulty = Arc::new(FaultyBackend::new(dirs.backend()));
        TestStack {
            backend: Arc::new(MetricsBackend::new(faulty)),
            local: Some(dirs),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The matrix: every check on every stack
// ---------------------------------------------------------------------------------------------

/// Calls `$emit!(check)` for every check of the contract.
macro_rules! for_each_check {
    ($emit:ident) => {
        $emit!(put_get_round_trip);
        $emit!(overwrite_replaces);
        $emit!(whole_put_stores_and_overwrites_above_the_multipart_threshold);
        $emit!(create_only_conflicts_and_keeps_the_old_object);
        $emit!(create_only_still_conflicts_after_many_puts);
        $emit!(missing_key_is_not_found);
        $emit!(key_that_only_prefixes_other_keys_is_not_found);
        $emit!(key_under_an_object_key_is_not_found);
        $emit!(get_range_is_exact_and_clipped);
        $emit!(head_reports_key_and_size);
        $emit!(list_is_a_plain_string_prefix);
        $emit!(list_returns_many_keys);
        $emit!(invalid_keys_are_rejected_everywhere);
        $emit!(invalid_copy_target_is_rejected_before_the_source_is_read);
        $emit!(longest_valid_key_round_trips);
        $emit!(long_key_segment_is_stored_or_rejected_as_invalid);
        $emit!(unusual_but_valid_keys_round_trip);
        $emit!(keys_may_nest_under_other_keys);
        $emit!(copy_makes_an_independent_object);
        $emit!(delete_removes_only_that_object);
        $emit!(concurrent_puts_of_different_keys_all_land);
        $emit!(concurrent_create_only_puts_have_one_winner);
        $emit!(health_reports_healthy);
        $emit!(sweep_keeps_every_object);
    };
}

/// One test running check `$check` on a fresh stack from `$build`.
macro_rules! check_test {
    ($(#[$attr:meta])* $build:path, $check:ident) => {
        $(#[$attr])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let Some(stack) = Into::<Option<TestStack>>::into($build().await) else {
                return;
            };
            checks::$check(stack.backend()).await;
            stack.assert_clean();
        }
    };
}

/// `conformance!(name = builder, ...)` runs every check on each stack `builder` builds, as the
/// tests `name::<check>`. A store that cannot meet part of the contract for reasons outside ldv
/// lists that under `store_limits { check: substitute, "why" }`: on those stacks the check runs as
/// `substitute`, which asserts what ldv still guarantees on such a store. Nothing is skipped.
macro_rules! conformance {
    ($($stack:ident = $build:path),+ $(,)?) => {
        conformance!($($stack = $build),+ ; store_limits {});
    };
    ($($stack:ident = $build:path),+ ; store_limits $limits:tt) => {
        $( conformance!(@module ($) $stack, $build, $limits); )+
    };
    // `$d` carries a `$` into the per-stack `emit` macro, which matches limited checks by name.
    (@module ($d:tt) $stack:ident, $build:path,
        { $($check:ident : $substitute:ident, $why:literal),* $(,)? }) => {
        mod $stack {
            use super::*;

            macro_rules! emit {
                $( ($check) => {
                    #[doc = $why]
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $check() {
                        let Some(stack) = Into::<Option<TestStack>>::into($build().await) else {
                            return;
                        };
                        limited::$substitute(stack.backend()).await;
                        stack.assert_clean();
                    }
                }; )*
                ($d check:ident) => { check_test!($build, $d check); };
            }

            for_each_check!(emit);
        }
    };
}

conformance!(
    memory = stacks::memory,
    faulty_memory = stacks::faulty_memory,
    retry_faulty_memory = stacks::retry_faulty_memory,
);
conformance!(s3_moto = stacks::s3_moto);
conformance!(
    s3_s3sfs = stacks::s3_s3sfs;
    store_limits {
        concurrent_create_only_puts_have_one_winner: racing_create_only_puts_never_tear,
            "s3s-fs 0.14.1 checks If-None-Match and then writes, so racing create-only puts can \
             both succeed; DESIGN 4.3 makes conditional writes a second guard only.",
        longest_valid_key_round_trips: keys_beyond_the_store_limit_fail_loudly,
            "s3s-fs 0.14.1 names a metadata file after the base64 of the whole key, so keys over \
             ~140 bytes get 500 (File name too long); moto and AWS S3 store 1024-byte keys.",
    }
);
conformance!(
    azure_azurite = stacks::azure_azurite,
    azure_azurite_blocks = stacks::azure_azurite_blocks,
);
conformance!(gcs_fake = stacks::gcs_fake);
conformance!(
    local = stacks::local,
    metrics_local = stacks::metrics_local,
    metrics_faulty_local = stacks::metrics_faulty_local,
);

/// The checks of the contract; each takes only the trait object, so it runs on any stack.
mod checks {
    use super::*;

    async fn put(b: &dyn Backend, key: &str, value: &Bytes) {
        b.put(key, value.clone(), PutMode::Overwrite)
            .await
            .unwrap_or_else(|e| panic!("put {key:?} on {b}: {e:?}"));
    }

    async fn get(b: &dyn Backend, key: &str) -> Bytes {
        b.get(key)
            .await
            .unwrap_or_else(|e| panic!("get {key:?} on {b}: {e:?}"))
    }

    pub async fn put_get_round_trip(b: &dyn Backend) {
        let objects = [
            ("rt/empty", data(0, 1)),
            ("rt/one", data(1, 2)),
            ("rt/big", data(3 * MIB + 7, 3)),
        ];
        for (key, value) in &objects {
            put(b, key, value).await;
            assert_bytes(&get(b, key).await, value, key);
        }
        // Read each again after all were written: no object clobbered another.
        for (key, value) in &objects {
            assert_bytes(&get(b, key).await, value, key);
        }
    }

    pub async fn overwrite_replaces(b: &dyn Backend) {
        let key = "ow/obj";
        for (len, seed) in [(1000, 1), (10, 2), (0, 3), (5000, 4)] {
            let value = data(len, seed);
            put(b, key, &value).await;
            assert_bytes(&get(b, key).await, &value, "after overwrite");
            let size = b.head(key).await.expect("head").size;
            assert_eq!(size, len as u64, "head size after overwrite");
        }
        assert_eq!(list_keys(b, "ow/").await.unwrap(), ["ow/obj"]);
    }

    /// A whole put (packs) of objects above every stack's multipart, block or resumable
    /// threshold stores them byte for byte and replaces what was there.
    pub async fn whole_put_stores_and_overwrites_above_the_multipart_threshold(b: &dyn Backend) {
        let key = "whole/obj";
        for (len, seed) in [(6 * MIB + 3, 1), (100, 2), (7 * MIB, 3)] {
            let value = data(len, seed);
            b.put_whole(key, value.clone()).await.expect("whole put");
            assert_bytes(&get(b, key).await, &value, "after a whole put");
            assert_eq!(b.head(key).await.expect("head").size, len as u64);
        }
        assert_eq!(list_keys(b, "whole/").await.unwrap(), ["whole/obj"]);
    }

    pub async fn create_only_conflicts_and_keeps_the_old_object(b: &dyn Backend) {
        let old = data(100, 1);
        b.put("co/k", old.clone(), PutMode::CreateOnly)
            .await
            .expect("create-only put of a new key");
        for new in [data(50, 2), data(0, 3), data(200, 4)] {
            assert_kind(
                b.put("co/k", new, PutMode::CreateOnly).await,
                ErrorKind::Conflict,
                "create-only put of an existing key",
            );
            assert_bytes(&get(b, "co/k").await, &old, "object after a refused put");
        }
        // An object stored by an overwriting put conflicts just the same.
        put(b, "co/empty", &Bytes::new()).await;
        assert_kind(
            b.put("co/empty", data(10, 5), PutMode::CreateOnly).await,
            ErrorKind::Conflict,
            "create-only put over an empty object",
        );
        assert!(get(b, "co/empty").await.is_empty());
        assert_eq!(list_keys(b, "co/").await.unwrap(), ["co/empty", "co/k"]);
    }

    /// Asserts that reading, deleting and copying `key` all give `NotFound` and that the copy
    /// created nothing, reporting every operation that did otherwise at once.
    async fn assert_missing(b: &dyn Backend, key: &str) {
        let target = "missing-copy-target";
        let outcomes = [
            ("get", outcome(b.get(key).await)),
            ("get_range", outcome(b.get_range(key, 0..5).await)),
            ("head", outcome(b.head(key).await)),
            ("delete", outcome(b.delete(key).await)),
            ("copy", outcome(b.copy(key, target).await)),
            ("head of the copy target", outcome(b.head(target).await)),
        ];
        let wrong: Vec<_> = outcomes
            .iter()
            .filter(|(_, o)| *o != Err(ErrorKind::NotFound))
            .collect();
        assert!(
            wrong.is_empty(),
            "{key:?} on {b}: expected NotFound, got {wrong:?}"
        );
    }

    /// Backends may change how they guard create-only puts as a command goes on (the S3 backend
    /// probes the store once and may then rely on If-None-Match alone): the contract holds for
    /// the fortieth put as for the first.
    pub async fn create_only_still_conflicts_after_many_puts(b: &dyn Backend) {
        for i in 0..40u64 {
            let key = format!("many/{i}");
            b.put(&key, data(10, i), PutMode::CreateOnly)
                .await
                .unwrap_or_else(|e| panic!("create {key}: {e:?}"));
            let again = b.put(&key, data(10, i + 100), PutMode::CreateOnly).await;
            assert_kind(
                again,
                ErrorKind::Conflict,
                &format!("second create of {key}"),
            );
            assert_bytes(&get(b, &key).await, &data(10, i), &key);
        }
    }

    pub async fn missing_key_is_not_found(b: &dyn Backend) {
        let present = data(10, 1);
        put(b, "nf/present", &present).await;
        for key in ["nf/absent", "nf/presen", "nf/present2", "absent"] {
            assert_missing(b, key).await;
            assert_kind(b.get(key).await, ErrorKind::NotFound, "get");
            // A failed copy onto an existing object leaves it alone.
            assert_kind(b.copy(key, "nf/present").await, ErrorKind::NotFound, "copy");
        }
        assert_bytes(&get(b, "nf/present").await, &present, "untouched");
        assert_eq!(list_keys(b, "").await.unwrap(), ["nf/present"]);
    }

    /// A key that is only the "directory" of other keys names no object.
    pub async fn key_that_only_prefixes_other_keys_is_not_found(b: &dyn Backend) {
        put(b, "pd/dir/x", &data(10, 1)).await;
        assert_missing(b, "pd/dir").await;
        assert_missing(b, "pd").await;
        assert_eq!(list_keys(b, "pd/dir").await.unwrap(), ["pd/dir/x"]);
        assert_bytes(&get(b, "pd/dir/x").await, &data(10, 1), "untouched");
    }

    /// A key below an object's key ("file/child") names no object.
    pub async fn key_under_an_object_key_is_not_found(b: &dyn Backend) {
        put(b, "po/file", &data(10, 1)).await;
        assert_missing(b, "po/file/child").await;
        assert_missing(b, "po/file/child/grandchild").await;
        assert_eq!(list_keys(b, "po/").await.unwrap(), ["po/file"]);
        assert_bytes(&get(b, "po/file").await, &data(10, 1), "untouched");
    }

    pub async fn get_range_is_exact_and_clipped(b: &dyn Backend) {
        let value = data(100, 7);
        put(b, "gr/obj", &value).await;
        let cases: [(std::ops::Range<u64>, &[u8]); 10] = [
            (10..20, &value[10..20]),
            (0..100, &value[..]),
            (0..0, &[]),
            (50..50, &[]),
            (99..100, &value[99..]),
            (90..200, &value[90..]),
            (0..u64::MAX, &value[..]),
            (100..110, &[]),
            (500..600, &[]),
            (u64::MAX - 1..u64::MAX, &[]),
        ];
        for (range, expected) in cases {
            let got = b.get_range("gr/obj", range.clone()).await.expect("range");
            assert_bytes(&got, expected, &format!("range {range:?}"));
        }
        let big = data(300_000, 8);
        put(b, "gr/big", &big).await;
        let got = b
            .get_range("gr/big", 123_457..223_457)
            .await
            .expect("range");
        assert_bytes(
            &got,
            &big[123_457..223_457],
            "range in the middle of a big object",
        );
        put(b, "gr/empty", &Bytes::new()).await;
        for range in [0..0, 0..10, 5..10] {
            let got = b.get_range("gr/empty", range).await.expect("range");
            assert!(got.is_empty(), "range of an empty object");
        }
    }

    pub async fn head_reports_key_and_size(b: &dyn Backend) {
        let before = SystemTime::now() - Duration::from_secs(24 * 3600);
        for (key, len) in [("hd/zero", 0), ("hd/one", 1), ("hd/more", 4097)] {
            put(b, key, &data(len, 1)).await;
            let meta = b.head(key).await.expect("head");
            assert_eq!(meta.key, key);
            assert_eq!(meta.size, len as u64, "{key} size");
            if let Some(modified) = meta.modified {
                let after = SystemTime::now() + Duration::from_secs(24 * 3600);
                assert!(before < modified && modified < after, "{key}: {modified:?}");
            }
        }
    }

    pub async fn list_is_a_plain_string_prefix(b: &dyn Backend) {
        assert!(list_keys(b, "").await.unwrap().is_empty(), "new store");
        let keys = [
            "ls/a/bc",
            "ls/a/b/c",
            "ls/a/b/d/e",
            "ls/a/c",
            "ls/ab",
            "ls/b/x",
        ];
        for (i, key) in keys.iter().enumerate() {
            put(b, key, &data(i * 10, i as u64)).await;
        }
        let cases: &[(&str, &[&str])] = &[
            ("ls/a/b", &["ls/a/b/c", "ls/a/b/d/e", "ls/a/bc"]),
            ("ls/a/b/", &["ls/a/b/c", "ls/a/b/d/e"]),
            ("ls/a/b/c", &["ls/a/b/c"]),
            ("ls/a/", &["ls/a/b/c", "ls/a/b/d/e", "ls/a/bc", "ls/a/c"]),
            (
                "ls/a",
                &["ls/a/b/c", "ls/a/b/d/e", "ls/a/bc", "ls/a/c", "ls/ab"],
            ),
            ("ls/", &keys),
            ("l", &keys),
            ("", &keys),
            ("ls/a/bcd", &[]),
            ("ls/zzz", &[]),
            ("ls/a/b/c/", &[]),
            ("nothing/", &[]),
            ("m", &[]),
        ];
        for (prefix, expected) in cases {
            let listed = list_keys(b, prefix).await.expect("list");
            assert_eq!(listed, sorted(expected), "list({prefix:?})");
        }
        // Listed metadata reports each object's size.
        let metas: Vec<_> = b.list("").try_collect().await.expect("list");
        for meta in metas {
            let i = keys.iter().position(|k| *k == meta.key).expect("known key");
            assert_eq!(meta.size, (i * 10) as u64, "listed size of {}", meta.key);
        }
    }

    pub async fn list_returns_many_keys(b: &dyn Backend) {
        const N: usize = 2_500;
        let keys: Vec<String> = (0..N)
            .map(|i| format!("many/{:x}/{i:05}", i % 16))
            .collect();
        futures::stream::iter(&keys)
            .map(|key| b.put(key, Bytes::from(key.clone()), PutMode::Overwrite))
            .buffer_unordered(32)
            .try_collect::<Vec<()>>()
            .await
            .expect("put many");
        let mut expected = keys.clone();
        expected.sort();
        assert_eq!(list_keys(b, "many/").await.unwrap(), expected);
        assert_eq!(list_keys(b, "").await.unwrap(), expected);
        let sub = list_keys(b, "many/a/").await.unwrap();
        let expected_sub: Vec<String> = expected
            .iter()
            .filter(|k| k.starts_with("many/a/"))
            .cloned()
            .collect();
        assert_eq!(sub.len(), N / 16);
        assert_eq!(sub, expected_sub);
    }

    /// Keys no backend may accept.
    pub fn invalid_keys() -> Vec<String> {
        let mut keys: Vec<String> = [
            "",
            "../x",
            "a/../../x",
            "..",
            ".",
            ABSOLUTE_PROBE_KEY,
            "a//b",
            "a/",
            "a/./b",
            "./a",
            "a/.",
            "a\nb",
            "a\0b",
            "a\u{7f}b",
            "\tb",
            ".ldv-tmp.x",
            "a/.ldv-tmp.x/b",
            "a/.ldv-tmp.",
        ]
        .iter()
        .map(|k| (*k).to_owned())
        .collect();
        keys.push("a".repeat(MAX_KEY_LEN + 1));
        keys.push("ab/".repeat(MAX_KEY_LEN / 3 + 1) + "c");
        keys
    }

    pub async fn invalid_keys_are_rejected_everywhere(b: &dyn Backend) {
        let good = data(10, 1);
        put(b, "ik/good", &good).await;
        for key in invalid_keys() {
            let k = key.as_str();
            let what = |op: &str| format!("{op} {k:?}");
            for mode in [PutMode::Overwrite, PutMode::CreateOnly] {
                let r = b.put(k, data(3, 2), mode).await;
                assert_kind(r, ErrorKind::InvalidKey, &what("put"));
            }
            assert_kind(b.get(k).await, ErrorKind::InvalidKey, &what("get"));
            let r = b.get_range(k, 0..2).await;
            assert_kind(r, ErrorKind::InvalidKey, &what("get_range"));
            assert_kind(b.head(k).await, ErrorKind::InvalidKey, &what("head"));
            assert_kind(b.delete(k).await, ErrorKind::InvalidKey, &what("delete"));
            let r = b.copy(k, "ik/copy").await;
            assert_kind(r, ErrorKind::InvalidKey, &what("copy from"));
            let r = b.copy("ik/good", k).await;
            assert_kind(r, ErrorKind::InvalidKey, &what("copy to"));
        }
        // Prefixes whose complete segments are invalid cannot be listed either.
        for prefix in [
            "../x",
            "a/../x",
            "/abs",
            "a//b",
            "a/./b",
            "a\nb",
            "x/.ldv-tmp.y/",
        ] {
            let r = list_keys(b, prefix).await;
            assert_kind(r, ErrorKind::InvalidKey, &format!("list {prefix:?}"));
        }
        assert_eq!(list_keys(b, "").await.unwrap(), ["ik/good"]);
        assert_bytes(&get(b, "ik/good").await, &good, "untouched");
    }

    pub async fn invalid_copy_target_is_rejected_before_the_source_is_read(b: &dyn Backend) {
        for target in ["../x", "a//b", ".ldv-tmp.x"] {
            let r = b.copy("ct/missing", target).await;
            assert_kind(r, ErrorKind::InvalidKey, &format!("copy to {target:?}"));
        }
    }

    pub async fn longest_valid_key_round_trips(b: &dyn Backend) {
        // Segments of at most 200 bytes, so every file system can hold them too.
        let mut key = (0..5)
            .map(|_| "k".repeat(200))
            .collect::<Vec<_>>()
            .join("/");
        key.push('/');
        key.push_str(&"z".repeat(MAX_KEY_LEN - key.len()));
        assert_eq!(key.len(), MAX_KEY_LEN);
        validate_key(&key).expect("the longest valid key");
        let value = data(33, 1);
        put(b, &key, &value).await;
        assert_bytes(&get(b, &key).await, &value, "longest key");
        assert_eq!(b.head(&key).await.expect("head").size, 33);
        assert_eq!(list_keys(b, &key[..150]).await.unwrap(), [key.clone()]);
        b.delete(&key).await.expect("delete");
    }

    /// A key passing `validate_key` is either stored like any other or refused as `InvalidKey`;
    /// what happens must not depend on the backend's file system.
    pub async fn long_key_segment_is_stored_or_rejected_as_invalid(b: &dyn Backend) {
        let key = format!("seg/{}", "s".repeat(300));
        let value = data(5, 1);
        match b.put(&key, value.clone(), PutMode::Overwrite).await {
            Ok(()) => {
                assert_bytes(&get(b, &key).await, &value, "long segment");
                assert_eq!(list_keys(b, "seg/").await.unwrap(), [key]);
            }
            Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidKey, "put: {e:?}"),
        }
    }

    pub async fn unusual_but_valid_keys_round_trip(b: &dyn Backend) {
        let keys = [
            "uni/üñí/ç",
            "uni/日本語/キー",
            "uni/emoji-😀",
            "uni/a b/c d",
            "uni/a..b/..c",
            "uni/...",
            "uni/.hidden",
            "uni/x.ldv-tmp.y",
            "uni/back\\slash",
            "uni/per%20cent?q=1&r#frag",
            "uni/UPPER",
            "uni/upper",
        ];
        for (i, key) in keys.iter().enumerate() {
            validate_key(key).expect("a valid key");
            put(b, key, &data(i + 1, i as u64)).await;
        }
        for (i, key) in keys.iter().enumerate() {
            assert_bytes(&get(b, key).await, &data(i + 1, i as u64), key);
        }
        assert_eq!(list_keys(b, "uni/").await.unwrap(), sorted(&keys));
    }

    /// Keys are opaque strings: `a` and `a/b` are two independent objects.
    /// Object stores hold both `a` and `a/b`; a directory-backed store MAY refuse the second
    /// with `Conflict` (the contract allows it) but must then leave the first intact.
    pub async fn keys_may_nest_under_other_keys(b: &dyn Backend) {
        put(b, "nest/a", &data(1, 1)).await;
        match b.put("nest/a/b", data(2, 2), PutMode::Overwrite).await {
            Ok(()) => {
                assert_bytes(&get(b, "nest/a/b").await, &data(2, 2), "nest/a/b");
                assert_eq!(
                    list_keys(b, "nest/a").await.unwrap(),
                    ["nest/a", "nest/a/b"]
                );
            }
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
                assert_eq!(list_keys(b, "nest/").await.unwrap(), ["nest/a"]);
            }
        }
        assert_bytes(&get(b, "nest/a").await, &data(1, 1), "nest/a");
        put(b, "nest/c/d", &data(3, 3)).await;
        match b.put("nest/c", data(4, 4), PutMode::Overwrite).await {
            Ok(()) => assert_bytes(&get(b, "nest/c").await, &data(4, 4), "nest/c"),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict, "{e}"),
        }
        assert_bytes(&get(b, "nest/c/d").await, &data(3, 3), "nest/c/d");
    }

    pub async fn copy_makes_an_independent_object(b: &dyn Backend) {
        let first = data(1000, 1);
        put(b, "cp/src", &first).await;
        b.copy("cp/src", "cp/dst").await.expect("copy");
        assert_bytes(&get(b, "cp/dst").await, &first, "copy");
        assert_eq!(b.head("cp/dst").await.expect("head").size, 1000);
        // Changing or removing the source leaves the copy alone.
        put(b, "cp/src", &data(10, 2)).await;
        assert_bytes(
            &get(b, "cp/dst").await,
            &first,
            "copy after source overwrite",
        );
        b.delete("cp/src").await.expect("delete source");
        assert_bytes(&get(b, "cp/dst").await, &first, "copy after source delete");
        // Copy replaces an existing target, into a new "directory" too.
        let second = data(20, 3);
        put(b, "cp/other", &second).await;
        b.copy("cp/other", "cp/dst").await.expect("copy over");
        assert_bytes(&get(b, "cp/dst").await, &second, "copy over existing");
        b.copy("cp/other", "cp/deep/er/dst")
            .await
            .expect("deep copy");
        assert_bytes(&get(b, "cp/deep/er/dst").await, &second, "deep copy");
        // Copying an object onto itself keeps it.
        b.copy("cp/other", "cp/other").await.expect("self copy");
        assert_bytes(&get(b, "cp/other").await, &second, "self copy");
        let expected = ["cp/deep/er/dst", "cp/dst", "cp/other"];
        assert_eq!(list_keys(b, "cp/").await.unwrap(), sorted(&expected));
    }

    pub async fn delete_removes_only_that_object(b: &dyn Backend) {
        for key in ["del/a", "del/ab", "del/a2/x"] {
            put(b, key, &data(10, 1)).await;
        }
        b.delete("del/a").await.expect("delete");
        assert_kind(b.get("del/a").await, ErrorKind::NotFound, "get deleted");
        assert_kind(b.head("del/a").await, ErrorKind::NotFound, "head deleted");
        assert_kind(b.delete("del/a").await, ErrorKind::NotFound, "delete twice");
        assert_eq!(list_keys(b, "del/").await.unwrap(), ["del/a2/x", "del/ab"]);
        // The key is free again, even for a create-only put.
        b.put("del/a", data(5, 2), PutMode::CreateOnly)
            .await
            .expect("create-only put after delete");
        assert_bytes(&get(b, "del/a").await, &data(5, 2), "recreated");
        b.delete("del/a2/x").await.expect("delete nested");
        assert_eq!(list_keys(b, "del/").await.unwrap(), ["del/a", "del/ab"]);
    }

    pub async fn concurrent_puts_of_different_keys_all_land(b: &dyn Backend) {
        const N: u64 = 64;
        let puts = (0..N).map(|i| async move {
            // Half share a "directory", half get their own: both paths race on creation.
            let key = if i % 2 == 0 {
                format!("cc/shared/{i}")
            } else {
                format!("cc/own{i}/obj")
            };
            b.put(&key, data(1000 + i as usize, i), PutMode::Overwrite)
                .await
                .map(|()| key)
        });
        let keys: Vec<String> = futures::future::try_join_all(puts).await.expect("puts");
        for (i, key) in keys.iter().enumerate() {
            assert_bytes(&get(b, key).await, &data(1000 + i, i as u64), key);
        }
        let mut expected = keys.clone();
        expected.sort();
        assert_eq!(list_keys(b, "cc/").await.unwrap(), expected);
    }

    pub async fn concurrent_create_only_puts_have_one_winner(b: &dyn Backend) {
        const N: u64 = 32;
        for round in 0..3 {
            let key = format!("race/{round}");
            let puts = (0..N).map(|i| {
                let key = &key;
                async move { b.put(key, data(100, i), PutMode::CreateOnly).await }
            });
            let results = futures::future::join_all(puts).await;
            let winners: Vec<usize> = (0..results.len()).filter(|&i| results[i].is_ok()).collect();
            assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
            for r in results.into_iter().filter(Result::is_err) {
                assert_kind(r, ErrorKind::Conflict, "losing create-only put");
            }
            let stored = get(b, &key).await;
            assert_bytes(&stored, &data(100, winners[0] as u64), "the winner's data");
        }
    }

    pub async fn health_reports_healthy(b: &dyn Backend) {
        let health = b.health().await.expect("health");
        assert!(health.healthy, "{b} unhealthy: {health:?}");
        assert_eq!(health.last_error, None);
        // The probe leaves nothing a listing would show.
        assert!(list_keys(b, "").await.unwrap().is_empty());
    }

    /// Sweeping leftovers of interrupted writes, even with no age limit, touches no object.
    pub async fn sweep_keeps_every_object(b: &dyn Backend) {
        put(b, "sw/a", &data(10, 1)).await;
        put(b, "sw/b/c", &data(100_000, 2)).await;
        put(b, "sw/empty", &data(0, 3)).await;
        b.sweep(Duration::ZERO).await.expect("sweep");
        assert_eq!(
            list_keys(b, "sw/").await.unwrap(),
            ["sw/a", "sw/b/c", "sw/empty"]
        );
        assert_bytes(&get(b, "sw/b/c").await, &data(100_000, 2), "sw/b/c");
        assert_bytes(&get(b, "sw/a").await, &data(10, 1), "sw/a");
    }
}

/// What ldv still guarantees on a store that cannot meet part of the contract (see
/// `store_limits` in [`conformance!`]).
mod limited {
    use super::*;

    /// On a store whose conditional writes are not atomic, racing create-only puts may have more
    /// than one winner, but each put succeeds or conflicts, at least one wins, and the object
    /// read afterwards is one winner's whole body, never a mix.
    pub async fn racing_create_only_puts_never_tear(b: &dyn Backend) {
        const N: u64 = 32;
        for round in 0..3 {
            let key = format!("race/{round}");
            let puts = (0..N).map(|i| {
                let key = &key;
                async move { b.put(key, data(1000, i), PutMode::CreateOnly).await }
            });
            let results = futures::future::join_all(puts).await;
            let winners: Vec<u64> = (0..N).filter(|&i| results[i as usize].is_ok()).collect();
            assert!(!winners.is_empty(), "round {round}: no put won");
            for r in results.into_iter().filter(Result::is_err) {
                assert_kind(r, ErrorKind::Conflict, "losing create-only put");
            }
            let stored = b.get(&key).await.expect("get the raced key");
            assert!(
                winners.iter().any(|&i| stored == data(1000, i)),
                "round {round}: the stored body is no winner's ({} bytes)",
                stored.len()
            );
            // Once the race is over, create-only refuses again.
            let late = b.put(&key, data(10, 99), PutMode::CreateOnly).await;
            assert_kind(late, ErrorKind::Conflict, "create-only put after the race");
        }
    }

    /// On a store that cannot hold keys as long as the contract allows, a key it can hold (in
    /// nested segments) round trips, and the longest valid key fails with an error rather than
    /// succeeding or reading back anything but the bytes written.
    pub async fn keys_beyond_the_store_limit_fail_loudly(b: &dyn Backend) {
        let held = format!("{}/{}/{}", "k".repeat(40), "l".repeat(40), "m".repeat(40));
        let value = data(33, 1);
        b.put(&held, value.clone(), PutMode::Overwrite)
            .await
            .expect("put a 122-byte key");
        assert_bytes(&b.get(&held).await.expect("get"), &value, "122-byte key");
        assert_eq!(b.head(&held).await.expect("head").size, 33);
        assert_eq!(
            list_keys(b, "kkkk").await.unwrap(),
            std::slice::from_ref(&held)
        );
        b.delete(&held).await.expect("delete");

        let mut longest = vec!["y".repeat(250); 4].join("/");
        longest = format!("{longest}/{}", "z".repeat(MAX_KEY_LEN - longest.len() - 1));
        validate_key(&longest).expect("the longest valid key");
        let r = b.put(&longest, data(33, 2), PutMode::Overwrite).await;
        let e = r.expect_err("this store cannot hold a 1024-byte key, yet the put succeeded");
        assert!(
            e.to_string().contains("500"),
            "the store's answer is named: {e}"
        );
        if let Ok(back) = b.get(&longest).await {
            assert_bytes(&back, &data(33, 2), "whatever the store kept");
        }
    }
}

#[tokio::test]
async fn stacks_display_their_layers() {
    let expect = |stack: TestStack, shape: &str| {
        let root = stack
            .local
            .as_ref()
            .map(|l| l.root.display().to_string())
            .unwrap_or_default();
        assert_eq!(stack.backend.to_string(), shape.replace("ROOT", &root));
    };
    expect(stacks::memory().await, "memory://");
    expect(stacks::local().await, "file://ROOT");
    expect(stacks::faulty_memory().await, "faulty(memory://)");
    expect(stacks::metrics_local().await, "file://ROOT");
    expect(stacks::metrics_faulty_local().await, "faulty(file://ROOT)");
}

// ---------------------------------------------------------------------------------------------
// The local backend on disk
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_puts_leave_no_temp_files() {
    let dirs = LocalDirs::new();
    let b = dirs.backend();
    b.put("t/a", data(100, 1), PutMode::Overwrite)
        .await
        .unwrap();
    b.put("t/a", data(200, 2), PutMode::Overwrite)
        .await
        .unwrap();
    let refused = b.put("t/a", data(300, 3), PutMode::CreateOnly).await;
    assert_kind(refused, ErrorKind::Conflict, "create-only");
    b.copy("t/a", "t/b/c").await.unwrap();
    b.health().await.unwrap();
    let temps = files_named(&dirs.root, TEMP_PREFIX);
    assert!(temps.is_empty(), "temp files left behind: {temps:?}");
    // The objects are plain files at their keys.
    assert_eq!(std::fs::read(dirs.root.join("t/a")).unwrap(), data(200, 2));
    assert_eq!(
        std::fs::read(dirs.root.join("t/b/c")).unwrap(),
        data(200, 2)
    );
    dirs.assert_clean();
}

/// A writer killed between creating its temp file and renaming it leaves a stray temp file; it is
/// no object, so it is neither listed nor readable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_interrupted_write_is_not_an_object() {
    let dirs = LocalDirs::new();
    let b = dirs.backend();
    b.put("d/real", data(10, 1), PutMode::Overwrite)
        .await
        .unwrap();
    std::fs::write(dirs.root.join("d/.ldv-tmp.xyz"), b"half a chunk").unwrap();
    std::fs::write(dirs.root.join(".ldv-tmp.abc"), b"half a manifest").unwrap();
    std::fs::create_dir_all(dirs.root.join("d/.ldv-tmp.dir")).unwrap();
    std::fs::write(dirs.root.join("d/.ldv-tmp.dir/inner"), b"x").unwrap();
    for prefix in ["", "d", "d/", "d/.ldv", ".ldv"] {
        let expected: &[&str] = if "d/real".starts_with(prefix) {
            &["d/real"]
        } else {
            &[]
        };
        assert_eq!(
            list_keys(&*b, prefix).await.unwrap(),
            expected,
            "{prefix:?}"
        );
    }
    assert_kind(
        b.get("d/.ldv-tmp.xyz").await,
        ErrorKind::InvalidKey,
        "get a temp file",
    );
    // Writing next to the stray file still works, and later listings still skip it.
    b.put("d/next", data(5, 2), PutMode::CreateOnly)
        .await
        .unwrap();
    assert_eq!(list_keys(&*b, "").await.unwrap(), ["d/next", "d/real"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_objects_survive_reopening() {
    let dirs = LocalDirs::new();
    dirs.backend()
        .put("p/obj", data(1000, 1), PutMode::Overwrite)
        .await
        .unwrap();
    let reopened = dirs.backend();
    assert_eq!(reopened.get("p/obj").await.unwrap(), data(1000, 1));
    assert_eq!(list_keys(&*reopened, "").await.unwrap(), ["p/obj"]);
}

// ---------------------------------------------------------------------------------------------
// The metrics layer
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_a_known_sequence() {
    let dirs = LocalDirs::new();
    let bases: [DynBackend; 2] = [Arc::new(MemoryBackend::new()), dirs.backend()];
    for base in bases {
        let m = MetricsBackend::new(base);
        let ok = |r: ldv::Result<()>| r.expect("call that must succeed");
        ok(m.put("m/a", data(1000, 1), PutMode::Overwrite).await);
        ok(m.put("m/b", Bytes::new(), PutMode::Overwrite).await);
        assert_eq!(m.get("m/a").await.unwrap().len(), 1000);
        assert_eq!(m.get_range("m/a", 100..350).await.unwrap().len(), 250);
        assert_eq!(m.get_range("m/a", 900..2000).await.unwrap().len(), 100);
        m.head("m/a").await.unwrap();
        assert_kind(m.get("m/missing").await, ErrorKind::NotFound, "get");
        let conflict = m.put("m/a", data(500, 2), PutMode::CreateOnly).await;
        assert_kind(conflict, ErrorKind::Conflict, "create-only");
        ok(m.copy("m/a", "m/c").await);
        assert_eq!(list_keys(&m, "m/").await.unwrap().len(), 3);
        ok(m.delete("m/b").await);
        assert_kind(m.delete("m/b").await, ErrorKind::NotFound, "delete");
        assert!(m.health().await.unwrap().healthy);
        let bad = m.put("../bad", data(10, 3), PutMode::Overwrite).await;
        assert_kind(bad, ErrorKind::InvalidKey, "put");

        let s = m.snapshot();
        assert_eq!(s.total_requests, 14, "{m}: {s:?}");
        // The conflict and the invalid key failed; the two "not found" answers did not.
        assert_eq!(s.failed_requests, 2, "{m}: {s:?}");
        // Refused puts moved nothing; copies stay inside the backend.
        assert_eq!(s.bytes_uploaded, 1000, "{m}: {s:?}");
        assert_eq!(s.bytes_downloaded, 1000 + 250 + 100, "{m}: {s:?}");
        assert!(s.avg_latency_ms.is_finite() && s.avg_latency_ms >= 0.0);
    }
}

/// A listing is one request however far its consumer reads: callers stop at the first error
/// (`try_collect`) or once they have seen enough.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_every_list_request() {
    let m = MetricsBackend::new(Arc::new(MemoryBackend::new()));
    for i in 0..3 {
        m.put(&format!("l/{i}"), data(1, i), PutMode::Overwrite)
            .await
            .unwrap();
    }
    assert_kind(list_keys(&m, "../x").await, ErrorKind::InvalidKey, "list");
    let first = m.list("l/").next().await;
    assert!(matches!(first, Some(Ok(_))), "{first:?}");
    let s = m.snapshot();
    assert_eq!(
        (s.total_requests, s.failed_requests),
        (3 + 2, 1),
        "a failed and an abandoned listing: {s:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_failures_injected_below() {
    let faulty = Arc::new(FaultyBackend::new(Arc::new(MemoryBackend::new())));
    let m = MetricsBackend::new(faulty.clone());
    faulty.add(FaultRule::new(Op::Put, Fault::Transient).times(2));
    for _ in 0..2 {
        let r = m.put("k", data(100, 1), PutMode::Overwrite).await;
        assert_kind(r, ErrorKind::NetworkError, "faulted put");
    }
    m.put("k", data(100, 1), PutMode::Overwrite).await.unwrap();
    let s = m.snapshot();
    assert_eq!(
        (s.total_requests, s.failed_requests, s.bytes_uploaded),
        (3, 2, 100)
    );
}

// ---------------------------------------------------------------------------------------------
// The fault layer
// ---------------------------------------------------------------------------------------------

fn faulty_memory() -> Arc<FaultyBackend> {
    Arc::new(FaultyBackend::new(Arc::new(MemoryBackend::new())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_put_fails_once_without_effect() {
    let dirs = LocalDirs::new();
    let bases: [DynBackend; 2] = [Arc::new(MemoryBackend::new()), dirs.backend()];
    for base in bases {
        let f = FaultyBackend::new(base);
        f.add(FaultRule::new(Op::Put, Fault::Transient).times(1));
        let err = f
            .put("new", data(10, 1), PutMode::Overwrite)
            .await
            .expect_err("the first put is spoiled");
        assert_eq!(err.kind(), ErrorKind::NetworkError, "{f}");
        assert!(
            err.is_retryable(),
            "{f}: a transient fault must be retryable"
        );
        assert_kind(f.head("new").await, ErrorKind::NotFound, "spoiled put");
        f.put("new", data(10, 1), PutMode::Overwrite).await.unwrap();
        assert_eq!(f.get("new").await.unwrap(), data(10, 1));
        assert_eq!(f.injected(), 1);

        // A spoiled overwrite leaves the old object.
        f.add(FaultRule::new(Op::Put, Fault::Transient).times(1));
        let r = f.put("new", data(20, 2), PutMode::Overwrite).await;
        assert_kind(r, ErrorKind::NetworkError, "spoiled overwrite");
        assert_eq!(f.get("new").await.unwrap(), data(10, 1), "{f}");
        assert_eq!(f.injected(), 2);
        dirs.assert_clean();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flip_bit_and_short_body_spoil_reads_not_objects() {
    let f = faulty_memory();
    let value = data(64, 1);
    f.put("r/x", value.clone(), PutMode::Overwrite)
        .await
        .unwrap();
    let flipped_at = |at: usize, of: &[u8]| {
        let mut v = of.to_vec();
        v[at] ^= 0x01;
        v
    };

    f.add(FaultRule::new(Op::Get, Fault::FlipBit(3)).times(1));
    assert_eq!(f.get("r/x").await.unwrap(), flipped_at(3, &value));
    assert_eq!(f.get("r/x").await.unwrap(), value, "one read spoiled only");

    // The offset wraps around the body, and applies to ranges too.
    f.add(FaultRule::new(Op::Get, Fault::FlipBit(70)).times(1));
    assert_eq!(f.get("r/x").await.unwrap(), flipped_at(6, &value));
    f.add(FaultRule::new(Op::Get, Fault::FlipBit(0)).times(1));
    let range = f.get_range("r/x", 10..20).await.unwrap();
    assert_eq!(range, flipped_at(0, &value[10..20]));

    f.add(FaultRule::new(Op::Get, Fault::ShortBody).times(2));
    assert_eq!(f.get("r/x").await.unwrap(), value[..32]);
    assert_eq!(f.get_range("r/x", 0..10).await.unwrap(), value[..5]);

    assert_eq!(f.get("r/x").await.unwrap(), value, "the object is intact");
    assert_eq!(f.injected(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skip_and_times_select_the_calls() {
    let f = faulty_memory();
    f.put("s/x", data(10, 1), PutMode::Overwrite).await.unwrap();
    let denied = Fault::Permanent(ErrorKind::PermissionDenied);
    f.add(FaultRule::new(Op::Get, denied).skip(2).times(2));
    let mut outcomes = Vec::new();
    for _ in 0..6 {
        outcomes.push(match f.get("s/x").await {
            Ok(_) => "ok",
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::PermissionDenied);
                assert!(!e.is_retryable(), "a permanent fault is not retryable");
                "denied"
            }
        });
    }
    assert_eq!(outcomes, ["ok", "ok", "denied", "denied", "ok", "ok"]);
    assert_eq!(f.injected(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_keys_and_op_select_the_calls() {
    let f = faulty_memory();
    for key in ["hot/a", "hot/b", "cold/a", "cold/hot"] {
        f.put(key, data(10, 1), PutMode::Overwrite).await.unwrap();
    }
    f.add(FaultRule::new(Op::Get, Fault::Transient).on_keys("hot/"));
    for _ in 0..2 {
        assert_kind(f.get("hot/a").await, ErrorKind::NetworkError, "get hot/a");
    }
    let r = f.get_range("hot/b", 0..1).await;
    assert_kind(r, ErrorKind::NetworkError, "range hot/b");
    f.get("cold/a").await.expect("other keys pass");
    f.get("cold/hot").await.expect("other keys pass");
    f.head("hot/a").await.expect("other operations pass");
    assert_eq!(f.injected(), 3);

    // `Op::Any` spoils every operation; a spoiled delete has no effect.
    f.clear();
    let gone = Fault::Permanent(ErrorKind::NotFound);
    f.add(FaultRule::new(Op::Any, gone).on_keys("cold/a"));
    assert_kind(f.head("cold/a").await, ErrorKind::NotFound, "head");
    assert_kind(f.delete("cold/a").await, ErrorKind::NotFound, "delete");
    assert_kind(f.get("cold/a").await, ErrorKind::NotFound, "get");
    f.clear();
    assert_eq!(f.get("cold/a").await.unwrap(), data(10, 1), "still there");
    assert_eq!(f.injected(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_matching_rule_wins_and_clear_removes_all() {
    let f = faulty_memory();
    let value = data(10, 1);
    f.put("k", value.clone(), PutMode::Overwrite).await.unwrap();
    f.add(FaultRule::new(Op::Get, Fault::ShortBody).times(1));
    f.add(FaultRule::new(Op::Get, Fault::FlipBit(0)));
    assert_eq!(f.get("k").await.unwrap(), value[..5], "first rule");
    assert_ne!(
        f.get("k").await.unwrap(),
        value,
        "second rule, once the first is spent"
    );
    f.clear();
    assert_eq!(f.get("k").await.unwrap(), value);
    assert_eq!(f.injected(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_write_stores_flipped_data_and_reports_success() {
    let f = faulty_memory();
    let value = data(32, 1);
    f.add(FaultRule::new(Op::Put, Fault::CorruptWrite(5)).times(1));
    f.put("k", value.clone(), PutMode::Overwrite).await.unwrap();
    let mut expected = value.to_vec();
    expected[5] ^= 0x01;
    assert_eq!(f.get("k").await.unwrap(), expected);
    assert_eq!(f.injected(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulted_list_yields_the_error() {
    let f = faulty_memory();
    f.put("l/a", data(1, 1), PutMode::Overwrite).await.unwrap();
    f.add(FaultRule::new(Op::List, Fault::Transient).times(1));
    assert_kind(list_keys(&*f, "l/").await, ErrorKind::NetworkError, "list");
    assert_eq!(list_keys(&*f, "l/").await.unwrap(), ["l/a"]);
}

// ---------------------------------------------------------------------------------------------
// The chunk store reading and writing through faults
// ---------------------------------------------------------------------------------------------

/// The chunk store's input form of `data`.
fn plain(data: &[u8]) -> PlainChunk {
    PlainChunk::copy_from(data)
}

/// Both vault formats: format 1 (one object per chunk) and format 2 (packs and an index).
const FORMATS: [u32; 2] = [ldv::store::FORMAT_1, ldv::store::VAULT_FORMAT];

/// A vault of `format` on `faulty(memory)`.
async fn faulty_vault(format: u32) -> (Arc<FaultyBackend>, Vault) {
    let faulty = faulty_memory();
    let options = VaultOptions {
        format,
        ..VaultOptions::default()
    };
    let (vault, created) = Vault::init_with(faulty.clone(), ChunkerConfig::default(), &options)
        .await
        .expect("init");
    assert!(created);
    (faulty, vault)
}

/// Where a vault of `format` on `backend` keeps chunk `id`: its chunk object, or the only pack.
async fn home_of(backend: &FaultyBackend, format: u32, id: ChunkId) -> String {
    if format == ldv::store::FORMAT_1 {
        return id.key();
    }
    let packs = backend.list_all("packs/").await.expect("list packs");
    assert_eq!(packs.len(), 1, "one pack");
    packs[0].key.clone()
}

/// A vault of `format` on `faulty(memory)` holding one stored chunk, and where it is.
async fn vault_with_a_chunk(format: u32) -> (Arc<FaultyBackend>, Vault, ChunkId, Bytes, String) {
    let (faulty, vault) = faulty_vault(format).await;
    let chunk = data(10_000, 42);
    let id = ChunkId::of(&chunk);
    let written = vault
        .put_chunk(id, &plain(&chunk))
        .await
        .expect("put chunk");
    assert!(matches!(written, ChunkWrite::Uploaded(_)), "{written:?}");
    vault.flush().await.expect("flush");
    let home = home_of(&faulty, format, id).await;
    (faulty, vault, id, chunk, home)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_detects_spoiled_chunk_reads() {
    for format in FORMATS {
        let (faulty, vault, id, chunk, home) = vault_with_a_chunk(format).await;
        let size = chunk.len() as u64;
        // A format-2 reader that finds a pack gone reloads the index and tries once more: the
        // pack must be gone both times to be missing.
        let gone = if format == ldv::store::FORMAT_1 { 1 } else { 2 };
        let spoilers = [
            (Fault::FlipBit(0), 1),    // the frame's magic
            (Fault::FlipBit(5000), 1), // the payload
            (Fault::ShortBody, 1),
            (Fault::Permanent(ErrorKind::NotFound), gone), // a chunk the manifest needs is gone
        ];
        let mut injected = 0;
        for (fault, times) in spoilers {
            faulty.add(
                FaultRule::new(Op::Get, fault.clone())
                    .on_keys(home.clone())
                    .times(times),
            );
            let r = vault.get_chunk(id, size).await;
            assert_kind(
                r,
                ErrorKind::IntegrityCheckFailed,
                &format!("format {format}: {fault:?}"),
            );
            // The fault spoiled reads, not the stored chunk.
            assert_eq!(vault.get_chunk(id, size).await.unwrap(), chunk);
            injected += times;
            assert_eq!(faulty.injected(), injected);
        }
        let stats = vault.stats();
        assert_eq!(
            stats.integrity_checks_failed, 3,
            "format {format}: {stats:?}"
        );
        assert_eq!(
            stats.integrity_checks_passed, 4,
            "format {format}: {stats:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_passes_transient_read_errors_through() {
    for format in FORMATS {
        let (faulty, vault, id, chunk, _) = vault_with_a_chunk(format).await;
        faulty.add(FaultRule::new(Op::Get, Fault::Transient).times(1));
        let err = vault
            .get_chunk(id, chunk.len() as u64)
            .await
            .expect_err("spoiled read");
        // A network failure is worth retrying; it is not evidence of corruption.
        assert_eq!(err.kind(), ErrorKind::NetworkError, "{err:?}");
        assert!(err.is_retryable());
        assert_eq!(vault.stats().integrity_checks_failed, 0);
        assert_eq!(
            vault.get_chunk(id, chunk.len() as u64).await.unwrap(),
            chunk
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_retries_a_chunk_upload_that_failed() {
    let (faulty, vault, _, _, _) = vault_with_a_chunk(ldv::store::FORMAT_1).await;
    // Small chunks go up create-only at once; larger ones are looked up (HEAD) first.
    for (op, size) in [(Op::Put, 5_000), (Op::Put, 100_000), (Op::Head, 100_000)] {
        let chunk = data(size, op as u64 + size as u64);
        let id = ChunkId::of(&chunk);
        faulty.add(FaultRule::new(op, Fault::Transient).times(1));
        let r = vault.put_chunk(id, &plain(&chunk)).await;
        assert_kind(
            r,
            ErrorKind::NetworkError,
            &format!("{op:?} fault, {size} bytes"),
        );
        // The failed attempt is not remembered as stored: the next one uploads.
        let written = vault.put_chunk(id, &plain(&chunk)).await.expect("retry");
        assert!(matches!(written, ChunkWrite::Uploaded(_)), "{written:?}");
        assert_eq!(vault.get_chunk(id, size as u64).await.unwrap(), chunk);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pack_upload_that_failed_forgets_its_chunks() {
    let (faulty, vault) = faulty_vault(ldv::store::VAULT_FORMAT).await;
    for size in [5_000, 100_000] {
        let chunk = data(size, size as u64);
        let id = ChunkId::of(&chunk);
        faulty.add(
            FaultRule::new(Op::Put, Fault::Transient)
                .on_keys("packs/")
                .times(1),
        );
        vault.put_chunk(id, &plain(&chunk)).await.expect("packed");
        let err = vault.flush().await.expect_err("the pack upload fails");
        assert_eq!(err.kind(), ErrorKind::NetworkError, "{err:?}");
        // The failed pack is not remembered as stored: the next put packs the chunk again.
        let written = vault.put_chunk(id, &plain(&chunk)).await.expect("retry");
        assert!(matches!(written, ChunkWrite::Uploaded(_)), "{written:?}");
        vault.flush().await.expect("flush");
        assert_eq!(vault.get_chunk(id, size as u64).await.unwrap(), chunk);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_detects_a_silently_corrupted_write() {
    for (format, prefix) in [
        (ldv::store::FORMAT_1, "chunks/"),
        (ldv::store::VAULT_FORMAT, "packs/"),
    ] {
        let (faulty, vault) = faulty_vault(format).await;
        let chunk = data(3_000, 9);
        let id = ChunkId::of(&chunk);
        faulty.add(FaultRule::new(Op::Put, Fault::CorruptWrite(1_500)).on_keys(prefix));
        vault
            .put_chunk(id, &plain(&chunk))
            .await
            .expect("the write reports success");
        vault.flush().await.expect("the write reports success");
        let r = vault.get_chunk(id, 3_000).await;
        assert_kind(r, ErrorKind::IntegrityCheckFailed, "corrupted chunk");
        assert_eq!(vault.stats().integrity_checks_failed, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vault_init_survives_a_transient_descriptor_write() {
    let faulty = faulty_memory();
    faulty.add(FaultRule::new(Op::Put, Fault::Transient).times(1));
    let err = Vault::init(faulty.clone(), ChunkerConfig::default())
        .await
        .expect_err("spoiled descriptor write");
    assert_eq!(err.kind(), ErrorKind::NetworkError);
    let (vault, created) = Vault::init(faulty.clone(), ChunkerConfig::default())
        .await
        .expect("second init");
    assert!(created, "the failed init left no descriptor behind");
    let reopened = Vault::open(faulty).await.expect("open");
    assert_eq!(reopened.descriptor(), vault.descriptor());
}
