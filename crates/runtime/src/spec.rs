//! The OCI runtime spec (config.json, opencontainers/runtime-spec config.md and
//! config-linux.md) of a container, with Docker's defaults (moby oci/defaults.go):
//! its capability set, mounts, masked and read-only paths.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Spec;
use serde_json::json;

use crate::{io_err, RuntimeError};

/// Docker's default capabilities (moby oci/caps/defaults.go), NET_RAW included as in 20.10.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability, for `--privileged` and `--cap-add ALL`.
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
];

/// A bind mount into the container.
#[derive(Clone, Debug)]
pub struct Bind {
    /// Path on the host.
    pub source: PathBuf,
    /// Path in the container.
    pub destination: String,
    /// Mounted read-only.
    pub readonly: bool,
}

/// What a container's spec is made of.
#[derive(Clone, Debug, Default)]
pub struct ContainerSpec {
    /// The merged root filesystem.
    pub rootfs: PathBuf,
    /// argv of the container's process (entrypoint + cmd); must not be empty.
    pub args: Vec<String>,
    /// KEY=VALUE environment.
    pub env: Vec<String>,
    /// Working directory ("/" when empty).
    pub cwd: String,
    /// uid, gid and supplementary gids of the process.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Supplementary gids (`process.user.additionalGids`): the user's memberships in
    /// the image's `/etc/group` and `HostConfig.GroupAdd` ([`resolve_groups`]).
    pub additional_gids: Vec<u32>,
    /// The UTS hostname.
    pub hostname: String,
    /// Allocate a terminal.
    pub tty: bool,
    /// The sandbox to join; None shares the host's network namespace (`--network host`).
    pub netns: Option<PathBuf>,
    /// Bind mounts (volumes, and the generated /etc/hosts, /etc/resolv.conf, /etc/hostname).
    pub binds: Vec<Bind>,
    /// Capabilities added (`CAP_X` or `X`, or `ALL`).
    pub cap_add: Vec<String>,
    /// Capabilities dropped.
    pub cap_drop: Vec<String>,
    /// `--privileged`: every capability, no masked paths.
    pub privileged: bool,
    /// cgroup path, e.g. "/tether/<id>".
    pub cgroups_path: String,
    /// cgroup limits (`HostConfig` resources); unset ones are the runtime's defaults.
    pub resources: Resources,
}

/// The cgroup limits of a container as Docker's `HostConfig` gives them (`Memory`,
/// `MemorySwap`, ...); None or 0 means no limit (runtime default). The same limits
/// `runc update` applies to a running container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// Memory plus swap in bytes; -1 unlimited swap.
    pub memory_swap: Option<i64>,
    /// Memory soft limit in bytes.
    pub memory_reservation: Option<i64>,
    /// CPU shares (relative weight).
    pub cpu_shares: Option<i64>,
    /// CFS quota in microseconds per period; -1 none.
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds.
    pub cpu_period: Option<i64>,
    /// Maximum number of processes; 0 or -1 none.
    pub pids_limit: Option<i64>,
    /// Block IO weight, 10 to 1000.
    pub blkio_weight: Option<u16>,
}

/// Whether the host's cgroups take a block IO weight (v1 `blkio.weight`, v2
/// `io.weight`); Docker discards the weight with a warning where they do not.
pub fn blkio_weight_supported() -> bool {
    Path::new("/sys/fs/cgroup/blkio/blkio.weight").exists()
        || Path::new("/sys/fs/cgroup/io.weight").exists()
}

impl Resources {
    /// The OCI `linux.resources` object (runtime-spec config-linux.md) of these limits,
    /// with `devices` as given.
    pub fn to_oci(&self, devices: serde_json::Value) -> serde_json::Value {
        let set = |v: Option<i64>| v.filter(|v| *v != 0);
        let mut r = json!({"devices": devices});
        let mut mem = serde_json::Map::new();
        if let Some(v) = set(self.memory) {
            mem.insert("limit".into(), json!(v));
        }
        if let Some(v) = set(self.memory_swap) {
            mem.insert("swap".into(), json!(v));
        }
        if let Some(v) = set(self.memory_reservation) {
            mem.insert("reservation".into(), json!(v));
        }
        if !mem.is_empty() {
            r["memory"] = serde_json::Value::Object(mem);
        }
        let mut cpu = serde_json::Map::new();
        if let Some(v) = set(self.cpu_shares).filter(|v| *v > 0) {
            cpu.insert("shares".into(), json!(v));
        }
        if let Some(v) = set(self.cpu_quota) {
            cpu.insert("quota".into(), json!(v));
        }
        if let Some(v) = set(self.cpu_period).filter(|v| *v > 0) {
            cpu.insert("period".into(), json!(v));
        }
        if !cpu.is_empty() {
            r["cpu"] = serde_json::Value::Object(cpu);
        }
        if let Some(v) = set(self.pids_limit).filter(|v| *v > 0) {
            r["pids"] = json!({"limit": v});
        }
        if let Some(w) = self
            .blkio_weight
            .filter(|w| *w != 0 && blkio_weight_supported())
        {
            r["blockIO"] = json!({"weight": w});
        }
        r
    }
}

