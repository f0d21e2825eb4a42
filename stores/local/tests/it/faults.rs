//! SQLite locked by another process: a second process (this test binary, run
//! again) holds `BEGIN EXCLUSIVE` on the data directory's databases for 10 s
//! while writers go through the whole execute path (registry, quota, guest
//! storage, execution record) of `up`'s backend set. In WAL mode readers are not
//! blocked. A quota charge (before the guest) that waits on the lock is bounded by
//! the request's time limit (5 s) and answers 503 `backend_unavailable`, rather than
//! waiting out SQLite's 30 s busy timeout; a guest whose storage call waits ends at
//! its deadline with a typed `timeout` (its write may land after the release: it was
//! never acknowledged).
//! Nothing hangs, the database stays intact, the first request after the release
//! works, and every acknowledged write reads back.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::{Duration, Instant};

use test_support::writer::{NAMESPACE, install_writer};

/// How long the other process holds the lock (the figure).
const HOLD: Duration = Duration::from_secs(10);
/// The requests' time limit (the default, 5 s) and a generous margin: a hang bound
/// on any single request, below SQLite's 30 s busy timeout so that a request waiting
/// that out fails the test.
const ANSWER_WITHIN: Duration = Duration::from_secs(5 + 20);

/// Set in the re-executed process: the databases it locks, `:`-separated.
const HOLDER: &str = "ALGA_TEST_SQLITE_LOCK_HOLDER";
/// What the holder prints once it holds every lock (on a line of its own).
const LOCKED_MARK: &str = "sqlite-locks-held";
const TEST: &str = "faults::sqlite_locked_by_another_process_waits_or_is_typed_and_loses_nothing";

/// In the holder process: `BEGIN EXCLUSIVE` on each database, say so, hold, commit.
fn hold_locks(dbs: &str) {
    let conns: Vec<rusqlite::Connection> = dbs
        .split(':')
        .map(|db| {
            let c = rusqlite::Connection::open(db).expect("open the database");
            c.execute_batch("BEGIN EXCLUSIVE").expect("BEGIN EXCLUSIVE");
            c
        })
        .collect();
    println!("\n{LOCKED_MARK}");
    std::thread::sleep(HOLD);
    for c in conns {
        c.execute_batch("COMMIT").expect("COMMIT");
    }
}

/// Starts the holder and returns once it holds every lock.
fn lock_from_another_process(dbs: &[std::path::PathBuf]) -> Child {
    let joined = dbs
        .iter()
        .map(|p| p.to_str().expect("a UTF-8 path"))
        .collect::<Vec<_>>()
        .join(":");
    let mut child = Command::new(std::env::current_exe().expect("the test binary"))
        .args([TEST, "--exact", "--test-threads=1", "--nocapture"])
        .env(HOLDER, joined)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the lock holder");
    let mut lines = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    loop {
        match lines.next() {
            Some(Ok(line)) if line == LOCKED_MARK => break,
            Some(Ok(_)) => continue,
            other => panic!("the lock holder ended before locking: {other:?}"),
        }
    }
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    child
}

const BEFORE: u8 = 0;
const LOCKED: u8 = 1;
const AFTER: u8 = 2;

/// Whether an attempt was under way at some point while the lock was held (the
/// phase moves to LOCKED only once the holder has it, so one blocked by the lock
/// may have started BEFORE).
fn overlaps_lock(a: &Attempt) -> bool {
    a.phases != (BEFORE, BEFORE) && a.phases != (AFTER, AFTER)
}

