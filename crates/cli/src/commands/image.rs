//! `images`, `rmi`, `tag`, `import`, `load`, `pull` and `image prune`
//! (docker/cli `image/*.go`, `formatter/image.go`).

use std::io::IsTerminal;

use bytes::Bytes;
use clap::{ArgAction, Parser};
use futures::Stream;
use serde_json::Value as Json;

use super::container::filter_query;
use super::lifecycle::confirm;
use super::{display_json_stream, for_each_seq, Missing};
use crate::args::{exact_args, min_args, parse, range_args};
use crate::client::{path_escape, stream_body, Body, Client, Query};
use crate::error::{CliError, Result};
use crate::format::humanize::{go_time_string, human_size, human_size_precision, since};
use crate::format::template::value::{Map, Value};
use crate::format::{render_list, truncate_id};
use crate::reference;
use crate::stream::stdin_channel;
use crate::{out, outln};

const DEFAULT_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";
const DEFAULT_TABLE_DIGEST: &str = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{if .CreatedSince }}{{.CreatedSince}}{{else}}N/A{{end}}\t{{.Size}}";

/// `tether images`.
#[derive(Parser, Debug)]
#[command(
    name = "images",
    override_usage = "tether images [OPTIONS] [REPOSITORY[:TAG]]",
    about = "List images"
)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short = 'a', long)]
    all: bool,
    /// Show digests
    #[arg(long)]
    digests: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", action = ArgAction::Append)]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    /// Only show image IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    operands: Vec<String>,
}

/// The effective template (docker's `NewImageFormat`).
pub fn images_format(format: Option<&str>, quiet: bool, digests: bool) -> String {
    match format.unwrap_or("") {
        "" | "table" => {
            if quiet {
                "{{.ID}}".into()
            } else if digests {
                DEFAULT_TABLE_DIGEST.into()
            } else {
                DEFAULT_TABLE.into()
            }
        }
        f => {
            let mut f = f.to_string();
            if crate::format::is_table(&f) && digests && !f.contains("{{.Digest}}") {
                f.push_str("\t{{.Digest}}");
            }
            f
        }
    }
}

