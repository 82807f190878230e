//! The topology of what tether made: networks, the containers on them with their
//! addresses and aliases, published ports and legacy links — as JSON, as Graphviz DOT
//! (written here) and as SVG (DOT laid out and drawn in-process by the `layout-rs`
//! crate). Behind `tether network graph` (GET /tether/v1/graph) and the daemon's live page
//! (`tether daemon --ui`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{Engine, EngineError, State};

/// One network of the picture.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetNode {
    /// Name.
    pub name: String,
    /// Driver (bridge, host, null).
    pub driver: String,
    /// Subnets ("172.18.0.0/16", "fd00:1::/64").
    pub subnets: Vec<String>,
    /// `--internal`.
    pub internal: bool,
    /// The bridge interface, for bridge networks.
    pub bridge: Option<String>,
}

/// One container's endpoint.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Attach {
    /// The network's name.
    pub network: String,
    /// Addresses on it.
    pub addresses: Vec<String>,
    /// `--network-alias` names.
    pub aliases: Vec<String>,
}

/// One container of the picture.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CtrNode {
    /// Name.
    pub name: String,
    /// Short id.
    pub id: String,
    /// created, running, exited.
    pub status: String,
    /// Endpoints (live ones while running; the requested networks otherwise).
    pub networks: Vec<Attach>,
    /// Published ports as "HOSTIP:HOSTPORT->PORT/PROTO".
    pub ports: Vec<String>,
    /// Legacy links as "TARGET:ALIAS".
    pub links: Vec<String>,
}

/// The topology (GET /tether/v1/graph?format=json).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Topology {
    /// Networks, by name.
    pub networks: Vec<NetNode>,
    /// Containers on them, by name.
    pub containers: Vec<CtrNode>,
}

fn build(st: &State, only: &[String]) -> Topology {
    let mut networks: Vec<NetNode> = st
        .networks
        .values()
        .filter(|n| only.is_empty() || only.contains(&n.name))
        .map(|n| {
            let mut subnets: Vec<String> = n.pool.iter().map(|p| p.subnet.to_string()).collect();
            subnets.extend(n.pool6.iter().map(|p| p.subnet.to_string()));
            NetNode {
                name: n.name.clone(),
                driver: n.driver.clone(),
                subnets,
                internal: n.internal,
                bridge: n.bridge.clone(),
            }
        })
        .collect();
    networks.sort_by(|a, b| a.name.cmp(&b.name));
    let shown: Vec<&str> = networks.iter().map(|n| n.name.as_str()).collect();
    let mut containers: Vec<CtrNode> = st
        .containers
        .values()
        .filter_map(|c| {
            let nets: Vec<Attach> = c
                .attachments
                .iter()
                .filter(|(name, _)| shown.contains(&name.as_str()))
                .map(|(name, a)| {
                    let ep = c.endpoints.get(name);
                    let mut addresses: Vec<String> = ep
                        .and_then(|e| e.ip)
                        .map(|i| i.to_string())
                        .into_iter()
                        .collect();
                    addresses.extend(ep.and_then(|e| e.ip6).map(|(a, _, _)| a.to_string()));
                    Attach {
                        network: name.clone(),
                        addresses,
                        aliases: a.aliases.clone(),
                    }
                })
                .collect();
            let mode = c.host_config.network_mode.clone().unwrap_or_default();
            let nets = if nets.is_empty() && shown.contains(&mode.as_str()) {
                // host and none: no attachment record, the mode names the network
                vec![Attach {
                    network: mode,
                    addresses: Vec::new(),
                    aliases: Vec::new(),
                }]
            } else {
                nets
            };
            if nets.is_empty() {
                return None;
            }
            Some(CtrNode {
                name: c.name.clone(),
                id: c.id[..12].to_string(),
                status: c.state.status.clone(),
                networks: nets,
                ports: c
                    .ports
                    .iter()
                    .map(|p| {
                        format!(
                            "{}:{}->{}/{}",
                            p.host_ip
                                .map(|i| i.to_string())
                                .unwrap_or_else(|| "0.0.0.0".into()),
                            p.host_port,
                            p.container_port,
                            p.proto
                        )
                    })
                    .collect(),
                links: c.host_config.links.clone().unwrap_or_default(),
            })
        })
        .collect();
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    Topology {
        networks,
        containers,
    }
}

