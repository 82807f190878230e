//! A container's networking: its sandbox (network namespace), one endpoint per network
//! (IP lease, veth pair, `ethN`, default route via the first network), published ports,
//! DNS records and the embedded DNS listener, and the generated /etc files.
//!
//! Setup records each step on the container as it goes, and [`Engine::teardown_networking`]
//! undoes whatever is recorded, tolerating parts already gone; so a failed setup, a stop
//! and a daemon restart all use the same path and nothing is leaked.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use tether_net::firewall::Proto;
use tether_net::link::{self, Netlink};
use tether_net::netns;

use crate::files;
use crate::ports;
use crate::state::{Attachment, Container, Endpoint, Network};
use crate::{Engine, EngineError, State};
use tether_net::driver::EndpointSpec;
use tether_net::ipamapi::{AddressRequest, Ipam, Lease};

/// An endpoint planned under the engine's lock ([`Engine::plan_endpoint`]): its network
/// as it was then, its addresses (leased from the network's IPAM) and its names. Joined
/// by [`Engine::join_planned`], then given to the container by
/// [`Engine::commit_endpoint`] or its lease returned by [`Engine::abandon_endpoint`].
pub(crate) struct PlannedEndpoint {
    net: Network,
    /// The endpoint as it will be recorded on the container.
    pub ep: Endpoint,
    lease: Lease,
    global: bool,
    /// The cluster store's share so far (an overlay endpoint's lease and record).
    store_time: std::time::Duration,
}

/// A container's endpoints, planned under the engine's lock and joined without it: made
/// by [`Engine::stage_endpoint`], joined by [`Engine::join_staged`], then under the lock
/// again committed ([`Engine::commit_staged`]) or given up ([`Engine::cancel_staged`]).
/// Meanwhile each is listed in [`State::joining`]. The one path by which a start, a
/// `network connect` and the overlay gateway bridge ([`Engine::attach_endpoint`]) make
/// endpoints.
#[derive(Default)]
pub(crate) struct StagedJoin {
    items: Vec<StagedEndpoint>,
    /// The first join that failed (the later ones were not tried).
    failed: Option<EngineError>,
}

