//! Docker Engine API JSON views of the engine's objects (api v1.41+ shapes: Network,
//! ContainerInspectResponse, ContainerSummary).

use std::path::Path;

use serde_json::{json, Map, Value};
use tether_net::link::format_mac;

use crate::state::{Container, Network};
use crate::State;

/// go-units' HumanDuration ("Less than a second", "5 seconds", "About a minute", ...).
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        _ if s < 3600 => format!("{} minutes", s / 60),
        _ if s < 2 * 3600 => "About an hour".into(),
        _ if s < 48 * 3600 => format!("{} hours", s / 3600),
        _ if s < 7 * 24 * 3600 * 2 => format!("{} days", s / 86400),
        _ if s < 30 * 24 * 3600 * 2 => format!("{} weeks", s / (7 * 86400)),
        _ if s < 365 * 24 * 3600 * 2 => format!("{} months", s / (30 * 86400)),
        _ => format!("{} years", s / (365 * 86400)),
    }
}

fn since(ts: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(ts)
        .map(|t| chrono::Utc::now().timestamp() - t.timestamp())
        .unwrap_or(0)
}

/// The Status column text ("Up 5 seconds", "Exited (1) 3 seconds ago", "Created").
pub fn status_text(c: &Container) -> String {
    match c.state.status.as_str() {
        "running" => {
            let up = format!("Up {}", human_duration(since(&c.state.started_at)));
            match c.state.health.as_ref().map(|h| h.status.as_str()) {
                Some("starting") => format!("{up} (health: starting)"),
                Some(s) => format!("{up} ({s})"),
                None if c.state.paused => format!("{up} (Paused)"),
                None => up,
            }
        }
        "restarting" => format!(
            "Restarting ({}) {} ago",
            c.state.exit_code,
            human_duration(since(&c.state.finished_at))
        ),
        "exited" => format!(
            "Exited ({}) {} ago",
            c.state.exit_code,
            human_duration(since(&c.state.finished_at))
        ),
        _ => "Created".into(),
    }
}

/// Whether a container's attachment to network `name` shows in its inspect and list
/// entries: the gateway bridge that overlay containers get out through does not, as
/// Docker's `docker_gwbridge` endpoint does not (it is the daemon's, not the user's).
fn shown(name: &str) -> bool {
    name != crate::cluster::GWBRIDGE
}

/// A network's JSON (GET /networks/{id}).
pub(crate) fn network(n: &Network, st: &State) -> Value {
    let mut containers = Map::new();
    for c in st.containers.values() {
        if let Some((name, _)) = c.attachments.iter().find(|(_, a)| a.network_id == n.id) {
            if let Some(ep) = c.endpoints.get(name) {
                // Docker names a container's docker_gwbridge endpoint gateway_<sandbox>
                let shown_name = if shown(name) {
                    c.name.clone()
                } else {
                    format!("gateway_{}", &c.id[..12.min(c.id.len())])
                };
                containers.insert(
                    c.id.clone(),
                    json!({"Name": shown_name, "EndpointID": ep.id, "MacAddress": format_mac(&ep.mac),
                           "IPv4Address": ep.ip.map(|ip| format!("{ip}/{}", ep.prefix)).unwrap_or_default(), "IPv6Address": ep.ip6.map(|(a, l, _)| format!("{a}/{l}")).unwrap_or_default()}),
                );
            }
        }
    }
    let mut config: Vec<Value> = n
        .pool
        .iter()
        .map(|p| {
            let mut m = json!({"Subnet": p.subnet.to_string(), "Gateway": p.gateway.to_string()});
            if p.range_given {
                m["IPRange"] = json!(p.range.to_string());
            }
            m
        })
        .collect();
    if let Some(p6) = &n.pool6 {
        config.push(json!({"Subnet": p6.subnet.to_string(), "Gateway": p6.gateway.to_string()}));
    }
    json!({
        "Name": n.name, "Id": n.id, "Created": n.created, "Scope": n.scope(), "Driver": n.driver,
        "EnableIPv4": n.enable_ipv4, "EnableIPv6": n.enable_ipv6,
        "IPAM": {"Driver": "default", "Options": Value::Null, "Config": config},
        "Internal": n.internal, "Attachable": n.attachable, "Ingress": false,
        "ConfigFrom": {"Network": ""}, "ConfigOnly": false,
        "Containers": containers, "Options": n.options, "Labels": n.labels,
    })
}

