//! The clap definitions of every `aos` command. Help texts here are also the source of
//! the man pages in `man/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::output::Format;

#[derive(Debug, Parser)]
#[command(
    name = "aos",
    version,
    about = "A git-like toolchain for deterministic, auditable agent worlds",
    long_about = "aos keeps a world in a directory: content-addressed objects and an append-only, \
hash-chained journal under .aos/. Run aos inside a world (it is found by walking up from the \
current directory, like git) or point at one with -C DIR or --world DIR.\n\n\
Exit status: 0 ok, 1 the command found a problem (a failed check, a damaged journal), \
2 a usage or input error.",
    after_help = "Start with `aos init`, then `aos log` and `aos fsck`. Every command has --help; \
man pages are in man/.",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Run as if aos was started in DIR (the world is then found from there).
    #[arg(short = 'C', value_name = "DIR", global = true)]
    pub chdir: Option<PathBuf>,
    /// Use the world rooted exactly at DIR (no walking up).
    #[arg(long = "world", value_name = "DIR", global = true)]
    pub world: Option<PathBuf>,
    /// Output format: human text or JSON for machines.
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub format: Format,
    /// Do not show progress bars or informational messages.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Name recorded as the origin of records this command writes (default: the OS user).
    #[arg(long = "as", value_name = "NAME", global = true)]
    pub actor: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a world in DIR (default: the current directory).
    Init(InitArgs),
    /// Fork a world: a cheap copy, optionally at a past height.
    Fork(ForkArgs),
    /// Manage worlds (init, fork) under one noun.
    #[command(subcommand)]
    World(WorldCommand),
    /// Show the world's id, head, counts, keys, manifest in force and governance rules.
    Info,
    /// Show the journal, newest record first.
    Log(LogArgs),
    /// Print an object by hash (pretty JSON by default).
    #[command(name = "cat-object")]
    CatObject(CatObjectArgs),
    /// Store and fetch raw blobs.
    #[command(subcommand)]
    Blob(BlobCommand),
    /// Check every object, the journal chain, the index and the keys.
    Fsck,
    /// Check WASM reducer modules and store them in the world.
    #[command(subcommand)]
    Module(ModuleCommand),
    /// Work with AIR files outside any world: check, format, hash, diff, patch (for PR review and CI).
    #[command(subcommand)]
    Air(AirCommand),
    /// Inject a domain event, run the world until idle and show what happened.
    Send(SendArgs),
    /// Step the world: finish interrupted work, feed an event stream, run until idle.
    Run(RunArgs),
    /// Show a reducer's state (a keyed reducer's cell with --key), now or at a past seq.
    State(StateArgs),
    /// List the cells (keys) of a keyed reducer.
    Cells(CellsArgs),
    /// Store the current state as objects and journal a snapshot record.
    Snapshot,
    /// Rebuild the state from the journal and check every derived record; report the first divergence.
    Replay(ReplayArgs),
    /// List, show and verify the signed effect receipts in the journal.
    #[command(subcommand)]
    Receipts(ReceiptsCommand),
    /// Start a plan run by hand.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// List plan runs and show one: its status, step states, waits and result.
    #[command(subcommand)]
    Plans(PlansCommand),
    /// Store, list and remove the world's secrets (API keys); values are never shown.
    #[command(
        subcommand,
        after_help = "Secrets live in .aos/secrets/ of the world: one file per secret, mode 0600, in a \
directory of mode 0700, written atomically. Adapters read them at dispatch, so an API key reaches \
the service it is for and nowhere else: a value never enters the journal, the object store, \
receipts, reducer state or any command's output (also not in errors). Commands show a secret's \
name and its digest, blake3:<hex> of the value (the form a defsecret's expected_digest takes). \
Secrets are not copied by `aos fork`.\n\nExamples:\n  aos secret set OPENAI_API_KEY < key.txt\n  \
aos secret set OPENAI_API_KEY --from-env OPENAI_API_KEY\n  aos secret ls --format json\n  \
aos secret rm OPENAI_API_KEY"
    )]
    Secret(SecretCommand),
    /// Show why a record exists: its causes back to the roots (or, with --forward, its consequences).
    Why(WhyArgs),
    /// Start a proposal: a patch document, or a directory of AIR diffed against the manifest in force.
    Propose(ProposeArgs),
    /// Rehearse a proposal on an in-memory fork with every effect stubbed; report what would change.
    Shadow(ShadowArgs),
    /// Approve a proposal (optionally signed with the approver's ed25519 key).
    Approve(DecideArgs),
    /// Reject a proposal; it can no longer be approved or applied.
    Reject(DecideArgs),
    /// Put an approved proposal in force: its manifest (and governance rules, if it changes them).
    Apply(ApplyArgs),
    /// List proposals and show one: its patch, decisions, shadow reports and manifest diff.
    #[command(subcommand)]
    Proposals(ProposalsCommand),
    /// Create an ed25519 key file for signing approvals; prints its public key.
    Keygen(KeygenArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "VALUE is JSON in either lens of the schema (sugar such as {\"$tag\":\"Tick\"} or plain numbers and strings, or the tagged form). Write @FILE to read it from a file or - to read it from stdin. The value is validated and canonicalized against SCHEMA before anything is written; a mistyped event is refused (exit 2) and nothing is journaled.\n\nThe event is journaled with every record it causes (reducer steps, domain events routed in turn, effect intents, module errors) in one durable append, then each record is printed. Exit status 1 when a reducer failed on the event (the failure is journaled as module_error and the state is unchanged).\n\nExamples:\n  aos send demo/CounterEvent@1 '{\"$tag\":\"Start\",\"$value\":{\"target\":3}}'\n  aos send notes/Edit@1 @edit.json\n  echo '{\"$tag\":\"Tick\"}' | aos send demo/CounterEvent@1 -"
)]
pub struct SendArgs {
    /// The event's schema, e.g. demo/CounterEvent@1.
    #[arg(value_name = "SCHEMA")]
    pub schema: String,
    /// The event value: JSON, @FILE or - for stdin.
    #[arg(value_name = "VALUE", allow_hyphen_values = true)]
    pub value: String,
    /// The cell key for keyed reducers whose route has no key field (JSON, else text).
    #[arg(long, value_name = "K")]
    pub key: Option<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Without --events, run journals any records an interrupted command left out (the consequences of an input whose derivation was cut short) and returns when the world is idle.\n\nWith --events FILE (or - for stdin) every line is an event {\"schema\": NAME, \"value\": VALUE, \"key\": K?}; events are validated, stepped and journaled in batches of --batch events, each batch one durable append. After each batch one line reports how many events are acknowledged (durable); a bad line stops the run with exit 2, naming the line, after the batches before it were journaled."
)]
pub struct RunArgs {
    /// Return once no work is left, waiting for timers that are not due yet (the default).
    #[arg(long)]
    pub until_idle: bool,
    /// Do not wait for future timers: dispatch what is due and return.
    #[arg(long, conflicts_with = "until_idle")]
    pub no_wait: bool,
    /// Feed events from FILE (JSON lines), or - for stdin.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Events per durable append when feeding --events.
    #[arg(long, value_name = "N", default_value_t = 256)]
    pub batch: usize,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The state is rebuilt from the latest snapshot (or the state cache) and the journal after it. With --at SEQ it is the state as of that record, replayed from the newest snapshot at or before it.\n\nExamples:\n  aos state demo/CounterSM@1\n  aos state notes/Notebook@1 --key '\"n1\"'\n  aos state demo/CounterSM@1 --at 12 --format json"
)]
pub struct StateArgs {
    /// The reducer (module name), e.g. demo/CounterSM@1.
    #[arg(value_name = "REDUCER")]
    pub reducer: String,
    /// The cell key of a keyed reducer (JSON, else text).
    #[arg(long, value_name = "K")]
    pub key: Option<String>,
    /// Show the state as of this journal seq.
    #[arg(long, value_name = "SEQ")]
    pub at: Option<u64>,
}