impl StagedJoin {
    /// No endpoint is staged.
    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// One endpoint of a [`StagedJoin`].
struct StagedEndpoint {
    name: String,
    att: Attachment,
    default_route: bool,
    plan: PlannedEndpoint,
    /// When its planning began (the metrics' endpoint setup time).
    t0: std::time::Instant,
    joined: bool,
}

/// How a container is networked, from HostConfig.NetworkMode.
#[derive(Clone, Debug, PartialEq)]
pub enum Mode {
    /// The host's namespace.
    Host,
    /// Its own namespace with loopback only.
    None,
    /// Another container's namespace.
    Container(String),
    /// Its own namespace with endpoints on bridge networks.
    Bridge,
}

/// Parses a NetworkMode value.
pub fn mode(network_mode: &str) -> Mode {
    match network_mode {
        "host" => Mode::Host,
        "none" => Mode::None,
        m if m.starts_with("container:") => Mode::Container(m["container:".len()..].to_string()),
        _ => Mode::Bridge,
    }
}

fn random_veth() -> String {
    let b: [u8; 4] = rand::random();
    format!("veth{}", &hex::encode(b)[..7])
}

impl Engine {
    /// Keeps `ns` as the sandbox of container `id` and returns the path naming it (see
    /// [`netns::fd_path`]); a sandbox `id` held before is let go.
    pub(crate) fn hold_sandbox(&self, id: &str, ns: std::fs::File) -> PathBuf {
        let path = netns::fd_path(&ns);
        self.sandboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), ns);
        path
    }

    /// Lets go of container `id`'s hold on its sandbox: the namespace goes once no process
    /// is in it (and with it, the container's ends of its veths).
    pub(crate) fn release_sandbox(&self, id: &str) {
        let f = self
            .sandboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        drop(f);
    }

    /// After a daemon restart: takes hold of running container `c`'s network namespace
    /// again, through its init process (checked to be the container monitor's child), and points
    /// `c.sandbox` at the new hold. Containers without a sandbox are left as they are.
    pub(crate) fn rehold_sandbox(&self, c: &mut Container) {
        if c.sandbox.is_none() {
            return;
        }
        match netns::open_of_child(c.state.pid, c.state.shim_pid) {
            Ok(ns) => c.sandbox = Some(self.hold_sandbox(&c.id, ns)),
            Err(e) => {
                tracing::error!(container = %c.name, error = %e, "cannot take back the sandbox");
                c.sandbox = None;
            }
        }
    }

    /// A start's networking, step 1, without the engine's lock: a new sandbox (network
    /// namespace, loopback up) for the bridge and none modes (`m`, `c`'s [`mode`]),
    /// recorded on `c`; its netlink handle is returned. Host and container modes make
    /// none. On error the caller's [`Engine::teardown_networking`] lets the sandbox go.
    pub(crate) async fn make_sandbox(
        &self,
        c: &mut Container,
        m: &Mode,
    ) -> Result<Option<Netlink>, EngineError> {
        if matches!(m, Mode::Host | Mode::Container(_)) {
            return Ok(None);
        }
        let ns = tokio::task::spawn_blocking(netns::create_held)
            .await
            .map_err(|e| EngineError::Internal(e.to_string()))??;
        let sb = self.hold_sandbox(&c.id, ns);
        c.sandbox = Some(sb.clone());
        let snl = Netlink::open_in(&sb)?;
        snl.set_up_by_name("lo").await?;
        Ok(Some(snl))
    }

    /// A start's networking, step 2, under the engine's lock: in the bridge mode the
    /// overlay gateway bridge's attachment when an overlay needs it, then every endpoint
    /// staged (planned: leases, names; listed in [`State::joining`]) for
    /// [`Engine::join_staged`] to join without the lock. Nothing is staged in the other
    /// modes. On error nothing staged is left.
    ///
    /// Errors: as [`Engine::plan_endpoint`]; the gateway bridge's subnet or record.
    pub(crate) async fn stage_networking(
        &self,
        st: &mut State,
        c: &mut Container,
        m: &Mode,
    ) -> Result<StagedJoin, EngineError> {
        let mut staged = StagedJoin::default();
        if *m != Mode::Bridge {
            return Ok(staged);
        }
        let r = async {
            self.add_gateway_bridge(st, c).await?;
            let atts = c.attachments.clone();
            let gw = gateway_network(st, &atts);
            for (name, att) in &atts {
                let default_route = gw == Some(name.as_str());
                self.stage_endpoint(st, c, &mut staged, name, att, default_route)
                    .await?;
            }
            Ok(())
        }
        .await;
        match r {
            Ok(()) => Ok(staged),
            Err(e) => {
                self.cancel_staged(st, c, staged).await;
                Err(e)
            }
        }
    }

    /// A start's networking, step 4, under the engine's lock: the staged endpoints given
    /// to `c` ([`Engine::commit_staged`]), then by mode the published ports, the /etc
    /// files, the DNS listener; a container in another's namespace holds that sandbox
    /// and copies its files. On error the caller's [`Engine::teardown_networking`]
    /// undoes what `c` records.
    ///
    /// Errors: a failed join (from [`Engine::join_staged`]); 409 the other container of
    /// `container:NAME` is not running; publishing, file and DNS failures.
    pub(crate) async fn finish_networking(
        &self,
        st: &mut State,
        c: &mut Container,
        m: &Mode,
        staged: StagedJoin,
    ) -> Result<(), EngineError> {
        self.commit_staged(st, c, staged).await?;
        match m {
            Mode::Host => return self.write_etc_files(st, c),
            Mode::Container(other) => {
                let o = st.container(other)?;
                let sb = o
                    .sandbox
                    .clone()
                    .filter(|_| o.state.status == "running")
                    .ok_or_else(|| {
                        EngineError::Conflict(format!(
                            "cannot join network of a non running container: {}",
                            o.name
                        ))
                    })?;
                // a hold of its own on the same namespace: the path stays valid (and names
                // this namespace) as long as this container's record holds it
                let ns = std::fs::File::open(&sb).map_err(|e| {
                    EngineError::Internal(format!("open the sandbox of {}: {e}", o.name))
                })?;
                c.sandbox = Some(self.hold_sandbox(&c.id, ns));
                let od = self.container_dir(&o.id);
                for f in ["hosts", "resolv.conf"] {
                    let _ = std::fs::copy(od.join(f), self.container_dir(&c.id).join(f));
                }
                std::fs::write(
                    self.container_dir(&c.id).join("hostname"),
                    format!("{}\n", hostname_of(c)),
                )?;
                return Ok(());
            }
            Mode::Bridge => self.publish(st, c)?,
            Mode::None => {}
        }
        self.write_etc_files(st, c)?;
        self.start_dns(st, c)?;
        Ok(())
    }

    /// Plans `c`'s endpoint on network `name` ([`Engine::plan_endpoint`]), under
    /// the engine's lock, and adds it to `staged`; the endpoint is listed in
    /// [`State::joining`] until [`Engine::commit_staged`] or [`Engine::cancel_staged`].
    ///
    /// Errors: as [`Engine::plan_endpoint`] (nothing is added then).
    pub(crate) async fn stage_endpoint(
        &self,
        st: &mut State,
        c: &Container,
        staged: &mut StagedJoin,
        name: &str,
        att: &Attachment,
        default_route: bool,
    ) -> Result<(), EngineError> {
        let t0 = std::time::Instant::now();
        let taken: Vec<String> = staged
            .items
            .iter()
            .map(|s| s.plan.ep.ifname.clone())
            .collect();
        let plan = match self.plan_endpoint(st, c, name, att, &taken).await {
            Ok(p) => p,
            Err(e) => {
                self.endpoint_attempted(st, &att.network_id, t0, false);
                return Err(e);
            }
        };
        st.joining.insert(
            plan.ep.host_veth.clone(),
            crate::Joining {
                container: c.id.clone(),
                network: plan.net.id.clone(),
            },
        );
        staged.items.push(StagedEndpoint {
            name: name.to_string(),
            att: att.clone(),
            default_route,
            plan,
            t0,
            joined: false,
        });
        Ok(())
    }

    /// Joins the staged endpoints in order ([`Engine::join_planned`]), without the
    /// engine's lock: the caller holds `c`'s own lock, and [`State::joining`] keeps the
    /// networks and their bridges' room meanwhile. Stops at the first failure, which
    /// [`Engine::commit_staged`] reports.
    pub(crate) async fn join_staged(&self, staged: &mut StagedJoin, c: &Container, snl: &Netlink) {
        for s in staged.items.iter_mut() {
            match self
                .join_planned(&mut s.plan, c, snl, &s.att, s.default_route)
                .await
            {
                Ok(()) => s.joined = true,
                Err(e) => {
                    staged.failed = Some(e);
                    return;
                }
            }
        }
    }

    /// Under the engine's lock again: when every staged endpoint joined, gives them to
    /// `c` ([`Engine::commit_endpoint`]: DNS records, the endpoint on `c`; the caller
    /// saves `c` and puts it in the state before it lets the lock go); otherwise
    /// cancels them all ([`Engine::cancel_staged`]). Either way they leave
    /// [`State::joining`].
    ///
    /// Errors: the first join's failure.
    pub(crate) async fn commit_staged(
        &self,
        st: &mut State,
        c: &mut Container,
        mut staged: StagedJoin,
    ) -> Result<(), EngineError> {
        if let Some(e) = staged.failed.take() {
            self.cancel_staged(st, c, staged).await;
            return Err(e);
        }
        for s in staged.items {
            st.joining.remove(&s.plan.ep.host_veth);
            self.endpoint_attempted(st, &s.att.network_id, s.t0, true);
            self.commit_endpoint(c, &s.name, &s.att, s.plan);
        }
        Ok(())
    }

    /// Gives up staged endpoints, under the engine's lock: each joined one leaves its
    /// network (its bridge port's isolation entry goes even when the sandbox took the
    /// veth already) and an overlay one's record leaves the cluster store, every lease is
    /// returned, and all leave [`State::joining`].
    pub(crate) async fn cancel_staged(&self, st: &mut State, c: &Container, staged: StagedJoin) {
        for s in staged.items {
            st.joining.remove(&s.plan.ep.host_veth);
            self.endpoint_attempted(st, &s.att.network_id, s.t0, false);
            if s.joined {
                if let Ok(d) = self.driver_of(&s.plan.net) {
                    let spec = crate::networks::spec_of(&s.plan.net);
                    let reap = Some(reap_key(c, &s.plan.ep.ifname));
                    if let Err(e) = d.leave(&spec, &s.plan.ep.host_veth, reap).await {
                        tracing::debug!(container = %c.name, error = %e, "leaving a given-up endpoint");
                    }
                }
                if s.plan.global {
                    self.withdraw_endpoint(&s.plan.net.id, &s.plan.ep.id).await;
                }
            }
            self.abandon_endpoint(st, &s.plan).await;
        }
    }

    /// Creates one endpoint of `c` on network `name` inside its sandbox with the engine's
    /// lock held throughout (the overlay gateway bridge's, which comes and goes with the
    /// overlays): a [`StagedJoin`] of one, staged, joined and committed or cancelled.
    pub(crate) async fn attach_endpoint(
        &self,
        st: &mut State,
        c: &mut Container,
        snl: &Netlink,
        name: &str,
        att: &Attachment,
        default_route: bool,
    ) -> Result<(), EngineError> {
        let mut staged = StagedJoin::default();
        self.stage_endpoint(st, c, &mut staged, name, att, default_route)
            .await?;
        self.join_staged(&mut staged, c, snl).await;
        self.commit_staged(st, c, staged).await
    }

    /// The metrics' record of one endpoint setup that began at `t0`, and the network's
    /// pool checked against the use warning.
    pub(crate) fn endpoint_attempted(
        &self,
        st: &State,
        network_id: &str,
        t0: std::time::Instant,
        ok: bool,
    ) {
        crate::metrics::global().endpoint_setup(t0.elapsed(), ok);
        if let Some(n) = st.networks.get(network_id) {
            self.check_pool_use(n);
        }
    }

    /// The first step of an endpoint, under the engine's lock: checks the network and its
    /// bridge's room (endpoints being joined count), leases the addresses through the
    /// network's IPAM (a local one; a global network's lease is the join's first step)
    /// and picks the names. Nothing is made in the kernel; the lease is returned by
    /// [`Engine::abandon_endpoint`] when the join fails.
    ///
    /// Errors: 404 network gone; 409 the bridge is full or the network is being removed;
    /// the IPAM's refusal (400/409).
    pub(crate) async fn plan_endpoint(
        &self,
        st: &mut State,
        c: &Container,
        name: &str,
        att: &Attachment,
        taken: &[String],
    ) -> Result<PlannedEndpoint, EngineError> {
        let net = st
            .networks
            .get(&att.network_id)
            .cloned()
            .ok_or_else(|| EngineError::NotFound(format!("network {name} not found")))?;
        if st.removing.contains(&net.id) {
            return Err(EngineError::Conflict(format!(
                "network {name} is being removed"
            )));
        }
        let drv = self.driver_of(&net)?;
        let spec = crate::networks::spec_of(&net);
        // Counted only when it could matter: fewer containers and planned endpoints than
        // a bridge has ports leave room on any network (a count over every container,
        // under the engine's lock, grows with them).
        if st.containers.len() + st.joining.len() >= link::BRIDGE_MAX_PORTS {
            let endpoints = st
                .containers
                .values()
                .filter(|o| o.id != c.id && o.endpoints.contains_key(name))
                .count()
                + st.joining.values().filter(|j| j.network == net.id).count();
            bridge_has_room(name, endpoints)?;
        }
        let ep_id = crate::state::new_id();
        let global = self.is_global(&net);
        // a global (overlay) network's lease is a cluster-store round trip: taken by
        // join_planned, without the engine's lock
        let lease = if global {
            Lease::default()
        } else {
            let ipam = self.ipam_of(&net)?;
            let n = st
                .networks
                .get_mut(&net.id)
                .ok_or_else(|| EngineError::NotFound(name.to_string()))?;
            let req = AddressRequest {
                endpoint_id: &ep_id,
                ipv4: att.ipv4,
                ipv6: att.ipv6,
            };
            ipam.request_address(&mut n.pools_mut(), &req).await?
        };
        let used: HashSet<&str> = c
            .endpoints
            .values()
            .map(|e| e.ifname.as_str())
            .chain(taken.iter().map(String::as_str))
            .collect();
        // An interface of a just-disconnected endpoint may still be being deleted.
        let ifname = (0..)
            .map(|i| format!("eth{i}"))
            .find(|n| !used.contains(n.as_str()) && !drv.reaping(&reap_key(c, n)))
            .unwrap_or_else(|| "eth0".into());
        let mut ep = Endpoint {
            id: ep_id,
            ip: None,
            prefix: spec.v4.map(|(s, _)| s.prefix_len()).unwrap_or(0),
            ip6: None,
            gateway: spec.v4.map(|(_, g)| g),
            mac: [0; 6],
            ifname,
            host_veth: random_veth(),
        };
        // a global endpoint gets its addresses and MAC with its lease (lease_global)
        if !global {
            address_endpoint(&mut ep, &net, att, &lease);
        }
        Ok(PlannedEndpoint {
            net,
            ep,
            lease,
            global,
            store_time: std::time::Duration::ZERO,
        })
    }

    /// A global network's lease for a planned endpoint, without the engine's lock: the
    /// cluster store's compare-and-swap keeps concurrent leases distinct (on this host
    /// and the others), following the pool rules of `p`'s copy of the network record.
    /// Gives the endpoint its addresses and MAC.
    ///
    /// Errors: the IPAM's refusal (400/409) or the store's failure (500).
    async fn lease_global(
        &self,
        p: &mut PlannedEndpoint,
        att: &Attachment,
    ) -> Result<(), EngineError> {
        let ipam = self.ipam_of(&p.net)?;
        let t = std::time::Instant::now();
        let endpoint_id = p.ep.id.clone();
        let req = AddressRequest {
            endpoint_id: &endpoint_id,
            ipv4: att.ipv4,
            ipv6: att.ipv6,
        };
        p.lease = ipam.request_address(&mut p.net.pools_mut(), &req).await?;
        p.store_time = t.elapsed();
        address_endpoint(&mut p.ep, &p.net, att, &p.lease);
        Ok(())
    }

    /// Returns a global lease taken by [`Engine::lease_global`] whose join then failed,
    /// without the engine's lock (the state's copy of the record never held it).
    async fn unlease_global(&self, p: &mut PlannedEndpoint) {
        let lease = std::mem::take(&mut p.lease);
        match self.ipam_of(&p.net) {
            Ok(ipam) => ipam.release_address(&mut p.net.pools_mut(), &lease).await,
            Err(e) => {
                tracing::warn!(network = %p.net.name, error = %e, "releasing a global lease")
            }
        }
    }

    /// The kernel's part of a planned endpoint: on a global network its lease is taken
    /// first ([`Engine::lease_global`]); the driver joins it to `c`'s sandbox and, on a
    /// global network, its record goes to the cluster store. Needs no engine lock
    /// ([`Engine::join_staged`] runs it with the lock released). On a
    /// failure nothing of the endpoint is left in the kernel or the store; the lease is
    /// the caller's to abandon.
    ///
    /// Errors: no sandbox (500); the driver's or the store's failure.
    pub(crate) async fn join_planned(
        &self,
        p: &mut PlannedEndpoint,
        c: &Container,
        snl: &Netlink,
        att: &Attachment,
        default_route: bool,
    ) -> Result<(), EngineError> {
        let sb = c
            .sandbox
            .clone()
            .ok_or_else(|| EngineError::Internal("no sandbox".into()))?;
        let drv = self.driver_of(&p.net)?;
        let spec = crate::networks::spec_of(&p.net);
        if p.global {
            self.lease_global(p, att).await?;
        }
        let ep = &p.ep;
        let joined = drv
            .join(
                &spec,
                &EndpointSpec {
                    sandbox: &sb,
                    sandbox_nl: snl,
                    host_ifname: &ep.host_veth,
                    ifname: &ep.ifname,
                    ip: ep.ip,
                    ip6: ep.ip6.map(|(a, _, _)| a),
                    mac: ep.mac,
                    default_route,
                },
            )
            .await;
        if let Err(e) = joined {
            if p.global {
                self.unlease_global(p).await;
            }
            return Err(e.into());
        }
        if p.global {
            let rec = self.endpoint_record(&p.net, c, att, ep);
            let t = std::time::Instant::now();
            if let Err(e) = self.publish_endpoint(&rec).await {
                // the sandbox stays (a connect, or a start that undoes this endpoint
                // only): the driver removes the endpoint's interfaces itself
                let reap = Some(reap_key(c, &ep.ifname));
                let _ = drv.leave(&spec, &ep.host_veth, reap).await;
                self.unlease_global(p).await;
                return Err(e);
            }
            let put = t.elapsed();
            p.store_time += put;
            tracing::debug!(
                network = %p.net.name,
                endpoint = %ep.id,
                store_us = p.store_time.as_micros() as u64,
                put_us = put.as_micros() as u64,
                "overlay endpoint published"
            );
        }
        Ok(())
    }

    /// Returns the lease of a planned endpoint whose join failed or was given up.
    pub(crate) async fn abandon_endpoint(&self, st: &mut State, p: &PlannedEndpoint) {
        match self.ipam_of(&p.net) {
            Ok(ipam) => release_lease(st, &p.net, ipam.as_ref(), &p.lease).await,
            Err(e) => {
                tracing::warn!(network = %p.net.name, error = %e, "releasing a planned endpoint's addresses")
            }
        }
    }

    /// The last step of a joined endpoint: its DNS records, and the endpoint on `c` (the
    /// caller saves `c`).
    pub(crate) fn commit_endpoint(
        &self,
        c: &mut Container,
        name: &str,
        att: &Attachment,
        p: PlannedEndpoint,
    ) {
        if p.net.dns {
            self.dns.add_endpoint(
                &p.net.id,
                &c.id,
                &dns_names(c, att),
                p.ep.ip,
                p.ep.ip6.map(|(a, _, _)| a),
            );
        }
        c.endpoints.insert(name.to_string(), p.ep);
    }

    /// Removes `c`'s endpoint on network `name`: DNS records, veth, IP lease. With
    /// `sandbox_going` the caller removes the sandbox next, and the kernel deletes the veth
    /// pair with it; otherwise the pair is deleted off the request path (see
    /// [`tether_net::link::Reaper`]). Either way its host side is down before this returns.
    ///
    /// Keeps going past a failing step: the endpoint is gone from `c` and its lease and
    /// DNS names are released whatever happens; when the driver fails to remove the veth
    /// pair it is deleted here. An endpoint on a global network whose id is in
    /// `store_released` had its record and lease released in the cluster store by the
    /// caller beforehand, without the engine's lock ([`Engine::release_store_share`]).
    /// Errors: the driver's failure (logged too), for the caller to report.
    pub(crate) async fn detach_endpoint(
        &self,
        st: &mut State,
        c: &mut Container,
        name: &str,
        sandbox_going: bool,
        store_released: &[String],
    ) -> Result<(), EngineError> {
        let Some(ep) = c.endpoints.remove(name) else {
            return Ok(());
        };
        let net_id = c
            .attachments
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.network_id.clone());
        if let Some(n) = net_id.as_ref().and_then(|id| st.networks.get(id)).cloned() {
            if self.is_global(&n) {
                if !store_released.contains(&ep.id) {
                    self.release_store_share(&n, &ep).await;
                }
            } else {
                match self.ipam_of(&n) {
                    Ok(ipam) => release_lease(st, &n, ipam.as_ref(), &ep.lease()).await,
                    Err(e) => {
                        tracing::warn!(container = %c.name, network = %n.name, error = %e, "releasing an endpoint's addresses")
                    }
                }
            }
        }
        if let Some(id) = net_id.clone() {
            self.dns.remove_endpoint(&id, &c.id);
        }
        let net = net_id.as_ref().and_then(|id| st.networks.get(id));
        let left = match net.map(|n| (self.driver_of(n), n)) {
            Some((Ok(d), n)) => {
                let reap = (!sandbox_going).then(|| reap_key(c, &ep.ifname));
                d.leave(&crate::networks::spec_of(n), &ep.host_veth, reap)
                    .await
                    .map_err(EngineError::from)
            }
            // no network record or no driver for it (removed meanwhile; a global network
            // on a daemon without --cluster-store): the interface in the sandbox (a veth
            // goes with its host side, a macvlan has none) is the one thing left
            _ => match c.sandbox.clone() {
                Some(sb) => match Netlink::open_in(&sb) {
                    Ok(snl) => snl.delete(&ep.ifname).await.map_err(EngineError::from),
                    Err(e) => Err(e.into()),
                },
                None => self
                    .nl
                    .delete(&ep.host_veth)
                    .await
                    .map_err(EngineError::from),
            },
        };
        if let Err(e) = left {
            tracing::warn!(container = %c.name, error = %e, "removing veth");
            // the driver may have stopped before the pair: delete it (gone already when
            // the driver's reaper or the kernel took it)
            if let Err(u) = self.nl.delete(&ep.host_veth).await {
                tracing::warn!(container = %c.name, error = %u, "deleting the veth");
            }
            return Err(e);
        }
        Ok(())
    }

    /// Publishes the container's port bindings towards its primary address.
    pub(crate) fn publish(&self, st: &State, c: &mut Container) -> Result<(), EngineError> {
        let reqs = ports::parse_bindings(&c.host_config.port_bindings.clone().unwrap_or_default())?;
        if reqs.is_empty() {
            return Ok(());
        }
        // the endpoint with the default route first (an overlay container's gateway
        // bridge), else the first one
        let gw = gateway_network(st, &c.attachments);
        let Some((ip, ip6, net)) = c
            .attachments
            .iter()
            .filter(|(n, _)| gw.is_none() || gw == Some(n.as_str()))
            .find_map(|(n, a)| c.endpoints.get(n).map(|e| (e, a)))
            .map(|(e, a)| {
                (
                    e.ip,
                    e.ip6.map(|(a, _, _)| a),
                    st.networks.get(&a.network_id),
                )
            })
        else {
            return Ok(());
        };
        let (routed4, routed6) = net
            .map(|n| {
                (
                    crate::networks::gateway_mode(n, crate::networks::opt::GATEWAY_MODE4)
                        == tether_net::firewall::GatewayMode::Routed,
                    crate::networks::gateway_mode(n, crate::networks::opt::GATEWAY_MODE6)
                        == tether_net::firewall::GatewayMode::Routed,
                )
            })
            .unwrap_or_default();
        let taken: HashSet<(Proto, u16)> = st
            .containers
            .values()
            .filter(|o| o.id != c.id)
            .flat_map(|o| o.ports.iter().map(|p| (p.proto, p.host_port)))
            .collect();
        let t = std::time::Instant::now();
        let (mut maps, fds) = ports::allocate(&reqs, ip, ip6, &taken)?;
        for m in &mut maps {
            m.routed4 = routed4;
            m.routed6 = routed6;
        }
        let reserved = t.elapsed();
        self.fw.add_ports(&c.id[..12], &maps)?;
        tracing::debug!(
            ports = maps.len(),
            reserve_us = reserved.as_micros() as u64,
            firewall_us = (t.elapsed() - reserved).as_micros() as u64,
            "published"
        );
        c.ports = maps;
        self.live_mut(&c.id, |l| l.reservations = fds);
        Ok(())
    }

    /// Binds 127.0.0.11:53 (UDP and TCP) in the sandbox and serves DNS there, when one of
    /// the container's networks has the embedded DNS.
    pub(crate) fn start_dns(&self, st: &State, c: &Container) -> Result<(), EngineError> {
        self.dns.set_links(&c.id, &link_targets(st, c));
        let wants = c.attachments.iter().any(|(n, a)| {
            c.endpoints.contains_key(n)
                && st
                    .networks
                    .get(&a.network_id)
                    .map(|x| x.dns)
                    .unwrap_or(false)
        });
        let running = self.live_mut(&c.id, |l| l.dns.is_some());
        if !wants || running {
            return Ok(());
        }
        let Some(sb) = c.sandbox.clone() else {
            return Ok(());
        };
        let addr = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 11), 53));
        let (udp, tcp) = netns::run_in(&sb, move || -> std::io::Result<_> {
            Ok((
                std::net::UdpSocket::bind(addr)?,
                std::net::TcpListener::bind(addr)?,
            ))
        })??;
        let own: Vec<SocketAddr> = c
            .host_config
            .dns
            .clone()
            .unwrap_or_default()
            .iter()
            .filter_map(|s| {
                s.parse::<std::net::IpAddr>()
                    .ok()
                    .map(|ip| SocketAddr::new(ip, 53))
            })
            .collect();
        let fwd_ns = (!own.is_empty()).then_some(sb);
        let h = self
            .dns
            .serve(c.id.clone(), udp, tcp, own, fwd_ns)
            .map_err(|e| EngineError::Internal(format!("embedded DNS: {e}")))?;
        self.live_mut(&c.id, |l| l.dns = Some(h));
        Ok(())
    }

    /// Writes /etc/hosts, /etc/resolv.conf and /etc/hostname for `c` (in place: they are
    /// bind-mounted, so the inode must stay).
    pub(crate) fn write_etc_files(&self, st: &State, c: &Container) -> Result<(), EngineError> {
        let dir = self.container_dir(&c.id);
        let hc = &c.host_config;
        let host_resolv =
            files::parse_resolv(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default());
        let hostname = hostname_of(c);
        if mode(hc.network_mode.as_deref().unwrap_or("")) == Mode::Host {
            let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
            std::fs::write(dir.join("hosts"), hosts)?;
            let r = files::resolv(
                &host_resolv,
                &hc.dns.clone().unwrap_or_default(),
                &hc.dns_search.clone().unwrap_or_default(),
                &hc.dns_options.clone().unwrap_or_default(),
                false,
            );
            std::fs::write(dir.join("resolv.conf"), files::render_resolv(&r))?;
            std::fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
            return Ok(());
        }
        let primary = c.attachments.iter().find_map(|(n, _)| c.endpoints.get(n));
        let gw = primary.and_then(|e| e.gateway).or_else(|| {
            st.networks
                .values()
                .find(|n| n.name == "bridge")
                .and_then(|n| n.pool.as_ref())
                .map(|p| p.gateway)
        });
        let mut extra = Vec::new();
        for h in hc.extra_hosts.clone().unwrap_or_default() {
            let (name, ip) = h
                .split_once(':')
                .or_else(|| h.split_once('='))
                .unwrap_or((h.as_str(), ""));
            let ip = if ip == "host-gateway" {
                gw.map(|g| g.to_string()).unwrap_or_default()
            } else {
                ip.to_string()
            };
            extra.push((name.to_string(), ip));
        }
        let mut links = Vec::new();
        for l in hc.links.clone().unwrap_or_default() {
            let (target, alias) = l.split_once(':').unwrap_or((l.as_str(), l.as_str()));
            let target = target.trim_start_matches('/');
            let alias = alias.rsplit('/').next().unwrap_or(alias);
            if let Ok(o) = st.container(target) {
                let shared = c
                    .endpoints
                    .keys()
                    .find_map(|n| o.endpoints.get(n))
                    .or_else(|| o.endpoints.values().next());
                if let Some(e) = shared {
                    // as moby: "alias hostname", then the name when the alias differs
                    let host = crate::sandbox::hostname_of(o);
                    let names = if alias == o.name {
                        format!("{alias} {host}")
                    } else {
                        format!("{alias} {host} {}", o.name)
                    };
                    let addr =
                        e.ip.map(|a| a.to_string())
                            .or_else(|| e.ip6.map(|(a, _, _)| a.to_string()));
                    if let Some(addr) = addr {
                        links.push(format!("{addr}\t{names}"));
                    }
                }
            }
        }
        std::fs::write(
            dir.join("hosts"),
            files::hosts(
                primary.and_then(|e| e.ip),
                primary.and_then(|e| e.ip6).map(|(a, _, _)| a),
                &hostname,
                &extra,
                &links,
            ),
        )?;
        let embedded = c.attachments.iter().any(|(_, a)| {
            st.networks
                .get(&a.network_id)
                .map(|n| n.dns)
                .unwrap_or(false)
        });
        let r = files::resolv(
            &host_resolv,
            &hc.dns.clone().unwrap_or_default(),
            &hc.dns_search.clone().unwrap_or_default(),
            &hc.dns_options.clone().unwrap_or_default(),
            embedded,
        );
        std::fs::write(dir.join("resolv.conf"), files::render_resolv(&r))?;
        std::fs::write(dir.join("hostname"), format!("{hostname}\n"))?;
        Ok(())
    }

    /// Undoes everything a start's networking (from [`Engine::make_sandbox`] on) recorded on
    /// `c`; tolerant and idempotent. `store_released`: the global endpoints whose cluster
    /// store share the caller released already (see [`Engine::detach_endpoint`]).
    pub(crate) async fn teardown_networking(
        &self,
        st: &mut State,
        c: &mut Container,
        store_released: &[String],
    ) {
        self.dns.set_links(&c.id, &[]);
        let dns = self.live_mut(&c.id, |l| {
            l.reservations.clear();
            l.dns.take()
        });
        drop(dns);
        if !c.ports.is_empty() {
            if let Err(e) = self.fw.remove_ports(&c.id[..12], &c.ports) {
                tracing::warn!(container = %c.name, error = %e, "withdrawing published ports");
            }
            c.ports.clear();
        }
        let names: Vec<String> = c.endpoints.keys().cloned().collect();
        // a container in another's namespace (`container:NAME`) has no endpoints of its own
        let own = c.sandbox.is_some()
            && !matches!(
                mode(c.host_config.network_mode.as_deref().unwrap_or("")),
                Mode::Container(_)
            );
        for n in names {
            // tolerant: a failure is logged by detach_endpoint
            let _ = self.detach_endpoint(st, c, &n, own, store_released).await;
        }
        if c.sandbox.take().is_some() {
            self.release_sandbox(&c.id);
        }
    }
}

