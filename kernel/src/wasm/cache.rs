//! The compiled-module cache on disk: `<dir>/engine-<fingerprint>/<wasm hash hex>.cwasm`.
//!
//! A file is a header and wasmtime's serialized module: the magic line
//! `aos-cwasm/1\n`, the 32-byte engine fingerprint, the 32-byte wasm hash, the 32-byte
//! blake3 of the body, then the body. It is written to a temporary name and renamed into
//! place (never fsynced: the cache is not authoritative, and a file torn by a power loss
//! fails its digest and is recompiled). A file whose header or digest does not match is
//! rejected, deleted and recompiled.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use aos_store::Hash;

const MAGIC: &[u8] = b"aos-cwasm/1\n";
const HEADER: usize = MAGIC.len() + 32 * 3;

/// What a cache lookup found.
pub(crate) enum Lookup {
    Missing,
    /// The serialized module, checked against its digest, fingerprint and wasm hash.
    Found(Vec<u8>),
    /// A file was there but is not ours for this module and engine (it was removed).
    Rejected(String),
}

pub(crate) struct DiskCache {
    dir: PathBuf,
    fingerprint: [u8; 32],
}

impl DiskCache {
    pub(crate) fn new(base: &Path, fingerprint: [u8; 32]) -> DiskCache {
        let fp = Hash(fingerprint).hex();
        DiskCache {
            dir: base.join(format!("engine-{}", &fp[..32])),
            fingerprint,
        }
    }

    /// Where the compiled form of `module` lives.
    pub(crate) fn path(&self, module: &Hash) -> PathBuf {
        self.dir.join(format!("{}.cwasm", module.hex()))
    }

    pub(crate) fn read(&self, module: &Hash) -> Lookup {
        let path = self.path(module);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Lookup::Missing,
            Err(e) => return Lookup::Rejected(format!("cannot read {}: {e}", path.display())),
        };
        match self.verify(module, &bytes) {
            Ok(()) => {
                let mut body = bytes;
                body.drain(..HEADER);
                Lookup::Found(body)
            }
            Err(why) => {
                self.remove(module);
                Lookup::Rejected(format!("{}: {why}", path.display()))
            }
        }
    }

    fn verify(&self, module: &Hash, bytes: &[u8]) -> Result<(), &'static str> {
        if bytes.len() < HEADER || &bytes[..MAGIC.len()] != MAGIC {
            return Err("not a compiled-module cache file");
        }
        let field = |i: usize| &bytes[MAGIC.len() + 32 * i..MAGIC.len() + 32 * (i + 1)];
        if field(0) != self.fingerprint {
            return Err("compiled by another engine");
        }
        if field(1) != module.0 {
            return Err("compiled from another module");
        }
        if field(2) != blake3::hash(&bytes[HEADER..]).as_bytes() {
            return Err("damaged (digest mismatch)");
        }
        Ok(())
    }

    /// Store the serialized module atomically.
    pub(crate) fn write(&self, module: &Hash, body: &[u8]) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let mut bytes = Vec::with_capacity(HEADER + body.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&self.fingerprint);
        bytes.extend_from_slice(&module.0);
        bytes.extend_from_slice(blake3::hash(body).as_bytes());
        bytes.extend_from_slice(body);
        let tmp = aos_store::durable::temp_path(&self.dir, "cwasm");
        let result = fs::write(&tmp, &bytes).and_then(|()| fs::rename(&tmp, self.path(module)));
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Remove the entry for `module`, if any (a stale or damaged file).
    pub(crate) fn remove(&self, module: &Hash) {
        let _ = fs::remove_file(self.path(module));
    }
}
