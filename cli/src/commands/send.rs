//! `aos send SCHEMA VALUE|@FILE|- [--key K]` and `aos run [--events FILE] [--until-idle]`:
//! inject events, step until idle, journal everything in one durable append per batch,
//! and show what happened.

use std::io::{BufRead, Read};

use air_fmt::Name;
use aos_kernel::records::MODULE_ERROR;
use aos_kernel::session::{BootOptions, EventIn, Injected, Session};
use aos_store::world::Access;
use serde_json::{json, Value};

use super::dispatch::Dispatcher;
use super::session::{json_or_text, open, summary};
use super::{print_json, Ctx};
use crate::args::{RunArgs, SendArgs};
use crate::exit::{user, Outcome, UserError};

pub fn send(ctx: &Ctx, args: SendArgs) -> anyhow::Result<Outcome> {
    let schema = Name::parse(&args.schema).map_err(|e| {
        UserError(format!(
            "SCHEMA {:?}: {e} (e.g. demo/CounterEvent@1)",
            args.schema
        ))
    })?;
    let (text, from) = read_value_arg(&args.value)?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        UserError(format!(
            "VALUE from {from} is not JSON ({e}); quote text as JSON (e.g. '\"hello\"') or use @FILE"
        ))
    })?;
    let key = args.key.as_deref().map(json_or_text);
    let mut s = open(ctx, Access::Write, BootOptions::default())?;
    let completed = s.complete()?;
    if completed > 0 {
        ctx.info(&format!(
            "journaled {completed} record(s) an interrupted command left out"
        ));
    }
    let report = s.inject(&[EventIn { schema, value, key }], &ctx.origin())?;
    let outcome = print_injected(ctx, &report)?;
    let dispatched = dispatch_open(ctx, &mut s, false)?;
    s.finish()?;
    Ok(if dispatched == Outcome::Problem {
        Outcome::Problem
    } else {
        outcome
    })
}

/// Dispatch rounds `aos send` runs before leaving the rest to `aos run`.
const SEND_ROUNDS: usize = 100;

/// Dispatch the open effect intents (waiting for timers when `wait`), printing each
/// receipt and what it caused. Problem when a reducer failed on a delivered result.
pub(super) fn dispatch_open(ctx: &Ctx, s: &mut Session, wait: bool) -> anyhow::Result<Outcome> {
    if s.open_intents().is_empty() {
        return Ok(Outcome::Ok);
    }
    let d = Dispatcher::new(s)?;
    let mut worst = Outcome::Ok;
    // `aos send` follows effects for a bounded number of rounds (a reducer that answers
    // every timer with a due timer would never be idle); `aos run` follows them all.
    let max_rounds = (!wait).then_some(SEND_ROUNDS);
    d.run_until_idle(s, wait, max_rounds, |_, round| {
        for (receipt, inj) in &round.accepted {
            let Some(inj) = inj else { continue };
            if ctx.json() {
                print_json(&json!({"seq": inj.seq, "receipt": receipt.to_json()}))?;
            } else {
                println!(
                    "seq {} effect_receipt {} {} (intent {})",
                    inj.seq,
                    receipt.effect_kind,
                    receipt.status.as_str(),
                    receipt.intent_hash.short()
                );
                if receipt.status != aos_adapters::Status::Ok {
                    if let Some(m) = receipt.payload.get("message").and_then(Value::as_str) {
                        println!("  {m}");
                    }
                }
            }
            if print_injected_quiet(ctx, inj)? == Outcome::Problem {
                worst = Outcome::Problem;
            }
        }
        Ok(())
    })?;
    let left = s.open_intents().len();
    if left > 0 && !wait {
        ctx.info(&format!(
            "{left} effect intent(s) still open (timers not due yet, or more rounds); `aos run` dispatches them"
        ));
    }
    Ok(worst)
}

/// The derived records of an accepted receipt (the receipt line is printed by the caller).
fn print_injected_quiet(ctx: &Ctx, inj: &Injected) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::Ok;
    for (seq, r) in &inj.derived {
        if r.kind == MODULE_ERROR {
            outcome = Outcome::Problem;
            eprintln!(
                "aos: a reducer failed (module_error at seq {seq}): {}",
                r.body.get("message").and_then(Value::as_str).unwrap_or("?")
            );
        }
        if ctx.json() {
            print_json(&json!({"seq": seq, "kind": r.kind, "cause": r.cause, "body": r.body}))?;
        } else {
            println!("  seq {seq} {} {}", r.kind, summary(&r.kind, &r.body));
        }
    }
    Ok(outcome)
}

/// Print injected events with their consequences; exit 1 when a reducer failed.
pub(super) fn print_injected(ctx: &Ctx, report: &[Injected]) -> anyhow::Result<Outcome> {
    let mut failed = Vec::new();
    for inj in report {
        for (seq, r) in &inj.derived {
            if r.kind == MODULE_ERROR {
                failed.push((*seq, r.body.clone()));
            }
        }
        if ctx.json() {
            let records: Vec<Value> = inj
                .derived
                .iter()
                .map(|(seq, r)| json!({"seq": seq, "kind": r.kind, "cause": r.cause, "body": r.body}))
                .collect();
            print_json(&json!({"seq": inj.seq, "records": records}))?;
        } else {
            println!("seq {} journaled", inj.seq);
            if inj.derived.is_empty() {
                println!("  (no reducer takes this event)");
            }
            for (seq, r) in &inj.derived {
                println!("  seq {seq} {} {}", r.kind, summary(&r.kind, &r.body));
            }
        }
    }
    if failed.is_empty() {
        return Ok(Outcome::Ok);
    }
    for (seq, body) in &failed {
        eprintln!(
            "aos: a reducer failed (module_error at seq {seq}): {}\n  the event stays journaled and the state is unchanged; `aos log --kind module_error` lists failures",
            body.get("message").and_then(Value::as_str).unwrap_or("?")
        );
    }
    Ok(Outcome::Problem)
}

