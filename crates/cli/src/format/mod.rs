//! Output formatting: Go templates, docker's tables, JSON, humanized values.

pub mod humanize;
pub mod json;
pub mod ports;
pub mod tabwriter;
pub mod template;

use self::template::funcs::{docker_funcs, header_funcs};
use self::template::{Template, TemplateError, Value};

/// Whether a `--format` value asks for a table (`table ...`).
pub fn is_table(format: &str) -> bool {
    format.starts_with("table")
}

/// docker's `Format.templateString`: `json` → `{{json .}}`, strips the
/// `table` prefix, trims spaces and turns literal `\t` / `\n` into tab / newline.
pub fn template_string(format: &str) -> String {
    if format == "table" {
        return String::new();
    }
    if format == "json" {
        return "{{json .}}".into();
    }
    let out = format.strip_prefix("table").unwrap_or(format);
    out.trim_matches(' ')
        .replace("\\t", "\t")
        .replace("\\n", "\n")
}

/// Renders a list (`ps`, `images`, `network ls`) like docker's `formatter.Context.Write`:
/// each row is the template output plus a newline; for `table` formats the
/// header row (the template run over `header` with docker's header functions)
/// comes first and everything is aligned with the tab writer.
pub fn render_list(format: &str, rows: &[Value], header: &Value) -> Result<String, TemplateError> {
    let tmpl = Template::parse(&template_string(format))?;
    let funcs = docker_funcs();
    let mut body = String::new();
    for row in rows {
        tmpl.execute_with(row, &funcs, &mut body)?;
        body.push('\n');
    }
    if !is_table(format) {
        return Ok(body);
    }
    let mut text = String::new();
    // Header errors are ignored as in docker: whatever was written is kept.
    let _ = tmpl.execute_with(header, &header_funcs(), &mut text);
    text.push('\n');
    text.push_str(&body);
    Ok(tabwriter::docker_table(&text))
}

/// A table header context (docker's `SubHeaderContext`): column names by
/// field, plus `.Label "com.example.my-label"` → "my label".
pub fn header_map(pairs: &[(&str, &str)]) -> Value {
    use std::rc::Rc;
    use template::value::{Map, NativeFn};
    let label: NativeFn = Rc::new(|args: &[Value]| match args {
        [Value::Str(name)] => {
            let last = name.rsplit('.').next().unwrap_or(name);
            Ok(Value::Str(last.replace(['-', '_'], " ")))
        }
        _ => Err(format!(
            "wrong number of args for Label: want 1 got {}",
            args.len()
        )),
    });
    let mut entries: Vec<(String, Value)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(*v)))
        .collect();
    entries.push(("Label".into(), Value::Func(label)));
    Value::Map(Map::go_map(entries))
}

/// The `Labels` and `Label KEY` fields of a list row (`ps`, `network ls`)
/// for an object whose `Labels` is `labels`: the sorted `k=v` pairs joined
/// by commas, and a function giving one label's value ("" if unset).
pub fn label_fields(labels: Option<&serde_json::Value>) -> [(String, Value); 2] {
    use std::rc::Rc;
    use template::value::NativeFn;
    let labels: Vec<(String, String)> = labels
        .and_then(|l| l.as_object())
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
        .collect();
    let mut pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.sort();
    let label: NativeFn = Rc::new(move |args: &[Value]| match args {
        [Value::Str(key)] => Ok(Value::Str(
            labels
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
        )),
        _ => Err(format!(
            "wrong number of args for Label: want 1 got {}",
            args.len()
        )),
    });
    [
        ("Labels".into(), Value::from(pairs.join(","))),
        ("Label".into(), Value::Func(label)),
    ]
}

/// Truncates an ID like docker's `TruncateID`: drops an algorithm prefix, keeps 12 chars.
pub fn truncate_id(id: &str) -> String {
    let id = match id.split_once(':') {
        Some((_, rest)) => rest,
        None => id,
    };
    id.chars().take(12).collect()
}

