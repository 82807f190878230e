//! Store-level tests: import/unpack, load (docker save + OCI), tags, remove.

use super::*;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use tar::{Builder, EntryType, Header};

const MTIME: u64 = 1_600_000_000;

/// In-memory tar builder for tests.
struct T {
    b: Builder<Vec<u8>>,
}

impl T {
    fn new() -> T {
        T {
            b: Builder::new(Vec::new()),
        }
    }
    fn header(kind: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(MTIME);
        h
    }
    fn dir(mut self, path: &str, mode: u32) -> T {
        let mut h = T::header(EntryType::Directory, mode, 0);
        self.b.append_data(&mut h, path, io::empty()).unwrap();
        self
    }
    fn file(self, path: &str, data: &[u8]) -> T {
        self.file_full(path, data, 0o644, 0, 0)
    }
    fn file_full(mut self, path: &str, data: &[u8], mode: u32, uid: u64, gid: u64) -> T {
        let mut h = T::header(EntryType::Regular, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        self.b.append_data(&mut h, path, data).unwrap();
        self
    }
    fn symlink(mut self, path: &str, target: &str) -> T {
        let mut h = T::header(EntryType::Symlink, 0o777, 0);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }
    fn hardlink(mut self, path: &str, target: &str) -> T {
        let mut h = T::header(EntryType::Link, 0o644, 0);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }
    fn node(mut self, path: &str, kind: EntryType, major: u32, minor: u32) -> T {
        let mut h = T::header(kind, 0o640, 0);
        h.set_device_major(major).unwrap();
        h.set_device_minor(minor).unwrap();
        self.b.append_data(&mut h, path, io::empty()).unwrap();
        self
    }
    /// An entry whose name bypasses the builder's `..` check.
    fn raw(mut self, name: &[u8], kind: EntryType, data: &[u8], link: Option<&[u8]>) -> T {
        let mut h = T::header(kind, 0o644, data.len() as u64);
        {
            let old = h.as_old_mut();
            old.name = [0; 100];
            old.name[..name.len()].copy_from_slice(name);
            if let Some(l) = link {
                old.linkname = [0; 100];
                old.linkname[..l.len()].copy_from_slice(l);
            }
        }
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }
    /// A PAX extended header with `key=value` records for the next entry.
    fn pax(mut self, records: &[(&str, &str)]) -> T {
        let mut data = String::new();
        for (k, v) in records {
            let body = format!(" {k}={v}\n");
            let mut total = body.len() + 1;
            while body.len() + total.to_string().len() != total {
                total = body.len() + total.to_string().len();
            }
            data.push_str(&format!("{total}{body}"));
        }
        let mut h = T::header(EntryType::XHeader, 0o644, data.len() as u64);
        self.b
            .append_data(&mut h, "PaxHeaders/x", data.as_bytes())
            .unwrap();
        self
    }
    fn build(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = ImageStore::open(&dir.path().join("image")).unwrap();
    (dir, s)
}

fn count_dir(p: &Path) -> usize {
    fs::read_dir(p).unwrap().count()
}

fn never(_: &str) -> bool {
    false
}

fn lgetxattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let p = CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = CString::new(name).unwrap();
    let mut buf = [0u8; 256];
    // SAFETY: valid C strings and buffer.
    let rc = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (rc >= 0).then(|| buf[..rc as usize].to_vec())
}

fn rootfs_tar() -> Vec<u8> {
    T::new()
        .dir("./", 0o755)
        .dir("bin/", 0o755)
        .file_full("bin/tool", b"#!/bin/sh\necho hi\n", 0o4755, 1000, 1001)
        .file("etc/nested/deep.conf", b"no parent entries")
        .symlink("bin/sh", "tool")
        .symlink("abs", "/etc")
        .hardlink("bin/tool2", "bin/tool")
        .node("dev/null", EntryType::Char, 1, 3)
        .node("run/fifo", EntryType::Fifo, 0, 0)
        .dir("opq/", 0o700)
        .file("opq/.wh..wh..opq", b"")
        .file("etc/.wh.removed", b"")
        .file(".wh..wh.plnk", b"")
        .pax(&[
            ("SCHILY.xattr.user.tether", "yes"),
            ("mtime", "1600000000.123456789"),
        ])
        .file("etc/xattr-file", b"x")
        .build()
}

#[test]
fn import_unpacks_tree_with_metadata() {
    let (_d, s) = store();
    let tar = rootfs_tar();
    let img = s
        .import(
            &tar[..],
            Some("tbox"),
            &["CMD [\"/bin/sh\"]".to_string(), "ENV A=1".to_string()],
            None,
        )
        .unwrap();
    assert_eq!(img.repo_tags, vec!["tbox:latest"]);
    assert_eq!(img.diff_ids, vec![sha(&tar)], "diff ID is the tar's sha256");
    assert!(valid_digest(&img.id));
    // ID = sha256 of the stored config bytes
    let cfg_bytes = fs::read(s.images_dir().join(hex_of(&img.id)).join("config.json")).unwrap();
    assert_eq!(sha(&cfg_bytes), img.id);
    let cfg: serde_json::Value = serde_json::from_slice(&cfg_bytes).unwrap();
    assert_eq!(cfg["os"], "linux");
    assert_eq!(cfg["architecture"], host_arch());
    assert_eq!(cfg["rootfs"]["type"], "layers");
    assert_eq!(cfg["rootfs"]["diff_ids"][0], img.diff_ids[0].as_str());
    assert_eq!(cfg["config"]["Cmd"][0], "/bin/sh");
    assert_eq!(cfg["config"]["Env"][0], "A=1");
    assert_eq!(cfg["history"][0]["comment"], "Imported from -");
    assert_eq!(img.config.cmd, Some(vec!["/bin/sh".to_string()]));

    let paths = s.layer_paths(&img);
    assert_eq!(paths.len(), 1);
    let root = &paths[0];
    assert!(root.ends_with(format!("layers/{}/diff", hex_of(&img.diff_ids[0]))));

    // regular file with setuid bit and owner preserved
    let tool = root.join("bin/tool");
    let m = fs::symlink_metadata(&tool).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o4755);
    assert_eq!((m.uid(), m.gid()), (1000, 1001));
    assert_eq!(m.mtime(), MTIME as i64);
    assert_eq!(fs::read(&tool).unwrap(), b"#!/bin/sh\necho hi\n");
    // hard link shares the inode
    assert_eq!(fs::metadata(root.join("bin/tool2")).unwrap().ino(), m.ino());
    // symlinks kept verbatim, not followed
    assert_eq!(
        fs::read_link(root.join("bin/sh")).unwrap(),
        Path::new("tool")
    );
    assert_eq!(fs::read_link(root.join("abs")).unwrap(), Path::new("/etc"));
    // implicit parents created
    assert_eq!(
        fs::read(root.join("etc/nested/deep.conf")).unwrap(),
        b"no parent entries"
    );
    // device and fifo
    let dev = fs::symlink_metadata(root.join("dev/null")).unwrap();
    assert!(dev.file_type().is_char_device());
    assert_eq!(dev.rdev(), libc::makedev(1, 3));
    assert_eq!(dev.mode() & 0o7777, 0o640);
    assert!(fs::symlink_metadata(root.join("run/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    // whiteout -> 0:0 char device; opaque dir -> xattr; markers not materialized
    let wh = fs::symlink_metadata(root.join("etc/removed")).unwrap();
    assert!(wh.file_type().is_char_device());
    assert_eq!(wh.rdev(), 0);
    assert!(!root.join("etc/.wh.removed").exists());
    assert_eq!(
        lgetxattr(&root.join("opq"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!root.join("opq/.wh..wh..opq").exists());
    assert!(!root.join(".wh..wh.plnk").exists());
    assert_eq!(
        fs::symlink_metadata(root.join("opq")).unwrap().mode() & 0o7777,
        0o700
    );
    assert_eq!(
        fs::symlink_metadata(root.join("opq")).unwrap().mtime(),
        MTIME as i64
    );
    // PAX xattr and sub-second mtime applied
    assert_eq!(
        lgetxattr(&root.join("etc/xattr-file"), "user.tether").as_deref(),
        Some(&b"yes"[..])
    );
    let xm = fs::symlink_metadata(root.join("etc/xattr-file")).unwrap();
    assert_eq!((xm.mtime(), xm.mtime_nsec()), (MTIME as i64, 123_456_789));
    // size = bytes of regular file content
    let expected = b"#!/bin/sh\necho hi\n".len() + b"no parent entries".len() + 1;
    assert_eq!(img.size, expected as u64);
    // nothing left in tmp
    assert_eq!(count_dir(&s.tmp_dir()), 0);
}

#[test]
fn import_gzip_shares_layer_and_lookups_work() {
    let (_d, s) = store();
    let tar = T::new().file("hello", b"world").build();
    let a = s
        .import(&tar[..], Some("tbox:1"), &[], Some("first"))
        .unwrap();
    let b = s.import(&gzip(&tar)[..], Some(""), &[], None).unwrap();
    assert_eq!(
        a.diff_ids, b.diff_ids,
        "gzip is detected and hashed uncompressed"
    );
    assert_ne!(a.id, b.id);
    assert!(b.repo_tags.is_empty());
    assert_eq!(count_dir(&s.layers_dir()), 1, "one shared layer dir");
    assert_eq!(s.layer_paths(&a), s.layer_paths(&b));

    let hex = hex_of(&a.id).to_string();
    for r in [
        "tbox:1".to_string(),
        "docker.io/library/tbox:1".to_string(),
        "index.docker.io/library/tbox:1".to_string(),
        a.id.clone(),
        hex.clone(),
    ] {
        assert_eq!(s.get(&r).unwrap().id, a.id, "{r}");
    }
    // unique prefix (find the shortest prefix that tells a from b)
    let bh = hex_of(&b.id);
    let n = (1..=64).find(|&n| hex[..n] != bh[..n]).unwrap();
    assert_eq!(s.get(&hex[..n]).unwrap().id, a.id);
    assert_eq!(s.get(&format!("sha256:{}", &hex[..n])).unwrap().id, a.id);
    if n > 1 {
        // ambiguous prefix
        assert!(matches!(s.get(&hex[..n - 1]), Err(ImageError::NotFound(_))));
    }
    let e = s.get("nope").unwrap_err();
    assert_eq!(e.to_string(), "No such image: nope:latest");
    assert_eq!(e.status(), 404);
    assert_eq!(
        s.get(&format!("sha256:{}", "0".repeat(64)))
            .unwrap_err()
            .to_string(),
        format!("No such image: sha256:{}", "0".repeat(64))
    );
    assert!(matches!(
        s.get("UPPER"),
        Err(ImageError::InvalidReference(_))
    ));

    let ins = s.inspect(&a);
    assert_eq!(ins.id.as_deref(), Some(a.id.as_str()));
    assert_eq!(ins.repo_tags, Some(vec!["tbox:1".to_string()]));
    assert_eq!(ins.repo_digests, Some(vec![]));
    assert_eq!(ins.comment.as_deref(), Some("first"));
    assert_eq!(ins.os.as_deref(), Some("linux"));
    assert_eq!(ins.architecture.as_deref(), Some(host_arch()));
    assert_eq!(ins.size, Some(5));
    let rootfs = ins.root_fs.clone().unwrap();
    assert_eq!(rootfs.typ, "layers");
    assert_eq!(rootfs.layers, Some(a.diff_ids.clone()));
    assert!(ins.created.is_some());
    assert!(ins.metadata.unwrap().last_tag_time.is_some());
    let j = serde_json::to_value(s.inspect(&a)).unwrap();
    assert_eq!(j["Created"].as_str().unwrap(), a.created);
    assert_eq!(j["RootFS"]["Type"], "layers");

    let sum = s.summary(&a);
    assert_eq!(sum.id, a.id);
    assert_eq!(sum.parent_id, "");
    assert_eq!(sum.shared_size, -1);
    assert_eq!(sum.containers, -1);
    assert_eq!(sum.size, 5);
    assert_eq!(sum.created, created_secs(&a.created));
    assert!(sum.created > 1_600_000_000);

    let list = s.list();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].id, b.id, "newest first");
}

#[test]
fn import_rejects_escapes_and_leaves_nothing() {
    let (_d, s) = store();
    let bad = T::new()
        .file("ok", b"1")
        .raw(b"../evil", EntryType::Regular, b"x", None)
        .build();
    let e = s.import(&bad[..], Some("bad"), &[], None).unwrap_err();
    assert!(matches!(e, ImageError::BadArchive(_)), "{e:?}");
    assert!(e.to_string().contains("../evil"), "{e}");
    assert_eq!(count_dir(&s.layers_dir()), 0);
    assert_eq!(count_dir(&s.tmp_dir()), 0);
    assert_eq!(count_dir(&s.images_dir()), 0);
    assert!(s.list().is_empty());
    assert!(matches!(s.get("bad"), Err(ImageError::NotFound(_))));

    // hard link to outside
    let bad = T::new()
        .raw(b"link", EntryType::Link, b"", Some(b"../../etc/passwd"))
        .build();
    assert!(matches!(
        s.import(&bad[..], None, &[], None),
        Err(ImageError::BadArchive(_))
    ));
    assert_eq!(count_dir(&s.layers_dir()), 0);

    // bad reference / change: rejected before reading
    assert!(matches!(
        s.import(&b""[..], Some("Bad Ref"), &[], None),
        Err(ImageError::InvalidReference(_))
    ));
    assert!(matches!(
        s.import(&b""[..], None, &["RUN x".to_string()], None),
        Err(ImageError::InvalidChange(_))
    ));
    // unsupported compression
    let e = s.import(&b"BZh91AY&SY"[..], None, &[], None).unwrap_err();
    assert!(e.to_string().contains("bzip2"), "{e}");
}

#[test]
fn symlinks_cannot_redirect_writes_outside() {
    let (d, s) = store();
    let outside = d.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let outside_s = outside.to_str().unwrap().to_string();
    let tar = T::new()
        .symlink("abs", &outside_s)
        .file("abs/planted", b"abs")
        .symlink("rel", "../../../../../../../../..")
        .file(
            &format!("rel/{}/planted2", outside_s.trim_start_matches('/')),
            b"rel",
        )
        .symlink("hostetc", "/etc")
        .file("hostetc/tether-test-planted", b"etc")
        .build();
    let img = s.import(&tar[..], None, &[], None).unwrap();
    assert_eq!(count_dir(&outside), 0, "nothing written outside the layer");
    assert!(!Path::new("/etc/tether-test-planted").exists());
    let root = &s.layer_paths(&img)[0];
    // writes through symlinks land inside the layer root, as under chroot
    assert_eq!(
        fs::read(root.join(outside_s.trim_start_matches('/')).join("planted")).unwrap(),
        b"abs"
    );
    assert_eq!(
        fs::read(
            root.join(outside_s.trim_start_matches('/'))
                .join("planted2")
        )
        .unwrap(),
        b"rel"
    );
    assert_eq!(
        fs::read(root.join("etc/tether-test-planted")).unwrap(),
        b"etc"
    );
    assert_eq!(
        fs::read_link(root.join("hostetc")).unwrap(),
        Path::new("/etc"),
        "the symlink itself stays"
    );
    // a self-referencing link is a loop, not a hang
    let looping = T::new().symlink("etc", "/etc").file("etc/x", b"x").build();
    let e = s.import(&looping[..], None, &[], None).unwrap_err();
    assert!(
        e.to_string().contains("too many levels of symbolic links"),
        "{e}"
    );
}

/// A docker-save archive builder: returns (archive bytes, config bytes).
fn docker_save(
    layers: &[Vec<u8>],
    tags: &[&str],
    new_layout: bool,
    config_extra: serde_json::Value,
) -> (Vec<u8>, Vec<u8>) {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
    let mut cfg = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-02T03:04:05.123456789Z",
        "author": "tester",
        "config": {
            "Cmd": ["/bin/sh"],
            "Env": ["PATH=/bin"],
            "WorkingDir": "/w",
            "ExposedPorts": {"80/tcp": {}},
            "Labels": {"a": "b"},
            "User": "nobody"
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    if let serde_json::Value::Object(extra) = config_extra {
        for (k, v) in extra {
            cfg[k] = v;
        }
    }
    let cfg_bytes = serde_json::to_vec(&cfg).unwrap();
    let cfg_hex = hex::encode(Sha256::digest(&cfg_bytes));
    let mut t = T::new();
    let mut layer_paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let h = hex::encode(Sha256::digest(l));
        if new_layout {
            let p = format!("blobs/sha256/{h}");
            t = t.file(&p, l);
            layer_paths.push(p);
        } else {
            let dir = format!("legacy{i}");
            t = t
                .dir(&format!("{dir}/"), 0o755)
                .file(&format!("{dir}/VERSION"), b"1.0")
                .file(&format!("{dir}/json"), b"{}")
                .file(&format!("{dir}/layer.tar"), l);
            layer_paths.push(format!("{dir}/layer.tar"));
        }
    }
    let cfg_path = if new_layout {
        format!("blobs/sha256/{cfg_hex}")
    } else {
        format!("{cfg_hex}.json")
    };
    t = t.file(&cfg_path, &cfg_bytes);
    let manifest = serde_json::json!([{
        "Config": cfg_path,
        "RepoTags": if tags.is_empty() { serde_json::Value::Null } else { serde_json::json!(tags) },
        "Layers": layer_paths,
    }]);
    t = t.file("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    (t.build(), cfg_bytes)
}

#[test]
fn load_docker_save_legacy_and_new_layout() {
    let (_d, s) = store();
    let l1 = T::new()
        .file("base", b"base layer")
        .dir("d/", 0o755)
        .build();
    let l2 = T::new()
        .file("top", b"top layer")
        .file("d/.wh..wh..opq", b"")
        .build();
    let (archive, cfg) = docker_save(
        &[l1.clone(), l2.clone()],
        &["tbox:latest", "other/name:v2"],
        false,
        serde_json::json!({}),
    );
    let lines = s.load(&archive[..]).unwrap();
    assert_eq!(
        lines,
        vec!["Loaded image: tbox:latest", "Loaded image: other/name:v2"]
    );
    let img = s.get("tbox").unwrap();
    assert_eq!(img.id, sha(&cfg));
    assert_eq!(img.repo_tags, vec!["other/name:v2", "tbox:latest"]);
    assert_eq!(img.diff_ids, vec![sha(&l1), sha(&l2)]);
    assert_eq!(img.created, "2024-01-02T03:04:05.123456789Z");
    assert_eq!(img.size, (b"base layer".len() + b"top layer".len()) as u64);
    assert_eq!(img.config.cmd, Some(vec!["/bin/sh".to_string()]));
    assert_eq!(img.config.env, vec!["PATH=/bin"]);
    assert_eq!(img.config.working_dir, "/w");
    assert_eq!(img.config.exposed_ports, vec!["80/tcp"]);
    assert_eq!(img.config.user, "nobody");
    assert_eq!(img.config.labels.get("a").map(String::as_str), Some("b"));
    let paths = s.layer_paths(&img);
    assert_eq!(paths.len(), 2);
    assert!(paths[0].join("top").exists(), "top-most first");
    assert!(paths[1].join("base").exists());
    assert!(lgetxattr(&paths[0].join("d"), "trusted.overlay.opaque").is_some());
    let ins = s.inspect(&img);
    assert_eq!(ins.author.as_deref(), Some("tester"));
    assert_eq!(
        ins.graph_driver
            .unwrap()
            .data
            .get("UpperDir")
            .map(String::as_str),
        Some(paths[0].to_str().unwrap())
    );

    // New layout (blobs/sha256), whole archive gzip'd, shares the base layer,
    // untagged.
    let l3 = T::new().file("third", b"3").build();
    let (archive2, cfg2) = docker_save(
        &[l1.clone(), l3.clone()],
        &[],
        true,
        serde_json::json!({"created": "2024-02-02T00:00:00Z"}),
    );
    let lines = s.load(&gzip(&archive2)[..]).unwrap();
    assert_eq!(lines, vec![format!("Loaded image ID: {}", sha(&cfg2))]);
    assert_eq!(count_dir(&s.layers_dir()), 3, "base layer shared");
    assert!(s.get(&sha(&cfg2)).unwrap().repo_tags.is_empty());

    // Loading again is idempotent; moving a tag reports the rename.
    let (archive3, cfg3) = docker_save(
        std::slice::from_ref(&l3),
        &["tbox:latest"],
        true,
        serde_json::json!({"created": "2024-03-03T00:00:00Z"}),
    );
    let lines = s.load(&archive3[..]).unwrap();
    assert_eq!(
        lines,
        vec![
            format!(
                "The image tbox:latest already exists, renaming the old one with ID {} to empty string",
                sha(&cfg)
            ),
            "Loaded image: tbox:latest".to_string()
        ]
    );
    assert_eq!(s.get("tbox").unwrap().id, sha(&cfg3));
    assert_eq!(s.get(&sha(&cfg)).unwrap().repo_tags, vec!["other/name:v2"]);
    let lines = s.load(&archive3[..]).unwrap();
    assert_eq!(lines, vec!["Loaded image: tbox:latest"]);
    assert_eq!(count_dir(&s.tmp_dir()), 0);
}

#[test]
fn load_legacy_symlinked_layer() {
    // Old docker save writes a symlink for a layer that repeats.
    let (_d, s) = store();
    let l = T::new().file("f", b"same").build();
    let diff = sha(&l);
    let cfg = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff, diff]},
    }))
    .unwrap();
    let archive = T::new()
        .file("aaa/layer.tar", &l)
        .symlink("bbb/layer.tar", "../aaa/layer.tar")
        .file("c.json", &cfg)
        .file(
            "manifest.json",
            br#"[{"Config":"c.json","RepoTags":["dup:1"],"Layers":["aaa/layer.tar","bbb/layer.tar"]}]"#,
        )
        .build();
    assert_eq!(s.load(&archive[..]).unwrap(), vec!["Loaded image: dup:1"]);
    let img = s.get("dup:1").unwrap();
    assert_eq!(img.created, "0001-01-01T00:00:00Z");
    assert_eq!(s.layer_paths(&img).len(), 2);
    assert_eq!(count_dir(&s.layers_dir()), 1);
}

