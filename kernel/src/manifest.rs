//! The active manifest as the kernel uses it: loaded from the object store by hash (the
//! journal names it; `air/` is never read), checked to hash to its name, and compiled
//! into routing tables and per-reducer contracts.

use std::collections::{BTreeMap, BTreeSet};

use air_fmt::assemble::{assemble, SetSchemas};
use air_fmt::load::{load, AirSet, Source};
use air_fmt::model::{DefModule, ModuleKind};
use air_fmt::value::Schemas;
use air_fmt::{Def, DefKind, Name, TypeExpr};
use aos_store::objects::ObjectStore;
use aos_store::Hash;
use serde_json::Value;

use crate::error::{KernelError, Result};

/// A reducer of the active manifest.
#[derive(Debug, Clone)]
pub struct Reducer {
    pub name: Name,
    pub module: Hash,
    pub state_ty: TypeExpr,
    pub event_schema: Name,
    /// The key schema of a keyed reducer (one cell per key).
    pub key_schema: Option<Name>,
    /// Micro-effect kinds it may emit, with their params types.
    pub effects: BTreeMap<String, TypeExpr>,
    /// The name and module hash as JSON strings, as every step record carries them.
    pub name_json: Value,
    pub module_json: Value,
}

/// One route of `routing.events`.
#[derive(Debug, Clone)]
pub struct Route {
    pub reducer: Name,
    /// `key_field` split at dots (`$value` steps into a variant arm).
    pub key_path: Option<Vec<String>>,
    /// When the routed schema is an arm of the reducer's event variant: that arm's tag.
    pub arm: Option<String>,
}

/// The manifest in force, ready for stepping.
#[derive(Debug)]
pub struct ActiveManifest {
    pub hash: Hash,
    pub set: AirSet,
    pub reducers: BTreeMap<Name, Reducer>,
    /// Event schema → routes, in manifest order.
    pub routes: BTreeMap<Name, Vec<Route>>,
    /// Schemas a reducer may emit as domain events: the manifest's, without `sys/`.
    pub emittable: BTreeSet<Name>,
    /// The manifest object's canonical bytes (what `introspect.manifest` answers).
    pub bytes: Vec<u8>,
}

impl ActiveManifest {
    /// Load the manifest `hash` and every def it names from `objects`.
    pub fn load(objects: &ObjectStore, hash: &Hash) -> Result<ActiveManifest> {
        let fail = |reason: String| KernelError::Manifest {
            hash: *hash,
            reason,
        };
        let bytes = objects.get(hash)?;
        let top: Value = serde_json::from_slice(&bytes)
            .map_err(|e| fail(format!("the manifest object is not JSON: {e}")))?;
        let manifest_bytes = bytes.clone();
        let mut sources = vec![Source {
            name: format!("manifest {hash}"),
            bytes,
        }];
        for kind in DefKind::ALL.into_iter().filter(|k| *k != DefKind::Manifest) {
            let Some(list) = top.get(kind.manifest_key()).and_then(Value::as_array) else {
                continue;
            };
            for r in list {
                let (Some(name), Some(h)) = (
                    r.get("name").and_then(Value::as_str),
                    r.get("hash").and_then(Value::as_str),
                ) else {
                    return Err(fail(format!(
                        "a `{}` entry has no name and hash: {r}",
                        kind.manifest_key()
                    )));
                };
                let h: Hash = h
                    .parse()
                    .map_err(|e| fail(format!("{name}: bad hash {h:?}: {e}")))?;
                if air_fmt::catalog::is_builtin(&Name::parse(name).map_err(&fail)?) {
                    continue;
                }
                sources.push(Source {
                    name: format!("{} {name} ({h})", kind.as_str()),
                    bytes: objects.get(&h)?,
                });
            }
        }
        let (set, diags) = load(&sources);
        let errors: Vec<String> = diags
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.to_string())
            .collect();
        if !errors.is_empty() {
            return Err(fail(format!("does not load: {}", errors.join("; "))));
        }
        let (assembled, diags) = assemble(&set);
        let Some(assembled) = assembled else {
            let errors: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
            return Err(fail(format!("does not assemble: {}", errors.join("; "))));
        };
        if assembled.manifest_hash != *hash {
            return Err(fail(format!(
                "its defs assemble to {}, not to the hash the journal names",
                assembled.manifest_hash
            )));
        }
        let mut m = compile(*hash, set)?;
        m.bytes = manifest_bytes;
        Ok(m)
    }

    pub fn schemas(&self) -> SetSchemas<'_> {
        SetSchemas(&self.set)
    }

    /// The routes of an event schema (empty when nothing listens).
    pub fn routes_of(&self, schema: &Name) -> &[Route] {
        self.routes.get(schema).map_or(&[], Vec::as_slice)
    }

    pub fn reducer(&self, name: &Name) -> Option<&Reducer> {
        self.reducers.get(name)
    }

    /// The tag of the arm of `reducer`'s event variant that carries `schema`, if any.
    pub fn arm_for(&self, reducer: &Reducer, schema: &Name) -> Option<String> {
        let schemas = self.schemas();
        let abi_ty = TypeExpr::Ref(reducer.event_schema.clone());
        match deref(&schemas, &abi_ty)? {
            TypeExpr::Variant(arms) => arms.iter().find_map(|(tag, t)| match t {
                TypeExpr::Ref(n) if n == schema => Some(tag.clone()),
                _ => None,
            }),
            _ => None,
        }
    }

    /// The type of a schema known to this manifest (or the built-in catalog).
    pub fn schema_ty(&self, name: &Name) -> Option<&TypeExpr> {
        match air_fmt::assemble::resolve(&self.set, DefKind::Schema, name)? {
            Def::Schema(s) => Some(&s.ty),
            _ => None,
        }
    }
}

