//! The per-container /etc/hosts, /etc/resolv.conf and /etc/hostname, generated the way
//! Docker writes them (moby libnetwork/etchosts and resolvconf) and bind-mounted.

use std::net::Ipv4Addr;

/// Host entries Docker always writes.
const HOSTS_HEAD: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// /etc/hosts: the standard entries, `extra` (`--add-host`, as "ip\tname"), `links`
/// ("ip\talias id12 name"), then the container's own address with its hostname.
pub fn hosts(
    own: Option<Ipv4Addr>,
    own6: Option<std::net::Ipv6Addr>,
    hostname: &str,
    extra: &[(String, String)],
    links: &[String],
) -> String {
    let mut s = String::from(HOSTS_HEAD);
    for (name, ip) in extra {
        s.push_str(&format!("{ip}\t{name}\n"));
    }
    for l in links {
        s.push_str(l);
        s.push('\n');
    }
    if let Some(ip) = own {
        s.push_str(&format!("{ip}\t{hostname}\n"));
    }
    if let Some(ip) = own6 {
        s.push_str(&format!("{ip}\t{hostname}\n"));
    }
    s
}

/// The parts of a resolv.conf (resolv.conf(5)).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resolv {
    /// nameserver lines.
    pub nameservers: Vec<String>,
    /// search domains.
    pub search: Vec<String>,
    /// options.
    pub options: Vec<String>,
}

/// Parses resolv.conf text.
pub fn parse_resolv(text: &str) -> Resolv {
    let mut r = Resolv::default();
    for line in text.lines() {
        let mut it = line.split_whitespace();
        match it.next() {
            Some("nameserver") => r.nameservers.extend(it.next().map(str::to_string)),
            Some("search") | Some("domain") => r.search = it.map(str::to_string).collect(),
            Some("options") => r.options.extend(it.map(str::to_string)),
            _ => {}
        }
    }
    r
}

/// Renders a resolv.conf.
pub fn render_resolv(r: &Resolv) -> String {
    let mut s = String::new();
    if !r.search.is_empty() {
        s.push_str(&format!("search {}\n", r.search.join(" ")));
    }
    for n in &r.nameservers {
        s.push_str(&format!("nameserver {n}\n"));
    }
    if !r.options.is_empty() {
        s.push_str(&format!("options {}\n", r.options.join(" ")));
    }
    s
}

/// The container's resolv.conf. With the embedded DNS (a user-defined network): only
/// `nameserver 127.0.0.11` and `options ndots:0` plus the user's options, as Docker; the
/// user's `--dns` servers become the embedded server's upstreams. Without it: the user's
/// servers, or the host's minus loopback ones (unreachable from a sandbox).
pub fn resolv(
    host: &Resolv,
    dns: &[String],
    search: &[String],
    options: &[String],
    embedded: bool,
) -> Resolv {
    // `--dns-search .` means: no search domains at all
    let search = match search {
        [] => host.search.clone(),
        [dot] if dot == "." => Vec::new(),
        _ => search.to_vec(),
    };
    if embedded {
        let mut opts = vec!["ndots:0".to_string()];
        opts.extend(options.iter().filter(|o| !o.starts_with("ndots:")).cloned());
        opts.extend(options.iter().filter(|o| o.starts_with("ndots:")).cloned());
        if opts.iter().filter(|o| o.starts_with("ndots:")).count() > 1 {
            opts.remove(0);
        }
        return Resolv {
            nameservers: vec!["127.0.0.11".into()],
            search,
            options: opts,
        };
    }
    let nameservers = if dns.is_empty() {
        host.nameservers
            .iter()
            .filter(|n| !n.starts_with("127.") && n.as_str() != "::1")
            .cloned()
            .collect()
    } else {
        dns.to_vec()
    };
    let options = if options.is_empty() {
        host.options.clone()
    } else {
        options.to_vec()
    };
    Resolv {
        nameservers,
        search,
        options,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_layout() {
        let h = hosts(
            Some(Ipv4Addr::new(172, 17, 0, 2)),
            None,
            "abc",
            &[("database".into(), "172.17.0.1".into())],
            &["172.17.0.3\tdb 0123456789ab pg".into()],
        );
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.contains("172.17.0.1\tdatabase\n"));
        assert!(h.contains("172.17.0.3\tdb 0123456789ab pg\n"));
        assert!(h.ends_with("172.17.0.2\tabc\n"));
    }

    #[test]
    fn resolv_embedded_and_plain() {
        let host = parse_resolv(
            "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch example.com\noptions edns0\n",
        );
        let e = resolv(
            &host,
            &["127.0.0.1".into()],
            &[],
            &["timeout:1".into()],
            true,
        );
        assert_eq!(
            render_resolv(&e),
            "search example.com\nnameserver 127.0.0.11\noptions ndots:0 timeout:1\n"
        );
        let p = resolv(&host, &[], &[], &[], false);
        assert_eq!(p.nameservers, vec!["10.0.0.2"]);
        assert_eq!(p.options, vec!["edns0"]);
        let q = resolv(
            &host,
            &["127.0.0.1".into()],
            &["x.y".into()],
            &["attempts:1".into()],
            false,
        );
        assert_eq!(
            render_resolv(&q),
            "search x.y\nnameserver 127.0.0.1\noptions attempts:1\n"
        );
    }
}
