//! The Compose file format as typed structs.
//!
//! Every key is checked (`deny_unknown_fields`: an unknown key is an error that
//! names it and lists the valid ones); fields with several spellings (a string
//! or a list, a list or a map, the short or the long syntax) deserialize into
//! one normalized form, which is also what `tether compose config` prints.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

fn is_false(b: &bool) -> bool {
    !*b
}

/// A whole Compose file (after `x-` extension keys are dropped).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ComposeFile {
    /// The project name (`name:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The obsolete `version:` key (accepted, ignored).
    #[serde(default, skip_serializing)]
    pub version: Option<serde_norway::Value>,
    /// `services:`.
    #[serde(default, deserialize_with = "map_of_nullable")]
    pub services: BTreeMap<String, Service>,
    /// Top-level `networks:`.
    #[serde(
        default,
        deserialize_with = "map_of_nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub networks: BTreeMap<String, NetworkDef>,
    /// Top-level `volumes:`.
    #[serde(
        default,
        deserialize_with = "map_of_nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub volumes: BTreeMap<String, VolumeDef>,
}

/// One service.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// `image:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `build:`: a context path, or the long form ([`Build`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    /// `pull_policy:` (`always`, `missing`, `if_not_present`, `never`, `build`);
    /// checked by the loader, read with [`Service::pull_policy`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<String>,
    /// True when `image:` was not written and the loader named the image to
    /// build `<project>-<service>` (such a service has no image to pull or push).
    #[serde(skip)]
    pub image_implied: bool,
    /// `command:` (a string is split like a shell would).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<Command>,
    /// `entrypoint:` (a string is split like a shell would).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Command>,
    /// `environment:` (map or `KEY=VALUE` list; `None` for a bare `KEY` left unset).
    #[serde(default, skip_serializing_if = "Environment::is_empty")]
    pub environment: Environment,
    /// `env_file:` (a path, a list of paths, or `{path, required}` items).
    #[serde(default, skip_serializing_if = "EnvFiles::is_empty")]
    pub env_file: EnvFiles,
    /// `ports:` in the long form.
    #[serde(default, skip_serializing_if = "Ports::is_empty")]
    pub ports: Ports,
    /// `expose:`.
    #[serde(default, skip_serializing_if = "StringList::is_empty")]
    pub expose: StringList,
    /// `volumes:` in the long form.
    #[serde(default, skip_serializing_if = "Mounts::is_empty")]
    pub volumes: Mounts,
    /// `hostname:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// `domainname:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    /// `container_name:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    /// `networks:` (list or map).
    #[serde(default, skip_serializing_if = "ServiceNetworks::is_empty")]
    pub networks: ServiceNetworks,
    /// `network_mode:` (`host`, `none`, `bridge`, `service:NAME`, `container:NAME`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    /// `links:` (`SERVICE` or `SERVICE:ALIAS`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// `extra_hosts:` as `HOST:IP` (list or map).
    #[serde(default, skip_serializing_if = "ExtraHosts::is_empty")]
    pub extra_hosts: ExtraHosts,
    /// `dns:` (string or list).
    #[serde(default, skip_serializing_if = "StringList::is_empty")]
    pub dns: StringList,
    /// `dns_search:` (string or list).
    #[serde(default, skip_serializing_if = "StringList::is_empty")]
    pub dns_search: StringList,
    /// `dns_opt:`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_opt: Vec<String>,
    /// `depends_on:` (list or map with conditions).
    #[serde(default, skip_serializing_if = "DependsOn::is_empty")]
    pub depends_on: DependsOn,
    /// `healthcheck:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// `labels:` (map or list).
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// `working_dir:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// `user:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `stop_signal:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `stop_grace_period:` (a duration such as `10s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<String>,
    /// `restart:` (`no`, `always`, `on-failure[:N]`, `unless-stopped`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<String>,
    /// `deploy:` (only `replicas` is used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<Deploy>,
    /// `scale:` (the older spelling of `deploy.replicas`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<u32>,
    /// `tty:`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub tty: bool,
    /// `stdin_open:`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub stdin_open: bool,
    /// `privileged:`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub privileged: bool,
    /// `cap_add:`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// `cap_drop:`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
}

