//! `tether compose`: depends_on with service_healthy, --scale behind one name with
//! round-robin answers, links aliases, external networks, and invalid files.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{wait_until, Daemon, IMAGE};

/// Writes `yaml` as compose.yaml in a fresh project directory.
fn project(yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("project dir");
    let file = dir.path().join("compose.yaml");
    std::fs::write(&file, yaml.replace("IMAGE", IMAGE)).expect("write compose.yaml");
    (dir, file)
}

fn compose(d: &Daemon, file: &Path, project: &str, args: &[&str]) -> common::Output {
    let f = file.display().to_string();
    let mut v = vec!["compose", "-f", &f, "-p", project];
    v.extend_from_slice(args);
    d.cli(&v)
}

#[test]
fn depends_on_service_healthy_waits_for_the_healthcheck() {
    let d = Daemon::start();
    // db answers only after 2 s; web's first and only try must already succeed
    let (_dir, file) = project(
        r#"
services:
  db:
    image: IMAGE
    command: ["sh", "-c", "sleep 2; nc -ll -p 5432 -e echo pong"]
    healthcheck:
      test: ["CMD-SHELL", "echo | nc -w 1 127.0.0.1 5432 | grep -q pong"]
      interval: 1s
      retries: 30
  web:
    image: IMAGE
    command: ["sh", "-c", "echo | nc -w 2 db 5432 > /tmp/first; sleep 300"]
    depends_on:
      db:
        condition: service_healthy
"#,
    );
    let o = compose(&d, &file, "hc", &["up", "-d"]);
    assert_eq!(o.code, 0, "{o}");
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.State.Health.Status}}", "hc-db-1"]),
        "healthy"
    );
    wait_until("web ran its probe", Duration::from_secs(10), || {
        d.sh("hc-web-1", "cat /tmp/first").stdout.contains("pong")
    });
    let labels = d.ok(&["inspect", "-f", "{{index .Config.Labels \"com.docker.compose.project\"}} {{index .Config.Labels \"com.docker.compose.service\"}}", "hc-web-1"]);
    assert_eq!(labels, "hc web");
    let o = compose(&d, &file, "hc", &["down", "-t", "1"]);
    assert_eq!(o.code, 0, "{o}");
    assert!(d.ok(&["ps", "-aq"]).is_empty());
    assert!(!d
        .ok(&["network", "ls", "--format", "{{.Name}}"])
        .contains("hc_default"));
}

#[test]
fn scale_puts_replicas_behind_the_service_name_in_round_robin() {
    let d = Daemon::start();
    let (_dir, file) = project(
        r#"
services:
  web:
    image: IMAGE
    command: ["sleep", "300"]
  client:
    image: IMAGE
    command: ["sleep", "300"]
"#,
    );
    let o = compose(&d, &file, "sc", &["up", "-d", "--scale", "web=3"]);
    assert_eq!(o.code, 0, "{o}");
    let mut want: Vec<String> = (1..=3)
        .map(|i| {
            d.ok(&[
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                &format!("sc-web-{i}"),
            ])
        })
        .collect();
    want.sort();
    let resolve = "nslookup web 127.0.0.11 | awk '/^Name:/{f=1} f && /^Address/{print $NF}'";
    let mut got: Vec<String> = d
        .sh("sc-client-1", resolve)
        .stdout
        .lines()
        .map(str::to_string)
        .collect();
    got.sort();
    assert_eq!(got, want, "the service name answers with every replica");
    let firsts: std::collections::HashSet<String> = (0..6)
        .map(|_| {
            d.sh("sc-client-1", &format!("{resolve} | head -1"))
                .stdout
                .trim()
                .to_string()
        })
        .collect();
    assert!(firsts.len() >= 2, "the first answer rotates: {firsts:?}");
    assert_eq!(compose(&d, &file, "sc", &["down", "-t", "1"]).code, 0);
}

#[test]
fn links_aliases_and_external_networks() {
    let d = Daemon::start();
    d.ok(&["network", "create", "shared-ext"]);
    let (_dir, file) = project(
        r#"
services:
  db:
    image: IMAGE
    command: ["sh", "-c", "nc -ll -p 5432 -e echo pong"]
    networks: [outside]
  app:
    image: IMAGE
    command: ["sleep", "300"]
    links: ["db:database"]
    networks: [outside]
networks:
  outside:
    external: true
    name: shared-ext
"#,
    );
    let o = compose(&d, &file, "lk", &["up", "-d"]);
    assert_eq!(o.code, 0, "{o}");
    let nets = d.ok(&[
        "inspect",
        "-f",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
        "lk-app-1",
    ]);
    assert_eq!(nets, "shared-ext", "joined the external network");
    wait_until(
        "app reaches db through the link alias",
        Duration::from_secs(15),
        || {
            d.sh("lk-app-1", "echo | nc -w 2 database 5432")
                .stdout
                .contains("pong")
        },
    );
    assert_eq!(compose(&d, &file, "lk", &["down", "-t", "1"]).code, 0);
    assert!(
        d.ok(&["network", "ls", "--format", "{{.Name}}"])
            .lines()
            .any(|n| n == "shared-ext"),
        "an external network stays"
    );
    assert!(d.ok(&["ps", "-aq"]).is_empty());
}

#[test]
fn invalid_files_name_the_key_and_line() {
    let d = Daemon::start();
    let (_dir, file) = project("services:\n  web:\n    image: IMAGE\n    imgae: typo\n");
    let o = compose(&d, &file, "bad", &["up", "-d"]);
    assert_eq!(o.code, 1, "{o}");
    assert!(
        o.stderr.contains("imgae") && o.stderr.contains(":4"),
        "names the key and its line: {o}"
    );
    assert_eq!(o.stderr.trim().lines().count(), 1, "one line: {o}");
    let (_dir2, file2) = project("services:\n  web:\n    image: IMAGE\n    depends_on: [nope]\n");
    let o = compose(&d, &file2, "bad", &["up", "-d"]);
    assert_eq!(o.code, 1, "{o}");
    assert!(o.stderr.contains("nope"), "{o}");
    assert!(d.ok(&["ps", "-aq"]).is_empty(), "nothing was created");
}