#[derive(Debug, Args)]
pub struct CellsArgs {
    /// The keyed reducer (module name).
    #[arg(value_name = "REDUCER")]
    pub reducer: String,
    /// List the cells as of this journal seq.
    #[arg(long, value_name = "SEQ")]
    pub at: Option<u64>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Replay feeds the journal's inputs (injected events, and later receipts and governance decisions) through the kernel, re-derives every other record and compares it with the journal, byte for byte. It writes nothing. On the first mismatch it prints the seq, the recorded and the re-derived record side by side with a diff, and the module involved, and exits 1.\n\nBy default replay starts at the latest snapshot; --from-genesis starts at seq 0; --verify starts at seq 0 and also checks that every snapshot record names the state replay reaches there."
)]
pub struct ReplayArgs {
    /// Start at seq 0 instead of the latest snapshot.
    #[arg(long)]
    pub from_genesis: bool,
    /// Replay from genesis and check every snapshot's state hash on the way.
    #[arg(long)]
    pub verify: bool,
}

#[derive(Debug, Subcommand)]
pub enum AirCommand {
    /// Load and validate AIR files; print every diagnostic; exit 1 on any error.
    #[command(
        after_help = "PATH is a directory (every *.json file below it is read) or a file; \
several may be given. Diagnostics name the file, the def, a JSON pointer, what was expected and \
what was found. Warnings (for example a module whose wasm_hash is not filled yet) do not fail \
the check.\n\nExamples:\n  aos air check air/\n  aos air check air/ --module demo/Counter@1=counter.wasm --format json"
    )]
    Check(AirSetArgs),
    /// Rewrite AIR files in the one stable pretty form (2-space indent, `$kind` and `name` first).
    #[command(
        after_help = "Formatting only orders keys and whitespace; values are kept exactly as \
authored. With --check nothing is written and the exit status is 1 if any file would change \
(for CI).\n\nExamples:\n  aos air fmt air/\n  aos air fmt --check air/"
    )]
    Fmt(AirFmtArgs),
    /// Print the manifest hash and every def's hash.
    #[command(
        after_help = "Hashes are blake3 over canonical JSON; the manifest hash covers every \
listed def's hash, including module wasm hashes, so it names exactly the code that runs."
    )]
    Hash(AirSetArgs),
    /// Show defs added, removed and changed between two AIR sets.
    #[command(
        after_help = "Each changed def is shown as a unified diff of its canonical form. \
Works as a git external diff: with `*.air.json diff=air` in .gitattributes and \
`git config diff.air.command 'aos air diff'`, `git diff` shows AIR changes def by def.\n\n\
Examples:\n  aos air diff air.v1/ air.v2/\n  aos air diff old.air.json new.air.json --format json"
    )]
    Diff(AirDiffArgs),
    /// Print the patch document that turns AIR set A into AIR set B.
    #[command(
        after_help = "The patch has base_manifest_hash = A's manifest hash and the ops \
(add_def, replace_def, remove_def, set_*) that produce B; `aos propose` accepts it."
    )]
    Patch(AirPatchArgs),
}

