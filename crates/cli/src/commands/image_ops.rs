//! `commit`, `history`, `save` and `system df` (docker/cli `container/commit.go`,
//! `image/history.go`, `image/save.go`, `system/df.go`, `formatter/history.go`,
//! `formatter/disk_usage.go`).

use std::io::{IsTerminal, Write};

use clap::{ArgAction, Parser};
use serde_json::Value as Json;

use crate::args::{exact_args, min_args, no_args, parse, range_args};
use crate::client::next_chunk;
use crate::client::{empty_body, path_escape, Client, Query};
use crate::error::{CliError, Result};
use crate::format::humanize::{human_size, human_size_precision, since};
use crate::format::template::value::{Map, Value};
use crate::format::{ellipsis, header_map, render_list, truncate_id};
use crate::{out, outln};

/// `tether commit`.
#[derive(Parser, Debug)]
#[command(
    name = "commit",
    override_usage = "tether commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
    about = "Create a new image from a container's changes"
)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short = 'a', long)]
    author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", action = ArgAction::Append)]
    change: Vec<String>,
    /// Commit message
    #[arg(short = 'm', long)]
    message: Option<String>,
    /// Pause container during commit
    #[arg(short = 'p', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true")]
    pause: String,
    operands: Vec<String>,
}

/// The `POST /commit` query for a commit of `container` as `reference` (docker's
/// `ContainerCommit`: repo = familiar name, tag = the tag or `latest`).
pub fn commit_query(
    container: &str,
    reference: Option<&str>,
    author: Option<&str>,
    message: Option<&str>,
    pause: bool,
    changes: &[String],
) -> Result<Query> {
    let mut q = Query::new().add("container", container);
    if let Some(r) = reference.filter(|r| !r.is_empty()) {
        let n = crate::reference::parse_named(r).map_err(|e| {
            CliError::msg(format!(
                "invalid reference format: {r:?} is not a valid repository[:tag]: {e}"
            ))
        })?;
        if n.digest.is_some() {
            return Err(CliError::msg(
                "refusing to create a tag with a digest reference",
            ));
        }
        q = q
            .add("repo", n.familiar_name())
            .add("tag", n.tag_or_latest());
    }
    q = q
        .add_if(author.is_some(), "author", author.unwrap_or(""))
        .add_if(message.is_some(), "comment", message.unwrap_or(""))
        .add("pause", if pause { "1" } else { "0" });
    for c in changes {
        q = q.add("changes", c.as_str());
    }
    Ok(q)
}

fn parse_bool(flag: &str, v: &str) -> Result<bool> {
    match v {
        "true" | "1" | "t" | "T" | "TRUE" | "True" => Ok(true),
        "false" | "0" | "f" | "F" | "FALSE" | "False" => Ok(false),
        _ => Err(CliError::msg(format!(
            "invalid argument {v:?} for \"{flag}\" flag: strconv.ParseBool: parsing {v:?}: invalid syntax"
        ))),
    }
}

/// `tether commit [-a A] [-c CHANGE]... [-m MSG] [-p=false] CONTAINER [REPO[:TAG]]`:
/// prints the new image ID.
pub async fn commit(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: CommitArgs = parse(path, args)?;
    range_args::<CommitArgs>(path, a.operands.len(), 1, 2)?;
    let pause = parse_bool("--pause", &a.pause)?;
    let q = commit_query(
        &a.operands[0],
        a.operands.get(1).map(String::as_str),
        a.author.as_deref(),
        a.message.as_deref(),
        pause,
        &a.change,
    )?;
    let v = client
        .post_json(&format!("/commit{}", q.encode()), None)
        .await?;
    outln!("{}", v["Id"].as_str().unwrap_or(""));
    Ok(())
}

/// `tether history`.
#[derive(Parser, Debug)]
#[command(
    name = "history",
    override_usage = "tether history [OPTIONS] IMAGE",
    about = "Show the history of an image"
)]
pub struct HistoryArgs {
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Print sizes and dates in human readable format
    #[arg(short = 'H', long, num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value = "true")]
    human: String,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    operands: Vec<String>,
}

const HISTORY_TABLE: &str =
    "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";

/// The effective history template (docker's `NewHistoryFormat`).
pub fn history_format(format: Option<&str>, quiet: bool) -> String {
    match format.unwrap_or("") {
        "" | "table" if quiet => "{{.ID}}".into(),
        "" | "table" => HISTORY_TABLE.into(),
        f => f.to_string(),
    }
}

