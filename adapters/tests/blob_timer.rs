//! `blob.put` / `blob.get` on a real object store, and `timer.set`.

mod common;

use aos_adapters::adapter::now_ns;
use aos_adapters::blob::BlobAdapter;
use aos_adapters::timer::TimerAdapter;
use aos_adapters::Status;
use aos_store::Hash;
use common::{message, nat, run, store};
use serde_json::json;

#[test]
fn put_and_get_answer_ref_and_size() {
    let (_dir, objects) = store();
    let blob = BlobAdapter::new(objects.clone());
    let h = objects.put_bytes(b"hello blob").unwrap();
    let put = run(
        &blob,
        "blob.put",
        &json!({"namespace": "ns", "blob_ref": h.to_string()}),
        "k",
    );
    assert_eq!(put.status, Status::Ok, "{:?}", put.payload);
    assert_eq!(put.payload, json!({"blob_ref": h.to_string(), "size": 10}));
    for key in [h.to_string(), h.hex()] {
        let get = run(
            &blob,
            "blob.get",
            &json!({"namespace": "ns", "key": key}),
            "k",
        );
        assert_eq!(get.status, Status::Ok, "{:?}", get.payload);
        assert_eq!(get.payload, json!({"blob_ref": h.to_string(), "size": 10}));
    }
}

#[test]
fn missing_corrupt_and_malformed_blobs_are_errors() {
    let (dir, objects) = store();
    let blob = BlobAdapter::new(objects.clone());
    let missing = Hash::of(b"never stored");
    let put = run(
        &blob,
        "blob.put",
        &json!({"namespace": "ns", "blob_ref": missing.to_string()}),
        "k",
    );
    assert_eq!(put.status, Status::Error);
    assert!(message(&put).contains(&missing.to_string()));
    let get = run(
        &blob,
        "blob.get",
        &json!({"namespace": "ns", "key": "greeting"}),
        "k",
    );
    assert_eq!(get.status, Status::Error);
    assert!(message(&get).contains("greeting"), "{}", message(&get));
    let bad = run(&blob, "blob.put", &json!({"namespace": "ns"}), "k");
    assert_eq!(bad.status, Status::Error);

    let h = objects.put_bytes(b"intact").unwrap();
    let path = objects.locate(&h).unwrap();
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&path, perms).unwrap();
    std::fs::write(&path, b"broken").unwrap();
    let get = run(
        &blob,
        "blob.get",
        &json!({"namespace": "ns", "key": h.to_string()}),
        "k",
    );
    assert_eq!(get.status, Status::Error, "{:?}", get.payload);
    drop(dir);
}

#[test]
fn timer_reports_delivery_time_and_key() {
    let timer = TimerAdapter::new();
    let before = now_ns();
    let o = run(
        &timer,
        "timer.set",
        &json!({"deliver_at_ns": 5, "key": "tick"}),
        "k",
    );
    assert_eq!(o.status, Status::Ok, "{:?}", o.payload);
    assert_eq!(o.payload["key"], "tick");
    let at = nat(&o.payload["delivered_at_ns"]);
    assert!(at >= before && at <= now_ns());
    let o = run(&timer, "timer.set", &json!({"deliver_at_ns": 5}), "k");
    assert_eq!(o.status, Status::Ok, "{:?}", o.payload);
    assert_eq!(o.payload["key"], serde_json::Value::Null);
    let o = run(&timer, "timer.set", &json!({"key": "x"}), "k");
    assert_eq!(o.status, Status::Error);
}
