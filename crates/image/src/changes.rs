//! `--change` handling for `docker import` / `docker commit`: a subset of
//! Dockerfile instructions applied to an [`ImageConfig`].
//!
//! Follows the Dockerfile reference (<https://docs.docker.com/reference/dockerfile/>)
//! and moby's `builder/dockerfile` dispatchers for the instructions we keep
//! in [`ImageConfig`]. Variable substitution (`$VAR`) is not performed.

use crate::{ImageConfig, ImageError};

/// Instructions accepted by [`apply_changes`], as listed in error messages.
pub const VALID_CHANGES: &[&str] = &[
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Applies Dockerfile instructions (`--change` values) to `config`, in order.
///
/// Each string may hold several lines (backslash-newline continues a line;
/// empty lines and `#` comments are skipped). Supported:
/// - `CMD` / `ENTRYPOINT`: JSON form `["/bin/sh","-c","x"]`, or shell form
///   `CMD echo hi` => `["/bin/sh","-c","echo hi"]`. An `ENTRYPOINT` resets a `CMD`
///   that was not set by an earlier change (as a Dockerfile does).
/// - `ENV k=v k2="v 2"` and legacy `ENV k v w` (value `v w`); replaces an existing `k`.
/// - `LABEL k=v ...` (same syntax as ENV).
/// - `WORKDIR /abs` or relative (joined to the current one), cleaned lexically.
/// - `EXPOSE 80 53/udp 8000-8002/tcp` => `80/tcp`, `53/udp`, `8000/tcp`..`8002/tcp`.
/// - `USER name[:group]`, `STOPSIGNAL SIGTERM|TERM|15`.
/// - `VOLUME /a /b` or `VOLUME ["/a", "/b"]`: mount points added to `volumes`.
/// - `ONBUILD INSTRUCTION ...`: a trigger added to `on_build` (not `ONBUILD`,
///   `FROM` or `MAINTAINER`, as the Dockerfile reference forbids).
/// - `HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D]
///   [--start-interval=D] [--retries=N] CMD command` (shell form => `CMD-SHELL`,
///   JSON form => `CMD` + args) or `HEALTHCHECK NONE`; durations in Go syntax
///   (`30s`, `1m30s`), each 0 or at least 1ms.
///
/// # Errors
/// [`ImageError::InvalidChange`] naming the bad instruction or argument; for an
/// unknown/unsupported instruction the message lists [`VALID_CHANGES`].
pub fn apply_changes(config: &mut ImageConfig, changes: &[String]) -> Result<(), ImageError> {
    let mut cmd_set = false;
    for change in changes {
        for line in logical_lines(change) {
            apply_line(config, &line, &mut cmd_set)?;
        }
    }
    Ok(())
}

/// Joins backslash-continued lines and drops blank lines and comments.
fn logical_lines(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for raw in s.lines() {
        let trimmed = raw.trim_end();
        if cur.is_empty()
            && (trimmed.trim_start().is_empty() || trimmed.trim_start().starts_with('#'))
        {
            continue;
        }
        if let Some(stripped) = trimmed.strip_suffix('\\') {
            cur.push_str(stripped);
            cur.push(' ');
            continue;
        }
        cur.push_str(trimmed);
        out.push(std::mem::take(&mut cur));
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out
}

fn bad(line: &str, why: impl std::fmt::Display) -> ImageError {
    ImageError::InvalidChange(format!("invalid change \"{line}\": {why}"))
}

fn apply_line(config: &mut ImageConfig, line: &str, cmd_set: &mut bool) -> Result<(), ImageError> {
    let line_t = line.trim();
    let (instr, rest) = match line_t.find(char::is_whitespace) {
        Some(i) => (&line_t[..i], line_t[i..].trim()),
        None => (line_t, ""),
    };
    let upper = instr.to_ascii_uppercase();
    let not_valid = || {
        ImageError::InvalidChange(format!(
            "invalid change \"{line_t}\": {instr} is not a valid change command; valid: {}",
            VALID_CHANGES.join(", ")
        ))
    };
    if !VALID_CHANGES.contains(&upper.as_str()) {
        return Err(not_valid());
    }
    if rest.is_empty() {
        return Err(bad(
            line_t,
            format!("{upper} requires at least one argument"),
        ));
    }
    match upper.as_str() {
        "CMD" => {
            config.cmd = Some(command_form(rest));
            *cmd_set = true;
        }
        "ENTRYPOINT" => {
            config.entrypoint = Some(command_form(rest));
            if !*cmd_set {
                config.cmd = None;
            }
        }
        "ENV" => {
            for (k, v) in name_values(line_t, rest, "ENV")? {
                let prefix = format!("{k}=");
                let entry = format!("{k}={v}");
                match config
                    .env
                    .iter_mut()
                    .find(|e| e.starts_with(&prefix) || **e == k)
                {
                    Some(e) => *e = entry,
                    None => config.env.push(entry),
                }
            }
        }
        "LABEL" => {
            for (k, v) in name_values(line_t, rest, "LABEL")? {
                config.labels.insert(k, v);
            }
        }
        "WORKDIR" => {
            let dir = lex(rest, false).map_err(|e| bad(line_t, e))?.concat();
            let joined = if dir.starts_with('/') {
                dir
            } else {
                let base = if config.working_dir.is_empty() {
                    "/"
                } else {
                    config.working_dir.as_str()
                };
                format!("{base}/{dir}")
            };
            config.working_dir = clean_abs_path(&joined);
        }
        "EXPOSE" => {
            for word in lex(rest, true).map_err(|e| bad(line_t, e))? {
                for port in parse_port_spec(&word).map_err(|e| bad(line_t, e))? {
                    if !config.exposed_ports.contains(&port) {
                        config.exposed_ports.push(port);
                    }
                }
            }
        }
        "USER" => {
            config.user = lex(rest, false).map_err(|e| bad(line_t, e))?.concat();
        }
        "STOPSIGNAL" => {
            let sig = lex(rest, false).map_err(|e| bad(line_t, e))?.concat();
            if !valid_signal(&sig) {
                return Err(bad(
                    line_t,
                    format!("invalid signal \"{sig}\": use a name like SIGTERM or TERM, or a number 1-64"),
                ));
            }
            config.stop_signal = Some(sig);
        }
        "VOLUME" => {
            let list = match serde_json::from_str::<Vec<String>>(rest) {
                Ok(v) if rest.starts_with('[') => v,
                _ => lex(rest, true).map_err(|e| bad(line_t, e))?,
            };
            for v in list {
                let v = v.trim().to_string();
                if v.is_empty() {
                    return Err(bad(line_t, "VOLUME specified can not be an empty string"));
                }
                if !config.volumes.contains(&v) {
                    config.volumes.push(v);
                }
            }
        }
        "HEALTHCHECK" => {
            config.healthcheck = Some(healthcheck(line_t, rest)?);
        }
        "ONBUILD" => {
            let trigger = rest
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            if matches!(trigger.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                return Err(bad(
                    line_t,
                    format!("{trigger} isn't allowed as an ONBUILD trigger"),
                ));
            }
            config.on_build.push(rest.to_string());
        }
        _ => return Err(not_valid()),
    }
    Ok(())
}

/// A Go duration (`1h2m3.5s`, `300ms`, `0`) in nanoseconds.
fn go_duration_ns(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let num: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += num * mult;
        rest = &rest[u..];
    }
    let ns = total.round() as i64;
    Some(if neg { -ns } else { ns })
}

/// The arguments of a `HEALTHCHECK` instruction (Dockerfile reference; moby's
/// `parseHealthConfig`).
fn healthcheck(line: &str, rest: &str) -> Result<crate::HealthConfig, ImageError> {
    let mut h = crate::HealthConfig::default();
    let mut rest = rest.trim_start();
    while let Some(flag) = rest.strip_prefix("--") {
        let end = flag.find(char::is_whitespace).unwrap_or(flag.len());
        let (name, value) = flag[..end].split_once('=').ok_or_else(|| {
            bad(
                line,
                format!(
                    "HEALTHCHECK flag --{} needs a value (--{}=VALUE)",
                    &flag[..end],
                    &flag[..end]
                ),
            )
        })?;
        let dur = |what: &str| -> Result<i64, ImageError> {
            let ns = go_duration_ns(value).ok_or_else(|| {
                bad(
                    line,
                    format!("{what} {value:?} is not a duration such as 30s or 1m30s"),
                )
            })?;
            if ns < 0 {
                return Err(bad(line, format!("{what} {value:?} cannot be negative")));
            }
            if ns != 0 && ns < 1_000_000 {
                return Err(bad(
                    line,
                    format!("{what} {value:?} cannot be less than 1ms"),
                ));
            }
            Ok(ns)
        };
        match name {
            "interval" => h.interval = dur("Interval")?,
            "timeout" => h.timeout = dur("Timeout")?,
            "start-period" => h.start_period = dur("StartPeriod")?,
            "start-interval" => h.start_interval = dur("StartInterval")?,
            "retries" => {
                h.retries = value.parse::<i64>().ok().filter(|r| *r >= 0).ok_or_else(|| {
                    bad(line, format!("--retries={value} must be a number >= 0"))
                })?
            }
            other => {
                return Err(bad(
                    line,
                    format!("unknown HEALTHCHECK flag --{other}; valid: --interval, --timeout, --start-period, --start-interval, --retries"),
                ))
            }
        }
        rest = flag[end..].trim_start();
    }
    let (typ, args) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    match typ.to_ascii_uppercase().as_str() {
        "NONE" => {
            if !args.is_empty() {
                return Err(bad(line, "HEALTHCHECK NONE takes no arguments"));
            }
            h.test = vec!["NONE".to_string()];
        }
        "CMD" => {
            if args.is_empty() {
                return Err(bad(line, "HEALTHCHECK CMD needs a command"));
            }
            h.test = match serde_json::from_str::<Vec<String>>(args) {
                Ok(v) if args.starts_with('[') => {
                    std::iter::once("CMD".to_string()).chain(v).collect()
                }
                _ => vec!["CMD-SHELL".to_string(), args.to_string()],
            };
        }
        _ => {
            return Err(bad(
                line,
                format!("unknown type {typ:?} in HEALTHCHECK (try CMD or NONE)"),
            ))
        }
    }
    Ok(h)
}

/// JSON array form if `rest` parses as a JSON array of strings, else shell form.
fn command_form(rest: &str) -> Vec<String> {
    if rest.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Vec<String>>(rest) {
            return v;
        }
    }
    vec!["/bin/sh".to_string(), "-c".to_string(), rest.to_string()]
}

