//! Registries: push, pull (by tag, by digest, from a manifest list), the implicit
//! pull of `run`, login against htpasswd basic auth, and the errors, against a REAL
//! registry: Debian's `docker-registry` (Docker Distribution 2.8), started by each test
//! inside the daemon's network namespace on 127.0.0.1 with storage in the test's
//! temporary directory. Nothing here reaches anything outside that namespace.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{in_netns, run_with_limit, wait_until, Daemon, Output, COMMAND_LIMIT, TETHER};
use serde_json::{json, Value};

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A `docker-registry serve` in the daemon's network namespace, killed on drop.
struct Registry {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Registry {
    /// Starts a registry on 127.0.0.1:`port` inside `d`'s network namespace, storage
    /// under the test's directory; with `user` = (name, password), behind htpasswd
    /// basic auth (bcrypt line made by `htpasswd -Bbn` from apache2-utils).
    fn start(d: &Daemon, port: u16, user: Option<(&str, &str)>) -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "the registry tests need Debian's docker-registry: apt-get install docker-registry"
        );
        let dir = d.dir().join(format!("registry-{port}"));
        std::fs::create_dir_all(dir.join("storage")).expect("registry storage dir");
        let mut auth = String::new();
        if let Some((u, p)) = user {
            let mut c = Command::new("htpasswd");
            c.args(["-Bbn", u, p]);
            let o = run_with_limit(c, COMMAND_LIMIT);
            assert!(o.success(), "htpasswd (apt-get install apache2-utils): {o}");
            let path = dir.join("htpasswd");
            std::fs::write(&path, o.stdout.trim()).expect("write htpasswd");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: tether-test\n    path: {}\n",
                path.display()
            );
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.join("storage").display()
        );
        let cfg_path = dir.join("config.yml");
        std::fs::write(&cfg_path, config).expect("write registry config");
        let log = std::fs::File::create(dir.join("log")).expect("registry log");
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net={}", d.netns().display()))
            .arg("--")
            .arg(REGISTRY_BIN)
            .arg("serve")
            .arg(&cfg_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log);
        // SAFETY: prctl(2) is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start docker-registry");
        let r = Registry { child, dir, port };
        let ns = d.netns();
        wait_until("the registry to listen", Duration::from_secs(20), || {
            let ns = ns.clone();
            in_netns(&ns, move || TcpStream::connect(("127.0.0.1", port)).is_ok())
        });
        r
    }

    /// `127.0.0.1:PORT`.
    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry's log, for failure messages.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// The blob file of `digest` in the registry's filesystem storage.
    fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .join("storage/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP/1.1 request to the registry from inside the daemon's namespace.
/// Returns the status, the headers (lower-cased names) and the body.
fn registry_http(
    d: &Daemon,
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let mut raw = req.into_bytes();
    raw.extend_from_slice(body);
    let ns = d.netns();
    let resp = in_netns(&ns, move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the registry");
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        s.write_all(&raw).expect("send to the registry");
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        out
    });
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response head");
    let head = String::from_utf8_lossy(&resp[..split]).to_string();
    let body = resp[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("an HTTP status");
    let hdrs = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    (status, hdrs, body)
}

/// `tether ARGS` with the docker config directory `cfg` (for login/logout/push/pull).
/// `stdin`, when given, is fed from a file (through `sh -c 'exec ... < FILE'`, as
/// [`run_with_limit`] closes stdin).
fn cli_with_config(d: &Daemon, cfg: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = match stdin {
        None => Command::new(TETHER),
        Some(input) => {
            std::fs::create_dir_all(cfg).expect("config dir");
            let path = d.dir().join("cli-stdin");
            std::fs::write(&path, input).expect("stdin file");
            let mut c = Command::new("sh");
            c.args(["-c", "exec \"$0\" \"$@\" < \"$CLI_STDIN\"", TETHER])
                .env("CLI_STDIN", &path);
            c
        }
    };
    cmd.args(["-H", &d.host])
        .args(args)
        .env("NO_COLOR", "1")
        .env("DOCKER_CONFIG", cfg);
    run_with_limit(cmd, COMMAND_LIMIT)
}

fn image_id(d: &Daemon, name: &str) -> String {
    let (st, v) = d.api("GET", &format!("/images/{name}/json"), None);
    assert_eq!(st, 200, "inspect {name}: {v}");
    v["Id"].as_str().unwrap_or_default().to_string()
}

fn image_json(d: &Daemon, name: &str) -> Value {
    let (st, v) = d.api("GET", &format!("/images/{name}/json"), None);
    assert_eq!(st, 200, "inspect {name}: {v}");
    v
}

/// The `DIGEST` of the `TAG: digest: DIGEST size: N` line of a push.
fn pushed_digest(out: &str) -> String {
    out.lines()
        .find_map(|l| l.split("digest: ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no digest line in the push output:\n{out}"))
        .to_string()
}

/// Layer directories and staging entries of the daemon's image store.
fn store_entries(d: &Daemon) -> (Vec<String>, Vec<String>) {
    let list = |p: PathBuf| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&p)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let img = d.root().join("image");
    (list(img.join("layers")), list(img.join("tmp")))
}

/// Tags tbox as `HOST/tbox:TAG` and pushes it; returns the manifest digest.
fn push_tbox(d: &Daemon, reg: &Registry, tag: &str) -> String {
    let name = format!("{}/tbox:{tag}", reg.host());
    d.ok(&["tag", "tbox", &name]);
    let o = d.cli(&["push", &name]);
    assert!(
        o.success(),
        "push {name}: {o}\nregistry log:\n{}",
        reg.log()
    );
    let out = o.out().to_string();
    assert!(
        out.contains(&format!(
            "The push refers to repository [{}/tbox]",
            reg.host()
        )),
        "{out}"
    );
    assert!(
        out.contains("Pushed") || out.contains("Layer already exists"),
        "{out}"
    );
    assert!(out.contains(&format!("{tag}: digest: sha256:")), "{out}");
    pushed_digest(&out)
}