/// A service's `pull_policy:` (Compose specification): when `up`/`run` pull
/// its image, and whether they build it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PullPolicy {
    /// `always`: pull the image before creating containers, every time.
    Always,
    /// `missing` / `if_not_present` (the default): pull (or, with `build:`,
    /// build) only when the image is not present.
    #[default]
    Missing,
    /// `never`: never pull; a missing image is an error.
    Never,
    /// `build`: always build the image (needs `build:`).
    Build,
}

impl PullPolicy {
    /// Parses a `pull_policy:` value.
    ///
    /// # Errors
    /// A message naming the value and listing the valid ones.
    pub fn parse(s: &str) -> std::result::Result<PullPolicy, String> {
        match s {
            "always" => Ok(PullPolicy::Always),
            "missing" | "if_not_present" => Ok(PullPolicy::Missing),
            "never" => Ok(PullPolicy::Never),
            "build" => Ok(PullPolicy::Build),
            _ => Err(format!(
                "invalid pull_policy {s:?}: expected always, missing, if_not_present, never or build"
            )),
        }
    }
}

impl Service {
    /// The service's [`PullPolicy`] (`missing` when unset or invalid; the
    /// loader rejects invalid values).
    pub fn pull_policy(&self) -> PullPolicy {
        self.pull_policy
            .as_deref()
            .and_then(|p| PullPolicy::parse(p).ok())
            .unwrap_or_default()
    }
}

/// `deploy:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    /// `replicas:`: how many containers run the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
}

/// `healthcheck:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Healthcheck {
    /// `test:`: `["CMD", ...]`, `["CMD-SHELL", "..."]`, `["NONE"]`, or a string (CMD-SHELL).
    #[serde(
        default,
        deserialize_with = "health_test",
        skip_serializing_if = "Option::is_none"
    )]
    pub test: Option<Vec<String>>,
    /// `interval:` (a duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// `timeout:` (a duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// `retries:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    /// `start_period:` (a duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<String>,
    /// `start_interval:` (a duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<String>,
    /// `disable: true` turns the image's healthcheck off.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disable: bool,
}

/// A top-level network.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetworkDef {
    /// `name:`: the daemon-side name (instead of `<project>_<key>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `driver:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// `driver_opts:`.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub driver_opts: Labels,
    /// `internal:`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub internal: bool,
    /// `attachable:`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub attachable: bool,
    /// `enable_ipv6:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_ipv6: Option<bool>,
    /// `ipam:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
    /// `external:` (`true`, or the legacy `{name: ...}`).
    #[serde(default, skip_serializing_if = "External::is_false")]
    pub external: External,
    /// `labels:`.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
}

/// `ipam:`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Ipam {
    /// `driver:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// `config:`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
    /// `options:`.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub options: Labels,
}

/// One `ipam.config` item.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IpamPool {
    /// `subnet:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    /// `gateway:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// `ip_range:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    /// `aux_addresses:`.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub aux_addresses: Labels,
}

/// A top-level volume.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VolumeDef {
    /// `name:`: the daemon-side name (instead of `<project>_<key>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `driver:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// `driver_opts:`.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub driver_opts: Labels,
    /// `external:` (`true`, or the legacy `{name: ...}`).
    #[serde(default, skip_serializing_if = "External::is_false")]
    pub external: External,
    /// `labels:`.
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
}

/// `external:` of a network or volume.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct External {
    /// Whether the object is external (not created or removed by compose).
    pub external: bool,
    /// The legacy `external: {name: N}` spelling's name.
    pub name: Option<String>,
}

impl External {
    fn is_false(&self) -> bool {
        !self.external
    }
}

impl Serialize for External {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(self.external)
    }
}

