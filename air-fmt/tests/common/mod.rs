//! Shared by the corpus tests: where the original project's AIR corpus is.
#![allow(dead_code)]

use std::path::PathBuf;

/// The AIR corpus: `$AOS_AIR_CORPUS`, else beside the repository in
/// `../shared/air-corpus`. Its absence fails the test with a clear message.
pub fn corpus() -> PathBuf {
    let p = match std::env::var_os("AOS_AIR_CORPUS") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/air-corpus"),
    };
    assert!(
        p.join("spec/defs").is_dir() && p.join("examples").is_dir(),
        "the AIR corpus is expected at {} (with spec/defs and examples); set AOS_AIR_CORPUS to its location",
        p.display()
    );
    p
}
