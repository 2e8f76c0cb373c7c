//! `aos fsck`: every check the store offers plus the world's keys; prints each finding
//! with its location and exits 1 if any is an error.

use std::os::unix::fs::PermissionsExt;

use aos_adapters::signing::ReceiptSigner;
use aos_store::fsck::{fsck, Finding, Severity};
use aos_store::world::{Config, Layout};
use serde_json::json;

use super::{print_json, Ctx};
use crate::exit::Outcome;
use crate::output::size;

pub fn run(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let root = ctx.world_root()?;
    let progress = ctx.progress();
    let mut findings = Vec::new();
    let json = ctx.json();
    let mut emit = |f: Finding| {
        if !json {
            progress_safe_print(&f);
        }
        findings.push(f);
    };
    let summary = fsck(
        &root,
        &|phase, done, total| progress.update(phase, done, total),
        &mut emit,
    );
    check_keys(&Layout::new(&root), &mut emit);
    // The world-level checks share one open; journal damage that prevents it is
    // already reported by the store checks above.
    if let Ok(w) = aos_store::world::World::open(&root, aos_store::world::Access::Read) {
        check_manifest(&w, &mut emit);
        check_snapshots(&w, &mut emit);
        check_receipts(&w, &mut emit);
        check_decisions(&w, &mut emit);
    }
    progress.finish();
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let notes = findings.len() - errors;
    if json {
        print_json(
            &json!({"ok": errors == 0, "errors": errors, "notes": notes, "summary": summary, "findings": findings}),
        )?;
    } else {
        println!(
            "checked {} records ({}), {} objects ({}): {} error{}, {} note{}",
            summary.records,
            size(summary.journal_bytes),
            summary.objects,
            size(summary.object_bytes),
            errors,
            if errors == 1 { "" } else { "s" },
            notes,
            if notes == 1 { "" } else { "s" }
        );
    }
    Ok(if errors == 0 {
        Outcome::Ok
    } else {
        Outcome::Problem
    })
}

fn progress_safe_print(f: &Finding) {
    let label = match f.severity {
        Severity::Error => "error",
        Severity::Note => "note",
    };
    println!("{label}: {}: {} [{}]", f.location, f.what, f.code);
}

/// The active manifest named by the journal is in the object store and is a manifest.
fn check_manifest(w: &aos_store::world::World, emit: &mut dyn FnMut(Finding)) {
    let Ok(Some((Some(hash), seq, kind))) = super::active_manifest_record(&w.journal) else {
        return;
    };
    let location = format!("object {hash} (journal seq {seq}, {kind}.manifest)");
    let mut err = |code, what: String| {
        emit(Finding {
            severity: Severity::Error,
            code,
            location: location.clone(),
            what,
        })
    };
    match w.objects.get_json::<serde_json::Value>(&hash) {
        Ok(v) if v.get("$kind").and_then(serde_json::Value::as_str) == Some("manifest") => {
            // Every def it names is present and the set hashes to the manifest's name.
            if let Err(e) = aos_kernel::manifest::ActiveManifest::load(&w.objects, &hash) {
                err("manifest_invalid", e.to_string());
            }
        }
        Ok(_) => err(
            "manifest_invalid",
            "the manifest in force is not an AIR manifest".into(),
        ),
        Err(aos_store::Error::ObjectNotFound { .. }) => err(
            "object_missing",
            "the manifest in force is missing from the object store".into(),
        ),
        Err(e) => err("manifest_invalid", e.to_string()),
    }
}

/// Every snapshot in the index is a snapshot record of the journal, and its object and
/// every state and cell index it names are present and intact.
fn check_snapshots(w: &aos_store::world::World, emit: &mut dyn FnMut(Finding)) {
    let index = w.layout.snapshots().join("index");
    for (seq, hash) in aos_kernel::session::read_snapshot_index(&index) {
        let location = format!("snapshot {hash} (journal seq {seq})");
        let mut err = |code, what: String| {
            emit(Finding {
                severity: Severity::Error,
                code,
                location: location.clone(),
                what,
            })
        };
        match w.journal.read(seq) {
            Ok((rec, _))
                if rec.kind == "snapshot"
                    && rec.body.get("snapshot").and_then(serde_json::Value::as_str)
                        == Some(hash.to_string().as_str()) => {}
            _ => {
                err(
                    "snapshot_index",
                    format!("snapshots/index names seq {seq}, which is not this snapshot's record; delete .aos/snapshots/index (opening then replays from genesis; the next `aos snapshot` starts a new index)"),
                );
                continue;
            }
        }
        if let Err(e) = aos_kernel::session::load_snapshot_object(&w.objects, &hash) {
            err("snapshot_invalid", format!("{e}; `aos replay --verify` re-derives the state, and `aos snapshot` writes a new one"));
        }
    }
}

