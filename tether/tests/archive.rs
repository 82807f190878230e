//! Container archives (`HEAD/GET/PUT /containers/{id}/archive`), `tether cp` both ways,
//! `export` (`GET /containers/{id}/export`) and `diff` (`GET /containers/{id}/changes`),
//! on running and stopped containers; paths never leave the container's filesystem.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};

use common::{Daemon, IMAGE};
use serde_json::Value;

/// One HTTP exchange with binary bodies: (status, headers lower-cased, body).
fn http(
    d: &Daemon,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = UnixStream::connect(d.socket()).expect("connect to the API socket");
    s.set_read_timeout(Some(common::COMMAND_LIMIT)).ok();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: tether\r\nConnection: close\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("send the request");
    s.write_all(body).expect("send the body");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the answer");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut payload = raw[split + 4..].to_vec();
    if method == "HEAD" {
        payload.clear();
    } else if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        payload = dechunk(&payload);
    }
    (status, headers, payload)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        b = &b[eol + 2..];
        if size == 0 || b.len() < size {
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or_default();
    }
    out
}

/// The decoded `X-Docker-Container-Path-Stat` header.
fn path_stat(headers: &[(String, String)]) -> Value {
    let v = headers
        .iter()
        .find(|(k, _)| k == "x-docker-container-path-stat")
        .map(|(_, v)| v.clone())
        .expect("an X-Docker-Container-Path-Stat header");
    let mut child = Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run base64");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(v.as_bytes())
        .expect("feed base64");
    let out = child.wait_with_output().expect("base64 output");
    serde_json::from_slice(&out.stdout).expect("the path stat is JSON")
}

/// `tar -tv` listing of an archive: one "TYPE+MODE OWNER NAME" triple per entry.
fn tar_list(tar: &[u8]) -> Vec<(String, String, String)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let f = dir.path().join("a.tar");
    std::fs::write(&f, tar).expect("write the tar");
    let o = Command::new("tar")
        .args(["--numeric-owner", "-tvf"])
        .arg(&f)
        .output()
        .expect("run tar");
    assert!(o.status.success(), "tar -tvf: {:?}", o);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            // perms owner size date time name [-> target]
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f.first().unwrap_or(&"").to_string(),
                f.get(1).unwrap_or(&"").to_string(),
                f.get(5..).map(|x| x.join(" ")).unwrap_or_default(),
            )
        })
        .collect()
}

fn names(list: &[(String, String, String)]) -> Vec<String> {
    list.iter().map(|(_, _, n)| n.clone()).collect()
}

/// A tar made by the system's tar from `dir`'s entries `names`, owned by `owner`.
fn make_tar(dir: &Path, names: &[&str], owner: u32) -> Vec<u8> {
    let o = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .args([
            "--numeric-owner",
            &format!("--owner={owner}"),
            &format!("--group={owner}"),
            "-cf",
            "-",
        ])
        .args(names)
        .output()
        .expect("run tar");
    assert!(o.status.success(), "tar -c: {o:?}");
    o.stdout
}

