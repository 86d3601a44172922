//! Native benchmarks of the gateway core on the memory adapter (`cargo bench
//! --bench core`). They print numbers; they assert nothing about time.
//!
//! Upstreams here answer with canned bytes, so the figures are the gateway's
//! own CPU: parse, session lookup, registry, routing, forwarding bookkeeping,
//! merging, response building. Each figure is the median of several timed
//! runs of many iterations. A counting allocator reports the peak heap used
//! while serving one request, for the scale series.
//!
//! Every result is also printed as a `BENCH {json}` line for bench/run.py.

use futures_util::future::LocalBoxFuture;
use mcp_edge::adapters::memory::MemoryPlatform;
use mcp_edge::body::Body;
use mcp_edge::config::{Registry, Server};
use mcp_edge::gateway::merge::{self, Merged};
use mcp_edge::gateway::naming::Shown;
use mcp_edge::gateway::RequestMeta;
use mcp_edge::protocol::method::ListKind;
use mcp_edge::protocol::{jsonrpc, names};
use mcp_edge::Gateway;
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::Instant;

/// Counts live and peak heap bytes while `COUNTING` is on (off during timed
/// runs, so the counting does not weigh on the figures).
struct Counting;
static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            let live =
                LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed) + layout.size() as isize;
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Runs `f` `iters` times per run, 7 runs; prints and returns the median µs
/// per iteration. `BENCH_FILTER=text` runs only benchmarks whose name has it.
fn bench(name: &str, iters: u32, mut f: impl FnMut()) -> f64 {
    if std::env::var("BENCH_FILTER").is_ok_and(|f| !name.contains(&f)) {
        return f64::NAN;
    }
    for _ in 0..iters.min(1000) {
        f(); // warm up caches and the allocator
    }
    let mut per_iter: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / f64::from(iters)
        })
        .collect();
    per_iter.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = per_iter[per_iter.len() / 2];
    println!("{name:<48} {median:>10.2} µs/iter");
    println!("BENCH {}", json!({"name": name, "us": median}));
    median
}

/// A canned JSON answer.
fn canned(body: Vec<u8>, session: bool) -> http::Response<Body> {
    let mut b = http::Response::builder()
        .status(200)
        .header("content-type", "application/json");
    if session {
        b = b.header("mcp-session-id", "upstream-session");
    }
    b.body(Body::Full(body)).unwrap()
}