#[derive(Debug, Args)]
pub struct AirSetArgs {
    /// AIR directories or files.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// Fill a defmodule's wasm_hash from a compiled module (repeatable).
    #[arg(long = "module", value_name = "NAME=FILE.wasm")]
    pub modules: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AirFmtArgs {
    /// AIR directories or files.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<PathBuf>,
    /// Write nothing; exit 1 if any file is not formatted.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct AirDiffArgs {
    /// The old AIR set (directory or file), or the 7 arguments git passes to an external diff.
    #[arg(value_name = "A", required = true, num_args = 2..=7)]
    pub paths: Vec<PathBuf>,
    /// Colour: auto (on a terminal), always or never.
    #[arg(long, value_name = "WHEN", default_value = "auto")]
    pub color: String,
    /// Fill module wasm hashes on both sides (repeatable).
    #[arg(long = "module", value_name = "NAME=FILE.wasm")]
    pub modules: Vec<String>,
}

#[derive(Debug, Args)]
pub struct AirPatchArgs {
    /// The base AIR set.
    #[arg(value_name = "A")]
    pub old: PathBuf,
    /// The target AIR set.
    #[arg(value_name = "B")]
    pub new: PathBuf,
    /// Fill module wasm hashes on both sides (repeatable).
    #[arg(long = "module", value_name = "NAME=FILE.wasm")]
    pub modules: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum WorldCommand {
    /// Create a world (same as `aos init`).
    Init(InitArgs),
    /// Fork a world (same as `aos fork`).
    Fork(ForkArgs),
    /// Rebuild and check a world's state from its journal (same as `aos replay`).
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Creates DIR/.aos/ with config.json (format version, world id, receipt \
public key), a fresh ed25519 receipt signing key (keys/receipts.ed25519, mode 0600), an empty \
object store and a journal whose first record is world_created. Creation is atomic: an \
interrupted init leaves no partial world.\n\nWith --air SRC the AIR sources are validated (every \
diagnostic is shown; nothing is created if any is an error) and become the genesis manifest: \
every def and the manifest are stored as objects and world_created names the manifest hash. \
--module NAME=FILE.wasm checks and stores a compiled reducer and fills that defmodule's \
wasm_hash, so the manifest hash pins its code.\n\nExamples:\n  aos init my-world\n  \
aos init --as alice\n  aos init shop --air air/ --module shop/Orders@1=target/orders.wasm"
)]
pub struct InitArgs {
    /// Directory to create the world in (created if missing).
    #[arg(value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// AIR sources (a directory or file) that become the genesis manifest.
    #[arg(long, value_name = "SRC")]
    pub air: Option<PathBuf>,
    /// Store a compiled reducer and fill that defmodule's wasm_hash (repeatable; needs --air).
    #[arg(long = "module", value_name = "NAME=FILE.wasm")]
    pub modules: Vec<String>,
    /// Fuel budget of one reducer step (about one unit per WASM instruction); recorded in
    /// the genesis record so replay runs under the same limit.
    #[arg(long, value_name = "N")]
    pub fuel_per_step: Option<u64>,
    /// Largest linear memory of a reducer instance, in MiB; recorded like --fuel-per-step.
    #[arg(long, value_name = "MIB")]
    pub memory_mib: Option<u64>,
    /// Approvals `aos apply` needs, from distinct approvers (default 1, at least 1);
    /// recorded in the genesis record like the limits. Without registered approvers
    /// (--approver) the names are not checked: any --as NAME counts.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub approvals: Option<u32>,
    /// Let `aos apply` go ahead without a clean shadow report of the proposal.
    #[arg(long)]
    pub no_shadow_required: bool,
    /// Register an approver and the ed25519 public key their decisions must be signed
    /// with (repeatable; with any, only registered approvers may decide).
    #[arg(long = "approver", value_name = "NAME=KEY")]
    pub approvers: Vec<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The fork copies the source journal up to SEQ (all of it by default) and \
appends a forked_from record naming the source world, seq and record hash. Objects are not \
copied: the fork lists the source's object directory as an alternate (instant; the source must \
stay where it is), or hard-links every object with --link-objects (independent of the source; \
same file system only). The fork gets its own world id and signing key and keeps the source's \
public keys to verify inherited receipts.\n\nExamples:\n  aos fork . ../experiment\n  aos fork prod staging --at 1200 --link-objects"
)]
pub struct ForkArgs {
    /// The world to fork (found by walking up from this path).
    #[arg(value_name = "SRC")]
    pub src: PathBuf,
    /// Where to create the fork (must not already be a world).
    #[arg(value_name = "DST")]
    pub dst: PathBuf,
    /// Fork at this journal seq instead of the head.
    #[arg(long, value_name = "SEQ")]
    pub at: Option<u64>,
    /// Hard-link every object instead of sharing the source's object directory.
    #[arg(long)]
    pub link_objects: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Text output shows each record's seq, kind, hash, time, causes and body. \
--format json prints one JSON object per line: the record's fields plus its hash.\n\n\
Examples:\n  aos log -n 5\n  aos log --kind world_created --kind forked_from\n  aos log --since 100 --format json\n  aos log --follow"
)]
pub struct LogArgs {
    /// Show at most N records.
    #[arg(short = 'n', long = "max-count", value_name = "N")]
    pub max_count: Option<u64>,
    /// Only records of this kind (repeatable).
    #[arg(long, value_name = "KIND")]
    pub kind: Vec<String>,
    /// Only records with seq >= SEQ.
    #[arg(long, value_name = "SEQ")]
    pub since: Option<u64>,
    /// Keep running and print records as they are appended. Output is then oldest first:
    /// the last N matching records (10 unless -n is given), then new ones.
    #[arg(short, long)]
    pub follow: bool,
    /// Show full bodies, pretty-printed (text format).
    #[arg(long)]
    pub full: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "HASH is `blake3:<hex>`, the bare hex digest, or a unique prefix of at \
least 4 hex digits. JSON objects are pretty-printed, text is printed as is; binary objects need \
--raw (or use `aos blob get HASH -o FILE`). The object's bytes are re-hashed before anything is \
printed; a corrupt object is an error."
)]
pub struct CatObjectArgs {
    /// The object to print.
    #[arg(value_name = "HASH")]
    pub hash: String,
    /// Write the stored bytes exactly as they are.
    #[arg(long)]
    pub raw: bool,
}

