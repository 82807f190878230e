//! `version` and `info` (docker/cli `system/version.go`, `system/info.go`).

use clap::Parser;
use serde_json::{json, Value as Json};

use crate::args::{no_args, parse};
use crate::client::{Client, MAX_API_VERSION};
use crate::error::{CliError, Result};
use crate::format::humanize::bytes_size;
use crate::format::json as fjson;
use crate::format::template::Template;
use crate::{out, outln};

/// The CLI version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `tether version`.
#[derive(Parser, Debug)]
#[command(
    name = "version",
    override_usage = "tether version [OPTIONS]",
    about = "Show the tether version information"
)]
pub struct VersionArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    format: Option<String>,
    operands: Vec<String>,
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn client_json(api: &str) -> Json {
    json!({
        "Platform": {"Name": ""},
        "Version": VERSION,
        "ApiVersion": if api.is_empty() { MAX_API_VERSION } else { api },
        "DefaultAPIVersion": MAX_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": std::env::consts::OS,
        "Arch": arch(),
        "BuildTime": "",
        "Context": "default",
    })
}

/// The Client: section.
pub fn client_section(api: &str) -> String {
    let mut s = String::from("Client:\n");
    s.push_str(&format!(" Version:           {VERSION}\n"));
    let api_line = if api.is_empty() || api == MAX_API_VERSION {
        MAX_API_VERSION.to_string()
    } else {
        format!("{api} (downgraded from {MAX_API_VERSION})")
    };
    s.push_str(&format!(" API version:       {api_line}\n"));
    s.push_str(&format!(
        " OS/Arch:           {}/{}\n",
        std::env::consts::OS,
        arch()
    ));
    s.push_str(" Context:           default\n");
    s
}

/// The Server: section from `GET /version`.
pub fn server_section(v: &Json) -> String {
    let g = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let platform = v["Platform"]["Name"].as_str().unwrap_or("");
    let mut s = format!("Server: {platform}").trim_end().to_string();
    s.push('\n');
    s.push_str(" Engine:\n");
    s.push_str(&format!("  Version:          {}\n", g("Version")));
    let min = g("MinAPIVersion");
    if min.is_empty() {
        s.push_str(&format!("  API version:      {}\n", g("ApiVersion")));
    } else {
        s.push_str(&format!(
            "  API version:      {} (minimum version {min})\n",
            g("ApiVersion")
        ));
    }
    if !g("GoVersion").is_empty() {
        s.push_str(&format!("  Go version:       {}\n", g("GoVersion")));
    }
    if !g("GitCommit").is_empty() {
        s.push_str(&format!("  Git commit:       {}\n", g("GitCommit")));
    }
    if !g("BuildTime").is_empty() {
        s.push_str(&format!("  Built:            {}\n", g("BuildTime")));
    }
    s.push_str(&format!("  OS/Arch:          {}/{}\n", g("Os"), g("Arch")));
    s.push_str(&format!(
        "  Experimental:     {}\n",
        v["Experimental"].as_bool().unwrap_or(false)
    ));
    for c in v["Components"].as_array().into_iter().flatten() {
        let name = c["Name"].as_str().unwrap_or("");
        if name == "Engine" {
            continue;
        }
        s.push_str(&format!(" {name}:\n"));
        s.push_str(&format!(
            "  Version:          {}\n",
            c["Version"].as_str().unwrap_or("")
        ));
        if let Some(d) = c["Details"].as_object() {
            for (k, val) in d {
                let label = format!("{k}:");
                s.push_str(&format!("  {label:<18}{}\n", val.as_str().unwrap_or("")));
            }
        }
    }
    s
}

/// `tether version [-f T]`.
pub async fn version(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: VersionArgs = parse(path, args)?;
    no_args::<VersionArgs>(path, a.operands.len())?;
    let api = client.api_version().await.unwrap_or_default();
    let server = client.get_json("/version").await;
    if let Some(f) = a.format.as_deref() {
        let t = Template::parse(&crate::format::template_string(f))
            .map_err(|e| CliError::msg(format!("template parsing error: {e}")))?;
        let data = json!({
            "Client": client_json(&api),
            "Server": server.as_ref().ok().cloned().unwrap_or(Json::Null),
        });
        let v = fjson::from_serde(&data);
        let text = t.render(&v)?;
        outln!("{text}");
        return server.map(|_| ());
    }
    out!("{}", client_section(&api));
    match server {
        Ok(v) => {
            outln!();
            out!("{}", server_section(&v));
            Ok(())
        }
        Err(e) => {
            outln!();
            Err(e)
        }
    }
}

/// `tether info`.
#[derive(Parser, Debug)]
#[command(
    name = "info",
    override_usage = "tether info [OPTIONS]",
    about = "Display system-wide information"
)]
pub struct InfoArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    format: Option<String>,
    operands: Vec<String>,
}

