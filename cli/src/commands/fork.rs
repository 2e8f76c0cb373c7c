//! `aos fork SRC DST [--at SEQ] [--link-objects]`: a cheap copy of a world.

use aos_adapters::signing::ReceiptSigner;
use aos_store::fork::{fork, ForkOptions};
use serde_json::json;

use super::{print_json, Ctx};
use crate::args::ForkArgs;
use crate::exit::{Outcome, UserError};

/// A fork must end where the world was idle: after an input and everything it caused,
/// never between an input and its derived records (the fork could not re-derive them).
fn check_fork_point(src: &std::path::Path, at: u64) -> anyhow::Result<()> {
    let w = aos_store::world::World::open(src, aos_store::world::Access::Read)?;
    if at + 1 >= w.journal.len() {
        return Ok(()); // the head, or past it (the store names the error)
    }
    let (next, _) = w.journal.read(at + 1)?;
    if aos_kernel::records::record_is_input(&next) {
        return Ok(());
    }
    // Find the end of the cascade and the input that started it.
    let mut end = at + 1;
    for item in w.journal.iter_from(at + 2)? {
        let (r, _) = item?;
        if aos_kernel::records::record_is_input(&r) {
            break;
        }
        end = r.seq;
    }
    let mut start = at;
    while start > 0 {
        let (r, _) = w.journal.read(start)?;
        if aos_kernel::records::record_is_input(&r) {
            break;
        }
        start -= 1;
    }
    Err(UserError(format!(
        "--at {at} falls inside the records caused by the input at seq {start} (they end at seq {end}); fork at {end} to include them, or at {} to stop before that input",
        start.saturating_sub(1)
    ))
    .into())
}

pub fn run(ctx: &Ctx, args: ForkArgs) -> anyhow::Result<Outcome> {
    let src = aos_store::world::discover(&args.src)?;
    if let Some(at) = args.at {
        check_fork_point(&src, at)?;
    }
    let signer = ReceiptSigner::generate()?;
    let secret = signer.to_file_bytes();
    let progress = ctx.progress();
    let forked = fork(
        &src,
        &args.dst,
        ForkOptions {
            at: args.at,
            link_objects: args.link_objects,
            public_key: signer.public_key(),
            secret_key_file: &secret,
            origin: ctx.origin(),
            progress: &|phase, done, total| progress.update(phase, done, total),
        },
    )?;
    progress.finish();
    let w = &forked.world;
    let head = w.journal.head();
    if ctx.json() {
        print_json(&json!({
            "root": w.layout.root.display().to_string(),
            "world_id": w.config.world_id,
            "source": {"root": src.display().to_string(), "world_id": forked.source_id, "seq": forked.source_seq, "hash": forked.source_hash},
            "head": head.map(|h| json!({"seq": h.seq, "hash": h.hash})),
            "objects": if args.link_objects { json!({"linked": forked.objects_linked}) } else { json!({"alternates": w.objects.alternates()}) },
        }))?;
    } else {
        println!(
            "Forked world {} at seq {} ({}) into {} (world {})",
            forked.source_id,
            forked.source_seq,
            forked.source_hash.short(),
            w.layout.root.display(),
            w.config.world_id
        );
        if args.link_objects {
            ctx.info(&format!(
                "objects: {} hard-linked; the fork no longer depends on {}",
                forked.objects_linked,
                src.display()
            ));
        } else {
            ctx.info(&format!("objects: shared from {} (keep the source world in place, or fork with --link-objects)", src.display()));
        }
    }
    Ok(Outcome::Ok)
}
