#!/usr/bin/env python3
"""Figure 5: TCP throughput through a published port vs to the container's address.

Each engine runs one container `bench5-c` (busybox `sleep`, default network) with
`-p 127.0.0.1:H:5201`. The image has no iperf3: the host's `iperf3 -s -p 5201` runs in the
container's network namespace (nsenter), so the server is not the container's process,
but the path to it (the engine's DNAT rules, or Docker's userland docker-proxy, which
serves 127.0.0.1 in Debian's default config) is exactly the engine's. Per iteration,
engines alternating: `iperf3 -c 127.0.0.1 -p H -t SECS` (published) and
`iperf3 -c <container IP> -p 5201 -t SECS` (direct, over the bridge), in alternating
order; Gbit/s received, and the ratio published / direct of the same iteration."""
import json, subprocess
from lib import *

SECS = int(os.environ.get("BENCH_IPERF_SECS", "3"))
n = int(os.environ.get("BENCH_ITER5", str(max(3, ITER // 2))))
C, PORT = "bench5-c", 5201
HOST_PORT = {"tether": 25201, "docker": 25202, "podman": 25203}

def iperf(host, port):
    p = subprocess.run(["iperf3", "-c", host, "-p", str(port), "-t", str(SECS), "-J"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=SECS + 30)
    try:
        d = json.loads(p.stdout)
    except ValueError:
        raise RuntimeError("iperf3 %s:%d: %s" % (host, port, (p.stdout + p.stderr)[-300:]))
    if "error" in d or p.returncode != 0:
        raise RuntimeError("iperf3 %s:%d: %s" % (host, port, d.get("error")))
    return d["end"]["sum_received"]["bits_per_second"] / 1e9

servers = {}

def one(e, i):
    ip = servers[e][1]
    ways = [("published", "127.0.0.1", HOST_PORT[e]), ("direct", ip, PORT)]
    out = {k: iperf(h, p) for k, h, p in (ways if i % 2 == 0 else ways[::-1])}
    out["ratio"] = out["published"] / out["direct"]
    return out

try:
    for e in engines():
        try_rm(e, "rm", C)
        sh(e, "run", "-d", "--name", C, "--dns", "127.0.0.1",
           "-p", "127.0.0.1:%d:%d" % (HOST_PORT[e], PORT), IMAGE, "sleep", "3600")
        srv = subprocess.Popen(in_netns(container_pid(e, C), ["iperf3", "-s", "-p", PORT]),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        servers[e] = (srv, container_ip(e, C))
    time.sleep(0.5)
    res = alternate(n, one, ["published", "direct", "ratio"])
    record(5, "TCP via published 127.0.0.1:H (iperf3, %d s)" % SECS, "Gbit/s",
           res["published"])
    record(5, "TCP to the container IP (direct)", "Gbit/s", res["direct"])
    record(5, "TCP throughput published / direct", "x", res["ratio"])
finally:
    for srv, _ in servers.values():
        srv.terminate()
        srv.wait()
    for e in engines():
        try_rm(e, "rm", C)
