//! The content-addressed object store: write-once files named by the blake3 hash of
//! their bytes under `objects/ab/cdef…`, written atomically (temp file, sync, rename,
//! directory sync), re-hashed on every read, shared between forks through an
//! `alternates` list, and recorded in an append-only `ledger` so `fsck` can tell a
//! missing object from one that never existed.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::canon;
use crate::durable::{sync_dir, sync_filesystem, temp_path};
use crate::error::{io_err, Error, Result};
use crate::hash::{is_hex_prefix, Hash, Hasher, PREFIX};

/// Size of the buffer used when streaming large blobs in and out.
pub const CHUNK: usize = 256 * 1024;
/// Name of the file listing other object directories this store reads from.
pub const ALTERNATES: &str = "alternates";
/// Name of the append-only list of objects this store has written.
pub const LEDGER: &str = "ledger";
const TMP: &str = "tmp";

/// A world's object directory plus the directories it borrows from.
#[derive(Debug, Clone)]
pub struct ObjectStore {
    dir: PathBuf,
    alternates: Vec<PathBuf>,
}

impl ObjectStore {
    /// Create an empty store (fan-out directories, temp area, empty ledger).
    pub fn create(dir: &Path, alternates: &[PathBuf]) -> Result<ObjectStore> {
        fs::create_dir_all(dir.join(TMP)).map_err(io_err("create", dir))?;
        for i in 0..=255u8 {
            let sub = dir.join(format!("{i:02x}"));
            fs::create_dir_all(&sub).map_err(io_err("create", &sub))?;
        }
        let ledger = dir.join(LEDGER);
        File::create(&ledger).map_err(io_err("create", &ledger))?;
        if !alternates.is_empty() {
            let mut text = String::new();
            for a in alternates {
                text.push_str(&a.to_string_lossy());
                text.push('\n');
            }
            let p = dir.join(ALTERNATES);
            fs::write(&p, text).map_err(io_err("write", &p))?;
        }
        ObjectStore::open(dir)
    }