/// An upstream that answers initialize, notifications, echo calls and
/// tools/list (with `tools` tools) from canned bytes: it only reads the
/// envelope and splices the id in, so its own cost stays small.
fn mount_canned(p: &MemoryPlatform, url: &str, tools: usize) {
    // Tool 0 is the `echo` the call benchmarks make, so its arguments are
    // validated against a real schema as in production.
    let list: Vec<Value> = (0..tools)
        .map(|i| match i {
            0 => json!({"name": "echo", "description": "echoes text", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}),
            _ => json!({"name": format!("tool-{i}"), "description": "a benchmark tool", "inputSchema": {"type": "object", "properties": {"x": {"type": "number"}}}}),
        })
        .collect();
    let list = std::rc::Rc::new(serde_json::to_string(&json!({"tools": list})).unwrap());
    p.http.mount_fn(url, move |req| {
        let list = list.clone();
        Box::pin(async move {
            let answer = |id: &jsonrpc::Id, result: &str| {
                let id = serde_json::to_string(id).unwrap();
                format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{result}}}"#).into_bytes()
            };
            match jsonrpc::parse_message(req.body()).unwrap() {
                jsonrpc::Message::Request(r) if r.method == "initialize" => canned(
                    answer(&r.id, r#"{"protocolVersion":"2025-06-18","capabilities":{},"serverInfo":{"name":"canned","version":"1"}}"#),
                    true,
                ),
                jsonrpc::Message::Request(r) if r.method == "tools/list" => canned(answer(&r.id, &list), false),
                jsonrpc::Message::Request(r) => canned(answer(&r.id, r#"{"content":[{"type":"text","text":"hi"}]}"#), false),
                _ => http::Response::builder().status(202).body(Body::empty()).unwrap(),
            }
        }) as LocalBoxFuture<'static, _>
    });
}

/// A gateway in front of `servers` canned upstreams with `tools` tools each.
fn setup(servers: usize, tools: usize) -> (Rc<Gateway>, Rc<MemoryPlatform>) {
    let p = MemoryPlatform::default();
    p.http.record_sent(false);
    for i in 0..servers {
        let url = format!("http://s{i}.test/mcp");
        mount_canned(&p, &url, tools);
        let entry = json!({"endpoints": [{"region": "us", "url": url}]});
        p.kv.put(&format!("servers/s{i}"), &entry.to_string());
    }
    let key_hash = mcp_edge::identity::sha256_hex(BENCH_KEY.as_bytes());
    p.kv.put(
        &format!("auth/apikeys/{key_hash}"),
        r#"{"subject":"bench"}"#,
    );
    (Rc::new(Gateway::new(Default::default())), Rc::new(p))
}

/// The API key the pipeline benchmarks authenticate with.
const BENCH_KEY: &str = "mk_bench";

fn post(body: &Value, session: Option<&str>) -> http::Request<Vec<u8>> {
    let mut b = http::Request::post("http://gw.test/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("x-api-key", BENCH_KEY);
    if let Some(s) = session {
        b = b
            .header("mcp-session-id", s)
            .header("mcp-protocol-version", "2025-06-18");
    }
    b.body(body.to_string().into_bytes()).unwrap()
}

async fn send(gw: &Rc<Gateway>, p: &Rc<MemoryPlatform>, req: http::Request<Vec<u8>>) -> Vec<u8> {
    let resp = gw.handle(p, req, &RequestMeta::default()).await;
    assert!(resp.status().is_success(), "{}", resp.status());
    resp.into_body().collect(usize::MAX).await.unwrap()
}

/// Opens a session and warms every upstream session and the registry cache.
async fn session(gw: &Rc<Gateway>, p: &Rc<MemoryPlatform>) -> String {
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}});
    let resp = gw
        .handle(p, post(&init, None), &RequestMeta::default())
        .await;
    let id = resp.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_string();
    send(
        gw,
        p,
        post(
            &json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}),
            Some(&id),
        ),
    )
    .await;
    id
}

/// Authentication: cold signature checks per algorithm, a cached token, and
/// the whole tools/call pipeline with a JWT caller.
fn auth(rt: &tokio::runtime::Runtime) {
    use jwt_compact::{AlgorithmExt, Claims, Header};
    use mcp_edge::identity::config::Issuer;
    use mcp_edge::identity::jwks::KeySet;
    let keys: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/test_keys.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let public = |name: &str| {
        let mut k = keys[name].clone();
        for d in ["d", "p", "q", "dp", "dq", "qi"] {
            k.as_object_mut().unwrap().remove(d);
        }
        k
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = || {
        let custom = json!({"iss": "https://id.test", "aud": "http://gw.test/mcp", "sub": "alice", "scope": "mcp:tools"});
        let mut c = Claims::new(custom.as_object().unwrap().clone());
        c.expiration = chrono::DateTime::from_timestamp(now + 3600, 0);
        c
    };
    let jwk = |name: &str| keys[name].to_string();
    let sign = |name: &str, kid: &str| -> String {
        let j = jwk(name);
        let key: jwt_compact::jwk::JsonWebKey<'_> = serde_json::from_str(&j).unwrap();
        let h = Header::empty().with_key_id(kid);
        match name {
            "rsa" => jwt_compact::alg::Rsa::rs256().token(
                &h,
                &claims(),
                &jwt_compact::alg::RsaPrivateKey::try_from(&key).unwrap(),
            ),
            "ec" => jwt_compact::alg::Es256.token(
                &h,
                &claims(),
                &p256::ecdsa::SigningKey::try_from(&key).unwrap(),
            ),
            _ => jwt_compact::alg::Ed25519.token(
                &h,
                &claims(),
                &ed25519_compact::SecretKey::try_from(&key).unwrap(),
            ),
        }
        .unwrap()
    };
    let set = json!({"keys": [public("rsa"), public("ec"), public("ed")]});
    let issuer = Issuer::parse(
        "corp",
        &json!({"issuer": "https://id.test", "jwks": set}).to_string(),
    )
    .unwrap();
    let keyset = KeySet::parse(&set.to_string()).unwrap();
    let audiences = vec!["http://gw.test/mcp".to_string()];
    let now_ms = now as u64 * 1000;
    for (alg, key, kid) in [
        ("ES256", "ec", "ec-1"),
        ("RS256", "rsa", "rsa-1"),
        ("EdDSA", "ed", "ed-1"),
    ] {
        let token = sign(key, kid);
        bench(&format!("auth: cold {alg} verification"), 500, || {
            std::hint::black_box(
                mcp_edge::identity::jwt::verify(&token, &issuer, &keyset, None, &audiences, now_ms)
                    .unwrap(),
            );
        });
    }
    // The whole pipeline with a JWT caller: the token is verified once, then cached.
    let (gw, p) = setup(4, 50);
    p.kv.put(
        "auth/issuers/corp",
        &json!({"issuer": "https://id.test", "jwks": set}).to_string(),
    );
    let bearer = format!("Bearer {}", sign("ec", "ec-1"));
    let with_jwt = |body: &Value, session: Option<&str>| {
        let mut req = post(body, session);
        req.headers_mut().remove("x-api-key");
        req.headers_mut()
            .insert("authorization", bearer.parse().unwrap());
        req
    };
    let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}});
    let sid = rt.block_on(async {
        let resp = gw
            .handle(&p, with_jwt(&init, None), &RequestMeta::default())
            .await;
        resp.headers()["mcp-session-id"]
            .to_str()
            .unwrap()
            .to_string()
    });
    let call = json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"s2__echo","arguments":{"text":"hi"}}});
    bench(
        "pipeline: tools/call, JWT caller (cached verification)",
        20_000,
        || {
            rt.block_on(send(&gw, &p, with_jwt(&call, Some(&sid))));
        },
    );
}