#[derive(Debug, Subcommand)]
pub enum BlobCommand {
    /// Store files (or stdin with `-`) as blobs and print their hashes.
    #[command(
        after_help = "Files are streamed in bounded chunks (no whole-file buffering) and \
made durable together with one sync. Prints one hash per input, followed by the file name when \
there are several.\n\nExamples:\n  aos blob put report.pdf\n  echo hello | aos blob put -"
    )]
    Put(BlobPutArgs),
    /// Write a blob to stdout or to a file.
    #[command(
        after_help = "The blob is verified against its hash before any byte is written. \
With -o the file is written to a temporary name and renamed into place."
    )]
    Get(BlobGetArgs),
}

#[derive(Debug, Args)]
pub struct BlobPutArgs {
    /// Files to store; `-` reads standard input.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BlobGetArgs {
    /// The blob's hash (or a unique prefix).
    #[arg(value_name = "HASH")]
    pub hash: String,
    /// Write to FILE instead of standard output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ModuleCommand {
    /// Check a WASM reducer module, store it and print its hash.
    #[command(
        after_help = "FILE is a core WebAssembly binary. It is refused (exit 2, nothing stored) \
when it is not valid WASM, when it imports anything (the kernel provides no imports: no WASI), or \
when it does not export the reducer ABI: `memory`, `alloc(len: i32) -> i32` and \
`step(ptr: i32, len: i32) -> i64`. A good module is stored under its blake3 hash (the hash a \
defmodule's wasm_hash names) and compiled once into .aos/cache/wasm/, so the first step does not \
compile. --format json prints {\"hash\", \"bytes\", \"cache\"}.\n\n\
Examples:\n  aos module add target/wasm32-unknown-unknown/release/counter.wasm\n  \
aos module add reducer.wasm --format json"
    )]
    Add(ModuleAddArgs),
}

