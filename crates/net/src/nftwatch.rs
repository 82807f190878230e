//! Watches nftables for damage to tether's own tables done by anyone else: an admin's
//! `nft flush ruleset`, a firewalld reload, a script deleting `table inet tether`.
//!
//! The kernel multicasts every committed nftables change on the netlink group
//! `NFNLGRP_NFTABLES` of `NETLINK_NETFILTER` (include/uapi/linux/netfilter/nf_tables.h,
//! nfnetlink.h): one message per object touched (`NFT_MSG_DEL*` with the table's name as
//! attribute 1 of every kind of object), then one `NFT_MSG_NEWGEN` closing the transaction
//! with the generation id and the pid and name of the process that committed it. A
//! transaction by another process that deleted or flushed anything in one of tether's
//! tables is reported as [`Damage`]; tether's own batches are not: element changes run in
//! the daemon (a thread's id), and the table's set-up runs `nft` children the daemon
//! started ([`crate::libnft::our_nft_child`]).

use std::io;

/// `NETLINK_NETFILTER` multicast group of nf_tables (enum nfnetlink_groups).
const NFNLGRP_NFTABLES: u32 = 7;
/// nfnetlink subsystem id of nf_tables (`NFNL_SUBSYS_NFTABLES`).
const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// `NFT_MSG_NEWGEN`: end of a committed transaction.
const NFT_MSG_NEWGEN: u16 = 15;
/// `NFTA_GEN_PROC_PID` / `NFTA_GEN_PROC_NAME` in a NEWGEN message.
const NFTA_GEN_PROC_PID: u16 = 2;
const NFTA_GEN_PROC_NAME: u16 = 3;
/// `NLMSG_ERROR` / `NLMSG_DONE`, `NLA_TYPE_MASK`.
const NLMSG_DONE: u16 = 3;
const NLA_TYPE_MASK: u16 = 0x3fff;

/// One nf_tables notification, as far as the watch needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// An object was deleted (`NFT_MSG_DELTABLE`, `DELCHAIN`, `DELRULE`, `DELSET`,
    /// `DELSETELEM`, ...) in table `table` of address family `family` (NFPROTO_*).
    Deleted {
        /// The nf_tables message (`NFT_MSG_*`).
        msg: u16,
        /// NFPROTO_* (1 inet, 2 ipv4, 7 bridge, 10 ipv6).
        family: u8,
        /// The table's name.
        table: String,
    },
    /// Something was added or changed (not damage).
    Other,
    /// The transaction closed (`NFT_MSG_NEWGEN`), committed by process `pid` (`name`).
    Generation {
        /// Pid of the committing process (0 when not given).
        pid: u32,
        /// Its name (comm), when given.
        name: String,
    },
}

/// A foreign transaction that deleted or flushed parts of a watched table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// Pid of the process that committed it (0: unknown, e.g. notifications were lost).
    pub pid: u32,
    /// Its name, or a description when unknown.
    pub process: String,
    /// Number of objects of tether's tables it deleted.
    pub deleted: usize,
}

fn is_delete(msg: u16) -> bool {
    // NFT_MSG_DELTABLE 2, DELCHAIN 5, DELRULE 8, DELSET 11, DELSETELEM 14, DELOBJ 20,
    // DELFLOWTABLE 24, DESTROY* (26..=32) of newer kernels
    matches!(msg, 2 | 5 | 8 | 11 | 14 | 20 | 24 | 26..=32)
}

/// Parses a datagram of netlink messages (nlmsghdr, nfgenmsg, attributes) into
/// notifications; anything malformed or from another subsystem is skipped.
pub fn parse(buf: &[u8]) -> Vec<Note> {
    let mut out = Vec::new();
    for (ty, _, body) in crate::nfelem::messages(buf) {
        if ty == NLMSG_DONE || ty >> 8 != NFNL_SUBSYS_NFTABLES || body.len() < 4 {
            continue;
        }
        let msg = ty & 0xff;
        let family = body[0];
        let attrs = attributes(&body[4..]);
        let attr = |t: u16| attrs.iter().find(|(k, _)| *k == t).map(|(_, v)| *v);
        if msg == NFT_MSG_NEWGEN {
            let pid = attr(NFTA_GEN_PROC_PID)
                .filter(|v| v.len() >= 4)
                .map(|v| u32::from_be_bytes([v[0], v[1], v[2], v[3]]))
                .unwrap_or(0);
            let name = attr(NFTA_GEN_PROC_NAME)
                .map(|v| {
                    String::from_utf8_lossy(v)
                        .trim_end_matches('\0')
                        .to_string()
                })
                .unwrap_or_default();
            out.push(Note::Generation { pid, name });
        } else if is_delete(msg) {
            // attribute 1 is the table's name for tables, chains, rules, sets, elements
            let table = attr(1)
                .map(|v| {
                    String::from_utf8_lossy(v)
                        .trim_end_matches('\0')
                        .to_string()
                })
                .unwrap_or_default();
            out.push(Note::Deleted { msg, family, table });
        } else {
            out.push(Note::Other);
        }
    }
    out
}