/// `Config` as inspect shows it: the create body merged with the image, with
/// `Hostname` filled in as Docker does (the short id unless one was given; the host's
/// name with `--network host`; the other container's with `--network container:X`).
fn config_json(c: &Container, st: &State) -> Value {
    let mut v = serde_json::to_value(&c.config).unwrap_or(json!({}));
    if c.config.hostname.as_deref().unwrap_or("").is_empty() {
        let mode = crate::sandbox::mode(c.host_config.network_mode.as_deref().unwrap_or(""));
        let h = match mode {
            crate::sandbox::Mode::Host => nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default(),
            crate::sandbox::Mode::Container(other) => st
                .container(&other)
                .map(crate::sandbox::hostname_of)
                .unwrap_or_else(|_| crate::sandbox::hostname_of(c)),
            _ => crate::sandbox::hostname_of(c),
        };
        v["Hostname"] = json!(h);
    }
    v
}

fn endpoint_json(c: &Container, st: &State, name: &str) -> Value {
    let att = c
        .attachments
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, a)| a.clone())
        .unwrap_or_default();
    let net = st.networks.get(&att.network_id);
    let mut aliases: Vec<String> = att.aliases.clone();
    if net.map(|n| n.dns).unwrap_or(false) && c.state.status == "running" {
        aliases.push(c.id[..12].to_string());
    }
    let ep = c.endpoints.get(name);
    let mut dns_names: Vec<String> = Vec::new();
    if net.map(|n| n.dns).unwrap_or(false) {
        dns_names = crate::sandbox::dns_names(c, &att);
    }
    json!({
        "IPAMConfig": if att.ipv4.is_none() && att.ipv6.is_none() && att.link_local_ips.is_empty() { Value::Null } else {
            let mut m = json!({"IPv4Address": att.ipv4.map(|i| i.to_string()).unwrap_or_default(), "IPv6Address": att.ipv6.map(|i| i.to_string()).unwrap_or_default()});
            if !att.link_local_ips.is_empty() {
                m["LinkLocalIPs"] = json!(att.link_local_ips);
            }
            m
        },
        "Links": if att.links.is_empty() { Value::Null } else { json!(att.links) },
        "Aliases": if aliases.is_empty() { Value::Null } else { json!(aliases) },
        "MacAddress": ep.map(|e| format_mac(&e.mac)).or_else(|| att.mac.clone()).unwrap_or_default(),
        "DriverOpts": if att.driver_opts.is_empty() { Value::Null } else { json!(att.driver_opts) },
        "GwPriority": att.gw_priority,
        "NetworkID": att.network_id,
        "EndpointID": ep.map(|e| e.id.clone()).unwrap_or_default(),
        "Gateway": ep.and_then(|e| e.gateway).map(|g| g.to_string()).unwrap_or_default(),
        "IPAddress": ep.and_then(|e| e.ip).map(|i| i.to_string()).unwrap_or_default(),
        "IPPrefixLen": ep.map(|e| e.prefix).unwrap_or(0),
        "IPv6Gateway": ep.and_then(|e| e.ip6).map(|(_, _, g)| g.to_string()).unwrap_or_default(),
        "GlobalIPv6Address": ep.and_then(|e| e.ip6).map(|(a, _, _)| a.to_string()).unwrap_or_default(),
        "GlobalIPv6PrefixLen": ep.and_then(|e| e.ip6).map(|(_, l, _)| l).unwrap_or(0),
        "DNSNames": if dns_names.is_empty() { Value::Null } else { json!(dns_names) },
    })
}

