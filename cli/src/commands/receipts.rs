//! `aos receipts ls|show|verify`: the signed receipts in the journal, verified offline
//! with nothing but a public key (the world's config, or one given with --public-key).

use aos_store::journal::{parse_line, Record};
use aos_store::receipt::Receipt;
use aos_store::world::{Access, World};
use serde_json::{json, Value};

use super::{print_json, Ctx};
use crate::args::{ReceiptsCommand, ReceiptsShowArgs, ReceiptsVerifyArgs};
use crate::exit::{Outcome, UserError};

/// One journaled receipt and whether it verifies.
pub struct Checked {
    pub seq: u64,
    pub receipt: Result<Receipt, String>,
    pub verdict: Result<(), String>,
}

/// Every `effect_receipt` record of the journal, checked against `keys`. Lines of other
/// kinds are skipped without being parsed.
pub fn check_all(w: &World, keys: &[String]) -> anyhow::Result<Vec<Checked>> {
    let mut out = Vec::new();
    let path = w.journal.path().to_path_buf();
    let mut lines = w.journal.iter_from(0)?;
    while let Some(item) = lines.next_line() {
        let (seq, offset, line) = item?;
        if !contains(line, br#""kind":"effect_receipt""#) {
            continue;
        }
        let rec: Record = parse_line(&path, seq, offset, line)?;
        if rec.kind != "effect_receipt" {
            continue;
        }
        let receipt = Receipt::from_json(rec.body.get("receipt").unwrap_or(&Value::Null))
            .map_err(|e| e.to_string());
        let verdict = match &receipt {
            Ok(r) => r
                .verify_any(keys.iter().map(String::as_str))
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.clone()),
        };
        out.push(Checked {
            seq,
            receipt,
            verdict,
        });
    }
    Ok(out)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn keys_of(w: &World, given: Option<&str>) -> anyhow::Result<Vec<String>> {
    match given {
        Some(k) => {
            aos_store::receipt::parse_public_key(k)
                .map_err(|e| UserError(format!("--public-key: {e}")))?;
            Ok(vec![k.to_string()])
        }
        None => Ok(w
            .config
            .receipt_keys
            .iter()
            .map(|k| k.public_key.clone())
            .collect()),
    }
}

pub fn run(ctx: &Ctx, cmd: ReceiptsCommand) -> anyhow::Result<Outcome> {
    let root = ctx.world_root()?;
    let w = World::open(&root, Access::Read)?;
    match cmd {
        ReceiptsCommand::Ls(a) => {
            let all = check_all(&w, &keys_of(&w, a.public_key.as_deref())?)?;
            list(ctx, &all)?;
            Ok(verdict(&all))
        }
        ReceiptsCommand::Verify(ReceiptsVerifyArgs { public_key }) => {
            let all = check_all(&w, &keys_of(&w, public_key.as_deref())?)?;
            let bad: Vec<&Checked> = all.iter().filter(|c| c.verdict.is_err()).collect();
            if ctx.json() {
                print_json(&json!({
                    "ok": bad.is_empty(),
                    "receipts": all.len(),
                    "failed": bad.iter().map(|c| json!({"seq": c.seq, "error": c.verdict.as_ref().err()})).collect::<Vec<_>>(),
                }))?;
            } else {
                for c in &bad {
                    println!(
                        "seq {}: {}",
                        c.seq,
                        c.verdict.as_ref().err().map_or("", |s| s)
                    );
                }
                println!(
                    "{} receipt{} checked: {} verified, {} failed",
                    all.len(),
                    if all.len() == 1 { "" } else { "s" },
                    all.len() - bad.len(),
                    bad.len()
                );
            }
            Ok(verdict(&all))
        }
        ReceiptsCommand::Show(ReceiptsShowArgs { which, public_key }) => {
            let all = check_all(&w, &keys_of(&w, public_key.as_deref())?)?;
            let found = all.iter().find(|c| {
                c.seq.to_string() == which
                    || c.receipt.as_ref().is_ok_and(|r| {
                        let h = r.intent_hash.to_string();
                        h == which
                            || (which.len() >= 4
                                && h.trim_start_matches("blake3:")
                                    .starts_with(which.trim_start_matches("blake3:")))
                    })
            });
            let Some(c) = found else {
                return Err(UserError(format!(
                    "no receipt at seq or for intent {which:?} (`aos receipts ls` lists them)"
                ))
                .into());
            };
            let body = c
                .receipt
                .as_ref()
                .map(Receipt::to_json)
                .unwrap_or(Value::Null);
            if ctx.json() {
                print_json(
                    &json!({"seq": c.seq, "receipt": body, "verified": c.verdict.is_ok(), "error": c.verdict.as_ref().err()}),
                )?;
            } else {
                println!("seq {}", c.seq);
                println!("{}", serde_json::to_string_pretty(&body)?);
                match &c.verdict {
                    Ok(()) => println!("signature: verified"),
                    Err(e) => println!("signature: FAILED: {e}"),
                }
            }
            Ok(if c.verdict.is_ok() {
                Outcome::Ok
            } else {
                Outcome::Problem
            })
        }
    }
}

fn list(ctx: &Ctx, all: &[Checked]) -> anyhow::Result<()> {
    for c in all {
        match (&c.receipt, ctx.json()) {
            (Ok(r), true) => print_json(&json!({
                "seq": c.seq,
                "intent_hash": r.intent_hash,
                "effect_kind": r.effect_kind,
                "adapter_id": r.adapter_id,
                "status": r.status.as_str(),
                "verified": c.verdict.is_ok(),
            }))?,
            (Ok(r), false) => println!(
                "seq {:<6} {} {:<14} {:<8} {:<8} {}",
                c.seq,
                r.intent_hash.short(),
                r.effect_kind,
                r.status.as_str(),
                r.adapter_id,
                if c.verdict.is_ok() {
                    "verified"
                } else {
                    "NOT VERIFIED"
                }
            ),
            (Err(e), true) => print_json(&json!({"seq": c.seq, "error": e}))?,
            (Err(e), false) => println!("seq {:<6} malformed receipt: {e}", c.seq),
        }
    }
    if all.is_empty() && !ctx.json() {
        ctx.info("no receipts in this world's journal");
    }
    Ok(())
}

fn verdict(all: &[Checked]) -> Outcome {
    if all.iter().all(|c| c.verdict.is_ok()) {
        Outcome::Ok
    } else {
        Outcome::Problem
    }
}
