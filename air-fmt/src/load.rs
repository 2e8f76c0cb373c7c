//! Loading AIR sources: files holding one node or an array of nodes, parsed into an
//! [`AirSet`] with every node remembering its file and position. The caller reads the
//! files; this module only sees names and bytes. Duplicate names per kind and more than
//! one manifest are errors; every problem in every file is reported.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::diag::Diagnostic;
use crate::json::strip_comments;
use crate::model::{parse_node, Def, DefKind, Manifest, Node};
use crate::name::Name;

/// One input file: a display name (usually its path) and its bytes.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Where a node came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub file: String,
    /// JSON pointer of the node inside its file (`""` or `/3` for arrays).
    pub pointer: String,
}

/// A node and its origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Located<T> {
    pub item: T,
    pub origin: Origin,
    /// The node as authored (comments stripped), for diffs and formatting.
    pub raw: Value,
}

/// A set of AIR definitions and at most one manifest.
#[derive(Debug, Clone, Default)]
pub struct AirSet {
    pub defs: BTreeMap<(DefKind, Name), Located<Def>>,
    pub manifest: Option<Located<Manifest>>,
    /// Defs that exist in the sources but failed to parse. Their errors are reported
    /// where they are defined; references to them are not reported again.
    pub broken: BTreeSet<(DefKind, Name)>,
}

impl AirSet {
    pub fn get(&self, kind: DefKind, name: &Name) -> Option<&Def> {
        self.defs.get(&(kind, name.clone())).map(|l| &l.item)
    }

    /// Defs of one kind, by name (a range scan, not a walk over every def).
    pub fn of_kind(&self, kind: DefKind) -> impl Iterator<Item = &Located<Def>> {
        self.defs
            .range((kind, Name::lowest())..)
            .take_while(move |((k, _), _)| *k == kind)
            .map(|(_, v)| v)
    }

    /// True when a def of this kind and name exists, parsed or not.
    pub fn mentions(&self, kind: DefKind, name: &Name) -> bool {
        self.broken.contains(&(kind, name.clone())) || self.defs.contains_key(&(kind, name.clone()))
    }

    /// Insert a def (replacing one of the same kind and name).
    pub fn insert(&mut self, def: Located<Def>) {
        self.defs
            .insert((def.item.kind(), def.item.name().clone()), def);
    }
}

/// Parse every source into one set. Diagnostics carry the file and, when known, the
/// def name, with pointers relative to the def.
pub fn load(sources: &[Source]) -> (AirSet, Vec<Diagnostic>) {
    let mut set = AirSet::default();
    let mut diags = Vec::new();
    for src in sources {
        let mut value: Value = match serde_json::from_slice(&src.bytes) {
            Ok(v) => v,
            Err(e) => {
                diags.push(
                    Diagnostic::error("bad_json", "", format!("not valid JSON: {e}"))
                        .in_file(&src.name)
                        .hint("fix the syntax at the line and column shown"),
                );
                continue;
            }
        };
        strip_comments(&mut value);
        let items: Vec<(String, Value)> = match value {
            Value::Array(a) => a
                .into_iter()
                .enumerate()
                .map(|(i, v)| (format!("/{i}"), v))
                .collect(),
            one => vec![(String::new(), one)],
        };
        for (pointer, item) in items {
            add_node(&mut set, &mut diags, &src.name, pointer, item);
        }
    }
    (set, diags)
}

fn add_node(
    set: &mut AirSet,
    diags: &mut Vec<Diagnostic>,
    file: &str,
    pointer: String,
    item: Value,
) {
    let mut d = Vec::new();
    let node = parse_node(&item, &mut d);
    let def_name = item.get("name").and_then(Value::as_str).map(str::to_string);
    let origin = Origin {
        file: file.to_string(),
        pointer: pointer.clone(),
    };
    for x in d {
        let x = x.in_file(file);
        let x = match &def_name {
            Some(n) => x.in_def(n),
            None if !pointer.is_empty() => x.under(&pointer),
            None => x,
        };
        diags.push(x);
    }
    match node {
        Some(Node::Def(def)) => {
            let key = (def.kind(), def.name().clone());
            if let Some(prev) = set.defs.get(&key) {
                diags.push(
                    Diagnostic::error(
                        "duplicate_def",
                        "/name",
                        format!("{} {} is defined twice", key.0.as_str(), key.1),
                    )
                    .in_file(file)
                    .in_def(key.1.as_str())
                    .hint(format!(
                        "the other definition is in {}{}",
                        prev.origin.file,
                        at(&prev.origin.pointer)
                    )),
                );
                return;
            }
            set.defs.insert(
                key,
                Located {
                    item: def,
                    origin,
                    raw: item,
                },
            );
        }
        Some(Node::Manifest(m)) => {
            if let Some(prev) = &set.manifest {
                diags.push(
                    Diagnostic::error(
                        "duplicate_manifest",
                        "",
                        "a second manifest; an AIR set has exactly one",
                    )
                    .in_file(file)
                    .under(&pointer)
                    .hint(format!(
                        "the first manifest is in {}{}",
                        prev.origin.file,
                        at(&prev.origin.pointer)
                    )),
                );
                return;
            }
            set.manifest = Some(Located {
                item: m,
                origin,
                raw: item,
            });
        }
        None => {
            let kind = item
                .get("$kind")
                .and_then(Value::as_str)
                .and_then(DefKind::parse);
            let name = def_name.as_deref().and_then(|n| Name::parse(n).ok());
            if let (Some(kind), Some(name)) = (kind, name) {
                set.broken.insert((kind, name));
            }
        }
    }
}

fn at(pointer: &str) -> String {
    if pointer.is_empty() {
        String::new()
    } else {
        format!(" at {pointer}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(name: &str, text: &str) -> Source {
        Source {
            name: name.into(),
            bytes: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn loads_arrays_and_single_nodes_and_reports_everything() {
        let (set, d) = load(&[
            src(
                "a.air.json",
                r#"[{"$kind":"defschema","name":"demo/A@1","type":{"nat":{}}},
                                  {"$kind":"defschema","name":"demo/B@1","type":{"flaot":{}}}]"#,
            ),
            src(
                "m.air.json",
                r#"{"$kind":"manifest","air_version":"1","schemas":[{"name":"demo/A@1"}]}"#,
            ),
            src(
                "dup.air.json",
                r#"{"$kind":"defschema","name":"demo/A@1","type":{"text":{}}}"#,
            ),
            src("bad.air.json", "{ nope"),
        ]);
        assert_eq!(set.defs.len(), 1);
        assert!(set.manifest.is_some());
        let codes: Vec<_> = d
            .iter()
            .map(|x| {
                (
                    x.code,
                    x.file.clone().unwrap_or_default(),
                    x.def.clone(),
                    x.pointer.clone(),
                )
            })
            .collect();
        assert!(
            codes.contains(&(
                "bad_type",
                "a.air.json".into(),
                Some("demo/B@1".into()),
                "/type".into()
            )),
            "{codes:?}"
        );
        assert!(
            codes
                .iter()
                .any(|c| c.0 == "duplicate_def" && c.1 == "dup.air.json"),
            "{codes:?}"
        );
        assert!(
            codes
                .iter()
                .any(|c| c.0 == "bad_json" && c.1 == "bad.air.json"),
            "{codes:?}"
        );
    }
}
