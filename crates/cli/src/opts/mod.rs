//! Option value parsers shared by commands, each following the docker/cli
//! `opts` package: environment, labels, filters, extra hosts, DNS, restart
//! policies, sizes and durations.

pub mod ports;

use std::net::IpAddr;

/// `-e KEY=VAL` is kept; bare `-e KEY` takes `KEY=value` from the CLI's
/// environment when set, and stays `KEY` otherwise (docker's `ValidateEnv`).
pub fn env_value(raw: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    if raw.contains('=') {
        return raw.to_string();
    }
    match lookup(raw) {
        Some(v) => format!("{raw}={v}"),
        None => raw.to_string(),
    }
}

/// Parses an `--env-file` (docker's `ParseEnvFile`): `KEY=VAL` lines, blank
/// lines and `#` comments skipped, leading whitespace trimmed, values kept
/// verbatim; a bare `KEY` is taken from the environment and dropped when unset.
pub fn parse_env_file(
    name: &str,
    content: &[u8],
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, String> {
    let text = std::str::from_utf8(content).map_err(|_| {
        let line = content[..]
            .split(|&b| b == b'\n')
            .position(|l| std::str::from_utf8(l).is_err())
            .map_or(1, |p| p + 1);
        format!("env file {name} contains invalid utf8 bytes at line {line}")
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (var, value) = match line.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (line, None),
        };
        let var = var.trim_start();
        if var.contains(char::is_whitespace) {
            return Err(format!(
                "poorly formatted environment: variable '{var}' contains whitespaces"
            ));
        }
        if var.is_empty() {
            return Err(format!(
                "poorly formatted environment: no variable name on line '{line}'"
            ));
        }
        match value {
            Some(v) => out.push(format!("{var}={v}")),
            None => {
                if let Some(v) = lookup(var.trim()) {
                    out.push(format!("{}={v}", var.trim()));
                }
            }
        }
    }
    Ok(out)
}

/// Reads the process environment.
pub fn os_env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

/// `-l k=v` / `-l k` into a map (docker's `ConvertKVStringsToMap`).
pub fn kv_map(items: &[String]) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    for it in items {
        let (k, v) = it.split_once('=').unwrap_or((it.as_str(), ""));
        m.insert(k.to_string(), serde_json::Value::String(v.to_string()));
    }
    m
}

/// `--label-file`: one label per line, `#` comments and blank lines skipped.
pub fn parse_label_file(content: &str) -> Vec<String> {
    content
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// `--filter k=v` values into the API's `filters` JSON: a map of lists.
pub fn filters_json(items: &[String]) -> Result<Option<String>, String> {
    if items.is_empty() {
        return Ok(None);
    }
    let mut m: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for it in items {
        let (k, v) = it
            .split_once('=')
            .ok_or_else(|| "bad format of filter (expected name=value)".to_string())?;
        let k = k.trim().to_lowercase();
        let v = v.trim().to_string();
        let list = m.entry(k).or_default();
        if !list.contains(&v) {
            list.push(v);
        }
    }
    Ok(Some(serde_json::to_string(&m).unwrap_or_default()))
}

/// `--add-host name:ip` (or `name=ip`); `host-gateway` is passed through.
/// Returns the API form `name:ip`.
pub fn validate_extra_host(raw: &str) -> Result<String, String> {
    let (name, ip) = match raw.split_once('=') {
        Some(x) => x,
        None => raw
            .split_once(':')
            .ok_or_else(|| format!("bad format for add-host: {raw:?}"))?,
    };
    if name.is_empty() {
        return Err(format!("bad format for add-host: {raw:?}"));
    }
    let ip_clean = ip.trim_start_matches('[').trim_end_matches(']');
    if ip_clean != "host-gateway" && ip_clean.parse::<IpAddr>().is_err() {
        return Err(format!("invalid IP address in add-host: {ip:?}"));
    }
    Ok(format!("{name}:{ip_clean}"))
}

/// `--dns`: must be an IP address (docker's `ValidateIPAddress`).
pub fn validate_ip(raw: &str) -> Result<String, String> {
    raw.trim()
        .parse::<IpAddr>()
        .map(|ip| ip.to_string())
        .map_err(|_| format!("IP address is not correctly formatted: {raw}"))
}

/// `--restart no|always|unless-stopped|on-failure[:N]` → `RestartPolicy`.
pub fn parse_restart(raw: &str) -> Result<serde_json::Value, String> {
    let (name, count) = match raw.split_once(':') {
        Some((n, c)) => (n, Some(c)),
        None => (raw, None),
    };
    let max: i64 = match count {
        Some(c) => c.parse().map_err(|_| {
            "invalid restart policy format: maximum retry count must be an integer".to_string()
        })?,
        None => 0,
    };
    match name {
        "" | "no" | "always" | "unless-stopped" if count.is_some() => Err(
            "invalid restart policy format: maximum retry count can only be used with 'on-failure'"
                .to_string(),
        ),
        "" | "no" | "always" | "unless-stopped" | "on-failure" => Ok(serde_json::json!({
            "Name": if name.is_empty() { "no" } else { name },
            "MaximumRetryCount": max,
        })),
        other => Err(format!("invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'")),
    }
}

/// go-units `RAMInBytes`: "512m", "1g", "100k", "1024" (binary multiples).
pub fn parse_ram(raw: &str) -> Result<i64, String> {
    let s = raw.trim().to_lowercase();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("invalid size: '{raw}'"))?;
    let mult: f64 = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(format!("invalid size: '{raw}'")),
    };
    Ok((n * mult) as i64)
}