#[derive(Debug, Args)]
pub struct ModuleAddArgs {
    /// The module: a core WASM binary.
    #[arg(value_name = "FILE.wasm")]
    pub file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum SecretCommand {
    /// Store a secret from standard input (or an environment variable); print its name and digest.
    #[command(
        after_help = "The value is read from standard input up to its end; one trailing newline \
(\\n or \\r\\n) is removed, so `echo KEY | aos secret set NAME` stores KEY. On a terminal the \
input is not echoed and ends at the first newline. With --from-env VAR the value is the \
environment variable's, unchanged. The value must be non-empty UTF-8 text of at most 64 KiB; \
anything else is refused (exit 2) and nothing is changed. An existing secret of that name is \
replaced atomically.\n\nNAME is 1 to 128 letters, digits, `_`, `-` or `.`, starting with a \
letter, digit or `_`. Only the name and the digest (blake3:<hex> of the value) are printed; \
--format json prints {\"name\", \"digest\", \"replaced\"}.\n\nExamples:\n  \
aos secret set OPENAI_API_KEY < key.txt\n  aos secret set OPENAI_API_KEY --from-env OPENAI_API_KEY"
    )]
    Set(SecretSetArgs),
    /// List the secrets: names and digests of their values, never the values.
    #[command(
        after_help = "Text output is one line per secret: NAME and blake3:<hex> of its value. \
--format json prints an array of {\"name\", \"digest\"}. A secret file others may read is \
flagged; adapters refuse it until it is stored again (or chmod 600)."
    )]
    Ls,
    /// Remove a secret.
    #[command(
        after_help = "Removing a secret that does not exist is an error (exit 2). Records that \
used the secret keep only its name, so the journal is unaffected."
    )]
    Rm(SecretRmArgs),
}

