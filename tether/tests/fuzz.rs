//! Generated requests against every create endpoint of the Engine API (containers,
//! networks, volumes, exec, network connect): JSON bodies mixing the fields each endpoint
//! reads (plausible and wild values) with random keys, bodies that are not JSON, and random
//! query strings. Property-based (proptest, with shrinking to the smallest failing body),
//! bounded in cases and in time. The daemon must never answer 5xx, never hang, never
//! panic, and once everything the requests made is removed again nothing may be left:
//! no link but loopback and the default bridge, no firewall element, no volume or
//! container directory.
//!
//! Bind-mount sources are generated only under the test's own directory; nothing is
//! started (only `network connect` touches the kernel, on the test's own namespace).

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{try_http_unix_raw, Daemon, IMAGE};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{json, Map, Value};

/// Generated cases per endpoint.
const CASES: u32 = 500;
/// Wall-clock budget for all endpoints together; cases past it are skipped.
const BUDGET: Duration = Duration::from_secs(150);
/// An answer slower than this is a hang.
const HANG: Duration = Duration::from_secs(20);

fn weird_string() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        "[a-z0-9][a-z0-9_.-]{0,15}",
        "[ -~]{0,40}",
        "\\PC{0,12}",
        Just("a".repeat(300)),
        Just("../../../../etc/passwd".to_string()),
        Just("lo".to_string()),
        Just("tether0".to_string()),
        Just("127.0.0.1".to_string()),
        Just("0.0.0.0/0".to_string()),
        Just("::1".to_string()),
        Just("-1".to_string()),
        Just("99999999999999999999999".to_string()),
        Just("tbox:latest".to_string()),
        Just("\u{0}x".to_string()),
    ]
    .boxed()
}

fn any_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop_oneof![
            Just(-1i64),
            Just(0),
            Just(1),
            Just(i64::MAX),
            Just(i64::MIN)
        ]
        .prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        weird_string().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(weird_string(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Mostly `plausible`, sometimes any JSON at all.
fn or_wild(plausible: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop_oneof![4 => plausible, 1 => any_json()].boxed()
}

fn s(re: &'static str) -> BoxedStrategy<Value> {
    prop_oneof![3 => re.prop_map(Value::from), 1 => weird_string().prop_map(Value::from)].boxed()
}

fn one_of(vals: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop_oneof![
        3 => prop::sample::select(vals).prop_map(Value::from),
        1 => weird_string().prop_map(Value::from),
    ]
    .boxed()
}

fn int() -> BoxedStrategy<Value> {
    prop_oneof![
        (-5i64..5).prop_map(Value::from),
        (0i64..10_000_000_000).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
    ]
    .boxed()
}

fn boolean() -> BoxedStrategy<Value> {
    any::<bool>().prop_map(Value::from).boxed()
}

fn strings(item: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop::collection::vec(item, 0..4)
        .prop_map(Value::from)
        .boxed()
}

fn string_map(key: BoxedStrategy<String>, val: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    prop::collection::btree_map(key, val, 0..4)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
        .boxed()
}

/// An object with each of `fields` present or not, each value mostly plausible, and now
/// and then a key nobody reads.
fn object(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let parts: Vec<BoxedStrategy<Option<(String, Value)>>> = fields
        .into_iter()
        .map(|(k, v)| {
            prop::option::weighted(0.6, or_wild(v).prop_map(move |v| (k.to_string(), v))).boxed()
        })
        .collect();
    (
        parts,
        prop::option::weighted(0.1, (weird_string(), any_json())),
    )
        .prop_map(|(parts, extra)| {
            let mut m: Map<String, Value> = parts.into_iter().flatten().collect();
            if let Some((k, v)) = extra {
                m.insert(k, v);
            }
            Value::Object(m)
        })
        .boxed()
}

fn ip() -> BoxedStrategy<Value> {
    prop_oneof![
        "172\\.(17|30)\\.[0-9]{1,3}\\.[0-9]{1,3}".prop_map(Value::from),
        "[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}\\.[0-9]{1,3}".prop_map(Value::from),
        "fd00::[0-9a-f]{1,4}".prop_map(Value::from),
        weird_string().prop_map(Value::from),
    ]
    .boxed()
}

fn cidr() -> BoxedStrategy<Value> {
    prop_oneof![
        "10\\.[0-9]{1,3}\\.0\\.0/[0-9]{1,2}".prop_map(Value::from),
        "[0-9]{1,3}\\.[0-9]{1,3}\\.0\\.0/[0-9]{1,2}".prop_map(Value::from),
        "fd[0-9a-f]{2}::/[0-9]{1,3}".prop_map(Value::from),
        weird_string().prop_map(Value::from),
    ]
    .boxed()
}

fn mac() -> BoxedStrategy<Value> {
    s("([0-9a-f]{2}:){5}[0-9a-f]{2}")
}

/// A request body; shown as (lossy) text in failure reports.
#[derive(Clone)]
struct Body(Vec<u8>);

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(&self.0))
    }
}

