//! Schemas: every type reference resolves, no type is recursive, and which schemas
//! are sound (usable for value checks). Also the type helpers the other checks use:
//! following references, structural equality, and field paths.

use std::collections::{BTreeMap, BTreeSet};

use super::{graph, Ctx, Site};
use crate::catalog;
use crate::diag::{token, Diagnostic};
use crate::model::{Def, DefKind};
use crate::name::Name;
use crate::types::TypeExpr;

static TEXT: TypeExpr = TypeExpr::Text;

/// How far references are followed before giving up (only sound types are followed,
/// which cannot loop; this is a second guard).
const MAX_DEPTH: usize = 64;

pub(super) fn check(cx: &mut Ctx<'_>) {
    let set = cx.set;
    // Every reference inside a defschema or defcap type resolves.
    for loc in set.defs.values() {
        let (ty, base) = match &loc.item {
            Def::Schema(s) => (&s.ty, "/type"),
            Def::Cap(c) => (&c.schema, "/schema"),
            _ => continue,
        };
        let mut refs = Vec::new();
        refs_at(ty, base.to_string(), &mut refs);
        for (ptr, name) in refs {
            if cx.schema_ty(name).is_none() {
                cx.unknown_def(
                    Site::Def(loc),
                    DefKind::Schema,
                    name,
                    ptr,
                    "schema",
                    "unknown_schema",
                );
            }
        }
    }

    // The reference graph over every schema of the set and the catalog.
    let mut names: BTreeSet<&Name> = set
        .of_kind(DefKind::Schema)
        .map(|l| l.item.name())
        .collect();
    names.extend(
        catalog::builtins()
            .iter()
            .filter(|d| d.kind() == DefKind::Schema)
            .map(Def::name),
    );
    let mut all_refs: BTreeMap<Name, Vec<Name>> = BTreeMap::new();
    let mut succ: BTreeMap<Name, Vec<Name>> = BTreeMap::new();
    for n in &names {
        let Some(ty) = cx.schema_ty(n) else { continue };
        let mut refs = Vec::new();
        ty.refs(&mut refs);
        let refs: Vec<Name> = refs.into_iter().cloned().collect();
        succ.insert(
            (*n).clone(),
            refs.iter()
                .filter(|r| cx.schema_ty(r).is_some())
                .cloned()
                .collect(),
        );
        all_refs.insert((*n).clone(), refs);
    }

    // Recursive types: one error per cycle, at the first schema of the set on it.
    let mut on_cycle = BTreeSet::new();
    for c in graph::cycles(&succ) {
        on_cycle.extend(c.members.iter().cloned());
        let path = &c.path;
        let len = path.len() - 1;
        let Some(k) = (0..len).find(|&k| set.get(DefKind::Schema, &path[k]).is_some()) else {
            continue;
        };
        let rotated: Vec<&Name> = path[k..len]
            .iter()
            .chain(path[..k].iter())
            .chain([&path[k]])
            .collect();
        let Some(loc) = set.defs.get(&(DefKind::Schema, rotated[0].clone())) else {
            continue;
        };
        let Def::Schema(s) = &loc.item else { continue };
        let mut refs = Vec::new();
        refs_at(&s.ty, "/type".to_string(), &mut refs);
        let ptr = refs
            .into_iter()
            .find(|(_, n)| *n == rotated[1])
            .map_or_else(|| "/type".to_string(), |(p, _)| p);
        let cycle = rotated
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>()
            .join(" -> ");
        cx.push(
            Site::Def(loc),
            Diagnostic::error("recursive_type", ptr, format!("recursive type: {cycle}"))
                .expected("a finite type: schema references must not form a cycle")
                .found(cycle)
                .hint("AIR values are finite trees; refer to the other value by an id (text, nat, hash) instead of nesting it"),
        );
    }

    let mut sound = BTreeMap::new();
    for n in all_refs.keys() {
        sound_of(n, &all_refs, &on_cycle, &mut sound);
    }
    cx.sound = sound;
}

fn sound_of(
    n: &Name,
    refs: &BTreeMap<Name, Vec<Name>>,
    on_cycle: &BTreeSet<Name>,
    memo: &mut BTreeMap<Name, bool>,
) -> bool {
    if let Some(&b) = memo.get(n) {
        return b;
    }
    let b = match refs.get(n) {
        None => false,
        Some(_) if on_cycle.contains(n) => false,
        Some(rs) => rs.iter().all(|r| sound_of(r, refs, on_cycle, memo)),
    };
    memo.insert(n.clone(), b);
    b
}

