#!/usr/bin/env python3
"""Figure 11: overlay networks across hosts (issue 14), tether only.

Docker and Podman have no overlay network without Swarm (Docker's external key-value
store went in 20.10; Podman has no overlay driver), so there is no peer to alternate with.

The hosts are network namespaces on an underlay bridge that sits in a namespace of its
own (192.168.91.0/24), with a real etcd (Debian's etcd-server) on the underlay, each host
running its own `tether daemon` (own root, exec-root and socket; --cluster-store,
--cluster-advertise eth0), the same harness as tether/tests/common/multihost.rs and
examples/multihost/run.sh. Nothing runs in the machine's own network namespace, and
everything is removed at the end.

Measurements:
  * `run -d` on host 1 until a container already running on host 2 reaches the new one by
    name (TCP connect + one line answered), as figure 2 does on one host. The store's
    share: host 1's address allocation plus endpoint put in etcd ("overlay endpoint
    published", store_us, in its debug log), and the watch's delivery to host 2 (from
    the start of that put to host 2's "remote endpoint applied", same clock).
  * TCP throughput (iperf3, 3 s, one stream) between containers on two hosts across the
    overlay (VXLAN, MTU 1450) vs between the two hosts' own namespaces on the underlay,
    alternating.
  * BENCH11_CONTAINERS (default 100) containers started on the overlay, spread over the
    three hosts (each host starting its share one after the other, the hosts at once):
    the wall time, and every daemon's RSS afterwards.

Env: BENCH_ITER (samples of the first two), BENCH11_CONTAINERS, BENCH11_IPERF_S (default
3), TETHER_BIN, TBOX_TAR (the busybox image tar, bench/make-tbox.sh).
"""
import datetime, json, os, re, shutil, subprocess, sys, tempfile, threading, time
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import ITER, TETHER_BIN, IMAGE, record

NS = "tether-b11"
UL = "192.168.91"
STORE = "etcd://%s.254:2379" % UL
HOSTS = (1, 2, 3)
N_CONTAINERS = int(os.environ.get("BENCH11_CONTAINERS", "100"))
IPERF_S = int(os.environ.get("BENCH11_IPERF_S", "3"))
TAR = os.environ.get("TBOX_TAR", "/var/tmp/tether-images/tbox.tar")
ETCD = "/usr/bin/etcd"


def run(argv, check=True, timeout=120, **kw):
    p = subprocess.run([str(a) for a in argv], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=timeout, **kw)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(map(str, argv[:8])),
                                                     p.returncode, p.stderr.strip()[-400:]))
    return p.stdout.strip()


