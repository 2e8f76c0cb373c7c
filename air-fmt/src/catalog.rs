//! The built-in catalog: every `sys/` definition a world can use without declaring it
//! itself — the params and receipt schemas of the built-in effects, the receipt-event
//! schemas reducers see (`sys/TimerFired@1`, `sys/BlobPutResult@1`,
//! `sys/BlobGetResult@1`), the `defeffect`s, the standard `defcap`s with their
//! enforcer, the kernel-implemented `sys/CapAllowAll@1` pure module, and the object
//! catalog (`sys/ObjectCatalog@1`, `sys/catalog.write@1`).
//!
//! The definitions live as AIR JSON under `air-fmt/builtin/` and are embedded in the
//! binary. They are written for this project; their facts (names, record fields and
//! their types, variant arms, effect kinds, schemas, cap types and origin scopes) match
//! the original AgentOS built-ins exactly, so AIR written for the original runs
//! unchanged (`tests/catalog_compat.rs` checks this against the corpus).
//!
//! One difference in meaning, not in shape: fields that held canonical CBOR bytes in
//! the original keep the type `bytes` but hold canonical JSON bytes here (our one
//! canonical form, DESIGN §2). These are `sys/CapCheckInput@1.cap_params` and
//! `.effect_params`, `sys/IntrospectManifestReceipt@1.manifest`,
//! `sys/IntrospectReducerStateParams@1.key`, `sys/IntrospectReducerStateReceipt@1.state`
//! and the `key` of each entry in `sys/IntrospectListCellsReceipt@1.cells`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

use crate::json::strip_comments;
use crate::model::{parse_node, Def, DefKind, Node};
use crate::name::Name;

/// The embedded files, by the name they are reported under.
const FILES: [(&str, &str); 4] = [
    (
        "builtin/schemas.air.json",
        include_str!("../builtin/schemas.air.json"),
    ),
    (
        "builtin/effects.air.json",
        include_str!("../builtin/effects.air.json"),
    ),
    (
        "builtin/caps.air.json",
        include_str!("../builtin/caps.air.json"),
    ),
    (
        "builtin/modules.air.json",
        include_str!("../builtin/modules.air.json"),
    ),
];

struct Catalog {
    defs: Vec<Def>,
    index: BTreeMap<(DefKind, Name), usize>,
}

/// Parse every embedded node. Any problem (bad JSON, a diagnostic, a node that is not
/// a def, a duplicate name) is reported and makes the whole load fail.
fn load() -> Result<Vec<Def>, Vec<String>> {
    let mut defs = Vec::new();
    let mut problems = Vec::new();
    for (file, text) in FILES {
        let mut v: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("{file}: not JSON: {e}"));
                continue;
            }
        };
        strip_comments(&mut v);
        let Value::Array(items) = v else {
            problems.push(format!("{file}: expected an array of nodes"));
            continue;
        };
        for (i, item) in items.iter().enumerate() {
            let mut diags = Vec::new();
            let node = parse_node(item, &mut diags);
            for d in &diags {
                problems.push(format!("{file}: node {i}: {d}"));
            }
            match node {
                Some(Node::Def(def)) if diags.is_empty() => defs.push(def),
                Some(Node::Def(_)) | None => {}
                Some(Node::Manifest(_)) => problems.push(format!(
                    "{file}: node {i}: a manifest is not a built-in def"
                )),
            }
        }
    }
    let mut seen = BTreeMap::new();
    for d in &defs {
        if let Some(kind) = seen.insert(d.name().clone(), d.kind()) {
            problems.push(format!(
                "{} is defined twice ({} and {})",
                d.name(),
                kind.as_str(),
                d.kind().as_str()
            ));
        }
    }
    if problems.is_empty() {
        Ok(defs)
    } else {
        Err(problems)
    }
}

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        // The embedded files are checked by the tests below; should they ever fail to
        // load at runtime, the catalog is empty rather than a panic.
        let defs = load().unwrap_or_default();
        let index = defs
            .iter()
            .enumerate()
            .map(|(i, d)| ((d.kind(), d.name().clone()), i))
            .collect();
        Catalog { defs, index }
    })
}

/// Every built-in def, parsed once (panics are not allowed: the embedded files are
/// checked by tests; if parsing fails at runtime the catalog is empty and the tests
/// fail).
pub fn builtins() -> &'static [Def] {
    &catalog().defs
}

/// The built-in def of this kind and name, if there is one.
pub fn get(kind: DefKind, name: &Name) -> Option<&'static Def> {
    let c = catalog();
    c.index.get(&(kind, name.clone())).map(|&i| &c.defs[i])
}