#[test]
fn push_rmi_pull_by_tag_and_digest_run() {
    let d = Daemon::start();
    let reg = Registry::start(&d, 5000, None);
    let local = image_json(&d, "tbox");
    let digest = push_tbox(&d, &reg, "1");
    let name = "127.0.0.1:5000/tbox:1";

    // The registry holds what was pushed: the tag resolves to the same manifest digest,
    // a Docker v2 schema 2 manifest whose config is the image's config (its ID).
    let (st, hdrs, body) = registry_http(
        &d,
        reg.port,
        "GET",
        "/v2/tbox/manifests/1",
        &[(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )],
        b"",
    );
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let got = hdrs
        .iter()
        .find(|(k, _)| k == "docker-content-digest")
        .map(|(_, v)| v.clone());
    assert_eq!(got.as_deref(), Some(digest.as_str()));
    let m: Value = serde_json::from_slice(&body).expect("manifest JSON");
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    assert_eq!(m["config"]["digest"], local["Id"]);

    // Remove every local name: the image and its layers are gone.
    d.ok(&["rmi", name]);
    d.ok(&["rmi", "tbox"]);
    assert_eq!(d.ok(&["images", "-q"]), "");
    let (layers, tmp) = store_entries(&d);
    assert!(layers.is_empty() && tmp.is_empty(), "{layers:?} {tmp:?}");

    // Pull by tag: progress lines as docker prints them, the same image ID and layers.
    let t0 = Instant::now();
    let o = d.cli(&["pull", name]);
    let took = t0.elapsed();
    assert!(o.success(), "pull: {o}\nregistry log:\n{}", reg.log());
    let out = o.out();
    eprintln!("pull of {name} from the loopback registry took {took:?}");
    for want in [
        "1: Pulling from tbox",
        "Pulling fs layer",
        "Download complete",
        "Pull complete",
        &format!("Digest: {digest}"),
        &format!("Status: Downloaded newer image for {name}"),
    ] {
        assert!(out.contains(want), "pull output lacks {want:?}:\n{out}");
    }
    assert_eq!(out.lines().last(), Some(name), "{out}");
    let pulled = image_json(&d, name);
    assert_eq!(pulled["Id"], local["Id"]);
    assert_eq!(pulled["RootFS"]["Layers"], local["RootFS"]["Layers"]);
    let repo_digest = format!("127.0.0.1:5000/tbox@{digest}");
    assert_eq!(pulled["RepoDigests"], json!([repo_digest]));

    // Again: nothing fetched.
    let out = d.ok(&["pull", name]);
    assert!(out.contains("Already exists"), "{out}");
    assert!(
        out.contains(&format!("Status: Image is up to date for {name}")),
        "{out}"
    );

    // It runs.
    assert_eq!(
        d.ok(&["run", "--rm", name, "echo", "from-registry"]),
        "from-registry"
    );

    // By digest, after removing it again.
    d.ok(&["rmi", name]);
    assert_eq!(d.ok(&["images", "-q"]), "");
    let out = d.ok(&["pull", "-q", &repo_digest]);
    assert_eq!(out, repo_digest);
    assert_eq!(
        image_id(&d, &repo_digest),
        local["Id"].as_str().unwrap_or("-")
    );
    assert_eq!(
        d.ok(&["run", "--rm", &repo_digest, "echo", "pinned"]),
        "pinned"
    );

    // Pulls and pushes are image events.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|t| t.as_secs() + 1)
        .unwrap_or(0);
    let r = d.api_raw(
        "GET",
        &format!("/events?since=0&until={now}&filters=%7B%22type%22%3A%5B%22image%22%5D%7D"),
        None,
    );
    assert_eq!(r.status, 200);
    let actions: Vec<String> = r
        .body
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["Actor"]["ID"] == json!(name) || e["id"] == json!(name))
        .filter_map(|e| e["Action"].as_str().map(str::to_string))
        .collect();
    assert!(
        actions.contains(&"push".to_string()) && actions.contains(&"pull".to_string()),
        "{}",
        r.body
    );

    // GET /distribution/{name}/json names the same manifest.
    let (st, v) = d.api("GET", "/distribution/127.0.0.1:5000/tbox:1/json", None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["Descriptor"]["digest"], json!(digest));
    assert_eq!(v["Platforms"][0]["os"], "linux");
}

#[test]
fn unknown_tag_unreachable_registry_and_corrupt_blob_leave_nothing() {
    let d = Daemon::start();
    let reg = Registry::start(&d, 5000, None);
    let digest = push_tbox(&d, &reg, "1");
    let before = d.ok(&["images", "-q", "--no-trunc"]);
    let (layers_before, _) = store_entries(&d);

    // An unknown tag: one line naming the reference and the registry, nothing stored.
    let o = d.fails(&["pull", "127.0.0.1:5000/tbox:nope"]);
    let err = o.stderr.trim();
    assert!(
        err.contains("127.0.0.1:5000/tbox:nope") && err.contains("registry 127.0.0.1:5000"),
        "{o}"
    );
    assert!(err.contains("manifest unknown"), "{o}");
    assert_eq!(err.lines().count(), 1, "{o}");
    // The API answers that before any progress: 404 with a JSON message.
    let (st, v) = d.api(
        "POST",
        "/images/create?fromImage=127.0.0.1:5000/tbox&tag=nope",
        None,
    );
    assert_eq!(st, 404, "{v}");
    assert!(
        v["message"].as_str().unwrap_or("").contains("tbox:nope"),
        "{v}"
    );
    // An unknown repository.
    let o = d.fails(&["pull", "127.0.0.1:5000/nosuch/repo:1"]);
    assert!(o.stderr.contains("127.0.0.1:5000/nosuch/repo:1"), "{o}");

    // Nobody listens on 5999.
    let o = d.fails(&["pull", "127.0.0.1:5999/tbox:1"]);
    assert!(
        o.stderr.contains("registry 127.0.0.1:5999") && o.stderr.contains("cannot reach"),
        "{o}"
    );

    assert_eq!(d.ok(&["images", "-q", "--no-trunc"]), before);
    let (layers, tmp) = store_entries(&d);
    assert_eq!(layers, layers_before);
    assert!(tmp.is_empty(), "{tmp:?}");

    // A blob whose bytes no longer match its digest is refused, and nothing is kept.
    d.ok(&["rmi", "127.0.0.1:5000/tbox:1"]);
    d.ok(&["rmi", "tbox"]);
    let (st, _, body) = registry_http(
        &d,
        reg.port,
        "GET",
        "/v2/tbox/manifests/1",
        &[(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )],
        b"",
    );
    assert_eq!(st, 200);
    let m: Value = serde_json::from_slice(&body).expect("manifest JSON");
    let layer = m["layers"][0]["digest"]
        .as_str()
        .expect("a layer")
        .to_string();
    let blob = reg.blob_path(&layer);
    let mut bytes = std::fs::read(&blob).expect("the registry's layer blob");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&blob, &bytes).expect("corrupt the blob");
    let o = d.fails(&["pull", "127.0.0.1:5000/tbox:1"]);
    assert!(
        o.stderr.contains(&layer[..19]) || o.all().contains("verification failed"),
        "{o}"
    );
    assert!(o.stderr.contains("127.0.0.1:5000"), "{o}");
    assert_eq!(d.ok(&["images", "-q"]), "");
    let (layers, tmp) = store_entries(&d);
    assert!(layers.is_empty() && tmp.is_empty(), "{layers:?} {tmp:?}");
    let _ = digest;
}

#[test]
fn run_pulls_a_missing_image_and_honours_pull_policy() {
    let d = Daemon::start();
    let reg = Registry::start(&d, 5000, None);
    push_tbox(&d, &reg, "1");
    let name = "127.0.0.1:5000/tbox:1";
    d.ok(&["rmi", name]);

    let o = d.fails(&["run", "--rm", "--pull", "never", name, "true"]);
    assert!(o.stderr.contains("No such image"), "{o}");

    let o = d.cli(&["run", "--rm", name, "echo", "implicit"]);
    assert!(o.success(), "{o}");
    assert_eq!(o.out(), "implicit");
    assert!(
        o.stderr
            .contains(&format!("Unable to find image '{name}' locally")),
        "{o}"
    );
    assert!(
        o.stderr.contains("Pull complete") || o.stderr.contains("Already exists"),
        "{o}"
    );
    assert!(
        o.stderr
            .contains(&format!("Status: Downloaded newer image for {name}")),
        "{o}"
    );

    // --pull always asks the registry even though the image is there.
    let o = d.cli(&["create", "--pull", "always", name]);
    assert!(o.success(), "{o}");
    assert!(
        o.stderr
            .contains(&format!("Status: Image is up to date for {name}")),
        "{o}"
    );
    d.ok(&["rm", o.out()]);
}

