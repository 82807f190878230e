//! Restore after a daemon restart: the records are read back, networks re-created or
//! re-adopted, running containers re-adopted ([`Engine::readopt`]), and then the kernel and
//! the runtime are reconciled with the records ([`Engine::reconcile`]).
//!
//! A container's record is written at create, before any kernel or runtime object of it
//! exists, and every such object is named from its id (runc's container `<id>`, the one the
//! container monitor serves, the bundle, the rootfs mount) or hangs off a tether bridge (the
//! endpoint's veth). Sandboxes are held by the daemon's descriptors, so a sandbox whose
//! container never ran goes with the daemon; those of running containers are taken back
//! through their processes (a `<exec-root>/netns/<id>` bind mount of an older daemon is
//! removed). So the
//! record is the intent: whatever exists for a container that is not running once the
//! running ones are re-adopted was left half-made by a daemon that died mid-operation
//! (a `run -d` killed before its record said `running`), and is removed. Leases are rebuilt
//! from the records only, and no interface holding an address outlives the sweep, so no
//! address a live interface holds is handed out again.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tether_net::firewall::Contents;
use tether_runtime::rootfs;

use crate::state::{self, Container, Network};
use crate::{networks, volumes, Engine, EngineError, State};

impl Engine {
    pub(crate) async fn restore(self: &Arc<Self>) -> Result<(), EngineError> {
        let nets: Vec<Network> = state::read_all(&self.cfg.root.join("networks"), None);
        let vols: Vec<volumes::Volume> =
            state::read_all(&self.cfg.root.join("volumes"), Some("volume.json"));
        let ctrs: Vec<Container> =
            state::read_all(&self.cfg.root.join("containers"), Some("state.json"));
        {
            let mut st = self.state.lock().await;
            // global-scope networks live in the cluster store, not in local records
            for n in nets.into_iter().filter(|n| n.scope() == "local") {
                st.networks.insert(n.id.clone(), n);
            }
            // the global ones this host knew, from its copies: running containers'
            // overlay endpoints are adopted with them, and the store's snapshot then
            // drops those removed meanwhile (unless a running container still uses one)
            if self.cluster.is_some() {
                for n in crate::cluster::cached_networks(&self.cfg.root) {
                    if n.scope() == "global" && !st.networks.values().any(|o| o.name == n.name) {
                        st.networks.insert(n.id.clone(), n);
                    }
                }
            }
            for c in ctrs {
                st.containers.insert(c.id.clone(), c);
            }
            for v in vols {
                st.volumes.insert(v.name.clone(), v);
            }
            st.rebuild_leases();
        }
        self.ensure_predefined().await?;
        let nets: Vec<Network> = self.state.lock().await.networks.values().cloned().collect();
        for n in nets {
            let restored = match self.driver_of(&n) {
                Ok(d) => d
                    .create_network(&networks::spec_of(&n))
                    .await
                    .map_err(EngineError::from),
                Err(e) => Err(e),
            };
            match restored {
                // an overlay's gateway is on no host: names only
                Ok(()) if self.is_global(&n) => self.dns.set_network_name(&n.id, &n.name),
                Ok(()) => self.serve_host_dns(&n),
                Err(e) => tracing::error!(network = %n.name, error = %e, "cannot restore network"),
            }
        }
        let ids: Vec<String> = self.state.lock().await.containers.keys().cloned().collect();
        for id in ids {
            self.readopt(&id).await;
        }
        self.reconcile().await;
        self.empty_trash();
        self.sync_firewall().await;
        Ok(())
    }