#[derive(Debug, Args)]
pub struct SecretSetArgs {
    /// The secret's name, e.g. OPENAI_API_KEY.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Take the value from the environment variable VAR instead of standard input.
    #[arg(long, value_name = "VAR")]
    pub from_env: Option<String>,
}

#[derive(Debug, Args)]
pub struct SecretRmArgs {
    /// The secret to remove.
    #[arg(value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Subcommand)]
#[command(
    after_help = "Every receipt is signed with the world's ed25519 receipt key over its \
canonical bytes (intent hash, adapter, status, payload hash, timings, cost). Verification needs \
only a public key: the world's config lists its own and those it inherited by forking, or pass \
--public-key ed25519:<hex>. Exit status 1 when any receipt fails."
)]
pub enum ReceiptsCommand {
    /// One line per receipt: seq, intent, effect kind, status, adapter, verified or not.
    Ls(ReceiptsVerifyArgs),
    /// One receipt in full, by journal seq or intent hash (a unique prefix works).
    Show(ReceiptsShowArgs),
    /// Verify every receipt's signature and payload hash.
    Verify(ReceiptsVerifyArgs),
}

#[derive(Debug, Args)]
pub struct ReceiptsVerifyArgs {
    /// Verify with this public key (ed25519:<hex>) instead of the world's.
    #[arg(long, value_name = "KEY")]
    pub public_key: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReceiptsShowArgs {
    /// A journal seq or an intent hash.
    #[arg(value_name = "SEQ|INTENT")]
    pub which: String,
    /// Verify with this public key (ed25519:<hex>) instead of the world's.
    #[arg(long, value_name = "KEY")]
    pub public_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Start a run of plan NAME with VALUE as its input (JSON, @FILE or -).
    #[command(
        after_help = "VALUE is validated against the plan's input schema before anything \
is written. The run starts at once: its steps run until it waits for a receipt or ends, and \
its effects are dispatched like `aos send` does. Triggered runs start from domain events (the \
manifest's triggers); this starts one directly.\n\nExample:\n  aos plan start demo/fetch_plan@1 \
'{\"url\":\"http://127.0.0.1:8000/\"}'"
    )]
    Start(PlanStartArgs),
}

#[derive(Debug, Args)]
pub struct PlanStartArgs {
    /// The plan, e.g. demo/fetch_plan@1.
    #[arg(value_name = "NAME")]
    pub name: String,
    /// The input value: JSON, @FILE or - for stdin.
    #[arg(value_name = "VALUE", allow_hyphen_values = true)]
    pub value: String,
}

#[derive(Debug, Subcommand)]
pub enum PlansCommand {
    /// One line per run: id (the seq of its plan_started record), plan, status, result.
    Ls,
    /// One run: its records, and for a run in flight its variables, finished steps and wait.
    Show(PlansShowArgs),
}

#[derive(Debug, Args)]
pub struct PlansShowArgs {
    /// The run id (the seq of its plan_started record).
    #[arg(value_name = "RUN")]
    pub run: u64,
}

