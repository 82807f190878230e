//! `inspect`, `container inspect`, `image inspect` (docker/cli `inspect/inspector.go`
//! and `system/inspect.go`).

use bytes::Bytes;
use clap::Parser;

use crate::args::{min_args, parse};
use crate::client::{path_escape, Client, Query};
use crate::error::{CliError, Result};
use crate::format::json;
use crate::format::template::value::OnMissing;
use crate::format::template::{Template, Value};
use crate::out;

/// Object kinds `inspect` can look up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `GET /containers/{id}/json`
    Container,
    /// `GET /images/{name}/json`
    Image,
    /// `GET /networks/{id}`
    Network,
    /// `GET /volumes/{name}`
    Volume,
}

/// Fetches one object's raw JSON.
pub async fn fetch(client: &Client, kind: Kind, name: &str, size: bool) -> Result<Bytes> {
    let n = path_escape(name);
    match kind {
        Kind::Container => {
            let q = Query::new().add_if(size, "size", "1").encode();
            client.get(&format!("/containers/{n}/json{q}")).await
        }
        Kind::Image => client.get(&format!("/images/{n}/json")).await,
        Kind::Network => client.get(&format!("/networks/{n}")).await,
        Kind::Volume => client.get(&format!("/volumes/{n}")).await,
    }
}

/// Top-level fields of docker's inspect types (container, image, network, volume) that
/// tether's daemon leaves out of its JSON: `{{.SizeRw}}` gives `<no value>`, while a
/// field no inspect type has (`{{.Bogus}}`) fails as docker's raw fallback with
/// `missingkey=error` does (`map has no entry for key "Bogus"`).
const OPTIONAL_TOP_LEVEL: &[&str] = &[
    "SizeRw",
    "SizeRootFs",
    "Node",
    "ImageManifestDescriptor",
    "Storage",
    "Parent",
    "DockerVersion",
    "Variant",
    "OsVersion",
    "VirtualSize",
    "ContainerConfig",
    "Container",
    "Descriptor",
    "Manifests",
    "Identity",
    "Peers",
    "Services",
    "Status",
    "UsageData",
    "ClusterVolume",
];

/// Collects elements and prints them like docker's inspectors: indented JSON
/// array by default, compact for `json`, or the template once per element.
pub struct Inspector {
    tmpl: Option<Template>,
    compact: bool,
    raws: Vec<String>,
    buffer: String,
    errs: Vec<String>,
}

impl Inspector {
    /// An inspector for `-f FORMAT` (empty: indented JSON). Template errors exit 64.
    pub fn new(format: Option<&str>) -> Result<Inspector> {
        let format = format.unwrap_or("");
        let (tmpl, compact) = match format {
            "" => (None, false),
            "json" => (None, true),
            f => {
                let t = Template::parse(f)
                    .map_err(|e| CliError::status(64, format!("template parsing error: {e}")))?;
                (Some(t), false)
            }
        };
        Ok(Inspector {
            tmpl,
            compact,
            raws: Vec::new(),
            buffer: String::new(),
            errs: Vec::new(),
        })
    }

    /// Adds an element (the daemon's raw JSON).
    pub fn add(&mut self, raw: &[u8]) {
        let text = String::from_utf8_lossy(raw).trim().to_string();
        match &self.tmpl {
            None => self.raws.push(text),
            Some(t) => {
                let value = match json::parse(&text) {
                    Ok(Value::Map(mut m)) => {
                        m.on_missing = OnMissing::NoEntry(
                            OPTIONAL_TOP_LEVEL.iter().map(|f| f.to_string()).collect(),
                        );
                        Value::Map(m)
                    }
                    Ok(v) => v,
                    Err(e) => {
                        self.errs.push(format!("unable to read inspect data: {e}"));
                        return;
                    }
                };
                match t.render(&value) {
                    Ok(s) => {
                        self.buffer.push_str(&s);
                        self.buffer.push('\n');
                    }
                    Err(e) => self.errs.push(format!("template parsing error: {e}")),
                }
            }
        }
    }

    /// Records a lookup failure.
    pub fn error(&mut self, e: String) {
        self.errs.push(e);
    }

    /// The text to print on stdout.
    pub fn output(&self) -> String {
        if self.tmpl.is_some() {
            if self.buffer.is_empty() {
                return "\n".into();
            }
            return self.buffer.clone();
        }
        if self.raws.is_empty() {
            return "[]\n".into();
        }
        let joined = format!("[{}]", self.raws.join(","));
        let mut s = if self.compact {
            json::compact(&joined)
        } else {
            json::indent(&joined, "    ")
        };
        s.push('\n');
        s
    }

    /// Prints the output and fails with the collected errors (exit 1).
    pub fn finish(self) -> Result<()> {
        out!("{}", self.output());
        if self.errs.is_empty() {
            Ok(())
        } else {
            Err(CliError::msg(self.errs.join("\n")))
        }
    }
}

