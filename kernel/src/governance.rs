//! Governance state and rules: the world's governance settings (from the genesis
//! record), every proposal with its decisions, and the checks that decide whether a
//! proposal may be approved, rejected or applied. The same checks run before the CLI
//! journals a decision and again when the kernel processes the record (on every replay),
//! so a forged or out-of-order governance record stops the world with its seq named.

use std::collections::BTreeMap;

use aos_store::canon;
use aos_store::Hash;
use serde_json::{json, Map, Value};

pub const PROPOSED: &str = "proposed";
pub const SHADOW_REPORT: &str = "shadow_report";
pub const APPROVED: &str = "approved";
pub const REJECTED: &str = "rejected";
pub const APPLIED: &str = "applied";

/// Domain tag of the bytes an approver signs.
pub const APPROVAL_DOMAIN: &[u8] = b"aos-approval-v1\n";

/// How a world decides on changes to itself. Recorded in the genesis record; changed
/// only through the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `apply` needs a clean shadow report of the proposal's patch.
    pub require_shadow: bool,
    /// Distinct approvers `apply` needs.
    pub approvals: u32,
    /// When not empty: the only names that may approve or reject, each with the
    /// ed25519 public key (`ed25519:<hex>`) its approvals must be signed with.
    pub approvers: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            require_shadow: true,
            approvals: 1,
            approvers: BTreeMap::new(),
        }
    }
}

impl Settings {
    pub fn to_json(&self) -> Value {
        json!({
            "require_shadow": self.require_shadow,
            "approvals": self.approvals,
            "approvers": self.approvers,
        })
    }

    /// Read recorded settings; `null` or absent fields take the defaults.
    pub fn from_json(v: &Value) -> Result<Settings, String> {
        let mut s = Settings::default();
        if v.is_null() {
            return Ok(s);
        }
        let o = v
            .as_object()
            .ok_or_else(|| format!("governance settings are {v}, not an object"))?;
        if let Some(x) = o.get("require_shadow") {
            s.require_shadow = x
                .as_bool()
                .ok_or_else(|| format!("governance.require_shadow is {x}, not a boolean"))?;
        }
        if let Some(x) = o.get("approvals") {
            s.approvals = x
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    format!("governance.approvals is {x}, not a count of at least 1 (apply always needs an approval)")
                })?;
        }
        if let Some(x) = o.get("approvers") {
            let list = x
                .as_object()
                .ok_or_else(|| format!("governance.approvers is {x}, not an object"))?;
            for (name, key) in list {
                let key = key.as_str().ok_or_else(|| {
                    format!("governance.approvers.{name} is {key}, not a public key")
                })?;
                aos_store::receipt::parse_public_key(key)
                    .map_err(|e| format!("governance.approvers.{name}: {e}"))?;
                s.approvers.insert(name.clone(), key.to_string());
            }
        }
        if !s.approvers.is_empty() && s.approvals as usize > s.approvers.len() {
            return Err(format!(
                "governance.approvals is {}, but only {} approver{} registered: no apply could ever be approved",
                s.approvals,
                s.approvers.len(),
                if s.approvers.len() == 1 { " is" } else { "s are" }
            ));
        }
        Ok(s)
    }
}

/// Where a proposal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Proposed,
    Rejected,
    Applied,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Proposed => "proposed",
            Status::Rejected => "rejected",
            Status::Applied => "applied",
        }
    }
}

/// One approval (or rejection) as journaled.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub seq: u64,
    pub approver: String,
    /// The key the approver signed with, when signed.
    pub public_key: Option<String>,
}

/// A shadow report of the proposal.
#[derive(Debug, Clone, PartialEq)]
pub struct ShadowMark {
    pub seq: u64,
    /// What the rehearsal did: `diff` (nothing fed), `events`, `replay_all` or
    /// `replay_since:SEQ`.
    pub mode: String,
    /// The rehearsal found no problem (or only accepted ones).
    pub ok: bool,
    /// The report object.
    pub report: Hash,
}

