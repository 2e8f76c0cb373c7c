//! `aos-store`: the bytes-and-hashes layer of a world.
//!
//! It owns the on-disk truth of a world and nothing about its meaning: the
//! content-addressed object store ([`objects`]), the append-only hash-chained journal
//! ([`journal`]), the single-writer lock ([`lock`]), the `.aos/` layout and config
//! ([`world`]) and cheap forks ([`fork`]). AIR semantics live in `air-fmt`; execution
//! lives in the kernel.

pub mod canon;
pub mod durable;
pub mod error;
pub mod fork;
pub mod fsck;
pub mod hash;
pub mod journal;
pub mod lock;
pub mod objects;
pub mod receipt;
pub mod world;

pub use error::{Error, Result};
pub use hash::Hash;
