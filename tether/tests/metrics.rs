//! Metrics (`tether daemon --metrics-addr`): the endpoint serves the Prometheus text format
//! (parsed line by line with a Prometheus text parser, every sample of a declared family),
//! and the series move as networks are made, containers start and stop, DNS is queried
//! (local answers, forwards, NXDOMAIN, SERVFAIL with the upstream gone), the firewall is
//! rebuilt and a small pool fills up (one warning per crossing of 90 %). A bad address
//! stops the daemon with a clear error.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{in_netns, run_with_limit, Daemon, IMAGE, TETHER, UPSTREAM_NAME};
use prometheus_parse::{LineInfo, SampleType, Scrape, Value};

const ADDR: &str = "127.0.0.1:9323";

/// A raw HTTP/1.0 exchange with the metrics endpoint inside the daemon's namespace:
/// (status line, headers, body).
fn http_get(netns: &Path, path: &str) -> (String, String, String) {
    let req = format!("GET {path} HTTP/1.0\r\nHost: {ADDR}\r\n\r\n");
    let raw = in_netns(netns, move || {
        let mut s = std::net::TcpStream::connect(ADDR).expect("connect to the metrics address");
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("read timeout");
        s.write_all(req.as_bytes()).expect("send the request");
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).expect("read the response");
        String::from_utf8(buf).expect("the response is UTF-8")
    });
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {raw:?}"));
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_lowercase(), body.to_string())
}

/// One parsed scrape: every sample by name, with its labels and value.
struct Metrics {
    scrape: Scrape,
    text: String,
}

impl Metrics {
    /// Sum of the samples named `name` whose labels include `labels` (counters, gauges
    /// and the `_count`/`_sum` series of histograms).
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.scrape
            .samples
            .iter()
            .filter(|s| s.metric == name)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    }

    /// Whether any sample is named `name` with `labels`.
    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.scrape
            .samples
            .iter()
            .any(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
    }
}

/// Fetches /metrics and parses it, strictly: status 200 with the text format's content
/// type, every line a HELP, a TYPE or a sample, every sample of a family declared by a
/// TYPE line before it (a histogram's `_bucket`, `_sum` and `_count`), every value a
/// number, and each histogram's buckets cumulative, ending in `+Inf` equal to `_count`.
fn scrape(d: &Daemon) -> Metrics {
    let (status, headers, body) = http_get(&d.netns(), "/metrics");
    assert!(status.contains(" 200 "), "{status}\n{headers}\n{body}");
    assert!(
        headers.contains("content-type: text/plain; version=0.0.4"),
        "{headers}"
    );
    let mut types: HashMap<String, SampleType> = HashMap::new();
    for line in body.lines() {
        match LineInfo::parse(line) {
            LineInfo::Doc { .. } | LineInfo::Empty => {}
            LineInfo::Type {
                metric_name,
                metric_alias,
                sample_type,
            } => {
                let family = metric_alias.unwrap_or(metric_name);
                assert!(family.starts_with("tether_"), "{line}");
                assert!(
                    types.insert(family.clone(), sample_type).is_none(),
                    "family {family} declared twice"
                );
            }
            LineInfo::Sample {
                metric_name, value, ..
            } => {
                let declared = types.contains_key(metric_name)
                    || ["_bucket", "_sum", "_count"].iter().any(|sfx| {
                        metric_name
                            .strip_suffix(sfx)
                            .is_some_and(|f| types.get(f) == Some(&SampleType::Histogram))
                    });
                assert!(declared, "sample of an undeclared family: {line}\n{body}");
                assert!(value.parse::<f64>().is_ok(), "not a number: {line}");
            }
            LineInfo::Ignored => panic!("not Prometheus text format: {line:?}\n{body}"),
        }
    }
    let scrape = Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).expect("parse");
    for s in &scrape.samples {
        if let Value::Histogram(buckets) = &s.value {
            let counts: Vec<f64> = buckets.iter().map(|b| b.count).collect();
            assert!(
                counts.windows(2).all(|w| w[0] <= w[1]),
                "{}: buckets not cumulative",
                s.metric
            );
            let inf = buckets
                .iter()
                .find(|b| b.less_than.is_infinite())
                .unwrap_or_else(|| panic!("{} has no +Inf bucket", s.metric));
            let labels: Vec<(&str, &str)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let m = Metrics {
                scrape: scrape.clone(),
                text: String::new(),
            };
            assert_eq!(
                inf.count,
                m.sum(&format!("{}_count", s.metric), &labels),
                "{}: +Inf bucket and _count differ",
                s.metric
            );
        }
    }
    Metrics { scrape, text: body }
}

