//! tether-net: container networking — IPAM (the pools and the [`ipamapi::Ipam`] trait),
//! network namespaces (sandboxes), the bridge, host, none and overlay (VXLAN) drivers, the
//! nftables firewall, port publishing and the embedded DNS server.
//!
//! Every setup validates first, then applies, and rolls back what it applied on failure.

pub mod bridge;
pub mod dns;
pub mod driver;
pub mod faults;
pub mod firewall;
pub mod host;
pub mod ipam;
pub mod ipamapi;
pub mod libnft;
pub mod link;
pub mod metrics;
pub mod netns;
pub mod nfelem;
pub mod nftwatch;
pub mod null;
pub mod overlay;
pub mod sockets;
pub mod sysctl;
