//! `aos blob put FILE|-…` and `aos blob get HASH [-o FILE]`: raw bytes in and out of the
//! object store, streamed in bounded chunks and verified on the way out.

use std::fs::File;
use std::io::Write;
use std::path::Path;

use anyhow::Context as _;
use aos_store::world::{Access, World};
use serde_json::json;

use super::{print_json, Ctx};
use crate::args::{BlobGetArgs, BlobPutArgs};
use crate::exit::{user, Outcome};

pub fn put(ctx: &Ctx, args: BlobPutArgs) -> anyhow::Result<Outcome> {
    let root = ctx.world_root()?;
    let w = World::open(&root, Access::Read)?;
    if args.files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        return user("`-` (standard input) can be given only once");
    }
    let mut batch = w.objects.batch();
    let mut sizes = Vec::new();
    for f in &args.files {
        if f.as_os_str() == "-" {
            let mut counted = Counted {
                inner: std::io::stdin().lock(),
                n: 0,
            };
            batch
                .put_reader(&mut counted)
                .context("storing standard input")?;
            sizes.push(counted.n);
        } else {
            let file = open_input(f)?;
            let mut counted = Counted { inner: file, n: 0 };
            batch
                .put_reader(&mut counted)
                .with_context(|| format!("storing {}", f.display()))?;
            sizes.push(counted.n);
        }
    }
    let hashes = batch.commit()?;
    if ctx.json() {
        let items: Vec<_> = args
            .files
            .iter()
            .zip(&hashes)
            .zip(&sizes)
            .map(|((f, h), n)| json!({"path": f.display().to_string(), "hash": h, "bytes": n}))
            .collect();
        print_json(&json!(items))?;
    } else {
        let mut out = std::io::stdout().lock();
        for (f, h) in args.files.iter().zip(&hashes) {
            if args.files.len() == 1 {
                writeln!(out, "{h}")?;
            } else {
                writeln!(out, "{h}  {}", f.display())?;
            }
        }
    }
    Ok(Outcome::Ok)
}

fn open_input(path: &Path) -> anyhow::Result<File> {
    match File::open(path) {
        Ok(f) if f.metadata().is_ok_and(|m| m.is_dir()) => {
            user(format!("{} is a directory; give files", path.display()))
        }
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            user(format!("{}: no such file", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

struct Counted<R> {
    inner: R,
    n: u64,
}

impl<R: std::io::Read> std::io::Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

pub fn get(ctx: &Ctx, args: BlobGetArgs) -> anyhow::Result<Outcome> {
    let root = ctx.world_root()?;
    let w = World::open(&root, Access::Read)?;
    let hash = w.objects.resolve(&args.hash)?;
    match &args.output {
        None => {
            let mut out = std::io::stdout().lock();
            w.objects.copy_to(&hash, &mut out)?;
            out.flush()?;
        }
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            let tmp = aos_store::durable::temp_path(dir, "aos-blob");
            let written = (|| -> anyhow::Result<u64> {
                let mut f = File::create(&tmp)
                    .with_context(|| format!("cannot create {}", tmp.display()))?;
                let n = w.objects.copy_to(&hash, &mut f)?;
                f.sync_all()?;
                std::fs::rename(&tmp, path)
                    .with_context(|| format!("cannot write {}", path.display()))?;
                Ok(n)
            })();
            if written.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            let n = written?;
            ctx.info(&format!("wrote {n} bytes to {}", path.display()));
        }
    }
    Ok(Outcome::Ok)
}