#[derive(Debug, Args)]
#[command(
    after_help = "SOURCE is a patch document (JSON: version, base_manifest_hash, patches — as \
`aos air patch OLD NEW` writes it) or a directory of AIR files, which is diffed against the \
manifest in force into such a patch. The patch is compiled against its base_manifest_hash; when \
the world has moved on since, the proposal is refused and nothing changes (re-propose against \
the current manifest). The candidate manifest is validated in full, its defs and the manifest \
are stored as objects, and a `proposed` record is journaled with a world-local id, the patch \
hash and the author (--as NAME, else the OS user).\n\nA defmodule whose wasm_hash is a \
placeholder keeps the world's module of that name, unless --module NAME=FILE.wasm gives new \
code (stored first).\n\nThe governance rules themselves (recorded in the genesis record) change the same way: \
--approvals, --require-shadow, --approver and --remove-approver propose new rules, alone or \
with a manifest change; they are decided under the rules in force and take effect when \
applied.\n\nNext: `aos shadow ID`, `aos approve ID`, `aos apply ID`.\n\n\
Examples:\n  aos propose air/ -m 'add a second request'\n  aos air patch old/ new/ > p.json && \
aos propose p.json\n  aos propose --approvals 2 --approver bob=ed25519:<hex> -m 'two approvers'"
)]
pub struct ProposeArgs {
    /// A patch document (JSON) or a directory of AIR files.
    #[arg(value_name = "PATCH|AIR_DIR")]
    pub source: Option<PathBuf>,
    /// A message saying what the change is for.
    #[arg(short = 'm', long = "message", value_name = "MSG")]
    pub message: Option<String>,
    /// Store FILE.wasm and fill defmodule NAME's wasm_hash with its hash (repeatable).
    #[arg(long = "module", value_name = "NAME=FILE.wasm")]
    pub modules: Vec<String>,
    /// Change the governance rules: the approvals apply needs (at least 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub approvals: Option<u32>,
    /// Change the governance rules: whether apply needs a clean shadow report.
    #[arg(long, value_name = "BOOL")]
    pub require_shadow: Option<bool>,
    /// Change the governance rules: register an approver and their public key (repeatable).
    #[arg(long = "approver", value_name = "NAME=KEY")]
    pub approvers: Vec<String>,
    /// Change the governance rules: unregister an approver (repeatable).
    #[arg(long = "remove-approver", value_name = "NAME")]
    pub remove_approvers: Vec<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The rehearsal runs on an in-memory fork of the world's current state with \
the proposal's manifest in force. Nothing is dispatched: every effect is stubbed, no byte \
leaves the machine, and intents stay open (introspect effects are answered from the fork). \
The journal gets one `shadow_report` record; the world's state is not changed.\n\n\
--events FILE feeds JSON lines {\"schema\": NAME, \"value\": VALUE} in order. --replay-all \
(or --replay-since SEQ) re-runs the journal's recorded inputs under the proposed manifest and \
reports, input by input, where the outcome differs from what the journal recorded: does this \
proposal change what live worlds do? \"All\" starts after the `applied` record that put the \
current manifest in force (inputs before it ran under older manifests).\n\nThe report: the manifest diff, the effects the \
rehearsal would emit with their grant and policy verdicts, reducer state changes, plan results, \
module errors, the capabilities the change newly needs, and divergences. Exit status 1 when it \
found a module error, a denied effect, a failed plan or an unaccepted divergence; accept \
expected divergences with --accept SEQ or --accept-divergences.\n\nWhere apply needs a shadow \
report, a report that fed nothing (no --events, no --replay-*) does not count, and the latest \
report of each kind (events, replay of all inputs, replay since a seq) must be clean.\n\nExamples:\n  aos shadow 1 \
--events samples.jsonl\n  aos shadow 1 --replay-all --format json"
)]
pub struct ShadowArgs {
    /// The proposal id.
    #[arg(value_name = "ID")]
    pub id: u64,
    /// JSON lines of {"schema": NAME, "value": VALUE} to feed, in order (- for stdin).
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Re-run the journal's recorded inputs from SEQ on under the proposed manifest.
    #[arg(long, value_name = "SEQ", conflicts_with = "replay_all")]
    pub replay_since: Option<u64>,
    /// Re-run every recorded input since genesis under the proposed manifest.
    #[arg(long)]
    pub replay_all: bool,
    /// Accept the divergence at input SEQ as intended (repeatable).
    #[arg(long = "accept", value_name = "SEQ")]
    pub accept: Vec<u64>,
    /// Accept every divergence as intended (the report still lists them).
    #[arg(long)]
    pub accept_divergences: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "The decision is journaled (`approved` or `rejected`) with the approver: \
--as NAME, else the OS user. With --key FILE (an ed25519 key file made by `aos keygen`) the \
decision is signed over the decision (approve or reject), the proposal's id, patch, base \
and candidate manifests and the approver's name; a signature made elsewhere is given with --signature and --public-key (`aos \
proposals show ID --format json` prints the bytes to sign, base64, as \
`signing_payload.approve` and `.reject` for the --as NAME given). Signatures \
are verified before anything is written and again on every replay. When the world's \
governance settings list approvers, only they may decide, each with their registered key.\n\n\
Examples:\n  aos approve 1 --as alice\n  aos approve 1 --as alice --key alice.ed25519"
)]
pub struct DecideArgs {
    /// The proposal id.
    #[arg(value_name = "ID")]
    pub id: u64,
    /// Sign the decision with this ed25519 key file.
    #[arg(long, value_name = "FILE", conflicts_with = "signature")]
    pub key: Option<PathBuf>,
    /// A signature made elsewhere (base64 of 64 bytes), with --public-key.
    #[arg(long, value_name = "BASE64", requires = "public_key")]
    pub signature: Option<String>,
    /// The public key (ed25519:<hex>) --signature verifies with.
    #[arg(long, value_name = "KEY", requires = "signature")]
    pub public_key: Option<String>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Refused, changing nothing, without the approvals the world's governance \
settings ask for (by default one, and a clean shadow report of the same patch), for a \
rejected or already applied proposal, and when the manifest in force is no longer the \
proposal's base. The swap is one journal record (`applied`, with the new manifest hash): a \
crash leaves the world before or after it, never between. Plan runs in flight finish under the \
manifest they started with; receipts of earlier intents still land.\n\nExample:\n  aos apply 1"
)]
pub struct ApplyArgs {
    /// The proposal id.
    #[arg(value_name = "ID")]
    pub id: u64,
}