#[test]
fn login_push_pull_through_htpasswd_basic_auth() {
    let d = Daemon::start();
    let reg = Registry::start(&d, 5001, Some(("tester", "s3cret pass")));
    let cfg = d.dir().join("docker-config");
    let name = "127.0.0.1:5001/team/tbox:2";
    d.ok(&["tag", "tbox", name]);

    // Without credentials the registry refuses, and the error says so.
    let o = cli_with_config(&d, &cfg, &["push", name], None);
    assert!(!o.success(), "{o}");
    assert!(
        o.stderr.contains("registry 127.0.0.1:5001") && o.stderr.contains("login"),
        "{o}"
    );

    // A wrong password is refused and nothing is stored.
    let o = cli_with_config(
        &d,
        &cfg,
        &[
            "login",
            "-u",
            "tester",
            "--password-stdin",
            "127.0.0.1:5001",
        ],
        Some("wrong\n"),
    );
    assert!(!o.success(), "{o}");
    assert!(o.stderr.contains("401"), "{o}");
    assert!(
        !cfg.join("config.json").exists() || {
            let v: Value =
                serde_json::from_slice(&std::fs::read(cfg.join("config.json")).unwrap_or_default())
                    .unwrap_or(Value::Null);
            v["auths"]["127.0.0.1:5001"].is_null()
        }
    );

    let o = cli_with_config(
        &d,
        &cfg,
        &[
            "login",
            "-u",
            "tester",
            "--password-stdin",
            "127.0.0.1:5001",
        ],
        Some("s3cret pass\n"),
    );
    assert!(o.success(), "{o}\nregistry log:\n{}", reg.log());
    assert_eq!(o.out(), "Login Succeeded");
    // Stored as the docker CLI stores it.
    let v: Value =
        serde_json::from_slice(&std::fs::read(cfg.join("config.json")).unwrap_or_default())
            .expect("config.json");
    assert_eq!(
        v["auths"]["127.0.0.1:5001"]["auth"],
        json!("dGVzdGVyOnMzY3JldCBwYXNz") // base64("tester:s3cret pass")
    );

    let o = cli_with_config(&d, &cfg, &["push", name], None);
    assert!(o.success(), "{o}\nregistry log:\n{}", reg.log());
    let digest = pushed_digest(o.out());
    d.ok(&["rmi", name]);
    let o = cli_with_config(&d, &cfg, &["pull", name], None);
    assert!(o.success(), "{o}");
    assert!(o.out().contains(&format!("Digest: {digest}")), "{o}");
    assert_eq!(image_id(&d, name), image_id(&d, "tbox"));
    // With credentials, another repository's push mounts the layers from team/tbox.
    let other = "127.0.0.1:5001/team/other:2";
    d.ok(&["tag", "tbox", other]);
    let o = cli_with_config(&d, &cfg, &["push", other], None);
    assert!(o.success(), "{o}\nregistry log:\n{}", reg.log());
    assert!(o.out().contains(": Mounted from team/tbox"), "{o}");
    assert!(!o.out().contains(": Pushed"), "{o}");
    d.ok(&["rmi", other]);

    // After logout the registry refuses again.
    let o = cli_with_config(&d, &cfg, &["logout", "127.0.0.1:5001"], None);
    assert!(o.success(), "{o}");
    assert_eq!(o.out(), "Removing login credentials for 127.0.0.1:5001");
    d.ok(&["rmi", name]);
    let o = cli_with_config(&d, &cfg, &["pull", name], None);
    assert!(!o.success(), "{o}");
    assert!(o.stderr.contains("127.0.0.1:5001"), "{o}");

    // The docker CLI logs in through tether (POST /auth) and keeps the credentials where
    // tether's CLI finds them.
    if let Some(docker) = docker_cli() {
        let cfg2 = d.dir().join("docker-cli-config");
        std::fs::create_dir_all(&cfg2).expect("docker config dir");
        let path = d.dir().join("docker-stdin");
        std::fs::write(&path, "s3cret pass\n").expect("stdin file");
        let mut c = Command::new("sh");
        c.args([
            "-c",
            "exec \"$0\" login -u tester --password-stdin 127.0.0.1:5001 < \"$CLI_STDIN\"",
            docker,
        ])
        .env("CLI_STDIN", &path)
        .env("DOCKER_HOST", &d.host)
        .env("DOCKER_CONFIG", &cfg2);
        let o = run_with_limit(c, COMMAND_LIMIT);
        assert!(o.success(), "docker login: {o}");
        let o = cli_with_config(&d, &cfg2, &["pull", name], None);
        assert!(o.success(), "pull with docker login's credentials: {o}");
        d.ok(&["rmi", name]);
    }

    // POST /auth directly.
    let (st, v) = d.api(
        "POST",
        "/auth",
        Some(&json!({"username": "tester", "password": "s3cret pass", "serveraddress": "127.0.0.1:5001"})),
    );
    assert_eq!((st, v["Status"].clone()), (200, json!("Login Succeeded")));
    let (st, v) = d.api(
        "POST",
        "/auth",
        Some(&json!({"username": "tester", "password": "nope", "serveraddress": "127.0.0.1:5001"})),
    );
    assert_eq!(st, 401, "{v}");
}

/// A manifest list with two platforms (pushed to the registry by hand): the host's entry
/// by default, the other with `--platform`.
#[test]
fn manifest_list_picks_the_platform() {
    let d = Daemon::start();
    let reg = Registry::start(&d, 5000, None);
    let amd = push_tbox(&d, &reg, "a");
    // A second image: same layer, another config.
    let tar = d.dir().join("tbox.tar");
    d.ok(&[
        "import",
        "--change",
        "ENV FLAVOUR=other",
        &tar.display().to_string(),
        "127.0.0.1:5000/tbox:b",
    ]);
    let o = d.cli(&["push", "127.0.0.1:5000/tbox:b"]);
    assert!(o.success(), "{o}");
    let other = pushed_digest(o.out());
    let size_of = |tag: &str| -> usize {
        let (st, _, body) = registry_http(
            &d,
            reg.port,
            "GET",
            &format!("/v2/tbox/manifests/{tag}"),
            &[(
                "Accept",
                "application/vnd.docker.distribution.manifest.v2+json",
            )],
            b"",
        );
        assert_eq!(st, 200);
        body.len()
    };
    let host_arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let other_arch = if host_arch == "s390x" {
        "ppc64le"
    } else {
        "s390x"
    };
    let list = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
             "digest": other, "size": size_of("b"),
             "platform": {"architecture": other_arch, "os": "linux"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
             "digest": amd, "size": size_of("a"),
             "platform": {"architecture": host_arch, "os": "linux"}},
        ]
    });
    let body = serde_json::to_vec(&list).expect("list JSON");
    let (st, _, resp) = registry_http(
        &d,
        reg.port,
        "PUT",
        "/v2/tbox/manifests/multi",
        &[(
            "Content-Type",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        )],
        &body,
    );
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&resp));
    let id_a = image_id(&d, "127.0.0.1:5000/tbox:a");
    let id_b = image_id(&d, "127.0.0.1:5000/tbox:b");
    assert_ne!(id_a, id_b);

    d.ok(&["pull", "127.0.0.1:5000/tbox:multi"]);
    assert_eq!(image_id(&d, "127.0.0.1:5000/tbox:multi"), id_a);
    let plat = format!("linux/{other_arch}");
    let out = d.ok(&["pull", "--platform", &plat, "127.0.0.1:5000/tbox:multi"]);
    assert!(out.contains("Downloaded newer image"), "{out}");
    assert_eq!(image_id(&d, "127.0.0.1:5000/tbox:multi"), id_b);
    let o = d.fails(&[
        "pull",
        "--platform",
        "linux/mips64le",
        "127.0.0.1:5000/tbox:multi",
    ]);
    assert!(
        o.stderr.contains("no matching manifest for linux/mips64le"),
        "{o}"
    );
}

