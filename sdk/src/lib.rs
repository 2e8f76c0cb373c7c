//! The `#![no_std]` reducer SDK: turns a typed Rust function into a module that speaks
//! the reducer ABI of DESIGN §4 (`memory`, `alloc`, `step`).
//!
//! ```ignore
//! #![no_std]
//! extern crate alloc;
//! use aos_sdk::{Ctx, Out};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct State { n: u64 }
//!
//! // Variants arrive in their canonical form `{"$tag":ARM,"$value":…}` (`$value` absent
//! // for a unit arm): adjacently tagged serde enums read and write exactly that.
//! #[derive(Deserialize)]
//! #[serde(tag = "$tag", content = "$value")]
//! enum Event { Add(u64), Reset }
//!
//! fn step(state: Option<State>, event: Event, _ctx: &Ctx) -> Out<State> {
//!     let n = state.map_or(0, |s| s.n);
//!     Out::new(State { n: match event { Event::Add(k) => n + k, Event::Reset => 0 } })
//! }
//!
//! aos_sdk::reducer!(step);
//! ```
//!
//! Build the crate as a `cdylib` for `wasm32-unknown-unknown` (see
//! `scripts/build-reducers.sh`). On wasm32 the SDK provides the global allocator (a bump
//! allocator: every step runs in a fresh instance, so nothing needs to live long), a
//! panic handler that traps (`unreachable`), and [`reducer!`] emits the `alloc` and
//! `step` exports. On other targets everything but the exports compiles too, so the
//! step logic can be unit-tested on the host with [`run_json`]. A `#![no_std]` reducer
//! crate needs `#[cfg(not(target_arch = "wasm32"))] extern crate std;` for `cargo test`
//! on the host to link (std then supplies the allocator and panic handler there).
//!
//! **Errors.** When the input cannot be decoded into `Option<S>`, `E` and [`Ctx`] (a bug
//! in the reducer's types, or a state written by another version), `step` does not trap:
//! it returns the text `aos-sdk: cannot decode the input: …`, which is not JSON, so the
//! kernel always refuses the step (`output_not_json`) and shows the message in its
//! error. A panic in the reducer traps (`unreachable`).
//!
//! **64-bit numbers.** AIR `nat`/`int`/`time`/`duration` values beyond ±(2^53−1) arrive
//! as decimal strings; annotate such fields with `#[serde(with = "aos_sdk::u64_lens")]`
//! (or `i64_lens`) to accept both forms. [`Ctx::now_ns`] already does.
#![no_std]

extern crate alloc;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Write as _;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

pub use serde;
pub use serde_json;
pub use serde_json::Value;

/// What a step knows besides its state and event.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Ctx {
    /// The `at_ns` of the journal record being handled: the only clock a reducer has.
    #[serde(with = "u64_lens")]
    pub now_ns: u64,
    /// The cell key, for keyed reducers (`None` otherwise).
    pub key: Option<Value>,
    /// True when this reducer is routed with a `key_field` (one state per key).
    pub cell_mode: bool,
}

/// A domain event to emit: a schema name and a value of that schema.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainEvent {
    pub schema: String,
    pub value: Value,
}

/// A micro-effect intent (`timer.set`, `blob.put`, `blob.get`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Effect {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap_slot: Option<String>,
    pub kind: String,
    pub params: Value,
}

/// A step's result: the new state (`None` deletes a cell), domain events, effects and an
/// optional annotation.
///
/// Fields are declared (and so serialized) in canonical key order; declare the fields of
/// your state and event structs in sorted order too and the module's output is already
/// canonical JSON (the kernel canonicalizes it either way).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Out<S> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ann: Option<Value>,
    pub domain_events: Vec<DomainEvent>,
    pub effects: Vec<Effect>,
    pub state: Option<S>,
}

impl<S> Out<S> {
    /// Keep (or set) `state`, emitting nothing.
    pub fn new(state: S) -> Out<S> {
        Out {
            state: Some(state),
            domain_events: Vec::new(),
            effects: Vec::new(),
            ann: None,
        }
    }

    /// Return `null` as the state (for a cell: delete it).
    pub fn delete() -> Out<S> {
        Out {
            state: None,
            domain_events: Vec::new(),
            effects: Vec::new(),
            ann: None,
        }
    }

    /// Emit a domain event of `schema` (its value serialized with serde).
    pub fn emit<V: Serialize + ?Sized>(&mut self, schema: &str, value: &V) -> &mut Self {
        self.domain_events.push(DomainEvent {
            schema: schema.to_string(),
            value: to_value(value),
        });
        self
    }

