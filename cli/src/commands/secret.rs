//! `aos secret set NAME [--from-env VAR]`, `aos secret ls` and `aos secret rm NAME`: the
//! world's secret store in `.aos/secrets/`. Values go in and never come out: commands
//! print names and digests only, and errors never quote a value.

use std::io::{BufRead, IsTerminal, Read, Write};

use aos_adapters::secrets::{SecretError, SecretStore, MAX_VALUE_LEN};
use aos_store::world::Layout;
use serde_json::json;

use super::{print_json, Ctx};
use crate::args::{SecretCommand, SecretRmArgs, SecretSetArgs};
use crate::exit::{user, Outcome, UserError};

pub fn run(ctx: &Ctx, cmd: SecretCommand) -> anyhow::Result<Outcome> {
    match cmd {
        SecretCommand::Set(a) => set(ctx, a),
        SecretCommand::Ls => ls(ctx),
        SecretCommand::Rm(a) => rm(ctx, a),
    }
}

fn store(ctx: &Ctx) -> anyhow::Result<SecretStore> {
    let root = ctx.world_root()?;
    Ok(SecretStore::new(&Layout::new(&root)))
}

/// A library error at the CLI edge: the caller's mistakes exit 2.
fn edge(e: SecretError) -> anyhow::Error {
    if e.is_user_error() {
        UserError(e.to_string()).into()
    } else {
        e.into()
    }
}

/// Overwrites a buffer when dropped, so a value read here does not linger in freed memory.
struct Wiped(Vec<u8>);

impl Drop for Wiped {
    fn drop(&mut self) {
        self.0.fill(0);
        std::hint::black_box(&mut self.0);
    }
}

fn set(ctx: &Ctx, args: SecretSetArgs) -> anyhow::Result<Outcome> {
    let store = store(ctx)?;
    // Check the name before asking for a value.
    aos_adapters::secrets::validate_name(&args.name).map_err(edge)?;
    let value = match &args.from_env {
        Some(var) => from_env(var)?,
        None => from_stdin(ctx, &args.name)?,
    };
    if value.0.is_empty() {
        let from = match &args.from_env {
            Some(var) => format!("environment variable {var} is empty"),
            None => "standard input was empty".to_string(),
        };
        return user(format!(
            "{from}; refusing to store an empty value for secret {} (nothing was changed)",
            args.name
        ));
    }
    let stored = store.set(&args.name, &value.0).map_err(edge)?;
    drop(value);
    if ctx.json() {
        print_json(&json!({
            "name": args.name,
            "digest": stored.digest,
            "replaced": stored.replaced,
        }))?;
    } else {
        println!("{}  {}", args.name, stored.digest);
        if stored.replaced {
            ctx.info(&format!("replaced the previous value of {}", args.name));
        }
    }
    Ok(Outcome::Ok)
}

fn from_env(var: &str) -> anyhow::Result<Wiped> {
    if var.is_empty() || var.contains('=') || var.contains('\0') {
        return user(format!(
            "--from-env {var:?} is not an environment variable name"
        ));
    }
    match std::env::var_os(var) {
        None => user(format!(
            "environment variable {var} is not set; export it, or pipe the value to `aos secret set` on standard input"
        )),
        Some(v) => match v.into_string() {
            Ok(s) => Ok(Wiped(s.into_bytes())),
            Err(_) => user(format!(
                "environment variable {var} is not UTF-8 text; secrets hold text such as API keys"
            )),
        },
    }
}

fn from_stdin(ctx: &Ctx, name: &str) -> anyhow::Result<Wiped> {
    let stdin = std::io::stdin();
    let mut buf = Wiped(Vec::new());
    if stdin.is_terminal() {
        if !ctx.global.quiet {
            let mut err = std::io::stderr();
            let _ = write!(err, "value for {name} (not echoed): ");
            let _ = err.flush();
        }
        let guard = NoEcho::new();
        let mut line = String::new();
        let read = stdin
            .lock()
            .take(MAX_VALUE_LEN as u64 + 3)
            .read_line(&mut line);
        drop(guard);
        eprintln!();
        buf.0 = std::mem::take(&mut line).into_bytes();
        match read {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return user("the value is not UTF-8 text; secrets hold text such as API keys")
            }
            Err(e) => anyhow::bail!("cannot read the value from the terminal: {e}"),
        }
    } else {
        stdin
            .lock()
            .take(MAX_VALUE_LEN as u64 + 3)
            .read_to_end(&mut buf.0)
            .map_err(|e| anyhow::anyhow!("cannot read the value from standard input: {e}"))?;
    }
    if buf.0.ends_with(b"\r\n") {
        buf.0.truncate(buf.0.len() - 2);
    } else if buf.0.ends_with(b"\n") {
        buf.0.truncate(buf.0.len() - 1);
    }
    Ok(buf)
}

/// Turns terminal echo off on standard input for its lifetime (best effort).
struct NoEcho {
    saved: Option<libc::termios>,
}

impl NoEcho {
    fn new() -> NoEcho {
        // SAFETY: tcgetattr and tcsetattr only read and write the termios struct we pass,
        // for file descriptor 0, which stays open for the life of the process.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return NoEcho { saved: None };
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return NoEcho { saved: None };
            }
            NoEcho { saved: Some(saved) }
        }
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            // SAFETY: restores the settings read in `new` on the same descriptor.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, t);
            }
        }
    }
}

fn ls(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let store = store(ctx)?;
    let entries = store.entries().map_err(edge)?;
    if ctx.json() {
        let items: Vec<_> = entries
            .iter()
            .map(|e| json!({"name": e.name, "digest": e.digest, "too_open": e.too_open}))
            .collect();
        print_json(&json!(items))?;
        return Ok(Outcome::Ok);
    }
    if entries.is_empty() {
        ctx.info("no secrets in this world; store one with `aos secret set NAME`");
        return Ok(Outcome::Ok);
    }
    let width = entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
    let mut out = std::io::stdout().lock();
    for e in &entries {
        let flag = if e.too_open {
            "  (readable by others: chmod 600 or set it again)"
        } else {
            ""
        };
        writeln!(out, "{:width$}  {}{flag}", e.name, e.digest)?;
    }
    Ok(Outcome::Ok)
}

fn rm(ctx: &Ctx, args: SecretRmArgs) -> anyhow::Result<Outcome> {
    let store = store(ctx)?;
    store.remove(&args.name).map_err(edge)?;
    if ctx.json() {
        print_json(&json!({"name": args.name, "removed": true}))?;
    } else {
        ctx.info(&format!("removed secret {}", args.name));
    }
    Ok(Outcome::Ok)
}
