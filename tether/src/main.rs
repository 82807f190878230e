//! `tether`: `tether daemon` runs the engine and serves the Docker Engine API on a unix
//! socket; `tether <command>` is a docker-compatible CLI client of that API; `tether
//! monitor` is the container monitor the daemon starts (internal, one per daemon).
//!
//! The process starts at C's `main` below, not through std's start-up (`lang_start`):
//! that reads and parses /proc/self/maps to place the main thread's stack guard
//! (glibc's `pthread_getattr_np`) and sets up an alternate signal stack, ~0.15 ms of
//! every CLI call on this machine kind. What of it tether relies on is done here: SIGPIPE
//! is ignored (a closed pipe is an `EPIPE` error, as in every Rust program). A stack
//! overflow then ends the process with SIGSEGV, without std's message.
#![no_main]

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// `tether daemon` flags (dockerd's names).
#[derive(Parser, Debug)]
#[command(name = "tether daemon", about = "Run the tether engine")]
struct DaemonArgs {
    /// Persistent state directory.
    #[arg(long, default_value = "/var/lib/tether")]
    root: PathBuf,
    /// Runtime state directory (sandboxes, bundles, runc state).
    #[arg(long = "exec-root", default_value = "/run/tether")]
    exec_root: PathBuf,
    /// API socket, unix://PATH.
    #[arg(
        short = 'H',
        long = "host",
        default_value = "unix:///run/tether/tether.sock"
    )]
    host: String,
    /// OCI runtime binary.
    #[arg(long, default_value = "runc")]
    runtime: PathBuf,
    /// Upstream DNS servers for the embedded DNS (IP or IP:PORT), default: the host's resolv.conf.
    #[arg(long = "dns")]
    dns: Vec<String>,
    /// Log level (error, warn, info, debug, trace).
    #[arg(long = "log-level", short = 'l', default_value = "info")]
    log_level: String,
    /// Let published container ports be reached by routing to container addresses from
    /// any interface (Docker 28's `--allow-direct-routing`; default: dropped unless the
    /// network trusts the interface or is in gateway mode routed).
    #[arg(long = "allow-direct-routing")]
    allow_direct_routing: bool,
    /// Serve a live page of the topology (networks, containers, published ports) on
    /// this address, e.g. 127.0.0.1:8808 (off by default).
    #[arg(long = "ui")]
    ui: Option<SocketAddr>,
    /// The firewall backend: nftables, the only one tether has (dockerd also takes
    /// iptables).
    #[arg(long = "firewall-backend", default_value = "nftables", value_parser = ["nftables"])]
    firewall_backend: String,
    /// A registry (HOST[:PORT]) to speak plain HTTP to (repeatable); loopback
    /// registries (localhost, 127.0.0.0/8, ::1) always are.
    #[arg(long = "insecure-registry")]
    insecure_registries: Vec<String>,
    /// A mirror of docker.io to pull from first (URL, repeatable).
    #[arg(long = "registry-mirror")]
    registry_mirrors: Vec<String>,
    /// Serve Prometheus metrics at http://ADDR/metrics (IP:PORT, e.g. 127.0.0.1:9323;
    /// dockerd's flag). Off unless given.
    #[arg(long = "metrics-addr", value_name = "IP:PORT")]
    metrics_addr: Option<SocketAddr>,
    /// The cluster store overlay networks live in: etcd://HOST:PORT[,HOST:PORT...]
    /// (dockerd's pre-Swarm flag). Hosts started with the same store share global networks.
    #[arg(long = "cluster-store", value_name = "etcd://HOST:PORT")]
    cluster_store: Option<String>,
    /// The address other hosts of the cluster reach this one on (the VXLAN tunnel
    /// endpoint): an IPv4 address or an interface name (IP[:PORT] or IFACE[:PORT]).
    #[arg(long = "cluster-advertise", value_name = "IP|IFACE")]
    cluster_advertise: Option<String>,
    /// Options of the store connection (repeatable): kv.cacertfile=PATH, kv.certfile=PATH,
    /// kv.keyfile=PATH (TLS to etcd, PEM files, as dockerd's --cluster-store-opt).
    #[arg(long = "cluster-store-opt", value_name = "KEY=VALUE")]
    cluster_store_opts: Vec<String>,
    /// The lease TTL of this host in the cluster store, in seconds: a host that dies leaves
    /// the others' forwarding tables and DNS within it.
    #[arg(long = "cluster-ttl", value_name = "SECONDS", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(2..=3600))]
    cluster_ttl: u64,
}