fn rfc3339_local(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|d| {
            d.with_timezone(&chrono::Local)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        })
        .unwrap_or_default()
}

/// One `GET /images/{name}/history` item as the row docker's history templates see.
pub fn history_row(h: &Json, human: bool, trunc: bool) -> Value {
    let id = h["Id"].as_str().unwrap_or("");
    let id = if trunc && id.starts_with("sha256:") {
        truncate_id(id)
    } else {
        id.to_string()
    };
    let created = h["Created"].as_i64().unwrap_or(0);
    let created_at = rfc3339_local(created);
    let created_since = if human {
        since(created)
    } else {
        created_at.clone()
    };
    let by = h["CreatedBy"].as_str().unwrap_or("").replace('\t', " ");
    let by = if trunc { ellipsis(&by, 45) } else { by };
    let size = h["Size"].as_i64().unwrap_or(0);
    let size = if human {
        human_size_precision(size as f64, 3)
    } else {
        size.to_string()
    };
    let tags: Vec<String> = h["Tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    Value::Map(Map::context(
        "*formatter.historyContext",
        vec![
            ("ID".into(), Value::from(id)),
            ("CreatedSince".into(), Value::from(created_since)),
            ("CreatedAt".into(), Value::from(created_at)),
            ("CreatedBy".into(), Value::from(by)),
            ("Size".into(), Value::from(size)),
            (
                "Comment".into(),
                Value::from(h["Comment"].as_str().unwrap_or("").to_string()),
            ),
            ("Tags".into(), Value::from(tags.join(", "))),
        ],
    ))
}

fn history_header() -> Value {
    header_map(&[
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
        ("Tags", "TAGS"),
    ])
}

/// `tether history [-H=false] [--no-trunc] [-q] [--format T] IMAGE`.
pub async fn history(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: HistoryArgs = parse(path, args)?;
    exact_args::<HistoryArgs>(path, a.operands.len(), 1)?;
    let human = parse_bool("--human", &a.human)?;
    let v = client
        .get_json(&format!("/images/{}/history", path_escape(&a.operands[0])))
        .await?;
    let rows: Vec<Value> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| history_row(h, human, !a.no_trunc))
        .collect();
    let format = history_format(a.format.as_deref(), a.quiet);
    out!("{}", render_list(&format, &rows, &history_header())?);
    Ok(())
}

/// `tether save`.
#[derive(Parser, Debug)]
#[command(
    name = "save",
    override_usage = "tether save [OPTIONS] IMAGE [IMAGE...]",
    about = "Save one or more images to a tar archive (streamed to STDOUT by default)"
)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short = 'o', long)]
    output: Option<String>,
    images: Vec<String>,
}

/// `tether save [-o FILE] IMAGE...`: the archive goes to a temp file next to FILE
/// that is renamed into place when complete (so a failed save leaves no partial FILE),
/// or to stdout (refused when stdout is a terminal).
pub async fn save(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: SaveArgs = parse(path, args)?;
    min_args::<SaveArgs>(path, a.images.len(), 1)?;
    let to_file = a.output.as_deref().filter(|o| !o.is_empty() && *o != "-");
    if to_file.is_none() && std::io::stdout().is_terminal() {
        return Err(CliError::msg(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let mut q = Query::new();
    for i in &a.images {
        q = q.add("names", i.as_str());
    }
    let resp = client
        .request(
            hyper::Method::GET,
            &format!("/images/get{}", q.encode()),
            empty_body(),
            None,
        )
        .await?;
    let mut body = resp.into_body();
    match to_file {
        Some(file) => {
            let target = std::path::Path::new(file);
            let dir = target
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."));
            let base = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image.tar".into());
            let tmp_path = dir.join(format!(
                ".{base}.tmp-{}-{}",
                std::process::id(),
                chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
            ));
            let res = async {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&tmp_path)
                    .map_err(|e| {
                        CliError::msg(format!(
                            "failed to save image: cannot write to {}: {e}",
                            dir.display()
                        ))
                    })?;
                while let Some(chunk) = next_chunk(&mut body).await? {
                    f.write_all(&chunk)?;
                }
                f.sync_all()?;
                std::fs::rename(&tmp_path, target)
                    .map_err(|e| CliError::msg(format!("failed to save image: {file}: {e}")))
            }
            .await;
            if res.is_err() {
                let _ = std::fs::remove_file(&tmp_path);
            }
            res?;
        }
        None => {
            let mut o = std::io::stdout().lock();
            while let Some(chunk) = next_chunk(&mut body).await? {
                o.write_all(&chunk)?;
            }
            o.flush()?;
        }
    }
    Ok(())
}

/// `tether system df`.
#[derive(Parser, Debug)]
#[command(
    name = "df",
    override_usage = "tether system df [OPTIONS]",
    about = "Show tether disk usage"
)]
pub struct DfArgs {
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    verbose: bool,
    operands: Vec<String>,
}

