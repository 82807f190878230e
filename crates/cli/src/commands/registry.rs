//! Registry commands: `pull` (the request side), `push`, `login`, `logout`,
//! and the credentials store they share with the docker CLI.
//!
//! Credentials live in `$DOCKER_CONFIG/config.json` (default
//! `~/.docker/config.json`) exactly as docker/cli's `configfile` keeps them
//! without a credential helper: `{"auths": {"SERVER": {"auth":
//! base64("user:password")}}}`, Docker Hub under `https://index.docker.io/v1/`;
//! other keys of the file are kept as they are. They go to the daemon as the
//! `X-Registry-Auth` header: base64url of `{"username","password","serveraddress"}`.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use base64::Engine as _;
use clap::Parser;
use serde_json::{json, Map, Value};

use crate::args::{exact_args, parse};
use crate::client::{empty_body, path_escape, Client, Query};
use crate::error::{CliError, Result};
use crate::reference::{self, Reference};
use crate::{errln, outln};

/// Docker Hub's key in `auths`.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
pub fn config_path() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("config.json");
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker").join("config.json")
}

fn read_config() -> Result<Map<String, Value>> {
    let p = config_path();
    match std::fs::read(&p) {
        Ok(b) if b.iter().all(|c| c.is_ascii_whitespace()) => Ok(Map::new()),
        Ok(b) => match serde_json::from_slice::<Value>(&b) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) | Err(_) => Err(CliError::msg(format!(
                "loading config file {}: not a JSON object",
                p.display()
            ))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Map::new()),
        Err(e) => Err(CliError::msg(format!(
            "loading config file {}: {e}",
            p.display()
        ))),
    }
}

fn write_config(m: &Map<String, Value>) -> Result<()> {
    let p = config_path();
    let err = |e: std::io::Error| CliError::msg(format!("saving config file {}: {e}", p.display()));
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    // docker/cli writes the file tab-indented, 0600, through a temp file.
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    serde::Serialize::serialize(&Value::Object(m.clone()), &mut ser)
        .map_err(|e| CliError::msg(format!("encoding config file: {e}")))?;
    let tmp = p.with_extension(format!("json.tmp-{}", std::process::id()));
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(err)?;
        f.write_all(&buf).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, &p).map_err(err)
}

/// docker/cli `ConvertToHostname`: `https://h:p/v1/` -> `h:p`.
fn hostname_of(s: &str) -> String {
    let t = s
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    t.split('/').next().unwrap_or(t).to_string()
}

/// The `auths` key for a registry domain (`docker.io` -> Docker Hub's).
pub fn server_key(domain: &str) -> String {
    match hostname_of(domain).as_str() {
        "" | "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            DOCKER_HUB_SERVER.to_string()
        }
        h => h.to_string(),
    }
}

