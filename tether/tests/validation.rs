//! Input validation (issue 9): every bad value is a 400 with a Docker-style JSON
//! `{"message": ...}` naming the field and the value, and nothing is created — no
//! container record, no volume, no host directory — through the API and through the CLI
//! (which prints the message and exits non-zero). Also the CLI's own refusals: unknown
//! flags and `--format` templates naming fields the object does not have.

mod common;

use common::{Daemon, IMAGE};
use serde_json::{json, Value};

/// The message of a JSON error body.
fn message(v: &Value) -> String {
    v["message"].as_str().unwrap_or_default().to_string()
}

/// `method path body` must answer 400 with a message containing every one of `needles`.
fn refused(d: &Daemon, method: &str, path: &str, body: Option<&Value>, needles: &[&str]) {
    let (st, v) = d.api(method, path, body);
    let what = format!(
        "{method} {path} {}",
        body.map(|b| b.to_string()).unwrap_or_default()
    );
    assert_eq!(st, 400, "{what}: expected 400, got {st}: {v}");
    let m = message(&v);
    for n in needles {
        assert!(
            m.contains(n),
            "{what}: message {m:?} does not contain {n:?}"
        );
    }
}

/// A container create body for the test image with `extra` merged in.
fn create_body(extra: Value) -> Value {
    let mut b = json!({"Image": IMAGE, "Cmd": ["true"]});
    if let (Some(o), Some(e)) = (b.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    b
}

/// Names of the entries of `dir` (none if it does not exist).
fn entries(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// No container, no volume: not in the API's lists, not on disk.
fn assert_nothing_created(d: &Daemon) {
    let (st, v) = d.api("GET", "/containers/json?all=1", None);
    assert_eq!((st, &v), (200, &json!([])), "containers were created");
    let (st, v) = d.api("GET", "/volumes", None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["Volumes"], json!([]), "volumes were created: {v}");
    assert_eq!(
        entries(&d.root().join("volumes")),
        Vec::<String>::new(),
        "volume directories were created"
    );
    assert_eq!(
        entries(&d.root().join("containers")),
        Vec::<String>::new(),
        "container directories were created"
    );
}

#[test]
fn volume_names_too_long_or_with_bad_characters_are_refused() {
    let d = Daemon::start();
    let long = "a".repeat(300);
    // today: 500 "File name too long"
    refused(
        &d,
        "POST",
        "/volumes/create",
        Some(&json!({"Name": long})),
        &[&long, "300 bytes", "255"],
    );
    for bad in ["bad name", "b@d", "-lead", "x"] {
        refused(
            &d,
            "POST",
            "/volumes/create",
            Some(&json!({ "Name": bad })),
            &[
                &format!("{bad:?} includes invalid characters for a local volume name"),
                "[a-zA-Z0-9][a-zA-Z0-9_.-]",
            ],
        );
    }
    // named volumes of a container: none is created when one of them is bad
    refused(
        &d,
        "POST",
        "/containers/create",
        Some(&create_body(
            json!({"HostConfig": {"Binds": ["good1:/a", format!("{long}:/b")]}}),
        )),
        &["300 bytes"],
    );
    refused(
        &d,
        "POST",
        "/containers/create",
        Some(&create_body(
            json!({"HostConfig": {"Binds": ["good1:/a", "b@d:/b"]}}),
        )),
        &["\"b@d\" includes invalid characters"],
    );
    // the CLI prints the daemon's message
    let o = d.fails(&["volume", "create", &long]);
    assert!(o.stderr.contains("255"), "{o}");
    let o = d.fails(&["run", "--rm", "-v", &format!("{long}:/data"), IMAGE, "true"]);
    assert!(o.stderr.contains("300 bytes"), "{o}");
    assert_nothing_created(&d);
}

#[test]
fn hostnames_over_64_bytes_or_with_bad_characters_are_refused() {
    let d = Daemon::start();
    let long = "h".repeat(65);
    // today: accepted, then a 500 from sethostname at start
    refused(
        &d,
        "POST",
        "/containers/create",
        Some(&create_body(json!({ "Hostname": long }))),
        &["Hostname", &long, "65 bytes", "64"],
    );
    for bad in ["bad_host!", "-lead", "a..b", "sp ace"] {
        refused(
            &d,
            "POST",
            "/containers/create",
            Some(&create_body(json!({ "Hostname": bad }))),
            &["Hostname", &format!("{bad:?}")],
        );
    }
    let o = d.fails(&["run", "--rm", "-h", &"x".repeat(70), IMAGE, "true"]);
    assert!(
        o.stderr.contains("Hostname") && o.stderr.contains("70 bytes"),
        "{o}"
    );
    assert_nothing_created(&d);
    // 64 bytes is Linux's limit, and it works
    let ok = "k".repeat(64);
    assert_eq!(
        d.ok(&["run", "--rm", "-h", &ok, IMAGE, "hostname"]),
        ok,
        "a 64-byte hostname is valid"
    );
}

#[test]
fn mac_addresses_must_be_unicast() {
    let d = Daemon::start();
    for bad in [
        "zz",
        "01:00:5e:00:00:01",
        "00:00:00:00:00:00",
        "02:42:ac:11:00",
    ] {
        refused(
            &d,
            "POST",
            "/containers/create",
            Some(&create_body(json!({ "MacAddress": bad }))),
            &["Config.MacAddress", &format!("{bad:?}")],
        );
        refused(
            &d,
            "POST",
            "/containers/create",
            Some(&create_body(json!({
                "NetworkingConfig": {"EndpointsConfig": {"bridge": {"MacAddress": bad}}}
            }))),
            &[
                "NetworkingConfig.EndpointsConfig.bridge.MacAddress",
                &format!("{bad:?}"),
            ],
        );
    }
    let o = d.fails(&["run", "--rm", "--mac-address", "zz", IMAGE, "true"]);
    assert!(
        o.stderr.contains("MacAddress") && o.stderr.contains("\"zz\""),
        "{o}"
    );
    assert_nothing_created(&d);
    // network connect: refused, and the container stays off the network
    d.ok(&["network", "create", "macnet"]);
    d.ok(&["create", "--name", "c1", IMAGE, "true"]);
    refused(
        &d,
        "POST",
        "/networks/macnet/connect",
        Some(&json!({"Container": "c1", "EndpointConfig": {"MacAddress": "03:00:00:00:00:01"}})),
        &["MacAddress", "\"03:00:00:00:00:01\"", "multicast"],
    );
    let nets = &d.inspect("c1")["NetworkSettings"]["Networks"];
    assert!(nets.get("macnet").is_none(), "connected anyway: {nets}");
}

#[test]
fn negative_resources_and_healthcheck_values_are_refused() {
    let d = Daemon::start();
    for (field, value, needle) in [
        ("Memory", -5, "HostConfig.Memory -5"),
        ("Memory", 1024, "HostConfig.Memory 1024"),
        ("MemorySwap", -2, "HostConfig.MemorySwap -2"),
        ("MemoryReservation", -1, "HostConfig.MemoryReservation -1"),
        ("CpuShares", -1, "HostConfig.CpuShares -1"),
        ("NanoCpus", -1, "HostConfig.NanoCpus -1"),
        ("CpuQuota", -7, "HostConfig.CpuQuota -7"),
        ("ShmSize", -1, "HostConfig.ShmSize -1"),
        ("OomScoreAdj", 5000, "HostConfig.OomScoreAdj 5000"),
    ] {
        refused(
            &d,
            "POST",
            "/containers/create",
            Some(&create_body(json!({"HostConfig": { field: value }}))),
            &[needle],
        );
    }
    for field in ["Interval", "Timeout", "StartPeriod", "StartInterval"] {
        refused(
            &d,
            "POST",
            "/containers/create",
            Some(&create_body(
                json!({"Healthcheck": {"Test": ["CMD", "true"], field: -1}}),
            )),
            &[
                &format!("{field} in Healthcheck cannot be less than 1ms"),
                &format!("Healthcheck.{field} is -1"),
            ],
        );
    }
    refused(
        &d,
        "POST",
        "/containers/create",
        Some(&create_body(
            json!({"Healthcheck": {"Test": ["CMD", "true"], "Retries": -3}}),
        )),
        &["Retries in Healthcheck cannot be negative", "-3"],
    );
    let o = d.fails(&[
        "run",
        "--rm",
        "--health-cmd",
        "true",
        "--health-interval=-1s",
        IMAGE,
        "true",
    ]);
    assert!(
        o.stderr
            .contains("Interval in Healthcheck cannot be less than 1ms"),
        "{o}"
    );
    assert_nothing_created(&d);
    // 0 means "inherit": accepted
    let (st, v) = d.api(
        "POST",
        "/containers/create",
        Some(&create_body(json!({
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 0, "Retries": 0},
            "HostConfig": {"Memory": 0, "MemorySwap": -1, "CpuShares": 0}
        }))),
    );
    assert_eq!(st, 201, "{v}");
}

#[test]
fn bind_modes_and_bind_sources_are_checked() {
    let d = Daemon::start();
    let src = d.dir().join("src-bad-mode");
    let spec = format!("{}:/dst:badmode", src.display());
    refused(
        &d,
        "POST",
        "/containers/create",
        Some(&create_body(json!({"HostConfig": {"Binds": [spec]}}))),
        &["invalid mode: badmode", "HostConfig.Binds", "ro", "rslave"],
    );
    for bad in ["ro,rw", "z,Z", "rw,rw"] {
        refused(
            &d,
            "POST",
            "/containers/create",
            Some(&create_body(
                json!({"HostConfig": {"Binds": [format!("{}:/dst:{bad}", src.display())]}}),
            )),
            &[&format!("invalid mode: {bad}")],
        );
    }
    let o = d.fails(&["run", "--rm", "-v", &spec, IMAGE, "true"]);
    assert!(o.stderr.contains("invalid mode: badmode"), "{o}");
    assert!(!src.exists(), "the refused bind's source was created");
    // --mount type=bind / HostConfig.Mounts never create their source
    let missing = d.dir().join("no-such-source");
    refused(
        &d,
        "POST",
        "/containers/create",
        Some(&create_body(json!({"HostConfig": {"Mounts": [
            {"Type": "bind", "Source": missing, "Target": "/y"}
        ]}}))),
        &[&format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {}",
            missing.display()
        )],
    );
    let o = d.fails(&[
        "run",
        "--rm",
        "--mount",
        &format!("type=bind,src={},dst=/y", missing.display()),
        IMAGE,
        "true",
    ]);
    assert!(o.stderr.contains("bind source path does not exist"), "{o}");
    assert!(!missing.exists(), "a --mount source was created");
    assert_nothing_created(&d);
    // -v (HostConfig.Binds) creates a missing source, as Docker does; valid modes work
    let made = d.dir().join("made-by-v");
    d.ok(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/data:rw,Z", made.display()),
        IMAGE,
        "touch",
        "/data/f",
    ]);
    assert!(
        made.join("f").exists(),
        "-v did not create and bind its source"
    );
}