const DF_TABLE: &str = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";

fn i(v: &Json, k: &str) -> i64 {
    v[k].as_i64().unwrap_or(0)
}

fn with_pct(reclaimable: i64, total: i64) -> String {
    if total > 0 {
        format!(
            "{} ({}%)",
            human_size(reclaimable as f64),
            reclaimable * 100 / total
        )
    } else {
        human_size(reclaimable as f64)
    }
}

/// The four summary rows of `system df` (docker's disk usage contexts).
pub fn df_rows(v: &Json) -> Vec<Value> {
    let list = |k: &str| -> Vec<Json> { v[k].as_array().cloned().unwrap_or_default() };
    let row = |t: &str, total: usize, active: usize, size: String, recl: String| {
        Value::Map(Map::context(
            "*formatter.diskUsageContext",
            vec![
                ("Type".into(), Value::from(t.to_string())),
                ("TotalCount".into(), Value::from(total.to_string())),
                ("Active".into(), Value::from(active.to_string())),
                ("Size".into(), Value::from(size)),
                ("Reclaimable".into(), Value::from(recl)),
            ],
        ))
    };
    let images = list("Images");
    let layers = i(v, "LayersSize");
    let used: i64 = images
        .iter()
        .filter(|im| i(im, "Containers") != 0 && i(im, "Size") != -1 && i(im, "SharedSize") != -1)
        .map(|im| i(im, "Size") - i(im, "SharedSize"))
        .sum();
    let containers = list("Containers");
    let active_c = |c: &Json| {
        let s = c["State"].as_str().unwrap_or("");
        s.contains("running") || s.contains("paused") || s.contains("restarting")
    };
    let c_size: i64 = containers.iter().map(|c| i(c, "SizeRw")).sum();
    let c_recl: i64 = containers
        .iter()
        .filter(|c| !active_c(c))
        .map(|c| i(c, "SizeRw"))
        .sum();
    let volumes = list("Volumes");
    let vsize = |x: &Json| i(&x["UsageData"], "Size").max(0);
    let vrefs = |x: &Json| i(&x["UsageData"], "RefCount");
    let v_size: i64 = volumes.iter().map(vsize).sum();
    let v_recl: i64 = volumes.iter().filter(|x| vrefs(x) == 0).map(vsize).sum();
    let cache = list("BuildCache");
    let b_size: i64 = cache.iter().map(|b| i(b, "Size")).sum();
    let b_recl: i64 = cache
        .iter()
        .filter(|b| !b["InUse"].as_bool().unwrap_or(false))
        .map(|b| i(b, "Size"))
        .sum();
    vec![
        row(
            "Images",
            images.len(),
            images.iter().filter(|im| i(im, "Containers") > 0).count(),
            human_size(layers as f64),
            with_pct(layers - used, layers),
        ),
        row(
            "Containers",
            containers.len(),
            containers.iter().filter(|c| active_c(c)).count(),
            human_size(c_size as f64),
            with_pct(c_recl, c_size),
        ),
        row(
            "Local Volumes",
            volumes.len(),
            volumes.iter().filter(|x| vrefs(x) > 0).count(),
            human_size(v_size as f64),
            with_pct(v_recl, v_size),
        ),
        row(
            "Build Cache",
            cache.len(),
            cache
                .iter()
                .filter(|b| b["InUse"].as_bool().unwrap_or(false))
                .count(),
            human_size(b_size as f64),
            human_size(b_recl as f64),
        ),
    ]
}

fn df_header() -> Value {
    header_map(&[
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ])
}