/// Gives `ep` the addresses of `lease` on network `net` (IPv6 with the pool's prefix
/// length and gateway) and its MAC: the one `att` asks for, else one derived from the
/// IPv4 address (as Docker does), else a random one.
fn address_endpoint(ep: &mut Endpoint, net: &Network, att: &Attachment, lease: &Lease) {
    ep.ip = lease.ipv4;
    ep.ip6 = lease.ipv6.and_then(|a| {
        net.pool6
            .as_ref()
            .map(|p6| (a, p6.subnet.prefix_len(), p6.gateway))
    });
    ep.mac = att
        .mac
        .as_deref()
        .and_then(crate::validate::parse_mac)
        .or_else(|| ep.ip.map(link::mac_for_ip))
        .unwrap_or_else(link::random_mac);
}

/// Returns `lease` to network `net`'s pools through its IPAM: the state's record of the
/// network when it is still there, else a copy of it (a global network's store lease is
/// released either way).
async fn release_lease(st: &mut State, net: &Network, ipam: &dyn Ipam, lease: &Lease) {
    let mut copy;
    let n = match st.networks.get_mut(&net.id) {
        Some(n) => n,
        None => {
            copy = net.clone();
            &mut copy
        }
    };
    ipam.release_address(&mut n.pools_mut(), lease).await;
}