/// Stored `(user, password)` for `server` (an `auths` key or a hostname).
pub fn stored_credentials(server: &str) -> Option<(String, String)> {
    let cfg = read_config().ok()?;
    let auths = cfg.get("auths")?.as_object()?;
    let key = server_key(server);
    let entry = auths.get(&key).or_else(|| {
        auths
            .iter()
            .find(|(k, _)| server_key(k) == key)
            .map(|(_, v)| v)
    })?;
    let enc = entry.get("auth")?.as_str()?;
    let dec = base64::engine::general_purpose::STANDARD.decode(enc).ok()?;
    let s = String::from_utf8(dec).ok()?;
    let (u, p) = s.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// The `X-Registry-Auth` value for `server`: base64url of
/// `{"username","password","serveraddress"}` (empty credentials when none are stored).
pub fn registry_auth_header(server: &str) -> String {
    let key = server_key(server);
    let (u, p) = stored_credentials(&key).unwrap_or_default();
    let v = json!({"username": u, "password": p, "serveraddress": key});
    base64::engine::general_purpose::URL_SAFE.encode(v.to_string())
}

/// The registry domain of a reference (`docker.io` when none was given).
fn domain_of(r: &Reference) -> String {
    r.domain.clone().unwrap_or_else(|| "docker.io".to_string())
}

/// Starts a pull (`POST /images/create?fromImage=&tag=[&platform=]`, with
/// `X-Registry-Auth` from the stored credentials); the tag is the digest for
/// `NAME@DIGEST`.
pub async fn start_pull(
    client: &Client,
    r: &Reference,
    platform: Option<&str>,
) -> Result<hyper::Response<hyper::body::Incoming>> {
    let tag = r.digest.clone().unwrap_or_else(|| r.tag_or_latest());
    let q = Query::new()
        .add("fromImage", r.familiar_name())
        .add("tag", tag);
    let q = match platform.filter(|p| !p.is_empty()) {
        Some(p) => q.add("platform", p),
        None => q,
    };
    client
        .request_with_headers(
            hyper::Method::POST,
            &format!("/images/create{}", q.encode()),
            empty_body(),
            None,
            &[("X-Registry-Auth", registry_auth_header(&domain_of(r)))],
        )
        .await
}

/// Starts pulling every tag of `r`'s repository (`POST /images/create?fromImage=&tag=`,
/// the tag empty).
pub async fn start_pull_all_tags(
    client: &Client,
    r: &Reference,
    platform: Option<&str>,
) -> Result<hyper::Response<hyper::body::Incoming>> {
    let q = Query::new()
        .add("fromImage", r.familiar_name())
        .add("tag", "");
    let q = match platform.filter(|p| !p.is_empty()) {
        Some(p) => q.add("platform", p),
        None => q,
    };
    client
        .request_with_headers(
            hyper::Method::POST,
            &format!("/images/create{}", q.encode()),
            empty_body(),
            None,
            &[("X-Registry-Auth", registry_auth_header(&domain_of(r)))],
        )
        .await
}

/// The name docker prints after a pull: `docker.io/library/x:tag` or `name@digest`.
pub fn pulled_name(r: &Reference) -> String {
    let full = match &r.domain {
        Some(_) => r.name(),
        None if r.path.contains('/') => format!("docker.io/{}", r.path),
        None => format!("docker.io/library/{}", r.path),
    };
    match &r.digest {
        Some(d) => format!("{full}@{d}"),
        None => format!("{full}:{}", r.tag_or_latest()),
    }
}

/// Whether a progress message carries a bar (`progressDetail` with a current or total).
fn has_bar(m: &Value) -> bool {
    let d = &m["progressDetail"];
    d["current"].as_i64().unwrap_or(0) > 0 || d["total"].as_i64().unwrap_or(0) > 0
}

/// Shows a pull/push progress stream as docker/cli's `DisplayJSONMessagesStream`
/// does: on a terminal one line per layer, redrawn in place with its bar; elsewhere
/// every message as a line except the bars. An `error` message ends it with that error.
pub async fn display_progress(
    resp: hyper::Response<hyper::body::Incoming>,
    to_stderr: bool,
) -> Result<()> {
    let tty = if to_stderr {
        std::io::stderr().is_terminal()
    } else {
        std::io::stdout().is_terminal()
    };
    let write = |s: &str| {
        if to_stderr {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(s.as_bytes());
            let _ = e.flush();
        } else {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(s.as_bytes());
            let _ = o.flush();
        }
    };
    let mut body = resp.into_body();
    let mut js = crate::client::JsonStream::default();
    let mut ids: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    while let Some(chunk) = crate::client::next_chunk(&mut body).await? {
        for m in js.push(&chunk) {
            if let Some(err) = m.get("error").and_then(|e| e.as_str()) {
                let msg = m["errorDetail"]["message"].as_str().unwrap_or(err);
                if tty && !ids.is_empty() {
                    write("\n");
                }
                return Err(CliError::msg(msg.to_string()));
            }
            if m.get("aux").is_some() && m.get("status").is_none() {
                continue;
            }
            let id = m["id"].as_str().unwrap_or("");
            let status = m["status"].as_str().unwrap_or("");
            let progress = m["progress"].as_str().unwrap_or("");
            let layer_line = !id.is_empty() && m.get("progressDetail").is_some();
            if !tty {
                if !has_bar(&m) {
                    write(&super::json_message_line(
                        &json!({"id": id, "status": status}),
                    ));
                }
                continue;
            }
            if layer_line {
                let line = match ids.get(id) {
                    Some(l) => *l,
                    None => {
                        let l = ids.len();
                        ids.insert(id.to_string(), l);
                        write("\n");
                        l
                    }
                };
                let diff = ids.len() - line;
                write(&format!("\x1b[{diff}A"));
                write(&format!("\r\x1b[2K{id}: {status} {progress}\r"));
                write(&format!("\x1b[{diff}B"));
            } else {
                ids.clear();
                write(&super::json_message_line(
                    &json!({"id": id, "status": status}),
                ));
            }
        }
    }
    Ok(())
}

/// `tether push`.
#[derive(Parser, Debug)]
#[command(
    name = "push",
    override_usage = "tether push [OPTIONS] NAME[:TAG]",
    about = "Upload an image to a registry"
)]
pub struct PushArgs {
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Push all tags of an image to the repository (not supported: push each tag)
    #[arg(short = 'a', long = "all-tags")]
    all_tags: bool,
    operands: Vec<String>,
}

