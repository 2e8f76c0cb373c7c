//! `aos replay [--from-genesis] [--verify]`: rebuild the state from the journal, check
//! every re-derived record against the recorded one, and explain the first divergence
//! (seq, both records side by side, a line diff, the module involved).

use std::time::Instant;

use aos_kernel::replay::Divergence;
use aos_kernel::session::{BootOptions, From, Start};
use aos_kernel::KernelError;
use aos_store::world::Access;
use serde_json::{json, Value};

use super::session::open;
use super::{print_json, Ctx};
use crate::args::ReplayArgs;
use crate::exit::Outcome;

pub fn run(ctx: &Ctx, args: ReplayArgs) -> anyhow::Result<Outcome> {
    let start = if args.from_genesis || args.verify {
        Start::Genesis
    } else {
        Start::Snapshot
    };
    let t = Instant::now();
    let opts = BootOptions {
        start,
        until: None,
        verify_snapshots: args.verify,
    };
    let s = match open(ctx, Access::Read, opts) {
        Ok(s) => s,
        Err(e) => {
            if let Some(KernelError::Diverged(d)) = e.downcast_ref::<KernelError>() {
                report_divergence(ctx, d)?;
                return Ok(Outcome::Problem);
            }
            return Err(e);
        }
    };
    let secs = t.elapsed().as_secs_f64();
    let b = &s.boot;
    let state = s.kernel.state.hash();
    let head = s.world.journal.head().map_or(0, |h| h.seq);
    let from = match &b.from {
        From::Genesis => "genesis".to_string(),
        From::Snapshot { seq, .. } => format!("the snapshot at seq {seq}"),
        From::Cache { seq } => format!("the state cache at seq {seq}"),
    };
    if ctx.json() {
        print_json(&json!({
            "ok": true,
            "from": from,
            "head": head,
            "records": b.replayed,
            "inputs": b.inputs,
            "derived_checked": b.derived,
            "snapshots_checked": b.snapshots_checked,
            "pending": s.pending(),
            "state": state,
            "seconds": secs,
        }))?;
    } else {
        println!(
            "replayed {} records from {from} to seq {head} in {:.2}s: {} inputs, {} derived records re-derived and identical{}",
            b.replayed,
            secs,
            b.inputs,
            b.derived,
            if args.verify { format!(
                    ", {} snapshot{} verified",
                    b.snapshots_checked,
                    if b.snapshots_checked == 1 { "" } else { "s" }
                ) } else { String::new() }
        );
        println!("state {state}");
        if s.pending() > 0 {
            println!("{} derived record(s) of the last input are not journaled yet; `aos run` completes them", s.pending());
        }
    }
    Ok(Outcome::Ok)
}

fn report_divergence(ctx: &Ctx, d: &Divergence) -> anyhow::Result<()> {
    let recorded = d.recorded.as_ref().map(|r| {
        json!({"seq": r.seq, "at_ns": r.at_ns.to_string(), "kind": r.kind, "cause": r.cause, "body": r.body})
    });
    let derived = d.derived.as_ref().map(|r| {
        json!({"seq": d.seq, "at_ns": r.at_ns.to_string(), "kind": r.kind, "cause": r.cause, "body": r.body})
    });
    if ctx.json() {
        return print_json(&json!({
            "ok": false,
            "divergence": {
                "seq": d.seq,
                "reason": d.reason,
                "module": d.module,
                "recorded": recorded,
                "derived": derived,
            }
        }));
    }
    let pretty = |v: &Option<Value>| {
        v.as_ref().map_or("(nothing)".to_string(), |v| {
            serde_json::to_string_pretty(v).unwrap_or_default()
        })
    };
    let (a, b) = (pretty(&recorded), pretty(&derived));
    println!("replay diverged at seq {}", d.seq);
    println!("  {}", d.reason);
    if let Some(m) = &d.module {
        println!("  module {m}");
    }
    println!();
    print!(
        "{}",
        side_by_side(&a, &b, "recorded in the journal", "re-derived by replay")
    );
    println!();
    println!("diff (- recorded, + re-derived):");
    let diff = similar::TextDiff::from_lines(&a, &b);
    for change in diff.iter_all_changes() {
        let sign = match change.tag() {
            similar::ChangeTag::Delete => "-",
            similar::ChangeTag::Insert => "+",
            similar::ChangeTag::Equal => " ",
        };
        print!("{sign} {change}");
        if change.missing_newline() {
            println!();
        }
    }
    eprintln!(
        "aos: replay diverged at seq {}: the journal is not what this kernel derives from its inputs (a tampered record, or a module whose behaviour changed)",
        d.seq
    );
    Ok(())
}

/// Two texts in columns, lines that differ marked with `|`.
fn side_by_side(a: &str, b: &str, ta: &str, tb: &str) -> String {
    let la: Vec<&str> = a.lines().collect();
    let lb: Vec<&str> = b.lines().collect();
    let width = la
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(ta.len(), 70);
    let mut out = format!("{ta:<width$}   {tb}\n");
    for i in 0..la.len().max(lb.len()) {
        let l = la.get(i).copied().unwrap_or("");
        let r = lb.get(i).copied().unwrap_or("");
        let l: String = if l.chars().count() > width {
            l.chars().take(width - 1).chain(['…']).collect()
        } else {
            l.to_string()
        };
        let mark = if la.get(i) == lb.get(i) { " " } else { "|" };
        out.push_str(&format!("{l:<width$} {mark} {r}\n"));
    }
    out
}
