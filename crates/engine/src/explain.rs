//! `tether network explain SRC DST[:PORT[/tcp|udp]]`: why SRC can or cannot reach DST.
//!
//! Walks tether's model and the live kernel state along the path a connection would take
//! and reports each hop: how SRC resolves DST's name (its /etc/hosts entries from
//! `--add-host` and `--link`, then the embedded DNS, which answers only names of the
//! networks SRC is on), the networks they share (internal networks, `enable_icc`, gateway
//! modes), for a client outside the host the published mapping and its host address, and
//! whether DST listens on PORT in its own namespace and on which address (the kernel's
//! socket tables). The first failing hop comes with the fix, as a command where there is
//! one. With `probe`, SRC really connects (TCP, from its own namespace) and the answer
//! says whether the model and reality agree.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::Serialize;
use tether_net::firewall::{GatewayMode, Proto};
use tether_net::sockets::{self, ProbeOutcome};

use crate::networks::{bridge_of, gateway_mode, opt};
use crate::sandbox::{dns_names, mode, Mode};
use crate::state::{Container, Network};
use crate::{Engine, EngineError, State};

/// One step of the path.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Hop {
    /// What is checked: "source", "name", "network", "route", "publish", "listen".
    pub step: &'static str,
    /// Whether the path holds at this step.
    pub ok: bool,
    /// What was found, in words.
    pub detail: String,
}

/// What `--probe` found.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Probe {
    /// Whether a connection was tried at all (TCP, from a container or the host, to a
    /// resolved address and port).
    pub probed: bool,
    /// Whether the TCP handshake completed.
    pub reachable: bool,
    /// The outcome in words.
    pub detail: String,
    /// Whether the probe agrees with the model's verdict.
    pub agrees: bool,
}

/// The answer of [`Engine::explain`] (GET /tether/v1/explain).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Explanation {
    /// SRC as given.
    pub source: String,
    /// DST as given (without the port).
    pub destination: String,
    /// The port, when one was given.
    pub port: Option<u16>,
    /// "tcp" or "udp".
    pub proto: String,
    /// The verdict: every hop holds.
    pub reachable: bool,
    /// The hops, in path order; the walk stops at the first that fails.
    pub hops: Vec<Hop>,
    /// The fix for the first failing hop, as a command where there is one.
    pub fix: Option<String>,
    /// The address SRC would connect to, when the model resolves one.
    pub target: Option<String>,
    /// The probe's result, when asked for.
    pub probe: Option<Probe>,
}

/// Parses `DST[:PORT[/tcp|udp]]` (an IPv6 address with a port goes in brackets:
/// `[fd00::2]:80`).
///
/// Errors: a port that is not a number from 1 to 65535, a protocol other than tcp/udp.
pub fn parse_target(s: &str) -> Result<(String, Option<u16>, Proto), EngineError> {
    let bad = |what: &str| {
        EngineError::InvalidParam(format!(
            "invalid destination {s:?}: {what}; expected DST[:PORT[/tcp|udp]] (IPv6 with a port as [ADDR]:PORT)"
        ))
    };
    let (host, rest) = if let Some(r) = s.strip_prefix('[') {
        let (h, rest) = r.split_once(']').ok_or_else(|| bad("no closing ]"))?;
        (h.to_string(), rest.strip_prefix(':'))
    } else if s.parse::<IpAddr>().is_ok() {
        (s.to_string(), None)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(bad("no destination"));
    }
    let Some(rest) = rest else {
        return Ok((host, None, Proto::Tcp));
    };
    let (port, proto) = match rest.split_once('/') {
        Some((p, "tcp")) => (p, Proto::Tcp),
        Some((p, "udp")) => (p, Proto::Udp),
        Some((_, other)) => return Err(bad(&format!("protocol {other:?} is not tcp or udp"))),
        None => (rest, Proto::Tcp),
    };
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| bad(&format!("port {port:?} is not a number from 1 to 65535")))?;
    Ok((host, Some(port), proto))
}