/// A proposal and everything decided about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Proposal {
    pub id: u64,
    /// The seq of its `proposed` record.
    pub seq: u64,
    /// The patch document object.
    pub patch: Hash,
    pub base: Hash,
    pub candidate: Hash,
    pub author: String,
    pub message: Option<String>,
    pub status: Status,
    pub approvals: Vec<Decision>,
    pub rejection: Option<Decision>,
    pub shadows: Vec<ShadowMark>,
    /// The seq of its `applied` record.
    pub applied: Option<u64>,
    /// The governance settings it puts in force when applied (a change of the rules
    /// themselves goes through the rules in force).
    pub settings: Option<Settings>,
    /// For a change of the rules: the rules in force when it was proposed (it applies
    /// only over those, as a patch applies only over its base manifest).
    pub base_rules: Option<Settings>,
}

/// The governance part of a world's state.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Book {
    pub settings: Settings,
    pub proposals: BTreeMap<u64, Proposal>,
}

/// Who makes a decision, in which world, and how they signed it: the public key
/// (`ed25519:<hex>`) and the signature over [`approval_bytes`].
#[derive(Debug, Clone, Copy)]
pub struct Decider<'a> {
    pub approver: &'a str,
    /// The id of the world the decision is made in (signatures are bound to it).
    pub world: &'a str,
    pub signature: Option<(&'a str, &'a [u8; 64])>,
}

/// Whether `d` may make `decision` on `p` under `settings`: a named approver; when
/// approvers are registered, only they, each signing with their own key; any signature
/// given must verify over [`approval_bytes`].
pub fn check_signature(
    settings: &Settings,
    p: &Proposal,
    decision: &str,
    d: &Decider<'_>,
) -> Result<(), Refusal> {
    let approver = d.approver;
    if approver.is_empty() {
        return refuse("the decision names no approver; pass --as NAME".into());
    }
    let registered = settings.approvers.get(approver);
    if !settings.approvers.is_empty() && registered.is_none() {
        let names: Vec<&str> = settings.approvers.keys().map(String::as_str).collect();
        return refuse(format!(
            "{approver} is not an approver of this world (approvers: {})",
            names.join(", ")
        ));
    }
    match (d.signature, registered) {
        (None, Some(_)) => refuse(format!(
            "{approver}'s decisions must be signed with their key; pass --key FILE"
        )),
        (Some((key, _)), Some(want)) if key != want => refuse(format!(
            "{approver} is registered with key {want}, but the decision is signed with {key}"
        )),
        (Some((key, sig)), _) => aos_store::receipt::verify_signature(
            key,
            &approval_bytes(p, decision, approver, d.world),
            sig,
        )
        .map_err(|e| {
            Refusal(format!(
                "the signature of {approver} on proposal {} in world {} does not verify: {e}",
                p.id, d.world
            ))
        }),
        (None, None) => Ok(()),
    }
}

/// A governance request the rules refuse; the text says what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

fn refuse<T>(text: String) -> Result<T, Refusal> {
    Err(Refusal(text))
}

/// The bytes an approver signs: the domain tag and the canonical JSON of the decision
/// (`approved` or `rejected`), the world's id, the proposal's id, patch, base and
/// candidate manifests and the approver's name — so a signature is bound to one
/// decision on one proposal of one world.
pub fn approval_bytes(p: &Proposal, decision: &str, approver: &str, world: &str) -> Vec<u8> {
    let body = json!({
        "decision": decision,
        "world": world,
        "id": canon::u64_value(p.id),
        "patch": p.patch,
        "base_manifest": p.base,
        "manifest": p.candidate,
        "approver": approver,
    });
    let mut out = APPROVAL_DOMAIN.to_vec();
    out.extend(canon::value_to_vec(&body).unwrap_or_default());
    out
}

impl Book {
    /// The id the next proposal gets.
    pub fn next_id(&self) -> u64 {
        self.proposals.keys().next_back().map_or(1, |k| k + 1)
    }

    pub fn get(&self, id: u64) -> Result<&Proposal, Refusal> {
        match self.proposals.get(&id) {
            Some(p) => Ok(p),
            None => refuse(format!(
                "there is no proposal {id} in this world (see `aos proposals ls`)"
            )),
        }
    }

