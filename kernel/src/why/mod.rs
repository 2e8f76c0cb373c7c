//! The why graph: provenance of any journal record through its `cause` links, back to
//! the roots that started it (injected events with who did it, plan starts by hand,
//! world creation and forks, governance decisions — an `applied` proposal brings its
//! proposal and approvals along) or forward to everything it caused. Targets are a seq,
//! an intent hash or a reducer (cell). Lookups and forward walks go through the
//! [`index::WhyIndex`] cache; backward walks read records by seq through the journal's
//! offset index, so a query costs what it shows, not the journal's length.
//! [`unrooted`] checks a whole journal: every record must trace back to a root.

pub mod index;
pub mod summary;

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use aos_store::journal::{parse_line, Journal, Record};
use aos_store::Hash;
use serde_json::{json, Value};

use crate::records::*;
use index::{number, WhyIndex};

/// Why a provenance query could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum WhyError {
    /// The target names nothing in this journal (the caller's mistake).
    #[error("{0}")]
    NotFound(String),
    /// The cache could not be read or written.
    #[error("why cache {0}")]
    Cache(String),
    #[error(transparent)]
    Store(#[from] aos_store::Error),
}

/// What a query starts from.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Seq(u64),
    Intent(Hash),
    Reducer {
        name: String,
        key: Option<Value>,
    },
    /// `blake3:` followed by something that is not 64 hex digits.
    BadHash(String),
}

impl Target {
    /// Read `SEQ`, `blake3:HEX` or bare 64-digit hex, or `REDUCER[/KEY]` where KEY is
    /// JSON, or a plain string when it is not valid JSON. A reducer name's own slash
    /// (`demo/CounterSM@1`) is not a key separator: the key starts at the first slash
    /// after the `@version`.
    pub fn parse(s: &str) -> Target {
        if let Ok(seq) = s.parse::<u64>() {
            return Target::Seq(seq);
        }
        let hex = s.strip_prefix("blake3:").unwrap_or(s);
        if let Some(h) = Hash::from_hex(hex) {
            return Target::Intent(h);
        }
        if s.starts_with("blake3:") {
            return Target::BadHash(s.to_string());
        }
        let split = s.find('@').and_then(|at| s[at..].find('/').map(|i| at + i));
        match split {
            Some(i) => {
                let raw = &s[i + 1..];
                let key = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.into()));
                Target::Reducer {
                    name: s[..i].to_string(),
                    key: Some(key),
                }
            }
            None => Target::Reducer {
                name: s.to_string(),
                key: None,
            },
        }
    }
}

/// The seq a target names.
pub fn resolve(journal: &Journal, ix: &WhyIndex, target: &Target) -> Result<u64, WhyError> {
    match target {
        Target::Seq(seq) if *seq < journal.len() => Ok(*seq),
        Target::Seq(seq) => Err(WhyError::NotFound(match journal.len() {
            0 => format!("no record with seq {seq}: the journal is empty"),
            n => format!(
                "no record with seq {seq}: the journal has seqs 0..={}; `aos log` lists them",
                n - 1
            ),
        })),
        Target::BadHash(s) => Err(WhyError::NotFound(format!(
            "{s:?} is not an intent hash: write blake3: and 64 hex digits (as `aos log --kind effect_intent` shows them)"
        ))),
        Target::Intent(h) => ix.intent(h)?.ok_or_else(|| {
            WhyError::NotFound(format!(
                "no effect_intent with intent hash {h}; `aos log --kind effect_intent` lists intents \
                 and `aos receipts ls` their receipts"
            ))
        }),
        Target::Reducer { name, key } => {
            ix.reducer(name, key.as_ref()).ok_or_else(|| {
                let cell = match key {
                    Some(k) => format!(" with key {k}"),
                    None => String::new(),
                };
                let known = ix.reducer_names();
                let hint = if known.is_empty() {
                    "no reducer has stepped yet".to_string()
                } else if key.is_none() && known.iter().any(|k| k == name) {
                    format!("{name} is keyed: name one of its cells as {name}/KEY (`aos cells {name}` lists them)")
                } else {
                    format!("reducers that stepped: {}", known.join(", "))
                };
                WhyError::NotFound(format!(
                    "no reducer_stepped record of reducer {name}{cell} (a keyed reducer's cell is \
                     REDUCER/KEY, e.g. notes/Notebook@1/\"n1\"); {hint}; `aos log --kind \
                     reducer_stepped` lists steps, or give a SEQ"
                ))
            })
        }
    }
}