impl<'de> Deserialize<'de> for External {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Named {
            name: Option<String>,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = External;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a boolean or a map with `name`")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<External, E> {
                Ok(External {
                    external: b,
                    name: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<External, A::Error> {
                let n = Named::deserialize(de::value::MapAccessDeserializer::new(m))?;
                Ok(External {
                    external: true,
                    name: n.name,
                })
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------- helpers

/// A map whose values may be `null` (then the default).
fn map_of_nullable<'de, D, T>(d: D) -> Result<BTreeMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    let m: Option<BTreeMap<String, Option<T>>> = Option::deserialize(d)?;
    Ok(m.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// Reads a list of names (each with the default settings) or a map of name to
/// settings (`null` settings are the default); `what` is the error's "expected".
fn names_or_map<'de, D, T>(d: D, what: &'static str) -> Result<BTreeMap<String, T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    struct V<T> {
        what: &'static str,
        item: std::marker::PhantomData<T>,
    }
    impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for V<T> {
        type Value = BTreeMap<String, T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.what)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(n) = s.next_element::<String>()? {
                out.insert(n, T::default());
            }
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = m.next_entry::<String, Option<T>>()? {
                out.insert(k, v.unwrap_or_default());
            }
            Ok(out)
        }
    }
    d.deserialize_any(V {
        what,
        item: std::marker::PhantomData,
    })
}

/// Reads a list (only a list) of `T`; `what` is the error's "expected".
fn list_of<'de, D, T>(d: D, what: &'static str) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T> {
        what: &'static str,
        item: std::marker::PhantomData<T>,
    }
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.what)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(x) = s.next_element()? {
                out.push(x);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(V {
        what,
        item: std::marker::PhantomData,
    })
}

/// A scalar read as text: strings, numbers, booleans; `null` is `None`.
struct Scalar(Option<String>);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
                Ok(Scalar(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads a sequence of scalars as text (`null` items become "").
fn scalar_seq<'de, A: SeqAccess<'de>>(mut s: A) -> Result<Vec<String>, A::Error> {
    let mut out = Vec::new();
    while let Some(Scalar(x)) = s.next_element()? {
        out.push(x.unwrap_or_default());
    }
    Ok(out)
}

/// Splits a command line like a POSIX shell would (quotes and backslashes; no expansion).
pub fn shell_split(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(format!("unterminated single quote in {s:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('"') => break,
                        Some('\\') => match it.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err(format!("unterminated double quote in {s:?}")),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(format!("unterminated double quote in {s:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(x) = it.next() {
                    cur.push(x);
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `command:` / `entrypoint:`: a list, or a string split like a shell would.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(transparent)]
pub struct Command(pub Vec<String>);

impl<'de> Deserialize<'de> for Command {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Command;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Command, E> {
                shell_split(v).map(Command).map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, s: A) -> Result<Command, A::Error> {
                scalar_seq(s).map(Command)
            }
        }
        d.deserialize_any(V)
    }
}

fn health_test<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or a list such as [\"CMD\", \"...\"]")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(vec!["CMD-SHELL".into(), v.to_string()]))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, s: A) -> Result<Self::Value, A::Error> {
            scalar_seq(s).map(Some)
        }
    }
    d.deserialize_any(V)
}

/// A string or a list of strings (`dns:`, `expose:`, ...).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(transparent)]
pub struct StringList(pub Vec<String>);

