//! `network create|ls|inspect|rm|prune|connect|disconnect`
//! (docker/cli `network/*.go`).

use clap::{ArgAction, Parser};
use ipnet::IpNet;
use serde_json::{json, Map as JMap, Value as Json};

use super::container::filter_query;
use super::inspect::{inspect_kind, Kind};
use super::lifecycle::confirm;
use crate::args::{exact_args, min_args, no_args, parse};
use crate::client::{path_escape, Client};
use crate::error::{CliError, Result};
use crate::format::ports::natural_cmp;
use crate::format::template::value::{Map, Value};
use crate::format::{label_fields, render_list, truncate_id};
use crate::opts::kv_map;
use crate::{errln, out, outln};

/// `tether network create`.
#[derive(Parser, Debug)]
#[command(
    name = "create",
    override_usage = "tether network create [OPTIONS] NETWORK",
    about = "Create a network"
)]
pub struct CreateArgs {
    /// Driver to manage the Network
    #[arg(short = 'd', long, default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long, action = ArgAction::Append)]
    subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long, action = ArgAction::Append)]
    gateway: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range", action = ArgAction::Append)]
    ip_range: Vec<String>,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver
    #[arg(long = "aux-address", action = ArgAction::Append)]
    aux_address: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    internal: bool,
    /// Enable or disable IPv6 networking
    #[arg(long)]
    ipv6: bool,
    /// Enable or disable IPv4 address assignment (--ipv4=false with --ipv6: IPv6-only)
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    ipv4: Option<bool>,
    /// Enable manual container attachment
    #[arg(long)]
    attachable: bool,
    /// Create swarm routing-mesh network
    #[arg(long)]
    ingress: bool,
    /// Set metadata on a network
    #[arg(long, action = ArgAction::Append)]
    label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", action = ArgAction::Append)]
    opt: Vec<String>,
    /// IP Address Management Driver
    #[arg(long = "ipam-driver", default_value = "default")]
    ipam_driver: String,
    /// Set IPAM driver specific options
    #[arg(long = "ipam-opt", action = ArgAction::Append)]
    ipam_opt: Vec<String>,
    /// Control the network's scope
    #[arg(long)]
    scope: Option<String>,
    operands: Vec<String>,
}

fn subnet_matches(subnet: &str, data: &str) -> std::result::Result<bool, String> {
    let net: IpNet = subnet
        .parse()
        .map_err(|e| format!("invalid subnet {subnet} : {e}"))?;
    if data.contains('/') {
        let other: IpNet = data
            .parse()
            .map_err(|e| format!("invalid cidr {data} : {e}"))?;
        Ok(net.contains(&other.addr()))
    } else {
        let ip: std::net::IpAddr = data
            .parse()
            .map_err(|_| format!("invalid address {data}"))?;
        Ok(net.contains(&ip))
    }
}