/// Where a path starts or ends.
#[derive(Clone, Debug)]
enum Point {
    /// A container (running or not).
    Ctr(Box<Container>),
    /// The host (the daemon's network namespace).
    Host,
    /// An address that is neither a container's nor the host's: another host.
    Addr(IpAddr),
}

/// The container holding `ip` on one of its endpoints.
fn container_by_ip(st: &State, ip: IpAddr) -> Option<&Container> {
    st.containers.values().find(|c| {
        c.endpoints.values().any(|e| {
            e.ip.map(IpAddr::V4) == Some(ip) || e.ip6.map(|(a, _, _)| IpAddr::V6(a)) == Some(ip)
        })
    })
}

/// The networks `c` has a live endpoint on, with their records.
fn live_networks<'a>(st: &'a State, c: &Container) -> Vec<&'a Network> {
    c.attachments
        .iter()
        .filter(|(n, _)| c.endpoints.contains_key(n))
        .filter_map(|(_, a)| st.networks.get(&a.network_id))
        .collect()
}

fn names(nets: &[&Network]) -> String {
    let v: Vec<&str> = nets.iter().map(|n| n.name.as_str()).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The address of `c`'s endpoint on network `net` (IPv4 first).
fn addr_on(c: &Container, net: &str) -> Option<IpAddr> {
    let e = c.endpoints.get(net)?;
    e.ip.map(IpAddr::V4)
        .or_else(|| e.ip6.map(|(a, _, _)| IpAddr::V6(a)))
}

/// Builds the explanation hop by hop.
struct Walk {
    hops: Vec<Hop>,
    fix: Option<String>,
}

impl Walk {
    fn ok(&mut self, step: &'static str, detail: String) {
        self.hops.push(Hop {
            step,
            ok: true,
            detail,
        });
    }
    fn fail(&mut self, step: &'static str, detail: String, fix: Option<String>) {
        self.hops.push(Hop {
            step,
            ok: false,
            detail,
        });
        self.fix = fix;
    }
    fn failed(&self) -> bool {
        self.hops.iter().any(|h| !h.ok)
    }
}

impl Engine {
    /// GET /tether/v1/explain?src=SRC&dst=DST[:PORT[/PROTO]][&probe=1]: whether and why
    /// SRC reaches DST (see the module docs). SRC: a container, `host`, or an address;
    /// DST: a container, `host`, an address, or a name as SRC would type it.
    ///
    /// Errors: 404 unknown SRC container; 400 a malformed DST.
    pub async fn explain(
        &self,
        src: &str,
        dst: &str,
        probe: bool,
    ) -> Result<Explanation, EngineError> {
        let (dst_name, port, proto) = parse_target(dst)?;
        let st = self.state.lock().await;
        let host_addrs: Vec<IpAddr> = self
            .nl
            .addresses()
            .await
            .map(|v| v.into_iter().map(|(_, a, _)| a).collect())
            .unwrap_or_default();
        let point = |s: &str| -> Result<Point, EngineError> {
            if s == "host" {
                return Ok(Point::Host);
            }
            if let Ok(ip) = s.parse::<IpAddr>() {
                return Ok(match container_by_ip(&st, ip) {
                    Some(c) => Point::Ctr(Box::new(c.clone())),
                    None if host_addrs.contains(&ip) || ip.is_loopback() => Point::Host,
                    None => Point::Addr(ip),
                });
            }
            Ok(Point::Ctr(Box::new(st.container(s)?.clone())))
        };
        let mut w = Walk {
            hops: Vec::new(),
            fix: None,
        };
        let mut src_p = point(src)?;
        // the source: running, with a network of its own
        if let Point::Ctr(c) = &src_p {
            let m = mode(c.host_config.network_mode.as_deref().unwrap_or(""));
            if c.state.status != "running" {
                w.fail(
                    "source",
                    format!("{} is {}, not running", c.name, c.state.status),
                    Some(format!("tether start {}", c.name)),
                );
            } else if m == Mode::None {
                w.fail(
                    "source",
                    format!("{} has no network (--network none)", c.name),
                    Some(format!("tether network connect NETWORK {}", c.name)),
                );
            } else if m == Mode::Host {
                w.ok(
                    "source",
                    format!("{} uses the host's network (--network host)", c.name),
                );
                src_p = Point::Host;
            } else if let Mode::Container(other) = m {
                let o = st.container(&other)?.clone();
                w.ok(
                    "source",
                    format!("{} shares the network namespace of {}", c.name, o.name),
                );
                src_p = Point::Ctr(Box::new(o));
            } else {
                let nets = live_networks(&st, c);
                w.ok(
                    "source",
                    format!("{} is running, on network(s) {}", c.name, names(&nets)),
                );
            }
        }
        let mut target: Option<IpAddr> = None;
        let mut via_net: Option<String> = None;
        let dst_p = if w.failed() {
            None
        } else {
            self.resolve(
                &st,
                &src_p,
                &dst_name,
                &host_addrs,
                &mut w,
                &mut target,
                &mut via_net,
            )?
        };
        if let (false, Some(d)) = (w.failed(), dst_p.as_ref()) {
            self.path(
                &st,
                &src_p,
                d,
                port,
                proto,
                &mut w,
                &mut target,
                via_net.as_deref(),
            );
        }
        if let (false, Some(d), Some(p)) = (w.failed(), dst_p.as_ref(), port) {
            listen_check(&src_p, d, p, proto, &mut w);
        }
        let reachable = !w.failed();
        let probe = if probe {
            Some(self.explain_probe(&src_p, target, port, proto, reachable))
        } else {
            None
        };
        Ok(Explanation {
            source: src.to_string(),
            destination: dst_name,
            port,
            proto: proto.as_str().into(),
            reachable,
            hops: w.hops,
            fix: w.fix,
            target: target.map(|t| match port {
                Some(p) => SocketAddr::new(t, p).to_string(),
                None => t.to_string(),
            }),
            probe,
        })
    }

    /// Resolves the destination as the source would, recording the name hop.
    #[allow(clippy::too_many_arguments)]
    fn resolve(
        &self,
        st: &State,
        src: &Point,
        name: &str,
        host_addrs: &[IpAddr],
        w: &mut Walk,
        target: &mut Option<IpAddr>,
        via_net: &mut Option<String>,
    ) -> Result<Option<Point>, EngineError> {
        if name == "host" {
            return Ok(Some(Point::Host));
        }
        if let Ok(ip) = name.parse::<IpAddr>() {
            *target = Some(ip);
            return Ok(Some(match container_by_ip(st, ip) {
                Some(c) => Point::Ctr(Box::new(c.clone())),
                None if host_addrs.contains(&ip) || ip.is_loopback() => Point::Host,
                None => Point::Addr(ip),
            }));
        }
        let Point::Ctr(s) = src else {
            // the host does not resolve container names: the name means the container
            let c = st.container(name)?;
            w.ok(
                "name",
                format!(
                    "{name} is the container {}; the host itself does not resolve container names, so address it by IP",
                    c.name
                ),
            );
            return Ok(Some(Point::Ctr(Box::new(c.clone()))));
        };
        // /etc/hosts: --add-host entries
        for h in s.host_config.extra_hosts.clone().unwrap_or_default() {
            let (n, ip) = h
                .split_once(':')
                .or_else(|| h.split_once('='))
                .unwrap_or((h.as_str(), ""));
            if n != name {
                continue;
            }
            if ip == "host-gateway" {
                w.ok(
                    "name",
                    format!(
                        "{name} resolves from {}'s /etc/hosts (--add-host {h}) to the host",
                        s.name
                    ),
                );
                return Ok(Some(Point::Host));
            }
            let Ok(ip) = ip.parse::<IpAddr>() else {
                continue;
            };
            w.ok(
                "name",
                format!(
                    "{name} resolves from {}'s /etc/hosts (--add-host {h}) to {ip}",
                    s.name
                ),
            );
            *target = Some(ip);
            return Ok(Some(match container_by_ip(st, ip) {
                Some(c) => Point::Ctr(Box::new(c.clone())),
                None if host_addrs.contains(&ip) => Point::Host,
                None => Point::Addr(ip),
            }));
        }
        // /etc/hosts: legacy links
        for l in s.host_config.links.clone().unwrap_or_default() {
            let (t, alias) = l.split_once(':').unwrap_or((l.as_str(), l.as_str()));
            let t = t.trim_start_matches('/');
            let alias = alias.rsplit('/').next().unwrap_or(alias);
            if alias != name && t != name {
                continue;
            }
            if let Ok(o) = st.container(t) {
                w.ok(
                    "name",
                    format!(
                        "{name} resolves from {}'s /etc/hosts (--link {l}) to {}",
                        s.name, o.name
                    ),
                );
                return Ok(Some(Point::Ctr(Box::new(o.clone()))));
            }
        }
        // the embedded DNS: names of the networks the source is on
        let src_nets = live_networks(st, s);
        for n in src_nets.iter().filter(|n| n.dns) {
            for c in st.containers.values() {
                let Some((net_name, att)) =
                    c.attachments.iter().find(|(_, a)| a.network_id == n.id)
                else {
                    continue;
                };
                if !c.endpoints.contains_key(net_name) {
                    continue;
                }
                if dns_names(c, att)
                    .iter()
                    .any(|x| x.eq_ignore_ascii_case(name))
                {
                    let ip = addr_on(c, net_name);
                    w.ok(
                        "name",
                        format!(
                            "the embedded DNS (127.0.0.11) answers {name} on network {} with {}",
                            n.name,
                            ip.map(|i| i.to_string()).unwrap_or_default()
                        ),
                    );
                    *target = ip;
                    *via_net = Some(net_name.clone());
                    return Ok(Some(Point::Ctr(Box::new(c.clone()))));
                }
            }
        }
        // not in scope: a container of that name elsewhere?
        let other = st.containers.values().find(|c| {
            c.name == name
                || c.attachments
                    .iter()
                    .any(|(_, a)| a.aliases.iter().any(|x| x == name))
        });
        let user_nets: Vec<&&Network> = src_nets.iter().filter(|n| n.dns).collect();
        match other {
            Some(o) if user_nets.is_empty() => {
                let dnets = live_networks(st, o);
                let fix = match dnets.iter().find(|n| n.dns) {
                    Some(n) => format!("tether network connect {} {}", n.name, s.name),
                    None => format!(
                        "tether network create app-net && tether network connect app-net {} && tether network connect app-net {}",
                        s.name, o.name
                    ),
                };
                w.fail(
                    "name",
                    format!(
                        "{} is only on the default bridge network, where the embedded DNS does not run: {name} does not resolve (\"bad address\")",
                        s.name
                    ),
                    Some(fix),
                );
            }
            Some(o) => {
                let dnets = live_networks(st, o);
                let fix = dnets
                    .iter()
                    .find(|n| n.dns)
                    .map(|n| format!("tether network connect {} {}", n.name, s.name));
                w.fail(
                    "name",
                    format!(
                        "{name} is out of {}'s scope: it is a container on network(s) {}, and the embedded DNS answers only names of {}'s networks ({})",
                        s.name,
                        names(&dnets),
                        s.name,
                        names(&src_nets)
                    ),
                    fix,
                );
            }
            None => w.fail(
                "name",
                format!(
                    "{name} is no container, alias or /etc/hosts entry tether knows; {}'s DNS forwards it to the upstream resolvers",
                    s.name
                ),
                Some(format!("check the name: tether ps, or tether network inspect on {}'s networks", s.name)),
            ),
        }
        Ok(None)
    }

    /// The network path between the two ends, recording its hops.
    #[allow(clippy::too_many_arguments)]
    fn path(
        &self,
        st: &State,
        src: &Point,
        dst: &Point,
        port: Option<u16>,
        proto: Proto,
        w: &mut Walk,
        target: &mut Option<IpAddr>,
        via_net: Option<&str>,
    ) {
        match (src, dst) {
            (Point::Ctr(s), Point::Ctr(d)) if s.id == d.id => {
                *target = Some(IpAddr::from([127, 0, 0, 1]));
                w.ok(
                    "network",
                    format!("{} talks to itself over its own loopback", s.name),
                );
            }
            (Point::Ctr(s), Point::Ctr(d)) => {
                if d.state.status != "running" {
                    w.fail(
                        "network",
                        format!("{} is {}, not running", d.name, d.state.status),
                        Some(format!("tether start {}", d.name)),
                    );
                    return;
                }
                let snets = live_networks(st, s);
                let dnets = live_networks(st, d);
                let shared: Vec<&Network> = snets
                    .iter()
                    .filter(|n| dnets.iter().any(|m| m.id == n.id))
                    .copied()
                    .collect();
                let pick = via_net
                    .and_then(|v| shared.iter().find(|n| n.name == v))
                    .or_else(|| shared.first());
                let Some(n) = pick else {
                    let fix = dnets
                        .first()
                        .map(|n| format!("tether network connect {} {}", n.name, s.name));
                    w.fail(
                        "network",
                        format!(
                            "{} and {} share no network ({}: {}; {}: {}); tether isolates networks from each other",
                            s.name,
                            d.name,
                            s.name,
                            names(&snets),
                            d.name,
                            names(&dnets)
                        ),
                        fix,
                    );
                    return;
                };
                let icc = bridge_of(n).map(|b| b.icc).unwrap_or(true);
                if !icc {
                    w.fail(
                        "network",
                        format!(
                            "{} and {} share network {}, but it has {}=false: its containers cannot talk to each other",
                            s.name,
                            d.name,
                            n.name,
                            opt::ICC
                        ),
                        Some(format!(
                            "connect both to a network without {}=false: tether network create app-net && tether network connect app-net {} && tether network connect app-net {}",
                            opt::ICC, s.name, d.name
                        )),
                    );
                    return;
                }
                if target.is_none() {
                    *target = addr_on(d, &n.name);
                }
                w.ok(
                    "network",
                    format!(
                        "{} and {} share network {}{} ({} at {})",
                        s.name,
                        d.name,
                        n.name,
                        if n.internal {
                            " (internal: fine between its members)"
                        } else {
                            ""
                        },
                        d.name,
                        target.map(|t| t.to_string()).unwrap_or_default()
                    ),
                );
            }
            (Point::Ctr(s), Point::Host) => {
                let nets = live_networks(st, s);
                let out = nets
                    .iter()
                    .find(|n| gateway_mode(n, opt::GATEWAY_MODE4) != GatewayMode::Isolated);
                match out {
                    Some(n) => {
                        let gw = s
                            .endpoints
                            .get(&n.name)
                            .and_then(|e| e.gateway.map(IpAddr::V4).or(e.ip6.map(|(_, _, g)| IpAddr::V6(g))));
                        if target.map(|t| t.is_loopback()).unwrap_or(false) {
                            w.fail(
                                "route",
                                format!(
                                    "127.0.0.1 inside {} is the container's own loopback, not the host's",
                                    s.name
                                ),
                                Some(format!(
                                    "address the host at its gateway address {} (or --add-host host.docker.internal:host-gateway)",
                                    gw.map(|g| g.to_string()).unwrap_or_default()
                                )),
                            );
                            return;
                        }
                        if target.is_none() {
                            *target = gw;
                        }
                        w.ok(
                            "route",
                            format!(
                                "{} reaches the host through network {} (gateway {})",
                                s.name,
                                n.name,
                                gw.map(|g| g.to_string()).unwrap_or_default()
                            ),
                        );
                    }
                    None => w.fail(
                        "route",
                        format!(
                            "{} is only on network(s) {} in gateway mode isolated: the bridge has no address, the host is out of reach",
                            s.name,
                            names(&nets)
                        ),
                        Some(format!("tether network connect NETWORK {}", s.name)),
                    ),
                }
            }
            (Point::Ctr(s), Point::Addr(a)) => {
                let nets = live_networks(st, s);
                match nets.iter().find(|n| !n.internal) {
                    Some(n) => {
                        let nat = gateway_mode(n, opt::GATEWAY_MODE4).masquerades();
                        w.ok(
                            "route",
                            format!(
                                "{} leaves through network {} to {a}{}",
                                s.name,
                                n.name,
                                if nat { ", masqueraded to the host's address" } else { " with its own address (gateway mode routed)" }
                            ),
                        );
                    }
                    None => w.fail(
                        "route",
                        format!(
                            "{} is only on --internal network(s) {}: no traffic leaves them",
                            s.name,
                            names(&nets)
                        ),
                        Some(format!("connect {} to a network that is not internal: tether network connect NETWORK {}", s.name, s.name)),
                    ),
                }
            }
            (Point::Host, Point::Ctr(d)) => {
                if d.state.status != "running" {
                    w.fail(
                        "network",
                        format!("{} is {}, not running", d.name, d.state.status),
                        Some(format!("tether start {}", d.name)),
                    );
                    return;
                }
                let nets = live_networks(st, d);
                let reachable = nets
                    .iter()
                    .find(|n| gateway_mode(n, opt::GATEWAY_MODE4) != GatewayMode::Isolated);
                match reachable {
                    Some(n) => {
                        if target.is_none() {
                            *target = addr_on(d, &n.name);
                        }
                        w.ok(
                            "route",
                            format!(
                                "the host reaches {} directly on network {} at {}",
                                d.name,
                                n.name,
                                target.map(|t| t.to_string()).unwrap_or_default()
                            ),
                        );
                    }
                    None => w.fail(
                        "route",
                        format!(
                            "{} is only on isolated network(s) {}: the host has no route to it",
                            d.name,
                            names(&nets)
                        ),
                        None,
                    ),
                }
            }
            (Point::Addr(a), Point::Ctr(d)) => {
                let Some(p) = port else {
                    w.fail(
                        "publish",
                        format!(
                            "from {a} (outside the host) only published ports reach {}",
                            d.name
                        ),
                        Some("give the port: tether network explain SRC DST:PORT".into()),
                    );
                    return;
                };
                let published: Vec<_> = d
                    .ports
                    .iter()
                    .filter(|m| m.container_port == p && m.proto == proto)
                    .collect();
                let key = format!("{p}/{proto}");
                if published.is_empty() {
                    let exposed = d
                        .config
                        .exposed_ports
                        .as_ref()
                        .map(|e| e.contains(&key))
                        .unwrap_or(false);
                    let detail = if exposed {
                        format!("{key} of {} is exposed but not published: EXPOSE (--expose) only documents a port, it opens nothing on the host", d.name)
                    } else {
                        format!("{key} of {} is not published on the host", d.name)
                    };
                    w.fail(
                        "publish",
                        detail,
                        Some(format!(
                            "run {} with -p {p}:{p}{} (tether run -p {p}:{p} ...)",
                            d.name,
                            if proto == Proto::Udp { "/udp" } else { "" }
                        )),
                    );
                    return;
                }
                let open: Vec<_> = published
                    .iter()
                    .filter(|m| !m.host_ip.map(|i| i.is_loopback()).unwrap_or(false))
                    .collect();
                match open.first() {
                    Some(m) => w.ok(
                        "publish",
                        format!(
                            "{key} of {} is published on {}:{}",
                            d.name,
                            m.host_ip
                                .map(|i| i.to_string())
                                .unwrap_or_else(|| "0.0.0.0".into()),
                            m.host_port
                        ),
                    ),
                    None => {
                        let hp = published[0].host_port;
                        w.fail(
                            "publish",
                            format!(
                                "{key} of {} is published on 127.0.0.1:{hp} only: reachable from this host alone, never from {a}",
                                d.name
                            ),
                            Some(format!("publish it on every address: -p {hp}:{p} instead of -p 127.0.0.1:{hp}:{p}")),
                        );
                    }
                }
            }
            _ => w.ok(
                "route",
                "no container on this path: tether's model has nothing to add".into(),
            ),
        }
    }

    /// The `--probe`: a TCP connection from the source's namespace to the target.
    fn explain_probe(
        &self,
        src: &Point,
        target: Option<IpAddr>,
        port: Option<u16>,
        proto: Proto,
        model: bool,
    ) -> Probe {
        let no = |detail: &str| Probe {
            probed: false,
            reachable: false,
            detail: detail.into(),
            agrees: true,
        };
        if proto != Proto::Tcp {
            return no("not probed: only TCP can be probed");
        }
        let (Some(t), Some(p)) = (target, port) else {
            return no("not probed: no address and port to connect to");
        };
        let ns = match src {
            Point::Ctr(c) => match &c.sandbox {
                Some(sb) => Some(sb.clone()),
                None => return no("not probed: the source has no network namespace"),
            },
            Point::Host => None,
            Point::Addr(_) => return no("not probed: tether cannot connect from another host"),
        };
        let outcome =
            sockets::probe_tcp(ns.as_deref(), SocketAddr::new(t, p), Duration::from_secs(2));
        let (reachable, detail) = match outcome {
            ProbeOutcome::Connected => (true, format!("connected to {}", SocketAddr::new(t, p))),
            ProbeOutcome::Refused => (
                false,
                format!("{} refused the connection", SocketAddr::new(t, p)),
            ),
            ProbeOutcome::TimedOut => (
                false,
                format!(
                    "no answer from {} within 2 s (dropped)",
                    SocketAddr::new(t, p)
                ),
            ),
            ProbeOutcome::Failed(e) => (false, e),
        };
        Probe {
            probed: true,
            reachable,
            agrees: reachable == model,
            detail,
        }
    }
}

/// Whether something listens on `port` in the destination's namespace, and where.
fn listen_check(src: &Point, dst: &Point, port: u16, proto: Proto, w: &mut Walk) {
    let (pid, who) = match dst {
        Point::Ctr(d) => (d.state.pid.max(0) as u32, d.name.clone()),
        Point::Host => (std::process::id(), "the host".to_string()),
        Point::Addr(_) => return,
    };
    let found = sockets::listeners(pid, proto, port);
    let same = matches!((src, dst), (Point::Ctr(s), Point::Ctr(d)) if s.id == d.id)
        || matches!((src, dst), (Point::Host, Point::Host));
    let list: BTreeSet<String> = found.iter().map(|a| a.to_string()).collect();
    let list: Vec<String> = list.into_iter().collect();
    if found.is_empty() {
        w.fail(
            "listen",
            format!("nothing listens on {port}/{proto} in {who}"),
            Some(format!(
                "start the server in {who} on 0.0.0.0:{port}, or use the port it listens on"
            )),
        );
    } else if sockets::loopback_only(&found) && !same {
        w.fail(
            "listen",
            format!(
                "{who} listens on {} only: a loopback address is out of reach from any other namespace{}",
                list.join(", "),
                if matches!(dst, Point::Ctr(_)) { " (127.0.0.1 inside a container is the container's own)" } else { "" }
            ),
            Some(format!("make the server in {who} listen on 0.0.0.0:{port} (all addresses)")),
        );
    } else {
        w.ok("listen", format!("{who} listens on {}", list.join(", ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(parse_target("db").unwrap(), ("db".into(), None, Proto::Tcp));
        assert_eq!(
            parse_target("db:5432").unwrap(),
            ("db".into(), Some(5432), Proto::Tcp)
        );
        assert_eq!(
            parse_target("dns:53/udp").unwrap(),
            ("dns".into(), Some(53), Proto::Udp)
        );
        assert_eq!(
            parse_target("fd00::2").unwrap(),
            ("fd00::2".into(), None, Proto::Tcp)
        );
        assert_eq!(
            parse_target("[fd00::2]:80").unwrap(),
            ("fd00::2".into(), Some(80), Proto::Tcp)
        );
        for bad in ["db:0", "db:70000", "db:x", "db:80/sctp", "[fd00::2", ":80"] {
            let e = parse_target(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }
}
