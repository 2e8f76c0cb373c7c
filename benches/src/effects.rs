//! `effects`: effects per second through the whole path, and the per-effect overhead of
//! gating, signing and verifying against a bare loopback HTTP round trip.
//!
//! * **Full path**: a world running the timer example (`examples/timer`: its AIR and
//!   its reducer, built by `scripts/build-reducers.sh`), created through the public
//!   kernel API like `aos init --air` makes it. Each round injects a batch of `Start`
//!   events with a past `deliver_at_ns` (`Session::inject`: canonicalize the event, step
//!   the reducer, which emits one `timer.set`; gate it by cap and policy; journal the
//!   event, the step, the intent and its `policy_decision` in one durable group commit),
//!   then dispatches the open intents exactly as `aos run` does
//!   (`cli/src/commands/dispatch.rs`): `Session::open_intents`, the grant's params looked
//!   up per intent, [`IN_FLIGHT`] intents at a time on scoped threads, each through
//!   `aos_adapters::adapter::dispatch` with the `TimerAdapter` and the world's
//!   `ReceiptSigner` (read from the world's key file); then one `Session::accept_receipts`
//!   of the round (verify every signature, journal every receipt, deliver `TimerFired` to
//!   the reducer, one durable group commit). The journal keeps the world's default sync
//!   mode (`every_append`). `http.request` cannot be emitted by a reducer
//!   (`origin_scope` `plan`, and plans do not run yet), so the timer effect stands in.
//!   Baseline: bare loopback HTTP GETs with `ureq`, [`IN_FLIGHT`] at a time on scoped
//!   threads, against a tiny HTTP/1.1 server in this process.
//! * **Overhead per effect**: `aos_kernel::gates::check_cap` + `check_policy` of an
//!   `http.request` intent against an `http.out` grant (an AIR set loaded from text with
//!   `air_fmt::load::load`), plus `aos_adapters::receipt::sign` and `Receipt::verify` of
//!   an `http.request` receipt. Baseline: one bare sequential GET on loopback.

use std::error::Error;
use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use air_fmt::load::{load, AirSet, Source};
use aos_adapters::adapter::{dispatch, no_secrets, Request};
use aos_adapters::receipt::{sign, Receipt, Status, Unsigned};
use aos_adapters::signing::ReceiptSigner;
use aos_adapters::timer::TimerAdapter;
use aos_adapters::Adapter;
use aos_kernel::gates::{self, OriginKind};
use aos_kernel::records::{EFFECT_INTENT, POLICY_DECISION, REDUCER_STEPPED};
use aos_kernel::session::{BootOptions, EventIn, Session};
use aos_kernel::state::OpenIntent;
use aos_store::canon::u64_value;
use aos_store::world::Access;
use aos_store::Hash;
use serde_json::{json, Value};

use crate::kernel::{create_example_world, name, origin, reducer_wasm};
use crate::report::{Row, Section, Target};
use crate::util::{median, per_s, say, settle};

type Res<T> = Result<T, Box<dyn Error>>;

const BENCH: &str = "effects";
const EVENT: &str = "demo/TimerEvent@1";
const REDUCER: &str = "demo/TimerSM@1";
/// How many adapters `aos run` runs at once (`cli::commands::dispatch::IN_FLIGHT`).
const IN_FLIGHT: usize = 8;