/// docker's `consolidateIpam`: assigns gateways, ranges and aux addresses to
/// the subnet containing them.
pub fn consolidate_ipam(
    subnets: &[String],
    ranges: &[String],
    gateways: &[String],
    aux: &[(String, String)],
) -> std::result::Result<Vec<Json>, String> {
    if subnets.len() < ranges.len() || subnets.len() < gateways.len() {
        return Err("every ip-range or gateway must have a corresponding subnet".into());
    }
    struct Cfg {
        subnet: String,
        range: Option<String>,
        gateway: Option<String>,
        aux: JMap<String, Json>,
    }
    let mut cfgs: Vec<Cfg> = Vec::new();
    for s in subnets {
        for c in &cfgs {
            if subnet_matches(s, &c.subnet)? || subnet_matches(&c.subnet, s)? {
                return Err("multiple overlapping subnet configuration is not supported".into());
            }
        }
        cfgs.push(Cfg {
            subnet: s.clone(),
            range: None,
            gateway: None,
            aux: JMap::new(),
        });
    }
    for r in ranges {
        let mut matched = false;
        for c in cfgs.iter_mut() {
            if !subnet_matches(&c.subnet, r)? {
                continue;
            }
            if let Some(existing) = &c.range {
                return Err(format!(
                    "cannot configure multiple ranges ({r}, {existing}) on the same subnet ({})",
                    c.subnet
                ));
            }
            c.range = Some(r.clone());
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for range {r}"));
        }
    }
    for g in gateways {
        let mut matched = false;
        for c in cfgs.iter_mut() {
            if !subnet_matches(&c.subnet, g)? {
                continue;
            }
            if let Some(existing) = &c.gateway {
                return Err(format!(
                    "cannot configure multiple gateways ({g}, {existing}) for the same subnet ({})",
                    c.subnet
                ));
            }
            c.gateway = Some(g.clone());
            matched = true;
        }
        if !matched {
            return Err(format!("no matching subnet for gateway {g}"));
        }
    }
    for (k, a) in aux {
        let mut matched = false;
        for c in cfgs.iter_mut() {
            if subnet_matches(&c.subnet, a)? {
                c.aux.insert(k.clone(), json!(a));
                matched = true;
            }
        }
        if !matched {
            return Err(format!("no matching subnet for aux-address {a}"));
        }
    }
    Ok(cfgs
        .into_iter()
        .map(|c| {
            let mut m = JMap::new();
            m.insert("Subnet".into(), json!(c.subnet));
            if let Some(r) = c.range {
                m.insert("IPRange".into(), json!(r));
            }
            if let Some(g) = c.gateway {
                m.insert("Gateway".into(), json!(g));
            }
            if !c.aux.is_empty() {
                m.insert("AuxiliaryAddresses".into(), Json::Object(c.aux));
            }
            Json::Object(m)
        })
        .collect())
}

/// The `POST /networks/create` body.
pub fn create_body(a: &CreateArgs, name: &str) -> Result<Json> {
    let mut aux = Vec::new();
    for x in &a.aux_address {
        let (k, v) = x.split_once('=').ok_or_else(|| {
            CliError::status(
                125,
                format!("invalid argument \"{x}\" for \"--aux-address\" flag: bad format for aux-address (expected name=ip)"),
            )
        })?;
        aux.push((k.to_string(), v.to_string()));
    }
    let config =
        consolidate_ipam(&a.subnet, &a.ip_range, &a.gateway, &aux).map_err(CliError::msg)?;
    let mut body = json!({
        "Name": name,
        "CheckDuplicate": true,
        "Driver": a.driver,
        "Scope": a.scope.clone().unwrap_or_default(),
        "IPAM": {
            "Driver": a.ipam_driver,
            "Options": kv_map(&a.ipam_opt),
            "Config": config,
        },
        "Internal": a.internal,
        "Attachable": a.attachable,
        "Ingress": a.ingress,
        "Options": kv_map(&a.opt),
        "Labels": kv_map(&a.label),
    });
    if a.ipv6 {
        body["EnableIPv6"] = json!(true);
    }
    if let Some(v4) = a.ipv4 {
        body["EnableIPv4"] = json!(v4);
    }
    Ok(body)
}

/// `tether network create [OPTIONS] NETWORK`: prints the new ID.
pub async fn create(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: CreateArgs = parse(path, args)?;
    exact_args::<CreateArgs>(path, a.operands.len(), 1)?;
    let body = create_body(&a, &a.operands[0])?;
    let v = client.post_json("/networks/create", Some(&body)).await?;
    if let Some(w) = v["Warning"].as_str().filter(|w| !w.is_empty()) {
        errln!("{w}");
    }
    outln!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(())
}

/// `tether network ls`.
#[derive(Parser, Debug)]
#[command(
    name = "ls",
    override_usage = "tether network ls [OPTIONS]",
    about = "List networks"
)]
pub struct LsArgs {
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long = "filter", action = ArgAction::Append)]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Do not truncate the output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Only display network IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    operands: Vec<String>,
}

