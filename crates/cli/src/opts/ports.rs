//! `-p/--publish` and `--expose` parsing (go-connections' `nat.ParsePortSpec`).

use std::collections::BTreeMap;
use std::net::IpAddr;

/// One host binding of a container port (`HostConfig.PortBindings` entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Host IP, "" for all.
    pub host_ip: String,
    /// Host port or range, "" for a random port.
    pub host_port: String,
}

/// Parsed publish options: exposed ports and their bindings, keyed "3000/tcp".
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PortSpecs {
    /// `Config.ExposedPorts` keys.
    pub exposed: Vec<String>,
    /// `HostConfig.PortBindings`.
    pub bindings: BTreeMap<String, Vec<Binding>>,
}

impl PortSpecs {
    fn expose(&mut self, key: &str) {
        if !self.exposed.iter().any(|k| k == key) {
            self.exposed.push(key.to_string());
        }
    }

    /// `ExposedPorts` as JSON (`{"3000/tcp": {}}`).
    pub fn exposed_json(&self) -> serde_json::Value {
        let m: serde_json::Map<String, serde_json::Value> = self
            .exposed
            .iter()
            .map(|k| (k.clone(), serde_json::json!({})))
            .collect();
        serde_json::Value::Object(m)
    }

    /// `PortBindings` as JSON (`{"3000/tcp": [{"HostIp": "", "HostPort": "8080"}]}`).
    pub fn bindings_json(&self) -> serde_json::Value {
        let m: serde_json::Map<String, serde_json::Value> = self
            .bindings
            .iter()
            .map(|(k, v)| {
                let list: Vec<serde_json::Value> = v
                    .iter()
                    .map(|b| serde_json::json!({"HostIp": b.host_ip, "HostPort": b.host_port}))
                    .collect();
                (k.clone(), serde_json::Value::Array(list))
            })
            .collect();
        serde_json::Value::Object(m)
    }
}

/// `nat.ParsePortRange`: "80" or "8000-8010".
pub fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    if s.is_empty() {
        return Err("empty string specified for ports".into());
    }
    let parse = |p: &str| -> Result<u16, String> {
        p.parse::<u16>()
            .map_err(|_| format!("strconv.ParseUint: parsing {p:?}: invalid syntax"))
    };
    match s.split_once('-') {
        None => {
            let p = parse(s)?;
            Ok((p, p))
        }
        Some((a, b)) => {
            let start = parse(a)?;
            let end = parse(b)?;
            if end < start {
                return Err(format!("invalid range specified for port: {s}"));
            }
            Ok((start, end))
        }
    }
}

/// `nat.SplitProtoPort`: "80/udp" → ("udp", "80"); default proto "tcp".
pub fn split_proto_port(raw: &str) -> (String, String) {
    let parts: Vec<&str> = raw.split('/').collect();
    if raw.is_empty() || parts[0].is_empty() {
        return (String::new(), String::new());
    }
    if parts.len() == 1 {
        return ("tcp".into(), raw.to_string());
    }
    if parts[1].is_empty() {
        return ("tcp".into(), parts[0].to_string());
    }
    (parts[1].to_string(), parts[0].to_string())
}

fn split_parts(raw: &str) -> (String, String, String) {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let container = parts[n - 1].to_string();
    match n {
        1 => (String::new(), String::new(), container),
        2 => (String::new(), parts[0].to_string(), container),
        3 => (parts[0].to_string(), parts[1].to_string(), container),
        _ => (
            parts[..n - 2].join(":"),
            parts[n - 2].to_string(),
            container,
        ),
    }
}

/// docker's long syntax `target=80,published=8080,protocol=udp` → "8080:80/udp".
fn convert_long_syntax(raw: &str) -> Result<String, String> {
    let (mut target, mut published, mut proto) =
        (String::new(), String::new(), String::from("tcp"));
    for field in raw.split(',') {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| format!("invalid field {field}"))?;
        match k.trim().to_lowercase().as_str() {
            "target" => target = v.to_string(),
            "published" => published = v.to_string(),
            "protocol" => proto = v.to_string(),
            "mode" => {}
            other => return Err(format!("invalid field key {other}")),
        }
    }
    if target.is_empty() {
        return Err("missing mandatory field \"target\"".into());
    }
    Ok(if published.is_empty() {
        format!("{target}/{proto}")
    } else {
        format!("{published}:{target}/{proto}")
    })
}