/// The top-level netlink attributes of `b` as (type, payload).
fn attributes(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while b.len() >= 4 {
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        let ty = u16::from_ne_bytes([b[2], b[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((ty, &b[4..len]));
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    out
}

/// Folds notifications into damage reports: deletions in a table called `table` (any
/// family) by a transaction whose committing task is not one of ours.
pub struct Tracker {
    table: String,
    own: Box<dyn Fn(u32) -> bool + Send>,
    deleted: usize,
}

/// Whether `tid` is a thread of this process. The kernel reports the committing *task*
/// (`NFTA_GEN_PROC_PID` is the thread id), and element changes run on whichever of the
/// daemon's threads made them.
pub fn own_thread(tid: u32) -> bool {
    tid != 0 && std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()
}

impl Tracker {
    /// A tracker of `table`, ignoring transactions whose committing task `own` accepts.
    pub fn new(table: &str, own: impl Fn(u32) -> bool + Send + 'static) -> Tracker {
        Tracker {
            table: table.to_string(),
            own: Box::new(own),
            deleted: 0,
        }
    }

    /// Takes one notification; returns the damage when it closes a foreign transaction
    /// that deleted something of the watched table.
    pub fn feed(&mut self, n: Note) -> Option<Damage> {
        match n {
            Note::Deleted { table, .. } if table == self.table => {
                self.deleted += 1;
                None
            }
            Note::Generation { pid, name } => {
                let deleted = std::mem::take(&mut self.deleted);
                (deleted > 0 && !(self.own)(pid)).then_some(Damage {
                    pid,
                    process: name,
                    deleted,
                })
            }
            _ => None,
        }
    }
}

/// Starts a thread that watches the calling thread's network namespace and calls
/// `on_damage` for every foreign transaction that deleted or flushed part of `table`,
/// and when notifications were lost (the socket's buffer overflowed: ENOBUFS), since the
/// table may have been damaged then too.
///
/// Errors: the netlink socket cannot be opened or joined to the group.
pub fn spawn(table: &str, on_damage: impl Fn(Damage) + Send + 'static) -> io::Result<()> {
    use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
    let mut sock = Socket::new(NETLINK_NETFILTER)?;
    sock.bind(&SocketAddr::new(0, 0))?;
    sock.add_membership(NFNLGRP_NFTABLES)?;
    let _ = sock.set_rx_buf_sz(4 << 20);
    let mut tracker = Tracker::new(table, |pid| {
        own_thread(pid) || crate::libnft::our_nft_child(pid)
    });
    std::thread::Builder::new()
        .name("nft-watch".into())
        .spawn(move || {
            let mut buf = vec![0u8; 1 << 16];
            loop {
                match sock.recv(&mut &mut buf[..], 0) {
                    Ok(n) => {
                        for note in parse(&buf[..n]) {
                            if let Some(d) = tracker.feed(note) {
                                on_damage(d);
                            }
                        }
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => on_damage(Damage {
                        pid: 0,
                        process: "unknown (nftables notifications were lost)".into(),
                        deleted: 0,
                    }),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::error!(error = %e, "nftables watch stopped");
                        return;
                    }
                }
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nla(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(((4 + payload.len()) as u16).to_ne_bytes());
        v.extend(ty.to_ne_bytes());
        v.extend(payload);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    fn msg(nft_msg: u16, family: u8, attrs: &[Vec<u8>]) -> Vec<u8> {
        let body: Vec<u8> = attrs.concat();
        let len = 16 + 4 + body.len();
        let mut v = Vec::new();
        v.extend((len as u32).to_ne_bytes());
        v.extend(((NFNL_SUBSYS_NFTABLES << 8) | nft_msg).to_ne_bytes());
        v.extend([0u8; 10]); // flags, seq, pid
        v.extend([family, 0, 0, 0]); // nfgenmsg
        v.extend(body);
        v
    }

    #[test]
    fn own_threads_are_recognised() {
        let tid = nix::unistd::gettid().as_raw() as u32;
        assert!(own_thread(tid));
        assert!(own_thread(std::process::id()));
        assert!(!own_thread(0));
        assert!(!own_thread(u32::MAX - 1));
    }

    #[test]
    fn a_foreign_flush_of_our_table_is_damage_and_our_own_is_not() {
        let del_rule = msg(8, 1, &[nla(1, b"tether\0"), nla(2, b"forward\0")]);
        let del_other = msg(2, 1, &[nla(1, b"filter\0")]);
        let gen = |pid: u32| {
            msg(
                NFT_MSG_NEWGEN,
                0,
                &[
                    nla(1, &7u32.to_be_bytes()),
                    nla(2, &pid.to_be_bytes()),
                    nla(3, b"nft\0"),
                ],
            )
        };
        let datagram = [del_rule.clone(), del_other.clone(), gen(4242)].concat();
        let notes = parse(&datagram);
        assert_eq!(notes.len(), 3, "{notes:?}");
        let mut t = Tracker::new("tether", |p| p == 1);
        let got: Vec<Damage> = notes.into_iter().filter_map(|n| t.feed(n)).collect();
        assert_eq!(
            got,
            vec![Damage {
                pid: 4242,
                process: "nft".into(),
                deleted: 1
            }]
        );
        // the same deletions committed by the daemon itself
        let mut t = Tracker::new("tether", |p| p == 4242);
        assert!(parse(&datagram).into_iter().all(|n| t.feed(n).is_none()));
        // another table's deletion alone is nobody's damage
        let mut t = Tracker::new("tether", |p| p == 1);
        let other = [del_other, gen(4242)].concat();
        assert!(parse(&other).into_iter().all(|n| t.feed(n).is_none()));
        // garbage does not panic
        assert!(parse(&[0xff; 7]).is_empty());
        assert!(parse(&datagram[..datagram.len() - 3]).len() < 3);
    }
}