/// Every journaled receipt verifies with one of the world's public keys.
fn check_receipts(w: &aos_store::world::World, emit: &mut dyn FnMut(Finding)) {
    let keys: Vec<String> = w
        .config
        .receipt_keys
        .iter()
        .map(|k| k.public_key.clone())
        .collect();
    let Ok(all) = super::receipts::check_all(w, &keys) else {
        return; // journal damage is reported by the store checks
    };
    for c in all {
        if let Err(e) = c.verdict {
            emit(Finding {
                severity: Severity::Error,
                code: "receipt_invalid",
                location: format!("journal seq {} (effect_receipt)", c.seq),
                what: format!("{e}; the receipt was altered or signed by another key (`aos receipts show {}`)", c.seq),
            });
        }
    }
}

/// Every signed governance decision verifies against the proposal it names, and every
/// object a governance record names (patch, manifest, shadow report) is present.
fn check_decisions(w: &aos_store::world::World, emit: &mut dyn FnMut(Finding)) {
    let Ok(mut iter) = w.journal.iter_from(0) else {
        return;
    };
    // Only governance lines are parsed: they are found as bytes first.
    let needles: [&[u8]; 5] = [
        br#""kind":"proposed""#,
        br#""kind":"approved""#,
        br#""kind":"rejected""#,
        br#""kind":"shadow_report""#,
        br#""kind":"applied""#,
    ];
    let mut records = Vec::new();
    while let Some(Ok((seq, offset, line))) = iter.next_line() {
        if !needles
            .iter()
            .any(|n| line.windows(n.len()).any(|x| x == *n))
        {
            continue;
        }
        if let Ok(r) = aos_store::journal::parse_line(w.journal.path(), seq, offset, line) {
            records.push(r);
        }
    }
    // The objects governance records name: patches, candidate manifests, reports.
    for r in &records {
        for field in ["patch", "manifest", "report"] {
            let Some(h) = r
                .body
                .get(field)
                .and_then(serde_json::Value::as_str)
                .and_then(|t| t.parse::<aos_store::Hash>().ok())
            else {
                continue;
            };
            if !w.objects.contains(&h) {
                emit(Finding {
                    severity: Severity::Error,
                    code: "object_missing",
                    location: format!("journal seq {} ({}.{field})", r.seq, r.kind),
                    what: format!("object {h} is missing from the object store"),
                });
            }
        }
    }
    // A proposal's record says what its patch object (the thing approvers sign) says.
    for r in records.iter().filter(|r| r.kind == "proposed") {
        let Some(h) = r
            .body
            .get("patch")
            .and_then(serde_json::Value::as_str)
            .and_then(|t| t.parse::<aos_store::Hash>().ok())
        else {
            continue;
        };
        if let Ok(patch) = w.objects.get_json::<serde_json::Value>(&h) {
            if !aos_kernel::governance::patch_matches_record(&patch, &r.body) {
                emit(Finding {
                    severity: Severity::Error,
                    code: "proposal_mismatch",
                    location: format!("journal seq {} (proposed)", r.seq),
                    what: format!("the record's base manifest or governance rules differ from its patch object {h}, which is what approvers signed"),
                });
            }
        }
    }
    // The rules come from the genesis record: who may decide, with which key.
    let settings = w
        .journal
        .read(0)
        .ok()
        .and_then(|(r, _)| {
            aos_kernel::governance::Settings::from_json(
                r.body.get("governance").unwrap_or(&serde_json::Value::Null),
            )
            .ok()
        })
        .unwrap_or_default();
    for (seq, what) in aos_kernel::governance::verify_decisions(&settings, records.into_iter()) {
        emit(Finding {
            severity: Severity::Error,
            code: "approval_invalid",
            location: format!("journal seq {seq} (governance decision)"),
            what: format!("{what}; the decision was altered or signed by another key (`aos log --since {seq} -n 1`)"),
        });
    }
}

/// The receipt key: present, private, parseable, and matching the config's public key.
fn check_keys(layout: &Layout, emit: &mut dyn FnMut(Finding)) {
    let path = layout.receipt_key();
    let loc = path
        .strip_prefix(&layout.root)
        .unwrap_or(&path)
        .display()
        .to_string();
    let mut err = |code, what: String| {
        emit(Finding {
            severity: Severity::Error,
            code,
            location: loc.clone(),
            what,
        })
    };
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(e) => {
            return err(
                "key_missing",
                format!("receipt signing key unreadable: {e}"),
            )
        }
    };
    if meta.permissions().mode() & 0o077 != 0 {
        err(
            "key_permissions",
            format!(
                "mode {:o} lets other users read the private key; run `chmod 600 {}`",
                meta.permissions().mode() & 0o777,
                path.display()
            ),
        );
    }
    let signer = match std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|b| ReceiptSigner::from_file_bytes(&b).map_err(|e| e.to_string()))
    {
        Ok(s) => s,
        Err(e) => return err("key_invalid", e),
    };
    if let Ok(cfg) = Config::read(&layout.config()) {
        if cfg.signing_key() != Some(signer.public_key().as_str()) {
            err(
                "key_mismatch",
                format!(
                    "the private key's public half {} is not the signing key in config.json",
                    signer.public_key()
                ),
            );
        }
    }
}
