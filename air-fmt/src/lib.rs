//! AIR, the typed control plane of a world: the data model of every definition kind,
//! typed values with their two JSON lenses, canonical form and hashes, the validator,
//! patches and diffs. Pure: the library performs no file or network I/O.
//!
//! The model arrives with the AIR issue; this crate exists now so the dependency
//! direction of the workspace (`cli → kernel → air-fmt, store`) is fixed from day one.