fn images_header() -> Value {
    let h = [
        ("ID", "IMAGE ID"),
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("Digest", "DIGEST"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("Size", "SIZE"),
        ("Containers", "CONTAINERS"),
        ("SharedSize", "SHARED SIZE"),
        ("UniqueSize", "UNIQUE SIZE"),
        ("VirtualSize", "VIRTUAL SIZE"),
    ];
    crate::format::header_map(&h)
}

fn strs(v: &Json, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(|x| x.as_array())
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// The rows docker prints for one image summary (one per repository:tag).
pub fn image_rows(img: &Json, trunc: bool, need_digest: bool, show_digests: bool) -> Vec<Value> {
    let tags = strs(img, "RepoTags");
    let digests = strs(img, "RepoDigests");
    let dangling = (tags.is_empty() && digests.is_empty())
        || (tags == ["<none>:<none>"] && digests == ["<none>@<none>"]);
    let mut rows: Vec<(String, String, String)> = Vec::new();
    if dangling {
        rows.push(("<none>".into(), "<none>".into(), "<none>".into()));
    } else {
        let mut repo_tags: Vec<(String, Vec<String>)> = Vec::new();
        for t in &tags {
            if let Ok(r) = reference::parse_named(t) {
                if let Some(tag) = &r.tag {
                    let name = r.familiar_name();
                    match repo_tags.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, v)) => v.push(tag.clone()),
                        None => repo_tags.push((name, vec![tag.clone()])),
                    }
                }
            }
        }
        let mut repo_digests: Vec<(String, Vec<String>)> = Vec::new();
        for d in &digests {
            if let Ok(r) = reference::parse_named(d) {
                if let Some(dg) = &r.digest {
                    let name = r.familiar_name();
                    match repo_digests.iter_mut().find(|(n, _)| *n == name) {
                        Some((_, v)) => v.push(dg.clone()),
                        None => repo_digests.push((name, vec![dg.clone()])),
                    }
                }
            }
        }
        for (repo, tags) in &repo_tags {
            let ds = repo_digests
                .iter()
                .position(|(n, _)| n == repo)
                .map(|i| repo_digests.remove(i).1)
                .unwrap_or_default();
            let ds = if need_digest { ds } else { Vec::new() };
            for tag in tags {
                if ds.is_empty() {
                    rows.push((repo.clone(), tag.clone(), "<none>".into()));
                }
                for d in &ds {
                    rows.push((repo.clone(), tag.clone(), d.clone()));
                }
            }
        }
        for (repo, ds) in &repo_digests {
            if show_digests {
                for d in ds {
                    rows.push((repo.clone(), "<none>".into(), d.clone()));
                }
            } else {
                rows.push((repo.clone(), "<none>".into(), String::new()));
            }
        }
    }
    let id = img.get("Id").and_then(|x| x.as_str()).unwrap_or("");
    let created = img.get("Created").and_then(|x| x.as_i64()).unwrap_or(0);
    let size = img.get("Size").and_then(|x| x.as_i64()).unwrap_or(0);
    let shared = img.get("SharedSize").and_then(|x| x.as_i64()).unwrap_or(0);
    let containers = img.get("Containers").and_then(|x| x.as_i64()).unwrap_or(0);
    rows.into_iter()
        .map(|(repo, tag, digest)| {
            Value::Map(Map::context(
                "*formatter.imageContext",
                vec![
                    (
                        "ID".into(),
                        Value::from(if trunc {
                            truncate_id(id)
                        } else {
                            id.to_string()
                        }),
                    ),
                    ("Repository".into(), Value::from(repo)),
                    ("Tag".into(), Value::from(tag)),
                    ("Digest".into(), Value::from(digest)),
                    ("CreatedSince".into(), Value::from(since(created))),
                    ("CreatedAt".into(), Value::from(go_time_string(created))),
                    (
                        "Size".into(),
                        Value::from(human_size_precision(size as f64, 3)),
                    ),
                    ("VirtualSize".into(), Value::from(human_size(size as f64))),
                    (
                        "Containers".into(),
                        Value::from(if containers == -1 {
                            "N/A".to_string()
                        } else {
                            containers.to_string()
                        }),
                    ),
                    (
                        "SharedSize".into(),
                        Value::from(if shared == -1 {
                            "N/A".to_string()
                        } else {
                            human_size(shared as f64)
                        }),
                    ),
                    (
                        "UniqueSize".into(),
                        Value::from(if shared == -1 || size == -1 {
                            "N/A".to_string()
                        } else {
                            human_size((size - shared) as f64)
                        }),
                    ),
                ],
            ))
        })
        .collect()
}

/// `tether images [-a] [-q] [--digests] [--no-trunc] [-f k=v] [--format T] [REPO[:TAG]]`.
pub async fn images(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: ImagesArgs = parse(path, args)?;
    range_args::<ImagesArgs>(path, a.operands.len(), 0, 1).map_err(|_| {
        CliError::msg(format!(
            "\"{path}\" requires at most 1 argument.\nSee '{path} --help'."
        ))
    })?;
    let mut filters = a.filter.clone();
    if let Some(m) = a.operands.first() {
        filters.push(format!("reference={m}"));
    }
    let q = filter_query(&filters)?.add_if(a.all, "all", "1");
    let list = client
        .get_json(&format!("/images/json{}", q.encode()))
        .await?;
    let format = images_format(a.format.as_deref(), a.quiet, a.digests);
    let need_digest = a.digests || format.contains("{{.Digest}}");
    let rows: Vec<Value> = list
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|img| image_rows(img, !a.no_trunc, need_digest, a.digests))
        .collect();
    out!("{}", render_list(&format, &rows, &images_header())?);
    Ok(())
}

/// `tether rmi`.
#[derive(Parser, Debug)]
#[command(
    name = "rmi",
    override_usage = "tether rmi [OPTIONS] IMAGE [IMAGE...]",
    about = "Remove one or more images"
)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short = 'f', long)]
    force: bool,
    /// Do not delete untagged parents
    #[arg(long = "no-prune")]
    no_prune: bool,
    images: Vec<String>,
}

