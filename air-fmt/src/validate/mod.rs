//! The semantic validator: everything AIR v1 requires of a set of definitions beyond
//! the shape of each node (which [`crate::load`] already checked).
//!
//! Every reference resolves in the set first, then in the built-in catalog
//! ([`crate::catalog`]). All problems are reported in one run, each with the file, the
//! def, a JSON pointer inside the def (inside the manifest for manifest problems; those
//! carry no def name, like the loader's), what was expected, what was found and a hint.
//! Problems do not cascade: a broken schema (unknown reference, recursive type) is
//! reported once where it is broken, and every check that would need that schema is
//! skipped; likewise for unknown effect kinds, grants and cap types.
//!
//! The manifest-listing checks that [`crate::assemble::assemble`] also performs
//! (`no_manifest`, `unknown_def`, and the warnings `unfilled_wasm_hash` and
//! `unlisted_def`) are reported here with the same code, def and pointer, so a caller
//! running both can drop assemble's copies by comparing those three fields.
//!
//! The checks, by area (codes in backticks):
//! - schemas ([`schemas`]): `unknown_schema`, `recursive_type`;
//! - modules, caps, effects, policies, secrets ([`defs`]): `unknown_schema`,
//!   `unknown_effect`, `effect_scope`, `unknown_cap_type`, `unknown_module`,
//!   `enforcer_not_pure`, `duplicate_effect_kind`, `unknown_origin` (a warning when
//!   another version of that plan or module is defined: in-flight runs across an
//!   upgrade), `unknown_plan`, `unknown_grant` (a warning in policies); warning
//!   `unfilled_wasm_hash`;
//! - plans ([`plans`]): `duplicate_step`, `unknown_step`, `plan_cycle`, `unknown_var`,
//!   `unknown_field_ref`, `misplaced_event_ref`, `event_in_invariant`, `bad_await_for`,
//!   `uncorrelated_await`, `missing_result`, `unexpected_result`, `unknown_effect`,
//!   `effect_scope`, `unknown_grant`, `cap_type_mismatch`, `derived_mismatch`, and the
//!   value diagnostics of [`crate::value::canonicalize`] for literal params, events
//!   and results;
//! - the manifest ([`manifest`]): `no_manifest`, `unknown_def`, `policy_not_listed`,
//!   `unknown_policy`, `duplicate_grant`, `unknown_cap`, `unknown_module`,
//!   `not_a_reducer`, `unknown_slot`, `unknown_grant`, `cap_type_mismatch`,
//!   `route_event_mismatch`, `unexpected_key_field`, `missing_key_field`,
//!   `unknown_key_field`, `key_type_mismatch`, `unknown_plan`, `plan_not_listed`,
//!   `trigger_input_mismatch`, `unknown_correlation_field`, value diagnostics for grant
//!   params; warnings `duplicate_listing`, `unlisted_def`, `unrouted_keyed_module`.

mod defs;
mod graph;
mod manifest;
mod plans;
mod schemas;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::assemble::resolve;
use crate::catalog;
use crate::diag::Diagnostic;
use crate::load::{AirSet, Located};
use crate::model::{CapGrant, Def, DefCap, DefEffect, DefKind, DefModule, DefPlan, Manifest};
use crate::name::Name;
use crate::types::TypeExpr;

/// Check everything AIR v1 semantics require. Returns all diagnostics (errors and
/// warnings) in one run.
pub fn validate(set: &AirSet) -> Vec<Diagnostic> {
    let mut cx = Ctx::new(set);
    schemas::check(&mut cx);
    defs::check(&mut cx);
    plans::check(&mut cx);
    manifest::check(&mut cx);
    cx.diags
}

/// Capability types the kernel and its adapters know without any declaration.
pub const BUILTIN_CAP_TYPES: [&str; 6] =
    ["http.out", "blob", "timer", "llm.basic", "query", "secret"];