fn ports_map(c: &Container) -> Value {
    let mut m = Map::new();
    for p in c.config.exposed_ports.clone().unwrap_or_default() {
        m.insert(p, Value::Null);
    }
    if c.state.status == "running" {
        for p in &c.ports {
            let key = format!("{}/{}", p.container_port, p.proto);
            let entry = m.entry(key).or_insert(Value::Null);
            if entry.is_null() {
                *entry = json!([]);
            }
            if let Some(a) = entry.as_array_mut() {
                if p.container_ip.is_some() {
                    a.push(json!({"HostIp": p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()), "HostPort": p.host_port.to_string()}));
                }
                if p.container_ip6.is_some() && p.host_ip.is_none() {
                    a.push(json!({"HostIp": "::", "HostPort": p.host_port.to_string()}));
                }
            }
        }
    }
    Value::Object(m)
}

/// The Mounts list: binds, and volumes with their name and data directory.
fn mounts_json(c: &Container, dir: &Path) -> Vec<Value> {
    // <root>/containers/<id> -> <root>/volumes/<name>/_data
    let volumes = dir
        .parent()
        .and_then(|p| p.parent())
        .map(|r| r.join("volumes"));
    c.host_config
        .binds
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|b| {
            let p: Vec<&str> = b.split(':').collect();
            let mode = p.get(2).copied().unwrap_or("");
            let rw = !mode.split(',').any(|o| o == "ro");
            if crate::volumes::is_volume_source(p[0]) {
                let src = volumes.as_ref().map(|v| v.join(p[0]).join("_data").display().to_string()).unwrap_or_default();
                json!({"Type": "volume", "Name": p[0], "Source": src, "Destination": p.get(1).copied().unwrap_or(""), "Driver": "local", "Mode": mode, "RW": rw, "Propagation": ""})
            } else {
                json!({"Type": "bind", "Source": p[0], "Destination": p.get(1).copied().unwrap_or(""), "Mode": mode, "RW": rw, "Propagation": "rprivate"})
            }
        })
        .collect()
}

/// A container's JSON (GET /containers/{id}/json).
pub(crate) fn container(c: &Container, st: &State, dir: &Path) -> Value {
    let mut networks = Map::new();
    for (name, _) in c.attachments.iter().filter(|(n, _)| shown(n)) {
        networks.insert(name.clone(), endpoint_json(c, st, name));
    }
    let primary = c.attachments.first().and_then(|(n, _)| c.endpoints.get(n));
    let running = c.state.status == "running";
    let mut hc = serde_json::to_value(&c.host_config).unwrap_or(json!({}));
    if hc.get("PortBindings").map(|v| v.is_null()).unwrap_or(true) {
        hc["PortBindings"] = json!({});
    }
    // the fields SDKs read whether or not the request set them, with dockerd's defaults
    for (k, v) in [
        ("LogConfig", json!({"Type": "json-file", "Config": {}})),
        ("Runtime", json!("runc")),
        ("CpuRealtimeRuntime", json!(0)),
        ("CpuRealtimePeriod", json!(0)),
    ] {
        if hc.get(k).map(|x| x.is_null()).unwrap_or(true) {
            hc[k] = v;
        }
    }
    if hc["LogConfig"]
        .get("Type")
        .and_then(|t| t.as_str())
        .unwrap_or("")
        .is_empty()
    {
        hc["LogConfig"]["Type"] = json!("json-file");
    }
    json!({
        "Id": c.id, "Created": c.created, "Path": c.path, "Args": c.args,
        "State": {
            "Status": c.state.shown_status(), "Running": running || c.state.status == "restarting", "Paused": c.state.paused && running, "Restarting": c.state.status == "restarting",
            "OOMKilled": false, "Dead": false, "Pid": c.state.pid, "ExitCode": c.state.exit_code,
            "Error": c.state.error, "StartedAt": c.state.started_at, "FinishedAt": c.state.finished_at,
            "Health": c.state.health.as_ref().map(|h| json!({
                "Status": h.status, "FailingStreak": h.failing_streak,
                "Log": h.log.iter().map(|p| json!({"Start": p.start, "End": p.end, "ExitCode": p.exit_code, "Output": p.output})).collect::<Vec<_>>(),
            })),
        },
        "Image": c.image_id, "ResolvConfPath": dir.join("resolv.conf"), "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"), "LogPath": dir.join("json.log"), "Name": format!("/{}", c.name),
        "RestartCount": c.auto_restarts, "Driver": "overlay", "Platform": "linux", "MountLabel": "", "ProcessLabel": "",
        "AppArmorProfile": "", "ExecIDs": Value::Null,
        "HostConfig": hc,
        "GraphDriver": {"Name": "overlay", "Data": {"MergedDir": dir.join("rootfs"), "UpperDir": dir.join("upper"), "WorkDir": dir.join("work")}},
        "Mounts": mounts_json(c, dir),
        "Config": config_json(c, st),
        "NetworkSettings": {
            "Bridge": "", "SandboxID": c.sandbox.as_ref().map(|_| c.id.clone()).unwrap_or_default(),
            "SandboxKey": c.sandbox.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
            "HairpinMode": false, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "Ports": ports_map(c),
            "SecondaryIPAddresses": Value::Null, "SecondaryIPv6Addresses": Value::Null,
            "EndpointID": primary.map(|e| e.id.clone()).unwrap_or_default(),
            "Gateway": primary.and_then(|e| e.gateway).map(|g| g.to_string()).unwrap_or_default(),
            "GlobalIPv6Address": primary.and_then(|e| e.ip6).map(|(a, _, _)| a.to_string()).unwrap_or_default(),
            "GlobalIPv6PrefixLen": primary.and_then(|e| e.ip6).map(|(_, l, _)| l).unwrap_or(0),
            "IPAddress": primary.and_then(|e| e.ip).map(|i| i.to_string()).unwrap_or_default(),
            "IPPrefixLen": primary.map(|e| e.prefix).unwrap_or(0), "IPv6Gateway": primary.and_then(|e| e.ip6).map(|(_, _, g)| g.to_string()).unwrap_or_default(),
            "MacAddress": primary.map(|e| format_mac(&e.mac)).unwrap_or_default(),
            "Networks": networks,
        },
    })
}