/// A body: mostly the JSON object, sometimes bytes that are not JSON.
fn body(obj: BoxedStrategy<Value>) -> BoxedStrategy<Body> {
    prop_oneof![
        8 => obj.prop_map(|v| v.to_string().into_bytes()),
        1 => "[ -~]{0,30}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..40),
    ]
    .prop_map(Body)
    .boxed()
}

/// Percent-encodes all but RFC 3986's unreserved characters.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A query string of up to three parameters, names from `names` or anything.
fn query(names: &'static [&'static str]) -> BoxedStrategy<String> {
    let name = prop_oneof![
        3 => prop::sample::select(names).prop_map(str::to_string),
        1 => weird_string(),
    ];
    prop::collection::vec((name, weird_string()), 0..3)
        .prop_map(|kv| {
            if kv.is_empty() {
                return String::new();
            }
            let q: Vec<String> = kv
                .iter()
                .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
                .collect();
            format!("?{}", q.join("&"))
        })
        .boxed()
}

fn container_create(dir: &Path) -> BoxedStrategy<Value> {
    let d = dir.display().to_string();
    let bind = {
        let d = d.clone();
        (
            "[a-z]{1,6}",
            "(/[a-z]{1,6}){1,2}",
            "(:(ro|rw|z|Z|nocopy|rshared|badmode|ro,z))?",
        )
            .prop_map(move |(src, dst, mode)| Value::from(format!("{d}/{src}:{dst}{mode}")))
            .boxed()
    };
    let mount = {
        let d = d.clone();
        object(vec![
            ("Type", one_of(&["bind", "volume", "tmpfs"])),
            (
                "Source",
                prop_oneof![
                    "[a-z]{1,6}".prop_map(move |x| Value::from(format!("{d}/{x}"))),
                    "[a-z]{1,8}".prop_map(Value::from),
                ]
                .boxed(),
            ),
            ("Target", s("(/[a-z]{1,6}){1,2}")),
            ("ReadOnly", boolean()),
        ])
    };
    let health = object(vec![
        (
            "Test",
            strings(one_of(&["CMD", "CMD-SHELL", "NONE", "true"])),
        ),
        ("Interval", int()),
        ("Timeout", int()),
        ("Retries", int()),
        ("StartPeriod", int()),
    ]);
    let host_config = object(vec![
        ("Memory", int()),
        ("MemorySwap", int()),
        ("CpuShares", int()),
        ("NanoCpus", int()),
        ("ShmSize", int()),
        (
            "PortBindings",
            string_map(
                "[0-9]{1,5}/(tcp|udp|sctp|x)".boxed(),
                strings(object(vec![
                    ("HostIp", ip()),
                    ("HostPort", s("[0-9]{1,5}(-[0-9]{1,5})?")),
                ])),
            ),
        ),
        (
            "NetworkMode",
            one_of(&[
                "bridge",
                "host",
                "none",
                "fuzznet",
                "container:target",
                "default",
            ]),
        ),
        (
            "RestartPolicy",
            object(vec![
                (
                    "Name",
                    one_of(&["no", "always", "unless-stopped", "on-failure"]),
                ),
                ("MaximumRetryCount", int()),
            ]),
        ),
        ("Binds", strings(bind)),
        ("Mounts", strings(mount)),
        ("Dns", strings(ip())),
        ("DnsSearch", strings(s("[a-z.]{1,12}"))),
        ("DnsOptions", strings(s("[a-z:0-9]{1,12}"))),
        (
            "ExtraHosts",
            strings(s("[a-z]{1,6}:([0-9.]{7,15}|host-gateway)")),
        ),
        ("Links", strings(s("target(:[a-z]{1,6})?"))),
        ("AutoRemove", boolean()),
        (
            "LogConfig",
            object(vec![
                ("Type", one_of(&["json-file", "none", "syslog"])),
                ("Config", string_map(weird_string(), s("[0-9a-z]{0,6}"))),
            ]),
        ),
        (
            "CapAdd",
            strings(one_of(&["NET_ADMIN", "ALL", "CAP_SYS_TIME"])),
        ),
        ("Privileged", boolean()),
        ("PublishAllPorts", boolean()),
    ]);
    let endpoint = object(vec![
        ("Aliases", strings(s("[a-z]{1,8}"))),
        (
            "IPAMConfig",
            object(vec![("IPv4Address", ip()), ("IPv6Address", ip())]),
        ),
        ("MacAddress", mac()),
        ("Links", strings(s("target(:[a-z]{1,6})?"))),
    ]);
    object(vec![
        (
            "Image",
            one_of(&["tbox:latest", "tbox", "nosuch:tag", "Bad/Name"]),
        ),
        ("Cmd", strings(s("[a-z]{1,8}"))),
        ("Entrypoint", strings(s("[a-z/]{1,8}"))),
        ("Env", strings(s("[A-Z]{1,5}=[a-z]{0,5}"))),
        ("Hostname", s("[a-z0-9-]{1,70}")),
        ("Domainname", s("[a-z.]{1,20}")),
        ("User", s("[a-z0-9:]{1,10}")),
        ("WorkingDir", s("(/[a-z]{1,6}){0,2}")),
        ("Labels", string_map(weird_string(), s("[a-z]{0,5}"))),
        (
            "ExposedPorts",
            string_map("[0-9]{1,6}(/(tcp|udp|x))?".boxed(), Just(json!({})).boxed()),
        ),
        ("MacAddress", mac()),
        ("StopSignal", one_of(&["SIGTERM", "KILL", "9", "SIGBOGUS"])),
        ("StopTimeout", int()),
        ("Healthcheck", health),
        ("Tty", boolean()),
        ("OpenStdin", boolean()),
        ("HostConfig", host_config),
        (
            "NetworkingConfig",
            object(vec![(
                "EndpointsConfig",
                string_map(
                    prop_oneof![
                        Just("fuzznet".to_string()),
                        Just("bridge".to_string()),
                        weird_string()
                    ]
                    .boxed(),
                    endpoint,
                ),
            )]),
        ),
    ])
}

