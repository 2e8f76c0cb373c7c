//! `aos shadow ID [--events FILE] [--replay-since SEQ|--replay-all]`: rehearse a
//! proposal on an in-memory fork (see `aos_kernel::shadow`), store the report as an
//! object, journal `shadow_report`, print it, and exit 1 when it found a problem.

use std::io::{BufRead, BufReader, Read};

use air_fmt::Name;
use aos_kernel::governance::{Status, SHADOW_REPORT};
use aos_kernel::manifest::ActiveManifest;
use aos_kernel::session::{BootOptions, Session};
use aos_kernel::shadow::{self, Accept, Report, Sample};
use aos_store::journal::now_ns;
use aos_store::world::Access;
use serde_json::{json, Value};

use super::session::open;
use super::{print_json, Ctx};
use crate::args::ShadowArgs;
use crate::exit::{user, Outcome, UserError};

/// Read `{"schema": NAME, "value": VALUE, "key"?: K}` lines; a bad line is named.
fn read_samples(path: &std::path::Path) -> anyhow::Result<Vec<Sample>> {
    let name = path.display().to_string();
    let reader: Box<dyn Read> = if name == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| UserError(format!("--events {name}: {e}")))?)
    };
    let mut out = Vec::new();
    for (i, line) in BufReader::new(reader).lines().enumerate() {
        let line = line.map_err(|e| UserError(format!("--events {name}: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = |why: String| UserError(format!("--events {name} line {}: {why}", i + 1));
        let v: Value = serde_json::from_str(&line).map_err(|e| at(format!("not JSON ({e})")))?;
        let schema = v.get("schema").and_then(Value::as_str).ok_or_else(|| {
            at("no \"schema\" (write {\"schema\": NAME, \"value\": VALUE})".into())
        })?;
        let schema = Name::parse(schema).map_err(|e| at(format!("schema {schema:?}: {e}")))?;
        let value = v
            .get("value")
            .cloned()
            .ok_or_else(|| at("no \"value\"".into()))?;
        out.push(Sample {
            schema,
            value,
            key: v.get("key").cloned(),
        });
    }
    Ok(out)
}

fn kernel_err(e: aos_kernel::KernelError) -> anyhow::Error {
    anyhow::Error::new(e).context("the rehearsal stopped")
}

pub fn run(ctx: &Ctx, a: ShadowArgs) -> anyhow::Result<Outcome> {
    let samples = match &a.events {
        Some(p) => read_samples(p)?,
        None => Vec::new(),
    };
    if samples.is_empty() && a.replay_since.is_none() && !a.replay_all {
        ctx.info("no --events and no --replay-*: the report shows the manifest diff and the capabilities it needs");
    }
    let mut s = open(ctx, Access::Write, BootOptions::default())?;
    let p = s
        .kernel
        .governance()
        .get(a.id)
        .map_err(|r| UserError(r.0))?
        .clone();
    if p.status != Status::Proposed {
        return user(format!(
            "proposal {} is {}; only open proposals are rehearsed",
            p.id,
            p.status.as_str()
        ));
    }
    let Some(base) = s.kernel.manifest.clone() else {
        return user("this world has no manifest");
    };
    if base.hash != p.base {
        return user(format!(
            "proposal {} was made against manifest {}, but the world's manifest is now {}; re-propose the change against the current manifest",
            p.id, p.base, base.hash
        ));
    }
    let mut report = Report::default();
    let head = s.world.journal.len();
    let replay_from = match (a.replay_since, a.replay_all) {
        (Some(seq), _) if seq == 0 || seq >= head => {
            return user(format!(
                "--replay-since {seq}: give a seq between 1 and {} (the journal's last)",
                head.saturating_sub(1)
            ))
        }
        (Some(seq), _) => {
            let (rec, _) = s.world.journal.read(seq)?;
            if !aos_kernel::records::record_is_input(&rec) {
                let mut before = seq;
                while before > 1 {
                    before -= 1;
                    let (r, _) = s.world.journal.read(before)?;
                    if aos_kernel::records::record_is_input(&r) {
                        break;
                    }
                }
                return user(format!(
                    "--replay-since {seq}: seq {seq} (`{}`) is derived from an earlier input, not an input; start at the input that caused it (seq {before}) or a later input",
                    rec.kind
                ));
            }
            Some(seq)
        }
        // Inputs recorded under an older manifest would diverge because of that older
        // change: "all" starts after the `applied` record that put the base in force.
        (None, true) => Some(
            s.kernel
                .governance()
                .applied_seq_of(Some(&base.hash))
                .map_or(1, |seq| seq + 1)
                .min(head.saturating_sub(1).max(1)),
        ),
        (None, false) => None,
    };
    let progress = ctx.progress();
    let mut fork = match replay_from {
        Some(from) => {
            // The world as of the seq before `from`, then the recorded inputs since.
            let root = ctx.world_root()?;
            let past = Session::open(
                &root,
                Access::Read,
                BootOptions {
                    until: Some(from - 1),
                    ..BootOptions::default()
                },
                &mut |_, _| {},
            )?;
            let mut fork = past
                .kernel
                .fork_with(&s.world.objects, &p.candidate)
                .map_err(kernel_err)?;
            let total = head - from;
            let mut done = 0u64;
            let records = s.world.journal.iter_from(from)?.map(|item| {
                done += 1;
                if done.is_multiple_of(4096) {
                    progress.update("shadow replay", done, total);
                }
                item.map(|(r, _)| r).map_err(aos_kernel::KernelError::from)
            });
            let accept = Accept {
                all: a.accept_divergences,
                seqs: a.accept.iter().copied().collect(),
            };
            shadow::replay_inputs(&mut fork, &s.world.objects, records, &accept, &mut report)
                .map_err(kernel_err)?;
            progress.finish();
            fork
        }
        None => s
            .kernel
            .fork_with(&s.world.objects, &p.candidate)
            .map_err(kernel_err)?,
    };
    // The candidate as the fork loaded it.
    let candidate = fork
        .manifest
        .clone()
        .ok_or_else(|| anyhow::anyhow!("the fork has no manifest in force"))?;
    let next = report.last_seq.map_or(head, |seq| (seq + 1).max(head));
    shadow::feed_samples(
        &mut fork,
        &s.world.objects,
        next,
        &samples,
        &ctx.origin(),
        now_ns(),
        &mut report,
    )
    .map_err(kernel_err)?;
    report.final_state = Some(fork.state.clone());
    let diff = air_fmt::diff::diff(&base.set, &candidate.set);
    let (sections, problem) = shadow::summarize(&report, &base, &candidate, &diff, &s.kernel.state);
    let mode = match (replay_from, a.replay_all) {
        (Some(_), true) => "replay_all".to_string(),
        (Some(seq), false) => format!("replay_since:{seq}"),
        (None, _) if samples.is_empty() => "diff".to_string(),
        (None, _) => "events".to_string(),
    };
    let mut doc = json!({
        "version": 1,
        "proposal": shadow::proposal_ref(&p),
        "mode": mode,
        "replay_from": replay_from,
        "events_fed": samples.len(),
        "ok": !problem,
    });
    if let (Value::Object(o), Value::Object(extra)) = (&mut doc, sections) {
        o.extend(extra);
    }
    let report_hash = s.world.objects.put_json(&doc)?;
    let inj = s.govern(
        SHADOW_REPORT,
        json!({
            "id": p.id,
            "patch": p.patch,
            "ok": !problem,
            "report": report_hash,
            "mode": mode,
            "origin": ctx.origin(),
        }),
    )?;
    s.finish()?;
    if ctx.json() {
        if let Value::Object(o) = &mut doc {
            o.insert("report_object".into(), json!(report_hash));
            o.insert("seq".into(), json!(inj.seq));
        }
        print_json(&doc)?;
    } else {
        print_text(&doc, &base, &candidate, &diff);
        println!("report {report_hash} journaled at seq {}", inj.seq);
    }
    Ok(if problem {
        Outcome::Problem
    } else {
        Outcome::Ok
    })
}

fn list<'v>(doc: &'v Value, k: &str) -> &'v [Value] {
    doc.get(k)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn short(v: &Value) -> String {
    let t = v.to_string();
    if t.chars().count() > 100 {
        format!("{}…", t.chars().take(99).collect::<String>())
    } else {
        t
    }
}

/// How many items of each list the text report shows (`--format json` has all).
const SHOWN: usize = 20;

/// The items with problems first (in order), then the rest.
fn problems_first(items: &[Value], bad: impl Fn(&Value) -> bool) -> Vec<&Value> {
    let (mut first, rest): (Vec<&Value>, Vec<&Value>) = items.iter().partition(|v| bad(v));
    first.extend(rest);
    first
}

fn more(total: usize) {
    if total > SHOWN {
        println!("  … and {} more (`--format json` lists all)", total - SHOWN);
    }
}

fn print_text(
    doc: &Value,
    base: &ActiveManifest,
    candidate: &ActiveManifest,
    d: &air_fmt::diff::AirDiff,
) {
    let pid = &doc["proposal"]["id"];
    println!(
        "shadow of proposal {pid} ({}): manifest {} -> {}",
        doc["mode"].as_str().unwrap_or(""),
        base.hash,
        candidate.hash
    );
    println!("\nmanifest diff:");
    for line in air_fmt::diff::render_text(d, false).lines() {
        println!("  {line}");
    }
    let effects = list(doc, "effects");
    println!(
        "\neffects the rehearsal would emit ({}, none dispatched):",
        effects.len()
    );
    for e in problems_first(effects, |e| e["allowed"] != true)
        .into_iter()
        .take(SHOWN)
    {
        let verdict = if e["allowed"].as_bool() == Some(true) {
            "allowed".to_string()
        } else {
            let why = e["cap"]["reason"]
                .as_str()
                .filter(|_| e["cap"]["allowed"].as_bool() != Some(true))
                .or(e["policy"]["reason"].as_str())
                .unwrap_or("denied");
            format!("DENIED: {why}")
        };
        println!(
            "  {} {} grant {}  {verdict}",
            e["kind"].as_str().unwrap_or("?"),
            short(&e["params"]),
            e["grant"].as_str().unwrap_or("(none)"),
        );
    }
    more(effects.len());
    let states = list(doc, "state_changes");
    println!("\nstate changes ({}):", states.len());
    for c in states.iter().take(SHOWN) {
        let key = if c["key"].is_null() {
            String::new()
        } else {
            format!(" [{}]", c["key"])
        };
        println!(
            "  {}{key}: {} -> {}",
            c["reducer"].as_str().unwrap_or("?"),
            short(&c["before"]),
            short(&c["after"])
        );
    }
    more(states.len());
    let plans = list(doc, "plan_results");
    let waiting = list(doc, "plans_waiting");
    if !plans.is_empty() || !waiting.is_empty() {
        println!("\nplan runs:");
        for p in problems_first(plans, |p| p["status"] != "ok")
            .into_iter()
            .take(SHOWN)
        {
            println!(
                "  run {} {} {} {}",
                p["run"],
                p["plan"].as_str().unwrap_or("?"),
                p["status"].as_str().unwrap_or("?"),
                if p["error"].is_null() {
                    short(&p["result"])
                } else {
                    p["error"].as_str().unwrap_or("").to_string()
                }
            );
        }
        more(plans.len());
        for w in waiting.iter().take(SHOWN) {
            println!(
                "  run {} {} waiting on {}",
                w["run"],
                w["plan"].as_str().unwrap_or("?"),
                short(&w["waiting_on"])
            );
        }
        more(waiting.len());
    }
    for (title, k) in [
        ("errors", "errors"),
        ("refused sample events", "refused_events"),
        ("capabilities newly needed", "new_capabilities"),
    ] {
        let items = list(doc, k);
        if !items.is_empty() {
            println!("\n{title} ({}):", items.len());
            for i in items.iter().take(SHOWN) {
                println!("  {}", short(i));
            }
            more(items.len());
        }
    }
    let divs = list(doc, "divergences");
    if doc["mode"]
        .as_str()
        .is_some_and(|m| m.starts_with("replay"))
    {
        let accepted = divs.iter().filter(|d| d["accepted"] == true).count();
        println!(
            "\nreplayed {} recorded inputs from seq {}: {} diverge ({accepted} accepted)",
            doc["replayed_inputs"],
            doc["replay_from"],
            divs.len()
        );
        for d in problems_first(divs, |d| d["accepted"] != true)
            .into_iter()
            .take(SHOWN)
        {
            println!(
                "  input seq {} ({}): derived record {}: {}{}",
                d["seq"],
                d["input_kind"].as_str().unwrap_or("?"),
                d["first_difference"],
                d["reason"].as_str().unwrap_or(""),
                if d["accepted"] == true {
                    "  [accepted]"
                } else {
                    ""
                }
            );
        }
        more(divs.len());
    }
    println!(
        "\nverdict: {}",
        if doc["ok"] == true {
            "no problems found"
        } else {
            "PROBLEMS FOUND (exit 1)"
        }
    );
}