/// The cluster configuration from the daemon's flags (None without --cluster-store).
fn cluster_config(
    args: &DaemonArgs,
) -> anyhow::Result<Option<tether_engine::cluster::ClusterConfig>> {
    let Some(store) = args.cluster_store.clone() else {
        anyhow::ensure!(
            args.cluster_advertise.is_none(),
            "--cluster-advertise needs --cluster-store"
        );
        return Ok(None);
    };
    let advertise = args
        .cluster_advertise
        .clone()
        .context("--cluster-store needs --cluster-advertise IP|IFACE (the address other hosts reach this one on)")?;
    let mut tls = tether_engine::cluster::TlsFiles::default();
    let mut any = false;
    for o in &args.cluster_store_opts {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("invalid --cluster-store-opt {o:?}: expected KEY=VALUE"))?;
        let v = Some(PathBuf::from(v));
        match k {
            "kv.cacertfile" => tls.ca = v,
            "kv.certfile" => tls.cert = v,
            "kv.keyfile" => tls.key = v,
            _ => anyhow::bail!(
                "invalid --cluster-store-opt {o:?}: expected kv.cacertfile, kv.certfile or kv.keyfile"
            ),
        }
        any = true;
    }
    Ok(Some(tether_engine::cluster::ClusterConfig {
        store,
        advertise,
        tls: any.then_some(tls),
        ttl: std::time::Duration::from_secs(args.cluster_ttl),
    }))
}

fn parse_upstream(s: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let ip: std::net::IpAddr = s
        .parse()
        .with_context(|| format!("invalid --dns {s:?}: expected IP or IP:PORT"))?;
    Ok(SocketAddr::new(ip, 53))
}

fn host_upstreams() -> Vec<SocketAddr> {
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|s| s.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .take(3)
        .collect()
}

async fn daemon(args: DaemonArgs) -> anyhow::Result<()> {
    let socket = args
        .host
        .strip_prefix("unix://")
        .map(PathBuf::from)
        .with_context(|| format!("invalid -H {:?}: only unix://PATH is supported", args.host))?;
    let dns = if args.dns.is_empty() {
        host_upstreams()
    } else {
        args.dns
            .iter()
            .map(|s| parse_upstream(s))
            .collect::<anyhow::Result<_>>()?
    };
    tether_image::registry::configure(tether_image::registry::RegistryConfig {
        insecure_registries: args
            .insecure_registries
            .iter()
            .map(|r| tether_image::registry::normalize_server(r))
            .collect(),
        mirrors: args.registry_mirrors.clone(),
    });
    let metrics = match args.metrics_addr {
        Some(a) => Some(tether_api::metrics::bind(a).await?),
        None => None,
    };
    let ui = match args.ui {
        Some(a) => Some(tether_api::ui::bind(a).await?),
        None => None,
    };
    let exe = std::env::current_exe().context("locate the tether binary")?;
    let cluster = cluster_config(&args)?;
    let cfg = tether_engine::Config {
        root: args.root,
        exec_root: args.exec_root,
        runtime: args.runtime,
        dns_upstreams: dns,
        exe,
        allow_direct_routing: args.allow_direct_routing,
        cluster,
    };
    let engine = tether_engine::Engine::start(cfg)
        .await
        .context("start the engine")?;
    if let Some(l) = metrics {
        tokio::spawn(tether_api::metrics::serve(engine.clone(), l));
    }
    if let Some(l) = ui {
        tokio::spawn(tether_api::ui::serve(engine.clone(), l));
    }
    tokio::spawn(trim_when_quiet());
    let server = tether_api::serve(engine.clone(), &socket);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = server => r.context("API server")?,
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down; containers keep running");
    engine.shutdown().await;
    let _ = std::fs::remove_file(&socket);
    Ok(())
}