#[test]
fn load_oci_layout_with_gzip_layer() {
    let (_d, s) = store();
    let l1 = T::new().file("etc/os-release", b"ID=tbox\n").build();
    let l2 = T::new()
        .file("app", b"binary")
        .file("etc/.wh.os-release", b"")
        .build();
    let l2gz = gzip(&l2);
    let cfg = serde_json::to_vec(&serde_json::json!({
        "architecture": host_arch(), "os": "linux", "created": "2024-05-05T05:05:05Z",
        "config": {"Entrypoint": ["/app"], "StopSignal": "SIGINT"},
        "rootfs": {"type": "layers", "diff_ids": [sha(&l1), sha(&l2)]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&cfg), "size": cfg.len()},
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha(&l1), "size": l1.len()},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(&l2gz), "size": l2gz.len()},
        ],
    }))
    .unwrap();
    // A nested index with one foreign platform and ours.
    let nested = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{}", "1".repeat(64)), "size": 1,
             "platform": {"os": "linux", "architecture": "s390x-none"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&manifest), "size": manifest.len(),
             "platform": {"os": "linux", "architecture": host_arch()}},
        ],
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&manifest), "size": manifest.len(),
             "annotations": {"io.containerd.image.name": "docker.io/library/ocibox:1.0", "org.opencontainers.image.ref.name": "1.0"}},
            {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(&nested), "size": nested.len(),
             "annotations": {"org.opencontainers.image.ref.name": "localhost:5000/ocibox:idx"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&manifest), "size": manifest.len(),
             "annotations": {"org.opencontainers.image.ref.name": "bare"}},
        ],
    }))
    .unwrap();
    let blob = |d: &[u8]| format!("blobs/sha256/{}", hex::encode(Sha256::digest(d)));
    let archive = T::new()
        .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .file("index.json", &index)
        .file(&blob(&cfg), &cfg)
        .file(&blob(&manifest), &manifest)
        .file(&blob(&nested), &nested)
        .file(&blob(&l1), &l1)
        .file(&blob(&l2gz), &l2gz)
        .build();
    let lines = s.load(&archive[..]).unwrap();
    assert_eq!(
        lines,
        vec![
            "Loaded image: ocibox:1.0".to_string(),
            "Loaded image: localhost:5000/ocibox:idx".to_string(),
            format!("Loaded image ID: {}", sha(&cfg)),
        ]
    );
    let img = s.get("ocibox:1.0").unwrap();
    assert_eq!(img.id, sha(&cfg));
    assert_eq!(
        img.repo_tags,
        vec!["localhost:5000/ocibox:idx", "ocibox:1.0"]
    );
    assert_eq!(img.config.entrypoint, Some(vec!["/app".to_string()]));
    assert_eq!(img.config.stop_signal.as_deref(), Some("SIGINT"));
    let paths = s.layer_paths(&img);
    assert_eq!(fs::read(paths[0].join("app")).unwrap(), b"binary");
    assert!(fs::symlink_metadata(paths[0].join("etc/os-release"))
        .unwrap()
        .file_type()
        .is_char_device());
    assert_eq!(
        fs::read(paths[1].join("etc/os-release")).unwrap(),
        b"ID=tbox\n"
    );
}

