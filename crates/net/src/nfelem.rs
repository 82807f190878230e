//! Set and map elements of tether's nftables tables, written over nfnetlink directly.
//!
//! Networks, published ports, isolated bridge ports and host DNS guards only ever add or
//! delete elements of sets and maps that the table's layout declared (see
//! [`crate::firewall`]). Handing such a batch to libnftables in process cost ~0.3 ms on
//! this machine kind (~2.5 ms through `nft`), most of it libnftables refilling its cache
//! (generation, tables, chains, sets and the elements of the interval sets) because the
//! previous batch moved the generation. Here one transaction is built in the kernel's own
//! format and sent on a `NETLINK_NETFILTER` socket: a batch begin, one
//! `NFT_MSG_NEWSETELEM` or `NFT_MSG_DELSETELEM` per set, a batch end
//! (include/uapi/linux/netfilter/nf_tables.h, nfnetlink.h; the kernel's
//! net/netfilter/nf_tables_api.c). Every message asks for an acknowledgement, so the
//! answer to each is read back and the first error is reported with the set and the
//! elements it named; the kernel applies the batch whole or not at all.
//!
//! Element data is what nft(8) sends for the same element: an `ifname` is 16 bytes
//! (IFNAMSIZ, NUL-padded), addresses and ports in network byte order, and each part of a
//! concatenation padded to 4 bytes (`inet_proto . inet_service` is 8 bytes). An element of
//! an interval set (`flags interval`) is two elements: its first address, and the first
//! address past it flagged `NFT_SET_ELEM_INTERVAL_END` (none when the range reaches the
//! end of the address space).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

/// `NFNL_SUBSYS_NFTABLES` (nfnetlink.h).
const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// `NFNL_MSG_BATCH_BEGIN` / `NFNL_MSG_BATCH_END` (nfnetlink.h: NLMSG_MIN_TYPE, +1).
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
/// `NFT_MSG_NEWSETELEM` / `NFT_MSG_DELSETELEM` (enum nf_tables_msg_types).
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
/// netlink flags (netlink.h).
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
/// `NLMSG_ERROR` (an error or, with error 0, an acknowledgement).
const NLMSG_ERROR: u16 = 0x2;
const NLA_F_NESTED: u16 = 0x8000;
/// enum nft_set_elem_list_attributes.
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
/// `NFTA_LIST_ELEM` (enum nft_list_attributes).
const NFTA_LIST_ELEM: u16 = 1;
/// enum nft_set_elem_attributes.
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
/// `NFTA_DATA_VALUE` (enum nft_data_attributes).
const NFTA_DATA_VALUE: u16 = 1;
/// `NFT_SET_ELEM_INTERVAL_END` (enum nft_set_elem_flags).
const NFT_SET_ELEM_INTERVAL_END: u32 = 1;
/// How long to wait for the kernel's answers (it answers before `send` returns; this only
/// bounds a kernel that does not).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

/// The address family of a table (NFPROTO_*).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// `inet` (NFPROTO_INET, 1).
    Inet,
    /// `bridge` (NFPROTO_BRIDGE, 7).
    Bridge,
}

impl Family {
    fn nfproto(self) -> u8 {
        match self {
            Family::Inet => 1,
            Family::Bridge => 7,
        }
    }
    /// nft's name of the family.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Bridge => "bridge",
        }
    }
}

/// One part of an element's key or data, of an nftables data type.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    /// `ifname`: an interface name (at most 15 bytes).
    Ifname(String),
    /// `ipv4_addr`.
    V4(Ipv4Addr),
    /// `ipv6_addr`.
    V6(Ipv6Addr),
    /// `inet_proto`: an IP protocol number (6 tcp, 17 udp, 132 sctp).
    Proto(u8),
    /// `inet_service`: a port.
    Port(u16),
}

