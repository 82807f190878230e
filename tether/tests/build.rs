//! `tether build` / `POST /build` (the classic builder) with the real daemon, runc and
//! networking: every Dockerfile instruction, multi-stage builds, the cache, .dockerignore,
//! build args, RUN on a user-defined network, failures, and the real docker CLI
//! (`DOCKER_BUILDKIT=0 docker build`). Builds use the `tbox` image the harness imports and
//! fetch nothing from outside.

mod common;

use std::path::Path;

use common::{Daemon, IMAGE};

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, content) in files {
        let p = dir.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, content).expect("write context file");
    }
}

fn ctx(d: &Daemon, name: &str, files: &[(&str, &str)]) -> String {
    let dir = d.dir().join(name);
    std::fs::create_dir_all(&dir).expect("context dir");
    write(&dir, files);
    dir.display().to_string()
}

#[test]
fn single_stage_build_with_every_instruction() {
    let d = Daemon::start();
    let dockerfile = format!(
        r#"# a comment
ARG BASE={IMAGE}
FROM ${{BASE}}
LABEL org.example.team="net ops" version=1
ENV GREETING="hello world" EMPTY=
ENV LEGACY legacy value
ARG WHO=builder
WORKDIR /app
COPY greet.sh conf/ ./
COPY --chown=nobody:nogroup --chmod=0750 greet.sh /owned/greet.sh
ADD layer.tar /unpacked/
RUN echo "$GREETING from $WHO" > /app/built.txt \
    && mkdir -p /data && echo in-run > /data/run.txt
RUN <<EOF
echo heredoc-ran > /app/heredoc.txt
EOF
COPY <<EOF /app/inline.txt
inline $GREETING
EOF
RUN rm /etc/hostname.bak 2>/dev/null; rm -f /bin/vi
USER nobody
EXPOSE 8080 53/udp
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD true
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo child
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/built.txt"]
"#
    );
    // a tar for ADD to unpack
    let dir = d.dir().join("ctx1");
    std::fs::create_dir_all(&dir).unwrap();
    {
        let f = std::fs::File::create(dir.join("layer.tar")).unwrap();
        let mut b = tar::Builder::new(f);
        let mut h = tar::Header::new_gnu();
        h.set_size(6);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, "from-tar.txt", &b"tared\n"[..])
            .unwrap();
        b.finish().unwrap();
    }
    let c = ctx(
        &d,
        "ctx1",
        &[
            ("Dockerfile", &dockerfile),
            ("greet.sh", "#!/bin/sh\necho greet\n"),
            ("conf/app.conf", "key=value\n"),
        ],
    );
    let out = d.ok(&[
        "build",
        "-t",
        "app:1",
        "-t",
        "app:extra",
        "--build-arg",
        "WHO=tester",
        &c,
    ]);
    assert!(
        out.contains("Step 1/25 : FROM ${BASE}") || out.contains("Step 1/"),
        "{out}"
    );
    assert!(out.contains("Successfully built "), "{out}");
    assert!(out.contains("Successfully tagged app:1"), "{out}");
    assert!(out.contains("Successfully tagged app:extra"), "{out}");
    assert!(out.contains(" ---> Running in "), "{out}");

    let run = |cmd: &str| d.ok(&["run", "--rm", "--user", "root", "app:1", cmd]);
    assert_eq!(run("cat /app/built.txt"), "hello world from tester");
    assert_eq!(
        run("cat /app/greet.sh /app/app.conf"),
        "#!/bin/sh\necho greet\nkey=value"
    );
    assert_eq!(run("cat /app/heredoc.txt"), "heredoc-ran");
    assert_eq!(run("cat /app/inline.txt"), "inline hello world");
    assert_eq!(run("cat /unpacked/from-tar.txt"), "tared");
    assert_eq!(
        run("stat -c '%U:%G %a' /owned/greet.sh"),
        "nobody:nogroup 750"
    );
    assert_eq!(run("stat -c '%u:%g' /app/greet.sh"), "0:0");
    assert_eq!(run("test -e /bin/vi && echo present || echo gone"), "gone");
    assert_eq!(run("echo \"$LEGACY|$EMPTY|$WHO\""), "legacy value||");
    // the default command and user
    assert_eq!(d.ok(&["run", "--rm", "app:1"]), "hello world from tester");
    assert_eq!(d.ok(&["run", "--rm", "app:1", "id -u"]), "65534");

    let (s, img) = d.api("GET", "/images/app:1/json", None);
    assert_eq!(s, 200, "{img}");
    let cfg = &img["Config"];
    assert_eq!(cfg["WorkingDir"], "/app");
    assert_eq!(cfg["User"], "nobody");
    assert_eq!(cfg["Labels"]["org.example.team"], "net ops");
    assert_eq!(cfg["Labels"]["version"], "1");
    assert!(cfg["ExposedPorts"].get("8080/tcp").is_some(), "{cfg}");
    assert!(cfg["ExposedPorts"].get("53/udp").is_some(), "{cfg}");
    assert!(cfg["Volumes"].get("/data").is_some(), "{cfg}");
    assert_eq!(cfg["StopSignal"], "SIGINT");
    assert_eq!(cfg["Healthcheck"]["Test"][0], "CMD-SHELL");
    assert_eq!(cfg["Healthcheck"]["Interval"], 5_000_000_000i64);
    assert_eq!(cfg["Healthcheck"]["Retries"], 4);
    assert_eq!(cfg["Shell"][1], "-ec");
    assert_eq!(cfg["OnBuild"][0], "RUN echo child");
    assert_eq!(cfg["Entrypoint"][0], "/bin/sh");
    assert_eq!(cfg["Cmd"][0], "cat /app/built.txt");
    let env: Vec<String> = cfg["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap_or("").to_string())
        .collect();
    assert!(env.contains(&"GREETING=hello world".to_string()), "{env:?}");
    assert!(
        !env.iter().any(|e| e.starts_with("WHO=")),
        "ARG leaked into the image: {env:?}"
    );
    // no build container is left behind
    let ps = d.ok(&["ps", "-aq"]);
    assert!(ps.is_empty(), "build containers left: {ps}");

    // ONBUILD triggers run in a child build
    let c2 = ctx(
        &d,
        "child",
        &[(
            "Dockerfile",
            "FROM app:1\nUSER root\nRUN test -f /app/built.txt\n",
        )],
    );
    let out = d.ok(&["build", "-t", "child", &c2]);
    assert!(
        out.contains("Executing 1 build trigger"),
        "ONBUILD trigger did not run: {out}"
    );
    assert!(
        out.lines().any(|l| l.trim() == "child"),
        "the trigger's RUN output is missing: {out}"
    );
    let (_, ci) = d.api("GET", "/images/child/json", None);
    assert!(
        ci["Config"]["OnBuild"]
            .as_array()
            .is_none_or(|a| a.is_empty()),
        "{ci}"
    );
}

