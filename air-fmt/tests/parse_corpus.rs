//! Every node in the original project's AIR corpus (beside the repository, in
//! `../shared/air-corpus`, or at `$AOS_AIR_CORPUS`) parses into the model without
//! diagnostics, and its canonical form is a fixed point.

mod common;
use common::corpus;

use std::path::PathBuf;

use air_fmt::json::strip_comments;
use air_fmt::model::parse_node;

fn air_files(dir: &std::path::Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            air_files(&p, out);
        } else if p.to_string_lossy().ends_with(".air.json") {
            out.push(p);
        }
    }
}

#[test]
fn every_corpus_node_parses_and_round_trips() {
    let mut files = Vec::new();
    air_files(&corpus(), &mut files);
    assert!(files.len() > 50, "found only {} files", files.len());
    let mut problems = Vec::new();
    let mut nodes = 0;
    for f in &files {
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(f).unwrap()).unwrap();
        strip_comments(&mut v);
        let items = match v {
            serde_json::Value::Array(a) => a,
            one => vec![one],
        };
        for item in items {
            let mut d = Vec::new();
            let node = parse_node(&item, &mut d);
            for x in &d {
                problems.push(format!("{}: {x}", f.display()));
            }
            if let Some(air_fmt::Node::Def(def)) = node {
                nodes += 1;
                let mut d2 = Vec::new();
                let canonical = def.to_json();
                let back = parse_node(&canonical, &mut d2);
                assert!(d2.is_empty(), "{d2:?}");
                let Some(air_fmt::Node::Def(back)) = back else {
                    panic!("not a def")
                };
                assert_eq!(back.to_json(), canonical, "canonical form is a fixed point");
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(nodes > 100, "{nodes}");
}