#[test]
fn load_rejects_bad_archives_without_leftovers() {
    let (_d, s) = store();
    let l = T::new().file("f", b"content").build();
    let other = T::new().file("f", b"different").build();
    // config claims another diff ID
    let cfg = serde_json::to_vec(&serde_json::json!({
        "rootfs": {"type": "layers", "diff_ids": [sha(&other)]},
    }))
    .unwrap();
    let archive = T::new()
        .file("l.tar", &l)
        .file("c.json", &cfg)
        .file(
            "manifest.json",
            br#"[{"Config":"c.json","RepoTags":["bad:1"],"Layers":["l.tar"]}]"#,
        )
        .build();
    let e = s.load(&archive[..]).unwrap_err();
    assert!(matches!(e, ImageError::BadArchive(_)), "{e:?}");
    assert!(e.to_string().contains("diff ID"), "{e}");
    assert_eq!(count_dir(&s.layers_dir()), 0);
    assert_eq!(count_dir(&s.tmp_dir()), 0);
    assert!(s.list().is_empty());

    // layer count mismatch
    let cfg = serde_json::to_vec(&serde_json::json!({
        "rootfs": {"type": "layers", "diff_ids": []},
    }))
    .unwrap();
    let archive = T::new()
        .file("l.tar", &l)
        .file("c.json", &cfg)
        .file(
            "manifest.json",
            br#"[{"Config":"c.json","Layers":["l.tar"]}]"#,
        )
        .build();
    assert!(matches!(
        s.load(&archive[..]),
        Err(ImageError::BadArchive(_))
    ));
    // missing file
    let archive = T::new()
        .file(
            "manifest.json",
            br#"[{"Config":"missing.json","Layers":[]}]"#,
        )
        .build();
    let e = s.load(&archive[..]).unwrap_err();
    assert!(e.to_string().contains("missing.json"), "{e}");
    // neither format
    let archive = T::new().file("random", b"x").build();
    let e = s.load(&archive[..]).unwrap_err();
    assert!(e.to_string().contains("manifest.json"), "{e}");
    // OCI blob with wrong digest
    let cfg = serde_json::to_vec(&serde_json::json!({
        "rootfs": {"type": "layers", "diff_ids": [sha(&l)]},
    }))
    .unwrap();
    let fake = format!("sha256:{}", "2".repeat(64));
    let manifest = serde_json::to_vec(&serde_json::json!({
        "config": {"digest": sha(&cfg)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": fake}],
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": sha(&manifest)}],
    }))
    .unwrap();
    let archive = T::new()
        .file("index.json", &index)
        .file(&format!("blobs/{}", sha(&cfg).replace(':', "/")), &cfg)
        .file(
            &format!("blobs/{}", sha(&manifest).replace(':', "/")),
            &manifest,
        )
        .file(&format!("blobs/{}", fake.replace(':', "/")), &l)
        .build();
    let e = s.load(&archive[..]).unwrap_err();
    assert!(e.to_string().contains("blob digest"), "{e}");
    assert_eq!(count_dir(&s.layers_dir()), 0);
    assert_eq!(count_dir(&s.tmp_dir()), 0);
}

#[test]
fn tag_and_persistence() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("image");
    let (id, layer) = {
        let s = ImageStore::open(&root).unwrap();
        let img = s
            .import(
                &T::new().file("a", b"1").build()[..],
                Some("one"),
                &[],
                None,
            )
            .unwrap();
        s.tag("one", "two:2").unwrap();
        s.tag(&img.id, "localhost:5000/x").unwrap();
        assert!(matches!(
            s.tag("one", &format!("three@sha256:{}", "a".repeat(64))),
            Err(ImageError::InvalidReference(_))
        ));
        assert!(matches!(
            s.tag("missing", "x"),
            Err(ImageError::NotFound(_))
        ));
        assert!(matches!(
            s.tag("one", "BAD"),
            Err(ImageError::InvalidReference(_))
        ));
        (img.id.clone(), s.layer_paths(&img)[0].clone())
    };
    // leftovers from a crash are cleaned at open
    fs::create_dir(root.join("tmp/junk")).unwrap();
    let orphan = root.join("layers").join("f".repeat(64));
    fs::create_dir_all(orphan.join("diff")).unwrap();

    let s = ImageStore::open(&root).unwrap();
    let img = s.get("two:2").unwrap();
    assert_eq!(img.id, id);
    assert_eq!(
        img.repo_tags,
        vec!["localhost:5000/x:latest", "one:latest", "two:2"]
    );
    assert!(layer.join("a").exists());
    assert_eq!(count_dir(&root.join("tmp")), 0);
    assert!(!orphan.exists(), "unreferenced layer removed at open");
}

