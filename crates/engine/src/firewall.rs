//! Keeping tether's nftables state whole: a reload that rebuilds everything tether owns
//! from the engine's model (`tether network reload-firewall`), and a watch that runs it
//! by itself when someone else deletes or flushes tether's tables (see
//! [`tether_net::nftwatch`]).

use std::collections::HashMap;
use std::sync::Arc;

use crate::{Engine, EngineError};

impl Engine {
    /// Rebuilds the whole firewall state tether owns: the tables (recreated empty), every
    /// bridge network's entries, every running container's published ports and the port
    /// isolation of `enable_icc=false` networks. Keeps going past a failing step and
    /// returns the number of objects restored; emits a `daemon` event
    /// `firewall-reload` with `reason`.
    ///
    /// Errors: 500 naming every step that failed (the others are applied).
    pub async fn reload_firewall(&self, reason: &str) -> Result<usize, EngineError> {
        let st = self.state.lock().await;
        let t0 = std::time::Instant::now();
        self.fw_rebuilds
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.fw.init()?;
        let mut errors = Vec::new();
        let mut restored = 0;
        // networks being made too: their driver may have added its entries already
        // not those being removed: their driver is taking their entries away
        for n in st.known_networks().filter(|n| !st.removing.contains(&n.id)) {
            let done = self.driver_of(n).and_then(|d| {
                d.restore_firewall(&crate::networks::spec_of(n))
                    .map_err(EngineError::from)
            });
            match done {
                Ok(()) => restored += 1,
                Err(e) => errors.push(format!("network {}: {e}", n.name)),
            }
        }
        for gw in self.host_dns_addresses() {
            match self.fw.guard_host_dns(gw, true) {
                Ok(()) => restored += 1,
                Err(e) => errors.push(format!("host DNS guard on {gw}: {e}")),
            }
        }
        for c in st.containers.values() {
            if c.state.status != "running" {
                continue;
            }
            if !c.ports.is_empty() {
                match self.fw.add_ports(&c.id[..12], &c.ports) {
                    Ok(()) => restored += 1,
                    Err(e) => errors.push(format!("ports of {}: {e}", c.name)),
                }
            }
        }
        for port in st.isolated_ports() {
            match self.fw.isolate_port(&port, true) {
                Ok(()) => restored += 1,
                Err(e) => errors.push(format!("isolation of bridge port {port}: {e}")),
            }
        }
        tracing::warn!(
            %reason,
            restored,
            failed = errors.len(),
            ms = t0.elapsed().as_millis() as u64,
            "firewall reloaded"
        );
        self.emit(
            "daemon",
            "firewall-reload",
            "",
            HashMap::from([
                ("reason".to_string(), reason.to_string()),
                ("restored".to_string(), restored.to_string()),
            ]),
        );
        crate::metrics::global().firewall_repair(errors.is_empty());
        if errors.is_empty() {
            Ok(restored)
        } else {
            Err(EngineError::Internal(format!(
                "firewall reload: {}",
                errors.join("; ")
            )))
        }
    }

    /// Starts the watch that repairs tether's nftables tables when another process
    /// deletes or flushes any part of them: damage reported within 50 ms of each other
    /// is repaired once. A watch that cannot start is logged; tether runs without it.
    pub(crate) fn watch_firewall(self: &Arc<Self>) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let started = tether_net::nftwatch::spawn(tether_net::firewall::TABLE, move |d| {
            let _ = tx.send(d);
        });
        if let Err(e) = started {
            tracing::warn!(error = %e, "cannot watch nftables: no firewall self-repair");
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Some(d) = rx.recv().await {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                while rx.try_recv().is_ok() {}
                let Some(engine) = weak.upgrade() else {
                    return;
                };
                let reason = format!(
                    "{} (pid {}) deleted {} object(s) of tether's nftables tables",
                    d.process, d.pid, d.deleted
                );
                tracing::warn!(%reason, "firewall damaged: repairing");
                if let Err(e) = engine.reload_firewall(&reason).await {
                    tracing::error!(error = %e, "firewall repair incomplete");
                }
            }
        });
    }
}
