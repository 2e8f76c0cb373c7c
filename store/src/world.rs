//! A world on disk: the `.aos/` layout, `config.json`, discovery by walking up from a
//! directory (like git), atomic creation with the `world_created` genesis record, and
//! opening for reading or for writing under the single-writer lock.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::canon::int64;
use crate::durable::{sync_dir, write_file_atomic};
use crate::error::{io_err, Error, Result};
use crate::hash::Hash;
use crate::journal::{self, Journal, NewRecord, Warning};
use crate::lock::{TryLock, WriterLock};
use crate::objects::ObjectStore;

/// The on-disk format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The directory inside a world root that holds the truth.
pub const AOS_DIR: &str = ".aos";

/// Paths inside a world.
#[derive(Debug, Clone)]
pub struct Layout {
    pub root: PathBuf,
    pub aos: PathBuf,
}

impl Layout {
    pub fn new(root: &Path) -> Layout {
        Layout {
            root: root.to_path_buf(),
            aos: root.join(AOS_DIR),
        }
    }
    fn at(aos: &Path) -> Layout {
        Layout {
            root: aos.parent().unwrap_or(aos).to_path_buf(),
            aos: aos.to_path_buf(),
        }
    }
    pub fn config(&self) -> PathBuf {
        self.aos.join("config.json")
    }
    pub fn objects(&self) -> PathBuf {
        self.aos.join("objects")
    }
    pub fn journal(&self) -> PathBuf {
        self.aos.join("journal")
    }
    pub fn keys(&self) -> PathBuf {
        self.aos.join("keys")
    }
    pub fn receipt_key(&self) -> PathBuf {
        self.keys().join("receipts.ed25519")
    }
    pub fn lock(&self) -> PathBuf {
        self.aos.join("lock")
    }
    pub fn cache(&self) -> PathBuf {
        self.aos.join("cache")
    }
    pub fn snapshots(&self) -> PathBuf {
        self.aos.join("snapshots")
    }
    pub fn lost_found(&self) -> PathBuf {
        self.aos.join("lost+found")
    }
    pub fn repairs_log(&self) -> PathBuf {
        self.aos.join("repairs.log")
    }
}

/// A public key that verifies receipts in this world.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReceiptKey {
    /// `ed25519:<64 hex>`.
    pub public_key: String,
    /// `signing` for this world's own key; `verify` for keys inherited from a source world.
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub world_id: Option<String>,
}

/// Where a fork came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForkOrigin {
    pub world_id: String,
    pub path: String,
    #[serde(with = "int64")]
    pub seq: u64,
    pub hash: Hash,
}

/// `.aos/config.json`. Fields this build does not know are kept as they are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    pub format_version: u32,
    pub world_id: String,
    #[serde(with = "int64")]
    pub created_at_ns: u64,
    pub receipt_keys: Vec<ReceiptKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<ForkOrigin>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Config {
    pub fn read(path: &Path) -> Result<Config> {
        let text = fs::read(path).map_err(io_err("read", path))?;
        let cfg: Config = serde_json::from_slice(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            what: format!("not a valid world config: {e}"),
        })?;
        if cfg.format_version != FORMAT_VERSION {
            return Err(Error::Config {
                path: path.to_path_buf(),
                what: format!("format version {} is not supported by this aos (it reads version {FORMAT_VERSION}); use a matching aos release", cfg.format_version),
            });
        }
        Ok(cfg)
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let mut text =
            serde_json::to_vec_pretty(self).map_err(|e| Error::Invalid(e.to_string()))?;
        text.push(b'\n');
        write_file_atomic(path, &text, 0o644)
    }

    /// The `journal_sync` setting: `"every_append"` (the default: every acknowledged
    /// record survives a power loss) or `"on_close"` (records survive a killed process;
    /// the journal is synced when the writer closes it).
    pub fn journal_sync(&self, path: &Path) -> Result<Option<journal::SyncMode>> {
        match self.extra.get("journal_sync") {
            None => Ok(None),
            Some(Value::String(s)) if s == "every_append" => {
                Ok(Some(journal::SyncMode::EveryAppend))
            }
            Some(Value::String(s)) if s == "on_close" => Ok(Some(journal::SyncMode::OnClose)),
            Some(other) => Err(Error::Config {
                path: path.to_path_buf(),
                what: format!("journal_sync is {other}; use \"every_append\" or \"on_close\""),
            }),
        }
    }

    /// This world's own signing key, as `ed25519:<hex>`.
    pub fn signing_key(&self) -> Option<&str> {
        self.receipt_keys
            .iter()
            .find(|k| k.role == "signing")
            .map(|k| k.public_key.as_str())
    }
}