/// `pull --all-tags`: every tag of the repository (the API's empty `tag`).
#[test]
fn pull_all_tags() {
    let d = Daemon::start();
    let reg = Registry::start(&d, 5000, None);
    push_tbox(&d, &reg, "1");
    push_tbox(&d, &reg, "2");
    d.ok(&["rmi", "127.0.0.1:5000/tbox:1", "127.0.0.1:5000/tbox:2"]);
    let o = d.fails(&["pull", "-a", "127.0.0.1:5000/tbox:1"]);
    assert!(o.stderr.contains("--all-tags"), "{o}");
    let out = d.ok(&["pull", "--all-tags", "127.0.0.1:5000/tbox"]);
    assert!(
        out.contains("1: Pulling from tbox") && out.contains("2: Pulling from tbox"),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some("127.0.0.1:5000/tbox"), "{out}");
    let id = image_id(&d, "tbox");
    assert_eq!(image_id(&d, "127.0.0.1:5000/tbox:1"), id);
    assert_eq!(image_id(&d, "127.0.0.1:5000/tbox:2"), id);
    let o = d.fails(&["pull", "-a", "127.0.0.1:5000/nosuch"]);
    assert!(o.stderr.contains("registry 127.0.0.1:5000"), "{o}");
}

/// `--registry-mirror`: docker.io names are fetched from the mirror (its repositories
/// under `library/` as Docker Hub's).
#[test]
fn registry_mirror_serves_docker_io_names() {
    let d = Daemon::start_with(&["--registry-mirror", "http://127.0.0.1:5000"]);
    let reg = Registry::start(&d, 5000, None);
    d.ok(&["tag", "tbox", "127.0.0.1:5000/library/mirrored:1"]);
    let o = d.cli(&["push", "127.0.0.1:5000/library/mirrored:1"]);
    assert!(o.success(), "{o}\nregistry log:\n{}", reg.log());
    let out = d.ok(&["pull", "mirrored:1"]);
    assert!(
        out.contains("Status: Downloaded newer image for mirrored:1"),
        "{out}"
    );
    assert_eq!(out.lines().last(), Some("docker.io/library/mirrored:1"));
    assert_eq!(image_id(&d, "mirrored:1"), image_id(&d, "tbox"));
}

/// The docker CLI, when one is installed.
fn docker_cli() -> Option<&'static str> {
    ["/usr/local/bin/docker", "/usr/bin/docker"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// The real docker CLI pulls and pushes through tether's socket (skipped, saying so,
/// when no docker CLI is installed).
#[test]
fn docker_cli_pulls_through_tether() {
    let Some(docker) = docker_cli() else {
        eprintln!("SKIPPED: no docker CLI installed");
        return;
    };
    let d = Daemon::start();
    let reg = Registry::start(&d, 5000, None);
    let cfg = d.dir().join("docker-cli-config");
    std::fs::create_dir_all(&cfg).expect("docker config dir");
    let run = |args: &[&str]| -> Output {
        let mut c = Command::new(docker);
        c.args(args)
            .env("DOCKER_HOST", &d.host)
            .env("DOCKER_CONFIG", &cfg)
            .env("DOCKER_CLI_HINTS", "false");
        run_with_limit(c, COMMAND_LIMIT)
    };
    d.ok(&["tag", "tbox", "127.0.0.1:5000/tbox:cli"]);
    let o = run(&["push", "127.0.0.1:5000/tbox:cli"]);
    assert!(
        o.success(),
        "docker push: {o}\nregistry log:\n{}",
        reg.log()
    );
    let digest = pushed_digest(o.out());
    d.ok(&["rmi", "127.0.0.1:5000/tbox:cli"]);
    let o = run(&["pull", "127.0.0.1:5000/tbox:cli"]);
    assert!(o.success(), "docker pull: {o}");
    assert!(o.out().contains(&format!("Digest: {digest}")), "{o}");
    assert_eq!(
        image_id(&d, "127.0.0.1:5000/tbox:cli"),
        image_id(&d, "tbox")
    );
    let o = run(&["pull", "127.0.0.1:5000/tbox:nope"]);
    assert!(!o.success(), "{o}");
    assert!(o.stderr.contains("127.0.0.1:5000/tbox:nope"), "{o}");
}

/// `sha256:<hex>` of a file, by `sha256sum`.
fn sha256_file(p: &Path) -> String {
    let mut c = Command::new("sha256sum");
    c.arg(p);
    let o = run_with_limit(c, COMMAND_LIMIT);
    assert!(o.success(), "sha256sum: {o}");
    format!(
        "sha256:{}",
        o.stdout.split_whitespace().next().unwrap_or("")
    )
}

/// Uploads `data` as a blob of `repo` (monolithic upload: POST, then PUT with the digest).
fn upload_blob(d: &Daemon, reg: &Registry, repo: &str, data: &[u8], digest: &str) {
    let (st, hdrs, body) = registry_http(
        d,
        reg.port,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/"),
        &[],
        b"",
    );
    assert_eq!(st, 202, "{}", String::from_utf8_lossy(&body));
    let loc = hdrs
        .iter()
        .find(|(k, _)| k == "location")
        .map(|(_, v)| v.clone())
        .expect("an upload Location");
    let path = match loc.find("/v2/") {
        Some(i) => loc[i..].to_string(),
        None => loc,
    };
    let sep = if path.contains('?') { '&' } else { '?' };
    let (st, _, body) = registry_http(
        d,
        reg.port,
        "PUT",
        &format!("{path}{sep}digest={}", digest.replace(':', "%3A")),
        &[("Content-Type", "application/octet-stream")],
        data,
    );
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&body));
}

