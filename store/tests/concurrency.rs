//! The single-writer lock and concurrent readers, across processes and threads: while a
//! child process (this test binary re-executed with `AOS_TEST_CHILD_DIR`) holds
//! `World::open(.., Access::Write)` and appends, a second writer is refused with
//! `Error::Locked` naming the child's pid, readers opened meanwhile always see a prefix
//! of the chain that verifies, and the lock is free once the child exits (cleanly or by
//! `kill -9`). Two threads of one process can never both hold the write lock.

mod common;

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use aos_store::hash::Hash;
use aos_store::world::{Access, World};
use aos_store::Error;
use common::*;

const WRITER_CHILD: &str = "child_world_writer";
const T: Duration = Duration::from_secs(15);

/// Child: hold the world `$AOS_TEST_CHILD_DIR` open for writing and append batches of
/// 1..=16 records, pausing ~0.3 ms between them, until stdin is closed; then exit
/// normally.
#[test]
fn child_world_writer() {
    let Some(root) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let seed = std::env::var(CHILD_SEED)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let mut rng = Rng::new(seed);
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        stop2.store(true, Ordering::SeqCst);
    });
    let mut w =
        World::open(Path::new(&root), Access::Write).expect("child: open world for writing");
    say(&format!("ready {}", w.journal.len()));
    while !stop.load(Ordering::SeqCst) {
        let n = rng.range(1, 16);
        let heads = w
            .journal
            .append(&records(w.journal.len(), n))
            .expect("child: append");
        say(&format!("acked {}", heads.last().expect("non-empty").seq));
        std::thread::sleep(Duration::from_micros(300));
    }
    say("done");
}

fn spawn_writer(root: &Path, seed: u64) -> ChildRun {
    let mut c = ChildRun::spawn(
        WRITER_CHILD,
        &[
            (CHILD_DIR, root.display().to_string()),
            (CHILD_SEED, seed.to_string()),
        ],
    );
    if c.next_marked("ready ", T).is_none() {
        panic!("child exited before opening the world: {}", c.take_stderr());
    }
    c
}

/// `World::open(root, Write)` must fail with `Locked` naming `pid`.
fn assert_locked_by(root: &Path, pid: u32) {
    match World::open(root, Access::Write) {
        Err(e @ Error::Locked { .. }) => {
            let Error::Locked { path, holder } = &e else {
                unreachable!()
            };
            assert_eq!(path, root, "the error names the world");
            let tag = format!("pid {pid} (");
            assert!(
                holder.starts_with(&tag),
                "holder {holder:?} does not name pid {pid}"
            );
            let msg = e.to_string();
            assert!(
                msg.contains(&tag) && msg.contains(&root.display().to_string()),
                "message: {msg}"
            );
            assert!(!e.is_user_error());
        }
        Err(e) => panic!("expected Error::Locked naming pid {pid}, got {e:?}"),
        Ok(_) => panic!("a second writer opened the world while pid {pid} holds it"),
    }
}

/// One reader thread: open the world read-only again and again while the child appends.
/// Each open must succeed and see a prefix that extends the previous one (same hash at
/// the old head) and chains to its end. Returns the distinct lengths seen.
fn reader_loop(root: &Path, who: usize, until: Instant) -> Result<Vec<u64>, String> {
    let (mut seen_len, mut seen_head): (u64, Option<Hash>) = (0, None);
    let mut lengths = Vec::new();
    let mut opens = 0u32;
    while Instant::now() < until {
        let r = World::open(root, Access::Read).map_err(|e| {
            format!("reader {who}, open #{opens} (prefix {seen_len} seen before): {e:?}\n{e}")
        })?;
        assert!(!r.is_writer());
        let j = &r.journal;
        assert!(
            j.len() >= seen_len,
            "reader {who} sees {} records, it saw {seen_len} before",
            j.len()
        );
        if let Some(h) = seen_head {
            assert_eq!(
                j.read(seen_len - 1).unwrap().1,
                h,
                "reader {who}: record {} changed",
                seen_len - 1
            );
        }
        let from = seen_len.saturating_sub(1);
        verify_chain_from(j, from);
        for item in j.iter_from(from.max(1)).unwrap() {
            let (rec, _) = item.unwrap();
            assert!(
                rec.body == body(rec.seq),
                "reader {who}: seq {} has a body never appended",
                rec.seq
            );
        }
        (seen_len, seen_head) = (j.len(), j.head().map(|h| h.hash));
        if lengths.last() != Some(&seen_len) {
            lengths.push(seen_len);
        }
        opens += 1;
    }
    Ok(lengths)
}

