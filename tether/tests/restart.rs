//! Daemon restarts: containers keep running while the daemon is away, and the next daemon
//! (same root and exec-root, same namespace) adopts them: listed, resolvable, reachable,
//! stoppable; one that died meanwhile is recorded as exited.

mod common;

use std::io::ErrorKind;
use std::time::Duration;

use common::{nslookup_addrs, wait_until, Daemon, IMAGE, UPSTREAM_IP, UPSTREAM_NAME};

const LIMIT: Duration = Duration::from_secs(5);

#[test]
fn containers_survive_a_daemon_restart() {
    let mut d = Daemon::start();
    d.ok(&["network", "create", "n1"]);
    let srv = d.run_d(&[
        "--name",
        "srv",
        "--network",
        "n1",
        "--network-alias",
        "api",
        "-p",
        "18082:8080",
        IMAGE,
        "sh",
        "-c",
        "exec nc -ll -p 8080 -e echo hello-srv",
    ]);
    d.run_d(&[
        "--name",
        "client",
        "--network",
        "n1",
        IMAGE,
        "sleep",
        "1000",
    ]);
    wait_until(
        "srv answers on 127.0.0.1:18082",
        Duration::from_secs(60),
        || {
            d.tcp_exchange(18082, "", LIMIT)
                .map(|s| s.trim() == "hello-srv")
                .unwrap_or(false)
        },
    );
    let ip = d.ip_of("srv", "n1");
    let pid = d.inspect("srv")["State"]["Pid"].clone();
    assert!(pid.as_i64().unwrap_or(0) > 0, "{pid}");
    // links of srv and client (doomed's veth goes away with it)
    let links = d.links();
    let ports = d.nft_tcp_ports();
    d.run_d(&["--name", "doomed", IMAGE, "sleep", "1000"]);
    let doomed = d.inspect("doomed")["State"]["Pid"].as_i64().unwrap_or(0) as i32;
    assert!(doomed > 0);

    // daemon away: the containers go on; one of them is killed meanwhile
    let st = d.stop_daemon();
    assert!(
        st.map(|s| s.success()).unwrap_or(false),
        "daemon exit: {st:?}"
    );
    assert_eq!(
        d.monitored().len(),
        3,
        "the container monitor outlives the daemon"
    );
    // SAFETY: kill(2) of the init process of a container this test started.
    unsafe {
        libc::kill(doomed, libc::SIGKILL);
    }
    wait_until("doomed's exit is recorded", Duration::from_secs(30), || {
        d.monitored().len() == 2
    });
    d.start_daemon();

    // adopted: listed as running, same process, same networking
    let names = d.ok(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    let mut rows: Vec<&str> = names.lines().collect();
    rows.sort_unstable();
    assert_eq!(rows.len(), 2, "{names}");
    assert!(
        rows[0].starts_with("client Up") && rows[1].starts_with("srv Up"),
        "{names}"
    );
    let v = d.inspect("srv");
    assert_eq!(v["Id"], srv.as_str());
    assert_eq!(v["State"]["Status"], "running");
    assert_eq!(
        v["State"]["Pid"], pid,
        "srv was restarted instead of adopted"
    );
    assert_eq!(d.ip_of("srv", "n1"), ip);
    assert_eq!(d.links_settled(&links), links);
    assert_eq!(d.nft_tcp_ports(), ports);

    // the one that died meanwhile is exited, by SIGKILL
    let v = d.inspect("doomed");
    assert_eq!(v["State"]["Status"], "exited", "{v}");
    assert_eq!(v["State"]["ExitCode"], 137, "{v}");

    // reachable through the published port, resolvable and reachable by name and alias
    let got = d
        .tcp_exchange(18082, "", LIMIT)
        .expect("published port after restart");
    assert_eq!(got.trim(), "hello-srv");
    for name in ["srv", "api"] {
        let out = d
            .sh("client", &format!("timeout 20 nslookup {name} 2>&1"))
            .all();
        assert_eq!(nslookup_addrs(&out), vec![ip.clone()], "{name}: {out}");
    }
    assert_eq!(
        d.sh("client", "nc -w 3 srv 8080 </dev/null").out(),
        "hello-srv"
    );
    let out = d
        .sh(
            "client",
            &format!("timeout 20 nslookup {UPSTREAM_NAME} 2>&1"),
        )
        .all();
    assert_eq!(nslookup_addrs(&out), vec![UPSTREAM_IP.to_string()], "{out}");

    // the adopted container still holds its host port
    let o = d.fails(&[
        "run", "-d", "--name", "clash", "-p", "18082:80", IMAGE, "sleep", "1000",
    ]);
    assert!(o.stderr.contains("18082"), "{o}");
    assert_eq!(d.nft_tcp_ports(), ports);

    // the adopted container is still managed: stop records its exit and withdraws its port
    d.ok(&["stop", "-t", "1", "srv"]);
    assert_eq!(d.inspect("srv")["State"]["Status"], "exited");
    let e = d
        .tcp_exchange(18082, "", LIMIT)
        .expect_err("port still published");
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e}");
    assert!(d.nft_tcp_ports().is_empty());

    // the network's address leases survived: a new container gets a fresh address
    d.run_d(&["--name", "late", "--network", "n1", IMAGE, "sleep", "1000"]);
    let late = d.ip_of("late", "n1");
    let client_ip = d.ip_of("client", "n1");
    assert!(
        !late.is_empty() && late != client_ip,
        "late {late}, client {client_ip}"
    );
    let out = d.sh("late", "timeout 20 nslookup client 2>&1").all();
    assert_eq!(nslookup_addrs(&out), vec![client_ip], "{out}");
    d.ok(&["rm", "-f", "late"]);

    // and a second restart with one container still running works as well
    d.restart();
    assert_eq!(d.ok(&["ps", "--format", "{{.Names}}"]), "client");
    assert_eq!(d.sh("client", "echo alive").out(), "alive");
}