    /// Emit an effect of any kind with already-built params.
    pub fn effect(&mut self, kind: &str, params: Value, cap_slot: Option<&str>) -> &mut Self {
        self.effects.push(Effect {
            kind: kind.to_string(),
            params,
            cap_slot: cap_slot.map(ToString::to_string),
        });
        self
    }

    /// `timer.set` (`sys/TimerSetParams@1`): fire `sys/TimerFired@1` at `deliver_at_ns`.
    pub fn timer_set(
        &mut self,
        deliver_at_ns: u64,
        key: Option<&str>,
        cap_slot: Option<&str>,
    ) -> &mut Self {
        let mut p = serde_json::Map::new();
        p.insert("deliver_at_ns".into(), u64_value(deliver_at_ns));
        p.insert(
            "key".into(),
            key.map_or(Value::Null, |k| Value::String(k.into())),
        );
        self.effect("timer.set", Value::Object(p), cap_slot)
    }

    /// `blob.put` (`sys/BlobPutParams@1`): store the blob `blob_ref` (`blake3:<hex>`).
    pub fn blob_put(
        &mut self,
        namespace: &str,
        blob_ref: &str,
        cap_slot: Option<&str>,
    ) -> &mut Self {
        let mut p = serde_json::Map::new();
        p.insert("namespace".into(), Value::String(namespace.into()));
        p.insert("blob_ref".into(), Value::String(blob_ref.into()));
        self.effect("blob.put", Value::Object(p), cap_slot)
    }

    /// `blob.get` (`sys/BlobGetParams@1`): fetch the blob under `key`.
    pub fn blob_get(&mut self, namespace: &str, key: &str, cap_slot: Option<&str>) -> &mut Self {
        let mut p = serde_json::Map::new();
        p.insert("namespace".into(), Value::String(namespace.into()));
        p.insert("key".into(), Value::String(key.into()));
        self.effect("blob.get", Value::Object(p), cap_slot)
    }

    /// Attach an annotation (any JSON; journaled with the step).
    pub fn annotate<V: Serialize + ?Sized>(&mut self, ann: &V) -> &mut Self {
        self.ann = Some(to_value(ann));
        self
    }
}

fn to_value<V: Serialize + ?Sized>(v: &V) -> Value {
    // Serializing into a `Value` only fails for maps with non-string keys; such a value
    // has no JSON form, so it is a bug in the reducer: trap.
    serde_json::to_value(v).expect("aos-sdk: value has no JSON form")
}

/// A u64 as canonical JSON: a number inside 2^53−1, else a decimal string.
fn u64_value(n: u64) -> Value {
    if n <= MAX_SAFE {
        Value::from(n)
    } else {
        Value::String(n.to_string())
    }
}

const MAX_SAFE: u64 = (1 << 53) - 1;

/// The event envelope of the input.
#[derive(Deserialize)]
struct EventIn<E> {
    #[allow(dead_code)]
    schema: String,
    value: E,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "S: DeserializeOwned, E: DeserializeOwned"))]
struct Input<S, E> {
    version: u32,
    state: Option<S>,
    event: EventIn<E>,
    ctx: Ctx,
}

/// Run one step on the input bytes of the ABI and return the output bytes: the whole
/// of `step` except the memory handling. Usable on the host to test a reducer.
pub fn run_json<S, E, F>(input: &[u8], f: F) -> Vec<u8>
where
    S: Serialize + DeserializeOwned,
    E: DeserializeOwned,
    F: FnOnce(Option<S>, E, &Ctx) -> Out<S>,
{
    let input: Input<S, E> = match serde_json::from_slice(input) {
        Ok(i) => i,
        Err(e) => return error_output(format_args!("cannot decode the input: {e}")),
    };
    if input.version != 1 {
        return error_output(format_args!(
            "input version {} is not supported (this SDK speaks version 1)",
            input.version
        ));
    }
    let out = f(input.state, input.event.value, &input.ctx);
    match serde_json::to_vec(&out) {
        Ok(v) => v,
        Err(e) => error_output(format_args!("cannot encode the output: {e}")),
    }
}

/// The refusal output: text that is not JSON, so the kernel rejects the step and shows it.
fn error_output(args: core::fmt::Arguments<'_>) -> Vec<u8> {
    let mut s = String::from("aos-sdk: ");
    let _ = s.write_fmt(args);
    s.into_bytes()
}

/// Serde adapter for `u64` fields: reads a JSON number or a decimal string (AIR's two
/// forms of 64-bit values), writes the canonical one.
pub mod u64_lens {
    use super::*;

