//! The blob-echo reducer (`demo/BlobEchoSM@1`): stores bytes and reads them back.
//!
//! A reducer cannot write bytes itself: `blob.put` takes the hash of a blob that is
//! already in the world's object store (put there with `aos blob put FILE`, which
//! prints the hash). So the round trip is:
//!
//! 1. `Put{blob_ref, namespace}`: emit `blob.put {namespace, blob_ref}` through the cap
//!    slot `blob` (the grant limits the namespaces); state `Putting`.
//! 2. `Stored` (`sys/BlobPutResult@1`): record the stored size, emit
//!    `blob.get {namespace, key}` with the key being the stored blob's hash; `Getting`.
//! 3. `Got` (`sys/BlobGetResult@1`): record the ref and size read back; `Done`, with
//!    `matches` true when both are what was stored.
//!
//! Results that are not `ok`, or that arrive in another phase, change nothing.
#![no_std]

extern crate alloc;
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

use alloc::string::String;

use aos_sdk::{Ctx, Out};
use serde::{Deserialize, Serialize};

/// The cap slot the manifest binds to a `sys/blob@1` grant.
pub const SLOT: &str = "blob";

/// `demo/BlobEchoPc@1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "$tag", content = "$value")]
pub enum Pc {
    Putting,
    Getting,
    Done,
}

/// `demo/BlobEchoState@1` (fields in canonical order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub blob_ref: String,
    #[serde(default)]
    pub got_ref: Option<String>,
    #[serde(default, with = "opt_u64")]
    pub got_size: Option<u64>,
    pub matches: bool,
    pub namespace: String,
    pub pc: Pc,
    #[serde(default, with = "opt_u64")]
    pub put_size: Option<u64>,
}

/// `demo/BlobEchoPut@1`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Put {
    pub blob_ref: String,
    pub namespace: String,
}

/// `{blob_ref, size}`: both `sys/BlobPutReceipt@1` and `sys/BlobGetReceipt@1`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BlobReceipt {
    pub blob_ref: String,
    #[serde(with = "aos_sdk::u64_lens")]
    pub size: u64,
}

/// The part of `sys/BlobPutResult@1` / `sys/BlobGetResult@1` the reducer reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct BlobResult {
    pub receipt: BlobReceipt,
    pub status: String,
}

/// `demo/BlobEchoEvent@1`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "$tag", content = "$value")]
pub enum Event {
    Put(Put),
    Stored(BlobResult),
    Got(BlobResult),
}

pub fn step(state: Option<State>, event: Event, _ctx: &Ctx) -> Out<State> {
    match (state, event) {
        (_, Event::Put(p)) => {
            let mut out = Out::new(State {
                blob_ref: p.blob_ref.clone(),
                got_ref: None,
                got_size: None,
                matches: false,
                namespace: p.namespace.clone(),
                pc: Pc::Putting,
                put_size: None,
            });
            out.blob_put(&p.namespace, &p.blob_ref, Some(SLOT));
            out
        }
        (Some(st), Event::Stored(r)) if st.pc == Pc::Putting && r.status == "ok" => {
            let mut out = Out::new(State {
                pc: Pc::Getting,
                put_size: Some(r.receipt.size),
                ..st.clone()
            });
            // blob.get's key is the blob's hash.
            out.blob_get(&st.namespace, &r.receipt.blob_ref, Some(SLOT));
            out
        }
        (Some(st), Event::Got(r)) if st.pc == Pc::Getting && r.status == "ok" => {
            let matches = r.receipt.blob_ref == st.blob_ref && Some(r.receipt.size) == st.put_size;
            Out::new(State {
                got_ref: Some(r.receipt.blob_ref),
                got_size: Some(r.receipt.size),
                matches,
                pc: Pc::Done,
                ..st
            })
        }
        (Some(st), _) => Out::new(st),
        (None, _) => Out::delete(),
    }
}

/// Serde adapter for `Option<u64>` fields (AIR `option<nat>`): `null`, a number or a
/// decimal string in, the canonical form out.
mod opt_u64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(n: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match n {
            Some(n) => aos_sdk::u64_lens::serialize(n, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        #[derive(Deserialize)]
        struct Wrap(#[serde(with = "aos_sdk::u64_lens")] u64);
        Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
    }
}

aos_sdk::reducer!(step);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use aos_sdk::serde_json::{self, json, Value};

    fn run(state: &Value, value: Value) -> Value {
        let input = json!({"version": 1, "state": state,
            "ctx": {"now_ns": 1, "key": null, "cell_mode": false},
            "event": {"schema": "demo/BlobEchoEvent@1", "value": value}});
        let out = aos_sdk::run_json(input.to_string().as_bytes(), step);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn put_then_get_then_done() {
        let h = "blake3:00";
        let out = run(
            &Value::Null,
            json!({"$tag": "Put", "$value": {"blob_ref": h, "namespace": "echo"}}),
        );
        assert_eq!(out["effects"][0]["kind"], "blob.put");
        assert_eq!(out["effects"][0]["params"]["blob_ref"], h);
        let res = json!({"status": "ok", "receipt": {"blob_ref": h, "size": 5}});
        let out = run(&out["state"], json!({"$tag": "Stored", "$value": res}));
        assert_eq!(out["effects"][0]["kind"], "blob.get");
        assert_eq!(out["effects"][0]["params"]["key"], h);
        let out = run(&out["state"], json!({"$tag": "Got", "$value": res}));
        assert_eq!(out["state"]["pc"]["$tag"], "Done");
        assert_eq!(out["state"]["got_size"], 5);
        assert_eq!(out["state"]["matches"], true);
    }
}