/// docker's `Ellipsis`: cuts to `max` display characters, the last being "…".
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::template::value::Map;
    use super::*;

    fn row(pairs: &[(&str, &str)]) -> Value {
        Value::Map(Map::go_map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), Value::from(*v)))
                .collect(),
        ))
    }

    #[test]
    fn table_with_header() {
        let header = row(&[("Names", "NAMES"), ("Status", "STATUS")]);
        let rows = vec![
            row(&[("Names", "web"), ("Status", "Up 2 seconds")]),
            row(&[
                ("Names", "a-much-longer-name"),
                ("Status", "Exited (0) 1 second ago"),
            ]),
        ];
        let out = render_list("table {{.Names}}\\t{{.Status}}", &rows, &header).unwrap();
        assert_eq!(
            out,
            "NAMES                STATUS\n\
             web                  Up 2 seconds\n\
             a-much-longer-name   Exited (0) 1 second ago\n"
        );
    }

    #[test]
    fn plain_format_and_json() {
        let header = row(&[("Names", "NAMES")]);
        let rows = vec![row(&[("Names", "web"), ("Status", "Up")])];
        assert_eq!(
            render_list("{{.Names}}|{{.Status}}", &rows, &header).unwrap(),
            "web|Up\n"
        );
        assert_eq!(
            render_list("json", &rows, &header).unwrap(),
            "{\"Names\":\"web\",\"Status\":\"Up\"}\n"
        );
        assert_eq!(render_list("{{.Names}}", &[], &header).unwrap(), "");
        assert_eq!(
            render_list("table {{upper .Names}}", &rows, &header).unwrap(),
            "NAMES\nWEB\n"
        );
    }

    #[test]
    fn header_label_method() {
        let header = header_map(&[("Names", "NAMES")]);
        let rows = vec![row(&[("Names", "web")])];
        let out = render_list(
            "table {{.Names}}\\t{{.Label \"com.example.my-label\"}}",
            &rows,
            &header,
        );
        // Rows have no Label method here, so execution fails like Go's would.
        assert!(out.is_err());
        let mut text = String::new();
        Template::parse("{{.Names}} {{.Label \"com.example.my_label\"}}")
            .unwrap()
            .execute_with(&header, &header_funcs(), &mut text)
            .unwrap();
        assert_eq!(text, "NAMES my label");
    }

    #[test]
    fn label_fields_of_a_row() {
        use template::value::Map;
        let labels = serde_json::json!({"tier": "front", "app": "web"});
        let row = |l| Value::Map(Map::marshaler(label_fields(l).into()));
        let render = |row: &Value, t: &str| {
            let mut text = String::new();
            let r = Template::parse(t)
                .unwrap()
                .execute_with(row, &docker_funcs(), &mut text);
            r.map(|_| text).map_err(|e| e.to_string())
        };
        let t = "{{.Labels}}|{{.Label \"app\"}}|{{.Label \"nope\"}}";
        assert_eq!(
            render(&row(Some(&labels)), t).unwrap(),
            "app=web,tier=front|web|"
        );
        assert_eq!(render(&row(None), t).unwrap(), "||");
        let err = render(&row(None), "{{.Label}}").unwrap_err();
        assert!(
            err.contains("wrong number of args for Label: want 1 got 0"),
            "{err}"
        );
    }

    #[test]
    fn ids_and_ellipsis() {
        assert_eq!(truncate_id("sha256:0123456789abcdef0123"), "0123456789ab");
        assert_eq!(truncate_id("0123456789abcdef"), "0123456789ab");
        assert_eq!(
            ellipsis("sh -c 'trap \"exit 0\" TERM; sleep 100'", 20),
            "sh -c 'trap \"exit 0…"
        );
        assert_eq!(ellipsis("short", 20), "short");
    }

    #[test]
    fn template_string_rules() {
        assert_eq!(
            template_string("table {{.ID}}\\t{{.Name}}"),
            "{{.ID}}\t{{.Name}}"
        );
        assert_eq!(template_string("  {{.ID}}\\n "), "{{.ID}}\n");
        assert_eq!(template_string("json"), "{{json .}}");
    }
}