/// `k=v k2="v 2"` pairs, or legacy `k v...` (single pair, rest is the value).
fn name_values(line: &str, rest: &str, instr: &str) -> Result<Vec<(String, String)>, ImageError> {
    let raw_words = split_raw(rest);
    let first = raw_words.first().map(String::as_str).unwrap_or("");
    if !first.contains('=') {
        // Legacy form: NAME value with spaces.
        let key = lex(first, false).map_err(|e| bad(line, e))?.concat();
        let value_raw = rest[first.len()..].trim();
        if value_raw.is_empty() {
            return Err(bad(
                line,
                format!(
                    "{instr} {key} needs a value: use {instr} {key}=value or {instr} {key} value"
                ),
            ));
        }
        let value = lex(value_raw, false).map_err(|e| bad(line, e))?.concat();
        return Ok(vec![(key, value)]);
    }
    let mut out = Vec::new();
    for w in raw_words {
        let Some((k, v)) = w.split_once('=') else {
            return Err(bad(
                line,
                format!("can't find = in \"{w}\"; must be of the form: name=value"),
            ));
        };
        let key = lex(k, false).map_err(|e| bad(line, e))?.concat();
        if key.is_empty() {
            return Err(bad(line, format!("{instr} names can not be blank")));
        }
        let value = lex(v, false).map_err(|e| bad(line, e))?.concat();
        out.push((key, value));
    }
    Ok(out)
}