/// A policy like a platform team's: 20 rules (globs, teams, roles, a deny)
/// and three limits that cover the benchmark call (per principal, per server,
/// per tool), none of which is ever reached.
fn bench_policy() -> String {
    let mut rules: Vec<Value> = (0..18)
        .map(|i| json!({"name": format!("team-{i}"), "effect": "allow", "subjects": {"teams": [format!("team-{i}")]}, "servers": [format!("other-{i}-*")]}))
        .collect();
    rules.push(json!({"name": "bench", "effect": "allow", "subjects": {"service_accounts": ["bench"]}, "servers": ["s*"]}));
    rules.push(json!({"name": "no-drops", "effect": "deny", "subjects": {"everyone": true}, "tools": ["drop_*"]}));
    json!({
        "rules": rules,
        "limits": [
            {"name": "per-user", "per": "principal", "requests": 1_000_000_000u64, "window_secs": 60},
            {"name": "per-server", "per": "server", "servers": ["s*"], "requests": 1_000_000_000u64, "window_secs": 1},
            {"name": "per-tool", "per": "tool", "tools": ["echo"], "daily": 1_000_000_000u64}
        ]
    })
    .to_string()
}

/// What governance costs: policy evaluation and rate-limit checks alone, and
/// the whole `tools/call` pipeline with and without the policy.
fn governance(rt: &tokio::runtime::Runtime) {
    use mcp_edge::governance::{gcra, limits, policy::Policy};
    use mcp_edge::identity::Principal;
    let policy = Policy::parse(&bench_policy()).unwrap();
    let principal = Principal {
        subject: "bench".into(),
        teams: vec!["eng".into()],
        via: "apikey".into(),
        ..Principal::anonymous()
    };
    let server =
        Server::parse("s2", r#"{"endpoints":[{"region":"us","url":"http://x/"}]}"#).unwrap();
    bench("policy: allow/deny of one tool, 20 rules", 200_000, || {
        std::hint::black_box(policy.allows_tool(&principal, &server, "echo"));
    });
    let mut state = [None; 3];
    let mut now = 1_700_000_000_000u64;
    bench(
        "rate limit: 3 counters (keys + GCRA/daily math)",
        200_000,
        || {
            now += 1;
            for (i, c) in limits::counters(&policy.limits, &principal, &server, "echo")
                .iter()
                .enumerate()
            {
                let (d, next) = gcra::step(c.quota, state[i], now, 1);
                std::hint::black_box(d);
                if next.is_some() {
                    state[i] = next;
                }
            }
        },
    );

    // The same call through two gateways, without and with the policy,
    // measured in alternating rounds so drift hits both alike.
    let call = json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"s2__echo","arguments":{"text":"hi"}}});
    let (plain_gw, plain_p) = setup(4, 50);
    let (gov_gw, gov_p) = setup(4, 50);
    gov_p.kv.put("policy", &bench_policy());
    let plain_sid = rt.block_on(session(&plain_gw, &plain_p));
    let gov_sid = rt.block_on(session(&gov_gw, &gov_p));
    // Both must really make the call (a refusal would be cheaper).
    for (gw, p, sid) in [
        (&plain_gw, &plain_p, &plain_sid),
        (&gov_gw, &gov_p, &gov_sid),
    ] {
        let answer = rt.block_on(send(gw, p, post(&call, Some(sid))));
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert_eq!(answer["result"]["content"][0]["text"], "hi", "{answer}");
    }
    let round = |gw: &Rc<Gateway>, p: &Rc<MemoryPlatform>, sid: &str| {
        let t = Instant::now();
        for _ in 0..2_000 {
            rt.block_on(send(gw, p, post(&call, Some(sid))));
        }
        t.elapsed().as_secs_f64() * 1e6 / 2_000.0
    };
    if std::env::var("BENCH_FILTER").is_ok_and(|f| !"pipeline: governance".contains(&f)) {
        return;
    }
    round(&plain_gw, &plain_p, &plain_sid);
    round(&gov_gw, &gov_p, &gov_sid);
    let (mut plain, mut governed) = (Vec::new(), Vec::new());
    for _ in 0..11 {
        governed.push(round(&gov_gw, &gov_p, &gov_sid));
        plain.push(round(&plain_gw, &plain_p, &plain_sid));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    let (plain, governed) = (median(&mut plain), median(&mut governed));
    for (name, us) in [
        ("pipeline: governance off, tools/call (interleaved)", plain),
        (
            "pipeline: governance on, tools/call, policy of 20 rules + 3 limits (interleaved)",
            governed,
        ),
        ("governance: added per tools/call", governed - plain),
    ] {
        println!("{name:<48} {us:>10.2} µs/iter");
        println!("BENCH {}", json!({"name": name, "us": us}));
    }
}

