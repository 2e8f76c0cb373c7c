//! `aos air check|fmt|hash|diff|patch`: AIR files outside any world, for pull-request
//! review and CI. Paths are directories (every `*.json` below them) or files.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use air_fmt::assemble::{assemble, fill_wasm_hashes, Assembled};
use air_fmt::diag::has_errors;
use air_fmt::load::{load, AirSet, Source};
use air_fmt::{Diagnostic, Name};
use aos_store::Hash;
use serde_json::json;

use super::{print_json, Ctx};
use crate::args::{AirCommand, AirDiffArgs, AirFmtArgs, AirPatchArgs, AirSetArgs};
use crate::exit::{user, Outcome};

pub fn run(ctx: &Ctx, cmd: AirCommand) -> anyhow::Result<Outcome> {
    match cmd {
        AirCommand::Check(a) => check(ctx, a),
        AirCommand::Fmt(a) => fmt(ctx, a),
        AirCommand::Hash(a) => hash(ctx, a),
        AirCommand::Diff(a) => diff(ctx, a),
        AirCommand::Patch(a) => patch(ctx, a),
    }
}

/// Every AIR file under the given paths, sorted, as named sources.
pub fn read_sources(paths: &[PathBuf]) -> anyhow::Result<Vec<Source>> {
    let mut files = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => collect(p, &mut files)?,
            Ok(_) => files.push(p.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return user(format!("{}: no such file or directory", p.display()))
            }
            Err(e) => return Err(anyhow::anyhow!("cannot read {}: {e}", p.display())),
        }
    }
    if files.is_empty() {
        return user(format!(
            "no AIR files (*.json) found under {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    files
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(&f)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))?;
            Ok(Source {
                name: f.display().to_string(),
                bytes,
            })
        })
        .collect()
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot list {}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "json") {
            out.push(p);
        }
    }
    Ok(())
}

/// `--module NAME=FILE.wasm` specs: the module name and the blake3 of the file.
pub fn module_hashes(specs: &[String]) -> anyhow::Result<BTreeMap<Name, Hash>> {
    Ok(read_modules(specs)?
        .iter()
        .map(|m| (m.name.clone(), m.hash))
        .collect())
}

/// A module given with `--module NAME=FILE.wasm`, read once.
pub struct ModuleFile {
    pub name: Name,
    pub spec: String,
    pub hash: Hash,
    pub bytes: Vec<u8>,
}

/// Read every `--module NAME=FILE.wasm` spec (the file must start with the WASM header).
pub fn read_modules(specs: &[String]) -> anyhow::Result<Vec<ModuleFile>> {
    let mut out = Vec::new();
    for spec in specs {
        let Some((name, file)) = spec.split_once('=') else {
            return user(format!(
                "--module {spec:?}: expected NAME=FILE.wasm, e.g. demo/Counter@1=counter.wasm"
            ));
        };
        let name = Name::parse(name)
            .map_err(|why| crate::exit::UserError(format!("--module {spec:?}: {why}")))?;
        let bytes = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => return user(format!("--module {spec:?}: cannot read {file}: {e}")),
        };
        if !bytes.starts_with(b"\0asm") {
            return user(format!(
                "--module {spec:?}: {file} is not a WebAssembly module (no \\0asm header)"
            ));
        }
        out.push(ModuleFile {
            name,
            spec: spec.clone(),
            hash: Hash::of(&bytes),
            bytes,
        });
    }
    Ok(out)
}

/// Load, fill module hashes, validate and assemble. Returns all diagnostics.
pub fn load_checked(
    paths: &[PathBuf],
    modules: &[String],
) -> anyhow::Result<(AirSet, Option<Assembled>, Vec<Diagnostic>)> {
    load_checked_with(paths, &module_hashes(modules)?)
}

