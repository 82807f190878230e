//! Template functions: Go's builtins plus docker's (`templates/templates.go`).

use std::collections::HashMap;

use super::value::{go_quote, List, Value};
use crate::format::json;

/// A template function.
pub type Func = fn(&[Value]) -> Result<Value, String>;

/// Functions by name.
pub type FuncMap = HashMap<&'static str, Func>;

/// Go's builtins and docker's functions (`json`, `split`, `join`, `title`,
/// `lower`, `upper`, `pad`, `truncate`).
pub fn docker_funcs() -> FuncMap {
    let mut m = builtins();
    m.insert("json", f_json);
    m.insert("split", f_split);
    m.insert("join", f_join);
    m.insert("title", f_title);
    m.insert("lower", f_lower);
    m.insert("upper", f_upper);
    m.insert("pad", f_pad);
    m.insert("truncate", f_truncate);
    m
}

/// docker's `HeaderFunctions`: the same names, but leaving table headers intact
/// (`pad` keeps its real meaning so headers stay aligned with their columns).
pub fn header_funcs() -> FuncMap {
    let mut m = docker_funcs();
    m.insert("json", first_arg);
    m.insert("split", first_arg);
    m.insert("join", first_arg);
    m.insert("title", first_arg);
    m.insert("lower", first_arg);
    m.insert("upper", first_arg);
    m.insert("truncate", first_arg);
    m
}

fn builtins() -> FuncMap {
    let mut m: FuncMap = HashMap::new();
    m.insert("and", f_and);
    m.insert("or", f_or);
    m.insert("not", f_not);
    m.insert("len", f_len);
    m.insert("index", f_index);
    m.insert("slice", f_slice);
    m.insert("print", f_print);
    m.insert("println", f_println);
    m.insert("printf", f_printf);
    m.insert("eq", f_eq);
    m.insert("ne", f_ne);
    m.insert("lt", f_lt);
    m.insert("le", f_le);
    m.insert("gt", f_gt);
    m.insert("ge", f_ge);
    m.insert("html", f_html);
    m.insert("urlquery", f_urlquery);
    m.insert("js", f_js);
    m
}

fn want(args: &[Value], n: usize, name: &str) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn string_arg(v: &Value) -> Result<&str, String> {
    match v {
        Value::Str(s) => Ok(s),
        Value::NoValue => Err("invalid value; expected string".into()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
    }
}

fn int_arg(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Uint(u) => i64::try_from(*u).map_err(|_| "integer overflow".to_string()),
        Value::Float(f) if f.fract() == 0.0 => Ok(*f as i64),
        other => Err(format!(
            "wrong type for value; expected int; got {}",
            other.type_name()
        )),
    }
}

fn first_arg(args: &[Value]) -> Result<Value, String> {
    Ok(args.first().cloned().unwrap_or(Value::NoValue))
}

fn f_json(args: &[Value]) -> Result<Value, String> {
    want(args, 1, "json")?;
    Ok(Value::Str(json::marshal(&args[0])))
}

fn f_split(args: &[Value]) -> Result<Value, String> {
    want(args, 2, "split")?;
    let s = string_arg(&args[0])?;
    let sep = string_arg(&args[1])?;
    let parts: Vec<Value> = if sep.is_empty() {
        s.chars().map(|c| Value::Str(c.to_string())).collect()
    } else {
        s.split(sep).map(|p| Value::Str(p.to_string())).collect()
    };
    Ok(Value::from(parts))
}

fn f_join(args: &[Value]) -> Result<Value, String> {
    want(args, 2, "join")?;
    let sep = string_arg(&args[1])?;
    match &args[0] {
        Value::NoValue | Value::Nil => Ok(Value::Str(String::new())),
        Value::List(l) => Ok(Value::Str(
            l.items
                .iter()
                .map(Value::to_go_string)
                .collect::<Vec<_>>()
                .join(sep),
        )),
        Value::Map(m) => {
            let mut vals: Vec<String> = m.entries.iter().map(|(_, v)| v.to_go_string()).collect();
            vals.sort();
            Ok(Value::Str(vals.join(sep)))
        }
        other => Err(format!("expected slice, got {}", other.type_name())),
    }
}

/// Go's deprecated `strings.Title`: upper-cases the first letter of each word.
pub fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut prev_sep = true;
    for c in s.chars() {
        if prev_sep && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_' || c == '\'');
    }
    out
}

fn f_title(args: &[Value]) -> Result<Value, String> {
    want(args, 1, "title")?;
    Ok(Value::Str(title(string_arg(&args[0])?)))
}

