//! `aos state REDUCER [--key K] [--at SEQ]`, `aos cells REDUCER` and `aos snapshot`:
//! reducer state as the kernel rebuilds it from snapshots and the journal.

use air_fmt::Name;
use aos_kernel::session::{BootOptions, Session};
use aos_kernel::state::ReducerState;
use aos_store::world::Access;
use serde_json::{json, Value};

use super::session::{json_or_text, open};
use super::{print_json, Ctx};
use crate::args::{CellsArgs, StateArgs};
use crate::exit::{Outcome, UserError};

fn opened_at(ctx: &Ctx, at: Option<u64>) -> anyhow::Result<Session> {
    let s = open(
        ctx,
        Access::Read,
        BootOptions {
            until: at,
            ..BootOptions::default()
        },
    )?;
    if let Some(a) = at {
        let len = s.world.journal.len();
        if a >= len {
            return Err(UserError(format!(
                "--at {a}: the journal ends at seq {}",
                len.saturating_sub(1)
            ))
            .into());
        }
    }
    if s.pending() > 0 {
        eprintln!(
            "aos: warning: {} derived record(s) of the last input are not journaled yet (an interrupted command); `aos run` completes them",
            s.pending()
        );
    }
    Ok(s)
}

/// The reducer named on the command line, checked against the manifest.
fn reducer(s: &Session, text: &str) -> anyhow::Result<(Name, bool)> {
    let Some(m) = &s.kernel.manifest else {
        return Err(UserError("this world has no manifest, so it has no reducers (create it with `aos init --air DIR`)".into()).into());
    };
    let known = || {
        m.reducers
            .keys()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let name = Name::parse(text)
        .map_err(|e| UserError(format!("REDUCER {text:?}: {e} (reducers: {})", known())))?;
    let Some(r) = m.reducer(&name) else {
        return Err(UserError(format!(
            "{name} is not a reducer of the active manifest (reducers: {})",
            known()
        ))
        .into());
    };
    Ok((name, r.key_schema.is_some()))
}

pub fn state(ctx: &Ctx, args: StateArgs) -> anyhow::Result<Outcome> {
    let s = opened_at(ctx, args.at)?;
    let (name, keyed) = reducer(&s, &args.reducer)?;
    let key = args.key.as_deref().map(json_or_text);
    match (keyed, &key) {
        (true, None) => {
            return Err(UserError(format!(
            "{name} is keyed (one cell per key); pass --key K (`aos cells {name}` lists the keys)"
        ))
            .into())
        }
        (false, Some(_)) => {
            return Err(UserError(format!("{name} is not keyed; drop --key")).into())
        }
        _ => {}
    }
    let blob = s.kernel.state_of(&name, key.as_ref());
    let value = match blob {
        Some(b) => b.value().map_err(anyhow::Error::msg)?,
        None => Value::Null,
    };
    let at = args
        .at
        .unwrap_or_else(|| s.world.journal.len().saturating_sub(1));
    if ctx.json() {
        print_json(&json!({
            "reducer": name,
            "key": key,
            "at": at,
            "hash": blob.map(|b| b.hash),
            "state": value,
        }))?;
    } else {
        if blob.is_none() {
            let what = key.map_or("state".to_string(), |k| format!("cell {k}"));
            ctx.info(&format!("{name} has no {what} at seq {at}"));
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    Ok(Outcome::Ok)
}

pub fn cells(ctx: &Ctx, args: CellsArgs) -> anyhow::Result<Outcome> {
    let s = opened_at(ctx, args.at)?;
    let (name, keyed) = reducer(&s, &args.reducer)?;
    if !keyed {
        return Err(UserError(format!(
            "{name} is not keyed, so it has no cells; `aos state {name}` shows its state"
        ))
        .into());
    }
    let cells = match s.kernel.state.reducers.get(&name) {
        Some(ReducerState::Cells(c)) => c.values().collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    if ctx.json() {
        for c in &cells {
            print_json(&json!({"key": c.key, "hash": c.state.hash, "bytes": c.state.bytes.len()}))?;
        }
    } else {
        if cells.is_empty() {
            ctx.info(&format!("{name} has no cells yet"));
        }
        for c in &cells {
            println!(
                "{}  {}  {}",
                c.state.hash.short(),
                crate::output::size(c.state.bytes.len() as u64),
                c.key
            );
        }
    }
    Ok(Outcome::Ok)
}

pub fn snapshot(ctx: &Ctx) -> anyhow::Result<Outcome> {
    let mut s = open(ctx, Access::Write, BootOptions::default())?;
    let (seq, hash) = s.snapshot("on demand")?;
    s.finish()?;
    if ctx.json() {
        print_json(&json!({"seq": seq, "snapshot": hash}))?;
    } else {
        println!("snapshot at seq {seq}: state {hash}");
    }
    Ok(Outcome::Ok)
}
