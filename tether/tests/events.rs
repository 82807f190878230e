//! The event stream (GET /events): container lifecycle, network and volume events,
//! `since`/`until` bounds and filters, as docker-compose and `docker events` read them.

mod common;

use common::{Daemon, IMAGE};
use serde_json::Value;

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn events(d: &Daemon, query: &str) -> Vec<Value> {
    let r = d.api_raw("GET", &format!("/events?{query}"), None);
    assert_eq!(r.status, 200);
    r.body
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

#[test]
fn lifecycle_events_with_bounds_and_filters() {
    let d = Daemon::start();
    let t0 = now();
    d.ok(&["network", "create", "evnet"]);
    let o = d.cli(&[
        "run",
        "--name",
        "ev",
        "--network",
        "evnet",
        IMAGE,
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(o.code, 3, "{o}");
    d.ok(&["rm", "ev"]);
    let t1 = now() + 0.5;
    let all = events(&d, &format!("since={t0}&until={t1}"));
    let actions: Vec<String> = all
        .iter()
        .filter(|e| e["Type"] == "container" && e["Actor"]["Attributes"]["name"] == "ev")
        .map(|e| e["Action"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        actions,
        vec!["create", "start", "die", "destroy"],
        "{all:?}"
    );
    let die = all
        .iter()
        .find(|e| e["Action"] == "die")
        .cloned()
        .unwrap_or_default();
    assert_eq!(die["Actor"]["Attributes"]["exitCode"], "3");
    assert_eq!(die["status"], "die", "legacy fields for old clients");
    assert!(all.iter().any(|e| e["Type"] == "network"
        && e["Action"] == "create"
        && e["Actor"]["Attributes"]["name"] == "evnet"));
    // filters: only network events
    let nets = events(
        &d,
        &format!("since={t0}&until={t1}&filters=%7B%22type%22%3A%5B%22network%22%5D%7D"),
    );
    assert!(
        !nets.is_empty() && nets.iter().all(|e| e["Type"] == "network"),
        "{nets:?}"
    );
    // a window before anything happened is empty
    assert!(events(&d, &format!("since={}&until={}", t0 - 10.0, t0 - 5.0)).is_empty());
}
