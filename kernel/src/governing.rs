//! The stepper's side of governance: it processes `proposed`, `shadow_report`,
//! `approved`, `rejected` and `applied` records (inputs, on every replay too) by the
//! rules of [`crate::governance`], and swaps the manifest in force on `applied`. Runs in
//! flight keep the manifest they started under (see [`Kernel::manifest_of_run`]).

use std::sync::Arc;

use aos_store::journal::{NewRecord, Record};
use aos_store::objects::ObjectStore;
use aos_store::Hash;
use serde_json::Value;

use crate::error::{KernelError, Result};
use crate::governance::{
    self, signature_of, who, Decider, Decision, Proposal, ShadowMark, Status, APPLIED, APPROVED,
    PROPOSED, REJECTED, SHADOW_REPORT,
};
use crate::manifest::ActiveManifest;
use crate::state::OpenIntent;
use crate::stepper::Kernel;

fn num(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

impl Kernel {
    /// A governance record: check it against the rules and the state, then record it.
    pub(crate) fn governance_input(
        &mut self,
        objects: &ObjectStore,
        seq: u64,
        rec: &Record,
    ) -> Result<Vec<NewRecord>> {
        let bad = KernelError::in_record(seq, rec);
        let body = &rec.body;
        let id = num(body.get("id")).ok_or_else(|| bad("the body has no proposal `id`".into()))?;
        let hash = |k: &str| -> Result<Hash> {
            body.get(k)
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad(format!("the body has no valid `{k}` hash")))
        };
        if rec.kind == PROPOSED {
            // The candidate must load: its objects are stored and it hashes to its name.
            let candidate = hash("manifest")?;
            self.load_manifest(objects, &candidate)
                .map_err(|e| bad(e.to_string()))?;
            self.prune_manifests();
        }
        let active = self.state.manifest;
        let book = &mut self.state.governance;
        match rec.kind.as_str() {
            PROPOSED => {
                if id != book.next_id() {
                    return Err(bad(format!(
                        "proposal id {id} is out of order (the next id is {})",
                        book.next_id()
                    )));
                }
                let base = hash("base_manifest")?;
                let candidate = hash("manifest")?;
                let settings = match body.get("governance") {
                    None | Some(Value::Null) => None,
                    Some(g) => Some(
                        governance::Settings::from_json(g)
                            .map_err(|e| bad(format!("its governance settings: {e}")))?,
                    ),
                };
                // What approvers sign is the patch object's hash: it must say what the
                // record says (the base manifest, and the new rules if any).
                let patch: Value = objects
                    .get_json(&hash("patch")?)
                    .map_err(|e| bad(format!("its patch object: {e}")))?;
                if !governance::patch_matches_record(&patch, body) {
                    return Err(bad(
                        "its patch object does not say what the record says (base manifest or governance rules)".into(),
                    ));
                }
                if active != Some(base) {
                    return Err(bad(format!(
                        "the proposal's base manifest {base} is not the manifest in force"
                    )));
                }
                book.proposals.insert(
                    id,
                    Proposal {
                        id,
                        seq,
                        patch: hash("patch")?,
                        base,
                        candidate,
                        author: who(body),
                        message: body
                            .get("message")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        status: Status::Proposed,
                        approvals: Vec::new(),
                        rejection: None,
                        shadows: Vec::new(),
                        applied: None,
                        base_rules: settings.as_ref().map(|_| book.settings.clone()),
                        settings,
                    },
                );
            }
            SHADOW_REPORT => {
                let patch = hash("patch")?;
                let report = hash("report")?;
                let ok = body
                    .get("ok")
                    .and_then(Value::as_bool)
                    .ok_or_else(|| bad("the body has no boolean `ok`".into()))?;
                let p = book
                    .proposals
                    .get_mut(&id)
                    .ok_or_else(|| bad(format!("there is no proposal {id}")))?;
                if p.patch != patch {
                    return Err(bad(format!(
                        "the report is of patch {patch}, but proposal {id} is patch {}",
                        p.patch
                    )));
                }
                let mode = body
                    .get("mode")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad("the body has no `mode`".into()))?
                    .to_string();
                p.shadows.push(ShadowMark {
                    seq,
                    mode,
                    ok,
                    report,
                });
            }
            APPROVED | REJECTED => {
                let approver = body
                    .get("approver")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let sig = signature_of(body).map_err(bad)?;
                let d = Decider {
                    approver: &approver,
                    world: body.get("world").and_then(Value::as_str).unwrap_or(""),
                    signature: sig.as_ref().map(|(k, s)| (k.as_str(), s)),
                };
                let check = if rec.kind == APPROVED {
                    book.check_approve(id, &d)
                } else {
                    book.check_reject(id, &d)
                };
                check.map_err(|r| bad(r.0))?;
                let d = Decision {
                    seq,
                    approver,
                    public_key: sig.map(|(k, _)| k),
                };
                if let Some(p) = book.proposals.get_mut(&id) {
                    if rec.kind == APPROVED {
                        p.approvals.push(d);
                    } else {
                        p.status = Status::Rejected;
                        p.rejection = Some(d);
                    }
                }
            }
            APPLIED => {
                let manifest = hash("manifest")?;
                let p = book
                    .check_apply(id, active.as_ref())
                    .map_err(|r| bad(r.0))?;
                if p.candidate != manifest {
                    return Err(bad(format!(
                        "it applies manifest {manifest}, but proposal {id} is manifest {}",
                        p.candidate
                    )));
                }
                let stated = body.get("governance").filter(|g| !g.is_null());
                if stated
                    != p.settings
                        .as_ref()
                        .map(governance::Settings::to_json)
                        .as_ref()
                {
                    return Err(bad(format!(
                        "its governance settings are not those of proposal {id}"
                    )));
                }
                let m = self
                    .load_manifest(objects, &manifest)
                    .map_err(|e| bad(e.to_string()))?;
                let book = &mut self.state.governance;
                let mut rules = None;
                if let Some(p) = book.proposals.get_mut(&id) {
                    p.status = Status::Applied;
                    p.applied = Some(seq);
                    rules = p.settings.clone();
                }
                if let Some(r) = rules {
                    book.settings = r;
                }
                // Open intents keep the manifest that allowed them.
                if let Some(old) = active {
                    for o in self.state.open.values_mut() {
                        o.manifest.get_or_insert(old);
                    }
                }
                // Records derived under a new manifest cite the apply that put it in
                // force; a change of the rules alone changes nothing they depend on.
                if active != Some(manifest) {
                    self.applied_at = Some(seq);
                }
                self.manifest = Some(m);
                self.state.manifest = Some(manifest);
                self.prune_manifests();
            }
            _ => {}
        }
        Ok(Vec::new())
    }

    /// A manifest by hash, loaded once and kept while the world or a run uses it.
    pub(crate) fn load_manifest(
        &mut self,
        objects: &ObjectStore,
        hash: &Hash,
    ) -> Result<Arc<ActiveManifest>> {
        if let Some(m) = self.manifests.get(hash) {
            return Ok(m.clone());
        }
        let m = Arc::new(ActiveManifest::load(objects, hash)?);
        self.manifests.insert(*hash, m.clone());
        Ok(m)
    }

    /// Forget manifests neither the world nor any run in flight uses.
    pub(crate) fn prune_manifests(&mut self) {
        let active = self.state.manifest;
        let (runs, open) = (&self.state.runs, &self.state.open);
        self.manifests.retain(|h, _| {
            Some(*h) == active
                || runs.values().any(|r| r.manifest == *h)
                || open.values().any(|o| o.manifest == Some(*h))
        });
    }

    /// The manifest a run started under, which it finishes under.
    pub fn manifest_of_run(&self, run: u64) -> Option<Arc<ActiveManifest>> {
        let r = self.state.runs.get(&run)?;
        self.manifests
            .get(&r.manifest)
            .cloned()
            .or_else(|| self.manifest.clone().filter(|m| m.hash == r.manifest))
    }

    /// The manifest an open intent is dispatched under: the one that allowed it when an
    /// apply came after it, its run's for a plan's intent, else the one in force.
    pub fn manifest_for_intent(&self, open: &OpenIntent) -> Option<Arc<ActiveManifest>> {
        if let Some(m) = open.manifest.and_then(|h| self.manifests.get(&h)) {
            return Some(m.clone());
        }
        if open.origin.get("kind").and_then(Value::as_str) == Some("plan") {
            if let Some(run) = num(open.origin.get("run")) {
                if let Some(m) = self.manifest_of_run(run) {
                    return Some(m);
                }
            }
        }
        self.manifest.clone()
    }

    /// The governance book (settings and proposals).
    pub fn governance(&self) -> &governance::Book {
        &self.state.governance
    }
}