#[test]
fn second_writer_is_refused_and_readers_see_a_verified_prefix() {
    // On tmpfs an append takes microseconds, so many land while readers are opening.
    let m = Mount::tmpfs(512 << 20);
    let root = m.path.join("w");
    drop(world_with_records(&root, 3));
    let mut child = spawn_writer(&root, seed(0xc0c0_0001));
    let pid = child.pid();
    assert_locked_by(&root, pid);

    // Six reader threads (more than the two cores CI has, so readers get preempted in
    // the middle of opening while the writer appends) for 2 s.
    let until = Instant::now() + Duration::from_millis(2000);
    let results: Vec<Result<Vec<u64>, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|who| {
                s.spawn({
                    let root = &root;
                    move || reader_loop(root, who, until)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("reader thread panicked"))
            .collect()
    });
    assert_locked_by(&root, pid);

    // Stop the child cleanly; every acked record is there and the lock is free.
    child.close_stdin();
    let lines = child.drain();
    let status = child.child.wait().unwrap();
    assert!(
        status.success(),
        "child failed: {status}\n{}",
        child.take_stderr()
    );
    assert!(
        lines.iter().any(|l| l.contains("done")),
        "child did not finish: {lines:?}"
    );
    let acked = acked_seqs(&lines)
        .into_iter()
        .max()
        .expect("the child acked something");
    let mut w = World::open(&root, Access::Write).expect("the lock is free after the writer exits");
    assert!(w.journal.len() > acked);
    assert_record(&w.journal, acked);
    verify_chain(&w.journal);
    w.journal.append(&records(w.journal.len(), 1)).unwrap();
    drop(w);
    assert_no_errors(&root, &fsck_all(&root));

    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "readers opened during appends were refused:\n{}",
        failures
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let distinct: usize = results.iter().map(|r| r.as_ref().map_or(0, Vec::len)).sum();
    assert!(distinct > 4, "the readers never overlapped an append");
    eprintln!("readers saw {distinct} distinct lengths; child acked up to seq {acked}");
}

#[test]
fn lock_is_released_when_the_holder_is_killed() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("w");
    drop(world_with_records(&root, 1));
    let mut child = spawn_writer(&root, 11);
    assert_locked_by(&root, child.pid());
    child.next_marked("acked ", T).expect("child appends");
    child.kill9();
    let w = World::open(&root, Access::Write).expect("the lock of a killed writer is free at once");
    assert!(w.is_writer());
}

#[test]
fn two_threads_cannot_both_hold_the_write_lock() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("w");
    drop(world_with_records(&root, 1));
    let me = std::process::id();

    // Sequential: a held lock refuses a second open in the same process, naming this pid.
    let first = World::open(&root, Access::Write).unwrap();
    std::thread::scope(|s| {
        s.spawn(|| assert_locked_by(&root, me)).join().unwrap();
    });
    assert_locked_by(&root, me);
    drop(first);
    drop(World::open(&root, Access::Write).expect("free again after drop"));

    // Racing: two threads open at the same instant, round after round; exactly one wins
    // and it can append while the loser is refused.
    let rounds = 40;
    let barrier = Barrier::new(2);
    let winners: Vec<AtomicUsize> = (0..rounds).map(|_| AtomicUsize::new(0)).collect();
    let unexpected = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                // No assertion in here: a panicking thread would leave the other one
                // waiting at the barrier forever. Outcomes are checked afterwards.
                for (round, won) in winners.iter().enumerate() {
                    barrier.wait();
                    let got = World::open(&root, Access::Write);
                    match &got {
                        Ok(_) => {
                            won.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(Error::Locked { holder, .. })
                            if holder.starts_with(&format!("pid {me} ("))
                                || holder.contains("not written its pid yet") => {}
                        Err(e) => unexpected
                            .lock()
                            .unwrap()
                            .push(format!("round {round}: {e:?}")),
                    }
                    barrier.wait(); // both attempts are done while the winner still holds it
                    if let Ok(mut w) = got {
                        let n = w.journal.len();
                        if let Err(e) = w.journal.append(&records(n, 1)) {
                            unexpected
                                .lock()
                                .unwrap()
                                .push(format!("round {round}: append: {e:?}"));
                        }
                    }
                    barrier.wait(); // the winner has dropped its handle
                }
            });
        }
    });
    let unexpected = unexpected.into_inner().unwrap();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    let per_round: Vec<usize> = winners.iter().map(|w| w.load(Ordering::SeqCst)).collect();
    assert!(
        per_round.iter().all(|&n| n == 1),
        "writers per round (must all be 1): {per_round:?}"
    );
    let w = World::open(&root, Access::Read).unwrap();
    assert_eq!(w.journal.len(), 2 + rounds as u64, "one append per round");
    verify_chain(&w.journal);
}
