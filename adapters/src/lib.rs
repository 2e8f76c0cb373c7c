//! Adapters: the code that touches the outside world on behalf of a world and signs
//! what it did. Adapters run outside the deterministic core; the kernel hands each one
//! a canonical intent ([`adapter::Request`]), gets back an [`adapter::Outcome`] and turns
//! it into an ed25519-signed [`receipt::Receipt`] that it verifies before journaling.
//!
//! - [`signing`]: the world's receipt key (generation, text forms, sign, verify).
//! - [`receipt`]: the receipt, its canonical signing bytes and its JSON form.
//! - [`adapter`]: the [`adapter::Adapter`] trait, requests, outcomes and errors.
//! - [`http`]: `http.request` over `ureq`, with a grant check on every URL contacted.
//! - [`llm`]: `llm.generate` against an OpenAI-compatible chat-completions API.
//! - [`blob`]: `blob.put` / `blob.get` on the world's object store.
//! - [`timer`]: `timer.set`, run once the timer is due.
//! - [`secrets`]: the world's secret store (values injected at dispatch only).

pub mod adapter;
pub mod blob;
pub mod http;
pub mod llm;
mod params;
pub mod receipt;
pub mod secrets;
pub mod signing;
pub mod timer;

pub use adapter::{Adapter, AdapterError, Outcome, Request};
pub use receipt::{Receipt, ReceiptError, Status, Unsigned};
pub use signing::ReceiptSigner;