/// Go's `time.Time.String()` for an RFC 3339 timestamp, in its own offset.
fn go_time_from_rfc3339(s: &str) -> String {
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) else {
        // Go's zero time.
        return "0001-01-01 00:00:00 +0000 UTC".to_string();
    };
    let nanos = t.timestamp_subsec_nanos();
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    let off = t.format("%z").to_string();
    let zone = if off == "+0000" {
        "UTC".to_string()
    } else {
        t.format("%:::z").to_string()
    };
    format!("{}{frac} {off} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
}

/// One network of `GET /networks` as the row docker's templates see.
pub fn network_row(n: &Json, trunc: bool) -> Value {
    let s = |k: &str| n.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let b = |k: &str| n.get(k).and_then(|x| x.as_bool()).unwrap_or(false);
    let id = s("Id");
    let [labels, label] = label_fields(n.get("Labels"));
    let ipv4 = n
        .get("EnableIPv4")
        .and_then(|x| x.as_bool())
        .unwrap_or(false);
    Value::Map(Map::context(
        "*network.networkContext",
        vec![
            (
                "ID".into(),
                Value::from(if trunc { truncate_id(&id) } else { id.clone() }),
            ),
            ("Name".into(), Value::from(s("Name"))),
            ("Driver".into(), Value::from(s("Driver"))),
            ("Scope".into(), Value::from(s("Scope"))),
            ("IPv4".into(), Value::from(ipv4.to_string())),
            ("IPv6".into(), Value::from(b("EnableIPv6").to_string())),
            ("Internal".into(), Value::from(b("Internal").to_string())),
            labels,
            label,
            (
                "CreatedAt".into(),
                Value::from(go_time_from_rfc3339(&s("Created"))),
            ),
        ],
    ))
}

fn network_header() -> Value {
    let h = [
        ("ID", "NETWORK ID"),
        ("Name", "NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("IPv4", "IPV4"),
        ("IPv6", "IPV6"),
        ("Internal", "INTERNAL"),
        ("Labels", "LABELS"),
        ("CreatedAt", "CREATED AT"),
    ];
    crate::format::header_map(&h)
}

/// The effective template for `network ls`.
pub fn ls_format(format: Option<&str>, quiet: bool) -> String {
    match format.unwrap_or("") {
        "" | "table" => {
            if quiet {
                "{{.ID}}".into()
            } else {
                "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}".into()
            }
        }
        "raw" => {
            if quiet {
                "network_id: {{.ID}}".into()
            } else {
                "network_id: {{.ID}}\nname: {{.Name}}\ndriver: {{.Driver}}\nscope: {{.Scope}}\n"
                    .into()
            }
        }
        f => {
            if quiet {
                "{{.ID}}".into()
            } else {
                f.to_string()
            }
        }
    }
}

/// Renders a `GET /networks` list (sorted naturally by name).
pub fn render_networks(list: &Json, format: &str, trunc: bool) -> Result<String> {
    let mut nets: Vec<&Json> = list.as_array().into_iter().flatten().collect();
    nets.sort_by(|a, b| {
        natural_cmp(
            a["Name"].as_str().unwrap_or(""),
            b["Name"].as_str().unwrap_or(""),
        )
    });
    let rows: Vec<Value> = nets.into_iter().map(|n| network_row(n, trunc)).collect();
    Ok(render_list(format, &rows, &network_header())?)
}

/// `tether network ls [-q] [--no-trunc] [-f k=v] [--format T]`.
pub async fn ls(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: LsArgs = parse(path, args)?;
    no_args::<LsArgs>(path, a.operands.len())?;
    let q = filter_query(&a.filter)?;
    let list = client.get_json(&format!("/networks{}", q.encode())).await?;
    let format = ls_format(a.format.as_deref(), a.quiet);
    out!("{}", render_networks(&list, &format, !a.no_trunc)?);
    Ok(())
}

/// `tether network inspect`.
#[derive(Parser, Debug)]
#[command(
    name = "inspect",
    override_usage = "tether network inspect [OPTIONS] NETWORK [NETWORK...]",
    about = "Display detailed information on one or more networks"
)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short = 'v', long)]
    verbose: bool,
    names: Vec<String>,
}

