#!/usr/bin/env python3
"""Figures 7 and 8: start 100 containers on one user-defined network (sequential
`run -d`, total wall time), then, with all 100 running, measure the engine's memory as PSS
from /proc/PID/smaps_rollup:
  - daemon only: tether daemon / dockerd (+ its containerd) / none for podman (daemonless);
  - daemon + per-container monitors: tether shim / containerd-shim-runc-v2 / conmon
    (plus aardvark-dns for podman).
Then remove them all (`rm -f` of the 100, total wall time)."""
from lib import *

N = int(os.environ.get("BENCH_N", "100"))
n_iter = int(os.environ.get("BENCH_ITER7", "2"))

MONITORS = {"tether": ["tether"], "docker": ["containerd-shim", "containerd-shim-runc-v2"],
            "podman": ["conmon", "aardvark-dns"]}

def engine_pss(e):
    d = daemon_pid(e)
    daemon = pss_kib(d) if d else 0
    extra = 0
    if e == "docker":
        extra = sum(pss_kib(p) for p in pids_by_comm(["containerd"]))
    mons = 0
    for p in pids_by_comm(MONITORS[e]):
        if p == d:
            continue
        if e == "tether":
            # only the shims of this bench daemon's containers
            try:
                with open("/proc/%d/cmdline" % p, "rb") as f:
                    if b"shim" not in f.read():
                        continue
            except OSError:
                continue
        mons += pss_kib(p)
    return (daemon + extra) / 1024.0, (daemon + extra + mons) / 1024.0

mem = {"daemon": {}, "total": {}}

def one(e, i):
    names = ["bench7-%d" % k for k in range(N)]
    try_rm(e, "rm", *names)
    try_rm(e, "network", "bench7")
    sh(e, "network", "create", "--subnet", subnet(e, 7), "bench7")
    t0 = time.perf_counter()
    for nm in names:
        sh(e, "run", "-d", "--name", nm, "--network", "bench7", "--dns", "127.0.0.1",
           IMAGE, "sleep", "3600")
    t_start = time.perf_counter() - t0
    time.sleep(2)
    dm, tot = engine_pss(e)
    if daemon_pid(e):  # podman is daemonless: no daemon row
        mem["daemon"].setdefault(e, []).append(dm)
    mem["total"].setdefault(e, []).append(tot)
    t0 = time.perf_counter()
    sh(e, *rm_args(e), *names, timeout=900)
    t_rm = time.perf_counter() - t0
    try_rm(e, "network", "bench7")
    return {"start": t_start, "rm": t_rm}

import time
res = alternate(n_iter, one, ["start", "rm"])
record(7, "%d x run -d on one network, total" % N, "s", res["start"])
record(7, "rm -f of the %d, total" % N, "s", res["rm"])
record(8, "engine PSS, daemon(s), %d running" % N, "MiB", mem["daemon"])
record(8, "engine PSS, daemon(s)+monitors, %d running" % N, "MiB", mem["total"])