/// Splits on unquoted whitespace, keeping quotes and escapes in the words.
fn split_raw(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (q, '\\') if q != Some('\'') => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            _ => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// Shell-like word processing: removes quotes and backslash escapes. With
/// `split`, unquoted whitespace separates words; otherwise it is kept.
fn lex(s: &str, split: bool) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some('\'') => {
                if c == '\'' {
                    quote = None;
                } else {
                    cur.push(c);
                }
            }
            Some(_) => match c {
                '"' => quote = None,
                '\\' => match chars.peek() {
                    Some(&n) if matches!(n, '"' | '\\' | '$' | '`') => {
                        cur.push(n);
                        chars.next();
                    }
                    _ => cur.push('\\'),
                },
                _ => cur.push(c),
            },
            None => match c {
                '\'' | '"' => quote = Some(c),
                '\\' => match chars.next() {
                    Some(n) => cur.push(n),
                    None => cur.push('\\'),
                },
                c if split && c.is_whitespace() => {
                    if !cur.is_empty() {
                        words.push(std::mem::take(&mut cur));
                    }
                }
                _ => cur.push(c),
            },
        }
    }
    if let Some(q) = quote {
        return Err(format!("unmatched {q} quote"));
    }
    if !cur.is_empty() || (!split && words.is_empty()) {
        words.push(cur);
    }
    Ok(words)
}

