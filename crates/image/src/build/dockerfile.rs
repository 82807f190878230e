//! Dockerfiles, read for the classic builder: the text is parsed by the
//! `parse-dockerfile` crate; this module turns its syntax tree into stages of
//! [`Step`]s with line numbers and the display text Docker prints
//! (`Step 2/5 : RUN make`), and implements the word processing Docker applies to
//! instruction arguments: quotes, the escape character and `$VAR` / `${VAR}` /
//! `${VAR:-default}` / `${VAR:+alt}` / `${VAR:?message}` expansion (moby
//! `frontend/dockerfile/shell` semantics).
//!
//! Reference: <https://docs.docker.com/reference/dockerfile/>.

use parse_dockerfile as pd;

use super::BuildError;

/// A command as written: exec form (JSON array) or shell form (run with the
/// stage's `SHELL`, `["/bin/sh", "-c"]` by default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandForm {
    /// `["exe", "arg"]`.
    Exec(Vec<String>),
    /// `exe arg`, continuation lines already joined.
    Shell(String),
}

/// Where `COPY`/`ADD` take one source from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CopySource {
    /// A path (or glob) in the build context or the `--from` stage/image.
    Path(String),
    /// A here-document (`COPY <<EOF /dest`): the file's content and whether
    /// variables are expanded in it (unquoted delimiter).
    HereDoc {
        /// Content, with its final newline.
        content: String,
        /// `true` when the delimiter was not quoted.
        expand: bool,
    },
}

/// `COPY` / `ADD` arguments (unexpanded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopyArgs {
    /// `true` for `ADD` (local tar archives are unpacked; URLs are refused).
    pub add: bool,
    /// `--from=stage|image`.
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=octal`.
    pub chmod: Option<String>,
    /// Sources, in order.
    pub sources: Vec<CopySource>,
    /// Destination (relative ones are under `WORKDIR`).
    pub dest: String,
}

/// `HEALTHCHECK` arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HealthArgs {
    /// `HEALTHCHECK NONE`.
    None,
    /// `HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D]
    /// [--start-interval=D] [--retries=N] CMD ...` (flags as (name, value)).
    Cmd {
        /// Flags, unparsed.
        flags: Vec<(String, String)>,
        /// The check command.
        cmd: CommandForm,
    },
}

/// One instruction after `FROM`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// `RUN`: the command, and a here-document script (`RUN <<EOF`) if any.
    Run {
        /// The command (empty shell form when only a here-document is given).
        cmd: CommandForm,
        /// A here-document body: run as the script when `cmd` is empty, else fed
        /// to the command as the shell's here-document.
        heredoc: Option<(String, String)>,
        /// `--network=default|none|host` of the instruction, if given.
        network: Option<String>,
    },
    /// `COPY` or `ADD`.
    Copy(CopyArgs),
    /// `ENV` (raw arguments).
    Env(String),
    /// `ARG` (raw arguments).
    Arg(String),
    /// `LABEL` (raw arguments).
    Label(String),
    /// `EXPOSE` words.
    Expose(Vec<String>),
    /// `WORKDIR` path.
    Workdir(String),
    /// `USER` spec.
    User(String),
    /// `VOLUME` paths.
    Volume(Vec<String>),
    /// `CMD`.
    Cmd(CommandForm),
    /// `ENTRYPOINT`.
    Entrypoint(CommandForm),
    /// `SHELL` (exec form only).
    Shell(Vec<String>),
    /// `HEALTHCHECK`.
    Healthcheck(HealthArgs),
    /// `STOPSIGNAL`.
    StopSignal(String),
    /// `ONBUILD` with the trigger's text (e.g. `RUN make`).
    OnBuild(String),
    /// `MAINTAINER` (deprecated; sets the author).
    Maintainer(String),
}

/// An instruction with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// 1-based line of the instruction keyword.
    pub line: usize,
    /// The instruction as Docker prints it (`RUN echo a && echo b`).
    pub text: String,
    /// What it does.
    pub kind: StepKind,
}