impl StringList {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringList, E> {
                Ok(StringList(vec![v.to_string()]))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StringList, E> {
                Ok(StringList(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, s: A) -> Result<StringList, A::Error> {
                scalar_seq(s).map(StringList)
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads a `KEY: value` map or a `KEY=value` list into a sorted map; `list_bare`
/// is what a list item without `=` maps to.
fn map_or_list<'de, D: Deserializer<'de>>(
    d: D,
    what: &'static str,
    list_bare: Option<String>,
) -> Result<BTreeMap<String, Option<String>>, D::Error> {
    struct V {
        what: &'static str,
        bare: Option<String>,
    }
    impl<'de> Visitor<'de> for V {
        type Value = BTreeMap<String, Option<String>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "{}", self.what)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(BTreeMap::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, Scalar(v))) = m.next_entry::<String, Scalar>()? {
                out.insert(k, v);
            }
            Ok(out)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(item) = s.next_element::<String>()? {
                match item.split_once('=') {
                    Some((k, v)) => out.insert(k.to_string(), Some(v.to_string())),
                    None => out.insert(item, self.bare.clone()),
                };
            }
            Ok(out)
        }
    }
    d.deserialize_any(V {
        what,
        bare: list_bare,
    })
}

/// `environment:`: `None` values are variables named without a value.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(transparent)]
pub struct Environment(pub BTreeMap<String, Option<String>>);

impl Environment {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for Environment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        map_or_list(d, "a map or a list of KEY=VALUE", None).map(Environment)
    }
}

/// `labels:`, `driver_opts:` and other string maps (map or `KEY=VALUE` list).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(transparent)]
pub struct Labels(pub BTreeMap<String, String>);

impl Labels {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let m = map_or_list(d, "a map or a list of KEY=VALUE", Some(String::new()))?;
        Ok(Labels(
            m.into_iter()
                .map(|(k, v)| (k, v.unwrap_or_default()))
                .collect(),
        ))
    }
}

/// `extra_hosts:` as `HOST:IP` entries (list of `HOST:IP`/`HOST=IP`, or a map).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(transparent)]
pub struct ExtraHosts(pub Vec<String>);

