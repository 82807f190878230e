//! Parsing, interpolation, validation and planning tests.

use serde_json::json;

use crate::load::load_texts;
use crate::model::Condition;
use crate::plan::{self, start_order, ContainerOptions};
use crate::Project;

fn project(text: &str) -> Project {
    project_env(text, &[])
}

fn project_env(text: &str, env: &[(&str, &str)]) -> Project {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("My_App");
    std::fs::create_dir(&sub).unwrap();
    let p = load_texts(&sub, &[("compose.yaml", text)], env).unwrap();
    // keep the directory alive for the caller's bind paths only as strings
    std::mem::forget(dir);
    p
}

fn error(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    load_texts(dir.path(), &[("compose.yaml", text)], &[])
        .unwrap_err()
        .to_string()
}

const FULL: &str = r#"
name: shop
x-common: &common
  restart: unless-stopped
services:
  web:
    <<: *common
    image: busybox:latest
    command: sh -c 'echo "hi there" && sleep 1'
    entrypoint: ["/bin/sh"]
    environment:
      A: 1
      B: "two"
      C:
    ports:
      - "8080:80"
      - "127.0.0.1:5353:53/udp"
      - 9000
      - target: 443
        published: "8443"
        host_ip: 0.0.0.0
        protocol: tcp
    expose: ["3000", 3001]
    volumes:
      - ./html:/usr/share/html:ro
      - data:/var/lib/x
      - type: bind
        source: ./conf
        target: /etc/conf
        read_only: true
      - type: volume
        source: data
        target: /data2
    hostname: webhost
    networks:
      front:
        aliases: [www, site]
        ipv4_address: 10.5.0.10
        gw_priority: 5
      back:
    links: ["db:database"]
    extra_hosts: ["gw:10.0.0.1", "other=10.0.0.2"]
    dns: 10.0.0.53
    depends_on:
      db:
        condition: service_healthy
    labels: ["tier=front", "bare"]
    working_dir: /srv
    user: "1000"
    stop_signal: SIGINT
    stop_grace_period: 3s
    deploy:
      replicas: 2
  db:
    image: busybox
    healthcheck:
      test: ["CMD-SHELL", "nc -z 127.0.0.1 5432"]
      interval: 1s
      timeout: 2s
      retries: 5
      start_period: 1m
    networks: [back]
    environment: ["PGDATA=/data", "EMPTY="]
    restart: on-failure:3
  side:
    image: busybox
    network_mode: service:db
    healthcheck:
      disable: true
networks:
  front:
    ipam:
      config:
        - subnet: 10.5.0.0/24
          gateway: 10.5.0.1
          ip_range: 10.5.0.128/25
    labels:
      team: a
  back:
    internal: true
    enable_ipv6: false
  outside:
    external: true
    name: corp-net
volumes:
  data:
    labels: {keep: "yes"}
  ext:
    external: true
"#;

#[test]
fn parses_every_form() {
    let p = project(FULL);
    assert_eq!(p.name, "shop");
    let web = &p.services["web"];
    assert_eq!(
        web.command.as_ref().unwrap().0,
        ["sh", "-c", "echo \"hi there\" && sleep 1"]
    );
    assert_eq!(web.entrypoint.as_ref().unwrap().0, ["/bin/sh"]);
    assert_eq!(web.restart.as_deref(), Some("unless-stopped"));
    assert_eq!(web.environment.0["A"].as_deref(), Some("1"));
    assert_eq!(web.environment.0["C"], None);
    assert_eq!(web.ports.0.len(), 4);
    assert_eq!(web.ports.0[1].protocol.as_deref(), Some("udp"));
    assert_eq!(web.ports.0[2].published, None);
    assert_eq!(web.ports.0[3].published.as_deref(), Some("8443"));
    assert_eq!(web.expose.0, ["3000", "3001"]);
    let bind = &web.volumes.0[0];
    assert_eq!(bind.kind, "bind");
    assert!(bind.source.as_ref().unwrap().starts_with('/'));
    assert!(bind.source.as_ref().unwrap().ends_with("/My_App/html"));
    assert!(bind.read_only);
    assert_eq!(web.volumes.0[1].kind, "volume");
    assert_eq!(web.networks.0["front"].aliases, ["www", "site"]);
    assert!(web.networks.0.contains_key("back"));
    assert_eq!(web.extra_hosts.0, ["gw:10.0.0.1", "other:10.0.0.2"]);
    assert_eq!(web.dns.0, ["10.0.0.53"]);
    assert_eq!(web.depends_on.0["db"].condition, Condition::ServiceHealthy);
    assert_eq!(web.labels.0["bare"], "");
    assert_eq!(plan::replicas(web), 2);
    let db = &p.services["db"];
    assert_eq!(db.environment.0["PGDATA"].as_deref(), Some("/data"));
    assert_eq!(db.environment.0["EMPTY"].as_deref(), Some(""));
    assert_eq!(p.networks["front"].name.as_deref(), Some("shop_front"));
    assert_eq!(p.networks["outside"].name.as_deref(), Some("corp-net"));
    assert_eq!(p.volumes["data"].name.as_deref(), Some("shop_data"));
    assert_eq!(p.volumes["ext"].name.as_deref(), Some("ext"));
    // side uses network_mode, so nobody needs the default network
    assert!(!p.networks.contains_key("default"));
}

