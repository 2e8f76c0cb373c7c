//! `aos propose PATCH|AIR_DIR [-m MSG]`: compile a patch (or a directory of AIR diffed
//! into one) against the manifest in force, validate the whole candidate, store it and
//! journal `proposed`. Every refusal happens before anything is stored or journaled.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use air_fmt::assemble::{assemble, fill_wasm_hashes};
use air_fmt::model::{Def, HashRef};
use air_fmt::patch::PatchDoc;
use air_fmt::{load::load, DefKind, Name};
use aos_kernel::governance::PROPOSED;
use aos_kernel::manifest::ActiveManifest;
use aos_kernel::session::BootOptions;
use aos_store::world::Access;
use aos_store::Hash;
use serde_json::{json, Value};

use super::air::{print_diags, read_modules, read_sources};
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

pub fn run(ctx: &Ctx, a: ProposeArgs) -> anyhow::Result<Outcome> {
    let modules = read_modules(&a.modules)?;
    let module_map: BTreeMap<Name, Hash> =
        modules.iter().map(|m| (m.name.clone(), m.hash)).collect();
    let mut s = open(ctx, Access::Write, BootOptions::default())?;
    let Some(active) = s.kernel.manifest.clone() else {
        return user("this world has no manifest to change; create it with `aos init --air DIR`");
    };
    let patch = if a.source.is_dir() {
        patch_from_dir(&a.source, &active, &module_map)?
    } else {
        read_patch(&a.source)?
    };
    if patch.is_empty() {
        return user(format!(
            "{} changes nothing in the manifest in force ({}); nothing was proposed",
            a.source.display(),
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
    if assembled.manifest_hash == active.hash {
        return user(format!(
            "{} yields the manifest in force ({}) unchanged; nothing was proposed",
            a.source.display(),
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
    let patch_json = patch.to_json();
    let patch_bytes = aos_store::canon::value_to_vec(&patch_json)?;
    let mut objects: Vec<Vec<u8>> = modules.into_iter().map(|m| m.bytes).collect();
    for (_, value) in assembled.defs.values() {
        objects.push(aos_store::canon::value_to_vec(value)?);
    }
    objects.push(aos_store::canon::value_to_vec(&assembled.manifest)?);
    objects.push(patch_bytes.clone());
    let mut batch = s.world.objects.batch();
    for o in &objects {
        batch.put_bytes(o)?;
    }
    batch.commit()?;
    let patch_hash = Hash::of(&patch_bytes);
    // The kernel loads the stored candidate the way `apply` will, before it is journaled.
    let loaded = Arc::new(ActiveManifest::load(
        &s.world.objects,
        &assembled.manifest_hash,
    )?);
    let id = s.kernel.governance().next_id();
    let mut body = json!({
        "id": id,
        "patch": patch_hash,
        "base_manifest": active.hash,
        "manifest": loaded.hash,
        "origin": ctx.origin(),
    });
    if let (Some(msg), Value::Object(o)) = (&a.message, &mut body) {
        o.insert("message".into(), Value::String(msg.clone()));
    }
    let inj = s.govern(PROPOSED, body)?;
    s.finish()?;
    let d = air_fmt::diff::diff(&active.set, &candidate);
    if ctx.json() {
        print_json(&json!({
            "id": id,
            "seq": inj.seq,
            "patch": patch_hash,
            "base_manifest": active.hash,
            "manifest": loaded.hash,
            "operations": patch.patches.len(),
            "diff": serde_json::to_value(&d)?,
        }))?;
    } else {
        println!(
            "proposal {id} (seq {}): patch {patch_hash}, {} operation{}",
            inj.seq,
            patch.patches.len(),
            if patch.patches.len() == 1 { "" } else { "s" }
        );
        println!("  manifest {} -> {}", active.hash, loaded.hash);
        print!("{}", air_fmt::diff::render_text(&d, false));
        ctx.info(&format!(
            "next: `aos shadow {id}` to rehearse it, `aos approve {id}`, then `aos apply {id}`"
        ));
    }
    Ok(Outcome::Ok)
}