/// The `system df -v` text: images, containers, volumes and build cache tables.
pub fn df_verbose(v: &Json) -> Result<String> {
    let mut out = String::from("Images space usage:\n\n");
    let img_fmt = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}";
    let rows: Vec<Value> = v["Images"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|im| super::image::image_rows(im, true, false, false))
        .collect();
    let img_header = header_map(&[
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("ID", "IMAGE ID"),
        ("CreatedSince", "CREATED"),
        ("Size", "SIZE"),
        ("SharedSize", "SHARED SIZE"),
        ("UniqueSize", "UNIQUE SIZE"),
        ("Containers", "CONTAINERS"),
    ]);
    out.push_str(&render_list(img_fmt, &rows, &img_header)?);
    out.push_str("\nContainers space usage:\n\n");
    let c_fmt = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}";
    let rows: Vec<Value> = v["Containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let mounts = c["Mounts"]
                .as_array()
                .map(|m| m.iter().filter(|x| x["Type"] == "volume").count())
                .unwrap_or(0);
            let names: Vec<String> = c["Names"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|n| n.as_str().map(|s| s.trim_start_matches('/').to_string()))
                .collect();
            let cmd = ellipsis(c["Command"].as_str().unwrap_or(""), 20);
            Value::Map(Map::context(
                "*formatter.containerContext",
                vec![
                    (
                        "ID".into(),
                        Value::from(truncate_id(c["Id"].as_str().unwrap_or(""))),
                    ),
                    (
                        "Image".into(),
                        Value::from(c["Image"].as_str().unwrap_or("").to_string()),
                    ),
                    ("Command".into(), Value::from(format!("\"{cmd}\""))),
                    ("LocalVolumes".into(), Value::from(mounts.to_string())),
                    (
                        "Size".into(),
                        Value::from(human_size_precision(i(c, "SizeRw") as f64, 3)),
                    ),
                    ("RunningFor".into(), Value::from(since(i(c, "Created")))),
                    (
                        "Status".into(),
                        Value::from(c["Status"].as_str().unwrap_or("").to_string()),
                    ),
                    ("Names".into(), Value::from(names.join(","))),
                ],
            ))
        })
        .collect();
    let c_header = header_map(&[
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("LocalVolumes", "LOCAL VOLUMES"),
        ("Size", "SIZE"),
        ("RunningFor", "CREATED"),
        ("Status", "STATUS"),
        ("Names", "NAMES"),
    ]);
    out.push_str(&render_list(c_fmt, &rows, &c_header)?);
    out.push_str("\nLocal Volumes space usage:\n\n");
    let v_fmt = "table {{.Name}}\t{{.Links}}\t{{.Size}}";
    let rows: Vec<Value> = v["Volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| {
            Value::Map(Map::context(
                "*formatter.volumeContext",
                vec![
                    (
                        "Name".into(),
                        Value::from(x["Name"].as_str().unwrap_or("").to_string()),
                    ),
                    (
                        "Links".into(),
                        Value::from(i(&x["UsageData"], "RefCount").to_string()),
                    ),
                    (
                        "Size".into(),
                        Value::from(human_size(i(&x["UsageData"], "Size").max(0) as f64)),
                    ),
                ],
            ))
        })
        .collect();
    let v_header = header_map(&[
        ("Name", "VOLUME NAME"),
        ("Links", "LINKS"),
        ("Size", "SIZE"),
    ]);
    out.push_str(&render_list(v_fmt, &rows, &v_header)?);
    out.push_str("\nBuild cache usage: 0B\n\nCACHE ID    CACHE TYPE    SIZE      CREATED   LAST USED   USAGE     SHARED\n");
    Ok(out)
}

#[derive(Parser, Debug)]
#[command(
    name = "prune",
    override_usage = "tether builder prune [OPTIONS]",
    about = "Remove build cache"
)]
/// Flags of `tether builder prune`.
pub struct BuilderPruneArgs {
    /// Remove all build cache, not just the entries whose image is gone
    #[arg(short = 'a', long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(hide = true)]
    operands: Vec<String>,
}

/// `tether builder prune [-a] [-f]` (`POST /build/prune`): the classic builder's cache
/// index forgets its entries; the images stay until `image prune`.
pub async fn builder_prune(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: BuilderPruneArgs = parse(path, args)?;
    no_args::<BuilderPruneArgs>(path, a.operands.len())?;
    if !a.force
        && !crate::commands::lifecycle::confirm(
            "WARNING! This will remove all dangling build cache.\nAre you sure you want to continue?",
        )
    {
        return Ok(());
    }
    let q = if a.all { "?all=1" } else { "" };
    let v = client.post_json(&format!("/build/prune{q}"), None).await?;
    super::print_pruned(
        &v,
        "CachesDeleted",
        "Deleted build cache objects:",
        super::pruned_id,
    );
    Ok(())
}