/// Sizes of one run.
struct Plan {
    /// Effects through the full path, per batch size.
    effects: u64,
    /// Batch sizes (Start events injected, then dispatched, per round).
    batches: [u64; 2],
    /// Bare GETs per measurement (sequential and 8 in flight).
    gets: u64,
    /// Iterations per round of the gate/sign/verify measurements.
    calls: u64,
    /// Rounds (the median is reported).
    rounds: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                effects: 2_048,
                batches: [64, 8],
                gets: 400,
                calls: 1_000,
                rounds: 3,
            }
        } else {
            Plan {
                effects: 20_480,
                batches: [64, 8],
                gets: 2_000,
                calls: 5_000,
                rounds: 5,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// A tiny HTTP/1.1 server on loopback (one response per connection, then close).

const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    threads: Vec<JoinHandle<()>>,
}

impl Server {
    /// `workers` threads accept on one listener, so that many requests run at once.
    fn start(workers: usize) -> Res<Server> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let mut threads = Vec::new();
        for _ in 0..workers {
            let l = listener.try_clone()?;
            let (stop, served) = (stop.clone(), served.clone());
            threads.push(std::thread::spawn(move || {
                while let Ok((c, _)) = l.accept() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if answer(c).is_ok() {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        Ok(Server {
            addr,
            stop,
            served,
            threads,
        })
    }

    fn url(&self) -> String {
        format!("http://{}/ping", self.addr)
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake every worker blocked in accept.
        for _ in &self.threads {
            let _ = TcpStream::connect(self.addr);
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Read one request head and answer it.
fn answer(mut c: TcpStream) -> std::io::Result<()> {
    c.set_nodelay(true)?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut buf = [0u8; 2048];
    let mut have = 0;
    loop {
        let n = c.read(&mut buf[have..])?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        have += n;
        if buf[..have].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
        if have == buf.len() {
            return Err(std::io::ErrorKind::InvalidData.into());
        }
    }
    c.write_all(RESPONSE)?;
    c.flush()
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

/// One bare GET: connect, send, read the whole answer.
fn get(agent: &ureq::Agent, url: &str) -> Res<()> {
    let mut resp = agent.get(url).call()?;
    let body = resp.body_mut().read_to_string()?;
    if body != "ok" {
        return Err(format!("unexpected body {body:?}").into());
    }
    Ok(())
}

/// `n` GETs, [`IN_FLIGHT`] at a time on scoped threads (like dispatch runs adapters).
fn gets_in_flight(agent: &ureq::Agent, url: &str, n: u64) -> Res<Duration> {
    let t = Instant::now();
    let mut done = 0;
    while done < n {
        let k = (n - done).min(IN_FLIGHT as u64);
        let ok = std::thread::scope(|scope| {
            let hs: Vec<_> = (0..k)
                .map(|_| scope.spawn(|| get(agent, url).is_ok()))
                .collect();
            hs.into_iter().all(|h| h.join().unwrap_or(false))
        });
        if !ok {
            return Err("a loopback GET failed".into());
        }
        done += k;
    }
    Ok(t.elapsed())
}

fn gets_sequential(agent: &ureq::Agent, url: &str, n: u64) -> Res<Duration> {
    let t = Instant::now();
    for _ in 0..n {
        get(agent, url)?;
    }
    Ok(t.elapsed())
}

// ---------------------------------------------------------------------------------------
// The full path with the timer example.

/// Time spent in each phase of the full path.
#[derive(Default, Clone, Copy)]
struct Phases {
    inject: Duration,
    dispatch: Duration,
    accept: Duration,
    effects: u64,
    rounds: u64,
}

impl Phases {
    fn total(&self) -> Duration {
        self.inject + self.dispatch + self.accept
    }
    fn us(&self, d: Duration) -> f64 {
        d.as_secs_f64() * 1e6 / self.effects as f64
    }
}

/// A timer world at `root`, opened for writing, with the world's receipt signer.
fn timer_world(root: &Path, wasm: &[u8]) -> Res<(Session, ReceiptSigner)> {
    create_example_world(root, "timer", REDUCER, wasm)?;
    let s = Session::open(root, Access::Write, BootOptions::default(), &mut |_, _| {})?;
    let key = std::fs::read(s.world.layout.receipt_key())?;
    let signer = ReceiptSigner::from_file_bytes(&key)?;
    Ok((s, signer))
}

/// What `Dispatcher::one` does for a timer intent: the request with the grant's URL
/// check, the adapter, the world key.
fn dispatch_one(
    adapter: &TimerAdapter,
    signer: &ReceiptSigner,
    hash: Hash,
    open: &OpenIntent,
    grant: Option<Result<Value, String>>,
) -> Option<Receipt> {
    let allow_url = |method: &str, url: &str| -> Result<(), String> {
        match &grant {
            Some(Ok(params)) => gates::http_url_allowed_by(&open.grant, params, method, url),
            Some(Err(e)) => Err(e.clone()),
            None => Err("the world has no manifest".into()),
        }
    };
    let req = Request {
        intent_hash: hash,
        kind: &open.kind,
        params: &open.params,
        idempotency_key: &open.idempotency_key,
        allow_url: &allow_url,
        secrets: &no_secrets,
    };
    if !adapter.kinds().contains(&open.kind.as_str()) {
        return None;
    }
    dispatch(adapter, &req, signer).ok()
}

/// `effects` effects through the full path, `batch` per round.
fn full_path(s: &mut Session, signer: &ReceiptSigner, effects: u64, batch: u64) -> Res<Phases> {
    let adapter = TimerAdapter::new();
    let who = origin();
    let mut ph = Phases::default();
    let mut next = 0u64;
    while ph.effects < effects {
        let n = batch.min(effects - ph.effects);
        // A past deliver_at_ns: the timer is due at once.
        let events: Vec<EventIn> = (0..n)
            .map(|i| EventIn {
                schema: name(EVENT),
                value: json!({"Start": {"deliver_at_ns": 1, "key": format!("t{}", next + i)}}),
                key: None,
            })
            .collect();
        next += n;
        let t = Instant::now();
        let report = s.inject(&events, &who)?;
        ph.inject += t.elapsed();
        for inj in &report {
            let kinds: Vec<&str> = inj.derived.iter().map(|(_, r)| r.kind.as_str()).collect();
            if kinds != [REDUCER_STEPPED, EFFECT_INTENT, POLICY_DECISION] {
                return Err(format!("a Start did not emit one gated intent: {kinds:?}").into());
            }
        }

        let t = Instant::now();
        let open = s.open_intents();
        let set = s.kernel.manifest.as_ref().map(|m| &m.set);
        let mut receipts = Vec::with_capacity(open.len());
        for chunk in open.chunks(IN_FLIGHT) {
            let results: Vec<Option<Receipt>> = std::thread::scope(|scope| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|(hash, o)| {
                        let grant = set.map(|set| gates::grant_params(set, &o.grant));
                        let adapter = &adapter;
                        scope.spawn(move || dispatch_one(adapter, signer, *hash, o, grant))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().ok().flatten())
                    .collect()
            });
            receipts.extend(results.into_iter().flatten());
        }
        ph.dispatch += t.elapsed();
        if receipts.len() as u64 != n || open.len() as u64 != n {
            return Err(format!(
                "{} open intents and {} receipts for {n} Start events",
                open.len(),
                receipts.len()
            )
            .into());
        }
        if let Some(bad) = receipts.iter().find(|r| r.status != Status::Ok) {
            return Err(format!("a timer receipt is not ok: {}", bad.payload).into());
        }

        let t = Instant::now();
        let accepted = s.accept_receipts(&receipts)?;
        ph.accept += t.elapsed();
        for a in &accepted {
            let Some(inj) = a else {
                return Err("a receipt was skipped as a duplicate".into());
            };
            if !inj.derived.iter().any(|(_, r)| r.kind == REDUCER_STEPPED) {
                return Err("a receipt was not delivered to the reducer".into());
            }
        }
        ph.effects += n;
        ph.rounds += 1;
    }
    if !s.open_intents().is_empty() {
        return Err("open intents are left after the last round".into());
    }
    Ok(ph)
}

// ---------------------------------------------------------------------------------------
// Gate + sign + verify of one http.request effect.

/// An AIR set with an `http.out` grant for the loopback server and a policy whose last
/// rule allows `http.request` from the plan `demo/fetch@1`.
fn http_set(port: u16) -> Res<AirSet> {
    let manifest = json!({
        "$kind": "manifest",
        "air_version": "1",
        "effects": [{"name": "sys/http.request@1"}],
        "caps": [{"name": "sys/http.out@1"}],
        "policies": [{"name": "demo/fetch-policy@1"}],
        "defaults": {
            "policy": "demo/fetch-policy@1",
            "cap_grants": [{
                "name": "http_grant",
                "cap": "sys/http.out@1",
                "params": {"hosts": ["127.0.0.1"], "verbs": ["GET"], "ports": [port], "path_prefixes": ["/ping"]}
            }]
        }
    });
    let policy = json!({
        "$kind": "defpolicy",
        "name": "demo/fetch-policy@1",
        "rules": [
            {"when": {"effect_kind": "timer.set"}, "decision": "deny"},
            {"when": {"effect_kind": "http.request", "origin_kind": "reducer"}, "decision": "deny"},
            {"when": {"effect_kind": "http.request", "origin_kind": "plan", "origin_name": "demo/fetch@1"}, "decision": "allow"}
        ]
    });
    let sources = [
        Source {
            name: "manifest.air.json".into(),
            bytes: manifest.to_string().into_bytes(),
        },
        Source {
            name: "policy.air.json".into(),
            bytes: policy.to_string().into_bytes(),
        },
    ];
    let (set, diags) = load(&sources);
    let errors: Vec<String> = diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.to_string())
        .collect();
    if !errors.is_empty() {
        return Err(format!("the http AIR has errors: {errors:?}").into());
    }
    Ok(set)
}

/// The time of `n` calls of `f`.
fn time_n(n: u64, mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed()
}

fn us_each(d: Duration, n: u64) -> f64 {
    d.as_secs_f64() * 1e6 / n as f64
}

pub fn run_bench(scratch: &Path, quick: bool) -> Res<Section> {
    let plan = Plan::new(quick);
    let mut sec = Section::new(BENCH);
    let (wasm_path, wasm) = reducer_wasm("timer", "AOS_TIMER_WASM")?;
    say(format!("timer reducer {}", wasm_path.display()));

    let server = Server::start(2 * IN_FLIGHT)?;
    let url = server.url();
    let agent = agent();
    // Warm up: the server threads, the agent, the loopback path.
    gets_sequential(&agent, &url, 50)?;
    gets_in_flight(&agent, &url, 64)?;

    // --- Full path vs bare GETs 8 in flight, taking turns per batch size.
    let mut full: Vec<(u64, Phases, Duration)> = Vec::new();
    for (i, &batch) in plan.batches.iter().enumerate() {
        let root = scratch.join(format!("effects-timer-{batch}"));
        let (mut s, signer) = timer_world(&root, &wasm)?;
        // Warm up: the module compiled, the first records.
        full_path(&mut s, &signer, 2 * batch, batch)?;
        settle(&root);
        say(format!(
            "full path: {} timer effects in rounds of {batch}",
            plan.effects
        ));
        let ph = full_path(&mut s, &signer, plan.effects, batch)?;
        s.finish()?;
        let gets = if i == 0 { plan.gets } else { plan.gets / 2 };
        say(format!("{gets} bare GETs, {IN_FLIGHT} in flight"));
        let g = gets_in_flight(&agent, &url, gets)?;
        full.push((batch, ph, g / gets as u32));
    }
    let get_inflight_rate = 1.0 / median(full.iter().map(|f| f.2).collect()).as_secs_f64();
    for (i, (batch, ph, _)) in full.iter().enumerate() {
        let rate = per_s(ph.effects, ph.total());
        let row = Row::rate(
            BENCH,
            format!("timer effects, full path, rounds of {batch}, {IN_FLIGHT} in flight"),
            "eff/s",
            rate,
            Some((
                &format!("bare GET, {IN_FLIGHT} in flight"),
                get_inflight_rate,
            )),
        );
        sec.row(if i == 0 {
            row.target(Target::new(">=2,000 eff/s", rate >= 2_000.0))
        } else {
            row
        });
    }
    for (batch, ph, _) in &full {
        sec.note(format!(
            "rounds of {batch} ({} rounds, {} effects): per effect {:.1} us = inject (canonicalize, step, gate, journal event + step + intent + policy_decision; one fdatasync per round) {:.1} us + dispatch (open_intents, grant params, {IN_FLIGHT} threads at a time: TimerAdapter + sign) {:.1} us + accept_receipts (verify, journal receipt, deliver TimerFired, step; one fdatasync per round) {:.1} us",
            ph.rounds,
            ph.effects,
            ph.us(ph.total()),
            ph.us(ph.inject),
            ph.us(ph.dispatch),
            ph.us(ph.accept)
        ));
    }
    sec.note("http.request cannot be emitted by a reducer (origin_scope plan; plans do not run yet), so the timer.set effect stands in for it; its adapter does no I/O, so the full-path rows are the kernel's and the dispatcher's own cost, and the bare GET rate shows what an HTTP effect would add");

    // --- Gate + sign + verify vs one bare GET.
    let set = http_set(server.addr.port())?;
    let effect = gates::effect_by_kind(&set, "http.request").ok_or("no http.request effect")?;
    let params = json!({"method": "GET", "url": url, "headers": {}, "body_ref": null});
    let plan_name = name("demo/fetch@1");
    let who = gates::Origin {
        kind: OriginKind::Plan,
        name: &plan_name,
    };
    let now = aos_store::journal::now_ns();
    let cap = gates::check_cap(&set, "http_grant", effect, &params, now);
    let pol = gates::check_policy(&set, "http.request", "http_grant", &who);
    if !cap.allowed || !pol.allowed {
        return Err(format!(
            "the http intent is not allowed: cap {} ({}), policy {} ({})",
            cap.code, cap.reason, pol.code, pol.reason
        )
        .into());
    }
    let grant = gates::grant_params(&set, "http_grant")?;
    gates::http_url_allowed_by("http_grant", &grant, "GET", &url)?;
    let signer = ReceiptSigner::generate()?;
    let public = signer.public_key();
    let unsigned = Unsigned {
        intent_hash: Hash::of(b"an http.request intent"),
        effect_kind: "http.request".into(),
        adapter_id: "http".into(),
        status: Status::Ok,
        payload: json!({
            "status": 200,
            "headers": {"content-length": "2", "content-type": "text/plain", "connection": "close"},
            "body_ref": Hash::of(b"ok").to_string(),
            "timings": {"start_ns": u64_value(now), "end_ns": u64_value(now + 120_000)},
            "adapter_id": "http",
        }),
        started_ns: now,
        finished_ns: now + 120_000,
        cost_cents: None,
    };
    let receipt = sign(unsigned.clone(), &signer)?;
    receipt.verify(&public)?;

    say(format!(
        "gates, signing, verification and bare GETs: {} rounds of {} calls",
        plan.rounds, plan.calls
    ));
    // [check_cap, check_policy, sign, verify, url recheck, get]
    let mut times: [Vec<f64>; 6] = Default::default();
    let gets = (plan.gets / plan.rounds as u64).max(50);
    for _ in 0..plan.rounds {
        let n = plan.calls;
        times[0].push(us_each(
            time_n(n, || {
                black_box(gates::check_cap(
                    &set,
                    "http_grant",
                    effect,
                    black_box(&params),
                    now,
                ));
            }),
            n,
        ));
        times[1].push(us_each(
            time_n(n, || {
                black_box(gates::check_policy(
                    &set,
                    "http.request",
                    "http_grant",
                    black_box(&who),
                ));
            }),
            n,
        ));
        times[2].push(us_each(
            time_n(n, || {
                black_box(sign(black_box(unsigned.clone()), &signer).expect("sign"));
            }),
            n,
        ));
        times[3].push(us_each(
            time_n(n, || {
                assert!(black_box(receipt.verify(black_box(&public)).is_ok()));
            }),
            n,
        ));
        times[4].push(us_each(
            time_n(n, || {
                let g = gates::grant_params(&set, "http_grant").expect("grant");
                black_box(gates::http_url_allowed_by("http_grant", &g, "GET", &url).ok());
            }),
            n,
        ));
        times[5].push(us_each(gets_sequential(&agent, &url, gets)?, gets));
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let [mut cap_t, mut pol_t, mut sign_t, mut verify_t, mut url_t, mut get_t] = times;
    let (cap_us, pol_us, sign_us, verify_us, url_us, get_us) = (
        med(&mut cap_t),
        med(&mut pol_t),
        med(&mut sign_t),
        med(&mut verify_t),
        med(&mut url_t),
        med(&mut get_t),
    );
    let overhead = cap_us + pol_us + sign_us + verify_us;
    sec.row(
        Row::cost(
            BENCH,
            "http.request: check_cap + check_policy + sign + verify, per effect",
            "us",
            overhead,
            Some(("bare loopback GET", get_us)),
        )
        .target(Target::new("<=100 us", overhead <= 100.0)),
    );
    sec.row(Row::cost(
        BENCH,
        "  + the adapter's URL re-check (grant_params + http_url_allowed_by)",
        "us",
        overhead + url_us,
        Some(("bare loopback GET", get_us)),
    ));
    sec.note(format!(
        "per http.request effect (median of {} rounds of {} calls): check_cap {cap_us:.2} us (canonicalize params, URL parse and match), check_policy {pol_us:.2} us (3 rules, the last allows), sign {sign_us:.2} us (payload hash, signing bytes, ed25519), verify {verify_us:.2} us (payload hash, public key parse, ed25519); the dispatcher's URL re-check {url_us:.2} us; together {:.1} us = {:.0}% of a bare loopback GET ({get_us:.1} us: connect, request, response, close, sequential, {gets} per round)",
        plan.rounds,
        plan.calls,
        overhead + url_us,
        (overhead + url_us) / get_us * 100.0
    ));
    let served = server.served.load(Ordering::Relaxed);
    server.stop();
    sec.note(format!(
        "loopback server: std TcpListener on 127.0.0.1, {} accept threads, one HTTP/1.1 response per connection (Connection: close); client ureq {}; it served {served} requests",
        2 * IN_FLIGHT,
        "3.x (the adapters' version, no TLS)"
    ));
    Ok(sec)
}