/// The lines docker prints for a `DELETE /images/{name}` response.
pub fn delete_lines(v: &Json) -> Vec<String> {
    let mut out = Vec::new();
    for item in v.as_array().into_iter().flatten() {
        if let Some(u) = item.get("Untagged").and_then(|x| x.as_str()) {
            out.push(format!("Untagged: {u}"));
        }
        if let Some(d) = item.get("Deleted").and_then(|x| x.as_str()) {
            out.push(format!("Deleted: {d}"));
        }
    }
    out
}

/// `tether rmi [-f] [--no-prune] IMAGE...`.
pub async fn rmi(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: RmiArgs = parse(path, args)?;
    min_args::<RmiArgs>(path, a.images.len(), 1)?;
    let q = Query::new()
        .add_if(a.force, "force", "1")
        .add_if(a.no_prune, "noprune", "1")
        .encode();
    for_each_seq(
        &a.images,
        Missing::ignored_if(a.force),
        |img| {
            let path = format!("/images/{}{q}", path_escape(img));
            async move { client.delete(&path).await }
        },
        |_, body| {
            let v: Json = serde_json::from_slice(&body).unwrap_or(Json::Null);
            for l in delete_lines(&v) {
                outln!("{l}");
            }
        },
    )
    .await
}

/// `tether tag`.
#[derive(Parser, Debug)]
#[command(
    name = "tag",
    override_usage = "tether tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
    about = "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE"
)]
pub struct TagArgs {
    operands: Vec<String>,
}

/// The `repo`/`tag` query for a target reference (docker's `ImageTag`).
pub fn tag_query(target: &str) -> Result<Query> {
    let r = reference::parse_named(target).map_err(|e| {
        CliError::msg(format!(
            "Error parsing reference: {target:?} is not a valid repository/tag: {e}"
        ))
    })?;
    if r.digest.is_some() {
        return Err(CliError::msg(
            "refusing to create a tag with a digest reference",
        ));
    }
    Ok(Query::new()
        .add("repo", r.familiar_name())
        .add("tag", r.tag_or_latest()))
}

/// `tether tag SOURCE TARGET`.
pub async fn tag(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: TagArgs = parse(path, args)?;
    exact_args::<TagArgs>(path, a.operands.len(), 2)?;
    let q = tag_query(&a.operands[1])?;
    client
        .post(
            &format!("/images/{}/tag{}", path_escape(&a.operands[0]), q.encode()),
            None,
        )
        .await?;
    Ok(())
}

/// A streamed body reading a file.
async fn file_body(path: &str) -> Result<Body> {
    let f = tokio::fs::File::open(path).await.map_err(|e| {
        let reason = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
            _ => e.to_string(),
        };
        CliError::msg(format!("open {path}: {reason}"))
    })?;
    Ok(stream_body(read_stream(f)))
}

fn read_stream<R: tokio::io::AsyncRead + Unpin + Send + 'static>(
    r: R,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures::stream::unfold(Some(r), |state| async move {
        use tokio::io::AsyncReadExt;
        let mut r = state?;
        let mut buf = vec![0u8; 64 * 1024];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(Bytes::from(buf)), Some(r)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}

/// A streamed body reading stdin.
fn stdin_body() -> Body {
    let rx = stdin_channel();
    stream_body(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok(b), rx))
    }))
}

/// `tether import`.
#[derive(Parser, Debug)]
#[command(
    name = "import",
    override_usage = "tether import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
    about = "Import the contents from a tarball to create a filesystem image"
)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short = 'c', long = "change", action = ArgAction::Append)]
    change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short = 'm', long)]
    message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    platform: Option<String>,
    operands: Vec<String>,
}

/// The `POST /images/create` query for an import.
pub fn import_query(a: &ImportArgs, source: &str) -> Result<Query> {
    let mut q = Query::new().add("fromSrc", source);
    if let Some(r) = a.operands.get(1) {
        let parsed = reference::parse_named(r).map_err(CliError::msg)?;
        q = q.add("repo", parsed.name());
        q = q.add("tag", parsed.tag_or_latest());
    }
    if let Some(m) = &a.message {
        q = q.add("message", m.clone());
    }
    if let Some(p) = &a.platform {
        q = q.add("platform", p.clone());
    }
    for c in &a.change {
        q = q.add("changes", c.clone());
    }
    Ok(q)
}

