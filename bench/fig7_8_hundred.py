#!/usr/bin/env python3
"""Figures 7 and 8: start N (BENCH_N, default 100) containers on one user-defined network
(sequential `run -d`, total wall time), then, with all N running, measure the engine's
memory as PSS from /proc/PID/smaps_rollup:
  - daemon only: tether daemon / dockerd (+ its containerd) / none for podman (daemonless);
  - daemon + container monitors: tether's monitor (one for all containers) /
    containerd-shim-runc-v2 per container / conmon per container (plus aardvark-dns for
    podman).
Then remove them all (`rm -f` of the N, total wall time).

Every BENCH_STEP containers (default N/10) while they start, a checkpoint records the
cumulative `run -d` time, the mean `run -d` time since the previous checkpoint and both
PSS figures (sampling time is kept off the clock): the points of the plots of time and
memory vs number of containers running. The network is a /24, or a /20 when N > 250; one
Linux bridge takes at most 1023 ports, so N <= 1023."""
from lib import *

N = int(os.environ.get("BENCH_N", "100"))
STEP = int(os.environ.get("BENCH_STEP", str(max(1, N // 10))))
n_iter = int(os.environ.get("BENCH_ITER7", "2"))
if N > 1023:
    sys.exit("BENCH_N=%d: a Linux bridge takes at most 1023 ports" % N)
CHECKPOINTS = sorted(set(range(STEP, N + 1, STEP)) | {N})

MONITORS = {"docker": ["containerd-shim", "containerd-shim-runc-v2"],
            "podman": ["conmon", "aardvark-dns"]}

def engine_pss(e):
    d = daemon_pid(e)
    daemon = pss_kib(d) if d else 0
    if e == "docker":
        daemon += sum(pss_kib(p) for p in pids_by_comm(["containerd"]))
    mons = tether_monitors() if e == "tether" else \
        [p for p in pids_by_comm(MONITORS[e]) if p != d]
    total = daemon + sum(pss_kib(p) for p in mons)
    return daemon / 1024.0, total / 1024.0

mem = {"daemon": {}, "total": {}}
points = {}  # (figure, series, unit, x) -> {engine: [samples]}

def point(fig, series, unit, x, e, v):
    points.setdefault((fig, series, unit, x), {}).setdefault(e, []).append(v)

def one(e, i):
    names = ["bench7-%d" % k for k in range(N)]
    try_rm(e, "rm", *names)
    try_rm(e, "network", "bench7")
    sh(e, "network", "create", "--subnet", subnet(e, 7, 24 if N <= 250 else 20), "bench7")
    t_start, prev = 0.0, (0, 0.0)
    for k, nm in enumerate(names, 1):
        t0 = time.perf_counter()
        sh(e, "run", "-d", "--name", nm, "--network", "bench7", "--dns", "127.0.0.1",
           IMAGE, "sleep", "3600")
        t_start += time.perf_counter() - t0
        if k in CHECKPOINTS:
            point(7, "run -d, mean per container since the previous checkpoint", "s", k, e,
                  (t_start - prev[1]) / (k - prev[0]))
            point(7, "run -d, cumulative", "s", k, e, t_start)
            dm, tot = engine_pss(e)
            if daemon_pid(e):
                point(8, "engine PSS, daemon(s)", "MiB", k, e, dm)
            point(8, "engine PSS, daemon(s)+monitors", "MiB", k, e, tot)
            prev = (k, t_start)
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

res = alternate(n_iter, one, ["start", "rm"])
record(7, "%d x run -d on one network, total" % N, "s", res["start"])
record(7, "rm -f of the %d, total" % N, "s", res["rm"])
record(8, "engine PSS, daemon(s), %d running" % N, "MiB", mem["daemon"])
record(8, "engine PSS, daemon(s)+monitors, %d running" % N, "MiB", mem["total"])
for (fig, series, unit, x), per_engine in sorted(points.items(), key=lambda p: (p[0][0], p[0][3])):
    record_series(fig, series, unit, x, per_engine)