class Cluster:
    """The underlay with etcd and three hosts, each with its own daemon."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="tether-bench11.")
        self.etcd = None
        self.daemons = {}
        for n in ["ul"] + ["h%d" % h for h in HOSTS]:
            if run(["ip", "netns", "list"]).split().count("%s-%s" % (NS, n)):
                raise RuntimeError("namespace %s-%s exists (another run?)" % (NS, n))
        try:
            self._start()
        except Exception:
            self.close()
            raise

    def sock(self, h):
        return "%s/h%d/sock" % (self.dir, h)

    def cli(self, h, *args, check=True, timeout=120):
        return run([TETHER_BIN, "-H", "unix://" + self.sock(h), *args], check=check,
                   timeout=timeout)

    def ns(self, h, *argv):
        return ["ip", "netns", "exec", "%s-h%d" % (NS, h)] + [str(a) for a in argv]

    def _start(self):
        ul = NS + "-ul"
        run(["ip", "netns", "add", ul])
        for a in (["link", "set", "lo", "up"], ["link", "add", "ul0", "type", "bridge"],
                  ["addr", "add", UL + ".254/24", "dev", "ul0"], ["link", "set", "ul0", "up"]):
            run(["ip", "-n", ul] + a)
        env = dict(os.environ, ETCD_UNSUPPORTED_ARCH="amd64")
        self.etcd = subprocess.Popen(
            ["ip", "netns", "exec", ul, ETCD, "--name", "b11", "--data-dir",
             self.dir + "/etcd", "--listen-client-urls", "http://%s.254:2379" % UL,
             "--advertise-client-urls", "http://%s.254:2379" % UL,
             "--listen-peer-urls", "http://127.0.0.1:2380",
             "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
             "--initial-cluster", "b11=http://127.0.0.1:2380"],
            stdout=open(self.dir + "/etcd.log", "w"), stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env)
        for h in HOSTS:
            hn = "%s-h%d" % (NS, h)
            run(["ip", "netns", "add", hn])
            run(["ip", "-n", hn, "link", "set", "lo", "up"])
            run(["ip", "-n", ul, "link", "add", "h%d" % h, "type", "veth", "peer", "name",
                 "eth0", "netns", hn])
            run(["ip", "-n", ul, "link", "set", "h%d" % h, "master", "ul0", "up"])
            run(["ip", "-n", hn, "addr", "add", "%s.%d/24" % (UL, h), "dev", "eth0"])
            run(["ip", "-n", hn, "link", "set", "eth0", "up"])
            os.makedirs("%s/h%d" % (self.dir, h))
            # its own private mount namespace, in the host's network namespace (not
            # `ip netns exec`, whose fresh sysfs hides the cgroup hierarchy runc needs)
            self.daemons[h] = subprocess.Popen(
                ["nsenter", "--net=/run/netns/" + hn, "--", "unshare", "--mount",
                 "--propagation", "private", "--", TETHER_BIN, "daemon",
                 "--root", "%s/h%d/root" % (self.dir, h),
                 "--exec-root", "%s/h%d/run" % (self.dir, h),
                 "-H", "unix://" + self.sock(h), "--cluster-store", STORE,
                 "--cluster-advertise", "eth0", "--cluster-ttl", "10",
                 "--log-level", "info,tether_engine::cluster=debug,"
                 "tether_engine::sandbox=debug"],
                stdout=open("%s/h%d/daemon.log" % (self.dir, h), "w"),
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=dict(os.environ, NO_COLOR="1"))
        for h in HOSTS:
            wait("host %d's daemon" % h, 30,
                 lambda: self.cli(h, "version", check=False, timeout=5) != "")
        wait("three hosts ready", 30,
             lambda: self.cli(1, "node", "ls").count("Ready") == len(HOSTS))
        for h in HOSTS:
            self.cli(h, "import", "--change", 'CMD ["/bin/sh"]', "--change",
                     "ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin", TAR, IMAGE)

    def log(self, h):
        with open("%s/h%d/daemon.log" % (self.dir, h)) as f:
            return f.read()

    def close(self):
        for h, d in self.daemons.items():
            try:
                ids = self.cli(h, "ps", "-aq", check=False, timeout=30).split()
                if ids:
                    self.cli(h, "rm", "-f", *ids, check=False, timeout=300)
            except Exception as e:
                print("figure 11: host %d: %s" % (h, e), file=sys.stderr)
        for h in self.daemons:
            self.cli(h, "network", "rm", "bench11", check=False, timeout=30)
        for d in list(self.daemons.values()) + ([self.etcd] if self.etcd else []):
            d.terminate()
            try:
                d.wait(timeout=30)
            except subprocess.TimeoutExpired:
                d.kill()
                d.wait()
        for n in ["h%d" % h for h in HOSTS] + ["ul"]:
            run(["ip", "netns", "del", "%s-%s" % (NS, n)], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def wait(what, limit, cond):
    deadline = time.time() + limit
    while time.time() < deadline:
        try:
            if cond():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError("figure 11: timed out waiting for " + what)


def log_time(line):
    """The timestamp of a daemon log line (UTC, RFC 3339 with microseconds)."""
    ts = line.split()[0].rstrip("Z")
    return datetime.datetime.fromisoformat(ts[:26]).timestamp()


def store_share(c, srv):
    """(store_us on host 1, watch delivery to host 2 in s) of container srv's endpoint."""
    cid = c.cli(1, "inspect", "-f", "{{.Id}}", srv)
    eps = json.loads(c.cli(1, "inspect", "-f", "{{json .NetworkSettings.Networks}}", srv))
    ep = eps["bench11"]["EndpointID"]
    pub = [l for l in c.log(1).splitlines()
           if "overlay endpoint published" in l and ep in l]
    got = [l for l in c.log(2).splitlines() if "remote endpoint applied" in l and ep in l]
    if not pub or not got or not cid:
        return None
    us = int(re.search(r"store_us=(\d+)", pub[-1]).group(1))
    put_us = int(re.search(r"put_us=(\d+)", pub[-1]).group(1))
    # host 2 may apply the put before host 1 hears etcd's answer: from the put's start
    put_start = log_time(pub[-1]) - put_us / 1e6
    return us / 1e6, max(0.0, log_time(got[-1]) - put_start)


def reach_by_name(c):
    c.cli(2, "run", "-d", "--name", "b11-client", "--network", "bench11", IMAGE, "sleep",
          "3600")
    out = {"run": [], "reach": [], "store": [], "watch": []}
    for i in range(ITER):
        srv = "b11-srv%d" % i
        loop = ("n=0; until echo | nc -w 1 %s 80 2>/dev/null | grep -q hello; do "
                "sleep 0.01; n=$((n+1)); [ $n -gt 3000 ] && exit 1; done; exit 0" % srv)
        client = subprocess.Popen([TETHER_BIN, "-H", "unix://" + c.sock(2), "exec",
                                   "b11-client", "sh", "-c", loop],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.0)
        t0 = time.perf_counter()
        c.cli(1, "run", "-d", "--name", srv, "--network", "bench11", IMAGE, "nc", "-ll",
              "-p", "80", "-e", "echo", "hello")
        t_run = time.perf_counter() - t0
        rc = client.wait(timeout=60)
        t_reach = time.perf_counter() - t0
        if rc != 0:
            print("figure 11: the client never reached %s" % srv, file=sys.stderr)
            continue
        out["run"].append(t_run)
        out["reach"].append(t_reach)
        share = store_share(c, srv)
        if share:
            out["store"].append(share[0])
            out["watch"].append(share[1])
        c.cli(1, "rm", "-f", srv)
    c.cli(2, "rm", "-f", "b11-client")
    record(11, "overlay: run -d on host 1 until reached by name from host 2", "s",
           {"tether": out["reach"]})
    record(11, "overlay: run -d on host 1 (CLI returns)", "s", {"tether": out["run"]})
    record(11, "overlay: of which etcd on host 1 (address + endpoint put)", "s",
           {"tether": out["store"]})
    record(11, "overlay: etcd put on host 1 until applied on host 2 (watch)", "s",
           {"tether": out["watch"]})


