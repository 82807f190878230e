//! Answers against the Engine API's OpenAPI models (issue 13): each JSON answer of the
//! object endpoints is decoded into the model bollard-stubs generates from Docker's
//! swagger.yaml (API 1.53; a value of the wrong type fails), and encoded back: a key
//! tether sends that the model does not have (a misspelt or invented field) is lost on
//! the way and fails the test, naming the path of the key.

mod common;

use common::{Daemon, IMAGE};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

/// Keys of `sent` that `back` lacks (nulls excepted: an absent optional field), as
/// JSON paths.
fn lost(sent: &Value, back: &Value, path: &str, out: &mut Vec<String>) {
    match (sent, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = format!("{path}.{k}");
                match b.get(k) {
                    Some(w) => lost(v, w, &p, out),
                    None if v.is_null() => {}
                    None => out.push(p),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                lost(v, w, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Fields tether sends that the 1.53 models no longer list, per answer, each with its
/// reason. Paths are relative to the answer checked; array indices are left out.
///
/// Container inspect: the top-level `NetworkSettings` fields of the default bridge,
/// deprecated since Docker 1.9 and dropped from the current swagger.yaml, but Docker
/// 20.10 (API 1.41) still fills them and the SDKs and CLI templates of that generation
/// read `.NetworkSettings.IPAddress`.
const CONTAINER_LEGACY: &[&str] = &[
    ".NetworkSettings.Bridge",
    ".NetworkSettings.EndpointID",
    ".NetworkSettings.Gateway",
    ".NetworkSettings.GlobalIPv6Address",
    ".NetworkSettings.GlobalIPv6PrefixLen",
    ".NetworkSettings.HairpinMode",
    ".NetworkSettings.IPAddress",
    ".NetworkSettings.IPPrefixLen",
    ".NetworkSettings.IPv6Gateway",
    ".NetworkSettings.LinkLocalIPv6Address",
    ".NetworkSettings.LinkLocalIPv6PrefixLen",
    ".NetworkSettings.MacAddress",
];
/// Image inspect: the parent image (the classic builder's chain), in the models of
/// API ≤ 1.43 that Docker 20.10 speaks.
const IMAGE_LEGACY: &[&str] = &[".Parent"];
/// The network list: Docker 20.10's list items carry an empty `Containers` map; the
/// current list model has it only in inspect.
const NETWORKS_LEGACY: &[&str] = &["[].Containers"];
/// `/info`: the key-value store of Docker's pre-Swarm overlay networks
/// (`--cluster-store`, API ≤ 1.41); tether names its etcd store and address there.
const INFO_LEGACY: &[&str] = &[".ClusterStore", ".ClusterAdvertise"];
/// `/system/df`: the lists clients before API 1.52 read (1.52's summaries are sent too).
const DF_LEGACY: &[&str] = &[
    ".LayersSize",
    ".Images",
    ".Containers",
    ".Volumes",
    ".BuildCache",
];

/// `path` with array indices left out (`[3].Containers` -> `[].Containers`).
fn generic(path: &str) -> String {
    let mut out = String::new();
    let mut in_index = false;
    for c in path.chars() {
        match c {
            '[' => {
                in_index = true;
                out.push('[');
            }
            ']' => {
                in_index = false;
                out.push(']');
            }
            _ if in_index => {}
            c => out.push(c),
        }
    }
    out
}

/// Checks `v` (the answer of `what`) against the model `T`.
fn conforms<T: DeserializeOwned + Serialize>(what: &str, v: &Value) {
    conforms_but::<T>(what, v, &[]);
}

/// [`conforms`], with the fields of `legacy` allowed beyond the model.
fn conforms_but<T: DeserializeOwned + Serialize>(what: &str, v: &Value, legacy: &[&str]) {
    let model: T = serde_json::from_value(v.clone()).unwrap_or_else(|e| {
        panic!(
            "{what}: does not decode as {}: {e}\n{v:#}",
            std::any::type_name::<T>()
        )
    });
    let back = serde_json::to_value(&model).unwrap_or(Value::Null);
    let mut missing = Vec::new();
    lost(v, &back, "", &mut missing);
    missing.retain(|p| !legacy.contains(&generic(p).as_str()));
    assert!(
        missing.is_empty(),
        "{what}: keys the {} model does not have: {missing:?}",
        std::any::type_name::<T>()
    );
}

fn get(d: &Daemon, path: &str) -> Value {
    let (st, v) = d.api("GET", path, None);
    assert_eq!(st, 200, "GET {path}: {v}");
    v
}

fn post(d: &Daemon, path: &str, body: Option<&Value>, want: u16) -> Value {
    let (st, v) = d.api("POST", path, body);
    assert_eq!(st, want, "POST {path}: {v}");
    v
}

#[test]
fn answers_match_the_engine_api_models() {
    use bollard_stubs::models as m;
    let d = Daemon::start();
    let v = post(
        &d,
        "/networks/create",
        Some(
            &json!({"Name": "shape", "IPAM": {"Config": [{"Subnet": "10.77.0.0/24"}]}, "Labels": {"a": "b"}}),
        ),
        201,
    );
    conforms::<m::NetworkCreateResponse>("POST /networks/create", &v);
    d.ok(&["volume", "create", "shapevol"]);
    let v = post(
        &d,
        "/containers/create?name=shaped",
        Some(
            &json!({"Image": IMAGE, "Cmd": ["sleep", "600"], "Labels": {"k": "v"},
            "ExposedPorts": {"80/tcp": {}},
            "HostConfig": {"Binds": ["shapevol:/data"], "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}]}},
            "NetworkingConfig": {"EndpointsConfig": {"shape": {"Aliases": ["sh"]}}}}),
        ),
        201,
    );
    conforms::<m::ContainerCreateResponse>("POST /containers/create", &v);
    post(&d, "/containers/shaped/start", None, 204);
    d.run_d(&["--name", "other", IMAGE, "sleep", "600"]);
    d.ok(&["run", "--name", "done", IMAGE, "sh", "-c", "echo x > /f"]);

    let list = get(&d, "/containers/json?all=1");
    conforms::<Vec<m::ContainerSummary>>("GET /containers/json", &list);
    for c in ["shaped", "other", "done"] {
        conforms_but::<m::ContainerInspectResponse>(
            &format!("GET /containers/{c}/json"),
            &get(&d, &format!("/containers/{c}/json")),
            CONTAINER_LEGACY,
        );
    }
    conforms::<Vec<m::FilesystemChange>>(
        "GET /containers/done/changes",
        &get(&d, "/containers/done/changes"),
    );
    conforms::<m::ContainerWaitResponse>(
        "POST /containers/done/wait",
        &post(&d, "/containers/done/wait", None, 200),
    );
    let e = post(
        &d,
        "/containers/shaped/exec",
        Some(&json!({"Cmd": ["true"]})),
        201,
    );
    let id = e["Id"].as_str().unwrap_or_default().to_string();
    conforms::<m::ExecInspectResponse>("GET /exec/ID/json", &get(&d, &format!("/exec/{id}/json")));

    conforms::<Vec<m::ImageSummary>>("GET /images/json", &get(&d, "/images/json"));
    conforms_but::<m::ImageInspect>(
        "GET /images/IMAGE/json",
        &get(&d, &format!("/images/{IMAGE}/json")),
        IMAGE_LEGACY,
    );
    conforms::<Vec<m::ImageHistoryResponseItem>>(
        "GET /images/IMAGE/history",
        &get(&d, &format!("/images/{IMAGE}/history")),
    );
    conforms_but::<Vec<m::Network>>("GET /networks", &get(&d, "/networks"), NETWORKS_LEGACY);
    for n in ["shape", "bridge", "host", "none"] {
        conforms::<m::NetworkInspect>(
            &format!("GET /networks/{n}"),
            &get(&d, &format!("/networks/{n}")),
        );
    }
    conforms::<m::VolumeListResponse>("GET /volumes", &get(&d, "/volumes"));
    conforms::<m::Volume>("GET /volumes/shapevol", &get(&d, "/volumes/shapevol"));
    conforms_but::<m::SystemInfo>("GET /info", &get(&d, "/info"), INFO_LEGACY);
    conforms::<m::SystemVersion>("GET /version", &get(&d, "/version"));
    let df = get(&d, "/system/df");
    conforms_but::<m::SystemDataUsageResponse>("GET /system/df", &df, DF_LEGACY);
    assert!(
        df["ContainerUsage"]["TotalCount"].as_i64() >= Some(3),
        "{df}"
    );
    assert!(
        df["ContainerUsage"]["ActiveCount"].as_i64() >= Some(2),
        "{df}"
    );
    assert_eq!(df["VolumeUsage"]["ActiveCount"], json!(1), "{df}");
    // the lists older clients read, checked against the models of their items
    conforms::<Vec<m::ImageSummary>>("GET /system/df .Images", &df["Images"]);
    conforms::<Vec<m::ContainerSummary>>("GET /system/df .Containers", &df["Containers"]);
    conforms::<Vec<m::Volume>>("GET /system/df .Volumes", &df["Volumes"]);

    conforms::<m::ContainerPruneResponse>(
        "POST /containers/prune",
        &post(&d, "/containers/prune", None, 200),
    );
    conforms::<m::ImagePruneResponse>("POST /images/prune", &post(&d, "/images/prune", None, 200));
    conforms::<m::VolumePruneResponse>(
        "POST /volumes/prune",
        &post(&d, "/volumes/prune", None, 200),
    );
    conforms::<m::BuildPruneResponse>(
        "POST /build/prune",
        &post(&d, "/build/prune?all=1", None, 200),
    );
    post(&d, "/containers/shaped/stop?t=0", None, 204);
    conforms::<m::NetworkPruneResponse>(
        "POST /networks/prune",
        &post(&d, "/networks/prune", None, 200),
    );
}
