//! The data model templates run against.
//!
//! Docker executes its Go templates over typed Go structs; the CLI only has
//! the daemon's JSON. [`Value`] keeps enough of the Go shape to print the same
//! text: JSON objects remember their key order and whether they stand for a Go
//! struct (printed `{a b}`, fields in order) or a Go map (printed `map[k:v]`,
//! keys sorted), and JSON `null`s remember whether the Go field was a slice
//! (printed `[]`), a map (`map[]`) or a pointer (`<nil>`).

use std::fmt;
use std::rc::Rc;

/// A function stored in the data (a Go method such as `.Label "key"` on `ps` rows).
pub type NativeFn = Rc<dyn Fn(&[Value]) -> Result<Value, String>>;

/// One template value.
#[derive(Clone)]
pub enum Value {
    /// Go's invalid `reflect.Value` (a missing map key): prints `<no value>`.
    NoValue,
    /// A nil pointer or interface: prints `<nil>`.
    Nil,
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer too large for `i64`.
    Uint(u64),
    /// A floating point number.
    Float(f64),
    /// A string.
    Str(String),
    /// A Go slice.
    List(List),
    /// A Go struct or map.
    Map(Map),
    /// A callable method.
    Func(NativeFn),
}

/// A Go slice; `nil` marks a nil slice (printed `[]`, marshalled `null`).
#[derive(Clone, Debug, Default)]
pub struct List {
    /// The elements.
    pub items: Vec<Value>,
    /// Whether the slice is nil rather than empty.
    pub nil: bool,
}

/// Whether an object stands for a Go struct or a Go map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// Printed `{v1 v2}` in field order; marshalled in field order.
    Struct,
    /// Printed `map[k:v]` sorted by key; marshalled with sorted keys.
    Map,
}

/// What a Go map holds, for `index` on a missing key (zero value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemHint {
    /// Unknown element type: a missing key gives `<nil>` unless the present values are strings.
    Unknown,
    /// `map[string]string`: a missing key gives `""`.
    String,
}

/// A JSON object with its key order.
#[derive(Clone, Debug)]
pub struct Map {
    /// The entries in their original order.
    pub entries: Vec<(String, Value)>,
    /// Struct or map.
    pub kind: MapKind,
    /// Whether the map is nil (only meaningful for [`MapKind::Map`]).
    pub nil: bool,
    /// Element type hint.
    pub elem: ElemHint,
    /// Marshal with Go's HTML escaping (`<` → `\u003c`), as types with a
    /// `MarshalJSON` built on `json.Marshal` do (docker's list contexts).
    pub escape_html: bool,
    /// What a field the object lacks gives.
    pub on_missing: OnMissing,
}

/// What `.Field` gives on an object without that field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OnMissing {
    /// `<no value>` (a Go map's missing key).
    #[default]
    NoValue,
    /// An error naming the Go type the object stands for (docker's list rows, e.g.
    /// `can't evaluate field Bogus in type *formatter.ContainerContext`).
    NoField(String),
    /// docker inspect's raw fallback with `missingkey=error`: an error (`map has no
    /// entry for key "Bogus"`), except for the listed fields, which the Go type has but
    /// the daemon's JSON may leave out (they give `<no value>`).
    NoEntry(Vec<String>),
}

impl Map {
    /// A Go struct with the given fields in order.
    pub fn structure(entries: Vec<(String, Value)>) -> Self {
        Map {
            entries,
            kind: MapKind::Struct,
            nil: false,
            elem: ElemHint::Unknown,
            escape_html: false,
            on_missing: OnMissing::NoValue,
        }
    }

    /// A Go map with the given entries.
    pub fn go_map(entries: Vec<(String, Value)>) -> Self {
        Map {
            entries,
            kind: MapKind::Map,
            nil: false,
            elem: ElemHint::Unknown,
            escape_html: false,
            on_missing: OnMissing::NoValue,
        }
    }

    /// A Go map whose JSON form escapes HTML characters (docker's list rows).
    pub fn marshaler(entries: Vec<(String, Value)>) -> Self {
        Map {
            escape_html: true,
            ..Map::go_map(entries)
        }
    }

    /// A row of one of docker's list formatters: a [`Map::marshaler`] standing for the
    /// Go type `go_type` (`*formatter.ContainerContext`), whose missing fields are errors.
    pub fn context(go_type: &str, entries: Vec<(String, Value)>) -> Self {
        Map {
            on_missing: OnMissing::NoField(go_type.to_string()),
            ..Map::marshaler(entries)
        }
    }