/// An OCI image whose layer is zstd-compressed (pushed to the registry by hand): pulled,
/// unpacked and run; pushed again (as gzip) under another name with the same image ID.
#[test]
fn zstd_oci_image_pulls_runs_and_pushes() {
    let d = Daemon::start();
    let reg = Registry::start(&d, 5000, None);
    let tar = d.dir().join("tbox.tar");
    let zst = d.dir().join("tbox.tar.zst");
    let mut c = Command::new("zstd");
    c.args(["-q", "-f", "-3", "-o"]).arg(&zst).arg(&tar);
    let o = run_with_limit(c, COMMAND_LIMIT);
    assert!(o.success(), "zstd (apt-get install zstd): {o}");
    let diff_id = sha256_file(&tar);
    let layer_digest = sha256_file(&zst);
    let layer = std::fs::read(&zst).expect("zstd layer");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    let config = serde_json::to_vec(&json!({
        "architecture": arch,
        "os": "linux",
        "created": "2026-01-02T03:04:05Z",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .expect("config JSON");
    let cfg_path = d.dir().join("zt-config.json");
    std::fs::write(&cfg_path, &config).expect("config file");
    let cfg_digest = sha256_file(&cfg_path);
    upload_blob(&d, &reg, "zt", &layer, &layer_digest);
    upload_blob(&d, &reg, "zt", &config, &cfg_digest);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cfg_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
                    "digest": layer_digest, "size": layer.len()}],
    }))
    .expect("manifest JSON");
    let (st, _, body) = registry_http(
        &d,
        reg.port,
        "PUT",
        "/v2/zt/manifests/1",
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        &manifest,
    );
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&body));

    // The same layer must really be fetched and decoded: remove tbox, which holds it.
    d.ok(&["rmi", "tbox"]);
    let out = d.ok(&["pull", "127.0.0.1:5000/zt:1"]);
    assert!(out.contains("Pull complete"), "{out}");
    let id = image_id(&d, "127.0.0.1:5000/zt:1");
    assert_eq!(id, cfg_digest);
    assert_eq!(
        image_json(&d, "127.0.0.1:5000/zt:1")["RootFS"]["Layers"],
        json!([diff_id])
    );
    assert_eq!(
        d.ok(&["run", "--rm", "127.0.0.1:5000/zt:1", "echo", "zstd-ok"]),
        "zstd-ok"
    );

    // Pushed elsewhere: the layer goes as gzip, the config (so the ID) is unchanged.
    d.ok(&["tag", "127.0.0.1:5000/zt:1", "127.0.0.1:5000/zt-copy:1"]);
    let o = d.cli(&["push", "127.0.0.1:5000/zt-copy:1"]);
    assert!(o.success(), "{o}");
    d.ok(&["rmi", "127.0.0.1:5000/zt-copy:1", "127.0.0.1:5000/zt:1"]);
    assert_eq!(d.ok(&["images", "-q"]), "");
    d.ok(&["pull", "127.0.0.1:5000/zt-copy:1"]);
    assert_eq!(image_id(&d, "127.0.0.1:5000/zt-copy:1"), cfg_digest);
    let (st, _, body) = registry_http(
        &d,
        reg.port,
        "GET",
        "/v2/zt-copy/manifests/1",
        &[(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )],
        b"",
    );
    assert_eq!(st, 200);
    let m: Value = serde_json::from_slice(&body).expect("manifest JSON");
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
}

/// Sends a GET's body: `(path, connection, body)`; false closes the connection.
type SendBody = std::sync::Arc<dyn Fn(&str, &mut TcpStream, &[u8]) -> bool + Send + Sync>;

/// A one-repository registry that serves `files` (path -> (content type, body)),
/// each body through `send`. Runs in `d`'s namespace on 127.0.0.1:`port` until the
/// returned flag is set.
fn fake_registry(
    d: &Daemon,
    port: u16,
    files: Vec<(String, String, Vec<u8>)>,
    send: SendBody,
) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::io::BufRead;
    use std::sync::atomic::{AtomicBool, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let ns = d.netns();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        in_netns(&ns.clone(), move || {
            let l = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind");
            l.set_nonblocking(true).expect("nonblocking");
            let _ = ready_tx.send(());
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop2.load(Ordering::SeqCst) && Instant::now() < deadline {
                let Ok((s, _)) = l.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let files = files.clone();
                let send = send.clone();
                std::thread::spawn(move || {
                    s.set_nonblocking(false).ok();
                    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
                    let mut w = s.try_clone().expect("clone");
                    let mut r = std::io::BufReader::new(s);
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut parts = line.split_whitespace();
                        let (method, path) =
                            (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                        let (method, path) = (method.to_string(), path.to_string());
                        loop {
                            let mut h = String::new();
                            if r.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                                break;
                            }
                        }
                        let hit = files.iter().find(|(p, _, _)| *p == path);
                        let (status, ctype, body) = match (path.as_str(), hit) {
                            ("/v2/", _) => {
                                ("200 OK", "application/json".to_string(), b"{}".to_vec())
                            }
                            (_, Some((_, ct, b))) => ("200 OK", ct.clone(), b.clone()),
                            _ => (
                                "404 Not Found",
                                "application/json".to_string(),
                                br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"unknown"}]}"#
                                    .to_vec(),
                            ),
                        };
                        let mut head = format!(
                            "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n",
                            body.len()
                        );
                        if let Some((p, _, b)) = hit {
                            if p.contains("/manifests/") {
                                head.push_str(&format!(
                                    "Docker-Content-Digest: {}\r\n",
                                    sha256_hex_of(b)
                                ));
                            }
                        }
                        head.push_str("\r\n");
                        if w.write_all(head.as_bytes()).is_err() {
                            return;
                        }
                        if method == "HEAD" {
                            continue;
                        }
                        if !send(&path, &mut w, &body) {
                            return;
                        }
                    }
                });
            }
        })
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the breaking registry to listen");
    stop
}

/// A [`fake_registry`] that breaks off `cut` halfway: it announces the whole length,
/// sends half and closes.
fn breaking_registry(
    d: &Daemon,
    port: u16,
    files: Vec<(String, String, Vec<u8>)>,
    cut: String,
) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let send: SendBody = std::sync::Arc::new(move |path, w, body| {
        if path == cut {
            let _ = w.write_all(&body[..body.len() / 2]);
            let _ = w.flush();
            return false; // connection closed mid-body
        }
        w.write_all(body).is_ok()
    });
    fake_registry(d, port, files, send)
}

/// `sha256:<hex>` of bytes, by `sha256sum` on a temp file.
fn sha256_hex_of(b: &[u8]) -> String {
    let f = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(f.path(), b).expect("write temp file");
    sha256_file(f.path())
}