#[test]
fn remove_semantics() {
    let (_d, s) = store();
    let shared = T::new().file("shared", b"s").build();
    let a = s.import(&shared[..], Some("a"), &[], None).unwrap();
    let b = s.import(&shared[..], Some("b"), &[], None).unwrap();
    s.tag("a", "a2").unwrap();
    let used = |id: &str| id == a.id;

    // a has two tags: untagging one is fine even though it's in use
    let r = s.remove("a2", false, &used).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].untagged.as_deref(), Some("a2:latest"));
    // last tag of an in-use image: conflict
    let e = s.remove("a", false, &used).unwrap_err();
    assert_eq!(e.status(), 409);
    assert!(
        e.to_string().starts_with(
            "conflict: unable to remove repository reference \"a\" (must force) - container"
        ),
        "{e}"
    );
    // by ID without force: conflict too
    let e = s.remove(&a.id, false, &used).unwrap_err();
    assert!(e.to_string().contains("must be forced"), "{e}");
    // by ID with two tags, not in use: needs force
    s.tag("b", "b2").unwrap();
    let e = s.remove(&hex_of(&b.id)[..12], false, &never).unwrap_err();
    assert!(
        e.to_string()
            .contains("referenced in multiple repositories"),
        "{e}"
    );
    // force by ID: untags all and deletes; shared layer stays (a uses it)
    let r = s.remove(&hex_of(&b.id)[..12], true, &never).unwrap();
    let untagged: Vec<_> = r.iter().filter_map(|x| x.untagged.clone()).collect();
    let deleted: Vec<_> = r.iter().filter_map(|x| x.deleted.clone()).collect();
    assert_eq!(untagged, vec!["b2:latest", "b:latest"]);
    assert_eq!(deleted, vec![b.id.clone()]);
    assert!(matches!(s.get(&b.id), Err(ImageError::NotFound(_))));
    assert_eq!(count_dir(&s.layers_dir()), 1);
    assert!(!s.images_dir().join(hex_of(&b.id)).exists());

    // force remove an in-use image by name: deleted, but its layer is held
    let r = s.remove("a", true, &used).unwrap();
    assert_eq!(r[0].untagged.as_deref(), Some("a:latest"));
    assert_eq!(r[1].deleted.as_deref(), Some(a.id.as_str()));
    assert_eq!(r.len(), 2, "layer kept for the container: {r:?}");
    assert!(s.list().is_empty());
    assert!(s.layer_paths(&a)[0].join("shared").exists());
    // the container is gone: prune releases it
    assert_eq!(s.prune_layers(&never).unwrap(), a.diff_ids);
    assert_eq!(count_dir(&s.layers_dir()), 0);

    // plain delete reports the layer's chain ID
    let c = s
        .import(
            &T::new().file("c", b"c").build()[..],
            Some("c:1"),
            &[],
            None,
        )
        .unwrap();
    let r = s.remove("c:1", false, &never).unwrap();
    let deleted: Vec<_> = r.iter().filter_map(|x| x.deleted.clone()).collect();
    assert_eq!(deleted, vec![c.id.clone(), c.diff_ids[0].clone()]);
    assert_eq!(count_dir(&s.layers_dir()), 0);
    assert!(matches!(
        s.remove("c:1", false, &never),
        Err(ImageError::NotFound(_))
    ));
    assert_eq!(count_dir(&s.tmp_dir()), 0);
}