/// Where a diagnostic belongs.
#[derive(Clone, Copy)]
enum Site<'a> {
    Def(&'a Located<Def>),
    Manifest(&'a Located<Manifest>),
}

/// The validation context: the set, lookups built once, and the diagnostics so far.
struct Ctx<'a> {
    set: &'a AirSet,
    manifest: Option<&'a Located<Manifest>>,
    diags: Vec<Diagnostic>,
    /// Schema soundness (resolves, not recursive, every reference sound), for every
    /// schema of the set and the catalog. Filled by [`schemas::check`].
    sound: BTreeMap<Name, bool>,
    /// Effect kinds: the set's defeffects first, then built-ins not shadowed by name.
    effects: BTreeMap<&'a str, &'a DefEffect>,
    /// Grants of the manifest defaults, by name (the first of duplicates).
    grants: BTreeMap<&'a str, &'a CapGrant>,
    /// Every (kind, name) the manifest lists.
    listed: BTreeSet<(DefKind, &'a Name)>,
    /// Cap types of built-in caps and effects.
    builtin_types: BTreeSet<&'a str>,
    /// Cap types of the set's defcaps and of the set's defeffects.
    set_cap_types: BTreeSet<&'a str>,
    set_effect_types: BTreeSet<&'a str>,
}

impl<'a> Ctx<'a> {
    fn new(set: &'a AirSet) -> Ctx<'a> {
        let manifest = set.manifest.as_ref();
        let mut effects: BTreeMap<&'a str, &'a DefEffect> = BTreeMap::new();
        let mut set_cap_types = BTreeSet::new();
        let mut set_effect_types = BTreeSet::new();
        for loc in set.defs.values() {
            match &loc.item {
                Def::Effect(e) => {
                    effects.entry(e.kind.as_str()).or_insert(e);
                    set_effect_types.insert(e.cap_type.as_str());
                }
                Def::Cap(c) => {
                    set_cap_types.insert(c.cap_type.as_str());
                }
                _ => {}
            }
        }
        let mut builtin_types: BTreeSet<&'a str> = BUILTIN_CAP_TYPES.into_iter().collect();
        for def in catalog::builtins() {
            match def {
                Def::Effect(e) => {
                    builtin_types.insert(e.cap_type.as_str());
                    if set.get(DefKind::Effect, &e.name).is_none() {
                        effects.entry(e.kind.as_str()).or_insert(e);
                    }
                }
                Def::Cap(c) => {
                    builtin_types.insert(c.cap_type.as_str());
                }
                _ => {}
            }
        }
        let mut grants = BTreeMap::new();
        let mut listed = BTreeSet::new();
        if let Some(m) = manifest {
            for g in &m.item.defaults.cap_grants {
                grants.entry(g.name.as_str()).or_insert(g);
            }
            for (kind, refs) in &m.item.refs {
                listed.extend(refs.iter().map(|r| (*kind, &r.name)));
            }
        }
        Ctx {
            set,
            manifest,
            diags: Vec::new(),
            sound: BTreeMap::new(),
            effects,
            grants,
            listed,
            builtin_types,
            set_cap_types,
            set_effect_types,
        }
    }

    // ---- reporting ----

    fn push(&mut self, site: Site<'_>, d: Diagnostic) {
        let d = match site {
            Site::Def(l) => d.in_file(&l.origin.file).in_def(l.item.name().as_str()),
            Site::Manifest(m) => d.in_file(&m.origin.file).under(&m.origin.pointer),
        };
        self.diags.push(d);
    }

    // ---- lookups ----

    fn resolve(&self, kind: DefKind, name: &Name) -> Option<&'a Def> {
        resolve(self.set, kind, name)
    }

    fn schema_ty(&self, name: &Name) -> Option<&'a TypeExpr> {
        match self.resolve(DefKind::Schema, name)? {
            Def::Schema(s) => Some(&s.ty),
            _ => None,
        }
    }

    fn module(&self, name: &Name) -> Option<&'a DefModule> {
        match self.resolve(DefKind::Module, name)? {
            Def::Module(m) => Some(m),
            _ => None,
        }
    }

    fn plan(&self, name: &Name) -> Option<&'a DefPlan> {
        match self.resolve(DefKind::Plan, name)? {
            Def::Plan(p) => Some(p),
            _ => None,
        }
    }

    fn cap(&self, name: &Name) -> Option<&'a DefCap> {
        match self.resolve(DefKind::Cap, name)? {
            Def::Cap(c) => Some(c),
            _ => None,
        }
    }

    fn is_listed(&self, kind: DefKind, name: &Name) -> bool {
        self.listed.contains(&(kind, name))
    }

    /// True when the schema resolves, is not recursive, and everything it references is
    /// sound: values can be checked against it.
    fn is_sound(&self, name: &Name) -> bool {
        self.sound.get(name).copied().unwrap_or(false)
    }

    /// The type of a sound schema.
    fn sound_schema(&self, name: &Name) -> Option<&'a TypeExpr> {
        self.schema_ty(name).filter(|_| self.is_sound(name))
    }

    /// True when every schema the type references is sound.
    fn type_sound(&self, ty: &TypeExpr) -> bool {
        let mut refs = Vec::new();
        ty.refs(&mut refs);
        refs.into_iter().all(|n| self.is_sound(n))
    }

    /// A cap type a defcap may declare: built in, or guarding some defeffect.
    fn cap_type_for_cap(&self, t: &str) -> bool {
        self.builtin_types.contains(t) || self.set_effect_types.contains(t)
    }

    /// A cap type a defeffect may require: built in, or declared by some defcap.
    fn cap_type_for_effect(&self, t: &str) -> bool {
        self.builtin_types.contains(t) || self.set_cap_types.contains(t)
    }

    /// A cap type some defcap (of the set or built in) declares.
    fn cap_type_of_some_cap(&self, t: &str) -> bool {
        self.set_cap_types.contains(t)
            || catalog::builtins()
                .iter()
                .any(|d| matches!(d, Def::Cap(c) if c.cap_type == t))
    }

    // ---- shared checks ----

    /// A reference to a named schema at `ptr`. An unknown name is reported; the type
    /// is returned when the schema resolves and is sound (a broken schema is reported
    /// where it is defined, not at every use).
    fn schema_ref(
        &mut self,
        site: Site<'_>,
        name: &Name,
        ptr: impl Into<String>,
    ) -> Option<&'a TypeExpr> {
        if self.schema_ty(name).is_none() {
            self.unknown_def(
                site,
                DefKind::Schema,
                name,
                ptr.into(),
                "schema",
                "unknown_schema",
            );
            return None;
        }
        self.sound_schema(name)
    }

    /// Report a reference to an undefined def, with a suggestion when a similar name
    /// exists.
    fn unknown_def(
        &mut self,
        site: Site<'_>,
        kind: DefKind,
        name: &Name,
        ptr: String,
        what: &str,
        code: &'static str,
    ) {
        if self.set.broken.contains(&(kind, name.clone())) {
            return; // defined but unparseable: reported where it is defined
        }
        let mut d = Diagnostic::error(code, ptr, format!("{what} {name} is not defined"))
            .expected(format!(
                "the name of a {} in the AIR sources or a built-in sys/ {what}",
                kind.as_str()
            ))
            .found(name.to_string());
        d = match self.suggest_def(kind, name) {
            Some(s) => d.hint(format!("did you mean {s}?")),
            None => d.hint(format!(
                "define it with a {}, or fix the name",
                kind.as_str()
            )),
        };
        self.push(site, d);
    }

    /// A similar def name of the same kind, for hints.
    fn suggest_def(&self, kind: DefKind, name: &Name) -> Option<String> {
        let set_names = self.set.of_kind(kind).map(|l| l.item.name().as_str());
        let builtin = catalog::builtins()
            .iter()
            .filter(|d| d.kind() == kind)
            .map(|d| d.name().as_str());
        suggest(name.as_str(), set_names.chain(builtin))
    }

    /// Check a literal value against a type; the value's diagnostics are reported under
    /// `ptr`. Skipped when the type is broken (reported elsewhere).
    fn literal(&mut self, site: Site<'_>, v: &Value, ty: &TypeExpr, ptr: &str) {
        if !self.type_sound(ty) {
            return;
        }
        let schemas = SetSchemas(self.set);
        if let Err(ds) = crate::value::canonicalize(v, ty, &schemas) {
            for d in ds {
                self.push(site, d.under(ptr));
            }
        }
    }

    /// Report an unknown effect kind.
    fn unknown_effect(&mut self, site: Site<'_>, kind: &str, ptr: String, scope: &str) {
        let known: Vec<&str> = self
            .effects
            .iter()
            .filter(|(_, e)| e.origin_scope == scope || e.origin_scope == "both")
            .map(|(k, _)| *k)
            .collect();
        let mut d = Diagnostic::error(
            "unknown_effect",
            ptr,
            format!("no defeffect has the kind `{kind}`"),
        )
        .expected(format!(
            "an effect kind {scope}s may emit: {}",
            known.join(", ")
        ))
        .found(kind.to_string());
        d = match suggest(kind, self.effects.keys().copied()) {
            Some(s) => d.hint(format!("did you mean `{s}`?")),
            None => d.hint("declare the effect with a defeffect, or use a built-in kind"),
        };
        self.push(site, d);
    }
}

use crate::assemble::SetSchemas;

/// The candidate closest to `target` by edit distance, if it is close enough to be a
/// likely typo.
fn suggest<'c>(target: &str, candidates: impl Iterator<Item = &'c str>) -> Option<String> {
    candidates
        .filter(|c| *c != target)
        .map(|c| (edit_distance(target, c), c))
        .filter(|(d, c)| *d <= (target.chars().count().max(c.chars().count()) / 3).clamp(1, 3))
        .min()
        .map(|(_, c)| c.to_string())
}

/// Edit distance with adjacent transpositions (optimal string alignment).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    d[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// The segments of a dotted field path (`meta.name`, `$value.note_id`).
fn segments(path: &str) -> Vec<&str> {
    path.split('.').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_names_only() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("audti", "audit"), 1);
        assert_eq!(
            suggest("http.requst", ["http.request", "blob.put"].into_iter()),
            Some("http.request".into())
        );
        assert_eq!(suggest("zzz", ["http.request"].into_iter()), None);
    }
}
