//! `aos propose PATCH|AIR_DIR [-m MSG]`: compile a patch (or a directory of AIR diffed
//! into one) against the manifest in force, validate the whole candidate, store it and
//! journal `proposed`. Every refusal happens before anything is stored or journaled.

use std::collections::BTreeMap;
use std::path::Path;

use air_fmt::assemble::{assemble, fill_wasm_hashes};
use air_fmt::load::{load, AirSet};
use air_fmt::model::{Def, HashRef};
use air_fmt::patch::PatchDoc;
use air_fmt::{DefKind, Name};
use aos_kernel::governance::{Settings, PROPOSED};
use aos_kernel::manifest::ActiveManifest;
use aos_kernel::session::{BootOptions, Session};
use aos_store::world::Access;
use aos_store::Hash;
use serde_json::{json, Value};

use super::air::{print_diags, read_modules, read_sources, ModuleFile};
use super::session::open;
use super::{print_json, Ctx};
use crate::args::ProposeArgs;
use crate::exit::{user, Outcome, UserError};

/// The wasm hash of every module of a set whose hash is filled, by name.
pub fn module_hashes_of(set: &air_fmt::load::AirSet) -> BTreeMap<Name, Hash> {
    set.of_kind(DefKind::Module)
        .filter_map(|d| match &d.item {
            Def::Module(dm) => match &dm.wasm_hash {
                Some(HashRef::Filled(h)) => Some((dm.name.clone(), *h)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Diff a directory of AIR against the manifest in force into a patch. A placeholder
/// wasm_hash keeps the world's module of that name unless `--module` gives new code.
fn patch_from_dir(
    dir: &Path,
    active: &ActiveManifest,
    modules: &BTreeMap<Name, Hash>,
) -> anyhow::Result<PatchDoc> {
    let sources = read_sources(&[dir.to_path_buf()])?;
    let (mut set, mut diags) = load(&sources);
    let mut hashes = module_hashes_of(&active.set);
    hashes.extend(modules.iter().map(|(n, h)| (n.clone(), *h)));
    diags.extend(fill_wasm_hashes(&mut set, &hashes));
    let errors: Vec<_> = diags.into_iter().filter(|d| d.is_error()).collect();
    if !errors.is_empty() {
        print_diags(&errors);
        return user(format!(
            "the AIR in {} has {} error(s); nothing was proposed (see `aos air check {}`)",
            dir.display(),
            errors.len(),
            dir.display()
        ));
    }
    match air_fmt::patch::diff_to_patch(&active.set, &set) {
        Ok(p) => Ok(p),
        Err(d) => {
            print_diags(&d);
            user(format!(
                "the AIR in {} cannot be turned into a patch; nothing was proposed",
                dir.display()
            ))
        }
    }
}

fn read_patch(file: &Path) -> anyhow::Result<PatchDoc> {
    let bytes = std::fs::read(file)
        .map_err(|e| UserError(format!("cannot read {}: {e}", file.display())))?;
    PatchDoc::parse(&bytes).map_err(|d| {
        print_diags(&d);
        UserError(format!(
            "{} is not a patch document; nothing was proposed",
            file.display()
        ))
        .into()
    })
}

/// A change of the manifest: the patch, the candidate set and its assembly, and the
/// objects to store (modules given with --module, defs, the manifest).
struct ManifestChange {
    patch: PatchDoc,
    candidate: AirSet,
    manifest_hash: Hash,
    objects: Vec<Vec<u8>>,
}

/// Compile `source` (a patch document or an AIR directory) against the manifest in
/// force; every refusal names what is wrong and nothing is stored.
/// `Ok(None)` when `source` leaves the manifest as it is and the rules change
/// (`rules_change`); that is refused otherwise.
fn manifest_change(
    s: &Session,
    source: &Path,
    active: &ActiveManifest,
    modules: Vec<ModuleFile>,
    rules_change: bool,
) -> anyhow::Result<Option<ManifestChange>> {
    let module_map: BTreeMap<Name, Hash> =
        modules.iter().map(|m| (m.name.clone(), m.hash)).collect();
    let patch = if source.is_dir() {
        patch_from_dir(source, active, &module_map)?
    } else {
        read_patch(source)?
    };
    if patch.is_empty() && rules_change {
        return Ok(None);
    }
    if patch.is_empty() {
        return user(format!(
            "{} changes nothing in the manifest in force ({}); nothing was proposed",
            source.display(),
            active.hash
        ));
    }
    if patch.base_manifest_hash != active.hash {
        return user(format!(
            "the patch was made against manifest {}, but the world's manifest is now {}; nothing was proposed. Re-propose against the current manifest (e.g. `aos propose AIR_DIR`, which diffs against it)",
            patch.base_manifest_hash, active.hash
        ));
    }
    let candidate = match air_fmt::patch::apply(&active.set, &active.hash, &patch) {
        Ok(c) => c,
        Err(d) => {
            print_diags(&d);
            return user(format!(
                "the candidate manifest does not validate ({} error{}); nothing was proposed",
                d.len(),
                if d.len() == 1 { "" } else { "s" }
            ));
        }
    };
    let (assembled, diags) = assemble(&candidate);
    let Some(assembled) = assembled else {
        print_diags(&diags);
        return user("the candidate manifest does not assemble; nothing was proposed");
    };
    if assembled.manifest_hash == active.hash && rules_change {
        return Ok(None);
    }
    if assembled.manifest_hash == active.hash {
        return user(format!(
            "{} yields the manifest in force ({}) unchanged; nothing was proposed",
            source.display(),
            active.hash
        ));
    }
    // Every module the candidate runs must be in the store (or given with --module).
    for (name, hash) in module_hashes_of(&candidate) {
        if !module_map.contains_key(&name) && !s.world.objects.contains(&hash) {
            return user(format!(
                "defmodule {name} names wasm {hash}, which is not in this world; store it with `aos module add FILE.wasm` or pass --module {name}=FILE.wasm"
            ));
        }
    }
    for m in &modules {
        if let Err(e) = s.kernel.rt.check_module(&m.bytes) {
            return user(format!("--module {:?} refused: {e}", m.spec));
        }
    }
    let mut objects: Vec<Vec<u8>> = modules.into_iter().map(|m| m.bytes).collect();
    for (_, value) in assembled.defs.values() {
        objects.push(aos_store::canon::value_to_vec(value)?);
    }
    objects.push(aos_store::canon::value_to_vec(&assembled.manifest)?);
    Ok(Some(ManifestChange {
        patch,
        candidate,
        manifest_hash: assembled.manifest_hash,
        objects,
    }))
}

/// The governance settings the flags ask for, if they change the rules in force.
fn rules_change(a: &ProposeArgs, current: &Settings) -> anyhow::Result<Option<Settings>> {
    let mut next = current.clone();
    if let Some(n) = a.approvals {
        next.approvals = n;
    }
    if let Some(b) = a.require_shadow {
        next.require_shadow = b;
    }
    for (name, key) in super::init::parse_approvers(&a.approvers)? {
        next.approvers.insert(name, key);
    }
    for name in &a.remove_approvers {
        if next.approvers.remove(name).is_none() {
            return user(format!(
                "--remove-approver {name}: not a registered approver (see `aos info`)"
            ));
        }
    }
    // The same checks as settings read from the journal.
    Settings::from_json(&next.to_json()).map_err(|e| UserError(e.clone()))?;
    if next.approvers.is_empty() && !current.approvers.is_empty() {
        eprintln!("note: with no registered approvers left, any --as NAME may approve, unsigned");
    }
    Ok((next != *current).then_some(next))
}

pub fn run(ctx: &Ctx, a: ProposeArgs) -> anyhow::Result<Outcome> {
    let modules = read_modules(&a.modules)?;
    let mut s = open(ctx, Access::Write, BootOptions::default())?;
    let Some(active) = s.kernel.manifest.clone() else {
        return user("this world has no manifest to change; create it with `aos init --air DIR`");
    };
    let rules = rules_change(&a, &s.kernel.governance().settings)?;
    let change = match &a.source {
        Some(src) => manifest_change(&s, src, &active, modules, rules.is_some())?,
        None if rules.is_some() => None,
        None if a.approvals.is_some()
            || a.require_shadow.is_some()
            || !a.approvers.is_empty()
            || !a.remove_approvers.is_empty() =>
        {
            return user("these governance settings are the ones in force; nothing was proposed")
        }
        None => {
            return user(
                "give a patch document or an AIR directory, or governance settings to change (--approvals, --require-shadow, --approver, --remove-approver)",
            )
        }
    };
    // The change document: the patch (possibly without operations) and the new rules;
    // its hash is what approvers sign.
    let mut doc = match &change {
        Some(c) => c.patch.to_json(),
        None => json!({"version": "1", "base_manifest_hash": active.hash, "patches": []}),
    };
    if let (Some(r), Value::Object(o)) = (&rules, &mut doc) {
        o.insert("governance".into(), r.to_json());
    }
    let doc_bytes = aos_store::canon::value_to_vec(&doc)?;
    let mut batch = s.world.objects.batch();
    for o in change.iter().flat_map(|c| c.objects.iter()) {
        batch.put_bytes(o)?;
    }
    batch.put_bytes(&doc_bytes)?;
    batch.commit()?;
    let patch_hash = Hash::of(&doc_bytes);
    let candidate_hash = change.as_ref().map_or(active.hash, |c| c.manifest_hash);
    // The kernel loads the stored candidate (as `apply` will) before `proposed` is
    // journaled, and refuses it if it does not load.
    let id = s.kernel.governance().next_id();
    let mut body = json!({
        "id": id,
        "patch": patch_hash,
        "base_manifest": active.hash,
        "manifest": candidate_hash,
        "origin": ctx.origin(),
    });
    if let Value::Object(o) = &mut body {
        if let Some(msg) = &a.message {
            o.insert("message".into(), Value::String(msg.clone()));
        }
        if let Some(r) = &rules {
            o.insert("governance".into(), r.to_json());
        }
    }
    let inj = s.govern(PROPOSED, body)?;
    s.finish()?;
    let candidate = change.as_ref().map_or(&active.set, |c| &c.candidate);
    let d = air_fmt::diff::diff(&active.set, candidate);
    let operations = change.as_ref().map_or(0, |c| c.patch.patches.len());
    if ctx.json() {
        print_json(&json!({
            "id": id,
            "seq": inj.seq,
            "patch": patch_hash,
            "base_manifest": active.hash,
            "manifest": candidate_hash,
            "operations": operations,
            "governance": rules.as_ref().map(Settings::to_json),
            "diff": serde_json::to_value(&d)?,
        }))?;
    } else {
        println!(
            "proposal {id} (seq {}): patch {patch_hash}, {operations} operation{}",
            inj.seq,
            if operations == 1 { "" } else { "s" }
        );
        println!("  manifest {} -> {}", active.hash, candidate_hash);
        if let Some(r) = &rules {
            println!("  governance -> {}", r.to_json());
        }
        if change.is_some() {
            print!("{}", air_fmt::diff::render_text(&d, false));
        }
        ctx.info(&format!(
            "next: `aos shadow {id}` to rehearse it, `aos approve {id}`, then `aos apply {id}`"
        ));
    }
    Ok(Outcome::Ok)
}