fn norm_cap(c: &str) -> String {
    let u = c.to_ascii_uppercase();
    if u.starts_with("CAP_") {
        u
    } else {
        format!("CAP_{u}")
    }
}

/// The capability set for `add`/`drop` on top of Docker's defaults.
///
/// Errors: an unknown capability name (lists where the valid ones are).
pub fn capabilities(
    add: &[String],
    drop: &[String],
    privileged: bool,
) -> Result<Vec<String>, RuntimeError> {
    let known = |c: &str| ALL_CAPS.contains(&c);
    let mut caps: Vec<String> = if privileged {
        ALL_CAPS.iter().map(|s| s.to_string()).collect()
    } else {
        DEFAULT_CAPS.iter().map(|s| s.to_string()).collect()
    };
    for a in add {
        let c = norm_cap(a);
        if c == "CAP_ALL" {
            caps = ALL_CAPS.iter().map(|s| s.to_string()).collect();
            continue;
        }
        if !known(&c) {
            return Err(RuntimeError::Spec(format!("unknown capability to add: {a:?} (valid: capabilities(7) names such as NET_ADMIN, NET_RAW, SYS_ADMIN, or ALL)")));
        }
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    for d in drop {
        let c = norm_cap(d);
        if c == "CAP_ALL" {
            caps.clear();
            continue;
        }
        if !known(&c) {
            return Err(RuntimeError::Spec(format!(
                "unknown capability to drop: {d:?} (valid: capabilities(7) names, or ALL)"
            )));
        }
        caps.retain(|x| *x != c);
    }
    Ok(caps)
}

fn nofile_limit() -> u64 {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, hard)| hard.min(1_048_576))
        .unwrap_or(1024)
}

/// Builds the spec (validated by deserializing into oci-spec's `Spec`).
///
/// Errors: empty args, unknown capabilities.
pub fn build(c: &ContainerSpec) -> Result<Spec, RuntimeError> {
    if c.args.is_empty() {
        return Err(RuntimeError::Spec(
            "no command specified: the image has no Cmd or Entrypoint and none was given".into(),
        ));
    }
    let caps = capabilities(&c.cap_add, &c.cap_drop, c.privileged)?;
    let nofile = nofile_limit();
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro", "nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"]}),
    ];
    for b in &c.binds {
        let mut opts = vec!["rbind", "rprivate"];
        if b.readonly {
            opts.push("ro");
        }
        mounts.push(json!({"destination": b.destination, "type": "bind", "source": b.source, "options": opts}));
    }
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if let Some(ns) = &c.netns {
        namespaces.push(json!({"type": "network", "path": ns}));
    }
    let (masked, readonly): (Vec<&str>, Vec<&str>) = if c.privileged {
        (vec![], vec![])
    } else {
        (
            vec![
                "/proc/asound",
                "/proc/acpi",
                "/proc/kcore",
                "/proc/keys",
                "/proc/latency_stats",
                "/proc/timer_list",
                "/proc/timer_stats",
                "/proc/sched_debug",
                "/proc/scsi",
                "/sys/firmware",
            ],
            vec![
                "/proc/bus",
                "/proc/fs",
                "/proc/irq",
                "/proc/sys",
                "/proc/sysrq-trigger",
            ],
        )
    };
    let cwd = if c.cwd.is_empty() {
        "/".to_string()
    } else {
        c.cwd.clone()
    };
    let v = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": c.tty,
            "user": {"uid": c.uid, "gid": c.gid, "additionalGids": c.additional_gids},
            "args": c.args,
            "env": c.env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile, "soft": nofile}],
            "noNewPrivileges": false
        },
        "root": {"path": c.rootfs, "readonly": false},
        "hostname": c.hostname,
        "mounts": mounts,
        "linux": {
            "cgroupsPath": c.cgroups_path,
            "resources": c.resources.to_oci(json!([{"allow": false, "access": "rwm"}])),
            "namespaces": namespaces,
            "maskedPaths": masked,
            "readonlyPaths": readonly
        }
    });
    serde_json::from_value(v)
        .map_err(|e| RuntimeError::Spec(format!("spec does not validate: {e}")))
}