#[test]
fn numeric_query_parameters_and_api_versions_are_checked() {
    let d = Daemon::start();
    let id = d.ok(&["create", IMAGE, "sleep", "100"]);
    // t: a 400 naming it; the container is neither stopped nor (re)started
    refused(
        &d,
        "POST",
        &format!("/containers/{id}/stop?t=abc"),
        None,
        &["t", "\"abc\"", "integer"],
    );
    refused(
        &d,
        "POST",
        &format!("/containers/{id}/restart?t=1x"),
        None,
        &["t", "\"1x\"", "integer"],
    );
    assert_eq!(d.inspect(&id)["State"]["Status"], "created");
    refused(
        &d,
        "GET",
        &format!("/containers/{id}/logs?stdout=1&tail=abc"),
        None,
        &["tail", "\"abc\"", "all"],
    );
    let (st, _) = d.api(
        "GET",
        &format!("/containers/{id}/logs?stdout=1&tail=all"),
        None,
    );
    assert_eq!(st, 200);
    refused(
        &d,
        "GET",
        "/containers/json?limit=abc",
        None,
        &["limit", "\"abc\""],
    );
    // versions above the one served, and below the minimum compared as numbers
    let (st, v) = d.api("GET", "/v99.0/containers/json", None);
    assert_eq!(st, 400, "{v}");
    assert_eq!(
        message(&v),
        "client version 99.0 is too new. Maximum supported API version is 1.53"
    );
    refused(&d, "GET", "/v1.54/version", None, &["1.54 is too new"]);
    refused(&d, "GET", "/v1.9/version", None, &["1.9 is too old"]);
    let (st, v) = d.api("GET", "/v1.53/version", None);
    assert_eq!(st, 200, "{v}");
}