/// A transfer broken off mid-layer: a one-line error naming the reference and the
/// registry, nothing left in the store, and a later pull from a working registry is clean.
#[test]
fn interrupted_transfer_leaves_nothing_and_a_new_pull_is_clean() {
    let d = Daemon::start();
    let reg = Registry::start(&d, 5000, None);
    push_tbox(&d, &reg, "1");
    let accept = "application/vnd.docker.distribution.manifest.v2+json";
    let (st, _, manifest) = registry_http(
        &d,
        reg.port,
        "GET",
        "/v2/tbox/manifests/1",
        &[("Accept", accept)],
        b"",
    );
    assert_eq!(st, 200);
    let m: Value = serde_json::from_slice(&manifest).expect("manifest JSON");
    let mut files = vec![(
        "/v2/tbox/manifests/1".to_string(),
        accept.to_string(),
        manifest.clone(),
    )];
    let mut layer_path = String::new();
    for (desc, is_layer) in [(&m["config"], false), (&m["layers"][0], true)] {
        let digest = desc["digest"].as_str().expect("a digest");
        let path = format!("/v2/tbox/blobs/{digest}");
        let (st, _, blob) = registry_http(&d, reg.port, "GET", &path, &[], b"");
        assert_eq!(st, 200);
        if is_layer {
            layer_path = path.clone();
        }
        files.push((path, "application/octet-stream".to_string(), blob));
    }
    let stop = breaking_registry(&d, 5002, files, layer_path);
    d.ok(&["rmi", "127.0.0.1:5000/tbox:1"]);
    d.ok(&["rmi", "tbox"]);

    let o = d.fails(&["pull", "127.0.0.1:5002/tbox:1"]);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let err = o.stderr.trim();
    assert!(
        err.contains("127.0.0.1:5002/tbox:1") && err.contains("registry 127.0.0.1:5002"),
        "{o}"
    );
    assert_eq!(err.lines().count(), 1, "{o}");
    assert!(err.contains("interrupted"), "{o}");
    eprintln!("interrupted pull: {err}");
    assert_eq!(d.ok(&["images", "-q"]), "");
    let (layers, tmp) = store_entries(&d);
    assert!(layers.is_empty() && tmp.is_empty(), "{layers:?} {tmp:?}");

    let out = d.ok(&["pull", "127.0.0.1:5000/tbox:1"]);
    assert!(out.contains("Pull complete"), "{out}");
    assert_eq!(
        d.ok(&["run", "--rm", "127.0.0.1:5000/tbox:1", "echo", "whole"]),
        "whole"
    );
}

/// A slow layer does not hold back the others: with 4 layers to fetch, 3 at a time, the
/// 4th starts as soon as one of the first 3 is done, while the 1st still streams. The
/// registry stalls the 1st layer's body halfway until the 4th layer is asked for
/// (or 10 s passed).
#[test]
fn a_slow_layer_does_not_hold_back_the_next_download() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let d = Daemon::start();
    let reg = Registry::start(&d, 5000, None);
    let name = format!("{}/slow:1", reg.host());
    let ctx = d.dir().join("slow-ctx");
    let mut dockerfile = String::from("FROM scratch\n");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for l in 1..=4 {
        // 256 KiB of xorshift bytes (incompressible) per layer
        let data: Vec<u8> = (0..256 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        std::fs::create_dir_all(ctx.join(format!("l{l}"))).expect("mkdir");
        std::fs::write(ctx.join(format!("l{l}/data")), data).expect("write");
        dockerfile.push_str(&format!("COPY l{l}/ /l{l}/\n"));
    }
    std::fs::write(ctx.join("Dockerfile"), dockerfile).expect("write Dockerfile");
    d.ok(&[
        "build",
        "-q",
        "-t",
        &name,
        ctx.to_str().expect("utf-8 path"),
    ]);
    let id = image_id(&d, &name);
    assert!(d.cli(&["push", &name]).success(), "{}", reg.log());

    let accept = "application/vnd.docker.distribution.manifest.v2+json";
    let (st, _, manifest) = registry_http(
        &d,
        reg.port,
        "GET",
        "/v2/slow/manifests/1",
        &[("Accept", accept)],
        b"",
    );
    assert_eq!(st, 200);
    let m: Value = serde_json::from_slice(&manifest).expect("manifest JSON");
    let layers = m["layers"].as_array().expect("layers").clone();
    assert_eq!(layers.len(), 4, "{m}");
    let mut files = vec![(
        "/v2/slow/manifests/1".to_string(),
        accept.to_string(),
        manifest.clone(),
    )];
    let mut paths = Vec::new();
    for desc in std::iter::once(&m["config"]).chain(layers.iter()) {
        let path = format!(
            "/v2/slow/blobs/{}",
            desc["digest"].as_str().expect("digest")
        );
        let (st, _, blob) = registry_http(&d, reg.port, "GET", &path, &[], b"");
        assert_eq!(st, 200);
        files.push((path.clone(), "application/octet-stream".to_string(), blob));
        paths.push(path);
    }
    let (slow, fourth) = (paths[1].clone(), paths[4].clone());
    let asked = Arc::new(AtomicBool::new(false));
    let released_early = Arc::new(AtomicBool::new(false));
    let (asked2, early2) = (asked.clone(), released_early.clone());
    let send: SendBody = Arc::new(move |path, w, body| {
        if path == fourth {
            asked2.store(true, Ordering::SeqCst);
        }
        if path == slow {
            if w.write_all(&body[..body.len() / 2]).is_err() || w.flush().is_err() {
                return false;
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while !asked2.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            early2.store(asked2.load(Ordering::SeqCst), Ordering::SeqCst);
            return w.write_all(&body[body.len() / 2..]).is_ok();
        }
        w.write_all(body).is_ok()
    });
    let stop = fake_registry(&d, 5002, files, send);
    d.ok(&["rmi", &name]);
    let (left, _) = store_entries(&d);
    let out = d.ok(&["pull", "127.0.0.1:5002/slow:1"]);
    stop.store(true, Ordering::SeqCst);
    assert!(
        !out.contains("Already exists"),
        "{out}\nlayers before: {left:?}"
    );
    assert_eq!(image_id(&d, "127.0.0.1:5002/slow:1"), id);
    assert!(
        released_early.load(Ordering::SeqCst),
        "the 4th layer was not asked for while the 1st was stalled:\n{out}"
    );
}

/// An image made by `commit` (a layer from the container's overlay upper dir, with a
/// whiteout) pushes, and pulls back with the same ID and the change.
#[test]
fn committed_image_pushes_and_pulls_back() {
    let d = Daemon::start();
    let reg = Registry::start(&d, 5000, None);
    d.run_d(&["--name", "work", "tbox", "sleep", "1000"]);
    let o = d.sh("work", "rm /etc/nsswitch.conf && echo made > /made");
    assert!(o.success(), "{o}");
    let name = format!("{}/snap:1", reg.host());
    let id = d.ok(&["commit", "work", &name]);
    let o = d.cli(&["push", &name]);
    assert!(o.success(), "push: {o}\nregistry log:\n{}", reg.log());
    d.ok(&["rm", "-f", "work"]);
    d.ok(&["rmi", &name]);
    let o = d.cli(&["pull", &name]);
    assert!(o.success(), "pull: {o}\nregistry log:\n{}", reg.log());
    assert_eq!(image_id(&d, &name), id);
    assert_eq!(
        d.ok(&[
            "run",
            "--rm",
            &name,
            "sh",
            "-c",
            "cat /made; test -e /etc/nsswitch.conf || echo deleted"
        ]),
        "made\ndeleted"
    );
}

/// Writes `files` (relative path, content) under `dir`.
fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (p, c) in files {
        let path = dir.join(p);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, c).expect("write file");
    }
}