/// How long no API request must arrive before [`trim_when_quiet`] trims.
const TRIM_QUIET: std::time::Duration = std::time::Duration::from_millis(500);

/// Returns the heap's free memory to the kernel once a burst of API requests is over.
///
/// glibc's malloc keeps what a burst freed (the transient buffers, JSON and futures of
/// `run`, `rm` and the rest) in its per-thread arenas, and trims only the top of each
/// heap by itself. `malloc_trim(0)` (malloc_trim(3)) gives back every whole free page of
/// every arena. It runs on a blocking thread once requests were received since the last
/// trim and then none for 0.5 s ([`TRIM_QUIET`]), never while requests keep arriving. An
/// idle daemon pays nothing: the task sleeps on [`tether_api::request_arrived`] until the
/// next request, with no timer.
async fn trim_when_quiet() {
    let mut trimmed_at = tether_api::requests_received();
    loop {
        tether_api::request_arrived().await;
        let mut last = tether_api::requests_received();
        if last == trimmed_at {
            // the permit of a request that the previous trim already covered
            continue;
        }
        loop {
            tokio::time::sleep(TRIM_QUIET).await;
            let now = tether_api::requests_received();
            if now == last {
                break;
            }
            last = now;
        }
        // SAFETY: malloc_trim only walks and releases the allocator's free memory.
        let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
        trimmed_at = last;
    }
}

/// The process entry point (C's `int main(int, char **)`): arguments come from
/// `std::env::args`, which glibc's start-up fills before `main` runs.
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    // SAFETY: setting a signal's disposition to SIG_IGN before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    // a panic ends the process with 101 after its message, as from std's `main`
    match std::panic::catch_unwind(run) {
        Ok(()) => 0,
        Err(_) => 101,
    }
}

fn run() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.first().map(|s| s.as_str()) == Some("monitor") {
        // before any thread exists: the monitor forks
        std::process::exit(tether_runtime::monitor::main(&argv));
    }
    if argv.first().map(|s| s.as_str()) == Some("archive-helper") {
        // before any thread exists: it enters a mount namespace
        std::process::exit(tether_engine::archive::helper_main(&argv));
    }
    if argv.first().map(|s| s.as_str()) == Some("shim-exec") {
        std::process::exit(tether_runtime::shim::exec_main(&argv));
    }
    engine_main(argv);
}

/// The daemon and the CLI. Kept out of `main`: their futures make a frame of over 12 KiB
/// whose stack pages are all touched on entry (stack probes), and they would stay resident
/// in the monitor, which runs `main` too.
#[inline(never)]
fn engine_main(argv: Vec<String>) {
    // The daemon serves many clients at once; a CLI call is one conversation, and a
    // single-threaded runtime starts without spawning worker threads.
    let built = if argv.first().map(|s| s.as_str()) == Some("daemon") {
        // runc's stdio slots (tether_runtime::spawn) among the lowest descriptor numbers,
        // before the runtime and the engine open theirs
        if let Err(e) = tether_runtime::spawn::reserve() {
            eprintln!("tether: cannot open /dev/null: {e}");
            std::process::exit(1);
        }
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let rt = match built {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tether: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    if argv.first().map(|s| s.as_str()) == Some("daemon") {
        let args = DaemonArgs::parse_from(
            std::iter::once("tether daemon".to_string()).chain(argv.into_iter().skip(1)),
        );
        let filter = tracing_subscriber::EnvFilter::try_new(&args.log_level)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
        if let Err(e) = rt.block_on(daemon(args)) {
            eprintln!("tether daemon: {e:#}");
            std::process::exit(1);
        }
        return;
    }
    let code = rt.block_on(tether_cli::run(argv));
    std::process::exit(code);
}
