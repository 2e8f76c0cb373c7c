//! The `#![no_std]` reducer SDK: turns a typed Rust function into a module that speaks
//! the reducer ABI (`alloc`, `step`, `memory`). Filled by the kernel issue.
#![no_std]
