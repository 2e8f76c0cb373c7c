//! `plans`: plan steps per second for a 10-step plan with no effects (against the bare
//! evaluation of the same expressions), and the cost of an event when many runs wait
//! (1,000 runs parked on `await_event` against 10).

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use air_fmt::load::Source;
use aos_kernel::plans::expr::{eval, Env};
use aos_kernel::session::{BootOptions, EventIn, Session};
use aos_store::journal::SyncMode;
use aos_store::world::Access;
use serde_json::{json, Value};

use crate::kernel::{create_world_from, name, origin, Res};
use crate::report::{Row, Section, Target};
use crate::util::say;

const BENCH: &str = "plans";

/// A 10-step plan: nine `assign` steps adding 1, then `end` with the sum.
fn steps_air() -> String {
    let mut steps = Vec::new();
    let mut edges = Vec::new();
    for i in 0..9 {
        let from = if i == 0 {
            json!({"ref": "@plan.input.n"})
        } else {
            json!({"ref": format!("@var:x{}", i - 1)})
        };
        steps.push(json!({"id": format!("s{i}"), "op": "assign",
            "expr": {"op": "add", "args": [from, {"nat": 1}]}, "bind": {"as": format!("x{i}")}}));
        if i > 0 {
            edges.push(json!({"from": format!("s{}", i - 1), "to": format!("s{i}")}));
        }
    }
    steps.push(json!({"id": "s9", "op": "end", "result": {"record": {"n": {"ref": "@var:x8"}}}}));
    edges.push(json!({"from": "s8", "to": "s9"}));
    json!([
        {"$kind": "defschema", "name": "b/Go@1", "type": {"record": {"n": {"nat": {}}}}},
        {"$kind": "defplan", "name": "b/steps@1", "input": "b/Go@1", "output": "b/Go@1", "steps": steps, "edges": edges},
        {"$kind": "defschema", "name": "b/Order@1", "type": {"record": {"id": {"nat": {}}}}},
        {"$kind": "defschema", "name": "b/Ping@1", "type": {"record": {"id": {"nat": {}}}}},
        {"$kind": "defplan", "name": "b/wait@1", "input": "b/Order@1",
         "steps": [
            {"id": "a", "op": "await_event", "event": "b/Ping@1",
             "where": {"op": "eq", "args": [{"ref": "@event.id"}, {"ref": "@plan.input.id"}]}, "bind": {"as": "p"}},
            {"id": "b", "op": "end"}],
         "edges": [{"from": "a", "to": "b"}]},
        {"$kind": "manifest", "air_version": "1",
         "schemas": [{"name": "b/Go@1"}, {"name": "b/Order@1"}, {"name": "b/Ping@1"}],
         "plans": [{"name": "b/steps@1"}, {"name": "b/wait@1"}],
         "modules": [], "caps": [], "effects": [], "policies": [],
         "triggers": [{"event": "b/Go@1", "plan": "b/steps@1"},
                      {"event": "b/Order@1", "plan": "b/wait@1", "correlate_by": "id"}]}
    ])
    .to_string()
}

fn world(root: &Path) -> Res<Session> {
    let src = Source {
        name: "plans-bench.air.json".into(),
        bytes: steps_air().into_bytes(),
    };
    create_world_from(root, "the plans benchmark AIR", &[src], &[])?;
    let mut s = Session::open(root, Access::Write, BootOptions::default(), &mut |_, _| {})?;
    s.world.journal.set_sync_mode(SyncMode::OnClose);
    Ok(s)
}

fn ev(schema: &str, v: Value) -> EventIn {
    EventIn {
        schema: name(schema),
        value: v,
        key: None,
    }
}