fn network_create() -> BoxedStrategy<Value> {
    let config = object(vec![
        ("Subnet", cidr()),
        ("Gateway", ip()),
        ("IPRange", cidr()),
        ("AuxiliaryAddresses", string_map(weird_string(), ip())),
    ]);
    object(vec![
        ("Name", s("[a-z][a-z0-9_.-]{0,12}")),
        (
            "Driver",
            one_of(&["bridge", "host", "null", "overlay", "macvlan"]),
        ),
        ("Internal", boolean()),
        ("Attachable", boolean()),
        ("Ingress", boolean()),
        ("EnableIPv6", boolean()),
        ("EnableIPv4", boolean()),
        ("CheckDuplicate", boolean()),
        (
            "IPAM",
            object(vec![
                ("Driver", one_of(&["default", "null"])),
                (
                    "Config",
                    prop::collection::vec(config, 0..3)
                        .prop_map(Value::from)
                        .boxed(),
                ),
                ("Options", string_map(weird_string(), s("[a-z0-9]{0,5}"))),
            ]),
        ),
        (
            "Options",
            string_map(
                prop_oneof![
                    prop::sample::select(
                        &[
                            "com.docker.network.bridge.name",
                            "com.docker.network.driver.mtu",
                            "com.docker.network.bridge.enable_icc",
                            "com.docker.network.bridge.enable_ip_masquerade",
                        ][..]
                    )
                    .prop_map(str::to_string),
                    weird_string(),
                ]
                .boxed(),
                s("[a-z0-9]{1,16}"),
            ),
        ),
        ("Labels", string_map(weird_string(), s("[a-z]{0,5}"))),
    ])
}

