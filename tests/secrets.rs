//! End-to-end tests of `aos secret` through the real binary: set from stdin and from the
//! environment, ls, rm, file modes, refused names and values that change nothing,
//! overwriting, and the key property: a secret's value appears in no command's output
//! and in no file of the world but its own.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use serde_json::Value;

/// `aos ARGS…` in `dir` with `input` on stdin and extra environment variables.
fn aos_with(dir: &Path, args: &[&str], input: &[u8], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(aos_bin())
        .args(args)
        .current_dir(dir)
        .env("USER", "tester")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run aos");
    let mut stdin = child.stdin.take().expect("stdin");
    // A refused command may exit before reading its input.
    let _ = stdin.write_all(input);
    drop(stdin);
    child.wait_with_output().expect("wait for aos")
}

fn set(root: &Path, name: &str, value: &[u8]) -> Output {
    aos_with(root, &["secret", "set", name], value, &[])
}

fn digest(value: &[u8]) -> String {
    format!("blake3:{}", blake3::hash(value).to_hex())
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn ls_json(root: &Path) -> Vec<(String, String)> {
    let o = aos(root, &["secret", "ls", "--format", "json"]);
    expect_code(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_string(),
                e["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn set_from_stdin_and_env_then_ls_and_rm() {
    let (_d, root) = world();
    let secrets = root.join(".aos/secrets");
    let o = aos(&root, &["secret", "ls", "--format", "json"]);
    expect_code(&o, 0);
    assert_eq!(stdout(&o).trim(), "[]");
    let o = aos(&root, &["secret", "ls"]);
    expect_code(&o, 0);
    assert_eq!(stdout(&o), "");

    let o = set(&root, "API_KEY", b"sk-abc\n");
    expect_code(&o, 0);
    assert_eq!(stdout(&o), format!("API_KEY  {}\n", digest(b"sk-abc")));
    assert_eq!(std::fs::read(secrets.join("API_KEY")).unwrap(), b"sk-abc");
    assert_eq!(mode(&secrets), 0o700);
    assert_eq!(mode(&secrets.join("API_KEY")), 0o600);

    // Only one trailing newline is trimmed; CRLF counts as one.
    expect_code(&set(&root, "two.lines", b"a\nb\n\n"), 0);
    assert_eq!(std::fs::read(secrets.join("two.lines")).unwrap(), b"a\nb\n");
    expect_code(&set(&root, "crlf", b"tok\r\n"), 0);
    assert_eq!(std::fs::read(secrets.join("crlf")).unwrap(), b"tok");

    // --from-env takes the variable as it is, and ignores stdin.
    let o = aos_with(
        &root,
        &[
            "secret",
            "set",
            "from-env_1",
            "--from-env",
            "MY_TOKEN",
            "--format",
            "json",
        ],
        b"ignored",
        &[("MY_TOKEN", "tok en\n")],
    );
    expect_code(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["name"], "from-env_1");
    assert_eq!(v["digest"], digest(b"tok en\n"));
    assert_eq!(v["replaced"], false);
    assert_eq!(mode(&secrets.join("from-env_1")), 0o600);

    assert_eq!(
        ls_json(&root),
        vec![
            ("API_KEY".to_string(), digest(b"sk-abc")),
            ("crlf".to_string(), digest(b"tok")),
            ("from-env_1".to_string(), digest(b"tok en\n")),
            ("two.lines".to_string(), digest(b"a\nb\n")),
        ]
    );
    let text = stdout(&aos(&root, &["secret", "ls"]));
    assert_eq!(text.lines().count(), 4, "{text}");
    assert!(
        text.lines()
            .next()
            .unwrap()
            .starts_with("API_KEY     blake3:"),
        "{text}"
    );

    let o = aos(&root, &["secret", "rm", "crlf"]);
    expect_code(&o, 0);
    assert!(!secrets.join("crlf").exists());
    let o = aos(&root, &["secret", "rm", "crlf"]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("no secret named crlf"),
        "{}",
        stderr(&o)
    );
    let o = aos(&root, &["secret", "rm", "two.lines", "--format", "json"]);
    expect_code(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["removed"], true);
    let names: Vec<_> = ls_json(&root).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["API_KEY", "from-env_1"]);
}

#[test]
fn overwriting_replaces_the_value_atomically() {
    let (_d, root) = world();
    let file = root.join(".aos/secrets/K");
    expect_code(&set(&root, "K", b"first"), 0);
    // A loose mode is flagged by ls and repaired by the next set.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = stdout(&aos(&root, &["secret", "ls"]));
    assert!(text.contains("readable by others"), "{text}");
    let o = aos_with(
        &root,
        &["secret", "set", "K", "--format", "json"],
        b"second",
        &[],
    );
    expect_code(&o, 0);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["replaced"], true);
    assert_eq!(v["digest"], digest(b"second"));
    assert_eq!(std::fs::read(&file).unwrap(), b"second");
    assert_eq!(mode(&file), 0o600);
    // No temporary files are left behind.
    let entries: Vec<_> = std::fs::read_dir(root.join(".aos/secrets"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries, vec!["K"]);
    assert_eq!(ls_json(&root), vec![("K".to_string(), digest(b"second"))]);
}

#[test]
fn bad_names_and_values_exit_2_and_change_nothing() {
    let (d, root) = world();
    let long = "N".repeat(129);
    let before = tree_bytes(&root);
    for name in [
        "..",
        ".",
        "a/b",
        "../escape",
        "/abs",
        ".hidden",
        "a b",
        "ключ",
        "",
        &long,
    ] {
        let o = set(&root, name, b"value");
        expect_code(&o, 2);
        assert!(
            stderr(&o).contains("not a valid secret name"),
            "{name:?}: {}",
            stderr(&o)
        );
        expect_code(&aos(&root, &["secret", "rm", name]), 2);
    }
    // `-x` parses as an option: still a usage error.
    expect_code(&set(&root, "-x", b"value"), 2);
    let big = vec![b'a'; 64 * 1024 + 1];
    for (value, what) in [
        (&b""[..], "empty"),
        (&b"\n"[..], "empty"),
        (&b"\xff\xfe"[..], "UTF-8"),
        (&big[..], "limit"),
    ] {
        let o = set(&root, "K", value);
        expect_code(&o, 2);
        assert!(stderr(&o).contains(what), "{what}: {}", stderr(&o));
    }
    let o = aos_with(
        &root,
        &["secret", "set", "K", "--from-env", "EMPTY_ONE"],
        b"",
        &[("EMPTY_ONE", "")],
    );
    expect_code(&o, 2);
    assert!(stderr(&o).contains("EMPTY_ONE is empty"), "{}", stderr(&o));
    let o = aos_with(
        &root,
        &["secret", "set", "K", "--from-env", "SURELY_NOT_SET_VAR"],
        b"stdin is not used",
        &[],
    );
    expect_code(&o, 2);
    assert!(stderr(&o).contains("not set"), "{}", stderr(&o));
    assert_eq!(tree_bytes(&root), before);
    assert!(
        !root.join(".aos/secrets").exists(),
        "a refused secret must not create the store"
    );

    // Refusals with an existing store leave the stored value alone.
    expect_code(&set(&root, "K", b"kept"), 0);
    let before = tree_bytes(&root);
    expect_code(&set(&root, "K", b""), 2);
    expect_code(&set(&root, "../K", b"other"), 2);
    assert_eq!(tree_bytes(&root), before);
    assert_eq!(std::fs::read(root.join(".aos/secrets/K")).unwrap(), b"kept");

    // Outside any world.
    let o = set(d.path(), "K", b"v");
    expect_code(&o, 2);
    assert!(stderr(&o).contains("not an aos world"), "{}", stderr(&o));
}

/// Every file under `dir` (recursively, symlinks not followed) whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let e = e.expect("entry");
            let t = e.file_type().expect("file type");
            let p = e.path();
            if t.is_dir() {
                stack.push(p);
            } else if t.is_file() {
                let bytes = std::fs::read(&p).expect("read");
                if bytes.windows(needle.len()).any(|w| w == needle) {
                    hits.push(p);
                }
            }
        }
    }
    hits.sort();
    hits
}

