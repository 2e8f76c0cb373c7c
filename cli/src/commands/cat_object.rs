//! `aos cat-object HASH [--raw]`: print a stored object after re-checking its hash.

use std::io::Write;

use aos_store::world::{Access, World};
use serde_json::{json, Value};

use super::{print_json, Ctx};
use crate::args::CatObjectArgs;
use crate::exit::{user, Outcome};

pub fn run(ctx: &Ctx, args: CatObjectArgs) -> anyhow::Result<Outcome> {
    let root = ctx.world_root()?;
    let w = World::open(&root, Access::Read)?;
    let hash = w.objects.resolve(&args.hash)?;
    let bytes = w.objects.get(&hash)?;
    let mut out = std::io::stdout().lock();
    if args.raw {
        out.write_all(&bytes)?;
        return Ok(Outcome::Ok);
    }
    let parsed = serde_json::from_slice::<Value>(&bytes).ok();
    if ctx.json() {
        let v = match (&parsed, std::str::from_utf8(&bytes)) {
            (Some(v), _) => json!({"hash": hash, "size": bytes.len(), "type": "json", "value": v}),
            (None, Ok(text)) => {
                json!({"hash": hash, "size": bytes.len(), "type": "text", "value": text})
            }
            (None, Err(_)) => json!({"hash": hash, "size": bytes.len(), "type": "binary"}),
        };
        print_json(&v)?;
        return Ok(Outcome::Ok);
    }
    match (parsed, std::str::from_utf8(&bytes)) {
        (Some(v), _) => writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?,
        (None, Ok(text)) => {
            out.write_all(text.as_bytes())?;
            if !text.ends_with('\n') && !text.is_empty() {
                writeln!(out)?;
            }
        }
        (None, Err(_)) => {
            return user(format!(
                "object {hash} is binary ({} bytes); use `aos cat-object --raw {}` or `aos blob get {} -o FILE`",
                bytes.len(),
                args.hash,
                args.hash
            ))
        }
    }
    Ok(Outcome::Ok)
}
