//! `volume create|ls|inspect|rm|prune` (docker/cli `volume/*.go`).

use clap::{ArgAction, Parser};
use serde_json::{json, Value as Json};

use super::container::filter_query;
use super::inspect::{inspect_kind, Kind};
use super::lifecycle::confirm;
use super::{for_each, show_name, Missing};
use crate::args::{min_args, no_args, parse};
use crate::client::{path_escape, Client};
use crate::error::{CliError, Result};
use crate::format::ports::natural_cmp;
use crate::format::template::value::{Map, Value};
use crate::format::{label_fields, render_list};
use crate::opts::kv_map;
use crate::{out, outln};

/// `tether volume create`.
#[derive(Parser, Debug)]
#[command(
    name = "create",
    override_usage = "tether volume create [OPTIONS] [VOLUME]",
    about = "Create a volume"
)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, default_value = "local")]
    driver: String,
    /// Set metadata for a volume
    #[arg(short = 'l', long, action = ArgAction::Append)]
    label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long, action = ArgAction::Append)]
    opt: Vec<String>,
    /// Specify volume name
    #[arg(long)]
    name: Option<String>,
    names: Vec<String>,
}

/// `tether volume create [NAME]`: prints the volume's name.
pub async fn create(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: CreateArgs = parse(path, args)?;
    let name = match (a.name.clone(), a.names.as_slice()) {
        (Some(n), []) => n,
        (None, [n]) => n.clone(),
        (None, []) => String::new(),
        _ => {
            return Err(CliError::msg(format!(
                "\"{path}\" requires at most 1 argument (use --name or VOLUME, not both)"
            )))
        }
    };
    let body = json!({"Name": name, "Driver": a.driver, "Labels": kv_map(&a.label), "DriverOpts": kv_map(&a.opt)});
    let v = client.post_json("/volumes/create", Some(&body)).await?;
    outln!("{}", v["Name"].as_str().unwrap_or(""));
    Ok(())
}

/// `tether volume ls`.
#[derive(Parser, Debug)]
#[command(
    name = "ls",
    override_usage = "tether volume ls [OPTIONS]",
    about = "List volumes"
)]
pub struct LsArgs {
    /// Provide filter values (e.g. 'dangling=true')
    #[arg(short = 'f', long, action = ArgAction::Append)]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Only display volume names
    #[arg(short = 'q', long)]
    quiet: bool,
    operands: Vec<String>,
}

fn volume_row(v: &Json) -> Value {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("").to_string();
    let [labels, label] = label_fields(v.get("Labels"));
    Value::Map(Map::context(
        "*formatter.volumeContext",
        vec![
            ("Name".into(), Value::from(s("Name"))),
            ("Driver".into(), Value::from(s("Driver"))),
            ("Scope".into(), Value::from(s("Scope"))),
            ("Mountpoint".into(), Value::from(s("Mountpoint"))),
            labels,
            label,
        ],
    ))
}

/// Renders a /volumes answer with `format` (docker's table: DRIVER, VOLUME NAME).
pub fn render_volumes(list: &Json, format: &str) -> Result<String> {
    let mut vols: Vec<&Json> = list["Volumes"].as_array().into_iter().flatten().collect();
    vols.sort_by(|a, b| {
        natural_cmp(
            a["Name"].as_str().unwrap_or(""),
            b["Name"].as_str().unwrap_or(""),
        )
    });
    let rows: Vec<Value> = vols.into_iter().map(volume_row).collect();
    let header = crate::format::header_map(&[
        ("Name", "VOLUME NAME"),
        ("Driver", "DRIVER"),
        ("Scope", "SCOPE"),
        ("Mountpoint", "MOUNTPOINT"),
        ("Labels", "LABELS"),
    ]);
    Ok(render_list(format, &rows, &header)?)
}

/// `tether volume ls [-q] [-f k=v] [--format T]`.
pub async fn ls(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: LsArgs = parse(path, args)?;
    no_args::<LsArgs>(path, a.operands.len())?;
    let q = filter_query(&a.filter)?;
    let list = client.get_json(&format!("/volumes{}", q.encode())).await?;
    let format = match (a.format.as_deref().unwrap_or(""), a.quiet) {
        ("" | "table", true) => "{{.Name}}".to_string(),
        ("" | "table", false) => "table {{.Driver}}\t{{.Name}}".to_string(),
        (f, _) => f.to_string(),
    };
    out!("{}", render_volumes(&list, &format)?);
    Ok(())
}

/// `tether volume inspect`.
#[derive(Parser, Debug)]
#[command(
    name = "inspect",
    override_usage = "tether volume inspect [OPTIONS] VOLUME [VOLUME...]",
    about = "Display detailed information on one or more volumes"
)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    format: Option<String>,
    names: Vec<String>,
}

/// `tether volume inspect [-f T] VOLUME...`.
pub async fn inspect(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: InspectArgs = parse(path, args)?;
    min_args::<InspectArgs>(path, a.names.len(), 1)?;
    inspect_kind(client, Kind::Volume, &a.names, a.format.as_deref(), false).await
}

/// `tether volume rm`.
#[derive(Parser, Debug)]
#[command(
    name = "rm",
    override_usage = "tether volume rm [OPTIONS] VOLUME [VOLUME...]",
    about = "Remove one or more volumes"
)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    force: bool,
    names: Vec<String>,
}

/// `tether volume rm [-f] VOLUME...`: prints each name removed.
pub async fn rm(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: RmArgs = parse(path, args)?;
    min_args::<RmArgs>(path, a.names.len(), 1)?;
    let q = if a.force { "?force=1" } else { "" };
    for_each(
        &a.names,
        Missing::ignored_if(a.force),
        |n| async move {
            client
                .delete(&format!("/volumes/{}{q}", path_escape(n)))
                .await
        },
        show_name,
    )
    .await
}

/// `tether volume prune`.
#[derive(Parser, Debug)]
#[command(
    name = "prune",
    override_usage = "tether volume prune [OPTIONS]",
    about = "Remove unused local volumes"
)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    all: bool,
    /// Provide filter values (e.g. 'label=<label>')
    #[arg(long, action = ArgAction::Append)]
    filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
}

/// `tether volume prune [-a] [-f] [--filter k=v]`.
pub async fn prune(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: PruneArgs = parse(path, args)?;
    if !a.force && !confirm("WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?") {
        return Ok(());
    }
    let mut filters = a.filter.clone();
    if a.all {
        filters.push("all=true".into());
    }
    let q = filter_query(&filters)?.encode();
    let v = client
        .post_json(&format!("/volumes/prune{q}"), None)
        .await?;
    if let Some(list) = v["VolumesDeleted"].as_array().filter(|l| !l.is_empty()) {
        outln!("Deleted Volumes:");
        for n in list.iter().filter_map(|x| x.as_str()) {
            outln!("{n}");
        }
        outln!();
    }
    outln!("Total reclaimed space: 0B");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn volume_table() {
        let list = json!({"Volumes": [{"Name": "b", "Driver": "local"}, {"Name": "a", "Driver": "local"}]});
        let t = render_volumes(&list, "table {{.Driver}}\t{{.Name}}").unwrap();
        assert_eq!(t, "DRIVER    VOLUME NAME\nlocal     a\nlocal     b\n");
        assert_eq!(render_volumes(&list, "{{.Name}}").unwrap(), "a\nb\n");
    }
}