fn volume_create() -> BoxedStrategy<Value> {
    object(vec![
        ("Name", s("[a-zA-Z0-9][a-zA-Z0-9_.-]{0,300}")),
        ("Driver", one_of(&["local", "nfs"])),
        (
            "DriverOpts",
            string_map(
                prop::sample::select(&["type", "device", "o", "size"][..])
                    .prop_map(str::to_string)
                    .boxed(),
                s("[a-z0-9=,]{0,10}"),
            ),
        ),
        ("Labels", string_map(weird_string(), s("[a-z]{0,5}"))),
    ])
}

fn exec_create() -> BoxedStrategy<Value> {
    object(vec![
        ("Cmd", strings(s("[a-z]{1,8}"))),
        ("Env", strings(s("[A-Z]{1,5}=[a-z]{0,5}"))),
        ("User", s("[a-z0-9:]{1,10}")),
        ("WorkingDir", s("(/[a-z]{1,6}){0,2}")),
        ("Tty", boolean()),
        ("AttachStdin", boolean()),
        ("AttachStdout", boolean()),
        ("AttachStderr", boolean()),
        ("DetachKeys", s("ctrl-[a-z@],ctrl-[a-z]")),
        ("Privileged", boolean()),
        ("ConsoleSize", strings(int())),
    ])
}

fn network_connect() -> BoxedStrategy<Value> {
    object(vec![
        ("Container", one_of(&["target", "nosuch"])),
        (
            "EndpointConfig",
            object(vec![
                ("Aliases", strings(s("[a-z]{1,8}"))),
                (
                    "IPAMConfig",
                    object(vec![("IPv4Address", ip()), ("IPv6Address", ip())]),
                ),
                ("MacAddress", mac()),
                ("Links", strings(s("target(:[a-z]{1,6})?"))),
                ("DriverOpts", string_map(weird_string(), s("[a-z]{0,5}"))),
            ]),
        ),
    ])
}

/// One endpoint under test.
struct Target {
    method: &'static str,
    path: String,
    query: &'static [&'static str],
    body: BoxedStrategy<Value>,
    /// Undo a success right away (so that the next case starts from the same state).
    undo: Option<fn(&Daemon, &Value)>,
}

fn disconnect(d: &Daemon, _: &Value) {
    let (st, v) = d.api(
        "POST",
        "/networks/fuzznet/disconnect",
        Some(&json!({"Container": "target", "Force": true})),
    );
    assert!(st < 500, "disconnect after a fuzzed connect: {st} {v}");
}

