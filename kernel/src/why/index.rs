//! The why index: a cache under `.aos/cache/why/` of what a provenance query needs
//! without scanning the journal — every cause link as a fixed-width (parent, child)
//! pair in child order, intent hash → seq, (reducer, key) → latest step, governance
//! id → records. Never authoritative: it names the journal head it covers (seq and
//! hash) and the blake3 of its binary files; anything that does not match is rebuilt,
//! and a journal that grew is indexed from the covered head on.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use aos_store::journal::{parse_line, Journal, Record};
use aos_store::Hash;
use serde_json::{json, Map, Value};

use super::WhyError;
use crate::records::{EFFECT_INTENT, REDUCER_STEPPED};

const VERSION: u64 = 1;
const EDGE: usize = 16;
const INTENT: usize = 40;
/// Governance record kinds, indexed by `body.id`.
pub const GOVERNANCE: &[&str] = &[
    "proposed",
    "shadow_report",
    "approved",
    "rejected",
    "applied",
];

/// The index as loaded: lookups in memory, edges and intents on disk.
#[derive(Debug)]
pub struct WhyIndex {
    dir: PathBuf,
    /// Records `0..covered` are indexed.
    covered: u64,
    edges: u64,
    intents: u64,
    reducers: BTreeMap<String, u64>,
    governance: BTreeMap<u64, Vec<u64>>,
    /// Whether this open rebuilt the index from scratch (for benchmarks and tests).
    pub rebuilt: bool,
    /// An exclusive lock on `lock` in the index directory, held while the index is in
    /// use: two `aos why` at once take turns instead of one rebuilding the files the
    /// other is reading.
    _guard: Option<fs::File>,
}

fn reducer_slot(reducer: &str, key: Option<&Value>) -> String {
    match key {
        None => reducer.to_string(),
        Some(k) => {
            let canon = aos_store::canon::value_to_vec(k)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|_| k.to_string());
            format!("{reducer}\u{0}{canon}")
        }
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> WhyError + '_ {
    move |e| WhyError::Cache(format!("{}: {e}", path.display()))
}

fn file_hash(path: &Path) -> Result<Hash, WhyError> {
    let mut f = fs::File::open(path).map_err(io(path))?;
    let mut h = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Hash(*h.finalize().as_bytes()))
}

impl WhyIndex {
    /// The index of `journal` in `dir`, loaded if it matches a prefix of the journal,
    /// extended to the journal's head, and rebuilt when it is missing or does not match.
    /// The directory must be writable (a world on read-only media gets a cache error
    /// naming the path).
    pub fn open(dir: &Path, journal: &Journal) -> Result<WhyIndex, WhyError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join("lock");
        let guard = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        // Wait for another user of the index, but not forever (a holder in this very
        // process, or a stuck one, gets an error naming the lock, not a hang).
        let started = std::time::Instant::now();
        loop {
            match guard.try_lock() {
                Ok(()) => break,
                Err(fs::TryLockError::WouldBlock)
                    if started.elapsed() < std::time::Duration::from_secs(10) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(fs::TryLockError::WouldBlock) => {
                    return Err(WhyError::Cache(format!(
                        "{}: still held by another user of the index after 10 s",
                        lock_path.display()
                    )))
                }
                Err(fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
            }
        }
        let loaded = Self::load(dir, journal).filter(|ix| ix.covered <= journal.len());
        let mut ix = match loaded {
            Some(ix) => ix,
            None => Self::fresh(dir)?,
        };
        ix._guard = Some(guard);
        if ix.covered < journal.len() {
            ix.extend(journal)?;
        }
        Ok(ix)
    }