#[test]
fn wrong_json_types_and_bad_references_are_named() {
    let d = Daemon::start();
    refused(
        &d,
        "POST",
        "/containers/create",
        Some(&json!({"Image": 5})),
        &["Image: invalid type: integer `5`, expected a string"],
    );
    refused(
        &d,
        "POST",
        "/containers/create",
        Some(&json!({"Image": IMAGE, "HostConfig": {"Memory": "x"}})),
        &["HostConfig.Memory: invalid type: string \"x\""],
    );
    refused(
        &d,
        "POST",
        "/containers/create",
        Some(
            &json!({"Image": IMAGE, "HostConfig": {"PortBindings": {"80/tcp": [{"HostPort": 80}]}}}),
        ),
        &["HostConfig.PortBindings.80/tcp[0].HostPort: invalid type"],
    );
    refused(
        &d,
        "POST",
        "/volumes/create",
        Some(&json!({"Name": ["v"]})),
        &["Name: invalid type: sequence"],
    );
    // references: the message names what the user gave
    for (bad, needle) in [
        ("Tbox", "repository name (library/Tbox) must be lowercase"),
        ("Bad/Name", "Bad/Name"),
        ("tbox latest", "\"tbox latest\""),
    ] {
        refused(
            &d,
            "POST",
            "/containers/create",
            Some(&json!({ "Image": bad })),
            &["invalid reference format", needle],
        );
    }
    assert_nothing_created(&d);
}