    /// Looks a key up.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The entries sorted by key, as Go ranges over and prints maps.
    pub fn sorted(&self) -> Vec<&(String, Value)> {
        let mut v: Vec<&(String, Value)> = self.entries.iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The zero value Go's `index` returns for a missing key.
    pub fn zero_elem(&self) -> Value {
        if self.elem == ElemHint::String
            || (!self.entries.is_empty()
                && self.entries.iter().all(|(_, v)| matches!(v, Value::Str(_))))
        {
            Value::Str(String::new())
        } else {
            Value::Nil
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::NoValue => write!(f, "NoValue"),
            Value::Nil => write!(f, "Nil"),
            Value::Bool(b) => write!(f, "Bool({b})"),
            Value::Int(i) => write!(f, "Int({i})"),
            Value::Uint(u) => write!(f, "Uint({u})"),
            Value::Float(x) => write!(f, "Float({x})"),
            Value::Str(s) => write!(f, "Str({s:?})"),
            Value::List(l) => f.debug_list().entries(&l.items).finish(),
            Value::Map(m) => f
                .debug_map()
                .entries(m.entries.iter().map(|(k, v)| (k, v)))
                .finish(),
            Value::Func(_) => write!(f, "Func"),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<Vec<Value>> for Value {
    fn from(items: Vec<Value>) -> Self {
        Value::List(List { items, nil: false })
    }
}

impl Value {
    /// A Go type name for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::NoValue => "<invalid>",
            Value::Nil => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Uint(_) => "uint64",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "[]interface {}",
            Value::Map(m) if m.kind == MapKind::Map => "map[string]interface {}",
            Value::Map(_) => "struct",
            Value::Func(_) => "func",
        }
    }

    /// Go's template truth: false for zero values, empty collections and nil.
    pub fn is_true(&self) -> bool {
        match self {
            Value::NoValue | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Uint(u) => *u != 0,
            Value::Float(x) => *x != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.items.is_empty(),
            Value::Map(m) => m.kind == MapKind::Struct || !m.entries.is_empty(),
            Value::Func(_) => true,
        }
    }

    /// The value as Go's `fmt.Sprint` prints it (`%v`).
    pub fn to_go_string(&self) -> String {
        let mut s = String::new();
        self.write_go(&mut s, true);
        s
    }

    fn write_go(&self, out: &mut String, top: bool) {
        match self {
            Value::NoValue => out.push_str(if top { "<no value>" } else { "<nil>" }),
            Value::Nil => out.push_str("<nil>"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Uint(u) => out.push_str(&u.to_string()),
            Value::Float(x) => out.push_str(&go_float_v(*x)),
            Value::Str(s) => out.push_str(s),
            Value::List(l) => {
                out.push('[');
                for (i, item) in l.items.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    item.write_go(out, false);
                }
                out.push(']');
            }
            Value::Map(m) => match m.kind {
                MapKind::Map => {
                    out.push_str("map[");
                    for (i, (k, v)) in m.sorted().into_iter().enumerate() {
                        if i > 0 {
                            out.push(' ');
                        }
                        out.push_str(k);
                        out.push(':');
                        v.write_go(out, false);
                    }
                    out.push(']');
                }
                MapKind::Struct => {
                    out.push('{');
                    for (i, (_, v)) in m.entries.iter().enumerate() {
                        if i > 0 {
                            out.push(' ');
                        }
                        v.write_go(out, false);
                    }
                    out.push('}');
                }
            },
            Value::Func(_) => out.push_str("<func>"),
        }
    }

    /// The string inside a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an integer when it is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Uint(u) => i64::try_from(*u).ok(),
            _ => None,
        }
    }
}

/// Formats a float the way Go's `%v` does (`strconv.FormatFloat(x, 'g', -1, 64)`:
/// shortest digits, exponent form below 1e-4 and from 1e6 on).
pub fn go_float_v(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Shortest round-trip digits and exponent.
    let sci = format!("{x:e}");
    let (mant, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => (sci.clone(), 0),
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        let e = exp.abs();
        if e < 10 {
            format!("{mant}e{sign}0{e}")
        } else {
            format!("{mant}e{sign}{e}")
        }
    } else {
        format!("{x}")
    }
}

/// Go's `strconv.Quote`: a double-quoted string with Go escapes; printable
/// Unicode is kept as is.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let n = c as u32;
                if n < 0x10000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_printing_of_collections() {
        let l = Value::from(vec![Value::from("a"), Value::from("b")]);
        assert_eq!(l.to_go_string(), "[a b]");
        let nil_list = Value::List(List {
            items: vec![],
            nil: true,
        });
        assert_eq!(nil_list.to_go_string(), "[]");
        let m = Value::Map(Map::go_map(vec![
            ("z".into(), Value::from("1")),
            ("a".into(), Value::Int(2)),
        ]));
        assert_eq!(m.to_go_string(), "map[a:2 z:1]");
        let s = Value::Map(Map::structure(vec![
            ("Status".into(), Value::from("running")),
            ("Running".into(), Value::Bool(true)),
            ("Pid".into(), Value::Int(42)),
        ]));
        assert_eq!(s.to_go_string(), "{running true 42}");
        assert_eq!(Value::NoValue.to_go_string(), "<no value>");
        assert_eq!(Value::Nil.to_go_string(), "<nil>");
    }

    #[test]
    fn go_floats() {
        assert_eq!(go_float_v(1.5), "1.5");
        assert_eq!(go_float_v(1e21), "1e+21");
        assert_eq!(go_float_v(0.5), "0.5");
        assert_eq!(go_float_v(0.00001), "1e-05");
        assert_eq!(go_float_v(123456789.0), "1.23456789e+08");
        assert_eq!(go_float_v(123456.0), "123456");
        assert_eq!(go_float_v(1e6), "1e+06");
    }

    #[test]
    fn go_quoting() {
        assert_eq!(go_quote("sh -c 'echo \"hi\"'"), r#""sh -c 'echo \"hi\"'""#);
        assert_eq!(go_quote("a\tb…"), "\"a\\tb…\"");
    }
}