    pub fn serialize<Ser: serde::Serializer>(n: &u64, s: Ser) -> Result<Ser::Ok, Ser::Error> {
        if *n <= MAX_SAFE {
            s.serialize_u64(*n)
        } else {
            s.collect_str(n)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n
                .as_u64()
                .ok_or_else(|| serde::de::Error::custom("expected a natural number")),
            Value::String(s) => s
                .parse()
                .map_err(|_| serde::de::Error::custom("expected a natural number")),
            _ => Err(serde::de::Error::custom("expected a natural number")),
        }
    }
}

/// Serde adapter for `i64` fields: reads a JSON number or a decimal string.
pub mod i64_lens {
    use super::*;

    pub fn serialize<Ser: serde::Serializer>(n: &i64, s: Ser) -> Result<Ser::Ok, Ser::Error> {
        if n.unsigned_abs() <= MAX_SAFE {
            s.serialize_i64(*n)
        } else {
            s.collect_str(n)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n
                .as_i64()
                .ok_or_else(|| serde::de::Error::custom("expected an integer")),
            Value::String(s) => s
                .parse()
                .map_err(|_| serde::de::Error::custom("expected an integer")),
            _ => Err(serde::de::Error::custom("expected an integer")),
        }
    }
}

/// The wasm32 runtime support: allocator, panic handler, and the ABI glue the
/// [`reducer!`] macro calls.
#[cfg(target_arch = "wasm32")]
pub mod wasm {
    use core::alloc::{GlobalAlloc, Layout};
    use core::cell::UnsafeCell;

    const PAGE: usize = 65536;

    extern "C" {
        /// The first byte after the stack and static data (defined by wasm-ld).
        static __heap_base: u8;
    }

    /// A bump allocator from `__heap_base` upwards. Each step runs in a fresh
    /// instance, so memory is never reused across steps; within a step, freeing or
    /// growing the most recent allocation is done in place.
    pub struct Bump {
        /// (next free byte, end of memory); 0 until first use.
        top: UnsafeCell<(usize, usize)>,
    }

    // SAFETY: wasm32 without threads (the kernel's profile forbids them).
    unsafe impl Sync for Bump {}

    impl Bump {
        pub const fn new() -> Bump {
            Bump {
                top: UnsafeCell::new((0, 0)),
            }
        }
    }

    impl Default for Bump {
        fn default() -> Bump {
            Bump::new()
        }
    }

    unsafe impl GlobalAlloc for Bump {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let top = &mut *self.top.get();
            if top.1 == 0 {
                // Start at the linker's `__heap_base`, just above the stack and the
                // static data, so a small step fits in the memory the module starts
                // with (no `memory.grow`, and only pages near the start are touched,
                // which the kernel keeps resident between steps).
                let end = core::arch::wasm32::memory_size(0) * PAGE;
                let base = core::ptr::addr_of!(__heap_base) as usize;
                *top = (base.min(end), end);
            }
            let align = layout.align().max(1);
            let start = match top.0.checked_add(align - 1) {
                Some(s) => s & !(align - 1),
                None => return core::ptr::null_mut(),
            };
            let new = match start.checked_add(layout.size()) {
                Some(n) => n,
                None => return core::ptr::null_mut(),
            };
            if new > top.1 {
                let pages = (new - top.1).div_ceil(PAGE);
                if core::arch::wasm32::memory_grow(0, pages) == usize::MAX {
                    return core::ptr::null_mut();
                }
                top.1 += pages * PAGE;
            }
            top.0 = new;
            start as *mut u8
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            let top = &mut *self.top.get();
            if ptr as usize + layout.size() == top.0 {
                top.0 = ptr as usize;
            }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let top = &mut *self.top.get();
            if ptr as usize + layout.size() == top.0 {
                // The most recent allocation: grow or shrink in place.
                let new = ptr as usize + new_size;
                if new > top.1 {
                    let pages = (new - top.1).div_ceil(PAGE);
                    if core::arch::wasm32::memory_grow(0, pages) == usize::MAX {
                        return core::ptr::null_mut();
                    }
                    top.1 += pages * PAGE;
                }
                top.0 = new;
                return ptr;
            }
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = self.alloc(new_layout);
            if !new.is_null() {
                core::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            }
            new
        }
    }

    #[global_allocator]
    static ALLOC: Bump = Bump::new();

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
        core::arch::wasm32::unreachable()
    }

    /// The `alloc` export: `len` writable bytes (traps when memory is exhausted).
    pub fn abi_alloc(len: i32) -> i32 {
        let layout = match core::alloc::Layout::from_size_align(len.max(0) as usize, 1) {
            Ok(l) => l,
            Err(_) => core::arch::wasm32::unreachable(),
        };
        let p = unsafe { GlobalAlloc::alloc(&ALLOC, layout) };
        if p.is_null() {
            core::arch::wasm32::unreachable()
        }
        p as i32
    }

    /// The body of the `step` export: read the input, run, leave the output in memory
    /// and return `ptr << 32 | len`.
    pub fn abi_step<S, E, F>(ptr: i32, len: i32, f: F) -> i64
    where
        S: serde::Serialize + serde::de::DeserializeOwned,
        E: serde::de::DeserializeOwned,
        F: FnOnce(Option<S>, E, &super::Ctx) -> super::Out<S>,
    {
        let input = unsafe { core::slice::from_raw_parts(ptr as usize as *const u8, len as usize) };
        let out = super::run_json(input, f);
        let out = alloc::boxed::Box::leak(out.into_boxed_slice());
        (((out.as_ptr() as usize as u64) << 32) | out.len() as u64) as i64
    }
}

