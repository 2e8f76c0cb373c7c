//! `aos init [DIR]`: create a world with a fresh receipt key and its genesis record.

use aos_adapters::signing::ReceiptSigner;
use aos_store::world::{Genesis, World};
use serde_json::json;

use super::{print_json, Ctx};
use crate::args::InitArgs;
use crate::exit::Outcome;

pub fn run(ctx: &Ctx, args: InitArgs) -> anyhow::Result<Outcome> {
    let signer = ReceiptSigner::generate()?;
    let secret = signer.to_file_bytes();
    let world = World::create(
        &args.dir,
        Genesis {
            public_key: signer.public_key(),
            secret_key_file: &secret,
            origin: ctx.origin(),
        },
    )?;
    let head = world.journal.head();
    if ctx.json() {
        print_json(&json!({
            "root": world.layout.root.display().to_string(),
            "world_id": world.config.world_id,
            "head": head.map(|h| json!({"seq": h.seq, "hash": h.hash})),
            "receipt_public_key": signer.public_key(),
        }))?;
    } else {
        println!(
            "Initialized aos world {} in {}",
            world.config.world_id,
            world.layout.aos.display()
        );
        ctx.info("next: `aos blob put FILE` to store a blob, `aos log` to see the journal, `aos fsck` to check it");
    }
    Ok(Outcome::Ok)
}