/// A build stage: `FROM base [AS name]` and its steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    /// The `AS` name, lower-cased as Docker does.
    pub name: Option<String>,
    /// The base image reference, unexpanded (`${BASE}`, `scratch`, a stage name).
    pub base: String,
    /// `--platform=` of `FROM`, unexpanded.
    pub platform: Option<String>,
    /// Line of the `FROM`.
    pub line: usize,
    /// Display text of the `FROM`.
    pub text: String,
    /// Instructions after the `FROM`.
    pub steps: Vec<Step>,
}

/// A parsed Dockerfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dockerfile {
    /// `ARG`s before the first `FROM` (raw `name[=default]`), usable in `FROM`.
    pub global_args: Vec<String>,
    /// The stages, in order.
    pub stages: Vec<Stage>,
    /// The escape character (`\` or, by `# escape=`` ` ``, a backtick).
    pub escape: char,
}

/// Parses a Dockerfile. `name` is the file's name for error messages.
///
/// # Errors
/// [`BuildError::Dockerfile`] naming the file, the line and what is wrong: a
/// syntax error, no `FROM`, an unknown flag, a `RUN` mount, a `SHELL` not in
/// exec form.
pub fn parse(name: &str, text: &str) -> Result<Dockerfile, BuildError> {
    let err = |line: usize, msg: String| BuildError::Dockerfile {
        file: name.to_string(),
        line,
        message: msg,
    };
    let df = pd::parse(text).map_err(|e| err(e.line(), e.to_string()))?;
    let escape = df
        .parser_directives
        .escape
        .as_ref()
        .map(|d| d.value.value)
        .unwrap_or('\\');
    let starts: Vec<usize> = df
        .instructions
        .iter()
        .map(|i| keyword_span(i).start)
        .collect();
    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for (idx, ins) in df.instructions.iter().enumerate() {
        let start = starts[idx];
        let end = starts.get(idx + 1).copied().unwrap_or(text.len());
        let line = line_of(text, start);
        let display = display_text(&text[start..end], escape);
        let fail = |m: String| err(line, format!("{m} (in {display:?})"));
        let kind = match ins {
            pd::Instruction::From(f) => {
                let mut platform = None;
                for fl in &f.options {
                    match fl.name.value.as_ref() {
                        "platform" => platform = fl.value.as_ref().map(|v| v.value.to_string()),
                        other => return Err(fail(format!("unknown flag --{other} for FROM"))),
                    }
                }
                stages.push(Stage {
                    name: f.as_.as_ref().map(|(_, n)| n.value.to_ascii_lowercase()),
                    base: f.image.value.to_string(),
                    platform,
                    line,
                    text: display,
                    steps: Vec::new(),
                });
                continue;
            }
            pd::Instruction::Arg(a) if stages.is_empty() => {
                global_args.push(a.arguments.value.to_string());
                continue;
            }
            _ if stages.is_empty() => {
                return Err(fail(
                    "no FROM before this instruction: a Dockerfile must start with FROM (ARG may come first)".into(),
                ))
            }
            other => step_kind(other, escape, &display).map_err(fail)?,
        };
        if let Some(stage) = stages.last_mut() {
            stage.steps.push(Step {
                line,
                text: display,
                kind,
            });
        }
    }
    if stages.is_empty() {
        return Err(err(
            1,
            "the Dockerfile has no FROM instruction (a build needs at least one stage)".into(),
        ));
    }
    Ok(Dockerfile {
        global_args,
        stages,
        escape,
    })
}