/// A clean restart keeps tether's nftables tables and rebuilds their contents in place:
/// a published port answers every connection while the daemon stops, starts and
/// restores (before, the table was recreated empty at start and the port refused
/// connections until the container was re-adopted).
#[test]
fn published_ports_answer_throughout_a_restart() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    let mut d = Daemon::start();
    d.run_d(&[
        "-p",
        "8081:80",
        "--name",
        "web",
        IMAGE,
        "sh",
        "-c",
        "exec nc -ll -p 80 -e echo hello",
    ]);
    common::wait_until("web to answer", Duration::from_secs(10), || {
        d.tcp_exchange(8081, "", Duration::from_secs(1))
            .map(|o| o.contains("hello"))
            .unwrap_or(false)
    });
    let stop = Arc::new(AtomicBool::new(false));
    let (tries, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let prober = {
        let (ns, stop, tries, failed) = (d.netns(), stop.clone(), tries.clone(), failed.clone());
        std::thread::spawn(move || {
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let got = common::in_netns(&ns, || {
                    use std::io::Read;
                    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 8081));
                    let mut s =
                        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
                    s.set_read_timeout(Some(Duration::from_secs(2)))?;
                    let mut out = String::new();
                    s.read_to_string(&mut out)?;
                    Ok::<_, std::io::Error>(out)
                });
                tries.fetch_add(1, Ordering::Relaxed);
                match got {
                    Ok(o) if o.contains("hello") => {}
                    other => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        errors.push(format!("{other:?}"));
                    }
                }
            }
            errors
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    d.restart();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let mut errors = prober.join().unwrap_or_default();
    errors.truncate(5);
    let (tries, failed) = (
        tries.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    assert!(tries > 20, "too few probes to tell: {tries}");
    assert_eq!(
        failed, 0,
        "{failed} of {tries} connections failed across the restart: {errors:?}"
    );
    // and the restored state is whole: the port is in tether's map once
    let ports = d.nft_tcp_ports();
    assert_eq!(ports.iter().filter(|p| **p == 8081).count(), 1, "{ports:?}");
}

/// The container monitor is killed: the daemon records its containers as exited (their
/// processes go with `runc delete --force`, nothing is left: the teardown checks), and the
/// next `run` starts another monitor in place of the dead one's socket.
#[test]
fn a_killed_monitor_ends_its_containers_and_the_next_run_starts_another() {
    let d = Daemon::start();
    let id = d.run_d(&["--name", "first", IMAGE, "sleep", "1000"]);
    let monitors = d.monitor_pids();
    assert_eq!(monitors.len(), 1, "{monitors:?}");
    assert_eq!(d.monitored(), vec![id]);
    // SAFETY: kill(2) of the monitor process of this test's daemon.
    unsafe {
        libc::kill(monitors[0] as i32, libc::SIGKILL);
    }
    wait_until(
        "first is recorded as exited",
        Duration::from_secs(30),
        || d.inspect("first")["State"]["Status"] == "exited",
    );
    assert_eq!(d.inspect("first")["State"]["ExitCode"], 137);

    let id = d.run_d(&["--name", "second", IMAGE, "sleep", "1000"]);
    let again = d.monitor_pids();
    assert_eq!(again.len(), 1, "{again:?}");
    assert_ne!(again[0], monitors[0], "a new monitor");
    assert_eq!(d.monitored(), vec![id]);
    assert_eq!(d.ok(&["exec", "second", "echo", "served"]).trim(), "served");
    // and `first` starts again under it
    d.ok(&["start", "first"]);
    assert_eq!(d.monitored().len(), 2);
}