/// Every schema reference in a type, with the JSON pointer of its `ref` string.
pub(super) fn refs_at<'t>(ty: &'t TypeExpr, ptr: String, out: &mut Vec<(String, &'t Name)>) {
    match ty {
        TypeExpr::Ref(n) => out.push((format!("{ptr}/ref"), n)),
        TypeExpr::Record(m) => m
            .iter()
            .for_each(|(k, t)| refs_at(t, format!("{ptr}/record/{}", token(k)), out)),
        TypeExpr::Variant(m) => m
            .iter()
            .for_each(|(k, t)| refs_at(t, format!("{ptr}/variant/{}", token(k)), out)),
        TypeExpr::List(t) => refs_at(t, format!("{ptr}/list"), out),
        TypeExpr::Set(t) => refs_at(t, format!("{ptr}/set"), out),
        TypeExpr::Option(t) => refs_at(t, format!("{ptr}/option"), out),
        TypeExpr::Map(k, v) => {
            refs_at(k, format!("{ptr}/map/key"), out);
            refs_at(v, format!("{ptr}/map/value"), out);
        }
        _ => {}
    }
}

impl<'a> Ctx<'a> {
    /// Follow schema references until a structural type (or an unresolved reference).
    pub(super) fn deref<'t>(&self, mut ty: &'t TypeExpr) -> &'t TypeExpr
    where
        'a: 't,
    {
        for _ in 0..MAX_DEPTH {
            match ty {
                TypeExpr::Ref(n) => match self.schema_ty(n) {
                    Some(t) => ty = t,
                    None => return ty,
                },
                _ => return ty,
            }
        }
        ty
    }

    /// Structural equality through references (two references to one schema are
    /// equal without looking inside).
    pub(super) fn types_equal(&self, a: &TypeExpr, b: &TypeExpr) -> bool {
        self.types_equal_at(a, b, 0)
    }

    fn types_equal_at(&self, a: &TypeExpr, b: &TypeExpr, depth: usize) -> bool {
        if depth > MAX_DEPTH {
            return false;
        }
        if let (TypeExpr::Ref(x), TypeExpr::Ref(y)) = (a, b) {
            if x == y {
                return true;
            }
        }
        let (a, b) = (self.deref(a), self.deref(b));
        let eq = |x: &TypeExpr, y: &TypeExpr| self.types_equal_at(x, y, depth + 1);
        match (a, b) {
            (TypeExpr::Record(x), TypeExpr::Record(y))
            | (TypeExpr::Variant(x), TypeExpr::Variant(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .zip(y)
                        .all(|((k1, t1), (k2, t2))| k1 == k2 && eq(t1, t2))
            }
            (TypeExpr::List(x), TypeExpr::List(y))
            | (TypeExpr::Set(x), TypeExpr::Set(y))
            | (TypeExpr::Option(x), TypeExpr::Option(y)) => eq(x, y),
            (TypeExpr::Map(k1, v1), TypeExpr::Map(k2, v2)) => eq(k1, k2) && eq(v1, v2),
            (TypeExpr::Ref(_), _) | (_, TypeExpr::Ref(_)) => false,
            _ => a == b,
        }
    }

    /// The types found at a dotted field path inside a value of type `ty`: a record
    /// field by name; inside a variant, `$tag` (text) or `$value` (the payload of
    /// every arm). `strict`: anything else is an error; lenient: only a record without
    /// the field is an error, and the walk stops quietly at other types.
    pub(super) fn path_types<'t>(
        &self,
        ty: &'t TypeExpr,
        path: &[&str],
        strict: bool,
    ) -> Result<Vec<&'t TypeExpr>, String>
    where
        'a: 't,
    {
        let mut current = vec![ty];
        for (i, seg) in path.iter().enumerate() {
            let at = if i == 0 {
                "the value".to_string()
            } else {
                format!("`{}`", path[..i].join("."))
            };
            let mut next = Vec::new();
            for t in current {
                match self.deref(t) {
                    TypeExpr::Record(fields) => match fields.get(*seg) {
                        Some(f) => next.push(f),
                        None => {
                            let names: Vec<&str> = fields.keys().map(String::as_str).collect();
                            return Err(format!(
                                "{at} is a record without a field `{seg}` (its fields: {})",
                                names.join(", ")
                            ));
                        }
                    },
                    TypeExpr::Variant(_) if *seg == "$tag" => next.push(&TEXT),
                    TypeExpr::Variant(arms) if *seg == "$value" => {
                        for (arm, at_ty) in arms {
                            if matches!(self.deref(at_ty), TypeExpr::Unit) {
                                if strict {
                                    return Err(format!(
                                        "{at} is a variant whose arm `{arm}` carries no value"
                                    ));
                                }
                                continue;
                            }
                            next.push(at_ty);
                        }
                    }
                    TypeExpr::Variant(arms) if strict => {
                        let names: Vec<&str> = arms.keys().map(String::as_str).collect();
                        return Err(format!(
                            "{at} is a variant ({}); reach into it with `$tag` or `$value`, not `{seg}`",
                            names.join(" | ")
                        ));
                    }
                    other if strict => {
                        return Err(format!(
                            "{at} is {}, which has no field `{seg}`",
                            other.describe()
                        ))
                    }
                    _ => {}
                }
            }
            current = next;
        }
        Ok(current)
    }
}