/// `tether push NAME[:TAG]`: `POST /images/{name}/push?tag=` with
/// `X-Registry-Auth`, progress as docker prints it.
pub async fn push(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: PushArgs = parse(path, args)?;
    exact_args::<PushArgs>(path, a.operands.len(), 1)?;
    if a.all_tags {
        return Err(CliError::msg(
            "--all-tags is not supported by tether: push each tag",
        ));
    }
    let r = reference::parse_named(&a.operands[0]).map_err(CliError::msg)?;
    if r.digest.is_some() {
        return Err(CliError::msg(format!(
            "invalid reference format: push takes NAME[:TAG], not a digest ({})",
            a.operands[0]
        )));
    }
    let resp = start_push(client, &r).await?;
    if a.quiet {
        finish_quietly(resp).await?;
        outln!("{}:{}", r.familiar_name(), r.tag_or_latest());
        return Ok(());
    }
    display_progress(resp, false).await
}

/// Starts a push of `r` (`POST /images/{name}/push?tag=`, with
/// `X-Registry-Auth` from the stored credentials).
pub async fn start_push(
    client: &Client,
    r: &Reference,
) -> Result<hyper::Response<hyper::body::Incoming>> {
    let q = Query::new().add("tag", r.tag_or_latest());
    client
        .request_with_headers(
            hyper::Method::POST,
            &format!("/images/{}/push{}", path_escape(&r.name()), q.encode()),
            empty_body(),
            None,
            &[("X-Registry-Auth", registry_auth_header(&domain_of(r)))],
        )
        .await
}

/// Reads a pull/push progress stream to its end without showing it; an
/// `error` message in it is returned as the error.
pub async fn finish_quietly(resp: hyper::Response<hyper::body::Incoming>) -> Result<()> {
    let body = crate::client::collect(resp).await?;
    for line in body.split(|b| *b == b'\n') {
        if let Ok(v) = serde_json::from_slice::<Value>(line) {
            if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
                return Err(CliError::msg(e.to_string()));
            }
        }
    }
    Ok(())
}

/// `tether login`.
#[derive(Parser, Debug)]
#[command(
    name = "login",
    override_usage = "tether login [OPTIONS] [SERVER]",
    about = "Authenticate to a registry.\nDefaults to Docker Hub if no server is specified."
)]
pub struct LoginArgs {
    /// Username
    #[arg(short = 'u', long)]
    username: Option<String>,
    /// Password or Personal Access Token (PAT)
    #[arg(short = 'p', long)]
    password: Option<String>,
    /// Take the Password or Personal Access Token (PAT) from stdin
    #[arg(long = "password-stdin")]
    password_stdin: bool,
    operands: Vec<String>,
}

