//! `ps` / `container ls` (docker/cli `container/list.go` and
//! `formatter/container.go`).

use clap::{ArgAction, Parser};
use serde_json::Value as Json;

use super::container::filter_query;
use crate::args::{no_args, parse};
use crate::client::Client;
use crate::error::Result;
use crate::format::humanize::{go_time_string, human_size_precision, since};
use crate::format::ports::{displayable_ports, PortSummary};
use crate::format::template::value::{Map, Value};
use crate::format::{ellipsis, label_fields, render_list, truncate_id};
use crate::out;

const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

/// `tether ps`.
#[derive(Parser, Debug)]
#[command(
    name = "ps",
    override_usage = "tether ps [OPTIONS]",
    about = "List containers"
)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    all: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", action = ArgAction::Append)]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long = "last", default_value_t = -1, allow_negative_numbers = true)]
    last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    latest: bool,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Display total file sizes
    #[arg(short = 's', long)]
    size: bool,
    operands: Vec<String>,
}

/// The effective template (docker's `NewContainerFormat`).
pub fn ps_format(format: Option<&str>, quiet: bool, size: bool) -> String {
    match format.unwrap_or("") {
        "" | "table" => {
            if quiet {
                "{{.ID}}".into()
            } else if size {
                format!("{DEFAULT_TABLE}\t{{{{.Size}}}}")
            } else {
                DEFAULT_TABLE.into()
            }
        }
        "raw" => {
            if quiet {
                "container_id: {{.ID}}".into()
            } else {
                "container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\ncreated_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\nstatus: {{- pad .Status 1 0}}\nnames: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\nports: {{- pad .Ports 1 0}}\n".into()
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

/// The header row values.
pub fn ps_header() -> Value {
    let h = [
        ("ID", "CONTAINER ID"),
        ("Names", "NAMES"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Ports", "PORTS"),
        ("State", "STATE"),
        ("Status", "STATUS"),
        ("Size", "SIZE"),
        ("Labels", "LABELS"),
        ("Mounts", "MOUNTS"),
        ("LocalVolumes", "LOCAL VOLUMES"),
        ("Networks", "NETWORKS"),
    ];
    crate::format::header_map(&h)
}

fn s<'a>(v: &'a Json, k: &str) -> &'a str {
    v.get(k).and_then(|x| x.as_str()).unwrap_or("")
}

/// One container of `GET /containers/json` as the row docker's templates see.
pub fn ps_row(c: &Json, trunc: bool) -> Value {
    let id = s(c, "Id");
    let image = s(c, "Image");
    let image_id = s(c, "ImageID");
    let image_shown = if image.is_empty() {
        "<no image>".to_string()
    } else if !trunc {
        image.to_string()
    } else if truncate_id(image_id) == truncate_id(image) {
        truncate_id(image)
    } else {
        match crate::reference::parse_named(image) {
            Ok(r) => {
                let mut out = r.familiar_name();
                if let Some(t) = &r.tag {
                    out = format!("{out}:{t}");
                }
                out
            }
            Err(_) => image.to_string(),
        }
    };
    let command = s(c, "Command");
    let command = crate::format::template::value::go_quote(&if trunc {
        ellipsis(command, 20)
    } else {
        command.to_string()
    });
    let names: Vec<String> = c
        .get("Names")
        .and_then(|n| n.as_array())
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .map(|n| n.trim_start_matches('/').to_string())
        .collect();
    let names = if trunc {
        names
            .iter()
            .find(|n| !n.contains('/'))
            .cloned()
            .unwrap_or_default()
    } else {
        names.join(",")
    };
    let created = c.get("Created").and_then(|x| x.as_i64()).unwrap_or(0);
    let ports: Vec<PortSummary> = c
        .get("Ports")
        .and_then(|p| p.as_array())
        .into_iter()
        .flatten()
        .filter_map(PortSummary::from_json)
        .collect();
    let mounts: Vec<String> = c
        .get("Mounts")
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten()
        .map(|m| {
            let name = if s(m, "Name").is_empty() {
                s(m, "Source")
            } else {
                s(m, "Name")
            };
            if trunc {
                ellipsis(name, 15)
            } else {
                name.to_string()
            }
        })
        .collect();
    let local_volumes = c
        .get("Mounts")
        .and_then(|m| m.as_array())
        .into_iter()
        .flatten()
        .filter(|m| s(m, "Driver") == "local")
        .count();
    let mut networks: Vec<String> = c
        .get("NetworkSettings")
        .and_then(|n| n.get("Networks"))
        .and_then(|n| n.as_object())
        .into_iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .collect();
    networks.sort();
    let size_rw = c.get("SizeRw").and_then(|x| x.as_i64()).unwrap_or(0);
    let size_root = c.get("SizeRootFs").and_then(|x| x.as_i64()).unwrap_or(0);
    let size = {
        let srw = human_size_precision(size_rw as f64, 3);
        if size_root > 0 {
            format!(
                "{srw} (virtual {})",
                human_size_precision(size_root as f64, 3)
            )
        } else {
            srw
        }
    };
    let [labels, label] = label_fields(c.get("Labels"));
    let id_shown = if trunc {
        truncate_id(id)
    } else {
        id.to_string()
    };
    Value::Map(Map::context(
        "*formatter.ContainerContext",
        vec![
            ("ID".into(), Value::from(id_shown)),
            ("Image".into(), Value::from(image_shown)),
            ("Command".into(), Value::from(command)),
            ("CreatedAt".into(), Value::from(go_time_string(created))),
            ("RunningFor".into(), Value::from(since(created))),
            ("Ports".into(), Value::from(displayable_ports(&ports))),
            ("State".into(), Value::from(s(c, "State"))),
            ("Status".into(), Value::from(s(c, "Status"))),
            ("Names".into(), Value::from(names)),
            labels,
            label,
            ("Mounts".into(), Value::from(mounts.join(","))),
            (
                "LocalVolumes".into(),
                Value::from(local_volumes.to_string()),
            ),
            ("Networks".into(), Value::from(networks.join(","))),
            ("Size".into(), Value::from(size)),
            // API 1.48+ platform of the image; docker prints <nil> when unknown.
            ("Platform".into(), Value::Nil),
        ],
    ))
}

/// `tether ps [-a] [-q] [--no-trunc] [-f k=v]... [--format T] [-n N] [-l] [-s]`.
pub async fn ps(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: PsArgs = parse(path, args)?;
    no_args::<PsArgs>(path, a.operands.len())?;
    let format = ps_format(a.format.as_deref(), a.quiet, a.size);
    let want_size = a.size || format.contains(".Size");
    let mut limit = a.last;
    if a.latest && limit == -1 {
        limit = 1;
    }
    let q = filter_query(&a.filter)?
        .add_if(a.all, "all", "1")
        .add_if(limit > 0, "limit", limit.to_string())
        .add_if(want_size, "size", "1");
    let list = client
        .get_json(&format!("/containers/json{}", q.encode()))
        .await?;
    let rows: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| ps_row(c, !a.no_trunc))
        .collect();
    let text = render_list(&format, &rows, &ps_header())?;
    out!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Json {
        json!({
            "Id": "4f6a2b1c9d8e7f60123456789abcdef0123456789abcdef0123456789abcdef0",
            "Names": ["/web"],
            "Image": "tbox",
            "ImageID": "sha256:aaaabbbbccccdddd",
            "Command": "sh -c 'trap \"exit 0\" TERM; sleep 1000'",
            "Created": chrono::Utc::now().timestamp() - 5,
            "Ports": [
                {"IP": "0.0.0.0", "PrivatePort": 3000, "PublicPort": 8080, "Type": "tcp"},
                {"PrivatePort": 9000, "Type": "udp"}
            ],
            "Labels": {"app": "web", "tier": "front"},
            "State": "running",
            "Status": "Up 5 seconds",
            "NetworkSettings": {"Networks": {"net-x": {}, "bridge": {}}},
            "Mounts": []
        })
    }

    #[test]
    fn row_fields() {
        let row = ps_row(&sample(), true);
        let t = |f: &str| {
            crate::format::template::Template::parse(f)
                .unwrap()
                .render(&row)
                .unwrap()
        };
        assert_eq!(t("{{.ID}}"), "4f6a2b1c9d8e");
        assert_eq!(t("{{.Command}}"), "\"sh -c 'trap \\\"exit 0…\"");
        assert_eq!(t("{{.RunningFor}}"), "5 seconds ago");
        assert_eq!(t("{{.Ports}}"), "9000/udp, 0.0.0.0:8080->3000/tcp");
        assert_eq!(t("{{.Names}}|{{.Status}}"), "web|Up 5 seconds");
        assert_eq!(t("{{.Labels}}"), "app=web,tier=front");
        assert_eq!(t("{{.Label \"tier\"}}"), "front");
        assert_eq!(t("{{.Networks}}"), "bridge,net-x");
        assert_eq!(t("{{.State}}"), "running");
        assert_eq!(t("{{.Size}}"), "0B");
        let full = ps_row(&sample(), false);
        let id = crate::format::template::Template::parse("{{.ID}}")
            .unwrap()
            .render(&full)
            .unwrap();
        assert_eq!(id.len(), 64);
    }

    #[test]
    fn default_table() {
        let mut c = sample();
        c["Ports"] = json!([]);
        c["Command"] = json!("sleep 100");
        let rows = vec![ps_row(&c, true)];
        let out = render_list(&ps_format(None, false, false), &rows, &ps_header()).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "CONTAINER ID   IMAGE     COMMAND       CREATED         STATUS         PORTS     NAMES"
        );
        assert_eq!(
            lines[1],
            "4f6a2b1c9d8e   tbox      \"sleep 100\"   5 seconds ago   Up 5 seconds             web"
        );
        let empty = render_list(&ps_format(None, false, false), &[], &ps_header()).unwrap();
        assert_eq!(
            empty,
            "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(ps_format(None, true, false), "{{.ID}}");
        assert_eq!(ps_format(Some("{{.Names}}"), true, false), "{{.ID}}");
        assert!(ps_format(None, false, true).ends_with("\t{{.Size}}"));
        let rows = vec![ps_row(&sample(), true)];
        let out = render_list("table {{.Names}}\t{{.Ports}}", &rows, &ps_header()).unwrap();
        assert_eq!(
            out,
            "NAMES     PORTS\nweb       9000/udp, 0.0.0.0:8080->3000/tcp\n"
        );
    }
}