/// The text of a VALUE argument and where it came from.
pub(super) fn read_value_arg(arg: &str) -> anyhow::Result<(String, String)> {
    if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| UserError(format!("cannot read VALUE from stdin: {e}")))?;
        return Ok((text, "stdin".into()));
    }
    if let Some(path) = arg.strip_prefix('@') {
        let text = std::fs::read_to_string(path)
            .map_err(|e| UserError(format!("cannot read VALUE from {path}: {e}")))?;
        return Ok((text, path.to_string()));
    }
    Ok((arg.to_string(), "the command line".into()))
}

pub fn run(ctx: &Ctx, args: RunArgs) -> anyhow::Result<Outcome> {
    if args.batch == 0 {
        return user("--batch must be at least 1");
    }
    let mut s = open(ctx, Access::Write, BootOptions::default())?;
    let completed = s.complete()?;
    if completed > 0 {
        ctx.info(&format!(
            "journaled {completed} record(s) an interrupted command left out"
        ));
    }
    let Some(path) = &args.events else {
        let outcome = dispatch_open(ctx, &mut s, !args.no_wait)?;
        s.snapshot_if_due()?;
        let head = s.world.journal.head().map_or(0, |h| h.seq);
        s.finish()?;
        if ctx.json() {
            print_json(&json!({"completed": completed, "idle": true, "head": head}))?;
        } else {
            println!("idle at seq {head}");
        }
        return Ok(outcome);
    };
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let f = std::fs::File::open(path)
            .map_err(|e| UserError(format!("--events {}: {e}", path.display())))?;
        Box::new(std::io::BufReader::new(f))
    };
    let origin = ctx.origin();
    let mut batch = Vec::with_capacity(args.batch);
    let mut lines_of_batch = Vec::with_capacity(args.batch);
    let mut acked = 0u64;
    let mut failures = 0u64;
    let mut line_no = 0u64;
    let mut lines = reader.lines();
    loop {
        let line = lines.next();
        let at_end = line.is_none();
        if let Some(line) = line {
            line_no += 1;
            let line = line.map_err(|e| UserError(format!("--events line {line_no}: {e}")))?;
            if line.trim().is_empty() {
                continue;
            }
            batch.push(parse_event_line(&line, line_no)?);
            lines_of_batch.push(line_no);
        }
        if batch.len() == args.batch || (at_end && !batch.is_empty()) {
            let report = s.inject(&batch, &origin).map_err(|e| match e {
                aos_kernel::KernelError::Refused(m) => anyhow::Error::new(UserError(format!(
                    "--events: {} (the batch from line {} was not journaled; {acked} events before it were)",
                    renumber(&m, &lines_of_batch),
                    lines_of_batch.first().copied().unwrap_or(line_no)
                ))),
                other => other.into(),
            })?;
            acked += report.len() as u64;
            failures += report
                .iter()
                .flat_map(|r| &r.derived)
                .filter(|(_, r)| r.kind == MODULE_ERROR)
                .count() as u64;
            let head = s.world.journal.head().map_or(0, |h| h.seq);
            if ctx.json() {
                print_json(&json!({"acked": acked, "head": head}))?;
            } else if !ctx.global.quiet {
                println!("acknowledged {acked} events (head seq {head})");
            }
            batch.clear();
            lines_of_batch.clear();
            s.snapshot_if_due()?;
        }
        if at_end {
            break;
        }
    }
    let dispatched = dispatch_open(ctx, &mut s, !args.no_wait)?;
    s.finish()?;
    if dispatched == Outcome::Problem && failures == 0 {
        return Ok(Outcome::Problem);
    }
    if failures > 0 {
        eprintln!("aos: {failures} reducer step(s) failed; they are journaled as module_error (`aos log --kind module_error`)");
        return Ok(Outcome::Problem);
    }
    Ok(Outcome::Ok)
}

/// Replace "event N:" (1-based within the batch) with the line number it came from.
fn renumber(msg: &str, lines: &[u64]) -> String {
    if let Some(rest) = msg.strip_prefix("event ") {
        if let Some((n, tail)) = rest.split_once(':') {
            if let Ok(i) = n.parse::<usize>() {
                if let Some(l) = lines.get(i.wrapping_sub(1)) {
                    return format!("line {l}:{tail}");
                }
            }
        }
    }
    match lines {
        [one] => format!("line {one}: {msg}"),
        _ => msg.to_string(),
    }
}

fn parse_event_line(line: &str, n: u64) -> anyhow::Result<EventIn> {
    let v: Value = serde_json::from_str(line)
        .map_err(|e| UserError(format!("--events line {n} is not JSON: {e}")))?;
    let Value::Object(mut o) = v else {
        return user(format!(
            "--events line {n}: expected an object {{\"schema\": NAME, \"value\": VALUE}}"
        ));
    };
    if let Some(k) = o
        .keys()
        .find(|k| !["schema", "value", "key"].contains(&k.as_str()))
    {
        return user(format!(
            "--events line {n}: unknown field `{k}` (allowed: schema, value, key)"
        ));
    }
    let schema = match o.remove("schema") {
        Some(Value::String(s)) => Name::parse(&s)
            .map_err(|e| UserError(format!("--events line {n}: schema {s:?}: {e}")))?,
        _ => return user(format!("--events line {n}: `schema` must be a schema name")),
    };
    let Some(value) = o.remove("value") else {
        return user(format!("--events line {n}: no `value`"));
    };
    Ok(EventIn {
        schema,
        value,
        key: o.remove("key"),
    })
}