fn keyword_span(i: &pd::Instruction<'_>) -> pd::Span {
    use pd::Instruction as I;
    match i {
        I::Add(x) => x.add.span.clone(),
        I::Arg(x) => x.arg.span.clone(),
        I::Cmd(x) => x.cmd.span.clone(),
        I::Copy(x) => x.copy.span.clone(),
        I::Entrypoint(x) => x.entrypoint.span.clone(),
        I::Env(x) => x.env.span.clone(),
        I::Expose(x) => x.expose.span.clone(),
        I::From(x) => x.from.span.clone(),
        I::Healthcheck(x) => x.healthcheck.span.clone(),
        I::Label(x) => x.label.span.clone(),
        I::Maintainer(x) => x.maintainer.span.clone(),
        I::Onbuild(x) => x.onbuild.span.clone(),
        I::Run(x) => x.run.span.clone(),
        I::Shell(x) => x.shell.span.clone(),
        I::Stopsignal(x) => x.stopsignal.span.clone(),
        I::User(x) => x.user.span.clone(),
        I::Volume(x) => x.volume.span.clone(),
        I::Workdir(x) => x.workdir.span.clone(),
        // an instruction kind newer than this code: shown from its line start
        _ => 0..0,
    }
}

/// 1-based line number of byte offset `pos`.
fn line_of(text: &str, pos: usize) -> usize {
    text.as_bytes()[..pos.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Joins continuation lines (dropping comment lines inside them) as Docker does.
fn join_continuations(s: &str, escape: char) -> String {
    let mut out = String::new();
    let mut lines = s.split('\n').peekable();
    let mut first = true;
    while let Some(l) = lines.next() {
        let l = l.strip_suffix('\r').unwrap_or(l);
        if !first && l.trim_start().starts_with('#') {
            continue;
        }
        first = false;
        let t = l.trim_end();
        if let Some(body) = t.strip_suffix(escape) {
            out.push_str(body);
            if lines.peek().is_none() {
                break;
            }
        } else {
            out.push_str(l);
            break;
        }
    }
    out
}

/// The instruction's text as Docker prints it in `Step N/M : ...`.
fn display_text(raw: &str, escape: char) -> String {
    join_continuations(raw, escape).trim().to_string()
}

fn command(c: &pd::Command<'_>, escape: char) -> CommandForm {
    match c {
        pd::Command::Exec(v) => {
            CommandForm::Exec(v.value.iter().map(|s| s.value.to_string()).collect())
        }
        pd::Command::Shell(s) => CommandForm::Shell(join_continuations(s.value, escape)),
        _ => CommandForm::Shell(String::new()),
    }
}

fn strings(v: &[pd::UnescapedString<'_>]) -> Vec<String> {
    v.iter().map(|s| s.value.to_string()).collect()
}

fn flags_map(
    flags: &[pd::Flag<'_>],
    allowed: &[&str],
    what: &str,
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for f in flags {
        let n = f.name.value.to_string();
        if !allowed.contains(&n.as_str()) {
            return Err(format!(
                "unknown flag --{n} for {what} (valid: {})",
                allowed
                    .iter()
                    .map(|a| format!("--{a}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let v = f
            .value
            .as_ref()
            .map(|v| v.value.to_string())
            .unwrap_or_default();
        out.push((n, v));
    }
    Ok(out)
}

fn copy_args(
    add: bool,
    options: &[pd::Flag<'_>],
    src: &[pd::Source<'_>],
    dest: &pd::UnescapedString<'_>,
) -> Result<CopyArgs, String> {
    let what = if add { "ADD" } else { "COPY" };
    let allowed: &[&str] = if add {
        &["chown", "chmod", "from", "link", "keep-git-dir", "checksum"]
    } else {
        &["chown", "chmod", "from", "link", "parents", "exclude"]
    };
    let mut args = CopyArgs {
        add,
        from: None,
        chown: None,
        chmod: None,
        sources: Vec::new(),
        dest: dest.value.to_string(),
    };
    for (n, v) in flags_map(options, allowed, what)? {
        match n.as_str() {
            "from" if !add => args.from = Some(v),
            "chown" => args.chown = Some(v),
            "chmod" => args.chmod = Some(v),
            "link" => {}
            other => {
                return Err(format!(
                    "--{other} of {what} needs BuildKit; the classic builder does not support it"
                ))
            }
        }
    }
    for s in src {
        args.sources.push(match s {
            pd::Source::Path(p) => CopySource::Path(p.value.to_string()),
            pd::Source::HereDoc(h) => CopySource::HereDoc {
                content: h.value.to_string(),
                expand: h.expand,
            },
            _ => return Err(format!("unsupported source form in {what}")),
        });
    }
    if args.sources.is_empty() {
        return Err(format!(
            "{what} requires at least two arguments: SRC... DEST"
        ));
    }
    Ok(args)
}

fn step_kind(i: &pd::Instruction<'_>, escape: char, display: &str) -> Result<StepKind, String> {
    use pd::Instruction as I;
    Ok(match i {
        I::Run(r) => {
            let mut network = None;
            for (n, v) in flags_map(&r.options, &["network", "mount", "security"], "RUN")? {
                match n.as_str() {
                    "network" => {
                        if !matches!(v.as_str(), "default" | "none" | "host") {
                            return Err(format!(
                                "invalid RUN --network={v:?}: use default, none or host"
                            ));
                        }
                        network = Some(v)
                    }
                    other => {
                        return Err(format!(
                            "RUN --{other} needs BuildKit; the classic builder does not support it"
                        ))
                    }
                }
            }
            let cmd = command(&r.arguments, escape);
            let heredoc = match r.here_docs.first() {
                Some(h) => {
                    let delim = heredoc_delimiter(display).unwrap_or_else(|| "EOF".into());
                    Some((delim, h.value.to_string()))
                }
                None => None,
            };
            StepKind::Run {
                cmd,
                heredoc,
                network,
            }
        }
        I::Copy(c) => StepKind::Copy(copy_args(false, &c.options, &c.src, &c.dest)?),
        I::Add(a) => StepKind::Copy(copy_args(true, &a.options, &a.src, &a.dest)?),
        I::Env(e) => StepKind::Env(e.arguments.value.to_string()),
        I::Arg(a) => StepKind::Arg(a.arguments.value.to_string()),
        I::Label(l) => StepKind::Label(l.arguments.value.to_string()),
        I::Expose(e) => StepKind::Expose(strings(&e.arguments)),
        I::Workdir(w) => StepKind::Workdir(w.arguments.value.to_string()),
        I::User(u) => StepKind::User(u.arguments.value.to_string()),
        I::Volume(v) => StepKind::Volume(match &v.arguments {
            pd::JsonOrStringArray::Json(j) => strings(&j.value),
            pd::JsonOrStringArray::String(s) => strings(s),
        }),
        I::Cmd(c) => StepKind::Cmd(command(&c.arguments, escape)),
        I::Entrypoint(e) => StepKind::Entrypoint(command(&e.arguments, escape)),
        I::Shell(s) => StepKind::Shell(strings(&s.arguments)),
        I::Healthcheck(h) => match &h.arguments {
            pd::HealthcheckArguments::None { .. } => StepKind::Healthcheck(HealthArgs::None),
            pd::HealthcheckArguments::Cmd { arguments, .. } => {
                let flags = flags_map(
                    &h.options,
                    &[
                        "interval",
                        "timeout",
                        "start-period",
                        "start-interval",
                        "retries",
                    ],
                    "HEALTHCHECK",
                )?;
                StepKind::Healthcheck(HealthArgs::Cmd {
                    flags,
                    cmd: command(arguments, escape),
                })
            }
            _ => return Err("HEALTHCHECK takes CMD ... or NONE".into()),
        },
        I::Stopsignal(s) => StepKind::StopSignal(s.arguments.value.to_string()),
        I::Onbuild(_) => {
            let trigger = display
                .split_once(char::is_whitespace)
                .map(|(_, t)| t.trim().to_string())
                .unwrap_or_default();
            let upper = trigger.to_ascii_uppercase();
            if upper.starts_with("ONBUILD")
                || upper.starts_with("FROM")
                || upper.starts_with("MAINTAINER")
            {
                return Err(format!("{trigger:?} isn't allowed as an ONBUILD trigger"));
            }
            StepKind::OnBuild(trigger)
        }
        I::Maintainer(m) => StepKind::Maintainer(m.name.value.to_string()),
        I::From(_) => return Err("FROM inside a stage".into()),
        _ => return Err("unsupported instruction".into()),
    })
}

/// The delimiter word of `RUN <<EOF` / `RUN <<-"EOF"` in the display text.
fn heredoc_delimiter(display: &str) -> Option<String> {
    let rest = display.split_once("<<")?.1;
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let word: String = rest
        .chars()
        .filter(|c| *c != '"' && *c != '\'')
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some(word)
}

/// Expands one word as Docker does: quotes removed (`'...'` literal, `"..."`
/// with expansion), the escape character escaping the next one, `$NAME`,
/// `${NAME}`, `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}`, `${NAME+word}`,
/// `${NAME:?message}`. `lookup` gives a variable's value (None = unset).
///
/// # Errors
/// A message for an unterminated quote or `${`, a bad substitution, or a
/// `${NAME:?message}` whose variable is unset or empty.
pub fn expand_word(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    Ok(expand(word, escape, lookup, false)?.concat())
}

/// Like [`expand_word`] but splits the result into words at unquoted
/// whitespace (for `EXPOSE`, `VOLUME` and the `name=value` lists of `ENV`,
/// `LABEL` and `ARG`, where quotes keep spaces inside one word).
///
/// # Errors
/// As [`expand_word`].
pub fn expand_words(
    text: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, String> {
    expand(text, escape, lookup, true)
}

fn expand(
    text: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
    split: bool,
) -> Result<Vec<String>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut words: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if split && c.is_whitespace() {
            if in_word {
                words.push(std::mem::take(&mut cur));
                in_word = false;
            }
            i += 1;
            continue;
        }
        in_word = true;
        if c == escape {
            if let Some(&n) = chars.get(i + 1) {
                cur.push(n);
                i += 2;
            } else {
                cur.push(c);
                i += 1;
            }
        } else if c == '\'' {
            let end = chars[i + 1..]
                .iter()
                .position(|&x| x == '\'')
                .ok_or_else(|| format!("unexpected end of statement while looking for matching single-quote in {text:?}"))?;
            cur.extend(&chars[i + 1..i + 1 + end]);
            i += end + 2;
        } else if c == '"' {
            i += 1;
            loop {
                let Some(&d) = chars.get(i) else {
                    return Err(format!(
                        "unexpected end of statement while looking for matching double-quote in {text:?}"
                    ));
                };
                if d == '"' {
                    i += 1;
                    break;
                }
                if d == escape {
                    match chars.get(i + 1) {
                        Some(&n) if n == '"' || n == '$' || n == escape => {
                            cur.push(n);
                            i += 2;
                        }
                        _ => {
                            cur.push(d);
                            i += 1;
                        }
                    }
                } else if d == '$' {
                    let (v, n) = dollar(&chars, i, escape, lookup, text)?;
                    cur.push_str(&v);
                    i = n;
                } else {
                    cur.push(d);
                    i += 1;
                }
            }
        } else if c == '$' {
            let (v, n) = dollar(&chars, i, escape, lookup, text)?;
            cur.push_str(&v);
            i = n;
        } else {
            cur.push(c);
            i += 1;
        }
    }
    if in_word || !split {
        words.push(cur);
    }
    Ok(words)
}

/// A `$` expansion starting at `chars[i]`: (value, index after it).
fn dollar(
    chars: &[char],
    i: usize,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
    text: &str,
) -> Result<(String, usize), String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    match chars.get(i + 1) {
        Some('{') => {
            let mut j = i + 2;
            let mut name = String::new();
            while let Some(&c) = chars.get(j) {
                if !is_name(c) {
                    break;
                }
                name.push(c);
                j += 1;
            }
            if name.is_empty() {
                return Err(format!("bad substitution in {text:?}"));
            }
            // find the matching '}' (nested braces counted)
            let mut depth = 1;
            let mut k = j;
            while k < chars.len() {
                match chars[k] {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                k += 1;
            }
            if k >= chars.len() {
                return Err(format!("missing '}}' in {text:?}"));
            }
            let rest: String = chars[j..k].iter().collect();
            let val = lookup(&name);
            let out = if rest.is_empty() {
                val.unwrap_or_default()
            } else {
                let (op, word) = if let Some(w) = rest.strip_prefix(":-") {
                    (":-", w)
                } else if let Some(w) = rest.strip_prefix(":+") {
                    (":+", w)
                } else if let Some(w) = rest.strip_prefix(":?") {
                    (":?", w)
                } else if let Some(w) = rest.strip_prefix('-') {
                    ("-", w)
                } else if let Some(w) = rest.strip_prefix('+') {
                    ("+", w)
                } else if let Some(w) = rest.strip_prefix('?') {
                    ("?", w)
                } else {
                    return Err(format!(
                        "unsupported modifier ({rest}) in substitution of {name} in {text:?}"
                    ));
                };
                let word = expand_word(word, escape, lookup)?;
                let set = val.is_some();
                let nonempty = val.as_deref().is_some_and(|v| !v.is_empty());
                match op {
                    ":-" => {
                        if nonempty {
                            val.unwrap_or_default()
                        } else {
                            word
                        }
                    }
                    "-" => {
                        if set {
                            val.unwrap_or_default()
                        } else {
                            word
                        }
                    }
                    ":+" => {
                        if nonempty {
                            word
                        } else {
                            String::new()
                        }
                    }
                    "+" => {
                        if set {
                            word
                        } else {
                            String::new()
                        }
                    }
                    _ => {
                        let ok = if op == ":?" { nonempty } else { set };
                        if !ok {
                            return Err(format!(
                                "{name}: {}",
                                if word.is_empty() {
                                    "is not allowed to be unset".to_string()
                                } else {
                                    word
                                }
                            ));
                        }
                        val.unwrap_or_default()
                    }
                }
            };
            Ok((out, k + 1))
        }
        Some(&c) if is_name(c) => {
            let mut j = i + 1;
            let mut name = String::new();
            while let Some(&c) = chars.get(j) {
                if !is_name(c) {
                    break;
                }
                name.push(c);
                j += 1;
            }
            Ok((lookup(&name).unwrap_or_default(), j))
        }
        _ => Ok(("$".to_string(), i + 1)),
    }
}

/// Splits `ENV`/`LABEL`/`ARG` arguments into (name, value) pairs: the
/// `name=value ...` form (values expanded and unquoted) or the legacy
/// `ENV name value with spaces` form. For `ARG`, a value may be absent.
///
/// # Errors
/// A message naming the word that is not `name=value`, an empty name, or an
/// expansion error.
pub fn name_values(
    what: &str,
    raw: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Option<String>,
    allow_bare: bool,
) -> Result<Vec<(String, Option<String>)>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(format!("{what} requires at least one argument"));
    }
    let raw_words = split_raw(raw, escape);
    let first_has_eq = raw_words.first().is_some_and(|w| w.contains('='));
    if !first_has_eq && !allow_bare {
        // legacy form: NAME value...
        let (name, rest) = raw
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("{what} {raw:?}: expected NAME=VALUE (or NAME VALUE)"))?;
        let value = expand_word(rest.trim(), escape, lookup)?;
        return Ok(vec![(name.to_string(), Some(value))]);
    }
    let mut out = Vec::new();
    for w in raw_words {
        match w.split_once('=') {
            Some((n, v)) => {
                if n.is_empty() {
                    return Err(format!("{what} names can not be blank (in {w:?})"));
                }
                out.push((n.to_string(), Some(expand_word(v, escape, lookup)?)));
            }
            None if allow_bare => out.push((expand_word(&w, escape, lookup)?, None)),
            None => {
                return Err(format!(
                    "{what}: can't find = in {w:?}; must be of the form NAME=VALUE"
                ))
            }
        }
    }
    Ok(out)
}

/// Splits at unquoted whitespace, keeping quotes and escapes in the words.
fn split_raw(s: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == escape && quote != Some('\'') {
            cur.push(c);
            if let Some(n) = chars.next() {
                cur.push(n);
            }
            continue;
        }
        match quote {
            Some(q) if c == q => {
                quote = None;
                cur.push(c)
            }
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                cur.push(c)
            }
            None if c.is_whitespace() => {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
            }
            None => cur.push(c),
        }
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "A" => Some("1".into()),
            "E" => Some(String::new()),
            "S" => Some("x y".into()),
            _ => None,
        }
    }

    #[test]
    fn expansion_follows_docker() {
        let e = |s: &str| expand_word(s, '\\', &env).unwrap();
        assert_eq!(e("$A"), "1");
        assert_eq!(e("${A}b"), "1b");
        assert_eq!(e("'$A'"), "$A");
        assert_eq!(e("\"$A\""), "1");
        assert_eq!(e("\\$A"), "$A");
        assert_eq!(e("${U:-d}"), "d");
        assert_eq!(e("${E:-d}"), "d");
        assert_eq!(e("${E-d}"), "");
        assert_eq!(e("${A:+y}"), "y");
        assert_eq!(e("${U:+y}"), "");
        assert_eq!(e("$U"), "");
        assert_eq!(e("a$"), "a$");
        assert!(expand_word("${U:?needed}", '\\', &env)
            .unwrap_err()
            .contains("needed"));
        assert!(expand_word("\"open", '\\', &env).is_err());
        assert_eq!(
            expand_words("a \"b c\" $S", '\\', &env).unwrap(),
            vec!["a", "b c", "x y"]
        );
    }

    #[test]
    fn name_value_forms() {
        let nv = name_values("ENV", "X=1 Y=\"a b\" Z=$A", '\\', &env, false).unwrap();
        assert_eq!(
            nv,
            vec![
                ("X".into(), Some("1".into())),
                ("Y".into(), Some("a b".into())),
                ("Z".into(), Some("1".into()))
            ]
        );
        let legacy = name_values("ENV", "X hello  world", '\\', &env, false).unwrap();
        assert_eq!(legacy, vec![("X".into(), Some("hello  world".into()))]);
        assert!(name_values("ENV", "X=1 Y", '\\', &env, false)
            .unwrap_err()
            .contains("\"Y\""));
        let arg = name_values("ARG", "V", '\\', &env, true).unwrap();
        assert_eq!(arg, vec![("V".into(), None)]);
    }

    #[test]
    fn parses_stages_lines_and_text() {
        let text = "ARG BASE=deb\nFROM ${BASE} AS Builder\nRUN echo a \\\n# note\n  && echo b\nRUN <<EOF\necho hi\nEOF\nCOPY --from=builder --chown=1:2 a b* /dst/\nFROM scratch\nCOPY --from=builder /f /f\n";
        let df = parse("Dockerfile", text).unwrap();
        assert_eq!(df.global_args, vec!["BASE=deb"]);
        assert_eq!(df.stages.len(), 2);
        let s0 = &df.stages[0];
        assert_eq!(s0.name.as_deref(), Some("builder"));
        assert_eq!(s0.base, "${BASE}");
        assert_eq!(s0.line, 2);
        assert_eq!(s0.steps[0].line, 3);
        assert_eq!(s0.steps[0].text, "RUN echo a   && echo b");
        assert_eq!(
            s0.steps[0].kind,
            StepKind::Run {
                cmd: CommandForm::Shell("echo a   && echo b".into()),
                heredoc: None,
                network: None
            }
        );
        match &s0.steps[1].kind {
            StepKind::Run { heredoc, .. } => {
                assert_eq!(heredoc.as_ref().map(|h| h.1.as_str()), Some("echo hi\n"))
            }
            k => panic!("{k:?}"),
        }
        assert_eq!(s0.steps[1].text, "RUN <<EOF");
        assert_eq!(s0.steps[2].line, 9);
        let err = parse("Dockerfile.bad", "FROM x\nRUN ok\nBOGUS y\n").unwrap_err();
        let m = err.to_string();
        assert!(m.contains("Dockerfile.bad") && m.contains("line 3"), "{m}");
        let err = parse("D", "RUN x\n").unwrap_err().to_string();
        assert!(err.contains("FROM") && err.contains("line 1"), "{err}");
        let err = parse("D", "FROM x\nRUN --mount=type=cache,target=/c make\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("BuildKit") && err.contains("line 2"), "{err}");
    }
}
