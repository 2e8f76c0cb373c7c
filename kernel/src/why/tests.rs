use aos_store::journal::{NewRecord, Options};
use serde_json::json;

use super::*;

fn rec(kind: &str, cause: Vec<u64>, body: Value) -> NewRecord {
    NewRecord {
        at_ns: 1_700_000_000_000_000_000,
        kind: kind.into(),
        cause,
        body,
    }
}

const INTENT: &str = "blake3:1111111111111111111111111111111111111111111111111111111111111111";

/// 0 world_created; 1 injected event; 2 step; 3 intent; 4 decision; 5 receipt (of 3);
/// 6 proposed id 1; 7 approved id 1; 8 applied id 1; 9 step of cell "a" caused by 1 and 8.
fn sample(dir: &Path) -> Journal {
    let mut j = Journal::create(&dir.join("journal")).expect("create");
    let who = json!({"who": "ann", "via": "cli"});
    j.append(&[
        rec(WORLD_CREATED, vec![], json!({"origin": who})),
        rec(
            DOMAIN_EVENT,
            vec![],
            json!({"schema": "d/E@1", "value": 1, "origin": who}),
        ),
        rec(
            REDUCER_STEPPED,
            vec![1],
            json!({"reducer": "d/R@1", "state": INTENT}),
        ),
        rec(
            EFFECT_INTENT,
            vec![2],
            json!({"kind": "timer.set", "intent_hash": INTENT}),
        ),
        rec(POLICY_DECISION, vec![3], json!({"allowed": true})),
        rec(
            EFFECT_RECEIPT,
            vec![3],
            json!({"receipt": {"status": "ok"}}),
        ),
        rec("proposed", vec![], json!({"id": 1, "origin": who})),
        rec("approved", vec![], json!({"id": 1, "origin": who})),
        rec("applied", vec![], json!({"id": 1, "origin": who})),
        rec(
            REDUCER_STEPPED,
            vec![1, 8],
            json!({"reducer": "d/K@1", "key": "a"}),
        ),
    ])
    .expect("append");
    j
}

fn reopen(dir: &Path) -> Journal {
    Journal::open(&dir.join("journal"), &Options::default()).expect("open")
}

#[test]
fn targets_parse_as_seq_hash_or_reducer_cell() {
    assert_eq!(Target::parse("12"), Target::Seq(12));
    assert!(matches!(Target::parse(INTENT), Target::Intent(_)));
    assert!(matches!(Target::parse(&INTENT[7..]), Target::Intent(_)));
    assert_eq!(
        Target::parse("demo/CounterSM@1"),
        Target::Reducer {
            name: "demo/CounterSM@1".into(),
            key: None
        }
    );
    assert_eq!(
        Target::parse("notes/Notebook@1/\"n1\""),
        Target::Reducer {
            name: "notes/Notebook@1".into(),
            key: Some(json!("n1"))
        }
    );
    assert_eq!(
        Target::parse("notes/Notebook@1/n1"),
        Target::Reducer {
            name: "notes/Notebook@1".into(),
            key: Some(json!("n1"))
        }
    );
    assert_eq!(
        Target::parse("d/K@1/7"),
        Target::Reducer {
            name: "d/K@1".into(),
            key: Some(json!(7))
        }
    );
}

#[test]
fn back_reaches_roots_and_applied_brings_its_approvals() {
    let d = tempfile::tempdir().expect("tempdir");
    let j = sample(d.path());
    let ix = open_index(&d.path().join("why"), &j).expect("index");
    let g = back(&j, &ix, 5, u64::MAX).expect("back");
    assert_eq!(
        g.nodes.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3, 5]
    );
    assert_eq!(g.roots(), vec![1]);
    assert!(
        g.nodes[&1].summary.contains("by ann via cli"),
        "{}",
        g.nodes[&1].summary
    );
    let g = back(&j, &ix, 9, u64::MAX).expect("back");
    assert_eq!(g.roots(), vec![1, 6, 7, 8]);
    assert_eq!(g.next(8), vec![6, 7]);
    assert_eq!(g.next(9), vec![1, 8]);
    let g = back(&j, &ix, 5, 1).expect("depth 1");
    assert_eq!(g.nodes.keys().copied().collect::<Vec<_>>(), vec![3, 5]);
    assert!(g.nodes[&3].cut && !g.nodes[&5].cut);
}