/// Every family the daemon documents, with its type.
const FAMILIES: &[(&str, &str)] = &[
    ("tether_network_containers", "gauge"),
    ("tether_network_endpoints", "gauge"),
    ("tether_containers", "gauge"),
    ("tether_ipam_leased_addresses", "gauge"),
    ("tether_ipam_pool_addresses", "gauge"),
    ("tether_dns_queries_total", "counter"),
    ("tether_dns_answers_total", "counter"),
    ("tether_dns_forwards_total", "counter"),
    ("tether_dns_servfails_total", "counter"),
    ("tether_dns_query_duration_seconds", "histogram"),
    ("tether_endpoint_setup_duration_seconds", "histogram"),
    ("tether_nft_batch_duration_seconds", "histogram"),
    ("tether_firewall_repairs_total", "counter"),
];

fn answers(m: &Metrics) -> f64 {
    m.sum("tether_dns_answers_total", &[])
}

/// Scrapes until every DNS query counted has been answered (a forwarded query of a
/// client that gave up may still be on its way), at most 10 s.
fn scrape_settled(d: &Daemon) -> Metrics {
    let mut m = scrape(d);
    for _ in 0..100 {
        if answers(&m) == m.sum("tether_dns_queries_total", &[]) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        m = scrape(d);
    }
    m
}

fn warnings(d: &Daemon, network: &str) -> usize {
    let log = std::fs::read_to_string(d.log_path()).unwrap_or_default();
    let needle = format!("IPAM pool of network {network} is");
    log.lines().filter(|l| l.contains(&needle)).count()
}

