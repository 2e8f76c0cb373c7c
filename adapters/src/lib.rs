//! Adapters: the code that touches the outside world on behalf of a world (http, blob,
//! timer, llm, introspect) and signs what it did. Adapters run outside the
//! deterministic core. This issue provides receipt keys ([`signing`]); the adapters
//! themselves arrive with the effects issue.

pub mod signing;
