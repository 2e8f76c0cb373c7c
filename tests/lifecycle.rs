//! End-to-end tests of the world lifecycle through the real `aos` binary: init, world
//! discovery, info, log (filters, JSON, follow, pipes), cat-object, blob put/get, fork,
//! fsck, and exit codes.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

#[test]
fn init_creates_a_complete_world() {
    let (d, root) = world();
    let aos_dir = root.join(".aos");
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(aos_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["format_version"], 1);
    assert_eq!(cfg["world_id"].as_str().unwrap().len(), 36);
    let key = cfg["receipt_keys"][0]["public_key"].as_str().unwrap();
    assert!(key.starts_with("ed25519:") && key.len() == 8 + 64, "{key}");
    let mode = std::fs::metadata(aos_dir.join("keys/receipts.ed25519"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let journal = std::fs::read_to_string(aos_dir.join("journal")).unwrap();
    assert_eq!(journal.lines().count(), 1);
    let genesis: Value = serde_json::from_str(journal.lines().next().unwrap()).unwrap();
    assert_eq!(genesis["kind"], "world_created");
    assert_eq!(genesis["seq"], 0);
    assert_eq!(genesis["prev"], Value::Null);
    assert_eq!(genesis["body"]["receipt_public_key"], key);
    assert_eq!(genesis["body"]["origin"]["who"], "tester");
    assert!(
        genesis["at_ns"].is_string(),
        "at_ns beyond 2^53 is a decimal string"
    );
    assert!(!d.path().read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .starts_with(".aos.new")));

    let again = aos(d.path(), &["init", "w"]);
    expect_code(&again, 2);
    assert!(
        stderr(&again).contains("already an aos world"),
        "{}",
        stderr(&again)
    );
    let o = aos(d.path(), &["world", "init", "w2", "--as", "alice"]);
    expect_code(&o, 0);
    let o = aos(&d.path().join("w2"), &["log", "--format", "json"]);
    let rec: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(rec["body"]["origin"]["who"], "alice");
}

#[test]
fn worlds_are_found_by_walking_up_or_named_exactly() {
    let (d, root) = world();
    let sub = root.join("a/b");
    std::fs::create_dir_all(&sub).unwrap();
    expect_code(&aos(&sub, &["info"]), 0);
    expect_code(&aos(d.path(), &["-C", "w/a/b", "info"]), 0);
    expect_code(&aos(d.path(), &["--world", "w", "info"]), 0);
    let exact = aos(d.path(), &["--world", "w/a", "info"]);
    expect_code(&exact, 2);
    assert!(
        stderr(&exact).contains("not an aos world"),
        "{}",
        stderr(&exact)
    );
    let nowhere = aos(d.path(), &["log"]);
    expect_code(&nowhere, 2);
    assert!(
        stderr(&nowhere).contains("aos init"),
        "error should say what to do: {}",
        stderr(&nowhere)
    );
    expect_code(&aos(d.path(), &["-C", "missing-dir", "info"]), 2);
    expect_code(&aos(d.path(), &["no-such-command"]), 2);
}

#[test]
fn info_reports_identity_head_and_counts() {
    let (_d, root) = world();
    append(&root, 4, "note");
    let o = aos(&root, &["info", "--format", "json"]);
    expect_code(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["records"], 5);
    assert_eq!(v["head"]["seq"], 4);
    let text = stdout(&aos(&root, &["info"]));
    assert!(text.contains("head      seq 4"), "{text}");
}

#[test]
fn log_is_newest_first_with_filters() {
    let (_d, root) = world();
    append(&root, 6, "note");
    append(&root, 2, "other");
    let seqs = |args: &[&str]| -> Vec<u64> {
        let mut a = vec!["log", "--format", "json"];
        a.extend_from_slice(args);
        let o = aos(&root, &a);
        expect_code(&o, 0);
        stdout(&o)
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(seqs(&[]), vec![8, 7, 6, 5, 4, 3, 2, 1, 0]);
    assert_eq!(seqs(&["-n", "3"]), vec![8, 7, 6]);
    assert_eq!(seqs(&["--kind", "note", "-n", "2"]), vec![6, 5]);
    assert_eq!(
        seqs(&["--kind", "other", "--kind", "world_created"]),
        vec![8, 7, 0]
    );
    assert_eq!(seqs(&["--since", "6"]), vec![8, 7, 6]);
    assert_eq!(seqs(&["--since", "9"]), Vec::<u64>::new());
    expect_code(&aos(&root, &["log", "--since", "50"]), 2);
    // JSON lines carry the record's own hash, which the next record's prev names.
    let o = aos(&root, &["log", "--format", "json", "-n", "2"]);
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["prev"], lines[1]["hash"]);
    let text = stdout(&aos(&root, &["log", "-n", "1"]));
    assert!(text.starts_with("seq 8  other  blake3:"), "{text}");
}

#[test]
fn log_into_a_closed_pipe_is_quiet() {
    let (_d, root) = world();
    append(&root, 3000, "note");
    let mut child = Command::new(aos_bin())
        .args(["log"])
        .current_dir(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 16];
    child
        .stdout
        .as_mut()
        .unwrap()
        .read_exact(&mut first)
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn log_follow_prints_new_records_as_they_land() {
    let (_d, root) = world();
    append(&root, 12, "note");
    let mut child = Command::new(aos_bin())
        .args(["log", "--follow", "--format", "json", "-n", "2"])
        .current_dir(&root)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let next = |seen: &mut Vec<u64>| {
        let l = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("a record within 10 s");
        seen.push(
            serde_json::from_str::<Value>(&l).unwrap()["seq"]
                .as_u64()
                .unwrap(),
        );
    };
    next(&mut seen);
    next(&mut seen);
    assert_eq!(
        seen,
        vec![11, 12],
        "follow starts with the last -n records, oldest first"
    );
    append(&root, 3, "late");
    for _ in 0..3 {
        next(&mut seen);
    }
    assert_eq!(seen, vec![11, 12, 13, 14, 15]);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn blobs_round_trip_streaming_and_verified() {
    let (d, root) = world();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let file = d.path().join("big.bin");
    std::fs::write(&file, &big).unwrap();
    let o = aos(&root, &["blob", "put", file.to_str().unwrap()]);
    expect_code(&o, 0);
    let hash = stdout(&o).trim().to_string();
    assert_eq!(hash, format!("blake3:{}", blake3::hash(&big).to_hex()));
    let out = d.path().join("copy.bin");
    expect_code(
        &aos(&root, &["blob", "get", &hash, "-o", out.to_str().unwrap()]),
        0,
    );
    assert_eq!(std::fs::read(&out).unwrap(), big);
    let o = aos(&root, &["blob", "get", &hash[7..19]]);
    expect_code(&o, 0);
    assert_eq!(o.stdout, big);

    let mut child = Command::new(aos_bin())
        .args(["blob", "put", "-"])
        .current_dir(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from stdin")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        stdout(&o).trim(),
        format!("blake3:{}", blake3::hash(b"from stdin").to_hex())
    );

    let o = aos(
        &root,
        &[
            "blob",
            "put",
            "--format",
            "json",
            file.to_str().unwrap(),
            "missing-file",
        ],
    );
    expect_code(&o, 2);
    assert!(stderr(&o).contains("missing-file"), "{}", stderr(&o));
    expect_code(
        &aos(
            &root,
            &["blob", "get", &format!("blake3:{}", "0".repeat(64))],
        ),
        2,
    );
}

#[test]
fn cat_object_pretty_raw_and_refusals() {
    let (d, root) = world();
    let f = d.path().join("o.json");
    std::fs::write(&f, br#"{"b":[1,2],"a":"x"}"#).unwrap();
    let hash = stdout(&aos(&root, &["blob", "put", f.to_str().unwrap()]))
        .trim()
        .to_string();
    let o = aos(&root, &["cat-object", &hash]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("\"b\": [\n"), "{}", stdout(&o));
    let raw = aos(&root, &["cat-object", "--raw", &hash[7..15]]);
    assert_eq!(raw.stdout, br#"{"b":[1,2],"a":"x"}"#);
    std::fs::write(&f, [0u8, 159, 146, 150]).unwrap();
    let bin = stdout(&aos(&root, &["blob", "put", f.to_str().unwrap()]))
        .trim()
        .to_string();
    let o = aos(&root, &["cat-object", &bin]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("--raw"), "{}", stderr(&o));
    expect_code(&aos(&root, &["cat-object", "nothex"]), 2);
    expect_code(
        &aos(
            &root,
            &["cat-object", &format!("blake3:{}", "a".repeat(64))],
        ),
        2,
    );
}

#[test]
fn fork_shares_objects_and_records_its_origin() {
    let (d, root) = world();
    let f = d.path().join("blob");
    std::fs::write(&f, b"shared bytes").unwrap();
    let hash = stdout(&aos(&root, &["blob", "put", f.to_str().unwrap()]))
        .trim()
        .to_string();
    append(&root, 9, "note");
    let src_journal = std::fs::read(root.join(".aos/journal")).unwrap();

    let o = aos(
        d.path(),
        &["fork", "w", "f1", "--at", "4", "--format", "json"],
    );
    expect_code(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["source"]["seq"], 4);
    let f1 = d.path().join("f1");
    let fork_journal = std::fs::read(f1.join(".aos/journal")).unwrap();
    let prefix_len: usize = std::str::from_utf8(&src_journal)
        .unwrap()
        .lines()
        .take(5)
        .map(|l| l.len() + 1)
        .sum();
    assert_eq!(
        &fork_journal[..prefix_len],
        &src_journal[..prefix_len],
        "journal prefix copied byte for byte"
    );
    let o = aos(&f1, &["log", "--format", "json", "-n", "1"]);
    let rec: Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(rec["kind"], "forked_from");
    assert_eq!(rec["seq"], 5);
    assert_eq!(rec["body"]["source_seq"], 4);
    let src_log = stdout(&aos(
        &root,
        &["log", "--format", "json", "--since", "4", "-n", "100"],
    ));
    let rec4: Value = serde_json::from_str(src_log.lines().last().unwrap()).unwrap();
    assert_eq!(rec["body"]["source_hash"], rec4["hash"]);
    // Objects come from the source through alternates: none were copied.
    assert_eq!(
        aos_store::objects::ObjectStore::list_files(&f1.join(".aos/objects"))
            .unwrap()
            .len(),
        0
    );
    assert_eq!(
        aos(&f1, &["cat-object", "--raw", &hash]).stdout,
        b"shared bytes"
    );
    expect_code(&aos(&f1, &["fsck"]), 0);
    let info: Value =
        serde_json::from_str(&stdout(&aos(&f1, &["info", "--format", "json"]))).unwrap();
    assert_ne!(info["world_id"], v["source"]["world_id"]);
    assert_eq!(info["receipt_keys"].as_array().unwrap().len(), 2);

    let o = aos(d.path(), &["world", "fork", "w/", "f2", "--link-objects"]);
    expect_code(&o, 0);
    let src_obj = aos_store::objects::ObjectStore::path_in(
        &root.join(".aos/objects"),
        &hash.parse().unwrap(),
    );
    let dst_obj = aos_store::objects::ObjectStore::path_in(
        &d.path().join("f2/.aos/objects"),
        &hash.parse().unwrap(),
    );
    assert_eq!(
        std::fs::metadata(&src_obj).unwrap().ino(),
        std::fs::metadata(&dst_obj).unwrap().ino(),
        "hard link, not a copy"
    );
    expect_code(&aos(&d.path().join("f2"), &["fsck"]), 0);

    let o = aos(d.path(), &["fork", "w", "f3", "--at", "99"]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("head is seq 9"), "{}", stderr(&o));
    expect_code(&aos(d.path(), &["fork", "w", "f1"]), 2);
    expect_code(&aos(d.path(), &["fork", "nowhere", "f4"]), 2);
    assert!(!d.path().join("f3/.aos").exists());
}

#[test]
fn fsck_of_a_healthy_world_passes_with_json() {
    let (_d, root) = world();
    append(&root, 100, "note");
    let o = aos(&root, &["fsck", "--format", "json"]);
    expect_code(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["summary"]["records"], 101);
}

#[test]
fn help_and_version_exit_zero() {
    let d = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["log", "--help"],
        &["--version"],
        &["blob", "put", "--help"],
    ] {
        let o = aos(d.path(), args);
        expect_code(&o, 0);
        assert!(!stdout(&o).is_empty());
    }
}

#[test]
fn readers_do_not_wait_for_the_writer() {
    let (_d, root) = world();
    let w = aos_store::world::World::open(&root, aos_store::world::Access::Write).unwrap();
    let started = Instant::now();
    let o = aos(&root, &["info"]);
    expect_code(&o, 0); // readers never wait for the writer
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(w);
}
