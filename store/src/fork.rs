//! Forks: a new world that starts as a copy of another at some height. The journal
//! prefix is copied with the kernel's copy (reflinked where possible); objects are
//! shared through an alternates list (O(1)) or, on request, hard-linked so the fork no
//! longer depends on its source. A `forked_from` record names the source world, seq and
//! hash; the fork gets its own id and signing key and keeps the source's keys for
//! verifying inherited receipts.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{io_err, Error, Result};
use crate::hash::Hash;
use crate::journal::{self, Journal, NewRecord};
use crate::objects::ObjectStore;
use crate::world::{
    build_then_rename, new_world_id, write_private, Access, Config, ForkOrigin, Layout, ReceiptKey,
    World, FORMAT_VERSION,
};

/// What a fork needs besides the two paths.
pub struct ForkOptions<'a> {
    /// Fork at this seq (default: the source's head).
    pub at: Option<u64>,
    /// Hard-link every object instead of listing the source as an alternate.
    pub link_objects: bool,
    pub public_key: String,
    pub secret_key_file: &'a [u8],
    pub origin: Value,
    /// Called with (phase, done, total) during long phases.
    pub progress: &'a dyn Fn(&str, u64, u64),
}

/// The result of a fork.
#[derive(Debug)]
pub struct Forked {
    pub world: World,
    pub source_id: String,
    pub source_seq: u64,
    pub source_hash: Hash,
    pub objects_linked: u64,
}

/// Fork the world at `src_root` into `dst_root`.
pub fn fork(src_root: &Path, dst_root: &Path, opts: ForkOptions<'_>) -> Result<Forked> {
    let src = World::open(src_root, Access::Read)?;
    let head = src
        .journal
        .head()
        .ok_or_else(|| Error::Invalid("the source journal is empty".into()))?;
    let at = opts.at.unwrap_or(head.seq);
    if at > head.seq {
        return Err(Error::SeqOutOfRange {
            seq: at,
            head: Some(head.seq),
        });
    }
    let (_, source_hash) = src.journal.read(at)?;
    if dst_root.exists() && !dst_root.is_dir() {
        return Err(Error::NotADirectory {
            path: dst_root.to_path_buf(),
        });
    }
    fs::create_dir_all(dst_root).map_err(io_err("create", dst_root))?;
    let dst_root = crate::world::absolute(dst_root)?;
    let layout = Layout::new(&dst_root);
    if layout.aos.exists() {
        return Err(Error::AlreadyAWorld { path: dst_root });
    }
    let src_objects =
        fs::canonicalize(src.objects.dir()).map_err(io_err("resolve", src.objects.dir()))?;
    let mut alternates: Vec<PathBuf> = Vec::new();
    if !opts.link_objects {
        alternates.push(src_objects.clone());
        alternates.extend(src.objects.alternates().iter().cloned());
    }
    let world_id = new_world_id()?;
    let mut keys = vec![ReceiptKey {
        public_key: opts.public_key.clone(),
        role: "signing".into(),
        world_id: None,
    }];
    for k in &src.config.receipt_keys {
        let owner = k
            .world_id
            .clone()
            .unwrap_or_else(|| src.config.world_id.clone());
        let inherited = ReceiptKey {
            public_key: k.public_key.clone(),
            role: "verify".into(),
            world_id: Some(owner),
        };
        if !keys.iter().any(|x| x.public_key == inherited.public_key) {
            keys.push(inherited);
        }
    }
    let origin = ForkOrigin {
        world_id: src.config.world_id.clone(),
        path: src.layout.root.display().to_string(),
        seq: at,
        hash: source_hash,
    };
    let at_ns = journal::now_ns();
    let config = Config {
        format_version: FORMAT_VERSION,
        world_id: world_id.clone(),
        created_at_ns: at_ns,
        receipt_keys: keys,
        forked_from: Some(origin.clone()),
        extra: src.config.extra.clone(),
    };
    let record = NewRecord {
        at_ns,
        kind: "forked_from".into(),
        cause: vec![],
        body: json!({
            "world_id": world_id,
            "source_world_id": origin.world_id,
            "source_path": origin.path,
            "source_seq": at,
            "source_hash": source_hash,
            "receipt_public_key": opts.public_key,
            "origin": opts.origin,
        }),
    };
    let mut linked = 0;
    build_then_rename(&layout, |tmp| {
        let objects = ObjectStore::create(&tmp.objects(), &alternates)?;
        if opts.link_objects {
            linked = link_all(&src.objects, &objects, opts.progress)?;
        }
        write_private(&tmp.receipt_key(), opts.secret_key_file)?;
        config.write(&tmp.config())?;
        (opts.progress)("copy journal", 0, src.journal.end_of(at)?);
        src.journal.copy_prefix(at, &tmp.journal())?;
        (opts.progress)(
            "copy journal",
            src.journal.end_of(at)?,
            src.journal.end_of(at)?,
        );
        let mut j = Journal::open(
            &tmp.journal(),
            &journal::Options {
                writable: true,
                ..Default::default()
            },
        )?;
        j.append(&[record])?;
        j.sync_index()
    })?;
    let world = World::open(&dst_root, Access::Write)?;
    Ok(Forked {
        world,
        source_id: src.config.world_id.clone(),
        source_seq: at,
        source_hash,
        objects_linked: linked,
    })
}

/// Hard-link every object of `src` (and of its alternates) into `dst`, recording each
/// in `dst`'s ledger. Refuses to copy across file systems.
fn link_all(
    src: &ObjectStore,
    dst: &ObjectStore,
    progress: &dyn Fn(&str, u64, u64),
) -> Result<u64> {
    let mut files = Vec::new();
    for dir in std::iter::once(src.dir()).chain(src.alternates().iter().map(PathBuf::as_path)) {
        files.extend(
            ObjectStore::list_files(dir)?
                .into_iter()
                .filter_map(|(p, h)| h.map(|h| (p, h))),
        );
    }
    let total = files.len() as u64;
    let mut ledger = String::with_capacity(files.len() * 65);
    let mut seen = std::collections::HashSet::new();
    for (i, (path, hash)) in files.iter().enumerate() {
        if !seen.insert(*hash) {
            continue;
        }
        let dest = ObjectStore::path_in(dst.dir(), hash);
        if let Err(e) = fs::hard_link(path, &dest) {
            if e.raw_os_error() == Some(libc::EXDEV) {
                return Err(Error::Invalid(format!(
                    "cannot hard-link objects from {} into {}: they are on different file systems; fork without --link-objects to share them through an alternates list",
                    src.dir().display(),
                    dst.dir().display()
                )));
            }
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(io_err("link object", &dest)(e));
            }
        }
        ledger.push_str(&hash.hex());
        ledger.push('\n');
        if i % 1024 == 0 {
            progress("link objects", i as u64, total);
        }
    }
    progress("link objects", total, total);
    let lp = dst.ledger_path();
    fs::write(&lp, ledger).map_err(io_err("write", &lp))?;
    crate::durable::sync_filesystem(dst.dir())?;
    Ok(seen.len() as u64)
}
