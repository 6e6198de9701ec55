//! `verify` and `gc` at library level, over a fault-injecting backend: a chunk whose first read
//! fails (transiently, short, or with a flipped bit) but reads back clean on a retry is not
//! damage; a chunk that never reads back right is; one that cannot be read at all is "could not
//! check", never damage. And gc's execution keeps a planned chunk that a version committed after
//! the plan references.

mod common;

use std::collections::BTreeSet;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{assert_bytes, data};
use ldv::backend::layer::{Fault, FaultRule, FaultyBackend, Op};
use ldv::backend::memory::MemoryBackend;
use ldv::backend::{BackendExt, DynBackend};
use ldv::ops::gc;
use ldv::ops::put::{PutOptions, PutReceipt, put_reader};
use ldv::ops::verify::{ProblemKind, ReadData, VerifyReport, verify};
use ldv::report::{NoReporter, Reporter};
use ldv::store::Vault;
use ldv::store::chunker::ChunkerConfig;
use ldv::store::layout::{ChunkId, ObjectRef};

/// Small content-defined chunks, so that a few hundred KiB span several chunks.
const CHUNKER: ChunkerConfig = ChunkerConfig::Cdc {
    min: 16 * 1024,
    avg: 64 * 1024,
    max: 256 * 1024,
};

/// Chunks read at once: enough that the retry pauses of many chunks overlap.
const PARALLEL: usize = 32;

/// Makes the fault for the `i`th chunk.
type Spoiler = fn(usize) -> Fault;

fn reporter() -> Arc<dyn Reporter> {
    Arc::new(NoReporter)
}

fn options() -> PutOptions {
    PutOptions {
        parallel: 4,
        chunker: CHUNKER,
        content_type: None,
        metadata: Default::default(),
    }
}

/// A format-1 vault on `faulty(memory)`: these tests aim faults at chunk objects and run the
/// format-1 gc (format 2's faults and gc are covered in `tests/conformance.rs`,
/// `src/store/collect.rs` and `tests/cli/format2.rs`).
async fn faulty_vault() -> (Arc<FaultyBackend>, Arc<Vault>) {
    let faulty = Arc::new(FaultyBackend::new(Arc::new(MemoryBackend::new())));
    let backend: DynBackend = faulty.clone();
    let options = ldv::store::VaultOptions {
        format: ldv::store::FORMAT_1,
        ..ldv::store::VaultOptions::default()
    };
    let (vault, created) = Vault::init_with(backend, CHUNKER, &options).await.unwrap();
    assert!(created);
    (faulty, Arc::new(vault))
}

async fn put(vault: &Arc<Vault>, name: &str, content: &Bytes) -> PutReceipt {
    put_reader(
        vault,
        name,
        name,
        Box::new(Cursor::new(content.to_vec())),
        Some(content.len() as u64),
        &options(),
        &reporter(),
    )
    .await
    .unwrap()
}

/// The chunk ids of `name@version`, in order.
async fn chunks_of(vault: &Vault, receipt: &PutReceipt) -> Vec<ChunkId> {
    vault
        .manifest(&receipt.name, &receipt.version)
        .await
        .unwrap()
        .chunks
        .iter()
        .map(|c| c.id)
        .collect()
}

/// Three objects of several chunks each; returns every distinct chunk id and the version labels.
async fn stored_objects(vault: &Arc<Vault>) -> (BTreeSet<ChunkId>, Vec<String>) {
    let mut ids = BTreeSet::new();
    let mut labels = Vec::new();
    for (i, len) in [700_000usize, 450_000, 300_000].into_iter().enumerate() {
        let r = put(vault, &format!("obj/{i}"), &data(len, 40 + i as u64)).await;
        ids.extend(chunks_of(vault, &r).await);
        labels.push(format!("{}@{}", r.name, r.version));
    }
    assert!(ids.len() >= 9, "expected several chunks, got {}", ids.len());
    (ids, labels)
}

async fn verify_all(vault: &Arc<Vault>) -> VerifyReport {
    verify(vault, &[], ReadData::All, PARALLEL, &reporter())
        .await
        .unwrap()
}