    fn fresh(dir: &Path) -> Result<WhyIndex, WhyError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        for name in ["edges", "intents"] {
            let p = dir.join(name);
            fs::write(&p, b"").map_err(io(&p))?;
        }
        Ok(WhyIndex {
            dir: dir.to_path_buf(),
            covered: 0,
            edges: 0,
            intents: 0,
            reducers: BTreeMap::new(),
            governance: BTreeMap::new(),
            rebuilt: true,
            _guard: None,
        })
    }

    /// The stored index, if its metadata parses, its head matches the journal and its
    /// files have the recorded lengths and hashes.
    fn load(dir: &Path, journal: &Journal) -> Option<WhyIndex> {
        let doc: Value = serde_json::from_slice(&fs::read(dir.join("meta.json")).ok()?).ok()?;
        if doc.get("version")?.as_u64()? != VERSION {
            return None;
        }
        let covered = doc.get("covered")?.as_u64()?;
        if covered > 0 {
            let head: Hash = doc.get("head")?.as_str()?.parse().ok()?;
            let (_, actual) = journal.read(covered - 1).ok()?;
            if actual != head {
                return None;
            }
        }
        let edges = doc.get("edges")?.as_u64()?;
        let intents = doc.get("intents")?.as_u64()?;
        for (name, count, width) in [("edges", edges, EDGE), ("intents", intents, INTENT)] {
            let p = dir.join(name);
            if fs::metadata(&p).ok()?.len() != count * width as u64 {
                return None;
            }
            let want: Hash = doc.get(format!("{name}_hash"))?.as_str()?.parse().ok()?;
            if file_hash(&p).ok()? != want {
                return None;
            }
        }
        let mut reducers = BTreeMap::new();
        for (k, v) in doc.get("reducers")?.as_object()? {
            reducers.insert(k.clone(), v.as_u64()?);
        }
        let mut governance = BTreeMap::new();
        for (k, v) in doc.get("governance")?.as_object()? {
            let seqs: Option<Vec<u64>> = v.as_array()?.iter().map(Value::as_u64).collect();
            governance.insert(k.parse().ok()?, seqs?);
        }
        Some(WhyIndex {
            dir: dir.to_path_buf(),
            covered,
            edges,
            intents,
            reducers,
            governance,
            rebuilt: false,
            _guard: None,
        })
    }

    /// Index records `covered..` and write the files (the binary files first, the
    /// metadata that vouches for them last, atomically).
    fn extend(&mut self, journal: &Journal) -> Result<(), WhyError> {
        let mut edges = Vec::new();
        let mut intents = Vec::new();
        let mut it = journal.iter_from(self.covered)?;
        while let Some(item) = it.next_line() {
            let (seq, offset, line) = item?;
            let rec = parse_line(journal.path(), seq, offset, line)?;
            self.add(&rec, &mut edges, &mut intents);
        }
        self.covered = journal.len();
        self.edges += (edges.len() / EDGE) as u64;
        self.intents += (intents.len() / INTENT) as u64;
        for (name, bytes) in [("edges", &edges), ("intents", &intents)] {
            let p = self.dir.join(name);
            let mut f = fs::OpenOptions::new()
                .append(true)
                .open(&p)
                .map_err(io(&p))?;
            f.write_all(bytes).map_err(io(&p))?;
        }
        self.write_meta(journal)
    }

    fn add(&mut self, rec: &Record, edges: &mut Vec<u8>, intents: &mut Vec<u8>) {
        for &c in &rec.cause {
            edges.extend_from_slice(&c.to_le_bytes());
            edges.extend_from_slice(&rec.seq.to_le_bytes());
        }
        let body = &rec.body;
        match rec.kind.as_str() {
            EFFECT_INTENT => {
                let hash = body.get("intent_hash").and_then(Value::as_str);
                if let Some(h) = hash.and_then(|s| s.parse::<Hash>().ok()) {
                    intents.extend_from_slice(&h.0);
                    intents.extend_from_slice(&rec.seq.to_le_bytes());
                }
            }
            REDUCER_STEPPED => {
                if let Some(r) = body.get("reducer").and_then(Value::as_str) {
                    let key = body.get("key").filter(|k| !k.is_null());
                    self.reducers.insert(reducer_slot(r, key), rec.seq);
                }
            }
            k if GOVERNANCE.contains(&k) => {
                if let Some(id) = body.get("id").and_then(number) {
                    self.governance.entry(id).or_default().push(rec.seq);
                }
            }
            _ => {}
        }
    }

    fn write_meta(&self, journal: &Journal) -> Result<(), WhyError> {
        let head = match self.covered {
            0 => Value::Null,
            n => json!(journal.read(n - 1)?.1),
        };
        let reducers: Map<String, Value> = self
            .reducers
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let governance: Map<String, Value> = self
            .governance
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        let doc = json!({
            "version": VERSION,
            "covered": self.covered,
            "head": head,
            "edges": self.edges,
            "intents": self.intents,
            "edges_hash": file_hash(&self.dir.join("edges"))?,
            "intents_hash": file_hash(&self.dir.join("intents"))?,
            "reducers": reducers,
            "governance": governance,
        });
        let path = self.dir.join("meta.json");
        let tmp = aos_store::durable::temp_path(&self.dir, "meta.json");
        let bytes = serde_json::to_vec(&doc).map_err(|e| WhyError::Cache(e.to_string()))?;
        fs::write(&tmp, bytes).map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))
    }

    /// Records `0..covered()` are indexed.
    pub fn covered(&self) -> u64 {
        self.covered
    }

    /// The `effect_intent` record of an intent hash.
    pub fn intent(&self, hash: &Hash) -> Result<Option<u64>, WhyError> {
        let p = self.dir.join("intents");
        let bytes = fs::read(&p).map_err(io(&p))?;
        Ok(bytes.chunks_exact(INTENT).find_map(|e| {
            (e[..32] == hash.0).then(|| u64::from_le_bytes(e[32..].try_into().unwrap_or([0; 8])))
        }))
    }

    /// The latest `reducer_stepped` of a reducer (of one cell when `key` is given).
    pub fn reducer(&self, reducer: &str, key: Option<&Value>) -> Option<u64> {
        self.reducers.get(&reducer_slot(reducer, key)).copied()
    }

    /// The reducers (with their cells) that have stepped, for hints.
    pub fn reducer_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .reducers
            .keys()
            .map(|k| k.split('\u{0}').next().unwrap_or(k).to_string())
            .collect();
        names.dedup();
        names
    }

    /// The governance records of proposal `id`, oldest first.
    pub fn governance(&self, id: u64) -> &[u64] {
        self.governance.get(&id).map_or(&[], Vec::as_slice)
    }

    /// Every record caused, transitively, by `target`, with its distance from it (at most
    /// `depth`), and the cause links among them, found in one pass over the edges after
    /// the target (a cause always precedes what it causes).
    pub fn forward(&self, target: u64, depth: u64) -> Result<Consequences, WhyError> {
        let p = self.dir.join("edges");
        let mut f = fs::File::open(&p).map_err(io(&p))?;
        // The first edge whose child is after the target (edges are in child order).
        let (mut lo, mut hi) = (0u64, self.edges);
        let mut pair = [0u8; EDGE];
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            f.read_exact_at(&mut pair, mid * EDGE as u64)
                .map_err(io(&p))?;
            let child = u64::from_le_bytes(pair[8..].try_into().unwrap_or([0; 8]));
            if child <= target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        f.seek(SeekFrom::Start(lo * EDGE as u64)).map_err(io(&p))?;
        let mut rest = Vec::new();
        f.read_to_end(&mut rest).map_err(io(&p))?;
        let mut level: BTreeMap<u64, u64> = BTreeMap::from([(target, 0)]);
        let mut links = Vec::new();
        let mut cut = std::collections::BTreeSet::new();
        for e in rest.chunks_exact(EDGE) {
            let parent = u64::from_le_bytes(e[..8].try_into().unwrap_or([0; 8]));
            if parent < target {
                continue;
            }
            let child = u64::from_le_bytes(e[8..].try_into().unwrap_or([0; 8]));
            if let Some(&d) = level.get(&parent) {
                if d >= depth {
                    cut.insert(parent);
                    continue;
                }
                links.push((parent, child));
                let entry = level.entry(child).or_insert(d + 1);
                *entry = (*entry).min(d + 1);
            }
        }
        Ok(Consequences { level, links, cut })
    }
}

/// What [`WhyIndex::forward`] found.
#[derive(Debug)]
pub struct Consequences {
    /// Each record reached and its distance from the target.
    pub level: BTreeMap<u64, u64>,
    /// (cause, consequence) links among them, in journal order of the consequence.
    pub links: Vec<(u64, u64)>,
    /// Records at the depth limit that have consequences beyond it.
    pub cut: std::collections::BTreeSet<u64>,
}

/// A non-negative integer in either JSON form (number, or decimal string).
pub fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}