/// True when `name` is in the `sys/` namespace and the catalog defines it (of any kind).
pub fn is_builtin(name: &Name) -> bool {
    name.is_sys() && DefKind::ALL.into_iter().any(|k| get(k, name).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModuleKind;

    fn defs() -> Vec<Def> {
        match load() {
            Ok(d) => d,
            Err(problems) => panic!(
                "the embedded catalog does not load:\n{}",
                problems.join("\n")
            ),
        }
    }

    fn name(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    #[test]
    fn every_embedded_node_parses_without_diagnostics() {
        let defs = defs();
        assert_eq!(builtins().len(), defs.len());
        let count = |k| defs.iter().filter(|d| d.kind() == k).count();
        assert_eq!(count(DefKind::Schema), 43);
        assert_eq!(count(DefKind::Effect), 15);
        assert_eq!(count(DefKind::Cap), 7);
        assert_eq!(count(DefKind::Module), 2);
        assert_eq!(defs.len(), 67);
    }

    #[test]
    fn names_are_unique_and_in_sys() {
        let defs = defs();
        let mut names: Vec<&Name> = defs.iter().map(Def::name).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "duplicate names");
        for d in &defs {
            assert!(d.name().is_sys(), "{} is not in sys/", d.name());
            assert!(is_builtin(d.name()));
            assert_eq!(get(d.kind(), d.name()), Some(d));
        }
    }

    #[test]
    fn every_reference_resolves_within_the_catalog() {
        let defs = defs();
        let schema = |n: &Name, why: &str| {
            assert!(
                get(DefKind::Schema, n).is_some(),
                "{why}: schema {n} is not in the catalog"
            )
        };
        for d in &defs {
            let at = d.name().to_string();
            match d {
                Def::Schema(s) => {
                    let mut refs = Vec::new();
                    s.ty.refs(&mut refs);
                    refs.into_iter().for_each(|r| schema(r, &at));
                }
                Def::Effect(e) => {
                    schema(&e.params_schema, &at);
                    schema(&e.receipt_schema, &at);
                }
                Def::Module(m) => {
                    if let Some(k) = &m.key_schema {
                        schema(k, &at);
                    }
                    if let Some(r) = &m.reducer {
                        schema(&r.state, &at);
                        schema(&r.event, &at);
                        if let Some(a) = &r.annotations {
                            schema(a, &at);
                        }
                    }
                    if let Some(p) = &m.pure {
                        schema(&p.input, &at);
                        schema(&p.output, &at);
                    }
                }
                Def::Cap(c) => {
                    let mut refs = Vec::new();
                    c.schema.refs(&mut refs);
                    refs.into_iter().for_each(|r| schema(r, &at));
                    let e = c
                        .enforcer
                        .as_ref()
                        .unwrap_or_else(|| panic!("{at}: a built-in cap names its enforcer"));
                    assert!(
                        get(DefKind::Module, e).is_some(),
                        "{at}: enforcer {e} is not in the catalog"
                    );
                }
                other => panic!("unexpected built-in {}", other.kind().as_str()),
            }
        }
    }

    #[test]
    fn every_effect_cap_type_has_a_builtin_cap() {
        // governance.* effects use cap type `governance`, for which the original
        // defines no built-in defcap either: a world that grants them declares its own.
        let defs = defs();
        let cap_types: Vec<&str> = defs
            .iter()
            .filter_map(|d| {
                if let Def::Cap(c) = d {
                    Some(c.cap_type.as_str())
                } else {
                    None
                }
            })
            .collect();
        for d in &defs {
            if let Def::Effect(e) = d {
                assert!(
                    e.cap_type == "governance" || cap_types.contains(&e.cap_type.as_str()),
                    "{}: no built-in cap of type {}",
                    e.name,
                    e.cap_type
                );
            }
        }
    }

    #[test]
    fn lookups() {
        let allow = get(DefKind::Module, &name("sys/CapAllowAll@1")).expect("CapAllowAll");
        let Def::Module(m) = allow else {
            panic!("not a module")
        };
        assert_eq!(m.module_kind, ModuleKind::Pure);
        assert!(m.wasm_hash.is_none(), "implemented by the kernel");
        assert_eq!(
            m.pure.as_ref().map(|p| p.input.as_str()),
            Some("sys/CapCheckInput@1")
        );

        let Some(Def::Effect(t)) = get(DefKind::Effect, &name("sys/timer.set@1")) else {
            panic!("timer.set")
        };
        assert_eq!(
            (
                t.kind.as_str(),
                t.cap_type.as_str(),
                t.origin_scope.as_str()
            ),
            ("timer.set", "timer", "reducer")
        );

        assert!(
            get(DefKind::Schema, &name("sys/timer.set@1")).is_none(),
            "kind matters"
        );
        assert!(is_builtin(&name("sys/TimerFired@1")));
        assert!(!is_builtin(&name("sys/Nope@1")));
        assert!(!is_builtin(&name("demo/TimerFired@1")));
    }
}