/// Find the world containing `start`: `start` itself or the nearest parent with `.aos/`.
pub fn discover(start: &Path) -> Result<PathBuf> {
    let abs = absolute(start)?;
    let mut cur = abs.as_path();
    loop {
        if cur.join(AOS_DIR).join("config.json").is_file() {
            return Ok(cur.to_path_buf());
        }
        match cur.parent() {
            Some(p) => cur = p,
            None => return Err(Error::NotAWorld { start: abs }),
        }
    }
}

/// `path` made absolute and canonical (symlinks and `..` resolved); a missing path is an
/// error naming it.
pub fn absolute(path: &Path) -> Result<PathBuf> {
    fs::canonicalize(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => Error::NoSuchPath {
            path: std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
        },
        _ => io_err("resolve", path)(e),
    })
}

/// Check that `root` names a world (no walking up).
pub fn require_world(root: &Path) -> Result<PathBuf> {
    let abs = absolute(root)?;
    if abs.join(AOS_DIR).join("config.json").is_file() {
        Ok(abs)
    } else {
        Err(Error::NotAWorld { start: abs })
    }
}

/// How a command uses the world.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read only. If no writer holds the lock, a torn tail is repaired and the index
    /// refreshed first; the lock is not kept.
    Read,
    /// Take the single-writer lock for the life of the handle.
    Write,
}

/// An open world.
#[derive(Debug)]
pub struct World {
    pub layout: Layout,
    pub config: Config,
    pub objects: ObjectStore,
    pub journal: Journal,
    lock: Option<WriterLock>,
    warnings: Vec<Warning>,
}

/// What `create` needs from the caller.
#[derive(Default)]
pub struct Genesis<'a> {
    /// `ed25519:<hex>` public key of the receipt signing key.
    pub public_key: String,
    /// The private key file's content (written with mode 0600).
    pub secret_key_file: &'a [u8],
    /// Who created the world and through what (`{"who":…, "via":…}`).
    pub origin: Value,
    /// Objects stored before the genesis record (e.g. the genesis manifest and its
    /// defs), so the record never names an object the world does not have.
    pub objects: Vec<Vec<u8>>,
    /// More fields of the `world_created` body (e.g. `"manifest": "blake3:…"`).
    pub body: Map<String, Value>,
}

impl World {
    fn journal_options(layout: &Layout, writable: bool) -> journal::Options {
        journal::Options {
            writable,
            salvage_dir: Some(layout.lost_found()),
            repairs_log: Some(layout.repairs_log()),
            sync: journal::SyncMode::EveryAppend,
        }
    }

    /// Open the world rooted at `root` (which must contain `.aos/`).
    pub fn open(root: &Path, access: Access) -> Result<World> {
        let layout = Layout::new(root);
        let config = Config::read(&layout.config())?;
        let objects = ObjectStore::open(&layout.objects())?;
        let mut warnings = Vec::new();
        let (mut journal, lock) = match access {
            Access::Write => {
                let lock = WriterLock::acquire(&layout.lock(), &layout.root)?;
                (
                    Journal::open(&layout.journal(), &Self::journal_options(&layout, true))?,
                    Some(lock),
                )
            }
            Access::Read => {
                if let TryLock::Acquired(lock) = WriterLock::try_acquire(&layout.lock()) {
                    // Nobody is writing: repair a torn tail and refresh the index now.
                    let repair = Self::journal_options(&layout, true);
                    if let Ok(mut j) = Journal::open(&layout.journal(), &repair) {
                        warnings.extend(j.take_warnings());
                    }
                    drop(lock);
                }
                let read = Self::journal_options(&layout, false);
                let j = Journal::open(&layout.journal(), &read)?;
                if let Some((offset, len)) = j.torn_tail() {
                    // Left in place: say so only when no writer will ever fix it here.
                    if matches!(
                        WriterLock::try_acquire(&layout.lock()),
                        TryLock::Unavailable
                    ) {
                        warnings.push(Warning::TornTailIgnored {
                            journal: layout.journal(),
                            offset,
                            len,
                        });
                    }
                }
                (j, None)
            }
        };
        if let Some(mode) = config.journal_sync(&layout.config())? {
            journal.set_sync_mode(mode);
        }
        let mut w = World {
            layout,
            config,
            objects,
            journal,
            lock,
            warnings,
        };
        let more = w.journal.take_warnings();
        w.warnings.extend(more);
        Ok(w)
    }