/// A docker-like summary of `GET /info`.
pub fn info_text(v: &Json) -> String {
    let mut s = String::new();
    s.push_str("Client:\n");
    s.push_str(&format!(" Version:    {VERSION}\n"));
    s.push_str(" Context:    default\n");
    s.push_str(" Debug Mode: false\n\n");
    s.push_str("Server:\n");
    let num = |k: &str| v[k].as_i64().unwrap_or(0);
    let st = |k: &str| v[k].as_str().unwrap_or("").to_string();
    s.push_str(&format!(" Containers: {}\n", num("Containers")));
    s.push_str(&format!("  Running: {}\n", num("ContainersRunning")));
    s.push_str(&format!("  Paused: {}\n", num("ContainersPaused")));
    s.push_str(&format!("  Stopped: {}\n", num("ContainersStopped")));
    s.push_str(&format!(" Images: {}\n", num("Images")));
    let mut line = |label: &str, val: String| {
        if !val.is_empty() {
            s.push_str(&format!(" {label}: {val}\n"));
        }
    };
    line("Server Version", st("ServerVersion"));
    line("Storage Driver", st("Driver"));
    line("Logging Driver", st("LoggingDriver"));
    line("Cgroup Driver", st("CgroupDriver"));
    line("Cgroup Version", st("CgroupVersion"));
    line("Kernel Version", st("KernelVersion"));
    line("Operating System", st("OperatingSystem"));
    line("OSType", st("OSType"));
    line("Architecture", st("Architecture"));
    if v["NCPU"].is_number() {
        line("CPUs", num("NCPU").to_string());
    }
    if v["MemTotal"].is_number() {
        line("Total Memory", bytes_size(num("MemTotal") as f64));
    }
    line("Name", st("Name"));
    line("ID", st("ID"));
    line("Docker Root Dir", st("DockerRootDir"));
    line(
        "Debug Mode",
        v["Debug"].as_bool().unwrap_or(false).to_string(),
    );
    line(
        "Experimental",
        v["ExperimentalBuild"]
            .as_bool()
            .unwrap_or(false)
            .to_string(),
    );
    line(
        "Live Restore Enabled",
        v["LiveRestoreEnabled"]
            .as_bool()
            .unwrap_or(false)
            .to_string(),
    );
    if v["Cluster"].is_object() {
        let c = &v["Cluster"];
        let cs = |p: &str| {
            c.pointer(p)
                .and_then(|x| x.as_str())
                .unwrap_or("")
                .to_string()
        };
        s.push_str(
            " Cluster:
",
        );
        s.push_str(&format!(
            "  Store: {}
",
            cs("/Store/store")
        ));
        s.push_str(&format!(
            "  Advertise: {}
",
            cs("/Store/advertise")
        ));
        s.push_str(&format!(
            "  Node ID: {}
",
            cs("/Store/node_id")
        ));
        let up = c.pointer("/Store/connected").and_then(|x| x.as_bool()) == Some(true);
        if up {
            s.push_str("  Store Status: connected\n");
        } else {
            s.push_str(&format!(
                "  Store Status: unreachable ({})\n",
                cs("/Store/last_error")
            ));
        }
        match c["Nodes"].as_array() {
            Some(nodes) => {
                s.push_str(&format!("  Nodes: {}\n", nodes.len()));
                for n in nodes {
                    let ns = |k: &str| n[k].as_str().unwrap_or("").to_string();
                    s.push_str(&format!(
                        "   {} {} {}{}\n",
                        ns("addr"),
                        ns("hostname"),
                        ns("state"),
                        if n["is_self"].as_bool() == Some(true) {
                            " (this host)"
                        } else {
                            ""
                        }
                    ));
                }
            }
            None => s.push_str(&format!(
                "  Nodes: ? ({})\n",
                c.pointer("/Nodes/error")
                    .and_then(|x| x.as_str())
                    .unwrap_or("")
            )),
        }
    }
    s
}

/// `tether info [-f T]`.
pub async fn info(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: InfoArgs = parse(path, args)?;
    no_args::<InfoArgs>(path, a.operands.len())?;
    let raw = client.get("/info").await?;
    if let Some(f) = a.format.as_deref() {
        let t = Template::parse(&crate::format::template_string(f))
            .map_err(|e| CliError::msg(format!("template parsing error: {e}")))?;
        let v = fjson::parse(&String::from_utf8_lossy(&raw))
            .map_err(|e| CliError::BadResponse(e.to_string()))?;
        outln!("{}", t.render(&v)?);
        return Ok(());
    }
    let v: Json = crate::client::parse_json(&raw)?;
    out!("{}", info_text(&v));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_version_section() {
        let v = json!({"Platform": {"Name": "tether"}, "Version": "0.1.0", "ApiVersion": "1.47",
            "MinAPIVersion": "1.24", "Os": "linux", "Arch": "amd64",
            "Components": [{"Name": "Engine", "Version": "0.1.0"}, {"Name": "runc", "Version": "1.1.12", "Details": {"GitCommit": "abc"}}]});
        let s = server_section(&v);
        assert!(s.starts_with("Server: tether\n Engine:\n  Version:          0.1.0\n  API version:      1.47 (minimum version 1.24)\n"));
        assert!(s.contains(" runc:\n  Version:          1.1.12\n  GitCommit:        abc\n"));
        assert!(client_section("1.41").contains("1.41 (downgraded from 1.47)"));
    }

    #[test]
    fn info_summary() {
        let s = info_text(
            &json!({"Containers": 3, "ContainersRunning": 1, "ContainersStopped": 2, "Images": 2,
            "ServerVersion": "0.1.0", "NCPU": 2, "MemTotal": 8589934592u64, "Name": "host"}),
        );
        assert!(s.contains("Server:\n Containers: 3\n  Running: 1\n  Paused: 0\n  Stopped: 2\n Images: 2\n Server Version: 0.1.0\n"));
        assert!(s.contains(" CPUs: 2\n Total Memory: 8GiB\n Name: host\n"));
    }
}