#[test]
fn archive_api_on_a_running_container() {
    let d = Daemon::start();
    // a host directory the container must never reach through its symlinks
    let host = d.dir().join("host-secret");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("secret"), "host only\n").unwrap();
    let host_s = host.display().to_string();
    d.run_d(&["--name", "web", IMAGE, "sleep", "600"]);
    let o = d.sh(
        "web",
        &format!(
            "mkdir -p /data/sub {host_s} && echo hello > /data/sub/f && chmod 640 /data/sub/f \
             && ln -s /data/sub /data/link && ln -s {host_s} /data/out \
             && ln -s ../../../../../../../../{host_s}/secret /data/up && chown 7:8 /data/sub/f"
        ),
    );
    assert!(o.success(), "{o}");

    // HEAD: the stat of a file, of a symlink (resolved in the container), errors
    let (st, h, _) = http(&d, "HEAD", "/containers/web/archive?path=/data/sub/f", b"");
    assert_eq!(st, 200);
    let s = path_stat(&h);
    assert_eq!(s["name"], "f");
    assert_eq!(s["size"], 6);
    assert_eq!(s["mode"], 0o640);
    assert_eq!(s["linkTarget"], "");
    assert!(s["mtime"].as_str().unwrap_or("").contains('T'), "{s}");
    let (st, h, _) = http(&d, "HEAD", "/containers/web/archive?path=/data/link", b"");
    assert_eq!(st, 200);
    let s = path_stat(&h);
    assert_eq!(s["mode"].as_u64().unwrap() & (1 << 27), 1 << 27, "{s}");
    assert_eq!(s["linkTarget"], "/data/sub");
    let (st, h, _) = http(&d, "HEAD", "/containers/web/archive?path=/data/sub/", b"");
    assert_eq!(st, 200);
    assert_eq!(
        path_stat(&h)["mode"].as_u64().unwrap() >> 31,
        1,
        "a directory"
    );
    let (st, _, b) = http(&d, "GET", "/containers/web/archive?path=/nope", b"");
    assert_eq!(st, 404);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(
        v["message"],
        "Could not find the file /nope in container web"
    );
    let (st, _, b) = http(&d, "GET", "/containers/web/archive", b"");
    assert_eq!(st, 400, "{}", String::from_utf8_lossy(&b));
    assert!(String::from_utf8_lossy(&b).contains("path cannot be empty"));
    let (st, _, _) = http(&d, "HEAD", "/containers/nosuch/archive?path=/", b"");
    assert_eq!(st, 404);

    // GET: a directory comes with everything below it, named after the path
    let (st, h, tar) = http(&d, "GET", "/containers/web/archive?path=/data/sub", b"");
    assert_eq!(st, 200);
    assert_eq!(path_stat(&h)["name"], "sub");
    let l = tar_list(&tar);
    assert_eq!(names(&l), vec!["sub/", "sub/f"]);
    assert!(l[1].0.starts_with("-rw-r-----") && l[1].1 == "7/8", "{l:?}");
    // dir/. gives its contents
    let (st, _, tar) = http(&d, "GET", "/containers/web/archive?path=/data/sub/.", b"");
    assert_eq!(st, 200);
    assert_eq!(names(&tar_list(&tar)), vec!["./", "./f"]);
    // a symlink is archived as the link; with a trailing / its target directory
    let (_, _, tar) = http(&d, "GET", "/containers/web/archive?path=/data/link", b"");
    let l = tar_list(&tar);
    assert_eq!(l.len(), 1);
    assert!(
        l[0].0.starts_with('l') && l[0].2 == "link -> /data/sub",
        "{l:?}"
    );
    let (_, _, tar) = http(&d, "GET", "/containers/web/archive?path=/data/link/", b"");
    assert_eq!(names(&tar_list(&tar)), vec!["link/", "link/f"]);

    // symlinks resolve inside the container: the host's directory is never reached
    let (st, _, _) = http(&d, "GET", "/containers/web/archive?path=/data/up", b"");
    assert_eq!(st, 200, "the link itself exists");
    for p in ["/data/out/secret", "/data/up/", "/data/out/."] {
        let (st, _, tar) = http(&d, "GET", &format!("/containers/web/archive?path={p}"), b"");
        if st == 200 {
            let l = tar_list(&tar);
            assert!(
                !names(&l).iter().any(|n| n.ends_with("secret")),
                "{p} reached the host: {l:?}"
            );
        } else {
            assert_eq!(st, 404, "{p}");
        }
    }

    // PUT: extraction into a directory; ownership root unless copyUIDGID; modes kept
    let src = d.dir().join("src");
    std::fs::create_dir_all(src.join("dir")).unwrap();
    std::fs::write(src.join("dir/x.txt"), "x\n").unwrap();
    std::fs::set_permissions(
        src.join("dir/x.txt"),
        std::fs::Permissions::from_mode(0o751),
    )
    .unwrap();
    let tar = make_tar(&src, &["dir"], 1234);
    let (st, _, b) = http(&d, "PUT", "/containers/web/archive?path=/data", &tar);
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&b));
    assert_eq!(
        d.sh("web", "stat -c '%u:%g %a' /data/dir/x.txt /data/dir")
            .out(),
        "0:0 751\n0:0 755"
    );
    let (st, _, _) = http(
        &d,
        "PUT",
        "/containers/web/archive?path=/data/sub&copyUIDGID=1",
        &tar,
    );
    assert_eq!(st, 200);
    assert_eq!(
        d.sh(
            "web",
            "stat -c '%u:%g %a' /data/sub/dir/x.txt; cat /data/sub/dir/x.txt"
        )
        .out(),
        "1234:1234 751\nx"
    );
    // through a symlink to a directory the container has at the host's path: the
    // container's directory gets it, the host's stays as it was
    let (st, _, _) = http(&d, "PUT", "/containers/web/archive?path=/data/out", &tar);
    assert_eq!(st, 200);
    assert!(!host.join("dir").exists(), "a PUT wrote on the host");
    assert!(d
        .sh("web", &format!("test -f {host_s}/dir/x.txt"))
        .success());
    // errors: not a directory, missing, a directory replaced by a file, bad params
    let (st, _, b) = http(&d, "PUT", "/containers/web/archive?path=/data/sub/f", &tar);
    assert_eq!(st, 400);
    assert!(String::from_utf8_lossy(&b).contains("not a directory"));
    let (st, _, b) = http(&d, "PUT", "/containers/web/archive?path=/nowhere", &tar);
    assert_eq!(st, 404);
    assert!(String::from_utf8_lossy(&b).contains("Could not find the file /nowhere"));
    std::fs::write(src.join("sub"), "now a file\n").unwrap();
    let ftar = make_tar(&src, &["sub"], 0);
    let (st, _, b) = http(
        &d,
        "PUT",
        "/containers/web/archive?path=/data&noOverwriteDirNonDir=true",
        &ftar,
    );
    assert_eq!(st, 400, "{}", String::from_utf8_lossy(&b));
    assert!(
        String::from_utf8_lossy(&b).contains("cannot overwrite directory"),
        "{}",
        String::from_utf8_lossy(&b)
    );
    let (st, _, b) = http(
        &d,
        "PUT",
        "/containers/web/archive?path=/data&copyUIDGID=maybe",
        &ftar,
    );
    assert_eq!(st, 400);
    assert!(String::from_utf8_lossy(&b).contains("maybe"));
    let (st, _, _) = http(
        &d,
        "PUT",
        "/containers/web/archive?path=/data",
        b"not a tar at all, really not",
    );
    assert_eq!(st, 400, "a malformed archive is a bad request");
    // a large archive is streamed through; refused ones are still read to the end
    let big: Vec<u8> = (0..12_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(src.join("big.bin"), &big).unwrap();
    let btar = make_tar(&src, &["big.bin"], 0);
    let (st, _, b) = http(&d, "PUT", "/containers/web/archive?path=/nowhere", &btar);
    assert_eq!(st, 404, "{}", String::from_utf8_lossy(&b));
    let (st, _, b) = http(&d, "PUT", "/containers/nosuch/archive?path=/", &btar);
    assert_eq!(st, 404, "{}", String::from_utf8_lossy(&b));
    let (st, _, b) = http(&d, "PUT", "/containers/web/archive?path=/data", &btar);
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&b));
    let (st, _, tar) = http(&d, "GET", "/containers/web/archive?path=/data/big.bin", b"");
    assert_eq!(st, 200);
    let back = d.dir().join("back");
    std::fs::create_dir_all(&back).unwrap();
    std::fs::write(back.join("b.tar"), &tar).unwrap();
    let o = Command::new("tar")
        .arg("-C")
        .arg(&back)
        .arg("-xf")
        .arg(back.join("b.tar"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    assert!(
        std::fs::read(back.join("big.bin")).unwrap() == big,
        "the file came back intact"
    );
}

#[test]
fn stopped_containers_and_bind_mounts() {
    let d = Daemon::start();
    let bind = d.dir().join("bind");
    std::fs::create_dir_all(&bind).unwrap();
    let vol = format!("{}:/mnt", bind.display());
    d.ok(&[
        "create",
        "--name",
        "st",
        "-v",
        &vol,
        "-v",
        "rovol:/ro:ro",
        IMAGE,
        "cat",
        "/etc/added",
    ]);
    let src = d.dir().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("added"), "put while stopped\n").unwrap();
    let added = make_tar(&src, &["added"], 0);
    // a created (never started) container: its overlay is mounted only for the copy
    let (st, _, b) = http(&d, "PUT", "/containers/st/archive?path=/etc", &added);
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&b));
    assert!(d.mounts().is_empty(), "mounts left: {:?}", d.mounts());
    // its bind mounts and volumes are there as its start would make them
    let (st, _, b) = http(&d, "PUT", "/containers/st/archive?path=/mnt", &added);
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&b));
    assert_eq!(
        std::fs::read_to_string(bind.join("added")).unwrap(),
        "put while stopped\n"
    );
    std::fs::remove_file(bind.join("added")).unwrap();
    let (st, _, b) = http(&d, "PUT", "/containers/st/archive?path=/ro", &added);
    assert_eq!(st, 400, "{}", String::from_utf8_lossy(&b));
    assert!(
        String::from_utf8_lossy(&b).contains("Read-only file system"),
        "{}",
        String::from_utf8_lossy(&b)
    );
    assert!(d.mounts().is_empty(), "mounts left: {:?}", d.mounts());
    let (st, h, _) = http(&d, "HEAD", "/containers/st/archive?path=/etc/added", b"");
    assert_eq!(st, 200);
    assert_eq!(path_stat(&h)["size"], 18);
    d.ok(&["start", "-a", "st"]);
    assert_eq!(d.ok(&["logs", "st"]), "put while stopped");
    // exited now: readable again, image files too
    let (st, _, tar) = http(&d, "GET", "/containers/st/archive?path=/etc/passwd", b"");
    assert_eq!(st, 200);
    assert_eq!(names(&tar_list(&tar)), vec!["passwd"]);
    assert!(d.mounts().is_empty(), "mounts left: {:?}", d.mounts());

    // a running container's bind mount is the host directory the user gave
    d.run_d(&["--name", "b", "-v", &vol, IMAGE, "sleep", "600"]);
    let (st, _, _) = http(&d, "PUT", "/containers/b/archive?path=/mnt", &added);
    assert_eq!(st, 200);
    assert_eq!(
        std::fs::read_to_string(bind.join("added")).unwrap(),
        "put while stopped\n"
    );
    // /etc/hosts is the container's own
    let (st, _, tar) = http(&d, "GET", "/containers/b/archive?path=/etc/hosts", b"");
    assert_eq!(st, 200);
    let l = tar_list(&tar);
    assert_eq!(names(&l), vec!["hosts"]);
}