/// `tether import [-c CHANGE]... [-m MSG] FILE|- [REF]`: streams the tarball
/// and prints the new image ID.
pub async fn import(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: ImportArgs = parse(path, args)?;
    range_args::<ImportArgs>(path, a.operands.len(), 1, 2)?;
    let src = a.operands[0].as_str();
    let (from, body) = if src == "-" {
        ("-".to_string(), stdin_body())
    } else if src.starts_with("http://") || src.starts_with("https://") {
        (src.to_string(), crate::client::empty_body())
    } else {
        ("-".to_string(), file_body(src).await?)
    };
    let q = import_query(&a, &from)?;
    post_tar(client, &format!("/images/create{}", q.encode()), body).await
}

/// Posts the tar archive `body` to `path` (`import`, `load`) and shows the
/// daemon's progress stream on stdout.
async fn post_tar(client: &Client, path: &str, body: Body) -> Result<()> {
    let resp = client
        .request(hyper::Method::POST, path, body, Some("application/x-tar"))
        .await?;
    display_json_stream(resp, false).await
}

/// `tether load`.
#[derive(Parser, Debug)]
#[command(
    name = "load",
    override_usage = "tether load [OPTIONS]",
    about = "Load an image from a tar archive or STDIN"
)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short = 'i', long)]
    input: Option<String>,
    /// Suppress the load output
    #[arg(short = 'q', long)]
    quiet: bool,
    operands: Vec<String>,
}

/// `tether load [-i FILE] [-q]`: prints "Loaded image: ..." lines.
pub async fn load(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: LoadArgs = parse(path, args)?;
    crate::args::no_args::<LoadArgs>(path, a.operands.len())?;
    let body = match &a.input {
        Some(f) => file_body(f).await?,
        None => {
            if std::io::stdin().is_terminal() {
                return Err(CliError::msg(
                    "requested load from stdin, but stdin is empty",
                ));
            }
            stdin_body()
        }
    };
    let q = Query::new().add_if(a.quiet, "quiet", "1").encode();
    post_tar(client, &format!("/images/load{q}"), body).await
}

/// `tether pull`.
#[derive(Parser, Debug)]
#[command(
    name = "pull",
    override_usage = "tether pull [OPTIONS] NAME[:TAG|@DIGEST]",
    about = "Download an image from a registry"
)]
pub struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    platform: Option<String>,
    operands: Vec<String>,
}

/// `tether pull NAME[:TAG]`.
pub async fn pull(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: PullArgs = parse(path, args)?;
    exact_args::<PullArgs>(path, a.operands.len(), 1)?;
    let r = reference::parse_named(&a.operands[0]).map_err(CliError::msg)?;
    if a.all_tags && (r.tag.is_some() || r.digest.is_some()) {
        return Err(CliError::msg("tag can't be used with --all-tags/-a"));
    }
    let resp = if a.all_tags {
        super::registry::start_pull_all_tags(client, &r, a.platform.as_deref()).await?
    } else {
        super::registry::start_pull(client, &r, a.platform.as_deref()).await?
    };
    if a.quiet {
        // Progress is not shown, but an error in the stream still fails the pull.
        let body = crate::client::collect(resp).await?;
        for line in body.split(|b| *b == b'\n') {
            if let Ok(v) = serde_json::from_slice::<Json>(line) {
                if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
                    return Err(CliError::msg(e.to_string()));
                }
            }
        }
    } else {
        super::registry::display_progress(resp, false).await?;
    }
    if a.all_tags {
        let full = super::registry::pulled_name(&r);
        outln!("{}", full.rsplit_once(':').map(|(n, _)| n).unwrap_or(&full));
    } else {
        outln!("{}", super::registry::pulled_name(&r));
    }
    Ok(())
}

