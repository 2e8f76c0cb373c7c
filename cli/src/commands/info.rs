//! `aos info`: identity, head, counts and keys of a world.

use aos_store::world::{Access, World};
use serde_json::json;

use super::{print_json, Ctx};
use crate::exit::Outcome;
use crate::output::{size, time, warn_all};

pub fn run(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let root = ctx.world_root()?;
    let mut w = World::open(&root, Access::Read)?;
    warn_all(w.warnings());
    let head = w.journal.head();
    // The manifest and the governance rules in force: genesis, then applied changes.
    let in_force = super::in_force(&w.journal)?;
    let manifest = in_force.as_ref().and_then(|f| f.manifest);
    let governance = in_force
        .as_ref()
        .and_then(|f| aos_kernel::governance::Settings::from_json(&f.rules).ok());
    let objects = w.objects.ledger_len()?;
    let c = &w.config;
    if ctx.json() {
        print_json(&json!({
            "root": root.display().to_string(),
            "world_id": c.world_id,
            "format_version": c.format_version,
            "created_at_ns": aos_store::canon::u64_value(c.created_at_ns),
            "head": head.map(|h| json!({"seq": h.seq, "hash": h.hash})),
            "manifest": manifest.map(|m| m.to_string()),
            "governance": governance.as_ref().map(|g| g.to_json()),
            "records": w.journal.len(),
            "journal_bytes": w.journal.byte_len(),
            "objects_written": objects,
            "alternates": w.objects.alternates(),
            "forked_from": c.forked_from,
            "receipt_keys": c.receipt_keys,
        }))?;
        return Ok(Outcome::Ok);
    }
    println!("world     {}", root.display());
    println!("id        {}", c.world_id);
    println!("format    {}", c.format_version);
    println!("created   {}", time(c.created_at_ns));
    match head {
        Some(h) => println!("head      seq {}  {}", h.seq, h.hash),
        None => println!("head      (empty journal)"),
    }
    println!(
        "records   {} ({})",
        w.journal.len(),
        size(w.journal.byte_len())
    );
    let shared = match w.objects.alternates().len() {
        0 => String::new(),
        n => format!(
            " (+ shared from {n} alternate{})",
            if n == 1 { "" } else { "s" }
        ),
    };
    println!("objects   {objects} written here{shared}");
    if let Some(m) = manifest {
        println!("manifest  {m}");
    }
    if let Some(g) = &governance {
        let approvers = if g.approvers.is_empty() {
            "any name".to_string()
        } else {
            format!(
                "only {}",
                g.approvers
                    .iter()
                    .map(|(n, k)| format!("{n} {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        println!(
            "governs   apply needs {} approval{} ({approvers}){}",
            g.approvals,
            if g.approvals == 1 { "" } else { "s" },
            if g.require_shadow {
                " and a clean shadow report"
            } else {
                ""
            }
        );
    }
    if let Some(f) = &c.forked_from {
        println!(
            "forked    from {} at seq {} ({}) in {}",
            f.world_id,
            f.seq,
            f.hash.short(),
            f.path
        );
    }
    for k in &c.receipt_keys {
        let owner = k
            .world_id
            .as_ref()
            .map(|id| format!(" of world {id}"))
            .unwrap_or_default();
        println!("key       {} ({}{owner})", k.public_key, k.role);
    }
    Ok(Outcome::Ok)
}
