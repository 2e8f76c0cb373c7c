//! `aos approve|reject ID` (optionally signed), `aos apply ID` and `aos keygen FILE`:
//! governance decisions. Each is checked by the kernel's governance rules before it is
//! journaled, so a refused decision writes nothing.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;

use aos_adapters::signing::ReceiptSigner;
use aos_kernel::governance::{
    self, approval_bytes, signature_json, Decider, APPLIED, APPROVED, REJECTED,
};
use aos_kernel::session::{BootOptions, Session};
use aos_store::world::Access;
use serde_json::{json, Value};

use super::session::open;
use super::{print_json, Ctx};
use crate::args::{ApplyArgs, DecideArgs, KeygenArgs};
use crate::exit::{user, Outcome, UserError};

fn refused(r: governance::Refusal) -> anyhow::Error {
    UserError(format!("{}; nothing was journaled", r.0)).into()
}

/// The decision's signature: made here with `--key`, or given with `--signature`.
fn signature(
    s: &Session,
    a: &DecideArgs,
    decision: &str,
    approver: &str,
    world: &str,
) -> anyhow::Result<Option<(String, [u8; 64])>> {
    let p = s.kernel.governance().get(a.id).map_err(refused)?;
    if let Some(file) = &a.key {
        let bytes =
            std::fs::read(file).map_err(|e| UserError(format!("--key {}: {e}", file.display())))?;
        let signer = ReceiptSigner::from_file_bytes(&bytes).map_err(|e| {
            UserError(format!(
                "--key {}: {e} (create one with `aos keygen FILE`)",
                file.display()
            ))
        })?;
        return Ok(Some((
            signer.public_key(),
            signer.sign(&approval_bytes(p, decision, approver, world)),
        )));
    }
    match (&a.signature, &a.public_key) {
        (Some(sig), Some(key)) => {
            let bytes: [u8; 64] = air_fmt::value::base64_decode(sig.trim())
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    UserError("--signature is not the base64 of a 64-byte ed25519 signature".into())
                })?;
            aos_store::receipt::parse_public_key(key)
                .map_err(|e| UserError(format!("--public-key: {e}")))?;
            Ok(Some((key.clone(), bytes)))
        }
        _ => Ok(None),
    }
}

fn decide(ctx: &Ctx, a: DecideArgs, kind: &str) -> anyhow::Result<Outcome> {
    let mut s = open(ctx, Access::Write, BootOptions::default())?;
    let approver = ctx.actor();
    let world = s.world.config.world_id.clone();
    let sig = signature(&s, &a, kind, &approver, &world)?;
    let book = s.kernel.governance();
    let d = Decider {
        approver: &approver,
        world: &world,
        signature: sig.as_ref().map(|(k, b)| (k.as_str(), b)),
    };
    if kind == APPROVED {
        book.check_approve(a.id, &d)
    } else {
        book.check_reject(a.id, &d)
    }
    .map_err(refused)?;
    let p = book.get(a.id).map_err(refused)?;
    let mut body = json!({
        "id": a.id,
        "patch": p.patch,
        "approver": approver,
        "world": world,
        "origin": ctx.origin(),
    });
    if let (Some((key, bytes)), Value::Object(o)) = (&sig, &mut body) {
        o.insert("signature".into(), signature_json(key, bytes));
    }
    let inj = s.govern(kind, body)?;
    let (approvals, need) = {
        let book = s.kernel.governance();
        let have = book.get(a.id).map(|p| p.approvals.len()).unwrap_or(0);
        (have, book.settings.approvals)
    };
    s.finish()?;
    if ctx.json() {
        print_json(&json!({
            "id": a.id,
            "seq": inj.seq,
            "decision": kind,
            "approver": approver,
            "signed_by": sig.as_ref().map(|(k, _)| k),
            "approvals": approvals,
            "approvals_needed": need,
        }))?;
    } else {
        let signed = sig
            .as_ref()
            .map(|(k, _)| format!(", signed by {k}"))
            .unwrap_or_default();
        println!(
            "proposal {} {kind} by {approver}{signed} (seq {})",
            a.id, inj.seq
        );
        if kind == APPROVED {
            println!("  approvals: {approvals} of {need} needed");
        }
    }
    Ok(Outcome::Ok)
}

pub fn approve(ctx: &Ctx, a: DecideArgs) -> anyhow::Result<Outcome> {
    decide(ctx, a, APPROVED)
}

pub fn reject(ctx: &Ctx, a: DecideArgs) -> anyhow::Result<Outcome> {
    decide(ctx, a, REJECTED)
}

pub fn apply(ctx: &Ctx, a: ApplyArgs) -> anyhow::Result<Outcome> {
    let mut s = open(ctx, Access::Write, BootOptions::default())?;
    let active = s.kernel.state.manifest;
    let p = s
        .kernel
        .governance()
        .check_apply(a.id, active.as_ref())
        .map_err(refused)?;
    let (base, candidate) = (p.base, p.candidate);
    let rules = p.settings.as_ref().map(governance::Settings::to_json);
    let mut body = json!({
        "id": a.id,
        "patch": p.patch,
        "base_manifest": base,
        "manifest": candidate,
        "origin": ctx.origin(),
    });
    if let (Some(r), Value::Object(o)) = (&rules, &mut body) {
        o.insert("governance".into(), r.clone());
    }
    let inj = s.govern(APPLIED, body)?;
    let in_flight = s
        .kernel
        .state
        .runs
        .values()
        .filter(|r| r.manifest != candidate)
        .count();
    s.finish()?;
    if ctx.json() {
        print_json(&json!({
            "id": a.id,
            "seq": inj.seq,
            "base_manifest": base,
            "manifest": candidate,
            "governance": rules,
            "runs_on_old_manifest": in_flight,
        }))?;
    } else {
        println!("applied proposal {} (seq {})", a.id, inj.seq);
        println!("  manifest {base} -> {candidate}");
        if let Some(r) = &rules {
            println!("  governance -> {r}");
        }
        if in_flight > 0 {
            println!(
                "  {in_flight} plan run{} in flight finish{} under the old manifest",
                if in_flight == 1 { "" } else { "s" },
                if in_flight == 1 { "es" } else { "" }
            );
        }
    }
    Ok(Outcome::Ok)
}

pub fn keygen(ctx: &Ctx, a: KeygenArgs) -> anyhow::Result<Outcome> {
    let signer = ReceiptSigner::generate()?;
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&a.file)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return user(format!(
                "{} already exists; keygen never overwrites a key",
                a.file.display()
            ))
        }
        Err(e) => return user(format!("cannot create {}: {e}", a.file.display())),
    };
    f.write_all(&signer.to_file_bytes())?;
    f.sync_all()?;
    if ctx.json() {
        print_json(
            &json!({"file": a.file.display().to_string(), "public_key": signer.public_key()}),
        )?;
    } else {
        println!("{}", signer.public_key());
        ctx.info(&format!(
            "private key written to {} (mode 0600); register the public key with `aos init --approver NAME=KEY` or `aos propose --approver NAME=KEY`",
            a.file.display()
        ));
    }
    Ok(Outcome::Ok)
}