    fn open(&self, id: u64, action: &str) -> Result<&Proposal, Refusal> {
        let p = self.get(id)?;
        match p.status {
            Status::Proposed => Ok(p),
            Status::Rejected => refuse(format!(
                "proposal {id} was rejected (seq {}); it cannot be {action}; propose the change again",
                p.rejection.as_ref().map_or(p.seq, |r| r.seq)
            )),
            Status::Applied => refuse(format!(
                "proposal {id} is already applied (seq {}); it cannot be {action}",
                p.applied.unwrap_or(p.seq)
            )),
        }
    }

    /// May `d` approve proposal `id`?
    pub fn check_approve(&self, id: u64, d: &Decider<'_>) -> Result<(), Refusal> {
        let p = self.open(id, "approved")?;
        if p.approvals.iter().any(|a| a.approver == d.approver) {
            return refuse(format!(
                "{} already approved proposal {id}; approvals must come from distinct approvers",
                d.approver
            ));
        }
        check_signature(&self.settings, p, APPROVED, d)
    }

    /// May `d` reject proposal `id`?
    pub fn check_reject(&self, id: u64, d: &Decider<'_>) -> Result<(), Refusal> {
        let p = self.open(id, "rejected")?;
        check_signature(&self.settings, p, REJECTED, d)
    }

    /// May proposal `id` be applied now, with `active` the manifest in force?
    pub fn check_apply(&self, id: u64, active: Option<&Hash>) -> Result<&Proposal, Refusal> {
        let p = self.open(id, "applied")?;
        if active != Some(&p.base) {
            return refuse(format!(
                "proposal {id} was made against manifest {}, but the world's manifest is now {}; re-propose the change against the current manifest",
                p.base,
                active.map_or("none".to_string(), |h| h.to_string())
            ));
        }
        if p.settings.is_some() && p.base_rules.as_ref() != Some(&self.settings) {
            return refuse(format!(
                "proposal {id} changes the governance rules, but the rules changed since it was proposed; re-propose the change against the rules in force (`aos info` shows them)"
            ));
        }
        // Only approvals that are valid under the rules in force count: when approvers
        // are registered, by a registered approver with the key registered now.
        let valid = |a: &&Decision| {
            self.settings.approvers.is_empty()
                || self
                    .settings
                    .approvers
                    .get(&a.approver)
                    .is_some_and(|k| Some(k) == a.public_key.as_ref())
        };
        let have = p.approvals.iter().filter(valid).count();
        let stale = p.approvals.len() - have;
        let need = self.settings.approvals as usize;
        if have < need {
            let note = if stale > 0 {
                format!(" ({stale} more made under earlier rules no longer count)")
            } else {
                String::new()
            };
            return refuse(format!(
                "proposal {id} has {have} approval{}{note} and this world needs {need}; run `aos approve {id}`",
                if have == 1 { "" } else { "s" }
            ));
        }
        // A change of the rules alone changes nothing a rehearsal could run.
        if self.settings.require_shadow && p.candidate != p.base {
            // A report that rehearsed nothing does not count; of the others, the latest
            // of each kind (sample events, replay of all inputs, replay of recent ones)
            // must be clean: a failing replay is not cleared by a passing sample run.
            let kind = |m: &str| m.split(':').next().unwrap_or("").to_string();
            let mut latest: BTreeMap<String, &ShadowMark> = BTreeMap::new();
            for sh in p.shadows.iter().filter(|sh| sh.mode != "diff") {
                latest.insert(kind(&sh.mode), sh);
            }
            if latest.is_empty() {
                return refuse(format!(
                    "this world requires a shadow report before apply; run `aos shadow {id} --replay-all` (or with --events FILE)"
                ));
            }
            if let Some(bad) = latest.values().find(|sh| !sh.ok) {
                return refuse(format!(
                    "the last {} shadow report of proposal {id} (seq {}) found problems; re-run `aos shadow {id}` that way, accepting the divergences you expect, or propose a fixed change",
                    bad.mode, bad.seq
                ));
            }
        }
        Ok(p)
    }