/// Parses one `-p` value (`[hostip:][hostport:]containerport[/proto]`) into `specs`.
/// Errors are go-connections' messages, e.g. `invalid containerPort: abc`.
pub fn parse_publish(raw: &str, specs: &mut PortSpecs) -> Result<(), String> {
    let converted;
    let raw = if raw.contains('=') {
        converted = convert_long_syntax(raw)?;
        converted.as_str()
    } else {
        raw
    };
    let (mut ip, host_port, container) = split_parts(raw);
    let (proto, container_port) = split_proto_port(&container);
    if ip.starts_with('[') {
        ip = ip
            .strip_prefix('[')
            .and_then(|s| s.strip_suffix(']'))
            .map(str::to_string)
            .ok_or_else(|| format!("invalid IP address {ip}: missing ']' in address"))?;
    }
    if !ip.is_empty() && ip.parse::<IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container_port.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (start, end) = parse_port_range(&container_port)
        .map_err(|_| format!("invalid containerPort: {container_port}"))?;
    let (hstart, hend) = if host_port.is_empty() {
        (0, 0)
    } else {
        parse_port_range(&host_port).map_err(|_| format!("invalid hostPort: {host_port}"))?
    };
    if !host_port.is_empty() && (end - start) != (hend - hstart) && end != start {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {container_port} and {host_port}"
        ));
    }
    let proto = proto.to_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    for i in 0..=(end - start) {
        let key = format!("{}/{proto}", start + i);
        let mut hp = String::new();
        if !host_port.is_empty() {
            hp = (hstart as u32 + i as u32).to_string();
        }
        if start == end && hstart != hend {
            hp = format!("{hp}-{hend}");
        }
        specs.expose(&key);
        specs.bindings.entry(key).or_default().push(Binding {
            host_ip: ip.clone(),
            host_port: hp,
        });
    }
    Ok(())
}

/// Parses one `--expose` value ("80", "8000-8010", "53/udp").
pub fn parse_expose(raw: &str, specs: &mut PortSpecs) -> Result<(), String> {
    let raw = raw.strip_prefix(':').unwrap_or(raw);
    let (proto, port) = split_proto_port(raw);
    let (start, end) = parse_port_range(&port)
        .map_err(|e| format!("invalid range format for --expose: {raw}, error: {e}"))?;
    for p in start..=end {
        specs.expose(&format!("{p}/{proto}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(raw: &str) -> Result<PortSpecs, String> {
        let mut s = PortSpecs::default();
        parse_publish(raw, &mut s)?;
        Ok(s)
    }

    fn b(ip: &str, port: &str) -> Binding {
        Binding {
            host_ip: ip.into(),
            host_port: port.into(),
        }
    }

    #[test]
    fn publish_forms() {
        let s = one("8080:3000").unwrap();
        assert_eq!(s.exposed, ["3000/tcp"]);
        assert_eq!(s.bindings["3000/tcp"], [b("", "8080")]);

        let s = one("3000").unwrap();
        assert_eq!(s.bindings["3000/tcp"], [b("", "")]);

        let s = one("127.0.0.1::53/udp").unwrap();
        assert_eq!(s.bindings["53/udp"], [b("127.0.0.1", "")]);

        let s = one("127.0.0.1:8080:80").unwrap();
        assert_eq!(s.bindings["80/tcp"], [b("127.0.0.1", "8080")]);

        let s = one("[::1]:8080:80").unwrap();
        assert_eq!(s.bindings["80/tcp"], [b("::1", "8080")]);

        let s = one("8000-8010:80-90").unwrap();
        assert_eq!(s.exposed.len(), 11);
        assert_eq!(s.bindings["80/tcp"], [b("", "8000")]);
        assert_eq!(s.bindings["90/tcp"], [b("", "8010")]);

        let s = one("8000-8010:80").unwrap();
        assert_eq!(s.bindings["80/tcp"], [b("", "8000-8010")]);

        let s = one("target=80,published=8080,protocol=udp").unwrap();
        assert_eq!(s.bindings["80/udp"], [b("", "8080")]);

        let s = one("80/TCP").unwrap();
        assert_eq!(s.exposed, ["80/tcp"]);
    }

    #[test]
    fn publish_errors_name_the_value() {
        assert_eq!(one("abc").unwrap_err(), "invalid containerPort: abc");
        assert_eq!(one("8080:abc").unwrap_err(), "invalid containerPort: abc");
        assert_eq!(one("x:80").unwrap_err(), "invalid hostPort: x");
        assert_eq!(one("8080:").unwrap_err(), "no port specified: 8080:<empty>");
        assert_eq!(one("1.2.3:80:80").unwrap_err(), "invalid IP address: 1.2.3");
        assert_eq!(one("80/foo").unwrap_err(), "invalid proto: foo");
        assert_eq!(one("99999").unwrap_err(), "invalid containerPort: 99999");
        assert_eq!(
            one("8000-8001:80-90").unwrap_err(),
            "invalid ranges specified for container and host Ports: 80-90 and 8000-8001"
        );
        assert_eq!(one("90-80").unwrap_err(), "invalid containerPort: 90-80");
    }

    #[test]
    fn expose_forms() {
        let mut s = PortSpecs::default();
        parse_expose("3000", &mut s).unwrap();
        parse_expose("5000-5001/udp", &mut s).unwrap();
        assert_eq!(s.exposed, ["3000/tcp", "5000/udp", "5001/udp"]);
        assert!(s.bindings.is_empty());
        assert!(parse_expose("x", &mut s).is_err());
        assert_eq!(
            s.exposed_json(),
            serde_json::json!({"3000/tcp": {}, "5000/udp": {}, "5001/udp": {}})
        );
    }
}
