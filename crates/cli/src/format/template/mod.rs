//! A Go `text/template` engine for `--format` / `-f`.
//!
//! The `gtmpl` crate ranges over maps in hash order, prints slices with Rust's
//! `Debug` and errors on missing struct fields, so docker's templates
//! (`{{range $k, $v := .NetworkSettings.Networks}}`, `{{.Aliases}}` → `[a b]`)
//! come out wrong. This module implements the language directly: text and
//! actions with trim markers and comments, pipelines and variables, `if` /
//! `else if` / `with` / `range` (with `else`, `break`, `continue`), `define` /
//! `template` / `block`, parenthesized pipelines and field chains, Go's
//! builtin functions and docker's extra functions (see [`funcs`]).

pub mod exec;
pub mod funcs;
pub mod lex;
pub mod parse;
pub mod value;

use std::collections::HashMap;

use thiserror::Error;

use self::funcs::FuncMap;
use self::parse::{Node, Parser};
pub use self::value::Value;

/// A template parse or execution error, worded like Go's.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TemplateError {
    /// The template text is malformed (`template: :1: unclosed action`).
    #[error("template: :{line}: {msg}")]
    Parse {
        /// Line of the error.
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// Execution failed (`template: :1: executing "": ...`).
    #[error("template: :{line}: executing \"\": {msg}")]
    Exec {
        /// Line of the failing action.
        line: usize,
        /// What went wrong.
        msg: String,
    },
    /// Execution failed at a node whose place is known, worded as Go's `ErrorContext`
    /// (`template: :1:2: executing "" at <.Bogus>: can't evaluate field Bogus in type T`).
    #[error("template: :{line}:{col}: executing \"\" at <{node}>: {msg}")]
    ExecAt {
        /// Line of the node.
        line: usize,
        /// Byte offset of the node in its line.
        col: usize,
        /// The node as written (`.Bogus`).
        node: String,
        /// What went wrong.
        msg: String,
    },
}

impl TemplateError {
    pub(crate) fn parse(line: usize, msg: impl Into<String>) -> Self {
        TemplateError::Parse {
            line,
            msg: msg.into(),
        }
    }
    pub(crate) fn exec(line: usize, msg: impl Into<String>) -> Self {
        TemplateError::Exec {
            line,
            msg: msg.into(),
        }
    }

    /// Places an execution error not yet placed at the field node `.A.B` at `(line, col)`.
    pub(crate) fn at_node(self, (line, col): (usize, usize), idents: &[String]) -> Self {
        match self {
            TemplateError::Exec { msg, .. } => TemplateError::ExecAt {
                line,
                col,
                node: format!(".{}", idents.join(".")),
                msg,
            },
            other => other,
        }
    }
}

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    root: Vec<Node>,
    defines: HashMap<String, Vec<Node>>,
}