/// Asserts a verify report found nothing wrong and could check everything.
#[track_caller]
fn assert_clean(report: &VerifyReport, chunks: usize, what: &str) {
    assert!(report.problems.is_empty(), "{what}: {:?}", report.problems);
    assert!(
        report.could_not_check.is_empty(),
        "{what}: {:?}",
        report.could_not_check
    );
    assert_eq!(report.chunks_referenced, chunks as u64, "{what}");
    assert_eq!(report.chunks_read, chunks as u64, "{what}");
    assert!(!report.damaged() && !report.incomplete(), "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_read_that_fails_and_a_clean_retry_is_not_damage() {
    let (faulty, vault) = faulty_vault().await;
    let (ids, _) = stored_objects(&vault).await;
    assert_clean(&verify_all(&vault).await, ids.len(), "no faults");
    assert_eq!(faulty.injected(), 0);

    let spoilers: [(&str, Spoiler); 4] = [
        ("transient", |_| Fault::Transient),
        ("short body", |_| Fault::ShortBody),
        // Somewhere in the payload, and in the frame header.
        ("flipped payload bit", |i| {
            Fault::FlipBit(7 + 1000 * (i + 1))
        }),
        ("flipped header bit", |i| Fault::FlipBit(i % 7)),
    ];
    for (what, fault) in spoilers {
        faulty.clear();
        let before = faulty.injected();
        for (i, id) in ids.iter().enumerate() {
            faulty.add(FaultRule::new(Op::Get, fault(i)).on_keys(id.key()).times(1));
        }
        let report = verify_all(&vault).await;
        assert_clean(&report, ids.len(), what);
        // Every chunk's first read was spoiled: the retries are what came back clean.
        assert_eq!(
            faulty.injected() - before,
            ids.len() as u64,
            "{what}: every rule fires once"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_that_always_reads_short_is_corrupt() {
    let (faulty, vault) = faulty_vault().await;
    let (ids, _) = stored_objects(&vault).await;
    let r = put(&vault, "victim", &data(400_000, 50)).await;
    let victim = chunks_of(&vault, &r).await[1];
    let label = format!("victim@{}", r.version);
    let total = ids.len() + chunks_of(&vault, &r).await.len();

    for (what, fault) in [
        ("short body", Fault::ShortBody),
        ("flipped bit", Fault::FlipBit(5000)),
    ] {
        faulty.clear();
        faulty.add(FaultRule::new(Op::Get, fault).on_keys(victim.key()));
        let report = verify_all(&vault).await;
        assert_eq!(report.problems.len(), 1, "{what}: {:?}", report.problems);
        let p = &report.problems[0];
        assert_eq!(p.kind, ProblemKind::CorruptChunk, "{what}: {p:?}");
        assert_eq!(p.chunk.as_deref(), Some(victim.to_hex().as_str()), "{what}");
        assert_eq!(p.versions, std::slice::from_ref(&label), "{what}");
        assert!(report.could_not_check.is_empty(), "{what}: {report:?}");
        assert_eq!(report.chunks_referenced, total as u64);
        assert_eq!(report.chunks_present, total as u64, "{what}: it is there");
        assert_eq!(report.chunks_read, total as u64, "{what}");
        assert_eq!(report.problems_by_kind.get("corrupt_chunk"), Some(&1));
        assert!(report.damaged());
    }

    // Only the selected versions are judged.
    let refs = [ObjectRef::parse("obj/0").unwrap()];
    let report = verify(&vault, &refs, ReadData::All, PARALLEL, &reporter())
        .await
        .unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.orphan_chunks, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_that_cannot_be_read_is_not_checked_rather_than_damaged() {
    let (faulty, vault) = faulty_vault().await;
    let (ids, _) = stored_objects(&vault).await;
    let unreadable = *ids.iter().nth(ids.len() / 2).unwrap();
    faulty.add(FaultRule::new(Op::Get, Fault::Transient).on_keys(unreadable.key()));

    let report = verify_all(&vault).await;
    assert!(
        report.problems.is_empty(),
        "a read error is not damage: {:?}",
        report.problems
    );
    assert_eq!(report.could_not_check.len(), 1, "{report:?}");
    assert!(
        report.could_not_check[0].contains(&unreadable.to_hex()),
        "{:?}",
        report.could_not_check
    );
    assert_eq!(report.chunks_present, ids.len() as u64);
    assert_eq!(report.chunks_read, ids.len() as u64 - 1);
    assert!(report.incomplete() && !report.damaged());
    assert!(faulty.injected() >= 2, "the read was retried");

    // A permanent denial is not damage either.
    faulty.clear();
    let denied = Fault::Permanent(ldv::ErrorKind::PermissionDenied);
    faulty.add(FaultRule::new(Op::Get, denied).on_keys(unreadable.key()));
    let report = verify_all(&vault).await;
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.could_not_check.len(), 1, "{report:?}");

    // A read that came back damaged, then reads that failed: not proof of damage either (the
    // bad bytes may have been the network's), so it is reported as not checked.
    faulty.clear();
    faulty.add(
        FaultRule::new(Op::Get, Fault::FlipBit(100))
            .on_keys(unreadable.key())
            .times(1),
    );
    faulty.add(FaultRule::new(Op::Get, Fault::Transient).on_keys(unreadable.key()));
    let report = verify_all(&vault).await;
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.could_not_check.len(), 1, "{report:?}");
    assert!(report.could_not_check[0].contains(&unreadable.to_hex()));

    // Once the backend answers again, everything checks out.
    faulty.clear();
    assert_clean(&verify_all(&vault).await, ids.len(), "after the outage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_keeps_a_planned_chunk_that_a_new_version_references() {
    // Format 1's gc (format 2's rescue is `a_pack_a_late_put_reuses_is_rescued_not_swept`).
    let backend: DynBackend = Arc::new(MemoryBackend::new());
    let options = ldv::store::VaultOptions {
        format: ldv::store::FORMAT_1,
        ..ldv::store::VaultOptions::default()
    };
    let (vault, _) = Vault::init_with(Arc::clone(&backend), CHUNKER, &options)
        .await
        .unwrap();
    let vault = Arc::new(vault);
    let keep = data(500_000, 60);
    let revived = data(400_000, 61);
    let dropped = data(300_000, 62);
    let r_keep = put(&vault, "keep", &keep).await;
    let r_revived = put(&vault, "revived", &revived).await;
    let r_dropped = put(&vault, "dropped", &dropped).await;
    let keep_ids = chunks_of(&vault, &r_keep).await;
    let revived_ids = chunks_of(&vault, &r_revived).await;
    let dropped_ids = chunks_of(&vault, &r_dropped).await;
    assert!(revived_ids.len() >= 3 && dropped_ids.len() >= 3);
    vault
        .remove_version(&r_revived.name, &r_revived.version)
        .await
        .unwrap();
    vault
        .remove_version(&r_dropped.name, &r_dropped.version)
        .await
        .unwrap();

    let plan = gc::plan(&vault, Duration::ZERO, 4).await.unwrap();
    assert_eq!(
        plan.deletable_chunks,
        (revived_ids.len() + dropped_ids.len()) as u64,
        "{plan:?}"
    );
    assert_eq!(plan.referenced_chunks, keep_ids.len() as u64, "{plan:?}");

    // Another writer (its own vault handle, as another process would have) stores the revived
    // content again between plan and execute: every chunk is found, nothing is uploaded.
    let other = Arc::new(Vault::open(Arc::clone(&backend)).await.unwrap());
    let again = put(&other, "revived-again", &revived).await;
    assert_eq!(again.new_chunks, 0, "{again:?}");
    assert_eq!(chunks_of(&vault, &again).await, revived_ids);

    let report = gc::execute(&vault, plan, 4, &reporter()).await.unwrap();
    assert!(report.kept_now_referenced >= 1, "{report:?}");
    assert_eq!(report.kept_now_referenced, revived_ids.len() as u64);
    assert_eq!(
        report.deleted_chunks,
        dropped_ids.len() as u64,
        "{report:?}"
    );
    for id in &dropped_ids {
        assert!(!backend.exists(&id.key()).await.unwrap(), "{id} kept");
    }
    for id in revived_ids.iter().chain(&keep_ids) {
        assert!(backend.exists(&id.key()).await.unwrap(), "{id} deleted");
    }

    // The new version and the untouched one read back, verified, through a fresh handle.
    let reader = Arc::new(Vault::open(Arc::clone(&backend)).await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [("revived-again", &revived), ("keep", &keep)] {
        let m = reader
            .resolve(&ObjectRef::parse(name).unwrap())
            .await
            .unwrap();
        let dest = dir.path().join(name);
        ldv::ops::get::get_to_path(&reader, &m, &dest, 4, &reporter())
            .await
            .unwrap();
        assert_bytes(&std::fs::read(&dest).unwrap(), content, name);
    }
    let v = verify(&reader, &[], ReadData::All, PARALLEL, &reporter())
        .await
        .unwrap();
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert_eq!(v.orphan_chunks, Some(0));
}