impl ExtraHosts {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for ExtraHosts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ExtraHosts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of HOST:IP or a map of HOST: IP")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<ExtraHosts, A::Error> {
                let mut out = Vec::new();
                while let Some((k, Scalar(v))) = m.next_entry::<String, Scalar>()? {
                    out.push(format!("{k}:{}", v.unwrap_or_default()));
                }
                Ok(ExtraHosts(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<ExtraHosts, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = s.next_element::<String>()? {
                    // compose-go accepts HOST=IP and HOST:IP
                    let item = match item.split_once('=') {
                        Some((h, ip)) => format!("{h}:{ip}"),
                        None => item,
                    };
                    out.push(item);
                }
                Ok(ExtraHosts(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// One `env_file:` entry.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnvFile {
    /// `path:` (relative to the project directory).
    pub path: String,
    /// `required:` (default true): a missing file is an error.
    #[serde(default = "yes")]
    pub required: bool,
}

fn yes() -> bool {
    true
}

/// `env_file:`.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(transparent)]
pub struct EnvFiles(pub Vec<EnvFile>);

impl EnvFiles {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

struct EnvFileItem(EnvFile);

impl<'de> Deserialize<'de> for EnvFileItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EnvFileItem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path or a map with `path` and `required`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EnvFileItem, E> {
                Ok(EnvFileItem(EnvFile {
                    path: v.to_string(),
                    required: true,
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<EnvFileItem, A::Error> {
                EnvFile::deserialize(de::value::MapAccessDeserializer::new(m)).map(EnvFileItem)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for EnvFiles {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EnvFiles;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path or a list of paths")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<EnvFiles, E> {
                Ok(EnvFiles(vec![EnvFile {
                    path: v.to_string(),
                    required: true,
                }]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<EnvFiles, A::Error> {
                let mut out = Vec::new();
                while let Some(EnvFileItem(f)) = s.next_element()? {
                    out.push(f);
                }
                Ok(EnvFiles(out))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------- ports

/// One published or exposed port in the long syntax.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Port {
    /// `name:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `target:`: the container port.
    pub target: u16,
    /// `published:`: the host port or range ("" or absent: a random port).
    #[serde(
        default,
        deserialize_with = "published",
        skip_serializing_if = "Option::is_none"
    )]
    pub published: Option<String>,
    /// `host_ip:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// `protocol:` (`tcp` when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// `mode:` (`ingress` or `host`; both publish on the host here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// `app_protocol:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

fn published<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let Scalar(v) = Scalar::deserialize(d)?;
    Ok(v.filter(|s| !s.is_empty()))
}

/// `ports:` in the long form.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(transparent)]
pub struct Ports(pub Vec<Port>);

impl Ports {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn parse_port_number(s: &str, whole: &str) -> Result<u16, String> {
    s.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("invalid port {s:?} in {whole:?}: expected 1-65535"))
}

fn parse_range(s: &str, whole: &str) -> Result<(u16, u16), String> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse_port_number(a, whole)?, parse_port_number(b, whole)?);
            if b < a {
                return Err(format!("invalid port range {s:?} in {whole:?}"));
            }
            Ok((a, b))
        }
        None => {
            let p = parse_port_number(s, whole)?;
            Ok((p, p))
        }
    }
}

/// Parses the short syntax `[[HOST_IP:]HOST_PORT[-END]:]CONTAINER_PORT[-END][/PROTO]`
/// (IPv6 host IPs in brackets) into long-form ports, one per container port.
pub fn parse_port_short(raw: &str) -> Result<Vec<Port>, String> {
    let (spec, proto) = match raw.rsplit_once('/') {
        Some((s, p)) => (s, Some(p.to_string())),
        None => (raw, None),
    };
    if let Some(p) = &proto {
        if !matches!(p.as_str(), "tcp" | "udp" | "sctp") {
            return Err(format!(
                "invalid protocol {p:?} in {raw:?}: expected tcp, udp or sctp"
            ));
        }
    }
    // split off a bracketed or plain host IP
    let (host_ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        let (ip, after) = r
            .split_once(']')
            .ok_or_else(|| format!("invalid port {raw:?}: unclosed [ in the host IP"))?;
        let after = after
            .strip_prefix(':')
            .ok_or_else(|| format!("invalid port {raw:?}: expected [IP]:HOST:CONTAINER"))?;
        (Some(ip.to_string()), after.to_string())
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.len() {
            1 | 2 => (None, spec.to_string()),
            3 => (
                Some(parts[0].to_string()),
                format!("{}:{}", parts[1], parts[2]),
            ),
            _ => {
                // an unbracketed IPv6 address: the last two fields are the ports
                let n = parts.len();
                (
                    Some(parts[..n - 2].join(":")),
                    format!("{}:{}", parts[n - 2], parts[n - 1]),
                )
            }
        }
    };
    if let Some(ip) = &host_ip {
        if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("invalid host IP {ip:?} in {raw:?}"));
        }
    }
    let (published, target) = match rest.split_once(':') {
        Some((h, c)) => (Some(h.to_string()).filter(|h| !h.is_empty()), c.to_string()),
        None => (None, rest.clone()),
    };
    let (t0, t1) = parse_range(&target, raw)?;
    let host_range = match &published {
        Some(h) => Some(parse_range(h, raw)?),
        None => None,
    };
    let count = (t1 - t0) as u32 + 1;
    let mut out = Vec::new();
    if let Some((h0, h1)) = host_range {
        if count > 1 && (h1 - h0) as u32 + 1 != count {
            return Err(format!(
                "invalid port range in {raw:?}: the host range must be as long as the container range"
            ));
        }
    }
    for i in 0..count {
        let pub_port = match host_range {
            None => None,
            Some((h0, h1)) if count == 1 && h0 != h1 => Some(format!("{h0}-{h1}")),
            Some((h0, _)) => Some((h0 as u32 + i).to_string()),
        };
        out.push(Port {
            target: (t0 as u32 + i) as u16,
            published: pub_port,
            host_ip: host_ip.clone().filter(|s| !s.is_empty()),
            protocol: proto.clone(),
            mode: Some("ingress".into()),
            ..Default::default()
        });
    }
    Ok(out)
}

impl<'de> Deserialize<'de> for Ports {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Item(Vec<Port>);
        impl<'de> Deserialize<'de> for Item {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Item;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("\"[IP:]HOST:CONTAINER[/PROTO]\", a port number, or a map with target/published/host_ip/protocol/mode")
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
                        parse_port_short(v).map(Item).map_err(E::custom)
                    }
                    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Item, E> {
                        self.visit_str(&v.to_string())
                    }
                    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Item, E> {
                        self.visit_str(&v.to_string())
                    }
                    fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Item, A::Error> {
                        Port::deserialize(de::value::MapAccessDeserializer::new(m))
                            .map(|p| Item(vec![p]))
                    }
                }
                d.deserialize_any(V)
            }
        }
        let items: Vec<Item> = list_of(d, "a list of ports")?;
        Ok(Ports(items.into_iter().flat_map(|Item(p)| p).collect()))
    }
}

// ---------------------------------------------------------------- volumes

/// One service mount in the long syntax.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// `type:`: `bind`, `volume` or `tmpfs`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `source:`: a host path (bind) or a volume key (volume); absent for an anonymous volume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `target:`: the path in the container.
    pub target: String,
    /// `read_only:`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// `bind:` options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<BindOptions>,
    /// `volume:` options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOptions>,
    /// `tmpfs:` options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<TmpfsOptions>,
    /// `consistency:` (ignored, as on Linux).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<String>,
}