/// `tether network inspect [-f T] NETWORK...`.
pub async fn inspect(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: InspectArgs = parse(path, args)?;
    min_args::<InspectArgs>(path, a.names.len(), 1)?;
    inspect_kind(client, Kind::Network, &a.names, a.format.as_deref(), false).await
}

/// `tether network rm`.
#[derive(Parser, Debug)]
#[command(
    name = "rm",
    override_usage = "tether network rm NETWORK [NETWORK...]",
    about = "Remove one or more networks"
)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    force: bool,
    names: Vec<String>,
}

/// `tether network rm NETWORK...`: prints each removed name; errors go to
/// stderr as they happen and the exit status is 1.
pub async fn rm(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: RmArgs = parse(path, args)?;
    min_args::<RmArgs>(path, a.names.len(), 1)?;
    let mut failed = false;
    for n in &a.names {
        match client
            .delete(&format!("/networks/{}", path_escape(n)))
            .await
        {
            Ok(_) => outln!("{n}"),
            Err(e @ CliError::Connect { .. }) => return Err(e),
            Err(e) if a.force && e.is_not_found() => {}
            Err(e) => {
                errln!("{e}");
                failed = true;
            }
        }
    }
    if failed {
        Err(CliError::exit(1))
    } else {
        Ok(())
    }
}

/// `tether network reload-firewall`.
#[derive(Parser, Debug)]
#[command(
    name = "reload-firewall",
    override_usage = "tether network reload-firewall",
    about = "Rebuild tether's nftables tables from its networks and containers (after a firewall flush)"
)]
pub struct ReloadFirewallArgs {}

/// `tether network reload-firewall`: `POST /tether/v1/firewall/reload`; prints how many
/// networks, port sets and isolated ports were restored.
pub async fn reload_firewall(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let _: ReloadFirewallArgs = parse(path, args)?;
    let v = client.post_json("/tether/v1/firewall/reload", None).await?;
    outln!(
        "firewall reloaded: {} objects restored",
        v["Restored"].as_u64().unwrap_or(0)
    );
    Ok(())
}

/// `tether network prune`.
#[derive(Parser, Debug)]
#[command(
    name = "prune",
    override_usage = "tether network prune [OPTIONS]",
    about = "Remove all unused networks"
)]
pub struct PruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", action = ArgAction::Append)]
    filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
}

/// The text docker prints after a prune (`Deleted Networks:` + names), or "".
pub fn prune_output(v: &Json) -> String {
    let mut out = String::new();
    if let Some(list) = v["NetworksDeleted"].as_array().filter(|l| !l.is_empty()) {
        out.push_str("Deleted Networks:\n");
        for n in list.iter().filter_map(|x| x.as_str()) {
            out.push_str(n);
            out.push('\n');
        }
    }
    out
}

/// `tether network prune [-f] [--filter k=v]`.
pub async fn prune(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: PruneArgs = parse(path, args)?;
    if !a.force
        && !confirm("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?")
    {
        return Ok(());
    }
    let q = filter_query(&a.filter)?.encode();
    let v = client
        .post_json(&format!("/networks/prune{q}"), None)
        .await?;
    let text = prune_output(&v);
    if !text.is_empty() {
        outln!("{text}");
    }
    Ok(())
}

/// `tether network connect`.
#[derive(Parser, Debug)]
#[command(
    name = "connect",
    override_usage = "tether network connect [OPTIONS] NETWORK CONTAINER",
    about = "Connect a container to a network"
)]
pub struct ConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long, action = ArgAction::Append)]
    alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long)]
    ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long)]
    ip6: Option<String>,
    /// Add link to another container
    #[arg(long, action = ArgAction::Append)]
    link: Vec<String>,
    /// Add a link-local address for the container
    #[arg(long = "link-local-ip", action = ArgAction::Append)]
    link_local_ip: Vec<String>,
    /// driver options for the network
    #[arg(long = "driver-opt", action = ArgAction::Append)]
    driver_opt: Vec<String>,
    /// Highest gw-priority provides the default gateway
    #[arg(long = "gw-priority", allow_hyphen_values = true)]
    gw_priority: Option<i64>,
    operands: Vec<String>,
}