#[test]
fn the_cli_names_unknown_flags_and_bad_template_fields() {
    let d = Daemon::start();
    // today `run --nonexistent-flag IMG` says "invalid reference format"
    for args in [
        vec!["run", "--nonexistent-flag", IMAGE],
        vec!["create", "--nonexistent-flag=3", IMAGE, "true"],
        vec!["exec", "--nonexistent-flag", "c", "ls"],
        vec!["container", "run", "--nonexistent-flag", IMAGE],
    ] {
        let o = d.fails(&args);
        assert_eq!(o.code, 125, "{args:?}: {o}");
        assert!(
            o.stderr
                .starts_with("unknown flag: --nonexistent-flag\nSee 'tether "),
            "{args:?}: {o}"
        );
    }
    let o = d.fails(&["run", "-Q", IMAGE]);
    assert_eq!(o.code, 125, "{o}");
    assert!(
        o.stderr.starts_with("unknown shorthand flag: 'Q' in -Q"),
        "{o}"
    );
    assert_nothing_created(&d);
    // flags after the image still belong to the command
    assert_eq!(
        d.ok(&["run", "--rm", IMAGE, "echo", "--nonexistent-flag"]),
        "--nonexistent-flag"
    );

    // --format with a field the row does not have fails as docker's template does
    d.ok(&["create", "--name", "web", IMAGE, "true"]);
    let o = d.fails(&["ps", "-a", "--format", "{{.Bogus}}"]);
    assert_eq!(
        o.stderr.trim_end(),
        "template parsing error: template: :1:2: executing \"\" at <.Bogus>: can't evaluate field Bogus in type *formatter.ContainerContext",
        "{o}"
    );
    assert_eq!(o.stdout, "", "{o}");
    let o = d.fails(&["ps", "-a", "--format", "{{.Names}} {{.Nope.X}}"]);
    assert!(
        o.stderr.contains(
            "template: :1:13: executing \"\" at <.Nope.X>: can't evaluate field Nope in type *formatter.ContainerContext"
        ),
        "{o}"
    );
    let o = d.fails(&["images", "--format", "{{.Bogus}}"]);
    assert!(
        o.stderr
            .contains("can't evaluate field Bogus in type *formatter.imageContext"),
        "{o}"
    );
    let o = d.fails(&["network", "ls", "--format", "{{.Bogus}}"]);
    assert!(
        o.stderr.contains("can't evaluate field Bogus in type"),
        "{o}"
    );
    // inspect: docker's raw fallback with missingkey=error
    let o = d.fails(&["inspect", "-f", "{{.Bogus}}", "web"]);
    assert!(
        o.stderr.contains(
            "template parsing error: template: :1:2: executing \"\" at <.Bogus>: map has no entry for key \"Bogus\""
        ),
        "{o}"
    );
    // ... while a key missing from a map is still <no value>, and real fields work
    assert_eq!(
        d.ok(&["inspect", "-f", "{{.Name}} {{.Config.Labels.nope}}", "web"]),
        "/web <no value>"
    );
    assert_eq!(d.ok(&["ps", "-a", "--format", "{{.Names}}"]), "web");
}

#[test]
fn network_drivers_are_looked_up_by_name_and_checked_before_anything_is_made() {
    let d = Daemon::start();
    let links = d.links();
    // an unknown driver names the ones there are
    refused(
        &d,
        "POST",
        "/networks/create",
        Some(&json!({"Name": "n1", "Driver": "overlay"})),
        &["\"overlay\"", "bridge, host, null"],
    );
    // host and null have their one predefined network each
    for (driver, net) in [("host", "host"), ("null", "none")] {
        refused(
            &d,
            "POST",
            "/networks/create",
            Some(&json!({"Name": "n1", "Driver": driver})),
            &[&format!("only one instance of \"{driver}\""), net],
        );
    }
    // the bridge driver checks its typed options, naming option and value
    refused(
        &d,
        "POST",
        "/networks/create",
        Some(
            &json!({"Name": "n1", "Options": {"com.docker.network.bridge.gateway_mode_ipv4": "isolated"}}),
        ),
        &["isolated", "--internal"],
    );
    let out = d.fails(&["network", "create", "-d", "macvlan", "n1"]);
    assert!(
        out.all().contains("\"macvlan\"") && out.all().contains("bridge, host, null"),
        "{}",
        out.all()
    );
    let (st, v) = d.api("GET", "/networks", None);
    assert_eq!(st, 200, "{v}");
    let names: Vec<&str> = v
        .as_array()
        .map(|a| a.iter().filter_map(|n| n["Name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(names.len(), 3, "only the predefined networks: {names:?}");
    assert_eq!(d.links(), links, "a refused create left a link behind");
}