impl Part {
    /// The part's bytes in the kernel's layout, padded to 4 bytes (a register's
    /// granularity in a concatenation). Errors on an interface name longer than 15 bytes.
    fn bytes(&self, out: &mut Vec<u8>) -> Result<(), NfError> {
        match self {
            Part::Ifname(n) => {
                if n.len() > 15 || n.is_empty() {
                    return Err(NfError::Invalid(format!(
                        "interface name {n:?}: 1 to 15 bytes expected"
                    )));
                }
                let mut b = [0u8; 16];
                b[..n.len()].copy_from_slice(n.as_bytes());
                out.extend_from_slice(&b);
            }
            Part::V4(a) => out.extend_from_slice(&a.octets()),
            Part::V6(a) => out.extend_from_slice(&a.octets()),
            Part::Proto(p) => out.extend_from_slice(&[*p, 0, 0, 0]),
            Part::Port(p) => {
                let b = p.to_be_bytes();
                out.extend_from_slice(&[b[0], b[1], 0, 0]);
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for Part {
    /// nft's text syntax of the part (`tb-1`, `10.0.0.1`, `tcp`, `8080`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Part::Ifname(n) => write!(f, "{n}"),
            Part::V4(a) => write!(f, "{a}"),
            Part::V6(a) => write!(f, "{a}"),
            Part::Proto(6) => write!(f, "tcp"),
            Part::Proto(17) => write!(f, "udp"),
            Part::Proto(132) => write!(f, "sctp"),
            Part::Proto(p) => write!(f, "{p}"),
            Part::Port(p) => write!(f, "{p}"),
        }
    }
}

/// One element: a key (one part, or several for a concatenation), the data of a map
/// element, or a prefix of an interval set.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Elem {
    /// A set element: the key's parts.
    Key(Vec<Part>),
    /// A map element: the key's parts and the data's parts.
    Map(Vec<Part>, Vec<Part>),
    /// An element of an interval set: the addresses of `addr/len`.
    Prefix(Part, u8),
}

impl Elem {
    /// A set element of one part.
    pub fn one(p: Part) -> Elem {
        Elem::Key(vec![p])
    }
}

fn join(parts: &[Part]) -> String {
    parts
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join(" . ")
}

impl std::fmt::Display for Elem {
    /// nft's text syntax of the element (`tcp . 8080 : 172.18.0.2 . 80`, `10.0.0.0/24`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Elem::Key(k) => write!(f, "{}", join(k)),
            Elem::Map(k, d) => write!(f, "{} : {}", join(k), join(d)),
            Elem::Prefix(a, len) => write!(f, "{a}/{len}"),
        }
    }
}

/// Elements to add to or delete from one set or map of table `tether`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Add (true: an element already there is no error) or delete (an element not there is
    /// an error, `ENOENT`).
    pub add: bool,
    /// The table's family.
    pub family: Family,
    /// The set's or map's name.
    pub set: &'static str,
    /// Its elements.
    pub elems: Vec<Elem>,
}

/// A batch the kernel refused, or that could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum NfError {
    /// An element that cannot be encoded (named).
    #[error("{0}")]
    Invalid(String),
    /// The socket failed (send, receive, no answer in time).
    #[error("nfnetlink {what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The kernel rejected one change: the whole batch was not applied.
    #[error("{verb} element {elems} in {family} set {set}: {source}")]
    Rejected {
        /// "adding" or "deleting".
        verb: &'static str,
        /// The elements, in nft's syntax.
        elems: String,
        /// The table's family.
        family: &'static str,
        /// The set's name.
        set: &'static str,
        /// The kernel's error (errno).
        #[source]
        source: std::io::Error,
    },
    /// The kernel rejected the batch as a whole (its commit).
    #[error("committing the batch: {0}")]
    Commit(#[source] std::io::Error),
}

/// A `NETLINK_NETFILTER` socket of the network namespace it was opened in, sending one
/// batch at a time.
pub struct ElemSocket {
    sock: Mutex<Socket>,
    seq: AtomicU32,
}

impl ElemSocket {
    /// Opens the socket in the calling thread's network namespace (the daemon's: the
    /// namespace stays the socket's whatever thread uses it later).
    pub fn open() -> Result<ElemSocket, NfError> {
        let io = |what| move |source| NfError::Io { what, source };
        let mut sock = Socket::new(NETLINK_NETFILTER).map_err(io("socket"))?;
        sock.bind(&SocketAddr::new(0, 0)).map_err(io("bind"))?;
        // an error answer carries only the failed message's header, not the whole
        // message (a batch of 200 ports would not fit the receive buffer)
        sock.set_cap_ack(true)
            .map_err(io("setsockopt NETLINK_CAP_ACK"))?;
        let timeout = nix::sys::time::TimeVal::new(ANSWER_TIMEOUT.as_secs() as _, 0);
        nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::ReceiveTimeout, &timeout)
            .map_err(|e| NfError::Io {
                what: "setsockopt SO_RCVTIMEO",
                source: e.into(),
            })?;
        Ok(ElemSocket {
            sock: Mutex::new(sock),
            seq: AtomicU32::new(1),
        })
    }

    /// Applies `changes` to table `table` as one transaction: all of them or none.
    pub fn commit(&self, table: &str, changes: &[Change]) -> Result<(), NfError> {
        let pieces = pieces(changes);
        if pieces.is_empty() {
            return Ok(());
        }
        let n = pieces.len() as u32;
        // batch begin, one message per piece, batch end: n + 2 sequence numbers
        let base = self.seq.fetch_add(n + 2, Ordering::Relaxed);
        let buf = encode_pieces(table, &pieces, base)?;
        let sock = self.sock.lock().unwrap_or_else(|p| p.into_inner());
        sock.send(&buf, 0).map_err(|source| NfError::Io {
            what: "send",
            source,
        })?;
        read_answers(&sock, &pieces, base)
    }
}

