//! Images made from containers and image housekeeping, against the real daemon:
//! `commit` (changes, deletions, opaque directories, `--change`, pause), `history`,
//! `save` -> `rmi` -> `load` with identical IDs (tether's CLI, the Engine API and the real
//! docker CLI on the test daemon's socket), `image prune` and `system df`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{run_with_limit, Daemon, Output, COMMAND_LIMIT};
use serde_json::Value;

fn image_json(d: &Daemon, name: &str) -> Value {
    let (st, v) = d.api("GET", &format!("/images/{name}/json"), None);
    assert_eq!(st, 200, "image inspect {name}: {v}");
    v
}

fn is_image_id(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Entries of the image store's tmp dir (must be empty between operations).
fn store_tmp(d: &Daemon) -> Vec<String> {
    std::fs::read_dir(d.root().join("image/tmp"))
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Entries of a tar file, by `tar -tf`.
fn tar_list(p: &Path) -> Vec<String> {
    let mut c = Command::new("tar");
    c.arg("-tf").arg(p);
    let o = run_with_limit(c, COMMAND_LIMIT);
    assert!(o.success(), "tar -tf {}: {o}", p.display());
    o.stdout.lines().map(str::to_string).collect()
}

/// A running container with files added, changed and deleted, and a directory
/// (`/usr/sbin`, full of busybox links in tbox) replaced by a new one (opaque).
fn changed_container(d: &Daemon, name: &str) {
    d.run_d(&["--name", name, "tbox", "sleep", "1000"]);
    let o = d.sh(
        name,
        "set -e; mkdir -p /data/sub; echo hello > /data/sub/f; chmod 640 /data/sub/f; \
         chown 65534:65534 /data/sub/f; ln -s /data/sub/f /link; rm /etc/nsswitch.conf; \
         rm -rf /usr/sbin; mkdir /usr/sbin; echo only > /usr/sbin/only; \
         echo changed > /etc/group",
    );
    assert!(o.success(), "changing the container: {o}");
}

#[test]
fn commit_keeps_changes_deletions_and_config() {
    let d = Daemon::start();
    changed_container(&d, "work");
    let tbox = image_json(&d, "tbox");

    let id = d.ok(&[
        "commit",
        "-a",
        "Ann <ann@example.com>",
        "-m",
        "first snapshot",
        "-c",
        "CMD [\"cat\", \"/data/sub/f\"]",
        "-c",
        "ENV FOO=bar",
        "-c",
        "EXPOSE 8080",
        "-c",
        "VOLUME /vol",
        "work",
        "snap:1",
    ]);
    assert!(is_image_id(&id), "commit printed {id:?}");
    // Paused only while its changes were read: it still runs.
    assert_eq!(d.inspect("work")["State"]["Status"], "running");
    assert_eq!(d.sh("work", "echo alive").out(), "alive");

    let img = image_json(&d, "snap:1");
    assert_eq!(img["Id"], id.as_str());
    assert_eq!(img["Parent"], tbox["Id"]);
    assert_eq!(img["Author"], "Ann <ann@example.com>");
    assert_eq!(img["Comment"], "first snapshot");
    let layers = img["RootFS"]["Layers"].as_array().expect("layers").clone();
    assert_eq!(layers.len(), 2, "{img}");
    assert_eq!(layers[0], tbox["RootFS"]["Layers"][0]);
    assert_eq!(img["RootFS"]["Type"], "layers");
    let cfg = &img["Config"];
    assert_eq!(cfg["Cmd"], serde_json::json!(["cat", "/data/sub/f"]));
    let env: Vec<&str> = cfg["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(env.contains(&"FOO=bar"), "{env:?}");
    assert!(env.iter().any(|e| e.starts_with("PATH=")), "{env:?}");
    assert!(
        cfg["ExposedPorts"].get("8080/tcp").is_some(),
        "{}",
        cfg["ExposedPorts"]
    );
    assert!(cfg["Volumes"].get("/vol").is_some(), "{}", cfg["Volumes"]);
    assert!(store_tmp(&d).is_empty(), "{:?}", store_tmp(&d));

    // The new image has the changes: CMD, added/changed/deleted files, the opaque dir.
    assert_eq!(d.ok(&["run", "--rm", "snap:1"]), "hello");
    let out = d.ok(&[
        "run",
        "--rm",
        "snap:1",
        "sh",
        "-c",
        "test -e /etc/nsswitch.conf && echo nsswitch-still-there; ls /usr/sbin; \
         cat /etc/group; echo $FOO; readlink /link; stat -c '%a %u:%g' /data/sub/f; \
         test -x /bin/busybox && echo lower-kept",
    ]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        vec![
            "only",
            "changed",
            "bar",
            "/data/sub/f",
            "640 65534:65534",
            "lower-kept"
        ],
        "{out}"
    );
    // The image's volume is an anonymous volume of its containers.
    let c = d.run_d(&["snap:1", "sleep", "1000"]);
    let mounts = d.inspect(&c)["Mounts"].clone();
    assert!(
        mounts
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["Destination"] == "/vol" && m["Type"] == "volume"),
        "{mounts}"
    );

    // History: the commit on top of the import, with the local parent's ID.
    let ids = d.ok(&["history", "-q", "--no-trunc", "snap:1"]);
    assert_eq!(
        ids.lines().collect::<Vec<_>>(),
        vec![id.as_str(), tbox["Id"].as_str().unwrap()]
    );
    let table = d.ok(&["history", "snap:1"]);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("IMAGE")
            && lines[0].contains("CREATED BY")
            && lines[0].contains("COMMENT"),
        "{table}"
    );
    assert!(lines[1].starts_with(&id[7..19]), "{table}");
    assert!(
        lines[1].contains("sleep 1000") && lines[1].contains("first snapshot"),
        "{table}"
    );
    assert!(lines[2].contains("Imported from -"), "{table}");
    let f = d.ok(&[
        "history",
        "--format",
        "{{.ID}}|{{.CreatedBy}}|{{.Size}}",
        "--human=false",
        "snap:1",
    ]);
    let first: Vec<&str> = f.lines().next().unwrap().split('|').collect();
    assert_eq!(first[0], &id[7..19]);
    assert_eq!(first[1], "sleep 1000");
    let size: u64 = first[2].parse().expect("a byte count with -H=false");
    // hello\n + only\n + changed\n
    assert_eq!(size, 6 + 5 + 8, "{f}");
    let (st, h) = d.api("GET", "/images/snap:1/history", None);
    assert_eq!(st, 200, "{h}");
    assert_eq!(h[0]["Id"], id.as_str());
    assert_eq!(h[0]["Tags"], serde_json::json!(["snap:1"]));
    assert_eq!(h[0]["CreatedBy"], "sleep 1000");
    assert_eq!(h[0]["Size"], 19);
    assert!(h[0]["Created"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(h[1]["Tags"], serde_json::json!(["tbox:latest"]));

    // A container that never ran: no changes, no new layer, an empty_layer entry.
    d.ok(&["create", "--name", "idle", "tbox", "true"]);
    let idle = d.ok(&["commit", "idle"]);
    let img = image_json(&d, &idle);
    assert_eq!(img["RootFS"]["Layers"], tbox["RootFS"]["Layers"]);
    assert_eq!(img["RepoTags"], serde_json::json!([]));
    let (_, h) = d.api("GET", &format!("/images/{idle}/history"), None);
    assert_eq!(h.as_array().unwrap().len(), 2, "{h}");
    assert_eq!(h[0]["Size"], 0);
    // --pause=false and the API's defaults.
    let (st, v) = d.api(
        "POST",
        "/commit?container=work&repo=snap&tag=2&pause=0",
        None,
    );
    assert_eq!(st, 201, "{v}");
    assert!(is_image_id(v["Id"].as_str().unwrap_or("")), "{v}");
    assert_eq!(image_json(&d, "snap:2")["Id"], v["Id"]);

    // Bad input: named, and nothing left behind.
    let o = d.fails(&["commit", "nosuch", "x:1"]);
    assert!(o.stderr.contains("No such container: nosuch"), "{o}");
    let o = d.fails(&["commit", "work", "Bad Name"]);
    assert!(o.stderr.contains("Bad Name"), "{o}");
    let o = d.fails(&["commit", "-c", "FROM other", "work", "x:2"]);
    assert!(
        o.stderr.contains("FROM") && o.stderr.contains("VOLUME"),
        "the error names the bad instruction and the valid ones: {o}"
    );
    let (st, v) = d.api("POST", "/commit?repo=x", None);
    assert_eq!(st, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("container"), "{v}");
    let (st, v) = d.api("POST", "/commit?container=work&changes=BOGUS%20x", None);
    assert_eq!(st, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("BOGUS"), "{v}");
    d.fails(&["image", "inspect", "x:1"]);
    assert!(store_tmp(&d).is_empty(), "{:?}", store_tmp(&d));
}

/// The docker CLI, when one is installed.
fn docker_cli() -> Option<&'static str> {
    ["/usr/local/bin/docker", "/usr/bin/docker"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

fn docker(d: &Daemon, bin: &str, args: &[&str]) -> Output {
    let cfg = d.dir().join("docker-cli-config");
    std::fs::create_dir_all(&cfg).expect("docker config dir");
    let mut c = Command::new(bin);
    c.args(args)
        .env("DOCKER_HOST", &d.host)
        .env("DOCKER_CONFIG", &cfg)
        .env("DOCKER_CLI_HINTS", "false");
    run_with_limit(c, COMMAND_LIMIT)
}

#[test]
fn save_rmi_load_round_trip_keeps_ids() {
    let d = Daemon::start();
    changed_container(&d, "work");
    let snap = d.ok(&["commit", "-m", "saved", "work", "snap:1"]);
    d.ok(&["rm", "-f", "work"]);
    d.ok(&["tag", "tbox", "tbox:extra"]);
    let tbox_id = image_json(&d, "tbox")["Id"].clone();
    let snap_layers = image_json(&d, "snap:1")["RootFS"]["Layers"].clone();

    let file = d.dir().join("images.tar");
    let file_s = file.display().to_string();
    d.ok(&["save", "-o", &file_s, "snap:1", "tbox"]);
    let entries = tar_list(&file);
    for want in ["manifest.json", "index.json", "oci-layout", "repositories"] {
        assert!(entries.iter().any(|e| e == want), "{want} in {entries:?}");
    }
    let blobs = entries
        .iter()
        .filter(|e| e.starts_with("blobs/sha256/") && e.len() > 13)
        .count();
    // 2 layers + 2 configs + 2 manifests
    assert_eq!(blobs, 6, "{entries:?}");

    // Remove them, load them back: the same IDs, tags and layers.
    d.ok(&["rmi", "snap:1"]);
    assert!(d
        .fails(&["image", "inspect", "snap:1"])
        .stderr
        .contains("No such image"));
    let out = d.ok(&["load", "-i", &file_s]);
    assert!(out.contains("Loaded image: snap:1"), "{out}");
    assert!(out.contains("Loaded image: tbox:latest"), "{out}");
    assert!(out.contains("Loaded image: tbox:extra"), "{out}");
    let img = image_json(&d, "snap:1");
    assert_eq!(img["Id"], snap.as_str());
    assert_eq!(img["RootFS"]["Layers"], snap_layers);
    assert_eq!(image_json(&d, "tbox:extra")["Id"], tbox_id);
    assert_eq!(d.ok(&["run", "--rm", "snap:1", "ls", "/usr/sbin"]), "only");

    // To stdout, and through the API; unknown names are refused before any byte.
    let mut c = Command::new("sh");
    c.arg("-c").arg(format!(
        "{} -H {} save snap:1 > {}/stdout.tar",
        common::TETHER,
        d.host,
        d.dir().display()
    ));
    let o = run_with_limit(c, COMMAND_LIMIT);
    assert!(o.success(), "save to stdout: {o}");
    assert!(tar_list(&d.dir().join("stdout.tar")).contains(&"manifest.json".to_string()));
    let r = d.api_raw("GET", "/images/snap:1/get", None);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/x-tar"));
    let (st, v) = d.api("GET", "/images/get?names=snap:1&names=nosuch:9", None);
    assert_eq!(st, 404, "{v}");
    assert!(v["message"].as_str().unwrap().contains("nosuch:9"), "{v}");
    let missing = d.dir().join("never.tar");
    let o = d.fails(&["save", "-o", &missing.display().to_string(), "nosuch"]);
    assert!(o.stderr.contains("No such image"), "{o}");
    assert!(!missing.exists());
    assert!(
        std::fs::read_dir(d.dir())
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().contains(".tmp-")),
        "a failed save left a temp file"
    );
    assert!(store_tmp(&d).is_empty(), "{:?}", store_tmp(&d));

    // The real docker CLI on the test daemon's socket: save, rmi, load, history, commit.
    let Some(bin) = docker_cli() else {
        eprintln!("SKIPPED the docker CLI part: no docker CLI installed");
        return;
    };
    let dfile = d.dir().join("docker-save.tar");
    let dfile_s = dfile.display().to_string();
    let o = docker(&d, bin, &["save", "-o", &dfile_s, "snap:1"]);
    assert!(o.success(), "docker save: {o}");
    let o = docker(&d, bin, &["rmi", "snap:1"]);
    assert!(o.success(), "docker rmi: {o}");
    let o = docker(&d, bin, &["load", "-i", &dfile_s]);
    assert!(o.success(), "docker load: {o}");
    assert!(o.out().contains("Loaded image: snap:1"), "{o}");
    assert_eq!(image_json(&d, "snap:1")["Id"], snap.as_str());
    let o = docker(&d, bin, &["history", "--no-trunc", "-q", "snap:1"]);
    assert!(o.success(), "docker history: {o}");
    assert_eq!(o.out().lines().next(), Some(snap.as_str()), "{o}");
    let o = docker(
        &d,
        bin,
        &[
            "image",
            "inspect",
            "-f",
            "[{{.Parent}}] {{len .RootFS.Layers}}",
            "snap:1",
        ],
    );
    assert!(o.success(), "docker image inspect: {o}");
    // Loaded images have no local parent (as with Docker).
    assert_eq!(o.out(), "[] 2", "{o}");
    d.run_d(&["--name", "w2", "tbox", "sleep", "1000"]);
    assert!(d.sh("w2", "echo via-docker > /marker").success());
    let o = docker(
        &d,
        bin,
        &[
            "commit",
            "-c",
            "CMD [\"cat\", \"/marker\"]",
            "w2",
            "fromdocker:1",
        ],
    );
    assert!(o.success(), "docker commit: {o}");
    assert!(is_image_id(o.out()), "{o}");
    assert_eq!(d.ok(&["run", "--rm", "fromdocker:1"]), "via-docker");
}

#[test]
fn image_prune_and_system_df() {
    let d = Daemon::start();
    d.run_d(&["--name", "work", "tbox", "sleep", "1000"]);
    // 100000 bytes written by the container.
    assert!(d
        .sh("work", "head -c 100000 /dev/zero > /big && echo x > /small")
        .success());
    let a = d.ok(&["commit", "work", "a:1"]);
    let dangling = d.ok(&["commit", "-c", "LABEL kind=dangling", "work"]);
    let used = d.ok(&["commit", "-c", "LABEL kind=used", "work"]);
    let used_c = d.run_d(&[&used, "sleep", "1000"]);
    // An intermediate image: untagged, with a child.
    d.ok(&["create", "--name", "mid", "a:1", "true"]);
    let mid = d.ok(&["commit", "mid"]);
    d.ok(&["rm", "mid"]);
    d.ok(&["create", "--name", "top", &mid, "true"]);
    d.ok(&["commit", "top", "top:1"]);
    d.ok(&["rm", "top"]);
    let listed = d.ok(&["images", "-q", "--no-trunc"]);
    assert!(
        !listed.contains(&mid),
        "intermediate images are hidden: {listed}"
    );
    assert!(d.ok(&["images", "-a", "-q", "--no-trunc"]).contains(&mid));

    // system df: layer sizes, shared sizes, container and volume usage.
    let v_c = d.run_d(&["-v", "data:/data", "tbox", "sleep", "1000"]);
    assert!(d.sh(&v_c, "head -c 5000 /dev/zero > /data/f").success());
    let (st, df) = d.api("GET", "/system/df", None);
    assert_eq!(st, 200, "{df}");
    let tbox = image_json(&d, "tbox");
    let tbox_size = tbox["Size"].as_u64().unwrap();
    // The commits share the one layer `work` made (100000 + 2 bytes).
    assert_eq!(
        df["LayersSize"].as_u64().unwrap(),
        tbox_size + 100_002,
        "{df}"
    );
    let img = |id: &str| -> Value {
        df["Images"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["Id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not in {df}"))
    };
    assert_eq!(img(tbox["Id"].as_str().unwrap())["Containers"], 2);
    assert_eq!(img(&used)["Containers"], 1);
    assert_eq!(img(&a)["Containers"], 0);
    assert_eq!(img(&a)["SharedSize"].as_u64().unwrap(), tbox_size + 100_002);
    assert_eq!(img(&a)["Size"].as_u64().unwrap(), tbox_size + 100_002);
    let ctr = |id: &str| -> Value {
        df["Containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["Id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not in {df}"))
    };
    let work_id = d.inspect("work")["Id"].as_str().unwrap().to_string();
    let rw = ctr(&work_id)["SizeRw"].as_u64().unwrap();
    assert!((100_002..110_000).contains(&rw), "SizeRw {rw}");
    assert_eq!(ctr(&used_c)["SizeRw"].as_u64().unwrap(), 0);
    let vol = df["Volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["Name"] == "data")
        .cloned()
        .expect("volume data");
    assert_eq!(vol["UsageData"]["Size"], 5000);
    assert_eq!(vol["UsageData"]["RefCount"], 1);
    let out = d.ok(&["system", "df"]);
    let row = |t: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.starts_with(t))
            .unwrap_or_else(|| panic!("{t} in {out}"))[t.len()..]
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    assert!(out.starts_with("TYPE"), "{out}");
    let n_images = df["Images"].as_array().unwrap().len().to_string();
    assert_eq!(row("Images")[..2], [n_images, "2".to_string()], "{out}");
    assert_eq!(row("Containers")[..2], ["3", "3"], "{out}");
    assert_eq!(row("Local Volumes")[..3], ["1", "1", "5kB"], "{out}");
    assert!(out.contains("Build Cache"), "{out}");
    let verbose = d.ok(&["system", "df", "-v"]);
    for want in [
        "Images space usage:",
        "Containers space usage:",
        "Local Volumes space usage:",
        "data",
    ] {
        assert!(verbose.contains(want), "{want} in {verbose}");
    }

    // The docker CLI reads the same numbers.
    if let Some(bin) = docker_cli() {
        let o = docker(&d, bin, &["system", "df"]);
        assert!(o.success(), "docker system df: {o}");
        let line = o
            .out()
            .lines()
            .find(|l| l.starts_with("Local Volumes"))
            .unwrap_or_default()
            .to_string();
        assert_eq!(
            line.split_whitespace().collect::<Vec<_>>()[2..5],
            ["1", "1", "5kB"],
            "{o}"
        );
        let o = docker(&d, bin, &["system", "df", "-v"]);
        assert!(o.success() && o.out().contains("Images space usage"), "{o}");
        let o = docker(&d, bin, &["history", "a:1"]);
        assert!(o.success() && o.out().contains("sleep 1000"), "{o}");
    }

    // Dangling prune: only the untagged leaf nobody uses.
    let out = d.ok(&["image", "prune", "-f"]);
    assert!(out.contains(&format!("deleted: {dangling}")), "{out}");
    assert!(out.contains("Total reclaimed space:"), "{out}");
    for keep in [&a, &used, &mid] {
        assert!(!out.contains(keep.as_str()), "{keep} pruned: {out}");
        image_json(&d, keep);
    }
    // Filters: nothing is older than an hour; a label filter narrows -a.
    let out = d.ok(&["image", "prune", "-a", "-f", "--filter", "until=1h"]);
    assert!(!out.contains("deleted:"), "{out}");
    let (st, v) = d.api(
        "POST",
        "/images/prune?filters=%7B%22bogus%22%3A%5B%22x%22%5D%7D",
        None,
    );
    assert_eq!(st, 400, "{v}");
    assert!(v["message"].as_str().unwrap().contains("bogus"), "{v}");
    // -a: every image no container uses; parents of kept images stay.
    let (st, v) = d.api(
        "POST",
        "/images/prune?filters=%7B%22dangling%22%3A%5B%22false%22%5D%7D",
        None,
    );
    assert_eq!(st, 200, "{v}");
    let deleted: Vec<&str> = v["ImagesDeleted"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["Deleted"].as_str())
        .collect();
    let untagged: Vec<&str> = v["ImagesDeleted"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["Untagged"].as_str())
        .collect();
    assert!(
        untagged.contains(&"a:1") && untagged.contains(&"top:1"),
        "{v}"
    );
    assert!(
        deleted.contains(&a.as_str()) && deleted.contains(&mid.as_str()),
        "{v}"
    );
    assert!(!deleted.contains(&used.as_str()), "{v}");
    assert!(!deleted.contains(&tbox["Id"].as_str().unwrap()), "{v}");
    image_json(&d, &used);
    image_json(&d, "tbox");
    assert_eq!(
        v["SpaceReclaimed"], 0,
        "the layers stay: `used` shares them"
    );
    // Now the container of `used` goes: its image is pruned and the layer reclaimed
    // (through the docker CLI when there is one).
    d.ok(&["rm", "-f", &used_c]);
    let out = match docker_cli() {
        Some(bin) => {
            let o = docker(&d, bin, &["image", "prune", "-a", "-f"]);
            assert!(o.success(), "docker image prune: {o}");
            o.out().to_string()
        }
        None => d.ok(&["image", "prune", "-a", "-f"]),
    };
    assert!(out.contains(&format!("deleted: {used}")), "{out}");
    assert!(out.contains("Total reclaimed space: 100kB"), "{out}");
    image_json(&d, "tbox");
    assert!(store_tmp(&d).is_empty(), "{:?}", store_tmp(&d));
}

/// An image's HEALTHCHECK (here from `commit --change`) runs for its containers; the
/// container's own options override parts of it; `--no-healthcheck` turns it off.
#[test]
fn image_healthcheck_applies_to_containers() {
    let d = Daemon::start();
    d.run_d(&["--name", "work", "tbox", "sleep", "1000"]);
    d.ok(&[
        "commit",
        "-c",
        "HEALTHCHECK --interval=1s --timeout=5s --retries=1 CMD test -e /healthy",
        "work",
        "hc:1",
    ]);
    let hc = &image_json(&d, "hc:1")["Config"]["Healthcheck"];
    assert_eq!(
        hc["Test"],
        serde_json::json!(["CMD-SHELL", "test -e /healthy"]),
        "{hc}"
    );
    assert_eq!(hc["Interval"], 1_000_000_000i64, "{hc}");
    let c = d.run_d(&["hc:1", "sleep", "1000"]);
    let status = |c: &str| d.inspect(c)["State"]["Health"]["Status"].clone();
    common::wait_until(
        "the image's healthcheck to fail",
        std::time::Duration::from_secs(20),
        || status(&c) == "unhealthy",
    );
    assert!(d.sh(&c, "touch /healthy").success());
    common::wait_until(
        "the image's healthcheck to pass",
        std::time::Duration::from_secs(20),
        || status(&c) == "healthy",
    );
    // The container's interval, the image's test.
    let c2 = d.run_d(&["--health-interval", "2s", "hc:1", "sleep", "1000"]);
    let h = d.inspect(&c2)["Config"]["Healthcheck"].clone();
    assert_eq!(h["Test"], hc["Test"], "{h}");
    assert_eq!(h["Interval"], 2_000_000_000i64, "{h}");
    assert_eq!(h["Retries"], 1, "{h}");
    let c3 = d.run_d(&["--no-healthcheck", "hc:1", "sleep", "1000"]);
    assert_eq!(
        d.inspect(&c3)["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["NONE"])
    );
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert!(
        d.inspect(&c3)["State"]["Health"].is_null(),
        "{}",
        d.inspect(&c3)["State"]
    );
}
