//! WAT reducers for the runtime tests: an honest echo reducer, constant-output modules,
//! and hostile ones (loops, memory and table bombs, bad pointers, forbidden imports).
#![allow(dead_code)]

use aos_kernel::wasm::{Limits, Runtime};
use aos_store::Hash;

/// Compile WAT text to WASM bytes.
pub fn wasm(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).unwrap_or_else(|e| panic!("bad WAT in test: {e}\n{wat}"))
}

/// Escape bytes for a WAT string literal.
fn wat_str(s: &[u8]) -> String {
    s.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// The ABI scaffolding: a memory, a bump allocator that grows memory as needed, and
/// `step` with the given body (params `$ptr`, `$len`; result i64), plus extra items.
pub fn module(step_body: &str, extra: &str) -> String {
    format!(
        r#"(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (func $alloc (export "alloc") (param $len i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $len)))
    (block $ok
      (loop $grow
        (br_if $ok (i32.le_u (global.get $heap)
                             (i32.mul (memory.size) (i32.const 65536))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
        (br $grow)))
    (local.get $p))
  (func $pack (param $p i32) (param $n i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $p)) (i64.const 32))
            (i64.extend_i32_u (local.get $n))))
  (func (export "step") (param $ptr i32) (param $len i32) (result i64)
    {step_body})
  {extra}
)"#
    )
}

/// A reducer returning `{"state":STATE,"ann":<its input>}`: it proves the input bytes
/// arrived exactly, and the output is built in freshly allocated memory.
pub fn echo(state: &str) -> Vec<u8> {
    let prefix = format!(r#"{{"state":{state},"ann":"#);
    let p = prefix.len();
    wasm(&module(
        &format!(
            r#"(local $out i32)
    (local.set $out (call $alloc (i32.add (local.get $len) (i32.const {n}))))
    (memory.copy (local.get $out) (i32.const 0) (i32.const {p}))
    (memory.copy (i32.add (local.get $out) (i32.const {p})) (local.get $ptr) (local.get $len))
    (i32.store8 (i32.add (local.get $out) (i32.add (local.get $len) (i32.const {p})))
                (i32.const 125))
    (call $pack (local.get $out) (i32.add (local.get $len) (i32.const {n})))"#,
            n = p + 1
        ),
        &format!(r#"(data (i32.const 0) "{}")"#, wat_str(prefix.as_bytes())),
    ))
}

/// A reducer whose output is always `out`.
pub fn constant(out: &[u8]) -> Vec<u8> {
    wasm(&module(
        &format!("(call $pack (i32.const 0) (i32.const {}))", out.len()),
        &format!(r#"(data (i32.const 0) "{}")"#, wat_str(out)),
    ))
}

/// `step` loops forever.
pub fn infinite_loop() -> Vec<u8> {
    wasm(&module("(loop $l (br $l)) (i64.const 0)", ""))
}

/// `step` grows memory a page at a time, forever.
pub fn memory_bomb() -> Vec<u8> {
    wasm(&module(
        "(loop $l (drop (memory.grow (i32.const 1))) (br $l)) (i64.const 0)",
        "",
    ))
}

/// `step` grows a table forever.
pub fn table_bomb() -> Vec<u8> {
    wasm(&module(
        "(loop $l (drop (table.grow $t (ref.null func) (i32.const 1000))) (br $l)) (i64.const 0)",
        "(table $t 0 funcref)",
    ))
}

/// `step` returns the raw packed value `packed`.
pub fn returns(packed: u64) -> Vec<u8> {
    wasm(&module(&format!("(i64.const {})", packed as i64), ""))
}

/// `step` executes `unreachable`.
pub fn traps() -> Vec<u8> {
    wasm(&module("unreachable", ""))
}

/// A runtime without a disk cache and small limits, so hostile modules fail fast.
pub fn small_runtime() -> Runtime {
    Runtime::new(None, small_limits()).expect("runtime")
}

pub fn small_limits() -> Limits {
    Limits {
        fuel_per_step: 1_000_000,
        memory_bytes: 16 << 20,
        table_elements: 10_000,
        max_output_bytes: 1 << 20,
    }
}

/// Load `wasm` into `rt` and return its hash.
pub fn load(rt: &Runtime, wasm: &[u8]) -> Hash {
    let h = Hash::of(wasm);
    rt.load(&h, wasm).expect("load");
    h
}

/// Create a world at `root` whose genesis manifest is `air` (defs + manifest as JSON;
/// `{{NAME}}` in the text is replaced by the hash of `modules[NAME]`), with the modules
/// stored and `public_key` (`ed25519:<hex>`) as its receipt key. The AIR must validate.
pub fn create_world(
    root: &std::path::Path,
    air: &str,
    modules: &[(&str, Vec<u8>)],
    public_key: &str,
) {
    use air_fmt::assemble::assemble;
    use air_fmt::load::{load, Source};
    use aos_store::canon;
    use aos_store::world::{Genesis, World};
    use serde_json::json;

    let mut text = air.to_string();
    let mut objects = Vec::new();
    for (n, wasm) in modules {
        text = text.replace(&format!("{{{{{n}}}}}"), &Hash::of(wasm).to_string());
        objects.push(wasm.clone());
    }
    let (set, diags) = load(&[Source {
        name: "test.air.json".into(),
        bytes: text.into_bytes(),
    }]);
    assert!(diags.iter().all(|d| !d.is_error()), "{diags:#?}");
    let errors: Vec<_> = air_fmt::validate::validate(&set)
        .into_iter()
        .filter(|d| d.is_error())
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let (assembled, diags) = assemble(&set);
    let assembled = assembled.unwrap_or_else(|| panic!("{diags:#?}"));
    for (_, v) in assembled.defs.values() {
        objects.push(canon::value_to_vec(v).unwrap());
    }
    objects.push(canon::value_to_vec(&assembled.manifest).unwrap());
    let mut body = serde_json::Map::new();
    body.insert("manifest".into(), json!(assembled.manifest_hash));
    World::create(
        root,
        Genesis {
            public_key: public_key.to_string(),
            secret_key_file: b"test",
            origin: json!({"who": "test", "via": "test"}),
            objects,
            body,
        },
    )
    .unwrap();
}