#[test]
fn a_secret_value_appears_in_no_output_and_no_other_file() {
    const VALUE: &str = "sk-live-7f3a9QXZsecretVALUE-do-not-leak-0451";
    let (_d, root) = world();
    append(&root, 3, "note");

    let mut outputs: Vec<(String, Output)> = Vec::new();
    outputs.push((
        "secret set (stdin)".into(),
        set(&root, "LLM_API_KEY", format!("{VALUE}\n").as_bytes()),
    ));
    outputs.push((
        "secret set --from-env".into(),
        aos_with(
            &root,
            &["secret", "set", "FROM_ENV", "--from-env", "LEAKY"],
            b"",
            &[("LEAKY", VALUE)],
        ),
    ));
    outputs.push((
        "secret set (overwrite, json)".into(),
        aos_with(
            &root,
            &["secret", "set", "LLM_API_KEY", "--format", "json"],
            VALUE.as_bytes(),
            &[],
        ),
    ));
    for (_, o) in &outputs {
        expect_code(o, 0);
    }
    // Refused commands given the value must not echo it either.
    for (what, o) in [
        ("bad name", set(&root, "../LLM", VALUE.as_bytes())),
        (
            "bad utf-8",
            set(&root, "BIN", &[VALUE.as_bytes(), b"\xff"].concat()),
        ),
        (
            "too large",
            set(&root, "BIG", VALUE.repeat(2000).as_bytes()),
        ),
    ] {
        expect_code(&o, 2);
        outputs.push((format!("refused: {what}"), o));
    }

    let fork_dir = root.parent().unwrap().join("forked");
    let commands: &[&[&str]] = &[
        &["info"],
        &["log"],
        &["log", "--full"],
        &["fsck"],
        &["replay", "--verify"],
        &["secret", "ls"],
        &["--help"],
        &["secret", "--help"],
        &["fork", ".", fork_dir.to_str().unwrap()],
    ];
    for args in commands {
        for json in [false, true] {
            let mut a = args.to_vec();
            if json {
                a.extend(["--format", "json"]);
            }
            if json && args[0] == "fork" {
                continue;
            }
            let o = aos(&root, &a);
            expect_code(&o, 0);
            outputs.push((a.join(" "), o));
        }
    }
    expect_code(&aos(&root, &["secret", "rm", "FROM_ENV"]), 0);

    for (what, o) in &outputs {
        for (stream, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
            assert!(
                !bytes.windows(VALUE.len()).any(|w| w == VALUE.as_bytes()),
                "`aos {what}` printed the secret value on {stream}"
            );
        }
    }
    // The value sits in exactly one file of the world (and its fork has none).
    let hits = files_containing(root.parent().unwrap(), VALUE.as_bytes());
    assert_eq!(hits, vec![root.join(".aos/secrets/LLM_API_KEY")]);
    // Not even the digest's input leaks: ls shows the digest, which is not the value.
    assert_eq!(
        ls_json(&root),
        vec![("LLM_API_KEY".to_string(), digest(VALUE.as_bytes()))]
    );
}
