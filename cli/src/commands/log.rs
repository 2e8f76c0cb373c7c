//! `aos log`: the journal newest first (like git log), filtered by kind and seq, as text
//! or JSON lines, or followed as it grows.

use std::io::Write;
use std::time::Duration;

use aos_store::journal::{Journal, Record};
use aos_store::world::{Access, World};
use aos_store::Hash;
use serde_json::Value;

use super::Ctx;
use crate::args::LogArgs;
use crate::exit::Outcome;
use crate::output::{time, warn_all};

const BODY_PREVIEW: usize = 240;

pub fn run(ctx: &Ctx, args: LogArgs) -> anyhow::Result<Outcome> {
    let root = ctx.world_root()?;
    let mut w = World::open(&root, Access::Read)?;
    warn_all(w.warnings());
    if let Some(since) = args.since {
        let head = w.journal.head().map(|h| h.seq);
        if head.is_none_or(|h| since > h + 1) {
            return Err(aos_store::Error::SeqOutOfRange { seq: since, head }.into());
        }
    }
    let mut out = std::io::stdout().lock();
    if args.follow {
        return follow(ctx, &args, &mut w.journal, &mut out);
    }
    let since = args.since.unwrap_or(0);
    let mut shown = 0u64;
    let mut kinds = std::collections::BTreeSet::new();
    let mut seq = w.journal.len();
    while seq > since && args.max_count.is_none_or(|n| shown < n) {
        seq -= 1;
        let (rec, hash) = w.journal.read(seq)?;
        if !matches(&args, &rec) {
            if kinds.len() < 32 {
                kinds.insert(rec.kind);
            }
            continue;
        }
        print_record(ctx, &args, &mut out, &rec, &hash)?;
        shown += 1;
    }
    if shown == 0 && !args.kind.is_empty() && !kinds.is_empty() {
        let kinds: Vec<_> = kinds.into_iter().collect();
        ctx.info(&format!(
            "no records of kind {}; kinds present: {}",
            args.kind.join(", "),
            kinds.join(", ")
        ));
    }
    Ok(Outcome::Ok)
}

fn matches(args: &LogArgs, rec: &Record) -> bool {
    args.kind.is_empty() || args.kind.contains(&rec.kind)
}

/// Print the last N matching records oldest first, then new records as they arrive.
fn follow(
    ctx: &Ctx,
    args: &LogArgs,
    journal: &mut Journal,
    out: &mut impl Write,
) -> anyhow::Result<Outcome> {
    let want = args.max_count.unwrap_or(10);
    let since = args.since.unwrap_or(0);
    let mut picked = Vec::new();
    let mut seq = journal.len();
    while seq > since && (picked.len() as u64) < want {
        seq -= 1;
        let (rec, _) = journal.read(seq)?;
        if matches(args, &rec) {
            picked.push(seq);
        }
    }
    for &s in picked.iter().rev() {
        let (rec, hash) = journal.read(s)?;
        print_record(ctx, args, out, &rec, &hash)?;
    }
    out.flush()?;
    let mut next = journal.len();
    loop {
        if journal.refresh()? == 0 {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        for item in journal.iter_from(next)? {
            let (rec, hash) = item?;
            if rec.seq >= since && matches(args, &rec) {
                print_record(ctx, args, out, &rec, &hash)?;
            }
        }
        next = journal.len();
        out.flush()?;
    }
}

fn print_record(
    ctx: &Ctx,
    args: &LogArgs,
    out: &mut impl Write,
    rec: &Record,
    hash: &Hash,
) -> anyhow::Result<()> {
    if ctx.json() {
        let mut v = serde_json::to_value(rec)?;
        if let Value::Object(m) = &mut v {
            m.insert("hash".into(), Value::String(hash.to_string()));
        }
        serde_json::to_writer(&mut *out, &v)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(
        out,
        "seq {}  {}  {}  {}",
        rec.seq,
        rec.kind,
        hash.short(),
        time(rec.at_ns)
    )?;
    if !rec.cause.is_empty() {
        let causes: Vec<String> = rec.cause.iter().map(u64::to_string).collect();
        writeln!(out, "  cause  {}", causes.join(", "))?;
    }
    let origin = rec.body.get("origin").filter(|o| o.is_object());
    if let Some(o) = origin {
        let who = o.get("who").and_then(Value::as_str).unwrap_or("?");
        let via = o.get("via").and_then(Value::as_str).unwrap_or("?");
        writeln!(out, "  origin {who} via {via}")?;
    }
    if args.full {
        let pretty = serde_json::to_string_pretty(&rec.body)?;
        for line in pretty.lines() {
            writeln!(out, "  {line}")?;
        }
    } else {
        let mut shown = rec.body.clone();
        if let Value::Object(m) = &mut shown {
            if origin.is_some() {
                m.remove("origin"); // already on its own line
            }
        }
        let compact = shown.to_string();
        let preview: String = compact.chars().take(BODY_PREVIEW).collect();
        let more = if preview.len() < compact.len() {
            "…"
        } else {
            ""
        };
        writeln!(out, "  body   {preview}{more}")?;
    }
    writeln!(out)?;
    Ok(())
}