/// Lexically cleans an absolute path (`/a/./b/../c/` => `/a/c`).
fn clean_abs_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `port[-port][/proto]` => `["80/tcp", ...]`.
fn parse_port_spec(spec: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!(
            "invalid protocol \"{proto}\" in \"{spec}\": use tcp, udp or sctp"
        ));
    }
    let parse = |s: &str| -> Result<u16, String> {
        s.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("invalid port \"{s}\" in \"{spec}\": use a number 1-65535"))
    };
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => {
            let p = parse(ports)?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(format!("invalid port range \"{spec}\": end is below start"));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// Linux signal names (with or without `SIG`), `RTMIN+n`/`RTMAX-n`, or 1..=64.
fn valid_signal(s: &str) -> bool {
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "UNUSED", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU",
        "XFSZ", "RTMIN", "RTMAX",
    ];
    if let Ok(n) = s.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    if NAMES.contains(&name) {
        return true;
    }
    for (base, sep) in [("RTMIN", '+'), ("RTMAX", '-')] {
        if let Some(n) = name
            .strip_prefix(base)
            .and_then(|r| r.strip_prefix(sep))
            .and_then(|r| r.parse::<u32>().ok())
        {
            return (1..=30).contains(&n);
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> Result<ImageConfig, ImageError> {
        let mut c = ImageConfig::default();
        let v: Vec<String> = changes.iter().map(|s| s.to_string()).collect();
        apply_changes(&mut c, &v)?;
        Ok(c)
    }

    #[test]
    fn cmd_and_entrypoint_forms() {
        let c = apply(&[r#"CMD ["/bin/sh","-c","x"]"#]).unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["/bin/sh", "-c", "x"]);
        let c = apply(&["CMD /bin/sh"]).unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["/bin/sh", "-c", "/bin/sh"]);
        let c = apply(&["cmd echo  hi there"]).unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["/bin/sh", "-c", "echo  hi there"]);
        // Not valid JSON -> shell form, as Docker does.
        let c = apply(&["CMD [not json"]).unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["/bin/sh", "-c", "[not json"]);
        let c = apply(&[r#"ENTRYPOINT ["/init"]"#, r#"CMD ["a"]"#]).unwrap();
        assert_eq!(c.entrypoint.unwrap(), vec!["/init"]);
        assert_eq!(c.cmd.unwrap(), vec!["a"]);
        // CMD set earlier in the same change set survives ENTRYPOINT.
        let c = apply(&[r#"CMD ["a"]"#, "ENTRYPOINT /init"]).unwrap();
        assert_eq!(c.cmd.unwrap(), vec!["a"]);
        assert_eq!(c.entrypoint.unwrap(), vec!["/bin/sh", "-c", "/init"]);
    }

    #[test]
    fn env_label_forms() {
        let c = apply(&[
            r#"ENV k=v k2="v 2" k3=a\ b"#,
            "ENV legacy some value",
            "ENV k=new",
        ])
        .unwrap();
        assert_eq!(
            c.env,
            vec!["k=new", "k2=v 2", "k3=a b", "legacy=some value"]
        );
        let c = apply(&[r#"LABEL a=b "c d"='e f'"#, "LABEL x y z"]).unwrap();
        assert_eq!(c.labels.get("a").unwrap(), "b");
        assert_eq!(c.labels.get("c d").unwrap(), "e f");
        assert_eq!(c.labels.get("x").unwrap(), "y z");
        let e = apply(&["ENV a=b c"]).unwrap_err();
        assert!(e.to_string().contains("can't find = in \"c\""), "{e}");
        assert!(apply(&["ENV =x"]).is_err());
        assert!(apply(&["ENV onlykey"]).is_err());
        assert!(apply(&[r#"ENV a="unterminated"#]).is_err());
    }

    #[test]
    fn other_instructions() {
        let c = apply(&[
            "WORKDIR /app",
            "WORKDIR sub/../x",
            "EXPOSE 80 53/udp 8000-8002",
            "USER nobody:nogroup",
            "STOPSIGNAL SIGINT",
        ])
        .unwrap();
        assert_eq!(c.working_dir, "/app/x");
        assert_eq!(
            c.exposed_ports,
            vec!["80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert_eq!(c.user, "nobody:nogroup");
        assert_eq!(c.stop_signal.as_deref(), Some("SIGINT"));
        let c = apply(&["WORKDIR rel"]).unwrap();
        assert_eq!(c.working_dir, "/rel");
        // several instructions in one string, with continuation and comment
        let c = apply(&["# comment\nENV a=1 \\\n  b=2\nUSER 1000\n"]).unwrap();
        assert_eq!(c.env, vec!["a=1", "b=2"]);
        assert_eq!(c.user, "1000");
        assert!(apply(&["EXPOSE 70000"]).is_err());
        assert!(apply(&["EXPOSE 80/icmp"]).is_err());
        assert!(apply(&["STOPSIGNAL SIGNOPE"]).is_err());
        assert!(apply(&["STOPSIGNAL 9"]).is_ok());
        assert!(apply(&["STOPSIGNAL RTMIN+3"]).is_ok());
        assert!(apply(&["CMD"]).is_err());
        let c = apply(&[
            "VOLUME /data /logs",
            "VOLUME [\"/x\", \"/data\"]",
            "ONBUILD RUN echo hi",
        ])
        .unwrap();
        assert_eq!(c.volumes, vec!["/data", "/logs", "/x"]);
        assert_eq!(c.on_build, vec!["RUN echo hi"]);
        let e = apply(&["ONBUILD FROM x"]).unwrap_err().to_string();
        assert!(e.contains("FROM isn't allowed"), "{e}");
        assert!(apply(&["VOLUME [\"\"]"]).is_err());
        let c = apply(&["HEALTHCHECK --interval=1m30s --retries=4 --start-period=500ms CMD curl -f http://x/ || exit 1"]).unwrap();
        let h = c.healthcheck.unwrap();
        assert_eq!(h.test, vec!["CMD-SHELL", "curl -f http://x/ || exit 1"]);
        assert_eq!(
            (h.interval, h.retries, h.start_period, h.timeout),
            (90_000_000_000, 4, 500_000_000, 0)
        );
        let c = apply(&["HEALTHCHECK CMD [\"/bin/check\", \"-q\"]"]).unwrap();
        assert_eq!(c.healthcheck.unwrap().test, vec!["CMD", "/bin/check", "-q"]);
        assert_eq!(
            apply(&["HEALTHCHECK NONE"])
                .unwrap()
                .healthcheck
                .unwrap()
                .test,
            vec!["NONE"]
        );
        for (bad_hc, says) in [
            ("HEALTHCHECK --interval=10x CMD true", "10x"),
            ("HEALTHCHECK --interval=10us CMD true", "less than 1ms"),
            ("HEALTHCHECK --retries=-1 CMD true", "retries"),
            ("HEALTHCHECK --bogus=1 CMD true", "--bogus"),
            ("HEALTHCHECK NONE x", "no arguments"),
            ("HEALTHCHECK RUN true", "try CMD"),
            ("HEALTHCHECK --interval CMD true", "needs a value"),
        ] {
            let e = apply(&[bad_hc]).unwrap_err().to_string();
            assert!(e.contains(says), "{bad_hc}: {e}");
        }
    }

    #[test]
    fn bad_instruction_lists_valid_ones() {
        let e = apply(&["RUN apt-get update"]).unwrap_err();
        assert!(matches!(e, ImageError::InvalidChange(_)));
        assert_eq!(e.status(), 400);
        let msg = e.to_string();
        assert!(msg.contains("RUN is not a valid change command"), "{msg}");
        for v in VALID_CHANGES {
            assert!(msg.contains(v), "{msg} lacks {v}");
        }
        assert!(apply(&["FROBNICATE x"]).is_err());
    }
}
