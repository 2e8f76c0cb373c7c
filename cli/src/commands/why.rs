//! `aos why`: the provenance of a record — its causes back to the roots, or with
//! `--forward` its consequences — as an indented tree, a JSON document or a Graphviz
//! digraph; `--check` lists records of the whole journal without a path to a root.
//! A pure reader: the journal is opened read-only and no lock is taken.

use std::collections::BTreeSet;
use std::io::Write;

use aos_kernel::why::{self, Graph, Target, WhyError};
use aos_store::journal::{Journal, Options};
use aos_store::world::Layout;

use super::Ctx;
use crate::args::WhyArgs;
use crate::exit::{Outcome, UserError};
use crate::output::{time, warn_all};

/// Turn a kernel answer into the CLI's error kinds: an unknown target is the caller's
/// mistake (exit 2).
fn user_facing(e: WhyError) -> anyhow::Error {
    match e {
        WhyError::NotFound(msg) => UserError(msg).into(),
        other => other.into(),
    }
}

pub fn run(ctx: &Ctx, args: WhyArgs) -> anyhow::Result<Outcome> {
    let root = ctx.world_root()?;
    let layout = Layout::new(&root);
    let mut journal = Journal::open(&layout.journal(), &Options::default())?;
    warn_all(journal.take_warnings());
    let mut out = std::io::stdout().lock();
    if args.check {
        return check(ctx, &journal, &mut out);
    }
    let Some(raw) = args.target.as_deref() else {
        return crate::exit::user("give a TARGET (SEQ, INTENT_HASH or REDUCER[/KEY]) or --check");
    };
    let ix = match why::open_index(&layout.cache().join("why"), &journal) {
        // A world on read-only media (or not ours to write): keep the index in the
        // temp dir instead, named after the world's path. It is checked against the
        // journal like any index, so a stale one is never used.
        Err(WhyError::Cache(e)) => {
            let place = root.canonicalize().unwrap_or_else(|_| root.clone());
            let tag = aos_store::Hash::of(place.as_os_str().as_encoded_bytes());
            let alt = std::env::temp_dir().join(format!("aos-why-{}", &tag.hex()[..16]));
            ctx.info(&format!(
                "note: cannot write the why index in the world ({e}); using {}",
                alt.display()
            ));
            why::open_index(&alt, &journal)
        }
        other => other,
    }
    .map_err(user_facing)?;
    let target = why::resolve(&journal, &ix, &Target::parse(raw)).map_err(user_facing)?;
    let depth = args.depth.unwrap_or(u64::MAX);
    let graph = if args.forward {
        why::forward(&journal, &ix, target, depth)
    } else {
        why::back(&journal, &ix, target, depth)
    }
    .map_err(user_facing)?;
    if ctx.json() {
        serde_json::to_writer(&mut out, &graph.to_json())?;
        writeln!(out)?;
    } else if args.dot || ctx.format() == crate::output::Format::Dot {
        dot(&graph, &mut out)?;
    } else {
        let mut shown = BTreeSet::new();
        tree(&graph, target, "", "", &mut shown, &mut out)?;
    }
    Ok(Outcome::Ok)
}

fn check(ctx: &Ctx, journal: &Journal, out: &mut impl Write) -> anyhow::Result<Outcome> {
    let bad = why::unrooted(journal).map_err(user_facing)?;
    if ctx.json() {
        serde_json::to_writer(&mut *out, &serde_json::json!({ "unrooted": bad }))?;
        writeln!(out)?;
    } else if bad.is_empty() {
        writeln!(
            out,
            "every record of {} traces back to a root",
            journal.len()
        )?;
    } else {
        let list: Vec<String> = bad.iter().map(u64::to_string).collect();
        writeln!(
            out,
            "{} record(s) without a path to a root: {}",
            bad.len(),
            list.join(", ")
        )?;
        writeln!(out, "`aos why SEQ` shows how far each one's causes go")?;
    }
    Ok(if bad.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Problem
    })
}

fn line(graph: &Graph, seq: u64) -> String {
    match graph.nodes.get(&seq) {
        Some(n) => {
            let mut s = format!("{} seq {}  {}  {}", n.kind, n.seq, time(n.at_ns), n.summary);
            if n.root {
                s.push_str("  (root)");
            }
            if n.cut {
                s.push_str("  …");
            }
            s
        }
        None => format!("seq {seq}"),
    }
}

/// Print `seq` and, indented under it, what explains it; a record already printed is
/// shown again only as "(see above)".
fn tree(
    graph: &Graph,
    seq: u64,
    lead: &str,
    rest: &str,
    shown: &mut BTreeSet<u64>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if !shown.insert(seq) {
        writeln!(out, "{lead}{} seq {seq}  (see above)", kind(graph, seq))?;
        return Ok(());
    }
    writeln!(out, "{lead}{}", line(graph, seq))?;
    let next = graph.next(seq);
    for (i, &n) in next.iter().enumerate() {
        let last = i + 1 == next.len();
        let (branch, cont) = if last {
            ("└─ ", "   ")
        } else {
            ("├─ ", "│  ")
        };
        tree(
            graph,
            n,
            &format!("{rest}{branch}"),
            &format!("{rest}{cont}"),
            shown,
            out,
        )?;
    }
    Ok(())
}

fn kind(graph: &Graph, seq: u64) -> &str {
    graph.nodes.get(&seq).map_or("?", |n| n.kind.as_str())
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn dot(graph: &Graph, out: &mut impl Write) -> anyhow::Result<()> {
    writeln!(out, "digraph why {{")?;
    writeln!(out, "  rankdir=LR;")?;
    writeln!(out, "  node [shape=box, fontname=\"monospace\"];")?;
    for n in graph.nodes.values() {
        let mut style = Vec::new();
        if n.seq == graph.target {
            style.push("style=filled, fillcolor=\"lightyellow\"");
        }
        if n.root {
            style.push("peripheries=2");
        }
        if n.cut {
            style.push("style=dashed");
        }
        let extra = if style.is_empty() {
            String::new()
        } else {
            format!(", {}", style.join(", "))
        };
        writeln!(
            out,
            "  n{} [label=\"{} seq {}\\n{}\\n{}\"{extra}];",
            n.seq,
            dot_escape(&n.kind),
            n.seq,
            time(n.at_ns),
            dot_escape(&n.summary)
        )?;
    }
    for (from, to) in &graph.edges {
        writeln!(out, "  n{from} -> n{to};")?;
    }
    writeln!(out, "}}")?;
    Ok(())
}