impl Template {
    /// Parses `src`; function names are checked against docker's function set.
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let names = funcs::docker_funcs();
        let known = |n: &str| names.contains_key(n);
        let toks = lex::lex(src)?;
        let mut p = Parser::new(toks, &known);
        let root = p.parse_root()?;
        Ok(Template {
            root,
            defines: p.defines,
        })
    }

    /// Executes the template against `data` with the given functions, appending to `out`.
    /// On error, `out` keeps whatever was written before the failure (as Go's writer does).
    pub fn execute_with(
        &self,
        data: &Value,
        funcs: &FuncMap,
        out: &mut String,
    ) -> Result<(), TemplateError> {
        let mut st = exec::State {
            defines: &self.defines,
            funcs,
            out,
            vars: vec![("$".to_string(), data.clone())],
            depth: 0,
            line: 1,
        };
        st.run(&self.root, data)
    }

    /// Executes with docker's functions and returns the text.
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        let mut out = String::new();
        self.execute_with(data, &funcs::docker_funcs(), &mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::json;

    const CONTAINER: &str = r#"{
        "Id": "4f6a2b1c9d8e7f60123456789abcdef0123456789abcdef0123456789abcdef",
        "Name": "/web",
        "State": {"Status": "running", "Running": true, "Pid": 1234, "ExitCode": 0},
        "Config": {"Hostname": "web", "Env": ["A=1", "B=2"], "Labels": {"app": "x"}, "Cmd": null},
        "NetworkSettings": {
            "Ports": {"3000/tcp": null, "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]},
            "Networks": {
                "net-x": {"Aliases": ["web", "w1"], "IPAddress": "172.20.0.2", "Gateway": "172.20.0.1"},
                "bridge": {"Aliases": null, "IPAddress": "172.17.0.3", "Gateway": "172.17.0.1"}
            }
        }
    }"#;

    const NETWORK: &str = r#"{
        "Name": "net-x", "Id": "9a8b7c", "Scope": "local", "Driver": "bridge",
        "IPAM": {"Driver": "default", "Options": {}, "Config": [
            {"Subnet": "172.20.0.0/16", "Gateway": "172.20.0.1"},
            {"Subnet": "fd00::/64", "Gateway": "fd00::1"}
        ]},
        "Containers": {
            "bbb": {"Name": "web", "IPv4Address": "172.20.0.2/16"},
            "aaa": {"Name": "db", "IPv4Address": "172.20.0.3/16"}
        },
        "Options": {}, "Labels": {}
    }"#;

    fn run(tmpl: &str, data: &str) -> String {
        let v = json::parse(data).unwrap();
        Template::parse(tmpl).unwrap().render(&v).unwrap()
    }

    #[test]
    fn range_over_networks_values() {
        assert_eq!(
            run(
                "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                CONTAINER
            ),
            // sorted by key: bridge, net-x
            "172.17.0.3 172.20.0.2 "
        );
    }

    #[test]
    fn with_index() {
        assert_eq!(
            run(
                r#"{{with index .NetworkSettings.Networks "net-x"}}{{.IPAddress}}{{end}}"#,
                CONTAINER
            ),
            "172.20.0.2"
        );
        assert_eq!(
            run(
                r#"{{with index .NetworkSettings.Networks "nope"}}{{.IPAddress}}{{else}}none{{end}}"#,
                CONTAINER
            ),
            "none"
        );
    }

    #[test]
    fn range_keys_sorted() {
        assert_eq!(
            run(
                "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
                CONTAINER
            ),
            "bridge net-x "
        );
    }

    #[test]
    fn ipam_config_subnets() {
        assert_eq!(
            run("{{range .IPAM.Config}}{{.Subnet}} {{end}}", NETWORK),
            "172.20.0.0/16 fd00::/64 "
        );
    }

    #[test]
    fn network_containers() {
        assert_eq!(
            run(
                r#"{{range .Containers}}{{.Name}} {{.IPv4Address}}{{"\n"}}{{end}}"#,
                NETWORK
            ),
            "db 172.20.0.3/16\nweb 172.20.0.2/16\n"
        );
    }

    #[test]
    fn json_of_ports() {
        assert_eq!(
            run("{{json .NetworkSettings.Ports}}", CONTAINER),
            r#"{"3000/tcp":null,"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"8080"}]}"#
        );
        assert_eq!(
            run(
                "{{json .NetworkSettings.Ports}}",
                r#"{"NetworkSettings":{"Ports":{"3000/tcp":null}}}"#
            ),
            r#"{"3000/tcp":null}"#
        );
    }

    #[test]
    fn simple_fields() {
        assert_eq!(run("{{.State.Status}}", CONTAINER), "running");
        assert_eq!(run("{{.Name}} {{.Driver}}", NETWORK), "net-x bridge");
        assert_eq!(
            run("{{.Name}} {{.Driver}} {{.Scope}}", NETWORK),
            "net-x bridge local"
        );
        assert_eq!(
            run(
                "{{.Names}}|{{.Status}}",
                r#"{"Names":"web","Status":"Up 2 seconds"}"#
            ),
            "web|Up 2 seconds"
        );
        assert_eq!(
            run(
                "{{.Names}}|{{.Ports}}",
                r#"{"Names":"web","Ports":"0.0.0.0:8080->3000/tcp"}"#
            ),
            "web|0.0.0.0:8080->3000/tcp"
        );
        assert_eq!(
            run("{{.Gateway}}", r#"{"Gateway":"172.20.0.1"}"#),
            "172.20.0.1"
        );
        assert_eq!(run("{{.State.Pid}}", CONTAINER), "1234");
        assert_eq!(run("{{.State.Running}}", CONTAINER), "true");
    }

    #[test]
    fn slices_print_like_go() {
        // net-x has aliases; bridge's null Aliases is a nil []string → [].
        assert_eq!(
            run(
                "{{range .NetworkSettings.Networks}}{{.Aliases}}{{end}}",
                CONTAINER
            ),
            "[][web w1]"
        );
        assert_eq!(run("{{.Config.Env}}", CONTAINER), "[A=1 B=2]");
        assert_eq!(run("{{.Config.Cmd}}", CONTAINER), "[]");
        assert_eq!(run("{{.Config.Labels}}", CONTAINER), "map[app:x]");
        // PortMap values are slices: null prints [] and structs print {a b}.
        assert_eq!(
            run("{{.NetworkSettings.Ports}}", CONTAINER),
            "map[3000/tcp:[] 80/tcp:[{0.0.0.0 8080}]]"
        );
    }

    #[test]
    fn missing_fields_print_no_value() {
        assert_eq!(run("{{.Nope}}", CONTAINER), "<no value>");
        assert_eq!(run("{{.Nope.Deeper}}", CONTAINER), "<no value>");
        assert_eq!(run(r#"{{index .Config.Labels "zzz"}}"#, CONTAINER), "");
    }

    #[test]
    fn docker_functions() {
        assert_eq!(run("{{join .Config.Env \",\"}}", CONTAINER), "A=1,B=2");
        assert_eq!(run("{{split .Name \"e\"}}", CONTAINER), "[/w b]");
        assert_eq!(run("{{upper .State.Status}}", CONTAINER), "RUNNING");
        assert_eq!(run("{{lower \"ABC\"}}", CONTAINER), "abc");
        assert_eq!(run("{{title .State.Status}}", CONTAINER), "Running");
        assert_eq!(run("{{truncate .Id 12}}", CONTAINER), "4f6a2b1c9d8e");
        assert_eq!(
            run("[{{pad .State.Status 2 1}}]", CONTAINER),
            "[  running ]"
        );
        assert_eq!(run("{{println .State.Status}}", CONTAINER), "running\n");
        assert_eq!(run("{{.Name | printf \"%s!\"}}", CONTAINER), "/web!");
        assert_eq!(run("{{json .Config.Env}}", CONTAINER), r#"["A=1","B=2"]"#);
        assert_eq!(run("{{len .Config.Env}}", CONTAINER), "2");
    }

    #[test]
    fn control_flow() {
        assert_eq!(
            run(
                "{{if eq .State.Status \"exited\"}}dead{{else if .State.Running}}up{{else}}?{{end}}",
                CONTAINER
            ),
            "up"
        );
        assert_eq!(
            run(
                "{{range $i, $e := .Config.Env}}{{if $i}},{{end}}{{$e}}{{end}}",
                CONTAINER
            ),
            "A=1,B=2"
        );
        assert_eq!(
            run("{{range .Config.Env}}{{.}}{{break}}{{end}}", CONTAINER),
            "A=1"
        );
        assert_eq!(
            run("{{range .Config.Cmd}}x{{else}}empty{{end}}", CONTAINER),
            "empty"
        );
        assert_eq!(
            run(
                "{{$n := .Name}}{{with .State}}{{$n}}:{{.Status}}{{end}}",
                CONTAINER
            ),
            "/web:running"
        );
        assert_eq!(
            run("{{- /* comment */ -}}  {{ .State.Status -}}  \n", CONTAINER),
            "running"
        );
        assert_eq!(
            run(
                "{{(index .NetworkSettings.Networks \"net-x\").Gateway}}",
                CONTAINER
            ),
            "172.20.0.1"
        );
        assert_eq!(
            run(
                "{{define \"n\"}}<{{.}}>{{end}}{{template \"n\" .State.Status}}",
                CONTAINER
            ),
            "<running>"
        );
    }

    #[test]
    fn parse_and_exec_errors() {
        assert!(matches!(
            Template::parse("{{.Name"),
            Err(TemplateError::Parse { .. })
        ));
        let e = Template::parse("{{nofunc .}}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "template: :1: function \"nofunc\" not defined"
        );
        assert!(Template::parse("{{end}}").is_err());
        assert!(Template::parse("{{if .A}}x").is_err());
        let v = json::parse(CONTAINER).unwrap();
        assert!(Template::parse("{{.Name.Foo}}")
            .unwrap()
            .render(&v)
            .is_err());
    }

    #[test]
    fn methods_with_arguments() {
        use std::rc::Rc;
        let labels = value::Map::go_map(vec![("com.x".into(), Value::from("1"))]);
        let f: value::NativeFn = Rc::new(move |args: &[Value]| {
            let key = args.first().and_then(Value::as_str).unwrap_or_default();
            Ok(labels.get(key).cloned().unwrap_or(Value::from("")))
        });
        let row = Value::Map(value::Map::go_map(vec![("Label".into(), Value::Func(f))]));
        let t = Template::parse("{{.Label \"com.x\"}}|{{.Label \"y\"}}").unwrap();
        assert_eq!(t.render(&row).unwrap(), "1|");
    }

    #[test]
    fn missing_fields_of_typed_rows_and_inspect_roots() {
        let row = Value::Map(value::Map::context(
            "*formatter.ContainerContext",
            vec![("Names".into(), Value::from("web"))],
        ));
        let err = |t: &str, v: &Value| {
            Template::parse(t)
                .unwrap()
                .render(v)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("{{.Bogus}}", &row),
            "template: :1:2: executing \"\" at <.Bogus>: can't evaluate field Bogus in type *formatter.ContainerContext"
        );
        assert_eq!(
            err("{{.Names}}\n  x {{upper .Nope.X}}", &row),
            "template: :2:12: executing \"\" at <.Nope.X>: can't evaluate field Nope in type *formatter.ContainerContext"
        );
        let mut root = match json::parse(CONTAINER).unwrap() {
            Value::Map(m) => m,
            _ => unreachable!(),
        };
        root.on_missing = value::OnMissing::NoEntry(vec!["SizeRw".into()]);
        let root = Value::Map(root);
        assert_eq!(
            err("{{.Bogus}}", &root),
            "template: :1:2: executing \"\" at <.Bogus>: map has no entry for key \"Bogus\""
        );
        let t = Template::parse("{{.SizeRw}}|{{.Config.Labels.nope}}|{{.Name}}").unwrap();
        assert_eq!(t.render(&root).unwrap(), "<no value>|<no value>|/web");
    }
}
