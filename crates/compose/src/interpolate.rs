//! `.env` files and `${VAR}` interpolation as Compose does them
//! (compose-go's `template` and `dotenv` packages).

use std::collections::BTreeMap;

use crate::error::{ComposeError, Result};

/// Looks a variable up.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Parses a `.env` / `env_file` text: `KEY=VALUE`, `export KEY=VALUE`, `# comments`,
/// `'single'` (literal) and `"double"` quoted values (`\n`, `\t`, `\"`, `\\` escapes,
/// `${VAR}` expanded from `lookup` and the keys above), unquoted values with
/// ` #` comments and `${VAR}` expansion, and a bare `KEY` (taken from `lookup`, or
/// left out when unset).
pub fn parse_dotenv(text: &str, lookup: Lookup) -> Result<BTreeMap<String, String>> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    let mut lines = text.lines().enumerate().peekable();
    while let Some((no, raw)) = lines.next() {
        let line = raw.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let (key, rest) = match line.find(['=', ':']) {
            Some(i) if line.as_bytes()[i] == b'=' => (line[..i].trim(), Some(&line[i + 1..])),
            _ => (line.trim(), None),
        };
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(ComposeError::Interpolation(format!(
                "line {}: unexpected character in variable name {key:?}",
                no + 1
            )));
        }
        let Some(rest) = rest else {
            if let Some(v) = lookup(key) {
                out.insert(key.to_string(), v);
            }
            continue;
        };
        let rest = rest.trim_start();
        let scope = |name: &str| out.get(name).cloned().or_else(|| lookup(name));
        let value = if let Some(body) = rest.strip_prefix('\'') {
            read_quoted(body, &mut lines, |acc| acc.rfind('\''))
        } else if let Some(body) = rest.strip_prefix('"') {
            let inner = read_quoted(body, &mut lines, closing_quote);
            let unescaped = unescape_double(&inner);
            substitute(&unescaped, &scope)?.0
        } else {
            let v = match rest.find(" #") {
                Some(i) => &rest[..i],
                None => rest,
            };
            substitute(v.trim_end(), &scope)?.0
        };
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

/// Reads a quoted value from `body` (the text after the opening quote) and, while
/// `close` finds no closing quote in what was read, the next `lines`; an
/// unclosed quote takes everything to the end of the text.
fn read_quoted<'a>(
    body: &str,
    lines: &mut impl Iterator<Item = (usize, &'a str)>,
    close: impl Fn(&str) -> Option<usize>,
) -> String {
    let mut acc = body.to_string();
    loop {
        if let Some(end) = close(&acc) {
            acc.truncate(end);
            return acc;
        }
        match lines.next() {
            Some((_, l)) => {
                acc.push('\n');
                acc.push_str(l);
            }
            None => return acc,
        }
    }
}

fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

fn unescape_double(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('$') => out.push_str("$$"),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn is_name_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric()
}