/// A container's list entry (GET /containers/json).
pub(crate) fn container_summary(c: &Container, st: &State) -> Value {
    let mut ports: Vec<Value> = Vec::new();
    if c.state.status == "running" {
        for p in &c.ports {
            if p.container_ip.is_some() {
                ports.push(json!({"IP": p.host_ip.map(|i| i.to_string()).unwrap_or_else(|| "0.0.0.0".into()), "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": p.proto.as_str()}));
            }
            if p.container_ip6.is_some() && p.host_ip.is_none() {
                ports.push(json!({"IP": "::", "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": p.proto.as_str()}));
            }
        }
    }
    for e in c.config.exposed_ports.clone().unwrap_or_default() {
        let (port, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        if !ports
            .iter()
            .any(|p| p["PrivatePort"] == port && p["Type"] == proto)
        {
            ports.push(json!({"PrivatePort": port, "Type": proto}));
        }
    }
    let mut networks = Map::new();
    for (name, _) in c.attachments.iter().filter(|(n, _)| shown(n)) {
        networks.insert(name.clone(), endpoint_json(c, st, name));
    }
    let command = std::iter::once(c.path.clone())
        .chain(c.args.clone())
        .collect::<Vec<_>>()
        .join(" ");
    json!({
        "Id": c.id, "Names": [format!("/{}", c.name)], "Image": c.image, "ImageID": c.image_id,
        "Command": command,
        "Created": chrono::DateTime::parse_from_rfc3339(&c.created).map(|t| t.timestamp()).unwrap_or(0),
        "Ports": ports, "Labels": c.config.labels.clone().unwrap_or_default(),
        "State": c.state.shown_status(), "Status": status_text(c),
        "HostConfig": {"NetworkMode": c.host_config.network_mode.clone().unwrap_or_default()},
        "NetworkSettings": {"Networks": networks}, "Mounts": [],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn durations() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(45), "45 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(4000), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
    }
}