/// The `POST /networks/{id}/connect` body.
pub fn connect_body(a: &ConnectArgs, container: &str) -> Json {
    let mut ep = JMap::new();
    if a.ip.is_some() || a.ip6.is_some() || !a.link_local_ip.is_empty() {
        let mut ipam = JMap::new();
        if let Some(ip) = &a.ip {
            ipam.insert("IPv4Address".into(), json!(ip));
        }
        if let Some(ip) = &a.ip6 {
            ipam.insert("IPv6Address".into(), json!(ip));
        }
        if !a.link_local_ip.is_empty() {
            ipam.insert("LinkLocalIPs".into(), json!(a.link_local_ip));
        }
        ep.insert("IPAMConfig".into(), Json::Object(ipam));
    }
    if !a.link.is_empty() {
        ep.insert("Links".into(), json!(a.link));
    }
    if !a.alias.is_empty() {
        ep.insert("Aliases".into(), json!(a.alias));
    }
    if !a.driver_opt.is_empty() {
        ep.insert("DriverOpts".into(), Json::Object(kv_map(&a.driver_opt)));
    }
    if let Some(p) = a.gw_priority {
        ep.insert("GwPriority".into(), json!(p));
    }
    json!({"Container": container, "EndpointConfig": Json::Object(ep)})
}

/// `tether network connect [--alias A]... [--ip IP] [--ip6 IP] [--link L] NETWORK CONTAINER`.
pub async fn connect(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: ConnectArgs = parse(path, args)?;
    exact_args::<ConnectArgs>(path, a.operands.len(), 2)?;
    let body = connect_body(&a, &a.operands[1]);
    client
        .post(
            &format!("/networks/{}/connect", path_escape(&a.operands[0])),
            Some(&body),
        )
        .await?;
    Ok(())
}

/// `tether network disconnect`.
#[derive(Parser, Debug)]
#[command(
    name = "disconnect",
    override_usage = "tether network disconnect [OPTIONS] NETWORK CONTAINER",
    about = "Disconnect a container from a network"
)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    force: bool,
    operands: Vec<String>,
}

