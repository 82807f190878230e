#!/usr/bin/env python3
"""Figure 4: the engine's embedded DNS server under load.

Each engine gets a user-defined network `bench4` with one container `bench4-c` (busybox
`sleep`). dnsperf (a host binary) runs inside that container's network namespace
(`nsenter --net=/proc/PID/ns/net`) against the nameserver written in the container's
/etc/resolv.conf: 127.0.0.11 for tether and Docker (tether's daemon and dockerd bind or
DNAT it inside the namespace), the network's gateway for Podman (aardvark-dns). The only
query is `bench4-c A`, a name the server answers itself: nothing is forwarded upstream.

Two passes per iteration, engines alternating:
  - saturated: `dnsperf -l SECS -q 100` (100 queries outstanding): queries/s, latency
    p50 / p99 (from dnsperf -v, one line per query), and the DNS server process's CPU time
    (utime + stime from /proc/PID/stat, before and after) per completed query. Server
    process: tether's daemon, dockerd, aardvark-dns;
  - fixed rate: the same with `-Q RATE`, RATE = BENCH_DNS_QPS or the slower peer's
    median saturated rate (tether alone: half its own; rounded down to 1000 q/s): latency
    p50 / p99 and CPU per query at the load where the slower peer saturates.
A lost query (no answer within 1 s, `-t 1`) counts as 1 s of latency."""
import re, subprocess, tempfile
from lib import *

SECS = int(os.environ.get("BENCH_DNS_SECS", "5"))
n = int(os.environ.get("BENCH_ITER4", str(max(3, ITER // 2))))
NET, C, TIMEOUT = "bench4", "bench4-c", 1.0

qfile = tempfile.NamedTemporaryFile("w", prefix="bench4-", suffix=".txt", delete=False)
qfile.write("%s A\n" % C)
qfile.close()

def server_pid(e):
    if e == "podman":
        p = pids_by_comm(["aardvark-dns"])
        if not p:
            raise RuntimeError("no aardvark-dns process")
        return p[0]
    return daemon_pid(e)

def stat(out, name):
    m = re.search(r"%s:\s+([\d.]+)" % name, out)
    if not m:
        raise RuntimeError("dnsperf printed no '%s': %s" % (name, out[-500:]))
    return float(m.group(1))

def dnsperf(e, qps=None):
    pid, server = setup[e]
    spid = server_pid(e)
    argv = ["dnsperf", "-s", server, "-d", qfile.name, "-l", SECS, "-q", 100,
            "-t", int(TIMEOUT), "-v"]
    if qps:
        argv += ["-Q", qps]
    c0 = cpu_seconds(spid)
    p = subprocess.run(in_netns(pid, argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=SECS + 60)
    c1 = cpu_seconds(spid)
    if p.returncode != 0:
        raise RuntimeError("dnsperf failed (%d): %s" % (p.returncode, p.stdout[-500:]))
    lat, out = [], []
    for line in p.stdout.splitlines():
        if line.startswith("> "):  # "> NOERROR bench4-c A 0.000210"
            f = line.split()
            if f[1] != "NOERROR":
                raise RuntimeError("answer %s to %s" % (f[1], C))
            lat.append(float(f[-1]) * 1000)
        else:
            out.append(line)
    out = "\n".join(out)
    done, lost = int(stat(out, "Queries completed")), int(stat(out, "Queries lost"))
    if not done:
        raise RuntimeError("no query answered: %s" % out[-500:])
    if lost:
        print("  %s: %d queries lost (counted as %.0f s)" % (e, lost, TIMEOUT), flush=True)
    lat += [TIMEOUT * 1000] * lost
    return {"qps": stat(out, "Queries per second"), "p50": percentile(lat, 50),
            "p99": percentile(lat, 99), "cpu": (c1 - c0) / done * 1e6}

setup = {}
try:
    for e in engines():
        try_rm(e, "rm", C)
        try_rm(e, "network", NET)
        sh(e, "network", "create", "--subnet", subnet(e, 40), NET)
        # Podman's --dns replaces aardvark in resolv.conf (see fig2): no --dns there; the
        # one name queried is aardvark's own record, so nothing is forwarded either way.
        dns = [] if e == "podman" else ["--dns", "127.0.0.1"]
        sh(e, "run", "-d", "--name", C, "--network", NET, *dns, IMAGE, "sleep", "3600")
        ns = [l.split()[1] for l in sh(e, "exec", C, "cat", "/etc/resolv.conf").splitlines()
              if l.startswith("nameserver")]
        if not ns or ns[0] == "127.0.0.1":
            raise RuntimeError("%s: no embedded DNS in resolv.conf: %s" % (e, ns))
        setup[e] = (container_pid(e, C), ns[0])
        print("  %s: dnsperf -> %s, server pid %s" % (e, ns[0], server_pid(e)), flush=True)

    sat = alternate(n, lambda e, i: dnsperf(e), ["qps", "p50", "p99", "cpu"])
    record(4, "DNS saturated (dnsperf -q 100, %d s): queries/s" % SECS, "q/s", sat["qps"])
    record(4, "DNS saturated: latency p50", "ms", sat["p50"])
    record(4, "DNS saturated: latency p99", "ms", sat["p99"])
    record(4, "DNS server CPU time per query, saturated", "µs", sat["cpu"])

    rate = int(os.environ.get("BENCH_DNS_QPS", "0"))
    if not rate:
        # the issue's target: p99 at the peers' saturation rate (the slower peer's, so
        # that one peer at least keeps up); tether alone: half its own saturated rate
        peer = [statistics.median(v) for e, v in sat["qps"].items() if v and e != "tether"]
        own = [statistics.median(v) for e, v in sat["qps"].items() if v and e == "tether"]
        base = min(peer) if peer else (min(own) / 2 if own else 20000)
        rate = max(1000, int(base // 1000 * 1000))
    fixed = alternate(n, lambda e, i: dnsperf(e, rate), ["qps", "p50", "p99", "cpu"])
    for e, v in fixed["qps"].items():
        if v and min(v) < 0.95 * rate:
            print("  %s did not keep up with %d q/s: %.0f" % (e, rate, min(v)), flush=True)
    record(4, "DNS at %d q/s: latency p50" % rate, "ms", fixed["p50"])
    record(4, "DNS at %d q/s: latency p99" % rate, "ms", fixed["p99"])
    record(4, "DNS server CPU time per query at %d q/s" % rate, "µs", fixed["cpu"])
finally:
    os.unlink(qfile.name)
    for e in engines():
        try_rm(e, "rm", C)
        try_rm(e, "network", NET)