/// The PII scanners on the inputs that would make a naive scanner quadratic,
/// at 1 MiB and 2 MiB: the time per MiB must stay flat (linear), and a MiB
/// must scan well within a Workers request's CPU budget.
fn pii_worst_case() {
    use mcp_edge::governance::pii::{self, Kind};
    const TARGET_MS_PER_MIB: f64 = 50.0;
    println!("\npii worst case: every kind, 1 MiB and 2 MiB of each pattern (target <= {TARGET_MS_PER_MIB} ms/MiB, flat)");
    for (name, one) in pii::adversarial(1 << 20) {
        let two = pii::adversarial(2 << 20)
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| t)
            .unwrap_or_default();
        // The median of three scans: one scan of a shared machine's
        // moment is too noisy to hold against a target.
        let time = |text: &str| {
            let mut ms: Vec<f64> = (0..3)
                .map(|_| {
                    let t = Instant::now();
                    std::hint::black_box(pii::redact(text, &Kind::ALL));
                    t.elapsed().as_secs_f64() * 1e3
                })
                .collect();
            ms.sort_by(f64::total_cmp);
            ms[1]
        };
        let (a, b) = (time(&one), time(&two));
        let per_mib = a / (one.len() as f64 / (1 << 20) as f64);
        let verdict = if per_mib <= TARGET_MS_PER_MIB {
            "ok"
        } else {
            "MISS"
        };
        let label = format!("pii worst case: {name}");
        println!(
            "{label:<48} {a:>8.1} ms/MiB-ish  2 MiB {b:>8.1} ms  ({:.2}x)  {verdict}",
            b / a
        );
        println!(
            "BENCH {}",
            json!({"name": label, "ms_1mib": a, "ms_2mib": b})
        );
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    println!("mcp-edge core benchmarks (memory adapter, canned upstreams)\n");

    let call = json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"s0__echo","arguments":{"text":"hi"}}});
    let call_bytes = call.to_string().into_bytes();
    bench("parse: tools/call envelope", 200_000, || {
        std::hint::black_box(jsonrpc::parse_message(&call_bytes).unwrap());
    });

    let ids: Vec<String> = (0..20).map(|i| format!("server-{i}")).collect();
    bench("route: resolve a name among 20 servers", 200_000, || {
        std::hint::black_box(names::resolve("server-19__echo", ids.iter()));
    });

    let servers: Vec<Server> = (0..4)
        .map(|i| {
            Server::parse(
                &format!("s{i}"),
                r#"{"endpoints":[{"region":"us","url":"http://x/"}]}"#,
            )
            .unwrap()
        })
        .collect();
    let page = json!({"tools": (0..50).map(|i| json!({"name": format!("tool-{i}"), "description": "a benchmark tool", "inputSchema": {"type": "object", "properties": {"x": {"type": "number"}}}})).collect::<Vec<_>>()});
    let page = serde_json::value::to_raw_value(&page).unwrap();
    let gate = mcp_edge::governance::gate::Gate {
        principal: mcp_edge::identity::Principal::anonymous(),
        policy: None,
    };
    bench("merge: 4 pages x 50 tools (200) + serialize", 2_000, || {
        let mut m = Merged::default();
        for s in &servers {
            merge::add_page(&mut m, ListKind::Tools, s, &gate, &page, &Shown::prefixed());
        }
        std::hint::black_box(serde_json::to_vec(&m.items).unwrap());
    });

    let (gw, p) = setup(4, 50);
    let sid = rt.block_on(session(&gw, &p));
    let call = json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"s2__echo","arguments":{"text":"hi"}}});
    let core_call = bench(
        "pipeline: tools/call, steady state, API-key caller (4 servers)",
        20_000,
        || {
            rt.block_on(send(&gw, &p, post(&call, Some(&sid))));
        },
    );
    // A Spin instance lives for one request: a fresh gateway per call, its
    // registry, session and tool catalog read from the platform's stores.
    bench(
        "pipeline: tools/call, fresh gateway per call (Spin-like)",
        5_000,
        || {
            let fresh = Rc::new(Gateway::new(Default::default()));
            rt.block_on(send(&fresh, &p, post(&call, Some(&sid))));
        },
    );
    let list = json!({"jsonrpc":"2.0","id":8,"method":"tools/list"});
    bench("pipeline: tools/list, 4 servers x 50 tools", 2_000, || {
        rt.block_on(send(&gw, &p, post(&list, Some(&sid))));
    });
    auth(&rt);
    governance(&rt);
    pii_worst_case();

    println!("\nscale: tools/list as the registry grows (50 tools per server)");
    for n in [10usize, 25, 50, 100] {
        let (gw, p) = setup(n, 50);
        let sid = rt.block_on(session(&gw, &p));
        let us = bench(
            &format!("scale: tools/list, {n} servers, {} tools", n * 50),
            (2_000 / n as u32).max(20),
            || {
                rt.block_on(send(&gw, &p, post(&list, Some(&sid))));
            },
        );
        LIVE.store(0, Ordering::Relaxed);
        PEAK.store(0, Ordering::Relaxed);
        COUNTING.store(true, Ordering::Relaxed);
        let out = rt.block_on(send(&gw, &p, post(&list, Some(&sid))));
        COUNTING.store(false, Ordering::Relaxed);
        let peak = PEAK.load(Ordering::Relaxed).max(0) as usize;
        println!(
            "{:<48} {:>10} KiB peak heap, {} KiB answer",
            "",
            peak / 1024,
            out.len() / 1024
        );
        println!(
            "BENCH {}",
            json!({"name": format!("scale-{n}"), "servers": n, "tools": n * 50, "us": us, "peak_bytes": peak, "answer_bytes": out.len()})
        );
    }
    let registry = Registry::from_entries((0..100).map(|i| {
        (
            format!("servers/s{i}"),
            r#"{"endpoints":[{"region":"us","url":"http://x/"}]}"#.to_string(),
        )
    }));
    println!(
        "\n(core per tools/call: {core_call:.1} µs; registry of {} servers parsed)",
        registry.servers.len()
    );
}