    /// Create a world at `root` (created if missing). The `.aos/` directory is built
    /// under a temporary name and renamed into place, so a crash leaves either no world
    /// or a complete one with its genesis record.
    pub fn create(root: &Path, genesis: Genesis<'_>) -> Result<World> {
        fs::create_dir_all(root).map_err(io_err("create", root))?;
        let root = absolute(root)?;
        if !root.is_dir() {
            return Err(Error::NotADirectory { path: root });
        }
        let layout = Layout::new(&root);
        if layout.aos.exists() {
            return Err(Error::AlreadyAWorld { path: root });
        }
        let world_id = new_world_id()?;
        let at_ns = journal::now_ns();
        let config = Config {
            format_version: FORMAT_VERSION,
            world_id: world_id.clone(),
            created_at_ns: at_ns,
            receipt_keys: vec![ReceiptKey {
                public_key: genesis.public_key.clone(),
                role: "signing".into(),
                world_id: None,
            }],
            forked_from: None,
            extra: Map::new(),
        };
        let mut body = json!({
            "world_id": world_id,
            "format_version": FORMAT_VERSION,
            "receipt_public_key": genesis.public_key,
            "origin": genesis.origin,
        });
        if let Value::Object(b) = &mut body {
            for (k, v) in genesis.body {
                b.entry(k).or_insert(v);
            }
        }
        let record = NewRecord {
            at_ns,
            kind: "world_created".into(),
            cause: vec![],
            body,
        };
        let objects = genesis.objects;
        build_then_rename(&layout, |tmp| {
            let store = ObjectStore::create(&tmp.objects(), &[])?;
            let mut batch = store.batch();
            for bytes in &objects {
                batch.put_bytes(bytes)?;
            }
            batch.commit()?;
            write_private(&tmp.receipt_key(), genesis.secret_key_file)?;
            config.write(&tmp.config())?;
            let mut j = Journal::create(&tmp.journal())?;
            j.append(&[record])?;
            j.sync_index()
        })?;
        World::open(&root, Access::Write)
    }

    pub fn warnings(&mut self) -> Vec<Warning> {
        std::mem::take(&mut self.warnings)
    }

    pub fn is_writer(&self) -> bool {
        self.lock.is_some()
    }
}

/// Build a fresh `.aos/` in a temporary sibling directory, then rename it into place.
pub(crate) fn build_then_rename(
    layout: &Layout,
    build: impl FnOnce(&Layout) -> Result<()>,
) -> Result<()> {
    let tmp = Layout::at(&layout.root.join(format!(".aos.new-{}", std::process::id())));
    let _ = fs::remove_dir_all(&tmp.aos);
    let result = (|| {
        for dir in [tmp.aos.clone(), tmp.keys(), tmp.cache(), tmp.snapshots()] {
            fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        }
        fs::set_permissions(
            tmp.keys(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .map_err(io_err("chmod", &tmp.keys()))?;
        build(&tmp)?;
        sync_dir(&tmp.aos)?;
        if layout.aos.exists() {
            return Err(Error::AlreadyAWorld {
                path: layout.root.clone(),
            });
        }
        fs::rename(&tmp.aos, &layout.aos).map_err(io_err("rename into place", &layout.aos))?;
        sync_dir(&layout.root)
    })();
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp.aos);
    }
    result
}

/// Write a secret file readable only by its owner.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io_err("create", path))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(io_err("write", path))
}

/// A random version-4 UUID, lowercase and hyphenated.
pub fn new_world_id() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| Error::Invalid(format!("no randomness available: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}