#[test]
fn multi_stage_build_target_and_cache() {
    let d = Daemon::start();
    let dockerfile = format!(
        "FROM {IMAGE} AS builder\nWORKDIR /src\nCOPY main.txt .\nRUN cp main.txt app.bin && echo built >> app.bin\n\
         FROM {IMAGE} AS unused\nRUN echo this-stage-must-not-run && false\n\
         FROM {IMAGE}\nCOPY --from=builder /src/app.bin /usr/local/bin/app.bin\nCMD [\"cat\", \"/usr/local/bin/app.bin\"]\n"
    );
    let c = ctx(
        &d,
        "ms",
        &[("Dockerfile", &dockerfile), ("main.txt", "source v1\n")],
    );
    let out = d.ok(&["build", "-t", "ms", &c]);
    assert!(
        !out.contains("this-stage-must-not-run"),
        "an unneeded stage ran: {out}"
    );
    assert_eq!(d.ok(&["run", "--rm", "ms"]), "source v1\nbuilt");
    let id1 = d.ok(&["images", "-q", "ms"]);

    // unchanged rebuild: every step from the cache, no RUN, the same image
    let out = d.ok(&["build", "-t", "ms", &c]);
    assert!(out.contains("Using cache"), "{out}");
    assert!(
        !out.contains("Running in"),
        "a RUN ran on an unchanged rebuild: {out}"
    );
    assert_eq!(d.ok(&["images", "-q", "ms"]), id1);

    // a changed file invalidates from its COPY on
    std::fs::write(Path::new(&c).join("main.txt"), "source v2\n").unwrap();
    let out = d.ok(&["build", "-t", "ms", &c]);
    assert!(
        out.contains("Running in"),
        "the RUN after a changed COPY was cached: {out}"
    );
    assert_eq!(d.ok(&["run", "--rm", "ms"]), "source v2\nbuilt");
    assert_ne!(d.ok(&["images", "-q", "ms"]), id1);

    // --no-cache runs everything again
    let out = d.ok(&["build", "--no-cache", "-t", "ms", &c]);
    assert!(!out.contains("Using cache"), "{out}");

    // builder prune --all forgets the cache: the next build runs its RUN again
    let (st, v) = d.api("POST", "/build/prune?all=1", None);
    assert_eq!(st, 200, "{v}");
    assert!(
        v["CachesDeleted"].as_array().is_some_and(|a| !a.is_empty()),
        "{v}"
    );
    let out = d.ok(&["build", "-t", "ms", &c]);
    assert!(
        out.contains("Running in"),
        "the cache survived a prune: {out}"
    );

    // --target stops at a stage
    let out = d.ok(&["build", "--target", "builder", "-t", "ms-builder", &c]);
    assert!(!out.contains("/usr/local/bin"), "{out}");
    assert_eq!(
        d.ok(&["run", "--rm", "ms-builder", "cat", "/src/app.bin"]),
        "source v2\nbuilt"
    );
    let o = d.fails(&["build", "--target", "nosuch", &c]);
    assert!(o.all().contains("nosuch"), "{o}");

    // removing the built images removes their intermediate images too, as Docker does
    let base = d.ok(&["images", "-q", "--no-trunc", IMAGE]);
    let before = d.ok(&["images", "-aq"]).lines().count();
    let out = d.ok(&["rmi", "ms", "ms-builder"]);
    let after = d.ok(&["images", "-aq"]).lines().count();
    assert!(
        before - after > 2,
        "rmi removed only the tagged images ({before} -> {after}): {out}"
    );
    // what the earlier builds left untagged (their tags moved) is dangling: prune takes it
    d.ok(&["image", "prune", "-f"]);
    let left = d.ok(&["images", "-aq", "--no-trunc"]);
    assert_eq!(left, base, "intermediate images left");
}