fn prompt(text: &str, echo: bool) -> Result<String> {
    eprint!("{text}");
    let _ = std::io::stderr().flush();
    let stdin = std::io::stdin();
    let fd = libc::STDIN_FILENO;
    // SAFETY: termios on our own stdin; the old settings are restored below.
    let mut old: libc::termios = unsafe { std::mem::zeroed() };
    let tty = stdin.is_terminal() && unsafe { libc::tcgetattr(fd, &mut old) } == 0;
    if tty && !echo {
        let mut t = old;
        t.c_lflag &= !libc::ECHO;
        // SAFETY: as above.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &t) };
    }
    let mut line = String::new();
    let res = stdin.read_line(&mut line);
    if tty && !echo {
        // SAFETY: restores what tcgetattr returned.
        unsafe { libc::tcsetattr(fd, libc::TCSANOW, &old) };
        eprintln!();
    }
    res.map_err(|e| CliError::msg(format!("reading {}: {e}", text.trim_end_matches(": "))))?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

/// `tether login [-u USER] [-p PASS | --password-stdin] [SERVER]`: checks the
/// credentials with the daemon (`POST /auth`) and stores them in the docker
/// config file; prints `Login Succeeded`.
pub async fn login(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: LoginArgs = parse(path, args)?;
    if a.operands.len() > 1 {
        return Err(CliError::status(
            125,
            format!("\"{path}\" requires at most 1 argument.\nSee '{path} --help'.\n\nUsage:  tether login [OPTIONS] [SERVER]\n\nAuthenticate to a registry"),
        ));
    }
    if a.password.is_some() && a.password_stdin {
        return Err(CliError::msg(
            "--password and --password-stdin are mutually exclusive",
        ));
    }
    let server = server_key(a.operands.first().map(String::as_str).unwrap_or(""));
    let mut password = a.password.clone().unwrap_or_default();
    if a.password_stdin {
        if a.username.as_deref().unwrap_or("").is_empty() {
            return Err(CliError::msg(
                "Must provide --username with --password-stdin",
            ));
        }
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| CliError::msg(format!("reading password from stdin: {e}")))?;
        password = s.trim_end_matches(['\n', '\r']).to_string();
    } else if a.password.is_some() {
        errln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    let stored = stored_credentials(&server);
    let username = match a.username.clone().filter(|u| !u.is_empty()) {
        Some(u) => u,
        None if password.is_empty() && stored.is_some() && !std::io::stdin().is_terminal() => {
            stored.clone().map(|(u, _)| u).unwrap_or_default()
        }
        None => {
            let def = stored.as_ref().map(|(u, _)| u.clone()).unwrap_or_default();
            let shown = if def.is_empty() {
                "Username: ".to_string()
            } else {
                format!("Username ({def}): ")
            };
            let u = prompt(&shown, true)?;
            if u.is_empty() {
                def
            } else {
                u
            }
        }
    };
    if username.is_empty() {
        return Err(CliError::msg("Error: Non-null Username Required"));
    }
    if password.is_empty() {
        match &stored {
            Some((u, p)) if *u == username && a.username.is_none() => password = p.clone(),
            _ => password = prompt("Password: ", false)?,
        }
    }
    if password.is_empty() {
        return Err(CliError::msg("Error: Password Required"));
    }
    let body = json!({"username": username, "password": password, "serveraddress": server});
    let resp = client.post_json("/auth", Some(&body)).await?;
    let mut cfg = read_config()?;
    let auths = cfg
        .entry("auths".to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    let enc = base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    if let Some(m) = auths.as_object_mut() {
        m.insert(server.clone(), json!({ "auth": enc }));
    }
    write_config(&cfg)?;
    errln!(
        "WARNING! Your credentials are stored unencrypted in '{}'.",
        config_path().display()
    );
    let status = resp
        .get("Status")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .unwrap_or("Login Succeeded");
    outln!("{status}");
    Ok(())
}

/// `tether logout`.
#[derive(Parser, Debug)]
#[command(
    name = "logout",
    override_usage = "tether logout [SERVER]",
    about = "Log out from a registry.\nIf no server is specified, the default is defined by the daemon."
)]
pub struct LogoutArgs {
    operands: Vec<String>,
}