/// One record in a why graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub seq: u64,
    pub kind: String,
    pub at_ns: u64,
    pub summary: String,
    pub cause: Vec<u64>,
    /// No cause: where provenance starts.
    pub root: bool,
    /// Distance from the target.
    pub depth: u64,
    /// Links not followed because of the depth limit.
    pub cut: bool,
}

/// A provenance graph around one target.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub target: u64,
    pub forward: bool,
    /// By seq.
    pub nodes: BTreeMap<u64, Node>,
    /// (cause, consequence) pairs among the nodes. Beyond `cause` links, an `applied`
    /// record is linked from its proposal's `proposed` and `approved` records.
    pub edges: Vec<(u64, u64)>,
}

impl Graph {
    pub fn roots(&self) -> Vec<u64> {
        self.nodes
            .values()
            .filter(|n| n.root)
            .map(|n| n.seq)
            .collect()
    }

    /// The nodes shown under `seq` in a tree: its causes (backward) or consequences.
    pub fn next(&self, seq: u64) -> Vec<u64> {
        let mut out: Vec<u64> = self
            .edges
            .iter()
            .filter_map(|&(from, to)| match self.forward {
                false if to == seq => Some(from),
                true if from == seq => Some(to),
                _ => None,
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The stable JSON document of `aos why --format json`.
    pub fn to_json(&self) -> Value {
        let nodes: Vec<Value> = self
            .nodes
            .values()
            .map(|n| {
                json!({
                    "seq": n.seq, "kind": n.kind, "at_ns": n.at_ns, "summary": n.summary,
                    "cause": n.cause, "root": n.root, "depth": n.depth, "cut": n.cut,
                })
            })
            .collect();
        let edges: Vec<Value> = self.edges.iter().map(|(a, b)| json!([a, b])).collect();
        json!({
            "target": self.target,
            "direction": if self.forward { "forward" } else { "back" },
            "nodes": nodes,
            "edges": edges,
            "roots": self.roots(),
        })
    }
}

fn node(rec: &Record, depth: u64) -> Node {
    Node {
        seq: rec.seq,
        kind: rec.kind.clone(),
        at_ns: rec.at_ns,
        summary: summary::summary(rec),
        cause: rec.cause.clone(),
        root: rec.cause.is_empty(),
        depth,
        cut: false,
    }
}

/// The governance records that vouch for an `applied` record: its proposal's `proposed`
/// and `approved` records before it.
fn approvals(journal: &Journal, ix: &WhyIndex, rec: &Record) -> Result<Vec<u64>, WhyError> {
    let Some(id) = rec.body.get("id").and_then(number) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    // The shadow reports that gated the apply: the latest of each kind that rehearsed
    // something (a later one of the same kind replaces an earlier one).
    let mut reports: BTreeMap<String, u64> = BTreeMap::new();
    for &g in ix.governance(id) {
        if g < rec.seq {
            let (r, _) = journal.read(g)?;
            match r.kind.as_str() {
                "proposed" | "approved" => out.push(g),
                "shadow_report" => {
                    let mode = r.body.get("mode").and_then(Value::as_str).unwrap_or("");
                    let kind = mode.split(':').next().unwrap_or("").to_string();
                    if kind != "diff" {
                        reports.insert(kind, g);
                    }
                }
                _ => {}
            }
        }
    }
    out.extend(reports.into_values());
    out.sort_unstable();
    Ok(out)
}

/// The `applied` record of the proposal a governance record belongs to, if applied.
fn applied_of(journal: &Journal, ix: &WhyIndex, rec: &Record) -> Result<Option<u64>, WhyError> {
    let Some(id) = rec.body.get("id").and_then(number) else {
        return Ok(None);
    };
    for &g in ix.governance(id) {
        if g > rec.seq && journal.read(g)?.0.kind == "applied" {
            return Ok(Some(g));
        }
    }
    Ok(None)
}

/// The causes of `target`, transitively, up to `depth` links away.
pub fn back(journal: &Journal, ix: &WhyIndex, target: u64, depth: u64) -> Result<Graph, WhyError> {
    let mut g = Graph {
        target,
        forward: false,
        nodes: BTreeMap::new(),
        edges: Vec::new(),
    };
    let mut queue = VecDeque::from([(target, 0u64)]);
    while let Some((seq, d)) = queue.pop_front() {
        if g.nodes.contains_key(&seq) {
            continue;
        }
        let (rec, _) = journal.read(seq)?;
        let mut n = node(&rec, d);
        let mut parents = rec.cause.clone();
        if rec.kind == "applied" {
            parents.extend(approvals(journal, ix, &rec)?);
        }
        if d >= depth {
            n.cut = !parents.is_empty();
        } else {
            for p in parents {
                // A cause that does not precede its record is damage `aos fsck` reports.
                if p < seq {
                    g.edges.push((p, seq));
                    queue.push_back((p, d + 1));
                }
            }
        }
        g.nodes.insert(seq, n);
    }
    g.edges.sort_unstable_by_key(|&(a, b)| (b, a));
    g.edges.dedup();
    Ok(g)
}

/// Everything `target` caused, transitively, up to `depth` links away.
pub fn forward(
    journal: &Journal,
    ix: &WhyIndex,
    target: u64,
    depth: u64,
) -> Result<Graph, WhyError> {
    let mut g = Graph {
        target,
        forward: true,
        nodes: BTreeMap::new(),
        edges: Vec::new(),
    };
    // A proposal's records lead to its `applied` record (linked through the governance
    // index, not cause links), and on from there.
    let (rec, _) = journal.read(target)?;
    let applied = match rec.kind.as_str() {
        "proposed" | "approved" | "shadow_report" => applied_of(journal, ix, &rec)?,
        _ => None,
    };
    let (start, offset) = match applied {
        Some(a) if depth > 0 => {
            g.nodes.insert(target, node(&rec, 0));
            g.edges.push((target, a));
            (a, 1)
        }
        Some(_) => {
            let mut n = node(&rec, 0);
            n.cut = true;
            g.nodes.insert(target, n);
            return Ok(g);
        }
        None => (target, 0),
    };
    let found = ix.forward(start, depth - offset)?;
    for (&seq, &d) in &found.level {
        let (rec, _) = journal.read(seq)?;
        g.nodes.insert(seq, node(&rec, d + offset));
    }
    for n in g.nodes.values_mut() {
        n.cut = found.cut.contains(&n.seq);
    }
    g.edges.extend(found.links);
    Ok(g)
}

/// Open the why index of a journal (in `cache_dir`, normally `.aos/cache/why`).
pub fn open_index(cache_dir: &Path, journal: &Journal) -> Result<WhyIndex, WhyError> {
    WhyIndex::open(cache_dir, journal)
}

/// Kinds a root may have: what a person or tool puts into a world.
const ROOT_KINDS: &[&str] = &[
    WORLD_CREATED,
    FORKED_FROM,
    DOMAIN_EVENT,
    PLAN_START,
    SNAPSHOT,
    crate::governance::PROPOSED,
    crate::governance::SHADOW_REPORT,
    crate::governance::APPROVED,
    crate::governance::REJECTED,
    crate::governance::APPLIED,
];

/// Whether a record without causes is a legitimate root: one of [`ROOT_KINDS`] (never a
/// kind that is always derived, nor one this kernel does not know), and a domain event
/// only when injected (it names its origin).
pub fn is_root(rec: &Record) -> bool {
    rec.cause.is_empty()
        && ROOT_KINDS.contains(&rec.kind.as_str())
        && (rec.kind != DOMAIN_EVENT || summary::origin(&rec.body).is_some())
}

/// Seqs of records without a path to a root: a cause-less record that is not a root, a
/// cause that is missing or does not precede its record, or a cause that is itself
/// unrooted. One pass, since causes precede what they cause.
pub fn unrooted(journal: &Journal) -> Result<Vec<u64>, WhyError> {
    let mut rooted = vec![false; journal.len() as usize];
    let mut bad = Vec::new();
    let mut it = journal.iter_from(0)?;
    while let Some(item) = it.next_line() {
        let (seq, offset, line) = item?;
        let rec = parse_line(journal.path(), seq, offset, line)?;
        let ok = if rec.cause.is_empty() {
            is_root(&rec)
        } else {
            rec.cause
                .iter()
                .all(|&c| c < seq && rooted.get(c as usize).copied().unwrap_or(false))
        };
        if let Some(r) = rooted.get_mut(seq as usize) {
            *r = ok;
        }
        if !ok {
            bad.push(seq);
        }
    }
    Ok(bad)
}

#[cfg(test)]
mod tests;
