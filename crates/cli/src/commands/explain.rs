//! `tether network explain [--probe] [--format json] SRC DST[:PORT[/tcp|udp]]`: why SRC
//! can or cannot reach DST, hop by hop, with the fix for the first hop that fails
//! (GET /tether/v1/explain).

use clap::Parser;
use serde_json::Value as Json;

use crate::args::{exact_args, parse};
use crate::client::{path_escape, Client};
use crate::error::{CliError, Result};
use crate::{out, outln};

/// `tether network explain`.
#[derive(Parser, Debug)]
#[command(
    name = "explain",
    override_usage = "tether network explain [OPTIONS] SRC DST[:PORT[/tcp|udp]]",
    about = "Explain whether and why SRC reaches DST (SRC: container, host or address; DST: container, host, address or a name as SRC types it)"
)]
pub struct ExplainArgs {
    /// Also try the connection from SRC's namespace (TCP) and say whether model and reality agree
    #[arg(long)]
    probe: bool,
    /// Output format: text (default) or json
    #[arg(short = 'f', long, default_value = "text")]
    format: String,
    operands: Vec<String>,
}

/// The text form: the verdict, the numbered hops, the fix, the probe.
pub fn render(v: &Json) -> String {
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
    let dst = match v["Port"].as_u64() {
        Some(p) => format!("{}:{p}/{}", s("Destination"), s("Proto")),
        None => s("Destination"),
    };
    let ok = v["Reachable"].as_bool().unwrap_or(false);
    let mut out = format!(
        "{} {} {} {dst}\n",
        if ok { "✓" } else { "✗" },
        s("Source"),
        if ok { "can reach" } else { "cannot reach" }
    );
    for (i, h) in v["Hops"].as_array().into_iter().flatten().enumerate() {
        out.push_str(&format!(
            "  {}. {:<4} {:<8} {}\n",
            i + 1,
            if h["Ok"].as_bool().unwrap_or(false) {
                "ok"
            } else {
                "FAIL"
            },
            h["Step"].as_str().unwrap_or_default(),
            h["Detail"].as_str().unwrap_or_default()
        ));
    }
    if let Some(f) = v["Fix"].as_str() {
        out.push_str(&format!("fix: {f}\n"));
    }
    if let Some(p) = v["Probe"].as_object() {
        let detail = p.get("Detail").and_then(Json::as_str).unwrap_or_default();
        if p.get("Probed").and_then(Json::as_bool).unwrap_or(false) {
            let agrees = p.get("Agrees").and_then(Json::as_bool).unwrap_or(false);
            out.push_str(&format!(
                "probe: {detail} — {}\n",
                if agrees {
                    "the model agrees"
                } else {
                    "the model DISAGREES: please report this"
                }
            ));
        } else {
            out.push_str(&format!("probe: {detail}\n"));
        }
    }
    out
}

/// Runs `tether network explain`. Exit status 0 when DST is reachable, 1 when not.
pub async fn explain(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: ExplainArgs = parse(path, args)?;
    exact_args::<ExplainArgs>(path, a.operands.len(), 2)?;
    if a.format != "text" && a.format != "json" {
        return Err(CliError::msg(format!(
            "invalid --format {:?}: text or json",
            a.format
        )));
    }
    let q = format!(
        "/tether/v1/explain?src={}&dst={}{}",
        path_escape(&a.operands[0]),
        path_escape(&a.operands[1]),
        if a.probe { "&probe=1" } else { "" }
    );
    let v = client.get_json(&q).await?;
    if a.format == "json" {
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        out!("{}", render(&v));
    }
    if v["Reachable"].as_bool().unwrap_or(false) {
        Ok(())
    } else {
        Err(CliError::exit(1))
    }
}

/// `tether network graph`.
#[derive(Parser, Debug)]
#[command(
    name = "graph",
    override_usage = "tether network graph [OPTIONS] [NETWORK...]",
    about = "Draw networks, containers with their addresses and aliases, published ports and links"
)]
pub struct GraphArgs {
    /// Output format: svg (default), dot (for Graphviz) or json
    #[arg(short = 'f', long, default_value = "svg")]
    format: String,
    /// Write to this file instead of standard output
    #[arg(short = 'o', long)]
    output: Option<std::path::PathBuf>,
    operands: Vec<String>,
}

/// Runs `tether network graph` (GET /tether/v1/graph).
pub async fn graph(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: GraphArgs = parse(path, args)?;
    let q = format!(
        "/tether/v1/graph?format={}&networks={}",
        path_escape(&a.format),
        path_escape(&a.operands.join(","))
    );
    let body = client.get(&q).await?;
    match &a.output {
        Some(p) => std::fs::write(p, &body)
            .map_err(|e| CliError::msg(format!("writing {}: {e}", p.display())))?,
        None => out!("{}", String::from_utf8_lossy(&body)),
    }
    Ok(())
}

/// `tether network dns-setup`.
#[derive(Parser, Debug)]
#[command(
    name = "dns-setup",
    override_usage = "tether network dns-setup [--apply]",
    about = "Print (or apply) the systemd-resolved per-link settings that let the host resolve NAME.NETWORK"
)]
pub struct DnsSetupArgs {
    /// Run the resolvectl commands instead of printing them
    #[arg(long)]
    apply: bool,
}

/// The resolvectl commands for the host's DNS of each network (systemd-resolved,
/// resolvectl(1): a per-link DNS server and a routing-only domain `~NETWORK`).
pub fn dns_setup_commands(v: &Json) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for n in v.as_array().into_iter().flatten() {
        let s = |k: &str| n[k].as_str().unwrap_or_default().to_string();
        out.push(vec![
            "resolvectl".into(),
            "dns".into(),
            s("Bridge"),
            s("Gateway"),
        ]);
        out.push(vec![
            "resolvectl".into(),
            "domain".into(),
            s("Bridge"),
            format!("~{}", s("Network")),
        ]);
    }
    out
}

/// Runs `tether network dns-setup` (GET /tether/v1/dns-setup).
pub async fn dns_setup(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: DnsSetupArgs = parse(path, args)?;
    let v = client.get_json("/tether/v1/dns-setup").await?;
    let cmds = dns_setup_commands(&v);
    if cmds.is_empty() {
        outln!("# no user-defined network serves names to the host yet");
        return Ok(());
    }
    for c in &cmds {
        if a.apply {
            let st = std::process::Command::new(&c[0])
                .args(&c[1..])
                .status()
                .map_err(|e| {
                    CliError::msg(format!(
                        "cannot run {} (is systemd-resolved installed?): {e}",
                        c[0]
                    ))
                })?;
            if !st.success() {
                return Err(CliError::msg(format!("{} failed ({st})", c.join(" "))));
            }
        } else {
            outln!("{}", c.join(" "));
        }
    }
    Ok(())
}