def iperf(client_argv, server_argv, ip):
    srv = subprocess.Popen(server_argv + ["iperf3", "-s", "-1", "-B", ip],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            r = subprocess.run(client_argv + ["iperf3", "-c", ip, "-t", str(IPERF_S), "-J"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            if r.returncode == 0:
                try:
                    j = json.loads(r.stdout)
                except ValueError:
                    j = {"error": r.stdout[-300:]}
                if "error" not in j:  # else the server is not listening yet: again
                    return j["end"]["sum_received"]["bits_per_second"] / 1e9
            time.sleep(0.05)
        raise RuntimeError("iperf3 could not connect to " + ip)
    finally:
        srv.kill()
        srv.wait()


def throughput(c):
    if not shutil.which("iperf3"):
        print("figure 11: no iperf3 (apt-get install iperf3): throughput skipped",
              file=sys.stderr)
        return
    c.cli(1, "run", "-d", "--name", "b11-perf1", "--network", "bench11", IMAGE, "sleep",
          "3600")
    c.cli(2, "run", "-d", "--name", "b11-perf2", "--network", "bench11", IMAGE, "sleep",
          "3600")
    pid = {h: int(c.cli(h, "inspect", "-f", "{{.State.Pid}}", "b11-perf%d" % h))
           for h in (1, 2)}
    ip1 = c.cli(1, "inspect", "-f", '{{(index .NetworkSettings.Networks "bench11").IPAddress}}',
                "b11-perf1")
    in_ctr = lambda h: ["nsenter", "--net=/proc/%d/ns/net" % pid[h], "--"]
    in_host = lambda h: ["ip", "netns", "exec", "%s-h%d" % (NS, h)]
    over, under = [], []
    for _ in range(ITER):
        over.append(iperf(in_ctr(2), in_ctr(1), ip1))
        under.append(iperf(in_host(2), in_host(1), "%s.1" % UL))
    record(11, "overlay: TCP throughput container to container, host 2 to host 1",
           "Gbit/s", {"tether": over})
    record(11, "underlay: TCP throughput host 2 to host 1 (reference)", "Gbit/s",
           {"tether": under})
    record(11, "overlay / underlay throughput", "x",
           {"tether": [o / u for o, u in zip(over, under) if u]})
    c.cli(1, "rm", "-f", "b11-perf1")
    c.cli(2, "rm", "-f", "b11-perf2")


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def many(c):
    per = {h: [i for i in range(N_CONTAINERS) if i % len(HOSTS) == h - 1] for h in HOSTS}
    errors = []

    def start(h):
        for i in per[h]:
            try:
                c.cli(h, "run", "-d", "--name", "b11-m%d" % i, "--network", "bench11",
                      IMAGE, "sleep", "3600")
            except Exception as e:
                errors.append(str(e))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=start, args=(h,)) for h in HOSTS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.perf_counter() - t0
    if errors:
        raise RuntimeError("figure 11: %d runs failed, first: %s" % (len(errors), errors[0]))
    # the last one on host 3 reaches the first one on host 1 by name
    last = "b11-m%d" % per[3][-1]
    o = run([TETHER_BIN, "-H", "unix://" + c.sock(3), "exec", last, "sh", "-c",
             "nslookup b11-m0 >/dev/null && echo ok"], check=False)
    if "ok" not in o:
        print("figure 11: b11-m0 not resolved from host 3", file=sys.stderr)
    record(11, "overlay: %d containers over 3 hosts, all started" % N_CONTAINERS, "s",
           {"tether": [took]})
    for h in HOSTS:
        record(11, "overlay: daemon RSS of host %d with %d containers" % (
            h, len(per[h])), "MiB", {"tether": [rss_kib(c.daemons[h].pid) / 1024.0]})
    ids = []
    for h in HOSTS:
        ids = c.cli(h, "ps", "-aq").split()
        if ids:
            c.cli(h, "rm", "-f", *ids, timeout=600)


def main():
    if not os.path.exists(ETCD):
        print("figure 11: no %s (apt-get install etcd-server): skipped" % ETCD,
              file=sys.stderr)
        return
    c = Cluster()
    try:
        c.cli(1, "network", "create", "-d", "overlay", "--subnet", "10.91.0.0/16",
              "bench11")
        for h in HOSTS:
            wait("bench11 on host %d" % h, 10,
                 lambda: c.cli(h, "network", "inspect", "bench11", check=False) != "")
        reach_by_name(c)
        throughput(c)
        many(c)
    finally:
        c.close()


if __name__ == "__main__":
    main()