/// `bind:` options of a mount.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BindOptions {
    /// `propagation:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
    /// `create_host_path:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_host_path: Option<bool>,
    /// `selinux:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selinux: Option<String>,
}

/// `volume:` options of a mount.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct VolumeOptions {
    /// `nocopy:`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub nocopy: bool,
    /// `subpath:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
}

/// `tmpfs:` options of a mount.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TmpfsOptions {
    /// `size:` (bytes, or a string such as `64m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<serde_norway::Value>,
    /// `mode:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// Parses `SOURCE:TARGET[:MODE]`, `TARGET` (anonymous volume): a source that
/// starts with `.`, `/` or `~` is a bind mount, any other a named volume.
pub fn parse_mount_short(raw: &str) -> Result<Mount, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [s, t] => (Some(*s), *t, None),
        [s, t, m] => (Some(*s), *t, Some(*m)),
        _ => {
            return Err(format!(
                "invalid volume {raw:?}: expected SOURCE:TARGET[:MODE]"
            ))
        }
    };
    if target.is_empty() || !target.starts_with('/') {
        return Err(format!(
            "invalid volume {raw:?}: the container path {target:?} must be absolute"
        ));
    }
    let mut m = Mount {
        target: target.to_string(),
        ..Default::default()
    };
    match source {
        None => m.kind = "volume".into(),
        Some("") => {
            return Err(format!("invalid volume {raw:?}: empty source"));
        }
        Some(s) => {
            m.kind = if s.starts_with(['.', '/', '~']) {
                "bind".into()
            } else {
                "volume".into()
            };
            m.source = Some(s.to_string());
        }
    }
    if let Some(mode) = mode {
        for opt in mode.split(',') {
            match opt {
                "ro" => m.read_only = true,
                "rw" => {}
                "z" | "Z" => {
                    m.bind.get_or_insert_with(Default::default).selinux = Some(opt.into());
                }
                "nocopy" => m.volume.get_or_insert_with(Default::default).nocopy = true,
                "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                    m.bind.get_or_insert_with(Default::default).propagation = Some(opt.into());
                }
                other => {
                    return Err(format!(
                        "invalid volume {raw:?}: unknown mode {other:?} (valid: ro, rw, z, Z, nocopy, [r]shared, [r]slave, [r]private)"
                    ))
                }
            }
        }
    }
    if m.kind == "bind" {
        m.bind.get_or_insert_with(Default::default).create_host_path = Some(true);
    }
    Ok(m)
}

/// `volumes:` of a service in the long form.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(transparent)]
pub struct Mounts(pub Vec<Mount>);