/// Substitutes `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`,
/// `${VAR?err}`, `${VAR:+alt}`, `${VAR+alt}` (defaults may nest) and `$$` (a literal `$`).
/// Returns the text and the names of unset variables that became "".
pub fn substitute(s: &str, lookup: Lookup) -> Result<(String, Vec<String>)> {
    let mut out = String::with_capacity(s.len());
    let mut unset = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '$' {
            out.push(c);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                // find the matching brace
                let mut depth = 0;
                let mut j = i + 1;
                let mut end = None;
                while j < chars.len() {
                    match chars[j] {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(j);
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                let Some(end) = end else {
                    return Err(ComposeError::Interpolation(format!(
                        "invalid interpolation format for {s:?}: missing closing brace; use $$ for a literal $"
                    )));
                };
                let inner: String = chars[i + 2..end].iter().collect();
                out.push_str(&expand_braced(&inner, s, lookup, &mut unset)?);
                i = end + 1;
            }
            Some(&n) if is_name_start(n) => {
                let mut j = i + 1;
                while j < chars.len() && is_name_char(chars[j]) {
                    j += 1;
                }
                let name: String = chars[i + 1..j].iter().collect();
                match lookup(&name) {
                    Some(v) => out.push_str(&v),
                    None => unset.push(name),
                }
                i = j;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
    Ok((out, unset))
}

fn expand_braced(
    inner: &str,
    whole: &str,
    lookup: Lookup,
    unset: &mut Vec<String>,
) -> Result<String> {
    let name_len = inner
        .char_indices()
        .find(|(_, c)| !is_name_char(*c))
        .map(|(i, _)| i)
        .unwrap_or(inner.len());
    let name = &inner[..name_len];
    let op = &inner[name_len..];
    if name.is_empty() || !name.starts_with(is_name_start) {
        return Err(ComposeError::Interpolation(format!(
            "invalid interpolation format for {whole:?}: ${{{inner}}} does not start with a variable name; use $$ for a literal $"
        )));
    }
    let value = lookup(name);
    let nested = |text: &str, unset: &mut Vec<String>| -> Result<String> {
        let (v, u) = substitute(text, lookup)?;
        unset.extend(u);
        Ok(v)
    };
    let set_nonempty = value.as_deref().is_some_and(|v| !v.is_empty());
    if op.is_empty() {
        return Ok(match value {
            Some(v) => v,
            None => {
                unset.push(name.to_string());
                String::new()
            }
        });
    }
    if let Some(d) = op.strip_prefix(":-") {
        return if set_nonempty {
            Ok(value.unwrap_or_default())
        } else {
            nested(d, unset)
        };
    }
    if let Some(d) = op.strip_prefix('-') {
        return match value {
            Some(v) => Ok(v),
            None => nested(d, unset),
        };
    }
    if let Some(m) = op.strip_prefix(":?") {
        return if set_nonempty {
            Ok(value.unwrap_or_default())
        } else {
            Err(ComposeError::Interpolation(format!(
                "required variable {name} is missing a value: {}",
                nested(m, unset)?
            )))
        };
    }
    if let Some(m) = op.strip_prefix('?') {
        return match value {
            Some(v) => Ok(v),
            None => Err(ComposeError::Interpolation(format!(
                "required variable {name} is missing a value: {}",
                nested(m, unset)?
            ))),
        };
    }
    if let Some(a) = op.strip_prefix(":+") {
        return if set_nonempty {
            nested(a, unset)
        } else {
            Ok(String::new())
        };
    }
    if let Some(a) = op.strip_prefix('+') {
        return if value.is_some() {
            nested(a, unset)
        } else {
            Ok(String::new())
        };
    }
    Err(ComposeError::Interpolation(format!(
        "invalid interpolation format for {whole:?}: unsupported operator in ${{{inner}}}; use $$ for a literal $"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn sub(s: &str, pairs: &[(&str, &str)]) -> String {
        substitute(s, &env(pairs)).unwrap().0
    }

    #[test]
    fn forms() {
        let e = [("A", "1"), ("E", "")];
        assert_eq!(sub("x$A-${A}y", &e), "x1-1y");
        assert_eq!(sub("${B:-def}", &e), "def");
        assert_eq!(sub("${E:-def}", &e), "def");
        assert_eq!(sub("${E-def}", &e), "");
        assert_eq!(sub("${B-def}", &e), "def");
        assert_eq!(sub("${A:+alt}|${E:+alt}|${E+alt}", &e), "alt||alt");
        assert_eq!(sub("${B:-${A}0}", &e), "10");
        assert_eq!(sub("$$A $", &e), "$A $");
        assert_eq!(sub("${A:?boom}", &e), "1");
        let (v, unset) = substitute("a${NOPE}b$NADA", &env(&e)).unwrap();
        assert_eq!(v, "ab");
        assert_eq!(unset, ["NOPE", "NADA"]);
    }

    #[test]
    fn errors() {
        let e = substitute("${B:?set B first}", &env(&[])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "required variable B is missing a value: set B first"
        );
        assert!(substitute("${A", &env(&[]))
            .unwrap_err()
            .to_string()
            .contains("missing closing brace"));
        assert!(substitute("${1x}", &env(&[])).is_err());
    }

    #[test]
    fn dotenv() {
        let text = "# comment\nA=1\nexport B = two # note\nC='lit $A'\nD=\"q\\n$A ${B}\"\nE\nF=\nG=\"multi\nline\"\n";
        let m = parse_dotenv(text, &env(&[("E", "from-os")])).unwrap();
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], "two");
        assert_eq!(m["C"], "lit $A");
        assert_eq!(m["D"], "q\n1 two");
        assert_eq!(m["E"], "from-os");
        assert_eq!(m["F"], "");
        assert_eq!(m["G"], "multi\nline");
        assert!(parse_dotenv("BAD KEY=1", &env(&[])).is_err());
    }
}
