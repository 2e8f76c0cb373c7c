//! The capability and policy gates every effect intent passes before it may leave the
//! world (DESIGN §4): [`check_cap`] (the grant exists, has not expired, is of the
//! effect's cap type, and the canonical params are within its constraints) and
//! [`check_policy`] (the manifest's `defpolicy`, first matching rule wins, no match and
//! no policy mean deny), plus [`grant_for_slot`] (which grant a reducer's intent uses)
//! and [`http_url_allowed`] (the `http.out` URL check the HTTP adapter repeats for every
//! redirect).
//!
//! Everything here is pure and deterministic: no clock (time is the journal time the
//! caller passes), no I/O, no hash-ordered iteration. Verdicts carry a stable `code`
//! for machines and a `reason` for people that names the grant or policy, the
//! constraint and the offending value, and says how to allow the intent.
//!
//! # Semantics of the constraints (by cap type)
//!
//! General rules: an optional constraint that is absent (`null`) does not constrain; a
//! present set constrains, and an empty set allows nothing. Grant params are
//! canonicalized against their `defcap` schema and intent params against their
//! `defeffect` params schema before they are read, so sugar and tagged authoring mean
//! the same; a value of an unexpected shape is a denial, never a pass.
//!
//! - `http.out` (see [`http`]): the URL is parsed by the WHATWG rules of the `url`
//!   crate, and judged by what it really is (userinfo is not the host, `..` and `%2e%2e`
//!   segments are resolved, IPv4 numbers in any notation are dotted quads, IDNA hosts
//!   are punycode). `hosts` is required (a grant without it allows no host); hosts
//!   compare exactly after normalization (ASCII case-insensitive, one trailing dot
//!   ignored, IP literals in canonical form, `[::1]` and `::1` alike); wildcards are
//!   *not* supported (the corpus never uses them), so every host is listed. `verbs`
//!   (also read under the original project's name `methods`) compare
//!   case-insensitively; `schemes` default to `http` and `https` when absent, and any
//!   other scheme must be listed; `ports` compare against the explicit port or the
//!   scheme's default; `path_prefixes` match whole segments (`/v1` covers `/v1` and
//!   `/v1/x`, not `/v1x`; a prefix ending in `/` covers everything below it) against
//!   the normalized path, without the query. URLs containing whitespace, control
//!   characters or a backslash are refused outright: parsers disagree on them.
//! - `llm.basic`: `providers` and `models` exact; `max_tokens_max` (also read as
//!   `max_tokens`) is an inclusive ceiling on `params.max_tokens`; `temperature_max` an
//!   inclusive ceiling on `params.temperature`, compared as exact decimals; every tool
//!   in `params.tools` must be in `tools_allow`. A constrained field the params lack is
//!   a denial.
//! - `blob`: `params.namespace` in `namespaces`.
//! - `timer`: no constraints.
//! - `query`: `scope` absent, `""` or `"*"` allows every introspection. Any other scope
//!   is a prefix of reducer names (a trailing `*` is optional: `"demo/"` and `"demo/*"`
//!   are the same); it allows reducer-level queries (`params.reducer`) of reducers whose
//!   name starts with it, and no world-level query (`introspect.manifest`,
//!   `introspect.journal_head`), which need scope `"*"`.
//! - `secret`: every secret alias the params use (`params.alias`, and the alias of
//!   every `sys/SecretRef@1` inside a `secret` variant arm anywhere in the params) must
//!   be in `aliases`.
//! - Any other cap type (`governance`, `catalog.write`, one of a world's own) has no
//!   checker in this kernel: denied, saying so.
//!
//! A grant with `expiry_ns` is valid while the journal time of the causing input is
//! strictly before it.

pub mod caps;
pub mod http;
pub mod policy;
mod read;

#[cfg(test)]
mod tests;

use air_fmt::Name;
use serde_json::{json, Value};

pub use caps::{check_cap, effect_by_kind, grant_for_slot, grant_params, secret_aliases};
pub use http::{http_url_allowed, http_url_allowed_by};
pub use policy::check_policy;

/// Who emitted an intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OriginKind {
    Reducer,
    Plan,
}

impl OriginKind {
    /// The spelling policies use (`origin_kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            OriginKind::Reducer => "reducer",
            OriginKind::Plan => "plan",
        }
    }

    pub fn parse(s: &str) -> Option<OriginKind> {
        match s {
            "reducer" => Some(OriginKind::Reducer),
            "plan" => Some(OriginKind::Plan),
            _ => None,
        }
    }
}

/// The origin of an intent: a reducer or a plan, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    pub kind: OriginKind,
    pub name: &'a Name,
}

/// The capability decision for one intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapVerdict {
    pub allowed: bool,
    /// The grant, when the manifest has one of the requested name.
    pub grant: Option<String>,
    /// The grant's `defcap`, when the grant exists.
    pub cap: Option<Name>,
    /// A stable machine-readable code: `allowed`, or why not (see [`caps`]).
    pub code: &'static str,
    pub reason: String,
}

impl CapVerdict {
    /// The verdict as JSON (for journal records and `--format json`).
    pub fn to_json(&self) -> Value {
        json!({
            "allowed": self.allowed,
            "grant": self.grant,
            "cap": self.cap.as_ref().map(Name::as_str),
            "code": self.code,
            "reason": self.reason,
        })
    }
}

/// The policy decision for one intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVerdict {
    pub allowed: bool,
    /// The policy consulted (none when the manifest names none).
    pub policy: Option<Name>,
    /// The index of the rule that decided (none when no rule matched).
    pub rule: Option<usize>,
    /// A stable machine-readable code: `allowed_by_rule`, `denied_by_rule`,
    /// `no_rule_matched`, `no_policy`, `unknown_policy` or `no_manifest`.
    pub code: &'static str,
    pub reason: String,
}

impl PolicyVerdict {
    /// The verdict as JSON (for journal records and `--format json`).
    pub fn to_json(&self) -> Value {
        json!({
            "allowed": self.allowed,
            "policy": self.policy.as_ref().map(Name::as_str),
            "rule": self.rule,
            "code": self.code,
            "reason": self.reason,
        })
    }
}

/// Why a constraint check failed: a code and a reason for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Denial {
    pub code: &'static str,
    pub reason: String,
}

impl Denial {
    pub fn new(code: &'static str, reason: impl Into<String>) -> Denial {
        Denial {
            code,
            reason: reason.into(),
        }
    }
}