#[test]
fn dockerignore_build_args_and_file_flag() {
    let d = Daemon::start();
    let c = ctx(
        &d,
        "ign",
        &[
            (
                "Dockerfile.backend",
                &format!("FROM {IMAGE}\nARG VERSION=dev\nARG UNSET\nCOPY . /ctx/\nRUN echo \"v=$VERSION u=$UNSET\" > /ctx/version\n"),
            ),
            (".dockerignore", "*.log\n!keep.log\nsecrets/\n**/*.tmp\n"),
            ("app.txt", "app\n"),
            ("debug.log", "debug\n"),
            ("keep.log", "keep\n"),
            ("secrets/key", "secret\n"),
            ("sub/x.tmp", "tmp\n"),
            ("sub/y.txt", "y\n"),
        ],
    );
    let out = d.ok(&[
        "build",
        "-f",
        &format!("{c}/Dockerfile.backend"),
        "--build-arg",
        "VERSION=2.1",
        "--build-arg",
        "NOTDECLARED=1",
        "-t",
        "ign",
        &c,
    ]);
    assert!(
        out.contains("NOTDECLARED"),
        "no warning for an unused build arg: {out}"
    );
    let ls = d.ok(&[
        "run",
        "--rm",
        "ign",
        "sh",
        "-c",
        "cd /ctx && find . -type f | sort",
    ]);
    assert_eq!(
        ls, "./.dockerignore\n./Dockerfile.backend\n./app.txt\n./keep.log\n./sub/y.txt\n./version",
        "{ls}"
    );
    assert_eq!(
        d.ok(&["run", "--rm", "ign", "cat", "/ctx/version"]),
        "v=2.1 u="
    );

    // a Dockerfile from outside the context
    let outside = d.dir().join("Dockerfile.outside");
    std::fs::write(&outside, format!("FROM {IMAGE}\nCOPY app.txt /\n")).unwrap();
    d.ok(&[
        "build",
        "-f",
        &outside.display().to_string(),
        "-t",
        "outside",
        &c,
    ]);
    assert_eq!(d.ok(&["run", "--rm", "outside", "cat", "/app.txt"]), "app");
}