/// [`load_checked`] with module hashes already computed.
pub fn load_checked_with(
    paths: &[PathBuf],
    hashes: &BTreeMap<Name, Hash>,
) -> anyhow::Result<(AirSet, Option<Assembled>, Vec<Diagnostic>)> {
    let sources = read_sources(paths)?;
    let (mut set, mut diags) = load(&sources);
    diags.extend(fill_wasm_hashes(&mut set, hashes));
    diags.extend(air_fmt::validate::validate(&set));
    let (assembled, more) = assemble(&set);
    for d in more {
        if !diags
            .iter()
            .any(|x| x.code == d.code && x.def == d.def && x.pointer == d.pointer)
        {
            diags.push(d);
        }
    }
    diags.sort_by(|a, b| {
        (a.severity, &a.file, &a.def, &a.pointer).cmp(&(b.severity, &b.file, &b.def, &b.pointer))
    });
    Ok((set, assembled, diags))
}

/// Hand back a reference to a large structure that is never freed: these commands end
/// the process right after printing, and freeing a 10,000-def set costs a third of the
/// command's time. The memory is returned to the system at exit either way.
fn exit_soon<T>(value: T) -> &'static T {
    Box::leak(Box::new(value))
}

pub fn print_diags(diags: &[Diagnostic]) {
    let mut err = std::io::stderr().lock();
    for d in diags {
        let _ = writeln!(err, "{d}");
    }
}