/// The network of `atts` whose endpoint gives the default routes: the highest
/// `gw_priority`, the first attached among equals (Docker 28's `--gw-priority`); internal
/// networks, networks without a bridge and global (overlay) networks never do.
pub(crate) fn gateway_network<'a>(st: &State, atts: &'a [(String, Attachment)]) -> Option<&'a str> {
    let mut best: Option<(&str, i64)> = None;
    for (name, att) in atts {
        let eligible = st
            .networks
            .get(&att.network_id)
            .map(|n| !n.internal && n.bridge.is_some() && n.scope() == "local")
            .unwrap_or(false);
        if eligible && best.map(|(_, p)| att.gw_priority > p).unwrap_or(true) {
            best = Some((name, att.gw_priority));
        }
    }
    best.map(|(n, _)| n)
}

impl Engine {
    /// Points `c`'s default routes (IPv4 and IPv6) at the endpoint [`gateway_network`]
    /// picks, after a connect or disconnect changed its endpoints.
    pub(crate) async fn refresh_default_route(
        &self,
        st: &State,
        c: &Container,
        snl: &Netlink,
    ) -> Result<(), EngineError> {
        let Some(name) = gateway_network(st, &c.attachments) else {
            return Ok(());
        };
        let Some(ep) = c.endpoints.get(name) else {
            return Ok(());
        };
        snl.replace_default_route(&ep.ifname, ep.gateway, ep.ip6.map(|(_, _, gw)| gw))
            .await?;
        Ok(())
    }
}

