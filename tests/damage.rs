//! End-to-end fault tests through the real `aos` binary: torn tails, flipped bytes in
//! the journal and in objects, missing and renamed objects, a read-only world, a full
//! disk, and `kill -9` in the middle of a blob write. Each fault is reported with its
//! exact location; only the torn tail is ever repaired, and nothing is lost.

mod common;

use std::fs::OpenOptions;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use aos_store::objects::ObjectStore;
use aos_store::Hash;
use common::*;
use serde_json::Value;

fn fsck_json(root: &std::path::Path) -> (i32, Value) {
    let o = aos(root, &["fsck", "--format", "json"]);
    (
        o.status.code().unwrap_or(-1),
        serde_json::from_str(&stdout(&o)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&o))),
    )
}

fn codes(v: &Value) -> Vec<(String, String, String)> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["severity"].as_str().unwrap().into(),
                f["code"].as_str().unwrap().into(),
                f["location"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// Byte offset where line `seq` (0-based) of the journal starts.
fn line_offset(journal: &[u8], seq: usize) -> usize {
    journal
        .split_inclusive(|&b| b == b'\n')
        .take(seq)
        .map(<[u8]>::len)
        .sum()
}

#[test]
fn torn_tail_is_truncated_noted_and_nothing_else_changes() {
    let (_d, root) = world();
    append(&root, 5, "note");
    let jpath = root.join(".aos/journal");
    let good = std::fs::read(&jpath).unwrap();
    OpenOptions::new()
        .append(true)
        .open(&jpath)
        .unwrap()
        .write_all(br#"{"at_ns":"176"#)
        .unwrap();
    let o = aos(&root, &["log", "-n", "1"]);
    expect_code(&o, 0);
    assert!(
        stderr(&o).contains("truncated an unfinished final line"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&jpath).unwrap(), good);
    let (code, v) = fsck_json(&root);
    assert_eq!(code, 0, "{v}");
    assert!(
        codes(&v)
            .iter()
            .any(|(s, c, _)| s == "note" && c == "journal_torn_tail_truncated"),
        "{v}"
    );
    let saved = std::fs::read_dir(root.join(".aos/lost+found"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(std::fs::read(saved).unwrap(), br#"{"at_ns":"176"#);
}

#[test]
fn flipped_byte_in_a_middle_record_is_found_at_its_seq_and_left_alone() {
    let (_d, root) = world();
    append(&root, 9, "note");
    let jpath = root.join(".aos/journal");
    let mut bytes = std::fs::read(&jpath).unwrap();
    let at = line_offset(&bytes, 4) + 20;
    bytes[at] ^= 0x04;
    std::fs::write(&jpath, &bytes).unwrap();

    // The flipped byte may leave seq 4 valid JSON (a changed digit); the chain then
    // breaks at seq 5, whose prev no longer names seq 4's hash. Either way seq 4 is named.
    let o = aos(&root, &["log"]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("record seq 4"), "{}", stderr(&o));
    let (code, v) = fsck_json(&root);
    assert_eq!(code, 1);
    let found = codes(&v);
    let named = v["findings"].as_array().unwrap().iter().any(|f| {
        f["code"] == "journal_damaged"
            && (f["location"].as_str().unwrap().contains("seq 4 (line 5")
                || f["what"]
                    .as_str()
                    .unwrap()
                    .contains("record seq 4 was modified"))
    });
    assert!(named, "{v}");
    assert!(
        found
            .iter()
            .filter(|(s, _, _)| s == "error")
            .all(|(_, _, l)| l.contains("seq 4") || l.contains("seq 5")),
        "{found:?}"
    );
    let text = stdout(&aos(&root, &["fsck"]));
    assert!(text.contains("error: .aos/journal seq"), "{text}");
    assert_eq!(
        std::fs::read(&jpath).unwrap(),
        bytes,
        "nothing is silently repaired"
    );
    expect_code(&aos(&root, &["info"]), 1);
}

#[test]
fn object_damage_is_found_with_hash_and_path() {
    let (d, root) = world();
    let mut hashes = Vec::new();
    for i in 0..4 {
        let f = d.path().join(format!("b{i}"));
        std::fs::write(&f, format!("blob number {i}")).unwrap();
        let h: Hash = stdout(&aos(&root, &["blob", "put", f.to_str().unwrap()]))
            .trim()
            .parse()
            .unwrap();
        hashes.push(h);
    }
    let objects = root.join(".aos/objects");
    let path = |h: &Hash| ObjectStore::path_in(&objects, h);
    // 0: a flipped byte; 1: deleted; 2: renamed to a name it does not hash to.
    let mut b = std::fs::read(path(&hashes[0])).unwrap();
    b[3] ^= 0x20;
    std::fs::write(path(&hashes[0]), &b).unwrap();
    std::fs::remove_file(path(&hashes[1])).unwrap();
    let fake = Hash::of(b"never stored");
    std::fs::create_dir_all(path(&fake).parent().unwrap()).unwrap();
    std::fs::rename(path(&hashes[2]), path(&fake)).unwrap();

    let (code, v) = fsck_json(&root);
    assert_eq!(code, 1);
    let found = codes(&v);
    let has = |code: &str, needle: &str| {
        found
            .iter()
            .any(|(s, c, l)| s == "error" && c == code && l.contains(needle))
    };
    assert!(has("object_corrupt", &hashes[0].to_string()), "{found:?}");
    assert!(
        has("object_corrupt", &hashes[0].hex()[2..]),
        "location names the file: {found:?}"
    );
    assert!(has("object_missing", &hashes[1].to_string()), "{found:?}");
    assert!(has("object_missing", "ledger line 2"), "{found:?}");
    assert!(has("object_corrupt", &fake.to_string()), "{found:?}");
    assert!(has("object_missing", &hashes[2].to_string()), "{found:?}");
    let renamed = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["code"] == "object_missing"
                && f["location"]
                    .as_str()
                    .unwrap()
                    .contains(&hashes[2].to_string())
        })
        .unwrap();
    assert!(
        renamed["what"].as_str().unwrap().contains("wrong name"),
        "{renamed}"
    );
    assert!(!has("object_corrupt", &hashes[3].to_string()));

    let o = aos(&root, &["cat-object", &hashes[0].to_string()]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("corrupt"), "{}", stderr(&o));
    let out = d.path().join("out");
    expect_code(
        &aos(
            &root,
            &[
                "blob",
                "get",
                &hashes[0].to_string(),
                "-o",
                out.to_str().unwrap(),
            ],
        ),
        1,
    );
    assert!(
        !out.exists(),
        "a corrupt blob never reaches the output file"
    );
    let o = aos(&root, &["blob", "get", &hashes[0].to_string()]);
    expect_code(&o, 1);
    assert!(o.stdout.is_empty(), "a corrupt blob never reaches stdout");
}

#[test]
fn read_only_world_reads_and_refuses_writes_clearly() {
    let (d, root) = world();
    append(&root, 3, "note");
    let f = d.path().join("b");
    std::fs::write(&f, b"bytes").unwrap();
    let h = stdout(&aos(&root, &["blob", "put", f.to_str().unwrap()]))
        .trim()
        .to_string();
    let before = tree_bytes(&root);
    let view = d.path().join("ro");
    let _m = read_only_view(&root, &view);
    expect_code(&aos(&view, &["log"]), 0);
    expect_code(&aos(&view, &["info"]), 0);
    expect_code(&aos(&view, &["fsck"]), 0);
    assert_eq!(aos(&view, &["cat-object", "--raw", &h]).stdout, b"bytes");
    std::fs::write(&f, b"new bytes").unwrap();
    let o = aos(&view, &["blob", "put", f.to_str().unwrap()]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("read-only"), "{}", stderr(&o));
    let o = aos(d.path(), &["fork", "ro", "ro/inner"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("read-only"), "{}", stderr(&o));
    drop(_m);
    assert_eq!(tree_bytes(&root), before);
}

#[test]
fn full_disk_fails_cleanly_and_loses_nothing() {
    let d = tempfile::tempdir().unwrap();
    let mnt = d.path().join("small");
    let _m = tmpfs(&mnt, "600k");
    expect_code(&aos(&mnt, &["init", "w"]), 0);
    let root = mnt.join("w");
    let small = d.path().join("small.txt");
    std::fs::write(&small, b"kept").unwrap();
    let kept = stdout(&aos(&root, &["blob", "put", small.to_str().unwrap()]))
        .trim()
        .to_string();
    let big = d.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 2 << 20]).unwrap();
    let o = aos(&root, &["blob", "put", big.to_str().unwrap()]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("no space left"), "{}", stderr(&o));
    let objects = root.join(".aos/objects");
    assert!(!ObjectStore::path_in(&objects, &Hash::of(&vec![7u8; 2 << 20])).exists());
    assert_eq!(
        std::fs::read_dir(objects.join("tmp")).unwrap().count(),
        0,
        "temp files cleaned up"
    );
    assert_eq!(aos(&root, &["cat-object", "--raw", &kept]).stdout, b"kept");
    let (code, v) = fsck_json(&root);
    assert_eq!(code, 0, "{v}");
    // A fork onto the full disk fails without leaving a half-made world.
    let filler = mnt.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 600 << 10]);
    let o = aos(&mnt, &["fork", "w", "f"]);
    expect_code(&o, 1);
    assert!(!mnt.join("f/.aos").exists());
    expect_code(&aos(&root, &["fsck"]), 0);
}

#[test]
fn kill_during_blob_put_leaves_no_partial_object() {
    let (_d, root) = world();
    for round in 0..5u64 {
        let mut child = Command::new(aos_bin())
            .args(["blob", "put", "-"])
            .current_dir(&root)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let chunk = vec![round as u8; 1 << 20];
        for _ in 0..(2 + round) {
            stdin.write_all(&chunk).unwrap();
        }
        std::thread::sleep(Duration::from_millis(10 * round));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let (code, v) = fsck_json(&root);
    assert_eq!(code, 0, "{v}");
    let files = ObjectStore::list_files(&root.join(".aos/objects")).unwrap();
    assert!(files.is_empty(), "no object became visible: {files:?}");
}