/// Elements per message: a message's element list is one netlink attribute, whose
/// length is 16 bits; 256 elements (at most 512 list entries with interval ends, under
/// 100 bytes each) stay well inside it. nft splits large element lists the same way.
const ELEMS_PER_MESSAGE: usize = 256;

/// The messages of `changes`: each change's elements in pieces of at most
/// [`ELEMS_PER_MESSAGE`], with the change they belong to; a change without elements makes
/// none.
fn pieces(changes: &[Change]) -> Vec<(&Change, &[Elem])> {
    changes
        .iter()
        .flat_map(|c| c.elems.chunks(ELEMS_PER_MESSAGE).map(move |p| (c, p)))
        .collect()
}

/// Appends attribute `ty` with `payload`, padded to 4 bytes.
fn attr(out: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    out.extend_from_slice(&(len as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len() + ((4 - len % 4) % 4), 0);
}

/// Appends nested attribute `ty` whose contents `f` writes.
fn nest(
    out: &mut Vec<u8>,
    ty: u16,
    f: impl FnOnce(&mut Vec<u8>) -> Result<(), NfError>,
) -> Result<(), NfError> {
    let start = out.len();
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
    f(out)?;
    let len = u16::try_from(out.len() - start).map_err(|_| {
        NfError::Invalid(format!(
            "a netlink attribute of {} bytes: at most 65535 fit",
            out.len() - start
        ))
    })?;
    out[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    Ok(())
}

fn value(out: &mut Vec<u8>, ty: u16, parts: &[Part]) -> Result<(), NfError> {
    let mut b = Vec::with_capacity(32);
    for p in parts {
        p.bytes(&mut b)?;
    }
    nest(out, ty, |o| {
        attr(o, NFTA_DATA_VALUE, &b);
        Ok(())
    })
}

/// The first address of `a/len` and the first address past it (None past the end of the
/// address space); a host part in `a` is ignored.
fn prefix_range(a: &Part, len: u8) -> Result<(Part, Option<Part>), NfError> {
    match a {
        Part::V4(ip) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            let first = u32::from(*ip) & mask;
            let next = u64::from(first) + (1u64 << (32 - len));
            let end = u32::try_from(next).ok().map(|n| Part::V4(n.into()));
            Ok((Part::V4(first.into()), end))
        }
        Part::V6(ip) if len <= 128 => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            let first = u128::from(*ip) & mask;
            let end = if len == 0 {
                None
            } else {
                first
                    .checked_add(1u128 << (128 - len))
                    .map(|n| Part::V6(n.into()))
            };
            Ok((Part::V6(first.into()), end))
        }
        _ => Err(NfError::Invalid(format!(
            "prefix {a}/{len}: an IPv4 (/0-32) or IPv6 (/0-128) prefix expected"
        ))),
    }
}

fn list_elem(
    out: &mut Vec<u8>,
    key: &[Part],
    data: Option<&[Part]>,
    end: bool,
) -> Result<(), NfError> {
    nest(out, NFTA_LIST_ELEM, |o| {
        if end {
            attr(
                o,
                NFTA_SET_ELEM_FLAGS,
                &NFT_SET_ELEM_INTERVAL_END.to_be_bytes(),
            );
        }
        value(o, NFTA_SET_ELEM_KEY, key)?;
        if let Some(d) = data {
            value(o, NFTA_SET_ELEM_DATA, d)?;
        }
        Ok(())
    })
}

/// Appends one netlink message of type `ty` (nfnetlink header of `family`, `res_id`).
fn message(
    out: &mut Vec<u8>,
    ty: u16,
    flags: u16,
    seq: u32,
    family: u8,
    res_id: u16,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), NfError>,
) -> Result<(), NfError> {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    // struct nfgenmsg: family, version (NFNETLINK_V0), res_id (big endian)
    out.push(family);
    out.push(0);
    out.extend_from_slice(&res_id.to_be_bytes());
    body(out)?;
    let len = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    Ok(())
}