fn f_lower(args: &[Value]) -> Result<Value, String> {
    want(args, 1, "lower")?;
    Ok(Value::Str(string_arg(&args[0])?.to_lowercase()))
}

fn f_upper(args: &[Value]) -> Result<Value, String> {
    want(args, 1, "upper")?;
    Ok(Value::Str(string_arg(&args[0])?.to_uppercase()))
}

fn f_pad(args: &[Value]) -> Result<Value, String> {
    want(args, 3, "pad")?;
    let s = string_arg(&args[0])?;
    if s.is_empty() {
        return Ok(Value::Str(String::new()));
    }
    let pre = int_arg(&args[1])?.max(0) as usize;
    let post = int_arg(&args[2])?.max(0) as usize;
    Ok(Value::Str(format!(
        "{}{s}{}",
        " ".repeat(pre),
        " ".repeat(post)
    )))
}

fn f_truncate(args: &[Value]) -> Result<Value, String> {
    want(args, 2, "truncate")?;
    let s = string_arg(&args[0])?;
    let n = int_arg(&args[1])?.max(0) as usize;
    if s.len() < n {
        return Ok(Value::Str(s.to_string()));
    }
    let mut cut = n;
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    Ok(Value::Str(s[..cut].to_string()))
}

fn f_and(args: &[Value]) -> Result<Value, String> {
    for a in args {
        if !a.is_true() {
            return Ok(a.clone());
        }
    }
    Ok(args.last().cloned().unwrap_or(Value::NoValue))
}

fn f_or(args: &[Value]) -> Result<Value, String> {
    for a in args {
        if a.is_true() {
            return Ok(a.clone());
        }
    }
    Ok(args.last().cloned().unwrap_or(Value::NoValue))
}

fn f_not(args: &[Value]) -> Result<Value, String> {
    want(args, 1, "not")?;
    Ok(Value::Bool(!args[0].is_true()))
}

fn f_len(args: &[Value]) -> Result<Value, String> {
    want(args, 1, "len")?;
    match &args[0] {
        Value::Str(s) => Ok(Value::Int(s.len() as i64)),
        Value::List(l) => Ok(Value::Int(l.items.len() as i64)),
        Value::Map(m) => Ok(Value::Int(m.entries.len() as i64)),
        other => Err(format!("len of type {}", other.type_name())),
    }
}