/// Writes `spec` as `<bundle>/config.json`.
pub fn save(spec: &Spec, bundle: &Path) -> Result<(), RuntimeError> {
    std::fs::create_dir_all(bundle)
        .map_err(io_err(format!("create bundle {}", bundle.display())))?;
    let path = bundle.join("config.json");
    let data = serde_json::to_vec(spec).map_err(|e| RuntimeError::Spec(e.to_string()))?;
    std::fs::write(&path, data).map_err(io_err(format!("write {}", path.display())))
}

/// A root filesystem's `/etc/passwd` and `/etc/group`, each read at most once and only
/// when a lookup needs it (a missing file reads as empty).
struct UserDb<'a> {
    rootfs: &'a Path,
    passwd: std::cell::OnceCell<String>,
    group: std::cell::OnceCell<String>,
}

impl<'a> UserDb<'a> {
    fn new(rootfs: &'a Path) -> Self {
        UserDb {
            rootfs,
            passwd: std::cell::OnceCell::new(),
            group: std::cell::OnceCell::new(),
        }
    }

    fn passwd(&self) -> &str {
        self.passwd.get_or_init(|| {
            std::fs::read_to_string(self.rootfs.join("etc/passwd")).unwrap_or_default()
        })
    }

    fn group(&self) -> &str {
        self.group.get_or_init(|| {
            std::fs::read_to_string(self.rootfs.join("etc/group")).unwrap_or_default()
        })
    }

    /// `/etc/group` entries with at least name, password and gid.
    fn group_entries(&self) -> impl Iterator<Item = Vec<&str>> {
        self.group()
            .lines()
            .map(|l| l.split(':').collect::<Vec<&str>>())
            .filter(|f| f.len() > 2)
    }

    /// The gid of group `name` in `/etc/group`.
    fn gid_of(&self, name: &str) -> Option<u32> {
        self.group_entries()
            .find_map(|f| (f[0] == name).then(|| f[2].parse().ok()).flatten())
    }
}

/// A container process's identity: uid, primary gid and supplementary gids (OCI runtime
/// spec, `process.user`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// `process.user.uid`.
    pub uid: u32,
    /// `process.user.gid`.
    pub gid: u32,
    /// `process.user.additionalGids`, sorted, without duplicates.
    pub additional_gids: Vec<u32>,
}

/// [`resolve_user`] and [`resolve_groups`] at once, reading the image's `/etc/passwd` and
/// `/etc/group` at most once each (root without `group_add` reads neither).
///
/// Errors: those of [`resolve_user`], then those of [`resolve_groups`].
pub fn resolve_identity(
    rootfs: &Path,
    user: &str,
    group_add: &[String],
) -> Result<Identity, RuntimeError> {
    let db = UserDb::new(rootfs);
    let (uid, gid) = user_in(&db, user)?;
    Ok(Identity {
        uid,
        gid,
        additional_gids: groups_in(&db, user, group_add)?,
    })
}

/// Resolves a Docker `--user` value (`uid`, `uid:gid`, `name`, `name:group`) against the
/// rootfs's /etc/passwd and /etc/group. Empty means root.
///
/// Errors: a name not found in the image (names it).
pub fn resolve_user(rootfs: &Path, user: &str) -> Result<(u32, u32), RuntimeError> {
    user_in(&UserDb::new(rootfs), user)
}

fn user_in(db: &UserDb<'_>, user: &str) -> Result<(u32, u32), RuntimeError> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let passwd = db.passwd();
    let (uid, default_gid) = match u.parse::<u32>() {
        Ok(n) => {
            let gid = passwd.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 3 && f[2] == u)
                    .then(|| f[3].parse().ok())
                    .flatten()
            });
            (n, gid.unwrap_or(n))
        }
        Err(_) => passwd
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 3 && f[0] == u)
                    .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
                    .flatten()
            })
            .ok_or_else(|| {
                RuntimeError::Spec(format!(
                    "unable to find user {u}: no matching entries in passwd file"
                ))
            })?,
    };
    let gid = match g {
        None => default_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => db.gid_of(g).ok_or_else(|| {
                RuntimeError::Spec(format!(
                    "unable to find group {g}: no matching entries in group file"
                ))
            })?,
        },
    };
    Ok((uid, gid))
}

