//! `aos plan start NAME VALUE` and `aos plans ls|show RUN`: start plan runs by hand and
//! look at runs — finished ones from their journal records, running ones also from the
//! kernel's state (variables, finished steps, the receipt they wait for).

use air_fmt::Name;
use aos_kernel::session::BootOptions;
use aos_store::world::Access;
use serde_json::{json, Value};

use super::send::{dispatch_open, print_injected, read_value_arg};
use super::session::open;
use super::{print_json, Ctx};
use crate::args::{PlanCommand, PlansCommand, PlansShowArgs};
use crate::exit::{Outcome, UserError};

pub fn plan(ctx: &Ctx, cmd: PlanCommand) -> anyhow::Result<Outcome> {
    let PlanCommand::Start(a) = cmd;
    let name = Name::parse(&a.name)
        .map_err(|e| UserError(format!("NAME {:?}: {e} (e.g. demo/fetch_plan@1)", a.name)))?;
    let (text, from) = read_value_arg(&a.value)?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| UserError(format!("VALUE from {from} is not JSON ({e})")))?;
    let mut s = open(ctx, Access::Write, BootOptions::default())?;
    let inj = s.start_plan(&name, &value, &ctx.origin())?;
    let outcome = print_injected(ctx, std::slice::from_ref(&inj))?;
    let dispatched = dispatch_open(ctx, &mut s, false)?;
    s.finish()?;
    Ok(if dispatched == Outcome::Problem {
        Outcome::Problem
    } else {
        outcome
    })
}

pub fn plans(ctx: &Ctx, cmd: PlansCommand) -> anyhow::Result<Outcome> {
    let s = open(ctx, Access::Read, BootOptions::default())?;
    let mut runs: Vec<(u64, Value, Option<Value>)> = Vec::new();
    let mut records: Vec<(u64, Value)> = Vec::new();
    let want = match &cmd {
        PlansCommand::Show(PlansShowArgs { run }) => Some(*run),
        PlansCommand::Ls => None,
    };
    for item in s.world.journal.iter_from(0)? {
        let (r, _) = item?;
        let run_of = |b: &Value| match b.get("run") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(x)) => x.parse().ok(),
            _ => None,
        };
        let mentions = match r.kind.as_str() {
            "plan_started" | "plan_ended" => run_of(&r.body),
            _ => r
                .body
                .get("origin")
                .or_else(|| r.body.get("raised_by"))
                .and_then(run_of),
        };
        match r.kind.as_str() {
            "plan_started" => runs.push((r.seq, r.body.clone(), None)),
            "plan_ended" => {
                if let Some(e) = runs.iter_mut().find(|e| Some(e.0) == run_of(&r.body)) {
                    e.2 = Some(r.body.clone());
                }
            }
            _ => {}
        }
        if want.is_some() && mentions == want {
            records.push((
                r.seq,
                json!({"seq": r.seq, "kind": r.kind, "cause": r.cause, "body": r.body}),
            ));
        }
    }
    match cmd {
        PlansCommand::Ls => {
            for (id, started, ended) in &runs {
                let status = ended
                    .as_ref()
                    .and_then(|e| e.get("status").and_then(Value::as_str))
                    .unwrap_or("running");
                if ctx.json() {
                    print_json(
                        &json!({"run": id, "plan": started["plan"], "status": status, "result": ended.as_ref().map(|e| e["result"].clone()), "error": ended.as_ref().and_then(|e| e.get("error").cloned())}),
                    )?;
                } else {
                    let tail = ended
                        .as_ref()
                        .and_then(|e| {
                            e.get("error")
                                .and_then(Value::as_str)
                                .map(str::to_string)
                                .or_else(|| e.get("result").map(|r| r.to_string()))
                        })
                        .unwrap_or_default();
                    println!(
                        "run {id:<6} {:<28} {status:<8} {tail}",
                        started["plan"].as_str().unwrap_or("?")
                    );
                }
            }
            if runs.is_empty() && !ctx.json() {
                ctx.info("no plan runs in this world's journal");
            }
            Ok(Outcome::Ok)
        }
        PlansCommand::Show(PlansShowArgs { run }) => {
            let Some((_, started, ended)) = runs.iter().find(|e| e.0 == run) else {
                return Err(
                    UserError(format!("no plan run {run} (`aos plans ls` lists them)")).into(),
                );
            };
            let live = s.kernel.state.runs.get(&run).map(|r| {
                json!({
                    "vars": r.vars,
                    "done": r.done,
                    "waiting": r.waiting.as_ref().map(|(step, h)| json!({"step": step, "handle": h})),
                })
            });
            let status = ended
                .as_ref()
                .and_then(|e| e.get("status").cloned())
                .unwrap_or(json!("running"));
            let doc = json!({
                "run": run,
                "plan": started["plan"],
                "input": started["input"],
                "manifest": started["manifest"],
                "status": status,
                "end": ended,
                "live": live,
                "records": records.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
            });
            if ctx.json() {
                print_json(&doc)?;
            } else {
                println!("{}", serde_json::to_string_pretty(&doc)?);
            }
            Ok(Outcome::Ok)
        }
    }
}