/// Quotes a DOT ID (a double-quoted string, `"` and `\` escaped).
fn q(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The topology as a Graphviz digraph: networks as boxes, containers as ellipses
/// labelled with name and addresses, an edge per endpoint (labelled with the aliases),
/// the host as a node with an edge per published port, dashed edges for links.
pub fn dot(t: &Topology) -> String {
    let mut out = String::from("digraph tether {\n  rankdir=LR;\n");
    for n in &t.networks {
        let mut label = format!("network {}", n.name);
        if !n.subnets.is_empty() {
            label.push_str(&format!(" {}", n.subnets.join(" ")));
        }
        if n.internal {
            label.push_str(" (internal)");
        }
        out.push_str(&format!(
            "  {} [shape=box, label={}];\n",
            q(&format!("net:{}", n.name)),
            q(&label)
        ));
    }
    let mut published = false;
    for c in &t.containers {
        let addrs: Vec<String> = c
            .networks
            .iter()
            .flat_map(|a| a.addresses.iter().cloned())
            .collect();
        let label = if addrs.is_empty() {
            format!("{} ({})", c.name, c.status)
        } else {
            format!("{} {}", c.name, addrs.join(" "))
        };
        out.push_str(&format!(
            "  {} [shape=ellipse, label={}];\n",
            q(&format!("ctr:{}", c.name)),
            q(&label)
        ));
        for a in &c.networks {
            let mut attrs = String::new();
            if !a.aliases.is_empty() {
                attrs = format!(" [label={}]", q(&format!("alias {}", a.aliases.join(","))));
            }
            out.push_str(&format!(
                "  {} -> {}{attrs};\n",
                q(&format!("ctr:{}", c.name)),
                q(&format!("net:{}", a.network))
            ));
        }
        for p in &c.ports {
            published = true;
            out.push_str(&format!(
                "  \"host\" -> {} [label={}];\n",
                q(&format!("ctr:{}", c.name)),
                q(p)
            ));
        }
        for l in &c.links {
            let (target, alias) = l.split_once(':').unwrap_or((l.as_str(), l.as_str()));
            let target = target.trim_start_matches('/');
            if t.containers.iter().any(|o| o.name == target) {
                out.push_str(&format!(
                    "  {} -> {} [style=dashed, label={}];\n",
                    q(&format!("ctr:{}", c.name)),
                    q(&format!("ctr:{target}")),
                    q(&format!(
                        "link {}",
                        alias.rsplit('/').next().unwrap_or(alias)
                    ))
                ));
            }
        }
    }
    if published {
        out.push_str("  \"host\" [shape=box, label=\"host (published ports)\"];\n");
    }
    if t.networks.is_empty() {
        out.push_str("  \"none\" [shape=box, label=\"no networks\"];\n");
    }
    out.push_str("}\n");
    out
}

/// Lays out and draws DOT text as SVG with `layout-rs`.
///
/// Errors: the DOT text does not parse (names the parser's error).
pub fn svg(dot_text: &str) -> Result<String, EngineError> {
    use layout::backends::svg::SVGWriter;
    use layout::gv::{DotParser, GraphBuilder};
    let mut parser = DotParser::new(dot_text);
    let graph = parser
        .process()
        .map_err(|e| EngineError::Internal(format!("drawing the topology: {e}")))?;
    let mut builder = GraphBuilder::new();
    builder.visit_graph(&graph);
    let mut vg = builder.get();
    let mut writer = SVGWriter::new();
    vg.do_it(false, false, false, &mut writer);
    Ok(writer.finalize())
}

/// The formats of [`Engine::graph`].
pub const FORMATS: [&str; 3] = ["svg", "dot", "json"];

impl Engine {
    /// The topology of networks `only` (all when empty) in `format` (svg, dot or json),
    /// with its content type.
    ///
    /// Errors: 400 an unknown format; 404 an unknown network.
    pub async fn graph(
        &self,
        only: &[String],
        format: &str,
    ) -> Result<(String, &'static str), EngineError> {
        if !FORMATS.contains(&format) {
            return Err(EngineError::InvalidParam(format!(
                "invalid graph format {format:?}: expected one of {}",
                FORMATS.join(", ")
            )));
        }
        let t = {
            let st = self.state.lock().await;
            let mut names = Vec::new();
            for n in only {
                names.push(st.network(n)?.name.clone());
            }
            build(&st, &names)
        };
        Ok(match format {
            "json" => (
                serde_json::to_string_pretty(&t)
                    .map_err(|e| EngineError::Internal(format!("encoding the topology: {e}")))?,
                "application/json",
            ),
            "dot" => (dot(&t), "text/vnd.graphviz"),
            _ => {
                let d = dot(&t);
                (
                    tokio::task::spawn_blocking(move || svg(&d))
                        .await
                        .map_err(|e| EngineError::Internal(e.to_string()))??,
                    "image/svg+xml",
                )
            }
        })
    }
}

/// Container names per network, for tests and summaries.
pub fn members(t: &Topology) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in &t.containers {
        for a in &c.networks {
            m.entry(a.network.clone()).or_default().push(c.name.clone());
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Topology {
        Topology {
            networks: vec![NetNode {
                name: "app-net".into(),
                driver: "bridge".into(),
                subnets: vec!["172.18.0.0/16".into()],
                internal: false,
                bridge: Some("tb-1".into()),
            }],
            containers: vec![
                CtrNode {
                    name: "web".into(),
                    id: "0123456789ab".into(),
                    status: "running".into(),
                    networks: vec![Attach {
                        network: "app-net".into(),
                        addresses: vec!["172.18.0.2".into()],
                        aliases: vec!["www".into()],
                    }],
                    ports: vec!["0.0.0.0:8080->80/tcp".into()],
                    links: vec!["db:database".into()],
                },
                CtrNode {
                    name: "db".into(),
                    id: "ba9876543210".into(),
                    status: "running".into(),
                    networks: vec![Attach {
                        network: "app-net".into(),
                        addresses: vec!["172.18.0.3".into()],
                        aliases: vec![],
                    }],
                    ports: vec![],
                    links: vec![],
                },
            ],
        }
    }

    #[test]
    fn dot_and_svg_show_every_part() {
        let d = dot(&sample());
        for part in [
            "network app-net 172.18.0.0/16",
            "web 172.18.0.2",
            "alias www",
            "0.0.0.0:8080->80/tcp",
            "link database",
        ] {
            assert!(d.contains(part), "{part} missing from {d}");
        }
        let s = svg(&d).expect("svg");
        assert!(s.contains("<svg"), "{s}");
        for part in ["web", "db", "app-net", "8080"] {
            assert!(s.contains(part), "{part} missing from the SVG");
        }
        let empty = dot(&Topology {
            networks: vec![],
            containers: vec![],
        });
        assert!(svg(&empty).expect("svg").contains("no networks"));
        assert_eq!(members(&sample())["app-net"], vec!["web", "db"]);
    }
}
