//! `aos fork SRC DST [--at SEQ] [--link-objects]`: a cheap copy of a world.

use aos_adapters::signing::ReceiptSigner;
use aos_store::fork::{fork, ForkOptions};
use serde_json::json;

use super::{print_json, Ctx};
use crate::args::ForkArgs;
use crate::exit::Outcome;

pub fn run(ctx: &Ctx, args: ForkArgs) -> anyhow::Result<Outcome> {
    let src = aos_store::world::discover(&args.src)?;
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
