//! JSON helpers that reproduce what docker's Go code prints.
//!
//! * [`parse`] turns daemon JSON into a template [`Value`], keeping key order
//!   and guessing the Go type of `null`s and objects from their field names.
//! * [`marshal`] is the template `json` function: Go's `json.Encoder` with
//!   `SetEscapeHTML(false)`, compact, maps sorted by key, structs in order.
//! * [`indent`] is Go's `json.Indent(dst, src, "", "    ")` on raw daemon bytes,
//!   which is how `docker inspect` prints objects.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use super::template::value::{ElemHint, List, Map, MapKind, Value};

/// Fields that are Go slices in the Docker API types: `null` prints `[]`.
const LIST_FIELDS: &[&str] = &[
    "Aliases",
    "Links",
    "DNSNames",
    "Cmd",
    "Entrypoint",
    "Env",
    "Args",
    "Binds",
    "Dns",
    "DnsOptions",
    "DnsSearch",
    "ExtraHosts",
    "CapAdd",
    "CapDrop",
    "GroupAdd",
    "SecurityOpt",
    "Mounts",
    "RepoTags",
    "RepoDigests",
    "Layers",
    "OnBuild",
    "Shell",
    "Devices",
    "DeviceCgroupRules",
    "DeviceRequests",
    "Ulimits",
    "MaskedPaths",
    "ReadonlyPaths",
    "VolumesFrom",
    "Warnings",
    "LinkLocalIPs",
    "Peers",
    "Log",
    "BlkioWeightDevice",
    "BlkioDeviceReadBps",
    "BlkioDeviceWriteBps",
    "BlkioDeviceReadIOps",
    "BlkioDeviceWriteIOps",
];

/// Fields that are Go maps of strings.
const STRING_MAP_FIELDS: &[&str] = &[
    "Labels",
    "Options",
    "DriverOpts",
    "Annotations",
    "Sysctls",
    "StorageOpt",
    "Tmpfs",
    "Data",
    "AuxiliaryAddresses",
];

/// Fields that are Go maps of other things.
const MAP_FIELDS: &[&str] = &[
    "Ports",
    "Networks",
    "Containers",
    "ExposedPorts",
    "Volumes",
    "PortBindings",
    "Services",
];

#[derive(Clone, Copy)]
enum Shape {
    Pointer,
    Slice,
    Map(ElemHint),
}

fn shape(parent: Option<&str>, key: Option<&str>) -> Shape {
    let Some(key) = key else {
        return Shape::Pointer;
    };
    match (parent, key) {
        (Some("IPAM"), "Config") => return Shape::Slice,
        // PortMap values are []PortBinding.
        (Some("Ports"), _) => return Shape::Slice,
        (Some("LogConfig"), "Config") => return Shape::Map(ElemHint::String),
        _ => {}
    }
    if LIST_FIELDS.contains(&key) {
        Shape::Slice
    } else if STRING_MAP_FIELDS.contains(&key) {
        Shape::Map(ElemHint::String)
    } else if MAP_FIELDS.contains(&key) {
        Shape::Map(ElemHint::Unknown)
    } else {
        Shape::Pointer
    }
}

struct Seed<'a> {
    parent: Option<&'a str>,
    key: Option<&'a str>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Uint(v), Value::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(match shape(self.parent, self.key) {
            Shape::Pointer => Value::Nil,
            Shape::Slice => Value::List(List {
                items: vec![],
                nil: true,
            }),
            Shape::Map(elem) => Value::Map(Map {
                entries: vec![],
                kind: MapKind::Map,
                nil: true,
                elem,
                escape_html: false,
                on_missing: Default::default(),
            }),
        })
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(Seed {
            parent: self.key,
            key: None,
        })? {
            items.push(v);
        }
        Ok(Value::List(List { items, nil: false }))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let (kind, elem) = match shape(self.parent, self.key) {
            Shape::Map(elem) => (MapKind::Map, elem),
            _ => (MapKind::Struct, ElemHint::Unknown),
        };
        let mut entries = Vec::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(Seed {
                parent: self.key,
                key: Some(&k),
            })?;
            entries.push((k, v));
        }
        Ok(Value::Map(Map {
            entries,
            kind,
            nil: false,
            elem,
            escape_html: false,
            on_missing: Default::default(),
        }))
    }
}

/// Parses daemon JSON into a template value (see the module docs).
pub fn parse(text: &str) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    let v = Seed {
        parent: None,
        key: None,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// Converts an already parsed `serde_json::Value` (key order as serde_json keeps it).
pub fn from_serde(v: &serde_json::Value) -> Value {
    // Round-trip through text so the same shape rules apply.
    parse(&v.to_string()).unwrap_or(Value::Nil)
}

/// Marshals a value like Go's `json.Encoder` with HTML escaping off (no trailing newline).
pub fn marshal(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, &mut out, false);
    out
}