#[test]
fn failures_name_the_step_and_leave_nothing_tagged() {
    let d = Daemon::start();
    // a failing RUN: exit code and step named, nothing tagged, no container left
    let c = ctx(
        &d,
        "fail",
        &[(
            "Dockerfile",
            &format!("FROM {IMAGE}\nRUN echo before\nRUN exit 3\n"),
        )],
    );
    let o = d.fails(&["build", "-t", "broken", &c]);
    assert!(o.all().contains("returned a non-zero code: 3"), "{o}");
    assert!(o.all().contains("/bin/sh -c exit 3"), "{o}");
    let o = d.fails(&["image", "inspect", "broken"]);
    assert!(o.all().contains("No such image"), "{o}");
    assert!(
        d.ok(&["ps", "-aq"]).is_empty(),
        "a failed build left a container"
    );
    assert!(
        !d.mounts().iter().any(|m| m.contains("builder")),
        "a failed build left a mount: {:?}",
        d.mounts()
    );

    // a bad Dockerfile: file and line named
    let c = ctx(
        &d,
        "bad",
        &[(
            "Dockerfile",
            &format!("FROM {IMAGE}\nRUN true\nCOPPY a b\n"),
        )],
    );
    let o = d.fails(&["build", &c]);
    assert!(
        o.all().contains("Dockerfile") && o.all().contains("line 3"),
        "{o}"
    );

    // a missing COPY source
    let c = ctx(
        &d,
        "missing",
        &[("Dockerfile", &format!("FROM {IMAGE}\nCOPY nothere /x\n"))],
    );
    let o = d.fails(&["build", &c]);
    assert!(o.all().contains("nothere"), "{o}");

    // ADD of a URL is refused, naming the URL
    let c = ctx(
        &d,
        "url",
        &[(
            "Dockerfile",
            &format!("FROM {IMAGE}\nADD http://127.0.0.1:9/file /x\n"),
        )],
    );
    let o = d.fails(&["build", &c]);
    assert!(o.all().contains("http://127.0.0.1:9/file"), "{o}");

    // bad query values: 400 naming the value
    let (s, v) = d.api("POST", "/build?platform=linux/arm64", None);
    assert_eq!(s, 400, "{v}");
    assert!(
        v["message"].as_str().unwrap_or("").contains("linux/arm64"),
        "{v}"
    );
    let (s, v) = d.api("POST", "/build?networkmode=nosuchnet", None);
    assert_eq!(s, 404, "{v}");
    assert!(
        v["message"].as_str().unwrap_or("").contains("nosuchnet"),
        "{v}"
    );
    // an unknown base image
    let c = ctx(
        &d,
        "nobase",
        &[("Dockerfile", "FROM 127.0.0.1:9/none/such:1\nRUN true\n")],
    );
    let o = d.fails(&["build", &c]);
    assert!(o.all().contains("127.0.0.1:9/none/such"), "{o}");
}

#[test]
fn run_steps_use_the_build_network_and_its_dns() {
    let d = Daemon::start();
    d.ok(&["network", "create", "buildnet"]);
    d.run_d(&[
        "--network",
        "buildnet",
        "--name",
        "db",
        "--network-alias",
        "database",
        IMAGE,
        "sleep",
        "300",
    ]);
    let c = ctx(
        &d,
        "net",
        &[(
            "Dockerfile",
            &format!("FROM {IMAGE}\nRUN nslookup database 127.0.0.11 | tail -n +3 > /resolved && ping -c1 -W2 db > /dev/null && grep -q myhost /etc/hosts\n"),
        )],
    );
    d.ok(&[
        "build",
        "--network",
        "buildnet",
        "--add-host",
        "myhost:10.9.9.9",
        "-t",
        "netbuilt",
        &c,
    ]);
    let resolved = d.ok(&["run", "--rm", "netbuilt", "cat", "/resolved"]);
    let ip = d.ip_of("db", "buildnet");
    assert!(
        resolved.contains(&ip),
        "RUN did not resolve the container by alias: {resolved} (db is {ip})"
    );
    // without the network, the name does not resolve: the step fails
    let o = d.fails(&["build", "--no-cache", &c]);
    assert!(o.all().contains("non-zero code"), "{o}");
}

#[test]
fn docker_cli_builds_through_the_socket() {
    let d = Daemon::start();
    let docker = ["/usr/local/bin/docker", "/usr/bin/docker"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(docker) = docker else {
        panic!("the docker CLI is needed (apt-get install docker.io or docker-cli)");
    };
    let c = ctx(
        &d,
        "dcli",
        &[("Dockerfile", &format!("FROM {IMAGE}\nARG X=1\nRUN echo docker-built-$X > /proof\nCMD [\"cat\", \"/proof\"]\n"))],
    );
    let out = std::process::Command::new(docker)
        .args(["build", "--build-arg", "X=7", "-t", "viadocker", &c])
        .env("DOCKER_HOST", &d.host)
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("run docker build");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "docker build failed: {text}");
    assert!(
        text.contains("Successfully tagged viadocker:latest"),
        "{text}"
    );
    assert_eq!(d.ok(&["run", "--rm", "viadocker"]), "docker-built-7");
}