#[test]
fn generated_requests_to_every_create_endpoint() {
    let d = Daemon::start();
    d.ok(&["network", "create", "--subnet", "172.30.0.0/16", "fuzznet"]);
    d.run_d(&["--name", "target", IMAGE, "sleep", "600"]);
    let links_before = d.links();
    let targets = vec![
        Target {
            method: "POST",
            path: "/containers/create".into(),
            query: &["name", "platform"],
            body: container_create(d.dir()),
            undo: None,
        },
        Target {
            method: "POST",
            path: "/networks/create".into(),
            query: &["force"],
            body: network_create(),
            undo: None,
        },
        Target {
            method: "POST",
            path: "/volumes/create".into(),
            query: &["force"],
            body: volume_create(),
            undo: None,
        },
        Target {
            method: "POST",
            path: "/containers/target/exec".into(),
            query: &["force"],
            body: exec_create(),
            undo: None,
        },
        Target {
            method: "POST",
            path: "/networks/fuzznet/connect".into(),
            query: &["force"],
            body: network_connect(),
            undo: Some(disconnect),
        },
        Target {
            method: "POST",
            path: "/v99.0/containers/create".into(),
            query: &["name"],
            body: container_create(d.dir()),
            undo: None,
        },
    ];
    let deadline = Instant::now() + BUDGET;
    let sock = d.socket();
    let mut counts: Vec<(String, u32, BTreeSet<u16>)> = Vec::new();
    for t in targets {
        let mut runner = TestRunner::new(Config {
            cases: CASES,
            failure_persistence: None,
            max_shrink_iters: 200,
            ..Config::default()
        });
        let seen = std::cell::RefCell::new((0u32, BTreeSet::new()));
        let strategy = (body(t.body.clone()), query(t.query));
        let result = runner.run(&strategy, |(body, q)| {
            if Instant::now() > deadline {
                return Ok(());
            }
            let path = format!("{}{q}", t.path);
            let r = try_http_unix_raw(&sock, t.method, &path, &body.0, HANG)
                .map_err(|e| TestCaseError::fail(format!("no answer (hang or crash): {e}")))?;
            {
                let mut s = seen.borrow_mut();
                s.0 += 1;
                s.1.insert(r.status);
            }
            if r.status >= 500 {
                return Err(TestCaseError::fail(format!(
                    "{} {path} answered {}: {}\nbody: {}",
                    t.method,
                    r.status,
                    r.body.trim(),
                    String::from_utf8_lossy(&body.0)
                )));
            }
            if r.status < 300 {
                if let Some(undo) = t.undo {
                    undo(&d, &r.json());
                }
            } else if r.json()["message"].as_str().is_none_or(|m| m.is_empty()) {
                return Err(TestCaseError::fail(format!(
                    "{path} answered {} without a JSON message: {:?}",
                    r.status, r.body
                )));
            }
            Ok(())
        });
        if let Err(e) = result {
            panic!("{} {}: {e}", t.method, t.path);
        }
        let (n, statuses) = seen.into_inner();
        counts.push((format!("{} {}", t.method, t.path), n, statuses));
    }
    eprintln!("requests sent per endpoint (statuses seen): {counts:?}");
    for (what, n, statuses) in &counts {
        assert!(*n > 0, "{what}: no case ran");
        assert!(
            statuses.iter().any(|s| *s >= 400),
            "{what}: no request was refused, the generator is too tame: {statuses:?}"
        );
    }
    let log = std::fs::read_to_string(d.log_path()).unwrap_or_default();
    assert!(
        !log.contains("panicked"),
        "the daemon panicked:\n{}",
        d.log_tail(40)
    );

    // everything the requests made goes away again, and leaves nothing behind
    let (st, ctrs) = d.api("GET", "/containers/json?all=1", None);
    assert_eq!(st, 200);
    for c in ctrs.as_array().into_iter().flatten() {
        let id = c["Id"].as_str().unwrap_or_default();
        if c["Names"][0] == "/target" {
            continue;
        }
        let (st, v) = d.api("DELETE", &format!("/containers/{id}?force=1&v=1"), None);
        assert!(st == 204 || st == 404, "rm {id}: {st} {v}");
    }
    let (_, nets) = d.api("GET", "/networks", None);
    for n in nets.as_array().into_iter().flatten() {
        let name = n["Name"].as_str().unwrap_or_default();
        if ["bridge", "host", "none", "fuzznet"].contains(&name) {
            continue;
        }
        let (st, v) = d.api(
            "DELETE",
            &format!("/networks/{}", n["Id"].as_str().unwrap_or_default()),
            None,
        );
        assert_eq!(st, 204, "network rm {name}: {v}");
    }
    let (_, vols) = d.api("GET", "/volumes", None);
    for v in vols["Volumes"].as_array().into_iter().flatten() {
        let name = v["Name"].as_str().unwrap_or_default();
        let (st, body) = d.api("DELETE", &format!("/volumes/{}", pct(name)), None);
        assert_eq!(st, 204, "volume rm {name}: {body}");
    }
    assert_eq!(d.links_settled(&links_before), links_before, "links left");
    assert!(d.nft_tcp_ports().is_empty(), "published ports left");
    let bridges = d
        .ns(&["nft", "list", "set", "inet", "tether", "bridges"])
        .stdout;
    // tether0 and fuzznet's bridge only
    assert_eq!(
        bridges.matches("\"tb-").count(),
        1,
        "bridges in the firewall: {bridges}"
    );
    let entries = |p: &Path| std::fs::read_dir(p).map(|r| r.count()).unwrap_or(0);
    assert_eq!(
        entries(&d.root().join("volumes")),
        0,
        "volume directories left"
    );
    assert_eq!(
        entries(&d.root().join("containers")),
        1,
        "container directories left (only target's should be)"
    );
    d.ok(&["rm", "-f", "target"]);
    d.ok(&["network", "rm", "fuzznet"]);
}