/// `tether system df [-v] [--format T]`.
pub async fn df(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: DfArgs = parse(path, args)?;
    no_args::<DfArgs>(path, a.operands.len())?;
    let v = client.get_json("/system/df").await?;
    if a.verbose && a.format.is_none() {
        out!("{}", df_verbose(&v)?);
        return Ok(());
    }
    let format = match a.format.as_deref().unwrap_or("") {
        "" | "table" => DF_TABLE.to_string(),
        f => f.to_string(),
    };
    out!("{}", render_list(&format, &df_rows(&v), &df_header())?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn commit_queries() {
        let q = commit_query("c1", Some("app"), Some("me"), None, true, &["CMD x".into()])
            .unwrap()
            .encode();
        assert!(q.contains("container=c1"), "{q}");
        assert!(q.contains("repo=app") && q.contains("tag=latest"), "{q}");
        assert!(q.contains("author=me") && !q.contains("comment"), "{q}");
        assert!(q.contains("pause=1") && q.contains("changes=CMD"), "{q}");
        let q = commit_query("c1", Some("reg:5000/a/b:v2"), None, Some("m"), false, &[])
            .unwrap()
            .encode();
        assert!(q.contains("tag=v2") && q.contains("pause=0"), "{q}");
        assert!(q.contains("comment=m"), "{q}");
        assert!(commit_query("c1", Some("Bad Name"), None, None, true, &[]).is_err());
        let q = commit_query("c1", None, None, None, true, &[])
            .unwrap()
            .encode();
        assert!(!q.contains("repo="), "{q}");
    }

    #[test]
    fn history_rows() {
        let h = json!({"Id": "sha256:0123456789abcdef0123", "Created": 0, "CreatedBy": "/bin/sh -c\tapt-get update && apt-get install -y something-long-enough",
                       "Tags": ["a:1"], "Size": 1234567, "Comment": "c"});
        let out = render_list(
            HISTORY_TABLE,
            &[history_row(&h, true, true)],
            &history_header(),
        )
        .unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines[0].starts_with("IMAGE"), "{out}");
        assert!(
            lines[0].contains("CREATED BY") && lines[0].contains("COMMENT"),
            "{out}"
        );
        assert!(lines[1].starts_with("0123456789ab "), "{out}");
        assert!(lines[1].contains("1.23MB"), "{out}");
        assert!(
            lines[1].contains("/bin/sh -c apt-get update && apt-get install…   1.23MB"),
            "{out}"
        );
        let m =
            json!({"Id": "<missing>", "Created": 1, "CreatedBy": "x", "Size": 5, "Comment": ""});
        let out = render_list(
            "{{.ID}} {{.Size}}",
            &[history_row(&m, false, true)],
            &history_header(),
        )
        .unwrap();
        assert_eq!(out, "<missing> 5\n");
        assert_eq!(history_format(None, true), "{{.ID}}");
    }

    #[test]
    fn df_summary() {
        let v = json!({
            "LayersSize": 1000,
            "Images": [{"Containers": 1, "Size": 600, "SharedSize": 100}, {"Containers": 0, "Size": 500, "SharedSize": 100}],
            "Containers": [{"State": "running", "SizeRw": 10}, {"State": "exited", "SizeRw": 30}],
            "Volumes": [{"UsageData": {"Size": 50, "RefCount": 1}}, {"UsageData": {"Size": 150, "RefCount": 0}}],
            "BuildCache": [],
        });
        let out = render_list(DF_TABLE, &df_rows(&v), &df_header()).unwrap();
        let lines: Vec<Vec<&str>> = out
            .lines()
            .map(|l| {
                l.split("  ")
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .collect();
        assert_eq!(
            lines[0],
            vec!["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
        );
        assert_eq!(lines[1], vec!["Images", "2", "1", "1kB", "500B (50%)"]);
        assert_eq!(lines[2], vec!["Containers", "2", "1", "40B", "30B (75%)"]);
        assert_eq!(
            lines[3],
            vec!["Local Volumes", "2", "1", "200B", "150B (75%)"]
        );
        assert_eq!(lines[4], vec!["Build Cache", "0", "0", "0B", "0B"]);
    }
}
