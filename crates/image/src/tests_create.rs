//! Tests of layers from overlayfs upper dirs and locally created images
//! (`layer_from_upper`, `create_image`). They need root (mknod, trusted.*
//! xattrs, an overlay mount), as the rest of the store's tests.

use super::*;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

const MTIME: i64 = 1_650_000_000;

fn store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = ImageStore::open(&dir.path().join("image")).unwrap();
    (dir, s)
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap()
}

fn mknod(p: &Path, kind: libc::mode_t, perm: u32, major: u32, minor: u32) {
    // SAFETY: valid C string.
    let rc = unsafe {
        libc::mknod(
            cpath(p).as_ptr(),
            kind | perm as libc::mode_t,
            libc::makedev(major, minor),
        )
    };
    assert_eq!(
        rc,
        0,
        "mknod {}: {}",
        p.display(),
        io::Error::last_os_error()
    );
}

fn xattr(p: &Path, name: &str) -> Option<Vec<u8>> {
    let n = CString::new(name).unwrap();
    let mut buf = [0u8; 256];
    // SAFETY: valid C strings and buffer.
    let rc = unsafe {
        libc::lgetxattr(
            cpath(p).as_ptr(),
            n.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    (rc >= 0).then(|| buf[..rc as usize].to_vec())
}

/// Sets atime and mtime of everything under `root` (dirs last), not following symlinks.
fn set_all_times(root: &Path, atime: i64) {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), out);
            }
            out.push(e.path());
        }
    }
    let mut all = Vec::new();
    walk(root, &mut all);
    for p in all {
        let ts = [
            libc::timespec {
                tv_sec: atime as libc::time_t,
                tv_nsec: 0,
            },
            libc::timespec {
                tv_sec: MTIME as libc::time_t,
                tv_nsec: 0,
            },
        ];
        // SAFETY: valid path and two timespecs.
        let rc = unsafe {
            libc::utimensat(
                libc::AT_FDCWD,
                cpath(&p).as_ptr(),
                ts.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        assert_eq!(rc, 0);
    }
}

/// An upper dir as overlayfs leaves it: a whiteout, an opaque dir, files
/// with modes and owners, links, devices.
fn make_upper(root: &Path, atime: i64) {
    fs::create_dir_all(root.join("etc/app")).unwrap();
    fs::write(root.join("etc/app/conf"), b"key=value\n").unwrap();
    fs::set_permissions(root.join("etc/app/conf"), fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::lchown(root.join("etc/app/conf"), Some(1000), Some(1001)).unwrap();
    fs::write(root.join("etc/suid"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(root.join("etc/suid"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::hard_link(root.join("etc/suid"), root.join("etc/suid-link")).unwrap();
    std::os::unix::fs::symlink("app/conf", root.join("etc/conf-link")).unwrap();
    // whiteout of a lower file
    mknod(&root.join("etc/gone"), libc::S_IFCHR, 0, 0, 0);
    // opaque dir replacing a lower one
    fs::create_dir(root.join("var")).unwrap();
    fs::create_dir(root.join("var/cache")).unwrap();
    fs::write(root.join("var/cache/new"), b"fresh").unwrap();
    unpack::set_xattr(&root.join("var/cache"), "trusted.overlay.opaque", b"y").unwrap();
    fs::create_dir(root.join("dev")).unwrap();
    mknod(&root.join("dev/null"), libc::S_IFCHR, 0o666, 1, 3);
    mknod(&root.join("dev/fifo"), libc::S_IFIFO, 0o600, 0, 0);
    fs::create_dir(root.join("tmp")).unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    set_all_times(root, atime);
}

/// The entry names of a plain tar file, in order.
fn tar_names(path: &Path) -> Vec<String> {
    let mut a = tar::Archive::new(fs::File::open(path).unwrap());
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            String::from_utf8_lossy(&e.path_bytes()).into_owned()
        })
        .collect()
}

#[test]
fn upper_dir_becomes_a_layer_with_whiteouts_and_opaque_dirs() {
    let (tmp, s) = store();
    let upper = tmp.path().join("upper");
    make_upper(&upper, 1_700_000_000);

    let layer = s.layer_from_upper(&upper).unwrap();
    assert!(valid_digest(&layer.diff_id));
    assert_eq!(layer.size, 10 + 10 + 5);
    let ldir = s.layer_dir(&layer.diff_id);
    let diff = ldir.join("diff");

    // The blob is the tar whose hash is the diff ID, and push can use it.
    let blob_path = ldir.join(blob::BLOB_FILE);
    assert_eq!(sha256_digest(&fs::read(&blob_path).unwrap()), layer.diff_id);
    let rec = blob::read_record(&ldir).unwrap();
    assert_eq!(rec.digest, layer.diff_id);
    assert_eq!(rec.size, fs::metadata(&blob_path).unwrap().len());
    assert_eq!(s.layer_size(&layer.diff_id), Some(25));

    // Whiteouts and the opaque marker as OCI layer entries, sorted depth first.
    let names = tar_names(&blob_path);
    let pos = |n: &str| {
        names
            .iter()
            .position(|x| x.trim_end_matches('/') == n)
            .unwrap_or_else(|| panic!("{n} not in {names:?}"))
    };
    assert!(names.iter().all(|n| !n.ends_with("etc/gone")), "{names:?}");
    assert!(pos("etc/.wh.gone") > pos("etc"));
    assert_eq!(pos("var/cache/.wh..wh..opq"), pos("var/cache") + 1);
    assert!(pos("dev") < pos("etc") && pos("etc") < pos("tmp") && pos("tmp") < pos("var"));
    assert!(pos("etc/app/conf") < pos("etc/conf-link"));

    // Unpacked back into the overlay form.
    let gone = fs::symlink_metadata(diff.join("etc/gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    assert!(fs::symlink_metadata(diff.join("etc/.wh.gone")).is_err());
    assert_eq!(
        xattr(&diff.join("var/cache"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(fs::symlink_metadata(diff.join("var/cache/.wh..wh..opq")).is_err());
    assert_eq!(fs::read(diff.join("var/cache/new")).unwrap(), b"fresh");
    assert!(xattr(&diff.join("var"), "trusted.overlay.opaque").is_none());

    let conf = fs::symlink_metadata(diff.join("etc/app/conf")).unwrap();
    assert_eq!(conf.mode() & 0o7777, 0o640);
    assert_eq!((conf.uid(), conf.gid()), (1000, 1001));
    assert_eq!(conf.mtime(), MTIME);
    let suid = fs::symlink_metadata(diff.join("etc/suid")).unwrap();
    assert_eq!(suid.mode() & 0o7777, 0o4755);
    let link = fs::symlink_metadata(diff.join("etc/suid-link")).unwrap();
    assert_eq!(link.ino(), suid.ino());
    assert_eq!(
        fs::read_link(diff.join("etc/conf-link")).unwrap(),
        Path::new("app/conf")
    );
    let null = fs::symlink_metadata(diff.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), libc::makedev(1, 3));
    assert!(fs::symlink_metadata(diff.join("dev/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(
        fs::symlink_metadata(diff.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    assert_eq!(
        fs::symlink_metadata(diff.join("etc")).unwrap().mtime(),
        MTIME
    );

    // The same content elsewhere (other inodes, other atimes) is the same layer.
    let layers_before = fs::read_dir(s.layers_dir()).unwrap().count();
    let upper2 = tmp.path().join("upper2");
    make_upper(&upper2, 1_500_000_000);
    let again = s.layer_from_upper(&upper2).unwrap();
    assert_eq!(again.diff_id, layer.diff_id);
    assert_eq!(again.size, layer.size);
    assert_eq!(fs::read_dir(s.layers_dir()).unwrap().count(), layers_before);
    assert_eq!(fs::read_dir(s.tmp_dir()).unwrap().count(), 0);

    // Different content, different layer.
    fs::write(upper2.join("etc/app/conf"), b"key=other\n").unwrap();
    let other = s.layer_from_upper(&upper2).unwrap();
    assert_ne!(other.diff_id, layer.diff_id);

    // Pinned layers survive garbage collection until given up.
    assert!(s.prune_layers(&|_| false).unwrap().is_empty());
    assert!(s.layer_present(&other.diff_id));
    let other_id = other.diff_id.clone();
    s.discard_layer(other).unwrap();
    assert!(!s.layer_present(&other_id));
    drop(again);
    assert!(s.layer_present(&layer.diff_id), "still pinned by `layer`");
    drop(layer);
    assert_eq!(s.prune_layers(&|_| false).unwrap().len(), 1);
    assert_eq!(fs::read_dir(s.layers_dir()).unwrap().count(), 0);

    // Not a directory: a clear error and nothing left.
    let e = s.layer_from_upper(&upper.join("etc/app/conf")).unwrap_err();
    assert!(e.to_string().contains("not a directory"), "{e}");
    let e = s.layer_from_upper(&tmp.path().join("missing")).unwrap_err();
    assert!(e.to_string().contains("missing"), "{e}");
    assert_eq!(fs::read_dir(s.tmp_dir()).unwrap().count(), 0);
}

/// Unmounts on drop.
struct Mounted(PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        // SAFETY: valid C string.
        unsafe { libc::umount2(cpath(&self.0).as_ptr(), libc::MNT_DETACH) };
    }
}

/// A real overlay mount over a store layer: what the kernel leaves in the
/// upper dir after a delete and a directory replaced, turned into a layer,
/// stacked on the base, shows the same tree.
#[test]
fn real_overlay_changes_round_trip() {
    let (tmp, s) = store();
    let base_upper = tmp.path().join("base");
    fs::create_dir_all(base_upper.join("data/old")).unwrap();
    fs::write(base_upper.join("data/old/a"), b"a").unwrap();
    fs::write(base_upper.join("data/keep"), b"k").unwrap();
    fs::write(base_upper.join("data/remove-me"), b"r").unwrap();
    let base = s.layer_from_upper(&base_upper).unwrap();

    let upper = tmp.path().join("upper");
    let work = tmp.path().join("work");
    let merged = tmp.path().join("merged");
    for d in [&upper, &work, &merged] {
        fs::create_dir(d).unwrap();
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={}",
        s.layer_dir(&base.diff_id).join("diff").display(),
        upper.display(),
        work.display()
    );
    let (src, fstype, data) = (
        CString::new("overlay").unwrap(),
        CString::new("overlay").unwrap(),
        CString::new(opts).unwrap(),
    );
    // SAFETY: valid C strings.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            cpath(&merged).as_ptr(),
            fstype.as_ptr(),
            0,
            data.as_ptr().cast(),
        )
    };
    assert_eq!(rc, 0, "mount overlay: {}", io::Error::last_os_error());
    let guard = Mounted(merged.clone());
    fs::remove_file(merged.join("data/remove-me")).unwrap();
    fs::remove_dir_all(merged.join("data/old")).unwrap();
    fs::create_dir(merged.join("data/old")).unwrap();
    fs::write(merged.join("data/old/b"), b"b").unwrap();
    fs::write(merged.join("data/added"), b"new").unwrap();
    drop(guard);

    let top = s.layer_from_upper(&upper).unwrap();
    let names = tar_names(&s.layer_dir(&top.diff_id).join(blob::BLOB_FILE));
    let names: Vec<&str> = names.iter().map(|n| n.trim_end_matches('/')).collect();
    assert!(names.contains(&"data/.wh.remove-me"), "{names:?}");
    assert!(names.contains(&"data/old/.wh..wh..opq"), "{names:?}");
    assert!(names.contains(&"data/added"), "{names:?}");
    assert!(!names.contains(&"data/keep"), "{names:?}");

    // Stack the two layers again: the merged view is the changed tree.
    let merged2 = tmp.path().join("merged2");
    fs::create_dir(&merged2).unwrap();
    let opts = format!(
        "lowerdir={}:{}",
        s.layer_dir(&top.diff_id).join("diff").display(),
        s.layer_dir(&base.diff_id).join("diff").display(),
    );
    let data = CString::new(opts).unwrap();
    // SAFETY: valid C strings.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            cpath(&merged2).as_ptr(),
            fstype.as_ptr(),
            libc::MS_RDONLY,
            data.as_ptr().cast(),
        )
    };
    assert_eq!(rc, 0, "mount overlay: {}", io::Error::last_os_error());
    let guard = Mounted(merged2.clone());
    let mut seen: Vec<String> = Vec::new();
    for d in ["data", "data/old"] {
        for e in fs::read_dir(merged2.join(d)).unwrap() {
            seen.push(format!("{d}/{}", e.unwrap().file_name().to_string_lossy()));
        }
    }
    drop(guard);
    seen.sort();
    assert_eq!(
        seen,
        vec!["data/added", "data/keep", "data/old", "data/old/b"]
    );
}

fn base_image(s: &ImageStore, tmp: &Path) -> Image {
    let up = tmp.join("base-upper");
    fs::create_dir_all(up.join("bin")).unwrap();
    fs::write(up.join("bin/sh"), b"shell").unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    tar.append_dir_all(".", &up).unwrap();
    let bytes = tar.into_inner().unwrap();
    s.import(
        &bytes[..],
        Some("base:1"),
        &["CMD [\"/bin/sh\"]".to_string()],
        None,
    )
    .unwrap()
}

#[test]
fn create_image_stacks_on_the_parent_and_persists() {
    let (tmp, s) = store();
    let base = base_image(&s, tmp.path());
    let upper = tmp.path().join("upper");
    fs::create_dir_all(upper.join("app")).unwrap();
    fs::write(upper.join("app/run"), b"run me").unwrap();
    let layer = s.layer_from_upper(&upper).unwrap();
    let layer_id = layer.diff_id.clone();

    let config = ImageConfig {
        cmd: Some(vec!["/app/run".into()]),
        env: vec!["A=1".into()],
        volumes: vec!["/data".into(), "/logs".into()],
        healthcheck: Some(HealthConfig {
            test: vec!["CMD-SHELL".into(), "true".into()],
            interval: 2_000_000_000,
            retries: 4,
            ..Default::default()
        }),
        shell: Some(vec!["/bin/bash".into(), "-c".into()]),
        on_build: vec!["RUN echo child".into()],
        ..Default::default()
    };
    let img = s
        .create_image(NewImage {
            parent: Some("base:1".into()),
            layer: Some(layer),
            config: config.clone(),
            history: HistoryEntry {
                created_by: Some("/bin/sh -c make app".into()),
                ..Default::default()
            },
            author: Some("Ann <ann@example.com>".into()),
            comment: Some("built".into()),
            tag: Some("child".into()),
        })
        .unwrap();
    assert_eq!(img.repo_tags, vec!["child:latest"]);
    assert_eq!(img.parent.as_deref(), Some(base.id.as_str()));
    assert_eq!(
        img.diff_ids,
        vec![base.diff_ids[0].clone(), layer_id.clone()]
    );
    assert_eq!(img.size, base.size + 6);
    assert_eq!(img.history.len(), 2);
    assert_eq!(img.history[0], base.history[0]);
    let h = &img.history[1];
    assert_eq!(h.created_by.as_deref(), Some("/bin/sh -c make app"));
    assert_eq!(h.author.as_deref(), Some("Ann <ann@example.com>"));
    assert_eq!(h.created.as_deref(), Some(img.created.as_str()));
    assert!(!h.empty_layer);

    // The config JSON: ID is its hash, fields per the OCI image config.
    let bytes = fs::read(s.images_dir().join(hex_of(&img.id)).join("config.json")).unwrap();
    assert_eq!(sha256_digest(&bytes), img.id);
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["author"], "Ann <ann@example.com>");
    assert_eq!(v["comment"], "built");
    assert_eq!(v["os"], "linux");
    assert_eq!(v["architecture"], host_arch());
    assert_eq!(v["rootfs"]["type"], "layers");
    assert_eq!(v["rootfs"]["diff_ids"][1], layer_id.as_str());
    assert_eq!(
        v["config"]["Volumes"],
        serde_json::json!({"/data": {}, "/logs": {}})
    );
    assert_eq!(
        v["config"]["Healthcheck"],
        serde_json::json!({"Test": ["CMD-SHELL", "true"], "Interval": 2_000_000_000i64, "Retries": 4})
    );
    assert_eq!(v["config"]["Shell"], serde_json::json!(["/bin/bash", "-c"]));
    assert_eq!(
        v["config"]["OnBuild"],
        serde_json::json!(["RUN echo child"])
    );
    assert!(v["config"].get("ArgsEscaped").is_none());
    assert_eq!(v["history"][1]["created_by"], "/bin/sh -c make app");
    assert!(v["history"][1].get("empty_layer").is_none());
    // ... and parses back to the same config and history (as load and pull read it).
    let parsed = load::parse_config(&bytes, "test").unwrap();
    assert_eq!(parsed.config, config);
    assert_eq!(parsed.history, img.history);

    // A config-only step: no layer, empty_layer history.
    let mut c2 = config.clone();
    c2.cmd = Some(vec!["other".into()]);
    let img2 = s
        .create_image(NewImage {
            parent: Some(img.id.clone()),
            config: c2.clone(),
            history: HistoryEntry {
                created_by: Some("/bin/sh -c #(nop)  CMD [\"other\"]".into()),
                ..Default::default()
            },
            ..Default::default()
        })
        .unwrap();
    assert!(img2.repo_tags.is_empty());
    assert_eq!(img2.diff_ids, img.diff_ids);
    assert_eq!(img2.history.len(), 3);
    assert!(img2.history[2].empty_layer);
    assert_eq!(img2.parent.as_deref(), Some(img.id.as_str()));

    // Everything survives a restart, and the inspect/summary views show it.
    drop(s);
    let s = ImageStore::open(&tmp.path().join("image")).unwrap();
    let back = s.get("child").unwrap();
    assert_eq!(back.id, img.id);
    assert_eq!(back.parent, img.parent);
    assert_eq!(back.history, img.history);
    assert_eq!(back.config, config);
    assert!(s.layer_present(&layer_id));
    let sum = s.summary(&back);
    assert_eq!(sum.parent_id, base.id);
    let api = s.inspect(&back).config.unwrap();
    assert_eq!(api.volumes, Some(vec!["/data".into(), "/logs".into()]));
    assert_eq!(api.healthcheck.unwrap().retries, Some(4));
    assert_eq!(s.get(&img2.id).unwrap().config, c2);
}

#[test]
fn create_image_failures_leave_nothing() {
    let (tmp, s) = store();
    base_image(&s, tmp.path());
    let images_before = fs::read_dir(s.images_dir()).unwrap().count();
    let upper = tmp.path().join("upper");
    fs::create_dir_all(&upper).unwrap();
    fs::write(upper.join("f"), b"unique content").unwrap();

    // A missing parent: 404, the new layer is removed.
    let layer = s.layer_from_upper(&upper).unwrap();
    let diff_id = layer.diff_id.clone();
    let e = s
        .create_image(NewImage {
            parent: Some("nosuch:1".into()),
            layer: Some(layer),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.status(), 404, "{e}");
    assert!(!s.layer_present(&diff_id));
    assert_eq!(fs::read_dir(s.images_dir()).unwrap().count(), images_before);

    // A bad tag: 400 before anything is written.
    let layer = s.layer_from_upper(&upper).unwrap();
    let e = s
        .create_image(NewImage {
            parent: Some("base:1".into()),
            layer: Some(layer),
            tag: Some("Bad:Tag!".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.status(), 400, "{e}");
    assert!(
        e.to_string().contains("Bad:Tag!") || e.to_string().contains("invalid reference"),
        "{e}"
    );
    assert!(!s.layer_present(&diff_id));
    assert_eq!(fs::read_dir(s.images_dir()).unwrap().count(), images_before);
    assert_eq!(fs::read_dir(s.tmp_dir()).unwrap().count(), 0);

    // FROM scratch works and the layer stays.
    let layer = s.layer_from_upper(&upper).unwrap();
    let img = s
        .create_image(NewImage {
            layer: Some(layer),
            tag: Some("scratchy".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(img.diff_ids, vec![diff_id.clone()]);
    assert!(img.parent.is_none());
    assert!(s.prune_layers(&|_| false).unwrap().is_empty());
    assert!(s.layer_present(&diff_id));
}

#[test]
fn old_records_and_configs_without_new_fields_still_load() {
    // An image.json written before volumes/healthcheck/history/parent existed.
    let old = serde_json::json!({
        "image": {
            "id": "sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "repo_tags": [], "created": "2024-01-01T00:00:00Z", "size": 0,
            "config": {"cmd": null, "entrypoint": null, "env": [], "working_dir": "",
                       "exposed_ports": [], "user": "", "labels": {}, "stop_signal": null},
            "diff_ids": []
        }
    });
    let rec: ImageRecord = serde_json::from_value(old).unwrap();
    assert!(rec.image.parent.is_none());
    assert!(rec.image.history.is_empty());
    assert!(rec.image.config.volumes.is_empty() && rec.image.config.healthcheck.is_none());
    let p = load::parse_config(
        br#"{"rootfs":{"diff_ids":[]},"config":{"Healthcheck":{"Test":["NONE"]}}}"#,
        "t",
    )
    .unwrap();
    assert_eq!(p.config.healthcheck.unwrap().test, vec!["NONE"]);
    assert!(p.history.is_empty());
}

#[test]
fn an_empty_upper_dir_adds_no_layer() {
    let (tmp, s) = store();
    let base = base_image(&s, tmp.path());
    let upper = tmp.path().join("empty");
    fs::create_dir(&upper).unwrap();
    let layer = s.layer_from_upper(&upper).unwrap();
    assert_eq!(layer.diff_id, EMPTY_LAYER_DIFF_ID);
    assert_eq!(layer.size, 0);
    let img = s
        .create_image(NewImage {
            parent: Some(base.id.clone()),
            layer: Some(layer),
            config: base.config.clone(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(img.diff_ids, base.diff_ids);
    assert!(img.history.last().unwrap().empty_layer);
    s.prune_layers(&|_| false).unwrap();
    assert!(!s.layer_present(EMPTY_LAYER_DIFF_ID));
}

/// base:1 <- mid (untagged) <- top:1, each with a layer of its own.
fn chain(s: &ImageStore, tmp: &Path) -> (Image, Image, Image) {
    let base = base_image(s, tmp);
    let mk = |name: &str, parent: &str, tag: Option<&str>, by: &str| {
        let up = tmp.join(name);
        fs::create_dir_all(&up).unwrap();
        fs::write(up.join(name), name.repeat(10)).unwrap();
        let layer = s.layer_from_upper(&up).unwrap();
        s.create_image(NewImage {
            parent: Some(parent.to_string()),
            layer: Some(layer),
            config: ImageConfig::default(),
            history: HistoryEntry {
                created_by: Some(by.into()),
                comment: Some(format!("made {name}")),
                ..Default::default()
            },
            tag: tag.map(str::to_string),
            ..Default::default()
        })
        .unwrap()
    };
    let mid = mk("mid", &base.id, None, "/bin/sh -c make mid");
    let top = mk("top", &mid.id, Some("top:1"), "/bin/sh -c make top");
    (base, mid, top)
}

#[test]
fn history_walks_local_parents() {
    let (tmp, s) = store();
    let (base, mid, top) = chain(&s, tmp.path());
    let h = s.history("top:1").unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[0].id, top.id);
    assert_eq!(h[0].tags, vec!["top:1"]);
    assert_eq!(h[0].created_by, "/bin/sh -c make top");
    assert_eq!(h[0].comment, "made top");
    assert_eq!(h[0].size, 30);
    assert_eq!(h[1].id, mid.id);
    assert!(h[1].tags.is_empty());
    assert_eq!(h[1].size, 30);
    assert_eq!(h[2].id, base.id);
    assert_eq!(h[2].tags, vec!["base:1"]);
    assert_eq!(h[2].comment, "Imported from -");
    assert_eq!(h[2].size as u64, base.size);
    assert!(h[0].created >= h[2].created && h[2].created > 1_700_000_000);
    // A loaded/pulled image has no local parents: older entries are <missing>.
    assert!(matches!(s.history("nosuch"), Err(ImageError::NotFound(_))));
}

#[test]
fn removing_and_pruning_respect_children_and_containers() {
    let (tmp, s) = store();
    let (base, mid, top) = chain(&s, tmp.path());
    assert_eq!(s.children(&mid.id), vec![top.id.clone()]);
    // mid has a child: not by ID, even forced.
    let e = s.remove(&mid.id, true, &never).unwrap_err();
    assert_eq!(e.status(), 409);
    assert!(e.to_string().contains("dependent child images"), "{e}");
    // untagging a parent keeps it.
    s.tag(&base.id, "base:2").unwrap();
    s.remove("base:1", false, &never).unwrap();
    let r = s.remove("base:2", false, &never).unwrap();
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(s.get(&base.id).is_ok());

    // Nothing dangling: base and mid are parents, top is tagged.
    let rep = s.prune(false, &|_| true, &never).unwrap();
    assert!(
        rep.deleted.is_empty() && rep.space_reclaimed == 0,
        "{rep:?}"
    );
    // -a with top in use by a container: its parents stay too.
    let rep = s.prune(true, &|_| true, &|id| id == top.id).unwrap();
    assert!(rep.deleted.is_empty(), "{rep:?}");
    // Untag top: it becomes dangling; the untagged chain below goes with it.
    s.remove("top:1", false, &|_| true).unwrap_err(); // in use, must force
    s.tag("top:1", "keep:me").unwrap();
    let rep = s.prune(false, &|_| true, &never).unwrap();
    assert!(rep.deleted.is_empty());
    let rep = s.prune(false, &|i| i.id != top.id, &never).unwrap();
    assert!(rep.deleted.is_empty());
    let rep = s.prune(true, &|_| true, &never).unwrap();
    let deleted: Vec<&str> = rep
        .deleted
        .iter()
        .filter_map(|d| d.deleted.as_deref())
        .collect();
    let untagged: Vec<&str> = rep
        .deleted
        .iter()
        .filter_map(|d| d.untagged.as_deref())
        .collect();
    assert!(deleted.contains(&top.id.as_str()) && deleted.contains(&mid.id.as_str()));
    assert!(deleted.contains(&base.id.as_str()));
    assert_eq!(untagged, vec!["keep:me", "top:1"]);
    assert_eq!(rep.space_reclaimed, base.size + 60);
    assert!(s.list().is_empty());
    assert_eq!(fs::read_dir(s.layers_dir()).unwrap().count(), 0);
    assert_eq!(fs::read_dir(s.images_dir()).unwrap().count(), 0);
}

#[test]
fn dangling_prune_removes_untagged_leaves_only() {
    let (tmp, s) = store();
    let (base, mid, top) = chain(&s, tmp.path());
    // the tag moves away: top is a dangling leaf on its untagged parent mid
    s.tag(&base.id, "top:1").unwrap();
    let rep = s.prune(false, &|_| true, &never).unwrap();
    let deleted: Vec<&str> = rep
        .deleted
        .iter()
        .filter_map(|d| d.deleted.as_deref())
        .collect();
    // top, then mid (a dangling leaf once top is gone), but not base
    assert!(s.get(&top.id).is_err());
    assert!(deleted.contains(&top.id.as_str()), "{deleted:?}");
    assert!(deleted.contains(&mid.id.as_str()), "{deleted:?}");
    assert!(!deleted.contains(&base.id.as_str()));
    assert!(s.get("base:1").is_ok());
    let usage = s.layer_usage();
    assert_eq!(usage.layers_size, base.size);
    assert_eq!(usage.shared.get(&base.id), Some(&0));
}

#[test]
fn save_then_load_gives_the_same_ids() {
    let (tmp, s) = store();
    let (base, _mid, top) = chain(&s, tmp.path());
    // A gzip'd layer (as pulled) is saved uncompressed.
    let gz = {
        let mut t = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(3);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        t.append_data(&mut h, "g", &b"gzz"[..]).unwrap();
        let raw = t.into_inner().unwrap();
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut e, &raw).unwrap();
        e.finish().unwrap()
    };
    let g = s.import(&gz[..], Some("gz:1"), &[], None).unwrap();

    let e = s.prepare_save(&["nosuch:1".into()]).unwrap_err();
    assert_eq!(e.status(), 404);
    let set = s
        .prepare_save(&["top:1".into(), "base".into(), g.id.clone()])
        .unwrap();
    assert_eq!(
        set.ids(),
        vec![top.id.clone(), base.id.clone(), g.id.clone()]
    );
    let mut archive = Vec::new();
    s.write_save(&set, &mut archive).unwrap();
    assert_eq!(fs::read_dir(s.tmp_dir()).unwrap().count(), 0);

    // The layout Docker 25+ writes.
    let mut names = Vec::new();
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    for e in tar::Archive::new(&archive[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let n = e.path().unwrap().to_string_lossy().into_owned();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut v).unwrap();
        names.push(n.clone());
        files.insert(n, v);
    }
    for n in ["index.json", "manifest.json", "oci-layout", "repositories"] {
        assert!(files.contains_key(n), "{n} missing from {names:?}");
    }
    for (n, data) in &files {
        if let Some(hex) = n.strip_prefix("blobs/sha256/") {
            if !hex.is_empty() {
                assert_eq!(sha256_digest(data), format!("sha256:{hex}"), "{n}");
            }
        }
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest[0]["RepoTags"], serde_json::json!(["top:1"]));
    assert_eq!(manifest[0]["Layers"].as_array().unwrap().len(), 3);
    assert_eq!(manifest[1]["RepoTags"], serde_json::json!(["base:1"]));
    assert!(manifest[2]["RepoTags"].is_null());
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["io.containerd.image.name"],
        "docker.io/library/top:1"
    );
    let repos: serde_json::Value = serde_json::from_slice(&files["repositories"]).unwrap();
    assert_eq!(repos["top"]["1"], hex_of(&top.id));

    // Into a fresh store: same IDs, tags and layers.
    let (_t2, s2) = store();
    let lines = s2.load(&archive[..]).unwrap();
    assert!(
        lines.contains(&"Loaded image: top:1".to_string()),
        "{lines:?}"
    );
    assert!(
        lines.contains(&format!("Loaded image ID: {}", g.id)),
        "{lines:?}"
    );
    assert_eq!(s2.get("top:1").unwrap().id, top.id);
    assert_eq!(s2.get("base:1").unwrap().id, base.id);
    assert_eq!(s2.get(&g.id).unwrap().diff_ids, g.diff_ids);
    assert_eq!(s2.get("top:1").unwrap().history, top.history);
    // And the OCI view alone (no manifest.json) loads the same.
    let mut oci = tar::Builder::new(Vec::new());
    for n in &names {
        if n == "manifest.json" || n == "repositories" || !files.contains_key(n) {
            continue;
        }
        if n == "blobs" || n == "blobs/sha256" || n.ends_with('/') {
            continue;
        }
        let mut h = tar::Header::new_ustar();
        h.set_size(files[n].len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        oci.append_data(&mut h, n, &files[n][..]).unwrap();
    }
    let (_t3, s3) = store();
    s3.load(&oci.into_inner().unwrap()[..]).unwrap();
    assert_eq!(s3.get("top:1").unwrap().id, top.id);
}

fn never(_: &str) -> bool {
    false
}

#[test]
fn symlinks_in_the_upper_dir_are_never_followed() {
    let (tmp, s) = store();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), b"host data").unwrap();
    let upper = tmp.path().join("upper");
    fs::create_dir(&upper).unwrap();
    std::os::unix::fs::symlink(&outside, upper.join("escape")).unwrap();
    std::os::unix::fs::symlink("/", upper.join("root")).unwrap();
    let layer = s.layer_from_upper(&upper).unwrap();
    let names = tar_names(&s.layer_dir(&layer.diff_id).join(blob::BLOB_FILE));
    assert_eq!(names, vec!["escape", "root"]);
    assert_eq!(layer.size, 0);
    // The upper dir itself given as a symlink is refused.
    let link = tmp.path().join("upper-link");
    std::os::unix::fs::symlink(&upper, &link).unwrap();
    assert!(s.layer_from_upper(&link).is_err());
}

#[test]
fn rmi_takes_the_untagged_parents_only_the_image_kept() {
    let (tmp, s) = store();
    let (base, mid, top) = chain(&s, tmp.path());
    let out = s.remove("top:1", false, &never).unwrap();
    let deleted: Vec<&str> = out.iter().filter_map(|d| d.deleted.as_deref()).collect();
    // as Docker: the build's intermediate image goes with the image, the tagged base stays
    assert!(deleted.contains(&top.id.as_str()), "{deleted:?}");
    assert!(deleted.contains(&mid.id.as_str()), "{deleted:?}");
    assert!(s.get(&mid.id).is_err());
    assert!(s.get("base:1").is_ok());
    let _ = base;
}

/// Everything about a tree that a container sees: per path, type, mode,
/// owner, mtime, device, content or link target, and xattrs.
fn tree_facts(root: &Path) -> Vec<String> {
    fn walk(root: &Path, p: &Path, out: &mut Vec<String>) {
        let mut names: Vec<_> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for q in names {
            let m = fs::symlink_metadata(&q).unwrap();
            let body = if m.file_type().is_symlink() {
                fs::read_link(&q).unwrap().display().to_string()
            } else if m.is_file() {
                String::from_utf8_lossy(&fs::read(&q).unwrap()).into_owned()
            } else {
                String::new()
            };
            let mut xs = Vec::new();
            for n in [
                "trusted.overlay.opaque",
                "trusted.overlay.origin",
                "user.note",
            ] {
                if let Some(v) = xattr(&q, n) {
                    xs.push(format!("{n}={v:?}"));
                }
            }
            // a whiteout's times are nobody's: unpacking gives it the time of unpacking
            let whiteout = m.file_type().is_char_device() && m.rdev() == 0;
            let times = if whiteout {
                String::new()
            } else {
                format!(
                    "mtime={} atime={}",
                    m.mtime(),
                    if m.file_type().is_symlink() {
                        0
                    } else {
                        m.atime()
                    }
                )
            };
            out.push(format!(
                "{} {:o} {}:{} {times} rdev={} {body:?} {xs:?}",
                q.strip_prefix(root).unwrap().display(),
                m.mode(),
                m.uid(),
                m.gid(),
                m.rdev(),
            ));
            if m.is_dir() {
                walk(root, &q, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

#[test]
fn a_taken_upper_dir_becomes_the_same_layer_as_an_unpacked_one() {
    let make = |upper: &Path| {
        make_upper(upper, 1_700_000_000);
        // what a RUN or overlayfs leaves that a layer tar does not carry
        let _sock = std::os::unix::net::UnixListener::bind(upper.join("tmp/sock")).unwrap();
        unpack::set_xattr(&upper.join("etc/app/conf"), "user.note", b"x").unwrap();
        unpack::set_xattr(&upper.join("etc"), "trusted.overlay.origin", b"\0\xfb").unwrap();
        set_all_times(upper, 1_700_000_000);
        let ts = [libc::timespec {
            tv_sec: MTIME as libc::time_t,
            tv_nsec: 123_456_789,
        }; 2];
        // SAFETY: valid path and two timespecs.
        let rc = unsafe {
            libc::utimensat(
                libc::AT_FDCWD,
                cpath(&upper.join("etc/app/conf")).as_ptr(),
                ts.as_ptr(),
                0,
            )
        };
        assert_eq!(rc, 0);
    };
    let (tmp_a, a) = store();
    let (tmp_b, b) = store();
    let upper_a = tmp_a.path().join("upper");
    let upper_b = tmp_b.path().join("upper");
    make(&upper_a);
    make(&upper_b);
    let unpacked = a.layer_from_upper(&upper_a).unwrap();
    let taken = b.layer_from_upper_taken(&upper_b).unwrap();
    assert_eq!(unpacked.diff_id, taken.diff_id);
    assert_eq!(unpacked.size, taken.size);
    assert!(upper_a.exists());
    assert!(
        !upper_b.exists(),
        "the taken upper dir was moved into the store"
    );
    let fa = tree_facts(&a.layer_dir(&unpacked.diff_id).join("diff"));
    let fb = tree_facts(&b.layer_dir(&taken.diff_id).join("diff"));
    assert_eq!(fa, fb);
    assert!(fb
        .iter()
        .all(|f| !f.contains("origin") && !f.contains("user.note")));
    assert!(fb
        .iter()
        .any(|f| f.starts_with("var/cache ") && f.contains("opaque")));
    // a layer already present is shared and the upper dir left alone
    let upper_c = tmp_b.path().join("upper-again");
    make(&upper_c);
    let again = b.layer_from_upper_taken(&upper_c).unwrap();
    assert_eq!(again.diff_id, taken.diff_id);
    assert!(upper_c.exists());
}
