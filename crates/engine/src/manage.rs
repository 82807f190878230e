//! Container management beyond the lifecycle: rename, pause/unpause (cgroup freezer
//! through runc), top (the container's processes) and update (restart policy and
//! cgroup limits). Docker Engine API v1.41-1.47, "Container" section.

use bollard_stubs::models::ContainerUpdateBody;
use serde_json::{json, Value};

use crate::sandbox::dns_names;
use crate::{Engine, EngineError};

/// Docker's answer to an operation that needs a running container.
fn not_running(id: &str) -> EngineError {
    EngineError::Conflict(format!("Container {id} is not running"))
}

impl Engine {
    /// POST /containers/{id}/rename?name=NEW: the container answers to `new_name` from
    /// now on, running or not; on every user network it is on, the embedded DNS answers
    /// the new name and no longer the old one; other containers' legacy links to it
    /// follow (same alias). Emits `rename` with `oldName`.
    ///
    /// Errors: 400 empty, invalid (as at create) or unchanged name; 404 no such
    /// container; 409 the name is taken by another container.
    pub async fn rename_container(&self, key: &str, new_name: &str) -> Result<(), EngineError> {
        let new_name = new_name.trim_start_matches('/');
        if new_name.is_empty() {
            return Err(EngineError::InvalidParam(
                "Neither old nor new names may be empty".into(),
            ));
        }
        if !crate::networks::valid_name(new_name) {
            return Err(EngineError::InvalidParam(format!(
                "Invalid container name ({new_name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let (_own, c) = self.own(key).await?;
        let mut st = self.state.lock().await;
        let mut c = st.container(&c.id)?.clone();
        if c.name == new_name {
            return Err(EngineError::InvalidParam(
                "Renaming a container with the same name as its current name".into(),
            ));
        }
        if let Some(o) = st.containers.values().find(|o| o.name == new_name) {
            return Err(EngineError::Conflict(format!(
                "Conflict. The container name \"/{new_name}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                o.id
            )));
        }
        let old = std::mem::replace(&mut c.name, new_name.to_string());
        self.save_container(&c)?;
        // the names the endpoints answer to
        for (net_name, att) in &c.attachments {
            let (Some(ep), Some(net)) =
                (c.endpoints.get(net_name), st.networks.get(&att.network_id))
            else {
                continue;
            };
            if self.is_global(net) {
                let rec = self.endpoint_record(net, &c, att, ep);
                if let Err(e) = self.publish_endpoint(&rec).await {
                    tracing::warn!(network = %net.name, error = %e, "renaming an overlay endpoint");
                }
            }
            if net.dns {
                self.dns.add_endpoint(
                    &net.id,
                    &c.id,
                    &dns_names(&c, att),
                    ep.ip,
                    ep.ip6.map(|(a, _, _)| a),
                );
            }
        }
        self.emit_container(&c, "rename", &[("oldName", format!("/{old}"))]);
        st.containers.insert(c.id.clone(), c);
        self.relink(&mut st, &old, new_name);
        Ok(())
    }

    /// After a rename from `old` to `new`: the legacy links of other containers that
    /// name `old` as their target name `new` (keeping their alias), as Docker's link
    /// index follows a rename; running ones get their link names and /etc/hosts again.
    fn relink(&self, st: &mut crate::State, old: &str, new: &str) {
        let retarget = |l: &mut String| -> bool {
            let (target, alias) = crate::sandbox::parse_link(l);
            if target != old {
                return false;
            }
            *l = format!("{new}:{alias}");
            true
        };
        let mut changed = Vec::new();
        for o in st.containers.values_mut() {
            let mut hit = false;
            for l in o.host_config.links.iter_mut().flatten() {
                hit |= retarget(l);
            }
            for (_, a) in o.attachments.iter_mut() {
                for l in a.links.iter_mut() {
                    hit |= retarget(l);
                }
            }
            if hit {
                changed.push(o.id.clone());
            }
        }
        for id in changed {
            let Some(o) = st.containers.get(&id).cloned() else {
                continue;
            };
            if let Err(e) = self.save_container(&o) {
                tracing::warn!(container = %o.name, error = %e, "saving a renamed link");
            }
            if o.state.status == "running" {
                self.dns
                    .set_links(&o.id, &crate::sandbox::link_targets(st, &o));
                if let Err(e) = self.write_etc_files(st, &o) {
                    tracing::warn!(container = %o.name, error = %e, "rewriting /etc/hosts after a rename");
                }
            }
        }
    }

    /// POST /containers/{id}/pause: freezes every process of the container (`runc
    /// pause`, the cgroup freezer); inspect then says `Status: "paused"`, `Paused: true`.
    /// Emits `pause`.
    ///
    /// Errors: 404; 409 not running or already paused; 500 runc's message.
    pub async fn pause_container(&self, key: &str) -> Result<(), EngineError> {
        let (_own, c) = self.own(key).await?;
        if c.state.status != "running" {
            return Err(not_running(&c.id));
        }
        if c.state.paused {
            return Err(EngineError::Conflict(format!(
                "Container {} is already paused",
                c.id
            )));
        }
        self.runc.pause(&c.id).await?;
        self.set_paused(&c.id, true).await?;
        self.emit_container(&c, "pause", &[]);
        Ok(())
    }

    /// POST /containers/{id}/unpause: thaws a paused container (`runc resume`). Emits
    /// `unpause`.
    ///
    /// Errors: 404; 409 not paused; 500 runc's message.
    pub async fn unpause_container(&self, key: &str) -> Result<(), EngineError> {
        let (_own, c) = self.own(key).await?;
        if c.state.status != "running" || !c.state.paused {
            return Err(EngineError::Conflict(format!(
                "Container {} is not paused",
                c.id
            )));
        }
        self.runc.resume(&c.id).await?;
        self.set_paused(&c.id, false).await?;
        self.emit_container(&c, "unpause", &[]);
        Ok(())
    }

    /// Records the freezer state of container `id`.
    async fn set_paused(&self, id: &str, paused: bool) -> Result<(), EngineError> {
        let mut st = self.state.lock().await;
        let c = st
            .containers
            .get_mut(id)
            .ok_or_else(|| EngineError::NotFound(format!("No such container: {id}")))?;
        c.state.paused = paused;
        let c = c.clone();
        self.save_container(&c)
    }

    /// After a signal to container `id` (stop, kill, rm -f): thaws it when it is paused,
    /// so the signal is delivered, as dockerd does. The caller holds the container's lock.
    pub(crate) async fn thaw_if_paused(&self, id: &str) {
        let paused = self
            .state
            .lock()
            .await
            .containers
            .get(id)
            .is_some_and(|c| c.state.paused);
        if !paused {
            return;
        }
        if let Err(e) = self.runc.resume(id).await {
            tracing::warn!(container = %id, error = %e, "thawing a paused container");
        }
        if self.set_paused(id, false).await.is_ok() {
            if let Ok(c) = self.state.lock().await.container(id).cloned() {
                self.emit_container(&c, "unpause", &[]);
            }
        }
    }

    /// GET /containers/{id}/top?ps_args=: the container's processes as `ps ARGS`
    /// (default `-ef`) on the host shows them, `{"Titles": [...], "Processes": [[...]]}`
    /// (the rows whose PID column is a pid of the container's cgroup, `runc ps`).
    ///
    /// Errors: 404; 409 not running; 500 when ps fails or prints no PID column
    /// (`ps_args` such as `-o comm`).
    pub async fn top_container(&self, key: &str, ps_args: &str) -> Result<Value, EngineError> {
        let c = self.state.lock().await.container(key)?.clone();
        if c.state.status != "running" {
            return Err(not_running(&c.id));
        }
        let pids = self.runc.pids(&c.id).await?;
        let args: Vec<&str> = if ps_args.trim().is_empty() {
            vec!["-ef"]
        } else {
            ps_args.split_whitespace().collect()
        };
        let out = tokio::process::Command::new("ps")
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| EngineError::Internal(format!("cannot run ps: {e}")))?;
        if !out.status.success() {
            return Err(EngineError::Internal(format!(
                "ps {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        parse_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }

    /// POST /containers/{id}/update: the restart policy (used by the restart logic from
    /// now on) and the cgroup limits `Memory`, `MemorySwap`, `MemoryReservation`,
    /// `CpuShares`, `CpuQuota`, `CpuPeriod`, `PidsLimit`, `BlkioWeight`, stored in
    /// `HostConfig` and applied to a running container with `runc update` (and by the
    /// spec at every start). Returns Docker's `Warnings` (a block IO weight the host's
    /// cgroups cannot take is discarded with one). Emits `update`.
    ///
    /// Errors: 404; 400 a value Docker refuses (named, as at create: memory below 6 MB,
    /// swap below memory, negative shares, a restart policy with `--rm`); 500 runc's
    /// message (nothing is stored then).
    pub async fn update_container(
        &self,
        key: &str,
        u: ContainerUpdateBody,
    ) -> Result<Vec<String>, EngineError> {
        let (_own, c) = self.own(key).await?;
        let mut hc = c.host_config.clone();
        let mut flags: Vec<(&str, String)> = Vec::new();
        if let Some(v) = u.memory {
            hc.memory = Some(v);
            flags.push(("memory", v.to_string()));
            // Docker: a new memory limit above the old swap limit raises the swap too
            if u.memory_swap.is_none() && hc.memory_swap.is_some_and(|s| s > 0 && s < v) {
                hc.memory_swap = Some(v);
            }
        }
        if let Some(v) = u.memory_swap {
            hc.memory_swap = Some(v);
        }
        if let Some(v) = u.memory_reservation {
            hc.memory_reservation = Some(v);
            flags.push(("memory-reservation", v.to_string()));
        }
        if let Some(v) = u.cpu_shares {
            hc.cpu_shares = Some(v);
            flags.push(("cpu-share", v.to_string()));
        }
        if let Some(v) = u.cpu_period {
            hc.cpu_period = Some(v);
            flags.push(("cpu-period", v.to_string()));
        }
        if let Some(v) = u.cpu_quota {
            hc.cpu_quota = Some(v);
            flags.push(("cpu-quota", v.to_string()));
        }
        let mut warnings = Vec::new();
        if let Some(v) = u.blkio_weight {
            if tether_runtime::spec::blkio_weight_supported() {
                hc.blkio_weight = Some(v);
                flags.push(("blkio-weight", v.to_string()));
            } else if v != 0 {
                warnings.push("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.".to_string());
            }
        }
        if let Some(v) = u.pids_limit {
            if v < -1 {
                return Err(EngineError::InvalidParam(format!(
                    "invalid PidsLimit {v}: give a number of processes, 0 or -1 for no limit"
                )));
            }
            hc.pids_limit = Some(v);
            flags.push(("pids-limit", if v <= 0 { -1 } else { v }.to_string()));
        }
        // runc wants the swap limit (memory + swap) along with a new memory limit
        if u.memory_swap.is_some() || (u.memory.is_some() && hc.memory_swap.is_some_and(|s| s != 0))
        {
            if let Some(s) = hc.memory_swap {
                flags.push(("memory-swap", s.to_string()));
            }
        }
        if let Some(p) = u.restart_policy {
            hc.restart_policy = Some(p);
        }
        crate::validate::resources(&hc)?;
        crate::containers::validate_restart(&hc)?;
        let running = c.state.status == "running";
        if running && !flags.is_empty() {
            self.runc.update(&c.id, &flags).await?;
        }
        let mut st = self.state.lock().await;
        let mut c = st.container(&c.id)?.clone();
        c.host_config = hc;
        self.save_container(&c)?;
        self.emit_container(&c, "update", &[]);
        st.containers.insert(c.id.clone(), c);
        Ok(warnings)
    }
}

impl Engine {
    /// DELETE /containers/{name}?link=1: removes the legacy link `name`, given as
    /// `/PARENT/ALIAS` (Docker's link name), from the parent container: its
    /// `HostConfig.Links` (and links given at connect) lose the alias; a running parent
    /// stops resolving it (embedded DNS) and its /etc/hosts is rewritten.
    ///
    /// Errors: 409 a name without a parent (Docker: "cannot remove the default link
    /// name"); 404 no such parent or no link of that alias.
    pub async fn remove_link(&self, name: &str) -> Result<(), EngineError> {
        let full = format!("/{}", name.trim_start_matches('/'));
        let Some((parent, alias)) = full.rsplit_once('/').filter(|(p, _)| !p.is_empty()) else {
            return Err(EngineError::Conflict(
                "Conflict, cannot remove the default link name of the container".into(),
            ));
        };
        let (_own, c) = self.own(parent).await.map_err(|_| {
            EngineError::NotFound(format!("Cannot get parent {parent} for link name {full}"))
        })?;
        let mut st = self.state.lock().await;
        let mut c = st.container(&c.id)?.clone();
        let is_alias = |l: &String| crate::sandbox::parse_link(l).1 == alias;
        let mut found = false;
        if let Some(links) = c.host_config.links.as_mut() {
            let before = links.len();
            links.retain(|l| !is_alias(l));
            found |= links.len() != before;
        }
        for (_, a) in c.attachments.iter_mut() {
            let before = a.links.len();
            a.links.retain(|l| !is_alias(l));
            found |= a.links.len() != before;
        }
        if !found {
            return Err(EngineError::NotFound(format!("No such container: {full}")));
        }
        self.save_container(&c)?;
        if c.state.status == "running" {
            self.dns
                .set_links(&c.id, &crate::sandbox::link_targets(&st, &c));
            self.write_etc_files(&st, &c)?;
        }
        st.containers.insert(c.id.clone(), c);
        Ok(())
    }
}

/// Docker's `parsePSOutput`: the header's words are the titles; each row's words, the
/// last title taking the rest of the line (the command); the rows kept are those whose
/// PID column is one of `pids`.
///
/// Errors: 500 when the header has no PID column.
pub fn parse_ps(out: &str, pids: &[i32]) -> Result<Value, EngineError> {
    let mut lines = out.lines();
    let titles: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let pid_col = titles
        .iter()
        .position(|t| *t == "PID")
        .ok_or_else(|| EngineError::Internal("Couldn't find PID field in ps output".into()))?;
    let mut procs = Vec::new();
    for l in lines {
        let words: Vec<&str> = l.split_whitespace().collect();
        if words.is_empty() || words.len() < titles.len() {
            continue;
        }
        let Ok(pid) = words[pid_col].parse::<i32>() else {
            continue;
        };
        if !pids.contains(&pid) {
            continue;
        }
        let mut row: Vec<String> = words[..titles.len() - 1]
            .iter()
            .map(|s| s.to_string())
            .collect();
        row.push(words[titles.len() - 1..].join(" "));
        procs.push(row);
    }
    Ok(json!({"Titles": titles, "Processes": procs}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ps_rows_of_the_container() {
        let out = "UID   PID  PPID  C STIME TTY  TIME     CMD\nroot  1    0     0 10:00 ?    00:00:01 /sbin/init splash\nroot  42   1     0 10:01 ?    00:00:00 sleep 600\n";
        let v = parse_ps(out, &[42]).unwrap_or_default();
        assert_eq!(v["Titles"][7], json!("CMD"));
        assert_eq!(
            v["Processes"],
            json!([[
                "root",
                "42",
                "1",
                "0",
                "10:01",
                "?",
                "00:00:00",
                "sleep 600"
            ]])
        );
        assert!(parse_ps("USER COMMAND\nroot sh\n", &[1]).is_err());
    }
}
