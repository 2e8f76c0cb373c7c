//! `air-fmt`: AIR, the typed control plane of a world.
//!
//! The data model of every definition kind ([`model`]), the type AST ([`types`]),
//! plan expressions ([`expr`]), names ([`name`]), and diagnostics that name the file,
//! def, JSON pointer, what was expected and what was found ([`diag`]). Pure: the
//! library performs no file or network I/O; callers hand it bytes.

pub mod assemble;
pub mod catalog;
pub mod diag;
pub mod diff;
pub mod expr;
pub mod fmt;
pub mod json;
pub mod load;
pub mod model;
pub mod name;
pub mod patch;
pub mod types;
pub mod validate;
pub mod value;

pub use diag::{Diagnostic, Severity};
pub use model::{Def, DefKind, Manifest, Node};
pub use name::Name;
pub use types::TypeExpr;
