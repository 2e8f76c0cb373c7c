//! `aos module add FILE.wasm`: check a reducer module against the kernel's runtime
//! (valid core WASM, no imports, the ABI exports), store it in the object store, warm the
//! compiled-module cache under `.aos/cache/wasm/`, and print its hash.

use std::io::Write;

use anyhow::Context as _;
use aos_kernel::wasm::{Limits, Runtime};
use aos_store::world::{Access, World};
use aos_store::Hash;
use serde_json::json;

use super::{print_json, Ctx};
use crate::args::ModuleAddArgs;
use crate::exit::{user, Outcome, UserError};

pub fn add(ctx: &Ctx, args: ModuleAddArgs) -> anyhow::Result<Outcome> {
    let file = &args.file;
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return user(format!("{}: no such file", file.display()))
        }
        Err(_) if file.is_dir() => {
            return user(format!(
                "{} is a directory; give a .wasm file",
                file.display()
            ))
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let root = ctx.world_root()?;
    let world = World::open(&root, Access::Read)?;
    let cache_dir = world.layout.cache().join("wasm");
    let rt = Runtime::new(Some(cache_dir), Limits::default())?;
    let hash = Hash::of(&bytes);
    // Check (and compile, and cache) before storing: a refused module leaves no trace.
    if let Err(e) = rt.load(&hash, &bytes) {
        if e.is_module_fault() {
            return Err(UserError(format!("{} refused: {e}", file.display())).into());
        }
        return Err(e).with_context(|| format!("cannot compile {}", file.display()));
    }
    let stored = world.objects.put_bytes(&bytes)?;
    if stored != hash {
        anyhow::bail!(
            "the object store named {} as {stored}, not {hash}",
            file.display()
        );
    }
    let stats = rt.stats();
    let cache = if stats.disk_write_failed > 0 {
        "not_written"
    } else if stats.compiled > 0 {
        "compiled"
    } else {
        "already_cached"
    };
    for note in rt.take_cache_notes() {
        ctx.info(&format!("warning: {note}"));
    }
    if ctx.json() {
        print_json(&json!({"hash": stored, "bytes": bytes.len(), "cache": cache}))?;
    } else {
        writeln!(std::io::stdout().lock(), "{stored}")?;
    }
    Ok(Outcome::Ok)
}