/// The batch for `changes` on `table`, sequence numbers from `base` (the batch begin);
/// exposed for tests.
pub fn encode(table: &str, changes: &[Change], base: u32) -> Result<Vec<u8>, NfError> {
    encode_pieces(table, &pieces(changes), base)
}

fn encode_pieces(
    table: &str,
    pieces: &[(&Change, &[Elem])],
    base: u32,
) -> Result<Vec<u8>, NfError> {
    let mut out = Vec::with_capacity(256 + 96 * pieces.len());
    let none = |_: &mut Vec<u8>| Ok(());
    message(
        &mut out,
        NFNL_MSG_BATCH_BEGIN,
        NLM_F_REQUEST,
        base,
        0,
        NFNL_SUBSYS_NFTABLES,
        none,
    )?;
    let mut table_z = table.as_bytes().to_vec();
    table_z.push(0);
    for (i, (c, elems)) in pieces.iter().enumerate() {
        let (ty, flags) = if c.add {
            (NFT_MSG_NEWSETELEM, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE)
        } else {
            (NFT_MSG_DELSETELEM, NLM_F_REQUEST | NLM_F_ACK)
        };
        let mut set_z = c.set.as_bytes().to_vec();
        set_z.push(0);
        message(
            &mut out,
            (NFNL_SUBSYS_NFTABLES << 8) | ty,
            flags,
            base + 1 + i as u32,
            c.family.nfproto(),
            0,
            |o| {
                attr(o, NFTA_SET_ELEM_LIST_TABLE, &table_z);
                attr(o, NFTA_SET_ELEM_LIST_SET, &set_z);
                nest(o, NFTA_SET_ELEM_LIST_ELEMENTS, |o| {
                    for e in elems.iter() {
                        match e {
                            Elem::Key(k) => list_elem(o, k, None, false)?,
                            Elem::Map(k, d) => list_elem(o, k, Some(d), false)?,
                            Elem::Prefix(a, len) => {
                                let (first, end) = prefix_range(a, *len)?;
                                list_elem(o, &[first], None, false)?;
                                if let Some(end) = end {
                                    list_elem(o, &[end], None, true)?;
                                }
                            }
                        }
                    }
                    Ok(())
                })
            },
        )?;
    }
    let end_seq = base + 1 + pieces.len() as u32;
    message(
        &mut out,
        NFNL_MSG_BATCH_END,
        NLM_F_REQUEST,
        end_seq,
        0,
        NFNL_SUBSYS_NFTABLES,
        none,
    )?;
    Ok(out)
}

/// How many elements an error names before it only counts the rest.
const NAMED: usize = 8;

/// `elems` in nft's syntax for an error: the first [`NAMED`], then how many there are.
fn named(elems: &[Elem]) -> String {
    let mut s = elems
        .iter()
        .take(NAMED)
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if elems.len() > NAMED {
        s.push_str(&format!(", ... ({} in all)", elems.len()));
    }
    s
}

/// The netlink messages of datagram `buf` as (type, sequence number, body after the
/// 16-byte header), up to the first malformed one; shared with [`crate::nftwatch`].
pub(crate) fn messages(buf: &[u8]) -> impl Iterator<Item = (u16, u32, &[u8])> {
    let mut off = 0;
    std::iter::from_fn(move || {
        let h = buf.get(off..off + 16)?;
        let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
        if len < 16 || off + len > buf.len() {
            return None;
        }
        let ty = u16::from_ne_bytes([h[4], h[5]]);
        let seq = u32::from_ne_bytes([h[8], h[9], h[10], h[11]]);
        let body = &buf[off + 16..off + len];
        off += (len + 3) & !3;
        Some((ty, seq, body))
    })
}