fn check(ctx: &Ctx, a: AirSetArgs) -> anyhow::Result<Outcome> {
    let (set, assembled, diags) = load_checked(&a.paths, &a.modules)?;
    let (set, assembled) = (exit_soon(set), exit_soon(assembled));
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    if ctx.json() {
        print_json(&json!({
            "ok": errors == 0,
            "errors": errors,
            "warnings": warnings,
            "defs": set.defs.len(),
            "manifest_hash": assembled.as_ref().filter(|_| errors == 0).map(|x| x.manifest_hash.to_string()),
            "diagnostics": diags,
        }))?;
    } else {
        print_diags(&diags);
        match (&assembled, errors) {
            (Some(x), 0) => println!(
                "ok: {} defs, manifest {} ({warnings} warning{})",
                set.defs.len(),
                x.manifest_hash,
                plural(warnings)
            ),
            _ => println!(
                "{errors} error{}, {warnings} warning{}",
                plural(errors),
                plural(warnings)
            ),
        }
    }
    Ok(if errors == 0 {
        Outcome::Ok
    } else {
        Outcome::Problem
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn hash(ctx: &Ctx, a: AirSetArgs) -> anyhow::Result<Outcome> {
    let (set, assembled, diags) = load_checked(&a.paths, &a.modules)?;
    let (_, assembled) = (exit_soon(set), exit_soon(assembled));
    let Some(x) = assembled.as_ref().filter(|_| !has_errors(&diags)) else {
        print_diags(&diags);
        return Ok(Outcome::Problem);
    };
    print_diags(&diags);
    if ctx.json() {
        let defs: Vec<_> = x
            .defs
            .iter()
            .map(|((k, n), (h, _))| json!({"kind": k.as_str(), "name": n, "hash": h}))
            .collect();
        print_json(&json!({"manifest_hash": x.manifest_hash, "defs": defs}))?;
    } else {
        println!("{}  manifest", x.manifest_hash);
        for ((k, n), (h, _)) in &x.defs {
            println!("{h}  {} {n}", k.as_str());
        }
    }
    Ok(Outcome::Ok)
}

fn fmt(ctx: &Ctx, a: AirFmtArgs) -> anyhow::Result<Outcome> {
    let sources = read_sources(&a.paths)?;
    let mut changed = Vec::new();
    let mut failed = Vec::new();
    for src in &sources {
        match air_fmt::fmt::format_source(&src.bytes) {
            Ok(text) if text.as_bytes() == src.bytes.as_slice() => {}
            Ok(text) => {
                if !a.check {
                    aos_store::durable::write_file_atomic(
                        Path::new(&src.name),
                        text.as_bytes(),
                        0o644,
                    )?;
                }
                changed.push(src.name.clone());
            }
            Err(d) => failed.push(d.in_file(&src.name)),
        }
    }
    print_diags(&failed);
    if ctx.json() {
        print_json(
            &json!({"checked": sources.len(), "changed": changed, "write": !a.check, "errors": failed}),
        )?;
    } else {
        for f in &changed {
            println!(
                "{} {f}",
                if a.check {
                    "would reformat"
                } else {
                    "formatted"
                }
            );
        }
        if changed.is_empty() && failed.is_empty() {
            ctx.info(&format!(
                "{} file{} already formatted",
                sources.len(),
                plural(sources.len())
            ));
        }
    }
    Ok(if !failed.is_empty() || (a.check && !changed.is_empty()) {
        Outcome::Problem
    } else {
        Outcome::Ok
    })
}

/// Two AIR sets from the diff arguments: `A B`, or git's 7 external-diff arguments
/// (path old-file old-hex old-mode new-file new-hex new-mode).
fn diff_inputs(a: &AirDiffArgs) -> anyhow::Result<(PathBuf, PathBuf)> {
    match a.paths.len() {
        2 => Ok((a.paths[0].clone(), a.paths[1].clone())),
        7 => Ok((a.paths[1].clone(), a.paths[4].clone())),
        n => user(format!("aos air diff takes two paths (A B), or the 7 arguments of a git external diff; got {n}")),
    }
}

fn load_side(path: &Path, modules: &[String]) -> anyhow::Result<AirSet> {
    // git passes /dev/null for an added or deleted file: an empty side.
    if path == Path::new("/dev/null") {
        return Ok(AirSet::default());
    }
    // Only reading matters here: a diff shows invalid sets too.
    let sources = read_sources(&[path.to_path_buf()])?;
    let (mut set, mut diags) = load(&sources);
    diags.extend(fill_wasm_hashes(&mut set, &module_hashes(modules)?));
    let parse_errors: Vec<_> = diags
        .iter()
        .filter(|d| {
            d.is_error() && matches!(d.code, "bad_json" | "duplicate_def" | "duplicate_manifest")
        })
        .cloned()
        .collect();
    if !parse_errors.is_empty() {
        print_diags(&parse_errors);
        anyhow::bail!("{} cannot be read as AIR", path.display());
    }
    Ok(set)
}

fn diff(ctx: &Ctx, a: AirDiffArgs) -> anyhow::Result<Outcome> {
    let (old, new) = diff_inputs(&a)?;
    let old_set = exit_soon(load_side(&old, &a.modules)?);
    let new_set = exit_soon(load_side(&new, &a.modules)?);
    let d = exit_soon(air_fmt::diff::diff(old_set, new_set));
    if ctx.json() {
        print_json(&serde_json::to_value(d)?)?;
    } else {
        let color = match a.color.as_str() {
            "always" => true,
            "never" => false,
            "auto" => std::io::stdout().is_terminal(),
            other => return user(format!("--color {other:?}: use auto, always or never")),
        };
        if a.paths.len() == 7 && !d.is_empty() {
            // Called by git as an external diff: say which file this is.
            println!("aos air diff a/{0} b/{0}", a.paths[0].display());
        }
        print!("{}", air_fmt::diff::render_text(d, color));
    }
    Ok(Outcome::Ok)
}

fn patch(ctx: &Ctx, a: AirPatchArgs) -> anyhow::Result<Outcome> {
    let old_set = exit_soon(load_side(&a.old, &a.modules)?);
    let new_set = exit_soon(load_side(&a.new, &a.modules)?);
    match air_fmt::patch::diff_to_patch(old_set, new_set) {
        Ok(p) => {
            let v = p.to_json();
            if ctx.json() {
                print_json(&v)?;
            } else {
                println!("{}", air_fmt::fmt::format_json(&v));
            }
            Ok(Outcome::Ok)
        }
        Err(diags) => {
            print_diags(&diags);
            Ok(Outcome::Problem)
        }
    }
}