/// Compose `pull_policy` (always, missing, never, build), `compose pull` (what it skips,
/// `--ignore-pull-failures`), `compose push`, and `up` pulling a missing image, against the
/// test registry.
#[test]
fn compose_pull_push_and_pull_policy() {
    let d = Daemon::start();
    let reg = Registry::start(&d, 5000, None);
    let h = reg.host();
    let tbox_id = image_id(&d, "tbox");
    push_tbox(&d, &reg, "1");
    d.ok(&["rmi", &format!("{h}/tbox:1")]);
    let proj = d.dir().join("regproj");
    let yaml = format!(
        "services:
  web:
    image: {h}/tbox:1
    command: [\"sleep\", \"300\"]
  twin:
    image: {h}/tbox:1
    command: [\"sleep\", \"300\"]
  onlybuild:
    build: ./ctx
  built:
    image: {h}/built:1
    build: ./ctx
    command: [\"sleep\", \"300\"]
  rebuilt:
    image: {h}/built:1
    build: ./ctx
    pull_policy: build
    command: [\"sleep\", \"300\"]
  lazy:
    image: {h}/built:1
    pull_policy: if_not_present
    command: [\"sleep\", \"300\"]
  fresh:
    image: {h}/built:1
    pull_policy: always
    command: [\"sleep\", \"300\"]
  nv:
    image: {h}/tbox:absent
    pull_policy: never
  gone:
    image: {h}/tbox:absent
  unbuilt:
    image: {h}/unbuilt:1
    build: ./ctx
"
    );
    write_files(
        &proj,
        &[
            ("compose.yaml", &yaml),
            (
                "ctx/Dockerfile",
                "FROM tbox:latest\nRUN echo built > /proof\n",
            ),
        ],
    );
    let file = proj.join("compose.yaml").display().to_string();
    let compose = |args: &[&str]| {
        let mut v = vec!["compose", "-f", &file, "-p", "rp"];
        v.extend_from_slice(args);
        d.cli(&v)
    };

    // an invalid policy is refused, naming the value and the valid ones
    let bad = d.dir().join("bad.yaml");
    std::fs::write(
        &bad,
        "services:\n  x:\n    image: tbox\n    pull_policy: sometimes\n",
    )
    .expect("write bad.yaml");
    let o = d.cli(&["compose", "-f", &bad.display().to_string(), "config"]);
    assert!(!o.success(), "{o}");
    assert!(
        o.stderr
            .contains("invalid pull_policy \"sometimes\": expected always, missing, if_not_present, never or build"),
        "{o}"
    );

    // pull (services in name order): twin pulled, web skipped as the same image,
    // build-only / never / build skipped
    let o = compose(&["pull", "web", "twin", "onlybuild", "nv", "rebuilt"]);
    assert!(o.success(), "compose pull: {o}\n{}", reg.log());
    let all = o.all();
    assert!(all.contains("Service twin  Pulled"), "{all}");
    assert!(
        all.contains("Service web  Skipped - Image is already being pulled by twin"),
        "{all}"
    );
    assert!(
        all.contains("Service onlybuild  Skipped - No image to be pulled"),
        "{all}"
    );
    assert!(all.contains("Service nv  Skipped"), "{all}");
    assert!(all.contains("Service rebuilt  Skipped"), "{all}");
    assert_eq!(image_id(&d, &format!("{h}/tbox:1")), tbox_id);

    // a failed pull is an error naming the image, unless --ignore-pull-failures
    let o = compose(&["pull", "gone"]);
    assert!(!o.success(), "{o}");
    assert!(o.stderr.contains(&format!("{h}/tbox:absent")), "{o}");
    let o = compose(&["pull", "--ignore-pull-failures", "gone"]);
    assert!(o.success(), "{o}");
    assert!(o.stderr.contains("WARNING: pulling gone"), "{o}");
    let o = compose(&["pull", "--ignore-buildable", "built"]);
    assert!(o.success(), "{o}");
    assert!(
        o.stderr
            .contains("Service built  Skipped - Image can be built"),
        "{o}"
    );
    // a buildable service whose image the registry lacks: a warning to build it
    let o = compose(&["pull", "built"]);
    assert!(o.success(), "{o}");
    assert!(
        o.stderr.contains("must be built from source") && o.stderr.contains("build built"),
        "{o}"
    );

    // up of a service whose image is missing (no build:) pulls it
    d.ok(&["rmi", &format!("{h}/tbox:1")]);
    let o = compose(&["up", "-d", "web"]);
    assert!(o.success(), "compose up web: {o}");
    assert!(o.stderr.contains("Service web  Pulled"), "{o}");
    assert_eq!(d.inspect("rp-web-1")["State"]["Running"], true);

    // never: a missing image is an error, and no container is made
    let o = compose(&["up", "-d", "nv"]);
    assert!(!o.success(), "{o}");
    assert!(
        o.stderr.contains("service \"nv\": image")
            && o.stderr
                .contains("is not present and its pull_policy is never"),
        "{o}"
    );
    let (_, list) = d.api(
        "GET",
        "/containers/json?all=1&filters=%7B%22name%22%3A%5B%22rp-nv%22%5D%7D",
        None,
    );
    assert_eq!(list.as_array().map(Vec::len), Some(0), "{list}");

    // up builds a missing buildable image; push sends it; others are skipped
    let o = compose(&["up", "-d", "built"]);
    assert!(o.success(), "compose up built: {o}");
    assert!(o.stderr.contains("Building built"), "{o}");
    let built_id = image_id(&d, &format!("{h}/built:1"));
    assert_ne!(built_id, tbox_id);
    let o = compose(&["push", "built", "web", "onlybuild"]);
    assert!(o.success(), "compose push: {o}\n{}", reg.log());
    assert!(o.stderr.contains("Service built  Pushed"), "{o}");
    assert!(o.stderr.contains("Service web  Skipped"), "{o}");
    assert!(o.stderr.contains("Service onlybuild  Skipped"), "{o}");
    // an image that was never built: a push error naming the service, unless ignored
    let o = compose(&["push", "unbuilt"]);
    assert!(!o.success(), "{o}");
    assert!(
        o.stderr.contains("service \"unbuilt\": pushing")
            && o.stderr.contains("does not exist locally"),
        "{o}"
    );
    let o = compose(&["push", "--ignore-push-failures", "unbuilt", "built"]);
    assert!(o.success(), "{o}");
    assert!(o.stderr.contains("WARNING: pushing unbuilt"), "{o}");
    assert!(o.stderr.contains("Service built  Pushed"), "{o}");
    let (st, _, _) = registry_http(
        &d,
        reg.port,
        "GET",
        "/v2/built/manifests/1",
        &[(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )],
        b"",
    );
    assert_eq!(st, 200, "the pushed manifest is in the registry");

    // pull_policy build rebuilds even though the image is present
    let o = compose(&["up", "-d", "rebuilt"]);
    assert!(o.success(), "{o}");
    assert!(o.stderr.contains("Building rebuilt"), "{o}");

    // the local tag now names another image than the registry's:
    // if_not_present keeps it, always pulls the registry's
    d.ok(&["tag", "tbox", &format!("{h}/built:1")]);
    let o = compose(&["up", "-d", "lazy"]);
    assert!(o.success(), "{o}");
    assert!(!o.stderr.contains("Pulled"), "{o}");
    assert_eq!(image_id(&d, &format!("{h}/built:1")), tbox_id);
    let o = compose(&["up", "-d", "fresh"]);
    assert!(o.success(), "{o}");
    assert!(o.stderr.contains("Service fresh  Pulled"), "{o}");
    assert_eq!(image_id(&d, &format!("{h}/built:1")), built_id);
    // --pull never overrides the policy of `always`
    d.ok(&["tag", "tbox", &format!("{h}/built:1")]);
    let o = compose(&["up", "-d", "--pull", "never", "fresh"]);
    assert!(o.success(), "{o}");
    assert_eq!(image_id(&d, &format!("{h}/built:1")), tbox_id);
    let o = compose(&["up", "-d", "--pull", "sometimes", "fresh"]);
    assert!(!o.success(), "{o}");
    assert!(
        o.stderr.contains("invalid --pull option \"sometimes\""),
        "{o}"
    );

    // run pulls a missing image too
    d.ok(&["compose", "-f", &file, "-p", "rp", "down"]);
    d.ok(&["rmi", &format!("{h}/tbox:1")]);
    let o = compose(&["run", "--rm", "twin", "echo", "ran"]);
    assert!(o.success(), "compose run: {o}");
    assert!(o.stdout.contains("ran"), "{o}");
    assert_eq!(image_id(&d, &format!("{h}/tbox:1")), tbox_id);
    d.ok(&["compose", "-f", &file, "-p", "rp", "down"]);
}

/// docker-compose 1.29 pulls, and `up -d` pulls a missing image, through tether's socket
/// from the test registry.
#[test]
fn docker_compose_pulls_through_tether() {
    let d = Daemon::start();
    let reg = Registry::start(&d, 5000, None);
    let h = reg.host();
    let tbox_id = image_id(&d, "tbox");
    push_tbox(&d, &reg, "dc");
    d.ok(&["rmi", &format!("{h}/tbox:dc")]);
    let proj = d.dir().join("dcproj");
    write_files(
        &proj,
        &[(
            "docker-compose.yml",
            &format!(
                "version: '3'\nservices:\n  app:\n    image: {h}/tbox:dc\n    command: [\"sleep\", \"300\"]\n"
            ),
        )],
    );
    let file = proj.join("docker-compose.yml").display().to_string();
    let cfg = d.dir().join("dc-config");
    std::fs::create_dir_all(&cfg).expect("docker config dir");
    let dc = |args: &[&str]| {
        let mut c = Command::new("docker-compose");
        c.args(["-f", &file, "-p", "dcp"])
            .args(args)
            .env("DOCKER_HOST", &d.host)
            .env("DOCKER_CONFIG", &cfg)
            .env("COMPOSE_INTERACTIVE_NO_CLI", "1");
        run_with_limit(c, COMMAND_LIMIT)
    };
    let o = dc(&["pull"]);
    assert!(
        o.success(),
        "docker-compose pull (apt-get install docker-compose): {o}\n{}",
        d.log_tail(40)
    );
    assert_eq!(image_id(&d, &format!("{h}/tbox:dc")), tbox_id);
    d.ok(&["rmi", &format!("{h}/tbox:dc")]);
    let o = dc(&["up", "-d"]);
    assert!(o.success(), "docker-compose up -d: {o}\n{}", d.log_tail(40));
    assert_eq!(image_id(&d, &format!("{h}/tbox:dc")), tbox_id);
    assert_eq!(d.inspect("dcp_app_1")["State"]["Running"], true);
    let o = dc(&["down"]);
    assert!(o.success(), "docker-compose down: {o}");
}

/// Docker Distribution offers no search: `tether search` and `GET /images/search` say so,
/// naming the registry; bad limits and filters are refused; an unreachable registry is named.
#[test]
fn search_reports_a_registry_without_search() {
    let d = Daemon::start();
    let reg = Registry::start(&d, 5000, None);
    let h = reg.host();
    let o = d.cli(&["search", &format!("{h}/tbox")]);
    assert!(!o.success(), "{o}");
    assert!(
        o.stderr
            .contains(&format!("registry {h} offers no search endpoint")),
        "{o}"
    );
    assert!(o.stderr.contains("/v1/search"), "{o}");
    if let Some(docker) = docker_cli() {
        // the docker CLI through tether's socket shows the same error
        let mut c = Command::new(docker);
        c.args(["search", &format!("{h}/tbox")])
            .env("DOCKER_HOST", &d.host)
            .env("DOCKER_CONFIG", d.dir().join("docker-cli-config"));
        let o = run_with_limit(c, COMMAND_LIMIT);
        assert!(!o.success(), "{o}");
        assert!(
            o.stderr
                .contains(&format!("registry {h} offers no search endpoint")),
            "{o}"
        );
    }
    let (st, v) = d.api("GET", &format!("/images/search?term={h}/tbox"), None);
    assert_eq!(st, 404, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("registry {h} offers no search endpoint")),
        "{v}"
    );
    let (st, v) = d.api(
        "GET",
        &format!("/images/search?term={h}/tbox&limit=0"),
        None,
    );
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap_or("").contains("limit 0"),
        "{v}"
    );
    let (st, v) = d.api(
        "GET",
        &format!("/images/search?term={h}/tbox&filters=%7B%22color%22%3A%5B%22red%22%5D%7D"),
        None,
    );
    assert_eq!(st, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("invalid filter 'color'"),
        "{v}"
    );
    let (st, v) = d.api("GET", "/images/search?term=", None);
    assert_eq!(st, 400, "{v}");
    let o = d.cli(&["search", "127.0.0.1:5999/tbox"]);
    assert!(!o.success(), "{o}");
    assert!(
        o.stderr.contains("searching registry 127.0.0.1:5999") && o.stderr.contains("cannot reach"),
        "{o}"
    );
}

/// A push of layers the registry holds in another repository mounts them from there
/// (`POST /v2/b/blobs/uploads/?mount=&from=a`) instead of uploading them again.
#[test]
fn push_mounts_layers_from_another_repository() {
    let d = Daemon::start();
    let reg = Registry::start(&d, 5000, None);
    let h = reg.host();
    let a = format!("{h}/a:1");
    let b = format!("{h}/b:1");
    d.ok(&["tag", "tbox", &a]);
    let o = d.cli(&["push", &a]);
    assert!(o.success(), "push a: {o}\n{}", reg.log());
    let first = o.out().to_string();
    let pushed = first.lines().filter(|l| l.ends_with(": Pushed")).count();
    assert!(pushed > 0, "{first}");
    d.ok(&["tag", "tbox", &b]);
    let o = d.cli(&["push", &b]);
    assert!(o.success(), "push b: {o}\n{}", reg.log());
    let out = o.out().to_string();
    let mounted = out
        .lines()
        .filter(|l| l.ends_with(": Mounted from a"))
        .count();
    assert_eq!(
        mounted, pushed,
        "every layer mounted, none uploaded:\n{out}"
    );
    assert!(!out.contains(": Pushed"), "{out}");
    // b's layers are there: its manifest's blobs answer HEAD in repository b
    let (st, _, body) = registry_http(
        &d,
        reg.port,
        "GET",
        "/v2/b/manifests/1",
        &[(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )],
        b"",
    );
    assert_eq!(st, 200);
    let m: Value = serde_json::from_slice(&body).expect("manifest JSON");
    for l in m["layers"].as_array().expect("layers") {
        let dg = l["digest"].as_str().expect("digest");
        let (st, _, _) =
            registry_http(&d, reg.port, "HEAD", &format!("/v2/b/blobs/{dg}"), &[], b"");
        assert_eq!(st, 200, "layer {dg} in b");
    }
    // and b pulls back as the same image
    d.ok(&["rmi", &b]);
    d.ok(&["pull", &b]);
    assert_eq!(image_id(&d, &b), image_id(&d, "tbox"));
}