/// `tether logout [SERVER]`: removes the stored credentials of SERVER (Docker Hub by default).
pub async fn logout(_client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: LogoutArgs = parse(path, args)?;
    if a.operands.len() > 1 {
        return Err(CliError::status(
            125,
            format!("\"{path}\" requires at most 1 argument.\nSee '{path} --help'."),
        ));
    }
    let server = server_key(a.operands.first().map(String::as_str).unwrap_or(""));
    let mut cfg = read_config()?;
    let removed = cfg
        .get_mut("auths")
        .and_then(|a| a.as_object_mut())
        .map(|m| {
            let keys: Vec<String> = m
                .keys()
                .filter(|k| server_key(k) == server)
                .cloned()
                .collect();
            for k in &keys {
                m.remove(k);
            }
            !keys.is_empty()
        })
        .unwrap_or(false);
    if !removed {
        outln!("Not logged in to {}", hostname_of(&server));
        return Ok(());
    }
    outln!("Removing login credentials for {}", hostname_of(&server));
    write_config(&cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_keys() {
        assert_eq!(server_key(""), DOCKER_HUB_SERVER);
        assert_eq!(server_key("docker.io"), DOCKER_HUB_SERVER);
        assert_eq!(server_key("https://index.docker.io/v1/"), DOCKER_HUB_SERVER);
        assert_eq!(server_key("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(server_key("http://127.0.0.1:5000/"), "127.0.0.1:5000");
    }

    #[test]
    fn pulled_names() {
        let r = reference::parse_named("tbox").unwrap();
        assert_eq!(pulled_name(&r), "docker.io/library/tbox:latest");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = reference::parse_named(&format!("127.0.0.1:5000/tbox@{d}")).unwrap();
        assert_eq!(pulled_name(&r), format!("127.0.0.1:5000/tbox@{d}"));
    }
}

/// `tether search`.
#[derive(Parser, Debug)]
#[command(
    name = "search",
    override_usage = "tether search [OPTIONS] TERM",
    about = "Search a registry for images"
)]
pub struct SearchArgs {
    /// Filter output based on conditions provided (is-official, is-automated, stars)
    #[arg(short = 'f', long = "filter", action = clap::ArgAction::Append)]
    filter: Vec<String>,
    /// Pretty-print search using a Go template
    #[arg(long)]
    format: Option<String>,
    /// Max number of search results
    #[arg(long)]
    limit: Option<u32>,
    /// Don't truncate output
    #[arg(long = "no-trunc")]
    no_trunc: bool,
    operands: Vec<String>,
}

/// docker's default `search` table.
const SEARCH_TABLE: &str = "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}";

/// `tether search TERM`: `GET /images/search?term=&limit=&filters=` with
/// `X-Registry-Auth` for the registry named in the term; the table docker 25
/// prints (NAME, DESCRIPTION cut to 45 characters, STARS, OFFICIAL `[OK]`).
pub async fn search(client: &Client, path: &str, args: &[String]) -> Result<()> {
    use crate::format::template::value::{Map as TMap, Value as TValue};
    let a: SearchArgs = parse(path, args)?;
    exact_args::<SearchArgs>(path, a.operands.len(), 1)?;
    let term = &a.operands[0];
    let server = match term.split_once('/') {
        Some((h, _)) if h.contains('.') || h.contains(':') || h == "localhost" => h.to_string(),
        _ => "docker.io".to_string(),
    };
    let q = super::container::filter_query(&a.filter)?.add("term", term.clone());
    let q = match a.limit {
        Some(l) => q.add("limit", l.to_string()),
        None => q,
    };
    let resp = client
        .request_with_headers(
            hyper::Method::GET,
            &format!("/images/search{}", q.encode()),
            empty_body(),
            None,
            &[("X-Registry-Auth", registry_auth_header(&server))],
        )
        .await?;
    let body = crate::client::collect(resp).await?;
    let list: Value = serde_json::from_slice(&body)
        .map_err(|e| CliError::BadResponse(format!("search results: {e}")))?;
    let rows: Vec<TValue> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let desc = r["description"].as_str().unwrap_or("").replace('\n', " ");
            let desc = if a.no_trunc {
                desc
            } else {
                crate::format::ellipsis(&desc, 45)
            };
            let official = if r["is_official"].as_bool().unwrap_or(false) {
                "[OK]"
            } else {
                ""
            };
            let automated = if r["is_automated"].as_bool().unwrap_or(false) {
                "[OK]"
            } else {
                ""
            };
            TValue::Map(TMap::go_map(vec![
                (
                    "Name".into(),
                    TValue::from(r["name"].as_str().unwrap_or("")),
                ),
                ("Description".into(), TValue::from(desc)),
                (
                    "StarCount".into(),
                    TValue::from(r["star_count"].as_i64().unwrap_or(0).to_string()),
                ),
                ("IsOfficial".into(), TValue::from(official)),
                ("IsAutomated".into(), TValue::from(automated)),
            ]))
        })
        .collect();
    let format = match a.format.as_deref() {
        None | Some("") | Some("table") => SEARCH_TABLE.to_string(),
        Some(f) => f.to_string(),
    };
    let header = crate::format::header_map(&[
        ("Name", "NAME"),
        ("Description", "DESCRIPTION"),
        ("StarCount", "STARS"),
        ("IsOfficial", "OFFICIAL"),
        ("IsAutomated", "AUTOMATED"),
    ]);
    let text = crate::format::render_list(&format, &rows, &header)
        .map_err(|e| CliError::msg(format!("template parsing error: {e}")))?;
    crate::out!("{text}");
    Ok(())
}
