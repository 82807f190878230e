//! The firewall: one nftables table of tether's own (`inet tether`), programmed in atomic
//! batches. The table's layout and a restore go through `nft` ([`crate::libnft`]: JSON, see
//! libnftables-json(5), and nft's text syntax); the element changes of networks, ports,
//! isolated ports and host DNS guards go over nfnetlink directly ([`crate::nfelem`]), with
//! `nft` as the fallback when that socket cannot be opened.
//!
//! The ruleset is static; networks and published ports only add or delete set and map
//! elements (no rule and no chain per port or per container), so the cost of a change does
//! not grow with the number of networks, containers or ports already there, and publishing
//! 200 ports is one batch of 200 map elements:
//!
//! ```text
//! table inet tether {
//!   set bridges     { type ifname }                       # every tether bridge
//!   set nat_subnets { type ipv4_addr; flags interval }    # subnets masqueraded on the way out
//!   set nat_subnets6 { type ipv6_addr; flags interval }   # the same for IPv6
//!   set internal    { type ifname }                       # bridges of --internal networks
//!   map pub4      { type inet_proto . inet_service : ipv4_addr . inet_service }  # tcp . HP -> CIP . CP
//!   map pub4_addr { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service } # HOSTIP . tcp . HP
//!   map pub6      { type inet_proto . inet_service : ipv6_addr . inet_service }  # dual-stack networks
//!   chain guard       { type filter hook prerouting priority raw;
//!                       iifname @bridges ip daddr 127.0.0.0/8 drop }          # see below
//!   chain prerouting  { type nat hook prerouting priority dstnat;
//!                       ip daddr 127.0.0.0/8 return; fib daddr type local jump ports }
//!   chain output      { type nat hook output priority -100; fib daddr type local jump ports }
//!   chain ports       { dnat ip to ip daddr . meta l4proto . th dport map @pub4_addr
//!                       meta nfproto ipv4 dnat ip to meta l4proto . th dport map @pub4
//!                       meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @pub6 }
//!   chain postrouting { type nat hook postrouting priority srcnat;
//!                       ip saddr @nat_subnets oifname != @bridges masquerade
//!                       ip saddr 127.0.0.0/8 oifname @bridges masquerade }   # 127.0.0.1:HP -> container
//!   chain forward     { type filter hook forward priority filter;
//!                       ct state established,related accept; ct status dnat accept
//!                       iifname . oifname @icc accept                         # same-bridge pairs
//!                       iifname @internal drop; oifname @internal drop        # --internal
//!                       iifname @bridges oifname @bridges drop }              # network isolation
//! }
//! ```
//! `table bridge tether { set no_icc_ports { type ifname }; chain forward { type filter
//! hook forward priority 0; iifname @no_icc_ports oifname @no_icc_ports drop } }` stops
//! frames between the ports (host-side veths) of networks with `enable_icc=false`, with or
//! without br_netfilter (ports of different bridges never meet at layer 2).
//!
//! The host's loopback stays the host's: bridges get `route_localnet=1` (so that the host's
//! own connections to a port published on 127.0.0.1 can be DNAT'd to a container and
//! answered), and `guard` drops every packet from a bridge addressed to 127.0.0.0/8
//! before conntrack sees it, so a container's crafted packet cannot reach a service the
//! host binds to 127.0.0.1 (the class of CVE-2020-8558). Replies to the host's own
//! connections carry the gateway address at that point (they are de-NATed later).
//! `prerouting` never DNATs a packet that arrives addressed to 127.0.0.0/8: only the
//! `output` hook (the host itself) reaches ports published on 127.0.0.1, so a neighbour
//! that routes 127.0.0.1 to this host does not (moby#45610); the kernel then drops the
//! packet as martian.
//!
//! Traffic between containers of one bridge is switched at layer 2; it reaches the forward
//! hook only where br_netfilter is loaded (bridge-nf-call-iptables=1), and then the `icc`
//! set of (bridge, bridge) pairs lets it through before the isolation rule drops
//! everything else that goes from one tether bridge to another.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::nfelem::{Change, Elem, ElemSocket, Family, Part};

/// The nftables table tether owns.
pub const TABLE: &str = "tether";

/// Firewall errors.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    /// `nft` rejected a batch or could not run.
    #[error("nftables: {0}")]
    Nft(String),
}

/// Transport protocol of a published port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// TCP
    Tcp,
    /// UDP
    Udp,
}

