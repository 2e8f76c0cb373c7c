//! `aos init [DIR] [--air SRC] [--module NAME=FILE.wasm]…`: create a world with a fresh
//! receipt key and its genesis record; with `--air`, the validated AIR becomes the
//! genesis manifest (every def, the manifest and the modules stored as objects first).

use std::path::Path;

use aos_adapters::signing::ReceiptSigner;
use aos_kernel::wasm::{Limits, Runtime};
use aos_store::world::{Genesis, World};
use aos_store::Hash;
use serde_json::{json, Map, Value};

use super::air::{load_checked_with, print_diags, read_modules};
use super::{print_json, Ctx};
use crate::args::InitArgs;
use crate::exit::{user, Outcome, UserError};

/// What `--air` contributes to the genesis: objects to store and the manifest hash.
struct GenesisAir {
    objects: Vec<Vec<u8>>,
    manifest: Hash,
    defs: usize,
}

fn genesis_air(src: &Path, modules: &[String]) -> anyhow::Result<GenesisAir> {
    let modules = read_modules(modules)?;
    let hashes = modules.iter().map(|m| (m.name.clone(), m.hash)).collect();
    let (set, assembled, diags) = load_checked_with(&[src.to_path_buf()], &hashes)?;
    print_diags(&diags);
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let Some(assembled) = assembled.filter(|_| errors == 0) else {
        return user(format!(
            "the AIR in {} has {errors} error{}; nothing was created (see `aos air check {}`)",
            src.display(),
            if errors == 1 { "" } else { "s" },
            src.display()
        ));
    };
    let rt = Runtime::new(None, Limits::default())?;
    let mut objects = Vec::new();
    for m in modules {
        if let Err(e) = rt.check_module(&m.bytes) {
            return Err(UserError(format!("--module {:?} refused: {e}", m.spec)).into());
        }
        objects.push(m.bytes);
    }
    for (_, value) in assembled.defs.values() {
        objects.push(aos_store::canon::value_to_vec(value)?);
    }
    objects.push(aos_store::canon::value_to_vec(&assembled.manifest)?);
    Ok(GenesisAir {
        objects,
        manifest: assembled.manifest_hash,
        defs: set.defs.len(),
    })
}

pub fn run(ctx: &Ctx, args: InitArgs) -> anyhow::Result<Outcome> {
    if args.air.is_none() && !args.modules.is_empty() {
        return user("--module fills a defmodule of the genesis AIR; give the AIR with --air SRC");
    }
    let air = args
        .air
        .as_deref()
        .map(|src| genesis_air(src, &args.modules))
        .transpose()?;
    let signer = ReceiptSigner::generate()?;
    let secret = signer.to_file_bytes();
    let mut body = Map::new();
    if let Some(a) = &air {
        body.insert("manifest".into(), Value::String(a.manifest.to_string()));
    }
    let mut limits = Limits::default();
    if let Some(f) = args.fuel_per_step {
        if f == 0 {
            return user("--fuel-per-step must be at least 1");
        }
        limits.fuel_per_step = f;
    }
    if let Some(m) = args.memory_mib {
        if !(1..=4096).contains(&m) {
            return user("--memory-mib must be between 1 and 4096 (a 32-bit WASM memory holds at most 4 GiB)");
        }
        limits.memory_bytes = (m as usize) << 20;
        limits.max_output_bytes = limits.max_output_bytes.min(limits.memory_bytes / 2);
    }
    if let Err(e) = Runtime::new(None, limits) {
        return user(format!("these limits cannot run reducers: {e}"));
    }
    body.insert("limits".into(), aos_kernel::state::limits_json(&limits));
    let mut gov = aos_kernel::governance::Settings::default();
    if let Some(n) = args.approvals {
        if n == 0 {
            return user("--approvals must be at least 1: apply always needs an approval");
        }
        gov.approvals = n;
    }
    gov.require_shadow = !args.no_shadow_required;
    gov.approvers.extend(parse_approvers(&args.approvers)?);
    // The checks the kernel applies when it reads the genesis record.
    if let Err(e) = aos_kernel::governance::Settings::from_json(&gov.to_json()) {
        return user(format!("{e}; nothing was created"));
    }
    if gov != aos_kernel::governance::Settings::default() {
        body.insert("governance".into(), gov.to_json());
    }
    let world = World::create(
        &args.dir,
        Genesis {
            public_key: signer.public_key(),
            secret_key_file: &secret,
            origin: ctx.origin(),
            objects: air.as_ref().map(|a| a.objects.clone()).unwrap_or_default(),
            body,
        },
    )?;
    let head = world.journal.head();
    if ctx.json() {
        print_json(&json!({
            "root": world.layout.root.display().to_string(),
            "world_id": world.config.world_id,
            "head": head.map(|h| json!({"seq": h.seq, "hash": h.hash})),
            "manifest": air.as_ref().map(|a| a.manifest.to_string()),
            "receipt_public_key": signer.public_key(),
        }))?;
    } else {
        println!(
            "Initialized aos world {} in {}",
            world.config.world_id,
            world.layout.aos.display()
        );
        if let Some(a) = &air {
            println!("genesis manifest {} ({} defs)", a.manifest, a.defs);
        }
        if air.is_some() {
            ctx.info("next: `aos send SCHEMA VALUE` to inject an event, `aos state REDUCER` to see a reducer's state, `aos log` to see the journal");
        } else {
            ctx.info("next: `aos blob put FILE` to store a blob, `aos log` to see the journal, `aos fsck` to check it");
        }
    }
    Ok(Outcome::Ok)
}

/// `--approver NAME=KEY` arguments: the name and a parsed ed25519 public key.
pub fn parse_approvers(args: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for a in args {
        let Some((name, key)) = a.split_once('=').filter(|(n, _)| !n.is_empty()) else {
            return user(format!(
                "--approver {a:?}: write NAME=ed25519:<hex> (see `aos keygen`)"
            ));
        };
        if let Err(e) = aos_store::receipt::parse_public_key(key) {
            return user(format!(
                "--approver {name}: {e} (`aos keygen FILE` prints one)"
            ));
        }
        out.push((name.to_string(), key.to_string()));
    }
    Ok(out)
}
