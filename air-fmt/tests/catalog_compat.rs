//! The built-in catalog states the same facts as the original project's built-in
//! definitions (`spec/defs/*.air.json` in the AIR corpus, found at `$AOS_AIR_CORPUS` or
//! beside the repository in `../shared/air-corpus`): every def the catalog shares with
//! the corpus has the same canonical JSON, and every corpus `defschema` and `defeffect`
//! is in the catalog.

mod common;
use common::corpus;

use std::path::PathBuf;

use air_fmt::catalog;
use air_fmt::json::strip_comments;
use air_fmt::model::{parse_node, DefKind, Node};

/// Corpus defs the catalog deliberately does not carry (kind, name), with the reason
/// in the report. Empty: every built-in def of the original is here.
const LEFT_OUT: &[(&str, &str)] = &[];

#[test]
fn builtins_match_the_corpus() {
    let dir = corpus().join("spec/defs");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".air.json"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no *.air.json files in {}",
        dir.display()
    );

    let mut problems = Vec::new();
    let mut left_out = Vec::new();
    let mut matched = 0;
    for f in &files {
        let bytes = std::fs::read(f).unwrap_or_else(|e| panic!("cannot read {}: {e}", f.display()));
        let mut v: serde_json::Value =
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        strip_comments(&mut v);
        let items = match v {
            serde_json::Value::Array(a) => a,
            one => vec![one],
        };
        for item in items {
            let mut d = Vec::new();
            let Some(Node::Def(theirs)) = parse_node(&item, &mut d) else {
                problems.push(format!(
                    "{}: a node does not parse as a def: {d:?}",
                    f.display()
                ));
                continue;
            };
            let (kind, name) = (theirs.kind(), theirs.name().clone());
            match catalog::get(kind, &name) {
                Some(ours) => {
                    matched += 1;
                    if ours.to_json() != theirs.to_json() {
                        problems.push(format!(
                            "{} {name} differs\n  ours:   {}\n  corpus: {}",
                            kind.as_str(),
                            ours.to_json(),
                            theirs.to_json()
                        ));
                    }
                    if !catalog::is_builtin(&name) {
                        problems.push(format!(
                            "{name} is in the catalog but not reported as built-in"
                        ));
                    }
                }
                None if matches!(kind, DefKind::Schema | DefKind::Effect) => {
                    problems.push(format!(
                        "{} {name} is missing from the catalog",
                        kind.as_str()
                    ));
                }
                None => left_out.push((kind.as_str().to_string(), name.to_string())),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let expected: Vec<(String, String)> = LEFT_OUT
        .iter()
        .map(|(k, n)| (k.to_string(), n.to_string()))
        .collect();
    assert_eq!(left_out, expected, "corpus defs not in the catalog");
    assert!(matched >= 61, "only {matched} corpus defs matched");
}
