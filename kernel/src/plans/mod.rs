//! The plan engine's pure parts. [`expr`] evaluates AIR plan expressions (guards,
//! `assign`, effect parameters, event filters, results) against a run's environment:
//! deterministic, total, and free of I/O, so replay reproduces every value exactly.

pub mod expr;