/// Export `step_fn` (`fn(Option<S>, E, &Ctx) -> Out<S>`) as the reducer ABI: defines the
/// `alloc` and `step` exports (on wasm32 only; elsewhere it expands to nothing).
#[macro_export]
macro_rules! reducer {
    ($step:path) => {
        #[cfg(target_arch = "wasm32")]
        #[export_name = "alloc"]
        pub extern "C" fn __aos_sdk_alloc(len: i32) -> i32 {
            $crate::wasm::abi_alloc(len)
        }

        #[cfg(target_arch = "wasm32")]
        #[export_name = "step"]
        pub extern "C" fn __aos_sdk_step(ptr: i32, len: i32) -> i64 {
            $crate::wasm::abi_step(ptr, len, $step)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct St {
        #[serde(with = "u64_lens")]
        n: u64,
    }

    #[derive(Debug, Deserialize)]
    #[serde(tag = "$tag", content = "$value")]
    enum Ev {
        Add(u64),
        Reset,
    }

    fn step(s: Option<St>, e: Ev, ctx: &Ctx) -> Out<St> {
        let n = s.map_or(0, |s| s.n);
        let mut out = Out::new(St {
            n: match e {
                Ev::Add(k) => n + k,
                Ev::Reset => 0,
            },
        });
        if ctx.cell_mode {
            out.emit("demo/Seen@1", &ctx.key)
                .timer_set(ctx.now_ns + 1, Some("k"), None);
        }
        out
    }

    fn run(input: &str) -> String {
        String::from_utf8(run_json(input.as_bytes(), step)).unwrap()
    }

    #[test]
    fn steps_through_json() {
        let out = run(
            r#"{"ctx":{"cell_mode":false,"key":null,"now_ns":5},"event":{"schema":"demo/E@1","value":{"$tag":"Add","$value":2}},"state":{"n":"9007199254740993"},"version":1}"#,
        );
        assert_eq!(
            out,
            r#"{"domain_events":[],"effects":[],"state":{"n":"9007199254740995"}}"#
        );
        let out = run(
            r#"{"ctx":{"cell_mode":true,"key":"a","now_ns":"9007199254740993"},"event":{"schema":"demo/E@1","value":{"$tag":"Reset"}},"state":null,"version":1}"#,
        );
        assert_eq!(
            out,
            r#"{"domain_events":[{"schema":"demo/Seen@1","value":"a"}],"effects":[{"kind":"timer.set","params":{"deliver_at_ns":"9007199254740994","key":"k"}}],"state":{"n":0}}"#
        );
    }

    #[test]
    fn bad_input_is_refused_as_non_json() {
        for bad in [
            "{",
            r#"{"ctx":{"cell_mode":false,"key":null,"now_ns":5},"event":{"schema":"x","value":{"$tag":"Nope"}},"state":null,"version":1}"#,
            r#"{"ctx":{"cell_mode":false,"key":null,"now_ns":5},"event":{"schema":"x","value":{"$tag":"Reset"}},"state":null,"version":2}"#,
        ] {
            let out = run_json::<St, Ev, _>(bad.as_bytes(), step);
            assert!(
                out.starts_with(b"aos-sdk: "),
                "{}",
                String::from_utf8_lossy(&out)
            );
            assert!(serde_json::from_slice::<Value>(&out).is_err());
        }
    }
}