#[test]
fn metrics_move_with_containers_dns_and_firewall() {
    let mut d = Daemon::start_with(&["--metrics-addr", ADDR]);
    let m0 = scrape(&d);
    for (family, ty) in FAMILIES {
        assert!(
            m0.text.contains(&format!("# TYPE {family} {ty}\n")),
            "no {family} ({ty}) in:\n{}",
            m0.text
        );
    }
    // The predefined networks are there from the start, with nothing on them.
    assert_eq!(
        m0.sum("tether_network_endpoints", &[("network", "bridge")]),
        0.0
    );
    assert_eq!(m0.sum("tether_containers", &[("state", "running")]), 0.0);
    let (status, _, _) = http_get(&d.netns(), "/nothing-here");
    assert!(status.contains(" 404 "), "{status}");

    // A network: its series appear (a /24: 253 addresses to hand out), an nft batch ran.
    d.ok(&["network", "create", "--subnet", "10.77.0.0/24", "mnet"]);
    let m1 = scrape(&d);
    let net = [("network", "mnet")];
    let pool4 = [("network", "mnet"), ("family", "ipv4")];
    assert_eq!(m1.sum("tether_network_containers", &net), 0.0);
    assert_eq!(m1.sum("tether_network_endpoints", &net), 0.0);
    assert_eq!(m1.sum("tether_ipam_leased_addresses", &pool4), 0.0);
    assert_eq!(m1.sum("tether_ipam_pool_addresses", &pool4), 253.0);
    let nft = "tether_nft_batch_duration_seconds_count";
    assert!(m1.sum(nft, &[]) > m0.sum(nft, &[]), "no nft batch counted");

    // Two containers on it (one created only): containers, endpoints, leases, setups.
    for name in ["c1", "c2"] {
        d.run_d(&["--name", name, "--network", "mnet", IMAGE, "sleep", "600"]);
    }
    d.ok(&["create", "--name", "c3", "--network", "mnet", IMAGE, "true"]);
    let m2 = scrape(&d);
    assert_eq!(m2.sum("tether_network_containers", &net), 3.0);
    assert_eq!(m2.sum("tether_network_endpoints", &net), 2.0);
    assert_eq!(m2.sum("tether_ipam_leased_addresses", &pool4), 2.0);
    assert_eq!(m2.sum("tether_containers", &[("state", "running")]), 2.0);
    assert_eq!(m2.sum("tether_containers", &[("state", "created")]), 1.0);
    let setups = "tether_endpoint_setup_duration_seconds_count";
    assert_eq!(
        m2.sum(setups, &[("result", "ok")]) - m1.sum(setups, &[("result", "ok")]),
        2.0
    );
    assert!(
        m2.sum("tether_endpoint_setup_duration_seconds_sum", &[]) > 0.0,
        "endpoint setups took no time"
    );

    // DNS: a container name (local), a name the upstream knows and one it does not
    // (forwarded: NOERROR and NXDOMAIN).
    let q0 = m2.sum("tether_dns_queries_total", &[]);
    let o = d.sh("c1", "nslookup c2 127.0.0.11");
    assert!(o.success(), "{o}");
    let o = d.sh("c1", &format!("nslookup {UPSTREAM_NAME} 127.0.0.11"));
    assert!(o.success(), "{o}");
    let o = d.sh("c1", "nslookup nosuch.test 127.0.0.11");
    assert!(!o.success(), "nosuch.test resolved: {o}");
    let m3 = scrape_settled(&d);
    let queries = m3.sum("tether_dns_queries_total", &[]);
    assert!(queries >= q0 + 3.0, "queries {q0} -> {queries}");
    // Every query was answered, and timed once.
    assert_eq!(answers(&m3), queries);
    let hist = "tether_dns_query_duration_seconds_count";
    assert_eq!(m3.sum(hist, &[]), queries);
    let delta = |name: &str, labels: &[(&str, &str)]| m3.sum(name, labels) - m2.sum(name, labels);
    assert!(delta(hist, &[("source", "local")]) >= 1.0, "{}", m3.text);
    assert!(
        delta(hist, &[("source", "forwarded")]) >= 2.0,
        "{}",
        m3.text
    );
    assert!(delta("tether_dns_answers_total", &[("rcode", "NOERROR")]) >= 2.0);
    assert!(delta("tether_dns_answers_total", &[("rcode", "NXDOMAIN")]) >= 1.0);
    assert!(delta("tether_dns_forwards_total", &[("result", "answered")]) >= 2.0);
    assert_eq!(delta("tether_dns_servfails_total", &[]), 0.0);

    // The upstream gone: SERVFAIL made by tether, the attempt refused.
    d.stop_upstream();
    let o = d.sh("c1", "nslookup gone.test 127.0.0.11");
    assert!(!o.success(), "gone.test resolved: {o}");
    let m4 = scrape_settled(&d);
    let delta = |name: &str, labels: &[(&str, &str)]| m4.sum(name, labels) - m3.sum(name, labels);
    assert!(delta("tether_dns_servfails_total", &[("reason", "no_upstream")]) >= 1.0);
    assert!(delta("tether_dns_answers_total", &[("rcode", "SERVFAIL")]) >= 1.0);
    assert!(
        delta("tether_dns_forwards_total", &[("result", "refused")])
            + delta("tether_dns_forwards_total", &[("result", "timeout")])
            >= 1.0,
        "{}",
        m4.text
    );
    assert_eq!(answers(&m4), m4.sum("tether_dns_queries_total", &[]));

    // A firewall rebuild on demand is a repair, and runs nft batches.
    d.ok(&["network", "reload-firewall"]);
    let m5 = scrape(&d);
    let repairs = "tether_firewall_repairs_total";
    assert_eq!(
        m5.sum(repairs, &[("result", "ok")]) - m4.sum(repairs, &[("result", "ok")]),
        1.0
    );
    assert!(m5.sum(nft, &[]) > m4.sum(nft, &[]));

    // Containers leave: the series go down, and the network's go away with it.
    d.ok(&["rm", "-f", "c2", "c3"]);
    let m6 = scrape(&d);
    assert_eq!(m6.sum("tether_network_containers", &net), 1.0);
    assert_eq!(m6.sum("tether_network_endpoints", &net), 1.0);
    assert_eq!(m6.sum("tether_ipam_leased_addresses", &pool4), 1.0);
    assert_eq!(m6.sum("tether_containers", &[("state", "running")]), 1.0);
    d.ok(&["rm", "-f", "c1"]);
    d.ok(&["network", "rm", "mnet"]);
    let m7 = scrape(&d);
    assert!(!m7.has("tether_network_containers", &net), "{}", m7.text);
    assert!(!m7.has("tether_ipam_pool_addresses", &pool4), "{}", m7.text);
    assert_eq!(m7.sum("tether_containers", &[("state", "running")]), 0.0);
}