/// `tether network disconnect [-f] NETWORK CONTAINER`.
pub async fn disconnect(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: DisconnectArgs = parse(path, args)?;
    exact_args::<DisconnectArgs>(path, a.operands.len(), 2)?;
    let body = json!({"Container": a.operands[1], "Force": a.force});
    client
        .post(
            &format!("/networks/{}/disconnect", path_escape(&a.operands[0])),
            Some(&body),
        )
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn create_bodies() {
        let a: CreateArgs = parse(
            "tether network create",
            &s(&[
                "--subnet",
                "10.5.0.0/16",
                "--gateway",
                "10.5.0.1",
                "--ip-range",
                "10.5.1.0/24",
                "--internal",
                "--label",
                "k=v",
                "-o",
                "com.docker.network.bridge.name=br5",
                "net-x",
            ]),
        )
        .unwrap();
        let b = create_body(&a, "net-x").unwrap();
        assert_eq!(b["Name"], "net-x");
        assert_eq!(b["Driver"], "bridge");
        assert_eq!(b["Internal"], true);
        assert_eq!(b["Labels"], json!({"k": "v"}));
        assert_eq!(
            b["Options"],
            json!({"com.docker.network.bridge.name": "br5"})
        );
        assert_eq!(
            b["IPAM"],
            json!({"Driver": "default", "Options": {}, "Config": [
                {"Subnet": "10.5.0.0/16", "IPRange": "10.5.1.0/24", "Gateway": "10.5.0.1"}
            ]})
        );
        assert!(b.get("EnableIPv6").is_none());

        let a: CreateArgs = parse(
            "tether network create",
            &s(&[
                "--ipv6",
                "--subnet",
                "172.30.0.0/16",
                "--subnet",
                "fd00:1::/64",
                "--gateway",
                "fd00:1::1",
                "n",
            ]),
        )
        .unwrap();
        let b = create_body(&a, "n").unwrap();
        assert_eq!(b["EnableIPv6"], true);
        assert_eq!(
            b["IPAM"]["Config"][1],
            json!({"Subnet": "fd00:1::/64", "Gateway": "fd00:1::1"})
        );
    }

    #[test]
    fn ipam_errors() {
        let e =
            |sub: &[&str], gw: &[&str]| consolidate_ipam(&s(sub), &[], &s(gw), &[]).unwrap_err();
        assert_eq!(
            e(&["10.0.0.0/24"], &["10.1.0.1"]),
            "no matching subnet for gateway 10.1.0.1"
        );
        assert_eq!(
            e(&[], &["10.1.0.1"]),
            "every ip-range or gateway must have a corresponding subnet"
        );
        assert_eq!(
            e(&["10.0.0.0/16", "10.0.1.0/24"], &[]),
            "multiple overlapping subnet configuration is not supported"
        );
        assert!(e(&["bogus"], &["10.0.0.1"]).starts_with("invalid subnet bogus"));
    }

    #[test]
    fn ls_table_sorted() {
        let list = json!([
            {"Name": "net10", "Id": "aaaaaaaaaaaaaaaaaaaa", "Driver": "bridge", "Scope": "local"},
            {"Name": "bridge", "Id": "bbbbbbbbbbbbbbbbbbbb", "Driver": "bridge", "Scope": "local"},
            {"Name": "net9", "Id": "cccccccccccccccccccc", "Driver": "bridge", "Scope": "local", "Labels": {"x": "1"}},
            {"Name": "host", "Id": "dddddddddddddddddddd", "Driver": "host", "Scope": "local"}
        ]);
        assert_eq!(
            render_networks(&list, &ls_format(None, false), true).unwrap(),
            "NETWORK ID     NAME      DRIVER    SCOPE\n\
             bbbbbbbbbbbb   bridge    bridge    local\n\
             dddddddddddd   host      host      local\n\
             cccccccccccc   net9      bridge    local\n\
             aaaaaaaaaaaa   net10     bridge    local\n"
        );
        assert_eq!(
            render_networks(&list, "{{.Name}} {{.Driver}} {{.Scope}}", true).unwrap(),
            "bridge bridge local\nhost host local\nnet9 bridge local\nnet10 bridge local\n"
        );
        assert_eq!(
            render_networks(&list, "{{.Name}}={{.Label \"x\"}}", true).unwrap(),
            "bridge=\nhost=\nnet9=1\nnet10=\n"
        );
        assert_eq!(
            render_networks(&list, &ls_format(None, true), false).unwrap(),
            "bbbbbbbbbbbbbbbbbbbb\ndddddddddddddddddddd\ncccccccccccccccccccc\naaaaaaaaaaaaaaaaaaaa\n"
        );
    }

    #[test]
    fn prune_and_connect() {
        assert_eq!(
            prune_output(&json!({"NetworksDeleted": ["a", "b"]})),
            "Deleted Networks:\na\nb\n"
        );
        assert_eq!(prune_output(&json!({"NetworksDeleted": null})), "");
        let a: ConnectArgs = parse(
            "tether network connect",
            &s(&[
                "--alias", "x", "--alias", "y", "--ip", "10.0.0.9", "net", "web",
            ]),
        )
        .unwrap();
        assert_eq!(
            connect_body(&a, "web"),
            json!({"Container": "web", "EndpointConfig": {"IPAMConfig": {"IPv4Address": "10.0.0.9"}, "Aliases": ["x", "y"]}})
        );
    }

    #[test]
    fn go_time() {
        assert_eq!(
            go_time_from_rfc3339("2024-05-06T07:08:09.123400Z"),
            "2024-05-06 07:08:09.1234 +0000 UTC"
        );
    }
}