/// Refuses a further endpoint on network `name` when it already has `endpoints`, the most
/// a Linux bridge takes ([`link::BRIDGE_MAX_PORTS`]): a clear 409 up front rather than the
/// kernel's EXFULL halfway through a start (moby#44973).
fn bridge_has_room(name: &str, endpoints: usize) -> Result<(), EngineError> {
    if endpoints >= link::BRIDGE_MAX_PORTS {
        return Err(EngineError::Conflict(format!(
            "network {name} has {endpoints} endpoints, the most a Linux bridge takes ({} ports); connect the container to another network",
            link::BRIDGE_MAX_PORTS
        )));
    }
    Ok(())
}

/// The reaper's tag for interface `ifname` of `c`'s sandbox.
fn reap_key(c: &Container, ifname: &str) -> String {
    format!("{}/{ifname}", c.id)
}

/// The container's hostname: `--hostname`, else the short id (Docker's default).
pub fn hostname_of(c: &Container) -> String {
    c.config
        .hostname
        .clone()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| c.id[..12].to_string())
}

/// The names a container answers to on a network: its name, short id, hostname, aliases.
pub fn dns_names(c: &Container, att: &Attachment) -> Vec<String> {
    let mut v = vec![c.name.clone(), c.id[..12].to_string()];
    let h = hostname_of(c);
    if !v.contains(&h) {
        v.push(h);
    }
    for a in &att.aliases {
        if !v.contains(a) {
            v.push(a.clone());
        }
    }
    v
}