    /// Removes what exists of containers that are not running: their runc containers
    /// (the container monitor then records their exit and lets them go), sandboxes,
    /// bundles and rootfs mounts, and veths on tether's bridges that no running endpoint
    /// lists. Logs each removal; never touches what tether did not make (runc containers
    /// of this daemon's runc root, veths on this daemon's bridges).
    pub(crate) async fn reconcile(&self) {
        let st = self.state.lock().await;
        let running: Vec<&Container> = st
            .containers
            .values()
            .filter(|c| c.state.status == "running")
            .collect();
        let running_ids: HashSet<&str> = running.iter().map(|c| c.id.as_str()).collect();
        let sandboxes: HashSet<PathBuf> =
            running.iter().filter_map(|c| c.sandbox.clone()).collect();
        let veths: HashSet<&str> = running
            .iter()
            .flat_map(|c| c.endpoints.values().map(|e| e.host_veth.as_str()))
            .collect();
        let mut removed: Vec<String> = Vec::new();

        for id in entries(&self.runc.root) {
            if !running_ids.contains(id.as_str()) {
                let _ = self.runc.kill(&id, "KILL", true).await;
                match self.runc.delete(&id, true).await {
                    Ok(()) => removed.push(format!("runc container {}", short(&id))),
                    Err(e) => {
                        tracing::warn!(id = %id, error = %e, "removing a leftover runc container")
                    }
                }
            }
        }
        let netns_dir = self.cfg.exec_root.join("netns");
        for name in entries(&netns_dir) {
            let p = netns_dir.join(&name);
            if !sandboxes.contains(&p) {
                match tether_net::netns::remove(&p) {
                    Ok(()) => removed.push(format!("sandbox {}", short(&name))),
                    Err(e) => {
                        tracing::warn!(sandbox = %p.display(), error = %e, "removing a leftover sandbox")
                    }
                }
            }
        }
        let bundles = self.cfg.exec_root.join("bundles");
        for id in entries(&bundles) {
            if !running_ids.contains(id.as_str()) {
                let _ = std::fs::remove_dir_all(bundles.join(&id));
            }
        }
        for c in st.containers.values() {
            let rootfs_dir = self.container_dir(&c.id).join("rootfs");
            if !running_ids.contains(c.id.as_str()) && rootfs::is_mounted(&rootfs_dir) {
                match rootfs::unmount(&rootfs_dir) {
                    Ok(()) => removed.push(format!("rootfs of {}", c.name)),
                    Err(e) => {
                        tracing::warn!(container = %c.name, error = %e, "unmounting a leftover rootfs")
                    }
                }
            }
        }
        for n in st.networks.values() {
            let Some(br) = n.bridge.as_deref() else {
                continue;
            };
            let Ok(Some(index)) = self.nl.index_of(br).await else {
                continue;
            };
            let Ok(ports) = self.nl.ports_of(index).await else {
                continue;
            };
            for p in ports {
                if p.starts_with("veth") && !veths.contains(p.as_str()) {
                    match self.nl.delete(&p).await {
                        Ok(()) => removed.push(format!("veth {p} on {br}")),
                        Err(e) => tracing::warn!(veth = %p, error = %e, "removing a leftover veth"),
                    }
                }
            }
        }
        for d in self.drivers.all() {
            d.sweep().await;
        }
        if !removed.is_empty() {
            tracing::warn!(
                removed = %removed.join(", "),
                "removed what a daemon that stopped mid-operation left half-made"
            );
        }
    }
}

impl Engine {
    /// Rebuilds the contents of tether's nftables tables from the records, in place (see
    /// [`tether_net::firewall::Firewall::sync`]): after a restart that kept the tables,
    /// published ports answer throughout, and elements of containers that died or were
    /// left half-made while the daemon was away are gone. A failure is logged (the
    /// firewall watch and `network reload-firewall` can repair it).
    pub(crate) async fn sync_firewall(&self) {
        let st = self.state.lock().await;
        if let Err(e) = self.resync_firewall(&st) {
            tracing::error!(error = %e, "restoring the firewall's contents");
        }
    }

    /// [`Engine::sync_firewall`] with the state held by the caller; returns the failure
    /// (after an endpoint or a network was removed with a firewall error, so that nothing
    /// the records no longer list stays in the tables).
    pub(crate) fn resync_firewall(&self, st: &State) -> Result<(), EngineError> {
        self.fw_rebuilds
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut c = Contents::default();
        // not those being removed: their driver is taking their entries away
        for n in st
            .networks
            .values()
            .filter(|n| !st.removing.contains(&n.id))
        {
            if let Some(b) = networks::bridge_of(n) {
                c.networks.push(b.rules());
            }
        }
        for ctr in st
            .containers
            .values()
            .filter(|c| c.state.status == "running")
        {
            c.ports.extend(ctr.ports.iter().cloned());
        }
        c.isolated_ports = st.isolated_ports();
        c.host_dns = self.host_dns_addresses();
        self.fw.sync(&c)?;
        Ok(())
    }
}

/// The first 12 characters of an id.
fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Names of the entries of `dir` (none when it cannot be read).
fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}