#[test]
fn cp_both_ways() {
    let d = Daemon::start();
    d.run_d(&["--name", "c", IMAGE, "sleep", "600"]);
    let w = d.dir().join("work");
    std::fs::create_dir_all(w.join("tree/deep")).unwrap();
    std::fs::write(w.join("backup.sql"), "select 1;\n").unwrap();
    std::fs::set_permissions(w.join("backup.sql"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(w.join("tree/deep/leaf"), "leaf\n").unwrap();
    std::os::unix::fs::chown(w.join("tree/deep/leaf"), Some(4321), Some(4322)).unwrap();
    let ws = |p: &str| w.join(p).display().to_string();

    // the tutorial's command: a file into the container's root
    d.ok(&["cp", &ws("backup.sql"), "c:/"]);
    assert_eq!(
        d.sh("c", "stat -c '%u:%g %a' /backup.sql; cat /backup.sql")
            .out(),
        "0:0 600\nselect 1;"
    );
    // a file to a new name, a directory into an existing one, a directory to a new
    // name, dir/. into an existing directory; without -a root owns them, with -a not
    d.ok(&["cp", &ws("backup.sql"), "c:/tmp/renamed.sql"]);
    d.ok(&["cp", &ws("tree"), "c:/tmp"]);
    d.ok(&["cp", "-a", &ws("tree"), "c:/newtree"]);
    d.sh("c", "mkdir /into");
    d.ok(&["cp", &format!("{}/.", ws("tree")), "c:/into"]);
    assert_eq!(
        d.sh(
            "c",
            "cat /tmp/renamed.sql /tmp/tree/deep/leaf /newtree/deep/leaf /into/deep/leaf; \
             stat -c '%u:%g' /tmp/tree/deep/leaf /newtree/deep/leaf"
        )
        .out(),
        "select 1;\nleaf\nleaf\nleaf\n0:0\n4321:4322"
    );
    // errors: a file to a missing directory path, a directory onto a file, no container
    let o = d.fails(&["cp", &ws("backup.sql"), "c:/missing/"]);
    assert!(
        o.stderr.contains("no such directory") && o.stderr.contains("c:/missing/"),
        "{o}"
    );
    let o = d.fails(&["cp", &ws("tree"), "c:/backup.sql"]);
    assert!(o.stderr.contains("cannot copy directory"), "{o}");
    let o = d.fails(&["cp", &ws("nope"), "c:/"]);
    assert!(o.stderr.contains("no such file or directory"), "{o}");
    let o = d.fails(&["cp", &ws("backup.sql"), "nosuch:/"]);
    assert!(o.stderr.contains("nosuch"), "{o}");
    let o = d.fails(&["cp", "a", "b"]);
    assert!(
        o.stderr
            .contains("must specify at least one container source"),
        "{o}"
    );

    // out of the container: a file, a directory, dir/., a new name
    let out = d.dir().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let os = |p: &str| out.join(p).display().to_string();
    d.ok(&["cp", "c:/etc/passwd", &os("")]);
    assert!(std::fs::read_to_string(out.join("passwd"))
        .unwrap()
        .starts_with("root:"));
    d.ok(&["cp", "c:/newtree", &os("t1")]);
    d.ok(&["cp", "c:/newtree", &os("")]);
    d.ok(&["cp", "c:/newtree/.", &os("t2")]);
    for p in ["t1/deep/leaf", "newtree/deep/leaf", "t2/deep/leaf"] {
        assert_eq!(
            std::fs::read_to_string(out.join(p)).unwrap(),
            "leaf\n",
            "{p}"
        );
    }
    // -a keeps the container's owners here too (we are root)
    d.ok(&["cp", "-a", "c:/newtree/deep/leaf", &os("owned")]);
    let m = std::fs::metadata(out.join("owned")).unwrap();
    assert_eq!((m.uid(), m.gid()), (4321, 4322));
    let o = d.fails(&["cp", "c:/nope", &os("")]);
    assert!(
        o.stderr
            .contains("Could not find the file /nope in container c"),
        "{o}"
    );
    // -L follows a symlink given as the source
    d.sh("c", "ln -s /newtree/deep/leaf /lnk");
    d.ok(&["cp", "c:/lnk", &os("plainlink")]);
    assert!(std::fs::symlink_metadata(out.join("plainlink"))
        .unwrap()
        .file_type()
        .is_symlink());
    d.ok(&["cp", "-L", "c:/lnk", &os("followed")]);
    assert_eq!(
        std::fs::read_to_string(out.join("followed")).unwrap(),
        "leaf\n"
    );

    // `-` streams a tar: out to stdout, in from stdin
    let o = d.cli(&["cp", "c:/newtree", "-"]);
    assert!(o.success(), "{o}");
    let mut cmd = Command::new(common::TETHER);
    cmd.args(["-H", &d.host, "cp", "-", "c:/tmp"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let tar = make_tar(&w, &["tree"], 0);
    child.stdin.take().unwrap().write_all(&tar).unwrap();
    let st = child.wait_with_output().unwrap();
    assert!(st.status.success(), "{st:?}");
    let l = {
        let o = Command::new(common::TETHER)
            .args(["-H", &d.host, "cp", "c:/newtree", "-"])
            .output()
            .unwrap();
        tar_list(&o.stdout)
    };
    assert_eq!(
        names(&l),
        vec!["newtree/", "newtree/deep/", "newtree/deep/leaf"]
    );
}

#[test]
fn export_and_diff() {
    let d = Daemon::start();
    d.run_d(&["--name", "e", IMAGE, "sleep", "600"]);
    let o = d.sh(
        "e",
        "echo new > /newfile && rm /etc/group && echo more >> /etc/passwd && mkdir -p /opt/a/b",
    );
    assert!(o.success(), "{o}");
    assert_eq!(
        d.ok(&["diff", "e"]),
        "C /etc\nD /etc/group\nC /etc/passwd\nA /newfile\nA /opt\nA /opt/a\nA /opt/a/b"
    );
    let (st, v) = d.api("GET", "/containers/e/changes", None);
    assert_eq!(st, 200);
    assert_eq!(v[0], serde_json::json!({"Path": "/etc", "Kind": 0}));
    assert_eq!(d.api("GET", "/containers/nosuch/changes", None).0, 404);

    // export: the root filesystem with the changes, not /proc's contents
    let file = d.dir().join("e.tar");
    let fs_ = file.display().to_string();
    d.ok(&["export", "-o", &fs_, "e"]);
    let l = names(&tar_list(&std::fs::read(&file).unwrap()));
    assert!(l.contains(&"bin/busybox".to_string()), "{l:?}");
    assert!(l.contains(&"newfile".to_string()));
    assert!(!l.contains(&"etc/group".to_string()));
    assert!(
        !l.iter().any(|n| n.starts_with("proc/") && n.len() > 5),
        "{l:?}"
    );
    // stopped: the same through the API, and no mount is left behind
    d.ok(&["stop", "-t", "0", "e"]);
    let (st, _, tar) = http(&d, "GET", "/containers/e/export", b"");
    assert_eq!(st, 200);
    let l2 = names(&tar_list(&tar));
    assert!(l2.contains(&"newfile".to_string()));
    assert!(d.mounts().is_empty(), "{:?}", d.mounts());
    assert_eq!(
        d.ok(&["diff", "e"]).lines().count(),
        7,
        "diff of a stopped container"
    );
    let o = d.fails(&["export", "nosuch"]);
    assert!(o.stderr.contains("No such container: nosuch"), "{o}");
}

/// The real docker CLI against tether: `docker cp` both ways (the tutorial's
/// `docker cp backup.sql pg_container:/`).
#[test]
fn docker_cli_cp() {
    let Some(docker) = ["/usr/local/bin/docker", "/usr/bin/docker"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("no docker CLI: skipped");
        return;
    };
    let d = Daemon::start();
    d.run_d(&["--name", "pg_container", IMAGE, "sleep", "600"]);
    let w = d.dir().join("w");
    std::fs::create_dir_all(&w).unwrap();
    std::fs::write(w.join("backup.sql"), "create table t();\n").unwrap();
    let run = |args: &[&str]| {
        let mut c = Command::new(docker);
        c.args(args).env("DOCKER_HOST", &d.host).current_dir(&w);
        common::run_with_limit(c, common::COMMAND_LIMIT)
    };
    let o = run(&["cp", "backup.sql", "pg_container:/"]);
    assert!(o.success(), "{o}");
    assert_eq!(
        d.sh("pg_container", "cat /backup.sql").out(),
        "create table t();"
    );
    let o = run(&["cp", "pg_container:/etc/passwd", "passwd.copy"]);
    assert!(o.success(), "{o}");
    assert!(std::fs::read_to_string(w.join("passwd.copy"))
        .unwrap()
        .starts_with("root:"));
    // directories both ways, dir/. into a new directory, -a keeping owners
    std::fs::create_dir_all(w.join("conf/sub")).unwrap();
    std::fs::write(w.join("conf/sub/app.ini"), "[x]\n").unwrap();
    std::os::unix::fs::chown(w.join("conf/sub/app.ini"), Some(70), Some(71)).unwrap();
    let o = run(&["cp", "conf", "pg_container:/etc"]);
    assert!(o.success(), "{o}");
    let o = run(&["cp", "-a", "conf/.", "pg_container:/conf2"]);
    assert!(o.success(), "{o}");
    assert_eq!(
        d.sh(
            "pg_container",
            "cat /etc/conf/sub/app.ini /conf2/sub/app.ini; stat -c %u:%g /etc/conf/sub/app.ini /conf2/sub/app.ini"
        )
        .out(),
        "[x]\n[x]\n0:0\n70:71"
    );
    let o = run(&["cp", "pg_container:/conf2/.", "back"]);
    assert!(o.success(), "{o}");
    assert_eq!(
        std::fs::read_to_string(w.join("back/sub/app.ini")).unwrap(),
        "[x]\n"
    );
    let o = run(&["cp", "pg_container:/etc/conf", "."]);
    assert!(o.success(), "{o}");
    // docker diff and docker export read the same endpoints
    let o = run(&["diff", "pg_container"]);
    assert!(o.success(), "{o}");
    assert!(o.stdout.lines().any(|l| l == "A /backup.sql"), "{o}");
    let o = run(&["export", "-o", "pg.tar", "pg_container"]);
    assert!(o.success(), "{o}");
    let l = names(&tar_list(&std::fs::read(w.join("pg.tar")).unwrap()));
    assert!(l.contains(&"backup.sql".to_string()), "{l:?}");
    let o = run(&["cp", "pg_container:/nope", "x"]);
    assert!(!o.success());
    assert!(o.stderr.contains("Could not find the file /nope"), "{o}");
}