    pub fn to_json(&self) -> Value {
        json!({
            "settings": self.settings.to_json(),
            "proposals": self.proposals.values().map(proposal_json).collect::<Vec<_>>(),
        })
    }

    pub fn from_json(v: &Value) -> Result<Book, String> {
        let settings = Settings::from_json(v.get("settings").unwrap_or(&Value::Null))?;
        let mut proposals = BTreeMap::new();
        for p in v
            .get("proposals")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let p = proposal_from_json(p)?;
            proposals.insert(p.id, p);
        }
        Ok(Book {
            settings,
            proposals,
        })
    }

    /// The seq of the `applied` record that put `manifest` in force, if one did.
    /// (A proposal that changed only the rules put no manifest in force.)
    pub fn applied_seq_of(&self, manifest: Option<&Hash>) -> Option<u64> {
        self.proposals
            .values()
            .filter(|p| {
                p.status == Status::Applied
                    && p.candidate != p.base
                    && Some(&p.candidate) == manifest
            })
            .filter_map(|p| p.applied)
            .max()
    }

    /// Whether this book says anything beyond the defaults (snapshots leave it out
    /// otherwise, so worlds without governance keep their state hashes).
    pub fn is_default(&self) -> bool {
        self.proposals.is_empty() && self.settings == Settings::default()
    }
}

fn decision_json(d: &Decision) -> Value {
    json!({"seq": canon::u64_value(d.seq), "approver": d.approver, "public_key": d.public_key})
}

pub fn proposal_json(p: &Proposal) -> Value {
    let mut v = json!({
        "id": canon::u64_value(p.id),
        "seq": canon::u64_value(p.seq),
        "patch": p.patch,
        "base_manifest": p.base,
        "manifest": p.candidate,
        "author": p.author,
        "message": p.message,
        "status": p.status.as_str(),
        "approvals": p.approvals.iter().map(decision_json).collect::<Vec<_>>(),
        "rejection": p.rejection.as_ref().map(decision_json),
        "shadow_reports": p.shadows.iter().map(|s| json!({
            "seq": canon::u64_value(s.seq), "mode": s.mode, "ok": s.ok, "report": s.report,
        })).collect::<Vec<_>>(),
        "applied": p.applied.map(canon::u64_value),
    });
    // Written only for changes of the rules, so states without any keep their hashes.
    if let (Some(g), Value::Object(o)) = (&p.settings, &mut v) {
        o.insert("governance".into(), g.to_json());
        o.insert(
            "base_governance".into(),
            p.base_rules.as_ref().map_or(Value::Null, Settings::to_json),
        );
    }
    v
}

fn num(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn hash(v: Option<&Value>, what: &str) -> Result<Hash, String> {
    v.and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("a proposal's `{what}` is not a hash"))
}