#[test]
fn forward_finds_consequences_in_one_pass_and_respects_depth() {
    let d = tempfile::tempdir().expect("tempdir");
    let j = sample(d.path());
    let ix = open_index(&d.path().join("why"), &j).expect("index");
    let g = forward(&j, &ix, 1, u64::MAX).expect("forward");
    assert_eq!(
        g.nodes.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 9]
    );
    assert_eq!(g.nodes[&4].depth, 3);
    assert_eq!(g.next(3), vec![4, 5]);
    let g = forward(&j, &ix, 1, 2).expect("forward");
    assert_eq!(
        g.nodes.keys().copied().collect::<Vec<_>>(),
        vec![1, 2, 3, 9]
    );
    assert!(g.nodes[&3].cut && !g.nodes[&9].cut);
}

#[test]
fn targets_resolve_through_the_index_and_unknown_ones_say_what_to_try() {
    let d = tempfile::tempdir().expect("tempdir");
    let j = sample(d.path());
    let ix = open_index(&d.path().join("why"), &j).expect("index");
    assert_eq!(resolve(&j, &ix, &Target::parse(INTENT)).expect("intent"), 3);
    assert_eq!(
        resolve(&j, &ix, &Target::parse("d/R@1")).expect("reducer"),
        2
    );
    assert_eq!(
        resolve(&j, &ix, &Target::parse("d/K@1/a")).expect("cell"),
        9
    );
    for bad in ["10", "d/K@1/b", "x/Y@1", &INTENT.replace('1', "2")] {
        match resolve(&j, &ix, &Target::parse(bad)) {
            Err(WhyError::NotFound(msg)) => assert!(msg.contains("aos log"), "{msg}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}

#[test]
fn the_index_extends_and_a_forged_one_is_rebuilt() {
    let d = tempfile::tempdir().expect("tempdir");
    let dir = d.path().join("why");
    let mut j = sample(d.path());
    assert!(open_index(&dir, &j).expect("index").rebuilt);
    j.append(&[rec(REDUCER_STEPPED, vec![1], json!({"reducer": "d/R@1"}))])
        .expect("append");
    drop(j);
    let j = reopen(d.path());
    let ix = open_index(&dir, &j).expect("extended");
    assert!(!ix.rebuilt);
    assert_eq!(ix.covered(), 11);
    assert_eq!(
        resolve(&j, &ix, &Target::parse("d/R@1")).expect("latest"),
        10
    );
    // One user of the index at a time: a second open waits, then says who holds it.
    drop(ix);
    // Same length, other bytes: the recorded hash no longer matches.
    let edges = dir.join("edges");
    let mut bytes = std::fs::read(&edges).expect("edges");
    bytes[0] ^= 0xff;
    std::fs::write(&edges, &bytes).expect("forge");
    let ix = open_index(&dir, &j).expect("rebuilt");
    assert!(ix.rebuilt);
    assert_eq!(
        forward(&j, &ix, 1, u64::MAX).expect("forward").nodes.len(),
        7
    );
    drop(ix);
    std::fs::write(dir.join("meta.json"), b"{").expect("truncate");
    assert!(open_index(&dir, &j).expect("rebuilt").rebuilt);
}

#[test]
fn unrooted_names_records_without_a_path_to_a_root() {
    let d = tempfile::tempdir().expect("tempdir");
    let mut j = sample(d.path());
    assert_eq!(unrooted(&j).expect("check"), Vec::<u64>::new());
    j.append(&[
        rec(REDUCER_STEPPED, vec![], json!({"reducer": "d/R@1"})),
        rec(EFFECT_INTENT, vec![10], json!({})),
        rec(DOMAIN_EVENT, vec![], json!({"schema": "d/E@1", "value": 2})),
        rec(
            DOMAIN_EVENT,
            vec![0, 9],
            json!({"schema": "d/E@1", "value": 3}),
        ),
    ])
    .expect("append");
    assert_eq!(unrooted(&j).expect("check"), vec![10, 11, 12]);
}

proptest::proptest! {
    /// Any target text reads as something (never a panic): digits as a seq, `blake3:`
    /// with 64 hex digits as an intent, other `blake3:` text as a malformed hash.
    #[test]
    fn any_target_text_parses(s in "\\PC{0,80}") {
        match Target::parse(&s) {
            Target::Seq(n) => proptest::prop_assert_eq!(s.parse::<u64>().ok(), Some(n)),
            Target::BadHash(t) => proptest::prop_assert!(t.starts_with("blake3:")),
            Target::Intent(_) | Target::Reducer { .. } => {}
        }
    }

    #[test]
    fn seqs_and_hashes_round_trip(n in proptest::prelude::any::<u64>(), bytes in proptest::prelude::any::<[u8; 32]>()) {
        proptest::prop_assert_eq!(Target::parse(&n.to_string()), Target::Seq(n));
        let h = Hash(bytes);
        proptest::prop_assert_eq!(Target::parse(&h.to_string()), Target::Intent(h));
    }
}
