//! `aos proposals ls|show ID`: the world's proposals as the kernel's governance state
//! holds them (from the journal), with the manifest diff of one proposal.

use aos_kernel::governance::{approval_bytes, proposal_json, Proposal, Status, APPROVED, REJECTED};
use aos_kernel::manifest::ActiveManifest;
use aos_kernel::session::BootOptions;
use aos_store::world::Access;
use serde_json::{json, Value};

use super::session::open;
use super::{print_json, Ctx};
use crate::args::{ProposalShowArgs, ProposalsCommand};
use crate::exit::{Outcome, UserError};

fn shadow_verdict(p: &Proposal) -> &'static str {
    match p.shadows.last() {
        None => "not shadowed",
        Some(s) if s.ok => "shadow ok",
        Some(_) => "shadow found problems",
    }
}

pub fn run(ctx: &Ctx, cmd: ProposalsCommand) -> anyhow::Result<Outcome> {
    let s = open(ctx, Access::Read, BootOptions::default())?;
    let book = s.kernel.governance();
    match cmd {
        ProposalsCommand::Ls => {
            if ctx.json() {
                print_json(&json!({
                    "settings": book.settings.to_json(),
                    "proposals": book.proposals.values().map(proposal_json).collect::<Vec<_>>(),
                }))?;
                return Ok(Outcome::Ok);
            }
            if book.proposals.is_empty() {
                ctx.info("no proposals yet; start one with `aos propose AIR_DIR|PATCH`");
            }
            for p in book.proposals.values() {
                // An open proposal against the approvals it needs now; a decided one
                // against nothing (the rules may have changed since).
                let approvals = match p.status {
                    Status::Proposed => {
                        format!("{}/{}", p.approvals.len(), book.settings.approvals)
                    }
                    _ => p.approvals.len().to_string(),
                };
                println!(
                    "{:>4}  {:<9} {:>3} approvals  {:<21} {:<12} {}",
                    p.id,
                    p.status.as_str(),
                    approvals,
                    shadow_verdict(p),
                    p.author,
                    match (&p.message, &p.settings) {
                        (Some(m), _) => m.clone(),
                        (None, Some(_)) => "(changes the governance rules)".to_string(),
                        (None, None) => String::new(),
                    }
                );
            }
            Ok(Outcome::Ok)
        }
        ProposalsCommand::Show(ProposalShowArgs { id }) => {
            let p = book.get(id).map_err(|r| UserError(r.0))?.clone();
            let base = ActiveManifest::load(&s.world.objects, &p.base)?;
            let cand = ActiveManifest::load(&s.world.objects, &p.candidate)?;
            let diff = air_fmt::diff::diff(&base.set, &cand.set);
            let patch: Value = s.world.objects.get_json(&p.patch)?;
            let approver = ctx.actor();
            let world = s.world.config.world_id.clone();
            if ctx.json() {
                let mut v = proposal_json(&p);
                if let Value::Object(o) = &mut v {
                    o.insert("diff".into(), serde_json::to_value(&diff)?);
                    o.insert("patch_document".into(), patch);
                    o.insert(
                        "signing_payload".into(),
                        json!({
                            "approver": approver,
                            "world": world,
                            "approve": air_fmt::value::base64_encode(&approval_bytes(&p, APPROVED, &approver, &world)),
                            "reject": air_fmt::value::base64_encode(&approval_bytes(&p, REJECTED, &approver, &world)),
                        }),
                    );
                }
                print_json(&v)?;
                return Ok(Outcome::Ok);
            }
            println!("proposal {}  {}", p.id, p.status.as_str());
            println!("  proposed  seq {} by {}", p.seq, p.author);
            if let Some(m) = &p.message {
                println!("  message   {m}");
            }
            println!("  patch     {}", p.patch);
            println!("  manifest  {} -> {}", p.base, p.candidate);
            if let Some(r) = &p.settings {
                println!("  rules     -> {}", r.to_json());
            }
            for a in &p.approvals {
                let signed = a
                    .public_key
                    .as_ref()
                    .map(|k| format!(" (signed, {k})"))
                    .unwrap_or_default();
                println!("  approved  seq {} by {}{signed}", a.seq, a.approver);
            }
            if let Some(r) = &p.rejection {
                println!("  rejected  seq {} by {}", r.seq, r.approver);
            }
            for sh in &p.shadows {
                println!(
                    "  shadow    seq {} {} (report {})",
                    sh.seq,
                    if sh.ok { "ok" } else { "found problems" },
                    sh.report
                );
            }
            if let Some(seq) = p.applied {
                println!("  applied   seq {seq}");
            }
            println!();
            print!("{}", air_fmt::diff::render_text(&diff, false));
            Ok(Outcome::Ok)
        }
    }
}
