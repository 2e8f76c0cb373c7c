//! `aos air diff A B` and the manifest diff of a shadow report: what changed between
//! two AIR sets.
//!
//! Defs are matched by (kind, name). A def present in both is *changed* when its
//! canonical hash ([`def_hash`]) differs — authoring differences that canonicalize to
//! the same form (key order, lens, comments, placeholders) are not changes. Each
//! changed def comes with a unified diff (3 lines of context) of the two canonical
//! forms, laid out by [`crate::fmt`] so the diff reads like the sources.
//!
//! A new version of a def (`demo/plan@1` removed, `demo/plan@2` added, same kind) is
//! listed as removed and added, and additionally paired in `upgraded` with a diff of
//! the two versions, because that is how AIR expresses an upgrade.
//!
//! The manifest is compared by its own content (the listed names, defaults, module
//! bindings, routing, triggers) without the per-def hashes it pins, which the def
//! changes already show; the assembled manifest hashes of both sides are reported too.

use std::collections::BTreeMap;

use aos_store::Hash;
use serde::Serialize;
use serde_json::Value;

use crate::assemble::{assemble, def_hash, manifest_json};
use crate::fmt::format_json;
use crate::load::AirSet;
use crate::model::{DefKind, Manifest};
use crate::name::Name;

/// A def named by kind and name, with its canonical hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DefRef {
    /// `defschema`, `defplan`, ...
    pub kind: String,
    pub name: String,
    pub hash: Hash,
}

/// A def present on both sides with a different canonical hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangedDef {
    pub kind: String,
    pub name: String,
    pub old_hash: Hash,
    pub new_hash: Hash,
    /// Unified diff of the two canonical forms (formatted), 3 lines of context.
    pub unified: String,
}

/// A def whose old version was removed and a new version added (same kind, same
/// `namespace/name`, different `@version`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UpgradedDef {
    pub kind: String,
    pub old_name: String,
    pub new_name: String,
    pub old_hash: Hash,
    pub new_hash: Hash,
    pub unified: String,
}

/// The difference between two AIR sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AirDiff {
    pub added: Vec<DefRef>,
    pub removed: Vec<DefRef>,
    pub changed: Vec<ChangedDef>,
    /// Pairs of `removed` and `added` that are versions of one def (informational;
    /// they are also listed in `removed` and `added`).
    pub upgraded: Vec<UpgradedDef>,
    /// The manifest's own content differs (or one side has no manifest).
    pub manifest_changed: bool,
    /// Unified diff of the two manifests' content (def hashes left out).
    pub manifest_diff: Option<String>,
    /// Assembled manifest hashes (None where the side has no manifest or it does not
    /// assemble).
    pub old_manifest_hash: Option<Hash>,
    pub new_manifest_hash: Option<Hash>,
}

impl AirDiff {
    /// True when nothing differs: no def added, removed or changed, same manifest.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && !self.manifest_changed
    }
}

/// Compare two AIR sets. Never fails: sets that do not assemble are still compared
/// def by def (their manifest hashes are then `None`).
pub fn diff(old: &AirSet, new: &AirSet) -> AirDiff {
    // Assemble each side once: it yields the manifest hash and the hash of every listed
    // def, so only unlisted defs are hashed again below.
    let assembled = |s: &AirSet| match assemble(s) {
        (Some(a), d) if !crate::diag::has_errors(&d) => (Some(a.manifest_hash), a.defs),
        (Some(a), _) => (None, a.defs),
        (None, _) => (None, BTreeMap::new()),
    };
    let (old_manifest_hash, old_hashes) = assembled(old);
    let (new_manifest_hash, new_hashes) = assembled(new);
    let hash_in = |set: &AirSet,
                   hashes: &BTreeMap<(DefKind, Name), (Hash, Value)>,
                   key: &(DefKind, Name),
                   def: &crate::model::Def| {
        hashes
            .get(key)
            .map(|(h, _)| *h)
            .unwrap_or_else(|| def_hash(set, def))
    };
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut changed = Vec::new();
    for ((kind, name), o) in &old.defs {
        let oh = hash_in(old, &old_hashes, &(*kind, name.clone()), &o.item);
        match new.defs.get(&(*kind, name.clone())) {
            None => removed.push(def_ref(*kind, name, oh)),
            Some(n) => {
                let nh = hash_in(new, &new_hashes, &(*kind, name.clone()), &n.item);
                if nh != oh {
                    let label = format!("{} {name}", kind.as_str());
                    changed.push(ChangedDef {
                        kind: kind.as_str().into(),
                        name: name.to_string(),
                        old_hash: oh,
                        new_hash: nh,
                        unified: unified(
                            &format_json(&o.item.to_json()),
                            &format_json(&n.item.to_json()),
                            &label,
                            &label,
                        ),
                    });
                }
            }
        }
    }
    for ((kind, name), n) in &new.defs {
        if !old.defs.contains_key(&(*kind, name.clone())) {
            added.push(def_ref(
                *kind,
                name,
                hash_in(new, &new_hashes, &(*kind, name.clone()), &n.item),
            ));
        }
    }
    let upgraded = upgrades(old, new, &added, &removed);

    let old_shape = old.manifest.as_ref().map(|m| manifest_shape(old, &m.item));
    let new_shape = new.manifest.as_ref().map(|m| manifest_shape(new, &m.item));
    let manifest_changed = old_shape != new_shape;
    let manifest_diff = manifest_changed.then(|| {
        let text = |s: &Option<Value>| s.as_ref().map(format_json).unwrap_or_default();
        unified(&text(&old_shape), &text(&new_shape), "manifest", "manifest")
    });
    AirDiff {
        added,
        removed,
        changed,
        upgraded,
        manifest_changed,
        manifest_diff,
        old_manifest_hash,
        new_manifest_hash,
    }
}