impl Proto {
    /// "tcp" or "udp".
    pub fn as_str(&self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

impl std::fmt::Display for Proto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A bridge network's gateway mode for one address family
/// (`com.docker.network.bridge.gateway_mode_ipv4` / `_ipv6`, Docker 28's "Gateway modes"
/// in the port-publishing reference).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GatewayMode {
    /// Masquerade outgoing traffic; from outside the host only ports published on host
    /// addresses are reachable (direct routing to containers is filtered).
    #[default]
    Nat,
    /// As `Nat`, but with no filter against direct routing: every container port is
    /// reachable by routing to the container's address (the legacy behaviour).
    NatUnprotected,
    /// No NAT: containers' own addresses go out unchanged, published container ports are
    /// reachable by routing to the container's address, and host ports are not used.
    Routed,
    /// For `--internal` networks only: the bridge gets no address, so the network cannot
    /// reach the host either.
    Isolated,
}

impl GatewayMode {
    /// The option values Docker accepts, in its order.
    pub const VALUES: [&'static str; 4] = ["nat", "nat-unprotected", "routed", "isolated"];

    /// Parses an option value; None for anything but [`GatewayMode::VALUES`].
    pub fn parse(s: &str) -> Option<GatewayMode> {
        match s {
            "nat" => Some(GatewayMode::Nat),
            "nat-unprotected" => Some(GatewayMode::NatUnprotected),
            "routed" => Some(GatewayMode::Routed),
            "isolated" => Some(GatewayMode::Isolated),
            _ => None,
        }
    }

    /// Whether traffic leaving the host is masqueraded.
    pub fn masquerades(self) -> bool {
        matches!(self, GatewayMode::Nat | GatewayMode::NatUnprotected)
    }
}

/// Daemon-wide firewall settings.
#[derive(Clone, Copy, Debug, Default)]
pub struct FirewallConfig {
    /// dockerd's `--allow-direct-routing`: published container ports are reachable by
    /// routing to the container's address from any interface, in every gateway mode.
    pub allow_direct_routing: bool,
}

/// One published port: host `host_ip:host_port/proto` -> `container_ip:container_port`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Protocol.
    pub proto: Proto,
    /// Host address the port is bound to; None = every local address (0.0.0.0).
    pub host_ip: Option<Ipv4Addr>,
    /// Host port.
    pub host_port: u16,
    /// The endpoint's IPv4 address; None on an IPv6-only network (the port is then
    /// published over IPv6 only).
    pub container_ip: Option<Ipv4Addr>,
    /// The endpoint's IPv6 address on a dual-stack network: the port is published over
    /// IPv6 too (host addresses other than ::1; the kernel cannot DNAT IPv6 loopback).
    #[serde(default)]
    pub container_ip6: Option<std::net::Ipv6Addr>,
    /// Port inside the container.
    pub container_port: u16,
    /// The network's IPv4 gateway mode is `routed`: the port is opened on the container's
    /// address only, and no host port is mapped.
    #[serde(default)]
    pub routed4: bool,
    /// The same for IPv6.
    #[serde(default)]
    pub routed6: bool,
}

/// What the firewall needs to know of a network.
#[derive(Clone, Debug)]
pub struct NetworkRules {
    /// The bridge interface.
    pub bridge: String,
    /// The IPv4 subnet; None for an IPv6-only network.
    pub subnet: Option<Ipv4Net>,
    /// Masquerade traffic leaving the host (false for `--internal` networks).
    pub masquerade: bool,
    /// `--internal`: no traffic between the network and anything beyond its bridge.
    pub internal: bool,
    /// The IPv6 subnet of a dual-stack network (masqueraded unless internal).
    pub subnet6: Option<ipnet::Ipv6Net>,
    /// Inter-container communication inside the network (`enable_icc`, default true).
    /// Matters where br_netfilter sends bridged frames through the forward hook.
    pub icc: bool,
    /// IPv4 gateway mode.
    pub mode4: GatewayMode,
    /// IPv6 gateway mode.
    pub mode6: GatewayMode,
    /// Host interfaces from which published container ports may be reached by routing
    /// (`com.docker.network.bridge.trusted_host_interfaces`).
    pub trusted: Vec<String>,
}

/// The firewall driver interface. Every method is one atomic batch: it applies whole or
/// not at all, so a failure leaves the previous ruleset in place.
pub trait Firewall: Send + Sync {
    /// (Re)creates tether's table, empty of networks and ports.
    fn init(&self) -> Result<(), FirewallError>;
    /// Adds a network's bridge to isolation and its subnet to masquerading.
    fn add_network(&self, net: &NetworkRules) -> Result<(), FirewallError>;
    /// Removes what `add_network` added.
    fn remove_network(&self, net: &NetworkRules) -> Result<(), FirewallError>;
    /// Publishes `ports` for container `owner` (a short id, named in errors).
    fn add_ports(&self, owner: &str, ports: &[PortMapping]) -> Result<(), FirewallError>;
    /// Withdraws what `add_ports` published for `owner`.
    fn remove_ports(&self, owner: &str, ports: &[PortMapping]) -> Result<(), FirewallError>;
    /// Adds (or removes) bridge port `port` to the ports that may not talk to each other
    /// (endpoints of `enable_icc=false` networks).
    fn isolate_port(&self, port: &str, isolated: bool) -> Result<(), FirewallError>;
    /// Adds (or removes) gateway address `gw` to the addresses where the DNS for the host
    /// itself listens (names of every network): containers may not ask it.
    fn guard_host_dns(&self, gw: Ipv4Addr, on: bool) -> Result<(), FirewallError>;
    /// Deletes tether's tables.
    fn teardown(&self) -> Result<(), FirewallError>;
    /// At daemon start: keeps tether's tables when they exist with this build's layout (a
    /// restart: the published ports and networks they hold keep working), else creates
    /// them as [`Firewall::init`] does. Returns whether they were kept.
    fn adopt(&self) -> Result<bool, FirewallError> {
        self.init().map(|()| false)
    }
    /// Replaces every element of tether's sets and maps with `c` (networks, published
    /// ports, isolated bridge ports, host DNS guards), each family of sets in one
    /// transaction: an element that is in `c` is never missing meanwhile, one that is not
    /// is gone afterwards.
    fn sync(&self, c: &Contents) -> Result<(), FirewallError>;
}

/// What tether's tables hold beyond their fixed layout, rebuilt from the engine's records
/// (see [`Firewall::sync`]).
#[derive(Clone, Debug, Default)]
pub struct Contents {
    /// Every network's rules (bridge, subnets, modes).
    pub networks: Vec<NetworkRules>,
    /// Every running container's published ports.
    pub ports: Vec<PortMapping>,
    /// Bridge ports (host-side veths) of `enable_icc=false` networks.
    pub isolated_ports: Vec<String>,
    /// Gateway addresses where the DNS for the host listens.
    pub host_dns: Vec<Ipv4Addr>,
}

/// The sets filled from network rules, isolation and host DNS guards (JSON batch of
/// [`sync_batch`]), as (family, kind, name).
const SYNC_SETS: [(&str, &str, &str); 13] = [
    ("inet", "set", "bridges"),
    ("inet", "set", "icc"),
    ("inet", "set", "internal"),
    ("inet", "set", "nat_subnets"),
    ("inet", "set", "nat_subnets6"),
    ("inet", "set", "routed4"),
    ("inet", "set", "routed6"),
    ("inet", "set", "unprotected4"),
    ("inet", "set", "unprotected6"),
    ("inet", "set", "isolated"),
    ("inet", "set", "trusted"),
    ("inet", "set", "host_dns"),
    ("bridge", "set", "no_icc_ports"),
];

/// The JSON batch of [`Firewall::sync`] for everything but the port maps: flush the sets,
/// add the elements of `c`; exposed for tests.
pub fn sync_batch(c: &Contents) -> Value {
    let mut cmds: Vec<Value> = SYNC_SETS
        .iter()
        .map(|(family, kind, name)| json!({"flush": {*kind: {"family": family, "table": TABLE, "name": name}}}))
        .collect();
    for n in &c.networks {
        if let Some(a) = network_batch(n, true)["nftables"].as_array() {
            cmds.extend(a.iter().cloned());
        }
    }
    for p in &c.isolated_ports {
        if let Some(a) = isolate_port_batch(p, true)["nftables"].as_array() {
            cmds.extend(a.iter().cloned());
        }
    }
    for gw in &c.host_dns {
        cmds.push(json!({"add": {"element": with(t(), json!({"name": "host_dns", "elem": [gw.to_string()]}))}}));
    }
    json!({ "nftables": cmds })
}

/// The text batch of [`Firewall::sync`] for the port maps: flush them, add `ports`;
/// exposed for tests.
pub fn sync_ports_text(ports: &[PortMapping]) -> String {
    let mut out = String::new();
    for map in ["pub4", "pub4_addr", "pub6"] {
        out.push_str(&format!("flush map inet {TABLE} {map}\n"));
    }
    for set in ["published4", "published6"] {
        out.push_str(&format!("flush set inet {TABLE} {set}\n"));
    }
    out.push_str(&add_ports_text(ports));
    out
}

/// The name of the empty set that marks a table made by this build's layout: a hash
/// (FNV-1a) of the init batches, so that a daemon with another layout recreates it.
pub fn layout_marker(cfg: &FirewallConfig) -> String {
    let text = format!("{}{}", init_batch(), init_ports_text_unmarked(cfg));
    let mut h: u64 = 0xcbf29ce484222325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("layout_{h:016x}")
}

/// [`Firewall`] on nftables: the table's layout and its restore through `nft`
/// (JSON and text batches), the elements that networks, ports and guards add or delete
/// over nfnetlink directly ([`crate::nfelem`]).
#[derive(Default)]
pub struct Nftables {
    cfg: FirewallConfig,
    /// The element socket, of the namespace `new` ran in; None when it could not be
    /// opened (element changes then go through `nft` too).
    elems: Option<ElemSocket>,
}

impl Nftables {
    /// A firewall with the daemon-wide settings `cfg`, programming the network namespace
    /// of the calling thread.
    pub fn new(cfg: FirewallConfig) -> Nftables {
        let elems = ElemSocket::open()
            .map_err(|e| tracing::warn!(error = %e, "no nfnetlink socket: element changes go through nft"))
            .ok();
        Nftables { cfg, elems }
    }