#[test]
fn in_use_may_call_back_and_store_is_shareable() {
    fn assert_send_sync<X: Send + Sync>() {}
    assert_send_sync::<ImageStore>();
    let (_d, s) = store();
    let img = s
        .import(&T::new().file("x", b"x").build()[..], Some("cb"), &[], None)
        .unwrap();
    // The callback uses the store itself: must not deadlock.
    let cb = |id: &str| s.list().iter().any(|i| i.id == id);
    assert_eq!(s.remove("cb", false, &cb).unwrap_err().status(), 409);
    assert!(s.remove("cb", true, &cb).is_ok());
    assert!(s.layer_paths(&img)[0].exists(), "held while in use");
    assert!(s.prune_layers(&|id: &str| s.get(id).is_ok()).unwrap().len() == 1);

    // Concurrent imports and reads from several threads.
    std::thread::scope(|scope| {
        for i in 0..4 {
            let s = &s;
            scope.spawn(move || {
                let tar = T::new().file("f", format!("{i}").as_bytes()).build();
                let img = s
                    .import(&tar[..], Some(&format!("t{i}")), &[], None)
                    .unwrap();
                assert_eq!(s.get(&format!("t{i}")).unwrap().id, img.id);
                let _ = s.list();
            });
        }
    });
    assert_eq!(s.list().len(), 4);
    assert_eq!(count_dir(&s.layers_dir()), 4);
}

#[test]
fn chain_ids_follow_oci() {
    let d1 = format!("sha256:{}", "a".repeat(64));
    let d2 = format!("sha256:{}", "b".repeat(64));
    let c = chain_ids(&[d1.clone(), d2.clone()]);
    assert_eq!(c[0], d1);
    assert_eq!(c[1], sha(format!("{d1} {d2}").as_bytes()));
}

#[test]
fn error_statuses() {
    let io = ImageError::Io {
        what: "x".into(),
        source: io::Error::other("y"),
    };
    assert_eq!(io.status(), 500);
    assert_eq!(io.to_string(), "x: y");
    assert_eq!(ImageError::BadArchive("b".into()).status(), 400);
    assert_eq!(ImageError::Conflict("c".into()).status(), 409);
    assert_eq!(
        ImageError::NotFound("tbox:latest".into()).to_string(),
        "No such image: tbox:latest"
    );
}