/// `TARGET[:ALIAS]` of a `--link` (also as the API stores it, `/target:/self/alias`), as
/// (target name, alias).
pub(crate) fn parse_link(l: &str) -> (&str, &str) {
    let (target, alias) = l.split_once(':').unwrap_or((l, l));
    let target = target.trim_start_matches('/');
    let alias = alias.rsplit('/').next().unwrap_or(alias);
    (target, if alias.is_empty() { target } else { alias })
}

/// The container's links (`HostConfig.Links` and those given at `network connect`) as
/// (alias, target container id), for the targets that exist.
pub(crate) fn link_targets(st: &State, c: &Container) -> Vec<(String, String)> {
    let given = c.host_config.links.clone().unwrap_or_default();
    let on_connect = c.attachments.iter().flat_map(|(_, a)| a.links.clone());
    given
        .into_iter()
        .chain(on_connect)
        .filter_map(|l| {
            let (target, alias) = parse_link(&l);
            st.container(target)
                .ok()
                .map(|t| (alias.to_string(), t.id.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_port_limit_is_a_clear_conflict() {
        assert!(bridge_has_room("web", link::BRIDGE_MAX_PORTS - 1).is_ok());
        let e = bridge_has_room("web", link::BRIDGE_MAX_PORTS).expect_err("full");
        assert_eq!(e.status(), 409);
        let m = e.to_string();
        assert!(m.contains("network web") && m.contains("1023"), "{m}");
    }
}