fn write_json(v: &Value, out: &mut String, html: bool) {
    match v {
        Value::NoValue | Value::Nil | Value::Func(_) => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Uint(u) => out.push_str(&u.to_string()),
        Value::Float(x) => out.push_str(&go_json_float(*x)),
        Value::Str(s) => write_json_string(s, out, html),
        Value::List(l) => {
            if l.nil {
                out.push_str("null");
                return;
            }
            out.push('[');
            for (i, item) in l.items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out, html);
            }
            out.push(']');
        }
        Value::Map(m) => {
            if m.nil {
                out.push_str("null");
                return;
            }
            let html = html || m.escape_html;
            let entries: Vec<&(String, Value)> = match m.kind {
                MapKind::Map => m.sorted(),
                MapKind::Struct => m.entries.iter().collect(),
            };
            out.push('{');
            let mut first = true;
            for (k, v) in entries {
                if matches!(v, Value::Func(_)) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                write_json_string(k, out, html);
                out.push(':');
                write_json(v, out, html);
            }
            out.push('}');
        }
    }
}

fn write_json_string(s: &str, out: &mut String, html: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '<' if html => out.push_str("\\u003c"),
            '>' if html => out.push_str("\\u003e"),
            '&' if html => out.push_str("\\u0026"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn go_json_float(x: f64) -> String {
    if !x.is_finite() {
        return "null".into();
    }
    let abs = x.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let s = format!("{x:e}");
        match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        }
    } else {
        format!("{x}")
    }
}

/// Re-indents raw JSON text like Go's `json.Indent(dst, src, "", indent)`:
/// insignificant whitespace is dropped, key order and string escapes are kept,
/// and empty objects and arrays stay `{}` / `[]`.
pub fn indent(src: &str, indent: &str) -> String {
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let mut need_indent = false;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str(indent);
        }
    };
    for c in src.chars() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        if matches!(c, ' ' | '\t' | '\n' | '\r') {
            continue;
        }
        if need_indent && c != '}' && c != ']' {
            need_indent = false;
            depth += 1;
            newline(&mut out, depth);
        }
        match c {
            '{' | '[' => {
                need_indent = true;
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => {
                out.push(':');
                out.push(' ');
            }
            '}' | ']' => {
                if need_indent {
                    need_indent = false;
                } else {
                    depth = depth.saturating_sub(1);
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            '"' => {
                in_str = true;
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Removes insignificant whitespace like Go's `json.Compact`.
pub fn compact(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut in_str = false;
    let mut escaped = false;
    for c in src.chars() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            ' ' | '\t' | '\n' | '\r' => {}
            '"' => {
                in_str = true;
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_keeps_order_and_shapes() {
        let v = parse(
            r#"{"Name":"/web","Config":{"Labels":null,"Env":null,"Cmd":["sh"]},
                "NetworkSettings":{"Ports":{"3000/tcp":null},"Networks":{"b":{"Aliases":null},"a":{}}},
                "State":null}"#,
        )
        .unwrap();
        let Value::Map(m) = &v else { panic!() };
        assert_eq!(m.kind, MapKind::Struct);
        let keys: Vec<&str> = m.entries.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["Name", "Config", "NetworkSettings", "State"]);
        let Some(Value::Map(cfg)) = m.get("Config") else {
            panic!()
        };
        assert_eq!(cfg.get("Labels").unwrap().to_go_string(), "map[]");
        assert_eq!(cfg.get("Env").unwrap().to_go_string(), "[]");
        assert_eq!(m.get("State").unwrap().to_go_string(), "<nil>");
        let Some(Value::Map(ns)) = m.get("NetworkSettings") else {
            panic!()
        };
        let Some(Value::Map(nets)) = ns.get("Networks") else {
            panic!()
        };
        assert_eq!(nets.kind, MapKind::Map);
    }

    #[test]
    fn marshal_like_go() {
        let v = parse(r#"{"3000/tcp":null,"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"}]}"#)
            .unwrap();
        assert_eq!(
            marshal(&v),
            r#"{"3000/tcp":null,"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"}]}"#
        );
        assert_eq!(marshal(&Value::from("a<b>&\"c\"\n")), r#""a<b>&\"c\"\n""#);
        assert_eq!(marshal(&Value::Float(1e21)), "1e+21");
        assert_eq!(marshal(&Value::Float(0.5)), "0.5");
        // Go maps marshal with sorted keys.
        let m = Value::Map(Map::go_map(vec![
            ("b".into(), Value::Int(1)),
            ("a".into(), Value::Int(2)),
        ]));
        assert_eq!(marshal(&m), r#"{"a":2,"b":1}"#);
        let row = Value::Map(Map::marshaler(vec![(
            "Ports".into(),
            Value::from("a->b <x> &"),
        )]));
        assert_eq!(
            marshal(&row),
            r#"{"Ports":"a-\u003eb \u003cx\u003e \u0026"}"#
        );
    }

    #[test]
    fn indent_like_go() {
        let raw =
            r#"[{"Id":"abc","Args":[],"Labels":{},"Cfg":{"A":1,"B":["x","y, z"]},"S":"a\"{b"}]"#;
        let want = "[\n    {\n        \"Id\": \"abc\",\n        \"Args\": [],\n        \"Labels\": {},\n        \"Cfg\": {\n            \"A\": 1,\n            \"B\": [\n                \"x\",\n                \"y, z\"\n            ]\n        },\n        \"S\": \"a\\\"{b\"\n    }\n]";
        assert_eq!(indent(raw, "    "), want);
        assert_eq!(indent("[]", "    "), "[]");
        assert_eq!(indent("{ \"a\" : 1 }\n", "    "), "{\n    \"a\": 1\n}");
        assert_eq!(compact("{ \"a b\" : [1, 2] }\n"), "{\"a b\":[1,2]}");
    }
}