#[derive(Debug, Subcommand)]
pub enum ProposalsCommand {
    /// One line per proposal: id, status, approvals, shadow verdict, author, message.
    Ls,
    /// One proposal: its patch, base and candidate manifests, decisions and the manifest diff.
    Show(ProposalShowArgs),
}

#[derive(Debug, Args)]
pub struct ProposalShowArgs {
    /// The proposal id.
    #[arg(value_name = "ID")]
    pub id: u64,
}

#[derive(Debug, Args)]
#[command(
    after_help = "FILE is created with mode 0600 and must not exist. Give the printed public \
key to whoever registers approvers (`aos init --approver NAME=KEY`, or in a world that exists \
`aos propose --approver NAME=KEY`).\n\nExample:\n  aos \
keygen ~/.aos/alice.ed25519"
)]
pub struct KeygenArgs {
    /// Where to write the private key.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
#[command(
    after_help = "TARGET is a journal seq, an intent hash (blake3:<hex> or the bare hex; the \
effect_intent record, which a receipt's intent_hash also names) or REDUCER[/KEY]: the latest \
reducer_stepped record of that reducer (of one cell of a keyed reducer; KEY is JSON, or plain text \
when it is not valid JSON).\n\n\
The tree shows each record's kind, seq, time and a one-line summary, indented under the record it \
explains. Roots have no cause: an injected event (with who sent it and how), a plan started by \
hand, the world's creation or fork, a governance decision; an applied proposal is shown with its \
proposal and approvals. A record reached twice is printed once and then as \"(see above)\"; \"…\" \
marks links cut by --depth. --format json prints one document {target, direction, nodes, edges \
[[cause, consequence]…], roots}; --format dot (or --dot) prints a Graphviz digraph.\n\n\
Answers come from an index of cause links in .aos/cache/why/ (never authoritative: checked against \
the journal head, extended as the journal grows, rebuilt when it does not match). why only reads \
the journal; it takes no lock.\n\n\
With --check, why walks the whole journal instead and lists every record without a path to a \
root (exit 1 when there is any).\n\n\
Examples:\n  aos why 12\n  aos why demo/CounterSM@1\n  aos why 'notes/Notebook@1/\"n1\"'\n  \
aos why blake3:<intent hash, 64 hex digits> --format json\n  aos why 1 --forward --depth 2\n  \
aos why 12 --format dot | dot -Tsvg > why.svg\n  aos why --check"
)]
pub struct WhyArgs {
    /// SEQ, INTENT_HASH or REDUCER[/KEY].
    #[arg(value_name = "TARGET", required_unless_present = "check")]
    pub target: Option<String>,
    /// Show the records caused by the target (transitively) instead of its causes.
    #[arg(long)]
    pub forward: bool,
    /// Follow at most N links from the target.
    #[arg(long, value_name = "N")]
    pub depth: Option<u64>,
    /// Print a Graphviz digraph instead of the tree (the same as --format dot).
    #[arg(long)]
    pub dot: bool,
    /// Check that every record in the journal has a path to a root; list those that do not.
    #[arg(long, conflicts_with_all = ["target", "forward", "depth", "dot"])]
    pub check: bool,
}