    /// Applies `changes` over nfnetlink when the socket is open, else `fallback` (the same
    /// changes as an `nft` batch); timed for the metrics either way.
    fn elements(
        &self,
        changes: &[Change],
        fallback: impl FnOnce() -> Result<(), FirewallError>,
    ) -> Result<(), FirewallError> {
        match &self.elems {
            Some(sock) => crate::metrics::timed_batch(|| {
                tracing::debug!(?changes, "nft elements");
                sock.commit(TABLE, changes)
                    .map_err(|e| FirewallError::Nft(e.to_string()))
            }),
            None => fallback(),
        }
    }
}

fn t() -> Value {
    json!({"family": "inet", "table": TABLE})
}

fn with(base: Value, extra: Value) -> Value {
    let mut b = base;
    if let (Some(b), Some(e)) = (b.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    b
}

fn chain(name: &str) -> Value {
    with(t(), json!({"name": name}))
}

fn rule(chain: &str, expr: Value) -> Value {
    json!({"add": {"rule": with(t(), json!({"chain": chain, "expr": expr}))}})
}

fn m(left: Value, op: &str, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

/// The batch that (re)creates the table; exposed for tests.
pub fn init_batch() -> Value {
    let local = m(
        json!({"fib": {"result": "type", "flags": ["daddr"]}}),
        "==",
        json!("local"),
    );
    let jump_ports = json!({"jump": {"target": "ports"}});
    let loopback = json!({"prefix": {"addr": "127.0.0.0", "len": 8}});
    let base = |name: &str, ty: &str, hook: &str, prio: i32| json!({"add": {"chain": with(chain(name), json!({"type": ty, "hook": hook, "prio": prio, "policy": "accept"}))}});
    let cmds = vec![
        json!({"add": {"table": {"family": "inet", "name": TABLE}}}),
        json!({"delete": {"table": {"family": "inet", "name": TABLE}}}),
        json!({"add": {"table": {"family": "inet", "name": TABLE}}}),
        json!({"add": {"set": with(t(), json!({"name": "bridges", "type": "ifname"}))}}),
        json!({"add": {"set": with(t(), json!({"name": "nat_subnets", "type": "ipv4_addr", "flags": ["interval"]}))}}),
        json!({"add": {"set": with(t(), json!({"name": "icc", "type": ["ifname", "ifname"]}))}}),
        json!({"add": {"set": with(t(), json!({"name": "nat_subnets6", "type": "ipv6_addr", "flags": ["interval"]}))}}),
        json!({"add": {"set": with(t(), json!({"name": "internal", "type": "ifname"}))}}),
        // bridge family: frames between ports of a bridge with enable_icc=false
        json!({"add": {"table": {"family": "bridge", "name": TABLE}}}),
        json!({"delete": {"table": {"family": "bridge", "name": TABLE}}}),
        json!({"add": {"table": {"family": "bridge", "name": TABLE}}}),
        json!({"add": {"set": {"family": "bridge", "table": TABLE, "name": "no_icc_ports", "type": "ifname"}}}),
        json!({"add": {"chain": {"family": "bridge", "table": TABLE, "name": "forward", "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}}),
        json!({"add": {"rule": {"family": "bridge", "table": TABLE, "chain": "forward", "expr": [m(meta("iifname"), "==", json!("@no_icc_ports")), m(meta("oifname"), "==", json!("@no_icc_ports")), {"drop": null}]}}}),
        base("guard", "filter", "prerouting", -300),
        base("prerouting", "nat", "prerouting", -100),
        base("output", "nat", "output", -100),
        base("postrouting", "nat", "postrouting", 100),
        base("forward", "filter", "forward", 0),
        json!({"add": {"chain": chain("ports")}}),
        rule(
            "guard",
            json!([
                m(meta("iifname"), "==", json!("@bridges")),
                m(json!({"payload": {"protocol": "ip", "field": "daddr"}}), "==", loopback.clone()),
                {"drop": null}
            ]),
        ),
        rule(
            "prerouting",
            json!([
                m(json!({"payload": {"protocol": "ip", "field": "daddr"}}), "==", loopback),
                {"return": null}
            ]),
        ),
        rule("prerouting", json!([local.clone(), jump_ports.clone()])),
        rule("output", json!([local, jump_ports])),
        rule(
            "postrouting",
            json!([
                m(json!({"payload": {"protocol": "ip6", "field": "saddr"}}), "==", json!("@nat_subnets6")),
                m(meta("oifname"), "!=", json!("@bridges")),
                {"masquerade": null}
            ]),
        ),
        rule(
            "postrouting",
            json!([
                m(json!({"payload": {"protocol": "ip", "field": "saddr"}}), "==", json!("@nat_subnets")),
                m(meta("oifname"), "!=", json!("@bridges")),
                {"masquerade": null}
            ]),
        ),
        rule(
            "postrouting",
            json!([
                m(json!({"payload": {"protocol": "ip", "field": "saddr"}}), "==", json!({"prefix": {"addr": "127.0.0.0", "len": 8}})),
                m(meta("oifname"), "==", json!("@bridges")),
                {"masquerade": null}
            ]),
        ),
        rule(
            "forward",
            json!([
                m(json!({"ct": {"key": "state"}}), "in", json!(["established", "related"])),
                {"accept": null}
            ]),
        ),
        rule(
            "forward",
            json!([
                m(json!({"concat": [meta("iifname"), meta("oifname")]}), "==", json!("@icc")),
                {"accept": null}
            ]),
        ),
        rule(
            "forward",
            json!([m(meta("iifname"), "==", json!("@internal")), {"drop": null}]),
        ),
        rule(
            "forward",
            json!([m(meta("oifname"), "==", json!("@internal")), {"drop": null}]),
        ),
        rule(
            "forward",
            json!([m(json!({"ct": {"key": "status"}}), "in", json!("dnat")), {"accept": null}]),
        ),
    ];
    json!({"nftables": cmds})
}

/// The port maps and their lookups, the sets of the direct-routing filter and the rest
/// of the forward chain, in nft's text syntax: libnftables 1.0.x's JSON parser cannot
/// declare a map whose data is a concatenation (it makes a set of it), so this part of the
/// table goes in as text (nft(8) "MAPS", "NAT STATEMENTS"). Applied right after
/// [`init_batch`]; exposed for tests.
///
/// The forward chain's tail decides what reaches a bridge that is not a reply, not a
/// published port on a host address (DNAT) and not from the same bridge:
/// `routed` networks' published container ports (from anywhere, other networks too),
/// published container ports from a network's trusted interfaces or, with
/// `allow_direct_routing`, from any interface outside the bridges, anything to a
/// `nat-unprotected` network from outside the bridges; everything else from outside the
/// host is dropped (Docker 28's direct-routing filter), and so is everything between two
/// tether bridges.
pub fn init_ports_text(cfg: &FirewallConfig) -> String {
    format!(
        "{}add set inet {TABLE} {} {{ type ifname; }}\n",
        init_ports_text_unmarked(cfg),
        layout_marker(cfg)
    )
}

fn init_ports_text_unmarked(cfg: &FirewallConfig) -> String {
    let direct = if cfg.allow_direct_routing {
        format!(
            "add rule inet {TABLE} forward iifname != @bridges ip daddr . meta l4proto . th dport @published4 accept
add rule inet {TABLE} forward iifname != @bridges ip6 daddr . meta l4proto . th dport @published6 accept
"
        )
    } else {
        String::new()
    };
    format!(
        "add map inet {TABLE} pub4 {{ type inet_proto . inet_service : ipv4_addr . inet_service; }}
add map inet {TABLE} pub4_addr {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }}
add map inet {TABLE} pub6 {{ type inet_proto . inet_service : ipv6_addr . inet_service; }}
add set inet {TABLE} published4 {{ type ipv4_addr . inet_proto . inet_service; }}
add set inet {TABLE} published6 {{ type ipv6_addr . inet_proto . inet_service; }}
add set inet {TABLE} routed4 {{ type ifname; }}
add set inet {TABLE} routed6 {{ type ifname; }}
add set inet {TABLE} unprotected4 {{ type ifname; }}
add set inet {TABLE} unprotected6 {{ type ifname; }}
add set inet {TABLE} isolated {{ type ifname; }}
add set inet {TABLE} trusted {{ type ifname . ifname; }}
add set inet {TABLE} host_dns {{ type ipv4_addr; }}
add rule inet {TABLE} ports dnat ip to ip daddr . meta l4proto . th dport map @pub4_addr
add rule inet {TABLE} ports meta nfproto ipv4 dnat ip to meta l4proto . th dport map @pub4
add rule inet {TABLE} ports meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @pub6
add rule inet {TABLE} forward oifname @routed4 ip daddr . meta l4proto . th dport @published4 accept
add rule inet {TABLE} forward oifname @routed6 ip6 daddr . meta l4proto . th dport @published6 accept
add rule inet {TABLE} forward oifname @routed4 icmp type echo-request accept
add rule inet {TABLE} forward oifname @routed6 icmpv6 type echo-request accept
add rule inet {TABLE} forward iifname . oifname @trusted ip daddr . meta l4proto . th dport @published4 accept
add rule inet {TABLE} forward iifname . oifname @trusted ip6 daddr . meta l4proto . th dport @published6 accept
{direct}add rule inet {TABLE} forward meta nfproto ipv4 iifname != @bridges oifname @unprotected4 accept
add rule inet {TABLE} forward meta nfproto ipv6 iifname != @bridges oifname @unprotected6 accept
add rule inet {TABLE} forward iifname != @bridges oifname @bridges drop
add rule inet {TABLE} forward iifname @bridges oifname @bridges drop
add chain inet {TABLE} input {{ type filter hook input priority filter; policy accept; }}
add rule inet {TABLE} input iifname @isolated drop
add rule inet {TABLE} input iifname @bridges ip daddr @host_dns meta l4proto {{ tcp, udp }} th dport 53 drop
"
    )
}

/// The elements network `net` puts in tether's sets, as (set, element), in batch order.
fn network_elems(net: &NetworkRules) -> Vec<(&'static str, Elem)> {
    let bridge = || Part::Ifname(net.bridge.clone());
    let mut out = vec![("bridges", Elem::one(bridge()))];
    if net.icc {
        out.push(("icc", Elem::Key(vec![bridge(), bridge()])));
    }
    if net.internal {
        out.push(("internal", Elem::one(bridge())));
    }
    if let (true, true, Some(s6)) = (net.masquerade, net.mode6.masquerades(), net.subnet6) {
        out.push((
            "nat_subnets6",
            Elem::Prefix(Part::V6(s6.network()), s6.prefix_len()),
        ));
    }
    if let (true, true, Some(s4)) = (net.masquerade, net.mode4.masquerades(), net.subnet) {
        out.push((
            "nat_subnets",
            Elem::Prefix(Part::V4(s4.network()), s4.prefix_len()),
        ));
    }
    match net.mode4 {
        GatewayMode::Routed => out.push(("routed4", Elem::one(bridge()))),
        GatewayMode::NatUnprotected => out.push(("unprotected4", Elem::one(bridge()))),
        GatewayMode::Isolated => out.push(("isolated", Elem::one(bridge()))),
        GatewayMode::Nat => {}
    }
    match net.mode6 {
        GatewayMode::Routed if net.subnet6.is_some() => out.push(("routed6", Elem::one(bridge()))),
        GatewayMode::NatUnprotected if net.subnet6.is_some() => {
            out.push(("unprotected6", Elem::one(bridge())))
        }
        GatewayMode::Isolated if net.mode4 != GatewayMode::Isolated => {
            out.push(("isolated", Elem::one(bridge())))
        }
        _ => {}
    }
    for i in &net.trusted {
        out.push((
            "trusted",
            Elem::Key(vec![Part::Ifname(i.clone()), bridge()]),
        ));
    }
    out
}

/// A part of an element in libnftables' JSON (libnftables-json(5)): names and addresses
/// as strings, protocols by name, ports as numbers.
fn part_json(p: &Part) -> Value {
    match p {
        Part::Port(n) => json!(n),
        other => json!(other.to_string()),
    }
}

fn parts_json(parts: &[Part]) -> Value {
    match parts {
        [one] => part_json(one),
        many => json!({"concat": many.iter().map(part_json).collect::<Vec<_>>()}),
    }
}

/// An element in libnftables' JSON: a value, a concatenation, a prefix, or a map
/// element's `[key, data]`.
fn elem_json(e: &Elem) -> Value {
    match e {
        Elem::Key(k) => parts_json(k),
        Elem::Map(k, d) => json!([parts_json(k), parts_json(d)]),
        Elem::Prefix(a, len) => json!({"prefix": {"addr": a.to_string(), "len": len}}),
    }
}

/// The batch for `add_network` (`add` = true) or `remove_network`; exposed for tests.
/// Removal first adds the elements again (adding one that is there is no error), so that
/// it succeeds whatever part of them is already gone (a network whose set-up failed at
/// restore, a table recreated meanwhile) and still applies as one transaction.
pub fn network_batch(net: &NetworkRules, add: bool) -> Value {
    let adds: Vec<Value> = network_elems(net)
        .iter()
        .map(|(set, e)| json!({"add": {"element": with(t(), json!({"name": set, "elem": [elem_json(e)]}))}}))
        .collect();
    let mut cmds = adds.clone();
    if !add {
        cmds.extend(
            adds.iter()
                .filter_map(|c| c.get("add").map(|body| json!({"delete": body}))),
        );
    }
    json!({ "nftables": cmds })
}

/// The changes of `elems` (set, element) grouped per set in first-seen order, each set's
/// elements sorted and without repeats, all added or all deleted.
fn changes(family: Family, add: bool, elems: Vec<(&'static str, Elem)>) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::new();
    for (set, e) in elems {
        match out.iter_mut().find(|c| c.set == set) {
            Some(c) => c.elems.push(e),
            None => out.push(Change {
                add,
                family,
                set,
                elems: vec![e],
            }),
        }
    }
    for c in &mut out {
        c.elems.sort();
        c.elems.dedup();
    }
    out
}

/// The nfnetlink changes of `add_network` (`add` = true) or `remove_network`, with the
/// same tolerance as [`network_batch`]: removal adds the elements again first; exposed for
/// tests.
pub fn network_changes(net: &NetworkRules, add: bool) -> Vec<Change> {
    let mut out = changes(Family::Inet, true, network_elems(net));
    if !add {
        out.extend(changes(Family::Inet, false, network_elems(net)));
    }
    out
}

/// The batch for `isolate_port`; exposed for tests.
pub fn isolate_port_batch(port: &str, isolated: bool) -> Value {
    let verb = if isolated { "add" } else { "delete" };
    json!({"nftables": [{verb: {"element": {"family": "bridge", "table": TABLE, "name": "no_icc_ports", "elem": [port]}}}]})
}

/// The IP protocol number of `p` (`inet_proto`).
fn proto_part(p: Proto) -> Part {
    Part::Proto(match p {
        Proto::Tcp => 6,
        Proto::Udp => 17,
    })
}

/// The elements of `ports` in the three port maps and the two sets of published
/// container ports, as `(map, element)`. A port on a given host address goes to
/// `pub4_addr` (keyed by that address too), one on every address to `pub4`, and, on a
/// dual-stack network, to `pub6` as well.
fn port_elems(ports: &[PortMapping]) -> Vec<(&'static str, Elem)> {
    let mut out = Vec::new();
    for p in ports {
        let (proto, hp, cp) = (
            proto_part(p.proto),
            Part::Port(p.host_port),
            Part::Port(p.container_port),
        );
        if let Some(cip) = p.container_ip {
            let to4 = vec![Part::V4(cip), cp.clone()];
            match p.host_ip.filter(|ip| !ip.is_unspecified()) {
                _ if p.routed4 => {}
                Some(ip) => out.push((
                    "pub4_addr",
                    Elem::Map(vec![Part::V4(ip), proto.clone(), hp.clone()], to4),
                )),
                None => out.push(("pub4", Elem::Map(vec![proto.clone(), hp.clone()], to4))),
            }
            // the container side, for the direct-routing rules (set elements: no value)
            out.push((
                "published4",
                Elem::Key(vec![Part::V4(cip), proto.clone(), cp.clone()]),
            ));
        }
        if let (Some(ip6), None, false) = (
            p.container_ip6,
            p.host_ip.filter(|ip| !ip.is_unspecified()),
            p.routed6,
        ) {
            out.push((
                "pub6",
                Elem::Map(
                    vec![proto.clone(), hp.clone()],
                    vec![Part::V6(ip6), cp.clone()],
                ),
            ));
        }
        if let Some(ip6) = p.container_ip6 {
            out.push(("published6", Elem::Key(vec![Part::V6(ip6), proto, cp])));
        }
    }
    out
}

/// The key of a map element (what a deletion names).
fn key_of(e: Elem) -> Elem {
    match e {
        Elem::Map(k, _) => Elem::Key(k),
        other => other,
    }
}

/// The maps and sets of published ports, in batch order.
const PORT_SETS: [&str; 5] = ["pub4", "pub4_addr", "pub6", "published4", "published6"];

/// `ports`' elements (keys only when `!with_data`) per map, sorted, in nft's syntax.
fn ports_text(verb: &str, ports: &[PortMapping], with_data: bool) -> String {
    let mut out = String::new();
    for map in PORT_SETS {
        let mut elems: Vec<String> = port_elems(ports)
            .into_iter()
            .filter(|(m, _)| *m == map)
            .map(|(_, e)| if with_data { e } else { key_of(e) }.to_string())
            .collect();
        elems.sort();
        elems.dedup();
        if !elems.is_empty() {
            out.push_str(&format!(
                "{verb} element inet {TABLE} {map} {{ {} }}\n",
                elems.join(", ")
            ));
        }
    }
    out
}

/// The batch for `add_ports`: map elements only (no rule, no chain), one per port and
/// family, in one transaction; exposed for tests.
pub fn add_ports_text(ports: &[PortMapping]) -> String {
    ports_text("add", ports, true)
}

/// The batch for `remove_ports` (keys only); exposed for tests.
pub fn remove_ports_text(ports: &[PortMapping]) -> String {
    ports_text("delete", ports, false)
}

/// The nfnetlink changes of `add_ports` (`add` = true: map elements with their data) or
/// `remove_ports` (keys only), one per map in [`PORT_SETS`] order; exposed for tests.
pub fn port_changes(ports: &[PortMapping], add: bool) -> Vec<Change> {
    let mut elems = port_elems(ports);
    elems.sort_by_key(|(m, _)| PORT_SETS.iter().position(|s| s == m));
    if !add {
        elems = elems.into_iter().map(|(m, e)| (m, key_of(e))).collect();
    }
    changes(Family::Inet, add, elems)
}

/// Whether a read-only command (`list ...`) in nft's text syntax succeeds: the object
/// it names exists.
fn query_text(cmd: &str) -> bool {
    crate::libnft::run(cmd, false).is_ok()
}

/// Applies one batch in nft's text syntax, as [`apply`] does JSON ones; timed for the
/// metrics (see [`crate::metrics::Observer::nft_batch`]).
fn apply_text(text: &str) -> Result<(), FirewallError> {
    crate::metrics::timed_batch(|| apply_text_untimed(text))
}

fn apply_text_untimed(text: &str) -> Result<(), FirewallError> {
    tracing::debug!(%text, "nft batch");
    crate::libnft::run(text, false)
        .map(|_| ())
        .map_err(|e| FirewallError::Nft(e.0))
}

/// Applies one batch through the `nft` binary ([`crate::libnft`]); timed for the metrics (see
/// [`crate::metrics::Observer::nft_batch`]).
fn apply(batch: &Value) -> Result<(), FirewallError> {
    crate::metrics::timed_batch(|| apply_untimed(batch))
}

fn apply_untimed(batch: &Value) -> Result<(), FirewallError> {
    apply_text_untimed(&batch.to_string())
}

impl Firewall for Nftables {
    fn init(&self) -> Result<(), FirewallError> {
        apply(&init_batch())?;
        apply_text(&init_ports_text(&self.cfg))
    }
    fn add_network(&self, net: &NetworkRules) -> Result<(), FirewallError> {
        self.elements(&network_changes(net, true), || {
            apply(&network_batch(net, true))
        })
    }
    fn remove_network(&self, net: &NetworkRules) -> Result<(), FirewallError> {
        self.elements(&network_changes(net, false), || {
            apply(&network_batch(net, false))
        })
    }
    fn add_ports(&self, owner: &str, ports: &[PortMapping]) -> Result<(), FirewallError> {
        if ports.is_empty() {
            return Ok(());
        }
        self.elements(&port_changes(ports, true), || {
            apply_text(&add_ports_text(ports))
        })
        .map_err(|FirewallError::Nft(e)| {
            FirewallError::Nft(format!("publishing ports of {owner}: {e}"))
        })
    }
    fn remove_ports(&self, owner: &str, ports: &[PortMapping]) -> Result<(), FirewallError> {
        if ports.is_empty() {
            return Ok(());
        }
        self.elements(&port_changes(ports, false), || {
            apply_text(&remove_ports_text(ports))
        })
        .map_err(|FirewallError::Nft(e)| {
            FirewallError::Nft(format!("withdrawing ports of {owner}: {e}"))
        })
    }
    fn isolate_port(&self, port: &str, isolated: bool) -> Result<(), FirewallError> {
        let c = Change {
            add: isolated,
            family: Family::Bridge,
            set: "no_icc_ports",
            elems: vec![Elem::one(Part::Ifname(port.to_string()))],
        };
        self.elements(&[c], || apply(&isolate_port_batch(port, isolated)))
    }
    fn guard_host_dns(&self, gw: Ipv4Addr, on: bool) -> Result<(), FirewallError> {
        let c = Change {
            add: on,
            family: Family::Inet,
            set: "host_dns",
            elems: vec![Elem::one(Part::V4(gw))],
        };
        self.elements(&[c], || {
            let verb = if on { "add" } else { "delete" };
            apply_text(&format!(
                "{verb} element inet {TABLE} host_dns {{ {gw} }}\n"
            ))
        })
    }
    fn adopt(&self) -> Result<bool, FirewallError> {
        let marker = layout_marker(&self.cfg);
        let kept = [
            format!("list set inet {TABLE} {marker}"),
            format!("list set bridge {TABLE} no_icc_ports"),
        ]
        .iter()
        .all(|q| query_text(q));
        if kept {
            return Ok(true);
        }
        self.init().map(|()| false)
    }
    fn sync(&self, c: &Contents) -> Result<(), FirewallError> {
        apply(&sync_batch(c))?;
        apply_text(&sync_ports_text(&c.ports))
            .map_err(|e| FirewallError::Nft(format!("restoring the published ports: {e}")))
    }
    fn teardown(&self) -> Result<(), FirewallError> {
        apply(&json!({"nftables": [
            {"add": {"table": {"family": "inet", "name": TABLE}}},
            {"delete": {"table": {"family": "inet", "name": TABLE}}},
            {"add": {"table": {"family": "bridge", "name": TABLE}}},
            {"delete": {"table": {"family": "bridge", "name": TABLE}}}
        ]}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pm(port: u16, host_ip: Option<Ipv4Addr>) -> PortMapping {
        PortMapping {
            proto: Proto::Tcp,
            host_ip,
            host_port: port,
            container_ip: Some(Ipv4Addr::new(172, 18, 0, 2)),
            container_port: 80,
            container_ip6: Some("fd00::2".parse().unwrap()),
            routed4: false,
            routed6: false,
        }
    }

    /// Runs `f` on a thread in a network namespace of its own (needs root) where tether's
    /// whole table was just applied (with direct routing allowed); `f` gets a runner of
    /// nft batches that returns their output.
    fn in_fresh_table<T: Send + 'static>(
        f: impl FnOnce(&dyn Fn(&str) -> Result<String, String>) -> Result<T, String> + Send + 'static,
    ) -> std::thread::JoinHandle<Result<T, String>> {
        std::thread::spawn(move || {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("unshare: {e}"))?;
            // nft children inherit this thread's namespace
            let run = |b: &str| crate::libnft::run(b, false).map_err(|e| format!("{e}: {b}"));
            run(&init_batch().to_string())?;
            run(&init_ports_text(&FirewallConfig {
                allow_direct_routing: true,
            }))?;
            f(&run)
        })
    }

    /// Every batch, in order, applies for real in a network namespace of this test's own
    /// (a thread that unshares one; needs root): the table in every gateway mode, with
    /// trusted interfaces and direct routing allowed, networks added and removed (twice:
    /// removal tolerates elements already gone), a port isolated and released. The
    /// nftables crate's typed schema has no DNAT through concatenated maps, so nft itself
    /// is the validator.
    #[test]
    fn batches_apply_in_every_gateway_mode() {
        let got = in_fresh_table(|run| {
            let nets = every_mode();
            for n in &nets {
                run(&network_batch(n, true).to_string())?;
            }
            run(&isolate_port_batch("veth1234567", true).to_string())?;
            run(&isolate_port_batch("veth1234567", false).to_string())?;
            let listed = run("list table inet tether")?;
            for n in &nets {
                run(&network_batch(n, false).to_string())?;
                run(&network_batch(n, false).to_string())?;
            }
            Ok(listed)
        })
        .join()
        .expect("thread");
        let listed = got.expect("applied");
        let listed = serde_json::from_str::<Value>(&listed)
            .expect("JSON listing")
            .to_string();
        for elem in [r#""tb-2""#, r#"{"concat":["vxlan.1","tb-0"]}"#] {
            assert!(listed.contains(elem), "{elem} missing from {listed}");
        }
    }

    /// The whole table, then ports published and withdrawn, applied for real in a network
    /// namespace of this test's own (a thread that unshares one; needs root).
    #[test]
    fn ports_go_in_and_out_of_the_maps() {
        let got = in_fresh_table(|run| {
            let ports = [
                pm(8080, None),
                pm(8081, Some(Ipv4Addr::LOCALHOST)),
                PortMapping {
                    proto: Proto::Udp,
                    ..pm(53, None)
                },
            ];
            run(&add_ports_text(&ports))?;
            let listed = run("list table inet tether")?;
            run(&remove_ports_text(&ports))?;
            Ok((listed, run("list table inet tether")?))
        })
        .join()
        .expect("thread");
        let (with, without) = got.expect("applied");
        let compact = |s: &str| serde_json::from_str::<Value>(s).map(|v| v.to_string());
        let (with, without) = (
            compact(&with).expect("JSON listing"),
            compact(&without).expect("JSON listing"),
        );
        for elem in [
            r#"[{"concat":["tcp",8080]},{"concat":["172.18.0.2",80]}]"#,
            r#"[{"concat":["udp",53]},{"concat":["172.18.0.2",80]}]"#,
            r#"[{"concat":["127.0.0.1","tcp",8081]},{"concat":["172.18.0.2",80]}]"#,
            r#"[{"concat":["tcp",8080]},{"concat":["fd00::2",80]}]"#,
        ] {
            assert!(with.contains(elem), "{elem} missing from {with}");
        }
        assert!(!without.contains("\"elem\""), "elements left: {without}");
    }

    /// A network in gateway mode nat on bridge `b` with IPv4 subnet `sub`.
    fn nat_net(b: &str, sub: &str) -> NetworkRules {
        NetworkRules {
            bridge: b.into(),
            subnet: sub.parse().ok(),
            masquerade: true,
            internal: false,
            subnet6: None,
            icc: true,
            mode4: GatewayMode::Nat,
            mode6: GatewayMode::Nat,
            trusted: vec![],
        }
    }

    /// sync replaces the contents: stale networks, ports and guards go, wanted ones stay
    /// or come; the layout marker is part of the table.
    #[test]
    fn sync_replaces_the_contents_in_place() {
        let net = nat_net;
        let got = in_fresh_table(move |run| {
            run(&network_batch(&net("tb-stale", "10.5.0.0/16"), true).to_string())?;
            run(&add_ports_text(&[pm(9999, None)]))?;
            run(&isolate_port_batch("vethstale", true).to_string())?;
            let c = Contents {
                networks: vec![net("tb-kept", "10.6.0.0/16")],
                ports: vec![pm(8080, None)],
                isolated_ports: vec!["vethkept".into()],
                host_dns: vec![Ipv4Addr::new(10, 6, 0, 1)],
            };
            run(&sync_batch(&c).to_string())?;
            run(&sync_ports_text(&c.ports))?;
            let inet = run("list table inet tether")?;
            let bridge = run("list table bridge tether")?;
            Ok(format!("{inet}{bridge}"))
        })
        .join()
        .expect("thread");
        let listed = got.expect("applied");
        for gone in ["tb-stale", "10.5.0.0", "9999", "vethstale"] {
            assert!(!listed.contains(gone), "{gone} still in {listed}");
        }
        let marker = layout_marker(&FirewallConfig {
            allow_direct_routing: true,
        });
        for kept in [
            "tb-kept",
            "10.6.0.0",
            "8080",
            "vethkept",
            "10.6.0.1",
            marker.as_str(),
        ] {
            assert!(listed.contains(kept), "{kept} missing from {listed}");
        }
    }

    /// Runs `f` in a fresh table (see [`in_fresh_table`]); `f` gets the batch runner and
    /// a firewall whose element socket is of that namespace.
    fn with_elem_socket<T: Send + 'static>(
        f: impl FnOnce(&dyn Fn(&str) -> Result<String, String>, &Nftables) -> Result<T, String>
            + Send
            + 'static,
    ) -> Result<T, String> {
        in_fresh_table(move |run| {
            let fw = Nftables::new(FirewallConfig::default());
            if fw.elems.is_none() {
                return Err("no element socket".into());
            }
            f(run, &fw)
        })
        .join()
        .expect("thread")
    }

    /// The listings of both tether tables.
    fn both_tables(run: &dyn Fn(&str) -> Result<String, String>) -> Result<Vec<String>, String> {
        Ok(vec![
            run("list table inet tether")?,
            run("list table bridge tether")?,
        ])
    }

    /// Every `set=elements` of `listings` (libnftables JSON), sorted: what two tables
    /// made in different ways must agree on (their handles differ).
    fn elements_of(listings: &[String]) -> Vec<String> {
        fn walk(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let (Some(name), Some(elem)) = (m.get("name"), m.get("elem")) {
                        out.push(format!("{name}={elem}"));
                    }
                    m.values().for_each(|x| walk(x, out));
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        for l in listings {
            walk(&serde_json::from_str(l).expect("JSON listing"), &mut out);
        }
        out.sort();
        out
    }

    fn every_mode() -> Vec<NetworkRules> {
        let modes = [
            GatewayMode::Nat,
            GatewayMode::NatUnprotected,
            GatewayMode::Routed,
            GatewayMode::Isolated,
        ];
        modes
            .iter()
            .enumerate()
            .map(|(i, m)| NetworkRules {
                bridge: format!("tb-{i}"),
                subnet: Some(format!("10.{i}.0.0/16").parse().unwrap()),
                masquerade: true,
                internal: *m == GatewayMode::Isolated,
                subnet6: Some(format!("fd00:{i}::/64").parse().unwrap()),
                icc: i % 2 == 0,
                mode4: *m,
                mode6: modes[(i + 1) % 4],
                trusted: vec!["eth1".into(), "vxlan.1".into()],
            })
            .collect()
    }

    /// The elements written over nfnetlink are those `nft` writes for the same
    /// networks, ports, isolated port and guard (the two tables list the same), and
    /// removal over nfnetlink empties the sets again, twice in a row.
    #[test]
    fn nfnetlink_writes_what_nft_writes() {
        let ports = vec![
            pm(8080, None),
            pm(8081, Some(Ipv4Addr::LOCALHOST)),
            PortMapping {
                proto: Proto::Udp,
                ..pm(53, None)
            },
        ];
        let p2 = ports.clone();
        let by_nft = with_elem_socket(move |run, _| {
            for n in &every_mode() {
                run(&network_batch(n, true).to_string())?;
            }
            run(&add_ports_text(&p2))?;
            run(&isolate_port_batch("veth1234567", true).to_string())?;
            run("add element inet tether host_dns { 10.0.0.1 }")?;
            both_tables(run)
        })
        .expect("nft");
        let by_nfnetlink = with_elem_socket(move |run, fw| {
            for n in &every_mode() {
                fw.add_network(n).map_err(|e| e.to_string())?;
            }
            fw.add_ports("c1", &ports).map_err(|e| e.to_string())?;
            fw.isolate_port("veth1234567", true)
                .map_err(|e| e.to_string())?;
            fw.guard_host_dns(Ipv4Addr::new(10, 0, 0, 1), true)
                .map_err(|e| e.to_string())?;
            let listed = both_tables(run)?;
            for _ in 0..2 {
                for n in &every_mode() {
                    fw.remove_network(n).map_err(|e| e.to_string())?;
                }
            }
            fw.remove_ports("c1", &ports).map_err(|e| e.to_string())?;
            fw.isolate_port("veth1234567", false)
                .map_err(|e| e.to_string())?;
            fw.guard_host_dns(Ipv4Addr::new(10, 0, 0, 1), false)
                .map_err(|e| e.to_string())?;
            Ok((listed, both_tables(run)?))
        })
        .expect("nfnetlink");
        let (with, without) = by_nfnetlink;
        let (a, b) = (elements_of(&by_nft), elements_of(&with));
        assert!(a.len() >= 14, "too few sets with elements: {a:?}");
        assert_eq!(a, b);
        assert!(elements_of(&without).is_empty(), "left: {without:?}");
    }

    /// A batch that fails applies nothing: the error names the set and the element, and
    /// the add that came before it in the batch is not there.
    #[test]
    fn a_rejected_element_change_applies_nothing_and_names_the_element() {
        let got = with_elem_socket(|run, fw| {
            let sock = fw.elems.as_ref().ok_or("no socket")?;
            let add = Change {
                add: true,
                family: Family::Inet,
                set: "bridges",
                elems: vec![Elem::one(Part::Ifname("tb-new".into()))],
            };
            let del = Change {
                add: false,
                family: Family::Inet,
                set: "host_dns",
                elems: vec![Elem::one(Part::V4(Ipv4Addr::new(10, 9, 9, 1)))],
            };
            let err = sock
                .commit(TABLE, &[add, del])
                .expect_err("deleting a missing element fails")
                .to_string();
            Ok((err, run("list set inet tether bridges")?))
        })
        .expect("ran");
        let (err, bridges) = got;
        assert!(
            err.contains("host_dns") && err.contains("10.9.9.1") && err.contains("deleting"),
            "{err}"
        );
        assert!(!bridges.contains("tb-new"), "{bridges}");
    }

    /// Large element lists go in whole (a message's element list is a 16-bit attribute:
    /// they are split across messages of one batch) and come out whole, and an error
    /// answer fits however large the batch was: 2000 ports published, listed, withdrawn,
    /// and withdrawn again, which fails naming the map and counting the elements.
    #[test]
    fn two_thousand_ports_go_in_and_out_in_one_batch() {
        let got = with_elem_socket(|run, fw| {
            let ports: Vec<PortMapping> = (1..=2000).map(|p| pm(p, None)).collect();
            fw.add_ports("c1", &ports).map_err(|e| e.to_string())?;
            let listed = run("list map inet tether pub4")?;
            fw.remove_ports("c1", &ports).map_err(|e| e.to_string())?;
            let after = run("list map inet tether pub4")?;
            let again = fw
                .remove_ports("c1", &ports)
                .expect_err("nothing left to withdraw")
                .to_string();
            Ok((listed, after, again))
        })
        .expect("ran");
        let (listed, after, again) = got;
        let count = |l: &str| {
            elements_of(&[l.to_string()]).first().map(|e| {
                serde_json::from_str::<Value>(e.split_once('=').map(|(_, v)| v).unwrap_or("[]"))
                    .ok()
                    .and_then(|v| v.as_array().map(|a| a.len()))
                    .unwrap_or(0)
            })
        };
        assert_eq!(
            count(&listed),
            Some(2000),
            "{}",
            &listed[..listed.len().min(400)]
        );
        assert_eq!(count(&after), None, "{after}");
        assert!(
            again.contains("withdrawing ports of c1: deleting element")
                && again.contains("inet set pub4")
                && again.contains("(2000 in all)"),
            "{again}"
        );
    }

    /// Adjacent subnets are separate intervals: removing one keeps the other.
    #[test]
    fn adjacent_subnets_come_and_go_independently() {
        let net = nat_net;
        let listed = with_elem_socket(move |run, fw| {
            let (a, b) = (net("tb-a", "10.80.1.0/24"), net("tb-b", "10.80.2.0/24"));
            fw.add_network(&a).map_err(|e| e.to_string())?;
            fw.add_network(&b).map_err(|e| e.to_string())?;
            fw.remove_network(&a).map_err(|e| e.to_string())?;
            run("list set inet tether nat_subnets")
        })
        .expect("ran");
        assert!(
            listed.contains("10.80.2.0") && !listed.contains("10.80.1.0"),
            "{listed}"
        );
    }

    #[test]
    fn ports_batch_one_map_element_per_port() {
        let ports = [
            pm(8080, None),
            pm(8080, Some(Ipv4Addr::LOCALHOST)),
            pm(9000, None),
        ];
        let s = add_ports_text(&ports);
        // no rule and no chain per port: elements of the three maps only
        assert!(!s.contains("rule") && !s.contains("chain"), "{s}");
        assert_eq!(
            s,
            "add element inet tether pub4 { tcp . 8080 : 172.18.0.2 . 80, tcp . 9000 : 172.18.0.2 . 80 }\n\
             add element inet tether pub4_addr { 127.0.0.1 . tcp . 8080 : 172.18.0.2 . 80 }\n\
             add element inet tether pub6 { tcp . 8080 : fd00::2 . 80, tcp . 9000 : fd00::2 . 80 }\n\
             add element inet tether published4 { 172.18.0.2 . tcp . 80 }\n\
             add element inet tether published6 { fd00::2 . tcp . 80 }\n"
        );
        assert_eq!(
            remove_ports_text(&ports),
            "delete element inet tether pub4 { tcp . 8080, tcp . 9000 }\n\
             delete element inet tether pub4_addr { 127.0.0.1 . tcp . 8080 }\n\
             delete element inet tether pub6 { tcp . 8080, tcp . 9000 }\n\
             delete element inet tether published4 { 172.18.0.2 . tcp . 80 }\n\
             delete element inet tether published6 { fd00::2 . tcp . 80 }\n"
        );
    }

    #[test]
    fn internal_network_is_not_masqueraded() {
        let n = NetworkRules {
            bridge: "tb-i".into(),
            subnet: Some("10.2.0.0/24".parse().unwrap()),
            masquerade: false,
            internal: true,
            subnet6: None,
            icc: true,
            mode4: GatewayMode::Nat,
            mode6: GatewayMode::Routed,
            trusted: vec!["eth1".into()],
        };
        let s = network_batch(&n, true).to_string();
        assert!(!s.contains("nat_subnets"));
        assert!(
            s.contains(r#"{"concat":["tb-i","tb-i"]}"#),
            "same-bridge traffic allowed: {s}"
        );
        let no_icc = NetworkRules {
            icc: false,
            ..n.clone()
        };
        assert!(!network_batch(&no_icc, true).to_string().contains("\"icc\""));
        assert!(s.contains("tb-i"));
    }
}
