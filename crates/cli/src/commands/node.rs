//! `node ls`: the hosts of the cluster (`tether daemon --cluster-store`), from
//! `GET /nodes`, as `docker node ls` prints Swarm's nodes.

use clap::Parser;
use serde_json::Value as Json;

use crate::args::{no_args, parse};
use crate::client::Client;
use crate::error::Result;
use crate::outln;

/// `tether node ls`.
#[derive(Parser, Debug)]
#[command(
    name = "ls",
    override_usage = "tether node ls [OPTIONS]",
    about = "List the hosts of the cluster"
)]
pub struct LsArgs {
    /// Only display host IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    operands: Vec<String>,
}

/// `tether node ls [-q]`: ID (`*` marks this host), HOSTNAME, ADDRESS, STATUS.
pub async fn ls(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: LsArgs = parse(path, args)?;
    no_args::<LsArgs>(path, a.operands.len())?;
    let list = client.get_json("/nodes").await?;
    let nodes = list.as_array().cloned().unwrap_or_default();
    let s = |n: &Json, p: &str| {
        n.pointer(p)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    if a.quiet {
        for n in &nodes {
            outln!("{}", s(n, "/ID"));
        }
        return Ok(());
    }
    outln!("{:<35} {:<20} {:<16} STATUS", "ID", "HOSTNAME", "ADDRESS");
    for n in &nodes {
        let me = if n["Self"].as_bool() == Some(true) {
            " *"
        } else {
            ""
        };
        outln!(
            "{:<35} {:<20} {:<16} {}",
            format!("{}{me}", s(n, "/ID")),
            s(n, "/Description/Hostname"),
            s(n, "/Status/Addr"),
            match s(n, "/Status/State").as_str() {
                "ready" => "Ready".to_string(),
                "down" => "Down".to_string(),
                o => o.to_string(),
            }
        );
    }
    Ok(())
}
