//! Writes of per-namespace sysctls under /proc/sys/net (see the kernel's
//! Documentation/networking/ip-sysctl.rst). They act on the namespace of the calling thread.

use std::path::PathBuf;

/// Writes `value` to `/proc/sys/<key with dots as slashes>`, e.g.
/// `set("net.ipv4.ip_forward", "1")`. Only for keys without an interface name (a name
/// may hold dots, `10.9.0.1`): per-interface knobs go through [`set_conf`].
///
/// Errors: the file cannot be written (names the key).
pub fn set(key: &str, value: &str) -> Result<(), std::io::Error> {
    let path: PathBuf = ["/proc/sys", &key.replace('.', "/")].iter().collect();
    std::fs::write(&path, value)
        .map_err(|e| std::io::Error::new(e.kind(), format!("sysctl {key}={value}: {e}")))
}

/// Writes `value` to `/proc/sys/net/<family>/conf/<ifname>/<knob>`, e.g.
/// `set_conf("ipv4", "tb-0", "route_localnet", "1")`. The interface name is one path
/// segment, so a name with dots ("br.1", "10.0.0.1") is written as it is, not split the
/// way [`set`] splits its key.
///
/// Errors: the file cannot be written (names the path).
pub fn set_conf(family: &str, ifname: &str, knob: &str, value: &str) -> Result<(), std::io::Error> {
    let path: PathBuf = ["/proc/sys/net", family, "conf", ifname, knob]
        .iter()
        .collect();
    std::fs::write(&path, value).map_err(|e| {
        std::io::Error::new(e.kind(), format!("sysctl {}={value}: {e}", path.display()))
    })
}