/// Inspects `names` as `kind`, printing docker's daemon errors for missing ones.
pub async fn inspect_kind(
    client: &Client,
    kind: Kind,
    names: &[String],
    format: Option<&str>,
    size: bool,
) -> Result<()> {
    let mut ins = Inspector::new(format)?;
    for n in names {
        match fetch(client, kind, n, size).await {
            Ok(raw) => ins.add(&raw),
            Err(e @ CliError::Connect { .. }) => return Err(e),
            Err(e) => ins.error(e.to_string()),
        }
    }
    ins.finish()
}

/// `tether inspect`.
#[derive(Parser, Debug)]
#[command(
    name = "inspect",
    override_usage = "tether inspect [OPTIONS] NAME|ID [NAME|ID...]",
    about = "Return low-level information on Docker objects"
)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    size: bool,
    /// Only inspect objects of the given type
    #[arg(long = "type")]
    kind: Option<String>,
    names: Vec<String>,
}

/// `tether inspect [-f T] [--type container|image|network] NAME...`: tries
/// container, image, then network.
pub async fn inspect(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: InspectArgs = parse(path, args)?;
    min_args::<InspectArgs>(path, a.names.len(), 1)?;
    let kinds: Vec<Kind> = match a.kind.as_deref() {
        None | Some("") => vec![Kind::Container, Kind::Image, Kind::Network, Kind::Volume],
        Some("container") => vec![Kind::Container],
        Some("image") => vec![Kind::Image],
        Some("network") => vec![Kind::Network],
        Some("volume") => vec![Kind::Volume],
        Some(other) => {
            return Err(CliError::msg(format!(
                "unknown type: {other:?}: must be one of \"config\", \"container\", \"image\", \"network\", \"node\", \"plugin\", \"secret\", \"service\", \"task\", \"volume\""
            )))
        }
    };
    let auto = kinds.len() > 1;
    let mut ins = Inspector::new(a.format.as_deref())?;
    'names: for n in &a.names {
        for k in &kinds {
            match fetch(client, *k, n, a.size).await {
                Ok(raw) => {
                    ins.add(&raw);
                    continue 'names;
                }
                Err(e @ CliError::Connect { .. }) => return Err(e),
                Err(e) => {
                    let skippable = e.is_not_found()
                        || e.to_string().contains("not supported")
                        || e.to_string().contains("invalid reference format");
                    if !(auto && skippable) {
                        ins.error(e.to_string());
                        continue 'names;
                    }
                }
            }
        }
        ins.error(format!("Error: No such object: {n}"));
    }
    ins.finish()
}

/// `container inspect` / `image inspect` arguments.
#[derive(Parser, Debug)]
#[command(
    name = "inspect",
    override_usage = "tether container inspect [OPTIONS] CONTAINER [CONTAINER...]",
    about = "Display detailed information on one or more containers"
)]
pub struct KindInspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long)]
    size: bool,
    names: Vec<String>,
}

/// `tether container inspect [-f T] CONTAINER...`.
pub async fn container_inspect(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: KindInspectArgs = parse(path, args)?;
    min_args::<KindInspectArgs>(path, a.names.len(), 1)?;
    inspect_kind(
        client,
        Kind::Container,
        &a.names,
        a.format.as_deref(),
        a.size,
    )
    .await
}

/// `tether image inspect [-f T] IMAGE...`.
pub async fn image_inspect(client: &Client, path: &str, args: &[String]) -> Result<()> {
    let a: KindInspectArgs = parse(path, args)?;
    min_args::<KindInspectArgs>(path, a.names.len(), 1)?;
    inspect_kind(client, Kind::Image, &a.names, a.format.as_deref(), false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indented_output() {
        let mut i = Inspector::new(None).unwrap();
        assert_eq!(i.output(), "[]\n");
        i.add(br#"{"Id":"a","Args":[],"State":{"Status":"running"}}"#);
        i.add(b"{\"Id\":\"b\"}\n");
        assert_eq!(
            i.output(),
            "[\n    {\n        \"Id\": \"a\",\n        \"Args\": [],\n        \"State\": {\n            \"Status\": \"running\"\n        }\n    },\n    {\n        \"Id\": \"b\"\n    }\n]\n"
        );
    }

    #[test]
    fn template_output() {
        let mut i = Inspector::new(Some("{{.State.Status}}")).unwrap();
        assert_eq!(i.output(), "\n");
        i.add(br#"{"State":{"Status":"running"}}"#);
        i.add(br#"{"State":{"Status":"exited"}}"#);
        assert_eq!(i.output(), "running\nexited\n");
        let e = Inspector::new(Some("{{.State")).err().unwrap();
        assert_eq!(e.exit_code(), 64);
        let mut j = Inspector::new(Some("json")).unwrap();
        j.add(b"{ \"a\": 1 }");
        assert_eq!(j.output(), "[{\"a\":1}]\n");
    }
}
