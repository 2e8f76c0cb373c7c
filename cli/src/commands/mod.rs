//! Dispatch of parsed commands, and the context every command shares: where the world
//! is, the output format, and who is acting.

mod air;
mod blob;
mod cat_object;
mod decide;
mod dispatch;
mod fork;
mod fsck;
mod info;
mod init;
mod log;
mod module;
mod plans;
mod proposals;
mod propose;
mod receipts;
mod replay;
mod secret;
mod send;
mod session;
mod shadow;
mod state;
mod why;

use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::{json, Value};

use crate::args::{BlobCommand, Cli, Command, Global, ModuleCommand, WorldCommand};
use crate::exit::Outcome;
use crate::output::{Format, Progress};

/// What every command gets besides its own arguments.
pub struct Ctx {
    pub global: Global,
}

impl Ctx {
    pub fn format(&self) -> Format {
        self.global.format
    }

    pub fn json(&self) -> bool {
        self.global.format == Format::Json
    }

    /// The world to operate on: `--world DIR` exactly, else found by walking up from the
    /// current directory.
    pub fn world_root(&self) -> anyhow::Result<PathBuf> {
        Ok(match &self.global.world {
            Some(w) => aos_store::world::require_world(w)?,
            None => aos_store::world::discover(std::path::Path::new("."))?,
        })
    }

    /// The origin recorded on root records: who and through what.
    pub fn origin(&self) -> Value {
        json!({ "who": self.actor(), "via": "cli" })
    }

    pub fn actor(&self) -> String {
        if let Some(a) = &self.global.actor {
            return a.clone();
        }
        for var in ["USER", "LOGNAME"] {
            if let Ok(u) = std::env::var(var) {
                if !u.is_empty() {
                    return u;
                }
            }
        }
        user_name().unwrap_or_else(|| {
            // SAFETY: getuid has no preconditions and cannot fail.
            format!("uid:{}", unsafe { libc::getuid() })
        })
    }

    pub fn progress(&self) -> Progress {
        Progress::new(!self.global.quiet && !self.json())
    }

    /// Informational message on stderr (suppressed by --quiet).
    pub fn info(&self, msg: &str) {
        if !self.global.quiet {
            eprintln!("{msg}");
        }
    }
}

/// The login name of the current user from the password database.
fn user_name() -> Option<String> {
    // SAFETY: getpwuid_r writes only into the buffers we pass and sets `result` to
    // either null or `pwd`; the name pointer is valid while `buf` lives.
    unsafe {
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(
            libc::getuid(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        );
        if rc != 0 || result.is_null() || pwd.pw_name.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(pwd.pw_name)
            .to_string_lossy()
            .into_owned();
        (!name.is_empty()).then_some(name)
    }
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    if let Some(dir) = &cli.global.chdir {
        std::env::set_current_dir(dir)
            .map_err(|e| crate::exit::UserError(format!("-C {}: {e}", dir.display())))
            .context("cannot change directory")?;
    }
    if cli.global.format == Format::Dot && !matches!(cli.command, Command::Why(_)) {
        return crate::exit::user("--format dot is only for `aos why`; use text or json");
    }
    let ctx = Ctx { global: cli.global };
    match cli.command {
        Command::Init(a) | Command::World(WorldCommand::Init(a)) => init::run(&ctx, a),
        Command::Fork(a) | Command::World(WorldCommand::Fork(a)) => fork::run(&ctx, a),
        Command::Info => info::run(&ctx),
        Command::Log(a) => log::run(&ctx, a),
        Command::CatObject(a) => cat_object::run(&ctx, a),
        Command::Blob(BlobCommand::Put(a)) => blob::put(&ctx, a),
        Command::Blob(BlobCommand::Get(a)) => blob::get(&ctx, a),
        Command::Fsck => fsck::run(&ctx),
        Command::Module(ModuleCommand::Add(a)) => module::add(&ctx, a),
        Command::Air(c) => air::run(&ctx, c),
        Command::Send(a) => send::send(&ctx, a),
        Command::Run(a) => send::run(&ctx, a),
        Command::State(a) => state::state(&ctx, a),
        Command::Cells(a) => state::cells(&ctx, a),
        Command::Snapshot => state::snapshot(&ctx),
        Command::Replay(a) | Command::World(WorldCommand::Replay(a)) => replay::run(&ctx, a),
        Command::Receipts(c) => receipts::run(&ctx, c),
        Command::Plan(c) => plans::plan(&ctx, c),
        Command::Plans(c) => plans::plans(&ctx, c),
        Command::Secret(c) => secret::run(&ctx, c),
        Command::Propose(a) => propose::run(&ctx, a),
        Command::Shadow(a) => shadow::run(&ctx, a),
        Command::Approve(a) => decide::approve(&ctx, a),
        Command::Reject(a) => decide::reject(&ctx, a),
        Command::Apply(a) => decide::apply(&ctx, a),
        Command::Proposals(c) => proposals::run(&ctx, c),
        Command::Keygen(a) => decide::keygen(&ctx, a),
        Command::Why(a) => why::run(&ctx, a),
    }
}

/// The world's manifest in force: the genesis manifest named by `world_created`, or the
/// one the last `applied` record swapped in. Lines are matched as bytes first, so only
/// candidate lines are parsed.
pub fn active_manifest(
    journal: &aos_store::journal::Journal,
) -> anyhow::Result<Option<aos_store::Hash>> {
    Ok(active_manifest_record(journal)?.and_then(|(h, _, _)| h))
}

/// The manifest in force with the seq and kind of the record that named it.
pub fn active_manifest_record(
    journal: &aos_store::journal::Journal,
) -> anyhow::Result<Option<(Option<aos_store::Hash>, u64, String)>> {
    Ok(in_force(journal)?.map(|f| (f.manifest, f.seq, f.kind)))
}

/// What the journal puts in force: the manifest (with the seq and kind of the record
/// that named it) and the governance rules.
pub struct InForce {
    pub manifest: Option<aos_store::Hash>,
    pub seq: u64,
    pub kind: String,
    pub rules: Value,
}

/// Read [`InForce`] from the genesis record and the `applied` records after it.
pub fn in_force(journal: &aos_store::journal::Journal) -> anyhow::Result<Option<InForce>> {
    if journal.is_empty() {
        return Ok(None);
    }
    let hash_of = |body: &Value| {
        body.get("manifest")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
    };
    let (rec, _) = journal.read(0)?;
    let mut f = InForce {
        manifest: hash_of(&rec.body),
        seq: 0,
        kind: rec.kind,
        rules: rec.body.get("governance").cloned().unwrap_or(Value::Null),
    };
    let needle = br#""kind":"applied""#;
    let mut it = journal.iter_from(1)?;
    while let Some(item) = it.next_line() {
        let (seq, offset, line) = item?;
        if !line.windows(needle.len()).any(|w| w == needle) {
            continue;
        }
        let r = aos_store::journal::parse_line(journal.path(), seq, offset, line)?;
        if r.kind == aos_kernel::governance::APPLIED {
            if let Some(g) = r.body.get("governance").filter(|g| !g.is_null()) {
                f.rules = g.clone();
            }
            (f.manifest, f.seq, f.kind) = (hash_of(&r.body), seq, r.kind);
        }
    }
    Ok(Some(f))
}

/// Print a JSON value on one line to stdout.
pub fn print_json(v: &Value) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}