#[derive(Debug)]
struct Attempt {
    key: String,
    phases: (u8, u8),
    took: Duration,
    result: Result<(), String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_locked_by_another_process_waits_or_is_typed_and_loses_nothing() {
    if let Ok(dbs) = std::env::var(HOLDER) {
        hold_locks(&dbs);
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let b = stores_local::backends(data.path()).unwrap();
    let writer = Arc::new(install_writer(&b).await);

    let phase = Arc::new(AtomicU8::new(BEFORE));
    let done = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for w in 0..3 {
        let (writer, phase, done) = (writer.clone(), phase.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut attempts = Vec::new();
            for n in 0.. {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                let key = format!("w{w}-{n}");
                let start = phase.load(Ordering::SeqCst);
                let t = Instant::now();
                // Writer 2 has no quota to take first: its guest runs at once and
                // its storage call is what waits on the lock.
                let result = if w == 2 {
                    writer.write_unmetered(&key).await
                } else {
                    writer.write(&key).await
                };
                attempts.push(Attempt {
                    key,
                    phases: (start, phase.load(Ordering::SeqCst)),
                    took: t.elapsed(),
                    result,
                });
                // Paced: unpaced, SQLite takes thousands a second and the writers
                // would reach the namespace's key limit (5,120) in the run.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            attempts
        }));
    }

    tokio::time::sleep(Duration::from_millis(500)).await;
    let dbs = [
        data.path().join("state.db"),
        data.path().join("registry.db"),
    ];
    let mut holder = tokio::task::block_in_place(|| lock_from_another_process(&dbs));
    phase.store(LOCKED, Ordering::SeqCst);
    // Readers are not blocked by a writer's lock in WAL mode.
    let first = "w0-0";
    let read = b.kv.get(&writer.scope, NAMESPACE, first).await;
    assert!(read.is_ok(), "a read while locked: {read:?}");
    let status = tokio::task::block_in_place(|| holder.wait()).unwrap();
    assert!(status.success(), "the lock holder: {status}");
    phase.store(AFTER, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(2)).await;
    done.store(true, Ordering::SeqCst);
    let mut all = Vec::new();
    for t in tasks {
        all.push(t.await.expect("a writer panicked"));
    }

    for (w, attempts) in all.iter().enumerate() {
        let count = |p: (u8, u8), ok: bool| {
            attempts
                .iter()
                .filter(|a| a.phases == p && a.result.is_ok() == ok)
                .count()
        };
        let overlapping: Vec<_> = attempts.iter().filter(|a| overlaps_lock(a)).collect();
        assert!(
            count((BEFORE, BEFORE), true) > 0,
            "writer {w}: {overlapping:?}"
        );
        assert!(
            count((AFTER, AFTER), true) > 0,
            "writer {w} never recovered: {overlapping:?}"
        );
        assert!(
            !overlapping.is_empty(),
            "writer {w} made no attempt while locked"
        );
        for a in attempts {
            assert!(a.took < ANSWER_WITHIN, "writer {w}: {a:?}");
            // A failure is typed: the guest's deadline passing while its storage
            // call waits (504), or a busy timeout given up on (503); nothing else.
            if let Err(e) = &a.result {
                assert!(
                    a.phases.0 != AFTER || a.phases.1 != AFTER,
                    "writer {w} failed after the release: {a:?}"
                );
                assert!(
                    e.starts_with("504 Some(\"timeout")
                        || e.starts_with("503 Some(\"backend_unavailable"),
                    "writer {w}: {a:?}"
                );
            }
        }
    }
    // Every acknowledged write is there.
    let mut acked = 0;
    for a in all.iter().flatten().filter(|a| a.result.is_ok()) {
        let entry = b.kv.get(&writer.scope, NAMESPACE, &a.key).await.unwrap();
        assert_eq!(
            entry.map(|e| e.value),
            Some(a.key.as_bytes().to_vec()),
            "acknowledged {a:?} is lost"
        );
        acked += 1;
    }
    // And neither database is damaged.
    for db in &dbs {
        let c = rusqlite::Connection::open(db).unwrap();
        let check: String = c
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "{}", db.display());
    }
    // The unmetered writer's guest was caught by the lock inside its storage call
    // and ended at its deadline, typed, rather than waiting for the release.
    assert!(
        all[2].iter().any(|a| overlaps_lock(a)
            && a.result
                .as_ref()
                .is_err_and(|e| e.starts_with("504 Some(\"timeout"))),
        "{:?}",
        all[2]
            .iter()
            .filter(|a| overlaps_lock(a))
            .collect::<Vec<_>>()
    );
    // The metered writers' quota charges caught by the lock were given up on at the
    // request's time limit, typed, rather than waiting for the release.
    let metered_overlapping: Vec<_> = all[..2]
        .iter()
        .flatten()
        .filter(|a| overlaps_lock(a))
        .collect();
    assert!(
        metered_overlapping.iter().any(|a| a
            .result
            .as_ref()
            .is_err_and(|e| e.starts_with("503 Some(\"backend_unavailable"))),
        "{metered_overlapping:?}"
    );
    let during: Vec<_> = all
        .iter()
        .flatten()
        .filter(|a| overlaps_lock(a))
        .map(|a| (a.took.as_millis(), a.result.is_ok()))
        .collect();
    eprintln!(
        "sqlite locked {HOLD:?}: {acked} acknowledged writes read back; attempts started \
         while locked (ms, acknowledged): {during:?}"
    );
}
