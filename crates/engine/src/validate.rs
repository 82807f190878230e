//! Input validation where values enter the object model: each check returns
//! [`EngineError::InvalidParam`] (a 400) whose message names the field, the value given
//! and what would be valid, in Docker's wording where Docker has one. The checks are pure:
//! callers run them before anything is created.

use bollard_stubs::models::{HealthConfig, HostConfig};

use crate::EngineError;

fn invalid(msg: String) -> EngineError {
    EngineError::InvalidParam(msg)
}

/// The longest volume name: one path component on Linux filesystems (NAME_MAX).
pub const MAX_VOLUME_NAME: usize = 255;

/// The longest hostname Linux takes (`HOST_NAME_MAX`).
pub const MAX_HOSTNAME: usize = 64;

/// Docker's smallest memory limit (`linuxMinMemory`, 6 MiB).
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// Docker's `RestrictedNamePattern`: `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$` (two characters at
/// least), the rule for local volume names.
pub fn restricted_name(name: &str) -> bool {
    let mut ch = name.chars();
    matches!(ch.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() >= 2
        && ch.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// A local volume name: at most [`MAX_VOLUME_NAME`] bytes of Docker's
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
///
/// Errors: 400 naming the volume name, its length or Docker's character rule.
pub fn volume_name(name: &str) -> Result<(), EngineError> {
    if name.len() > MAX_VOLUME_NAME {
        return Err(invalid(format!(
            "invalid volume name {name:?}: it is {} bytes long, a local volume name has at most {MAX_VOLUME_NAME}",
            name.len()
        )));
    }
    if !restricted_name(name) {
        return Err(invalid(format!(
            "create {name}: {name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    Ok(())
}

/// A container's `Hostname`: at most [`MAX_HOSTNAME`] bytes of dot-separated labels of
/// letters, digits, `-` and `_`, each label starting with a letter or digit.
///
/// Errors: 400 naming `Hostname` and the value.
pub fn hostname(h: &str) -> Result<(), EngineError> {
    if h.is_empty() {
        return Ok(());
    }
    if h.len() > MAX_HOSTNAME {
        return Err(invalid(format!(
            "invalid hostname format for Hostname {h:?}: it is {} bytes long, at most {MAX_HOSTNAME} are allowed",
            h.len()
        )));
    }
    let label_ok = |l: &str| {
        l.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
    };
    if !h.split('.').all(label_ok) {
        return Err(invalid(format!(
            "invalid hostname format for Hostname {h:?}: use dot-separated labels of letters, digits, '-' and '_', each starting with a letter or digit"
        )));
    }
    Ok(())
}

/// Parses a MAC address `aa:bb:cc:dd:ee:ff` (or with `-`) into its six bytes.
/// Six hex octets separated by ':' or '-', as bytes.
pub(crate) fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.split([':', '-']).collect();
    if parts.len() != 6 {
        return None;
    }
    let mut out = [0u8; 6];
    for (o, p) in out.iter_mut().zip(&parts) {
        if p.len() != 2 {
            return None;
        }
        *o = u8::from_str_radix(p, 16).ok()?;
    }
    Some(out)
}

/// A MAC address given for an interface (`field` names where it came from): six
/// hex octets, unicast (the first octet's lowest bit clear) and not all zero.
///
/// Errors: 400 naming the field and the value.
pub fn mac_address(field: &str, s: &str) -> Result<(), EngineError> {
    if s.is_empty() {
        return Ok(());
    }
    let Some(b) = parse_mac(s) else {
        return Err(invalid(format!(
            "invalid MAC address {s:?} in {field}: expected six hex octets such as 02:42:ac:11:00:02"
        )));
    };
    if b[0] & 1 == 1 {
        return Err(invalid(format!(
            "invalid MAC address {s:?} in {field}: it is a multicast address; an interface needs a unicast one (the first octet even, such as 02:42:ac:11:00:02)"
        )));
    }
    if b == [0; 6] {
        return Err(invalid(format!(
            "invalid MAC address {s:?} in {field}: the all-zero address cannot be assigned to an interface"
        )));
    }
    Ok(())
}

/// The log drivers tether has: `json-file` (the default, what `logs` reads).
pub const LOG_DRIVERS: [&str; 1] = ["json-file"];

/// `HostConfig.LogConfig`: the driver must be one tether has (an empty type is the
/// default, json-file), as dockerd refuses an unknown driver at create
/// (`logger.ValidateLogOpts`: "logger: no log driver named ... is registered").
///
/// Errors: 400 naming the driver and the valid ones.
pub fn log_config(hc: &HostConfig) -> Result<(), EngineError> {
    let Some(t) = hc
        .log_config
        .as_ref()
        .and_then(|l| l.typ.as_deref())
        .filter(|t| !t.is_empty())
    else {
        return Ok(());
    };
    if LOG_DRIVERS.contains(&t) {
        return Ok(());
    }
    Err(invalid(format!(
        "invalid HostConfig.LogConfig.Type {t:?}: logger: no log driver named '{t}' is registered (tether has {})",
        LOG_DRIVERS.join(", ")
    )))
}

/// The resource values of a HostConfig that Docker checks (daemon_unix.go
/// `verifyPlatformContainerResources`), each named as its JSON field.
///
/// Errors: 400 naming `HostConfig.<Field>`, the value and the valid range.
pub fn resources(hc: &HostConfig) -> Result<(), EngineError> {
    let field = |name: &str, v: i64, valid: &str| {
        invalid(format!("invalid HostConfig.{name} {v}: {valid}"))
    };
    let memory = hc.memory.unwrap_or(0);
    if memory != 0 && memory < MIN_MEMORY {
        return Err(field(
            "Memory",
            memory,
            "Minimum memory limit allowed is 6MB (give 0 for no limit, or at least 6291456 bytes)",
        ));
    }
    if let Some(v) = hc.memory_swap {
        if v < -1 {
            return Err(field(
                "MemorySwap",
                v,
                "must be -1 (unlimited swap), 0 (unset) or a number of bytes",
            ));
        }
        if v > 0 && memory == 0 {
            return Err(field(
                "MemorySwap",
                v,
                "You should always set the Memory limit when using Memoryswap limit",
            ));
        }
        if v > 0 && v < memory {
            return Err(field(
                "MemorySwap",
                v,
                &format!("Minimum memoryswap limit should be larger than memory limit ({memory}), see usage"),
            ));
        }
    }
    for (name, v) in [
        ("MemoryReservation", hc.memory_reservation),
        ("CpuShares", hc.cpu_shares),
        ("NanoCpus", hc.nano_cpus),
        ("CpuPeriod", hc.cpu_period),
        ("CpuRealtimePeriod", hc.cpu_realtime_period),
        ("CpuRealtimeRuntime", hc.cpu_realtime_runtime),
        ("ShmSize", hc.shm_size),
        ("CpuCount", hc.cpu_count),
        ("CpuPercent", hc.cpu_percent),
    ] {
        if let Some(v) = v.filter(|v| *v < 0) {
            return Err(field(name, v, "cannot be negative"));
        }
    }
    if let Some(v) = hc.cpu_quota.filter(|v| *v < -1) {
        return Err(field(
            "CpuQuota",
            v,
            "must be -1 or 0 (no quota) or a number of microseconds",
        ));
    }
    if let Some(v) = hc.memory_swappiness.filter(|v| *v < -1 || *v > 100) {
        return Err(field(
            "MemorySwappiness",
            v,
            "valid memory swappiness range is 0-100 (-1 for the default)",
        ));
    }
    if let Some(v) = hc.oom_score_adj.filter(|v| *v < -1000 || *v > 1000) {
        return Err(field(
            "OomScoreAdj",
            v,
            "range for oom score adj is [-1000, 1000]",
        ));
    }
    if let Some(v) = hc
        .blkio_weight
        .filter(|v| *v != 0 && (*v < 10 || *v > 1000))
    {
        return Err(field(
            "BlkioWeight",
            i64::from(v),
            "Range of blkio weight is from 10 to 1000 (0 for the default)",
        ));
    }
    Ok(())
}

/// A healthcheck's durations and retries as Docker checks them: each duration 0
/// (inherit the image's) or at least 1ms, retries not negative.
///
/// Errors: 400 in Docker's wording ("Interval in Healthcheck cannot be less than 1ms"),
/// with the value given.
pub fn healthcheck(h: &HealthConfig) -> Result<(), EngineError> {
    const MIN_NS: i64 = 1_000_000;
    for (name, v) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
    ] {
        if let Some(v) = v.filter(|v| *v != 0 && *v < MIN_NS) {
            return Err(invalid(format!(
                "{name} in Healthcheck cannot be less than 1ms (Healthcheck.{name} is {v} ns; give 0 to inherit the image's, or at least 1000000)"
            )));
        }
    }
    if let Some(v) = h.retries.filter(|v| *v < 0) {
        return Err(invalid(format!(
            "Retries in Healthcheck cannot be negative (Healthcheck.Retries is {v}; give 0 to inherit the image's)"
        )));
    }
    Ok(())
}

/// The modes a bind or volume spec may carry after its second colon.
const MODE_GROUPS: &[&[&str]] = &[
    &["ro", "rw"],
    &["z", "Z"],
    &["nocopy"],
    &[
        "private", "rprivate", "shared", "rshared", "slave", "rslave",
    ],
    &["consistent", "cached", "delegated"],
];

/// The mode of one `HostConfig.Binds` entry (`ro,Z` ...): comma-separated, each
/// known, at most one of each kind (Docker's `ValidMountMode`).
///
/// Errors: 400 `invalid mode: MODE` (Docker's wording), naming the entry and the
/// valid modes.
pub fn bind_mode(spec: &str, mode: &str) -> Result<(), EngineError> {
    let mut seen = [false; 5];
    let ok = !mode.is_empty()
        && mode
            .split(',')
            .all(|m| match MODE_GROUPS.iter().position(|g| g.contains(&m)) {
                Some(i) if !seen[i] => {
                    seen[i] = true;
                    true
                }
                _ => false,
            });
    if !ok {
        return Err(invalid(format!(
            "invalid mode: {mode} (in HostConfig.Binds entry {spec:?}; valid modes, comma-separated, one of each kind: ro or rw, z or Z, nocopy, private, rprivate, shared, rshared, slave or rslave, consistent, cached or delegated)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(r: Result<(), EngineError>) -> String {
        match r {
            Err(EngineError::InvalidParam(m)) => m,
            other => panic!("expected InvalidParam, got {other:?}"),
        }
    }

    #[test]
    fn volume_names() {
        assert!(volume_name("data1").is_ok());
        assert!(volume_name(&"a".repeat(255)).is_ok());
        assert!(msg(volume_name(&"a".repeat(256))).contains("256 bytes"));
        assert!(msg(volume_name("bad name")).contains("\"bad name\" includes invalid characters"));
        assert!(volume_name("x").is_err());
        assert!(volume_name("-x").is_err());
    }

    #[test]
    fn hostnames() {
        assert!(hostname("").is_ok());
        assert!(hostname("web-1.example_x").is_ok());
        assert!(hostname(&"h".repeat(64)).is_ok());
        assert!(msg(hostname(&"h".repeat(65))).contains("65 bytes"));
        for bad in ["bad!", "-x", "a..b", ".a", "a b"] {
            assert!(msg(hostname(bad)).contains("Hostname"), "{bad}");
        }
    }

    #[test]
    fn macs() {
        assert!(mac_address("MacAddress", "02:42:ac:11:00:02").is_ok());
        assert!(mac_address("MacAddress", "02-42-AC-11-00-02").is_ok());
        assert!(mac_address("MacAddress", "").is_ok());
        for bad in [
            "zz",
            "01:00:5e:00:00:01",
            "00:00:00:00:00:00",
            "02:42:ac:11:00",
            "0242.ac11.0002",
        ] {
            let m = msg(mac_address("MacAddress", bad));
            assert!(m.contains(bad) && m.contains("MacAddress"), "{m}");
        }
    }

    #[test]
    fn resource_values() {
        let hc = |f: fn(&mut HostConfig)| {
            let mut h = HostConfig::default();
            f(&mut h);
            resources(&h)
        };
        assert!(hc(|_| {}).is_ok());
        assert!(hc(|h| h.memory = Some(64 << 20)).is_ok());
        assert!(hc(|h| {
            h.memory = Some(64 << 20);
            h.memory_swap = Some(-1)
        })
        .is_ok());
        assert!(msg(hc(|h| h.memory = Some(-5))).contains("HostConfig.Memory -5"));
        assert!(msg(hc(|h| h.memory_swap = Some(-2))).contains("HostConfig.MemorySwap -2"));
        assert!(msg(hc(|h| h.cpu_shares = Some(-1))).contains("HostConfig.CpuShares -1"));
        assert!(msg(hc(|h| h.nano_cpus = Some(-1))).contains("HostConfig.NanoCpus -1"));
        assert!(msg(hc(|h| h.oom_score_adj = Some(1001))).contains("OomScoreAdj"));
    }

    #[test]
    fn healthchecks() {
        let mut h = HealthConfig::default();
        assert!(healthcheck(&h).is_ok());
        h.interval = Some(0);
        assert!(healthcheck(&h).is_ok());
        h.interval = Some(-1);
        assert!(msg(healthcheck(&h)).starts_with("Interval in Healthcheck cannot be less than 1ms"));
        h.interval = Some(2_000_000_000);
        h.retries = Some(-3);
        assert!(msg(healthcheck(&h)).contains("Retries in Healthcheck cannot be negative"));
    }

    #[test]
    fn modes() {
        for ok in [
            "ro",
            "rw",
            "z",
            "Z",
            "ro,Z",
            "nocopy",
            "rslave",
            "ro,cached",
            "rw,shared,z",
        ] {
            assert!(bind_mode("/a:/b", ok).is_ok(), "{ok}");
        }
        for bad in ["badmode", "ro,rw", "", "z,Z", "ro,ro"] {
            let m = msg(bind_mode("/a:/b", bad));
            assert!(m.starts_with(&format!("invalid mode: {bad}")), "{m}");
        }
    }
}