fn def_ref(kind: DefKind, name: &Name, hash: Hash) -> DefRef {
    DefRef {
        kind: kind.as_str().into(),
        name: name.to_string(),
        hash,
    }
}

/// `namespace/name` without the version, and the version number.
fn unversioned(name: &str) -> (&str, u64) {
    match name.rsplit_once('@') {
        Some((base, v)) => (base, v.parse().unwrap_or(0)),
        None => (name, 0),
    }
}

/// Pair each added def with the highest removed version of the same kind and base
/// name that is lower than its own.
fn upgrades(old: &AirSet, new: &AirSet, added: &[DefRef], removed: &[DefRef]) -> Vec<UpgradedDef> {
    let mut by_base: BTreeMap<(&str, &str), Vec<&DefRef>> = BTreeMap::new();
    for r in removed {
        by_base
            .entry((r.kind.as_str(), unversioned(&r.name).0))
            .or_default()
            .push(r);
    }
    let mut out = Vec::new();
    for a in added {
        let (base, version) = unversioned(&a.name);
        let Some(candidates) = by_base.get(&(a.kind.as_str(), base)) else {
            continue;
        };
        let Some(r) = candidates
            .iter()
            .filter(|r| unversioned(&r.name).1 < version)
            .max_by_key(|r| unversioned(&r.name).1)
        else {
            continue;
        };
        let text = |set: &AirSet, name: &str| {
            let key = DefKind::parse(&a.kind).zip(Name::parse(name).ok());
            key.and_then(|(k, n)| set.get(k, &n))
                .map(|d| format_json(&d.to_json()))
                .unwrap_or_default()
        };
        out.push(UpgradedDef {
            kind: a.kind.clone(),
            old_name: r.name.clone(),
            new_name: a.name.clone(),
            old_hash: r.hash,
            new_hash: a.hash,
            unified: unified(
                &text(old, &r.name),
                &text(new, &a.name),
                &format!("{} {}", a.kind, r.name),
                &format!("{} {}", a.kind, a.name),
            ),
        });
    }
    out
}

/// The manifest's content as compared and diffed: its canonical form (grant params in
/// canonical form, whichever lens they were written in) with the per-def hashes left out.
fn manifest_shape(set: &AirSet, m: &Manifest) -> Value {
    let mut m = m.clone();
    crate::assemble::canonicalize_grants(set, &mut m);
    let mut v = manifest_json(&m, &BTreeMap::new());
    if let Value::Object(o) = &mut v {
        for kind in DefKind::ALL.into_iter().filter(|k| *k != DefKind::Manifest) {
            if let Some(Value::Array(list)) = o.get_mut(kind.manifest_key()) {
                for r in list {
                    if let Value::Object(r) = r {
                        r.remove("hash");
                    }
                }
            }
        }
    }
    v
}

/// A unified diff (3 lines of context) with `--- old <label>` / `+++ new <label>`.
fn unified(old: &str, new: &str, old_label: &str, new_label: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("old {old_label}"), &format!("new {new_label}"))
        .to_string()
}

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const CYAN: &str = "\x1b[36m";
const YELLOW: &str = "\x1b[33m";