#[test]
fn compose_builds_with_tether_and_docker_compose() {
    let d = Daemon::start();
    let proj = d.dir().join("shop");
    write(
        &proj,
        &[
            (
                "backend/Dockerfile.backend",
                &format!("FROM {IMAGE}\nARG FLAVOR=plain\nRUN echo \"backend-$FLAVOR\" > /flavor\nCMD [\"sh\", \"-c\", \"cat /flavor; sleep 300\"]\n"),
            ),
            (
                "front/Dockerfile",
                &format!("FROM {IMAGE} AS base\nRUN echo front > /who\nFROM base AS prod\nCMD [\"sleep\", \"300\"]\n"),
            ),
            (
                "compose.yaml",
                "services:\n  api:\n    build:\n      context: ./backend\n      dockerfile: Dockerfile.backend\n      args:\n        FLAVOR: spicy\n  web:\n    image: shop/web:1\n    build:\n      context: front\n      target: prod\n      labels:\n        tier: front\n",
            ),
        ],
    );
    let file = proj.join("compose.yaml").display().to_string();
    // tether compose: up builds what is missing, then `build` rebuilds from the cache
    let o = d.cli(&["compose", "-f", &file, "up", "-d"]);
    assert!(o.success(), "compose up: {o}");
    assert_eq!(
        d.ok(&["exec", "shop-api-1", "cat", "/flavor"]),
        "backend-spicy"
    );
    assert_eq!(d.ok(&["exec", "shop-web-1", "cat", "/who"]), "front");
    let (_, img) = d.api("GET", "/images/shop/web:1/json", None);
    assert_eq!(img["Config"]["Labels"]["tier"], "front", "{img}");
    let o = d.cli(&["compose", "-f", &file, "build"]);
    assert!(o.success(), "compose build: {o}");
    assert!(o.all().contains("Using cache"), "{o}");
    d.ok(&["compose", "-f", &file, "down"]);

    // docker-compose 1.29 drives the same build through the socket
    d.ok(&["rmi", "-f", "shop-api", "shop/web:1"]);
    let mut c = std::process::Command::new("docker-compose");
    c.args(["-f", &file, "-p", "dc", "build", "api"])
        .env("DOCKER_HOST", &d.host)
        .env("COMPOSE_DOCKER_CLI_BUILD", "0")
        .env("DOCKER_BUILDKIT", "0");
    let o = common::run_with_limit(c, common::COMMAND_LIMIT);
    assert!(
        o.success(),
        "docker-compose build (apt-get install docker-compose): {o}"
    );
    assert!(o.all().contains("Successfully tagged dc_api:latest"), "{o}");
    assert_eq!(
        d.ok(&["run", "--rm", "--entrypoint", "cat", "dc_api", "/flavor"]),
        "backend-spicy"
    );
}

/// A client that goes away mid-build (^C) cancels it: the RUN container is killed and
/// removed, no mount of the build stays, nothing is tagged.
#[test]
fn a_client_that_goes_away_cancels_the_build() {
    use std::io::{BufRead, BufReader};
    let d = Daemon::start();
    let tarpath = d.dir().join("slow.tar");
    {
        let f = std::fs::File::create(&tarpath).unwrap();
        let mut b = tar::Builder::new(f);
        let df = format!("FROM {IMAGE}\nRUN echo started && sleep 60\n");
        let mut h = tar::Header::new_gnu();
        h.set_size(df.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        b.append_data(&mut h, "Dockerfile", df.as_bytes()).unwrap();
        b.finish().unwrap();
    }
    let mut curl = std::process::Command::new("curl")
        .args(["-sN", "--unix-socket"])
        .arg(d.socket())
        .args([
            "-X",
            "POST",
            "-H",
            "Content-Type: application/x-tar",
            "--data-binary",
        ])
        .arg(format!("@{}", tarpath.display()))
        .arg("http://tether/build?t=slow")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run curl");
    let out = curl.stdout.take().unwrap();
    let mut seen = String::new();
    for line in BufReader::new(out).lines() {
        let line = line.unwrap_or_default();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(r#"{"stream":"started\n"}"#) {
            break;
        }
    }
    assert!(seen.contains("Running in"), "{seen}");
    assert_eq!(
        d.ok(&["ps", "-q"]).lines().count(),
        1,
        "the RUN container is not running"
    );
    let _ = curl.kill();
    let _ = curl.wait();
    common::wait_until(
        "the build container to go",
        std::time::Duration::from_secs(20),
        || d.ok(&["ps", "-aq"]).is_empty(),
    );
    assert!(
        !d.mounts().iter().any(|m| m.contains("builder")),
        "{:?}",
        d.mounts()
    );
    let o = d.fails(&["image", "inspect", "slow"]);
    assert!(o.all().contains("No such image"), "{o}");
}