/// Go's `time.ParseDuration` ("1m30s", "500ms", "2h") in nanoseconds.
pub fn parse_duration(raw: &str) -> Result<i64, String> {
    let bad = || format!("time: invalid duration {raw:?}");
    if raw == "0" {
        return Ok(0);
    }
    let (neg, mut s) = match raw.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, raw.strip_prefix('+').unwrap_or(raw)),
    };
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !s.is_empty() {
        let n = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("time: missing unit in duration {raw:?}"))?;
        if n == 0 {
            return Err(bad());
        }
        let v: f64 = s[..n].parse().map_err(|_| bad())?;
        s = &s[n..];
        let u = s
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(s.len());
        let mult = match &s[..u] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            other => return Err(format!("time: unknown unit {other:?} in duration {raw:?}")),
        };
        total += v * mult;
        s = &s[u..];
    }
    Ok(if neg { -(total as i64) } else { total as i64 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "HOME_X" => Some("/root".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn env_values() {
        assert_eq!(env_value("A=1", &env), "A=1");
        assert_eq!(env_value("A=", &env), "A=");
        assert_eq!(env_value("HOME_X", &env), "HOME_X=/root");
        assert_eq!(env_value("UNSET", &env), "UNSET");
    }

    #[test]
    fn env_file_parsing() {
        let content = b"# comment\n\nA=1\n  B=two words  \nHOME_X\nUNSET\nC=\nD=x=y\n\t# indented comment\nEMPTY\n";
        assert_eq!(
            parse_env_file("f", content, &env).unwrap(),
            [
                "A=1",
                "B=two words  ",
                "HOME_X=/root",
                "C=",
                "D=x=y",
                "EMPTY="
            ]
        );
        assert_eq!(
            parse_env_file("f", b"BAD KEY=1\n", &env).unwrap_err(),
            "poorly formatted environment: variable 'BAD KEY' contains whitespaces"
        );
        assert!(parse_env_file("f", b"=1\n", &env).is_err());
        assert!(parse_env_file("f", b"A=\xff\n", &env).is_err());
        assert_eq!(
            parse_env_file("f", "\u{feff}A=1\r\n".as_bytes(), &env).unwrap(),
            ["A=1"]
        );
    }

    #[test]
    fn labels_and_filters() {
        let m = kv_map(&["a=1".into(), "b".into(), "c=x=y".into()]);
        assert_eq!(
            serde_json::Value::Object(m),
            serde_json::json!({"a": "1", "b": "", "c": "x=y"})
        );
        assert_eq!(
            filters_json(&["name=web".into(), "label=a=b".into(), "name=db".into()]).unwrap(),
            Some(r#"{"label":["a=b"],"name":["web","db"]}"#.to_string())
        );
        assert_eq!(filters_json(&[]).unwrap(), None);
        assert!(filters_json(&["bogus".into()]).is_err());
    }

    #[test]
    fn hosts_dns_restart() {
        assert_eq!(validate_extra_host("db:10.0.0.2").unwrap(), "db:10.0.0.2");
        assert_eq!(
            validate_extra_host("gw:host-gateway").unwrap(),
            "gw:host-gateway"
        );
        assert_eq!(validate_extra_host("v6:::1").unwrap(), "v6:::1");
        assert_eq!(validate_extra_host("a=1.2.3.4").unwrap(), "a:1.2.3.4");
        assert!(validate_extra_host("nohost").is_err());
        assert!(validate_extra_host("x:notanip").is_err());
        assert_eq!(validate_ip("8.8.8.8").unwrap(), "8.8.8.8");
        assert!(validate_ip("dns.google").is_err());
        assert_eq!(
            parse_restart("on-failure:3").unwrap(),
            serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(parse_restart("always").unwrap()["Name"], "always");
        assert!(parse_restart("always:2").is_err());
        assert!(parse_restart("sometimes").is_err());
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_ram("512m").unwrap(), 512 * 1024 * 1024);
        assert_eq!(parse_ram("1g").unwrap(), 1 << 30);
        assert_eq!(parse_ram("1024").unwrap(), 1024);
        assert_eq!(parse_ram("2kb").unwrap(), 2048);
        assert!(parse_ram("lots").is_err());
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("1x").is_err());
    }
}
