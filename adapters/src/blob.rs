//! `blob.put` / `blob.get` on the world's object store.
//!
//! Blobs are objects: content-addressed, write-once, shared by every namespace. A
//! namespace is a capability boundary (the kernel checks it against the `blob` grant),
//! not a separate store, so there is no per-namespace index to keep in step with the
//! journal:
//!
//! - `blob.put {namespace, blob_ref}`: the bytes are already an object (the kernel
//!   stores what a reducer hands over); the adapter checks that the object exists and
//!   is intact and answers `{blob_ref, size}`.
//! - `blob.get {namespace, key}`: **the key is the blob's hash**, `blake3:<hex>` or the
//!   bare 64 hex digits. The adapter checks the object exists and is intact and answers
//!   `{blob_ref, size}`; the bytes are read from the store by whoever holds the ref. A
//!   key that is not a hash, or names no object, is an `error` receipt.

use std::io::{self, Write};

use aos_store::objects::ObjectStore;
use aos_store::Hash;
use serde_json::json;

use crate::adapter::{run_frame, Adapter, AdapterError, Done, Outcome, Request};
use crate::params;

/// The `blob.put` / `blob.get` adapter.
#[derive(Debug, Clone)]
pub struct BlobAdapter {
    id: String,
    store: ObjectStore,
}

impl BlobAdapter {
    /// The adapter id is `blob`.
    pub fn new(store: ObjectStore) -> BlobAdapter {
        BlobAdapter {
            id: "blob".into(),
            store,
        }
    }

    /// The size of an intact object; a missing object is [`AdapterError::BlobMissing`].
    fn size_of(&self, hash: &Hash) -> Result<u64, AdapterError> {
        if !self.store.contains(hash) {
            return Err(AdapterError::BlobMissing(*hash));
        }
        // copy_to re-hashes the object before it copies a byte.
        Ok(self.store.copy_to(hash, &mut Count(0))?)
    }
}

/// A writer that only counts.
struct Count(u64);

impl Write for Count {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len() as u64);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Parse a `blob.get` key: `blake3:<hex>` or 64 bare hex digits.
pub fn parse_key(key: &str) -> Option<Hash> {
    key.parse::<Hash>().ok().or_else(|| Hash::from_hex(key))
}

const KINDS: &[&str] = &["blob.put", "blob.get"];

impl Adapter for BlobAdapter {
    fn id(&self) -> &str {
        &self.id
    }

    fn kinds(&self) -> &[&str] {
        KINDS
    }

    fn run(&self, req: &Request) -> Outcome {
        let bad = |message: String| AdapterError::Params {
            kind: req.kind.into(),
            message,
        };
        run_frame(self, req, |p, _| {
            params::text(p, "namespace").map_err(bad)?;
            let hash = if req.kind == "blob.put" {
                params::hash(p, "blob_ref").map_err(bad)?
            } else {
                let key = params::text(p, "key").map_err(bad)?;
                parse_key(key).ok_or_else(|| {
                    bad(format!(
                        "key {:?} is not a blob hash (blake3:<64 hex digits>)",
                        key.chars().take(80).collect::<String>()
                    ))
                })?
            };
            let size = self.size_of(&hash)?;
            Ok(Done::payload(json!({
                "blob_ref": hash.to_string(),
                "size": aos_store::canon::u64_value(size),
            })))
        })
    }
}