/// Reads the kernel's answer to each change of the batch sent from `base`; the first
/// error wins. An error answering the batch begin is the commit's own.
fn read_answers(sock: &Socket, pieces: &[(&Change, &[Elem])], base: u32) -> Result<(), NfError> {
    let n = pieces.len() as u32;
    let mut answered = 0u32;
    let mut first: Option<NfError> = None;
    // each answer is a datagram of its own, a capped acknowledgement of 36 bytes
    let mut buf = [0u8; 4096];
    while answered < n {
        let got = match sock.recv(&mut &mut buf[..], 0) {
            Ok(g) => g.min(buf.len()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(first.unwrap_or(NfError::Io {
                    what: "waiting for the kernel's answer",
                    source,
                }))
            }
        };
        for (ty, seq, body) in messages(&buf[..got]) {
            if ty != NLMSG_ERROR || body.len() < 4 || seq < base || seq > base + n + 1 {
                continue;
            }
            let errno = -i32::from_ne_bytes([body[0], body[1], body[2], body[3]]);
            if seq == base || seq == base + n + 1 {
                // the batch as a whole (its commit): no per-change answers follow
                if errno != 0 {
                    return Err(
                        first.unwrap_or(NfError::Commit(std::io::Error::from_raw_os_error(errno)))
                    );
                }
                continue;
            }
            answered += 1;
            if errno != 0 && first.is_none() {
                let (c, _) = pieces[(seq - base - 1) as usize];
                first = Some(NfError::Rejected {
                    verb: if c.add { "adding" } else { "deleting" },
                    elems: named(&c.elems),
                    family: c.family.as_str(),
                    set: c.set,
                    source: std::io::Error::from_raw_os_error(errno),
                });
            }
        }
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes nft 1.0.6 sends for `add element inet t pub4 { tcp . 8080 : 172.18.0.2 .
    /// 80 }` (strace of `nft`), but for the acknowledgement flag this module adds.
    #[test]
    fn a_map_element_is_encoded_as_nft_encodes_it() {
        let c = Change {
            add: true,
            family: Family::Inet,
            set: "pub4",
            elems: vec![Elem::Map(
                vec![Part::Proto(6), Part::Port(8080)],
                vec![Part::V4(Ipv4Addr::new(172, 18, 0, 2)), Part::Port(80)],
            )],
        };
        let b = encode("t", &[c], 0).expect("encodes");
        // the element list attribute of the one change message
        let elements: &[u8] = &[
            0x28, 0x00, 0x03, 0x80, 0x24, 0x00, 0x01, 0x80, 0x10, 0x00, 0x01, 0x80, 0x0c, 0x00,
            0x01, 0x00, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x90, 0x00, 0x00, 0x10, 0x00, 0x02, 0x80,
            0x0c, 0x00, 0x01, 0x00, 0xac, 0x12, 0x00, 0x02, 0x00, 0x50, 0x00, 0x00,
        ];
        assert!(b.windows(elements.len()).any(|w| w == elements), "{b:02x?}");
        // begin (20) + message + end (20); the message: header, table "t", set "pub4"
        assert_eq!(b.len(), 20 + (16 + 4 + 8 + 12 + elements.len()) + 20);
        assert_eq!(u16::from_ne_bytes([b[24], b[25]]), (10 << 8) | 12);
        assert_eq!(
            u16::from_ne_bytes([b[26], b[27]]),
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE
        );
    }

    #[test]
    fn prefixes_are_a_start_and_an_interval_end() {
        let v4 = |s: &str| Part::V4(s.parse().unwrap());
        let v6 = |s: &str| Part::V6(s.parse().unwrap());
        assert_eq!(
            prefix_range(&v4("10.80.1.7"), 24).unwrap(),
            (v4("10.80.1.0"), Some(v4("10.80.2.0")))
        );
        assert_eq!(
            prefix_range(&v4("255.255.255.0"), 24).unwrap(),
            (v4("255.255.255.0"), None)
        );
        assert_eq!(
            prefix_range(&v4("1.2.3.4"), 0).unwrap(),
            (v4("0.0.0.0"), None)
        );
        assert_eq!(
            prefix_range(&v6("fd00:1::"), 64).unwrap(),
            (v6("fd00:1::"), Some(v6("fd00:1:0:1::")))
        );
        assert!(prefix_range(&v4("10.0.0.0"), 33).is_err());
        assert!(prefix_range(&Part::Port(1), 8).is_err());
    }

    #[test]
    fn an_overlong_interface_name_is_refused_by_name() {
        let c = Change {
            add: true,
            family: Family::Inet,
            set: "bridges",
            elems: vec![Elem::one(Part::Ifname("a-name-of-16-byt".into()))],
        };
        let e = encode("tether", &[c], 0).unwrap_err().to_string();
        assert!(
            e.contains("a-name-of-16-byt") && e.contains("1 to 15"),
            "{e}"
        );
    }

    #[test]
    fn elements_print_in_nft_syntax() {
        let e = Elem::Map(
            vec![
                Part::V4(Ipv4Addr::LOCALHOST),
                Part::Proto(17),
                Part::Port(53),
            ],
            vec![Part::V6("fd00::2".parse().unwrap()), Part::Port(80)],
        );
        assert_eq!(e.to_string(), "127.0.0.1 . udp . 53 : fd00::2 . 80");
        let p = Elem::Prefix(Part::V4(Ipv4Addr::new(10, 0, 0, 0)), 8);
        assert_eq!(p.to_string(), "10.0.0.0/8");
    }
}