impl Mounts {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for Mounts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Item(Mount);
        impl<'de> Deserialize<'de> for Item {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = Item;
                    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                        f.write_str("\"SOURCE:TARGET[:MODE]\" or a map with type/source/target")
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
                        parse_mount_short(v).map(Item).map_err(E::custom)
                    }
                    fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Item, A::Error> {
                        let m = Mount::deserialize(de::value::MapAccessDeserializer::new(m))?;
                        if !matches!(m.kind.as_str(), "bind" | "volume" | "tmpfs") {
                            return Err(de::Error::custom(format!(
                                "invalid mount type {:?}: expected bind, volume or tmpfs",
                                m.kind
                            )));
                        }
                        Ok(Item(m))
                    }
                }
                d.deserialize_any(V)
            }
        }
        let items: Vec<Item> = list_of(d, "a list of volumes")?;
        Ok(Mounts(items.into_iter().map(|Item(m)| m).collect()))
    }
}

// ---------------------------------------------------------------- build

/// `build:` of a service (Compose specification "build" section): the short
/// form is the context path alone.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Build {
    /// `context:`: a directory (relative to the project directory; made
    /// absolute by the loader).
    pub context: String,
    /// `dockerfile:`: relative to the context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// `args:` (map or `KEY=VALUE` list; a bare `KEY` takes its value from the environment).
    #[serde(skip_serializing_if = "Environment::is_empty")]
    pub args: Environment,
    /// `target:`: the stage to build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `labels:` for the image.
    #[serde(skip_serializing_if = "Labels::is_empty")]
    pub labels: Labels,
    /// `network:` for RUN steps (`host`, `none`, a network name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `extra_hosts:` for RUN steps.
    #[serde(skip_serializing_if = "ExtraHosts::is_empty")]
    pub extra_hosts: ExtraHosts,
    /// `shm_size:` for RUN steps, bytes or a size such as `64m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<String>,
    /// `no_cache:`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub no_cache: bool,
    /// `pull:`: always pull base images.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pull: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BuildLong {
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    dockerfile: Option<String>,
    #[serde(default)]
    args: Environment,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    labels: Labels,
    #[serde(default)]
    network: Option<String>,
    #[serde(default)]
    extra_hosts: ExtraHosts,
    #[serde(default)]
    shm_size: Option<serde_norway::Value>,
    #[serde(default)]
    no_cache: bool,
    #[serde(default)]
    pull: bool,
    /// accepted and ignored: the classic builder has no external cache
    #[serde(default)]
    #[allow(dead_code)]
    cache_from: Option<serde_norway::Value>,
}

impl<'de> Deserialize<'de> for Build {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Short(String),
            Long(Box<BuildLong>),
        }
        let form = Form::deserialize(d).map_err(|_| {
            serde::de::Error::custom(
                "build must be a context path or a map with context, dockerfile, args, target, labels, network, extra_hosts, shm_size, no_cache, pull, cache_from",
            )
        })?;
        Ok(match form {
            Form::Short(context) => Build {
                context,
                ..Default::default()
            },
            Form::Long(l) => {
                let l = *l;
                Build {
                    context: l.context.unwrap_or_else(|| ".".into()),
                    dockerfile: l.dockerfile,
                    args: l.args,
                    target: l.target,
                    labels: l.labels,
                    network: l.network,
                    extra_hosts: l.extra_hosts,
                    shm_size: l.shm_size.map(|v| match v {
                        serde_norway::Value::Number(n) => n.to_string(),
                        serde_norway::Value::String(s) => s,
                        other => format!("{other:?}"),
                    }),
                    no_cache: l.no_cache,
                    pull: l.pull,
                }
            }
        })
    }
}

// ---------------------------------------------------------------- networks of a service

/// A service's attachment to one network.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ServiceNetwork {
    /// `aliases:`: more names for the service on this network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// `ipv4_address:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    /// `ipv6_address:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    /// `priority:`: the highest is the primary network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// `gw_priority:`: the highest gives the container its default route (Docker 28).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw_priority: Option<i64>,
}