    /// Open an existing store and read its alternates list.
    pub fn open(dir: &Path) -> Result<ObjectStore> {
        let alt_path = dir.join(ALTERNATES);
        let alternates = match fs::read_to_string(&alt_path) {
            Ok(text) => text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(PathBuf::from)
                .collect(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err("read", &alt_path)(e)),
        };
        Ok(ObjectStore {
            dir: dir.to_path_buf(),
            alternates,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Object directories this store reads from besides its own, in lookup order.
    pub fn alternates(&self) -> &[PathBuf] {
        &self.alternates
    }

    pub fn ledger_path(&self) -> PathBuf {
        self.dir.join(LEDGER)
    }

    /// Where `hash` lives (or would live) in the given object directory.
    pub fn path_in(dir: &Path, hash: &Hash) -> PathBuf {
        let hex = hash.hex();
        dir.join(&hex[..2]).join(&hex[2..])
    }

    /// The file holding `hash`, searching this store and then its alternates.
    pub fn locate(&self, hash: &Hash) -> Option<PathBuf> {
        std::iter::once(&self.dir)
            .chain(&self.alternates)
            .map(|d| Self::path_in(d, hash))
            .find(|p| p.is_file())
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.locate(hash).is_some()
    }

    /// Store bytes durably; returns their hash. Storing existing bytes is a no-op.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Hash> {
        let mut batch = self.batch();
        let h = batch.put_bytes(bytes)?;
        batch.commit()?;
        Ok(h)
    }

    /// Store a structured value as canonical JSON.
    pub fn put_json<T: Serialize + ?Sized>(&self, value: &T) -> Result<Hash> {
        self.put_bytes(&canon::to_vec(value)?)
    }

    /// Stream bytes into the store in bounded chunks; returns their hash.
    pub fn put_reader(&self, reader: impl Read) -> Result<Hash> {
        let mut batch = self.batch();
        let h = batch.put_reader(reader)?;
        batch.commit()?;
        Ok(h)
    }

    /// Start a group of writes that become durable together with one sync.
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            store: self,
            staged: Vec::new(),
            seen: HashSet::new(),
            hashes: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// Read an object and check that its bytes still hash to its name.
    pub fn get(&self, hash: &Hash) -> Result<Vec<u8>> {
        let path = self.locate(hash).ok_or_else(|| Error::ObjectNotFound {
            hash: hash.to_string(),
        })?;
        let bytes = fs::read(&path).map_err(io_err("read", &path))?;
        let actual = Hash::of(&bytes);
        if actual != *hash {
            return Err(Error::ObjectCorrupt {
                hash: *hash,
                path,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Read a JSON object.
    pub fn get_json<T: serde::de::DeserializeOwned>(&self, hash: &Hash) -> Result<T> {
        let bytes = self.get(hash)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("object {hash} is not the expected JSON: {e}")))
    }

    /// Copy an object to `out` in bounded chunks, after first checking its hash, so a
    /// corrupt object never reaches the output.
    pub fn copy_to(&self, hash: &Hash, out: &mut dyn Write) -> Result<u64> {
        let path = self.locate(hash).ok_or_else(|| Error::ObjectNotFound {
            hash: hash.to_string(),
        })?;
        let actual = hash_file(&path)?;
        if actual != *hash {
            return Err(Error::ObjectCorrupt {
                hash: *hash,
                path,
                actual,
            });
        }
        let mut f = File::open(&path).map_err(io_err("open", &path))?;
        io::copy(&mut f, out).map_err(|e| Error::Io {
            op: "copy object",
            path,
            source: e,
        })
    }

    /// Resolve user input (`blake3:<hex>`, a full hex digest, or a unique prefix of at
    /// least 4 hex digits) to the hash of an object present in the store.
    pub fn resolve(&self, text: &str) -> Result<Hash> {
        let hex = text.strip_prefix(PREFIX).unwrap_or(text);
        if hex.len() == 64 {
            let h = Hash::from_hex(hex).ok_or_else(|| {
                Error::BadHash(crate::hash::HashParseError::Malformed(text.into()))
            })?;
            return if self.contains(&h) {
                Ok(h)
            } else {
                Err(Error::ObjectNotFound {
                    hash: h.to_string(),
                })
            };
        }
        if hex.len() < 4 || !is_hex_prefix(hex) {
            return Err(Error::Invalid(format!(
                "{text:?} is not an object hash: give `blake3:` and 64 lowercase hex digits, or a unique prefix of at least 4"
            )));
        }
        let mut found = HashSet::new();
        for dir in std::iter::once(&self.dir).chain(&self.alternates) {
            let sub = dir.join(&hex[..2]);
            let Ok(entries) = fs::read_dir(&sub) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                let Some(name) = name.to_str() else { continue };
                if name.starts_with(&hex[2..]) {
                    if let Some(h) = Hash::from_hex(&format!("{}{name}", &hex[..2])) {
                        found.insert(h);
                    }
                }
            }
        }
        match found.len() {
            0 => Err(Error::ObjectNotFound {
                hash: text.to_string(),
            }),
            1 => Ok(found.into_iter().next().expect("one element")),
            count => Err(Error::AmbiguousPrefix {
                prefix: text.to_string(),
                count,
            }),
        }
    }

    /// The ledger of this store: every object it wrote, in order, with its line number.
    pub fn read_ledger(&self) -> Result<Vec<(usize, Hash)>> {
        read_ledger_at(&self.ledger_path())
    }

    /// Number of objects this store recorded writing (alternates excluded).
    pub fn ledger_len(&self) -> Result<u64> {
        let p = self.ledger_path();
        match fs::metadata(&p) {
            Ok(m) => Ok(m.len() / 65),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io_err("stat", &p)(e)),
        }
    }

    /// Every file under the fan-out directories of `dir`, with the hash its name claims
    /// (None for a name that is not a hash). Used by fsck and fork.
    pub fn list_files(dir: &Path) -> Result<Vec<(PathBuf, Option<Hash>)>> {
        let mut out = Vec::new();
        for i in 0..=255u8 {
            let prefix = format!("{i:02x}");
            let sub = dir.join(&prefix);
            let entries = match fs::read_dir(&sub) {
                Ok(e) => e,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("list", &sub)(e)),
            };
            for e in entries {
                let e = e.map_err(io_err("list", &sub))?;
                let name = e.file_name().to_string_lossy().into_owned();
                out.push((e.path(), Hash::from_hex(&format!("{prefix}{name}"))));
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Parse a ledger file: one hex digest per line.
pub fn read_ledger_at(path: &Path) -> Result<Vec<(usize, Hash)>> {
    let f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let mut out = Vec::new();
    for (i, line) in BufReader::new(f).lines().enumerate() {
        let line = line.map_err(io_err("read", path))?;
        match Hash::from_hex(line.trim()) {
            Some(h) => out.push((i + 1, h)),
            None => {
                return Err(Error::Config {
                    path: path.to_path_buf(),
                    what: format!("line {}: not a hex digest: {line:?}", i + 1),
                })
            }
        }
    }
    Ok(out)
}

/// Hash a file's content in bounded chunks.
pub fn hash_file(path: &Path) -> Result<Hash> {
    let mut f = File::open(path).map_err(io_err("open", path))?;
    let mut h = Hasher::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = f.read(&mut buf).map_err(io_err("read", path))?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.update(&buf[..n]);
    }
}

/// Objects staged in temporary files, made durable and visible by [`Batch::commit`].
/// Dropping an uncommitted batch removes its temporary files.
pub struct Batch<'a> {
    store: &'a ObjectStore,
    staged: Vec<(PathBuf, Hash)>,
    seen: HashSet<Hash>,
    hashes: Vec<Hash>,
    /// One reusable input buffer of [`CHUNK`] bytes.
    buf: Vec<u8>,
}

/// Read until `buf` is full or the input ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl Batch<'_> {
    /// Stage bytes; returns their hash.
    pub fn put_bytes(&mut self, bytes: &[u8]) -> Result<Hash> {
        let h = Hash::of(bytes);
        if !self.seen.contains(&h) && !self.store.contains(&h) {
            let tmp = temp_path(&self.store.dir.join(TMP), "obj");
            if let Err(e) = File::create(&tmp).and_then(|mut f| f.write_all(bytes)) {
                let _ = fs::remove_file(&tmp);
                return Err(io_err("write", &tmp)(e));
            }
            self.staged.push((tmp, h));
        }
        // Recorded only once staged (or already present), so a failed put can be retried.
        self.seen.insert(h);
        self.hashes.push(h);
        Ok(h)
    }

    /// Stage the bytes of a reader, hashing them as they stream through. Inputs that fit
    /// in one chunk are hashed first, so existing objects cost no file at all; larger
    /// ones stream through a temporary file in bounded chunks.
    pub fn put_reader(&mut self, mut reader: impl Read) -> Result<Hash> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(CHUNK, 0);
        let first = read_full(&mut reader, &mut buf);
        let result = match first {
            Err(e) => Err(Error::Io {
                op: "read input",
                path: PathBuf::from("-"),
                source: e,
            }),
            Ok(n) if n < CHUNK => self.put_bytes(&buf[..n]),
            Ok(n) => {
                let head = buf[..n].to_vec();
                self.stream(&head, &mut reader, &mut buf)
            }
        };
        self.buf = buf;
        result
    }

    fn stream(&mut self, head: &[u8], reader: &mut dyn Read, scratch: &mut [u8]) -> Result<Hash> {
        let tmp = temp_path(&self.store.dir.join(TMP), "obj");
        let mut hasher = Hasher::new();
        hasher.update(head);
        let copied: io::Result<()> = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(head)?;
            loop {
                let n = match reader.read(scratch) {
                    Ok(0) => return Ok(()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io::Error::new(e.kind(), format!("reading input: {e}"))),
                };
                hasher.update(&scratch[..n]);
                f.write_all(&scratch[..n])?;
            }
        })();
        let h = hasher.finish();
        if let Err(e) = copied {
            let _ = fs::remove_file(&tmp);
            return Err(io_err("write", &tmp)(e));
        }
        if self.seen.contains(&h) || self.store.contains(&h) {
            let _ = fs::remove_file(&tmp);
        } else {
            self.staged.push((tmp, h));
        }
        self.seen.insert(h);
        self.hashes.push(h);
        Ok(h)
    }

    /// Hashes of everything put so far, in order (duplicates included).
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Make every staged object durable, then visible under its name, then recorded in
    /// the ledger. Small batches sync file by file; larger ones sync the file system
    /// once before and once after the renames.
    pub fn commit(mut self) -> Result<Vec<Hash>> {
        let staged = std::mem::take(&mut self.staged);
        if staged.is_empty() {
            return Ok(std::mem::take(&mut self.hashes));
        }
        // A whole-file-system sync also waits for other processes' dirty pages, so
        // small batches sync their own files instead.
        let per_file = staged.len() <= 8;
        let result = self.publish(&staged, per_file);
        if result.is_err() {
            for (tmp, _) in &staged {
                let _ = fs::remove_file(tmp);
            }
        }
        result?;
        Ok(std::mem::take(&mut self.hashes))
    }

    fn publish(&self, staged: &[(PathBuf, Hash)], per_file: bool) -> Result<()> {
        let dir = &self.store.dir;
        if per_file {
            for (tmp, _) in staged {
                File::open(tmp)
                    .and_then(|f| f.sync_all())
                    .map_err(io_err("sync", tmp))?;
            }
        } else {
            sync_filesystem(dir)?;
        }
        let mut dirs = HashSet::new();
        let mut ledger = String::with_capacity(staged.len() * 65);
        for (tmp, h) in staged {
            let dest = ObjectStore::path_in(dir, h);
            let parent = dest.parent().unwrap_or(dir).to_path_buf();
            if let Err(e) = fs::rename(tmp, &dest) {
                if e.kind() != io::ErrorKind::NotFound {
                    return Err(io_err("rename into place", &dest)(e));
                }
                fs::create_dir_all(&parent).map_err(io_err("create", &parent))?;
                fs::rename(tmp, &dest).map_err(io_err("rename into place", &dest))?;
            }
            dirs.insert(parent);
            ledger.push_str(&h.hex());
            ledger.push('\n');
        }
        let ledger_path = self.store.ledger_path();
        let mut lf = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&ledger_path)
            .map_err(io_err("open", &ledger_path))?;
        let before = lf.metadata().map_err(io_err("stat", &ledger_path))?.len();
        if let Err(e) = lf.write_all(ledger.as_bytes()) {
            // Never leave half a line: the objects are in place, merely unrecorded.
            let _ = lf.set_len(before);
            return Err(io_err("append", &ledger_path)(e));
        }
        if per_file {
            for d in &dirs {
                sync_dir(d)?;
            }
            lf.sync_data().map_err(io_err("sync", &ledger_path))?;
        } else {
            sync_filesystem(dir)?;
        }
        Ok(())
    }
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        for (tmp, _) in &self.staged {
            let _ = fs::remove_file(tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, ObjectStore) {
        let d = tempfile::tempdir().unwrap();
        let s = ObjectStore::create(&d.path().join("objects"), &[]).unwrap();
        (d, s)
    }

    #[test]
    fn put_get_round_trip_and_dedup() {
        let (_d, s) = store();
        let h = s.put_bytes(b"hello").unwrap();
        assert_eq!(h, Hash::of(b"hello"));
        assert_eq!(s.get(&h).unwrap(), b"hello");
        assert_eq!(s.put_bytes(b"hello").unwrap(), h);
        assert_eq!(s.read_ledger().unwrap().len(), 1);
        let t: Vec<_> = fs::read_dir(s.dir().join(TMP)).unwrap().collect();
        assert!(t.is_empty(), "temp files left behind");
    }

    #[test]
    fn json_is_stored_canonically() {
        let (_d, s) = store();
        let v: serde_json::Value = serde_json::from_str(r#"{ "b": 2, "a": 1 }"#).unwrap();
        let h = s.put_json(&v).unwrap();
        assert_eq!(s.get(&h).unwrap(), br#"{"a":1,"b":2}"#);
    }

    #[test]
    fn streaming_put_matches_whole_put() {
        let (_d, s) = store();
        let data: Vec<u8> = (0..3 * CHUNK + 17).map(|i| (i * 7 % 251) as u8).collect();
        let h = s.put_reader(&data[..]).unwrap();
        assert_eq!(h, Hash::of(&data));
        let mut out = Vec::new();
        s.copy_to(&h, &mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn corrupt_object_is_refused() {
        let (_d, s) = store();
        let h = s.put_bytes(b"precious").unwrap();
        fs::write(ObjectStore::path_in(s.dir(), &h), b"tampered").unwrap();
        assert!(matches!(s.get(&h), Err(Error::ObjectCorrupt { .. })));
        assert!(matches!(
            s.copy_to(&h, &mut Vec::new()),
            Err(Error::ObjectCorrupt { .. })
        ));
    }

    #[test]
    fn resolves_prefixes() {
        let (_d, s) = store();
        let h = s.put_bytes(b"one").unwrap();
        assert_eq!(s.resolve(&h.to_string()).unwrap(), h);
        assert_eq!(s.resolve(&h.hex()[..8]).unwrap(), h);
        assert_eq!(s.resolve(&format!("blake3:{}", &h.hex()[..6])).unwrap(), h);
        assert!(matches!(s.resolve("abc"), Err(Error::Invalid(_))));
        assert!(matches!(
            s.resolve(&Hash::of(b"x").to_string()),
            Err(Error::ObjectNotFound { .. })
        ));
    }

    #[test]
    fn alternates_are_read_but_never_written() {
        let (d, a) = store();
        let h = a.put_bytes(b"shared").unwrap();
        let b = ObjectStore::create(&d.path().join("b"), &[a.dir().to_path_buf()]).unwrap();
        assert_eq!(b.get(&h).unwrap(), b"shared");
        b.put_bytes(b"shared").unwrap();
        assert!(!ObjectStore::path_in(b.dir(), &h).exists());
        let h2 = b.put_bytes(b"own").unwrap();
        assert!(!a.contains(&h2));
    }

    #[test]
    fn large_batches_commit_together() {
        let (_d, s) = store();
        let mut b = s.batch();
        for i in 0..50u32 {
            b.put_bytes(&i.to_le_bytes()).unwrap();
        }
        b.put_bytes(&0u32.to_le_bytes()).unwrap();
        let hashes = b.commit().unwrap();
        assert_eq!(hashes.len(), 51);
        assert_eq!(s.read_ledger().unwrap().len(), 50);
        for h in hashes {
            s.get(&h).unwrap();
        }
    }
}