#[test]
fn project_name_sources() {
    // directory name, normalized
    let p = project("services:\n  a:\n    image: busybox\n");
    assert_eq!(p.name, "my_app");
    assert!(p.networks.contains_key("default"));
    assert_eq!(p.network_name("default"), "my_app_default");
    let p = project_env(
        "name: fromfile\nservices:\n  a:\n    image: busybox\n",
        &[("COMPOSE_PROJECT_NAME", "fromenv")],
    );
    assert_eq!(p.name, "fromenv");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  a:\n    image: busybox\n",
    )
    .unwrap();
    let p = crate::load(&crate::LoadOptions {
        project_name: Some("given".into()),
        cwd: dir.path().to_path_buf(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(p.name, "given");
    assert_eq!(p.config_files, [dir.path().join("compose.yaml")]);
    let e = crate::load(&crate::LoadOptions {
        project_name: Some("Bad!".into()),
        cwd: dir.path().to_path_buf(),
        ..Default::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("invalid project name"), "{e}");
}

#[test]
fn default_file_names_and_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let e = crate::load(&crate::LoadOptions {
        cwd: dir.path().to_path_buf(),
        ..Default::default()
    })
    .unwrap_err();
    assert!(e.to_string().starts_with("no configuration file provided"));
    std::fs::write(
        dir.path().join("docker-compose.yml"),
        "services:\n  a:\n    image: busybox\n",
    )
    .unwrap();
    let p = crate::load(&crate::LoadOptions {
        cwd: dir.path().to_path_buf(),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(p.config_files, [dir.path().join("docker-compose.yml")]);
}

#[test]
fn interpolation_and_dotenv() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "TAG=1.0\nPORT=8080\nFROM_OS=dotenv\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("web.env"), "W1=file\nW2=file\n").unwrap();
    let text = r#"
services:
  web:
    image: "busybox:${TAG}"
    ports: ["${PORT}:80", "${OTHER:-9090}:90"]
    environment:
      - W2=inline
      - LIT=$$HOME
      - FROM_OS
      - MISSING_BARE
      - UNSET=${NOT_SET}
    env_file: web.env
    command: echo ${FROM_OS}
"#;
    let p = load_texts(dir.path(), &[("compose.yaml", text)], &[("FROM_OS", "os")]).unwrap();
    let web = &p.services["web"];
    assert_eq!(web.image.as_deref(), Some("busybox:1.0"));
    assert_eq!(web.ports.0[0].published.as_deref(), Some("8080"));
    assert_eq!(web.ports.0[1].published.as_deref(), Some("9090"));
    let env = &web.environment.0;
    assert_eq!(env["W1"].as_deref(), Some("file"));
    assert_eq!(env["W2"].as_deref(), Some("inline"));
    assert_eq!(env["LIT"].as_deref(), Some("$HOME"));
    assert_eq!(env["FROM_OS"].as_deref(), Some("os"));
    assert_eq!(env["MISSING_BARE"], None);
    assert_eq!(env["UNSET"].as_deref(), Some(""));
    assert_eq!(web.command.as_ref().unwrap().0, ["echo", "os"]);
    assert!(p
        .warnings
        .iter()
        .any(|w| w.contains("\"NOT_SET\" variable is not set")));
    // the create body drops variables without a value
    let b = p
        .container_create_body("web", 1, &ContainerOptions::default())
        .unwrap();
    let envs: Vec<&str> = b["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(envs.contains(&"W2=inline"));
    assert!(!envs.iter().any(|e| e.starts_with("MISSING_BARE")));

    let e = load_texts(
        dir.path(),
        &[(
            "compose.yaml",
            "services:\n  a:\n    image: ${IMG:?set IMG}\n",
        )],
        &[],
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "error while interpolating services.a.image: required variable IMG is missing a value: set IMG"
    );
}

#[test]
fn unknown_keys_name_key_line_and_valid_keys() {
    let e = error("services:\n  web:\n    image: busybox\n    imgae: x\n");
    assert!(
        e.contains("compose.yaml:4: services.web.imgae: unknown key `imgae`"),
        "{e}"
    );
    assert!(e.contains("expected one of `image`"), "{e}");
    let e = error("services:\n  web:\n    image: busybox\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      intervl: 1s\n");
    assert!(
        e.contains("compose.yaml:6: services.web.healthcheck.intervl: unknown key `intervl`"),
        "{e}"
    );
    let e = error("services:\n  web:\n    image: busybox\n    ports:\n      - target: 80\n        publishd: 8080\n");
    assert!(e.contains(":6: services.web.ports[0].publishd"), "{e}");
    let e = error("servics:\n  web:\n    image: busybox\n");
    assert!(
        e.contains("compose.yaml:1: servics: unknown key `servics`"),
        "{e}"
    );
    let e = error("services:\n  web:\n    image: busybox\nnetworks:\n  n:\n    drver: bridge\n");
    assert!(e.contains(":6: networks.n.drver: unknown key"), "{e}");
    // x- extensions are fine
    let dir = tempfile::tempdir().unwrap();
    load_texts(
        dir.path(),
        &[(
            "compose.yaml",
            "x-a: 1\nservices:\n  web:\n    image: busybox\n    x-note: hi\n",
        )],
        &[],
    )
    .unwrap();
}

#[test]
fn wrong_types_and_bad_yaml() {
    let e = error("services:\n  web:\n    image: busybox\n    ports: 8080\n");
    assert!(e.contains(":4: services.web.ports: invalid type"), "{e}");
    let e = error("services:\n  web:\n    image: busybox\n    ports: [\"80/xyz\"]\n");
    assert!(e.contains("invalid protocol \"xyz\""), "{e}");
    let e = error("services:\n  web:\n    image: busybox\n    tty: maybe\n");
    assert!(e.contains("services.web.tty: invalid type"), "{e}");
    let e = error("services:\n  web:\n    image: [busybox\n");
    assert!(e.contains("compose.yaml: yaml:"), "{e}");
    assert!(e.contains("line"), "{e}");
    let e = error("services:\n  web:\n    image: busybox\n    depends_on:\n      db:\n        condition: service_ready\n");
    assert!(
        e.contains("services.web.depends_on.db.condition: unknown variant `service_ready`"),
        "{e}"
    );
    let e = error("services:\n  web:\n    image: busybox\n    restart: sometimes\n");
    assert!(e.contains("service \"web\": invalid restart policy"), "{e}");
    let e =
        error("services:\n  web:\n    image: busybox\n    healthcheck:\n      interval: soon\n");
    assert!(e.contains("healthcheck.interval: invalid duration"), "{e}");
    let e = error("services:\n  web:\n    build:\n      context: .\n      bogus: 1\n");
    assert!(e.contains("build must be"), "{e}");
}

#[test]
fn reference_errors() {
    let e = error("services:\n  web:\n    image: busybox\n    depends_on: [db]\n");
    assert_eq!(
        e,
        "service \"web\": depends on undefined service \"db\": invalid compose project"
    );
    let e = error("services:\n  web:\n    image: busybox\n    links: [\"db:x\"]\n");
    assert!(
        e.contains("links refers to undefined service \"db\""),
        "{e}"
    );
    let e = error("services:\n  web:\n    image: busybox\n    networks: [nope]\n");
    assert_eq!(
        e,
        "service \"web\" refers to undefined network nope: invalid compose project"
    );
    let e = error("services:\n  web:\n    image: busybox\n    volumes: [\"data:/d\"]\n");
    assert_eq!(
        e,
        "service \"web\" refers to undefined volume data: invalid compose project"
    );
    let e = error("services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on: [c]\n  c:\n    image: busybox\n    depends_on: [a]\n");
    assert_eq!(e, "dependency cycle detected: a -> b -> c -> a");
    let e = error("services:\n  a:\n    image: busybox\n    network_mode: service:zz\n");
    assert!(
        e.contains("network_mode refers to undefined service \"zz\""),
        "{e}"
    );
}

#[test]
fn merges_override_files() {
    let dir = tempfile::tempdir().unwrap();
    let base = "services:\n  web:\n    image: busybox\n    ports: [\"80:80\"]\n    environment: [A=1, B=1]\n    command: [one]\n";
    let over = "services:\n  web:\n    ports: [\"81:81\"]\n    environment:\n      B: 2\n    command: [two]\n  extra:\n    image: busybox\n";
    let p = load_texts(
        dir.path(),
        &[("compose.yaml", base), ("compose.override.yaml", over)],
        &[],
    )
    .unwrap();
    let web = &p.services["web"];
    assert_eq!(web.ports.0.len(), 2);
    assert_eq!(web.environment.0["A"].as_deref(), Some("1"));
    assert_eq!(web.environment.0["B"].as_deref(), Some("2"));
    assert_eq!(web.command.as_ref().unwrap().0, ["two"]);
    assert!(p.services.contains_key("extra"));
    assert_eq!(p.config_files.len(), 2);
}

#[test]
fn names_labels_and_bodies() {
    let p = project(FULL);
    assert_eq!(p.container_name("web", 2), "shop-web-2");
    assert_eq!(p.service_networks("web"), ["back", "front"]);
    let l = p.container_labels("web", 2, &ContainerOptions::default());
    assert_eq!(l[plan::LABEL_PROJECT], "shop");
    assert_eq!(l[plan::LABEL_SERVICE], "web");
    assert_eq!(l[plan::LABEL_NUMBER], "2");
    assert_eq!(l[plan::LABEL_ONEOFF], "False");
    assert_eq!(
        l[plan::LABEL_WORKING_DIR],
        p.working_dir.display().to_string()
    );
    assert!(l[plan::LABEL_CONFIG_FILES].ends_with("/My_App/compose.yaml"));
    assert_eq!(l[plan::LABEL_DEPENDS_ON], "db:service_healthy:false");
    assert_eq!(l["tier"], "front");
    assert_eq!(l[plan::LABEL_CONFIG_HASH].len(), 64);

    let b = p
        .container_create_body("web", 1, &ContainerOptions::default())
        .unwrap();
    assert_eq!(b["Image"], "busybox:latest");
    assert_eq!(b["Hostname"], "webhost");
    assert_eq!(b["User"], "1000");
    assert_eq!(b["WorkingDir"], "/srv");
    assert_eq!(b["StopSignal"], "SIGINT");
    assert_eq!(b["StopTimeout"], 3);
    assert_eq!(b["Entrypoint"], json!(["/bin/sh"]));
    let h = &b["HostConfig"];
    assert_eq!(h["NetworkMode"], "shop_back");
    assert_eq!(
        h["PortBindings"]["80/tcp"],
        json!([{"HostIp": "", "HostPort": "8080"}])
    );
    assert_eq!(
        h["PortBindings"]["53/udp"],
        json!([{"HostIp": "127.0.0.1", "HostPort": "5353"}])
    );
    assert_eq!(
        h["PortBindings"]["9000/tcp"],
        json!([{"HostIp": "", "HostPort": ""}])
    );
    assert_eq!(b["ExposedPorts"]["3001/tcp"], json!({}));
    let binds: Vec<&str> = h["Binds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        binds[0].ends_with("/My_App/html:/usr/share/html:ro"),
        "{binds:?}"
    );
    assert_eq!(binds[1], "shop_data:/var/lib/x");
    assert!(binds[2].ends_with("/My_App/conf:/etc/conf:ro"));
    assert_eq!(binds[3], "shop_data:/data2");
    assert_eq!(h["Links"], json!(["shop-db-1:database"]));
    assert_eq!(h["ExtraHosts"], json!(["gw:10.0.0.1", "other:10.0.0.2"]));
    assert_eq!(h["Dns"], json!(["10.0.0.53"]));
    assert_eq!(
        h["RestartPolicy"],
        json!({"Name": "unless-stopped", "MaximumRetryCount": 0})
    );
    let eps = &b["NetworkingConfig"]["EndpointsConfig"];
    assert_eq!(eps["shop_front"]["Aliases"], json!(["web", "www", "site"]));
    assert_eq!(
        eps["shop_front"]["IPAMConfig"],
        json!({"IPv4Address": "10.5.0.10"})
    );
    assert_eq!(eps["shop_back"]["Aliases"], json!(["web"]));
    assert_eq!(eps["shop_front"]["GwPriority"], 5);
    assert!(eps["shop_back"].get("GwPriority").is_none());

    let db = p
        .container_create_body("db", 1, &ContainerOptions::default())
        .unwrap();
    assert_eq!(
        db["Healthcheck"],
        json!({"Test": ["CMD-SHELL", "nc -z 127.0.0.1 5432"], "Interval": 1_000_000_000i64,
               "Timeout": 2_000_000_000i64, "StartPeriod": 60_000_000_000i64, "Retries": 5})
    );
    assert_eq!(
        db["HostConfig"]["RestartPolicy"],
        json!({"Name": "on-failure", "MaximumRetryCount": 3})
    );
    let side = p
        .container_create_body("side", 1, &ContainerOptions::default())
        .unwrap();
    assert_eq!(side["HostConfig"]["NetworkMode"], "container:shop-db-1");
    assert_eq!(side["Healthcheck"], json!({"Test": ["NONE"]}));
    assert_eq!(side["NetworkingConfig"]["EndpointsConfig"], json!({}));

    // one-off containers: no aliases, no published ports, no restart policy
    let run = p
        .container_create_body(
            "web",
            1,
            &ContainerOptions {
                oneoff: true,
                slug: Some("abcdef0123456789".into()),
                command: Some(vec!["true".into()]),
                env: vec!["X=1".into()],
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(run["Labels"][plan::LABEL_ONEOFF], "True");
    assert_eq!(run["Cmd"], json!(["true"]));
    assert_eq!(run["HostConfig"]["PortBindings"], json!({}));
    assert_eq!(run["HostConfig"]["RestartPolicy"]["Name"], "no");
    assert!(run["NetworkingConfig"]["EndpointsConfig"]["shop_front"]
        .get("Aliases")
        .is_none());
    assert!(run["Env"].as_array().unwrap().contains(&json!("X=1")));
    assert_eq!(
        p.oneoff_name("web", "abcdef0123456789"),
        "shop-web-run-abcdef012345"
    );
}

#[test]
fn network_and_volume_bodies() {
    let p = project(FULL);
    let n = p.network_create_body("front");
    assert_eq!(n["Name"], "shop_front");
    assert_eq!(n["Driver"], "bridge");
    assert_eq!(
        n["IPAM"]["Config"],
        json!([{"Subnet": "10.5.0.0/24", "Gateway": "10.5.0.1", "IPRange": "10.5.0.128/25"}])
    );
    assert_eq!(
        n["Labels"],
        json!({"com.docker.compose.network": "front", "com.docker.compose.project": "shop",
               "com.docker.compose.version": plan::COMPOSE_VERSION, "team": "a"})
    );
    assert_eq!(p.network_create_body("back")["Internal"], true);
    let v = p.volume_create_body("data");
    assert_eq!(v["Name"], "shop_data");
    assert_eq!(v["Labels"]["com.docker.compose.volume"], "data");
    assert_eq!(v["Labels"]["com.docker.compose.project"], "shop");
    assert_eq!(v["Labels"]["keep"], "yes");
    assert_eq!(p.used_volumes(&[]), ["data"]);
    assert_eq!(p.used_networks(&["db".into()]), ["back"]);
}

#[test]
fn start_order_is_topological() {
    let p = project(FULL);
    let order = start_order(&p, &[]).unwrap();
    let pos = |s: &str| order.iter().position(|x| x == s).unwrap();
    assert!(pos("db") < pos("web"));
    assert!(pos("db") < pos("side"));
    assert_eq!(start_order(&p, &["web".into()]).unwrap(), ["db", "web"]);
    assert!(start_order(&p, &["nope".into()]).is_err());
}

#[test]
fn scale_and_config_hash() {
    let p =
        project("services:\n  a:\n    image: busybox\n    scale: 3\n  b:\n    image: busybox\n");
    assert_eq!(plan::replicas(&p.services["a"]), 3);
    assert_eq!(plan::replicas(&p.services["b"]), 1);
    let e = error(
        "services:\n  a:\n    image: busybox\n    scale: 2\n    deploy:\n      replicas: 3\n",
    );
    assert!(e.contains("differ"), "{e}");
    let e = error("services:\n  a:\n    image: busybox\n    container_name: one\n    scale: 2\n");
    assert!(
        e.contains("cannot be used with more than one replica"),
        "{e}"
    );
    let h1 = p.config_hash("a");
    let p2 = project("services:\n  a:\n    image: busybox\n    scale: 3\n    command: [x]\n  b:\n    image: busybox\n");
    assert_ne!(h1, p2.config_hash("a"));
    assert_eq!(p.config_hash("b"), p2.config_hash("b"));
}

#[test]
fn config_yaml_round_trips() {
    let p = project(FULL);
    let y = p.to_yaml().unwrap();
    assert!(y.contains("name: shop"));
    assert!(
        y.contains("published: '8080'") || y.contains("published: \"8080\""),
        "{y}"
    );
    // the printed model loads again to the same services
    let dir = tempfile::tempdir().unwrap();
    let again = load_texts(dir.path(), &[("compose.yaml", &y)], &[]).unwrap();
    assert_eq!(again.services["web"].ports, p.services["web"].ports);
    assert_eq!(
        again.services["db"].healthcheck,
        p.services["db"].healthcheck
    );
    assert_eq!(
        again.services["web"].environment,
        p.services["web"].environment
    );
}

#[test]
fn build_sections() {
    let p = project_env(
        "services:\n  api:\n    build: ./backend\n  web:\n    image: shop/web:2\n    build:\n      context: front\n      dockerfile: Dockerfile.web\n      args:\n        VERSION: \"1.2\"\n        FROM_ENV:\n      target: prod\n      labels: [team=web]\n      network: host\n      shm_size: 64m\n",
        &[("FROM_ENV", "env-value")],
    );
    let api = &p.services["api"];
    assert_eq!(api.image.as_deref(), Some("my_app-api"));
    let b = api.build.as_ref().unwrap();
    assert!(b.context.ends_with("My_App/backend"), "{}", b.context);
    let web = p.services["web"].build.as_ref().unwrap();
    assert_eq!(p.services["web"].image.as_deref(), Some("shop/web:2"));
    assert_eq!(web.dockerfile.as_deref(), Some("Dockerfile.web"));
    assert_eq!(web.args.0["VERSION"].as_deref(), Some("1.2"));
    assert_eq!(web.args.0["FROM_ENV"].as_deref(), Some("env-value"));
    assert_eq!(web.target.as_deref(), Some("prod"));
    assert_eq!(web.labels.0["team"], "web");
    assert_eq!(web.network.as_deref(), Some("host"));
    assert_eq!(web.shm_size.as_deref(), Some("64m"));
}

#[test]
fn pull_policies() {
    use crate::model::PullPolicy;
    let p = project(
        "services:\n  a:\n    image: x\n  b:\n    image: y\n    pull_policy: always\n  c:\n    image: z\n    pull_policy: if_not_present\n  d:\n    build: .\n    pull_policy: build\n  e:\n    image: w\n    pull_policy: never\n",
    );
    assert_eq!(p.services["a"].pull_policy(), PullPolicy::Missing);
    assert_eq!(p.services["b"].pull_policy(), PullPolicy::Always);
    assert_eq!(p.services["c"].pull_policy(), PullPolicy::Missing);
    assert_eq!(p.services["d"].pull_policy(), PullPolicy::Build);
    assert_eq!(p.services["e"].pull_policy(), PullPolicy::Never);
    assert!(p.services["d"].image_implied);
    assert!(!p.services["a"].image_implied);
    let e = error("services:\n  web:\n    image: x\n    pull_policy: sometimes\n");
    assert!(e.contains("\"web\""), "{e}");
    assert!(
        e.contains("invalid pull_policy \"sometimes\": expected always, missing"),
        "{e}"
    );
    let e = error("services:\n  web:\n    image: x\n    pull_policy: build\n");
    assert!(e.contains("no build section"), "{e}");
}