fn decision_from_json(v: &Value) -> Result<Decision, String> {
    Ok(Decision {
        seq: num(v.get("seq")).ok_or("a decision has no `seq`")?,
        approver: v
            .get("approver")
            .and_then(Value::as_str)
            .ok_or("a decision has no `approver`")?
            .to_string(),
        public_key: v
            .get("public_key")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

fn proposal_from_json(v: &Value) -> Result<Proposal, String> {
    let status = match v.get("status").and_then(Value::as_str) {
        Some("proposed") => Status::Proposed,
        Some("rejected") => Status::Rejected,
        Some("applied") => Status::Applied,
        other => return Err(format!("a proposal has status {other:?}")),
    };
    let list = |k: &str| v.get(k).and_then(Value::as_array).into_iter().flatten();
    Ok(Proposal {
        id: num(v.get("id")).ok_or("a proposal has no `id`")?,
        seq: num(v.get("seq")).ok_or("a proposal has no `seq`")?,
        patch: hash(v.get("patch"), "patch")?,
        base: hash(v.get("base_manifest"), "base_manifest")?,
        candidate: hash(v.get("manifest"), "manifest")?,
        author: v
            .get("author")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        message: v.get("message").and_then(Value::as_str).map(str::to_string),
        status,
        approvals: list("approvals")
            .map(decision_from_json)
            .collect::<Result<_, _>>()?,
        rejection: match v.get("rejection") {
            None | Some(Value::Null) => None,
            Some(d) => Some(decision_from_json(d)?),
        },
        shadows: list("shadow_reports")
            .map(|s| {
                Ok(ShadowMark {
                    seq: num(s.get("seq")).ok_or("a shadow report has no `seq`")?,
                    mode: s
                        .get("mode")
                        .and_then(Value::as_str)
                        .unwrap_or("events")
                        .to_string(),
                    ok: s.get("ok").and_then(Value::as_bool).unwrap_or(false),
                    report: hash(s.get("report"), "report")?,
                })
            })
            .collect::<Result<_, String>>()?,
        applied: num(v.get("applied")),
        settings: match v.get("governance") {
            None | Some(Value::Null) => None,
            Some(g) => Some(Settings::from_json(g)?),
        },
        base_rules: match v.get("base_governance") {
            None | Some(Value::Null) => None,
            Some(g) => Some(Settings::from_json(g)?),
        },
    })
}

/// The signature of a decision record: `{"public_key", "signature"}` (base64).
pub fn signature_of(body: &Value) -> Result<Option<(String, [u8; 64])>, String> {
    let Some(s) = body.get("signature").filter(|s| !s.is_null()) else {
        return Ok(None);
    };
    let key = s
        .get("public_key")
        .and_then(Value::as_str)
        .ok_or("the signature has no `public_key`")?;
    let sig = s
        .get("signature")
        .and_then(Value::as_str)
        .ok_or("the signature has no `signature`")?;
    let bytes = air_fmt::value::base64_decode(sig)
        .ok_or("the signature is not base64")?
        .try_into()
        .map_err(|_| "the signature is not 64 bytes".to_string())?;
    Ok(Some((key.to_string(), bytes)))
}

/// The signature field of a decision record.
pub fn signature_json(public_key: &str, sig: &[u8; 64]) -> Value {
    let mut m = Map::new();
    m.insert("public_key".into(), Value::String(public_key.to_string()));
    m.insert(
        "signature".into(),
        Value::String(air_fmt::value::base64_encode(sig)),
    );
    Value::Object(m)
}

/// Who a root record's `origin` names.
pub fn who(body: &Value) -> String {
    body.get("origin")
        .and_then(|o| o.get("who"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Whether a `proposed` record's body says what its patch object says: the same base
/// manifest and the same new rules (or none). Approvers sign the patch object's hash,
/// so this binds what they signed to what the record puts in force.
pub fn patch_matches_record(patch: &Value, body: &Value) -> bool {
    let present = |v: &Value, k: &str| v.get(k).filter(|g| !g.is_null()).cloned();
    patch.get("base_manifest_hash").and_then(Value::as_str)
        == body.get("base_manifest").and_then(Value::as_str)
        && present(patch, "governance") == present(body, "governance")
}

/// Check the signature of every signed decision (`approved`, `rejected`) in `records`
/// against the proposal it names, as `aos fsck` does without replaying the world.
/// Returns the seq and the problem of each decision that does not verify.
pub fn verify_decisions(
    settings: &Settings,
    records: impl Iterator<Item = aos_store::journal::Record>,
) -> Vec<(u64, String)> {
    let mut settings = settings.clone();
    let mut proposals: BTreeMap<u64, Proposal> = BTreeMap::new();
    let mut bad = Vec::new();
    for r in records {
        let id = r.body.get("id").and_then(|v| num(Some(v)));
        match (r.kind.as_str(), id) {
            // An applied change of the rules governs the decisions after it.
            (APPLIED, _) => {
                if let Some(g) = r.body.get("governance").filter(|g| !g.is_null()) {
                    match Settings::from_json(g) {
                        Ok(s) => settings = s,
                        Err(e) => bad.push((r.seq, e)),
                    }
                }
            }
            (PROPOSED, Some(id)) => {
                let h = |k: &str| hash(r.body.get(k), k);
                if let (Ok(patch), Ok(base), Ok(candidate)) =
                    (h("patch"), h("base_manifest"), h("manifest"))
                {
                    proposals.insert(
                        id,
                        Proposal {
                            id,
                            seq: r.seq,
                            patch,
                            base,
                            candidate,
                            author: who(&r.body),
                            message: None,
                            status: Status::Proposed,
                            approvals: Vec::new(),
                            rejection: None,
                            shadows: Vec::new(),
                            applied: None,
                            settings: None,
                            base_rules: None,
                        },
                    );
                }
            }
            (APPROVED | REJECTED, Some(id)) => {
                let sig = match signature_of(&r.body) {
                    Ok(s) => s,
                    Err(e) => {
                        bad.push((r.seq, e));
                        continue;
                    }
                };
                let Some(p) = proposals.get(&id) else {
                    bad.push((
                        r.seq,
                        format!("it decides on proposal {id}, which was never proposed"),
                    ));
                    continue;
                };
                let d = Decider {
                    approver: r.body.get("approver").and_then(Value::as_str).unwrap_or(""),
                    world: r.body.get("world").and_then(Value::as_str).unwrap_or(""),
                    signature: sig.as_ref().map(|(k, b)| (k.as_str(), b)),
                };
                if let Err(e) = check_signature(&settings, p, &r.kind, &d) {
                    bad.push((r.seq, e.0));
                }
            }
            _ => {}
        }
    }
    bad
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use proptest::prelude::*;

    const W: &str = "world-1";

    fn dec<'a>(approver: &'a str, signature: Option<(&'a str, &'a [u8; 64])>) -> Decider<'a> {
        Decider {
            approver,
            world: W,
            signature,
        }
    }

    fn h(n: u8) -> Hash {
        Hash::of(&[n])
    }

    fn key(seed: u8) -> (SigningKey, String) {
        let k = SigningKey::from_bytes(&[seed; 32]);
        let hex: String = k
            .verifying_key()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        (k, format!("ed25519:{hex}"))
    }

    fn book(settings: Settings) -> Book {
        let mut b = Book {
            settings,
            proposals: BTreeMap::new(),
        };
        b.proposals.insert(
            1,
            Proposal {
                id: 1,
                seq: 5,
                patch: h(1),
                base: h(2),
                candidate: h(3),
                author: "ann".into(),
                message: Some("m".into()),
                status: Status::Proposed,
                approvals: Vec::new(),
                rejection: None,
                shadows: Vec::new(),
                applied: None,
                settings: None,
                base_rules: None,
            },
        );
        b
    }

    fn approve(b: &mut Book, who: &str, seq: u64) {
        b.proposals.get_mut(&1).unwrap().approvals.push(Decision {
            seq,
            approver: who.into(),
            public_key: None,
        });
    }

    fn shadow(b: &mut Book, ok: bool, seq: u64) {
        b.proposals.get_mut(&1).unwrap().shadows.push(ShadowMark {
            seq,
            mode: "replay_all".into(),
            ok,
            report: h(9),
        });
    }

    #[test]
    fn apply_needs_the_base_the_approvals_and_a_clean_shadow() {
        let mut b = book(Settings::default());
        let e = b.check_apply(1, Some(&h(2))).unwrap_err().0;
        assert!(
            e.contains("0 approvals") && e.contains("aos approve 1"),
            "{e}"
        );
        approve(&mut b, "alice", 6);
        let e = b.check_apply(1, Some(&h(2))).unwrap_err().0;
        assert!(e.contains("aos shadow 1"), "{e}");
        shadow(&mut b, false, 7);
        let e = b.check_apply(1, Some(&h(2))).unwrap_err().0;
        assert!(e.contains("seq 7") && e.contains("found problems"), "{e}");
        shadow(&mut b, true, 8);
        assert!(b.check_apply(1, Some(&h(2))).is_ok());
        let e = b.check_apply(1, Some(&h(4))).unwrap_err().0;
        assert!(
            e.contains(&h(2).to_string())
                && e.contains(&h(4).to_string())
                && e.contains("re-propose"),
            "{e}"
        );
        assert!(b
            .check_apply(2, Some(&h(2)))
            .unwrap_err()
            .0
            .contains("no proposal 2"));
    }

    #[test]
    fn approvals_come_from_distinct_approvers_and_closed_proposals_take_no_decision() {
        let mut b = book(Settings {
            approvals: 2,
            require_shadow: false,
            ..Settings::default()
        });
        approve(&mut b, "alice", 6);
        assert!(b
            .check_approve(1, &dec("alice", None))
            .unwrap_err()
            .0
            .contains("already approved"));
        assert!(b
            .check_apply(1, Some(&h(2)))
            .unwrap_err()
            .0
            .contains("needs 2"));
        approve(&mut b, "bob", 7);
        assert!(b.check_apply(1, Some(&h(2))).is_ok());
        b.proposals.get_mut(&1).unwrap().status = Status::Rejected;
        assert!(b
            .check_apply(1, Some(&h(2)))
            .unwrap_err()
            .0
            .contains("rejected"));
        assert!(b
            .check_approve(1, &dec("carol", None))
            .unwrap_err()
            .0
            .contains("rejected"));
        b.proposals.get_mut(&1).unwrap().status = Status::Applied;
        assert!(b
            .check_reject(1, &dec("carol", None))
            .unwrap_err()
            .0
            .contains("already applied"));
    }

    #[test]
    fn registered_approvers_must_sign_with_their_own_key() {
        let (ka, pa) = key(1);
        let (kb, pb) = key(2);
        let mut settings = Settings::default();
        settings.approvers.insert("alice".into(), pa.clone());
        let b = book(settings);
        let p = b.get(1).unwrap().clone();
        let good = ka
            .sign(&approval_bytes(&p, APPROVED, "alice", W))
            .to_bytes();
        assert!(b
            .check_approve(1, &dec("alice", Some((&pa, &good))))
            .is_ok());
        assert!(b
            .check_approve(1, &dec("alice", None))
            .unwrap_err()
            .0
            .contains("--key"));
        assert!(b
            .check_approve(1, &dec("bob", None))
            .unwrap_err()
            .0
            .contains("not an approver"));
        let other = kb
            .sign(&approval_bytes(&p, APPROVED, "alice", W))
            .to_bytes();
        assert!(b
            .check_approve(1, &dec("alice", Some((&pb, &other))))
            .unwrap_err()
            .0
            .contains("registered with key"));
        let mut forged = good;
        forged[0] ^= 1;
        assert!(b
            .check_approve(1, &dec("alice", Some((&pa, &forged))))
            .unwrap_err()
            .0
            .contains("does not verify"));
        // A signature is bound to the approver's name and to the proposal.
        let as_bob = ka.sign(&approval_bytes(&p, APPROVED, "bob", W)).to_bytes();
        assert!(b
            .check_approve(1, &dec("alice", Some((&pa, &as_bob))))
            .is_err());
    }

    #[test]
    fn a_signed_rejection_is_not_a_signed_approval() {
        let (k, pk) = key(4);
        let b = book(Settings::default());
        let p = b.get(1).unwrap().clone();
        let reject = k.sign(&approval_bytes(&p, REJECTED, "erin", W)).to_bytes();
        assert!(b
            .check_reject(1, &dec("erin", Some((&pk, &reject))))
            .is_ok());
        assert!(b
            .check_approve(1, &dec("erin", Some((&pk, &reject))))
            .is_err());
    }

    #[test]
    fn a_signature_is_bound_to_its_world_and_a_decision_to_a_name() {
        let (k, pk) = key(5);
        let b = book(Settings::default());
        let p = b.get(1).unwrap().clone();
        let sig = k
            .sign(&approval_bytes(&p, APPROVED, "fay", "world-2"))
            .to_bytes();
        let elsewhere = Decider {
            approver: "fay",
            world: "world-2",
            signature: Some((&pk, &sig)),
        };
        assert!(b.check_approve(1, &elsewhere).is_ok());
        let here = Decider {
            world: W,
            ..elsewhere
        };
        assert!(b
            .check_approve(1, &here)
            .unwrap_err()
            .0
            .contains("does not verify"));
        assert!(b
            .check_reject(1, &dec("", None))
            .unwrap_err()
            .0
            .contains("--as NAME"));
    }

    #[test]
    fn unregistered_signatures_still_verify() {
        let (k, pk) = key(3);
        let b = book(Settings::default());
        let p = b.get(1).unwrap().clone();
        let sig = k.sign(&approval_bytes(&p, APPROVED, "dan", W)).to_bytes();
        assert!(b.check_approve(1, &dec("dan", Some((&pk, &sig)))).is_ok());
        let mut bad = sig;
        bad[63] ^= 0x80;
        assert!(b.check_approve(1, &dec("dan", Some((&pk, &bad)))).is_err());
    }

    #[test]
    fn bad_settings_are_named() {
        assert!(Settings::from_json(&json!({"approvals": -1}))
            .unwrap_err()
            .contains("approvals"));
        assert!(Settings::from_json(&json!({"require_shadow": "yes"}))
            .unwrap_err()
            .contains("require_shadow"));
        assert!(Settings::from_json(&json!({"approvers": {"a": "nope"}}))
            .unwrap_err()
            .contains("approvers.a"));
        assert_eq!(
            Settings::from_json(&Value::Null).unwrap(),
            Settings::default()
        );
        let (_, pk) = key(7);
        assert!(
            Settings::from_json(&json!({"approvals": 2, "approvers": {"a": pk}}))
                .unwrap_err()
                .contains("only 1 approver")
        );
    }

    #[test]
    fn a_proposal_without_a_rules_change_keeps_its_old_json() {
        let b = book(Settings::default());
        let v = proposal_json(b.get(1).unwrap());
        assert!(
            v.get("governance").is_none() && v.get("base_governance").is_none(),
            "{v}"
        );
    }

    #[test]
    fn only_approvals_valid_under_the_rules_in_force_count() {
        let (_, pa) = key(6);
        let mut b = book(Settings {
            require_shadow: false,
            ..Settings::default()
        });
        approve(&mut b, "mallory", 6);
        assert!(b.check_apply(1, Some(&h(2))).is_ok());
        b.settings.approvers.insert("alice".into(), pa.clone());
        let e = b.check_apply(1, Some(&h(2))).unwrap_err().0;
        assert!(e.contains("no longer count"), "{e}");
        b.proposals.get_mut(&1).unwrap().approvals.push(Decision {
            seq: 7,
            approver: "alice".into(),
            public_key: Some(pa),
        });
        assert!(b.check_apply(1, Some(&h(2))).is_ok());
    }

    proptest! {
        #[test]
        fn the_book_round_trips_through_json(
            approvals in 1u32..5,
            shadow_ok in proptest::collection::vec(any::<bool>(), 0..4),
            who in proptest::collection::vec("[a-z]{1,8}", 0..4),
            rejected in any::<bool>(),
        ) {
            let mut b = book(Settings { approvals, require_shadow: approvals % 2 == 0, ..Settings::default() });
            for (i, w) in who.iter().enumerate() {
                approve(&mut b, w, 10 + i as u64);
            }
            for (i, ok) in shadow_ok.iter().enumerate() {
                shadow(&mut b, *ok, 20 + i as u64);
            }
            if rejected {
                let p = b.proposals.get_mut(&1).unwrap();
                p.status = Status::Rejected;
                p.rejection = Some(Decision { seq: 30, approver: "x".into(), public_key: Some("ed25519:00".into()) });
            }
            let back = Book::from_json(&b.to_json()).unwrap();
            prop_assert_eq!(back, b);
        }

        #[test]
        fn reading_any_json_as_a_book_never_panics(v in any::<i64>().prop_map(|n| json!({"proposals": [{"id": n, "status": "proposed"}]}))) {
            let _ = Book::from_json(&v);
        }
    }
}