/// `networks:` of a service (a list of keys, or a map key → settings or null).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(transparent)]
pub struct ServiceNetworks(pub BTreeMap<String, ServiceNetwork>);

impl ServiceNetworks {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for ServiceNetworks {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        names_or_map(
            d,
            "a list of network names or a map of network name to settings",
        )
        .map(ServiceNetworks)
    }
}

// ---------------------------------------------------------------- depends_on

/// One dependency.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    /// `condition:`.
    #[serde(default)]
    pub condition: Condition,
    /// `restart:` (accepted; dependents are not restarted).
    #[serde(default, skip_serializing_if = "is_false")]
    pub restart: bool,
    /// `required:` (default true): a missing optional dependency is skipped.
    #[serde(default = "yes")]
    pub required: bool,
}

impl Default for Dependency {
    fn default() -> Self {
        Dependency {
            condition: Condition::ServiceStarted,
            restart: false,
            required: true,
        }
    }
}

/// When a dependency counts as ready.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The dependency's containers were started.
    #[default]
    ServiceStarted,
    /// The dependency's containers report `healthy`.
    ServiceHealthy,
    /// The dependency's containers exited with code 0.
    ServiceCompletedSuccessfully,
}

/// `depends_on:` (a list of services, or a map service → `{condition, ...}`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(transparent)]
pub struct DependsOn(pub BTreeMap<String, Dependency>);

impl DependsOn {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de> Deserialize<'de> for DependsOn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        names_or_map(
            d,
            "a list of services or a map of service to {condition: ...}",
        )
        .map(DependsOn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words() {
        assert_eq!(
            shell_split(r#"sh -c 'echo "a b"' x\ y "q\"z""#).unwrap(),
            ["sh", "-c", "echo \"a b\"", "x y", "q\"z"]
        );
        assert_eq!(shell_split("  ").unwrap(), Vec::<String>::new());
        assert!(shell_split("'open").is_err());
    }

    #[test]
    fn short_ports() {
        let p = parse_port_short("8080:80").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].target, 80);
        assert_eq!(p[0].published.as_deref(), Some("8080"));
        assert_eq!(p[0].host_ip, None);
        let p = parse_port_short("127.0.0.1:8080:80/udp").unwrap();
        assert_eq!(p[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(p[0].protocol.as_deref(), Some("udp"));
        let p = parse_port_short("80").unwrap();
        assert_eq!((p[0].target, p[0].published.clone()), (80, None));
        let p = parse_port_short("127.0.0.1::80").unwrap();
        assert_eq!(p[0].published, None);
        let p = parse_port_short("[::1]:8080:80").unwrap();
        assert_eq!(p[0].host_ip.as_deref(), Some("::1"));
        let p = parse_port_short("9000-9001:8000-8001").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].target, 8001);
        assert_eq!(p[1].published.as_deref(), Some("9001"));
        let p = parse_port_short("9000-9010:80").unwrap();
        assert_eq!(p[0].published.as_deref(), Some("9000-9010"));
        assert!(parse_port_short("80/xyz").is_err());
        assert!(parse_port_short("abc:80").is_err());
        assert!(parse_port_short("1.2.3:80:80").is_err());
        assert!(parse_port_short("70000").is_err());
    }

    #[test]
    fn short_mounts() {
        let m = parse_mount_short("./data:/data:ro").unwrap();
        assert_eq!(m.kind, "bind");
        assert!(m.read_only);
        let m = parse_mount_short("db:/var/lib/db").unwrap();
        assert_eq!(m.kind, "volume");
        assert_eq!(m.source.as_deref(), Some("db"));
        let m = parse_mount_short("/cache").unwrap();
        assert_eq!((m.kind.as_str(), m.source.clone()), ("volume", None));
        assert!(parse_mount_short("a:b").is_err());
        assert!(parse_mount_short("a:/b:bogus").is_err());
    }
}