/// The supplementary groups of `user` (as `--user` gives it: name or uid, optionally
/// `:group`) in the root filesystem `rootfs`, as Docker sets them: every group of the
/// image's `/etc/group` that lists the user's name as a member, then each `group_add`
/// entry (`HostConfig.GroupAdd`: a gid, or a group name looked up in `/etc/group`).
/// Sorted, without duplicates.
///
/// # Errors
/// [`RuntimeError::Spec`] naming a `group_add` name that the image's `/etc/group` does
/// not have (`Unable to find group NAME: no matching entries in group file`).
pub fn resolve_groups(
    rootfs: &Path,
    user: &str,
    group_add: &[String],
) -> Result<Vec<u32>, RuntimeError> {
    groups_in(&UserDb::new(rootfs), user, group_add)
}

fn groups_in(db: &UserDb<'_>, user: &str, group_add: &[String]) -> Result<Vec<u32>, RuntimeError> {
    let name = user.split(':').next().unwrap_or("");
    // a numeric user is a member by the name /etc/passwd gives that uid
    let name = match name.parse::<u32>() {
        Ok(uid) => db
            .passwd()
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[0].to_string())
            })
            .unwrap_or_default(),
        Err(_) => name.to_string(),
    };
    let mut out: Vec<u32> = Vec::new();
    if !name.is_empty() {
        for f in db.group_entries() {
            if f.get(3)
                .is_some_and(|m| m.split(',').any(|m| m.trim() == name))
            {
                if let Ok(g) = f[2].parse() {
                    out.push(g);
                }
            }
        }
    }
    for g in group_add {
        let gid = match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => db.gid_of(g).ok_or_else(|| {
                RuntimeError::Spec(format!(
                    "Unable to find group {g}: no matching entries in group file"
                ))
            })?,
        };
        out.push(gid);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_builds_with_netns_and_binds() {
        let c = ContainerSpec {
            rootfs: "/r".into(),
            args: vec!["sh".into()],
            netns: Some("/run/x/netns/abc".into()),
            binds: vec![Bind {
                source: "/h".into(),
                destination: "/etc/hosts".into(),
                readonly: true,
            }],
            cap_add: vec!["NET_ADMIN".into()],
            cap_drop: vec!["net_raw".into()],
            ..Default::default()
        };
        let s = build(&c).unwrap();
        let v = serde_json::to_value(&s).unwrap();
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        assert!(ns
            .iter()
            .any(|n| n["type"] == "network" && n["path"] == "/run/x/netns/abc"));
        let caps = v["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert!(caps.iter().any(|c| c == "CAP_NET_ADMIN"));
        assert!(!caps.iter().any(|c| c == "CAP_NET_RAW"));
        assert!(v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["destination"] == "/etc/hosts"));
    }

    #[test]
    fn host_network_has_no_network_namespace() {
        let c = ContainerSpec {
            args: vec!["sh".into()],
            ..Default::default()
        };
        let v = serde_json::to_value(build(&c).unwrap()).unwrap();
        assert!(!v["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["type"] == "network"));
    }

    #[test]
    fn bad_capability_and_empty_args_are_errors() {
        assert!(capabilities(&["NOPE".into()], &[], false)
            .unwrap_err()
            .to_string()
            .contains("NOPE"));
        assert!(build(&ContainerSpec::default()).is_err());
    }

    #[test]
    fn users_resolve_from_the_image() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(d.path().join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
        assert_eq!(resolve_user(d.path(), "").unwrap(), (0, 0));
        assert!(resolve_groups(d.path(), "nobody", &["nosuchgroup".into()])
            .unwrap_err()
            .to_string()
            .contains("nosuchgroup"));
        assert!(resolve_groups(d.path(), "nobody", &["4242".into()])
            .unwrap()
            .contains(&4242));
        assert_eq!(resolve_user(d.path(), "nobody").unwrap(), (65534, 65534));
        assert_eq!(
            resolve_user(d.path(), "1000:nogroup").unwrap(),
            (1000, 65534)
        );
        assert!(resolve_user(d.path(), "ghost")
            .unwrap_err()
            .to_string()
            .contains("ghost"));
    }

    #[test]
    fn resources_become_oci_limits() {
        let none = Resources::default().to_oci(json!([]));
        assert_eq!(none, json!({"devices": []}));
        let r = Resources {
            memory: Some(64 << 20),
            memory_swap: Some(-1),
            cpu_shares: Some(512),
            cpu_quota: Some(50_000),
            cpu_period: Some(100_000),
            pids_limit: Some(-1),
            ..Default::default()
        }
        .to_oci(json!([]));
        assert_eq!(r["memory"], json!({"limit": 64 << 20, "swap": -1}));
        assert_eq!(
            r["cpu"],
            json!({"shares": 512, "quota": 50_000, "period": 100_000})
        );
        assert!(r.get("pids").is_none(), "-1 is no limit: {r}");
    }
}
