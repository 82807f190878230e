//! Finding, reading, interpolating, merging, checking and normalizing Compose files
//! into a [`Project`].

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_norway::{Mapping, Value};

use crate::error::{ComposeError, Result};
use crate::interpolate::{parse_dotenv, substitute};
use crate::model::{ComposeFile, External, NetworkDef, Service, VolumeDef};

/// The file names looked for when no `-f` is given, in order.
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yaml",
    "docker-compose.yml",
];

/// How to find and read a project.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f` files in order (relative to `cwd`); empty: `COMPOSE_FILE` or a default name.
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--project-directory` (default: the directory of the first file).
    pub project_directory: Option<PathBuf>,
    /// The current directory.
    pub cwd: PathBuf,
    /// The process environment (takes precedence over `.env`).
    pub env: BTreeMap<String, String>,
}

/// A loaded project: the normalized model plus its name and whereabouts.
#[derive(Debug, Clone, Default)]
pub struct Project {
    /// The project name.
    pub name: String,
    /// The project directory (absolute).
    pub working_dir: PathBuf,
    /// The compose files read (absolute).
    pub config_files: Vec<PathBuf>,
    /// Services by name, normalized: `environment` merged with `env_file`s and
    /// resolved, bind mount sources absolute.
    pub services: BTreeMap<String, Service>,
    /// Networks by key, with `name` always set (`<project>_<key>` unless given).
    pub networks: BTreeMap<String, NetworkDef>,
    /// Volumes by key, with `name` always set (`<project>_<key>` unless given).
    pub volumes: BTreeMap<String, VolumeDef>,
    /// The variables used for interpolation (`.env` overlaid by the environment).
    pub environment: BTreeMap<String, String>,
    /// Things worth telling the user (unset variables, ignored keys).
    pub warnings: Vec<String>,
}

/// Makes a directory name a valid project name: lower case, only `[a-z0-9_-]`,
/// starting with a letter or digit.
pub fn normalize_project_name(s: &str) -> String {
    let lower: String = s
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    lower
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// Whether `s` is a valid project name as given with `-p` or `name:`.
pub fn valid_project_name(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn invalid_name(s: &str) -> ComposeError {
    ComposeError::project(format!(
        "invalid project name {s:?}: must consist only of lowercase alphanumeric characters, hyphens, and underscores as well as start with a letter or number"
    ))
}

/// Removes `.` and `..` components without touching the file system.
pub fn clean_path(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    clean_path(&if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    })
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| ComposeError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Which files to read: the `-f` files, `COMPOSE_FILE`, or the first default name in `cwd`.
pub fn resolve_files(opts: &LoadOptions) -> Result<Vec<PathBuf>> {
    if !opts.files.is_empty() {
        return Ok(opts.files.iter().map(|f| absolute(&opts.cwd, f)).collect());
    }
    if let Some(list) = opts.env.get("COMPOSE_FILE").filter(|s| !s.is_empty()) {
        let sep = opts
            .env
            .get("COMPOSE_PATH_SEPARATOR")
            .cloned()
            .unwrap_or_else(|| ":".into());
        return Ok(list
            .split(sep.as_str())
            .filter(|s| !s.is_empty())
            .map(|f| absolute(&opts.cwd, Path::new(f)))
            .collect());
    }
    // like compose: look in the current directory, then its parents
    let start = opts.project_directory.as_deref().unwrap_or(&opts.cwd);
    let start = absolute(&opts.cwd, start);
    let mut dir = Some(start.as_path());
    while let Some(d) = dir {
        for name in DEFAULT_FILES {
            let p = d.join(name);
            if p.is_file() {
                return Ok(vec![p]);
            }
        }
        dir = d.parent();
    }
    Err(ComposeError::NoFile {
        dir: start.display().to_string(),
        looked: DEFAULT_FILES.join(", "),
    })
}

/// A dotted path (`services.web.ports[0]`) from its segments.
fn path_string(segs: &[Seg]) -> String {
    let mut s = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// One step of a path into the YAML tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Finds the line (1-based) of `path` in block-style YAML text, as far as it can
/// be followed; `None` when not even the first key is found.
fn locate(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
    // (line number, indent, content) of meaningful lines
    let mut lines: Vec<(usize, usize, String)> = text
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let content = l.trim_start();
            if content.is_empty() || content.starts_with('#') || content == "---" {
                return None;
            }
            Some((i + 1, l.len() - content.len(), content.to_string()))
        })
        .collect();
    let mut lo = 0;
    let mut hi = lines.len();
    let mut parent_indent: Option<usize> = None;
    let mut found: Option<usize> = None;
    let mut depth = 0;
    for seg in path {
        // the children of the current node: lines in [lo, hi) deeper than parent_indent
        let child_indent = lines[lo..hi]
            .iter()
            .map(|l| l.1)
            .find(|i| parent_indent.is_none_or(|p| *i > p))?;
        let mut hit = None;
        match seg {
            Seg::Key(k) => {
                for (idx, l) in lines.iter().enumerate().take(hi).skip(lo) {
                    if l.1 != child_indent {
                        continue;
                    }
                    let c = l.2.as_str();
                    let key_matches = [format!("{k}:"), format!("\"{k}\":"), format!("'{k}':")]
                        .iter()
                        .any(|p| c == p.as_str() || c.starts_with(&format!("{p} ")));
                    if key_matches {
                        hit = Some(idx);
                        break;
                    }
                }
            }
            Seg::Index(n) => {
                let mut count = 0;
                for (idx, l) in lines.iter().enumerate().take(hi).skip(lo) {
                    if l.1 == child_indent && (l.2 == "-" || l.2.starts_with("- ")) {
                        if count == *n {
                            hit = Some(idx);
                            break;
                        }
                        count += 1;
                    }
                }
                if let Some(idx) = hit {
                    // make the item's first line look like a mapping line two columns in
                    let rest = lines[idx].2.trim_start_matches('-');
                    let pad = rest.len() - rest.trim_start().len();
                    let rest = rest.trim_start().to_string();
                    if !rest.is_empty() {
                        lines[idx].1 += 1 + pad;
                        lines[idx].2 = rest;
                        found = Some(idx);
                        depth += 1;
                        // the item itself spans to the next sibling item
                        let end = lines[idx + 1..hi]
                            .iter()
                            .position(|l| l.1 <= child_indent)
                            .map_or(hi, |p| idx + 1 + p);
                        lo = idx;
                        hi = end;
                        parent_indent = Some(child_indent);
                        continue;
                    }
                }
            }
        }
        let idx = hit?;
        found = Some(idx);
        depth += 1;
        let indent = lines[idx].1;
        let end = lines[idx + 1..hi]
            .iter()
            .position(|l| l.1 <= indent)
            .map_or(hi, |p| idx + 1 + p);
        lo = idx + 1;
        hi = end;
        parent_indent = Some(indent);
        if lo >= hi {
            break;
        }
    }
    found.map(|i| (lines[i].0, depth))
}

/// The best `"file:line: "` prefix for a path.
fn position(texts: &[(String, String)], path: &[Seg]) -> String {
    let mut best: Option<(usize, &str, usize)> = None;
    for (file, text) in texts.iter().rev() {
        if let Some((line, depth)) = locate(text, path) {
            if best.is_none_or(|b| depth > b.0) {
                best = Some((depth, file, line));
            }
        }
    }
    match best {
        Some((_, file, line)) => format!("{file}:{line}: "),
        None => String::new(),
    }
}

fn is_ext(k: &Value) -> bool {
    k.as_str().is_some_and(|s| s.starts_with("x-"))
}

/// Drops `x-` extension keys at the top level and in service, network and volume definitions.
fn strip_extensions(v: &mut Value) {
    let Some(top) = v.as_mapping_mut() else {
        return;
    };
    top.retain(|k, _| !is_ext(k));
    for section in ["services", "networks", "volumes"] {
        if let Some(Value::Mapping(m)) = top.get_mut(section) {
            for (_, def) in m.iter_mut() {
                if let Value::Mapping(d) = def {
                    d.retain(|k, _| !is_ext(k));
                }
            }
        }
    }
}

/// Interpolates every string value (not keys) of the tree.
fn interpolate(
    v: &mut Value,
    path: &mut Vec<Seg>,
    lookup: &dyn Fn(&str) -> Option<String>,
    unset: &mut Vec<String>,
) -> Result<()> {
    match v {
        Value::String(s) => {
            let (out, u) = substitute(s, lookup).map_err(|e| {
                ComposeError::Interpolation(format!(
                    "error while interpolating {}: {e}",
                    path_string(path)
                ))
            })?;
            unset.extend(u);
            *s = out;
        }
        Value::Sequence(seq) => {
            for (i, item) in seq.iter_mut().enumerate() {
                path.push(Seg::Index(i));
                interpolate(item, path, lookup, unset)?;
                path.pop();
            }
        }
        Value::Mapping(m) => {
            for (k, item) in m.iter_mut() {
                path.push(Seg::Key(key_text(k)));
                interpolate(item, path, lookup, unset)?;
                path.pop();
            }
        }
        Value::Tagged(t) => interpolate(&mut t.value, path, lookup, unset)?,
        _ => {}
    }
    Ok(())
}

fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => serde_norway::to_string(other)
            .map(|s| s.trim().to_string())
            .unwrap_or_default(),
    }
}

/// Turns list-form `environment:` and `labels:` of services into maps so that files merge by key.
fn lists_to_maps(v: &mut Value) {
    let Some(Value::Mapping(services)) = v.get_mut("services") else {
        return;
    };
    for (_, svc) in services.iter_mut() {
        for key in ["environment", "labels"] {
            if let Some(field) = svc.get_mut(key) {
                if let Value::Sequence(items) = field {
                    let mut m = Mapping::new();
                    for item in items.iter() {
                        if let Some(s) = item.as_str() {
                            match s.split_once('=') {
                                Some((k, val)) => {
                                    m.insert(Value::from(k), Value::from(val));
                                }
                                None => {
                                    let bare = if key == "labels" {
                                        Value::from("")
                                    } else {
                                        Value::Null
                                    };
                                    m.insert(Value::from(s), bare);
                                }
                            }
                        }
                    }
                    *field = Value::Mapping(m);
                }
            }
        }
    }
}

const APPENDED: [&str; 10] = [
    "ports",
    "expose",
    "dns",
    "dns_search",
    "dns_opt",
    "extra_hosts",
    "cap_add",
    "cap_drop",
    "links",
    "volumes",
];

/// Merges an override file into the base (compose's rules, simplified): maps merge
/// key by key; a service's `ports`, `expose`, `volumes`, `dns`... lists are appended;
/// any other value is replaced.
fn merge(base: &mut Value, over: Value, depth: usize, key: &str) {
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                let ks = key_text(&k);
                match b.get_mut(&k) {
                    Some(existing) => merge(existing, v, depth + 1, &ks),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (Value::Sequence(b), Value::Sequence(o)) if depth == 3 && APPENDED.contains(&key) => {
            for item in o {
                if !b.contains(&item) {
                    b.push(item);
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// Parses a Go duration (`1m30s`, `500ms`, `10s`, `0`) into nanoseconds.
pub fn parse_duration(s: &str) -> std::result::Result<i64, String> {
    let bad = || {
        format!("invalid duration {s:?}: expected a number with a unit such as 30s, 1m30s, 500ms")
    };
    let t = s.trim();
    if t == "0" {
        return Ok(0);
    }
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += n * mult;
        rest = &rest[unit_len..];
    }
    Ok(total as i64)
}

/// Parses `restart:` into (name, maximum retry count).
pub fn parse_restart(s: &str) -> std::result::Result<(String, i64), String> {
    match s.split_once(':') {
        None => match s {
            "no" | "always" | "unless-stopped" | "on-failure" => Ok((s.to_string(), 0)),
            _ => Err(format!(
                "invalid restart policy {s:?}: expected no, always, on-failure[:N] or unless-stopped"
            )),
        },
        Some(("on-failure", n)) => n
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| ("on-failure".to_string(), n))
            .ok_or_else(|| format!("invalid restart policy {s:?}: the retry count must be a number")),
        Some(_) => Err(format!(
            "invalid restart policy {s:?}: only on-failure takes a retry count"
        )),
    }
}

/// Loads a project: finds the files, reads `.env`, interpolates, merges, checks
/// every key and reference, and normalizes (see [`Project`]).
pub fn load(opts: &LoadOptions) -> Result<Project> {
    let files = resolve_files(opts)?;
    let working_dir = match &opts.project_directory {
        Some(d) => absolute(&opts.cwd, d),
        None => files
            .first()
            .and_then(|f| f.parent())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| opts.cwd.clone()),
    };
    // the interpolation environment: .env overlaid by the process environment
    let mut environment = BTreeMap::new();
    let dotenv = working_dir.join(".env");
    if dotenv.is_file() {
        let text = read(&dotenv)?;
        let os = |k: &str| opts.env.get(k).cloned();
        let parsed = parse_dotenv(&text, &os)
            .map_err(|e| ComposeError::project(format!("{}: {e}", dotenv.display())))?;
        environment.extend(parsed);
    }
    environment.extend(opts.env.clone());
    let lookup = |k: &str| environment.get(k).cloned();

    let mut texts = Vec::new();
    let mut merged: Option<Value> = None;
    let mut unset = Vec::new();
    for f in &files {
        let text = read(f)?;
        let shown = f.display().to_string();
        let mut v: Value = serde_norway::from_str(&text).map_err(|e| ComposeError::Yaml {
            file: shown.clone(),
            message: e.to_string(),
        })?;
        if v.is_null() {
            v = Value::Mapping(Mapping::new());
        }
        v.apply_merge().map_err(|e| ComposeError::Yaml {
            file: shown.clone(),
            message: e.to_string(),
        })?;
        if !v.is_mapping() {
            return Err(ComposeError::Invalid {
                at: format!("{shown}: "),
                path: "(top level)".into(),
                message: "the file must be a map with services, networks, volumes...".into(),
            });
        }
        strip_extensions(&mut v);
        interpolate(&mut v, &mut Vec::new(), &lookup, &mut unset)?;
        lists_to_maps(&mut v);
        texts.push((shown, text));
        match &mut merged {
            None => merged = Some(v),
            Some(b) => merge(b, v, 0, ""),
        }
    }
    let merged = merged.unwrap_or(Value::Mapping(Mapping::new()));
    let file: ComposeFile = serde_path_to_error::deserialize(merged).map_err(|e| {
        let segs: Vec<Seg> = e
            .path()
            .iter()
            .filter_map(|s| match s {
                serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
                serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
                _ => None,
            })
            .collect();
        let message = e.inner().to_string();
        let message = match message.strip_prefix("unknown field") {
            Some(rest) => format!("unknown key{rest}"),
            None => message,
        };
        ComposeError::Invalid {
            at: position(&texts, &segs),
            path: match path_string(&segs) {
                p if p.is_empty() => "(top level)".into(),
                p => p,
            },
            message,
        }
    })?;

    let mut warnings = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for u in unset {
        if seen.insert(u.clone()) {
            warnings.push(format!(
                "The \"{u}\" variable is not set. Defaulting to a blank string."
            ));
        }
    }
    if file.version.is_some() {
        warnings.push("the attribute `version` is obsolete, it will be ignored".into());
    }

    let name = if let Some(p) = opts.project_name.as_ref().filter(|s| !s.is_empty()) {
        if !valid_project_name(p) {
            return Err(invalid_name(p));
        }
        p.clone()
    } else if let Some(p) = environment
        .get("COMPOSE_PROJECT_NAME")
        .filter(|s| !s.is_empty())
    {
        if !valid_project_name(p) {
            return Err(invalid_name(p));
        }
        p.clone()
    } else if let Some(p) = file.name.as_ref().filter(|s| !s.is_empty()) {
        if !valid_project_name(p) {
            return Err(invalid_name(p));
        }
        p.clone()
    } else {
        let base = working_dir
            .file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let n = normalize_project_name(&base);
        if n.is_empty() {
            return Err(invalid_name(&base));
        }
        n
    };

    let mut project = Project {
        name,
        working_dir,
        config_files: files,
        services: file.services,
        networks: file.networks,
        volumes: file.volumes,
        environment,
        warnings,
    };
    normalize(&mut project)?;
    Ok(project)
}

fn undefined(kind: &str, svc: &str, what: &str) -> ComposeError {
    ComposeError::project(format!(
        "service {svc:?} refers to undefined {kind} {what}: invalid compose project"
    ))
}

fn expand_home(p: &str, env: &BTreeMap<String, String>) -> String {
    if p == "~" || p.starts_with("~/") {
        let home = env.get("HOME").cloned().unwrap_or_else(|| "/root".into());
        return format!("{home}{}", &p[1..]);
    }
    p.to_string()
}

/// Checks references and values and puts the project into its resolved form.
/// The daemon-side name of a network or volume: for an external one, the legacy
/// `external.name`, else `name:`, else its key; for any other, `name:`, else
/// `<project>_<key>`.
fn daemon_name(project: &str, key: &str, ext: &External, name: Option<String>) -> String {
    if ext.external {
        ext.name.clone().or(name).unwrap_or_else(|| key.to_string())
    } else {
        name.unwrap_or_else(|| format!("{project}_{key}"))
    }
}

fn normalize(p: &mut Project) -> Result<()> {
    let names: Vec<String> = p.services.keys().cloned().collect();
    let pname = p.name.clone();
    let env = p.environment.clone();
    let mut uses_default = false;
    for (sname, svc) in p.services.iter_mut() {
        let ctx = |m: String| ComposeError::project(format!("service {sname:?}: {m}"));
        if let Some(b) = svc.build.as_mut() {
            // the context is relative to the project directory; args without a value
            // come from the environment
            let ctxdir = absolute(&p.working_dir, Path::new(&expand_home(&b.context, &env)));
            b.context = ctxdir.display().to_string();
            for (k, v) in b.args.0.iter_mut() {
                if v.is_none() {
                    *v = env.get(k).cloned();
                }
            }
            if svc.image.as_deref().unwrap_or("").is_empty() {
                // Compose's name for a built image: <project>-<service>
                svc.image = Some(format!("{pname}-{sname}"));
                svc.image_implied = true;
            }
        }
        if svc.image.as_deref().unwrap_or("").is_empty() {
            return Err(ctx(
                "has neither an image nor a build context specified: invalid compose project"
                    .into(),
            ));
        }
        // environment: env_file values first, then `environment:`; bare keys from the environment
        let mut merged: BTreeMap<String, Option<String>> = BTreeMap::new();
        for ef in std::mem::take(&mut svc.env_file.0) {
            let path = absolute(&p.working_dir, Path::new(&expand_home(&ef.path, &env)));
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let lookup = |k: &str| env.get(k).cloned();
                    let vars = parse_dotenv(&text, &lookup)
                        .map_err(|e| ctx(format!("env_file {}: {e}", path.display())))?;
                    merged.extend(vars.into_iter().map(|(k, v)| (k, Some(v))));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !ef.required => {}
                Err(e) => return Err(ctx(format!("env_file {}: {e}", path.display()))),
            }
        }
        for (k, v) in std::mem::take(&mut svc.environment.0) {
            let v = v.or_else(|| env.get(&k).cloned());
            if v.is_some() || !merged.contains_key(&k) {
                merged.insert(k, v);
            }
        }
        svc.environment.0 = merged;

        for m in svc.volumes.0.iter_mut() {
            match m.kind.as_str() {
                "bind" => {
                    let src = m
                        .source
                        .clone()
                        .ok_or_else(|| ctx(format!("bind mount {} has no source", m.target)))?;
                    let abs = absolute(&p.working_dir, Path::new(&expand_home(&src, &env)));
                    m.source = Some(abs.display().to_string());
                }
                "volume" => {
                    if let Some(src) = &m.source {
                        if !p.volumes.contains_key(src) {
                            return Err(undefined("volume", sname, src));
                        }
                    }
                }
                _ => {}
            }
        }
        // dedupe mounts by target, the later wins (merged files)
        let mut seen = std::collections::BTreeSet::new();
        let mut kept = Vec::new();
        for m in svc.volumes.0.drain(..).rev() {
            if seen.insert(m.target.clone()) {
                kept.push(m);
            }
        }
        kept.reverse();
        svc.volumes.0 = kept;

        if let Some(mode) = &svc.network_mode {
            if !svc.networks.0.is_empty() {
                return Err(ctx(
                    "network_mode and networks cannot be combined: invalid compose project".into(),
                ));
            }
            if let Some(target) = mode.strip_prefix("service:") {
                if !names.iter().any(|n| n == target) {
                    return Err(ctx(format!(
                        "network_mode refers to undefined service {target:?}"
                    )));
                }
            } else if !matches!(mode.as_str(), "host" | "none" | "bridge" | "default")
                && !mode.starts_with("container:")
            {
                // a network name: allowed by docker; left as is
            }
        } else if svc.networks.0.is_empty() {
            uses_default = true;
        }
        for (n, _) in svc.networks.0.iter() {
            if n == "default" {
                uses_default = true;
            } else if !p.networks.contains_key(n) {
                return Err(undefined("network", sname, n));
            }
        }
        svc.depends_on
            .0
            .retain(|d, dep| dep.required || names.contains(d));
        for d in svc.depends_on.0.keys() {
            if !names.contains(d) {
                return Err(ctx(format!(
                    "depends on undefined service {d:?}: invalid compose project"
                )));
            }
            if d == sname {
                return Err(ctx("depends on itself".into()));
            }
        }
        for l in &svc.links {
            let target = l.split(':').next().unwrap_or("");
            if !names.iter().any(|n| n == target) {
                return Err(ctx(format!(
                    "links refers to undefined service {target:?}: invalid compose project"
                )));
            }
        }
        if let Some(r) = &svc.restart {
            parse_restart(r).map_err(ctx)?;
        }
        if let Some(pp) = &svc.pull_policy {
            let policy = crate::model::PullPolicy::parse(pp).map_err(ctx)?;
            if policy == crate::model::PullPolicy::Build && svc.build.is_none() {
                return Err(ctx(
                    "pull_policy is build but the service has no build section".into(),
                ));
            }
        }
        if let Some(d) = &svc.stop_grace_period {
            parse_duration(d).map_err(|e| ctx(format!("stop_grace_period: {e}")))?;
        }
        if let Some(h) = &svc.healthcheck {
            for (k, v) in [
                ("interval", &h.interval),
                ("timeout", &h.timeout),
                ("start_period", &h.start_period),
                ("start_interval", &h.start_interval),
            ] {
                if let Some(v) = v {
                    parse_duration(v).map_err(|e| ctx(format!("healthcheck.{k}: {e}")))?;
                }
            }
            if let Some(t) = &h.test {
                match t.first().map(String::as_str) {
                    Some("CMD" | "CMD-SHELL" | "NONE") => {}
                    _ => {
                        return Err(ctx(format!(
                            "healthcheck.test must start with CMD, CMD-SHELL or NONE, got {t:?}"
                        )))
                    }
                }
            }
        }
        if let (Some(s), Some(r)) = (svc.scale, svc.deploy.as_ref().and_then(|d| d.replicas)) {
            if s != r {
                return Err(ctx(format!("scale ({s}) and deploy.replicas ({r}) differ")));
            }
        }
        for port in &svc.ports.0 {
            if let Some(pr) = &port.protocol {
                if !matches!(pr.as_str(), "tcp" | "udp" | "sctp") {
                    return Err(ctx(format!(
                        "invalid protocol {pr:?} for port {}: expected tcp, udp or sctp",
                        port.target
                    )));
                }
            }
        }
        if let Some(c) = &svc.container_name {
            if c.is_empty()
                || !c.starts_with(|ch: char| ch.is_ascii_alphanumeric())
                || !c
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || "_.-".contains(ch))
            {
                return Err(ctx(format!(
                    "invalid container_name {c:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
        }
    }
    if uses_default && !p.networks.contains_key("default") {
        p.networks.insert("default".into(), NetworkDef::default());
    }
    let project = p.name.clone();
    for (key, n) in p.networks.iter_mut() {
        n.name = Some(daemon_name(&project, key, &n.external, n.name.take()));
    }
    for (key, v) in p.volumes.iter_mut() {
        v.name = Some(daemon_name(&project, key, &v.external, v.name.take()));
    }
    // cycles
    crate::plan::start_order(p, &[])?;
    // container names must be unique
    let mut cnames = BTreeMap::new();
    for (s, svc) in &p.services {
        if let Some(c) = &svc.container_name {
            if crate::plan::replicas(svc) > 1 {
                return Err(ComposeError::project(format!(
                    "service {s:?}: container_name {c:?} cannot be used with more than one replica"
                )));
            }
            if let Some(other) = cnames.insert(c.clone(), s.clone()) {
                return Err(ComposeError::project(format!(
                    "services {other:?} and {s:?} both use container_name {c:?}"
                )));
            }
        }
    }
    Ok(())
}

/// Loads a project from text, for tests and tools: `files` are (name, text) pairs
/// written into `dir` first.
pub fn load_texts(dir: &Path, files: &[(&str, &str)], env: &[(&str, &str)]) -> Result<Project> {
    let mut paths = Vec::new();
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|source| ComposeError::Io {
            path: p.display().to_string(),
            source,
        })?;
        paths.push(PathBuf::from(name));
    }
    load(&LoadOptions {
        files: paths,
        cwd: dir.to_path_buf(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &[&str]) -> Vec<Seg> {
        p.iter()
            .map(|s| match s.parse::<usize>() {
                Ok(i) => Seg::Index(i),
                Err(_) => Seg::Key(s.to_string()),
            })
            .collect()
    }

    #[test]
    fn locate_lines() {
        let text = "services:\n  web:\n    image: x\n    ports:\n      - 80\n      - target: 81\n        bogus: 1\n  db:\n    image: y\n    foo: 2\n";
        assert_eq!(
            locate(text, &segs(&["services", "db", "foo"])).unwrap().0,
            10
        );
        assert_eq!(
            locate(text, &segs(&["services", "web", "image"]))
                .unwrap()
                .0,
            3
        );
        assert_eq!(
            locate(text, &segs(&["services", "web", "ports", "1", "bogus"]))
                .unwrap()
                .0,
            7
        );
        assert_eq!(
            locate(text, &segs(&["services", "web", "ports", "0"]))
                .unwrap()
                .0,
            5
        );
        assert_eq!(locate(text, &segs(&["nothing"])), None);
    }

    #[test]
    fn names() {
        assert_eq!(normalize_project_name("My App.v2"), "myappv2");
        assert_eq!(normalize_project_name("_x"), "x");
        assert!(valid_project_name("a-b_1"));
        assert!(!valid_project_name("A"));
        assert!(!valid_project_name("-a"));
    }

    #[test]
    fn durations_and_restart() {
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
        assert_eq!(parse_duration("1.5s").unwrap(), 1_500_000_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("5x").is_err());
        assert_eq!(
            parse_restart("on-failure:3").unwrap(),
            ("on-failure".into(), 3)
        );
        assert!(parse_restart("sometimes").is_err());
    }
}
