//! The man pages in `man/` are generated from the clap definitions; this test fails when
//! they are stale. Regenerate with `AOS_UPDATE_MAN=1 cargo test -p aos-cli --test man_pages`.

use std::path::{Path, PathBuf};

fn pages() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut root = aos_cli::command();
    root.build(); // propagate global options (-C, --world, --format…) into every page
    collect(root, "aos", &mut out);
    out
}

fn collect(cmd: clap::Command, name: &str, out: &mut Vec<(String, Vec<u8>)>) {
    let cmd = cmd.name(name.to_string()).bin_name(name.replace('-', " "));
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .date("2026-11-26")
        .render(&mut buf)
        .expect("render man page");
    out.push((format!("{name}.1"), buf));
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() || sub.get_name() == "help" {
            continue;
        }
        collect(sub.clone(), &format!("{name}-{}", sub.get_name()), out);
    }
}

fn man_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../man")
}

#[test]
fn man_pages_are_current() {
    let dir = man_dir();
    let pages = pages();
    if std::env::var_os("AOS_UPDATE_MAN").is_some() {
        for entry in std::fs::read_dir(&dir).expect("man dir") {
            let p = entry.expect("entry").path();
            if p.extension().is_some_and(|e| e == "1") {
                std::fs::remove_file(p).expect("remove old page");
            }
        }
        for (name, bytes) in &pages {
            std::fs::write(dir.join(name), bytes).expect("write page");
        }
        return;
    }
    let mut stale = Vec::new();
    for (name, bytes) in &pages {
        if std::fs::read(dir.join(name)).ok().as_deref() != Some(bytes.as_slice()) {
            stale.push(name.clone());
        }
    }
    let expected: std::collections::BTreeSet<_> = pages.iter().map(|(n, _)| n.clone()).collect();
    for entry in std::fs::read_dir(&dir).expect("man dir") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".1") && !expected.contains(&name) {
            stale.push(format!("{name} (no such command any more)"));
        }
    }
    assert!(
        stale.is_empty(),
        "man pages are stale: {stale:?}\nregenerate with: AOS_UPDATE_MAN=1 cargo test -p aos-cli --test man_pages"
    );
}

#[test]
fn every_command_has_help_text() {
    fn walk(cmd: &clap::Command, path: &str) {
        for sub in cmd.get_subcommands() {
            let p = format!("{path} {}", sub.get_name());
            assert!(sub.get_about().is_some(), "`{p}` has no help text");
            for arg in sub.get_arguments() {
                assert!(
                    arg.get_help().is_some() || arg.is_hide_set(),
                    "`{p}` argument {} has no help",
                    arg.get_id()
                );
            }
            walk(sub, &p);
        }
    }
    walk(&aos_cli::command(), "aos");
}