fn compile(hash: Hash, set: AirSet) -> Result<ActiveManifest> {
    let fail = |reason: String| KernelError::Manifest { hash, reason };
    let Some(manifest) = &set.manifest else {
        return Err(fail("the object is not a manifest".into()));
    };
    let manifest = &manifest.item;
    let modules: Vec<&DefModule> = manifest
        .refs
        .get(&DefKind::Module)
        .into_iter()
        .flatten()
        .filter_map(
            |r| match air_fmt::assemble::resolve(&set, DefKind::Module, &r.name) {
                Some(Def::Module(m)) => Some(m),
                _ => None,
            },
        )
        .collect();
    // Reading the built-in catalog costs a parse; only reducers that emit effects need it.
    let mut effect_params: Option<BTreeMap<String, TypeExpr>> = None;
    let mut reducers = BTreeMap::new();
    for m in modules {
        if m.module_kind != ModuleKind::Reducer {
            continue;
        }
        let Some(abi) = &m.reducer else { continue };
        let module = match &m.wasm_hash {
            Some(h) => h
                .filled()
                .ok_or_else(|| fail(format!("module {} has no wasm hash filled in", m.name)))?,
            None => return Err(fail(format!("module {} has no wasm_hash", m.name))),
        };
        let effects = if abi.effects_emitted.is_empty() {
            BTreeMap::new()
        } else {
            let params = effect_params.get_or_insert_with(|| effect_params_by_kind(&set));
            abi.effects_emitted
                .iter()
                .filter_map(|k| params.get(k).map(|t| (k.clone(), t.clone())))
                .collect()
        };
        reducers.insert(
            m.name.clone(),
            Reducer {
                name: m.name.clone(),
                module,
                state_ty: TypeExpr::Ref(abi.state.clone()),
                event_schema: abi.event.clone(),
                key_schema: m.key_schema.clone(),
                effects,
                name_json: Value::String(m.name.to_string()),
                module_json: Value::String(module.to_string()),
            },
        );
    }
    let schemas = SetSchemas(&set);
    let mut routes: BTreeMap<Name, Vec<Route>> = BTreeMap::new();
    for r in &manifest.routing_events {
        let Some(red) = reducers.get(&r.reducer) else {
            return Err(fail(format!(
                "routing names {}, which is not a reducer of this manifest",
                r.reducer
            )));
        };
        let arm = if r.event == red.event_schema {
            None
        } else {
            let abi_ty = TypeExpr::Ref(red.event_schema.clone());
            let Some(TypeExpr::Variant(arms)) = deref(&schemas, &abi_ty) else {
                return Err(fail(format!("{} does not accept {}", r.reducer, r.event)));
            };
            let tag = arms.iter().find_map(|(tag, t)| match t {
                TypeExpr::Ref(n) if *n == r.event => Some(tag.clone()),
                _ => None,
            });
            Some(tag.ok_or_else(|| fail(format!("{} does not accept {}", r.reducer, r.event)))?)
        };
        routes.entry(r.event.clone()).or_default().push(Route {
            reducer: r.reducer.clone(),
            key_path: r
                .key_field
                .as_ref()
                .map(|k| k.split('.').map(str::to_string).collect()),
            arm,
        });
    }
    let emittable = manifest
        .refs
        .get(&DefKind::Schema)
        .into_iter()
        .flatten()
        .map(|r| r.name.clone())
        .filter(|n| !n.is_sys())
        .collect();
    Ok(ActiveManifest {
        hash,
        set,
        reducers,
        routes,
        emittable,
        bytes: Vec::new(),
    })
}

/// Follow `ref`s to the type they name.
pub fn deref<'s>(schemas: &'s dyn Schemas, ty: &'s TypeExpr) -> Option<&'s TypeExpr> {
    let mut ty = ty;
    for _ in 0..64 {
        match ty {
            TypeExpr::Ref(n) => ty = schemas.schema(n)?,
            other => return Some(other),
        }
    }
    None
}

/// Effect kind → params type, for every effect the set or the catalog defines.
fn effect_params_by_kind(set: &AirSet) -> BTreeMap<String, TypeExpr> {
    let mut out = BTreeMap::new();
    let catalog = air_fmt::catalog::builtins().iter();
    let own = set.of_kind(DefKind::Effect).map(|l| &l.item);
    for def in catalog.chain(own) {
        if let Def::Effect(e) = def {
            out.insert(e.kind.clone(), TypeExpr::Ref(e.params_schema.clone()));
        }
    }
    out
}