/// Starts pulling `r` (`POST /images/create?fromImage=&tag=`); the caller
/// reads or shows the progress stream it answers with.
pub async fn start_pull(
    client: &Client,
    r: &reference::Reference,
) -> Result<hyper::Response<hyper::body::Incoming>> {
    super::registry::start_pull(client, r, None).await
}

/// `tether image prune`.
#[derive(Parser, Debug)]
#[command(
    name = "prune",
    override_usage = "tether image prune [OPTIONS]",
    about = "Remove unused images"
)]
pub struct ImagePruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short = 'a', long)]
    all: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", action = ArgAction::Append)]
    filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
}

/// `tether image prune [-a] [-f]`.
pub async fn prune(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: ImagePruneArgs = parse(path, args)?;
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?"
    } else {
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue?"
    };
    if !a.force && !confirm(warning) {
        return Ok(());
    }
    let mut filters = a.filter.clone();
    filters.push(format!("dangling={}", !a.all));
    let q = filter_query(&filters)?.encode();
    let v = client.post_json(&format!("/images/prune{q}"), None).await?;
    super::print_pruned(&v, "ImagesDeleted", "Deleted Images:", |item| {
        let mut t = String::new();
        if let Some(u) = item["Untagged"].as_str() {
            t.push_str(&format!("untagged: {u}\n"));
        }
        if let Some(d) = item["Deleted"].as_str() {
            t.push_str(&format!("deleted: {d}\n"));
        }
        t
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn image_table() {
        let imgs = json!([
            {"Id": "sha256:0123456789abcdef0123456789abcdef", "RepoTags": ["tbox:latest", "tbox:v1"], "RepoDigests": [],
             "Created": chrono::Utc::now().timestamp() - 7200, "Size": 4_400_000},
            {"Id": "sha256:fedcba9876543210", "RepoTags": [], "RepoDigests": [], "Created": chrono::Utc::now().timestamp() - 3 * 86400, "Size": 0}
        ]);
        let rows: Vec<Value> = imgs
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|i| image_rows(i, true, false, false))
            .collect();
        assert_eq!(rows.len(), 3);
        let out = render_list(&images_format(None, false, false), &rows, &images_header()).unwrap();
        assert_eq!(
            out,
            "REPOSITORY   TAG       IMAGE ID       CREATED       SIZE\n\
             tbox         latest    0123456789ab   2 hours ago   4.4MB\n\
             tbox         v1        0123456789ab   2 hours ago   4.4MB\n\
             <none>       <none>    fedcba987654   3 days ago    0B\n"
        );
        let q = render_list(&images_format(None, true, false), &rows, &images_header()).unwrap();
        assert_eq!(q, "0123456789ab\n0123456789ab\nfedcba987654\n");
    }

    #[test]
    fn delete_output() {
        let v = json!([{"Untagged": "tbox:latest"}, {"Deleted": "sha256:abc"}]);
        assert_eq!(
            delete_lines(&v),
            ["Untagged: tbox:latest", "Deleted: sha256:abc"]
        );
    }

    #[test]
    fn tag_queries() {
        assert_eq!(tag_query("tbox:v2").unwrap().encode(), "?repo=tbox&tag=v2");
        assert_eq!(
            tag_query("me/app").unwrap().encode(),
            "?repo=me%2Fapp&tag=latest"
        );
        assert_eq!(
            tag_query("Bad").unwrap_err().to_string(),
            "Error parsing reference: \"Bad\" is not a valid repository/tag: invalid reference format: repository name (library/Bad) must be lowercase"
        );
    }

    #[test]
    fn import_queries() {
        let a: ImportArgs = parse(
            "tether import",
            &[
                "--change".into(),
                "CMD [\"sh\"]".into(),
                "-m".into(),
                "hi".into(),
                "-".into(),
                "tbox:1".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            import_query(&a, "-").unwrap().encode(),
            "?fromSrc=-&repo=tbox&tag=1&message=hi&changes=CMD%20%5B%22sh%22%5D"
        );
        let a: ImportArgs = parse("tether import", &["-".into(), "UP".into()]).unwrap();
        assert!(import_query(&a, "-").is_err());
    }
}