fn f_index(args: &[Value]) -> Result<Value, String> {
    let Some((first, keys)) = args.split_first() else {
        return Err("wrong number of args for index: want at least 1 got 0".into());
    };
    let mut item = first.clone();
    for k in keys {
        item = match (&item, k) {
            (Value::List(l), k) => {
                let i = int_arg(k)
                    .map_err(|_| "cannot index slice/array with non-integer".to_string())?;
                if i < 0 || i as usize >= l.items.len() {
                    return Err(format!("index out of range: {i}"));
                }
                l.items[i as usize].clone()
            }
            (Value::Str(s), k) => {
                let i =
                    int_arg(k).map_err(|_| "cannot index string with non-integer".to_string())?;
                match s.as_bytes().get(i.max(0) as usize) {
                    Some(b) if i >= 0 => Value::Int(*b as i64),
                    _ => return Err(format!("index out of range: {i}")),
                }
            }
            (Value::Map(m), Value::Str(key)) => {
                m.get(key).cloned().unwrap_or_else(|| m.zero_elem())
            }
            (Value::Map(_), other) => {
                return Err(format!(
                    "value has type {}; should be string",
                    other.type_name()
                ))
            }
            (Value::NoValue | Value::Nil, _) => return Err("index of untyped nil".into()),
            (other, _) => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

fn f_slice(args: &[Value]) -> Result<Value, String> {
    let Some((first, idx)) = args.split_first() else {
        return Err("wrong number of args for slice: want at least 1 got 0".into());
    };
    let idx: Vec<i64> = idx.iter().map(int_arg).collect::<Result<_, _>>()?;
    let len = match first {
        Value::Str(s) => s.len(),
        Value::List(l) => l.items.len(),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    } as i64;
    let lo = idx.first().copied().unwrap_or(0);
    let hi = idx.get(1).copied().unwrap_or(len);
    if idx.len() > 2 || lo < 0 || hi < lo || hi > len {
        return Err(format!("index out of range: {lo}:{hi}"));
    }
    match first {
        Value::Str(s) => s
            .get(lo as usize..hi as usize)
            .map(|x| Value::Str(x.to_string()))
            .ok_or_else(|| "invalid slice".to_string()),
        Value::List(l) => Ok(Value::List(List {
            items: l.items[lo as usize..hi as usize].to_vec(),
            nil: false,
        })),
        _ => Err("can't slice".into()),
    }
}

/// Go's `fmt.Sprint`: spaces between operands when neither is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !matches!(a, Value::Str(_)) && !matches!(args[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&arg_string(a));
    }
    out
}

fn arg_string(v: &Value) -> String {
    match v {
        Value::NoValue => "<nil>".into(),
        v => v.to_go_string(),
    }
}

fn f_print(args: &[Value]) -> Result<Value, String> {
    Ok(Value::Str(sprint(args)))
}

fn f_println(args: &[Value]) -> Result<Value, String> {
    let mut s = args.iter().map(arg_string).collect::<Vec<_>>().join(" ");
    s.push('\n');
    Ok(Value::Str(s))
}

fn f_printf(args: &[Value]) -> Result<Value, String> {
    let Some((fmt, rest)) = args.split_first() else {
        return Err("wrong number of args for printf: want at least 1 got 0".into());
    };
    Ok(Value::Str(sprintf(string_arg(fmt)?, rest)))
}

/// A subset of Go's `fmt.Sprintf`: verbs `v s d q t x X f e g c %` with
/// flags `-+ 0#`, width and precision.
pub fn sprintf(fmt: &str, args: &[Value]) -> String {
    let chars: Vec<char> = fmt.chars().collect();
    let mut out = String::new();
    let mut argi = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut minus, mut plus, mut zero, mut space) = (false, false, false, false);
        while i < chars.len() {
            match chars[i] {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                '#' => {}
                _ => break,
            }
            i += 1;
        }
        let mut width = None;
        let mut n = 0usize;
        let mut has = false;
        while i < chars.len() && chars[i].is_ascii_digit() {
            n = n * 10 + (chars[i] as usize - '0' as usize);
            has = true;
            i += 1;
        }
        if has {
            width = Some(n);
        }
        let mut prec = None;
        if i < chars.len() && chars[i] == '.' {
            i += 1;
            let mut p = 0usize;
            while i < chars.len() && chars[i].is_ascii_digit() {
                p = p * 10 + (chars[i] as usize - '0' as usize);
                i += 1;
            }
            prec = Some(p);
        }
        let Some(&verb) = chars.get(i) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        let mut s = match (verb, arg) {
            ('d', v) if v.as_i64().is_some() => {
                let n = v.as_i64().unwrap_or_default();
                if plus && n >= 0 {
                    format!("+{n}")
                } else if space && n >= 0 {
                    format!(" {n}")
                } else {
                    n.to_string()
                }
            }
            ('d', Value::Uint(u)) => u.to_string(),
            ('s' | 'v', Value::Str(s)) => match prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.clone(),
            },
            ('v' | 's', v) => arg_string(v),
            ('q', Value::Str(s)) => go_quote(s),
            ('q', Value::Int(n)) => {
                format!("'{}'", char::from_u32(*n as u32).unwrap_or('\u{fffd}'))
            }
            ('t', Value::Bool(b)) => b.to_string(),
            ('x', Value::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('X', Value::Str(s)) => s.bytes().map(|b| format!("{b:02X}")).collect(),
            ('x', v) if v.as_i64().is_some() => format!("{:x}", v.as_i64().unwrap_or_default()),
            ('X', v) if v.as_i64().is_some() => format!("{:X}", v.as_i64().unwrap_or_default()),
            ('c', v) if v.as_i64().is_some() => {
                char::from_u32(v.as_i64().unwrap_or_default() as u32)
                    .unwrap_or('\u{fffd}')
                    .to_string()
            }
            ('f' | 'F' | 'e' | 'g', v) => {
                let x = match v {
                    Value::Float(x) => Some(*x),
                    Value::Int(i) => Some(*i as f64),
                    _ => None,
                };
                match x {
                    Some(x) => match verb {
                        'e' => format!("{:.*e}", prec.unwrap_or(6), x),
                        'g' => super::value::go_float_v(x),
                        _ => format!("{:.*}", prec.unwrap_or(6), x),
                    },
                    None => format!("%!{verb}({}={})", v.type_name(), arg_string(v)),
                }
            }
            (verb, v) => format!("%!{verb}({}={})", v.type_name(), arg_string(v)),
        };
        if let Some(w) = width {
            let len = s.chars().count();
            if len < w {
                let pad = w - len;
                if minus {
                    s.push_str(&" ".repeat(pad));
                } else if zero && matches!(verb, 'd' | 'f' | 'x' | 'X' | 'e') {
                    let (sign, digits) = if s.starts_with(['-', '+']) {
                        s.split_at(1)
                    } else {
                        ("", s.as_str())
                    };
                    s = format!("{sign}{}{digits}", "0".repeat(pad));
                } else {
                    s = format!("{}{s}", " ".repeat(pad));
                }
            }
        }
        out.push_str(&s);
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[argi..]
            .iter()
            .map(|a| format!("{}={}", a.type_name(), arg_string(a)))
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn compare(a: &Value, b: &Value) -> Result<Option<std::cmp::Ordering>, String> {
    use Value::*;
    Ok(match (a, b) {
        (Int(_) | Uint(_), Int(_) | Uint(_)) => {
            let x = match a {
                Int(i) => *i as i128,
                Uint(u) => *u as i128,
                _ => 0,
            };
            let y = match b {
                Int(i) => *i as i128,
                Uint(u) => *u as i128,
                _ => 0,
            };
            Some(x.cmp(&y))
        }
        (Float(x), Float(y)) => x.partial_cmp(y),
        (Float(x), Int(y)) => x.partial_cmp(&(*y as f64)),
        (Int(x), Float(y)) => (*x as f64).partial_cmp(y),
        (Str(x), Str(y)) => Some(x.cmp(y)),
        (Bool(x), Bool(y)) => {
            if x == y {
                Some(std::cmp::Ordering::Equal)
            } else {
                None
            }
        }
        (NoValue | Nil, NoValue | Nil) => Some(std::cmp::Ordering::Equal),
        (NoValue | Nil, _) | (_, NoValue | Nil) => None,
        (List(_) | Map(_) | Func(_), _) | (_, List(_) | Map(_) | Func(_)) => {
            return Err("invalid type for comparison".into())
        }
        _ => return Err("incompatible types for comparison".into()),
    })
}

fn f_eq(args: &[Value]) -> Result<Value, String> {
    let Some((a, rest)) = args.split_first() else {
        return Err("missing argument for comparison".into());
    };
    if rest.is_empty() {
        return Err("missing argument for comparison".into());
    }
    for b in rest {
        if compare(a, b)? == Some(std::cmp::Ordering::Equal) {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn f_ne(args: &[Value]) -> Result<Value, String> {
    want(args, 2, "ne")?;
    Ok(Value::Bool(
        compare(&args[0], &args[1])? != Some(std::cmp::Ordering::Equal),
    ))
}

fn ordered(args: &[Value], name: &str) -> Result<std::cmp::Ordering, String> {
    want(args, 2, name)?;
    if matches!(args[0], Value::Bool(_)) {
        return Err("invalid type for comparison".into());
    }
    compare(&args[0], &args[1])?.ok_or_else(|| "incompatible types for comparison".to_string())
}

fn f_lt(args: &[Value]) -> Result<Value, String> {
    Ok(Value::Bool(ordered(args, "lt")?.is_lt()))
}
fn f_le(args: &[Value]) -> Result<Value, String> {
    Ok(Value::Bool(ordered(args, "le")?.is_le()))
}
fn f_gt(args: &[Value]) -> Result<Value, String> {
    Ok(Value::Bool(ordered(args, "gt")?.is_gt()))
}
fn f_ge(args: &[Value]) -> Result<Value, String> {
    Ok(Value::Bool(ordered(args, "ge")?.is_ge()))
}

fn f_html(args: &[Value]) -> Result<Value, String> {
    let s = sprint(args);
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '\0' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    Ok(Value::Str(out))
}

fn f_js(args: &[Value]) -> Result<Value, String> {
    let s = sprint(args);
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    Ok(Value::Str(out))
}

fn f_urlquery(args: &[Value]) -> Result<Value, String> {
    let s = sprint(args);
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    Ok(Value::Str(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printf_subset() {
        assert_eq!(
            sprintf(
                "%s=%d %q %5s|%-4s|%03d",
                &[
                    Value::from("a"),
                    Value::Int(7),
                    Value::from("x y"),
                    Value::from("ab"),
                    Value::from("c"),
                    Value::Int(5)
                ]
            ),
            "a=7 \"x y\"    ab|c   |005"
        );
        assert_eq!(sprintf("%s %s", &[Value::from("a")]), "a %!s(MISSING)");
        assert_eq!(sprintf("%.2f", &[Value::Float(1.005)]), "1.00");
    }

    #[test]
    fn title_like_go() {
        assert_eq!(title("hello world-foo_bar"), "Hello World-Foo_bar");
    }

    #[test]
    fn sprint_spacing() {
        assert_eq!(
            sprint(&[
                Value::Int(1),
                Value::Int(2),
                Value::from("a"),
                Value::Int(3)
            ]),
            "1 2a3"
        );
    }
}