#[test]
fn metrics_pool_warning_once_per_crossing() {
    let d = Daemon::start_with(&["--metrics-addr", ADDR]);
    // A /29: 8 addresses less network, broadcast and gateway = 5; 90 % is the fifth.
    d.ok(&["network", "create", "--subnet", "10.78.0.0/29", "tiny"]);
    for i in 1..=4 {
        d.run_d(&[
            "--name",
            &format!("t{i}"),
            "--network",
            "tiny",
            IMAGE,
            "sleep",
            "600",
        ]);
    }
    let m = scrape(&d);
    let pool4 = [("network", "tiny"), ("family", "ipv4")];
    assert_eq!(m.sum("tether_ipam_pool_addresses", &pool4), 5.0);
    assert_eq!(m.sum("tether_ipam_leased_addresses", &pool4), 4.0);
    assert_eq!(warnings(&d, "tiny"), 0, "warned at 80 %");
    d.run_d(&["--name", "t5", "--network", "tiny", IMAGE, "sleep", "600"]);
    assert_eq!(warnings(&d, "tiny"), 1, "{}", d.log_tail(20));
    // Scraping and staying over the threshold do not warn again.
    let m = scrape(&d);
    assert_eq!(m.sum("tether_ipam_leased_addresses", &pool4), 5.0);
    d.ok(&["restart", "-t", "0", "t5"]);
    assert_eq!(warnings(&d, "tiny"), 1, "{}", d.log_tail(20));
    // Back under it and over again: a second crossing, a second warning.
    d.ok(&["rm", "-f", "t5", "t4"]);
    d.run_d(&["--name", "t4", "--network", "tiny", IMAGE, "sleep", "600"]);
    assert_eq!(warnings(&d, "tiny"), 1);
    d.run_d(&["--name", "t5", "--network", "tiny", IMAGE, "sleep", "600"]);
    assert_eq!(warnings(&d, "tiny"), 2, "{}", d.log_tail(20));
}

#[test]
fn metrics_addr_is_checked() {
    let d = Daemon::start();
    // Off unless asked for: nothing listens on dockerd's port.
    let refused = in_netns(&d.netns(), || std::net::TcpStream::connect(ADDR).is_err());
    assert!(
        refused,
        "something listens on {ADDR} without --metrics-addr"
    );

    let dir = d.dir().join("second");
    let daemon_with = |addr: &str| {
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", d.netns().display()))
            .arg(format!("--mount={}", d.mntns().display()))
            .arg("--")
            .arg(TETHER)
            .arg("daemon")
            .arg("--root")
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("run"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("sock").display()))
            .args(["--metrics-addr", addr]);
        run_with_limit(cmd, Duration::from_secs(60))
    };
    // Not IP:PORT: refused by the flag parser.
    for bad in ["localhost", "127.0.0.1", "127.0.0.1:notaport", "[::1]9323"] {
        let o = daemon_with(bad);
        assert_eq!(o.code, 2, "--metrics-addr {bad}: {o}");
        assert!(
            o.stderr.contains("--metrics-addr") && o.stderr.contains("invalid"),
            "--metrics-addr {bad}: {o}"
        );
    }
    // An address of no interface here: the daemon stops before starting the engine.
    let o = daemon_with("192.0.2.1:9323");
    assert_eq!(o.code, 1, "{o}");
    assert!(
        o.stderr.contains("metrics address 192.0.2.1:9323")
            && o.stderr.contains("Cannot assign requested address"),
        "{o}"
    );
    assert!(!dir.join("root").exists(), "state made before failing: {o}");
}
