//! The Docker Engine API on the unix socket: ping, versioned paths, Docker's JSON errors
//! and status codes; and the CLI's report of a malformed `-p`.

mod common;

use serde_json::json;

use common::{Daemon, IMAGE};

#[test]
fn ping_version_and_errors() {
    let d = Daemon::start();

    // ping: OK with the API version header, versioned or not
    for path in ["/_ping", "/v1.41/_ping"] {
        let r = d.api_raw("GET", path, None);
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert_eq!(r.body, "OK", "{path}");
        let v = r.header("Api-Version").unwrap_or_default();
        assert!(
            !v.is_empty() && v.split('.').all(|p| p.parse::<u32>().is_ok()),
            "{path}: {r:?}"
        );
    }

    // version on a versioned path
    for path in ["/v1.41/version", "/version"] {
        let (st, v) = d.api("GET", path, None);
        assert_eq!(st, 200, "{path}: {v}");
        assert!(
            v["ApiVersion"].is_string() && v["Version"].is_string(),
            "{path}: {v}"
        );
        assert_eq!(v["Os"], "linux", "{v}");
    }
    // a client older than the minimum is refused with a JSON message
    let (st, v) = d.api("GET", "/v1.12/version", None);
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or_default()
            .contains("too old"),
        "{v}"
    );

    // unknown container: 404 and Docker's exact message, for several endpoints
    let (st, v) = d.api("GET", "/containers/x/json", None);
    assert_eq!((st, v), (404, json!({"message": "No such container: x"})));
    let (st, v) = d.api("DELETE", "/v1.41/containers/x?force=1", None);
    assert_eq!((st, v), (404, json!({"message": "No such container: x"})));
    let (st, v) = d.api("POST", "/containers/x/start", None);
    assert_eq!((st, v), (404, json!({"message": "No such container: x"})));

    // create with an invalid image reference: 400 "invalid reference format"
    for bad in ["Upper", "bad//ref", "trailing:", "a b"] {
        let (st, v) = d.api("POST", "/containers/create", Some(&json!({"Image": bad})));
        assert_eq!(st, 400, "{bad}: {v}");
        let m = v["message"].as_str().unwrap_or_default();
        assert!(m.contains("invalid reference format"), "{bad}: {v}");
    }
    // ... and nothing was created
    let (st, v) = d.api("GET", "/containers/json?all=1", None);
    assert_eq!((st, v), (200, json!([])));

    // network create with an overlapping subnet: an error JSON naming the other network
    let body = |name: &str, subnet: &str| json!({"Name": name, "Driver": "bridge", "IPAM": {"Config": [{"Subnet": subnet}]}});
    let (st, v) = d.api(
        "POST",
        "/networks/create",
        Some(&body("o1", "172.30.0.0/16")),
    );
    assert_eq!(st, 201, "{v}");
    assert!(
        v["Id"].as_str().map(|s| s.len() == 64).unwrap_or(false),
        "{v}"
    );
    let (st, v) = d.api(
        "POST",
        "/networks/create",
        Some(&body("o2", "172.30.7.0/24")),
    );
    assert!((400..500).contains(&st), "{st}: {v}");
    let m = v["message"].as_str().unwrap_or_default();
    assert!(m.contains("overlaps") && m.contains("o1"), "{v}");
    assert_eq!(d.api("GET", "/networks/o2", None).0, 404);
}

#[test]
fn malformed_publish_is_a_one_line_cli_error() {
    let d = Daemon::start();
    for (flag, bad) in [
        ("8080:abc", "abc"),
        ("x:80", "x"),
        ("1.2.3:80:80", "1.2.3"),
        ("80/sctpx", "sctpx"),
    ] {
        let o = d.cli(&["run", "-d", "-p", flag, IMAGE, "true"]);
        assert_eq!(o.code, 125, "-p {flag}: {o}");
        let err = o.stderr.trim();
        assert_eq!(err.lines().count(), 1, "-p {flag}: one line expected: {o}");
        assert!(
            err.contains(bad),
            "-p {flag}: the error does not name {bad:?}: {o}"
        );
        assert!(o.stdout.is_empty(), "-p {flag}: {o}");
    }
    // nothing was created
    assert_eq!(d.ok(&["ps", "-a", "-q"]), "");
}
