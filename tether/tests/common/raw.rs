//! Hand-made Ethernet frames, sent and watched on an AF_PACKET socket inside a test's own
//! namespace: what a process with `CAP_NET_RAW` (a container's default capabilities
//! include it) or a hostile neighbour on the same link can put on the wire, including
//! packets its own kernel would never route, such as a TCP SYN to 127.0.0.1 sent to
//! another host's MAC address (packet(7), RFC 791, RFC 793).

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use super::in_netns;

/// One TCP SYN to craft: from `src_mac`/`src_ip` on `ifname` to `dst_mac`/`dst_ip`:`dport`.
#[derive(Clone, Debug)]
pub struct Syn {
    /// Interface to send on, in the namespace given to [`Syn::answered`].
    pub ifname: String,
    /// Source MAC (the interface's own, so that replies come back to it).
    pub src_mac: [u8; 6],
    /// Destination MAC: the next hop the packet is forced onto.
    pub dst_mac: [u8; 6],
    /// Source address (the interface's own).
    pub src_ip: Ipv4Addr,
    /// Destination address, whatever the sender's routing table says of it.
    pub dst_ip: Ipv4Addr,
    /// Destination port.
    pub dport: u16,
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> [u8; 6] {
    let v: Vec<u8> = s
        .trim()
        .split(':')
        .map(|x| u8::from_str_radix(x, 16).unwrap_or_else(|_| panic!("bad MAC {s:?}")))
        .collect();
    v.try_into().unwrap_or_else(|_| panic!("bad MAC {s:?}"))
}

/// The Internet checksum (RFC 1071) of `data`, starting from the partial sum `sum`.
fn checksum(data: &[u8], mut sum: u32) -> u16 {
    for c in data.chunks(2) {
        let w = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(w);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl Syn {
    /// The frame: Ethernet II, IPv4 (20 bytes, TTL 64), TCP (20 bytes, SYN) from `sport`.
    fn frame(&self, sport: u16) -> Vec<u8> {
        let mut tcp = Vec::with_capacity(20);
        tcp.extend(sport.to_be_bytes());
        tcp.extend(self.dport.to_be_bytes());
        tcp.extend(0x1234_5678u32.to_be_bytes()); // sequence number
        tcp.extend(0u32.to_be_bytes()); // acknowledgment number
        tcp.extend([0x50, 0x02]); // data offset 5 words; flags: SYN
        tcp.extend(64240u16.to_be_bytes()); // window
        tcp.extend([0, 0, 0, 0]); // checksum, urgent pointer
        let mut pseudo = Vec::new();
        pseudo.extend(self.src_ip.octets());
        pseudo.extend(self.dst_ip.octets());
        pseudo.extend([0, 6]);
        pseudo.extend((tcp.len() as u16).to_be_bytes());
        pseudo.extend(&tcp);
        let c = checksum(&pseudo, 0);
        tcp[16..18].copy_from_slice(&c.to_be_bytes());

        let mut ip = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0];
        ip[2..4].copy_from_slice(&((20 + tcp.len()) as u16).to_be_bytes());
        ip.extend(self.src_ip.octets());
        ip.extend(self.dst_ip.octets());
        let c = checksum(&ip, 0);
        ip[10..12].copy_from_slice(&c.to_be_bytes());

        let mut f = Vec::new();
        f.extend(self.dst_mac);
        f.extend(self.src_mac);
        f.extend([0x08, 0x00]);
        f.extend(ip);
        f.extend(tcp);
        f
    }

    /// Sends the SYN from inside the namespace `netns` (three times, 200 ms apart) and
    /// watches the interface for up to `limit` for a SYN-ACK to its source port: whether
    /// some socket accepted the connection attempt. Panics when the packet socket cannot
    /// be made (needs root).
    pub fn answered(&self, netns: &Path, limit: Duration) -> bool {
        let me = self.clone();
        in_netns(netns, move || me.answered_here(limit))
    }

    fn answered_here(&self, limit: Duration) -> bool {
        let proto = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain socket(2)/if_nametoindex(3)/bind(2)/setsockopt(2)/send(2)/recv(2)
        // calls on a descriptor this function owns and closes; buffers outlive the calls.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, i32::from(proto));
            assert!(
                fd >= 0,
                "AF_PACKET socket: {}",
                std::io::Error::last_os_error()
            );
            let name = std::ffi::CString::new(self.ifname.clone()).expect("ifname");
            let index = libc::if_nametoindex(name.as_ptr());
            assert!(index != 0, "no interface {}", self.ifname);
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = proto;
            sll.sll_ifindex = index as i32;
            let r = libc::bind(
                fd,
                &sll as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
            let tv = libc::timeval {
                tv_sec: 0,
                tv_usec: 100_000,
            };
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const libc::timeval as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            );
            let sport = 40000 + (std::process::id() % 20000) as u16;
            let frame = self.frame(sport);
            let deadline = Instant::now() + limit;
            let mut next_send = Instant::now();
            let mut sent = 0;
            let mut buf = [0u8; 2048];
            let mut seen = false;
            while Instant::now() < deadline && !seen {
                if sent < 3 && Instant::now() >= next_send {
                    let n = libc::send(fd, frame.as_ptr() as *const libc::c_void, frame.len(), 0);
                    assert_eq!(
                        n,
                        frame.len() as isize,
                        "send: {}",
                        std::io::Error::last_os_error()
                    );
                    sent += 1;
                    next_send = Instant::now() + Duration::from_millis(200);
                }
                let n = libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0);
                if n <= 0 {
                    continue;
                }
                seen = is_syn_ack_to(&buf[..n as usize], sport);
            }
            libc::close(fd);
            seen
        }
    }
}

/// Whether `f` is an Ethernet/IPv4/TCP frame with SYN and ACK set, to port `dport`.
fn is_syn_ack_to(f: &[u8], dport: u16) -> bool {
    if f.len() < 14 + 20 + 20 || f[12..14] != [0x08, 0x00] || f[14 + 9] != 6 {
        return false;
    }
    let ihl = usize::from(f[14] & 0x0f) * 4;
    let t = 14 + ihl;
    if f.len() < t + 14 {
        return false;
    }
    u16::from_be_bytes([f[t + 2], f[t + 3]]) == dport && f[t + 13] & 0x12 == 0x12
}
