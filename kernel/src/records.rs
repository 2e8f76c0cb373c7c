//! Journal record kinds the kernel writes and reads, and which of them are inputs.
//!
//! Inputs (roots and receipts) are authoritative: replay feeds them to the kernel.
//! Everything else is derived: replay re-derives it and compares it with the journal.
//! A root of a kind the kernel does not know derives nothing.

use aos_store::journal::Record;

pub const WORLD_CREATED: &str = "world_created";
pub const FORKED_FROM: &str = "forked_from";
pub const DOMAIN_EVENT: &str = "domain_event";
pub const REDUCER_STEPPED: &str = "reducer_stepped";
pub const MODULE_ERROR: &str = "module_error";
pub const ROUTE_ERROR: &str = "route_error";
pub const EFFECT_INTENT: &str = "effect_intent";
pub const POLICY_DECISION: &str = "policy_decision";
pub const EFFECT_RECEIPT: &str = "effect_receipt";
pub const CASCADE_STOPPED: &str = "cascade_stopped";
pub const PLAN_STARTED: &str = "plan_started";
/// A manual plan start (`aos plan start`): a root, so an input.
pub const PLAN_START: &str = "plan_start";
pub const PLAN_ENDED: &str = "plan_ended";
pub const INTROSPECT_ANSWER: &str = "introspect_answer";
pub const SNAPSHOT: &str = "snapshot";

/// Kinds that are always inputs, whatever their cause links.
const INPUT_KINDS: &[&str] = &[
    WORLD_CREATED,
    FORKED_FROM,
    SNAPSHOT,
    EFFECT_RECEIPT,
    "proposed",
    "shadow_report",
    "approved",
    "rejected",
    "applied",
];

/// Whether replay feeds this record to the kernel (an input) or re-derives it. Every
/// root (no cause: injected events, governance commands, records of kinds this kernel
/// does not know) is an input; of the caused records, only receipts are.
pub fn is_input(kind: &str, cause: &[u64]) -> bool {
    cause.is_empty() || INPUT_KINDS.contains(&kind)
}

pub fn record_is_input(r: &Record) -> bool {
    is_input(&r.kind, &r.cause)
}

/// Fields of a derived record's body that replay does not compare: human text that may
/// change between builds of the WASM engine while the outcome stays the same.
pub fn uncompared_fields(kind: &str) -> &'static [&'static str] {
    match kind {
        MODULE_ERROR => &["message"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_and_receipts_are_inputs_and_caused_records_are_derived() {
        assert!(is_input(DOMAIN_EVENT, &[]));
        assert!(!is_input(DOMAIN_EVENT, &[3]));
        assert!(is_input("note", &[]), "an unknown root is an input");
        assert!(!is_input(REDUCER_STEPPED, &[1]));
        assert!(is_input("effect_receipt", &[7]));
        assert!(is_input(SNAPSHOT, &[]));
    }
}