/// Human-readable rendering: a summary of added, removed and changed defs, then the
/// diff of each changed or upgraded def and of the manifest. With `color`, ANSI colors
/// like `git diff` (bold headers, cyan hunk headers, red `-` and green `+` lines).
pub fn render_text(d: &AirDiff, color: bool) -> String {
    let paint = |code: &str, s: &str| {
        if color {
            format!("{code}{s}{RESET}")
        } else {
            s.to_string()
        }
    };
    let mut out = String::new();
    if d.is_empty() {
        out.push_str("no differences\n");
        return out;
    }
    for r in &d.added {
        out.push_str(&paint(GREEN, &format!("added    {} {}", r.kind, r.name)));
        out.push_str(&format!("  {}\n", r.hash.short()));
    }
    for r in &d.removed {
        out.push_str(&paint(RED, &format!("removed  {} {}", r.kind, r.name)));
        out.push_str(&format!("  {}\n", r.hash.short()));
    }
    for c in &d.changed {
        out.push_str(&paint(YELLOW, &format!("changed  {} {}", c.kind, c.name)));
        out.push_str(&format!(
            "  {} -> {}\n",
            c.old_hash.short(),
            c.new_hash.short()
        ));
    }
    for u in &d.upgraded {
        out.push_str(&paint(
            YELLOW,
            &format!("upgraded {} {} -> {}", u.kind, u.old_name, u.new_name),
        ));
        out.push('\n');
    }
    if d.manifest_changed {
        out.push_str(&paint(YELLOW, "changed  manifest"));
        out.push('\n');
    }
    if d.old_manifest_hash != d.new_manifest_hash {
        let show = |h: &Option<Hash>| {
            h.map_or_else(|| "(does not assemble)".to_string(), |h| h.to_string())
        };
        out.push_str(&format!(
            "manifest hash {} -> {}\n",
            show(&d.old_manifest_hash),
            show(&d.new_manifest_hash)
        ));
    }
    let diffs = d
        .changed
        .iter()
        .map(|c| &c.unified)
        .chain(d.upgraded.iter().map(|u| &u.unified))
        .chain(d.manifest_diff.iter());
    for text in diffs {
        out.push('\n');
        for line in text.lines() {
            let styled = if line.starts_with("---") || line.starts_with("+++") {
                paint(BOLD, line)
            } else if line.starts_with("@@") {
                paint(CYAN, line)
            } else if line.starts_with('-') {
                paint(RED, line)
            } else if line.starts_with('+') {
                paint(GREEN, line)
            } else {
                line.to_string()
            };
            out.push_str(&styled);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{load, Source};

    fn set(files: &[(&str, &str)]) -> AirSet {
        let sources: Vec<Source> = files
            .iter()
            .map(|(n, t)| Source {
                name: (*n).into(),
                bytes: t.as_bytes().to_vec(),
            })
            .collect();
        let (s, d) = load(&sources);
        assert!(!crate::diag::has_errors(&d), "{d:?}");
        s
    }

    const M: &str = r#"{"$kind":"manifest","air_version":"1","schemas":[{"name":"demo/A@1"},{"name":"demo/B@1"}]}"#;

    #[test]
    fn added_removed_changed_and_rendering() {
        let a = set(&[
            (
                "s.air.json",
                r#"[{"$kind":"defschema","name":"demo/A@1","type":{"nat":{}}},{"$kind":"defschema","name":"demo/B@1","type":{"text":{}}}]"#,
            ),
            ("m.air.json", M),
        ]);
        let b = set(&[
            (
                "s.air.json",
                r#"[{"$kind":"defschema","name":"demo/A@1","type":{"int":{}}},{"$kind":"defschema","name":"demo/B@2","type":{"text":{}}}]"#,
            ),
            ("m.air.json", &M.replace("B@1", "B@2")),
        ]);
        let d = diff(&a, &b);
        assert_eq!(
            d.added.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["demo/B@2"]
        );
        assert_eq!(
            d.removed
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>(),
            ["demo/B@1"]
        );
        assert_eq!(d.changed.len(), 1);
        assert!(
            d.changed[0]
                .unified
                .contains("-  \"type\": { \"nat\": {} }\n+  \"type\": { \"int\": {} }"),
            "{}",
            d.changed[0].unified
        );
        assert_eq!(d.upgraded.len(), 1);
        assert!(d.manifest_changed);
        assert!(d
            .manifest_diff
            .as_deref()
            .unwrap()
            .contains("+    { \"name\": \"demo/B@2\" }"));
        assert!(!d.is_empty());
        let plain = render_text(&d, false);
        assert!(plain.contains("changed  defschema demo/A@1"), "{plain}");
        assert!(!plain.contains('\x1b'));
        let colored = render_text(&d, true);
        assert!(colored.contains("\x1b[31m-  \"type\""), "{colored}");
        serde_json::to_value(&d).unwrap();
        assert!(diff(&a, &a).is_empty());
        assert_eq!(render_text(&diff(&a, &a), true), "no differences\n");
    }
}