pub fn run_bench(scratch: &Path, quick: bool) -> Res<Section> {
    let mut sec = Section::new(BENCH);
    let runs: u64 = if quick { 2_000 } else { 20_000 };
    let mut s = world(&scratch.join("plans-steps"))?;
    // Warm up.
    s.inject(&[ev("b/Go@1", json!({"n": 0}))], &origin())?;
    say(format!("{runs} runs of a 10-step plan, 500 per inject"));
    let t = Instant::now();
    let mut done = 0;
    while done < runs {
        let batch: Vec<EventIn> = (0..500.min(runs - done))
            .map(|i| ev("b/Go@1", json!({ "n": i })))
            .collect();
        let r = s.inject(&batch, &origin())?;
        if r.iter().any(|i| {
            i.derived
                .last()
                .map(|(_, d)| d.body["status"] != "ok")
                .unwrap_or(true)
        }) {
            return Err("a benchmark run did not end ok".into());
        }
        done += batch.len() as u64;
    }
    let steps_rate = (runs * 10) as f64 / t.elapsed().as_secs_f64();
    s.finish()?;
    // The floor: the same ten expressions evaluated directly, with the same bindings.
    let Some(air_fmt::Def::Plan(plan)) = ({
        let (set, _) = air_fmt::load::load(&[Source {
            name: "p".into(),
            bytes: steps_air().into_bytes(),
        }]);
        set.get(air_fmt::DefKind::Plan, &name("b/steps@1")).cloned()
    }) else {
        return Err("no benchmark plan".into());
    };
    let exprs: Vec<air_fmt::expr::Expr> = plan
        .steps
        .iter()
        .filter_map(|st| match &st.kind {
            air_fmt::model::StepKind::Assign {
                expr: air_fmt::expr::ExprOrValue::Expr(e),
                ..
            } => Some(e.clone()),
            _ => None,
        })
        .collect();
    let n = runs * 10;
    let t = Instant::now();
    for i in 0..runs {
        let input = json!({ "n": i });
        let mut vars = std::collections::BTreeMap::new();
        let steps = std::collections::BTreeMap::new();
        for (k, e) in exprs.iter().enumerate() {
            let v = eval(
                e,
                &Env {
                    input: &input,
                    vars: &vars,
                    steps: &steps,
                    event: None,
                },
            )?;
            vars.insert(format!("x{k}"), black_box(v));
        }
    }
    let floor = n as f64 / t.elapsed().as_secs_f64();
    sec.row(
        Row::rate(
            BENCH,
            "plan steps, 10-step plan, no effects (journaled)",
            "steps/s",
            steps_rate,
            Some(("bare expression evaluation", floor)),
        )
        .target(Target::new(">=100,000 steps/s", steps_rate >= 100_000.0)),
    );

    // Waiters: time per event when 10 or 1,000 runs wait, none of them matching.
    let mut per_event: Vec<f64> = Vec::new();
    for waiting in [10u64, 1_000] {
        let mut s = world(&scratch.join(format!("plans-wait-{waiting}")))?;
        let orders: Vec<EventIn> = (0..waiting)
            .map(|i| ev("b/Order@1", json!({ "id": i })))
            .collect();
        s.inject(&orders, &origin())?;
        let pings = if quick { 200 } else { 2_000 }.min(waiting * 1000);
        // Pings for ids beyond the runs match nobody.
        let t = Instant::now();
        for i in 0..pings {
            s.inject(&[ev("b/Ping@1", json!({ "id": waiting + i }))], &origin())?;
        }
        let per = t.elapsed().as_secs_f64() / pings as f64 * 1e6;
        say(format!(
            "{waiting} waiting runs: {per:.1} us per non-matching event"
        ));
        per_event.push(per);
        s.finish()?;
    }
    if let [few, many] = per_event[..] {
        sec.row(
            Row::cost(
                BENCH,
                "an event with 1,000 runs waiting on its schema (none matching)",
                "us",
                many,
                Some(("with 10 runs waiting", few)),
            )
            .target(Target::new(
                "linear in matching waiters: within 2x of 10 waiters",
                many <= 2.0 * few,
            )),
        );
    }
    sec.note("runs parked on `await_event` whose `where` is `eq(@event.PATH, X)` are indexed by X's value: an event reaches only the runs its own value names; other waits are indexed by schema");
    Ok(sec)
}
