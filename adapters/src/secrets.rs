//! The world's secret store: `.aos/secrets/`, one file per secret (mode 0600, written
//! atomically) in a directory only its owner may enter (mode 0700). Secrets are named by
//! a safe identifier and hold non-empty UTF-8 text (API keys, tokens). They are read by
//! adapters at dispatch and never enter the journal, the object store, receipts, state
//! or any output: a [`SecretValue`] prints as `<secret NAME>`, and what tools may show is
//! its [`digest`](SecretStore::digest) (`blake3:<hex>` of the value, the form a
//! `defsecret`'s `expected_digest` takes in aos).

use std::fmt;
use std::fs::{self, DirBuilder, File};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aos_store::durable::{sync_dir, write_file_atomic};
use aos_store::world::Layout;
use aos_store::Hash;

/// The directory under `.aos/` that holds the secrets.
pub const SECRETS_DIR: &str = "secrets";
/// The longest secret name accepted.
pub const MAX_NAME_LEN: usize = 128;
/// The largest secret value accepted, in bytes.
pub const MAX_VALUE_LEN: usize = 64 * 1024;

const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// Why a secret operation failed. No variant ever carries a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{name:?} is not a valid secret name: {why}\nhint: use 1 to {MAX_NAME_LEN} letters, digits, `_`, `-` or `.`, starting with a letter, digit or `_` (e.g. OPENAI_API_KEY)")]
    BadName { name: String, why: &'static str },
    #[error("the value for secret {name} is empty; nothing was stored")]
    EmptyValue { name: String },
    #[error("the value for secret {name} is not UTF-8 text; secrets hold text such as API keys (encode binary keys, e.g. as base64)")]
    NotUtf8 { name: String },
    #[error("the value for secret {name} is over the limit of {MAX_VALUE_LEN} bytes; store large material as a file the adapter reads instead")]
    TooLarge { name: String, size: usize },
    #[error("no secret named {name} in this world\nhint: `aos secret ls` lists them; `aos secret set {name}` stores one")]
    NotFound { name: String },
    #[error("{}: secret file is readable by others (mode {mode:04o}); refusing to use it\nhint: chmod 600 {}, or store it again with `aos secret set`", path.display(), path.display())]
    TooOpen { path: PathBuf, mode: u32 },
    #[error("{}: not a regular file; a secret is a plain file in .aos/secrets/", path.display())]
    NotAFile { path: PathBuf },
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Store(#[from] aos_store::Error),
}

impl SecretError {
    /// True when the caller gave something unacceptable (a bad name or value, a secret
    /// that does not exist): the CLI exits 2.
    pub fn is_user_error(&self) -> bool {
        match self {
            SecretError::BadName { .. }
            | SecretError::EmptyValue { .. }
            | SecretError::NotUtf8 { .. }
            | SecretError::TooLarge { .. }
            | SecretError::NotFound { .. } => true,
            SecretError::Store(e) => e.is_user_error(),
            _ => false,
        }
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SecretError {
    let path = path.to_path_buf();
    move |source| SecretError::Io { op, path, source }
}

/// Check a secret name: 1 to [`MAX_NAME_LEN`] characters from `A-Z a-z 0-9 _ - .`, not
/// starting with `.` or `-` (so no hidden files, no `..`, nothing that reads as an
/// option), and never a path.
pub fn validate_name(name: &str) -> Result<(), SecretError> {
    let bad = |why| {
        Err(SecretError::BadName {
            name: name.to_string(),
            why,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return bad("it is too long");
    }
    if name.contains('/') || name.contains('\\') {
        return bad("it contains a path separator");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return bad("it contains a character other than letters, digits, `_`, `-` and `.`");
    }
    if name.starts_with('.') || name.starts_with('-') {
        return bad("it starts with `.` or `-`");
    }
    Ok(())
}

/// The digest tools may show instead of a value: `blake3:<64 hex>` of the value's bytes.
pub fn digest_of(value: &[u8]) -> String {
    Hash::of(value).to_string()
}

/// A secret's value. It prints as `<secret NAME>` (Debug and Display alike); the text is
/// reached only through [`SecretValue::expose`], and its bytes are overwritten on drop.
pub struct SecretValue {
    name: String,
    value: String,
}

impl SecretValue {
    /// The secret's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The value itself, for injection at dispatch. Never log or journal it.
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// `blake3:<hex>` of the value.
    pub fn digest(&self) -> String {
        digest_of(self.value.as_bytes())
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<secret {}>", self.name)
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<secret {}>", self.name)
    }
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        wipe(std::mem::take(&mut self.value).into_bytes());
    }
}

/// Overwrite a buffer before it is freed (best effort; `black_box` keeps the writes).
fn wipe(mut bytes: Vec<u8>) {
    bytes.fill(0);
    std::hint::black_box(&mut bytes);
}

/// What `set` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// `blake3:<hex>` of the new value.
    pub digest: String,
    /// Whether a previous value was replaced.
    pub replaced: bool,
}

/// A secret as listed: its name and the digest of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretInfo {
    pub name: String,
    pub digest: String,
    /// Whether the file is readable by anyone but its owner (it will be refused by `get`).
    pub too_open: bool,
}

/// The secrets of one world: the files under `.aos/secrets/`.
#[derive(Debug, Clone)]
pub struct SecretStore {
    dir: PathBuf,
}

impl SecretStore {
    /// The store of the world with this layout. Nothing is created until the first `set`.
    pub fn new(layout: &Layout) -> SecretStore {
        SecretStore {
            dir: layout.aos.join(SECRETS_DIR),
        }
    }

    /// A store over an explicit directory (tests, adapter configuration).
    pub fn at(dir: &Path) -> SecretStore {
        SecretStore {
            dir: dir.to_path_buf(),
        }
    }

    /// The directory holding the secret files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, name: &str) -> Result<PathBuf, SecretError> {
        validate_name(name)?;
        Ok(self.dir.join(name))
    }

    /// Store `value` under `name`, replacing any previous value atomically. The value
    /// must be non-empty UTF-8 text of at most [`MAX_VALUE_LEN`] bytes; a bad name or
    /// value changes nothing on disk.
    pub fn set(&self, name: &str, value: &[u8]) -> Result<Stored, SecretError> {
        let path = self.path(name)?;
        if value.is_empty() {
            return Err(SecretError::EmptyValue { name: name.into() });
        }
        if value.len() > MAX_VALUE_LEN {
            return Err(SecretError::TooLarge {
                name: name.into(),
                size: value.len(),
            });
        }
        if std::str::from_utf8(value).is_err() {
            return Err(SecretError::NotUtf8 { name: name.into() });
        }
        self.ensure_dir()?;
        let replaced = match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => true,
            Ok(_) => return Err(SecretError::NotAFile { path }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(io_err("inspect", &path)(e)),
        };
        write_file_atomic(&path, value, FILE_MODE)?;
        Ok(Stored {
            digest: digest_of(value),
            replaced,
        })
    }

    /// The value of `name`, or `None` when there is no such secret. A file readable by
    /// group or others is refused, like ssh refuses a loose private key.
    pub fn get(&self, name: &str) -> Result<Option<SecretValue>, SecretError> {
        let path = self.path(name)?;
        let Some(bytes) = self.read(&path, true)? else {
            return Ok(None);
        };
        match String::from_utf8(bytes) {
            Ok(value) => Ok(Some(SecretValue {
                name: name.to_string(),
                value,
            })),
            Err(e) => {
                wipe(e.into_bytes());
                Err(SecretError::NotUtf8 { name: name.into() })
            }
        }
    }

    /// `blake3:<hex>` of the value of `name`, or `None` when there is no such secret.
    pub fn digest(&self, name: &str) -> Result<Option<String>, SecretError> {
        let path = self.path(name)?;
        Ok(self.read(&path, false)?.map(|bytes| {
            let d = digest_of(&bytes);
            wipe(bytes);
            d
        }))
    }

    /// The names of all secrets, sorted. Files whose names are not valid secret names
    /// (temporary files of an interrupted `set`, stray files) are not secrets.
    pub fn list(&self) -> Result<Vec<String>, SecretError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("list", &self.dir)(e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("list", &self.dir))?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let is_file = entry.file_type().map(|t| t.is_file()).unwrap_or(false);
            if is_file && validate_name(&name).is_ok() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Every secret with the digest of its value, sorted by name.
    pub fn entries(&self) -> Result<Vec<SecretInfo>, SecretError> {
        let mut out = Vec::new();
        for name in self.list()? {
            let path = self.dir.join(&name);
            let too_open = fs::symlink_metadata(&path)
                .map(|m| m.permissions().mode() & 0o077 != 0)
                .unwrap_or(false);
            // A secret removed between listing and reading is simply no longer there.
            if let Some(digest) = self.digest(&name)? {
                out.push(SecretInfo {
                    name,
                    digest,
                    too_open,
                });
            }
        }
        Ok(out)
    }

    /// Delete `name`. A secret that does not exist is an error ([`SecretError::NotFound`]).
    pub fn remove(&self, name: &str) -> Result<(), SecretError> {
        let path = self.path(name)?;
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(SecretError::NotAFile { path }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SecretError::NotFound { name: name.into() })
            }
            Err(e) => return Err(io_err("inspect", &path)(e)),
        }
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(SecretError::NotFound { name: name.into() })
            }
            Err(e) => return Err(io_err("remove", &path)(e)),
        }
        sync_dir(&self.dir)?;
        Ok(())
    }

    /// Create the directory (mode 0700) if missing, and tighten it if it is looser.
    fn ensure_dir(&self) -> Result<(), SecretError> {
        match fs::symlink_metadata(&self.dir) {
            Ok(m) if m.is_dir() => {
                if m.permissions().mode() & 0o777 != DIR_MODE {
                    fs::set_permissions(&self.dir, fs::Permissions::from_mode(DIR_MODE))
                        .map_err(io_err("chmod", &self.dir))?;
                }
                Ok(())
            }
            Ok(_) => Err(SecretError::NotAFile {
                path: self.dir.clone(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                DirBuilder::new()
                    .mode(DIR_MODE)
                    .create(&self.dir)
                    .map_err(io_err("create", &self.dir))?;
                // The umask can only remove bits; make the mode exact anyway.
                fs::set_permissions(&self.dir, fs::Permissions::from_mode(DIR_MODE))
                    .map_err(io_err("chmod", &self.dir))?;
                if let Some(parent) = self.dir.parent() {
                    sync_dir(parent)?;
                }
                Ok(())
            }
            Err(e) => Err(io_err("inspect", &self.dir)(e)),
        }
    }

    /// The bytes of the secret file at `path`, or `None` if it does not exist. Symlinks
    /// and other non-files are refused; with `strict`, so is a file others may read.
    fn read(&self, path: &Path, strict: bool) -> Result<Option<Vec<u8>>, SecretError> {
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("inspect", path)(e)),
        };
        if !meta.is_file() {
            return Err(SecretError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let mode = meta.permissions().mode() & 0o7777;
        if strict && mode & 0o077 != 0 {
            return Err(SecretError::TooOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read", path)(e)),
        };
        let mut bytes = Vec::new();
        let read = file
            .take(MAX_VALUE_LEN as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err("read", path));
        if let Err(e) = read {
            wipe(bytes);
            return Err(e);
        }
        if bytes.len() > MAX_VALUE_LEN {
            let size = bytes.len();
            wipe(bytes);
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Err(SecretError::TooLarge { name, size });
        }
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn store() -> (Scratch, SecretStore) {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "aos-secrets-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let d = Scratch(dir);
        let s = SecretStore::at(&d.path().join("secrets"));
        (d, s)
    }

    #[test]
    fn set_get_list_digest_remove() {
        let (_d, s) = store();
        assert_eq!(s.list().unwrap(), Vec::<String>::new());
        assert!(s.get("API_KEY").unwrap().is_none());
        let st = s.set("API_KEY", b"sk-123").unwrap();
        assert!(!st.replaced);
        assert_eq!(st.digest, digest_of(b"sk-123"));
        assert!(st.digest.starts_with("blake3:") && st.digest.len() == 7 + 64);
        let v = s.get("API_KEY").unwrap().unwrap();
        assert_eq!(v.expose(), "sk-123");
        assert_eq!(format!("{v:?}"), "<secret API_KEY>");
        assert_eq!(format!("{v}"), "<secret API_KEY>");
        assert_eq!(v.digest(), st.digest);
        assert!(s.set("API_KEY", b"sk-456").unwrap().replaced);
        assert_eq!(s.get("API_KEY").unwrap().unwrap().expose(), "sk-456");
        s.set("b.other-1", b"x").unwrap();
        assert_eq!(s.list().unwrap(), vec!["API_KEY", "b.other-1"]);
        assert_eq!(s.digest("b.other-1").unwrap(), Some(digest_of(b"x")));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(s.dir()), 0o700);
        assert_eq!(mode(&s.dir().join("API_KEY")), 0o600);
        s.remove("API_KEY").unwrap();
        assert!(matches!(
            s.remove("API_KEY"),
            Err(SecretError::NotFound { .. })
        ));
        assert_eq!(s.list().unwrap(), vec!["b.other-1"]);
    }

    #[test]
    fn bad_names_and_values_change_nothing() {
        let (_d, s) = store();
        let long = "a".repeat(MAX_NAME_LEN + 1);
        for name in [
            "", "..", ".", "a/b", "../x", ".hidden", "-opt", "a b", "é", &long,
        ] {
            let e = s.set(name, b"v").unwrap_err();
            assert!(matches!(e, SecretError::BadName { .. }), "{name:?}: {e}");
            assert!(e.is_user_error());
            assert!(s.get(name).is_err());
        }
        assert!(validate_name(&"a".repeat(MAX_NAME_LEN)).is_ok());
        assert!(matches!(
            s.set("K", b""),
            Err(SecretError::EmptyValue { .. })
        ));
        assert!(matches!(
            s.set("K", b"\xff\xfe"),
            Err(SecretError::NotUtf8 { .. })
        ));
        let big = vec![b'a'; MAX_VALUE_LEN + 1];
        assert!(matches!(
            s.set("K", &big),
            Err(SecretError::TooLarge { .. })
        ));
        assert!(!s.dir().exists(), "refused input must not create anything");
    }

    #[test]
    fn loose_files_and_symlinks_are_refused() {
        let (d, s) = store();
        s.set("K", b"v").unwrap();
        fs::set_permissions(s.dir().join("K"), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(s.get("K"), Err(SecretError::TooOpen { .. })));
        assert!(s.entries().unwrap()[0].too_open);
        s.set("K", b"v").unwrap();
        assert!(s.get("K").unwrap().is_some(), "set restores mode 0600");
        let outside = d.path().join("outside");
        fs::write(&outside, "x").unwrap();
        std::os::unix::fs::symlink(&outside, s.dir().join("L")).unwrap();
        assert!(matches!(s.get("L"), Err(SecretError::NotAFile { .. })));
        assert_eq!(s.list().unwrap(), vec!["K"]);
        fs::write(s.dir().join(".K.1.0.tmp"), "junk").unwrap();
        assert_eq!(s.list().unwrap(), vec!["K"]);
    }

    #[test]
    fn errors_never_carry_the_value() {
        let (_d, s) = store();
        let e = s.set("K", b"").unwrap_err().to_string();
        assert!(e.contains('K'));
        let e = s.set("K", b"\xffSECRETVALUE").unwrap_err();
        assert!(!e.to_string().contains("SECRETVALUE"));
        assert!(!format!("{e:?}").contains("SECRETVALUE"));
    }
}
