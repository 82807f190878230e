//! Every endpoint of the Engine API reference (v1.41-v1.47: containers, exec, images,
//! networks, volumes, system, distribution, plugins, and the Swarm-only groups) is routed
//! (issue 13): it answers as tether implements it, or, for the Swarm-only groups, 503
//! "This node is not a swarm manager" as a Docker that is not in a swarm does. What is
//! checked is the routing and the status class, not each endpoint's behaviour (the other
//! test files do that): an unknown object is a 404 naming it, never Docker's
//! `page not found`.

mod common;

use common::{Daemon, IMAGE};

/// (method, path) of the reference, with placeholder names of objects that exist
/// (`ctr`, `net`, `vol`, the test image) or not (`nosuch`).
fn endpoints() -> Vec<(&'static str, String)> {
    let img = IMAGE;
    let mut v: Vec<(&'static str, String)> = vec![
        ("GET", "/containers/json".into()),
        ("POST", "/containers/create".into()),
        ("GET", "/containers/ctr/json".into()),
        ("GET", "/containers/ctr/top".into()),
        ("GET", "/containers/ctr/logs?stdout=1".into()),
        ("GET", "/containers/ctr/changes".into()),
        ("GET", "/containers/nosuch/export".into()),
        ("GET", "/containers/ctr/stats?stream=0".into()),
        ("POST", "/containers/ctr/resize?h=10&w=10".into()),
        ("POST", "/containers/nosuch/start".into()),
        ("POST", "/containers/nosuch/stop".into()),
        ("POST", "/containers/nosuch/restart".into()),
        ("POST", "/containers/nosuch/kill".into()),
        ("POST", "/containers/nosuch/update".into()),
        ("POST", "/containers/nosuch/rename?name=x".into()),
        ("POST", "/containers/nosuch/pause".into()),
        ("POST", "/containers/nosuch/unpause".into()),
        ("POST", "/containers/nosuch/attach".into()),
        ("POST", "/containers/nosuch/wait".into()),
        ("DELETE", "/containers/nosuch".into()),
        ("HEAD", "/containers/ctr/archive?path=/".into()),
        ("GET", "/containers/nosuch/archive?path=/".into()),
        ("PUT", "/containers/nosuch/archive?path=/".into()),
        ("POST", "/containers/prune".into()),
        ("POST", "/containers/nosuch/exec".into()),
        ("POST", "/exec/nosuch/start".into()),
        ("POST", "/exec/nosuch/resize?h=1&w=1".into()),
        ("GET", "/exec/nosuch/json".into()),
        ("GET", "/images/json".into()),
        (
            "POST",
            "/images/create?fromImage=nosuch.invalid/x&tag=1".into(),
        ),
        ("GET", format!("/images/{img}/json")),
        ("GET", format!("/images/{img}/history")),
        ("POST", "/images/nosuch/push".into()),
        ("POST", "/images/nosuch/tag?repo=x".into()),
        ("DELETE", "/images/nosuch".into()),
        ("GET", "/images/search?term=x".into()),
        ("POST", "/images/prune".into()),
        ("POST", "/commit?container=nosuch".into()),
        ("GET", "/images/nosuch/get".into()),
        ("GET", "/images/get?names=nosuch".into()),
        ("POST", "/images/load".into()),
        ("POST", "/build".into()),
        ("POST", "/build/prune".into()),
        ("GET", "/networks".into()),
        ("GET", "/networks/net".into()),
        ("DELETE", "/networks/nosuch".into()),
        ("POST", "/networks/create".into()),
        ("POST", "/networks/nosuch/connect".into()),
        ("POST", "/networks/nosuch/disconnect".into()),
        ("POST", "/networks/prune".into()),
        ("GET", "/volumes".into()),
        ("POST", "/volumes/create".into()),
        ("GET", "/volumes/vol".into()),
        ("DELETE", "/volumes/nosuch".into()),
        ("POST", "/volumes/prune".into()),
        ("POST", "/auth".into()),
        ("GET", "/info".into()),
        ("GET", "/version".into()),
        ("GET", "/_ping".into()),
        ("HEAD", "/_ping".into()),
        ("GET", "/system/df".into()),
        ("GET", "/distribution/nosuch.invalid/x/json".into()),
        ("GET", "/plugins".into()),
        ("GET", "/plugins/nosuch/json".into()),
    ];
    for g in ["swarm", "services", "tasks", "secrets", "configs"] {
        v.push(("GET", format!("/{g}")));
    }
    v
}

#[test]
fn every_endpoint_of_the_reference_is_routed() {
    let d = Daemon::start();
    d.run_d(&["--name", "ctr", IMAGE, "sleep", "600"]);
    d.ok(&["network", "create", "net"]);
    d.ok(&["volume", "create", "vol"]);
    let mut unrouted = Vec::new();
    for (m, p) in endpoints() {
        for prefix in ["", "/v1.41", "/v1.47"] {
            let path = format!("{prefix}{p}");
            let r = d.api_raw(m, &path, None);
            if r.status == 404 && r.body.contains("page not found") {
                unrouted.push(format!("{m} {path}"));
            }
        }
    }
    assert!(unrouted.is_empty(), "not routed: {unrouted:#?}");
    // the Swarm-only groups answer as a Docker that is not in a swarm
    for g in ["swarm", "services", "tasks", "secrets", "configs"] {
        let (st, v) = d.api("GET", &format!("/v1.41/{g}"), None);
        assert_eq!(st, 503, "GET /{g}: {v}");
        let msg = v["message"].as_str().unwrap_or_default();
        assert!(
            msg.contains("This node is not a swarm manager"),
            "GET /{g}: {msg}"
        );
    }
    let (st, v) = d.api("GET", "/plugins", None);
    assert_eq!((st, v), (200, serde_json::json!([])));
}
